//! Backups of the database: `autosub db backup FILE`, `autosub db restore FILE`, and the daily backup a worker
//! makes when `AUTOSUB_BACKUP_DIR` is set.
//!
//! - SQLite: `VACUUM INTO` (a consistent copy taken while the service runs); restoring checks the copy (it opens
//!   and migrates as a database) and renames it over the database file. Stop the service first.
//! - PostgreSQL: `pg_dump --format=custom`; restoring is `pg_restore --clean --if-exists --single-transaction`
//!   into the configured database. The password is passed in `PGPASSWORD`, never on a command line.
//!
//! A backup is written under a hidden partial name and renamed when complete: a file with the final name is whole.

use std::path::{Path, PathBuf};
use std::time::Duration;

use autosub_core::proc::Cmd;
use autosub_core::progress::NullSink;
use autosub_store::{Backend, Store};

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] autosub_store::StoreError),
    #[error("{0}")]
    Io(String),
    #[error("{program} failed: {message}")]
    Program {
        program: &'static str,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

fn io(context: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> BackupError {
    move |e| BackupError::Io(format!("{context}: {e}"))
}

/// `postgres://user:password@host/db` -> (`postgres://user@host/db`, `Some(password)`), so that the password goes
/// to `PGPASSWORD` and not into a command line.
pub fn split_password(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(x) => x,
        None => return (url.to_owned(), None),
    };
    match auth.split_once(':') {
        Some((user, password)) => (
            format!("{scheme}://{user}@{host}"),
            Some(password.to_owned()),
        ),
        None => (url.to_owned(), None),
    }
}

/// A hidden partial name beside `file`.
fn partial(file: &Path) -> PathBuf {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    file.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// Runs `cmd` on a blocking thread; an error names `program` and its last stderr line.
async fn run(program: &'static str, cmd: Cmd) -> Result<(), BackupError> {
    let out = tokio::task::spawn_blocking(move || cmd.run(&NullSink, &mut |_| {}))
        .await
        .map_err(|e| BackupError::Io(e.to_string()))?
        .map_err(|e| BackupError::Program {
            program,
            message: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BackupError::Program {
            program,
            message: out.last_error_line(),
        })
    }
}

fn pg_cmd(program: &'static str, url: &str) -> Cmd {
    let (url, password) = split_password(url);
    let mut cmd = Cmd::new(program, "postgresql-client")
        .arg(format!("--dbname={url}"))
        .timeout(Duration::from_secs(6 * 3600))
        .idle_timeout(Duration::from_secs(3600));
    if let Some(p) = password {
        cmd = cmd.env("PGPASSWORD", p);
    }
    cmd
}

/// Writes a backup of `store` (opened from `database_url`, needed for pg_dump) to `file` (which must not exist);
/// returns its size in bytes.
pub async fn backup(
    store: &Store,
    database_url: Option<&str>,
    file: &Path,
) -> Result<u64, BackupError> {
    if file.exists() {
        return Err(BackupError::Invalid(format!(
            "{} exists: choose a new file name",
            file.display()
        )));
    }
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    }
    let tmp = partial(file);
    let _ = std::fs::remove_file(&tmp);
    let made = match store.backend() {
        Backend::Sqlite => store.sqlite_backup(&tmp).await.map_err(BackupError::from),
        Backend::Postgres => {
            let url = database_url.unwrap_or_default();
            run(
                "pg_dump",
                pg_cmd("pg_dump", url)
                    .arg("--format=custom")
                    .arg("--no-owner")
                    .arg(format!("--file={}", tmp.display())),
            )
            .await
        }
    };
    if let Err(e) = made {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, file).map_err(io(format!("cannot rename into {}", file.display())))?;
    Ok(std::fs::metadata(file).map(|m| m.len()).unwrap_or(0))
}

/// Replaces the contents of the database `database_url` (`None`: SQLite in `data_dir`) with the backup `file`.
/// Stop every process using the database first.
pub async fn restore(
    database_url: Option<&str>,
    data_dir: &Path,
    file: &Path,
) -> Result<(), BackupError> {
    if !file.is_file() {
        return Err(BackupError::Invalid(format!(
            "{} is not a backup file",
            file.display()
        )));
    }
    match database_url {
        Some(url) if url.starts_with("postgres") => {
            run(
                "pg_restore",
                pg_cmd("pg_restore", url)
                    .arg("--clean")
                    .arg("--if-exists")
                    .arg("--no-owner")
                    .arg("--single-transaction")
                    .arg(file),
            )
            .await
        }
        url => {
            let db = match url {
                Some(u) => autosub_store::sqlite_file(u).ok_or_else(|| {
                    BackupError::Invalid("AUTOSUB_DATABASE_URL names no database file".into())
                })?,
                None => data_dir.join("autosub.db"),
            };
            let tmp = partial(&db);
            if let Some(dir) = db.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(io(format!("cannot create {}", dir.display())))?;
            }
            std::fs::copy(file, &tmp).map_err(io(format!("cannot copy {}", file.display())))?;
            // The copy must open as a database of ours (and is brought up to this version's schema).
            let check = async {
                let s = Store::connect(&format!("sqlite://{}", tmp.display())).await?;
                let ok = s.migrations_applied().await?;
                s.close().await;
                Ok::<bool, autosub_store::StoreError>(ok)
            }
            .await;
            match check {
                Ok(true) => {}
                Ok(false) | Err(_) => {
                    let _ = std::fs::remove_file(&tmp);
                    let _ = std::fs::remove_file(format!("{}.migrate.lock", tmp.display()));
                    return Err(BackupError::Invalid(format!(
                        "{} is not an AutoSub SQLite backup",
                        file.display()
                    )));
                }
            }
            let _ = std::fs::remove_file(format!("{}.migrate.lock", tmp.display()));
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
                let _ = std::fs::remove_file(format!("{}{suffix}", tmp.display()));
            }
            std::fs::rename(&tmp, &db).map_err(io(format!("cannot replace {}", db.display())))
        }
    }
}

/// The daily backup: `autosub-YYYYMMDD-HHMMSS.{db|dump}` in `dir`, then only the newest `keep` of them kept.
pub async fn scheduled(
    store: &Store,
    database_url: Option<&str>,
    dir: &Path,
    keep: usize,
    now: i64,
) -> Result<PathBuf, BackupError> {
    let (y, m, d) = autosub_store::utc_date(now);
    let secs = now.rem_euclid(86_400_000) / 1000;
    let ext = match store.backend() {
        Backend::Sqlite => "db",
        Backend::Postgres => "dump",
    };
    let name = format!(
        "autosub-{y:04}{m:02}{d:02}-{:02}{:02}{:02}.{ext}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    let file = dir.join(name);
    backup(store, database_url, &file).await?;
    let mut backups: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(format!("cannot read {}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("autosub-") && (n.ends_with(".db") || n.ends_with(".dump"))
            })
        })
        .collect();
    backups.sort();
    let excess = backups.len().saturating_sub(keep.max(1));
    for old in &backups[..excess] {
        let _ = std::fs::remove_file(old);
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_leave_the_url() {
        assert_eq!(
            split_password("postgres://autosub:s3cret@db.internal:5432/autosub?sslmode=disable"),
            (
                "postgres://autosub@db.internal:5432/autosub?sslmode=disable".to_owned(),
                Some("s3cret".to_owned())
            )
        );
        assert_eq!(
            split_password("postgres://postgres@127.0.0.1/x"),
            ("postgres://postgres@127.0.0.1/x".to_owned(), None)
        );
        assert_eq!(
            split_password("postgres://h/x"),
            ("postgres://h/x".to_owned(), None)
        );
    }
}
