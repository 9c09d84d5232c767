//! The `MessageQueue` contract: round trips, visibility, delays, batches over ten,
//! the queue's own redrive to its DLQ, purge, and the stats operators read.

use super::{VIS, WAIT, drain};
use crate::Backend;
use domain::queue::{ATTR_TYPE, Attributes, OutgoingMessage, Queue, QueueAddr};
use std::collections::BTreeSet;
use std::time::Duration;

fn msg(body: &str) -> OutgoingMessage {
    OutgoingMessage::new(body.to_owned(), Attributes::from([(ATTR_TYPE.to_owned(), "test.kind".to_owned())]))
}

const Q: QueueAddr = QueueAddr { queue: Queue::BookingCommands, dead: false };

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
    // A receive takes at most what it asks for, and never more than the backend's batch.
    let mut got = b.queues.receive(Q, 3, WAIT, VIS).await.unwrap();
    assert!((1..=3).contains(&got.len()), "asked for 3, got {}", got.len());
    let more = b.queues.receive(Q, 1000, WAIT, VIS).await.unwrap();
    assert!(more.len() <= b.queues.max_batch(), "{} is over the batch of {}", more.len(), b.queues.max_batch());
    got.extend(more);
    let left = 25 - got.len();
    got.extend(drain(&b, Q, left).await);
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

/// Visible, in flight and delayed are counted apart; the oldest age, where the backend
/// knows it (not SQS), covers what has waited, not what is still delayed.
pub async fn stats_by_state(b: Backend) {
    let empty = b.queues.stats(Q).await.expect("stats");
    assert_eq!((empty.visible, empty.in_flight, empty.delayed, empty.oldest_age), (0, 0, 0, None));
    let mut later = msg("later");
    later.delay = Duration::from_secs(120);
    b.queues.send_batch(Q, vec![msg("a"), msg("b"), msg("c"), later]).await.unwrap();
    let taken = drain(&b, Q, 1).await;
    assert!(!taken.is_empty());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let stats = b.queues.stats(Q).await.unwrap();
    assert_eq!(stats.visible + stats.in_flight, 3, "{stats:?}");
    assert_eq!(stats.in_flight, taken.len() as u64, "{stats:?}");
    assert_eq!(stats.delayed, 1, "{stats:?}");
    if let Some(age) = stats.oldest_age {
        assert!(age >= Duration::from_secs(1) && age < Duration::from_secs(60), "{age:?}");
    }
    assert_eq!(b.queues.depth(Q).await.unwrap(), 4);
    let dlq = b.queues.stats(Q.queue.dlq()).await.unwrap();
    assert_eq!(dlq.visible + dlq.in_flight + dlq.delayed, 0);
}
