//! Media files: checking an input, probing its streams (ffprobe) and decoding its audio (ffmpeg).

use crate::proc::Cmd;
use crate::progress::{Event, Sink, Stage};
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Sample rate the recogniser works at.
pub const SAMPLE_RATE: u32 = 16_000;

/// Names of the programs to run; the defaults are looked up in PATH.
#[derive(Clone, Debug)]
pub struct Tools {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
}

impl Default for Tools {
    fn default() -> Self {
        Tools {
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
        }
    }
}

impl Tools {
    /// The programs named by `$AUTOSUB_FFMPEG` and `$AUTOSUB_FFPROBE`, else the defaults. For binaries: the library
    /// itself never reads the environment for them.
    pub fn from_env() -> Self {
        let d = Tools::default();
        Tools {
            ffmpeg: std::env::var_os("AUTOSUB_FFMPEG").map_or(d.ffmpeg, PathBuf::from),
            ffprobe: std::env::var_os("AUTOSUB_FFPROBE").map_or(d.ffprobe, PathBuf::from),
        }
    }
}

/// What ffprobe says about an input.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MediaInfo {
    pub path: PathBuf,
    pub format: String,
    /// Container duration, when the container states one.
    pub duration_ms: Option<u64>,
    pub video: Option<VideoStream>,
    pub audio: Option<AudioStream>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct VideoStream {
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// Display rotation in degrees (from side data or the legacy `rotate` tag), 0 when upright.
    pub rotation: i32,
    /// Average frame rate.
    pub fps: Option<f64>,
    /// The stream's base frame rate (`r_frame_rate`); far from `fps` on variable-frame-rate video.
    pub base_fps: Option<f64>,
    /// Sample (pixel) aspect ratio, `(1, 1)` for square pixels.
    pub sar: (u32, u32),
}

