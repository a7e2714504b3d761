//! The store: one connection pool over SQLite or PostgreSQL through sqlx's `Any` driver,
//! migrations, users, payments and the operator log. The job queue's methods live in
//! [`crate::queue`] as further `impl Store` blocks.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sqlx::any::{Any, AnyPoolOptions, AnyRow};
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe, Connection, Row, SqlSafeStr, Transaction};

use crate::error::{mask_url, scrub_password, Result, StoreError};
use crate::tiers::{effective_tier, Tier};

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// Milliseconds since the Unix epoch, the unit of every timestamp in the database.
///
/// Every store method that depends on time takes `now` instead of reading the clock, so tests
/// (and a replaying operator) can drive time; production callers pass `now_ms()`.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The UTC day number of a timestamp (days since 1970-01-01). `users.tasks_day` stores it so
/// that `tasks_today` resets at midnight UTC without a cron job.
pub fn utc_day(now: i64) -> i64 {
    now.div_euclid(DAY_MS)
}

/// The UTC calendar date `(year, month, day)` of a time in ms (Howard Hinnant's civil_from_days).
pub fn utc_date(now: i64) -> (i64, i64, i64) {
    let z = utc_day(now) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A time in ms as an ISO 8601 UTC timestamp to the second (`2026-12-04T15:30:00Z`).
pub fn iso_utc(ms: i64) -> String {
    let (y, m, d) = utc_date(ms);
    let rem = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The first millisecond of the UTC calendar day `(year, month, day)`: the inverse of [`utc_date`] (Howard
/// Hinnant's days_from_civil). Not checked: `(2023, 2, 29)` is March 1st.
pub fn utc_day_start(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * DAY_MS
}

/// Which database a [`Store`] talks to. Only the few statements whose SQL differs (the claim's
/// row lock, how a write transaction begins) look at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Knobs for [`Store::connect_with`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Pool size. SQLite serialises writers anyway, so a few connections suffice there.
    pub max_connections: u32,
    /// How long a caller waits for a free pooled connection before failing.
    pub acquire_timeout: Duration,
}

impl StoreOptions {
    /// Defaults suited to `backend`.
    pub fn for_backend(backend: Backend) -> Self {
        StoreOptions {
            max_connections: match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 10,
            },
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// The handle every part of the service shares. Cheap to clone (it is a pool handle).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
}

/// PRAGMAs applied to every SQLite connection. `busy_timeout` comes first so that the others
/// (and every later statement) wait for a competing writer instead of failing with
/// "database is locked". WAL lets readers run beside the single writer; NORMAL sync is safe in
/// WAL mode (a power cut may lose the last commits, never corrupt the file).
const SQLITE_PRAGMAS: [&str; 4] = [
    "PRAGMA busy_timeout = 10000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
];

/// A parsed database URL.
#[derive(Debug)]
enum Target {
    Sqlite {
        /// URL handed to sqlx, always with an explicit `mode` (default `rwc`: create if missing).
        url: String,
        /// The database file, or `None` for an in-memory database.
        path: Option<PathBuf>,
    },
    Postgres {
        url: String,
    },
}

fn parse_url(url: &str) -> Result<Target> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target::Postgres {
            url: url.to_owned(),
        });
    }
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::InvalidUrl(mask_url(url)))?;
    let (path, params) = match rest.split_once('?') {
        Some((path, params)) => (path, Some(params)),
        None => (rest, None),
    };
    if path.is_empty() && params.is_none_or(|p| !p.contains("mode=memory")) {
        return Err(StoreError::InvalidUrl(mask_url(url)));
    }
    let in_memory = path == ":memory:" || params.is_some_and(|p| p.contains("mode=memory"));
    let params = match params {
        Some(p) if p.split('&').any(|kv| kv.starts_with("mode=")) => p.to_owned(),
        Some(p) if !p.is_empty() => format!("{p}&mode=rwc"),
        _ if in_memory => String::new(),
        _ => "mode=rwc".to_owned(),
    };
    // The `sqlite:PATH` form: `sqlite://:memory:` would not even parse as a URL.
    let url = if params.is_empty() {
        format!("sqlite:{path}")
    } else {
        format!("sqlite:{path}?{params}")
    };
    Ok(Target::Sqlite {
        url,
        path: (!in_memory).then(|| PathBuf::from(path)),
    })
}

