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
            Error::Write { .. } => ErrorKind::BadInput,
            Error::Timeout { .. }
            | Error::Stalled { .. }
            | Error::ProgramFailed { .. }
            | Error::Asr(_)
            | Error::Translate(_)
            | Error::Io(_)
            | Error::Tts(_) => ErrorKind::Internal,
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
