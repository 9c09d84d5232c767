//! The booking commands. Each handler only authenticates, checks the key, validates the
//! body and builds the command; [`crate::idempotency::admit`] does the rest.

use super::PathId;
use crate::AppState;
use crate::auth::Caller;
use crate::idempotency::{self, CommandRequest, IdempotencyKeyHeader};
use crate::json::JsonBody;
use crate::openapi::{
    Accepted, BackendUnavailable, IdempotencyKeyReused, IdempotencyRequestInProgress, PayloadTooLarge, Unauthorized,
};
use crate::problem::{ApiError, Problem};
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use domain::booking;
use domain::command::Command;
use domain::ids::{HoldId, ShowId};

/// Longest id a client may send in a body; ids Usher makes are far shorter.
const MAX_ID_LEN: usize = 255;

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceHoldBody {
    #[schema(min_length = 1, max_length = 255, example = "show_0193a1b2c3d47e8f9a0b1c2d3e4f5a6b")]
    show_id: String,
    /// 1 to 10 distinct seats, all or nothing.
    #[schema(min_items = 1, max_items = 10, example = json!(["A1", "A2"]))]
    seat_ids: Vec<String>,
}

/// `{}` (an empty body reads as `{}` too).
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseHoldBody {}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBookingBody {
    /// A live hold of the caller's.
    #[schema(min_length = 1, max_length = 255, example = "hold_0193a1b2c3d47e8f9a0b1c2d3e4f5a6b")]
    hold_id: String,
    /// A sandbox card token: `tok_visa` pays, `tok_decline` is declined (`payment_declined`),
    /// `tok_unavailable` is a provider outage (retried, then dead-lettered).
    #[schema(pattern = "^tok_[A-Za-z0-9_]{1,64}$", example = "tok_visa")]
    payment_token: String,
}

/// Holds 1 to 10 seats of a show for `USHER_HOLD_TTL` (10 min). Result: `{hold_id, show_id, seat_ids,
/// expires_at}`; business failures `seats_unavailable` (with the seat ids), `show_not_found`, `seat_not_found`.
#[utoipa::path(
    post,
    path = "/v1/holds",
    tag = "commands",
    security(("bearer" = [])),
    params(
        (
            "Idempotency-Key" = String,
            Header,
            description = "Required on every command: 1 to 255 visible ASCII characters, scoped to the caller and \
                kept 24 h. The same key with the same method, path and JSON body (compared canonically) answers \
                the first response again, marked `Idempotent-Replayed: true`, and admits nothing twice.",
            min_length = 1,
            max_length = 255,
            pattern = "^[!-~]{1,255}$",
            example = "5f0c7a52-hold-A1-A2"
        ),
    ),
    request_body = PlaceHoldBody,
    responses(
        (status = 202, response = Accepted),
        (
            status = 400,
            description = "`idempotency_key_missing` or `idempotency_key_invalid` (the header); `invalid_body`: not \
                JSON, or a field missing, unknown, mistyped or out of range (1 to 10 distinct seat ids); \
                `field` names it.",
            body = Problem,
            content_type = "application/problem+json"
        ),
        (status = 401, response = Unauthorized),
        (status = 409, response = IdempotencyRequestInProgress),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = IdempotencyKeyReused),
        (status = 503, response = BackendUnavailable),
    )
)]
pub async fn place_hold(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    uri: Uri,
    body: JsonBody<PlaceHoldBody>,
) -> Result<Response, ApiError> {
    let PlaceHoldBody { show_id, seat_ids } = &body.value;
    check_id("show_id", show_id)?;
    let seat_ids = booking::validate_seat_request(seat_ids).map_err(|e| ApiError::invalid_field("seat_ids", e))?;
    let command = Command::PlaceHold { show_id: ShowId::from(show_id.as_str()), seat_ids };
    idempotency::admit(&state, CommandRequest { caller, key, path: uri.path().to_owned(), body: body.raw, command })
        .await
}

