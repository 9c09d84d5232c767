//! What every command pool shares: reading a command message, marking a batch
//! `processing`, marking the request of a dead-lettered command, and the [`Handler`] that
//! does all of that around a pool's own [`CommandPool::apply`].

use crate::consumer::{Effects, Handler, HandlerError};
use async_trait::async_trait;
use domain::PortError;
use domain::clock::Timestamp;
use domain::command::{CommandEnvelope, type_has_status_doc};
use domain::ids::RequestId;
use domain::ports::Completion;
use domain::queue::{ATTR_REQUEST_ID, ATTR_TYPE, Queue, QueueAddr, ReceivedMessage};
use domain::request::{CommandContext, Delivery};
use infra::Backend;

/// The command in a message received from `queue`, and the context it is applied in at
/// `now`. A body that does not parse is poison: it goes to the DLQ on its first receive.
pub fn parse(
    message: &ReceivedMessage,
    queue: QueueAddr,
    now: Timestamp,
) -> Result<(CommandEnvelope, CommandContext), HandlerError> {
    let envelope =
        CommandEnvelope::parse(&message.body).map_err(|e| HandlerError::Poison(format!("unparseable command: {e}")))?;
    let ctx = CommandContext {
        request_id: envelope.request_id.clone(),
        actor: envelope.actor.clone(),
        now,
        // The span this message is handled in: the events it decides continue its trace.
        traceparent: infra::logging::current_traceparent(),
        delivery: Some(Delivery { queue, receipt: message.receipt.clone() }),
    };
    Ok((envelope, ctx))
}

/// Marks the requests of a received batch `processing`, in one write. A failure is only
/// logged: the status moves on to terminal anyway.
pub async fn mark_processing(backend: &Backend, messages: &[ReceivedMessage]) {
    let ids: Vec<RequestId> = messages.iter().filter_map(request_to_mark).collect();
    if ids.is_empty() {
        return;
    }
    if let Err(e) = backend.requests.mark_processing(&ids, backend.clock.now()).await {
        tracing::warn!(error = %e, "cannot mark the batch processing");
    }
}

/// The request a command message reports on, if its command has a status document: read
/// from the `type` and `request_id` attributes every command message carries, so that the
/// body is parsed once, by the handler; from the body when they are missing.
fn request_to_mark(message: &ReceivedMessage) -> Option<RequestId> {
    let attribute = |name| message.attributes.get(name).map(String::as_str);
    match (attribute(ATTR_TYPE).map(type_has_status_doc), attribute(ATTR_REQUEST_ID)) {
        (Some(Some(has_doc)), Some(id)) => has_doc.then(|| RequestId::from(id)),
        _ => CommandEnvelope::parse(&message.body).ok().filter(|e| e.command.has_status_doc()).map(|e| e.request_id),
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
            Some(id) => (RequestId::from(id.as_str()), message.attributes.get(ATTR_TYPE).cloned().unwrap_or_default()),
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
    let mut decided = domain::request::dead_lettered(request_id, kind, pool, reason, now);
    let traceparent = infra::logging::current_traceparent();
    for event in &mut decided.1 {
        event.traceparent.clone_from(&traceparent);
    }
    Ok(backend.requests.complete(request_id, decided.into(), now).await?.first)
}

/// A pool of commands (booking, tickets): all it adds to the consumer loop is how to apply
/// one command. Parsing, `processing`, dead letters and the log line are written once, in
/// the [`Handler`] every `CommandPool` gets.
#[async_trait]
pub trait CommandPool: Send + Sync + 'static {
    /// The pool's name: event sources (`/usher/<pool>`) and logs.
    const POOL: &'static str;
    /// The queue its commands come from.
    const QUEUE: Queue;

    fn backend(&self) -> &Backend;

    /// Applies one command in `ctx`; `Ok(None)` for a command with no status document
    /// (a hold's expiry), with whatever follow-ups it asks for.
    async fn apply(
        &self,
        envelope: &CommandEnvelope,
        ctx: &CommandContext,
    ) -> Result<(Option<Completion>, Effects), HandlerError>;
}

#[async_trait]
impl<P: CommandPool> Handler for P {
    fn pool(&self) -> &'static str {
        P::POOL
    }

    async fn before_batch(&self, messages: &[ReceivedMessage]) {
        mark_processing(self.backend(), messages).await;
    }

    async fn handle(&self, message: &ReceivedMessage) -> Result<Effects, HandlerError> {
        let (envelope, ctx) = parse(message, P::QUEUE.source(), self.backend().clock.now())?;
        let (completion, mut effects) = self.apply(&envelope, &ctx).await?;
        if let Some(done) = completion {
            effects.acknowledged |= done.acknowledged;
            tracing::debug!(
                pool = P::POOL, request_id = %ctx.request_id, status = done.doc.status.as_str(), first = done.first,
                "command applied"
            );
        }
        Ok(effects)
    }

    async fn dead_lettered(&self, message: &ReceivedMessage, reason: &str) -> Result<(), PortError> {
        dead_lettered(self.backend(), message, P::POOL, reason).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::actor::{Actor, Role};
    use domain::clock;
    use domain::command::Command;
    use domain::ids::UserId;
    use domain::queue::{Attributes, Receipt};

    fn received(body: String, attributes: Attributes) -> ReceivedMessage {
        ReceivedMessage {
            message_id: "m1".into(),
            receipt: Receipt("r1".into()),
            body,
            attributes,
            receive_count: 1,
            sent_at: clock::now(),
        }
    }

    fn sent(command: Command) -> ReceivedMessage {
        let envelope = CommandEnvelope {
            request_id: "req_1".into(),
            actor: Actor { sub: UserId::new("alice"), role: Role::Customer },
            issued_at: clock::now(),
            traceparent: None,
            command,
        };
        let message = envelope.message();
        received(message.body, message.attributes)
    }

    #[test]
    fn the_request_to_mark_comes_from_the_attributes_or_else_the_body() {
        let hold = sent(Command::PlaceHold { show_id: "show_1".into(), seat_ids: vec!["A1".into()] });
        assert_eq!(request_to_mark(&hold), Some(RequestId::from("req_1")));
        let unread = received("not parsed".into(), hold.attributes.clone());
        assert_eq!(request_to_mark(&unread), Some(RequestId::from("req_1")), "the attributes suffice");
        let bare = received(hold.body.clone(), Attributes::new());
        assert_eq!(request_to_mark(&bare), Some(RequestId::from("req_1")), "without them, the body");
        assert_eq!(request_to_mark(&received("{}".into(), Attributes::new())), None);

        let expiry = sent(Command::ExpireHold { hold_id: "hold_1".into(), expires_at: clock::now() });
        assert_eq!(request_to_mark(&expiry), None, "an expiry has no status document");
        assert_eq!(request_to_mark(&received(expiry.body.clone(), Attributes::new())), None);
    }
}
