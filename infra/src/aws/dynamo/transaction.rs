//! One `TransactWriteItems`: the items it writes, each named by a [`Slot`] when its
//! cancellation reason matters, how a cancellation is read back, and the
//! read–decide–commit rounds ([`retrying`]) every store runs around it.

use super::DynamoStore;
use super::item::{Item, Placeholders};
use crate::aws::error::{build_error, port_error};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use domain::PortError;
use std::future::Future;
use std::time::Duration;

/// DynamoDB's limit on the items of one transaction.
pub(crate) const MAX_TRANSACTION_ITEMS: usize = 100;
/// How many read–decide–commit rounds a call may lose before it reports contention and
/// the worker retries it later.
pub(crate) const ATTEMPTS: usize = 5;

/// The items of one transaction. [`Transaction::add`] names each item by a [`Slot`], and
/// a cancellation is asked about that slot, so how a transaction is built and how its
/// reasons are read never depend on counting positions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Transaction {
    items: Vec<TransactWriteItem>,
}

/// One item of a [`Transaction`], to ask a [`Cancelled`] of that transaction about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot(usize);

impl Transaction {
    pub(crate) fn add(&mut self, item: TransactWriteItem) -> Slot {
        self.items.push(item);
        Slot(self.items.len() - 1)
    }

    /// Items whose cancellation reasons nobody asks about.
    pub(crate) fn extend(&mut self, items: impl IntoIterator<Item = TransactWriteItem>) {
        self.items.extend(items);
    }
}

impl From<Vec<TransactWriteItem>> for Transaction {
    fn from(items: Vec<TransactWriteItem>) -> Self {
        Self { items }
    }
}

/// Why a transaction did not commit, item by item (`None`: that item was fine).
#[derive(Debug)]
pub(crate) struct Cancelled {
    reasons: Vec<Option<String>>,
    /// The items whose condition failed, as they were (`ReturnValuesOnConditionCheckFailure`).
    items: Vec<Option<Item>>,
}

impl Cancelled {
    /// Whether the condition of this item failed.
    pub(crate) fn failed(&self, slot: Slot) -> bool {
        self.reasons.get(slot.0).is_some_and(|r| r.as_deref() == Some("ConditionalCheckFailed"))
    }

    /// This item as it stood when its condition failed, if DynamoDB said.
    pub(crate) fn old_item(&self, slot: Slot) -> Option<&Item> {
        self.items.get(slot.0).and_then(Option::as_ref)
    }
}

/// A put, under `condition` (its placeholders in `p`) if there is one.
pub(crate) fn put(
    table: &str,
    item: Item,
    condition: Option<&str>,
    p: Placeholders,
) -> Result<TransactWriteItem, PortError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_owned))
        .set_expression_attribute_names(p.name_map())
        .set_expression_attribute_values(p.value_map())
        .build()
        .map_err(|e| build_error("transaction put", e))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A put that creates an item, on condition that none with its key exists.
pub(crate) fn create(table: &str, item: Item, key_attr: &str) -> Result<TransactWriteItem, PortError> {
    put(table, item, Some(&format!("attribute_not_exists(#{key_attr})")), Placeholders::names(&[key_attr]))
}

/// An update of the item at `key`, under `condition` if there is one.
pub(crate) fn update(
    table: &str,
    key: Item,
    expression: &str,
    condition: Option<&str>,
    p: Placeholders,
) -> Result<TransactWriteItem, PortError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key))
        .update_expression(expression)
        .set_condition_expression(condition.map(str::to_owned))
        .set_expression_attribute_names(p.name_map())
        .set_expression_attribute_values(p.value_map())
        .build()
        .map_err(|e| build_error("transaction update", e))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// Asks DynamoDB to return the item as it was when its condition failed.
pub(crate) fn all_old() -> ReturnValuesOnConditionCheckFailure {
    ReturnValuesOnConditionCheckFailure::AllOld
}

impl DynamoStore {
    /// Runs one transaction. `Ok(Err(_))` is a cancellation where every failed item is a
    /// condition check: the caller reads it as an outcome. Conflicts with another
    /// transaction and throttling are contention (retried later); anything else an error.
    pub(crate) async fn transact(&self, op: &'static str, tx: Transaction) -> Result<Result<(), Cancelled>, PortError> {
        let items = tx.items;
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
        let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = err.as_service_error() else {
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
}

/// What one read–decide–commit round came to.
pub(crate) enum Step<T> {
    /// Committed, or found nothing (more) to commit.
    Done(T),
    /// Lost a race: something it read changed before its commit (why, for the log).
    Again(&'static str),
}

/// Runs `round` (read, decide, commit) until it is done. A lost round — one that says
/// [`Step::Again`], or a transaction conflict or throttling (`Contention`) — is run again
/// after a short jittered pause, since the next read shows what changed; after
/// `attempts` lost rounds the call reports `Contention` and the worker retries the
/// message later. Any other error ends it at once.
pub(crate) async fn retrying<T, F, Fut>(op: &'static str, attempts: usize, mut round: F) -> Result<T, PortError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Step<T>, PortError>>,
{
    let mut why = String::new();
    for attempt in 1..=attempts {
        if attempt > 1 {
            tokio::time::sleep(conflict_pause(attempt - 1)).await;
        }
        why = match round().await {
            Ok(Step::Done(done)) => return Ok(done),
            Ok(Step::Again(why)) => why.to_owned(),
            Err(PortError::Contention(why)) => why,
            Err(e) => return Err(e),
        };
        tracing::debug!(op, attempt, why, "lost a race; deciding again");
    }
    Err(PortError::Contention(format!("{op}: lost {attempts} races in a row; last: {why}")))
}

/// A short, jittered pause before retrying a transaction that lost to another.
fn conflict_pause(attempt: usize) -> Duration {
    let ceiling = 20u64 << attempt.min(4);
    Duration::from_millis(5 + jitter(ceiling))
}

/// A jitter source without another dependency: the low bits of a fresh uuid v4.
fn jitter(below: u64) -> u64 {
    (uuid::Uuid::new_v4().as_u128() as u64) % below.max(1)
}
