//! Idempotency records and status documents. `write_completion` reads a request with
//! `progress`, and the booking and ticket stores complete it with `complete_open`, so that
//! a command's effects and its status commit in one transaction that reads it once.

use super::Embedded;
use super::bus;
use super::db::{json_error, sql_error};
use async_trait::async_trait;
use domain::PortError;
use domain::clock::{self, Timestamp};
use domain::command::CommandEnvelope;
use domain::error::BusinessError;
use domain::event::CloudEvent;
use domain::idempotency::IdempotencyKey;
use domain::ids::{RequestId, UserId};
use domain::outbox::Decision;
use domain::ports::{Abandoned, Admission, Admitted, Completion, RequestStore, StoredResponse, Stranded};
use domain::request::{RequestRecord, RequestStatus, StatusDoc};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// A request's row, as [`record_from`] reads it. A constant, not formatted on each call:
/// the writer reads a request in every command's transaction.
const LOAD_RECORD: &str = "SELECT request_id, owner, kind, status, result, error, created_at, updated_at, events
                           FROM requests WHERE request_id = ?1";

fn record_from(row: &Row<'_>) -> rusqlite::Result<(RequestRecord, String)> {
    let status: String = row.get(3)?;
    let result: Option<String> = row.get(4)?;
    let error: Option<String> = row.get(5)?;
    let parse =
        |col: usize, e: String| rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, e.into());
    let doc = StatusDoc {
        request_id: RequestId::from(row.get::<_, String>(0)?),
        kind: row.get(2)?,
        status: RequestStatus::parse(&status).ok_or_else(|| parse(3, format!("unknown status {status}")))?,
        result: result.map(|r| serde_json::from_str(&r)).transpose().map_err(|e| parse(4, e.to_string()))?,
        error: error
            .map(|e| serde_json::from_str::<BusinessError>(&e))
            .transpose()
            .map_err(|e| parse(5, e.to_string()))?,
        created_at: clock::from_millis(row.get(6)?),
        updated_at: clock::from_millis(row.get(7)?),
    };
    Ok((RequestRecord { owner: UserId::new(row.get::<_, String>(1)?), doc }, row.get(8)?))
}

fn load(conn: &Connection, request_id: &RequestId) -> Result<Option<(RequestRecord, String)>, PortError> {
    conn.prepare_cached(LOAD_RECORD)
        .map_err(sql_error)?
        .query_row([request_id.as_str()], record_from)
        .optional()
        .map_err(sql_error)
}

/// The status document and owner of a request, for a reader.
pub(super) fn load_record(conn: &Connection, request_id: &RequestId) -> Result<Option<RequestRecord>, PortError> {
    Ok(load(conn, request_id)?.map(|(record, _)| record))
}

/// Where a request stands, read in the transaction that is to complete it.
pub(super) enum Progress {
    /// Not terminal yet: its status document, for [`complete_open`].
    Open(StatusDoc),
    /// Already terminal: what the first run committed.
    Ended(Completion),
}

/// Reads the request once, for [`complete_open`] or as the first run's outcome.
pub(super) fn progress(conn: &Connection, request_id: &RequestId) -> Result<Progress, PortError> {
    let Some((record, events)) = load(conn, request_id)? else {
        return Err(PortError::Corrupt(format!("request {request_id} has no status document")));
    };
    if !record.doc.status.is_terminal() {
        return Ok(Progress::Open(record.doc));
    }
    let events: Vec<CloudEvent> = serde_json::from_str(&events).map_err(json_error)?;
    Ok(Progress::Ended(Completion { doc: record.doc, events, first: false, acknowledged: false }))
}

/// Commits the terminal outcome of a request that [`progress`] found open in this same
/// transaction, with its events and messages onto their queues.
pub(super) fn complete_open(
    conn: &Connection,
    open: StatusDoc,
    decision: Decision,
    now: Timestamp,
) -> Result<Completion, PortError> {
    let doc = open.completed(&decision.outcome, now);
    let result = doc.result.as_ref().map(serde_json::to_string).transpose().map_err(json_error)?;
    let error = doc.error.as_ref().map(serde_json::to_string).transpose().map_err(json_error)?;
    let stored = bus::fan_out(conn, &decision.events, &decision.messages, now)?;
    conn.prepare_cached(
        "UPDATE requests SET status = ?2, result = ?3, error = ?4, events = ?5, updated_at = ?6
         WHERE request_id = ?1",
    )
    .map_err(sql_error)?
    .execute(params![doc.request_id.as_str(), doc.status.as_str(), result, error, stored, clock::to_millis(now)])
    .map_err(sql_error)?;
    Ok(Completion { doc, events: decision.events, first: true, acknowledged: false })
}

