//! The finished video: `autosub process --vertical ...` and `autosub render`, checked with ffprobe, with OCR
//! (tesseract) of frames at cue midpoints, with pixels, and with the log of the commands that ran.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `-q render EXTRA... -- VIDEO SUBS`.
fn render(video: &Path, subs: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<std::ffi::OsString> = vec!["-q".into(), "render".into()];
    args.extend(extra.iter().map(Into::into));
    args.extend(["--".into(), video.into(), subs.into()]);
    autosub(args)
}

fn ffprobe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe {}", path.display());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stream<'a>(probe: &'a Value, kind: &str) -> Option<&'a Value> {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == kind)
}

fn secs(v: &Value) -> f64 {
    v.as_str().unwrap().parse().unwrap()
}

fn rate(v: &Value) -> f64 {
    let (n, d) = v.as_str().unwrap().split_once('/').unwrap();
    n.parse::<f64>().unwrap() / d.parse::<f64>().unwrap()
}

/// The output is a standard H.264 yuv420p + AAC MP4 of `w`x`h` with square pixels, upright, and as long as
/// `input` to within one frame.
fn assert_video(out: &Path, input: &Path, w: u64, h: u64) -> Value {
    let p = ffprobe(out);
    let v = stream(&p, "video").expect("a video stream");
    assert_eq!(v["codec_name"], "h264");
    assert_eq!(v["pix_fmt"], "yuv420p");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(w), Some(h))
    );
    assert!(
        v["sample_aspect_ratio"].is_null() || v["sample_aspect_ratio"] == "1:1",
        "{v}"
    );
    assert!(
        v["side_data_list"].is_null()
            || !v["side_data_list"].to_string().contains("rotation\":9")
                && !v["side_data_list"].to_string().contains("rotation\":-9"),
        "rotation left in the output: {v}"
    );
    let fps = rate(&v["avg_frame_rate"]);
    let input_dur = secs(&ffprobe(input)["format"]["duration"]);
    let dur = secs(&p["format"]["duration"]);
    let vdur = secs(&v["duration"]);
    assert!(
        (dur - input_dur).abs() <= 1.0 / fps + 1e-3,
        "duration {dur} vs input {input_dur}"
    );
    assert!(
        (vdur - input_dur).abs() <= 1.0 / fps + 0.05,
        "video stream lasts {vdur}, input {input_dur}"
    );
    if let Some(a) = stream(&p, "audio") {
        assert_eq!(a["codec_name"], "aac");
    }
    // +faststart: the index (moov) comes before the media data (mdat).
    let bytes = std::fs::read(out).unwrap();
    let find = |tag: &[u8]| bytes.windows(4).position(|w| w == tag).unwrap();
    assert!(
        find(b"moov") < find(b"mdat"),
        "moov after mdat: no faststart"
    );
    p
}

