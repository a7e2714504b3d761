//! `autosub process` writes what it wrote before the job moved into the core (`autosub_core::job`, commit ddd1ea9,
//! where the byte-for-byte check passed on the machine that made the goldens). Whisper's numbers differ slightly
//! between CPUs (and builds of the model), so across machines the check is: the same files; the same style header
//! of the ASS script and as many events; as many cues with the same words (punctuation and case aside, at most 10 %
//! of words different) at times within a second; the summary equal but for the recognition's own measures; the
//! video and audio files with the same streams, sizes and duration (`media.txt`, from ffprobe).
//! `AUTOSUB_BLESS=1` rewrites the goldens with the binary under test, and `AUTOSUB_GOLDEN_BIN` runs another binary.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (case name, options of `autosub process`).
const CASES: &[(&str, &[&str])] = &[
    ("default", &[]),
    (
        "vertical",
        &[
            "--vertical",
            "crop",
            "--style",
            "boxed",
            "--watermark",
            "@autosub",
            "--watermark-corner",
            "bottom-left",
            "--max-height",
            "720",
            "--quality",
            "fast",
        ],
    ),
    (
        "voice",
        &[
            "--voiceover",
            "espeak:en-us",
            "--voiceover-mode",
            "replace",
            "--no-video",
            "--translate",
            "en",
            "--format",
            "srt,json",
        ],
    ),
];

fn golden_dir(case: &str) -> PathBuf {
    common::repo_root()
        .join("tests/fixtures/golden/process")
        .join(case)
}

/// Drops what is measured, not computed (stage times, encode times), and names the temporary folder `TMP`.
fn normalise(v: &mut serde_json::Value, tmp: &str) {
    match v {
        serde_json::Value::Object(m) => {
            m.remove("timings_ms");
            m.remove("elapsed_ms");
            for x in m.values_mut() {
                normalise(x, tmp);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| normalise(x, tmp)),
        serde_json::Value::String(s) if s.contains(tmp) => *s = s.replace(tmp, "TMP"),
        _ => {}
    }
}

/// The streams, picture size and duration (to 0.1 s) of a media file, from ffprobe.
fn media_facts(path: &Path) -> String {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,width,height:format=duration",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams: Vec<String> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let size = match (s["width"].as_u64(), s["height"].as_u64()) {
                (Some(w), Some(h)) => format!(" {w}x{h}"),
                _ => String::new(),
            };
            format!(
                "{}:{}{size}",
                s["codec_type"].as_str().unwrap_or("?"),
                s["codec_name"].as_str().unwrap_or("?")
            )
        })
        .collect();
    let d: f64 = v["format"]["duration"]
        .as_str()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0.0);
    format!("{} duration={:.1}", streams.join(","), d)
}

/// What a run produced, as the golden folder stores it: text files as they are (JSON normalised), media files as
/// their hashes in `media.sha256`, the `--json` summary as `summary.json`.
fn produced(out: &Path, tmp: &Path, summary: &str) -> BTreeMap<String, Vec<u8>> {
    let tmp_s = tmp.to_str().unwrap();
    let mut files = BTreeMap::new();
    let mut hashes = String::new();
    let mut names: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        match p.extension().and_then(|e| e.to_str()) {
            Some("mp4" | "m4a") => hashes.push_str(&format!("{name}: {}\n", media_facts(&p))),
            Some("json") => {
                let mut v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                normalise(&mut v, tmp_s);
                files.insert(name, serde_json::to_vec_pretty(&v).unwrap());
            }
            _ => {
                files.insert(name, std::fs::read(&p).unwrap());
            }
        }
    }
    files.insert("media.txt".into(), hashes.into_bytes());
    let mut v: serde_json::Value = serde_json::from_str(summary).unwrap();
    normalise(&mut v, tmp_s);
    files.insert(
        "summary.json".into(),
        serde_json::to_vec_pretty(&v).unwrap(),
    );
    files
}

