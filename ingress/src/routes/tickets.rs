//! Support tickets: the four ticket commands (admitted like every command, through
//! [`crate::idempotency::admit`]), the ticket reads, and registering agents.
//!
//! What the ingress can tell from the token alone it refuses with 403 before storing
//! anything: a customer assigning, moving a ticket anywhere but back to `open`, or
//! writing an internal comment. Whose ticket it is, and what status it is in, only the
//! worker knows: those end in the status document (`ticket_not_found`, ...).

use super::{MAX_ID_LEN, PathId, QueryParams, check_id, invalid_query};
use crate::AppState;
use crate::auth::{Admin, Caller, Staff};
use crate::idempotency::{self, CommandRequest, IdempotencyKeyHeader};
use crate::json::JsonBody;
use crate::openapi::{Accepted, BackendUnavailable, CommandRejections, Forbidden, PayloadTooLarge, Unauthorized};
use crate::problem::{ApiError, Problem};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use domain::actor::Role;
use domain::command::Command;
use domain::error::FieldError;
use domain::ids::{TicketId, UserId};
use domain::ports::TicketQuery;
use domain::ticket::{self, Priority, Ticket, TicketCursor, TicketStatus};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(ticket))
        .routes(routes!(assign))
        .routes(routes!(transition))
        .routes(routes!(comment))
        .routes(routes!(register_agent))
}

