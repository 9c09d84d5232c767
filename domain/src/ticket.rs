//! Support tickets: the aggregate, its Zendesk-style state machine, who may do what, and
//! the outcomes and events the tickets pool commits.
//!
//! A ticket's `history` is its audit trail: append-only, one entry per change (a status
//! change that another action causes is an entry of its own), and `version` counts the
//! entries, so replaying the history reproduces both the status and the version.

use crate::actor::{Actor, Role};
use crate::clock::{Timestamp, rfc3339};
use crate::error::BusinessError;
use crate::error::FieldError;
use crate::event::{self, CloudEvent, EventType};
use crate::ids::{CommentId, TicketId, UserId};
use crate::request::CommandContext;
use crate::request::Outcome;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The `source` of the tickets pool's events: `/usher/tickets`.
pub const POOL: &str = "tickets";
pub const MAX_SUBJECT_CHARS: usize = 200;
/// The longest description or comment body, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "low" => Priority::Low,
            "normal" => Priority::Normal,
            "high" => Priority::High,
            "urgent" => Priority::Urgent,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    New,
    Open,
    Pending,
    OnHold,
    Solved,
    Closed,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 6] = [
        TicketStatus::New,
        TicketStatus::Open,
        TicketStatus::Pending,
        TicketStatus::OnHold,
        TicketStatus::Solved,
        TicketStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::New => "new",
            TicketStatus::Open => "open",
            TicketStatus::Pending => "pending",
            TicketStatus::OnHold => "on_hold",
            TicketStatus::Solved => "solved",
            TicketStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The ticket's own rules for moving from `self` to `to`, whoever asks (see
    /// [`may_move`] for that): `closed` is final; nothing returns to `new`; only a solved
    /// ticket closes; `solved` needs an assignee; a move to the same status is no move.
    pub fn transition(self, to: TicketStatus, assigned: bool) -> Result<TicketStatus, BusinessError> {
        use TicketStatus::*;
        let invalid = |why: &str| invalid_transition(self, to, why);
        match (self, to) {
            (Closed, _) => Err(BusinessError::new("ticket_closed", "a closed ticket is final")),
            (_, New) => Err(invalid("nothing returns to new")),
            (from, to) if from == to => Err(invalid("the ticket already has this status")),
            (from, Closed) if from != Solved => Err(invalid("only a solved ticket can be closed")),
            (_, Solved) if !assigned => Err(invalid("a ticket needs an assignee to be solved")),
            (_, to) => Ok(to),
        }
    }

    /// Statuses a customer's comment takes back to `open`.
    fn reopens_on_customer_comment(self) -> bool {
        matches!(self, TicketStatus::Pending | TicketStatus::OnHold | TicketStatus::Solved)
    }
}

/// Who may ask for `from → to`: agents and admins any move the ticket allows; a
/// customer only to reopen their own solved ticket.
pub fn may_move(role: Role, from: TicketStatus, to: TicketStatus) -> bool {
    role.is_staff() || (from == TicketStatus::Solved && to == TicketStatus::Open)
}

pub fn invalid_transition(from: TicketStatus, to: TicketStatus, why: &str) -> BusinessError {
    BusinessError::new("invalid_transition", format!("{} → {}: {why}", from.as_str(), to.as_str()))
        .with("from", from)
        .with("to", to)
}

pub fn ticket_not_found(ticket_id: &TicketId) -> BusinessError {
    BusinessError::new("ticket_not_found", format!("no ticket {ticket_id}")).with("ticket_id", ticket_id)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Comment {
    pub comment_id: CommentId,
    pub author: UserId,
    pub body: String,
    /// Internal comments (`false`) are for agents and admins only.
    pub public: bool,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Assigned,
    StatusChanged,
    Commented,
}

/// One change: `from`/`to` are statuses for `created` (to) and `status_changed`, users
/// for `assigned`, and the comment id for `commented` (to).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub actor: UserId,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(required = false)]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(required = false)]
    pub to: Option<String>,
}

/// A ticket with its comments (customers see only the public ones) and its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ticket {
    pub ticket_id: TicketId,
    pub subject: String,
    pub description: String,
    pub priority: Priority,
    pub requester: UserId,
    pub assignee: Option<UserId>,
    pub status: TicketStatus,
    /// How many changes the ticket has had: the length of its history.
    pub version: u64,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// The first public comment of an agent or admin other than the requester.
    #[serde(with = "rfc3339::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_response_at: Option<Timestamp>,
    /// The latest time it was solved.
    #[serde(with = "rfc3339::option", default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub solved_at: Option<Timestamp>,
    pub comments: Vec<Comment>,
    pub history: Vec<HistoryEntry>,
}

