//! The AWS backend: SQS queues, the SNS `events` topic and DynamoDB tables.
//!
//! # Layout
//! - [`config`]: the SDK configuration, loaded once from the standard environment.
//! - [`names`]: resource names under the `USHER_ENV` prefix.
//! - [`error`]: SDK errors to [`PortError`] kinds, logged with their full context.
//! - [`sqs`], [`sns`], [`dynamo`]: the adapters, each with its part of `usher setup`.
//!
//! infra/AWS.md describes the data model and the queue and topic layout.

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
        queues: Arc::new(sqs::SqsQueues::new(config::sqs(&sdk), names.clone())),
        bus: Arc::new(sns::SnsBus::new(config::sns(&sdk), names)),
        requests: store.clone(),
        catalog: store.clone(),
        bookings: store,
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
