//! The tickets pool: creates tickets and applies assignments, transitions and comments,
//! each in one store transaction with its history, status document and events.

use crate::commands::CommandPool;
use crate::consumer::{Effects, HandlerError};
use async_trait::async_trait;
use domain::command::{Command, CommandEnvelope};
use domain::ports::Completion;
use domain::request::CommandContext;
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
impl CommandPool for TicketPool {
    const POOL: &'static str = POOL;

    fn backend(&self) -> &Backend {
        &self.backend
    }

    async fn apply(
        &self,
        envelope: &CommandEnvelope,
        ctx: &CommandContext,
    ) -> Result<(Option<Completion>, Effects), HandlerError> {
        let tickets = &self.backend.tickets;
        let completion = match &envelope.command {
            Command::CreateTicket { subject, description, priority } => {
                // A redelivery finds the request terminal and ignores this fresh ticket.
                tickets.create_ticket(ctx, &Ticket::new(ctx, subject, description, *priority)).await?
            }
            command => match command.ticket_change() {
                Some((ticket_id, change)) => tickets.change_ticket(ctx, ticket_id, &change).await?,
                None => {
                    return Err(HandlerError::Poison(format!("{} is not a ticket command", command.type_name())));
                }
            },
        };
        Ok((Some(completion), Effects::default()))
    }
}
