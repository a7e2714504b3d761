//! The service commands: `autosub worker`, `serve`, `billing`, `submit`, `jobs`, `users`, `stats`, `db`. Arguments in, calls
//! into `autosub_service` / `autosub_store`, text or JSON out.

use crate::{bad, exit, job_env, process_job, ProcessArgs};
use anyhow::{Context, Result};
use autosub_billing::{Billing, BillingConfig};
use autosub_core::job::{Job, JobInput};
use autosub_service::policy::{self, Declared};
use autosub_service::worker::{Stop, Worker, WorkerOptions, WorkerStats};
use autosub_service::{http, storage, Config};
use autosub_store::{CancelOutcome, NewTask, Store, TaskRow, Tier};
use clap::{Args, Subcommand};
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Args)]
pub struct WorkerArgs {
    /// Jobs run at once [default: $AUTOSUB_WORKERS, else 1].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    concurrency: Option<u32>,
    /// Also serve /healthz, /readyz and /metrics on this address (e.g. 127.0.0.1:9101).
    #[arg(long, value_name = "ADDR")]
    http_addr: Option<SocketAddr>,
}

#[derive(Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    process: ProcessArgs,
    /// The Telegram user the job is for: their tier's limits and priority apply, and it counts in their tasks
    /// of the day.
    #[arg(long, value_name = "TELEGRAM_ID")]
    user: Option<i64>,
    /// Run under this tier's limits and priority (free, pro, creator) [default: the user's tier; without --user,
    /// no limits at FREE priority].
    #[arg(long)]
    tier: Option<Tier>,
    /// Wait for the job to end, showing its progress; exit 0 when it completed, 5 when it failed, 130 when it was
    /// cancelled. With --out the outputs are copied there.
    #[arg(long)]
    wait: bool,
}

