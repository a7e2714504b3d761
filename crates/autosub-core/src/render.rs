//! The finished clip in one encode: scaling, 9:16 reframing, burned-in subtitles and watermark are one ffmpeg
//! filtergraph, encoded once to H.264 + AAC.
//!
//! [`plan`] turns the probed input and the options into exact pixel sizes (pure, unit-tested);
//! [`filtergraph`] writes the graph from the plan (pure, escaped by construction: user text never enters the
//! graph, it goes into the ASS script; user files enter as inputs or as escaped option values);
//! [`render_video`] runs ffmpeg once through [`crate::proc::Cmd`], with progress from `-progress`, and renames a
//! complete file into place.

use crate::media::{ffmpeg_input_arg, MediaInfo, Tools, VideoStream};
use crate::proc::Cmd;
use crate::progress::{run_stage, Event, Sink, Stage};
use crate::{Error, Result};
use autosub_subs::VideoSize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How a horizontal video becomes 9:16.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reframe {
    /// The whole frame, scaled to the width, over a blurred, zoomed copy of itself.
    #[default]
    Blur,
    /// The centre of the frame, cropped to 9:16.
    Crop,
}

impl std::str::FromStr for Reframe {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "blur" => Ok(Reframe::Blur),
            "crop" => Ok(Reframe::Crop),
            other => Err(Error::BadInput(format!(
                "unknown vertical mode `{other}`; choose blur or crop"
            ))),
        }
    }
}

/// Encoder speed/size trade-off, mapped to x264 presets and CRF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    Fast,
    #[default]
    Balanced,
    Best,
}

impl Quality {
    /// (x264 preset, CRF).
    pub fn x264(self) -> (&'static str, u8) {
        match self {
            Quality::Fast => ("ultrafast", 23),
            Quality::Balanced => ("veryfast", 21),
            Quality::Best => ("medium", 18),
        }
    }
}

impl std::str::FromStr for Quality {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fast" => Ok(Quality::Fast),
            "balanced" => Ok(Quality::Balanced),
            "best" => Ok(Quality::Best),
            other => Err(Error::BadInput(format!(
                "unknown quality `{other}`; choose fast, balanced or best"
            ))),
        }
    }
}

/// A corner of the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Corner {
    TopLeft,
    #[default]
    TopRight,
    BottomLeft,
    BottomRight,
}

impl Corner {
    /// The ASS numpad alignment of this corner.
    pub fn alignment(self) -> u8 {
        match self {
            Corner::TopLeft => 7,
            Corner::TopRight => 9,
            Corner::BottomLeft => 1,
            Corner::BottomRight => 3,
        }
    }
}

impl std::str::FromStr for Corner {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace(['_', ' '], "-")
            .as_str()
        {
            "top-left" | "tl" => Ok(Corner::TopLeft),
            "top-right" | "tr" => Ok(Corner::TopRight),
            "bottom-left" | "bl" => Ok(Corner::BottomLeft),
            "bottom-right" | "br" => Ok(Corner::BottomRight),
            other => Err(Error::BadInput(format!(
                "unknown corner `{other}`; choose top-left, top-right, bottom-left or bottom-right"
            ))),
        }
    }
}

/// A PNG (or any image ffmpeg reads) drawn in a corner.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageMark {
    pub path: PathBuf,
    pub corner: Corner,
    /// 0 invisible .. 1 opaque.
    pub opacity: f64,
    /// Width of the mark as a fraction of the output width.
    pub width_ratio: f64,
    /// Distance from the edges as a fraction of the output height.
    pub margin_ratio: f64,
}

/// Options of [`render_video`].
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    /// Make a 9:16 video.
    pub vertical: Option<Reframe>,
    /// Cap on the output's "p" size, its short side (the height of landscape video, the width of portrait and
    /// vertical video); never upscales.
    pub max_height: Option<u32>,
    pub quality: Quality,
    pub image_mark: Option<ImageMark>,
    pub tools: Tools,
    /// Encoder threads [default: ffmpeg's choice, all cores].
    pub threads: Option<u32>,
}

