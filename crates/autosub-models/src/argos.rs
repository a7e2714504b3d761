//! Argos Translate packages (`.argosmodel`): the package index, installing, importing,
//! listing and removing. No inference happens here: the translation engine only needs
//! [`find_package`] / [`list_packages`] and the extracted layout.
//!
//! Layout: every package lives in `<models_dir>/argos/translate-{from}_{to}/`, holding the
//! archive's top folder contents (`metadata.json`, `sentencepiece.model`, `model/` = a
//! CTranslate2 model with `model.bin`, `config.json` and its vocabulary, optionally
//! `README.md` and `stanza/`) plus `autosub.json`, which records where the archive came
//! from, its SHA-256 and size, and whether that digest was checked against a known one.
//! Names starting with `.` in `argos/` are work in progress (downloads, extraction, old
//! versions being deleted) and never count as packages.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::download::{download, sha256_file, DownloadOptions};
use crate::error::ModelError;

/// The official Argos Translate package index (argospm-index).
pub const DEFAULT_INDEX_URL: &str =
    "https://raw.githubusercontent.com/argosopentech/argospm-index/main/index.json";

/// Environment variable a front end may use to override [`DEFAULT_INDEX_URL`]
/// (see [`argos_index_url`]).
pub const ARGOS_INDEX_ENV: &str = "AUTOSUB_ARGOS_INDEX";

/// Largest index [`fetch_index`] accepts.
pub const MAX_INDEX_BYTES: u64 = 10 * 1024 * 1024;

/// Most entries an `.argosmodel` archive may have (zip-bomb guard).
pub const MAX_PACKAGE_ENTRIES: usize = 10_000;

/// Largest total uncompressed size of an `.argosmodel` archive (zip-bomb guard).
pub const MAX_PACKAGE_BYTES: u64 = 4 << 30;

/// Name of the file AutoSub writes next to `metadata.json` in an installed package.
pub const AUTOSUB_RECORD_FILE: &str = "autosub.json";

/// Largest `metadata.json` read from an archive.
const MAX_METADATA_BYTES: u64 = 1 << 20;

/// `$AUTOSUB_ARGOS_INDEX` when set and not empty, else [`DEFAULT_INDEX_URL`].
pub fn argos_index_url() -> String {
    std::env::var(ARGOS_INDEX_ENV)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_INDEX_URL.to_owned())
}

/// `<models_dir>/argos`, where packages are installed.
pub fn argos_dir(models_dir: &Path) -> PathBuf {
    models_dir.join("argos")
}

/// `<models_dir>/argos/translate-{from}_{to}`, where the package for a pair is installed.
/// The codes are normalised with [`normalize_lang_code`].
pub fn package_dir(models_dir: &Path, from: &str, to: &str) -> Result<PathBuf, ModelError> {
    let (from, to) = (normalize_lang_code(from)?, normalize_lang_code(to)?);
    Ok(argos_dir(models_dir).join(package_folder_name(&from, &to)))
}

fn package_folder_name(from: &str, to: &str) -> String {
    format!("translate-{from}_{to}")
}

/// Trims and lower-cases a language code and checks that it looks like an ISO 639 code:
/// 2 or 3 letters, optionally followed by up to two `-` subtags of 2 to 8 letters or digits
/// (`en`, `ru`, `zh`, `pt-br`). `_` is not allowed (it separates the pair in folder names).
pub fn normalize_lang_code(code: &str) -> Result<String, ModelError> {
    let c = code.trim().to_ascii_lowercase();
    let mut parts = c.split('-');
    let primary = parts.next().unwrap_or("");
    let primary_ok =
        (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase());
    let subtags: Vec<&str> = parts.collect();
    let subtags_ok = subtags.len() <= 2
        && subtags.iter().all(|s| {
            (2..=8).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if primary_ok && subtags_ok {
        Ok(c)
    } else {
        Err(ModelError::InvalidLanguageCode(code.to_owned()))
    }
}

/// Compares dotted version strings numerically, segment by segment: `1.10 > 1.9`,
/// `1.9 == 1.9.0`. A segment's leading digits compare as a number, anything after them
/// as text (`2a < 2b`); a segment without digits counts as 0 followed by its text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn seg(s: &str) -> (u128, &str) {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let n = s[..digits]
            .parse::<u128>()
            .unwrap_or(if digits > 0 { u128::MAX } else { 0 });
        (n, &s[digits..])
    }
    let (mut x, mut y) = (a.trim().split('.'), b.trim().split('.'));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return Ordering::Equal,
            (p, q) => {
                let o = seg(p.unwrap_or("0")).cmp(&seg(q.unwrap_or("0")));
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

/// One package in an Argos package index. Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// Package code, for example `translate-en_ru`.
    #[serde(default)]
    pub code: String,
    /// Package type (`type` in the JSON); `None` means `translate`.
    #[serde(rename = "type", default)]
    pub package_type: Option<String>,
    /// Package version, for example `1.9` (numbers in the JSON are accepted too).
    #[serde(deserialize_with = "version_string")]
    pub package_version: String,
    /// Argos Translate version the package was made for.
    #[serde(default, deserialize_with = "opt_version_string")]
    pub argos_version: Option<String>,
    /// Source language code.
    pub from_code: String,
    /// Source language name.
    #[serde(default)]
    pub from_name: String,
    /// Target language code.
    pub to_code: String,
    /// Target language name.
    #[serde(default)]
    pub to_name: String,
    /// Download links (http(s); some `ipfs://`, which are skipped).
    #[serde(default)]
    pub links: Vec<String>,
    /// Other packages this one needs (kept as given; not used by AutoSub).
    #[serde(default)]
    pub dependencies: Option<serde_json::Value>,
    /// Archive size in bytes (AutoSub's index only; the official one has none).
    #[serde(default)]
    pub size: Option<u64>,
    /// Archive SHA-256, hex (AutoSub's index only; the official one has none).
    #[serde(default)]
    pub sha256: Option<String>,
}

impl IndexEntry {
    /// Whether this is a translation package (`type` absent or `translate`).
    pub fn is_translate(&self) -> bool {
        self.package_type.as_deref().unwrap_or("translate") == "translate"
    }

    /// Whether this entry translates `from` into `to` (case-insensitive).
    pub fn is_pair(&self, from: &str, to: &str) -> bool {
        self.from_code.trim().eq_ignore_ascii_case(from.trim())
            && self.to_code.trim().eq_ignore_ascii_case(to.trim())
    }

    /// The first `http://` or `https://` link.
    pub fn http_link(&self) -> Option<&str> {
        self.links
            .iter()
            .map(|l| l.trim())
            .find(|l| l.starts_with("http://") || l.starts_with("https://"))
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StrOrNum {
    S(String),
    N(serde_json::Number),
}

fn version_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match StrOrNum::deserialize(d)? {
        StrOrNum::S(s) => s,
        StrOrNum::N(n) => n.to_string(),
    })
}

fn opt_version_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<StrOrNum>::deserialize(d)?.map(|v| match v {
        StrOrNum::S(s) => s,
        StrOrNum::N(n) => n.to_string(),
    }))
}

