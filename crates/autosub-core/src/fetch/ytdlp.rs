//! yt-dlp: the command lines we run, and pure functions that read its output (metadata JSON, progress lines,
//! error messages).
//!
//! yt-dlp is always started through [`Cmd`] (no shell), with `--ignore-config`, `--no-plugin-dirs`, our proxy,
//! and the link after `--`. Its version is pinned in `scripts/setup.sh` ([`PINNED_VERSION`]).

use super::FetchError;
use crate::proc::Cmd;
use crate::progress::Sink;
use crate::Result;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

/// The yt-dlp release the project is tested with (PyPI `yt-dlp`).
pub const PINNED_VERSION: &str = "2025.10.22";
/// How to install it (Debian's `yt-dlp` package is a 2023 build, too old for today's sites).
pub const INSTALL_HINT: &str = "pip install yt-dlp==2025.10.22";
/// Marks our progress lines (`--progress-template`).
pub const PROGRESS_TAG: &str = "[autosub-progress]";
/// Downloader protocols allowed: the ones yt-dlp handles itself over HTTP(S), so every byte goes through the proxy
/// (no rtmp/rtsp/mms helpers, no ffmpeg-driven downloads).
const PROTOCOLS: &str = "[protocol~='^(https?|m3u8_native|http_dash_segments)$']";

/// A `Cmd` for yt-dlp with the name of what provides it (shown when it is missing).
pub fn command(ytdlp: &Path) -> Cmd {
    Cmd::new(ytdlp, &format!("pip:yt-dlp=={PINNED_VERSION}"))
}

/// `yt-dlp --version`.
pub fn version(ytdlp: &Path, sink: &dyn Sink) -> Result<String> {
    let out = command(ytdlp)
        .arg("--version")
        .capture_stdout()
        .timeout(Duration::from_secs(60))
        .run(sink, &mut |_| {})?;
    let v = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || v.is_empty() {
        return Err(crate::Error::ProgramFailed {
            program: "yt-dlp".into(),
            message: format!("--version failed: {}", out.last_error_line()),
        });
    }
    Ok(v)
}

/// Options every run gets: no configuration files, plugins, update checks, caches or cookies; our proxy;
/// timeouts and yt-dlp's own retries.
pub fn common_args(proxy_url: &str, socket_timeout: Duration) -> Vec<OsString> {
    let mut a: Vec<OsString> = [
        "--ignore-config",
        "--no-plugin-dirs",
        "--no-update",
        "--no-cache-dir",
        "--no-cookies",
        "--no-exec",
        "--no-mtime",
        "--color",
        "never",
        "--downloader",
        "m3u8:native",
        "--retries",
        "3",
        "--fragment-retries",
        "3",
        "--extractor-retries",
        "1",
        "--proxy",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    a.push(proxy_url.into());
    a.push("--socket-timeout".into());
    a.push(socket_timeout.as_secs().max(1).to_string().into());
    a
}

/// The format selector: best video at or below `max_height` plus best audio, else the best single file at or
/// below it, else the smallest there is; only protocols yt-dlp downloads itself. Formats of unknown height count
/// as fitting (`<=?`): a direct link says nothing about its height.
pub fn format_selector(max_height: Option<u32>) -> String {
    let p = PROTOCOLS;
    match max_height {
        Some(h) => format!("bv*[height<=?{h}]{p}+ba{p}/b[height<=?{h}]{p}/wv*{p}+ba{p}/w{p}"),
        None => format!("bv*{p}+ba{p}/b{p}"),
    }
}

/// Arguments of the metadata call (`-J`). Without a playlist item, playlists are listed flat (cheap) so they
/// can be refused; with one, only that item is extracted.
pub fn metadata_args(url: &str, selector: &str, playlist_item: Option<u32>) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["-J".into()];
    match playlist_item {
        None => {
            a.push("--no-playlist".into());
            a.push("--flat-playlist".into());
        }
        Some(n) => {
            a.push("--yes-playlist".into());
            a.push("--playlist-items".into());
            a.push(n.to_string().into());
        }
    }
    a.push("-f".into());
    a.push(selector.into());
    a.push("--".into());
    a.push(url.into());
    a
}

