//! The HTTP API for integrations (CREATOR plan): `POST /v1/jobs` (a multipart upload or a link, the options as
//! JSON), `GET /v1/jobs/{id}`, `GET /v1/jobs/{id}/outputs/{name}`, `DELETE /v1/jobs/{id}`; documented in
//! `docs/api.yaml` (checked against [`ROUTES`] by a test).
//!
//! Every request carries `Authorization: Bearer KEY`. A key is `ask_` and 64 hex digits (32 random bytes), made by
//! [`create_key`] (the bot's `/apikey`, `autosub apikey create`), shown once; the database keeps its SHA-256. A key
//! works while its owner is on CREATOR and not blocked; requests are counted per key and minute in the database
//! (so the limit holds across API processes) and refused with 429 and `Retry-After` over the limit. Jobs are the
//! same tasks the bot queues: the tier's limits and daily count apply, workers run them, and a user sees only their
//! own jobs (another user's id answers 404, as an unknown one does).

use crate::policy::{self, Declared};
use crate::storage;
use autosub_core::job::{Job, JobInput, TranslateSpec, VideoSpec, VoiceSpec};
use autosub_core::render::Reframe;
use autosub_store::{now_ms, ApiKey, NewTask, Store, StoreError, TaskRow, TaskStatus, Tier, User};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path as UrlPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// The API's routes as (method, path), as axum spells them and `docs/api.yaml` lists them.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/jobs"),
    ("get", "/v1/jobs/{id}"),
    ("delete", "/v1/jobs/{id}"),
    ("get", "/v1/jobs/{id}/outputs/{name}"),
];

/// Active keys a user may have at once.
pub const MAX_KEYS_PER_USER: i64 = 5;

/// The tier the API belongs to.
pub const API_TIER: Tier = Tier::Creator;

/// Largest JSON body (`options`, or a link request).
const MAX_JSON: usize = 64 * 1024;

// ------------------------------------------------------------------------------------------------------ keys

/// A new key: `ask_` and 64 hex digits from the system's random source.
pub fn new_key() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the system's random source is readable");
    let mut s = String::with_capacity(68);
    s.push_str("ask_");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// What the database keeps of a key: its SHA-256, hex.
pub fn hash_key(key: &str) -> String {
    crate::links::hex(&Sha256::digest(key.as_bytes()))
}

/// The first characters of a key, which name it in lists (`ask_` and 8 hex digits).
pub fn key_prefix(key: &str) -> String {
    key.chars().take(12).collect()
}

/// Why a key was not made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("user {0} is not known")]
    NoUser(i64),
    #[error("the API is part of the {} plan; user {telegram_id} is on {}", policy::name(API_TIER), policy::name(*tier))]
    NotOnPlan { telegram_id: i64, tier: Tier },
    #[error("this account is blocked")]
    Banned,
    #[error("{0}")]
    TooMany(String),
    #[error(transparent)]
    Store(StoreError),
}

/// Makes a key for the user with Telegram id `telegram_id` (on CREATOR, not blocked, fewer than
/// [`MAX_KEYS_PER_USER`] active keys): the key itself, to show once, and its row.
pub async fn create_key(
    store: &Store,
    telegram_id: i64,
    name: Option<&str>,
    now: i64,
) -> Result<(String, ApiKey), KeyError> {
    let user = store
        .get_user(telegram_id)
        .await
        .map_err(KeyError::Store)?
        .ok_or(KeyError::NoUser(telegram_id))?;
    if user.banned {
        return Err(KeyError::Banned);
    }
    let tier = user.effective_tier(now);
    if tier.limits().priority < API_TIER.limits().priority {
        return Err(KeyError::NotOnPlan { telegram_id, tier });
    }
    let key = new_key();
    let row = store
        .create_api_key(
            user.id,
            &hash_key(&key),
            &key_prefix(&key),
            name,
            MAX_KEYS_PER_USER,
            now,
        )
        .await
        .map_err(|e| match e {
            StoreError::InvalidState(m) => KeyError::TooMany(m),
            e => KeyError::Store(e),
        })?;
    Ok((key, row))
}

// ---------------------------------------------------------------------------------------------------- errors

