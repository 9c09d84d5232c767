//! Holds and bookings. Each command reads what it needs, decides with the domain's rules,
//! and commits the seats, the hold or booking and the status document in one
//! transaction whose conditions restate those rules; if a condition fails, something
//! changed since the read, so it reads again and decides anew (a few times, then it
//! reports contention and the worker retries later).

use super::DynamoStore;
use super::catalog::{seat_from, seat_key};
use super::item::{Item, Placeholders, get_millis, get_n, get_s, get_strings, item, millis, n, opt_n, s, strings};
use super::requests::StoredRequest;
use super::tables::TTL_ATTRIBUTE;
use super::transaction::{ATTEMPTS, Step, Transaction, create, retrying, update};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use domain::PortError;
use domain::booking::{self, Booking, BookingStatus, HeldSeats, HoldStatus, SeatHold, SeatRecord};
use domain::clock::Timestamp;
use domain::event::CloudEvent;
use domain::ids::{BookingId, HoldId, RequestId, SeatId, ShowId, UserId};
use domain::outbox::{Decision, outbox_entries};
use domain::payment::PaymentReceipt;
use domain::ports::{BookingStore, Completion};
use domain::request::CommandContext;
use std::future::Future;
use time::Duration as TimeDuration;

/// How long a finished hold stays readable before DynamoDB's TTL may delete it.
const HOLD_RETENTION: TimeDuration = TimeDuration::days(7);

/// When DynamoDB's TTL may delete a hold (epoch seconds).
fn retention_end(expires_at: Timestamp) -> i64 {
    expires_at.checked_add(HOLD_RETENTION).unwrap_or(expires_at).unix_timestamp().max(0)
}

fn hold_key(hold_id: &HoldId) -> Item {
    item([("hold_id", s(hold_id.as_str()))])
}

/// The hold cap's record of one customer lives in the holds table beside the holds, under
/// a key no generated hold id has (`held_by:<sub>`): one top-level attribute per live hold
/// (`live_<hold_id>`: `{seats, expires_at}`) and a `version` that every hold placed
/// bumps under a condition, so two racing holds cannot both count the same room.
/// Releasing, expiring or confirming a hold removes its attribute in that transaction.
const HELD_BY: &str = "held_by:";
const LIVE: &str = "live_";

fn held_by_key(customer: &UserId) -> Item {
    item([("hold_id", s(format!("{HELD_BY}{customer}")))])
}

/// One entry of a cap record: a hold, its seat count and its expiry.
type LiveHold = (HoldId, usize, Timestamp);

/// The live holds a customer's cap record lists, and its version.
fn held_from(item: Option<&Item>) -> Result<(Vec<LiveHold>, u64), PortError> {
    let Some(item) = item else { return Ok((Vec::new(), 0)) };
    let mut live = Vec::new();
    for (name, value) in item {
        let Some(hold_id) = name.strip_prefix(LIVE) else { continue };
        let entry = value.as_m().map_err(|_| PortError::Corrupt(format!("`{name}` is not a map")))?;
        live.push((HoldId::from(hold_id), get_n(entry, "seats")?, get_millis(entry, "expires_at")?));
    }
    Ok((live, opt_n(item, "version")?.unwrap_or(0)))
}

fn hold_from(item: &Item) -> Result<SeatHold, PortError> {
    let status = get_s(item, "status")?;
    Ok(SeatHold {
        hold_id: HoldId::from(get_s(item, "hold_id")?),
        show_id: ShowId::from(get_s(item, "show_id")?),
        customer_id: UserId::new(get_s(item, "customer_id")?),
        seat_ids: get_strings::<String>(item, "seat_ids")?.iter().map(|id| SeatId::from(id.as_str())).collect(),
        expires_at: get_millis(item, "expires_at")?,
        status: HoldStatus::parse(status)?,
        request_id: RequestId::from(get_s(item, "request_id")?),
    })
}

fn booking_from(item: &Item) -> Result<Booking, PortError> {
    Ok(Booking {
        booking_id: BookingId::from(get_s(item, "booking_id")?),
        show_id: ShowId::from(get_s(item, "show_id")?),
        seat_ids: get_strings::<String>(item, "seat_ids")?.iter().map(|id| SeatId::from(id.as_str())).collect(),
        amount_cents: get_n(item, "amount_cents")?,
        status: BookingStatus::Confirmed,
        customer_id: UserId::new(get_s(item, "customer_id")?),
        created_at: get_millis(item, "created_at")?,
    })
}

/// What one attempt decided to commit: the domain's decision and the writes, each under
/// a condition that restates the rule, that carry it out.
struct Plan {
    effects: Vec<TransactWriteItem>,
    decision: Decision,
}

