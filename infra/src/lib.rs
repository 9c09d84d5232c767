//! Adapters for the domain's ports, and the configuration that picks them.
//!
//! # Layout
//! - [`config`]: the typed [`Settings`], read once from the environment.
//! - [`embedded`]: the default backend, one SQLite file; a real, crash-safe product backend.
//! - [`aws`]: SQS, SNS and DynamoDB.
//! - `contract`: the port contract suite every adapter runs (`port_contract_tests!`), one
//!   module per port; compiled only for tests (the `contract` feature).
//! - [`logging`]: JSON log lines on stderr, filtered by `USHER_LOG`; OpenTelemetry spans
//!   (OTLP export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set) and the W3C `traceparent`
//!   helpers that carry a trace across the queue.
//! - [`status`]: every queue and the outbox backlog, for operators.
//! - [`faults`]: fault injection at the port boundary, for tests.

pub mod aws;
pub mod config;
#[cfg(any(test, feature = "contract"))]
pub mod contract;
pub mod embedded;
pub mod faults;
pub mod logging;
pub mod status;

pub use config::{BackendKind, ConfigError, Settings};

use domain::PortError;
use domain::clock::Clock;
use domain::ports::{
    AnalyticsStore, BookingStore, CatalogStore, EventBus, MessageQueue, NotificationStore, Outbox, RequestStore,
    TicketStore, UserDirectory,
};
use std::sync::Arc;

/// Every port, wired to one backend. Cheap to clone.
#[derive(Clone)]
pub struct Backend {
    /// Where the services (ingress, workers) read the time; the adapters keep to the wall
    /// clock for what the backend itself times (visibility, delays).
    pub clock: Arc<dyn Clock>,
    pub queues: Arc<dyn MessageQueue>,
    pub bus: Arc<dyn EventBus>,
    /// What committed commands left for the relay to deliver to `bus` and `queues`.
    pub outbox: Arc<dyn Outbox>,
    pub requests: Arc<dyn RequestStore>,
    pub catalog: Arc<dyn CatalogStore>,
    pub bookings: Arc<dyn BookingStore>,
    pub notifications: Arc<dyn NotificationStore>,
    pub analytics: Arc<dyn AnalyticsStore>,
    pub tickets: Arc<dyn TicketStore>,
    pub users: Arc<dyn UserDirectory>,
}

impl Backend {
    /// Connects to the configured backend. The embedded one creates its file and schema.
    pub async fn connect(settings: &Settings) -> Result<Backend, PortError> {
        match settings.backend {
            BackendKind::Embedded => embedded::open(settings).map(|db| db.backend()),
            BackendKind::Aws => aws::connect(settings).await,
        }
    }

    /// As [`Backend::connect`], for the commands that only read or change what is there
    /// (`usher status`, `usher dlq`): on embedded the store must exist already, as the
    /// queues must on AWS.
    pub async fn connect_existing(settings: &Settings) -> Result<Backend, PortError> {
        if settings.backend == BackendKind::Embedded {
            embedded::require_store(settings)?;
        }
        Self::connect(settings).await
    }

    /// Creates (idempotently) the queues, DLQs, topic, subscriptions and tables.
    pub async fn setup(settings: &Settings) -> Result<(), PortError> {
        match settings.backend {
            BackendKind::Embedded => embedded::open(settings).map(|_| ()),
            BackendKind::Aws => aws::setup(settings).await,
        }
    }

    /// Succeeds when the store and the queues answer.
    pub async fn ready(&self) -> Result<(), PortError> {
        self.requests.ping().await?;
        self.queues.ping().await
    }
}
