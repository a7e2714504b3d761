//! Test support: moto's S3 server (PyPI `moto[server]`) started on a free port for the tests of this crate and of the
//! service, and a bucket made in it. Not used by the service itself.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto S3 server; killed when dropped (its log's tail printed if the thread is panicking).
pub struct Moto {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// Its log file.
    pub log: PathBuf,
}

impl Drop for Moto {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- moto log (last lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `moto_server` (or `python3 -m moto.server`) on a free port, its log in `log_dir`; an error saying how to
/// install it when neither starts.
pub fn start(log_dir: &Path) -> Result<Moto, String> {
    const HINT: &str = "moto's S3 server is needed for the S3 tests; install it with: pip install \"moto[server]\"";
    let candidates: [(&str, &[&str]); 2] =
        [("moto_server", &[]), ("python3", &["-m", "moto.server"])];
    let mut failures = Vec::new();
    for (program, pre) in candidates {
        let port = free_port();
        let log = log_dir.join(format!("moto-{program}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let spawned = Command::new(program)
            .args(pre)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{program}: {e}"));
                continue;
            }
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let out = std::fs::read_to_string(&log).unwrap_or_default();
                failures.push(format!("{program} exited ({status}): {}", out.trim()));
                break;
            }
            if TcpStream::connect_timeout(
                &([127, 0, 0, 1], port).into(),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                return Ok(Moto { child, port, log });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                failures.push(format!("{program}: port {port} not open after 60 s"));
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Err(format!("{HINT}\n{}", failures.join("\n")))
}

impl Moto {
    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Makes bucket `name` (moto takes an unsigned `PUT /NAME`).
    pub fn create_bucket(&self, name: &str) -> Result<(), String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        write!(
            s,
            "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
        match answer.split_whitespace().nth(1) {
            Some("200") => Ok(()),
            _ => Err(format!(
                "create bucket {name}: {}",
                answer.lines().next().unwrap_or("")
            )),
        }
    }
}
