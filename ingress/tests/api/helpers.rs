//! What the API tests share beyond `testkit`: a hold body, the problem+json checks, and a
//! queue that cannot be reached.

use async_trait::async_trait;
use domain::PortError;
use domain::ports::MessageQueue;
use domain::queue::{OutgoingMessage, QueueAddr, Receipt, ReceivedMessage};
use reqwest::Response;
use serde_json::Value;
use std::time::Duration;
pub use testkit::TestApp;

pub const HOLD_BODY: &str = r#"{"show_id":"show_1","seat_ids":["A1","A2"]}"#;

/// Reads a problem document and checks its shape; returns it.
pub async fn problem(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status, "status of a `{code}` problem");
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: Value = response.json().await.expect("a JSON problem");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    assert_eq!(body["type"], format!("https://usher.dev/problems/{code}"));
    assert!(body["title"].is_string() && body["detail"].is_string(), "{body}");
    body
}

/// A queue that cannot be reached: every call fails as a down backend would.
pub struct UnreachableQueue;

fn down() -> PortError {
    PortError::Unavailable("connection refused".into())
}

#[async_trait]
impl MessageQueue for UnreachableQueue {
    fn max_delay(&self) -> Duration {
        Duration::from_secs(900)
    }
    fn max_batch(&self) -> usize {
        10
    }
    async fn send_batch(&self, _: QueueAddr, _: Vec<OutgoingMessage>) -> Result<(), PortError> {
        Err(down())
    }
    async fn receive(
        &self,
        _: QueueAddr,
        _: usize,
        _: Duration,
        _: Duration,
    ) -> Result<Vec<ReceivedMessage>, PortError> {
        Err(down())
    }
    async fn delete_batch(&self, _: QueueAddr, _: Vec<Receipt>) -> Result<(), PortError> {
        Err(down())
    }
    async fn change_visibility(&self, _: QueueAddr, _: &Receipt, _: Duration) -> Result<(), PortError> {
        Err(down())
    }
    async fn depth(&self, _: QueueAddr) -> Result<u64, PortError> {
        Err(down())
    }
    async fn stats(&self, _: QueueAddr) -> Result<domain::queue::QueueStats, PortError> {
        Err(down())
    }
    async fn purge(&self, _: QueueAddr) -> Result<(), PortError> {
        Err(down())
    }
    async fn ping(&self) -> Result<(), PortError> {
        Err(down())
    }
}
