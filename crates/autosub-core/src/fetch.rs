//! Fetching a video from a link (YouTube, TikTok, a page with a `<video>`, a direct `.mp4`) with the yt-dlp
//! program, safely enough for links sent by strangers.
//!
//! [`fetch`] checks the link ([`netguard::check_url`]: http/https only, public hosts only), serves it from the
//! [cache] when a fresh copy exists, and otherwise runs yt-dlp twice through [`crate::proc::Cmd`]: once for the
//! metadata (`-J`: playlists, live streams, duration and size are checked before anything is downloaded) and once
//! to download exactly what was checked (`--load-info-json`). Every connection yt-dlp makes goes through an
//! in-process [proxy] that applies the same address policy to redirects and links found in pages, connects only
//! to the addresses it vetted, and enforces the size limit on the wire. The finished file is probed with ffprobe,
//! the limits are checked again on the real file, and it is published in the cache in one rename.
//!
//! ```no_run
//! use autosub_core::{fetch, media::Tools, progress::NullSink};
//! let opts = fetch::FetchOptions::new("/var/cache/autosub/fetch");
//! let got = fetch::fetch("https://www.youtube.com/watch?v=…", &opts, &Tools::default(), &NullSink)?;
//! println!("{} ({:?})", got.path.display(), got.title);
//! # Ok::<(), autosub_core::Error>(())
//! ```

pub mod cache;
pub mod netguard;
pub mod proxy;
pub mod ytdlp;

pub use netguard::{check_url, Allow, ParsedUrl, Policy, Resolver, StaticResolver, SystemResolver};

use crate::media::Tools;
use crate::progress::{Event, Sink, Stage};
use crate::{Error, Result};
use proxy::{human_bytes, Proxy, ProxyConfig, ProxyLimits};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a link could not be fetched. Converted into [`crate::Error`]: refusals, invalid links, limits and what a
/// site says about a video are [`Error::BadInput`]; network failures are [`Error::Network`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The link is not something we fetch (scheme, syntax, numeric host, user name).
    #[error("{0}")]
    InvalidUrl(String),
    /// The host is, or resolves to, an address the policy refuses. `redirected` when it was not the host of the
    /// link given, but one reached through a redirect or a link in a page.
    #[error("{}", refused_message(target, reason, *redirected))]
    Refused {
        target: String,
        reason: String,
        redirected: bool,
    },
    #[error("cannot resolve host {host}: {message}")]
    Resolve { host: String, message: String },
    /// Above a configured limit (duration, size), or a kind of media we do not take (live stream, playlist).
    #[error("{0}")]
    Limit(String),
    /// The site says no: unsupported link, no video, private, removed, sign-in, geo-blocked, 4xx.
    #[error("{0}")]
    Unavailable(String),
    /// A network failure that may go away (5xx, timeouts, broken connections).
    #[error("{0}")]
    Network(String),
}

fn refused_message(target: &str, reason: &str, redirected: bool) -> String {
    if redirected {
        format!("redirected or linked to {target} ({reason}): refused")
    } else {
        format!("refusing to fetch from {target}: {reason}")
    }
}

impl From<FetchError> for Error {
    fn from(e: FetchError) -> Error {
        match e {
            FetchError::Network(message) => Error::Network {
                program: "yt-dlp".into(),
                message,
            },
            other => Error::BadInput(other.to_string()),
        }
    }
}

/// What to fetch and within which limits. Build with [`FetchOptions::new`] and adjust the fields.
#[derive(Clone)]
pub struct FetchOptions {
    /// Refuse media longer than this (from the metadata when the site states it, and on the real file).
    pub max_duration_s: Option<u64>,
    /// Refuse files larger than this many bytes (metadata, announced size, bytes on the wire, the real file).
    pub max_filesize: Option<u64>,
    /// Take the best format at or below this height (the smallest one when none is).
    pub max_height: Option<u32>,
    /// For playlist links: which item (1-based). Without it playlists and channels are refused.
    pub playlist_item: Option<u32>,
    /// Which non-public addresses may be fetched from (none by default).
    pub policy: Policy,
    pub resolver: Arc<dyn Resolver>,
    /// Finished downloads live here (see [`cache`]).
    pub cache_dir: PathBuf,
    /// A cached download is reused while younger than this; `Duration::ZERO` never reuses.
    pub cache_max_age: Duration,
    /// The yt-dlp program (`yt-dlp` from PATH by default; binaries take `$AUTOSUB_YTDLP`, [`default_ytdlp`]).
    pub ytdlp: PathBuf,
    /// Longest one yt-dlp run may take.
    pub timeout: Duration,
    /// Stop a run that shows no progress for this long (a stalled download).
    pub idle_timeout: Duration,
    /// yt-dlp's `--socket-timeout`.
    pub socket_timeout: Duration,
    /// How many times a failed download is tried again after network errors (yt-dlp retries 3 times itself).
    pub retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
}

