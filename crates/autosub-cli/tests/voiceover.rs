//! Voice-over end to end on the real binary: real speech transcribed into dense subtitles, spoken back by the
//! installed voices (Piper for English, Festival for Russian) and transcribed again (intelligibility); line timing
//! measured on the output audio; ducking and replacing measured on a rendered video; one video encode for
//! `process --translate --voiceover --vertical`; the audio file of `--no-video`; `lint --voiceover`; `voices`.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Mono f32 samples of any media file at `rate` Hz (ffmpeg).
fn decode(path: &Path, rate: u32) -> Vec<f32> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args([
            "-vn",
            "-ac",
            "1",
            "-ar",
            &rate.to_string(),
            "-f",
            "f32le",
            "-",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn ffprobe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
        ])
        .arg(path)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// 10 ms frame levels in dBFS.
fn frame_db(samples: &[f32], rate: u32) -> Vec<f32> {
    samples
        .chunks((rate / 100) as usize)
        .map(|c| {
            let e = c.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / c.len().max(1) as f64;
            (10.0 * (e + 1e-12).log10()) as f32
        })
        .collect()
}

/// Real English speech, about 36 s: the four English corpus clips one after another.
fn english_speech(dir: &Path) -> PathBuf {
    let en = corpus().join("speech/en");
    let list = dir.join("list.txt");
    let names = [
        "en_jfk_inaugural_1961.wav",
        "en_ljspeech_LJ001-0001.wav",
        "en_ljspeech_LJ001-0003.wav",
        "en_librispeech_quilter.wav",
    ];
    let mut text = String::new();
    for n in names {
        text.push_str(&format!("file '{}'\n", en.join(n).display()));
    }
    std::fs::write(&list, text).unwrap();
    let out = dir.join("english.wav");
    ffmpeg(&[
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        list.to_str().unwrap(),
        "-ac",
        "1",
        "-ar",
        "16000",
        out.to_str().unwrap(),
    ]);
    out
}

/// Reading speed the transcript of a voice-over is cut for. A line is spoken up to 1.35 times faster to fit its
/// slot, so the voice can run at 1.35 x 17 = 23 characters per second where the standard profile allows 17: the
/// segmenter then reports `too-fast`, as documented; a CI run failed on a 17.2 cps cue in Piper's
/// "From most if not from all the arts and crafts represented in the exhibition" (76 characters in 3.9 s of speech).
const VOICE_CPS: &str = "23";

/// `autosub -q speak SUBS -o OUT --json EXTRA...`: the per-line report.
fn speak(subs: &Path, out: &Path, extra: &[&str]) -> Value {
    let mut args: Vec<std::ffi::OsString> = vec![
        "-q".into(),
        "speak".into(),
        subs.into(),
        "-o".into(),
        out.into(),
        "--json".into(),
    ];
    args.extend(extra.iter().map(Into::into));
    let r = autosub(args).ok();
    serde_json::from_str(&r.stdout).unwrap()
}

/// Word error rate of `hypothesis` against `reference`.
fn wer(reference: &str, hypothesis: &str) -> f64 {
    let r = norm_words(reference);
    let h = norm_words(hypothesis);
    edit_distance(&r, &h) as f64 / r.len().max(1) as f64
}

