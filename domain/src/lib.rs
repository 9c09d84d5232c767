//! Usher's model and rules, and the ports the adapters implement.
//!
//! # Layout
//! - [`ids`], [`clock`]: opaque ids and the one timestamp format.
//! - [`catalog`], [`booking`]: movies, shows, seat layouts, holds, bookings and their rules.
//! - [`ticket`]: support tickets, their state machine, audit trail and role rules.
//! - [`request`], [`idempotency`]: the status document and the idempotency key + fingerprint.
//! - [`actor`]: who acts (a user and their role).
//! - [`command`], [`event`], [`queue`]: what flows through the queues and the topic.
//! - [`payment`]: the mock payment provider (a card processor's sandbox).
//! - [`notification`], [`report`]: what the downstream pools derive from events.
//! - [`schema`]: the event catalog (JSON Schemas, AsyncAPI) generated from the types.
//! - [`error`]: business outcomes versus infrastructure failures.
//! - [`integral`]: whole numbers sent as `466.0` read as integers, as JSON Schema has it.
//! - [`outbox`]: what a command commits for delivery after it, and [`outbox::Decision`].
//! - [`ports`]: the traits `infra` implements and `ingress`/`workers` use.
//! - [`to_json_sized`]: JSON into a buffer sized for what is written.
//!
//! Nothing here does I/O: the crate has no runtime, no SDK and no SQL.

pub mod actor;
pub mod booking;
pub mod catalog;
pub mod clock;
pub mod command;
pub mod error;
pub mod event;
pub mod idempotency;
pub mod ids;
pub mod integral;
pub mod notification;
pub mod outbox;
pub mod payment;
pub mod ports;
pub mod queue;
pub mod report;
pub mod request;
pub mod schema;
pub mod ticket;

pub use error::{BusinessError, ErrorCode, PortError};

/// `value` as JSON, written into a buffer of `capacity` bytes from the start. serde_json's
/// `to_string` starts at 128 bytes and doubles, so an event of 700 bytes was copied three
/// times on its way; the messages and events of every hold are written this way
/// (scripts/bench-ir.sh counts the difference).
pub fn to_json_sized<T: serde::Serialize + ?Sized>(value: &T, capacity: usize) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut out, value)?;
    String::from_utf8(out).map_err(serde::ser::Error::custom)
}
