//! Verified, resumable HTTP downloads.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::catalog::{CatalogEntry, DEFAULT_BASE_URL};
use crate::error::ModelError;

/// Environment variable a front end may use to fill [`DownloadOptions::base_url`]
/// (see [`DownloadOptions::from_env`]).
pub const BASE_URL_ENV: &str = "AUTOSUB_MODEL_BASE_URL";

/// How downloads behave.
#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// Base URL for catalog downloads instead of [`DEFAULT_BASE_URL`]; the file name is
    /// appended (`<base>/ggml-base.bin`). Used for mirrors and for tests.
    pub base_url: Option<String>,
    /// Install a file even though no SHA-256 is known for it. Off by default: without it a
    /// download with no expected digest is refused before anything is fetched.
    pub allow_unverified: bool,
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed for the response headers and for each read of the body.
    pub read_timeout: Duration,
    /// How many times a transient failure (connection error, timeout, reset, HTTP 5xx / 408 /
    /// 429) is retried in a row. The count restarts whenever an attempt made progress.
    pub max_retries: u32,
    /// Wait before the first retry; doubled for each further one, at most 30 s.
    pub retry_backoff: Duration,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            base_url: None,
            allow_unverified: false,
            connect_timeout: Duration::from_secs(20),
            read_timeout: Duration::from_secs(60),
            max_retries: 5,
            retry_backoff: Duration::from_secs(1),
            user_agent: concat!("autosub-models/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl DownloadOptions {
    /// Defaults, with `base_url` taken from `$AUTOSUB_MODEL_BASE_URL` when it is set and
    /// not empty.
    pub fn from_env() -> Self {
        let base_url = std::env::var(BASE_URL_ENV)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        DownloadOptions {
            base_url,
            ..Default::default()
        }
    }

    /// The download URL of a catalog entry under these options.
    pub fn url_for(&self, entry: &CatalogEntry) -> String {
        entry.url_with_base(self.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL))
    }
}

/// What [`download`] did.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadReport {
    /// The installed file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256 (lower-case hex).
    pub sha256: String,
    /// Bytes that were already in the `.partial` file when the call started and were kept.
    pub resumed_from: u64,
    /// HTTP requests made.
    pub requests: u32,
    /// Whether the SHA-256 was checked against an expected value.
    pub verified: bool,
}

/// `<dest>.partial`, where an unfinished download of `dest` is kept.
pub fn partial_path(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(".partial");
    PathBuf::from(s)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a file (lower-case hex).
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let (h, _) = hash_prefix(path, u64::MAX)?;
    Ok(hex(&h.finalize()))
}

/// Hashes the first `limit` bytes of a file; returns the hasher and the bytes hashed.
fn hash_prefix(path: &Path, limit: u64) -> Result<(Sha256, u64), ModelError> {
    let f = File::open(path).map_err(|e| ModelError::io("opening", path, e))?;
    let mut r = BufReader::with_capacity(1 << 20, f).take(limit);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = r
            .read(&mut buf)
            .map_err(|e| ModelError::io("reading", path, e))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((h, n))
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn remove_quietly(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Parses `Content-Range: bytes <start>-<end>/<total|*>`.
fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.trim().split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start.trim().parse().ok()?, end.trim().parse().ok()?, total))
}

/// Outcome of one HTTP attempt.
enum Attempt {
    /// The body was received completely.
    Complete,
    /// Something transient went wrong; try again (`progressed`: bytes were received).
    Retry { msg: String, progressed: bool },
}

struct State<'a> {
    url: &'a str,
    partial: &'a Path,
    expected_size: Option<u64>,
    /// SHA-256 state of `partial[0..n]`.
    hashed: Option<(Sha256, u64)>,
    requests: u32,
    /// Bytes of the partial file found at the start that are still in use.
    resumed_from: u64,
}

impl State<'_> {
    /// Throws the partial file away (the next attempt starts from byte 0).
    fn discard_partial(&mut self) {
        remove_quietly(self.partial);
        self.hashed = None;
        self.resumed_from = 0;
    }
}

