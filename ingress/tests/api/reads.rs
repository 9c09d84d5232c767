//! Status documents (with `?wait=`) and bookings, and who may read them.

use crate::helpers::{HOLD_BODY, TestApp, problem};
use domain::actor::{Actor, Role};
use domain::booking::DEFAULT_MAX_HELD_SEATS as MAX_HELD;
use domain::clock;
use domain::ids::{HoldId, RequestId, UserId};
use domain::payment::PaymentReceipt;
use domain::request::CommandContext;
use serde_json::Value;
use std::time::{Duration, Instant};

async fn admit_hold(app: &TestApp, token: &str, key: &str, body: &str) -> String {
    let response = app.post(Some(token), "/v1/holds", Some(key), body).await;
    assert_eq!(response.status(), 202);
    response.json::<Value>().await.unwrap()["request_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_status_document_reads_accepted_until_a_worker_runs() {
    let app = TestApp::ingress().await;
    let alice = app.customer("alice");
    let id = admit_hold(&app, &alice, "k1", HOLD_BODY).await;
    let response = app.get(Some(&alice), &format!("/v1/requests/{id}")).await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["request_id"], id);
    assert_eq!(doc["kind"], "booking.hold.place");
    assert_eq!(doc["status"], "accepted");
    assert!(doc.get("result").is_none() && doc.get("error").is_none());
    assert_eq!(doc["created_at"], doc["updated_at"]);
    assert!(doc["created_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn a_wait_on_an_unfinished_request_ends_with_the_wait() {
    let app = TestApp::ingress().await;
    let alice = app.customer("alice");
    let id = admit_hold(&app, &alice, "k1", HOLD_BODY).await;
    let started = Instant::now();
    let doc: Value = app.get(Some(&alice), &format!("/v1/requests/{id}?wait=1")).await.json().await.unwrap();
    let waited = started.elapsed();
    assert_eq!(doc["status"], "accepted");
    assert!(waited >= Duration::from_millis(950) && waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test]
async fn a_wait_ends_as_soon_as_the_request_is_terminal() {
    let app = TestApp::ingress().await;
    let (_, show_id) = app.create_show(1, 4).await;
    let alice = app.customer("alice");
    let body = format!(r#"{{"show_id":"{show_id}","seat_ids":["A1"]}}"#);
    let id = admit_hold(&app, &alice, "k1", &body).await;

    let poll = tokio::spawn({
        let (client, url, alice) = (app.http.clone(), app.url(&format!("/v1/requests/{id}?wait=10")), alice.clone());
        async move {
            let started = Instant::now();
            let doc: Value = client.get(url).bearer_auth(alice).send().await.unwrap().json().await.unwrap();
            (doc, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // What the booking worker would do with the command.
    let ctx = CommandContext {
        request_id: RequestId::from(id.as_str()),
        actor: Actor { sub: UserId::new("alice"), role: Role::Customer },
        now: clock::now(),
        traceparent: None,
        delivery: None,
    };
    let expires_at = clock::now() + time::Duration::minutes(10);
    app.backend
        .bookings
        .place_hold(&ctx, &show_id.as_str().into(), &["A1".into()], expires_at, MAX_HELD)
        .await
        .unwrap();

    let (doc, waited) = poll.await.unwrap();
    assert_eq!(doc["status"], "succeeded", "{doc}");
    assert!(doc["result"]["hold_id"].is_string(), "{doc}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test]
async fn customers_read_only_their_own_requests() {
    let app = TestApp::ingress().await;
    let id = admit_hold(&app, &app.customer("alice"), "k1", HOLD_BODY).await;
    let path = format!("/v1/requests/{id}");
    problem(app.get(Some(&app.customer("bob")), &path).await, 404, "request_not_found").await;
    problem(app.get(Some(&app.customer("bob")), "/v1/requests/req_missing").await, 404, "request_not_found").await;
    for role in [Role::Agent, Role::Admin] {
        assert_eq!(app.get(Some(&app.token("staff", role)), &path).await.status(), 200);
    }
}

#[tokio::test]
async fn customers_read_only_their_own_bookings() {
    let app = TestApp::ingress().await;
    let (_, show_id) = app.create_show(1, 4).await;
    let alice = app.customer("alice");
    let show = show_id.as_str().into();

    // Hold then confirm through the store, as the booking worker would after the 202s.
    let hold_request =
        admit_hold(&app, &alice, "hold", &format!(r#"{{"show_id":"{show_id}","seat_ids":["A1","A2"]}}"#)).await;
    let ctx = |id: &str| CommandContext {
        request_id: RequestId::from(id),
        actor: Actor { sub: UserId::new("alice"), role: Role::Customer },
        now: clock::now(),
        traceparent: None,
        delivery: None,
    };
    let held = app
        .backend
        .bookings
        .place_hold(
            &ctx(&hold_request),
            &show,
            &["A1".into(), "A2".into()],
            clock::now() + time::Duration::minutes(10),
            MAX_HELD,
        )
        .await
        .unwrap();
    let hold_id = held.doc.result.unwrap()["hold_id"].as_str().unwrap().to_owned();
    let confirm = app
        .post(
            Some(&alice),
            "/v1/bookings",
            Some("pay"),
            &format!(r#"{{"hold_id":"{hold_id}","payment_token":"tok_visa"}}"#),
        )
        .await;
    assert_eq!(confirm.status(), 202);
    let confirm_request = confirm.json::<Value>().await.unwrap()["request_id"].as_str().unwrap().to_owned();
    let receipt = PaymentReceipt { payment_id: format!("pay_{confirm_request}"), amount_cents: 2500 };
    let booked = app
        .backend
        .bookings
        .confirm_booking(&ctx(&confirm_request), &HoldId::from(hold_id.as_str()), &receipt)
        .await
        .unwrap();
    let booking_id = booked.doc.result.unwrap()["booking_id"].as_str().unwrap().to_owned();

    let path = format!("/v1/bookings/{booking_id}");
    let booking: Value = app.get(Some(&alice), &path).await.json().await.unwrap();
    assert_eq!(booking["booking_id"], booking_id);
    assert_eq!(booking["show_id"], show_id);
    assert_eq!(booking["seat_ids"], serde_json::json!(["A1", "A2"]));
    assert_eq!(booking["amount_cents"], 2500);
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["customer_id"], "alice");
    assert!(booking["created_at"].is_string());

    problem(app.get(Some(&app.customer("bob")), &path).await, 404, "booking_not_found").await;
    problem(app.get(Some(&alice), "/v1/bookings/bk_missing").await, 404, "booking_not_found").await;
    assert_eq!(app.get(Some(&app.token("desk", Role::Agent)), &path).await.status(), 200);
}
