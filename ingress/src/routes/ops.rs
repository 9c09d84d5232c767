//! What operators and orchestrators read, with no token: liveness, readiness, the
//! Prometheus metrics and this API's OpenAPI document.

use crate::openapi::BackendUnavailable;
use crate::problem::ApiError;
use crate::{AppState, metrics, openapi};
use axum::Json;
use axum::extract::State;
use domain::PortError;
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
    match tokio::time::timeout(READY_TIMEOUT, state.backend.ready()).await {
        Ok(Ok(())) => Ok(Json(OK)),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(PortError::Unavailable(format!("no answer within {READY_TIMEOUT:?}")).into()),
    }
}
