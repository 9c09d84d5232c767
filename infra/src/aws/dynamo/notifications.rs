//! Notifications by recipient, newest first, and the marks of events a downstream
//! consumer has handled: a mark is put, on condition that it is new, in the same
//! transaction as the event's effects, so a redelivered event changes nothing.

use super::item::{Item, Placeholders, get_millis, get_s, item, millis, n, s};
use super::tables::TTL_ATTRIBUTE;
use super::transaction::{ATTEMPTS, Step, Transaction, create, put, retrying};
use super::{DynamoStore, PartitionQuery};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::TransactWriteItem;
use domain::PortError;
use domain::clock::{self, Timestamp};
use domain::event::CloudEvent;
use domain::event::EventType;
use domain::ids::{NotificationId, UserId};
use domain::notification::Notification;
use domain::outbox::outbox_entries;
use domain::ports::NotificationStore;
use std::collections::HashSet;
use time::Duration as TimeDuration;

/// The consumer names in the handled-events table, as in the embedded store.
pub(super) const NOTIFICATIONS: &str = "notifications";
pub(super) const ANALYTICS: &str = "analytics";

/// How long a handled mark is kept before DynamoDB's TTL may delete it: longer than an
/// event can come back, i.e. SQS's longest retention (14 days) on the source queue plus
/// the same again in its DLQ. An event replayed after that would be applied again.
const HANDLED_RETENTION: TimeDuration = TimeDuration::days(30);

/// The put that marks `event_id` handled by `consumer`; its condition fails if it was.
pub(super) fn handled_mark(
    table: &str,
    consumer: &str,
    event_id: &str,
    now: Timestamp,
) -> Result<TransactWriteItem, PortError> {
    let forget_at = now.checked_add(HANDLED_RETENTION).unwrap_or(now).unix_timestamp().max(0);
    let mark = item([
        ("consumer", s(consumer)),
        ("event_id", s(event_id)),
        ("handled_at", millis(now)),
        (TTL_ATTRIBUTE, n(forget_at)),
    ]);
    // Guards: each event's effects apply once per consumer, however often it arrives.
    create(table, mark, "event_id")
}

/// The sort key within a recipient: creation time in zero-padded epoch milliseconds, then
/// the id, so that a descending query is newest first, ties broken by id (descending) as
/// the embedded store does. Times before 1970 sort as 1970.
fn sort_key(n: &Notification) -> String {
    format!("{:015}#{}", clock::to_millis(n.created_at).max(0), n.notification_id)
}

fn notification_from(item: &Item) -> Result<Notification, PortError> {
    let event_type = get_s(item, "event_type")?;
    Ok(Notification {
        notification_id: NotificationId::from(get_s(item, "notification_id")?),
        recipient: UserId::new(get_s(item, "recipient")?),
        subject: get_s(item, "subject")?.to_owned(),
        body: get_s(item, "body")?.to_owned(),
        event_id: get_s(item, "event_id")?.to_owned(),
        event_type: EventType::parse(event_type)
            .ok_or_else(|| PortError::Corrupt(format!("unknown event type {event_type}")))?,
        created_at: get_millis(item, "created_at")?,
    })
}

impl DynamoStore {
    fn notification_put(&self, n: &Notification) -> Result<TransactWriteItem, PortError> {
        // No condition: a notification's id, recipient and time follow from its event, so
        // writing it again writes the same item (the embedded store's INSERT OR IGNORE).
        let notification = item([
            ("recipient", s(n.recipient.as_str())),
            ("sort_key", s(sort_key(n))),
            ("notification_id", s(n.notification_id.as_str())),
            ("subject", s(n.subject.clone())),
            ("body", s(n.body.clone())),
            ("event_id", s(n.event_id.clone())),
            ("event_type", s(n.event_type.as_str())),
            ("created_at", millis(n.created_at)),
        ]);
        put(&self.notifications, notification, None, Placeholders::default())
    }
}

#[async_trait]
impl NotificationStore for DynamoStore {
    async fn record_notifications(
        &self,
        event: &CloudEvent,
        notifications: &[Notification],
        events: &[CloudEvent],
    ) -> Result<bool, PortError> {
        let now = clock::now();
        let mut tx = Transaction::default();
        tx.add(handled_mark(&self.handled_events, NOTIFICATIONS, &event.id, now)?);
        tx.extend(self.outbox_puts(&outbox_entries(events, &[]), now)?);
        // One item at most once per transaction: the first of a repeated id is kept.
        let mut seen = HashSet::new();
        for n in notifications {
            if seen.insert(n.notification_id.as_str()) {
                tx.add(self.notification_put(n)?);
            }
        }
        let tx = &tx;
        retrying("record_notifications", ATTEMPTS, move || async move {
            Ok(match self.transact("record_notifications", tx.clone()).await? {
                Ok(()) => {
                    self.outbox_committed();
                    Step::Done(true)
                }
                // Only the mark has a condition: the event was handled before.
                Err(_) => Step::Done(false),
            })
        })
        .await
    }

    async fn notifications_for(&self, recipient: &UserId, limit: usize) -> Result<Vec<Notification>, PortError> {
        let p = Placeholders::names(&["recipient"]).value("recipient", s(recipient.as_str()));
        let items = PartitionQuery::new(&self.notifications, "#recipient = :recipient", &p)
            .descending()
            .limit(limit)
            .read(&self.client, "dynamodb.query(notifications)")
            .await?;
        items.iter().map(notification_from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_order_by_time_then_id() {
        let at = |ms: i64, id: &str| Notification {
            notification_id: NotificationId::from(id),
            recipient: UserId::new("alice"),
            subject: String::new(),
            body: String::new(),
            event_id: String::new(),
            event_type: EventType::BookingConfirmed,
            created_at: clock::from_millis(ms),
        };
        assert_eq!(sort_key(&at(1_795_341_600_123, "ntf_a")), "001795341600123#ntf_a");
        assert!(sort_key(&at(999, "ntf_z")) < sort_key(&at(1_000, "ntf_a")), "fixed width: time first");
        assert!(sort_key(&at(5, "ntf_a")) < sort_key(&at(5, "ntf_b")));
        assert_eq!(sort_key(&at(-5, "ntf_a")), sort_key(&at(0, "ntf_a")));
    }

    #[test]
    fn handled_marks_expire_after_the_retention() {
        let now = clock::from_millis(1_000_000);
        let mark = handled_mark("t", ANALYTICS, "e1", now).unwrap();
        let item = mark.put().unwrap().item();
        assert_eq!(item[TTL_ATTRIBUTE], n(1_000 + 30 * 86_400));
        assert_eq!(item["consumer"], s(ANALYTICS));
    }
}
