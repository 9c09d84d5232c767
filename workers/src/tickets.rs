//! The tickets pool: creates tickets and applies assignments, transitions and comments,
//! each in one store transaction with its history, status document and events.

use crate::booking::dead_lettered_command;
use crate::consumer::{Effects, Handler, HandlerError};
use async_trait::async_trait;
use domain::PortError;
use domain::clock;
use domain::command::{Command, CommandEnvelope};
use domain::event::CloudEvent;
use domain::ids::RequestId;
use domain::ports::{CommandContext, ReceivedMessage};
use domain::ticket::{POOL, Ticket};
use infra::Backend;

pub struct TicketPool {
    backend: Backend,
}

impl TicketPool {
    pub fn new(backend: Backend) -> Self {
        Self { backend }
    }
}

#[async_trait]
impl Handler for TicketPool {
    fn pool(&self) -> &'static str {
        POOL
    }

    async fn before_batch(&self, messages: &[ReceivedMessage]) {
        let ids: Vec<RequestId> =
            messages.iter().filter_map(|m| CommandEnvelope::parse(&m.body).ok()).map(|e| e.request_id).collect();
        if ids.is_empty() {
            return;
        }
        if let Err(e) = self.backend.requests.mark_processing(&ids, clock::now()).await {
            tracing::warn!(error = %e, "cannot mark the batch processing");
        }
    }

    async fn handle(&self, message: &ReceivedMessage) -> Result<Effects, HandlerError> {
        let envelope = CommandEnvelope::parse(&message.body)
            .map_err(|e| HandlerError::Poison(format!("unparseable command: {e}")))?;
        let ctx = CommandContext {
            request_id: envelope.request_id.clone(),
            actor: envelope.actor.sub.clone(),
            now: clock::now(),
        };
        let tickets = &self.backend.tickets;
        let completion = match &envelope.command {
            Command::CreateTicket { subject, description, priority } => {
                // A redelivery finds the request terminal and ignores this fresh ticket.
                tickets.create_ticket(&ctx, &Ticket::new(&ctx, subject, description, *priority)).await?
            }
            command => match command.ticket_change() {
                Some((ticket_id, change)) => tickets.change_ticket(&ctx, &envelope.actor, ticket_id, &change).await?,
                None => {
                    return Err(HandlerError::Poison(format!("{} is not a ticket command", command.type_name())));
                }
            },
        };
        tracing::debug!(request_id = %ctx.request_id, status = completion.doc.status.as_str(), first = completion.first, "ticket command applied");
        Ok(Effects { events: completion.events, follow_ups: Vec::new() })
    }

    async fn dead_lettered(&self, message: &ReceivedMessage, reason: &str) -> Result<Vec<CloudEvent>, PortError> {
        dead_lettered_command(&self.backend, message, POOL, reason).await
    }
}