/// The database file a SQLite URL names (`None` for PostgreSQL, in-memory databases and URLs that are not valid).
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    match parse_url(url) {
        Ok(Target::Sqlite { path, .. }) => path,
        _ => None,
    }
}

/// The embedded migrations of one backend. They are plain `include_str!` text handed to sqlx's
/// migrator, so no `macros` feature (and no proc-macro build) is needed; sqlx records them in
/// `_sqlx_migrations` with a checksum, exactly as `sqlx::migrate!` would.
fn migrator(backend: Backend) -> Migrator {
    let files: [(i64, &str, &str); 7] = match backend {
        Backend::Sqlite => [
            (
                1,
                "init",
                include_str!("../migrations/sqlite/0001_init.sql"),
            ),
            (2, "bot", include_str!("../migrations/sqlite/0002_bot.sql")),
            (
                3,
                "billing",
                include_str!("../migrations/sqlite/0003_billing.sql"),
            ),
            (
                4,
                "activity",
                include_str!("../migrations/sqlite/0004_activity.sql"),
            ),
            (
                5,
                "referrals",
                include_str!("../migrations/sqlite/0005_referrals.sql"),
            ),
            (6, "api", include_str!("../migrations/sqlite/0006_api.sql")),
            (
                7,
                "albums",
                include_str!("../migrations/sqlite/0007_albums.sql"),
            ),
        ],
        Backend::Postgres => [
            (
                1,
                "init",
                include_str!("../migrations/postgres/0001_init.sql"),
            ),
            (
                2,
                "bot",
                include_str!("../migrations/postgres/0002_bot.sql"),
            ),
            (
                3,
                "billing",
                include_str!("../migrations/postgres/0003_billing.sql"),
            ),
            (
                4,
                "activity",
                include_str!("../migrations/postgres/0004_activity.sql"),
            ),
            (
                5,
                "referrals",
                include_str!("../migrations/postgres/0005_referrals.sql"),
            ),
            (
                6,
                "api",
                include_str!("../migrations/postgres/0006_api.sql"),
            ),
            (
                7,
                "albums",
                include_str!("../migrations/postgres/0007_albums.sql"),
            ),
        ],
    };
    let mut m = Migrator::with_migrations(
        files
            .into_iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    version,
                    name.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    );
    // A rolling update: a database a newer binary has migrated further still opens here (migrations only add, so
    // this binary's tables and columns are all there). The ones it knows are still checked by checksum.
    m.set_ignore_missing(true);
    m
}

