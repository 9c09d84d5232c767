//! The ticket aggregate and its rules.

use super::*;
use crate::clock::from_millis;
use TicketStatus::*;

fn ctx(who: &str) -> CommandContext {
    acting(&actor(who, Role::Customer))
}

fn acting(actor: &Actor) -> CommandContext {
    CommandContext {
        request_id: "req_1".into(),
        actor: actor.clone(),
        now: from_millis(1_000),
        traceparent: None,
        delivery: None,
    }
}

fn actor(who: &str, role: Role) -> Actor {
    Actor { sub: UserId::new(who), role }
}

/// A ticket of alice's in `status`, assigned to agent `ann` when `assigned`.
fn ticket(status: TicketStatus, assigned: bool) -> Ticket {
    let mut t = Ticket::new(&ctx("alice"), "Printer", "It is on fire", Priority::High);
    t.status = status;
    t.assignee = assigned.then(|| UserId::new("ann"));
    t
}

/// Every (from, to) pair with what the ticket's own rules say; `None` is allowed.
fn rule(from: TicketStatus, to: TicketStatus, assigned: bool) -> Option<&'static str> {
    if from == Closed {
        Some("ticket_closed")
    } else if to == New || from == to || (to == Closed && from != Solved) || (to == Solved && !assigned) {
        Some("invalid_transition")
    } else {
        None
    }
}

#[test]
fn the_transition_table() {
    // Written out, the moves allowed on an assigned ticket:
    let allowed: &[(TicketStatus, TicketStatus)] = &[
        (New, Open),
        (New, Pending),
        (New, OnHold),
        (New, Solved),
        (Open, Pending),
        (Open, OnHold),
        (Open, Solved),
        (Pending, Open),
        (Pending, OnHold),
        (Pending, Solved),
        (OnHold, Open),
        (OnHold, Pending),
        (OnHold, Solved),
        (Solved, Open),
        (Solved, Pending),
        (Solved, OnHold),
        (Solved, Closed),
    ];
    for from in TicketStatus::ALL {
        for to in TicketStatus::ALL {
            for assigned in [true, false] {
                let got = from.transition(to, assigned);
                let expected_ok = allowed.contains(&(from, to)) && (assigned || to != Solved);
                assert_eq!(got.is_ok(), expected_ok, "{from:?} → {to:?} assigned={assigned}");
                assert_eq!(got.as_ref().err().map(|e| e.code.as_str()), rule(from, to, assigned));
                if let Err(e) = got
                    && e.code == "invalid_transition"
                {
                    assert_eq!(e.extra["from"], json!(from.as_str()));
                    assert_eq!(e.extra["to"], json!(to.as_str()));
                }
            }
        }
    }
}

#[test]
fn the_transition_table_per_role() {
    // (role, is the requester) → every pair through `apply`, which adds who may ask.
    let callers = [
        (actor("alice", Role::Customer), true),
        (actor("bob", Role::Customer), false),
        (actor("ann", Role::Agent), false),
        (actor("root", Role::Admin), false),
    ];
    for (who, own) in &callers {
        for from in TicketStatus::ALL {
            for to in TicketStatus::ALL {
                let mut t = ticket(from, true);
                let before = t.clone();
                let got = t.apply(&acting(who), &TicketChange::Transition { to, comment: None }, false);
                let expected = if !own && who.role == Role::Customer {
                    Some("ticket_not_found")
                } else if from == Closed {
                    Some("ticket_closed")
                } else if !may_move(who.role, from, to) {
                    Some("invalid_transition")
                } else {
                    rule(from, to, true)
                };
                let code = got.as_ref().err().map(|e| e.code.as_str());
                assert_eq!(code, expected, "{:?} {from:?} → {to:?}", who.role);
                match got {
                    Ok(applied) => {
                        assert_eq!(t.status, to);
                        assert_eq!(t.version, before.version + 1);
                        assert_eq!(applied.events.len(), 1);
                        assert_eq!(applied.events[0].event_type, EventType::TicketStatusChanged);
                    }
                    Err(_) => assert_eq!(t, before, "a refused change leaves the ticket alone"),
                }
            }
        }
    }
    // The one move a customer has: reopening their own solved ticket.
    for from in TicketStatus::ALL {
        for to in TicketStatus::ALL {
            assert_eq!(may_move(Role::Customer, from, to), from == Solved && to == Open);
            assert!(may_move(Role::Agent, from, to) && may_move(Role::Admin, from, to));
        }
    }
}

