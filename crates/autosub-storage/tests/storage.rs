//! The same behaviour checks on both backends: a local folder, and S3 against moto's S3 server
//! (`pip install "moto[server]"`), started here on a free port and killed at the end.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use autosub_storage::moto::Moto;
use autosub_storage::{S3Options, Storage, StorageError, STORAGE_URL_VAR};
use futures::TryStreamExt;

const SECRET: &str = "moto-SECRET-sentinel-3f9c1a";
const KEY_ID: &str = "AKIDTESTMOTO";

/// Deterministic pseudo-random bytes (xorshift), so a corrupted part would show.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::File::create(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn assert_no_secret(label: &str, text: &str) {
    assert!(!text.contains(SECRET), "{label} leaks the secret: {text}");
}

async fn read_all(storage: &Storage, key: &str) -> (u64, Vec<u8>) {
    let (size, stream) = storage.open(key).await.unwrap();
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
    (size, chunks.concat())
}

/// `list("")`, keeping the `task_*` keys (an empty-prefix S3 storage also sees other prefixes).
async fn task_keys(storage: &Storage) -> Vec<(String, u64)> {
    let mut keys = storage.list("").await.unwrap();
    keys.retain(|(k, _)| k.starts_with("task_"));
    keys
}

fn is_invalid_key(r: Result<impl std::fmt::Debug, StorageError>) -> bool {
    matches!(r, Err(StorageError::InvalidKey { .. }))
}

