//! Admitting a command under an `Idempotency-Key` (docs/contract.md §2): claim the key
//! and create the status document in one store write, queue the command, answer 202; a
//! retry of the same request gets the first answer again, byte for byte. A caller over
//! its rate limit ([`crate::limits`]) is refused before anything is stored.
//!
//! Where the store holds the queues too (embedded), the claim, the document and the
//! message are one transaction ([`Admitted::Queued`]); otherwise (DynamoDB beside SQS) the
//! claim is followed by the send and then `mark_queued`, and the sweep covers a crash
//! between them.

use crate::AppState;
use crate::auth::Caller;
use crate::problem::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::PortError;
use domain::command::{Command, CommandEnvelope};
use domain::idempotency::{Fingerprint, IdempotencyKey};
use domain::ids::RequestId;
use domain::ports::{Abandoned, Admission, Admitted, StoredResponse};
use domain::request::{ADMISSION_GRACE, StatusDoc};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The checked `Idempotency-Key` header, documented once for every command route.
#[derive(Debug, Clone, utoipa::IntoParams)]
#[into_params(names("Idempotency-Key"), parameter_in = Header)]
pub struct IdempotencyKeyHeader(
    /// Required on every command: 1 to 255 visible ASCII characters, scoped to the caller
    /// and kept 24 h. The same key with the same method, path and JSON body (compared
    /// canonically) answers the first response again, marked `Idempotent-Replayed: true`,
    /// and admits nothing twice.
    #[param(value_type = String, min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$")]
    pub IdempotencyKey,
);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKeyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let mut values = parts.headers.get_all(&IDEMPOTENCY_KEY).iter();
        let first = values.next().ok_or(ApiError::IdempotencyKeyMissing)?;
        if values.next().is_some() {
            return Err(ApiError::IdempotencyKeyInvalid);
        }
        let raw = first.to_str().map_err(|_| ApiError::IdempotencyKeyInvalid)?;
        IdempotencyKey::parse(raw).map(Self).map_err(|_| ApiError::IdempotencyKeyInvalid)
    }
}

/// A validated command and what its fingerprint is made of.
pub struct CommandRequest {
    pub caller: Caller,
    pub key: IdempotencyKey,
    /// The request path as sent, e.g. `/v1/holds/hold_1/release`.
    pub path: String,
    /// The body as parsed; hashed canonically.
    pub body: Value,
    pub command: Command,
}

/// The 202 body: the command is durably recorded and queued. Serialized once and stored,
/// so a replay answers it byte for byte (field order is the wire order).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Accepted)]
pub(crate) struct AcceptedBody<'a> {
    #[schema(value_type = RequestId)]
    request_id: &'a RequestId,
    /// Always `accepted`: the command is durably recorded and queued, not yet done.
    #[schema(value_type = String, pattern = "^accepted$", example = "accepted")]
    status: &'static str,
    /// Where the status document is read; also the `Location` header.
    #[schema(example = "/v1/requests/req_0193a1b2c3d47e8f9a0b1c2d3e4f5a6b")]
    status_url: String,
}

pub fn status_url(request_id: &RequestId) -> String {
    format!("/v1/requests/{request_id}")
}

/// Admits `request` once per `(caller, key)` and answers as the contract says.
pub async fn admit(state: &AppState, request: CommandRequest) -> Result<Response, ApiError> {
    let CommandRequest { caller, key, path, body, command } = request;
    // Before anything is stored: a refused command leaves its key free.
    state.rate_limit.check(&caller.sub)?;
    // A retry racing its own first try in this process waits for nothing: where the claim
    // and the queueing are one transaction (embedded) the store would only make it wait
    // for the first to commit, and answer the replay.
    let Some(_admitting) = state.admitting.enter(caller.sub.as_str(), &key) else {
        return Err(ApiError::IdempotencyRequestInProgress);
    };
    let now = state.backend.clock.now();
    let request_id = RequestId::generate();
    let doc = StatusDoc::accepted(request_id.clone(), command.type_name(), now);
    let envelope = CommandEnvelope {
        request_id: request_id.clone(),
        actor: caller.actor(),
        issued_at: now,
        traceparent: infra::logging::current_traceparent(),
        command,
    };
    let response_body = serde_json::to_string(&AcceptedBody {
        request_id: &request_id,
        status: "accepted",
        status_url: status_url(&request_id),
    })
    .map_err(|e| PortError::Invalid(format!("the 202 body does not serialize: {e}")))?;
    let admission = Admission {
        owner: caller.sub.clone(),
        key: key.clone(),
        fingerprint: Fingerprint::of("POST", &path, &body),
        doc,
        command: envelope.clone(),
        response: StoredResponse { status: StatusCode::ACCEPTED.as_u16(), body: response_body.clone() },
        key_expires_at: now + state.idempotency_ttl,
        queue_with_claim: true,
    };

    let admitted = state.backend.requests.admit(admission).await?;
    if matches!(admitted, Admitted::Queued | Admitted::Claimed) {
        // The request's span (and so its log lines) names the request it admitted.
        tracing::Span::current().record("request_id", tracing::field::display(&request_id));
    }
    match admitted {
        Admitted::Queued => {
            tracing::info!(request_id = %request_id, kind = envelope.command.type_name(), "command admitted");
            Ok(accepted(StatusCode::ACCEPTED, response_body, &request_id, false))
        }
        Admitted::Claimed => {
            if let Err(e) = enqueue(state, &envelope).await {
                // Free the key only with a document that provably never reached a queue;
                // if the sweep (or a retry) may have queued it meanwhile, it is accepted.
                let claimed_after = state.backend.clock.now() - ADMISSION_GRACE;
                match state.backend.requests.abandon(&caller.sub, &key, &request_id, claimed_after).await {
                    Ok(Abandoned::Freed) => return Err(e.into()),
                    Ok(Abandoned::Kept(stored)) => {
                        tracing::info!(request_id = %request_id, "send failed but the command is on its way");
                        return Ok(accepted(StatusCode::ACCEPTED, stored.body, &request_id, false));
                    }
                    Err(abandon_error) => {
                        // The claim stays: the sweep queues it, and a retry is answered.
                        tracing::warn!(
                            request_id = %request_id, error = %abandon_error,
                            "could not abandon a claim whose command was not queued"
                        );
                        return Err(e.into());
                    }
                }
            }
            tracing::info!(request_id = %request_id, kind = envelope.command.type_name(), "command admitted");
            Ok(accepted(StatusCode::ACCEPTED, response_body, &request_id, false))
        }
        Admitted::Replay(stored) => replay(stored),
        Admitted::Unqueued { response, command, claimed_at } => {
            // Within the grace its admitter may still be queueing it; past it, the admitter
            // is presumed dead (the sweep uses the same grace).
            if now - claimed_at < ADMISSION_GRACE {
                return Err(ApiError::IdempotencyRequestInProgress);
            }
            // Its admitter died between claim and queue: finish its job. Workers are
            // idempotent on request id, so a duplicate message here changes nothing.
            enqueue(state, &command).await?;
            tracing::info!(request_id = %command.request_id, "re-queued a command whose admitter stopped");
            replay(response)
        }
        Admitted::KeyReused => Err(ApiError::IdempotencyKeyReused),
    }
}

