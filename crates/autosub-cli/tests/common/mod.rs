//! Shared helpers of the CLI integration tests: run the real `autosub` binary on real media.
#![allow(dead_code)]

pub mod service;
pub mod telegram;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The model every test runs: the default install of scripts/setup.sh.
pub const TEST_MODEL: &str = "base-q8_0";

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_autosub"))
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The shared corpus of real recordings (`../shared/corpus` beside the repository, or `$AUTOSUB_CORPUS`).
pub fn corpus() -> PathBuf {
    let p = std::env::var_os("AUTOSUB_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/corpus"));
    assert!(
        p.join("README.md").is_file(),
        "test corpus not found at {} (set AUTOSUB_CORPUS)",
        p.display()
    );
    p
}

/// The models folder the tests use; the model must be installed (scripts/setup.sh does it).
pub fn models_dir() -> PathBuf {
    let out = Command::new(bin())
        .args(["models", "path"])
        .output()
        .unwrap();
    let dir = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let found = Command::new(bin())
        .args(["models", "path", "base"])
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "the Whisper base model is not installed in {}: run scripts/setup.sh first\n{}",
        dir.display(),
        String::from_utf8_lossy(&found.stderr)
    );
    dir
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "autosub failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `autosub ARGS` with the test models folder.
pub fn autosub<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let dir = models_dir();
    Command::new(bin())
        .args(args)
        .env("AUTOSUB_MODELS_DIR", dir)
        // The model scripts/setup.sh installs, whatever else a developer has installed.
        .env("AUTOSUB_MODEL", TEST_MODEL)
        // Piper without its random noise: a voice-over is the same audio on every run, so what the tests measure
        // on it (words heard back, onsets, lengths) cannot flip from one run to the next.
        .env("AUTOSUB_PIPER_NOISE", "0")
        .output()
        .unwrap()
        .into()
}

/// The bundled sample video (11 s, JFK over Big Buck Bunny).
pub fn sample() -> PathBuf {
    repo_root().join("tests/fixtures/sample.mp4")
}

/// `autosub -q process EXTRA... --out OUT -- INPUT` (the `--` lets inputs start with `-`).
pub fn process(input: &Path, out: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<std::ffi::OsString> = vec!["-q".into(), "process".into()];
    args.extend(extra.iter().map(Into::into));
    args.extend(["--out".into(), out.into(), "--".into(), input.into()]);
    autosub(args)
}

/// Every cue starts within 0.3 s of the first word it contains (cues carry their words).
pub fn assert_cue_starts_near_words(doc: &serde_json::Value, what: &str) {
    for (i, c) in doc["cues"].as_array().unwrap().iter().enumerate() {
        let first = c["words"][0]["start_ms"]
            .as_i64()
            .expect("cues carry their words");
        let start = c["start_ms"].as_i64().unwrap();
        assert!(
            (start - first).abs() <= 300,
            "{what}: cue {} at {start}, first word at {first}",
            i + 1
        );
    }
}

pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Lower-case words without punctuation, for word error rate; Russian `ё` counts as `е` (it is usually written
/// so, and Whisper mostly does).
pub fn norm_words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .replace('ё', "е")
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .map(|w| w.trim_matches('\'').to_owned())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word-level Levenshtein distance (substitutions + insertions + deletions).
pub fn edit_distance(reference: &[String], hypothesis: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut cur = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(r != h))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[hypothesis.len()]
}

/// Transcribes `media` to JSON with the CLI and returns the parsed document.
pub fn transcribe_json(media: &Path, extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.json");
    let mut args: Vec<std::ffi::OsString> = vec![
        "-q".into(),
        "transcribe".into(),
        media.into(),
        "-o".into(),
        out.clone().into(),
    ];
    args.extend(extra.iter().map(Into::into));
    autosub(args).ok();
    // Every document written must pass lint for the limits it was cut for (its profile and any of `extra`'s
    // overrides), and every cue must start within 0.3 s of its first word.
    let mut lint_args: Vec<std::ffi::OsString> = vec!["lint".into(), out.clone().into()];
    for pair in extra.windows(2) {
        if ["--profile", "--max-chars", "--max-lines", "--max-cps"].contains(&pair[0]) {
            lint_args.extend([pair[0].into(), pair[1].into()]);
        }
    }
    let lint = autosub(lint_args);
    assert_eq!(
        lint.code,
        0,
        "lint of {}: {}{}",
        media.display(),
        lint.stdout,
        lint.stderr
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    assert_cue_starts_near_words(&doc, &media.display().to_string());
    doc
}

/// The document's words joined.
pub fn doc_text(doc: &serde_json::Value) -> String {
    doc["words"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["text"].as_str().unwrap())
        .collect::<String>()
}

/// The metric names the dashboard queries (`_bucket` etc. mapped to the histogram's name).
pub fn dashboard_series() -> std::collections::BTreeSet<String> {
    let d: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("deploy/grafana/autosub.json")).unwrap(),
    )
    .unwrap();
    let mut out = std::collections::BTreeSet::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(i) = rest.find("autosub_") {
                let tail = &rest[i..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                    .unwrap_or(tail.len());
                out.insert(tail[..end].to_owned());
                rest = &tail[end..];
            }
        }
    }
    out
}