/// What can happen to an existing ticket (creation is [`Ticket::new`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TicketChange {
    Assign { agent_id: UserId },
    Transition { to: TicketStatus, comment: Option<String> },
    Comment { body: String, public: bool },
}

impl Ticket {
    /// A `new` ticket requested by `ctx.actor`, with its `created` history entry.
    pub fn new(ctx: &CommandContext, subject: &str, description: &str, priority: Priority) -> Self {
        let mut ticket = Ticket {
            ticket_id: TicketId::generate(),
            subject: subject.to_owned(),
            description: description.to_owned(),
            priority,
            requester: ctx.actor.sub.clone(),
            assignee: None,
            status: TicketStatus::New,
            version: 0,
            created_at: ctx.now,
            updated_at: ctx.now,
            first_response_at: None,
            solved_at: None,
            comments: Vec::new(),
            history: Vec::new(),
        };
        ticket.record(ctx, Action::Created, None, Some(TicketStatus::New.as_str().to_owned()));
        ticket
    }

    /// Whether the customer may see this ticket at all (staff see every ticket).
    pub fn visible_to(&self, user: &UserId, role: Role) -> bool {
        role.is_staff() || &self.requester == user
    }

    /// The ticket as `role` may read it: customers do not see internal comments, nor the
    /// history entries that name them.
    pub fn redacted_for(mut self, role: Role) -> Self {
        if role.is_staff() {
            return self;
        }
        let internal: Vec<String> =
            self.comments.iter().filter(|c| !c.public).map(|c| c.comment_id.to_string()).collect();
        self.comments.retain(|c| c.public);
        self.history
            .retain(|h| !(h.action == Action::Commented && h.to.as_ref().is_some_and(|id| internal.contains(id))));
        self
    }

    /// Applies one change for `ctx.actor`, appending a history entry per change. On error
    /// the ticket is left as it was. `assignee_is_agent` answers for an assignment's target.
    pub fn apply(
        &mut self,
        ctx: &CommandContext,
        change: &TicketChange,
        assignee_is_agent: bool,
    ) -> Result<Applied, BusinessError> {
        let actor = &ctx.actor;
        if !self.visible_to(&actor.sub, actor.role) {
            return Err(ticket_not_found(&self.ticket_id));
        }
        if self.status == TicketStatus::Closed {
            return Err(BusinessError::new("ticket_closed", format!("ticket {} is closed", self.ticket_id))
                .with("ticket_id", &self.ticket_id));
        }
        let mut next = self.clone();
        let mut changes = Vec::new();
        let result = match change {
            TicketChange::Assign { agent_id } => {
                if !actor.role.is_staff() {
                    return Err(BusinessError::new("forbidden", "only agents and admins assign tickets"));
                }
                if !assignee_is_agent {
                    return Err(BusinessError::new("not_an_agent", format!("{agent_id} is not an agent"))
                        .with("agent_id", agent_id));
                }
                if next.assignee.as_ref() != Some(agent_id) {
                    changes.push(next.assign(ctx, agent_id));
                    if next.status == TicketStatus::New {
                        changes.push(next.move_to(ctx, TicketStatus::Open));
                    }
                }
                json!({ "ticket_id": next.ticket_id, "assignee": agent_id })
            }
            TicketChange::Transition { to, comment } => {
                let to = *to;
                if !may_move(actor.role, next.status, to) {
                    return Err(invalid_transition(next.status, to, "customers may only reopen a solved ticket"));
                }
                next.status.transition(to, next.assignee.is_some())?;
                changes.push(next.move_to(ctx, to));
                let mut result = json!({ "ticket_id": next.ticket_id, "status": to });
                if let Some(body) = comment {
                    let (change, comment_id) = next.comment(ctx, actor, body, true);
                    changes.push(change);
                    result["comment_id"] = json!(comment_id);
                }
                result
            }
            TicketChange::Comment { body, public } => {
                if !public && !actor.role.is_staff() {
                    return Err(BusinessError::new("forbidden", "only agents and admins write internal comments"));
                }
                let (change, comment_id) = next.comment(ctx, actor, body, *public);
                changes.push(change);
                if actor.role == Role::Customer && next.status.reopens_on_customer_comment() {
                    changes.push(next.move_to(ctx, TicketStatus::Open));
                }
                json!({ "ticket_id": next.ticket_id, "comment_id": comment_id })
            }
        };
        let events = changes.iter().map(|c| next.event(ctx, actor, c)).collect();
        *self = next;
        Ok(Applied { result, events })
    }

    fn record(&mut self, ctx: &CommandContext, action: Action, from: Option<String>, to: Option<String>) {
        self.history.push(HistoryEntry { at: ctx.now, actor: ctx.actor.sub.clone(), action, from, to });
        self.version += 1;
        self.updated_at = ctx.now;
    }

