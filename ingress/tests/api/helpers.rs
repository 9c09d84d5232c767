//! Spawning the app and talking to it.

use async_trait::async_trait;
use domain::PortError;
use domain::actor::Role;
use domain::ports::MessageQueue;
use domain::queue::{OutgoingMessage, QueueAddr, Receipt, ReceivedMessage};
use infra::{Backend, Settings};
use ingress::{Ingress, JwtSecret, auth};
use reqwest::Response;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// A random prefix without another dependency: the low bits of a v4 uuid.
fn rand_u32() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}

pub const HOLD_BODY: &str = r#"{"show_id":"show_1","seat_ids":["A1","A2"]}"#;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub backend: Backend,
    pub secret: JwtSecret,
    shutdown: CancellationToken,
    _dir: Option<Arc<TempDir>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    /// The app on a fresh embedded backend, or, with `USHER_TEST_BACKEND=aws` (and
    /// `AWS_ENDPOINT_URL` at moto, as `scripts/test.sh` arranges), on fresh AWS resources.
    pub async fn spawn() -> TestApp {
        let dir = Arc::new(tempfile::tempdir().expect("a temp dir"));
        let mut settings = Settings::embedded(dir.path());
        if std::env::var("USHER_TEST_BACKEND").as_deref() == Ok("aws") {
            settings.backend = infra::BackendKind::Aws;
            settings.env = format!("i{:08x}", rand_u32());
            Backend::setup(&settings).await.expect("aws setup");
        }
        let backend = Backend::connect(&settings).await.expect("the backend connects");
        Self::spawn_on(backend, Some(dir)).await
    }

    /// The app on the given backend (a test may share or break one of its ports).
    pub async fn spawn_on(backend: Backend, dir: Option<Arc<TempDir>>) -> TestApp {
        let mut settings = Settings::embedded(std::env::temp_dir());
        settings.http_addr = "127.0.0.1:0".parse().expect("an address");
        let secret = JwtSecret::generate();
        let app = Ingress::build(&settings, secret.clone(), backend.clone()).await.expect("the app binds");
        let base = format!("http://{}", app.local_addr());
        let shutdown = CancellationToken::new();
        tokio::spawn(app.run_until_stopped(shutdown.clone()));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("a client");
        TestApp { base, client, backend, secret, shutdown, _dir: dir }
    }

    pub fn token(&self, sub: &str, role: Role) -> String {
        auth::mint_token(&self.secret, sub, role, Duration::from_secs(3600))
    }

    pub fn customer(&self, sub: &str) -> String {
        self.token(sub, Role::Customer)
    }

    pub fn admin(&self) -> String {
        self.token("root", Role::Admin)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, token: Option<&str>, path: &str) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the request is answered")
    }

    /// POSTs `body` verbatim as JSON, with an `Idempotency-Key` when one is given.
    pub async fn post(&self, token: Option<&str>, path: &str, key: Option<&str>, body: &str) -> Response {
        let mut request =
            self.client.post(self.url(path)).header("content-type", "application/json").body(body.to_owned());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.expect("the request is answered")
    }

    /// Creates a movie and a show of `rows` × `seats_per_row` as an admin.
    pub async fn create_show(&self, rows: u32, seats_per_row: u32) -> (String, String) {
        let admin = self.admin();
        let movie = self.post(Some(&admin), "/v1/movies", None, r#"{"title":"Arrival","duration_min":116}"#).await;
        assert_eq!(movie.status(), 201);
        let movie_id = movie.json::<Value>().await.unwrap()["movie_id"].as_str().unwrap().to_owned();
        let body = json!({
            "movie_id": movie_id,
            "starts_at": "2026-12-01T20:00:00Z",
            "auditorium": {"rows": rows, "seats_per_row": seats_per_row},
            "price_cents": 1250,
        });
        let show = self.post(Some(&admin), "/v1/shows", None, &body.to_string()).await;
        assert_eq!(show.status(), 201);
        let show_id = show.json::<Value>().await.unwrap()["show_id"].as_str().unwrap().to_owned();
        (movie_id, show_id)
    }
}

/// Reads a problem document and checks its shape; returns it.
pub async fn problem(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status, "status of a `{code}` problem");
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: Value = response.json().await.expect("a JSON problem");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    assert_eq!(body["type"], format!("https://usher.dev/problems/{code}"));
    assert!(body["title"].is_string() && body["detail"].is_string(), "{body}");
    body
}

/// A queue that cannot be reached: every call fails as a down backend would.
pub struct UnreachableQueue;

fn down() -> PortError {
    PortError::Unavailable("connection refused".into())
}

#[async_trait]
impl MessageQueue for UnreachableQueue {
    fn max_delay(&self) -> Duration {
        Duration::from_secs(900)
    }
    async fn send_batch(&self, _: QueueAddr, _: Vec<OutgoingMessage>) -> Result<(), PortError> {
        Err(down())
    }
    async fn receive(
        &self,
        _: QueueAddr,
        _: usize,
        _: Duration,
        _: Duration,
    ) -> Result<Vec<ReceivedMessage>, PortError> {
        Err(down())
    }
    async fn delete_batch(&self, _: QueueAddr, _: Vec<Receipt>) -> Result<(), PortError> {
        Err(down())
    }
    async fn change_visibility(&self, _: QueueAddr, _: &Receipt, _: Duration) -> Result<(), PortError> {
        Err(down())
    }
    async fn depth(&self, _: QueueAddr) -> Result<u64, PortError> {
        Err(down())
    }
    async fn purge(&self, _: QueueAddr) -> Result<(), PortError> {
        Err(down())
    }
    async fn ping(&self) -> Result<(), PortError> {
        Err(down())
    }
}
