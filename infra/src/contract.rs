//! The port contract suite. Every adapter runs it through its own `fresh` function:
//!
//! ```ignore
//! async fn fresh(max_receives: u32) -> infra::Backend { /* a new, set-up backend */ }
//! infra::port_contract_tests!(fresh);
//! ```
//!
//! Each check takes a fresh backend, so they run in parallel against one server.

use crate::Backend;
use domain::actor::{Actor, Role};
use domain::booking::SeatState;
use domain::catalog::{Auditorium, Movie, Show};
use domain::clock::{self, Timestamp};
use domain::command::{Command, CommandEnvelope};
use domain::event::{CloudEvent, EventType};
use domain::idempotency::{Fingerprint, IdempotencyKey};
use domain::ids::{HoldId, MovieId, NotificationId, RequestId, SeatId, ShowId, TicketId, UserId};
use domain::notification::Notification;
use domain::outbox::{Decision, OutboxBacklog, OutboxEntry, ScheduledMessage};
use domain::payment::PaymentReceipt;
use domain::ports::{Abandoned, Admission, Admitted, Completion, StoredResponse, TicketQuery};
use domain::queue::{ATTR_TYPE, Attributes, OutgoingMessage, Queue, QueueAddr};
use domain::report::{DailyReport, ShowCounters, TicketStats};
use domain::request::CommandContext;
use domain::request::{Outcome, RequestStatus, StatusDoc};
use domain::ticket::{Action, Priority, Ticket, TicketChange, TicketStatus};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

/// Generates one `#[tokio::test]` per contract check, each on `$fresh(max_receives)`.
#[macro_export]
macro_rules! port_contract_tests {
    ($fresh:path) => {
        $crate::port_contract_tests!(@each $fresh;
            queue_round_trip, visibility_hides_and_redelivers, change_visibility_reveals,
            delayed_send, large_batches, redrive_moves_to_dlq, purge_empties,
            fan_out_by_filter, admission_rules, expired_keys_are_free, abandon_frees_the_key,
            abandon_keeps_a_queued_claim, complete_is_conditional, outbox_keeps_what_commits,
            reopen_dead_lettered, hold_is_all_or_nothing,
            expired_hold_counts_available, release_and_confirm, concurrent_holds_never_overlap,
            one_charge_per_hold, a_retaken_seat_expires_the_hold,
            notifications_once_per_event, notifications_newest_first, notifications_per_recipient,
            analytics_counts_each_event_once, analytics_order_does_not_matter, analytics_concurrent_writers,
            daily_newest_first,
            user_directory, ticket_lifecycle, ticket_authorization, ticket_listing, concurrent_ticket_changes);
    };
    (@each $fresh:path; $($check:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let Some(backend) = $fresh(3).await else { return };
                $crate::contract::$check(backend).await;
            }
        )+
    };
}

fn msg(body: &str) -> OutgoingMessage {
    OutgoingMessage::new(body.to_owned(), Attributes::from([(ATTR_TYPE.to_owned(), "test.kind".to_owned())]))
}

const Q: QueueAddr = QueueAddr { queue: Queue::BookingCommands, dead: false };
const VIS: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(2);

async fn drain(b: &Backend, q: QueueAddr, expect: usize) -> Vec<domain::queue::ReceivedMessage> {
    let mut got = Vec::new();
    for _ in 0..20 {
        if got.len() >= expect {
            break;
        }
        got.extend(b.queues.receive(q, 10, WAIT, VIS).await.expect("receive"));
    }
    got
}

pub async fn queue_round_trip(b: Backend) {
    b.queues.send_batch(Q, vec![msg("one"), msg("two"), msg("three")]).await.expect("send");
    let got = drain(&b, Q, 3).await;
    let bodies: BTreeSet<&str> = got.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, BTreeSet::from(["one", "two", "three"]));
    assert!(got.iter().all(|m| m.receive_count == 1 && m.attributes[ATTR_TYPE] == "test.kind"));
    assert_eq!(b.queues.depth(Q).await.unwrap(), 3, "received messages still count until deleted");
    b.queues.delete_batch(Q, got.into_iter().map(|m| m.receipt).collect()).await.expect("delete");
    assert_eq!(b.queues.depth(Q).await.unwrap(), 0);
    assert!(b.queues.receive(Q, 10, Duration::from_millis(200), VIS).await.unwrap().is_empty());
}

pub async fn visibility_hides_and_redelivers(b: Backend) {
    b.queues.send_batch(Q, vec![msg("x")]).await.unwrap();
    let first = drain(&b, Q, 1).await;
    assert_eq!(first.len(), 1);
    let hidden = b.queues.receive(Q, 10, Duration::ZERO, Duration::from_secs(1)).await.unwrap();
    assert!(hidden.is_empty(), "an in-flight message is invisible");
    // The first receive hid it for 30 s; shorten that, then it comes back counted twice.
    b.queues.change_visibility(Q, &first[0].receipt, Duration::from_secs(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let again = drain(&b, Q, 1).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message_id, first[0].message_id);
    assert_eq!(again[0].receive_count, 2);
    // A stale receipt deletes nothing and is no error.
    b.queues.delete_batch(Q, vec![first[0].receipt.clone()]).await.unwrap();
    b.queues.delete_batch(Q, vec![again[0].receipt.clone()]).await.unwrap();
    assert_eq!(b.queues.depth(Q).await.unwrap(), 0);
}

pub async fn change_visibility_reveals(b: Backend) {
    b.queues.send_batch(Q, vec![msg("y")]).await.unwrap();
    let got = drain(&b, Q, 1).await;
    b.queues.change_visibility(Q, &got[0].receipt, Duration::ZERO).await.unwrap();
    let again = drain(&b, Q, 1).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);
}

