//! Fetching links with yt-dlp, against HTTP servers this test starts on 127.0.0.1. No connection ever goes to
//! another address: refused targets (10.1.2.3, ::1, ...) are refused before anything connects, and the proxy's
//! connections are listed and checked to be loopback ones.
//!
//! These tests need the yt-dlp program (scripts/setup.sh installs the pinned version) and ffprobe.

mod fetch_support;

use autosub_core::fetch::{self, FetchOptions, Policy, StaticResolver};
use autosub_core::media::Tools;
use autosub_core::{Error, ErrorKind};
use fetch_support::{send, send_file, Recorder, Server};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn sample() -> &'static [u8] {
    static DATA: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DATA.get_or_init(|| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sample.mp4");
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    })
}

/// Fails (does not skip) without yt-dlp.
fn require_ytdlp() {
    if let Err(e) = fetch::ytdlp_version(&fetch::default_ytdlp()) {
        panic!(
            "yt-dlp is needed for the fetch tests and is not usable ({e}); run scripts/setup.sh (or `{}`)",
            fetch::ytdlp::INSTALL_HINT
        );
    }
}

/// Options for tests: only 127.0.0.1 allowed, short timeouts, a fresh cache folder.
fn options(cache: &Path) -> FetchOptions {
    let mut o = FetchOptions::new(cache);
    o.policy = Policy::allowing(&["127.0.0.1"]).unwrap();
    o.resolver = Arc::new(StaticResolver::new());
    o.timeout = Duration::from_secs(40);
    o.idle_timeout = Duration::from_secs(10);
    o.socket_timeout = Duration::from_secs(10);
    o.retries = 0;
    o.retry_backoff = Duration::from_millis(100);
    o
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// After a failure: nothing in the cache folder, and no connection but to loopback.
fn assert_clean_failure(cache: &Path, rec: &Recorder) {
    assert_eq!(
        listing(cache),
        Vec::<String>::new(),
        "cache folder after a failure"
    );
    assert_only_loopback(rec);
}

fn assert_only_loopback(rec: &Recorder) {
    for a in rec.connections() {
        assert!(a.ip().is_loopback(), "the proxy connected to {a}");
    }
}

/// A server with the sample as a direct link and pages around it.
fn site() -> Server {
    Server::start(|req, s, _| {
        match req.path.as_str() {
        "/v/sample.mp4" => send_file(req, s, "video/mp4", sample(), None),
        "/page.html" => send(
            s,
            "200 OK",
            "text/html",
            br#"<html><head><title>My clip page</title><meta property="og:video" content="/media/clip.mp4"></head>
<body><h1>Clip</h1><video src="/media/clip.mp4" controls></video></body></html>"#,
        ),
        "/media/clip.mp4" => send_file(req, s, "video/mp4", sample(), None),
        "/fake.mp4" => send_file(req, s, "video/mp4", b"<html>this is not a video</html>", None),
        "/two.html" => send(
            s,
            "200 OK",
            "text/html",
            br#"<html><head><title>Two clips</title></head><body><video src="/v/sample.mp4"></video><video src="/media/clip.mp4"></video></body></html>"#,
        ),
        "/novideo.html" => send(
            s,
            "200 OK",
            "text/html",
            b"<html><head><title>Nothing</title></head><body><p>No video here.</p></body></html>",
        ),
        "/to-private" => send(
            s,
            "302 Found\r\nLocation: http://10.1.2.3/x.mp4",
            "text/plain",
            b"moved",
        ),
        "/to-private-https" => send(
            s,
            "301 Moved Permanently\r\nLocation: https://10.1.2.3/x.mp4",
            "text/plain",
            b"moved",
        ),
        "/to-loopback-v6" => send(
            s,
            "302 Found\r\nLocation: http://[::1]:9/x.mp4",
            "text/plain",
            b"moved",
        ),
        _ => send(s, "404 Not Found", "text/plain", b"not found"),
    }
    })
}

#[test]
fn direct_mp4_is_downloaded_probed_and_cached() {
    require_ytdlp();
    let srv = site();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let rec = Recorder::default();
    let got = fetch::fetch(
        &srv.url("/v/sample.mp4"),
        &options(&cache),
        &Tools::default(),
        &rec,
    )
    .unwrap_or_else(|e| panic!("{e}\n{:#?}", rec.all()));
    assert!(!got.from_cache);
    assert_eq!(
        std::fs::read(&got.path).unwrap(),
        sample(),
        "byte-identical"
    );
    assert!(got.path.starts_with(&cache));
    assert_eq!(got.path.file_name().unwrap(), "media.mp4");
    let ms = got.duration_ms.unwrap();
    assert!((10_900..=11_100).contains(&ms), "{ms}");
    assert_eq!(got.extractor.as_deref(), Some("Generic"));
    assert_eq!(
        got.ytdlp_version,
        fetch::ytdlp_version(&fetch::default_ytdlp()).unwrap()
    );
    assert_eq!(got.url, srv.url("/v/sample.mp4"));
    // Progress in bytes: a start, progress up to the full size, a finish.
    let ev = rec.all();
    assert!(
        ev.iter().any(|e| e.starts_with("start download")),
        "{ev:#?}"
    );
    assert!(
        ev.iter()
            .any(|e| *e == format!("progress download {}", sample().len())),
        "{ev:#?}"
    );
    assert!(ev.iter().any(|e| e == "finish download"));
    // yt-dlp ran behind the proxy, never through a shell, with the link after `--`.
    let runs = rec.runs();
    let meta_run = runs.iter().find(|r| r.contains(" -J ")).unwrap();
    assert!(meta_run.contains("--proxy http://127.0.0.1:"), "{meta_run}");
    assert!(
        meta_run.ends_with(&format!("-- {}", srv.url("/v/sample.mp4"))),
        "{meta_run}"
    );
    assert!(
        runs.iter().any(|r| r.contains("--load-info-json")),
        "{runs:#?}"
    );
    assert!(!rec.connections().is_empty());
    assert_only_loopback(&rec);
    // The cache holds one finished entry: the file and its metadata, nothing else.
    let entries = listing(&cache);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        listing(&cache.join(&entries[0])),
        ["fetch.json", "media.mp4"]
    );
}

