//! Limits against hostile clients, with real sockets: the rate limit on commands, the
//! header and body timeouts, a shutdown that a stalled client cannot hold up, and long
//! polls (capped, and woken by the commit that ends them).

use crate::helpers::{HOLD_BODY, TestApp, problem};
use domain::booking;
use domain::clock;
use domain::ids::RequestId;
use domain::outbox::Decision;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (or `within` passes: a panic); returns
/// what it sent.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open past {within:?}");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_over_the_rate_limit_are_refused_and_store_nothing() {
    let app = TestApp::ingress_with(|c| {
        c.rate_limit = 1;
        c.rate_burst = 2;
    })
    .await;
    let alice = app.customer("alice");
    for key in ["k1", "k2"] {
        assert_eq!(app.post(Some(&alice), "/v1/holds", Some(key), HOLD_BODY).await.status(), 202);
    }
    let refused = app.post(Some(&alice), "/v1/holds", Some("k3"), HOLD_BODY).await;
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    problem(refused, 429, "rate_limited").await;
    // Per caller: bob is not affected, and reads are not limited.
    let bob = app.customer("bob");
    assert_eq!(app.post(Some(&bob), "/v1/holds", Some("k3"), HOLD_BODY).await.status(), 202);
    assert_eq!(app.get(Some(&alice), "/v1/movies").await.status(), 200);
    // Nothing was stored: once the bucket refills, the same key admits the command anew.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let admitted = app.post(Some(&alice), "/v1/holds", Some("k3"), HOLD_BODY).await;
    assert_eq!(admitted.status(), 202);
    assert!(admitted.headers().get("idempotent-replayed").is_none(), "a first admission, not a replay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_is_cut_off_after_the_header_timeout() {
    let app = TestApp::ingress_with(|c| c.header_timeout = Duration::from_secs(1)).await;
    let mut slow = TcpStream::connect(addr(&app)).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /health/live HTTP/1.1\r\nHost: usher\r\nX-Slow: ").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Trickling bytes does not reset the clock.
    let _ = slow.write_all(b"a").await;
    read_to_close(&mut slow, Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "closed after {took:?}, before the timeout");
    // The server still serves others.
    assert_eq!(app.get(None, "/health/live").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_answered_with_a_problem() {
    let app = TestApp::ingress_with(|c| c.body_timeout = Duration::from_secs(1)).await;
    let token = app.customer("alice");
    let mut slow = TcpStream::connect(addr(&app)).await.unwrap();
    let head = format!(
        "POST /v1/holds HTTP/1.1\r\nHost: usher\r\nAuthorization: Bearer {token}\r\nIdempotency-Key: slow-1\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\nConnection: close\r\n\r\n{{\"show_id\":"
    );
    let started = Instant::now();
    slow.write_all(head.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut slow, Duration::from_secs(5)).await;
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json") && answer.contains("\"code\":\"request_timeout\""), "{answer}");
    // Nothing was admitted under that key.
    assert_eq!(app.post(Some(&token), "/v1/holds", Some("slow-1"), HOLD_BODY).await.status(), 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_cut_off_at_the_body_timeout_and_its_connection_closed() {
    let app = TestApp::ingress_with(|c| c.body_timeout = Duration::from_secs(1)).await;
    let token = app.customer("alice");
    let mut slow = TcpStream::connect(addr(&app)).await.unwrap();
    // No `Connection: close` from the client: closing is the server's doing.
    let head = format!(
        "POST /v1/holds HTTP/1.1\r\nHost: usher\r\nAuthorization: Bearer {token}\r\nIdempotency-Key: trickle\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    );
    let started = Instant::now();
    slow.write_all(head.as_bytes()).await.unwrap();
    // A byte every 200 ms, for longer than the answer may take: each byte comes well
    // within the timeout, the whole body never does.
    let (mut reader, mut writer) = slow.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..25 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_millis(2500), reader.read_to_end(&mut got)).await;
    trickle.abort();
    let took = started.elapsed();
    assert!(read.is_ok(), "still open after {took:?}, the trickle going on");
    assert!(took >= Duration::from_millis(900), "answered after {took:?}, before the timeout");
    let answer = String::from_utf8_lossy(&got);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    // Nothing was admitted under that key.
    assert_eq!(app.post(Some(&token), "/v1/holds", Some("trickle"), HOLD_BODY).await.status(), 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_does_not_hold_the_shutdown_past_the_grace() {
    let app = TestApp::ingress_with(|c| {
        c.header_timeout = Duration::from_secs(60);
        c.body_timeout = Duration::from_secs(60);
        c.shutdown_grace = Duration::from_secs(1);
    })
    .await;
    let token = app.customer("alice");
    // One client stalls in its body, one in its headers.
    let mut in_body = TcpStream::connect(addr(&app)).await.unwrap();
    let head = format!(
        "POST /v1/holds HTTP/1.1\r\nHost: usher\r\nAuthorization: Bearer {token}\r\nIdempotency-Key: stall\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{"
    );
    in_body.write_all(head.as_bytes()).await.unwrap();
    let mut in_headers = TcpStream::connect(addr(&app)).await.unwrap();
    in_headers.write_all(b"GET /v1/movies HTTP/1.1\r\nHost: usher\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    app.stop_within(Duration::from_secs(4)).await;
    assert!(started.elapsed() >= Duration::from_millis(900), "it waited for the stalled request first");
    // Their connections were dropped.
    read_to_close(&mut in_body, Duration::from_secs(2)).await;
    read_to_close(&mut in_headers, Duration::from_secs(2)).await;
}

async fn accepted_request(app: &TestApp, token: &str, key: &str) -> RequestId {
    let response = app.post(Some(token), "/v1/holds", Some(key), HOLD_BODY).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    RequestId::from(body["request_id"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_wakes_on_the_commit_that_ends_it() {
    let app = TestApp::ingress().await;
    let alice = app.customer("alice");
    let id = accepted_request(&app, &alice, "wake-1").await;
    let requests = app.backend.requests.clone();
    let completed = id.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let decision: Decision = booking::release_failed(booking::hold_not_found(&"hold_x".into())).into();
        requests.complete(&completed, decision, clock::now()).await.unwrap();
    });
    let started = Instant::now();
    let doc: Value = app.get(Some(&alice), &format!("/v1/requests/{id}?wait=15")).await.json().await.unwrap();
    assert_eq!(doc["status"], "failed", "{doc}");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(450) && took < Duration::from_secs(3), "answered after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_waiter_cap_a_long_poll_answers_at_once() {
    let app = TestApp::ingress_with(|c| c.max_waiters = 1).await;
    let alice = app.customer("alice");
    let id = accepted_request(&app, &alice, "cap-1").await;
    let path = format!("/v1/requests/{id}?wait=3");
    // The first takes the only slot and waits its 3 s; the second answers at once.
    let first = {
        let (client, alice, path) = (app.client.clone(), alice.clone(), path.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let doc: Value = client.get(Some(&alice), &path).await.json().await.unwrap();
            (doc, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let doc: Value = app.get(Some(&alice), &path).await.json().await.unwrap();
    assert_eq!(doc["status"], "accepted");
    assert!(started.elapsed() < Duration::from_secs(1), "answered after {:?}", started.elapsed());
    let (doc, took) = first.await.unwrap();
    assert_eq!(doc["status"], "accepted");
    assert!(took >= Duration::from_millis(2900), "the first one waited: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_request_timeout_is_answered_503_and_counted() {
    let app = TestApp::ingress_with(|c| c.request_timeout = Duration::from_secs(1)).await;
    let alice = app.customer("alice");
    // No pool runs here, so the command stays accepted and the long poll outlasts 1 s.
    let id = accepted_request(&app, &alice, "slow-1").await;
    let started = Instant::now();
    problem(app.get(Some(&alice), &format!("/v1/requests/{id}?wait=10")).await, 503, "backend_unavailable").await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(5), "answered after {took:?}");
    let metrics = app.get(None, "/metrics").await.text().await.unwrap();
    let counted = metrics.lines().any(|l| {
        l.starts_with("usher_http_requests_total{")
            && l.contains(r#"route="/v1/requests/{request_id}""#)
            && l.contains(r#"status="503""#)
    });
    assert!(counted, "the 503 is in the metrics the 5xx alert reads: {metrics}");
}