/// A real-footage video of `w`x`h` (the corpus flower clip, looped) with `audio` (or silence) for `secs`.
fn make_video(out: &Path, w: u32, h: u32, secs: f64, audio: Option<&Path>) {
    let flower = corpus().join("video/flower_16x9.mp4");
    let vf = format!("scale={w}:{h},setsar=1,fps=25");
    let t = format!("{secs}");
    let mut args: Vec<String> = vec!["-stream_loop".into(), "-1".into(), "-i".into()];
    args.push(flower.to_string_lossy().into_owned());
    match audio {
        Some(a) => {
            args.extend(["-i".into(), a.to_string_lossy().into_owned()]);
            args.extend(["-map".into(), "0:v".into(), "-map".into(), "1:a".into()]);
        }
        None => args.extend(["-map".into(), "0:v".into(), "-an".into()]),
    }
    args.extend(
        [
            "-t",
            &t,
            "-vf",
            &vf,
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "18",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
        ]
        .map(String::from),
    );
    args.push(out.to_string_lossy().into_owned());
    ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

fn jfk() -> PathBuf {
    corpus().join("speech/en/en_jfk_inaugural_1961.wav")
}

/// A word tesseract read, with its box in frame pixels.
#[derive(Debug)]
struct OcrWord {
    text: String,
    x: u32,
    y: u32,
    w: u32,
    h: u32,
}

/// OCR of the frame of `video` at `t` seconds, in the band from `from` to `to` (fractions of the height):
/// captions are white or yellow with a dark outline, so the band is thresholded (luma above `thresh`) to black
/// text on white. Tesseract reads it three ways (as a block, as sparse text, and as sparse text at twice the
/// size); the words of all three are returned, with boxes in frame pixels.
fn ocr(video: &Path, t: f64, band: (f64, f64), lang: &str, thresh: u8) -> Vec<OcrWord> {
    let (from, to) = band;
    let dir = tempfile::tempdir().unwrap();
    let full_h = stream(&ffprobe(video), "video").unwrap()["height"]
        .as_u64()
        .unwrap() as f64;
    let y0 = (full_h * from).floor() as u32;
    let mut words = Vec::new();
    for (scale, psm) in [(1, "6"), (1, "11"), (2, "11")] {
        let png = dir.path().join(format!("frame{scale}-{psm}.png"));
        let vf = format!(
            "crop=iw:{}:0:{y0},format=gray,lut=y='if(gt(val,{thresh}),0,255)',scale=iw*{scale}:ih*{scale}",
            ((to - from) * full_h).floor() as u32
        );
        ffmpeg(&[
            "-ss",
            &format!("{t:.3}"),
            "-i",
            video.to_str().unwrap(),
            "-frames:v",
            "1",
            "-vf",
            &vf,
            png.to_str().unwrap(),
        ]);
        let out = Command::new("tesseract")
            .arg(&png)
            .args(["-", "-l", lang, "--psm", psm, "tsv"])
            .output()
            .expect("tesseract is installed by scripts/setup.sh (tesseract-ocr, -eng, -rus)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        words.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .skip(1)
                .filter_map(|l| {
                    let f: Vec<&str> = l.split('\t').collect();
                    let text = f.get(11)?.trim();
                    if text.is_empty() {
                        return None;
                    }
                    let n = |i: usize| f[i].parse::<u32>().ok().map(|v| v / scale);
                    Some(OcrWord {
                        text: text.to_owned(),
                        x: n(6)?,
                        y: n(7)? + y0,
                        w: n(8)?,
                        h: n(9)?,
                    })
                }),
        );
    }
    words
}

/// Lower-case letters and digits of a word (any script).
fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The OCR words that match the words of `text`; fails unless every word of `text` was read.
fn assert_read<'a>(words: &'a [OcrWord], text: &str, what: &str) -> Vec<&'a OcrWord> {
    let mut found = Vec::new();
    for want in text.split_whitespace().map(norm).filter(|w| !w.is_empty()) {
        match words.iter().find(|w| norm(&w.text) == want) {
            Some(w) => found.push(w),
            None => panic!(
                "{what}: OCR did not read {want:?} of {text:?}; it read {:?}",
                words.iter().map(|w| &w.text).collect::<Vec<_>>()
            ),
        }
    }
    found
}

/// Cues of a JSON document as (midpoint seconds, text).
fn cue_midpoints(doc: &Value) -> Vec<(f64, String)> {
    doc["cues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mid = (c["start_ms"].as_f64().unwrap() + c["end_ms"].as_f64().unwrap()) / 2000.0;
            let lines: Vec<&str> = c["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap())
                .collect();
            (mid, lines.join(" "))
        })
        .collect()
}

fn encodes_in(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("ffmpeg") && l.contains("libx264"))
        .map(String::from)
        .collect()
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_owned()
}