impl VideoStream {
    /// Whether the frame rate looks variable (phone recordings): the base rate and the average differ by more
    /// than 1 %.
    pub fn is_vfr(&self) -> bool {
        match (self.fps, self.base_fps) {
            (Some(avg), Some(base)) => (avg - base).abs() > 0.01 * base.max(avg),
            _ => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AudioStream {
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u32,
    /// The stream's own duration, when the container states one.
    pub duration_ms: Option<u64>,
}

/// Checks that `path` names a readable, non-empty regular file, with messages a user can act on.
pub fn check_input_file(path: &Path) -> Result<()> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound(path.into()))
        }
        Err(e) => {
            return Err(Error::BadInput(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    if meta.is_dir() {
        return Err(Error::BadInput(format!(
            "{} is a directory; give a video or audio file",
            path.display()
        )));
    }
    if !meta.is_file() {
        return Err(Error::BadInput(format!(
            "{} is not a regular file (a pipe or device?); save the media to a file first",
            path.display()
        )));
    }
    if meta.len() == 0 {
        return Err(Error::BadInput(format!(
            "{} is empty (0 bytes)",
            path.display()
        )));
    }
    std::fs::File::open(path)
        .map_err(|e| Error::BadInput(format!("cannot read {}: {e}", path.display())))?;
    Ok(())
}

/// The argument that names `path` to ffmpeg unambiguously: an absolute path behind the `file:` protocol, so
/// that names beginning with `-` or containing `:` are never read as options or protocols.
pub fn ffmpeg_input_arg(path: &Path) -> Result<std::ffi::OsString> {
    let abs = std::path::absolute(path)?;
    let mut s = std::ffi::OsString::from("file:");
    s.push(abs.as_os_str());
    Ok(s)
}

/// The first line of `PROGRAM -version` (ffmpeg, ffprobe), e.g. `ffmpeg version 5.1.9-0+deb12u1`.
pub fn program_version(program: &Path, sink: &dyn Sink) -> Result<String> {
    let out = Cmd::new(program, "ffmpeg")
        .arg("-version")
        .capture_stdout()
        .timeout(Duration::from_secs(30))
        .run(sink, &mut |_| {})?;
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or("").trim();
    if !out.status.success() || first.is_empty() {
        return Err(Error::ProgramFailed {
            program: program.display().to_string(),
            message: out.last_error_line(),
        });
    }
    Ok(first.split(" Copyright").next().unwrap_or(first).to_owned())
}

/// Whether ffmpeg lists `name` among its `-filters` or `-encoders` (`list`), e.g. the `ass` filter (libass) or
/// the `libx264` encoder the render stage needs.
pub fn ffmpeg_has(tools: &Tools, list: &str, name: &str, sink: &dyn Sink) -> Result<bool> {
    let out = Cmd::new(&tools.ffmpeg, "ffmpeg")
        .args(["-hide_banner", list])
        .capture_stdout()
        .timeout(Duration::from_secs(30))
        .run(sink, &mut |_| {})?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(name)))
}

/// Probes `path` with ffprobe. Fails with [`Error::BadInput`] when the file is not media ffmpeg can read.
pub fn probe(tools: &Tools, path: &Path, sink: &dyn Sink) -> Result<MediaInfo> {
    check_input_file(path)?;
    let out = Cmd::new(&tools.ffprobe, "ffmpeg")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(ffmpeg_input_arg(path)?)
        .capture_stdout()
        .timeout(Duration::from_secs(120))
        .run(sink, &mut |_| {})?;
    if !out.status.success() {
        return Err(Error::BadInput(format!(
            "{} is not a media file ffmpeg can read: {}",
            path.display(),
            explain_ffmpeg_error(&out.stderr_tail, looks_like_mp4(path))
        )));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| Error::ProgramFailed {
            program: "ffprobe".into(),
            message: format!("unreadable JSON output: {e}"),
        })?;
    parse_probe(path, &v)
}

/// Turns ffprobe's JSON into [`MediaInfo`]. Pure, for tests on captured output.
pub fn parse_probe(path: &Path, v: &serde_json::Value) -> Result<MediaInfo> {
    let format = v["format"]["format_name"].as_str().unwrap_or("").to_owned();
    let duration_ms = seconds_to_ms(&v["format"]["duration"]);
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let video = streams
        .iter()
        .find(|s| {
            s["codec_type"] == "video"
                && s["disposition"]["attached_pic"].as_i64().unwrap_or(0) == 0
        })
        .map(|s| VideoStream {
            codec: s["codec_name"].as_str().unwrap_or("").to_owned(),
            width: s["width"].as_u64().unwrap_or(0) as u32,
            height: s["height"].as_u64().unwrap_or(0) as u32,
            rotation: rotation_of(s),
            fps: s["avg_frame_rate"]
                .as_str()
                .and_then(parse_rational)
                .filter(|f| *f > 0.0),
            base_fps: s["r_frame_rate"]
                .as_str()
                .and_then(parse_rational)
                .filter(|f| *f > 0.0),
            sar: s["sample_aspect_ratio"]
                .as_str()
                .and_then(parse_ratio)
                .unwrap_or((1, 1)),
        });
    let audio = streams
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .map(|s| AudioStream {
            codec: s["codec_name"].as_str().unwrap_or("").to_owned(),
            sample_rate: s["sample_rate"]
                .as_str()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0),
            channels: s["channels"].as_u64().unwrap_or(0) as u32,
            duration_ms: seconds_to_ms(&s["duration"]),
        });
    if video.is_none() && audio.is_none() {
        return Err(Error::BadInput(format!(
            "{} has neither a video nor an audio stream",
            path.display()
        )));
    }
    Ok(MediaInfo {
        path: path.to_owned(),
        format,
        duration_ms,
        video,
        audio,
    })
}

/// ffprobe's `"12.345000"` in milliseconds.
fn seconds_to_ms(v: &serde_json::Value) -> Option<u64> {
    v.as_str()
        .and_then(|d| d.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d >= 0.0)
        .map(|d| (d * 1000.0).round() as u64)
}

