//! What the downstream pools keep: a caller's notifications, and the analytics reports
//! (agents and admins only: revenue is not a customer's business).

use crate::AppState;
use crate::auth::Caller;
use crate::openapi::{BackendUnavailable, Forbidden, Unauthorized};
use crate::problem::{ApiError, Problem};
use axum::Json;
use axum::extract::State;
use domain::ids::ShowId;
use domain::notification::Notification;
use domain::report::{DailyReport, ShowReport, TicketReport};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(notifications))
        .routes(routes!(show_report))
        .routes(routes!(ticket_report))
        .routes(routes!(daily_report))
}

use super::{PathId, QueryParams, invalid_query};

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 100;

/// `?limit=`: how many, 1 to 100 (default 50). Any other parameter is a 400
/// `invalid_query` naming it, as on every route that reads a query.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LimitParams {
    /// How many, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
}

impl LimitParams {
    fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(invalid_query("limit", format!("must be a whole number from 1 to {MAX_LIMIT}, got {n}"))),
        }
    }
}

fn staff_only(caller: &Caller) -> Result<(), ApiError> {
    if caller.role.is_staff() { Ok(()) } else { Err(ApiError::Forbidden("agent or admin")) }
}

/// The caller's own notifications, newest first (from the notifications worker).
#[utoipa::path(
    get,
    path = "/v1/notifications",
    tag = "downstream",
    security(("bearer" = [])),
    params(LimitParams),
    responses(
        (status = 200, description = "The caller's notifications, newest first.", body = Vec<Notification>),
        (status = 400, description = "`invalid_query`: `limit` is not a whole number from 1 to 100, or another \
            parameter is given (`field` names it).", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = Unauthorized),
        (status = 503, response = BackendUnavailable),
    )
)]
pub async fn notifications(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<LimitParams>,
) -> Result<Json<Vec<Notification>>, ApiError> {
    let limit = params.limit()?;
    Ok(Json(state.backend.notifications.notifications_for(&caller.sub, limit).await?))
}

/// A show's seats, bookings and revenue, from the analytics worker (agents and admins).
#[utoipa::path(
    get,
    path = "/v1/reports/shows/{show_id}",
    tag = "downstream",
    security(("bearer" = [])),
    params(("show_id" = String, Path, description = "The show.", max_length = 255, pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 200, description = "The show's report.", body = ShowReport),
        (
            status = 400,
            description = "`invalid_path`: the id is not 1 to 255 visible ASCII characters.",
            body = Problem,
            content_type = "application/problem+json"
        ),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`show_not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 503, response = BackendUnavailable),
    )
)]
pub async fn show_report(
    State(state): State<AppState>,
    caller: Caller,
    PathId(show_id): PathId,
) -> Result<Json<ShowReport>, ApiError> {
    staff_only(&caller)?;
    let show_id = ShowId::from(show_id);
    let Some(show) = state.backend.catalog.show(&show_id).await? else {
        return Err(ApiError::not_found("show_not_found", format!("no show {show_id}")));
    };
    let counters = state.backend.analytics.show_counters(&show_id).await?;
    Ok(Json(counters.report(show_id.as_str(), u64::from(show.auditorium.capacity()))))
}

/// Ticket counts by status and by assignee, mean time to first response and to solve
/// (agents and admins).
#[utoipa::path(
    get,
    path = "/v1/reports/tickets",
    tag = "downstream",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The ticket report.", body = TicketReport),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = BackendUnavailable),
    )
)]
pub async fn ticket_report(State(state): State<AppState>, caller: Caller) -> Result<Json<TicketReport>, ApiError> {
    staff_only(&caller)?;
    let stats = state.backend.analytics.ticket_stats().await?;
    Ok(Json(TicketReport::from_stats(&stats)))
}

/// Bookings and revenue per UTC day, newest first (agents and admins).
#[utoipa::path(
    get,
    path = "/v1/reports/daily",
    tag = "downstream",
    security(("bearer" = [])),
    params(LimitParams),
    responses(
        (status = 200, description = "One entry per day, newest first.", body = Vec<DailyReport>),
        (status = 400, description = "`invalid_query`: `limit` is not a whole number from 1 to 100, or another \
            parameter is given (`field` names it).", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = BackendUnavailable),
    )
)]
pub async fn daily_report(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<LimitParams>,
) -> Result<Json<Vec<DailyReport>>, ApiError> {
    staff_only(&caller)?;
    let limit = params.limit()?;
    Ok(Json(state.backend.analytics.daily(limit).await?))
}
