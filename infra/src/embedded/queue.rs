//! SQS semantics over the `messages` table: a receive hides a message for its visibility
//! timeout and counts the receive; a message received more than the redrive limit moves
//! to its DLQ instead of being delivered.

use super::Embedded;
use super::db::{json_error, sql_error};
use async_trait::async_trait;
use domain::PortError;
use domain::clock::{self, Timestamp};
use domain::ports::MessageQueue;
use domain::queue::{Attributes, OutgoingMessage, QueueAddr, QueueStats, Receipt, ReceivedMessage};
use rusqlite::{Connection, params};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// The longest a message can be delayed, as on SQS, so long holds exercise the same
/// re-delay path on both backends.
pub(super) const MAX_DELAY: Duration = Duration::from_secs(15 * 60);

/// Long polls also re-check this often, for delayed messages coming due and for sends
/// made by other processes sharing the file.
const POLL_EVERY: Duration = Duration::from_millis(100);

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

/// The most messages one receive takes. Not SQS's 10: here a receive, its batch's
/// `processing` marks and its deletes are each one write job, so larger batches spread
/// that fixed cost, and the analytics pool folds a whole batch in one write.
const MAX_RECEIVE: usize = 50;

/// Inserts messages onto a queue; used by sends and by the topic's fan-out.
pub(super) fn enqueue(
    conn: &Connection,
    queue: &str,
    messages: &[OutgoingMessage],
    now: Timestamp,
) -> Result<(), PortError> {
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO messages (queue, message_id, body, attributes, sent_at, visible_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(sql_error)?;
    let now_ms = clock::to_millis(now);
    for m in messages {
        let attributes = domain::to_json_sized(&m.attributes, 256).map_err(json_error)?;
        let visible_at = now_ms + millis(m.delay.min(MAX_DELAY));
        let id = uuid::Uuid::new_v4().to_string();
        insert.execute(params![queue, id, m.body, attributes, now_ms, visible_at]).map_err(sql_error)?;
    }
    Ok(())
}

/// Deletes the message `receipt` names from `queue`, if it is still there: what a delete
/// does, and what a command's own transaction does when it applies the command.
pub(super) fn delete_received(conn: &Connection, queue: &str, receipt: &Receipt) -> Result<(), PortError> {
    conn.prepare_cached("DELETE FROM messages WHERE receipt = ?1 AND queue = ?2")
        .map_err(sql_error)?
        .execute(params![receipt.0, queue])
        .map_err(sql_error)?;
    Ok(())
}

/// Wakes this process's receivers of one queue when sends commit: one receiver per burst
/// of sends, not every idle one. Woken all at once, each probed the queue and most then
/// asked the writer for messages the first had already taken (80% of receive writes came
/// back empty: docs/benchmarks-log.md, run X's section).
#[derive(Default)]
pub(super) struct Arrival {
    wake: Notify,
    /// Set by a send, cleared by the receiver that looks next: while it is set, a wake is
    /// already on its way for every send since.
    pending: AtomicBool,
}

impl Arrival {
    /// A send committed. `notify_one` keeps the wake for the next receiver to wait if none
    /// is waiting now, so a send between a receiver's look and its wait is not missed.
    fn signal(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    /// A receiver is about to look: sends from now on need a new wake. A swap, not a
    /// store: reading the flag a send set orders that send's commit before this look.
    fn looking(&self) {
        self.pending.swap(false, Ordering::AcqRel);
    }
}

impl Embedded {
    pub(super) fn notify(&self, queue: &str) {
        if let Some(arrival) = self.arrivals.get(queue) {
            arrival.signal();
        }
    }

    async fn receive_now(
        &self,
        queue: QueueAddr,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, PortError> {
        let name = queue.name();
        // An empty queue is seen on a reader, so idle receivers never queue for the writer.
        // One probe of the visibility index: read on this thread (see `Db::read_now`).
        let any = self.db.read_now(|conn| {
            conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM messages WHERE queue = ?1 AND visible_at <= ?2)")
                .map_err(sql_error)?
                .query_row(params![name, clock::to_millis(clock::now())], |r| r.get::<_, bool>(0))
                .map_err(sql_error)
        })?;
        if !any {
            return Ok(Vec::new());
        }
        let dlq = (!queue.dead).then(|| queue.queue.dlq().name());
        let redrive_after = self.redrive_after;
        // A receive that a crash undoes only leaves its messages visible: no need to wait
        // for the sync.
        let moved_to_dlq = self
            .db
            .write_unsynced(move |conn| {
                let now = clock::to_millis(clock::now());
                let mut select = conn
                    .prepare_cached(
                        "SELECT seq, message_id, body, attributes, sent_at, receive_count
                         FROM messages WHERE queue = ?1 AND visible_at <= ?2
                         ORDER BY visible_at, seq LIMIT ?3",
                    )
                    .map_err(sql_error)?;
                let rows = select
                    .query_map(params![name, now, max as i64], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, u32>(5)?,
                        ))
                    })
                    .map_err(sql_error)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql_error)?;
                let mut received = Vec::with_capacity(rows.len());
                let mut moved = false;
                for (seq, message_id, body, attributes, sent_at, count) in rows {
                    if let (Some(dlq), true) = (&dlq, count >= redrive_after) {
                        conn.prepare_cached(
                            "UPDATE messages SET queue = ?2, visible_at = ?3, receive_count = 0, receipt = NULL
                             WHERE seq = ?1",
                        )
                        .and_then(|mut update| update.execute(params![seq, dlq, now]))
                        .map_err(sql_error)?;
                        moved = true;
                        continue;
                    }
                    // Time-ordered, so the receipt index grows at its end instead of
                    // dirtying a random page for every receive (6-14% more holds/s).
                    let receipt = uuid::Uuid::now_v7().simple().to_string();
                    conn.prepare_cached(
                        "UPDATE messages SET receive_count = receive_count + 1, visible_at = ?2, receipt = ?3
                         WHERE seq = ?1",
                    )
                    .and_then(|mut update| update.execute(params![seq, now + millis(visibility), receipt]))
                    .map_err(sql_error)?;
                    received.push((message_id, receipt, body, attributes, count + 1, sent_at));
                }
                Ok((received, moved))
            })
            .await?;
        let (received, moved) = moved_to_dlq;
        if moved {
            self.notify(&queue.queue.dlq().name());
        }
        // Parsed here, not on the writer thread.
        received
            .into_iter()
            .map(|(message_id, receipt, body, attributes, receive_count, sent_at)| {
                Ok(ReceivedMessage {
                    message_id,
                    receipt: Receipt(receipt),
                    body,
                    attributes: serde_json::from_str::<Attributes>(&attributes).map_err(json_error)?,
                    receive_count,
                    sent_at: clock::from_millis(sent_at),
                })
            })
            .collect()
    }
}

