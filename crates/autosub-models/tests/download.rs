//! Downloader tests against a minimal HTTP/1.1 server on 127.0.0.1 (never anywhere else).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use autosub_models::{
    download, download_model, partial_path, CatalogEntry, DownloadOptions, ModelError,
};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
struct Req {
    path: String,
    range: Option<String>,
}

type Handler = dyn Fn(usize, &Req, &mut TcpStream) + Send + Sync;

struct TestServer {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Req>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl TestServer {
    /// `handler(index, request, stream)` answers the `index`-th request (0-based).
    fn start(handler: impl Fn(usize, &Req, &mut TcpStream) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let counter = Arc::new(AtomicUsize::new(0));
        let (log2, stop2) = (log.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = conn else { continue };
                let (handler, log, counter) = (handler.clone(), log2.clone(), counter.clone());
                std::thread::spawn(move || {
                    stream
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    let Some(req) = read_request(&stream) else {
                        return;
                    };
                    let idx = counter.fetch_add(1, Ordering::SeqCst);
                    log.lock().unwrap().push(req.clone());
                    handler(idx, &req, &mut stream);
                    let _ = stream.flush();
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        TestServer {
            addr,
            log,
            stop,
            handle: Some(handle),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn read_request(stream: &TcpStream) -> Option<Req> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut range = None;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_owned());
            }
        }
    }
    Some(Req { path, range })
}

fn head(stream: &mut TcpStream, status: &str, extra: &[String], len: usize) {
    let mut s = format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n");
    for e in extra {
        s.push_str(e);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    let _ = stream.write_all(s.as_bytes());
}

fn range_start(req: &Req) -> Option<usize> {
    let r = req.range.as_deref()?.strip_prefix("bytes=")?;
    r.strip_suffix('-')?.parse().ok()
}

/// Serves `data`, honouring `Range: bytes=N-` when `honour_range`.
fn serve(stream: &mut TcpStream, req: &Req, data: &[u8], honour_range: bool) {
    match range_start(req).filter(|_| honour_range) {
        Some(start) if start >= data.len() => {
            head(
                stream,
                "416 Range Not Satisfiable",
                &[format!("Content-Range: bytes */{}", data.len())],
                0,
            );
        }
        Some(start) => {
            head(
                stream,
                "206 Partial Content",
                &[format!(
                    "Content-Range: bytes {start}-{}/{}",
                    data.len() - 1,
                    data.len()
                )],
                data.len() - start,
            );
            let _ = stream.write_all(&data[start..]);
        }
        None => {
            head(stream, "200 OK", &[], data.len());
            let _ = stream.write_all(data);
        }
    }
}

fn status(stream: &mut TcpStream, line: &str) {
    let body = line.as_bytes();
    head(stream, line, &[], body.len());
    let _ = stream.write_all(body);
}

fn test_data(len: usize) -> Arc<Vec<u8>> {
    let mut x = 0x1234_5678_9abc_def0u64;
    Arc::new(
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect(),
    )
}

fn sha(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn opts() -> DownloadOptions {
    DownloadOptions {
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        retry_backoff: Duration::from_millis(10),
        max_retries: 3,
        ..Default::default()
    }
}

const LEN: usize = 3 * 1024 * 1024 + 123;

fn no_leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn full_download_is_verified_and_installed() {
    let data = test_data(LEN);
    let d = data.clone();
    let srv = TestServer::start(move |_, req, s| serve(s, req, &d, true));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("ggml-x.bin");
    let mut calls = 0;
    let mut last = (0, 0);
    let r = download(
        &srv.url("/ggml-x.bin"),
        &dest,
        Some(&sha(&data).to_uppercase()),
        Some(LEN as u64),
        &opts(),
        &mut |d, t| {
            calls += 1;
            last = (d, t);
            true
        },
    )
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), *data);
    assert_eq!(r.bytes, LEN as u64);
    assert_eq!(r.sha256, sha(&data));
    assert!(r.verified);
    assert_eq!((r.requests, r.resumed_from), (1, 0));
    assert_eq!(last, (LEN as u64, LEN as u64));
    assert!(calls > 1);
    assert_eq!(no_leftovers(dir.path()), ["ggml-x.bin"]);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/ggml-x.bin");
    assert_eq!(reqs[0].range, None);
}

#[test]
fn checksum_mismatch_leaves_no_file_and_no_partial() {
    let data = test_data(LEN);
    let d = data.clone();
    let srv = TestServer::start(move |_, req, s| serve(s, req, &d, true));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("ggml-x.bin");
    let wrong = sha(b"something else");
    let e = download(
        &srv.url("/x"),
        &dest,
        Some(&wrong),
        None,
        &opts(),
        &mut |_, _| true,
    )
    .unwrap_err();
    match &e {
        ModelError::ChecksumMismatch {
            expected, actual, ..
        } => {
            assert_eq!(*expected, wrong);
            assert_eq!(*actual, sha(&data));
        }
        other => panic!("unexpected {other}"),
    }
    assert!(e.to_string().contains("checksum mismatch"), "{e}");
    assert!(no_leftovers(dir.path()).is_empty());
}

#[test]
fn size_mismatch_is_refused() {
    let data = test_data(1000);
    let d = data.clone();
    let srv = TestServer::start(move |_, req, s| serve(s, req, &d, true));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.bin");
    let e = download(
        &srv.url("/x"),
        &dest,
        Some(&sha(&data)),
        Some(999),
        &opts(),
        &mut |_, _| true,
    )
    .unwrap_err();
    assert!(matches!(e, ModelError::Protocol { .. }), "{e}");
    assert!(no_leftovers(dir.path()).is_empty());
}

#[test]
fn dropped_connection_is_resumed_with_range() {
    let data = test_data(LEN);
    let d = data.clone();
    let srv = TestServer::start(move |i, req, s| {
        if i == 0 {
            // Announce everything, send 1 MiB, hang up.
            head(s, "200 OK", &[], d.len());
            let _ = s.write_all(&d[..1 << 20]);
        } else {
            serve(s, req, &d, true);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let r = download(
        &srv.url("/m.bin"),
        &dest,
        Some(&sha(&data)),
        Some(LEN as u64),
        &opts(),
        &mut |_, _| true,
    )
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), *data);
    assert_eq!(r.requests, 2);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].range, None);
    let start = range_start(&reqs[1]).expect("second request must resume with Range");
    assert!(start > 0 && start <= 1 << 20, "resumed at {start}");
    assert_eq!(no_leftovers(dir.path()), ["m.bin"]);
}

#[test]
fn existing_partial_is_resumed() {
    let data = test_data(LEN);
    let d = data.clone();
    let srv = TestServer::start(move |_, req, s| serve(s, req, &d, true));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let k = 1_234_567;
    std::fs::write(partial_path(&dest), &data[..k]).unwrap();
    let r = download(
        &srv.url("/m.bin"),
        &dest,
        Some(&sha(&data)),
        Some(LEN as u64),
        &opts(),
        &mut |_, _| true,
    )
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), *data);
    assert_eq!(r.resumed_from, k as u64);
    assert_eq!(r.requests, 1);
    let reqs = srv.requests();
    assert_eq!(reqs[0].range.as_deref(), Some("bytes=1234567-"));
    assert!(!partial_path(&dest).exists());
}

