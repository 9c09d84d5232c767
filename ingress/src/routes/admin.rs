//! Dead-letter queues over HTTP, for admins (the `/ops` page): list them with their
//! depth, peek, replay, purge. The operations are `workers::dlq`'s, the same ones
//! `usher dlq …` runs, so the two never disagree.

use super::{PathId, QueryParams, invalid_query};
use crate::AppState;
use crate::auth::Admin;
use crate::json::JsonBody;
use crate::openapi::{BackendUnavailable, Forbidden, PayloadTooLarge, Unauthorized};
use crate::problem::{ApiError, Problem};
use axum::Json;
use axum::extract::State;
use domain::queue::Queue;
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use workers::dlq::{DeadLetters, ReplayOptions};

/// Most messages one peek or replay request handles.
pub const MAX_LIMIT: usize = 100;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_dlqs))
        .routes(routes!(peek_dlq))
        .routes(routes!(replay_dlq))
        .routes(routes!(purge_dlq))
}

/// `{queue, depth}`: a dead-letter queue (`<queue>-dlq`) and how many messages it holds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DlqDepth {
    #[schema(example = "booking-commands-dlq")]
    queue: String,
    depth: u64,
}

/// A dead message, as `usher dlq peek --json` prints it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadMessage {
    message_id: String,
    request_id: Option<String>,
    /// The command or event type (`booking.confirm`, `usher.booking.confirmed`, …).
    #[serde(rename = "type")]
    message_type: Option<String>,
    receive_count: u32,
    /// RFC 3339, when the worker gave up; absent for a message the queue's redrive moved.
    failed_at: Option<String>,
    /// Why the worker gave up.
    failure_reason: Option<String>,
    /// The message body, verbatim.
    body: String,
}

impl From<workers::dlq::DeadMessage> for DeadMessage {
    fn from(m: workers::dlq::DeadMessage) -> Self {
        let workers::dlq::DeadMessage {
            message_id,
            request_id,
            message_type,
            receive_count,
            failed_at,
            failure_reason,
            body,
        } = m;
        Self { message_id, request_id, message_type, receive_count, failed_at, failure_reason, body }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeekQuery {
    /// 1 to 100; default 10.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
}

/// `{limit?, type?, dry_run?}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Move at most this many (1 to 100; default 100).
    #[serde(default, deserialize_with = "domain::integral::deserialize_option")]
    #[schema(minimum = 1, maximum = 100)]
    limit: Option<usize>,
    /// Only messages of this command or event type.
    #[serde(rename = "type")]
    #[schema(value_type = Option<MessageType>, example = "booking.confirm")]
    message_type: Option<String>,
    /// Count what would move; move nothing. Default false.
    #[serde(default)]
    dry_run: bool,
}

/// The schema of a replay's `type`: a command's or an event's, as the messages carry it.
pub struct MessageType;

impl utoipa::PartialSchema for MessageType {
    fn schema() -> RefOr<Schema> {
        let events = domain::event::EventType::ALL.map(|t| t.as_str());
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A command's or an event's `type`."))
            .enum_values(Some(domain::command::COMMAND_TYPES.into_iter().chain(events)))
            .into()
    }
}

impl utoipa::ToSchema for MessageType {}

/// What a replay moved back to the source queue (with `dry_run`: would move), left in the
/// DLQ (another type, or over the limit) and could not move.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplayReport {
    moved: usize,
    skipped: usize,
    failed: usize,
    dry_run: bool,
}

/// `{confirm: true}`: purging cannot be undone.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    /// Must be `true`.
    #[schema(schema_with = must_be_true)]
    confirm: bool,
}

/// `true`, and nothing else: the schema of `confirm`.
fn must_be_true() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Boolean)
        .enum_values(Some([true]))
        .description(Some("Must be `true`."))
        .build()
}

/// `{queue, purged: true}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Purged {
    #[schema(example = "booking-commands-dlq")]
    queue: String,
    purged: bool,
}

fn queue(name: &str) -> Result<Queue, ApiError> {
    Queue::parse(name).ok_or_else(|| {
        let known: Vec<&str> = Queue::ALL.iter().map(|q| q.name()).collect();
        ApiError::not_found("queue_not_found", format!("no queue {name:?}; expected one of {}", known.join(", ")))
    })
}

/// Every dead-letter queue with its depth (admins only), as `usher dlq list --json`.
#[utoipa::path(
    get,
    path = "/v1/admin/dlqs",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every dead-letter queue and its depth.", body = Vec<DlqDepth>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = BackendUnavailable),
    )
)]
pub async fn list_dlqs(State(state): State<AppState>, _admin: Admin) -> Result<Json<Vec<DlqDepth>>, ApiError> {
    let depths = DeadLetters::new(state.backend.clone()).list().await?;
    Ok(Json(depths.into_iter().map(|d| DlqDepth { queue: d.queue, depth: d.depth }).collect()))
}