/// Parses an Argos package index (a JSON array of [`IndexEntry`]).
///
/// Entries that do not have the required fields (`package_version`, `from_code`,
/// `to_code`) or have fields of the wrong type are skipped, so one odd entry does not make
/// the whole index unusable; if the array is not empty and no entry is usable, that is an
/// error.
pub fn parse_index(json: &str) -> Result<Vec<IndexEntry>, ModelError> {
    parse_index_inner(json).map_err(|msg| ModelError::ArgosIndex {
        index: "(given as text)".into(),
        msg,
    })
}

fn parse_index_inner(json: &str) -> Result<Vec<IndexEntry>, String> {
    let raw: Vec<serde_json::Value> =
        serde_json::from_str(json).map_err(|e| format!("not a JSON array of packages: {e}"))?;
    let n = raw.len();
    let mut first_err = None;
    let entries: Vec<IndexEntry> = raw
        .into_iter()
        .filter_map(|v| match IndexEntry::deserialize(v) {
            Ok(e) => Some(e),
            Err(e) => {
                first_err.get_or_insert(e.to_string());
                None
            }
        })
        .collect();
    if n > 0 && entries.is_empty() {
        return Err(format!(
            "none of its {n} entries is a usable package (first problem: {})",
            first_err.unwrap_or_default()
        ));
    }
    Ok(entries)
}

/// The translation entry for `from` -> `to` with the highest `package_version`
/// (compared with [`compare_versions`]; on a tie the first in the index).
pub fn select<'a>(entries: &'a [IndexEntry], from: &str, to: &str) -> Option<&'a IndexEntry> {
    entries
        .iter()
        .filter(|e| e.is_translate() && e.is_pair(from, to))
        .fold(None, |best: Option<&IndexEntry>, e| match best {
            Some(b)
                if compare_versions(&e.package_version, &b.package_version)
                    != Ordering::Greater =>
            {
                Some(b)
            }
            _ => Some(e),
        })
}

fn http_client(opts: &DownloadOptions, url: &str) -> Result<reqwest::blocking::Client, ModelError> {
    reqwest::blocking::Client::builder()
        .connect_timeout(opts.connect_timeout)
        .timeout(opts.read_timeout)
        .user_agent(opts.user_agent.clone())
        .build()
        .map_err(|e| ModelError::ArgosIndex {
            index: url.to_owned(),
            msg: format!("cannot create HTTP client: {e}"),
        })
}

/// Downloads and parses an Argos package index over http(s).
///
/// Uses the connect and read timeouts and the retry settings of `opts` (transient failures:
/// connection errors, timeouts, HTTP 5xx / 408 / 429). Bodies over [`MAX_INDEX_BYTES`] are
/// refused. Every failure is a [`ModelError::ArgosIndex`] naming the URL.
pub fn fetch_index(url: &str, opts: &DownloadOptions) -> Result<Vec<IndexEntry>, ModelError> {
    let fail = |msg: String| ModelError::ArgosIndex {
        index: url.to_owned(),
        msg,
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(fail(
            "only http:// and https:// index URLs are supported".into(),
        ));
    }
    let client = http_client(opts, url)?;
    let mut failures = 0u32;
    let body = loop {
        let msg = match fetch_once(&client, url) {
            Ok(body) => break body,
            Err(Fetch::Fatal(msg)) => return Err(fail(msg)),
            Err(Fetch::Transient(msg)) => msg,
        };
        failures += 1;
        if failures > opts.max_retries {
            return Err(fail(format!("{msg} (after {failures} attempt(s))")));
        }
        let factor = 1u32 << (failures - 1).min(16);
        std::thread::sleep(
            opts.retry_backoff
                .saturating_mul(factor)
                .min(Duration::from_secs(30)),
        );
    };
    let text = String::from_utf8(body).map_err(|_| fail("the index is not UTF-8 text".into()))?;
    parse_index_inner(&text).map_err(fail)
}

