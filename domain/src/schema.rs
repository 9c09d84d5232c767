//! The event catalog: a JSON Schema for every event type, generated from the Rust types
//! of its `data`, and an AsyncAPI 3.0 document of the topic and its subscribed queues.
//! `docs/events/*.json` and `docs/asyncapi.yaml` are these, checked in; a test fails
//! when they drift (`USHER_BLESS=1 cargo test -p domain catalog` rewrites them).

use crate::booking::{BookingConfirmedData, BookingFailedData, HoldEndedData, HoldPlacedData, HoldRejectedData};
use crate::event::EventType;
use crate::notification::NotificationSentData;
use crate::queue::{Queue, Subscription};
use crate::request::DeadLetteredData;
use crate::ticket::{TicketAssignedData, TicketCommentedData, TicketCreatedData, TicketStatusChangedData};
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

fn data_schema_of<T: JsonSchema>() -> Value {
    let generator = SchemaGenerator::default();
    generator.into_root_schema_for::<T>().to_value()
}

/// The schema of an event type's `data`, from its Rust type.
pub fn data_schema(t: EventType) -> Value {
    match t {
        EventType::HoldPlaced => data_schema_of::<HoldPlacedData>(),
        EventType::HoldRejected => data_schema_of::<HoldRejectedData>(),
        EventType::HoldReleased | EventType::HoldExpired => data_schema_of::<HoldEndedData>(),
        EventType::BookingConfirmed => data_schema_of::<BookingConfirmedData>(),
        EventType::BookingFailed => data_schema_of::<BookingFailedData>(),
        EventType::RequestDeadLettered => data_schema_of::<DeadLetteredData>(),
        EventType::NotificationSent => data_schema_of::<NotificationSentData>(),
        EventType::TicketCreated => data_schema_of::<TicketCreatedData>(),
        EventType::TicketAssigned => data_schema_of::<TicketAssignedData>(),
        EventType::TicketStatusChanged => data_schema_of::<TicketStatusChangedData>(),
        EventType::TicketCommented => data_schema_of::<TicketCommentedData>(),
    }
}

/// The whole CloudEvents 1.0 envelope of one event type, `data` included.
pub fn event_schema(t: EventType) -> Value {
    let mut data = data_schema(t);
    let defs = data.as_object_mut().and_then(|o| {
        o.remove("$schema");
        o.remove("$defs")
    });
    let mut schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("https://usher.dev/events/{}.json", t.as_str()),
        "title": t.as_str(),
        "description": "A CloudEvents 1.0 event in structured JSON mode, as published on the `events` topic.",
        "type": "object",
        "required": ["specversion", "id", "source", "type", "time", "subject", "datacontenttype", "data", "correlationid"],
        "additionalProperties": false,
        "properties": {
            "specversion": { "const": "1.0" },
            "id": { "type": "string", "description": "Unique, stable across redelivery: consumers dedupe by it." },
            "source": { "type": "string", "pattern": "^/usher/[a-z]+$" },
            "type": { "const": t.as_str() },
            "time": { "type": "string", "format": "date-time" },
            "subject": { "type": "string", "description": "The aggregate the event is about." },
            "datacontenttype": { "const": "application/json" },
            "correlationid": { "type": "string", "description": "The request that caused the event." },
            "traceparent": {
                "type": "string",
                "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                "description": "CloudEvents distributed-tracing extension: the W3C trace context of the work that caused the event. Continue it to join the request's trace."
            },
            "data": data,
        }
    });
    if let (Some(defs), Some(root)) = (defs, schema.as_object_mut()) {
        root.insert("$defs".to_owned(), defs);
    }
    schema
}

/// The file name of an event type's schema under `docs/events/`.
pub fn schema_file(t: EventType) -> String {
    format!("{}.json", t.as_str())
}

