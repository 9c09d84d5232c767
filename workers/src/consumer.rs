//! The consumer loop, written once for every pool.
//!
//! One step, [`Consumer::process_batch`], takes a received batch: the handler applies each
//! message concurrently (or the whole batch in one call, for a pool whose
//! [`Handler::handle_batch`] does), committing its effects with its events in the outbox; whatever
//! follow-up messages the handlers asked for are sent; then the batch is deleted in one
//! call. A message is deleted once its effect and outbox entries are committed, never
//! before, and never later than that for want of a bus: the relay publishes the events.
//! (On embedded a command's own transaction, and the analytics fold's, already deleted
//! the message, see [`domain::request::Delivery`]: the handler says so, and the loop
//! sends no delete for it.)
//!
//! Each message is handled in its own span, which continues the trace its `traceparent`
//! attribute names and is timed into `usher_handler_duration_seconds{pool}`.

use crate::backoff::Backoff;
use async_trait::async_trait;
use domain::PortError;
use domain::clock;
use domain::error::Disposition;
use domain::queue::{
    ATTR_FAILED_AT, ATTR_FAILURE_REASON, ATTR_RECEIVE_COUNT, ATTR_REQUEST_ID, ATTR_TRACEPARENT, ATTR_TYPE,
    OutgoingMessage, Queue, QueueAddr, Receipt, ReceivedMessage,
};
use infra::Backend;
use infra::logging::TraceParent;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// What applying one message asks for beyond its committed effects: messages to send
/// before it is deleted (a hold's expiry re-delaying itself). Everything a command
/// commits goes through the outbox instead.
#[derive(Debug, Default)]
pub struct Effects {
    pub follow_ups: Vec<(QueueAddr, OutgoingMessage)>,
    /// The store deleted the message with the effects (see
    /// [`Completion::acknowledged`](domain::ports::Completion)): nothing to delete.
    pub acknowledged: bool,
}

/// Why a message was not applied.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HandlerError {
    /// May pass later: retried with backoff until the last allowed receive.
    #[error("{0}")]
    Transient(String),
    /// Will never pass (unparseable, or a bug): dead-lettered at once.
    #[error("{0}")]
    Poison(String),
}

impl From<PortError> for HandlerError {
    fn from(e: PortError) -> Self {
        match e.disposition() {
            Disposition::Retry => HandlerError::Transient(e.to_string()),
            Disposition::DeadLetter => HandlerError::Poison(e.to_string()),
        }
    }
}

/// What a pool adds to the loop.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// The pool's name, used in event sources (`/usher/<pool>`) and logs.
    fn pool(&self) -> &'static str;

    /// Called once per batch before the messages are applied (e.g. to mark them
    /// `processing` in one write). Failures here are logged, never fatal.
    async fn before_batch(&self, _messages: &[ReceivedMessage]) {}

    async fn handle(&self, message: &ReceivedMessage) -> Result<Effects, HandlerError>;

    /// Applies a whole batch in one go (say, in one write), one outcome per message in
    /// order. `None`, the default, has the loop [`Handler::handle`] each message instead.
    async fn handle_batch(&self, _messages: &[ReceivedMessage]) -> Option<Vec<Result<Effects, HandlerError>>> {
        None
    }

    /// The message is now in the DLQ: record that on its status document, with its
    /// `usher.request.dead_lettered` event in the outbox.
    async fn dead_lettered(&self, message: &ReceivedMessage, reason: &str) -> Result<(), PortError>;
}

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub queue: Queue,
    /// The most receive loops running at once; each holds up to one batch in flight (the
    /// backend's [`MessageQueue::max_batch`](domain::ports::MessageQueue::max_batch)).
    /// The loops follow the backlog: a full batch starts another loop (up to this), an
    /// empty receive (a whole long-poll wait with nothing) ends one (down to one).
    pub concurrency: usize,
    pub visibility: Duration,
    /// Long-poll wait of one receive.
    pub wait: Duration,
    /// The last allowed receive: on it, a failing message is dead-lettered by the worker.
    pub max_receives: u32,
    pub backoff: Backoff,
}

/// The most receive loops per pool unless told otherwise (`usher worker --concurrency`):
/// each holds one batch (up to 10 messages on SQS, 50 on embedded) in flight, so batches
/// pipeline through the store's group commit. An idle pool runs one.
pub const DEFAULT_RECEIVE_LOOPS: usize = 16;

/// Receive loops a pool keeps however idle it is.
const MIN_RECEIVE_LOOPS: usize = 1;

