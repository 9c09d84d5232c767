//! The ports: what Usher needs from a backend, in its own terms. `infra` implements each
//! one twice (embedded SQLite, AWS) and runs both through the same contract suite.

use crate::actor::Role;
use crate::booking::{Booking, SeatHold, SeatRecord};
use crate::catalog::{Movie, Show};
use crate::clock::Timestamp;
use crate::command::CommandEnvelope;
use crate::error::PortError;
use crate::event::CloudEvent;
use crate::idempotency::{Fingerprint, IdempotencyKey};
use crate::ids::{BookingId, HoldId, MovieId, RequestId, SeatId, ShowId, TicketId, UserId};
use crate::notification::Notification;
use crate::outbox::{Decision, OutboxBacklog, OutboxItem};
use crate::payment::PaymentReceipt;
use crate::queue::{OutgoingMessage, QueueAddr, QueueStats, Receipt, ReceivedMessage};
use crate::report::{DailyReport, ShowCounters, TicketStats};
use crate::request::{CommandContext, Delivery, RequestRecord, StatusDoc};
use crate::ticket::{Ticket, TicketChange, TicketCursor, TicketStatus};
use async_trait::async_trait;
use std::time::Duration;

// ---------------------------------------------------------------------------------------
// Queues

/// SQS-shaped queues, at-least-once.
///
/// A received message stays invisible to other receivers for the visibility timeout;
/// unless deleted by then it is delivered again with a higher receive count. A message
/// received more times than the queue's redrive limit (one above the worker's own
/// `max_receives`) moves to the dead-letter queue instead of being delivered: the safety
/// net for messages that crash the process.
#[async_trait]
pub trait MessageQueue: Send + Sync {
    /// The longest delay one send can carry (SQS: 15 minutes). Longer waits re-delay.
    fn max_delay(&self) -> Duration;

    /// The most messages one receive returns (SQS: 10).
    fn max_batch(&self) -> usize;

    /// Sends every message (the adapter batches them as its backend allows).
    async fn send_batch(&self, queue: QueueAddr, messages: Vec<OutgoingMessage>) -> Result<(), PortError>;

    /// Up to `max` visible messages, waiting up to `wait` for the first one (long poll).
    async fn receive(
        &self,
        queue: QueueAddr,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, PortError>;

    /// Deletes received messages. A stale receipt (the message was received again since)
    /// deletes nothing and is not an error, as in SQS.
    async fn delete_batch(&self, queue: QueueAddr, receipts: Vec<Receipt>) -> Result<(), PortError>;

    /// Makes a received message visible again after `timeout` (zero: at once).
    async fn change_visibility(&self, queue: QueueAddr, receipt: &Receipt, timeout: Duration) -> Result<(), PortError>;

    /// How many messages the queue holds, visible or in flight (approximate on SQS).
    async fn depth(&self, queue: QueueAddr) -> Result<u64, PortError>;

    /// What the queue holds, by state, without receiving anything (approximate on SQS,
    /// which also cannot tell the oldest message's age: `oldest_age` is `None` there).
    async fn stats(&self, queue: QueueAddr) -> Result<QueueStats, PortError>;

    /// Deletes every message in the queue.
    async fn purge(&self, queue: QueueAddr) -> Result<(), PortError>;

    /// Succeeds when the backend answers.
    async fn ping(&self) -> Result<(), PortError>;
}

// ---------------------------------------------------------------------------------------
// Events

/// The `events` topic. Each event is delivered to every subscribed queue whose filter
/// accepts its `type`, and to outside subscribers.
#[async_trait]
pub trait EventBus: Send + Sync {
    async fn publish(&self, events: &[CloudEvent]) -> Result<(), PortError>;
}

// ---------------------------------------------------------------------------------------
// The outbox

/// Events and messages committed with a command, waiting for the relay. Every store write
/// that completes a request puts its entries here in the same transaction.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Up to `limit` pending entries, oldest first.
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxItem>, PortError>;

    /// Forgets delivered entries. Unknown ids are ignored (another relay got there first).
    async fn delivered(&self, ids: &[String]) -> Result<(), PortError>;

    /// How many entries are pending and since when.
    async fn backlog(&self) -> Result<OutboxBacklog, PortError>;

