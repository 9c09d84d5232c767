//! The analytics aggregates: counters per show and per day, state per ticket. A group of
//! events commits in one transaction with their handled marks; their facts are merged
//! per item first (counters add, ticket facts fold with `TicketState::apply`), so no
//! item appears twice and each event applies exactly once.

use super::item::{Item, Placeholders, get_n, get_s, item, millis, n, opt_millis, opt_n, opt_s, s};
use super::notifications::{ANALYTICS, handled_mark};
use super::transaction::{ATTEMPTS, MAX_TRANSACTION_ITEMS, Slot, Step, Transaction, put, retrying, update};
use super::{DynamoStore, PartitionQuery};
use crate::aws::error::port_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::TransactWriteItem;
use domain::PortError;
use domain::clock::{self, Timestamp};
use domain::event::CloudEvent;
use domain::ids::ShowId;
use domain::ports::AnalyticsStore;
use domain::report::{self, DailyReport, Fact, ShowCounters, TicketFact, TicketState, TicketStats};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The one partition of the daily table: `daily(limit)` is a descending query on it.
const ALL_DAYS: &str = "all";

/// An event with the facts it contributes.
struct Facts<'a> {
    event: &'a CloudEvent,
    facts: Vec<Fact>,
}

/// The items a fact writes, so that a group never names one twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Target<'a> {
    Show(&'a str),
    Day(&'a str),
    Ticket(&'a str),
}

fn target(fact: &Fact) -> Target<'_> {
    match fact {
        Fact::Show { show_id, .. } => Target::Show(show_id),
        Fact::Day { day, .. } => Target::Day(day),
        Fact::Ticket(t) => Target::Ticket(&t.ticket_id),
    }
}

/// Splits events (distinct ids) into groups that each fit one transaction: a mark per
/// event plus one item per show, day and ticket the group mentions.
fn groups<'a>(events: &'a [Facts<'a>]) -> Vec<Vec<&'a Facts<'a>>> {
    let mut groups: Vec<Vec<&Facts>> = Vec::new();
    let mut current: Vec<&Facts> = Vec::new();
    let mut targets: HashSet<Target> = HashSet::new();
    for e in events {
        let new: HashSet<Target> = e.facts.iter().map(target).filter(|t| !targets.contains(t)).collect();
        if !current.is_empty() && current.len() + targets.len() + 1 + new.len() > MAX_TRANSACTION_ITEMS {
            groups.push(std::mem::take(&mut current));
            targets.clear();
            targets.extend(e.facts.iter().map(target));
        } else {
            targets.extend(new);
        }
        current.push(e);
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// What a group of events adds, merged per item.
#[derive(Default)]
struct Merged<'a> {
    /// held, booked, bookings, revenue.
    shows: BTreeMap<&'a str, [i64; 4]>,
    /// bookings, revenue.
    days: BTreeMap<&'a str, [i64; 2]>,
    /// In event order, which decides ties between equal times as the embedded store does.
    tickets: BTreeMap<&'a str, Vec<&'a TicketFact>>,
}

impl<'a> Merged<'a> {
    fn of(events: &[&'a Facts<'a>]) -> Self {
        let mut m = Merged::default();
        for fact in events.iter().flat_map(|e| &e.facts) {
            match fact {
                Fact::Show { show_id, held, booked, bookings, revenue_cents } => {
                    let c = m.shows.entry(show_id).or_default();
                    for (total, add) in c.iter_mut().zip([held, booked, bookings, revenue_cents]) {
                        *total = total.saturating_add(*add);
                    }
                }
                Fact::Day { day, bookings, revenue_cents } => {
                    let c = m.days.entry(day).or_default();
                    c[0] = c[0].saturating_add(*bookings);
                    c[1] = c[1].saturating_add(*revenue_cents);
                }
                Fact::Ticket(t) => m.tickets.entry(&t.ticket_id).or_default().push(t),
            }
        }
        m
    }
}

fn ticket_key(ticket_id: &str) -> Item {
    item([("ticket_id", s(ticket_id))])
}

/// A ticket's stored state and the version its conditional put checks.
fn ticket_from(item: &Item) -> Result<(TicketState, Option<u64>), PortError> {
    let state = TicketState {
        stats: TicketStats {
            status: opt_s(item, "status").map(str::to_owned),
            assignee: opt_s(item, "assignee").map(str::to_owned),
            created_at: opt_millis(item, "created_at")?,
            first_response_at: opt_millis(item, "first_response_at")?,
            solved_at: opt_millis(item, "solved_at")?,
        },
        status_at: opt_millis(item, "status_at")?,
        assignee_at: opt_millis(item, "assignee_at")?,
    };
    Ok((state, opt_n(item, "version")?))
}

impl DynamoStore {
    fn show_add(
        &self,
        show_id: &str,
        [held, booked, bookings, revenue]: [i64; 4],
    ) -> Result<TransactWriteItem, PortError> {
        let p = Placeholders::names(&["seats_held", "seats_booked", "bookings", "revenue_cents"])
            .value("held", n(held))
            .value("booked", n(booked))
            .value("bookings", n(bookings))
            .value("revenue", n(revenue));
        // ADD creates the item and its counters at zero when absent, and commutes.
        update(
            &self.show_stats,
            item([("show_id", s(show_id))]),
            "ADD #seats_held :held, #seats_booked :booked, #bookings :bookings, #revenue_cents :revenue",
            None,
            p,
        )
    }

    fn day_add(&self, day: &str, [bookings, revenue]: [i64; 2]) -> Result<TransactWriteItem, PortError> {
        let p = Placeholders::names(&["bookings", "revenue_cents"])
            .value("bookings", n(bookings))
            .value("revenue", n(revenue));
        let key = item([("scope", s(ALL_DAYS)), ("day", s(day))]);
        update(&self.daily_stats, key, "ADD #bookings :bookings, #revenue_cents :revenue", None, p)
    }

    /// The ticket's new state, put on condition that it is still the version read (or
    /// still absent), so two writers never lose each other's facts.
    fn ticket_put(
        &self,
        ticket_id: &str,
        state: &TicketState,
        read: Option<Option<u64>>,
    ) -> Result<TransactWriteItem, PortError> {
        let st = &state.stats;
        let texts = [("status", &st.status), ("assignee", &st.assignee)];
        let times = [
            ("status_at", state.status_at),
            ("assignee_at", state.assignee_at),
            ("created_at", st.created_at),
            ("first_response_at", st.first_response_at),
            ("solved_at", st.solved_at),
        ];
        let (condition, p) = match read {
            None => ("attribute_not_exists(#ticket_id)", Placeholders::names(&["ticket_id"])),
            Some(None) => ("attribute_not_exists(#version)", Placeholders::names(&["version"])),
            Some(Some(v)) => ("#version = :version", Placeholders::names(&["version"]).value("version", n(v))),
        };
        let next = read.flatten().unwrap_or(0) + 1;
        // What is not known yet is left out, not stored as NULL.
        let ticket = item(
            [("ticket_id", s(ticket_id)), ("version", n(next))]
                .into_iter()
                .chain(texts.into_iter().filter_map(|(name, v)| v.as_ref().map(|v| (name, s(v.clone())))))
                .chain(times.into_iter().filter_map(|(name, t)| t.map(|t| (name, millis(t))))),
        );
        put(&self.ticket_stats, ticket, Some(condition), p)
    }

    /// Reads the group's tickets and builds its transaction: each event's mark, named by
    /// the slot returned beside the event, then one item per show, day and ticket.
    async fn plan<'g, 'e>(
        &self,
        group: &[&'g Facts<'e>],
        now: Timestamp,
    ) -> Result<(Transaction, Vec<(Slot, &'g Facts<'e>)>), PortError> {
        let merged = Merged::of(group);
        let mut tx = Transaction::default();
        let mut marks = Vec::with_capacity(group.len());
        for e in group {
            marks.push((tx.add(handled_mark(&self.handled_events, ANALYTICS, &e.event.id, now)?), *e));
        }
        for (show_id, add) in &merged.shows {
            tx.add(self.show_add(show_id, *add)?);
        }
        for (day, add) in &merged.days {
            tx.add(self.day_add(day, *add)?);
        }
        if merged.tickets.is_empty() {
            return Ok((tx, marks));
        }
        let keys = merged.tickets.keys().map(|id| ticket_key(id)).collect();
        let mut stored: HashMap<String, (TicketState, Option<u64>)> = HashMap::new();
        for item in self.get_many(&self.ticket_stats, keys).await? {
            stored.insert(get_s(&item, "ticket_id")?.to_owned(), ticket_from(&item)?);
        }
        for (ticket_id, facts) in &merged.tickets {
            let (mut state, read) = match stored.remove(*ticket_id) {
                Some((state, version)) => (state, Some(version)),
                None => (TicketState::default(), None),
            };
            facts.iter().for_each(|f| state.apply(f));
            tx.add(self.ticket_put(ticket_id, &state, read)?);
        }
        Ok((tx, marks))
    }

    /// Commits one group; returns how many of its events were new. An event whose mark
    /// exists was handled before (by an earlier delivery or a concurrent worker): it is
    /// left out and the rest tried again, within the round. A ticket that changed since
    /// the read loses the round: the next one reads it again.
    async fn record_group(&self, group: Vec<&Facts<'_>>) -> Result<usize, PortError> {
        let group = &group;
        retrying("record_events", ATTEMPTS, move || async move {
            let mut group = group.clone();
            while !group.is_empty() {
                let (tx, marks) = self.plan(&group, clock::now()).await?;
                let Err(cancelled) = self.transact("record_events", tx).await? else {
                    return Ok(Step::Done(group.len()));
                };
                let fresh: Vec<&Facts> =
                    marks.iter().filter(|(mark, _)| !cancelled.failed(*mark)).map(|(_, e)| *e).collect();
                if fresh.len() == group.len() {
                    return Ok(Step::Again("a ticket changed since it was read"));
                }
                tracing::debug!(handled = group.len() - fresh.len(), "events applied before; leaving them out");
                group = fresh;
            }
            Ok(Step::Done(0))
        })
        .await
    }
}

#[async_trait]
impl AnalyticsStore for DynamoStore {
    async fn record_events(&self, events: &[CloudEvent]) -> Result<usize, PortError> {
        // One event once, even within a batch: its mark may be in a transaction only once.
        let mut ids = HashSet::new();
        let events: Vec<Facts> = events
            .iter()
            .filter(|e| ids.insert(e.id.as_str()))
            .map(|event| Facts { event, facts: report::facts(event) })
            .collect();
        let mut applied = 0;
        for group in groups(&events) {
            applied += self.record_group(group).await?;
        }
        Ok(applied)
    }

    async fn show_counters(&self, show_id: &ShowId) -> Result<ShowCounters, PortError> {
        let Some(item) = self.get_one(&self.show_stats, item([("show_id", s(show_id.as_str()))])).await? else {
            return Ok(ShowCounters::default());
        };
        let count = |name: &str| opt_n::<i64>(&item, name).map(Option::unwrap_or_default);
        Ok(ShowCounters {
            seats_booked: count("seats_booked")?,
            seats_held: count("seats_held")?,
            bookings: count("bookings")?,
            revenue_cents: count("revenue_cents")?,
        })
    }

    /// A Scan: the table holds nothing but ticket stats, so reading all of it is the
    /// answer, and keyed by ticket its writes spread over every partition.
    async fn ticket_stats(&self) -> Result<Vec<TicketStats>, PortError> {
        let items = self
            .client
            .scan()
            .table_name(&self.ticket_stats)
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| port_error("dynamodb.scan(ticket stats)", &e))?;
        items.iter().map(|item| Ok(ticket_from(item)?.0.stats)).collect()
    }

    async fn daily(&self, limit: usize) -> Result<Vec<DailyReport>, PortError> {
        let p = Placeholders::names(&["scope"]).value("scope", s(ALL_DAYS));
        let items = PartitionQuery::new(&self.daily_stats, "#scope = :scope", &p)
            .descending()
            .limit(limit)
            .read(&self.client, "dynamodb.query(daily stats)")
            .await?;
        items
            .iter()
            .map(|item| {
                Ok(DailyReport {
                    day: get_s(item, "day")?.to_owned(),
                    bookings: get_n(item, "bookings")?,
                    revenue_cents: get_n(item, "revenue_cents")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::event::EventType;
    use serde_json::json;

    fn confirmed(show: &str, n: usize) -> CloudEvent {
        let seats: Vec<String> = (0..n).map(|i| format!("A{i}")).collect();
        let data = json!({"show_id": show, "seat_ids": seats, "amount_cents": 100});
        let correlation = uuid::Uuid::new_v4().to_string();
        CloudEvent::new(EventType::BookingConfirmed, "booking", show, &correlation, data, clock::now())
    }

    #[test]
    fn a_group_never_exceeds_one_transaction() {
        // Every event names its own show and the same day: a mark and a show item each.
        let events: Vec<CloudEvent> = (0..120).map(|i| confirmed(&format!("show_{i}"), 1)).collect();
        let facts: Vec<Facts> = events.iter().map(|event| Facts { event, facts: report::facts(event) }).collect();
        let groups = groups(&facts);
        assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), 120);
        for g in &groups {
            let targets: HashSet<Target> = g.iter().flat_map(|e| e.facts.iter().map(target)).collect();
            assert!(g.len() + targets.len() <= MAX_TRANSACTION_ITEMS, "{} + {}", g.len(), targets.len());
        }
        assert_eq!(groups[0].len(), 49, "49 marks + 49 shows + 1 day");
    }

    #[test]
    fn facts_of_one_show_merge_into_one_item() {
        let events = [confirmed("s", 2), confirmed("s", 3)];
        let facts: Vec<Facts> = events.iter().map(|event| Facts { event, facts: report::facts(event) }).collect();
        let group: Vec<&Facts> = facts.iter().collect();
        let merged = Merged::of(&group);
        assert_eq!(merged.shows["s"], [-5, 5, 2, 200]);
        assert_eq!(merged.days.len(), 1);
        assert_eq!(merged.days.values().next(), Some(&[2, 200]));
    }
}