impl DynamoStore {
    async fn load_hold(&self, hold_id: &HoldId) -> Result<Option<SeatHold>, PortError> {
        if hold_id.as_str().starts_with(HELD_BY) {
            // A cap record, not a hold: no client may name it.
            return Ok(None);
        }
        self.get_one(&self.holds, hold_key(hold_id)).await?.as_ref().map(hold_from).transpose()
    }

    /// The stored records of these seats of the show, in the order asked; missing seats
    /// are left out.
    async fn load_seats(&self, show_id: &ShowId, seat_ids: &[SeatId]) -> Result<Vec<SeatRecord>, PortError> {
        let keys = seat_ids.iter().map(|seat| seat_key(show_id, seat)).collect();
        self.get_many(&self.seats, keys).await?.iter().map(seat_from).collect()
    }

    /// Claims a seat for a hold. The condition is the hold rule itself: never booked, and
    /// either never held or held by a hold that has expired by `now`.
    fn claim_seat(&self, hold: &SeatHold, seat: &SeatId, now: Timestamp) -> Result<TransactWriteItem, PortError> {
        update(
            &self.seats,
            seat_key(&hold.show_id, seat),
            "SET #hold_id = :hold, #hold_expires_at = :expires",
            Some(
                "attribute_exists(#seat_id) AND attribute_not_exists(#booking_id) \
                 AND (attribute_not_exists(#hold_expires_at) OR #hold_expires_at <= :now)",
            ),
            Placeholders::names(&["hold_id", "hold_expires_at", "seat_id", "booking_id"])
                .value("hold", s(hold.hold_id.as_str()))
                .value("expires", millis(hold.expires_at))
                .value("now", millis(now)),
        )
    }

    /// Frees a seat this hold still claims; never one a later hold took over.
    fn free_seat(&self, hold: &SeatHold, seat: &SeatId) -> Result<TransactWriteItem, PortError> {
        update(
            &self.seats,
            seat_key(&hold.show_id, seat),
            "REMOVE #hold_id, #hold_expires_at",
            Some("#hold_id = :hold AND attribute_not_exists(#booking_id)"),
            Placeholders::names(&["hold_id", "hold_expires_at", "booking_id"]).value("hold", s(hold.hold_id.as_str())),
        )
    }

    /// The seats this hold still claims, each freed under that condition.
    async fn free_seats(&self, hold: &SeatHold) -> Result<Vec<TransactWriteItem>, PortError> {
        let current = self.load_seats(&hold.show_id, &hold.seat_ids).await?;
        current
            .iter()
            .filter(|seat| seat.hold_id.as_ref() == Some(&hold.hold_id) && seat.booking_id.is_none())
            .map(|seat| self.free_seat(hold, &seat.seat_id))
            .collect()
    }

    /// Moves a hold from `active` to `to`; with `live_at`, only while it has not expired.
    fn close_hold(
        &self,
        hold: &SeatHold,
        to: HoldStatus,
        live_at: Option<Timestamp>,
        booking_id: Option<&BookingId>,
    ) -> Result<TransactWriteItem, PortError> {
        let mut names = vec!["status"];
        let mut expression = "SET #status = :to".to_owned();
        let mut condition = "#status = :active".to_owned();
        if booking_id.is_some() {
            names.push("booking_id");
            expression.push_str(", #booking_id = :booking");
        }
        if live_at.is_some() {
            names.push("expires_at");
            condition.push_str(" AND #expires_at > :now");
        }
        let mut p =
            Placeholders::names(&names).value("to", s(to.as_str())).value("active", s(HoldStatus::Active.as_str()));
        if let Some(booking_id) = booking_id {
            p = p.value("booking", s(booking_id.as_str()));
        }
        if let Some(now) = live_at {
            p = p.value("now", millis(now));
        }
        update(&self.holds, hold_key(&hold.hold_id), &expression, Some(&condition), p)
    }

    /// Adds a hold to its customer's cap record, dropping the entries that have expired,
    /// under the condition that nobody placed a hold since `version` was read.
    fn count_hold(
        &self,
        hold: &SeatHold,
        live: &[LiveHold],
        version: u64,
        now: Timestamp,
    ) -> Result<TransactWriteItem, PortError> {
        let entry = format!("{LIVE}{}", hold.hold_id);
        let lapsed: Vec<String> =
            live.iter().filter(|(_, _, at)| *at <= now).map(|(id, _, _)| format!("{LIVE}{id}")).collect();
        let mut expression = format!("SET #version = :next, #{entry} = :entry");
        if !lapsed.is_empty() {
            let removed: Vec<String> = lapsed.iter().map(|name| format!("#{name}")).collect();
            expression.push_str(&format!(" REMOVE {}", removed.join(", ")));
        }
        let mut names = vec!["version", entry.as_str()];
        names.extend(lapsed.iter().map(String::as_str));
        let value = item([("seats", n(hold.seat_ids.len())), ("expires_at", millis(hold.expires_at))]);
        update(
            &self.holds,
            held_by_key(&hold.customer_id),
            &expression,
            Some("attribute_not_exists(#version) OR #version = :seen"),
            Placeholders::names(&names)
                .value("next", n(version + 1))
                .value("seen", n(version))
                .value("entry", AttributeValue::M(value)),
        )
    }

