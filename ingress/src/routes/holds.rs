//! Holds: placing one on 1 to 10 seats, and releasing it. Both are commands: each handler
//! only authenticates, checks the key, validates the body and builds the command;
//! [`crate::idempotency::admit`] does the rest.

use super::{PathId, check_id};
use crate::AppState;
use crate::auth::Caller;
use crate::idempotency::{self, CommandRequest, IdempotencyKeyHeader};
use crate::json::JsonBody;
use crate::openapi::{Accepted, CommandRejections};
use crate::problem::{ApiError, Problem};
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use domain::booking;
use domain::command::Command;
use domain::ids::{HoldId, ShowId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(place_hold)).routes(routes!(release_hold))
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceHoldBody {
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]{1,255}$",
        example = "show_0193a1b2c3d47e8f9a0b1c2d3e4f5a6b"
    )]
    show_id: String,
    #[schema(schema_with = seat_ids_schema)]
    seat_ids: Vec<String>,
}

/// `seat_ids`: 1 to 10 distinct seat ids (1 to 8 letters and digits, e.g. `A1`).
fn seat_ids_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let seat = ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[A-Za-z0-9]{1,8}$"));
    ArrayBuilder::new()
        .items(seat)
        .min_items(Some(1))
        .max_items(Some(booking::MAX_SEATS_PER_HOLD))
        .unique_items(true)
        .description(Some("1 to 10 distinct seats, all or nothing."))
        .examples([serde_json::json!(["A1", "A2"])])
        .build()
}

/// `{}` (an empty body, or `null`, reads as `{}` too).
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseHoldBody {}

/// Holds 1 to 10 seats of a show for `USHER_HOLD_TTL` (10 min). Result: `{hold_id, show_id, seat_ids,
/// expires_at}`; business failures `seats_unavailable` (with the seat ids), `show_not_found`, `seat_not_found`.
#[utoipa::path(
    post,
    path = "/v1/holds",
    tag = "commands",
    security(("bearer" = [])),
    params(IdempotencyKeyHeader),
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
        CommandRejections,
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
        IdempotencyKeyHeader,
        ("hold_id" = String, Path, description = "The hold, from the result of `POST /v1/holds`.", max_length = 255, pattern = "^[!-~]{1,255}$"),
    ),
    request_body(content = Option<ReleaseHoldBody>, description = "`{}`, `null`, or no body at all."),
    responses(
        (status = 202, response = Accepted),
        (
            status = 400,
            description = "`idempotency_key_missing` or `idempotency_key_invalid` (the header); `invalid_path` (an id \
                not 1 to 255 visible ASCII characters); `invalid_body`: not JSON or not `{}`.",
            body = Problem,
            content_type = "application/problem+json"
        ),
        CommandRejections,
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