/// Arguments of the download call: from the metadata we checked (`--load-info-json`), into `dir` as `media.EXT`.
pub fn download_args(
    info_json: &Path,
    dir: &Path,
    selector: &str,
    max_filesize: Option<u64>,
    ffmpeg: Option<&Path>,
) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["--load-info-json".into(), info_json.into()];
    let mut home = OsString::from("home:");
    home.push(dir);
    let mut temp = OsString::from("temp:");
    temp.push(dir);
    a.extend([
        "-P".into(),
        home,
        "-P".into(),
        temp,
        "-o".into(),
        "media.%(ext)s".into(),
        "-f".into(),
        selector.into(),
        "--merge-output-format".into(),
        "mp4/mkv".into(),
        "--newline".into(),
        "--progress-delta".into(),
        "0.5".into(),
        "--progress-template".into(),
        format!(
            "download:{PROGRESS_TAG} %(progress.status)s %(progress.downloaded_bytes)s %(progress.total_bytes)s %(progress.total_bytes_estimate)s %(progress.eta)s"
        )
        .into(),
    ]);
    if let Some(max) = max_filesize {
        a.push("--max-filesize".into());
        a.push(max.to_string().into());
    }
    if let Some(f) = ffmpeg {
        a.push("--ffmpeg-location".into());
        a.push(f.into());
    }
    a
}

/// One of our progress lines.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgressLine {
    pub status: String,
    pub downloaded: Option<u64>,
    /// Exact size, else yt-dlp's estimate.
    pub total: Option<u64>,
    pub eta_s: Option<u64>,
}

/// Parses a line written with our `--progress-template` (`NA` for unknown fields).
pub fn parse_progress(line: &str) -> Option<ProgressLine> {
    let rest = line.trim().strip_prefix(PROGRESS_TAG)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    if f.len() != 5 {
        return None;
    }
    let num = |s: &str| {
        s.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v as u64)
    };
    Some(ProgressLine {
        status: f[0].to_owned(),
        downloaded: num(f[1]),
        total: num(f[2]).or_else(|| num(f[3])),
        eta_s: num(f[4]),
    })
}

/// yt-dlp's own size refusal ("File is larger than max-filesize (N bytes > M bytes). Aborting."), which it
/// reports with exit status 0 and no file.
pub fn parse_max_filesize_abort(line: &str) -> Option<(u64, u64)> {
    let i = line.find("File is larger than max-filesize (")?;
    let rest = &line[i + "File is larger than max-filesize (".len()..];
    let mut nums = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u64>().ok());
    Some((nums.next()??, nums.next()??))
}

/// What a metadata call (`-J`) said about a link.
#[derive(Clone, Debug, PartialEq)]
pub struct Metadata {
    /// `video`, `playlist`, `multi_video`, ...
    pub kind: String,
    pub title: Option<String>,
    pub extractor: Option<String>,
    pub duration_s: Option<f64>,
    pub is_live: bool,
    pub is_upcoming: bool,
    /// Size of the chosen format(s): exact where known, else yt-dlp's estimate.
    pub filesize: Option<u64>,
    pub height: Option<u32>,
    /// For playlists: how many entries (as far as known).
    pub entries: Option<usize>,
}

impl Metadata {
    pub fn from_json(v: &serde_json::Value) -> Metadata {
        let s = |k: &str| v[k].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        let size_of = |f: &serde_json::Value| {
            f["filesize"]
                .as_f64()
                .or_else(|| f["filesize_approx"].as_f64())
                .filter(|x| x.is_finite() && *x >= 0.0)
                .map(|x| x as u64)
        };
        let filesize = match v["requested_formats"].as_array() {
            Some(fs) if !fs.is_empty() => fs.iter().map(size_of).sum::<Option<u64>>(),
            _ => size_of(v),
        };
        let live_status = v["live_status"].as_str().unwrap_or("");
        Metadata {
            kind: s("_type").unwrap_or_else(|| "video".into()),
            title: s("title"),
            extractor: s("extractor_key").or_else(|| s("extractor")),
            duration_s: v["duration"]
                .as_f64()
                .filter(|d| d.is_finite() && *d >= 0.0),
            is_live: v["is_live"].as_bool().unwrap_or(false) || live_status == "is_live",
            is_upcoming: live_status == "is_upcoming",
            filesize,
            height: v["height"].as_u64().map(|h| h as u32),
            entries: v["playlist_count"]
                .as_u64()
                .map(|n| n as usize)
                .or_else(|| v["entries"].as_array().map(Vec::len)),
        }
    }

