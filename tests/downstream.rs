//! Downstream of the topic: the notifications and analytics pools, their reads, and the
//! event catalog checked against what the fleet really emits.

mod support;

use domain::actor::Role;
use domain::event::{CloudEvent, EventType};
use domain::queue::Queue;
use serde_json::{Value, json};
use std::time::Duration;
use support::{TestApp, spawn, spawn_with};
use usher::Pool;

async fn book(app: &TestApp, token: &str, show: &str, seats: &[&str]) -> Value {
    let held = app.hold(token, show, seats).await;
    assert_eq!(held["status"], "succeeded", "{held}");
    let hold_id = held["result"]["hold_id"].as_str().unwrap();
    let id = app.command(token, "/v1/bookings", json!({ "hold_id": hold_id, "payment_token": "tok_visa" })).await;
    let booked = app.terminal(token, &id).await;
    assert_eq!(booked["status"], "succeeded", "{booked}");
    booked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_booked_seats_show_in_the_report_and_duplicates_change_nothing() {
    let app = spawn().await;
    let alice = app.token("alice", Role::Customer);
    let show = app.show_id().await;
    book(&app, &alice, &show, &["A1", "A2", "A3"]).await;
    let bob = app.token("bob", Role::Customer);
    assert_eq!(app.hold(&bob, &show, &["B1"]).await["status"], "succeeded");

    let report = app.report_until(&show, |r| r["seats_booked"] == 3 && r["seats_held"] == 1).await;
    assert_eq!(
        report,
        json!({"show_id": show, "seats_total": 120, "seats_booked": 3, "seats_held": 1, "bookings": 1, "revenue_cents": 3600})
    );
    let admin = app.token("admin", Role::Admin);
    let daily = app.get_json(&admin, "/v1/reports/daily").await;
    assert_eq!(daily[0]["bookings"], 1);
    assert_eq!(daily[0]["revenue_cents"], 3600);

    // The same event again, twice over: nothing counts twice.
    let confirmed = CloudEvent::new(
        EventType::BookingConfirmed,
        "booking",
        "bk_dup",
        "req_dup",
        json!({"booking_id": "bk_dup", "hold_id": "hold_dup", "show_id": show, "seat_ids": ["C1"], "amount_cents": 1200, "customer_id": "carol"}),
        domain::clock::now(),
    );
    app.backend.bus.publish(&[confirmed.clone(), confirmed.clone()]).await.unwrap();
    app.backend.bus.publish(&[confirmed]).await.unwrap();
    let report = app.report_until(&show, |r| r["bookings"] == 2).await;
    assert_eq!(report["seats_booked"], 4);
    assert_eq!(report["revenue_cents"], 4800);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let settled = app.get_json(&admin, &format!("/v1/reports/shows/{show}")).await;
    assert_eq!(settled, report, "the duplicates changed nothing");

    // Reports are not for customers; unknown shows are 404.
    assert_eq!(app.get(Some(&alice), &format!("/v1/reports/shows/{show}")).await.status(), 403);
    assert_eq!(app.get(Some(&alice), "/v1/reports/tickets").await.status(), 403);
    assert_eq!(app.get(Some(&admin), "/v1/reports/shows/show_nope").await.status(), 404);
    assert_eq!(app.get(Some(&admin), "/v1/reports/tickets").await.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_reaches_its_recipient_and_no_one_else() {
    let app = spawn().await;
    let alice = app.token("alice", Role::Customer);
    let show = app.show_id().await;
    let booked = book(&app, &alice, &show, &["D1", "D2"]).await;
    let booking_id = booked["result"]["booking_id"].as_str().unwrap();
    let mut mine = Value::Null;
    for _ in 0..100 {
        mine = app.get_json(&alice, "/v1/notifications").await;
        if !mine.as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mine = mine.as_array().unwrap().clone();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["recipient"], "alice");
    assert_eq!(mine[0]["event_type"], "usher.booking.confirmed");
    assert!(mine[0]["subject"].as_str().unwrap().contains(booking_id));
    assert!(mine[0]["body"].as_str().unwrap().contains("D1, D2"));
    let bob = app.token("bob", Role::Customer);
    assert_eq!(app.get_json(&bob, "/v1/notifications").await, json!([]));
    let admin = app.token("admin", Role::Admin);
    assert_eq!(app.get_json(&admin, "/v1/notifications").await, json!([]), "even admins read only their own");
    assert_eq!(app.get(Some(&alice), "/v1/notifications?limit=0").await.status(), 400);
    app.stop().await;
}

/// Runs flows that emit most event types, with the analytics pool off so its queue (which
/// takes every type) can be read here, and checks every event against docs/events/.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_emitted_event_matches_its_schema() {
    let app = spawn_with(|s, c| {
        s.workers.hold_ttl = Duration::from_secs(5);
        c.pools = vec![Pool::Booking, Pool::Tickets, Pool::Notifications];
    })
    .await;
    let alice = app.token("alice", Role::Customer);
    let show = app.show_id().await;
    book(&app, &alice, &show, &["E1"]).await;
    assert_eq!(app.hold(&alice, &show, &["E1"]).await["status"], "failed");
    let held = app.hold(&alice, &show, &["E2"]).await;
    let hold_id = held["result"]["hold_id"].as_str().unwrap().to_owned();
    let id = app.command(&alice, &format!("/v1/holds/{hold_id}/release"), json!({})).await;
    app.terminal(&alice, &id).await;
    // A slow provider first (dead-lettered), then a declined card, while E3's hold lives;
    // then the hold expires.
    let held = app.hold(&alice, &show, &["E3"]).await;
    let hold_id = held["result"]["hold_id"].as_str().unwrap().to_owned();
    let expires_at = domain::clock::parse(held["result"]["expires_at"].as_str().unwrap()).unwrap();
    let id =
        app.command(&alice, "/v1/bookings", json!({ "hold_id": hold_id, "payment_token": "tok_unavailable" })).await;
    assert_eq!(app.terminal(&alice, &id).await["status"], "dead_lettered");
    let id = app.command(&alice, "/v1/bookings", json!({ "hold_id": hold_id, "payment_token": "tok_decline" })).await;
    assert_eq!(app.terminal(&alice, &id).await["status"], "failed");
    let left: Duration = (expires_at - domain::clock::now()).try_into().unwrap_or(Duration::ZERO);
    tokio::time::sleep(left + Duration::from_millis(1500)).await;

    // A ticket through assignment, a reply and a status change.
    let ann = app.token("ann", Role::Agent);
    let created = app
        .run(
            &alice,
            "/v1/tickets",
            json!({ "subject": "Sticky seat", "description": "E1 is sticky", "priority": "low" }),
        )
        .await;
    let ticket = created["result"]["ticket_id"].as_str().unwrap().to_owned();
    let assigned = app.run(&ann, &format!("/v1/tickets/{ticket}/assignments"), json!({ "agent_id": "ann" })).await;
    assert_eq!(assigned["status"], "succeeded", "{assigned}");
    let replied =
        app.run(&ann, &format!("/v1/tickets/{ticket}/comments"), json!({ "body": "Cleaned it", "public": true })).await;
    assert_eq!(replied["status"], "succeeded", "{replied}");
    let solved = app.run(&ann, &format!("/v1/tickets/{ticket}/transitions"), json!({ "to": "solved" })).await;
    assert_eq!(solved["status"], "succeeded", "{solved}");

    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/events");
    let mut seen = std::collections::BTreeSet::new();
    let mut idle = 0;
    while idle < 5 {
        let got = app
            .backend
            .queues
            .receive(Queue::Analytics.source(), 10, Duration::from_millis(300), Duration::from_secs(60))
            .await
            .unwrap();
        if got.is_empty() {
            idle += 1;
            continue;
        }
        for m in got {
            let event: Value = serde_json::from_str(&m.body).unwrap();
            let t = event["type"].as_str().unwrap().to_owned();
            assert_eq!(m.attributes["type"], t, "the type attribute matches the event");
            let schema: Value =
                serde_json::from_str(&std::fs::read_to_string(docs.join(format!("{t}.json"))).unwrap()).unwrap();
            let validator = jsonschema::validator_for(&schema).unwrap();
            let errors: Vec<String> = validator.iter_errors(&event).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{t} does not match its schema: {errors:?}\n{event}");
            seen.insert(t);
        }
    }
    for t in [
        "usher.booking.hold.placed",
        "usher.booking.hold.rejected",
        "usher.booking.hold.released",
        "usher.booking.hold.expired",
        "usher.booking.confirmed",
        "usher.booking.failed",
        "usher.request.dead_lettered",
        "usher.notification.sent",
        "usher.ticket.created",
        "usher.ticket.assigned",
        "usher.ticket.commented",
        "usher.ticket.status_changed",
    ] {
        assert!(seen.contains(t), "no {t} seen: {seen:?}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ticket_report_counts_statuses_and_response_times() {
    let app = spawn().await;
    let alice = app.token("alice", Role::Customer);
    let ann = app.token("ann", Role::Agent);
    let admin = app.token("admin", Role::Admin);
    let mut tickets = Vec::new();
    for subject in ["One", "Two", "Three"] {
        let done = app
            .run(&alice, "/v1/tickets", json!({ "subject": subject, "description": "help", "priority": "normal" }))
            .await;
        tickets.push(done["result"]["ticket_id"].as_str().unwrap().to_owned());
    }
    for t in &tickets[..2] {
        let done = app.run(&ann, &format!("/v1/tickets/{t}/assignments"), json!({ "agent_id": "ann" })).await;
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    let t0 = &tickets[0];
    app.run(&ann, &format!("/v1/tickets/{t0}/comments"), json!({ "body": "On it", "public": true })).await;
    let solved = app.run(&ann, &format!("/v1/tickets/{t0}/transitions"), json!({ "to": "solved" })).await;
    assert_eq!(solved["status"], "succeeded", "{solved}");

    let mut report = Value::Null;
    for _ in 0..100 {
        report = app.get_json(&admin, "/v1/reports/tickets").await;
        if report["by_status"]["solved"] == 1 && report["tickets"] == 3 && report["by_status"]["open"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(report["tickets"], 3, "{report}");
    assert_eq!(report["by_status"], json!({ "new": 1, "open": 1, "solved": 1 }), "{report}");
    assert_eq!(report["by_assignee"], json!({ "ann": 2, "unassigned": 1 }), "{report}");
    assert!(report["mean_first_response_secs"].as_f64().unwrap() >= 0.0, "{report}");
    assert!(report["mean_solve_secs"].as_f64().unwrap() >= 0.0, "{report}");
    // The agent hears of the assignments; the customer of the reply and the solve.
    let mut mine = Value::Null;
    for _ in 0..100 {
        mine = app.get_json(&alice, "/v1/notifications").await;
        if mine.as_array().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let subjects: Vec<&str> = mine.as_array().unwrap().iter().map(|n| n["subject"].as_str().unwrap()).collect();
    assert!(subjects.iter().any(|s| s.starts_with("New reply")), "{subjects:?}");
    assert!(subjects.iter().any(|s| s.ends_with("is now solved")), "{subjects:?}");
    let anns = app.get_json(&ann, "/v1/notifications").await;
    assert_eq!(
        anns.as_array().unwrap().iter().filter(|n| n["event_type"] == "usher.ticket.assigned").count(),
        2,
        "{anns}"
    );
    app.stop().await;
}
