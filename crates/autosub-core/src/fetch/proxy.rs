//! The in-process HTTP proxy that every connection of yt-dlp goes through.
//!
//! yt-dlp follows redirects, reads pages and fetches the links it finds in them by itself; checking the link a
//! user gave is therefore not enough. Each yt-dlp run gets its own proxy on `127.0.0.1:0` (`--proxy`). For every
//! `CONNECT host:port` (https) and every absolute-form request (`GET http://host/...`) the proxy checks the host
//! with [`check_host`] — numeric forms, then every address it resolves to — and connects to one of those vetted
//! addresses itself, so a second DNS answer cannot point elsewhere (DNS rebinding). A refused target gets a `403`
//! and the reason is kept, so the fetch error can say "redirected or linked to 10.1.2.3 (private network address):
//! refused" instead of yt-dlp's "HTTP Error 403".
//!
//! Plain-http requests are forwarded one per connection (`Connection: close` both ways, so a client cannot reuse
//! a connection for another host); a response that announces a size above [`ProxyLimits::max_response`] is refused
//! before its body is read. Response bodies and tunnelled bytes are counted against [`ProxyLimits::max_total`].

use super::netguard::{check_host, split_host_port, Policy, Resolver};
use super::FetchError;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest request or response head accepted.
const MAX_HEAD: usize = 64 * 1024;
const BUF: usize = 64 * 1024;

/// Size limits the proxy enforces for one yt-dlp run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyLimits {
    /// Refuse any plain-http response whose announced size (Content-Length, or the total of a Content-Range) is
    /// larger than this, before reading its body.
    pub max_response: Option<u64>,
    /// Cut every connection once plain-http response bodies and https tunnel bytes (server to client) add up to
    /// more than this.
    pub max_total: Option<u64>,
}

/// How the proxy behaves; see [`Proxy::start`].
#[derive(Clone)]
pub struct ProxyConfig {
    pub policy: Policy,
    pub resolver: Arc<dyn Resolver>,
    pub limits: ProxyLimits,
    /// The host of the link the user gave (as [`check_host`] normalises it): refusals for other hosts are reported
    /// as redirects.
    pub origin_host: Option<String>,
    pub connect_timeout: Duration,
    /// Read/write timeout on every socket, a safety net so that no thread waits forever.
    pub io_timeout: Duration,
}

/// A running proxy. Dropping it closes the listener and every connection.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

struct Shared {
    cfg: ProxyConfig,
    stop: AtomicBool,
    /// Bytes sent from servers to the client (response bodies, tunnel data).
    bytes: AtomicU64,
    requests: AtomicU64,
    /// The first refusal (policy or size), the one the fetch error reports.
    refusals: Mutex<Vec<FetchError>>,
    /// Targets that could not be resolved or connected to, for error messages.
    failures: Mutex<Vec<String>>,
    /// Every address the proxy connected to (for audits and tests).
    connected: Mutex<Vec<SocketAddr>>,
    sockets: Mutex<HashMap<u64, TcpStream>>,
    next_socket: AtomicU64,
}

