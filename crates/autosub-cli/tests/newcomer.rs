//! What a new user meets first (issue 14): output folders that do not exist yet, a truncated download, `--help`
//! in groups, and the language of a subtitle file taken from its name or its text.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

const BAD_INPUT: i32 = 3;

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn missing_output_folders_are_created_and_a_file_in_the_way_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // process --out subs/ (the README's own example), two levels deep.
    let out = dir.path().join("subs/today");
    process(&sample(), &out, &["--no-video", "--format", "srt,json"]).ok();
    assert_eq!(listing(&out), ["sample.json", "sample.srt"]);
    // transcribe -o and segment -o into folders that do not exist yet.
    let json = dir.path().join("a/b/talk.json");
    autosub([
        "-q".as_ref(),
        "transcribe".as_ref(),
        sample().as_os_str(),
        "-o".as_ref(),
        json.as_os_str(),
    ])
    .ok();
    assert!(json.is_file());
    let srt = dir.path().join("c/d/talk.shorts.srt");
    autosub([
        "segment".as_ref(),
        json.as_os_str(),
        "--profile".as_ref(),
        "shorts".as_ref(),
        "-o".as_ref(),
        srt.as_os_str(),
    ])
    .ok();
    assert!(srt.is_file());
    // A file where a folder should be: refused before any work, naming the file, nothing written.
    let file = dir.path().join("taken");
    std::fs::write(&file, "x").unwrap();
    let run = process(&sample(), &file, &["--no-video"]);
    assert_eq!(run.code, BAD_INPUT, "{}", run.stderr);
    assert!(run.stderr.contains("is not a directory"), "{}", run.stderr);
    let run = process(&sample(), &file.join("sub"), &["--no-video"]);
    assert_eq!(run.code, BAD_INPUT, "{}", run.stderr);
    assert!(
        run.stderr.contains("is a file, not a folder"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

/// A 51 s MP4 with its index first (as downloads and uploads are), speech throughout, and its first 200 KB: a
/// partial download.
fn truncated_clip(dir: &Path) -> (PathBuf, PathBuf) {
    let full = dir.join("full.mp4");
    let speech = corpus().join("speech/untranscribed/ru_silero_vad_60s.wav");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=640x360:rate=25",
        "-i",
        speech.to_str().unwrap(),
        "-t",
        "51",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-movflags",
        "+faststart",
        "-shortest",
        full.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&full).unwrap();
    assert!(bytes.len() > 1_000_000, "{} bytes", bytes.len());
    let cut = dir.join("cut.mp4");
    std::fs::write(&cut, &bytes[..200_000]).unwrap();
    (full, cut)
}

#[test]
fn a_truncated_input_is_reported_and_refused_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cut) = truncated_clip(dir.path());
    // By default: subtitles for what could be read, a warning on stderr and the damage in the JSON summary.
    let out = dir.path().join("out");
    let run = process(
        &cut,
        &out,
        &["--no-video", "--json", "--lang", "ru", "--fast"],
    )
    .ok();
    assert!(
        run.stderr.contains("cut.mp4 is truncated or damaged: only")
            && run
                .stderr
                .contains("of its 51.0 s of audio could be decoded"),
        "{}",
        run.stderr
    );
    let summary: Value = serde_json::from_str(&run.stdout).unwrap();
    let damaged = &summary["damaged"];
    assert_eq!(damaged["expected_ms"], 51_000, "{summary}");
    let decoded = damaged["decoded_ms"].as_u64().unwrap();
    assert!((1_000..15_000).contains(&decoded), "{decoded}");
    assert!(
        damaged["errors"][0]
            .as_str()
            .unwrap()
            .contains("partial file"),
        "{damaged}"
    );
    assert!(summary["warnings"][0]
        .as_str()
        .unwrap()
        .contains("truncated"));
    // --strict: bad input, exit 3, nothing written (not even the output folder's files).
    let strict_out = dir.path().join("strict");
    let run = process(&cut, &strict_out, &["--strict", "--lang", "ru", "--fast"]);
    assert_eq!(run.code, BAD_INPUT, "{}", run.stderr);
    assert!(
        run.stderr.contains("truncated or damaged") && run.stderr.contains("strict"),
        "{}",
        run.stderr
    );
    assert_eq!(listing(&strict_out), Vec::<String>::new());
    // The same strictness on `transcribe`.
    let t = dir.path().join("t.json");
    let run = autosub([
        "-q".as_ref(),
        "transcribe".as_ref(),
        "--strict".as_ref(),
        cut.as_os_str(),
        "-o".as_ref(),
        t.as_os_str(),
    ]);
    assert_eq!(run.code, BAD_INPUT, "{}", run.stderr);
    assert!(!t.exists());
}

