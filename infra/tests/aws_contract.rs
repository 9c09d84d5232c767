//! The port contract suite on the AWS backend, against a real AWS API implementation
//! (moto server), plus what only AWS has: `usher setup` run twice, the redrive policy,
//! and an outside subscriber that knows nothing of Usher.
//!
//! Run them with `scripts/moto.sh -- cargo test -p infra --test aws_contract`. Without
//! `AWS_ENDPOINT_URL` every test prints why and passes, so a plain `cargo test` needs no
//! moto. Each test sets up its own resources under a fresh `USHER_ENV` prefix.

use domain::clock;
use domain::event::{CloudEvent, EventType};
use domain::queue::Queue;
use infra::Backend;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

async fn fresh(max_receives: u32) -> Option<Backend> {
    let settings = testkit::settings::moto(max_receives)?;
    Backend::setup(&settings).await.expect("usher setup on moto");
    Some(Backend::connect(&settings).await.expect("the aws backend connects"))
}

infra::port_contract_tests!(fresh);

async fn sdk() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await
}

/// The ARN of the events topic of the resources under `env`.
async fn topic_arn(sns: &aws_sdk_sns::Client, env: &str) -> String {
    let suffix = format!(":{env}-events");
    let topics = sns.list_topics().send().await.unwrap();
    let arn = topics.topics().iter().filter_map(|t| t.topic_arn()).find(|a| a.ends_with(&suffix));
    arn.expect("the topic").to_owned()
}

fn event(t: EventType, subject: &str) -> CloudEvent {
    CloudEvent::new(t, "booking", subject, "req_aws", json!({ "subject": subject }), clock::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_twice_changes_nothing() {
    let Some(settings) = testkit::settings::moto(3) else {
        return;
    };
    Backend::setup(&settings).await.expect("first setup");
    Backend::setup(&settings).await.expect("second setup");
    let sdk = sdk().await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);

    let topic_arn = topic_arn(&sns, &settings.env).await;
    let subs = sns.list_subscriptions_by_topic().topic_arn(topic_arn).send().await.unwrap();
    assert_eq!(subs.subscriptions().len(), 2, "notifications and analytics, once each");

    let url = sqs.get_queue_url().queue_name(format!("{}-booking-commands", settings.env)).send().await.unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url.queue_url().unwrap())
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attrs = attrs.attributes().unwrap();
    let redrive: serde_json::Value =
        serde_json::from_str(&attrs[&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy]).unwrap();
    assert_eq!(redrive["maxReceiveCount"].to_string().trim_matches('"'), "4", "one above USHER_MAX_RECEIVES=3");
    assert!(
        redrive["deadLetterTargetArn"].as_str().unwrap().ends_with(&format!("{}-booking-commands-dlq", settings.env))
    );
    assert_eq!(attrs[&aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout], "30");

    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    for table in ["holds", "handled-events"] {
        let ttl = dynamo.describe_time_to_live().table_name(format!("{}-{table}", settings.env)).send().await.unwrap();
        assert_eq!(ttl.time_to_live_description().and_then(|d| d.attribute_name()), Some("ttl_at"), "{table}");
    }

    // One event reaches each subscribed queue exactly once.
    let backend = Backend::connect(&settings).await.unwrap();
    backend.bus.publish(&[event(EventType::BookingConfirmed, "bk_once")]).await.unwrap();
    for queue in [Queue::Analytics, Queue::Notifications] {
        let mut got = Vec::new();
        for _ in 0..3 {
            got.extend(
                backend
                    .queues
                    .receive(queue.source(), 10, Duration::from_millis(500), Duration::from_secs(30))
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(got.len(), 1, "{} got the event once", queue.name());
    }
}

/// A subscriber outside Usher: its own queue, subscribed with a filter policy on `type`,
/// receives exactly the matching CloudEvents, as raw JSON. It uses the SDK alone and
/// knows only the topic's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_subscriber_filters_on_type() {
    let Some(settings) = testkit::settings::moto(3) else {
        return;
    };
    Backend::setup(&settings).await.expect("usher setup on moto");
    let backend = Backend::connect(&settings).await.unwrap();

    let sdk = sdk().await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let topic_arn = topic_arn(&sns, &settings.env).await;
    let queue = sqs.create_queue().queue_name(format!("{}-outsider", settings.env)).send().await.unwrap();
    let url = queue.queue_url().unwrap().to_owned();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn = attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
        }],
    });
    sqs.set_queue_attributes()
        .queue_url(&url)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::Policy, policy.to_string())
        .send()
        .await
        .unwrap();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .attributes("RawMessageDelivery", "true")
        .attributes("FilterPolicy", r#"{"type": ["usher.booking.confirmed", "usher.booking.hold.expired"]}"#)
        .send()
        .await
        .unwrap();

    let events = vec![
        event(EventType::HoldPlaced, "hold_1"),
        event(EventType::BookingConfirmed, "bk_1"),
        event(EventType::TicketCreated, "tkt_1"),
        event(EventType::HoldExpired, "hold_2"),
    ];
    backend.bus.publish(&events).await.unwrap();

    let mut bodies = Vec::new();
    for _ in 0..4 {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            let attr = m.message_attributes().and_then(|a| a.get("type")).and_then(|v| v.string_value());
            let body: serde_json::Value = serde_json::from_str(m.body().unwrap()).expect("a raw CloudEvent");
            assert_eq!(attr, body["type"].as_str(), "the type attribute matches the event");
            bodies.push(body);
        }
    }
    let got: BTreeSet<(String, String)> =
        bodies.iter().map(|b| (b["type"].as_str().unwrap().to_owned(), b["id"].as_str().unwrap().to_owned())).collect();
    let want: BTreeSet<(String, String)> = events
        .iter()
        .filter(|e| matches!(e.event_type, EventType::BookingConfirmed | EventType::HoldExpired))
        .map(|e| (e.event_type.as_str().to_owned(), e.id.clone()))
        .collect();
    assert_eq!(bodies.len(), 2, "exactly the matching events, once each");
    assert_eq!(got, want);
    assert!(bodies.iter().all(|b| b["specversion"] == "1.0" && b["correlationid"] == "req_aws"));
}

