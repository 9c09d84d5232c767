//! The queues on SQS: batched sends and deletes, long-poll receives, visibility changes,
//! and `usher setup`'s side of them (each queue beside its DLQ, with a redrive policy).

use super::batch::{FailedEntry, send_entries};
use super::error::{build_error, port_error};
use super::names::Names;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use domain::PortError;
use domain::clock::{self, Timestamp};
use domain::ports::MessageQueue;
use domain::queue::{Attributes, OutgoingMessage, Queue, QueueAddr, QueueStats, Receipt, ReceivedMessage};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::OnceCell;

/// SQS caps `DelaySeconds` at 15 minutes.
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// SQS takes at most ten entries per batch call and ten messages per receive.
const BATCH: usize = 10;
/// SQS caps one batch's payload (bodies and attributes) at 256 KiB; keep some slack.
const BATCH_BYTES: usize = 250 * 1024;
/// SQS caps a long poll at 20 seconds and a visibility timeout at 12 hours.
const MAX_WAIT_SECS: u64 = 20;
const MAX_VISIBILITY_SECS: u64 = 12 * 60 * 60;

/// Queue settings `usher setup` applies (docs/contract.md §0: the default visibility is 30 s).
const VISIBILITY_TIMEOUT_SECS: u32 = 30;
/// Dead letters are kept as long as SQS allows, so operators have time to replay them.
const DLQ_RETENTION_SECS: u32 = 14 * 24 * 60 * 60;

pub(crate) struct SqsQueues {
    client: Client,
    names: Names,
    /// Each queue's URL, looked up on first use and kept: URLs never change.
    urls: HashMap<QueueAddr, OnceCell<String>>,
}

impl SqsQueues {
    pub(crate) fn new(client: Client, names: Names) -> Self {
        let urls = every_addr().map(|addr| (addr, OnceCell::new())).collect();
        Self { client, names, urls }
    }

    async fn url(&self, addr: QueueAddr) -> Result<&str, PortError> {
        let cell = self.urls.get(&addr).ok_or_else(|| PortError::Invalid(format!("unknown queue {}", addr.name())))?;
        let url = cell
            .get_or_try_init(|| async {
                let name = self.names.queue(addr);
                match self.client.get_queue_url().queue_name(&name).send().await {
                    Ok(out) => out
                        .queue_url()
                        .map(str::to_owned)
                        .ok_or_else(|| PortError::Corrupt(format!("no url for queue {name}"))),
                    Err(err) if err.as_service_error().is_some_and(|e| e.is_queue_does_not_exist()) => {
                        Err(PortError::Invalid(format!("queue {name} does not exist; run `usher setup`")))
                    }
                    Err(err) => Err(port_error("sqs.get_queue_url", &err)),
                }
            })
            .await?;
        Ok(url.as_str())
    }

    async fn send_chunk(&self, url: &str, chunk: &[&OutgoingMessage]) -> Result<(), PortError> {
        send_entries("sqs.send_message_batch", chunk.len(), move |pending| async move {
            let entries = pending.iter().map(|&i| send_entry(i, chunk[i])).collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| port_error("sqs.send_message_batch", &e))?;
            Ok(out.failed().iter().map(|f| FailedEntry::new(f.id(), f.sender_fault(), f.code(), f.message())).collect())
        })
        .await
    }

    async fn delete_chunk(&self, url: &str, chunk: &[Receipt]) -> Result<(), PortError> {
        send_entries("sqs.delete_message_batch", chunk.len(), move |pending| async move {
            let entries = pending
                .iter()
                .map(|&i| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&chunk[i].0)
                        .build()
                        .map_err(|e| build_error("sqs delete entry", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .delete_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| port_error("sqs.delete_message_batch", &e))?;
            // A stale or unknown receipt deletes nothing, and that is fine (see the port).
            Ok(out
                .failed()
                .iter()
                .filter(|f| !is_stale_receipt(f.code()))
                .map(|f| FailedEntry::new(f.id(), f.sender_fault(), f.code(), f.message()))
                .collect())
        })
        .await
    }

    /// Deletes what is visible, batch by batch: the fallback while SQS is still busy with
    /// an earlier purge of the same queue (it allows one a minute).
    async fn drain(&self, url: &str) -> Result<(), PortError> {
        loop {
            let out = self
                .client
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(BATCH as i32)
                .wait_time_seconds(0)
                .visibility_timeout(VISIBILITY_TIMEOUT_SECS as i32)
                .send()
                .await
                .map_err(|e| port_error("sqs.receive_message", &e))?;
            let receipts: Vec<Receipt> =
                out.messages().iter().filter_map(|m| m.receipt_handle().map(|r| Receipt(r.to_owned()))).collect();
            if receipts.is_empty() {
                return Ok(());
            }
            self.delete_chunk(url, &receipts).await?;
        }
    }
}

