//! Holds and bookings. Each method runs as one write job: the seats, the hold or booking,
//! the status document and its events commit together or not at all.

use super::Embedded;
use super::bus;
use super::catalog::{load_show, seat_from};
use super::db::{json_error, sql_error};
use super::requests::complete_open;
use async_trait::async_trait;
use domain::PortError;
use domain::booking::{self, Booking, BookingStatus, HeldSeats, HoldStatus, SeatHold, SeatRecord};
use domain::clock::{self, Timestamp};
use domain::event::CloudEvent;
use domain::ids::{BookingId, HoldId, RequestId, SeatId, ShowId, UserId};
use domain::payment::PaymentReceipt;
use domain::ports::{BookingStore, Completion};
use domain::request::CommandContext;
use rusqlite::{Connection, OptionalExtension, Row, params};

fn hold_from(r: &Row<'_>) -> rusqlite::Result<(SeatHold, String, String)> {
    let hold = SeatHold {
        hold_id: HoldId::from(r.get::<_, String>(0)?),
        show_id: ShowId::from(r.get::<_, String>(1)?),
        customer_id: UserId::new(r.get::<_, String>(2)?),
        seat_ids: Vec::new(),
        expires_at: clock::from_millis(r.get(4)?),
        status: HoldStatus::Active,
        request_id: RequestId::from(r.get::<_, String>(6)?),
    };
    Ok((hold, r.get(3)?, r.get(5)?))
}

fn load_hold(conn: &Connection, hold_id: &HoldId) -> Result<Option<SeatHold>, PortError> {
    let row = conn
        .prepare_cached(
            "SELECT hold_id, show_id, customer_id, seat_ids, expires_at, status, request_id
             FROM holds WHERE hold_id = ?1",
        )
        .map_err(sql_error)?
        .query_row([hold_id.as_str()], hold_from)
        .optional()
        .map_err(sql_error)?;
    row.map(|(mut hold, seats, status)| {
        hold.seat_ids = serde_json::from_str(&seats).map_err(json_error)?;
        hold.status = HoldStatus::parse(&status)?;
        Ok(hold)
    })
    .transpose()
}

fn load_seats(conn: &Connection, show_id: &ShowId, seat_ids: &[SeatId]) -> Result<Vec<SeatRecord>, PortError> {
    let mut select = conn
        .prepare_cached(
            "SELECT seat_id, booking_id, hold_id, hold_expires_at FROM seats WHERE show_id = ?1 AND seat_id = ?2",
        )
        .map_err(sql_error)?;
    let mut seats = Vec::with_capacity(seat_ids.len());
    for seat in seat_ids {
        if let Some(s) =
            select.query_row(params![show_id.as_str(), seat.as_str()], seat_from).optional().map_err(sql_error)?
        {
            seats.push(s);
        }
    }
    Ok(seats)
}

/// What the customer's live holds cover now, for the hold cap. Read in the hold's write
/// job: the one writer serializes racing holds, so the count cannot go stale before the
/// commit.
fn held_seats(conn: &Connection, customer: &UserId, now: Timestamp, max: usize) -> Result<HeldSeats, PortError> {
    let mut select = conn
        .prepare_cached(
            "SELECT json_array_length(seat_ids), expires_at FROM holds
             WHERE customer_id = ?1 AND status = 'active' AND expires_at > ?2",
        )
        .map_err(sql_error)?;
    let rows = select
        .query_map(params![customer.as_str(), clock::to_millis(now)], |r| {
            Ok((r.get::<_, i64>(0)?, clock::from_millis(r.get(1)?)))
        })
        .map_err(sql_error)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql_error)?;
    Ok(HeldSeats::counting(rows.into_iter().map(|(n, at)| (usize::try_from(n).unwrap_or(0), at)), now, max))
}

/// Frees the seats a hold still claims (never a seat that a later hold took over).
fn free_seats(conn: &Connection, hold: &SeatHold) -> Result<(), PortError> {
    conn.prepare_cached(
        "UPDATE seats SET hold_id = NULL, hold_expires_at = NULL
         WHERE show_id = ?1 AND hold_id = ?2 AND booking_id IS NULL",
    )
    .map_err(sql_error)?
    .execute(params![hold.show_id.as_str(), hold.hold_id.as_str()])
    .map_err(sql_error)?;
    Ok(())
}

