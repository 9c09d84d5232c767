//! The `EventBus` contract: one publish fans out to each subscribed queue by its filter,
//! as the raw event JSON.

use super::{VIS, drain, event};
use crate::Backend;
use domain::event::{CloudEvent, EventType};
use domain::queue::{ATTR_TYPE, Queue};
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
    assert!(b.queues.receive(Queue::BookingCommands.source(), 10, Duration::ZERO, VIS).await.unwrap().is_empty());
}
