//! A stand-in for the Platega payment provider, used by tests and benchmarks.
//!
//! [`StandIn::spawn`] starts a small HTTP server on `127.0.0.1` (random port) that serves the
//! parts of Platega's publicly documented merchant API the project uses:
//!
//! * `POST /transaction/process` creates a transaction and answers with a redirect link;
//! * `GET /transaction/{id}` reports a transaction's status;
//! * `GET /pay/{id}` is a tiny HTML "Pay N RUB" page, so the redirect link is a real page.
//!
//! API requests must carry the `X-MerchantId` and `X-Secret` headers given to `spawn`,
//! otherwise they are answered `401`. Malformed create bodies are answered `400`, unknown ids
//! `404`; errors carry a JSON body `{"error": "..."}`.
//!
//! Tests drive it from the outside: they change what it reports ([`StandIn::set_status`],
//! [`StandIn::set_amount`]), make the next API requests fail ([`StandIn::fail_next`]: `503`,
//! a dropped connection, or a slow answer), inspect every request it received
//! ([`StandIn::requests`]) and make it deliver callbacks to the merchant's callback URL as
//! Platega does: a JSON `POST` with the same `X-MerchantId` / `X-Secret` headers and no body
//! signature ([`StandIn::fire_callback`] and friends; the callback client has a 10 s timeout).
//!
//! This is not a model of Platega's behaviour beyond the documented API: nothing expires,
//! nothing moves on its own (a transaction stays `PENDING` until a test calls `set_status`),
//! no callback is sent unless a test asks for one, and there are no rate limits, fees or
//! currency conversions (`comission` is always 0, `usdtRate` a constant).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use axum::{Json, Router};
use serde_json::{json, Value};

/// Header carrying the merchant id (a UUID), on API requests and on callbacks.
pub const HEADER_MERCHANT_ID: &str = "X-MerchantId";
/// Header carrying the API key, on API requests and on callbacks.
pub const HEADER_SECRET: &str = "X-Secret";

const EXPIRES_IN: &str = "00:15:00";
const METHOD_NAME: &str = "SBPQR";
const MERCHANT_NAME: &str = "AutoSub test";
const USDT_RATE: f64 = 95.5;
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Used for [`Failure::Drop`] only if a connection cannot be closed from the handler.
const DROP_FALLBACK_SLEEP: Duration = Duration::from_secs(30);

/// A transaction created through `POST /transaction/process`, in its current state
/// (including changes made with [`StandIn::set_status`] and [`StandIn::set_amount`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    pub id: String,
    pub amount: f64,
    pub currency: String,
    pub status: String,
    pub description: String,
    pub return_url: String,
    pub failed_url: String,
    pub payload: Option<String>,
    pub payment_method: i64,
}

/// One request the stand-in received. `status` is the HTTP status it answered, or 0 while
/// no answer has been sent (still in progress, or the connection was dropped on purpose).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    /// The URI path, without the query string.
    pub path: String,
    /// Whether both credential headers matched.
    pub authorized: bool,
    pub status: u16,
}

/// How the next API requests fail; see [`StandIn::fail_next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Answer `503 Service Unavailable`.
    ServerError,
    /// Read the request, then close the connection without an answer.
    Drop,
    /// Sleep, then answer normally.
    Slow(Duration),
}

/// Which credential headers a callback carries.
#[derive(Debug, Clone)]
pub enum Creds {
    /// The merchant id and secret the stand-in was spawned with.
    Right,
    /// A different merchant id and a different secret.
    Wrong,
    /// No `X-MerchantId` / `X-Secret` headers at all.
    Missing,
    /// Exactly these values.
    Custom { merchant_id: String, secret: String },
}

/// A callback the stand-in delivered (or tried to), see [`StandIn::callbacks`].
#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    pub url: String,
    /// The transaction it was about; `None` for [`StandIn::fire_raw`].
    pub transaction_id: Option<String>,
    pub body: Vec<u8>,
    /// HTTP status of the merchant's answer, 0 if there was none (connection error, timeout).
    pub status: u16,
    /// The merchant's answer body, or a description of the error.
    pub response: String,
}

/// Handle to a running stand-in server. Clones share the same server and state; the server
/// stops when the last clone is dropped or on [`StandIn::shutdown`].
#[derive(Clone)]
pub struct StandIn {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.task.abort();
    }
}

impl fmt::Debug for StandIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandIn")
            .field("url", &self.inner.shared.base_url)
            .field("merchant_id", &self.inner.shared.merchant_id)
            .finish_non_exhaustive()
    }
}

/// State shared between the handle and the server's handlers.
struct Shared {
    merchant_id: String,
    secret: String,
    base_url: String,
    /// Every bit of a transaction id except the counter.
    id_prefix: u128,
    next_id: AtomicU64,
    closed: AtomicBool,
    state: Mutex<Store>,
}