/// Downloads `url` to `dest`, verifying it.
///
/// * Data goes to `<dest>.partial`; `dest` is only created (atomically renamed, replacing an
///   existing file) once the size and SHA-256 match.
/// * An existing `.partial` is resumed with an HTTP `Range` request. A server that ignores
///   the range (answers `200`) is handled by starting over; `416` (the partial is larger than
///   the file) starts over too.
/// * Transient failures (connection errors, timeouts, a connection dropped mid-body, HTTP
///   5xx/408/429) are retried up to `opts.max_retries` times in a row with exponential
///   backoff, resuming from what was received.
/// * On a size or checksum mismatch the partial file is deleted and an error returned.
/// * `progress(done, total)` (bytes; `total` is 0 while unknown) is called as data arrives;
///   returning `false` cancels with [`ModelError::Cancelled`]. The `.partial` file is kept
///   so a later call resumes; delete [`partial_path`] to discard it.
/// * Without `expected_sha256` the call is refused ([`ModelError::Unverified`]) unless
///   `opts.allow_unverified` is set.
pub fn download(
    url: &str,
    dest: &Path,
    expected_sha256: Option<&str>,
    expected_size: Option<u64>,
    opts: &DownloadOptions,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<DownloadReport, ModelError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ModelError::InvalidArgument(format!(
            "not an http(s) URL: {url}"
        )));
    }
    let expected_sha = match expected_sha256 {
        Some(s) => {
            let s = s.trim().to_ascii_lowercase();
            if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ModelError::InvalidArgument(format!(
                    "expected SHA-256 must be 64 hex digits, got {s:?}"
                )));
            }
            Some(s)
        }
        None if opts.allow_unverified => None,
        None => {
            return Err(ModelError::Unverified {
                url: url.to_owned(),
            })
        }
    };
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| ModelError::io("creating", parent, e))?;
    }
    let partial = partial_path(dest);
    let resumed_from = file_len(&partial);

    let client = reqwest::blocking::Client::builder()
        .connect_timeout(opts.connect_timeout)
        .timeout(opts.read_timeout)
        .user_agent(opts.user_agent.clone())
        .build()
        .map_err(|e| ModelError::Network {
            url: url.to_owned(),
            attempts: 0,
            msg: format!("cannot create HTTP client: {e}"),
        })?;

    let mut st = State {
        url,
        partial: &partial,
        expected_size,
        hashed: None,
        requests: 0,
        resumed_from,
    };
    let mut failures = 0u32;
    loop {
        match attempt(&client, &mut st, progress)? {
            Attempt::Complete => break,
            Attempt::Retry { msg, progressed } => {
                if progressed {
                    failures = 0;
                }
                failures += 1;
                if failures > opts.max_retries {
                    return Err(ModelError::Network {
                        url: url.to_owned(),
                        attempts: st.requests,
                        msg,
                    });
                }
                let done = file_len(&partial);
                if !progress(done, expected_size.unwrap_or(0)) {
                    return Err(ModelError::Cancelled);
                }
                let factor = 1u32 << (failures - 1).min(16);
                let wait = opts
                    .retry_backoff
                    .saturating_mul(factor)
                    .min(Duration::from_secs(30));
                std::thread::sleep(wait);
            }
        }
    }

    // Verify.
    let size = file_len(&partial);
    if let Some(want) = expected_size {
        if size != want {
            remove_quietly(&partial);
            return Err(ModelError::SizeMismatch {
                path: dest.to_path_buf(),
                expected: want,
                actual: size,
            });
        }
    }
    let hasher = match st.hashed.take() {
        Some((h, n)) if n == size => h,
        _ => hash_prefix(&partial, u64::MAX)?.0,
    };
    let actual = hex(&hasher.finalize());
    if let Some(want) = &expected_sha {
        if *want != actual {
            remove_quietly(&partial);
            return Err(ModelError::ChecksumMismatch {
                path: dest.to_path_buf(),
                expected: want.clone(),
                actual,
            });
        }
    }
    std::fs::rename(&partial, dest).map_err(|e| ModelError::io("renaming", &partial, e))?;
    Ok(DownloadReport {
        path: dest.to_path_buf(),
        bytes: size,
        sha256: actual,
        resumed_from: st.resumed_from,
        requests: st.requests,
        verified: expected_sha.is_some(),
    })
}