#[derive(Subcommand)]
pub enum JobsCommand {
    /// The most recent jobs, newest first.
    List {
        /// Only jobs in this status (created, queued, processing, completed, failed, cancelled).
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// One job: status, attempts, times, outputs, error.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Queue a failed or cancelled job again (attempts start over).
    Retry { id: i64 },
    /// Cancel a job: a queued one at once, a running one within seconds (its worker stops it).
    Cancel { id: i64 },
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// A user's tier, its expiry and tasks.
    Show {
        telegram_id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Give a user a tier for some days (extends a current subscription of the same tier).
    Grant {
        telegram_id: i64,
        tier: Tier,
        #[arg(long)]
        days: i64,
    },
    /// Block a user: their requests are refused.
    Ban { telegram_id: i64 },
    /// Lift a block.
    Unban { telegram_id: i64 },
}

#[derive(Subcommand)]
pub enum DbCommand {
    /// Write a backup of the database to FILE (SQLite: a consistent copy taken while the service runs;
    /// PostgreSQL: pg_dump's custom format). FILE must not exist.
    Backup { file: PathBuf },
    /// Replace the database's contents with the backup FILE. Stop every process using the database first.
    Restore { file: PathBuf },
}

#[derive(Subcommand)]
pub enum ApikeyCommand {
    /// Make an API key for a CREATOR user (at most 5 active); the key is printed once and never stored.
    Create {
        telegram_id: i64,
        /// A name to tell the key apart in lists.
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List a user's keys (prefix, name, made, last used, revoked).
    List {
        telegram_id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a user's key by its prefix (ask_1234abcd), or all of them with --all.
    Revoke {
        telegram_id: i64,
        #[arg(required_unless_present = "all")]
        prefix: Option<String>,
        #[arg(long, conflicts_with = "prefix")]
        all: bool,
    },
}

#[derive(Args)]
pub struct StatsArgs {
    /// Start of the period (a UTC date, YYYY-MM-DD) [default: 30 days ago]; it ends now.
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    since: Option<i64>,
    /// Print JSON (money in RUB, rates as fractions, times in seconds).
    #[arg(long)]
    json: bool,
}

/// `YYYY-MM-DD` as the first millisecond of that UTC day.
fn parse_date(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not a date like 2026-11-01");
    let mut parts = s.trim().splitn(3, '-');
    let mut next = |max: i64| -> Result<i64, String> {
        parts
            .next()
            .and_then(|p| p.parse::<i64>().ok())
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(bad)
    };
    let (y, m, d) = (next(9999)?, next(12)?, next(31)?);
    // Checked by converting back: 2023-02-29 would be March 1st.
    let ms = autosub_store::utc_day_start(y, m, d);
    if autosub_store::utc_date(ms) != (y, m, d) {
        return Err(bad());
    }
    Ok(ms)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .context("cannot start the async runtime")
}

/// Log lines of the long-running commands on stderr (`RUST_LOG` or `AUTOSUB_LOG` filters; default info):
/// human-readable, or JSON lines with `AUTOSUB_LOG_FORMAT=json` (for ELK, Loki) with the current span's fields
/// (a task's lines carry `"span":{"id":N,"name":"task"}`). With `AUTOSUB_SENTRY_DSN`, ERROR lines (and panics) are
/// also reported to Sentry, with the lines before them as breadcrumbs.
fn init_logging() -> Result<()> {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{fmt, EnvFilter};
    static SENTRY: std::sync::OnceLock<sentry::ClientInitGuard> = std::sync::OnceLock::new();
    let filter = std::env::var("AUTOSUB_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let sentry_layer = match std::env::var("AUTOSUB_SENTRY_DSN") {
        Ok(dsn) if !dsn.trim().is_empty() => {
            let dsn: sentry::types::Dsn = dsn.trim().parse().map_err(|e| {
                bad(format!(
                    "AUTOSUB_SENTRY_DSN is not a Sentry DSN (https://KEY@HOST/PROJECT): {e}"
                ))
            })?;
            let _ = SENTRY.set(sentry::init(sentry::ClientOptions {
                dsn: Some(dsn),
                release: sentry::release_name!(),
                ..Default::default()
            }));
            // ERROR events become Sentry events; WARN and INFO breadcrumbs; DEBUG and TRACE nothing.
            Some(sentry::integrations::tracing::layer())
        }
        _ => None,
    };
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(sentry_layer);
    let format = std::env::var("AUTOSUB_LOG_FORMAT").unwrap_or_default();
    match format.trim() {
        "" | "text" => {
            let _ = registry
                .with(fmt::layer().with_writer(std::io::stderr))
                .try_init();
        }
        "json" => {
            let _ = registry
                .with(
                    fmt::layer()
                        .json()
                        .with_current_span(true)
                        .with_span_list(false)
                        .with_writer(std::io::stderr),
                )
                .try_init();
        }
        other => {
            return Err(bad(format!(
                "AUTOSUB_LOG_FORMAT: {other:?} is neither text nor json"
            )))
        }
    }
    Ok(())
}

fn config() -> Result<Config> {
    Config::from_env().map_err(|e| bad(e.to_string()))
}

async fn open(cfg: &Config) -> Result<Store> {
    cfg.open_store()
        .await
        .context("cannot open the database (AUTOSUB_DATABASE_URL)")
}

/// First SIGTERM or Ctrl-C: drain; the second: stop now (release running jobs); the third: exit at once.
fn watch_signals() -> Result<watch::Receiver<Stop>> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = watch::channel(Stop::Run);
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    tokio::spawn(async move {
        for level in [Stop::Drain, Stop::Now] {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!(
                "{}",
                if level == Stop::Drain {
                    "stopping: no new jobs; running jobs finish (signal again to release them)"
                } else {
                    "stopping now: running jobs are cancelled and go back to the queue"
                }
            );
            let _ = tx.send(level);
        }
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!(
            "third signal: exiting without waiting (running tasks are rescued after their lease)"
        );
        std::process::exit(130);
    });
    Ok(rx)
}

/// The first sender of a oneshot: resolves when the worker has stopped.
async fn after(rx: tokio::sync::oneshot::Receiver<()>) {
    let _ = rx.await;
}

/// A future that resolves once `stop` leaves [`Stop::Run`].
async fn stopped(mut stop: watch::Receiver<Stop>) {
    while *stop.borrow() == Stop::Run {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

fn worker(cfg: &Config, store: Store, models_dir: &Path, concurrency: usize) -> Result<Worker> {
    let env = job_env(models_dir, true, true)?;
    let mut opts = WorkerOptions::new(cfg.data_dir.clone(), concurrency, cfg.lease);
    opts.subscriptions_every = cfg.subscription_sweep;
    opts.backup = cfg
        .backup_dir
        .clone()
        .map(|dir| autosub_service::worker::BackupPlan {
            dir,
            keep: cfg.backup_keep,
            database_url: cfg.database_url.clone(),
            every: Duration::from_secs(86_400),
        });
    opts.shared = cfg.shared.clone();
    if let Ok(id) = std::env::var("AUTOSUB_WORKER_ID") {
        opts.id = id;
    }
    Ok(Worker {
        store,
        env: Arc::new(env),
        opts,
        stats: Arc::new(WorkerStats::default()),
    })
}

/// `autosub worker`: runs queued jobs until stopped.
pub fn worker_cmd(a: WorkerArgs, models_dir: &Path) -> Result<u8> {
    init_logging()?;
    let cfg = config()?;
    let concurrency = a.concurrency.map_or(cfg.workers, |n| n as usize);
    runtime()?.block_on(async {
        let store = open(&cfg).await?;
        let w = worker(&cfg, store.clone(), models_dir, concurrency)?;
        let stop = watch_signals()?;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let http_task = match a.http_addr {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| bad(format!("--http-addr {addr}: {e}")))?;
                let router = http::router(store.clone(), Some(w.stats.clone()));
                // Health stays up while the worker drains: a liveness probe must not kill a draining worker.
                Some(tokio::spawn(http::serve_on(
                    listener,
                    router,
                    after(done_rx),
                )))
            }
            None => None,
        };
        w.run(stop).await;
        let _ = done_tx.send(());
        if let Some(h) = http_task {
            let _ = h.await;
        }
        Ok(exit::OK)
    })
}

/// The bot's settings when `AUTOSUB_TELEGRAM_TOKEN` is set (`None` when it is not), refused when unusable.
fn bot_config() -> Result<Option<autosub_bot::BotConfig>> {
    if std::env::var("AUTOSUB_TELEGRAM_TOKEN").is_ok_and(|t| !t.trim().is_empty()) {
        Ok(Some(
            autosub_bot::BotConfig::from_env().map_err(|e| bad(e.to_string()))?,
        ))
    } else {
        Ok(None)
    }
}

/// A `bool` stop signal, true from the first SIGTERM/SIGINT on, for loops with nothing to drain (the bot, billing's
/// reconciliation: their state is in the database).
fn stop_flag(mut stop: watch::Receiver<Stop>) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        while *stop.borrow() == Stop::Run {
            if stop.changed().await.is_err() {
                break;
            }
        }
        let _ = tx.send(true);
    });
    rx
}