enum Fetch {
    Fatal(String),
    Transient(String),
}

fn fetch_once(client: &reqwest::blocking::Client, url: &str) -> Result<Vec<u8>, Fetch> {
    let resp = match client.get(url).send() {
        Ok(r) => r,
        Err(e) if e.is_builder() || e.is_redirect() => return Err(Fetch::Fatal(error_chain(&e))),
        Err(e) => return Err(Fetch::Transient(error_chain(&e))),
    };
    let status = resp.status();
    match status.as_u16() {
        200..=299 => {}
        408 | 429 | 500..=599 => return Err(Fetch::Transient(format!("HTTP {status}"))),
        _ => return Err(Fetch::Fatal(format!("HTTP {status}"))),
    }
    if resp.content_length().is_some_and(|l| l > MAX_INDEX_BYTES) {
        return Err(Fetch::Fatal(format!(
            "the index is larger than {} MB",
            MAX_INDEX_BYTES >> 20
        )));
    }
    let mut body = Vec::new();
    match resp.take(MAX_INDEX_BYTES + 1).read_to_end(&mut body) {
        Ok(_) if body.len() as u64 > MAX_INDEX_BYTES => Err(Fetch::Fatal(format!(
            "the index is larger than {} MB",
            MAX_INDEX_BYTES >> 20
        ))),
        Ok(_) => Ok(body),
        Err(e) => Err(Fetch::Transient(format!("reading the body: {e}"))),
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

/// An installed Argos Translate package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstalledPackage {
    /// Source language code (from `metadata.json`, lower case).
    pub from: String,
    /// Target language code.
    pub to: String,
    /// `package_version` from `metadata.json`.
    pub version: String,
    /// Source language name, when `metadata.json` gives one.
    pub from_name: Option<String>,
    /// Target language name, when `metadata.json` gives one.
    pub to_name: Option<String>,
    /// The package folder (`<models_dir>/argos/translate-{from}_{to}`).
    pub dir: PathBuf,
    /// The CTranslate2 model folder (`dir/model`).
    pub model_dir: PathBuf,
    /// The SentencePiece model shared by source and target (`dir/sentencepiece.model`).
    pub spm: PathBuf,
    /// Total size of the files in `dir`.
    pub size_bytes: u64,
    /// Whether the archive's SHA-256 was checked against one published in the index.
    pub verified: bool,
    /// Where the archive came from (URL or file path); `None` for a folder AutoSub did not
    /// install.
    pub source: Option<String>,
    /// SHA-256 of the archive it was installed from, when AutoSub installed it.
    pub archive_sha256: Option<String>,
}

/// What `autosub.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    source: String,
    sha256: String,
    size: u64,
    verified: bool,
    #[serde(default)]
    top_folder: String,
}

/// The fields of `metadata.json` that matter here.
#[derive(Debug, Deserialize)]
struct Metadata {
    #[serde(rename = "type", default)]
    package_type: Option<String>,
    #[serde(deserialize_with = "version_string")]
    package_version: String,
    from_code: String,
    #[serde(default)]
    from_name: Option<String>,
    to_code: String,
    #[serde(default)]
    to_name: Option<String>,
}

/// Metadata checked: codes normalised, type translate.
struct CheckedMetadata {
    from: String,
    to: String,
    version: String,
    from_name: Option<String>,
    to_name: Option<String>,
}

fn check_metadata(bytes: &[u8]) -> Result<CheckedMetadata, String> {
    let m: Metadata = serde_json::from_slice(bytes).map_err(|e| format!("metadata.json: {e}"))?;
    let kind = m.package_type.as_deref().unwrap_or("translate");
    if kind != "translate" {
        return Err(format!(
            "metadata.json says it is a {kind:?} package, not a translation package"
        ));
    }
    let code = |c: &str, field: &str| {
        normalize_lang_code(c)
            .map_err(|_| format!("metadata.json: {field} {c:?} is not an ISO 639 language code"))
    };
    let from = code(&m.from_code, "from_code")?;
    let to = code(&m.to_code, "to_code")?;
    if from == to {
        return Err(format!(
            "metadata.json: from_code and to_code are both {from:?}"
        ));
    }
    let version = m.package_version.trim().to_owned();
    if version.is_empty() {
        return Err("metadata.json: package_version is empty".into());
    }
    Ok(CheckedMetadata {
        from,
        to,
        version,
        from_name: m.from_name.filter(|s| !s.is_empty()),
        to_name: m.to_name.filter(|s| !s.is_empty()),
    })
}

