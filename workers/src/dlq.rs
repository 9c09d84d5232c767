//! Operator tools for dead-letter queues: list, peek, replay, purge. They work through the
//! queue port alone (receive → send → delete), so they behave the same on every backend.

use domain::PortError;
use domain::ids::RequestId;
use domain::queue::{
    ATTR_FAILED_AT, ATTR_FAILURE_REASON, ATTR_RECEIVE_COUNT, ATTR_REQUEST_ID, ATTR_TYPE, OutgoingMessage, Queue,
    Receipt, ReceivedMessage,
};
use infra::Backend;
use serde::Serialize;
use std::collections::HashSet;
use std::time::Duration;

/// Long enough to finish one peek or replay without the same message coming back.
const HOLD_WHILE_WORKING: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Serialize)]
pub struct QueueDepth {
    pub queue: String,
    pub depth: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeadMessage {
    pub message_id: String,
    pub request_id: Option<String>,
    #[serde(rename = "type")]
    pub message_type: Option<String>,
    pub receive_count: u32,
    pub failed_at: Option<String>,
    pub failure_reason: Option<String>,
    pub body: String,
}

impl From<&ReceivedMessage> for DeadMessage {
    fn from(m: &ReceivedMessage) -> Self {
        let attr = |k: &str| m.attributes.get(k).cloned();
        Self {
            message_id: m.message_id.clone(),
            request_id: attr(ATTR_REQUEST_ID),
            message_type: attr(ATTR_TYPE),
            receive_count: attr(ATTR_RECEIVE_COUNT).and_then(|c| c.parse().ok()).unwrap_or(m.receive_count),
            failed_at: attr(ATTR_FAILED_AT),
            failure_reason: attr(ATTR_FAILURE_REASON),
            body: m.body.clone(),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct ReplayOptions {
    pub limit: Option<usize>,
    /// Messages per second; `None` is as fast as the backend takes them.
    pub rate: Option<f64>,
    /// Only messages whose `type` attribute equals this.
    pub message_type: Option<String>,
    pub dry_run: bool,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// Moved back to the source queue (with `--dry-run`: would be moved).
    pub moved: usize,
    /// Left in the DLQ: another type, or over the limit.
    pub skipped: usize,
    pub failed: usize,
}

pub struct DeadLetters {
    backend: Backend,
}

impl DeadLetters {
    pub fn new(backend: Backend) -> Self {
        Self { backend }
    }

    pub async fn list(&self) -> Result<Vec<QueueDepth>, PortError> {
        let mut depths = Vec::new();
        for q in Queue::ALL {
            depths.push(QueueDepth { queue: q.dlq().name(), depth: self.backend.queues.depth(q.dlq()).await? });
        }
        Ok(depths)
    }

    /// Up to `limit` messages, returned to the queue afterwards (visible again at once).
    pub async fn peek(&self, queue: Queue, limit: usize) -> Result<Vec<DeadMessage>, PortError> {
        let taken = self.take(queue, limit).await?;
        let peeked = taken.iter().map(DeadMessage::from).collect();
        self.give_back(queue, taken.iter().map(|m| &m.receipt)).await;
        Ok(peeked)
    }

    /// Moves messages back to their source queue, body and attributes unchanged: the
    /// request is reopened, the message sent, and only then deleted from the DLQ.
    pub async fn replay(&self, queue: Queue, options: &ReplayOptions) -> Result<ReplayReport, PortError> {
        let mut report = ReplayReport::default();
        let mut untouched: Vec<Receipt> = Vec::new();
        let mut seen = HashSet::new();
        // What this run moved back, by body: a worker may dead-letter it again while the
        // run goes on, as a new message with the same body. That copy stays here; moving
        // it again would go round for as long as the workers keep up.
        let mut moved = HashSet::new();
        let interval = options.rate.filter(|r| *r > 0.0).map(|r| Duration::from_secs_f64(1.0 / r));
        let mut next_send = tokio::time::Instant::now();
        'outer: loop {
            let batch = self.backend.queues.receive(queue.dlq(), 10, Duration::ZERO, HOLD_WHILE_WORKING).await?;
            if batch.is_empty() {
                break;
            }
            for m in batch {
                if !seen.insert(m.message_id.clone()) {
                    untouched.push(m.receipt);
                    break 'outer;
                }
                if moved.contains(&m.body) {
                    untouched.push(m.receipt);
                    continue;
                }
                let wanted = options.message_type.as_ref().is_none_or(|t| m.attributes.get(ATTR_TYPE) == Some(t));
                let over_limit = options.limit.is_some_and(|l| report.moved + report.failed >= l);
                if !wanted || over_limit || options.dry_run {
                    if wanted && !over_limit {
                        report.moved += 1;
                    } else {
                        report.skipped += 1;
                    }
                    untouched.push(m.receipt);
                    continue;
                }
                if let Some(every) = interval {
                    tokio::time::sleep_until(next_send).await;
                    next_send = tokio::time::Instant::now() + every;
                }
                match self.move_back(queue, &m).await {
                    Ok(()) => {
                        report.moved += 1;
                        moved.insert(m.body);
                    }
                    Err(e) => {
                        tracing::warn!(message_id = %m.message_id, error = %e, "replay failed");
                        report.failed += 1;
                        untouched.push(m.receipt);
                    }
                }
            }
        }
        self.give_back(queue, untouched.iter()).await;
        Ok(report)
    }

    /// Deletes every message of the DLQ. A request whose message the queue's redrive
    /// moved here may not be marked yet (the sweep does that): it is marked
    /// `dead_lettered` first, so purging never leaves a request without an end.
    pub async fn purge(&self, queue: Queue) -> Result<(), PortError> {
        let mut seen = HashSet::new();
        loop {
            let batch = self.backend.queues.receive(queue.dlq(), 10, Duration::ZERO, HOLD_WHILE_WORKING).await?;
            if batch.is_empty() || !batch.iter().any(|m| seen.insert(m.message_id.clone())) {
                break;
            }
            for m in batch.iter().filter(|m| !m.attributes.contains_key(ATTR_FAILURE_REASON)) {
                if let Some(id) = m.attributes.get(ATTR_REQUEST_ID) {
                    let kind = m.attributes.get(ATTR_TYPE).map(String::as_str).unwrap_or_default();
                    let reason = "purged from the DLQ by an operator";
                    crate::commands::mark_dead_lettered(
                        &self.backend,
                        &RequestId::from(id.as_str()),
                        kind,
                        "dlq",
                        reason,
                    )
                    .await?;
                }
            }
        }
        self.backend.queues.purge(queue.dlq()).await
    }

    async fn move_back(&self, queue: Queue, m: &ReceivedMessage) -> Result<(), PortError> {
        // Reopen first: a worker that got the message before its request reopened
        // would find it terminal and drop it.
        let request_id = m.attributes.get(ATTR_REQUEST_ID).map(|r| RequestId::from(r.as_str()));
        if let Some(id) = &request_id {
            self.backend.requests.reopen(id, self.backend.clock.now()).await?;
        }
        let message = OutgoingMessage::new(m.body.clone(), m.attributes.clone());
        if let Err(e) = self.backend.queues.send_batch(queue.source(), vec![message]).await {
            if let Some(id) = &request_id {
                let reason = m.attributes.get(ATTR_FAILURE_REASON).map(String::as_str).unwrap_or("replay failed");
                let kind = m.attributes.get(ATTR_TYPE).map(String::as_str).unwrap_or_default();
                let _ = crate::commands::mark_dead_lettered(&self.backend, id, kind, "dlq", reason).await;
            }
            return Err(e);
        }
        self.backend.queues.delete_batch(queue.dlq(), vec![m.receipt.clone()]).await
    }

    async fn take(&self, queue: Queue, limit: usize) -> Result<Vec<ReceivedMessage>, PortError> {
        let mut taken: Vec<ReceivedMessage> = Vec::new();
        while taken.len() < limit {
            let batch = self
                .backend
                .queues
                .receive(queue.dlq(), (limit - taken.len()).min(10), Duration::ZERO, HOLD_WHILE_WORKING)
                .await?;
            if batch.is_empty() {
                break;
            }
            taken.extend(batch);
        }
        Ok(taken)
    }

    async fn give_back<'a>(&self, queue: Queue, receipts: impl Iterator<Item = &'a Receipt>) {
        for r in receipts {
            if let Err(e) = self.backend.queues.change_visibility(queue.dlq(), r, Duration::ZERO).await {
                tracing::warn!(error = %e, "cannot make a peeked message visible again; it will be after its timeout");
            }
        }
    }
}