/// Takes an exclusive `flock` on `<db>.migrate.lock`, blocking until it is ours. The lock is
/// released when the returned file is dropped (or the process dies), so a crashed migrator
/// never wedges the next start.
async fn lock_migrations(db_path: &Path) -> Result<File> {
    let mut lock_path = db_path.as_os_str().to_owned();
    lock_path.push(".migrate.lock");
    let lock_path = PathBuf::from(lock_path);
    let context = format!("cannot lock {}", lock_path.display());
    let locked = tokio::task::spawn_blocking(move || -> std::io::Result<File> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .map_err(|join| StoreError::Io {
        context: context.clone(),
        source: std::io::Error::other(join.to_string()),
    })?;
    locked.map_err(|source| StoreError::Io { context, source })
}

/// Runs `migrator` on `conn`. Uses `Migrator::run_direct` (public, doc-hidden) rather than
/// `Migrator::run`: the latter's `Acquire` bound makes rustc reject any caller whose future
/// must be `Send` ("implementation of `Acquire` is not general enough"), e.g.
/// `tokio::spawn(Store::connect(..))`; sqlx added `run_direct` for exactly this.
async fn run_migrations(migrator: &Migrator, conn: &mut AnyConnection) -> Result<(), MigrateError> {
    migrator.run_direct(None, conn, false).await
}

async fn apply_sqlite_pragmas(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    for pragma in SQLITE_PRAGMAS {
        sqlx::query(pragma).execute(&mut *conn).await?;
    }
    Ok(())
}

impl Store {
    /// Opens the database at `url`, creating it (SQLite) and applying migrations.
    ///
    /// `url` is `sqlite://PATH`, `sqlite:PATH` (file created if missing unless the URL sets its
    /// own `mode=`), `sqlite::memory:`, or `postgres://user:pass@host/db`. Safe to call from
    /// many processes at once: migrations are serialised by a lock (`pg_advisory_lock`, or a
    /// `flock` on `<db>.migrate.lock`; see "Migrations" in the crate docs). The Postgres
    /// driver is built without TLS: use `sslmode=disable` or `prefer` (the default).
    pub async fn connect(url: &str) -> Result<Store> {
        let backend = match parse_url(url)? {
            Target::Sqlite { .. } => Backend::Sqlite,
            Target::Postgres { .. } => Backend::Postgres,
        };
        Self::connect_with(url, StoreOptions::for_backend(backend)).await
    }

    /// [`Store::connect`] with explicit pool options.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let connect_error = |e: sqlx::Error| StoreError::Connect {
            url: mask_url(url),
            message: scrub_password(&e.to_string(), url),
        };
        match parse_url(url)? {
            Target::Postgres { url: pg_url } => {
                // sqlx's Postgres migrator holds pg_advisory_lock while it runs, so concurrent
                // starts queue up behind the first one. A dedicated connection that is closed
                // afterwards guarantees the session lock is gone even if migrating failed.
                let mut conn = AnyConnection::connect(&pg_url)
                    .await
                    .map_err(connect_error)?;
                let migrated = run_migrations(&migrator(Backend::Postgres), &mut conn).await;
                let _ = conn.close().await;
                migrated?;
                let pool = AnyPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect(&pg_url)
                    .await
                    .map_err(connect_error)?;
                Ok(Store {
                    pool,
                    backend: Backend::Postgres,
                })
            }
            Target::Sqlite {
                url: sqlite_url,
                path: None,
            } => {
                // In memory (tests, experiments). The Any driver re-parses the URL for every new
                // connection and sqlx names each parsed `:memory:` database afresh, so the pool
                // must hold exactly one connection for its whole life, migrated in place.
                let pool = AnyPoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .acquire_timeout(options.acquire_timeout)
                    .after_connect(|conn, _meta| Box::pin(apply_sqlite_pragmas(conn)))
                    .connect(&sqlite_url)
                    .await
                    .map_err(connect_error)?;
                let mut conn = pool.acquire().await?;
                run_migrations(&migrator(Backend::Sqlite), &mut conn).await?;
                drop(conn);
                Ok(Store {
                    pool,
                    backend: Backend::Sqlite,
                })
            }
            Target::Sqlite {
                url: sqlite_url,
                path: Some(path),
            } => {
                // SQLite's migrator takes no lock of its own, and switching to WAL needs an
                // exclusive lock that busy_timeout does not wait for: serialise both across
                // processes (and across stores in one process) with a flock beside the file.
                let lock = lock_migrations(&path).await?;
                let mut conn = AnyConnection::connect(&sqlite_url)
                    .await
                    .map_err(connect_error)?;
                let migrated = match apply_sqlite_pragmas(&mut conn).await {
                    Ok(()) => run_migrations(&migrator(Backend::Sqlite), &mut conn)
                        .await
                        .map_err(StoreError::from),
                    Err(e) => Err(e.into()),
                };
                let _ = conn.close().await;
                drop(lock);
                migrated?;
                let pool = AnyPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .after_connect(|conn, _meta| Box::pin(apply_sqlite_pragmas(conn)))
                    .connect(&sqlite_url)
                    .await
                    .map_err(connect_error)?;
                Ok(Store {
                    pool,
                    backend: Backend::Sqlite,
                })
            }
        }
    }

    /// The single-machine default: SQLite file `data_dir/autosub.db`, creating the directory.
    pub async fn open_default(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
            context: format!("cannot create {}", data_dir.display()),
            source,
        })?;
        let path = data_dir.join("autosub.db");
        let path = path.to_str().ok_or_else(|| {
            StoreError::InvalidInput(format!("non-UTF-8 path {}", path.display()))
        })?;
        Self::connect(&format!("sqlite://{path}?mode=rwc")).await
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every pooled connection; later calls fail. Call before deleting the database.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// SQLite only: a consistent copy of the whole database, written while others keep using it
    /// (`VACUUM INTO`; the file must not exist yet).
    pub async fn sqlite_backup(&self, into: &Path) -> Result<()> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::InvalidInput(
                "VACUUM INTO is SQLite's; PostgreSQL is backed up with pg_dump".into(),
            ));
        }
        let target = into.to_str().ok_or_else(|| {
            StoreError::InvalidInput(format!("{} is not valid UTF-8", into.display()))
        })?;
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Round trip to the database (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Whether every embedded migration is recorded as applied (for `/readyz`). False while
    /// another process is still migrating or if the schema is older than this binary.
    pub async fn migrations_applied(&self) -> Result<bool> {
        let rows = sqlx::query("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&self.pool)
            .await;
        let rows = match rows {
            Ok(rows) => rows,
            // No bookkeeping table yet: nothing is applied.
            Err(sqlx::Error::Database(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let applied = rows
            .iter()
            .map(|row| row.try_get::<i64, _>(0))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(migrator(self.backend)
            .iter()
            .all(|m| applied.contains(&m.version)))
    }

    /// Begins a transaction that will write after reading. On SQLite it is `BEGIN IMMEDIATE`:
    /// the write lock is taken up front (waiting up to `busy_timeout`), because a deferred
    /// transaction that reads and then tries to write fails at once with "database is locked"
    /// when another writer got in between. Postgres uses row locks (`FOR UPDATE`) instead.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Row-lock suffix for a `SELECT` inside [`Store::begin_write`]: `FOR UPDATE` on Postgres,
    /// nothing on SQLite (where `BEGIN IMMEDIATE` already excludes other writers).
    pub(crate) fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    // ----------------------------------------------------------------------------- users

    /// Creates the user on first contact, or refreshes username/language (a `None` keeps the
    /// stored value).
    pub async fn upsert_user(
        &self,
        telegram_id: i64,
        username: Option<&str>,
        language: Option<&str>,
        now: i64,
    ) -> Result<User> {
        let sql = format!(
            "INSERT INTO users (telegram_id, username, language, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (telegram_id) DO UPDATE SET \
               username = COALESCE(excluded.username, users.username), \
               language = COALESCE(excluded.language, users.language), \
               updated_at = excluded.updated_at \
             RETURNING {USER_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(telegram_id)
            .bind(username)
            .bind(language)
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        user_from_row(&row)
    }

    /// The user with this Telegram id, if known.
    pub async fn get_user(&self, telegram_id: i64) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE telegram_id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(telegram_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Grants `tier` for `days` days, creating the user when missing.
    ///
    /// Renewing the tier the user already has extends from the current expiry when that is
    /// still in the future (paying early never loses days) and from `now` otherwise. Switching
    /// to a different tier starts from `now`: days of one tier are not silently converted into
    /// days of another. Granting [`Tier::Free`] revokes the paid tier (`days` is ignored).
    pub async fn grant(&self, telegram_id: i64, tier: Tier, days: i64, now: i64) -> Result<User> {
        if tier.is_paid() && days <= 0 {
            return Err(StoreError::InvalidInput(format!(
                "grant of {days} days (must be positive)"
            )));
        }
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO users (telegram_id, created_at, updated_at) VALUES ($1, $2, $2) \
             ON CONFLICT (telegram_id) DO NOTHING",
        )
        .bind(telegram_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let sql = format!(
            "SELECT tier, tier_expires_at FROM users WHERE telegram_id = $1{}",
            self.for_update()
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(telegram_id)
            .fetch_one(&mut *tx)
            .await?;
        let current = parse_tier(&row.try_get::<String, _>("tier")?)?;
        let current_expiry: Option<i64> = row.try_get("tier_expires_at")?;
        let expires_at = if !tier.is_paid() {
            None
        } else if current == tier {
            match current_expiry {
                // Granted without end (by an operator): a purchase does not shorten it.
                None => None,
                Some(at) if at > now => Some(at.saturating_add(days.saturating_mul(DAY_MS))),
                Some(_) => Some(now.saturating_add(days.saturating_mul(DAY_MS))),
            }
        } else {
            Some(now.saturating_add(days.saturating_mul(DAY_MS)))
        };
        let sql = format!(
            "UPDATE users SET tier = $2, tier_expires_at = $3, updated_at = $4 \
             WHERE telegram_id = $1 RETURNING {USER_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(telegram_id)
            .bind(tier.as_str())
            .bind(expires_at)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        let user = user_from_row(&row)?;
        tx.commit().await?;
        Ok(user)
    }

    /// Bans or unbans a known user. `NotFound` when the Telegram id was never seen.
    /// (`updated_at` is stamped with the wall clock: nothing reads it back for logic.)
    pub async fn set_banned(&self, telegram_id: i64, banned: bool) -> Result<()> {
        let done =
            sqlx::query("UPDATE users SET banned = $2, updated_at = $3 WHERE telegram_id = $1")
                .bind(telegram_id)
                .bind(i64::from(banned))
                .bind(now_ms())
                .execute(&self.pool)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {telegram_id}")));
        }
        Ok(())
    }

    // ------------------------------------------------------------------------------ logs

    /// Appends a row to `system_logs`, the operator-facing journal.
    pub async fn log(
        &self,
        level: Level,
        source: &str,
        task_id: Option<i64>,
        message: &str,
        now: i64,
    ) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        insert_log(&mut conn, level, source, task_id, message, now).await
    }

    /// The newest `limit` log rows at `min_level` or above, newest first.
    pub async fn recent_logs(&self, min_level: Level, limit: i64) -> Result<Vec<LogRow>> {
        let levels: Vec<Level> = Level::ALL
            .iter()
            .copied()
            .filter(|l| *l >= min_level)
            .collect();
        let sql = format!(
            "SELECT id, level, source, task_id, message, created_at FROM system_logs \
             WHERE level IN ({}) ORDER BY id DESC LIMIT ${}",
            placeholders(1, levels.len()),
            levels.len() + 1
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for level in &levels {
            query = query.bind(level.as_str());
        }
        let rows = query.bind(limit.max(0)).fetch_all(&self.pool).await?;
        rows.iter().map(log_from_row).collect()
    }
}

/// Inserts a log row on `conn`, which may be inside a transaction: the queue writes its log
/// rows in the same transaction as the state change they describe, so the journal never
/// claims a transition that was rolled back (nor misses one that happened).
pub(crate) async fn insert_log(
    conn: &mut AnyConnection,
    level: Level,
    source: &str,
    task_id: Option<i64>,
    message: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO system_logs (level, source, task_id, message, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(level.as_str())
    .bind(source)
    .bind(task_id)
    .bind(message)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// `$first, $first+1, ...` (`count` placeholders) for an `IN (...)` list.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn parse_tier(s: &str) -> Result<Tier> {
    Tier::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn parse_enum<T: FromStr<Err = UnknownValue>>(s: &str) -> Result<T> {
    T::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Reads a BIGINT 0/1 column as a bool.
pub(crate) fn get_bool(row: &AnyRow, column: &str) -> Result<bool> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

// ------------------------------------------------------------------------------- rows

/// Returned when a string names no variant of one of the enums stored as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

/// An enum stored as TEXT: `as_str` (the stored spelling), `ALL`, `Display`, `FromStr`, serde.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spelling stored in the database.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue { kind: $what, value: s.to_owned() }),
                }
            }
        }
    };
}
pub(crate) use text_enum;

text_enum! {
    /// Severity of a `system_logs` row, ordered from least to most severe.
    Level, "log level" {
        Info = "INFO",
        Warning = "WARNING",
        Error = "ERROR",
        Critical = "CRITICAL",
    }
}

text_enum! {
    /// Billing period of a payment.
    PaymentPeriod, "payment period" {
        Month = "month",
        Year = "year",
    }
}

text_enum! {
    /// Lifecycle of a payment at the provider.
    PaymentStatus, "payment status" {
        Pending = "pending",
        Confirmed = "confirmed",
        Canceled = "canceled",
        Chargebacked = "chargebacked",
        Expired = "expired",
    }
}

/// A row of `users`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub id: i64,
    pub telegram_id: i64,
    pub username: Option<String>,
    pub language: Option<String>,
    /// The tier as stored; see [`User::effective_tier`] for the one that applies now.
    pub tier: Tier,
    pub tier_expires_at: Option<i64>,
    /// Tasks enqueued on UTC day `tasks_day`; see [`User::tasks_today_at`].
    pub tasks_today: i64,
    pub tasks_day: i64,
    pub tasks_total: i64,
    pub banned: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl User {
    /// The tier that applies at `now` (an expired paid tier counts as FREE).
    pub fn effective_tier(&self, now: i64) -> Tier {
        effective_tier(self.tier, self.tier_expires_at, now)
    }

    /// Tasks enqueued today (UTC) as of `now`: the stored counter belongs to `tasks_day`, so
    /// on a later day it reads as zero even before the next enqueue resets it.
    pub fn tasks_today_at(&self, now: i64) -> i64 {
        if self.tasks_day == utc_day(now) {
            self.tasks_today
        } else {
            0
        }
    }
}

pub(crate) const USER_COLUMNS: &str = "id, telegram_id, username, language, tier, \
    tier_expires_at, tasks_today, tasks_day, tasks_total, banned, created_at, updated_at";

pub(crate) fn user_from_row(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        telegram_id: row.try_get("telegram_id")?,
        username: row.try_get("username")?,
        language: row.try_get("language")?,
        tier: parse_tier(&row.try_get::<String, _>("tier")?)?,
        tier_expires_at: row.try_get("tier_expires_at")?,
        tasks_today: row.try_get("tasks_today")?,
        tasks_day: row.try_get("tasks_day")?,
        tasks_total: row.try_get("tasks_total")?,
        banned: get_bool(row, "banned")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A row of `system_logs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogRow {
    pub id: i64,
    pub level: Level,
    pub source: String,
    pub task_id: Option<i64>,
    pub message: String,
    pub created_at: i64,
}

fn log_from_row(row: &AnyRow) -> Result<LogRow> {
    Ok(LogRow {
        id: row.try_get("id")?,
        level: parse_enum(&row.try_get::<String, _>("level")?)?,
        source: row.try_get("source")?,
        task_id: row.try_get("task_id")?,
        message: row.try_get("message")?,
        created_at: row.try_get("created_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sqlite_urls() {
        match parse_url("sqlite:///tmp/a.db").unwrap() {
            Target::Sqlite { url, path } => {
                assert_eq!(url, "sqlite:/tmp/a.db?mode=rwc");
                assert_eq!(path, Some(PathBuf::from("/tmp/a.db")));
            }
            other => panic!("{other:?}"),
        }
        match parse_url("sqlite:data/a.db?mode=ro").unwrap() {
            Target::Sqlite { url, path } => {
                assert_eq!(url, "sqlite:data/a.db?mode=ro");
                assert_eq!(path, Some(PathBuf::from("data/a.db")));
            }
            other => panic!("{other:?}"),
        }
        match parse_url("sqlite::memory:").unwrap() {
            Target::Sqlite { url, path } => {
                assert_eq!(url, "sqlite::memory:");
                assert_eq!(path, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_url("postgresql://u:p@h/db").unwrap(),
            Target::Postgres { .. }
        ));
    }

    #[test]
    fn rejects_other_urls_without_leaking_passwords() {
        let err = parse_url("mysql://u:hunter2@h/db").unwrap_err().to_string();
        assert!(err.contains("mysql://u:***@h/db"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(parse_url("sqlite:").is_err());
    }

    /// Every pooled SQLite connection carries the PRAGMAs (they are per connection, except
    /// WAL which is stored in the file).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_connections_are_configured() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_default(dir.path()).await.unwrap();
        let mut conns = Vec::new();
        for _ in 0..3 {
            let mut conn = store.pool.acquire().await.unwrap();
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(mode, "wal");
            for (pragma, expected) in [
                ("busy_timeout", 10_000),
                ("foreign_keys", 1),
                ("synchronous", 1),
            ] {
                let value: i64 = sqlx::query_scalar(AssertSqlSafe(format!("PRAGMA {pragma}")))
                    .fetch_one(&mut *conn)
                    .await
                    .unwrap();
                assert_eq!(value, expected, "{pragma}");
            }
            conns.push(conn); // hold it so the next acquire opens another connection
        }
        drop(conns);
        // foreign_keys = ON is enforced: a task cannot point at a missing user.
        let err = sqlx::query(
            "INSERT INTO tasks (user_id, kind, spec, spec_version, status, input_type, tier, \
               priority, sort_key, run_at, timeout_ms, created_at, updated_at) \
             VALUES (12345, 'k', '{}', 1, 'queued', 'file', 'free', 0, 0, 0, 1, 0, 0)",
        )
        .execute(&store.pool)
        .await
        .unwrap_err();
        assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
        assert!(dir.path().join("autosub.db.migrate.lock").exists());
        store.close().await;
    }

    #[test]
    fn utc_day_boundaries() {
        assert_eq!(utc_day(0), 0);
        assert_eq!(utc_day(DAY_MS - 1), 0);
        assert_eq!(utc_day(DAY_MS), 1);
        assert_eq!(utc_day(-1), -1);
    }

    #[test]
    fn levels_are_ordered_and_round_trip() {
        assert!(Level::Info < Level::Warning && Level::Error < Level::Critical);
        for &level in Level::ALL {
            assert_eq!(level.as_str().parse::<Level>(), Ok(level));
        }
        assert!("DEBUG".parse::<Level>().is_err());
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
    }
}