#[test]
fn a_whole_input_is_not_reported_as_damaged_even_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let run = process(&sample(), dir.path(), &["--no-video", "--json", "--strict"]).ok();
    let summary: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(summary["damaged"].is_null(), "{summary}");
    assert!(!run.stderr.contains("damaged"), "{}", run.stderr);
}

#[test]
fn process_help_is_grouped_in_the_order_a_user_thinks() {
    let run = autosub(["process", "--help"]).ok();
    let help = run.stdout;
    let headings = [
        "Input and limits:",
        "Output:",
        "Recognition:",
        "Segmentation:",
        "Video:",
        "Translation:",
        "Voice-over:",
        "Global options:",
    ];
    let at: Vec<usize> = headings
        .iter()
        .map(|h| {
            help.find(&format!("\n{h}\n"))
                .unwrap_or_else(|| panic!("no heading {h} in:\n{help}"))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}\n{help}");
    // Each option under its heading.
    let section = |h: usize| &help[at[h]..at.get(h + 1).copied().unwrap_or(help.len())];
    for (h, opts) in [
        (0, &["--max-duration", "--strict", "--playlist-item"][..]),
        (1, &["--out", "--format", "--json", "--no-video"]),
        (2, &["--model", "--lang", "--fast", "--beam"]),
        (3, &["--profile", "--max-cps"]),
        (4, &["--vertical", "--style", "--watermark", "--quality"]),
        (5, &["--translate", "--translator", "--burn-lang"]),
        (6, &["--voiceover", "--voiceover-mode"]),
        (7, &["--models-dir", "--quiet", "--verbose"]),
    ] {
        for o in opts {
            assert!(
                section(h).contains(&format!("{o} ")) || section(h).contains(&format!("{o}\n")),
                "{o} not under {}:\n{}",
                headings[h],
                section(h)
            );
        }
    }
}

/// `autosub -v speak SUBS --json -o OUT`: the summary and stderr.
fn speak(subs: &Path, out: &Path) -> (Value, String) {
    let run = autosub([
        "-v".as_ref(),
        "speak".as_ref(),
        subs.as_os_str(),
        "--json".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ])
    .ok();
    (serde_json::from_str(&run.stdout).unwrap(), run.stderr)
}

#[test]
fn speak_takes_the_language_from_the_file_name_or_the_text() {
    let dir = tempfile::tempdir().unwrap();
    let ru = "1\n00:00:00,500 --> 00:00:03,000\nДобрый вечер, дорогие друзья.\n\n\
              2\n00:00:03,500 --> 00:00:06,000\nСегодня мы поговорим о погоде.\n";
    // talk.ru.srt: from the name.
    let named = dir.path().join("talk.ru.srt");
    std::fs::write(&named, ru).unwrap();
    let (summary, stderr) = speak(&named, &dir.path().join("named.wav"));
    assert_eq!(summary["language"], "ru", "{summary}");
    assert!(stderr.contains("ru (from the file name)"), "{stderr}");
    // talk.srt: from the text.
    let plain = dir.path().join("talk.srt");
    std::fs::write(&plain, ru).unwrap();
    let (summary, stderr) = speak(&plain, &dir.path().join("plain.wav"));
    assert_eq!(summary["language"], "ru", "{summary}");
    assert!(stderr.contains("ru (detected from the text)"), "{stderr}");
    // --lang still wins over both.
    let run = autosub([
        "-q".as_ref(),
        "speak".as_ref(),
        named.as_os_str(),
        "--lang".as_ref(),
        "en".as_ref(),
        "--json".as_ref(),
        "-o".as_ref(),
        dir.path().join("forced.wav").as_os_str(),
    ])
    .ok();
    let summary: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary["language"], "en", "{summary}");
}

