//! The API end to end: the real app on port 0 over the embedded backend in a fresh temp
//! dir, driven over HTTP. No worker runs, so admitted requests stay `accepted` unless a
//! test applies the command through the store as a worker would.

mod catalog;
mod errors;
mod helpers;
mod idempotency;
mod limits;
mod openapi;
mod reads;
