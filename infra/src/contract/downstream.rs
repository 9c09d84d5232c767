//! The `NotificationStore` and `AnalyticsStore` contract: each event applied once per
//! consumer, in any order, by racing writers; listings newest first.

use super::delivered_events;
use crate::Backend;
use domain::clock::{self, Timestamp};
use domain::event::{CloudEvent, EventType};
use domain::ids::{NotificationId, RequestId, ShowId, UserId};
use domain::notification::Notification;
use domain::report::{DailyReport, ShowCounters, TicketStats};
use serde_json::json;
use std::time::Duration;

/// An event with its own id (ids derive from correlation, type and subject).
fn fresh_event(t: EventType, subject: &str, data: serde_json::Value, at: Timestamp) -> CloudEvent {
    CloudEvent::new(t, "contract", subject, RequestId::generate().as_str(), data, at)
}

/// The event a test notification says it came from: its `event_id`, at its time.
fn source_of(n: &Notification) -> CloudEvent {
    let mut event = fresh_event(n.event_type, n.recipient.as_str(), json!({}), n.created_at);
    event.id.clone_from(&n.event_id);
    event
}

fn note(recipient: &str, at: Timestamp, subject: &str) -> Notification {
    Notification {
        notification_id: NotificationId::generate(),
        recipient: UserId::new(recipient),
        subject: subject.to_owned(),
        body: format!("body of {subject}"),
        event_id: RequestId::generate().to_string(),
        event_type: EventType::TicketAssigned,
        created_at: at,
    }
}

pub async fn notifications_once_per_event(b: Backend) {
    let data =
        json!({"customer_id": "alice", "booking_id": "bk_1", "seat_ids": ["A1"], "show_id": "s", "amount_cents": 900});
    let confirmed = fresh_event(EventType::BookingConfirmed, "bk_1", data, clock::now());
    let rendered = domain::notification::render(&confirmed);
    assert_eq!(rendered.len(), 1);
    let alice = UserId::new("alice");
    let sent: Vec<CloudEvent> =
        rendered.iter().map(|n| domain::notification::sent(n, &confirmed.correlationid)).collect();
    assert!(b.notifications.record_notifications(&confirmed, &rendered, &sent).await.unwrap(), "first delivery");
    assert!(!b.notifications.record_notifications(&confirmed, &rendered, &sent).await.unwrap(), "redelivery");
    assert_eq!(delivered_events(&b, sent.len()).await, sent, "the sent events are delivered once");
    // A redelivery stores nothing, even what it did not bring the first time.
    let extra = note("alice", clock::now(), "extra");
    assert!(!b.notifications.record_notifications(&confirmed, &[extra], &[]).await.unwrap());
    assert_eq!(b.notifications.notifications_for(&alice, 10).await.unwrap(), rendered, "stored once, as rendered");
    // An event that notifies nobody is handled once too.
    let quiet = fresh_event(EventType::HoldPlaced, "hold_1", json!({}), clock::now());
    assert!(b.notifications.record_notifications(&quiet, &[], &[]).await.unwrap());
    assert!(!b.notifications.record_notifications(&quiet, &[], &[]).await.unwrap());
    // Handled marks are per consumer: analytics still takes the same event.
    assert_eq!(b.analytics.record_events(&[confirmed]).await.unwrap(), 1);
}

pub async fn notifications_newest_first(b: Backend) {
    let t0 = clock::now() - Duration::from_secs(60);
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    let (old, mid, new) = (note("bob", at(1), "old"), note("bob", at(20), "mid"), note("bob", at(300), "new"));
    // Two at the same millisecond come in id order, the greater first.
    let (mut tie_a, mut tie_b) = (note("bob", at(20), "tie a"), note("bob", at(20), "tie b"));
    tie_a.notification_id = NotificationId::from("ntf_0000tie");
    tie_b.notification_id = NotificationId::from("ntf_zzzztie");
    for n in [&mid, &new, &tie_b, &old, &tie_a] {
        assert!(b.notifications.record_notifications(&source_of(n), std::slice::from_ref(n), &[]).await.unwrap());
    }
    let bob = UserId::new("bob");
    let subjects = |ns: Vec<Notification>| ns.into_iter().map(|n| n.subject).collect::<Vec<_>>();
    assert_eq!(
        subjects(b.notifications.notifications_for(&bob, 10).await.unwrap()),
        ["new", "tie b", "mid", "tie a", "old"].map(String::from)
    );
    assert_eq!(subjects(b.notifications.notifications_for(&bob, 2).await.unwrap()), ["new", "tie b"].map(String::from));
    assert!(b.notifications.notifications_for(&bob, 0).await.unwrap().is_empty());
    assert_eq!(b.notifications.notifications_for(&bob, 1).await.unwrap(), vec![new], "every field round-trips");
}