/// An error answer: `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<i64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such job")
    }

    fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!("api: {e}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the service failed; try again later",
        )
    }

    fn refusal(r: &policy::Refusal) -> Self {
        let (status, code) = match r {
            policy::Refusal::Banned => (StatusCode::FORBIDDEN, "blocked"),
            policy::Refusal::DailyLimit { .. } => (StatusCode::TOO_MANY_REQUESTS, "daily_limit"),
            policy::Refusal::Lacks { .. } => (StatusCode::FORBIDDEN, "not_in_plan"),
            policy::Refusal::TooLong { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "too_long"),
            policy::Refusal::TooBig { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_big"),
        };
        ApiError::new(status, code, r.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = s.to_string().parse() {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}

// --------------------------------------------------------------------------------------------------- options

/// `reframe` of the options: how a horizontal video becomes 9:16.
#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Vertical {
    Blur,
    Crop,
}

/// The options of a job (`autosub process`'s, as JSON). Unknown fields are refused, naming them.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobOptions {
    /// The spoken language (ISO 639-1); detected when absent.
    #[serde(default)]
    pub language: Option<String>,
    /// Translation targets (ISO 639-1), at most 3.
    #[serde(default)]
    pub translate: Vec<String>,
    /// Make the subtitled video (default: when the input has a video stream).
    #[serde(default)]
    pub video: Option<bool>,
    /// Reframe to 9:16: `blur` or `crop`.
    #[serde(default)]
    pub vertical: Option<Vertical>,
    /// A built-in style: clean, boxed, karaoke.
    #[serde(default)]
    pub style: Option<String>,
    /// Voice the subtitles (the translation when there is one).
    #[serde(default)]
    pub voiceover: bool,
    /// Subtitle formats (srt, vtt, ass, json); all four when absent.
    #[serde(default)]
    pub formats: Option<Vec<String>>,
    /// The outputs' file name stem.
    #[serde(default)]
    pub name: Option<String>,
}

fn is_lang(s: &str) -> bool {
    (2..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase())
}

/// A file name stem safe on every file system: letters, digits, `-`, `_`, `.` and spaces, not starting with a dot.
fn safe_stem(s: &str) -> Option<String> {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ') {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    let t = t.trim().trim_start_matches('.').to_owned();
    (!t.is_empty()).then_some(t)
}

impl JobOptions {
    /// The job for `input`; `has_video`: whether the input has a video stream (`None`: not known yet, a link).
    pub fn to_job(&self, input: JobInput, has_video: Option<bool>) -> Result<Job, String> {
        let mut job = Job::new(input);
        if let Some(l) = &self.language {
            if !is_lang(l) {
                return Err(format!(
                    "language: {l:?} is not a language code like \"en\""
                ));
            }
            job.asr.language = Some(l.clone());
        }
        if self.translate.len() > 3 {
            return Err("translate: at most 3 languages".into());
        }
        if let Some(bad) = self.translate.iter().find(|l| !is_lang(l)) {
            return Err(format!(
                "translate: {bad:?} is not a language code like \"en\""
            ));
        }
        if !self.translate.is_empty() {
            job.translate = Some(TranslateSpec {
                targets: self.translate.clone(),
                ..TranslateSpec::default()
            });
        }
        if self.voiceover {
            job.voiceover = Some(VoiceSpec::default());
        }
        if let Some(f) = &self.formats {
            if f.is_empty() {
                return Err("formats: name at least one of srt, vtt, ass, json".into());
            }
            let mut formats = Vec::new();
            for name in f {
                let fmt: autosub_subs::Format = name
                    .parse()
                    .map_err(|e: autosub_subs::UnknownName| format!("formats: {e}"))?;
                if !formats.contains(&fmt) {
                    formats.push(fmt);
                }
            }
            job.formats = formats;
        }
        if let Some(s) = &self.style {
            if autosub_subs::AssStyle::by_name(s).is_none() {
                return Err(format!(
                    "style: {s:?} is not one of {}",
                    autosub_subs::AssStyle::names().join(", ")
                ));
            }
        }
        let video = match (self.video, has_video) {
            (Some(true), Some(false)) => {
                return Err("video: the upload has no video stream".into());
            }
            (Some(v), _) => v,
            (None, known) => known.unwrap_or(true),
        };
        if !video && (self.vertical.is_some() || self.style.is_some()) {
            return Err("vertical and style need the video (\"video\": true)".into());
        }
        job.video = video.then(|| VideoSpec {
            vertical: self.vertical.map(|v| match v {
                Vertical::Blur => Reframe::Blur,
                Vertical::Crop => Reframe::Crop,
            }),
            style: self.style.clone(),
            ..VideoSpec::default()
        });
        if let Some(n) = &self.name {
            job.name = Some(safe_stem(n).ok_or("name: give a file name stem")?);
        }
        Ok(job)
    }
}

// ---------------------------------------------------------------------------------------------------- router

/// What the API's handlers share.
pub struct Api {
    pub store: Store,
    /// The data dir: task folders (uploads, outputs) are in its `storage/`.
    pub data_dir: PathBuf,
    /// Requests per key and minute.
    pub rate_per_minute: i64,
    pub tools: autosub_core::media::Tools,
    /// The shared store of task files (`AUTOSUB_STORAGE_URL`): uploads put there, outputs read from there.
    pub shared: Option<storage::Storage>,
}

type Shared = Arc<Api>;

/// The API's router (its routes are [`ROUTES`]).
pub fn router(api: Api) -> Router {
    let shared: Shared = Arc::new(api);
    Router::new()
        .route(
            "/v1/jobs",
            post(create_job).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/jobs/{id}", get(show_job).delete(delete_job))
        .route("/v1/jobs/{id}/outputs/{name}", get(output))
        .with_state(shared)
}

/// The key of a request and its owner, with the request counted: 401 without a valid key, 403 when the owner is
/// blocked or not on the plan, 429 over the rate.
async fn authorize(api: &Api, headers: &HeaderMap) -> Result<(ApiKey, User), ApiError> {
    let unauthorized = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send a valid API key as `Authorization: Bearer KEY` (make one with /apikey in the bot)",
        )
    };
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            // The scheme is case-insensitive (RFC 7235).
            let (scheme, key) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(key)
        })
        .map(str::trim)
        .filter(|k| k.len() == 68 && k.starts_with("ask_"))
        .ok_or_else(unauthorized)?;
    let (key, user) = api
        .store
        .api_key_by_hash(&hash_key(key))
        .await?
        .ok_or_else(unauthorized)?;
    let now = now_ms();
    if user.banned {
        return Err(ApiError::refusal(&policy::Refusal::Banned));
    }
    let tier = user.effective_tier(now);
    if tier.limits().priority < API_TIER.limits().priority {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_in_plan",
            format!(
                "the API is part of the {} plan; this account is on {} (see /plans in the bot)",
                policy::name(API_TIER),
                policy::name(tier)
            ),
        ));
    }
    let n = api.store.api_hit(key.id, 60_000, now).await?;
    if n > api.rate_per_minute {
        metrics::counter!("autosub_api_requests_total", "outcome" => "rate_limited").increment(1);
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "more than {} requests a minute with this key; try again in a minute",
                api.rate_per_minute
            ),
        );
        e.retry_after = Some((60_000 - now.rem_euclid(60_000)).div_euclid(1000) + 1);
        return Err(e);
    }
    Ok((key, user))
}

