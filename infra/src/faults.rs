//! Fault injection at the port boundary, for tests: wraps a [`Backend`] so that chosen
//! calls fail, fail ambiguously (the call went through, the caller is told it failed) or
//! are delayed. Everything else passes straight to the real adapter, embedded or AWS.
//!
//! ```ignore
//! let faults = Faults::default();
//! let backend = faults.wrap(real_backend);
//! faults.set(Op::Publish, Fault::Fail, None);  // the bus is down until cleared
//! faults.clear(Op::Publish);
//! ```

use crate::Backend;
use async_trait::async_trait;
use domain::PortError;
use domain::booking::{Booking, SeatHold};
use domain::clock::Timestamp;
use domain::event::CloudEvent;
use domain::idempotency::IdempotencyKey;
use domain::ids::{BookingId, HoldId, RequestId, SeatId, ShowId, UserId};
use domain::outbox::Decision;
use domain::payment::PaymentReceipt;
use domain::ports::{
    Abandoned, Admission, Admitted, BookingStore, Completion, EventBus, MessageQueue, RequestStore, Stranded,
};
use domain::queue::{OutgoingMessage, QueueAddr, QueueStats, Receipt, ReceivedMessage};
use domain::request::CommandContext;
use domain::request::RequestRecord;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The calls a fault can be put on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `EventBus::publish`.
    Publish,
    /// `MessageQueue::send_batch`.
    Send,
    /// `MessageQueue::delete_batch`.
    Delete,
    /// `RequestStore::admit`: on embedded, the transaction that also queues the command.
    Admit,
    /// A write that commits a command: `RequestStore::complete` and the booking store's
    /// `place_hold`, `release_hold`, `confirm_booking`.
    Commit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call does not happen; the caller hears `Unavailable`.
    Fail,
    /// The call happens, then the caller hears `Unavailable` anyway.
    Ambiguous,
    /// The call happens after this pause (longer than a caller's timeout, say).
    Delay(Duration),
}

#[derive(Debug, Clone, Copy)]
struct Plan {
    fault: Fault,
    /// How many more calls it hits; `None`: until cleared.
    remaining: Option<u32>,
}

/// The faults in force, shared by every wrapper of one backend. Counts the calls each
/// fault hit, so a test can tell the fault really happened.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    plans: Arc<Mutex<HashMap<Op, Plan>>>,
    hits: Arc<Mutex<HashMap<Op, u32>>>,
}

impl Faults {
    /// Puts `fault` on the next `times` calls of `op` (`None`: every call until cleared).
    pub fn set(&self, op: Op, fault: Fault, times: Option<u32>) {
        self.plans.lock().expect("fault plans").insert(op, Plan { fault, remaining: times });
    }

    pub fn clear(&self, op: Op) {
        self.plans.lock().expect("fault plans").remove(&op);
    }

    /// How many calls of `op` a fault hit so far.
    pub fn hits(&self, op: Op) -> u32 {
        self.hits.lock().expect("fault hits").get(&op).copied().unwrap_or(0)
    }

    /// The backend with the bus, the queues, the request store and the booking store
    /// wrapped; the other ports are the real ones.
    pub fn wrap(&self, real: Backend) -> Backend {
        Backend {
            bus: Arc::new(Faulty { inner: real.bus.clone(), faults: self.clone() }),
            queues: Arc::new(Faulty { inner: real.queues.clone(), faults: self.clone() }),
            requests: Arc::new(Faulty { inner: real.requests.clone(), faults: self.clone() }),
            bookings: Arc::new(Faulty { inner: real.bookings.clone(), faults: self.clone() }),
            ..real
        }
    }

    fn take(&self, op: Op) -> Option<Fault> {
        let mut plans = self.plans.lock().expect("fault plans");
        let plan = plans.get_mut(&op)?;
        let fault = plan.fault;
        match &mut plan.remaining {
            Some(0) => {
                plans.remove(&op);
                return None;
            }
            Some(n) => *n -= 1,
            None => {}
        }
        *self.hits.lock().expect("fault hits").entry(op).or_default() += 1;
        Some(fault)
    }

    /// Runs `call` under whatever fault is in force for `op`.
    async fn around<T, F>(&self, op: Op, call: F) -> Result<T, PortError>
    where
        F: std::future::Future<Output = Result<T, PortError>>,
    {
        let injected = || PortError::Unavailable(format!("injected fault on {op:?}"));
        match self.take(op) {
            None => call.await,
            Some(Fault::Fail) => Err(injected()),
            Some(Fault::Ambiguous) => {
                call.await?;
                Err(injected())
            }
            Some(Fault::Delay(pause)) => {
                tokio::time::sleep(pause).await;
                call.await
            }
        }
    }
}

struct Faulty<T: ?Sized> {
    inner: Arc<T>,
    faults: Faults,
}

#[async_trait]
impl EventBus for Faulty<dyn EventBus> {
    async fn publish(&self, events: &[CloudEvent]) -> Result<(), PortError> {
        self.faults.around(Op::Publish, self.inner.publish(events)).await
    }
}

