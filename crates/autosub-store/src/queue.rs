//! The job queue: `tasks` rows are both the task record and the queue entry (as in River, Oban
//! or graphile-worker), so enqueueing is an `INSERT`, claiming an `UPDATE`, and there is no
//! second system to keep consistent with the first.
//!
//! Every method that changes a task after a worker claimed it is guarded by
//! `WHERE id = $1 AND status = 'processing' AND lease_owner = $2`: a worker whose lease was
//! taken away (see [`Store::rescue_expired`]) can no longer write anything.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::error::{Result, StoreError};
use crate::store::{
    get_bool, insert_log, parse_enum, parse_tier, placeholders, text_enum, utc_day, Backend, Level,
    Store, UnknownValue,
};
use crate::tiers::Tier;

/// `source` of the `system_logs` rows the queue writes.
pub const LOG_SOURCE: &str = "queue";

/// Attempts a task gets when [`NewTask::max_attempts`] is `None`.
pub const DEFAULT_MAX_ATTEMPTS: i64 = 3;

/// First retry delay; each further attempt doubles it.
pub const BACKOFF_BASE_MS: i64 = 30_000;

/// User-facing error of a task whose worker kept disappearing.
pub const STOPPED_REPEATEDLY: &str = "processing stopped repeatedly";

/// Most expired leases one [`Store::rescue_expired`] call handles (keeps transactions short).
const RESCUE_BATCH: i64 = 500;

text_enum! {
    /// Lifecycle of a task. `created` exists for tasks still being assembled (e.g. waiting for
    /// an upload); the queue only ever takes `queued` ones.
    TaskStatus, "task status" {
        Created = "created",
        Queued = "queued",
        Processing = "processing",
        Completed = "completed",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl TaskStatus {
    /// Completed, failed or cancelled: the task will not run again unless retried.
    pub const fn is_finished(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }
}

/// A task to put on the queue. The queue does not interpret `kind` or `spec`: workers
/// register the kinds they can run and parse the spec themselves.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewTask {
    /// The requesting Telegram user; `None` for tasks submitted by an operator or the CLI.
    pub user_telegram_id: Option<i64>,
    /// Which worker code runs it, e.g. `"subtitle"`.
    pub kind: String,
    /// The job description as JSON text, opaque to the queue.
    pub spec: String,
    /// Version of the `spec` format, so a worker can refuse a spec newer than it understands.
    pub spec_version: i64,
    pub input_type: String,
    pub input_url: Option<String>,
    pub generate_subtitles: bool,
    pub translate: Option<String>,
    pub voiceover: bool,
    pub vertical_format: bool,
    /// The tier the task runs under (the caller's effective tier at submission).
    pub tier: Tier,
    /// Wall-clock budget of one attempt; `None` takes the tier's.
    pub timeout_ms: Option<i64>,
    /// `None` means [`DEFAULT_MAX_ATTEMPTS`].
    pub max_attempts: Option<i64>,
    /// Refuse the task (`StoreError::QuotaExceeded`, nothing written) when the user already has this many tasks
    /// today (UTC).
    pub daily_limit: Option<i64>,
    /// Insert as `created`: not claimable until [`Store::queue_created`] (for a task whose input is copied into
    /// its storage folder, named by its id, after the row exists).
    pub hold: bool,
    /// A key naming the request this task is for: enqueueing again with the same key returns the existing task
    /// (nothing counted twice). `None`: every call creates a task.
    pub idem_key: Option<String>,
}

/// What a worker gets from [`Store::claim`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claimed {
    pub id: i64,
    pub kind: String,
    pub spec: String,
    pub spec_version: i64,
    /// This attempt's number, starting at 1.
    pub attempts: i64,
    pub max_attempts: i64,
    pub timeout_ms: i64,
    pub tier: Tier,
    /// `users.id` of the requester, if any.
    pub user_id: Option<i64>,
}

/// Answer to a [`Store::heartbeat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Lease {
    /// The lease was extended; keep working.
    Held,
    /// This worker no longer owns the task (its lease expired and the task was rescued, or it
    /// finished some other way): stop at once and write nothing.
    Lost,
    /// The lease was extended but the user cancelled: stop, clean up, then call
    /// [`Store::cancelled`].
    CancelRequested,
}

/// Why an attempt failed, as reported by the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Shown to the end user (`tasks.error`); no internals.
    pub user_message: String,
    /// For the operator (`tasks.error_detail` and the log).
    pub operator_detail: String,
    /// Whether another attempt may succeed (network hiccup: yes; unsupported codec: no).
    pub retryable: bool,
}

/// Result of [`Store::fail`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FailOutcome {
    /// Back in the queue; `attempt` is the number of the attempt that just failed.
    Retrying { attempt: i64, run_at: i64 },
    /// Finished as failed.
    Failed,
}

/// Result of [`Store::cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CancelOutcome {
    /// It had not started: cancelled at once.
    Cancelled,
    /// It is running: the worker sees the request on its next heartbeat.
    Requested,
    /// It had already completed, failed or been cancelled.
    AlreadyFinished,
    NotFound,
}