pub async fn notifications_per_recipient(b: Backend) {
    let now = clock::now();
    let for_carol = note("carol", now, "carol's");
    let for_dan = note("dan", now + Duration::from_secs(1), "dan's");
    // One event may notify several people; each sees only their own.
    let event_id = RequestId::generate().to_string();
    let both = [for_carol.clone(), for_dan.clone()].map(|mut n| {
        n.event_id = event_id.clone();
        n
    });
    assert!(b.notifications.record_notifications(&source_of(&both[0]), &both, &[]).await.unwrap());
    let carol = b.notifications.notifications_for(&UserId::new("carol"), 10).await.unwrap();
    let dan = b.notifications.notifications_for(&UserId::new("dan"), 10).await.unwrap();
    assert_eq!(carol, vec![both[0].clone()]);
    assert_eq!(dan, vec![both[1].clone()]);
    assert!(b.notifications.notifications_for(&UserId::new("nobody"), 10).await.unwrap().is_empty());
    // Recipients whose names share a prefix stay apart.
    let carol2 = note("carol2", now, "carol2's");
    assert!(
        b.notifications.record_notifications(&source_of(&carol2), std::slice::from_ref(&carol2), &[]).await.unwrap()
    );
    assert_eq!(b.notifications.notifications_for(&UserId::new("carol"), 10).await.unwrap().len(), 1);
}

/// One show's booking flow and one ticket's life, every event at its own time.
fn show_and_ticket_events(show: &str, ticket: &str, t0: Timestamp) -> Vec<CloudEvent> {
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    let created = clock::format(t0);
    vec![
        fresh_event(EventType::HoldPlaced, show, json!({"show_id": show, "seat_ids": ["A1", "A2", "A3"]}), at(1)),
        fresh_event(
            EventType::BookingConfirmed,
            show,
            json!({"show_id": show, "seat_ids": ["A1", "A2"], "amount_cents": 2500}),
            at(2),
        ),
        fresh_event(EventType::HoldReleased, show, json!({"show_id": show, "seat_ids": ["A3"]}), at(3)),
        fresh_event(EventType::HoldPlaced, show, json!({"show_id": show, "seat_ids": ["B1"]}), at(4)),
        fresh_event(
            EventType::TicketCreated,
            ticket,
            json!({"ticket_id": ticket, "status": "new", "assignee": null, "ticket_created_at": created}),
            t0,
        ),
        fresh_event(
            EventType::TicketAssigned,
            ticket,
            json!({"ticket_id": ticket, "status": "open", "assignee": "agent7", "ticket_created_at": created}),
            at(10),
        ),
        fresh_event(
            EventType::TicketCommented,
            ticket,
            json!({"ticket_id": ticket, "public": true, "author_role": "agent", "status": "open", "ticket_created_at": created}),
            at(20),
        ),
        fresh_event(
            EventType::TicketStatusChanged,
            ticket,
            json!({"ticket_id": ticket, "to": "solved", "status": "solved", "ticket_created_at": created}),
            at(30),
        ),
        fresh_event(
            EventType::TicketCommented,
            ticket,
            json!({"ticket_id": ticket, "public": true, "author_role": "agent", "status": "solved", "ticket_created_at": created}),
            at(40),
        ),
        fresh_event(
            EventType::TicketStatusChanged,
            ticket,
            json!({"ticket_id": ticket, "to": "closed", "status": "closed", "assignee": null, "ticket_created_at": created}),
            at(50),
        ),
    ]
}

fn expected_counters() -> ShowCounters {
    ShowCounters { seats_booked: 2, seats_held: 1, bookings: 1, revenue_cents: 2500 }
}

fn expected_ticket(t0: Timestamp) -> TicketStats {
    TicketStats {
        status: Some("closed".into()),
        assignee: None,
        created_at: Some(t0),
        first_response_at: Some(t0 + Duration::from_secs(20)),
        solved_at: Some(t0 + Duration::from_secs(30)),
    }
}