/// The job `id` when it belongs to `user`; 404 otherwise (another user's job is not told apart from a missing one).
async fn own_task(api: &Api, user: &User, id: &str) -> Result<TaskRow, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::not_found())?;
    match api.store.get_task(id).await? {
        Some(t) if t.user_id == Some(user.id) && t.kind == "process" => Ok(t),
        _ => Err(ApiError::not_found()),
    }
}

/// One output of a finished job.
struct OutputFile {
    name: String,
    kind: &'static str,
    format: Option<String>,
    language: Option<String>,
}

/// The outputs a task's `outputs` JSON names, by file name.
fn outputs_of(t: &TaskRow) -> Vec<OutputFile> {
    let Some(v) = t
        .outputs
        .as_deref()
        .and_then(|o| serde_json::from_str::<Value>(o).ok())
    else {
        return Vec::new();
    };
    let file_name = |p: &Value| -> Option<String> {
        Path::new(p.as_str()?)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    };
    let mut out = Vec::new();
    let lang = v["language"].as_str().map(str::to_owned);
    let mut subs = |files: &Value, language: Option<String>| {
        if let Some(m) = files.as_object() {
            for (fmt, p) in m {
                if let Some(name) = file_name(p) {
                    out.push(OutputFile {
                        name,
                        kind: "subtitles",
                        format: Some(fmt.clone()),
                        language: language.clone(),
                    });
                }
            }
        }
    };
    subs(&v["files"], lang);
    for t in v["translations"].as_array().into_iter().flatten() {
        subs(&t["files"], t["language"].as_str().map(str::to_owned));
    }
    if let Some(name) = file_name(&v["video"]) {
        out.push(OutputFile {
            name,
            kind: "video",
            format: Some("mp4".into()),
            language: v["burned_language"].as_str().map(str::to_owned),
        });
    }
    if let Some(name) = file_name(&v["voiceover_audio"]) {
        out.push(OutputFile {
            name,
            kind: "voiceover",
            format: None,
            language: v["burned_language"].as_str().map(str::to_owned),
        });
    }
    out
}

