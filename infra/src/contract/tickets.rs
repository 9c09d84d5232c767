//! The `TicketStore` and `UserDirectory` contract: a ticket's life, who may change it,
//! listing pages, racing changes.

use super::ctx;
use super::requests::admitted;
use crate::Backend;
use domain::actor::{Actor, Role};
use domain::clock;
use domain::event::EventType;
use domain::ids::{RequestId, TicketId, UserId};
use domain::ports::{Completion, TicketQuery};
use domain::request::{CommandContext, RequestStatus};
use domain::ticket::{Action, Priority, Ticket, TicketChange, TicketStatus};
use serde_json::json;

fn actor(who: &str, role: Role) -> Actor {
    Actor { sub: UserId::new(who), role }
}

async fn new_ticket(b: &Backend, requester: &str, subject: &str) -> (TicketId, Completion) {
    let id = admitted(b, requester).await;
    let ticket = Ticket::new(&ctx(&id, requester), subject, "It does not work", Priority::Normal);
    let done = b.tickets.create_ticket(&ctx(&id, requester), &ticket).await.unwrap();
    (ticket.ticket_id, done)
}

async fn change(b: &Backend, who: &Actor, ticket_id: &TicketId, change: TicketChange) -> Completion {
    let id = admitted(b, who.sub.as_str()).await;
    let ctx = CommandContext { actor: who.clone(), ..ctx(&id, who.sub.as_str()) };
    b.tickets.change_ticket(&ctx, ticket_id, &change).await.unwrap()
}

fn code(c: &Completion) -> &str {
    c.doc.error.as_ref().map(|e| e.code.as_str()).unwrap_or("")
}

pub async fn user_directory(b: Backend) {
    let now = clock::now();
    let ann = UserId::new(format!("ann-{}", RequestId::generate()));
    assert!(!b.users.is_agent(&ann).await.unwrap(), "an unknown user is no agent");
    b.users.record_user(&ann, Role::Customer, now).await.unwrap();
    assert!(!b.users.is_agent(&ann).await.unwrap());
    b.users.record_user(&ann, Role::Agent, now).await.unwrap();
    b.users.record_user(&ann, Role::Agent, now).await.unwrap();
    assert!(b.users.is_agent(&ann).await.unwrap());
    b.users.record_user(&ann, Role::Customer, now).await.unwrap();
    assert!(b.users.is_agent(&ann).await.unwrap(), "an agent stays an agent");
    b.users.record_user(&UserId::new("root"), Role::Admin, now).await.unwrap();
    assert!(!b.users.is_agent(&UserId::new("root")).await.unwrap(), "an admin is not an agent by role");
}

pub async fn ticket_lifecycle(b: Backend) {
    let (alice, ann, root) = (actor("alice", Role::Customer), actor("ann", Role::Agent), actor("root", Role::Admin));
    let r1 = admitted(&b, "alice").await;
    let ticket = Ticket::new(&ctx(&r1, "alice"), "Printer", "It is on fire", Priority::Urgent);
    let created = b.tickets.create_ticket(&ctx(&r1, "alice"), &ticket).await.unwrap();
    assert!(created.first);
    assert_eq!(created.doc.result, Some(json!({ "ticket_id": ticket.ticket_id })));
    assert_eq!(created.events[0].event_type, EventType::TicketCreated);
    // Redelivery: the first completion again, and still one ticket.
    let again = Ticket::new(&ctx(&r1, "alice"), "Printer", "It is on fire", Priority::Urgent);
    let replay = b.tickets.create_ticket(&ctx(&r1, "alice"), &again).await.unwrap();
    assert!(!replay.first);
    assert_eq!(replay.doc, created.doc);
    assert!(b.tickets.ticket(&again.ticket_id).await.unwrap().is_none());
    let id = ticket.ticket_id.clone();
    let stored = b.tickets.ticket(&id).await.unwrap().expect("the ticket");
    assert_eq!(stored, ticket);

    let assign = |who: &str| TicketChange::Assign { agent_id: UserId::new(who) };
    assert_eq!(code(&change(&b, &root, &id, assign("ann")).await), "not_an_agent");
    b.users.record_user(&UserId::new("ann"), Role::Agent, clock::now()).await.unwrap();
    let assigned = change(&b, &root, &id, assign("ann")).await;
    assert_eq!(assigned.doc.result, Some(json!({ "ticket_id": id, "assignee": "ann" })));
    let types: Vec<EventType> = assigned.events.iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::TicketAssigned, EventType::TicketStatusChanged]);

    let to = |status| TicketChange::Transition { to: status, comment: None };
    assert_eq!(change(&b, &ann, &id, to(TicketStatus::Pending)).await.doc.result.unwrap()["status"], "pending");
    let commented = change(&b, &alice, &id, TicketChange::Comment { body: "still broken".into(), public: true }).await;
    assert_eq!(commented.events.len(), 2, "the comment and the reopening");
    assert_eq!(b.tickets.ticket(&id).await.unwrap().unwrap().status, TicketStatus::Open);
    let bad = change(&b, &ann, &id, to(TicketStatus::New)).await;
    assert_eq!(code(&bad), "invalid_transition");
    assert_eq!(bad.doc.error.as_ref().unwrap().extra["from"], "open");
    assert!(bad.events.is_empty());
    change(&b, &ann, &id, TicketChange::Comment { body: "internal".into(), public: false }).await;
    assert_eq!(change(&b, &ann, &id, to(TicketStatus::Solved)).await.doc.status, RequestStatus::Succeeded);
    assert_eq!(change(&b, &ann, &id, to(TicketStatus::Closed)).await.doc.status, RequestStatus::Succeeded);
    assert_eq!(
        code(&change(&b, &alice, &id, TicketChange::Comment { body: "x".into(), public: true }).await),
        "ticket_closed"
    );
    assert_eq!(code(&change(&b, &ann, &id, to(TicketStatus::Open)).await), "ticket_closed");

    let last = b.tickets.ticket(&id).await.unwrap().unwrap();
    assert_eq!(last.status, TicketStatus::Closed);
    assert_eq!(last.version, last.history.len() as u64);
    assert_eq!(last.comments.len(), 2);
    assert!(last.first_response_at.is_none(), "an internal note is no response");
    assert!(last.solved_at.is_some());
    let missing = change(&b, &ann, &TicketId::from("tkt_missing"), to(TicketStatus::Open)).await;
    assert_eq!(code(&missing), "ticket_not_found");
}