    /// Returns once this process may have added entries, or after `max`: the relay's
    /// nap, cut short by local commits.
    async fn wait(&self, max: Duration);
}

// ---------------------------------------------------------------------------------------
// Stores

/// The response first given for an idempotency key, replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// What ingress asks the store to record, in one write, when it admits a command.
#[derive(Debug, Clone)]
pub struct Admission {
    pub owner: UserId,
    pub key: IdempotencyKey,
    pub fingerprint: Fingerprint,
    pub doc: StatusDoc,
    pub command: CommandEnvelope,
    pub response: StoredResponse,
    /// When the key is forgotten and may be used afresh.
    pub key_expires_at: Timestamp,
    /// Put the command on its queue in the same transaction, if this store holds the
    /// queues too (embedded): then the answer is [`Admitted::Queued`] and no sweep is ever
    /// needed for it. A store that cannot (DynamoDB beside SQS) claims, and answers
    /// [`Admitted::Claimed`].
    pub queue_with_claim: bool,
}

#[derive(Debug, Clone)]
pub enum Admitted {
    /// The key was free: it is claimed and the status document exists. Queue the command,
    /// then call [`RequestStore::mark_queued`].
    Claimed,
    /// The key was free: it is claimed, the status document exists and the command is on
    /// its queue, all in one transaction. Nothing is left to do.
    Queued,
    /// The same request was admitted before: answer this again.
    Replay(StoredResponse),
    /// The same request was claimed at `claimed_at` but its command is not known to be
    /// queued: either it is being admitted right now, or its admitter died.
    Unqueued { response: StoredResponse, command: CommandEnvelope, claimed_at: Timestamp },
    /// The key was used for a different request.
    KeyReused,
}

/// A terminal status and the events it committed with. `first` is false when the
/// request was already terminal and this is what the first run committed.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub doc: StatusDoc,
    pub events: Vec<CloudEvent>,
    pub first: bool,
    /// The command's message ([`CommandContext::delivery`](crate::request::CommandContext))
    /// was deleted in the same transaction: the worker has no delete left to send.
    pub acknowledged: bool,
}

/// A request whose command is not known to be queued.
#[derive(Debug, Clone)]
pub struct Stranded {
    pub request_id: RequestId,
    pub kind: String,
    /// The stored command, or why it does not parse.
    pub command: Result<CommandEnvelope, String>,
}

/// What [`RequestStore::abandon`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Abandoned {
    /// The claim and its document are gone; the key is free.
    Freed,
    /// The command is (or will be) queued after all: answer this.
    Kept(StoredResponse),
}

/// Idempotency records and status documents.
#[async_trait]
pub trait RequestStore: Send + Sync {
    /// Claims `(owner, key)` and creates the status document in one write, or says what
    /// the key already stands for. An expired key is free again.
    async fn admit(&self, admission: Admission) -> Result<Admitted, PortError>;

    /// Records that these requests' commands are on their queue.
    async fn mark_queued(&self, request_ids: &[RequestId]) -> Result<(), PortError>;

    /// Undoes a claim whose command could not be queued, in one conditional write: the
    /// status document and the key go together, and only while the document is still
    /// unqueued and younger than `claimed_after` allows (older claims are the sweep's,
    /// which may be queueing them right now). Otherwise nothing changes and the command
    /// stays on its way: answer the stored response.
    async fn abandon(
        &self,
        owner: &UserId,
        key: &IdempotencyKey,
        request_id: &RequestId,
        claimed_after: Timestamp,
    ) -> Result<Abandoned, PortError>;

    async fn get(&self, request_id: &RequestId) -> Result<Option<RequestRecord>, PortError>;

    /// A long poll: the record once its status is terminal, or as it stands when `wait`
    /// has passed, whichever comes first (`None`: no such request). An adapter that can
    /// learn of the change wakes on it (embedded: on the commit that completes the
    /// request); one that cannot polls with a backoff (DynamoDB).
    async fn wait_terminal(&self, request_id: &RequestId, wait: Duration) -> Result<Option<RequestRecord>, PortError>;

    /// `accepted` → `processing`; any other status is left alone.
    async fn mark_processing(&self, request_ids: &[RequestId], now: Timestamp) -> Result<(), PortError>;

