//! The outbox table. On embedded a command's events and messages go onto their queues in
//! the command's own transaction (see `bus::fan_out`), so nothing new lands here; the
//! table and the port remain so that the relay delivers what an older version of Usher
//! left pending in the file, and `usher status` shows that backlog.

use super::Embedded;
use super::db::{json_error, sql_error};
use async_trait::async_trait;
use domain::PortError;
use domain::clock;
use domain::outbox::{OutboxBacklog, OutboxEntry, OutboxItem};
use domain::ports::Outbox;
use rusqlite::OptionalExtension;
use std::time::Duration;

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    entry      TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
"#;

#[async_trait]
impl Outbox for Embedded {
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxItem>, PortError> {
        self.db
            .read(move |conn| {
                let mut select = conn
                    .prepare_cached("SELECT id, entry, created_at FROM outbox ORDER BY seq LIMIT ?1")
                    .map_err(sql_error)?;
                let rows = select
                    .query_map([limit as i64], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
                    })
                    .map_err(sql_error)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql_error)?;
                rows.into_iter()
                    .map(|(id, entry, created_at)| {
                        let entry = OutboxEntry::parse(&entry).map_err(json_error)?;
                        Ok(OutboxItem { id, created_at: clock::from_millis(created_at), entry })
                    })
                    .collect()
            })
            .await
    }

    async fn delivered(&self, ids: &[String]) -> Result<(), PortError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = ids.to_vec();
        self.db
            .write(move |conn| {
                let mut delete = conn.prepare_cached("DELETE FROM outbox WHERE id = ?1").map_err(sql_error)?;
                for id in &ids {
                    delete.execute([id]).map_err(sql_error)?;
                }
                Ok(())
            })
            .await
    }

    async fn backlog(&self) -> Result<OutboxBacklog, PortError> {
        self.db
            .read(|conn| {
                let (pending, oldest) = conn
                    .query_row("SELECT COUNT(*), MIN(created_at) FROM outbox", [], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
                    })
                    .optional()
                    .map_err(sql_error)?
                    .unwrap_or((0, None));
                Ok(OutboxBacklog { pending: pending.max(0) as u64, oldest: oldest.map(clock::from_millis) })
            })
            .await
    }

    async fn wait(&self, max: Duration) {
        // Nothing is added to this outbox any more: only the nap is left.
        tokio::time::sleep(max).await;
    }
}