#[test]
fn assigning_a_new_ticket_opens_it_in_two_entries() {
    let mut t = ticket(New, false);
    let admin = actor("root", Role::Admin);
    let applied = t.apply(&acting(&admin), &TicketChange::Assign { agent_id: UserId::new("ann") }, true).unwrap();
    assert_eq!(t.status, Open);
    assert_eq!(t.assignee, Some(UserId::new("ann")));
    let actions: Vec<Action> = t.history.iter().map(|h| h.action).collect();
    assert_eq!(actions, [Action::Created, Action::Assigned, Action::StatusChanged]);
    assert_eq!(t.version, 3);
    let types: Vec<EventType> = applied.events.iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::TicketAssigned, EventType::TicketStatusChanged]);
    assert_eq!(applied.events[0].data["previous_assignee"], Value::Null);
    assert_eq!(applied.events[0].data["status"], "open");
    assert_ne!(applied.events[0].id, applied.events[1].id);
    assert_eq!(applied.result, json!({"ticket_id": t.ticket_id, "assignee": "ann"}));
    // Reassigning changes the assignee only; assigning the same agent changes nothing.
    let applied = t.apply(&acting(&admin), &TicketChange::Assign { agent_id: UserId::new("ben") }, true).unwrap();
    assert_eq!(applied.events.len(), 1);
    assert_eq!(applied.events[0].data["previous_assignee"], "ann");
    let v = t.version;
    let same = t.apply(&acting(&admin), &TicketChange::Assign { agent_id: UserId::new("ben") }, true).unwrap();
    assert!(same.events.is_empty());
    assert_eq!(t.version, v);
}

#[test]
fn assignment_rules() {
    let agent = actor("ann", Role::Agent);
    let mut t = ticket(Open, false);
    let err = t.apply(&acting(&agent), &TicketChange::Assign { agent_id: UserId::new("zed") }, false).unwrap_err();
    assert_eq!(err.code, "not_an_agent");
    assert_eq!(err.extra["agent_id"], "zed");
    let alice = actor("alice", Role::Customer);
    let err = t.apply(&acting(&alice), &TicketChange::Assign { agent_id: UserId::new("ann") }, true).unwrap_err();
    assert_eq!(err.code, "forbidden");
    let mut closed = ticket(Closed, true);
    let err = closed.apply(&acting(&agent), &TicketChange::Assign { agent_id: UserId::new("ann") }, true).unwrap_err();
    assert_eq!(err.code, "ticket_closed");
}

#[test]
fn a_customer_comment_reopens_pending_on_hold_and_solved() {
    let alice = actor("alice", Role::Customer);
    for from in TicketStatus::ALL {
        let mut t = ticket(from, true);
        let got = t.apply(&acting(&alice), &TicketChange::Comment { body: "hi".into(), public: true }, false);
        if from == Closed {
            assert_eq!(got.unwrap_err().code, "ticket_closed");
            continue;
        }
        let applied = got.unwrap();
        let reopens = matches!(from, Pending | OnHold | Solved);
        assert_eq!(t.status, if reopens { Open } else { from }, "{from:?}");
        let last: Vec<Action> = t.history.iter().skip(1).map(|h| h.action).collect();
        if reopens {
            assert_eq!(last, [Action::Commented, Action::StatusChanged]);
            assert_eq!(applied.events[1].data["from"], json!(from.as_str()));
            assert_eq!(applied.events[1].data["actor"], "alice");
        } else {
            assert_eq!(last, [Action::Commented]);
        }
        assert_eq!(applied.events[0].data["author_role"], "customer");
    }
    // An agent's comment changes no status and is the first response.
    let mut t = ticket(Pending, true);
    t.apply(&acting(&actor("ann", Role::Agent)), &TicketChange::Comment { body: "x".into(), public: true }, false)
        .unwrap();
    assert_eq!(t.status, Pending);
    assert_eq!(t.first_response_at, Some(from_millis(1_000)));
}