impl ConsumerConfig {
    /// `max_receives` is the backend's redrive limit; the backoff is the workers' own.
    pub fn new(queue: Queue, max_receives: u32, workers: &crate::config::WorkerConfig) -> Self {
        Self {
            queue,
            concurrency: DEFAULT_RECEIVE_LOOPS,
            visibility: Duration::from_secs(30),
            wait: Duration::from_secs(5),
            max_receives,
            backoff: Backoff { base: workers.retry_base, max: workers.retry_max },
        }
    }
}

/// How one batch ended; tests assert on it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchReport {
    pub done: usize,
    /// The ids of the messages left on the queue for a later receive (what a Lambda
    /// reports as `batchItemFailures`).
    pub retried: Vec<String>,
    pub dead_lettered: usize,
}

pub struct Consumer<H> {
    backend: Backend,
    handler: Arc<H>,
    config: ConsumerConfig,
    /// Receive loops running now.
    loops: AtomicUsize,
    tracker: TaskTracker,
}

impl<H: Handler> Consumer<H> {
    pub fn new(backend: Backend, handler: H, config: ConsumerConfig) -> Self {
        // Every outcome and the handler's histogram are on /metrics from the start, so
        // rates, alerts and dashboards see a zero rather than no series.
        for outcome in ["done", "retried", "dead_lettered"] {
            metrics::counter!("usher_messages_total", "pool" => handler.pool(), "outcome" => outcome).increment(0);
        }
        // Registering the histogram is what puts it on /metrics; a sample is not needed.
        let _ = metrics::histogram!("usher_handler_duration_seconds", "pool" => handler.pool());
        Self { backend, handler: Arc::new(handler), config, loops: AtomicUsize::new(0), tracker: TaskTracker::new() }
    }

