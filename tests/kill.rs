//! `usher dev` as a child process: killed with SIGKILL under load and restarted on the
//! same data dir, every 202 still ends terminal and no seat is held twice; and SIGTERM
//! stops it cleanly.

use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

mod support;
use testkit::Dev;

/// One request a client sent: its idempotency key, body, and request id once a 202 came.
struct Attempt {
    key: String,
    body: Value,
    request_id: Option<String>,
}

/// POSTs a hold; the request id of a 202 (first or replayed), or None if no answer came.
/// A 409 means the first attempt is still being admitted: wait and ask again.
async fn post_hold(http: &reqwest::Client, base: &str, token: &str, key: &str, body: &Value) -> Option<String> {
    for _ in 0..50 {
        let r = http
            .post(format!("{base}/v1/holds"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .ok()?;
        match r.status().as_u16() {
            202 => return r.json::<Value>().await.ok()?["request_id"].as_str().map(str::to_owned),
            409 => tokio::time::sleep(Duration::from_millis(500)).await,
            other => panic!("unexpected status {other}"),
        }
    }
    panic!("still in progress after 25 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut dev = Dev::start(support::USHER, dir.path()).await;
    let show = dev.client.show_id().await;
    let sent: Arc<Mutex<Vec<Attempt>>> = Arc::default();

    // Eight clients hold random overlapping pairs of seats until the process dies.
    let mut clients = Vec::new();
    for c in 0..8 {
        let (http, base, token, show, sent) =
            (http.clone(), dev.client.base.clone(), dev.client.admin(), show.clone(), sent.clone());
        clients.push(tokio::spawn(async move {
            for n in 0.. {
                let row = char::from(b'A' + fastrand::u8(0..10));
                let a = fastrand::u8(1..12);
                let key = format!("c{c}-{n}");
                let body = json!({ "show_id": show, "seat_ids": [format!("{row}{a}"), format!("{row}{}", a + 1)] });
                let answer = post_hold(&http, &base, &token, &key, &body).await;
                let gone = answer.is_none();
                sent.lock().await.push(Attempt { key, body, request_id: answer });
                if gone {
                    return; // the server is gone
                }
            }
        }));
    }
    while sent.lock().await.iter().filter(|a| a.request_id.is_some()).count() < 300 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    dev.child.kill().await.expect("SIGKILL");
    for c in clients {
        c.await.unwrap();
    }

    // Restart on the same data dir. A client that got no answer retries with the same key,
    // as clients of an idempotent API do: it gets the first 202 again, or a fresh one.
    let dev = Dev::start(support::USHER, dir.path()).await;
    let admin = dev.client.admin();
    let mut accepted = Vec::new();
    for a in sent.lock().await.iter() {
        let id = match &a.request_id {
            Some(id) => id.clone(),
            None => post_hold(&http, &dev.client.base, &admin, &a.key, &a.body).await.expect("the retry is answered"),
        };
        accepted.push(id);
    }
    let mut held: Vec<String> = Vec::new();
    for id in &accepted {
        let doc = dev.client.terminal(&admin, id).await;
        match doc["status"].as_str() {
            Some("succeeded") => held
                .extend(doc["result"]["seat_ids"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned())),
            Some("failed") => assert_eq!(doc["error"]["code"], "seats_unavailable"),
            other => panic!("request {id} did not end: {other:?} {doc}"),
        }
    }
    let unanswered = sent.lock().await.iter().filter(|a| a.request_id.is_none()).count();
    println!(
        "{} requests accepted ({unanswered} retried after the restart), {} seats held",
        accepted.len(),
        held.len()
    );
    assert!(accepted.len() >= 300);
    let unique: BTreeSet<&String> = held.iter().collect();
    assert_eq!(unique.len(), held.len(), "a seat was held twice");
    let on_map: BTreeSet<String> = dev
        .client
        .seat_states(&show)
        .await
        .into_iter()
        .filter(|(_, state)| state == "held")
        .map(|(seat, _)| seat)
        .collect();
    assert_eq!(on_map, unique.into_iter().cloned().collect(), "the seat map agrees with the succeeded holds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully_with_exit_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(support::USHER, dir.path()).await;
    let pid = dev.child.id().expect("a pid").to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status =
        tokio::time::timeout(Duration::from_secs(30), dev.child.wait()).await.expect("exits within 30 s").unwrap();
    assert!(status.success(), "exit status {status:?}");
}
