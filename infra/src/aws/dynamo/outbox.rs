//! The outbox table: one item per event or message a command's transaction committed,
//! deleted once the relay delivered it. It is near empty in steady state, so the relay
//! reads it with a consistent Scan rather than keeping an index.

use super::DynamoStore;
use super::item::{Item, Placeholders, get_millis, get_s, item, millis, s};
use super::transaction::put;
use crate::aws::error::{build_error, port_error};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{DeleteRequest, TransactWriteItem, WriteRequest};
use domain::PortError;
use domain::clock::Timestamp;
use domain::outbox::{OutboxBacklog, OutboxEntry, OutboxItem};
use domain::ports::Outbox;
use std::time::Duration;

impl DynamoStore {
    /// The puts that add `entries` in the caller's transaction. Re-adding an event puts
    /// the same item again.
    pub(crate) fn outbox_puts(
        &self,
        entries: &[OutboxEntry],
        now: Timestamp,
    ) -> Result<Vec<TransactWriteItem>, PortError> {
        entries
            .iter()
            .map(|entry| {
                let added = item([("id", s(entry.id())), ("entry", s(entry.to_json())), ("created_at", millis(now))]);
                put(&self.outbox, added, None, Placeholders::default())
            })
            .collect()
    }

    /// Tells the relay of this process that entries were committed.
    pub(crate) fn outbox_committed(&self) {
        self.outbox_added.notify_one();
    }

    /// Every item of the table, a page at a time, until `limit` (if any) is reached.
    async fn scan_outbox(&self, limit: Option<usize>, projection: Option<&str>) -> Result<Vec<Item>, PortError> {
        let mut pages = self
            .client
            .scan()
            .table_name(&self.outbox)
            .consistent_read(true)
            .set_projection_expression(projection.map(str::to_owned))
            .into_paginator()
            .send();
        let mut items = Vec::new();
        while let Some(page) = pages.try_next().await.map_err(|e| port_error("dynamodb.scan(outbox)", &e))? {
            items.extend(page.items.unwrap_or_default());
            if limit.is_some_and(|l| items.len() >= l) {
                break;
            }
        }
        Ok(items)
    }
}

#[async_trait]
impl Outbox for DynamoStore {
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxItem>, PortError> {
        let mut pending = self
            .scan_outbox(Some(limit), None)
            .await?
            .iter()
            .map(|item| {
                let entry = OutboxEntry::parse(get_s(item, "entry")?)
                    .map_err(|e| PortError::Corrupt(format!("outbox entry: {e}")))?;
                Ok(OutboxItem { id: get_s(item, "id")?.to_owned(), created_at: get_millis(item, "created_at")?, entry })
            })
            .collect::<Result<Vec<_>, PortError>>()?;
        pending.sort_by_key(|item| item.created_at);
        pending.truncate(limit);
        Ok(pending)
    }

    async fn delivered(&self, ids: &[String]) -> Result<(), PortError> {
        let deletes = ids
            .iter()
            .map(|id| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(item([("id", s(id.as_str()))])))
                    .build()
                    .map_err(|e| build_error("outbox delete", e))?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<_, PortError>>()?;
        self.write_batch(&self.outbox, deletes).await
    }

    async fn backlog(&self) -> Result<OutboxBacklog, PortError> {
        let items = self.scan_outbox(None, Some("created_at")).await?;
        let oldest = items.iter().filter_map(|item| get_millis(item, "created_at").ok()).min();
        Ok(OutboxBacklog { pending: items.len() as u64, oldest })
    }

    async fn wait(&self, max: Duration) {
        let _ = tokio::time::timeout(max, self.outbox_added.notified()).await;
    }
}