/// The behaviour every backend must have. `big` adds the ~20 MB (multipart on S3) round trip.
async fn run_checks(storage: &Storage, big: bool) {
    let label = storage.describe();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // Starts empty.
    assert_eq!(
        storage.task_ids().await.unwrap(),
        Vec::<i64>::new(),
        "{label}"
    );
    assert_eq!(task_keys(storage).await, vec![], "{label}");

    // Small round trip.
    let small = b"1\n00:00:01,000 --> 00:00:02,000\nHello, world\n".to_vec();
    let small_src = dir.join("src/small.srt");
    write(&small_src, &small);
    let small_key = Storage::task_key(101, "input/small.srt");
    assert_eq!(small_key, "task_101/input/small.srt");
    assert_eq!(
        storage.put_file(&small_key, &small_src).await.unwrap(),
        small.len() as u64
    );
    let back = dir.join("back/deeper/small.srt");
    assert_eq!(
        storage.get_to_file(&small_key, &back).await.unwrap(),
        small.len() as u64
    );
    assert_eq!(std::fs::read(&back).unwrap(), small, "{label}");
    assert_eq!(
        storage.size(&small_key).await.unwrap(),
        Some(small.len() as u64)
    );
    assert_eq!(
        read_all(storage, &small_key).await,
        (small.len() as u64, small.clone())
    );
    // No temporary file left next to the destination.
    let names: Vec<_> = std::fs::read_dir(back.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["small.srt".to_string()], "{label}");

    // Overwrite replaces.
    let small2 = b"replaced".to_vec();
    write(&small_src, &small2);
    storage.put_file(&small_key, &small_src).await.unwrap();
    storage.get_to_file(&small_key, &back).await.unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), small2, "{label}");
    write(&small_src, &small);
    storage.put_file(&small_key, &small_src).await.unwrap();

    // Big round trip (S3: multipart, several parts and a short last one).
    let big_len = 20 * 1024 * 1024 + 12_345;
    let big_key = Storage::task_key(101, "out/video.autosub.mp4");
    if big {
        let data = pseudo_random(big_len, 0x5eed);
        let big_src = dir.join("src/big.mp4");
        write(&big_src, &data);
        assert_eq!(
            storage.put_file(&big_key, &big_src).await.unwrap(),
            big_len as u64
        );
        let big_back = dir.join("back/big.mp4");
        assert_eq!(
            storage.get_to_file(&big_key, &big_back).await.unwrap(),
            big_len as u64
        );
        assert!(
            std::fs::read(&big_back).unwrap() == data,
            "{label}: big file differs"
        );
        assert_eq!(storage.size(&big_key).await.unwrap(), Some(big_len as u64));
        let (size, streamed) = read_all(storage, &big_key).await;
        assert_eq!(size, big_len as u64);
        assert!(streamed == data, "{label}: big stream differs");
    }

    // More tasks, for list / task_ids / delete_task.
    let a = dir.join("src/a.srt");
    let b = dir.join("src/b.vtt");
    write(&a, b"aaaa");
    write(&b, b"WEBVTT\n\nbb");
    storage.put_file("task_202/out/a.srt", &a).await.unwrap();
    storage.put_file("task_202/out/b.vtt", &b).await.unwrap();
    storage.put_file("task_2020/out/a.srt", &a).await.unwrap();
    storage
        .put_file(&Storage::task_key(303, "input/clip name (1).mp4"), &a)
        .await
        .unwrap();

    let expect_202 = vec![
        ("task_202/out/a.srt".to_string(), 4),
        ("task_202/out/b.vtt".to_string(), 10),
    ];
    assert_eq!(
        storage.list("task_202").await.unwrap(),
        expect_202,
        "{label}"
    );
    assert_eq!(
        storage.list("task_202/").await.unwrap(),
        expect_202,
        "{label}"
    );
    assert_eq!(
        storage.list("task_202/out").await.unwrap(),
        expect_202,
        "{label}"
    );
    assert_eq!(storage.list("task_999").await.unwrap(), vec![], "{label}");
    let mut all = vec![(small_key.clone(), small.len() as u64)];
    if big {
        all.push((big_key.clone(), big_len as u64));
    }
    all.extend(expect_202.clone());
    all.push(("task_2020/out/a.srt".to_string(), 4));
    all.push(("task_303/input/clip name (1).mp4".to_string(), 4));
    all.sort();
    assert_eq!(task_keys(storage).await, all, "{label}");
    assert_eq!(
        storage.task_ids().await.unwrap(),
        vec![101, 202, 303, 2020],
        "{label}"
    );

    // delete_task removes one task only.
    storage.delete_task(202).await.unwrap();
    assert_eq!(storage.list("task_202").await.unwrap(), vec![], "{label}");
    assert_eq!(storage.size("task_202/out/a.srt").await.unwrap(), None);
    assert_eq!(
        storage.task_ids().await.unwrap(),
        vec![101, 303, 2020],
        "{label}"
    );
    assert_eq!(
        storage.size("task_2020/out/a.srt").await.unwrap(),
        Some(4),
        "{label}"
    );
    assert_eq!(
        storage.size(&small_key).await.unwrap(),
        Some(small.len() as u64)
    );
    storage.delete_task(202).await.unwrap(); // again: nothing there, not an error
    storage.delete_task(999).await.unwrap();

    // Missing keys.
    let missing = "task_101/out/missing.srt";
    let dest = dir.join("back/missing.srt");
    match storage.get_to_file(missing, &dest).await {
        Err(StorageError::NotFound(k)) => assert_eq!(k, missing),
        other => panic!("{label}: expected NotFound, got {other:?}"),
    }
    assert!(!dest.exists());
    assert!(
        matches!(storage.open(missing).await, Err(StorageError::NotFound(_))),
        "{label}"
    );
    assert_eq!(storage.size(missing).await.unwrap(), None);
    assert_eq!(
        storage.size("task_101").await.unwrap(),
        None,
        "{label}: a folder is no object"
    );

    // Keys that would escape the root.
    for bad in [
        "task_101/../../escape.txt",
        "../escape.txt",
        "/etc/passwd",
        "task_1//x",
        "a\\..\\b",
    ] {
        assert!(
            is_invalid_key(storage.put_file(bad, &a).await),
            "{label}: {bad}"
        );
        assert!(
            is_invalid_key(storage.get_to_file(bad, &dest).await),
            "{label}: {bad}"
        );
        assert!(is_invalid_key(storage.size(bad).await), "{label}: {bad}");
        assert!(
            is_invalid_key(storage.open(bad).await.map(|(n, _)| n)),
            "{label}: {bad}"
        );
        assert!(is_invalid_key(
            storage.signed_url(bad, Duration::from_secs(60)).await
        ));
    }
    assert!(is_invalid_key(storage.list("../").await), "{label}");
    assert!(!dir.parent().unwrap().join("escape.txt").exists());

    // Signed URL: plain GET without credentials gives the bytes; local has none.
    let url = storage
        .signed_url(&small_key, Duration::from_secs(600))
        .await
        .unwrap();
    if storage.is_local() {
        assert_eq!(url, None);
    } else {
        let url = url.expect("S3 gives a signed URL");
        assert_no_secret("signed URL", &url);
        assert!(url.contains("X-Amz-Signature="), "{url}");
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let response = client.get(&url).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        assert_eq!(response.bytes().await.unwrap().as_ref(), small.as_slice());
    }

    // Leave the ids the caller can check for isolation, drop the rest.
    storage.delete_task(101).await.unwrap();
    assert_eq!(
        storage.task_ids().await.unwrap(),
        vec![303, 2020],
        "{label}"
    );
}

#[tokio::test]
async fn local_backend() {
    let data = tempfile::tempdir().unwrap();
    let storage = Storage::from_url(None, data.path()).unwrap();
    let root = data.path().join("storage");
    assert!(storage.is_local());
    assert_eq!(storage.local_root(), Some(root.as_path()));
    assert_eq!(storage.describe(), format!("local {}", root.display()));
    assert!(Storage::from_url(Some(""), data.path()).unwrap().is_local());

    run_checks(&storage, true).await;

    // The documented layout on disk, and no temporary files left behind.
    assert_eq!(
        std::fs::read(root.join("task_2020/out/a.srt")).unwrap(),
        b"aaaa"
    );
    let mut names = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            names.push(e.file_name().into_string().unwrap());
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    assert!(
        names.iter().all(|n| !n.starts_with(".autosub-tmp")),
        "{names:?}"
    );
}