/// The page size when `limit` is not given, and the largest one allowed.
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    /// 1 to 200 characters, not all blank.
    #[schema(min_length = 1, max_length = 200, example = "The printer is on fire")]
    subject: String,
    /// 1 to 10 000 characters, not all blank.
    #[schema(min_length = 1, max_length = 10000, example = "Smoke since 9am, second floor.")]
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
    #[schema(min_length = 1, max_length = 255, example = "ann")]
    agent_id: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    to: TicketStatus,
    /// A public comment added with the move (after it), 1 to 10 000 characters.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 10000, required = false)]
    comment: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    /// 1 to 10 000 characters, not all blank.
    #[schema(min_length = 1, max_length = 10000, example = "Is it plugged in?")]
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentBody {
    #[schema(min_length = 1, max_length = 255, example = "ann")]
    agent_id: String,
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
        ("ticket_id" = String, Path, description = "The ticket, from the result of `POST /v1/tickets`.", max_length = 255),
    ),
    request_body = AssignmentBody,
    responses(
        (status = 202, response = Accepted),
        (
            status = 400,
            description = "`idempotency_key_missing` or `idempotency_key_invalid` (the header); `invalid_path` (an id over 255 bytes); \
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
/// `ticket_closed`, `ticket_not_found`.
#[utoipa::path(
    post,
    path = "/v1/tickets/{ticket_id}/transitions",
    tag = "commands",
    security(("bearer" = [])),
    params(
        IdempotencyKeyHeader,
        ("ticket_id" = String, Path, description = "The ticket, from the result of `POST /v1/tickets`.", max_length = 255),
    ),
    request_body = TransitionBody,
    responses(
        (status = 202, response = Accepted),
        (
            status = 400,
            description = "`idempotency_key_missing` or `idempotency_key_invalid` (the header); `invalid_path` (an id over 255 bytes); \
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
/// failures `ticket_closed`, `ticket_not_found`.
#[utoipa::path(
    post,
    path = "/v1/tickets/{ticket_id}/comments",
    tag = "commands",
    security(("bearer" = [])),
    params(
        IdempotencyKeyHeader,
        ("ticket_id" = String, Path, description = "The ticket, from the result of `POST /v1/tickets`.", max_length = 255),
    ),
    request_body = CommentBody,
    responses(
        (status = 202, response = Accepted),
        (
            status = 400,
            description = "`idempotency_key_missing` or `idempotency_key_invalid` (the header); `invalid_path` (an id over 255 bytes); \
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

/// A ticket with its comments and its history, oldest first. Customers read only their own,
/// without internal comments; agents and admins read every ticket whole.
#[utoipa::path(
    get,
    path = "/v1/tickets/{ticket_id}",
    operation_id = "get_ticket",
    tag = "tickets",
    security(("bearer" = [])),
    params(
        ("ticket_id" = String, Path, description = "The ticket, from the result of `POST /v1/tickets`.", max_length = 255),
    ),
    responses(
        (status = 200, description = "The ticket.", body = Ticket),
        (
            status = 400,
            description = "`invalid_path`: the id is over 255 bytes.",
            body = Problem,
            content_type = "application/problem+json"
        ),
        (status = 401, response = Unauthorized),
        (
            status = 404,
            description = "`ticket_not_found`: no such ticket, or another customer's.",
            body = Problem,
            content_type = "application/problem+json"
        ),
        (status = 503, response = BackendUnavailable),
    )
)]
pub async fn ticket(
    State(state): State<AppState>,
    caller: Caller,
    PathId(ticket_id): PathId,
) -> Result<Json<Ticket>, ApiError> {
    let ticket_id = TicketId::from(ticket_id);
    match state.backend.tickets.ticket(&ticket_id).await? {
        Some(t) if t.visible_to(&caller.sub, caller.role) => Ok(Json(t.redacted_for(caller.role))),
        _ => Err(ApiError::not_found("ticket_not_found", format!("no ticket {ticket_id}"))),
    }
}

/// One page of tickets.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TicketList {
    items: Vec<Ticket>,
    /// Pass it back as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// Tickets matching every filter given, oldest first (`created_at`, then `ticket_id`), a
/// page at a time. A customer's list is always of their own tickets, whatever `requester`
/// says, without internal comments.
#[utoipa::path(
    get,
    path = "/v1/tickets",
    operation_id = "list_tickets",
    tag = "tickets",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of tickets.", body = TicketList),
        (
            status = 400,
            description = "`invalid_query`: an unknown or repeated parameter, a `status` that is not one, `limit` \
                out of 1 to 100, or a `cursor` this API did not give out; `field` names it.",
            body = Problem,
            content_type = "application/problem+json"
        ),
        (status = 401, response = Unauthorized),
        (status = 503, response = BackendUnavailable),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<TicketList>, ApiError> {
    let mut query = params.query()?;
    if !caller.role.is_staff() {
        query.requester = Some(caller.sub.clone());
    }
    let page = state.backend.tickets.tickets(&query).await?;
    Ok(Json(TicketList {
        items: page.items.into_iter().map(|t| t.redacted_for(caller.role)).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

/// The filters and page of a ticket list; an unknown or repeated parameter is refused.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only tickets in this status.
    status: Option<TicketStatus>,
    /// Only tickets assigned to this user.
    #[param(max_length = 255)]
    assignee: Option<String>,
    /// Only tickets this user opened.
    #[param(max_length = 255)]
    requester: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    /// The `next_cursor` of the page before; opaque.
    cursor: Option<String>,
}

impl ListParams {
    fn query(self) -> Result<TicketQuery, ApiError> {
        let user = |name: &str, v: Option<String>| match v {
            Some(v) if v.is_empty() || v.len() > MAX_ID_LEN || v.chars().any(char::is_control) => {
                Err(invalid_query(name, "must be 1 to 255 characters, none a control"))
            }
            v => Ok(v.map(UserId::new)),
        };
        let limit = match self.limit {
            None => DEFAULT_LIMIT,
            Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
            Some(_) => return Err(invalid_query("limit", format!("must be a whole number from 1 to {MAX_LIMIT}"))),
        };
        let after = match self.cursor {
            None => None,
            Some(c) => Some(
                TicketCursor::decode(&c).ok_or_else(|| invalid_query("cursor", "is not a cursor this API gave out"))?,
            ),
        };
        Ok(TicketQuery {
            status: self.status,
            assignee: user("assignee", self.assignee)?,
            requester: user("requester", self.requester)?,
            limit,
            after,
        })
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RegisteredAgent {
    agent_id: UserId,
}

/// Registers a user as an agent, who may then be assigned tickets (admins only,
/// synchronous, idempotent). Anyone seen with an `agent` token is an agent as well.
#[utoipa::path(
    post,
    path = "/v1/agents",
    tag = "tickets",
    security(("bearer" = [])),
    request_body = AgentBody,
    responses(
        (status = 201, description = "The user is an agent.", body = RegisteredAgent),
        (
            status = 400,
            description = "`invalid_body`: not JSON, or `agent_id` missing or not 1 to 255 characters; `field` \
                names it.",
            body = Problem,
            content_type = "application/problem+json"
        ),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = BackendUnavailable),
    )
)]
pub async fn register_agent(
    State(state): State<AppState>,
    Admin(_): Admin,
    body: JsonBody<AgentBody>,
) -> Result<(StatusCode, Json<RegisteredAgent>), ApiError> {
    check_id("agent_id", &body.value.agent_id)?;
    let agent_id = UserId::new(body.value.agent_id);
    state.backend.users.record_user(&agent_id, Role::Agent, state.backend.clock.now()).await?;
    tracing::info!(agent_id = %agent_id, "agent registered");
    Ok((StatusCode::CREATED, Json(RegisteredAgent { agent_id })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> Result<TicketQuery, ApiError> {
        QueryParams::<ListParams>::parse(q.trim_start_matches('?'))?.0.query()
    }

    fn bad_field(q: &str) -> Option<String> {
        match query(q) {
            Err(ApiError::InvalidQuery { field, .. }) => field,
            other => panic!("{q}: {other:?}"),
        }
    }

    #[test]
    fn list_queries_are_checked_field_by_field() {
        let q = query("").unwrap();
        assert_eq!((q.limit, q.status, q.after), (DEFAULT_LIMIT, None, None));
        let q = query("?status=on_hold&assignee=ann&limit=100").unwrap();
        assert_eq!(q.status, Some(TicketStatus::OnHold));
        assert_eq!(q.assignee, Some(UserId::new("ann")));
        assert_eq!(q.limit, 100);
        let cursor = TicketCursor { created_at: domain::clock::from_millis(5), ticket_id: TicketId::from("tkt_1") };
        let q = query(&format!("?cursor={}", cursor.encode())).unwrap();
        assert_eq!(q.after, Some(cursor));
        for (q, field) in [
            ("?limit=0", "limit"),
            ("?limit=101", "limit"),
            ("?limit=x", "limit"),
            ("?status=done", "status"),
            ("?cursor=nope", "cursor"),
            ("?cursor=", "cursor"),
            ("?requester=", "requester"),
            ("?color=red", "color"),
            ("?limit=1&limit=2", "limit"),
        ] {
            assert_eq!(bad_field(q).as_deref(), Some(field), "{q}");
        }
    }
}
