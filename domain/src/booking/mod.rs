//! Seat holds and bookings, and the rules that keep a seat from being sold twice.
//!
//! A seat's stored record says who last claimed it; its *effective* state also depends
//! on the clock: a hold whose `expires_at` has passed reads `available` at once, whether
//! or not the expiry message has run yet.

use crate::catalog::Show;
use crate::clock::Timestamp;
use crate::command::{Command, CommandEnvelope};
use crate::error::{BusinessError, ErrorCode, PortError};
use crate::event::{self, CloudEvent, EventType};
use crate::ids::{BookingId, HoldId, RequestId, SeatId, ShowId, UserId};
use crate::outbox::{Decision, ScheduledMessage};
use crate::payment::PaymentReceipt;
use crate::request::CommandContext;
use crate::request::Outcome;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeSet;

pub const MAX_SEATS_PER_HOLD: usize = 10;
/// The default of `USHER_MAX_HELD_SEATS`: how many seats one customer's live holds may
/// cover at once (docs/contract.md §3).
pub const DEFAULT_MAX_HELD_SEATS: usize = 20;

/// The hold cap as a hold's decision sees it: the seats the customer's live holds cover
/// now (read in the hold's transaction) and the most they may cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldSeats {
    pub held: usize,
    pub max: usize,
}

impl HeldSeats {
    /// Counts the seats of the live holds among `holds`, each given as its seat count and
    /// `expires_at` (the store keeps only active ones; an expired one no longer counts).
    pub fn counting(holds: impl IntoIterator<Item = (usize, Timestamp)>, now: Timestamp, max: usize) -> Self {
        let held = holds.into_iter().filter(|(_, expires_at)| *expires_at > now).map(|(seats, _)| seats).sum();
        Self { held, max }
    }

    /// Whether `more` seats fit under the cap; `hold_limit_reached` otherwise.
    pub fn check(&self, more: usize) -> Result<(), BusinessError> {
        if self.held.saturating_add(more) <= self.max {
            return Ok(());
        }
        Err(BusinessError::new(
            ErrorCode::HoldLimitReached,
            format!("live holds may cover at most {} seats; {} are held already", self.max, self.held),
        )
        .with("held_seats", self.held)
        .with("max_held_seats", self.max))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeatState {
    Available,
    Held,
    Booked,
}

/// A seat as stored: at most one booking, or the latest hold that claimed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatRecord {
    pub seat_id: SeatId,
    pub booking_id: Option<BookingId>,
    pub hold_id: Option<HoldId>,
    pub hold_expires_at: Option<Timestamp>,
}

impl SeatRecord {
    pub fn state_at(&self, now: Timestamp) -> SeatState {
        if self.booking_id.is_some() {
            SeatState::Booked
        } else if self.hold_expires_at.is_some_and(|t| t > now) {
            SeatState::Held
        } else {
            SeatState::Available
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Seat {
    pub seat_id: SeatId,
    pub state: SeatState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    Active,
    Released,
    Expired,
    Confirmed,
}

impl HoldStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Active => "active",
            HoldStatus::Released => "released",
            HoldStatus::Expired => "expired",
            HoldStatus::Confirmed => "confirmed",
        }
    }

