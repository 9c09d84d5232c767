//! Status documents: what a client polls after a 202, with an optional long poll that
//! the store ends when the status turns terminal (`RequestStore::wait_terminal`), capped
//! at `USHER_MAX_WAITERS` at once. Customers see only their own requests; one they may
//! not see reads as absent.

use super::{PathId, QueryParams, invalid_query};
use crate::AppState;
use crate::auth::Caller;
use crate::openapi::{BackendUnavailable, Unauthorized};
use crate::problem::{ApiError, Problem};
use axum::Json;
use axum::extract::State;
use domain::ids::RequestId;
use domain::request::{RequestRecord, StatusDoc};
use serde::Deserialize;
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(request_status))
}

/// The longest `?wait=` a client may ask for, in seconds.
pub const MAX_WAIT_SECS: u64 = 20;

/// The status document of an admitted command: `{request_id, kind, status, result?, error?,
/// created_at, updated_at}`. Customers see only their own requests.
#[utoipa::path(
    get,
    path = "/v1/requests/{request_id}",
    tag = "reads",
    security(("bearer" = [])),
    params(
        ("request_id" = String, Path, description = "From the 202 answer of a command.", max_length = 255, pattern = "^[!-~]{1,255}$"),
        WaitParams,
    ),
    responses(
        (status = 200, description = "The status document, terminal or as of the end of the wait.", body = StatusDoc),
        (status = 400, description = "`invalid_path` (an id not 1 to 255 visible ASCII characters); `invalid_query` (`wait` not a whole \
            number from 0 to 20; `field` is `wait`).", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = Unauthorized),
        (
            status = 404,
            description = "`request_not_found`: no such request, or not the caller's.",
            body = Problem,
            content_type = "application/problem+json"
        ),
        (status = 503, response = BackendUnavailable),
    )
)]
pub async fn request_status(
    State(state): State<AppState>,
    caller: Caller,
    PathId(request_id): PathId,
    QueryParams(params): QueryParams<WaitParams>,
) -> Result<Json<StatusDoc>, ApiError> {
    let wait = params.wait()?;
    let request_id = RequestId::from(request_id);
    let doc = visible_request(&state, &caller, &request_id).await?.doc;
    if doc.status.is_terminal() || wait.is_zero() {
        return Ok(Json(doc));
    }
    // Past `USHER_MAX_WAITERS` concurrent long polls, answer what is known at once.
    let Ok(_permit) = state.waiters.clone().try_acquire_owned() else {
        tracing::debug!(request_id = %request_id, "long poll refused: too many waiters");
        return Ok(Json(doc));
    };
    tokio::select! {
        waited = state.backend.requests.wait_terminal(&request_id, wait) => match waited? {
            Some(record) => Ok(Json(record.doc)),
            None => Err(ApiError::not_found("request_not_found", format!("no request {request_id}"))),
        },
        // A long poll must not hold a graceful shutdown up: answer what is known.
        () = state.shutdown.cancelled() => Ok(Json(visible_request(&state, &caller, &request_id).await?.doc)),
    }
}

async fn visible_request(state: &AppState, caller: &Caller, id: &RequestId) -> Result<RequestRecord, ApiError> {
    match state.backend.requests.get(id).await? {
        Some(record) if caller.may_read(&record.owner) => Ok(record),
        _ => Err(ApiError::not_found("request_not_found", format!("no request {id}"))),
    }
}

/// `?wait=SECONDS`. Other parameters are ignored, as they always were here.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitParams {
    /// Seconds (0 to 20, default 0) to hold the answer until the status is terminal
    /// (`succeeded`, `failed`, `dead_lettered`).
    #[param(minimum = 0, maximum = 20)]
    wait: Option<u64>,
}

impl WaitParams {
    /// A whole number of seconds from 0 to [`MAX_WAIT_SECS`]; absent means no wait.
    fn wait(&self) -> Result<Duration, ApiError> {
        match self.wait {
            None => Ok(Duration::ZERO),
            Some(secs) if secs <= MAX_WAIT_SECS => Ok(Duration::from_secs(secs)),
            Some(secs) => Err(invalid_query("wait", format!("must be from 0 to {MAX_WAIT_SECS} seconds, got {secs}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(q: &str) -> Result<Duration, ApiError> {
        QueryParams::<WaitParams>::parse(q.trim_start_matches('?'))?.0.wait()
    }

    #[test]
    fn wait_is_zero_to_twenty_whole_seconds() {
        assert_eq!(wait("").unwrap(), Duration::ZERO);
        assert_eq!(wait("?wait=0").unwrap(), Duration::ZERO);
        assert_eq!(wait("?other=1&wait=20").unwrap(), Duration::from_secs(20));
        for bad in ["?wait=21", "?wait=-1", "?wait=1.5", "?wait=soon", "?wait="] {
            match wait(bad) {
                Err(ApiError::InvalidQuery { field, .. }) => {
                    assert_eq!(field.as_deref(), Some("wait"))
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
