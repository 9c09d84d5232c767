//! Builds what a command asked for (ingress, worker pools, the sweep) on one backend and
//! runs it until shutdown: stop receiving, finish in-flight work, exit within 30 s.

use crate::Config;
use anyhow::Context;
use backon::{ExponentialBuilder, Retryable};
use domain::request::ADMISSION_GRACE;
use infra::Backend;
use ingress::auth::JwtSecret;
use ingress::{ConnectionLimits, Ingress, Operations};
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use workers::consumer::ConsumerConfig;
use workers::pools::{PoolConsumer, PoolKind};
use workers::relay::Relay;
use workers::status::{Sampler, sample_every};
use workers::sweep::Sweeper;

/// The relay's longest nap when this process committed nothing new; commits here wake it
/// at once, so this only bounds how late it sees other processes' commits.
const RELAY_IDLE: Duration = Duration::from_millis(500);

/// How long in-flight work may take to finish after a stop signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pool {
    Booking,
    Tickets,
    Notifications,
    Analytics,
    All,
}

impl Pool {
    /// Whether choosing this pool on the command line runs `pool`.
    pub fn includes(self, pool: PoolKind) -> bool {
        match self {
            Pool::All => true,
            Pool::Booking => pool == PoolKind::Booking,
            Pool::Tickets => pool == PoolKind::Tickets,
            Pool::Notifications => pool == PoolKind::Notifications,
            Pool::Analytics => pool == PoolKind::Analytics,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Components {
    pub ingress: bool,
    pub pools: Vec<Pool>,
    /// Receive loops per pool.
    pub concurrency: usize,
    pub sweep: bool,
    /// How often the sweep runs.
    pub sweep_every: Duration,
    /// How old an unqueued admission must be before the sweep re-queues it.
    pub sweep_grace: Duration,
    /// Serve `POST /dev/token` (the web page's sign-in): `usher dev` only.
    pub dev_tokens: bool,
    /// Without `USHER_JWT_SECRET`, make (or reuse) a secret in the data dir: `usher dev`
    /// only. Otherwise serving the API needs the variable.
    pub dev_secret: bool,
}

impl Components {
    /// Everything in one process, as `usher dev` runs it.
    pub fn everything() -> Self {
        Self {
            ingress: true,
            pools: vec![Pool::All],
            concurrency: workers::consumer::DEFAULT_RECEIVE_LOOPS,
            sweep: true,
            sweep_every: Duration::from_secs(5),
            sweep_grace: ADMISSION_GRACE,
            dev_tokens: false,
            dev_secret: true,
        }
    }

    fn secret_source(&self) -> crate::secret::Source {
        if self.dev_secret { crate::secret::Source::DevFileCreated } else { crate::secret::Source::Environment }
    }
}

pub struct App {
    config: Config,
    backend: Backend,
    secret: JwtSecret,
    ingress: Option<Ingress>,
    /// `/metrics` and `/health/*` on `USHER_METRICS_ADDR`, when there is no API to serve them.
    operations: Option<Operations>,
    components: Components,
}

impl App {
    /// Connects the backend and binds the HTTP port (if asked), but starts nothing yet.
    pub async fn build(config: Config, components: Components) -> anyhow::Result<App> {
        let backend = Backend::connect(&config.backend).await.context("cannot connect to the backend")?;
        Self::build_on(config, components, backend).await
    }

    /// As [`App::build`], on a backend already connected (tests wrap one with faults).
    pub async fn build_on(config: Config, components: Components, backend: Backend) -> anyhow::Result<App> {
        let secret = if components.ingress || components.dev_secret {
            crate::secret::resolve(&config, components.secret_source())?
        } else {
            // Workers verify no tokens; a secret that nothing uses stays in memory.
            config.ingress.jwt_secret.clone().map_or_else(JwtSecret::generate, JwtSecret::new)
        };
        let ingress = if components.ingress {
            let bound = Ingress::build(&config.ingress, secret.clone(), backend.clone())
                .await
                .with_context(|| format!("cannot listen on {} (USHER_HTTP_ADDR)", config.ingress.http_addr))?;
            Some(if components.dev_tokens { bound.with_dev_tokens(secret.clone()) } else { bound })
        } else {
            None
        };
        let operations = if components.ingress {
            None
        } else {
            let addr = config.workers.metrics_addr;
            let bound = Operations::build(addr, backend.clone(), ConnectionLimits::of(&config.ingress))
                .await
                .with_context(|| format!("cannot listen on {addr} (USHER_METRICS_ADDR)"))?;
            Some(bound)
        };
        Ok(App { config, backend, secret, ingress, operations, components })
    }

    /// Waits up to `within` for the backend to answer ([`Backend::ready`]), so that a
    /// server started against a backend it cannot reach exits with the reason instead of
    /// serving nothing but 503s. An outage after start-up is ridden out: `/health/ready`
    /// fails and commands are answered 503 until the backend answers again.
    /// `within` bounds the whole wait, the tries included: a try against an endpoint that
    /// refuses connections takes seconds of the SDK's own retries.
    pub async fn wait_for_backend(&self, within: Duration) -> anyhow::Result<()> {
        let backoff = ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(2))
            .without_max_times();
        let mut last_error = None;
        let tries = (|| self.backend.ready()).retry(backoff).notify(|e, next| {
            tracing::warn!(error = %e, retry_in = ?next, "the backend does not answer yet");
            last_error = Some(e.to_string());
        });
        let gave_up = || format!("the backend did not answer within {}s", within.as_secs());
        let outcome = tokio::time::timeout(within, tries).await;
        match outcome {
            Ok(answered) => answered.with_context(gave_up),
            Err(_) => {
                Err(anyhow::anyhow!(last_error.unwrap_or_else(|| "no try finished".to_owned()))).with_context(gave_up)
            }
        }
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.ingress.as_ref().map(Ingress::local_addr)
    }

    /// Where a process without the API serves `/metrics` and `/health/*`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.operations.as_ref().map(Operations::local_addr)
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    pub fn secret(&self) -> &JwtSecret {
        &self.secret
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let tasks = TaskTracker::new();
        for pool in PoolKind::ALL {
            if !self.components.pools.iter().any(|p| p.includes(pool)) {
                continue;
            }
            let config = ConsumerConfig {
                concurrency: self.components.concurrency,
                ..ConsumerConfig::new(pool.queue(), self.config.backend.max_receives, &self.config.workers)
            };
            let consumer = PoolConsumer::build(pool, self.backend.clone(), &self.config.workers, config);
            tasks.spawn(consumer.run_until_stopped(shutdown.clone()));
        }
        if !self.components.pools.is_empty() {
            // Delivers what the pools' commands committed to the outbox.
            let relay = Relay::new(self.backend.clone(), RELAY_IDLE);
            tasks.spawn(relay.run_until_stopped(shutdown.clone()));
        }
        // One sampler per process keeps the queue gauges current.
        let sampler = Sampler::new(self.backend.clone(), sample_every(self.config.backend.backend));
        tasks.spawn(sampler.run_until_stopped(shutdown.clone()));
        if let Some(operations) = self.operations {
            let stop = shutdown.clone();
            tasks.spawn(async move {
                if let Err(e) = operations.run_until_stopped(stop).await {
                    tracing::error!(error = %e, "the metrics server failed");
                }
            });
        }
        if self.components.sweep {
            let sweeper = Sweeper::new(self.backend.clone(), self.components.sweep_every, self.components.sweep_grace);
            tasks.spawn(sweeper.run_until_stopped(shutdown.clone()));
        }
        let served = match self.ingress {
            Some(ingress) => ingress.run_until_stopped(shutdown.clone()).await.context("the HTTP server failed"),
            None => {
                shutdown.cancelled().await;
                Ok(())
            }
        };
        // If the server failed on its own, the workers stop with it.
        shutdown.cancel();
        tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait()).await.is_err() {
            tracing::warn!("in-flight work did not finish in time; unfinished messages will be redelivered");
        }
        served
    }
}