impl Proxy {
    /// Starts a proxy on `127.0.0.1` with a port chosen by the system.
    pub fn start(cfg: ProxyConfig) -> io::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            cfg,
            stop: AtomicBool::new(false),
            bytes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            refusals: Mutex::new(Vec::new()),
            failures: Mutex::new(Vec::new()),
            connected: Mutex::new(Vec::new()),
            sockets: Mutex::new(HashMap::new()),
            next_socket: AtomicU64::new(0),
        });
        let sh = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("autosub-proxy".into())
            .spawn(move || accept_loop(&sh, listener))?;
        Ok(Proxy {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    /// The value for yt-dlp's `--proxy`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The first target refused by the policy or a size limit, if any.
    pub fn refusal(&self) -> Option<FetchError> {
        lock(&self.shared.refusals).first().cloned()
    }

    /// Targets that could not be resolved or reached ("cannot connect to 93.184.215.14:443: timed out").
    pub fn failures(&self) -> Vec<String> {
        lock(&self.shared.failures).clone()
    }

    /// Addresses the proxy opened connections to.
    pub fn connected(&self) -> Vec<SocketAddr> {
        lock(&self.shared.connected).clone()
    }

    /// Requests (including CONNECTs) received.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Bytes passed from servers to the client so far.
    pub fn bytes(&self) -> u64 {
        self.shared.bytes.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        for s in lock(&self.shared.sockets).values() {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn accept_loop(shared: &Arc<Shared>, listener: TcpListener) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = conn else { continue };
        let sh = Arc::clone(shared);
        let _ = std::thread::Builder::new()
            .name("autosub-proxy-conn".into())
            .spawn(move || {
                let id = sh.track(&client);
                let _ = serve(&sh, client);
                sh.untrack(id);
            });
    }
}

impl Shared {
    fn track(&self, s: &TcpStream) -> Option<u64> {
        let clone = s.try_clone().ok()?;
        let id = self.next_socket.fetch_add(1, Ordering::Relaxed);
        lock(&self.sockets).insert(id, clone);
        if self.stop.load(Ordering::SeqCst) {
            let _ = s.shutdown(Shutdown::Both);
        }
        Some(id)
    }

    fn untrack(&self, id: Option<u64>) {
        if let Some(id) = id {
            lock(&self.sockets).remove(&id);
        }
    }

    fn refuse(&self, e: FetchError) {
        lock(&self.refusals).push(e);
    }

    /// Counts `n` bytes towards the total; false (and a recorded refusal) once over the limit.
    fn count(&self, n: usize) -> bool {
        let total = self.bytes.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        match self.cfg.limits.max_total {
            Some(max) if total > max => {
                let mut r = lock(&self.refusals);
                if !r.iter().any(|e| matches!(e, FetchError::Limit(_))) {
                    r.push(FetchError::Limit(format!(
                        "the download grew past the size limit of {} and was stopped",
                        human_bytes(max)
                    )));
                }
                false
            }
            _ => true,
        }
    }
}

/// "12.3 MB (12345678 bytes)".
pub(crate) fn human_bytes(n: u64) -> String {
    format!("{:.1} MB ({n} bytes)", n as f64 / 1e6)
}

/// Reads up to the end of an HTTP head (`\r\n\r\n`); returns the head (without the blank line) and whatever was
/// read after it.
fn read_head(s: &mut TcpStream) -> io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            buf.truncate(i);
            return Ok((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "HTTP head too long",
            ));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the end of the HTTP head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn respond(client: &mut TcpStream, status: &str, body: &str) {
    let msg = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nX-Autosub-Proxy: refused\r\n\r\n{body}\n",
        body.len() + 1
    );
    let _ = client.write_all(msg.as_bytes());
    let _ = client.flush();
    let _ = client.shutdown(Shutdown::Write);
}

fn serve(shared: &Shared, mut client: TcpStream) -> io::Result<()> {
    let cfg = &shared.cfg;
    client.set_read_timeout(Some(cfg.io_timeout))?;
    client.set_write_timeout(Some(cfg.io_timeout))?;
    let (head, leftover) = read_head(&mut client)?;
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        respond(&mut client, "400 Bad Request", "malformed request line");
        return Ok(());
    };
    let connect = method.eq_ignore_ascii_case("CONNECT");
    // Where to: CONNECT host:port, or GET http://host[:port]/path.
    let (authority, path) = if connect {
        (target, String::new())
    } else {
        let Some(rest) = target
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("http://"))
            .map(|_| &target[7..])
        else {
            respond(
                &mut client,
                "400 Bad Request",
                "only CONNECT and absolute http:// requests are proxied",
            );
            return Ok(());
        };
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (auth, p) = rest.split_at(end);
        let p = match p.strip_prefix('?') {
            Some(q) => format!("/?{q}"),
            None if p.is_empty() => "/".to_owned(),
            None => p.to_owned(),
        };
        (auth, p)
    };
    let default_port = if connect { None } else { Some(80) };
    let checked = split_host_port(authority).and_then(|(host, _, port)| {
        if host.contains('@') {
            return Err(FetchError::InvalidUrl(format!(
                "refusing a user name in {authority:?}"
            )));
        }
        let port = port
            .or(default_port)
            .ok_or_else(|| FetchError::InvalidUrl(format!("no port in CONNECT {authority:?}")))?;
        check_host(host, port, &cfg.policy, cfg.resolver.as_ref())
    });
    let checked = match checked {
        Ok(c) => c,
        Err(e) => {
            let e = match e {
                FetchError::Refused { target, reason, .. } => {
                    let host = target.split(' ').next().unwrap_or("");
                    FetchError::Refused {
                        redirected: cfg.origin_host.as_deref() != Some(host),
                        target,
                        reason,
                    }
                }
                other => other,
            };
            let text = e.to_string();
            match e {
                FetchError::Resolve { .. } => {
                    lock(&shared.failures).push(text.clone());
                    respond(&mut client, "502 Bad Gateway", &text);
                }
                _ => {
                    shared.refuse(e);
                    respond(&mut client, "403 Forbidden", &text);
                }
            }
            return Ok(());
        }
    };
    if shared.stop.load(Ordering::SeqCst) {
        return Ok(());
    }
    let mut upstream = match connect_any(&checked.addrs, cfg.connect_timeout) {
        Ok(u) => u,
        Err(e) => {
            let text = format!("cannot connect to {}:{}: {e}", checked.host, checked.port);
            lock(&shared.failures).push(text.clone());
            respond(&mut client, "502 Bad Gateway", &text);
            return Ok(());
        }
    };
    if let Ok(a) = upstream.peer_addr() {
        lock(&shared.connected).push(a);
    }
    let up_id = shared.track(&upstream);
    upstream.set_read_timeout(Some(cfg.io_timeout))?;
    upstream.set_write_timeout(Some(cfg.io_timeout))?;
    let result = if connect {
        client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
        upstream.write_all(&leftover)?;
        tunnel(shared, &client, &upstream)
    } else {
        let mut req = format!("{method} {path} {version}\r\n");
        let host_header = if checked.port == 80 {
            checked.host.clone()
        } else if checked.host.contains(':') {
            format!("[{}]:{}", checked.host, checked.port)
        } else {
            format!("{}:{}", checked.host, checked.port)
        };
        req.push_str(&format!("Host: {host_header}\r\n"));
        for line in lines {
            let name = line.split(':').next().unwrap_or("").trim();
            if !is_hop_by_hop(name) && !name.eq_ignore_ascii_case("host") {
                req.push_str(line);
                req.push_str("\r\n");
            }
        }
        req.push_str("Connection: close\r\n\r\n");
        upstream.write_all(req.as_bytes())?;
        upstream.write_all(&leftover)?;
        forward_response(shared, &mut client, &mut upstream)
    };
    shared.untrack(up_id);
    let _ = upstream.shutdown(Shutdown::Both);
    result
}

