//! Bad input gets a clear message, the documented exit code, and leaves no output file behind.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

const BAD_INPUT: i32 = 3;
const MISSING_DEPENDENCY: i32 = 4;

fn assert_empty(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

fn assert_bad(run: &Run, code: i32, needle: &str) {
    assert_eq!(run.code, code, "stderr: {}", run.stderr);
    assert!(
        run.stderr.to_lowercase().contains(&needle.to_lowercase()),
        "expected `{needle}` in: {}",
        run.stderr
    );
    assert!(
        run.stderr.lines().count() <= 6,
        "message too long: {}",
        run.stderr
    );
}

#[test]
fn path_that_does_not_exist() {
    let out = tempfile::tempdir().unwrap();
    let run = process(Path::new("/no/such/talk.mp4"), out.path(), &[]);
    assert_bad(&run, BAD_INPUT, "not found: /no/such/talk.mp4");
    assert_empty(out.path());
}

#[test]
fn a_directory() {
    let out = tempfile::tempdir().unwrap();
    let run = process(out.path(), out.path(), &[]);
    assert_bad(&run, BAD_INPUT, "is a directory");
    assert_empty(out.path());
}

#[test]
fn an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("empty.mp4");
    std::fs::write(&f, b"").unwrap();
    let out = tempfile::tempdir().unwrap();
    assert_bad(&process(&f, out.path(), &[]), BAD_INPUT, "is empty");
    assert_empty(out.path());
}

#[test]
fn a_text_file_named_mp4() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("notes.mp4");
    std::fs::write(&f, "these are my notes, not a video\n").unwrap();
    let out = tempfile::tempdir().unwrap();
    assert_bad(
        &process(&f, out.path(), &[]),
        BAD_INPUT,
        "not a recognised audio/video format",
    );
    assert_empty(out.path());
}

#[test]
fn a_truncated_mp4_without_its_index() {
    // Cameras write the index (moov) at the end: a cut-off upload has none.
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.mp4");
    ffmpeg(&[
        "-i",
        sample().to_str().unwrap(),
        "-c",
        "copy",
        full.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&full).unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = tempfile::tempdir().unwrap();
    assert_bad(&process(&cut, out.path(), &[]), BAD_INPUT, "truncated");
    assert_empty(out.path());
}

#[test]
fn a_truncated_faststart_mp4_is_transcribed_in_part_with_a_warning() {
    // With the index at the front, what was received can still be decoded.
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(sample()).unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = process(&cut, out.path(), &["--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(v["cues"].as_u64().unwrap() >= 1);
    assert!(run.stderr.contains("warning"), "{}", run.stderr);
}

#[test]
fn a_file_without_audio() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("silent-film.mp4");
    ffmpeg(&[
        "-i",
        sample().to_str().unwrap(),
        "-an",
        "-c:v",
        "copy",
        f.to_str().unwrap(),
    ]);
    let out = tempfile::tempdir().unwrap();
    assert_bad(
        &process(&f, out.path(), &[]),
        BAD_INPUT,
        "has no audio stream",
    );
    assert_empty(out.path());
}

#[test]
fn silent_audio_succeeds_with_empty_subtitles_and_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("silence.m4a");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-t",
        "8",
        "-i",
        "anullsrc=r=44100:cl=stereo",
        "-c:a",
        "aac",
        f.to_str().unwrap(),
    ]);
    let out = tempfile::tempdir().unwrap();
    let run = process(&f, out.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("warning: no speech"), "{}", run.stderr);
    let srt = std::fs::read_to_string(out.path().join("silence.srt")).unwrap();
    assert!(srt.trim().is_empty(), "{srt}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("silence.json")).unwrap())
            .unwrap();
    assert_eq!(doc["cues"].as_array().unwrap().len(), 0);
    assert!(!doc["warnings"].as_array().unwrap().is_empty());
}

#[test]
fn odd_paths_with_spaces_quotes_colons_and_cyrillic() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "my talk: \"final\" it's [1].mp4",
        "видео с пробелом.mp4",
        "-starts-with-dash.mp4",
        "100% {x}\\y.mp4",
    ] {
        let f = dir.path().join(name);
        std::fs::copy(sample(), &f).unwrap();
        let out = dir.path().join(format!("out {}", name.len()));
        std::fs::create_dir(&out).unwrap();
        let run = process(&f, &out, &["--format", "srt"]);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        let stem = name.trim_end_matches(".mp4");
        let srt = std::fs::read_to_string(out.join(format!("{stem}.srt"))).unwrap();
        assert!(srt.to_lowercase().contains("country"), "{name}: {srt}");
    }
}

#[test]
fn an_unwritable_output_folder_fails_before_any_work() {
    let run = process(&sample(), Path::new("/proc/autosub-cannot-write-here"), &[]);
    assert_bad(&run, BAD_INPUT, "cannot write");
    let run = process(&sample(), Path::new("/proc/1"), &[]);
    assert_bad(&run, BAD_INPUT, "cannot write");
}

#[test]
fn ffmpeg_missing_from_path() {
    let out = tempfile::tempdir().unwrap();
    let run: Run = Command::new(bin())
        .args(["-q", "process"])
        .arg(sample())
        .arg("--out")
        .arg(out.path())
        .env("PATH", "/nonexistent")
        .env("AUTOSUB_MODELS_DIR", models_dir())
        .output()
        .unwrap()
        .into();
    assert_bad(&run, MISSING_DEPENDENCY, "not found in PATH");
    assert!(
        run.stderr.contains("apt-get install ffmpeg"),
        "{}",
        run.stderr
    );
    assert_empty(out.path());
}

#[test]
fn a_missing_model_prints_the_install_command() {
    let models = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let run: Run = Command::new(bin())
        .args(["process"])
        .arg(sample())
        .arg("--out")
        .arg(out.path())
        .env("AUTOSUB_MODELS_DIR", models.path())
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, MISSING_DEPENDENCY, "{}", run.stderr);
    assert!(
        run.stderr.contains("autosub models install base"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("autosub models import"),
        "{}",
        run.stderr
    );
    assert_empty(out.path());
}

#[test]
fn a_bad_language_code_is_bad_input() {
    let out = tempfile::tempdir().unwrap();
    let run = process(&sample(), out.path(), &["--lang", "klingon"]);
    assert_bad(&run, BAD_INPUT, "unknown language code");
    assert_empty(out.path());
}

#[test]
fn lint_of_a_garbage_file_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.srt");
    std::fs::write(&f, "1\nnot a timing line\nhello\n").unwrap();
    let run = autosub(["lint".as_ref(), f.as_os_str()]);
    assert_bad(&run, BAD_INPUT, "line 2");
}

#[test]
fn ctrl_c_stops_the_run_with_130_and_leaves_nothing() {
    let out = tempfile::tempdir().unwrap();
    let child = Command::new(bin())
        .args(["-q", "process"])
        .arg(corpus().join("speech/untranscribed/ru_silero_vad_60s.wav"))
        .arg("--out")
        .arg(out.path())
        .args(["--lang", "ru"])
        .env("AUTOSUB_MODELS_DIR", models_dir())
        .env("AUTOSUB_MODEL", TEST_MODEL)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Mid-transcription (decoding 60 s takes several seconds).
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let t0 = std::time::Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(5),
        "took {:?} to stop",
        t0.elapsed()
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("cancelled"));
    assert_empty(out.path());
}
