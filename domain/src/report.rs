//! Analytics: the facts each event contributes to the aggregates, and the reports.
//!
//! Every fact is order-independent — counters add, first times take the minimum, a
//! ticket's current status and assignee go to the latest event by time — so events
//! that arrive late or out of order still give the right totals. Duplicates are the
//! store's business: it applies an event id once.

use crate::clock::{Timestamp, format};
use crate::event::{CloudEvent, EventType};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// What one event changes in the aggregates.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    Show { show_id: String, held: i64, booked: i64, bookings: i64, revenue_cents: i64 },
    Day { day: String, bookings: i64, revenue_cents: i64 },
    Ticket(TicketFact),
}

/// What an event says about one ticket, each part timed by the event.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketFact {
    pub ticket_id: String,
    pub created_at: Option<Timestamp>,
    pub status: Option<String>,
    /// `Some(None)`: the ticket is unassigned as of `at`.
    pub assignee: Option<Option<String>>,
    pub first_response_at: Option<Timestamp>,
    pub solved_at: Option<Timestamp>,
    pub at: Timestamp,
}

fn seats(data: &Value) -> i64 {
    data.get("seat_ids").and_then(Value::as_array).map_or(0, |s| s.len() as i64)
}

fn text(data: &Value, field: &str) -> Option<String> {
    data.get(field).and_then(Value::as_str).map(str::to_owned)
}

/// The UTC day of a timestamp, `2026-11-22`.
pub fn day_of(t: Timestamp) -> String {
    format(t)[..10].to_owned()
}

pub fn facts(event: &CloudEvent) -> Vec<Fact> {
    let d = &event.data;
    let show = |held: i64, booked: i64, bookings: i64, revenue_cents: i64| {
        text(d, "show_id").map(|show_id| Fact::Show { show_id, held, booked, bookings, revenue_cents })
    };
    match event.event_type {
        EventType::HoldPlaced => show(seats(d), 0, 0, 0).into_iter().collect(),
        EventType::HoldReleased | EventType::HoldExpired => show(-seats(d), 0, 0, 0).into_iter().collect(),
        EventType::BookingConfirmed => {
            let n = seats(d);
            let amount = d.get("amount_cents").and_then(Value::as_i64).unwrap_or(0);
            let mut facts: Vec<Fact> = show(-n, n, 1, amount).into_iter().collect();
            facts.push(Fact::Day { day: day_of(event.time), bookings: 1, revenue_cents: amount });
            facts
        }
        EventType::TicketCreated
        | EventType::TicketAssigned
        | EventType::TicketStatusChanged
        | EventType::TicketCommented => {
            let Some(ticket_id) = text(d, "ticket_id") else { return Vec::new() };
            let created_at = text(d, "ticket_created_at").and_then(|t| crate::clock::parse(&t).ok());
            let agent_reply = event.event_type == EventType::TicketCommented
                && d.get("public").and_then(Value::as_bool) == Some(true)
                && matches!(text(d, "author_role").as_deref(), Some("agent" | "admin"));
            let solved =
                event.event_type == EventType::TicketStatusChanged && text(d, "to").as_deref() == Some("solved");
            vec![Fact::Ticket(TicketFact {
                ticket_id,
                created_at: created_at.or((event.event_type == EventType::TicketCreated).then_some(event.time)),
                status: text(d, "status"),
                assignee: d.get("assignee").map(|a| a.as_str().map(str::to_owned)),
                first_response_at: agent_reply.then_some(event.time),
                solved_at: solved.then_some(event.time),
                at: event.time,
            })]
        }
        _ => Vec::new(),
    }
}

/// Many events' facts as few writes: the show and day deltas summed per show and per
/// day (sums commute), the ticket facts as they came. A batch of holds on one show is one
/// row's update, not one per hold.
pub fn combined(facts: impl IntoIterator<Item = Fact>) -> Vec<Fact> {
    let mut shows: BTreeMap<String, [i64; 4]> = BTreeMap::new();
    let mut days: BTreeMap<String, [i64; 2]> = BTreeMap::new();
    let mut tickets = Vec::new();
    for fact in facts {
        match fact {
            Fact::Show { show_id, held, booked, bookings, revenue_cents } => {
                let sum = shows.entry(show_id).or_default();
                for (total, delta) in sum.iter_mut().zip([held, booked, bookings, revenue_cents]) {
                    *total += delta;
                }
            }
            Fact::Day { day, bookings, revenue_cents } => {
                let sum = days.entry(day).or_default();
                sum[0] += bookings;
                sum[1] += revenue_cents;
            }
            Fact::Ticket(t) => tickets.push(Fact::Ticket(t)),
        }
    }
    let shows = shows.into_iter().map(|(show_id, [held, booked, bookings, revenue_cents])| Fact::Show {
        show_id,
        held,
        booked,
        bookings,
        revenue_cents,
    });
    let days = days.into_iter().map(|(day, [bookings, revenue_cents])| Fact::Day { day, bookings, revenue_cents });
    shows.chain(days).chain(tickets).collect()
}

