//! Holds and bookings. Each command reads what it needs, decides with the domain's rules,
//! and commits the seats, the hold or booking and the status document in one
//! transaction whose conditions restate those rules; if a condition fails, something
//! changed since the read, so it reads again and decides anew (a few times, then it
//! reports contention and the worker retries later).

use super::catalog::{seat_from, seat_key};
use super::item::{Item, Placeholders, get_millis, get_n, get_s, get_strings, key, millis, n, s, strings};
use super::requests::StoredRequest;
use super::tables::TTL_ATTRIBUTE;
use super::{ATTEMPTS, Cancelled, DynamoStore, conflict_pause};
use crate::aws::error::build_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use domain::PortError;
use domain::booking::{self, Booking, BookingStatus, HoldStatus, SeatHold, SeatRecord};
use domain::clock::Timestamp;
use domain::error::BusinessError;
use domain::event::CloudEvent;
use domain::ids::{BookingId, HoldId, RequestId, SeatId, ShowId, UserId};
use domain::payment::PaymentReceipt;
use domain::ports::{BookingStore, CommandContext, Completion};
use domain::request::Outcome;
use time::Duration as TimeDuration;

/// How long a finished hold stays readable before DynamoDB's TTL may delete it.
const HOLD_RETENTION: TimeDuration = TimeDuration::days(7);

/// When DynamoDB's TTL may delete a hold (epoch seconds).
fn retention_end(expires_at: Timestamp) -> i64 {
    expires_at.checked_add(HOLD_RETENTION).unwrap_or(expires_at).unix_timestamp().max(0)
}

fn hold_key(hold_id: &HoldId) -> Item {
    key(&[("hold_id", s(hold_id.as_str()))])
}

