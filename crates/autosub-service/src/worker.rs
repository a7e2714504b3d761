//! The worker: claims tasks from the queue and runs them through the core, `concurrency` at a time.
//!
//! Each claimed task runs on a blocking thread (the pipeline is synchronous) with a [`Sink`] that records its
//! progress and answers `is_cancelled` from one flag. An async supervisor per task heartbeats the lease every
//! `heartbeat` (sending the progress), and raises the flag when the lease is lost (another worker took the task
//! over), the task is cancelled (`autosub jobs cancel`), its tier's timeout passes, or the worker is stopped a second
//! time. The running stage then kills its child processes (ffmpeg, yt-dlp) and returns. A panic in a job is
//! caught and fails that task only.
//!
//! Shutdown: the first SIGTERM (or Ctrl-C) stops claiming and lets running tasks finish ("drain"); a second one
//! cancels them and gives them back to the queue (`release`), so nothing is lost. Rescue of other workers' expired
//! leases and the storage janitor run in every worker, at intervals.

use crate::storage;
use autosub_core::job::{Job, JobEnv, JobInput};
use autosub_core::progress::{Event, Sink, Stage};
use autosub_store::{Claimed, FailOutcome, Failure, Lease, Store};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

/// The job kinds this build runs. `process` is the product's job ([`Job`]); `sleep` is a trivial job for
/// checking a deployment and the queue itself (`{"ms": 500}` waits half a second and writes one file).
pub const KINDS: &[&str] = &["process", "sleep"];

/// Where and how the daily backup is written.
#[derive(Clone, Debug)]
pub struct BackupPlan {
    pub dir: PathBuf,
    pub keep: usize,
    /// The database URL (pg_dump connects itself); `None`: the SQLite default.
    pub database_url: Option<String>,
    /// How often (a day).
    pub every: Duration,
}

/// Users are reminded this long before their paid tier ends.
pub const REMIND_BEFORE_MS: i64 = 3 * 86_400_000;

/// How a worker behaves.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Names this worker in leases and logs (`host-pid`).
    pub id: String,
    /// Jobs run at once.
    pub concurrency: usize,
    /// A claim is held this long without a heartbeat before others may rescue it.
    pub lease: Duration,
    /// How often a running job's lease is renewed and cancel requests are read (a third of the lease, at most
    /// 5 s).
    pub heartbeat: Duration,
    /// How long an idle worker waits before looking for work again.
    pub poll: Duration,
    /// How often expired leases are looked for.
    pub rescue_every: Duration,
    /// How often the storage janitor runs.
    pub janitor_every: Duration,
    /// Task folders are kept this long after the task ends.
    pub retention: Duration,
    /// How often paid tiers that ended are moved to FREE and their users told (one worker per period does it,
    /// whichever claims the `subscriptions` schedule first; users whose tier ends within 3 days are reminded).
    pub subscriptions_every: Duration,
    /// The daily database backup (one worker per day, by the `backup` schedule), when set.
    pub backup: Option<BackupPlan>,
    /// `$AUTOSUB_DATA_DIR`: task folders live in its `storage/`.
    pub data_dir: PathBuf,
    /// The shared store of task files (`AUTOSUB_STORAGE_URL`): inputs fetched from it, outputs put back.
    pub shared: Option<crate::storage::Storage>,
}

impl WorkerOptions {
    pub fn new(data_dir: PathBuf, concurrency: usize, lease: Duration) -> Self {
        WorkerOptions {
            id: default_worker_id(),
            concurrency: concurrency.max(1),
            lease,
            heartbeat: (lease / 3).min(Duration::from_secs(5)),
            poll: Duration::from_millis(50),
            rescue_every: (lease / 2).max(Duration::from_secs(1)),
            janitor_every: Duration::from_secs(600),
            retention: Duration::from_secs(24 * 3600),
            subscriptions_every: Duration::from_secs(3600),
            backup: None,
            data_dir,
            shared: None,
        }
    }
}

/// `hostname-pid-XXXX` (the last part from the start time, so that containers that all run as pid 1 on one
/// hostname still differ).
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "worker".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{host}-{}-{:04x}", std::process::id(), nanos & 0xffff)
}