/// Reads an installed package folder; `Err` says why it is not usable.
fn read_package(dir: &Path) -> Result<InstalledPackage, String> {
    let meta_path = dir.join("metadata.json");
    let bytes = std::fs::read(&meta_path).map_err(|e| format!("metadata.json: {e}"))?;
    let m = check_metadata(&bytes)?;
    let model_dir = dir.join("model");
    let spm = dir.join("sentencepiece.model");
    for f in [
        &spm,
        &model_dir.join("model.bin"),
        &model_dir.join("config.json"),
    ] {
        if !f.is_file() {
            return Err(format!("{} is missing", f.display()));
        }
    }
    let record: Option<Record> = std::fs::read(dir.join(AUTOSUB_RECORD_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    Ok(InstalledPackage {
        from: m.from,
        to: m.to,
        version: m.version,
        from_name: m.from_name,
        to_name: m.to_name,
        dir: dir.to_path_buf(),
        model_dir,
        spm,
        size_bytes: tree_size(dir),
        verified: record.as_ref().is_some_and(|r| r.verified),
        source: record.as_ref().map(|r| r.source.clone()),
        archive_sha256: record.map(|r| r.sha256),
    })
}

/// Sum of the sizes of the regular files under `dir` (symbolic links are not followed).
fn tree_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .map(|e| match std::fs::symlink_metadata(e.path()) {
            Ok(m) if m.is_dir() => tree_size(&e.path()),
            Ok(m) if m.is_file() => m.len(),
            _ => 0,
        })
        .sum()
}

/// The installed packages, sorted by pair (then highest version first). Folders that are
/// hidden (work in progress), lack a readable `metadata.json` or the model files are
/// skipped; a missing directory gives an empty list.
pub fn list_packages(models_dir: &Path) -> Vec<InstalledPackage> {
    let Ok(rd) = std::fs::read_dir(argos_dir(models_dir)) else {
        return Vec::new();
    };
    let mut out: Vec<InstalledPackage> = rd
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| e.path().is_dir())
        .filter_map(|e| read_package(&e.path()).ok())
        .collect();
    out.sort_by(|a, b| {
        (&a.from, &a.to)
            .cmp(&(&b.from, &b.to))
            .then_with(|| compare_versions(&b.version, &a.version))
            .then_with(|| a.dir.cmp(&b.dir))
    });
    out
}

/// The installed package for `from` -> `to` (the highest version if several folders hold
/// that pair), or `None`.
pub fn find_package(models_dir: &Path, from: &str, to: &str) -> Option<InstalledPackage> {
    let (from, to) = (
        normalize_lang_code(from).ok()?,
        normalize_lang_code(to).ok()?,
    );
    list_packages(models_dir)
        .into_iter()
        .find(|p| p.from == from && p.to == to)
}

/// Removes every installed package for `from` -> `to` and returns the folders removed
/// (empty when none was installed). Each folder is first renamed to a hidden name, so a
/// half-deleted package is never seen under its final name.
pub fn remove_package(models_dir: &Path, from: &str, to: &str) -> Result<Vec<PathBuf>, ModelError> {
    let (from, to) = (normalize_lang_code(from)?, normalize_lang_code(to)?);
    let argos = argos_dir(models_dir);
    let mut removed = Vec::new();
    for p in list_packages(models_dir)
        .into_iter()
        .filter(|p| p.from == from && p.to == to)
    {
        let aside = unused_hidden_path(&argos, "removing");
        std::fs::rename(&p.dir, &aside).map_err(|e| ModelError::io("renaming", &p.dir, e))?;
        std::fs::remove_dir_all(&aside).map_err(|e| ModelError::io("removing", &aside, e))?;
        removed.push(p.dir);
    }
    Ok(removed)
}