/// `GET /v1/reports/shows/{show_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShowReport {
    pub show_id: String,
    pub seats_total: u64,
    pub seats_booked: u64,
    pub seats_held: u64,
    pub bookings: u64,
    pub revenue_cents: u64,
}

/// The analytics counters of one show (the seat total comes from the catalog).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShowCounters {
    pub seats_booked: i64,
    pub seats_held: i64,
    pub bookings: i64,
    pub revenue_cents: i64,
}

impl ShowCounters {
    pub fn report(&self, show_id: &str, seats_total: u64) -> ShowReport {
        let clamp = |n: i64| n.max(0) as u64;
        ShowReport {
            show_id: show_id.to_owned(),
            seats_total,
            seats_booked: clamp(self.seats_booked),
            // Mid-flight, a confirmation may be counted before its hold: never below zero.
            seats_held: clamp(self.seats_held),
            bookings: clamp(self.bookings),
            revenue_cents: clamp(self.revenue_cents),
        }
    }
}

/// `GET /v1/reports/daily`: bookings and revenue per UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DailyReport {
    pub day: String,
    pub bookings: u64,
    pub revenue_cents: u64,
}

/// One ticket as analytics last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TicketStats {
    pub status: Option<String>,
    pub assignee: Option<String>,
    pub created_at: Option<Timestamp>,
    pub first_response_at: Option<Timestamp>,
    pub solved_at: Option<Timestamp>,
}

/// A ticket's stats with the times its status and assignee were last set, so that a
/// late event never overwrites a newer one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TicketState {
    pub stats: TicketStats,
    pub status_at: Option<Timestamp>,
    pub assignee_at: Option<Timestamp>,
}

impl TicketState {
    pub fn apply(&mut self, fact: &TicketFact) {
        let newer = |at: Option<Timestamp>| at.is_none_or(|at| fact.at >= at);
        if let Some(status) = &fact.status
            && newer(self.status_at)
        {
            self.stats.status = Some(status.clone());
            self.status_at = Some(fact.at);
        }
        if let Some(assignee) = &fact.assignee
            && newer(self.assignee_at)
        {
            self.stats.assignee = assignee.clone();
            self.assignee_at = Some(fact.at);
        }
        let earliest = |a: Option<Timestamp>, b: Option<Timestamp>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.stats.created_at = earliest(self.stats.created_at, fact.created_at);
        self.stats.first_response_at = earliest(self.stats.first_response_at, fact.first_response_at);
        self.stats.solved_at = earliest(self.stats.solved_at, fact.solved_at);
    }
}

/// `GET /v1/reports/tickets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TicketReport {
    pub tickets: u64,
    pub by_status: BTreeMap<String, u64>,
    pub by_assignee: BTreeMap<String, u64>,
    /// Mean seconds from creation to the first public agent reply, over tickets that have one.
    pub mean_first_response_secs: Option<f64>,
    /// Mean seconds from creation to the first time it was solved, over solved tickets.
    pub mean_solve_secs: Option<f64>,
}