    /// A stored status; anything else is a corrupt record, never guessed at.
    pub fn parse(s: &str) -> Result<Self, PortError> {
        Ok(match s {
            "active" => HoldStatus::Active,
            "released" => HoldStatus::Released,
            "expired" => HoldStatus::Expired,
            "confirmed" => HoldStatus::Confirmed,
            _ => return Err(PortError::Corrupt(format!("unknown hold status {s:?}"))),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeatHold {
    pub hold_id: HoldId,
    pub show_id: ShowId,
    pub customer_id: UserId,
    pub seat_ids: Vec<SeatId>,
    pub expires_at: Timestamp,
    pub status: HoldStatus,
    /// The request that placed the hold; the expiry event correlates to it.
    pub request_id: RequestId,
}

impl SeatHold {
    /// Whether the hold still keeps its seats from everyone else.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.status == HoldStatus::Active && self.expires_at > now
    }

    /// The business checks before a customer pays for this hold.
    pub fn check_confirmable(&self, customer: &UserId, now: Timestamp) -> Result<(), BusinessError> {
        if &self.customer_id != customer {
            return Err(hold_not_found(&self.hold_id));
        }
        match self.status {
            HoldStatus::Active if self.expires_at > now => Ok(()),
            HoldStatus::Active | HoldStatus::Expired => Err(hold_expired_error(self)),
            HoldStatus::Released | HoldStatus::Confirmed => Err(hold_not_found(&self.hold_id)),
        }
    }

    /// The business checks before a customer releases this hold.
    pub fn check_releasable(&self, customer: &UserId, now: Timestamp) -> Result<(), BusinessError> {
        if &self.customer_id != customer || !self.is_live(now) {
            return Err(hold_not_found(&self.hold_id));
        }
        Ok(())
    }
}

pub fn hold_not_found(hold_id: &HoldId) -> BusinessError {
    BusinessError::new(ErrorCode::HoldNotFound, format!("no live hold {hold_id} for this customer"))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Booking {
    pub booking_id: BookingId,
    pub show_id: ShowId,
    pub seat_ids: Vec<SeatId>,
    pub amount_cents: u64,
    pub status: BookingStatus,
    pub customer_id: UserId,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    Confirmed,
}

/// Checks the seats a client asks to hold: 1..=10, no duplicates, plausible ids.
/// Whether they exist in the show is the worker's business (`seat_not_found`).
pub fn validate_seat_request(seat_ids: &[String]) -> Result<Vec<SeatId>, String> {
    if seat_ids.is_empty() || seat_ids.len() > MAX_SEATS_PER_HOLD {
        return Err(format!("must hold 1 to {MAX_SEATS_PER_HOLD} seats"));
    }
    let mut seen = BTreeSet::new();
    for s in seat_ids {
        if s.is_empty() || s.len() > 8 || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("{s:?} is not a seat id"));
        }
        if !seen.insert(s.as_str()) {
            return Err(format!("{s} appears twice"));
        }
    }
    Ok(seat_ids.iter().map(|s| SeatId::from(s.as_str())).collect())
}

/// The all-or-nothing rule of a hold: every requested seat must exist and be available
/// now (never booked, and either never held or held by a hold that has expired).
pub fn check_hold(requested: &[SeatId], current: &[SeatRecord], now: Timestamp) -> Result<(), BusinessError> {
    let missing: Vec<&SeatId> = requested.iter().filter(|s| !current.iter().any(|c| &c.seat_id == *s)).collect();
    if !missing.is_empty() {
        return Err(
            BusinessError::new(ErrorCode::SeatNotFound, "these seats are not in the show").with("seat_ids", missing)
        );
    }
    let taken: Vec<&SeatId> = current
        .iter()
        .filter(|c| requested.contains(&c.seat_id) && c.state_at(now) != SeatState::Available)
        .map(|c| &c.seat_id)
        .collect();
    if !taken.is_empty() {
        return Err(
            BusinessError::new(ErrorCode::SeatsUnavailable, "these seats are held or booked").with("seat_ids", taken)
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Outcomes: what each command commits to its status document, and the events with it.
// Both adapters call these inside their transaction, so the two backends agree.

/// The `source` of the booking pool's events: `/usher/booking`.
pub const POOL: &str = "booking";

/// `data` of `usher.booking.hold.placed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldPlacedData {
    pub hold_id: HoldId,
    pub show_id: ShowId,
    pub seat_ids: Vec<SeatId>,
    pub expires_at: Timestamp,
    pub customer_id: UserId,
}

/// `data` of `usher.booking.hold.rejected`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRejectedData {
    pub show_id: ShowId,
    pub seat_ids: Vec<SeatId>,
    pub customer_id: UserId,
    pub error: BusinessError,
}

/// `data` of `usher.booking.hold.released` and `usher.booking.hold.expired`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldEndedData {
    pub hold_id: HoldId,
    pub show_id: ShowId,
    pub seat_ids: Vec<SeatId>,
    pub customer_id: UserId,
    pub expires_at: Timestamp,
}

/// `data` of `usher.booking.confirmed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BookingConfirmedData {
    pub booking_id: BookingId,
    pub hold_id: HoldId,
    pub show_id: ShowId,
    pub seat_ids: Vec<SeatId>,
    pub amount_cents: u64,
    pub customer_id: UserId,
}

/// `data` of `usher.booking.failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BookingFailedData {
    pub hold_id: HoldId,
    pub customer_id: UserId,
    pub error: BusinessError,
}

fn ended(hold: &SeatHold) -> HoldEndedData {
    HoldEndedData {
        hold_id: hold.hold_id.clone(),
        show_id: hold.show_id.clone(),
        seat_ids: hold.seat_ids.clone(),
        customer_id: hold.customer_id.clone(),
        expires_at: hold.expires_at,
    }
}

pub fn hold_placed(ctx: &CommandContext, hold: &SeatHold) -> (Outcome, Vec<CloudEvent>) {
    let result = json!({
        "hold_id": hold.hold_id,
        "show_id": hold.show_id,
        "seat_ids": hold.seat_ids,
        "expires_at": crate::clock::format(hold.expires_at),
    });
    let data = HoldPlacedData {
        hold_id: hold.hold_id.clone(),
        show_id: hold.show_id.clone(),
        seat_ids: hold.seat_ids.clone(),
        expires_at: hold.expires_at,
        customer_id: hold.customer_id.clone(),
    };
    let event = CloudEvent::new(
        EventType::HoldPlaced,
        POOL,
        hold.hold_id.as_str(),
        ctx.request_id.as_str(),
        event::data(&data),
        ctx.now,
    )
    .traced(ctx.traceparent.as_deref());
    (Outcome::Succeeded(result), vec![event])
}

pub fn hold_rejected(
    ctx: &CommandContext,
    show_id: &ShowId,
    seat_ids: &[SeatId],
    error: BusinessError,
) -> (Outcome, Vec<CloudEvent>) {
    let data = HoldRejectedData {
        show_id: show_id.clone(),
        seat_ids: seat_ids.to_vec(),
        customer_id: ctx.actor.sub.clone(),
        error: error.clone(),
    };
    let event = CloudEvent::new(
        EventType::HoldRejected,
        POOL,
        show_id.as_str(),
        ctx.request_id.as_str(),
        event::data(&data),
        ctx.now,
    )
    .traced(ctx.traceparent.as_deref());
    (Outcome::Failed(error), vec![event])
}

pub fn hold_released(ctx: &CommandContext, hold: &SeatHold) -> (Outcome, Vec<CloudEvent>) {
    let data = event::data(&ended(hold));
    let event =
        CloudEvent::new(EventType::HoldReleased, POOL, hold.hold_id.as_str(), ctx.request_id.as_str(), data, ctx.now)
            .traced(ctx.traceparent.as_deref());
    (Outcome::Succeeded(json!({ "hold_id": hold.hold_id })), vec![event])
}

/// A release that found no live hold of the caller's: a business failure, no event.
pub fn release_failed(error: BusinessError) -> (Outcome, Vec<CloudEvent>) {
    (Outcome::Failed(error), Vec::new())
}

pub fn booking_confirmed(ctx: &CommandContext, booking: &Booking, hold_id: &HoldId) -> (Outcome, Vec<CloudEvent>) {
    let result = json!({
        "booking_id": booking.booking_id,
        "show_id": booking.show_id,
        "seat_ids": booking.seat_ids,
        "amount_cents": booking.amount_cents,
    });
    let data = BookingConfirmedData {
        booking_id: booking.booking_id.clone(),
        hold_id: hold_id.clone(),
        show_id: booking.show_id.clone(),
        seat_ids: booking.seat_ids.clone(),
        amount_cents: booking.amount_cents,
        customer_id: booking.customer_id.clone(),
    };
    let event = CloudEvent::new(
        EventType::BookingConfirmed,
        POOL,
        booking.booking_id.as_str(),
        ctx.request_id.as_str(),
        event::data(&data),
        ctx.now,
    )
    .traced(ctx.traceparent.as_deref());
    (Outcome::Succeeded(result), vec![event])
}

pub fn booking_failed(ctx: &CommandContext, hold_id: &HoldId, error: BusinessError) -> (Outcome, Vec<CloudEvent>) {
    let data = BookingFailedData { hold_id: hold_id.clone(), customer_id: ctx.actor.sub.clone(), error: error.clone() };
    let event = CloudEvent::new(
        EventType::BookingFailed,
        POOL,
        hold_id.as_str(),
        ctx.request_id.as_str(),
        event::data(&data),
        ctx.now,
    )
    .traced(ctx.traceparent.as_deref());
    (Outcome::Failed(error), vec![event])
}

/// The expiry event of a hold: timed at its expiry, the same however often it is built.
pub fn hold_expired(hold: &SeatHold) -> CloudEvent {
    let data = event::data(&ended(hold));
    CloudEvent::new(
        EventType::HoldExpired,
        POOL,
        hold.hold_id.as_str(),
        hold.request_id.as_str(),
        data,
        hold.expires_at,
    )
}

// ---------------------------------------------------------------------------------------
// Decisions: the one place each booking command is decided. An adapter loads what a
// decision needs inside its transaction (or under conditions that restate it), calls the
// function, and commits what it returns; it computes nothing itself.

/// What a hold costs: the show's price for each seat.
pub fn amount_of(show: &Show, hold: &SeatHold) -> u64 {
    show.price_cents.saturating_mul(hold.seat_ids.len() as u64)
}

/// Places a hold on `requested` if every seat exists and is available at `ctx.now`, and
/// the customer's live holds (`held`, read in the same transaction) stay within the cap
/// with these seats added (`hold_limit_reached` otherwise). Returns the hold to store (with its seats to claim) and the decision, which on success
/// carries the hold's delayed expiry message.
pub fn decide_place(
    ctx: &CommandContext,
    show_id: &ShowId,
    show: Option<&Show>,
    requested: &[SeatId],
    current: &[SeatRecord],
    expires_at: Timestamp,
    held: HeldSeats,
) -> (Option<SeatHold>, Decision) {
    if show.is_none() {
        let error = BusinessError::new(ErrorCode::ShowNotFound, format!("no show {show_id}"));
        return (None, hold_rejected(ctx, show_id, requested, error).into());
    }
    if let Err(error) = check_hold(requested, current, ctx.now).and_then(|()| held.check(requested.len())) {
        return (None, hold_rejected(ctx, show_id, requested, error).into());
    }
    let hold = SeatHold {
        hold_id: HoldId::generate(),
        show_id: show_id.clone(),
        customer_id: ctx.actor.sub.clone(),
        seat_ids: requested.to_vec(),
        expires_at,
        status: HoldStatus::Active,
        request_id: ctx.request_id.clone(),
    };
    let expiry = CommandEnvelope {
        request_id: ctx.request_id.clone(),
        actor: ctx.actor.clone(),
        issued_at: ctx.now,
        traceparent: ctx.traceparent.clone(),
        command: Command::ExpireHold { hold_id: hold.hold_id.clone(), expires_at },
    };
    let mut decision: Decision = hold_placed(ctx, &hold).into();
    decision.messages.push(ScheduledMessage::command(&expiry, expires_at));
    (Some(hold), decision)
}

/// Releases a live hold of the caller's: returns the hold whose seats to free.
pub fn decide_release(ctx: &CommandContext, hold_id: &HoldId, hold: Option<&SeatHold>) -> (Option<SeatHold>, Decision) {
    let checked = match hold {
        None => Err(hold_not_found(hold_id)),
        Some(hold) => hold.check_releasable(&ctx.actor.sub, ctx.now).map(|()| hold),
    };
    match checked {
        Ok(hold) => (Some(hold.clone()), hold_released(ctx, hold).into()),
        Err(error) => (None, release_failed(error).into()),
    }
}

/// Turns a live hold of the caller's into a booking paid by `payment`. `seats` are the
/// hold's seats as stored now: if any is no longer this hold's (another hold took it
/// after this one expired), the hold has expired for this customer. The booking costs
/// what was authorized, never a recomputed amount.
pub fn decide_confirm(
    ctx: &CommandContext,
    hold_id: &HoldId,
    hold: Option<&SeatHold>,
    seats: &[SeatRecord],
    payment: &PaymentReceipt,
) -> (Option<Booking>, Decision) {
    let checked = match hold {
        None => Err(hold_not_found(hold_id)),
        Some(hold) => hold.check_confirmable(&ctx.actor.sub, ctx.now).and_then(|()| {
            let still_held = hold.seat_ids.iter().all(|id| {
                seats.iter().any(|s| &s.seat_id == id && s.booking_id.is_none() && s.hold_id.as_ref() == Some(hold_id))
            });
            if still_held { Ok(hold) } else { Err(hold_expired_error(hold)) }
        }),
    };
    match checked {
        Ok(hold) => {
            let booking = Booking {
                booking_id: BookingId::generate(),
                show_id: hold.show_id.clone(),
                seat_ids: hold.seat_ids.clone(),
                amount_cents: payment.amount_cents,
                status: BookingStatus::Confirmed,
                customer_id: ctx.actor.sub.clone(),
                created_at: ctx.now,
            };
            let decision = booking_confirmed(ctx, &booking, hold_id).into();
            (Some(booking), decision)
        }
        Err(error) => (None, booking_failed(ctx, hold_id, error).into()),
    }
}

/// Expires an active hold whose time has come: returns its expiry event, committed with
/// the freed seats, in the trace of the worker expiring it (which continues the hold's).
/// A hold already expired, released or confirmed, or still live, is left alone (its
/// expiry event, if any, was committed when it expired).
pub fn decide_expire(hold: Option<&SeatHold>, now: Timestamp, traceparent: Option<&str>) -> Option<CloudEvent> {
    match hold {
        Some(hold) if hold.status == HoldStatus::Active && hold.expires_at <= now => {
            Some(hold_expired(hold).traced(traceparent))
        }
        _ => None,
    }
}

fn hold_expired_error(hold: &SeatHold) -> BusinessError {
    BusinessError::new(
        ErrorCode::HoldExpired,
        format!("hold {} expired at {}", hold.hold_id, crate::clock::format(hold.expires_at)),
    )
}

#[cfg(test)]
mod tests;
