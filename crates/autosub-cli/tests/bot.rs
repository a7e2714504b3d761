//! The Telegram bot across real processes, against the project's stand-in Bot API server
//! (`autosub_bot::standin`): `autosub serve` on SQLite (bot + worker in one process), and `autosub bot` + two
//! `autosub worker` + `autosub billing` on one PostgreSQL database with a worker killed by SIGKILL mid-task and the
//! bot killed and restarted. Users are played by the test through the stand-in; results are real (the sample clip
//! through the real pipeline).

mod common;

use autosub_bot::standin::{AlbumFile, AlbumKind, Call, StandIn, TgUser};
use autosub_store::{Level, NewTask, Store, Tier};
use common::service::{free_port, Db, Service};
use common::telegram::*;
use std::time::{Duration, Instant};

/// The pipeline result reached `chat` exactly once: one video (with its caption), one .srt.
fn delivered_once(si: &StandIn, chat: i64, caption_has: &[&str]) {
    si.wait_until(LONG, |c| {
        count(c, chat, "sendVideo") >= 1 && count(c, chat, "sendDocument") >= 1
    });
    // Time for a duplicate to show up, if the bot were to send one.
    std::thread::sleep(Duration::from_millis(1500));
    let calls = si.calls();
    let videos: Vec<&Call> = calls
        .iter()
        .filter(|c| c.ok() && c.chat_id == Some(chat) && c.method == "sendVideo")
        .collect();
    assert_eq!(videos.len(), 1, "videos sent to {chat}");
    let cap = videos[0].text.clone().unwrap_or_default();
    for want in caption_has {
        assert!(cap.contains(want), "caption {cap:?} lacks {want:?}");
    }
    assert!(videos[0].file_bytes.unwrap_or(0) > 10_000);
    let docs: Vec<&Call> = calls
        .iter()
        .filter(|c| c.ok() && c.chat_id == Some(chat) && c.method == "sendDocument")
        .collect();
    assert_eq!(docs.len(), 1, "documents sent to {chat}");
    assert!(docs[0].file_name.as_deref().unwrap().ends_with(".srt"));
}

