//! Queue overhead: how many trivial jobs (`sleep` with 0 ms) N `autosub worker` processes claim and finish per
//! second on one database. Run by scripts/bench/service.sh:
//!
//! ```text
//! cargo run --release -p autosub-service --example queue_bench -- BIN sqlite|postgres WORKERS JOBS
//! ```
//!
//! The rate is measured from the database's own times: jobs / (last `finished_at` - first `started_at`), so worker
//! start-up is not counted. PostgreSQL: a fresh database on `postgres://postgres@127.0.0.1:5432` (or
//! `$AUTOSUB_TEST_PG_URL`), dropped at the end.

use autosub_store::{NewTask, Store, TaskStatus, Tier};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn psql(sql: &str) {
    let base = std::env::var("AUTOSUB_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let ok = Command::new("psql")
        .args([base.as_str(), "-qc", sql])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "psql {sql} failed");
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bin, db, workers, jobs] = &args[..] else {
        eprintln!("usage: queue_bench AUTOSUB_BIN sqlite|postgres WORKERS JOBS");
        std::process::exit(2);
    };
    let workers: usize = workers.parse().expect("WORKERS is a number");
    let jobs: usize = jobs.parse().expect("JOBS is a number");
    let tmp = tempfile::tempdir().unwrap();
    let (url, pg) = match db.as_str() {
        "sqlite" => (
            format!("sqlite:{}", tmp.path().join("bench.db").display()),
            None,
        ),
        "postgres" => {
            let name = format!("autosub_bench_{}", std::process::id());
            psql(&format!("DROP DATABASE IF EXISTS {name}"));
            psql(&format!("CREATE DATABASE {name}"));
            (
                format!("postgres://postgres@127.0.0.1:5432/{name}"),
                Some(name),
            )
        }
        other => panic!("unknown database {other}"),
    };
    let store = Store::connect(&url).await.unwrap();
    let now = autosub_store::now_ms();
    for _ in 0..jobs {
        let t = NewTask {
            kind: "sleep".into(),
            spec: r#"{"ms": 0}"#.into(),
            spec_version: 1,
            input_type: "bench".into(),
            tier: Tier::Free,
            ..Default::default()
        };
        store.enqueue(&t, now).await.unwrap();
    }
    let mut children: Vec<_> = (0..workers)
        .map(|i| {
            Command::new(bin)
                .arg("worker")
                .env("AUTOSUB_DATABASE_URL", &url)
                .env("AUTOSUB_DATA_DIR", tmp.path().join("data"))
                .env("AUTOSUB_WORKER_ID", format!("bench-{i}"))
                .env("AUTOSUB_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let t0 = Instant::now();
    loop {
        let done = store
            .list_tasks(Some(TaskStatus::Completed.as_str()), 1)
            .await
            .unwrap();
        let left = store
            .status_counts()
            .await
            .unwrap()
            .iter()
            .filter(|(s, _, _)| s != "completed")
            .map(|x| x.2)
            .sum::<i64>();
        if left == 0 && !done.is_empty() {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(600), "jobs not finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let rows = store.list_tasks(None, jobs as i64).await.unwrap();
    let first = rows.iter().filter_map(|t| t.started_at).min().unwrap();
    let last = rows.iter().filter_map(|t| t.finished_at).max().unwrap();
    let secs = (last - first).max(1) as f64 / 1000.0;
    println!(
        "{db}: {jobs} jobs, {workers} workers: {secs:.2} s, {:.0} jobs/s",
        jobs as f64 / secs
    );
    store.close().await;
    if let Some(name) = pg {
        psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
}
