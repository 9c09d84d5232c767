//! The transactional outbox: what a command's transaction commits for delivery after it,
//! events for the topic and messages for a queue. A relay delivers pending entries and
//! forgets them, independently of the command message, so a bus outage delays events
//! but never loses them (see docs/design.md, "The outbox").

use crate::clock::Timestamp;
use crate::command::CommandEnvelope;
use crate::event::CloudEvent;
use crate::queue::{Attributes, OutgoingMessage, Queue, QueueAddr};
use crate::request::Outcome;
use serde::{Deserialize, Serialize};

/// A message to send once the transaction that made it commits, not before `deliver_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledMessage {
    /// The logical queue name (`booking-commands`, or `…-dlq`).
    pub queue: String,
    pub body: String,
    pub attributes: Attributes,
    pub deliver_at: Timestamp,
}

impl ScheduledMessage {
    /// A command for its pool's queue, invisible until `deliver_at`.
    pub fn command(envelope: &CommandEnvelope, deliver_at: Timestamp) -> Self {
        let message = envelope.message();
        Self {
            queue: envelope.command.queue().source().name(),
            body: message.body,
            attributes: message.attributes,
            deliver_at,
        }
    }

    /// Where it goes; `None` for a queue this build does not know (a corrupt entry).
    pub fn address(&self) -> Option<QueueAddr> {
        let queue = Queue::parse(&self.queue)?;
        Some(if self.queue.ends_with("-dlq") { queue.dlq() } else { queue.source() })
    }

    /// The message as sent at `now`: delayed by what is left until `deliver_at`.
    pub fn outgoing(&self, now: Timestamp) -> OutgoingMessage {
        let mut message = OutgoingMessage::new(self.body.clone(), self.attributes.clone());
        message.delay = (self.deliver_at - now).try_into().unwrap_or_default();
        message
    }
}

/// One entry of the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutboxEntry {
    Event { event: CloudEvent },
    Message { message: ScheduledMessage },
}

impl OutboxEntry {
    /// A stable id: an event's own id (so writing the same event twice stores it once),
    /// or a fresh one for a message.
    pub fn id(&self) -> String {
        match self {
            OutboxEntry::Event { event } => format!("evt_{}", event.id),
            OutboxEntry::Message { .. } => format!("msg_{}", uuid::Uuid::now_v7().simple()),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an outbox entry always serializes")
    }

    pub fn parse(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// An entry as the outbox keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: String,
    pub created_at: Timestamp,
    pub entry: OutboxEntry,
}

/// How far behind the relay is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxBacklog {
    pub pending: u64,
    pub oldest: Option<Timestamp>,
}

/// What a command decided: its terminal outcome, the events it emits and the messages it
/// sends. An adapter commits all of it, with the effects, in one transaction; the events
/// and messages go to the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub outcome: Outcome,
    pub events: Vec<CloudEvent>,
    pub messages: Vec<ScheduledMessage>,
}

impl Decision {
    pub fn new(outcome: Outcome, events: Vec<CloudEvent>) -> Self {
        Self { outcome, events, messages: Vec::new() }
    }

    /// Every outbox entry the decision commits, events first.
    pub fn entries(&self) -> Vec<OutboxEntry> {
        outbox_entries(&self.events, &self.messages)
    }
}

impl From<(Outcome, Vec<CloudEvent>)> for Decision {
    fn from((outcome, events): (Outcome, Vec<CloudEvent>)) -> Self {
        Self::new(outcome, events)
    }
}

pub fn outbox_entries(events: &[CloudEvent], messages: &[ScheduledMessage]) -> Vec<OutboxEntry> {
    let events = events.iter().map(|e| OutboxEntry::Event { event: e.clone() });
    let messages = messages.iter().map(|m| OutboxEntry::Message { message: m.clone() });
    events.chain(messages).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Role};
    use crate::clock::from_millis;
    use crate::command::Command;
    use crate::event::EventType;
    use crate::ids::UserId;
    use std::time::Duration;

    #[test]
    fn entries_round_trip_and_events_keep_their_id() {
        let event = CloudEvent::new(EventType::HoldPlaced, "booking", "h", "r", serde_json::json!({}), from_millis(1));
        let entry = OutboxEntry::Event { event: event.clone() };
        assert_eq!(entry.id(), OutboxEntry::Event { event }.id());
        assert_eq!(OutboxEntry::parse(&entry.to_json()).unwrap(), entry);
    }

    #[test]
    fn a_scheduled_message_is_delayed_by_what_is_left() {
        let envelope = CommandEnvelope {
            request_id: "req_1".into(),
            actor: Actor { sub: UserId::new("alice"), role: Role::Customer },
            issued_at: from_millis(0),
            traceparent: None,
            command: Command::ExpireHold { hold_id: "hold_1".into(), expires_at: from_millis(10_000) },
        };
        let m = ScheduledMessage::command(&envelope, from_millis(10_000));
        assert_eq!(m.address(), Some(Queue::BookingCommands.source()));
        assert_eq!(m.outgoing(from_millis(4_000)).delay, Duration::from_secs(6));
        assert_eq!(m.outgoing(from_millis(20_000)).delay, Duration::ZERO);
        let entry = OutboxEntry::Message { message: m };
        assert_eq!(OutboxEntry::parse(&entry.to_json()).unwrap(), entry);
    }
}
