//! Argos Translate package management against real zips built here and a minimal HTTP/1.1
//! server on 127.0.0.1 (never anywhere else). The model files are fake bytes: this crate
//! never loads a model.

use std::io::{BufRead, BufReader, Cursor, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use autosub_models::{
    find_package, import_package, install_entry, install_pair, list_packages, parse_index,
    remove_package, DownloadOptions, InstalledPackage, ModelError, AUTOSUB_RECORD_FILE,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

// ---------------------------------------------------------------------------------------
// Test server (adapted from tests/download.rs).

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

    fn paths(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.path).collect()
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

/// Serves `data`, honouring `Range: bytes=N-`.
fn serve(stream: &mut TcpStream, req: &Req, data: &[u8]) {
    match range_start(req) {
        Some(start) if start >= data.len() => head(
            stream,
            "416 Range Not Satisfiable",
            &[format!("Content-Range: bytes */{}", data.len())],
            0,
        ),
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

/// A server for a fixed set of paths (`/index.json` is the index); anything else is 404.
fn routes(files: Vec<(&'static str, Vec<u8>)>) -> TestServer {
    let files = Arc::new(files);
    TestServer::start(
        move |_, req, s| match files.iter().find(|(p, _)| *p == req.path) {
            Some((_, data)) => serve(s, req, data),
            None => status(s, "404 Not Found"),
        },
    )
}

// ---------------------------------------------------------------------------------------
// Packages.

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = 0x1234_5678_9abc_def0u64 ^ seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Clone)]
enum Item {
    File(Vec<u8>),
    Stored(Vec<u8>),
    Dir,
    Symlink(&'static str),
}

/// The entries of a well-formed package `translate-{from}_{to}-{version}/`.
fn package_items(from: &str, to: &str, version: &str) -> Vec<(String, Item)> {
    let top = format!("translate-{from}_{to}-{}", version.replace('.', "_"));
    let meta = json!({
        "package_version": version,
        "argos_version": "1.9.0",
        "from_code": from,
        "from_name": format!("Lang {from}"),
        "to_code": to,
        "to_name": format!("Lang {to}"),
        "code": format!("translate-{from}_{to}"),
        "type": "translate",
        "languages": []
    });
    vec![
        (format!("{top}/"), Item::Dir),
        (
            format!("{top}/metadata.json"),
            Item::File(serde_json::to_vec_pretty(&meta).unwrap()),
        ),
        (
            format!("{top}/README.md"),
            Item::File(format!("package {from}->{to} {version}\n").into_bytes()),
        ),
        (
            format!("{top}/sentencepiece.model"),
            Item::File(noise(2_000, 1)),
        ),
        (format!("{top}/model/"), Item::Dir),
        (
            format!("{top}/model/model.bin"),
            Item::File(model_bin(version)),
        ),
        (
            format!("{top}/model/config.json"),
            Item::File(br#"{"add_source_bos": false, "add_source_eos": false}"#.to_vec()),
        ),
        (
            format!("{top}/model/shared_vocabulary.json"),
            Item::File(br#"["<unk>", "<s>", "</s>", "a"]"#.to_vec()),
        ),
        (format!("{top}/stanza/"), Item::Dir),
        (
            format!("{top}/stanza/tokenize.pt"),
            Item::File(b"stanza".to_vec()),
        ),
    ]
}

/// Fake model weights, different per version, big enough (300 KB, incompressible) for a
/// download to be cut in the middle.
fn model_bin(version: &str) -> Vec<u8> {
    noise(
        300_000,
        version.len() as u64 * 7919 + version.bytes().map(u64::from).sum::<u64>(),
    )
}

fn zip_of(items: &[(String, Item)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let deflate = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    for (name, item) in items {
        match item {
            Item::File(data) => {
                w.start_file(name.as_str(), deflate).unwrap();
                w.write_all(data).unwrap();
            }
            Item::Stored(data) => {
                w.start_file(name.as_str(), stored).unwrap();
                w.write_all(data).unwrap();
            }
            Item::Dir => w.add_directory(name.as_str(), deflate).unwrap(),
            Item::Symlink(target) => w.add_symlink(name.as_str(), *target, deflate).unwrap(),
        }
    }
    w.finish().unwrap().into_inner()
}

fn package(from: &str, to: &str, version: &str) -> Vec<u8> {
    zip_of(&package_items(from, to, version))
}

fn index_entry(from: &str, to: &str, version: &str, link: &str) -> serde_json::Value {
    json!({
        "package_version": version,
        "argos_version": "1.9.0",
        "from_code": from,
        "from_name": format!("Lang {from}"),
        "to_code": to,
        "to_name": format!("Lang {to}"),
        "links": [link],
        "code": format!("translate-{from}_{to}"),
        "languages": [],
    })
}

fn with_checks(mut e: serde_json::Value, data: &[u8]) -> serde_json::Value {
    e["size"] = json!(data.len());
    e["sha256"] = json!(sha(data));
    e
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

fn yes() -> impl FnMut(u64, u64) -> bool {
    |_, _| true
}

/// Names in `<models>/argos` (empty when it does not exist).
fn argos_contents(models: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(models.join("argos")) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn write_file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn check_installed(p: &InstalledPackage, models: &Path, from: &str, to: &str, version: &str) {
    let dir = models.join("argos").join(format!("translate-{from}_{to}"));
    assert_eq!((p.from.as_str(), p.to.as_str()), (from, to));
    assert_eq!(p.version, version);
    assert_eq!(p.dir, dir);
    assert_eq!(p.model_dir, dir.join("model"));
    assert_eq!(p.spm, dir.join("sentencepiece.model"));
    assert_eq!(
        p.from_name.as_deref(),
        Some(format!("Lang {from}").as_str())
    );
    assert_eq!(
        std::fs::read(dir.join("model/model.bin")).unwrap(),
        model_bin(version)
    );
    assert_eq!(std::fs::read(&p.spm).unwrap(), noise(2_000, 1));
    for f in [
        "metadata.json",
        "README.md",
        "model/config.json",
        "model/shared_vocabulary.json",
        "stanza/tokenize.pt",
        AUTOSUB_RECORD_FILE,
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let on_disk: u64 = walk(&dir).iter().map(|f| f.metadata().unwrap().len()).sum();
    assert_eq!(p.size_bytes, on_disk);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn record(p: &InstalledPackage) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p.dir.join(AUTOSUB_RECORD_FILE)).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------
// Install from an index.

#[test]
fn install_with_size_and_sha256() {
    let pkg = package("en", "ru", "1.9");
    let models = tempfile::tempdir().unwrap();
    let p2 = pkg.clone();
    let srv = index_server(
        move |url| {
            json!([
                with_checks(
                    index_entry("en", "ru", "1.9", &url("/p/en_ru.argosmodel")),
                    &p2
                ),
                index_entry("ru", "en", "1.9", &url("/p/ru_en.argosmodel")),
            ])
        },
        vec![("/p/en_ru.argosmodel", pkg.clone())],
    );
    let mut last = (0, 0);
    let p = install_pair(
        models.path(),
        "EN",
        "ru",
        &srv.url("/index.json"),
        &opts(),
        &mut |d, t| {
            last = (d, t);
            true
        },
    )
    .unwrap();
    check_installed(&p, models.path(), "en", "ru", "1.9");
    assert!(p.verified);
    assert_eq!(
        p.source.as_deref(),
        Some(srv.url("/p/en_ru.argosmodel").as_str())
    );
    assert_eq!(p.archive_sha256.as_deref(), Some(sha(&pkg).as_str()));
    assert_eq!(last, (pkg.len() as u64, pkg.len() as u64));
    let rec = record(&p);
    assert_eq!(rec["sha256"], json!(sha(&pkg)));
    assert_eq!(rec["size"], json!(pkg.len()));
    assert_eq!(rec["verified"], json!(true));
    assert_eq!(rec["source"], json!(srv.url("/p/en_ru.argosmodel")));
    assert_eq!(rec["top_folder"], json!("translate-en_ru-1_9"));
    // Listed and found; the archive is gone.
    assert_eq!(list_packages(models.path()), vec![p.clone()]);
    assert_eq!(find_package(models.path(), "en", "ru"), Some(p.clone()));
    assert_eq!(find_package(models.path(), " En ", "RU"), Some(p));
    assert_eq!(find_package(models.path(), "ru", "en"), None);
    assert_eq!(argos_contents(models.path()), ["translate-en_ru"]);
    assert_eq!(srv.paths(), ["/index.json", "/p/en_ru.argosmodel"]);
}

#[test]
fn install_without_checksum_is_unverified() {
    let models = tempfile::tempdir().unwrap();
    let pkg = package("de", "en", "1.0");
    let index = Arc::new(Mutex::new(Vec::new()));
    let (i2, p2) = (index.clone(), pkg.clone());
    let srv = TestServer::start(move |_, req, s| match req.path.as_str() {
        "/index.json" => serve(s, req, &i2.lock().unwrap()),
        "/de_en" => serve(s, req, &p2),
        _ => status(s, "404 Not Found"),
    });
    *index.lock().unwrap() = json!([index_entry("de", "en", "1.0", &srv.url("/de_en"))])
        .to_string()
        .into_bytes();
    let p = install_pair(
        models.path(),
        "de",
        "en",
        &srv.url("/index.json"),
        &opts(),
        &mut yes(),
    )
    .unwrap();
    check_installed(&p, models.path(), "de", "en", "1.0");
    assert!(!p.verified);
    assert_eq!(p.archive_sha256.as_deref(), Some(sha(&pkg).as_str()));
    assert_eq!(record(&p)["verified"], json!(false));
    assert_eq!(argos_contents(models.path()), ["translate-de_en"]);
}

/// A server with `/index.json` = `entries(base_url)` and the given files.
fn index_server(
    entries: impl Fn(&dyn Fn(&str) -> String) -> serde_json::Value,
    files: Vec<(&'static str, Vec<u8>)>,
) -> TestServer {
    let index = Arc::new(Mutex::new(Vec::new()));
    let i2 = index.clone();
    let files = Arc::new(files);
    let srv = TestServer::start(move |_, req, s| {
        if req.path == "/index.json" {
            return serve(s, req, &i2.lock().unwrap());
        }
        match files.iter().find(|(p, _)| *p == req.path) {
            Some((_, d)) => serve(s, req, d),
            None => status(s, "404 Not Found"),
        }
    });
    let addr = srv.addr;
    *index.lock().unwrap() = entries(&|p: &str| format!("http://{addr}{p}"))
        .to_string()
        .into_bytes();
    srv
}

#[test]
fn checksum_mismatch_leaves_nothing() {
    let models = tempfile::tempdir().unwrap();
    let pkg = package("en", "ru", "1.9");
    let p2 = pkg.clone();
    let srv = index_server(
        move |url| {
            let mut e = with_checks(index_entry("en", "ru", "1.9", &url("/pkg")), &p2);
            e["sha256"] = json!(sha(b"something else"));
            json!([e])
        },
        vec![("/pkg", pkg.clone())],
    );
    let e = install_pair(
        models.path(),
        "en",
        "ru",
        &srv.url("/index.json"),
        &opts(),
        &mut yes(),
    )
    .unwrap_err();
    assert!(matches!(e, ModelError::ChecksumMismatch { .. }), "{e}");
    assert!(e.to_string().contains("checksum mismatch"), "{e}");
    assert!(
        argos_contents(models.path()).is_empty(),
        "{:?}",
        argos_contents(models.path())
    );
    assert!(list_packages(models.path()).is_empty());
}

#[test]
fn size_mismatch_leaves_nothing() {
    let models = tempfile::tempdir().unwrap();
    let pkg = package("en", "ru", "1.9");
    let p2 = pkg.clone();
    let srv = index_server(
        move |url| {
            let mut e = with_checks(index_entry("en", "ru", "1.9", &url("/pkg")), &p2);
            e["size"] = json!(p2.len() + 1);
            json!([e])
        },
        vec![("/pkg", pkg.clone())],
    );
    let e = install_pair(
        models.path(),
        "en",
        "ru",
        &srv.url("/index.json"),
        &opts(),
        &mut yes(),
    )
    .unwrap_err();
    // The server announces its length, so the downloader refuses before reading the body.
    assert!(
        matches!(
            e,
            ModelError::Protocol { .. } | ModelError::SizeMismatch { .. }
        ),
        "{e}"
    );
    assert!(e.to_string().contains(&(pkg.len() + 1).to_string()), "{e}");
    assert!(
        argos_contents(models.path()).is_empty(),
        "{:?}",
        argos_contents(models.path())
    );
}

#[test]
fn connection_cut_mid_file_is_resumed() {
    let models = tempfile::tempdir().unwrap();
    let pkg = Arc::new(package("en", "ru", "1.9"));
    let index = Arc::new(Mutex::new(Vec::new()));
    let (i2, p2) = (index.clone(), pkg.clone());
    let pkg_requests = Arc::new(AtomicUsize::new(0));
    let n2 = pkg_requests.clone();
    let srv = TestServer::start(move |_, req, s| match req.path.as_str() {
        "/index.json" => serve(s, req, &i2.lock().unwrap()),
        "/pkg" => {
            if n2.fetch_add(1, Ordering::SeqCst) == 0 {
                // Announce everything, send 100 KB, hang up.
                head(s, "200 OK", &[], p2.len());
                let _ = s.write_all(&p2[..100_000]);
            } else {
                serve(s, req, &p2);
            }
        }
        _ => status(s, "404 Not Found"),
    });
    *index.lock().unwrap() = json!([with_checks(
        index_entry("en", "ru", "1.9", &srv.url("/pkg")),
        &pkg
    )])
    .to_string()
    .into_bytes();
    let p = install_pair(
        models.path(),
        "en",
        "ru",
        &srv.url("/index.json"),
        &opts(),
        &mut yes(),
    )
    .unwrap();
    check_installed(&p, models.path(), "en", "ru", "1.9");
    assert!(p.verified);
    let reqs = srv.requests();
    let pkg_reqs: Vec<&Req> = reqs.iter().filter(|r| r.path == "/pkg").collect();
    assert_eq!(pkg_reqs.len(), 2, "{reqs:?}");
    assert_eq!(pkg_reqs[0].range, None);
    let start = range_start(pkg_reqs[1]).expect("the second request resumes with Range");
    assert!(start > 0 && start <= 100_000, "resumed at {start}");
    assert_eq!(argos_contents(models.path()), ["translate-en_ru"]);
}

#[test]
fn highest_version_wins_1_10_over_1_9() {
    let models = tempfile::tempdir().unwrap();
    let srv = index_server(
        |url| {
            json!([
                index_entry("en", "ru", "1.9", &url("/v1_9")),
                index_entry("en", "ru", "1.10", &url("/v1_10")),
                index_entry("en", "ru", "1.2", &url("/v1_2")),
            ])
        },
        vec![
            ("/v1_9", package("en", "ru", "1.9")),
            ("/v1_10", package("en", "ru", "1.10")),
        ],
    );
    let p = install_pair(
        models.path(),
        "en",
        "ru",
        &srv.url("/index.json"),
        &opts(),
        &mut yes(),
    )
    .unwrap();
    check_installed(&p, models.path(), "en", "ru", "1.10");
    assert_eq!(srv.paths(), ["/index.json", "/v1_10"]);
}

#[test]
fn upgrade_replaces_the_old_folder() {
    let models = tempfile::tempdir().unwrap();
    let mut v10 = package_items("en", "ru", "1.0");
    v10.push((
        "translate-en_ru-1_0/only-in-1.0.txt".into(),
        Item::File(b"old".to_vec()),
    ));
    let srv1 = index_server(
        |url| json!([index_entry("en", "ru", "1.0", &url("/v1_0"))]),
        vec![("/v1_0", zip_of(&v10))],
    );
    let old = install_pair(
        models.path(),
        "en",
        "ru",
        &srv1.url("/index.json"),
        &opts(),
        &mut yes(),
    )
    .unwrap();
    assert_eq!(old.version, "1.0");
    assert!(old.dir.join("only-in-1.0.txt").is_file());

    let srv2 = index_server(
        |url| {
            json!([
                index_entry("en", "ru", "1.0", &url("/v1_0")),
                index_entry("en", "ru", "1.1", &url("/v1_1")),
            ])
        },
        vec![
            ("/v1_0", zip_of(&v10)),
            ("/v1_1", package("en", "ru", "1.1")),
        ],
    );
    let new = install_pair(
        models.path(),
        "en",
        "ru",
        &srv2.url("/index.json"),
        &opts(),
        &mut yes(),
    )
    .unwrap();
    check_installed(&new, models.path(), "en", "ru", "1.1");
    assert_eq!(new.dir, old.dir);
    assert!(!new.dir.join("only-in-1.0.txt").exists());
    assert_eq!(argos_contents(models.path()), ["translate-en_ru"]);
    assert_eq!(list_packages(models.path()).len(), 1);
    assert_eq!(
        find_package(models.path(), "en", "ru").unwrap().version,
        "1.1"
    );
}

#[test]
fn metadata_pair_must_match_the_request() {
    let models = tempfile::tempdir().unwrap();
    // An en->ru package is installed already and must survive.
    let here = tempfile::tempdir().unwrap();
    let good = write_file(here.path(), "en_ru.argosmodel", &package("en", "ru", "1.0"));
    import_package(models.path(), &good).unwrap();

    let srv = index_server(
        |url| json!([index_entry("en", "ru", "2.0", &url("/wrong"))]),
        vec![("/wrong", package("en", "de", "2.0"))],
    );
    let e = install_pair(
        models.path(),
        "en",
        "ru",
        &srv.url("/index.json"),
        &opts(),
        &mut yes(),
    )
    .unwrap_err();
    assert!(matches!(e, ModelError::ArgosPairMismatch { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("en->de") && msg.contains("en->ru"), "{msg}");
    assert_eq!(argos_contents(models.path()), ["translate-en_ru"]);
    let p = find_package(models.path(), "en", "ru").unwrap();
    assert_eq!(p.version, "1.0");
    assert!(find_package(models.path(), "en", "de").is_none());
}

#[test]
fn index_404_names_the_url() {
    let models = tempfile::tempdir().unwrap();
    let srv = routes(vec![]);
    let url = srv.url("/missing/index.json");
    let e = install_pair(models.path(), "en", "ru", &url, &opts(), &mut yes()).unwrap_err();
    assert!(matches!(e, ModelError::ArgosIndex { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("404") && msg.contains(&url), "{msg}");
    assert!(msg.contains("AUTOSUB_ARGOS_INDEX"), "{msg}");
    assert_eq!(srv.requests().len(), 1, "a 404 is not retried");
    assert!(!models.path().join("argos").exists());
}

#[test]
fn invalid_index_json_names_the_url() {
    let models = tempfile::tempdir().unwrap();
    let srv = routes(vec![("/index.json", b"<html>not json</html>".to_vec())]);
    let url = srv.url("/index.json");
    let e = install_pair(models.path(), "en", "ru", &url, &opts(), &mut yes()).unwrap_err();
    assert!(matches!(e, ModelError::ArgosIndex { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&url) && msg.contains("JSON"), "{msg}");
    assert!(!models.path().join("argos").exists());
}

#[test]
fn index_server_errors_are_retried() {
    let srv = TestServer::start(|i, req, s| {
        if i < 2 {
            status(s, "503 Service Unavailable")
        } else {
            serve(
                s,
                req,
                br#"[{"package_version":"1","from_code":"en","to_code":"ru"}]"#,
            )
        }
    });
    let entries = autosub_models::fetch_index(&srv.url("/index.json"), &opts()).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(srv.requests().len(), 3);
    let e = autosub_models::fetch_index("ftp://127.0.0.1/index.json", &opts()).unwrap_err();
    assert!(matches!(e, ModelError::ArgosIndex { .. }), "{e}");
}

#[test]
fn pair_not_in_index_lists_available_pairs() {
    let models = tempfile::tempdir().unwrap();
    let srv = index_server(
        |url| {
            json!([
                index_entry("en", "de", "1.0", &url("/a")),
                index_entry("en", "es", "1.0", &url("/b")),
                index_entry("de", "ru", "1.0", &url("/c")),
                index_entry("fr", "it", "1.0", &url("/d")),
            ])
        },
        vec![],
    );
    let url = srv.url("/index.json");
    let e = install_pair(models.path(), "en", "ru", &url, &opts(), &mut yes()).unwrap_err();
    assert!(matches!(e, ModelError::ArgosPairNotFound { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("en->ru") && msg.contains(&url), "{msg}");
    assert!(
        msg.contains("available from en: en->de, en->es")
            && msg.contains("available to ru: de->ru"),
        "{msg}"
    );
    assert!(!msg.contains("fr->it"), "{msg}");
    assert_eq!(srv.paths(), ["/index.json"]);
    assert!(!models.path().join("argos").exists());

    let e = install_pair(models.path(), "xx", "yy", &url, &opts(), &mut yes()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("available from xx: none") && msg.contains("available to yy: none"),
        "{msg}"
    );
    let e = install_pair(models.path(), "en", "r/u", &url, &opts(), &mut yes()).unwrap_err();
    assert!(matches!(e, ModelError::InvalidLanguageCode(_)), "{e}");
}

#[test]
fn ipfs_only_entry_is_explained() {
    let models = tempfile::tempdir().unwrap();
    let entries = parse_index(
        &json!([{
            "package_version": "1.0", "from_code": "en", "to_code": "ru",
            "code": "translate-en_ru", "links": ["ipfs://QmSomething"]
        }])
        .to_string(),
    )
    .unwrap();
    let e = install_entry(models.path(), &entries[0], &opts(), &mut yes()).unwrap_err();
    assert!(matches!(e, ModelError::ArgosNoLink { .. }), "{e}");
    assert!(e.to_string().contains("ipfs://QmSomething"), "{e}");
    assert!(argos_contents(models.path()).is_empty());
}

// ---------------------------------------------------------------------------------------
// Import of local files.

fn import_bytes(models: &Path, bytes: &[u8]) -> Result<InstalledPackage, ModelError> {
    let here = tempfile::tempdir().unwrap();
    let f = write_file(here.path(), "x.argosmodel", bytes);
    import_package(models, &f)
}

#[test]
fn import_local_file() {
    let models = tempfile::tempdir().unwrap();
    let here = tempfile::tempdir().unwrap();
    let bytes = package("en", "ru", "1.9");
    let f = write_file(here.path(), "en_ru.argosmodel", &bytes);
    let p = import_package(models.path(), &f).unwrap();
    check_installed(&p, models.path(), "en", "ru", "1.9");
    assert!(!p.verified);
    assert_eq!(p.source.as_deref(), Some(f.display().to_string().as_str()));
    assert_eq!(p.archive_sha256.as_deref(), Some(sha(&bytes).as_str()));
    assert_eq!(record(&p)["size"], json!(bytes.len()));
    assert!(f.is_file(), "an imported file is left where it was");
    assert_eq!(argos_contents(models.path()), ["translate-en_ru"]);
}

#[test]
fn separate_source_and_target_vocabularies_are_accepted() {
    let models = tempfile::tempdir().unwrap();
    let mut items = package_items("en", "ru", "1.0");
    items.retain(|(n, _)| !n.ends_with("shared_vocabulary.json"));
    items.push((
        "translate-en_ru-1_0/model/source_vocabulary.txt".into(),
        Item::File(b"a\n".to_vec()),
    ));
    items.push((
        "translate-en_ru-1_0/model/target_vocabulary.json".into(),
        Item::File(b"[\"a\"]".to_vec()),
    ));
    let p = import_bytes(models.path(), &zip_of(&items)).unwrap();
    assert_eq!(p.version, "1.0");
    assert!(p.model_dir.join("source_vocabulary.txt").is_file());
}

fn assert_not_zip(models: &Path, e: ModelError) {
    assert!(matches!(e, ModelError::NotArgosZip { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("not a valid .argosmodel (zip) file: "),
        "{e}"
    );
    assert!(
        argos_contents(models).is_empty(),
        "{:?}",
        argos_contents(models)
    );
}

fn assert_refused(models: &Path, e: ModelError, needle: &str) {
    assert!(matches!(e, ModelError::InvalidArgosPackage { .. }), "{e}");
    assert!(e.to_string().contains(needle), "{needle:?} not in: {e}");
    assert!(
        argos_contents(models).is_empty(),
        "{:?}",
        argos_contents(models)
    );
}

#[test]
fn random_bytes_are_not_a_zip() {
    let models = tempfile::tempdir().unwrap();
    let e = import_bytes(models.path(), &noise(50_000, 99)).unwrap_err();
    assert_not_zip(models.path(), e);
    let e = import_bytes(models.path(), b"").unwrap_err();
    assert_not_zip(models.path(), e);
}

#[test]
fn truncated_zip_is_refused() {
    let models = tempfile::tempdir().unwrap();
    let bytes = package("en", "ru", "1.9");
    let e = import_bytes(models.path(), &bytes[..bytes.len() / 2]).unwrap_err();
    assert_not_zip(models.path(), e);
    // Cut just before the end of the central directory, too.
    let e = import_bytes(models.path(), &bytes[..bytes.len() - 10]).unwrap_err();
    assert_not_zip(models.path(), e);
}

#[test]
fn corrupt_entry_data_fails_the_crc_and_leaves_nothing() {
    let models = tempfile::tempdir().unwrap();
    let mut items = package_items("en", "ru", "1.0");
    let marker = b"MARKER-0123456789-MARKER".to_vec();
    let mut data = model_bin("1.0");
    data.extend_from_slice(&marker);
    data.extend_from_slice(&noise(1000, 5));
    for (n, item) in items.iter_mut() {
        if n.ends_with("model/model.bin") {
            *item = Item::Stored(data.clone());
        }
    }
    let mut bytes = zip_of(&items);
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker.as_slice())
        .unwrap();
    bytes[at] ^= 0xff;
    let e = import_bytes(models.path(), &bytes).unwrap_err();
    assert!(e.to_string().to_lowercase().contains("checksum"), "{e}");
    assert_not_zip(models.path(), e);
}

#[test]
fn parent_dir_entry_is_refused() {
    let models = tempfile::tempdir().unwrap();
    let mut items = package_items("en", "ru", "1.0");
    items.push((
        "translate-en_ru-1_0/../evil".into(),
        Item::File(b"x".to_vec()),
    ));
    let e = import_bytes(models.path(), &zip_of(&items)).unwrap_err();
    assert_refused(models.path(), e, "..");
    assert!(!models.path().join("evil").exists());
    let mut items = package_items("en", "ru", "1.0");
    items.push(("../evil".into(), Item::File(b"x".to_vec())));
    let e = import_bytes(models.path(), &zip_of(&items)).unwrap_err();
    assert_refused(models.path(), e, "..");
}

#[test]
fn absolute_path_entry_is_refused() {
    let models = tempfile::tempdir().unwrap();
    let evil = models.path().join("evil-absolute");
    let mut items = package_items("en", "ru", "1.0");
    items.push((evil.display().to_string(), Item::File(b"x".to_vec())));
    let e = import_bytes(models.path(), &zip_of(&items)).unwrap_err();
    assert_refused(models.path(), e, "absolute");
    assert!(!evil.exists());
}

#[test]
fn symlink_entry_is_refused() {
    let models = tempfile::tempdir().unwrap();
    let mut items = package_items("en", "ru", "1.0");
    items.push((
        "translate-en_ru-1_0/model/link".into(),
        Item::Symlink("/etc/passwd"),
    ));
    let e = import_bytes(models.path(), &zip_of(&items)).unwrap_err();
    assert_refused(models.path(), e, "symbolic link");
}

#[test]
fn two_top_folders_are_refused() {
    let models = tempfile::tempdir().unwrap();
    let mut items = package_items("en", "ru", "1.0");
    items.push(("other/file.txt".into(), Item::File(b"x".to_vec())));
    let e = import_bytes(models.path(), &zip_of(&items)).unwrap_err();
    assert_refused(models.path(), e, "2 top-level folders");
    // A file next to the top folder is refused too.
    let mut items = package_items("en", "ru", "1.0");
    items.push(("stray.txt".into(), Item::File(b"x".to_vec())));
    let e = import_bytes(models.path(), &zip_of(&items)).unwrap_err();
    assert_refused(models.path(), e, "outside a top folder");
}

#[test]
fn missing_model_bin_is_refused() {
    let models = tempfile::tempdir().unwrap();
    let mut items = package_items("en", "ru", "1.0");
    items.retain(|(n, _)| !n.ends_with("model.bin"));
    let e = import_bytes(models.path(), &zip_of(&items)).unwrap_err();
    assert_refused(models.path(), e, "model/model.bin");
    let mut items = package_items("en", "ru", "1.0");
    items.retain(|(n, _)| !n.ends_with("shared_vocabulary.json"));
    let e = import_bytes(models.path(), &zip_of(&items)).unwrap_err();
    assert_refused(models.path(), e, "vocabulary");
}

#[test]
fn bad_metadata_is_refused() {
    let models = tempfile::tempdir().unwrap();
    let cases: [(&[u8], &str); 5] = [
        (b"not json", "metadata.json"),
        (
            br#"{"package_version":"1","from_code":"english","to_code":"ru"}"#,
            "ISO 639",
        ),
        (
            br#"{"package_version":"1","from_code":"en","to_code":"../x"}"#,
            "ISO 639",
        ),
        (
            br#"{"package_version":"1","from_code":"en","to_code":"ru","type":"sbd"}"#,
            "not a translation package",
        ),
        (br#"{"from_code":"en","to_code":"ru"}"#, "package_version"),
    ];
    for (meta, needle) in cases {
        let mut items = package_items("en", "ru", "1.0");
        for (n, item) in items.iter_mut() {
            if n.ends_with("metadata.json") {
                *item = Item::File(meta.to_vec());
            }
        }
        let e = import_bytes(models.path(), &zip_of(&items)).unwrap_err();
        assert_refused(models.path(), e, needle);
    }
}

#[test]
fn too_many_entries_are_refused() {
    let models = tempfile::tempdir().unwrap();
    let mut items = package_items("en", "ru", "1.0");
    let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, item) in items.drain(..) {
        match item {
            Item::File(d) | Item::Stored(d) => {
                w.start_file(name, opts).unwrap();
                w.write_all(&d).unwrap();
            }
            Item::Dir => w.add_directory(name, opts).unwrap(),
            Item::Symlink(_) => unreachable!(),
        }
    }
    for i in 0..10_000 {
        w.start_file(format!("translate-en_ru-1_0/stanza/f{i}"), opts)
            .unwrap();
    }
    let bytes = w.finish().unwrap().into_inner();
    let e = import_bytes(models.path(), &bytes).unwrap_err();
    assert_refused(models.path(), e, "entries, more than the 10000 allowed");
}

#[test]
fn list_skips_broken_folders_and_sorts_by_pair() {
    let models = tempfile::tempdir().unwrap();
    for (from, to) in [("ru", "en"), ("de", "en"), ("en", "ru")] {
        import_bytes(models.path(), &package(from, to, "1.0")).unwrap();
    }
    let argos = models.path().join("argos");
    std::fs::create_dir(argos.join("empty")).unwrap();
    std::fs::create_dir(argos.join("bad-meta")).unwrap();
    std::fs::write(argos.join("bad-meta/metadata.json"), b"{").unwrap();
    // A copy without its model is skipped.
    std::fs::create_dir(argos.join("no-model")).unwrap();
    std::fs::copy(
        argos.join("translate-en_ru/metadata.json"),
        argos.join("no-model/metadata.json"),
    )
    .unwrap();
    std::fs::write(argos.join("stray-file"), b"x").unwrap();
    // Hidden folders are work in progress, even when complete.
    let hidden = argos.join(".import-1-1");
    std::fs::create_dir(&hidden).unwrap();
    for f in walk(&argos.join("translate-de_en")) {
        let rel = f.strip_prefix(argos.join("translate-de_en")).unwrap();
        std::fs::create_dir_all(hidden.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(&f, hidden.join(rel)).unwrap();
    }
    let pairs: Vec<(String, String)> = list_packages(models.path())
        .into_iter()
        .map(|p| (p.from, p.to))
        .collect();
    let s = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(pairs, [s("de", "en"), s("en", "ru"), s("ru", "en")]);
    assert!(list_packages(&models.path().join("nowhere")).is_empty());
}

#[test]
fn remove_package_removes_only_that_pair() {
    let models = tempfile::tempdir().unwrap();
    import_bytes(models.path(), &package("en", "ru", "1.0")).unwrap();
    import_bytes(models.path(), &package("ru", "en", "1.0")).unwrap();
    let removed = remove_package(models.path(), "EN", "ru").unwrap();
    assert_eq!(removed, [models.path().join("argos/translate-en_ru")]);
    assert!(find_package(models.path(), "en", "ru").is_none());
    assert!(find_package(models.path(), "ru", "en").is_some());
    assert_eq!(argos_contents(models.path()), ["translate-ru_en"]);
    assert!(remove_package(models.path(), "en", "ru")
        .unwrap()
        .is_empty());
    assert!(remove_package(models.path(), "e", "ru").is_err());
}

#[test]
fn reimport_replaces_the_same_pair() {
    let models = tempfile::tempdir().unwrap();
    import_bytes(models.path(), &package("en", "ru", "1.1")).unwrap();
    // A downgrade through import is allowed: the user asked for this file.
    let p = import_bytes(models.path(), &package("en", "ru", "1.0")).unwrap();
    check_installed(&p, models.path(), "en", "ru", "1.0");
    assert_eq!(argos_contents(models.path()), ["translate-en_ru"]);
}
