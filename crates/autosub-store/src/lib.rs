//! The service half of AutoSub: the database that holds users, payments, the operator log and
//! — in the same `tasks` table — the job queue that workers take subtitling jobs from.
//!
//! # One store, two databases
//!
//! The store runs on an embedded SQLite file (the default: one machine, nothing to install,
//! `Store::open_default(data_dir)` opens `data_dir/autosub.db`) and on PostgreSQL (many worker
//! processes on many machines). There is one implementation, written against sqlx's `Any`
//! driver with SQL both databases accept:
//!
//! * every timestamp is a BIGINT of milliseconds since the Unix epoch computed by the
//!   application (methods take `now`, so tests drive the clock); booleans are BIGINT 0/1; JSON
//!   is TEXT; counts are `CAST(COUNT(*) AS BIGINT)` — `Any` decodes only plain integer, float,
//!   text and blob values, and Postgres `SUM` returns NUMERIC, which it cannot decode;
//! * placeholders are `$1`, `$2`, ... (SQLite accepts them); `INSERT ... ON CONFLICT ... DO
//!   UPDATE` and `RETURNING` exist in both (SQLite >= 3.35; sqlx bundles a newer one);
//! * the few differences branch on [`Backend`]: how a write transaction begins (`BEGIN
//!   IMMEDIATE` on SQLite), the row locks (`FOR UPDATE [SKIP LOCKED]`, Postgres only), and the
//!   migration files (`migrations/sqlite`, `migrations/postgres`: only the id column and the
//!   float type are spelled differently).
//!
//! Why `Any` and not two pools behind an enum: in sqlx 0.9.1 `Any` supports everything this
//! crate needs — `Pool::begin_with("BEGIN IMMEDIATE")`, `after_connect` for the SQLite PRAGMAs,
//! sqlx's migrator (Postgres advisory lock included), and i64/f64/String/Option values — at the
//! price of a boxed call per statement, negligible next to video processing. Its limits, all
//! avoided here: connect options come only from a URL (so PRAGMAs go in `after_connect`); a
//! column of a type it does not know (BOOLEAN, NUMERIC, TIMESTAMP, JSON...) fails to decode;
//! `last_insert_id` is SQLite-only (use `RETURNING id`); and every new connection re-parses
//! the URL, which gives `sqlite::memory:` a fresh empty database per connection (the store
//! therefore keeps an in-memory pool at exactly one connection).
//!
//! # Migrations
//!
//! Run by [`Store::connect`], through sqlx's migrator (recorded in `_sqlx_migrations` with
//! checksums) with the SQL embedded by `include_str!`. Concurrent starts are safe: Postgres
//! serialises them with `pg_advisory_lock` (sqlx takes it); SQLite with an exclusive `flock`
//! on `<db>.migrate.lock` beside the database file, held while the first connection switches
//! the file to WAL and migrates.
//!
//! # The queue
//!
//! A task row *is* its queue entry (as in River, Oban, graphile-worker): enqueueing is an
//! `INSERT` with status `queued`, and a worker claims with one `UPDATE ... RETURNING` that sets
//! `processing`, counts the attempt and writes a lease (`lease_owner`, `lease_expires_at`).
//! Workers name the `kinds` they can run and never see other kinds, so a rolling update can
//! introduce a new kind without old workers taking it.
//!
//! ## Priority without starvation
//!
//! Each queued task has `sort_key = eligible_time_ms - tier.boost_ms` (boost: FREE 0,
//! PRO 2 min, CREATOR 5 min) and workers take `ORDER BY sort_key, id` among
//! `status = 'queued' AND run_at <= now`. So jobs queued close together run CREATOR, then PRO,
//! then FREE; jobs of one tier run first-in first-out; and a FREE job is overtaken only by paid
//! jobs that became eligible less than their boost after it — it waits at most 5 minutes on
//! account of newer paid work, however much of it arrives (aging without a background job
//! rewriting priorities). A retry becomes eligible at its new `run_at`, so its
//! `sort_key = run_at - boost`.
//!
//! ## Leases and heartbeats
//!
//! A claim leases the task to one worker for `lease_ms`. The worker heartbeats well within the
//! lease ([`Store::heartbeat`], also the channel for progress and for cancel requests). If it
//! stops (crash, OOM kill, partition), any process's [`Store::rescue_expired`] puts the task
//! back in the queue after a backoff, counting the lost attempt (so a job that kills workers
//! ends as failed with "processing stopped repeatedly" instead of looping). Every write a
//! worker makes after claiming is guarded by `id = $1 AND status = 'processing' AND
//! lease_owner = $2`: a worker that lost its lease gets `false` / `None` / [`Lease::Lost`] and
//! changes nothing, even if it wakes up after another worker took the task over.
//!
//! Failures ([`Store::fail`]) retry with exponential backoff (`30 s * 2^(attempt-1)`, +-10 %
//! jitter, see [`backoff_ms`]) while retryable and attempts remain. Every failure, retry,
//! rescue and cancel writes a `system_logs` row in the same transaction as the state change.
//!
//! On SQLite all writes are serialised by the database lock, and `busy_timeout` (10 s) plus
//! `BEGIN IMMEDIATE` for read-then-write transactions make competing writers wait instead of
//! failing with "database is locked". On Postgres claims use `FOR UPDATE SKIP LOCKED`, so
//! workers never wait on each other's picks.

pub mod admin;
pub mod apikeys;
pub mod billing;
pub mod bot;
pub mod error;
pub mod queue;
pub mod stats;
pub mod store;
pub mod tiers;

pub use apikeys::ApiKey;
pub use billing::{
    referral_code, referral_user, utc_month_start, Activation, DayValues, NewPayment, Notice,
    Payment, Revenue, Revocation, Sweep, REFERRAL_BONUS_DAYS,
};
pub use bot::{
    AlbumItem, BotAlbum, BotChat, BotRequest, BotStats, BotTask, Broadcast, NewRequest,
    RequestStatus,
};
pub use error::{mask_url, Result, StoreError};
pub use queue::{
    backoff_ms, sort_key, CancelOutcome, Claimed, FailOutcome, Failure, Lease, NewTask,
    RescueOutcome, Rescued, TaskRow, TaskStatus,
};
pub use stats::{Metrics, PlanRevenue, Retention, TaskCounts, Timing};
pub use store::{
    iso_utc, now_ms, sqlite_file, utc_date, utc_day, utc_day_start, Backend, Level, LogRow,
    PaymentPeriod, PaymentStatus, Store, StoreOptions, UnknownValue, User,
};
pub use tiers::{effective_tier, Tier, TierLimits};