fn cue_text(doc: &Value) -> String {
    doc["cues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn english_subtitles_spoken_by_piper_come_back_word_for_word_and_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let speech = english_speech(dir.path());
    let doc = transcribe_json(&speech, &["--lang", "en"]);
    let subs = dir.path().join("english.json");
    std::fs::write(&subs, doc.to_string()).unwrap();
    let voice = dir.path().join("voice.wav");
    let report = speak(&subs, &voice, &[]);
    assert!(
        report["voice"].as_str().unwrap().starts_with("piper:"),
        "{report}"
    );

    // Intelligibility: the project's own recogniser hears the lines' text.
    let back = transcribe_json(&voice, &["--lang", "en", "--max-cps", VOICE_CPS]);
    let w = wer(&cue_text(&doc), &doc_text(&back));
    eprintln!(
        "English, Piper: WER {:.1} % ({} cues)",
        w * 100.0,
        doc["cues"].as_array().unwrap().len()
    );
    assert!(
        w <= 0.10,
        "WER {w:.3}: {}\nvs {}",
        cue_text(&doc),
        doc_text(&back)
    );

    // Timing, measured on the audio: every voiced line starts within 50 ms of its cue and is silent again before
    // the next cue starts.
    let rate = 16_000;
    let db = frame_db(&decode(&voice, rate), rate);
    let voiced = |f: usize| db.get(f).is_some_and(|d| *d > -45.0);
    let cues = doc["cues"].as_array().unwrap();
    let lines = report["report"].as_array().unwrap();
    let mut checked = 0;
    for (i, l) in lines.iter().enumerate() {
        if l["end_ms"].as_u64() == l["start_ms"].as_u64() {
            continue;
        }
        let start = cues[i]["start_ms"].as_u64().unwrap() as usize / 10;
        // The first frame of speech after a silence, from 50 ms before the cue on.
        let onset = (start.saturating_sub(5)..start + 100)
            .find(|f| voiced(*f) && voiced(f + 1) && (*f == 0 || !voiced(f - 1)))
            .unwrap_or_else(|| panic!("cue {i}: no speech starts near {} ms", start * 10));
        assert!(
            (onset as i64 - start as i64).abs() * 10 <= 50,
            "cue {i}: speech at {} ms, cue at {} ms",
            onset * 10,
            start * 10
        );
        if let Some(next) = cues.get(i + 1) {
            let next_start = next["start_ms"].as_u64().unwrap() as usize / 10;
            assert!(
                (next_start - 3..next_start).all(|f| !voiced(f)),
                "cue {i}: still speaking when cue {} starts at {} ms",
                i + 1,
                next_start * 10
            );
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} lines voiced");
}

/// Russian subtitles as a translation would give them: whole sentences, one per cue, about 70 s of dense
/// dialogue (cues of 3.5-4.5 s, 0.2 s apart). The first six are the sentences of the engine's own round-trip test
/// (crates/autosub-core/tests/tts.rs); all sixteen were written before any was measured.
const RUSSIAN: &[&str] = &[
    "Сегодня хорошая погода, и мы пойдём гулять в парк.",
    "Пожалуйста, отправьте мне отчёт до завтрашней встречи.",
    "Мой брат купил новую машину на прошлой неделе.",
    "Она любит читать книги по вечерам.",
    "Нам нужно больше времени, чтобы закончить этот проект.",
    "Дети играют в саду за домом.",
    "Добрый вечер, дорогие друзья.",
    "Сегодня мы поговорим о погоде в городе.",
    "Утром было холодно, а днём выглянуло солнце.",
    "Завтра обещают сильный ветер и дождь.",
    "Не забудьте взять с собой тёплую куртку.",
    "Дети пойдут в школу к девяти часам утра.",
    "Магазины откроются после обеда.",
    "Вечером в парке будет играть оркестр.",
    "Приходите всей семьёй, вход свободный.",
    "Спасибо, что были с нами, до свидания.",
];

#[test]
fn russian_subtitles_spoken_by_festival_are_understood() {
    let dir = tempfile::tempdir().unwrap();
    let mut srt = String::new();
    let ts = |ms: u64| {
        format!(
            "00:{:02}:{:02},{:03}",
            ms / 60_000,
            ms / 1000 % 60,
            ms % 1000
        )
    };
    let mut t = 500;
    for (i, text) in RUSSIAN.iter().enumerate() {
        // Longer sentences get longer cues, as the segmenter's reading-speed rule would give them.
        let len = 3500 + (text.chars().count() as u64).saturating_sub(30) * 40;
        srt.push_str(&format!(
            "{}\n{} --> {}\n{text}\n\n",
            i + 1,
            ts(t),
            ts(t + len)
        ));
        t += len + 200;
    }
    let subs = dir.path().join("ru.srt");
    std::fs::write(&subs, srt).unwrap();
    let voice = dir.path().join("voice.wav");
    let report = speak(&subs, &voice, &["--lang", "ru"]);
    assert_eq!(report["voice"], "festival:msu_ru_nsh_clunits", "{report}");
    let back = transcribe_json(&voice, &["--lang", "ru", "--max-cps", VOICE_CPS]);
    let reference = RUSSIAN.join(" ");
    let w = wer(&reference, &doc_text(&back));
    eprintln!("Russian, Festival: WER {:.1} %", w * 100.0);
    assert!(w <= 0.25, "WER {w:.3}: {reference}\nvs {}", doc_text(&back));
}

/// A 12 s video whose sound is a steady 440 Hz tone, and two English cues.
fn tone_video(dir: &Path) -> (PathBuf, PathBuf) {
    let video = dir.join("tone.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=navy:s=320x240:r=25:d=12",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000:duration=12",
        "-af",
        "volume=0.2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-shortest",
        video.to_str().unwrap(),
    ]);
    let subs = dir.join("tone.srt");
    std::fs::write(
        &subs,
        "1\n00:00:02,000 --> 00:00:04,500\nThe weather is fine today.\n\n2\n00:00:07,000 --> 00:00:09,500\nWe \
         shall meet again tomorrow.\n",
    )
    .unwrap();
    (video, subs)
}

/// Amplitude of 440 Hz (Goertzel) in each 100 ms block of 16 kHz samples, in dB.
fn tone_db(samples: &[f32]) -> Vec<f64> {
    let n = 1600;
    let k = 440.0 * n as f64 / 16_000.0;
    let w = 2.0 * std::f64::consts::PI * k / n as f64;
    samples
        .chunks(n)
        .map(|c| {
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            for x in c {
                let s = *x as f64 + 2.0 * w.cos() * s1 - s2;
                s2 = s1;
                s1 = s;
            }
            let p = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
            10.0 * (p.max(1e-12) / (n * n) as f64).log10()
        })
        .collect()
}

fn render_voiced(video: &Path, subs: &Path, out: &Path, mode: &str) -> Value {
    let r = autosub([
        "-q".as_ref(),
        "render".as_ref(),
        video.as_os_str(),
        subs.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--lang".as_ref(),
        "en".as_ref(),
        "--voiceover".as_ref(),
        "--voiceover-mode".as_ref(),
        mode.as_ref(),
        "--quality".as_ref(),
        "fast".as_ref(),
        "--json".as_ref(),
    ])
    .ok();
    serde_json::from_str(&r.stdout).unwrap()
}

#[test]
fn ducking_lowers_the_original_only_while_the_voice_speaks_and_replace_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (video, subs) = tone_video(dir.path());
    let before = tone_db(&decode(&video, 16_000));
    let level = before[5..20].iter().sum::<f64>() / 15.0;

    let ducked = dir.path().join("ducked.mp4");
    let summary = render_voiced(&video, &subs, &ducked, "duck");
    assert_eq!(summary["voiceover"]["mode"], "duck");
    let probe = ffprobe(&ducked);
    let audio: Vec<&Value> = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["codec_type"] == "audio")
        .collect();
    assert_eq!(audio.len(), 1);
    assert_eq!(audio[0]["codec_name"], "aac");
    let after = tone_db(&decode(&ducked, 16_000));
    let lines = summary["voiceover"]["report"].as_array().unwrap();
    // Blocks well inside the voiced lines, and blocks far from them.
    let mut inside = Vec::new();
    for l in lines {
        let (s, e) = (
            l["start_ms"].as_u64().unwrap(),
            l["end_ms"].as_u64().unwrap(),
        );
        assert!(e > s + 500, "{l}");
        inside.extend((s / 100 + 3)..(e / 100).saturating_sub(2));
    }
    let quiet: Vec<u64> = (3..15).chain(55..65).chain(105..118).collect();
    let mean = |blocks: &[u64]| {
        blocks.iter().map(|b| after[*b as usize]).sum::<f64>() / blocks.len() as f64
    };
    let (during, apart) = (mean(&inside), mean(&quiet));
    eprintln!(
        "tone {level:.1} dB before; {apart:.1} dB apart from the voice, {during:.1} dB under it"
    );
    assert!(
        (apart - level).abs() <= 1.5,
        "the original changed away from the voice: {apart:.1} vs {level:.1}"
    );
    assert!(
        during <= level - 6.0,
        "not ducked under the voice: {during:.1} vs {level:.1}"
    );

    let replaced = dir.path().join("replaced.mp4");
    render_voiced(&video, &subs, &replaced, "replace");
    // Only the voice is left: where it is silent, so is the track (speech has some energy at 440 Hz too).
    let after = tone_db(&decode(&replaced, 16_000));
    let loudest = quiet
        .iter()
        .map(|b| after[*b as usize])
        .fold(f64::MIN, f64::max);
    assert!(
        loudest <= level - 30.0,
        "the original is still there: {loudest:.1} vs {level:.1}"
    );
}

