//! Finding, installing and importing Whisper models, with progress through the [`Sink`].
//! The file formats and downloads themselves live in [`autosub_models`].

use crate::progress::{Event, Sink, Stage};
use crate::{Error, ErrorKind, Result};
use autosub_models::ModelError;
use std::path::{Path, PathBuf};

/// The models folder: the given override, else `$AUTOSUB_MODELS_DIR`, else the XDG data dir.
pub fn models_dir(over: Option<&Path>) -> PathBuf {
    over.map_or_else(autosub_models::default_models_dir, Path::to_owned)
}

/// How the CLI should treat a model-crate error.
pub fn error_kind(e: &ModelError) -> ErrorKind {
    match e {
        ModelError::MissingFile { .. }
        | ModelError::InvalidCt2 { .. }
        | ModelError::NotGgml { .. }
        | ModelError::InvalidName(_)
        | ModelError::UnknownModel { .. }
        | ModelError::Unverified { .. }
        | ModelError::InvalidArgument(_)
        | ModelError::InvalidLanguageCode(_)
        | ModelError::ArgosIndex { .. }
        | ModelError::ArgosPairNotFound { .. }
        | ModelError::ArgosNoLink { .. }
        | ModelError::NotArgosZip { .. }
        | ModelError::InvalidArgosPackage { .. }
        | ModelError::ArgosPairMismatch { .. } => ErrorKind::BadInput,
        ModelError::Cancelled => ErrorKind::Cancelled,
        _ => ErrorKind::Internal,
    }
}

/// Resolves `--model`: an existing file path, or a name in `dir` (`base` finds `ggml-base.bin`, then the 8-bit
/// `ggml-base-q8_0.bin`). Returns the path and the name to report. A missing model is an error that prints the
/// commands that install it.
pub fn resolve(dir: &Path, name_or_path: &str) -> Result<(PathBuf, String)> {
    let as_path = Path::new(name_or_path);
    if name_or_path.contains('/') || name_or_path.ends_with(".bin") {
        if as_path.is_file() {
            let name = as_path
                .file_stem()
                .map(|s| s.to_string_lossy().trim_start_matches("ggml-").to_owned())
                .unwrap_or_default();
            return Ok((as_path.to_owned(), name));
        }
        return Err(Error::ModelMissing {
            message: format!("model file {} does not exist", as_path.display()),
        });
    }
    for candidate in [name_or_path.to_owned(), format!("{name_or_path}-q8_0")] {
        let p = autosub_models::model_path(dir, &candidate);
        if p.is_file() {
            return Ok((p, candidate));
        }
    }
    let base = name_or_path.trim_end_matches("-q8_0");
    let installable = autosub_models::find(base).is_some();
    let mut message = format!(
        "the Whisper model `{name_or_path}` is not installed in {}.\n",
        dir.display()
    );
    if installable {
        message.push_str(&format!(
            "  Install it with:  autosub models install {base}\n"
        ));
    }
    message.push_str(
        "  Or convert a faster-whisper model folder you have:  autosub models import DIR\n  \
         (`autosub models list` shows what is installed; --models-dir or AUTOSUB_MODELS_DIR picks the folder.)",
    );
    Err(Error::ModelMissing { message })
}

/// Progress adapter: model-crate callbacks report (done, total) and return false to cancel.
fn progress_fn<'a>(
    sink: &'a dyn Sink,
    stage: Stage,
    started: &'a mut bool,
) -> impl FnMut(u64, u64) -> bool + 'a {
    move |done, total| {
        if !*started {
            *started = true;
            sink.event(Event::Start {
                stage,
                total: (total > 0).then_some(total),
            });
        }
        sink.event(Event::Progress { stage, done });
        !sink.is_cancelled()
    }
}

