//! Which handler and queue make up each pool, written once for every host of a pool:
//! `usher worker` / `usher dev` (a long-running consumer on ECS or a laptop) and
//! `usher-lambda` (one batch per invocation).

use crate::booking::BookingPool;
use crate::config::WorkerConfig;
use crate::consumer::{BatchReport, Consumer, ConsumerConfig};
use crate::downstream::{AnalyticsPool, NotificationsPool};
use crate::tickets::TicketPool;
use domain::queue::{Queue, ReceivedMessage};
use infra::Backend;
use tokio_util::sync::CancellationToken;

/// The worker pools, one per queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolKind {
    Booking,
    Tickets,
    Notifications,
    Analytics,
}

impl PoolKind {
    pub const ALL: [PoolKind; 4] = [PoolKind::Booking, PoolKind::Tickets, PoolKind::Notifications, PoolKind::Analytics];

    /// The name `usher worker --pool` and `USHER_POOL` take.
    pub fn name(self) -> &'static str {
        match self {
            PoolKind::Booking => "booking",
            PoolKind::Tickets => "tickets",
            PoolKind::Notifications => "notifications",
            PoolKind::Analytics => "analytics",
        }
    }

    pub fn parse(name: &str) -> Option<PoolKind> {
        Self::ALL.into_iter().find(|p| p.name() == name.trim())
    }

    /// The queue the pool consumes.
    pub fn queue(self) -> Queue {
        match self {
            PoolKind::Booking => Queue::BookingCommands,
            PoolKind::Tickets => Queue::TicketCommands,
            PoolKind::Notifications => Queue::Notifications,
            PoolKind::Analytics => Queue::Analytics,
        }
    }
}

/// One pool's consumer, whatever its handler.
pub enum PoolConsumer {
    Booking(Consumer<BookingPool>),
    Tickets(Consumer<TicketPool>),
    Notifications(Consumer<NotificationsPool>),
    Analytics(Consumer<AnalyticsPool>),
}

impl PoolConsumer {
    /// The pool's handler on `backend`, consuming its queue with `config` (whose `queue`
    /// is set to the pool's).
    pub fn build(pool: PoolKind, backend: Backend, workers: &WorkerConfig, config: ConsumerConfig) -> Self {
        let config = ConsumerConfig { queue: pool.queue(), ..config };
        match pool {
            PoolKind::Booking => {
                let handler = BookingPool::new(backend.clone(), workers.hold_ttl, workers.max_held_seats);
                PoolConsumer::Booking(Consumer::new(backend, handler, config))
            }
            PoolKind::Tickets => {
                PoolConsumer::Tickets(Consumer::new(backend.clone(), TicketPool::new(backend), config))
            }
            PoolKind::Notifications => {
                PoolConsumer::Notifications(Consumer::new(backend.clone(), NotificationsPool::new(backend), config))
            }
            PoolKind::Analytics => {
                PoolConsumer::Analytics(Consumer::new(backend.clone(), AnalyticsPool::new(backend), config))
            }
        }
    }

    /// See [`Consumer::process_batch`].
    pub async fn process_batch(&self, messages: Vec<ReceivedMessage>) -> BatchReport {
        match self {
            PoolConsumer::Booking(c) => c.process_batch(messages).await,
            PoolConsumer::Tickets(c) => c.process_batch(messages).await,
            PoolConsumer::Notifications(c) => c.process_batch(messages).await,
            PoolConsumer::Analytics(c) => c.process_batch(messages).await,
        }
    }

    /// See [`Consumer::run_until_stopped`].
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        match self {
            PoolConsumer::Booking(c) => c.run_until_stopped(shutdown).await,
            PoolConsumer::Tickets(c) => c.run_until_stopped(shutdown).await,
            PoolConsumer::Notifications(c) => c.run_until_stopped(shutdown).await,
            PoolConsumer::Analytics(c) => c.run_until_stopped(shutdown).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pool_has_its_own_queue_and_parses_back() {
        let queues: std::collections::HashSet<Queue> = PoolKind::ALL.iter().map(|p| p.queue()).collect();
        assert_eq!(queues.len(), Queue::ALL.len());
        for pool in PoolKind::ALL {
            assert_eq!(PoolKind::parse(pool.name()), Some(pool));
        }
        assert_eq!(PoolKind::parse("all"), None);
    }
}
