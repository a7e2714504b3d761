//! Queue and store behaviour, every test run on a fresh SQLite file and on a fresh PostgreSQL
//! database (`<test>::sqlite` and `<test>::postgres`).
//!
//! PostgreSQL: databases `autosub_t_<pid>_<n>` are created through
//! `postgres://postgres@127.0.0.1:5432/postgres` (or `$AUTOSUB_TEST_PG_URL`) and dropped
//! afterwards. An unreachable server fails the Postgres tests; they are never skipped.

use std::collections::HashSet;

use autosub_store::{
    backoff_ms, Backend, CancelOutcome, FailOutcome, Failure, Lease, Level, NewPayment, NewTask,
    PaymentPeriod, PaymentStatus, RescueOutcome, Store, StoreError, TaskStatus, Tier,
};

const DAY: i64 = 86_400_000;
/// A fixed "now" in the middle of a UTC day (2024-01-01 12:00 UTC).
const T0: i64 = 1_704_110_400_000;
const LEASE: i64 = 60_000;

#[macro_use]
mod common;
use common::{Db, TestDb};

on_both!(
    connects_and_migrates,
    priority_order,
    aging_bounds_the_wait,
    concurrent_claims_take_each_task_once,
    lease_loss_fences_the_old_worker,
    concurrent_rescue_takes_each_task_once,
    retryable_failures_back_off_then_fail,
    non_retryable_failure_fails_at_once,
    expired_last_attempt_fails,
    cancel_queued_and_processing,
    release_gives_the_attempt_back,
    retry_failed_task,
    kinds_filter,
    enqueue_counts_tasks_per_utc_day,
    the_daily_limit_is_enforced_in_the_enqueue_transaction,
    grant_extends_and_expires,
    reads_and_counters,
    payments_and_logs,
    bot_requests_tasks_and_rounds,
    albums_group_requests_and_reopen_on_retry,
);

fn task(kind: &str, tier: Tier) -> NewTask {
    NewTask {
        kind: kind.to_owned(),
        spec: r#"{"input":"video.mp4"}"#.to_owned(),
        spec_version: 1,
        input_type: "file".to_owned(),
        generate_subtitles: true,
        tier,
        ..NewTask::default()
    }
}

fn failure(retryable: bool) -> Failure {
    Failure {
        user_message: "Could not process the video.".to_owned(),
        operator_detail: "ffmpeg exited with status 1".to_owned(),
        retryable,
    }
}

async fn status_of(store: &Store, id: i64) -> TaskStatus {
    store
        .get_task(id)
        .await
        .unwrap()
        .expect("task exists")
        .status
}

async fn logs_for(store: &Store, id: i64) -> Vec<(Level, String)> {
    let mut logs: Vec<_> = store
        .recent_logs(Level::Info, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|l| l.task_id == Some(id))
        .map(|l| {
            assert_eq!(l.source, "queue");
            (l.level, l.message)
        })
        .collect();
    logs.reverse(); // oldest first
    logs
}

// ------------------------------------------------------------------------------ tests

async fn connects_and_migrates(store: Store) {
    store.ping().await.unwrap();
    assert!(store.migrations_applied().await.unwrap());
    assert!(matches!(
        store.backend(),
        Backend::Sqlite | Backend::Postgres
    ));
    assert_eq!(store.processing_count().await.unwrap(), 0);
}

async fn priority_order(store: Store) {
    let order = [
        ("free-1", Tier::Free),
        ("pro-1", Tier::Pro),
        ("creator-1", Tier::Creator),
        ("free-2", Tier::Free),
        ("creator-2", Tier::Creator),
        ("pro-2", Tier::Pro),
    ];
    let mut ids = std::collections::HashMap::new();
    for (name, tier) in order {
        let id = store.enqueue(&task("subtitle", tier), T0).await.unwrap();
        ids.insert(id, name);
    }
    let mut claimed = Vec::new();
    while let Some(c) = store.claim("w", &["subtitle"], LEASE, T0).await.unwrap() {
        claimed.push(ids[&c.id]);
    }
    assert_eq!(
        claimed,
        [
            "creator-1",
            "creator-2",
            "pro-1",
            "pro-2",
            "free-1",
            "free-2"
        ]
    );
}

async fn aging_bounds_the_wait(store: Store) {
    // A FREE job queued more than the CREATOR boost (5 min) before a CREATOR job goes first.
    let old_free = store
        .enqueue(&task("subtitle", Tier::Free), T0)
        .await
        .unwrap();
    let creator = store
        .enqueue(&task("subtitle", Tier::Creator), T0 + 300_001)
        .await
        .unwrap();
    let now = T0 + 400_000;
    let first = store
        .claim("w", &["subtitle"], LEASE, now)
        .await
        .unwrap()
        .unwrap();
    let second = store
        .claim("w", &["subtitle"], LEASE, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.id, second.id), (old_free, creator));

    // Within the boost the paid job still wins, and PRO's boost is 2 min.
    let t1 = T0 + DAY;
    let free = store
        .enqueue(&task("subtitle", Tier::Free), t1)
        .await
        .unwrap();
    let creator = store
        .enqueue(&task("subtitle", Tier::Creator), t1 + 299_000)
        .await
        .unwrap();
    let pro = store
        .enqueue(&task("subtitle", Tier::Pro), t1 + 121_000)
        .await
        .unwrap();
    let now = t1 + 300_000;
    let mut got = Vec::new();
    while let Some(c) = store.claim("w", &["subtitle"], LEASE, now).await.unwrap() {
        got.push(c.id);
    }
    assert_eq!(got, [creator, free, pro]);
}