fn set_hold_status(conn: &Connection, hold_id: &HoldId, status: HoldStatus) -> Result<(), PortError> {
    conn.prepare_cached("UPDATE holds SET status = ?2 WHERE hold_id = ?1")
        .map_err(sql_error)?
        .execute(params![hold_id.as_str(), status.as_str()])
        .map_err(sql_error)?;
    Ok(())
}

/// Stores a new hold and claims its seats. The WHERE repeats the hold rule as a guard:
/// a seat that is not available is not taken.
fn insert_hold(conn: &Connection, hold: &SeatHold, now: Timestamp) -> Result<(), PortError> {
    conn.prepare_cached(
        "INSERT INTO holds (hold_id, show_id, customer_id, seat_ids, expires_at, status, request_id)
         VALUES (?1, ?2, ?3, ?4, ?5, 'active', ?6)",
    )
    .map_err(sql_error)?
    .execute(params![
        hold.hold_id.as_str(),
        hold.show_id.as_str(),
        hold.customer_id.as_str(),
        serde_json::to_string(&hold.seat_ids).map_err(json_error)?,
        clock::to_millis(hold.expires_at),
        hold.request_id.as_str()
    ])
    .map_err(sql_error)?;
    let mut claim = conn
        .prepare_cached(
            "UPDATE seats SET hold_id = ?3, hold_expires_at = ?4
             WHERE show_id = ?1 AND seat_id = ?2 AND booking_id IS NULL
               AND (hold_expires_at IS NULL OR hold_expires_at <= ?5)",
        )
        .map_err(sql_error)?;
    for seat in &hold.seat_ids {
        let n = claim
            .execute(params![
                hold.show_id.as_str(),
                seat.as_str(),
                hold.hold_id.as_str(),
                clock::to_millis(hold.expires_at),
                clock::to_millis(now)
            ])
            .map_err(sql_error)?;
        if n != 1 {
            return Err(PortError::Contention(format!("seat {seat} changed under the hold")));
        }
    }
    Ok(())
}