/// The HTTP router of a process running the bot: health, metrics and the download links it signs.
fn bot_router(
    cfg: &Config,
    bot: &autosub_bot::BotConfig,
    store: Store,
    stats: Option<Arc<WorkerStats>>,
) -> http::Router {
    http::router(store, stats).merge(http::downloads(
        cfg.data_dir.clone(),
        bot.token.expose().as_bytes().to_vec(),
        cfg.shared.clone(),
    ))
}

/// Billing as configured by `AUTOSUB_PLATEGA_*` (payments off without credentials), refused when unusable.
fn billing(cfg: &Config, store: Store) -> Result<Arc<Billing>> {
    let bc = BillingConfig::from_env(cfg.public_url.clone()).map_err(|e| bad(e.to_string()))?;
    if !bc.configured() {
        tracing::info!("AUTOSUB_PLATEGA_MERCHANT_ID is not set: payments are off (/plans says so)");
    }
    Ok(Arc::new(
        Billing::new(store, bc).map_err(|e| bad(e.to_string()))?,
    ))
}

async fn start_bot(
    cfg: &Config,
    bot: autosub_bot::BotConfig,
    store: Store,
    billing: Arc<Billing>,
    stop: watch::Receiver<Stop>,
) -> Result<tokio::task::JoinHandle<Result<(), autosub_bot::BotError>>> {
    let mut ctx = autosub_bot::Ctx::new(bot, store, cfg.data_dir.clone(), cfg.public_url.clone())
        .map_err(|e| bad(e.to_string()))?;
    ctx.billing = Some(billing);
    ctx.shared = cfg.shared.clone();
    let ctx = Arc::new(ctx);
    // The token is checked before anything else starts: a wrong one is an error at once, not a loop of retries.
    ctx.tg.get_me().await.map_err(|e| {
        bad(format!(
            "AUTOSUB_TELEGRAM_TOKEN / AUTOSUB_TELEGRAM_API_URL: the Bot API refused or did not answer: {e}"
        ))
    })?;
    Ok(tokio::spawn(autosub_bot::run(ctx, stop_flag(stop))))
}

/// `autosub serve`: the HTTP server, `$AUTOSUB_WORKERS` in-process workers and, when `AUTOSUB_TELEGRAM_TOKEN` is set,
/// the Telegram bot, on one machine.
pub fn serve_cmd(models_dir: &Path) -> Result<u8> {
    init_logging()?;
    let cfg = config()?;
    let bot = bot_config()?;
    runtime()?.block_on(async {
        let store = open(&cfg).await?;
        let w = worker(&cfg, store.clone(), models_dir, cfg.workers)?;
        let pay = billing(&cfg, store.clone())?;
        let stop = watch_signals()?;
        let router = match &bot {
            Some(b) => bot_router(&cfg, b, store.clone(), Some(w.stats.clone())),
            None => http::router(store.clone(), Some(w.stats.clone())),
        }
        .merge(pay.clone().router())
        .merge(api_router(&cfg, store.clone()))
        .merge(admin_router(&cfg, store.clone()));
        let listener = tokio::net::TcpListener::bind(cfg.http_addr)
            .await
            .map_err(|e| bad(format!("AUTOSUB_HTTP_ADDR {}: {e}", cfg.http_addr)))?;
        let reconcile = tokio::spawn(pay.clone().run(stop_flag(stop.clone())));
        let bot_task = match bot {
            Some(b) => Some(start_bot(&cfg, b, store.clone(), pay, stop.clone()).await?),
            None => {
                tracing::info!("AUTOSUB_TELEGRAM_TOKEN is not set: the Telegram bot is off");
                None
            }
        };
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(http::serve_on(listener, router, after(done_rx)));
        w.run(stop).await;
        if let Some(b) = bot_task {
            if let Ok(Err(e)) = b.await {
                tracing::error!("bot: {e}");
            }
        }
        let _ = reconcile.await;
        let _ = done_tx.send(());
        server.await.ok();
        Ok(exit::OK)
    })
}

