//! The analytics aggregates: per show, per day, per ticket. Each event's facts apply once.

use super::Embedded;
use super::db::sql_error;
use super::notifications::first_time;
use super::queue::delete_received;
use async_trait::async_trait;
use domain::PortError;
use domain::clock;
use domain::event::CloudEvent;
use domain::ids::ShowId;
use domain::ports::AnalyticsStore;
use domain::queue::Receipt;
use domain::report::{self, DailyReport, Fact, ShowCounters, TicketFact, TicketState, TicketStats};
use domain::request::Delivery;
use rusqlite::{Connection, OptionalExtension, params};

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS show_stats (
    show_id       TEXT PRIMARY KEY,
    seats_booked  INTEGER NOT NULL DEFAULT 0,
    seats_held    INTEGER NOT NULL DEFAULT 0,
    bookings      INTEGER NOT NULL DEFAULT 0,
    revenue_cents INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS daily_stats (
    day           TEXT PRIMARY KEY,
    bookings      INTEGER NOT NULL DEFAULT 0,
    revenue_cents INTEGER NOT NULL DEFAULT 0
);

-- status and assignee go to the latest event by time (status_at, assignee_at): TicketState.
CREATE TABLE IF NOT EXISTS ticket_stats (
    ticket_id         TEXT PRIMARY KEY,
    status            TEXT,
    status_at         INTEGER,
    assignee          TEXT,
    assignee_at       INTEGER,
    created_at        INTEGER,
    first_response_at INTEGER,
    solved_at         INTEGER
);
"#;

fn apply(conn: &Connection, fact: &Fact) -> Result<(), PortError> {
    match fact {
        Fact::Show { show_id, held, booked, bookings, revenue_cents } => conn
            .prepare_cached(
                "INSERT INTO show_stats (show_id, seats_held, seats_booked, bookings, revenue_cents)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (show_id) DO UPDATE SET
                   seats_held = seats_held + excluded.seats_held,
                   seats_booked = seats_booked + excluded.seats_booked,
                   bookings = bookings + excluded.bookings,
                   revenue_cents = revenue_cents + excluded.revenue_cents",
            )
            .map_err(sql_error)?
            .execute(params![show_id, held, booked, bookings, revenue_cents])
            .map(|_| ())
            .map_err(sql_error),
        Fact::Day { day, bookings, revenue_cents } => conn
            .prepare_cached(
                "INSERT INTO daily_stats (day, bookings, revenue_cents) VALUES (?1, ?2, ?3)
                 ON CONFLICT (day) DO UPDATE SET
                   bookings = bookings + excluded.bookings,
                   revenue_cents = revenue_cents + excluded.revenue_cents",
            )
            .map_err(sql_error)?
            .execute(params![day, bookings, revenue_cents])
            .map(|_| ())
            .map_err(sql_error),
        Fact::Ticket(t) => apply_ticket(conn, t),
    }
}

fn apply_ticket(conn: &Connection, fact: &TicketFact) -> Result<(), PortError> {
    let ts = |v: Option<i64>| v.map(clock::from_millis);
    let ms = |t: Option<clock::Timestamp>| t.map(clock::to_millis);
    let mut state = conn
        .prepare_cached(
            "SELECT status, status_at, assignee, assignee_at, created_at, first_response_at, solved_at
             FROM ticket_stats WHERE ticket_id = ?1",
        )
        .map_err(sql_error)?
        .query_row([&fact.ticket_id], |r| {
            Ok(TicketState {
                stats: TicketStats {
                    status: r.get(0)?,
                    assignee: r.get(2)?,
                    created_at: ts(r.get(4)?),
                    first_response_at: ts(r.get(5)?),
                    solved_at: ts(r.get(6)?),
                },
                status_at: ts(r.get(1)?),
                assignee_at: ts(r.get(3)?),
            })
        })
        .optional()
        .map_err(sql_error)?
        .unwrap_or_default();
    state.apply(fact);
    let s = &state.stats;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO ticket_stats
         (ticket_id, status, status_at, assignee, assignee_at, created_at, first_response_at, solved_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .map_err(sql_error)?
    .execute(params![
        fact.ticket_id,
        s.status,
        ms(state.status_at),
        s.assignee,
        ms(state.assignee_at),
        ms(s.created_at),
        ms(s.first_response_at),
        ms(s.solved_at)
    ])
    .map(|_| ())
    .map_err(sql_error)
}

impl Embedded {
    /// Applies the facts of the events not applied before and deletes the messages
    /// `delivered` names, in one write. Returns how many events were new.
    async fn fold(&self, events: &[CloudEvent], delivered: &[Delivery]) -> Result<usize, PortError> {
        // Worked out here, not on the writer thread, which needs only each event's mark.
        let facts: Vec<(String, clock::Timestamp, Vec<Fact>)> =
            events.iter().map(|e| (e.id.clone(), e.time, report::facts(e))).collect();
        let delivered: Vec<(String, Receipt)> = delivered.iter().map(|d| (d.queue.name(), d.receipt.clone())).collect();
        self.db
            .write(move |conn| {
                let mut new = 0;
                let mut changes = Vec::new();
                for (event_id, at, facts) in &facts {
                    if first_time(conn, "analytics", event_id, *at)? {
                        new += 1;
                        changes.extend(facts.iter().cloned());
                    }
                }
                // A batch's counters change once per show and day, not once per event.
                for fact in report::combined(changes) {
                    apply(conn, &fact)?;
                }
                for (queue, receipt) in &delivered {
                    delete_received(conn, queue, receipt)?;
                }
                Ok(new)
            })
            .await
    }
}

#[async_trait]
impl AnalyticsStore for Embedded {
    async fn record_events(&self, events: &[CloudEvent]) -> Result<usize, PortError> {
        self.fold(events, &[]).await
    }

    async fn record_delivered(&self, events: &[CloudEvent], delivered: &[Delivery]) -> Result<bool, PortError> {
        self.fold(events, delivered).await.map(|_| true)
    }

    async fn show_counters(&self, show_id: &ShowId) -> Result<ShowCounters, PortError> {
        let id = show_id.to_string();
        self.db
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT seats_booked, seats_held, bookings, revenue_cents FROM show_stats WHERE show_id = ?1",
                )
                .map_err(sql_error)?
                .query_row([id], |r| {
                    Ok(ShowCounters {
                        seats_booked: r.get(0)?,
                        seats_held: r.get(1)?,
                        bookings: r.get(2)?,
                        revenue_cents: r.get(3)?,
                    })
                })
                .optional()
                .map(Option::unwrap_or_default)
                .map_err(sql_error)
            })
            .await
    }

    async fn ticket_stats(&self) -> Result<Vec<TicketStats>, PortError> {
        self.db
            .read(|conn| {
                let ts = |v: Option<i64>| v.map(clock::from_millis);
                conn.prepare_cached(
                    "SELECT status, assignee, created_at, first_response_at, solved_at FROM ticket_stats",
                )
                .map_err(sql_error)?
                .query_map([], |r| {
                    Ok(TicketStats {
                        status: r.get(0)?,
                        assignee: r.get(1)?,
                        created_at: ts(r.get(2)?),
                        first_response_at: ts(r.get(3)?),
                        solved_at: ts(r.get(4)?),
                    })
                })
                .map_err(sql_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_error)
            })
            .await
    }

    async fn daily(&self, limit: usize) -> Result<Vec<DailyReport>, PortError> {
        self.db
            .read(move |conn| {
                conn.prepare_cached("SELECT day, bookings, revenue_cents FROM daily_stats ORDER BY day DESC LIMIT ?1")
                    .map_err(sql_error)?
                    .query_map([limit as i64], |r| {
                        Ok(DailyReport { day: r.get(0)?, bookings: r.get(1)?, revenue_cents: r.get(2)? })
                    })
                    .map_err(sql_error)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql_error)
            })
            .await
    }
}