#[test]
fn vertical_process_is_one_encode_with_readable_captions_in_the_safe_area() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("talk.mp4");
    make_video(&input, 1280, 720, 11.0, Some(&jfk()));
    let log = dir.path().join("commands.log");
    let mut args: Vec<std::ffi::OsString> = [
        "-q",
        "process",
        "--vertical",
        "--watermark",
        "@autosub",
        "--json",
    ]
    .map(Into::into)
    .to_vec();
    args.extend([
        "--out".into(),
        dir.path().into(),
        "--".into(),
        input.clone().into(),
    ]);
    let run: Run = Command::new(bin())
        .args(&args)
        .env("AUTOSUB_MODELS_DIR", models_dir())
        .env("AUTOSUB_MODEL", TEST_MODEL)
        .env("AUTOSUB_COMMAND_LOG", &log)
        .output()
        .unwrap()
        .into();
    let run = run.ok();
    let summary: Value = serde_json::from_str(&run.stdout).unwrap();
    let out = dir.path().join("talk.autosub.mp4");
    assert_eq!(summary["outputs"]["video"], out.to_str().unwrap());
    assert_eq!(
        summary["video"]["audio"], "copy",
        "AAC input audio is copied"
    );
    assert_eq!(summary["profile"], "shorts");
    assert!(summary["timings_ms"]["render"].as_u64().unwrap() > 0);
    assert_video(&out, &input, 1080, 1920);

    // Exactly one video encode in the whole run.
    let encodes = encodes_in(&log);
    assert_eq!(encodes.len(), 1, "{encodes:#?}");
    let all = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        all.lines().filter(|l| l.starts_with("ffmpeg")).count(),
        2,
        "{all}"
    );

    // Captions: read back at cue midpoints, inside the area the platforms leave free.
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("talk.json")).unwrap())
            .unwrap();
    let cues = cue_midpoints(&doc);
    assert!(cues.len() >= 4, "{cues:?}");
    let safe = autosub_subs::VERTICAL_SAFE_AREA;
    for (t, text) in [&cues[1], &cues[cues.len() / 2], &cues[cues.len() - 1]] {
        let words = ocr(&out, *t, (0.4, 1.0), "eng", 170);
        for w in assert_read(&words, text, &format!("vertical cue at {t:.2} s")) {
            assert!(
                f64::from(w.x) >= safe.left * 1080.0
                    && f64::from(w.x + w.w) <= (1.0 - safe.right) * 1080.0
                    && f64::from(w.y) >= safe.top * 1920.0
                    && f64::from(w.y + w.h) <= (1.0 - safe.bottom) * 1920.0,
                "{w:?} of {text:?} is outside the safe area"
            );
        }
    }
    // The watermark is in the top right corner.
    let top = ocr(&out, 2.0, (0.0, 0.1), "eng", 140);
    let mark = top
        .iter()
        .find(|w| norm(&w.text) == "autosub")
        .unwrap_or_else(|| panic!("watermark not read: {top:?}"));
    assert!(mark.x > 540 && mark.y < 200, "{mark:?}");
}

#[test]
fn normal_process_captions_are_readable_and_the_size_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("talk.mp4");
    make_video(&input, 1280, 720, 11.0, Some(&jfk()));
    process(
        &input,
        dir.path(),
        &["--quality", "fast", "--style", "boxed"],
    )
    .ok();
    let out = dir.path().join("talk.autosub.mp4");
    assert_video(&out, &input, 1280, 720);
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("talk.json")).unwrap())
            .unwrap();
    assert_eq!(doc["profile"], "standard");
    let cues = cue_midpoints(&doc);
    for (t, text) in [&cues[0], &cues[cues.len() - 1]] {
        let words = ocr(&out, *t, (0.6, 1.0), "eng", 170);
        for w in assert_read(&words, text, &format!("cue at {t:.2} s")) {
            assert!(w.y > 720 * 3 / 4, "caption not at the bottom: {w:?}");
        }
    }
}