/// How a voice-over track joins the original sound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VoiceMode {
    /// The original is lowered while the voice speaks (a sidechain compressor keyed by the voice) and mixed
    /// under it.
    #[default]
    Duck,
    /// The voice alone.
    Replace,
}

impl std::str::FromStr for VoiceMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "duck" => Ok(VoiceMode::Duck),
            "replace" => Ok(VoiceMode::Replace),
            other => Err(Error::BadInput(format!(
                "unknown voice-over mode `{other}`: use duck or replace"
            ))),
        }
    }
}

/// A voice-over track for the output's audio: mono samples as long as the video.
#[derive(Clone, Debug)]
pub struct VoiceTrack<'a> {
    pub samples: &'a [f32],
    pub sample_rate: u32,
    pub mode: VoiceMode,
}

/// Output audio for the voice-over, at the rate and layout video audio uses.
const MIX_FORMAT: &str = "aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo";

/// The audio part of the graph when a voice-over (input `voice_input`) joins the output: `[a]`.
/// With `original` (the input has sound) and [`VoiceMode::Duck`], the original is compressed while the voice is
/// above -30 dBFS (ratio 8, 20 ms attack, 300 ms release: only while it speaks; measured 7.8 dB lower under a voice
/// at -20 LUFS) and mixed with it without normalisation, so neither is made quieter by the mix itself; the mix
/// lasts as long as the longer of the two (a voice past the end of a short audio stream is kept).
pub fn voice_graph(voice_input: usize, original: bool, mode: VoiceMode) -> String {
    match (mode, original) {
        (VoiceMode::Duck, true) => format!(
            "[0:a:0]{MIX_FORMAT}[orig];[{voice_input}:a]{MIX_FORMAT},asplit=2[voice][key];\
             [orig][key]sidechaincompress=threshold=0.0316:ratio=8:attack=20:release=300:makeup=1[ducked];\
             [ducked][voice]amix=inputs=2:duration=longest:normalize=0[a]"
        ),
        _ => format!("[{voice_input}:a]{MIX_FORMAT}[a]"),
    }
}

/// A rectangle in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// Exact sizes for one render, from [`plan`].
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Size of the frames entering the graph (after ffmpeg's automatic rotation), in stored pixels.
    pub frame: VideoSize,
    /// Pixel aspect ratio of those frames (width / height of one pixel).
    pub pixel_aspect: f64,
    /// Size of the output video (even, square pixels).
    pub output: VideoSize,
    pub layout: Layout,
    /// Constant output frame rate for variable-frame-rate input.
    pub cfr: Option<f64>,
}

/// How the picture is laid out on the output.
#[derive(Clone, Debug, PartialEq)]
pub enum Layout {
    /// The frame scaled to the output size (`None` when it already is that size with square pixels).
    Scale(Option<VideoSize>),
    /// `crop` (in frame pixels) scaled to the output.
    Crop { crop: Rect },
    /// The frame scaled into `fg` on top of a blurred copy: `bg_crop` (frame pixels) shrunk to `bg_small`,
    /// blurred with `radius`, and stretched to the output.
    Blur {
        fg: Rect,
        bg_crop: Rect,
        bg_small: VideoSize,
        radius: u32,
    },
}

fn even_floor(x: f64) -> u32 {
    ((x.max(2.0) as u32) / 2 * 2).max(2)
}

fn even_round(x: f64) -> u32 {
    (((x / 2.0).round() as u32) * 2).max(2)
}

/// Vertical output width for a "p" cap: 1080 by default, 720 when capped at 720p.
const VERTICAL_WIDTH: u32 = 1080;

