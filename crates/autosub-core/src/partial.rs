//! Names for files being written: hidden, beside their final name, and unique per write, so that several jobs in
//! one process (a worker runs many) never write to the same temporary file, even for the same output name.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// `DIR/.NAME.partial-PID-N` for `DIR/NAME`: hidden, in the same folder (so the final rename stays on one file
/// system), and different on every call. `default_name` stands in when `path` has no file name.
pub fn partial_path(path: &Path, default_name: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| default_name.to_owned());
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.partial-{}-{n}", std::process::id()))
}

/// Copies `src` to `dest` through a [`partial_path`] and renames it into place, so that `dest` is either absent or
/// complete; the partial file is removed when the copy fails.
pub fn copy_into_place(src: &Path, dest: &Path) -> std::io::Result<()> {
    let tmp = partial_path(dest, "file");
    let done = std::fs::copy(src, &tmp).and_then(|_| std::fs::rename(&tmp, dest));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_names_are_hidden_beside_the_file_and_never_repeat() {
        let a = partial_path(Path::new("/out/talk.srt"), "x");
        let b = partial_path(Path::new("/out/talk.srt"), "x");
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(Path::new("/out")));
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        let prefix = format!(".talk.srt.partial-{}-", std::process::id());
        assert!(name.starts_with(&prefix), "{name}");
        // Threads writing at once get different names too.
        let names: Vec<PathBuf> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| partial_path(Path::new("v.mp4"), "x")))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
    }
}
