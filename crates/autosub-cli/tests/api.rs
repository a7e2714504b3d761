//! The HTTP API end to end across real processes: `autosub serve` on SQLite with a real upload transcribed by its
//! worker, and `autosub api` + `autosub worker` on PostgreSQL with the API process killed by SIGKILL and restarted.
//! Keys are made by `autosub apikey create` (the bot's `/apikey` is in tests/bot.rs).

mod common;

use common::service::{free_port, Db, Service};
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// An answer: status, headers (lower-case names), body.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The error code of an error answer.
    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

struct Client {
    http: reqwest::blocking::Client,
    base: String,
}

impl Client {
    fn new(addr: &str) -> Client {
        Client {
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
            base: format!("http://{addr}"),
        }
    }

    fn send(&self, req: reqwest::blocking::RequestBuilder, key: Option<&str>) -> Answer {
        let req = match key {
            Some(k) => req.bearer_auth(k),
            None => req,
        };
        let r = req.send().unwrap();
        Answer {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.bytes().unwrap().to_vec(),
        }
    }

    fn get(&self, path: &str, key: Option<&str>) -> Answer {
        self.send(self.http.get(format!("{}{path}", self.base)), key)
    }

    fn delete(&self, path: &str, key: &str) -> Answer {
        self.send(self.http.delete(format!("{}{path}", self.base)), Some(key))
    }

    /// `POST /v1/jobs` as multipart/form-data: `file` (name, bytes) and text fields, written by hand.
    fn upload(
        &self,
        key: &str,
        file: Option<(&str, &[u8])>,
        fields: &[(&str, &str)],
        idempotency: Option<&str>,
    ) -> Answer {
        let boundary = "autosub-test-boundary-7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        if let Some((name, bytes)) = file {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let mut req = self
            .http
            .post(format!("{}/v1/jobs", self.base))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        if let Some(k) = idempotency {
            req = req.header("idempotency-key", k);
        }
        self.send(req, Some(key))
    }

    fn post_json(&self, key: &str, body: &Value) -> Answer {
        self.send(
            self.http.post(format!("{}/v1/jobs", self.base)).json(body),
            Some(key),
        )
    }

    /// Polls the job until it has finished.
    fn wait_job(&self, key: &str, id: i64, within: Duration) -> Value {
        let t0 = Instant::now();
        loop {
            let a = self.get(&format!("/v1/jobs/{id}"), Some(key));
            assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
            let v = a.json();
            if ["completed", "failed", "cancelled"].contains(&v["status"].as_str().unwrap()) {
                return v;
            }
            assert!(t0.elapsed() < within, "job {id} still {v}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// `autosub apikey create ID` -> the key.
fn make_key(s: &Service, telegram_id: i64) -> String {
    let r = s.run(&["apikey", "create", &telegram_id.to_string()]).ok();
    let key = r.stdout.trim().to_owned();
    assert!(key.starts_with("ask_") && key.len() == 68, "{key}");
    key
}

fn grant(s: &Service, telegram_id: i64, tier: &str) {
    s.run(&[
        "users",
        "grant",
        &telegram_id.to_string(),
        tier,
        "--days",
        "30",
    ])
    .ok();
}

fn start(s: &mut Service, name: &str, args: &[&str], addr: &str, extra: &[(&str, &str)]) -> usize {
    let mut c = s.cmd(args);
    c.env("AUTOSUB_HTTP_ADDR", addr)
        .env("AUTOSUB_WORKER_ID", name)
        .envs(extra.iter().copied());
    let log = std::fs::File::create(s._tmp.path().join(format!("{name}.log"))).unwrap();
    s.children
        .push(c.stdout(Stdio::null()).stderr(log).spawn().unwrap());
    let t0 = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(30), "{}", s.log(name));
        std::thread::sleep(Duration::from_millis(50));
    }
    s.children.len() - 1
}

/// The subtitles `autosub process` makes of the sample: what the API's job must give.
fn direct_srt() -> String {
    let tmp = tempfile::tempdir().unwrap();
    common::process(
        &common::sample(),
        tmp.path(),
        &["--no-video", "--format", "srt"],
    )
    .ok();
    std::fs::read_to_string(tmp.path().join("sample.srt")).unwrap()
}

fn tasks(s: &Service) -> usize {
    let r = s.run(&["jobs", "list", "--json"]).ok();
    serde_json::from_str::<Vec<Value>>(&r.stdout).unwrap().len()
}

#[test]
fn api_through_serve_on_sqlite_with_a_real_upload() {
    let mut s = Service::new(Db::Sqlite);
    let addr = format!("127.0.0.1:{}", free_port());
    start(
        &mut s,
        "serve",
        &["serve"],
        &addr,
        &[("AUTOSUB_WORKERS", "1"), ("AUTOSUB_API_RATE_LIMIT", "1000")],
    );
    let c = Client::new(&addr);
    let sample = std::fs::read(common::sample()).unwrap();

    // Keys: only for CREATOR users; shown once, kept as a hash.
    s.run(&["users", "grant", "5002", "pro", "--days", "30"])
        .ok();
    let refused = s.run(&["apikey", "create", "5002"]);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("the API is part of the CREATOR plan; user 5002 is on PRO"),
        "{}",
        refused.stderr
    );
    grant(&s, 5001, "creator");
    let key = make_key(&s, 5001);
    let db = std::fs::read(s._tmp.path().join("autosub.db")).unwrap();
    assert!(
        !db.windows(key.len()).any(|w| w == key.as_bytes()),
        "the key itself is in the database"
    );
    let list = s.run(&["apikey", "list", "5001", "--json"]).ok();
    let list: Vec<Value> = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["prefix"], key[..12]);

