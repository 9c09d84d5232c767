//! Resource names: everything Usher creates on AWS carries the `USHER_ENV` prefix, so
//! several environments (and test runs) share one account without touching each other.

use domain::queue::QueueAddr;

/// The tables, by what they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    /// Status documents, their committed events and the command behind them.
    Requests,
    /// Idempotency keys per caller.
    IdempotencyKeys,
    /// Movies and shows.
    Catalog,
    /// One item per seat of a show.
    Seats,
    Holds,
    Bookings,
    /// The event ids each downstream consumer has applied (notifications, analytics).
    HandledEvents,
    /// Notifications by recipient, newest first.
    Notifications,
    /// Analytics counters per show.
    ShowStats,
    /// Analytics bookings and revenue per UTC day.
    DailyStats,
    /// Analytics state per ticket.
    TicketStats,
    /// Support tickets: one item per ticket, its current state.
    Tickets,
    /// Each ticket's history entries (and the comments they record), append-only.
    TicketEntries,
    /// Users seen, and whether each is an agent.
    Users,
    /// Events and messages committed with a command, until the relay delivers them.
    Outbox,
}

impl Table {
    fn suffix(self) -> &'static str {
        match self {
            Table::Requests => "requests",
            Table::IdempotencyKeys => "idempotency-keys",
            Table::Catalog => "catalog",
            Table::Seats => "seats",
            Table::Holds => "holds",
            Table::Bookings => "bookings",
            Table::HandledEvents => "handled-events",
            Table::Notifications => "notifications",
            Table::ShowStats => "show-stats",
            Table::DailyStats => "daily-stats",
            Table::TicketStats => "ticket-stats",
            Table::Tickets => "tickets",
            Table::TicketEntries => "ticket-entries",
            Table::Users => "users",
            Table::Outbox => "outbox",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Names {
    env: String,
}

impl Names {
    pub(crate) fn new(env: &str) -> Self {
        Self { env: env.to_owned() }
    }

    pub(crate) fn env(&self) -> &str {
        &self.env
    }

    /// `<env>-booking-commands`, `<env>-booking-commands-dlq`, ….
    pub(crate) fn queue(&self, addr: QueueAddr) -> String {
        format!("{}-{}", self.env, addr.name())
    }

    /// `<env>-events`.
    pub(crate) fn topic(&self) -> String {
        format!("{}-events", self.env)
    }

    /// `<env>-requests`, `<env>-seats`, ….
    pub(crate) fn table(&self, table: Table) -> String {
        format!("{}-{}", self.env, table.suffix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::queue::Queue;

    #[test]
    fn names_follow_the_contract() {
        let names = Names::new("dev");
        assert_eq!(names.queue(Queue::BookingCommands.source()), "dev-booking-commands");
        assert_eq!(names.queue(Queue::BookingCommands.dlq()), "dev-booking-commands-dlq");
        assert_eq!(names.topic(), "dev-events");
        assert_eq!(names.table(Table::Seats), "dev-seats");
    }
}
