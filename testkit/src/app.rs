//! The app under test on port 0, on a fresh data dir or fresh aws resources, stopped when
//! dropped. Two ways in: [`TestApp::ingress`] serves the HTTP API alone (no worker runs,
//! so admitted requests stay `accepted`); the root package's tests build the whole app and
//! hand it to [`TestApp::start`].

use crate::client::Client;
use domain::actor::Role;
use domain::queue::{QueueAddr, ReceivedMessage};
use infra::{Backend, Settings};
use ingress::auth::{JwtSecret, mint_token};
use ingress::{Ingress, IngressConfig};
use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::ops::Deref;
use std::time::Duration;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    /// A client of this app, with an admin token; the app derefs to it.
    pub client: Client,
    pub backend: Backend,
    pub settings: Settings,
    pub secret: JwtSecret,
    /// The data dir (the embedded file, the dev secret); removed on drop.
    pub dir: TempDir,
    shutdown: CancellationToken,
    running: Option<JoinHandle<Result<(), String>>>,
}

impl TestApp {
    /// The HTTP API alone, on a fresh backend (see [`crate::settings::app`]).
    pub async fn ingress() -> TestApp {
        let dir = tempfile::tempdir().expect("a temp dir");
        let settings = crate::settings::app(dir.path());
        Backend::setup(&settings).await.expect("setup");
        let backend = Backend::connect(&settings).await.expect("the backend connects");
        Self::ingress_in(dir, settings, backend).await
    }

    /// The HTTP API alone, on the given backend (a test may share or break one of its ports).
    pub async fn ingress_on(backend: Backend) -> TestApp {
        let dir = tempfile::tempdir().expect("a temp dir");
        let settings = crate::settings::app(dir.path());
        Self::ingress_in(dir, settings, backend).await
    }

    /// The HTTP API alone on a fresh embedded backend, with its configuration changed by
    /// `tweak` first (timeouts, limits).
    pub async fn ingress_with(tweak: impl FnOnce(&mut IngressConfig)) -> TestApp {
        let dir = tempfile::tempdir().expect("a temp dir");
        let settings = Settings::embedded(dir.path());
        let backend = Backend::connect(&settings).await.expect("the backend connects");
        let mut config = crate::settings::ingress();
        tweak(&mut config);
        Self::ingress_configured(dir, settings, backend, &config).await
    }

    async fn ingress_in(dir: TempDir, settings: Settings, backend: Backend) -> TestApp {
        Self::ingress_configured(dir, settings, backend, &crate::settings::ingress()).await
    }

    async fn ingress_configured(dir: TempDir, settings: Settings, backend: Backend, config: &IngressConfig) -> TestApp {
        let secret = JwtSecret::generate();
        let api = Ingress::build(config, secret.clone(), backend.clone()).await.expect("the app binds");
        let addr = api.local_addr();
        Self::start(dir, settings, backend, secret, addr, |stop| api.run_until_stopped(stop))
    }

    /// Runs an app already built and bound to `addr`: `run` is its `run_until_stopped`.
    pub fn start<F, E>(
        dir: TempDir,
        settings: Settings,
        backend: Backend,
        secret: JwtSecret,
        addr: SocketAddr,
        run: impl FnOnce(CancellationToken) -> F,
    ) -> TestApp
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Display,
    {
        let shutdown = CancellationToken::new();
        let running = run(shutdown.clone());
        let running = tokio::spawn(async move { running.await.map_err(|e| e.to_string()) });
        let admin = mint_token(&secret, "root", Role::Admin, Duration::from_secs(3600));
        let client = Client::new(format!("http://{addr}"), admin);
        TestApp { client, backend, settings, secret, dir, shutdown, running: Some(running) }
    }

    pub fn token(&self, sub: &str, role: Role) -> String {
        mint_token(&self.secret, sub, role, Duration::from_secs(3600))
    }

    pub fn customer(&self, sub: &str) -> String {
        self.token(sub, Role::Customer)
    }

    /// Takes up to ten messages from `queue` as a worker would, waiting at most 200 ms.
    pub async fn receive(&self, queue: QueueAddr) -> Vec<ReceivedMessage> {
        let (wait, visibility) = (Duration::from_millis(200), Duration::from_secs(30));
        self.backend.queues.receive(queue, 10, wait, visibility).await.expect("a receive")
    }

    /// Stops the app and expects it to stop cleanly within 30 s.
    pub async fn stop(self) {
        self.stop_within(Duration::from_secs(30)).await;
    }

    /// Stops the app and expects it to stop cleanly within `bound`.
    pub async fn stop_within(mut self, bound: Duration) {
        self.shutdown.cancel();
        let running = self.running.take().expect("running until stopped");
        let stopped = tokio::time::timeout(bound, running).await;
        stopped.unwrap_or_else(|_| panic!("stops within {bound:?}")).expect("joins").expect("stops cleanly");
    }
}

impl Deref for TestApp {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
