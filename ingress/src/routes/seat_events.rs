//! The live seat map: `GET /v1/shows/{show_id}/seats/events`, server-sent events of the
//! seats whose state changed.
//!
//! Each stream reads the seat map every [`POLL_EVERY`] and sends what differs from the
//! last read. Polling the store (rather than tapping the topic) is the one way that is
//! right on both backends and in every process layout: an embedded topic only fans out
//! inside the SQLite file into subscriber queues (consuming one would steal messages from
//! the pools), an ingress task on AWS has no queue of its own, and only a read of the map
//! sees a hold expire at the moment the clock passes it. docs/design.md has the reasoning.

use super::PathId;
use super::catalog::{current_seats, seats_of};
use crate::AppState;
use crate::auth::Caller;
use crate::openapi::ReadRejections;
use crate::problem::{ApiError, Problem};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use domain::booking::Seat;
use domain::ids::ShowId;
use futures_util::Stream;
use serde::Serialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How often a stream reads the seat map: a change shows within this much of its commit
/// (the page promises "within about a second", with room for a busy worker).
pub const POLL_EVERY: Duration = Duration::from_millis(500);

/// A comment line this often keeps proxies from closing a quiet stream.
pub const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(seat_events))
}

/// The `data` of each event: the whole map (`snapshot`) or the seats that changed (`seats`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeatChanges {
    show_id: ShowId,
    seats: Vec<Seat>,
}

/// The name of a seat-map event: `snapshot` (the first, every seat) or `seats` (the seats
/// that changed).
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SeatEventName {
    Snapshot,
    Seats,
}

impl SeatEventName {
    fn as_str(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::Seats => "seats",
        }
    }
}

/// One event of the stream as a client's `EventSource` reads it: its name and its `data`
/// line. OpenAPI 3.1 has no words for an event stream, so the document states each event
/// this way, as OpenAPI 3.2's `itemSchema` does.
#[derive(Debug, utoipa::ToSchema)]
pub struct SeatEvent {
    event: SeatEventName,
    /// A `SeatChanges` JSON document.
    #[schema(content_media_type = "application/json")]
    data: String,
}

impl From<SeatEvent> for Event {
    fn from(e: SeatEvent) -> Self {
        Event::default().event(e.event.as_str()).data(e.data)
    }
}

/// Server-sent events of a show's seat map, as holds are placed, released and expire and
/// bookings are confirmed. The first event, `snapshot`, has every seat; each later event,
/// `seats`, has the seats whose state changed (`available`, `held`, `booked`), within a
/// second of the change. Both carry `{show_id, seats: [{seat_id, state}]}`. A comment
/// line every 15 s keeps the connection open; the stream ends when the server stops
/// (reconnect then).
#[utoipa::path(
    get,
    path = "/v1/shows/{show_id}/seats/events",
    tag = "catalog",
    security(("bearer" = [])),
    params(("show_id" = String, Path, description = "The show.", max_length = 255, pattern = "^[!-~]{1,255}$")),
    responses(
        (
            status = 200,
            description = "A `text/event-stream`: `event: snapshot` first, then `event: seats` for each change; \
                the `data` of both is a `SeatChanges` JSON document. The schema is that of one event.",
            body = SeatEvent,
            content_type = "text/event-stream"
        ),
        (status = 404, description = "`show_not_found`.", body = Problem, content_type = "application/problem+json"),
        ReadRejections,
    )
)]
pub async fn seat_events(
    State(state): State<AppState>,
    _caller: Caller,
    PathId(show_id): PathId,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let show_id = ShowId::from(show_id);
    // The first read answers errors (no show, a backend down) as a status, not a stream.
    let seats = seats_of(&state, &show_id).await?;
    let stop = state.shutdown.clone();
    let watch = Watch { state, show_id, last: Vec::new(), stop };
    let stream = futures_util::stream::unfold((watch, Some(seats)), |(mut watch, first)| async move {
        let event = match first {
            Some(seats) => watch.snapshot(seats),
            None => watch.next_change().await?,
        };
        Some((Ok(event), (watch, None)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE_EVERY)))
}

/// One stream's view of a show's seat map.
struct Watch {
    state: AppState,
    show_id: ShowId,
    /// The map as last sent.
    last: Vec<Seat>,
    stop: CancellationToken,
}

impl Watch {
    fn snapshot(&mut self, seats: Vec<Seat>) -> Event {
        self.last = seats.clone();
        self.event(SeatEventName::Snapshot, seats)
    }

    /// Waits for the next read that differs from the last one; `None` once the server
    /// stops. A failed read is skipped: the next one catches up.
    async fn next_change(&mut self) -> Option<Event> {
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return None,
                _ = tokio::time::sleep(POLL_EVERY) => {}
            }
            let seats = match current_seats(&self.state, &self.show_id).await {
                Ok(seats) => seats,
                Err(e) => {
                    tracing::warn!(show_id = %self.show_id, error = %e, "cannot read the seat map for a live stream");
                    continue;
                }
            };
            let changed = changes(&self.last, &seats);
            self.last = seats;
            if !changed.is_empty() {
                return Some(self.event(SeatEventName::Seats, changed));
            }
        }
    }

    fn event(&self, event: SeatEventName, seats: Vec<Seat>) -> Event {
        let changes = SeatChanges { show_id: self.show_id.clone(), seats };
        // A struct of strings and enums: it always serializes.
        let data = serde_json::to_string(&changes).unwrap_or_default();
        SeatEvent { event, data }.into()
    }
}

/// The seats of `now` that are new or in another state than in `before`.
fn changes(before: &[Seat], now: &[Seat]) -> Vec<Seat> {
    let before: std::collections::HashMap<_, _> = before.iter().map(|s| (&s.seat_id, s.state)).collect();
    now.iter().filter(|s| before.get(&s.seat_id) != Some(&s.state)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::booking::SeatState;
    use domain::ids::SeatId;

    fn seat(id: &str, state: SeatState) -> Seat {
        Seat { seat_id: SeatId::from(id), state }
    }

    #[test]
    fn only_seats_whose_state_changed_are_sent() {
        let before = [seat("A1", SeatState::Available), seat("A2", SeatState::Held)];
        let now = [seat("A1", SeatState::Held), seat("A2", SeatState::Held), seat("A3", SeatState::Booked)];
        assert_eq!(changes(&before, &now), vec![seat("A1", SeatState::Held), seat("A3", SeatState::Booked)]);
        assert!(changes(&now, &now).is_empty());
    }
}
