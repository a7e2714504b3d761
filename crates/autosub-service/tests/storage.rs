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

/// The same rules on the shared store (S3 on moto): the objects of a task that ended 25 h ago and of a task that no
/// longer exists go; a recent task's and a waiting task's stay. Inputs and outputs move between two machines' folders
/// through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_store_carries_task_files_and_its_janitor_keeps_the_24_hours() {
    let tmp = tempfile::tempdir().unwrap();
    let moto = autosub_storage::moto::start(tmp.path()).unwrap_or_else(|e| panic!("{e}"));
    moto.create_bucket("janitor").unwrap();
    let shared = storage::Storage::s3(
        "janitor",
        "p",
        autosub_storage::S3Options {
            endpoint: Some(moto.endpoint()),
            region: Some("us-east-1".into()),
            access_key_id: Some("AKID".into()),
            secret_access_key: Some("secret".into()),
            session_token: None,
        },
    )
    .unwrap();
    let store = Store::open_default(&tmp.path().join("db")).await.unwrap();
    let now = autosub_store::now_ms();
    let task = NewTask {
        kind: "sleep".into(),
        spec: "{}".into(),
        spec_version: 1,
        input_type: "test".into(),
        tier: Tier::Free,
        ..Default::default()
    };
    let mut ids = Vec::new();
    for ended in [now - 25 * H, now - H] {
        let id = store.enqueue(&task, ended - 1000).await.unwrap();
        store
            .claim("w", &["sleep"], 60_000, ended - 500)
            .await
            .unwrap()
            .unwrap();
        assert!(store.complete(id, "w", "{}", ended).await.unwrap());
        ids.push(id);
    }
    let waiting = store.enqueue(&task, now).await.unwrap();
    let orphan = 999_999;
    // Machine A stages inputs; machine B fetches them and puts outputs back; A reads an output it never made.
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for id in [ids[0], ids[1], waiting, orphan] {
        let d = storage::task_dir(&a, id).join("input");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("clip.mp4"), format!("input of {id}")).unwrap();
        assert_eq!(storage::put_inputs(&shared, &a, id).await.unwrap(), 1);
        assert_eq!(storage::fetch_inputs(&shared, &b, id).await.unwrap(), 1);
        assert_eq!(
            std::fs::read_to_string(storage::task_dir(&b, id).join("input/clip.mp4")).unwrap(),
            format!("input of {id}")
        );
        // Already there: nothing fetched again.
        assert_eq!(storage::fetch_inputs(&shared, &b, id).await.unwrap(), 0);
        let out = storage::task_dir(&b, id).join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("clip.srt"), format!("subtitles of {id}")).unwrap();
        std::fs::write(out.join(".clip.mp4.partial-1-1"), "half").unwrap();
        assert_eq!(storage::put_outputs(&shared, &b, id).await.unwrap(), 1);
        let recorded = out.join("clip.srt");
        let here = storage::local_output(&a, Some(&shared), id, &recorded)
            .await
            .unwrap();
        assert_eq!(here, storage::task_dir(&a, id).join("out/clip.srt"));
        assert_eq!(
            std::fs::read_to_string(&here).unwrap(),
            format!("subtitles of {id}")
        );
    }
    let swept = storage::sweep_shared(&store, &shared, 24 * H, now)
        .await
        .unwrap();
    let mut removed = swept.removed.clone();
    removed.sort();
    assert_eq!(removed, vec![ids[0], orphan]);
    let mut left = shared.task_ids().await.unwrap();
    left.sort();
    let mut want = vec![ids[1], waiting];
    want.sort();
    assert_eq!(left, want);
    assert_eq!(
        shared
            .list(&format!("task_{}", ids[1]))
            .await
            .unwrap()
            .len(),
        2,
        "input and output of the recent task stay"
    );
}