#[test]
fn serve_on_sqlite_speaks_both_languages_and_delivers_caption_and_keyboard_jobs_once() {
    let si = StandIn::spawn(TOKEN);
    let mut s = service(Db::Sqlite, &si);
    let t0 = Instant::now();
    spawn(&mut s, "serve", &["serve"], &[("AUTOSUB_WORKERS", "1")]);
    wait_polling(&si, t0);
    let en = TgUser::new(101, "en");
    let ru = TgUser::new(102, "ru-RU");

    // /start in each language, with the tier and its limits.
    si.send_text(&ru, "/start");
    let c = wait_text(&si, 102, "Привет", SHORT);
    assert!(has(
        &c,
        102,
        "Ваш тариф: FREE. Видео до 60 с, 720p, 3 задач в день."
    ));
    si.send_text(&en, "/start");
    let c = wait_text(&si, 101, "Hi!", SHORT);
    assert!(has(
        &c,
        101,
        "Your plan: FREE. Videos up to 60 s, 720p, 3 tasks a day."
    ));
    si.send_text(&ru, "/lang");
    wait_text(&si, 102, "Language: English.", SHORT);
    si.send_text(&ru, "/help");
    wait_text(&si, 102, "Send a video (up to 20 MB)", SHORT);

    // Options in the caption: queued at once, one status message, the result once.
    si.send_video(&en, sample(), "talk.mp4", 11, Some("--vertical"));
    let c = wait_text(&si, 101, "Got it", SHORT);
    let status = sent_message(&c, 101, "Got it");
    delivered_once(&si, 101, &["Language: en", "vertical 9:16"]);
    let calls = si.calls();
    let done = si.message(101, status).unwrap();
    assert!(
        done.text.as_deref().unwrap().ends_with("is done."),
        "{done:?}"
    );
    // One status message: only edits after it, and progress edits at most one per 3 s.
    let edits: Vec<&Call> = calls
        .iter()
        .filter(|c| c.ok() && c.method == "editMessageText" && c.message_id == Some(status))
        .collect();
    assert!(edits.len() >= 2, "{}", si.dump_calls(&calls));
    assert!(
        edits
            .iter()
            .any(|c| c.text.as_deref().unwrap().contains("is queued")
                || c.text.as_deref().unwrap().contains('%')),
        "{}",
        si.dump_calls(&calls)
    );
    for pair in edits[..edits.len() - 1].windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_millis(2800), "edits {gap:?} apart");
    }
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.ok() && c.method == "sendMessage" && c.chat_id == Some(101))
            .filter(|c| c.text.as_deref().unwrap().starts_with("Task #"))
            .count(),
        0,
        "status changes edit the one message instead of sending new ones"
    );

    // No options: a keyboard. Vertical on; translation is locked for FREE (the press is refused, nothing changes);
    // start; the result once.
    si.send_video(&ru, sample(), "clip.mp4", 11, None);
    let c = wait_text(&si, 102, "What should I do with this video?", SHORT);
    let kb = sent_message(&c, 102, "What should I do");
    let vertical = button(&si, 102, kb, "Vertical");
    assert!(vertical.ends_with(":v:1"), "{vertical}");
    si.press(&ru, kb, &vertical);
    si.wait_until(SHORT, |_| {
        si.message(102, kb)
            .and_then(|m| m.reply_markup)
            .is_some_and(|k| k.to_string().contains("✅ Vertical"))
    });
    let draft: i64 = vertical.split(':').nth(1).unwrap().parse().unwrap();
    si.press(&ru, kb, &format!("d:{draft}:t:en"));
    let a = nth_answer(&si, 2);
    assert!(
        a.text
            .as_deref()
            .unwrap_or_default()
            .contains("Translation is not part of the FREE plan; PRO includes it"),
        "{a:?}"
    );
    let start = button(&si, 102, kb, "Start");
    si.press(&ru, kb, &start);
    wait_text(&si, 102, "Got it", SHORT);
    delivered_once(&si, 102, &["vertical 9:16"]);
    let store = s.store();
    let tasks = s.rt.block_on(store.user_tasks(102, 10)).unwrap();
    assert_eq!(tasks.len(), 1);
    assert!(tasks[0].vertical_format && tasks[0].translate.is_none());

    // The result's "other options" button opens a new keyboard on the same input, without uploading again.
    let calls = si.calls();
    let video = calls
        .iter()
        .find(|c| c.ok() && c.method == "sendVideo" && c.chat_id == Some(102))
        .unwrap();
    let rerun = button(&si, 102, video.message_id.unwrap(), "Other options");
    si.press(&ru, video.message_id.unwrap(), &rerun);
    si.wait_until(SHORT, |c| {
        texts(c, 102)
            .iter()
            .filter(|t| t.contains("What should I do"))
            .count()
            == 2
    });

    // A button of someone else's task is refused.
    let en_task = s.rt.block_on(store.user_tasks(101, 1)).unwrap()[0].id;
    si.press(&ru, video.message_id.unwrap(), &format!("c:{en_task}"));
    let a = nth_answer(&si, 5);
    assert_eq!(a.text.as_deref(), Some("This is not your task."));
    no_secret_in(&s.log("serve"));
}

