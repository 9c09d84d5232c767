//! The status document: what a client polls after a 202.

use crate::actor::Actor;
use crate::clock::Timestamp;
use crate::error::{BusinessError, ErrorCode};
use crate::event::{CloudEvent, EventType};
use crate::ids::{RequestId, UserId};
use crate::queue::{QueueAddr, Receipt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Accepted,
    Processing,
    Succeeded,
    Failed,
    DeadLettered,
}

impl RequestStatus {
    /// Terminal until an operator replays the message.
    pub fn is_terminal(self) -> bool {
        matches!(self, RequestStatus::Succeeded | RequestStatus::Failed | RequestStatus::DeadLettered)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Accepted => "accepted",
            RequestStatus::Processing => "processing",
            RequestStatus::Succeeded => "succeeded",
            RequestStatus::Failed => "failed",
            RequestStatus::DeadLettered => "dead_lettered",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "accepted" => RequestStatus::Accepted,
            "processing" => RequestStatus::Processing,
            "succeeded" => RequestStatus::Succeeded,
            "failed" => RequestStatus::Failed,
            "dead_lettered" => RequestStatus::DeadLettered,
            _ => return None,
        })
    }
}

/// How long admitting one command may take. A claim older than this whose command is not
/// known to be queued is taken to be stranded by a dead admitter, and re-queued.
pub const ADMISSION_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// `{request_id, kind, status, result?, error?, created_at, updated_at}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusDoc {
    pub request_id: RequestId,
    /// The command type, e.g. `booking.hold.place`.
    pub kind: String,
    pub status: RequestStatus,
    /// On `succeeded`: what the command made, e.g. `{hold_id, show_id, seat_ids, expires_at}`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Object, nullable = false)]
    pub result: Option<Value>,
    /// On `failed` (a business outcome) and `dead_lettered`: `{code, detail, ...}`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(nullable = false)]
    pub error: Option<BusinessError>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl StatusDoc {
    pub fn accepted(request_id: RequestId, kind: &str, now: Timestamp) -> Self {
        Self {
            request_id,
            kind: kind.to_owned(),
            status: RequestStatus::Accepted,
            result: None,
            error: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// The document after `outcome`, as the worker commits it.
    pub fn completed(&self, outcome: &Outcome, now: Timestamp) -> Self {
        let (status, result, error) = match outcome {
            Outcome::Succeeded(v) => (RequestStatus::Succeeded, Some(v.clone()), None),
            Outcome::Failed(e) => (RequestStatus::Failed, None, Some(e.clone())),
            Outcome::DeadLettered(e) => (RequestStatus::DeadLettered, None, Some(e.clone())),
        };
        Self { status, result, error, updated_at: now, ..self.clone() }
    }
}

/// The context of one command being applied: which request, who asked, and the time the
/// worker decides it at.
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub request_id: RequestId,
    pub actor: Actor,
    pub now: Timestamp,
    /// The W3C trace context of the worker applying the command; the events it decides
    /// carry it (the CloudEvents `traceparent` extension).
    pub traceparent: Option<String>,
    /// The queue message the command came in. A store that keeps its queues in the same
    /// transactions (embedded) deletes it in the one that applies the command, so the
    /// message is gone exactly when its effect is durable. `None` outside a worker.
    pub delivery: Option<Delivery>,
}

/// A received message, as far as deleting it goes: its queue and its receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub queue: QueueAddr,
    pub receipt: Receipt,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Succeeded(Value),
    Failed(BusinessError),
    DeadLettered(BusinessError),
}

/// A status document with the caller it belongs to (never shown; used to authorise reads).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    pub owner: UserId,
    pub doc: StatusDoc,
}

/// `data` of `usher.request.dead_lettered`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadLetteredData {
    pub request_id: RequestId,
    /// The command type, e.g. `booking.confirm`.
    pub kind: String,
    pub failure_reason: String,
}

/// What a customer reads on a dead-lettered request. The reason itself (which may quote a
/// backend's error) stays with operators: on the DLQ message and in the event.
pub const DEAD_LETTERED_DETAIL: &str =
    "the request could not be processed after its retries; an operator can replay it";

/// The outcome and event of a request the system gave up on after its retries.
pub fn dead_lettered(
    request_id: &RequestId,
    kind: &str,
    pool: &str,
    reason: &str,
    now: Timestamp,
) -> (Outcome, Vec<CloudEvent>) {
    let error = BusinessError::new(ErrorCode::DeadLettered, DEAD_LETTERED_DETAIL);
    let data = serde_json::json!({ "request_id": request_id, "kind": kind, "failure_reason": reason });
    // A replay reopens the request, and it may be dead-lettered again: another event.
    let event =
        CloudEvent::new(EventType::RequestDeadLettered, pool, request_id.as_str(), request_id.as_str(), data, now)
            .occurrence(&crate::clock::to_millis(now).to_string());
    (Outcome::DeadLettered(error), vec![event])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_millis;

    #[test]
    fn each_dead_lettering_of_a_request_is_its_own_event() {
        let id = RequestId::from("req_1");
        let event = |at| dead_lettered(&id, "booking.confirm", "booking", "boom", from_millis(at)).1.remove(0);
        assert_eq!(event(5).id, event(5).id, "the same dead-lettering, decided again");
        assert_ne!(event(5).id, event(9).id, "dead-lettered again after a replay");
    }

    #[test]
    fn a_completed_document_keeps_its_identity() {
        let doc = StatusDoc::accepted("req_1".into(), "booking.hold.place", from_millis(1));
        let done = doc.completed(&Outcome::Failed(BusinessError::new(ErrorCode::HoldNotFound, "x")), from_millis(2));
        assert_eq!(done.status, RequestStatus::Failed);
        assert_eq!(done.created_at, from_millis(1));
        assert_eq!(done.updated_at, from_millis(2));
        assert!(done.status.is_terminal() && !RequestStatus::Processing.is_terminal());
        let json = serde_json::to_value(&done).unwrap();
        assert_eq!(json["error"]["code"], "hold_not_found");
        assert!(json.get("result").is_none());
    }
}