fn hold_from(item: &Item) -> Result<SeatHold, PortError> {
    let status = get_s(item, "status")?;
    Ok(SeatHold {
        hold_id: HoldId::from(get_s(item, "hold_id")?),
        show_id: ShowId::from(get_s(item, "show_id")?),
        customer_id: UserId::new(get_s(item, "customer_id")?),
        seat_ids: get_strings::<String>(item, "seat_ids")?.iter().map(|id| SeatId::from(id.as_str())).collect(),
        expires_at: get_millis(item, "expires_at")?,
        status: HoldStatus::parse(status).ok_or_else(|| PortError::Corrupt(format!("unknown hold status {status}")))?,
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

fn update(
    table: &str,
    key: Item,
    expression: &str,
    condition: &str,
    p: Placeholders,
) -> Result<TransactWriteItem, PortError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key))
        .update_expression(expression)
        .condition_expression(condition)
        .set_expression_attribute_names(p.name_map())
        .set_expression_attribute_values(p.value_map())
        .build()
        .map_err(|e| build_error("transaction update", e))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

fn create(table: &str, item: Item, key_attr: &str) -> Result<TransactWriteItem, PortError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#k)")
        .expression_attribute_names("#k", key_attr)
        .build()
        .map_err(|e| build_error("transaction put", e))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn attrs(pairs: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>) -> Item {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// What one attempt decided to commit.
struct Plan {
    effects: Vec<TransactWriteItem>,
    outcome: Outcome,
    events: Vec<CloudEvent>,
}

impl Plan {
    fn business(decided: (Outcome, Vec<CloudEvent>)) -> Self {
        Self { effects: Vec::new(), outcome: decided.0, events: decided.1 }
    }
}

impl DynamoStore {
    async fn load_hold(&self, hold_id: &HoldId) -> Result<Option<SeatHold>, PortError> {
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
            "attribute_exists(#seat_id) AND attribute_not_exists(#booking_id) \
             AND (attribute_not_exists(#hold_expires_at) OR #hold_expires_at <= :now)",
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
            "#hold_id = :hold AND attribute_not_exists(#booking_id)",
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
        update(&self.holds, hold_key(&hold.hold_id), &expression, &condition, p)
    }

    async fn plan_hold(
        &self,
        ctx: &CommandContext,
        show_id: &ShowId,
        seat_ids: &[SeatId],
        expires_at: Timestamp,
    ) -> Result<Plan, PortError> {
        if self.load_show(show_id).await?.is_none() {
            let error = BusinessError::new("show_not_found", format!("no show {show_id}"));
            return Ok(Plan::business(booking::hold_rejected(ctx, show_id, seat_ids, error)));
        }
        let current = self.load_seats(show_id, seat_ids).await?;
        if let Err(error) = booking::check_hold(seat_ids, &current, ctx.now) {
            return Ok(Plan::business(booking::hold_rejected(ctx, show_id, seat_ids, error)));
        }
        let hold = SeatHold {
            hold_id: HoldId::generate(),
            show_id: show_id.clone(),
            customer_id: ctx.actor.clone(),
            seat_ids: seat_ids.to_vec(),
            expires_at,
            status: HoldStatus::Active,
            request_id: ctx.request_id.clone(),
        };
        let mut effects =
            seat_ids.iter().map(|seat| self.claim_seat(&hold, seat, ctx.now)).collect::<Result<Vec<_>, _>>()?;
        effects.push(create(
            &self.holds,
            attrs(vec![
                ("hold_id", s(hold.hold_id.as_str())),
                ("show_id", s(show_id.as_str())),
                ("customer_id", s(ctx.actor.as_str())),
                ("seat_ids", strings(seat_ids)),
                ("expires_at", millis(expires_at)),
                ("status", s(HoldStatus::Active.as_str())),
                ("request_id", s(ctx.request_id.as_str())),
                (TTL_ATTRIBUTE, n(retention_end(expires_at))),
            ]),
            "hold_id",
        )?);
        let (outcome, events) = booking::hold_placed(ctx, &hold);
        Ok(Plan { effects, outcome, events })
    }

    async fn plan_release(&self, ctx: &CommandContext, hold_id: &HoldId) -> Result<Plan, PortError> {
        let checked = match self.load_hold(hold_id).await? {
            None => Err(booking::hold_not_found(hold_id)),
            Some(hold) => hold.check_releasable(&ctx.actor, ctx.now).map(|()| hold),
        };
        let hold = match checked {
            Ok(hold) => hold,
            Err(error) => return Ok(Plan::business(booking::release_failed(error))),
        };
        let mut effects = self.free_seats(&hold).await?;
        effects.push(self.close_hold(&hold, HoldStatus::Released, Some(ctx.now), None)?);
        let (outcome, events) = booking::hold_released(ctx, &hold);
        Ok(Plan { effects, outcome, events })
    }

    /// The plan of a confirmation, and the hold it confirms (to explain a failed seat).
    async fn plan_confirm(
        &self,
        ctx: &CommandContext,
        hold_id: &HoldId,
    ) -> Result<(Plan, Option<SeatHold>), PortError> {
        let checked = match self.load_hold(hold_id).await? {
            None => Err(booking::hold_not_found(hold_id)),
            Some(hold) => hold.check_confirmable(&ctx.actor, ctx.now).map(|()| hold),
        };
        let hold = match checked {
            Ok(hold) => hold,
            Err(error) => {
                return Ok((Plan::business(booking::booking_failed(ctx, hold_id, error)), None));
            }
        };
        let Some(show) = self.load_show(&hold.show_id).await? else {
            return Err(PortError::Corrupt(format!("hold {hold_id} names a missing show")));
        };
        let booking = Booking {
            booking_id: BookingId::generate(),
            show_id: hold.show_id.clone(),
            seat_ids: hold.seat_ids.clone(),
            amount_cents: show.price_cents.saturating_mul(hold.seat_ids.len() as u64),
            status: BookingStatus::Confirmed,
            customer_id: ctx.actor.clone(),
            created_at: ctx.now,
        };
        // Every seat must still be this hold's: the hold being live guarantees it, and
        // the condition checks it.
        let mut effects = Vec::with_capacity(hold.seat_ids.len() + 2);
        for seat in &hold.seat_ids {
            effects.push(update(
                &self.seats,
                seat_key(&hold.show_id, seat),
                "SET #booking_id = :booking REMOVE #hold_id, #hold_expires_at",
                "#hold_id = :hold AND attribute_not_exists(#booking_id)",
                Placeholders::names(&["booking_id", "hold_id", "hold_expires_at"])
                    .value("booking", s(booking.booking_id.as_str()))
                    .value("hold", s(hold_id.as_str())),
            )?);
        }
        effects.push(self.close_hold(&hold, HoldStatus::Confirmed, Some(ctx.now), Some(&booking.booking_id))?);
        effects.push(create(
            &self.bookings,
            attrs(vec![
                ("booking_id", s(booking.booking_id.as_str())),
                ("hold_id", s(hold_id.as_str())),
                ("show_id", s(booking.show_id.as_str())),
                ("customer_id", s(ctx.actor.as_str())),
                ("seat_ids", strings(&booking.seat_ids)),
                ("amount_cents", n(booking.amount_cents)),
                ("created_at", millis(ctx.now)),
                ("request_id", s(ctx.request_id.as_str())),
                ("status", s("confirmed")),
            ]),
            "booking_id",
        )?);
        let (outcome, events) = booking::booking_confirmed(ctx, &booking, hold_id);
        Ok((Plan { effects, outcome, events }, Some(hold)))
    }

    /// Runs read-decide-commit until it commits or finds the request terminal.
    async fn apply(
        &self,
        op: &'static str,
        request_id: &RequestId,
        now: Timestamp,
        mut plan: impl AsyncPlanner,
    ) -> Result<Completion, PortError> {
        for attempt in 1..=ATTEMPTS {
            let stored: StoredRequest = self.existing_request(request_id).await?;
            if let Some(done) = stored.terminal_completion()? {
                return Ok(done);
            }
            let decided = plan.plan(self).await?;
            let committed = match self.commit(op, &stored, decided.effects, decided.outcome, decided.events, now).await
            {
                // Another transaction held one of the items: read, decide and try again
                // after a short pause, as the worker would, but sooner.
                Err(PortError::Contention(why)) if attempt < ATTEMPTS => {
                    tracing::debug!(op, %request_id, attempt, why, "transaction conflict; trying again");
                    tokio::time::sleep(conflict_pause(attempt)).await;
                    continue;
                }
                other => other?,
            };
            match committed {
                Ok(done) => return Ok(done),
                Err(cancelled) => {
                    if let Some(outcome) = plan.explain(&cancelled) {
                        let stored = self.existing_request(request_id).await?;
                        if let Some(done) = stored.terminal_completion()? {
                            return Ok(done);
                        }
                        if let Ok(done) = self.commit(op, &stored, Vec::new(), outcome.0, outcome.1, now).await? {
                            return Ok(done);
                        }
                    }
                    tracing::debug!(op, %request_id, attempt, "state changed under the transaction; deciding again");
                }
            }
        }
        Err(PortError::Contention(format!("{op}: state kept changing under request {request_id}")))
    }
}

/// One command's read-and-decide step, redone after a lost race.
#[async_trait]
trait AsyncPlanner: Send {
    async fn plan(&mut self, store: &DynamoStore) -> Result<Plan, PortError>;

    /// A business outcome that a cancellation proves without reading again, if any.
    fn explain(&self, _cancelled: &Cancelled) -> Option<(Outcome, Vec<CloudEvent>)> {
        None
    }
}

struct PlaceHold<'a> {
    ctx: &'a CommandContext,
    show_id: &'a ShowId,
    seat_ids: &'a [SeatId],
    expires_at: Timestamp,
}

#[async_trait]
impl AsyncPlanner for PlaceHold<'_> {
    async fn plan(&mut self, store: &DynamoStore) -> Result<Plan, PortError> {
        // A seat taken since the last read shows up in the re-read as `seats_unavailable`.
        store.plan_hold(self.ctx, self.show_id, self.seat_ids, self.expires_at).await
    }
}

