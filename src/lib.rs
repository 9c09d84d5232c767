//! The `usher` binary's library half: wiring, so that tests can start the real thing
//! in-process on port 0.
//!
//! # Layout
//! - [`alloc`]: the process's allocator, jemalloc, and its options.
//! - [`app`]: builds the requested components on one backend and runs them until stopped.
//! - [`config`]: the configuration, composed of each crate's section.
//! - [`secret`]: where the JWT secret comes from (`USHER_JWT_SECRET`, or the data dir).
//! - [`demo`]: the demo catalog `usher dev` seeds into an empty store.

pub mod alloc;
pub mod app;
pub mod config;
pub mod demo;
pub mod secret;

pub use app::{App, Components, Pool};
pub use config::Config;