async fn concurrent_claims_take_each_task_once(store: Store) {
    const TASKS: usize = 200;
    let mut expected = HashSet::new();
    for i in 0..TASKS {
        let tier = Tier::ALL[i % 3];
        expected.insert(store.enqueue(&task("subtitle", tier), T0).await.unwrap());
    }
    let mut workers = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        workers.push(tokio::spawn(async move {
            let worker = format!("worker-{w}");
            let mut mine = Vec::new();
            // Any error (e.g. "database is locked") fails the test here.
            while let Some(c) = store
                .claim(&worker, &["subtitle"], LEASE, T0)
                .await
                .unwrap_or_else(|e| panic!("{worker} claim: {e}"))
            {
                assert_eq!(c.attempts, 1);
                let done = store
                    .complete(c.id, &worker, r#"{"ok":true}"#, T0 + 1)
                    .await
                    .unwrap_or_else(|e| panic!("{worker} complete: {e}"));
                assert!(done, "{worker} lost task {}", c.id);
                mine.push(c.id);
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for worker in workers {
        let mine = worker.await.unwrap();
        total += mine.len();
        seen.extend(mine);
    }
    assert_eq!(total, TASKS, "some task was claimed twice");
    assert_eq!(seen, expected);
    let completed = store.list_tasks(Some("completed"), 1000).await.unwrap();
    assert_eq!(completed.len(), TASKS);
    assert_eq!(store.processing_count().await.unwrap(), 0);
}

async fn lease_loss_fences_the_old_worker(store: Store) {
    let id = store
        .enqueue(&task("subtitle", Tier::Pro), T0)
        .await
        .unwrap();
    let a = store
        .claim("A", &["subtitle"], LEASE, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a.id, a.attempts), (id, 1));
    assert_eq!(
        store
            .heartbeat(id, "A", LEASE, Some(("transcribe", 10.0)), T0 + 20_000)
            .await
            .unwrap(),
        Lease::Held
    );

    // A goes silent; its lease (last extended to T0 + 80 s) runs out.
    let late = T0 + 20_000 + LEASE + 1;
    assert!(store.rescue_expired(late - 2).await.unwrap().is_empty());
    let rescued = store.rescue_expired(late).await.unwrap();
    assert_eq!(rescued.len(), 1);
    assert_eq!(rescued[0].id, id);
    assert_eq!(rescued[0].lease_owner.as_deref(), Some("A"));
    let RescueOutcome::Requeued { run_at } = rescued[0].outcome else {
        panic!("expected a requeue, got {:?}", rescued[0].outcome);
    };
    assert!(
        (late + 27_000..=late + 33_000).contains(&run_at),
        "{run_at}"
    );
    let logs = logs_for(&store, id).await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].0, Level::Warning);

    let b = store
        .claim("B", &["subtitle"], LEASE, run_at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((b.id, b.attempts), (id, 2));
    let before = store.get_task(id).await.unwrap().unwrap();

    // A wakes up: every write is refused and changes nothing.
    let now = run_at + 1_000;
    assert!(!store
        .complete(id, "A", r#"{"from":"A"}"#, now)
        .await
        .unwrap());
    assert_eq!(
        store
            .heartbeat(id, "A", LEASE, Some(("mux", 90.0)), now)
            .await
            .unwrap(),
        Lease::Lost
    );
    assert_eq!(
        store.fail(id, "A", &failure(true), now).await.unwrap(),
        None
    );
    assert!(!store.release(id, "A", now).await.unwrap());
    assert!(!store.cancelled(id, "A", now).await.unwrap());
    assert_eq!(store.get_task(id).await.unwrap().unwrap(), before);
    assert_eq!(before.lease_owner.as_deref(), Some("B"));
    assert_eq!(before.status, TaskStatus::Processing);

    // B finishes normally.
    assert!(store
        .complete(id, "B", r#"{"from":"B"}"#, now)
        .await
        .unwrap());
    let done = store.get_task(id).await.unwrap().unwrap();
    assert_eq!(done.status, TaskStatus::Completed);
    assert_eq!(done.outputs.as_deref(), Some(r#"{"from":"B"}"#));
    assert_eq!(done.finished_at, Some(now));
    assert_eq!(
        done.started_at,
        Some(T0),
        "started_at is the first attempt's"
    );
    assert!(!store.complete(id, "B", "{}", now).await.unwrap());
}

async fn concurrent_rescue_takes_each_task_once(store: Store) {
    let mut ids = HashSet::new();
    for _ in 0..20 {
        ids.insert(
            store
                .enqueue(&task("subtitle", Tier::Free), T0)
                .await
                .unwrap(),
        );
    }
    while store
        .claim("gone", &["subtitle"], 1_000, T0)
        .await
        .unwrap()
        .is_some()
    {}
    let rescuers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.rescue_expired(T0 + 5_000).await.unwrap() })
        })
        .collect();
    let mut rescued = Vec::new();
    for r in rescuers {
        rescued.extend(r.await.unwrap().into_iter().map(|r| r.id));
    }
    assert_eq!(rescued.len(), 20, "each task rescued exactly once");
    assert_eq!(rescued.into_iter().collect::<HashSet<_>>(), ids);
    let queued = store.list_tasks(Some("queued"), 100).await.unwrap();
    assert_eq!(queued.len(), 20);
    for id in ids {
        assert_eq!(logs_for(&store, id).await.len(), 1);
    }
}

async fn retryable_failures_back_off_then_fail(store: Store) {
    let id = store
        .enqueue(&task("subtitle", Tier::Free), T0)
        .await
        .unwrap();
    let c = store
        .claim("w", &["subtitle"], LEASE, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.attempts, c.max_attempts), (1, 3));

    let t1 = T0 + 5_000;
    let Some(FailOutcome::Retrying { attempt, run_at }) =
        store.fail(id, "w", &failure(true), t1).await.unwrap()
    else {
        panic!("first failure should retry");
    };
    assert_eq!(attempt, 1);
    assert!(
        (27_000..=33_000).contains(&(run_at - t1)),
        "{}",
        run_at - t1
    );
    let row = store.get_task(id).await.unwrap().unwrap();
    assert_eq!(row.status, TaskStatus::Queued);
    assert_eq!(row.run_at, run_at);
    assert_eq!(row.sort_key, run_at, "FREE has no boost: sort_key = run_at");
    assert_eq!(row.lease_owner, None);

    // Not eligible before run_at.
    assert!(store
        .claim("w", &["subtitle"], LEASE, run_at - 1)
        .await
        .unwrap()
        .is_none());
    let c = store
        .claim("w", &["subtitle"], LEASE, run_at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.attempts, 2);

    let t2 = run_at + 1_000;
    let Some(FailOutcome::Retrying { attempt, run_at }) =
        store.fail(id, "w", &failure(true), t2).await.unwrap()
    else {
        panic!("second failure should retry");
    };
    assert_eq!(attempt, 2);
    assert!(
        (54_000..=66_000).contains(&(run_at - t2)),
        "{}",
        run_at - t2
    );

    let c = store
        .claim("w", &["subtitle"], LEASE, run_at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.attempts, 3);
    let t3 = run_at + 1_000;
    assert_eq!(
        store.fail(id, "w", &failure(true), t3).await.unwrap(),
        Some(FailOutcome::Failed)
    );
    let row = store.get_task(id).await.unwrap().unwrap();
    assert_eq!(row.status, TaskStatus::Failed);
    assert_eq!(row.attempts, 3);
    assert_eq!(row.error.as_deref(), Some("Could not process the video."));
    assert_eq!(
        row.error_detail.as_deref(),
        Some("ffmpeg exited with status 1")
    );
    assert_eq!(row.finished_at, Some(t3));

    let logs = logs_for(&store, id).await;
    let levels: Vec<Level> = logs.iter().map(|l| l.0).collect();
    assert_eq!(levels, [Level::Warning, Level::Warning, Level::Error]);
    assert!(
        logs.iter().all(|l| l.1.contains("ffmpeg exited")),
        "{logs:?}"
    );
    // min_level filters.
    let errors = store.recent_logs(Level::Error, 10).await.unwrap();
    assert!(errors.iter().all(|l| l.level >= Level::Error));
    assert!(errors.iter().any(|l| l.task_id == Some(id)));

    // A PRO retry keeps its boost relative to its new run_at.
    let pro = store
        .enqueue(&task("pro-kind", Tier::Pro), T0)
        .await
        .unwrap();
    store
        .claim("w", &["pro-kind"], LEASE, T0)
        .await
        .unwrap()
        .unwrap();
    let Some(FailOutcome::Retrying { run_at, .. }) =
        store.fail(pro, "w", &failure(true), T0).await.unwrap()
    else {
        panic!("should retry");
    };
    let row = store.get_task(pro).await.unwrap().unwrap();
    assert_eq!(row.sort_key, run_at - 120_000);
    assert_eq!(row.run_at - T0, backoff_ms(1, (pro + 1) as u64));
}

async fn non_retryable_failure_fails_at_once(store: Store) {
    let id = store
        .enqueue(&task("subtitle", Tier::Creator), T0)
        .await
        .unwrap();
    store
        .claim("w", &["subtitle"], LEASE, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.fail(id, "w", &failure(false), T0 + 1).await.unwrap(),
        Some(FailOutcome::Failed)
    );
    let row = store.get_task(id).await.unwrap().unwrap();
    assert_eq!((row.status, row.attempts), (TaskStatus::Failed, 1));
    assert_eq!(row.error.as_deref(), Some("Could not process the video."));
    let logs = logs_for(&store, id).await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].0, Level::Error);
    assert!(logs[0].1.contains("not retryable"), "{}", logs[0].1);
}

