//! The entries of one SQS or SNS batch call. Such a call answers entry by entry, so the
//! entries that failed on the service's side are sent again, and one refused as the
//! sender's fault ends the call.

use domain::PortError;
use std::future::Future;
use std::time::Duration;

/// How many calls a batch gets before the entries that keep failing are reported
/// unavailable.
const ENTRY_ATTEMPTS: usize = 3;

/// An entry a batch call did not take.
pub(crate) struct FailedEntry {
    /// The entry's id, which is its index in the batch.
    id: String,
    sender_fault: bool,
    code: String,
    message: String,
}

impl FailedEntry {
    pub(crate) fn new(id: &str, sender_fault: bool, code: &str, message: Option<&str>) -> Self {
        Self { id: id.to_owned(), sender_fault, code: code.to_owned(), message: message.unwrap_or("").to_owned() }
    }
}

/// Sends entries `0..count`: `send` makes one call with the entries of the indices it is
/// given (its ids the indices) and returns those that failed. The failed ones are sent
/// again after a short pause; a refusal for the sender's fault is `Invalid`.
pub(crate) async fn send_entries<F, Fut>(op: &'static str, count: usize, mut send: F) -> Result<(), PortError>
where
    F: FnMut(Vec<usize>) -> Fut,
    Fut: Future<Output = Result<Vec<FailedEntry>, PortError>>,
{
    let mut pending: Vec<usize> = (0..count).collect();
    for attempt in 1..=ENTRY_ATTEMPTS {
        let failed = send(pending.clone()).await?;
        if failed.is_empty() {
            return Ok(());
        }
        if let Some(f) = failed.iter().find(|f| f.sender_fault) {
            tracing::error!(op, code = f.code, message = f.message, "batch entry refused");
            return Err(PortError::Invalid(format!("{op} refused an entry: {}", f.code)));
        }
        pending = failed.iter().filter_map(|f| f.id.parse().ok()).collect();
        tracing::warn!(op, failed = pending.len(), attempt, "some entries of a batch failed, sending them again");
        tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
    }
    Err(PortError::Unavailable(format!("{op} kept failing {} entries of a batch", pending.len())))
}