#[test]
fn page_with_a_video_tag_is_followed() {
    require_ytdlp();
    let srv = site();
    let tmp = tempfile::tempdir().unwrap();
    let rec = Recorder::default();
    let got = fetch::fetch(
        &srv.url("/page.html"),
        &options(tmp.path()),
        &Tools::default(),
        &rec,
    )
    .unwrap_or_else(|e| panic!("{e}\n{:#?}", rec.all()));
    assert_eq!(std::fs::read(&got.path).unwrap(), sample());
    assert!(
        got.title.as_deref().unwrap_or("").contains("My clip page"),
        "{got:?}"
    );
    assert!(srv.hits("/media/clip.mp4") >= 1);
    assert_only_loopback(&rec);
}

#[test]
fn playlists_are_refused_unless_an_item_is_chosen() {
    require_ytdlp();
    let srv = site();
    let tmp = tempfile::tempdir().unwrap();
    let rec = Recorder::default();
    let mut o = options(tmp.path());
    let e = fetch::fetch(&srv.url("/two.html"), &o, &Tools::default(), &rec).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadInput);
    assert!(
        e.to_string()
            .contains("is a playlist or channel of 2 videos"),
        "{e}"
    );
    assert_eq!(srv.hits("/media/clip.mp4"), 0, "nothing downloaded");
    assert_clean_failure(tmp.path(), &rec);
    o.playlist_item = Some(2);
    let got = fetch::fetch(&srv.url("/two.html"), &o, &Tools::default(), &rec)
        .unwrap_or_else(|e| panic!("{e}\n{:#?}", rec.all()));
    assert_eq!(std::fs::read(&got.path).unwrap(), sample());
    assert!(
        srv.hits("/media/clip.mp4") >= 1,
        "item 2 is /media/clip.mp4"
    );
}

#[test]
fn not_found_and_pages_without_video_fail_clearly() {
    require_ytdlp();
    let srv = site();
    let tmp = tempfile::tempdir().unwrap();
    let rec = Recorder::default();
    let e = fetch::fetch(
        &srv.url("/missing.mp4"),
        &options(tmp.path()),
        &Tools::default(),
        &rec,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadInput, "{e}");
    assert!(e.to_string().contains("not found (HTTP 404"), "{e}");
    assert_clean_failure(tmp.path(), &rec);
    let e = fetch::fetch(
        &srv.url("/novideo.html"),
        &options(tmp.path()),
        &Tools::default(),
        &rec,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadInput, "{e}");
    assert!(e.to_string().contains("no video found at this link"), "{e}");
    assert_clean_failure(tmp.path(), &rec);
}

