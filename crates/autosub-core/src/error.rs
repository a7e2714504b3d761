//! The one error type of the core library, grouped by what the user can do about it.

use std::path::PathBuf;

/// What kind of failure an [`Error`] is; decides the CLI's exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input (file, URL, option) is wrong: the user must change it.
    BadInput,
    /// A program (ffmpeg) or a model is missing: the user must install it.
    MissingDependency,
    /// The run was cancelled (Ctrl-C or a cancelled job).
    Cancelled,
    /// Anything else: a bug or an environment failure (disk full, crash of a child).
    Internal,
}

/// Errors of the pipeline stages. Messages are written for the person at the terminal: they say what was
/// wrong and, where there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadInput(String),
    #[error("input file not found: {}", .0.display())]
    NotFound(PathBuf),
    /// `package` is a Debian package name, or `pip:REQUIREMENT` for programs taken from PyPI.
    #[error(
        "{program} was not found in PATH; install it ({})",
        install_hint(package)
    )]
    ProgramMissing { program: String, package: String },
    #[error("{message}")]
    ModelMissing { message: String },
    #[error("cancelled")]
    Cancelled,
    #[error("{program} timed out after {seconds} s")]
    Timeout { program: String, seconds: u64 },
    #[error("{program} produced no output for {seconds} s and was stopped")]
    Stalled { program: String, seconds: u64 },
    #[error("{program} failed: {message}")]
    ProgramFailed { program: String, message: String },
    /// A network failure that may go away (a site's 5xx, a timeout, a broken connection): worth a retry.
    #[error("{program} failed: {message}")]
    Network { program: String, message: String },
    /// The media is longer than a limit allows (found by the probe).
    #[error("the media is {} s long, more than the limit of {} s", .duration_ms.div_ceil(1000), .max_ms / 1000)]
    TooLong { duration_ms: u64, max_ms: u64 },
    /// A later step failed after earlier results were written: `done` says what is safe.
    #[error("{done}")]
    Partial {
        done: String,
        #[source]
        source: Box<Error>,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("speech recognition failed: {0}")]
    Asr(String),
    #[error("translation failed: {0}")]
    Translate(String),
    #[error(transparent)]
    Model(#[from] autosub_models::ModelError),
    #[error(transparent)]
    Subs(#[from] autosub_subs::ParseError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("text to speech failed: {0}")]
    Tts(String),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::BadInput(_) | Error::NotFound(_) | Error::Subs(_) => ErrorKind::BadInput,
            Error::ProgramMissing { .. } | Error::ModelMissing { .. } => {
                ErrorKind::MissingDependency
            }
            Error::Cancelled => ErrorKind::Cancelled,
            Error::Model(e) => crate::models::error_kind(e),
            Error::Write { .. } | Error::TooLong { .. } => ErrorKind::BadInput,
            Error::Partial { source, .. } => source.kind(),
            Error::Timeout { .. }
            | Error::Network { .. }
            | Error::Stalled { .. }
            | Error::ProgramFailed { .. }
            | Error::Asr(_)
            | Error::Translate(_)
            | Error::Io(_)
            | Error::Tts(_) => ErrorKind::Internal,
        }
    }
}

impl Error {
    /// Whether running the same job again may succeed: a network failure may go away, a bad file will not.
    pub fn retryable(&self) -> bool {
        match self {
            Error::Network { .. } => true,
            Error::Partial { source, .. } => source.retryable(),
            Error::Model(autosub_models::ModelError::Network { .. }) => true,
            _ => false,
        }
    }

    /// The message for the end user of a service (a Telegram user): what went wrong with their request, in plain
    /// words, with no command-line flags, paths on the server or install commands in it. Failures they cannot
    /// act on say so; [`Error::operator_hint`] carries the detail for the operator.
    pub fn user_message(&self) -> String {
        match self {
            Error::BadInput(m) => m.clone(),
            Error::TooLong { .. } => self.to_string(),
            Error::NotFound(_) => "the file could not be found".into(),
            Error::Subs(e) => format!("the subtitle file could not be read: {e}"),
            Error::Cancelled => "cancelled".into(),
            Error::Network { program, .. } if program == "yt-dlp" => {
                "the download failed because of a network problem; try again later".into()
            }
            Error::Network { .. } => {
                "a service the processing needs is unavailable; try again later".into()
            }
            Error::Partial { source, .. } => source.user_message(),
            Error::Timeout { .. } | Error::Stalled { .. } => {
                "processing took too long and was stopped".into()
            }
            Error::Translate(_) => "the translation failed; try again later".into(),
            Error::Tts(_) => "the voice-over failed".into(),
            Error::Model(e) if crate::models::error_kind(e) == ErrorKind::BadInput => e.to_string(),
            _ => "an internal error stopped the processing; the operator has been told".into(),
        }
    }

    /// What the operator should know or do: the full message with its causes, for failures that are not the
    /// user's (a missing program or model, a crash of a child, a disk problem).
    pub fn operator_hint(&self) -> Option<String> {
        match self.kind() {
            ErrorKind::BadInput | ErrorKind::Cancelled => None,
            _ => {
                let mut msg = self.to_string();
                let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(self);
                while let Some(c) = cause {
                    let c_msg = c.to_string();
                    if !msg.contains(&c_msg) {
                        msg = format!("{msg}: {c_msg}");
                    }
                    cause = c.source();
                }
                Some(msg)
            }
        }
    }
}

/// How to install a package named as in [`Error::ProgramMissing`].
fn install_hint(package: &str) -> String {
    match package.strip_prefix("pip:") {
        Some(req) => format!("`pip install {req}`, or run scripts/setup.sh"),
        None => format!("Debian/Ubuntu: `apt-get install {package}`"),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