    /// Commits a terminal outcome, with its events and messages in the outbox, in one
    /// write conditional on the request not being terminal yet; if it is, returns what
    /// was committed then.
    async fn complete(
        &self,
        request_id: &RequestId,
        decision: Decision,
        now: Timestamp,
    ) -> Result<Completion, PortError>;

    /// `dead_lettered` → `accepted`, when an operator replays its message.
    async fn reopen(&self, request_id: &RequestId, now: Timestamp) -> Result<bool, PortError>;

    /// Requests admitted before `claimed_before` whose commands are not known to be
    /// queued. A stored command that no longer parses is returned as such, not as an
    /// error, so one bad row cannot stop the sweep.
    async fn unqueued(&self, claimed_before: Timestamp, limit: usize) -> Result<Vec<Stranded>, PortError>;

    /// Forgets idempotency keys past their retention. Returns how many went.
    async fn purge_expired_keys(&self, now: Timestamp) -> Result<u64, PortError>;

    async fn ping(&self) -> Result<(), PortError>;
}

/// Movies, shows and their seats. Writes are synchronous admin actions.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    async fn create_movie(&self, movie: &Movie) -> Result<(), PortError>;
    /// Creates the show and lays out every seat as available.
    async fn create_show(&self, show: &Show) -> Result<(), PortError>;
    async fn movies(&self) -> Result<Vec<Movie>, PortError>;
    async fn movie(&self, movie_id: &MovieId) -> Result<Option<Movie>, PortError>;
    async fn shows_of(&self, movie_id: &MovieId) -> Result<Vec<Show>, PortError>;
    async fn show(&self, show_id: &ShowId) -> Result<Option<Show>, PortError>;
    /// Every seat of the show as stored; apply `SeatRecord::state_at` to read it.
    async fn seats(&self, show_id: &ShowId) -> Result<Vec<SeatRecord>, PortError>;
}

/// Holds and bookings. Every method that completes a request commits the seats, the
/// hold or booking, the status document and its events in one transaction, and does
/// nothing but return the first completion when the request is already terminal.
#[async_trait]
pub trait BookingStore: Send + Sync {
    /// All or nothing: every seat must exist and be available at `ctx.now` (an expired
    /// hold counts as available), and the live holds of `ctx.actor` must cover at most
    /// `max_held_seats` seats with these added, counted in the same transaction so that
    /// racing holds cannot beat the cap. Fails with `show_not_found`, `seat_not_found`,
    /// `seats_unavailable` or `hold_limit_reached`. Releasing, expiring or confirming a
    /// hold takes its seats off the count.
    async fn place_hold(
        &self,
        ctx: &CommandContext,
        show_id: &ShowId,
        seat_ids: &[SeatId],
        expires_at: Timestamp,
        max_held_seats: usize,
    ) -> Result<Completion, PortError>;

    /// Frees a live hold of `ctx.actor`'s; `hold_not_found` otherwise.
    async fn release_hold(&self, ctx: &CommandContext, hold_id: &HoldId) -> Result<Completion, PortError>;

    /// Turns a live hold of `ctx.actor`'s into a booking that captures `payment` (its
    /// amount is the booking's). Decided in the transaction by
    /// [`crate::booking::decide_confirm`]: `hold_not_found`, `hold_expired`.
    async fn confirm_booking(
        &self,
        ctx: &CommandContext,
        hold_id: &HoldId,
        payment: &PaymentReceipt,
    ) -> Result<Completion, PortError>;

    /// Marks an active hold whose time has come as expired and frees its seats, with the
    /// `usher.booking.hold.expired` event in the outbox. Returns that event when this call
    /// expired the hold, nothing when it was expired, released or confirmed before.
    async fn expire_hold(
        &self,
        hold_id: &HoldId,
        now: Timestamp,
        traceparent: Option<&str>,
    ) -> Result<Option<CloudEvent>, PortError>;

    async fn hold(&self, hold_id: &HoldId) -> Result<Option<SeatHold>, PortError>;
    async fn booking(&self, booking_id: &BookingId) -> Result<Option<Booking>, PortError>;
}

