//! Bookings: confirming a hold with a sandbox card (a command), and reading a booking.

use super::{PathId, check_id};
use crate::AppState;
use crate::auth::Caller;
use crate::idempotency::{self, CommandRequest, IdempotencyKeyHeader};
use crate::json::JsonBody;
use crate::openapi::{Accepted, CommandRejections, ReadRejections};
use crate::problem::{ApiError, Problem};
use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use domain::booking::Booking;
use domain::command::Command;
use domain::ids::{BookingId, HoldId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(confirm_booking)).routes(routes!(booking))
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBookingBody {
    /// A live hold of the caller's.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]{1,255}$",
        example = "hold_0193a1b2c3d47e8f9a0b1c2d3e4f5a6b"
    )]
    hold_id: String,
    /// A sandbox card token: `tok_visa` pays, `tok_decline` is declined (`payment_declined`),
    /// `tok_unavailable` is a provider outage (retried, then dead-lettered).
    #[schema(pattern = "^tok_[A-Za-z0-9_]{1,64}$", example = "tok_visa")]
    payment_token: String,
}

/// Pays for a hold and books its seats. Result: `{booking_id, show_id, seat_ids, amount_cents}`;
/// business failures `hold_not_found`, `hold_expired`, `payment_declined`.
#[utoipa::path(
    post,
    path = "/v1/bookings",
    tag = "commands",
    security(("bearer" = [])),
    params(IdempotencyKeyHeader),
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
        CommandRejections,
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

/// A booking. Customers see only their own.
#[utoipa::path(
    get,
    path = "/v1/bookings/{booking_id}",
    operation_id = "get_booking",
    tag = "reads",
    security(("bearer" = [])),
    params(("booking_id" = String, Path, description = "From the result of `POST /v1/bookings`.", max_length = 255, pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 200, description = "The booking.", body = Booking),
        (
            status = 404,
            description = "`booking_not_found`: no such booking, or not the caller's.",
            body = Problem,
            content_type = "application/problem+json"
        ),
        ReadRejections,
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