/// Dead messages of one queue's DLQ, with why they died, without consuming them (admins
/// only), as `usher dlq peek --json`.
#[utoipa::path(
    get,
    path = "/v1/admin/dlqs/{queue}/messages",
    tag = "admin",
    security(("bearer" = [])),
    params(
        ("queue" = String, Path, description = "A logical queue name, with or without `-dlq`.",
            example = "booking-commands", max_length = 255, pattern = "^[!-~]{1,255}$"),
        PeekQuery,
    ),
    responses(
        (status = 200, description = "Up to `limit` dead messages, oldest first.", body = Vec<DeadMessage>),
        (status = 400, description = "`invalid_query`: `limit` is not 1 to 100, or another parameter was sent; \
            `invalid_path`: the name is over 255 bytes.", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`queue_not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 503, response = BackendUnavailable),
    )
)]
pub async fn peek_dlq(
    State(state): State<AppState>,
    _admin: Admin,
    PathId(name): PathId,
    QueryParams(query): QueryParams<PeekQuery>,
) -> Result<Json<Vec<DeadMessage>>, ApiError> {
    let queue = queue(&name)?;
    let limit = query.limit.unwrap_or(10);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(invalid_query("limit", format!("must be 1 to {MAX_LIMIT}")));
    }
    let messages = DeadLetters::new(state.backend.clone()).peek(queue, limit).await?;
    Ok(Json(messages.into_iter().map(DeadMessage::from).collect()))
}

/// Moves dead messages back to their source queue (admins only), body and attributes
/// unchanged, send before delete; their requests reopen. As `usher dlq replay`.
#[utoipa::path(
    post,
    path = "/v1/admin/dlqs/{queue}/replay",
    tag = "admin",
    security(("bearer" = [])),
    params(("queue" = String, Path, description = "A logical queue name, with or without `-dlq`.",
        example = "booking-commands", max_length = 255, pattern = "^[!-~]{1,255}$")),
    request_body(content = Option<ReplayRequest>, description = "`{limit?, type?, dry_run?}`; `{}`, `null` or no \
        body at all replays up to 100 of every type."),
    responses(
        (status = 200, description = "The counts; `failed` messages are still in the DLQ.", body = ReplayReport),
        (status = 400, description = "`invalid_body`: not JSON, or a field unknown, mistyped or out of range; \
            `field` names it. `invalid_path`: the name is over 255 bytes.", body = Problem,
            content_type = "application/problem+json"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`queue_not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = BackendUnavailable),
    )
)]
pub async fn replay_dlq(
    State(state): State<AppState>,
    _admin: Admin,
    PathId(name): PathId,
    body: JsonBody<ReplayRequest>,
) -> Result<Json<ReplayReport>, ApiError> {
    let ReplayRequest { limit, message_type, dry_run } = body.value;
    if limit.is_some_and(|l| !(1..=MAX_LIMIT).contains(&l)) {
        return Err(ApiError::invalid_field("limit", format!("must be 1 to {MAX_LIMIT}")));
    }
    if let Some(t) = message_type.as_deref().filter(|t| !domain::command::is_message_type(t)) {
        return Err(ApiError::invalid_field("type", format!("{t:?} is no command or event type")));
    }
    let queue = queue(&name)?;
    let options = ReplayOptions { limit: Some(limit.unwrap_or(MAX_LIMIT)), rate: None, message_type, dry_run };
    let report = DeadLetters::new(state.backend.clone()).replay(queue, &options).await?;
    tracing::info!(queue = queue.name(), moved = report.moved, dry_run, "dlq replayed over http");
    Ok(Json(ReplayReport { moved: report.moved, skipped: report.skipped, failed: report.failed, dry_run }))
}

/// Deletes every message of one queue's DLQ (admins only); needs `{"confirm": true}`.
/// As `usher dlq purge --yes`.
#[utoipa::path(
    post,
    path = "/v1/admin/dlqs/{queue}/purge",
    tag = "admin",
    security(("bearer" = [])),
    params(("queue" = String, Path, description = "A logical queue name, with or without `-dlq`.",
        example = "booking-commands", max_length = 255, pattern = "^[!-~]{1,255}$")),
    request_body = PurgeRequest,
    responses(
        (status = 200, description = "The DLQ is empty.", body = Purged),
        (status = 400, description = "`invalid_body`: `confirm` is missing or not `true`, or another field was \
            sent; `field` names it. `invalid_path`: the name is over 255 bytes.", body = Problem,
            content_type = "application/problem+json"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`queue_not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = BackendUnavailable),
    )
)]
pub async fn purge_dlq(
    State(state): State<AppState>,
    Admin(admin): Admin,
    PathId(name): PathId,
    body: JsonBody<PurgeRequest>,
) -> Result<Json<Purged>, ApiError> {
    if !body.value.confirm {
        return Err(ApiError::invalid_field("confirm", "must be true: purging cannot be undone"));
    }
    let queue = queue(&name)?;
    DeadLetters::new(state.backend.clone()).purge(queue).await?;
    tracing::info!(queue = queue.name(), admin = %admin.sub, "dlq purged over http");
    Ok(Json(Purged { queue: queue.dlq().name(), purged: true }))
}
