//! Per-task storage: `$AUTOSUB_DATA_DIR/storage/task_{id}/` holds a task's input (`input/`) and outputs
//! (`out/`) until 24 h after the task ends, when the janitor of any worker deletes it (and folders of tasks that no
//! longer exist). Several machines share it when the data dir is shared storage.
//!
//! With `AUTOSUB_STORAGE_URL=s3://bucket/prefix` the shared copy is in an S3-compatible store
//! ([`autosub_storage::Storage`], keys `task_{id}/input/NAME`, `task_{id}/out/NAME`) and each machine's task folder is
//! a working copy: a front end puts a task's input there before queueing it ([`put_inputs`]), the worker fetches it
//! ([`fetch_inputs`]) and puts the outputs back before completing ([`put_outputs`]), and whoever delivers a result
//! reads it from there when it is not on its own disk ([`local_output`]). The janitor applies the same 24 h to the
//! store ([`sweep_shared`]).

pub use autosub_storage::{Storage, StorageError};
use autosub_store::Store;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The folder of all task folders.
pub fn storage_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("storage")
}

/// The folder of task `id`.
pub fn task_dir(data_dir: &Path, id: i64) -> PathBuf {
    storage_dir(data_dir).join(format!("task_{id}"))
}

/// The id of a task folder's name (`task_42` -> 42).
fn task_id_of(name: &str) -> Option<i64> {
    name.strip_prefix("task_")?.parse().ok()
}

/// Copies `file` into task `id`'s `input/` folder (complete or not at all) and returns its path.
pub fn store_input(data_dir: &Path, id: i64, file: &Path) -> std::io::Result<PathBuf> {
    let dir = task_dir(data_dir, id).join("input");
    std::fs::create_dir_all(&dir)?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .unwrap_or_else(|| "input".into());
    let dest = dir.join(&name);
    autosub_core::partial::copy_into_place(file, &dest)?;
    Ok(dest)
}

/// Where uploads to the HTTP API are written while they arrive, before their task exists (same file system as the
/// task folders, so that [`adopt_input`] is a rename). The janitor removes what is left there after an hour.
pub fn uploads_dir(data_dir: &Path) -> PathBuf {
    storage_dir(data_dir).join(".uploads")
}

/// Moves `file` (an upload in [`uploads_dir`]) into task `id`'s `input/` folder as `name`.
pub fn adopt_input(data_dir: &Path, id: i64, file: &Path, name: &str) -> std::io::Result<()> {
    let dir = task_dir(data_dir, id).join("input");
    std::fs::create_dir_all(&dir)?;
    std::fs::rename(file, dir.join(name))
}

/// Uploads older than this are left over from a request that stopped (a crash): the janitor removes them.
const UPLOAD_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

fn sweep_uploads(data_dir: &Path) {
    let Ok(rd) = std::fs::read_dir(uploads_dir(data_dir)) else {
        return;
    };
    for e in rd.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > UPLOAD_MAX_AGE);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// What one janitor pass removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub removed: Vec<i64>,
}

/// Deletes the folders of tasks that ended before `now - retention_ms`, and of tasks that no longer exist. The
/// database is asked only about the folders found; the file system work runs on a blocking thread.
pub async fn sweep(
    store: &Store,
    data_dir: &Path,
    retention_ms: i64,
    now: i64,
) -> autosub_store::Result<Swept> {
    let root = storage_dir(data_dir);
    let data = data_dir.to_owned();
    let ids: Vec<i64> = tokio::task::spawn_blocking(move || {
        sweep_uploads(&data);
        std::fs::read_dir(root)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| task_id_of(&e.file_name().to_string_lossy()))
                    .collect()
            })
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default();
    if ids.is_empty() {
        return Ok(Swept::default());
    }
    let existing: HashSet<i64> = store.task_ids_existing(&ids).await?.into_iter().collect();
    let expired: HashSet<i64> = store
        .finished_before_among(&ids, now - retention_ms)
        .await?
        .into_iter()
        .collect();
    let doomed: Vec<i64> = ids
        .into_iter()
        .filter(|id| !existing.contains(id) || expired.contains(id))
        .collect();
    let data_dir = data_dir.to_owned();
    let removed = tokio::task::spawn_blocking(move || {
        let mut removed = Vec::new();
        for id in doomed {
            let dir = task_dir(&data_dir, id);
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => removed.push(id),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(task = id, "cannot remove {}: {e}", dir.display()),
            }
        }
        removed
    })
    .await
    .unwrap_or_default();
    Ok(Swept { removed })
}