pub async fn delayed_send(b: Backend) {
    let mut m = msg("later");
    m.delay = Duration::from_secs(2);
    b.queues.send_batch(Q, vec![m]).await.unwrap();
    let early = b.queues.receive(Q, 10, Duration::from_millis(500), VIS).await.unwrap();
    assert!(early.is_empty(), "a delayed message is not delivered early");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let got = drain(&b, Q, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "later");
}

pub async fn large_batches(b: Backend) {
    let messages: Vec<_> = (0..25).map(|i| msg(&format!("m{i}"))).collect();
    b.queues.send_batch(Q, messages).await.unwrap();
    let got = drain(&b, Q, 25).await;
    assert_eq!(got.iter().map(|m| &m.body).collect::<BTreeSet<_>>().len(), 25);
    b.queues.delete_batch(Q, got.into_iter().map(|m| m.receipt).collect()).await.unwrap();
    assert_eq!(b.queues.depth(Q).await.unwrap(), 0);
}

/// With `max_receives = 3` the queue's own redrive moves a message on its 5th receive.
pub async fn redrive_moves_to_dlq(b: Backend) {
    b.queues.send_batch(Q, vec![msg("poison")]).await.unwrap();
    for attempt in 1..=4 {
        let got = drain(&b, Q, 1).await;
        assert_eq!(got.len(), 1, "delivery {attempt}");
        assert_eq!(got[0].receive_count, attempt);
        b.queues.change_visibility(Q, &got[0].receipt, Duration::ZERO).await.unwrap();
    }
    let mut moved = false;
    for _ in 0..20 {
        assert!(b.queues.receive(Q, 10, Duration::from_millis(300), VIS).await.unwrap().is_empty());
        if b.queues.depth(Queue::BookingCommands.dlq()).await.unwrap() == 1 {
            moved = true;
            break;
        }
    }
    assert!(moved, "the message reached the DLQ");
    let dead = drain(&b, Queue::BookingCommands.dlq(), 1).await;
    assert_eq!(dead[0].body, "poison");
    assert_eq!(dead[0].attributes[ATTR_TYPE], "test.kind");
}

pub async fn purge_empties(b: Backend) {
    let dlq = Queue::BookingCommands.dlq();
    b.queues.send_batch(dlq, vec![msg("a"), msg("b")]).await.unwrap();
    assert_eq!(b.queues.depth(dlq).await.unwrap(), 2);
    b.queues.purge(dlq).await.unwrap();
    assert_eq!(b.queues.depth(dlq).await.unwrap(), 0);
}

fn event(t: EventType, subject: &str) -> CloudEvent {
    CloudEvent::new(t, "booking", subject, "req_contract", json!({ "n": subject }), clock::now())
}

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

fn admission(owner: &str, key: &str, body: serde_json::Value, now: Timestamp) -> Admission {
    let request_id = RequestId::generate();
    let command = CommandEnvelope {
        request_id: request_id.clone(),
        actor: Actor { sub: UserId::new(owner), role: Role::Customer },
        issued_at: now,
        command: Command::ReleaseHold { hold_id: HoldId::from("hold_x") },
    };
    Admission {
        owner: UserId::new(owner),
        key: IdempotencyKey::parse(key).unwrap(),
        fingerprint: Fingerprint::of("POST", "/v1/holds/hold_x/release", &body),
        doc: StatusDoc::accepted(request_id.clone(), command.command.type_name(), now),
        command,
        response: StoredResponse { status: 202, body: format!("{{\"request_id\":\"{request_id}\"}}") },
        key_expires_at: now + Duration::from_secs(3600),
    }
}

pub async fn admission_rules(b: Backend) {
    let now = clock::now();
    let first = admission("alice", "k1", json!({"a": 1}), now);
    let id = first.doc.request_id.clone();
    assert!(matches!(b.requests.admit(first.clone()).await.unwrap(), Admitted::Claimed));
    let doc = b.requests.get(&id).await.unwrap().expect("the status doc exists");
    assert_eq!(doc.doc.status, RequestStatus::Accepted);
    assert_eq!(doc.owner, UserId::new("alice"));
    // Before it is marked queued, the same request is in flight (or its admitter died).
    match b.requests.admit(admission("alice", "k1", json!({"a": 1}), now)).await.unwrap() {
        Admitted::Unqueued { response, command, .. } => {
            assert_eq!(response, first.response);
            assert_eq!(command.request_id, id);
        }
        other => panic!("expected Unqueued, got {other:?}"),
    }
    let pending = b.requests.unqueued(now + Duration::from_secs(1), 10).await.unwrap();
    assert!(pending.iter().any(|c| c.request_id == id), "the sweep sees it");
    b.requests.mark_queued(std::slice::from_ref(&id)).await.unwrap();
    assert!(!b.requests.unqueued(now + Duration::from_secs(1), 10).await.unwrap().iter().any(|c| c.request_id == id));
    match b.requests.admit(admission("alice", "k1", json!({"a": 1}), now)).await.unwrap() {
        Admitted::Replay(r) => assert_eq!(r, first.response),
        other => panic!("expected Replay, got {other:?}"),
    }
    assert!(matches!(
        b.requests.admit(admission("alice", "k1", json!({"a": 2}), now)).await.unwrap(),
        Admitted::KeyReused
    ));
    // Keys are scoped to their owner.
    assert!(matches!(b.requests.admit(admission("bob", "k1", json!({"a": 1}), now)).await.unwrap(), Admitted::Claimed));
    b.requests.mark_processing(std::slice::from_ref(&id), now).await.unwrap();
    assert_eq!(b.requests.get(&id).await.unwrap().unwrap().doc.status, RequestStatus::Processing);
}

