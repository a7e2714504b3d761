//! AutoSub's Telegram bot: a thin frontend over the queue. It never runs a pipeline: it reads what users send,
//! checks it against their tier, writes requests and tasks to the database, and tells users how their tasks go,
//! delivering each result once. Workers (any process, any machine) run the tasks.
//!
//! One process long-polls the token ([`run`]); inside it four loops share a [`Ctx`]:
//! - **updates** ([`handle`]): getUpdates from the last handled update on; each update is handled, then recorded in
//!   `bot_updates`, and only then confirmed to Telegram by the next offset. A crash re-delivers the unrecorded ones;
//!   their effects are idempotent (requests are keyed by update id, button data carries the value to set).
//! - **intake** ([`intake`]): started requests are downloaded from Telegram, probed, checked and queued.
//! - **notify** ([`notify`]): one status message per task, edited with position, stage and percent (at most once per
//!   3 s per chat, holding back while Telegram's flood control asks); results sent once each (recorded per item).
//! - **admin** ([`admin`]): alerts of ERROR/CRITICAL system logs to the admins, broadcasts.
//!
//! Everything that must survive a restart lives in the database (dialogue state, settings, requests, what was sent).

pub mod admin;
pub mod api;
pub mod config;
pub mod handle;
pub mod i18n;
pub mod intake;
mod keys;
pub mod notify;
pub mod options;
pub mod pay;
pub mod standin;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use autosub_core::media::Tools;
use autosub_store::{Store, StoreError};
use tokio::sync::{watch, Notify};

pub use api::{Telegram, TgError};
pub use config::{BotConfig, Secret};
use i18n::Lang;

/// Why the bot stopped.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Telegram(#[from] TgError),
}

/// Messages per user per minute before the flood guard drops them.
pub const FLOOD_PER_MINUTE: usize = 20;
/// Least time between two progress edits in one chat.
pub const EDIT_EVERY: Duration = Duration::from_secs(3);

/// Per-user message counts over the last minute (in memory: a restart forgives).
#[derive(Default)]
pub struct Flood {
    seen: HashMap<i64, (Vec<Instant>, bool)>,
}

/// What the flood guard says about one more message.
#[derive(Debug, PartialEq, Eq)]
pub enum FloodVerdict {
    Ok,
    /// Dropped, and the user is told once.
    Warn,
    Drop,
}

impl Flood {
    pub fn check(&mut self, user: i64, now: Instant) -> FloodVerdict {
        let (times, warned) = self.seen.entry(user).or_default();
        times.retain(|t| now.duration_since(*t) < Duration::from_secs(60));
        if times.is_empty() {
            *warned = false;
        }
        times.push(now);
        if times.len() <= FLOOD_PER_MINUTE {
            FloodVerdict::Ok
        } else if !*warned {
            *warned = true;
            FloodVerdict::Warn
        } else {
            FloodVerdict::Drop
        }
    }

    /// Forgets users quiet for a minute (bounded memory).
    pub fn prune(&mut self, now: Instant) {
        self.seen.retain(|_, (t, _)| {
            t.last()
                .is_some_and(|l| now.duration_since(*l) < Duration::from_secs(60))
        });
    }
}

/// What the bot's loops share.
pub struct Ctx {
    pub cfg: BotConfig,
    pub tg: Telegram,
    pub store: Store,
    pub data_dir: PathBuf,
    /// Where users reach the HTTP server (download links); `None`: big results cannot be linked.
    pub public_url: Option<String>,
    pub tools: Tools,
    pub flood: Mutex<Flood>,
    /// Last progress edit per chat.
    pub edits: Mutex<HashMap<i64, Instant>>,
    /// Refusals told for files of an album before they became requests (a photo in an album of videos), by user,
    /// media group and text: each told once, not once per file (kept an hour; a restart may repeat one).
    pub album_said: Mutex<HashMap<(i64, String, String), Instant>>,
    /// Wakes the intake when a request is started.
    pub intake_wake: Notify,
    /// Payments (`/plans`); `None` or unconfigured: `/plans` says payments are not set up.
    pub billing: Option<Arc<autosub_billing::Billing>>,
    /// The bot's @username, from getMe at start (for `/invite` links).
    pub username: std::sync::OnceLock<String>,
    /// The shared store of task files (`AUTOSUB_STORAGE_URL`): inputs put there, results read from there.
    pub shared: Option<autosub_service::storage::Storage>,
}

impl Ctx {
    pub fn new(
        cfg: BotConfig,
        store: Store,
        data_dir: PathBuf,
        public_url: Option<String>,
    ) -> Result<Ctx, BotError> {
        Ok(Ctx {
            tg: Telegram::new(&cfg)?,
            cfg,
            store,
            data_dir,
            public_url,
            tools: Tools::from_env(),
            flood: Mutex::new(Flood::default()),
            edits: Mutex::new(HashMap::new()),
            album_said: Mutex::new(HashMap::new()),
            billing: None,
            username: std::sync::OnceLock::new(),
            shared: None,
            intake_wake: Notify::new(),
        })
    }

    /// The language to talk to a user in: chosen with /lang, else their Telegram language.
    pub async fn lang_of(&self, telegram_id: i64, telegram_code: Option<&str>) -> Lang {
        match self.store.bot_chat(telegram_id).await {
            Ok(Some(c)) if c.lang.is_some() => Lang::from_code(c.lang.as_deref()),
            _ => Lang::from_code(telegram_code),
        }
    }
}

/// Runs the bot until `stop` turns true: checks the token, then the four loops. Returns when they have stopped
/// (an update being handled is finished first).
pub async fn run(ctx: Arc<Ctx>, stop: watch::Receiver<bool>) -> Result<(), BotError> {
    let name = ctx.tg.get_me().await?;
    let _ = ctx.username.set(name.clone());
    tracing::info!(bot = %name, api = %ctx.cfg.api_url, "bot started");
    let loops = [
        tokio::spawn(handle::poll_loop(ctx.clone(), stop.clone())),
        tokio::spawn(intake::intake_loop(ctx.clone(), stop.clone())),
        tokio::spawn(notify::notify_loop(ctx.clone(), stop.clone())),
        tokio::spawn(admin::admin_loop(ctx.clone(), stop.clone())),
    ];
    for l in loops {
        if let Err(e) = l.await {
            tracing::error!("a bot loop panicked: {e}");
        }
    }
    tracing::info!("bot stopped");
    Ok(())
}

/// Sleeps `d` or until `stop` turns true; true when stopping.
pub(crate) async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        r = stop.changed() => r.is_err() || *stop.borrow(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flood_guard_warns_once_then_drops_and_forgets_after_a_minute() {
        let mut f = Flood::default();
        let t0 = Instant::now();
        for i in 0..FLOOD_PER_MINUTE {
            assert_eq!(
                f.check(1, t0 + Duration::from_millis(i as u64)),
                FloodVerdict::Ok
            );
        }
        assert_eq!(f.check(1, t0 + Duration::from_secs(1)), FloodVerdict::Warn);
        assert_eq!(f.check(1, t0 + Duration::from_secs(2)), FloodVerdict::Drop);
        assert_eq!(f.check(2, t0 + Duration::from_secs(2)), FloodVerdict::Ok);
        assert_eq!(f.check(1, t0 + Duration::from_secs(70)), FloodVerdict::Ok);
        f.prune(t0 + Duration::from_secs(200));
        assert!(f.seen.is_empty());
    }
}