#[derive(Default)]
struct Store {
    transactions: Vec<Transaction>,
    index: HashMap<String, usize>,
    requests: Vec<Request>,
    failures: VecDeque<Failure>,
    callbacks: Vec<Callback>,
}

impl StandIn {
    /// Starts a stand-in on `127.0.0.1` with a port chosen by the OS. API requests must carry
    /// `X-MerchantId: merchant_id` and `X-Secret: secret`. Must be called inside a Tokio runtime.
    pub async fn spawn(merchant_id: &str, secret: &str) -> std::io::Result<StandIn> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let client = reqwest::Client::builder()
            .timeout(CALLBACK_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            merchant_id: merchant_id.to_owned(),
            secret: secret.to_owned(),
            base_url: format!("http://{addr}"),
            id_prefix: id_prefix(addr.port()),
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            state: Mutex::new(Store::default()),
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let listener = ConnListener { inner: listener };
        let task = tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<Conn>();
            // `serve` only returns on shutdown; nothing to report then.
            let _ = axum::serve(listener, service).await;
        });
        Ok(StandIn {
            inner: Arc::new(Inner {
                shared,
                client,
                task,
            }),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn url(&self) -> String {
        self.inner.shared.base_url.clone()
    }

    /// The merchant id API requests must carry.
    pub fn merchant_id(&self) -> &str {
        &self.inner.shared.merchant_id
    }

    /// The secret API requests must carry.
    pub fn secret(&self) -> &str {
        &self.inner.shared.secret
    }

    /// The payment page a created transaction redirects to: `{url}/pay/{id}`.
    pub fn redirect_url(&self, id: &str) -> String {
        format!("{}/pay/{id}", self.inner.shared.base_url)
    }

    /// All transactions created so far, in creation order, in their current state.
    pub fn transactions(&self) -> Vec<Transaction> {
        self.inner.shared.lock().transactions.clone()
    }

    /// One transaction in its current state, if it exists.
    pub fn transaction(&self, id: &str) -> Option<Transaction> {
        let state = self.inner.shared.lock();
        state.index.get(id).map(|&i| state.transactions[i].clone())
    }

    /// Sets the status that `GET /transaction/{id}` and callbacks report from now on
    /// (`PENDING`, `CONFIRMED`, `CANCELED`, `CHARGEBACKED`; not checked).
    /// Panics if there is no such transaction.
    pub fn set_status(&self, id: &str, status: &str) {
        self.modify(id, |tx| tx.status = status.to_owned());
    }

    /// Changes the amount and currency that `GET /transaction/{id}` and callbacks report from
    /// now on (to simulate a tampered or inconsistent answer). Panics on an unknown id.
    pub fn set_amount(&self, id: &str, amount: f64, currency: &str) {
        self.modify(id, |tx| {
            tx.amount = amount;
            tx.currency = currency.to_owned();
        });
    }

    fn modify(&self, id: &str, change: impl FnOnce(&mut Transaction)) {
        let found = {
            let mut state = self.inner.shared.lock();
            match state.index.get(id).copied() {
                Some(i) => {
                    change(&mut state.transactions[i]);
                    true
                }
                None => false,
            }
        };
        assert!(found, "Platega stand-in: no transaction with id {id:?}");
    }

    /// Makes the next `n` API requests (anything under `/transaction/`, whatever its
    /// credentials) fail with `failure`. Queued after failures already pending.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        let mut state = self.inner.shared.lock();
        state.failures.extend(std::iter::repeat_n(failure, n));
    }

    /// Forgets failures queued by [`StandIn::fail_next`] that have not happened yet.
    pub fn clear_failures(&self) {
        self.inner.shared.lock().failures.clear();
    }

    /// Every request received so far (all paths), in the order received.
    pub fn requests(&self) -> Vec<Request> {
        self.inner.shared.lock().requests.clone()
    }

    /// How many `GET /transaction/{id}` requests were answered `200`.
    pub fn gets_of(&self, id: &str) -> usize {
        let path = format!("/transaction/{id}");
        self.inner
            .shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.method == "GET" && r.path == path && r.status == 200)
            .count()
    }

    /// Callbacks sent so far, in order.
    pub fn callbacks(&self) -> Vec<Callback> {
        self.inner.shared.lock().callbacks.clone()
    }

    /// POSTs a callback for transaction `id` to `callback_url` as Platega would: JSON body
    /// `{"id", "amount", "currency", "status", "paymentMethod", "payload"}` built from the
    /// transaction's current state, headers per `creds`. Returns the HTTP status and body of
    /// the answer, or `(0, error description)` if there was no answer (10 s timeout).
    /// Panics if there is no such transaction.
    pub async fn fire_callback(&self, callback_url: &str, id: &str, creds: Creds) -> (u16, String) {
        let tx = self
            .transaction(id)
            .unwrap_or_else(|| panic!("Platega stand-in: no transaction with id {id:?}"));
        self.fire_callback_with(callback_url, id, creds, callback_body(&tx))
            .await
    }

    /// Like [`StandIn::fire_callback`], but with `body` as the JSON body (a claim that may
    /// contradict the real state). `id` need not exist; it is only recorded.
    pub async fn fire_callback_with(
        &self,
        callback_url: &str,
        id: &str,
        creds: Creds,
        body: Value,
    ) -> (u16, String) {
        let bytes = body.to_string().into_bytes();
        self.send(callback_url, Some(id.to_owned()), creds, bytes)
            .await
    }

    /// Sends `body` as is (may be garbage) with `Content-Type: application/json` and headers
    /// per `creds`. Returns like [`StandIn::fire_callback`].
    pub async fn fire_raw(&self, callback_url: &str, creds: Creds, body: Vec<u8>) -> (u16, String) {
        self.send(callback_url, None, creds, body).await
    }

    async fn send(
        &self,
        url: &str,
        transaction_id: Option<String>,
        creds: Creds,
        body: Vec<u8>,
    ) -> (u16, String) {
        let mut request = self
            .inner
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone());
        if let Some((merchant_id, secret)) = self.creds_values(creds) {
            request = request
                .header(HEADER_MERCHANT_ID, merchant_id)
                .header(HEADER_SECRET, secret);
        }
        let (status, response) = match request.send().await {
            Ok(answer) => {
                let status = answer.status().as_u16();
                match answer.text().await {
                    Ok(text) => (status, text),
                    Err(e) => (status, format!("answer body unreadable: {e}")),
                }
            }
            Err(e) => (0, format!("callback not delivered: {e}")),
        };
        self.inner.shared.lock().callbacks.push(Callback {
            url: url.to_owned(),
            transaction_id,
            body,
            status,
            response: response.clone(),
        });
        (status, response)
    }

    fn creds_values(&self, creds: Creds) -> Option<(String, String)> {
        let shared = &self.inner.shared;
        match creds {
            Creds::Right => Some((shared.merchant_id.clone(), shared.secret.clone())),
            Creds::Wrong => {
                let mut merchant_id = "ffffffff-ffff-4fff-bfff-ffffffffffff".to_owned();
                if merchant_id.eq_ignore_ascii_case(&shared.merchant_id) {
                    merchant_id = "00000000-0000-4000-8000-000000000000".to_owned();
                }
                Some((merchant_id, format!("{}-wrong", shared.secret)))
            }
            Creds::Missing => None,
            Creds::Custom {
                merchant_id,
                secret,
            } => Some((merchant_id, secret)),
        }
    }

    /// Stops the server: it stops accepting connections, and requests arriving on connections
    /// that are still open get the connection closed without an answer. Dropping the last
    /// clone does the same.
    pub fn shutdown(&self) {
        self.inner.shared.closed.store(true, Ordering::SeqCst);
        self.inner.task.abort();
    }
}

