//! The `events` topic: each published event is copied, in the same commit, onto every
//! subscribed queue whose filter accepts its `type` (SNS raw delivery).

use super::Embedded;
use super::db::{json_error, sql_error};
use super::queue::enqueue;
use async_trait::async_trait;
use domain::PortError;
use domain::clock;
use domain::event::CloudEvent;
use domain::ports::EventBus;
use domain::queue::{OutgoingMessage, Queue, QueueAddr};
use rusqlite::{Connection, params};
use std::path::Path;

/// A queue subscribed to the topic, with its filter on `type` (`None`: every type).
pub(super) struct Subscription {
    queue: QueueAddr,
    types: Option<Vec<String>>,
}

impl Subscription {
    fn accepts(&self, event: &CloudEvent) -> bool {
        self.types.as_ref().is_none_or(|types| types.iter().any(|t| t == event.event_type.as_str()))
    }
}

/// Writes the subscriptions of [`Queue::subscription`] and returns them (idempotent).
pub(super) fn ensure_subscriptions(path: &Path) -> Result<Vec<Subscription>, PortError> {
    let conn = Connection::open(path).map_err(sql_error)?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql_error)?;
    let mut subscriptions = Vec::new();
    for queue in Queue::ALL {
        let types: Option<Vec<String>> = match queue.subscription() {
            domain::queue::Subscription::None => continue,
            domain::queue::Subscription::Every => None,
            domain::queue::Subscription::Only(ts) => Some(ts.iter().map(|t| t.as_str().to_owned()).collect()),
        };
        let stored = types.as_ref().map(serde_json::to_string).transpose().map_err(json_error)?;
        conn.execute(
            "INSERT INTO subscriptions (queue, types) VALUES (?1, ?2)
             ON CONFLICT (queue) DO UPDATE SET types = excluded.types",
            params![queue.name(), stored],
        )
        .map_err(sql_error)?;
        subscriptions.push(Subscription { queue: queue.source(), types });
    }
    Ok(subscriptions)
}

#[async_trait]
impl EventBus for Embedded {
    async fn publish(&self, events: &[CloudEvent]) -> Result<(), PortError> {
        let mut deliveries: Vec<(String, Vec<OutgoingMessage>)> = Vec::new();
        for subscription in &self.subscriptions {
            let messages: Vec<OutgoingMessage> = events
                .iter()
                .filter(|e| subscription.accepts(e))
                .map(|e| OutgoingMessage::new(e.to_json(), e.attributes()))
                .collect();
            if !messages.is_empty() {
                deliveries.push((subscription.queue.name(), messages));
            }
        }
        if deliveries.is_empty() {
            return Ok(());
        }
        let targets: Vec<String> = deliveries.iter().map(|(q, _)| q.clone()).collect();
        self.db
            .write(move |conn| {
                let now = clock::now();
                for (queue, messages) in &deliveries {
                    enqueue(conn, queue, messages, std::time::Duration::ZERO, now)?;
                }
                Ok(())
            })
            .await?;
        for queue in targets {
            self.notify(&queue);
        }
        Ok(())
    }
}