fn attempt(
    client: &reqwest::blocking::Client,
    st: &mut State<'_>,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<Attempt, ModelError> {
    let url = st.url;
    let mut offset = file_len(st.partial);
    if let Some(size) = st.expected_size {
        if offset > size {
            st.discard_partial();
            offset = 0;
        } else if offset == size && size > 0 {
            // Already complete (for example a previous run was interrupted while verifying).
            return Ok(Attempt::Complete);
        }
    }
    let mut req = client.get(url);
    if offset > 0 {
        req = req.header(reqwest::header::RANGE, format!("bytes={offset}-"));
    }
    st.requests += 1;
    let mut resp = match req.send() {
        Ok(r) => r,
        Err(e) if e.is_builder() => {
            return Err(ModelError::InvalidArgument(format!("bad URL {url}: {e}")))
        }
        Err(e) if e.is_redirect() => {
            return Err(ModelError::Protocol {
                url: url.to_owned(),
                msg: e.to_string(),
            })
        }
        Err(e) => {
            return Ok(Attempt::Retry {
                msg: error_chain(&e),
                progressed: false,
            })
        }
    };
    let status = resp.status().as_u16();
    let total_hint;
    let append;
    match status {
        206 => {
            let cr = resp
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_content_range);
            match cr {
                Some((start, _end, total)) if start == offset => {
                    if let (Some(t), Some(want)) = (total, st.expected_size) {
                        if t != want {
                            st.discard_partial();
                            return Err(ModelError::Protocol {
                                url: url.to_owned(),
                                msg: format!("server reports a file of {t} bytes, expected {want}"),
                            });
                        }
                    }
                    total_hint = total.or(st.expected_size);
                    append = true;
                }
                _ => {
                    // A range we did not ask for: start from scratch.
                    st.discard_partial();
                    return Ok(Attempt::Retry {
                        msg: "server answered with an unexpected Content-Range".into(),
                        progressed: false,
                    });
                }
            }
        }
        200 => {
            let len = resp.content_length();
            if let (Some(l), Some(want)) = (len, st.expected_size) {
                if l != want {
                    st.discard_partial();
                    return Err(ModelError::Protocol {
                        url: url.to_owned(),
                        msg: format!("server sends {l} bytes, expected {want}"),
                    });
                }
            }
            total_hint = len.or(st.expected_size);
            append = false;
        }
        416 => {
            // Our partial is at least as long as the server's file: start over.
            st.discard_partial();
            return Ok(Attempt::Retry {
                msg: "HTTP 416 for the resumed range".into(),
                progressed: false,
            });
        }
        408 | 429 | 500..=599 => {
            return Ok(Attempt::Retry {
                msg: format!("HTTP {status}"),
                progressed: false,
            })
        }
        _ => {
            return Err(ModelError::HttpStatus {
                status,
                url: url.to_owned(),
            })
        }
    }

    let start = if append { offset } else { 0 };
    // Bring the running hash to the start position.
    let mut hasher = match st.hashed.take() {
        Some((h, n)) if n == start => h,
        _ if start == 0 => Sha256::new(),
        _ => {
            let (h, n) = hash_prefix(st.partial, start)?;
            if n != start {
                st.discard_partial();
                return Ok(Attempt::Retry {
                    msg: "partial file changed while resuming".into(),
                    progressed: false,
                });
            }
            h
        }
    };
    let file = if append {
        OpenOptions::new().append(true).open(st.partial)
    } else {
        st.resumed_from = 0;
        File::create(st.partial)
    }
    .map_err(|e| ModelError::io("opening", st.partial, e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let total = total_hint.unwrap_or(0);
    let mut done = start;
    let mut received = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    let outcome = loop {
        match resp.read(&mut buf) {
            Ok(0) => break None,
            Ok(k) => {
                if let Some(t) = total_hint {
                    if done + k as u64 > t {
                        drop(w);
                        st.discard_partial();
                        return Err(ModelError::Protocol {
                            url: url.to_owned(),
                            msg: format!("server sent more than the announced {t} bytes"),
                        });
                    }
                }
                w.write_all(&buf[..k])
                    .map_err(|e| ModelError::io("writing", st.partial, e))?;
                hasher.update(&buf[..k]);
                done += k as u64;
                received += k as u64;
                if !progress(done, total) {
                    break Some(Err(ModelError::Cancelled));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                break Some(Ok(Attempt::Retry {
                    msg: format!("connection lost after {done} bytes: {e}"),
                    progressed: received > 0,
                }))
            }
        }
    };
    w.flush()
        .map_err(|e| ModelError::io("writing", st.partial, e))?;
    let file = w
        .into_inner()
        .map_err(|e| ModelError::io("writing", st.partial, e.into_error()))?;
    st.hashed = Some((hasher, done));
    match outcome {
        Some(r) => r,
        None => {
            if let Some(t) = total_hint {
                if done < t {
                    return Ok(Attempt::Retry {
                        msg: format!("connection closed after {done} of {t} bytes"),
                        progressed: received > 0,
                    });
                }
            }
            file.sync_all()
                .map_err(|e| ModelError::io("syncing", st.partial, e))?;
            Ok(Attempt::Complete)
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Downloads a catalog model into `models_dir` as `ggml-<name>.bin`, verified against the
/// catalog's size and SHA-256. The URL is built from `opts.base_url` when set.
pub fn download_model(
    entry: &CatalogEntry,
    models_dir: &Path,
    opts: &DownloadOptions,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<DownloadReport, ModelError> {
    let url = opts.url_for(entry);
    let dest = models_dir.join(entry.file_name);
    download(&url, &dest, entry.sha256, entry.size, opts, progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parsing() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, 199, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 0-9/*"), Some((0, 9, None)));
        assert_eq!(parse_content_range("items 0-9/10"), None);
        assert_eq!(parse_content_range("bytes x-9/10"), None);
    }

    #[test]
    fn partial_name_appends_suffix() {
        assert_eq!(
            partial_path(Path::new("/m/ggml-base.bin")),
            PathBuf::from("/m/ggml-base.bin.partial")
        );
    }

    #[test]
    fn refuses_unverified_and_bad_arguments_without_network() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.bin");
        let opts = DownloadOptions::default();
        let never = &mut |_: u64, _: u64| -> bool { panic!("no progress expected") };
        let e = download("http://127.0.0.1:9/x", &dest, None, None, &opts, never).unwrap_err();
        assert!(matches!(e, ModelError::Unverified { .. }), "{e}");
        let e = download(
            "http://127.0.0.1:9/x",
            &dest,
            Some("abc"),
            None,
            &opts,
            never,
        )
        .unwrap_err();
        assert!(matches!(e, ModelError::InvalidArgument(_)), "{e}");
        let e = download("ftp://127.0.0.1/x", &dest, None, None, &opts, never).unwrap_err();
        assert!(matches!(e, ModelError::InvalidArgument(_)), "{e}");
        assert!(!dest.exists());
    }
}
