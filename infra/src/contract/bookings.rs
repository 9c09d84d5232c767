//! The `CatalogStore` and `BookingStore` contract: all-or-nothing holds, expiry without a
//! sweep, release and confirm, one charge per hold, no seat in two live holds, and the
//! cap on the seats one customer's live holds cover.

use super::requests::admitted;
use super::{ctx, delivered_events};
use crate::Backend;
use domain::booking::{DEFAULT_MAX_HELD_SEATS as MAX_HELD, SeatState};
use domain::catalog::{Auditorium, Movie, Show};
use domain::clock;
use domain::event::EventType;
use domain::ids::{HoldId, MovieId, SeatId, ShowId, UserId};
use domain::payment::PaymentReceipt;
use domain::ports::Completion;
use domain::request::CommandContext;
use domain::request::RequestStatus;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

async fn show(b: &Backend, rows: u32, per_row: u32) -> ShowId {
    let movie = Movie { movie_id: MovieId::generate(), title: "Contract".into(), duration_min: 90 };
    b.catalog.create_movie(&movie).await.unwrap();
    let show = Show {
        show_id: ShowId::generate(),
        movie_id: movie.movie_id.clone(),
        starts_at: clock::now() + Duration::from_secs(86_400),
        auditorium: Auditorium { rows, seats_per_row: per_row },
        price_cents: 1250,
    };
    b.catalog.create_show(&show).await.unwrap();
    assert_eq!(b.catalog.show(&show.show_id).await.unwrap().as_ref(), Some(&show));
    assert_eq!(b.catalog.shows_of(&movie.movie_id).await.unwrap(), vec![show.clone()]);
    assert!(b.catalog.movies().await.unwrap().contains(&movie));
    show.show_id
}

fn seats(ids: &[&str]) -> Vec<SeatId> {
    ids.iter().map(|s| SeatId::from(*s)).collect()
}

async fn seat_state(b: &Backend, show: &ShowId, seat: &str) -> SeatState {
    let now = clock::now();
    b.catalog.seats(show).await.unwrap().iter().find(|s| s.seat_id.as_str() == seat).expect("seat").state_at(now)
}

pub async fn hold_is_all_or_nothing(b: Backend) {
    let show_id = show(&b, 2, 3).await;
    assert_eq!(b.catalog.seats(&show_id).await.unwrap().len(), 6);
    let ttl = clock::now() + Duration::from_secs(600);
    let r1 = admitted(&b, "alice").await;
    let placed =
        b.bookings.place_hold(&ctx(&r1, "alice"), &show_id, &seats(&["A1", "A2"]), ttl, MAX_HELD).await.unwrap();
    assert_eq!(placed.doc.status, RequestStatus::Succeeded);
    assert_eq!(placed.events[0].event_type, EventType::HoldPlaced);
    let hold_id = HoldId::from(placed.doc.result.as_ref().unwrap()["hold_id"].as_str().unwrap());
    assert_eq!(b.bookings.hold(&hold_id).await.unwrap().unwrap().seat_ids, seats(&["A1", "A2"]));
    // Redelivery: the same completion, nothing held twice.
    let again =
        b.bookings.place_hold(&ctx(&r1, "alice"), &show_id, &seats(&["A1", "A2"]), ttl, MAX_HELD).await.unwrap();
    assert!(!again.first);
    assert_eq!(again.doc, placed.doc);

    let r2 = admitted(&b, "bob").await;
    let rejected =
        b.bookings.place_hold(&ctx(&r2, "bob"), &show_id, &seats(&["A2", "A3"]), ttl, MAX_HELD).await.unwrap();
    assert_eq!(rejected.doc.status, RequestStatus::Failed);
    let err = rejected.doc.error.as_ref().unwrap();
    assert_eq!(err.code, "seats_unavailable");
    assert_eq!(err.extra["seat_ids"], json!(["A2"]));
    assert_eq!(rejected.events[0].event_type, EventType::HoldRejected);
    assert_eq!(seat_state(&b, &show_id, "A3").await, SeatState::Available, "nothing of a rejected hold is kept");

    let r3 = admitted(&b, "bob").await;
    let missing = b.bookings.place_hold(&ctx(&r3, "bob"), &show_id, &seats(&["Z9"]), ttl, MAX_HELD).await.unwrap();
    assert_eq!(missing.doc.error.unwrap().code, "seat_not_found");
    let r4 = admitted(&b, "bob").await;
    let no_show = b
        .bookings
        .place_hold(&ctx(&r4, "bob"), &ShowId::from("show_nope"), &seats(&["A1"]), ttl, MAX_HELD)
        .await
        .unwrap();
    assert_eq!(no_show.doc.error.unwrap().code, "show_not_found");
}