/// How far a stop has gone: running, draining (finish running jobs, claim nothing), stopping (cancel and release).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stop {
    Run,
    Drain,
    Now,
}

/// Counters shared with the HTTP server's `/metrics`.
#[derive(Default)]
pub struct WorkerStats {
    pub busy: AtomicUsize,
}

/// Why a running job was asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum StopReason {
    None = 0,
    Cancelled = 1,
    Timeout = 2,
    LeaseLost = 3,
    Shutdown = 4,
}

/// Progress and the stop flag of one running job.
struct Control {
    stop: AtomicBool,
    reason: AtomicU8,
    progress: Mutex<(Option<Stage>, Option<u64>, u64)>,
}

impl Control {
    fn new() -> Self {
        Control {
            stop: AtomicBool::new(false),
            reason: AtomicU8::new(StopReason::None as u8),
            progress: Mutex::new((None, None, 0)),
        }
    }

    /// Asks the job to stop; the first reason given wins.
    fn stop(&self, why: StopReason) {
        let _ = self.reason.compare_exchange(
            StopReason::None as u8,
            why as u8,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        self.stop.store(true, Ordering::SeqCst);
    }

    fn reason(&self) -> StopReason {
        match self.reason.load(Ordering::SeqCst) {
            1 => StopReason::Cancelled,
            2 => StopReason::Timeout,
            3 => StopReason::LeaseLost,
            4 => StopReason::Shutdown,
            _ => StopReason::None,
        }
    }

    /// The current stage and percent for the task row.
    fn progress(&self) -> Option<(String, f64)> {
        let p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        let stage = p.0?;
        let percent = match p.1 {
            Some(t) if t > 0 => (p.2 as f64 * 100.0 / t as f64).min(100.0),
            _ => 0.0,
        };
        Some((stage.id().to_owned(), percent))
    }
}

impl Sink for Control {
    fn event(&self, event: Event<'_>) {
        let mut p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Start { stage, total } => *p = (Some(stage), total, 0),
            Event::Progress { stage, done } if p.0 == Some(stage) => p.2 = done,
            Event::Finish { stage, elapsed } => {
                metrics::histogram!("autosub_stage_duration_seconds", "stage" => stage.id())
                    .record(elapsed.as_secs_f64());
                if p.0 == Some(stage) {
                    if let Some(t) = p.1 {
                        p.2 = t;
                    }
                }
            }
            Event::Warning(w) => tracing::warn!("{w}"),
            _ => {}
        }
    }

