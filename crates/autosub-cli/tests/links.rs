//! Links as input: `autosub process URL`, `autosub fetch URL` and `autosub doctor`, against an HTTP server this
//! test starts on 127.0.0.1 (allow-listed with AUTOSUB_ALLOW_HOSTS). No connection goes anywhere else: refused
//! links are refused before anything connects. The download machinery itself (proxy, retries, limits, cache) is
//! tested in crates/autosub-core/tests/fetch.rs.

mod common;
#[path = "../../autosub-core/tests/fetch_support/mod.rs"]
mod fetch_support;

use common::*;
use fetch_support::{send, send_file, Server};
use std::path::Path;
use std::process::Command;

fn site() -> Server {
    let video = std::fs::read(sample()).unwrap();
    Server::start(move |req, s, _| {
        match req.path.as_str() {
        "/talk.mp4" => send_file(req, s, "video/mp4", &video, None),
        "/page.html" => send(
            s,
            "200 OK",
            "text/html",
            br#"<html><head><title>Inaugural address</title><meta property="og:video" content="/talk.mp4"></head><body><video src="/talk.mp4"></video></body></html>"#,
        ),
        _ => send(s, "404 Not Found", "text/plain", b"not found"),
    }
    })
}

/// `autosub ARGS` with a private cache folder and 127.0.0.1 allowed.
fn run(cache: &Path, args: &[&str]) -> Run {
    Command::new(bin())
        .args(args)
        .env("AUTOSUB_MODELS_DIR", models_dir())
        .env("AUTOSUB_MODEL", TEST_MODEL)
        .env("AUTOSUB_CACHE_DIR", cache)
        .env("AUTOSUB_ALLOW_HOSTS", "127.0.0.1")
        .output()
        .unwrap()
        .into()
}

#[test]
fn a_link_to_an_mp4_is_processed_end_to_end() {
    let server = site();
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let url = server.url("/talk.mp4");
    let r = run(
        cache.path(),
        &[
            "-q",
            "process",
            "--json",
            "--quality",
            "fast",
            "--out",
            out.path().to_str().unwrap(),
            &url,
        ],
    )
    .ok();
    let summary: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(summary["language"], "en");
    // Named after the page's title (here the file name yt-dlp's generic extractor takes as title).
    let srt_path = summary["outputs"]["srt"].as_str().unwrap();
    assert!(
        srt_path.starts_with(out.path().to_str().unwrap()),
        "{srt_path}"
    );
    let srt = std::fs::read_to_string(srt_path).unwrap().to_lowercase();
    assert!(srt.contains("ask not what your country"), "{srt}");
    assert!(Path::new(summary["outputs"]["video"].as_str().unwrap()).is_file());

    // The second time the download comes from the cache: the server sees no new request for the file.
    let before = server.hits("/talk.mp4");
    let r = run(cache.path(), &["fetch", "--json", &url]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["from_cache"], true);
    assert_eq!(server.hits("/talk.mp4"), before);
    assert_eq!(
        std::fs::read(v["path"].as_str().unwrap()).unwrap(),
        std::fs::read(sample()).unwrap()
    );
}

#[test]
fn fetch_follows_a_page_and_copies_the_file_out() {
    let server = site();
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let r = run(
        cache.path(),
        &[
            "-q",
            "fetch",
            "--out",
            out.path().to_str().unwrap(),
            &server.url("/page.html"),
        ],
    )
    .ok();
    let path = r.stdout.trim();
    assert!(path.starts_with(out.path().to_str().unwrap()), "{path}");
    assert!(path.ends_with(".mp4"), "{path}");
    assert_eq!(
        std::fs::read(path).unwrap(),
        std::fs::read(sample()).unwrap()
    );
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 1);
}

#[test]
fn bad_links_are_refused_with_clear_errors_and_leave_nothing() {
    let server = site();
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    let cases: Vec<(String, &str)> = vec![
        ("file:///etc/passwd".into(), "http"),
        ("ftp://127.0.0.1/x.mp4".into(), "http"),
        ("http://[::1]/x.mp4".into(), "::1"),
        ("http://127.1/x.mp4".into(), "127.1"),
        (
            "http://169.254.169.254/latest/meta-data/".into(),
            "169.254.169.254",
        ),
        ("http://10.0.0.5/x.mp4".into(), "10.0.0.5"),
        (server.url("/missing.mp4"), "404"),
    ];
    for (url, want) in &cases {
        let r = run(cache.path(), &["-q", "process", "--out", o, "--", url]);
        assert_eq!(r.code, 3, "{url}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{url}: {}", r.stderr);
        assert!(
            r.stderr.lines().count() <= 3,
            "{url}: not short: {}",
            r.stderr
        );
    }
    // A link that looks like an option is an option to clap, and never reaches yt-dlp.
    let r = run(
        cache.path(),
        &["-q", "fetch", "--", "--exec=touch /tmp/pwned"],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(!Path::new("/tmp/pwned").exists());
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    let left: Vec<_> = walk(cache.path());
    assert!(left.is_empty(), "left in the cache: {left:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn doctor_prints_versions() {
    let cache = tempfile::tempdir().unwrap();
    let r = run(cache.path(), &["doctor"]).ok();
    for want in [
        "autosub ",
        "ffmpeg version",
        "yt-dlp",
        "base-q8_0",
        "whisper.cpp",
    ] {
        assert!(r.stdout.contains(want), "{want}: {}", r.stdout);
    }
    // A missing yt-dlp is reported with the install command, and the exit code says a dependency is missing.
    let r: Run = Command::new(bin())
        .arg("doctor")
        .env("AUTOSUB_MODELS_DIR", models_dir())
        .env("AUTOSUB_YTDLP", "/nonexistent/yt-dlp")
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 4, "{}", r.stdout);
    assert!(r.stdout.contains("pip install yt-dlp=="), "{}", r.stdout);
}