impl FetchOptions {
    /// Defaults: 4 h, 2 GB, 1080p, no playlists, public addresses only, the system resolver, a cache kept 24 h,
    /// 2 h per run, 60 s without progress, 30 s socket timeout, 3 retries from 2 s.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        FetchOptions {
            max_duration_s: Some(4 * 3600),
            max_filesize: Some(2_000_000_000),
            max_height: Some(1080),
            playlist_item: None,
            policy: Policy::default(),
            resolver: Arc::new(SystemResolver),
            cache_dir: cache_dir.into(),
            cache_max_age: Duration::from_secs(24 * 3600),
            ytdlp: "yt-dlp".into(),
            timeout: Duration::from_secs(2 * 3600),
            idle_timeout: Duration::from_secs(60),
            socket_timeout: Duration::from_secs(30),
            retries: 3,
            retry_backoff: Duration::from_secs(2),
        }
    }

    /// The limits that shape a download, as part of the cache key.
    fn limits_key(&self) -> String {
        format!(
            "duration={:?} size={:?} height={:?} item={:?}",
            self.max_duration_s, self.max_filesize, self.max_height, self.playlist_item
        )
    }
}

impl std::fmt::Debug for FetchOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchOptions")
            .field("max_duration_s", &self.max_duration_s)
            .field("max_filesize", &self.max_filesize)
            .field("max_height", &self.max_height)
            .field("playlist_item", &self.playlist_item)
            .field("policy", &self.policy)
            .field("cache_dir", &self.cache_dir)
            .field("cache_max_age", &self.cache_max_age)
            .field("ytdlp", &self.ytdlp)
            .field("timeout", &self.timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("socket_timeout", &self.socket_timeout)
            .field("retries", &self.retries)
            .field("retry_backoff", &self.retry_backoff)
            .finish_non_exhaustive()
    }
}

/// The yt-dlp release the set-up installs (from PyPI) and the tests run against.
pub const YTDLP_VERSION: &str = ytdlp::PINNED_VERSION;

/// `$AUTOSUB_YTDLP`, else `yt-dlp` (looked up in PATH). For binaries: [`FetchOptions::new`] does not read the
/// environment.
pub fn default_ytdlp() -> PathBuf {
    std::env::var_os("AUTOSUB_YTDLP").map_or_else(|| "yt-dlp".into(), PathBuf::from)
}

/// A fetched file.
#[derive(Clone, Debug, PartialEq)]
pub struct Fetched {
    /// The media file, inside the cache folder. Read it; do not move or change it.
    pub path: PathBuf,
    pub title: Option<String>,
    /// yt-dlp's name for the site handler (`Youtube`, `TikTok`, `Generic`, `HTML5MediaEmbed`).
    pub extractor: Option<String>,
    /// Duration of the file, from ffprobe.
    pub duration_ms: Option<u64>,
    pub from_cache: bool,
    /// The link in normal form.
    pub url: String,
    pub ytdlp_version: String,
}

impl Fetched {
    /// A cache entry as a fetch result.
    fn from_cache(hit: cache::Hit, url: String) -> Self {
        Fetched {
            path: hit.media,
            title: hit.meta.title,
            extractor: hit.meta.extractor,
            duration_ms: hit.meta.duration_ms,
            from_cache: true,
            url,
            ytdlp_version: hit.meta.ytdlp_version,
        }
    }
}

/// `yt-dlp --version` of the given program.
pub fn ytdlp_version(ytdlp: &Path) -> Result<String> {
    ytdlp::version(ytdlp, &crate::progress::NullSink)
}

/// `yt-dlp --version`, asked once per program path and process.
fn cached_version(ytdlp: &Path, sink: &dyn Sink) -> Result<String> {
    static SEEN: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());
    let seen =
        |m: &Vec<(PathBuf, String)>| m.iter().find(|(p, _)| p == ytdlp).map(|(_, v)| v.clone());
    if let Some(v) = seen(&SEEN.lock().unwrap_or_else(|e| e.into_inner())) {
        return Ok(v);
    }
    let v = ytdlp::version(ytdlp, sink)?;
    SEEN.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((ytdlp.to_owned(), v.clone()));
    Ok(v)
}