#[test]
fn comment_visibility_and_ownership() {
    let bob = actor("bob", Role::Customer);
    let alice = actor("alice", Role::Customer);
    let agent = actor("ann", Role::Agent);
    let mut t = ticket(Open, true);
    let err = t.apply(&acting(&bob), &TicketChange::Comment { body: "x".into(), public: true }, false).unwrap_err();
    assert_eq!(err.code, "ticket_not_found");
    let err = t.apply(&acting(&alice), &TicketChange::Comment { body: "x".into(), public: false }, false).unwrap_err();
    assert_eq!(err.code, "forbidden");
    t.apply(&acting(&agent), &TicketChange::Comment { body: "secret".into(), public: false }, false).unwrap();
    t.apply(&acting(&agent), &TicketChange::Comment { body: "hello".into(), public: true }, false).unwrap();
    assert_eq!(t.comments.len(), 2);
    let seen = t.clone().redacted_for(Role::Customer);
    assert_eq!(seen.comments.len(), 1);
    assert_eq!(seen.comments[0].body, "hello");
    assert_eq!(seen.history.len(), t.history.len() - 1);
    assert_eq!(t.clone().redacted_for(Role::Agent), t);
}

#[test]
fn a_transition_with_a_comment_is_two_entries_and_solving_stamps_the_time() {
    let mut t = ticket(Open, true);
    let agent = actor("ann", Role::Agent);
    let change = TicketChange::Transition { to: Solved, comment: Some("fixed".into()) };
    let applied = t.apply(&acting(&agent), &change, false).unwrap();
    assert_eq!(t.status, Solved);
    assert_eq!(t.solved_at, Some(from_millis(1_000)));
    assert_eq!(applied.result["status"], "solved");
    assert!(applied.result["comment_id"].as_str().unwrap().starts_with("cmt_"));
    let types: Vec<EventType> = applied.events.iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::TicketStatusChanged, EventType::TicketCommented]);
    // A customer reopening with a comment: the move first, so the comment reopens nothing.
    let alice = actor("alice", Role::Customer);
    let change = TicketChange::Transition { to: Open, comment: Some("not fixed".into()) };
    t.apply(&acting(&alice), &change, false).unwrap();
    assert_eq!(t.status, Open);
    assert_eq!(t.history.len() as u64, t.version);
}

#[test]
fn replaying_the_history_gives_the_status_and_version() {
    let mut t = ticket(New, false);
    let agent = actor("ann", Role::Agent);
    for change in [
        TicketChange::Assign { agent_id: UserId::new("ann") },
        TicketChange::Transition { to: Pending, comment: None },
        TicketChange::Comment { body: "?".into(), public: true },
        TicketChange::Transition { to: Solved, comment: None },
        TicketChange::Transition { to: Closed, comment: None },
    ] {
        t.apply(&acting(&agent), &change, true).unwrap();
    }
    let replayed = t
        .history
        .iter()
        .filter(|h| matches!(h.action, Action::Created | Action::StatusChanged))
        .filter_map(|h| h.to.as_deref())
        .next_back()
        .and_then(TicketStatus::parse);
    assert_eq!(replayed, Some(Closed));
    assert_eq!(t.history.len() as u64, t.version);
}