    fn assign(&mut self, ctx: &CommandContext, agent_id: &UserId) -> Change {
        let previous = self.assignee.replace(agent_id.clone());
        self.record(ctx, Action::Assigned, previous.as_ref().map(UserId::to_string), Some(agent_id.to_string()));
        Change::Assigned { previous }
    }

    fn move_to(&mut self, ctx: &CommandContext, to: TicketStatus) -> Change {
        let from = std::mem::replace(&mut self.status, to);
        if to == TicketStatus::Solved {
            self.solved_at = Some(ctx.now);
        }
        self.record(ctx, Action::StatusChanged, Some(from.as_str().to_owned()), Some(to.as_str().to_owned()));
        Change::StatusChanged { from, to }
    }

    fn comment(&mut self, ctx: &CommandContext, actor: &Actor, body: &str, public: bool) -> (Change, CommentId) {
        let comment = Comment {
            comment_id: CommentId::generate(),
            author: actor.sub.clone(),
            body: body.to_owned(),
            public,
            created_at: ctx.now,
        };
        if public && actor.role.is_staff() && actor.sub != self.requester && self.first_response_at.is_none() {
            self.first_response_at = Some(ctx.now);
        }
        let id = comment.comment_id.clone();
        self.record(ctx, Action::Commented, None, Some(id.to_string()));
        self.comments.push(comment.clone());
        (Change::Commented(comment), id)
    }

    /// What every ticket event says about the ticket, so consumers need no read of the store.
    fn snapshot(&self, actor: &UserId) -> TicketSnapshot {
        TicketSnapshot {
            ticket_id: self.ticket_id.clone(),
            subject: self.subject.clone(),
            priority: self.priority,
            requester: self.requester.clone(),
            assignee: self.assignee.clone(),
            status: self.status,
            version: self.version,
            ticket_created_at: self.created_at,
            first_response_at: self.first_response_at,
            solved_at: self.solved_at,
            actor: actor.clone(),
        }
    }

    fn event(&self, ctx: &CommandContext, actor: &Actor, change: &Change) -> CloudEvent {
        let ticket = self.snapshot(&actor.sub);
        let (event_type, data) = match change {
            Change::Assigned { previous } => (
                EventType::TicketAssigned,
                event::data(&TicketAssignedData { ticket, previous_assignee: previous.clone() }),
            ),
            Change::StatusChanged { from, to } => {
                (EventType::TicketStatusChanged, event::data(&TicketStatusChangedData { ticket, from: *from, to: *to }))
            }
            Change::Commented(c) => (
                EventType::TicketCommented,
                event::data(&TicketCommentedData {
                    ticket,
                    comment_id: c.comment_id.clone(),
                    author: c.author.clone(),
                    author_role: actor.role,
                    public: c.public,
                    body: c.body.clone(),
                }),
            ),
        };
        CloudEvent::new(event_type, POOL, self.ticket_id.as_str(), ctx.request_id.as_str(), data, ctx.now)
    }
}

/// One change within a command, for its event. A command makes at most one change of
/// each kind, so `(request, type, ticket)` keeps event ids unique.
enum Change {
    Assigned { previous: Option<UserId> },
    StatusChanged { from: TicketStatus, to: TicketStatus },
    Commented(Comment),
}

/// A change that applied: the status document's result and the events it emits.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub result: Value,
    pub events: Vec<CloudEvent>,
}

// ---------------------------------------------------------------------------------------
// Events: every ticket event's `data` carries the ticket as the change left it, so that
// the notifications and analytics pools (and outside subscribers) need no read.

/// The ticket after the change, in the `data` of every `usher.ticket.*` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TicketSnapshot {
    pub ticket_id: TicketId,
    pub subject: String,
    pub priority: Priority,
    pub requester: UserId,
    pub assignee: Option<UserId>,
    /// The status after the change.
    pub status: TicketStatus,
    pub version: u64,
    #[serde(with = "rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub ticket_created_at: Timestamp,
    /// The first public comment of an agent or admin other than the requester.
    #[serde(with = "rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub first_response_at: Option<Timestamp>,
    #[serde(with = "rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub solved_at: Option<Timestamp>,
    /// Who made the change.
    pub actor: UserId,
}

/// `data` of `usher.ticket.created`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TicketCreatedData {
    #[serde(flatten)]
    pub ticket: TicketSnapshot,
}

/// `data` of `usher.ticket.assigned`; the new assignee is `assignee`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TicketAssignedData {
    #[serde(flatten)]
    pub ticket: TicketSnapshot,
    pub previous_assignee: Option<UserId>,
}

/// `data` of `usher.ticket.status_changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TicketStatusChangedData {
    #[serde(flatten)]
    pub ticket: TicketSnapshot,
    pub from: TicketStatus,
    pub to: TicketStatus,
}