async fn expired_last_attempt_fails(store: Store) {
    let mut new = task("subtitle", Tier::Free);
    new.max_attempts = Some(1);
    let id = store.enqueue(&new, T0).await.unwrap();
    store
        .claim("w", &["subtitle"], LEASE, T0)
        .await
        .unwrap()
        .unwrap();
    let rescued = store.rescue_expired(T0 + LEASE + 1).await.unwrap();
    assert_eq!(rescued.len(), 1);
    assert_eq!(rescued[0].outcome, RescueOutcome::Failed);
    let row = store.get_task(id).await.unwrap().unwrap();
    assert_eq!(row.status, TaskStatus::Failed);
    assert_eq!(row.error.as_deref(), Some("processing stopped repeatedly"));
    assert_eq!(row.finished_at, Some(T0 + LEASE + 1));
    let logs = logs_for(&store, id).await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].0, Level::Error);
    assert!(store
        .rescue_expired(T0 + 10 * LEASE)
        .await
        .unwrap()
        .is_empty());
}

async fn cancel_queued_and_processing(store: Store) {
    // Queued: cancelled at once, never claimed.
    let queued = store
        .enqueue(&task("subtitle", Tier::Free), T0)
        .await
        .unwrap();
    assert_eq!(
        store.cancel(queued, T0).await.unwrap(),
        CancelOutcome::Cancelled
    );
    assert_eq!(status_of(&store, queued).await, TaskStatus::Cancelled);
    assert!(store
        .claim("w", &["subtitle"], LEASE, T0)
        .await
        .unwrap()
        .is_none());

    // Processing: requested, seen on the next heartbeat, acknowledged by the worker.
    let running = store
        .enqueue(&task("subtitle", Tier::Free), T0)
        .await
        .unwrap();
    store
        .claim("w", &["subtitle"], LEASE, T0)
        .await
        .unwrap()
        .unwrap();
    // Only a requested cancel can be acknowledged.
    assert!(!store.cancelled(running, "w", T0).await.unwrap());
    assert_eq!(
        store.cancel(running, T0 + 1).await.unwrap(),
        CancelOutcome::Requested
    );
    assert_eq!(status_of(&store, running).await, TaskStatus::Processing);
    assert_eq!(
        store
            .heartbeat(running, "w", LEASE, None, T0 + 2)
            .await
            .unwrap(),
        Lease::CancelRequested
    );
    assert!(!store.cancelled(running, "other", T0 + 3).await.unwrap());
    assert!(store.cancelled(running, "w", T0 + 3).await.unwrap());
    let row = store.get_task(running).await.unwrap().unwrap();
    assert_eq!(row.status, TaskStatus::Cancelled);
    assert_eq!(row.finished_at, Some(T0 + 3));
    assert_eq!(
        store
            .heartbeat(running, "w", LEASE, None, T0 + 4)
            .await
            .unwrap(),
        Lease::Lost
    );

    assert_eq!(
        store.cancel(running, T0 + 5).await.unwrap(),
        CancelOutcome::AlreadyFinished
    );
    assert_eq!(
        store.cancel(999_999, T0).await.unwrap(),
        CancelOutcome::NotFound
    );
    assert_eq!(logs_for(&store, running).await.len(), 2);

    // A cancel pending when the lease expires cancels instead of retrying.
    let orphan = store
        .enqueue(&task("subtitle", Tier::Free), T0)
        .await
        .unwrap();
    store
        .claim("w", &["subtitle"], LEASE, T0)
        .await
        .unwrap()
        .unwrap();
    store.cancel(orphan, T0).await.unwrap();
    let rescued = store.rescue_expired(T0 + LEASE + 1).await.unwrap();
    assert_eq!(rescued[0].outcome, RescueOutcome::Cancelled);
    assert_eq!(status_of(&store, orphan).await, TaskStatus::Cancelled);
}

