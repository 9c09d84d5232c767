//! A typed client of one running Usher, over HTTP: the raw calls a test checks the
//! answers of, and the steps tests repeat (send a command, wait for its end, read the
//! seat map or a report).

use reqwest::Response;
use serde_json::{Value, json};
use std::time::Duration;

/// Talks to the Usher at `base`; holds an admin token for the reads a test makes as the
/// operator. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    admin: String,
}

impl Client {
    /// A client whose calls time out after 30 s.
    pub fn new(base: impl Into<String>, admin: impl Into<String>) -> Client {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("a client");
        Client::with_http(http, base, admin)
    }

    pub fn with_http(http: reqwest::Client, base: impl Into<String>, admin: impl Into<String>) -> Client {
        Client { base: base.into(), http, admin: admin.into() }
    }

    /// The admin token this client was given.
    pub fn admin(&self) -> String {
        self.admin.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, token: Option<&str>, path: &str) -> Response {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the request is answered")
    }

    /// POSTs `body` verbatim as JSON, with an `Idempotency-Key` when one is given.
    pub async fn post(&self, token: Option<&str>, path: &str, key: Option<&str>, body: &str) -> Response {
        let mut request =
            self.http.post(self.url(path)).header("content-type", "application/json").body(body.to_owned());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.expect("the request is answered")
    }

    /// POSTs `body` with a token and an `Idempotency-Key`.
    pub async fn post_json(&self, token: &str, path: &str, key: &str, body: &Value) -> Response {
        self.post(Some(token), path, Some(key), &body.to_string()).await
    }

    /// GETs `path`, expects a success, returns its JSON.
    pub async fn get_json(&self, token: &str, path: &str) -> Value {
        let r = self.get(Some(token), path).await;
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.expect("json")
    }

    /// POSTs a command under a fresh key, expects 202, returns its request id.
    pub async fn command(&self, token: &str, path: &str, body: Value) -> String {
        let key = uuid::Uuid::new_v4().to_string();
        let r = self.post_json(token, path, &key, &body).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or_default();
        assert_eq!(status, 202, "POST {path}: {v}");
        v["request_id"].as_str().expect("a request id").to_owned()
    }

    /// Polls the status document until it is terminal (at most a minute).
    pub async fn terminal(&self, token: &str, request_id: &str) -> Value {
        for _ in 0..12 {
            let doc = self.get_json(token, &format!("/v1/requests/{request_id}?wait=5")).await;
            if matches!(doc["status"].as_str(), Some("succeeded" | "failed" | "dead_lettered")) {
                return doc;
            }
        }
        panic!("request {request_id} never ended");
    }

    /// POSTs a command under a fresh key and waits for its terminal status document.
    pub async fn run(&self, token: &str, path: &str, body: Value) -> Value {
        let id = self.command(token, path, body).await;
        self.terminal(token, &id).await
    }

    /// Places a hold and waits for its end.
    pub async fn hold(&self, token: &str, show: &str, seats: &[&str]) -> Value {
        self.run(token, "/v1/holds", json!({ "show_id": show, "seat_ids": seats })).await
    }

    /// The first show of the first movie (the demo catalog's, on a seeded app).
    pub async fn show_id(&self) -> String {
        let movies = self.get_json(&self.admin, "/v1/movies").await;
        let movie = movies[0]["movie_id"].as_str().expect("a movie").to_owned();
        let shows = self.get_json(&self.admin, &format!("/v1/movies/{movie}/shows")).await;
        shows[0]["show_id"].as_str().expect("a show").to_owned()
    }

    /// Creates a movie and a show of `rows` × `seats_per_row`; returns their ids.
    pub async fn create_show(&self, rows: u32, seats_per_row: u32) -> (String, String) {
        let admin = Some(self.admin.as_str());
        let movie = self.post(admin, "/v1/movies", None, r#"{"title":"Arrival","duration_min":116}"#).await;
        assert_eq!(movie.status(), 201);
        let movie_id = movie.json::<Value>().await.expect("json")["movie_id"].as_str().expect("an id").to_owned();
        let body = json!({
            "movie_id": movie_id,
            "starts_at": "2026-12-01T20:00:00Z",
            "auditorium": {"rows": rows, "seats_per_row": seats_per_row},
            "price_cents": 1250,
        });
        let show = self.post(admin, "/v1/shows", None, &body.to_string()).await;
        assert_eq!(show.status(), 201);
        let show_id = show.json::<Value>().await.expect("json")["show_id"].as_str().expect("an id").to_owned();
        (movie_id, show_id)
    }

    /// Every seat of `show` with its state: (`seat_id`, `state`).
    pub async fn seat_states(&self, show: &str) -> Vec<(String, String)> {
        let map = self.get_json(&self.admin, &format!("/v1/shows/{show}/seats")).await;
        map["seats"]
            .as_array()
            .expect("seats")
            .iter()
            .map(|s| (s["seat_id"].as_str().unwrap().to_owned(), s["state"].as_str().unwrap().to_owned()))
            .collect()
    }

    /// Polls the show report until `done` accepts it (analytics is eventually consistent).
    pub async fn report_until(&self, show: &str, done: impl Fn(&Value) -> bool) -> Value {
        let mut report = Value::Null;
        for _ in 0..150 {
            report = self.get_json(&self.admin, &format!("/v1/reports/shows/{show}")).await;
            if done(&report) {
                return report;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the report never settled: {report}");
    }
}