pub async fn expired_keys_are_free(b: Backend) {
    let now = clock::now();
    let mut old = admission("carol", "k", json!({}), now - Duration::from_secs(7200));
    old.key_expires_at = now - Duration::from_secs(1);
    assert!(matches!(b.requests.admit(old).await.unwrap(), Admitted::Claimed));
    let fresh = admission("carol", "k", json!({"other": true}), now);
    assert!(matches!(b.requests.admit(fresh).await.unwrap(), Admitted::Claimed), "an expired key is free");
    assert!(b.requests.purge_expired_keys(now).await.is_ok());
}

pub async fn abandon_frees_the_key(b: Backend) {
    let now = clock::now();
    let a = admission("dave", "k", json!({}), now);
    let id = a.doc.request_id.clone();
    assert!(matches!(b.requests.admit(a.clone()).await.unwrap(), Admitted::Claimed));
    let grace = now - Duration::from_secs(10);
    assert_eq!(b.requests.abandon(&a.owner, &a.key, &id, grace).await.unwrap(), Abandoned::Freed);
    assert!(b.requests.get(&id).await.unwrap().is_none());
    assert!(matches!(b.requests.admit(admission("dave", "k", json!({"x": 1}), now)).await.unwrap(), Admitted::Claimed));
}

/// A claim whose command reached a queue after all (a retry or the sweep queued it), or
/// that the sweep may be queueing (older than the grace), is never freed: freeing it would
/// let a retry admit the command a second time.
pub async fn abandon_keeps_a_queued_claim(b: Backend) {
    let now = clock::now();
    let a = admission("dora", "k", json!({}), now);
    let id = a.doc.request_id.clone();
    assert!(matches!(b.requests.admit(a.clone()).await.unwrap(), Admitted::Claimed));
    b.requests.mark_queued(std::slice::from_ref(&id)).await.unwrap();
    let grace = now - Duration::from_secs(10);
    assert_eq!(b.requests.abandon(&a.owner, &a.key, &id, grace).await.unwrap(), Abandoned::Kept(a.response.clone()));
    assert!(b.requests.get(&id).await.unwrap().is_some(), "the document stays");
    match b.requests.admit(admission("dora", "k", json!({}), now)).await.unwrap() {
        Admitted::Replay(r) => assert_eq!(r, a.response),
        other => panic!("the key must stay claimed, got {other:?}"),
    }

    let old = admission("dora", "k2", json!({}), now - Duration::from_secs(60));
    let old_id = old.doc.request_id.clone();
    assert!(matches!(b.requests.admit(old.clone()).await.unwrap(), Admitted::Claimed));
    assert_eq!(
        b.requests.abandon(&old.owner, &old.key, &old_id, grace).await.unwrap(),
        Abandoned::Kept(old.response.clone()),
        "a claim past the grace belongs to the sweep"
    );
    assert!(b.requests.unqueued(now, 10).await.unwrap().iter().any(|c| c.request_id == old_id));
}

/// A completion's events and messages are in the outbox exactly when it committed, once.
pub async fn outbox_keeps_what_commits(b: Backend) {
    assert_eq!(b.outbox.backlog().await.unwrap(), OutboxBacklog::default());
    let id = admitted(&b, "olga").await;
    let ev = event(EventType::HoldPlaced, "hold_o");
    let envelope = CommandEnvelope {
        request_id: id.clone(),
        actor: Actor { sub: UserId::new("olga"), role: Role::Customer },
        issued_at: clock::now(),
        command: Command::ExpireHold { hold_id: HoldId::from("hold_o"), expires_at: clock::now() },
    };
    let later = ScheduledMessage::command(&envelope, clock::now() + Duration::from_secs(60));
    let mut decision = Decision::new(Outcome::Succeeded(json!({"ok": 1})), vec![ev.clone()]);
    decision.messages.push(later.clone());
    b.requests.complete(&id, decision.clone(), clock::now()).await.unwrap();
    // A redelivered completion adds nothing.
    assert!(!b.requests.complete(&id, decision, clock::now()).await.unwrap().first);
    let pending = b.outbox.pending(100).await.unwrap();
    assert_eq!(pending.len(), 2, "{pending:?}");
    assert!(pending.iter().any(|p| p.entry == OutboxEntry::Event { event: ev.clone() }));
    assert!(pending.iter().any(|p| p.entry == OutboxEntry::Message { message: later.clone() }));
    let backlog = b.outbox.backlog().await.unwrap();
    assert_eq!(backlog.pending, 2);
    assert!(backlog.oldest.is_some());
    let ids: Vec<String> = pending.iter().map(|p| p.id.clone()).collect();
    b.outbox.delivered(&ids[..1]).await.unwrap();
    assert_eq!(b.outbox.pending(100).await.unwrap().len(), 1);
    b.outbox.delivered(&ids).await.unwrap();
    b.outbox.delivered(&ids).await.unwrap();
    assert_eq!(b.outbox.backlog().await.unwrap(), OutboxBacklog::default());
}

async fn admitted(b: &Backend, owner: &str) -> RequestId {
    let a = admission(owner, &format!("k-{}", RequestId::generate()), json!({}), clock::now());
    let id = a.doc.request_id.clone();
    assert!(matches!(b.requests.admit(a).await.unwrap(), Admitted::Claimed));
    b.requests.mark_queued(std::slice::from_ref(&id)).await.unwrap();
    id
}

