//! The sampler (one per process) that keeps the queue gauges current from
//! [`infra::status::queues`]: `usher_queue_visible`, `usher_queue_in_flight`,
//! `usher_queue_oldest_age_seconds` and `usher_dlq_depth`, each by `queue`. On AWS each
//! sample costs one `GetQueueAttributes` call per queue and per DLQ, so it runs no more
//! often than every 15 s.

use domain::PortError;
use infra::Backend;
use infra::BackendKind;
use infra::status::queues;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the queue gauges are sampled: SQS's attribute reads are billed calls, so
/// not more than every 15 s there (docs/contract.md §6).
pub fn sample_every(kind: BackendKind) -> Duration {
    match kind {
        BackendKind::Embedded => Duration::from_secs(5),
        BackendKind::Aws => Duration::from_secs(15),
    }
}

/// Sets the queue gauges from [`queues`], every `every`, until shutdown.
pub struct Sampler {
    backend: Backend,
    every: Duration,
}

impl Sampler {
    pub fn new(backend: Backend, every: Duration) -> Self {
        Self { backend, every }
    }

    /// One sample: reads every queue and sets its gauges.
    pub async fn sample(&self) -> Result<(), PortError> {
        for q in queues(&self.backend).await? {
            let queue = q.queue;
            metrics::gauge!("usher_queue_visible", "queue" => queue.clone()).set(q.visible as f64);
            metrics::gauge!("usher_queue_in_flight", "queue" => queue.clone()).set(q.in_flight as f64);
            metrics::gauge!("usher_dlq_depth", "queue" => queue.clone()).set(q.dlq_depth as f64);
            // Nothing waiting is an age of zero; an unknown age (AWS, a queue this process
            // does not consume) sets nothing rather than a made-up zero.
            let age = q.oldest_age_seconds.or((q.visible + q.in_flight == 0).then_some(0.0));
            if let Some(age) = age {
                metrics::gauge!("usher_queue_oldest_age_seconds", "queue" => queue).set(age);
            }
        }
        Ok(())
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(self.every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Err(e) = self.sample().await {
                tracing::warn!(error = %e, "cannot sample the queues");
            }
        }
    }
}
