//! The stores on DynamoDB. A command's effects and its status document commit in one
//! `TransactWriteItems`, each item guarded by a condition that restates the rule it
//! protects; a cancelled transaction is read back as the domain outcome it stands for.
//! infra/AWS.md documents the tables, keys, indexes and conditions.

mod analytics;
mod bookings;
mod catalog;
mod item;
mod notifications;
mod outbox;
mod requests;
pub(crate) mod tables;
mod tickets;
mod transaction;
mod users;

use super::error::{build_error, port_error};
use super::names::{Names, Table};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use domain::PortError;
use item::Item;
use std::time::Duration;

/// BatchGetItem takes at most 100 keys per call.
const MAX_BATCH_GET: usize = 100;

pub(crate) struct DynamoStore {
    client: Client,
    requests: String,
    keys: String,
    catalog: String,
    seats: String,
    holds: String,
    bookings: String,
    handled_events: String,
    notifications: String,
    show_stats: String,
    daily_stats: String,
    ticket_stats: String,
    tickets: String,
    ticket_entries: String,
    users: String,
    outbox: String,
    /// Wakes the relay when this process committed outbox entries.
    outbox_added: tokio::sync::Notify,
}

impl DynamoStore {
    pub(crate) fn new(client: Client, names: &Names) -> Self {
        Self {
            client,
            requests: names.table(Table::Requests),
            keys: names.table(Table::IdempotencyKeys),
            catalog: names.table(Table::Catalog),
            seats: names.table(Table::Seats),
            holds: names.table(Table::Holds),
            bookings: names.table(Table::Bookings),
            handled_events: names.table(Table::HandledEvents),
            notifications: names.table(Table::Notifications),
            show_stats: names.table(Table::ShowStats),
            daily_stats: names.table(Table::DailyStats),
            ticket_stats: names.table(Table::TicketStats),
            tickets: names.table(Table::Tickets),
            ticket_entries: names.table(Table::TicketEntries),
            users: names.table(Table::Users),
            outbox: names.table(Table::Outbox),
            outbox_added: tokio::sync::Notify::new(),
        }
    }

    /// Strongly consistent reads of many items of one table, in the order of `keys`;
    /// missing items are left out.
    pub(crate) async fn get_many(&self, table: &str, keys: Vec<Item>) -> Result<Vec<Item>, PortError> {
        let mut found: Vec<Item> = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(MAX_BATCH_GET) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| build_error("batch get keys", e))?,
            );
            let mut attempt = 0u32;
            while let Some(request) = pending.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(table, request)
                    .send()
                    .await
                    .map_err(|e| port_error("dynamodb.batch_get_item", &e))?;
                if let Some(items) = out.responses().and_then(|r| r.get(table)) {
                    found.extend(items.iter().cloned());
                }
                pending = out.unprocessed_keys().and_then(|u| u.get(table)).filter(|k| !k.keys().is_empty()).cloned();
                if pending.is_some() {
                    attempt += 1;
                    if attempt > 8 {
                        return Err(PortError::Contention("batch get kept leaving keys unprocessed".into()));
                    }
                    tokio::time::sleep(Duration::from_millis(25 << attempt.min(5))).await;
                }
            }
        }
        // BatchGetItem answers in no particular order.
        let position = |item: &Item| keys.iter().position(|k| k.iter().all(|(name, v)| item.get(name) == Some(v)));
        found.sort_by_key(|item| position(item).unwrap_or(usize::MAX));
        Ok(found)
    }

    /// One strongly consistent read.
    pub(crate) async fn get_one(&self, table: &str, key: Item) -> Result<Option<Item>, PortError> {
        self.client
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map(|out| out.item().cloned())
            .map_err(|e| port_error("dynamodb.get_item", &e))
    }
}

/// The `Limit` of a paginated read that wants `limit` items: one page holds them all
/// unless DynamoDB's 1 MB page ends it first.
pub(crate) fn page_size(limit: usize) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX).max(1)
}

/// Whether an SDK error is a failed condition (of a single-item write).
pub(crate) fn is_condition_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(err: &E) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
}