    /// Receives and processes batches until `shutdown`, on as many loops as the backlog
    /// asks for (see [`ConsumerConfig::concurrency`]), then finishes the batches in
    /// flight. Messages not yet received stay on the queue.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        for _ in 0..MIN_RECEIVE_LOOPS.min(this.config.concurrency.max(1)) {
            this.start_loop(&shutdown);
        }
        shutdown.cancelled().await;
        this.tracker.close();
        this.tracker.wait().await;
        tracing::info!(pool = this.handler.pool(), "consumer stopped");
    }

    /// Starts one more receive loop, unless `concurrency` are running.
    fn start_loop(self: &Arc<Self>, shutdown: &CancellationToken) -> bool {
        let max = self.config.concurrency.max(1);
        if self.loops.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).is_err() {
            return false;
        }
        self.record_loops();
        let (this, shutdown) = (Arc::clone(self), shutdown.clone());
        self.tracker.spawn(async move { this.receive_loop(shutdown).await });
        true
    }

    /// Ends the calling loop's turn if more than the minimum are running.
    fn stop_loop(&self) -> bool {
        let stopped = self
            .loops
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n > MIN_RECEIVE_LOOPS).then(|| n - 1))
            .is_ok();
        if stopped {
            self.record_loops();
        }
        stopped
    }

    fn record_loops(&self) {
        metrics::gauge!("usher_pool_receive_loops", "pool" => self.handler.pool())
            .set(self.loops.load(Ordering::Acquire) as f64);
    }

    async fn receive_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let source = self.config.queue.source();
        let mut failures = 0u32;
        // A full receive means the queue has more waiting.
        let batch = self.backend.queues.max_batch();
        loop {
            let received = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.backend.queues.receive(source, batch, self.config.wait, self.config.visibility) => r,
            };
            match received {
                Ok(messages) if messages.is_empty() => {
                    failures = 0;
                    metrics::gauge!("usher_consumer_lag_seconds", "pool" => self.handler.pool()).set(0.0);
                    infra::status::observe_lag(self.config.queue, 0.0);
                    if self.stop_loop() {
                        return;
                    }
                }
                Ok(messages) => {
                    failures = 0;
                    record_lag(self.handler.pool(), self.config.queue, &messages);
                    if messages.len() >= batch {
                        self.start_loop(&shutdown);
                    }
                    // Not raced with shutdown: a received batch is finished, not dropped.
                    self.process_batch(messages).await;
                }
                Err(e) => {
                    failures += 1;
                    let pause = self.config.backoff.delay(failures.min(6));
                    tracing::warn!(pool = self.handler.pool(), error = %e, ?pause, "receive failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
    }

    /// Applies one received batch: the unit of work tests drive directly.
    pub async fn process_batch(&self, messages: Vec<ReceivedMessage>) -> BatchReport {
        // Shared with the handlers' tasks, not copied into each.
        let messages: Arc<[ReceivedMessage]> = messages.into();
        self.handler.before_batch(&messages).await;
        let pool = self.handler.pool();
        let spans: Vec<tracing::Span> = messages.iter().map(|m| message_span(pool, m)).collect();
        let outcomes = match self.apply_together(&messages, &spans).await {
            Some(outcomes) => outcomes,
            None => self.apply_each(&messages, &spans).await,
        };
        self.settle(&messages, outcomes, &spans).await
    }

    /// Applies the batch in one call of the handler, if it does batches. Each message still
    /// gets its own span (held until the batch is applied) and its own duration sample.
    async fn apply_together(
        &self,
        messages: &[ReceivedMessage],
        spans: &[tracing::Span],
    ) -> Option<Vec<Option<Result<Effects, HandlerError>>>> {
        let pool = self.handler.pool();
        let started = std::time::Instant::now();
        let mut outcomes: Vec<_> = self.handler.handle_batch(messages).await?.into_iter().map(Some).collect();
        let elapsed = started.elapsed().as_secs_f64();
        outcomes.resize_with(messages.len(), || None);
        for _ in spans {
            metrics::histogram!("usher_handler_duration_seconds", "pool" => pool).record(elapsed);
        }
        Some(outcomes)
    }

    /// Applies each message of the batch concurrently, each in its own span.
    async fn apply_each(
        &self,
        messages: &Arc<[ReceivedMessage]>,
        spans: &[tracing::Span],
    ) -> Vec<Option<Result<Effects, HandlerError>>> {
        let mut running = JoinSet::new();
        for (index, span) in spans.iter().cloned().enumerate() {
            let (handler, messages) = (Arc::clone(&self.handler), Arc::clone(messages));
            running.spawn(
                async move {
                    let started = std::time::Instant::now();
                    let outcome = handler.handle(&messages[index]).await;
                    metrics::histogram!("usher_handler_duration_seconds", "pool" => handler.pool())
                        .record(started.elapsed().as_secs_f64());
                    (index, outcome)
                }
                .instrument(span),
            );
        }
        let mut outcomes: Vec<Option<Result<Effects, HandlerError>>> = (0..messages.len()).map(|_| None).collect();
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok((index, outcome)) => outcomes[index] = Some(outcome),
                Err(e) => tracing::error!(error = %e, "a handler task failed"),
            }
        }
        outcomes
    }

    /// Acts on each message's outcome: follow-ups sent and the done deleted, the failed
    /// retried later or dead-lettered, each in its message's span (so its log lines and
    /// its `usher.request.dead_lettered` event carry the message's trace). `None` is a
    /// handler that panicked.
    async fn settle(
        &self,
        messages: &[ReceivedMessage],
        outcomes: Vec<Option<Result<Effects, HandlerError>>>,
        spans: &[tracing::Span],
    ) -> BatchReport {
        let source = self.config.queue.source();
        let mut report = BatchReport::default();
        let mut done: Vec<&ReceivedMessage> = Vec::new();
        let mut to_delete: Vec<Receipt> = Vec::new();
        let mut follow_ups: HashMap<QueueAddr, Vec<OutgoingMessage>> = HashMap::new();
        for ((message, outcome), span) in messages.iter().zip(outcomes).zip(spans) {
            // A handler task that panicked is a bug in the handler: dead-letter the message.
            let outcome = outcome.unwrap_or_else(|| Err(HandlerError::Poison("the handler panicked".to_owned())));
            match outcome {
                Ok(effects) => {
                    for (queue, m) in effects.follow_ups {
                        follow_ups.entry(queue).or_default().push(m);
                    }
                    if !effects.acknowledged {
                        to_delete.push(message.receipt.clone());
                    }
                    done.push(message);
                }
                Err(HandlerError::Transient(reason)) if message.receive_count < self.config.max_receives => {
                    let delay = self.config.backoff.delay(message.receive_count);
                    async {
                        tracing::info!(message_id = %message.message_id, receive_count = message.receive_count, ?delay, %reason, "retrying later");
                        if let Err(e) = self.backend.queues.change_visibility(source, &message.receipt, delay).await {
                            tracing::warn!(error = %e, "cannot delay the retry; the visibility timeout will");
                        }
                    }
                    .instrument(span.clone())
                    .await;
                    report.retried.push(message.message_id.clone());
                    metrics::counter!("usher_messages_total", "pool" => self.handler.pool(), "outcome" => "retried")
                        .increment(1);
                }
                Err(HandlerError::Transient(reason)) => {
                    let reason = format!("gave up after {} receives: {reason}", message.receive_count);
                    if self.dead_letter(message, &reason).instrument(span.clone()).await {
                        report.dead_lettered += 1;
                    }
                }
                Err(HandlerError::Poison(reason)) => {
                    if self.dead_letter(message, &reason).instrument(span.clone()).await {
                        report.dead_lettered += 1;
                    }
                }
            }
        }
        if done.is_empty() {
            return report;
        }

        // The effects and their events are committed; send what the handlers asked for
        // before acknowledging (send before delete). If that fails, the messages come back
        // and redoing them is a no-op that asks again.
        let mut delivered = Ok(());
        for (queue, batch) in follow_ups {
            if delivered.is_ok() {
                delivered = self.backend.queues.send_batch(queue, batch).await;
            }
        }
        if let Err(e) = delivered {
            tracing::warn!(pool = self.handler.pool(), error = %e, "cannot send the batch's follow-ups; it will be redelivered");
            for m in &done {
                let delay = self.config.backoff.delay(m.receive_count);
                let _ = self.backend.queues.change_visibility(source, &m.receipt, delay).await;
            }
            report.retried.extend(done.iter().map(|m| m.message_id.clone()));
            return report;
        }
        metrics::counter!("usher_messages_total", "pool" => self.handler.pool(), "outcome" => "done")
            .increment(done.len() as u64);
        if !to_delete.is_empty()
            && let Err(e) = self.backend.queues.delete_batch(source, to_delete).await
        {
            // Their effects are committed; a redelivery finds them terminal and changes nothing.
            tracing::warn!(pool = self.handler.pool(), error = %e, "cannot delete a processed batch");
        }
        report.done = done.len();
        report
    }

    /// DLQ first, then the status document, then the delete (send before delete). Returns
    /// false when the message stays on the source queue to be tried again.
    async fn dead_letter(&self, message: &ReceivedMessage, reason: &str) -> bool {
        let source = self.config.queue.source();
        tracing::warn!(message_id = %message.message_id, %reason, "dead-lettering");
        let mut attributes = message.attributes.clone();
        attributes.insert(ATTR_FAILURE_REASON.to_owned(), truncate(reason, 900));
        attributes.insert(ATTR_FAILED_AT.to_owned(), clock::format(self.backend.clock.now()));
        attributes.insert(ATTR_RECEIVE_COUNT.to_owned(), message.receive_count.to_string());
        let dead = OutgoingMessage::new(message.body.clone(), attributes);
        if let Err(e) = self.backend.queues.send_batch(self.config.queue.dlq(), vec![dead]).await {
            tracing::warn!(error = %e, "cannot reach the DLQ; retrying later");
            let _ = self.backend.queues.change_visibility(source, &message.receipt, self.config.backoff.max).await;
            return false;
        }
        if let Err(e) = self.handler.dead_lettered(message, reason).await {
            // Leave it: the next receive is past the limit and dead-letters it again.
            tracing::warn!(error = %e, "cannot record the dead letter; retrying later");
            let _ = self.backend.queues.change_visibility(source, &message.receipt, self.config.backoff.base).await;
            return false;
        }
        if let Err(e) = self.backend.queues.delete_batch(source, vec![message.receipt.clone()]).await {
            tracing::warn!(error = %e, "cannot delete a dead-lettered message");
        }
        metrics::counter!("usher_messages_total", "pool" => self.handler.pool(), "outcome" => "dead_lettered")
            .increment(1);
        true
    }
}

