//! The booking rules and decisions.

use super::*;
use crate::clock::from_millis;

fn seat(id: &str, booked: bool, held_until: Option<i64>) -> SeatRecord {
    SeatRecord {
        seat_id: id.into(),
        booking_id: booked.then(|| BookingId::from("bk_1")),
        hold_id: held_until.map(|_| HoldId::from("hold_1")),
        hold_expires_at: held_until.map(from_millis),
    }
}

#[test]
fn a_hold_reads_held_until_the_instant_it_expires() {
    let s = seat("A1", false, Some(1_000));
    assert_eq!(s.state_at(from_millis(999)), SeatState::Held);
    assert_eq!(s.state_at(from_millis(1_000)), SeatState::Available);
    assert_eq!(s.state_at(from_millis(5_000)), SeatState::Available);
}

#[test]
fn a_booking_outlives_any_hold() {
    assert_eq!(seat("A1", true, Some(1)).state_at(from_millis(10)), SeatState::Booked);
    assert_eq!(seat("A1", false, None).state_at(from_millis(10)), SeatState::Available);
}

#[test]
fn holding_is_all_or_nothing() {
    let now = from_millis(500);
    let seats = vec![seat("A1", false, None), seat("A2", false, Some(1_000)), seat("A3", true, None)];
    assert!(check_hold(&["A1".into()], &seats, now).is_ok());
    let err = check_hold(&["A1".into(), "A2".into()], &seats, now).unwrap_err();
    assert_eq!(err.code, "seats_unavailable");
    assert_eq!(err.extra["seat_ids"], serde_json::json!(["A2"]));
    let err = check_hold(&["A3".into()], &seats, now).unwrap_err();
    assert_eq!(err.code, "seats_unavailable");
    // Once A2's hold has expired, it can be held again.
    assert!(check_hold(&["A1".into(), "A2".into()], &seats, from_millis(1_000)).is_ok());
    let err = check_hold(&["Z9".into()], &seats, now).unwrap_err();
    assert_eq!(err.code, "seat_not_found");
}