fn every_addr() -> impl Iterator<Item = QueueAddr> {
    Queue::ALL.into_iter().flat_map(|q| [q.source(), q.dlq()])
}

fn is_stale_receipt(code: &str) -> bool {
    matches!(code, "ReceiptHandleIsInvalid" | "AWS.SimpleQueueService.ReceiptHandleIsInvalid")
}

/// Whole seconds, rounded up so that a message is never visible earlier than asked.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn send_entry(id: usize, message: &OutgoingMessage) -> Result<SendMessageBatchRequestEntry, PortError> {
    let delay = ceil_secs(message.delay.min(MAX_DELAY)) as i32;
    let mut entry = SendMessageBatchRequestEntry::builder().id(id.to_string()).message_body(&message.body);
    if delay > 0 {
        entry = entry.delay_seconds(delay);
    }
    for (name, value) in &message.attributes {
        if value.is_empty() {
            // SQS refuses an empty attribute value, and refusing the message for it
            // would lose more than leaving the attribute off.
            tracing::debug!(attribute = %name, "empty message attribute left off");
            continue;
        }
        let value = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| build_error("sqs message attribute", e))?;
        entry = entry.message_attributes(name, value);
    }
    entry.build().map_err(|e| build_error("sqs send entry", e))
}

/// What one message weighs against the batch payload limit.
fn payload_bytes(message: &OutgoingMessage) -> usize {
    message.body.len() + message.attributes.iter().map(|(k, v)| k.len() + v.len() + "String".len()).sum::<usize>()
}

/// Splits messages into batches SQS accepts: at most ten, at most [`BATCH_BYTES`].
fn batches(messages: &[OutgoingMessage]) -> Vec<Vec<&OutgoingMessage>> {
    let mut out: Vec<Vec<&OutgoingMessage>> = Vec::new();
    let mut bytes = 0;
    for message in messages {
        let size = payload_bytes(message);
        match out.last_mut() {
            Some(batch) if batch.len() < BATCH && bytes + size <= BATCH_BYTES => {
                batch.push(message);
                bytes += size;
            }
            _ => {
                out.push(vec![message]);
                bytes = size;
            }
        }
    }
    out
}

fn received(message: &aws_sdk_sqs::types::Message) -> Option<ReceivedMessage> {
    let Some(receipt) = message.receipt_handle() else {
        tracing::error!(message_id = message.message_id().unwrap_or(""), "sqs returned a message without a receipt");
        return None;
    };
    let system = message.attributes();
    let system_attr = |name: &MessageSystemAttributeName| system.and_then(|a| a.get(name));
    let receive_count = system_attr(&MessageSystemAttributeName::ApproximateReceiveCount)
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    let sent_at: Timestamp = system_attr(&MessageSystemAttributeName::SentTimestamp)
        .and_then(|v| v.parse::<i64>().ok())
        .map(clock::from_millis)
        .unwrap_or_else(clock::now);
    let attributes: Attributes = message
        .message_attributes()
        .map(|attrs| attrs.iter().filter_map(|(k, v)| v.string_value().map(|s| (k.clone(), s.to_owned()))).collect())
        .unwrap_or_default();
    Some(ReceivedMessage {
        message_id: message.message_id().unwrap_or(receipt).to_owned(),
        receipt: Receipt(receipt.to_owned()),
        body: message.body().unwrap_or_default().to_owned(),
        attributes,
        receive_count,
        sent_at,
    })
}

