//! What operators watch, gathered in one place over the ports: every queue by state with
//! its DLQ's depth, and the outbox backlog. `usher status`, `GET /v1/admin/status` and the
//! workers' queue gauges (`workers::status::Sampler`) all read it from here.
//!
//! On AWS, [`queues`] is one `GetQueueAttributes` call per queue and per DLQ. SQS cannot
//! tell the age of a queue's oldest message without receiving it; there the age is the
//! lag this process's own consumers last observed ([`observe_lag`]: the oldest message of
//! their latest receive), and unknown (`null`) for queues it does not consume.

use crate::Backend;
use domain::PortError;
use domain::queue::Queue;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The whole picture, as `usher status --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Status {
    pub queues: Vec<QueueStatus>,
    pub outbox: OutboxStatus,
}

/// One queue and its DLQ.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct QueueStatus {
    /// The logical name (`booking-commands`).
    #[schema(example = "booking-commands")]
    pub queue: String,
    /// Ready to be received.
    pub visible: u64,
    /// Received and not yet deleted, or waiting out a retry's backoff.
    pub in_flight: u64,
    /// How long the oldest visible or in-flight message has waited; `null` when there is
    /// none, or on AWS when no consumer in this process has seen the queue lately.
    pub oldest_age_seconds: Option<f64>,
    /// Messages in `<queue>-dlq`.
    pub dlq_depth: u64,
}

/// Events and messages committed but not yet delivered by the relay.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OutboxStatus {
    pub pending: u64,
    /// Age of the oldest pending entry; `null` when nothing is pending.
    pub oldest_age_seconds: Option<f64>,
}

/// Every queue, in [`Queue::ALL`] order.
pub async fn queues(backend: &Backend) -> Result<Vec<QueueStatus>, PortError> {
    let mut out = Vec::with_capacity(Queue::ALL.len());
    for queue in Queue::ALL {
        let (source, dlq) = tokio::try_join!(backend.queues.stats(queue.source()), backend.queues.depth(queue.dlq()))?;
        // An empty queue has no oldest message, whatever a consumer saw earlier; the
        // observed lag only stands in for an age the store cannot tell (SQS).
        let empty = source.visible + source.in_flight == 0;
        let oldest = source.oldest_age.map(|d| d.as_secs_f64()).or_else(|| observed_lag(queue).filter(|_| !empty));
        out.push(QueueStatus {
            queue: queue.name().to_owned(),
            visible: source.visible,
            in_flight: source.in_flight,
            oldest_age_seconds: oldest.map(round_ms),
            dlq_depth: dlq,
        });
    }
    Ok(out)
}

pub async fn outbox(backend: &Backend) -> Result<OutboxStatus, PortError> {
    let backlog = backend.outbox.backlog().await?;
    let now = backend.clock.now();
    Ok(OutboxStatus {
        pending: backlog.pending,
        oldest_age_seconds: backlog.oldest.map(|t| round_ms((now - t).as_seconds_f64().max(0.0))),
    })
}

pub async fn gather(backend: &Backend) -> Result<Status, PortError> {
    let (queues, outbox) = tokio::try_join!(queues(backend), outbox(backend))?;
    Ok(Status { queues, outbox })
}

fn round_ms(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}

/// The lag each queue's consumers in this process last observed, in seconds.
fn observed() -> &'static Mutex<HashMap<Queue, f64>> {
    static OBSERVED: OnceLock<Mutex<HashMap<Queue, f64>>> = OnceLock::new();
    OBSERVED.get_or_init(Mutex::default)
}

/// Called by the consumer after each receive: how long the oldest message it got had
/// waited (zero for an empty receive).
pub fn observe_lag(queue: Queue, seconds: f64) {
    if let Ok(mut map) = observed().lock() {
        map.insert(queue, seconds);
    }
}

fn observed_lag(queue: Queue) -> Option<f64> {
    observed().lock().ok().and_then(|map| map.get(&queue).copied())
}