async fn release_gives_the_attempt_back(store: Store) {
    let first = store
        .enqueue(&task("subtitle", Tier::Free), T0)
        .await
        .unwrap();
    let second = store
        .enqueue(&task("subtitle", Tier::Free), T0 + 1)
        .await
        .unwrap();
    let c = store
        .claim("w", &["subtitle"], LEASE, T0 + 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.id, c.attempts), (first, 1));
    assert!(store.release(first, "w", T0 + 3).await.unwrap());
    let row = store.get_task(first).await.unwrap().unwrap();
    assert_eq!((row.status, row.attempts), (TaskStatus::Queued, 0));
    assert_eq!(row.lease_owner, None);
    // It keeps its place ahead of the task queued after it.
    let again = store
        .claim("v", &["subtitle"], LEASE, T0 + 4)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.id, again.attempts), (first, 1));
    assert_ne!(again.id, second);
}

async fn retry_failed_task(store: Store) {
    let id = store
        .enqueue(&task("subtitle", Tier::Pro), T0)
        .await
        .unwrap();
    store
        .claim("w", &["subtitle"], LEASE, T0)
        .await
        .unwrap()
        .unwrap();
    store.fail(id, "w", &failure(false), T0).await.unwrap();
    assert_eq!(status_of(&store, id).await, TaskStatus::Failed);

    let now = T0 + DAY;
    store.retry(id, now).await.unwrap();
    let row = store.get_task(id).await.unwrap().unwrap();
    assert_eq!(row.status, TaskStatus::Queued);
    assert_eq!(row.attempts, 0);
    assert_eq!(
        (row.error, row.error_detail, row.finished_at),
        (None, None, None)
    );
    assert_eq!((row.run_at, row.sort_key), (now, now - 120_000));
    let c = store
        .claim("w", &["subtitle"], LEASE, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.id, c.attempts), (id, 1));

    match store.retry(id, now).await {
        Err(StoreError::InvalidState(msg)) => assert!(msg.contains("processing"), "{msg}"),
        other => panic!("retry of a processing task: {other:?}"),
    }
    assert!(store.complete(id, "w", "{}", now).await.unwrap());
    assert!(matches!(
        store.retry(id, now).await,
        Err(StoreError::InvalidState(_))
    ));
    assert!(matches!(
        store.retry(999_999, now).await,
        Err(StoreError::NotFound(_))
    ));
    // A cancelled task can be retried too.
    let cancelled = store
        .enqueue(&task("subtitle", Tier::Pro), now)
        .await
        .unwrap();
    store.cancel(cancelled, now).await.unwrap();
    store.retry(cancelled, now).await.unwrap();
    assert_eq!(status_of(&store, cancelled).await, TaskStatus::Queued);
}

async fn kinds_filter(store: Store) {
    let dub = store
        .enqueue(&task("dub", Tier::Creator), T0)
        .await
        .unwrap();
    let sub = store
        .enqueue(&task("subtitle", Tier::Free), T0)
        .await
        .unwrap();
    assert!(store.claim("old", &[], LEASE, T0).await.unwrap().is_none());
    let c = store
        .claim("old", &["subtitle"], LEASE, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.id, c.kind.as_str()), (sub, "subtitle"));
    assert!(store
        .claim("old", &["subtitle", "other"], LEASE, T0)
        .await
        .unwrap()
        .is_none());
    assert_eq!(status_of(&store, dub).await, TaskStatus::Queued);
    let c = store
        .claim("new", &["subtitle", "dub"], LEASE, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.id, c.kind.as_str(), c.tier), (dub, "dub", Tier::Creator));
    assert_eq!(c.spec, r#"{"input":"video.mp4"}"#);
    assert_eq!(c.timeout_ms, 90 * 60_000);
    // A rolling update: a job written in a newer format waits for a worker that reads it.
    let mut newer = task("subtitle", Tier::Free);
    newer.spec_version = 2;
    let v2 = store.enqueue(&newer, T0).await.unwrap();
    assert!(store
        .claim_up_to("old", &["subtitle"], 1, LEASE, T0)
        .await
        .unwrap()
        .is_none());
    assert_eq!(status_of(&store, v2).await, TaskStatus::Queued);
    let c = store
        .claim_up_to("new", &["subtitle"], 2, LEASE, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.id, v2);
    // A held task is not claimable until it is queued, with its final spec.
    let mut held = task("subtitle", Tier::Free);
    held.hold = true;
    let h = store.enqueue(&held, T0).await.unwrap();
    assert_eq!(status_of(&store, h).await, TaskStatus::Created);
    assert!(store
        .claim("w", &["subtitle"], LEASE, T0)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .queue_created(h, r#"{"input":"input/video.mp4"}"#, T0 + 5)
        .await
        .unwrap());
    assert!(!store.queue_created(h, "{}", T0 + 6).await.unwrap());
    let c = store
        .claim("w", &["subtitle"], LEASE, T0 + 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (c.id, c.spec.as_str()),
        (h, r#"{"input":"input/video.mp4"}"#)
    );
    // A held task whose input never arrives is cancelled an hour later, with a log row.
    let stale = store.enqueue(&held, T0).await.unwrap();
    assert!(store
        .reap_created(3_600_000, T0 + 1_000)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.reap_created(3_600_000, T0 + 3_600_001).await.unwrap(),
        vec![stale]
    );
    assert_eq!(status_of(&store, stale).await, TaskStatus::Cancelled);
}

async fn the_daily_limit_is_enforced_in_the_enqueue_transaction(store: Store) {
    let mut new = task("subtitle", Tier::Free);
    new.user_telegram_id = Some(77);
    new.daily_limit = Some(3);
    // Five requests at once for the last places of the day: exactly three get in.
    let results = futures_join(&store, &new, 5).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 3, "{results:?}");
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, autosub_store::StoreError::QuotaExceeded { limit: 3 })));
    let user = store.get_user(77).await.unwrap().unwrap();
    assert_eq!((user.tasks_today, user.tasks_total), (3, 3));
    // The next UTC day starts again.
    assert!(store.enqueue(&new, T0 + 86_400_000).await.is_ok());
}