/// `autosub bot`: the Telegram bot alone (one process per token: only one may long-poll it), with the HTTP server
/// (health, metrics, download links). Workers run elsewhere on the same database.
pub fn bot_cmd() -> Result<u8> {
    init_logging()?;
    let cfg = config()?;
    let bot = bot_config()?.ok_or_else(|| {
        bad("AUTOSUB_TELEGRAM_TOKEN is not set: create a bot with @BotFather and set its token (see docs/BOT.md)")
    })?;
    runtime()?.block_on(async {
        let store = open(&cfg).await?;
        let stop = watch_signals()?;
        // Results fetched to this machine for sending, and staged inputs, go after 24 h as on workers.
        let janitor = local_janitor(&cfg, &store);
        let router = bot_router(&cfg, &bot, store.clone(), None);
        let listener = tokio::net::TcpListener::bind(cfg.http_addr)
            .await
            .map_err(|e| bad(format!("AUTOSUB_HTTP_ADDR {}: {e}", cfg.http_addr)))?;
        // The bot makes payment links; callbacks and reconciliation are `autosub billing`'s.
        let pay = billing(&cfg, store.clone())?;
        let bot_task = start_bot(&cfg, bot, store, pay, stop.clone()).await?;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let server = tokio::spawn(http::serve_on(listener, router, after(done_rx)));
        let result = bot_task.await;
        janitor.abort();
        let _ = done_tx.send(());
        server.await.ok();
        match result {
            Ok(Ok(())) => Ok(exit::OK),
            Ok(Err(e)) => Err(bad(format!("bot: {e}"))),
            Err(e) => Err(bad(format!("bot: {e}"))),
        }
    })
}

/// `autosub billing`: the payment callback (`POST /billing/platega/callback`), the pages payers return to, the
/// reconciliation of payments left pending, health and metrics.
pub fn billing_cmd() -> Result<u8> {
    init_logging()?;
    let cfg = config()?;
    runtime()?.block_on(async {
        let store = open(&cfg).await?;
        let pay = billing(&cfg, store.clone())?;
        let stop = watch_signals()?;
        let reconcile = tokio::spawn(pay.clone().run(stop_flag(stop.clone())));
        let router = http::router(store.clone(), None)
            .merge(pay.router())
            .merge(admin_router(&cfg, store));
        http::serve(cfg.http_addr, router, stopped(stop))
            .await
            .map_err(|e| bad(format!("AUTOSUB_HTTP_ADDR {}: {e}", cfg.http_addr)))?;
        reconcile.abort();
        Ok(exit::OK)
    })
}

/// The HTTP API's router over `store` (uploads and outputs in the data dir's task storage).
fn api_router(cfg: &Config, store: Store) -> http::Router {
    autosub_service::api::router(autosub_service::api::Api {
        store,
        data_dir: cfg.data_dir.clone(),
        rate_per_minute: cfg.api_rate_per_minute,
        tools: autosub_core::media::Tools::from_env(),
        shared: cfg.shared.clone(),
    })
}

/// The operators' page `/admin` (docs/ADMIN.md) when `AUTOSUB_ADMIN_TOKEN` is set; an empty router (404) otherwise.
fn admin_router(cfg: &Config, store: Store) -> http::Router {
    autosub_service::admin::router_for(cfg, store)
}

/// `autosub api`: the HTTP API for integrations, with health and metrics. Workers run elsewhere on the same database
/// and storage.
pub fn api_cmd() -> Result<u8> {
    init_logging()?;
    let cfg = config()?;
    runtime()?.block_on(async {
        let store = open(&cfg).await?;
        let stop = watch_signals()?;
        let janitor = local_janitor(&cfg, &store);
        let router = http::router(store.clone(), None)
            .merge(api_router(&cfg, store.clone()))
            .merge(admin_router(&cfg, store));
        http::serve(cfg.http_addr, router, stopped(stop))
            .await
            .map_err(|e| bad(format!("AUTOSUB_HTTP_ADDR {}: {e}", cfg.http_addr)))?;
        janitor.abort();
        Ok(exit::OK)
    })
}

/// Task folders are kept this long after their task ends (as the workers' janitor does).
const RETENTION_MS: i64 = 24 * 3_600_000;

/// The janitor of this machine's task folders (uploads, staged inputs, results fetched from the shared store) for a
/// process that runs no worker (`autosub bot`, `autosub api`): the workers' 24 h rule.
fn local_janitor(cfg: &Config, store: &Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(storage::janitor_loop(
        store.clone(),
        cfg.data_dir.clone(),
        RETENTION_MS,
    ))
}