/// The folder a task's outputs are in.
fn out_dir(api: &Api, id: i64) -> PathBuf {
    storage::task_dir(&api.data_dir, id).join("out")
}

/// The size of output `name` of task `id`: on this machine's disk, else in the shared store; `None` when gone.
async fn output_size(api: &Api, id: i64, name: &str) -> Result<Option<u64>, ApiError> {
    if let Ok(m) = tokio::fs::metadata(out_dir(api, id).join(name)).await {
        return Ok(Some(m.len()));
    }
    let Some(shared) = api.shared.as_ref() else {
        return Ok(None);
    };
    // A store that does not answer is not "no outputs": the client is told to come back.
    shared
        .size(&storage::Storage::task_key(id, &format!("out/{name}")))
        .await
        .map_err(|e| {
            tracing::warn!(task = id, "api: the shared store did not answer: {e}");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the storage did not answer; try again in a minute",
            )
        })
}

/// A job as the API shows it.
async fn job_json(api: &Api, t: &TaskRow) -> Result<Value, ApiError> {
    let iso = |ms: Option<i64>| ms.map(autosub_store::iso_utc);
    let status = match t.status {
        TaskStatus::Created => "queued",
        s => s.as_str(),
    };
    let mut outputs = Vec::new();
    if t.status == TaskStatus::Completed {
        for o in outputs_of(t) {
            // Files the janitor removed (24 h after the end) or a DELETE removed are no longer listed.
            let Some(size) = output_size(api, t.id, &o.name).await? else {
                continue;
            };
            outputs.push(json!({
                "name": o.name,
                "kind": o.kind,
                "format": o.format,
                "language": o.language,
                "size": size,
                "url": format!("/v1/jobs/{}/outputs/{}", t.id, o.name),
            }));
        }
    }
    let info = t
        .outputs
        .as_deref()
        .and_then(|o| serde_json::from_str::<Value>(o).ok())
        .unwrap_or(Value::Null);
    Ok(json!({
        "id": t.id,
        "status": status,
        "progress": (t.status == TaskStatus::Processing).then(|| json!({
            "stage": t.progress_stage,
            "percent": t.progress_percent,
        })),
        "error": t.error,
        "created_at": autosub_store::iso_utc(t.created_at),
        "started_at": iso(t.started_at),
        "finished_at": iso(t.finished_at),
        "language": info["language"],
        "duration_ms": info["duration_ms"],
        "outputs": outputs,
    }))
}

/// What `POST /v1/jobs` received.
struct Received {
    options: JobOptions,
    url: Option<String>,
    /// The upload in `storage/.uploads/`, and its file name as sent.
    file: Option<(PathBuf, String)>,
}

/// Deletes an upload that did not become a task's input.
struct UploadGuard(Option<PathBuf>);

impl Drop for UploadGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn parse_options(text: &str) -> Result<JobOptions, ApiError> {
    if text.trim().is_empty() {
        return Ok(JobOptions::default());
    }
    serde_json::from_str(text).map_err(|e| ApiError::bad(format!("options: {e}")))
}

