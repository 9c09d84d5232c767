//! The pools downstream of the topic: notifications (render, store, emit
//! `usher.notification.sent`) and analytics (fold every event into the aggregates, a
//! whole batch in one write). Both dedupe by event id in the same write as their effect.

use crate::consumer::{Effects, Handler, HandlerError};
use async_trait::async_trait;
use domain::PortError;
use domain::event::CloudEvent;
use domain::notification;
use domain::queue::{Queue, ReceivedMessage};
use domain::request::Delivery;
use infra::Backend;

fn parse(message: &ReceivedMessage) -> Result<CloudEvent, HandlerError> {
    serde_json::from_str(&message.body).map_err(|e| HandlerError::Poison(format!("unparseable event: {e}")))
}

pub struct NotificationsPool {
    backend: Backend,
}

impl NotificationsPool {
    pub fn new(backend: Backend) -> Self {
        Self { backend }
    }
}

#[async_trait]
impl Handler for NotificationsPool {
    fn pool(&self) -> &'static str {
        notification::POOL
    }

    async fn handle(&self, message: &ReceivedMessage) -> Result<Effects, HandlerError> {
        let event = parse(message)?;
        let rendered = notification::render(&event);
        // The `usher.notification.sent` events commit with the notifications, in the outbox.
        // They continue the trace of this message's span.
        let traceparent = infra::logging::current_traceparent();
        let sent: Vec<CloudEvent> = rendered
            .iter()
            .map(|n| notification::sent(n, &event.correlationid).traced(traceparent.as_deref()))
            .collect();
        let first = self.backend.notifications.record_notifications(&event, &rendered, &sent).await?;
        if first {
            for n in &rendered {
                tracing::info!(notification_id = %n.notification_id, recipient = %n.recipient, subject = %n.subject, "notification sent");
            }
        }
        Ok(Effects::default())
    }

    async fn dead_lettered(&self, _message: &ReceivedMessage, _reason: &str) -> Result<(), PortError> {
        // Events have no status document; the DLQ and its attributes are the record.
        Ok(())
    }
}

pub struct AnalyticsPool {
    backend: Backend,
}

impl AnalyticsPool {
    pub fn new(backend: Backend) -> Self {
        Self { backend }
    }

    /// Folds `events`, deleting the messages that carried them in the same write where
    /// the store can.
    async fn record(&self, events: &[CloudEvent], messages: &[&ReceivedMessage]) -> Result<Effects, HandlerError> {
        let queue = Queue::Analytics.source();
        let delivered: Vec<Delivery> =
            messages.iter().map(|m| Delivery { queue, receipt: m.receipt.clone() }).collect();
        let acknowledged = self.backend.analytics.record_delivered(events, &delivered).await?;
        Ok(Effects { acknowledged, ..Effects::default() })
    }
}

#[async_trait]
impl Handler for AnalyticsPool {
    fn pool(&self) -> &'static str {
        "analytics"
    }

    async fn handle(&self, message: &ReceivedMessage) -> Result<Effects, HandlerError> {
        self.record(&[parse(message)?], &[message]).await
    }

    /// Folds the batch's events in one write, which deletes their messages too where the
    /// store can. If that write fails, each event is tried on its own, so one event that
    /// cannot be applied fails alone.
    async fn handle_batch(&self, messages: &[ReceivedMessage]) -> Option<Vec<Result<Effects, HandlerError>>> {
        let mut events = Vec::with_capacity(messages.len());
        let mut carriers = Vec::with_capacity(messages.len());
        // Each message's event, as its place in `events`, or why it did not parse.
        let parsed: Vec<Result<usize, HandlerError>> = messages
            .iter()
            .map(|message| {
                events.push(parse(message)?);
                carriers.push(message);
                Ok(events.len() - 1)
            })
            .collect();
        // Whether the batch's write deleted the messages, if it succeeded.
        let together = if events.is_empty() { None } else { self.record(&events, &carriers).await.ok() }
            .map(|effects| effects.acknowledged);
        let mut outcomes = Vec::with_capacity(parsed.len());
        for (event, message) in parsed.into_iter().zip(messages) {
            outcomes.push(match (event, together) {
                (Ok(_), Some(acknowledged)) => Ok(Effects { acknowledged, ..Effects::default() }),
                (Ok(at), None) => self.record(std::slice::from_ref(&events[at]), &[message]).await,
                (Err(e), _) => Err(e),
            });
        }
        Some(outcomes)
    }

    async fn dead_lettered(&self, _message: &ReceivedMessage, _reason: &str) -> Result<(), PortError> {
        Ok(())
    }
}