#[test]
fn redirect_to_a_private_address_is_refused_by_the_proxy() {
    require_ytdlp();
    let srv = site();
    let tmp = tempfile::tempdir().unwrap();
    let rec = Recorder::default();
    let e = fetch::fetch(
        &srv.url("/to-private"),
        &options(tmp.path()),
        &Tools::default(),
        &rec,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadInput, "{e}");
    assert_eq!(
        e.to_string(),
        "redirected or linked to 10.1.2.3 (private network address): refused"
    );
    assert_eq!(srv.hits("/to-private"), 1);
    // The proxy connected to our server only; 10.1.2.3 was refused without a connection.
    assert_eq!(rec.connections(), vec![srv.addr]);
    assert_clean_failure(tmp.path(), &rec);
    // The same through CONNECT (https), and to a loopback address outside the allow-list.
    for (path, want) in [
        (
            "/to-private-https",
            "redirected or linked to 10.1.2.3 (private network address): refused",
        ),
        (
            "/to-loopback-v6",
            "redirected or linked to ::1 (loopback address): refused",
        ),
    ] {
        let rec = Recorder::default();
        let e = fetch::fetch(
            &srv.url(path),
            &options(tmp.path()),
            &Tools::default(),
            &rec,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), want);
        assert_eq!(rec.connections(), vec![srv.addr]);
        assert_clean_failure(tmp.path(), &rec);
    }
}