#[async_trait]
impl MessageQueue for Embedded {
    fn max_delay(&self) -> Duration {
        MAX_DELAY
    }

    fn max_batch(&self) -> usize {
        MAX_RECEIVE
    }

    async fn send_batch(&self, queue: QueueAddr, messages: Vec<OutgoingMessage>) -> Result<(), PortError> {
        if messages.is_empty() {
            return Ok(());
        }
        let name = queue.name();
        let target = name.clone();
        self.db.write(move |conn| enqueue(conn, &target, &messages, clock::now())).await?;
        self.notify(&name);
        Ok(())
    }

    async fn receive(
        &self,
        queue: QueueAddr,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, PortError> {
        let max = max.clamp(1, MAX_RECEIVE);
        let deadline = tokio::time::Instant::now() + wait;
        // Every queue has one; a queue without would only be polled (nothing signals it).
        let arrival = self.arrivals.get(&queue.name()).cloned().unwrap_or_default();
        loop {
            arrival.looking();
            let received = self.receive_now(queue, max, visibility).await?;
            if received.len() >= max {
                // There may be more: pass the wake on to another idle receiver.
                arrival.signal();
            }
            let now = tokio::time::Instant::now();
            if !received.is_empty() || now >= deadline {
                return Ok(received);
            }
            let nap = (deadline - now).min(POLL_EVERY);
            let _ = tokio::time::timeout(nap, arrival.wake.notified()).await;
        }
    }

    async fn delete_batch(&self, queue: QueueAddr, receipts: Vec<Receipt>) -> Result<(), PortError> {
        if receipts.is_empty() {
            return Ok(());
        }
        let name = queue.name();
        // Deletes only handled messages, after their effects were synced: a crash that
        // undoes the delete redelivers a message whose redo changes nothing. A command's
        // message is usually gone already, deleted with its effects (see `write_completion`).
        self.db.write_unsynced(move |conn| receipts.iter().try_for_each(|r| delete_received(conn, &name, r))).await
    }

    async fn change_visibility(&self, queue: QueueAddr, receipt: &Receipt, timeout: Duration) -> Result<(), PortError> {
        let name = queue.name();
        let receipt = receipt.0.clone();
        // Undone by a crash, the message is only visible sooner.
        self.db
            .write_unsynced(move |conn| {
                let visible_at = clock::to_millis(clock::now()) + millis(timeout);
                conn.execute(
                    "UPDATE messages SET visible_at = ?1 WHERE receipt = ?2 AND queue = ?3",
                    params![visible_at, receipt, name],
                )
                .map_err(sql_error)?;
                Ok(())
            })
            .await?;
        if timeout.is_zero() {
            self.notify(&queue.name());
        }
        Ok(())
    }

    async fn depth(&self, queue: QueueAddr) -> Result<u64, PortError> {
        let name = queue.name();
        self.db
            .read(move |conn| {
                conn.query_row("SELECT COUNT(*) FROM messages WHERE queue = ?1", [name], |r| r.get::<_, i64>(0))
                    .map(|n| n as u64)
                    .map_err(sql_error)
            })
            .await
    }

    /// A message waits since it became deliverable: its `visible_at` until first received
    /// (which covers a delay), its send time after. Counted from the indexes alone, never
    /// from the rows of delayed messages: a hold's expiry waits on `booking-commands` for
    /// the hold's whole life, so under load the queue holds hundreds of thousands of
    /// them, and reading each row (body and all) on every sample was most of the cost of
    /// `usher status` and of the gauges. Received messages, the only ones with a receipt,
    /// come from the small receipt index.
    async fn stats(&self, queue: QueueAddr) -> Result<QueueStats, PortError> {
        let name = queue.name();
        self.db
            .read(move |conn| {
                let now = clock::to_millis(clock::now());
                let (visible, hidden, in_flight, received_since, visible_since) = conn
                    .prepare_cached(
                        "SELECT
                           (SELECT COUNT(*) FROM messages WHERE queue = ?1 AND visible_at <= ?2),
                           (SELECT COUNT(*) FROM messages WHERE queue = ?1 AND visible_at > ?2),
                           (SELECT COUNT(*) FROM messages INDEXED BY messages_by_receipt
                              WHERE receipt IS NOT NULL AND queue = ?1 AND visible_at > ?2),
                           (SELECT MIN(sent_at) FROM messages INDEXED BY messages_by_receipt
                              WHERE receipt IS NOT NULL AND queue = ?1),
                           (SELECT visible_at FROM messages
                              WHERE queue = ?1 AND visible_at <= ?2 AND receipt IS NULL
                              ORDER BY visible_at LIMIT 1)",
                    )
                    .map_err(sql_error)?
                    .query_row(params![name, now], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, Option<i64>>(3)?,
                            r.get::<_, Option<i64>>(4)?,
                        ))
                    })
                    .map_err(sql_error)?;
                let waiting_since = [received_since, visible_since].into_iter().flatten().min();
                Ok(QueueStats {
                    visible: visible as u64,
                    in_flight: in_flight as u64,
                    delayed: (hidden - in_flight).max(0) as u64,
                    oldest_age: waiting_since.map(|t| Duration::from_millis((now - t).max(0) as u64)),
                })
            })
            .await
    }

    async fn purge(&self, queue: QueueAddr) -> Result<(), PortError> {
        let name = queue.name();
        self.db
            .write(move |conn| {
                conn.execute("DELETE FROM messages WHERE queue = ?1", [&name]).map_err(sql_error)?;
                Ok(())
            })
            .await
    }

    async fn ping(&self) -> Result<(), PortError> {
        self.db.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(sql_error)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::queue::Queue;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn a_burst_of_sends_wakes_one_waiting_receiver_and_a_send_after_its_look_another() {
        let arrival = Arc::new(Arrival::default());
        let woken = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let (arrival, woken) = (Arc::clone(&arrival), Arc::clone(&woken));
                tokio::spawn(async move {
                    arrival.wake.notified().await;
                    woken.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        let settle = || tokio::time::sleep(Duration::from_millis(50));
        settle().await;
        for _ in 0..3 {
            arrival.signal();
        }
        settle().await;
        assert_eq!(woken.load(Ordering::SeqCst), 1, "one wake for the burst, not one per send");
        arrival.looking();
        arrival.signal();
        settle().await;
        assert_eq!(woken.load(Ordering::SeqCst), 2, "a send after the receiver looked wakes another");
        waiters.iter().for_each(tokio::task::JoinHandle::abort);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn receivers_waiting_on_a_queue_share_a_burst_bigger_than_a_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::open_file(&dir.path().join("usher.db"), 3).unwrap();
        let queue = Queue::BookingCommands.source();
        let receivers: Vec<_> = (0..2)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store.receive(queue, MAX_RECEIVE, Duration::from_secs(10), Duration::from_secs(30)).await.unwrap()
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let burst: Vec<OutgoingMessage> =
            (0..2 * MAX_RECEIVE).map(|i| OutgoingMessage::new(format!("m{i}"), Attributes::new())).collect();
        store.send_batch(queue, burst).await.unwrap();
        let mut bodies = Vec::new();
        for receiver in receivers {
            let got = tokio::time::timeout(Duration::from_secs(5), receiver).await.expect("woken").unwrap();
            assert_eq!(got.len(), MAX_RECEIVE, "each takes a full batch");
            bodies.extend(got.into_iter().map(|m| m.body));
        }
        bodies.sort();
        bodies.dedup();
        assert_eq!(bodies.len(), 2 * MAX_RECEIVE, "every message once");
    }
}
