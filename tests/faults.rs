//! Faults injected at the port boundary (`infra::faults`), end to end over HTTP, on the
//! embedded backend or, with `USHER_TEST_BACKEND=aws`, on moto. Each test is a hole that
//! a fault used to open; it fails without the fix it names.

mod support;

use domain::actor::Role;
use infra::faults::{Fault, Faults, Op};
use serde_json::{Value, json};
use std::time::Duration;
use support::spawn_with_faults;

fn status(doc: &Value) -> &str {
    doc["status"].as_str().unwrap_or_default()
}

/// The bus is down for longer than every receive a command gets. Commands still succeed,
/// nothing is dead-lettered, and every event reaches analytics. On aws the events wait in
/// the outbox until the bus answers; on embedded they go onto their queues in the
/// command's own transaction, so a topic that is down delays nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_outage_delays_events_but_loses_none() {
    let faults = Faults::default();
    let app = spawn_with_faults(&faults).await;
    let show = app.show_id().await;
    faults.set(Op::Publish, Fault::Fail, None);
    let seats = ["H1", "H2", "H3", "H4", "H5"];
    for (i, seat) in seats.iter().enumerate() {
        let customer = app.token(&format!("outage{i}"), Role::Customer);
        let held = app.hold(&customer, &show, &[seat]).await;
        assert_eq!(status(&held), "succeeded", "{held}");
    }
    let dead_letters =
        || async { app.backend.queues.depth(domain::queue::Queue::BookingCommands.dlq()).await.unwrap() };
    match app.settings.backend {
        infra::BackendKind::Aws => {
            // Longer than max_receives (3) × the test backoff (≤ 100 ms) many times over.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert!(faults.hits(Op::Publish) > 0, "the relay did try the bus");
            assert_eq!(dead_letters().await, 0, "nothing is dead-lettered for want of a bus");
            let backlog = app.backend.outbox.backlog().await.unwrap();
            assert!(backlog.pending >= seats.len() as u64, "the events wait in the outbox: {backlog:?}");
            let report = app.report_until(&show, |_| true).await;
            assert_eq!(report["seats_held"], 0, "analytics saw nothing yet: {report}");
            faults.clear(Op::Publish);
        }
        infra::BackendKind::Embedded => {
            let report = app.report_until(&show, |r| r["seats_held"] == seats.len()).await;
            assert_eq!(report["seats_held"], seats.len(), "analytics saw every hold with the topic down: {report}");
            assert_eq!(faults.hits(Op::Publish), 0, "no event went through the topic");
            assert_eq!(app.backend.outbox.backlog().await.unwrap().pending, 0, "nothing waits in the outbox");
            assert_eq!(dead_letters().await, 0, "nothing is dead-lettered");
            faults.clear(Op::Publish);
        }
    }
    let report = app.report_until(&show, |r| r["seats_held"] == seats.len()).await;
    assert_eq!(report["seats_held"], seats.len());
    app.stop().await;
}

/// A commit that landed but answered an error (a timeout after the write) is retried;
/// the retry finds the request terminal and changes nothing: one hold, one event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_commit_runs_the_command_once() {
    let faults = Faults::default();
    let app = spawn_with_faults(&faults).await;
    let show = app.show_id().await;
    let alice = app.token("alice", Role::Customer);
    faults.set(Op::Commit, Fault::Ambiguous, Some(1));
    let held = app.hold(&alice, &show, &["G1", "G2"]).await;
    assert_eq!(status(&held), "succeeded", "{held}");
    assert_eq!(faults.hits(Op::Commit), 1);
    let held_now: Vec<String> =
        app.seat_states(&show).await.into_iter().filter(|(_, st)| st == "held").map(|(s, _)| s).collect();
    assert_eq!(held_now, vec!["G1".to_owned(), "G2".to_owned()]);
    let report = app.report_until(&show, |r| r["seats_held"] == 2).await;
    assert_eq!(report["seats_held"], 2, "one hold.placed, counted once");
    app.stop().await;
}

/// Two confirms of one hold under different keys: one charge, one booking, one
/// `usher.booking.confirmed`; the other request fails cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_confirm_charges_once() {
    let faults = Faults::default();
    let app = spawn_with_faults(&faults).await;
    let show = app.show_id().await;
    let alice = app.token("alice", Role::Customer);
    let held = app.hold(&alice, &show, &["J1"]).await;
    let hold_id = held["result"]["hold_id"].as_str().unwrap().to_owned();
    let body = json!({ "hold_id": hold_id, "payment_token": "tok_visa" });
    let (a, b) = tokio::join!(app.run(&alice, "/v1/bookings", body.clone()), app.run(&alice, "/v1/bookings", body));
    let mut statuses = [status(&a).to_owned(), status(&b).to_owned()];
    statuses.sort();
    assert_eq!(statuses, ["failed".to_owned(), "succeeded".to_owned()], "{a} {b}");
    let lost = if status(&a) == "failed" { &a } else { &b };
    assert_eq!(lost["error"]["code"], "hold_not_found", "{lost}");
    let report = app.report_until(&show, |r| r["bookings"] == 1 && r["seats_booked"] == 1).await;
    // Give a second confirmed event time to arrive, if there were one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = app.report_until(&show, |_| true).await;
    assert_eq!(again, report, "one booking.confirmed, one charge");
    app.stop().await;
}

/// A command that fails to reach its queue leaves its key free (with its unqueued
/// document gone), so the client's retry with the same key is admitted afresh; a command
/// that did reach its queue is never admitted twice. On aws the send after the claim
/// fails; on embedded the admission's one transaction (key, document, message) does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_send_frees_the_key_only_with_its_document() {
    let faults = Faults::default();
    let app = spawn_with_faults(&faults).await;
    let show = app.show_id().await;
    let alice = app.token("alice", Role::Customer);
    let body = json!({ "show_id": show, "seat_ids": ["E7"] });
    let reaches_the_queue = match app.settings.backend {
        infra::BackendKind::Aws => Op::Send,
        infra::BackendKind::Embedded => Op::Admit,
    };
    faults.set(reaches_the_queue, Fault::Fail, Some(1));
    let first = app.post_json(&alice, "/v1/holds", "retry-me", &body).await;
    assert_eq!(first.status(), 503);
    assert!(first.headers().contains_key("retry-after"));
    let retry = app.post_json(&alice, "/v1/holds", "retry-me", &body).await;
    assert_eq!(retry.status(), 202);
    assert!(!retry.headers().contains_key("idempotent-replayed"), "admitted afresh");
    let accepted: Value = retry.json().await.unwrap();
    let done = app.terminal(&alice, accepted["request_id"].as_str().unwrap()).await;
    assert_eq!(status(&done), "succeeded", "{done}");
    let again = app.post_json(&alice, "/v1/holds", "retry-me", &body).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    app.stop().await;
}
