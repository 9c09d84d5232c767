//! Support tickets: the aggregate, its Zendesk-style state machine, who may do what, and
//! the outcomes and events the tickets pool commits.
//!
//! A ticket's `history` is its audit trail: append-only, one entry per change (a status
//! change that another action causes is an entry of its own), and `version` counts the
//! entries, so replaying the history reproduces both the status and the version.

//!
//! # Layout
//! - [`status`]: priorities, statuses and the state machine's rules.
//! - [`events`]: the `data` of every `usher.ticket.*` event.
//! - [`input`]: what a client may send.
//! - [`cursor`]: the opaque page cursor of ticket lists.

mod cursor;
mod events;
mod input;
mod status;

pub use cursor::TicketCursor;
pub use events::{TicketAssignedData, TicketCommentedData, TicketCreatedData, TicketSnapshot, TicketStatusChangedData};
pub use input::{MAX_SUBJECT_CHARS, MAX_TEXT_CHARS, validate_subject, validate_text};
pub use status::{
    Priority, TicketStatus, invalid_transition, may_ask_to_move, may_assign, may_comment, may_move, ticket_not_found,
};

use crate::actor::{Actor, Role};
use crate::clock::Timestamp;
use crate::error::{BusinessError, ErrorCode};
use crate::event::{self, CloudEvent, EventType};
use crate::ids::{CommentId, TicketId, UserId};
use crate::request::{CommandContext, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The `source` of the tickets pool's events: `/usher/tickets`.
pub const POOL: &str = "tickets";

/// The most comments one ticket holds (public and internal, a transition's comment too);
/// one more is `comment_limit_reached`, so no caller grows a ticket without bound.
pub const MAX_COMMENTS: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Comment {
    pub comment_id: CommentId,
    pub author: UserId,
    pub body: String,
    /// Internal comments (`false`) are for agents and admins only.
    pub public: bool,
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
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The first public comment of an agent or admin other than the requester.
    #[serde(default)]
    pub first_response_at: Option<Timestamp>,
    /// The latest time it was solved.
    #[serde(default)]
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
            return Err(BusinessError::new(ErrorCode::TicketClosed, format!("ticket {} is closed", self.ticket_id))
                .with("ticket_id", &self.ticket_id));
        }
        let adds_comment =
            matches!(change, TicketChange::Comment { .. } | TicketChange::Transition { comment: Some(_), .. });
        if adds_comment && self.comments.len() >= MAX_COMMENTS {
            return Err(BusinessError::new(
                ErrorCode::CommentLimitReached,
                format!("ticket {} has {MAX_COMMENTS} comments, the most one ticket holds", self.ticket_id),
            )
            .with("ticket_id", &self.ticket_id)
            .with("max_comments", MAX_COMMENTS));
        }
        let mut next = self.clone();
        let mut changes = Vec::new();
        let result = match change {
            TicketChange::Assign { agent_id } => {
                if !may_assign(actor.role) {
                    return Err(BusinessError::new(ErrorCode::Forbidden, "only agents and admins assign tickets"));
                }
                if !assignee_is_agent {
                    return Err(BusinessError::new(ErrorCode::NotAnAgent, format!("{agent_id} is not an agent"))
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
                if !may_comment(actor.role, *public) {
                    return Err(BusinessError::new(
                        ErrorCode::Forbidden,
                        "only agents and admins write internal comments",
                    ));
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
            .traced(ctx.traceparent.as_deref())
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
    )
    .traced(ctx.traceparent.as_deref());
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

#[cfg(test)]
mod tests;
