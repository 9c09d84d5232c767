//! The port contract suite, one module per port. Every adapter runs it through its own
//! `fresh` function:
//!
//! ```ignore
//! async fn fresh(max_receives: u32) -> Option<infra::Backend> { /* a new, set-up backend */ }
//! infra::port_contract_tests!(fresh);
//! ```
//!
//! Each check takes a fresh backend, so they run in parallel against one server. Compiled
//! only for tests: infra's own test targets turn on the `contract` feature.

pub mod bookings;
pub mod bus;
pub mod downstream;
pub mod queues;
pub mod requests;
pub mod tickets;

use crate::Backend;
use domain::actor::{Actor, Role};
use domain::clock;
use domain::event::{CloudEvent, EventType};
use domain::ids::{RequestId, UserId};
use domain::outbox::{OutboxBacklog, OutboxEntry};
use domain::queue::{Queue, QueueAddr, ReceivedMessage};
use domain::request::CommandContext;
use serde_json::json;
use std::time::Duration;

/// Generates one `#[tokio::test]` per contract check, each on `$fresh(max_receives)`,
/// named as the check.
#[macro_export]
macro_rules! port_contract_tests {
    ($fresh:path) => {
        $crate::port_contract_tests!(@port $fresh; queues:
            queue_round_trip, visibility_hides_and_redelivers, change_visibility_reveals,
            delayed_send, large_batches, redrive_moves_to_dlq, purge_empties, stats_by_state);
        $crate::port_contract_tests!(@port $fresh; bus: fan_out_by_filter, traceparent_rides_along);
        $crate::port_contract_tests!(@port $fresh; requests:
            admission_rules, admission_can_queue_with_the_claim, expired_keys_are_free, abandon_frees_the_key,
            abandon_keeps_a_queued_claim, complete_is_conditional, a_completion_delivers_what_it_commits_once,
            reopen_dead_lettered);
        $crate::port_contract_tests!(@port $fresh; bookings:
            hold_is_all_or_nothing, expired_hold_counts_available, release_and_confirm,
            concurrent_holds_never_overlap, one_charge_per_hold, a_retaken_seat_expires_the_hold,
            the_hold_cap_counts_live_holds, racing_holds_cannot_beat_the_cap);
        $crate::port_contract_tests!(@port $fresh; downstream:
            notifications_once_per_event, notifications_newest_first, notifications_per_recipient,
            analytics_counts_each_event_once, analytics_order_does_not_matter, analytics_concurrent_writers,
            daily_newest_first, analytics_deletes_what_it_folds_where_it_can);
        $crate::port_contract_tests!(@port $fresh; tickets:
            user_directory, ticket_lifecycle, ticket_authorization, ticket_listing, concurrent_ticket_changes);
    };
    (@port $fresh:path; $port:ident: $($check:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let Some(backend) = $fresh(3).await else { return };
                $crate::contract::$port::$check(backend).await;
            }
        )+
    };
}

const VIS: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(2);

/// Receives from `q` until `expect` messages came (or twenty receives passed).
async fn drain(b: &Backend, q: QueueAddr, expect: usize) -> Vec<ReceivedMessage> {
    let mut got = Vec::new();
    for _ in 0..20 {
        if got.len() >= expect {
            break;
        }
        got.extend(b.queues.receive(q, 10, WAIT, VIS).await.expect("receive"));
    }
    got
}

/// Does what the relay does with whatever the outbox holds: publishes the events, sends
/// the messages, then forgets them, checking the outbox port along the way. On embedded
/// there is nothing to do: what a command commits goes onto its queues in its own
/// transaction.
async fn relay_pending(b: &Backend) {
    let pending = b.outbox.pending(100).await.expect("pending");
    let backlog = b.outbox.backlog().await.expect("backlog");
    assert_eq!(backlog.pending, pending.len() as u64, "{pending:?}");
    assert_eq!(backlog.oldest.is_some(), !pending.is_empty());
    let mut ids = Vec::new();
    for item in &pending {
        match &item.entry {
            OutboxEntry::Event { event } => b.bus.publish(std::slice::from_ref(event)).await.expect("publish"),
            OutboxEntry::Message { message } => {
                let queue = message.address().expect("a known queue");
                b.queues.send_batch(queue, vec![message.outgoing(clock::now())]).await.expect("send");
            }
        }
        ids.push(item.id.clone());
    }
    if let Some(first) = ids.first() {
        b.outbox.delivered(std::slice::from_ref(first)).await.expect("delivered");
        assert_eq!(b.outbox.pending(100).await.expect("pending").len(), ids.len() - 1);
    }
    b.outbox.delivered(&ids).await.expect("delivered");
    b.outbox.delivered(&ids).await.expect("delivered again");
    assert_eq!(b.outbox.backlog().await.expect("backlog"), OutboxBacklog::default());
}

/// Every event delivered so far, once the outbox is relayed: the analytics queue, which
/// subscribes to every type, drained. There must be exactly `expect`.
async fn delivered_events(b: &Backend, expect: usize) -> Vec<CloudEvent> {
    relay_pending(b).await;
    let queue = Queue::Analytics.source();
    let received = drain(b, queue, expect).await;
    assert_eq!(received.len(), expect, "{received:?}");
    assert_eq!(b.queues.depth(queue).await.expect("depth"), expect as u64, "every event was received");
    received.iter().map(|m| serde_json::from_str(&m.body).expect("an event's JSON")).collect()
}

fn event(t: EventType, subject: &str) -> CloudEvent {
    CloudEvent::new(t, "booking", subject, "req_contract", json!({ "n": subject }), clock::now())
}

fn ctx(id: &RequestId, who: &str) -> CommandContext {
    let actor = Actor { sub: UserId::new(who), role: Role::Customer };
    CommandContext { request_id: id.clone(), actor, now: clock::now(), traceparent: None, delivery: None }
}
