//! Errors say what the caller should do with them: a business outcome is recorded in the
//! status document, an infrastructure failure is retried, corrupt input is dead-lettered.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Every business failure a status document can carry as `error.code`, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A requested seat is held or booked (`seat_ids` lists them).
    SeatsUnavailable,
    ShowNotFound,
    /// A requested seat is not in the show (`seat_ids` lists them).
    SeatNotFound,
    /// The customer's live holds would cover more than `USHER_MAX_HELD_SEATS` seats.
    HoldLimitReached,
    /// No live hold of the caller's with that id (released, confirmed, someone else's).
    HoldNotFound,
    HoldExpired,
    PaymentDeclined,
    TicketNotFound,
    /// An assignment's target is not a registered agent.
    NotAnAgent,
    /// The ticket's state machine refuses the move (`from`, `to`).
    InvalidTransition,
    TicketClosed,
    /// The ticket already has [`crate::ticket::MAX_COMMENTS`] comments (`max_comments`).
    CommentLimitReached,
    /// The caller's role may not make this change.
    Forbidden,
    /// The system gave up after its retries; an operator may replay it.
    DeadLettered,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::SeatsUnavailable => "seats_unavailable",
            ErrorCode::ShowNotFound => "show_not_found",
            ErrorCode::SeatNotFound => "seat_not_found",
            ErrorCode::HoldLimitReached => "hold_limit_reached",
            ErrorCode::HoldNotFound => "hold_not_found",
            ErrorCode::HoldExpired => "hold_expired",
            ErrorCode::PaymentDeclined => "payment_declined",
            ErrorCode::TicketNotFound => "ticket_not_found",
            ErrorCode::NotAnAgent => "not_an_agent",
            ErrorCode::InvalidTransition => "invalid_transition",
            ErrorCode::TicketClosed => "ticket_closed",
            ErrorCode::CommentLimitReached => "comment_limit_reached",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::DeadLettered => "dead_lettered",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A business outcome that ends a request as `failed`: `{code, detail, ...}` in the status
/// document. `extra` carries code-specific fields, such as the conflicting `seat_ids`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct BusinessError {
    pub code: ErrorCode,
    pub detail: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl BusinessError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self { code, detail: detail.into(), extra: Map::new() }
    }

    pub fn with(mut self, field: &str, value: impl Serialize) -> Self {
        self.extra.insert(field.to_owned(), serde_json::to_value(value).unwrap_or(Value::Null));
        self
    }
}

/// Input that breaks a rule, naming the field (ingress answers it as a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self { field, reason: reason.into() }
    }
}

/// What the consumer loop does with a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Transient: make the message visible again after the next backoff step.
    Retry,
    /// Will never succeed: dead-letter the message now, with the reason.
    DeadLetter,
}

/// A failure of a port (a store, a queue, the bus) or of an outside provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The backend could not be reached or answered with a server-side fault.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// Throttled, or lost a race on a transaction: the same call may pass later.
    #[error("contention: {0}")]
    Contention(String),
    /// The data read back cannot be understood (a bug or a hand-edited record).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The call itself is wrong (a missing queue, a limit exceeded).
    #[error("invalid call: {0}")]
    Invalid(String),
}

impl PortError {
    pub fn disposition(&self) -> Disposition {
        match self {
            PortError::Unavailable(_) | PortError::Contention(_) => Disposition::Retry,
            PortError::Corrupt(_) | PortError::Invalid(_) => Disposition::DeadLetter,
        }
    }
}