/// A subscription someone changed by hand is brought back by the next `usher setup`,
/// still one per queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_repairs_changed_subscriptions() {
    let Some(settings) = testkit::settings::moto(3) else {
        return;
    };
    Backend::setup(&settings).await.expect("first setup");
    let sdk = sdk().await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic_arn = topic_arn(&sns, &settings.env).await;
    let subscriptions = |sns: aws_sdk_sns::Client, topic_arn: String| async move {
        let out = sns.list_subscriptions_by_topic().topic_arn(topic_arn).send().await.unwrap();
        out.subscriptions()
            .iter()
            .map(|s| (s.endpoint().unwrap().to_owned(), s.subscription_arn().unwrap().to_owned()))
            .collect::<Vec<_>>()
    };
    for (endpoint, arn) in subscriptions(sns.clone(), topic_arn.clone()).await {
        let filter = if endpoint.ends_with("-analytics") {
            r#"{"type": ["usher.ticket.created"]}"#
        } else {
            r#"{"type": ["usher.booking.failed"]}"#
        };
        for (name, value) in [("FilterPolicy", filter), ("RawMessageDelivery", "false")] {
            sns.set_subscription_attributes()
                .subscription_arn(&arn)
                .attribute_name(name)
                .attribute_value(value)
                .send()
                .await
                .unwrap();
        }
    }

    Backend::setup(&settings).await.expect("second setup");
    let now = subscriptions(sns.clone(), topic_arn.clone()).await;
    assert_eq!(now.len(), 2, "one subscription per queue");
    for (endpoint, arn) in now {
        let out = sns.get_subscription_attributes().subscription_arn(&arn).send().await.unwrap();
        let attrs = out.attributes().unwrap();
        assert_eq!(attrs.get("RawMessageDelivery").map(String::as_str), Some("true"));
        let filter: Option<serde_json::Value> =
            attrs.get("FilterPolicy").filter(|p| !p.is_empty()).map(|p| serde_json::from_str(p).unwrap());
        if endpoint.ends_with("-analytics") {
            assert_eq!(filter, None, "analytics takes every type again");
        } else {
            let types: BTreeSet<String> =
                filter.unwrap()["type"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect();
            assert!(types.contains("usher.booking.confirmed") && !types.contains("usher.booking.failed"));
        }
    }
}
