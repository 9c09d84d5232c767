//! The four ticket commands, admitted like every command through
//! [`crate::idempotency::admit`]: open, assign, move and comment.

use super::super::{PathId, check_id};
use crate::AppState;
use crate::auth::{Caller, Staff};
use crate::idempotency::{self, CommandRequest, IdempotencyKeyHeader};
use crate::json::JsonBody;
use crate::openapi::{Accepted, CommandRejections, Forbidden};
use crate::problem::{ApiError, Problem};
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use domain::command::Command;
use domain::error::FieldError;
use domain::ids::{TicketId, UserId};
use domain::ticket::{self, Priority, TicketStatus};
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    /// 1 to 200 characters, not all blank.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]",
        example = "The printer is on fire"
    )]
    subject: String,
    /// 1 to 10 000 characters, not all blank.
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = "[^\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]",
        example = "Smoke since 9am, second floor."
    )]
    description: String,
    /// `normal` when left out.
    #[serde(default = "normal")]
    #[schema(default = "normal")]
    priority: Priority,
}

fn normal() -> Priority {
    Priority::Normal
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentBody {
    /// A user registered with `POST /v1/agents` or seen with an `agent` token
    /// (`not_an_agent` otherwise).
    #[schema(min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$", example = "ann")]
    agent_id: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    to: TicketStatus,
    /// A public comment added with the move (after it), 1 to 10 000 characters.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = "[^\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]",
        required = false
    )]
    comment: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    /// 1 to 10 000 characters, not all blank.
    #[schema(
        min_length = 1,
        max_length = 10000,
        pattern = "[^\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]",
        example = "Is it plugged in?"
    )]
    body: String,
    /// Public unless said otherwise, as in Zendesk; `false` is an internal note, for
    /// agents and admins only.
    #[serde(default = "public")]
    #[schema(default = true)]
    public: bool,
}

fn public() -> bool {
    true
}
fn field(e: FieldError) -> ApiError {
    ApiError::invalid_field(e.field, e.reason)
}

async fn admit(
    state: &AppState,
    caller: Caller,
    key: IdempotencyKeyHeader,
    uri: &Uri,
    body: serde_json::Value,
    command: Command,
) -> Result<Response, ApiError> {
    let request = CommandRequest { caller, key: key.0, path: uri.path().to_owned(), body, command };
    idempotency::admit(state, request).await
}
/// Opens a ticket with the caller as its requester (any role). Result: `{ticket_id}`; it
/// starts `new` and emits `usher.ticket.created`.
#[utoipa::path(
    post,
    path = "/v1/tickets",
    tag = "commands",
    security(("bearer" = [])),
    params(IdempotencyKeyHeader),
    request_body = NewTicket,
    responses(
        (status = 202, response = Accepted),
        (
            status = 400,
            description = "`idempotency_key_missing` or `idempotency_key_invalid` (the header); `invalid_body`: not JSON, or a field missing, unknown, mistyped or out of range \
                (`subject` 1 to 200, `description` 1 to 10 000 characters, `priority` one of low, normal, high, \
                urgent); `field` names it.",
            body = Problem,
            content_type = "application/problem+json"
        ),
        CommandRejections,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKeyHeader,
    uri: Uri,
    body: JsonBody<NewTicket>,
) -> Result<Response, ApiError> {
    let NewTicket { subject, description, priority } = body.value;
    ticket::validate_subject(&subject).map_err(field)?;
    ticket::validate_text("description", &description).map_err(field)?;
    let command = Command::CreateTicket { subject, description, priority };
    admit(&state, caller, key, &uri, body.raw, command).await
}

/// Assigns a ticket to an agent (agents and admins only); assigning a `new` ticket opens it.
/// Result: `{ticket_id, assignee}`; business failures `ticket_not_found`, `not_an_agent`,
/// `ticket_closed`.
#[utoipa::path(
    post,
    path = "/v1/tickets/{ticket_id}/assignments",
    tag = "commands",
    security(("bearer" = [])),
    params(
        IdempotencyKeyHeader,
        ("ticket_id" = String, Path, description = "The ticket, from the result of `POST /v1/tickets`.", max_length = 255, pattern = "^[!-~]{1,255}$"),
    ),
    request_body = AssignmentBody,
    responses(
        (status = 202, response = Accepted),
        (
            status = 400,
            description = "`idempotency_key_missing` or `idempotency_key_invalid` (the header); `invalid_path` (an id not 1 to 255 visible ASCII characters); \
                `invalid_body` (`agent_id` 1 to 255 characters); `field` names it.",
            body = Problem,
            content_type = "application/problem+json"
        ),
        (status = 403, response = Forbidden),
        CommandRejections,
    )
)]
pub async fn assign(
    State(state): State<AppState>,
    Staff(caller): Staff,
    key: IdempotencyKeyHeader,
    PathId(ticket_id): PathId,
    uri: Uri,
    body: JsonBody<AssignmentBody>,
) -> Result<Response, ApiError> {
    check_id("agent_id", &body.value.agent_id)?;
    let command =
        Command::AssignTicket { ticket_id: TicketId::from(ticket_id), agent_id: UserId::new(body.value.agent_id) };
    admit(&state, caller, key, &uri, body.raw, command).await
}

