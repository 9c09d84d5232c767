//! The booking pool on the embedded backend, where the queues live in the store's file.

use domain::queue::Queue;
use serde_json::json;
use std::time::Duration;
use testkit::TestApp;
use workers::booking::BookingPool;
use workers::consumer::Handler;

/// A command's message is deleted by the transaction that applies the command, so it is
/// gone exactly when its effect is durable, before the consumer's own delete.
#[tokio::test]
async fn a_command_message_is_deleted_by_the_commit_that_applies_it() {
    let app = TestApp::ingress_with(|_| {}).await;
    let (_, show) = app.create_show(1, 5).await;
    let alice = app.customer("alice");
    let request_id = app.command(&alice, "/v1/holds", json!({"show_id": show, "seat_ids": ["A1"]})).await;
    let received = app.receive(Queue::BookingCommands.source()).await;
    assert_eq!(received.len(), 1);
    let in_flight = app.backend.queues.stats(Queue::BookingCommands.source()).await.unwrap();
    assert_eq!((in_flight.visible, in_flight.in_flight), (0, 1), "received: {in_flight:?}");

    let pool = BookingPool::new(app.backend.clone(), Duration::from_secs(600), 10);
    let effects = pool.handle(&received[0]).await.expect("the hold is applied");
    assert!(effects.acknowledged, "the consumer would send a delete the commit made needless");
    let doc = app.get_json(&alice, &format!("/v1/requests/{request_id}")).await;
    assert_eq!(doc["status"], "succeeded", "{doc}");
    // Only the hold's delayed expiry is left: the command's message went with the commit.
    let after = app.backend.queues.stats(Queue::BookingCommands.source()).await.unwrap();
    assert_eq!((after.visible, after.in_flight, after.delayed), (0, 0, 1), "applied: {after:?}");
    // A second copy of the message (as a redelivery brings) finds the request done and
    // changes nothing.
    pool.handle(&received[0]).await.expect("a redelivery is a no-op");
    let again = app.backend.queues.stats(Queue::BookingCommands.source()).await.unwrap();
    assert_eq!(again, after);
    app.stop().await;
}
