//! The tickets pool: creates tickets and applies assignments, transitions and comments,
//! each in one store transaction with its history, status document and events.

use crate::commands::CommandPool;
use crate::consumer::{Effects, HandlerError};
use async_trait::async_trait;
use domain::command::{Command, CommandEnvelope};
use domain::ports::Completion;
use domain::queue::Queue;
use domain::request::{CommandContext, RequestStatus};
use domain::ticket::{POOL, Ticket, TicketStatus};
use infra::Backend;

pub struct TicketPool {
    backend: Backend,
}

impl TicketPool {
    pub fn new(backend: Backend) -> Self {
        // Each event's series exists from the start (a zero, not a gap).
        for event in ["created", "solved"] {
            metrics::counter!("usher_tickets_total", "event" => event).increment(0);
        }
        Self { backend }
    }
}

#[async_trait]
impl CommandPool for TicketPool {
    const POOL: &'static str = POOL;
    const QUEUE: Queue = Queue::TicketCommands;

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
        count_outcome(&envelope.command, &completion);
        Ok((Some(completion), Effects::default()))
    }
}

/// `usher_tickets_total{event}`: once per committed creation and per committed move to
/// `solved` (a redelivery finds the request terminal, `first` false, and counts nothing).
fn count_outcome(command: &Command, completion: &Completion) {
    if !completion.first || completion.doc.status != RequestStatus::Succeeded {
        return;
    }
    let event = match command {
        Command::CreateTicket { .. } => "created",
        Command::TransitionTicket { to: TicketStatus::Solved, .. } => "solved",
        _ => return,
    };
    metrics::counter!("usher_tickets_total", "event" => event).increment(1);
}
