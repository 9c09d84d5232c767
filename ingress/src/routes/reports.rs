//! What the downstream pools keep: a caller's notifications, and the analytics reports
//! (agents and admins only: revenue is not a customer's business).

use crate::AppState;
use crate::auth::Caller;
use crate::problem::ApiError;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::Uri;
use domain::ids::ShowId;
use domain::notification::Notification;
use domain::report::{DailyReport, ShowReport, TicketReport};

use super::PathId;

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 100;

/// `?limit=`, 1 to 100, default 50.
fn limit_of(uri: &Uri) -> Result<usize, ApiError> {
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|e| ApiError::InvalidQuery { field: None, detail: e.body_text() })?;
    let Some((_, raw)) = pairs.iter().find(|(name, _)| name == "limit") else { return Ok(DEFAULT_LIMIT) };
    match raw.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::InvalidQuery {
            field: Some("limit".into()),
            detail: format!("limit: must be a whole number from 1 to {MAX_LIMIT}, got {raw:?}"),
        }),
    }
}

fn staff_only(caller: &Caller) -> Result<(), ApiError> {
    if caller.role.is_staff() { Ok(()) } else { Err(ApiError::Forbidden("agent or admin")) }
}

/// The caller's own notifications, newest first.
pub async fn notifications(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Vec<Notification>>, ApiError> {
    let limit = limit_of(&uri)?;
    Ok(Json(state.backend.notifications.notifications_for(&caller.sub, limit).await?))
}

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

pub async fn ticket_report(State(state): State<AppState>, caller: Caller) -> Result<Json<TicketReport>, ApiError> {
    staff_only(&caller)?;
    let stats = state.backend.analytics.ticket_stats().await?;
    Ok(Json(TicketReport::from_stats(&stats)))
}

/// Bookings and revenue per UTC day, newest first.
pub async fn daily_report(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Vec<DailyReport>>, ApiError> {
    staff_only(&caller)?;
    let limit = limit_of(&uri)?;
    Ok(Json(state.backend.analytics.daily(limit).await?))
}