/// `autosub apikey create|list|revoke`.
pub fn apikey_cmd(c: ApikeyCommand) -> Result<u8> {
    use autosub_service::api::{self, KeyError};
    let cfg = config()?;
    runtime()?.block_on(async {
        let store = open(&cfg).await?;
        let now = autosub_store::now_ms();
        let user_of = |id: i64, u: Option<autosub_store::User>| {
            u.ok_or_else(|| bad(format!("user {id} is not known")))
        };
        match c {
            ApikeyCommand::Create {
                telegram_id,
                name,
                json,
            } => {
                let (key, row) = api::create_key(&store, telegram_id, name.as_deref(), now)
                    .await
                    .map_err(|e| match e {
                        KeyError::Store(e) => anyhow::Error::from(e),
                        KeyError::NotOnPlan { .. } => bad(format!(
                            "{e} (grant it: autosub users grant {telegram_id} creator --days N)"
                        )),
                        e => bad(e.to_string()),
                    })?;
                if json {
                    out!(
                        "{}",
                        json!({ "key": key, "prefix": row.prefix, "name": row.name, "created_at": iso(row.created_at) })
                    );
                } else {
                    out!("{key}");
                    eprintln!(
                        "autosub: API key {}… made for user {telegram_id}; it is shown only now (send it as `Authorization: Bearer KEY`)",
                        row.prefix
                    );
                }
            }
            ApikeyCommand::List { telegram_id, json } => {
                let user = user_of(telegram_id, store.get_user(telegram_id).await?)?;
                let keys = store.api_keys_of(user.id).await?;
                if json {
                    let v: Vec<_> = keys
                        .iter()
                        .map(|k| {
                            json!({
                                "prefix": k.prefix, "name": k.name, "created_at": iso(k.created_at),
                                "last_used_at": k.last_used_at.map(iso), "revoked_at": k.revoked_at.map(iso),
                            })
                        })
                        .collect();
                    out!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    for k in keys {
                        out!(
                            "{}…  {}  made {}  last used {}{}",
                            k.prefix,
                            k.name.as_deref().unwrap_or("-"),
                            iso(k.created_at),
                            k.last_used_at.map(iso).unwrap_or_else(|| "never".into()),
                            k.revoked_at
                                .map(|t| format!("  revoked {}", iso(t)))
                                .unwrap_or_default()
                        );
                    }
                }
            }
            ApikeyCommand::Revoke {
                telegram_id,
                prefix,
                all,
            } => {
                let user = user_of(telegram_id, store.get_user(telegram_id).await?)?;
                let prefix = if all {
                    None
                } else {
                    prefix.map(|p| p.trim_end_matches('…').to_owned())
                };
                let n = store.revoke_api_keys(user.id, prefix.as_deref(), now).await?;
                if n == 0 {
                    return Err(bad(format!(
                        "user {telegram_id} has no active key{}",
                        prefix.map(|p| format!(" {p}")).unwrap_or_default()
                    )));
                }
                out!("{n} key(s) revoked");
            }
        }
        Ok(exit::OK)
    })
}

/// `autosub db backup|restore`.
pub fn db_cmd(c: DbCommand) -> Result<u8> {
    use autosub_service::backup::{self, BackupError};
    let cfg = config()?;
    let fail = |e: BackupError| match e {
        BackupError::Invalid(m) => bad(m),
        e => anyhow::anyhow!(e),
    };
    runtime()?.block_on(async {
        match c {
            DbCommand::Backup { file } => {
                let store = open(&cfg).await?;
                let bytes = backup::backup(&store, cfg.database_url.as_deref(), &file)
                    .await
                    .map_err(fail)?;
                out!("{} ({} bytes)", file.display(), bytes);
            }
            DbCommand::Restore { file } => {
                backup::restore(cfg.database_url.as_deref(), &cfg.data_dir, &file)
                    .await
                    .map_err(fail)?;
                out!("restored {}", file.display());
            }
        }
        Ok(exit::OK)
    })
}

/// `autosub stats`: the business metrics from `--since` (default 30 days ago) to now.
pub fn stats_cmd(a: StatsArgs) -> Result<u8> {
    let cfg = config()?;
    runtime()?.block_on(async {
        let store = open(&cfg).await?;
        let now = autosub_store::now_ms();
        let since = a.since.unwrap_or(now - 30 * 86_400_000);
        if since >= now {
            return Err(bad("--since must be a day before now"));
        }
        let m = store.metrics(since, now).await?;
        if a.json {
            let mut v = serde_json::to_value(&m)?;
            v["since"] = json!(iso(m.since));
            v["until"] = json!(iso(m.until));
            for k in ["d1", "d7", "d30"] {
                v["retention"][k] = json!(m.retention[k].rate);
                v["retention_cohorts"][k] = serde_json::to_value(m.retention[k])?;
            }
            out!("{}", serde_json::to_string_pretty(&v)?);
            return Ok(exit::OK);
        }
        let pct = |x: f64| format!("{:.1}%", x * 100.0);
        out!("period       {} .. {}", iso(m.since), iso(m.until));
        out!(
            "active       today {}, 7 days {}, 30 days {}; in the period {}",
            m.dau,
            m.wau,
            m.mau,
            m.active
        );
        out!(
            "new users    {} ({} paid: conversion {})",
            m.new_users,
            m.new_paying,
            pct(m.conversion)
        );
        out!("revenue      {} RUB (ARPU {:.2} RUB)", m.revenue, m.arpu);
        for p in &m.revenue_by_plan {
            out!(
                "  {:<8} {:<6} {:>4} payments {:>8} RUB",
                p.tier,
                p.period,
                p.payments,
                p.amount
            );
        }
        let r = |k: &str| {
            let x = &m.retention[k];
            format!("{k} {} ({} of {})", pct(x.rate), x.retained, x.cohort)
        };
        out!("retention    {}, {}, {}", r("d1"), r("d7"), r("d30"));
        let list = |m: &std::collections::BTreeMap<String, i64>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out!(
            "tasks        {} ({})",
            m.tasks.total,
            list(&m.tasks.by_status)
        );
        out!("  by tier    {}", list(&m.tasks.by_tier));
        out!("  features   {}", list(&m.tasks.by_feature));
        for (tier, t) in &m.processing {
            out!(
                "processing   {tier}: median {:.1} s, p95 {:.1} s ({} completed)",
                t.median_s,
                t.p95_s,
                t.tasks
            );
        }
        Ok(exit::OK)
    })
}

