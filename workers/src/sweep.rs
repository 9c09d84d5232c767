//! Housekeeping that keeps the guarantees when a process dies at a bad moment:
//! - commands admitted but never queued (ingress died between claim and send) are
//!   re-queued; workers are idempotent on the request id, so a duplicate is harmless;
//! - requests whose message the queue's own redrive moved to a DLQ (it crashed the
//!   worker too often) are marked `dead_lettered`;
//! - idempotency keys past their retention are forgotten.

use crate::commands::mark_dead_lettered;
use domain::PortError;
use domain::clock;
use domain::command::CommandEnvelope;
use domain::ports::{ATTR_REQUEST_ID, ATTR_TYPE, OutgoingMessage, Queue};
use infra::Backend;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct Sweeper {
    backend: Backend,
    every: Duration,
    /// Admissions younger than this are left to their admitter.
    grace: Duration,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub requeued: usize,
    pub marked_dead: usize,
    pub keys_forgotten: u64,
}

impl Sweeper {
    pub fn new(backend: Backend, every: Duration, grace: Duration) -> Self {
        Self { backend, every, grace }
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.every) => {}
            }
            match self.sweep_once().await {
                Ok(r) if r != SweepReport::default() => tracing::info!(?r, "sweep"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sweep failed"),
            }
        }
    }

    pub async fn sweep_once(&self) -> Result<SweepReport, PortError> {
        let now = clock::now();
        let requeued = self.requeue(now - self.grace).await?;
        let marked_dead = self.mark_redriven().await?;
        let keys_forgotten = self.backend.requests.purge_expired_keys(now).await?;
        Ok(SweepReport { requeued, marked_dead, keys_forgotten })
    }

    async fn requeue(&self, claimed_before: clock::Timestamp) -> Result<usize, PortError> {
        let stranded = self.backend.requests.unqueued(claimed_before, 100).await?;
        let mut by_queue: std::collections::HashMap<Queue, Vec<&CommandEnvelope>> = Default::default();
        for command in &stranded {
            by_queue.entry(command.command.queue()).or_default().push(command);
        }
        for (queue, commands) in by_queue {
            let messages = commands.iter().map(|c| OutgoingMessage::command(c)).collect();
            self.backend.queues.send_batch(queue.source(), messages).await?;
            let ids: Vec<_> = commands.iter().map(|c| c.request_id.clone()).collect();
            self.backend.requests.mark_queued(&ids).await?;
            tracing::info!(queue = queue.name(), count = ids.len(), "re-queued stranded commands");
        }
        Ok(stranded.len())
    }

    /// Looks at the head of each DLQ without taking anything (visibility stays zero).
    async fn mark_redriven(&self) -> Result<usize, PortError> {
        let mut marked = 0;
        for queue in [Queue::BookingCommands, Queue::TicketCommands] {
            let dead = self.backend.queues.receive(queue.dlq(), 10, Duration::ZERO, Duration::ZERO).await?;
            for m in dead {
                let Some(request_id) = m.attributes.get(ATTR_REQUEST_ID) else { continue };
                let kind = m.attributes.get(ATTR_TYPE).cloned().unwrap_or_default();
                let events = mark_dead_lettered(
                    &self.backend,
                    &request_id.as_str().into(),
                    &kind,
                    "sweep",
                    "the queue's redrive moved it to the DLQ (it exceeded the receive limit)",
                )
                .await?;
                if !events.is_empty() {
                    self.backend.bus.publish(&events).await?;
                    marked += 1;
                }
            }
        }
        Ok(marked)
    }
}