/// Downloads and installs the best package for `from` -> `to` from the index at
/// `index_url` (see [`fetch_index`], [`select`], [`install_entry`]).
///
/// When the index has no package for the pair the error lists the pairs it has from
/// `from` and into `to`.
pub fn install_pair(
    models_dir: &Path,
    from: &str,
    to: &str,
    index_url: &str,
    opts: &DownloadOptions,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<InstalledPackage, ModelError> {
    let (from, to) = (normalize_lang_code(from)?, normalize_lang_code(to)?);
    let entries = fetch_index(index_url, opts)?;
    let Some(entry) = select(&entries, &from, &to) else {
        let pairs = |keep: &dyn Fn(&IndexEntry) -> bool| {
            let set: BTreeSet<String> = entries
                .iter()
                .filter(|e| e.is_translate() && keep(e))
                .map(|e| {
                    format!(
                        "{}->{}",
                        e.from_code.trim().to_ascii_lowercase(),
                        e.to_code.trim().to_ascii_lowercase()
                    )
                })
                .collect();
            if set.is_empty() {
                "none".to_owned()
            } else {
                set.into_iter().collect::<Vec<_>>().join(", ")
            }
        };
        return Err(ModelError::ArgosPairNotFound {
            from_pairs: pairs(&|e| e.from_code.trim().eq_ignore_ascii_case(&from)),
            to_pairs: pairs(&|e| e.to_code.trim().eq_ignore_ascii_case(&to)),
            from,
            to,
            index: index_url.to_owned(),
        });
    };
    install_entry(models_dir, entry, opts, progress)
}

/// Downloads the package of one index entry and installs it (see [`import_package`]).
///
/// * The first http(s) link is downloaded with [`download`] (resumable, retried) to a hidden
///   file in `<models_dir>/argos/`; a cancelled or failed download keeps its `.partial`
///   file, so a later call for the same entry resumes it.
/// * The entry's `size` and `sha256` are checked when it has them. Without a `sha256` the
///   archive is installed anyway (zip CRCs and the structure checks still apply) and the
///   result has `verified: false`.
/// * The package's `metadata.json` must name the entry's pair, otherwise nothing is
///   installed.
/// * The downloaded archive is deleted afterwards, whether the import worked or not.
pub fn install_entry(
    models_dir: &Path,
    entry: &IndexEntry,
    opts: &DownloadOptions,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<InstalledPackage, ModelError> {
    let from = normalize_lang_code(&entry.from_code)?;
    let to = normalize_lang_code(&entry.to_code)?;
    let Some(url) = entry.http_link() else {
        return Err(ModelError::ArgosNoLink {
            code: entry.code.clone(),
            version: entry.package_version.clone(),
            links: if entry.links.is_empty() {
                "none".into()
            } else {
                entry.links.join(", ")
            },
        });
    };
    let argos = argos_dir(models_dir);
    std::fs::create_dir_all(&argos).map_err(|e| ModelError::io("creating", &argos, e))?;
    let version: String = entry
        .package_version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let archive = argos.join(format!(".download-{from}_{to}-{version}.argosmodel"));
    let dl_opts = DownloadOptions {
        allow_unverified: true,
        ..opts.clone()
    };
    // The downloader names the file it wrote (a hidden one here); the user knows the package by its link.
    let report = download(
        url,
        &archive,
        entry.sha256.as_deref(),
        entry.size,
        &dl_opts,
        progress,
    )
    .map_err(|e| match e {
        ModelError::SizeMismatch {
            expected, actual, ..
        } => ModelError::SizeMismatch {
            path: PathBuf::from(url),
            expected,
            actual,
        },
        ModelError::ChecksumMismatch {
            expected, actual, ..
        } => ModelError::ChecksumMismatch {
            path: PathBuf::from(url),
            expected,
            actual,
        },
        other => other,
    })?;
    let result = import_archive(
        models_dir,
        &archive,
        Record {
            source: url.to_owned(),
            sha256: report.sha256,
            size: report.bytes,
            verified: report.verified,
            top_folder: String::new(),
        },
        Some((&from, &to)),
    );
    let _ = std::fs::remove_file(&archive);
    result
}

/// Installs a local `.argosmodel` file into `<models_dir>/argos/translate-{from}_{to}/`,
/// replacing an installed package for the same pair.
///
/// The archive is checked before anything is extracted: a readable zip, exactly one top
/// folder holding everything, no absolute names, no `..`, no symbolic links or special
/// files, no encryption, only stored or deflate entries, at most
/// [`MAX_PACKAGE_ENTRIES`] entries and [`MAX_PACKAGE_BYTES`] uncompressed, the required files
/// (`metadata.json`, `sentencepiece.model`, `model/model.bin`, `model/config.json`, a
/// vocabulary), and a `metadata.json` of a translation package with valid language codes.
/// It is then extracted into a hidden folder (every entry read completely, so its CRC is
/// checked) and renamed into place; the previous package, if any, is renamed aside first
/// and deleted afterwards. On any error the temporary folders are removed and an existing
/// package is left as it was. The result has `verified: false` (no published digest was
/// checked); `autosub.json` records the file's path, SHA-256 and size.
pub fn import_package(models_dir: &Path, file: &Path) -> Result<InstalledPackage, ModelError> {
    let meta = std::fs::metadata(file).map_err(|e| ModelError::io("reading", file, e))?;
    if !meta.is_file() {
        return Err(ModelError::InvalidArgosPackage {
            path: file.to_path_buf(),
            msg: "not a file".into(),
        });
    }
    let sha256 = sha256_file(file)?;
    let source = std::path::absolute(file)
        .unwrap_or_else(|_| file.to_path_buf())
        .display()
        .to_string();
    import_archive(
        models_dir,
        file,
        Record {
            source,
            sha256,
            size: meta.len(),
            verified: false,
            top_folder: String::new(),
        },
        None,
    )
}

/// Archive limits (parameters so that unit tests can use small ones).
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_entries: usize,
    max_total: u64,
}

const LIMITS: Limits = Limits {
    max_entries: MAX_PACKAGE_ENTRIES,
    max_total: MAX_PACKAGE_BYTES,
};

/// One entry to extract: its index in the archive and its path below the top folder.
#[derive(Debug)]
struct Planned {
    index: usize,
    rel: Vec<String>,
    is_dir: bool,
    size: u64,
}

#[derive(Debug)]
struct Plan {
    top: String,
    entries: Vec<Planned>,
    metadata_index: usize,
}

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;

/// Checks names, types, sizes and the required files of every entry without decompressing
/// anything.
fn plan_archive<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    limits: Limits,
) -> Result<Plan, String> {
    let n = zip.len();
    if n > limits.max_entries {
        return Err(format!(
            "it has {n} entries, more than the {} allowed",
            limits.max_entries
        ));
    }
    let mut tops = BTreeSet::new();
    let mut seen = HashSet::new();
    let mut entries = Vec::new();
    let mut total = 0u64;
    for index in 0..n {
        let f = zip
            .by_index_raw(index)
            .map_err(|e| format!("entry {index}: {e}"))?;
        let name = f.name().to_owned();
        if name.contains('\0') || name.contains('\\') {
            return Err(format!("entry {name:?} has a NUL or backslash in its name"));
        }
        let b = name.as_bytes();
        if name.starts_with('/') || (b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic()) {
            return Err(format!("entry {name:?} has an absolute path"));
        }
        let comps: Vec<String> = name
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_owned)
            .collect();
        if comps.iter().any(|c| c == "..") {
            return Err(format!("entry {name:?} contains `..`"));
        }
        let mode = f.unix_mode().map(|m| m & S_IFMT).unwrap_or(0);
        if f.is_symlink() || !matches!(mode, 0 | S_IFREG | S_IFDIR) {
            return Err(format!("entry {name:?} is a symbolic link or special file"));
        }
        if f.encrypted() {
            return Err(format!("entry {name:?} is encrypted"));
        }
        let is_dir = f.is_dir() || mode == S_IFDIR;
        if !is_dir
            && !matches!(
                f.compression(),
                zip::CompressionMethod::Stored | zip::CompressionMethod::Deflated
            )
        {
            return Err(format!(
                "entry {name:?} uses compression {:?}; only stored and deflate are supported",
                f.compression()
            ));
        }
        let size = if is_dir { 0 } else { f.size() };
        total = total
            .checked_add(size)
            .filter(|t| *t <= limits.max_total)
            .ok_or_else(|| {
                format!(
                    "its contents are larger than {} bytes uncompressed",
                    limits.max_total
                )
            })?;
        let Some((top, rel)) = comps.split_first() else {
            continue;
        };
        if rel.is_empty() && !is_dir {
            return Err(format!(
                "file {name:?} is outside a top folder (a package holds everything in one folder)"
            ));
        }
        tops.insert(top.clone());
        if rel.is_empty() {
            continue;
        }
        if !seen.insert(rel.to_vec()) {
            return Err(format!("entry {name:?} appears twice"));
        }
        entries.push(Planned {
            index,
            rel: rel.to_vec(),
            is_dir,
            size,
        });
    }
    let top = match tops.len() {
        1 => tops.into_iter().next().unwrap_or_default(),
        0 => return Err("it is empty".into()),
        k => {
            let names: Vec<String> = tops.into_iter().take(5).collect();
            return Err(format!(
                "it has {k} top-level folders ({}); a package has exactly one",
                names.join(", ")
            ));
        }
    };
    let file_index = |path: &[&str]| {
        entries
            .iter()
            .find(|e| !e.is_dir && e.rel.iter().map(String::as_str).eq(path.iter().copied()))
            .map(|e| e.index)
    };
    let has = |path: &[&str]| file_index(path).is_some();
    let mut missing = Vec::new();
    for p in [
        &["metadata.json"][..],
        &["sentencepiece.model"],
        &["model", "model.bin"],
        &["model", "config.json"],
    ] {
        if !has(p) {
            missing.push(p.join("/"));
        }
    }
    let vocab = |stem: &str| {
        has(&["model", &format!("{stem}.json")]) || has(&["model", &format!("{stem}.txt")])
    };
    if !(vocab("shared_vocabulary") || (vocab("source_vocabulary") && vocab("target_vocabulary"))) {
        missing.push(
            "model/shared_vocabulary.json|.txt (or source_ and target_vocabulary)".to_owned(),
        );
    }
    if !missing.is_empty() {
        return Err(format!("{top}/ is missing {}", missing.join(", ")));
    }
    let metadata_index = file_index(&["metadata.json"]).unwrap_or_default();
    Ok(Plan {
        top,
        entries,
        metadata_index,
    })
}