struct ReleaseHold<'a> {
    ctx: &'a CommandContext,
    hold_id: &'a HoldId,
}

#[async_trait]
impl AsyncPlanner for ReleaseHold<'_> {
    async fn plan(&mut self, store: &DynamoStore) -> Result<Plan, PortError> {
        store.plan_release(self.ctx, self.hold_id).await
    }
}

struct ConfirmBooking<'a> {
    ctx: &'a CommandContext,
    hold_id: &'a HoldId,
    hold: Option<SeatHold>,
}

#[async_trait]
impl AsyncPlanner for ConfirmBooking<'_> {
    async fn plan(&mut self, store: &DynamoStore) -> Result<Plan, PortError> {
        let (plan, hold) = store.plan_confirm(self.ctx, self.hold_id).await?;
        self.hold = hold;
        Ok(plan)
    }

    /// A seat no longer this hold's while the hold itself passed its check: another
    /// worker, whose clock had already passed the expiry, placed a new hold on it. For
    /// this customer the hold has expired.
    fn explain(&self, cancelled: &Cancelled) -> Option<(Outcome, Vec<CloudEvent>)> {
        let hold = self.hold.as_ref()?;
        let seats = 0..hold.seat_ids.len();
        if !cancelled.any_failed(seats) || cancelled.failed(hold.seat_ids.len()) {
            return None;
        }
        let expired = SeatHold { status: HoldStatus::Expired, ..hold.clone() };
        let error = expired.check_confirmable(&self.ctx.actor, self.ctx.now).err()?;
        Some(booking::booking_failed(self.ctx, self.hold_id, error))
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
    ) -> Result<Completion, PortError> {
        let planner = PlaceHold { ctx, show_id, seat_ids, expires_at };
        self.apply("place_hold", &ctx.request_id, ctx.now, planner).await
    }

    async fn release_hold(&self, ctx: &CommandContext, hold_id: &HoldId) -> Result<Completion, PortError> {
        self.apply("release_hold", &ctx.request_id, ctx.now, ReleaseHold { ctx, hold_id }).await
    }

    async fn confirm_booking(
        &self,
        ctx: &CommandContext,
        hold_id: &HoldId,
        _payment: &PaymentReceipt,
    ) -> Result<Completion, PortError> {
        self.apply("confirm_booking", &ctx.request_id, ctx.now, ConfirmBooking { ctx, hold_id, hold: None }).await
    }

    async fn expire_hold(&self, hold_id: &HoldId, now: Timestamp) -> Result<Option<CloudEvent>, PortError> {
        for attempt in 1..=ATTEMPTS {
            let Some(hold) = self.load_hold(hold_id).await? else {
                return Ok(None);
            };
            match hold.status {
                HoldStatus::Expired => return Ok(Some(booking::hold_expired(&hold))),
                HoldStatus::Active if hold.expires_at <= now => {
                    let mut items = self.free_seats(&hold).await?;
                    items.push(self.close_hold(&hold, HoldStatus::Expired, None, None)?);
                    match self.transact("expire_hold", items).await? {
                        Ok(()) => return Ok(Some(booking::hold_expired(&hold))),
                        Err(_) => {
                            tracing::debug!(%hold_id, attempt, "hold or its seats changed while expiring; reading again");
                        }
                    }
                }
                _ => return Ok(None),
            }
        }
        Err(PortError::Contention(format!("hold {hold_id} kept changing while expiring")))
    }

    async fn hold(&self, hold_id: &HoldId) -> Result<Option<SeatHold>, PortError> {
        self.load_hold(hold_id).await
    }

    async fn booking(&self, booking_id: &BookingId) -> Result<Option<Booking>, PortError> {
        let item = self.get_one(&self.bookings, key(&[("booking_id", s(booking_id.as_str()))])).await?;
        item.as_ref().map(booking_from).transpose()
    }
}