fn rotation_of(stream: &serde_json::Value) -> i32 {
    let from_side = stream["side_data_list"].as_array().and_then(|l| {
        l.iter().find_map(|d| {
            d["rotation"]
                .as_i64()
                .or_else(|| d["rotation"].as_str()?.parse().ok())
        })
    });
    let from_tag = stream["tags"]["rotate"]
        .as_str()
        .and_then(|r| r.parse::<i64>().ok());
    let r = from_side.or(from_tag).unwrap_or(0);
    (r.rem_euclid(360)) as i32
}

/// `"16:11"` -> `(16, 11)`; `"0:1"` (unknown) and `"1:1"` are `None`/`(1, 1)`.
fn parse_ratio(s: &str) -> Option<(u32, u32)> {
    let (n, d) = s.split_once(':')?;
    let (n, d) = (n.trim().parse::<u32>().ok()?, d.trim().parse::<u32>().ok()?);
    (n > 0 && d > 0).then_some((n, d))
}

fn parse_rational(s: &str) -> Option<f64> {
    let (n, d) = s.split_once('/')?;
    let (n, d) = (n.parse::<f64>().ok()?, d.parse::<f64>().ok()?);
    (d != 0.0).then(|| n / d)
}

/// Whether the file starts like an MP4/MOV (an `ftyp` box), so a missing index means truncation, not a text
/// file with the wrong extension.
fn looks_like_mp4(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head[4..8] == b"ftyp"
}

/// A short reason for the most common ffmpeg read failures, from its last stderr lines.
fn explain_ffmpeg_error(lines: &[String], mp4_header: bool) -> String {
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    let last = lines
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map_or("", |l| l.trim());
    let hint = if has("moov atom not found") && mp4_header {
        "the file is truncated or incomplete (its MP4 index is missing)"
    } else if has("Invalid data found when processing input") || has("moov atom not found") {
        "the content is not a recognised audio/video format"
    } else if has("Permission denied") {
        "permission denied"
    } else {
        return last.to_owned();
    };
    format!("{hint} ({last})")
}

/// Decoded mono audio at [`SAMPLE_RATE`].
pub struct Audio {
    pub samples: Vec<f32>,
    /// Problems ffmpeg reported while decoding (e.g. a truncated file decoded in part).
    pub decode_errors: Vec<String>,
}

impl Audio {
    pub fn duration_ms(&self) -> u64 {
        self.samples.len() as u64 * 1000 / SAMPLE_RATE as u64
    }
}

/// Decodes the first audio stream of `info.path` to 16 kHz mono f32, reporting progress in milliseconds of media.
pub fn extract_audio(tools: &Tools, info: &MediaInfo, sink: &dyn Sink) -> Result<Audio> {
    if info.audio.is_none() {
        return Err(Error::BadInput(format!(
            "{} has no audio stream: there is nothing to transcribe",
            info.path.display()
        )));
    }
    let mut decode_errors = Vec::new();
    let out = Cmd::new(&tools.ffmpeg, "ffmpeg")
        .args([
            "-nostdin",
            "-hide_banner",
            "-v",
            "error",
            "-nostats",
            "-progress",
            "pipe:2",
            "-i",
        ])
        .arg(ffmpeg_input_arg(&info.path)?)
        .args(["-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar"])
        .arg(SAMPLE_RATE.to_string())
        .args(["-c:a", "pcm_f32le", "-f", "f32le", "pipe:1"])
        .capture_stdout()
        .idle_timeout(Duration::from_secs(120))
        .run(sink, &mut |line| {
            if let Some(us) = line.strip_prefix("out_time_us=") {
                if let Ok(us) = us.trim().parse::<i64>() {
                    sink.event(Event::Progress {
                        stage: Stage::ExtractAudio,
                        done: (us.max(0) / 1000) as u64,
                    });
                }
            } else if !line.contains('=') && !line.trim().is_empty() {
                decode_errors.push(line.trim().to_owned());
            }
        })?;
    let mut bytes = out.stdout;
    let samples: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    bytes.clear();
    bytes.shrink_to_fit();
    if !out.status.success() && !samples.is_empty() {
        // Some audio came out before ffmpeg failed (or was killed): say that the text may stop early.
        decode_errors.push(format!(
            "ffmpeg exited with {} after {:.1} s of audio; the subtitles may stop early",
            out.status,
            samples.len() as f64 / SAMPLE_RATE as f64
        ));
    }
    if !out.status.success() && samples.is_empty() {
        return Err(Error::BadInput(format!(
            "cannot decode the audio of {}: {}",
            info.path.display(),
            explain_ffmpeg_error(&decode_errors, looks_like_mp4(&info.path))
        )));
    }
    if samples.is_empty() {
        return Err(Error::BadInput(format!(
            "{} contains no decodable audio (0 samples)",
            info.path.display()
        )));
    }
    Ok(Audio {
        samples,
        decode_errors,
    })
}