#[test]
fn russian_captions_are_readable_in_normal_and_vertical_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clip.mp4");
    make_video(&input, 960, 540, 4.0, None);
    let srt = write(
        &dir.path().join("ru.srt"),
        "1\n00:00:00,500 --> 00:00:01,800\nДобрый вечер, друзья\n\n2\n00:00:02,000 --> 00:00:03,800\nСмотрите до конца\n",
    );
    let flat = dir.path().join("flat.mp4");
    render(
        &input,
        &srt,
        &["--output", flat.to_str().unwrap(), "--quality", "fast"],
    )
    .ok();
    assert_video(&flat, &input, 960, 540);
    assert_read(
        &ocr(&flat, 1.15, (0.6, 1.0), "rus", 170),
        "Добрый вечер, друзья",
        "normal, cue 1",
    );
    assert_read(
        &ocr(&flat, 2.9, (0.6, 1.0), "rus", 170),
        "Смотрите до конца",
        "normal, cue 2",
    );

    let tall = dir.path().join("tall.mp4");
    render(
        &input,
        &srt,
        &[
            "--output",
            tall.to_str().unwrap(),
            "--vertical",
            "crop",
            "--quality",
            "fast",
        ],
    )
    .ok();
    // Centre crop of 960x540: 302x540 of the frame, never scaled up.
    assert_video(&tall, &input, 302, 536);
    let tall_blur = dir.path().join("tall-blur.mp4");
    render(
        &input,
        &srt,
        &[
            "--output",
            tall_blur.to_str().unwrap(),
            "--vertical",
            "--quality",
            "fast",
        ],
    )
    .ok();
    assert_video(&tall_blur, &input, 960, 1706);
    let safe = autosub_subs::VERTICAL_SAFE_AREA;
    for w in assert_read(
        &ocr(&tall_blur, 1.15, (0.4, 1.0), "rus", 170),
        "Добрый вечер, друзья",
        "vertical",
    ) {
        assert!(f64::from(w.x + w.w) <= (1.0 - safe.right) * 960.0, "{w:?}");
        assert!(
            f64::from(w.y + w.h) <= (1.0 - safe.bottom) * 1706.0,
            "{w:?}"
        );
    }
}

