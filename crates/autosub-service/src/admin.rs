//! The operators' web page, `/admin` (docs/ADMIN.md): server-rendered HTML, no JavaScript, inline SVG charts.
//!
//! - `GET /admin` the dashboard: queue depth per tier, tasks by status, running jobs with their progress, recent
//!   failures with their errors, recent jobs, warnings from the operator log, the business metrics of the last 30
//!   days and two charts (tasks per day over 14 days, revenue by plan);
//! - `GET /admin/jobs?status=...` with `POST /admin/jobs/{id}/retry` and `/cancel`;
//! - `GET /admin/users?q=...` with `POST /admin/users/{telegram_id}/grant` (tier, days), `/ban`, `/unban`;
//! - `GET /admin/payments`;
//! - `GET|POST /admin/login`, `POST /admin/logout`.
//!
//! Security: the page exists only when `AUTOSUB_ADMIN_TOKEN` is set (else every `/admin` path is 404). The token is
//! compared in constant time (SHA-256 of both sides, then `subtle`); a right one gets a stateless session cookie
//! (`expiry.HMAC-SHA256(expiry)`, keyed by a key derived from the token, so changing the token ends every session;
//! `HttpOnly`, `SameSite=Strict`, `Path=/admin`, `Secure` when `AUTOSUB_PUBLIC_URL` is https) valid 12 h. Every
//! POST carries a CSRF token derived from the session (HMAC of the session value with a fixed label) in a hidden
//! field `csrf`, and POSTs whose `Origin` names another host are refused. Every value shown is HTML-escaped
//! ([`esc`]); answers carry a CSP without scripts, `X-Frame-Options: DENY` and `Cache-Control: no-store`.

use crate::config::{Config, Secret};
use crate::links::{hex, hmac};
use autosub_store::{
    iso_utc, now_ms, CancelOutcome, Level, Metrics, Store, StoreError, TaskRow, TaskStatus, Tier,
};
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// How long a session lasts.
pub const SESSION_MS: i64 = 12 * 3600 * 1000;

/// The session cookie's name.
pub const COOKIE: &str = "autosub_admin";

const DAY_MS: i64 = 86_400_000;

/// The page's settings.
#[derive(Clone, Debug)]
pub struct AdminConfig {
    /// The login token (`AUTOSUB_ADMIN_TOKEN`).
    pub token: Secret,
    /// Mark the session cookie `Secure` (the page is reached over https).
    pub secure_cookies: bool,
    /// `scheme://host[:port]` of `AUTOSUB_PUBLIC_URL`: an `Origin` a POST may carry besides its own `Host`'s (behind
    /// a proxy that rewrites `Host`).
    pub public_origin: Option<String>,
}

impl AdminConfig {
    /// The page's settings from the service's configuration; `None` when `AUTOSUB_ADMIN_TOKEN` is not set.
    pub fn from_config(cfg: &Config) -> Option<AdminConfig> {
        let token = cfg.admin_token.clone()?;
        let public = cfg.public_url.as_deref();
        Some(AdminConfig {
            token,
            secure_cookies: public.is_some_and(|u| u.starts_with("https://")),
            public_origin: public.map(origin_of),
        })
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{scheme}://{host}")
}

/// The page's router when `AUTOSUB_ADMIN_TOKEN` is set, else an empty router (every `/admin` path answers 404).
pub fn router_for(cfg: &Config, store: Store) -> Router {
    match AdminConfig::from_config(cfg) {
        Some(a) => router(store, a),
        None => {
            tracing::info!("AUTOSUB_ADMIN_TOKEN is not set: the operators' page /admin is off");
            Router::new()
        }
    }
}

struct Admin {
    store: Store,
    key: [u8; 32],
    token_hash: [u8; 32],
    secure: bool,
    public_origin: Option<String>,
}

type Shared = Arc<Admin>;
type Fields = Result<Form<HashMap<String, String>>, FormRejection>;

/// The router of `/admin` and its pages.
pub fn router(store: Store, cfg: AdminConfig) -> Router {
    let state = Arc::new(Admin {
        store,
        key: session_key(cfg.token.expose()),
        token_hash: Sha256::digest(cfg.token.expose().as_bytes()).into(),
        secure: cfg.secure_cookies,
        public_origin: cfg.public_origin,
    });
    Router::new()
        .route("/admin", get(dashboard))
        .route("/admin/login", get(login_page).post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/jobs", get(jobs))
        .route("/admin/jobs/{id}/{action}", post(job_action))
        .route("/admin/users", get(users))
        .route("/admin/users/{telegram_id}/{action}", post(user_action))
        .route("/admin/payments", get(payments))
        .with_state(state)
}

// ------------------------------------------------------------------------------------------- sessions, CSRF

fn session_key(token: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"autosub admin sessions v1\0")
        .chain_update(token.as_bytes())
        .finalize()
        .into()
}

/// A session value valid until `expires_ms`: `EXPIRY.HEX(HMAC(key, "session\0" EXPIRY))`.
pub fn sign_session(key: &[u8; 32], expires_ms: i64) -> String {
    let mac = hmac(key, format!("session\0{expires_ms}").as_bytes());
    format!("{expires_ms}.{}", hex(&mac))
}

/// Whether `value` is a session signed with `key` and not expired at `now`.
pub fn verify_session(key: &[u8; 32], value: &str, now: i64) -> bool {
    let Some((exp, mac)) = value.split_once('.') else {
        return false;
    };
    let Ok(exp) = exp.parse::<i64>() else {
        return false;
    };
    let want = hex(&hmac(key, format!("session\0{exp}").as_bytes()));
    bool::from(want.as_bytes().ct_eq(mac.as_bytes())) && now < exp
}

/// The CSRF token of a session: `HEX(HMAC(key, "csrf\0" SESSION))`.
pub fn csrf_token(key: &[u8; 32], session: &str) -> String {
    hex(&hmac(key, format!("csrf\0{session}").as_bytes()))
}

fn csrf_ok(key: &[u8; 32], session: &str, given: Option<&str>) -> bool {
    let Some(given) = given else { return false };
    bool::from(csrf_token(key, session).as_bytes().ct_eq(given.as_bytes()))
}

/// The `Set-Cookie` value of a new session.
pub fn session_cookie(value: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/admin; Max-Age={}; HttpOnly; SameSite=Strict{}",
        SESSION_MS / 1000,
        if secure { "; Secure" } else { "" }
    )
}

fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A POST's `Origin`, when present, must name the host it was sent to (or the public URL's origin).
fn origin_ok(headers: &HeaderMap, public_origin: Option<&str>) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if public_origin.is_some_and(|p| p.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// Where to go back to after an action: a path of this page in visible ASCII, else `default`.
fn safe_back<'a>(back: Option<&'a str>, default: &'a str) -> &'a str {
    match back {
        Some(b)
            if (b == "/admin" || b.starts_with("/admin/") || b.starts_with("/admin?"))
                && !b.contains("//")
                && !b.contains('\\')
                && b.bytes().all(|c| (0x21..=0x7e).contains(&c)) =>
        {
            b
        }
        _ => default,
    }
}

impl Admin {
    fn session(&self, headers: &HeaderMap) -> Option<String> {
        let v = cookie(headers, COOKIE)?;
        verify_session(&self.key, v, now_ms()).then(|| v.to_owned())
    }

    /// The checks of every action: the origin, the session, the CSRF token.
    fn check_post(
        &self,
        headers: &HeaderMap,
        form: &HashMap<String, String>,
    ) -> Result<String, Refused> {
        if !origin_ok(headers, self.public_origin.as_deref()) {
            tracing::warn!("admin: a POST from another origin was refused");
            return Err(Refused::Origin);
        }
        let Some(session) = self.session(headers) else {
            return Err(Refused::NoSession);
        };
        if !csrf_ok(&self.key, &session, form.get("csrf").map(String::as_str)) {
            tracing::warn!("admin: a POST without a valid CSRF token was refused");
            return Err(Refused::Csrf);
        }
        Ok(session)
    }

    fn csrf(&self, session: &str) -> String {
        csrf_token(&self.key, session)
    }
}

/// Why a POST was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// 403: its `Origin` names another site.
    Origin,
    /// 303 to the login page.
    NoSession,
    /// 403: no CSRF token, or a wrong one.
    Csrf,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Origin => plain(StatusCode::FORBIDDEN, "cross-origin request refused\n"),
            Refused::NoSession => see_other("/admin/login"),
            Refused::Csrf => plain(StatusCode::FORBIDDEN, "missing or wrong CSRF token\n"),
        }
    }
}

