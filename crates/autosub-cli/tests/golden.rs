//! `autosub process` writes the same files as before the job moved into the core (`autosub_core::job`): every
//! subtitle file byte for byte, the JSON document and summary equal but for the measured times, the video and
//! audio files bit for bit (their SHA-256). The expected files in tests/fixtures/golden/process/ were written by
//! the binary before the move (commit ddd1ea9); `AUTOSUB_BLESS=1` rewrites them with the binary under test, and
//! `AUTOSUB_GOLDEN_BIN` runs another binary (how they were made).

mod common;

use sha2::{Digest, Sha256};
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

fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    format!("{:x}", Sha256::digest(bytes))
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
            Some("mp4" | "m4a") => hashes.push_str(&format!("{}  {name}\n", sha256(&p))),
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
    files.insert("media.sha256".into(), hashes.into_bytes());
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
            if bytes != &want[name] {
                failures.push(format!(
                    "{case}/{name} differs:\n--- got\n{}\n--- expected\n{}",
                    String::from_utf8_lossy(bytes),
                    String::from_utf8_lossy(&want[name])
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