#[test]
fn server_ignoring_range_restarts_from_scratch() {
    let data = test_data(LEN);
    let d = data.clone();
    let srv = TestServer::start(move |_, req, s| serve(s, req, &d, false));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    // A partial with the wrong content: if it were kept, the hash would not match.
    std::fs::write(partial_path(&dest), vec![0xAAu8; 500_000]).unwrap();
    let r = download(
        &srv.url("/m.bin"),
        &dest,
        Some(&sha(&data)),
        Some(LEN as u64),
        &opts(),
        &mut |_, _| true,
    )
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), *data);
    assert_eq!(r.requests, 1);
    assert_eq!(r.resumed_from, 0, "the stale partial was discarded");
    assert_eq!(srv.requests()[0].range.as_deref(), Some("bytes=500000-"));
    assert_eq!(no_leftovers(dir.path()), ["m.bin"]);
}

#[test]
fn oversized_partial_gets_416_then_restarts() {
    let data = test_data(100_000);
    let d = data.clone();
    let srv = TestServer::start(move |_, req, s| serve(s, req, &d, true));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    std::fs::write(partial_path(&dest), vec![1u8; 200_000]).unwrap();
    // No expected size, so only the server can tell the partial is too long.
    let r = download(
        &srv.url("/m.bin"),
        &dest,
        Some(&sha(&data)),
        None,
        &opts(),
        &mut |_, _| true,
    )
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), *data);
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].range.as_deref(), Some("bytes=200000-"));
    assert_eq!(reqs[1].range, None);
    assert_eq!((r.requests, r.resumed_from), (2, 0));
}