#[async_trait]
impl MessageQueue for SqsQueues {
    fn max_delay(&self) -> Duration {
        MAX_DELAY
    }

    fn max_batch(&self) -> usize {
        BATCH
    }

    async fn send_batch(&self, queue: QueueAddr, messages: Vec<OutgoingMessage>) -> Result<(), PortError> {
        if messages.is_empty() {
            return Ok(());
        }
        let url = self.url(queue).await?;
        for batch in batches(&messages) {
            self.send_chunk(url, &batch).await?;
        }
        Ok(())
    }

    async fn receive(
        &self,
        queue: QueueAddr,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, PortError> {
        let url = self.url(queue).await?;
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, BATCH) as i32)
            .wait_time_seconds(wait.as_secs().min(MAX_WAIT_SECS) as i32)
            .visibility_timeout(ceil_secs(visibility).min(MAX_VISIBILITY_SECS) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| port_error("sqs.receive_message", &e))?;
        Ok(out.messages().iter().filter_map(received).collect())
    }

    async fn delete_batch(&self, queue: QueueAddr, receipts: Vec<Receipt>) -> Result<(), PortError> {
        if receipts.is_empty() {
            return Ok(());
        }
        let url = self.url(queue).await?;
        for chunk in receipts.chunks(BATCH) {
            self.delete_chunk(url, chunk).await?;
        }
        Ok(())
    }

    async fn change_visibility(&self, queue: QueueAddr, receipt: &Receipt, timeout: Duration) -> Result<(), PortError> {
        let url = self.url(queue).await?;
        let result = self
            .client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(&receipt.0)
            .visibility_timeout(ceil_secs(timeout).min(MAX_VISIBILITY_SECS) as i32)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Like a stale delete: the message was deleted or received again since, so
            // there is nothing left for this receipt to re-time.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_message_not_inflight() || e.is_receipt_handle_is_invalid()) =>
            {
                tracing::debug!(queue = %queue.name(), code = err.code().unwrap_or(""), "visibility change on a stale receipt");
                Ok(())
            }
            Err(err) => Err(port_error("sqs.change_message_visibility", &err)),
        }
    }

    async fn depth(&self, queue: QueueAddr) -> Result<u64, PortError> {
        let stats = self.stats(queue).await?;
        Ok(stats.visible + stats.in_flight + stats.delayed)
    }

    /// One `GetQueueAttributes` call. SQS exposes no age of the oldest message (only
    /// CloudWatch's `ApproximateAgeOfOldestMessage`, a separate paid API), and finding it
    /// by receiving would hide messages from the workers: `oldest_age` stays `None`.
    async fn stats(&self, queue: QueueAddr) -> Result<QueueStats, PortError> {
        let url = self.url(queue).await?;
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| port_error("sqs.get_queue_attributes", &e))?;
        let attrs = out.attributes();
        let count = |name: QueueAttributeName| {
            attrs.and_then(|a| a.get(&name)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        };
        Ok(QueueStats {
            visible: count(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
            oldest_age: None,
        })
    }

    async fn purge(&self, queue: QueueAddr) -> Result<(), PortError> {
        let url = self.url(queue).await?;
        match self.client.purge_queue().queue_url(url).send().await {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_purge_queue_in_progress()) => {
                tracing::info!(queue = %queue.name(), "a purge is already running; deleting what is visible");
                self.drain(url).await
            }
            Err(err) => Err(port_error("sqs.purge_queue", &err)),
        }
    }

    async fn ping(&self) -> Result<(), PortError> {
        self.client
            .list_queues()
            .queue_name_prefix(self.names.env())
            .max_results(1)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| port_error("sqs.list_queues", &e))
    }
}

