//! Liveness and readiness, for load balancers and orchestrators. No token needed.

use crate::AppState;
use crate::problem::ApiError;
use axum::Json;
use axum::extract::State;
use domain::PortError;
use serde_json::{Value, json};
use std::time::Duration;

/// A backend that takes longer than this to answer a ping is not ready.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match tokio::time::timeout(READY_TIMEOUT, state.backend.ready()).await {
        Ok(Ok(())) => Ok(Json(json!({ "status": "ok" }))),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(PortError::Unavailable(format!("no answer within {READY_TIMEOUT:?}")).into()),
    }
}
