//! The tables' keys, indexes and TTL attributes (infra/AWS.md explains each), and
//! `usher setup`'s side of them: create what is missing, leave what exists alone.

use super::super::error::{build_error, port_error};
use super::super::names::{Names, Table};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use domain::PortError;
use std::time::Duration;

/// The sparse index of requests whose command is not known to be queued: only those
/// items carry `sweep`, so the index holds nothing else.
pub(crate) const UNQUEUED_INDEX: &str = "unqueued";
/// Shows of a movie, by start time: only shows carry `movie_id` in the catalog table.
pub(crate) const SHOWS_BY_MOVIE_INDEX: &str = "shows_by_movie";
/// Every ticket, in list order: all tickets carry the same `scope`.
pub(crate) const TICKETS_IN_ORDER_INDEX: &str = "tickets_in_order";
/// Tickets by status, in list order.
pub(crate) const TICKETS_BY_STATUS_INDEX: &str = "tickets_by_status";
/// Tickets by assignee, in list order; sparse: unassigned tickets carry no `assignee`.
pub(crate) const TICKETS_BY_ASSIGNEE_INDEX: &str = "tickets_by_assignee";
/// Tickets by requester, in list order.
pub(crate) const TICKETS_BY_REQUESTER_INDEX: &str = "tickets_by_requester";
/// The attribute DynamoDB's TTL deletes items by (epoch seconds). Only housekeeping:
/// every rule compares `expires_at` itself.
pub(crate) const TTL_ATTRIBUTE: &str = "ttl_at";

/// How long `usher setup` waits for a new table to become active.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

