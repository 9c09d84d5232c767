//! Events on the topic, in a CloudEvents 1.0 structured-JSON envelope.
//!
//! An event's `id` is derived from what caused it (request, type, subject), so a worker
//! that redoes a committed command re-publishes the very same ids and consumers dedupe.

use crate::clock::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema)]
pub enum EventType {
    #[serde(rename = "usher.booking.hold.placed")]
    HoldPlaced,
    #[serde(rename = "usher.booking.hold.rejected")]
    HoldRejected,
    #[serde(rename = "usher.booking.hold.released")]
    HoldReleased,
    #[serde(rename = "usher.booking.hold.expired")]
    HoldExpired,
    #[serde(rename = "usher.booking.confirmed")]
    BookingConfirmed,
    #[serde(rename = "usher.booking.failed")]
    BookingFailed,
    #[serde(rename = "usher.ticket.created")]
    TicketCreated,
    #[serde(rename = "usher.ticket.assigned")]
    TicketAssigned,
    #[serde(rename = "usher.ticket.status_changed")]
    TicketStatusChanged,
    #[serde(rename = "usher.ticket.commented")]
    TicketCommented,
    #[serde(rename = "usher.request.dead_lettered")]
    RequestDeadLettered,
    #[serde(rename = "usher.notification.sent")]
    NotificationSent,
}

impl EventType {
    pub const ALL: [EventType; 12] = [
        EventType::HoldPlaced,
        EventType::HoldRejected,
        EventType::HoldReleased,
        EventType::HoldExpired,
        EventType::BookingConfirmed,
        EventType::BookingFailed,
        EventType::TicketCreated,
        EventType::TicketAssigned,
        EventType::TicketStatusChanged,
        EventType::TicketCommented,
        EventType::RequestDeadLettered,
        EventType::NotificationSent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::HoldPlaced => "usher.booking.hold.placed",
            EventType::HoldRejected => "usher.booking.hold.rejected",
            EventType::HoldReleased => "usher.booking.hold.released",
            EventType::HoldExpired => "usher.booking.hold.expired",
            EventType::BookingConfirmed => "usher.booking.confirmed",
            EventType::BookingFailed => "usher.booking.failed",
            EventType::TicketCreated => "usher.ticket.created",
            EventType::TicketAssigned => "usher.ticket.assigned",
            EventType::TicketStatusChanged => "usher.ticket.status_changed",
            EventType::TicketCommented => "usher.ticket.commented",
            EventType::RequestDeadLettered => "usher.request.dead_lettered",
            EventType::NotificationSent => "usher.notification.sent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A CloudEvents 1.0 event. `correlationid` is the request that caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    pub specversion: String,
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub time: Timestamp,
    pub subject: String,
    pub datacontenttype: String,
    pub data: Value,
    pub correlationid: String,
    /// The CloudEvents distributed-tracing extension: the W3C trace context of the work
    /// that caused the event, so downstream consumers continue the same trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// An event's id: a uuid v5 of what makes it this event (its cause, type and subject, and
/// which occurrence when there can be several), so that deciding it again gives the same id.
fn event_id(correlation: &str, event_type: EventType, subject: &str, occurrence: Option<&str>) -> String {
    let mut name = format!("{correlation}|{}|{subject}", event_type.as_str());
    if let Some(occurrence) = occurrence {
        name.push('|');
        name.push_str(occurrence);
    }
    uuid::Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes()).to_string()
}

/// Namespace for event ids (uuid v5): any fixed uuid works, this one is Usher's.
const EVENT_ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5f0c_7a3e_58b4_4c2e_9d1e_7f0a_2b6c_d3e1);

impl CloudEvent {
    /// `pool` names the source (`/usher/<pool>`); `subject` is the aggregate id.
    pub fn new(
        event_type: EventType,
        pool: &str,
        subject: &str,
        correlation: &str,
        data: Value,
        time: Timestamp,
    ) -> Self {
        Self {
            specversion: "1.0".to_owned(),
            id: event_id(correlation, event_type, subject, None),
            source: format!("/usher/{pool}"),
            event_type,
            time,
            subject: subject.to_owned(),
            datacontenttype: "application/json".to_owned(),
            data,
            correlationid: correlation.to_owned(),
            traceparent: None,
        }
    }