/// Room for pages, TLS and headers on top of the file itself, in the proxy's byte count.
const WIRE_SLACK: u64 = 16 << 20;
/// What a metadata call may read in all (pages, player code, manifests).
const METADATA_BYTES: u64 = 64 << 20;

/// Downloads the video behind `url` into the cache (or finds it there) within the limits of `opts`. Reports
/// [`Stage::Download`] progress in bytes, honours cancellation, and leaves nothing behind on failure.
pub fn fetch(url: &str, opts: &FetchOptions, tools: &Tools, sink: &dyn Sink) -> Result<Fetched> {
    let parsed = check_url(url, &opts.policy, opts.resolver.as_ref())?;
    let normalized = parsed.normalized();
    let (key_text, name) = cache::key(&normalized, &opts.limits_key());
    cache::prune(&opts.cache_dir, opts.cache_max_age);
    if let Some(hit) = cache::lookup(&opts.cache_dir, &name, &key_text, opts.cache_max_age) {
        sink.event(Event::Debug(&format!(
            "fetch: {normalized} from the cache ({})",
            hit.media.display()
        )));
        return Ok(Fetched::from_cache(hit, normalized));
    }
    let version = cached_version(&opts.ytdlp, sink)?;
    if version != ytdlp::PINNED_VERSION {
        sink.event(Event::Debug(&format!(
            "yt-dlp {version} (tested with {}: `{}`)",
            ytdlp::PINNED_VERSION,
            ytdlp::INSTALL_HINT
        )));
    }
    let work = cache::WorkDir::create(&opts.cache_dir, &name).map_err(|source| Error::Write {
        path: opts.cache_dir.clone(),
        source,
    })?;
    let run = Runner {
        opts,
        sink,
        origin_host: parsed.host.host.clone(),
        url: &normalized,
    };
    let selector = ytdlp::format_selector(opts.max_height);

    // 1. Metadata: what is behind the link, checked against the limits before downloading.
    let info = run.with_retries(|| run.metadata(&normalized, &selector))?;
    let meta = ytdlp::Metadata::from_json(&info);
    check_metadata(&meta, opts, &normalized)?;
    if let (Some(max), Some(h)) = (opts.max_height, meta.height) {
        if h > max {
            sink.event(Event::Warning(&format!(
                "no version of the video is {max}p or smaller; taking the smallest one ({h}p)"
            )));
        }
    }
    let info_path = work.path().join("info.json");
    std::fs::write(
        &info_path,
        serde_json::to_vec(&info).map_err(std::io::Error::other)?,
    )
    .map_err(|source| Error::Write {
        path: info_path.clone(),
        source,
    })?;

    // 2. Download what was checked.
    let t0 = Instant::now();
    sink.event(Event::Start {
        stage: Stage::Download,
        total: meta.filesize,
    });
    let ffmpeg = (tools.ffmpeg != Path::new("ffmpeg")).then_some(tools.ffmpeg.as_path());
    let args = ytdlp::download_args(
        &info_path,
        work.path(),
        &selector,
        opts.max_filesize,
        ffmpeg,
    );
    run.with_retries(|| run.download(&args, work.path()))?;
    let _ = std::fs::remove_file(&info_path);
    let media = cache::media_in(work.path()).ok_or_else(|| {
        FetchError::Network(format!(
            "{normalized}: yt-dlp finished but left no media file"
        ))
    })?;

    // 3. The real file: probe it and check the limits again.
    let info = crate::media::probe(tools, &media, sink).map_err(|e| match e {
        Error::BadInput(m) => Error::BadInput(format!(
            "{normalized}: the downloaded file is not a video or audio file ({m})"
        )),
        other => other,
    })?;
    let size = std::fs::metadata(&media)?.len();
    sink.event(Event::Progress {
        stage: Stage::Download,
        done: size,
    });
    if let Some(max) = opts.max_filesize.filter(|m| size > *m) {
        return Err(FetchError::Limit(format!(
            "{normalized}: the file is {}, above the size limit of {}",
            human_bytes(size),
            human_bytes(max)
        ))
        .into());
    }
    if let (Some(max), Some(ms)) = (opts.max_duration_s, info.duration_ms) {
        if ms > max * 1000 + 1000 {
            return Err(too_long(&normalized, ms as f64 / 1000.0, max).into());
        }
    }
    let entry = cache::EntryMeta {
        url: normalized.clone(),
        title: meta.title.clone(),
        extractor: meta.extractor.clone(),
        duration_ms: info.duration_ms,
        ytdlp_version: version.clone(),
        fetched_at: cache::now_secs(),
        key: key_text,
    };
    let file_name = media.file_name().map(PathBuf::from).unwrap_or_default();
    // Another fetch of the same link may have finished meanwhile: keep its entry (someone may be reading it).
    if let Some(hit) = cache::lookup(&opts.cache_dir, &name, &entry.key, opts.cache_max_age) {
        drop(work);
        sink.event(Event::Finish {
            stage: Stage::Download,
            elapsed: t0.elapsed(),
        });
        return Ok(Fetched::from_cache(hit, normalized));
    }
    let dir = work
        .publish(&opts.cache_dir, &name, &entry)
        .map_err(|source| Error::Write {
            path: opts.cache_dir.join(&name),
            source,
        })?;
    sink.event(Event::Finish {
        stage: Stage::Download,
        elapsed: t0.elapsed(),
    });
    Ok(Fetched {
        path: dir.join(file_name),
        title: meta.title,
        extractor: meta.extractor,
        duration_ms: info.duration_ms,
        from_cache: false,
        url: normalized,
        ytdlp_version: version,
    })
}

