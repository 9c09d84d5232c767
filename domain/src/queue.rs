//! The logical queues and their messages, in SQS's terms: what a command or event rides
//! on between ingress, the topic and the pools. The port that moves them is the
//! `MessageQueue` port in `ports`.

use crate::clock::Timestamp;
use crate::event::EventType;
use std::collections::BTreeMap;
use std::time::Duration;

/// The logical queues. Each has a dead-letter queue beside it (`<name>-dlq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Queue {
    BookingCommands,
    TicketCommands,
    Notifications,
    Analytics,
}

impl Queue {
    pub const ALL: [Queue; 4] = [Queue::BookingCommands, Queue::TicketCommands, Queue::Notifications, Queue::Analytics];

    pub fn name(self) -> &'static str {
        match self {
            Queue::BookingCommands => "booking-commands",
            Queue::TicketCommands => "ticket-commands",
            Queue::Notifications => "notifications",
            Queue::Analytics => "analytics",
        }
    }

    /// A logical name, with or without `-dlq`.
    pub fn parse(name: &str) -> Option<Queue> {
        let base = name.strip_suffix("-dlq").unwrap_or(name);
        Self::ALL.into_iter().find(|q| q.name() == base)
    }

    pub fn source(self) -> QueueAddr {
        QueueAddr { queue: self, dead: false }
    }

    pub fn dlq(self) -> QueueAddr {
        QueueAddr { queue: self, dead: true }
    }

    /// The queues the topic copies an event of this type onto.
    pub fn subscribed_to(event_type: EventType) -> impl Iterator<Item = Queue> {
        Self::ALL.into_iter().filter(move |q| q.subscription().accepts(event_type))
    }

    /// How the topic feeds this queue.
    pub fn subscription(self) -> Subscription {
        match self {
            Queue::BookingCommands | Queue::TicketCommands => Subscription::None,
            Queue::Notifications => Subscription::Only(&[
                EventType::BookingConfirmed,
                EventType::TicketAssigned,
                EventType::TicketStatusChanged,
                EventType::TicketCommented,
            ]),
            Queue::Analytics => Subscription::Every,
        }
    }
}

/// A queue or its dead-letter queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueueAddr {
    pub queue: Queue,
    pub dead: bool,
}

impl QueueAddr {
    pub fn name(self) -> String {
        if self.dead { format!("{}-dlq", self.queue.name()) } else { self.queue.name().to_owned() }
    }
}

/// Message attributes: string pairs, as SQS message attributes.
pub type Attributes = BTreeMap<String, String>;

/// The command or event type of a message.
pub const ATTR_TYPE: &str = "type";
/// The request a message belongs to, so operators can find its status document.
pub const ATTR_REQUEST_ID: &str = "request_id";
/// Set by the worker that dead-letters a message.
pub const ATTR_FAILURE_REASON: &str = "failure_reason";
pub const ATTR_FAILED_AT: &str = "failed_at";
/// How many times the source queue delivered the message before it was dead-lettered.
pub const ATTR_RECEIVE_COUNT: &str = "receive_count";
/// The W3C trace context (`traceparent`) of what caused the message, so the worker's
/// span continues the trace of the HTTP request (or of the command that emitted an event).
pub const ATTR_TRACEPARENT: &str = "traceparent";

/// What a queue holds right now, as operators read it (`usher status`, the queue gauges).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Ready to be received.
    pub visible: u64,
    /// Received and not yet deleted, or waiting out a retry's backoff.
    pub in_flight: u64,
    /// Sent with a delay that has not yet passed (a hold's expiry).
    pub delayed: u64,
    /// How long the oldest message that is visible or in flight has been waiting since it
    /// became deliverable. `None` when the queue is empty of those, or when the backend
    /// cannot tell without receiving (SQS has no such attribute: see docs/contract.md §6).
    pub oldest_age: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub body: String,
    pub attributes: Attributes,
    /// Invisible for this long after the send; adapters cap it at [`MessageQueue::max_delay`].
    pub delay: Duration,
}

impl OutgoingMessage {
    pub fn new(body: String, attributes: Attributes) -> Self {
        Self { body, attributes, delay: Duration::ZERO }
    }
}

/// Proof of one receive; deleting or re-timing the message needs the latest one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Receipt(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt: Receipt,
    pub body: String,
    pub attributes: Attributes,
    /// How many times this message has been received, this receive included (SQS's
    /// `ApproximateReceiveCount`). The worker dead-letters on the last allowed one.
    pub receive_count: u32,
    pub sent_at: Timestamp,
}

/// How the topic feeds a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscription {
    /// Not subscribed: a command queue, fed by ingress.
    None,
    /// Every event type.
    Every,
    /// Only these event types (a filter policy on `type`).
    Only(&'static [EventType]),
}

impl Subscription {
    /// Whether the topic copies an event of this type onto the queue.
    pub fn accepts(&self, event_type: EventType) -> bool {
        match self {
            Subscription::None => false,
            Subscription::Every => true,
            Subscription::Only(types) => types.contains(&event_type),
        }
    }
}