fn is_hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "upgrade",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

fn connect_any(addrs: &[SocketAddr], timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for a in addrs {
        match TcpStream::connect_timeout(a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The size a response announces: the total of a Content-Range, else its Content-Length.
pub(crate) fn announced_size(head: &str) -> Option<u64> {
    let header = |want: &str| {
        head.split("\r\n").skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(want).then(|| v.trim())
        })
    };
    let from_range = header("content-range")
        .and_then(|v| v.rsplit_once('/'))
        .and_then(|(_, total)| total.trim().parse::<u64>().ok());
    from_range.or_else(|| header("content-length").and_then(|v| v.parse().ok()))
}

/// Relays the client's request body (in the background) and the server's response, which is checked against the
/// size limit before its body is read.
fn forward_response(
    shared: &Shared,
    client: &mut TcpStream,
    upstream: &mut TcpStream,
) -> io::Result<()> {
    let (mut c2, mut u2) = (client.try_clone()?, upstream.try_clone()?);
    let body_pump = std::thread::spawn(move || {
        let _ = io::copy(&mut c2, &mut u2);
    });
    let result = (|| {
        let (head, rest) = loop {
            let (head, rest) = read_head(upstream)?;
            // 100 Continue and other interim answers go through as they are.
            let status = head.split(' ').nth(1).unwrap_or("");
            if status.starts_with('1') && status != "101" {
                client.write_all(head.as_bytes())?;
                client.write_all(b"\r\n\r\n")?;
                continue;
            }
            break (head, rest);
        };
        if let (Some(size), Some(max)) = (announced_size(&head), shared.cfg.limits.max_response) {
            if size > max {
                let e = FetchError::Limit(format!(
                    "the server announced {}, above the size limit of {}",
                    human_bytes(size),
                    human_bytes(max)
                ));
                let text = e.to_string();
                shared.refuse(e);
                respond(client, "403 Forbidden", &text);
                return Ok(());
            }
        }
        let mut out = String::with_capacity(head.len() + 32);
        for (i, line) in head.split("\r\n").enumerate() {
            let name = line.split(':').next().unwrap_or("").trim();
            if i == 0 || !is_hop_by_hop(name) {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
        out.push_str("Connection: close\r\n\r\n");
        client.write_all(out.as_bytes())?;
        if !shared.count(rest.len()) {
            return Ok(());
        }
        client.write_all(&rest)?;
        pump(shared, upstream, client)
    })();
    let _ = client.shutdown(Shutdown::Both);
    let _ = upstream.shutdown(Shutdown::Both);
    let _ = body_pump.join();
    result
}

/// Copies `from` to `to`, counting bytes against the total; stops at the end, an error, or the limit.
fn pump(shared: &Shared, from: &mut TcpStream, to: &mut TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            let _ = to.shutdown(Shutdown::Write);
            return Ok(());
        }
        if !shared.count(n) {
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            return Ok(());
        }
        to.write_all(&buf[..n])?;
    }
}

fn tunnel(shared: &Shared, client: &TcpStream, upstream: &TcpStream) -> io::Result<()> {
    let (mut c_read, mut u_write) = (client.try_clone()?, upstream.try_clone()?);
    let up = std::thread::spawn(move || {
        let _ = io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(Shutdown::Write);
    });
    let (mut u_read, mut c_write) = (upstream.try_clone()?, client.try_clone()?);
    let r = pump(shared, &mut u_read, &mut c_write);
    if r.is_err() {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
    }
    let _ = up.join();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::netguard::StaticResolver;
    use std::io::BufRead;

    fn cfg(limits: ProxyLimits) -> ProxyConfig {
        ProxyConfig {
            policy: Policy::allowing(&["127.0.0.1"]).unwrap(),
            resolver: Arc::new(
                StaticResolver::new()
                    .with("loop.test", &["127.0.0.1".parse().unwrap()])
                    .with("evil.test", &["10.0.0.5".parse().unwrap()]),
            ),
            limits,
            origin_host: Some("127.0.0.1".into()),
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(10),
        }
    }

    /// A one-shot origin server that answers every connection with `answer` and records what it received.
    fn origin(answer: &'static [u8]) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = Arc::clone(&seen);
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let mut r = io::BufReader::new(c.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                lock(&s2).push(head);
                let mut c = c;
                let _ = c.write_all(answer);
            }
        });
        (addr, seen)
    }

    fn ask(proxy: &Proxy, req: &str) -> String {
        let mut s = TcpStream::connect(proxy.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[test]
    fn forwards_plain_http_in_origin_form_with_connection_close() {
        let (addr, seen) =
            origin(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello");
        let p = Proxy::start(cfg(ProxyLimits::default())).unwrap();
        let out = ask(
            &p,
            &format!("GET http://loop.test:{}/a/b?x=1 HTTP/1.1\r\nHost: other\r\nProxy-Connection: keep-alive\r\nUser-Agent: t\r\n\r\n", addr.port()),
        );
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(
            out.contains("Connection: close\r\n") && !out.contains("keep-alive"),
            "{out}"
        );
        assert!(out.ends_with("\r\n\r\nhello"), "{out}");
        let head = lock(&seen)[0].clone();
        assert!(head.starts_with("GET /a/b?x=1 HTTP/1.1\r\n"), "{head}");
        assert!(
            head.contains(&format!("Host: loop.test:{}\r\n", addr.port())),
            "{head}"
        );
        assert!(
            head.contains("Connection: close") && !head.contains("Proxy-Connection"),
            "{head}"
        );
        assert!(head.contains("User-Agent: t"));
        assert_eq!(p.connected(), vec![addr]);
        assert_eq!(p.bytes(), 5);
        assert!(p.refusal().is_none());
    }

    #[test]
    fn refuses_private_targets_without_connecting() {
        let p = Proxy::start(cfg(ProxyLimits::default())).unwrap();
        for (req, want) in [
            (
                "GET http://10.1.2.3/x.mp4 HTTP/1.1\r\n\r\n",
                "10.1.2.3 (private network address)",
            ),
            (
                "CONNECT 169.254.169.254:443 HTTP/1.1\r\n\r\n",
                "cloud metadata",
            ),
            ("CONNECT [::1]:443 HTTP/1.1\r\n\r\n", "loopback"),
            ("GET http://127.1:80/ HTTP/1.1\r\n\r\n", "numeric host"),
            (
                "GET http://evil.test/ HTTP/1.1\r\n\r\n",
                "evil.test (10.0.0.5)",
            ),
        ] {
            let out = ask(&p, req);
            assert!(out.starts_with("HTTP/1.1 403 Forbidden"), "{req}: {out}");
            assert!(out.contains(want), "{req}: {out}");
        }
        assert!(p.connected().is_empty());
        let first = p.refusal().unwrap().to_string();
        assert_eq!(
            first,
            "redirected or linked to 10.1.2.3 (private network address): refused"
        );
        let out = ask(&p, "GET /relative HTTP/1.1\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
        let out = ask(&p, "GET http://unknown.test/ HTTP/1.1\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 502"), "{out}");
        assert!(p.failures()[0].contains("cannot resolve host unknown.test"));
    }

    #[test]
    fn refuses_an_announced_size_above_the_limit() {
        let (addr, _) = origin(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nxxxx");
        let p = Proxy::start(cfg(ProxyLimits {
            max_response: Some(1000),
            max_total: None,
        }))
        .unwrap();
        let out = ask(
            &p,
            &format!("GET http://127.0.0.1:{}/big HTTP/1.1\r\n\r\n", addr.port()),
        );
        assert!(out.starts_with("HTTP/1.1 403"), "{out}");
        assert!(p
            .refusal()
            .unwrap()
            .to_string()
            .contains("announced 1.0 MB (1000000 bytes)"));
        assert_eq!(p.bytes(), 0);
    }

    #[test]
    fn cuts_a_response_that_grows_past_the_total() {
        static BODY: [u8; 300_000] = [b'x'; 300_000];
        let mut answer = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        answer.extend_from_slice(&BODY);
        let (addr, _) = origin(Box::leak(answer.into_boxed_slice()));
        let p = Proxy::start(cfg(ProxyLimits {
            max_response: None,
            max_total: Some(100_000),
        }))
        .unwrap();
        let out = ask(
            &p,
            &format!("GET http://127.0.0.1:{}/big HTTP/1.1\r\n\r\n", addr.port()),
        );
        assert!(out.len() < 200_000, "{}", out.len());
        assert!(p
            .refusal()
            .unwrap()
            .to_string()
            .contains("grew past the size limit"));
    }

    #[test]
    fn tunnels_connect_to_allowed_targets() {
        let (addr, seen) = origin(b"pong");
        let p = Proxy::start(cfg(ProxyLimits::default())).unwrap();
        let out = ask(
            &p,
            &format!(
                "CONNECT 127.0.0.1:{} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nping\r\n\r\n",
                addr.port()
            ),
        );
        assert_eq!(out, "HTTP/1.1 200 Connection established\r\n\r\npong");
        assert_eq!(lock(&seen)[0], "ping\r\n");
        assert_eq!(p.bytes(), 4);
    }

    #[test]
    fn announced_size_prefers_the_content_range_total() {
        assert_eq!(
            announced_size("HTTP/1.1 200 OK\r\ncontent-length: 42"),
            Some(42)
        );
        assert_eq!(
            announced_size(
                "HTTP/1.1 206 Partial\r\nContent-Length: 10\r\nContent-Range: bytes 90-99/100"
            ),
            Some(100)
        );
        assert_eq!(announced_size("HTTP/1.1 200 OK\r\nContent-Type: x"), None);
    }
}