/// Reads one entry completely (so the zip reader checks its CRC), at most `limit` bytes.
fn read_entry<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    index: usize,
    limit: u64,
) -> Result<Vec<u8>, String> {
    let f = zip.by_index(index).map_err(|e| e.to_string())?;
    let name = f.name().to_owned();
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("entry {name:?}: {e}"))?;
    if buf.len() as u64 > limit {
        return Err(format!("entry {name:?} is larger than {limit} bytes"));
    }
    Ok(buf)
}

/// Removes a temporary folder when dropped, unless disarmed.
struct TempDir(Option<PathBuf>);

impl TempDir {
    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A path `<dir>/.<what>-<pid>-<n>` that does not exist yet.
fn unused_hidden_path(dir: &Path, what: &str) -> PathBuf {
    loop {
        let n = COUNTER.fetch_add(1, AtomicOrdering::Relaxed);
        let p = dir.join(format!(".{what}-{}-{n}", std::process::id()));
        if std::fs::symlink_metadata(&p).is_err() {
            return p;
        }
    }
}

/// Creates a fresh hidden folder `<dir>/.<what>-<pid>-<n>`.
fn create_hidden_dir(dir: &Path, what: &str) -> Result<TempDir, ModelError> {
    loop {
        let p = unused_hidden_path(dir, what);
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(TempDir(Some(p))),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(ModelError::io("creating", &p, e)),
        }
    }
}

fn import_archive(
    models_dir: &Path,
    archive: &Path,
    record: Record,
    expect: Option<(&str, &str)>,
) -> Result<InstalledPackage, ModelError> {
    import_archive_with(models_dir, archive, record, expect, LIMITS)
}

