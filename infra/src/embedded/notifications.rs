//! Notifications by recipient, with the event ids already handled.

use super::Embedded;
use super::bus;
use super::db::sql_error;
use async_trait::async_trait;
use domain::PortError;
use domain::clock;
use domain::event::{CloudEvent, EventType};
use domain::ids::{NotificationId, UserId};
use domain::notification::Notification;
use domain::ports::NotificationStore;
use rusqlite::params;

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS handled_marks (
    consumer TEXT    NOT NULL,
    at       INTEGER NOT NULL,
    event_id TEXT    NOT NULL,
    PRIMARY KEY (consumer, at, event_id)
) WITHOUT ROWID;

-- Marks by id alone, as versions before handled_marks made them: read, never added to.
CREATE TABLE IF NOT EXISTS handled_events (
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (consumer, event_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS notifications (
    notification_id TEXT PRIMARY KEY,
    recipient       TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_by_recipient ON notifications (recipient, created_at);
"#;

/// Marks the event `event_id`, of time `at`, handled by `consumer`; false if it already was.
///
/// A mark is keyed by the event's time before its id. Event ids are name-based (uuid v5)
/// and so scattered: keyed by id alone, every mark dirtied a page of its own, and those
/// pages were a quarter of what each commit wrote under load. A redelivered event brings
/// the same time and id, so it finds its mark. Marks made before this layout (by id alone,
/// in `handled_events`) are still honoured; nothing adds to that table any more.
pub(super) fn first_time(
    conn: &rusqlite::Connection,
    consumer: &str,
    event_id: &str,
    at: clock::Timestamp,
) -> Result<bool, PortError> {
    let inserted = conn
        .prepare_cached("INSERT OR IGNORE INTO handled_marks (consumer, at, event_id) VALUES (?1, ?2, ?3)")
        .map_err(sql_error)?
        .execute(params![consumer, clock::to_millis(at), event_id])
        .map_err(sql_error)?;
    if inserted == 0 {
        return Ok(false);
    }
    let marked_before = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM handled_events WHERE consumer = ?1 AND event_id = ?2)")
        .map_err(sql_error)?
        .query_row(params![consumer, event_id], |r| r.get::<_, bool>(0))
        .map_err(sql_error)?;
    Ok(!marked_before)
}

#[async_trait]
impl NotificationStore for Embedded {
    async fn record_notifications(
        &self,
        event: &CloudEvent,
        notifications: &[Notification],
        events: &[CloudEvent],
    ) -> Result<bool, PortError> {
        let (event, notifications, sent) = (event.clone(), notifications.to_vec(), events.to_vec());
        let first = self
            .db
            .write(move |conn| {
                if !first_time(conn, "notifications", &event.id, event.time)? {
                    return Ok(false);
                }
                let mut insert = conn
                    .prepare_cached(
                        "INSERT OR IGNORE INTO notifications
                         (notification_id, recipient, subject, body, event_id, event_type, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    .map_err(sql_error)?;
                for n in &notifications {
                    insert
                        .execute(params![
                            n.notification_id.as_str(),
                            n.recipient.as_str(),
                            n.subject,
                            n.body,
                            n.event_id,
                            n.event_type.as_str(),
                            clock::to_millis(n.created_at)
                        ])
                        .map_err(sql_error)?;
                }
                bus::fan_out(conn, &sent, &[], clock::now())?;
                Ok(true)
            })
            .await?;
        if first {
            self.wake_subscribers(events);
        }
        Ok(first)
    }

    async fn notifications_for(&self, recipient: &UserId, limit: usize) -> Result<Vec<Notification>, PortError> {
        let recipient = recipient.to_string();
        self.db
            .read(move |conn| {
                let mut select = conn
                    .prepare_cached(
                        "SELECT notification_id, recipient, subject, body, event_id, event_type, created_at
                         FROM notifications WHERE recipient = ?1
                         ORDER BY created_at DESC, notification_id DESC LIMIT ?2",
                    )
                    .map_err(sql_error)?;
                let rows = select
                    .query_map(params![recipient, limit as i64], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, i64>(6)?,
                        ))
                    })
                    .map_err(sql_error)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql_error)?;
                rows.into_iter()
                    .map(|(id, recipient, subject, body, event_id, event_type, created_at)| {
                        Ok(Notification {
                            notification_id: NotificationId::from(id),
                            recipient: UserId::new(recipient),
                            subject,
                            body,
                            event_id,
                            event_type: EventType::parse(&event_type)
                                .ok_or_else(|| PortError::Corrupt(format!("unknown event type {event_type}")))?,
                            created_at: clock::from_millis(created_at),
                        })
                    })
                    .collect()
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use domain::clock;
    use domain::event::{CloudEvent, EventType};
    use domain::ports::AnalyticsStore;
    use serde_json::json;

    fn hold_placed(subject: &str) -> CloudEvent {
        let data = json!({"show_id": "show_1", "seat_ids": ["A1"], "hold_id": subject, "customer_id": "c"});
        CloudEvent::new(EventType::HoldPlaced, "booking", subject, "req_1", data, clock::now())
    }

    #[tokio::test]
    async fn marks_made_by_id_alone_are_still_honoured() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::open_file(&dir.path().join("usher.db"), 3).unwrap();
        let (old, new) = (hold_placed("hold_old"), hold_placed("hold_new"));
        let id = old.id.clone();
        // A mark as an older Usher left it: in `handled_events`, without a time.
        store
            .db
            .write(move |conn| {
                conn.execute("INSERT INTO handled_events (consumer, event_id) VALUES ('analytics', ?1)", [&id])
                    .map_err(super::sql_error)
            })
            .await
            .unwrap();
        assert_eq!(store.record_events(&[old.clone(), new.clone()]).await.unwrap(), 1, "only the new event counts");
        assert_eq!(store.record_events(&[old, new]).await.unwrap(), 0, "and it counts once");
    }
}
