//! The booking flow end to end on the real app: ingress, queue, booking pool, events.

mod support;

use domain::actor::Role;
use domain::queue::{ATTR_TYPE, Queue};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use support::{cli, spawn, spawn_with};
use usher::Pool;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_then_book_then_read_the_booking() {
    // The analytics pool stays off so the test can read the analytics queue itself.
    let app = spawn_with(|_, c| c.pools = vec![Pool::Booking, Pool::Notifications]).await;
    let alice = app.token("alice", Role::Customer);
    let show = app.show_id().await;
    let held = app.hold(&alice, &show, &["A1", "A2", "A3"]).await;
    assert_eq!(held["status"], "succeeded", "{held}");
    let hold_id = held["result"]["hold_id"].as_str().unwrap();
    assert!(held["result"]["expires_at"].as_str().unwrap().ends_with('Z'));

    let id = app.command(&alice, "/v1/bookings", json!({ "hold_id": hold_id, "payment_token": "tok_visa" })).await;
    let booked = app.terminal(&alice, &id).await;
    assert_eq!(booked["status"], "succeeded", "{booked}");
    assert_eq!(booked["result"]["amount_cents"], 3600);
    let booking_id = booked["result"]["booking_id"].as_str().unwrap();
    let booking = app.get_json(&alice, &format!("/v1/bookings/{booking_id}")).await;
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["customer_id"], "alice");
    assert_eq!(booking["seat_ids"], json!(["A1", "A2", "A3"]));
    let bob = app.token("bob", Role::Customer);
    assert_eq!(app.get(Some(&bob), &format!("/v1/bookings/{booking_id}")).await.status(), 404);

    let states = app.seat_states(&show).await;
    assert!(states.iter().filter(|(s, _)| ["A1", "A2", "A3"].contains(&s.as_str())).all(|(_, st)| st == "booked"));
    // A booked seat cannot be held again.
    let again = app.hold(&bob, &show, &["A3", "A4"]).await;
    assert_eq!(again["status"], "failed");
    assert_eq!(again["error"]["code"], "seats_unavailable");
    assert_eq!(again["error"]["seat_ids"], json!(["A3"]));

    // Events went out for every outcome, CloudEvents-shaped, deduplicable by id.
    let mut events: Vec<Value> = Vec::new();
    for _ in 0..10 {
        let got = app.receive(Queue::Analytics.source()).await;
        if got.is_empty() {
            break;
        }
        events.extend(got.iter().map(|m| serde_json::from_str::<Value>(&m.body).unwrap()));
    }
    let types: BTreeSet<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    for t in ["usher.booking.hold.placed", "usher.booking.confirmed", "usher.booking.hold.rejected"] {
        assert!(types.contains(t), "missing {t} in {types:?}");
    }
    let metrics = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(metrics.status(), 200, "no token needed");
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains("usher_http_requests_total"), "{metrics}");
    assert!(metrics.contains(r#"usher_messages_total{pool="booking",outcome="done"}"#), "{metrics}");
    assert!(metrics.contains(r#"usher_consumer_lag_seconds{pool="booking"}"#), "{metrics}");
    for e in &events {
        assert_eq!(e["specversion"], "1.0");
        let pool = if e["type"] == "usher.notification.sent" { "/usher/notifications" } else { "/usher/booking" };
        assert_eq!(e["source"], pool);
        assert!(e["correlationid"].as_str().unwrap().starts_with("req_"));
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_frees_the_seats_and_only_the_holder_may_release() {
    let app = spawn().await;
    let alice = app.token("alice", Role::Customer);
    let bob = app.token("bob", Role::Customer);
    let show = app.show_id().await;
    let held = app.hold(&alice, &show, &["B1"]).await;
    let hold_id = held["result"]["hold_id"].as_str().unwrap().to_owned();
    let id = app.command(&bob, &format!("/v1/holds/{hold_id}/release"), json!({})).await;
    assert_eq!(app.terminal(&bob, &id).await["error"]["code"], "hold_not_found");
    let id = app.command(&alice, &format!("/v1/holds/{hold_id}/release"), json!({})).await;
    let released = app.terminal(&alice, &id).await;
    assert_eq!(released["status"], "succeeded");
    assert_eq!(released["result"]["hold_id"], hold_id.as_str());
    assert_eq!(app.hold(&bob, &show, &["B1"]).await["status"], "succeeded");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_fails_the_booking_and_keeps_the_hold() {
    let app = spawn().await;
    let alice = app.token("alice", Role::Customer);
    let show = app.show_id().await;
    let held = app.hold(&alice, &show, &["C1"]).await;
    let hold_id = held["result"]["hold_id"].as_str().unwrap();
    let id = app.command(&alice, "/v1/bookings", json!({ "hold_id": hold_id, "payment_token": "tok_decline" })).await;
    let failed = app.terminal(&alice, &id).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "payment_declined");
    // The hold still stands; a good card books it.
    let id =
        app.command(&alice, "/v1/bookings", json!({ "hold_id": hold_id, "payment_token": "tok_mastercard" })).await;
    assert_eq!(app.terminal(&alice, &id).await["status"], "succeeded");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_expire_on_time_and_emit_their_event() {
    let app = spawn_with(|s, c| {
        s.workers.hold_ttl = Duration::from_secs(1);
        c.pools = vec![Pool::Booking];
    })
    .await;
    let alice = app.token("alice", Role::Customer);
    let show = app.show_id().await;
    let held = app.hold(&alice, &show, &["D1"]).await;
    let hold_id = held["result"]["hold_id"].as_str().unwrap().to_owned();
    let state = |states: &[(String, String)]| states.iter().find(|(s, _)| s == "D1").unwrap().1.clone();
    assert_eq!(state(&app.seat_states(&show).await), "held");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(state(&app.seat_states(&show).await), "available", "expired the moment its time came");
    // Booking an expired hold fails with hold_expired.
    let id = app.command(&alice, "/v1/bookings", json!({ "hold_id": hold_id, "payment_token": "tok_visa" })).await;
    let failed = app.terminal(&alice, &id).await;
    assert_eq!(failed["error"]["code"], "hold_expired", "{failed}");
    // The delayed expiry message runs and emits usher.booking.hold.expired.
    let mut expired = false;
    for _ in 0..50 {
        let got = app.receive(Queue::Analytics.source()).await;
        if got.iter().any(|m| m.attributes[ATTR_TYPE] == "usher.booking.hold.expired" && m.body.contains(&hold_id)) {
            expired = true;
            break;
        }
    }
    assert!(expired, "the expiry event was published");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_holds_race_and_no_seat_is_held_twice() {
    let app = spawn().await;
    let show = app.show_id().await;
    let mut tasks = Vec::new();
    let app = std::sync::Arc::new(app);
    for i in 0..60usize {
        let app = app.clone();
        let show = show.clone();
        tasks.push(tokio::spawn(async move {
            let token = app.token(&format!("racer{i}"), Role::Customer);
            // Overlapping windows of three seats along row E.
            let seats: Vec<String> = (0..3).map(|k| format!("E{}", (i + k) % 12 + 1)).collect();
            let seats: Vec<&str> = seats.iter().map(String::as_str).collect();
            app.hold(&token, &show, &seats).await
        }));
    }
    let mut held: Vec<String> = Vec::new();
    for t in tasks {
        let doc = t.await.unwrap();
        match doc["status"].as_str().unwrap() {
            "succeeded" => held
                .extend(doc["result"]["seat_ids"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned())),
            "failed" => assert_eq!(doc["error"]["code"], "seats_unavailable"),
            other => panic!("unexpected terminal status {other}"),
        }
    }
    let unique: BTreeSet<&String> = held.iter().collect();
    assert_eq!(unique.len(), held.len(), "a seat was held twice: {held:?}");
    let on_map: BTreeSet<String> =
        app.seat_states(&show).await.into_iter().filter(|(_, st)| st == "held").map(|(s, _)| s).collect();
    assert_eq!(on_map, unique.into_iter().cloned().collect(), "the seat map agrees");
    std::sync::Arc::into_inner(app).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_provider_dead_letters_and_operators_replay_it() {
    let app = spawn().await;
    let alice = app.token("alice", Role::Customer);
    let show = app.show_id().await;
    let held = app.hold(&alice, &show, &["F1"]).await;
    let hold_id = held["result"]["hold_id"].as_str().unwrap();
    let id =
        app.command(&alice, "/v1/bookings", json!({ "hold_id": hold_id, "payment_token": "tok_unavailable" })).await;
    let dead = app.terminal(&alice, &id).await;
    assert_eq!(dead["status"], "dead_lettered", "{dead}");
    // Customers read a generic reason; the detail is for operators, on the DLQ message.
    let detail = dead["error"]["detail"].as_str().unwrap();
    assert!(!detail.contains("unavailable") && detail.contains("operator"), "{detail}");

    let (ok, out, _) = cli(&app, &["dlq", "list"]);
    assert!(ok);
    assert!(out.lines().any(|l| l == "booking-commands-dlq 1"), "{out}");
    let (ok, out, err) = cli(&app, &["dlq", "peek", "booking-commands", "--json"]);
    assert!(ok, "{err}");
    let peeked: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(peeked[0]["request_id"], id.as_str());
    assert_eq!(peeked[0]["type"], "booking.confirm");
    assert_eq!(peeked[0]["receive_count"], 3);
    assert!(peeked[0]["failure_reason"].as_str().unwrap().contains("unavailable"));
    assert!(peeked[0]["failed_at"].as_str().unwrap().ends_with('Z'));
    // Peeking consumed nothing.
    let (_, out, _) = cli(&app, &["dlq", "list", "--json"]);
    assert!(out.contains(r#"{"queue":"booking-commands-dlq","depth":1}"#), "{out}");

    let (ok, out, _) = cli(&app, &["dlq", "replay", "booking-commands", "--type", "booking.hold.place"]);
    assert!(ok);
    assert_eq!(out.trim(), "moved 0 skipped 1 failed 0");
    let (ok, out, _) = cli(&app, &["dlq", "replay", "booking-commands-dlq", "--dry-run"]);
    assert!(ok);
    assert_eq!(out.trim(), "would move 1 skipped 0 failed 0");
    for (flag, value) in [("--limit", "0"), ("--rate", "0")] {
        let (ok, out, err) = cli(&app, &["dlq", "replay", "booking-commands", flag, value]);
        assert!(!ok && out.is_empty() && err.starts_with(&format!("usher: {flag} must")), "{flag} {value}: {err}");
    }
    // A type no message can have is a typo, not "nothing matched".
    let (ok, out, err) = cli(&app, &["dlq", "replay", "booking-commands", "--type", "usher.nope"]);
    assert!(
        !ok && out.is_empty() && err.starts_with(r#"usher: --type "usher.nope" is no command or event type"#),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let (ok, out, _) = cli(&app, &["dlq", "replay", "booking-commands", "--rate", "5"]);
    assert!(ok);
    assert_eq!(out.trim(), "moved 1 skipped 0 failed 0");
    // Back on its queue, the provider still down: it dies again, and ends terminal again.
    let again = app.terminal(&alice, &id).await;
    assert_eq!(again["status"], "dead_lettered");
    assert!(again["updated_at"].as_str() > dead["updated_at"].as_str(), "it ran again");

    let (ok, _, err) = cli(&app, &["dlq", "purge", "booking-commands"]);
    assert!(!ok && err.contains("--yes"), "purge without --yes refuses: {err}");
    let (ok, out, _) = cli(&app, &["dlq", "purge", "booking-commands", "--yes"]);
    assert!(ok, "{out}");
    let (_, out, _) = cli(&app, &["dlq", "list"]);
    assert!(out.lines().any(|l| l == "booking-commands-dlq 0"), "{out}");
    let (ok, _, err) = cli(&app, &["dlq", "peek", "nope"]);
    assert!(!ok && err.starts_with("usher: unknown queue"), "{err}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_queue_is_dead_lettered_at_once_and_the_fleet_keeps_serving() {
    use domain::queue::{Attributes, OutgoingMessage};
    let app = spawn().await;
    let garbage =
        OutgoingMessage::new("{not json".into(), Attributes::from([(ATTR_TYPE.into(), "booking.hold.place".into())]));
    app.backend.queues.send_batch(Queue::BookingCommands.source(), vec![garbage]).await.unwrap();
    let mut dead = Vec::new();
    for _ in 0..50 {
        dead = app
            .backend
            .queues
            .receive(Queue::BookingCommands.dlq(), 10, Duration::from_millis(100), Duration::ZERO)
            .await
            .unwrap();
        if !dead.is_empty() {
            break;
        }
    }
    assert_eq!(dead.len(), 1, "dead-lettered");
    assert_eq!(dead[0].attributes["receive_count"], "1", "on its first receive");
    assert!(dead[0].attributes["failure_reason"].contains("unparseable"));
    let alice = app.token("alice", Role::Customer);
    let show = app.show_id().await;
    assert_eq!(app.hold(&alice, &show, &["G1"]).await["status"], "succeeded");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_requeues_a_command_whose_admitter_died() {
    use domain::actor::Actor;
    use domain::clock;
    use domain::command::{Command, CommandEnvelope};
    use domain::idempotency::{Fingerprint, IdempotencyKey};
    use domain::ids::{RequestId, UserId};
    use domain::ports::{Admission, StoredResponse};
    use domain::request::StatusDoc;
    let app = spawn_with(|_, c| c.sweep_grace = Duration::from_millis(300)).await;
    let show = app.show_id().await;
    // Claimed and recorded, but never queued: as if ingress died right after the claim.
    let request_id = RequestId::generate();
    let now = clock::now();
    let command = CommandEnvelope {
        request_id: request_id.clone(),
        actor: Actor { sub: UserId::new("alice"), role: Role::Customer },
        issued_at: now,
        traceparent: None,
        command: Command::PlaceHold { show_id: show.as_str().into(), seat_ids: vec!["H1".into()] },
    };
    let admission = Admission {
        owner: UserId::new("alice"),
        key: IdempotencyKey::parse("stranded").unwrap(),
        fingerprint: Fingerprint::of("POST", "/v1/holds", &json!({})),
        doc: StatusDoc::accepted(request_id.clone(), "booking.hold.place", now),
        command,
        response: StoredResponse { status: 202, body: "{}".into() },
        key_expires_at: now + Duration::from_secs(3600),
        queue_with_claim: false,
    };
    app.backend.requests.admit(admission).await.unwrap();
    let alice = app.token("alice", Role::Customer);
    let doc = app.terminal(&alice, request_id.as_str()).await;
    assert_eq!(doc["status"], "succeeded", "{doc}");
    app.stop().await;
}

/// A customer's live holds cover at most `USHER_MAX_HELD_SEATS` seats: past it a hold
/// fails with `hold_limit_reached` in its status document, and releasing makes room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hold_cap_stops_one_customer_holding_every_seat() {
    let app = spawn_with(|config, _| config.workers.max_held_seats = 4).await;
    let carol = app.token("carol", Role::Customer);
    let show = app.show_id().await;
    let first = app.hold(&carol, &show, &["A1", "A2", "A3"]).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let over = app.hold(&carol, &show, &["A4", "A5"]).await;
    assert_eq!(over["status"], "failed", "{over}");
    assert_eq!(over["error"]["code"], "hold_limit_reached");
    assert_eq!((over["error"]["held_seats"].as_u64(), over["error"]["max_held_seats"].as_u64()), (Some(3), Some(4)));
    // Another customer is not affected.
    let dave = app.token("dave", Role::Customer);
    assert_eq!(app.hold(&dave, &show, &["A4", "A5"]).await["status"], "succeeded");
    let hold_id = first["result"]["hold_id"].as_str().unwrap();
    let id = app.command(&carol, &format!("/v1/holds/{hold_id}/release"), json!({})).await;
    assert_eq!(app.terminal(&carol, &id).await["status"], "succeeded");
    assert_eq!(app.hold(&carol, &show, &["A6", "A7", "A8", "A9"]).await["status"], "succeeded");
}