/// Signs that an input is truncated or damaged, found by decoding its audio: less audio than the file states, or
/// ffmpeg's reports of a partial file or of undecodable data.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Damage {
    /// Audio that could be decoded.
    pub decoded_ms: u64,
    /// Audio the file states it has (its audio stream's duration, else the container's).
    pub expected_ms: Option<u64>,
    /// What ffmpeg reported while decoding (at most the first 5 lines).
    pub errors: Vec<String>,
    /// For the user: what is wrong and how much of the file was read.
    pub message: String,
}

/// Shortfalls of decoded audio under this, or under 5 % of the stated duration, are ordinary (encoder priming,
/// a last partial frame, an audio track a little shorter than the container).
const SHORTFALL_TOLERANCE_MS: u64 = 1500;

/// Whether the decoded `audio` of `info` shows the input to be truncated or damaged. Pure.
///
/// Measured against the audio stream's own stated duration; when only the container states one (an audio track
/// may legitimately end before the video), the shortfall must also be over a fifth of it. Any decoding error from
/// ffmpeg counts as damage, since it means some of the file could not be read.
pub fn check_decoded(info: &MediaInfo, audio: &Audio) -> Option<Damage> {
    let decoded_ms = audio.duration_ms();
    let stream_ms = info.audio.as_ref().and_then(|a| a.duration_ms);
    let expected_ms = stream_ms.or(info.duration_ms);
    let short = match (stream_ms, info.duration_ms) {
        (Some(e), _) => e.saturating_sub(decoded_ms) > SHORTFALL_TOLERANCE_MS.max(e / 20),
        (None, Some(e)) => e.saturating_sub(decoded_ms) > SHORTFALL_TOLERANCE_MS.max(e / 5),
        (None, None) => false,
    };
    let errors: Vec<String> = audio.decode_errors.iter().take(5).cloned().collect();
    if !short && errors.is_empty() {
        return None;
    }
    let what = if errors.iter().any(|e| e.contains("partial file")) || short {
        "is truncated or damaged"
    } else {
        "is damaged"
    };
    let how_much = match expected_ms {
        Some(e) if short => format!(
            "only {:.1} s of its {:.1} s of audio could be decoded",
            decoded_ms as f64 / 1000.0,
            e as f64 / 1000.0
        ),
        _ => format!(
            "{:.1} s of audio were decoded, with errors",
            decoded_ms as f64 / 1000.0
        ),
    };
    let first = errors
        .first()
        .map(|e| format!(" (ffmpeg: {})", strip_ffmpeg_context(e)))
        .unwrap_or_default();
    Some(Damage {
        decoded_ms,
        expected_ms,
        message: format!("{} {what}: {how_much}{first}", info.path.display()),
        errors,
    })
}

