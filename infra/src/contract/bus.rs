//! The `EventBus` contract: one publish fans out to each subscribed queue by its filter,
//! as the raw event JSON.

use super::{VIS, drain, event};
use crate::Backend;
use domain::event::{CloudEvent, EventType};
use domain::queue::{ATTR_TRACEPARENT, ATTR_TYPE, Queue};
use std::collections::BTreeSet;
use std::time::Duration;

pub async fn fan_out_by_filter(b: Backend) {
    let events = vec![
        event(EventType::BookingConfirmed, "bk_1"),
        event(EventType::HoldPlaced, "hold_1"),
        event(EventType::TicketCommented, "t"),
    ];
    b.bus.publish(&events).await.unwrap();
    let analytics = drain(&b, Queue::Analytics.source(), 3).await;
    let notifications = drain(&b, Queue::Notifications.source(), 2).await;
    let types = |ms: &[domain::queue::ReceivedMessage]| -> BTreeSet<String> {
        ms.iter().map(|m| m.attributes[ATTR_TYPE].clone()).collect()
    };
    assert_eq!(analytics.len(), 3, "analytics takes every type");
    assert_eq!(
        types(&notifications),
        BTreeSet::from(["usher.booking.confirmed".to_owned(), "usher.ticket.commented".to_owned()])
    );
    assert_eq!(notifications.len(), 2);
    let decoded: CloudEvent = serde_json::from_str(&notifications[0].body).expect("raw delivery of the event JSON");
    assert!(events.iter().any(|e| e.id == decoded.id));
    assert!(analytics.iter().all(|m| !m.attributes.contains_key(ATTR_TRACEPARENT)), "untraced events carry none");
    assert!(b.queues.receive(Queue::BookingCommands.source(), 10, Duration::ZERO, VIS).await.unwrap().is_empty());
}

/// A traced event keeps its `traceparent` in the body and as a message attribute, so the
/// consumer can continue the trace before it parses anything.
pub async fn traceparent_rides_along(b: Backend) {
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let traced = event(EventType::BookingConfirmed, "bk_traced").traced(Some(traceparent));
    b.bus.publish(std::slice::from_ref(&traced)).await.unwrap();
    let got = drain(&b, Queue::Analytics.source(), 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].attributes.get(ATTR_TRACEPARENT).map(String::as_str), Some(traceparent));
    let decoded: CloudEvent = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(decoded.traceparent.as_deref(), Some(traceparent));
}