#[test]
fn seat_requests_are_bounded_and_unique() {
    let ok = |v: &[&str]| validate_seat_request(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert!(ok(&["A1", "B2"]).is_ok());
    assert!(ok(&[]).is_err());
    assert!(ok(&["A1", "A1"]).is_err());
    assert!(ok(&["A 1"]).is_err());
    assert!(ok(&["A1"; 11]).is_err());
}

#[test]
fn confirming_needs_a_live_hold_of_the_same_customer() {
    let hold = SeatHold {
        hold_id: "hold_1".into(),
        show_id: "show_1".into(),
        customer_id: UserId::new("alice"),
        seat_ids: vec!["A1".into()],
        expires_at: from_millis(1_000),
        status: HoldStatus::Active,
        request_id: "req_1".into(),
    };
    let alice = UserId::new("alice");
    assert!(hold.check_confirmable(&alice, from_millis(999)).is_ok());
    assert_eq!(hold.check_confirmable(&alice, from_millis(1_000)).unwrap_err().code, "hold_expired");
    assert_eq!(hold.check_confirmable(&UserId::new("bob"), from_millis(1)).unwrap_err().code, "hold_not_found");
    let released = SeatHold { status: HoldStatus::Released, ..hold };
    assert_eq!(released.check_confirmable(&alice, from_millis(1)).unwrap_err().code, "hold_not_found");
}

fn ctx(who: &str, now: i64) -> CommandContext {
    let actor = crate::actor::Actor { sub: UserId::new(who), role: crate::actor::Role::Customer };
    CommandContext { request_id: "req_9".into(), actor, now: from_millis(now), traceparent: None, delivery: None }
}

fn live_hold() -> SeatHold {
    SeatHold {
        hold_id: "hold_1".into(),
        show_id: "show_1".into(),
        customer_id: UserId::new("alice"),
        seat_ids: vec!["A1".into(), "A2".into()],
        expires_at: from_millis(1_000),
        status: HoldStatus::Active,
        request_id: "req_1".into(),
    }
}

fn held_by(hold: &str, seats: &[&str]) -> Vec<SeatRecord> {
    seats
        .iter()
        .map(|s| SeatRecord {
            seat_id: (*s).into(),
            booking_id: None,
            hold_id: Some(HoldId::from(hold)),
            hold_expires_at: Some(from_millis(1_000)),
        })
        .collect()
}

#[test]
fn a_placed_hold_schedules_its_own_expiry() {
    let show = Show {
        show_id: "show_1".into(),
        movie_id: "mov_1".into(),
        starts_at: from_millis(0),
        auditorium: crate::catalog::Auditorium { rows: 1, seats_per_row: 2 },
        price_cents: 500,
    };
    let free = vec![seat("A1", false, None)];
    let room = HeldSeats { held: 0, max: DEFAULT_MAX_HELD_SEATS };
    let (hold, decision) =
        decide_place(&ctx("alice", 10), &show.show_id, Some(&show), &["A1".into()], &free, from_millis(900), room);
    let hold = hold.expect("placed");
    assert_eq!(decision.events[0].event_type, EventType::HoldPlaced);
    assert_eq!(decision.messages.len(), 1);
    assert_eq!(decision.messages[0].deliver_at, from_millis(900));
    assert!(decision.messages[0].body.contains(hold.hold_id.as_str()));
    let (none, rejected) =
        decide_place(&ctx("bob", 10), &show.show_id, None, &["A1".into()], &free, from_millis(9), room);
    assert!(none.is_none() && rejected.messages.is_empty());
    assert!(matches!(rejected.outcome, Outcome::Failed(ref e) if e.code == "show_not_found"));
    // A customer at the cap is refused, with the counts, and nothing is scheduled.
    let full = HeldSeats { held: 20, max: 20 };
    let (none, capped) =
        decide_place(&ctx("carol", 10), &show.show_id, Some(&show), &["A1".into()], &free, from_millis(900), full);
    assert!(none.is_none() && capped.messages.is_empty());
    assert_eq!(capped.events[0].event_type, EventType::HoldRejected);
    match capped.outcome {
        Outcome::Failed(e) => {
            assert_eq!(e.code, "hold_limit_reached");
            assert_eq!(e.extra["held_seats"], 20);
            assert_eq!(e.extra["max_held_seats"], 20);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_hold_cap_counts_live_holds_only() {
    let now = from_millis(1_000);
    // Two live holds (3 + 2 seats) and one that expired at `now`.
    let held = HeldSeats::counting([(3, from_millis(2_000)), (2, from_millis(1_001)), (9, now)], now, 10);
    assert_eq!(held, HeldSeats { held: 5, max: 10 });
    assert!(held.check(5).is_ok());
    assert_eq!(held.check(6).unwrap_err().code, "hold_limit_reached");
    assert!(HeldSeats { held: usize::MAX, max: 10 }.check(1).is_err());
}

#[test]
fn a_booking_costs_what_was_authorized() {
    let hold = live_hold();
    let pay = PaymentReceipt { payment_id: "pay_hold_1".into(), amount_cents: 1999 };
    let (booking, decision) =
        decide_confirm(&ctx("alice", 10), &hold.hold_id, Some(&hold), &held_by("hold_1", &["A1", "A2"]), &pay);
    assert_eq!(booking.expect("booked").amount_cents, 1999);
    assert_eq!(decision.events[0].event_type, EventType::BookingConfirmed);
}

#[test]
fn a_confirm_that_lost_its_hold_fails_cleanly() {
    let hold = live_hold();
    let pay = PaymentReceipt { payment_id: "pay_hold_1".into(), amount_cents: 1 };
    let code = |d: &Decision| match &d.outcome {
        Outcome::Failed(e) => e.code,
        other => panic!("{other:?}"),
    };
    // A seat another hold took (its worker's clock had passed this hold's expiry).
    let (none, d) =
        decide_confirm(&ctx("alice", 10), &hold.hold_id, Some(&hold), &held_by("hold_2", &["A1", "A2"]), &pay);
    assert!(none.is_none());
    assert_eq!(code(&d), "hold_expired");
    // Another confirm of the same hold won.
    let confirmed = SeatHold { status: HoldStatus::Confirmed, ..hold.clone() };
    let (none, d) = decide_confirm(&ctx("alice", 10), &hold.hold_id, Some(&confirmed), &[], &pay);
    assert!(none.is_none());
    assert_eq!(code(&d), "hold_not_found");
    let (_, d) = decide_confirm(&ctx("alice", 10), &hold.hold_id, None, &[], &pay);
    assert_eq!(code(&d), "hold_not_found");
}

#[test]
fn a_hold_expires_once() {
    let hold = live_hold();
    assert!(decide_expire(Some(&hold), from_millis(999), None).is_none(), "not due");
    assert_eq!(decide_expire(Some(&hold), from_millis(1_000), None).unwrap().event_type, EventType::HoldExpired);
    let traced = decide_expire(Some(&hold), from_millis(1_000), Some("00-aa-bb-01")).unwrap();
    assert_eq!(traced.traceparent.as_deref(), Some("00-aa-bb-01"));
    assert_eq!(traced.id, decide_expire(Some(&hold), from_millis(1_000), None).unwrap().id, "the same event");
    let expired = SeatHold { status: HoldStatus::Expired, ..hold };
    assert!(decide_expire(Some(&expired), from_millis(2_000), None).is_none(), "its event was committed then");
    assert!(HoldStatus::parse("lost").is_err(), "an unknown stored status is corrupt, never guessed");
}
