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

    /// A language code that does not look like an ISO 639 code.
    #[error("invalid language code {0:?}: use an ISO 639 code such as en, ru or de")]
    InvalidLanguageCode(String),

    /// The Argos Translate package index could not be fetched or read.
    #[error(
        "cannot use the Argos package index {index}: {msg} \
         (set AUTOSUB_ARGOS_INDEX to another index URL to use a different index)"
    )]
    ArgosIndex {
        /// The index URL (or a description of where the JSON came from).
        index: String,
        /// What went wrong.
        msg: String,
    },

    /// The index has no translation package for the requested pair.
    #[error(
        "no Argos Translate package for {from}->{to} in the index {index}; \
         available from {from}: {from_pairs}; available to {to}: {to_pairs}"
    )]
    ArgosPairNotFound {
        /// Requested source language.
        from: String,
        /// Requested target language.
        to: String,
        /// The index URL.
        index: String,
        /// Comma-separated pairs the index has from `from` (or `none`).
        from_pairs: String,
        /// Comma-separated pairs the index has into `to` (or `none`).
        to_pairs: String,
    },

    /// The index entry has no link this crate can download.
    #[error(
        "the Argos index entry {code} {version} has no http(s) download link (links: {links}); \
         get the .argosmodel file another way and import it"
    )]
    ArgosNoLink {
        /// The entry's `code` (`translate-en_ru`).
        code: String,
        /// The entry's `package_version`.
        version: String,
        /// The links it does have, comma-separated (or `none`).
        links: String,
    },

    /// The file is not a readable zip archive, or an entry is corrupt (bad CRC, truncated data).
    #[error("{} is not a valid .argosmodel (zip) file: {msg}; download it again", path.display())]
    NotArgosZip {
        /// The archive.
        path: PathBuf,
        /// What the zip reader reported.
        msg: String,
    },

    /// The zip is readable but is not an acceptable Argos Translate package (unsafe entry
    /// names, missing files, bad `metadata.json`, too large, ...).
    #[error("{} is not a usable Argos Translate package: {msg}", path.display())]
    InvalidArgosPackage {
        /// The archive (or installed folder).
        path: PathBuf,
        /// Why it was rejected.
        msg: String,
    },

    /// The package translates a different pair than the one that was requested.
    #[error(
        "{source_name} holds the package {found}, but {expected} was requested; nothing was \
         installed (the package index points to the wrong file)"
    )]
    ArgosPairMismatch {
        /// Where the package came from (URL or file).
        source_name: String,
        /// The requested pair (`en->ru`).
        expected: String,
        /// The pair in the package's `metadata.json`.
        found: String,
    },
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