pub async fn complete_is_conditional(b: Backend) {
    let id = admitted(&b, "erin").await;
    let ev = vec![event(EventType::HoldPlaced, "hold_9")];
    let first = b
        .requests
        .complete(&id, Decision::new(Outcome::Succeeded(json!({"ok": 1})), ev.clone()), clock::now())
        .await
        .unwrap();
    assert!(first.first);
    assert_eq!(first.doc.status, RequestStatus::Succeeded);
    let second = b
        .requests
        .complete(
            &id,
            Decision::new(Outcome::Succeeded(json!({"ok": 2})), vec![event(EventType::HoldRejected, "x")]),
            clock::now(),
        )
        .await
        .unwrap();
    assert!(!second.first, "a terminal request changes nothing");
    assert_eq!(second.doc.result, Some(json!({"ok": 1})));
    assert_eq!(second.events, ev, "the very same events, same ids");
    assert_eq!(b.requests.get(&id).await.unwrap().unwrap().doc.result, Some(json!({"ok": 1})));
}

pub async fn reopen_dead_lettered(b: Backend) {
    let id = admitted(&b, "fay").await;
    let decided = domain::request::dead_lettered(&id, "booking.confirm", "booking", "boom", clock::now());
    let done = b.requests.complete(&id, decided.into(), clock::now()).await.unwrap();
    assert_eq!(done.doc.status, RequestStatus::DeadLettered);
    assert!(!done.doc.error.unwrap().detail.contains("boom"), "customers read a generic reason");
    assert_eq!(done.events[0].event_type, EventType::RequestDeadLettered);
    assert!(b.requests.reopen(&id, clock::now()).await.unwrap());
    assert_eq!(b.requests.get(&id).await.unwrap().unwrap().doc.status, RequestStatus::Accepted);
    assert!(!b.requests.reopen(&id, clock::now()).await.unwrap(), "only a dead-lettered request reopens");
}

async fn show(b: &Backend, rows: u32, per_row: u32) -> ShowId {
    let movie = Movie { movie_id: MovieId::generate(), title: "Contract".into(), duration_min: 90 };
    b.catalog.create_movie(&movie).await.unwrap();
    let show = Show {
        show_id: ShowId::generate(),
        movie_id: movie.movie_id.clone(),
        starts_at: clock::now() + Duration::from_secs(86_400),
        auditorium: Auditorium { rows, seats_per_row: per_row },
        price_cents: 1250,
    };
    b.catalog.create_show(&show).await.unwrap();
    assert_eq!(b.catalog.show(&show.show_id).await.unwrap().as_ref(), Some(&show));
    assert_eq!(b.catalog.shows_of(&movie.movie_id).await.unwrap(), vec![show.clone()]);
    assert!(b.catalog.movies().await.unwrap().contains(&movie));
    show.show_id
}

fn ctx(id: &RequestId, who: &str) -> CommandContext {
    let actor = Actor { sub: UserId::new(who), role: Role::Customer };
    CommandContext { request_id: id.clone(), actor, now: clock::now() }
}

fn seats(ids: &[&str]) -> Vec<SeatId> {
    ids.iter().map(|s| SeatId::from(*s)).collect()
}

async fn seat_state(b: &Backend, show: &ShowId, seat: &str) -> SeatState {
    let now = clock::now();
    b.catalog.seats(show).await.unwrap().iter().find(|s| s.seat_id.as_str() == seat).expect("seat").state_at(now)
}

pub async fn hold_is_all_or_nothing(b: Backend) {
    let show_id = show(&b, 2, 3).await;
    assert_eq!(b.catalog.seats(&show_id).await.unwrap().len(), 6);
    let ttl = clock::now() + Duration::from_secs(600);
    let r1 = admitted(&b, "alice").await;
    let placed = b.bookings.place_hold(&ctx(&r1, "alice"), &show_id, &seats(&["A1", "A2"]), ttl).await.unwrap();
    assert_eq!(placed.doc.status, RequestStatus::Succeeded);
    assert_eq!(placed.events[0].event_type, EventType::HoldPlaced);
    let hold_id = HoldId::from(placed.doc.result.as_ref().unwrap()["hold_id"].as_str().unwrap());
    assert_eq!(b.bookings.hold(&hold_id).await.unwrap().unwrap().seat_ids, seats(&["A1", "A2"]));
    // Redelivery: the same completion, nothing held twice.
    let again = b.bookings.place_hold(&ctx(&r1, "alice"), &show_id, &seats(&["A1", "A2"]), ttl).await.unwrap();
    assert!(!again.first);
    assert_eq!(again.doc, placed.doc);

    let r2 = admitted(&b, "bob").await;
    let rejected = b.bookings.place_hold(&ctx(&r2, "bob"), &show_id, &seats(&["A2", "A3"]), ttl).await.unwrap();
    assert_eq!(rejected.doc.status, RequestStatus::Failed);
    let err = rejected.doc.error.as_ref().unwrap();
    assert_eq!(err.code, "seats_unavailable");
    assert_eq!(err.extra["seat_ids"], json!(["A2"]));
    assert_eq!(rejected.events[0].event_type, EventType::HoldRejected);
    assert_eq!(seat_state(&b, &show_id, "A3").await, SeatState::Available, "nothing of a rejected hold is kept");

    let r3 = admitted(&b, "bob").await;
    let missing = b.bookings.place_hold(&ctx(&r3, "bob"), &show_id, &seats(&["Z9"]), ttl).await.unwrap();
    assert_eq!(missing.doc.error.unwrap().code, "seat_not_found");
    let r4 = admitted(&b, "bob").await;
    let no_show =
        b.bookings.place_hold(&ctx(&r4, "bob"), &ShowId::from("show_nope"), &seats(&["A1"]), ttl).await.unwrap();
    assert_eq!(no_show.doc.error.unwrap().code, "show_not_found");
}