/// Reads a multipart request: `file` (streamed to disk, at most `max` bytes), `url`, `options` (JSON).
async fn read_multipart(
    api: &Api,
    mut mp: Multipart,
    max: u64,
    tier: Tier,
    guard: &mut UploadGuard,
) -> Result<Received, ApiError> {
    let mut received = Received {
        options: JobOptions::default(),
        url: None,
        file: None,
    };
    let bad_form = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad(format!("the multipart body could not be read: {e}"))
    };
    while let Some(mut field) = mp.next_field().await.map_err(bad_form)? {
        match field.name().unwrap_or_default() {
            "file" => {
                if received.file.is_some() {
                    return Err(ApiError::bad("send one file per job"));
                }
                let sent_name = field.file_name().unwrap_or("upload").to_owned();
                let dir = storage::uploads_dir(&api.data_dir);
                tokio::fs::create_dir_all(&dir)
                    .await
                    .map_err(ApiError::internal)?;
                let path = dir.join(format!("up-{}", &new_key()[4..20]));
                guard.0 = Some(path.clone());
                let mut f = tokio::fs::File::create(&path)
                    .await
                    .map_err(ApiError::internal)?;
                let mut size: u64 = 0;
                while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
                    size += chunk.len() as u64;
                    if size > max {
                        return Err(ApiError::refusal(&policy::Refusal::TooBig {
                            size,
                            max,
                            tier,
                        }));
                    }
                    f.write_all(&chunk).await.map_err(ApiError::internal)?;
                }
                f.flush().await.map_err(ApiError::internal)?;
                if size == 0 {
                    return Err(ApiError::bad("file: the upload is empty"));
                }
                received.file = Some((path, sent_name));
            }
            "url" => received.url = Some(small_text(field).await?.trim().to_owned()),
            "options" => received.options = parse_options(&small_text(field).await?)?,
            other => {
                return Err(ApiError::bad(format!(
                    "unknown field {other:?} (send file or url, and options)"
                )))
            }
        }
    }
    Ok(received)
}

/// A text field of at most [`MAX_JSON`] bytes.
async fn small_text(mut field: axum::extract::multipart::Field<'_>) -> Result<String, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| ApiError::bad(format!("the multipart body could not be read: {e}")))?
    {
        buf.extend_from_slice(&chunk);
        if buf.len() > MAX_JSON {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_big",
                "a text field is larger than 64 KiB",
            ));
        }
    }
    String::from_utf8(buf).map_err(|_| ApiError::bad("a text field is not UTF-8"))
}

/// A file name safe to keep in the task's `input/`, with the sent name's extension when it has a plain one.
fn input_name(sent: &str) -> String {
    let base = sent.rsplit(['/', '\\']).next().unwrap_or(sent);
    match safe_stem(base) {
        Some(n) if !n.contains("..") => n.replace(' ', "_"),
        _ => "upload".into(),
    }
}