#[async_trait]
impl RequestStore for Embedded {
    async fn admit(&self, a: Admission) -> Result<Admitted, PortError> {
        // Everything the row needs is built here, so the writer thread only runs SQL. The
        // row keeps the command only until it is queued, for the sweep: a command queued in
        // this same transaction leaves it empty, and the row a quarter smaller.
        let queue = a.command.command.queue().source();
        let message = a.queue_with_claim.then(|| a.command.message());
        let command = if message.is_some() { String::new() } else { a.command.to_json() };
        let admitted = self
            .db
            .write(move |conn| {
                let now = clock::to_millis(a.doc.created_at);
                let existing = conn
                    .prepare_cached(
                        "SELECT k.fingerprint, k.response_status, k.response_body, r.queued, r.command, r.created_at
                         FROM idempotency_keys k LEFT JOIN requests r ON r.request_id = k.request_id
                         WHERE k.owner = ?1 AND k.key = ?2 AND k.expires_at > ?3",
                    )
                    .map_err(sql_error)?
                    .query_row(params![a.owner.as_str(), a.key.as_str(), now], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, u16>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Option<bool>>(3)?,
                            r.get::<_, Option<String>>(4)?,
                            r.get::<_, Option<i64>>(5)?,
                        ))
                    })
                    .optional()
                    .map_err(sql_error)?;
                if let Some((fingerprint, status, body, queued, command, claimed_at)) = existing {
                    if fingerprint != a.fingerprint.as_str() {
                        return Ok(Admitted::KeyReused);
                    }
                    let response = StoredResponse { status, body };
                    return match (queued, command, claimed_at) {
                        (Some(false), Some(command), Some(claimed_at)) => Ok(Admitted::Unqueued {
                            response,
                            command: CommandEnvelope::parse(&command).map_err(json_error)?,
                            claimed_at: clock::from_millis(claimed_at),
                        }),
                        _ => Ok(Admitted::Replay(response)),
                    };
                }
                let doc = &a.doc;
                conn.prepare_cached(
                    "INSERT INTO requests (request_id, owner, kind, status, command, queued, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                )
                .map_err(sql_error)?
                .execute(params![
                    doc.request_id.as_str(),
                    a.owner.as_str(),
                    doc.kind,
                    doc.status.as_str(),
                    command,
                    message.is_some(),
                    now
                ])
                .map_err(sql_error)?;
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO idempotency_keys
                     (owner, key, fingerprint, request_id, response_status, response_body, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(sql_error)?
                .execute(params![
                    a.owner.as_str(),
                    a.key.as_str(),
                    a.fingerprint.as_str(),
                    doc.request_id.as_str(),
                    a.response.status,
                    a.response.body,
                    clock::to_millis(a.key_expires_at)
                ])
                .map_err(sql_error)?;
                match &message {
                    Some(message) => {
                        super::queue::enqueue(conn, &queue.name(), std::slice::from_ref(message), a.doc.created_at)?;
                        Ok(Admitted::Queued)
                    }
                    None => Ok(Admitted::Claimed),
                }
            })
            .await?;
        if matches!(admitted, Admitted::Queued) {
            self.notify(&queue.name());
        }
        Ok(admitted)
    }

    async fn mark_queued(&self, request_ids: &[RequestId]) -> Result<(), PortError> {
        let ids: Vec<String> = request_ids.iter().map(|r| r.to_string()).collect();
        self.db
            .write(move |conn| {
                let mut update = conn
                    .prepare_cached("UPDATE requests SET queued = 1, command = '' WHERE request_id = ?1")
                    .map_err(sql_error)?;
                for id in &ids {
                    update.execute([id]).map_err(sql_error)?;
                }
                Ok(())
            })
            .await
    }

    async fn abandon(
        &self,
        owner: &UserId,
        key: &IdempotencyKey,
        request_id: &RequestId,
        claimed_after: Timestamp,
    ) -> Result<Abandoned, PortError> {
        let (owner, key, id) = (owner.to_string(), key.to_string(), request_id.to_string());
        self.db
            .write(move |conn| {
                let gone = conn
                    .execute(
                        "DELETE FROM requests WHERE request_id = ?1 AND queued = 0 AND created_at > ?2",
                        params![id, clock::to_millis(claimed_after)],
                    )
                    .map_err(sql_error)?;
                let stored = conn
                    .query_row(
                        "SELECT response_status, response_body FROM idempotency_keys
                         WHERE owner = ?1 AND key = ?2 AND request_id = ?3",
                        params![owner, key, id],
                        |r| Ok(StoredResponse { status: r.get(0)?, body: r.get(1)? }),
                    )
                    .optional()
                    .map_err(sql_error)?;
                if gone == 0 {
                    return stored
                        .map(Abandoned::Kept)
                        .ok_or_else(|| PortError::Corrupt(format!("request {id} lost its idempotency key")));
                }
                conn.execute(
                    "DELETE FROM idempotency_keys WHERE owner = ?1 AND key = ?2 AND request_id = ?3",
                    params![owner, key, id],
                )
                .map_err(sql_error)?;
                Ok(Abandoned::Freed)
            })
            .await
    }

    async fn get(&self, request_id: &RequestId) -> Result<Option<RequestRecord>, PortError> {
        let id = request_id.clone();
        self.db.read(move |conn| load_record(conn, &id)).await
    }

    async fn wait_terminal(
        &self,
        request_id: &RequestId,
        wait: std::time::Duration,
    ) -> Result<Option<RequestRecord>, PortError> {
        self.wait_terminal_in(request_id, wait).await
    }

    async fn mark_processing(&self, request_ids: &[RequestId], now: Timestamp) -> Result<(), PortError> {
        let ids: Vec<String> = request_ids.iter().map(|r| r.to_string()).collect();
        // Informational: a crash that undoes it leaves the request `accepted`, as it was.
        self.db
            .write_unsynced(move |conn| {
                let mut update = conn
                    .prepare_cached(
                        "UPDATE requests SET status = 'processing', updated_at = ?2
                         WHERE request_id = ?1 AND status = 'accepted'",
                    )
                    .map_err(sql_error)?;
                for id in &ids {
                    update.execute(params![id, clock::to_millis(now)]).map_err(sql_error)?;
                }
                Ok(())
            })
            .await
    }

    async fn complete(
        &self,
        request_id: &RequestId,
        decision: Decision,
        now: Timestamp,
    ) -> Result<Completion, PortError> {
        self.write_completion(request_id.clone(), None, move |conn, open| {
            complete_open(conn, open, decision.clone(), now)
        })
        .await
    }

    async fn reopen(&self, request_id: &RequestId, now: Timestamp) -> Result<bool, PortError> {
        let id = request_id.to_string();
        self.db
            .write(move |conn| {
                let n = conn
                    .execute(
                        "UPDATE requests SET status = 'accepted', result = NULL, error = NULL, updated_at = ?2
                         WHERE request_id = ?1 AND status = 'dead_lettered'",
                        params![id, clock::to_millis(now)],
                    )
                    .map_err(sql_error)?;
                Ok(n > 0)
            })
            .await
    }

    async fn unqueued(&self, claimed_before: Timestamp, limit: usize) -> Result<Vec<Stranded>, PortError> {
        self.db
            .read(move |conn| {
                let mut select = conn
                    .prepare_cached(
                        "SELECT request_id, kind, command FROM requests
                         WHERE queued = 0 AND created_at < ?1 AND status IN ('accepted', 'processing')
                         ORDER BY created_at LIMIT ?2",
                    )
                    .map_err(sql_error)?;
                let rows = select
                    .query_map(params![clock::to_millis(claimed_before), limit as i64], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                    })
                    .map_err(sql_error)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql_error)?;
                Ok(rows
                    .into_iter()
                    .map(|(request_id, kind, command)| Stranded {
                        request_id: RequestId::from(request_id),
                        kind,
                        command: CommandEnvelope::parse(&command).map_err(|e| e.to_string()),
                    })
                    .collect())
            })
            .await
    }

    async fn purge_expired_keys(&self, now: Timestamp) -> Result<u64, PortError> {
        self.db
            .write(move |conn| {
                conn.execute("DELETE FROM idempotency_keys WHERE expires_at <= ?1", [clock::to_millis(now)])
                    .map(|n| n as u64)
                    .map_err(sql_error)
            })
            .await
    }

    async fn ping(&self) -> Result<(), PortError> {
        self.db.ping_writer().await
    }
}