pub async fn expired_hold_counts_available(b: Backend) {
    let show_id = show(&b, 1, 2).await;
    let r1 = admitted(&b, "alice").await;
    let soon = clock::now() + Duration::from_millis(800);
    let placed = b.bookings.place_hold(&ctx(&r1, "alice"), &show_id, &seats(&["A1"]), soon).await.unwrap();
    let hold_id = HoldId::from(placed.doc.result.unwrap()["hold_id"].as_str().unwrap());
    assert_eq!(seat_state(&b, &show_id, "A1").await, SeatState::Held);
    assert!(b.bookings.expire_hold(&hold_id, clock::now()).await.unwrap().is_none(), "not due yet");
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(seat_state(&b, &show_id, "A1").await, SeatState::Available, "no sweep needed");
    let r2 = admitted(&b, "bob").await;
    let later = clock::now() + Duration::from_secs(600);
    let taken = b.bookings.place_hold(&ctx(&r2, "bob"), &show_id, &seats(&["A1"]), later).await.unwrap();
    assert_eq!(taken.doc.status, RequestStatus::Succeeded, "an expired hold's seat can be held again");
    // The late expiry of the first hold must not free the second hold's seat.
    let expired = b.bookings.expire_hold(&hold_id, clock::now()).await.unwrap().expect("the expiry event");
    assert_eq!(expired.event_type, EventType::HoldExpired);
    assert_eq!(expired.correlationid, r1.as_str());
    assert!(b.bookings.expire_hold(&hold_id, clock::now()).await.unwrap().is_none(), "expired once");
    assert_eq!(seat_state(&b, &show_id, "A1").await, SeatState::Held);
    let outboxed = b.outbox.pending(100).await.unwrap();
    let expiries = outboxed.iter().filter(|p| p.entry == OutboxEntry::Event { event: expired.clone() }).count();
    assert_eq!(expiries, 1, "the expiry event is in the outbox once");
}

pub async fn release_and_confirm(b: Backend) {
    let show_id = show(&b, 1, 4).await;
    let ttl = clock::now() + Duration::from_secs(600);
    let r1 = admitted(&b, "alice").await;
    let placed = b.bookings.place_hold(&ctx(&r1, "alice"), &show_id, &seats(&["A1", "A2"]), ttl).await.unwrap();
    let h1 = HoldId::from(placed.doc.result.unwrap()["hold_id"].as_str().unwrap());

    // Someone else cannot release or confirm it.
    let r2 = admitted(&b, "bob").await;
    let not_yours = b.bookings.release_hold(&ctx(&r2, "bob"), &h1).await.unwrap();
    assert_eq!(not_yours.doc.error.unwrap().code, "hold_not_found");
    // Deliberately not price × seats (2 × 1250): the booking costs what was authorized.
    let pay = PaymentReceipt { payment_id: "pay_1".into(), amount_cents: 1999 };
    let r3 = admitted(&b, "bob").await;
    let not_yours = b.bookings.confirm_booking(&ctx(&r3, "bob"), &h1, &pay).await.unwrap();
    assert_eq!(not_yours.doc.error.unwrap().code, "hold_not_found");
    assert_eq!(not_yours.events[0].event_type, EventType::BookingFailed);

    let r4 = admitted(&b, "alice").await;
    let booked = b.bookings.confirm_booking(&ctx(&r4, "alice"), &h1, &pay).await.unwrap();
    assert_eq!(booked.doc.status, RequestStatus::Succeeded);
    let result = booked.doc.result.unwrap();
    assert_eq!(result["amount_cents"], 1999);
    assert_eq!(booked.events[0].event_type, EventType::BookingConfirmed);
    let booking_id = domain::ids::BookingId::from(result["booking_id"].as_str().unwrap());
    let booking = b.bookings.booking(&booking_id).await.unwrap().expect("the booking");
    assert_eq!(booking.seat_ids, seats(&["A1", "A2"]));
    assert_eq!(booking.amount_cents, 1999);
    assert_eq!(booking.customer_id, UserId::new("alice"));
    assert_eq!(seat_state(&b, &show_id, "A1").await, SeatState::Booked);
    // A confirmed hold is neither released nor expired.
    let r5 = admitted(&b, "alice").await;
    assert_eq!(
        b.bookings.release_hold(&ctx(&r5, "alice"), &h1).await.unwrap().doc.error.unwrap().code,
        "hold_not_found"
    );
    assert!(b.bookings.expire_hold(&h1, clock::now() + Duration::from_secs(700)).await.unwrap().is_none());
    assert_eq!(seat_state(&b, &show_id, "A2").await, SeatState::Booked);

    let r6 = admitted(&b, "carol").await;
    let placed = b.bookings.place_hold(&ctx(&r6, "carol"), &show_id, &seats(&["A3"]), ttl).await.unwrap();
    let h2 = HoldId::from(placed.doc.result.unwrap()["hold_id"].as_str().unwrap());
    let r7 = admitted(&b, "carol").await;
    let released = b.bookings.release_hold(&ctx(&r7, "carol"), &h2).await.unwrap();
    assert_eq!(released.doc.status, RequestStatus::Succeeded);
    assert_eq!(released.events[0].event_type, EventType::HoldReleased);
    assert_eq!(seat_state(&b, &show_id, "A3").await, SeatState::Available);
}

