//! The service across real processes: `autosub worker` / `serve` processes on one database (SQLite file or a fresh
//! PostgreSQL database), jobs queued through the store library or `autosub submit`, workers killed with SIGKILL,
//! stopped with SIGTERM, jobs cancelled and timed out. Queue semantics use the trivial `sleep` job kind; one test
//! runs the real pipeline through `submit --wait`.

mod common;

use autosub_store::{NewTask, TaskStatus, Tier};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::service::{files_in, free_port, psql, Db, Service};

fn three_workers_one_killed(db: Db) {
    let mut s = Service::new(db);
    let store = s.store();
    let ids: Vec<i64> = (0..9)
        .map(|_| s.sleep_task(&store, r#"{"ms": 1500}"#, None))
        .collect();
    let workers: Vec<usize> = ["w1", "w2", "w3"]
        .iter()
        .map(|w| s.spawn(w, &["worker"]))
        .collect();
    // Kill w1 while it holds a job.
    let t0 = Instant::now();
    let victim = loop {
        let rows =
            s.rt.block_on(store.list_tasks(Some("processing"), 20))
                .unwrap();
        if let Some(t) = rows.iter().find(|t| {
            t.lease_owner
                .as_deref()
                .is_some_and(|o| o.starts_with("w1/"))
        }) {
            break t.id;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "w1 took no job");
        std::thread::sleep(Duration::from_millis(20));
    };
    s.signal(workers[0], "-KILL");
    for &id in &ids {
        let t = s.wait_task(&store, id, Duration::from_secs(120), |t| {
            t.status.is_finished()
        });
        assert_eq!(t.status, TaskStatus::Completed, "{t:?}");
        let out: serde_json::Value = serde_json::from_str(t.outputs.as_deref().unwrap()).unwrap();
        let file = PathBuf::from(out["files"]["txt"].as_str().unwrap());
        assert!(file.is_file(), "{}", file.display());
        // The outputs once: one finished file, no partial file left by the killed worker.
        let dir = s.data_dir.join(format!("storage/task_{id}"));
        assert_eq!(
            files_in(&dir),
            vec!["out/slept.txt".to_owned()],
            "task {id}"
        );
    }
    let rescued = s.task(&store, victim);
    assert_eq!(rescued.attempts, 2, "{rescued:?}");
    assert!(!rescued.lease_owner.as_deref().unwrap().starts_with("w1/"));
    let logs =
        s.rt.block_on(store.recent_logs(autosub_store::Level::Warning, 50))
            .unwrap();
    assert!(
        logs.iter().any(|l| l.task_id == Some(victim)),
        "no system_logs row for the rescue of task {victim}: {logs:?}"
    );
}

#[test]
fn three_workers_on_postgres_one_killed_with_sigkill_nine_jobs_completed_once() {
    three_workers_one_killed(Db::Postgres);
}

#[test]
fn three_workers_on_sqlite_one_killed_with_sigkill_nine_jobs_completed_once() {
    three_workers_one_killed(Db::Sqlite);
}

fn cancel_timeout_panic_and_drain(db: Db) {
    let mut s = Service::new(db);
    let store = s.store();
    let w = s.spawn("w", &["worker", "--concurrency", "2"]);
    // Cancel: a long job stops within seconds and frees its slot.
    let long = s.sleep_task(&store, r#"{"ms": 600000}"#, None);
    s.wait_task(&store, long, Duration::from_secs(30), |t| {
        t.status == TaskStatus::Processing
    });
    let r = s.run(&["jobs", "cancel", &long.to_string()]).ok();
    assert!(r.stdout.contains("running"), "{}", r.stdout);
    let t0 = Instant::now();
    let t = s.wait_task(&store, long, Duration::from_secs(10), |t| {
        t.status.is_finished()
    });
    assert_eq!(t.status, TaskStatus::Cancelled);
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // Timeout: the tier's (here the task's) limit fails the job, not retried.
    let slow = s.sleep_task(&store, r#"{"ms": 600000}"#, Some(1000));
    let t = s.wait_task(&store, slow, Duration::from_secs(20), |t| {
        t.status.is_finished()
    });
    assert_eq!(t.status, TaskStatus::Failed);
    assert_eq!(t.attempts, 1);
    assert!(t.error.as_deref().unwrap().contains("took longer"), "{t:?}");
    // A panic fails that task only, at once, and the worker goes on.
    let bad = s.sleep_task(&store, r#"{"ms": 10, "fail": "panic"}"#, None);
    let t = s.wait_task(&store, bad, Duration::from_secs(20), |t| {
        t.status.is_finished()
    });
    assert_eq!(t.status, TaskStatus::Failed);
    assert!(
        t.error_detail.as_deref().unwrap().contains("panicked"),
        "{t:?}"
    );
    // A permanent failure: failed at once with the user's message kept.
    let perm = s.sleep_task(&store, r#"{"ms": 10, "fail": "permanent"}"#, None);
    let t = s.wait_task(&store, perm, Duration::from_secs(20), |t| {
        t.status.is_finished()
    });
    assert_eq!((t.status, t.attempts), (TaskStatus::Failed, 1));
    assert_eq!(t.error.as_deref(), Some("the test job failed as asked"));
    // A transient failure is retried later, not at once.
    let flaky = s.sleep_task(&store, r#"{"ms": 10, "fail": "transient-once"}"#, None);
    let t = s.wait_task(&store, flaky, Duration::from_secs(20), |t| {
        t.status == TaskStatus::Queued && t.attempts == 1
    });
    assert!(t.run_at > autosub_store::now_ms() + 20_000, "{t:?}");
    // SIGTERM drains: the running job finishes, then the worker exits 0.
    let last = s.sleep_task(&store, r#"{"ms": 1500}"#, None);
    s.wait_task(&store, last, Duration::from_secs(20), |t| {
        t.status == TaskStatus::Processing
    });
    s.signal(w, "-TERM");
    assert_eq!(s.wait_exit(w, Duration::from_secs(20)), Some(0));
    assert_eq!(s.task(&store, last).status, TaskStatus::Completed);
    assert!(s.log("w").contains("draining"), "{}", s.log("w"));
    // Two signals: the running job is released to the queue (not lost, its attempt given back).
    let w2 = s.spawn("w2", &["worker"]);
    let again = s.sleep_task(&store, r#"{"ms": 600000}"#, None);
    s.wait_task(&store, again, Duration::from_secs(30), |t| {
        t.status == TaskStatus::Processing
    });
    s.signal(w2, "-TERM");
    std::thread::sleep(Duration::from_millis(300));
    s.signal(w2, "-TERM");
    assert_eq!(s.wait_exit(w2, Duration::from_secs(20)), Some(0));
    let t = s.task(&store, again);
    assert_eq!((t.status, t.attempts), (TaskStatus::Queued, 0), "{t:?}");
}

#[test]
fn cancel_timeout_panic_failures_and_sigterm_on_postgres() {
    cancel_timeout_panic_and_drain(Db::Postgres);
}

#[test]
fn cancel_timeout_panic_failures_and_sigterm_on_sqlite() {
    cancel_timeout_panic_and_drain(Db::Sqlite);
}

/// `GET path` on `addr`: (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    let status = r[9..12].parse().unwrap();
    let body = r
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_owned();
    (status, body)
}

#[test]
fn serve_runs_the_real_pipeline_through_submit_and_answers_health_and_metrics() {
    let mut s = Service::new(Db::Sqlite);
    let addr = format!("127.0.0.1:{}", free_port());
    let mut c = s.cmd(&["serve"]);
    c.env("AUTOSUB_HTTP_ADDR", &addr)
        .env("AUTOSUB_WORKERS", "2");
    let log = std::fs::File::create(s._tmp.path().join("serve.log")).unwrap();
    s.children
        .push(c.stdout(Stdio::null()).stderr(log).spawn().unwrap());
    let t0 = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(30), "{}", s.log("serve"));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(&addr, "/healthz").0, 200);
    assert_eq!(get(&addr, "/readyz"), (200, "ready\n".into()));
    // The real job: the same subtitles as `autosub process` of the same file.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let r = s
        .run(&[
            "-q",
            "submit",
            common::sample().to_str().unwrap(),
            "--no-video",
            "--format",
            "srt,json",
            "--user",
            "4242",
            "--wait",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(v["tier"], "free");
    for k in [
        "id",
        "priority",
        "attempts",
        "created_at",
        "started_at",
        "finished_at",
        "outputs",
    ] {
        assert!(!v[k].is_null(), "{k} missing in {v}");
    }
    let srt = std::fs::read_to_string(out.join("sample.srt")).unwrap();
    let direct = tmp.path().join("direct");
    common::process(
        &common::sample(),
        &direct,
        &["--no-video", "--format", "srt"],
    )
    .ok();
    assert_eq!(
        srt,
        std::fs::read_to_string(direct.join("sample.srt")).unwrap()
    );
    // The user's count went up; their tier's refusals come before anything is queued.
    let u = s.run(&["users", "show", "4242", "--json"]).ok();
    let u: serde_json::Value = serde_json::from_str(&u.stdout).unwrap();
    assert_eq!(
        (u["tasks_today"].as_i64(), u["tier"].as_str()),
        (Some(1), Some("free"))
    );
    let refused = s.run(&[
        "submit",
        common::sample().to_str().unwrap(),
        "--translate",
        "de",
        "--user",
        "4242",
    ]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("translation is not part of the FREE plan; PRO includes it"),
        "{}",
        refused.stderr
    );
    // Three tasks a day on FREE: the fourth is refused, counted in the enqueue transaction.
    for _ in 0..2 {
        s.run(&[
            "submit",
            common::sample().to_str().unwrap(),
            "--no-video",
            "--user",
            "4242",
        ])
        .ok();
    }
    let fourth = s.run(&[
        "submit",
        common::sample().to_str().unwrap(),
        "--user",
        "4242",
    ]);
    assert_eq!(fourth.code, 3, "{}", fourth.stderr);
    assert!(
        fourth.stderr.contains("today's 3 tasks of the FREE plan"),
        "{}",
        fourth.stderr
    );
    s.run(&["users", "grant", "4242", "pro", "--days", "30"])
        .ok();
    let u = s.run(&["users", "show", "4242", "--json"]).ok();
    assert!(u.stdout.contains("\"tier\": \"pro\""), "{}", u.stdout);
    s.run(&["users", "ban", "4242"]).ok();
    let banned = s.run(&[
        "submit",
        common::sample().to_str().unwrap(),
        "--user",
        "4242",
    ]);
    assert_eq!(banned.code, 3);
    assert!(banned.stderr.contains("blocked"), "{}", banned.stderr);
    // Files a job names go to the task's folder with its input; a file written on the worker is refused.
    let style = tmp.path().join("look.ass");
    std::fs::write(
        &style,
        "[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize\nStyle: Default,Arial,40\n",
    )
    .unwrap();
    let r = s
        .run(&[
            "submit",
            common::sample().to_str().unwrap(),
            "--style",
            style.to_str().unwrap(),
            "--json",
        ])
        .ok();
    let id = serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()["id"]
        .as_i64()
        .unwrap();
    let task_dir = s.data_dir.join(format!("storage/task_{id}/input"));
    assert!(task_dir.join("look.ass").is_file() && task_dir.join("sample.mp4").is_file());
    // Named relative to the task's folder: a worker whose data dir is elsewhere resolves it in its own copy.
    let spec = s.task(&s.store(), id).spec;
    assert!(spec.contains("\"style\":\"input/look.ass\""), "{spec}");
    let refused = s.run(&[
        "submit",
        common::sample().to_str().unwrap(),
        "--save-script",
        "x.ass",
    ]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    let bogus = s.run(&["jobs", "list", "--status", "bogus"]);
    assert_eq!(bogus.code, 3, "{}", bogus.stderr);
    // Metrics: the queue per tier and the job counters, no per-user labels.
    let (code, m) = get(&addr, "/metrics");
    assert_eq!(code, 200);
    for series in [
        "autosub_queue_depth{tier=\"free\"}",
        "autosub_tasks{status=\"completed\",tier=\"free\"} ",
        "autosub_jobs_total{status=\"completed\",tier=\"free\"} ",
        "autosub_job_duration_seconds_bucket",
        "autosub_stage_duration_seconds_bucket{stage=\"transcribe\"",
    ] {
        assert!(m.contains(series), "{series} not in:\n{m}");
    }
    // At least the job followed by --wait completed (the others may still run).
    let value = |series: &str| -> f64 {
        m.lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} not in:\n{m}"))
    };
    assert!(value("autosub_tasks{status=\"completed\",tier=\"free\"}") >= 1.0);
    assert!(value("autosub_jobs_total{status=\"completed\",tier=\"free\"}") >= 1.0);
    assert!(!m.contains("4242"));
    // Every series the Grafana dashboard queries that a serve process with a finished job has (payments: the
    // billing test; rescues: only after a rescue).
    for series in common::dashboard_series() {
        if [
            "autosub_payments",
            "autosub_billing",
            "autosub_revenue",
            "autosub_leases_rescued",
        ]
        .iter()
        .any(|p| series.starts_with(p))
        {
            continue;
        }
        assert!(
            m.lines()
                .any(|l| l.starts_with(&format!("{series}{{"))
                    || l.starts_with(&format!("{series} "))),
            "the dashboard queries {series}, not in:\n{m}"
        );
    }
    let list = s.run(&["jobs", "list"]).ok();
    assert!(list.stdout.contains("completed"), "{}", list.stdout);
    // SIGTERM: serve stops cleanly.
    s.signal(0, "-TERM");
    assert_eq!(s.wait_exit(0, Duration::from_secs(20)), Some(0));
}

#[test]
fn the_configuration_is_checked_once_and_printed_with_secrets_masked() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |vars: &[(&str, &str)], args: &[&str]| -> common::Run {
        let mut c = Command::new(common::bin());
        c.args(args).env("AUTOSUB_DATA_DIR", tmp.path());
        for (k, v) in vars {
            c.env(k, v);
        }
        c.output().unwrap().into()
    };
    let d = run(
        &[(
            "AUTOSUB_DATABASE_URL",
            "postgres://bob:hunter2@db.internal/autosub",
        )],
        &["doctor"],
    );
    assert!(
        d.stdout.contains("AUTOSUB_DATABASE_URL=postgres://bob:") && !d.stdout.contains("hunter2"),
        "{}",
        d.stdout
    );
    assert!(d.stdout.contains("AUTOSUB_WORKERS=1"), "{}", d.stdout);
    assert!(
        d.stdout.contains("off (AUTOSUB_TELEGRAM_TOKEN is not set)"),
        "{}",
        d.stdout
    );
    // The bot's settings: the token never printed; a missing or malformed one refused, naming the variable.
    let token = "4839574812:AAE_doctor-TOKEN_0123456789abcdefghijk";
    let d = run(
        &[
            ("AUTOSUB_TELEGRAM_TOKEN", token),
            ("AUTOSUB_ADMINS", "7, 8"),
        ],
        &["doctor"],
    );
    assert!(
        d.stdout.contains("AUTOSUB_TELEGRAM_TOKEN=set (hidden)")
            && d.stdout.contains("AUTOSUB_ADMINS=7,8")
            && !d.stdout.contains("AAE_doctor"),
        "{}",
        d.stdout
    );
    let none = run(&[], &["bot"]);
    assert_eq!(none.code, 3, "{}", none.stderr);
    assert!(
        none.stderr.contains("AUTOSUB_TELEGRAM_TOKEN is not set"),
        "{}",
        none.stderr
    );
    let bad_admins = run(
        &[("AUTOSUB_TELEGRAM_TOKEN", token), ("AUTOSUB_ADMINS", "me")],
        &["bot"],
    );
    assert_eq!(bad_admins.code, 3, "{}", bad_admins.stderr);
    assert!(
        bad_admins.stderr.contains("AUTOSUB_ADMINS: \"me\""),
        "{}",
        bad_admins.stderr
    );
    assert!(
        !bad_admins.stderr.contains("AAE_doctor"),
        "{}",
        bad_admins.stderr
    );
    let bad = run(&[("AUTOSUB_WORKERS", "many")], &["worker"]);
    assert_eq!(bad.code, 3, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("AUTOSUB_WORKERS: \"many\""),
        "{}",
        bad.stderr
    );
    // A database that cannot be reached: a clear error, the password not in it.
    let down = run(
        &[(
            "AUTOSUB_DATABASE_URL",
            "postgres://bob:hunter2@127.0.0.1:1/autosub",
        )],
        &["jobs", "list"],
    );
    assert_ne!(down.code, 0);
    assert!(
        down.stderr.contains("cannot open the database"),
        "{}",
        down.stderr
    );
    assert!(!down.stderr.contains("hunter2"), "{}", down.stderr);
}

#[test]
fn billing_is_ready_only_while_its_database_answers() {
    let mut s = Service::new(Db::Postgres);
    let addr = format!("127.0.0.1:{}", free_port());
    let mut c = s.cmd(&["billing"]);
    c.env("AUTOSUB_HTTP_ADDR", &addr);
    let log = std::fs::File::create(s._tmp.path().join("billing.log")).unwrap();
    s.children
        .push(c.stdout(Stdio::null()).stderr(log).spawn().unwrap());
    let t0 = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{}",
            s.log("billing")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(&addr, "/readyz"), (200, "ready\n".into()));
    let name = s.pg_name.take().unwrap();
    psql(&format!("DROP DATABASE {name} WITH (FORCE)"));
    let (code, body) = get(&addr, "/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("database"), "{body}");
    // Alive all the same, and no password or URL in the answer.
    assert_eq!(get(&addr, "/healthz").0, 200);
    assert!(!body.contains("postgres://"), "{body}");
    s.signal(0, "-TERM");
    assert_eq!(s.wait_exit(0, Duration::from_secs(20)), Some(0));
}

/// Users, payments and tasks as the snapshot a round trip must keep.
fn snapshot(s: &Service) -> (Vec<String>, Vec<String>, Vec<String>) {
    let store = s.store();
    let rt = &s.rt;
    let users = [7001, 7002, 7003]
        .iter()
        .map(|id| format!("{:?}", rt.block_on(store.get_user(*id)).unwrap()))
        .collect();
    let payments = ["bk-1", "bk-2"]
        .iter()
        .map(|id| {
            format!(
                "{:?}",
                rt.block_on(store.get_payment_by_external_id(id)).unwrap()
            )
        })
        .collect();
    let tasks = rt
        .block_on(store.list_tasks(None, 100))
        .unwrap()
        .iter()
        .map(|t| format!("{} {} {} {:?}", t.id, t.kind, t.status, t.user_id))
        .collect();
    rt.block_on(store.close());
    (users, payments, tasks)
}

fn backup_round_trip(db: Db) {
    use autosub_store::{DayValues, NewPayment, PaymentPeriod, PaymentStatus};
    let mut s = Service::new(db);
    let store = s.store();
    let now = autosub_store::now_ms();
    let rt = &s.rt;
    rt.block_on(store.grant(7001, Tier::Pro, 30, now)).unwrap();
    rt.block_on(store.grant(7002, Tier::Creator, 365, now))
        .unwrap();
    let u = rt
        .block_on(store.upsert_user(7003, Some("ann"), Some("ru"), now))
        .unwrap();
    rt.block_on(store.set_banned(7003, true)).unwrap();
    for (ext, status) in [("bk-1", true), ("bk-2", false)] {
        rt.block_on(store.insert_payment(
            &NewPayment {
                user_id: u.id,
                amount: 299,
                currency: "RUB".into(),
                tier: Tier::Pro,
                period: PaymentPeriod::Month,
                days: 30,
                status: PaymentStatus::Pending,
                external_id: Some(ext.into()),
                payload: Some("{}".into()),
                request_key: Some(format!("k-{ext}")),
                redirect_url: None,
                expires_at: Some(now),
            },
            now,
        ))
        .unwrap();
        if status {
            let v = DayValues {
                pro: 10.0,
                creator: 20.0,
            };
            rt.block_on(store.confirm_payment(ext, v, now)).unwrap();
        }
    }
    // A kind no worker runs: the worker started below must leave these tasks as they are.
    let mut t = NewTask {
        kind: "archive".into(),
        spec: r#"{"ms": 1}"#.into(),
        spec_version: 1,
        input_type: "file".into(),
        tier: Tier::Free,
        ..NewTask::default()
    };
    t.user_telegram_id = Some(7001);
    rt.block_on(store.enqueue(&t, now)).unwrap();
    rt.block_on(store.enqueue(&t, now)).unwrap();
    rt.block_on(store.close());
    let before = snapshot(&s);

    let dir = s._tmp.path().join("backups");
    let file = dir.join("manual.backup");
    let r = s.run(&["db", "backup", file.to_str().unwrap()]).ok();
    assert!(r.stdout.contains("bytes"), "{}", r.stdout);
    assert!(file.metadata().unwrap().len() > 1000);
    assert_eq!(files_in(&dir), ["manual.backup"], "no partial file left");
    // A second backup onto the same name is refused; the first is untouched.
    let again = s.run(&["db", "backup", file.to_str().unwrap()]);
    assert_eq!(again.code, 3, "{}", again.stderr);

    // Changes after the backup...
    let store = s.store();
    rt.block_on(store.grant(7001, Tier::Creator, 5, now))
        .unwrap();
    rt.block_on(store.set_banned(7003, false)).unwrap();
    rt.block_on(store.grant(7999, Tier::Pro, 1, now)).unwrap();
    rt.block_on(store.enqueue(&t, now)).unwrap();
    rt.block_on(store.close());
    assert_ne!(snapshot(&s), before);
    // ... are gone after the restore: users, payments and tasks as they were.
    s.run(&["db", "restore", file.to_str().unwrap()]).ok();
    assert_eq!(snapshot(&s), before);
    let store = s.store();
    assert!(rt.block_on(store.get_user(7999)).unwrap().is_none());
    assert!(rt.block_on(store.migrations_applied()).unwrap());
    rt.block_on(store.close());

    // Not a backup: refused, the database unchanged.
    let junk = dir.join("junk.backup");
    std::fs::write(&junk, b"this is not a database").unwrap();
    let r = s.run(&["db", "restore", junk.to_str().unwrap()]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert_eq!(snapshot(&s), before);

    // The scheduled backup: a worker with AUTOSUB_BACKUP_DIR writes one at start and keeps the newest 2.
    let daily = s._tmp.path().join("daily");
    std::fs::create_dir_all(&daily).unwrap();
    for old in [
        "autosub-20200101-000000.db",
        "autosub-20200102-000000.dump",
        "autosub-20200103-000000.db",
    ] {
        std::fs::write(daily.join(old), b"old").unwrap();
    }
    std::fs::write(daily.join("notes.txt"), b"kept").unwrap();
    s.env = vec![
        ("AUTOSUB_BACKUP_DIR".into(), daily.display().to_string()),
        ("AUTOSUB_BACKUP_KEEP".into(), "2".into()),
    ];
    let w = s.spawn("worker", &["worker"]);
    let t0 = Instant::now();
    let ext = if matches!(db, Db::Sqlite) {
        ".db"
    } else {
        ".dump"
    };
    let fresh = loop {
        let names = files_in(&daily);
        if let Some(n) = names.iter().find(|n| {
            n.starts_with("autosub-20") && !n.starts_with("autosub-2020") && n.ends_with(ext)
        }) {
            if names.len() == 3 {
                break n.clone();
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no scheduled backup: {names:?}\n{}",
            s.log("worker")
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut expected = vec![
        "autosub-20200103-000000.db".to_owned(),
        fresh.clone(),
        "notes.txt".to_owned(),
    ];
    expected.sort();
    assert_eq!(files_in(&daily), expected);
    s.signal(w, "-TERM");
    s.wait_exit(w, Duration::from_secs(30));
    // The scheduled backup restores too.
    s.run(&["db", "restore", daily.join(&fresh).to_str().unwrap()])
        .ok();
    assert_eq!(snapshot(&s), before);
}

#[test]
fn database_backup_and_restore_round_trip_on_sqlite() {
    backup_round_trip(Db::Sqlite);
}

#[test]
fn database_backup_and_restore_round_trip_on_postgres() {
    backup_round_trip(Db::Postgres);
}

#[test]
fn json_logs_carry_each_tasks_id() {
    let mut s = Service::new(Db::Sqlite);
    s.env = vec![("AUTOSUB_LOG_FORMAT".into(), "json".into())];
    let store = s.store();
    let a = s.sleep_task(&store, r#"{"ms": 200}"#, None);
    let b = s.sleep_task(&store, r#"{"ms": 200, "fail": "permanent"}"#, None);
    let w = s.spawn("worker", &["worker"]);
    for id in [a, b] {
        s.wait_task(&store, id, Duration::from_secs(60), |t| {
            matches!(t.status, TaskStatus::Completed | TaskStatus::Failed)
        });
    }
    s.signal(w, "-TERM");
    s.wait_exit(w, Duration::from_secs(30));
    let log = s.log("worker");
    let mut per_task = std::collections::HashMap::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
        let message = v["fields"]["message"].as_str().unwrap_or_default();
        if message == "task started" || message == "task ended" {
            let span = v["span"]["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("no task span: {line}"));
            assert_eq!(v["fields"]["task"].as_i64(), Some(span), "{line}");
            *per_task.entry(span).or_insert(0) += 1;
        }
    }
    assert_eq!(per_task.get(&a), Some(&2), "{log}");
    assert_eq!(per_task.get(&b), Some(&2), "{log}");
    // A format that does not exist is refused, naming the variable.
    let r = s
        .cmd(&["worker"])
        .env("AUTOSUB_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&r.stderr).contains("AUTOSUB_LOG_FORMAT"));
}

/// A rolling update: tasks written by a newer version (a job kind this worker does not know, or a newer spec
/// version) wait in the queue for a worker that knows them; this one neither fails them nor stops working.
#[test]
fn a_worker_leaves_tasks_of_a_newer_version_queued() {
    let mut s = Service::new(Db::Postgres);
    let store = s.store();
    let now = autosub_store::now_ms();
    let newer_kind = NewTask {
        kind: "dub".into(),
        spec: "{}".into(),
        spec_version: 1,
        input_type: "test".into(),
        tier: Tier::Free,
        ..NewTask::default()
    };
    let newer_spec = NewTask {
        kind: "sleep".into(),
        spec: r#"{"ms": 1, "new_field": true}"#.into(),
        spec_version: i64::from(u32::MAX),
        ..newer_kind.clone()
    };
    let x = s.rt.block_on(store.enqueue(&newer_kind, now)).unwrap();
    let y = s.rt.block_on(store.enqueue(&newer_spec, now)).unwrap();
    let ok = s.sleep_task(&store, r#"{"ms": 10}"#, None);
    let w = s.spawn("old", &["worker"]);
    s.wait_task(&store, ok, Duration::from_secs(60), |t| {
        t.status == TaskStatus::Completed
    });
    std::thread::sleep(Duration::from_secs(1));
    for id in [x, y] {
        let t = s.task(&store, id);
        assert_eq!((t.status, t.attempts), (TaskStatus::Queued, 0), "{t:?}");
    }
    s.signal(w, "-TERM");
    assert_eq!(s.wait_exit(w, Duration::from_secs(30)), Some(0));
}

/// A stand-in for Sentry's ingest endpoint: records every request (path, body) and answers 200.
/// What the stand-in received: (path, body) per request.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

fn sentry_standin() -> (u16, Received) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            // Headers, then Content-Length bytes of body.
            let (head_end, length) = loop {
                let n = conn.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break (None, 0);
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (Some(i + 4), length);
                }
            };
            let Some(start) = head_end else { continue };
            while buf.len() < start + length {
                let n = conn.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let head = String::from_utf8_lossy(&buf[..start]).into_owned();
            let path = head
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            seen.lock().unwrap().push((path, buf[start..].to_vec()));
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}");
        }
    });
    (port, got)
}

#[test]
fn errors_are_reported_to_sentry_when_a_dsn_is_set() {
    let mut s = Service::new(Db::Sqlite);
    let (port, got) = sentry_standin();
    // A scheduled backup into a path that is a file: the worker logs an ERROR, which goes to Sentry.
    let not_a_dir = s._tmp.path().join("not-a-dir");
    std::fs::write(&not_a_dir, b"x").unwrap();
    s.env = vec![
        (
            "AUTOSUB_SENTRY_DSN".into(),
            format!("http://abc123publickey@127.0.0.1:{port}/42"),
        ),
        ("AUTOSUB_BACKUP_DIR".into(), not_a_dir.display().to_string()),
    ];
    let w = s.spawn("worker", &["worker"]);
    let t0 = Instant::now();
    let envelope = loop {
        if let Some((path, body)) = got
            .lock()
            .unwrap()
            .iter()
            .find(|(p, _)| p.contains("/api/42/"))
            .cloned()
        {
            break (path, String::from_utf8_lossy(&body).into_owned());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "nothing reached Sentry:\n{}",
            s.log("worker")
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(envelope.0.starts_with("/api/42/envelope"), "{}", envelope.0);
    assert!(
        envelope.1.contains("scheduled backup failed"),
        "{}",
        envelope.1
    );
    // An event (Sentry's default level, error), with the log lines before it as breadcrumbs.
    assert!(envelope.1.contains("{\"type\":\"event\""), "{}", envelope.1);
    assert!(envelope.1.contains("\"breadcrumbs\""), "{}", envelope.1);
    s.signal(w, "-TERM");
    s.wait_exit(w, Duration::from_secs(30));
    // A DSN that is not one is refused, naming the variable.
    let r = s
        .cmd(&["worker"])
        .env("AUTOSUB_SENTRY_DSN", "not a dsn")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&r.stderr).contains("AUTOSUB_SENTRY_DSN"));
}
