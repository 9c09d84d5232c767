//! The `events` topic: each event is copied onto every queue whose subscription
//! ([`Queue::subscription`]) accepts its `type` (SNS raw delivery).
//!
//! A command's events take the short way: [`fan_out`] writes them onto the subscribed
//! queues inside the command's own transaction, with its scheduled messages, so they are
//! on their queues exactly when its effects are committed, and there is no bus to be down
//! in between. [`EventBus::publish`] remains for what the relay still finds in the outbox
//! (entries an older version left there), and for the port's callers.

use super::Embedded;
use super::queue::enqueue;
use async_trait::async_trait;
use domain::PortError;
use domain::clock::{self, Timestamp};
use domain::event::CloudEvent;
use domain::outbox::ScheduledMessage;
use domain::ports::EventBus;
use domain::queue::{OutgoingMessage, Queue};
use rusqlite::Connection;
use std::collections::BTreeSet;

/// Delivers what a command commits in the caller's transaction: each event onto every
/// queue subscribed to its type, each scheduled message onto its queue, delayed by what
/// is left until it is due. Returns the events as one JSON array, built from the same
/// serialization, for the caller that stores them too.
pub(super) fn fan_out(
    conn: &Connection,
    events: &[CloudEvent],
    messages: &[ScheduledMessage],
    now: Timestamp,
) -> Result<String, PortError> {
    let mut stored = String::with_capacity(2 + 1024 * events.len());
    stored.push('[');
    for (i, event) in events.iter().enumerate() {
        let body = event.to_json();
        if i > 0 {
            stored.push(',');
        }
        stored.push_str(&body);
        let message = [OutgoingMessage::new(body, event.attributes())];
        for queue in Queue::subscribed_to(event.event_type) {
            enqueue(conn, queue.name(), &message, now)?;
        }
    }
    stored.push(']');
    for message in messages {
        let queue = message
            .address()
            .ok_or_else(|| PortError::Corrupt(format!("a scheduled message for an unknown queue {}", message.queue)))?;
        enqueue(conn, &queue.name(), &[message.outgoing(now)], now)?;
    }
    Ok(stored)
}

impl Embedded {
    /// Wakes the receivers of every queue these committed events were copied onto.
    pub(super) fn wake_subscribers(&self, events: &[CloudEvent]) {
        let queues: BTreeSet<Queue> = events.iter().flat_map(|e| Queue::subscribed_to(e.event_type)).collect();
        for queue in queues {
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
        let owned = events.to_vec();
        self.db.write(move |conn| fan_out(conn, &owned, &[], clock::now())).await?;
        self.wake_subscribers(events);
        Ok(())
    }
}
