//! The `events` topic on SNS: batched publishing with the event `type` as a message
//! attribute, and `usher setup`'s side of it (the topic, one raw-delivery subscription
//! per subscribed queue with its filter policy, and the queue policy that lets the topic
//! send to the queue).

use super::batch::{FailedEntry, send_entries};
use super::error::{build_error, port_error};
use super::names::Names;
use super::sqs::{QueueInfo, set_queue_attributes};
use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use domain::PortError;
use domain::event::{CloudEvent, EventType};
use domain::ports::EventBus;
use domain::queue::{ATTR_TYPE, Queue, Subscription};
use serde_json::{Value, json};
use std::collections::HashMap;
use tokio::sync::OnceCell;

/// SNS takes at most ten entries per PublishBatch, and 256 KiB in all; keep some slack.
const BATCH: usize = 10;
const BATCH_BYTES: usize = 250 * 1024;

pub(crate) struct SnsBus {
    client: Client,
    names: Names,
    /// The topic's ARN, looked up on first use (ARNs never change).
    topic_arn: OnceCell<String>,
}

impl SnsBus {
    pub(crate) fn new(client: Client, names: Names) -> Self {
        Self { client, names, topic_arn: OnceCell::new() }
    }

    async fn topic_arn(&self) -> Result<&str, PortError> {
        let arn = self
            .topic_arn
            .get_or_try_init(|| async {
                let name = self.names.topic();
                find_topic(&self.client, &name)
                    .await?
                    .ok_or_else(|| PortError::Invalid(format!("topic {name} does not exist; run `usher setup`")))
            })
            .await?;
        Ok(arn.as_str())
    }

    async fn publish_chunk(&self, topic_arn: &str, chunk: &[(&CloudEvent, String)]) -> Result<(), PortError> {
        send_entries("sns.publish_batch", chunk.len(), move |pending| async move {
            let entries =
                pending.iter().map(|&i| publish_entry(i, chunk[i].0, &chunk[i].1)).collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .publish_batch()
                .topic_arn(topic_arn)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await
                .map_err(|e| port_error("sns.publish_batch", &e))?;
            Ok(out.failed().iter().map(|f| FailedEntry::new(f.id(), f.sender_fault(), f.code(), f.message())).collect())
        })
        .await
    }
}

/// One event with its attributes (`type`, and `traceparent` when traced): with raw
/// delivery they arrive as the subscribed queue's message attributes.
fn publish_entry(id: usize, event: &CloudEvent, body: &str) -> Result<PublishBatchRequestEntry, PortError> {
    let mut entry = PublishBatchRequestEntry::builder().id(id.to_string()).message(body);
    for (name, value) in event.attributes() {
        let value = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .map_err(|e| build_error("sns message attribute", e))?;
        entry = entry.message_attributes(name, value);
    }
    entry.build().map_err(|e| build_error("sns publish entry", e))
}

/// Splits events into batches SNS accepts: at most ten, at most [`BATCH_BYTES`].
fn batches(events: &[CloudEvent]) -> Vec<Vec<(&CloudEvent, String)>> {
    let mut out: Vec<Vec<(&CloudEvent, String)>> = Vec::new();
    let mut bytes = 0;
    for event in events {
        let body = event.to_json();
        let size =
            body.len() + event.attributes().iter().map(|(k, v)| k.len() + v.len() + "String".len()).sum::<usize>();
        match out.last_mut() {
            Some(batch) if batch.len() < BATCH && bytes + size <= BATCH_BYTES => {
                batch.push((event, body));
                bytes += size;
            }
            _ => {
                out.push(vec![(event, body)]);
                bytes = size;
            }
        }
    }
    out
}

#[async_trait]
impl EventBus for SnsBus {
    async fn publish(&self, events: &[CloudEvent]) -> Result<(), PortError> {
        if events.is_empty() {
            return Ok(());
        }
        let topic_arn = self.topic_arn().await?;
        for batch in batches(events) {
            self.publish_chunk(topic_arn, &batch).await?;
        }
        Ok(())
    }
}

/// The ARN of the topic called `name`, if it exists. SNS has no lookup by name, so this
/// pages through the account's topics.
async fn find_topic(client: &Client, name: &str) -> Result<Option<String>, PortError> {
    let suffix = format!(":{name}");
    let mut token: Option<String> = None;
    loop {
        let out = client
            .list_topics()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| port_error("sns.list_topics", &e))?;
        if let Some(arn) = out.topics().iter().filter_map(|t| t.topic_arn()).find(|arn| arn.ends_with(&suffix)) {
            return Ok(Some(arn.to_owned()));
        }
        match out.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_owned()),
            _ => return Ok(None),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Setup

/// The filter policy of a subscription: `{"type": [..]}` on the message attribute, or
/// none for a queue that takes every event.
fn filter_policy(types: &[EventType]) -> Value {
    json!({ ATTR_TYPE: types.iter().map(|t| t.as_str()).collect::<Vec<_>>() })
}

/// Lets the topic, and only the topic, send to the queue.
fn queue_policy(queue_arn: &str, topic_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "usher-events-topic",
            "Effect": "Allow",
            "Principal": { "Service": "sns.amazonaws.com" },
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": { "ArnEquals": { "aws:SourceArn": topic_arn } },
        }],
    })
}