async fn futures_join(
    store: &Store,
    new: &NewTask,
    n: usize,
) -> Vec<Result<i64, autosub_store::StoreError>> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (store, new) = (store.clone(), new.clone());
        set.spawn(async move { store.enqueue(&new, T0).await });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

async fn enqueue_counts_tasks_per_utc_day(store: Store) {
    let mut new = task("subtitle", Tier::Free);
    new.user_telegram_id = Some(4242);
    store.enqueue(&new, T0).await.unwrap();
    let id = store.enqueue(&new, T0 + 1_000).await.unwrap();
    let user = store
        .get_user(4242)
        .await
        .unwrap()
        .expect("user created by enqueue");
    assert_eq!((user.tasks_today, user.tasks_total), (2, 2));
    assert_eq!(user.tier, Tier::Free);
    assert_eq!(
        store.get_task(id).await.unwrap().unwrap().user_id,
        Some(user.id)
    );
    let c = store
        .claim("w", &["subtitle"], LEASE, T0 + 2_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.user_id, Some(user.id));

    // Midnight UTC resets the daily counter, not the total.
    let midnight = (T0 / DAY + 1) * DAY;
    assert_eq!(user.tasks_today_at(midnight - 1), 2);
    assert_eq!(user.tasks_today_at(midnight), 0);
    store.enqueue(&new, midnight).await.unwrap();
    let user = store.get_user(4242).await.unwrap().unwrap();
    assert_eq!((user.tasks_today, user.tasks_total), (1, 3));
    assert_eq!(user.tasks_day, midnight / DAY);

    // upsert_user keeps counters and fills in names.
    let user = store
        .upsert_user(4242, Some("alice"), Some("ru"), midnight + 5)
        .await
        .unwrap();
    assert_eq!(user.username.as_deref(), Some("alice"));
    assert_eq!(user.tasks_total, 3);
    let user = store
        .upsert_user(4242, None, Some("en"), midnight + 6)
        .await
        .unwrap();
    assert_eq!(
        (user.username.as_deref(), user.language.as_deref()),
        (Some("alice"), Some("en"))
    );

    // Invalid input never reaches the database.
    let mut bad = task("subtitle", Tier::Free);
    bad.spec = "not json".into();
    assert!(matches!(
        store.enqueue(&bad, T0).await,
        Err(StoreError::InvalidInput(_))
    ));
}

