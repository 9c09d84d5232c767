//! The `data` of every `usher.ticket.*` event: each carries the ticket as the change left
//! it, so that the notifications and analytics pools (and outside subscribers) need no read.

use super::{Priority, TicketStatus};
use crate::actor::Role;
use crate::clock::Timestamp;
use crate::ids::{CommentId, TicketId, UserId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    pub ticket_created_at: Timestamp,
    /// The first public comment of an agent or admin other than the requester.
    pub first_response_at: Option<Timestamp>,
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
