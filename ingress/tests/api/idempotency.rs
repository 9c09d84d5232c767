//! docs/contract.md §2, "Idempotency": one test per rule.

use crate::helpers::{HOLD_BODY, TestApp, UnreachableQueue, problem};
use domain::actor::{Actor, Role};
use domain::clock;
use domain::command::{Command, CommandEnvelope};
use domain::idempotency::{Fingerprint, IdempotencyKey};
use domain::ids::{RequestId, UserId};
use domain::ports::{Admission, Admitted, StoredResponse};
use domain::queue::Queue;
use domain::request::StatusDoc;
use infra::Backend;
use infra::faults::{Fault, Faults, Op};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

async fn queued(app: &TestApp) -> u64 {
    app.backend.queues.depth(Queue::BookingCommands.source()).await.unwrap()
}

#[tokio::test]
async fn a_command_without_a_key_is_refused() {
    let app = TestApp::ingress().await;
    let response = app.post(Some(&app.customer("alice")), "/v1/holds", None, HOLD_BODY).await;
    problem(response, 400, "idempotency_key_missing").await;
    assert_eq!(queued(&app).await, 0);
}

#[tokio::test]
async fn a_malformed_key_is_refused() {
    let app = TestApp::ingress().await;
    let token = app.customer("alice");
    let too_long = "k".repeat(256);
    for key in ["has space", "", too_long.as_str()] {
        let response = app.post(Some(&token), "/v1/holds", Some(key), HOLD_BODY).await;
        problem(response, 400, "idempotency_key_invalid").await;
    }
    assert_eq!(queued(&app).await, 0);
}