#[test]
fn process_writes_what_it_wrote_before_the_job_moved_into_the_core() {
    let bless = std::env::var_os("AUTOSUB_BLESS").is_some();
    let bin = std::env::var_os("AUTOSUB_GOLDEN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(common::bin);
    let models = common::models_dir();
    let mut failures = Vec::new();
    for (case, extra) in CASES {
        let tmp = tempfile::tempdir().unwrap();
        // A fixed path inside the temporary folder, so that the names are the same on every run.
        let out = tmp.path().join("out");
        let input = tmp.path().join("sample.mp4");
        std::fs::copy(common::sample(), &input).unwrap();
        let run = Command::new(&bin)
            .args(["-q", "process", "--json"])
            .args(*extra)
            .arg("--out")
            .arg(&out)
            .arg(&input)
            .env("AUTOSUB_MODELS_DIR", &models)
            .env("AUTOSUB_MODEL", common::TEST_MODEL)
            .env("AUTOSUB_PIPER_NOISE", "0")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
        assert!(
            run.status.success(),
            "{case}: {}\n{stdout}",
            String::from_utf8_lossy(&run.stderr)
        );
        let got = produced(&out, tmp.path(), &stdout);
        let dir = golden_dir(case);
        if bless {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (name, bytes) in &got {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
            continue;
        }
        let mut want = BTreeMap::new();
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let p = e.unwrap().path();
            want.insert(
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            );
        }
        let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
        if names(&got) != names(&want) {
            failures.push(format!(
                "{case}: files {:?}, expected {:?}",
                names(&got),
                names(&want)
            ));
            continue;
        }
        for (name, bytes) in &got {
            if let Some(why) = differs(name, bytes, &want[name]) {
                failures.push(format!(
                    "{case}/{name} differs ({why}):\n--- got\n{}\n--- expected\n{}",
                    String::from_utf8_lossy(bytes),
                    String::from_utf8_lossy(&want[name])
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Cues of an SRT or WebVTT file: (start ms, end ms, text).
fn cues(text: &str) -> Vec<(i64, i64, String)> {
    let ms = |t: &str| -> i64 {
        let t = t.trim().replace(',', ".");
        let (hms, frac) = t.split_once('.').unwrap_or((&t, "0"));
        let parts: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
        let (h, m, s) = match parts[..] {
            [h, m, s] => (h, m, s),
            [m, s] => (0, m, s),
            _ => panic!("time {t}"),
        };
        ((h * 60 + m) * 60 + s) * 1000 + frac.parse::<i64>().unwrap()
    };
    let mut out = Vec::new();
    for block in text.replace("\r\n", "\n").split("\n\n") {
        let lines: Vec<&str> = block.lines().collect();
        if let Some(i) = lines.iter().position(|l| l.contains(" --> ")) {
            let (a, b) = lines[i].split_once(" --> ").unwrap();
            let b = b.split_whitespace().next().unwrap();
            out.push((ms(a), ms(b), lines[i + 1..].join(" ")));
        }
    }
    out
}

/// The words of `a` and `b` differ in at most 10 % (at least one word allowed).
fn words_close(a: &str, b: &str) -> bool {
    let (a, b) = (common::norm_words(a), common::norm_words(b));
    common::edit_distance(&a, &b) * 10 <= a.len().max(b.len()).max(10)
}

/// Why a produced file does not match its golden, within what recognition may vary across machines.
fn differs(name: &str, got: &[u8], want: &[u8]) -> Option<String> {
    let (g, w) = (String::from_utf8_lossy(got), String::from_utf8_lossy(want));
    if name.ends_with(".srt") || name.ends_with(".vtt") {
        let (gc, wc) = (cues(&g), cues(&w));
        if gc.len() != wc.len() {
            return Some(format!("{} cues, expected {}", gc.len(), wc.len()));
        }
        for (x, y) in gc.iter().zip(&wc) {
            if (x.0 - y.0).abs() > 1000 || (x.1 - y.1).abs() > 1000 {
                return Some(format!("cue at {} ms: times more than 1 s apart", y.0));
            }
        }
        let all =
            |c: &[(i64, i64, String)]| c.iter().map(|x| x.2.clone()).collect::<Vec<_>>().join(" ");
        return (!words_close(&all(&gc), &all(&wc))).then(|| "words".into());
    }
    if name.ends_with(".ass") {
        let split = |s: &str| {
            s.split_once("[Events]")
                .map(|(h, e)| (h.to_owned(), e.matches("\nDialogue:").count()))
        };
        return match (split(&g), split(&w)) {
            (Some((gh, ge)), Some((wh, we))) if gh == wh && ge == we => None,
            (Some((gh, _)), Some((wh, _))) if gh != wh => Some("style header".into()),
            _ => Some("number of events".into()),
        };
    }
    if name.ends_with(".json") {
        let mut gv: serde_json::Value = serde_json::from_str(&g).unwrap();
        let mut wv: serde_json::Value = serde_json::from_str(&w).unwrap();
        if name == "summary.json" {
            let words = |v: &serde_json::Value| v["words"].as_i64().unwrap_or(0);
            let (gw, ww) = (words(&gv), words(&wv));
            if (gw - ww).abs() * 10 > ww.max(10) {
                return Some(format!("{gw} words, expected {ww}"));
            }
            for v in [&mut gv, &mut wv] {
                let m = v.as_object_mut().unwrap();
                m.remove("language_probability");
                m.remove("words");
                coarse(v);
            }
            return (gv != wv).then(|| "fields".into());
        }
        // The document: same language and cue count, words close.
        let text = |v: &serde_json::Value| -> String {
            v["cues"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|c| c["lines"].as_array().unwrap().iter())
                .map(|l| l.as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        if gv["language"] != wv["language"]
            || gv["cues"].as_array().map(Vec::len) != wv["cues"].as_array().map(Vec::len)
        {
            return Some("language or cue count".into());
        }
        return (!words_close(&text(&gv), &text(&wv))).then(|| "words".into());
    }
    (got != want).then(|| "content".into())
}

/// Keeps of each voice-over line (an object with a `fit`) what does not follow from recognition's exact times: which
/// cue it speaks and how it fitted.
fn coarse(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) if m.contains_key("fit") => {
            m.retain(|k, _| k == "cue" || k == "fit")
        }
        serde_json::Value::Object(m) => m.values_mut().for_each(coarse),
        serde_json::Value::Array(a) => a.iter_mut().for_each(coarse),
        _ => {}
    }
}