    /// Takes a hold off its customer's cap record (a no-op if it is not there).
    fn uncount_hold(&self, hold: &SeatHold) -> Result<TransactWriteItem, PortError> {
        let entry = format!("{LIVE}{}", hold.hold_id);
        update(
            &self.holds,
            held_by_key(&hold.customer_id),
            &format!("REMOVE #{entry}"),
            None,
            Placeholders::names(&[&entry]),
        )
    }

    async fn plan_hold(
        &self,
        ctx: &CommandContext,
        show_id: &ShowId,
        seat_ids: &[SeatId],
        expires_at: Timestamp,
        max_held_seats: usize,
    ) -> Result<Plan, PortError> {
        let show = self.load_show(show_id).await?;
        let current = self.load_seats(show_id, seat_ids).await?;
        let record = self.get_one(&self.holds, held_by_key(&ctx.actor.sub)).await?;
        let (live, version) = held_from(record.as_ref())?;
        let held = HeldSeats::counting(live.iter().map(|(_, seats, at)| (*seats, *at)), ctx.now, max_held_seats);
        let (hold, decision) = booking::decide_place(ctx, show_id, show.as_ref(), seat_ids, &current, expires_at, held);
        let Some(hold) = hold else { return Ok(Plan { effects: Vec::new(), decision }) };
        let mut effects =
            seat_ids.iter().map(|seat| self.claim_seat(&hold, seat, ctx.now)).collect::<Result<Vec<_>, _>>()?;
        effects.push(self.count_hold(&hold, &live, version, ctx.now)?);
        effects.push(create(
            &self.holds,
            item([
                ("hold_id", s(hold.hold_id.as_str())),
                ("show_id", s(show_id.as_str())),
                ("customer_id", s(hold.customer_id.as_str())),
                ("seat_ids", strings(seat_ids)),
                ("expires_at", millis(expires_at)),
                ("status", s(HoldStatus::Active.as_str())),
                ("request_id", s(ctx.request_id.as_str())),
                (TTL_ATTRIBUTE, n(retention_end(expires_at))),
            ]),
            "hold_id",
        )?);
        Ok(Plan { effects, decision })
    }

    async fn plan_release(&self, ctx: &CommandContext, hold_id: &HoldId) -> Result<Plan, PortError> {
        let stored = self.load_hold(hold_id).await?;
        let (freed, decision) = booking::decide_release(ctx, hold_id, stored.as_ref());
        let Some(hold) = freed else { return Ok(Plan { effects: Vec::new(), decision }) };
        let mut effects = self.free_seats(&hold).await?;
        effects.push(self.close_hold(&hold, HoldStatus::Released, Some(ctx.now), None)?);
        effects.push(self.uncount_hold(&hold)?);
        Ok(Plan { effects, decision })
    }

    async fn plan_confirm(
        &self,
        ctx: &CommandContext,
        hold_id: &HoldId,
        payment: &PaymentReceipt,
    ) -> Result<Plan, PortError> {
        let Some(first) = self.load_hold(hold_id).await? else {
            let (_, decision) = booking::decide_confirm(ctx, hold_id, None, &[], payment);
            return Ok(Plan { effects: Vec::new(), decision });
        };
        let seats = self.load_seats(&first.show_id, &first.seat_ids).await?;
        // The hold again, read after its seats: a confirmation that booked them (in one
        // transaction with the hold's status) shows here, so a lost race reads as the
        // hold being taken (`hold_not_found`), not as a seat lost to another hold.
        let hold = self.load_hold(hold_id).await?;
        let (booking, decision) = booking::decide_confirm(ctx, hold_id, hold.as_ref(), &seats, payment);
        let (Some(booking), Some(hold)) = (booking, hold) else {
            return Ok(Plan { effects: Vec::new(), decision });
        };
        // Every seat must still be this hold's, and the hold still live: the conditions
        // restate what the decision read.
        let mut effects = Vec::with_capacity(hold.seat_ids.len() + 2);
        for seat in &hold.seat_ids {
            effects.push(update(
                &self.seats,
                seat_key(&hold.show_id, seat),
                "SET #booking_id = :booking REMOVE #hold_id, #hold_expires_at",
                Some("#hold_id = :hold AND attribute_not_exists(#booking_id)"),
                Placeholders::names(&["booking_id", "hold_id", "hold_expires_at"])
                    .value("booking", s(booking.booking_id.as_str()))
                    .value("hold", s(hold_id.as_str())),
            )?);
        }
        effects.push(self.close_hold(&hold, HoldStatus::Confirmed, Some(ctx.now), Some(&booking.booking_id))?);
        // Booked seats are no longer held.
        effects.push(self.uncount_hold(&hold)?);
        effects.push(create(
            &self.bookings,
            item([
                ("booking_id", s(booking.booking_id.as_str())),
                ("hold_id", s(hold_id.as_str())),
                ("show_id", s(booking.show_id.as_str())),
                ("customer_id", s(booking.customer_id.as_str())),
                ("seat_ids", strings(&booking.seat_ids)),
                ("amount_cents", n(booking.amount_cents)),
                ("created_at", millis(booking.created_at)),
                ("request_id", s(ctx.request_id.as_str())),
                ("payment_id", s(payment.payment_id.as_str())),
                ("status", s("confirmed")),
            ]),
            "booking_id",
        )?);
        Ok(Plan { effects, decision })
    }

