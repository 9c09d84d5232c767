//! The booking pool: places and releases holds, confirms bookings through the mock
//! payment provider, and expires holds when their delayed expiry message comes due.

use crate::commands::CommandPool;
use crate::consumer::{Effects, HandlerError};
use async_trait::async_trait;
use domain::booking::{self, POOL};
use domain::clock;
use domain::command::{Command, CommandEnvelope};
use domain::error::{BusinessError, ErrorCode};
use domain::ids::HoldId;
use domain::outbox::Decision;
use domain::payment::{self, PaymentError};
use domain::ports::Completion;
use domain::queue::Queue;
use domain::request::{CommandContext, RequestStatus};
use infra::Backend;
use std::time::Duration;

pub struct BookingPool {
    backend: Backend,
    hold_ttl: Duration,
    /// `USHER_MAX_HELD_SEATS`: the cap each hold's transaction checks.
    max_held_seats: usize,
}

impl BookingPool {
    pub fn new(backend: Backend, hold_ttl: Duration, max_held_seats: usize) -> Self {
        // Each outcome's series exists from the start (a zero, not a gap).
        for outcome in ["placed", "rejected"] {
            metrics::counter!("usher_holds_total", "outcome" => outcome).increment(0);
        }
        for outcome in ["confirmed", "declined"] {
            metrics::counter!("usher_bookings_total", "outcome" => outcome).increment(0);
        }
        Self { backend, hold_ttl, max_held_seats }
    }

    /// Authorizes the hold's amount (keyed by the hold, so the hold is charged once
    /// however many confirms it gets), then lets the booking transaction decide. A confirm
    /// that loses there voids its authorization.
    async fn confirm(&self, ctx: &CommandContext, hold_id: &HoldId, token: &str) -> Result<Completion, HandlerError> {
        // A missing hold, or one that is not the caller's or not live, is final: it never
        // becomes confirmable again, so nothing is authorized for it.
        let checked = match self.backend.bookings.hold(hold_id).await? {
            None => Err(booking::hold_not_found(hold_id)),
            Some(hold) => hold.check_confirmable(&ctx.actor.sub, ctx.now).map(|()| hold),
        };
        let hold = match checked {
            Ok(hold) => hold,
            Err(e) => return self.fail(ctx, booking::booking_failed(ctx, hold_id, e).into()).await,
        };
        let Some(show) = self.backend.catalog.show(&hold.show_id).await? else {
            return Err(HandlerError::Poison(format!("hold {hold_id} names a missing show")));
        };
        let receipt = match payment::authorize(token, booking::amount_of(&show, &hold), hold_id) {
            Ok(receipt) => receipt,
            Err(PaymentError::Unavailable) => {
                return Err(HandlerError::Transient("the payment provider is unavailable".to_owned()));
            }
            Err(e @ (PaymentError::Declined | PaymentError::InvalidToken)) => {
                let declined = BusinessError::new(ErrorCode::PaymentDeclined, e.to_string());
                return self.fail(ctx, booking::booking_failed(ctx, hold_id, declined).into()).await;
            }
        };
        let completion = self.backend.bookings.confirm_booking(ctx, hold_id, &receipt).await?;
        if completion.first && completion.doc.status != RequestStatus::Succeeded {
            // Lost the hold between the check above and the transaction: nothing captured
            // this authorization (a winning confirm of the same hold captured its own).
            tracing::info!(request_id = %ctx.request_id, payment_id = %receipt.payment_id, "authorization voided");
            metrics::counter!("usher_payments_voided_total").increment(1);
        }
        Ok(completion)
    }

    async fn fail(&self, ctx: &CommandContext, decision: Decision) -> Result<Completion, HandlerError> {
        Ok(self.backend.requests.complete(&ctx.request_id, decision, ctx.now).await?)
    }

    /// A delayed expiry: re-delays itself while the hold has time left (queues cap delays).
    async fn expire(
        &self,
        envelope: &CommandEnvelope,
        hold_id: &HoldId,
        expires_at: clock::Timestamp,
    ) -> Result<Effects, HandlerError> {
        let now = self.backend.clock.now();
        if expires_at > now {
            let mut again = envelope.message();
            again.delay = (expires_at - now).try_into().unwrap_or(Duration::ZERO);
            return Ok(Effects { follow_ups: vec![(Queue::BookingCommands.source(), again)], acknowledged: false });
        }
        // The expiry event commits to the outbox with the freed seats, in this span's trace.
        let traceparent = infra::logging::current_traceparent();
        self.backend.bookings.expire_hold(hold_id, now, traceparent.as_deref()).await?;
        Ok(Effects::default())
    }
}

#[async_trait]
impl CommandPool for BookingPool {
    const POOL: &'static str = POOL;
    const QUEUE: Queue = Queue::BookingCommands;

    fn backend(&self) -> &Backend {
        &self.backend
    }

    async fn apply(
        &self,
        envelope: &CommandEnvelope,
        ctx: &CommandContext,
    ) -> Result<(Option<Completion>, Effects), HandlerError> {
        let bookings = &self.backend.bookings;
        let completion = match &envelope.command {
            Command::PlaceHold { show_id, seat_ids } => {
                bookings.place_hold(ctx, show_id, seat_ids, ctx.now + self.hold_ttl, self.max_held_seats).await?
            }
            Command::ReleaseHold { hold_id } => bookings.release_hold(ctx, hold_id).await?,
            Command::ConfirmBooking { hold_id, payment_token } => self.confirm(ctx, hold_id, payment_token).await?,
            Command::ExpireHold { hold_id, expires_at } => {
                return Ok((None, self.expire(envelope, hold_id, *expires_at).await?));
            }
            other => return Err(HandlerError::Poison(format!("{} is not a booking command", other.type_name()))),
        };
        count_outcome(&envelope.command, &completion);
        Ok((Some(completion), Effects::default()))
    }
}

/// `usher_holds_total{outcome}` and `usher_bookings_total{outcome}`, once per committed
/// outcome: a redelivery finds the request terminal (`first` false) and counts nothing.
/// Any business failure of a confirm counts as `declined`.
fn count_outcome(command: &Command, completion: &Completion) {
    if !completion.first {
        return;
    }
    let succeeded = completion.doc.status == RequestStatus::Succeeded;
    match command {
        Command::PlaceHold { .. } => {
            let outcome = if succeeded { "placed" } else { "rejected" };
            metrics::counter!("usher_holds_total", "outcome" => outcome).increment(1);
        }
        Command::ConfirmBooking { .. } => {
            let outcome = if succeeded { "confirmed" } else { "declined" };
            metrics::counter!("usher_bookings_total", "outcome" => outcome).increment(1);
        }
        _ => {}
    }
}