/// The span one message is handled in: it continues the trace of what sent the message
/// (its `traceparent` attribute), and its fields go on every log line of the handler.
fn message_span(pool: &'static str, message: &ReceivedMessage) -> tracing::Span {
    let parent = TraceParent::parse(message.attributes.get(ATTR_TRACEPARENT).map(String::as_str));
    let span = tracing::info_span!(
        "message",
        pool,
        message_id = %message.message_id,
        request_id = message.attributes.get(ATTR_REQUEST_ID).map(String::as_str),
        message_type = message.attributes.get(ATTR_TYPE).map(String::as_str),
        trace_id = parent.as_ref().map(TraceParent::trace_id),
    );
    infra::logging::continue_trace(&span, parent);
    span
}

/// How long the oldest message of a batch waited on its queue before this receive: the
/// pool's lag. Zero when a receive comes back empty.
fn record_lag(pool: &'static str, queue: Queue, messages: &[ReceivedMessage]) {
    let now = clock::now();
    let oldest = messages.iter().map(|m| m.sent_at).min().unwrap_or(now);
    let lag = (now - oldest).as_seconds_f64().max(0.0);
    metrics::gauge!("usher_consumer_lag_seconds", "pool" => pool).set(lag);
    infra::status::observe_lag(queue, lag);
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}
