//! The main job as composable steps: media file -> words -> cues -> subtitle files.

use crate::asr::{AsrOptions, Recognition, Recognizer};
use crate::media::{self, MediaInfo, Tools};
use crate::progress::{run_stage, Sink, Stage};
use crate::{Error, Result};
use autosub_subs::{AssStyle, Cue, Document, Format, Profile, VideoSize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Options of [`transcribe_file`].
#[derive(Clone, Debug, Default)]
pub struct TranscribeOptions {
    pub asr: AsrOptions,
    pub tools: Tools,
}

/// A transcribed media file.
#[derive(Clone, Debug)]
pub struct Transcription {
    pub media: MediaInfo,
    pub recognition: Recognition,
    pub duration_ms: u64,
    /// Milliseconds spent per stage (keys are [`Stage::id`]).
    pub timings_ms: BTreeMap<String, u64>,
    pub warnings: Vec<String>,
}

/// Probe, decode and recognise a media file.
pub fn transcribe_file(
    recognizer: &Recognizer,
    input: &Path,
    opts: &TranscribeOptions,
    sink: &dyn Sink,
) -> Result<Transcription> {
    let mut timings_ms = BTreeMap::new();
    let (media, t) = run_stage(sink, Stage::Probe, None, || {
        media::probe(&opts.tools, input, sink)
    })?;
    timings_ms.insert(Stage::Probe.id().to_owned(), t.as_millis() as u64);
    let (audio, t) = run_stage(sink, Stage::ExtractAudio, media.duration_ms, || {
        media::extract_audio(&opts.tools, &media, sink)
    })?;
    timings_ms.insert(Stage::ExtractAudio.id().to_owned(), t.as_millis() as u64);
    let mut warnings = Vec::new();
    if !audio.decode_errors.is_empty() {
        warnings.push(format!(
            "ffmpeg reported {} decoding error(s) (damaged or truncated input?); first: {}",
            audio.decode_errors.len(),
            audio.decode_errors[0]
        ));
    }
    let t0 = std::time::Instant::now();
    let recognition = recognizer.transcribe(&audio.samples, &opts.asr, sink)?;
    timings_ms.insert(
        Stage::Transcribe.id().to_owned(),
        t0.elapsed().as_millis() as u64,
    );
    warnings.extend(recognition.warnings.iter().cloned());
    Ok(Transcription {
        media,
        duration_ms: audio.duration_ms(),
        recognition,
        timings_ms,
        warnings,
    })
}

/// Builds the JSON document (words, cues, metadata) of a transcription cut with `profile`; the time spent cutting
/// is recorded as the `segment` timing.
pub fn document(tr: &Transcription, model: &str, profile: &Profile) -> Document {
    // A last cue may linger a little past the end of the media (it keeps its minimum duration); players and
    // ffmpeg simply stop showing it when the media ends.
    let t0 = std::time::Instant::now();
    let cues = autosub_subs::segment(&tr.recognition.words, profile);
    let mut timings_ms = tr.timings_ms.clone();
    timings_ms.insert(
        Stage::Segment.id().to_owned(),
        t0.elapsed().as_millis() as u64,
    );
    Document {
        version: 1,
        source: Some(tr.media.path.display().to_string()),
        language: tr.recognition.language.clone(),
        language_probability: tr.recognition.language_probability,
        model: Some(model.to_owned()),
        duration_ms: tr.duration_ms,
        profile: profile.name.clone(),
        words: tr.recognition.words.clone(),
        cues,
        timings_ms,
        warnings: tr.warnings.clone(),
    }
}

/// Renders `doc` in `format`.
pub fn render(doc: &Document, format: Format, style: &AssStyle, video: VideoSize) -> String {
    match format {
        Format::Srt => autosub_subs::write_srt(&doc.cues),
        Format::Vtt => autosub_subs::write_vtt(&doc.cues),
        Format::Ass => autosub_subs::write_ass(&doc.cues, style, video),
        Format::Json => autosub_subs::write_json(doc),
    }
}

/// The video size subtitles are laid out for: the displayed (rotation-corrected) size, or 1920x1080 for audio.
pub fn video_size(media: &MediaInfo) -> VideoSize {
    match &media.video {
        Some(v) if v.width > 0 && v.height > 0 => {
            if v.rotation % 180 == 90 {
                VideoSize {
                    width: v.height,
                    height: v.width,
                }
            } else {
                VideoSize {
                    width: v.width,
                    height: v.height,
                }
            }
        }
        _ => VideoSize::default(),
    }
}

/// Fails early, before any expensive work, when `dir` cannot receive output files.
pub fn check_output_dir(dir: &Path) -> Result<()> {
    let meta = std::fs::metadata(dir).map_err(|e| Error::Write {
        path: dir.to_owned(),
        source: e,
    })?;
    if !meta.is_dir() {
        return Err(Error::BadInput(format!(
            "output folder {} is not a directory",
            dir.display()
        )));
    }
    let probe = dir.join(format!(".autosub-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| Error::Write {
        path: dir.to_owned(),
        source: e,
    })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Writes several files all-or-nothing: each goes to a hidden temporary name in the same folder first, and only
/// when every one is written are they renamed to their final names. On failure no temporary file is left and no
/// final name is touched.
pub fn write_files_atomically(files: &[(PathBuf, String)]) -> Result<()> {
    // A final name that is a directory would make a rename fail halfway, after earlier files were replaced.
    if let Some((path, _)) = files.iter().find(|(p, _)| p.is_dir()) {
        return Err(Error::BadInput(format!(
            "cannot write {}: a directory of that name is in the way",
            path.display()
        )));
    }
    let mut temps: Vec<(PathBuf, &Path)> = Vec::new();
    let cleanup = |temps: &[(PathBuf, &Path)]| {
        for (t, _) in temps {
            let _ = std::fs::remove_file(t);
        }
    };
    for (path, content) in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.partial-{}", std::process::id()));
        if let Err(e) = std::fs::write(&tmp, content) {
            let _ = std::fs::remove_file(&tmp);
            cleanup(&temps);
            return Err(Error::Write {
                path: path.clone(),
                source: e,
            });
        }
        temps.push((tmp, path));
    }
    for (i, (tmp, path)) in temps.iter().enumerate() {
        if let Err(e) = std::fs::rename(tmp, path) {
            cleanup(&temps[i..]);
            return Err(Error::Write {
                path: path.to_path_buf(),
                source: e,
            });
        }
    }
    Ok(())
}

/// Output paths: `<dir>/<stem>.<ext>` for each format.
pub fn output_paths(dir: &Path, stem: &str, formats: &[Format]) -> Vec<(Format, PathBuf)> {
    formats
        .iter()
        .map(|f| (*f, dir.join(format!("{stem}.{}", f.extension()))))
        .collect()
}

/// Checks every cue of `cues` for the profile's rules; used after segmentation as a self-check.
pub fn lint_cues(cues: &[Cue], profile: &Profile) -> Vec<autosub_subs::Violation> {
    autosub_subs::lint(cues, profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_nothing_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("a.srt");
        let bad = dir.path().join("no-such-dir").join("b.srt");
        let err =
            write_files_atomically(&[(ok.clone(), "x".into()), (bad, "y".into())]).unwrap_err();
        assert!(matches!(err, Error::Write { .. }));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn atomic_write_touches_nothing_when_a_target_is_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.srt");
        std::fs::write(&a, "old").unwrap();
        std::fs::create_dir(dir.path().join("a.vtt")).unwrap();
        let err = write_files_atomically(&[
            (a.clone(), "new".into()),
            (dir.path().join("a.vtt"), "y".into()),
        ]);
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(a).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn atomic_write_writes_all() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.srt");
        let b = dir.path().join("b.vtt");
        write_files_atomically(&[(a.clone(), "x".into()), (b.clone(), "y".into())]).unwrap();
        assert_eq!(std::fs::read_to_string(a).unwrap(), "x");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn output_dir_checks() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_output_dir(dir.path()).is_ok());
        assert!(check_output_dir(&dir.path().join("missing")).is_err());
        let f = dir.path().join("file");
        std::fs::write(&f, "").unwrap();
        assert!(check_output_dir(&f).is_err());
    }
}