    /// For an event that can happen more than once to one subject (a request dead-lettered
    /// again after a replay): `occurrence` (its time, say) tells the happenings apart, so
    /// a consumer deduping by id drops none of them, while a redelivery of one keeps its id.
    pub fn occurrence(mut self, occurrence: &str) -> Self {
        self.id = event_id(&self.correlationid, self.event_type, &self.subject, Some(occurrence));
        self
    }

    /// The same event, carrying the trace context `traceparent` (none leaves it off).
    pub fn traced(mut self, traceparent: Option<&str>) -> Self {
        self.traceparent = traceparent.map(str::to_owned);
        self
    }

    pub fn to_json(&self) -> String {
        crate::to_json_sized(self, 1024).expect("an event always serializes")
    }

    /// The message attributes an event travels with to subscribed queues: its `type` (for
    /// filter policies), its `request_id` (the correlation id, for operators and the
    /// consumer's log lines) and, when traced, its `traceparent` (for the consumer's span).
    pub fn attributes(&self) -> crate::queue::Attributes {
        let mut attributes = crate::queue::Attributes::from([
            (crate::queue::ATTR_TYPE.to_owned(), self.event_type.as_str().to_owned()),
            (crate::queue::ATTR_REQUEST_ID.to_owned(), self.correlationid.clone()),
        ]);
        if let Some(traceparent) = &self.traceparent {
            attributes.insert(crate::queue::ATTR_TRACEPARENT.to_owned(), traceparent.clone());
        }
        attributes
    }
}

/// An event's typed `data` as JSON. Every data type is plain serde structs of strings
/// and numbers, so this cannot fail.
pub fn data<T: Serialize>(data: &T) -> Value {
    serde_json::to_value(data).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_millis;
    use serde_json::json;

    #[test]
    fn the_envelope_is_cloudevents_structured_json() {
        let e = CloudEvent::new(EventType::HoldPlaced, "booking", "hold_1", "req_1", json!({"a": 1}), from_millis(0));
        let v: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], "usher.booking.hold.placed");
        assert_eq!(v["source"], "/usher/booking");
        assert_eq!(v["subject"], "hold_1");
        assert_eq!(v["datacontenttype"], "application/json");
        assert_eq!(v["correlationid"], "req_1");
        assert_eq!(v["time"], "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn ids_are_stable_for_the_same_cause_and_differ_otherwise() {
        let a = CloudEvent::new(EventType::HoldPlaced, "booking", "hold_1", "req_1", json!({}), from_millis(0));
        let b = CloudEvent::new(EventType::HoldPlaced, "booking", "hold_1", "req_1", json!({}), from_millis(9));
        let c = CloudEvent::new(EventType::HoldExpired, "booking", "hold_1", "req_1", json!({}), from_millis(0));
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
    }

    #[test]
    fn the_traceparent_extension_rides_in_the_body_and_the_attributes_when_set() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let plain = CloudEvent::new(EventType::HoldPlaced, "booking", "hold_1", "req_1", json!({}), from_millis(0));
        assert!(!plain.to_json().contains("traceparent"));
        assert!(!plain.attributes().contains_key(crate::queue::ATTR_TRACEPARENT));
        assert_eq!(plain.attributes()[crate::queue::ATTR_REQUEST_ID], "req_1");
        let traced = plain.clone().traced(Some(tp));
        let v: Value = serde_json::from_str(&traced.to_json()).unwrap();
        assert_eq!(v["traceparent"], tp);
        assert_eq!(traced.attributes()[crate::queue::ATTR_TRACEPARENT], tp);
        assert_eq!(traced.attributes()[crate::queue::ATTR_TYPE], "usher.booking.hold.placed");
        assert_eq!(traced.id, plain.id, "the trace does not change the event's identity");
        let back: CloudEvent = serde_json::from_str(&traced.to_json()).unwrap();
        assert_eq!(back, traced);
    }

    #[test]
    fn every_type_name_parses_back() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), json!(t.as_str()));
        }
    }
}
