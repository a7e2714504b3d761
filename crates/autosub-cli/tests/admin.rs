//! The operators' page `/admin` (docs/ADMIN.md) on a real `autosub serve`: driven in headless Chromium through
//! chromedriver's W3C WebDriver API (login, the queue and a job finishing, a failure and its Retry, user search,
//! grant and ban, payments, a screenshot), then its security over plain HTTP (no session: redirect; no or wrong CSRF
//! token: 403; another Origin: 403; cookie flags; the token never in the log; no token: 404).
//!
//! Needs Chromium and chromedriver: `apt-get install -y chromium chromium-driver` (Debian). The test fails, it
//! does not skip, when they are missing.

mod common;

use autosub_store::{now_ms, Level, NewPayment, PaymentPeriod, PaymentStatus, TaskStatus, Tier};
use common::service::{free_port, Db, Service};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "test-admin-token-5f2c9e1d7a";

/// Starts `autosub serve` with one worker and `env`; its address once it accepts connections.
fn start_serve(s: &mut Service, name: &str, env: &[(&str, &str)]) -> String {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut c = s.cmd(&["serve"]);
    c.env("AUTOSUB_HTTP_ADDR", &addr)
        .env("AUTOSUB_WORKERS", "1")
        .env_remove("AUTOSUB_ADMIN_TOKEN")
        .env_remove("AUTOSUB_PUBLIC_URL")
        .envs(env.iter().copied());
    let log = std::fs::File::create(s._tmp.path().join(format!("{name}.log"))).unwrap();
    s.children
        .push(c.stdout(Stdio::null()).stderr(log).spawn().unwrap());
    let t0 = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(30), "{}", s.log(name));
        std::thread::sleep(Duration::from_millis(50));
    }
    addr
}

// ------------------------------------------------------------------------------------------- WebDriver client

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const INSTALL: &str = "this test drives headless Chromium: install it with `apt-get install -y chromium chromium-driver` \
     (or set AUTOSUB_TEST_CHROMIUM and AUTOSUB_TEST_CHROMEDRIVER)";

fn find_program(env: &str, candidates: &[&str]) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "{env}={} does not exist; {INSTALL}",
            p.display()
        );
        return p;
    }
    for c in candidates {
        let p = Path::new(c);
        if p.is_absolute() {
            if p.is_file() {
                return p.to_owned();
            }
        } else if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                if dir.join(c).is_file() {
                    return dir.join(c);
                }
            }
        }
    }
    panic!("{} not found; {INSTALL}", candidates.join(" / "));
}