    fn is_cancelled(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// How a job ended, before it is written to the queue.
enum Ended {
    Done(serde_json::Value),
    Failed(Failure),
}

/// A failure of a job of the core: the message for the user, the operator's detail, whether to retry.
fn failure_of(e: &autosub_core::Error) -> Failure {
    Failure {
        user_message: e.user_message(),
        operator_detail: e.operator_hint().unwrap_or_else(|| e.to_string()),
        retryable: e.retryable(),
    }
}

/// The `outputs` JSON of a finished [`Job`]: the files and what the user is told (the transcript itself is in the
/// `.json` file).
fn outputs_json(o: &autosub_core::job::JobOutputs) -> serde_json::Value {
    let files =
        |f: &[(autosub_subs::Format, PathBuf)]| -> serde_json::Map<String, serde_json::Value> {
            f.iter()
                .map(|(f, p)| (f.extension().to_owned(), serde_json::json!(p)))
                .collect()
        };
    serde_json::json!({
        "files": files(&o.files),
        "translations": o.translations.iter().map(|t| serde_json::json!({
            "language": t.language, "engine": t.engine, "cues": t.cues, "files": files(&t.files),
        })).collect::<Vec<_>>(),
        "video": o.video.as_ref().map(|r| &r.path),
        "voiceover_audio": o.voiceover_audio,
        "language": o.document.language,
        "duration_ms": o.document.duration_ms,
        "cues": o.document.cues.len(),
        "burned_language": o.burned_language,
        "warnings": o.document.warnings,
        "notes": o.notes,
        "damaged": o.damaged,
        "title": o.fetched.as_ref().and_then(|f| f.title.clone()),
    })
}

/// Runs the `process` job of a task in its folder: a relative input path is a file in the task's `input/`.
fn run_process(
    spec: &str,
    env: &JobEnv,
    dir: &Path,
    sink: &Control,
) -> Result<serde_json::Value, Failure> {
    let mut job = Job::from_json(spec).map_err(|e| failure_of(&e))?;
    if let JobInput::File { path } = &mut job.input {
        if path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(Failure {
                user_message: "the job's input is not in its folder".into(),
                operator_detail: format!("refused input path {}", path.display()),
                retryable: false,
            });
        }
        if path.is_relative() {
            *path = dir.join(&*path);
        }
    }
    // Files staged with the task (a style, a watermark image, a glossary) are named relative to its folder, so that
    // a worker whose data dir is elsewhere (another machine, the shared store) finds them in its own copy.
    let staged = |p: &Path| {
        let safe = !p
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
        (safe && p.is_relative() && p.starts_with("input")).then(|| dir.join(p))
    };
    if let Some(v) = job.video.as_mut() {
        if let Some(style) = v.style.as_mut() {
            if let Some(p) = staged(Path::new(style.as_str())) {
                *style = p.display().to_string();
            }
        }
        if let Some(w) = v.watermark.as_mut() {
            if let Some(p) = staged(Path::new(&w.value)) {
                w.value = p.display().to_string();
            }
        }
    }
    if let Some(g) = job.translate.as_mut().and_then(|t| t.glossary.as_mut()) {
        if let Some(p) = staged(g) {
            *g = p;
        }
    }
    let out = dir.join("out");
    let o = autosub_core::job::run(&job, env, &out, sink).map_err(|e| failure_of(&e))?;
    Ok(outputs_json(&o))
}

/// The `sleep` job: `{"ms": N, "fail": "transient" | "permanent" | "transient-once" | "panic"}`; writes
/// `out/slept.txt` when it succeeds.
fn run_sleep(
    spec: &str,
    attempt: i64,
    dir: &Path,
    sink: &Control,
) -> Result<serde_json::Value, Failure> {
    let v: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
    let ms = v["ms"].as_u64().unwrap_or(0);
    let t0 = Instant::now();
    sink.event(Event::Start {
        stage: Stage::Render,
        total: Some(ms),
    });
    while t0.elapsed() < Duration::from_millis(ms) {
        if sink.is_cancelled() {
            return Err(failure_of(&autosub_core::Error::Cancelled));
        }
        sink.event(Event::Progress {
            stage: Stage::Render,
            done: t0.elapsed().as_millis() as u64,
        });
        std::thread::sleep(Duration::from_millis(20));
    }
    let fail = |retryable: bool| Failure {
        user_message: "the test job failed as asked".into(),
        operator_detail: format!("sleep job asked to fail (attempt {attempt})"),
        retryable,
    };
    match v["fail"].as_str() {
        Some("transient") => return Err(fail(true)),
        Some("transient-once") if attempt == 1 => return Err(fail(true)),
        Some("permanent") => return Err(fail(false)),
        Some("panic") => panic!("sleep job asked to panic"),
        _ => {}
    }
    let out = dir.join("out");
    std::fs::create_dir_all(&out).map_err(|e| Failure {
        user_message: "an internal error stopped the processing".into(),
        operator_detail: format!("cannot create {}: {e}", out.display()),
        retryable: true,
    })?;
    let file = out.join("slept.txt");
    let tmp = autosub_core::partial::partial_path(&file, "slept.txt");
    std::fs::write(&tmp, format!("slept {ms} ms on attempt {attempt}\n"))
        .and_then(|()| std::fs::rename(&tmp, &file))
        .map_err(|e| Failure {
            user_message: "an internal error stopped the processing".into(),
            operator_detail: format!("cannot write {}: {e}", file.display()),
            retryable: true,
        })?;
    Ok(serde_json::json!({ "files": { "txt": file } }))
}

/// `op` until it succeeds, at most 3 times, 1 s then 2 s apart (a shared store's passing hiccup).
async fn with_retries<T, F, Fut>(mut op: F) -> Result<T, storage::StorageError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, storage::StorageError>>,
{
    let mut wait = Duration::from_secs(1);
    let mut tries = 0;
    loop {
        tries += 1;
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if tries >= 3 => return Err(e),
            Err(e) => {
                tracing::warn!("shared store, try {tries}: {e}");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
    }
}

/// Runs one claimed task to its end on this thread (called on a blocking thread).
fn execute(c: &Claimed, env: &JobEnv, data_dir: &Path, sink: &Control) -> Ended {
    let dir = storage::task_dir(data_dir, c.id);
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match c.kind.as_str() {
        "process" => run_process(&c.spec, env, &dir, sink),
        "sleep" => run_sleep(&c.spec, c.attempts, &dir, sink),
        other => Err(Failure {
            user_message: "this kind of job cannot be run".into(),
            operator_detail: format!("unknown job kind {other:?}"),
            retryable: false,
        }),
    }));
    match run {
        Ok(Ok(v)) => Ended::Done(v),
        Ok(Err(f)) => Ended::Failed(f),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Ended::Failed(Failure {
                user_message:
                    "an internal error stopped the processing; the operator has been told".into(),
                operator_detail: format!("the job panicked: {msg}"),
                retryable: false,
            })
        }
    }
}