#[test]
fn refusals_admin_commands_flood_flood_control_and_forged_buttons() {
    let si = StandIn::spawn(TOKEN);
    let mut s = service(Db::Sqlite, &si);
    let t0 = Instant::now();
    spawn(&mut s, "serve", &["serve"], &[("AUTOSUB_WORKERS", "1")]);
    wait_polling(&si, t0);
    let store = s.store();
    let a = TgUser::new(201, "en");
    let admin = TgUser::new(ADMIN, "en");
    si.send_text(&admin, "/start");
    wait_text(&si, ADMIN, "Hi!", SHORT);

    // Refused before anything is queued, each naming the limit and what lifts it.
    si.send_video(&a, sample(), "a.mp4", 11, Some("--translate en"));
    wait_text(
        &si,
        201,
        "Translation is not part of the FREE plan; PRO includes it",
        SHORT,
    );
    si.send_video(&a, sample(), "a.mp4", 11, Some("--style neon"));
    wait_text(&si, 201, "I don't understand “--style neon”", SHORT);
    si.send_big_video(&a, 30 * 1024 * 1024, 30, Some("--vertical"));
    wait_text(
        &si,
        201,
        "a bot can download files up to 20 MB from Telegram. Send a link",
        SHORT,
    );
    si.send_video(&a, sample(), "long.mp4", 120, Some("--vertical"));
    wait_text(
        &si,
        201,
        "The video is 2 min long; the FREE plan takes videos up to 60 s. PRO allows 10 min",
        SHORT,
    );
    si.send_document(
        &a,
        b"%PDF-1.4 not a video".to_vec(),
        "doc.pdf",
        "application/pdf",
        None,
    );
    wait_text(
        &si,
        201,
        "This file is not a video or audio file I can read",
        SHORT,
    );
    // A renamed file passes the type check and is refused by the probe, nothing queued.
    si.send_document(
        &a,
        b"just some text, renamed".repeat(100),
        "clip.mp4",
        "video/mp4",
        Some("--vertical"),
    );
    si.wait_until(SHORT, |c| {
        texts(c, 201)
            .iter()
            .filter(|t| t.contains("not a video or audio file I can read"))
            .count()
            == 2
    });
    assert!(s.rt.block_on(store.user_tasks(201, 10)).unwrap().is_empty());
    si.send_text(&a, "/me");
    wait_text(&si, 201, "Tasks today: 0 of 3", SHORT);

    // Tasks per day: three counted already.
    for _ in 0..3 {
        let t = NewTask {
            user_telegram_id: Some(202),
            kind: "sleep".into(),
            spec: r#"{"ms": 10}"#.into(),
            spec_version: 1,
            input_type: "test".into(),
            tier: Tier::Free,
            ..Default::default()
        };
        s.rt.block_on(store.enqueue(&t, autosub_store::now_ms()))
            .unwrap();
    }
    let b = TgUser::new(202, "en");
    si.send_video(&b, sample(), "b.mp4", 11, Some("--vertical"));
    wait_text(
        &si,
        202,
        "You have used today's 3 tasks of the FREE plan",
        SHORT,
    );

    // Admin commands: refused to others with no data; bans; grants.
    si.send_text(&a, "/stats");
    let c = wait_text(&si, 201, "This command is for administrators.", SHORT);
    assert!(!has(&c, 201, "Users:"));
    si.send_text(&admin, "/stats");
    wait_text(&si, ADMIN, "Users: ", SHORT);
    si.send_text(&admin, "/ban 201");
    wait_text(&si, ADMIN, "User 201 is blocked.", SHORT);
    si.send_video(&a, sample(), "a.mp4", 11, Some("--vertical"));
    wait_text(&si, 201, "Your account is blocked.", SHORT);
    si.send_text(&admin, "/unban 201");
    wait_text(&si, ADMIN, "User 201 is unblocked.", SHORT);
    si.send_text(&admin, "/grant 201 pro 30");
    wait_text(&si, ADMIN, "User 201: PRO until", SHORT);
    si.send_text(&admin, "/user 201");
    wait_text(&si, ADMIN, "Plan: PRO, until", SHORT);
    si.send_text(&admin, "/ban 999999");
    wait_text(&si, ADMIN, "No user 999999.", SHORT);

    // Forged buttons: another user's draft, a paid option the tier lacks, garbage. Nothing changes.
    si.send_video(&a, sample(), "a.mp4", 11, None);
    let c = wait_text(&si, 201, "What should I do", SHORT);
    let kb = sent_message(&c, 201, "What should I do");
    let start = button(&si, 201, kb, "Start");
    let draft: i64 = start.split(':').nth(1).unwrap().parse().unwrap();
    let other = TgUser::new(204, "en");
    si.send_text(&other, "/start");
    let c = wait_text(&si, 204, "Hi!", SHORT);
    let m = sent_message(&c, 204, "Hi!");
    si.press(&other, m, &format!("go:{draft}"));
    assert_eq!(
        nth_answer(&si, 1).text.as_deref(),
        Some("This button is no longer valid.")
    );
    si.press(&a, kb, &format!("d:{draft}:o:1"));
    let ans = nth_answer(&si, 2);
    assert!(
        ans.text
            .as_deref()
            .unwrap_or_default()
            .contains("Voice-over is not part of the PRO plan; CREATOR includes it"),
        "{ans:?}"
    );
    si.press(&a, kb, "zz:1");
    assert_eq!(
        nth_answer(&si, 3).text.as_deref(),
        Some("This button is no longer valid.")
    );
    let req = s.rt.block_on(store.bot_request(draft)).unwrap().unwrap();
    assert_eq!(req.status, autosub_store::RequestStatus::Draft);
    assert!(
        !req.options.contains("\"voiceover\":true"),
        "{}",
        req.options
    );
    assert!(s.rt.block_on(store.user_tasks(201, 10)).unwrap().is_empty());

    // Flood: the 21st message in a minute gets one warning, the rest nothing.
    let f = TgUser::new(205, "en");
    for _ in 0..25 {
        si.send_text(&f, "hello");
    }
    wait_text(&si, 205, "too fast", SHORT);
    std::thread::sleep(Duration::from_secs(1));
    let c = si.calls();
    assert_eq!(
        texts(&c, 205)
            .iter()
            .filter(|t| t.contains("Send me a video"))
            .count(),
        20
    );
    assert_eq!(
        texts(&c, 205)
            .iter()
            .filter(|t| t.contains("too fast"))
            .count(),
        1
    );

    // Flood control (429): the answer waits as long as asked, then goes once.
    si.fail_next("sendMessage", 1, 2);
    let g = TgUser::new(206, "en");
    si.send_text(&g, "/me");
    let c = wait_text(&si, 206, "Plan: FREE", SHORT);
    let tries: Vec<&Call> = c
        .iter()
        .filter(|c| c.method == "sendMessage" && c.chat_id == Some(206))
        .collect();
    assert_eq!(tries.len(), 2, "{}", si.dump_calls(&c));
    assert_eq!(tries[0].status, 429);
    assert!(tries[1].at.duration_since(tries[0].at) >= Duration::from_millis(1900));

    // Broadcast: every user once, the blocked one counted; the admin gets the report.
    si.block(205);
    let users_with_chats = 6; // 900, 201, 202, 204, 205, 206
    si.send_text(&admin, "/broadcast Maintenance at 22:00 UTC");
    let c = wait_text(&si, ADMIN, "finished: delivered to", SHORT);
    assert!(
        has(
            &c,
            ADMIN,
            &format!(
                "delivered to {}, 1 had blocked the bot, 0 failed",
                users_with_chats - 1
            )
        ),
        "{:?}",
        texts(&c, ADMIN)
    );
    for chat in [ADMIN, 201, 202, 204, 206] {
        assert_eq!(
            texts(&c, chat)
                .iter()
                .filter(|t| *t == "Maintenance at 22:00 UTC")
                .count(),
            1,
            "chat {chat}"
        );
    }

    // An ERROR in the system log reaches the admin.
    s.rt.block_on(store.log(
        Level::Error,
        "test",
        None,
        "disk almost full",
        autosub_store::now_ms(),
    ))
    .unwrap();
    wait_text(&si, ADMIN, "disk almost full", SHORT);
    // /logs lists it too.
    si.send_text(&admin, "/logs 5");
    si.wait_until(SHORT, |c| {
        texts(c, ADMIN)
            .iter()
            // The alert says it too; the /logs answer is the one that starts with the date.
            .filter(|t| t.starts_with("20") && t.contains("ERROR [test] disk almost full"))
            .count()
            == 1
    });
    no_secret_in(&s.log("serve"));
}