// ---------------------------------------------------------------------------------------
// Setup

/// A queue as `usher setup` left it.
pub(crate) struct QueueInfo {
    pub(crate) url: String,
    pub(crate) arn: String,
}

/// Creates (or updates in place) every queue and its DLQ, with the redrive policy whose
/// limit is one above the worker's own `max_receives`: the safety net for messages that
/// crash the process before the worker can dead-letter them itself.
pub(crate) async fn setup(
    client: &Client,
    names: &Names,
    max_receives: u32,
) -> Result<HashMap<Queue, QueueInfo>, PortError> {
    let mut queues = HashMap::new();
    for queue in Queue::ALL {
        let dlq = ensure_queue(
            client,
            &names.queue(queue.dlq()),
            &[(QueueAttributeName::MessageRetentionPeriod, DLQ_RETENTION_SECS.to_string())],
        )
        .await?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq.arn,
            "maxReceiveCount": max_receives.saturating_add(1),
        });
        let source = ensure_queue(
            client,
            &names.queue(queue.source()),
            &[
                (QueueAttributeName::VisibilityTimeout, VISIBILITY_TIMEOUT_SECS.to_string()),
                (QueueAttributeName::RedrivePolicy, redrive.to_string()),
            ],
        )
        .await?;
        tracing::info!(queue = %names.queue(queue.source()), "queue and dead-letter queue ready");
        queues.insert(queue, source);
    }
    Ok(queues)
}

/// CreateQueue is idempotent only while the attributes match, so the queue is created
/// bare and its attributes set afterwards, which overwrites them to the same values.
async fn ensure_queue(
    client: &Client,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> Result<QueueInfo, PortError> {
    let out = client.create_queue().queue_name(name).send().await.map_err(|e| port_error("sqs.create_queue", &e))?;
    let url = out.queue_url().ok_or_else(|| PortError::Corrupt(format!("no url for queue {name}")))?.to_owned();
    set_queue_attributes(client, &url, attributes).await?;
    let out = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| port_error("sqs.get_queue_attributes", &e))?;
    let arn = out
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .ok_or_else(|| PortError::Corrupt(format!("no arn for queue {name}")))?
        .to_owned();
    Ok(QueueInfo { url, arn })
}

pub(crate) async fn set_queue_attributes(
    client: &Client,
    url: &str,
    attributes: &[(QueueAttributeName, String)],
) -> Result<(), PortError> {
    if attributes.is_empty() {
        return Ok(());
    }
    let map = attributes.iter().cloned().collect();
    client
        .set_queue_attributes()
        .queue_url(url)
        .set_attributes(Some(map))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| port_error("sqs.set_queue_attributes", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(bytes: usize) -> OutgoingMessage {
        OutgoingMessage::new("x".repeat(bytes), Attributes::new())
    }

    #[test]
    fn batches_hold_ten_messages_and_stay_under_the_payload_limit() {
        let small: Vec<_> = (0..23).map(|_| message(10)).collect();
        let sizes: Vec<usize> = batches(&small).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 3]);
        let big: Vec<_> = (0..3).map(|_| message(100 * 1024)).collect();
        let sizes: Vec<usize> = batches(&big).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 1]);
    }

    #[test]
    fn delays_round_up_and_cap_at_fifteen_minutes() {
        assert_eq!(ceil_secs(Duration::from_millis(1500)), 2);
        assert_eq!(ceil_secs(Duration::from_secs(3)), 3);
        assert_eq!(ceil_secs(Duration::from_secs(3600).min(MAX_DELAY)), 900);
        let entry = send_entry(0, &OutgoingMessage { delay: Duration::from_secs(3600), ..message(1) }).unwrap();
        assert_eq!(entry.delay_seconds(), Some(900));
    }
}