    // No key, a malformed one, an unknown one.
    assert_eq!(c.get("/v1/jobs/1", None).status, 401);
    assert_eq!(c.get("/v1/jobs/1", Some("nope")).status, 401);
    let unknown = format!("ask_{}", "0".repeat(64));
    let a = c.get("/v1/jobs/1", Some(&unknown));
    assert_eq!((a.status, a.code().as_str()), (401, "unauthorized"));

    // Bad requests change nothing: an unknown option (named), a file that is not media, neither file nor url, both.
    let before = tasks(&s);
    let a = c.upload(
        &key,
        Some(("clip.mp4", &sample)),
        &[("options", r#"{"translte":["en"]}"#)],
        None,
    );
    assert_eq!(a.status, 400);
    assert!(
        a.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("translte"),
        "{}",
        a.json()
    );
    let a = c.upload(
        &key,
        Some(("renamed.mp4", b"this is a text file, not a video\n")),
        &[],
        None,
    );
    assert_eq!((a.status, a.code().as_str()), (422, "not_media"));
    assert_eq!(c.upload(&key, None, &[], None).status, 400);
    assert_eq!(
        c.upload(
            &key,
            Some(("clip.mp4", &sample)),
            &[("url", "https://example.com/v.mp4")],
            None
        )
        .status,
        400
    );
    let a = c.post_json(&key, &json!({"url": "ftp://example.com/v.mp4"}));
    assert_eq!(a.status, 400);
    let a = c.send(
        c.http
            .post(format!("{}/v1/jobs", c.base))
            .header("content-type", "text/plain")
            .body("x"),
        Some(&key),
    );
    assert_eq!(a.status, 415);
    assert_eq!(tasks(&s), before, "a refused request queued a task");
    let uploads = s.data_dir.join("storage/.uploads");
    assert!(
        common::service::files_in(&uploads).is_empty(),
        "refused uploads left files: {:?}",
        common::service::files_in(&uploads)
    );

    // The real job: an upload, transcribed by serve's worker, the same subtitles as `autosub process`.
    let a = c.upload(
        &key,
        Some(("sample.mp4", &sample)),
        &[("options", r#"{"video": false, "formats": ["srt", "json"]}"#)],
        Some("upload-1"),
    );
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    let job = a.json();
    let id = job["id"].as_i64().unwrap();
    assert!(
        ["queued", "processing"].contains(&job["status"].as_str().unwrap()),
        "{job}"
    );
    // The same Idempotency-Key: the same job, not a second one (answered before the body is read: even a body
    // that would be refused gets the job).
    let again = c.upload(
        &key,
        Some(("other.mp4", b"not even a video")),
        &[],
        Some("upload-1"),
    );
    assert_eq!(
        again.status,
        201,
        "{}",
        String::from_utf8_lossy(&again.body)
    );
    assert_eq!(again.json()["id"].as_i64(), Some(id));
    let again = c.upload(
        &key,
        Some(("sample.mp4", &sample)),
        &[("options", r#"{"video": false, "formats": ["srt", "json"]}"#)],
        Some("upload-1"),
    );
    assert_eq!(again.json()["id"].as_i64(), Some(id));
    // Another user's key sees no such job.
    grant(&s, 5003, "creator");
    let other = make_key(&s, 5003);
    assert_eq!(c.get(&format!("/v1/jobs/{id}"), Some(&other)).status, 404);
    assert_eq!(c.delete(&format!("/v1/jobs/{id}"), &other).status, 404);

    let done = c.wait_job(&key, id, Duration::from_secs(300));
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["language"], "en");
    let outputs = done["outputs"].as_array().unwrap();
    let mut names: Vec<&str> = outputs
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["sample.json", "sample.srt"], "{done}");
    let listed = outputs.iter().find(|o| o["name"] == "sample.srt").unwrap();
    assert_eq!(
        (&listed["kind"], &listed["format"], &listed["language"]),
        (&json!("subtitles"), &json!("srt"), &json!("en"))
    );
    let srt = c.get(listed["url"].as_str().unwrap(), Some(&key));
    assert_eq!(srt.status, 200);
    assert_eq!(
        srt.headers["content-type"],
        "application/x-subrip; charset=utf-8"
    );
    assert_eq!(listed["size"].as_u64(), Some(srt.body.len() as u64));
    assert_eq!(String::from_utf8(srt.body).unwrap(), direct_srt());
    // Only listed names are served: no paths, no other task's files.
    for bad in ["..%2F..%2Fautosub.db", "input", "sample.mp4", ".."] {
        let a = c.get(&format!("/v1/jobs/{id}/outputs/{bad}"), Some(&key));
        assert_eq!(a.status, 404, "{bad}");
    }
    assert_eq!(
        c.get(&format!("/v1/jobs/{id}/outputs/sample.srt"), Some(&other))
            .status,
        404
    );
    // The user's daily count went up by one for the job (not for the replay nor the refusals).
    let u = s.run(&["users", "show", "5001", "--json"]).ok();
    let u: Value = serde_json::from_str(&u.stdout).unwrap();
    assert_eq!(u["tasks_today"].as_i64(), Some(1), "{u}");

    // DELETE: a finished job's files go; an unfinished one is cancelled.
    let a = c.delete(&format!("/v1/jobs/{id}"), &key);
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["outputs"], json!([]));
    assert_eq!(
        c.get(&format!("/v1/jobs/{id}/outputs/sample.srt"), Some(&key))
            .status,
        404
    );
    assert!(!s.data_dir.join(format!("storage/task_{id}")).exists());
    // A user no longer on CREATOR is refused with the plan named; a revoked key is refused.
    grant(&s, 5003, "free");
    let a = c.get(&format!("/v1/jobs/{id}"), Some(&other));
    assert_eq!((a.status, a.code().as_str()), (403, "not_in_plan"));
    s.run(&["apikey", "revoke", "5001", &key[..12]]).ok();
    assert_eq!(c.get(&format!("/v1/jobs/{id}"), Some(&key)).status, 401);
    let log = s.log("serve");
    assert!(!log.contains(&key), "a key is in the log");
    assert!(
        !log.contains(&key[12..]),
        "a key's secret part is in the log"
    );
}

#[test]
fn api_and_worker_on_postgres_with_the_api_killed_and_a_rate_limit_across_processes() {
    let mut s = Service::new(Db::Postgres);
    let a1 = format!("127.0.0.1:{}", free_port());
    let a2 = format!("127.0.0.1:{}", free_port());
    let limit = [("AUTOSUB_API_RATE_LIMIT", "5")];
    let api1 = start(&mut s, "api1", &["api"], &a1, &limit);
    start(&mut s, "api2", &["api"], &a2, &limit);
    grant(&s, 6001, "creator");
    let key = make_key(&s, 6001);
    let (c1, c2) = (Client::new(&a1), Client::new(&a2));
    let sample = std::fs::read(common::sample()).unwrap();
    let a = c1.upload(
        &key,
        Some(("talk.mp4", &sample)),
        &[(
            "options",
            r#"{"video": false, "formats": ["srt"], "name": "jfk"}"#,
        )],
        None,
    );
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    let id = a.json()["id"].as_i64().unwrap();
    // A link job, cancelled while it waits (no worker runs yet): at once, nothing left to run.
    let a = c2.post_json(
        &key,
        &json!({"url": "https://example.com/never.mp4", "options": {"video": false}}),
    );
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.json()["status"], "queued");
    let link_job = a.json()["id"].as_i64().unwrap();
    let a = c1.delete(&format!("/v1/jobs/{link_job}"), &key);
    assert_eq!(a.status, 202, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.json()["status"], "cancelled");
    // The API process dies; the task is in the database and a worker elsewhere runs it.
    s.children[api1].kill().unwrap();
    s.children[api1].wait().unwrap();
    let w = free_port();
    start(
        &mut s,
        "worker",
        &["worker", "--http-addr", &format!("127.0.0.1:{w}")],
        &format!("127.0.0.1:{w}"),
        &[],
    );
    let api1 = start(&mut s, "api1b", &["api"], &a1, &limit);
    let _ = api1;
    // Requests are counted per key and minute in the database, whichever process answers: 12 requests split over
    // two processes inside one minute window, with a limit of 5 a minute, let at most 5 through (a count per
    // process would let 10 through). The requests take milliseconds; they start at least 10 s before the window ends.
    let in_window = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 60_000
    };
    while in_window() > 50_000 {
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut passed = 0;
    let mut limited = None;
    for i in 0..12 {
        let c = if i % 2 == 0 { &c1 } else { &c2 };
        let a = c.get(&format!("/v1/jobs/{id}"), Some(&key));
        match a.status {
            200 => passed += 1,
            429 => limited = Some(a),
            other => panic!("{other}"),
        }
    }
    assert!(passed <= 5, "{passed} of 12 passed a limit of 5 a minute");
    let limited = limited.expect("no request was limited");
    assert_eq!(limited.code(), "rate_limited");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=61).contains(&retry), "{retry}");
    // After the window the key works again: the job completes with the name asked for.
    let t0 = Instant::now();
    let done = loop {
        let a = c2.get(&format!("/v1/jobs/{id}"), Some(&key));
        if a.status == 200 {
            let v = a.json();
            if v["status"] == "completed" || v["status"] == "failed" {
                break v;
            }
        } else {
            assert_eq!(a.status, 429);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "job {id} did not end"
        );
        std::thread::sleep(Duration::from_secs(13));
    };
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["outputs"][0]["name"], "jfk.srt");
    let srt = loop {
        let a = c1.get(&format!("/v1/jobs/{id}/outputs/jfk.srt"), Some(&key));
        if a.status != 429 {
            break a;
        }
        std::thread::sleep(Duration::from_secs(13));
    };
    assert_eq!(srt.status, 200);
    assert_eq!(String::from_utf8(srt.body).unwrap(), direct_srt());
}