#[test]
fn chinese_captions_render_with_a_cjk_font() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("clip.mp4");
    make_video(&input, 960, 540, 2.0, None);
    let srt = write(
        &dir.path().join("zh.srt"),
        "1\n00:00:00,200 --> 00:00:01,800\n今天天气很好\n",
    );
    let out = dir.path().join("zh.mp4");
    render_fast(&input, &srt, &out);
    let words = ocr(&out, 1.0, (0.6, 1.0), "chi_sim", 170);
    for c in "今天天气很好".chars() {
        assert!(
            words.iter().any(|w| w.text.contains(c)),
            "OCR did not read {c:?}: {:?}",
            words.iter().map(|w| &w.text).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_users_ass_style_file_is_used_for_the_captions() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("gray.mp4");
    synth(&input, "color=c=0x808080:s=640x360:r=25:d=2", &[]);
    // Big pure-red text, no outline, in a 320x180 layout (libass scales it to the video).
    let style = write(
        &dir.path().join("red.ass"),
        "[Script Info]\nPlayResX: 320\nPlayResY: 180\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\nStyle: Red,DejaVu Sans,40,&H000000FF,&H000000FF,&H00000000,&H00000000,-1,0,0,0,100,100,0,0,1,0,0,2,10,10,10,1\n",
    );
    let srt = write(
        &dir.path().join("s.srt"),
        "1\n00:00:00,000 --> 00:00:02,000\nHHHH\n",
    );
    let out = dir.path().join("o.mp4");
    render(
        &input,
        &srt,
        &[
            "--output",
            out.to_str().unwrap(),
            "--quality",
            "fast",
            "--style",
            style.to_str().unwrap(),
        ],
    )
    .ok();
    let px = frame_rgb(&out, 1.0);
    let red = (250 * 640..340 * 640)
        .filter(|i| px[i * 3] > 180 && px[i * 3 + 1] < 90 && px[i * 3 + 2] < 90)
        .count();
    // 40 px in a 180-line layout is 80 px on 360 lines: thousands of red pixels.
    assert!(red > 2000, "only {red} red pixels at the bottom");
}

#[test]
fn rotated_odd_sized_anamorphic_and_variable_rate_video_come_out_right() {
    let dir = tempfile::tempdir().unwrap();
    let srt = write(
        &dir.path().join("s.srt"),
        "1\n00:00:00,200 --> 00:00:01,500\nHello\n",
    );
    // Top half white, bottom half black, stored 320x180 and marked as turned a quarter.
    let plain = dir.path().join("plain.mp4");
    synth(
        &plain,
        "color=c=black:s=320x180:r=25:d=2",
        &["-vf", "drawbox=x=0:y=0:w=320:h=90:c=white:t=fill"],
    );
    let rotated = dir.path().join("rotated.mp4");
    ffmpeg(&[
        "-i",
        plain.to_str().unwrap(),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        rotated.to_str().unwrap(),
    ]);
    let rot_in = ffprobe(&rotated);
    assert!(
        rot_in.to_string().contains("rotat"),
        "the test input must carry rotation: {rot_in}"
    );
    let out = dir.path().join("rotated.autosub.mp4");
    render_fast(&rotated, &srt, &out);
    assert_video(&out, &rotated, 180, 320);
    // Upright: the white half (the top of the stored frame) is now on one side, left or right, not on top.
    let gray = frame_gray(&out, 1.0, 180, 320);
    let mean = |x0: usize, x1: usize, y0: usize, y1: usize| {
        let mut sum = 0u64;
        for y in y0..y1 {
            for x in x0..x1 {
                sum += u64::from(gray[y * 180 + x]);
            }
        }
        sum as f64 / ((x1 - x0) * (y1 - y0)) as f64
    };
    let (left, right) = (mean(0, 80, 0, 200), mean(100, 180, 0, 200));
    assert!(
        (left - right).abs() > 150.0,
        "not rotated: left {left}, right {right}"
    );

    // Odd size.
    let odd = dir.path().join("odd.mp4");
    synth(
        &odd,
        "testsrc2=s=321x177:r=25:d=2",
        &["-pix_fmt", "yuv444p"],
    );
    let out = dir.path().join("odd.autosub.mp4");
    render_fast(&odd, &srt, &out);
    assert_video(&out, &odd, 320, 176);

    // Non-square pixels: 720x576 with 16:11 pixels is 1047x576 on screen.
    let ana = dir.path().join("anamorphic.mp4");
    synth(
        &ana,
        "testsrc2=s=720x576:r=25:d=2",
        &["-vf", "setsar=16/11"],
    );
    let out = dir.path().join("ana.autosub.mp4");
    render_fast(&ana, &srt, &out);
    assert_video(&out, &ana, 1048, 576);

    // Variable frame rate: frames 40 ms apart for a second, then 100 ms apart.
    let vfr = dir.path().join("vfr.mp4");
    synth(
        &vfr,
        "testsrc2=s=320x240:r=25:d=3",
        &["-vf", "select='lt(t,1)+not(mod(n,5))'", "-fps_mode", "vfr"],
    );
    let vin = stream(&ffprobe(&vfr), "video").unwrap().clone();
    assert!(
        (rate(&vin["avg_frame_rate"]) - rate(&vin["r_frame_rate"])).abs() > 1.0,
        "the test input must be VFR: {vin}"
    );
    let out = dir.path().join("vfr.autosub.mp4");
    render_fast(&vfr, &srt, &out);
    let p = assert_video(&out, &vfr, 320, 240);
    let v = stream(&p, "video").unwrap();
    assert!(
        (rate(&v["avg_frame_rate"]) - rate(&v["r_frame_rate"])).abs() < 0.01,
        "output is not constant-rate: {v}"
    );
}

/// `render --output OUT --quality fast -- VIDEO SUBS`, which must succeed.
fn render_fast(video: &Path, subs: &Path, out: &Path) {
    render(
        video,
        subs,
        &["--output", out.to_str().unwrap(), "--quality", "fast"],
    )
    .ok();
}

/// `ffmpeg -f lavfi -i SOURCE EXTRA... -c:v libx264 -preset ultrafast OUT`: a synthetic test video.
fn synth(out: &Path, source: &str, extra: &[&str]) {
    let mut args = vec!["-f", "lavfi", "-i", source];
    args.extend_from_slice(extra);
    args.extend([
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        out.to_str().unwrap(),
    ]);
    ffmpeg(&args);
}

/// One frame of `video` at `t` as 8-bit gray pixels.
fn frame_gray(video: &Path, t: f64, w: usize, h: usize) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-ss", &format!("{t}"), "-i"])
        .arg(video)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .unwrap();
    assert_eq!(out.stdout.len(), w * h, "frame size");
    out.stdout
}