pub async fn expired_hold_counts_available(b: Backend) {
    let show_id = show(&b, 1, 2).await;
    let r1 = admitted(&b, "alice").await;
    let soon = clock::now() + Duration::from_millis(800);
    let placed = b.bookings.place_hold(&ctx(&r1, "alice"), &show_id, &seats(&["A1"]), soon, MAX_HELD).await.unwrap();
    let hold_id = HoldId::from(placed.doc.result.unwrap()["hold_id"].as_str().unwrap());
    assert_eq!(seat_state(&b, &show_id, "A1").await, SeatState::Held);
    assert!(b.bookings.expire_hold(&hold_id, clock::now(), None).await.unwrap().is_none(), "not due yet");
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(seat_state(&b, &show_id, "A1").await, SeatState::Available, "no sweep needed");
    let r2 = admitted(&b, "bob").await;
    let later = clock::now() + Duration::from_secs(600);
    let taken = b.bookings.place_hold(&ctx(&r2, "bob"), &show_id, &seats(&["A1"]), later, MAX_HELD).await.unwrap();
    assert_eq!(taken.doc.status, RequestStatus::Succeeded, "an expired hold's seat can be held again");
    // The late expiry of the first hold must not free the second hold's seat.
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let expired =
        b.bookings.expire_hold(&hold_id, clock::now(), Some(traceparent)).await.unwrap().expect("the expiry event");
    assert_eq!(expired.event_type, EventType::HoldExpired);
    assert_eq!(expired.traceparent.as_deref(), Some(traceparent), "in the trace of the worker expiring it");
    assert_eq!(expired.correlationid, r1.as_str());
    assert!(b.bookings.expire_hold(&hold_id, clock::now(), None).await.unwrap().is_none(), "expired once");
    assert_eq!(seat_state(&b, &show_id, "A1").await, SeatState::Held);
    let expiries = delivered_events(&b, 3).await.into_iter().filter(|e| *e == expired).count();
    assert_eq!(expiries, 1, "the expiry event is delivered once");
}

pub async fn release_and_confirm(b: Backend) {
    let show_id = show(&b, 1, 4).await;
    let ttl = clock::now() + Duration::from_secs(600);
    let r1 = admitted(&b, "alice").await;
    let placed =
        b.bookings.place_hold(&ctx(&r1, "alice"), &show_id, &seats(&["A1", "A2"]), ttl, MAX_HELD).await.unwrap();
    let h1 = HoldId::from(placed.doc.result.unwrap()["hold_id"].as_str().unwrap());

    // Someone else cannot release or confirm it.
    let r2 = admitted(&b, "bob").await;
    let not_yours = b.bookings.release_hold(&ctx(&r2, "bob"), &h1).await.unwrap();
    assert_eq!(not_yours.doc.error.unwrap().code, "hold_not_found");
    // Deliberately not price × seats (2 × 1250): the booking costs what was authorized.
    let pay = PaymentReceipt { payment_id: "pay_1".into(), amount_cents: 1999 };
    let r3 = admitted(&b, "bob").await;
    let not_yours = b.bookings.confirm_booking(&ctx(&r3, "bob"), &h1, &pay).await.unwrap();
    assert_eq!(not_yours.doc.error.unwrap().code, "hold_not_found");
    assert_eq!(not_yours.events[0].event_type, EventType::BookingFailed);

    let r4 = admitted(&b, "alice").await;
    let booked = b.bookings.confirm_booking(&ctx(&r4, "alice"), &h1, &pay).await.unwrap();
    assert_eq!(booked.doc.status, RequestStatus::Succeeded);
    let result = booked.doc.result.unwrap();
    assert_eq!(result["amount_cents"], 1999);
    assert_eq!(booked.events[0].event_type, EventType::BookingConfirmed);
    let booking_id = domain::ids::BookingId::from(result["booking_id"].as_str().unwrap());
    let booking = b.bookings.booking(&booking_id).await.unwrap().expect("the booking");
    assert_eq!(booking.seat_ids, seats(&["A1", "A2"]));
    assert_eq!(booking.amount_cents, 1999);
    assert_eq!(booking.customer_id, UserId::new("alice"));
    assert_eq!(seat_state(&b, &show_id, "A1").await, SeatState::Booked);
    // A confirmed hold is neither released nor expired.
    let r5 = admitted(&b, "alice").await;
    assert_eq!(
        b.bookings.release_hold(&ctx(&r5, "alice"), &h1).await.unwrap().doc.error.unwrap().code,
        "hold_not_found"
    );
    assert!(b.bookings.expire_hold(&h1, clock::now() + Duration::from_secs(700), None).await.unwrap().is_none());
    assert_eq!(seat_state(&b, &show_id, "A2").await, SeatState::Booked);

    let r6 = admitted(&b, "carol").await;
    let placed = b.bookings.place_hold(&ctx(&r6, "carol"), &show_id, &seats(&["A3"]), ttl, MAX_HELD).await.unwrap();
    let h2 = HoldId::from(placed.doc.result.unwrap()["hold_id"].as_str().unwrap());
    let r7 = admitted(&b, "carol").await;
    let released = b.bookings.release_hold(&ctx(&r7, "carol"), &h2).await.unwrap();
    assert_eq!(released.doc.status, RequestStatus::Succeeded);
    assert_eq!(released.events[0].event_type, EventType::HoldReleased);
    assert_eq!(seat_state(&b, &show_id, "A3").await, SeatState::Available);
}