/// Waits until some task is processing by a worker whose id starts with `worker`; its id.
fn processing_by(s: &Service, store: &Store, worker: &str) -> Option<i64> {
    let rows =
        s.rt.block_on(store.list_tasks(Some("processing"), 20))
            .unwrap();
    rows.iter()
        .find(|t| {
            t.lease_owner
                .as_deref()
                .is_some_and(|o| o.starts_with(worker))
        })
        .map(|t| t.id)
}

#[test]
fn bot_two_workers_and_billing_on_postgres_survive_sigkill_and_deliver_exactly_once() {
    let si = StandIn::spawn(TOKEN);
    let mut s = service(Db::Postgres, &si);
    let t0 = Instant::now();
    let bot = spawn(&mut s, "bot", &["bot"], &[]);
    wait_polling(&si, t0);
    let w1 = spawn(&mut s, "w1", &["worker", "--concurrency", "1"], &[]);
    spawn(&mut s, "w2", &["worker", "--concurrency", "1"], &[]);
    spawn(&mut s, "billing", &["billing"], &[]);
    // Both workers up before the two tasks exist, so that each takes one (w1 is the one killed).
    let t1 = Instant::now();
    while !(s.log("w1").contains("worker started") && s.log("w2").contains("worker started")) {
        assert!(
            t1.elapsed() < SHORT,
            "workers did not start\n{}\n{}",
            s.log("w1"),
            s.log("w2")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let store = s.store();
    let users: Vec<TgUser> = (301..=304).map(|id| TgUser::new(id, "en")).collect();
    si.send_video(&users[0], sample(), "one.mp4", 11, Some("--vertical"));
    si.send_video(&users[3], sample(), "four.mp4", 11, Some("--vertical"));
    si.send_video(&users[1], sample(), "two.mp4", 11, None);
    let c = wait_text(&si, 302, "What should I do", SHORT);
    let kb = sent_message(&c, 302, "What should I do");

    // Two tasks for two workers: kill w1 while it holds one.
    let t1 = Instant::now();
    let victim = loop {
        if let Some(id) = processing_by(&s, &store, "w1/") {
            break id;
        }
        assert!(t1.elapsed() < LONG, "w1 took no task\n{}", s.log("w1"));
        std::thread::sleep(Duration::from_millis(20));
    };
    s.signal(w1, "-KILL");
    spawn(&mut s, "w3", &["worker", "--concurrency", "1"], &[]);

    // Kill the bot too; what users do meanwhile waits in Telegram and is handled after the restart.
    s.signal(bot, "-KILL");
    s.wait_exit(bot, SHORT);
    let start = button(&si, 302, kb, "Start");
    si.press(&users[1], kb, &start);
    si.send_video(&users[2], sample(), "three.mp4", 11, Some("--vertical"));
    std::thread::sleep(Duration::from_millis(500));
    let t2 = Instant::now();
    spawn(&mut s, "bot", &["bot"], &[]);
    wait_polling(&si, t2);

    for u in &users {
        // User 302 started from the keyboard without choosing vertical.
        let want: &[&str] = if u.id == 302 {
            &["Subtitles burned in"]
        } else {
            &["vertical 9:16"]
        };
        delivered_once(&si, u.id, want);
    }
    let rescued = s.rt.block_on(store.get_task(victim)).unwrap().unwrap();
    assert_eq!(rescued.status, autosub_store::TaskStatus::Completed);
    assert!(rescued.attempts >= 2, "{rescued:?}");
    // Every update was handled once: one request per message, one task per user.
    for u in &users {
        assert_eq!(
            s.rt.block_on(store.user_tasks(u.id, 10)).unwrap().len(),
            1,
            "user {}",
            u.id
        );
    }
    // Every update confirmed to Telegram (the offset moved past them).
    let t3 = Instant::now();
    while si.pending_updates() > 0 {
        assert!(t3.elapsed() < SHORT, "updates left unconfirmed");
        std::thread::sleep(Duration::from_millis(50));
    }
    for name in ["bot", "w1", "w2", "w3", "billing"] {
        no_secret_in(&s.log(name));
    }
}

#[test]
fn big_results_go_as_signed_links_and_a_failure_offers_a_retry() {
    let si = StandIn::spawn(TOKEN);
    let mut s = service(Db::Sqlite, &si);
    let addr = format!("127.0.0.1:{}", free_port());
    let public = format!("http://{addr}");
    let t0 = Instant::now();
    spawn(
        &mut s,
        "serve",
        &["serve"],
        &[
            ("AUTOSUB_WORKERS", "1"),
            ("AUTOSUB_HTTP_ADDR", &addr),
            ("AUTOSUB_PUBLIC_URL", &public),
            ("AUTOSUB_TELEGRAM_UPLOAD_LIMIT", "20000"),
        ],
    );
    wait_polling(&si, t0);
    let u = TgUser::new(401, "en");
    si.send_video(&u, sample(), "talk.mp4", 11, Some("--vertical"));
    let c = wait_text(&si, 401, "Download it here", LONG);
    let text = texts(&c, 401)
        .into_iter()
        .find(|t| t.contains("Download it here"))
        .unwrap();
    let url = text.lines().last().unwrap().to_owned();
    let path = url
        .strip_prefix(&public)
        .expect("a link to AUTOSUB_PUBLIC_URL");
    assert!(path.starts_with("/d/"), "{url}");
    let (status, body) = http_get(&addr, path);
    assert_eq!(status, 200);
    assert!(body.len() > 20_000, "{} bytes", body.len());
    let store = s.store();
    let task = &s.rt.block_on(store.user_tasks(401, 1)).unwrap()[0];
    let out: serde_json::Value = serde_json::from_str(task.outputs.as_deref().unwrap()).unwrap();
    let video = std::fs::read(out["video"].as_str().unwrap()).unwrap();
    assert_eq!(body, video, "the link serves the result");
    // A forged or altered link is refused.
    let mut forged = path.to_owned();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    assert_eq!(http_get(&addr, &forged).0, 403);
    assert_eq!(http_get(&addr, "/d/1.99999999999999.6f7574.00").0, 403);
    let c = si.wait_until(SHORT, |c| count(c, 401, "sendDocument") == 1);
    assert_eq!(count(&c, 401, "sendVideo"), 0);

    // A video without sound fails in the worker: the user gets the reason and a retry button; retrying runs it
    // again and reports again.
    let dir = tempfile::tempdir().unwrap();
    let silent = dir.path().join("silent.mp4");
    common::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=duration=2:size=320x240:rate=10",
        "-pix_fmt",
        "yuv420p",
        silent.to_str().unwrap(),
    ]);
    let v = TgUser::new(402, "en");
    si.send_video(
        &v,
        std::fs::read(&silent).unwrap(),
        "silent.mp4",
        2,
        Some("--vertical"),
    );
    let c = wait_text(&si, 402, "failed:", LONG);
    let failed = c
        .iter()
        .rev()
        .find(|c| {
            c.ok()
                && c.chat_id == Some(402)
                && c.text.as_deref().is_some_and(|t| t.contains("failed:"))
        })
        .unwrap();
    let mid = failed.message_id.unwrap();
    let retry = button(&si, 402, mid, "Try again");
    si.press(&v, mid, &retry);
    si.wait_until(LONG, |c| {
        c.iter()
            .filter(|c| {
                c.ok()
                    && c.chat_id == Some(402)
                    && c.text.as_deref().is_some_and(|t| t.contains("failed:"))
            })
            .count()
            >= 2
    });
    let task = &s.rt.block_on(store.user_tasks(402, 5)).unwrap();
    assert_eq!(task.len(), 1, "a retry runs the same task again");
    no_secret_in(&s.log("serve"));
}

