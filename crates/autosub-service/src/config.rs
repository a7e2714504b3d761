//! The configuration of the service commands, read once from the environment at start.
//!
//! | variable | default |
//! |---|---|
//! | `AUTOSUB_DATABASE_URL` | SQLite: `$AUTOSUB_DATA_DIR/autosub.db`; or `postgres://...` |
//! | `AUTOSUB_DATA_DIR` | `$XDG_DATA_HOME/autosub/service` (`~/.local/share/autosub/service`) |
//! | `AUTOSUB_WORKERS` | 1 (jobs run at once by `autosub serve`, and by `autosub worker` without `--concurrency`) |
//! | `AUTOSUB_HTTP_ADDR` | `127.0.0.1:8080` |
//! | `AUTOSUB_PUBLIC_URL` | none (the address users reach the HTTP server at: download links, payment returns) |
//! | `AUTOSUB_LEASE_SECS` | 30 (a worker silent this long is presumed dead and its task rescued) |
//! | `AUTOSUB_SUBSCRIPTION_SWEEP_SECS` | 3600 (how often ended paid tiers are moved to FREE and reminders written) |
//! | `AUTOSUB_BACKUP_DIR` | none (a worker writes a daily database backup there) |
//! | `AUTOSUB_BACKUP_KEEP` | 7 (backups kept in `AUTOSUB_BACKUP_DIR`) |
//! | `AUTOSUB_API_RATE_LIMIT` | 60 (requests per API key and minute, across all processes) |
//! | `AUTOSUB_STORAGE_URL` | none: task files only in the data dir; `s3://bucket/prefix`: shared through S3 (`AWS_*`) |
//! | `AUTOSUB_ADMIN_TOKEN` | none: the operators' page `/admin` is off (404); at least 16 characters (docs/ADMIN.md) |

use autosub_store::{mask_url, Store};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A value that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The value itself, for the one place that needs it (the client that sends it).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Removes every occurrence of the secret from `text`.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            return text.to_owned();
        }
        text.replace(&self.0, "<redacted>")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A variable that is set but unusable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

/// The typed configuration of `autosub serve`, `worker`, `billing`, `submit`, `jobs` and `users`.
#[derive(Clone, Debug)]
pub struct Config {
    /// `None`: the SQLite file in the data dir.
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    pub workers: usize,
    pub http_addr: SocketAddr,
    pub public_url: Option<String>,
    pub lease: Duration,
    pub subscription_sweep: Duration,
    pub backup_dir: Option<PathBuf>,
    pub backup_keep: usize,
    /// Requests per API key and minute.
    pub api_rate_per_minute: i64,
    /// The shared store of task files (`AUTOSUB_STORAGE_URL=s3://...`); `None`: the data dir alone.
    pub shared: Option<autosub_storage::Storage>,
    /// The operators' page's login token (`AUTOSUB_ADMIN_TOKEN`); `None`: `/admin` is off.
    pub admin_token: Option<Secret>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn default_data_dir() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("autosub/service")
}

