//! A service of `autosub` processes on one database (a SQLite file or a fresh PostgreSQL database) and one data
//! dir, for the cross-process tests. The processes are killed and the PostgreSQL database dropped at the end.

use autosub_store::{NewTask, Store, Tier};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One database and data dir shared by the processes of a test; the processes are killed and a PostgreSQL database
/// dropped at the end.
pub struct Service {
    pub _tmp: tempfile::TempDir,
    pub data_dir: PathBuf,
    pub url: String,
    pub pg_name: Option<String>,
    pub children: Vec<Child>,
    pub rt: tokio::runtime::Runtime,
    /// More variables for every process.
    pub env: Vec<(String, String)>,
}

pub fn psql(sql: &str) {
    let base = std::env::var("AUTOSUB_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let out = Command::new("psql")
        .args([base.as_str(), "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()
        .expect("psql (PostgreSQL's client) must be installed");
    assert!(
        out.status.success(),
        "psql {sql}: {} (is PostgreSQL running on 127.0.0.1:5432?)",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

impl Service {
    pub fn new(db: Db) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let (url, pg_name) = match db {
            Db::Sqlite => (
                format!("sqlite:{}", tmp.path().join("autosub.db").display()),
                None,
            ),
            Db::Postgres => {
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let name = format!(
                    "autosub_cli_{}_{}",
                    std::process::id(),
                    N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                );
                psql(&format!("DROP DATABASE IF EXISTS {name}"));
                psql(&format!("CREATE DATABASE {name}"));
                (
                    format!("postgres://postgres@127.0.0.1:5432/{name}"),
                    Some(name),
                )
            }
        };
        Service {
            _tmp: tmp,
            data_dir,
            url,
            pg_name,
            children: Vec::new(),
            env: Vec::new(),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(super::bin());
        c.args(args)
            .env("AUTOSUB_DATABASE_URL", &self.url)
            .env("AUTOSUB_DATA_DIR", &self.data_dir)
            .env("AUTOSUB_MODELS_DIR", super::models_dir())
            .env("AUTOSUB_MODEL", super::TEST_MODEL)
            .env("AUTOSUB_LEASE_SECS", "3")
            .env("AUTOSUB_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c
    }

    /// Starts `autosub ARGS` in the background (its log in `name.log` in the data dir's parent).
    pub fn spawn(&mut self, name: &str, args: &[&str]) -> usize {
        let log = std::fs::File::create(self._tmp.path().join(format!("{name}.log"))).unwrap();
        let child = self
            .cmd(args)
            .env("AUTOSUB_WORKER_ID", name)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children.push(child);
        self.children.len() - 1
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self._tmp.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    pub fn run(&self, args: &[&str]) -> super::Run {
        self.cmd(args).output().unwrap().into()
    }

    pub fn store(&self) -> Store {
        self.rt.block_on(Store::connect(&self.url)).unwrap()
    }

    pub fn sleep_task(&self, store: &Store, spec: &str, timeout_ms: Option<i64>) -> i64 {
        let t = NewTask {
            kind: "sleep".into(),
            spec: spec.into(),
            spec_version: 1,
            input_type: "test".into(),
            tier: Tier::Free,
            timeout_ms,
            ..Default::default()
        };
        self.rt
            .block_on(store.enqueue(&t, autosub_store::now_ms()))
            .unwrap()
    }

    pub fn task(&self, store: &Store, id: i64) -> autosub_store::TaskRow {
        self.rt.block_on(store.get_task(id)).unwrap().unwrap()
    }

    /// Waits until `ok` holds for the task, at most `within`.
    pub fn wait_task(
        &self,
        store: &Store,
        id: i64,
        within: Duration,
        ok: impl Fn(&autosub_store::TaskRow) -> bool,
    ) -> autosub_store::TaskRow {
        let t0 = Instant::now();
        loop {
            let t = self.task(store, id);
            if ok(&t) {
                return t;
            }
            assert!(
                t0.elapsed() < within,
                "task {id} still {:?} after {within:?}: {t:?}",
                t.status
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, i: usize, sig: &str) {
        let pid = self.children[i].id().to_string();
        assert!(Command::new("kill")
            .args([sig, pid.as_str()])
            .status()
            .unwrap()
            .success());
    }

    /// Waits for child `i` to exit, at most `within`; its exit code.
    pub fn wait_exit(&mut self, i: usize, within: Duration) -> Option<i32> {
        let t0 = Instant::now();
        loop {
            if let Some(s) = self.children[i].try_wait().unwrap() {
                return s.code();
            }
            assert!(t0.elapsed() < within, "process {i} did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(name) = &self.pg_name {
            psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// The files in a folder (recursively), relative names.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(
                    files_in(&p)
                        .into_iter()
                        .map(|f| format!("{}/{f}", e.file_name().to_string_lossy())),
                );
            } else {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// A free TCP port on 127.0.0.1 (for AUTOSUB_HTTP_ADDR).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
