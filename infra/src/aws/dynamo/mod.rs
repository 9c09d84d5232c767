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
use aws_sdk_dynamodb::types::{KeysAndAttributes, WriteRequest};
use domain::PortError;
use item::{Item, Placeholders};
use std::time::Duration;

/// BatchGetItem takes at most 100 keys per call.
const MAX_BATCH_GET: usize = 100;
/// BatchWriteItem takes at most 25 puts or deletes per call.
const MAX_BATCH_WRITE: usize = 25;

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
            let mut attempt = 0;
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
                    unprocessed_pause("batch get", &mut attempt).await?;
                }
            }
        }
        // BatchGetItem answers in no particular order.
        let position = |item: &Item| keys.iter().position(|k| k.iter().all(|(name, v)| item.get(name) == Some(v)));
        found.sort_by_key(|item| position(item).unwrap_or(usize::MAX));
        Ok(found)
    }

    /// Every put or delete in `writes`, 25 per `BatchWriteItem`, sending again what a
    /// call leaves unprocessed.
    pub(crate) async fn write_batch(&self, table: &str, writes: Vec<WriteRequest>) -> Result<(), PortError> {
        for chunk in writes.chunks(MAX_BATCH_WRITE) {
            let mut pending = Some(chunk.to_vec());
            let mut attempt = 0;
            while let Some(writes) = pending.take() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(table, writes)
                    .send()
                    .await
                    .map_err(|e| port_error("dynamodb.batch_write_item", &e))?;
                pending = out.unprocessed_items().and_then(|u| u.get(table)).filter(|w| !w.is_empty()).cloned();
                if pending.is_some() {
                    unprocessed_pause("batch write", &mut attempt).await?;
                }
            }
        }
        Ok(())
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

/// Waits before a batch call sends again what the last one left unprocessed (DynamoDB
/// throttled part of it), longer each time; after eight such calls it gives up.
async fn unprocessed_pause(what: &str, attempt: &mut u32) -> Result<(), PortError> {
    *attempt += 1;
    if *attempt > 8 {
        return Err(PortError::Contention(format!("{what} kept leaving items unprocessed")));
    }
    tokio::time::sleep(Duration::from_millis(25 << (*attempt).min(5))).await;
    Ok(())
}

/// A `Query` of one partition, of a table or of one of its indexes, read through the
/// SDK's paginator until `limit` items or the partition's end. A table reads strongly
/// consistent; an index cannot, and reads eventually consistent.
pub(crate) struct PartitionQuery<'a> {
    table: &'a str,
    index: Option<&'a str>,
    key_condition: &'a str,
    placeholders: &'a Placeholders,
    filter: Option<String>,
    descending: bool,
    limit: Option<usize>,
    page: Option<i32>,
}

impl<'a> PartitionQuery<'a> {
    pub(crate) fn new(table: &'a str, key_condition: &'a str, placeholders: &'a Placeholders) -> Self {
        Self {
            table,
            index: None,
            key_condition,
            placeholders,
            filter: None,
            descending: false,
            limit: None,
            page: None,
        }
    }

    pub(crate) fn index(self, index: Option<&'a str>) -> Self {
        Self { index, ..self }
    }

    /// Conditions on attributes outside the key: DynamoDB still reads (and bills) what it
    /// drops, and a page may hold fewer than asked.
    pub(crate) fn filter(self, filter: Option<String>) -> Self {
        Self { filter, ..self }
    }

    /// Highest sort key first.
    pub(crate) fn descending(self) -> Self {
        Self { descending: true, ..self }
    }

    /// At most `limit` items; each page asks for that many unless [`Self::page`] says.
    pub(crate) fn limit(self, limit: usize) -> Self {
        Self { limit: Some(limit), ..self }
    }

    /// How many items each call reads (before any filter).
    pub(crate) fn page(self, page: i32) -> Self {
        Self { page: Some(page), ..self }
    }

    /// Reads page after page, and asks for no page once it has `limit` items.
    pub(crate) async fn read(self, client: &Client, op: &'static str) -> Result<Vec<Item>, PortError> {
        let wanted = self.limit.unwrap_or(usize::MAX);
        let page = self.page.or(self.limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX).max(1)));
        let mut items = client
            .query()
            .table_name(self.table)
            .set_index_name(self.index.map(str::to_owned))
            .key_condition_expression(self.key_condition)
            .set_filter_expression(self.filter)
            .set_expression_attribute_names(self.placeholders.name_map())
            .set_expression_attribute_values(self.placeholders.value_map())
            .scan_index_forward(!self.descending)
            .consistent_read(self.index.is_none())
            .set_limit(page)
            .into_paginator()
            .items()
            .send();
        let mut found = Vec::new();
        while found.len() < wanted {
            match items.try_next().await.map_err(|e| port_error(op, &e))? {
                Some(item) => found.push(item),
                None => break,
            }
        }
        Ok(found)
    }
}

/// Whether an SDK error is a failed condition (of a single-item write).
pub(crate) fn is_condition_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(err: &E) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
}