fn too_long(url: &str, seconds: f64, max: u64) -> FetchError {
    FetchError::Limit(format!(
        "{url}: the video is {}, longer than the limit of {}",
        human_duration(seconds),
        human_duration(max as f64)
    ))
}

/// "1 h 02 min", "3 min 05 s", "42 s".
fn human_duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, s) => format!("{m} min {s:02} s"),
        (h, m, _) => format!("{h} h {m:02} min"),
    }
}

/// The checks that the metadata allows before any media byte is read.
fn check_metadata(
    meta: &ytdlp::Metadata,
    opts: &FetchOptions,
    url: &str,
) -> Result<(), FetchError> {
    if meta.is_playlist() {
        let n = meta
            .entries
            .map_or_else(String::new, |n| format!(" of {n} videos"));
        return Err(FetchError::Limit(format!(
            "{url} is a playlist or channel{n}; send the link of one video, or choose an item of the playlist"
        )));
    }
    if meta.is_live {
        return Err(FetchError::Limit(format!(
            "{url} is a live stream; only recorded videos can be fetched"
        )));
    }
    if meta.is_upcoming {
        return Err(FetchError::Limit(format!(
            "{url} is not out yet (a premiere or scheduled stream)"
        )));
    }
    if let (Some(max), Some(d)) = (opts.max_duration_s, meta.duration_s) {
        if d > max as f64 + 1.0 {
            return Err(too_long(url, d, max));
        }
    }
    if let (Some(max), Some(size)) = (opts.max_filesize, meta.filesize) {
        if size > max {
            return Err(FetchError::Limit(format!(
                "{url}: the video is {}, above the size limit of {}",
                human_bytes(size),
                human_bytes(max)
            )));
        }
    }
    Ok(())
}

/// Runs yt-dlp for one fetch: each run behind its own proxy.
struct Runner<'a> {
    opts: &'a FetchOptions,
    sink: &'a dyn Sink,
    origin_host: String,
    url: &'a str,
}

/// A sink that also reports cancelled when the download watchdog trips.
struct Watched<'a> {
    inner: &'a dyn Sink,
    tripped: &'a AtomicBool,
}

impl Sink for Watched<'_> {
    fn event(&self, e: Event<'_>) {
        self.inner.event(e)
    }
    fn is_cancelled(&self) -> bool {
        self.tripped.load(Ordering::Relaxed) || self.inner.is_cancelled()
    }
}