pub async fn ticket_authorization(b: Backend) {
    let (alice, bob) = (actor("alice", Role::Customer), actor("bob", Role::Customer));
    let (id, _) = new_ticket(&b, "alice", "Mine").await;
    let comment = |public| TicketChange::Comment { body: "hello".into(), public };
    assert_eq!(code(&change(&b, &bob, &id, comment(true)).await), "ticket_not_found");
    assert_eq!(code(&change(&b, &alice, &id, comment(false)).await), "forbidden");
    let to_pending = TicketChange::Transition { to: TicketStatus::Pending, comment: None };
    assert_eq!(code(&change(&b, &alice, &id, to_pending).await), "invalid_transition");
    assert_eq!(change(&b, &alice, &id, comment(true)).await.doc.status, RequestStatus::Succeeded);
    let t = b.tickets.ticket(&id).await.unwrap().unwrap();
    assert_eq!((t.status, t.version), (TicketStatus::New, 2), "refused changes left no trace");
}

pub async fn ticket_listing(b: Backend) {
    // A requester of its own, so that other checks sharing the backend do not interfere.
    let me = format!("lister-{}", RequestId::generate());
    let other = format!("other-{}", RequestId::generate());
    let ann = actor("ann", Role::Agent);
    b.users.record_user(&ann.sub, Role::Agent, clock::now()).await.unwrap();
    let mut mine = Vec::new();
    for i in 0..7 {
        mine.push(new_ticket(&b, &me, &format!("t{i}")).await.0);
    }
    new_ticket(&b, &other, "not mine").await;
    for id in &mine[..3] {
        change(&b, &ann, id, TicketChange::Assign { agent_id: ann.sub.clone() }).await;
    }
    let query =
        |limit, after| TicketQuery { status: None, assignee: None, requester: Some(UserId::new(&me)), limit, after };
    let mut seen = Vec::new();
    let mut after = None;
    for page in 0.. {
        assert!(page < 10, "paging ends");
        let got = b.tickets.tickets(&query(3, after)).await.unwrap();
        assert!(got.items.len() <= 3);
        seen.extend(got.items.iter().map(|t| t.ticket_id.clone()));
        match got.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, mine, "every ticket once, in creation order");
    let open = TicketQuery { status: Some(TicketStatus::Open), ..query(100, None) };
    let open: Vec<TicketId> = b.tickets.tickets(&open).await.unwrap().items.into_iter().map(|t| t.ticket_id).collect();
    assert_eq!(open, mine[..3].to_vec());
    let by_ann = TicketQuery { assignee: Some(ann.sub.clone()), status: Some(TicketStatus::New), ..query(100, None) };
    assert!(b.tickets.tickets(&by_ann).await.unwrap().items.is_empty());
    let exact = b.tickets.tickets(&query(7, None)).await.unwrap();
    assert_eq!((exact.items.len(), exact.next), (7, None), "no next page when nothing follows");
}

/// Twenty changes race on one ticket: each is applied against the ticket as the ones
/// before it left it, and the history tells the same story as the final state.
pub async fn concurrent_ticket_changes(b: Backend) {
    let ann = actor("ann", Role::Agent);
    b.users.record_user(&ann.sub, Role::Agent, clock::now()).await.unwrap();
    let (id, _) = new_ticket(&b, "alice", "Race").await;
    change(&b, &ann, &id, TicketChange::Assign { agent_id: ann.sub.clone() }).await;
    let targets = [TicketStatus::Pending, TicketStatus::OnHold, TicketStatus::Open, TicketStatus::Solved];
    let mut tasks = Vec::new();
    for i in 0..20usize {
        let (b, id, ann) = (b.clone(), id.clone(), ann.clone());
        let to = targets[i % targets.len()];
        tasks.push(tokio::spawn(
            async move { change(&b, &ann, &id, TicketChange::Transition { to, comment: None }).await },
        ));
    }
    let mut applied = 0;
    for t in tasks {
        let c = t.await.unwrap();
        assert!(c.doc.status.is_terminal());
        if c.doc.status == RequestStatus::Succeeded {
            applied += 1;
        } else {
            assert_eq!(code(&c), "invalid_transition");
        }
    }
    let t = b.tickets.ticket(&id).await.unwrap().unwrap();
    assert_eq!(t.version, t.history.len() as u64);
    assert_eq!(t.version, 3 + applied, "created, assigned, opened, then one entry per applied move");
    let statuses = t.history.iter().filter(|h| matches!(h.action, Action::Created | Action::StatusChanged));
    assert_eq!(statuses.filter_map(|h| h.to.as_deref()).next_back().and_then(TicketStatus::parse), Some(t.status));
}
