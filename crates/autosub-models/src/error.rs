//! Error type shared by every part of the crate.

use std::path::PathBuf;

/// Everything that can go wrong while converting, downloading or inspecting models.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// An I/O operation on `path` failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done ("reading", "creating", "renaming", ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A file required in a CTranslate2 model directory is missing.
    #[error("not a CTranslate2 Whisper model directory: {} is missing {file}", dir.display())]
    MissingFile {
        /// The directory that was inspected.
        dir: PathBuf,
        /// The missing file (or a description such as `vocabulary.txt or tokenizer.json`).
        file: String,
    },

    /// The CTranslate2 model is malformed or not a Whisper model this crate understands.
    #[error("invalid CTranslate2 model {}: {msg}", path.display())]
    InvalidCt2 {
        /// The `model.bin` (or other file) at fault.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },

    /// The file is not a whisper.cpp ggml model.
    #[error("{} is not a whisper.cpp ggml model: {msg}", path.display())]
    NotGgml {
        /// The file that was inspected.
        path: PathBuf,
        /// Why it was rejected.
        msg: String,
    },

    /// An invalid model name was given (empty, or with characters that are not allowed in a file name).
    #[error("invalid model name {0:?}: use letters, digits, '.', '-' and '_' only")]
    InvalidName(String),

    /// The name is not in the download catalog.
    #[error("unknown model {name:?}; known models: {known}")]
    UnknownModel {
        /// The requested name.
        name: String,
        /// Comma-separated list of the catalog's names.
        known: String,
    },

    /// The caller asked to download a file without a known SHA-256 and did not allow that.
    #[error(
        "refusing to install {url}: no SHA-256 is known for it (pass allow_unverified to override)"
    )]
    Unverified {
        /// The URL that would have been downloaded.
        url: String,
    },

    /// The operation was cancelled through the progress callback.
    #[error("cancelled")]
    Cancelled,

    /// The server answered with an HTTP error status.
    #[error("HTTP {status} for {url}")]
    HttpStatus {
        /// The HTTP status code.
        status: u16,
        /// The requested URL.
        url: String,
    },

    /// A network error that persisted after all retries.
    #[error("download of {url} failed after {attempts} attempt(s): {msg}")]
    Network {
        /// The requested URL.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        msg: String,
    },

    /// The server's answer is inconsistent (bad Content-Range, body longer than announced, ...).
    #[error("unexpected response from {url}: {msg}")]
    Protocol {
        /// The requested URL.
        url: String,
        /// What was wrong.
        msg: String,
    },

    /// The downloaded file does not have the expected size.
    #[error("size mismatch for {}: expected {expected} bytes, got {actual}", path.display())]
    SizeMismatch {
        /// The file (the final name; the partial file has been removed).
        path: PathBuf,
        /// Expected size in bytes.
        expected: u64,
        /// Actual size in bytes.
        actual: u64,
    },

    /// The downloaded file does not have the expected SHA-256.
    #[error("checksum mismatch for {}: expected sha256 {expected}, got {actual}", path.display())]
    ChecksumMismatch {
        /// The file (the final name; the partial file has been removed).
        path: PathBuf,
        /// Expected SHA-256 (lower-case hex).
        expected: String,
        /// Actual SHA-256 (lower-case hex).
        actual: String,
    },

    /// Bad arguments (for example an expected SHA-256 that is not 64 hex digits).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl ModelError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn ct2(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        ModelError::InvalidCt2 {
            path: path.into(),
            msg: msg.into(),
        }
    }

    pub(crate) fn not_ggml(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        ModelError::NotGgml {
            path: path.into(),
            msg: msg.into(),
        }
    }
}