async fn grant_extends_and_expires(store: Store) {
    let user = store.grant(77, Tier::Pro, 30, T0).await.unwrap();
    assert_eq!(
        (user.tier, user.tier_expires_at),
        (Tier::Pro, Some(T0 + 30 * DAY))
    );
    assert_eq!(user.effective_tier(T0), Tier::Pro);

    // Renewing early extends from the future expiry.
    let user = store.grant(77, Tier::Pro, 30, T0 + 10 * DAY).await.unwrap();
    assert_eq!(user.tier_expires_at, Some(T0 + 60 * DAY));

    // Once expired the user is FREE again, though the row still says pro.
    let later = T0 + 61 * DAY;
    let user = store.get_user(77).await.unwrap().unwrap();
    assert_eq!(user.tier, Tier::Pro);
    assert_eq!(user.effective_tier(later), Tier::Free);
    assert_eq!(
        autosub_store::effective_tier(user.tier, user.tier_expires_at, later),
        Tier::Free
    );
    // Renewing after expiry starts from now.
    let user = store.grant(77, Tier::Pro, 30, later).await.unwrap();
    assert_eq!(user.tier_expires_at, Some(later + 30 * DAY));

    // A different tier starts from now; FREE revokes.
    let user = store
        .grant(77, Tier::Creator, 7, later + DAY)
        .await
        .unwrap();
    assert_eq!(
        (user.tier, user.tier_expires_at),
        (Tier::Creator, Some(later + 8 * DAY))
    );
    let user = store.grant(77, Tier::Free, 0, later + DAY).await.unwrap();
    assert_eq!((user.tier, user.tier_expires_at), (Tier::Free, None));
    assert!(matches!(
        store.grant(77, Tier::Pro, 0, later).await,
        Err(StoreError::InvalidInput(_))
    ));

    // Bans.
    store.set_banned(77, true).await.unwrap();
    assert!(store.get_user(77).await.unwrap().unwrap().banned);
    store.set_banned(77, false).await.unwrap();
    assert!(!store.get_user(77).await.unwrap().unwrap().banned);
    assert!(matches!(
        store.set_banned(78, true).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn reads_and_counters(store: Store) {
    assert_eq!(
        store.queue_depth().await.unwrap(),
        [(Tier::Free, 0), (Tier::Pro, 0), (Tier::Creator, 0)]
    );
    let mut ids = Vec::new();
    for tier in [Tier::Free, Tier::Free, Tier::Pro, Tier::Creator] {
        ids.push(store.enqueue(&task("subtitle", tier), T0).await.unwrap());
    }
    assert_eq!(
        store.queue_depth().await.unwrap(),
        [(Tier::Free, 2), (Tier::Pro, 1), (Tier::Creator, 1)]
    );
    let c = store
        .claim("w", &["subtitle"], LEASE, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.tier, Tier::Creator);
    assert_eq!(store.processing_count().await.unwrap(), 1);
    assert_eq!(
        store
            .heartbeat(c.id, "w", LEASE, Some(("transcribe", 42.5)), T0 + 10)
            .await
            .unwrap(),
        Lease::Held
    );
    let row = store.get_task(c.id).await.unwrap().unwrap();
    assert_eq!(row.progress_stage.as_deref(), Some("transcribe"));
    assert_eq!(row.progress_percent, Some(42.5));
    assert_eq!(row.lease_expires_at, Some(T0 + 10 + LEASE));
    assert_eq!(row.heartbeat_at, Some(T0 + 10));
    assert!(row.generate_subtitles && !row.voiceover && !row.vertical_format);
    assert_eq!(row.priority, 2);
    assert!(store
        .complete(c.id, "w", r#"{"srt":"a.srt"}"#, T0 + 100)
        .await
        .unwrap());

    let mut counts = store.status_counts().await.unwrap();
    counts.sort();
    assert_eq!(
        counts,
        [
            ("completed".to_owned(), Tier::Creator, 1),
            ("queued".to_owned(), Tier::Free, 2),
            ("queued".to_owned(), Tier::Pro, 1),
        ]
    );

    let all = store.list_tasks(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|t| t.id).collect::<Vec<_>>(),
        ids.iter().rev().copied().collect::<Vec<_>>(),
        "newest first"
    );
    assert_eq!(store.list_tasks(None, 2).await.unwrap().len(), 2);
    assert_eq!(store.list_tasks(Some("queued"), 10).await.unwrap().len(), 3);
    assert!(matches!(
        store.list_tasks(Some("bogus"), 10).await,
        Err(StoreError::InvalidInput(_))
    ));

    assert!(store.finished_before(T0 + 100).await.unwrap().is_empty());
    assert_eq!(store.finished_before(T0 + 101).await.unwrap(), [c.id]);
    let mut probe = vec![999_999, ids[0], ids[3]];
    probe.extend(1_000_000..1_000_600); // more than one chunk
    let mut expected = vec![ids[0], ids[3]];
    expected.sort_unstable();
    assert_eq!(store.task_ids_existing(&probe).await.unwrap(), expected);
    assert!(store.task_exists(ids[1]).await.unwrap());
    assert!(!store.task_exists(999_999).await.unwrap());
    assert!(store.get_task(999_999).await.unwrap().is_none());
}

async fn payments_and_logs(store: Store) {
    let user = store
        .upsert_user(555, Some("payer"), None, T0)
        .await
        .unwrap();
    let payment = NewPayment {
        user_id: user.id,
        amount: 990,
        currency: "RUB".into(),
        tier: Tier::Pro,
        period: PaymentPeriod::Month,
        days: 30,
        status: PaymentStatus::Pending,
        external_id: Some("yk-123".into()),
        payload: Some(r#"{"event":"payment.waiting"}"#.into()),
        request_key: None,
        redirect_url: None,
        expires_at: None,
    };
    let id = store.insert_payment(&payment, T0).await.unwrap();
    let got = store
        .get_payment_by_external_id("yk-123")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.id, id);
    assert_eq!(
        (got.amount, got.tier, got.period),
        (990, Tier::Pro, PaymentPeriod::Month)
    );
    assert_eq!(got.status, PaymentStatus::Pending);
    assert_eq!(got.created_at, T0);
    assert!(store
        .get_payment_by_external_id("nope")
        .await
        .unwrap()
        .is_none());
    // The provider's id is unique: a replayed webhook cannot insert twice.
    assert!(matches!(
        store.insert_payment(&payment, T0).await,
        Err(StoreError::Database(_))
    ));

    store
        .log(Level::Info, "bot", None, "started", T0)
        .await
        .unwrap();
    store
        .log(
            Level::Critical,
            "billing",
            Some(7),
            "webhook signature mismatch",
            T0 + 1,
        )
        .await
        .unwrap();
    let all = store.recent_logs(Level::Info, 10).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].level, Level::Critical, "newest first");
    assert_eq!(
        (all[0].source.as_str(), all[0].task_id),
        ("billing", Some(7))
    );
    let critical = store.recent_logs(Level::Critical, 10).await.unwrap();
    assert_eq!(critical.len(), 1);
    assert_eq!(store.recent_logs(Level::Info, 1).await.unwrap().len(), 1);
}

// ------------------------------------------------------- concurrent migration on startup

async fn migrate_concurrently(kind: Db) {
    let db = TestDb::new(kind).await;
    let connects: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { Store::connect(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    let mut errors = Vec::new();
    for c in connects {
        match c.await.expect("connect task") {
            Ok(store) => stores.push(store),
            Err(e) => errors.push(e.to_string()),
        }
    }
    for store in &stores {
        assert!(store.migrations_applied().await.unwrap());
    }
    if let Some(store) = stores.first() {
        store
            .enqueue(&task("subtitle", Tier::Free), T0)
            .await
            .unwrap();
    }
    for store in &stores {
        store.close().await;
    }
    db.remove().await;
    assert!(errors.is_empty(), "concurrent connects failed: {errors:?}");
    assert_eq!(stores.len(), 4);
}

mod concurrent_migrations {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        super::migrate_concurrently(super::Db::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        super::migrate_concurrently(super::Db::Postgres).await
    }
}

mod newer_schema {
    #[tokio::test]
    async fn sqlite() {
        super::a_database_migrated_further_still_opens(super::Db::Sqlite).await
    }

    #[tokio::test]
    async fn postgres() {
        super::a_database_migrated_further_still_opens(super::Db::Postgres).await
    }
}

/// A rolling update: an older binary (re)started on a database a newer one has migrated further (a migration it
/// does not know is recorded) opens it and works, instead of refusing to start.
async fn a_database_migrated_further_still_opens(kind: Db) {
    use sqlx::Connection;
    let db = TestDb::new(kind).await;
    Store::connect(&db.url).await.unwrap().close().await;
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from a newer autosub', $1, $2, 1)",
    )
    .bind(true)
    .bind(vec![0u8; 48])
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let store = Store::connect(&db.url).await.unwrap();
    assert!(store.migrations_applied().await.unwrap());
    store
        .enqueue(&task("subtitle", Tier::Free), T0)
        .await
        .unwrap();
    store.close().await;
    db.remove().await;
}

/// `Store::open_default` creates the data directory and the database file.
#[tokio::test]
async fn open_default_creates_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested").join("data");
    let store = Store::open_default(&data).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    assert!(data.join("autosub.db").is_file());
    assert!(store.migrations_applied().await.unwrap());
    store.close().await;
    // Reopening an existing database does not re-run or trip over migrations.
    let again = Store::open_default(&data).await.unwrap();
    assert!(again.migrations_applied().await.unwrap());
    again.close().await;
}

/// The in-memory store works (a single connection holds the database).
#[tokio::test]
async fn in_memory_sqlite_works() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let id = store
        .enqueue(&task("subtitle", Tier::Free), T0)
        .await
        .unwrap();
    let c = store
        .claim("w", &["subtitle"], LEASE, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.id, id);
    store.close().await;
}