/// Two confirms of one hold (different requests, racing): one booking, one charge, one
/// `usher.booking.confirmed`; the other fails cleanly.
pub async fn one_charge_per_hold(b: Backend) {
    let show_id = show(&b, 1, 2).await;
    let ttl = clock::now() + Duration::from_secs(600);
    let r1 = admitted(&b, "alice").await;
    let placed = b.bookings.place_hold(&ctx(&r1, "alice"), &show_id, &seats(&["A1"]), ttl).await.unwrap();
    let hold_id = HoldId::from(placed.doc.result.unwrap()["hold_id"].as_str().unwrap());
    let pay = domain::payment::authorize("tok_visa", 1250, &hold_id).unwrap();
    let confirms = (0..2).map(|_| {
        let (b, hold_id, pay) = (b.clone(), hold_id.clone(), pay.clone());
        tokio::spawn(async move {
            let id = admitted(&b, "alice").await;
            b.bookings.confirm_booking(&ctx(&id, "alice"), &hold_id, &pay).await
        })
    });
    let mut outcomes = Vec::new();
    for c in confirms.collect::<Vec<_>>() {
        outcomes.push(c.await.unwrap().expect("a lost race is an outcome, not an error"));
    }
    let won: Vec<&Completion> = outcomes.iter().filter(|c| c.doc.status == RequestStatus::Succeeded).collect();
    assert_eq!(won.len(), 1, "{outcomes:?}");
    let lost: Vec<&Completion> = outcomes.iter().filter(|c| c.doc.status == RequestStatus::Failed).collect();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].doc.error.as_ref().unwrap().code, "hold_not_found");
    let confirmed = b
        .outbox
        .pending(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| matches!(&p.entry, OutboxEntry::Event { event } if event.event_type == EventType::BookingConfirmed))
        .count();
    assert_eq!(confirmed, 1, "one usher.booking.confirmed");
}

/// A hold whose seat another hold took (that worker's clock had passed the expiry) has
/// expired for its customer: a business failure, not corrupt data.
pub async fn a_retaken_seat_expires_the_hold(b: Backend) {
    let show_id = show(&b, 1, 2).await;
    let now = clock::now();
    let r1 = admitted(&b, "alice").await;
    let soon = now + Duration::from_secs(30);
    let placed = b.bookings.place_hold(&ctx(&r1, "alice"), &show_id, &seats(&["A1"]), soon).await.unwrap();
    let hold_id = HoldId::from(placed.doc.result.unwrap()["hold_id"].as_str().unwrap());
    let r2 = admitted(&b, "bob").await;
    let ahead = CommandContext { now: now + Duration::from_secs(31), ..ctx(&r2, "bob") };
    let later = now + Duration::from_secs(600);
    let taken = b.bookings.place_hold(&ahead, &show_id, &seats(&["A1"]), later).await.unwrap();
    assert_eq!(taken.doc.status, RequestStatus::Succeeded);
    let r3 = admitted(&b, "alice").await;
    let pay = domain::payment::authorize("tok_visa", 1250, &hold_id).unwrap();
    let late = b.bookings.confirm_booking(&ctx(&r3, "alice"), &hold_id, &pay).await.expect("an outcome");
    assert_eq!(late.doc.status, RequestStatus::Failed);
    assert_eq!(late.doc.error.unwrap().code, "hold_expired");
}

pub async fn concurrent_holds_never_overlap(b: Backend) {
    let show_id = show(&b, 1, 6).await;
    let ttl = clock::now() + Duration::from_secs(600);
    let mut tasks = Vec::new();
    for i in 0..24usize {
        let b = b.clone();
        let show_id = show_id.clone();
        tasks.push(tokio::spawn(async move {
            let who = format!("c{i}");
            let id = admitted(&b, &who).await;
            let want = [format!("A{}", i % 6 + 1), format!("A{}", (i + 1) % 6 + 1)];
            let want: Vec<SeatId> = want.iter().map(|s| SeatId::from(s.as_str())).collect();
            b.bookings.place_hold(&ctx(&id, &who), &show_id, &want, ttl).await
        }));
    }
    let mut held = Vec::new();
    for t in tasks {
        let c = t.await.unwrap().expect("a contended hold is an outcome, not an error");
        assert!(c.doc.status.is_terminal());
        if c.doc.status == RequestStatus::Succeeded {
            for s in c.doc.result.unwrap()["seat_ids"].as_array().unwrap() {
                held.push(s.as_str().unwrap().to_owned());
            }
        }
    }
    let unique: BTreeSet<&String> = held.iter().collect();
    assert_eq!(unique.len(), held.len(), "no seat in two live holds: {held:?}");
    assert!(!held.is_empty());
    let map = b.catalog.seats(&show_id).await.unwrap();
    let now = clock::now();
    let held_on_map = map.iter().filter(|s| s.state_at(now) == SeatState::Held).count();
    assert_eq!(held_on_map, held.len(), "the seat map agrees");
}

// ---------------------------------------------------------------------------------------
// Downstream consumers: notifications and analytics