async fn create_job(State(api): State<Shared>, headers: HeaderMap, req: Request) -> Response {
    let mut guard = UploadGuard(None);
    match create(&api, &headers, req, &mut guard).await {
        Ok(v) => {
            metrics::counter!("autosub_api_requests_total", "outcome" => "job_created")
                .increment(1);
            (StatusCode::CREATED, axum::Json(v)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn create(
    api: &Api,
    headers: &HeaderMap,
    req: Request,
    guard: &mut UploadGuard,
) -> Result<Value, ApiError> {
    let (_key, user) = authorize(api, headers).await?;
    let now = now_ms();
    let tier = user.effective_tier(now);
    let limits = tier.limits();
    let idem_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| {
            if k.len() > 200 {
                Err(ApiError::bad("Idempotency-Key: at most 200 characters"))
            } else {
                Ok(format!("api:{}:{k}", user.id))
            }
        })
        .transpose()?;
    // A retried request gets its job as it is now, before anything else: nothing is read, moved or counted again.
    if let Some(k) = &idem_key {
        if let Some(t) = api.store.task_by_idem_key(k).await? {
            return job_json(api, &t).await;
        }
    }
    // The day's count first, so that a user over it does not upload a file for nothing.
    if user.tasks_today_at(now) >= i64::from(limits.tasks_per_day) {
        return Err(ApiError::refusal(&policy::daily_limit(tier)));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let received = if content_type.starts_with("multipart/form-data") {
        let mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::bad(format!("the multipart body could not be read: {e}")))?;
        read_multipart(api, mp, limits.max_upload_bytes, tier, guard).await?
    } else if content_type.starts_with("application/json") {
        let body = axum::body::to_bytes(req.into_body(), MAX_JSON)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_big",
                    "a JSON body is at most 64 KiB (upload files as multipart/form-data)",
                )
            })?;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct LinkRequest {
            url: String,
            #[serde(default)]
            options: JobOptions,
        }
        let r: LinkRequest =
            serde_json::from_slice(&body).map_err(|e| ApiError::bad(format!("body: {e}")))?;
        Received {
            options: r.options,
            url: Some(r.url),
            file: None,
        }
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send multipart/form-data (a file) or application/json (a link)",
        ));
    };
    let (mut job, declared, upload) = match (received.file, received.url) {
        (Some(_), Some(_)) => return Err(ApiError::bad("send a file or a url, not both")),
        (None, None) => return Err(ApiError::bad("send a file (multipart) or a url")),
        (None, Some(url)) => {
            if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2048 {
                return Err(ApiError::bad("url: give an http:// or https:// link"));
            }
            let job = received
                .options
                .to_job(JobInput::Url { url }, None)
                .map_err(ApiError::bad)?;
            (job, Declared::default(), None)
        }
        (Some((path, sent_name)), None) => {
            let tools = api.tools.clone();
            let probe_path = path.clone();
            let info = tokio::task::spawn_blocking(move || {
                autosub_core::media::probe(&tools, &probe_path, &autosub_core::progress::NullSink)
            })
            .await
            .map_err(ApiError::internal)?;
            let info = match info {
                Ok(i) if i.audio.is_some() || i.video.is_some() => i,
                _ => {
                    return Err(ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "not_media",
                        "file: this is not a video or audio file ffmpeg can read",
                    ))
                }
            };
            let size = tokio::fs::metadata(&path).await.map(|m| m.len()).ok();
            let name = input_name(&sent_name);
            let mut job = received
                .options
                .to_job(
                    JobInput::File {
                        path: Path::new("input").join(&name),
                    },
                    Some(info.video.is_some()),
                )
                .map_err(ApiError::bad)?;
            if job.name.is_none() {
                job.name = Some(autosub_core::job::stem_of(Path::new(&name)));
            }
            let declared = Declared {
                duration_s: info.duration_ms.map(|d| d.div_ceil(1000)),
                size_bytes: size,
            };
            (job, declared, Some((path, name)))
        }
    };
    policy::apply_tier(&mut job, tier, Some(&user), declared, now)
        .map_err(|r| ApiError::refusal(&r))?;
    let task = NewTask {
        user_telegram_id: Some(user.telegram_id),
        kind: "process".into(),
        spec: job.to_json(),
        spec_version: i64::from(job.version),
        input_type: if upload.is_some() { "upload" } else { "url" }.into(),
        input_url: match &job.input {
            JobInput::Url { url } => Some(url.clone()),
            JobInput::File { .. } => None,
        },
        generate_subtitles: true,
        translate: job.translate.as_ref().map(|t| t.targets.join(",")),
        voiceover: job.voiceover.is_some(),
        vertical_format: job.vertical(),
        tier,
        daily_limit: Some(i64::from(limits.tasks_per_day)),
        hold: upload.is_some(),
        idem_key,
        ..Default::default()
    };
    let (id, new) = match api.store.enqueue_new(&task, now).await {
        Ok(x) => x,
        Err(StoreError::QuotaExceeded { .. }) => {
            return Err(ApiError::refusal(&policy::daily_limit(tier)))
        }
        Err(e) => return Err(e.into()),
    };
    if let Some((path, name)) = upload {
        // Only the request that made the task moves its file: a retry that raced it (same Idempotency-Key) drops its
        // own upload and answers with the job.
        if new {
            let data_dir = api.data_dir.clone();
            let moved = tokio::task::spawn_blocking(move || {
                storage::adopt_input(&data_dir, id, &path, &name)
            })
            .await
            .map_err(ApiError::internal)?;
            let moved = match (moved, &api.shared) {
                (Ok(()), Some(shared)) => storage::put_inputs(shared, &api.data_dir, id)
                    .await
                    .map(|_| ())
                    .map_err(|e| std::io::Error::other(e.to_string())),
                (r, _) => r,
            };
            match moved {
                Ok(()) => {
                    guard.0 = None;
                    api.store
                        .queue_created(id, &job.to_json(), now_ms())
                        .await?;
                }
                Err(e) => {
                    let _ = api.store.cancel(id, now_ms()).await;
                    return Err(ApiError::internal(format!("task {id} input: {e}")));
                }
            }
        }
    }
    tracing::info!(task = id, user = user.telegram_id, "api: job queued");
    let t = api
        .store
        .get_task(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    job_json(api, &t).await
}