/// Connection errors never show the password.
#[tokio::test]
async fn connect_errors_hide_the_password() {
    let err = Store::connect("postgres://bob:hunter2@127.0.0.1:1/db")
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.contains("hunter2"), "{err}");
    assert!(err.contains("bob:***@"), "{err}");
}

/// The bot's tables: an update makes one request; a task made with a key is made once; a retry starts a new round
/// and news of the old round written late is ignored (a notifier pass that raced the retry).
async fn bot_requests_tasks_and_rounds(store: Store) {
    use autosub_store::{NewRequest, RequestStatus};
    let r = NewRequest {
        telegram_id: 7,
        chat_id: 7,
        update_id: Some(1000),
        source: "{}".into(),
        options: "{}".into(),
        submitted: false,
        media_group: None,
    };
    let (a, new_a) = store.bot_request_insert(&r, T0).await.unwrap();
    let (b, new_b) = store.bot_request_insert(&r, T0).await.unwrap();
    assert!(new_a && !new_b);
    assert_eq!(a.id, b.id);
    // Only the owner's draft moves on, once.
    assert!(!store
        .bot_request_advance(a.id, 8, RequestStatus::Submitted, T0)
        .await
        .unwrap());
    assert!(store
        .bot_request_advance(a.id, 7, RequestStatus::Submitted, T0)
        .await
        .unwrap());
    assert!(!store
        .bot_request_advance(a.id, 7, RequestStatus::Submitted, T0)
        .await
        .unwrap());

    let mut t = task("process", Tier::Free);
    t.user_telegram_id = Some(7);
    t.idem_key = Some(format!("bot-request:{}", a.id));
    let id = store.enqueue(&t, T0).await.unwrap();
    assert_eq!(store.enqueue(&t, T0).await.unwrap(), id);
    assert_eq!(
        store.get_user(7).await.unwrap().unwrap().tasks_today,
        1,
        "counted once"
    );
    assert_eq!(
        store
            .task_id_by_key(&format!("bot-request:{}", a.id))
            .await
            .unwrap(),
        Some(id)
    );
    assert_eq!(store.queue_position(id).await.unwrap(), Some(1));

    store.bot_task_insert(id, &a, "en", None, T0).await.unwrap();
    store
        .claim("w", &["process"], LEASE, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.queue_position(id).await.unwrap(), None);
    store.fail(id, "w", &failure(false), T0).await.unwrap();
    let bt = store.bot_task(id).await.unwrap().unwrap();
    assert_eq!(bt.round, 0);
    store.bot_task_sent(id, 0, "status").await.unwrap();
    assert!(store.retry_for_bot(id, T0).await.unwrap());
    // The old round's late writes change nothing.
    store.bot_task_sent(id, 0, "video").await.unwrap();
    store.bot_task_finish(id, 0).await.unwrap();
    let bt = store.bot_task(id).await.unwrap().unwrap();
    assert_eq!((bt.round, bt.finished, bt.sent.len()), (1, false, 0));
    store.bot_task_sent(id, 1, "status").await.unwrap();
    store.bot_task_finish(id, 1).await.unwrap();
    let bt = store.bot_task(id).await.unwrap().unwrap();
    assert_eq!((bt.finished, bt.sent), (true, vec!["status".to_owned()]));
    // Only a failed task is retried.
    assert!(!store.retry_for_bot(id, T0).await.unwrap());
}