// ---------------------------------------------------------------------------------------
// Downstream: what the notifications and analytics pools keep

/// Notifications the notifications pool rendered, by recipient.
#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Stores what `event` caused, in one write with the mark that the event is handled
    /// and with `events` (one `usher.notification.sent` each) in the outbox. Returns
    /// false, storing nothing, when that event was handled before.
    async fn record_notifications(
        &self,
        event: &CloudEvent,
        notifications: &[Notification],
        events: &[CloudEvent],
    ) -> Result<bool, PortError>;

    /// The recipient's notifications, newest first.
    async fn notifications_for(&self, recipient: &UserId, limit: usize) -> Result<Vec<Notification>, PortError>;
}

/// The analytics pool's aggregates. Applying an event twice changes nothing; applying
/// events in any order gives the same totals (see `domain::report::facts`).
#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    /// Applies the facts of every event not applied before (by id), in one write.
    /// Returns how many were new.
    async fn record_events(&self, events: &[CloudEvent]) -> Result<usize, PortError>;

    /// [`record_events`](Self::record_events), and, where the queue is in the store
    /// (embedded), the messages that carried the events deleted in the same transaction,
    /// so that a message is gone exactly when its effect is durable. Answers whether they
    /// were: if not, the worker deletes them after.
    async fn record_delivered(&self, events: &[CloudEvent], _delivered: &[Delivery]) -> Result<bool, PortError> {
        self.record_events(events).await.map(|_| false)
    }

    /// Zeroes for a show no event has mentioned yet.
    async fn show_counters(&self, show_id: &ShowId) -> Result<ShowCounters, PortError>;

    async fn ticket_stats(&self) -> Result<Vec<TicketStats>, PortError>;

    /// The latest `limit` days with bookings, newest first.
    async fn daily(&self, limit: usize) -> Result<Vec<DailyReport>, PortError>;
}

// ---------------------------------------------------------------------------------------
// Tickets

/// Support tickets. Every method that completes a request commits the ticket (with its
/// new history entries), the status document and its events in one transaction, and does
/// nothing but return the first completion when the request is already terminal.
#[async_trait]
pub trait TicketStore: Send + Sync {
    /// Stores a new ticket (built by [`Ticket::new`]) and completes the request with
    /// [`crate::ticket::created`].
    async fn create_ticket(&self, ctx: &CommandContext, ticket: &Ticket) -> Result<Completion, PortError>;

    /// Applies `change` for `ctx.actor` with [`crate::ticket::decide`] to the ticket as stored,
    /// and writes the result back only if the stored version is still the one it read
    /// (for an assignment, `is_agent` of the target is read too). A lost race is retried
    /// against the fresh ticket, never written over it; an adapter that keeps losing
    /// returns [`PortError::Contention`] and the message is retried later.
    async fn change_ticket(
        &self,
        ctx: &CommandContext,
        ticket_id: &TicketId,
        change: &TicketChange,
    ) -> Result<Completion, PortError>;

    /// The ticket with every comment and its whole history (redact for customers).
    async fn ticket(&self, ticket_id: &TicketId) -> Result<Option<Ticket>, PortError>;

    /// Tickets matching every filter given, in the stable order `(created_at, ticket_id)`,
    /// after `query.after`; `next` is set when more may follow.
    async fn tickets(&self, query: &TicketQuery) -> Result<TicketPage, PortError>;
}

/// A filtered page request over tickets.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketQuery {
    pub status: Option<TicketStatus>,
    pub assignee: Option<UserId>,
    pub requester: Option<UserId>,
    pub limit: usize,
    pub after: Option<TicketCursor>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TicketPage {
    pub items: Vec<Ticket>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<TicketCursor>,
}

/// The users Usher has met, as far as tickets care: who is an agent. A user is an agent
/// once registered by an admin or seen with an `agent` token, and stays one.
#[async_trait]
pub trait UserDirectory: Send + Sync {
    /// Records that `user` was seen with `role` (idempotent). Only `agent` makes an agent;
    /// being seen later with another role takes nothing away.
    async fn record_user(&self, user: &UserId, role: Role, now: Timestamp) -> Result<(), PortError>;

    async fn is_agent(&self, user: &UserId) -> Result<bool, PortError>;
}