#[test]
fn a_document_keeps_the_limits_it_was_cut_with() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("talk.json");
    let p = |p: &Path| p.as_os_str().to_owned();
    autosub([
        "-q".into(),
        "transcribe".into(),
        p(&sample()),
        "--max-cps".into(),
        "23".into(),
        "--max-chars".into(),
        "30".into(),
        "-o".into(),
        p(&json),
    ])
    .ok();
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["limits"]["max_cps"], 23.0, "{}", doc["limits"]);
    assert_eq!(doc["limits"]["max_chars_per_line"], 30);
    // lint, segment and translate read them back (the JSON summary names the limits lint used)...
    let lint = |file: &Path, extra: &[&str]| -> Value {
        let mut args = vec!["lint".into(), p(file), "--json".into()];
        args.extend(extra.iter().map(Into::into));
        let run = autosub::<_, std::ffi::OsString>(args);
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
    };
    assert_eq!(lint(&json, &[])["limits"]["max_cps"], 23.0);
    let recut = dir.path().join("recut.json");
    autosub(["segment".into(), p(&json), "-o".into(), p(&recut)]).ok();
    let re: Value = serde_json::from_str(&std::fs::read_to_string(&recut).unwrap()).unwrap();
    assert_eq!(re["limits"], doc["limits"]);
    assert_eq!(re["cues"], doc["cues"], "the same limits cut the same cues");
    // ...and an explicit flag still wins, over the stored number only.
    let l = lint(&json, &["--max-cps", "30"]);
    assert_eq!(l["limits"]["max_cps"], 30.0);
    assert_eq!(l["limits"]["max_chars_per_line"], 30);
    // An older document without limits reads as its named profile.
    let mut old = doc.clone();
    old.as_object_mut().unwrap().remove("limits");
    let old_path = dir.path().join("old.json");
    std::fs::write(&old_path, old.to_string()).unwrap();
    assert_eq!(lint(&old_path, &[])["limits"]["max_cps"], 17.0);
}

#[test]
fn piper_noise_setting_makes_a_voiceover_reproducible_and_bad_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let subs = dir.path().join("talk.en.srt");
    std::fs::write(
        &subs,
        "1\n00:00:00,500 --> 00:00:03,000\nThe weather is nice today.\n",
    )
    .unwrap();
    let p = |p: &Path| p.as_os_str().to_owned();
    // The test helper runs autosub with AUTOSUB_PIPER_NOISE=0: twice the same bytes.
    let wavs: Vec<Vec<u8>> = (0..2)
        .map(|i| {
            let out = dir.path().join(format!("v{i}.wav"));
            autosub(["-q".into(), "speak".into(), p(&subs), "-o".into(), p(&out)]).ok();
            std::fs::read(out).unwrap()
        })
        .collect();
    assert!(wavs[0].len() > 40_000);
    assert!(wavs[0] == wavs[1], "two reproducible voice-overs differ");
    let run: Run = std::process::Command::new(bin())
        .args(["-q", "speak"])
        .arg(&subs)
        .env("AUTOSUB_MODELS_DIR", models_dir())
        .env("AUTOSUB_PIPER_NOISE", "lots")
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, BAD_INPUT, "{}", run.stderr);
    assert!(run.stderr.contains("AUTOSUB_PIPER_NOISE"), "{}", run.stderr);
}
