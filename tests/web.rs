//! What the web page stands on, over HTTP on the real app: the pages and their files,
//! `POST /dev/token` (only `usher dev` serves it), the live seat map (server-sent events)
//! and the admin DLQ routes. The page itself is tested in a browser (tests/browser).

mod support;

use domain::actor::Role;
use reqwest::Response;
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::{USHER, spawn, spawn_with};
use tokio::io::{AsyncBufReadExt, BufReader};

async fn problem(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_and_their_files_are_served_from_the_binary_with_types_and_cache_headers() {
    let app = spawn().await;
    for (path, content_type, marker) in [
        ("/", "text/html; charset=utf-8", "data-view=\"book\""),
        ("/ops", "text/html; charset=utf-8", "Dead-letter queues"),
        ("/assets/booking.js", "javascript; charset=utf-8", "data-seat"),
        ("/assets/app.css", "text/css; charset=utf-8", "[data-state=\"held\"]"),
    ] {
        let response = app.get(None, path).await;
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        let served = headers["content-type"].to_str().unwrap();
        assert!(served.ends_with(content_type), "{path}: {served}");
        assert_eq!(headers["cache-control"], "no-cache", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
        let etag = headers["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.len() == 66, "{etag}");
        assert!(response.text().await.unwrap().contains(marker), "{path}");
        // Unchanged: a bodiless 304.
        let again = app.http.get(app.url(path)).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert!(again.bytes().await.unwrap().is_empty());
        let stale = app.http.get(app.url(path)).header("if-none-match", "\"old\"").send().await.unwrap();
        assert_eq!(stale.status(), 200);
    }
    problem(app.get(None, "/assets/nope.js").await, 404, "not_found").await;
    problem(app.get(None, "/assets/index.html").await, 404, "not_found").await;
    problem(app.get(None, "/assets/../Cargo.toml").await, 404, "not_found").await;
    // Not an API operation: the page is not in the OpenAPI document.
    let document: Value = app.get(None, "/openapi.json").await.json().await.unwrap();
    assert!(document["paths"].get("/").is_none() && document["paths"].get("/dev/token").is_none());
    // Without `usher dev`, there is no /dev/token.
    problem(app.post(None, "/dev/token", None, r#"{"sub":"eve","role":"admin"}"#).await, 404, "not_found").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_tokens_are_minted_for_any_name_and_role_and_bad_bodies_name_the_field() {
    let app = spawn_with(|_, c| c.dev_tokens = true).await;
    let response = app.post(None, "/dev/token", None, r#"{"sub":"alice","role":"customer"}"#).await;
    assert_eq!(response.status(), 200);
    let minted: Value = response.json().await.unwrap();
    assert_eq!(
        (&minted["sub"], &minted["role"], &minted["expires_in"]),
        (&json!("alice"), &json!("customer"), &json!(43200))
    );
    let token = minted["token"].as_str().unwrap();
    // The token works, as alice and as a customer.
    assert_eq!(app.get(Some(token), "/v1/movies").await.status(), 200);
    assert_eq!(app.get(Some(token), "/v1/admin/dlqs").await.status(), 403);
    for (body, field) in [
        (r#"{"sub":"alice","role":"root"}"#, "role"),
        (r#"{"role":"admin"}"#, "sub"),
        (r#"{"sub":"","role":"admin"}"#, "sub"),
        (r#"{"sub":"alice","role":"admin","exp":1}"#, "exp"),
    ] {
        let bad = problem(app.post(None, "/dev/token", None, body).await, 400, "invalid_body").await;
        assert_eq!(bad["field"], field, "{body}");
    }
    app.stop().await;
}

const SECRET: &str = "web-test-secret-of-at-least-32-bytes";

/// Starts the `usher` binary with `command` and `env` on a fresh data dir; answers its
/// base URL and what it printed.
async fn start_binary(
    command: &str,
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (tokio::process::Child, String, Vec<String>) {
    let mut child = tokio::process::Command::new(USHER)
        .arg(command)
        .envs(env.iter().copied())
        .env("USHER_DATA_DIR", dir)
        .env("USHER_HTTP_ADDR", "127.0.0.1:0")
        .env("USHER_JWT_SECRET", SECRET)
        .env("USHER_LOG", "warn")
        .env_remove("USHER_BACKEND")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    // `usher ingress` prints its address last, `usher dev` its admin token.
    let last = if command == "dev" { "admin token (24 h): " } else { "usher is listening on " };
    loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.unwrap().unwrap().unwrap();
        printed.push(line.clone());
        if line.starts_with(last) {
            break;
        }
    }
    let url = printed.iter().find_map(|l| l.strip_prefix("usher is listening on ")).unwrap().to_owned();
    (child, url, printed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_usher_dev_serves_dev_tokens_and_it_prints_where_the_page_is() {
    let http = reqwest::Client::new();
    let body = json!({ "sub": "alice", "role": "customer" });
    let dir = tempfile::tempdir().unwrap();
    let (mut dev, url, printed) = start_binary("dev", dir.path(), &[]).await;
    let page = printed.iter().find(|l| l.starts_with("open ")).unwrap_or_else(|| panic!("{printed:?}"));
    assert!(page.contains(&format!("{url}/ ")) && page.contains(&format!("{url}/ops")), "{page}");
    let minted = http.post(format!("{url}/dev/token")).json(&body).send().await.unwrap();
    assert_eq!(minted.status(), 200);
    assert_eq!(http.get(format!("{url}/")).send().await.unwrap().status(), 200);
    dev.kill().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let (mut ingress, url, _) = start_binary("ingress", dir.path(), &[]).await;
    let refused = http.post(format!("{url}/dev/token")).json(&body).send().await.unwrap();
    problem(refused, 404, "not_found").await;
    assert_eq!(http.get(format!("{url}/")).send().await.unwrap().status(), 200, "the page itself is served");
    ingress.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usher_dev_mints_its_tokens_for_the_configured_issuer_and_audience() {
    let http = reqwest::Client::new();
    let dir = tempfile::tempdir().unwrap();
    let claims = [("USHER_JWT_ISSUER", "usher-test"), ("USHER_JWT_AUDIENCE", "usher-api")];
    let (mut dev, url, printed) = start_binary("dev", dir.path(), &claims).await;
    let get = |path: &str, token: &str| http.get(format!("{url}{path}")).bearer_auth(token).send();
    let admin = printed.iter().find_map(|l| l.strip_prefix("admin token (24 h): ")).unwrap();
    assert_eq!(get("/v1/admin/dlqs", admin).await.unwrap().status(), 200, "the printed admin token");
    let minted = http.post(format!("{url}/dev/token")).json(&json!({ "sub": "alice", "role": "customer" }));
    let minted: Value = minted.send().await.unwrap().json().await.unwrap();
    assert_eq!(get("/v1/movies", minted["token"].as_str().unwrap()).await.unwrap().status(), 200, "{minted}");
    // The claims are required: the same secret without them is refused.
    let secret = ingress::auth::JwtSecret::new(SECRET.into());
    let bare = ingress::auth::mint_token(&secret, "alice", Role::Customer, Duration::from_secs(60));
    problem(get("/v1/movies", &bare).await.unwrap(), 401, "unauthorized").await;
    dev.kill().await.unwrap();
}

/// Reads server-sent events from `response` until one named `name` satisfies `wanted`.
async fn next_event(
    response: &mut Response,
    buffer: &mut String,
    name: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let event = block.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or("message");
            let data: String = block.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
            if event == name && !data.is_empty() {
                let data: Value = serde_json::from_str(&data).unwrap();
                if wanted(&data) {
                    return data;
                }
            }
        }
        let chunk = response.chunk().await.unwrap().expect("the stream stays open");
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

fn state_of(data: &Value, seat: &str) -> Option<String> {
    let seats = data["seats"].as_array()?;
    seats.iter().find(|s| s["seat_id"] == seat).map(|s| s["state"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seat_map_streams_holds_and_bookings_as_they_happen_and_stops_with_the_server() {
    let app = spawn().await;
    let (alice, bob) = (app.token("alice", Role::Customer), app.token("bob", Role::Customer));
    let show = app.show_id().await;
    let path = format!("/v1/shows/{show}/seats/events");
    problem(app.get(None, &path).await, 401, "unauthorized").await;
    problem(app.get(Some(&alice), "/v1/shows/show_nope/seats/events").await, 404, "show_not_found").await;

    let mut stream = app.get(Some(&alice), &path).await;
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut buffer = String::new();
    let snapshot = next_event(&mut stream, &mut buffer, "snapshot", |_| true).await;
    assert_eq!(snapshot["show_id"], show.as_str());
    assert_eq!(snapshot["seats"].as_array().unwrap().len(), 120);
    assert_eq!(state_of(&snapshot, "D4").as_deref(), Some("available"));

    let started = Instant::now();
    let held = app.hold(&bob, &show, &["D4", "D5"]).await;
    let change = tokio::time::timeout(
        Duration::from_secs(3),
        next_event(&mut stream, &mut buffer, "seats", |d| state_of(d, "D4").as_deref() == Some("held")),
    )
    .await
    .expect("the hold is streamed within 3 s");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(state_of(&change, "D5").as_deref(), Some("held"), "{change}");
    assert_eq!(change["seats"].as_array().unwrap().len(), 2, "only what changed: {change}");

    let hold_id = held["result"]["hold_id"].as_str().unwrap();
    let booked = app.run(&bob, "/v1/bookings", json!({ "hold_id": hold_id, "payment_token": "tok_visa" })).await;
    assert_eq!(booked["status"], "succeeded");
    let change = tokio::time::timeout(
        Duration::from_secs(3),
        next_event(&mut stream, &mut buffer, "seats", |d| state_of(d, "D4").as_deref() == Some("booked")),
    )
    .await
    .expect("the booking is streamed");
    assert_eq!(state_of(&change, "D5").as_deref(), Some("booked"));

    // An open stream does not hold up a graceful shutdown (stop() expects it within 30 s).
    let stopped = Instant::now();
    app.stop().await;
    assert!(stopped.elapsed() < Duration::from_secs(10), "took {:?}", stopped.elapsed());
    assert!(matches!(stream.chunk().await, Ok(None) | Err(_)), "the stream ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_list_peek_replay_and_purge_dead_letters_over_http() {
    let app = spawn().await;
    let admin = app.admin();
    let alice = app.token("alice", Role::Customer);
    let agent = app.token("ann", Role::Agent);
    let show = app.show_id().await;
    let held = app.hold(&alice, &show, &["F1"]).await;
    let hold_id = held["result"]["hold_id"].as_str().unwrap();
    let id =
        app.command(&alice, "/v1/bookings", json!({ "hold_id": hold_id, "payment_token": "tok_unavailable" })).await;
    let dead = app.terminal(&alice, &id).await;
    assert_eq!(dead["status"], "dead_lettered");

    problem(app.get(None, "/v1/admin/dlqs").await, 401, "unauthorized").await;
    problem(app.get(Some(&agent), "/v1/admin/dlqs").await, 403, "forbidden").await;
    let replay = "/v1/admin/dlqs/booking-commands/replay";
    problem(app.post(Some(&alice), replay, None, "{}").await, 403, "forbidden").await;
    let list = app.get_json(&admin, "/v1/admin/dlqs").await;
    assert_eq!(list[0], json!({ "queue": "booking-commands-dlq", "depth": 1 }), "{list}");
    assert_eq!(list.as_array().unwrap().len(), 4);

    let peeked = app.get_json(&admin, "/v1/admin/dlqs/booking-commands-dlq/messages?limit=5").await;
    assert_eq!(peeked[0]["request_id"], id.as_str());
    assert_eq!(peeked[0]["type"], "booking.confirm");
    assert!(peeked[0]["failure_reason"].as_str().unwrap().contains("unavailable"), "{peeked}");
    assert!(peeked[0]["body"].as_str().unwrap().contains("tok_unavailable"));
    for bad in ["limit=0", "limit=101", "limit=x", "max=3"] {
        let path = format!("/v1/admin/dlqs/booking-commands/messages?{bad}");
        problem(app.get(Some(&admin), &path).await, 400, "invalid_query").await;
    }
    problem(app.get(Some(&admin), "/v1/admin/dlqs/nope/messages").await, 404, "queue_not_found").await;

    let report = |body: &str| {
        let (app, admin, body) = (&app, admin.clone(), body.to_owned());
        async move {
            let response = app.post(Some(&admin), replay, None, &body).await;
            assert_eq!(response.status(), 200, "{body}");
            response.json::<Value>().await.unwrap()
        }
    };
    let other = report(r#"{"type":"booking.hold.place"}"#).await;
    assert_eq!(other, json!({ "moved": 0, "skipped": 1, "failed": 0, "dry_run": false }));
    let dry = report(r#"{"dry_run":true}"#).await;
    assert_eq!(dry, json!({ "moved": 1, "skipped": 0, "failed": 0, "dry_run": true }));
    assert_eq!(app.get_json(&alice, &format!("/v1/requests/{id}")).await["status"], "dead_lettered");
    let bad_fields = [
        (r#"{"limit":0}"#, "limit"),
        (r#"{"dry_run":"yes"}"#, "dry_run"),
        (r#"{"rate":1}"#, "rate"),
        (r#"{"type":"usher.nope"}"#, "type"),
    ];
    for (body, field) in bad_fields {
        let bad = problem(app.post(Some(&admin), replay, None, body).await, 400, "invalid_body").await;
        assert_eq!(bad["field"], field);
    }
    let moved = report("{}").await;
    assert_eq!(moved, json!({ "moved": 1, "skipped": 0, "failed": 0, "dry_run": false }));
    // Back on its queue, the provider still down: it runs again and dies again.
    let again = app.terminal(&alice, &id).await;
    assert_eq!(again["status"], "dead_lettered");
    assert!(again["updated_at"].as_str() > dead["updated_at"].as_str(), "it ran again");

    let purge = "/v1/admin/dlqs/booking-commands/purge";
    for (body, field) in [("{}", "confirm"), (r#"{"confirm":false}"#, "confirm")] {
        let bad = problem(app.post(Some(&admin), purge, None, body).await, 400, "invalid_body").await;
        assert_eq!(bad["field"], field);
    }
    assert_eq!(app.get_json(&admin, "/v1/admin/dlqs").await[0]["depth"], 1, "nothing purged yet");
    let purged = app.post(Some(&admin), purge, None, r#"{"confirm":true}"#).await;
    assert_eq!(purged.status(), 200);
    assert_eq!(purged.json::<Value>().await.unwrap(), json!({ "queue": "booking-commands-dlq", "purged": true }));
    assert_eq!(app.get_json(&admin, "/v1/admin/dlqs").await[0]["depth"], 0);
    app.stop().await;
}