    /// Reads the request and, unless it is terminal, decides with `plan` and commits,
    /// round after round until it commits or finds the request terminal.
    async fn apply<F, Fut>(&self, op: &'static str, ctx: &CommandContext, plan: F) -> Result<Completion, PortError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Plan, PortError>>,
    {
        let plan = &plan;
        retrying(op, ATTEMPTS, move || async move {
            let stored: StoredRequest = self.existing_request(&ctx.request_id).await?;
            if let Some(done) = stored.terminal_completion()? {
                return Ok(Step::Done(done));
            }
            let Plan { effects, decision } = plan().await?;
            Ok(match self.commit(op, &stored, effects, decision, ctx.now).await? {
                Ok(done) => Step::Done(done),
                // A condition failed: the next round's read shows what changed (a seat
                // taken, a hold expired), and the domain decides again.
                Err(_) => Step::Again("state changed under the transaction"),
            })
        })
        .await
    }
}

#[async_trait]
impl BookingStore for DynamoStore {
    async fn place_hold(
        &self,
        ctx: &CommandContext,
        show_id: &ShowId,
        seat_ids: &[SeatId],
        expires_at: Timestamp,
        max_held_seats: usize,
    ) -> Result<Completion, PortError> {
        // A seat taken since the last read shows up in the re-read as `seats_unavailable`;
        // a hold counted since, in the re-read of the cap record.
        self.apply("place_hold", ctx, || self.plan_hold(ctx, show_id, seat_ids, expires_at, max_held_seats)).await
    }

    async fn release_hold(&self, ctx: &CommandContext, hold_id: &HoldId) -> Result<Completion, PortError> {
        self.apply("release_hold", ctx, || self.plan_release(ctx, hold_id)).await
    }

    async fn confirm_booking(
        &self,
        ctx: &CommandContext,
        hold_id: &HoldId,
        payment: &PaymentReceipt,
    ) -> Result<Completion, PortError> {
        self.apply("confirm_booking", ctx, || self.plan_confirm(ctx, hold_id, payment)).await
    }

    async fn expire_hold(
        &self,
        hold_id: &HoldId,
        now: Timestamp,
        traceparent: Option<&str>,
    ) -> Result<Option<CloudEvent>, PortError> {
        retrying("expire_hold", ATTEMPTS, move || async move {
            let hold = self.load_hold(hold_id).await?;
            let (Some(event), Some(hold)) = (booking::decide_expire(hold.as_ref(), now, traceparent), hold) else {
                return Ok(Step::Done(None));
            };
            let mut tx = Transaction::from(self.free_seats(&hold).await?);
            tx.add(self.close_hold(&hold, HoldStatus::Expired, None, None)?);
            tx.add(self.uncount_hold(&hold)?);
            tx.extend(self.outbox_puts(&outbox_entries(std::slice::from_ref(&event), &[]), now)?);
            Ok(match self.transact("expire_hold", tx).await? {
                Ok(()) => {
                    self.outbox_committed();
                    Step::Done(Some(event))
                }
                Err(_) => Step::Again("the hold or its seats changed while expiring"),
            })
        })
        .await
    }

    async fn hold(&self, hold_id: &HoldId) -> Result<Option<SeatHold>, PortError> {
        self.load_hold(hold_id).await
    }

    async fn booking(&self, booking_id: &BookingId) -> Result<Option<Booking>, PortError> {
        let item = self.get_one(&self.bookings, item([("booking_id", s(booking_id.as_str()))])).await?;
        item.as_ref().map(booking_from).transpose()
    }
}
