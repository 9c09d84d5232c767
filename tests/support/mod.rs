//! Starts the real app in-process on port 0 with a fresh data dir, and talks to it over HTTP.
#![allow(dead_code)]

pub mod dev;

use domain::actor::Role;
use infra::{Backend, Settings};
use ingress::auth::{JwtSecret, mint_token};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use usher::{App, Components};

pub struct TestApp {
    pub base: String,
    pub backend: Backend,
    pub settings: Settings,
    pub secret: JwtSecret,
    pub dir: tempfile::TempDir,
    shutdown: CancellationToken,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub http: reqwest::Client,
}

/// Fast retries so failure paths finish in test time. With `USHER_TEST_BACKEND=aws` (and
/// `AWS_ENDPOINT_URL` pointing at moto, as `scripts/test.sh` arranges) the app runs on the
/// aws backend under a fresh resource prefix; otherwise on the embedded one.
pub fn test_settings(dir: &std::path::Path) -> Settings {
    let mut s = Settings::embedded(dir);
    if std::env::var("USHER_TEST_BACKEND").as_deref() == Ok("aws") {
        assert!(
            std::env::var("AWS_ENDPOINT_URL").is_ok(),
            "USHER_TEST_BACKEND=aws needs AWS_ENDPOINT_URL (run scripts/test.sh)"
        );
        s.backend = infra::BackendKind::Aws;
        s.env = format!("t{:08x}", fastrand::u32(..));
    }
    s.http_addr = "127.0.0.1:0".parse().unwrap();
    s.retry_base = Duration::from_millis(20);
    s.retry_max = Duration::from_millis(100);
    s.max_receives = 3;
    s
}

pub async fn spawn() -> TestApp {
    spawn_with(|_, _| {}).await
}

pub async fn spawn_with(tweak: impl FnOnce(&mut Settings, &mut Components)) -> TestApp {
    spawn_on(tweak, None).await
}

/// The app on a backend whose ports fail as `faults` says (see `infra::faults`).
pub async fn spawn_with_faults(faults: &infra::faults::Faults) -> TestApp {
    spawn_on(|_, _| {}, Some(faults)).await
}

async fn spawn_on(
    tweak: impl FnOnce(&mut Settings, &mut Components),
    faults: Option<&infra::faults::Faults>,
) -> TestApp {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut settings = test_settings(dir.path());
    let mut components = Components::everything();
    components.sweep_every = Duration::from_millis(200);
    tweak(&mut settings, &mut components);
    Backend::setup(&settings).await.expect("setup");
    let backend = Backend::connect(&settings).await.expect("the backend connects");
    let backend = match faults {
        Some(faults) => faults.wrap(backend),
        None => backend,
    };
    let app = App::build_on(settings.clone(), components, backend).await.expect("the app builds");
    usher::demo::seed_if_empty(app.backend()).await.expect("the demo catalog");
    let base = format!("http://{}", app.http_addr().expect("ingress runs"));
    let backend = app.backend().clone();
    let secret = app.secret().clone();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp { base, backend, settings, secret, dir, shutdown, running, http: reqwest::Client::new() }
}

impl TestApp {
    pub fn token(&self, sub: &str, role: Role) -> String {
        mint_token(&self.secret, sub, role, Duration::from_secs(3600))
    }

    pub async fn post(&self, token: &str, path: &str, key: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("the request is sent")
    }

    pub async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.base)).bearer_auth(token).send().await.expect("the request is sent")
    }

    pub async fn get_json(&self, token: &str, path: &str) -> Value {
        let r = self.get(token, path).await;
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.expect("json")
    }

    /// POSTs a command, expects 202, returns its request id.
    pub async fn command(&self, token: &str, path: &str, body: Value) -> String {
        let key = uuid::Uuid::new_v4().to_string();
        let r = self.post(token, path, &key, &body).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or_default();
        assert_eq!(status, 202, "POST {path}: {v}");
        v["request_id"].as_str().unwrap().to_owned()
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

    /// The first demo show.
    pub async fn show_id(&self) -> String {
        let admin = self.token("admin", Role::Admin);
        let movies = self.get_json(&admin, "/v1/movies").await;
        let movie = movies[0]["movie_id"].as_str().unwrap().to_owned();
        let shows = self.get_json(&admin, &format!("/v1/movies/{movie}/shows")).await;
        shows[0]["show_id"].as_str().unwrap().to_owned()
    }

    pub async fn hold(&self, token: &str, show: &str, seats: &[&str]) -> Value {
        let id = self.command(token, "/v1/holds", json!({ "show_id": show, "seat_ids": seats })).await;
        self.terminal(token, &id).await
    }

    pub async fn seat_states(&self, show: &str) -> Vec<(String, String)> {
        let admin = self.token("admin", Role::Admin);
        let map = self.get_json(&admin, &format!("/v1/shows/{show}/seats")).await;
        map["seats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["seat_id"].as_str().unwrap().to_owned(), s["state"].as_str().unwrap().to_owned()))
            .collect()
    }

    /// Polls the show report until `done` accepts it (analytics is eventually consistent).
    pub async fn report_until(&self, show: &str, done: impl Fn(&Value) -> bool) -> Value {
        let admin = self.token("admin", Role::Admin);
        let mut report = Value::Null;
        for _ in 0..150 {
            report = self.get_json(&admin, &format!("/v1/reports/shows/{show}")).await;
            if done(&report) {
                return report;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the report never settled: {report}");
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let stopped = tokio::time::timeout(Duration::from_secs(30), self.running).await;
        stopped.expect("stops within 30 s").expect("joins").expect("stops cleanly");
    }
}

/// Runs the `usher` binary on this app's backend; returns (exit ok, stdout, stderr).
pub fn cli(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let backend = match app.settings.backend {
        infra::BackendKind::Aws => "aws",
        infra::BackendKind::Embedded => "embedded",
    };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_usher"))
        .args(args)
        .env("USHER_DATA_DIR", app.dir.path())
        .env("USHER_MAX_RECEIVES", app.settings.max_receives.to_string())
        .env("USHER_BACKEND", backend)
        .env("USHER_ENV", &app.settings.env)
        .output()
        .expect("usher runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