/// The `(caller, key)` pairs this process is admitting right now: a second request with
/// one of them is answered 409 `idempotency_request_in_progress`, as the store answers
/// one whose first try, in another process, has claimed the key but not queued it.
#[derive(Debug, Default)]
pub struct Admitting(Mutex<HashSet<(String, String)>>);

impl Admitting {
    /// Marks `(owner, key)` as being admitted until the answer is dropped; `None` if it
    /// already is.
    pub fn enter(&self, owner: &str, key: &IdempotencyKey) -> Option<Entered<'_>> {
        let entry = (owner.to_owned(), key.as_str().to_owned());
        let fresh = self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(entry.clone());
        // Only a fresh entry gets a guard: dropping one removes its entry.
        fresh.then(|| Entered { admitting: self, entry })
    }
}

/// One admission under way; ends when dropped, however the request ends.
#[derive(Debug)]
pub struct Entered<'a> {
    admitting: &'a Admitting,
    entry: (String, String),
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.admitting.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.entry);
    }
}

/// Sends the command and records that it is queued. Only the send can fail the request:
/// a command on its queue is accepted even if the bookkeeping after it fails, because
/// the periodic sweep of unqueued requests re-sends it and workers dedupe by request id.
async fn enqueue(state: &AppState, envelope: &CommandEnvelope) -> Result<(), PortError> {
    let queue = envelope.command.queue().source();
    state.backend.queues.send_batch(queue, vec![envelope.message()]).await?;
    if let Err(e) = state.backend.requests.mark_queued(std::slice::from_ref(&envelope.request_id)).await {
        tracing::warn!(request_id = %envelope.request_id, error = %e, "command queued but not marked queued");
    }
    Ok(())
}

/// The stored first answer, verbatim, marked as a replay.
fn replay(stored: StoredResponse) -> Result<Response, ApiError> {
    let status = StatusCode::from_u16(stored.status)
        .map_err(|_| PortError::Corrupt(format!("stored response status {}", stored.status)))?;
    let request_id = serde_json::from_str::<Value>(&stored.body)
        .ok()
        .and_then(|v| v.get("request_id").and_then(Value::as_str).map(RequestId::from))
        .ok_or_else(|| PortError::Corrupt("stored response has no request_id".into()))?;
    Ok(accepted(status, stored.body, &request_id, true))
}

fn accepted(status: StatusCode, body: String, request_id: &RequestId, replayed: bool) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(location) = HeaderValue::from_str(&status_url(request_id)) {
        headers.insert(header::LOCATION, location);
    }
    if replayed {
        headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_admitted_once_at_a_time_per_caller() {
        let admitting = Admitting::default();
        let (k1, k2) = (IdempotencyKey::parse("k1").unwrap(), IdempotencyKey::parse("k2").unwrap());
        let first = admitting.enter("alice", &k1).expect("a fresh key");
        assert!(admitting.enter("alice", &k1).is_none(), "under way");
        // The refused second try leaves the first one's mark in place.
        assert!(admitting.enter("alice", &k1).is_none(), "still under way");
        assert!(admitting.enter("bob", &k1).is_some() && admitting.enter("alice", &k2).is_some());
        drop(first);
        assert!(admitting.enter("alice", &k1).is_some(), "over");
    }
}