    pub fn is_playlist(&self) -> bool {
        self.kind == "playlist" || self.kind == "multi_video"
    }
}

/// A short, specific reason for a failed yt-dlp run, and whether trying again may help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnosis {
    pub message: String,
    pub transient: bool,
}

/// Reads yt-dlp's last error from its stderr lines. Pure, tested on captured output.
pub fn explain(lines: &[String]) -> Diagnosis {
    let is_error = |l: &String| l.trim_start().starts_with("ERROR:");
    let line = match lines.iter().rposition(is_error) {
        // `ERROR: \r[download] Got error: ...`: the message comes after a carriage return, which splits lines.
        Some(i) if lines[i].trim() == "ERROR:" && i + 1 < lines.len() => lines[i + 1].trim(),
        Some(i) => lines[i].trim(),
        None => lines
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map_or("", |l| l.trim()),
    };
    let detail = strip_prefixes(line);
    let l = line.to_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| l.contains(n));
    let permanent = |m: &str| Diagnosis {
        message: m.to_owned(),
        transient: false,
    };
    let transient = |m: String| Diagnosis {
        message: m,
        transient: true,
    };
    if has(&["unsupported url"]) {
        return permanent(
            "no video found at this link (the site is not supported, or the page has no video)",
        );
    }
    if has(&[
        "no video formats found",
        "no video could be found",
        "no media found",
        "there's no video in this",
        "no video in this",
    ]) {
        return permanent("no video found on the page");
    }
    if has(&[
        "private video",
        "this video is private",
        "video is private",
        "is private",
    ]) {
        return permanent("the video is private");
    }
    if has(&[
        "confirm your age",
        "age-restricted",
        "age restricted",
        "inappropriate for some users",
    ]) {
        return permanent("the video is age-restricted: the site wants a signed-in account");
    }
    if has(&["not a bot"]) {
        return permanent(
            "the site asks this server to sign in to prove it is not a bot; try again later",
        );
    }
    if has(&[
        "not available in your country",
        "not available from your location",
        "geo restrict",
        "geo-restrict",
        "georestrict",
        "blocked it in your country",
        "in your country",
    ]) {
        return permanent("the video is not available in this server's country (geo-blocked)");
    }
    if has(&[
        "sign in",
        "login required",
        "log in",
        "requires authentication",
        "registered users",
        "members-only",
        "join this channel",
        "use --cookies",
        "--cookies-from-browser",
        "account authentication is required",
    ]) {
        return permanent("the site requires signing in to watch this video");
    }
    if has(&[
        "video unavailable",
        "has been removed",
        "no longer available",
        "account associated with this video has been terminated",
        "this video is unavailable",
        "video does not exist",
        "this content isn't available",
        "content is not available",
        "has been deleted",
    ]) {
        return permanent("the video was removed or is unavailable");
    }
    if has(&[
        "premieres in",
        "live event will begin",
        "is_upcoming",
        "scheduled",
    ]) {
        return permanent("the video is not out yet (a premiere or scheduled stream)");
    }
    if has(&["requested format is not available"]) {
        return permanent(
            "no downloadable version of the video fits the limits (format or height)",
        );
    }
    if let Some((code, reason)) = http_error(line) {
        let what = if reason.is_empty() {
            format!("HTTP {code}")
        } else {
            format!("HTTP {code} {reason}")
        };
        return match code {
            404 | 410 => permanent(&format!("the page or file was not found ({what})")),
            401 | 403 => permanent(&format!("the site refused access ({what})")),
            429 => permanent(&format!(
                "the site is limiting requests from this server ({what}); try again later"
            )),
            400..=499 => permanent(&format!("the site refused the request ({what})")),
            500..=599 => transient(format!(
                "the site had a server error ({what}); try again later"
            )),
            _ => permanent(&format!("unexpected answer from the site ({what})")),
        };
    }
    if has(&[
        "name or service not known",
        "nodename nor servname",
        "getaddrinfo failed",
        "failed to resolve",
        "temporary failure in name resolution",
    ]) {
        return transient("cannot resolve the site's host name".into());
    }
    if has(&["certificate verify failed"]) {
        return permanent("the site's TLS certificate is not valid");
    }
    if has(&["[ssl", "sslerror"]) {
        return transient("the secure (TLS) connection to the site failed".into());
    }
    if has(&["timed out", "timeout"]) {
        return transient("the connection to the site timed out".into());
    }
    if has(&["connection refused"]) {
        return transient("the site refused the connection".into());
    }
    if has(&[
        "connection reset",
        "remotedisconnected",
        "remote end closed",
        "incompleteread",
        "incomplete read",
        "more expected",
        "connection broken",
        "connection aborted",
        "giving up after",
        "did not get any data blocks",
        "unable to download video data",
        "broken pipe",
        "eof occurred",
        "network is unreachable",
    ]) {
        return transient(format!(
            "the connection broke off during the download ({detail})"
        ));
    }
    let mut message: String = detail.chars().take(300).collect();
    if message.is_empty() {
        message = "yt-dlp failed without a message".into();
    }
    permanent(&message)
}

