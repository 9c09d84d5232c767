//! Every error status the API gives, each as an RFC 9457 problem with its code.

use crate::helpers::{HOLD_BODY, TestApp, UnreachableQueue, problem};
use domain::actor::Role;
use infra::Backend;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::Arc;

#[tokio::test]
async fn health_needs_no_token() {
    let app = TestApp::ingress().await;
    let live = app.get(None, "/health/live").await;
    assert_eq!(live.status(), 200);
    assert_eq!(live.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    assert_eq!(app.get(None, "/health/ready").await.status(), 200);
}

#[tokio::test]
async fn an_unreachable_backend_is_not_ready() {
    let working = TestApp::ingress().await;
    let broken = Backend { queues: Arc::new(UnreachableQueue), ..working.backend.clone() };
    let app = TestApp::ingress_on(broken).await;
    let response = app.get(None, "/health/ready").await;
    assert_eq!(response.headers()["retry-after"], "1");
    problem(response, 503, "backend_unavailable").await;
    assert_eq!(app.get(None, "/health/live").await.status(), 200);
}

#[tokio::test]
async fn no_token_is_401() {
    let app = TestApp::ingress().await;
    let response = app.get(None, "/v1/movies").await;
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    problem(response, 401, "unauthorized").await;
    // Authentication comes before the idempotency key and the body.
    problem(app.post(None, "/v1/holds", None, "not json").await, 401, "unauthorized").await;
}

#[tokio::test]
async fn a_bad_token_is_401() {
    let app = TestApp::ingress().await;
    for token in ["garbage", "a.b.c"] {
        problem(app.get(Some(token), "/v1/movies").await, 401, "unauthorized").await;
    }
    let foreign = ingress::auth::mint_token(
        &ingress::JwtSecret::generate(),
        "alice",
        Role::Admin,
        std::time::Duration::from_secs(60),
    );
    problem(app.get(Some(&foreign), "/v1/movies").await, 401, "unauthorized").await;
    let basic = app.http.get(app.url("/v1/movies")).header("authorization", "Basic YTpi").send().await.unwrap();
    problem(basic, 401, "unauthorized").await;
}

#[tokio::test]
async fn an_expired_token_is_401() {
    let app = TestApp::ingress().await;
    let an_hour_ago = time::OffsetDateTime::now_utc().unix_timestamp() - 3600;
    let claims = json!({"sub": "alice", "role": "customer", "exp": an_hour_ago});
    let key = EncodingKey::from_secret(app.secret.expose().as_bytes());
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
    let body = problem(app.get(Some(&token), "/v1/movies").await, 401, "unauthorized").await;
    assert!(body["detail"].as_str().unwrap().contains("expired"), "{body}");
}

#[tokio::test]
async fn an_unknown_role_is_401() {
    let app = TestApp::ingress().await;
    let claims = json!({"sub": "alice", "role": "owner", "exp": time::OffsetDateTime::now_utc().unix_timestamp() + 60});
    let key = EncodingKey::from_secret(app.secret.expose().as_bytes());
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
    problem(app.get(Some(&token), "/v1/movies").await, 401, "unauthorized").await;
}

#[tokio::test]
async fn only_admins_manage_the_catalog() {
    let app = TestApp::ingress().await;
    let body = r#"{"title":"Heat","duration_min":170}"#;
    for role in [Role::Customer, Role::Agent] {
        let token = app.token("someone", role);
        problem(app.post(Some(&token), "/v1/movies", None, body).await, 403, "forbidden").await;
        // The role is checked before the body is read.
        problem(app.post(Some(&token), "/v1/movies", None, "{oops").await, 403, "forbidden").await;
        problem(app.post(Some(&token), "/v1/shows", None, "{}").await, 403, "forbidden").await;
    }
    let movies: Value = app.get(Some(&app.customer("c")), "/v1/movies").await.json().await.unwrap();
    assert_eq!(movies, json!([]));
}

#[tokio::test]
async fn an_unknown_route_is_404() {
    let app = TestApp::ingress().await;
    problem(app.get(Some(&app.admin()), "/v1/nothing-here").await, 404, "not_found").await;
    problem(app.get(None, "/nope").await, 404, "not_found").await;
}

/// An id in the path that is not one is 400 `invalid_path`, naming the route's parameter.
#[tokio::test]
async fn a_bad_path_id_is_400_naming_the_parameter() {
    let app = TestApp::ingress().await;
    let admin = app.admin();
    let long = "b".repeat(256);
    for (path, parameter) in [
        ("/v1/bookings/%E2%98%83".to_owned(), "booking_id"),
        (format!("/v1/bookings/{long}"), "booking_id"),
        ("/v1/requests/%00%ff%fe".to_owned(), "request_id"),
        ("/v1/shows/a%20b/seats".to_owned(), "show_id"),
    ] {
        let body = problem(app.get(Some(&admin), &path).await, 400, "invalid_path").await;
        assert_eq!(body["field"], parameter, "{path}: {body}");
        assert!(body["detail"].as_str().unwrap().starts_with(&format!("{parameter}: ")), "{path}: {body}");
    }
}

#[tokio::test]
async fn a_wrong_method_is_405() {
    let app = TestApp::ingress().await;
    let response = app.http.delete(app.url("/v1/movies")).bearer_auth(app.admin()).send().await.unwrap();
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    problem(response, 405, "method_not_allowed").await;
    let response = app.http.get(app.url("/v1/holds")).bearer_auth(app.admin()).send().await.unwrap();
    problem(response, 405, "method_not_allowed").await;
}

/// A method HTTP does not define is counted as `OTHER`: a client inventing methods cannot
/// make a new metric series with each one.
#[tokio::test]
async fn invented_methods_are_counted_as_other() {
    let app = TestApp::ingress().await;
    let before = requests_counted(&app, "OTHER", "/v1/movies", 405).await;
    for method in ["FOO1", "FOO2", "BREW"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = app.http.request(method, app.url("/v1/movies")).bearer_auth(app.admin()).send().await.unwrap();
        problem(response, 405, "method_not_allowed").await;
    }
    assert_eq!(requests_counted(&app, "OTHER", "/v1/movies", 405).await, before + 3);
    let metrics = app.get(None, "/metrics").await.text().await.unwrap();
    assert!(!metrics.contains(r#"method="FOO1""#) && !metrics.contains(r#"method="BREW""#));
}

/// The value of `usher_http_requests_total` for `method`, `route` and `status` (0 before
/// the first).
async fn requests_counted(app: &TestApp, method: &str, route: &str, status: u16) -> u64 {
    let metrics = app.get(None, "/metrics").await.text().await.unwrap();
    let labels = [format!(r#"method="{method}""#), format!(r#"route="{route}""#), format!(r#"status="{status}""#)];
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("usher_http_requests_total{") && labels.iter().all(|label| l.contains(label.as_str()))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn requests_no_route_answers_are_counted_too() {
    let app = TestApp::ingress().await;
    let not_found = requests_counted(&app, "GET", "unmatched", 404).await;
    let wrong_method = requests_counted(&app, "DELETE", "/v1/movies", 405).await;
    problem(app.get(None, "/wp-login.php").await, 404, "not_found").await;
    let response = app.http.delete(app.url("/v1/movies")).bearer_auth(app.admin()).send().await.unwrap();
    assert!(response.headers().contains_key("allow"), "still says what is allowed");
    problem(response, 405, "method_not_allowed").await;
    assert!(requests_counted(&app, "GET", "unmatched", 404).await > not_found, "an unknown path, as `unmatched`");
    assert!(requests_counted(&app, "DELETE", "/v1/movies", 405).await > wrong_method, "a wrong method, by its route");
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let app = TestApp::ingress().await;
    let padding = "x".repeat(64 * 1024);
    let body = format!(r#"{{"show_id":"{padding}","seat_ids":["A1"]}}"#);
    let response = app.post(Some(&app.customer("alice")), "/v1/holds", Some("big"), &body).await;
    problem(response, 413, "payload_too_large").await;
    // Nothing was stored: the key is free.
    assert_eq!(app.post(Some(&app.customer("alice")), "/v1/holds", Some("big"), HOLD_BODY).await.status(), 202);
}

/// POSTs `body` and expects a 400 `invalid_body` naming `field`.
async fn invalid(app: &TestApp, token: &str, path: &str, body: &str, field: &str) {
    let response = app.post(Some(token), path, Some("key-400"), body).await;
    let problem = problem(response, 400, "invalid_body").await;
    assert_eq!(problem["field"], field, "{body} -> {problem}");
    assert!(problem["detail"].as_str().unwrap().contains(field), "{problem}");
}

#[tokio::test]
async fn a_bad_command_body_is_400_naming_the_field() {
    let app = TestApp::ingress().await;
    let token = app.customer("alice");
    let cases = [
        ("/v1/holds", r#"{"show_id":"show_1","seat_ids":["A1"],"extra":true}"#, "extra"),
        ("/v1/holds", r#"{"show_id":7,"seat_ids":["A1"]}"#, "show_id"),
        ("/v1/holds", r#"{"show_id":"show_1","seat_ids":"A1"}"#, "seat_ids"),
        ("/v1/holds", r#"{"show_id":"show_1","seat_ids":["A1",2]}"#, "seat_ids[1]"),
        ("/v1/holds", r#"{"seat_ids":["A1"]}"#, "show_id"),
        ("/v1/holds", r#"{"show_id":"","seat_ids":["A1"]}"#, "show_id"),
        ("/v1/holds", r#"{"show_id":"show_1","seat_ids":[]}"#, "seat_ids"),
        ("/v1/holds", r#"{"show_id":"show_1","seat_ids":["A1","A1"]}"#, "seat_ids"),
        (
            "/v1/holds",
            r#"{"show_id":"show_1","seat_ids":["A1","A2","A3","A4","A5","A6","A7","A8","A9","A10","A11"]}"#,
            "seat_ids",
        ),
        ("/v1/bookings", r#"{"hold_id":"hold_1","payment_token":"visa"}"#, "payment_token"),
        ("/v1/bookings", r#"{"hold_id":"hold_1"}"#, "payment_token"),
        ("/v1/holds/hold_1/release", r#"{"why":"changed my mind"}"#, "why"),
    ];
    for (path, body, field) in cases {
        invalid(&app, &token, path, body, field).await;
    }
    assert_eq!(app.backend.queues.depth(domain::queue::Queue::BookingCommands.source()).await.unwrap(), 0);
}

#[tokio::test]
async fn a_bad_catalog_body_is_400_naming_the_field() {
    let app = TestApp::ingress().await;
    let admin = app.admin();
    let cases = [
        (r#"{"title":"Heat","duration_min":-5}"#, "duration_min"),
        (r#"{"title":"Heat","duration_min":0}"#, "duration_min"),
        (r#"{"title":"Heat","duration_min":"long"}"#, "duration_min"),
        (r#"{"title":"  ","duration_min":90}"#, "title"),
        (r#"{"title":"Heat","duration_min":90,"rating":"R"}"#, "rating"),
    ];
    for (body, field) in cases {
        invalid(&app, &admin, "/v1/movies", body, field).await;
    }
    let (movie_id, _) = app.create_show(1, 1).await;
    let show = |patch: Value| {
        let mut body = json!({
            "movie_id": movie_id,
            "starts_at": "2026-12-01T20:00:00Z",
            "auditorium": {"rows": 5, "seats_per_row": 8},
            "price_cents": 900,
        });
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body.to_string()
    };
    let cases = [
        (show(json!({"auditorium": {"rows": 27, "seats_per_row": 8}})), "auditorium.rows"),
        (show(json!({"auditorium": {"rows": 5, "seats_per_row": 0}})), "auditorium.seats_per_row"),
        (show(json!({"auditorium": {"rows": 5}})), "auditorium.seats_per_row"),
        (show(json!({"auditorium": {"rows": 5, "seats_per_row": 8, "balcony": true}})), "auditorium.balcony"),
        (show(json!({"starts_at": "tomorrow"})), "starts_at"),
        (show(json!({"price_cents": -1})), "price_cents"),
        (show(json!({"price_cents": 1_000_001})), "price_cents"),
    ];
    for (body, field) in cases {
        invalid(&app, &admin, "/v1/shows", &body, field).await;
    }
    // A well-formed body naming no movie is about a missing resource, not a bad field.
    let missing = app.post(Some(&admin), "/v1/shows", None, &show(json!({"movie_id": "mov_missing"}))).await;
    problem(missing, 404, "movie_not_found").await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400() {
    let app = TestApp::ingress().await;
    let token = app.customer("alice");
    for body in ["{not json", "[]", "\"text\""] {
        let response = app.post(Some(&token), "/v1/holds", Some("k"), body).await;
        problem(response, 400, "invalid_body").await;
    }
    let form = app
        .http
        .post(app.url("/v1/holds"))
        .bearer_auth(&token)
        .header("idempotency-key", "k")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("show_id=show_1")
        .send()
        .await
        .unwrap();
    problem(form, 400, "invalid_body").await;
}

#[tokio::test]
async fn a_wait_out_of_range_is_400() {
    let app = TestApp::ingress().await;
    let token = app.customer("alice");
    for wait in ["21", "-1", "soon"] {
        let response = app.get(Some(&token), &format!("/v1/requests/req_x?wait={wait}")).await;
        let body = problem(response, 400, "invalid_query").await;
        assert_eq!(body["field"], "wait");
    }
}

/// A query parameter a route does not take is 400 `invalid_query` naming it, on the
/// report and notification routes as on the ticket list.
#[tokio::test]
async fn an_unknown_query_parameter_is_400_naming_it() {
    let app = TestApp::ingress().await;
    let admin = app.admin();
    for path in ["/v1/reports/daily?days=abc", "/v1/notifications?days=abc", "/v1/tickets?days=abc"] {
        let body = problem(app.get(Some(&admin), path).await, 400, "invalid_query").await;
        assert_eq!(body["field"], "days", "{path}: {body}");
    }
    assert_eq!(app.get(Some(&admin), "/v1/reports/daily?limit=5").await.status(), 200);
}

/// A body naming a key twice has no one meaning: 400, and a command's key stays free.
#[tokio::test]
async fn a_body_naming_a_key_twice_is_400() {
    let app = TestApp::ingress().await;
    let movie =
        app.post(Some(&app.admin()), "/v1/movies", None, r#"{"title":"T","title":"U","duration_min":90}"#).await;
    let body = problem(movie, 400, "invalid_body").await;
    assert!(body["detail"].as_str().unwrap().contains(r#"the key "title" appears twice"#), "{body}");
    let alice = app.customer("alice");
    let twice = r#"{"show_id":"s1","seat_ids":["A1"],"seat_ids":["A2"]}"#;
    problem(app.post(Some(&alice), "/v1/holds", Some("twice"), twice).await, 400, "invalid_body").await;
    let once = app.post(Some(&alice), "/v1/holds", Some("twice"), r#"{"show_id":"s1","seat_ids":["A2"]}"#).await;
    assert_eq!(once.status(), 202, "the key stayed free");
}