/// `data` of `usher.ticket.commented`. Internal comments (`public: false`) are events too:
/// whoever shows them to customers must filter on `public`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TicketCommentedData {
    #[serde(flatten)]
    pub ticket: TicketSnapshot,
    pub comment_id: CommentId,
    pub author: UserId,
    pub author_role: Role,
    pub public: bool,
    pub body: String,
}

// ---------------------------------------------------------------------------------------
// Outcomes: what each ticket command commits to its status document, and the events with
// it. Both adapters call these inside their transaction, so the two backends agree.

pub fn created(ctx: &CommandContext, ticket: &Ticket) -> (Outcome, Vec<CloudEvent>) {
    let data = event::data(&TicketCreatedData { ticket: ticket.snapshot(&ctx.actor.sub) });
    let event = CloudEvent::new(
        EventType::TicketCreated,
        POOL,
        ticket.ticket_id.as_str(),
        ctx.request_id.as_str(),
        data,
        ctx.now,
    );
    (Outcome::Succeeded(json!({ "ticket_id": ticket.ticket_id })), vec![event])
}

/// What applying `change` to `current` (the ticket as stored, if any) commits: the
/// outcome, its events, and the ticket to write back, guarded by `current`'s version.
/// `None` to write means nothing changed (a business failure, or a no-op assignment).
pub struct Decision {
    pub outcome: Outcome,
    pub events: Vec<CloudEvent>,
    pub write: Option<Ticket>,
}

pub fn decide(
    ctx: &CommandContext,
    ticket_id: &TicketId,
    current: Option<&Ticket>,
    change: &TicketChange,
    assignee_is_agent: bool,
) -> Decision {
    let Some(current) = current else {
        return Decision { outcome: Outcome::Failed(ticket_not_found(ticket_id)), events: Vec::new(), write: None };
    };
    let mut next = current.clone();
    match next.apply(ctx, change, assignee_is_agent) {
        Ok(applied) => {
            let write = (next.version != current.version).then_some(next);
            Decision { outcome: Outcome::Succeeded(applied.result), events: applied.events, write }
        }
        Err(e) => Decision { outcome: Outcome::Failed(e), events: Vec::new(), write: None },
    }
}

// ---------------------------------------------------------------------------------------
// Client input

pub fn validate_subject(subject: &str) -> Result<(), FieldError> {
    let len = subject.trim().chars().count();
    if len == 0 || subject.chars().count() > MAX_SUBJECT_CHARS {
        return Err(FieldError::new("subject", format!("must be 1 to {MAX_SUBJECT_CHARS} characters")));
    }
    Ok(())
}

/// A description or comment body: 1 to [`MAX_TEXT_CHARS`] characters, not all blank.
pub fn validate_text(field: &'static str, text: &str) -> Result<(), FieldError> {
    if text.trim().is_empty() || text.chars().count() > MAX_TEXT_CHARS {
        return Err(FieldError::new(field, format!("must be 1 to {MAX_TEXT_CHARS} characters, not all blank")));
    }
    Ok(())
}

/// Where a page of tickets ends, in their stable order `(created_at, ticket_id)`. Clients
/// see it as an opaque string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketCursor {
    pub created_at: Timestamp,
    pub ticket_id: TicketId,
}

impl TicketCursor {
    pub fn after(ticket: &Ticket) -> Self {
        Self { created_at: ticket.created_at, ticket_id: ticket.ticket_id.clone() }
    }

    pub fn encode(&self) -> String {
        let plain = format!("{}:{}", crate::clock::to_millis(self.created_at), self.ticket_id);
        plain.bytes().map(|b| format!("{b:02x}")).collect()
    }

    pub fn decode(s: &str) -> Option<Self> {
        if s.len() % 2 != 0 || s.len() > 1024 {
            return None;
        }
        let bytes: Option<Vec<u8>> =
            (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
        let plain = String::from_utf8(bytes?).ok()?;
        let (millis, id) = plain.split_once(':')?;
        if id.is_empty() {
            return None;
        }
        Some(Self { created_at: crate::clock::from_millis(millis.parse().ok()?), ticket_id: TicketId::from(id) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_millis;
    use TicketStatus::*;

    fn ctx(who: &str) -> CommandContext {
        acting(&actor(who, Role::Customer))
    }

    fn acting(actor: &Actor) -> CommandContext {
        CommandContext { request_id: "req_1".into(), actor: actor.clone(), now: from_millis(1_000) }
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
        let err =
            closed.apply(&acting(&agent), &TicketChange::Assign { agent_id: UserId::new("ann") }, true).unwrap_err();
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
        let err =
            t.apply(&acting(&alice), &TicketChange::Comment { body: "x".into(), public: false }, false).unwrap_err();
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
}