/// One frame of `video` at `t` as RGB pixels.
fn frame_rgb(video: &Path, t: f64) -> Vec<u8> {
    Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-ss", &format!("{t}"), "-i"])
        .arg(video)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap()
        .stdout
}

#[test]
fn hostile_paths_and_text_never_break_the_filtergraph() {
    let base = tempfile::tempdir().unwrap();
    // Every character the filtergraph and option syntax give a meaning to, in folder names and in text.
    let nasty = base.path().join("we'ird: [dir],;=%{pts} \\ \"q\"");
    std::fs::create_dir(&nasty).unwrap();
    let tmp = nasty.join("tmp 'x':[y]");
    std::fs::create_dir(&tmp).unwrap();
    let input = nasty.join("-in'put:[1].mp4");
    make_video(&input, 480, 270, 2.0, None);
    let srt = write(
        &nasty.join("sub's:[1].srt"),
        "1\n00:00:00,100 --> 00:00:01,900\n{\\b1}100% 'quoted': C:\\path\\N [x];a,b %{pts} {}\n",
    );
    let mark = write(&nasty.join("mark'[1]:x.png"), "");
    std::fs::remove_file(&mark).unwrap();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=64x64",
        "-frames:v",
        "1",
        "-update",
        "1",
        mark.to_str().unwrap(),
    ]);
    let out = nasty.join("out'put:[1].mp4");
    let run: Run = Command::new(bin())
        .args(["-q", "render", "--quality", "fast", "--watermark"])
        .arg(&mark)
        .arg("--output")
        .arg(&out)
        .arg("--")
        .arg(&input)
        .arg(&srt)
        .env("TMPDIR", &tmp)
        .output()
        .unwrap()
        .into();
    run.ok();
    assert_video(&out, &input, 480, 270);
    // The caption was really drawn: the bottom of the frame differs from the input's.
    let (a, b) = (
        frame_gray(&input, 1.0, 480, 270),
        frame_gray(&out, 1.0, 480, 270),
    );
    let band = 200 * 480..270 * 480;
    let diff: u64 = band
        .clone()
        .map(|i| u64::from(a[i].abs_diff(b[i])))
        .sum::<u64>()
        / band.len() as u64;
    assert!(diff > 5, "no caption drawn (mean difference {diff})");
    // A text watermark made of the same characters, burned over the user's own ASS file.
    let ass = nasty.join("s.ass");
    write(
        &ass,
        "[Script Info]\nPlayResX: 480\nPlayResY: 270\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\nStyle: Default,DejaVu Sans,24,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,2,0,2,10,10,10,1\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\nDialogue: 0,0:00:00.10,0:00:01.90,Default,,0,0,0,,{\\an8}top text\n",
    );
    let out2 = nasty.join("out2.mp4");
    let run: Run = Command::new(bin())
        .args([
            "-q",
            "render",
            "--quality",
            "fast",
            "--watermark",
            "'%{pts}: [a],;b\\c{\\b1}",
        ])
        .arg("--output")
        .arg(&out2)
        .arg("--")
        .arg(&input)
        .arg(&ass)
        .env("TMPDIR", &tmp)
        .output()
        .unwrap()
        .into();
    run.ok();
    assert_video(&out2, &input, 480, 270);
    // Nothing but the inputs and outputs is left behind.
    let mut names: Vec<String> = std::fs::read_dir(&nasty)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 7, "{names:?}");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

