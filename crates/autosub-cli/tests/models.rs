//! `autosub models`: install (against a local server), import, list, path.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;

/// Serves `body` for every request on 127.0.0.1, in a background thread; returns the base URL.
fn serve(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    format!("http://{addr}")
}

fn run_in(models: &std::path::Path, args: &[&str]) -> Run {
    Command::new(bin())
        .args(args)
        .env("AUTOSUB_MODELS_DIR", models)
        .output()
        .unwrap()
        .into()
}

#[test]
fn install_refuses_a_file_that_fails_verification_and_leaves_nothing() {
    let models = tempfile::tempdir().unwrap();
    let url = serve(vec![7u8; 4096]);
    let run = run_in(
        models.path(),
        &["-q", "models", "install", "tiny", "--base-url", &url],
    );
    assert_ne!(run.code, 0, "{}", run.stderr);
    // The announced size is not the pinned one: refused before the body is stored.
    assert!(run.stderr.contains("expected 77691713"), "{}", run.stderr);
    let left: Vec<_> = std::fs::read_dir(models.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n == "ggml-tiny.bin")
        .collect();
    assert!(left.is_empty(), "unverified file installed: {left:?}");
}

#[test]
fn install_of_an_unknown_model_lists_the_known_ones() {
    let models = tempfile::tempdir().unwrap();
    let run = run_in(models.path(), &["models", "install", "gigantic"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("base") && run.stderr.contains("large-v3-turbo"),
        "{}",
        run.stderr
    );
}

#[test]
fn import_of_a_folder_that_is_not_a_model_is_bad_input() {
    let models = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("config.json"), "{}").unwrap();
    let run = run_in(
        models.path(),
        &["models", "import", src.path().to_str().unwrap()],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("model.bin"), "{}", run.stderr);
    assert_eq!(std::fs::read_dir(models.path()).unwrap().count(), 0);
}

#[test]
fn list_and_path_show_the_installed_model() {
    let dir = models_dir();
    let run = run_in(&dir, &["models", "list"]).ok();
    assert!(run.stdout.contains("base-q8_0"), "{}", run.stdout);
    let path = run_in(&dir, &["models", "path", "base-q8_0"]).ok();
    assert!(std::path::Path::new(path.stdout.trim()).is_file());
}

#[test]
fn a_file_that_is_not_a_model_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("ggml-fake.bin");
    std::fs::write(&fake, b"not a model at all").unwrap();
    let run = autosub([
        "-q".as_ref(),
        "transcribe".as_ref(),
        corpus()
            .join("speech/en/en_jfk_inaugural_1961.wav")
            .as_os_str(),
        "--model".as_ref(),
        fake.as_os_str(),
        "-o".as_ref(),
        dir.path().join("x.json").as_os_str(),
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("not a whisper.cpp ggml model"),
        "{}",
        run.stderr
    );
    assert!(!dir.path().join("x.json").exists());
}
