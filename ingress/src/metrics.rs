//! Prometheus metrics at `/metrics` (no token): HTTP requests by route and status here,
//! and whatever the rest of the process records (the workers' lag and message counts).
//! One recorder per process, installed the first time it is asked for.

use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder on first use. `None` if another one was installed
/// first (then metrics go there, and `/metrics` is empty).
pub fn install() -> Option<&'static PrometheusHandle> {
    RECORDER.get_or_init(|| PrometheusBuilder::new().install_recorder().ok()).as_ref()
}

/// Prometheus metrics, no token.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    responses((
        status = 200,
        description = "Prometheus text exposition (0.0.4): `usher_http_requests_total`, \
            `usher_http_request_duration_seconds` and, where workers run, their lag and message counts.",
        body = String,
        content_type = "text/plain; version=0.0.4"
    ))
)]
pub async fn render() -> impl IntoResponse {
    let body = install().map(PrometheusHandle::render).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// Counts and times every request to a known route.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("usher_http_requests_total", &labels).increment(1);
    metrics::histogram!("usher_http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}