/// One task handled by [`Store::rescue_expired`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rescued {
    pub id: i64,
    /// The worker whose lease expired.
    pub lease_owner: Option<String>,
    pub outcome: RescueOutcome,
}

/// What became of a task whose worker stopped heartbeating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RescueOutcome {
    /// Queued again, not before `run_at`.
    Requeued { run_at: i64 },
    /// Out of attempts: failed with [`STOPPED_REPEATEDLY`].
    Failed,
    /// The user had asked to cancel it: cancelled instead of retried.
    Cancelled,
}

/// A full row of `tasks`.
///
/// `lease_owner` keeps the name of the last worker after the task finishes (for operators);
/// only `status = 'processing'` means the lease is live.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskRow {
    pub id: i64,
    pub user_id: Option<i64>,
    pub kind: String,
    pub spec: String,
    pub spec_version: i64,
    pub status: TaskStatus,
    pub input_type: String,
    pub input_url: Option<String>,
    pub generate_subtitles: bool,
    pub translate: Option<String>,
    pub voiceover: bool,
    pub vertical_format: bool,
    pub tier: Tier,
    pub priority: i64,
    pub sort_key: i64,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at: i64,
    pub timeout_ms: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub heartbeat_at: Option<i64>,
    pub cancel_requested: bool,
    pub progress_stage: Option<String>,
    pub progress_percent: Option<f64>,
    /// JSON text written by the worker on completion.
    pub outputs: Option<String>,
    /// Message for the end user.
    pub error: Option<String>,
    /// Detail for the operator.
    pub error_detail: Option<String>,
    pub created_at: i64,
    pub queued_at: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub updated_at: i64,
}

const TASK_COLUMNS: &str = "id, user_id, kind, spec, spec_version, status, input_type, \
    input_url, generate_subtitles, translate, voiceover, vertical_format, tier, priority, \
    sort_key, attempts, max_attempts, run_at, timeout_ms, lease_owner, lease_expires_at, \
    heartbeat_at, cancel_requested, progress_stage, progress_percent, outputs, error, \
    error_detail, created_at, queued_at, started_at, finished_at, updated_at";