/// Downloads the official ggml model `name` into `dir` (verified, resumable). `base_url` replaces the official
/// host (mirrors, tests).
pub fn install(dir: &Path, name: &str, base_url: Option<&str>, sink: &dyn Sink) -> Result<PathBuf> {
    let entry = autosub_models::lookup(name)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::Write {
        path: dir.to_owned(),
        source: e,
    })?;
    let mut opts = autosub_models::DownloadOptions::default();
    if let Some(u) = base_url {
        opts.base_url = Some(u.to_owned());
    }
    let t0 = std::time::Instant::now();
    let mut started = false;
    let report = autosub_models::download_model(
        entry,
        dir,
        &opts,
        &mut progress_fn(sink, Stage::Download, &mut started),
    )?;
    sink.event(Event::Finish {
        stage: Stage::Download,
        elapsed: t0.elapsed(),
    });
    Ok(report.path)
}

/// Converts a faster-whisper (CTranslate2) model folder and installs it in `dir`.
pub fn import(
    dir: &Path,
    src: &Path,
    name: Option<&str>,
    quant: &str,
    sink: &dyn Sink,
) -> Result<PathBuf> {
    let quant: autosub_models::Quant = quant
        .parse()
        .map_err(|_| Error::BadInput(format!("unknown weight type `{quant}`; use f16 or q8_0")))?;
    let t0 = std::time::Instant::now();
    let mut started = false;
    let report = autosub_models::import_ct2_dir_with_progress(
        src,
        dir,
        name,
        quant,
        &mut progress_fn(sink, Stage::Convert, &mut started),
    )?;
    sink.event(Event::Finish {
        stage: Stage::Convert,
        elapsed: t0.elapsed(),
    });
    Ok(report.output)
}

/// `translate:en-ru` -> `("en", "ru")`, validated; `None` when `name` is not a translation package name.
pub fn translation_pair(name: &str) -> Option<Result<(String, String)>> {
    let pair = name.strip_prefix("translate:")?;
    let parsed = pair.split_once('-').and_then(|(a, b)| {
        (crate::translate::validate_language(a).is_ok()
            && crate::translate::validate_language(b).is_ok())
        .then(|| (a.to_owned(), b.to_owned()))
    });
    Some(parsed.ok_or_else(|| {
        Error::BadInput(format!(
            "`{name}` is not a translation package name: use translate:FROM-TO with ISO 639-1 codes, e.g. \
             translate:en-ru"
        ))
    }))
}

/// The Argos package index to install translation packages from: `index`, else `$AUTOSUB_ARGOS_INDEX`, else the
/// public Argos index.
pub fn argos_index_url(index: Option<&str>) -> String {
    index
        .map(str::to_owned)
        .or_else(|| {
            std::env::var(autosub_models::argos::ARGOS_INDEX_ENV)
                .ok()
                .filter(|s| !s.trim().is_empty())
        })
        .unwrap_or_else(|| autosub_models::argos::DEFAULT_INDEX_URL.to_owned())
}

/// Downloads and installs the Argos package for `from -> to` from the index (size and sha256 checked when the
/// index gives them; the archive's structure and CRCs always).
pub fn install_translation(
    dir: &Path,
    from: &str,
    to: &str,
    index: Option<&str>,
    sink: &dyn Sink,
) -> Result<autosub_models::argos::InstalledPackage> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Write {
        path: dir.to_owned(),
        source: e,
    })?;
    let url = argos_index_url(index);
    let opts = autosub_models::DownloadOptions::default();
    let t0 = std::time::Instant::now();
    let mut started = false;
    let pkg = autosub_models::argos::install_pair(
        dir,
        from,
        to,
        &url,
        &opts,
        &mut progress_fn(sink, Stage::Download, &mut started),
    )?;
    sink.event(Event::Finish {
        stage: Stage::Download,
        elapsed: t0.elapsed(),
    });
    Ok(pkg)
}

/// Installs a local `.argosmodel` file.
pub fn import_translation(
    dir: &Path,
    file: &Path,
) -> Result<autosub_models::argos::InstalledPackage> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Write {
        path: dir.to_owned(),
        source: e,
    })?;
    Ok(autosub_models::argos::import_package(dir, file)?)
}
