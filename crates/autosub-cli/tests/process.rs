//! `autosub process` end to end on real media: outputs, formats, profiles, lint, cue timing.

mod common;
use common::*;
use std::path::Path;

fn lint(file: &Path, profile: &str) -> Run {
    autosub([
        "lint".as_ref(),
        file.as_os_str(),
        "--profile".as_ref(),
        profile.as_ref(),
    ])
}

#[test]
fn process_writes_all_formats_that_pass_lint() {
    let dir = tempfile::tempdir().unwrap();
    let run = process(&sample(), dir.path(), &["--json"]).ok();
    let summary: serde_json::Value =
        serde_json::from_str(&run.stdout).expect("--json prints JSON on stdout");
    assert_eq!(summary["language"], "en");
    assert!(summary["cues"].as_u64().unwrap() >= 2);
    for stage in ["probe", "extract_audio", "transcribe", "segment"] {
        assert!(
            summary["timings_ms"][stage].is_u64(),
            "timing of {stage} missing: {summary}"
        );
    }
    for ext in ["srt", "vtt", "ass", "json"] {
        let f = dir.path().join(format!("sample.{ext}"));
        assert_eq!(summary["outputs"][ext], f.to_str().unwrap());
        assert!(f.is_file(), "{ext} missing");
        let l = lint(&f, "standard");
        assert_eq!(l.code, 0, "lint {ext}: {}{}", l.stdout, l.stderr);
    }
    // The finished video, and nothing else (no temporary files).
    let video = dir.path().join("sample.autosub.mp4");
    assert_eq!(summary["outputs"]["video"], video.to_str().unwrap());
    assert!(summary["timings_ms"]["render"].is_u64(), "{summary}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 5);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("sample.json")).unwrap())
            .unwrap();
    assert!(!doc["cues"].as_array().unwrap().is_empty());
    assert_cue_starts_near_words(&doc, "sample");
    assert!(doc["words"][0]["prob"].as_f64().unwrap() > 0.0);
    assert!(
        doc["model"].as_str().unwrap().starts_with("base"),
        "{}",
        doc["model"]
    );
    let srt = std::fs::read_to_string(dir.path().join("sample.srt")).unwrap();
    let flat = srt
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat.contains("ask not what your country can do for you"),
        "{srt}"
    );
    // Regression: Whisper timestamped the last "country." after the pause that follows it, which split
    // "for your / country." across two cues; the word belongs to the voice right after "your".
    let last_cue = srt.trim().split("\n\n").last().unwrap().to_lowercase();
    assert!(
        last_cue.contains("for your") && last_cue.contains("country."),
        "{srt}"
    );
    let ass = std::fs::read_to_string(dir.path().join("sample.ass")).unwrap();
    assert!(
        ass.contains("PlayResX: 320") && ass.contains("PlayResY: 176"),
        "ASS laid out for the video size"
    );
}

#[test]
fn format_option_picks_formats_and_outputs_go_next_to_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("talk.mp4");
    std::fs::copy(sample(), &input).unwrap();
    let run = autosub([
        "-q".as_ref(),
        "process".as_ref(),
        input.as_os_str(),
        "--format".as_ref(),
        "srt,vtt".as_ref(),
    ])
    .ok();
    assert!(dir.path().join("talk.srt").is_file());
    assert!(dir.path().join("talk.vtt").is_file());
    assert!(!dir.path().join("talk.ass").exists());
    assert!(!dir.path().join("talk.json").exists());
    assert!(run.stdout.contains("talk.srt"));
    let vtt = std::fs::read_to_string(dir.path().join("talk.vtt")).unwrap();
    assert!(vtt.starts_with("WEBVTT"));
}

#[test]
fn shorts_profile_and_overrides() {
    let dir = tempfile::tempdir().unwrap();
    process(&sample(), dir.path(), &["--profile", "shorts"]).ok();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("sample.json")).unwrap())
            .unwrap();
    for c in doc["cues"].as_array().unwrap() {
        assert_eq!(c["lines"].as_array().unwrap().len(), 1);
        let n = c["words"].as_array().unwrap().len();
        assert!((1..=5).contains(&n), "{c}");
    }
    assert!(!doc["cues"].as_array().unwrap().is_empty());
    assert_cue_starts_near_words(&doc, "sample");
    assert_eq!(lint(&dir.path().join("sample.srt"), "shorts").code, 0);
    // Overrides: 20 characters per line, one line.
    let dir2 = tempfile::tempdir().unwrap();
    process(
        &sample(),
        dir2.path(),
        &["--max-chars", "20", "--max-lines", "1", "--format", "srt"],
    )
    .ok();
    let srt = std::fs::read_to_string(dir2.path().join("sample.srt")).unwrap();
    let cues = srt.split("\n\n").filter(|b| !b.trim().is_empty()).count();
    assert!(cues >= 5, "{srt}");
    for block in srt.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let text: Vec<&str> = block.lines().skip(2).collect();
        assert_eq!(text.len(), 1, "{block}");
    }
    let l = autosub([
        "lint".as_ref(),
        dir2.path().join("sample.srt").as_os_str(),
        "--max-chars".as_ref(),
        "20".as_ref(),
        "--max-lines".as_ref(),
        "1".as_ref(),
    ]);
    assert_eq!(l.code, 0, "{}", l.stdout);
}

#[test]
fn transcribe_then_segment_with_another_profile() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("jfk.json");
    let wav = corpus().join("speech/en/en_jfk_inaugural_1961.wav");
    autosub([
        "-q".as_ref(),
        "transcribe".as_ref(),
        wav.as_os_str(),
        "-o".as_ref(),
        json.as_os_str(),
    ])
    .ok();
    let shorts = dir.path().join("shorts.json");
    autosub([
        "segment".as_ref(),
        json.as_os_str(),
        "--profile".as_ref(),
        "shorts".as_ref(),
        "-o".as_ref(),
        shorts.as_os_str(),
    ])
    .ok();
    let a: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&shorts).unwrap()).unwrap();
    assert_eq!(a["words"], b["words"], "re-cutting keeps the words");
    assert_eq!(b["profile"], "shorts");
    assert!(b["cues"].as_array().unwrap().len() > a["cues"].as_array().unwrap().len());
    assert_eq!(lint(&shorts, "shorts").code, 0);
    let srt = dir.path().join("shorts.srt");
    autosub([
        "segment".as_ref(),
        json.as_os_str(),
        "--profile".as_ref(),
        "shorts".as_ref(),
        "-o".as_ref(),
        srt.as_os_str(),
    ])
    .ok();
    assert_eq!(lint(&srt, "shorts").code, 0);
}

#[test]
fn lint_reports_every_violation_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.srt");
    std::fs::write(
        &f,
        "1\n00:00:01,000 --> 00:00:01,200\nThis line is far too long to be read comfortably by anyone at all\n\n\
         2\n00:00:01,150 --> 00:00:03,000\nOverlapping cue\n\n\
         3\n00:00:03,000 --> 00:00:12,000\nOne\nTwo\nThree\n\n",
    )
    .unwrap();
    let run = lint(&f, "standard");
    assert_eq!(run.code, 1, "{}", run.stdout);
    for needle in ["cue 1", "cue 2", "cue 3"] {
        assert!(
            run.stdout.contains(needle),
            "missing {needle}: {}",
            run.stdout
        );
    }
    assert!(run.stdout.lines().count() >= 5, "{}", run.stdout);
    let json = autosub(["lint".as_ref(), f.as_os_str(), "--json".as_ref()]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(v["violations"].as_array().unwrap().len() >= 5);
}
