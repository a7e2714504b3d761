//! The store's error type.
//!
//! No variant ever carries a database URL with its password: connection errors are built from a
//! masked URL (see [`mask_url`]) and a message scrubbed of the password.

use thiserror::Error;

/// Everything the store and the queue can fail with.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The URL names no database this crate can use.
    #[error(
        "unsupported database URL {0} (expected sqlite://PATH, sqlite:PATH or postgres://...)"
    )]
    InvalidUrl(String),

    /// Opening the database failed. `url` is masked and `message` scrubbed of the password.
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },

    /// A query failed. sqlx errors raised after connecting never contain the URL.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// Applying the embedded migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// Creating the data directory or taking the migration lock file failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// The row the call is about does not exist.
    #[error("{0} not found")]
    NotFound(String),

    /// The row exists but its state does not allow the call (e.g. retrying a completed task).
    #[error("invalid state: {0}")]
    InvalidState(String),

    /// The user has had their tasks of the day (UTC).
    #[error("the daily limit of {limit} tasks is reached")]
    QuotaExceeded { limit: i64 },

    /// An argument was rejected before touching the database.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A row holds a value this code does not understand (e.g. an unknown tier name), usually
    /// because a newer version of the service wrote it.
    #[error("unexpected value in the database: {0}")]
    Corrupt(String),
}

/// Short alias used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// `url` with any password replaced by `***`, safe to print or log.
///
/// Works on the raw text so that it also masks URLs that do not parse.
pub fn mask_url(url: &str) -> String {
    match password_span(url) {
        Some((start, end)) => format!("{}***{}", &url[..start], &url[end..]),
        None => url.to_owned(),
    }
}

/// `text` with every occurrence of `url`'s password replaced by `***`.
pub(crate) fn scrub_password(text: &str, url: &str) -> String {
    match password_span(url) {
        Some((start, end)) if end > start => text.replace(&url[start..end], "***"),
        _ => text.to_owned(),
    }
}

/// Byte range of the password in `scheme://user:password@host/...`, if there is one.
fn password_span(url: &str) -> Option<(usize, usize)> {
    let authority_start = url.find("://")? + 3;
    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    // The userinfo ends at the last '@' of the authority (a password may contain '@').
    let at = authority.rfind('@')?;
    let colon = authority[..at].find(':')?;
    Some((authority_start + colon + 1, authority_start + at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_url("postgres://bob:s3cret@db:5432/app"),
            "postgres://bob:***@db:5432/app"
        );
        assert_eq!(
            mask_url("postgres://bob:p@ss@db/app?sslmode=disable"),
            "postgres://bob:***@db/app?sslmode=disable"
        );
        assert_eq!(mask_url("postgres://bob@db/app"), "postgres://bob@db/app");
        assert_eq!(mask_url("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
        assert_eq!(
            scrub_password(
                "password authentication failed: s3cret",
                "postgres://bob:s3cret@db/app"
            ),
            "password authentication failed: ***"
        );
    }
}
