//! The storage janitor on a real SQLite store: task folders go 24 h after their task ends, and at once when their
//! task no longer exists; folders of waiting or recent tasks stay.

use autosub_service::storage;
use autosub_store::{NewTask, Store, Tier};

const H: i64 = 3_600_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_janitor_removes_old_and_orphaned_task_folders_only() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_default(tmp.path()).await.unwrap();
    let now = autosub_store::now_ms();
    let task = NewTask {
        kind: "sleep".into(),
        spec: "{}".into(),
        spec_version: 1,
        input_type: "test".into(),
        tier: Tier::Free,
        ..Default::default()
    };
    // One task finished 25 h ago, one 1 h ago, one still queued.
    let mut ids = Vec::new();
    for ended in [now - 25 * H, now - H] {
        let id = store.enqueue(&task, ended - 1000).await.unwrap();
        let c = store
            .claim("w", &["sleep"], 60_000, ended - 500)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.id, id);
        assert!(store.complete(id, "w", "{}", ended).await.unwrap());
        ids.push(id);
    }
    let waiting = store.enqueue(&task, now).await.unwrap();
    let orphan = 999_999;
    for id in [ids[0], ids[1], waiting, orphan] {
        let d = storage::task_dir(tmp.path(), id).join("out");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("x.srt"), "1").unwrap();
    }
    let swept = storage::sweep(&store, tmp.path(), 24 * H, now)
        .await
        .unwrap();
    let mut removed = swept.removed.clone();
    removed.sort();
    assert_eq!(removed, vec![ids[0], orphan]);
    assert!(!storage::task_dir(tmp.path(), ids[0]).exists());
    assert!(storage::task_dir(tmp.path(), ids[1])
        .join("out/x.srt")
        .is_file());
    assert!(storage::task_dir(tmp.path(), waiting).is_dir());
    // Copying an input in: a complete file under its name, no partial left.
    let src = tmp.path().join("clip.mp4");
    std::fs::write(&src, b"data").unwrap();
    let stored = storage::store_input(tmp.path(), waiting, &src).unwrap();
    assert_eq!(
        stored,
        storage::task_dir(tmp.path(), waiting).join("input/clip.mp4")
    );
    let names: Vec<_> = std::fs::read_dir(stored.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["clip.mp4"]);
}