fn import_archive_with(
    models_dir: &Path,
    archive: &Path,
    mut record: Record,
    expect: Option<(&str, &str)>,
    limits: Limits,
) -> Result<InstalledPackage, ModelError> {
    let not_zip = |msg: String| ModelError::NotArgosZip {
        path: archive.to_path_buf(),
        msg,
    };
    let invalid = |msg: String| ModelError::InvalidArgosPackage {
        path: archive.to_path_buf(),
        msg,
    };
    let file = File::open(archive).map_err(|e| ModelError::io("opening", archive, e))?;
    let mut zip = zip::ZipArchive::new(BufReader::with_capacity(1 << 16, file))
        .map_err(|e| not_zip(e.to_string()))?;
    let plan = plan_archive(&mut zip, limits).map_err(invalid)?;
    let meta_bytes =
        read_entry(&mut zip, plan.metadata_index, MAX_METADATA_BYTES).map_err(not_zip)?;
    let meta = check_metadata(&meta_bytes).map_err(invalid)?;
    if let Some((from, to)) = expect {
        if (meta.from.as_str(), meta.to.as_str()) != (from, to) {
            return Err(ModelError::ArgosPairMismatch {
                source_name: record.source.clone(),
                expected: format!("{from}->{to}"),
                found: format!("{}->{}", meta.from, meta.to),
            });
        }
    }

    let argos = argos_dir(models_dir);
    std::fs::create_dir_all(&argos).map_err(|e| ModelError::io("creating", &argos, e))?;
    let mut tmp = create_hidden_dir(&argos, "import")?;
    for e in &plan.entries {
        let dest = e
            .rel
            .iter()
            .fold(tmp.path().to_path_buf(), |p, c| p.join(c));
        if e.is_dir {
            std::fs::create_dir_all(&dest).map_err(|err| ModelError::io("creating", &dest, err))?;
            continue;
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|err| ModelError::io("creating", parent, err))?;
        }
        extract_entry(&mut zip, e, &dest, archive)?;
    }
    record.top_folder = plan.top;
    let rec_path = tmp.path().join(AUTOSUB_RECORD_FILE);
    let rec = serde_json::to_vec_pretty(&record).map_err(|e| {
        ModelError::InvalidArgument(format!("serialising {AUTOSUB_RECORD_FILE}: {e}"))
    })?;
    std::fs::write(&rec_path, rec).map_err(|e| ModelError::io("writing", &rec_path, e))?;

    // Final check on what is on disk, before it gets the final name.
    read_package(tmp.path()).map_err(invalid)?;

    let final_dir = argos.join(package_folder_name(&meta.from, &meta.to));
    let old = if std::fs::symlink_metadata(&final_dir).is_ok() {
        let aside = unused_hidden_path(&argos, "old");
        std::fs::rename(&final_dir, &aside)
            .map_err(|e| ModelError::io("renaming", &final_dir, e))?;
        Some(aside)
    } else {
        None
    };
    if let Err(e) = std::fs::rename(tmp.path(), &final_dir) {
        if let Some(aside) = &old {
            let _ = std::fs::rename(aside, &final_dir);
        }
        return Err(ModelError::io("renaming", tmp.path(), e));
    }
    tmp.disarm();
    if let Some(aside) = old {
        if std::fs::symlink_metadata(&aside).is_ok_and(|m| m.is_dir()) {
            let _ = std::fs::remove_dir_all(&aside);
        } else {
            let _ = std::fs::remove_file(&aside);
        }
    }
    read_package(&final_dir).map_err(invalid)
}