pub async fn analytics_counts_each_event_once(b: Backend) {
    let t0 = clock::now() - Duration::from_secs(3600);
    let events = show_and_ticket_events("show_once", "tkt_once", t0);
    let show = ShowId::from("show_once");
    assert_eq!(b.analytics.show_counters(&show).await.unwrap(), ShowCounters::default(), "zeroes before any event");
    assert!(b.analytics.ticket_stats().await.unwrap().is_empty());
    // A batch that repeats an event counts it once.
    let first: Vec<CloudEvent> = [&events[..4], &events[1..2]].concat();
    assert_eq!(b.analytics.record_events(&first).await.unwrap(), 4);
    // A redelivered batch mixing old and new events counts only the new ones.
    assert_eq!(b.analytics.record_events(&events[2..7]).await.unwrap(), 3);
    assert_eq!(b.analytics.record_events(&events).await.unwrap(), 3);
    assert_eq!(b.analytics.record_events(&events).await.unwrap(), 0, "everything again changes nothing");
    for e in &events {
        assert_eq!(b.analytics.record_events(std::slice::from_ref(e)).await.unwrap(), 0);
    }
    assert_eq!(b.analytics.show_counters(&show).await.unwrap(), expected_counters());
    assert_eq!(b.analytics.ticket_stats().await.unwrap(), vec![expected_ticket(t0)]);
    let day = domain::report::day_of(events[1].time);
    assert_eq!(b.analytics.daily(10).await.unwrap(), vec![DailyReport { day, bookings: 1, revenue_cents: 2500 }]);
    // An event with no facts still counts as applied, once.
    let quiet = fresh_event(EventType::RequestDeadLettered, "r", json!({}), clock::now());
    assert_eq!(b.analytics.record_events(&[quiet.clone(), quiet.clone()]).await.unwrap(), 1);
    assert_eq!(b.analytics.record_events(&[quiet]).await.unwrap(), 0);
    assert!(b.analytics.record_events(&[]).await.unwrap() == 0);
    // More events than one DynamoDB transaction holds (60 marks and 60 shows).
    let many: Vec<CloudEvent> = (0..60)
        .map(|i| {
            let show = format!("show_many_{i}");
            fresh_event(EventType::HoldPlaced, &show, json!({"show_id": show, "seat_ids": ["A1"]}), clock::now())
        })
        .collect();
    assert_eq!(b.analytics.record_events(&many).await.unwrap(), 60);
    assert_eq!(b.analytics.record_events(&many).await.unwrap(), 0);
    for show in ["show_many_0", "show_many_59"] {
        assert_eq!(b.analytics.show_counters(&ShowId::from(show)).await.unwrap().seats_held, 1, "{show}");
    }
}

pub async fn analytics_order_does_not_matter(b: Backend) {
    let t0 = clock::now() - Duration::from_secs(3600);
    // The same story three times over, on different shows and tickets: in order in one
    // batch, newest first one event at a time, and shuffled in batches of three.
    let in_order = show_and_ticket_events("show_fwd", "tkt_fwd", t0);
    let reversed = show_and_ticket_events("show_rev", "tkt_rev", t0);
    let shuffled = show_and_ticket_events("show_mix", "tkt_mix", t0);
    assert_eq!(b.analytics.record_events(&in_order).await.unwrap(), in_order.len());
    for e in reversed.iter().rev() {
        assert_eq!(b.analytics.record_events(std::slice::from_ref(e)).await.unwrap(), 1);
    }
    let order = [7, 2, 9, 0, 5, 3, 8, 1, 6, 4];
    let mixed: Vec<CloudEvent> = order.iter().map(|&i| shuffled[i].clone()).collect();
    for batch in mixed.chunks(3) {
        assert_eq!(b.analytics.record_events(batch).await.unwrap(), batch.len());
    }
    for show in ["show_fwd", "show_rev", "show_mix"] {
        assert_eq!(b.analytics.show_counters(&ShowId::from(show)).await.unwrap(), expected_counters(), "{show}");
    }
    assert_eq!(b.analytics.ticket_stats().await.unwrap(), vec![expected_ticket(t0); 3]);
    let day = domain::report::day_of(in_order[1].time);
    assert_eq!(b.analytics.daily(10).await.unwrap(), vec![DailyReport { day, bookings: 3, revenue_cents: 7500 }]);
}