/// Two confirms of one hold (different requests, racing): one booking, one charge, one
/// `usher.booking.confirmed`; the other fails cleanly.
pub async fn one_charge_per_hold(b: Backend) {
    let show_id = show(&b, 1, 2).await;
    let ttl = clock::now() + Duration::from_secs(600);
    let r1 = admitted(&b, "alice").await;
    let placed = b.bookings.place_hold(&ctx(&r1, "alice"), &show_id, &seats(&["A1"]), ttl, MAX_HELD).await.unwrap();
    let hold_id = HoldId::from(placed.doc.result.unwrap()["hold_id"].as_str().unwrap());
    let pay = domain::payment::authorize("tok_visa", 1250, &hold_id).unwrap();
    let confirms = (0..2).map(|_| {
        let (b, hold_id, pay) = (b.clone(), hold_id.clone(), pay.clone());
        tokio::spawn(async move {
            let id = admitted(&b, "alice").await;
            b.bookings.confirm_booking(&ctx(&id, "alice"), &hold_id, &pay).await
        })
    });
    let mut outcomes = Vec::new();
    for c in confirms.collect::<Vec<_>>() {
        outcomes.push(c.await.unwrap().expect("a lost race is an outcome, not an error"));
    }
    let won: Vec<&Completion> = outcomes.iter().filter(|c| c.doc.status == RequestStatus::Succeeded).collect();
    assert_eq!(won.len(), 1, "{outcomes:?}");
    let lost: Vec<&Completion> = outcomes.iter().filter(|c| c.doc.status == RequestStatus::Failed).collect();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].doc.error.as_ref().unwrap().code, "hold_not_found");
    let confirmed =
        delivered_events(&b, 3).await.into_iter().filter(|e| e.event_type == EventType::BookingConfirmed).count();
    assert_eq!(confirmed, 1, "one usher.booking.confirmed (beside the hold.placed and the loser's booking.failed)");
}

/// A hold whose seat another hold took (that worker's clock had passed the expiry) has
/// expired for its customer: a business failure, not corrupt data.
pub async fn a_retaken_seat_expires_the_hold(b: Backend) {
    let show_id = show(&b, 1, 2).await;
    let now = clock::now();
    let r1 = admitted(&b, "alice").await;
    let soon = now + Duration::from_secs(30);
    let placed = b.bookings.place_hold(&ctx(&r1, "alice"), &show_id, &seats(&["A1"]), soon, MAX_HELD).await.unwrap();
    let hold_id = HoldId::from(placed.doc.result.unwrap()["hold_id"].as_str().unwrap());
    let r2 = admitted(&b, "bob").await;
    let ahead = CommandContext { now: now + Duration::from_secs(31), ..ctx(&r2, "bob") };
    let later = now + Duration::from_secs(600);
    let taken = b.bookings.place_hold(&ahead, &show_id, &seats(&["A1"]), later, MAX_HELD).await.unwrap();
    assert_eq!(taken.doc.status, RequestStatus::Succeeded);
    let r3 = admitted(&b, "alice").await;
    let pay = domain::payment::authorize("tok_visa", 1250, &hold_id).unwrap();
    let late = b.bookings.confirm_booking(&ctx(&r3, "alice"), &hold_id, &pay).await.expect("an outcome");
    assert_eq!(late.doc.status, RequestStatus::Failed);
    assert_eq!(late.doc.error.unwrap().code, "hold_expired");
}

