//! `usher-lambda`: one worker pool (`USHER_POOL`) as an AWS Lambda function behind an SQS
//! event source mapping with `ReportBatchItemFailures`.
//!
//! The records of an SQS event become the [`ReceivedMessage`]s the ECS consumer loop
//! receives itself, and go through the same [`workers::consumer::Consumer::process_batch`]:
//! a poison message is dead-lettered with its reason by the worker and NOT reported; a
//! transient failure is reported in `batchItemFailures`, so SQS delivers it again.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use domain::clock;
use domain::queue::{Attributes, Receipt, ReceivedMessage};
use infra::{Backend, BackendKind, Settings};
use workers::config::WorkerConfig;
use workers::consumer::ConsumerConfig;
use workers::pools::{PoolConsumer, PoolKind};
use workers::relay::Relay;

/// What a cold start builds once and every invocation reuses: the AWS clients (inside the
/// backend) and the pool's consumer.
pub struct Function {
    pool: PoolKind,
    consumer: PoolConsumer,
    /// A Lambda runs nothing between invocations, so each one delivers the outbox entries
    /// its commands committed (and any left by others) before it returns.
    relay: Relay,
}

/// Why the function cannot start; printed on the cold start's log and the process exits.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("USHER_POOL: expected booking, tickets, notifications or analytics, got {0:?}")]
    Pool(String),
    #[error("USHER_BACKEND: usher-lambda runs on the aws backend only")]
    Embedded,
    #[error(transparent)]
    Config(#[from] infra::ConfigError),
    #[error("cannot connect to the backend: {0}")]
    Backend(#[from] domain::PortError),
}

impl Function {
    /// Reads the settings and `USHER_POOL` from `lookup` and connects the backend.
    pub async fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, InitError> {
        let pool_name = lookup("USHER_POOL").unwrap_or_default();
        let pool = PoolKind::parse(&pool_name).ok_or(InitError::Pool(pool_name))?;
        // The aws backend unless told otherwise; an embedded file on a Lambda's /tmp
        // would be a different store on every instance.
        let backend_set = lookup("USHER_BACKEND").is_some_and(|v| !v.trim().is_empty());
        let mut settings = Settings::from_lookup(&lookup)?;
        if !backend_set {
            settings.backend = BackendKind::Aws;
        }
        if settings.backend != BackendKind::Aws {
            return Err(InitError::Embedded);
        }
        let workers = WorkerConfig::from_lookup(&lookup)?;
        let backend = Backend::connect(&settings).await?;
        let config = ConsumerConfig::new(pool.queue(), settings.max_receives, &workers);
        let relay = Relay::new(backend.clone(), std::time::Duration::ZERO);
        Ok(Self { pool, consumer: PoolConsumer::build(pool, backend, &workers, config), relay })
    }

    pub fn pool(&self) -> PoolKind {
        self.pool
    }

    /// Handles one SQS event: the ids of the messages SQS should deliver again.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        let mut messages = Vec::with_capacity(event.records.len());
        for record in event.records {
            match received_message(record) {
                Ok(message) => messages.push(message),
                // Without a receipt handle the worker can neither delete nor dead-letter
                // it: let SQS deliver it again (its redrive policy is the backstop).
                Err(Unusable { message_id: Some(id), reason }) => {
                    tracing::warn!(message_id = %id, %reason, "unusable sqs record; reporting it");
                    response.add_failure(id);
                }
                Err(Unusable { message_id: None, reason }) => {
                    tracing::error!(%reason, "sqs record without a message id; it cannot be reported");
                }
            }
        }
        let report = self.consumer.process_batch(messages).await;
        tracing::info!(
            pool = self.pool.name(),
            done = report.done,
            retried = report.retried.len(),
            dead_lettered = report.dead_lettered,
            "batch processed"
        );
        for id in report.retried {
            response.add_failure(id);
        }
        // The batch's effects are committed whatever this says: an outbox the bus refuses
        // now is delivered by a later invocation or a worker's relay.
        match self.relay.relay_once().await {
            Ok(r) if r.failed > 0 => tracing::warn!(failed = r.failed, "some outbox entries wait for the bus"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the outbox; a later run delivers it"),
        }
        response
    }
}

/// A record that cannot become a [`ReceivedMessage`].
#[derive(Debug, PartialEq, Eq)]
pub struct Unusable {
    pub message_id: Option<String>,
    pub reason: &'static str,
}

/// An SQS event record as the message the consumer loop would have received itself:
/// string message attributes, `ApproximateReceiveCount` and `SentTimestamp`.
pub fn received_message(record: SqsMessage) -> Result<ReceivedMessage, Unusable> {
    let message_id = record.message_id.filter(|id| !id.is_empty());
    let Some(id) = message_id.clone() else {
        return Err(Unusable { message_id: None, reason: "no messageId" });
    };
    let Some(receipt) = record.receipt_handle.filter(|r| !r.is_empty()) else {
        return Err(Unusable { message_id, reason: "no receiptHandle" });
    };
    let attributes: Attributes = record
        .message_attributes
        .into_iter()
        .filter_map(|(name, value)| value.string_value.map(|v| (name, v)))
        .collect();
    let receive_count =
        record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse::<u32>().ok()).unwrap_or(1).max(1);
    let sent_at = record
        .attributes
        .get("SentTimestamp")
        .and_then(|ms| ms.parse::<i64>().ok())
        .map(clock::from_millis)
        .unwrap_or_else(clock::now);
    Ok(ReceivedMessage {
        message_id: id,
        receipt: Receipt(receipt),
        body: record.body.unwrap_or_default(),
        attributes,
        receive_count,
        sent_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: serde_json::Value) -> SqsMessage {
        serde_json::from_value(json).expect("an sqs record")
    }

    #[test]
    fn a_record_keeps_its_ids_body_string_attributes_receive_count_and_sent_time() {
        let m = received_message(record(serde_json::json!({
            "messageId": "m-1",
            "receiptHandle": "rh-1",
            "body": "{\"x\":1}",
            "attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1700000000123"},
            "messageAttributes": {
                "type": {"stringValue": "ticket.create", "dataType": "String"},
                "blob": {"binaryValue": "AAE=", "dataType": "Binary"}
            },
            "eventSource": "aws:sqs"
        })))
        .unwrap();
        assert_eq!(m.message_id, "m-1");
        assert_eq!(m.receipt, Receipt("rh-1".into()));
        assert_eq!(m.body, "{\"x\":1}");
        assert_eq!(m.receive_count, 3);
        assert_eq!(m.sent_at, clock::from_millis(1_700_000_000_123));
        assert_eq!(m.attributes, Attributes::from([("type".to_owned(), "ticket.create".to_owned())]));
    }

    #[test]
    fn a_record_without_receipt_or_id_is_unusable_and_missing_counts_default() {
        let no_receipt = received_message(record(serde_json::json!({"messageId": "m-2", "body": "x"})));
        assert_eq!(no_receipt.unwrap_err(), Unusable { message_id: Some("m-2".into()), reason: "no receiptHandle" });
        let no_id = received_message(record(serde_json::json!({"receiptHandle": "rh"})));
        assert_eq!(no_id.unwrap_err().message_id, None);
        let bare = received_message(record(serde_json::json!({
            "messageId": "m-3", "receiptHandle": "rh", "attributes": {"ApproximateReceiveCount": "zero"}
        })))
        .unwrap();
        assert_eq!(bare.receive_count, 1);
        assert_eq!(bare.body, "");
    }
}
