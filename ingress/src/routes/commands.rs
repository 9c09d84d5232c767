//! The booking commands. Each handler only authenticates, checks the key, validates the
//! body and builds the command; [`crate::idempotency::admit`] does the rest.

use super::PathId;
use crate::AppState;
use crate::auth::Caller;
use crate::idempotency::{self, CommandRequest, IdempotencyKeyHeader};
use crate::json::JsonBody;
use crate::problem::ApiError;
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use domain::booking;
use domain::command::Command;
use domain::ids::{HoldId, ShowId};

/// Longest id a client may send in a body; ids Usher makes are far shorter.
const MAX_ID_LEN: usize = 255;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceHoldBody {
    show_id: String,
    seat_ids: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseHoldBody {}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBookingBody {
    hold_id: String,
    payment_token: String,
}

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

fn check_id(field: &'static str, id: &str) -> Result<(), ApiError> {
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
