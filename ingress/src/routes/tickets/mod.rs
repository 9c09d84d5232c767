//! Support tickets: the four ticket commands (admitted like every command, through
//! [`crate::idempotency::admit`]), the ticket reads, and registering agents.
//!
//! What the ingress can tell from the token alone it refuses with 403 before storing
//! anything: a customer assigning, moving a ticket anywhere but back to `open`, or
//! writing an internal comment. Whose ticket it is, and what status it is in, only the
//! worker knows: those end in the status document (`ticket_not_found`, ...).

//!
//! The reads and agent registration live here; the four commands in [`changes`].

mod changes;

use super::{PathId, QueryParams, check_id, invalid_query, is_id};
use crate::AppState;
use crate::auth::{Admin, Caller};
use crate::json::JsonBody;
use crate::openapi::{BackendUnavailable, Forbidden, PayloadTooLarge, ReadRejections, Unauthorized};
use crate::problem::{ApiError, Problem};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::actor::Role;
use domain::ids::{TicketId, UserId};
use domain::ports::TicketQuery;
use domain::ticket::{Ticket, TicketCursor, TicketStatus};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, changes::create))
        .routes(routes!(ticket))
        .routes(routes!(changes::assign))
        .routes(routes!(changes::transition))
        .routes(routes!(changes::comment))
        .routes(routes!(register_agent))
}

/// The page size when `limit` is not given, and the largest one allowed.
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentBody {
    #[schema(min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$", example = "ann")]
    agent_id: String,
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
        ("ticket_id" = String, Path, description = "The ticket, from the result of `POST /v1/tickets`.", max_length = 255, pattern = "^[!-~]{1,255}$"),
    ),
    responses(
        (status = 200, description = "The ticket.", body = Ticket),
        (
            status = 404,
            description = "`ticket_not_found`: no such ticket, or another customer's.",
            body = Problem,
            content_type = "application/problem+json"
        ),
        ReadRejections,
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
/// page at a time. A customer's list is of their own tickets only, without internal
/// comments: a `requester` other than the caller matches none.
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
        // A customer sees their own tickets only, so asking for anyone else's finds none.
        if query.requester.as_ref().is_some_and(|asked| *asked != caller.sub) {
            return Ok(Json(TicketList { items: Vec::new(), next_cursor: None }));
        }
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
    #[param(min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$")]
    assignee: Option<String>,
    /// Only tickets this user opened.
    #[param(min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$")]
    requester: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    /// The `next_cursor` of the page before; opaque (its pattern is stated so a client
    /// can tell a mangled one).
    #[param(pattern = "^(2[dD])?(3[0-9]){1,15}3[aA](2[1-9a-fA-F]|[3-6][0-9a-fA-F]|7[0-9a-eA-E]){1,255}$")]
    cursor: Option<String>,
}

impl ListParams {
    fn query(self) -> Result<TicketQuery, ApiError> {
        let user = |name: &str, v: Option<String>| match v {
            Some(v) if !is_id(&v) => Err(invalid_query(name, "must be 1 to 255 visible ASCII characters")),
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
