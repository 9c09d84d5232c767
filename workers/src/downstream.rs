//! The pools downstream of the topic: notifications (render, store, emit
//! `usher.notification.sent`) and analytics (fold every event into the aggregates, a
//! whole batch in one write). Both dedupe by event id in the same write as their effect.

use crate::consumer::{Effects, Handler, HandlerError};
use async_trait::async_trait;
use domain::PortError;
use domain::event::CloudEvent;
use domain::notification;
use domain::queue::ReceivedMessage;
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

    async fn record(&self, events: &[CloudEvent]) -> Result<Effects, HandlerError> {
        self.backend.analytics.record_events(events).await?;
        Ok(Effects::default())
    }
}

#[async_trait]
impl Handler for AnalyticsPool {
    fn pool(&self) -> &'static str {
        "analytics"
    }

    async fn handle(&self, message: &ReceivedMessage) -> Result<Effects, HandlerError> {
        self.record(&[parse(message)?]).await
    }

    /// Folds the batch's events in one write. If that write fails, each event is tried on
    /// its own, so one event that cannot be applied fails alone.
    async fn handle_batch(&self, messages: &[ReceivedMessage]) -> Option<Vec<Result<Effects, HandlerError>>> {
        let parsed: Vec<Result<CloudEvent, HandlerError>> = messages.iter().map(parse).collect();
        let events: Vec<CloudEvent> = parsed.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
        let together = events.is_empty() || self.record(&events).await.is_ok();
        let mut outcomes = Vec::with_capacity(parsed.len());
        for event in parsed {
            outcomes.push(match event {
                Ok(_) if together => Ok(Effects::default()),
                Ok(event) => self.record(std::slice::from_ref(&event)).await,
                Err(e) => Err(e),
            });
        }
        Some(outcomes)
    }

    async fn dead_lettered(&self, _message: &ReceivedMessage, _reason: &str) -> Result<(), PortError> {
        Ok(())
    }
}
