//! The outbox relay: delivers what committed commands left in the outbox (events to the
//! topic, messages to their queues) and forgets each entry once delivered. It runs apart
//! from any command message, so a bus outage only delays events: the relay keeps trying,
//! and the commands themselves were acknowledged as soon as they committed.
//!
//! Several relays (one per worker process) may deliver the same entry twice; consumers
//! dedupe events by id and commands by request id.

use crate::backoff::Backoff;
use domain::PortError;
use domain::outbox::{OutboxEntry, OutboxItem};
use domain::queue::{OutgoingMessage, QueueAddr};
use infra::Backend;
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Entries one round takes.
const BATCH: usize = 100;

/// How often the backlog is also written to the log (the CloudWatch alarm's source).
const BACKLOG_LOG_EVERY: Duration = Duration::from_secs(60);

pub struct Relay {
    backend: Backend,
    /// The longest nap between rounds when nothing new was committed here.
    idle: Duration,
    /// How long a failing round waits before the next (grows with each failure).
    backoff: Backoff,
    /// How often the backlog gauges are refreshed.
    gauge_every: Duration,
}

/// What one round delivered.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RelayReport {
    pub delivered: usize,
    pub failed: usize,
}

impl Relay {
    pub fn new(backend: Backend, idle: Duration) -> Self {
        Self {
            backend,
            idle,
            backoff: Backoff { base: Duration::from_millis(200), max: Duration::from_secs(10) },
            gauge_every: Duration::from_secs(5),
        }
    }

    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        let mut gauged = tokio::time::Instant::now() - self.gauge_every;
        let mut logged = tokio::time::Instant::now() - BACKLOG_LOG_EVERY;
        loop {
            if gauged.elapsed() >= self.gauge_every {
                let log = logged.elapsed() >= BACKLOG_LOG_EVERY;
                self.record_backlog(log).await;
                gauged = tokio::time::Instant::now();
                if log {
                    logged = gauged;
                }
            }
            let round = self.relay_once().await;
            let pause = match round {
                Ok(r) if r.failed == 0 && r.delivered == BATCH => {
                    failures = 0;
                    continue;
                }
                Ok(r) if r.failed == 0 => {
                    failures = 0;
                    None
                }
                Ok(_) | Err(_) => {
                    if let Err(e) = &round {
                        tracing::warn!(error = %e, "cannot read the outbox");
                    }
                    failures = failures.saturating_add(1);
                    Some(self.backoff.delay(failures.min(8)))
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => {
                    // One last round, so what committed before the stop goes out now.
                    let _ = self.relay_once().await;
                    return;
                }
                _ = async {
                    match pause {
                        Some(pause) => tokio::time::sleep(pause).await,
                        None => self.backend.outbox.wait(self.idle).await,
                    }
                } => {}
            }
        }
    }

    /// Delivers up to one batch of pending entries: events in one publish, messages in
    /// one send per queue. Entries are forgotten only once delivered.
    pub async fn relay_once(&self) -> Result<RelayReport, PortError> {
        let pending = self.backend.outbox.pending(BATCH).await?;
        let mut report = RelayReport::default();
        if pending.is_empty() {
            return Ok(report);
        }
        let now = self.backend.clock.now();
        let mut events = Vec::new();
        let mut event_ids = Vec::new();
        let mut messages: HashMap<QueueAddr, Vec<(String, OutgoingMessage)>> = HashMap::new();
        let mut corrupt = Vec::new();
        for OutboxItem { id, entry, .. } in pending {
            match entry {
                OutboxEntry::Event { event } => {
                    events.push(event);
                    event_ids.push(id);
                }
                OutboxEntry::Message { message } => match message.address() {
                    Some(queue) => messages.entry(queue).or_default().push((id, message.outgoing(now))),
                    None => corrupt.push(id),
                },
            }
        }
        let mut delivered = Vec::new();
        if !events.is_empty() {
            match self.backend.bus.publish(&events).await {
                Ok(()) => delivered.extend(event_ids),
                Err(e) => {
                    tracing::warn!(error = %e, count = events.len(), "cannot publish pending events; keeping them");
                    report.failed += events.len();
                }
            }
        }
        for (queue, batch) in messages {
            let (ids, batch): (Vec<String>, Vec<OutgoingMessage>) = batch.into_iter().unzip();
            match self.backend.queues.send_batch(queue, batch).await {
                Ok(()) => delivered.extend(ids),
                Err(e) => {
                    tracing::warn!(queue = %queue.name(), error = %e, "cannot send pending messages; keeping them");
                    report.failed += ids.len();
                }
            }
        }
        if !corrupt.is_empty() {
            // Names a queue this build does not know: it can never be delivered.
            tracing::error!(ids = ?corrupt, "dropping outbox entries for unknown queues");
            delivered.extend(corrupt);
        }
        report.delivered = delivered.len();
        metrics::counter!("usher_outbox_delivered_total").increment(delivered.len() as u64);
        self.backend.outbox.delivered(&delivered).await?;
        Ok(report)
    }

    /// Sets the backlog gauges; with `log`, also writes the `outbox backlog` log line that
    /// CloudWatch turns into the outbox-age alarm's metric (a log metric filter in
    /// terraform's observability module: no API call from here).
    async fn record_backlog(&self, log: bool) {
        match self.backend.outbox.backlog().await {
            Ok(backlog) => {
                let age =
                    backlog.oldest.map(|t| (self.backend.clock.now() - t).as_seconds_f64().max(0.0)).unwrap_or(0.0);
                metrics::gauge!("usher_outbox_pending").set(backlog.pending as f64);
                metrics::gauge!("usher_outbox_oldest_age_seconds").set(age);
                if log {
                    tracing::info!(pending = backlog.pending, oldest_age_seconds = age, "outbox backlog");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot measure the outbox backlog"),
        }
    }
}