#[test]
fn config_errors_name_the_variable() {
    let dir = Path::new("/nonexistent");
    for url in ["s3://", "s3:///x", "ftp://x", "s3://b/../x", "bucket"] {
        match Storage::from_url(Some(url), dir) {
            Err(e @ StorageError::Config { var, .. }) => {
                assert_eq!(var, STORAGE_URL_VAR, "{url}");
                assert!(e.to_string().contains("AUTOSUB_STORAGE_URL"), "{url}: {e}");
            }
            other => panic!("{url}: expected a Config error, got {other:?}"),
        }
    }
}

#[test]
fn secrets_never_shown() {
    let opts = S3Options {
        endpoint: Some("http://127.0.0.1:1".into()),
        region: Some("eu-west-1".into()),
        access_key_id: Some(KEY_ID.into()),
        secret_access_key: Some(SECRET.into()),
        session_token: None,
    };
    assert_no_secret("S3Options Debug", &format!("{opts:?}"));
    let storage = Storage::s3("bucket", "pre/fix", opts.clone()).unwrap();
    assert_eq!(
        storage.describe(),
        "s3://bucket/pre/fix (endpoint http://127.0.0.1:1, region eu-west-1)"
    );
    assert_no_secret("describe", &storage.describe());
    assert_no_secret("Debug", &format!("{storage:?}"));
    assert_no_secret("Debug alt", &format!("{storage:#?}"));

    // Config errors with the secret present.
    let bad = [
        S3Options {
            access_key_id: None,
            ..opts.clone()
        },
        S3Options {
            endpoint: Some(format!("ftp://{SECRET}")),
            ..opts.clone()
        },
        S3Options {
            endpoint: Some(format!("http://{KEY_ID}:{SECRET}@")),
            ..opts.clone()
        },
    ];
    for o in bad {
        let e = Storage::s3("bucket", "", o).unwrap_err();
        assert!(matches!(e, StorageError::Config { .. }), "{e:?}");
        assert_no_secret("config error", &e.to_string());
        assert_no_secret("config error Debug", &format!("{e:?}"));
    }
}

/// moto's S3 server as a child process; killed on drop.
fn start_moto(log_dir: &Path) -> Moto {
    autosub_storage::moto::start(log_dir).unwrap_or_else(|e| panic!("{e}"))
}

async fn create_bucket(port: u16, bucket: &str) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client
        .put(format!("http://127.0.0.1:{port}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "create bucket: {}",
        response.status()
    );
}

fn moto_options(port: u16) -> S3Options {
    S3Options {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: Some("us-east-1".into()),
        access_key_id: Some(KEY_ID.into()),
        secret_access_key: Some(SECRET.into()),
        session_token: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_backend_on_moto() {
    let logs = tempfile::tempdir().unwrap();
    let moto = start_moto(logs.path());
    let port = moto.port;
    create_bucket(port, "autosub-test").await;

    // Under a prefix: the full checks, big file included.
    let prefixed = Storage::s3("autosub-test", "/svc/tasks/", moto_options(port)).unwrap();
    assert!(!prefixed.is_local() && prefixed.local_root().is_none());
    assert_eq!(
        prefixed.describe(),
        format!("s3://autosub-test/svc/tasks (endpoint http://127.0.0.1:{port}, region us-east-1)")
    );
    run_checks(&prefixed, true).await;

    // The whole bucket (empty prefix): same checks without the big file; it must not see the prefixed
    // tasks as its own (run_checks starts by asserting no task ids), nor touch them.
    let whole = Storage::s3("autosub-test", "", moto_options(port)).unwrap();
    assert_eq!(
        whole.describe(),
        format!("s3://autosub-test (endpoint http://127.0.0.1:{port}, region us-east-1)")
    );
    run_checks(&whole, false).await;
    assert_eq!(prefixed.task_ids().await.unwrap(), vec![303, 2020]);
    assert_eq!(prefixed.size("task_2020/out/a.srt").await.unwrap(), Some(4));
    let everything: Vec<String> = whole
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(
        everything.contains(&"svc/tasks/task_2020/out/a.srt".to_string()),
        "{everything:?}"
    );

    // Errors from the server side carry no secret.
    let missing_bucket = Storage::s3("no-such-bucket", "", moto_options(port)).unwrap();
    let src = logs.path().join("x.txt");
    write(&src, b"x");
    let e = missing_bucket
        .put_file("task_1/x.txt", &src)
        .await
        .unwrap_err();
    assert_no_secret("put error", &e.to_string());
    assert_no_secret("put error Debug", &format!("{e:?}"));
    let e = missing_bucket
        .get_to_file("task_1/x.txt", &logs.path().join("y"))
        .await
        .unwrap_err();
    assert_no_secret("get error", &e.to_string());

    // The big file really went as a multipart upload (werkzeug logs each request line), in 3 parts.
    let log = std::fs::read_to_string(&moto.log).unwrap_or_default();
    let parts = log
        .lines()
        .filter(|l| l.contains("video.autosub.mp4?partNumber="))
        .count();
    assert_eq!(
        parts, 3,
        "expected 3 multipart part uploads in moto's log:\n{log}"
    );
    drop(moto);
}
