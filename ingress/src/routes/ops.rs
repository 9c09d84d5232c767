//! What operators and orchestrators read: with no token, liveness, readiness, the
//! Prometheus metrics and this API's OpenAPI document; with an admin token, the status of
//! every queue and of the outbox (`GET /v1/admin/status`, what `usher status` prints).

use crate::auth::Admin;
use crate::openapi::{BackendUnavailable, Forbidden, Unauthorized};
use crate::problem::ApiError;
use crate::{AppState, metrics, openapi};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use domain::PortError;
use infra::Backend;
use infra::status::Status;
use serde::Serialize;
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
        .routes(routes!(metrics::render))
        .routes(routes!(openapi::document))
        .routes(routes!(admin_status))
}

/// Health and metrics alone, on a backend: what a worker-only process serves.
pub(crate) fn operations(backend: Backend) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(|State(backend): State<Backend>| async move { check_ready(&backend).await }))
        .route("/metrics", get(metrics::render))
        .route_layer(axum::middleware::from_fn(metrics::track))
        .with_state(backend)
}

/// Every queue (visible, in flight, oldest age, DLQ depth) and the outbox backlog.
#[utoipa::path(
    get,
    path = "/v1/admin/status",
    operation_id = "admin_status",
    tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every queue and the outbox backlog, as `usher status --json` prints them. \
            `oldest_age_seconds` is null when nothing waits, and on AWS for queues this process does not consume \
            (SQS has no attribute for it).", body = Status),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = BackendUnavailable),
    )
)]
pub async fn admin_status(State(state): State<AppState>, _admin: Admin) -> Result<Json<Status>, ApiError> {
    Ok(Json(infra::status::gather(&state.backend).await?))
}

/// A backend that takes longer than this to answer a ping is not ready.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// `{"status": "ok"}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
}

const OK: Health = Health { status: "ok" };

/// Liveness: answers while the process runs.
#[utoipa::path(
    get,
    path = "/health/live",
    operation_id = "health_live",
    tag = "operations",
    responses((status = 200, description = "The process runs.", body = Health))
)]
pub async fn live() -> Json<Health> {
    Json(OK)
}

/// Readiness: whether the backend answers a ping within 5 s.
#[utoipa::path(
    get,
    path = "/health/ready",
    operation_id = "health_ready",
    tag = "operations",
    responses(
        (status = 200, description = "The backend answers.", body = Health),
        (status = 503, response = BackendUnavailable),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    check_ready(&state.backend).await
}

async fn check_ready(backend: &Backend) -> Result<Json<Health>, ApiError> {
    match tokio::time::timeout(READY_TIMEOUT, backend.ready()).await {
        Ok(Ok(())) => Ok(Json(OK)),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(PortError::Unavailable(format!("no answer within {READY_TIMEOUT:?}")).into()),
    }
}