/// `2026-12-04T15:30:00Z` from milliseconds since the epoch.
use autosub_store::iso_utc as iso;

/// The JSON of a task for `jobs show --json` and `submit --wait --json`.
fn task_json(t: &TaskRow) -> serde_json::Value {
    let outputs: serde_json::Value = t
        .outputs
        .as_deref()
        .and_then(|o| serde_json::from_str(o).ok())
        .unwrap_or(serde_json::Value::Null);
    json!({
        "id": t.id,
        "kind": t.kind,
        "status": t.status.as_str(),
        "tier": t.tier.as_str(),
        "priority": t.priority,
        "attempts": t.attempts,
        "max_attempts": t.max_attempts,
        "input_type": t.input_type,
        "input_url": t.input_url,
        "created_at": iso(t.created_at),
        "queued_at": t.queued_at.map(iso),
        "started_at": t.started_at.map(iso),
        "finished_at": t.finished_at.map(iso),
        "run_at": iso(t.run_at),
        "worker": t.lease_owner,
        "progress": t.progress_stage.as_ref().map(|s| json!({"stage": s, "percent": t.progress_percent})),
        "cancel_requested": t.cancel_requested,
        "outputs": outputs,
        "error": t.error,
        "error_detail": t.error_detail,
    })
}

/// `autosub submit`: queues a job; with --wait follows it to its end.
pub fn submit_cmd(
    a: SubmitArgs,
    ui: &crate::display::Ui,
    sink: &dyn autosub_core::progress::Sink,
) -> Result<u8> {
    let cfg = config()?;
    let mut job = process_job(&a.process)?;
    if a.process.video.save_script.is_some() {
        return Err(bad(
            "--save-script writes on the worker's machine: use `autosub process` for it",
        ));
    }
    // The options that need the server's files are checked here, before anything is queued.
    if let Some(v) = &job.video {
        autosub_core::job::video_job(v, &Default::default())?;
    }
    let limited = a.user.is_some() || a.tier.is_some();
    let declared = match &job.input {
        JobInput::File { path } if !limited => {
            autosub_core::media::check_input_file(path)?;
            Declared::default()
        }
        JobInput::File { path } => {
            // Under a tier's limits the file is probed first: a long or non-media file is refused before it is
            // queued (the worker checks again on what it receives).
            autosub_core::media::check_input_file(path)?;
            let size = std::fs::metadata(path).map(|m| m.len()).ok();
            let info = autosub_core::media::probe(
                &autosub_core::media::Tools::from_env(),
                path,
                &autosub_core::progress::NullSink,
            )?;
            Declared {
                duration_s: info.duration_ms.map(|d| d.div_ceil(1000)),
                size_bytes: size,
            }
        }
        JobInput::Url { .. } => Declared::default(),
    };
    runtime()?.block_on(async {
        let store = open(&cfg).await?;
        let now = autosub_store::now_ms();
        let user = match a.user {
            Some(id) => Some(store.upsert_user(id, None, None, now).await?),
            None => None,
        };
        let tier = a
            .tier
            .or(user.as_ref().map(|u| u.effective_tier(now)))
            .unwrap_or(Tier::Free);
        if limited {
            policy::apply_tier(&mut job, tier, user.as_ref(), declared, now)
                .map_err(|r| bad(r.to_string()))?;
        }
        let (input_type, input_url, file) = match &job.input {
            JobInput::File { path } => ("file", None, Some(path.clone())),
            JobInput::Url { url } => ("url", Some(url.clone()), None),
        };
        let task = NewTask {
            user_telegram_id: a.user,
            kind: "process".into(),
            spec: job.to_json(),
            spec_version: i64::from(job.version),
            input_type: input_type.into(),
            input_url,
            generate_subtitles: true,
            translate: job.translate.as_ref().map(|t| t.targets.join(",")),
            voiceover: job.voiceover.is_some(),
            vertical_format: job.vertical(),
            tier,
            // An operator's job without a tier runs as long as the longest plan allows.
            timeout_ms: (!limited).then(|| Tier::Creator.limits().timeout_ms),
            daily_limit: limited.then(|| i64::from(tier.limits().tasks_per_day)),
            hold: true,
            ..Default::default()
        };
        let id = match store.enqueue(&task, now).await {
            Err(autosub_store::StoreError::QuotaExceeded { .. }) => {
                return Err(bad(policy::daily_limit(tier).to_string()))
            }
            r => r?,
        };
        // Files the job names (the input, a style, a watermark image, a glossary) go into the task's folder, shared
        // by the workers, before the task is queued.
        let staged = match stage_files(&cfg, id, &mut job, file.as_deref()) {
            Ok(()) => match &cfg.shared {
                Some(shared) => storage::put_inputs(shared, &cfg.data_dir, id)
                    .await
                    .map(|_| ())
                    .map_err(|e| anyhow::anyhow!("task {id}: the input to the shared store: {e}")),
                None => Ok(()),
            },
            e => e,
        };
        let queued = match staged {
            Ok(()) => store
                .queue_created(id, &job.to_json(), autosub_store::now_ms())
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e),
        };
        match queued {
            Ok(true) => {}
            Ok(false) => return Err(bad(format!("task {id} was cancelled before it was queued"))),
            Err(e) => {
                let _ = store.cancel(id, autosub_store::now_ms()).await;
                return Err(e);
            }
        }
        if !a.wait {
            if a.process.json {
                out!("{}", json!({ "id": id }));
            } else {
                out!("{id}");
            }
            return Ok(exit::OK);
        }
        ui.note(&format!("task {id} queued"));
        wait_for(&store, id, &a, ui, sink).await
    })
}

