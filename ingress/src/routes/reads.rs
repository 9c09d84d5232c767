//! Reads of what commands produced: status documents (with an optional long poll) and
//! bookings. Customers see only their own; a resource they may not see reads as absent.

use super::PathId;
use crate::AppState;
use crate::auth::Caller;
use crate::openapi::{BackendUnavailable, Unauthorized};
use crate::problem::{ApiError, Problem};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::Uri;
use domain::booking::Booking;
use domain::ids::{BookingId, RequestId};
use domain::request::{RequestRecord, StatusDoc};
use std::time::Duration;
use tokio::time::Instant;

/// The longest `?wait=` a client may ask for, in seconds.
pub const MAX_WAIT_SECS: u64 = 20;
const FIRST_POLL: Duration = Duration::from_millis(25);
const LONGEST_POLL: Duration = Duration::from_millis(200);

/// The status document of an admitted command: `{request_id, kind, status, result?, error?,
/// created_at, updated_at}`. Customers see only their own requests.
#[utoipa::path(
    get,
    path = "/v1/requests/{request_id}",
    tag = "reads",
    security(("bearer" = [])),
    params(
        ("request_id" = String, Path, description = "From the 202 answer of a command.", max_length = 255),
        (
            "wait" = Option<u64>,
            Query,
            description = "Seconds (0 to 20, default 0) to hold the answer until the status is terminal \
                (`succeeded`, `failed`, `dead_lettered`).",
            minimum = 0,
            maximum = 20
        ),
    ),
    responses(
        (status = 200, description = "The status document, terminal or as of the end of the wait.", body = StatusDoc),
        (status = 400, description = "`invalid_path` (an id over 255 bytes); `invalid_query` (`wait` not a whole \
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
    uri: Uri,
) -> Result<Json<StatusDoc>, ApiError> {
    let wait = wait_of(&uri)?;
    let request_id = RequestId::from(request_id);
    let deadline = Instant::now() + wait;
    let mut pause = FIRST_POLL;
    loop {
        let doc = visible_request(&state, &caller, &request_id).await?.doc;
        let left = deadline.saturating_duration_since(Instant::now());
        if doc.status.is_terminal() || left.is_zero() {
            return Ok(Json(doc));
        }
        tokio::select! {
            () = tokio::time::sleep(pause.min(left)) => {}
            // A long poll must not hold a graceful shutdown up: answer what is known.
            () = state.shutdown.cancelled() => return Ok(Json(doc)),
        }
        pause = (pause * 2).min(LONGEST_POLL);
    }
}

async fn visible_request(state: &AppState, caller: &Caller, id: &RequestId) -> Result<RequestRecord, ApiError> {
    match state.backend.requests.get(id).await? {
        Some(record) if caller.may_read(&record.owner) => Ok(record),
        _ => Err(ApiError::not_found("request_not_found", format!("no request {id}"))),
    }
}

/// `?wait=SECONDS`, a whole number from 0 to [`MAX_WAIT_SECS`]; absent means no wait.
fn wait_of(uri: &Uri) -> Result<Duration, ApiError> {
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|e| ApiError::InvalidQuery { field: None, detail: e.body_text() })?;
    let Some((_, raw)) = pairs.iter().find(|(name, _)| name == "wait") else {
        return Ok(Duration::ZERO);
    };
    match raw.trim().parse::<u64>() {
        Ok(secs) if secs <= MAX_WAIT_SECS => Ok(Duration::from_secs(secs)),
        _ => Err(ApiError::InvalidQuery {
            field: Some("wait".into()),
            detail: format!("wait: must be a whole number of seconds from 0 to {MAX_WAIT_SECS}, got {raw:?}"),
        }),
    }
}

/// A booking. Customers see only their own.
#[utoipa::path(
    get,
    path = "/v1/bookings/{booking_id}",
    operation_id = "get_booking",
    tag = "reads",
    security(("bearer" = [])),
    params(("booking_id" = String, Path, description = "From the result of `POST /v1/bookings`.", max_length = 255)),
    responses(
        (status = 200, description = "The booking.", body = Booking),
        (
            status = 400,
            description = "`invalid_path`: the id is over 255 bytes.",
            body = Problem,
            content_type = "application/problem+json"
        ),
        (status = 401, response = Unauthorized),
        (
            status = 404,
            description = "`booking_not_found`: no such booking, or not the caller's.",
            body = Problem,
            content_type = "application/problem+json"
        ),
        (status = 503, response = BackendUnavailable),
    )
)]
pub async fn booking(
    State(state): State<AppState>,
    caller: Caller,
    PathId(booking_id): PathId,
) -> Result<Json<Booking>, ApiError> {
    let booking_id = BookingId::from(booking_id);
    match state.backend.bookings.booking(&booking_id).await? {
        Some(booking) if caller.may_read(&booking.customer_id) => Ok(Json(booking)),
        _ => Err(ApiError::not_found("booking_not_found", format!("no booking {booking_id}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(q: &str) -> Result<Duration, ApiError> {
        wait_of(&format!("/v1/requests/x{q}").parse::<Uri>().unwrap())
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
