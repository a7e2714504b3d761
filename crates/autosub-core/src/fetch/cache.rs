//! The download cache: one folder per (normalised link, limits), published by renaming a finished work folder.
//!
//! ```text
//! CACHE_DIR/
//!   3f2a…c9/                      a finished entry (32 hex digits of SHA-256 over the key)
//!     media.mp4                   the downloaded file (media.mkv, media.webm, ... as yt-dlp produced it)
//!     fetch.json                  link, title, extractor, duration, yt-dlp version, time of download
//!   .3f2a…c9.partial-PID-N/       a download in progress (removed on any failure)
//! ```
//!
//! An entry is used while it is younger than the configured maximum age; older ones are replaced by a new
//! download and removed by [`prune`]. Nothing half-written ever carries an entry's name: the work folder is
//! renamed in one step once the file is complete and checked.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Name of the metadata file in an entry.
pub const META_FILE: &str = "fetch.json";
/// Stem of the media file in an entry.
pub const MEDIA_STEM: &str = "media";

/// What is stored next to the media file.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EntryMeta {
    pub url: String,
    pub title: Option<String>,
    pub extractor: Option<String>,
    pub duration_ms: Option<u64>,
    pub ytdlp_version: String,
    /// Seconds since the Unix epoch when the download finished.
    pub fetched_at: u64,
    /// The key text (link and limits), to rule out hash collisions.
    pub key: String,
}

/// A cache entry found fresh.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub media: PathBuf,
    pub meta: EntryMeta,
}

/// The key text for a link and the limits that shaped the download, and its folder name.
pub fn key(normalized_url: &str, limits: &str) -> (String, String) {
    let text = format!("autosub-fetch v1\n{normalized_url}\n{limits}");
    let digest = Sha256::digest(text.as_bytes());
    let name: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    (text, name)
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The entry's media file: the one `media.EXT` in the folder.
pub fn media_in(dir: &Path) -> Option<PathBuf> {
    let mut found = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let Some(ext) = name.strip_prefix("media.") else {
            continue;
        };
        let partial = [".part", ".ytdl", ".temp", ".json"]
            .iter()
            .any(|s| name.ends_with(s));
        if !ext.is_empty() && !ext.contains('.') && !partial && e.path().is_file() {
            if found.is_some() {
                return None;
            }
            found = Some(e.path());
        }
    }
    found
}

fn is_fresh(meta: &EntryMeta, max_age: Duration) -> bool {
    let now = now_secs();
    // A time in the future (clock change) is not trusted.
    meta.fetched_at <= now + 60
        && now.saturating_sub(meta.fetched_at) < max_age.as_secs().max(1)
        && !max_age.is_zero()
}

/// The entry `name` when it exists, matches `key_text` and is younger than `max_age`.
pub fn lookup(cache_dir: &Path, name: &str, key_text: &str, max_age: Duration) -> Option<Hit> {
    let dir = cache_dir.join(name);
    let meta: EntryMeta = serde_json::from_slice(&std::fs::read(dir.join(META_FILE)).ok()?).ok()?;
    if meta.key != key_text || !is_fresh(&meta, max_age) {
        return None;
    }
    let media = media_in(&dir)?;
    Some(Hit { media, meta })
}

/// A work folder inside the cache folder; removed when dropped unless published.
pub struct WorkDir {
    path: PathBuf,
    keep: bool,
}

static WORK_SEQ: AtomicU64 = AtomicU64::new(0);