/// Moves a ticket to another status, Zendesk's way: nothing returns to `new`, `solved` needs
/// an assignee, only a solved ticket closes, `closed` is final. A customer may only reopen
/// (`open`) their own solved ticket (403 for any other `to`). Result: `{ticket_id, status,
/// comment_id?}`; business failures `invalid_transition` (with `from` and `to`),
/// `ticket_closed`, `ticket_not_found`, `comment_limit_reached` (a comment on a ticket that
/// has 200).
#[utoipa::path(
    post,
    path = "/v1/tickets/{ticket_id}/transitions",
    tag = "commands",
    security(("bearer" = [])),
    params(
        IdempotencyKeyHeader,
        ("ticket_id" = String, Path, description = "The ticket, from the result of `POST /v1/tickets`.", max_length = 255, pattern = "^[!-~]{1,255}$"),
    ),
    request_body = TransitionBody,
    responses(
        (status = 202, response = Accepted),
        (
            status = 400,
            description = "`idempotency_key_missing` or `idempotency_key_invalid` (the header); `invalid_path` (an id not 1 to 255 visible ASCII characters); \
                `invalid_body` (`to` one of open, pending, on_hold, solved, closed, new; `comment` 1 to 10 000 \
                characters); `field` names it.",
            body = Problem,
            content_type = "application/problem+json"
        ),
        (status = 403, response = Forbidden),
        CommandRejections,
    )
)]
pub async fn transition(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKeyHeader,
    PathId(ticket_id): PathId,
    uri: Uri,
    body: JsonBody<TransitionBody>,
) -> Result<Response, ApiError> {
    let TransitionBody { to, comment } = body.value;
    if !ticket::may_ask_to_move(caller.role, to) {
        return Err(ApiError::Forbidden("agent or admin"));
    }
    if let Some(comment) = &comment {
        ticket::validate_text("comment", comment).map_err(field)?;
    }
    let command = Command::TransitionTicket { ticket_id: TicketId::from(ticket_id), to, comment };
    admit(&state, caller, key, &uri, body.raw, command).await
}

/// Comments on a ticket: customers on their own, publicly (a customer's comment reopens a
/// `pending`, `on_hold` or `solved` ticket); agents and admins on any, internal notes too
/// (403 for a customer's `public: false`). Result: `{ticket_id, comment_id}`; business
/// failures `ticket_closed`, `ticket_not_found`, `comment_limit_reached` (the ticket has
/// 200 comments, with `max_comments`).
#[utoipa::path(
    post,
    path = "/v1/tickets/{ticket_id}/comments",
    tag = "commands",
    security(("bearer" = [])),
    params(
        IdempotencyKeyHeader,
        ("ticket_id" = String, Path, description = "The ticket, from the result of `POST /v1/tickets`.", max_length = 255, pattern = "^[!-~]{1,255}$"),
    ),
    request_body = CommentBody,
    responses(
        (status = 202, response = Accepted),
        (
            status = 400,
            description = "`idempotency_key_missing` or `idempotency_key_invalid` (the header); `invalid_path` (an id not 1 to 255 visible ASCII characters); \
                `invalid_body` (`body` 1 to 10 000 characters, `public` a boolean); `field` names it.",
            body = Problem,
            content_type = "application/problem+json"
        ),
        (status = 403, response = Forbidden),
        CommandRejections,
    )
)]
pub async fn comment(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKeyHeader,
    PathId(ticket_id): PathId,
    uri: Uri,
    body: JsonBody<CommentBody>,
) -> Result<Response, ApiError> {
    let CommentBody { body: text, public } = body.value;
    if !ticket::may_comment(caller.role, public) {
        return Err(ApiError::Forbidden("agent or admin"));
    }
    ticket::validate_text("body", &text).map_err(field)?;
    let command = Command::CommentTicket { ticket_id: TicketId::from(ticket_id), body: text, public };
    admit(&state, caller, key, &uri, body.raw, command).await
}