/// AsyncAPI 3.0: the topic, every message, and the queues subscribed with their filters.
pub fn asyncapi() -> Value {
    let mut messages = Map::new();
    let mut operations = Map::new();
    for t in EventType::ALL {
        let name = t.as_str().replace('.', "_");
        messages.insert(
            name.clone(),
            json!({
                "name": t.as_str(),
                "title": t.as_str(),
                "contentType": "application/json",
                "headers": {
                    "type": "object",
                    "description": "SNS message attributes.",
                    "properties": { "type": { "const": t.as_str() } }
                },
                "payload": { "$ref": format!("./events/{}", schema_file(t)) }
            }),
        );
    }
    let all: Vec<Value> = EventType::ALL
        .iter()
        .map(|t| json!({ "$ref": format!("#/channels/events/messages/{}", t.as_str().replace('.', "_")) }))
        .collect();
    operations.insert(
        "publishEvent".to_owned(),
        json!({
            "action": "send",
            "channel": { "$ref": "#/channels/events" },
            "summary": "Workers publish every outcome's events to the topic after committing them.",
            "messages": all,
        }),
    );
    let mut channels = Map::new();
    channels.insert(
        "events".to_owned(),
        json!({
            "address": "{env}-events",
            "title": "The events topic (SNS)",
            "description": "Every event, with an SNS message attribute `type` equal to the event type, for filter policies.",
            "parameters": { "env": { "description": "USHER_ENV, the resource prefix", "default": "dev" } },
            "messages": messages.keys().map(|k| (k.clone(), json!({ "$ref": format!("#/components/messages/{k}") }))).collect::<Map<_, _>>(),
        }),
    );
    for queue in Queue::ALL {
        let (types, policy) = match queue.subscription() {
            Subscription::None => continue,
            Subscription::Every => (&EventType::ALL[..], json!(null)),
            Subscription::Only(ts) => {
                let policy = json!({ "type": ts.iter().map(|t| t.as_str()).collect::<Vec<_>>() });
                (ts, policy)
            }
        };
        let refs: Map<String, Value> = types
            .iter()
            .map(|t| {
                let k = t.as_str().replace('.', "_");
                (k.clone(), json!({ "$ref": format!("#/components/messages/{k}") }))
            })
            .collect();
        channels.insert(
            queue.name().to_owned(),
            json!({
                "address": format!("{{env}}-{}", queue.name()),
                "title": format!("The {} queue (SQS), subscribed to the topic with raw delivery", queue.name()),
                "description": format!("Filter policy on `type`: {}. Dead letters go to `{{env}}-{}-dlq`.",
                    if policy.is_null() { "none (every type)".to_owned() } else { policy.to_string() }, queue.name()),
                "parameters": { "env": { "description": "USHER_ENV, the resource prefix", "default": "dev" } },
                "messages": refs,
                "x-filter-policy": policy,
            }),
        );
        operations.insert(
            format!("consume_{}", queue.name().replace('-', "_")),
            json!({
                "action": "receive",
                "channel": { "$ref": format!("#/channels/{}", queue.name()) },
                "summary": format!("The {} pool consumes these; it dedupes by event id.", queue.name()),
            }),
        );
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Usher events",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "CloudEvents 1.0 (structured JSON) that Usher's workers publish on the `events` topic. \
                Subscribers filter on the SNS message attribute `type` and dedupe by the event `id`, which is stable across redelivery."
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": { "messages": messages },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn docs() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs")
    }

    /// Compares `expected` with the checked-in file, or rewrites it under USHER_BLESS=1.
    fn check(path: PathBuf, expected: &str, drift: &mut Vec<String>) {
        if std::env::var_os("USHER_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, expected).unwrap();
            return;
        }
        if std::fs::read_to_string(&path).ok().as_deref() != Some(expected) {
            drift.push(path.display().to_string());
        }
    }

    #[test]
    fn catalog_matches_the_checked_in_documents() {
        let mut drift = Vec::new();
        for t in EventType::ALL {
            let schema = serde_json::to_string_pretty(&event_schema(t)).unwrap() + "\n";
            check(docs().join("events").join(schema_file(t)), &schema, &mut drift);
        }
        let asyncapi = serde_json::to_string_pretty(&asyncapi()).unwrap() + "\n";
        check(docs().join("asyncapi.yaml"), &asyncapi, &mut drift);
        assert!(
            drift.is_empty(),
            "these drifted from the code; run USHER_BLESS=1 cargo test -p domain catalog: {drift:?}"
        );
    }

    #[test]
    fn data_schemas_name_their_fields() {
        let s = event_schema(EventType::BookingConfirmed);
        let data = &s["properties"]["data"];
        assert_eq!(data["type"], "object");
        for field in ["booking_id", "hold_id", "show_id", "seat_ids", "amount_cents", "customer_id"] {
            assert!(data["properties"][field].is_object(), "{field}");
        }
        assert_eq!(s["properties"]["type"]["const"], "usher.booking.confirmed");
    }
}
