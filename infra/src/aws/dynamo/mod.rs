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
mod users;

use super::error::{build_error, port_error};
use super::names::{Names, Table};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{KeysAndAttributes, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use domain::PortError;
use item::Item;
use std::time::Duration;

/// DynamoDB's limit on the items of one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;
/// BatchGetItem takes at most 100 keys per call.
const MAX_BATCH_GET: usize = 100;
/// How often a read-check-write is redone after losing a race before the call reports
/// contention and the worker retries it later.
const ATTEMPTS: usize = 5;

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

/// Why a transaction did not commit, item by item (`None`: that item was fine).
#[derive(Debug)]
pub(crate) struct Cancelled {
    reasons: Vec<Option<String>>,
    /// The items whose condition failed, as they were (`ReturnValuesOnConditionCheckFailure`).
    items: Vec<Option<Item>>,
}

impl Cancelled {
    /// Whether the condition of the item at `index` failed.
    pub(crate) fn failed(&self, index: usize) -> bool {
        self.reasons.get(index).is_some_and(|r| r.as_deref() == Some("ConditionalCheckFailed"))
    }

    /// The item at `index` as it stood when its condition failed, if DynamoDB said.
    pub(crate) fn old_item(&self, index: usize) -> Option<&Item> {
        self.items.get(index).and_then(Option::as_ref)
    }
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

    /// Runs one transaction. `Ok(Err(_))` is a cancellation where every failed item is a
    /// condition check: the caller reads it as an outcome. Conflicts with another
    /// transaction and throttling are contention (retried later); anything else an error.
    pub(crate) async fn transact(
        &self,
        op: &'static str,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Cancelled>, PortError> {
        if items.is_empty() {
            return Ok(Ok(()));
        }
        if items.len() > MAX_TRANSACTION_ITEMS {
            return Err(PortError::Invalid(format!("{op}: {} items exceed one transaction", items.len())));
        }
        let err = match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => return Ok(Ok(())),
            Err(err) => err,
        };
        let Some(cancelled) = err.as_service_error().and_then(|e| {
            match e {
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                c,
            ) => Some(c),
            _ => None,
        }
        }) else {
            return Err(port_error("dynamodb.transact_write_items", &err));
        };
        let reasons: Vec<Option<String>> = cancelled
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().filter(|c| *c != "None").map(str::to_owned))
            .collect();
        let conditions_only = !reasons.is_empty()
            && reasons.iter().flatten().all(|c| c == "ConditionalCheckFailed")
            && reasons.iter().any(Option::is_some);
        if conditions_only {
            let items = cancelled.cancellation_reasons().iter().map(|r| r.item().cloned()).collect();
            tracing::debug!(op, ?reasons, "transaction cancelled by a condition");
            return Ok(Err(Cancelled { reasons, items }));
        }
        let codes: Vec<&str> = reasons.iter().flatten().map(String::as_str).collect();
        tracing::warn!(op, ?codes, "transaction cancelled");
        if codes.iter().any(|c| matches!(*c, "ValidationError" | "ItemCollectionSizeLimitExceeded")) {
            return Err(port_error("dynamodb.transact_write_items", &err));
        }
        // TransactionConflict, ThrottlingError, ProvisionedThroughputExceeded, or no
        // reasons at all: the same transaction may pass in a moment.
        Err(PortError::Contention(format!("{op}: transaction cancelled ({})", codes.join(", "))))
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

/// A short, jittered pause before retrying a transaction that lost to another.
pub(crate) fn conflict_pause(attempt: usize) -> Duration {
    let ceiling = 20u64 << attempt.min(4);
    Duration::from_millis(5 + jitter(ceiling))
}

/// A jitter source without another dependency: the low bits of a fresh uuid v4.
fn jitter(below: u64) -> u64 {
    (uuid::Uuid::new_v4().as_u128() as u64) % below.max(1)
}

/// Asks DynamoDB to return the item as it was when its condition failed.
pub(crate) fn all_old() -> ReturnValuesOnConditionCheckFailure {
    ReturnValuesOnConditionCheckFailure::AllOld
}

/// Whether an SDK error is a failed condition (of a single-item write).
pub(crate) fn is_condition_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(err: &E) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
}