/// Creates the topic and subscribes every queue that [`Queue::subscription`] names,
/// leaving an existing, matching subscription alone.
pub(crate) async fn setup(
    client: &Client,
    sqs: &aws_sdk_sqs::Client,
    names: &Names,
    queues: &HashMap<Queue, QueueInfo>,
) -> Result<(), PortError> {
    // CreateTopic returns the existing topic's ARN when it already exists.
    let out = client.create_topic().name(names.topic()).send().await.map_err(|e| port_error("sns.create_topic", &e))?;
    let topic_arn = out.topic_arn().ok_or_else(|| PortError::Corrupt("create_topic returned no arn".into()))?;
    tracing::info!(topic = %names.topic(), "topic ready");

    let existing = subscriptions(client, topic_arn).await?;
    for queue in Queue::ALL {
        let wanted = match queue.subscription() {
            Subscription::None => continue,
            Subscription::Every => None,
            Subscription::Only(types) => Some(filter_policy(types)),
        };
        let Some(info) = queues.get(&queue) else {
            return Err(PortError::Invalid(format!("queue {} was not set up", queue.name())));
        };
        let policy = queue_policy(&info.arn, topic_arn).to_string();
        set_queue_attributes(sqs, &info.url, &[(aws_sdk_sqs::types::QueueAttributeName::Policy, policy)]).await?;
        match existing.get(&info.arn) {
            Some(subscription_arn) => reconcile(client, topic_arn, subscription_arn, &info.arn, wanted).await?,
            None => subscribe(client, topic_arn, &info.arn, wanted).await?,
        }
        tracing::info!(queue = %queue.name(), "queue subscribed to the topic");
    }
    Ok(())
}

/// The topic's SQS subscriptions, by queue ARN.
async fn subscriptions(client: &Client, topic_arn: &str) -> Result<HashMap<String, String>, PortError> {
    let mut found = HashMap::new();
    let mut token: Option<String> = None;
    loop {
        let out = client
            .list_subscriptions_by_topic()
            .topic_arn(topic_arn)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| port_error("sns.list_subscriptions_by_topic", &e))?;
        for s in out.subscriptions() {
            if let (Some("sqs"), Some(endpoint), Some(arn)) = (s.protocol(), s.endpoint(), s.subscription_arn()) {
                found.insert(endpoint.to_owned(), arn.to_owned());
            }
        }
        match out.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_owned()),
            _ => return Ok(found),
        }
    }
}

async fn subscribe(client: &Client, topic_arn: &str, queue_arn: &str, filter: Option<Value>) -> Result<(), PortError> {
    let mut request = client
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .return_subscription_arn(true)
        .attributes("RawMessageDelivery", "true");
    if let Some(filter) = filter {
        request = request.attributes("FilterPolicy", filter.to_string());
    }
    request.send().await.map(|_| ()).map_err(|e| port_error("sns.subscribe", &e))
}

/// Brings an existing subscription to the wanted raw delivery and filter, changing only
/// what differs, so a second `usher setup` changes nothing.
async fn reconcile(
    client: &Client,
    topic_arn: &str,
    subscription_arn: &str,
    queue_arn: &str,
    wanted: Option<Value>,
) -> Result<(), PortError> {
    let out = client
        .get_subscription_attributes()
        .subscription_arn(subscription_arn)
        .send()
        .await
        .map_err(|e| port_error("sns.get_subscription_attributes", &e))?;
    let attrs = out.attributes().cloned().unwrap_or_default();
    let current: Option<Value> =
        attrs.get("FilterPolicy").filter(|p| !p.trim().is_empty()).and_then(|p| serde_json::from_str(p).ok());
    if current.is_some() && wanted.is_none() {
        // A filter cannot be taken off a subscription in place everywhere: subscribe anew.
        client
            .unsubscribe()
            .subscription_arn(subscription_arn)
            .send()
            .await
            .map_err(|e| port_error("sns.unsubscribe", &e))?;
        return subscribe(client, topic_arn, queue_arn, None).await;
    }
    if attrs.get("RawMessageDelivery").map(String::as_str) != Some("true") {
        set_subscription_attribute(client, subscription_arn, "RawMessageDelivery", "true").await?;
    }
    if let Some(wanted) = wanted.filter(|w| current.as_ref() != Some(w)) {
        set_subscription_attribute(client, subscription_arn, "FilterPolicy", &wanted.to_string()).await?;
    }
    Ok(())
}

async fn set_subscription_attribute(
    client: &Client,
    subscription_arn: &str,
    name: &str,
    value: &str,
) -> Result<(), PortError> {
    client
        .set_subscription_attributes()
        .subscription_arn(subscription_arn)
        .attribute_name(name)
        .attribute_value(value)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| port_error("sns.set_subscription_attributes", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_policies_match_on_the_type_attribute() {
        let policy = filter_policy(&[EventType::BookingConfirmed]);
        assert_eq!(policy, json!({"type": ["usher.booking.confirmed"]}));
    }

    #[test]
    fn the_queue_policy_names_the_topic() {
        let policy = queue_policy("arn:aws:sqs:us-east-1:1:q", "arn:aws:sns:us-east-1:1:t");
        assert_eq!(policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"], "arn:aws:sns:us-east-1:1:t");
        assert_eq!(policy["Statement"][0]["Resource"], "arn:aws:sqs:us-east-1:1:q");
    }
}