#[tokio::test]
async fn an_admitted_command_answers_202_with_its_status_url() {
    let app = TestApp::ingress().await;
    let response = app.post(Some(&app.customer("alice")), "/v1/holds", Some("k1"), HOLD_BODY).await;
    assert_eq!(response.status(), 202);
    assert!(response.headers().get("idempotent-replayed").is_none());
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    let id = body["request_id"].as_str().unwrap();
    let expected = format!(r#"{{"request_id":"{id}","status":"accepted","status_url":"/v1/requests/{id}"}}"#);
    assert_eq!(text, expected);
    assert_eq!(location, format!("/v1/requests/{id}"));
    assert_eq!(queued(&app).await, 1);
    let record = app.backend.requests.get(&RequestId::from(id)).await.unwrap().expect("a status document");
    assert_eq!(record.owner, UserId::new("alice"));
    assert_eq!(record.doc.kind, "booking.hold.place");
    // Queued and marked so: the sweep has nothing to re-send.
    assert!(app.backend.requests.unqueued(clock::now() + time::Duration::minutes(1), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_retry_replays_the_first_answer_byte_for_byte() {
    let app = TestApp::ingress().await;
    let token = app.customer("alice");
    let first = app.post(Some(&token), "/v1/holds", Some("k1"), HOLD_BODY).await;
    let (status, location) = (first.status(), first.headers()["location"].clone());
    let first_body = first.bytes().await.unwrap();

    let again = app.post(Some(&token), "/v1/holds", Some("k1"), HOLD_BODY).await;
    assert_eq!(again.status(), status);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["content-type"], "application/json");
    assert_eq!(again.headers()["location"], location);
    assert_eq!(again.bytes().await.unwrap(), first_body);
    assert_eq!(queued(&app).await, 1, "never a second command");
}

#[tokio::test]
async fn key_order_and_whitespace_do_not_make_a_different_request() {
    let app = TestApp::ingress().await;
    let token = app.customer("alice");
    let first = app.post(Some(&token), "/v1/holds", Some("k1"), HOLD_BODY).await;
    assert_eq!(first.status(), 202);
    let first_body = first.text().await.unwrap();
    let reordered = "{\n  \"seat_ids\" : [ \"A1\", \"A2\" ],\n  \"show_id\" : \"show_1\"\n}\n";
    let again = app.post(Some(&token), "/v1/holds", Some("k1"), reordered).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first_body);
    assert_eq!(queued(&app).await, 1);
}

#[tokio::test]
async fn a_key_reused_for_a_different_request_is_refused() {
    let app = TestApp::ingress().await;
    let token = app.customer("alice");
    assert_eq!(app.post(Some(&token), "/v1/holds", Some("k1"), HOLD_BODY).await.status(), 202);
    let other_seats = r#"{"show_id":"show_1","seat_ids":["A2","A1"]}"#;
    problem(app.post(Some(&token), "/v1/holds", Some("k1"), other_seats).await, 422, "idempotency_key_reused").await;
    let other_route = r#"{"hold_id":"hold_1","payment_token":"tok_visa"}"#;
    problem(app.post(Some(&token), "/v1/bookings", Some("k1"), other_route).await, 422, "idempotency_key_reused").await;
    assert_eq!(queued(&app).await, 1);
}

#[tokio::test]
async fn keys_are_scoped_to_the_caller() {
    let app = TestApp::ingress().await;
    let alice = app.post(Some(&app.customer("alice")), "/v1/holds", Some("shared"), HOLD_BODY).await;
    let bob = app.post(Some(&app.customer("bob")), "/v1/holds", Some("shared"), HOLD_BODY).await;
    assert_eq!((alice.status(), bob.status()), (202.try_into().unwrap(), 202.try_into().unwrap()));
    assert!(bob.headers().get("idempotent-replayed").is_none());
    let alice: Value = alice.json().await.unwrap();
    let bob: Value = bob.json().await.unwrap();
    assert_ne!(alice["request_id"], bob["request_id"]);
    assert_eq!(queued(&app).await, 2);
}

#[tokio::test]
async fn a_rejected_request_leaves_the_key_free() {
    let app = TestApp::ingress().await;
    let token = app.customer("alice");
    let invalid = r#"{"show_id":"show_1","seat_ids":[]}"#;
    problem(app.post(Some(&token), "/v1/holds", Some("k1"), invalid).await, 400, "invalid_body").await;
    problem(app.post(None, "/v1/holds", Some("k1"), HOLD_BODY).await, 401, "unauthorized").await;
    let response = app.post(Some(&token), "/v1/holds", Some("k1"), HOLD_BODY).await;
    assert_eq!(response.status(), 202);
    assert!(response.headers().get("idempotent-replayed").is_none());
}

/// The admission a concurrent POST of [`HOLD_BODY`] by `alice` with key `k1` would make,
/// claimed at `claimed_at`.
fn alice_hold_admission(claimed_at: domain::clock::Timestamp) -> Admission {
    let request_id = RequestId::generate();
    let command = Command::PlaceHold { show_id: "show_1".into(), seat_ids: vec!["A1".into(), "A2".into()] };
    let body =
        format!(r#"{{"request_id":"{request_id}","status":"accepted","status_url":"/v1/requests/{request_id}"}}"#);
    let raw: Value = serde_json::from_str(HOLD_BODY).unwrap();
    Admission {
        owner: UserId::new("alice"),
        key: IdempotencyKey::parse("k1").unwrap(),
        fingerprint: Fingerprint::of("POST", "/v1/holds", &raw),
        doc: StatusDoc::accepted(request_id.clone(), command.type_name(), claimed_at),
        command: CommandEnvelope {
            request_id,
            actor: Actor { sub: UserId::new("alice"), role: Role::Customer },
            issued_at: claimed_at,
            traceparent: None,
            command,
        },
        response: StoredResponse { status: 202, body },
        key_expires_at: claimed_at + time::Duration::days(1),
        queue_with_claim: false,
    }
}

#[tokio::test]
async fn a_request_still_being_admitted_answers_409() {
    let app = TestApp::ingress().await;
    let admission = alice_hold_admission(clock::now());
    assert!(matches!(app.backend.requests.admit(admission).await.unwrap(), Admitted::Claimed));
    let response = app.post(Some(&app.customer("alice")), "/v1/holds", Some("k1"), HOLD_BODY).await;
    assert_eq!(response.headers()["retry-after"], "1");
    problem(response, 409, "idempotency_request_in_progress").await;
    assert_eq!(queued(&app).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_racing_its_first_try_answers_409_until_the_first_is_admitted() {
    let working = TestApp::ingress().await;
    let faults = Faults::default();
    // The first admission takes a second in the store: the retry comes while it is under way.
    faults.set(Op::Admit, Fault::Delay(Duration::from_secs(1)), Some(1));
    let app = TestApp::ingress_on(faults.wrap(working.backend.clone())).await;
    let token = app.customer("alice");
    let (first, retry) = tokio::join!(app.post(Some(&token), "/v1/holds", Some("k1"), HOLD_BODY), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.post(Some(&token), "/v1/holds", Some("k1"), HOLD_BODY).await
    });
    assert_eq!(retry.headers()["retry-after"], "1");
    problem(retry, 409, "idempotency_request_in_progress").await;
    assert_eq!(first.status(), 202);
    let first_body = first.text().await.unwrap();
    // Once it is admitted, the same retry gets the first answer again.
    let again = app.post(Some(&token), "/v1/holds", Some("k1"), HOLD_BODY).await;
    assert_eq!(
        (again.status(), &again.headers()["idempotent-replayed"]),
        (reqwest::StatusCode::ACCEPTED, &"true".parse().unwrap())
    );
    assert_eq!(again.text().await.unwrap(), first_body);
    assert_eq!(queued(&working).await, 1, "one command");
}

#[tokio::test]
async fn a_retry_finishes_an_admission_whose_admitter_died() {
    let app = TestApp::ingress().await;
    let admission = alice_hold_admission(clock::now() - time::Duration::minutes(1));
    let stored = admission.response.body.clone();
    assert!(matches!(app.backend.requests.admit(admission).await.unwrap(), Admitted::Claimed));
    let response = app.post(Some(&app.customer("alice")), "/v1/holds", Some("k1"), HOLD_BODY).await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    assert_eq!(response.text().await.unwrap(), stored);
    assert_eq!(queued(&app).await, 1, "the stored command is queued");
    assert!(app.backend.requests.unqueued(clock::now(), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_command_that_cannot_be_queued_answers_503_and_frees_its_key() {
    let working = TestApp::ingress().await;
    let broken = Backend { queues: Arc::new(UnreachableQueue), ..working.backend.clone() };
    let down = TestApp::ingress_on(broken).await;

    let response = down.post(Some(&down.customer("alice")), "/v1/holds", Some("k1"), HOLD_BODY).await;
    if std::env::var("USHER_TEST_BACKEND").as_deref() != Ok("aws") {
        // The store holds the queues too (embedded): the claim, the document and the message
        // are one transaction, so the queue port is never called and nothing is stranded.
        assert_eq!(response.status(), 202);
        assert!(down.backend.requests.unqueued(clock::now(), 10).await.unwrap().is_empty());
        assert_eq!(queued(&working).await, 1, "the command is on its queue");
        return;
    }
    assert_eq!(response.headers()["retry-after"], "1");
    problem(response, 503, "backend_unavailable").await;

    // Same store, a queue that works: the key was given back, so this is a first admission.
    let response = working.post(Some(&working.customer("alice")), "/v1/holds", Some("k1"), HOLD_BODY).await;
    assert_eq!(response.status(), 202);
    assert!(response.headers().get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn a_release_takes_an_empty_object_or_no_body() {
    let app = TestApp::ingress().await;
    let token = app.customer("alice");
    let first = app.post(Some(&token), "/v1/holds/hold_1/release", Some("r1"), "{}").await;
    assert_eq!(first.status(), 202);
    // No body reads as `{}`: the same request, so the same answer.
    let again = app
        .http
        .post(app.url("/v1/holds/hold_1/release"))
        .bearer_auth(&token)
        .header("idempotency-key", "r1")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    // Another hold is another request.
    let other = app.post(Some(&token), "/v1/holds/hold_2/release", Some("r1"), "{}").await;
    problem(other, 422, "idempotency_key_reused").await;
}
