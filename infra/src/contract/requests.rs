//! The `RequestStore` and `Outbox` contract: admission and idempotency keys, abandoning
//! a claim, conditional completion, reopening, and the delivery of what a completion
//! commits.

use super::{delivered_events, drain, event, relay_pending};
use crate::Backend;
use domain::actor::{Actor, Role};
use domain::clock::{self, Timestamp};
use domain::command::{Command, CommandEnvelope};
use domain::event::EventType;
use domain::idempotency::{Fingerprint, IdempotencyKey};
use domain::ids::{HoldId, RequestId, UserId};
use domain::outbox::{Decision, OutboxBacklog, ScheduledMessage};
use domain::ports::{Abandoned, Admission, Admitted, StoredResponse};
use domain::queue::Queue;
use domain::request::{Outcome, RequestStatus, StatusDoc};
use serde_json::json;
use std::time::Duration;

fn admission(owner: &str, key: &str, body: serde_json::Value, now: Timestamp) -> Admission {
    let request_id = RequestId::generate();
    let command = CommandEnvelope {
        request_id: request_id.clone(),
        actor: Actor { sub: UserId::new(owner), role: Role::Customer },
        issued_at: now,
        traceparent: None,
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
        queue_with_claim: false,
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

/// A store that holds the queues (embedded) queues the command with the claim; one that
/// cannot (DynamoDB beside SQS) claims only, and the caller sends. Either way a replay
/// answers the first response, and a queued command is on its queue and not stranded.
pub async fn admission_can_queue_with_the_claim(b: Backend) {
    let now = clock::now();
    let a = Admission { queue_with_claim: true, ..admission("gina", "q1", json!({}), now) };
    let id = a.doc.request_id.clone();
    let source = a.command.command.queue().source();
    match b.requests.admit(a.clone()).await.unwrap() {
        Admitted::Queued => {
            let stranded = b.requests.unqueued(now + Duration::from_secs(1), 100).await.unwrap();
            assert!(!stranded.iter().any(|c| c.request_id == id), "a queued command is not the sweep's");
            let mut found = false;
            for _ in 0..10 {
                let got = b.queues.receive(source, 10, Duration::from_millis(200), Duration::from_secs(30)).await;
                let got = got.unwrap();
                if got.iter().any(|m| m.body == a.command.to_json()) {
                    found = true;
                    break;
                }
            }
            assert!(found, "the command is on its queue");
            match b.requests.admit(a.clone()).await.unwrap() {
                Admitted::Replay(r) => assert_eq!(r, a.response),
                other => panic!("expected Replay, got {other:?}"),
            }
        }
        Admitted::Claimed => {
            // The claim-then-send path, as without the flag.
            assert!(matches!(b.requests.admit(a.clone()).await.unwrap(), Admitted::Unqueued { .. }));
        }
        other => panic!("expected Queued or Claimed, got {other:?}"),
    }
    assert_eq!(b.requests.get(&id).await.unwrap().expect("the status doc exists").doc.status, RequestStatus::Accepted);
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

/// A completion's events and messages are delivered once, and only if it committed. On
/// aws they wait in the outbox for the relay; on embedded they went onto their queues in
/// the completion's own transaction, and the outbox stays empty. Either way, once what is
/// pending is relayed, the event is on its subscribed queue once and the message on its
/// queue once.
pub async fn a_completion_delivers_what_it_commits_once(b: Backend) {
    assert_eq!(b.outbox.backlog().await.unwrap(), OutboxBacklog::default());
    let id = admitted(&b, "olga").await;
    let ev = event(EventType::HoldPlaced, "hold_o");
    let envelope = CommandEnvelope {
        request_id: id.clone(),
        actor: Actor { sub: UserId::new("olga"), role: Role::Customer },
        issued_at: clock::now(),
        traceparent: None,
        command: Command::ExpireHold { hold_id: HoldId::from("hold_o"), expires_at: clock::now() },
    };
    let due = ScheduledMessage::command(&envelope, clock::now());
    let mut decision = Decision::new(Outcome::Succeeded(json!({"ok": 1})), vec![ev.clone()]);
    decision.messages.push(due.clone());
    b.requests.complete(&id, decision.clone(), clock::now()).await.unwrap();
    // A redelivered completion adds nothing.
    assert!(!b.requests.complete(&id, decision, clock::now()).await.unwrap().first);

    relay_pending(&b).await;

    let events = delivered_events(&b, 1).await;
    assert_eq!(events.iter().map(|e| &e.id).collect::<Vec<_>>(), [&ev.id]);
    let commands = drain(&b, Queue::BookingCommands.source(), 1).await;
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert_eq!(commands[0].body, due.body);
    for queue in [Queue::Analytics, Queue::BookingCommands] {
        assert_eq!(b.queues.depth(queue.source()).await.unwrap(), 1, "{queue:?} holds it once");
    }
}

pub(super) async fn admitted(b: &Backend, owner: &str) -> RequestId {
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