#[test]
fn image_watermark_goes_in_its_corner_with_its_opacity() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("gray.mp4");
    synth(&input, "color=c=0x808080:s=640x360:r=25:d=2", &[]);
    let mark = dir.path().join("mark.png");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=100x50",
        "-frames:v",
        "1",
        "-update",
        "1",
        mark.to_str().unwrap(),
    ]);
    let srt = write(
        &dir.path().join("s.srt"),
        "1\n00:00:00,000 --> 00:00:00,500\nx\n",
    );
    let out = dir.path().join("o.mp4");
    render(
        &input,
        &srt,
        &[
            "--output",
            out.to_str().unwrap(),
            "--quality",
            "fast",
            "--watermark",
            mark.to_str().unwrap(),
            "--watermark-corner",
            "bottom-left",
            "--watermark-opacity",
            "1",
        ],
    )
    .ok();
    let px = frame_rgb(&out, 1.0);
    let at = |x: usize, y: usize| {
        let i = (y * 640 + x) * 3;
        (px[i], px[i + 1], px[i + 2])
    };
    // 15 % of 640 = 96 px wide, 11 px from the left and bottom edges (3 % of 360).
    let (r, g, b) = at(11 + 48, 360 - 11 - 24);
    assert!(
        r > 200 && g < 80 && b < 80,
        "not red in the bottom left: {:?}",
        (r, g, b)
    );
    let (r, g, b) = at(600, 20);
    assert!(
        (r as i32 - 128).abs() < 20 && (g as i32 - r as i32).abs() < 20,
        "{:?}",
        (r, g, b)
    );

    // Half opacity: a blend of red and gray.
    let out = dir.path().join("half.mp4");
    render(
        &input,
        &srt,
        &[
            "--output",
            out.to_str().unwrap(),
            "--quality",
            "fast",
            "--watermark",
            mark.to_str().unwrap(),
            "--watermark-corner",
            "top-right",
            "--watermark-opacity",
            "0.5",
        ],
    )
    .ok();
    let px = frame_rgb(&out, 1.0);
    let i = (30 * 640 + (640 - 11 - 48)) * 3;
    let (r, g) = (px[i] as i32, px[i + 1] as i32);
    assert!(
        (170..=215).contains(&r) && (45..=90).contains(&g),
        "not a half blend: {r} {g}"
    );
}

#[test]
fn audio_only_input_gives_subtitles_and_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let run = process(&jfk(), dir.path(), &["--json"]).ok();
    let summary: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(summary["video"].is_null());
    assert!(
        summary["notes"][0]
            .as_str()
            .unwrap()
            .contains("no video was produced"),
        "{summary}"
    );
    assert!(dir.path().join("en_jfk_inaugural_1961.srt").exists());
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 4, "{names:?}");
    // Without --json the note is on stderr.
    let dir = tempfile::tempdir().unwrap();
    let run = autosub([
        "process".as_ref(),
        "--out".as_ref(),
        dir.path().as_os_str(),
        jfk().as_os_str(),
    ])
    .ok();
    assert!(
        run.stderr.contains("no video was produced"),
        "{}",
        run.stderr
    );
}

#[test]
fn no_video_flag_and_audio_codecs() {
    let dir = tempfile::tempdir().unwrap();
    process(&sample(), dir.path(), &["--no-video"]).ok();
    assert!(!dir.path().join("sample.autosub.mp4").exists());
    // Opus audio in WebM is re-encoded to AAC; a silent video stays silent.
    let webm = dir.path().join("clip.webm");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=25:d=2",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=2",
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-c:a",
        "libopus",
        webm.to_str().unwrap(),
    ]);
    let srt = write(
        &dir.path().join("s.srt"),
        "1\n00:00:00,000 --> 00:00:01,000\nhi\n",
    );
    let out = dir.path().join("webm.mp4");
    let run = render(
        &webm,
        &srt,
        &[
            "--output",
            out.to_str().unwrap(),
            "--quality",
            "fast",
            "--json",
        ],
    )
    .ok();
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["video"]["audio"], "aac");
    assert_video(&out, &webm, 320, 240);
    let silent = dir.path().join("silent.mp4");
    make_video(&silent, 320, 180, 2.0, None);
    let out = dir.path().join("silent-out.mp4");
    let run = render(
        &silent,
        &srt,
        &[
            "--output",
            out.to_str().unwrap(),
            "--quality",
            "fast",
            "--json",
        ],
    )
    .ok();
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["video"]["audio"], "none");
    assert!(stream(&ffprobe(&out), "audio").is_none());
}

