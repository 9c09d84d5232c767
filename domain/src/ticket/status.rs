//! Priorities and statuses, and the rules of the state machine: which moves a role may
//! ask for, and the business errors a refused move gives.

use crate::actor::Role;
use crate::error::{BusinessError, ErrorCode};
use crate::ids::TicketId;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
            (Closed, _) => Err(BusinessError::new(ErrorCode::TicketClosed, "a closed ticket is final")),
            (_, New) => Err(invalid("nothing returns to new")),
            (from, to) if from == to => Err(invalid("the ticket already has this status")),
            (from, Closed) if from != Solved => Err(invalid("only a solved ticket can be closed")),
            (_, Solved) if !assigned => Err(invalid("a ticket needs an assignee to be solved")),
            (_, to) => Ok(to),
        }
    }

    /// Statuses a customer's comment takes back to `open`.
    pub(super) fn reopens_on_customer_comment(self) -> bool {
        matches!(self, TicketStatus::Pending | TicketStatus::OnHold | TicketStatus::Solved)
    }
}

/// Who may ask for `from → to`: agents and admins any move the ticket allows; a
/// customer only to reopen their own solved ticket.
pub fn may_move(role: Role, from: TicketStatus, to: TicketStatus) -> bool {
    may_ask_to_move(role, to) && (role.is_staff() || from == TicketStatus::Solved)
}

/// What [`may_move`] says before the ticket is read (ingress knows the role and `to`
/// only): a customer may only ever ask for `open`.
pub fn may_ask_to_move(role: Role, to: TicketStatus) -> bool {
    role.is_staff() || to == TicketStatus::Open
}

/// Who assigns tickets: agents and admins.
pub fn may_assign(role: Role) -> bool {
    role.is_staff()
}

/// Who may comment with this visibility: internal notes are for agents and admins.
pub fn may_comment(role: Role, public: bool) -> bool {
    public || role.is_staff()
}

pub fn invalid_transition(from: TicketStatus, to: TicketStatus, why: &str) -> BusinessError {
    BusinessError::new(ErrorCode::InvalidTransition, format!("{} → {}: {why}", from.as_str(), to.as_str()))
        .with("from", from)
        .with("to", to)
}

pub fn ticket_not_found(ticket_id: &TicketId) -> BusinessError {
    BusinessError::new(ErrorCode::TicketNotFound, format!("no ticket {ticket_id}")).with("ticket_id", ticket_id)
}