/// `n` copies of the sample clip as an album's files.
fn album_files(n: usize) -> Vec<AlbumFile> {
    (1..=n)
        .map(|i| AlbumFile {
            bytes: sample(),
            file_name: format!("part{i}.mp4"),
            duration_s: 11,
            kind: AlbumKind::Video,
        })
        .collect()
}

/// The results sent to `chat` once every one of `labels` ("1/3", ...) has a video: each video exactly once (with
/// its label, `caption_has` in its caption) and each .srt exactly once (labelled the same).
fn album_delivered_once(si: &StandIn, chat: i64, labels: &[&str], caption_has: &str) {
    let labelled = |c: &[Call], method: &str, label: &str| {
        c.iter()
            .filter(|c| c.ok() && c.chat_id == Some(chat) && c.method == method)
            .filter(|c| {
                let text = c.text.as_deref().unwrap_or_default();
                text == label || text.starts_with(&format!("{label} · "))
            })
            .count()
    };
    si.wait_until(LONG, |c| {
        labels
            .iter()
            .all(|l| labelled(c, "sendVideo", l) >= 1 && labelled(c, "sendDocument", l) >= 1)
    });
    // Time for a duplicate to show up, if the bot were to send one.
    std::thread::sleep(Duration::from_millis(1500));
    let calls = si.calls();
    for l in labels {
        assert_eq!(labelled(&calls, "sendVideo", l), 1, "videos {l}");
        assert_eq!(labelled(&calls, "sendDocument", l), 1, "subtitles {l}");
    }
    assert_eq!(count(&calls, chat, "sendVideo"), labels.len());
    assert_eq!(count(&calls, chat, "sendDocument"), labels.len());
    for c in calls
        .iter()
        .filter(|c| c.ok() && c.chat_id == Some(chat) && c.method == "sendVideo")
    {
        let text = c.text.as_deref().unwrap_or_default();
        assert!(text.contains(caption_has), "{text}");
        assert!(c.file_bytes.unwrap_or(0) > 10_000);
    }
}