#[test]
fn bad_video_options_fail_fast_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--style", "fancy"], "unknown style `fancy`"),
        (&["--watermark", "missing.png"], "watermark image"),
        (&["--vertical=sideways"], "unknown vertical mode"),
        (&["--quality", "ultra"], "unknown quality"),
        (
            &["--watermark-corner", "middle", "--watermark", "x"],
            "unknown corner",
        ),
        (&["--watermark", "x", "--watermark-opacity", "2"], "opacity"),
    ];
    for (extra, want) in cases {
        let t0 = std::time::Instant::now();
        let run = process(&sample(), dir.path(), extra);
        assert_eq!(run.code, 3, "{extra:?}: {}", run.stderr);
        assert!(run.stderr.contains(want), "{extra:?}: {}", run.stderr);
        // Refused before the model is even loaded.
        assert!(
            t0.elapsed().as_secs_f64() < 2.0,
            "{extra:?} took {:?}",
            t0.elapsed()
        );
    }
    let not_ass = write(&dir.path().join("style.ass"), "hello\n");
    let run = process(
        &sample(),
        dir.path(),
        &["--style", not_ass.to_str().unwrap()],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("Script Info"), "{}", run.stderr);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let srt = write(
        &dir.path().join("s.srt"),
        "1\n00:00:00,000 --> 00:00:01,000\nhi\n",
    );
    let run = render(
        &sample(),
        &srt,
        &["--output", dir.path().join("o.mkv").to_str().unwrap()],
    );
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains(".mp4"), "{}", run.stderr);
    let run = render(
        &jfk(),
        &srt,
        &["--output", dir.path().join("o.mp4").to_str().unwrap()],
    );
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("no video stream"), "{}", run.stderr);
    // `--vertical` right before the input is a flag, not the mode.
    let run = autosub([
        "-q".as_ref(),
        "render".as_ref(),
        "--quality".as_ref(),
        "fast".as_ref(),
        "--output".as_ref(),
        dir.path().join("v.mp4").as_os_str(),
        "--vertical".as_ref(),
        sample().as_os_str(),
        srt.as_os_str(),
    ])
    .ok();
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert_video(&dir.path().join("v.mp4"), &sample(), 320, 568);
}

#[test]
fn ctrl_c_during_render_stops_ffmpeg_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("long.mp4");
    synth(&input, "testsrc2=s=1280x720:r=25:d=40", &[]);
    let srt = write(
        &dir.path().join("s.srt"),
        "1\n00:00:00,000 --> 00:00:30,000\nhi\n",
    );
    let out = dir.path().join("out.mp4");
    let mut child = Command::new(bin())
        .args(["render", "--vertical", "--quality", "best", "--output"])
        .arg(&out)
        .arg(&input)
        .arg(&srt)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the partial output exists (ffmpeg is encoding), then interrupt.
    let t0 = std::time::Instant::now();
    let partial = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().contains("partial"))
    };
    while !partial() {
        assert!(t0.elapsed().as_secs() < 30, "no partial output appeared");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let t1 = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        t1.elapsed().as_secs() < 5,
        "took {:?} to stop",
        t1.elapsed()
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "left behind: {names:?}");
    // No ffmpeg of ours is still running.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let ps = Command::new("pgrep")
        .args(["-f", &dir.path().to_string_lossy()])
        .output()
        .unwrap();
    assert!(
        ps.stdout.is_empty(),
        "ffmpeg still running: {}",
        String::from_utf8_lossy(&ps.stdout)
    );
}
