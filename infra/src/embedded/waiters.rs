//! Long polls on status documents: a waiter registers under its request id before it
//! reads, and the write that completes that request wakes it once it has committed, so
//! a status answers the moment it changes instead of on the next poll.

use super::Embedded;
use super::db::Db;
use super::queue::delete_received;
use super::requests::{Progress, progress};
use domain::PortError;
use domain::ids::RequestId;
use domain::ports::Completion;
use domain::request::{Delivery, RequestRecord, StatusDoc};
use rusqlite::Connection;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The longest a waiter sleeps without a wake-up before it reads again: a safety net for
/// a completion written by another process on the same file.
const RECHECK: Duration = Duration::from_secs(1);

/// The requests someone is waiting on in this process.
#[derive(Debug, Default)]
pub(super) struct Waiters(Mutex<HashMap<RequestId, Arc<Notify>>>);

impl Waiters {
    fn register(&self, id: &RequestId) -> Arc<Notify> {
        let mut map = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.entry(id.clone()).or_default().clone()
    }

    /// Drops the registration once its last waiter is gone.
    fn unregister(&self, id: &RequestId, notify: Arc<Notify>) {
        let mut map = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Ours and the map's: nobody else waits on it.
        if Arc::strong_count(&notify) <= 2 {
            map.remove(id);
        }
    }

    /// Wakes whoever waits on `id`. Call it after the commit, never inside the job.
    pub(super) fn wake(&self, id: &RequestId) {
        let map = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(notify) = map.get(id) {
            notify.notify_waiters();
        }
    }
}

impl Embedded {
    /// A write job that completes request `request_id`, with the request's waiters, and
    /// the receivers of the queues its events went onto, woken once it has committed.
    ///
    /// The job reads the request once: already terminal, it answers what the first run
    /// committed; still open, `f` applies the command and completes the open status
    /// document it is given (with [`complete_open`]). The command's message (`delivery`)
    /// is deleted in the same transaction either way.
    pub(super) async fn write_completion<F>(
        &self,
        request_id: RequestId,
        delivery: Option<Delivery>,
        mut f: F,
    ) -> Result<Completion, PortError>
    where
        F: FnMut(&Connection, StatusDoc) -> Result<Completion, PortError> + Send + 'static,
    {
        let delivered = delivery.map(|d| (d.queue.name(), d.receipt));
        let completion = self
            .db
            .write(move |conn| {
                let mut completion = match progress(conn, &request_id)? {
                    Progress::Open(doc) => f(conn, doc)?,
                    Progress::Ended(done) => done,
                };
                if let Some((queue, receipt)) = &delivered {
                    delete_received(conn, queue, receipt)?;
                    completion.acknowledged = true;
                }
                Ok(completion)
            })
            .await?;
        if completion.first {
            self.wake_subscribers(&completion.events);
        }
        self.waiters.wake(&completion.doc.request_id);
        Ok(completion)
    }

    pub(super) async fn wait_terminal_in(
        &self,
        request_id: &RequestId,
        wait: Duration,
    ) -> Result<Option<RequestRecord>, PortError> {
        let deadline = Instant::now() + wait;
        let notify = self.waiters.register(request_id);
        let result = wait_on(&self.db, &notify, request_id, deadline).await;
        self.waiters.unregister(request_id, notify);
        result
    }
}

async fn wait_on(
    db: &Arc<Db>,
    notify: &Notify,
    request_id: &RequestId,
    deadline: Instant,
) -> Result<Option<RequestRecord>, PortError> {
    loop {
        // Listen before reading, so a commit between the read and the wait still wakes us.
        let woken = notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let id = request_id.clone();
        let record = db.read(move |conn| super::requests::load_record(conn, &id)).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        match &record {
            Some(r) if !r.doc.status.is_terminal() && !left.is_zero() => {}
            _ => return Ok(record),
        }
        tokio::select! {
            () = &mut woken => {}
            () = tokio::time::sleep(left.min(RECHECK)) => {}
        }
    }
}
