//! Usher's HTTP API: it authenticates, validates, admits commands under idempotency keys
//! and answers reads straight from the store. It never waits on a worker.
//!
//! # Layout
//! - [`config`]: ingress's section of the configuration (address, key retention, JWT secrets).
//! - [`auth`]: Bearer JWTs (HS256) and the [`auth::Caller`] / [`auth::Admin`] extractors.
//! - [`json`]: the body extractor: 64 KiB limit, JSON only, errors that name the field.
//! - [`idempotency`]: the `Idempotency-Key` header and admitting a command exactly once.
//! - [`limits`]: the per-caller rate limit on commands.
//! - [`problem`]: [`ApiError`], the one place errors become `application/problem+json`.
//! - [`routes`]: the handlers, one module per resource, each registering its routes.
//! - [`web`]: the web page (`/`, `/ops`, `/assets/*`), static files embedded in the binary,
//!   and `POST /dev/token`, which only `usher dev` serves.
//! - [`metrics`]: Prometheus metrics at `/metrics`.
//! - [`Operations`]: `/metrics` and `/health/*` alone, for processes that serve no API
//!   (`usher worker`, on `USHER_METRICS_ADDR`).
//! - [`openapi`]: the OpenAPI 3.1 document at `/openapi.json` (and `docs/openapi.json`).
//!
//! [`Ingress::build`] binds the address and [`Ingress::run_until_stopped`] serves until
//! the shutdown token fires, then lets in-flight requests finish (for at most the
//! shutdown grace). Slow clients are cut off: headers within 10 s, a body within 30 s, a
//! cap on open connections and on concurrent long polls (docs/contract.md §5).
//!
//! # Error codes
//! `unauthorized` (401), `forbidden` (403), `not_found` and `<resource>_not_found` (404),
//! `method_not_allowed` (405), `invalid_body`, `invalid_query`, `invalid_path`,
//! `idempotency_key_missing`, `idempotency_key_invalid` (400), `payload_too_large` (413),
//! `idempotency_key_reused` (422), `idempotency_request_in_progress` (409, `Retry-After`),
//! `request_timeout` (408), `rate_limited` (429, `Retry-After`), `backend_unavailable`
//! (503, `Retry-After`). Input errors carry the offending `field`.

pub mod auth;
pub mod config;
pub mod idempotency;
pub mod json;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod web;

pub use auth::JwtSecret;
pub use config::IngressConfig;
pub use problem::ApiError;

use auth::TokenVerifier;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::handler::Handler;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use infra::Backend;
use infra::logging::TraceParent;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

/// What every handler shares, behind one `Arc`: a request clones it with one atomic
/// increment rather than one per port and limit (two cores bouncing a dozen reference
/// counts showed in profiles).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`].
pub struct Shared {
    pub backend: Backend,
    pub verifier: Arc<TokenVerifier>,
    /// How long an idempotency key is kept (`USHER_IDEMPOTENCY_TTL`).
    pub idempotency_ttl: Duration,
    /// Fires when the server stops, so long polls answer at once instead of holding the
    /// graceful shutdown up.
    pub shutdown: CancellationToken,
    /// Agents already recorded in the user directory by this process.
    pub agents_seen: Arc<auth::AgentsSeen>,
    /// `usher dev` only: the secret `POST /dev/token` mints the web page's tokens with.
    /// `None` (as in `usher ingress`) leaves that route out of the router altogether.
    pub dev_tokens: Option<JwtSecret>,
    /// The `iss` and `aud` of the tokens `POST /dev/token` mints, so that they pass
    /// [`Shared::verifier`] when `USHER_JWT_ISSUER` or `USHER_JWT_AUDIENCE` is set.
    pub audience: auth::Audience,
    /// The idempotency keys this process is admitting a command under right now.
    pub admitting: Arc<idempotency::Admitting>,
    /// `USHER_RATE_LIMIT` / `USHER_RATE_BURST`, per caller, on commands.
    pub rate_limit: Arc<limits::RateLimit>,
    /// One permit per concurrent long poll (`USHER_MAX_WAITERS`); without one, a status
    /// document is answered at once.
    pub waiters: Arc<Semaphore>,
    /// How long a client may take to send a body before it is answered 408.
    pub body_timeout: Duration,
    /// How long a request may take before it is answered 503.
    pub request_timeout: Duration,
}

impl Shared {
    pub fn new(config: &IngressConfig, secret: &JwtSecret, backend: Backend) -> Self {
        Self {
            backend,
            verifier: Arc::new(
                TokenVerifier::new(secret)
                    .accepting_previous(config.jwt_previous_secret.clone().map(JwtSecret::new).as_ref())
                    .requiring(config.jwt_issuer.as_deref(), config.jwt_audience.as_deref()),
            ),
            idempotency_ttl: config.idempotency_ttl,
            shutdown: CancellationToken::new(),
            agents_seen: Arc::default(),
            dev_tokens: None,
            audience: config.audience(),
            admitting: Arc::default(),
            rate_limit: Arc::new(limits::RateLimit::new(config.rate_limit, config.rate_burst)),
            waiters: Arc::new(Semaphore::new(config.max_waiters)),
            body_timeout: config.body_timeout,
            request_timeout: config.request_timeout,
        }
    }
}