#[test]
fn process_translate_voiceover_vertical_is_one_encode() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("russian.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=darkgreen:s=640x360:r=25:d=20",
        "-i",
        corpus()
            .join("speech/untranscribed/ru_silero_vad_60s.wav")
            .to_str()
            .unwrap(),
        "-t",
        "20",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-shortest",
        video.to_str().unwrap(),
    ]);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let log = dir.path().join("commands.log");
    let r: Run = Command::new(bin())
        .args([
            "-q",
            "process",
            "--translate",
            "en",
            "--voiceover",
            "--vertical",
            "--quality",
            "fast",
            "--json",
        ])
        .arg("--out")
        .arg(&out)
        .arg(&video)
        .env("AUTOSUB_MODELS_DIR", models_dir())
        .env("AUTOSUB_MODEL", TEST_MODEL)
        .env("AUTOSUB_PIPER_NOISE", "0")
        .env("AUTOSUB_COMMAND_LOG", &log)
        .output()
        .unwrap()
        .into();
    let r = r.ok();
    let summary: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(summary["burned_language"], "en");
    assert!(
        summary["voiceover"]["voice"]
            .as_str()
            .unwrap()
            .starts_with("piper:en"),
        "{summary}"
    );
    assert!(summary["voiceover"]["lines"].as_u64().unwrap() >= 3);
    let mp4 = out.join("russian.autosub.mp4");
    let probe = ffprobe(&mp4);
    let streams = probe["streams"].as_array().unwrap();
    // 9:16 at the input's own width (never upscaled).
    let v = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    let (w, h) = (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap());
    assert_eq!(w, 640);
    assert!((h as f64 / w as f64 - 16.0 / 9.0).abs() < 0.01, "{w}x{h}");
    assert!(streams
        .iter()
        .any(|s| s["codec_type"] == "audio" && s["codec_name"] == "aac"));
    let commands = std::fs::read_to_string(&log).unwrap();
    let encodes: Vec<&str> = commands.lines().filter(|l| l.contains("libx264")).collect();
    assert_eq!(encodes.len(), 1, "one video encode:\n{commands}");
    // The voice is mixed in that same encode, and no other ffmpeg run touches the audio.
    assert!(
        encodes[0].contains("voice.wav") && encodes[0].contains("sidechaincompress"),
        "{}",
        encodes[0]
    );
    let graphs = commands
        .lines()
        .filter(|l| l.contains("-filter_complex"))
        .count();
    assert_eq!(graphs, 1, "{commands}");
}

