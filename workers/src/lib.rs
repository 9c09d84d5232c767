//! Usher's workers: the consumer loop (written once), a handler per pool, the sweeps and
//! the DLQ operations.
//!
//! # Layout
//! - [`config`]: the workers' section of the configuration (hold lifetime, backoff).
//! - [`consumer`]: batch receive, bounded concurrency, delete after commit, backoff with
//!   full jitter, dead-lettering; a [`consumer::Handler`] is all a pool adds.
//! - [`commands`]: what the command pools share (parsing, `processing`, dead letters).
//! - [`booking`]: the booking pool (holds, releases, confirmations, hold expiry).
//! - [`tickets`]: the tickets pool (create, assign, transition, comment).
//! - [`downstream`]: the notifications and analytics pools, fed by the topic.
//! - [`pools`]: which handler and queue make up each pool, for `usher worker` and
//!   `usher-lambda` alike.
//! - [`relay`]: delivers the outbox (events and messages committed with commands).
//! - [`sweep`]: re-queues admitted commands with no message behind them; marks requests
//!   whose messages the queue's redrive moved; forgets expired idempotency keys.
//! - [`dlq`]: list, peek, replay and purge dead-letter queues.
//! - [`status`]: the sampler that sets the queue gauges (from `infra::status`).

pub mod backoff;
pub mod booking;
pub mod commands;
pub mod config;
pub mod consumer;
pub mod dlq;
pub mod downstream;
pub mod pools;
pub mod relay;
pub mod status;
pub mod sweep;
pub mod tickets;