/// `ERROR: [generic] abc: Unable to ... (caused by ...); please report this issue ...` → `Unable to ...`.
fn strip_prefixes(line: &str) -> &str {
    let mut s = line.trim();
    for tail in ["; please report this issue", " (caused by "] {
        if let Some(i) = s.find(tail) {
            s = &s[..i];
        }
    }
    s = s.strip_prefix("ERROR:").unwrap_or(s).trim_start();
    if s.starts_with('[') {
        if let Some(i) = s.find(']') {
            s = s[i + 1..].trim_start();
            // An id before ": " (no spaces in it).
            if let Some((id, rest)) = s.split_once(": ") {
                if !id.contains(' ') {
                    s = rest;
                }
            }
        }
    }
    s
}

/// `HTTP Error 404: File not found (caused by ...)` → (404, "File not found").
fn http_error(line: &str) -> Option<(u16, String)> {
    let i = line.find("HTTP Error ")?;
    let rest = &line[i + "HTTP Error ".len()..];
    let code: u16 = rest.get(..3)?.parse().ok()?;
    let reason = rest[3..]
        .strip_prefix(':')
        .unwrap_or("")
        .split(" (caused by")
        .next()
        .unwrap_or("")
        .trim()
        .trim_end_matches('.')
        .to_owned();
    Some((code, reason))
}