async fn show_job(
    State(api): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let (_, user) = authorize(&api, &headers).await?;
    let t = own_task(&api, &user, &id).await?;
    Ok(axum::Json(job_json(&api, &t).await?))
}

async fn delete_job(
    State(api): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let (_, user) = authorize(&api, &headers).await?;
    let t = own_task(&api, &user, &id).await?;
    let now = now_ms();
    if !t.status.is_finished() {
        // Queued: cancelled at once; running: its worker stops at its next heartbeat.
        api.store.cancel(t.id, now).await?;
        let t = api
            .store
            .get_task(t.id)
            .await?
            .ok_or_else(ApiError::not_found)?;
        return Ok((StatusCode::ACCEPTED, axum::Json(job_json(&api, &t).await?)).into_response());
    }
    // Finished: its files are deleted now instead of 24 h later.
    let dir = storage::task_dir(&api.data_dir, t.id);
    match tokio::fs::remove_dir_all(&dir).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ApiError::internal(format!("{}: {e}", dir.display()))),
    }
    if let Some(shared) = &api.shared {
        shared
            .delete_task(t.id)
            .await
            .map_err(|e| ApiError::internal(format!("task {}: {e}", t.id)))?;
    }
    tracing::info!(task = t.id, "api: job files deleted");
    Ok((StatusCode::OK, axum::Json(job_json(&api, &t).await?)).into_response())
}