/// Computes the output geometry. Errors for a video stream without a size.
pub fn plan(
    video: &VideoStream,
    vertical: Option<Reframe>,
    max_height: Option<u32>,
) -> Result<Plan> {
    if video.width == 0 || video.height == 0 {
        return Err(Error::BadInput(
            "the video stream has no frame size; cannot render a video from it".into(),
        ));
    }
    let (sn, sd) = video.sar;
    let sar = if sn > 0 && sd > 0 {
        f64::from(sn) / f64::from(sd)
    } else {
        1.0
    };
    // ffmpeg rotates the frames upright before the graph; a quarter turn swaps the sides and inverts the SAR.
    let quarter = video.rotation.rem_euclid(180) == 90;
    let (frame, pixel_aspect) = if quarter {
        (VideoSize::new(video.height, video.width), 1.0 / sar)
    } else {
        (VideoSize::new(video.width, video.height), sar)
    };
    let (fw, fh) = (f64::from(frame.width), f64::from(frame.height));
    // Display size: square pixels.
    let (dw, dh) = (fw * pixel_aspect, fh);
    let cap = max_height.map(|c| c.max(2));
    let cfr = video
        .is_vfr()
        .then(|| video.fps.unwrap_or(30.0).clamp(1.0, 60.0));
    let (output, layout) = match vertical {
        None => {
            // "720p" caps the short side: the height of landscape video, the width of portrait video.
            let scale = cap.map_or(1.0, |c| (f64::from(c) / dw.min(dh)).min(1.0));
            let oh = even_floor(dh * scale);
            let ow = even_round(dw * f64::from(oh) / dh);
            let out = VideoSize::new(ow, oh);
            let same = out == frame && (pixel_aspect - 1.0).abs() < 1e-9;
            (out, Layout::Scale((!same).then_some(out)))
        }
        Some(mode) => {
            let target_w = f64::from(cap.map_or(VERTICAL_WIDTH, |c| c.min(VERTICAL_WIDTH)));
            // The 9:16 region of the frame (display units) that covers the canvas.
            let (cover_w, cover_h) = if dw / dh > 9.0 / 16.0 {
                (dh * 9.0 / 16.0, dh)
            } else {
                (dw, dw * 16.0 / 9.0)
            };
            let to_frame = |cw: f64, ch: f64| Rect {
                w: even_floor(cw / pixel_aspect).min(frame.width / 2 * 2),
                h: even_floor(ch).min(frame.height / 2 * 2),
                x: 0,
                y: 0,
            };
            let centre = |r: Rect| Rect {
                x: (frame.width - r.w) / 2,
                y: (frame.height - r.h) / 2,
                ..r
            };
            match mode {
                Reframe::Crop => {
                    let w = even_floor(target_w.min(cover_w));
                    let out = VideoSize::new(w, even_round(f64::from(w) * 16.0 / 9.0));
                    (
                        out,
                        Layout::Crop {
                            crop: centre(to_frame(cover_w, cover_h)),
                        },
                    )
                }
                Reframe::Blur => {
                    // Never upscale the picture: the canvas is at most as wide as the frame (or, for a frame
                    // taller than 9:16, as tall).
                    let w = if dw / dh > 9.0 / 16.0 {
                        target_w.min(dw)
                    } else {
                        target_w.min(dh * 9.0 / 16.0)
                    };
                    let cw = even_floor(w);
                    let ch = even_round(f64::from(cw) * 16.0 / 9.0);
                    let out = VideoSize::new(cw, ch);
                    // The picture fitted inside the canvas.
                    let (pw, ph) = if dw / dh > f64::from(cw) / f64::from(ch) {
                        let pw = cw;
                        (pw, even_round(dh * f64::from(pw) / dw).min(ch))
                    } else {
                        let ph = ch;
                        (even_round(dw * f64::from(ph) / dh).min(cw), ph)
                    };
                    if pw == cw && ph == ch {
                        // Already 9:16: nothing to fill.
                        let same = out == frame && (pixel_aspect - 1.0).abs() < 1e-9;
                        (out, Layout::Scale((!same).then_some(out)))
                    } else {
                        // The background is blurred at 1/6 of the canvas: cheap, and blur hides the upscale.
                        let small = VideoSize::new(
                            even_round(f64::from(cw) / 6.0).max(16),
                            even_round(f64::from(ch) / 6.0).max(28),
                        );
                        let radius = (small.width / 16).max(2);
                        (
                            out,
                            Layout::Blur {
                                fg: Rect {
                                    x: (cw - pw) / 2,
                                    y: (ch - ph) / 2,
                                    w: pw,
                                    h: ph,
                                },
                                bg_crop: centre(to_frame(cover_w, cover_h)),
                                bg_small: small,
                                radius,
                            },
                        )
                    }
                }
            }
        }
    };
    Ok(Plan {
        frame,
        pixel_aspect,
        output,
        layout,
        cfr,
    })
}