#[test]
fn https_goes_through_the_proxy_as_a_connect_tunnel() {
    require_ytdlp();
    // Not a TLS server: it records the first bytes it gets (a TLS handshake, through the tunnel) and hangs up.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let first = Arc::new(std::sync::Mutex::new(Vec::new()));
    let f = Arc::clone(&first);
    std::thread::spawn(move || {
        if let Ok((mut c, _)) = listener.accept() {
            use std::io::Read;
            c.set_read_timeout(Some(Duration::from_secs(10))).ok();
            let mut b = [0u8; 3];
            if c.read_exact(&mut b).is_ok() {
                f.lock().unwrap().extend_from_slice(&b);
            }
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let rec = Recorder::default();
    let e = fetch::fetch(
        &format!("https://{addr}/x.mp4"),
        &options(tmp.path()),
        &Tools::default(),
        &rec,
    )
    .unwrap_err();
    eprintln!("https to a server that is not TLS: {e}");
    assert_eq!(e.kind(), ErrorKind::Internal, "a network failure: {e}");
    assert_eq!(rec.connections(), vec![addr]);
    assert_eq!(
        first.lock().unwrap()[..2],
        [0x16, 0x03],
        "a TLS handshake came through the tunnel"
    );
    assert_clean_failure(tmp.path(), &rec);
}

#[test]
fn bad_links_are_refused_before_ytdlp_runs() {
    // No yt-dlp needed: a program that does not exist proves it is never started.
    let tmp = tempfile::tempdir().unwrap();
    let mut o = options(tmp.path());
    o.ytdlp = PathBuf::from("/nonexistent/yt-dlp");
    o.resolver = Arc::new(
        StaticResolver::new().with("intranet.test", &["10.0.0.5".parse::<IpAddr>().unwrap()]),
    );
    let rec = Recorder::default();
    for (url, want) in [
        (
            "file:///etc/passwd",
            "only http:// and https:// links can be fetched, not file:",
        ),
        (
            "ftp://127.0.0.1/x",
            "only http:// and https:// links can be fetched, not ftp:",
        ),
        (
            "http://[::1]/",
            "refusing to fetch from ::1: loopback address",
        ),
        ("http://127.1/", "refusing the numeric host \"127.1\""),
        ("http://0x7f.0.0.1/", "refusing the numeric host"),
        ("http://2130706433/", "refusing the numeric host"),
        (
            "-http://127.0.0.1/x.mp4",
            "refusing a link that begins with '-'",
        ),
        (
            "--exec=touch /tmp/pwned",
            "refusing a link that begins with '-'",
        ),
        ("http://127.0.0.1/a b", "spaces or control characters"),
        ("http://u:p@127.0.0.1/", "user name or password"),
        (
            "http://10.0.0.5/x.mp4",
            "refusing to fetch from 10.0.0.5: private network address",
        ),
        (
            "http://169.254.169.254/latest/meta-data/",
            "cloud metadata address",
        ),
        (
            "http://intranet.test/",
            "refusing to fetch from intranet.test (10.0.0.5): private network address",
        ),
    ] {
        let e = fetch::fetch(url, &o, &Tools::default(), &rec).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadInput, "{url}: {e:?}");
        assert!(e.to_string().contains(want), "{url}: {e}");
    }
    assert_eq!(rec.runs(), Vec::<String>::new(), "no program was started");
    assert_eq!(listing(tmp.path()), Vec::<String>::new());
}

#[test]
fn names_resolve_through_the_resolver_and_the_proxy_connects_to_the_vetted_address() {
    require_ytdlp();
    let srv = site();
    let tmp = tempfile::tempdir().unwrap();
    let mut o = options(tmp.path());
    // yt-dlp itself could not resolve video.test: only the proxy's resolver knows it.
    o.resolver = Arc::new(
        StaticResolver::new().with("video.test", &["127.0.0.1".parse::<IpAddr>().unwrap()]),
    );
    let rec = Recorder::default();
    let url = format!("http://VIDEO.test:{}/v/sample.mp4#t=3", srv.addr.port());
    let got = fetch::fetch(&url, &o, &Tools::default(), &rec)
        .unwrap_or_else(|e| panic!("{e}\n{:#?}", rec.all()));
    assert_eq!(
        got.url,
        format!("http://video.test:{}/v/sample.mp4", srv.addr.port())
    );
    assert_eq!(std::fs::read(&got.path).unwrap(), sample());
    let hosts: Vec<_> = srv
        .requests()
        .iter()
        .filter_map(|r| r.header("host").map(str::to_owned))
        .collect();
    assert!(
        hosts
            .iter()
            .all(|h| h == &format!("video.test:{}", srv.addr.port())),
        "{hosts:?}"
    );
    assert_only_loopback(&rec);
}

#[test]
fn cache_is_reused_while_fresh_and_refreshed_when_expired() {
    require_ytdlp();
    let srv = site();
    let tmp = tempfile::tempdir().unwrap();
    let mut o = options(tmp.path());
    let url = srv.url("/v/sample.mp4");
    let rec = Recorder::default();
    let first = fetch::fetch(&url, &o, &Tools::default(), &rec).unwrap();
    let hits = srv.hits("/v/sample.mp4");
    assert!(hits >= 2, "metadata and download: {hits}");
    // Same link in another spelling, same limits: from the cache, the server is not asked.
    let again = format!("HTTP://127.0.0.1:{}/v/sample.mp4#x", srv.addr.port());
    let second = fetch::fetch(&again, &o, &Tools::default(), &rec).unwrap();
    assert!(second.from_cache);
    assert_eq!(second.path, first.path);
    assert_eq!(second.duration_ms, first.duration_ms);
    assert_eq!(srv.hits("/v/sample.mp4"), hits);
    // Expired (max age zero): downloaded again, the entry replaced in place.
    o.cache_max_age = Duration::ZERO;
    let third = fetch::fetch(&url, &o, &Tools::default(), &rec).unwrap();
    assert!(!third.from_cache);
    assert_eq!(third.path, first.path);
    assert!(srv.hits("/v/sample.mp4") > hits);
    assert_eq!(std::fs::read(&third.path).unwrap(), sample());
    assert_eq!(listing(tmp.path()).len(), 1, "{:?}", listing(tmp.path()));
}

#[test]
fn a_stalled_download_is_stopped_by_the_idle_timeout() {
    require_ytdlp();
    let srv = Server::start(|req, s, ctx| {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: {}\r\n\r\n",
            sample().len()
        );
        s.write_all(head.as_bytes())?;
        if req.method == "GET" {
            s.write_all(&sample()[..50_000])?;
            s.flush()?;
            ctx.sleep(Duration::from_secs(30)); // then the test is over
        }
        Ok(())
    });
    let tmp = tempfile::tempdir().unwrap();
    let mut o = options(tmp.path());
    o.idle_timeout = Duration::from_secs(2);
    o.socket_timeout = Duration::from_secs(20);
    let rec = Recorder::default();
    let t0 = Instant::now();
    let e = fetch::fetch(&srv.url("/stall.mp4"), &o, &Tools::default(), &rec).unwrap_err();
    assert!(
        matches!(e, Error::Stalled { .. }),
        "{e:?}\n{:#?}",
        rec.all()
    );
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    assert_clean_failure(tmp.path(), &rec);
}

#[test]
fn a_connection_dropped_mid_file_is_retried_to_a_byte_identical_file() {
    require_ytdlp();
    // The first 6 requests get half of what they ask for, then the connection drops: more than yt-dlp's own 3
    // retries, so our retry of the whole download (which resumes the partial file) has to finish the job.
    let served = Arc::new(AtomicUsize::new(0));
    let n = Arc::clone(&served);
    let srv = Server::start(move |req, s, _| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        let remaining = sample().len() - fetch_support::range_start(req).unwrap_or(0) as usize;
        let cut = (i < 6).then_some(remaining / 2);
        send_file(req, s, "video/mp4", sample(), cut)
    });
    let tmp = tempfile::tempdir().unwrap();
    let mut o = options(tmp.path());
    o.retries = 3;
    let rec = Recorder::default();
    let got = fetch::fetch(&srv.url("/flaky.mp4"), &o, &Tools::default(), &rec)
        .unwrap_or_else(|e| panic!("{e}\n{:#?}", rec.all()));
    assert_eq!(
        std::fs::read(&got.path).unwrap(),
        sample(),
        "byte-identical"
    );
    let downloads = rec
        .runs()
        .iter()
        .filter(|r| r.contains("--load-info-json"))
        .count();
    assert!(
        downloads >= 2,
        "our retry ran: {downloads} download runs\n{:#?}",
        rec.all()
    );
    assert!(rec
        .all()
        .iter()
        .any(|e| e.starts_with("warning download failed")));
    let resumed = srv
        .requests()
        .iter()
        .filter(|r| r.header("range").is_some_and(|v| v != "bytes=0-"))
        .count();
    assert!(resumed >= 1, "downloads resumed with Range");
}