/// Extracts one file entry to `dest` (a new file), reading it to the end so that its CRC is
/// checked, and refusing more data than the entry declares.
fn extract_entry<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    e: &Planned,
    dest: &Path,
    archive: &Path,
) -> Result<(), ModelError> {
    let corrupt = |msg: String| ModelError::NotArgosZip {
        path: archive.to_path_buf(),
        msg,
    };
    let f = zip
        .by_index(e.index)
        .map_err(|err| corrupt(err.to_string()))?;
    let name = f.name().to_owned();
    let out = File::options()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(|err| ModelError::io("creating", dest, err))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, out);
    let mut r = f.take(e.size + 1);
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(corrupt(format!("entry {name:?}: {err}"))),
        };
        n += k as u64;
        if n > e.size {
            return Err(corrupt(format!(
                "entry {name:?} holds more than the {} bytes it declares",
                e.size
            )));
        }
        w.write_all(&buf[..k])
            .map_err(|err| ModelError::io("writing", dest, err))?;
    }
    if n != e.size {
        return Err(corrupt(format!(
            "entry {name:?} holds {n} bytes, not the {} it declares",
            e.size
        )));
    }
    w.flush()
        .map_err(|err| ModelError::io("writing", dest, err))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn entry(from: &str, to: &str, version: &str) -> IndexEntry {
        IndexEntry {
            code: format!("translate-{from}_{to}"),
            package_type: None,
            package_version: version.into(),
            argos_version: None,
            from_code: from.into(),
            from_name: String::new(),
            to_code: to.into(),
            to_name: String::new(),
            links: vec![format!(
                "https://example.invalid/{from}_{to}-{version}.argosmodel"
            )],
            dependencies: None,
            size: None,
            sha256: None,
        }
    }

    #[test]
    fn versions_compare_numerically() {
        use Ordering::*;
        assert_eq!(compare_versions("1.10", "1.9"), Greater);
        assert_eq!(compare_versions("1.9", "1.10"), Less);
        assert_eq!(compare_versions("1.9", "1.9.0"), Equal);
        assert_eq!(compare_versions("2", "1.99"), Greater);
        assert_eq!(compare_versions("1.0.1", "1.0"), Greater);
        assert_eq!(compare_versions(" 1.2 ", "1.2"), Equal);
        assert_eq!(compare_versions("1.2a", "1.2"), Greater);
        assert_eq!(compare_versions("1.2a", "1.2b"), Less);
        assert_eq!(
            compare_versions("1.99999999999999999999999999999999999999999", "2"),
            Less
        );
    }

    #[test]
    fn parse_real_shaped_index() {
        let json = r#"[
          {"package_version": "1.9", "argos_version": "1.9.0", "from_code": "en",
           "from_name": "English", "to_code": "ru", "to_name": "Russian",
           "links": ["https://argos-net.com/v1/translate-en_ru-1_9.argosmodel",
                     "ipfs://QmXyz"], "code": "translate-en_ru",
           "languages": [], "some_future_field": {"x": 1}},
          {"package_version": 1.1, "argos_version": 1, "from_code": "ru", "to_code": "en",
           "links": [], "type": "translate", "dependencies": [],
           "size": 123, "sha256": "ab"},
          {"type": "sbd", "package_version": "1.0", "from_code": "en", "to_code": "en"},
          {"from_code": "xx"},
          "not an object"
        ]"#;
        let e = parse_index(json).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].code, "translate-en_ru");
        assert_eq!(e[0].from_name, "English");
        assert_eq!(e[0].argos_version.as_deref(), Some("1.9.0"));
        assert_eq!(
            e[0].http_link(),
            Some("https://argos-net.com/v1/translate-en_ru-1_9.argosmodel")
        );
        assert!(e[0].is_translate() && e[0].size.is_none() && e[0].sha256.is_none());
        assert_eq!(e[1].package_version, "1.1");
        assert_eq!(e[1].argos_version.as_deref(), Some("1"));
        assert_eq!((e[1].size, e[1].sha256.as_deref()), (Some(123), Some("ab")));
        assert_eq!(e[1].http_link(), None);
        assert!(!e[2].is_translate());
        assert!(parse_index("[]").unwrap().is_empty());
    }

    #[test]
    fn parse_errors() {
        for bad in ["", "{}", "[1,", "{\"a\": []}", "null"] {
            let e = parse_index(bad).unwrap_err();
            assert!(matches!(e, ModelError::ArgosIndex { .. }), "{bad}: {e}");
        }
        let e = parse_index(r#"[{"from_code": "en"}, 3]"#).unwrap_err();
        assert!(e.to_string().contains("none of its 2 entries"), "{e}");
    }

    #[test]
    fn select_takes_the_highest_translate_version() {
        let mut sbd = entry("en", "ru", "9.0");
        sbd.package_type = Some("sbd".into());
        let entries = vec![
            entry("en", "ru", "1.9"),
            entry("en", "ru", "1.10"),
            entry("en", "de", "2.0"),
            entry("ru", "en", "3.0"),
            sbd,
            entry("en", "ru", "1.2"),
        ];
        assert_eq!(
            select(&entries, "en", "ru").unwrap().package_version,
            "1.10"
        );
        assert_eq!(
            select(&entries, "EN", " ru").unwrap().package_version,
            "1.10"
        );
        assert_eq!(select(&entries, "ru", "en").unwrap().package_version, "3.0");
        assert!(select(&entries, "de", "en").is_none());
        assert!(select(&[], "en", "ru").is_none());
        // Ties keep the first.
        let mut a = entry("en", "ru", "1.0");
        a.code = "first".into();
        let mut b = entry("en", "ru", "1.0.0");
        b.code = "second".into();
        assert_eq!(select(&[a, b], "en", "ru").unwrap().code, "first");
    }

    #[test]
    fn language_codes() {
        for (i, o) in [
            ("en", "en"),
            (" RU ", "ru"),
            ("zh", "zh"),
            ("pt-BR", "pt-br"),
            ("fil", "fil"),
        ] {
            assert_eq!(normalize_lang_code(i).unwrap(), o);
        }
        for bad in [
            "", "e", "engl", "en_us", "../x", "e1", "en-", "en-x", "a b", "é",
        ] {
            assert!(normalize_lang_code(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            package_dir(Path::new("/m"), "EN", "ru").unwrap(),
            PathBuf::from("/m/argos/translate-en_ru")
        );
        assert!(package_dir(Path::new("/m"), "en", "../x").is_err());
    }

    fn small_package(model_bin_len: usize) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let o = zip::write::SimpleFileOptions::default();
        let files: [(&str, Vec<u8>); 5] = [
            (
                "p/metadata.json",
                br#"{"package_version":"1.0","from_code":"en","to_code":"ru"}"#.to_vec(),
            ),
            ("p/sentencepiece.model", b"spm".to_vec()),
            ("p/model/model.bin", vec![0u8; model_bin_len]),
            ("p/model/config.json", b"{}".to_vec()),
            ("p/model/shared_vocabulary.txt", b"a\nb\n".to_vec()),
        ];
        for (name, data) in files {
            w.start_file(name, o).unwrap();
            w.write_all(&data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn zip_bomb_limits() {
        let bytes = small_package(10_000);
        let mut z = zip::ZipArchive::new(Cursor::new(bytes.clone())).unwrap();
        assert!(plan_archive(&mut z, LIMITS).is_ok());
        let e = plan_archive(
            &mut z,
            Limits {
                max_entries: 4,
                max_total: u64::MAX,
            },
        )
        .unwrap_err();
        assert!(e.contains("5 entries"), "{e}");
        let e = plan_archive(
            &mut z,
            Limits {
                max_entries: 100,
                max_total: 9_999,
            },
        )
        .unwrap_err();
        assert!(e.contains("larger than 9999 bytes"), "{e}");

        // Through the importer: nothing is left behind.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.argosmodel");
        std::fs::write(&file, &bytes).unwrap();
        let models = dir.path().join("models");
        let record = Record {
            source: "x".into(),
            sha256: String::new(),
            size: 0,
            verified: false,
            top_folder: String::new(),
        };
        let e = import_archive_with(
            &models,
            &file,
            record,
            None,
            Limits {
                max_entries: 100,
                max_total: 1000,
            },
        )
        .unwrap_err();
        assert!(matches!(e, ModelError::InvalidArgosPackage { .. }), "{e}");
        assert!(!argos_dir(&models).exists());
    }
}