impl Runner<'_> {
    fn proxy(&self, limits: ProxyLimits) -> Result<Proxy> {
        Ok(Proxy::start(ProxyConfig {
            policy: self.opts.policy.clone(),
            resolver: Arc::clone(&self.opts.resolver),
            limits,
            origin_host: Some(self.origin_host.clone()),
            connect_timeout: self.opts.socket_timeout,
            io_timeout: self.opts.idle_timeout.max(self.opts.socket_timeout) * 2,
        })?)
    }

    fn cmd(&self, proxy: &Proxy) -> crate::proc::Cmd {
        ytdlp::command(&self.opts.ytdlp)
            .args(ytdlp::common_args(&proxy.url(), self.opts.socket_timeout))
            .timeout(self.opts.timeout)
            .idle_timeout(self.opts.idle_timeout)
            .capture_stdout()
    }

    /// Logs what the proxy saw, and turns a failed run into the most specific error.
    fn conclude(
        &self,
        proxy: &Proxy,
        result: Result<crate::proc::Output>,
    ) -> Result<crate::proc::Output> {
        for a in proxy.connected() {
            self.sink
                .event(Event::Debug(&format!("fetch: proxy connected to {a}")));
        }
        let refusal = proxy.refusal();
        if let Some(r) = &refusal {
            self.sink
                .event(Event::Debug(&format!("fetch: proxy refused: {r}")));
        }
        match result {
            Err(e) => Err(refusal.map_or(e, Error::from)),
            Ok(out) if !out.status.success() => {
                for l in &out.stderr_tail {
                    self.sink.event(Event::Debug(&format!("yt-dlp: {l}")));
                }
                Err(match refusal {
                    Some(r) => r.into(),
                    None => ytdlp::failure(self.url, &out.stderr_tail, &proxy.failures()).into(),
                })
            }
            Ok(out) => Ok(out),
        }
    }

    fn metadata(&self, url: &str, selector: &str) -> Result<serde_json::Value> {
        let proxy = self.proxy(ProxyLimits {
            max_response: self.opts.max_filesize,
            max_total: Some(METADATA_BYTES),
        })?;
        let cmd =
            self.cmd(&proxy)
                .args(ytdlp::metadata_args(url, selector, self.opts.playlist_item));
        let result = cmd.run(self.sink, &mut |l| {
            self.sink.event(Event::Debug(&format!("yt-dlp: {l}")))
        });
        let out = self.conclude(&proxy, result)?;
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| Error::ProgramFailed {
                program: "yt-dlp".into(),
                message: format!("unreadable metadata (-J) output: {e}"),
            })?;
        self.pick_item(v)
    }

    /// With a playlist item requested, yt-dlp answers with a playlist of that one entry.
    fn pick_item(&self, v: serde_json::Value) -> Result<serde_json::Value> {
        let Some(n) = self.opts.playlist_item else {
            return Ok(v);
        };
        let is_list = matches!(v["_type"].as_str(), Some("playlist" | "multi_video"));
        if !is_list {
            if n == 1 {
                return Ok(v);
            }
            return Err(FetchError::InvalidUrl(format!(
                "{} is a single video, not a playlist: it has no item {n}",
                self.url
            ))
            .into());
        }
        v["entries"]
            .as_array()
            .and_then(|e| e.iter().find(|x| x.is_object()).cloned())
            .ok_or_else(|| {
                FetchError::Unavailable(format!("{}: the playlist has no item {n}", self.url))
                    .into()
            })
    }

    fn download(&self, args: &[std::ffi::OsString], dir: &Path) -> Result<()> {
        let max = self.opts.max_filesize;
        let proxy = self.proxy(ProxyLimits {
            max_response: max,
            max_total: max.map(|m| m + (m / 20).max(WIRE_SLACK)),
        })?;
        let cmd = self.cmd(&proxy).args(args);
        let tripped = AtomicBool::new(false);
        let finished = AtomicBool::new(false);
        let watched = Watched {
            inner: self.sink,
            tripped: &tripped,
        };
        // Bytes already on disk from an earlier attempt (yt-dlp resumes them).
        let resumed = dir_size(dir);
        let result = std::thread::scope(|s| {
            // Progress from the proxy's byte count, and a watchdog on the disk use of the work folder (merging
            // keeps the parts next to the result, hence twice the limit).
            s.spawn(|| {
                let disk_limit = max.map(|m| 2 * m + WIRE_SLACK);
                let mut last = 0;
                while !finished.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    let done = resumed + proxy.bytes();
                    if done != last {
                        self.sink.event(Event::Progress {
                            stage: Stage::Download,
                            done,
                        });
                        last = done;
                    }
                    if disk_limit.is_some_and(|l| dir_size(dir) > l) {
                        tripped.store(true, Ordering::Relaxed);
                    }
                }
            });
            let r = cmd.run(&watched, &mut |l| {
                self.sink.event(Event::Debug(&format!("yt-dlp: {l}")))
            });
            finished.store(true, Ordering::Relaxed);
            r
        });
        if tripped.load(Ordering::Relaxed) && !self.sink.is_cancelled() {
            return Err(FetchError::Limit(format!(
                "{}: the download grew past the size limit of {} and was stopped",
                self.url,
                human_bytes(max.unwrap_or(0))
            ))
            .into());
        }
        let out = self.conclude(&proxy, result)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stdout_lines: Vec<&str> = stdout.lines().collect();
        if let Some((size, limit)) = stdout_lines
            .iter()
            .find_map(|l| ytdlp::parse_max_filesize_abort(l))
        {
            return Err(FetchError::Limit(format!(
                "{}: the file is {}, above the size limit of {}",
                self.url,
                human_bytes(size),
                human_bytes(limit)
            ))
            .into());
        }
        if let Some(p) = stdout_lines
            .iter()
            .rev()
            .find_map(|l| ytdlp::parse_progress(l))
        {
            self.sink.event(Event::Debug(&format!(
                "yt-dlp: {} {:?} of {:?} bytes",
                p.status, p.downloaded, p.total
            )));
        }
        Ok(())
    }

    /// Runs `f`, again after network failures (transient errors, stalls), with exponential backoff.
    fn with_retries<T>(&self, mut f: impl FnMut() -> Result<T>) -> Result<T> {
        let mut attempt = 0;
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(e) if attempt < self.opts.retries && retryable(&e) => {
                    let wait = self.opts.retry_backoff * 2u32.saturating_pow(attempt);
                    attempt += 1;
                    let msg = format!(
                        "download failed ({e}); trying again in {:.1} s ({attempt}/{})",
                        wait.as_secs_f64(),
                        self.opts.retries
                    );
                    self.sink.event(Event::Warning(&msg));
                    let until = Instant::now() + wait;
                    while Instant::now() < until {
                        if self.sink.is_cancelled() {
                            return Err(Error::Cancelled);
                        }
                        std::thread::sleep(
                            until
                                .saturating_duration_since(Instant::now())
                                .min(Duration::from_millis(50)),
                        );
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Network failures worth another try.
fn retryable(e: &Error) -> bool {
    matches!(
        e,
        Error::ProgramFailed { program, .. } | Error::Network { program, .. } if program == "yt-dlp"
    ) || matches!(e, Error::Stalled { .. })
}

/// Total size of the files in `dir` (not recursive).
fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_core_kinds() {
        let e: Error = FetchError::Refused {
            target: "10.0.0.5".into(),
            reason: "private network address".into(),
            redirected: false,
        }
        .into();
        assert_eq!(e.kind(), crate::ErrorKind::BadInput);
        assert_eq!(
            e.to_string(),
            "refusing to fetch from 10.0.0.5: private network address"
        );
        let e: Error = FetchError::Network("x".into()).into();
        assert_eq!(e.kind(), crate::ErrorKind::Internal);
        assert!(retryable(&e));
        assert!(!retryable(&Error::BadInput("x".into())));
        assert!(retryable(&Error::Stalled {
            program: "yt-dlp".into(),
            seconds: 3
        }));
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(human_duration(42.0), "42 s");
        assert_eq!(human_duration(185.0), "3 min 05 s");
        assert_eq!(human_duration(3720.0), "1 h 02 min");
    }

    #[test]
    fn metadata_limits() {
        let mut o = FetchOptions::new("/tmp/x");
        o.max_duration_s = Some(60);
        o.max_filesize = Some(1000);
        let m = |j: serde_json::Value| ytdlp::Metadata::from_json(&j);
        assert!(check_metadata(
            &m(serde_json::json!({"duration": 60.5, "filesize": 1000})),
            &o,
            "u"
        )
        .is_ok());
        let e = check_metadata(&m(serde_json::json!({"duration": 125})), &o, "u").unwrap_err();
        assert_eq!(
            e.to_string(),
            "u: the video is 2 min 05 s, longer than the limit of 1 min 00 s"
        );
        let e =
            check_metadata(&m(serde_json::json!({"filesize_approx": 5000})), &o, "u").unwrap_err();
        assert!(e.to_string().contains("above the size limit"), "{e}");
        let e = check_metadata(
            &m(serde_json::json!({"_type": "playlist", "playlist_count": 12})),
            &o,
            "u",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("playlist or channel of 12 videos"),
            "{e}"
        );
        let e =
            check_metadata(&m(serde_json::json!({"live_status": "is_live"})), &o, "u").unwrap_err();
        assert!(e.to_string().contains("live stream"), "{e}");
    }
}