/// Albums: requests of one media group listed in order, per user; drafts started or dropped together; the album
/// made once; its files with their tasks; a retry of one of its tasks opens the album again.
async fn albums_group_requests_and_reopen_on_retry(store: Store) {
    use autosub_store::{NewRequest, RequestStatus};
    let req = |update: i64, user: i64, group: &str| NewRequest {
        telegram_id: user,
        chat_id: user,
        update_id: Some(update),
        source: format!("{{\"n\":{update}}}"),
        options: "{}".into(),
        submitted: false,
        media_group: Some(group.into()),
    };
    let (a, _) = store
        .bot_request_insert(&req(1, 7, "g1"), T0)
        .await
        .unwrap();
    let (b, _) = store
        .bot_request_insert(&req(2, 7, "g1"), T0)
        .await
        .unwrap();
    // The same group id from another user is another album; a redelivered update adds nothing.
    store
        .bot_request_insert(&req(3, 8, "g1"), T0)
        .await
        .unwrap();
    let (again, new) = store
        .bot_request_insert(&req(2, 7, "g1"), T0)
        .await
        .unwrap();
    assert!(!new && again.id == b.id);
    let group = store.bot_group(7, "g1").await.unwrap();
    assert_eq!(
        group.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![a.id, b.id]
    );
    assert_eq!(group[0].media_group.as_deref(), Some("g1"));
    // Started together with the leader's options, once.
    let opts = r#"{"vertical":"blur"}"#;
    assert_eq!(
        store
            .bot_group_advance(7, "g1", RequestStatus::Submitted, opts, T0)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .bot_group_advance(7, "g1", RequestStatus::Submitted, opts, T0)
            .await
            .unwrap(),
        0
    );
    let group = store.bot_group(7, "g1").await.unwrap();
    assert!(group
        .iter()
        .all(|r| r.status == RequestStatus::Submitted && r.options == opts));
    assert_eq!(
        store.bot_group(8, "g1").await.unwrap()[0].status,
        RequestStatus::Draft
    );
    // A late file joins with the album's options.
    let (c, _) = store
        .bot_request_insert(&req(4, 7, "g1"), T0)
        .await
        .unwrap();
    assert!(store
        .bot_request_advance_with(c.id, RequestStatus::Submitted, opts, T0)
        .await
        .unwrap());
    assert!(!store
        .bot_request_advance_with(c.id, RequestStatus::Submitted, opts, T0)
        .await
        .unwrap());

    // One album per user and group, whoever opens it first; its message is set once; each opening is a new
    // generation.
    assert_eq!(store.bot_album_find(7, "g1").await.unwrap(), None);
    let album = store
        .bot_album_open(7, 7, "g1", "ru", Some(55), T0)
        .await
        .unwrap();
    let same = store
        .bot_album_open(7, 7, "g1", "en", Some(66), T0 + 1)
        .await
        .unwrap();
    assert_eq!((same.id, same.lang.as_str()), (album.id, "ru"));
    assert_eq!(same.status_message_id, Some(55));
    assert_eq!(same.generation, album.generation + 1);
    assert_eq!(
        store.bot_album_find(7, "g1").await.unwrap(),
        Some(same.clone())
    );
    let album = same;
    assert_ne!(
        store
            .bot_album_open(8, 8, "g1", "en", None, T0)
            .await
            .unwrap()
            .id,
        album.id
    );
    // Files 1 and 2 queued, file 3 refused.
    let mut ids = vec![];
    for (i, r) in [&a, &b].into_iter().enumerate() {
        let mut t = task("process", Tier::Free);
        t.user_telegram_id = Some(7);
        let id = store.enqueue(&t, T0).await.unwrap();
        store
            .bot_request_finish(r.id, RequestStatus::Queued, Some(id), None, T0)
            .await
            .unwrap();
        store
            .bot_task_insert(id, r, "ru", Some((album.id, i as i64 + 1)), T0)
            .await
            .unwrap();
        ids.push(id);
    }
    store
        .bot_request_finish(c.id, RequestStatus::Refused, None, Some("limit"), T0)
        .await
        .unwrap();
    let items = store.bot_album_items(&album).await.unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].task.as_ref().unwrap().id, ids[0]);
    assert_eq!(
        items[1].followed.as_ref().unwrap().album,
        Some((album.id, 2))
    );
    assert!(items[2].task.is_none() && items[2].request.note.as_deref() == Some("limit"));

    // Its text recorded; closed; a pass that read an older generation cannot close it after a reopening; a
    // failed task of it retried opens it again.
    store
        .bot_album_status(album.id, album.generation, None, Some("2 done"), true)
        .await
        .unwrap();
    assert!(store
        .bot_albums_open(10)
        .await
        .unwrap()
        .iter()
        .all(|x| x.id != album.id));
    let reopened = store
        .bot_album_open(7, 7, "g1", "ru", None, T0)
        .await
        .unwrap();
    assert!(!reopened.finished);
    store
        .bot_album_status(album.id, album.generation, None, Some("stale"), true)
        .await
        .unwrap();
    assert!(!store.bot_album(album.id).await.unwrap().unwrap().finished);
    store
        .bot_album_status(album.id, reopened.generation, None, Some("2 done"), true)
        .await
        .unwrap();
    let closed = store.bot_album(album.id).await.unwrap().unwrap();
    assert_eq!(
        (
            closed.status_message_id,
            closed.status_text.as_deref(),
            closed.finished
        ),
        (Some(55), Some("2 done"), true)
    );
    store
        .claim("w", &["process"], LEASE, T0)
        .await
        .unwrap()
        .unwrap();
    store.fail(ids[0], "w", &failure(false), T0).await.unwrap();
    let before = store.bot_album(album.id).await.unwrap().unwrap();
    assert!(store.retry_for_bot(ids[0], T0).await.unwrap());
    // A pass that read the album before the retry cannot close it.
    store
        .bot_album_status(album.id, before.generation, None, None, true)
        .await
        .unwrap();
    assert!(store
        .bot_albums_open(10)
        .await
        .unwrap()
        .iter()
        .any(|x| x.id == album.id));

    // Cancelling the album drops the files not queued yet (drafts and files being checked) only.
    let (d, _) = store
        .bot_request_insert(&req(5, 7, "g2"), T0)
        .await
        .unwrap();
    let (e, _) = store
        .bot_request_insert(&req(6, 7, "g2"), T0)
        .await
        .unwrap();
    store
        .bot_request_advance(e.id, 7, RequestStatus::Submitted, T0)
        .await
        .unwrap();
    assert_eq!(store.bot_group_drop(7, "g2", T0).await.unwrap(), 2);
    let g2 = store
        .bot_album_open(7, 7, "g2", "en", None, T0)
        .await
        .unwrap();
    assert!(!g2.cancelled);
    store.bot_album_cancel(g2.id).await.unwrap();
    assert!(store.bot_album(g2.id).await.unwrap().unwrap().cancelled);
    // A file refused on arrival is refused from its first row (never seen submitted), once per update.
    let (f, new) = store
        .bot_request_insert_refused(&req(7, 7, "g3"), "no", T0)
        .await
        .unwrap();
    assert!(new && f.status == RequestStatus::Refused && f.note.as_deref() == Some("no"));
    let (again, new) = store
        .bot_request_insert_refused(&req(7, 7, "g3"), "no", T0)
        .await
        .unwrap();
    assert!(!new && again.id == f.id);
    assert_eq!(store.bot_group_drop(7, "g1", T0).await.unwrap(), 0);
    for r in [d, e] {
        assert_eq!(
            store.bot_request(r.id).await.unwrap().unwrap().status,
            RequestStatus::Dropped
        );
    }
}
