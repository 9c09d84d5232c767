//! What Usher's test targets share, in one place: settings on a fresh data dir or under
//! a fresh resource prefix ([`settings`]), the app on port 0 ([`TestApp`]), a typed HTTP
//! client ([`Client`]), and `usher dev` as a child process ([`Dev`]).
//!
//! A dev-dependency only. It depends on `ingress` but not on the root `usher` package, so
//! ingress's own tests can use it; the root package's tests start the whole app and hand
//! it to [`TestApp::start`].

pub mod app;
pub mod client;
pub mod dev;
pub mod settings;

pub use app::TestApp;
pub use client::Client;
pub use dev::Dev;
pub use settings::{Embedded, prefix};