fn task_from_row(row: &AnyRow) -> Result<TaskRow> {
    Ok(TaskRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        kind: row.try_get("kind")?,
        spec: row.try_get("spec")?,
        spec_version: row.try_get("spec_version")?,
        status: parse_enum(&row.try_get::<String, _>("status")?)?,
        input_type: row.try_get("input_type")?,
        input_url: row.try_get("input_url")?,
        generate_subtitles: get_bool(row, "generate_subtitles")?,
        translate: row.try_get("translate")?,
        voiceover: get_bool(row, "voiceover")?,
        vertical_format: get_bool(row, "vertical_format")?,
        tier: parse_tier(&row.try_get::<String, _>("tier")?)?,
        priority: row.try_get("priority")?,
        sort_key: row.try_get("sort_key")?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        run_at: row.try_get("run_at")?,
        timeout_ms: row.try_get("timeout_ms")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: row.try_get("lease_expires_at")?,
        heartbeat_at: row.try_get("heartbeat_at")?,
        cancel_requested: get_bool(row, "cancel_requested")?,
        progress_stage: row.try_get("progress_stage")?,
        progress_percent: row.try_get("progress_percent")?,
        outputs: row.try_get("outputs")?,
        error: row.try_get("error")?,
        error_detail: row.try_get("error_detail")?,
        created_at: row.try_get("created_at")?,
        queued_at: row.try_get("queued_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The queue position of a task that becomes eligible at `eligible_at`: earlier sorts first.
///
/// Subtracting the tier's boost puts a paid job ahead of every FREE job that became eligible
/// less than `boost_ms` before it, and behind every older one. That is the whole anti-
/// starvation rule: a FREE job waits at most `boost_ms` (5 min behind CREATOR, 2 min behind
/// PRO) on account of newer paid jobs, however many arrive, while jobs of one tier stay FIFO.
pub fn sort_key(eligible_at: i64, tier: Tier) -> i64 {
    eligible_at.saturating_sub(tier.limits().boost_ms)
}

/// Delay before retrying after failed attempt number `attempt` (1-based):
/// `30 s * 2^(attempt-1)`, plus or minus up to 10 % jitter so that tasks which failed together
/// (say, a model server restart) do not all come back in the same millisecond.
///
/// The jitter is derived from `seed` (callers use task id + attempt) by a SplitMix64 step, so
/// it needs no RNG dependency and a given task's schedule is reproducible. The exponent is
/// capped at 2^16 (about 23 days) so huge attempt counts cannot overflow.
pub fn backoff_ms(attempt: i64, seed: u64) -> i64 {
    let exponent = attempt.saturating_sub(1).clamp(0, 16);
    let base = BACKOFF_BASE_MS << exponent;
    // Uniform-ish in [-1000, 1000] per mille of 10 %, i.e. [-10 %, +10 %] of base.
    let r = i64::try_from(splitmix64(seed) % 2001).unwrap_or(0) - 1000;
    base + base * r / 10_000
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn check_lease(lease_ms: i64) -> Result<()> {
    if lease_ms <= 0 {
        return Err(StoreError::InvalidInput(format!(
            "lease of {lease_ms} ms (must be positive)"
        )));
    }
    Ok(())
}

fn retry_seed(id: i64, attempts: i64) -> u64 {
    id.wrapping_add(attempts).cast_unsigned()
}

impl Store {
    /// Puts a task on the queue (status `queued`, eligible now) and, when it belongs to a
    /// user, counts it in that user's `tasks_today` (reset on a new UTC day) and
    /// `tasks_total`, creating the user if needed. Both happen in one transaction, so the
    /// daily counter never disagrees with the tasks that exist. Returns the task id.
    pub async fn enqueue(&self, task: &NewTask, now: i64) -> Result<i64> {
        Ok(self.enqueue_new(task, now).await?.0)
    }

    /// [`Store::enqueue`], also saying whether the task is new (`false`: an earlier task with the same
    /// [`NewTask::idem_key`] was returned and nothing was written).
    pub async fn enqueue_new(&self, task: &NewTask, now: i64) -> Result<(i64, bool)> {
        if task.kind.trim().is_empty() {
            return Err(StoreError::InvalidInput("task kind is empty".into()));
        }
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&task.spec) {
            return Err(StoreError::InvalidInput(format!(
                "task spec is not JSON: {e}"
            )));
        }
        let limits = task.tier.limits();
        let timeout_ms = task.timeout_ms.unwrap_or(limits.timeout_ms);
        let max_attempts = task.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if timeout_ms <= 0 || max_attempts <= 0 {
            return Err(StoreError::InvalidInput(format!(
                "timeout_ms ({timeout_ms}) and max_attempts ({max_attempts}) must be positive"
            )));
        }

        let mut tx = self.begin_write().await?;
        if let Some(key) = &task.idem_key {
            let existing: Option<i64> =
                sqlx::query_scalar("SELECT id FROM tasks WHERE idem_key = $1")
                    .bind(key.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(id) = existing {
                tx.rollback().await?;
                return Ok((id, false));
            }
        }
        let user_id = match task.user_telegram_id {
            Some(telegram_id) => {
                let (id, today): (i64, i64) = sqlx::query_as(
                    "INSERT INTO users \
                       (telegram_id, tasks_today, tasks_day, tasks_total, created_at, updated_at) \
                     VALUES ($1, 1, $2, 1, $3, $3) \
                     ON CONFLICT (telegram_id) DO UPDATE SET \
                       tasks_today = CASE WHEN users.tasks_day = excluded.tasks_day \
                                          THEN users.tasks_today + 1 ELSE 1 END, \
                       tasks_day = excluded.tasks_day, \
                       tasks_total = users.tasks_total + 1, \
                       updated_at = excluded.updated_at \
                     RETURNING id, tasks_today",
                )
                .bind(telegram_id)
                .bind(utc_day(now))
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                // Counted and checked in one transaction: two requests at once cannot both take the last task of
                // the day.
                if let Some(limit) = task.daily_limit {
                    if today > limit {
                        tx.rollback().await?;
                        return Err(StoreError::QuotaExceeded { limit });
                    }
                }
                Some(id)
            }
            None => None,
        };
        let id = sqlx::query_scalar::<_, i64>(
            "INSERT INTO tasks \
               (user_id, kind, spec, spec_version, status, input_type, input_url, \
                generate_subtitles, translate, voiceover, vertical_format, tier, priority, \
                sort_key, attempts, max_attempts, run_at, timeout_ms, cancel_requested, \
                created_at, queued_at, updated_at, idem_key) \
             VALUES ($1, $2, $3, $4, $17, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $14, \
                     $15, $16, 0, $15, $18, $15, $19) \
             RETURNING id",
        )
        .bind(user_id)
        .bind(task.kind.as_str())
        .bind(task.spec.as_str())
        .bind(task.spec_version)
        .bind(task.input_type.as_str())
        .bind(task.input_url.as_deref())
        .bind(i64::from(task.generate_subtitles))
        .bind(task.translate.as_deref())
        .bind(i64::from(task.voiceover))
        .bind(i64::from(task.vertical_format))
        .bind(task.tier.as_str())
        .bind(limits.priority)
        .bind(sort_key(now, task.tier))
        .bind(max_attempts)
        .bind(now)
        .bind(timeout_ms)
        .bind(if task.hold { "created" } else { "queued" })
        .bind((!task.hold).then_some(now))
        .bind(task.idem_key.as_deref())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((id, true))
    }

    /// The task made with idempotency key `key`, if any.
    pub async fn task_by_idem_key(&self, key: &str) -> Result<Option<TaskRow>> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE idem_key = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    /// Queues a task inserted with [`NewTask::hold`], with its final `spec` (which may now name files in the
    /// task's folder). False when the task is not `created` (cancelled meanwhile, or queued already).
    pub async fn queue_created(&self, id: i64, spec: &str, now: i64) -> Result<bool> {
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(spec) {
            return Err(StoreError::InvalidInput(format!(
                "task spec is not JSON: {e}"
            )));
        }
        let mut tx = self.begin_write().await?;
        let tier: Option<String> =
            sqlx::query_scalar("SELECT tier FROM tasks WHERE id = $1 AND status = 'created'")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(tier) = tier else {
            return Ok(false);
        };
        let tier: Tier = tier
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("task {id} has tier {tier:?}")))?;
        let n = sqlx::query(
            "UPDATE tasks SET status = 'queued', spec = $2, queued_at = $3, run_at = $3, sort_key = $4, \
               updated_at = $3 WHERE id = $1 AND status = 'created'",
        )
        .bind(id)
        .bind(spec)
        .bind(now)
        .bind(sort_key(now, tier))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Takes the next eligible task of one of `kinds` for `worker_id`, leasing it for
    /// `lease_ms`.
    ///
    /// Order: `ORDER BY sort_key, id` among `status = 'queued' AND run_at <= now` (see
    /// [`sort_key`]). Kinds not listed are left for workers that know them, so during a rolling
    /// update an old worker never takes a job kind it cannot run. Claiming is one `UPDATE`:
    /// on Postgres its subquery locks the chosen row `FOR UPDATE SKIP LOCKED`, so concurrent
    /// workers skip each other's picks instead of waiting; on SQLite the statement takes the
    /// database write lock (waiting up to `busy_timeout`), which serialises claims.
    pub async fn claim(
        &self,
        worker_id: &str,
        kinds: &[&str],
        lease_ms: i64,
        now: i64,
    ) -> Result<Option<Claimed>> {
        self.claim_up_to(worker_id, kinds, i64::MAX, lease_ms, now)
            .await
    }

    /// [`Store::claim`] among tasks whose `spec_version` is at most `max_spec_version`: during a rolling update
    /// an old worker leaves jobs written in a newer format to the new workers instead of failing them.
    pub async fn claim_up_to(
        &self,
        worker_id: &str,
        kinds: &[&str],
        max_spec_version: i64,
        lease_ms: i64,
        now: i64,
    ) -> Result<Option<Claimed>> {
        check_lease(lease_ms)?;
        if kinds.is_empty() {
            return Ok(None);
        }
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE tasks SET status = 'processing', attempts = attempts + 1, \
               lease_owner = $2, lease_expires_at = $3, heartbeat_at = $1, \
               started_at = COALESCE(started_at, $1), progress_stage = NULL, \
               progress_percent = NULL, updated_at = $1 \
             WHERE status = 'queued' AND id = ( \
               SELECT id FROM tasks \
               WHERE status = 'queued' AND run_at <= $1 AND spec_version <= $4 \
                 AND kind IN ({kinds}) \
               ORDER BY sort_key, id LIMIT 1{lock}) \
             RETURNING id, kind, spec, spec_version, attempts, max_attempts, timeout_ms, tier, \
               user_id",
            kinds = placeholders(5, kinds.len()),
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(worker_id)
            .bind(now.saturating_add(lease_ms))
            .bind(max_spec_version);
        for kind in kinds {
            query = query.bind(*kind);
        }
        let Some(row) = query.fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        Ok(Some(Claimed {
            id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            spec: row.try_get("spec")?,
            spec_version: row.try_get("spec_version")?,
            attempts: row.try_get("attempts")?,
            max_attempts: row.try_get("max_attempts")?,
            timeout_ms: row.try_get("timeout_ms")?,
            tier: parse_tier(&row.try_get::<String, _>("tier")?)?,
            user_id: row.try_get("user_id")?,
        }))
    }

    /// Extends `worker_id`'s lease on task `id` to `now + lease_ms` and records progress
    /// (`stage`, `percent` in 0..=100). Workers call it well within the lease (a third of it
    /// is customary); a worker that misses its lease may find the task rescued and taken by
    /// another worker, and then gets [`Lease::Lost`].
    pub async fn heartbeat(
        &self,
        id: i64,
        worker_id: &str,
        lease_ms: i64,
        progress: Option<(&str, f64)>,
        now: i64,
    ) -> Result<Lease> {
        check_lease(lease_ms)?;
        let (stage, percent) = match progress {
            Some((stage, percent)) if percent.is_finite() => {
                (Some(stage), Some(percent.clamp(0.0, 100.0)))
            }
            Some((stage, _)) => (Some(stage), None),
            None => (None, None),
        };
        let row = sqlx::query(
            "UPDATE tasks SET lease_expires_at = $3, heartbeat_at = $4, updated_at = $4, \
               progress_stage = COALESCE($5, progress_stage), \
               progress_percent = COALESCE($6, progress_percent) \
             WHERE id = $1 AND status = 'processing' AND lease_owner = $2 \
             RETURNING cancel_requested",
        )
        .bind(id)
        .bind(worker_id)
        .bind(now.saturating_add(lease_ms))
        .bind(now)
        .bind(stage)
        .bind(percent)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            None => Lease::Lost,
            Some(row) if get_bool(&row, "cancel_requested")? => Lease::CancelRequested,
            Some(_) => Lease::Held,
        })
    }

    /// Marks the task completed with `outputs_json` (JSON text). `false` means the lease was
    /// lost and nothing was written: the worker must discard its results.
    pub async fn complete(
        &self,
        id: i64,
        worker_id: &str,
        outputs_json: &str,
        now: i64,
    ) -> Result<bool> {
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(outputs_json) {
            return Err(StoreError::InvalidInput(format!(
                "task outputs are not JSON: {e}"
            )));
        }
        let done = sqlx::query(
            "UPDATE tasks SET status = 'completed', outputs = $3, finished_at = $4, \
               updated_at = $4, lease_expires_at = NULL, progress_percent = 100, \
               error = NULL, error_detail = NULL \
             WHERE id = $1 AND status = 'processing' AND lease_owner = $2",
        )
        .bind(id)
        .bind(worker_id)
        .bind(outputs_json)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a failed attempt. Retries (status back to `queued`, eligible after
    /// [`backoff_ms`]) when the failure is retryable, attempts remain and nobody asked to
    /// cancel; otherwise the task fails for good with `user_message` as its error. `None` means
    /// the lease was lost and nothing was written. Writes a WARNING (retry) or ERROR (final)
    /// log row in the same transaction.
    pub async fn fail(
        &self,
        id: i64,
        worker_id: &str,
        failure: &Failure,
        now: i64,
    ) -> Result<Option<FailOutcome>> {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT attempts, max_attempts, tier, cancel_requested FROM tasks \
             WHERE id = $1 AND status = 'processing' AND lease_owner = $2{}",
            self.for_update()
        );
        let Some(row) = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .bind(worker_id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let attempts: i64 = row.try_get("attempts")?;
        let max_attempts: i64 = row.try_get("max_attempts")?;
        let tier = parse_tier(&row.try_get::<String, _>("tier")?)?;
        let cancel_requested = get_bool(&row, "cancel_requested")?;

        let outcome = if failure.retryable && attempts < max_attempts && !cancel_requested {
            let run_at = now.saturating_add(backoff_ms(attempts, retry_seed(id, attempts)));
            sqlx::query(
                "UPDATE tasks SET status = 'queued', run_at = $3, sort_key = $4, \
                   lease_owner = NULL, lease_expires_at = NULL, error = $5, \
                   error_detail = $6, updated_at = $7 \
                 WHERE id = $1 AND status = 'processing' AND lease_owner = $2",
            )
            .bind(id)
            .bind(worker_id)
            .bind(run_at)
            .bind(sort_key(run_at, tier))
            .bind(failure.user_message.as_str())
            .bind(failure.operator_detail.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let message = format!(
                "attempt {attempts}/{max_attempts} failed on {worker_id}, retrying in {} s: {}",
                (run_at - now) / 1000,
                failure.operator_detail
            );
            insert_log(&mut tx, Level::Warning, LOG_SOURCE, Some(id), &message, now).await?;
            FailOutcome::Retrying {
                attempt: attempts,
                run_at,
            }
        } else {
            sqlx::query(
                "UPDATE tasks SET status = 'failed', lease_expires_at = NULL, error = $3, \
                   error_detail = $4, finished_at = $5, updated_at = $5 \
                 WHERE id = $1 AND status = 'processing' AND lease_owner = $2",
            )
            .bind(id)
            .bind(worker_id)
            .bind(failure.user_message.as_str())
            .bind(failure.operator_detail.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let why = if !failure.retryable {
                "not retryable"
            } else if cancel_requested {
                "cancel requested"
            } else {
                "no attempts left"
            };
            let message = format!(
                "attempt {attempts}/{max_attempts} failed on {worker_id} ({why}), task failed: {}",
                failure.operator_detail
            );
            insert_log(&mut tx, Level::Error, LOG_SOURCE, Some(id), &message, now).await?;
            FailOutcome::Failed
        };
        tx.commit().await?;
        Ok(Some(outcome))
    }

    /// Acknowledges a cancel request: the worker stopped the task after its heartbeat said
    /// [`Lease::CancelRequested`]. `false` if the lease was lost or no cancel was requested.
    pub async fn cancelled(&self, id: i64, worker_id: &str, now: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE tasks SET status = 'cancelled', lease_expires_at = NULL, finished_at = $3, \
               updated_at = $3 \
             WHERE id = $1 AND status = 'processing' AND lease_owner = $2 \
               AND cancel_requested = 1",
        )
        .bind(id)
        .bind(worker_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        let message = format!("cancelled by the user; {worker_id} stopped processing");
        insert_log(&mut tx, Level::Info, LOG_SOURCE, Some(id), &message, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Hands a claimed task back without counting the attempt (graceful shutdown: the worker
    /// was told to stop, the job did nothing wrong). It keeps its place in the queue (its
    /// `sort_key` is unchanged) and is eligible at once. A task whose cancel was requested
    /// is cancelled instead. `false` if the lease was lost.
    pub async fn release(&self, id: i64, worker_id: &str, now: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE tasks SET \
               status = CASE WHEN cancel_requested = 1 THEN 'cancelled' ELSE 'queued' END, \
               attempts = CASE WHEN cancel_requested = 1 OR attempts = 0 THEN attempts \
                               ELSE attempts - 1 END, \
               finished_at = CASE WHEN cancel_requested = 1 THEN $3 ELSE NULL END, \
               run_at = $3, lease_owner = NULL, lease_expires_at = NULL, updated_at = $3 \
             WHERE id = $1 AND status = 'processing' AND lease_owner = $2 \
             RETURNING status",
        )
        .bind(id)
        .bind(worker_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let status: String = row.try_get("status")?;
        let message = if status == TaskStatus::Cancelled.as_str() {
            format!("released by {worker_id} with a cancel pending: cancelled")
        } else {
            format!("released by {worker_id} (shutdown); attempt not counted, queued again")
        };
        insert_log(&mut tx, Level::Info, LOG_SOURCE, Some(id), &message, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Cancels tasks left `created` (their input never finished arriving: the submitter died) for longer than
    /// `older_than_ms`, each with a WARNING log row; returns their ids.
    pub async fn reap_created(&self, older_than_ms: i64, now: i64) -> Result<Vec<i64>> {
        let mut tx = self.begin_write().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE tasks SET status = 'cancelled', finished_at = $1, updated_at = $1, \
               error = 'the upload did not finish' \
             WHERE status = 'created' AND created_at < $2 RETURNING id",
        )
        .bind(now)
        .bind(now - older_than_ms)
        .fetch_all(&mut *tx)
        .await?;
        for id in &ids {
            crate::store::insert_log(
                &mut tx,
                Level::Warning,
                "queue",
                Some(*id),
                "cancelled: still waiting for its input after the submitter stopped",
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Takes back tasks whose worker stopped heartbeating (`lease_expires_at < now`): queued
    /// again after a backoff while attempts remain (the lost attempt counts: a job that kills
    /// its worker must not loop forever), failed with [`STOPPED_REPEATEDLY`] otherwise,
    /// cancelled if a cancel was pending. Each writes a log row (WARNING, ERROR, INFO).
    ///
    /// Safe to call from every worker at once: on Postgres the rows are locked
    /// `FOR UPDATE SKIP LOCKED` so each caller takes a disjoint set, on SQLite `BEGIN
    /// IMMEDIATE` serialises callers; and each `UPDATE` re-checks the expiry. Handles at most
    /// 500 tasks per call.
    pub async fn rescue_expired(&self, now: i64) -> Result<Vec<Rescued>> {
        // Usually nothing has expired: find that out with a plain read rather than taking
        // SQLite's write lock (which would stall every claim) on every periodic call.
        let any_expired = sqlx::query_scalar::<_, i64>(
            "SELECT id FROM tasks WHERE status = 'processing' AND lease_expires_at < $1 LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if any_expired.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "SELECT id, attempts, max_attempts, tier, cancel_requested, lease_owner FROM tasks \
             WHERE status = 'processing' AND lease_expires_at < $1 \
             ORDER BY id LIMIT {RESCUE_BATCH}{lock}"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
        let mut rescued = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let attempts: i64 = row.try_get("attempts")?;
            let max_attempts: i64 = row.try_get("max_attempts")?;
            let tier = parse_tier(&row.try_get::<String, _>("tier")?)?;
            let lease_owner: Option<String> = row.try_get("lease_owner")?;
            let owner = lease_owner.as_deref().unwrap_or("?");
            let (outcome, level, message) = if get_bool(&row, "cancel_requested")? {
                (
                    RescueOutcome::Cancelled,
                    Level::Info,
                    format!("lease of {owner} expired with a cancel pending: cancelled"),
                )
            } else if attempts < max_attempts {
                let run_at = now.saturating_add(backoff_ms(attempts, retry_seed(id, attempts)));
                (
                    RescueOutcome::Requeued { run_at },
                    Level::Warning,
                    format!(
                        "lease of {owner} expired during attempt {attempts}/{max_attempts}: \
                         queued again, eligible in {} s",
                        (run_at - now) / 1000
                    ),
                )
            } else {
                (
                    RescueOutcome::Failed,
                    Level::Error,
                    format!(
                        "lease of {owner} expired during attempt {attempts}/{max_attempts}, \
                         the last: task failed"
                    ),
                )
            };
            let done = match outcome {
                RescueOutcome::Requeued { run_at } => {
                    sqlx::query(
                        "UPDATE tasks SET status = 'queued', run_at = $2, sort_key = $3, \
                           lease_owner = NULL, lease_expires_at = NULL, updated_at = $4 \
                         WHERE id = $1 AND status = 'processing' AND lease_expires_at < $4",
                    )
                    .bind(id)
                    .bind(run_at)
                    .bind(sort_key(run_at, tier))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                }
                RescueOutcome::Failed => {
                    sqlx::query(
                        "UPDATE tasks SET status = 'failed', lease_expires_at = NULL, \
                           error = $2, error_detail = $3, finished_at = $4, updated_at = $4 \
                         WHERE id = $1 AND status = 'processing' AND lease_expires_at < $4",
                    )
                    .bind(id)
                    .bind(STOPPED_REPEATEDLY)
                    .bind(message.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                }
                RescueOutcome::Cancelled => {
                    sqlx::query(
                        "UPDATE tasks SET status = 'cancelled', lease_expires_at = NULL, \
                           finished_at = $2, updated_at = $2 \
                         WHERE id = $1 AND status = 'processing' AND lease_expires_at < $2",
                    )
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                }
            };
            if done.rows_affected() == 1 {
                insert_log(&mut tx, level, LOG_SOURCE, Some(id), &message, now).await?;
                rescued.push(Rescued {
                    id,
                    lease_owner,
                    outcome,
                });
            }
        }
        tx.commit().await?;
        Ok(rescued)
    }

    /// Cancels a task on the user's or an operator's behalf: at once if it has not started,
    /// by request if it is running (the worker sees [`Lease::CancelRequested`] on its next
    /// heartbeat and then calls [`Store::cancelled`]).
    pub async fn cancel(&self, id: i64, now: i64) -> Result<CancelOutcome> {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT status FROM tasks WHERE id = $1{}",
            self.for_update()
        );
        let Some(row) = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(CancelOutcome::NotFound);
        };
        let status: TaskStatus = parse_enum(&row.try_get::<String, _>("status")?)?;
        let (outcome, message) = match status {
            TaskStatus::Created | TaskStatus::Queued => {
                sqlx::query(
                    "UPDATE tasks SET status = 'cancelled', finished_at = $2, updated_at = $2 \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                (
                    CancelOutcome::Cancelled,
                    format!("cancelled while {status}"),
                )
            }
            TaskStatus::Processing => {
                sqlx::query("UPDATE tasks SET cancel_requested = 1, updated_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                (
                    CancelOutcome::Requested,
                    "cancel requested while processing".to_owned(),
                )
            }
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled => {
                return Ok(CancelOutcome::AlreadyFinished);
            }
        };
        insert_log(&mut tx, Level::Info, LOG_SOURCE, Some(id), &message, now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Puts a failed or cancelled task back in the queue as new: attempts reset to 0, error
    /// and outputs cleared, eligible now with a fresh `sort_key`. Any other status is
    /// [`StoreError::InvalidState`]; a missing task is [`StoreError::NotFound`].
    pub async fn retry(&self, id: i64, now: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        self.retry_in(&mut tx, id, now, "an operator").await?;
        tx.commit().await?;
        Ok(())
    }

    /// [`Store::retry`] inside a write transaction (not committed); returns the status the task had. `by`: who
    /// retried it, for the log.
    pub(crate) async fn retry_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: i64,
        now: i64,
        by: &str,
    ) -> Result<TaskStatus> {
        let sql = format!(
            "SELECT status, tier FROM tasks WHERE id = $1{}",
            self.for_update()
        );
        let Some(row) = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
        else {
            return Err(StoreError::NotFound(format!("task {id}")));
        };
        let status: TaskStatus = parse_enum(&row.try_get::<String, _>("status")?)?;
        let tier = parse_tier(&row.try_get::<String, _>("tier")?)?;
        if !matches!(status, TaskStatus::Failed | TaskStatus::Cancelled) {
            return Err(StoreError::InvalidState(format!(
                "task {id} is {status}; only failed or cancelled tasks can be retried"
            )));
        }
        sqlx::query(
            "UPDATE tasks SET status = 'queued', attempts = 0, run_at = $2, sort_key = $3, \
               queued_at = $2, started_at = NULL, finished_at = NULL, cancel_requested = 0, \
               lease_owner = NULL, lease_expires_at = NULL, heartbeat_at = NULL, \
               progress_stage = NULL, progress_percent = NULL, outputs = NULL, error = NULL, \
               error_detail = NULL, updated_at = $2 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .bind(sort_key(now, tier))
        .execute(&mut **tx)
        .await?;
        let message = format!("retried by {by} after it was {status}");
        insert_log(tx, Level::Info, LOG_SOURCE, Some(id), &message, now).await?;
        Ok(status)
    }

    // ----------------------------------------------------------------------------- reads

    /// One task, every column.
    pub async fn get_task(&self, id: i64) -> Result<Option<TaskRow>> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    /// The newest `limit` tasks, optionally of one status (`"queued"`, `"failed"`, ...).
    pub async fn list_tasks(&self, status: Option<&str>, limit: i64) -> Result<Vec<TaskRow>> {
        let rows = match status {
            Some(status) => {
                let status: TaskStatus = status
                    .parse()
                    .map_err(|e: UnknownValue| StoreError::InvalidInput(e.to_string()))?;
                let sql = format!(
                    "SELECT {TASK_COLUMNS} FROM tasks WHERE status = $1 ORDER BY id DESC LIMIT $2"
                );
                sqlx::query(AssertSqlSafe(sql))
                    .bind(status.as_str())
                    .bind(limit.max(0))
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                let sql = format!("SELECT {TASK_COLUMNS} FROM tasks ORDER BY id DESC LIMIT $1");
                sqlx::query(AssertSqlSafe(sql))
                    .bind(limit.max(0))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(task_from_row).collect()
    }

    /// Queued tasks per tier, every tier present (zero when none), FREE first.
    pub async fn queue_depth(&self) -> Result<Vec<(Tier, i64)>> {
        let rows = sqlx::query(
            "SELECT tier, CAST(COUNT(*) AS BIGINT) AS n FROM tasks WHERE status = 'queued' \
             GROUP BY tier",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut depth: Vec<(Tier, i64)> = Tier::ALL.iter().map(|t| (*t, 0)).collect();
        for row in rows {
            let tier = parse_tier(&row.try_get::<String, _>("tier")?)?;
            let n: i64 = row.try_get("n")?;
            if let Some(slot) = depth.iter_mut().find(|(t, _)| *t == tier) {
                slot.1 = n;
            }
        }
        Ok(depth)
    }

    /// Task counts by status and tier (only non-empty groups), for metrics.
    pub async fn status_counts(&self) -> Result<Vec<(String, Tier, i64)>> {
        let rows = sqlx::query(
            "SELECT status, tier, CAST(COUNT(*) AS BIGINT) AS n FROM tasks \
             GROUP BY status, tier ORDER BY status, tier",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get::<String, _>("status")?,
                    parse_tier(&row.try_get::<String, _>("tier")?)?,
                    row.try_get::<i64, _>("n")?,
                ))
            })
            .collect()
    }

    /// Tasks currently leased by some worker.
    pub async fn processing_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar::<_, i64>(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM tasks WHERE status = 'processing'",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Ids of tasks that finished (completed, failed or cancelled) before `cutoff_ms`, oldest
    /// first: the janitor deletes their files.
    pub async fn finished_before(&self, cutoff_ms: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar::<_, i64>(
            "SELECT id FROM tasks WHERE finished_at IS NOT NULL AND finished_at < $1 \
             ORDER BY finished_at, id",
        )
        .bind(cutoff_ms)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Which of `ids` are tasks that finished before `cutoff_ms` (the janitor asks only about the folders it
    /// finds, so a long history costs nothing).
    pub async fn finished_before_among(&self, ids: &[i64], cutoff_ms: i64) -> Result<Vec<i64>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT id FROM tasks WHERE finished_at IS NOT NULL AND finished_at < $1 AND id IN ({}) \
                 ORDER BY id",
                placeholders(2, chunk.len())
            );
            let mut query = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql)).bind(cutoff_ms);
            for id in chunk {
                query = query.bind(*id);
            }
            out.extend(query.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }

    /// Which of `ids` are tasks (the janitor removes directories of tasks that do not exist).
    pub async fn task_ids_existing(&self, ids: &[i64]) -> Result<Vec<i64>> {
        let mut existing = Vec::new();
        // Stay far below every backend's bound-parameter limit.
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT id FROM tasks WHERE id IN ({}) ORDER BY id",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(*id);
            }
            existing.extend(query.fetch_all(&self.pool).await?);
        }
        existing.sort_unstable();
        Ok(existing)
    }

    /// Whether task `id` exists.
    pub async fn task_exists(&self, id: i64) -> Result<bool> {
        Ok(!self.task_ids_existing(&[id]).await?.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_within_ten_percent() {
        for attempt in 1..=6 {
            let base = BACKOFF_BASE_MS << (attempt - 1);
            let (lo, hi) = (base * 9 / 10, base * 11 / 10);
            let mut seen = std::collections::HashSet::new();
            for seed in 0..2_000u64 {
                let d = backoff_ms(attempt, seed);
                assert!(lo <= d && d <= hi, "attempt {attempt} seed {seed}: {d}");
                seen.insert(d);
            }
            // The jitter actually spreads retries out.
            assert!(seen.len() > 100, "attempt {attempt}: {} values", seen.len());
        }
        assert!((27_000..=33_000).contains(&backoff_ms(1, 7)));
        assert!((54_000..=66_000).contains(&backoff_ms(2, 7)));
    }

    #[test]
    fn backoff_is_deterministic_and_never_overflows() {
        assert_eq!(backoff_ms(3, 42), backoff_ms(3, 42));
        assert_eq!(backoff_ms(0, 1), backoff_ms(1, 1));
        assert_eq!(backoff_ms(-5, 1), backoff_ms(1, 1));
        let huge = backoff_ms(i64::MAX, u64::MAX);
        assert!(huge > 0 && huge <= (BACKOFF_BASE_MS << 16) * 11 / 10);
    }

    #[test]
    fn sort_key_orders_tiers_with_bounded_wait() {
        let t = 1_000_000_000;
        assert!(sort_key(t, Tier::Creator) < sort_key(t, Tier::Pro));
        assert!(sort_key(t, Tier::Pro) < sort_key(t, Tier::Free));
        // A FREE job older than the CREATOR boost goes first.
        assert!(sort_key(t, Tier::Free) < sort_key(t + 300_001, Tier::Creator));
        // A FREE job younger than the boost waits.
        assert!(sort_key(t, Tier::Free) > sort_key(t + 299_999, Tier::Creator));
    }

    #[test]
    fn statuses_round_trip() {
        for &status in TaskStatus::ALL {
            assert_eq!(status.as_str().parse::<TaskStatus>(), Ok(status));
        }
        assert!(TaskStatus::Cancelled.is_finished());
        assert!(!TaskStatus::Processing.is_finished());
    }
}