/// An event with its own id (ids derive from correlation, type and subject).
fn fresh_event(t: EventType, subject: &str, data: serde_json::Value, at: Timestamp) -> CloudEvent {
    CloudEvent::new(t, "contract", subject, RequestId::generate().as_str(), data, at)
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
    assert!(b.notifications.record_notifications(&confirmed.id, &rendered, &sent).await.unwrap(), "first delivery");
    assert!(!b.notifications.record_notifications(&confirmed.id, &rendered, &sent).await.unwrap(), "redelivery");
    let outboxed = b.outbox.pending(100).await.unwrap();
    assert_eq!(outboxed.len(), sent.len(), "the sent events are in the outbox once");
    // A redelivery stores nothing, even what it did not bring the first time.
    let extra = note("alice", clock::now(), "extra");
    assert!(!b.notifications.record_notifications(&confirmed.id, &[extra], &[]).await.unwrap());
    assert_eq!(b.notifications.notifications_for(&alice, 10).await.unwrap(), rendered, "stored once, as rendered");
    // An event that notifies nobody is handled once too.
    let quiet = fresh_event(EventType::HoldPlaced, "hold_1", json!({}), clock::now());
    assert!(b.notifications.record_notifications(&quiet.id, &[], &[]).await.unwrap());
    assert!(!b.notifications.record_notifications(&quiet.id, &[], &[]).await.unwrap());
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
        assert!(b.notifications.record_notifications(&n.event_id, std::slice::from_ref(n), &[]).await.unwrap());
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
    assert!(b.notifications.record_notifications(&event_id, &both, &[]).await.unwrap());
    let carol = b.notifications.notifications_for(&UserId::new("carol"), 10).await.unwrap();
    let dan = b.notifications.notifications_for(&UserId::new("dan"), 10).await.unwrap();
    assert_eq!(carol, vec![both[0].clone()]);
    assert_eq!(dan, vec![both[1].clone()]);
    assert!(b.notifications.notifications_for(&UserId::new("nobody"), 10).await.unwrap().is_empty());
    // Recipients whose names share a prefix stay apart.
    let carol2 = note("carol2", now, "carol2's");
    assert!(b.notifications.record_notifications(&carol2.event_id, std::slice::from_ref(&carol2), &[]).await.unwrap());
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

// ---------------------------------------------------------------------------------------
// Tickets and the user directory

fn actor(who: &str, role: Role) -> Actor {
    Actor { sub: UserId::new(who), role }
}

async fn new_ticket(b: &Backend, requester: &str, subject: &str) -> (TicketId, Completion) {
    let id = admitted(b, requester).await;
    let ticket = Ticket::new(&ctx(&id, requester), subject, "It does not work", Priority::Normal);
    let done = b.tickets.create_ticket(&ctx(&id, requester), &ticket).await.unwrap();
    (ticket.ticket_id, done)
}

async fn change(b: &Backend, who: &Actor, ticket_id: &TicketId, change: TicketChange) -> Completion {
    let id = admitted(b, who.sub.as_str()).await;
    let ctx = CommandContext { actor: who.clone(), ..ctx(&id, who.sub.as_str()) };
    b.tickets.change_ticket(&ctx, ticket_id, &change).await.unwrap()
}

fn code(c: &Completion) -> &str {
    c.doc.error.as_ref().map(|e| e.code.as_str()).unwrap_or("")
}

pub async fn user_directory(b: Backend) {
    let now = clock::now();
    let ann = UserId::new(format!("ann-{}", RequestId::generate()));
    assert!(!b.users.is_agent(&ann).await.unwrap(), "an unknown user is no agent");
    b.users.record_user(&ann, Role::Customer, now).await.unwrap();
    assert!(!b.users.is_agent(&ann).await.unwrap());
    b.users.record_user(&ann, Role::Agent, now).await.unwrap();
    b.users.record_user(&ann, Role::Agent, now).await.unwrap();
    assert!(b.users.is_agent(&ann).await.unwrap());
    b.users.record_user(&ann, Role::Customer, now).await.unwrap();
    assert!(b.users.is_agent(&ann).await.unwrap(), "an agent stays an agent");
    b.users.record_user(&UserId::new("root"), Role::Admin, now).await.unwrap();
    assert!(!b.users.is_agent(&UserId::new("root")).await.unwrap(), "an admin is not an agent by role");
}

pub async fn ticket_lifecycle(b: Backend) {
    let (alice, ann, root) = (actor("alice", Role::Customer), actor("ann", Role::Agent), actor("root", Role::Admin));
    let r1 = admitted(&b, "alice").await;
    let ticket = Ticket::new(&ctx(&r1, "alice"), "Printer", "It is on fire", Priority::Urgent);
    let created = b.tickets.create_ticket(&ctx(&r1, "alice"), &ticket).await.unwrap();
    assert!(created.first);
    assert_eq!(created.doc.result, Some(json!({ "ticket_id": ticket.ticket_id })));
    assert_eq!(created.events[0].event_type, EventType::TicketCreated);
    // Redelivery: the first completion again, and still one ticket.
    let again = Ticket::new(&ctx(&r1, "alice"), "Printer", "It is on fire", Priority::Urgent);
    let replay = b.tickets.create_ticket(&ctx(&r1, "alice"), &again).await.unwrap();
    assert!(!replay.first);
    assert_eq!(replay.doc, created.doc);
    assert!(b.tickets.ticket(&again.ticket_id).await.unwrap().is_none());
    let id = ticket.ticket_id.clone();
    let stored = b.tickets.ticket(&id).await.unwrap().expect("the ticket");
    assert_eq!(stored, ticket);

    let assign = |who: &str| TicketChange::Assign { agent_id: UserId::new(who) };
    assert_eq!(code(&change(&b, &root, &id, assign("ann")).await), "not_an_agent");
    b.users.record_user(&UserId::new("ann"), Role::Agent, clock::now()).await.unwrap();
    let assigned = change(&b, &root, &id, assign("ann")).await;
    assert_eq!(assigned.doc.result, Some(json!({ "ticket_id": id, "assignee": "ann" })));
    let types: Vec<EventType> = assigned.events.iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::TicketAssigned, EventType::TicketStatusChanged]);

    let to = |status| TicketChange::Transition { to: status, comment: None };
    assert_eq!(change(&b, &ann, &id, to(TicketStatus::Pending)).await.doc.result.unwrap()["status"], "pending");
    let commented = change(&b, &alice, &id, TicketChange::Comment { body: "still broken".into(), public: true }).await;
    assert_eq!(commented.events.len(), 2, "the comment and the reopening");
    assert_eq!(b.tickets.ticket(&id).await.unwrap().unwrap().status, TicketStatus::Open);
    let bad = change(&b, &ann, &id, to(TicketStatus::New)).await;
    assert_eq!(code(&bad), "invalid_transition");
    assert_eq!(bad.doc.error.as_ref().unwrap().extra["from"], "open");
    assert!(bad.events.is_empty());
    change(&b, &ann, &id, TicketChange::Comment { body: "internal".into(), public: false }).await;
    assert_eq!(change(&b, &ann, &id, to(TicketStatus::Solved)).await.doc.status, RequestStatus::Succeeded);
    assert_eq!(change(&b, &ann, &id, to(TicketStatus::Closed)).await.doc.status, RequestStatus::Succeeded);
    assert_eq!(
        code(&change(&b, &alice, &id, TicketChange::Comment { body: "x".into(), public: true }).await),
        "ticket_closed"
    );
    assert_eq!(code(&change(&b, &ann, &id, to(TicketStatus::Open)).await), "ticket_closed");

    let last = b.tickets.ticket(&id).await.unwrap().unwrap();
    assert_eq!(last.status, TicketStatus::Closed);
    assert_eq!(last.version, last.history.len() as u64);
    assert_eq!(last.comments.len(), 2);
    assert!(last.first_response_at.is_none(), "an internal note is no response");
    assert!(last.solved_at.is_some());
    let missing = change(&b, &ann, &TicketId::from("tkt_missing"), to(TicketStatus::Open)).await;
    assert_eq!(code(&missing), "ticket_not_found");
}