pub async fn concurrent_holds_never_overlap(b: Backend) {
    let show_id = show(&b, 1, 6).await;
    let ttl = clock::now() + Duration::from_secs(600);
    let mut tasks = Vec::new();
    for i in 0..24usize {
        let b = b.clone();
        let show_id = show_id.clone();
        tasks.push(tokio::spawn(async move {
            let who = format!("c{i}");
            let id = admitted(&b, &who).await;
            let want = [format!("A{}", i % 6 + 1), format!("A{}", (i + 1) % 6 + 1)];
            let want: Vec<SeatId> = want.iter().map(|s| SeatId::from(s.as_str())).collect();
            b.bookings.place_hold(&ctx(&id, &who), &show_id, &want, ttl, MAX_HELD).await
        }));
    }
    let mut held = Vec::new();
    for t in tasks {
        let c = t.await.unwrap().expect("a contended hold is an outcome, not an error");
        assert!(c.doc.status.is_terminal());
        if c.doc.status == RequestStatus::Succeeded {
            for s in c.doc.result.unwrap()["seat_ids"].as_array().unwrap() {
                held.push(s.as_str().unwrap().to_owned());
            }
        }
    }
    let unique: BTreeSet<&String> = held.iter().collect();
    assert_eq!(unique.len(), held.len(), "no seat in two live holds: {held:?}");
    assert!(!held.is_empty());
    let map = b.catalog.seats(&show_id).await.unwrap();
    let now = clock::now();
    let held_on_map = map.iter().filter(|s| s.state_at(now) == SeatState::Held).count();
    assert_eq!(held_on_map, held.len(), "the seat map agrees");
}

/// Places a hold for `who` on `want` under a cap of `max` seats.
async fn hold_for(b: &Backend, who: &str, show_id: &ShowId, want: &[&str], max: usize) -> Completion {
    let id = admitted(b, who).await;
    let ttl = clock::now() + Duration::from_secs(600);
    b.bookings.place_hold(&ctx(&id, who), show_id, &seats(want), ttl, max).await.expect("an outcome")
}

fn hold_id_of(c: &Completion) -> HoldId {
    HoldId::from(c.doc.result.as_ref().expect("a result")["hold_id"].as_str().expect("a hold id"))
}

fn error_code(c: &Completion) -> String {
    c.doc.error.as_ref().map(|e| e.code.as_str().to_owned()).unwrap_or_default()
}

