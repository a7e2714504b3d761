//! The HTTP server of `autosub serve`, `autosub billing` and (with `--http-addr`) `autosub worker`:
//! `GET /healthz` (the process is alive), `GET /readyz` (the database answers and its migrations are applied; 503
//! otherwise), `GET /metrics` (Prometheus text). Later issues add the bot's download links and the billing callback
//! to the same router.

use crate::worker::WorkerStats;
use autosub_store::{Store, Tier};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
pub use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// Buckets of the duration histograms, in seconds: jobs take seconds to an hour.
const BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// Installs the process's Prometheus recorder (once) and returns its handle.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only when another recorder is installed: then this one records nothing, which tests tolerate.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

#[derive(Clone)]
struct AppState {
    store: Store,
    metrics: PrometheusHandle,
    stats: Option<Arc<WorkerStats>>,
}

/// The router: health, readiness and metrics.
pub fn router(store: Store, stats: Option<Arc<WorkerStats>>) -> Router {
    let state = AppState {
        store,
        metrics: metrics_handle(),
        stats,
    };
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

/// `GET /d/{token}`: the result file a signed link names (see [`crate::links`]); 403 for a forged link, 410 for an
/// expired one, 404 once the janitor removed the task's folder. `secret` is the key material shared with the bot.
/// A file that is not on this machine but in the shared store (`shared`) is answered with a redirect to a presigned
/// link of the store, valid an hour.
pub fn downloads(
    data_dir: std::path::PathBuf,
    secret: Vec<u8>,
    shared: Option<crate::storage::Storage>,
) -> Router {
    let state = Arc::new((data_dir, secret, shared));
    Router::new()
        .route("/d/{token}", get(download))
        .with_state(state)
}

type Downloads = (std::path::PathBuf, Vec<u8>, Option<crate::storage::Storage>);

async fn download(
    State(s): State<Arc<Downloads>>,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> axum::response::Response {
    let (data_dir, secret, shared) = &*s;
    let (task, rel) = match crate::links::verify(secret, &token, autosub_store::now_ms()) {
        Ok(x) => x,
        Err(crate::links::LinkError::Expired) => {
            return (StatusCode::GONE, "this link has expired\n").into_response()
        }
        Err(crate::links::LinkError::Invalid) => {
            return (StatusCode::FORBIDDEN, "this link is not valid\n").into_response()
        }
    };
    let path = crate::storage::task_dir(data_dir, task).join(&rel);
    let gone = || (StatusCode::NOT_FOUND, "this file is no longer available\n").into_response();
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(_) => {
            let Some(shared) = shared else {
                return gone();
            };
            let key = crate::storage::Storage::task_key(task, &rel);
            if !matches!(shared.size(&key).await, Ok(Some(_))) {
                return gone();
            }
            return match shared
                .signed_url(&key, std::time::Duration::from_secs(3600))
                .await
            {
                Ok(Some(url)) => axum::response::Redirect::temporary(&url).into_response(),
                Ok(None) => gone(),
                Err(e) => {
                    tracing::error!(task, "presigning a download link: {e}");
                    (StatusCode::SERVICE_UNAVAILABLE, "try again in a minute\n").into_response()
                }
            };
        }
    };
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let name: String = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "result".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    match (s.store.ping().await, s.store.migrations_applied().await) {
        (Ok(()), Ok(true)) => (StatusCode::OK, "ready\n".to_owned()),
        (Ok(()), _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "database migrations are not applied\n".to_owned(),
        ),
        (Err(e), _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("database unreachable: {e}\n"),
        ),
    }
}

/// The queue's state from the database (the same from every process), then this process's own series.
async fn metrics_text(State(s): State<AppState>) -> impl IntoResponse {
    if let Ok(depth) = s.store.queue_depth().await {
        for (tier, n) in depth {
            metrics::gauge!("autosub_queue_depth", "tier" => tier.as_str()).set(n as f64);
        }
    }
    if let Ok(counts) = s.store.status_counts().await {
        // Every status and tier is set, so that a status that emptied goes to 0 instead of keeping its last value.
        for status in [
            "created",
            "queued",
            "processing",
            "completed",
            "failed",
            "cancelled",
        ] {
            for tier in Tier::ALL {
                let n = counts
                    .iter()
                    .find(|(st, t, _)| st == status && *t == tier)
                    .map_or(0, |x| x.2);
                metrics::gauge!("autosub_tasks", "status" => status, "tier" => tier.as_str())
                    .set(n as f64);
            }
        }
    }
    if let Ok(n) = s.store.processing_count().await {
        metrics::gauge!("autosub_tasks_processing").set(n as f64);
    }
    if let Some(st) = &s.stats {
        metrics::gauge!("autosub_worker_busy_slots")
            .set(st.busy.load(std::sync::atomic::Ordering::SeqCst) as f64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

/// Serves `router` on `addr` until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_on(listener, router, shutdown).await
}

/// Serves `router` on a bound `listener` (bind first to report a taken address before anything starts).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!("HTTP server on http://{}", listener.local_addr()?);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
