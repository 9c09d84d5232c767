//! The AWS backend: SQS queues, the SNS `events` topic and DynamoDB tables.
//!
//! # Layout
//! - [`config`]: the SDK configuration, loaded once from the standard environment.
//! - [`names`]: resource names under the `USHER_ENV` prefix.
//! - [`error`]: SDK errors to [`PortError`] kinds, logged with their full context.
//! - [`sqs`], [`sns`], [`dynamo`]: the adapters, each with its part of `usher setup`;
//!   [`batch`]: the per-entry retries of SQS's and SNS's batch calls.
//!
//! infra/AWS.md describes the data model and the queue and topic layout.

mod batch;
mod config;
mod dynamo;
mod error;
mod names;
mod sns;
mod sqs;

use crate::{Backend, Settings};
use domain::PortError;
use names::Names;
use std::sync::Arc;

/// Connects to existing resources (see [`setup`]); nothing is created here.
pub async fn connect(settings: &Settings) -> Result<Backend, PortError> {
    let sdk = config::load().await;
    let names = Names::new(&settings.env);
    let store = Arc::new(dynamo::DynamoStore::new(config::dynamodb(&sdk), &names));
    Ok(Backend {
        clock: Arc::new(domain::clock::SystemClock),
        queues: Arc::new(sqs::SqsQueues::new(config::sqs(&sdk), names.clone())),
        bus: Arc::new(sns::SnsBus::new(config::sns(&sdk), names)),
        outbox: store.clone(),
        requests: store.clone(),
        catalog: store.clone(),
        bookings: store.clone(),
        notifications: store.clone(),
        analytics: store.clone(),
        tickets: store.clone(),
        users: store,
    })
}

/// Creates, idempotently, every queue with its DLQ and redrive policy, the topic, the
/// subscriptions with their filter policies and queue policies, and the tables with
/// their indexes and TTL. Running it again changes nothing.
pub async fn setup(settings: &Settings) -> Result<(), PortError> {
    let sdk = config::load().await;
    let names = Names::new(&settings.env);
    let sqs = config::sqs(&sdk);
    let queues = sqs::setup(&sqs, &names, settings.max_receives).await?;
    sns::setup(&config::sns(&sdk), &sqs, &names, &queues).await?;
    dynamo::tables::setup(&config::dynamodb(&sdk), &names).await?;
    tracing::info!(env = %names.env(), "aws resources ready");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::{BehaviorVersion, Region};
    use domain::clock;
    use domain::event::{CloudEvent, EventType};
    use domain::ids::RequestId;
    use domain::ports::{EventBus, MessageQueue, RequestStore};
    use domain::queue::Queue;
    use std::time::Duration;

    /// Nobody listens on the endpoint: every port reports the backend unavailable (what
    /// the API turns into 503 and the workers into a retry), quickly and without panic.
    #[tokio::test]
    async fn an_unreachable_endpoint_is_unavailable() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "test"))
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
            .load()
            .await;
        let names = Names::new("unreachable");
        let unavailable = |r: Result<(), PortError>| matches!(r, Err(PortError::Unavailable(_)));

        let queues = sqs::SqsQueues::new(config::sqs(&sdk), names.clone());
        assert!(unavailable(queues.ping().await));
        let visibility = Duration::from_secs(30);
        let received = queues.receive(Queue::BookingCommands.source(), 10, Duration::ZERO, visibility).await;
        assert!(unavailable(received.map(|_| ())));

        let bus = sns::SnsBus::new(config::sns(&sdk), names.clone());
        let event = CloudEvent::new(EventType::HoldPlaced, "booking", "h", "r", serde_json::json!({}), clock::now());
        assert!(unavailable(bus.publish(&[event]).await));

        let store = dynamo::DynamoStore::new(config::dynamodb(&sdk), &names);
        assert!(unavailable(RequestStore::ping(&store).await));
        assert!(unavailable(store.get(&RequestId::from("req_1")).await.map(|_| ())));
    }
}