/// `/apikey` in the bot (inside `autosub serve`): refused below CREATOR, then a key shown once that the API takes,
/// listed by its prefix, revoked.
#[test]
fn apikey_in_the_bot_makes_a_key_the_api_takes() {
    use autosub_bot::standin::{StandIn, TgUser};
    use common::telegram::{texts, wait_polling, wait_text, SHORT, TOKEN};
    let si = StandIn::spawn(TOKEN);
    let mut s = common::telegram::service(Db::Sqlite, &si);
    let addr = format!("127.0.0.1:{}", free_port());
    let public = format!("http://{addr}");
    let t0 = Instant::now();
    start(
        &mut s,
        "serve",
        &["serve"],
        &addr,
        &[("AUTOSUB_PUBLIC_URL", public.as_str())],
    );
    wait_polling(&si, t0);
    let c = Client::new(&addr);
    let u = TgUser::new(701, "en");
    si.send_text(&u, "/apikey");
    wait_text(
        &si,
        701,
        "The API is part of the CREATOR plan; you are on FREE.",
        SHORT,
    );
    grant(&s, 701, "creator");
    si.send_text(&u, "/apikey");
    let calls = wait_text(&si, 701, "Your API key", SHORT);
    let text = texts(&calls, 701)
        .into_iter()
        .find(|t| t.contains("Your API key"))
        .unwrap();
    assert!(text.contains(&format!("{public}/v1/jobs")), "{text}");
    let key = text
        .split_whitespace()
        .find(|w| w.starts_with("ask_") && w.len() == 68)
        .unwrap()
        .to_owned();
    let a = c.get("/v1/jobs/12345", Some(&key));
    assert_eq!((a.status, a.code().as_str()), (404, "not_found"));
    si.send_text(&TgUser::new(701, "ru"), "/apikey list");
    wait_text(&si, 701, &format!("{}…", &key[..12]), SHORT);
    si.send_text(&u, "/apikey revoke ask_00000000");
    wait_text(&si, 701, "No active key starts with ask_00000000", SHORT);
    si.send_text(&u, &format!("/apikey revoke {}", &key[..12]));
    wait_text(&si, 701, "Revoked: 1.", SHORT);
    assert_eq!(c.get("/v1/jobs/12345", Some(&key)).status, 401);
    let log = s.log("serve");
    assert!(!log.contains(&key[12..]), "the key is in the log:\n{log}");
}