/// Escapes a filter option value (first level of ffmpeg's filtergraph escaping): `\`, `'` and `:`.
pub fn escape_option_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 8);
    for c in v.chars() {
        if matches!(c, '\\' | '\'' | ':') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Escapes a filter's argument string for the filtergraph (second level): `\`, `'`, `[`, `]`, `,` and `;`.
pub fn escape_filter_args(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 8);
    for c in v.chars() {
        if matches!(c, '\\' | '\'' | '[' | ']' | ',' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The filtergraph of a render: input `[0:v]` (and `[1:v]`, the image watermark, when `mark` is given) to
/// output `[v]`. `subs` is the ASS script to burn, if any.
pub fn filtergraph(plan: &Plan, subs: Option<&Path>, mark: Option<&ImageMark>) -> String {
    let VideoSize {
        width: ow,
        height: oh,
    } = plan.output;
    let mut chains: Vec<String> = Vec::new();
    let mut cur = "0:v".to_owned();
    let next = |chains: &mut Vec<String>, from: &str, filters: String, to: &str| {
        chains.push(format!("[{from}]{filters}[{to}]"));
    };
    match &plan.layout {
        Layout::Scale(None) => {}
        Layout::Scale(Some(s)) => {
            next(
                &mut chains,
                &cur,
                format!("scale={}:{}:flags=bicubic,setsar=1", s.width, s.height),
                "pic",
            );
            cur = "pic".into();
        }
        Layout::Crop { crop } => {
            next(
                &mut chains,
                &cur,
                format!(
                    "crop={}:{}:{}:{},scale={ow}:{oh}:flags=bicubic,setsar=1",
                    crop.w, crop.h, crop.x, crop.y
                ),
                "pic",
            );
            cur = "pic".into();
        }
        Layout::Blur {
            fg,
            bg_crop,
            bg_small,
            radius,
        } => {
            chains.push(format!("[{cur}]split=2[bgsrc][fgsrc]"));
            chains.push(format!(
                "[bgsrc]crop={}:{}:{}:{},scale={}:{}:flags=fast_bilinear,boxblur=luma_radius={r}:luma_power=2:chroma_radius={cr}:chroma_power=2,eq=brightness=-0.08,scale={ow}:{oh}:flags=fast_bilinear,setsar=1[bg]",
                bg_crop.w,
                bg_crop.h,
                bg_crop.x,
                bg_crop.y,
                bg_small.width,
                bg_small.height,
                r = radius,
                cr = (radius / 2).max(1),
            ));
            chains.push(format!(
                "[fgsrc]scale={}:{}:flags=bicubic,setsar=1[fg]",
                fg.w, fg.h
            ));
            chains.push(format!(
                "[bg][fg]overlay=x={}:y={}:format=yuv420[pic]",
                fg.x, fg.y
            ));
            cur = "pic".into();
        }
    }
    if let Some(path) = subs {
        let args = format!("filename={}", escape_option_value(&path.to_string_lossy()));
        next(
            &mut chains,
            &cur,
            format!("ass={}", escape_filter_args(&args)),
            "subs",
        );
        cur = "subs".into();
    }
    if let Some(m) = mark {
        let clamp01 = |x: f64| {
            if x.is_finite() {
                x.clamp(0.0, 1.0)
            } else {
                1.0
            }
        };
        let mw = even_round(clamp01(m.width_ratio).max(0.01) * f64::from(ow));
        let margin = (clamp01(m.margin_ratio) * f64::from(oh.min(ow))).round() as u32;
        let (x, y) = match m.corner {
            Corner::TopLeft => (format!("{margin}"), format!("{margin}")),
            Corner::TopRight => (format!("W-w-{margin}"), format!("{margin}")),
            Corner::BottomLeft => (format!("{margin}"), format!("H-h-{margin}")),
            Corner::BottomRight => (format!("W-w-{margin}"), format!("H-h-{margin}")),
        };
        chains.push(format!(
            "[1:v]scale={mw}:-2:flags=bicubic,format=rgba,colorchannelmixer=aa={:.3}[mark]",
            clamp01(m.opacity)
        ));
        next(
            &mut chains,
            &cur,
            format!("[mark]overlay=x={x}:y={y}:format=yuv420"),
            "marked",
        );
        cur = "marked".into();
    }
    next(&mut chains, &cur, "format=yuv420p".into(), "v");
    chains.join(";")
}

/// What [`render_video`] produced.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Rendered {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    /// `copy` when the input's AAC audio was copied, `aac` when re-encoded, `none` without audio.
    pub audio: &'static str,
    pub elapsed_ms: u64,
}

/// Parses ffmpeg's `-progress` lines: the output time in milliseconds from `out_time_us=`/`out_time_ms=`
/// (both are microseconds in ffmpeg 5).
pub fn parse_progress_line(line: &str) -> Option<u64> {
    let v = line
        .strip_prefix("out_time_us=")
        .or_else(|| line.strip_prefix("out_time_ms="))?;
    let us: i64 = v.trim().parse().ok()?;
    (us >= 0).then_some(us as u64 / 1000)
}

/// Renders `media` to `output` (an `.mp4`) in one encode: the plan's geometry, the ASS `script` burned in
/// (if any), the image watermark of `opts` and the voice-over `voice` mixed into the sound (if any). Progress is reported as [`Stage::Render`] in milliseconds of
/// media. The file is written under a temporary name in the same folder and renamed when complete; on any
/// failure or cancellation nothing is left.
pub fn render_video(
    media: &MediaInfo,
    script: Option<&str>,
    plan: &Plan,
    output: &Path,
    opts: &RenderOptions,
    voice: Option<&VoiceTrack<'_>>,
    sink: &dyn Sink,
) -> Result<Rendered> {
    if media.video.is_none() {
        return Err(Error::BadInput(format!(
            "{} has no video stream to render subtitles into",
            media.path.display()
        )));
    }
    if let Some(m) = &opts.image_mark {
        crate::media::check_input_file(&m.path)?;
    }
    if output.is_dir() {
        return Err(Error::BadInput(format!(
            "cannot write {}: a directory of that name is in the way",
            output.display()
        )));
    }
    // The script goes to a private temporary folder; only its (escaped) path enters the graph.
    let scratch = tempfile::Builder::new()
        .prefix("autosub-render-")
        .tempdir()
        .map_err(|e| Error::Write {
            path: std::env::temp_dir(),
            source: e,
        })?;
    let subs_path = scratch.path().join("subs.ass");
    if let Some(s) = script {
        std::fs::write(&subs_path, s).map_err(|e| Error::Write {
            path: subs_path.clone(),
            source: e,
        })?;
    }
    let mut graph = filtergraph(
        plan,
        script.map(|_| subs_path.as_path()),
        opts.image_mark.as_ref(),
    );
    let voice_path = scratch.path().join("voice.wav");
    if let Some(v) = voice {
        write_voice(&voice_path, v)?;
        let input = if opts.image_mark.is_some() { 2 } else { 1 };
        graph.push(';');
        graph.push_str(&voice_graph(input, media.audio.is_some(), v.mode));
    }
    let tmp = crate::partial::partial_path(output, "video.mp4");
    let (preset, crf) = opts.quality.x264();
    let audio = match (&media.audio, voice) {
        (_, Some(_)) => "aac",
        (None, None) => "none",
        (Some(a), None) if a.codec == "aac" => "copy",
        (Some(_), None) => "aac",
    };
    let mut cmd = Cmd::new(&opts.tools.ffmpeg, "ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-nostats"])
        .args(["-progress", "pipe:2", "-y"])
        .arg("-i")
        .arg(ffmpeg_input_arg(&media.path)?);
    if let Some(m) = &opts.image_mark {
        // A still image, read as a file name without `%d` sequence patterns (a `%` in the path is literal).
        cmd = cmd
            .args(["-f", "image2", "-pattern_type", "none", "-i"])
            .arg(ffmpeg_input_arg(&m.path)?);
    }
    if voice.is_some() {
        cmd = cmd.arg("-i").arg(ffmpeg_input_arg(&voice_path)?);
    }
    cmd = cmd
        .arg("-filter_complex")
        .arg(&graph)
        .args(["-map", "[v]", "-map"])
        .arg(if voice.is_some() { "[a]" } else { "0:a:0?" })
        .args(["-c:v", "libx264", "-preset", preset, "-crf"])
        .arg(crf.to_string())
        .args(["-pix_fmt", "yuv420p", "-profile:v", "high"]);
    if let Some(t) = opts.threads {
        cmd = cmd.arg("-threads").arg(t.to_string());
    }
    if let Some(r) = plan.cfr {
        cmd = cmd.args(["-fps_mode", "cfr", "-r"]).arg(format!("{r:.3}"));
    }
    cmd = match audio {
        "copy" => cmd.args(["-c:a", "copy"]),
        "aac" if voice.is_some() => cmd.args(["-c:a", "aac", "-b:a", "192k"]),
        "aac" => cmd.args(["-c:a", "aac", "-b:a", "160k"]),
        _ => cmd,
    };
    cmd = cmd
        .args(["-map_metadata", "-1", "-map_chapters", "-1"])
        .args(["-movflags", "+faststart", "-f", "mp4"])
        .arg(ffmpeg_input_arg(&tmp)?)
        .idle_timeout(Duration::from_secs(300));
    let total = media.duration_ms;
    let run = run_stage(sink, Stage::Render, total, || {
        let mut errors: Vec<String> = Vec::new();
        let out = cmd.run(sink, &mut |line| {
            if let Some(ms) = parse_progress_line(line) {
                sink.event(Event::Progress {
                    stage: Stage::Render,
                    done: total.map_or(ms, |t| ms.min(t)),
                });
            } else if !line.contains('=') && !line.trim().is_empty() {
                errors.push(line.to_owned());
            }
        })?;
        if !out.status.success() {
            // The first error is the cause; later ones are consequences ("Error marking filters as finished").
            let msg = match (errors.first(), errors.last()) {
                (Some(a), Some(b)) if a != b => format!("{a} (then: {b})"),
                (Some(a), _) => a.clone(),
                _ => out.last_error_line(),
            };
            return Err(Error::ProgramFailed {
                program: "ffmpeg".into(),
                message: format!("rendering the video failed: {msg}"),
            });
        }
        Ok(())
    });
    let elapsed = match run {
        Ok(((), t)) => t,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, output).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Write {
            path: output.to_owned(),
            source: e,
        }
    })?;
    Ok(Rendered {
        path: output.to_owned(),
        width: plan.output.width,
        height: plan.output.height,
        audio,
        elapsed_ms: elapsed.as_millis() as u64,
    })
}

/// Writes a voice track as a 32-bit float WAV file.
fn write_voice(path: &Path, v: &VoiceTrack<'_>) -> Result<()> {
    crate::tts::wav::write_f32_file(path, v.samples, v.sample_rate).map_err(|e| Error::Write {
        path: path.to_owned(),
        source: e,
    })
}

/// The sound of `media` with a voice-over, without video (`--no-video`, audio-only input): AAC in an `.m4a` file,
/// written under a temporary name and renamed when complete.
pub fn render_audio(
    media: &MediaInfo,
    voice: &VoiceTrack<'_>,
    output: &Path,
    tools: &Tools,
    sink: &dyn Sink,
) -> Result<Rendered> {
    if output.is_dir() {
        return Err(Error::BadInput(format!(
            "cannot write {}: a directory of that name is in the way",
            output.display()
        )));
    }
    let scratch = tempfile::Builder::new()
        .prefix("autosub-voice-")
        .tempdir()
        .map_err(|e| Error::Write {
            path: std::env::temp_dir(),
            source: e,
        })?;
    let voice_path = scratch.path().join("voice.wav");
    write_voice(&voice_path, voice)?;
    let tmp = crate::partial::partial_path(output, "voice.m4a");
    let cmd = Cmd::new(&tools.ffmpeg, "ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-nostats"])
        .args(["-progress", "pipe:2", "-y", "-i"])
        .arg(ffmpeg_input_arg(&media.path)?)
        .arg("-i")
        .arg(ffmpeg_input_arg(&voice_path)?)
        .arg("-filter_complex")
        .arg(voice_graph(1, media.audio.is_some(), voice.mode))
        .args(["-map", "[a]", "-vn", "-c:a", "aac", "-b:a", "192k"])
        .args([
            "-map_metadata",
            "-1",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
        ])
        .arg(ffmpeg_input_arg(&tmp)?)
        .idle_timeout(Duration::from_secs(300));
    let total = Some(voice.samples.len() as u64 * 1000 / u64::from(voice.sample_rate.max(1)));
    let run = run_stage(sink, Stage::Render, total, || {
        let out = cmd.run(sink, &mut |line| {
            if let Some(ms) = parse_progress_line(line) {
                sink.event(Event::Progress {
                    stage: Stage::Render,
                    done: total.map_or(ms, |t| ms.min(t)),
                });
            }
        })?;
        if !out.status.success() {
            return Err(Error::ProgramFailed {
                program: "ffmpeg".into(),
                message: format!("mixing the voice-over failed: {}", out.last_error_line()),
            });
        }
        Ok(())
    });
    let elapsed = match run {
        Ok(((), t)) => t,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, output).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Write {
            path: output.to_owned(),
            source: e,
        }
    })?;
    Ok(Rendered {
        path: output.to_owned(),
        width: 0,
        height: 0,
        audio: "aac",
        elapsed_ms: elapsed.as_millis() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(w: u32, h: u32) -> VideoStream {
        VideoStream {
            codec: "h264".into(),
            width: w,
            height: h,
            rotation: 0,
            fps: Some(30.0),
            base_fps: Some(30.0),
            sar: (1, 1),
        }
    }

    #[test]
    fn plain_video_is_left_alone_or_capped_without_upscaling() {
        let p = plan(&video(1280, 720), None, None).unwrap();
        assert_eq!(p.output, VideoSize::new(1280, 720));
        assert_eq!(p.layout, Layout::Scale(None));
        let p = plan(&video(1280, 720), None, Some(1080)).unwrap();
        assert_eq!(p.output, VideoSize::new(1280, 720), "never upscales");
        let p = plan(&video(1920, 1080), None, Some(720)).unwrap();
        assert_eq!(p.output, VideoSize::new(1280, 720));
        assert_eq!(p.layout, Layout::Scale(Some(VideoSize::new(1280, 720))));
    }

    #[test]
    fn odd_sizes_rotation_and_non_square_pixels() {
        let p = plan(&video(321, 177), None, None).unwrap();
        assert_eq!(p.output, VideoSize::new(320, 176));
        // A phone video stored 1920x1080 with a quarter turn is 1080x1920 upright.
        let mut v = video(1920, 1080);
        v.rotation = 90;
        let p = plan(&v, None, Some(720)).unwrap();
        assert_eq!(p.frame, VideoSize::new(1080, 1920));
        assert_eq!(p.output, VideoSize::new(720, 1280));
        // DVD-style anamorphic 720x576 with 16:11 pixels shows as 1047x576.
        let mut v = video(720, 576);
        v.sar = (16, 11);
        let p = plan(&v, None, None).unwrap();
        assert_eq!(p.output, VideoSize::new(1048, 576));
        assert!(matches!(p.layout, Layout::Scale(Some(_))));
    }

    #[test]
    fn vertical_blur_geometry() {
        let p = plan(&video(1280, 720), Some(Reframe::Blur), None).unwrap();
        assert_eq!(p.output, VideoSize::new(1080, 1920));
        let Layout::Blur {
            fg,
            bg_crop,
            bg_small,
            ..
        } = p.layout
        else {
            panic!("{:?}", p.layout)
        };
        assert_eq!((fg.w, fg.h, fg.x), (1080, 608, 0));
        assert_eq!(fg.y, (1920 - 608) / 2);
        assert_eq!((bg_crop.w, bg_crop.h), (404, 720));
        assert_eq!(bg_crop.x, (1280 - 404) / 2);
        assert_eq!(bg_small, VideoSize::new(180, 320));
        let p = plan(&video(1920, 1080), Some(Reframe::Blur), Some(720)).unwrap();
        assert_eq!(p.output, VideoSize::new(720, 1280));
        // A small source is not blown up: the canvas shrinks to its width.
        let p = plan(&video(320, 176), Some(Reframe::Blur), None).unwrap();
        assert_eq!(p.output, VideoSize::new(320, 568));
        // Already vertical: no background needed.
        let p = plan(&video(1080, 1920), Some(Reframe::Blur), None).unwrap();
        assert_eq!(p.layout, Layout::Scale(None));
    }

    #[test]
    fn vertical_crop_geometry() {
        let p = plan(&video(1920, 1080), Some(Reframe::Crop), None).unwrap();
        let Layout::Crop { crop } = p.layout else {
            panic!()
        };
        assert_eq!((crop.w, crop.h, crop.x, crop.y), (606, 1080, 657, 0));
        // The crop is 606 px wide: the output is not upscaled past it.
        assert_eq!(p.output, VideoSize::new(606, 1078));
        let p = plan(&video(3840, 2160), Some(Reframe::Crop), None).unwrap();
        assert_eq!(p.output, VideoSize::new(1080, 1920));
    }

    #[test]
    fn variable_frame_rate_gets_a_constant_rate() {
        let mut v = video(1280, 720);
        v.fps = Some(29.5);
        v.base_fps = Some(120.0);
        assert_eq!(plan(&v, None, None).unwrap().cfr, Some(29.5));
        assert_eq!(plan(&video(1280, 720), None, None).unwrap().cfr, None);
    }

    #[test]
    fn escaping_by_attack() {
        let nasty = "/tmp/a'b:c\\d[e],f;g";
        let level1 = escape_option_value(nasty);
        assert_eq!(level1, "/tmp/a\\'b\\:c\\\\d[e],f;g");
        let level2 = escape_filter_args(&format!("filename={level1}"));
        assert_eq!(
            level2,
            "filename=/tmp/a\\\\\\'b\\\\:c\\\\\\\\d\\[e\\]\\,f\\;g"
        );
    }

    #[test]
    fn graph_shapes() {
        let p = plan(&video(1280, 720), Some(Reframe::Blur), None).unwrap();
        let mark = ImageMark {
            path: "/x.png".into(),
            corner: Corner::BottomRight,
            opacity: 0.5,
            width_ratio: 0.2,
            margin_ratio: 0.02,
        };
        let g = filtergraph(&p, Some(Path::new("/tmp/s.ass")), Some(&mark));
        assert!(g.starts_with("[0:v]split=2[bgsrc][fgsrc];"), "{g}");
        assert!(
            g.contains("[bg][fg]overlay=x=0:y=656:format=yuv420[pic]"),
            "{g}"
        );
        assert!(g.contains("[pic]ass=filename=/tmp/s.ass[subs]"), "{g}");
        assert!(g.contains("[1:v]scale=216:-2"), "{g}");
        assert!(g.contains("[subs][mark]overlay=x=W-w-22:y=H-h-22"), "{g}");
        assert!(g.ends_with("[marked]format=yuv420p[v]"), "{g}");
        let p = plan(&video(1280, 720), None, None).unwrap();
        assert_eq!(filtergraph(&p, None, None), "[0:v]format=yuv420p[v]");
    }

    #[test]
    fn progress_lines() {
        assert_eq!(parse_progress_line("out_time_us=1500000"), Some(1500));
        assert_eq!(parse_progress_line("out_time_ms=2000000"), Some(2000));
        assert_eq!(parse_progress_line("out_time_us=N/A"), None);
        assert_eq!(parse_progress_line("out_time_us=-5"), None);
        assert_eq!(parse_progress_line("frame=10"), None);
    }
}