impl TicketReport {
    pub fn from_stats(stats: &[TicketStats]) -> Self {
        let mut by_status = BTreeMap::new();
        let mut by_assignee = BTreeMap::new();
        for s in stats {
            if let Some(status) = &s.status {
                *by_status.entry(status.clone()).or_insert(0) += 1;
            }
            let assignee = s.assignee.clone().unwrap_or_else(|| "unassigned".to_owned());
            *by_assignee.entry(assignee).or_insert(0) += 1;
        }
        let mean = |pick: fn(&TicketStats) -> Option<Timestamp>| {
            let spans: Vec<f64> =
                stats.iter().filter_map(|s| Some((pick(s)? - s.created_at?).as_seconds_f64().max(0.0))).collect();
            (!spans.is_empty()).then(|| spans.iter().sum::<f64>() / spans.len() as f64)
        };
        Self {
            tickets: stats.len() as u64,
            by_status,
            by_assignee,
            mean_first_response_secs: mean(|s| s.first_response_at),
            mean_solve_secs: mean(|s| s.solved_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_millis;
    use serde_json::json;

    fn event(t: EventType, data: Value, at: i64) -> CloudEvent {
        CloudEvent::new(t, "x", &at.to_string(), "req", data, from_millis(at))
    }

    fn fold(events: &[CloudEvent]) -> ShowCounters {
        let mut c = ShowCounters::default();
        for f in events.iter().flat_map(facts) {
            if let Fact::Show { held, booked, bookings, revenue_cents, .. } = f {
                c.seats_held += held;
                c.seats_booked += booked;
                c.bookings += bookings;
                c.revenue_cents += revenue_cents;
            }
        }
        c
    }

    #[test]
    fn show_totals_do_not_depend_on_order() {
        let seats = json!(["A1", "A2", "A3"]);
        let events = vec![
            event(EventType::HoldPlaced, json!({"show_id": "s", "seat_ids": seats}), 1),
            event(EventType::BookingConfirmed, json!({"show_id": "s", "seat_ids": seats, "amount_cents": 3600}), 2),
            event(EventType::HoldPlaced, json!({"show_id": "s", "seat_ids": ["B1"]}), 3),
            event(EventType::HoldExpired, json!({"show_id": "s", "seat_ids": ["B1"]}), 4),
        ];
        let forward = fold(&events);
        let mut reversed = events.clone();
        reversed.reverse();
        assert_eq!(forward, fold(&reversed));
        assert_eq!(
            forward.report("s", 120),
            ShowReport {
                show_id: "s".into(),
                seats_total: 120,
                seats_booked: 3,
                seats_held: 0,
                bookings: 1,
                revenue_cents: 3600
            }
        );
    }

    #[test]
    fn combined_facts_sum_per_show_and_day_and_keep_every_ticket_fact_in_order() {
        let events = [
            event(EventType::HoldPlaced, json!({"show_id": "s", "seat_ids": ["A1", "A2"]}), 1),
            event(EventType::TicketCreated, json!({"ticket_id": "t", "status": "new"}), 2),
            event(EventType::HoldPlaced, json!({"show_id": "r", "seat_ids": ["A1"]}), 3),
            event(EventType::BookingConfirmed, json!({"show_id": "s", "seat_ids": ["A1"], "amount_cents": 1200}), 4),
            event(EventType::TicketStatusChanged, json!({"ticket_id": "t", "status": "open", "to": "open"}), 5),
            event(EventType::BookingConfirmed, json!({"show_id": "s", "seat_ids": ["A2"], "amount_cents": 1300}), 6),
        ];
        let each: Vec<Fact> = events.iter().flat_map(facts).collect();
        let tickets = |f: &[Fact]| f.iter().filter(|f| matches!(f, Fact::Ticket(_))).cloned().collect::<Vec<_>>();
        let together = combined(each.clone());
        assert_eq!(
            together[..3],
            [
                Fact::Show { show_id: "r".into(), held: 1, booked: 0, bookings: 0, revenue_cents: 0 },
                Fact::Show { show_id: "s".into(), held: 0, booked: 2, bookings: 2, revenue_cents: 2500 },
                Fact::Day { day: day_of(from_millis(0)), bookings: 2, revenue_cents: 2500 },
            ]
        );
        assert_eq!(together[3..], tickets(&each)[..], "ticket facts are not merged, and keep their order");
    }

    #[test]
    fn ticket_means_use_first_reply_and_first_solve() {
        let stats = vec![
            TicketStats {
                status: Some("solved".into()),
                assignee: Some("a".into()),
                created_at: Some(from_millis(0)),
                first_response_at: Some(from_millis(10_000)),
                solved_at: Some(from_millis(60_000)),
            },
            TicketStats {
                status: Some("open".into()),
                assignee: None,
                created_at: Some(from_millis(0)),
                first_response_at: Some(from_millis(30_000)),
                solved_at: None,
            },
        ];
        let r = TicketReport::from_stats(&stats);
        assert_eq!(r.tickets, 2);
        assert_eq!(r.by_status["solved"], 1);
        assert_eq!(r.by_assignee["unassigned"], 1);
        assert_eq!(r.mean_first_response_secs, Some(20.0));
        assert_eq!(r.mean_solve_secs, Some(60.0));
    }

    #[test]
    fn ticket_state_takes_the_latest_status_whatever_the_order() {
        let fact = |status: &str, at: i64, solved: bool| TicketFact {
            ticket_id: "t".into(),
            created_at: Some(from_millis(0)),
            status: Some(status.into()),
            assignee: Some(Some("a".into())),
            first_response_at: None,
            solved_at: solved.then(|| from_millis(at)),
            at: from_millis(at),
        };
        let facts = [fact("open", 1, false), fact("solved", 5, true), fact("closed", 9, false)];
        let mut forward = TicketState::default();
        facts.iter().for_each(|f| forward.apply(f));
        let mut backward = TicketState::default();
        facts.iter().rev().for_each(|f| backward.apply(f));
        assert_eq!(forward, backward);
        assert_eq!(forward.stats.status.as_deref(), Some("closed"));
        assert_eq!(forward.stats.solved_at, Some(from_millis(5)));
    }

    #[test]
    fn an_agent_reply_is_a_first_response_and_a_customer_reply_is_not() {
        let reply = |role: &str| {
            event(
                EventType::TicketCommented,
                json!({"ticket_id": "t", "public": true, "author_role": role, "status": "open"}),
                5,
            )
        };
        let Fact::Ticket(f) = &facts(&reply("agent"))[0] else { panic!() };
        assert_eq!(f.first_response_at, Some(from_millis(5)));
        let Fact::Ticket(f) = &facts(&reply("customer"))[0] else { panic!() };
        assert_eq!(f.first_response_at, None);
        assert_eq!(day_of(from_millis(1_795_341_600_123)), "2026-11-22");
    }
}