fn fields(form: Fields) -> HashMap<String, String> {
    form.map(|Form(f)| f).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------------- HTML

/// `s` with `& < > " '` escaped, for text and attribute values alike.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#f6f7f9}\
header{background:#1f2937;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center}\
header a{color:#cbd5e1;text-decoration:none}header a:hover{color:#fff}header form{margin-left:auto}\
main{padding:12px 16px}h1{font-size:20px}h2{font-size:16px;margin:18px 0 6px}\
table{border-collapse:collapse;background:#fff;margin-bottom:8px}\
td,th{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}th{background:#eef}\
.grid{display:flex;flex-wrap:wrap;gap:16px}.grid>section{min-width:260px}\
.s-completed{color:#15803d}.s-failed{color:#b91c1c;font-weight:bold}.s-processing{color:#1d4ed8}\
.s-cancelled{color:#777}.err{color:#b91c1c}.detail{color:#555;font-size:12px;max-width:520px;word-break:break-word}\
form.inline{display:inline}button{cursor:pointer}.note{background:#fff3cd;padding:6px 10px;border:1px solid #e0c97a}\
.big{font-size:20px;font-weight:bold}svg{background:#fff;border:1px solid #ddd}";

/// A whole page. `csrf`: the session's token (signed in: the navigation and the logout button).
fn page(status: StatusCode, title: &str, csrf: Option<&str>, body: &str) -> Response {
    let mut html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · AutoSub admin</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><style>{CSS}</style></head><body><header><b>AutoSub admin</b>",
        esc(title)
    );
    if let Some(csrf) = csrf {
        let _ = write!(
            html,
            "<a href=\"/admin\">Dashboard</a><a href=\"/admin/jobs\">Jobs</a><a href=\"/admin/users\">Users</a>\
             <a href=\"/admin/payments\">Payments</a><form method=\"post\" action=\"/admin/logout\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button id=\"logout\" type=\"submit\">Log out</button></form>",
            esc(csrf)
        );
    }
    let _ = write!(
        html,
        "</header><main><h1>{}</h1>{body}</main></body></html>",
        esc(title)
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    r
}

fn store_error(e: &StoreError, csrf: &str) -> Response {
    tracing::error!("admin page: {e}");
    let (status, text) = match e {
        StoreError::NotFound(m) => (StatusCode::NOT_FOUND, format!("not found: {m}")),
        StoreError::InvalidState(m) | StoreError::InvalidInput(m) => {
            (StatusCode::CONFLICT, m.clone())
        }
        e => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("database error: {e}"),
        ),
    };
    page(
        status,
        "Error",
        Some(csrf),
        &format!(
            "<p class=\"err\">{}</p><p><a href=\"/admin\">Back to the dashboard</a></p>",
            esc(&text)
        ),
    )
}

fn hidden(csrf: &str, back: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"back\" value=\"{}\">",
        esc(csrf),
        esc(back)
    )
}

/// `2026-12-04 15:30:00 (3 min ago)`.
fn when(ms: Option<i64>, now: i64) -> String {
    let Some(ms) = ms else { return String::new() };
    let ago = (now - ms) / 1000;
    let rel = if ago < 0 {
        format!("in {}", human_secs(-ago))
    } else {
        format!("{} ago", human_secs(ago))
    };
    format!(
        "{} <small>({rel})</small>",
        iso_utc(ms).replace('T', " ").trim_end_matches('Z')
    )
}

fn human_secs(s: i64) -> String {
    match s {
        ..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

fn opt(s: Option<&str>) -> String {
    esc(s.unwrap_or(""))
}

/// A table of tasks with their actions.
fn task_table(tasks: &[TaskRow], csrf: &str, back: &str, now: i64) -> String {
    if tasks.is_empty() {
        return "<p>None.</p>".into();
    }
    let mut t = String::from(
        "<table><tr><th>id</th><th>kind</th><th>status</th><th>tier</th><th>user</th><th>attempts</th>\
         <th>progress</th><th>worker</th><th>created</th><th>started</th><th>finished</th><th>error</th><th></th></tr>",
    );
    for task in tasks {
        let progress = match (&task.progress_stage, task.progress_percent) {
            (Some(stage), Some(p)) => format!(
                "{} <progress max=\"100\" value=\"{p:.0}\"></progress> {p:.0} %",
                esc(stage)
            ),
            (Some(stage), None) => esc(stage),
            _ => String::new(),
        };
        let mut actions = String::new();
        if task.status == TaskStatus::Failed || task.status == TaskStatus::Cancelled {
            let _ = write!(
                actions,
                "<form class=\"inline\" method=\"post\" action=\"/admin/jobs/{id}/retry\">{h}\
                 <button id=\"retry-{id}\" type=\"submit\">Retry</button></form>",
                id = task.id,
                h = hidden(csrf, back)
            );
        }
        if matches!(
            task.status,
            TaskStatus::Created | TaskStatus::Queued | TaskStatus::Processing
        ) {
            let _ = write!(
                actions,
                "<form class=\"inline\" method=\"post\" action=\"/admin/jobs/{id}/cancel\">{h}\
                 <button id=\"cancel-{id}\" type=\"submit\">{label}</button></form>",
                id = task.id,
                h = hidden(csrf, back),
                label = if task.cancel_requested {
                    "Cancel (requested)"
                } else {
                    "Cancel"
                }
            );
        }
        let _ = write!(
            t,
            "<tr id=\"task-{id}\"><td>{id}</td><td>{kind}</td><td class=\"status s-{st}\">{st}</td><td>{tier}</td>\
             <td>{user}</td><td>{att}/{max}</td><td>{progress}</td><td>{worker}</td><td>{created}</td><td>{started}</td>\
             <td>{finished}</td><td><span class=\"err\">{err}</span><div class=\"detail\">{detail}</div></td><td>{actions}</td></tr>",
            id = task.id,
            kind = esc(&task.kind),
            st = task.status.as_str(),
            tier = task.tier.as_str(),
            user = task.user_id.map(|u| format!("#{u}")).unwrap_or_default(),
            att = task.attempts,
            max = task.max_attempts,
            worker = opt(task.lease_owner.as_deref()),
            created = when(Some(task.created_at), now),
            started = when(task.started_at, now),
            finished = when(task.finished_at, now),
            err = opt(task.error.as_deref()),
            detail = opt(task.error_detail.as_deref()),
        );
    }
    t.push_str("</table>");
    t
}

/// Stacked bars of tasks per day: completed (green), failed (red), the rest (grey).
fn tasks_chart(days: &[autosub_store::admin::DayTasks]) -> String {
    let (w, h, pad_l, pad_b) = (560.0f64, 170.0f64, 34.0f64, 22.0f64);
    let max = days.iter().map(|d| d.total).max().unwrap_or(0).max(1) as f64;
    let n = days.len().max(1) as f64;
    let slot = (w - pad_l - 6.0) / n;
    let bar = (slot * 0.7).max(1.0);
    let plot_h = h - pad_b - 12.0;
    let mut s = format!(
        "<svg id=\"tasks-chart\" role=\"img\" aria-label=\"tasks per day\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         xmlns=\"http://www.w3.org/2000/svg\" font-size=\"10\" font-family=\"sans-serif\">\
         <line x1=\"{pad_l}\" y1=\"{y0}\" x2=\"{w}\" y2=\"{y0}\" stroke=\"#999\"/>\
         <text x=\"{tx}\" y=\"16\" text-anchor=\"end\">{max}</text><text x=\"{tx}\" y=\"{y0}\" text-anchor=\"end\">0</text>",
        y0 = h - pad_b,
        tx = pad_l - 4.0,
    );
    for (i, d) in days.iter().enumerate() {
        let x = pad_l + 3.0 + i as f64 * slot + (slot - bar) / 2.0;
        let other = d.total - d.completed - d.failed;
        let mut y = h - pad_b;
        for (n, color) in [
            (d.completed, "#16a34a"),
            (d.failed, "#dc2626"),
            (other, "#9ca3af"),
        ] {
            if n <= 0 {
                continue;
            }
            let bh = n as f64 / max * plot_h;
            y -= bh;
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{bh:.1}\" fill=\"{color}\"/>"
            );
        }
        let date = iso_utc(d.day * DAY_MS);
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"12\" width=\"{bar:.1}\" height=\"{plot_h:.1}\" fill=\"transparent\">\
             <title>{}: {} tasks, {} completed, {} failed</title></rect>",
            &date[..10],
            d.total,
            d.completed,
            d.failed
        );
        if i % 2 == days.len().saturating_sub(1) % 2 {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x + bar / 2.0,
                h - 8.0,
                &date[5..10]
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars, one per (label, value).
fn hbars(id: &str, items: &[(String, i64)], unit: &str) -> String {
    if items.is_empty() {
        return "<p>None in the period.</p>".into();
    }
    let max = items.iter().map(|x| x.1).max().unwrap_or(0).max(1) as f64;
    let (w, row) = (420.0f64, 22.0f64);
    let h = row * items.len() as f64 + 6.0;
    let mut s = format!(
        "<svg id=\"{}\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\" \
         font-size=\"11\" font-family=\"sans-serif\">",
        esc(id)
    );
    for (i, (label, v)) in items.iter().enumerate() {
        let y = 4.0 + i as f64 * row;
        let bw = (*v as f64 / max * 220.0).max(1.0);
        let _ = write!(
            s,
            "<text x=\"4\" y=\"{:.1}\">{}</text><rect x=\"120\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"16\" fill=\"#2563eb\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{v} {}</text>",
            y + 12.0,
            esc(label),
            124.0 + bw,
            y + 12.0,
            esc(unit)
        );
    }
    s.push_str("</svg>");
    s
}

fn metrics_html(m: &Metrics) -> String {
    let pct = |x: f64| format!("{:.1} %", x * 100.0);
    let mut s = format!(
        "<table id=\"metrics\"><tr><th>DAU</th><th>WAU</th><th>MAU</th><th>active (30 d)</th><th>new users</th>\
         <th>new paying</th><th>conversion</th><th>revenue</th><th>ARPU</th><th>tasks</th></tr>\
         <tr><td class=\"big\">{}</td><td class=\"big\">{}</td><td class=\"big\">{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td>{} RUB</td><td>{:.2} RUB</td><td>{}</td></tr></table>",
        m.dau,
        m.wau,
        m.mau,
        m.active,
        m.new_users,
        m.new_paying,
        pct(m.conversion),
        m.revenue,
        m.arpu,
        m.tasks.total
    );
    if !m.retention.is_empty() {
        s.push_str(
            "<table><tr><th>retention</th><th>cohort</th><th>retained</th><th>rate</th></tr>",
        );
        for (k, r) in &m.retention {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(k),
                r.cohort,
                r.retained,
                pct(r.rate)
            );
        }
        s.push_str("</table>");
    }
    if !m.processing.is_empty() {
        s.push_str(
            "<table><tr><th>processing time</th><th>tasks</th><th>median</th><th>p95</th></tr>",
        );
        for (k, t) in &m.processing {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{:.1} s</td><td>{:.1} s</td></tr>",
                esc(k),
                t.tasks,
                t.median_s,
                t.p95_s
            );
        }
        s.push_str("</table>");
    }
    s
}

fn back_of(uri: &Uri) -> String {
    safe_back(uri.path_and_query().map(|p| p.as_str()), "/admin").to_owned()
}

// ------------------------------------------------------------------------------------------------- handlers

fn login_form(error: Option<&str>) -> String {
    format!(
        "{}<form method=\"post\" action=\"/admin/login\"><label>Admin token <input id=\"token\" type=\"password\" \
         name=\"token\" autocomplete=\"current-password\" autofocus required></label> \
         <button id=\"login\" type=\"submit\">Log in</button></form>",
        error.map_or_else(String::new, |e| format!("<p id=\"error\" class=\"err\">{}</p>", esc(e)))
    )
}

async fn login_page(State(a): State<Shared>, headers: HeaderMap) -> Response {
    if a.session(&headers).is_some() {
        return see_other("/admin");
    }
    page(StatusCode::OK, "Log in", None, &login_form(None))
}

async fn login(State(a): State<Shared>, headers: HeaderMap, form: Fields) -> Response {
    if !origin_ok(&headers, a.public_origin.as_deref()) {
        tracing::warn!("admin: a login from another origin was refused");
        return plain(StatusCode::FORBIDDEN, "cross-origin request refused\n");
    }
    let form = fields(form);
    let given: [u8; 32] =
        Sha256::digest(form.get("token").map_or("", String::as_str).as_bytes()).into();
    if !bool::from(given.ct_eq(&a.token_hash)) {
        // Never the submitted value: it may be the real token with a typo.
        tracing::warn!("admin: login refused (wrong token)");
        return page(
            StatusCode::UNAUTHORIZED,
            "Log in",
            None,
            &login_form(Some("Wrong token.")),
        );
    }
    tracing::info!("admin: an operator logged in");
    let value = sign_session(&a.key, now_ms() + SESSION_MS);
    let mut r = see_other("/admin");
    if let Ok(v) = HeaderValue::from_str(&session_cookie(&value, a.secure)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout(State(a): State<Shared>, headers: HeaderMap, form: Fields) -> Response {
    if let Err(r) = a.check_post(&headers, &fields(form)) {
        return r.into_response();
    }
    let mut r = see_other("/admin/login");
    if let Ok(v) = HeaderValue::from_str(&clear_cookie(a.secure)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn dashboard(
    State(a): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(session) = a.session(&headers) else {
        return see_other("/admin/login");
    };
    let csrf = a.csrf(&session);
    let now = now_ms();
    let s = &a.store;
    let data = async {
        Ok::<_, StoreError>((
            s.queue_depth().await?,
            s.status_counts().await?,
            s.list_tasks(Some("processing"), 50).await?,
            s.list_tasks(Some("failed"), 10).await?,
            s.list_tasks(None, 20).await?,
            s.metrics(now - 30 * DAY_MS, now).await?,
            s.tasks_per_day(14, now).await?,
            s.recent_logs(Level::Warning, 10).await?,
        ))
    }
    .await;
    let (depth, counts, running, failed, recent, metrics, per_day, logs) = match data {
        Ok(d) => d,
        Err(e) => return store_error(&e, &csrf),
    };
    let back = back_of(&uri);
    let mut b = String::new();
    let refresh = q
        .get("refresh")
        .and_then(|r| r.parse::<u32>().ok())
        .filter(|r| (2..=600).contains(r));
    let _ = write!(
        b,
        "<p>{} UTC · <a href=\"/admin?refresh=5\">refresh every 5 s</a></p>",
        iso_utc(now).replace('T', " ").trim_end_matches('Z')
    );
    b.push_str("<div class=\"grid\"><section><h2>Queue</h2><table id=\"queue\"><tr><th>tier</th><th>queued</th></tr>");
    for (tier, n) in &depth {
        let _ = write!(
            b,
            "<tr><td>{}</td><td class=\"big\">{n}</td></tr>",
            tier.as_str()
        );
    }
    let _ = write!(
        b,
        "<tr><th>total</th><th>{}</th></tr></table></section>",
        depth.iter().map(|x| x.1).sum::<i64>()
    );
    b.push_str("<section><h2>Tasks by status</h2><table id=\"statuses\"><tr><th>status</th><th>tasks</th></tr>");
    for st in TaskStatus::ALL {
        let n: i64 = counts
            .iter()
            .filter(|c| c.0 == st.as_str())
            .map(|c| c.2)
            .sum();
        let _ = write!(
            b,
            "<tr><td><a class=\"s-{s}\" href=\"/admin/jobs?status={s}\">{s}</a></td><td>{n}</td></tr>",
            s = st.as_str()
        );
    }
    b.push_str("</table></section><section><h2>Tasks per day (14 days)</h2>");
    b.push_str(&tasks_chart(&per_day));
    b.push_str("</section></div>");
    let _ = write!(b, "<h2>Running ({})</h2>", running.len());
    b.push_str(&task_table(&running, &csrf, &back, now));
    b.push_str("<h2>Recent failures</h2>");
    b.push_str(&task_table(&failed, &csrf, &back, now));
    b.push_str("<h2>Recent jobs</h2><div id=\"recent\">");
    b.push_str(&task_table(&recent, &csrf, &back, now));
    b.push_str("</div><h2>Business, last 30 days</h2>");
    b.push_str(&metrics_html(&metrics));
    b.push_str("<h3>Revenue by plan</h3>");
    let plans: Vec<(String, i64)> = metrics
        .revenue_by_plan
        .iter()
        .map(|p| (format!("{} / {}", p.tier, p.period), p.amount))
        .collect();
    b.push_str(&hbars("revenue-chart", &plans, "RUB"));
    b.push_str("<h2>Warnings and errors (operator log)</h2>");
    if logs.is_empty() {
        b.push_str("<p>None.</p>");
    } else {
        b.push_str("<table><tr><th>when</th><th>level</th><th>source</th><th>task</th><th>message</th></tr>");
        for l in &logs {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"detail\">{}</td></tr>",
                when(Some(l.created_at), now),
                l.level.as_str(),
                esc(&l.source),
                l.task_id.map(|t| t.to_string()).unwrap_or_default(),
                esc(&l.message)
            );
        }
        b.push_str("</table>");
    }
    let mut r = page(StatusCode::OK, "Dashboard", Some(&csrf), &b);
    if let Some(secs) = refresh {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::REFRESH, v);
        }
    }
    r
}

async fn jobs(
    State(a): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(session) = a.session(&headers) else {
        return see_other("/admin/login");
    };
    let csrf = a.csrf(&session);
    let status = q
        .get("status")
        .map(String::as_str)
        .filter(|s| !s.is_empty());
    if let Some(st) = status {
        if TaskStatus::from_str(st).is_err() {
            return page(
                StatusCode::BAD_REQUEST,
                "Jobs",
                Some(&csrf),
                &format!("<p class=\"err\">unknown status {}</p>", esc(st)),
            );
        }
    }
    let tasks = match a.store.list_tasks(status, 200).await {
        Ok(t) => t,
        Err(e) => return store_error(&e, &csrf),
    };
    let mut b = String::from("<p>Status: <a href=\"/admin/jobs\">all</a>");
    for st in TaskStatus::ALL {
        let _ = write!(
            b,
            " · <a href=\"/admin/jobs?status={s}\">{s}</a>",
            s = st.as_str()
        );
    }
    let _ = write!(
        b,
        "</p><p>{} job(s){}, newest first.</p>",
        tasks.len(),
        status.map(|s| format!(" {s}")).unwrap_or_default()
    );
    b.push_str(&task_table(&tasks, &csrf, &back_of(&uri), now_ms()));
    page(StatusCode::OK, "Jobs", Some(&csrf), &b)
}

async fn job_action(
    State(a): State<Shared>,
    headers: HeaderMap,
    Path((id, action)): Path<(i64, String)>,
    form: Fields,
) -> Response {
    let form = fields(form);
    let session = match a.check_post(&headers, &form) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let csrf = a.csrf(&session);
    let now = now_ms();
    let result = match action.as_str() {
        "retry" => a
            .store
            .retry(id, now)
            .await
            .map(|()| "queued again".to_owned()),
        "cancel" => a.store.cancel(id, now).await.and_then(|o| match o {
            CancelOutcome::Cancelled => Ok("cancelled".to_owned()),
            CancelOutcome::Requested => Ok("cancel requested".to_owned()),
            CancelOutcome::AlreadyFinished => Err(StoreError::InvalidState(format!(
                "task {id} had already finished"
            ))),
            CancelOutcome::NotFound => Err(StoreError::NotFound(format!("task {id}"))),
        }),
        _ => return plain(StatusCode::NOT_FOUND, "no such action\n"),
    };
    match result {
        Ok(what) => {
            tracing::info!(task = id, "admin: task {what} by an operator");
            see_other(safe_back(
                form.get("back").map(String::as_str),
                "/admin/jobs",
            ))
        }
        Err(e) => store_error(&e, &csrf),
    }
}

async fn users(
    State(a): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(session) = a.session(&headers) else {
        return see_other("/admin/login");
    };
    let csrf = a.csrf(&session);
    let query = q.get("q").map(String::as_str).unwrap_or("");
    let found = match a.store.search_users(query, 50).await {
        Ok(u) => u,
        Err(e) => return store_error(&e, &csrf),
    };
    let now = now_ms();
    let back = back_of(&uri);
    let mut b = format!(
        "<form method=\"get\" action=\"/admin/users\"><input id=\"q\" name=\"q\" value=\"{}\" \
         placeholder=\"Telegram id or username\"> <button id=\"search\" type=\"submit\">Search</button></form>",
        esc(query)
    );
    if found.is_empty() {
        b.push_str("<p>No user found.</p>");
    } else {
        b.push_str(
            "<table id=\"users\"><tr><th>Telegram id</th><th>username</th><th>tier</th><th>expires</th>\
             <th>tasks today</th><th>tasks total</th><th>banned</th><th>since</th><th>grant</th><th></th></tr>",
        );
        for u in &found {
            let eff = u.effective_tier(now);
            let tier = if eff == u.tier {
                u.tier.as_str().to_owned()
            } else {
                format!("{} (expired: {})", eff.as_str(), u.tier.as_str())
            };
            let ban = if u.banned { "unban" } else { "ban" };
            let _ = write!(
                b,
                "<tr id=\"user-{tid}\"><td>{tid}</td><td>{name}</td><td>{tier}</td><td>{exp}</td><td>{today}</td>\
                 <td>{total}</td><td>{banned}</td><td>{since}</td>\
                 <td><form class=\"inline\" method=\"post\" action=\"/admin/users/{tid}/grant\">{h}\
                 <select name=\"tier\"><option value=\"pro\">PRO</option><option value=\"creator\">CREATOR</option>\
                 <option value=\"free\">FREE (revoke)</option></select> \
                 <input name=\"days\" type=\"number\" min=\"1\" max=\"3650\" value=\"30\" size=\"4\"> days \
                 <button id=\"grant-{tid}\" type=\"submit\">Grant</button></form></td>\
                 <td><form class=\"inline\" method=\"post\" action=\"/admin/users/{tid}/{ban}\">{h}\
                 <button id=\"{ban}-{tid}\" type=\"submit\">{label}</button></form></td></tr>",
                tid = u.telegram_id,
                name = opt(u.username.as_deref()),
                exp = match (u.tier.is_paid(), u.tier_expires_at) {
                    (false, _) => String::new(),
                    (true, None) => "never".into(),
                    (true, at) => when(at, now),
                },
                today = u.tasks_today_at(now),
                total = u.tasks_total,
                banned = if u.banned { "<b class=\"err\">yes</b>" } else { "no" },
                since = when(Some(u.created_at), now),
                h = hidden(&csrf, &back),
                label = if u.banned { "Unban" } else { "Ban" },
            );
        }
        b.push_str("</table>");
    }
    page(StatusCode::OK, "Users", Some(&csrf), &b)
}

async fn user_action(
    State(a): State<Shared>,
    headers: HeaderMap,
    Path((tid, action)): Path<(i64, String)>,
    form: Fields,
) -> Response {
    let form = fields(form);
    let session = match a.check_post(&headers, &form) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let csrf = a.csrf(&session);
    let now = now_ms();
    let result = match action.as_str() {
        "grant" => {
            let tier = form.get("tier").and_then(|t| Tier::from_str(t).ok());
            let days = form
                .get("days")
                .and_then(|d| d.trim().parse::<i64>().ok())
                .filter(|d| (1..=3650).contains(d));
            let (Some(tier), Some(days)) = (tier, days) else {
                return store_error(
                    &StoreError::InvalidInput("a grant needs a tier and 1 to 3650 days".into()),
                    &csrf,
                );
            };
            a.store
                .grant(tid, tier, days, now)
                .await
                .map(|_| format!("granted {} for {days} days", tier.as_str()))
        }
        "ban" => a
            .store
            .set_banned(tid, true)
            .await
            .map(|()| "banned".to_owned()),
        "unban" => a
            .store
            .set_banned(tid, false)
            .await
            .map(|()| "unbanned".to_owned()),
        _ => return plain(StatusCode::NOT_FOUND, "no such action\n"),
    };
    match result {
        Ok(what) => {
            tracing::info!("admin: user {tid} {what} by an operator");
            let _ = a
                .store
                .log(
                    Level::Info,
                    "admin",
                    None,
                    &format!("user {tid} {what} by an operator"),
                    now,
                )
                .await;
            let default = format!("/admin/users?q={tid}");
            see_other(safe_back(form.get("back").map(String::as_str), &default))
        }
        Err(e) => store_error(&e, &csrf),
    }
}

async fn payments(State(a): State<Shared>, headers: HeaderMap) -> Response {
    let Some(session) = a.session(&headers) else {
        return see_other("/admin/login");
    };
    let csrf = a.csrf(&session);
    let list = match a.store.recent_payments(200).await {
        Ok(p) => p,
        Err(e) => return store_error(&e, &csrf),
    };
    let now = now_ms();
    let mut b = format!("<p>The newest {} payment(s).</p>", list.len());
    if !list.is_empty() {
        b.push_str(
            "<table id=\"payments\"><tr><th>id</th><th>user</th><th>amount</th><th>plan</th><th>days</th><th>status</th>\
             <th>provider id</th><th>created</th><th>confirmed</th><th>expires</th></tr>",
        );
        for p in &list {
            let _ = write!(
                b,
                "<tr><td>{}</td><td><a href=\"/admin/users?q={tid}\">{tid}</a> {}</td><td>{} {}</td><td>{} / {}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                p.id,
                opt(p.username.as_deref()),
                p.amount,
                esc(&p.currency),
                p.tier.as_str(),
                p.period.as_str(),
                p.days,
                p.status.as_str(),
                opt(p.external_id.as_deref()),
                when(Some(p.created_at), now),
                when(p.confirmed_at, now),
                when(p.expires_at, now),
                tid = p.telegram_id,
            );
        }
        b.push_str("</table>");
    }
    page(StatusCode::OK, "Payments", Some(&csrf), &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_html_cares_about() {
        assert_eq!(
            esc(r#"<script>alert("x&y")</script> it's"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt; it&#39;s"
        );
        assert_eq!(esc("plain текст"), "plain текст");
        assert_eq!(esc(""), "");
    }

    #[test]
    fn sessions_verify_until_they_expire_and_only_with_their_key() {
        let key = session_key("0123456789abcdef-token");
        let s = sign_session(&key, 1_000);
        assert!(verify_session(&key, &s, 999));
        assert!(!verify_session(&key, &s, 1_000), "expired");
        assert!(!verify_session(&session_key("another-token-0123"), &s, 0));
        // A later expiry with the old MAC is refused.
        let forged = s.replacen("1000.", "9999.", 1);
        assert!(!verify_session(&key, &forged, 0));
        for bad in ["", "1000", "1000.", "x.y", ".abc"] {
            assert!(!verify_session(&key, bad, 0), "{bad:?}");
        }
        // HMAC itself: the value Python's hmac gives for key = 32 x 0x0b, msg = "Hi There".
        assert_eq!(
            hex(&hmac(&[0x0b; 32], b"Hi There")),
            "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7"
        );
    }

    #[test]
    fn csrf_tokens_belong_to_one_session_and_one_key() {
        let key = session_key("0123456789abcdef-token");
        let s1 = sign_session(&key, 1_000);
        let s2 = sign_session(&key, 2_000);
        let t1 = csrf_token(&key, &s1);
        assert_eq!(t1, csrf_token(&key, &s1), "deterministic");
        assert_eq!(t1.len(), 64);
        assert_ne!(t1, csrf_token(&key, &s2));
        assert_ne!(t1, csrf_token(&session_key("another-token-0123"), &s1));
        assert_ne!(
            t1,
            s1.split_once('.').unwrap().1,
            "not the session's own MAC"
        );
        assert!(csrf_ok(&key, &s1, Some(&t1)));
        assert!(!csrf_ok(&key, &s2, Some(&t1)));
        assert!(!csrf_ok(&key, &s1, None));
        assert!(!csrf_ok(&key, &s1, Some("")));
    }

    #[test]
    fn cookies_carry_their_flags() {
        let c = session_cookie("1.ab", false);
        assert_eq!(
            c,
            "autosub_admin=1.ab; Path=/admin; Max-Age=43200; HttpOnly; SameSite=Strict"
        );
        let c = session_cookie("1.ab", true);
        assert!(c.ends_with("; Secure") && c.contains("HttpOnly") && c.contains("SameSite=Strict"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; autosub_admin=5.cd; b=2"),
        );
        assert_eq!(cookie(&h, COOKIE), Some("5.cd"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn origins_must_match_the_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(
            origin_ok(&h, None),
            "no Origin: allowed (the CSRF token decides)"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(origin_ok(&h, None));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!origin_ok(&h, None));
        assert!(
            origin_ok(&h, Some("https://evil.example")),
            "the public URL's origin"
        );
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!origin_ok(&h, Some("https://autosub.example")));
        assert_eq!(
            origin_of("https://autosub.example:8443/base?x"),
            "https://autosub.example:8443"
        );
    }

    #[test]
    fn actions_go_back_only_to_this_page() {
        assert_eq!(
            safe_back(Some("/admin/jobs?status=failed"), "/d"),
            "/admin/jobs?status=failed"
        );
        assert_eq!(safe_back(Some("/admin"), "/d"), "/admin");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/admin//x",
            "/adminx",
            "/admin/\\x",
            "/admin/a b",
            "/admin/é",
        ] {
            assert_eq!(safe_back(Some(bad), "/d"), "/d", "{bad}");
        }
        assert_eq!(safe_back(None, "/d"), "/d");
    }

    #[test]
    fn charts_are_svg_with_escaped_labels() {
        let days: Vec<autosub_store::admin::DayTasks> = (0..14)
            .map(|i| autosub_store::admin::DayTasks {
                day: 20_000 + i,
                total: i,
                completed: i / 2,
                failed: 1.min(i),
            })
            .collect();
        let svg = tasks_chart(&days);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("#16a34a") && svg.contains("#dc2626"));
        let bars = hbars("r", &[("<pro> / month".into(), 299)], "RUB");
        assert!(bars.contains("&lt;pro&gt; / month") && !bars.contains("<pro>"));
    }
}
