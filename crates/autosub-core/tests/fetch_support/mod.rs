//! A tiny HTTP/1.1 server on 127.0.0.1 for the fetch tests: one thread per connection, one request per
//! connection, every request recorded. Nothing here talks to any address but the loopback one it listens on.

#![allow(dead_code)]

use autosub_core::progress::{Event, Sink};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub type Handler = dyn Fn(&Req, &mut TcpStream, &Ctx) -> std::io::Result<()> + Send + Sync;

/// Shared with handlers: the stop flag, so that slow handlers end with the test.
pub struct Ctx {
    pub stop: AtomicBool,
}

impl Ctx {
    /// Sleeps up to `d`, returning early (false) when the server stops.
    pub fn sleep(&self, d: Duration) -> bool {
        let end = std::time::Instant::now() + d;
        while std::time::Instant::now() < end {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

pub struct Server {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Req>>>,
    ctx: Arc<Ctx>,
}

impl Server {
    pub fn start(
        handler: impl Fn(&Req, &mut TcpStream, &Ctx) -> std::io::Result<()> + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let ctx = Arc::new(Ctx {
            stop: AtomicBool::new(false),
        });
        let handler: Arc<Handler> = Arc::new(handler);
        let (reqs, c) = (Arc::clone(&requests), Arc::clone(&ctx));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if c.stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let (reqs, c, h) = (Arc::clone(&reqs), Arc::clone(&c), Arc::clone(&handler));
                std::thread::spawn(move || {
                    conn.set_read_timeout(Some(Duration::from_secs(20))).ok();
                    let Some(req) = read_request(&conn) else {
                        return;
                    };
                    reqs.lock().unwrap().push(req.clone());
                    let _ = h(&req, &mut conn, &c);
                    let _ = conn.flush();
                });
            }
        });
        Server {
            addr,
            requests,
            ctx,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Req> {
        self.requests.lock().unwrap().clone()
    }

    /// Requests for `path` so far.
    pub fn hits(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path == path).count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.ctx.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn read_request(conn: &TcpStream) -> Option<Req> {
    let mut r = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    Some(Req {
        method,
        path,
        headers,
    })
}

/// The start offset of a `Range: bytes=N-` request.
pub fn range_start(req: &Req) -> Option<u64> {
    req.header("range")?
        .strip_prefix("bytes=")?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// Answers with `body` (honouring `Range: bytes=N-`), sending only the first `cut` bytes of the body when given,
/// then closing: a connection dropped mid-file.
pub fn send_file(
    req: &Req,
    s: &mut TcpStream,
    ctype: &str,
    body: &[u8],
    cut: Option<usize>,
) -> std::io::Result<()> {
    let start = range_start(req).unwrap_or(0).min(body.len() as u64) as usize;
    let part = &body[start..];
    let head = if start > 0 {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
            part.len(),
            body.len() - 1,
            body.len()
        )
    } else {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
            part.len()
        )
    };
    s.write_all(head.as_bytes())?;
    if req.method == "HEAD" {
        return Ok(());
    }
    match cut {
        Some(n) => {
            s.write_all(&part[..n.min(part.len())])?;
            s.flush()?;
            s.shutdown(std::net::Shutdown::Both)
        }
        None => s.write_all(part),
    }
}

pub fn send(s: &mut TcpStream, status: &str, ctype: &str, body: &[u8]) -> std::io::Result<()> {
    write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)
}

/// A sink that keeps every event as text.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<String>>,
}

impl Sink for Recorder {
    fn event(&self, e: Event<'_>) {
        let text = match e {
            Event::Start { stage, total } => format!("start {} {total:?}", stage.id()),
            Event::Progress { stage, done } => format!("progress {} {done}", stage.id()),
            Event::Finish { stage, .. } => format!("finish {}", stage.id()),
            Event::Warning(w) => format!("warning {w}"),
            Event::Debug(d) => format!("debug {d}"),
            Event::Note(n) => format!("note {n}"),
        };
        self.events.lock().unwrap().push(text);
    }
}

impl Recorder {
    pub fn all(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
    /// Commands started (the `run:` debug lines of `proc::Cmd`).
    pub fn runs(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter_map(|e| e.strip_prefix("debug run: ").map(str::to_owned))
            .collect()
    }
    /// Addresses the fetch proxy connected to.
    pub fn connections(&self) -> Vec<SocketAddr> {
        self.all()
            .iter()
            .filter_map(|e| e.strip_prefix("debug fetch: proxy connected to "))
            .map(|a| a.parse().unwrap())
            .collect()
    }
}