/// A customer's live holds cover at most the cap; released, confirmed and expired holds
/// stop counting, and one customer's holds never count against another's.
pub async fn the_hold_cap_counts_live_holds(b: Backend) {
    let show_id = show(&b, 2, 6).await;
    let first = hold_for(&b, "alice", &show_id, &["A1", "A2", "A3"], 5).await;
    assert_eq!(first.doc.status, RequestStatus::Succeeded);
    let over = hold_for(&b, "alice", &show_id, &["A4", "A5", "A6"], 5).await;
    assert_eq!(over.doc.status, RequestStatus::Failed);
    assert_eq!(error_code(&over), "hold_limit_reached");
    assert_eq!(over.doc.error.as_ref().unwrap().extra["held_seats"], 3);
    assert_eq!(over.events[0].event_type, EventType::HoldRejected);
    assert_eq!(seat_state(&b, &show_id, "A4").await, SeatState::Available, "a refused hold claims nothing");
    // Someone else is not affected by alice's holds.
    assert_eq!(hold_for(&b, "bob", &show_id, &["A4", "A5", "A6"], 5).await.doc.status, RequestStatus::Succeeded);
    let second = hold_for(&b, "alice", &show_id, &["B1", "B2"], 5).await;
    assert_eq!(second.doc.status, RequestStatus::Succeeded, "exactly at the cap");
    assert_eq!(error_code(&hold_for(&b, "alice", &show_id, &["B3"], 5).await), "hold_limit_reached");

    // Releasing the first frees its three seats of the count.
    let r = admitted(&b, "alice").await;
    let released = b.bookings.release_hold(&ctx(&r, "alice"), &hold_id_of(&first)).await.unwrap();
    assert_eq!(released.doc.status, RequestStatus::Succeeded);
    let third = hold_for(&b, "alice", &show_id, &["B3", "B4", "B5"], 5).await;
    assert_eq!(third.doc.status, RequestStatus::Succeeded);

    // Booked seats are no longer held: confirming the second frees two.
    let r = admitted(&b, "alice").await;
    let pay = PaymentReceipt { payment_id: "pay_cap".into(), amount_cents: 2500 };
    let booked = b.bookings.confirm_booking(&ctx(&r, "alice"), &hold_id_of(&second), &pay).await.unwrap();
    assert_eq!(booked.doc.status, RequestStatus::Succeeded);
    let fourth = hold_for(&b, "alice", &show_id, &["A1", "A2"], 5).await;
    assert_eq!(fourth.doc.status, RequestStatus::Succeeded);
    assert_eq!(error_code(&hold_for(&b, "alice", &show_id, &["A3"], 5).await), "hold_limit_reached");

    // Expired holds stop counting at their expiry, before any expiry message runs, and
    // after it as well.
    let later = clock::now() + Duration::from_secs(601);
    let r = admitted(&b, "alice").await;
    let ahead = CommandContext { now: later, ..ctx(&r, "alice") };
    let after_expiry = b
        .bookings
        .place_hold(&ahead, &show_id, &seats(&["A3", "B6"]), later + Duration::from_secs(600), 5)
        .await
        .unwrap();
    assert_eq!(after_expiry.doc.status, RequestStatus::Succeeded, "{:?}", after_expiry.doc.error);
    assert!(b.bookings.expire_hold(&hold_id_of(&third), later, None).await.unwrap().is_some());
    let r = admitted(&b, "alice").await;
    let ahead = CommandContext { now: later, ..ctx(&r, "alice") };
    let more = b
        .bookings
        .place_hold(&ahead, &show_id, &seats(&["B3", "B4", "B5"]), later + Duration::from_secs(600), 5)
        .await
        .unwrap();
    assert_eq!(more.doc.status, RequestStatus::Succeeded, "{:?}", more.doc.error);
    assert_eq!(error_code(&hold_for(&b, "alice", &show_id, &["A4"], 5).await), "seats_unavailable");
}

/// Racing holds of one customer cannot beat the cap: it is decided in each hold's
/// transaction, not before it.
pub async fn racing_holds_cannot_beat_the_cap(b: Backend) {
    let show_id = show(&b, 2, 12).await;
    let mut tasks = Vec::new();
    for i in 0..12usize {
        let (b, show_id) = (b.clone(), show_id.clone());
        tasks.push(tokio::spawn(async move {
            let row = if i < 6 { "A" } else { "B" };
            let want = [format!("{row}{}", i % 6 * 2 + 1), format!("{row}{}", i % 6 * 2 + 2)];
            let id = admitted(&b, "dave").await;
            let ttl = clock::now() + Duration::from_secs(600);
            let want: Vec<SeatId> = want.iter().map(|s| SeatId::from(s.as_str())).collect();
            b.bookings.place_hold(&ctx(&id, "dave"), &show_id, &want, ttl, 6).await
        }));
    }
    let (mut placed, mut capped) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(c) if c.doc.status == RequestStatus::Succeeded => placed += 1,
            Ok(c) => {
                assert_eq!(error_code(&c), "hold_limit_reached");
                capped += 1;
            }
            // Losing every round of a race is retried later by the worker: not an outcome.
            Err(e) => assert!(matches!(e, domain::PortError::Contention(_)), "{e}"),
        }
    }
    assert!(placed <= 3, "two seats each under a cap of six: {placed} holds placed");
    assert!(placed >= 1 && capped >= 1, "placed {placed}, capped {capped}");
    let now = clock::now();
    let held = b.catalog.seats(&show_id).await.unwrap().iter().filter(|s| s.state_at(now) == SeatState::Held).count();
    assert_eq!(held, placed * 2, "the seat map agrees");
}