pub async fn ticket_authorization(b: Backend) {
    let (alice, bob) = (actor("alice", Role::Customer), actor("bob", Role::Customer));
    let (id, _) = new_ticket(&b, "alice", "Mine").await;
    let comment = |public| TicketChange::Comment { body: "hello".into(), public };
    assert_eq!(code(&change(&b, &bob, &id, comment(true)).await), "ticket_not_found");
    assert_eq!(code(&change(&b, &alice, &id, comment(false)).await), "forbidden");
    let to_pending = TicketChange::Transition { to: TicketStatus::Pending, comment: None };
    assert_eq!(code(&change(&b, &alice, &id, to_pending).await), "invalid_transition");
    assert_eq!(change(&b, &alice, &id, comment(true)).await.doc.status, RequestStatus::Succeeded);
    let t = b.tickets.ticket(&id).await.unwrap().unwrap();
    assert_eq!((t.status, t.version), (TicketStatus::New, 2), "refused changes left no trace");
}

pub async fn ticket_listing(b: Backend) {
    // A requester of its own, so that other checks sharing the backend do not interfere.
    let me = format!("lister-{}", RequestId::generate());
    let other = format!("other-{}", RequestId::generate());
    let ann = actor("ann", Role::Agent);
    b.users.record_user(&ann.sub, Role::Agent, clock::now()).await.unwrap();
    let mut mine = Vec::new();
    for i in 0..7 {
        mine.push(new_ticket(&b, &me, &format!("t{i}")).await.0);
    }
    new_ticket(&b, &other, "not mine").await;
    for id in &mine[..3] {
        change(&b, &ann, id, TicketChange::Assign { agent_id: ann.sub.clone() }).await;
    }
    let query =
        |limit, after| TicketQuery { status: None, assignee: None, requester: Some(UserId::new(&me)), limit, after };
    let mut seen = Vec::new();
    let mut after = None;
    for page in 0.. {
        assert!(page < 10, "paging ends");
        let got = b.tickets.tickets(&query(3, after)).await.unwrap();
        assert!(got.items.len() <= 3);
        seen.extend(got.items.iter().map(|t| t.ticket_id.clone()));
        match got.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, mine, "every ticket once, in creation order");
    let open = TicketQuery { status: Some(TicketStatus::Open), ..query(100, None) };
    let open: Vec<TicketId> = b.tickets.tickets(&open).await.unwrap().items.into_iter().map(|t| t.ticket_id).collect();
    assert_eq!(open, mine[..3].to_vec());
    let by_ann = TicketQuery { assignee: Some(ann.sub.clone()), status: Some(TicketStatus::New), ..query(100, None) };
    assert!(b.tickets.tickets(&by_ann).await.unwrap().items.is_empty());
    let exact = b.tickets.tickets(&query(7, None)).await.unwrap();
    assert_eq!((exact.items.len(), exact.next), (7, None), "no next page when nothing follows");
}

/// Twenty changes race on one ticket: each is applied against the ticket as the ones
/// before it left it, and the history tells the same story as the final state.
pub async fn concurrent_ticket_changes(b: Backend) {
    let ann = actor("ann", Role::Agent);
    b.users.record_user(&ann.sub, Role::Agent, clock::now()).await.unwrap();
    let (id, _) = new_ticket(&b, "alice", "Race").await;
    change(&b, &ann, &id, TicketChange::Assign { agent_id: ann.sub.clone() }).await;
    let targets = [TicketStatus::Pending, TicketStatus::OnHold, TicketStatus::Open, TicketStatus::Solved];
    let mut tasks = Vec::new();
    for i in 0..20usize {
        let (b, id, ann) = (b.clone(), id.clone(), ann.clone());
        let to = targets[i % targets.len()];
        tasks.push(tokio::spawn(
            async move { change(&b, &ann, &id, TicketChange::Transition { to, comment: None }).await },
        ));
    }
    let mut applied = 0;
    for t in tasks {
        let c = t.await.unwrap();
        assert!(c.doc.status.is_terminal());
        if c.doc.status == RequestStatus::Succeeded {
            applied += 1;
        } else {
            assert_eq!(code(&c), "invalid_transition");
        }
    }
    let t = b.tickets.ticket(&id).await.unwrap().unwrap();
    assert_eq!(t.version, t.history.len() as u64);
    assert_eq!(t.version, 3 + applied, "created, assigned, opened, then one entry per applied move");
    let statuses = t.history.iter().filter(|h| matches!(h.action, Action::Created | Action::StatusChanged));
    assert_eq!(statuses.filter_map(|h| h.to.as_deref()).next_back().and_then(TicketStatus::parse), Some(t.status));
}