impl Config {
    /// Reads the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let bad = |var: &'static str, message: String| ConfigError { var, message };
        let workers = match var("AUTOSUB_WORKERS") {
            None => 1,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| {
                    bad(
                        "AUTOSUB_WORKERS",
                        format!("{v:?} is not a number from 1 to 64"),
                    )
                })?,
        };
        let http_addr = match var("AUTOSUB_HTTP_ADDR") {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(v) => v.parse().map_err(|_| {
                bad(
                    "AUTOSUB_HTTP_ADDR",
                    format!("{v:?} is not an address like 127.0.0.1:8080"),
                )
            })?,
        };
        let public_url = var("AUTOSUB_PUBLIC_URL");
        if let Some(u) = &public_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(bad(
                    "AUTOSUB_PUBLIC_URL",
                    format!("{u:?} must start with https:// or http://"),
                ));
            }
        }
        let lease = match var("AUTOSUB_LEASE_SECS") {
            None => Duration::from_secs(30),
            Some(v) => Duration::from_secs(
                v.parse::<u64>()
                    .ok()
                    .filter(|n| (1..=3600).contains(n))
                    .ok_or_else(|| {
                        bad(
                            "AUTOSUB_LEASE_SECS",
                            format!("{v:?} is not a number of seconds from 1 to 3600"),
                        )
                    })?,
            ),
        };
        let subscription_sweep = match var("AUTOSUB_SUBSCRIPTION_SWEEP_SECS") {
            None => Duration::from_secs(3600),
            Some(v) => Duration::from_secs(
                v.parse::<u64>()
                    .ok()
                    .filter(|n| (1..=86_400).contains(n))
                    .ok_or_else(|| {
                        bad(
                            "AUTOSUB_SUBSCRIPTION_SWEEP_SECS",
                            format!("{v:?} is not a number of seconds from 1 to 86400"),
                        )
                    })?,
            ),
        };
        let api_rate_per_minute = match var("AUTOSUB_API_RATE_LIMIT") {
            None => 60,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=100_000).contains(n))
                .ok_or_else(|| {
                    bad(
                        "AUTOSUB_API_RATE_LIMIT",
                        format!("{v:?} is not a number of requests a minute from 1 to 100000"),
                    )
                })?,
        };
        let backup_keep = match var("AUTOSUB_BACKUP_KEEP") {
            None => 7,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    bad(
                        "AUTOSUB_BACKUP_KEEP",
                        format!("{v:?} is not a number of backups from 1 to 1000"),
                    )
                })?,
        };
        let database_url = var("AUTOSUB_DATABASE_URL");
        if let Some(u) = &database_url {
            if !(u.starts_with("sqlite:")
                || u.starts_with("postgres://")
                || u.starts_with("postgresql://"))
            {
                return Err(bad(
                    "AUTOSUB_DATABASE_URL",
                    format!("{} is neither sqlite:PATH nor postgres://...", mask_url(u)),
                ));
            }
        }
        let data_dir = var("AUTOSUB_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(default_data_dir);
        let shared = match var("AUTOSUB_STORAGE_URL") {
            None => None,
            Some(u) => match autosub_storage::Storage::from_url(Some(&u), &data_dir) {
                Ok(s) => (!s.is_local()).then_some(s),
                Err(autosub_storage::StorageError::Config { var, message }) => {
                    return Err(bad(var, message))
                }
                Err(e) => return Err(bad("AUTOSUB_STORAGE_URL", e.to_string())),
            },
        };
        let admin_token = match var("AUTOSUB_ADMIN_TOKEN") {
            None => None,
            Some(t) if t.chars().count() < 16 => {
                return Err(bad(
                    "AUTOSUB_ADMIN_TOKEN",
                    format!(
                        "is {} characters long; use at least 16 (e.g. `openssl rand -hex 24`)",
                        t.chars().count()
                    ),
                ))
            }
            Some(t) => Some(Secret::new(t)),
        };
        Ok(Config {
            database_url,
            data_dir,
            workers,
            http_addr,
            public_url,
            lease,
            subscription_sweep,
            backup_dir: var("AUTOSUB_BACKUP_DIR").map(PathBuf::from),
            backup_keep,
            api_rate_per_minute,
            shared,
            admin_token,
        })
    }

    /// Opens the database (creating the SQLite file and running migrations as needed).
    pub async fn open_store(&self) -> autosub_store::Result<Store> {
        match &self.database_url {
            Some(url) => Store::connect(url).await,
            None => Store::open_default(&self.data_dir).await,
        }
    }

    /// Every setting with its value, secrets masked, for `autosub doctor`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "AUTOSUB_DATABASE_URL",
                match &self.database_url {
                    Some(u) => mask_url(u),
                    None => format!(
                        "sqlite:{} (default)",
                        self.data_dir.join("autosub.db").display()
                    ),
                },
            ),
            ("AUTOSUB_DATA_DIR", self.data_dir.display().to_string()),
            ("AUTOSUB_WORKERS", self.workers.to_string()),
            ("AUTOSUB_HTTP_ADDR", self.http_addr.to_string()),
            (
                "AUTOSUB_PUBLIC_URL",
                self.public_url
                    .clone()
                    .unwrap_or_else(|| "(not set)".into()),
            ),
            ("AUTOSUB_LEASE_SECS", self.lease.as_secs().to_string()),
            (
                "AUTOSUB_SUBSCRIPTION_SWEEP_SECS",
                self.subscription_sweep.as_secs().to_string(),
            ),
            (
                "AUTOSUB_BACKUP_DIR",
                self.backup_dir.as_ref().map_or_else(
                    || "(not set: no scheduled backups)".into(),
                    |d| d.display().to_string(),
                ),
            ),
            ("AUTOSUB_BACKUP_KEEP", self.backup_keep.to_string()),
            (
                "AUTOSUB_API_RATE_LIMIT",
                self.api_rate_per_minute.to_string(),
            ),
            (
                "AUTOSUB_STORAGE_URL",
                self.shared.as_ref().map_or_else(
                    || "(not set: task files in the data dir)".into(),
                    |s| s.describe(),
                ),
            ),
            (
                "AUTOSUB_ADMIN_TOKEN",
                match &self.admin_token {
                    Some(_) => "(set, hidden: /admin is on)".into(),
                    None => "(not set: /admin is off)".into(),
                },
            ),
        ]
    }
}