/// Turns a failed run into the fetch error: what the proxy refused first, else yt-dlp's own reason.
pub fn failure(url: &str, lines: &[String], proxy_failures: &[String]) -> FetchError {
    let d = explain(lines);
    // A 502 from our proxy means it could not resolve or reach a host: its reason is the better one.
    if d.message.contains("HTTP 502") {
        if let Some(f) = proxy_failures.first() {
            return FetchError::Network(format!("{url}: {f}"));
        }
    }
    if d.transient {
        FetchError::Network(format!("{url}: {}", d.message))
    } else {
        FetchError::Unavailable(format!("cannot fetch {url}: {}", d.message))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_setup_script_installs_the_pinned_version() {
        let setup = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/setup.sh"
        ))
        .unwrap();
        assert!(setup.contains(&format!("YTDLP_VERSION={}", super::PINNED_VERSION)));
        assert!(super::INSTALL_HINT.ends_with(super::PINNED_VERSION));
    }

    use super::*;

    fn d(line: &str) -> Diagnosis {
        explain(&[
            "WARNING: [generic] Falling back on generic information extractor".to_owned(),
            line.to_owned(),
        ])
    }

    // Lines captured from real runs of yt-dlp 2025.10.22 against local test servers (see tests/fetch.rs).
    #[test]
    fn captured_local_errors() {
        let x = d("ERROR: Unsupported URL: http://127.0.0.1:18555/novideo.html");
        assert!(
            x.message.starts_with("no video found at this link"),
            "{x:?}"
        );
        assert!(!x.transient);
        let x = d("ERROR: [generic] Unable to download webpage: HTTP Error 404: File not found (caused by <HTTPError 404: File not found>)");
        assert_eq!(
            x.message,
            "the page or file was not found (HTTP 404 File not found)"
        );
        assert!(!x.transient);
        let x = d("ERROR: [generic] Unable to download webpage: HTTPConnection(host='127.0.0.1', port=18556): Failed to establish a new connection: [Errno 111] Connection refused (caused by TransportError(\"HTTPConnection(host='127.0.0.1', port=18556): Failed to establish a new connection: [Errno 111] Connection refused\"))");
        assert_eq!(x.message, "the site refused the connection");
        assert!(x.transient);
        let x = d("ERROR: [html5] page-1: Requested format is not available. Use --list-formats for a list of available formats");
        assert!(x.message.contains("fits the limits"), "{x:?}");
        let x = d("ERROR: [generic] Unable to download webpage: HTTP Error 403: Forbidden (caused by <HTTPError 403: Forbidden>)");
        assert_eq!(x.message, "the site refused access (HTTP 403 Forbidden)");
        let x = d("ERROR: [generic] Unable to download webpage: HTTP Error 503: Service Unavailable (caused by <HTTPError 503: Service Unavailable>)");
        assert!(x.transient);
        assert!(x
            .message
            .contains("server error (HTTP 503 Service Unavailable)"));
        // The error text after a carriage return (split into its own line).
        let x = explain(&[
            "ERROR: ".to_owned(),
            "[download] Got error: 32177 bytes read, 32178 more expected. Giving up after 3 retries".to_owned(),
        ]);
        assert!(x.transient, "{x:?}");
        assert_eq!(
            x.message,
            "the connection broke off during the download (Got error: 32177 bytes read, 32178 more expected. Giving up after 3 retries)"
        );
        let x = d("ERROR: [generic] x: Weird failure (caused by Foo('bar')); please report this issue on  https://github.com/yt-dlp/yt-dlp/issues?q= , filling out the appropriate issue template");
        assert_eq!(x.message, "Weird failure");
    }

    // Phrasings of yt-dlp's extractors (from its source and issue reports), as it prints them.
    #[test]
    fn site_errors() {
        let cases = [
            ("ERROR: [youtube] abcdefghijk: Private video. Sign in if you've been granted access to this video", "private"),
            ("ERROR: [youtube] abcdefghijk: Video unavailable. This video has been removed by the uploader", "removed"),
            ("ERROR: [youtube] abcdefghijk: Video unavailable", "removed"),
            ("ERROR: [youtube] abcdefghijk: Sign in to confirm your age. This video may be inappropriate for some users. Use --cookies-from-browser or --cookies for the authentication.", "age-restricted"),
            ("ERROR: [youtube] abcdefghijk: Sign in to confirm you’re not a bot. Use --cookies-from-browser or --cookies for the authentication.", "not a bot"),
            ("ERROR: [youtube] abcdefghijk: The uploader has not made this video available in your country", "geo-blocked"),
            ("ERROR: [TikTok] 7123: This video is not available from your location due to geo restriction. You might want to use a VPN or a proxy server (with --proxy) to workaround.", "geo-blocked"),
            ("ERROR: [vimeo] 12345: This video is only available for registered users", "signing in"),
            ("ERROR: [instagram] Cxyz: Requested content is not available, rate-limit reached or login required. Use --cookies, --cookies-from-browser, --username and --password, --netrc-cmd, or --netrc (instagram) to provide account credentials", "signing in"),
            ("ERROR: [youtube] abcdefghijk: Join this channel to get access to members-only content like this video, and other exclusive perks.", "signing in"),
            ("ERROR: [youtube] abcdefghijk: This live event will begin in 3 hours.", "not out yet"),
            ("ERROR: [generic] Unable to download webpage: HTTP Error 410: Gone (caused by <HTTPError 410: Gone>)", "not found (HTTP 410 Gone)"),
            ("ERROR: [generic] Unable to download webpage: HTTP Error 429: Too Many Requests", "limiting requests"),
            ("ERROR: [generic] Unable to download webpage: HTTP Error 451: Unavailable For Legal Reasons", "refused the request (HTTP 451"),
            ("ERROR: [TikTok] 7123: No video formats found!; please report this issue", "no video found on the page"),
            ("ERROR: unable to download video data: <urlopen error timed out>", "timed out"),
            ("ERROR: [download] Got error: 12345 bytes read, 54321 more expected. Giving up after 3 retries", "broke off"),
            ("ERROR: [generic] Unable to download webpage: <urlopen error [Errno -2] Name or service not known>", "resolve"),
            ("ERROR: [generic] Unable to download webpage: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate (_ssl.c:1006) (caused by SSLError(...))", "certificate is not valid"),
            // Captured: https to a local server that is not TLS (tests/fetch.rs).
            ("ERROR: [generic] Unable to download webpage: [SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol (_ssl.c:1006) (caused by SSLError('[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol (_ssl.c:1006)')); please report this issue on  https://github.com/yt-dlp/yt-dlp/issues?q= , filling out the appropriate issue template. Confirm you are on the latest version using  yt-dlp -U", "TLS) connection to the site failed"),
        ];
        for (line, want) in cases {
            let x = d(line);
            assert!(x.message.contains(want), "{line}\n→ {x:?}");
        }
    }

    #[test]
    fn unknown_errors_keep_the_detail() {
        let x = d("ERROR: [someext] id1: Something odd happened");
        assert_eq!(x.message, "Something odd happened");
        assert!(!x.transient);
        let x = explain(&[]);
        assert_eq!(x.message, "yt-dlp failed without a message");
    }

    #[test]
    fn progress_lines() {
        assert_eq!(
            parse_progress("[autosub-progress] downloading 1024 192355 NA NA"),
            Some(ProgressLine {
                status: "downloading".into(),
                downloaded: Some(1024),
                total: Some(192355),
                eta_s: None
            })
        );
        assert_eq!(
            parse_progress("[autosub-progress] downloading 5000 NA 9000.5 3"),
            Some(ProgressLine {
                status: "downloading".into(),
                downloaded: Some(5000),
                total: Some(9000),
                eta_s: Some(3)
            })
        );
        assert_eq!(parse_progress("[download] Destination: x"), None);
        assert_eq!(
            parse_max_filesize_abort(
                "[download] File is larger than max-filesize (192355 bytes > 102400 bytes). Aborting."
            ),
            Some((192355, 102400))
        );
    }

    #[test]
    fn metadata_fields() {
        let v = serde_json::json!({
            "_type": "video", "title": "T", "extractor_key": "Youtube", "duration": 61.5,
            "requested_formats": [{"filesize": 1000}, {"filesize_approx": 234.0}],
            "height": 720, "live_status": "not_live"
        });
        let m = Metadata::from_json(&v);
        assert_eq!(m.title.as_deref(), Some("T"));
        assert_eq!(m.extractor.as_deref(), Some("Youtube"));
        assert_eq!(m.duration_s, Some(61.5));
        assert_eq!(m.filesize, Some(1234));
        assert_eq!(m.height, Some(720));
        assert!(!m.is_live && !m.is_playlist());
        let m = Metadata::from_json(
            &serde_json::json!({"_type": "playlist", "entries": [{}, {}], "title": "P"}),
        );
        assert!(m.is_playlist());
        assert_eq!(m.entries, Some(2));
        let m = Metadata::from_json(&serde_json::json!({"is_live": true, "filesize_approx": 5}));
        assert!(m.is_live);
        assert_eq!(m.filesize, Some(5));
        assert_eq!(m.kind, "video");
    }

    #[test]
    fn command_lines_put_the_link_after_double_dash() {
        let a = metadata_args("-x", &format_selector(Some(720)), None);
        let n = a.len();
        assert_eq!(a[n - 2], "--");
        assert_eq!(a[n - 1], "-x");
        assert!(a.contains(&OsString::from("--no-playlist")));
        let a = metadata_args("http://a/", "b", Some(3));
        assert!(a
            .windows(2)
            .any(|w| w[0] == "--playlist-items" && w[1] == "3"));
        let c = common_args("http://127.0.0.1:1", Duration::from_secs(20));
        for must in [
            "--ignore-config",
            "--no-plugin-dirs",
            "--proxy",
            "--no-exec",
        ] {
            assert!(c.contains(&OsString::from(must)), "{must}");
        }
        assert_eq!(
            format_selector(Some(720)).split('/').next().unwrap(),
            "bv*[height<=?720][protocol~='^(https?|m3u8_native|http_dash_segments)$']+ba[protocol~='^(https?|m3u8_native|http_dash_segments)$']"
        );
    }
}