#[async_trait]
impl MessageQueue for Faulty<dyn MessageQueue> {
    fn max_delay(&self) -> Duration {
        self.inner.max_delay()
    }

    fn max_batch(&self) -> usize {
        self.inner.max_batch()
    }

    async fn send_batch(&self, queue: QueueAddr, messages: Vec<OutgoingMessage>) -> Result<(), PortError> {
        self.faults.around(Op::Send, self.inner.send_batch(queue, messages)).await
    }

    async fn receive(
        &self,
        queue: QueueAddr,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, PortError> {
        self.inner.receive(queue, max, wait, visibility).await
    }

    async fn delete_batch(&self, queue: QueueAddr, receipts: Vec<Receipt>) -> Result<(), PortError> {
        self.faults.around(Op::Delete, self.inner.delete_batch(queue, receipts)).await
    }

    async fn change_visibility(&self, queue: QueueAddr, receipt: &Receipt, timeout: Duration) -> Result<(), PortError> {
        self.inner.change_visibility(queue, receipt, timeout).await
    }

    async fn depth(&self, queue: QueueAddr) -> Result<u64, PortError> {
        self.inner.depth(queue).await
    }

    async fn stats(&self, queue: QueueAddr) -> Result<QueueStats, PortError> {
        self.inner.stats(queue).await
    }

    async fn purge(&self, queue: QueueAddr) -> Result<(), PortError> {
        self.inner.purge(queue).await
    }

    async fn ping(&self) -> Result<(), PortError> {
        self.inner.ping().await
    }
}

#[async_trait]
impl RequestStore for Faulty<dyn RequestStore> {
    async fn admit(&self, admission: Admission) -> Result<Admitted, PortError> {
        self.faults.around(Op::Admit, self.inner.admit(admission)).await
    }

    async fn mark_queued(&self, request_ids: &[RequestId]) -> Result<(), PortError> {
        self.inner.mark_queued(request_ids).await
    }

    async fn wait_terminal(
        &self,
        request_id: &RequestId,
        wait: std::time::Duration,
    ) -> Result<Option<RequestRecord>, PortError> {
        self.inner.wait_terminal(request_id, wait).await
    }

    async fn abandon(
        &self,
        owner: &UserId,
        key: &IdempotencyKey,
        request_id: &RequestId,
        claimed_after: Timestamp,
    ) -> Result<Abandoned, PortError> {
        self.inner.abandon(owner, key, request_id, claimed_after).await
    }

    async fn get(&self, request_id: &RequestId) -> Result<Option<RequestRecord>, PortError> {
        self.inner.get(request_id).await
    }

    async fn mark_processing(&self, request_ids: &[RequestId], now: Timestamp) -> Result<(), PortError> {
        self.inner.mark_processing(request_ids, now).await
    }

    async fn complete(
        &self,
        request_id: &RequestId,
        decision: Decision,
        now: Timestamp,
    ) -> Result<Completion, PortError> {
        self.faults.around(Op::Commit, self.inner.complete(request_id, decision, now)).await
    }

    async fn reopen(&self, request_id: &RequestId, now: Timestamp) -> Result<bool, PortError> {
        self.inner.reopen(request_id, now).await
    }

    async fn unqueued(&self, claimed_before: Timestamp, limit: usize) -> Result<Vec<Stranded>, PortError> {
        self.inner.unqueued(claimed_before, limit).await
    }

    async fn purge_expired_keys(&self, now: Timestamp) -> Result<u64, PortError> {
        self.inner.purge_expired_keys(now).await
    }

    async fn ping(&self) -> Result<(), PortError> {
        self.inner.ping().await
    }
}

#[async_trait]
impl BookingStore for Faulty<dyn BookingStore> {
    async fn place_hold(
        &self,
        ctx: &CommandContext,
        show_id: &ShowId,
        seat_ids: &[SeatId],
        expires_at: Timestamp,
        max_held_seats: usize,
    ) -> Result<Completion, PortError> {
        self.faults.around(Op::Commit, self.inner.place_hold(ctx, show_id, seat_ids, expires_at, max_held_seats)).await
    }

    async fn release_hold(&self, ctx: &CommandContext, hold_id: &HoldId) -> Result<Completion, PortError> {
        self.faults.around(Op::Commit, self.inner.release_hold(ctx, hold_id)).await
    }

    async fn confirm_booking(
        &self,
        ctx: &CommandContext,
        hold_id: &HoldId,
        payment: &PaymentReceipt,
    ) -> Result<Completion, PortError> {
        self.faults.around(Op::Commit, self.inner.confirm_booking(ctx, hold_id, payment)).await
    }

    async fn expire_hold(
        &self,
        hold_id: &HoldId,
        now: Timestamp,
        traceparent: Option<&str>,
    ) -> Result<Option<CloudEvent>, PortError> {
        self.inner.expire_hold(hold_id, now, traceparent).await
    }

    async fn hold(&self, hold_id: &HoldId) -> Result<Option<SeatHold>, PortError> {
        self.inner.hold(hold_id).await
    }

    async fn booking(&self, booking_id: &BookingId) -> Result<Option<Booking>, PortError> {
        self.inner.booking(booking_id).await
    }
}