/// Stores a booking and moves the hold's seats to it; the WHERE guards as above.
fn insert_booking(
    conn: &Connection,
    ctx: &CommandContext,
    hold: &SeatHold,
    booking: &Booking,
) -> Result<(), PortError> {
    conn.prepare_cached(
        "INSERT INTO bookings (booking_id, hold_id, show_id, customer_id, seat_ids, amount_cents, created_at, request_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .map_err(sql_error)?
    .execute(params![
        booking.booking_id.as_str(),
        hold.hold_id.as_str(),
        booking.show_id.as_str(),
        booking.customer_id.as_str(),
        serde_json::to_string(&booking.seat_ids).map_err(json_error)?,
        booking.amount_cents,
        clock::to_millis(booking.created_at),
        ctx.request_id.as_str()
    ])
    .map_err(sql_error)?;
    let booked = conn
        .prepare_cached(
            "UPDATE seats SET booking_id = ?3, hold_id = NULL, hold_expires_at = NULL
             WHERE show_id = ?1 AND hold_id = ?2 AND booking_id IS NULL",
        )
        .map_err(sql_error)?
        .execute(params![hold.show_id.as_str(), hold.hold_id.as_str(), booking.booking_id.as_str()])
        .map_err(sql_error)?;
    if booked != hold.seat_ids.len() {
        return Err(PortError::Contention(format!("hold {} lost a seat under the booking", hold.hold_id)));
    }
    set_hold_status(conn, &hold.hold_id, HoldStatus::Confirmed)
}

#[async_trait]
impl BookingStore for Embedded {
    async fn place_hold(
        &self,
        ctx: &CommandContext,
        show_id: &ShowId,
        seat_ids: &[SeatId],
        expires_at: Timestamp,
        max_held_seats: usize,
    ) -> Result<Completion, PortError> {
        let (ctx, show_id, seat_ids) = (ctx.clone(), show_id.clone(), seat_ids.to_vec());
        self.write_completion(ctx.request_id.clone(), ctx.delivery.clone(), move |conn, open| {
            let show = load_show(conn, &show_id)?;
            let current = load_seats(conn, &show_id, &seat_ids)?;
            let held = held_seats(conn, &ctx.actor.sub, ctx.now, max_held_seats)?;
            let (hold, decision) =
                booking::decide_place(&ctx, &show_id, show.as_ref(), &seat_ids, &current, expires_at, held);
            if let Some(hold) = &hold {
                insert_hold(conn, hold, ctx.now)?;
            }
            complete_open(conn, open, decision, ctx.now)
        })
        .await
    }

    async fn release_hold(&self, ctx: &CommandContext, hold_id: &HoldId) -> Result<Completion, PortError> {
        let (ctx, hold_id) = (ctx.clone(), hold_id.clone());
        self.write_completion(ctx.request_id.clone(), ctx.delivery.clone(), move |conn, open| {
            let stored = load_hold(conn, &hold_id)?;
            let (freed, decision) = booking::decide_release(&ctx, &hold_id, stored.as_ref());
            if let Some(hold) = &freed {
                free_seats(conn, hold)?;
                set_hold_status(conn, &hold_id, HoldStatus::Released)?;
            }
            complete_open(conn, open, decision, ctx.now)
        })
        .await
    }

    async fn confirm_booking(
        &self,
        ctx: &CommandContext,
        hold_id: &HoldId,
        payment: &PaymentReceipt,
    ) -> Result<Completion, PortError> {
        let (ctx, hold_id, payment) = (ctx.clone(), hold_id.clone(), payment.clone());
        self.write_completion(ctx.request_id.clone(), ctx.delivery.clone(), move |conn, open| {
            let hold = load_hold(conn, &hold_id)?;
            let seats = match &hold {
                Some(h) => load_seats(conn, &h.show_id, &h.seat_ids)?,
                None => Vec::new(),
            };
            let (booking, decision) = booking::decide_confirm(&ctx, &hold_id, hold.as_ref(), &seats, &payment);
            if let (Some(booking), Some(hold)) = (&booking, &hold) {
                insert_booking(conn, &ctx, hold, booking)?;
            }
            complete_open(conn, open, decision, ctx.now)
        })
        .await
    }

    async fn expire_hold(
        &self,
        hold_id: &HoldId,
        now: Timestamp,
        traceparent: Option<&str>,
    ) -> Result<Option<CloudEvent>, PortError> {
        let hold_id = hold_id.clone();
        let traceparent = traceparent.map(str::to_owned);
        let expired = self
            .db
            .write(move |conn| {
                let hold = load_hold(conn, &hold_id)?;
                let Some(event) = booking::decide_expire(hold.as_ref(), now, traceparent.as_deref()) else {
                    return Ok(None);
                };
                if let Some(hold) = &hold {
                    free_seats(conn, hold)?;
                    set_hold_status(conn, &hold_id, HoldStatus::Expired)?;
                }
                bus::fan_out(conn, std::slice::from_ref(&event), &[], now)?;
                Ok(Some(event))
            })
            .await?;
        self.wake_subscribers(expired.as_slice());
        Ok(expired)
    }

    async fn hold(&self, hold_id: &HoldId) -> Result<Option<SeatHold>, PortError> {
        let id = hold_id.clone();
        self.db.read(move |conn| load_hold(conn, &id)).await
    }

    async fn booking(&self, booking_id: &BookingId) -> Result<Option<Booking>, PortError> {
        let id = booking_id.to_string();
        self.db
            .read(move |conn| {
                let row = conn
                    .prepare_cached(
                        "SELECT booking_id, show_id, seat_ids, amount_cents, customer_id, created_at
                         FROM bookings WHERE booking_id = ?1",
                    )
                    .map_err(sql_error)?
                    .query_row([id], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, u64>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, i64>(5)?,
                        ))
                    })
                    .optional()
                    .map_err(sql_error)?;
                row.map(|(booking_id, show_id, seats, amount_cents, customer, created_at)| {
                    Ok(Booking {
                        booking_id: BookingId::from(booking_id),
                        show_id: ShowId::from(show_id),
                        seat_ids: serde_json::from_str(&seats).map_err(json_error)?,
                        amount_cents,
                        status: BookingStatus::Confirmed,
                        customer_id: UserId::new(customer),
                        created_at: clock::from_millis(created_at),
                    })
                })
                .transpose()
            })
            .await
    }
}