/// Follows task `id` to its end; prints its outputs (copied into --out when given).
async fn wait_for(
    store: &Store,
    id: i64,
    a: &SubmitArgs,
    ui: &crate::display::Ui,
    sink: &dyn autosub_core::progress::Sink,
) -> Result<u8> {
    let mut last = String::new();
    let t = loop {
        if sink.is_cancelled() {
            eprintln!(
                "autosub: stopped waiting; task {id} goes on (autosub jobs cancel {id} stops it)"
            );
            return Ok(exit::CANCELLED);
        }
        let t = store
            .get_task(id)
            .await?
            .ok_or_else(|| bad(format!("task {id} disappeared")))?;
        if t.status.is_finished() {
            break t;
        }
        let line = match (&t.progress_stage, t.status.as_str()) {
            (Some(s), "processing") => {
                format!("task {id}: {s} {:.0}%", t.progress_percent.unwrap_or(0.0))
            }
            (_, st) => format!("task {id}: {st}"),
        };
        if line != last {
            ui.note(&line);
            last = line;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(o) = t
        .outputs
        .as_deref()
        .and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok())
    {
        collect_paths(&o, &mut files);
    }
    if let (Some(out), "completed") = (&a.process.out, t.status.as_str()) {
        autosub_core::pipeline::check_output_dir(out)?;
        let mut copied = Vec::new();
        for f in &files {
            let dest = out.join(f.file_name().unwrap_or_default());
            autosub_core::partial::copy_into_place(f, &dest).map_err(|e| {
                autosub_core::Error::Write {
                    path: dest.clone(),
                    source: e,
                }
            })?;
            copied.push(dest);
        }
        files = copied;
    }
    if a.process.json {
        let mut v = task_json(&t);
        v["files"] = json!(files);
        out!("{}", serde_json::to_string_pretty(&v)?);
    } else if t.status.as_str() == "completed" {
        for f in &files {
            out!("{}", f.display());
        }
    }
    match t.status.as_str() {
        "completed" => Ok(exit::OK),
        "cancelled" => {
            eprintln!("autosub: task {id} was cancelled");
            Ok(exit::CANCELLED)
        }
        _ => {
            eprintln!(
                "autosub: error: task {id} failed: {}",
                t.error.as_deref().unwrap_or("unknown error")
            );
            Ok(exit::INTERNAL)
        }
    }
}

/// Every file path in a task's outputs (values of `files` maps, `video`, `voiceover_audio`).
fn collect_paths(v: &serde_json::Value, into: &mut Vec<PathBuf>) {
    if let Some(m) = v["files"].as_object() {
        into.extend(m.values().filter_map(|p| p.as_str()).map(PathBuf::from));
    }
    if let Some(ts) = v["translations"].as_array() {
        for t in ts {
            collect_paths(t, into);
        }
    }
    for k in ["video", "voiceover_audio"] {
        if let Some(p) = v[k].as_str() {
            into.push(PathBuf::from(p));
        }
    }
}

/// `autosub jobs ...`.
pub fn jobs_cmd(c: JobsCommand) -> Result<u8> {
    let cfg = config()?;
    runtime()?.block_on(async {
        let store = open(&cfg).await?;
        let now = autosub_store::now_ms();
        match c {
            JobsCommand::List {
                status,
                limit,
                json,
            } => {
                let rows = store
                    .list_tasks(status.as_deref(), limit)
                    .await
                    .map_err(|e| bad(e.to_string()))?;
                if json {
                    let v: Vec<_> = rows.iter().map(task_json).collect();
                    out!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    for t in &rows {
                        let progress = match (&t.progress_stage, t.status.as_str()) {
                            (Some(s), "processing") => {
                                format!("{s} {:.0}%", t.progress_percent.unwrap_or(0.0))
                            }
                            _ => String::new(),
                        };
                        out!(
                            "{:>6}  {:<10}  {:<7}  {}/{}  {}  {}{}",
                            t.id,
                            t.status.as_str(),
                            t.tier.as_str(),
                            t.attempts,
                            t.max_attempts,
                            iso(t.created_at),
                            progress,
                            t.error
                                .as_deref()
                                .map(|e| format!("  {e}"))
                                .unwrap_or_default()
                        );
                    }
                }
            }
            JobsCommand::Show { id, json } => {
                let t = store
                    .get_task(id)
                    .await?
                    .ok_or_else(|| bad(format!("no task {id}")))?;
                let v = task_json(&t);
                if json {
                    out!("{}", serde_json::to_string_pretty(&v)?);
                } else if let Some(m) = v.as_object() {
                    for (k, x) in m {
                        if !x.is_null() {
                            out!("{k:>16}: {}", x);
                        }
                    }
                }
            }
            JobsCommand::Retry { id } => {
                store
                    .retry(id, now)
                    .await
                    .map_err(|e| bad(format!("task {id}: {e}")))?;
                out!("task {id} queued again");
            }
            JobsCommand::Cancel { id } => match store.cancel(id, now).await? {
                CancelOutcome::Cancelled => out!("task {id} cancelled"),
                CancelOutcome::Requested => {
                    out!("task {id} is running: its worker stops it within seconds")
                }
                CancelOutcome::AlreadyFinished => {
                    return Err(bad(format!("task {id} has already ended")))
                }
                CancelOutcome::NotFound => return Err(bad(format!("no task {id}"))),
            },
        }
        Ok(exit::OK)
    })
}

/// `autosub users ...`.
pub fn users_cmd(c: UsersCommand) -> Result<u8> {
    let cfg = config()?;
    runtime()?.block_on(async {
        let store = open(&cfg).await?;
        let now = autosub_store::now_ms();
        let show = |u: &autosub_store::User, json: bool| {
            let v = json!({
                "telegram_id": u.telegram_id,
                "tier": u.tier.as_str(),
                "effective_tier": u.effective_tier(now).as_str(),
                "tier_expires_at": u.tier_expires_at.map(iso),
                "tasks_today": u.tasks_today_at(now),
                "tasks_total": u.tasks_total,
                "banned": u.banned,
                "created_at": iso(u.created_at),
            });
            if json {
                out!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                out!(
                    "{}: {}{}, {} tasks today, {} in all{}",
                    u.telegram_id,
                    u.effective_tier(now).as_str(),
                    u.tier_expires_at
                        .map(|e| format!(" until {}", iso(e)))
                        .unwrap_or_default(),
                    u.tasks_today_at(now),
                    u.tasks_total,
                    if u.banned { ", banned" } else { "" }
                );
            }
        };
        match c {
            UsersCommand::Show { telegram_id, json } => {
                let u = store
                    .get_user(telegram_id)
                    .await?
                    .ok_or_else(|| bad(format!("no user {telegram_id}")))?;
                show(&u, json);
            }
            UsersCommand::Grant {
                telegram_id,
                tier,
                days,
            } => {
                if !(1..=3650).contains(&days) {
                    return Err(bad("--days must be from 1 to 3650"));
                }
                let u = store.grant(telegram_id, tier, days, now).await?;
                show(&u, false);
            }
            UsersCommand::Ban { telegram_id } | UsersCommand::Unban { telegram_id } => {
                let ban = matches!(c, UsersCommand::Ban { .. });
                store
                    .set_banned(telegram_id, ban)
                    .await
                    .map_err(|e| bad(format!("user {telegram_id}: {e}")))?;
                out!(
                    "user {telegram_id} {}",
                    if ban { "banned" } else { "unbanned" }
                );
            }
        }
        Ok(exit::OK)
    })
}

/// Copies the files `job` names into task `id`'s `input/` folder and points the job at them: the input (relative
/// to the task folder, named after the original), a style file, a watermark image and a glossary (absolute paths in
/// the shared data dir).
fn stage_files(cfg: &Config, id: i64, job: &mut Job, input: Option<&Path>) -> Result<()> {
    // Stored in the task's folder and named relative to it (`input/NAME`): the worker resolves them in its own copy.
    let copy = |p: &Path| {
        let stored = storage::store_input(&cfg.data_dir, id, p).map_err(|e| {
            bad(format!(
                "cannot copy {} into the task storage {}: {e}",
                p.display(),
                cfg.data_dir.display()
            ))
        })?;
        Ok::<PathBuf, anyhow::Error>(
            stored
                .strip_prefix(storage::task_dir(&cfg.data_dir, id))
                .map(Path::to_owned)
                .unwrap_or(stored),
        )
    };
    if let Some(file) = input {
        let rel = copy(file)?;
        job.name = Some(autosub_core::job::stem_of(file));
        job.input = JobInput::File { path: rel };
    }
    if let Some(v) = job.video.as_mut() {
        if let Some(style) = v.style.as_mut() {
            if autosub_subs::AssStyle::by_name(style).is_none() {
                *style = copy(Path::new(style.as_str()))?.display().to_string();
            }
        }
        if let Some(w) = v.watermark.as_mut() {
            if Path::new(&w.value).is_file() {
                w.value = copy(Path::new(&w.value))?.display().to_string();
            }
        }
    }
    if let Some(g) = job.translate.as_mut().and_then(|t| t.glossary.as_mut()) {
        *g = copy(g)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn stats_dates() {
        use super::parse_date;
        assert_eq!(parse_date("2024-01-01"), Ok(1_704_067_200_000));
        assert_eq!(parse_date("2024-02-29"), Ok(1_709_164_800_000));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1",
            "yesterday",
            "2024-01-32",
            "",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn iso_dates() {
        assert_eq!(super::iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::iso(1_796_398_200_000), "2026-12-04T15:30:00Z");
        assert_eq!(super::iso(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
