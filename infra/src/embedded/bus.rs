//! The `events` topic: each event is copied onto every subscribed queue whose filter
//! accepts its `type` (SNS raw delivery).
//!
//! A command's events take the short way: [`fan_out`] writes them onto the subscribed
//! queues inside the command's own transaction, with its scheduled messages, so they are
//! on their queues exactly when its effects are committed, and there is no bus to be down
//! in between. [`EventBus::publish`] remains for what the relay still finds in the outbox
//! (entries an older version left there), and for the port's callers.

use super::Embedded;
use super::db::{json_error, sql_error};
use super::queue::enqueue;
use async_trait::async_trait;
use domain::PortError;
use domain::clock::{self, Timestamp};
use domain::event::CloudEvent;
use domain::outbox::{OutboxEntry, outbox_entries};
use domain::ports::EventBus;
use domain::queue::{OutgoingMessage, Queue};
use rusqlite::{Connection, params};
use std::path::Path;

/// Writes the subscriptions of [`Queue::subscription`] into the file, for anyone reading
/// it (idempotent).
pub(super) fn ensure_subscriptions(path: &Path) -> Result<(), PortError> {
    let conn = Connection::open(path).map_err(sql_error)?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql_error)?;
    for queue in Queue::ALL {
        let types: Option<Vec<&str>> = match queue.subscription() {
            domain::queue::Subscription::None => continue,
            domain::queue::Subscription::Every => None,
            domain::queue::Subscription::Only(ts) => Some(ts.iter().map(|t| t.as_str()).collect()),
        };
        let stored = types.as_ref().map(serde_json::to_string).transpose().map_err(json_error)?;
        conn.execute(
            "INSERT INTO subscriptions (queue, types) VALUES (?1, ?2)
             ON CONFLICT (queue) DO UPDATE SET types = excluded.types",
            params![queue.name(), stored],
        )
        .map_err(sql_error)?;
    }
    Ok(())
}

/// Delivers what a command commits in the caller's transaction: each event onto every
/// queue subscribed to its type, each scheduled message onto its queue, delayed by what
/// is left until it is due.
pub(super) fn fan_out(conn: &Connection, entries: &[OutboxEntry], now: Timestamp) -> Result<(), PortError> {
    for entry in entries {
        match entry {
            OutboxEntry::Event { event } => {
                let message = [OutgoingMessage::new(event.to_json(), event.attributes())];
                for queue in Queue::subscribed_to(event.event_type) {
                    enqueue(conn, queue.name(), &message, now)?;
                }
            }
            OutboxEntry::Message { message } => {
                let queue = message.address().ok_or_else(|| {
                    PortError::Corrupt(format!("a scheduled message for an unknown queue {}", message.queue))
                })?;
                enqueue(conn, &queue.name(), &[message.outgoing(now)], now)?;
            }
        }
    }
    Ok(())
}

impl Embedded {
    /// Wakes the receivers of every queue these committed events were copied onto.
    pub(super) fn wake_subscribers(&self, events: &[CloudEvent]) {
        for queue in Queue::ALL.into_iter().filter(|q| events.iter().any(|e| q.subscription().accepts(e.event_type))) {
            self.notify(queue.name());
        }
    }
}

#[async_trait]
impl EventBus for Embedded {
    async fn publish(&self, events: &[CloudEvent]) -> Result<(), PortError> {
        if events.is_empty() {
            return Ok(());
        }
        let entries = outbox_entries(events, &[]);
        self.db.write(move |conn| fan_out(conn, &entries, clock::now())).await?;
        self.wake_subscribers(events);
        Ok(())
    }
}