/// Releases a live hold of the caller's. Result: `{hold_id}`; business failure `hold_not_found`.
#[utoipa::path(
    post,
    path = "/v1/holds/{hold_id}/release",
    tag = "commands",
    security(("bearer" = [])),
    params(
        (
            "Idempotency-Key" = String,
            Header,
            description = "Required on every command: 1 to 255 visible ASCII characters, scoped to the caller and \
                kept 24 h. The same key with the same method, path and JSON body (compared canonically) answers \
                the first response again, marked `Idempotent-Replayed: true`, and admits nothing twice.",
            min_length = 1,
            max_length = 255,
            pattern = "^[!-~]{1,255}$",
            example = "5f0c7a52-hold-A1-A2"
        ),
        ("hold_id" = String, Path, description = "The hold, from the result of `POST /v1/holds`.", max_length = 255),
    ),
    request_body = ReleaseHoldBody,
    responses(
        (status = 202, response = Accepted),
        (
            status = 400,
            description = "`idempotency_key_missing` or `idempotency_key_invalid` (the header); `invalid_path` (an id \
                over 255 bytes); `invalid_body`: not JSON or not `{}`.",
            body = Problem,
            content_type = "application/problem+json"
        ),
        (status = 401, response = Unauthorized),
        (status = 409, response = IdempotencyRequestInProgress),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = IdempotencyKeyReused),
        (status = 503, response = BackendUnavailable),
    )
)]
pub async fn release_hold(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    PathId(hold_id): PathId,
    uri: Uri,
    body: JsonBody<ReleaseHoldBody>,
) -> Result<Response, ApiError> {
    let command = Command::ReleaseHold { hold_id: HoldId::from(hold_id) };
    idempotency::admit(&state, CommandRequest { caller, key, path: uri.path().to_owned(), body: body.raw, command })
        .await
}

/// Pays for a hold and books its seats. Result: `{booking_id, show_id, seat_ids, amount_cents}`;
/// business failures `hold_not_found`, `hold_expired`, `payment_declined`.
#[utoipa::path(
    post,
    path = "/v1/bookings",
    tag = "commands",
    security(("bearer" = [])),
    params(
        (
            "Idempotency-Key" = String,
            Header,
            description = "Required on every command: 1 to 255 visible ASCII characters, scoped to the caller and \
                kept 24 h. The same key with the same method, path and JSON body (compared canonically) answers \
                the first response again, marked `Idempotent-Replayed: true`, and admits nothing twice.",
            min_length = 1,
            max_length = 255,
            pattern = "^[!-~]{1,255}$",
            example = "5f0c7a52-hold-A1-A2"
        ),
    ),
    request_body = ConfirmBookingBody,
    responses(
        (status = 202, response = Accepted),
        (
            status = 400,
            description = "`idempotency_key_missing` or `idempotency_key_invalid` (the header); `invalid_body`: not \
                JSON, or a field missing, unknown, mistyped or malformed (`payment_token` must be `tok_` and \
                1 to 64 letters, digits or `_`); `field` names it.",
            body = Problem,
            content_type = "application/problem+json"
        ),
        (status = 401, response = Unauthorized),
        (status = 409, response = IdempotencyRequestInProgress),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = IdempotencyKeyReused),
        (status = 503, response = BackendUnavailable),
    )
)]
pub async fn confirm_booking(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    uri: Uri,
    body: JsonBody<ConfirmBookingBody>,
) -> Result<Response, ApiError> {
    let ConfirmBookingBody { hold_id, payment_token } = &body.value;
    check_id("hold_id", hold_id)?;
    check_payment_token(payment_token)?;
    let command =
        Command::ConfirmBooking { hold_id: HoldId::from(hold_id.as_str()), payment_token: payment_token.clone() };
    idempotency::admit(&state, CommandRequest { caller, key, path: uri.path().to_owned(), body: body.raw, command })
        .await
}

pub(crate) fn check_id(field: &'static str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(field, format!("must be 1 to {MAX_ID_LEN} characters, none a control")));
    }
    Ok(())
}

/// A sandbox card token: `tok_` and 1 to 64 letters, digits or underscores.
fn check_payment_token(token: &str) -> Result<(), ApiError> {
    let valid = token.strip_prefix("tok_").is_some_and(|rest| {
        (1..=64).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    });
    if !valid {
        return Err(ApiError::invalid_field(
            "payment_token",
            "must be `tok_` followed by 1 to 64 letters, digits or `_`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_tokens_look_like_sandbox_tokens() {
        for ok in ["tok_visa", "tok_decline", "tok_unavailable", "tok_A_1", &format!("tok_{}", "x".repeat(64))] {
            assert!(check_payment_token(ok).is_ok(), "{ok}");
        }
        for bad in ["", "tok_", "visa", "tok-visa", "tok_vi sa", "tok_é", &format!("tok_{}", "x".repeat(65))] {
            assert!(check_payment_token(bad).is_err(), "{bad}");
        }
    }
}
