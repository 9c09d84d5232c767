//! The booking pool: places and releases holds, confirms bookings through the mock
//! payment provider, and expires holds when their delayed expiry message comes due.

use crate::commands;
use crate::consumer::{Effects, Handler, HandlerError};
use async_trait::async_trait;
use domain::PortError;
use domain::booking::{self, POOL};
use domain::clock;
use domain::command::{Command, CommandEnvelope};
use domain::error::BusinessError;
use domain::event::CloudEvent;
use domain::ids::HoldId;
use domain::payment::{self, PaymentError};
use domain::ports::{CommandContext, Completion, OutgoingMessage, Queue, ReceivedMessage};
use domain::request::RequestStatus;
use infra::Backend;
use std::time::Duration;

pub struct BookingPool {
    backend: Backend,
    hold_ttl: Duration,
}

impl BookingPool {
    pub fn new(backend: Backend, hold_ttl: Duration) -> Self {
        Self { backend, hold_ttl }
    }

    async fn confirm(&self, ctx: &CommandContext, hold_id: &HoldId, token: &str) -> Result<Completion, HandlerError> {
        // A redelivered command finds its hold confirmed (or still declining) and the
        // completion below hands back what the first run committed; the mock provider is
        // idempotent per request, so nothing is charged twice.
        let checked = match self.backend.bookings.hold(hold_id).await? {
            None => Err(booking::hold_not_found(hold_id)),
            Some(hold) => hold.check_confirmable(&ctx.actor, ctx.now).map(|()| hold),
        };
        let hold = match checked {
            Ok(hold) => hold,
            Err(e) => return self.fail(ctx, booking::booking_failed(ctx, hold_id, e)).await,
        };
        let Some(show) = self.backend.catalog.show(&hold.show_id).await? else {
            return Err(HandlerError::Poison(format!("hold {hold_id} names a missing show")));
        };
        let amount = show.price_cents * hold.seat_ids.len() as u64;
        match payment::charge(token, amount, &ctx.request_id) {
            Ok(receipt) => Ok(self.backend.bookings.confirm_booking(ctx, hold_id, &receipt).await?),
            Err(PaymentError::Unavailable) => {
                Err(HandlerError::Transient("the payment provider is unavailable".to_owned()))
            }
            Err(e @ (PaymentError::Declined | PaymentError::InvalidToken)) => {
                let declined = BusinessError::new("payment_declined", e.to_string());
                self.fail(ctx, booking::booking_failed(ctx, hold_id, declined)).await
            }
        }
    }

    async fn fail(
        &self,
        ctx: &CommandContext,
        (outcome, events): (domain::request::Outcome, Vec<CloudEvent>),
    ) -> Result<Completion, HandlerError> {
        Ok(self.backend.requests.complete(&ctx.request_id, outcome, events, ctx.now).await?)
    }

    /// A delayed expiry: re-delays itself while the hold has time left (queues cap delays).
    async fn expire(
        &self,
        envelope: &CommandEnvelope,
        hold_id: &HoldId,
        expires_at: clock::Timestamp,
    ) -> Result<Effects, HandlerError> {
        let now = clock::now();
        if expires_at > now {
            let mut again = OutgoingMessage::command(envelope);
            again.delay = (expires_at - now).try_into().unwrap_or(Duration::ZERO);
            return Ok(Effects { events: Vec::new(), follow_ups: vec![(Queue::BookingCommands.source(), again)] });
        }
        let event = self.backend.bookings.expire_hold(hold_id, now).await?;
        Ok(Effects { events: event.into_iter().collect(), follow_ups: Vec::new() })
    }

    /// The effects of a completion, on its first run or a redelivery alike.
    fn effects(&self, envelope: &CommandEnvelope, completion: Completion) -> Effects {
        let mut follow_ups = Vec::new();
        if let (Command::PlaceHold { .. }, RequestStatus::Succeeded) = (&envelope.command, completion.doc.status)
            && let Some(result) = &completion.doc.result
            && let (Some(hold_id), Some(expires_at)) =
                (result["hold_id"].as_str(), result["expires_at"].as_str().and_then(|t| clock::parse(t).ok()))
        {
            let expiry = CommandEnvelope {
                request_id: envelope.request_id.clone(),
                actor: envelope.actor.clone(),
                issued_at: clock::now(),
                command: Command::ExpireHold { hold_id: HoldId::from(hold_id), expires_at },
            };
            let mut message = OutgoingMessage::command(&expiry);
            message.delay = (expires_at - clock::now()).try_into().unwrap_or(Duration::ZERO);
            follow_ups.push((Queue::BookingCommands.source(), message));
        }
        Effects { events: completion.events, follow_ups }
    }
}

#[async_trait]
impl Handler for BookingPool {
    fn pool(&self) -> &'static str {
        POOL
    }

    async fn before_batch(&self, messages: &[ReceivedMessage]) {
        commands::mark_processing(&self.backend, messages).await;
    }

    async fn handle(&self, message: &ReceivedMessage) -> Result<Effects, HandlerError> {
        let (envelope, ctx) = commands::parse(message)?;
        let bookings = &self.backend.bookings;
        let completion = match &envelope.command {
            Command::PlaceHold { show_id, seat_ids } => {
                bookings.place_hold(&ctx, show_id, seat_ids, ctx.now + self.hold_ttl).await?
            }
            Command::ReleaseHold { hold_id } => bookings.release_hold(&ctx, hold_id).await?,
            Command::ConfirmBooking { hold_id, payment_token } => self.confirm(&ctx, hold_id, payment_token).await?,
            Command::ExpireHold { hold_id, expires_at } => return self.expire(&envelope, hold_id, *expires_at).await,
            other => return Err(HandlerError::Poison(format!("{} is not a booking command", other.type_name()))),
        };
        tracing::debug!(request_id = %ctx.request_id, status = completion.doc.status.as_str(), first = completion.first, "command applied");
        Ok(self.effects(&envelope, completion))
    }

    async fn dead_lettered(&self, message: &ReceivedMessage, reason: &str) -> Result<Vec<CloudEvent>, PortError> {
        commands::dead_lettered(&self.backend, message, POOL, reason).await
    }
}
