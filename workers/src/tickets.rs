//! The tickets pool: creates tickets and applies assignments, transitions and comments,
//! each in one store transaction with its history, status document and events.

use crate::commands;
use crate::consumer::{Effects, Handler, HandlerError};
use async_trait::async_trait;
use domain::PortError;
use domain::command::Command;
use domain::queue::ReceivedMessage;
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
        commands::mark_processing(&self.backend, messages).await;
    }

    async fn handle(&self, message: &ReceivedMessage) -> Result<Effects, HandlerError> {
        let (envelope, ctx) = commands::parse(message, self.backend.clock.now())?;
        let tickets = &self.backend.tickets;
        let completion = match &envelope.command {
            Command::CreateTicket { subject, description, priority } => {
                // A redelivery finds the request terminal and ignores this fresh ticket.
                tickets.create_ticket(&ctx, &Ticket::new(&ctx, subject, description, *priority)).await?
            }
            command => match command.ticket_change() {
                Some((ticket_id, change)) => tickets.change_ticket(&ctx, ticket_id, &change).await?,
                None => {
                    return Err(HandlerError::Poison(format!("{} is not a ticket command", command.type_name())));
                }
            },
        };
        tracing::debug!(request_id = %ctx.request_id, status = completion.doc.status.as_str(), first = completion.first, "ticket command applied");
        Ok(Effects::default())
    }

    async fn dead_lettered(&self, message: &ReceivedMessage, reason: &str) -> Result<(), PortError> {
        commands::dead_lettered(&self.backend, message, POOL, reason).await
    }
}
