//! What every command pool shares: reading a command message, marking a batch
//! `processing`, and marking the request of a dead-lettered command.

use crate::consumer::HandlerError;
use domain::PortError;
use domain::clock::Timestamp;
use domain::command::CommandEnvelope;
use domain::ids::RequestId;
use domain::queue::{ATTR_REQUEST_ID, ReceivedMessage};
use domain::request::CommandContext;
use infra::Backend;

/// The command in a message and the context it is applied in at `now`. A body that does
/// not parse is poison: it goes to the DLQ on its first receive.
pub fn parse(message: &ReceivedMessage, now: Timestamp) -> Result<(CommandEnvelope, CommandContext), HandlerError> {
    let envelope =
        CommandEnvelope::parse(&message.body).map_err(|e| HandlerError::Poison(format!("unparseable command: {e}")))?;
    let ctx = CommandContext { request_id: envelope.request_id.clone(), actor: envelope.actor.clone(), now };
    Ok((envelope, ctx))
}

/// Marks the requests of a received batch `processing`, in one write. A failure is only
/// logged: the status moves on to terminal anyway.
pub async fn mark_processing(backend: &Backend, messages: &[ReceivedMessage]) {
    let ids: Vec<RequestId> = messages
        .iter()
        .filter_map(|m| CommandEnvelope::parse(&m.body).ok())
        .filter(|e| e.command.has_status_doc())
        .map(|e| e.request_id)
        .collect();
    if ids.is_empty() {
        return;
    }
    if let Err(e) = backend.requests.mark_processing(&ids, backend.clock.now()).await {
        tracing::warn!(error = %e, "cannot mark the batch processing");
    }
}

/// Marks the request of a dead-lettered command message `dead_lettered`, finding it from
/// the body or, for a body that does not parse, from the message's attributes.
pub async fn dead_lettered(
    backend: &Backend,
    message: &ReceivedMessage,
    pool: &str,
    reason: &str,
) -> Result<(), PortError> {
    let (request_id, kind) = match CommandEnvelope::parse(&message.body) {
        Ok(e) if e.command.has_status_doc() => (e.request_id, e.command.type_name().to_owned()),
        Ok(_) => return Ok(()),
        Err(_) => match message.attributes.get(ATTR_REQUEST_ID) {
            Some(id) => (RequestId::from(id.as_str()), message.attributes.get("type").cloned().unwrap_or_default()),
            None => return Ok(()),
        },
    };
    mark_dead_lettered(backend, &request_id, &kind, pool, reason).await.map(|_| ())
}

/// Marks a request `dead_lettered` (unless it already ended), its event in the outbox.
/// Returns whether this call marked it.
pub async fn mark_dead_lettered(
    backend: &Backend,
    request_id: &RequestId,
    kind: &str,
    pool: &str,
    reason: &str,
) -> Result<bool, PortError> {
    let Some(record) = backend.requests.get(request_id).await? else { return Ok(false) };
    if record.doc.status.is_terminal() {
        return Ok(false);
    }
    let now = backend.clock.now();
    let kind = if kind.is_empty() { record.doc.kind.as_str() } else { kind };
    let decided = domain::request::dead_lettered(request_id, kind, pool, reason, now);
    Ok(backend.requests.complete(request_id, decided.into(), now).await?.first)
}