/// JSON body of a callback built from a transaction's current state.
fn callback_body(tx: &Transaction) -> Value {
    json!({
        "id": tx.id,
        "amount": number(tx.amount),
        "currency": tx.currency,
        "status": tx.status,
        "paymentMethod": tx.payment_method,
        "payload": tx.payload,
    })
}

/// An amount as a JSON number, written without a fraction when it is whole (`100`, not `100.0`).
fn number(amount: f64) -> Value {
    if amount.fract() == 0.0 && amount.abs() < 1e15 {
        json!(amount as i64)
    } else {
        json!(amount)
    }
}

/// The fixed part of this stand-in's transaction ids: process id, port and a little clock
/// noise, with the version/variant bits of a UUID v4, leaving 48 bits for a counter.
fn id_prefix(port: u16) -> u128 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let noise = u128::from(nanos);
    (u128::from(std::process::id()) << 96)
        | (u128::from(port) << 80)
        | (0x4 << 76)
        | ((noise & 0xfff) << 64)
        | (0b10 << 62)
        | (((noise >> 12) & 0x3fff) << 48)
}

fn format_uuid(value: u128) -> String {
    let hex = format!("{value:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Store> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        value(HEADER_MERCHANT_ID) == Some(self.merchant_id.as_str())
            && value(HEADER_SECRET) == Some(self.secret.as_str())
    }

    fn new_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format_uuid(self.id_prefix | u128::from(n & 0xffff_ffff_ffff))
    }

    /// Answers a request once any injected failure has been dealt with.
    fn route(&self, method: &Method, path: &str, authorized: bool, body: &[u8]) -> Response {
        if let Some(rest) = path.strip_prefix("/transaction/") {
            if !authorized {
                return error(StatusCode::UNAUTHORIZED, "unauthorized");
            }
            if rest == "process" && method == Method::POST {
                return self.create(body);
            }
            if method != Method::GET {
                return error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            }
            return self.status_of(rest);
        }
        if let Some(id) = path.strip_prefix("/pay/") {
            if method != Method::GET {
                return error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            }
            return self.pay_page(id);
        }
        error(StatusCode::NOT_FOUND, "not found")
    }

    fn create(&self, body: &[u8]) -> Response {
        let parsed = serde_json::from_slice::<Value>(body)
            .map_err(|e| format!("invalid JSON: {e}"))
            .and_then(|v| parse_create(&v));
        let new = match parsed {
            Ok(new) => new,
            Err(message) => return error(StatusCode::BAD_REQUEST, &message),
        };
        let tx = Transaction {
            id: self.new_id(),
            amount: new.amount,
            currency: new.currency,
            status: "PENDING".to_owned(),
            description: new.description,
            return_url: new.return_url,
            failed_url: new.failed_url,
            payload: new.payload,
            payment_method: new.payment_method,
        };
        let answer = json!({
            "paymentMethod": METHOD_NAME,
            "transactionId": tx.id,
            "redirect": format!("{}/pay/{}", self.base_url, tx.id),
            "return": tx.return_url,
            "paymentDetails": { "amount": number(tx.amount), "currency": tx.currency },
            "status": tx.status,
            "expiresIn": EXPIRES_IN,
            "merchantId": self.merchant_id,
            "usdtRate": USDT_RATE,
        });
        {
            let mut state = self.lock();
            let i = state.transactions.len();
            state.index.insert(tx.id.clone(), i);
            state.transactions.push(tx);
        }
        (StatusCode::OK, Json(answer)).into_response()
    }

    fn status_of(&self, id: &str) -> Response {
        let Some(tx) = self.find(id) else {
            return error(StatusCode::NOT_FOUND, "not found");
        };
        let answer = json!({
            "id": tx.id,
            "status": tx.status,
            "paymentDetails": { "amount": number(tx.amount), "currency": tx.currency },
            "merchantName": MERCHANT_NAME,
            // Spelled as in Platega's documentation.
            "mechantId": self.merchant_id,
            "comission": 0,
            "paymentMethod": METHOD_NAME,
            "expiresIn": EXPIRES_IN,
            "return": tx.return_url,
            "payload": tx.payload,
            "description": tx.description,
        });
        (StatusCode::OK, Json(answer)).into_response()
    }

    fn pay_page(&self, id: &str) -> Response {
        let Some(tx) = self.find(id) else {
            let page = "<!doctype html><html><head><title>Not found</title></head>\
                        <body><h1>Unknown payment</h1></body></html>";
            return (StatusCode::NOT_FOUND, Html(page.to_owned())).into_response();
        };
        let page = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Platega stand-in</title>\
             </head><body><h1>Pay {} {}</h1><p>{}</p><p>Status: {}</p></body></html>",
            tx.amount,
            escape_html(&tx.currency),
            escape_html(&tx.description),
            escape_html(&tx.status),
        );
        (StatusCode::OK, Html(page)).into_response()
    }

    fn find(&self, id: &str) -> Option<Transaction> {
        let state = self.lock();
        state.index.get(id).map(|&i| state.transactions[i].clone())
    }
}