#[test]
fn without_video_the_voiceover_is_an_audio_file() {
    let out = tempfile::tempdir().unwrap();
    let r = process(
        &sample(),
        out.path(),
        &[
            "--no-video",
            "--voiceover",
            "--voiceover-mode",
            "replace",
            "--lang",
            "en",
            "--json",
        ],
    )
    .ok();
    let summary: Value = serde_json::from_str(&r.stdout).unwrap();
    let audio = PathBuf::from(summary["outputs"]["voiceover_audio"].as_str().unwrap());
    assert_eq!(audio, out.path().join("sample.voiceover.m4a"));
    let probe = ffprobe(&audio);
    let streams = probe["streams"].as_array().unwrap();
    assert!(streams.iter().all(|s| s["codec_type"] == "audio"));
    let dur: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((dur - 11.0).abs() < 0.5, "{dur}");
    assert!(!out.path().join("sample.autosub.mp4").exists());
    // The voice is there: the recogniser hears the subtitles' words.
    let back = transcribe_json(&audio, &["--lang", "en", "--max-cps", VOICE_CPS]);
    assert!(
        doc_text(&back).to_lowercase().contains("country"),
        "{}",
        doc_text(&back)
    );
}

#[test]
fn lint_reports_lines_whose_voiceover_cannot_fit() {
    let dir = tempfile::tempdir().unwrap();
    let srt = dir.path().join("dense.srt");
    std::fs::write(
        &srt,
        "1\n00:00:01,000 --> 00:00:01,900\nThis sentence is far too long to be spoken in under a second.\n\n2\n\
         00:00:02,000 --> 00:00:04,000\nShort.\n",
    )
    .unwrap();
    let r = autosub([
        "lint".as_ref(),
        srt.as_os_str(),
        "--voiceover".as_ref(),
        "espeak:en-us".as_ref(),
        "--json".as_ref(),
    ]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let hits: Vec<&Value> = v["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["rule"] == "voiceover-too-long")
        .collect();
    assert_eq!(hits.len(), 1, "{v}");
    assert_eq!(hits[0]["cue"], 1);
}

#[test]
fn voices_are_listed_per_language_best_first() {
    let r = autosub(["voices", "--json"]).ok();
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let best = |lang: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|l| l["language"] == lang)
            .and_then(|l| l["best"].as_str().map(str::to_owned))
    };
    assert_eq!(best("en").as_deref(), Some("piper:en_US-joe-medium"));
    assert_eq!(best("ru").as_deref(), Some("festival:msu_ru_nsh_clunits"));
    assert!(best("de").unwrap().starts_with("espeak:"));
    // Bad voice-over options fail at once, before any work, with the documented exit codes.
    let input = sample();
    let input = input.to_str().unwrap();
    let t0 = std::time::Instant::now();
    let missing = autosub([
        "-q",
        "process",
        "--voiceover",
        "nosuchvoice",
        "--lang",
        "en",
        input,
    ]);
    assert_eq!(missing.code, 4, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("setup-voices.sh"),
        "{}",
        missing.stderr
    );
    let mode = autosub([
        "-q",
        "process",
        "--voiceover",
        "--voiceover-mode",
        "loud",
        input,
    ]);
    assert_eq!(mode.code, 3, "{}", mode.stderr);
    assert!(mode.stderr.contains("duck or replace"), "{}", mode.stderr);
    let fast = autosub(["-q", "process", "--voiceover", "--max-speedup", "5", input]);
    assert_eq!(fast.code, 3, "{}", fast.stderr);
    let lone = autosub(["-q", "process", "--voiceover-mode", "replace", input]);
    assert_eq!(lone.code, 3, "{}", lone.stderr);
    assert!(
        t0.elapsed().as_secs() < 10,
        "bad options took {:?}",
        t0.elapsed()
    );
}