/// A headless Chromium session through chromedriver; both end when it is dropped.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let chromium = find_program(
            "AUTOSUB_TEST_CHROMIUM",
            &[
                "/usr/lib/chromium/chromium",
                "chromium",
                "chromium-browser",
                "google-chrome",
            ],
        );
        let chromedriver = find_program("AUTOSUB_TEST_CHROMEDRIVER", &["chromedriver"]);
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}; {INSTALL}", chromedriver.display()));
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let t0 = Instant::now();
        loop {
            let ready = http
                .get(format!("{base}/status"))
                .send()
                .ok()
                .and_then(|r| r.json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1400,2200", "--no-first-run", "--disable-extensions",
                         format!("--user-data-dir={}", profile.path().display())],
            },
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver could not start Chromium: {r}; {INSTALL}"))
            .to_owned();
        Browser {
            driver,
            base,
            session,
            http,
            _profile: profile,
        }
    }

    /// A WebDriver command: its `value`, or `Err` with the error's JSON.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let r = req.send().unwrap();
        let ok = r.status().is_success();
        let v: Value = r.json().unwrap();
        if ok {
            Ok(v["value"].clone())
        } else {
            Err(v)
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    fn url(&self) -> String {
        self.cmd("GET", "/url", None).as_str().unwrap().to_owned()
    }

    fn source(&self) -> String {
        self.cmd("GET", "/source", None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn try_find(&self, css: &str) -> Option<String> {
        self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        )
        .ok()
        .map(|v| {
            v[ELEMENT]
                .as_str()
                .unwrap_or_else(|| panic!("WebDriver: not an element: {v}"))
                .to_owned()
        })
    }

    fn find(&self, css: &str) -> String {
        self.try_find(css)
            .unwrap_or_else(|| panic!("no element {css} on {}:\n{}", self.url(), self.source()))
    }

    fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.cmd("GET", &format!("/element/{e}/text"), None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The text of the element `css` names, if it is on the page now.
    fn try_text(&self, css: &str) -> Option<String> {
        let e = self.try_find(css)?;
        self.call("GET", &format!("/element/{e}/text"), None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/clear"), None);
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/click"), None);
    }

    /// Whether the current URL ends with `suffix` (false while a navigation is under way).
    fn at(&self, suffix: &str) -> bool {
        self.call("GET", "/url", None)
            .ok()
            .and_then(|v| v.as_str().map(|u| u.ends_with(suffix)))
            .unwrap_or(false)
    }

    fn has(&self, css: &str) -> bool {
        self.try_find(css).is_some()
    }

    /// Waits (at most 15 s) until `ok` holds: a click on a submit button may return before its navigation ends.
    fn wait_for(&self, what: &str, ok: impl Fn(&Browser) -> bool) {
        let t0 = Instant::now();
        while !ok(self) {
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "waited 15 s for {what}; on {}:\n{}",
                self.url(),
                self.source()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A PNG of the window.
    fn screenshot(&self) -> Vec<u8> {
        let b64 = self.cmd("GET", "/screenshot", None);
        base64_decode(b64.as_str().unwrap())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.call("DELETE", "", None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let clean: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

// ------------------------------------------------------------------------------------------------------ tests

#[test]
fn the_admin_page_in_a_real_browser() {
    // The browser first: a missing one fails the test at once, with the install command.
    let browser = Browser::start();
    let mut s = Service::new(Db::Sqlite);
    let store = s.store();
    s.run(&["users", "grant", "4242", "pro", "--days", "30"])
        .ok();
    // A username that is markup: shown as text, never as HTML.
    s.rt.block_on(store.upsert_user(777, Some("<b>mallory</b>"), None, now_ms()))
        .unwrap();
    let payer = s.rt.block_on(store.get_user(4242)).unwrap().unwrap();
    s.rt.block_on(store.insert_payment(
        &NewPayment {
            user_id: payer.id,
            amount: 299,
            currency: "RUB".into(),
            tier: Tier::Pro,
            period: PaymentPeriod::Month,
            days: 30,
            status: PaymentStatus::Pending,
            external_id: Some("ext-admin-test".into()),
            payload: None,
            request_key: None,
            redirect_url: None,
            expires_at: None,
        },
        now_ms(),
    ))
    .unwrap();
    let slow = s.sleep_task(&store, r#"{"ms": 1500}"#, None);
    let bad = s.sleep_task(&store, r#"{"fail": "permanent"}"#, None);
    let addr = start_serve(&mut s, "serve", &[("AUTOSUB_ADMIN_TOKEN", TOKEN)]);
    let base = format!("http://{addr}");

    // /admin without a session: the login form.
    browser.goto(&format!("{base}/admin"));
    assert!(browser.url().ends_with("/admin/login"), "{}", browser.url());
    // A wrong token: the form again, with an error.
    browser.type_into("input[name=token]", "not-the-token-0123456789");
    browser.click("#login");
    browser.wait_for("the login error", |b| b.has("#error"));
    assert!(browser.url().ends_with("/admin/login"), "{}", browser.url());
    assert_eq!(browser.text("#error"), "Wrong token.");
    // The right one: the dashboard.
    browser.type_into("input[name=token]", TOKEN);
    browser.click("#login");
    browser.wait_for("the dashboard", |b| b.at("/admin") && b.has("#queue"));
    let first = browser.source();
    assert!(first.contains("id=\"queue\""), "{first}");
    assert!(first.contains("id=\"tasks-chart\""), "{first}");
    assert!(first.contains("id=\"metrics\""), "{first}");

    // Reload until the slow job's row says completed and the failing one's failed.
    let t0 = Instant::now();
    let mut seen = Vec::new();
    loop {
        browser.goto(&format!("{base}/admin"));
        let st = browser.text(&format!("#recent #task-{slow} td.status"));
        if seen.last() != Some(&st) {
            seen.push(st.clone());
        }
        let bad_st = browser.text(&format!("#recent #task-{bad} td.status"));
        if st == "completed" && bad_st == "failed" {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "task {slow} {st}, task {bad} {bad_st}\n{}",
            s.log("serve")
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!("task {slow} seen on the dashboard as: {seen:?}");
    // The failure with its error and the operator's detail.
    let dash = browser.source();
    let failures = dash
        .split("Recent failures")
        .nth(1)
        .unwrap()
        .split("Recent jobs")
        .next()
        .unwrap();
    assert!(
        failures.contains(&format!("id=\"task-{bad}\"")),
        "{failures}"
    );
    assert!(
        failures.contains("the test job failed as asked"),
        "{failures}"
    );
    assert!(
        failures.contains("sleep job asked to fail (attempt 1)"),
        "{failures}"
    );

    // The screenshot of the dashboard.
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let artifact = Path::new(env!("CARGO_TARGET_TMPDIR")).join("admin-dashboard.png");
    std::fs::write(&artifact, &png).unwrap();
    // A copy to look at by hand; best effort (the artifact above is the one kept).
    let _ = std::fs::write("/tmp/admin-dashboard.png", &png);
    eprintln!(
        "dashboard screenshot: {} (copy: /tmp/admin-dashboard.png), {} bytes",
        artifact.display(),
        png.len()
    );

    // The failed jobs' list; Retry queues the job again (it fails again, later).
    browser.goto(&format!("{base}/admin/jobs?status=failed"));
    let before = s.task(&store, bad);
    assert_eq!(before.status, TaskStatus::Failed);
    browser.click(&format!("#retry-{bad}"));
    let after = s.wait_task(&store, bad, Duration::from_secs(15), |t| {
        t.status != TaskStatus::Failed || t.finished_at > before.finished_at
    });
    eprintln!("task {bad} after Retry: {:?}", after.status);
    let logs = s.rt.block_on(store.recent_logs(Level::Info, 50)).unwrap();
    assert!(
        logs.iter()
            .any(|l| l.task_id == Some(bad) && l.message.contains("retried by an operator")),
        "{logs:?}"
    );

    // User search by Telegram id.
    browser.goto(&format!("{base}/admin/users"));
    browser.type_into("#q", "4242");
    browser.click("#search");
    // The unfiltered page lists both users: wait for the search's own page.
    browser.wait_for("the search for 4242", |b| {
        b.at("/admin/users?q=4242") && b.has("#user-4242") && !b.has("#user-777")
    });
    assert_eq!(browser.text("#user-4242 td:nth-child(1)"), "4242");
    assert!(browser
        .text("#user-4242 td:nth-child(3)")
        .starts_with("pro"));
    assert!(browser.try_find("#user-777").is_none());
    // By name; the markup in it is text.
    browser.type_into("#q", "mallory");
    browser.click("#search");
    browser.wait_for("the search for mallory", |b| {
        b.at("/admin/users?q=mallory") && b.has("#user-777")
    });
    assert_eq!(browser.text("#user-777 td:nth-child(2)"), "<b>mallory</b>");
    assert!(
        browser.try_find("#user-777 b").is_none(),
        "markup was rendered"
    );
    assert!(browser.source().contains("&lt;b&gt;mallory&lt;/b&gt;"));
    // Grant (PRO, 30 days: the form's defaults) and ban.
    browser.click("#grant-777");
    let user = |what: &str, ok: &dyn Fn(&autosub_store::User) -> bool| {
        let t0 = Instant::now();
        loop {
            let u = s.rt.block_on(store.get_user(777)).unwrap().unwrap();
            if ok(&u) {
                return u;
            }
            assert!(t0.elapsed() < Duration::from_secs(15), "{what}: {u:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let u = user("granted PRO", &|u| u.tier == Tier::Pro);
    assert!(u.tier_expires_at.unwrap() > now_ms() + 29 * 86_400_000);
    // Back on the search's page: Ban.
    // The page after the Grant has the same address as before it: wait for the new tier on it.
    browser.wait_for("the users page after the grant", |b| {
        b.at("/admin/users?q=mallory")
            && b.try_text("#user-777 td:nth-child(3)")
                .is_some_and(|t| t.starts_with("pro"))
            && b.has("#ban-777")
    });
    browser.click("#ban-777");
    user("banned", &|u| u.banned);
    browser.wait_for("the Unban button", |b| b.has("#unban-777"));

    // Payments.
    browser.goto(&format!("{base}/admin/payments"));
    let p = browser.text("#payments");
    assert!(p.contains("299 RUB") && p.contains("ext-admin-test"), "{p}");

    // Log out: the page asks for the token again.
    browser.click("#logout");
    browser.wait_for("the login page", |b| {
        b.at("/admin/login") && b.has("#token")
    });
    browser.goto(&format!("{base}/admin"));
    assert!(browser.url().ends_with("/admin/login"), "{}", browser.url());

    let log = s.log("serve");
    assert!(!log.contains(TOKEN), "the token reached the log");
    assert!(
        !log.contains("not-the-token"),
        "a submitted token reached the log"
    );
    assert!(log.contains("login refused"), "{log}");
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn location(r: &reqwest::blocking::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Logs in: the `Set-Cookie` header and the `name=value` to send back.
fn login(c: &reqwest::blocking::Client, base: &str, token: &str) -> (String, String) {
    let r = c
        .post(format!("{base}/admin/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(location(&r), "/admin");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let pair = set.split(';').next().unwrap().to_owned();
    (set, pair)
}

fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .expect("a csrf field")
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn the_admin_page_refuses_what_it_must_over_http() {
    let mut s = Service::new(Db::Sqlite);
    let store = s.store();
    let addr = start_serve(&mut s, "serve", &[("AUTOSUB_ADMIN_TOKEN", TOKEN)]);
    let base = format!("http://{addr}");
    let c = client();

    // No session: a redirect to the login page, for every page.
    for page in [
        "/admin",
        "/admin/jobs?status=failed",
        "/admin/users?q=1",
        "/admin/payments",
    ] {
        let r = c.get(format!("{base}{page}")).send().unwrap();
        assert_eq!(r.status().as_u16(), 303, "{page}");
        assert_eq!(location(&r), "/admin/login", "{page}");
    }
    let r = c.get(format!("{base}/admin/login")).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().unwrap().contains("name=\"token\""));
    // A wrong token: 401 and the form.
    let r = c
        .post(format!("{base}/admin/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=wrong-token-000000000000")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.text().unwrap().contains("Wrong token."));
    // The right one: the cookie's flags.
    let (set, cookie) = login(&c, &base, TOKEN);
    assert!(set.starts_with("autosub_admin="), "{set}");
    for flag in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/admin",
        "Max-Age=43200",
    ] {
        assert!(set.contains(flag), "{flag} missing: {set}");
    }
    assert!(!set.contains("Secure"), "plain http: no Secure flag: {set}");
    let r = c
        .get(format!("{base}/admin"))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let csrf = csrf_of(&r.text().unwrap());
    // A tampered session is no session.
    let (name, value) = cookie.split_once('=').unwrap();
    let (exp, mac) = value.split_once('.').unwrap();
    let later = format!("{name}={}.{mac}", exp.parse::<i64>().unwrap() + 1);
    let r = c
        .get(format!("{base}/admin"))
        .header("cookie", later)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);

    // A job to cancel (long enough to still be there).
    let id = s.sleep_task(&store, r#"{"ms": 60000}"#, None);
    let post = |body: String, origin: Option<&str>| {
        let mut r = c
            .post(format!("{base}/admin/jobs/{id}/cancel"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send().unwrap()
    };
    // No CSRF token, an empty body, a wrong token: 403, nothing done.
    assert_eq!(post(String::new(), None).status().as_u16(), 403);
    assert_eq!(post("back=/admin".into(), None).status().as_u16(), 403);
    let wrong = format!("csrf={}", "0".repeat(64));
    assert_eq!(post(wrong, None).status().as_u16(), 403);
    // The right token from another origin: 403.
    let r = post(format!("csrf={csrf}"), Some("http://evil.example"));
    assert_eq!(r.status().as_u16(), 403);
    assert!(!s.task(&store, id).cancel_requested);
    assert_ne!(s.task(&store, id).status, TaskStatus::Cancelled);
    // Running, with its progress on the dashboard once its worker has reported some.
    s.wait_task(&store, id, Duration::from_secs(30), |t| {
        t.status == TaskStatus::Processing && t.progress_percent.is_some()
    });
    let dash = c
        .get(format!("{base}/admin"))
        .header("cookie", &cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let running = dash
        .split("<h2>Running (")
        .nth(1)
        .and_then(|r| r.split("<h2>").next())
        .unwrap_or_default();
    assert!(
        running.starts_with("1)") && running.contains(&format!("id=\"task-{id}\"")),
        "{running}"
    );
    assert!(running.contains("<progress max=\"100\""), "{running}");
    // Without a session cookie: to the login page.
    let r = c
        .post(format!("{base}/admin/jobs/{id}/cancel"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(location(&r), "/admin/login");
    // The right token from this origin: done, and back to the page it came from.
    let r = post(
        format!("csrf={csrf}&back=%2Fadmin%2Fjobs%3Fstatus%3Dqueued"),
        Some(&base),
    );
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(location(&r), "/admin/jobs?status=queued");
    s.wait_task(&store, id, Duration::from_secs(15), |t| {
        t.status == TaskStatus::Cancelled
    });
    // An off-site `back` is not followed.
    let r = c
        .post(format!("{base}/admin/users/4242/grant"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={csrf}&tier=pro&days=30&back=https%3A%2F%2Fevil.example%2F"
        ))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(location(&r), "/admin/users?q=4242");
    // A login from another origin: 403.
    let r = c
        .post(format!("{base}/admin/login"))
        .header("origin", "http://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // Logout needs the token too, then clears the cookie.
    let r = c
        .post(format!("{base}/admin/logout"))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = c
        .post(format!("{base}/admin/logout"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));

    let log = s.log("serve");
    assert!(!log.contains(TOKEN), "the token reached the log:\n{log}");
    assert!(
        !log.contains("wrong-token-0000"),
        "a submitted token reached the log"
    );
}

#[test]
fn the_admin_page_is_off_without_a_token_and_its_cookie_secure_over_https() {
    let mut s = Service::new(Db::Sqlite);
    let c = client();
    // No AUTOSUB_ADMIN_TOKEN: every /admin path is 404.
    let addr = start_serve(&mut s, "off", &[]);
    for path in ["/admin", "/admin/login", "/admin/jobs"] {
        let r = c.get(format!("http://{addr}{path}")).send().unwrap();
        assert_eq!(r.status().as_u16(), 404, "{path}");
    }
    let r = c
        .post(format!("http://{addr}/admin/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(
        c.get(format!("http://{addr}/healthz"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert!(s.log("off").contains("AUTOSUB_ADMIN_TOKEN is not set"));

    // A token too short: refused at start, named, not printed.
    // Spawned with a deadline: if the check ever broke, serve would run instead of exiting.
    let mut child = s
        .cmd(&["serve"])
        .env("AUTOSUB_HTTP_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("AUTOSUB_ADMIN_TOKEN", "Sh0rtT0ken")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("serve with a short AUTOSUB_ADMIN_TOKEN did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = child.wait_with_output().unwrap();
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("AUTOSUB_ADMIN_TOKEN"), "{err}");
    assert!(err.contains("at least 16"), "{err}");
    assert!(!err.contains("Sh0rtT0ken"), "{err}");

    // Behind https (AUTOSUB_PUBLIC_URL): the cookie is Secure, and the public origin may POST.
    let addr = start_serve(
        &mut s,
        "https",
        &[
            ("AUTOSUB_ADMIN_TOKEN", TOKEN),
            ("AUTOSUB_PUBLIC_URL", "https://autosub.example"),
        ],
    );
    let r = c
        .post(format!("http://{addr}/admin/login"))
        .header("origin", "https://autosub.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        set.contains("; Secure") && set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let log = s.log("https");
    assert!(!log.contains(TOKEN), "the token reached the log:\n{log}");
}
