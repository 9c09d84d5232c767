//! Housekeeping that keeps the guarantees when a process dies at a bad moment:
//! - commands admitted but never queued (ingress died between claim and send) are
//!   re-queued; workers are idempotent on the request id, so a duplicate is harmless; a
//!   stored command that no longer parses is dead-lettered instead;
//! - requests whose message the queue's own redrive moved to a DLQ (it crashed the
//!   worker too often) are marked `dead_lettered`;
//! - idempotency keys past their retention are forgotten (on AWS, DynamoDB's TTL does it).
//!
//! Every step, and every row within a step, stands alone: one that fails is logged and
//! counted, and the rest of the sweep goes on.

use crate::commands::mark_dead_lettered;
use domain::clock;
use domain::command::CommandEnvelope;
use domain::queue::{ATTR_FAILURE_REASON, ATTR_REQUEST_ID, ATTR_TYPE, Queue};
use infra::Backend;
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A request changed this recently (a replay reopened it) is left alone by the redrive
/// check: its DLQ copy may be one a replay has not deleted yet.
pub const REDRIVE_GRACE: Duration = Duration::from_secs(300);

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
    /// Steps or rows that failed this time; the next sweep tries them again.
    pub failures: usize,
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
            let report = self.sweep_once().await;
            if report != SweepReport::default() {
                tracing::info!(?report, "sweep");
            }
        }
    }

    pub async fn sweep_once(&self) -> SweepReport {
        let mut report = SweepReport::default();
        self.requeue(self.backend.clock.now() - self.grace, &mut report).await;
        self.mark_redriven(&mut report).await;
        match self.backend.requests.purge_expired_keys(self.backend.clock.now()).await {
            Ok(n) => report.keys_forgotten = n,
            Err(e) => {
                tracing::warn!(error = %e, "cannot forget expired idempotency keys");
                report.failures += 1;
            }
        }
        report
    }

    async fn requeue(&self, claimed_before: clock::Timestamp, report: &mut SweepReport) {
        let stranded = match self.backend.requests.unqueued(claimed_before, 100).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list unqueued requests");
                report.failures += 1;
                return;
            }
        };
        let mut by_queue: HashMap<Queue, Vec<CommandEnvelope>> = HashMap::new();
        for s in stranded {
            match s.command {
                Ok(command) => by_queue.entry(command.command.queue()).or_default().push(command),
                Err(why) => {
                    // It can never run: end it where operators see it.
                    tracing::error!(request_id = %s.request_id, %why, "a stored command does not parse");
                    let reason = format!("the stored command does not parse: {why}");
                    match mark_dead_lettered(&self.backend, &s.request_id, &s.kind, "sweep", &reason).await {
                        Ok(_) => report.marked_dead += 1,
                        Err(_) => report.failures += 1,
                    }
                }
            }
        }
        for (queue, commands) in by_queue {
            let messages = commands.iter().map(CommandEnvelope::message).collect();
            if let Err(e) = self.backend.queues.send_batch(queue.source(), messages).await {
                tracing::warn!(queue = queue.name(), error = %e, "cannot re-queue stranded commands");
                report.failures += 1;
                continue;
            }
            let ids: Vec<_> = commands.iter().map(|c| c.request_id.clone()).collect();
            if let Err(e) = self.backend.requests.mark_queued(&ids).await {
                // Sent: the next sweep sends them again, which workers dedupe.
                tracing::warn!(queue = queue.name(), error = %e, "re-queued but not marked queued");
                report.failures += 1;
            }
            tracing::info!(queue = queue.name(), count = ids.len(), "re-queued stranded commands");
            report.requeued += ids.len();
        }
    }

    /// Looks at the head of each DLQ without taking anything (visibility stays zero). A
    /// message a worker dead-lettered carries `failure_reason` and its request was marked
    /// then; only the ones the queue's redrive moved are marked here.
    async fn mark_redriven(&self, report: &mut SweepReport) {
        for queue in [Queue::BookingCommands, Queue::TicketCommands] {
            let dead = match self.backend.queues.receive(queue.dlq(), 10, Duration::ZERO, Duration::ZERO).await {
                Ok(dead) => dead,
                Err(e) => {
                    tracing::warn!(queue = queue.name(), error = %e, "cannot look at the DLQ");
                    report.failures += 1;
                    continue;
                }
            };
            for m in dead.iter().filter(|m| !m.attributes.contains_key(ATTR_FAILURE_REASON)) {
                let Some(request_id) = m.attributes.get(ATTR_REQUEST_ID) else { continue };
                let request_id = request_id.as_str().into();
                match self.backend.requests.get(&request_id).await {
                    Ok(Some(r)) if r.doc.status.is_terminal() => continue,
                    Ok(Some(r)) if self.backend.clock.now() - r.doc.updated_at < REDRIVE_GRACE => continue,
                    Ok(_) => {}
                    Err(_) => {
                        report.failures += 1;
                        continue;
                    }
                }
                let kind = m.attributes.get(ATTR_TYPE).cloned().unwrap_or_default();
                let reason = "the queue's redrive moved it to the DLQ (it exceeded the receive limit)";
                match mark_dead_lettered(&self.backend, &request_id, &kind, "sweep", reason).await {
                    Ok(true) => report.marked_dead += 1,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(%request_id, error = %e, "cannot mark a redriven request");
                        report.failures += 1;
                    }
                }
            }
        }
    }
}
