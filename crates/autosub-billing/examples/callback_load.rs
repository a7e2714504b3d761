//! Load benchmark of the payment callback: a real `autosub billing` process on SQLite or PostgreSQL, Platega played
//! by the project's stand-in in this process. Reports answer times (p50, p95, max) of
//! - `/healthz` (the baseline: an HTTP round trip to the same server),
//! - first callbacks: N paid transactions, each called back once (read back from Platega, activated), 10 at a time,
//! - replays: every transaction called back 10 times at once (Platega's retries, an attacker's replays),
//! - forged: 1000 callbacks with wrong credentials, 20 at a time,
//!
//! and checks that every user was activated once (one notice each), and that the forged burst wrote at most one
//! journal row.
//!
//! `cargo run --release -p autosub-billing --example callback_load -- AUTOSUB_BIN DATABASE_URL [N]`.
//! Used by scripts/bench/billing.sh.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use autosub_billing::standin::{Creds, StandIn};
use autosub_billing::{Billing, BillingConfig};
use autosub_store::{Level, PaymentPeriod, Store, Tier};
use tokio::sync::Semaphore;

const MERCHANT: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const SECRET: &str = "bench_MERCHANT_SECRET";

fn pct(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, v: &[Duration]) {
    println!(
        "{name:<12} n={:<5} p50={:>7.2} ms  p95={:>7.2} ms  max={:>7.2} ms",
        v.len(),
        pct(v.to_vec(), 0.5).as_secs_f64() * 1e3,
        pct(v.to_vec(), 0.95).as_secs_f64() * 1e3,
        v.iter().max().unwrap().as_secs_f64() * 1e3,
    );
}

/// Fires `jobs` (transaction id, credentials) at `url`, `parallel` at a time; answer times and statuses.
async fn fire(
    p: &StandIn,
    url: &str,
    jobs: Vec<(String, Creds)>,
    parallel: usize,
) -> (Vec<Duration>, Vec<u16>) {
    let gate = Arc::new(Semaphore::new(parallel));
    let mut handles = vec![];
    for (id, creds) in jobs {
        let (p, url, gate) = (p.clone(), url.to_owned(), gate.clone());
        handles.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let t = Instant::now();
            let (status, _) = p.fire_callback(&url, &id, creds).await;
            (t.elapsed(), status)
        }));
    }
    let mut times = vec![];
    let mut statuses = vec![];
    for h in handles {
        let (t, s) = h.await.unwrap();
        times.push(t);
        statuses.push(s);
    }
    (times, statuses)
}

async fn get(url: &str) -> Duration {
    let t = Instant::now();
    let r = reqwest::get(url).await.unwrap();
    assert!(r.status().is_success());
    t.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (bin, db) = (&args[1], &args[2]);
    let n: usize = args.get(3).map_or(200, |s| s.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let platega = StandIn::spawn(MERCHANT, SECRET).await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let store = Store::connect(db).await.unwrap();
    // The payments, made as the bot makes them (through the library, against the stand-in).
    let cfg = BillingConfig::from_vars(
        |k| match k {
            "AUTOSUB_PLATEGA_API_URL" => Some(platega.url()),
            "AUTOSUB_PLATEGA_MERCHANT_ID" => Some(MERCHANT.into()),
            "AUTOSUB_PLATEGA_SECRET" => Some(SECRET.into()),
            _ => None,
        },
        Some(base.clone()),
    )
    .unwrap();
    let billing = Billing::new(store.clone(), cfg).unwrap();
    let mut buys = vec![];
    for i in 0..n {
        let t = Instant::now();
        billing
            .buy(
                1_000_000 + i as i64,
                Tier::Pro,
                PaymentPeriod::Month,
                &format!("bench:{i}"),
                autosub_store::now_ms(),
            )
            .await
            .unwrap();
        buys.push(t.elapsed());
    }
    let ids: Vec<String> = platega.transactions().into_iter().map(|t| t.id).collect();
    for id in &ids {
        platega.set_status(id, "CONFIRMED");
    }
    let log = std::fs::File::create(dir.path().join("billing.log")).unwrap();
    let mut child = Command::new(bin)
        .arg("billing")
        .env("AUTOSUB_DATA_DIR", dir.path().join("data"))
        .env("AUTOSUB_DATABASE_URL", db)
        .env("AUTOSUB_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("AUTOSUB_PUBLIC_URL", &base)
        .env("AUTOSUB_PLATEGA_API_URL", platega.url())
        .env("AUTOSUB_PLATEGA_MERCHANT_ID", MERCHANT)
        .env("AUTOSUB_PLATEGA_SECRET", SECRET)
        .env("AUTOSUB_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let health = format!("{base}/healthz");
    let t = Instant::now();
    while reqwest::get(&health).await.is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "billing did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("{base}/billing/platega/callback");
    let mut healthz = vec![];
    for _ in 0..n {
        healthz.push(get(&health).await);
    }
    let (first, s1) = fire(
        &platega,
        &url,
        ids.iter().map(|id| (id.clone(), Creds::Right)).collect(),
        10,
    )
    .await;
    let replay_jobs: Vec<(String, Creds)> = ids
        .iter()
        .flat_map(|id| std::iter::repeat_n((id.clone(), Creds::Right), 10))
        .collect();
    let (replays, s2) = fire(&platega, &url, replay_jobs, 100).await;
    let forged_jobs = (0..1000)
        .map(|i| (ids[i % ids.len()].clone(), Creds::Wrong))
        .collect();
    let logs_before = store
        .recent_logs(Level::Warning, 100_000)
        .await
        .unwrap()
        .len();
    let (forged, s3) = fire(&platega, &url, forged_jobs, 20).await;
    let logs_after = store
        .recent_logs(Level::Warning, 100_000)
        .await
        .unwrap()
        .len();
    let _ = child.kill();
    let _ = child.wait();

    let mut activated = 0;
    for i in 0..n {
        let id = 1_000_000 + i as i64;
        let notices = store.user_notices(id).await.unwrap();
        let user = store.get_user(id).await.unwrap().unwrap();
        if user.tier == Tier::Pro && notices.len() == 1 {
            activated += 1;
        }
    }
    println!("database     {}", autosub_store::mask_url(db));
    report("buy (create)", &buys);
    report("healthz", &healthz);
    report("first", &first);
    report("replays", &replays);
    report("forged", &forged);
    println!(
        "statuses     first all 200: {}, replays all 200: {}, forged all 401: {}",
        s1.iter().all(|s| *s == 200),
        s2.iter().all(|s| *s == 200),
        s3.iter().all(|s| *s == 401)
    );
    println!("activated    {activated} of {n} users, one notice each");
    println!(
        "journal      {} rows for 1000 forged callbacks",
        logs_after - logs_before
    );
    let slowest = first.iter().chain(&replays).chain(&forged).max().unwrap();
    println!(
        "verdict      slowest callback answer {:.1} ms (goal < 1000 ms): {}",
        slowest.as_secs_f64() * 1e3,
        if *slowest < Duration::from_secs(1) && activated == n {
            "PASS"
        } else {
            "FAIL"
        }
    );
}
