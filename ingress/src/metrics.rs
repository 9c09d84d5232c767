//! Prometheus metrics at `/metrics` (no token): HTTP requests by route and status here,
//! and whatever the rest of the process records (queue gauges, message outcomes, handler
//! durations, the outbox, business counters: docs/contract.md §6). One recorder per
//! process, installed the first time it is asked for. Durations (`*_seconds` histograms)
//! are Prometheus histograms with [`BUCKETS`] (the embedded store's with
//! [`STORE_BUCKETS`]), so they aggregate across instances.

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Bucket bounds of every `*_seconds` histogram: from a fast read (5 ms) to a slow
/// handler (10 s), with 0.5 s (the p95 alert's threshold) a bound of its own.
pub const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Bucket bounds of the embedded store's histograms (`usher_store_*_seconds`): a commit,
/// a sync or a write's wait for the writer takes from a tenth of a millisecond to a few,
/// and a second means the writer or the disk has stalled.
pub const STORE_BUCKETS: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

/// Installs the process-wide recorder on first use. `None` if another one was installed
/// first (then metrics go there, and `/metrics` is empty).
pub fn install() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &BUCKETS)
                .ok()?
                // A prefix matcher is tried before a suffix one.
                .set_buckets_for_metric(Matcher::Prefix("usher_store_".to_owned()), &STORE_BUCKETS)
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

/// Prometheus metrics, no token.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    responses((
        status = 200,
        description = "Prometheus text exposition (0.0.4): `usher_http_requests_total`, the histogram \
            `usher_http_request_duration_seconds`, the queue and DLQ gauges and, where workers run, message \
            outcomes, handler durations, the outbox backlog and business counters (docs/contract.md §6).",
        body = String,
        content_type = "text/plain; version=0.0.4"
    ))
)]
pub async fn render() -> impl IntoResponse {
    let body = install().map(PrometheusHandle::render).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// Counts and times every request, by its route's path pattern (a wrong method too), or
/// as `unmatched` when no route has its path.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = method_label(request.method()).to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route)];
    metrics::histogram!("usher_http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    let [method, route] = labels;
    metrics::counter!("usher_http_requests_total", &[method, route, ("status", status)]).increment(1);
    response
}

/// Registers the HTTP series of a scrape at zero, for a worker-only process whose
/// listener serves nothing but `/metrics` and `/health/*`: a request is counted once it is
/// answered, so without this its first scrape would show no HTTP series at all.
pub(crate) fn register_scrape_series() {
    let labels = [("method", "GET"), ("route", "/metrics")];
    let _ = metrics::histogram!("usher_http_request_duration_seconds", &labels);
    let [method, route] = labels;
    metrics::counter!("usher_http_requests_total", &[method, route, ("status", "200")]).increment(0);
}

/// The methods HTTP defines; any other is counted as `OTHER`.
static STANDARD_METHODS: [Method; 9] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::HEAD,
    Method::OPTIONS,
    Method::CONNECT,
    Method::TRACE,
];

/// The `method` label of a request: its method's name if HTTP defines it, else `OTHER`. A
/// client may send any token as a method (`FOO1`, `FOO2`, …), and every distinct label
/// value would be a new series kept for the life of the process.
fn method_label(method: &Method) -> &'static str {
    STANDARD_METHODS.iter().find(|standard| *standard == method).map_or("OTHER", Method::as_str)
}
