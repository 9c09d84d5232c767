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

/// Marks `event_id` handled by `consumer`; false if it already was.
pub(super) fn first_time(conn: &rusqlite::Connection, consumer: &str, event_id: &str) -> Result<bool, PortError> {
    let inserted = conn
        .prepare_cached("INSERT OR IGNORE INTO handled_events (consumer, event_id) VALUES (?1, ?2)")
        .map_err(sql_error)?
        .execute(params![consumer, event_id])
        .map_err(sql_error)?;
    Ok(inserted == 1)
}

#[async_trait]
impl NotificationStore for Embedded {
    async fn record_notifications(
        &self,
        event_id: &str,
        notifications: &[Notification],
        events: &[CloudEvent],
    ) -> Result<bool, PortError> {
        let (event_id, notifications, sent) = (event_id.to_owned(), notifications.to_vec(), events.to_vec());
        let first = self
            .db
            .write(move |conn| {
                if !first_time(conn, "notifications", &event_id)? {
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