#[test]
fn an_announced_size_above_the_limit_is_refused_before_the_body_is_read() {
    require_ytdlp();
    const ANNOUNCED: u64 = 200_000_000;
    let written = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let (w, f) = (Arc::clone(&written), Arc::clone(&finished));
    let srv = Server::start(move |_req, s, ctx| {
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: {ANNOUNCED}\r\n\r\n"
        )?;
        // The body, slowly, counting what the socket took, until the other side goes away.
        let chunk = vec![0u8; 64 * 1024];
        let r = (|| {
            while w.load(Ordering::SeqCst) < ANNOUNCED {
                s.write_all(&chunk)?;
                w.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                if !ctx.sleep(Duration::from_millis(10)) {
                    break;
                }
            }
            Ok::<(), std::io::Error>(())
        })();
        f.fetch_add(1, Ordering::SeqCst);
        r
    });
    let tmp = tempfile::tempdir().unwrap();
    let mut o = options(tmp.path());
    o.max_filesize = Some(5_000_000);
    let rec = Recorder::default();
    let e = fetch::fetch(&srv.url("/huge.mp4"), &o, &Tools::default(), &rec).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadInput, "{e}");
    assert!(
        e.to_string()
            .contains("announced 200.0 MB (200000000 bytes), above the size limit of 5.0 MB"),
        "{e}"
    );
    // The server finds out the body is not wanted: its writes fail long before the announced size.
    let t0 = Instant::now();
    while finished.load(Ordering::SeqCst) < srv.requests().len()
        && t0.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        finished.load(Ordering::SeqCst),
        srv.requests().len(),
        "server still writing"
    );
    let sent = written.load(Ordering::SeqCst);
    assert!(
        sent < 20_000_000,
        "the server wrote {sent} bytes of {ANNOUNCED}"
    );
    assert_clean_failure(tmp.path(), &rec);
}

#[test]
fn a_video_longer_than_the_limit_is_refused_after_probing() {
    require_ytdlp();
    let srv = site();
    let tmp = tempfile::tempdir().unwrap();
    let mut o = options(tmp.path());
    o.max_duration_s = Some(5);
    let rec = Recorder::default();
    let e = fetch::fetch(&srv.url("/v/sample.mp4"), &o, &Tools::default(), &rec).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadInput, "{e}");
    assert!(
        e.to_string()
            .contains("the video is 11 s, longer than the limit of 5 s"),
        "{e}"
    );
    assert_clean_failure(tmp.path(), &rec);
}

#[test]
fn a_download_that_is_not_media_is_refused_after_probing() {
    require_ytdlp();
    let srv = site();
    let tmp = tempfile::tempdir().unwrap();
    let rec = Recorder::default();
    let e = fetch::fetch(
        &srv.url("/fake.mp4"),
        &options(tmp.path()),
        &Tools::default(),
        &rec,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadInput, "{e}");
    assert!(
        e.to_string()
            .contains("the downloaded file is not a video or audio file"),
        "{e}"
    );
    assert_clean_failure(tmp.path(), &rec);
}