/// A validated create request.
struct NewTransaction {
    payment_method: i64,
    amount: f64,
    currency: String,
    description: String,
    return_url: String,
    failed_url: String,
    payload: Option<String>,
}

fn parse_create(body: &Value) -> Result<NewTransaction, String> {
    let obj = body.as_object().ok_or("body must be a JSON object")?;
    let payment_method = obj
        .get("paymentMethod")
        .and_then(Value::as_i64)
        .ok_or("paymentMethod must be an integer")?;
    let details = obj
        .get("paymentDetails")
        .and_then(Value::as_object)
        .ok_or("paymentDetails must be an object")?;
    let amount = details
        .get("amount")
        .and_then(Value::as_f64)
        .filter(|a| a.is_finite() && *a > 0.0)
        .ok_or("paymentDetails.amount must be a positive number")?;
    let currency = details
        .get("currency")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .ok_or("paymentDetails.currency must be a non-empty string")?
        .to_owned();
    let string = |key: &str| {
        obj.get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("{key} must be a string"))
    };
    let description = string("description")?;
    let return_url = string("return")?;
    let failed_url = string("failedUrl")?;
    let payload = match obj.get("payload") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("payload must be a string".to_owned()),
    };
    match obj.get("metadata") {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(_) => return Err("metadata must be an object".to_owned()),
    }
    Ok(NewTransaction {
        payment_method,
        amount,
        currency,
        description,
        return_url,
        failed_url,
        payload,
    })
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The single handler: records the request, applies an injected failure, then answers.
async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let authorized = shared.authorized(&headers);
    let index = {
        let mut state = shared.lock();
        state.requests.push(Request {
            method: method.as_str().to_owned(),
            path: path.clone(),
            authorized,
            status: 0,
        });
        state.requests.len() - 1
    };
    if shared.closed.load(Ordering::SeqCst) {
        conn.close();
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let failure = if path.starts_with("/transaction/") {
        shared.lock().failures.pop_front()
    } else {
        None
    };
    match failure {
        Some(Failure::ServerError) => {
            let answer = error(StatusCode::SERVICE_UNAVAILABLE, "service unavailable");
            return finish(&shared, index, answer);
        }
        Some(Failure::Drop) => {
            if conn.close() {
                // The connection is gone: this answer is never delivered, status stays 0.
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            tokio::time::sleep(DROP_FALLBACK_SLEEP).await;
        }
        Some(Failure::Slow(delay)) => tokio::time::sleep(delay).await,
        None => {}
    }
    let answer = shared.route(&method, &path, authorized, &body);
    finish(&shared, index, answer)
}

fn finish(shared: &Shared, index: usize, answer: Response) -> Response {
    if let Some(request) = shared.lock().requests.get_mut(index) {
        request.status = answer.status().as_u16();
    }
    answer
}

/// Per-connection info handed to the handler: a duplicate of the connection's socket, so the
/// handler can close the connection without answering ([`Failure::Drop`]).
#[derive(Clone, Debug)]
struct Conn {
    socket: Option<Arc<std::net::TcpStream>>,
}

impl Conn {
    /// Shuts the connection down (the client sees it closed without an answer).
    /// Returns false if this connection has no socket handle.
    fn close(&self) -> bool {
        match &self.socket {
            Some(socket) => {
                // Fails only if the peer is already gone, which is just as good.
                let _ = socket.shutdown(Shutdown::Both);
                true
            }
            None => false,
        }
    }
}

impl Connected<IncomingStream<'_, ConnListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, ConnListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A TCP listener that keeps a duplicate handle of every accepted socket (see [`Conn`]).
struct ConnListener {
    inner: tokio::net::TcpListener,
}

impl Listener for ConnListener {
    type Io = tokio::net::TcpStream;
    type Addr = Conn;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let stream = match self.inner.accept().await {
                Ok((stream, _peer)) => stream,
                Err(_) => {
                    // E.g. too many open files: back off as axum's own listener does.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let Ok(std_stream) = stream.into_std() else {
                continue;
            };
            let socket = std_stream.try_clone().ok().map(Arc::new);
            if let Ok(stream) = tokio::net::TcpStream::from_std(std_stream) {
                return (stream, Conn { socket });
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        let _: SocketAddr = self.inner.local_addr()?;
        Ok(Conn { socket: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use std::time::Instant;

    const MERCHANT: &str = "3f1c2a9e-5b7d-4c11-9a0e-6d2f8b4c7e10";
    const SECRET: &str = "test-secret-key";

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    fn create_body(amount: f64) -> Value {
        json!({
            "paymentMethod": 2,
            "paymentDetails": { "amount": amount, "currency": "RUB" },
            "description": "Subscription <month>",
            "return": "https://example.test/ok",
            "failedUrl": "https://example.test/fail",
            "payload": "order-42",
            "metadata": { "user": 7 },
        })
    }

    fn authed(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.header(HEADER_MERCHANT_ID, MERCHANT)
            .header(HEADER_SECRET, SECRET)
    }

    async fn create(s: &StandIn, c: &reqwest::Client, amount: f64) -> Value {
        let resp = authed(c.post(format!("{}/transaction/process", s.url())))
            .json(&create_body(amount))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    async fn get(s: &StandIn, c: &reqwest::Client, id: &str) -> (u16, Value) {
        let resp = authed(c.get(format!("{}/transaction/{id}", s.url())))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    fn is_uuid(s: &str) -> bool {
        let parts: Vec<&str> = s.split('-').collect();
        parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
            && parts
                .iter()
                .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
    }

    #[tokio::test]
    async fn create_then_get_pending() {
        let s = StandIn::spawn(MERCHANT, SECRET).await.unwrap();
        let c = client();
        assert!(s.url().starts_with("http://127.0.0.1:") && !s.url().ends_with('/'));

        let created = create(&s, &c, 199.0).await;
        let id = created["transactionId"].as_str().unwrap().to_owned();
        assert!(is_uuid(&id), "{id}");
        assert_eq!(created["status"], "PENDING");
        assert_eq!(created["paymentMethod"], "SBPQR");
        assert_eq!(created["redirect"], format!("{}/pay/{id}", s.url()));
        assert_eq!(created["return"], "https://example.test/ok");
        assert_eq!(created["paymentDetails"]["amount"], 199);
        assert_eq!(created["paymentDetails"]["currency"], "RUB");
        assert_eq!(created["merchantId"], MERCHANT);
        assert_eq!(created["expiresIn"], "00:15:00");

        assert_eq!(s.gets_of(&id), 0);
        let (status, body) = get(&s, &c, &id).await;
        assert_eq!(status, 200);
        assert_eq!(body["id"], id.as_str());
        assert_eq!(body["status"], "PENDING");
        assert_eq!(body["paymentDetails"]["amount"].as_f64(), Some(199.0));
        assert_eq!(body["paymentDetails"]["currency"], "RUB");
        assert_eq!(body["mechantId"], MERCHANT);
        assert_eq!(body["merchantName"], "AutoSub test");
        assert_eq!(body["payload"], "order-42");
        assert_eq!(body["description"], "Subscription <month>");
        assert_eq!(s.gets_of(&id), 1);

        let expected = Transaction {
            id: id.clone(),
            amount: 199.0,
            currency: "RUB".into(),
            status: "PENDING".into(),
            description: "Subscription <month>".into(),
            return_url: "https://example.test/ok".into(),
            failed_url: "https://example.test/fail".into(),
            payload: Some("order-42".into()),
            payment_method: 2,
        };
        assert_eq!(s.transactions(), vec![expected.clone()]);
        assert_eq!(s.transaction(&id), Some(expected));

        // Fractional amounts survive; ids are unique.
        let second = create(&s, &c, 99.5).await;
        let id2 = second["transactionId"].as_str().unwrap();
        assert_ne!(id2, id);
        assert!(is_uuid(id2));
        assert_eq!(second["paymentDetails"]["amount"].as_f64(), Some(99.5));
        assert_eq!(s.transactions().len(), 2);

        // The redirect link is a real page; unknown ids are 404.
        let page = c.get(s.redirect_url(&id)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("Pay 199 RUB"), "{html}");
        assert!(html.contains("Subscription &lt;month&gt;"), "{html}");
        let missing = c.get(s.redirect_url("nope")).send().await.unwrap();
        assert_eq!(missing.status(), 404);

        let (status, body) = get(&s, &c, "00000000-0000-4000-8000-000000000000").await;
        assert_eq!((status, body), (404, json!({"error": "not found"})));

        let paths: Vec<(String, String, bool, u16)> = s
            .requests()
            .into_iter()
            .map(|r| (r.method, r.path, r.authorized, r.status))
            .collect();
        assert_eq!(
            paths[0],
            ("POST".into(), "/transaction/process".into(), true, 200)
        );
        assert_eq!(
            paths[1],
            ("GET".into(), format!("/transaction/{id}"), true, 200)
        );
        assert_eq!(paths.len(), 6);
        assert_eq!(paths[5].3, 404);
    }

    #[tokio::test]
    async fn set_status_and_amount_change_get() {
        let s = StandIn::spawn(MERCHANT, SECRET).await.unwrap();
        let c = client();
        let id = create(&s, &c, 300.0).await["transactionId"]
            .as_str()
            .unwrap()
            .to_owned();

        s.set_status(&id, "CONFIRMED");
        let (_, body) = get(&s, &c, &id).await;
        assert_eq!(body["status"], "CONFIRMED");
        assert_eq!(s.transaction(&id).unwrap().status, "CONFIRMED");

        s.set_amount(&id, 1.0, "USD");
        let (_, body) = get(&s, &c, &id).await;
        assert_eq!(body["status"], "CONFIRMED");
        assert_eq!(
            body["paymentDetails"],
            json!({"amount": 1, "currency": "USD"})
        );

        s.set_status(&id, "CHARGEBACKED");
        let (_, body) = get(&s, &c, &id).await;
        assert_eq!(body["status"], "CHARGEBACKED");
        assert_eq!(s.gets_of(&id), 3);
    }

    #[test]
    #[should_panic(expected = "no transaction")]
    fn set_status_unknown_id_panics() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let s = rt.block_on(StandIn::spawn(MERCHANT, SECRET)).unwrap();
        s.set_status("nope", "CONFIRMED");
    }

    #[tokio::test]
    async fn wrong_or_missing_creds_are_401() {
        let s = StandIn::spawn(MERCHANT, SECRET).await.unwrap();
        let c = client();
        let id = create(&s, &c, 10.0).await["transactionId"]
            .as_str()
            .unwrap()
            .to_owned();
        let process = format!("{}/transaction/process", s.url());
        let status = format!("{}/transaction/{id}", s.url());

        let cases = [
            c.post(&process).json(&create_body(5.0)),
            c.post(&process)
                .header(HEADER_MERCHANT_ID, MERCHANT)
                .header(HEADER_SECRET, "nope")
                .json(&create_body(5.0)),
            c.post(&process)
                .header(HEADER_SECRET, SECRET)
                .json(&create_body(5.0)),
            c.get(&status),
            c.get(&status)
                .header(HEADER_MERCHANT_ID, "00000000-0000-4000-8000-000000000000")
                .header(HEADER_SECRET, SECRET),
            c.get(&status).header(HEADER_MERCHANT_ID, MERCHANT),
        ];
        for req in cases {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 401);
            let body: Value = resp.json().await.unwrap();
            assert!(body["error"].is_string());
        }
        assert_eq!(s.transactions().len(), 1);
        assert_eq!(s.gets_of(&id), 0);

        let requests = s.requests();
        assert_eq!(requests.len(), 7);
        assert!(requests[0].authorized);
        for r in &requests[1..] {
            assert!(!r.authorized, "{r:?}");
            assert_eq!(r.status, 401);
        }
        assert_eq!(requests[1].method, "POST");
        assert_eq!(requests[1].path, "/transaction/process");
        assert_eq!(requests[4].method, "GET");
        assert_eq!(requests[4].path, format!("/transaction/{id}"));
    }

    #[tokio::test]
    async fn bad_create_bodies_are_400() {
        let s = StandIn::spawn(MERCHANT, SECRET).await.unwrap();
        let c = client();
        let url = format!("{}/transaction/process", s.url());
        let mut bad: Vec<Vec<u8>> = vec![b"not json".to_vec(), b"[1,2]".to_vec()];
        let edits: [(&str, Value); 10] = [
            ("/paymentMethod", json!("2")),
            ("/paymentMethod", json!(2.5)),
            ("/paymentDetails/amount", json!(-5)),
            ("/paymentDetails/amount", json!(0)),
            ("/paymentDetails/amount", json!("100")),
            ("/paymentDetails/currency", json!("")),
            ("/paymentDetails/currency", json!(643)),
            ("/description", json!(null)),
            ("/return", json!(1)),
            ("/failedUrl", json!(false)),
        ];
        for (pointer, value) in edits {
            let mut body = create_body(100.0);
            *body.pointer_mut(pointer).unwrap() = value;
            bad.push(body.to_string().into_bytes());
        }
        let mut missing = create_body(100.0);
        missing.as_object_mut().unwrap().remove("paymentDetails");
        bad.push(missing.to_string().into_bytes());

        for body in bad {
            let resp = authed(c.post(&url))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 400, "{}", String::from_utf8_lossy(&body));
            let answer: Value = resp.json().await.unwrap();
            assert!(answer["error"].is_string(), "{answer}");
        }
        assert!(s.transactions().is_empty());
        assert!(s.requests().iter().all(|r| r.status == 400 && r.authorized));

        // Optional fields may be absent.
        let mut minimal = create_body(100.0);
        minimal.as_object_mut().unwrap().remove("payload");
        minimal.as_object_mut().unwrap().remove("metadata");
        let resp = authed(c.post(&url)).json(&minimal).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(s.transactions()[0].payload, None);
        let id = s.transactions()[0].id.clone();
        assert_eq!(get(&s, &c, &id).await.1["payload"], Value::Null);
    }

    #[tokio::test]
    async fn injected_failures() {
        let s = StandIn::spawn(MERCHANT, SECRET).await.unwrap();
        let c = client();
        let id = create(&s, &c, 50.0).await["transactionId"]
            .as_str()
            .unwrap()
            .to_owned();

        // 503 once, then normal again.
        s.fail_next(1, Failure::ServerError);
        let (status, body) = get(&s, &c, &id).await;
        assert_eq!(status, 503);
        assert!(body["error"].is_string());
        let (status, _) = get(&s, &c, &id).await;
        assert_eq!(status, 200);
        assert_eq!(s.gets_of(&id), 1);

        // Create fails too; the pay page is not an API request and is not affected.
        s.fail_next(2, Failure::ServerError);
        assert_eq!(
            c.get(s.redirect_url(&id)).send().await.unwrap().status(),
            200
        );
        let resp = authed(c.post(format!("{}/transaction/process", s.url())))
            .json(&create_body(1.0))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 503);
        assert_eq!(get(&s, &c, &id).await.0, 503);
        assert_eq!(s.transactions().len(), 1);
        assert_eq!(get(&s, &c, &id).await.0, 200);

        // Drop: the connection closes without an answer, the next request works.
        s.fail_next(1, Failure::Drop);
        let err = authed(c.get(format!("{}/transaction/{id}", s.url())))
            .send()
            .await
            .expect_err("dropped connection must not produce an answer");
        assert!(!err.is_timeout(), "{err:?}");
        assert_eq!(s.requests().last().unwrap().status, 0);
        assert_eq!(get(&s, &c, &id).await.0, 200);

        // Slow: answered normally after the delay.
        s.fail_next(1, Failure::Slow(Duration::from_millis(300)));
        let started = Instant::now();
        assert_eq!(get(&s, &c, &id).await.0, 200);
        assert!(started.elapsed() >= Duration::from_millis(300));
        let started = Instant::now();
        assert_eq!(get(&s, &c, &id).await.0, 200);
        assert!(started.elapsed() < Duration::from_millis(300));

        // Queued failures can be cleared.
        s.fail_next(3, Failure::ServerError);
        s.clear_failures();
        assert_eq!(get(&s, &c, &id).await.0, 200);
    }

    type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

    /// A merchant callback endpoint at `{url}/cb` that records what it gets and answers "ok".
    async fn receiver() -> (String, Received) {
        let received: Received = Arc::default();
        let sink = Arc::clone(&received);
        let app = Router::new().route(
            "/cb",
            post(move |headers: HeaderMap, body: Bytes| {
                let sink = Arc::clone(&sink);
                async move {
                    sink.lock().unwrap().push((headers, body));
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/cb", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, received)
    }

    fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
        headers.get(name).map(|v| v.to_str().unwrap())
    }

    #[tokio::test]
    async fn callbacks_carry_headers_and_state() {
        let s = StandIn::spawn(MERCHANT, SECRET).await.unwrap();
        let c = client();
        let id = create(&s, &c, 249.0).await["transactionId"]
            .as_str()
            .unwrap()
            .to_owned();
        let (cb, received) = receiver().await;

        s.set_status(&id, "CONFIRMED");
        assert_eq!(
            s.fire_callback(&cb, &id, Creds::Right).await,
            (200, "ok".into())
        );
        {
            let got = received.lock().unwrap();
            let (headers, body) = &got[0];
            assert_eq!(header(headers, "x-merchantid"), Some(MERCHANT));
            assert_eq!(header(headers, "x-secret"), Some(SECRET));
            assert_eq!(header(headers, "content-type"), Some("application/json"));
            let body: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(
                body,
                json!({
                    "id": id,
                    "amount": 249,
                    "currency": "RUB",
                    "status": "CONFIRMED",
                    "paymentMethod": 2,
                    "payload": "order-42",
                })
            );
        }

        // Wrong credentials: both headers present, neither right.
        s.fire_callback(&cb, &id, Creds::Wrong).await;
        // Missing: no credential headers at all.
        s.fire_callback(&cb, &id, Creds::Missing).await;
        // Custom: exactly as given.
        let custom = Creds::Custom {
            merchant_id: "m-1".into(),
            secret: "s-1".into(),
        };
        s.fire_callback(&cb, &id, custom).await;
        {
            let got = received.lock().unwrap();
            let (wrong, _) = &got[1];
            let wrong_merchant = header(wrong, "x-merchantid").unwrap();
            let wrong_secret = header(wrong, "x-secret").unwrap();
            assert_ne!(wrong_merchant, MERCHANT);
            assert!(is_uuid(wrong_merchant));
            assert_ne!(wrong_secret, SECRET);
            let (missing, _) = &got[2];
            assert!(missing.get("x-merchantid").is_none());
            assert!(missing.get("x-secret").is_none());
            let (custom, _) = &got[3];
            assert_eq!(header(custom, "x-merchantid"), Some("m-1"));
            assert_eq!(header(custom, "x-secret"), Some("s-1"));
        }

        // A claim contradicting the real state is sent as is.
        let claim = json!({"id": id, "amount": 1, "currency": "RUB", "status": "CONFIRMED"});
        s.set_status(&id, "CANCELED");
        s.fire_callback_with(&cb, &id, Creds::Right, claim.clone())
            .await;
        // Garbage body.
        s.fire_raw(&cb, Creds::Right, b"\x00{not json".to_vec())
            .await;
        {
            let got = received.lock().unwrap();
            assert_eq!(serde_json::from_slice::<Value>(&got[4].1).unwrap(), claim);
            assert_eq!(header(&got[5].0, "x-secret"), Some(SECRET));
            assert_eq!(&got[5].1[..], b"\x00{not json");
        }
        let sent = s.callbacks();
        assert_eq!(sent.len(), 6);
        assert_eq!(sent[0].transaction_id.as_deref(), Some(id.as_str()));
        assert_eq!(sent[5].transaction_id, None);
        assert!(sent.iter().all(|cb| cb.status == 200));

        // The receiver's answer is reported as is; no receiver means status 0.
        let (status, text) = s
            .fire_callback(&format!("{}/nowhere", s.url()), &id, Creds::Right)
            .await;
        assert_eq!((status, text.as_str()), (404, r#"{"error":"not found"}"#));
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = format!("http://{}/cb", closed.local_addr().unwrap());
        drop(closed);
        let (status, text) = s.fire_callback(&dead, &id, Creds::Right).await;
        assert_eq!(status, 0, "{text}");
    }

    #[tokio::test]
    async fn shutdown_and_drop_stop_the_server() {
        let c = client();
        let s = StandIn::spawn(MERCHANT, SECRET).await.unwrap();
        let clone = s.clone();
        create(&s, &c, 5.0).await;
        s.shutdown();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let result = authed(c.post(format!("{}/transaction/process", clone.url())))
            .json(&create_body(5.0))
            .send()
            .await;
        assert!(result.is_err(), "{result:?}");
        assert_eq!(clone.transactions().len(), 1);

        let s = StandIn::spawn(MERCHANT, SECRET).await.unwrap();
        let url = s.url();
        let clone = s.clone();
        drop(s);
        assert_eq!(get(&clone, &c, "x").await.0, 404);
        drop(clone);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let fresh = client();
        let result = fresh.get(format!("{url}/pay/x")).send().await;
        assert!(result.is_err(), "{result:?}");
    }
}
