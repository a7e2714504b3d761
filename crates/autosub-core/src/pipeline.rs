//! The main job as composable steps: media file -> words -> cues -> subtitle files.

use crate::asr::{AsrOptions, Recognition, Recognizer};
use crate::media::{self, MediaInfo, Tools};
use crate::progress::{run_stage, Sink, Stage};
use crate::render;
use crate::{Error, Result};
use autosub_subs::{AssStyle, BurnLook, Cue, Document, Format, Profile, UserAssStyle, VideoSize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Options of [`transcribe_file`].
#[derive(Clone, Debug, Default)]
pub struct TranscribeOptions {
    pub asr: AsrOptions,
    pub tools: Tools,
    /// A truncated or damaged input ([`media::check_decoded`]) is a bad-input error, found before recognition,
    /// instead of a warning (the service runs strict).
    pub strict: bool,
    /// Refuse media longer than this ([`Error::TooLong`]), found by the probe before any decoding.
    pub max_duration_ms: Option<u64>,
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
    /// Set when the input looked truncated or damaged (its message is also among the warnings).
    pub damage: Option<media::Damage>,
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
    if let (Some(max_ms), Some(duration_ms)) = (opts.max_duration_ms, media.duration_ms) {
        if duration_ms > max_ms {
            return Err(Error::TooLong {
                duration_ms,
                max_ms,
            });
        }
    }
    let (audio, t) = run_stage(sink, Stage::ExtractAudio, media.duration_ms, || {
        media::extract_audio(&opts.tools, &media, sink)
    })?;
    timings_ms.insert(Stage::ExtractAudio.id().to_owned(), t.as_millis() as u64);
    let mut warnings = Vec::new();
    let damage = media::check_decoded(&media, &audio);
    if let Some(d) = &damage {
        if opts.strict {
            return Err(Error::BadInput(format!(
                "{}; refused: a damaged input is not processed in strict mode",
                d.message
            )));
        }
        warnings.push(format!(
            "{}; the subtitles cover only what was read",
            d.message
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
        damage,
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
        limits: Some(profile.clone()),
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

/// A watermark: text drawn by the subtitle renderer, or an image overlaid in a corner.
#[derive(Clone, Debug, PartialEq)]
pub enum Watermark {
    Text {
        text: String,
        corner: render::Corner,
        opacity: f64,
    },
    Image(render::ImageMark),
}

impl Watermark {
    /// Reads a `--watermark` value: a name ending in .png .jpg .jpeg .webp or .bmp is an image (which must
    /// exist), anything else is text.
    pub fn parse(value: &str, corner: render::Corner, opacity: f64) -> Result<Self> {
        if !(opacity.is_finite() && (0.0..=1.0).contains(&opacity)) {
            return Err(Error::BadInput(
                "watermark opacity must be between 0 and 1".into(),
            ));
        }
        let path = Path::new(value);
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let image_ext = matches!(ext.as_str(), "png" | "jpg" | "jpeg" | "webp" | "bmp");
        if image_ext {
            media::check_input_file(path).map_err(|e| match e {
                Error::NotFound(p) => Error::BadInput(format!(
                    "watermark image {} not found (give an existing image, or text without an image extension)",
                    p.display()
                )),
                e => e,
            })?;
            return Ok(Watermark::Image(render::ImageMark {
                path: path.to_owned(),
                corner,
                opacity,
                width_ratio: 0.15,
                margin_ratio: 0.03,
            }));
        }
        if value.trim().is_empty() {
            return Err(Error::BadInput("the watermark text is empty".into()));
        }
        if value.chars().count() > 200 {
            return Err(Error::BadInput(
                "the watermark text is longer than 200 characters".into(),
            ));
        }
        Ok(Watermark::Text {
            text: value.to_owned(),
            corner,
            opacity,
        })
    }
}

/// The look of burned-in subtitles for a `--style` value: a built-in style name (laid out for vertical or
/// horizontal video) or the path of an ASS file whose styles are used.
pub fn burn_look(style: &str, vertical: bool) -> Result<BurnLook> {
    if let Some(s) = AssStyle::for_video(style, vertical) {
        return Ok(BurnLook::Style(s));
    }
    let path = Path::new(style);
    if !path.exists() {
        return Err(Error::BadInput(format!(
            "unknown style `{style}`: give one of {} or the path of an .ass file with a [V4+ Styles] section",
            AssStyle::names().join(", ")
        )));
    }
    media::check_input_file(path)?;
    let bytes = std::fs::read(path)
        .map_err(|e| Error::BadInput(format!("cannot read style file {}: {e}", path.display())))?;
    let text = autosub_subs::decode_text(&bytes, None)
        .map_err(|e| Error::BadInput(format!("style file {}: {e}", path.display())))?
        .text;
    let user = UserAssStyle::parse(&text)
        .map_err(|e| Error::BadInput(format!("style file {}: {e}", path.display())))?;
    Ok(BurnLook::User(user))
}

/// Everything that decides how the finished video looks.
#[derive(Clone, Debug)]
pub struct VideoJob {
    pub look: BurnLook,
    pub watermark: Option<Watermark>,
    pub render: render::RenderOptions,
    /// Also save the ASS script that is burned in here (to inspect it or burn it with other tools).
    pub save_script: Option<PathBuf>,
    /// Bilingual burn-in: these cues (the original language) are drawn above the main ones.
    pub upper: Option<Vec<Cue>>,
}

/// Where the finished video of `input` goes: `<dir>/<stem>.autosub.mp4`.
pub fn video_output_path(dir: &Path, stem: &str) -> PathBuf {
    dir.join(format!("{stem}.autosub.mp4"))
}

/// Renders the finished video: `cues` burned in with the job's look, reframed, watermarked, and the voice-over
/// (when given) mixed into the sound, in one encode. `script` replaces the generated subtitle script when given
/// (an ASS file burned as it is).
pub fn render_subtitled(
    media: &MediaInfo,
    cues: &[Cue],
    script: Option<&str>,
    job: &VideoJob,
    output: &Path,
    voice: Option<&render::VoiceTrack<'_>>,
    sink: &dyn Sink,
) -> Result<render::Rendered> {
    let video = media.video.as_ref().ok_or_else(|| {
        Error::BadInput(format!(
            "{} has no video stream to render subtitles into",
            media.path.display()
        ))
    })?;
    let plan = render::plan(video, job.render.vertical, job.render.max_height)?;
    let text_mark = match &job.watermark {
        Some(Watermark::Text {
            text,
            corner,
            opacity,
        }) => Some(autosub_subs::TextMark {
            text: text.clone(),
            alignment: corner.alignment(),
            opacity: *opacity,
            size_ratio: if plan.output.is_vertical() {
                0.022
            } else {
                0.035
            },
            margin_ratio: 0.03,
            until_ms: media
                .duration_ms
                .unwrap_or(0)
                .max(cues.last().map_or(0, |c| c.end_ms))
                + 1000,
        }),
        _ => None,
    };
    let script = match (script, &text_mark) {
        (Some(s), None) => s.to_owned(),
        (Some(s), Some(mark)) => {
            // The user's own script, plus the watermark line inside its [Events] section.
            let user = UserAssStyle::parse(s)?;
            let marked = autosub_subs::write_burn_script(
                &[],
                &BurnLook::User(user),
                plan.output,
                Some(mark),
            );
            let lines: Vec<&str> = marked
                .lines()
                .filter(|l| l.starts_with("Dialogue:"))
                .collect();
            autosub_subs::insert_events(s, &lines)
        }
        (None, _) => autosub_subs::write_bilingual_script(
            cues,
            job.upper.as_deref(),
            &job.look,
            plan.output,
            text_mark.as_ref(),
        ),
    };
    let mut opts = job.render.clone();
    opts.image_mark = match &job.watermark {
        Some(Watermark::Image(m)) => Some(m.clone()),
        _ => None,
    };
    if let Some(path) = &job.save_script {
        write_files_atomically(&[(path.clone(), script.clone())])?;
    }
    render::render_video(media, Some(&script), &plan, output, &opts, voice, sink)
}

/// Makes sure `dir` can receive output files, before any expensive work: a missing folder is created with its
/// parents (as yt-dlp and Whisper's CLI do); a path that exists and is not a folder, or a folder that cannot be
/// written, is an error.
pub fn check_output_dir(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let meta = match std::fs::metadata(dir) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            create_output_dir(dir)?;
            std::fs::metadata(dir).map_err(|e| Error::Write {
                path: dir.to_owned(),
                source: e,
            })?
        }
        r => r.map_err(|e| Error::Write {
            path: dir.to_owned(),
            source: e,
        })?,
    };
    if !meta.is_dir() {
        return Err(Error::BadInput(format!(
            "output folder {} is not a directory",
            dir.display()
        )));
    }
    let probe = crate::partial::partial_path(&dir.join("autosub-write-test"), "autosub-write-test");
    std::fs::write(&probe, b"").map_err(|e| Error::Write {
        path: dir.to_owned(),
        source: e,
    })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Creates `dir` and its missing parents; when a parent exists as a file, the error names it.
fn create_output_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        let blocker = dir
            .ancestors()
            .find(|a| !a.as_os_str().is_empty() && a.exists() && !a.is_dir());
        match blocker {
            Some(file) => Error::BadInput(format!(
                "cannot create the output folder {}: {} is a file, not a folder",
                dir.display(),
                file.display()
            )),
            None => Error::Write {
                path: dir.to_owned(),
                source: e,
            },
        }
    })
}

/// Writes several files all-or-nothing: each goes to a hidden temporary name in the same folder first (missing
/// folders are created), and only when every one is written are they renamed to their final names. On failure no temporary file is left and no
/// final name is touched.
pub fn write_files_atomically(files: &[(PathBuf, String)]) -> Result<()> {
    // A final name that is a directory would make a rename fail halfway, after earlier files were replaced.
    if let Some((path, _)) = files.iter().find(|(p, _)| p.is_dir()) {
        return Err(Error::BadInput(format!(
            "cannot write {}: a directory of that name is in the way",
            path.display()
        )));
    }
    for dir in files.iter().filter_map(|(p, _)| p.parent()) {
        if !dir.as_os_str().is_empty() && !dir.is_dir() {
            create_output_dir(dir)?;
        }
    }
    let mut temps: Vec<(PathBuf, &Path)> = Vec::new();
    let cleanup = |temps: &[(PathBuf, &Path)]| {
        for (t, _) in temps {
            let _ = std::fs::remove_file(t);
        }
    };
    for (path, content) in files {
        let tmp = crate::partial::partial_path(path, "subtitles");
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
        // A name too long for the file system: the second write fails after the first temporary file was made.
        let bad = dir.path().join(format!("{}.srt", "b".repeat(300)));
        let err =
            write_files_atomically(&[(ok.clone(), "x".into()), (bad, "y".into())]).unwrap_err();
        assert!(matches!(err, Error::Write { .. }));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // A file where a folder should be: refused before anything is written.
        std::fs::write(dir.path().join("file"), "").unwrap();
        let inside = dir.path().join("file/b.srt");
        let err =
            write_files_atomically(&[(ok.clone(), "x".into()), (inside, "y".into())]).unwrap_err();
        assert!(err.to_string().contains("is a file, not a folder"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn atomic_write_creates_missing_folders() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c.srt");
        write_files_atomically(&[(deep.clone(), "x".into())]).unwrap();
        assert_eq!(std::fs::read_to_string(deep).unwrap(), "x");
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
        // Missing folders are created with their parents.
        let nested = dir.path().join("missing/sub");
        check_output_dir(&nested).unwrap();
        assert!(nested.is_dir());
        // A file in the way is still an error, and the message names it.
        let f = dir.path().join("file");
        std::fs::write(&f, "").unwrap();
        let e = check_output_dir(&f).unwrap_err().to_string();
        assert!(e.contains("is not a directory"), "{e}");
        let e = check_output_dir(&f.join("sub")).unwrap_err().to_string();
        assert!(e.contains("is a file, not a folder"), "{e}");
        assert!(e.contains(&*f.to_string_lossy()), "{e}");
    }
}