/// Every route of the API (see [`routes::api`]) and the web page (see [`web`]), with
/// metrics, fallbacks and limits.
pub fn router(state: AppState) -> Router {
    let (routes, _document) = routes::api().split_for_parts();
    let mut routes = routes.merge(web::pages());
    if state.dev_tokens.is_some() {
        routes = routes.merge(web::dev_token());
    }
    let track = axum::middleware::from_fn(metrics::track);
    routes
        // Inside the metrics, so that a request answered 503 for taking too long counts.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), within_request_timeout))
        .route_layer(track.clone())
        // Applies to the routes above only, so it comes after them. The fallbacks' answers
        // are counted too (an unknown path as route `unmatched`): a client probing for
        // paths shows up in the metrics.
        .method_not_allowed_fallback(routes::method_not_allowed.layer(track.clone()))
        .fallback(routes::route_not_found.layer(track))
        .layer(DefaultBodyLimit::max(json::BODY_LIMIT))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// A request still unanswered after the request timeout ([`Shared::request_timeout`],
/// 60 s) is answered 503, a problem document like any other: only a backend that stopped
/// answering gets it there.
async fn within_request_timeout(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::from(domain::PortError::Unavailable("the request timed out".into())).into_response(),
    }
}

/// The span of one HTTP request: it continues the caller's W3C `traceparent` (or starts a
/// trace), and the command it admits carries that trace on (docs/contract.md §6). Its
/// `trace_id` and `request_id` fields go on every log line written while it is handled.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let parent = TraceParent::parse(request.headers().get("traceparent").and_then(|v| v.to_str().ok()));
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        trace_id = parent.as_ref().map(TraceParent::trace_id),
        request_id = tracing::field::Empty,
    );
    infra::logging::continue_trace(&span, parent);
    span
}

/// The API, bound to its address and ready to serve.
pub struct Ingress {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: Shared,
    config: IngressConfig,
}

impl Ingress {
    /// Binds `config.http_addr` (port 0 picks a free port; see [`Ingress::local_addr`]).
    pub async fn build(config: &IngressConfig, secret: JwtSecret, backend: Backend) -> Result<Ingress, std::io::Error> {
        metrics::install();
        let listener = TcpListener::bind(config.http_addr).await?;
        let local_addr = listener.local_addr()?;
        let state = Shared::new(config, &secret, backend);
        Ok(Ingress { listener, local_addr, state, config: config.clone() })
    }

    /// Serves `POST /dev/token` (mint a token for any `sub` and role, for the web page's
    /// sign-in). Only `usher dev` asks for it: `usher ingress` never serves that route.
    pub fn with_dev_tokens(mut self, secret: JwtSecret) -> Self {
        self.state.dev_tokens = Some(secret);
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` fires, then stops accepting, answers long polls at once and
    /// lets in-flight requests end (see [`serve_connections`]).
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), std::io::Error> {
        let Ingress { listener, local_addr, state, config } = self;
        let stopping = state.shutdown.clone();
        let app = router(AppState(Arc::new(state)));
        tracing::info!(addr = %local_addr, "ingress listening");
        serve_connections(listener, app, ConnectionLimits::of(&config), shutdown, stopping).await;
        tracing::info!("ingress stopped");
        Ok(())
    }
}

/// What a listener allows its clients: the time to send a request's headers, how many
/// connections are served at once, and how long a graceful stop waits for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

impl ConnectionLimits {
    /// The API's limits (`USHER_MAX_CONNECTIONS` and the fixed timers), which the
    /// operations listener of a worker-only process shares.
    pub fn of(config: &IngressConfig) -> Self {
        Self {
            header_timeout: config.header_timeout,
            max_connections: config.max_connections,
            shutdown_grace: config.shutdown_grace,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` fires; then stops accepting, fires
/// `stopping` (long polls answer at once, idle keep-alive connections close) and lets
/// in-flight requests end. Connections still open after the grace (a stalled client) are
/// dropped.
///
/// Connections are accepted here rather than by `axum::serve`, which sets no timer:
/// hyper's HTTP/1 server closes a connection whose headers take longer than the header
/// timeout, and at most `max_connections` are served at once (the rest wait in the listen
/// backlog).
async fn serve_connections(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
    stopping: CancellationToken,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        connections.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    stopping.cancel();
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(open = connections.len(), "dropping connections still open after the shutdown grace");
        }
    }
    connections.shutdown().await;
}

/// `/metrics` and `/health/*` without the API, for processes that run only workers.
/// It holds its clients to the same limits as the API (see [`serve_connections`]), and
/// counts its requests in the same HTTP series.
pub struct Operations {
    listener: TcpListener,
    local_addr: SocketAddr,
    backend: Backend,
    limits: ConnectionLimits,
}

impl Operations {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn build(
        addr: SocketAddr,
        backend: Backend,
        limits: ConnectionLimits,
    ) -> Result<Operations, std::io::Error> {
        metrics::install();
        metrics::register_scrape_series();
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        Ok(Operations { listener, local_addr, backend, limits })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), std::io::Error> {
        tracing::info!(addr = %self.local_addr, "metrics and health listening");
        let app = routes::ops::operations(self.backend);
        serve_connections(self.listener, app, self.limits, shutdown, CancellationToken::new()).await;
        Ok(())
    }
}