/// Workers racing on the same show and ticket lose none of each other's facts.
pub async fn analytics_concurrent_writers(b: Backend) {
    let t0 = clock::now() - Duration::from_secs(3600);
    let events = show_and_ticket_events("show_race", "tkt_race", t0);
    let mut tasks = Vec::new();
    for (i, e) in events.into_iter().enumerate() {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            // Each event is delivered twice, to two workers at once.
            let twice = [e.clone(), e];
            let mut applied = 0;
            for batch in [&twice[..1], &twice[1..]] {
                loop {
                    match b.analytics.record_events(batch).await {
                        Ok(n) => {
                            applied += n;
                            break;
                        }
                        // What the worker does with contention: try again later.
                        Err(domain::PortError::Contention(_)) => {
                            tokio::time::sleep(Duration::from_millis(20 + 10 * i as u64)).await
                        }
                        Err(e) => panic!("record_events: {e}"),
                    }
                }
            }
            applied
        }));
    }
    let mut applied = 0;
    for t in tasks {
        applied += t.await.unwrap();
    }
    assert_eq!(applied, 10, "each event applied once");
    assert_eq!(b.analytics.show_counters(&ShowId::from("show_race")).await.unwrap(), expected_counters());
    assert_eq!(b.analytics.ticket_stats().await.unwrap(), vec![expected_ticket(t0)]);
}

pub async fn daily_newest_first(b: Backend) {
    let day = |d: u64, hour: u64| clock::from_millis(1_795_305_600_000) + Duration::from_secs(d * 86_400 + hour * 3600);
    let booking = |at: Timestamp, cents: u64| {
        fresh_event(
            EventType::BookingConfirmed,
            "bk",
            json!({"show_id": "show_days", "seat_ids": ["A1"], "amount_cents": cents}),
            at,
        )
    };
    // 2026-11-22 is day 0; one event just before midnight UTC belongs to its day.
    let events = [
        booking(day(2, 10), 100),
        booking(day(0, 9), 200),
        booking(day(3, 0), 300),
        booking(day(2, 23) + Duration::from_secs(3599), 400),
        booking(day(1, 12), 500),
    ];
    assert_eq!(b.analytics.record_events(&events[..2]).await.unwrap(), 2);
    assert_eq!(b.analytics.record_events(&events[2..]).await.unwrap(), 3);
    let report =
        |d: &str, bookings: u64, revenue_cents: u64| DailyReport { day: d.to_owned(), bookings, revenue_cents };
    assert_eq!(
        b.analytics.daily(10).await.unwrap(),
        vec![
            report("2026-11-25", 1, 300),
            report("2026-11-24", 2, 500),
            report("2026-11-23", 1, 500),
            report("2026-11-22", 1, 200),
        ]
    );
    assert_eq!(b.analytics.daily(2).await.unwrap(), vec![report("2026-11-25", 1, 300), report("2026-11-24", 2, 500)]);
    assert!(b.analytics.daily(0).await.unwrap().is_empty());
}

/// Where the queue is in the store, folding an event deletes its message in the same write;
/// elsewhere the message is left for the worker to delete. Either way the event counts once.
pub async fn analytics_deletes_what_it_folds_where_it_can(b: Backend) {
    let queue = domain::queue::Queue::Analytics.source();
    let data = json!({"show_id": "show_carried", "seat_ids": ["A1", "A2"]});
    let event = fresh_event(EventType::HoldPlaced, "hold_carried", data, clock::now());
    let message = domain::queue::OutgoingMessage::new(event.to_json(), event.attributes());
    b.queues.send_batch(queue, vec![message]).await.unwrap();
    let received = super::drain(&b, queue, 1).await;
    assert_eq!(received.len(), 1);
    let delivered = [domain::request::Delivery { queue, receipt: received[0].receipt.clone() }];
    let acknowledged = b.analytics.record_delivered(std::slice::from_ref(&event), &delivered).await.unwrap();
    let left = b.queues.stats(queue).await.unwrap();
    if acknowledged {
        assert_eq!(b.queues.depth(queue).await.unwrap(), 0, "deleted with the fold: {left:?}");
    } else {
        assert_eq!(left.in_flight + left.visible, 1, "left for the worker: {left:?}");
        b.queues.delete_batch(queue, vec![received[0].receipt.clone()]).await.unwrap();
    }
    let counters = b.analytics.show_counters(&ShowId::from("show_carried")).await.unwrap();
    assert_eq!(counters.seats_held, 2);
    assert_eq!(b.analytics.record_delivered(&[event], &delivered).await.unwrap(), acknowledged, "a redelivery");
    assert_eq!(b.analytics.show_counters(&ShowId::from("show_carried")).await.unwrap(), counters, "counted once");
}