/// Three "machines" (three data dirs) that share only PostgreSQL and an S3 store (moto): the API and the bot put
/// inputs into the store, a worker elsewhere fetches them and puts the outputs back, and the API and the bot deliver
/// results they never had on their own disk; DELETE removes the task's objects.
#[test]
fn machines_share_task_files_through_s3() {
    use autosub_bot::standin::{StandIn, TgUser};
    use autosub_storage::{S3Options, Storage};
    use common::telegram::{wait_polling, wait_text, LONG, SHORT, TOKEN};
    let logs = tempfile::tempdir().unwrap();
    let moto = autosub_storage::moto::start(logs.path()).unwrap_or_else(|e| panic!("{e}"));
    moto.create_bucket("autosub-e2e").unwrap();
    let secret = "moto-e2e-SECRET-6d1f";
    let si = StandIn::spawn(TOKEN);
    let mut s = common::telegram::service(Db::Postgres, &si);
    let endpoint = moto.endpoint();
    for (k, v) in [
        ("AUTOSUB_STORAGE_URL", "s3://autosub-e2e/tasks"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "AKIDE2E"),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("AWS_REGION", "us-east-1"),
    ] {
        s.env.push((k.into(), v.into()));
    }
    let machine = |name: &str| {
        let d = s._tmp.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d.display().to_string()
    };
    let (dir_a, dir_b, dir_c) = (machine("a"), machine("b"), machine("c"));
    let api_addr = format!("127.0.0.1:{}", free_port());
    start(
        &mut s,
        "api",
        &["api"],
        &api_addr,
        &[
            ("AUTOSUB_DATA_DIR", dir_a.as_str()),
            // The test polls its job twice a second.
            ("AUTOSUB_API_RATE_LIMIT", "1000"),
        ],
    );
    let w = format!("127.0.0.1:{}", free_port());
    start(
        &mut s,
        "worker",
        &["worker", "--http-addr", &w],
        &w,
        &[("AUTOSUB_DATA_DIR", dir_b.as_str())],
    );
    let t0 = Instant::now();
    let bot_addr = format!("127.0.0.1:{}", free_port());
    start(
        &mut s,
        "bot",
        &["bot"],
        &bot_addr,
        &[("AUTOSUB_DATA_DIR", dir_c.as_str())],
    );
    wait_polling(&si, t0);
    let shared = Storage::s3(
        "autosub-e2e",
        "tasks",
        S3Options {
            endpoint: Some(endpoint.clone()),
            region: Some("us-east-1".into()),
            access_key_id: Some("AKIDE2E".into()),
            secret_access_key: Some(secret.into()),
            session_token: None,
        },
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let objects = |id: i64| -> Vec<String> {
        rt.block_on(shared.list(&format!("task_{id}")))
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };

    // Through the API (machine A), run by the worker (machine B).
    grant(&s, 8001, "creator");
    let key = make_key(&s, 8001);
    let c = Client::new(&api_addr);
    let a = c.upload(
        &key,
        Some(("sample.mp4", &std::fs::read(common::sample()).unwrap())),
        &[("options", r#"{"video": false, "formats": ["srt"]}"#)],
        None,
    );
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    let id = a.json()["id"].as_i64().unwrap();
    let done = c.wait_job(&key, id, Duration::from_secs(300));
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        objects(id),
        [
            format!("task_{id}/input/sample.mp4"),
            format!("task_{id}/out/sample.srt")
        ]
    );
    let b_out = std::path::Path::new(&dir_b).join(format!("storage/task_{id}/out/sample.srt"));
    assert!(b_out.is_file(), "the worker's own copy");
    let a_out = std::path::Path::new(&dir_a).join(format!("storage/task_{id}/out"));
    assert!(!a_out.exists(), "machine A never had the output on disk");
    assert_eq!(
        done["outputs"][0]["size"].as_u64(),
        Some(std::fs::metadata(&b_out).unwrap().len())
    );
    let srt = c.get(&format!("/v1/jobs/{id}/outputs/sample.srt"), Some(&key));
    assert_eq!(srt.status, 200);
    assert_eq!(String::from_utf8(srt.body).unwrap(), direct_srt());

    // Through the bot (machine C): an audio file, its subtitles delivered from the store.
    let audio = s._tmp.path().join("talk.ogg");
    common::ffmpeg(&[
        "-i",
        common::sample().to_str().unwrap(),
        "-vn",
        "-c:a",
        "libopus",
        audio.to_str().unwrap(),
    ]);
    let u = TgUser::new(8002, "en");
    si.send_audio(
        &u,
        std::fs::read(&audio).unwrap(),
        "talk.ogg",
        11,
        Some("--lang en"),
    );
    wait_text(&si, 8002, "is done", LONG);
    let calls = si.wait_until(SHORT, |c| {
        c.iter()
            .any(|c| c.method == "sendDocument" && c.chat_id == Some(8002) && c.ok())
    });
    let doc = calls
        .iter()
        .find(|c| c.method == "sendDocument" && c.chat_id == Some(8002) && c.ok())
        .unwrap();
    assert_eq!(doc.file_name.as_deref(), Some("talk.srt"));
    let text =
        String::from_utf8(si.file_content(doc.file_id.as_deref().unwrap()).unwrap()).unwrap();
    assert!(
        text.to_lowercase().contains("ask not what your country"),
        "{text}"
    );
    let bot_task =
        s.rt.block_on(s.store().list_tasks(None, 10))
            .unwrap()
            .into_iter()
            .find(|t| t.input_type == "telegram")
            .unwrap();
    assert!(objects(bot_task.id).contains(&format!("task_{}/out/talk.srt", bot_task.id)));

    // DELETE removes the objects too.
    assert_eq!(c.delete(&format!("/v1/jobs/{id}"), &key).status, 200);
    assert_eq!(objects(id), Vec::<String>::new());
    assert_eq!(
        c.get(&format!("/v1/jobs/{id}/outputs/sample.srt"), Some(&key))
            .status,
        404
    );
    for name in ["api", "worker", "bot"] {
        assert!(
            !s.log(name).contains(secret),
            "the S3 secret is in the {name} log"
        );
    }
}
