//! Notifications: what the notifications pool renders from events, like the email a real
//! provider would send, for the one person each event concerns.

use crate::clock::Timestamp;
use crate::event::{CloudEvent, EventType};
use crate::ids::{NotificationId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `source` of the notifications pool's events: `/usher/notifications`.
pub const POOL: &str = "notifications";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    pub notification_id: NotificationId,
    pub recipient: UserId,
    pub subject: String,
    pub body: String,
    /// The event that caused it; a redelivered event renders the same notification.
    pub event_id: String,
    pub event_type: EventType,
    pub created_at: Timestamp,
}

const NOTIFICATION_ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x9b2e_41d7_0c6a_4f3e_8a51_d2c4_6e17_b0f9);

fn text(data: &Value, field: &str) -> Option<String> {
    data.get(field).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn list(data: &Value, field: &str) -> String {
    data.get(field)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The notifications an event causes: none for most types. Pure and deterministic, so
/// ids are stable: one recipient gets one notification per event, however redelivered.
pub fn render(event: &CloudEvent) -> Vec<Notification> {
    let d = &event.data;
    let ticket = text(d, "ticket_id").unwrap_or_default();
    let (recipient, subject, body) = match event.event_type {
        EventType::BookingConfirmed => {
            let Some(customer) = text(d, "customer_id") else { return Vec::new() };
            let booking = text(d, "booking_id").unwrap_or_default();
            let amount = d.get("amount_cents").and_then(Value::as_u64).unwrap_or(0);
            (
                customer,
                format!("Your booking {booking} is confirmed"),
                format!(
                    "Seats {} for show {} are yours. We charged {}.\nBooking reference: {booking}",
                    list(d, "seat_ids"),
                    text(d, "show_id").unwrap_or_default(),
                    money(amount)
                ),
            )
        }
        EventType::TicketAssigned => {
            let Some(assignee) = text(d, "assignee") else { return Vec::new() };
            (
                assignee,
                format!("Ticket {ticket} was assigned to you"),
                format!(
                    "Ticket {ticket} ({}) is now yours.",
                    text(d, "subject").unwrap_or_else(|| "no subject".to_owned())
                ),
            )
        }
        EventType::TicketStatusChanged => {
            let Some(requester) = text(d, "requester") else { return Vec::new() };
            // Nobody is told about their own change.
            if text(d, "actor").as_deref() == Some(requester.as_str()) {
                return Vec::new();
            }
            let to = text(d, "to").unwrap_or_default();
            (requester, format!("Your ticket {ticket} is now {to}"), format!("Ticket {ticket} moved to {to}."))
        }
        EventType::TicketCommented => {
            if d.get("public").and_then(Value::as_bool) != Some(true) {
                return Vec::new();
            }
            let author = text(d, "author");
            let requester = text(d, "requester");
            // The requester hears of others' replies; the assignee of the requester's.
            let recipient = if author == requester { text(d, "assignee") } else { requester };
            let Some(recipient) = recipient.filter(|r| Some(r) != author.as_ref()) else { return Vec::new() };
            (
                recipient,
                format!("New reply on ticket {ticket}"),
                format!("{} wrote:\n\n{}", author.unwrap_or_default(), text(d, "body").unwrap_or_default()),
            )
        }
        _ => return Vec::new(),
    };
    let name = format!("{}|{recipient}", event.id);
    let id = uuid::Uuid::new_v5(&NOTIFICATION_ID_NAMESPACE, name.as_bytes()).simple();
    vec![Notification {
        notification_id: NotificationId::from(format!("ntf_{id}")),
        recipient: UserId::new(recipient),
        subject,
        body,
        event_id: event.id.clone(),
        event_type: event.event_type,
        created_at: event.time,
    }]
}

/// `data` of `usher.notification.sent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationSentData {
    pub notification_id: NotificationId,
    pub recipient: UserId,
    pub subject: String,
    /// The event the notification is about.
    pub event_id: String,
    pub event_type: EventType,
}

/// `usher.notification.sent` for a stored notification; the same event on every run.
pub fn sent(n: &Notification, correlation: &str) -> CloudEvent {
    let data = NotificationSentData {
        notification_id: n.notification_id.clone(),
        recipient: n.recipient.clone(),
        subject: n.subject.clone(),
        event_id: n.event_id.clone(),
        event_type: n.event_type,
    };
    let data = crate::event::data(&data);
    CloudEvent::new(EventType::NotificationSent, POOL, n.notification_id.as_str(), correlation, data, n.created_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_millis;
    use serde_json::json;

    fn event(t: EventType, data: Value) -> CloudEvent {
        CloudEvent::new(t, "x", "s", "req_1", data, from_millis(0))
    }

    #[test]
    fn a_confirmed_booking_tells_its_customer() {
        let e = event(
            EventType::BookingConfirmed,
            json!({"customer_id": "alice", "booking_id": "bk_1", "seat_ids": ["A1", "A2"], "show_id": "show_1", "amount_cents": 2400}),
        );
        let n = render(&e);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].recipient, UserId::new("alice"));
        assert!(n[0].body.contains("A1, A2") && n[0].body.contains("24.00"));
        assert_eq!(render(&e), n, "deterministic, so redelivery stores nothing new");
        assert_eq!(sent(&n[0], "req_1").id, sent(&render(&e)[0], "req_1").id);
    }

    #[test]
    fn ticket_events_reach_the_person_they_concern() {
        let assigned =
            event(EventType::TicketAssigned, json!({"ticket_id": "t", "assignee": "agent7", "requester": "bob"}));
        assert_eq!(render(&assigned)[0].recipient, UserId::new("agent7"));
        let changed = event(
            EventType::TicketStatusChanged,
            json!({"ticket_id": "t", "requester": "bob", "actor": "agent7", "to": "solved"}),
        );
        assert_eq!(render(&changed)[0].recipient, UserId::new("bob"));
        let own = event(
            EventType::TicketStatusChanged,
            json!({"ticket_id": "t", "requester": "bob", "actor": "bob", "to": "open"}),
        );
        assert!(render(&own).is_empty());
        let reply = event(
            EventType::TicketCommented,
            json!({"ticket_id": "t", "requester": "bob", "assignee": "agent7", "author": "agent7", "public": true, "body": "hi"}),
        );
        assert_eq!(render(&reply)[0].recipient, UserId::new("bob"));
        let from_customer = event(
            EventType::TicketCommented,
            json!({"ticket_id": "t", "requester": "bob", "assignee": "agent7", "author": "bob", "public": true, "body": "hi"}),
        );
        assert_eq!(render(&from_customer)[0].recipient, UserId::new("agent7"));
        let internal = event(
            EventType::TicketCommented,
            json!({"ticket_id": "t", "requester": "bob", "author": "agent7", "public": false}),
        );
        assert!(render(&internal).is_empty());
        assert!(render(&event(EventType::HoldPlaced, json!({}))).is_empty());
    }
}