struct Index {
    name: &'static str,
    hash: (&'static str, ScalarAttributeType),
    range: (&'static str, ScalarAttributeType),
}

struct Spec {
    table: Table,
    hash: (&'static str, ScalarAttributeType),
    range: Option<(&'static str, ScalarAttributeType)>,
    indexes: Vec<Index>,
    ttl: bool,
}

fn specs() -> Vec<Spec> {
    use ScalarAttributeType::{N, S};
    vec![
        Spec {
            table: Table::Requests,
            hash: ("request_id", S),
            range: None,
            indexes: vec![Index { name: UNQUEUED_INDEX, hash: ("sweep", S), range: ("claimed_at", N) }],
            ttl: false,
        },
        Spec {
            table: Table::IdempotencyKeys,
            hash: ("owner", S),
            range: Some(("idempotency_key", S)),
            indexes: vec![],
            ttl: true,
        },
        Spec {
            table: Table::Catalog,
            hash: ("kind", S),
            range: Some(("id", S)),
            indexes: vec![Index { name: SHOWS_BY_MOVIE_INDEX, hash: ("movie_id", S), range: ("starts_at", N) }],
            ttl: false,
        },
        Spec { table: Table::Seats, hash: ("show_id", S), range: Some(("seat_id", S)), indexes: vec![], ttl: false },
        Spec { table: Table::Holds, hash: ("hold_id", S), range: None, indexes: vec![], ttl: true },
        Spec { table: Table::Bookings, hash: ("booking_id", S), range: None, indexes: vec![], ttl: false },
        Spec {
            table: Table::HandledEvents,
            hash: ("consumer", S),
            range: Some(("event_id", S)),
            indexes: vec![],
            ttl: true,
        },
        Spec {
            table: Table::Notifications,
            hash: ("recipient", S),
            range: Some(("sort_key", S)),
            indexes: vec![],
            ttl: false,
        },
        Spec { table: Table::ShowStats, hash: ("show_id", S), range: None, indexes: vec![], ttl: false },
        Spec { table: Table::DailyStats, hash: ("scope", S), range: Some(("day", S)), indexes: vec![], ttl: false },
        Spec { table: Table::TicketStats, hash: ("ticket_id", S), range: None, indexes: vec![], ttl: false },
        Spec {
            table: Table::Tickets,
            hash: ("ticket_id", S),
            range: None,
            indexes: vec![
                Index { name: TICKETS_IN_ORDER_INDEX, hash: ("scope", S), range: ("list_order", S) },
                Index { name: TICKETS_BY_STATUS_INDEX, hash: ("status", S), range: ("list_order", S) },
                Index { name: TICKETS_BY_ASSIGNEE_INDEX, hash: ("assignee", S), range: ("list_order", S) },
                Index { name: TICKETS_BY_REQUESTER_INDEX, hash: ("requester", S), range: ("list_order", S) },
            ],
            ttl: false,
        },
        Spec {
            table: Table::TicketEntries,
            hash: ("ticket_id", S),
            range: Some(("seq", N)),
            indexes: vec![],
            ttl: false,
        },
        Spec { table: Table::Users, hash: ("user_id", S), range: None, indexes: vec![], ttl: false },
        Spec { table: Table::Outbox, hash: ("id", S), range: None, indexes: vec![], ttl: false },
    ]
}

fn key_schema(
    hash: &(&'static str, ScalarAttributeType),
    range: &Option<(&'static str, ScalarAttributeType)>,
) -> Result<Vec<KeySchemaElement>, PortError> {
    let mut keys = vec![
        KeySchemaElement::builder()
            .attribute_name(hash.0)
            .key_type(KeyType::Hash)
            .build()
            .map_err(|e| build_error("key schema", e))?,
    ];
    if let Some(range) = range {
        keys.push(
            KeySchemaElement::builder()
                .attribute_name(range.0)
                .key_type(KeyType::Range)
                .build()
                .map_err(|e| build_error("key schema", e))?,
        );
    }
    Ok(keys)
}

/// Creates every table that is missing, waits for it, and turns its TTL on.
pub(crate) async fn setup(client: &Client, names: &Names) -> Result<(), PortError> {
    for spec in specs() {
        let name = names.table(spec.table);
        if !exists(client, &name).await? {
            create(client, &name, &spec).await?;
        }
        wait_active(client, &name).await?;
        if spec.ttl {
            enable_ttl(client, &name).await?;
        }
        tracing::info!(table = %name, "table ready");
    }
    Ok(())
}

async fn exists(client: &Client, name: &str) -> Result<bool, PortError> {
    match client.describe_table().table_name(name).send().await {
        Ok(_) => Ok(true),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(false),
        Err(err) => Err(port_error("dynamodb.describe_table", &err)),
    }
}

async fn create(client: &Client, name: &str, spec: &Spec) -> Result<(), PortError> {
    let mut attributes = vec![spec.hash.clone()];
    attributes.extend(spec.range.clone());
    for index in &spec.indexes {
        attributes.push(index.hash.clone());
        attributes.push(index.range.clone());
    }
    let mut definitions = Vec::new();
    for (attr, kind) in attributes {
        if definitions.iter().any(|d: &AttributeDefinition| d.attribute_name() == attr) {
            continue;
        }
        definitions.push(
            AttributeDefinition::builder()
                .attribute_name(attr)
                .attribute_type(kind)
                .build()
                .map_err(|e| build_error("attribute definition", e))?,
        );
    }
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(&spec.hash, &spec.range)?))
        .set_attribute_definitions(Some(definitions));
    for index in &spec.indexes {
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(index.name)
            .set_key_schema(Some(key_schema(&index.hash, &Some(index.range.clone()))?))
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .map_err(|e| build_error("global secondary index", e))?;
        request = request.global_secondary_indexes(gsi);
    }
    match request.send().await {
        Ok(_) => Ok(()),
        // Another `usher setup` got there first.
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => Ok(()),
        Err(err) => Err(port_error("dynamodb.create_table", &err)),
    }
}

async fn wait_active(client: &Client, name: &str) -> Result<(), PortError> {
    let deadline = tokio::time::Instant::now() + ACTIVE_TIMEOUT;
    loop {
        let out = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| port_error("dynamodb.describe_table", &e))?;
        let table = out.table();
        let table_active = table.and_then(|t| t.table_status()) == Some(&TableStatus::Active);
        let indexes_active = table
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default()
            .iter()
            .all(|i| i.index_status().is_none_or(|s| s.as_str() == "ACTIVE"));
        if table_active && indexes_active {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(PortError::Unavailable(format!("table {name} is not active after {ACTIVE_TIMEOUT:?}")));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn enable_ttl(client: &Client, name: &str) -> Result<(), PortError> {
    let out = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|e| port_error("dynamodb.describe_time_to_live", &e))?;
    let status = out.time_to_live_description().and_then(|d| d.time_to_live_status());
    if matches!(status, Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)) {
        return Ok(());
    }
    let spec = TimeToLiveSpecification::builder()
        .attribute_name(TTL_ATTRIBUTE)
        .enabled(true)
        .build()
        .map_err(|e| build_error("ttl specification", e))?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(spec)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| port_error("dynamodb.update_time_to_live", &e))
}