#[test]
fn events_carry_what_consumers_need() {
    let t = ticket(New, false);
    let (outcome, events) = created(&ctx("alice"), &t);
    assert_eq!(outcome, Outcome::Succeeded(json!({"ticket_id": t.ticket_id})));
    let data = &events[0].data;
    for field in ["ticket_id", "requester", "assignee", "status", "ticket_created_at", "subject", "priority"] {
        assert!(data.get(field).is_some(), "{field}");
    }
    assert_eq!(events[0].source, "/usher/tickets");
    assert_eq!(events[0].event_type, EventType::TicketCreated);
    let typed: TicketCreatedData = serde_json::from_value(data.clone()).unwrap();
    assert_eq!(typed.ticket.ticket_id, t.ticket_id);
    // Each change's data reads back as its typed schema.
    let mut t = ticket(New, false);
    let admin = actor("root", Role::Admin);
    let assigned = t.apply(&acting(&admin), &TicketChange::Assign { agent_id: UserId::new("ann") }, true).unwrap();
    let data: TicketAssignedData = serde_json::from_value(assigned.events[0].data.clone()).unwrap();
    assert_eq!((data.ticket.assignee, data.previous_assignee), (Some(UserId::new("ann")), None));
    let data: TicketStatusChangedData = serde_json::from_value(assigned.events[1].data.clone()).unwrap();
    assert_eq!((data.from, data.to, data.ticket.status), (New, Open, Open));
    let note = TicketChange::Comment { body: "note".into(), public: false };
    let commented = t.apply(&acting(&admin), &note, false).unwrap();
    let data: TicketCommentedData = serde_json::from_value(commented.events[0].data.clone()).unwrap();
    assert_eq!((data.author_role, data.public, data.ticket.version), (Role::Admin, false, 4));
}

#[test]
fn a_missing_ticket_is_a_business_failure() {
    let d = decide(
        &acting(&actor("ann", Role::Agent)),
        &TicketId::from("tkt_x"),
        None,
        &TicketChange::Comment { body: "x".into(), public: true },
        false,
    );
    assert!(matches!(d.outcome, Outcome::Failed(ref e) if e.code == "ticket_not_found"));
    assert!(d.write.is_none() && d.events.is_empty());
}

#[test]
fn cursors_round_trip_and_garbage_does_not_parse() {
    let c = TicketCursor { created_at: from_millis(1_795_341_600_123), ticket_id: TicketId::from("tkt_1") };
    assert_eq!(TicketCursor::decode(&c.encode()), Some(c));
    for bad in ["", "zz", "abc", "3a", "00", &"ff".repeat(600)] {
        assert_eq!(TicketCursor::decode(bad), None, "{bad}");
    }
}

#[test]
fn input_bounds() {
    assert!(validate_subject("Printer").is_ok());
    assert_eq!(validate_subject("  ").unwrap_err().field, "subject");
    assert!(validate_subject(&"x".repeat(201)).is_err());
    assert!(validate_text("body", &"é".repeat(10_000)).is_ok());
    assert_eq!(validate_text("body", &"x".repeat(10_001)).unwrap_err().field, "body");
    assert!(validate_text("description", "").is_err());
}

#[test]
fn a_ticket_holds_at_most_max_comments() {
    let agent = actor("ann", Role::Agent);
    let mut t = ticket(Open, true);
    for _ in 0..MAX_COMMENTS {
        t.apply(&acting(&agent), &TicketChange::Comment { body: "x".into(), public: true }, false).unwrap();
    }
    let before = t.clone();
    let err =
        t.apply(&acting(&agent), &TicketChange::Comment { body: "one more".into(), public: false }, false).unwrap_err();
    assert_eq!(err.code, "comment_limit_reached");
    assert_eq!(err.extra["max_comments"], MAX_COMMENTS);
    // A transition with a comment is refused too; one without still moves the ticket.
    let with_comment = TicketChange::Transition { to: Pending, comment: Some("and this".into()) };
    assert_eq!(t.apply(&acting(&agent), &with_comment, false).unwrap_err().code, "comment_limit_reached");
    assert_eq!(t, before);
    t.apply(&acting(&agent), &TicketChange::Transition { to: Pending, comment: None }, false).unwrap();
    assert_eq!((t.status, t.comments.len()), (Pending, MAX_COMMENTS));
}
