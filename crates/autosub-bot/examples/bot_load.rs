//! Load benchmark of the bot: simulated users send /start, /me, a refused request (a paid option on FREE) and a
//! video that gets the options keyboard, and some a video with options that is queued and run; spread over a time
//! window, against the project's stand-in Bot API server. Reports the time from an update being available to the
//! bot's answer (p50, p95, max), whether every update was answered and confirmed, and the bot process's peak RSS.
//!
//! `cargo run --release -p autosub-bot --example bot_load -- AUTOSUB_BIN MODE [USERS] [SECONDS]`, MODE `serve`
//! (one `autosub serve`: bot and a worker in one process) or `split` (`autosub bot` + `autosub worker`, the bot's
//! own RSS). The models folder comes from `AUTOSUB_MODELS_DIR` (as for the tests). Used by scripts/bench/bot.sh.

use autosub_bot::standin::{StandIn, TgUser};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "4839574812:AAE_bench-TOKEN_0123456789abcdefghijklm";

fn spawn(bin: &str, args: &[&str], dir: &std::path::Path, si: &StandIn, name: &str) -> Child {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Command::new(bin)
        .args(args)
        .env("AUTOSUB_DATA_DIR", dir.join("data"))
        .env(
            "AUTOSUB_DATABASE_URL",
            format!("sqlite:{}", dir.join("autosub.db").display()),
        )
        .env("AUTOSUB_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("AUTOSUB_TELEGRAM_TOKEN", TOKEN)
        .env("AUTOSUB_TELEGRAM_API_URL", si.url())
        .env("AUTOSUB_WORKERS", "1")
        .env("AUTOSUB_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Peak resident memory of a process (VmHWM), in MB.
fn peak_rss_mb(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = args
        .get(1)
        .expect("usage: bot_load AUTOSUB_BIN serve|split [USERS] [SECONDS]")
        .clone();
    let mode = args.get(2).map_or("serve", String::as_str).to_owned();
    let users: i64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(200);
    let seconds: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(60);
    let sample = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sample.mp4"),
    )
    .unwrap();
    let si = StandIn::spawn(TOKEN);
    let tmp = tempfile::tempdir().unwrap();
    let mut children = Vec::new();
    let bot_pid;
    let t0 = Instant::now();
    if mode == "split" {
        let bot = spawn(&bin, &["bot"], tmp.path(), &si, "bot");
        bot_pid = bot.id();
        children.push(bot);
        children.push(spawn(&bin, &["worker"], tmp.path(), &si, "worker"));
    } else {
        let serve = spawn(&bin, &["serve"], tmp.path(), &si, "serve");
        bot_pid = serve.id();
        children.push(serve);
    }
    si.wait_until(Duration::from_secs(60), |c| {
        c.iter().any(|c| c.method == "getUpdates" && c.at > t0)
    });

    // Each user: four messages at a random offset in the window, 1.5 s apart; every tenth user also a queued job.
    let mut plan: Vec<(Duration, i64, usize)> = Vec::new();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rand = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let window = seconds.saturating_sub(6).max(1) * 1000;
    for u in 0..users {
        let start = rand() % window;
        let steps = if u % 10 == 0 { 5 } else { 4 };
        for k in 0..steps {
            plan.push((
                Duration::from_millis(start + 1500 * k as u64),
                10_000 + u,
                k,
            ));
        }
    }
    plan.sort();
    let begin = Instant::now();
    let mut sent: Vec<(i64, i64)> = Vec::new(); // (update id, chat)
    for (at, uid, step) in &plan {
        if let Some(rest) = at.checked_sub(begin.elapsed()) {
            std::thread::sleep(rest);
        }
        let user = TgUser::new(*uid, if uid % 2 == 0 { "en" } else { "ru" });
        let id = match step {
            0 => si.send_text(&user, "/start"),
            1 => si.send_text(&user, "/me"),
            2 => si.send_video(
                &user,
                sample.clone(),
                "clip.mp4",
                11,
                Some("--translate en"),
            ),
            3 => si.send_video(&user, sample.clone(), "clip.mp4", 11, None),
            _ => si.send_video(&user, sample.clone(), "clip.mp4", 11, Some("--vertical")),
        };
        sent.push((id, *uid));
    }
    // Every update answered: wait for the last answers.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut latencies = Vec::new();
    let mut unanswered;
    loop {
        let calls = si.calls();
        latencies.clear();
        unanswered = 0;
        for (id, chat) in &sent {
            let t = si.update_time(*id).unwrap();
            let answer = calls.iter().find(|c| {
                c.ok()
                    && c.at >= t
                    && c.chat_id == Some(*chat)
                    && matches!(c.method.as_str(), "sendMessage" | "editMessageText")
            });
            match answer {
                Some(c) => latencies.push(c.at.duration_since(t).as_secs_f64() * 1000.0),
                None => unanswered += 1,
            }
        }
        if unanswered == 0 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let confirmed = si.pending_updates() == 0;
    let rss = peak_rss_mb(bot_pid);
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "bot_load mode={mode} users={users} window_s={seconds} updates={} answered={} unanswered={unanswered} \
         confirmed={confirmed} p50_ms={:.1} p95_ms={:.1} max_ms={:.1} {}_peak_rss_mb={rss:.1}",
        sent.len(),
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        latencies.last().copied().unwrap_or(f64::NAN),
        if mode == "split" { "bot" } else { "serve" },
    );
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
}