#[test]
fn complete_partial_needs_no_request() {
    let data = test_data(10_000);
    let srv = TestServer::start(move |_, _, s| status(s, "500 Should Not Be Asked"));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    std::fs::write(partial_path(&dest), &*data).unwrap();
    let r = download(
        &srv.url("/m.bin"),
        &dest,
        Some(&sha(&data)),
        Some(data.len() as u64),
        &opts(),
        &mut |_, _| true,
    )
    .unwrap();
    assert_eq!(r.requests, 0);
    assert_eq!(std::fs::read(&dest).unwrap(), *data);
    assert!(srv.requests().is_empty());
}

#[test]
fn not_found_is_a_clear_error_without_retries() {
    let srv = TestServer::start(move |_, _, s| status(s, "404 Not Found"));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let e = download(
        &srv.url("/ggml-nope.bin"),
        &dest,
        Some(&sha(b"x")),
        None,
        &opts(),
        &mut |_, _| true,
    )
    .unwrap_err();
    assert!(
        matches!(e, ModelError::HttpStatus { status: 404, .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("404") && msg.contains("/ggml-nope.bin"),
        "{msg}"
    );
    assert_eq!(srv.requests().len(), 1);
    assert!(no_leftovers(dir.path()).is_empty());
}

#[test]
fn server_errors_are_retried() {
    let data = test_data(50_000);
    let d = data.clone();
    let srv = TestServer::start(move |i, req, s| {
        if i < 2 {
            status(s, "503 Service Unavailable");
        } else {
            serve(s, req, &d, true);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let r = download(
        &srv.url("/m.bin"),
        &dest,
        Some(&sha(&data)),
        Some(data.len() as u64),
        &opts(),
        &mut |_, _| true,
    )
    .unwrap();
    assert_eq!(r.requests, 3);
    assert_eq!(std::fs::read(&dest).unwrap(), *data);
}

#[test]
fn persistent_server_errors_give_up() {
    let srv = TestServer::start(move |_, _, s| status(s, "500 Internal Server Error"));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let e = download(
        &srv.url("/m.bin"),
        &dest,
        Some(&sha(b"x")),
        None,
        &opts(),
        &mut |_, _| true,
    )
    .unwrap_err();
    match e {
        ModelError::Network { attempts, msg, .. } => {
            assert_eq!(attempts, 4); // 1 + max_retries
            assert!(msg.contains("500"), "{msg}");
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(srv.requests().len(), 4);
    assert!(!dest.exists());
}

#[test]
fn stalled_body_times_out_and_resumes() {
    let data = test_data(400_000);
    let d = data.clone();
    let srv = TestServer::start(move |i, req, s| {
        if i == 0 {
            head(s, "200 OK", &[], d.len());
            let _ = s.write_all(&d[..100_000]);
            let _ = s.flush();
            std::thread::sleep(Duration::from_millis(1500));
        } else {
            serve(s, req, &d, true);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let o = DownloadOptions {
        read_timeout: Duration::from_millis(300),
        ..opts()
    };
    let r = download(
        &srv.url("/m.bin"),
        &dest,
        Some(&sha(&data)),
        Some(data.len() as u64),
        &o,
        &mut |_, _| true,
    )
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), *data);
    assert_eq!(r.requests, 2);
    assert!(range_start(&srv.requests()[1]).unwrap() > 0);
}

#[test]
fn connection_refused_is_retried_then_reported() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let e = download(
        &format!("http://127.0.0.1:{port}/m.bin"),
        &dir.path().join("m.bin"),
        Some(&sha(b"x")),
        None,
        &opts(),
        &mut |_, _| true,
    )
    .unwrap_err();
    assert!(matches!(e, ModelError::Network { attempts: 4, .. }), "{e}");
}

#[test]
fn cancel_leaves_no_final_file_and_can_resume() {
    let data = test_data(LEN);
    let d = data.clone();
    let srv = TestServer::start(move |_, req, s| serve(s, req, &d, true));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let e = download(
        &srv.url("/m.bin"),
        &dest,
        Some(&sha(&data)),
        Some(LEN as u64),
        &opts(),
        &mut |done, _| done < 1_000_000,
    )
    .unwrap_err();
    assert!(matches!(e, ModelError::Cancelled), "{e}");
    assert!(!dest.exists());
    let kept = std::fs::metadata(partial_path(&dest)).unwrap().len();
    assert!(kept >= 1_000_000 && kept < LEN as u64, "kept {kept}");

    // A later call picks the partial up.
    let r = download(
        &srv.url("/m.bin"),
        &dest,
        Some(&sha(&data)),
        Some(LEN as u64),
        &opts(),
        &mut |_, _| true,
    )
    .unwrap();
    assert_eq!(r.resumed_from, kept);
    assert_eq!(std::fs::read(&dest).unwrap(), *data);
    assert_eq!(no_leftovers(dir.path()), ["m.bin"]);
}

#[test]
fn unverified_download_needs_explicit_permission() {
    let data = test_data(5_000);
    let d = data.clone();
    let srv = TestServer::start(move |_, req, s| serve(s, req, &d, true));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.bin");
    let e = download(
        &srv.url("/m.bin"),
        &dest,
        None,
        None,
        &opts(),
        &mut |_, _| true,
    )
    .unwrap_err();
    assert!(matches!(e, ModelError::Unverified { .. }), "{e}");
    assert!(srv.requests().is_empty(), "nothing may be fetched");
    let o = DownloadOptions {
        allow_unverified: true,
        ..opts()
    };
    let r = download(&srv.url("/m.bin"), &dest, None, None, &o, &mut |_, _| true).unwrap();
    assert!(!r.verified);
    assert_eq!(r.sha256, sha(&data));
    assert_eq!(std::fs::read(&dest).unwrap(), *data);
}

#[test]
fn catalog_download_uses_base_url_override() {
    let data = test_data(70_000);
    let d = data.clone();
    let srv = TestServer::start(move |_, req, s| {
        if req.path == "/mirror/ggml-fake.bin" {
            serve(s, req, &d, true)
        } else {
            status(s, "404 Not Found")
        }
    });
    let entry = CatalogEntry {
        name: "fake",
        file_name: "ggml-fake.bin",
        url: "https://example.invalid/never-used/ggml-fake.bin",
        sha256: Some(Box::leak(sha(&data).into_boxed_str())),
        size: Some(data.len() as u64),
        multilingual: true,
    };
    let models = tempfile::tempdir().unwrap();
    let o = DownloadOptions {
        base_url: Some(srv.url("/mirror/")),
        ..opts()
    };
    let r = download_model(&entry, models.path(), &o, &mut |_, _| true).unwrap();
    assert_eq!(r.path, models.path().join("ggml-fake.bin"));
    assert_eq!(std::fs::read(&r.path).unwrap(), *data);
    assert_eq!(srv.requests()[0].path, "/mirror/ggml-fake.bin");
}