/// `[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55b3e73fb940] stream 1, offset 0x30fc3: partial file` without the bracket.
fn strip_ffmpeg_context(line: &str) -> &str {
    match (line.starts_with('['), line.find("] ")) {
        (true, Some(i)) => &line[i + 2..],
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info_with(container_ms: Option<u64>, stream_ms: Option<u64>) -> MediaInfo {
        MediaInfo {
            path: "clip.mp4".into(),
            format: "mov,mp4".into(),
            duration_ms: container_ms,
            video: None,
            audio: Some(AudioStream {
                codec: "aac".into(),
                sample_rate: 48000,
                channels: 2,
                duration_ms: stream_ms,
            }),
        }
    }

    fn audio_of(ms: u64, errors: &[&str]) -> Audio {
        Audio {
            samples: vec![0.0; (ms * SAMPLE_RATE as u64 / 1000) as usize],
            decode_errors: errors.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn damage_from_a_shortfall_or_decoding_errors() {
        // Whole: within the tolerance.
        assert_eq!(
            check_decoded(
                &info_with(Some(51_000), Some(51_000)),
                &audio_of(50_990, &[])
            ),
            None
        );
        assert_eq!(
            check_decoded(
                &info_with(Some(51_000), Some(50_000)),
                &audio_of(49_000, &[])
            ),
            None
        );
        // The audio track ends 8 s before the video: ordinary when only the container states a duration...
        assert_eq!(
            check_decoded(&info_with(Some(51_000), None), &audio_of(43_000, &[])),
            None
        );
        // ...but not when the stream itself says it is longer.
        assert!(check_decoded(
            &info_with(Some(51_000), Some(51_000)),
            &audio_of(43_000, &[])
        )
        .is_some());
        // A cut-off download: 5.4 s of 51 s, and ffmpeg says so.
        let d = check_decoded(
            &info_with(Some(51_000), Some(51_000)),
            &audio_of(
                5_376,
                &["[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55b3] stream 1, offset 0x30fc3: partial file"],
            ),
        )
        .unwrap();
        assert_eq!(d.decoded_ms, 5_376);
        assert_eq!(d.expected_ms, Some(51_000));
        assert_eq!(
            d.message,
            "clip.mp4 is truncated or damaged: only 5.4 s of its 51.0 s of audio could be decoded \
             (ffmpeg: stream 1, offset 0x30fc3: partial file)"
        );
        // Errors alone (a damaged middle): damaged, with how much was read.
        let d = check_decoded(
            &info_with(Some(10_000), Some(10_000)),
            &audio_of(10_000, &["Invalid data"]),
        )
        .unwrap();
        assert!(
            d.message
                .contains("is damaged: 10.0 s of audio were decoded, with errors"),
            "{}",
            d.message
        );
        // No stated duration and no errors: nothing to compare with.
        assert_eq!(
            check_decoded(&info_with(None, None), &audio_of(1_000, &[])),
            None
        );
    }

    #[test]
    fn probe_json_with_rotation_and_cover_art() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"streams":[
                {"codec_type":"video","codec_name":"mjpeg","width":300,"height":300,"disposition":{"attached_pic":1}},
                {"codec_type":"video","codec_name":"h264","width":1920,"height":1080,"avg_frame_rate":"30000/1001",
                 "disposition":{"attached_pic":0},"side_data_list":[{"side_data_type":"Display Matrix","rotation":-90}]},
                {"codec_type":"audio","codec_name":"aac","sample_rate":"48000","channels":2}],
              "format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"12.345000"}}"#,
        )
        .unwrap();
        let info = parse_probe(Path::new("x.mp4"), &v).unwrap();
        let video = info.video.unwrap();
        assert_eq!(
            (video.width, video.height, video.rotation),
            (1920, 1080, 270)
        );
        assert!((video.fps.unwrap() - 29.97).abs() < 0.01);
        assert_eq!(info.duration_ms, Some(12345));
        assert_eq!(info.audio.unwrap().sample_rate, 48000);
    }

    #[test]
    fn probe_json_without_streams_is_bad_input() {
        let v: serde_json::Value = serde_json::from_str(r#"{"streams":[],"format":{}}"#).unwrap();
        assert!(matches!(
            parse_probe(Path::new("x"), &v),
            Err(Error::BadInput(_))
        ));
    }

    #[test]
    fn input_arg_is_absolute_and_protocol_prefixed() {
        let a = ffmpeg_input_arg(Path::new("-weird:name.mp4")).unwrap();
        let s = a.to_string_lossy();
        assert!(s.starts_with("file:/"), "{s}");
        assert!(s.ends_with("/-weird:name.mp4"));
    }
}