/// A worker: a store, the shared job environment (models loaded once), options.
pub struct Worker {
    pub store: Store,
    pub env: Arc<JobEnv>,
    pub opts: WorkerOptions,
    pub stats: Arc<WorkerStats>,
}

impl Worker {
    /// Claims and runs tasks until `stop` says [`Stop::Drain`] (then waits for the running ones) or [`Stop::Now`].
    pub async fn run(self, mut stop: watch::Receiver<Stop>) {
        let this = Arc::new(self);
        let permits = Arc::new(Semaphore::new(this.opts.concurrency));
        let mut running = JoinSet::new();
        tracing::info!(
            worker = %this.opts.id,
            concurrency = this.opts.concurrency,
            "worker started"
        );
        // Rescue and the janitor run beside the claim loop, so that they go on while every slot is busy.
        let maintenance = {
            let me = this.clone();
            tokio::spawn(async move {
                let mut rescue = tokio::time::interval(me.opts.rescue_every);
                let mut janitor = tokio::time::interval(me.opts.janitor_every);
                // Looks often, runs once per period: the schedule in the database says whose turn it is.
                let mut subscriptions =
                    tokio::time::interval(me.opts.subscriptions_every.min(Duration::from_secs(30)));
                loop {
                    tokio::select! {
                        _ = rescue.tick() => me.rescue().await,
                        _ = janitor.tick() => me.janitor().await,
                        _ = subscriptions.tick() => {
                            me.subscriptions().await;
                            me.backup().await;
                        }
                    }
                }
            })
        };
        let mut claims: u64 = 0;
        loop {
            if *stop.borrow() != Stop::Run {
                break;
            }
            while running.try_join_next().is_some() {}
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                r = stop.changed() => {
                    if r.is_err() {
                        break;
                    }
                    continue;
                }
            };
            let now = autosub_store::now_ms();
            let lease = this.opts.lease.as_millis() as i64;
            let version = i64::from(autosub_core::job::JOB_VERSION);
            // Every claim has its own owner token (`worker/N`): a task rescued from this worker and claimed again by
            // it is a new lease, which the old run's writes cannot touch.
            claims += 1;
            let owner = format!("{}/{claims}", this.opts.id);
            match this
                .store
                .claim_up_to(&owner, KINDS, version, lease, now)
                .await
            {
                Ok(Some(c)) => {
                    let me = this.clone();
                    let stop = stop.clone();
                    // Every log line about the task, here and in the job's own thread, carries its id.
                    let span = tracing::info_span!("task", id = c.id);
                    running.spawn(
                        async move {
                            me.supervise(c, owner, stop).await;
                            drop(permit);
                        }
                        .instrument(span),
                    );
                }
                Ok(None) => {
                    drop(permit);
                    tokio::select! {
                        _ = tokio::time::sleep(this.opts.poll) => {}
                        _ = stop.changed() => {}
                    }
                }
                Err(e) => {
                    drop(permit);
                    tracing::error!("cannot claim a task: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(this.opts.poll * 20) => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        }
        if !running.is_empty() {
            tracing::info!(jobs = running.len(), "draining: finishing the running jobs");
        }
        while running.join_next().await.is_some() {}
        maintenance.abort();
        tracing::info!(worker = %this.opts.id, "worker stopped");
    }

    /// Puts the tasks of workers that stopped heartbeating back in the queue, and cancels tasks whose submitter
    /// died before their input was stored (an hour later).
    async fn rescue(&self) {
        match self
            .store
            .reap_created(3_600_000, autosub_store::now_ms())
            .await
        {
            Ok(ids) if !ids.is_empty() => {
                tracing::warn!(?ids, "cancelled tasks whose input never arrived")
            }
            Ok(_) => {}
            Err(e) => tracing::error!("reaping unfinished submissions failed: {e}"),
        }
        match self.store.rescue_expired(autosub_store::now_ms()).await {
            Ok(r) => {
                for x in r {
                    metrics::counter!("autosub_leases_rescued_total").increment(1);
                    tracing::warn!(task = x.id, owner = ?x.lease_owner, outcome = ?x.outcome, "rescued an expired lease");
                }
            }
            Err(e) => tracing::error!("rescue of expired leases failed: {e}"),
        }
    }

    async fn janitor(&self) {
        let retention = self.opts.retention.as_millis() as i64;
        match storage::sweep(
            &self.store,
            &self.opts.data_dir,
            retention,
            autosub_store::now_ms(),
        )
        .await
        {
            Ok(s) if !s.removed.is_empty() => {
                tracing::info!(count = s.removed.len(), "removed old task folders")
            }
            Ok(_) => {}
            Err(e) => tracing::error!("storage janitor failed: {e}"),
        }
        if let Some(shared) = &self.opts.shared {
            match storage::sweep_shared(&self.store, shared, retention, autosub_store::now_ms())
                .await
            {
                Ok(s) if !s.removed.is_empty() => {
                    tracing::info!(
                        count = s.removed.len(),
                        "removed old tasks from the shared store"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::error!("shared storage janitor failed: {e}"),
            }
        }
    }

    /// The subscription sweep, when this worker claims the period's run.
    async fn subscriptions(&self) {
        let now = autosub_store::now_ms();
        let period = self.opts.subscriptions_every.as_millis() as i64;
        match self
            .store
            .claim_schedule("subscriptions", now, period)
            .await
        {
            Ok(true) => match self.store.sweep_subscriptions(now, REMIND_BEFORE_MS).await {
                Ok(s) => {
                    if s.expired + s.warned > 0 {
                        tracing::info!(
                            expired = s.expired,
                            reminded = s.warned,
                            "subscriptions swept"
                        );
                    }
                }
                Err(e) => tracing::error!("subscription sweep failed: {e}"),
            },
            Ok(false) => {}
            Err(e) => tracing::error!("subscription schedule: {e}"),
        }
    }

    /// The daily backup, when configured and this worker claims the day's run.
    async fn backup(&self) {
        let Some(plan) = &self.opts.backup else {
            return;
        };
        let now = autosub_store::now_ms();
        match self
            .store
            .claim_schedule("backup", now, plan.every.as_millis() as i64)
            .await
        {
            Ok(true) => {
                match crate::backup::scheduled(
                    &self.store,
                    plan.database_url.as_deref(),
                    &plan.dir,
                    plan.keep,
                    now,
                )
                .await
                {
                    Ok(file) => tracing::info!(file = %file.display(), "database backed up"),
                    Err(e) => {
                        tracing::error!("scheduled backup failed: {e}");
                        let _ = self
                            .store
                            .log(
                                autosub_store::Level::Error,
                                "backup",
                                None,
                                &format!("the scheduled backup failed: {e}"),
                                now,
                            )
                            .await;
                    }
                }
            }
            Ok(false) => {}
            Err(e) => tracing::error!("backup schedule: {e}"),
        }
    }

    /// Runs one claimed task: the job on a blocking thread, the lease renewed beside it, the end written back.
    async fn supervise(&self, c: Claimed, owner: String, mut stop: watch::Receiver<Stop>) {
        let id = c.id;
        tracing::info!(task = id, kind = %c.kind, attempt = c.attempts, tier = %c.tier.as_str(), "task started");
        self.stats.busy.fetch_add(1, Ordering::SeqCst);
        metrics::gauge!("autosub_workers_busy").increment(1.0);
        let ctl = Arc::new(Control::new());
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_millis(c.timeout_ms.max(1) as u64);
        // The shared store's transfers (inputs in, outputs out) run inside the supervised job, so that the lease is
        // renewed, and cancel and timeout are heard, while big files move.
        let mut job = {
            let ctl = ctl.clone();
            let env = self.env.clone();
            let data_dir = self.opts.data_dir.clone();
            let shared = self.opts.shared.clone();
            let c = c.clone();
            let span = tracing::Span::current();
            let outer = span.clone();
            tokio::spawn(tracing::Instrument::instrument(
                async move {
                    if let Some(s) = &shared {
                        let fetched =
                            with_retries(|| storage::fetch_inputs(s, &data_dir, c.id)).await;
                        if let Err(e) = fetched {
                            return Ended::Failed(Failure {
                                user_message:
                                    "the input could not be read from storage; it is tried again"
                                        .into(),
                                operator_detail: format!(
                                    "fetching the input from the shared store: {e}"
                                ),
                                retryable: true,
                            });
                        }
                    }
                    let ended = {
                        let (ctl, data_dir, c) = (ctl.clone(), data_dir.clone(), c.clone());
                        tokio::task::spawn_blocking(move || {
                            let _task = span.enter();
                            execute(&c, &env, &data_dir, &ctl)
                        })
                        .await
                        .unwrap_or_else(|e| {
                            Ended::Failed(Failure {
                                user_message: "an internal error stopped the processing".into(),
                                operator_detail: format!("the job's thread failed: {e}"),
                                retryable: false,
                            })
                        })
                    };
                    // With a shared store, a result counts once it is there: other machines deliver it.
                    if let (Ended::Done(_), Some(s)) = (&ended, &shared) {
                        if !ctl.is_cancelled() {
                            let put =
                                with_retries(|| storage::put_outputs(s, &data_dir, c.id)).await;
                            if let Err(e) = put {
                                return Ended::Failed(Failure {
                                    user_message:
                                        "the result could not be stored; it is tried again".into(),
                                    operator_detail: format!(
                                        "putting the outputs into the shared store: {e}"
                                    ),
                                    retryable: true,
                                });
                            }
                        }
                    }
                    ended
                },
                outer,
            ))
        };
        let mut beat = tokio::time::interval(self.opts.heartbeat);
        beat.tick().await;
        let lease = self.opts.lease.as_millis() as i64;
        let mut last_held = Instant::now();
        let timeout = tokio::time::sleep_until(deadline.into());
        tokio::pin!(timeout);
        let ended = loop {
            tokio::select! {
                r = &mut job => break r,
                _ = &mut timeout, if !ctl.is_cancelled() => ctl.stop(StopReason::Timeout),
                _ = beat.tick() => {
                    let p = ctl.progress();
                    let p = p.as_ref().map(|(s, x)| (s.as_str(), *x));
                    match self.store.heartbeat(id, &owner, lease, p, autosub_store::now_ms()).await {
                        Ok(Lease::Held) => last_held = Instant::now(),
                        Ok(Lease::CancelRequested) => ctl.stop(StopReason::Cancelled),
                        Ok(Lease::Lost) => ctl.stop(StopReason::LeaseLost),
                        Err(e) => {
                            tracing::warn!(task = id, "heartbeat failed: {e}");
                            // Cut off from the database for a whole lease: others will rescue the task, so stop.
                            if last_held.elapsed() >= self.opts.lease {
                                ctl.stop(StopReason::LeaseLost);
                            }
                        }
                    }
                }
                Ok(()) = stop.changed() => {
                    if *stop.borrow() == Stop::Now {
                        ctl.stop(StopReason::Shutdown);
                    }
                }
            }
        };
        self.stats.busy.fetch_sub(1, Ordering::SeqCst);
        metrics::gauge!("autosub_workers_busy").decrement(1.0);
        let elapsed = t0.elapsed();
        let ended = ended.unwrap_or_else(|e| {
            Ended::Failed(Failure {
                user_message: "an internal error stopped the processing".into(),
                operator_detail: format!("the job's supervisor failed: {e}"),
                retryable: false,
            })
        });
        self.finish(&c, &owner, &ctl, ended, elapsed).await;
    }

    /// Writes the end of a task to the queue (only while this worker still holds its lease).
    async fn finish(
        &self,
        c: &Claimed,
        owner: &str,
        ctl: &Control,
        ended: Ended,
        elapsed: Duration,
    ) {
        let id = c.id;
        let now = autosub_store::now_ms();
        let tier = c.tier.as_str();
        let worker = owner;
        let status = match (ended, ctl.reason()) {
            (_, StopReason::LeaseLost) => {
                tracing::warn!(
                    task = id,
                    "lost the lease (presumed dead and rescued): result dropped"
                );
                "lease_lost"
            }
            (Ended::Done(out), _) => {
                // The result is on disk: try hard to record it (a lost write would run the job again).
                let mut outcome = "error";
                for attempt in 0..5u32 {
                    match self.store.complete(id, worker, &out.to_string(), now).await {
                        Ok(true) => outcome = "completed",
                        Ok(false) => outcome = "lease_lost",
                        Err(e) => {
                            tracing::error!(
                                task = id,
                                "cannot record completion (try {}): {e}",
                                attempt + 1
                            );
                            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                            continue;
                        }
                    }
                    break;
                }
                outcome
            }
            (Ended::Failed(_), StopReason::Cancelled) => {
                match self.store.cancelled(id, worker, now).await {
                    Ok(true) => "cancelled",
                    Ok(false) => "lease_lost",
                    Err(e) => {
                        tracing::error!(task = id, "cannot record the cancel: {e}");
                        "error"
                    }
                }
            }
            (Ended::Failed(_), StopReason::Shutdown) => {
                match self.store.release(id, worker, now).await {
                    Ok(true) => "released",
                    Ok(false) => "lease_lost",
                    Err(e) => {
                        tracing::error!(task = id, "cannot release the task: {e}");
                        "error"
                    }
                }
            }
            (Ended::Failed(_), StopReason::Timeout) => {
                let minutes = c.timeout_ms / 60_000;
                let f = Failure {
                    user_message: format!(
                        "processing took longer than the {} plan allows ({minutes} min) and was stopped",
                        tier.to_uppercase()
                    ),
                    operator_detail: format!("timeout after {} s on {worker}", elapsed.as_secs()),
                    retryable: false,
                };
                match self.store.fail(id, worker, &f, now).await {
                    Ok(Some(_)) => "timeout",
                    Ok(None) => "lease_lost",
                    Err(e) => {
                        tracing::error!(task = id, "cannot record the timeout: {e}");
                        "error"
                    }
                }
            }
            (Ended::Failed(f), _) => match self.store.fail(id, worker, &f, now).await {
                Ok(Some(FailOutcome::Retrying { .. })) => "retrying",
                Ok(Some(FailOutcome::Failed)) => "failed",
                Ok(None) => "lease_lost",
                Err(e) => {
                    tracing::error!(task = id, "cannot record failure: {e}");
                    "error"
                }
            },
        };
        metrics::counter!("autosub_jobs_total", "status" => status, "tier" => tier).increment(1);
        metrics::histogram!("autosub_job_duration_seconds", "tier" => tier)
            .record(elapsed.as_secs_f64());
        tracing::info!(
            task = id,
            status,
            seconds = elapsed.as_secs_f64(),
            "task ended"
        );
    }
}
