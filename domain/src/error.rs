//! Errors say what the caller should do with them: a business outcome is recorded in the
//! status document, an infrastructure failure is retried, corrupt input is dead-lettered.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A business outcome that ends a request as `failed`: `{code, detail, ...}` in the status
/// document. `extra` carries code-specific fields, such as the conflicting `seat_ids`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct BusinessError {
    pub code: String,
    pub detail: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl BusinessError {
    pub fn new(code: &str, detail: impl Into<String>) -> Self {
        Self { code: code.to_owned(), detail: detail.into(), extra: Map::new() }
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