impl WorkDir {
    /// Creates `.NAME.partial-PID-N` in `cache_dir` (and `cache_dir` itself when missing).
    pub fn create(cache_dir: &Path, name: &str) -> std::io::Result<WorkDir> {
        std::fs::create_dir_all(cache_dir)?;
        let n = WORK_SEQ.fetch_add(1, Ordering::Relaxed);
        let path = std::path::absolute(cache_dir)?
            .join(format!(".{name}.partial-{}-{n}", std::process::id()));
        std::fs::create_dir(&path)?;
        Ok(WorkDir { path, keep: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `meta`, then renames the folder to `cache_dir/NAME`, replacing an older entry. Returns the entry
    /// folder.
    pub fn publish(
        mut self,
        cache_dir: &Path,
        name: &str,
        meta: &EntryMeta,
    ) -> std::io::Result<PathBuf> {
        let json = serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?;
        std::fs::write(self.path.join(META_FILE), json)?;
        let target = std::path::absolute(cache_dir)?.join(name);
        if target.exists() {
            // Move the old entry aside first (a rename over a non-empty folder fails), then drop it.
            let old = self.path.with_file_name(format!(
                ".{name}.old-{}-{}",
                std::process::id(),
                WORK_SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            if std::fs::rename(&target, &old).is_ok() {
                let _ = std::fs::remove_dir_all(&old);
            }
        }
        std::fs::rename(&self.path, &target)?;
        self.keep = true;
        Ok(target)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Removes entries older than `max_age` and work folders left by processes that no longer run. A zero
/// `max_age` (never reuse) removes no entries: it says nothing about how long others keep theirs. Errors are
/// ignored: pruning is housekeeping.
pub fn prune(cache_dir: &Path, max_age: Duration) {
    let Ok(rd) = std::fs::read_dir(cache_dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if !path.is_dir() {
            continue;
        }
        if let Some(rest) = name.strip_prefix('.') {
            // .NAME.partial-PID-N or .NAME.old-PID-N
            let pid = rest
                .rsplit_once(".partial-")
                .or_else(|| rest.rsplit_once(".old-"))
                .and_then(|(_, tail)| tail.split('-').next()?.parse::<i32>().ok());
            if let Some(pid) = pid {
                if pid != std::process::id() as i32 && !process_alive(pid) {
                    let _ = std::fs::remove_dir_all(&path);
                }
            }
            continue;
        }
        if max_age.is_zero() {
            continue;
        }
        let expired = std::fs::read(path.join(META_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice::<EntryMeta>(&b).ok())
            .is_some_and(|m| !is_fresh(&m, max_age));
        if expired {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

fn process_alive(pid: i32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(key: &str, at: u64) -> EntryMeta {
        EntryMeta {
            url: "http://x/".into(),
            title: None,
            extractor: None,
            duration_ms: None,
            ytdlp_version: "v".into(),
            fetched_at: at,
            key: key.into(),
        }
    }

    #[test]
    fn keys_differ_by_link_and_limits() {
        let a = key("http://x/", "h=720");
        assert_eq!(a.1.len(), 32);
        assert_ne!(a.1, key("http://x/", "h=1080").1);
        assert_ne!(a.1, key("http://y/", "h=720").1);
        assert_eq!(a, key("http://x/", "h=720"));
    }

    #[test]
    fn publish_lookup_expire_and_cleanup() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        let (text, name) = key("http://x/", "l");
        // A failed work folder leaves nothing.
        {
            let w = WorkDir::create(&cache, &name).unwrap();
            std::fs::write(w.path().join("media.mp4.part"), b"half").unwrap();
        }
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
        assert!(lookup(&cache, &name, &text, Duration::from_secs(60)).is_none());

        let w = WorkDir::create(&cache, &name).unwrap();
        std::fs::write(w.path().join("media.mp4"), b"data").unwrap();
        let dir = w.publish(&cache, &name, &meta(&text, now_secs())).unwrap();
        let hit = lookup(&cache, &name, &text, Duration::from_secs(60)).unwrap();
        assert_eq!(hit.media, dir.join("media.mp4"));
        assert!(lookup(&cache, &name, "other key", Duration::from_secs(60)).is_none());
        assert!(lookup(&cache, &name, &text, Duration::ZERO).is_none());

        // Replacing an entry.
        let w = WorkDir::create(&cache, &name).unwrap();
        std::fs::write(w.path().join("media.webm"), b"new").unwrap();
        w.publish(&cache, &name, &meta(&text, now_secs())).unwrap();
        let hit = lookup(&cache, &name, &text, Duration::from_secs(60)).unwrap();
        assert_eq!(hit.media, dir.join("media.webm"));
        let names: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(&name)]);

        // Expired entries and dead work folders are pruned; fresh entries stay.
        std::fs::write(
            dir.join(META_FILE),
            serde_json::to_vec(&meta(&text, now_secs() - 7200)).unwrap(),
        )
        .unwrap();
        std::fs::create_dir(cache.join(".abc.partial-999999999-0")).unwrap();
        prune(&cache, Duration::ZERO);
        assert_eq!(
            std::fs::read_dir(&cache).unwrap().count(),
            1,
            "only the dead work folder goes"
        );
        prune(&cache, Duration::from_secs(3600));
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
    }

    #[test]
    fn media_file_is_the_single_finished_one() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("media.mp4.part"), b"x").unwrap();
        std::fs::write(tmp.path().join("info.json"), b"x").unwrap();
        assert_eq!(media_in(tmp.path()), None);
        std::fs::write(tmp.path().join("media.mkv"), b"x").unwrap();
        assert_eq!(media_in(tmp.path()), Some(tmp.path().join("media.mkv")));
        std::fs::write(tmp.path().join("media.f137.mp4"), b"x").unwrap();
        assert_eq!(media_in(tmp.path()), Some(tmp.path().join("media.mkv")));
    }
}