/// The janitor of a process without workers (`autosub api`, `autosub bot`), whose data dir is its own when task files
/// travel through the shared store: [`sweep`] every 10 minutes, forever (abort the task to stop it).
pub async fn janitor_loop(store: Store, data_dir: PathBuf, retention_ms: i64) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        every.tick().await;
        match sweep(&store, &data_dir, retention_ms, autosub_store::now_ms()).await {
            Ok(s) if !s.removed.is_empty() => {
                tracing::info!(count = s.removed.len(), "removed old task folders")
            }
            Ok(_) => {}
            Err(e) => tracing::error!("storage janitor failed: {e}"),
        }
    }
}

/// The files under `dir`, as paths relative to it (`a/b.srt`), recursively; none when it does not exist.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if let Ok(rel) = p.strip_prefix(base) {
                let rel = rel.to_string_lossy().into_owned();
                // Files being written (hidden partial names) are not results.
                if !rel.split('/').any(|c| c.starts_with('.')) {
                    out.push(rel);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Puts every file of task `id`'s local `sub` folder (`input` or `out`) into the shared store.
async fn put_folder(
    shared: &Storage,
    data_dir: &Path,
    id: i64,
    sub: &str,
) -> Result<usize, StorageError> {
    let dir = task_dir(data_dir, id).join(sub);
    let files = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || files_under(&dir))
            .await
            .unwrap_or_default()
    };
    for rel in &files {
        shared
            .put_file(
                &Storage::task_key(id, &format!("{sub}/{rel}")),
                &dir.join(rel),
            )
            .await?;
    }
    Ok(files.len())
}

/// A front end's last step before queueing task `id`: its `input/` files into the shared store.
pub async fn put_inputs(shared: &Storage, data_dir: &Path, id: i64) -> Result<usize, StorageError> {
    put_folder(shared, data_dir, id, "input").await
}

/// A worker's first step: task `id`'s input files from the shared store into its local folder (those it lacks).
pub async fn fetch_inputs(
    shared: &Storage,
    data_dir: &Path,
    id: i64,
) -> Result<usize, StorageError> {
    let dir = task_dir(data_dir, id);
    let mut n = 0;
    for (key, size) in shared.list(&format!("task_{id}/input")).await? {
        let Some(rel) = key.strip_prefix(&format!("task_{id}/")) else {
            continue;
        };
        let local = dir.join(rel);
        let have = tokio::fs::metadata(&local).await.map(|m| m.len()).ok();
        if have != Some(size) {
            shared.get_to_file(&key, &local).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// A worker's last step before completing task `id`: its `out/` files into the shared store.
pub async fn put_outputs(
    shared: &Storage,
    data_dir: &Path,
    id: i64,
) -> Result<usize, StorageError> {
    put_folder(shared, data_dir, id, "out").await
}

/// The path on this machine of an output of task `id` that its worker recorded as `recorded`: the file in this
/// machine's task folder when it is there, else fetched there from the shared store, else `recorded` itself (one
/// shared disk).
pub async fn local_output(
    data_dir: &Path,
    shared: Option<&Storage>,
    id: i64,
    recorded: &Path,
) -> Result<PathBuf, StorageError> {
    let Some(name) = recorded.file_name() else {
        return Ok(recorded.to_owned());
    };
    let local = task_dir(data_dir, id).join("out").join(name);
    if tokio::fs::metadata(&local).await.is_ok() {
        return Ok(local);
    }
    match shared {
        Some(s) => {
            s.get_to_file(
                &Storage::task_key(id, &format!("out/{}", name.to_string_lossy())),
                &local,
            )
            .await?;
            Ok(local)
        }
        None => Ok(recorded.to_owned()),
    }
}

/// The janitor's pass over the shared store: deletes what tasks that ended before `now - retention_ms`, or no
/// longer exist, left there.
pub async fn sweep_shared(
    store: &Store,
    shared: &Storage,
    retention_ms: i64,
    now: i64,
) -> Result<Swept, String> {
    let ids = shared.task_ids().await.map_err(|e| e.to_string())?;
    if ids.is_empty() {
        return Ok(Swept::default());
    }
    let existing: HashSet<i64> = store
        .task_ids_existing(&ids)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect();
    let expired: HashSet<i64> = store
        .finished_before_among(&ids, now - retention_ms)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect();
    let mut removed = Vec::new();
    for id in ids {
        if !existing.contains(&id) || expired.contains(&id) {
            match shared.delete_task(id).await {
                Ok(()) => removed.push(id),
                Err(e) => tracing::warn!(task = id, "cannot remove it from the shared store: {e}"),
            }
        }
    }
    Ok(Swept { removed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_folders_are_named_by_id() {
        assert_eq!(
            task_dir(Path::new("/d"), 7),
            PathBuf::from("/d/storage/task_7")
        );
        assert_eq!(task_id_of("task_42"), Some(42));
        assert_eq!(task_id_of("task_x"), None);
        assert_eq!(task_id_of("other"), None);
    }
}