async fn output(
    State(api): State<Shared>,
    headers: HeaderMap,
    UrlPath((id, name)): UrlPath<(String, String)>,
) -> Result<Response, ApiError> {
    let (_, user) = authorize(&api, &headers).await?;
    let t = own_task(&api, &user, &id).await?;
    let gone = || ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such output");
    if t.status != TaskStatus::Completed {
        return Err(gone());
    }
    // Only a name the job's outputs list is served: never a path.
    let o = outputs_of(&t)
        .into_iter()
        .find(|o| o.name == name)
        .ok_or_else(gone)?;
    let path = out_dir(&api, t.id).join(&o.name);
    let (len, body) = match tokio::fs::File::open(&path).await {
        Ok(file) => {
            let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
            (
                len,
                axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file)),
            )
        }
        // Not on this machine: from the shared store, streamed.
        Err(_) => {
            let shared = api.shared.as_ref().ok_or_else(gone)?;
            let key = storage::Storage::task_key(t.id, &format!("out/{}", o.name));
            match shared.open(&key).await {
                Ok((len, stream)) => (len, axum::body::Body::from_stream(stream)),
                Err(storage::StorageError::NotFound(_)) => return Err(gone()),
                Err(e) => return Err(ApiError::internal(e)),
            }
        }
    };
    let content_type = match o.format.as_deref() {
        Some("srt") => "application/x-subrip; charset=utf-8",
        Some("vtt") => "text/vtt; charset=utf-8",
        Some("ass") => "text/x-ssa; charset=utf-8",
        Some("json") => "application/json",
        Some("mp4") => "video/mp4",
        _ => "application/octet-stream",
    };
    let ascii: String = o
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{ascii}\""),
            ),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_kept_as_hashes() {
        let a = new_key();
        let b = new_key();
        assert_ne!(a, b);
        assert_eq!(a.len(), 68);
        assert!(a.starts_with("ask_") && a[4..].bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(hash_key(&a).len(), 64);
        assert_ne!(hash_key(&a), hash_key(&b));
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(key_prefix(&a), a[..12]);
    }

    #[test]
    fn options_become_the_job_or_a_refusal_naming_the_field() {
        let o: JobOptions = serde_json::from_str(
            r#"{"language":"ru","translate":["en"],"vertical":"crop","formats":["srt","vtt","srt"],"name":"my clip"}"#,
        )
        .unwrap();
        let j = o
            .to_job(
                JobInput::File {
                    path: "input/a.mp4".into(),
                },
                Some(true),
            )
            .unwrap();
        assert_eq!(j.asr.language.as_deref(), Some("ru"));
        assert_eq!(j.translate.unwrap().targets, ["en"]);
        assert_eq!(j.video.unwrap().vertical, Some(Reframe::Crop));
        assert_eq!(
            j.formats,
            [autosub_subs::Format::Srt, autosub_subs::Format::Vtt]
        );
        assert_eq!(j.name.as_deref(), Some("my clip"));
        // Audio: no video unless asked for, and asking for it is refused.
        let audio = JobOptions::default()
            .to_job(
                JobInput::File {
                    path: "a.ogg".into(),
                },
                Some(false),
            )
            .unwrap();
        assert!(audio.video.is_none());
        let e = serde_json::from_str::<JobOptions>(r#"{"translte":["en"]}"#).unwrap_err();
        assert!(e.to_string().contains("translte"), "{e}");
        for (json, field) in [
            (r#"{"video":true}"#, "video"),
            (r#"{"language":"Russian"}"#, "language"),
            (r#"{"translate":["en","de","fr","es"]}"#, "translate"),
            (r#"{"formats":["doc"]}"#, "formats"),
            (r#"{"style":"/etc/passwd"}"#, "style"),
            (r#"{"name":"..."}"#, "name"),
        ] {
            let o: JobOptions = serde_json::from_str(json).unwrap();
            let e = o
                .to_job(
                    JobInput::File {
                        path: "a.ogg".into(),
                    },
                    Some(false),
                )
                .unwrap_err();
            assert!(e.starts_with(field), "{json}: {e}");
        }
    }

    /// `docs/api.yaml`'s paths and methods, each path's parameters, and the options' fields.
    #[test]
    fn the_openapi_document_lists_exactly_the_routes() {
        let doc = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.yaml"),
        )
        .unwrap();
        let mut documented = std::collections::BTreeSet::new();
        let mut params: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        let mut in_paths = false;
        let mut path = String::new();
        for line in doc.lines() {
            if !line.starts_with(' ') && !line.is_empty() {
                in_paths = line == "paths:";
                continue;
            }
            if !in_paths {
                continue;
            }
            if let Some(p) = line.strip_prefix("  /") {
                path = format!("/{}", p.trim_end_matches(':'));
                params.entry(path.clone()).or_default();
            } else if let Some(m) = line.strip_prefix("    ").and_then(|l| l.strip_suffix(':')) {
                if ["get", "post", "put", "patch", "delete"].contains(&m) {
                    documented.insert((m.to_owned(), path.clone()));
                }
            } else if let Some(n) = line.trim().strip_prefix("- name: ") {
                params.get_mut(&path).unwrap().push(n.to_owned());
            }
        }
        let served: std::collections::BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(documented, served, "docs/api.yaml and api::ROUTES differ");
        for (path, names) in &params {
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                let name = seg.trim_matches(|c| c == '{' || c == '}');
                assert!(
                    names.iter().any(|n| n == name),
                    "{path}: parameter {name} is not documented"
                );
            }
        }
        // Every option the API reads is in the JobOptions schema, and nothing else.
        let fields: std::collections::BTreeSet<String> =
            serde_json::to_value(JobOptions::default())
                .unwrap()
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
        let schema = doc
            .split("    JobOptions:\n")
            .nth(1)
            .unwrap()
            .split("\n    Job:\n")
            .next()
            .unwrap();
        let in_doc: std::collections::BTreeSet<String> = schema
            .lines()
            .filter_map(|l| l.strip_prefix("        ")?.strip_suffix(':'))
            .filter(|l| !l.starts_with(' '))
            .map(str::to_owned)
            .collect();
        assert_eq!(in_doc, fields, "JobOptions in docs/api.yaml");
    }

    #[test]
    fn upload_names_stay_in_their_folder() {
        assert_eq!(input_name("../../etc/passwd"), "passwd");
        assert_eq!(input_name("My clip.MP4"), "My_clip.MP4");
        assert_eq!(input_name(".hidden"), "hidden");
        assert_eq!(input_name("a..b"), "upload");
        assert_eq!(input_name(""), "upload");
    }
}