/// Waits (polling every 50 ms, at most `SHORT`) until `done()`; `what` names it in the failure.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < SHORT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether every request of `user`'s media group `group` is in status `status`.
fn group_all(
    s: &Service,
    store: &Store,
    user: i64,
    group: &str,
    status: autosub_store::RequestStatus,
) -> bool {
    s.rt.block_on(store.bot_group(user, group))
        .unwrap()
        .iter()
        .all(|r| r.status == status)
}

/// Waits until message `mid` of `chat` reads `text` exactly.
fn wait_message(si: &StandIn, chat: i64, mid: i64, text: &str, within: Duration) {
    let t0 = Instant::now();
    loop {
        let now = si.message(chat, mid).and_then(|m| m.text);
        if now.as_deref() == Some(text) {
            return;
        }
        assert!(
            t0.elapsed() < within,
            "message {mid} reads {now:?}, not {text:?}\n{}",
            si.dump_calls(&si.calls())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_album_becomes_one_task_per_file_reported_in_one_message_on_sqlite() {
    let si = StandIn::spawn(TOKEN);
    let mut s = service(Db::Sqlite, &si);
    let t0 = Instant::now();
    spawn(&mut s, "serve", &["serve"], &[("AUTOSUB_WORKERS", "1")]);
    wait_polling(&si, t0);
    let store = s.store();
    let u = TgUser::new(111, "en");

    // An album without a caption: one keyboard, for all three files (its text counts them as they come).
    si.send_album(&u, "album-1", album_files(3), None);
    let c = wait_text(&si, 111, "An album of", SHORT);
    let kb = sent_message(&c, 111, "An album of");
    let choose3 =
        "An album of 3 files: what should I do with them? The options apply to every file.";
    wait_message(&si, 111, kb, choose3, SHORT);
    let vertical = button(&si, 111, kb, "Vertical");
    let leader: i64 = vertical.split(':').nth(1).unwrap().parse().unwrap();
    // The other files have no keyboard: a forged press naming one of them is stale and starts nothing.
    si.press(&u, kb, &format!("go:{}", leader + 1));
    assert_eq!(
        nth_answer(&si, 1).text.as_deref(),
        Some("This button is no longer valid.")
    );
    si.press(&u, kb, &format!("d:{}:v:1", leader + 2));
    assert_eq!(
        nth_answer(&si, 2).text.as_deref(),
        Some("This button is no longer valid.")
    );
    si.press(&u, kb, &vertical);
    nth_answer(&si, 3);
    wait_message(&si, 111, kb, choose3, SHORT);
    assert!(
        button(&si, 111, kb, "Vertical").ends_with(":v:0"),
        "vertical is on"
    );
    assert!(s.rt.block_on(store.user_tasks(111, 10)).unwrap().is_empty());
    let start = button(&si, 111, kb, "Start");
    si.press(&u, kb, &start);

    // One task per file, each result once and labelled with its place; the keyboard's message reports the album.
    album_delivered_once(&si, 111, &["1/3", "2/3", "3/3"], "vertical 9:16");
    let done = "📦 Album: 3 files\n✅ done: 3\nNothing more to do for this album.";
    wait_message(&si, 111, kb, done, SHORT);
    let calls = si.calls();
    assert!(si.message(111, kb).unwrap().reply_markup.is_none());
    assert!(
        calls.iter().any(|c| c.ok()
            && c.message_id == Some(kb)
            && c.text
                .as_deref()
                .is_some_and(|t| t.contains("⏳ waiting") || t.contains("⚙️ processing"))),
        "{}",
        si.dump_calls(&calls)
    );
    assert_eq!(
        count(&calls, 111, "sendMessage"),
        1,
        "everything else edits the album's message\n{}",
        si.dump_calls(&calls)
    );
    let tasks = s.rt.block_on(store.user_tasks(111, 10)).unwrap();
    assert_eq!(tasks.len(), 3);
    assert!(tasks
        .iter()
        .all(|t| t.vertical_format && t.status == autosub_store::TaskStatus::Completed));

    // FREE allows 3 tasks a day, all used: another album is refused once, not once per file.
    let updates = si.send_album(&u, "album-2", album_files(2), Some("--vertical"));
    let last = *updates.last().unwrap();
    si.wait_until(SHORT, |_| si.confirmed_up_to() >= last);
    wait_for("the album's files refused", || {
        group_all(
            &s,
            &store,
            111,
            "album-2",
            autosub_store::RequestStatus::Refused,
        )
    });
    // Time for a second refusal (or an album message) to show up, if the bot were to send one.
    std::thread::sleep(Duration::from_millis(1500));
    let calls = si.calls();
    let refusals = texts(&calls, 111)
        .iter()
        .filter(|t| t.contains("You have used today's 3 tasks of the FREE plan"))
        .count();
    assert_eq!(refusals, 1, "{}", si.dump_calls(&calls));
    assert_eq!(
        count(&calls, 111, "sendMessage"),
        2,
        "the keyboard, the refusal"
    );
    assert_eq!(s.rt.block_on(store.user_tasks(111, 10)).unwrap().len(), 3);

    // A fresh FREE user's album of four videos and two photos with a caption: started at once; the photos refused
    // once; three videos queued, the fourth refused by the daily limit, said once, counted in the album's message.
    let v = TgUser::new(112, "en");
    let mut files = album_files(4);
    for at in [1, 3] {
        files.insert(
            at,
            AlbumFile {
                bytes: vec![0xff, 0xd8, 0xff, 0xe0],
                file_name: "photo.jpg".into(),
                duration_s: 0,
                kind: AlbumKind::Photo,
            },
        );
    }
    si.send_album(&v, "album-3", files, Some("--vertical"));
    let c = wait_text(&si, 112, "Got the album", SHORT);
    let status = sent_message(&c, 112, "Got the album");
    album_delivered_once(&si, 112, &["1/4", "2/4", "3/4"], "vertical 9:16");
    let done =
        "📦 Album: 4 files\n✅ done: 3\n🚫 not started: 1\nNothing more to do for this album.";
    wait_message(&si, 112, status, done, SHORT);
    let limit = texts(&si.calls(), 112)
        .into_iter()
        .filter(|t| t.contains("You have used today's 3 tasks"))
        .collect::<Vec<_>>();
    assert_eq!(limit.len(), 1, "{limit:?}");
    assert!(limit[0].starts_with("Album file 4: "), "{}", limit[0]);
    let photos = texts(&si.calls(), 112)
        .into_iter()
        .filter(|t| t.contains("Send me a video, an audio file or a link"))
        .count();
    assert_eq!(photos, 1);
    assert_eq!(s.rt.block_on(store.user_tasks(112, 10)).unwrap().len(), 3);
    assert_eq!(
        s.rt.block_on(store.get_user(112))
            .unwrap()
            .unwrap()
            .tasks_today,
        3
    );
    no_secret_in(&s.log("serve"));
}

#[test]
fn albums_on_postgres_cancel_together_survive_a_bot_kill_and_take_a_late_file() {
    let si = StandIn::spawn(TOKEN);
    let mut s = service(Db::Postgres, &si);
    let t0 = Instant::now();
    let bot = spawn(&mut s, "bot", &["bot"], &[]);
    wait_polling(&si, t0);
    let store = s.store();
    let u = TgUser::new(121, "ru");
    s.rt.block_on(store.grant(121, Tier::Creator, 30, autosub_store::now_ms()))
        .unwrap();
    let tasks = |s: &Service| s.rt.block_on(store.user_tasks(121, 20)).unwrap();

    // No worker yet: an album of three waits in the queue; its "cancel the album" button cancels all three.
    si.send_album(&u, "a", album_files(3), Some("--vertical"));
    let c = wait_text(&si, 121, "Принял альбом", SHORT);
    let status_a = sent_message(&c, 121, "Принял альбом");
    // All three checked and queued (files being checked count as waiting too).
    wait_for("the album's files queued", || {
        group_all(&s, &store, 121, "a", autosub_store::RequestStatus::Queued)
    });
    wait_message(
        &si,
        121,
        status_a,
        "📦 Альбом, файлов: 3\n⏳ в очереди: 3",
        SHORT,
    );
    assert_eq!(tasks(&s).len(), 3);
    // Someone else's press is refused and cancels nothing.
    let cancel = button(&si, 121, status_a, "Отменить альбом");
    let other = TgUser::new(122, "en");
    si.send_text(&other, "/start");
    let c = wait_text(&si, 122, "Hi!", SHORT);
    // (A forged press: the album's button data under a message of the other user's own chat.)
    si.press(&other, sent_message(&c, 122, "Hi!"), &cancel);
    assert_eq!(
        nth_answer(&si, 1).text.as_deref(),
        Some("This is not your task.")
    );
    assert!(tasks(&s)
        .iter()
        .all(|t| t.status == autosub_store::TaskStatus::Queued));
    si.press(&u, status_a, &cancel);
    wait_message(
        &si,
        121,
        status_a,
        "📦 Альбом, файлов: 3\n✖️ отменено: 3\nАльбом завершён.",
        SHORT,
    );
    assert!(tasks(&s)
        .iter()
        .all(|t| t.status == autosub_store::TaskStatus::Cancelled));
    // A file of the cancelled album arriving late is dropped: no task.
    let late = si.send_album(&u, "a", album_files(1), None);
    si.wait_until(SHORT, |_| si.confirmed_up_to() >= late[0]);
    let a = s.rt.block_on(store.bot_group(121, "a")).unwrap();
    assert_eq!(a.len(), 4);
    assert_eq!(a[3].status, autosub_store::RequestStatus::Dropped);
    assert_eq!(tasks(&s).len(), 3);

    // An album of two, the bot killed right after it arrives and started again: one task per file, still.
    let updates = si.send_album(&u, "b", album_files(2), Some("--vertical"));
    s.signal(bot, "-KILL");
    s.wait_exit(bot, SHORT);
    let t1 = Instant::now();
    spawn(&mut s, "bot", &["bot"], &[]);
    wait_polling(&si, t1);
    si.wait_until(SHORT, |_| si.confirmed_up_to() >= updates[1]);
    wait_for("5 tasks", || tasks(&s).len() >= 5);
    // A file of the album arriving after it started joins it with its options.
    si.send_album(&u, "b", album_files(1), None);
    wait_for("6 tasks", || tasks(&s).len() >= 6);
    let b: Vec<_> = tasks(&s)
        .into_iter()
        .filter(|t| t.status != autosub_store::TaskStatus::Cancelled)
        .collect();
    assert_eq!(b.len(), 3);
    assert!(b.iter().all(|t| t.vertical_format), "{b:?}");
    let album_b =
        s.rt.block_on(store.bot_album_find(121, "b"))
            .unwrap()
            .expect("album b");
    let status_b = album_b.status_message_id.expect("album b has its message");

    spawn(&mut s, "w1", &["worker", "--concurrency", "1"], &[]);
    album_delivered_once(&si, 121, &["1/3", "2/3", "3/3"], "вертикально");
    wait_message(
        &si,
        121,
        status_b,
        "📦 Альбом, файлов: 3\n✅ готово: 3\nАльбом завершён.",
        LONG,
    );
    let t4 = Instant::now();
    while si.pending_updates() > 0 {
        assert!(t4.elapsed() < SHORT, "updates left unconfirmed");
        std::thread::sleep(Duration::from_millis(50));
    }
    for name in ["bot", "w1"] {
        no_secret_in(&s.log(name));
    }
}
