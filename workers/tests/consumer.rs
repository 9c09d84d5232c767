//! The consumer's rules, driven directly through `Consumer::process_batch` on the embedded
//! backend, with a handler whose outcome per message is scripted by the message's body:
//! `ok`, `acknowledged` (done, and already deleted by the store, it says), `follow-up`,
//! `transient`, `poison`, `panic`, or `unrecorded` (poison whose dead letter cannot be
//! recorded on its status document).

use async_trait::async_trait;
use domain::PortError;
use domain::clock;
use domain::queue::{
    ATTR_FAILED_AT, ATTR_FAILURE_REASON, ATTR_RECEIVE_COUNT, ATTR_TYPE, Attributes, OutgoingMessage, Queue,
    ReceivedMessage,
};
use infra::Backend;
use infra::faults::{Fault, Faults, Op};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::Embedded;
use workers::backoff::Backoff;
use workers::consumer::{BatchReport, Consumer, ConsumerConfig, Effects, Handler, HandlerError};

const SOURCE: Queue = Queue::BookingCommands;
const VISIBILITY: Duration = Duration::from_secs(30);
/// Long enough for a retry's backoff (at most 10 ms here) to have passed.
const PAST_BACKOFF: Duration = Duration::from_millis(100);

/// What the consumer told the handler was dead-lettered: (body, reason).
type Recorded = Arc<Mutex<Vec<(String, String)>>>;

struct Scripted {
    dead_lettered: Recorded,
}

#[async_trait]
impl Handler for Scripted {
    fn pool(&self) -> &'static str {
        "scripted"
    }

    async fn handle(&self, message: &ReceivedMessage) -> Result<Effects, HandlerError> {
        match message.body.as_str() {
            "ok" => Ok(Effects::default()),
            // As a command whose store deleted its message with the effects says.
            "acknowledged" => Ok(Effects { follow_ups: Vec::new(), acknowledged: true }),
            "follow-up" => {
                let next = OutgoingMessage::new("next".into(), attributes());
                Ok(Effects { follow_ups: vec![(Queue::Notifications.source(), next)], acknowledged: false })
            }
            "transient" => Err(HandlerError::Transient("the store is busy".into())),
            "poison" | "unrecorded" => Err(HandlerError::Poison("cannot parse it".into())),
            "panic" => panic!("a bug in the handler"),
            other => panic!("no script for {other:?}"),
        }
    }

    async fn dead_lettered(&self, message: &ReceivedMessage, reason: &str) -> Result<(), PortError> {
        if message.body == "unrecorded" {
            return Err(PortError::Unavailable("the store is down".into()));
        }
        self.dead_lettered.lock().unwrap().push((message.body.clone(), reason.to_owned()));
        Ok(())
    }
}

fn attributes() -> Attributes {
    Attributes::from([(ATTR_TYPE.to_owned(), "test.scripted".to_owned())])
}

struct Fixture {
    backend: Backend,
    consumer: Consumer<Scripted>,
    dead_lettered: Recorded,
    _dir: tempfile::TempDir,
}

/// A consumer of `SOURCE` that allows three receives, on `wrap(the embedded backend)`.
async fn fixture_on(wrap: impl FnOnce(Backend) -> Backend) -> Fixture {
    let Embedded { backend, dir } = Embedded::open().await;
    let backend = wrap(backend);
    let dead_lettered = Recorded::default();
    let config = ConsumerConfig {
        queue: SOURCE,
        concurrency: 1,
        visibility: VISIBILITY,
        wait: Duration::ZERO,
        max_receives: 3,
        backoff: Backoff { base: Duration::from_millis(10), max: Duration::from_millis(10) },
    };
    let handler = Scripted { dead_lettered: dead_lettered.clone() };
    let consumer = Consumer::new(backend.clone(), handler, config);
    Fixture { backend, consumer, dead_lettered, _dir: dir }
}

async fn fixture() -> Fixture {
    fixture_on(|b| b).await
}

impl Fixture {
    async fn send(&self, bodies: &[&str]) {
        let messages = bodies.iter().map(|b| OutgoingMessage::new((*b).to_owned(), attributes())).collect();
        self.backend.queues.send_batch(SOURCE.source(), messages).await.unwrap();
    }

    /// Everything visible on `SOURCE` now, hidden for `VISIBILITY` as a worker's receive does.
    async fn receive(&self) -> Vec<ReceivedMessage> {
        self.backend.queues.receive(SOURCE.source(), 10, Duration::ZERO, VISIBILITY).await.unwrap()
    }

    async fn receive_and_process(&self) -> (Vec<ReceivedMessage>, BatchReport) {
        let received = self.receive().await;
        let report = self.consumer.process_batch(received.clone()).await;
        (received, report)
    }

    async fn depth(&self, queue: domain::queue::QueueAddr) -> u64 {
        self.backend.queues.depth(queue).await.unwrap()
    }

    /// Takes every message in `SOURCE`'s DLQ.
    async fn dead(&self) -> Vec<ReceivedMessage> {
        self.backend.queues.receive(SOURCE.dlq(), 10, Duration::ZERO, VISIBILITY).await.unwrap()
    }

    fn recorded(&self) -> Vec<(String, String)> {
        self.dead_lettered.lock().unwrap().clone()
    }
}

fn id_of<'a>(messages: &'a [ReceivedMessage], body: &str) -> &'a str {
    &messages.iter().find(|m| m.body == body).expect("the message").message_id
}

/// A message whose handler says the store already deleted it is done, and the consumer
/// sends no delete for it: this scripted handler deleted nothing, so it stays in flight.
#[tokio::test]
async fn a_message_acknowledged_by_its_store_gets_no_second_delete() {
    let f = fixture().await;
    f.send(&["ok", "acknowledged"]).await;
    let (received, report) = f.receive_and_process().await;
    assert_eq!(received.len(), 2);
    assert_eq!(report.done, 2, "{report:?}");
    // `ok` is deleted; `acknowledged` is still in flight, as no one deleted it.
    let stats = f.backend.queues.stats(SOURCE.source()).await.unwrap();
    assert_eq!((stats.visible, stats.in_flight), (0, 1), "{stats:?}");
}

#[tokio::test]
async fn each_message_of_a_batch_meets_its_own_fate() {
    let f = fixture().await;
    f.send(&["ok", "follow-up", "transient", "poison"]).await;
    let (received, report) = f.receive_and_process().await;
    assert_eq!(received.len(), 4);
    assert_eq!(report.done, 2, "{report:?}");
    assert_eq!(report.retried, vec![id_of(&received, "transient").to_owned()]);
    assert_eq!(report.dead_lettered, 1);

    // The done and the dead-lettered are deleted; only the retried one is left.
    assert_eq!(f.depth(SOURCE.source()).await, 1);
    // Its visibility was shortened to the backoff, not left at the receive's 30 s.
    tokio::time::sleep(PAST_BACKOFF).await;
    let again = f.receive().await;
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].body.as_str(), again[0].receive_count), ("transient", 2));

    // The poison message is in the DLQ with why, when and after how many receives.
    let dead = f.dead().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "poison");
    assert_eq!(dead[0].attributes[ATTR_FAILURE_REASON], "cannot parse it");
    assert_eq!(dead[0].attributes[ATTR_RECEIVE_COUNT], "1");
    assert_eq!(dead[0].attributes[ATTR_TYPE], "test.scripted", "its original attributes are kept");
    let failed_at = clock::parse(&dead[0].attributes[ATTR_FAILED_AT]).expect("an RFC 3339 time");
    assert!(clock::now() - failed_at < Duration::from_secs(60));
    assert_eq!(f.recorded(), vec![("poison".to_owned(), "cannot parse it".to_owned())]);

    // The follow-up was sent before its message was deleted.
    let next = f.backend.queues.receive(Queue::Notifications.source(), 10, Duration::ZERO, VISIBILITY).await.unwrap();
    assert_eq!(next.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["next"]);
}

#[tokio::test]
async fn a_panic_dead_letters_only_its_own_message() {
    let f = fixture().await;
    f.send(&["ok", "panic", "ok", "follow-up"]).await;
    let (_, report) = f.receive_and_process().await;
    assert_eq!(report, BatchReport { done: 3, retried: vec![], dead_lettered: 1 });
    assert_eq!(f.depth(SOURCE.source()).await, 0);
    let dead = f.dead().await;
    assert_eq!(dead.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["panic"]);
    assert_eq!(dead[0].attributes[ATTR_FAILURE_REASON], "the handler panicked");
    assert_eq!(f.recorded(), vec![("panic".to_owned(), "the handler panicked".to_owned())]);
    assert_eq!(f.depth(Queue::Notifications.source()).await, 1, "the others' effects went on");
}

#[tokio::test]
async fn the_last_allowed_receive_dead_letters_a_transient_failure() {
    let f = fixture().await;
    f.send(&["transient"]).await;
    for receive in 1..=2 {
        let (received, report) = f.receive_and_process().await;
        assert_eq!(received[0].receive_count, receive);
        assert_eq!(report.retried, vec![received[0].message_id.clone()], "receive {receive}");
        assert_eq!(f.dead().await.len(), 0);
        tokio::time::sleep(PAST_BACKOFF).await;
    }
    let (received, report) = f.receive_and_process().await;
    assert_eq!(received[0].receive_count, 3);
    assert_eq!(report, BatchReport { done: 0, retried: vec![], dead_lettered: 1 });
    assert_eq!(f.depth(SOURCE.source()).await, 0);
    let dead = f.dead().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attributes[ATTR_RECEIVE_COUNT], "3");
    assert_eq!(dead[0].attributes[ATTR_FAILURE_REASON], "gave up after 3 receives: the store is busy");
    assert_eq!(f.recorded().len(), 1);
}

/// Send before delete: a dead letter that cannot be recorded, or a DLQ that cannot be
/// reached, leaves the message on its source queue for a later receive.
#[tokio::test]
async fn a_dead_letter_not_recorded_stays_on_its_queue() {
    let f = fixture().await;
    f.send(&["unrecorded", "ok"]).await;
    let (_, report) = f.receive_and_process().await;
    assert_eq!(report, BatchReport { done: 1, retried: vec![], dead_lettered: 0 });
    assert_eq!(f.depth(SOURCE.source()).await, 1, "still on the source queue");
    tokio::time::sleep(PAST_BACKOFF).await;
    let again = f.receive().await;
    assert_eq!((again[0].body.as_str(), again[0].receive_count), ("unrecorded", 2));

    let faults = Faults::default();
    let f = fixture_on(|b| faults.wrap(b)).await;
    f.send(&["poison"]).await;
    faults.set(Op::Send, Fault::Fail, None);
    let (_, report) = f.receive_and_process().await;
    assert_eq!(report.dead_lettered, 0);
    assert!(f.recorded().is_empty(), "nothing recorded before the DLQ has it");
    assert_eq!(f.depth(SOURCE.dlq()).await, 0);
    assert_eq!(f.depth(SOURCE.source()).await, 1);
}

/// Follow-ups that cannot be sent leave the batch's applied messages on the queue: they
/// come back, and redoing them asks again.
#[tokio::test]
async fn unsent_follow_ups_retry_the_batch() {
    let faults = Faults::default();
    let f = fixture_on(|b| faults.wrap(b)).await;
    f.send(&["ok", "follow-up"]).await;
    faults.set(Op::Send, Fault::Fail, Some(1));
    let (received, report) = f.receive_and_process().await;
    assert_eq!(report.done, 0);
    let retried: BTreeSet<&str> = report.retried.iter().map(String::as_str).collect();
    assert_eq!(retried, received.iter().map(|m| m.message_id.as_str()).collect());
    assert_eq!(f.depth(SOURCE.source()).await, 2);

    tokio::time::sleep(PAST_BACKOFF).await;
    let (received, report) = f.receive_and_process().await;
    assert!(received.iter().all(|m| m.receive_count == 2));
    assert_eq!(report, BatchReport { done: 2, retried: vec![], dead_lettered: 0 });
    assert_eq!(f.depth(SOURCE.source()).await, 0);
    assert_eq!(f.depth(Queue::Notifications.source()).await, 1);
}

/// Counts the handler calls running at once; each takes a while.
#[derive(Default)]
struct Slow {
    running: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
    done: std::sync::atomic::AtomicUsize,
}

struct SlowHandler(Arc<Slow>);

#[async_trait]
impl Handler for SlowHandler {
    fn pool(&self) -> &'static str {
        "slow"
    }

    async fn handle(&self, _message: &ReceivedMessage) -> Result<Effects, HandlerError> {
        use std::sync::atomic::Ordering::SeqCst;
        let slow = &self.0;
        let now = slow.running.fetch_add(1, SeqCst) + 1;
        slow.peak.fetch_max(now, SeqCst);
        tokio::time::sleep(Duration::from_millis(30)).await;
        slow.running.fetch_sub(1, SeqCst);
        slow.done.fetch_add(1, SeqCst);
        Ok(Effects::default())
    }

    async fn dead_lettered(&self, _message: &ReceivedMessage, _reason: &str) -> Result<(), PortError> {
        Ok(())
    }
}

/// Drains 300 slow messages with at most `concurrency` receive loops; the peak of handler
/// calls running at once.
async fn peak_while_draining(concurrency: usize) -> usize {
    let Embedded { backend, dir: _dir } = Embedded::open().await;
    let bodies: Vec<OutgoingMessage> = (0..300).map(|i| OutgoingMessage::new(format!("m{i}"), attributes())).collect();
    for chunk in bodies.chunks(10) {
        backend.queues.send_batch(SOURCE.source(), chunk.to_vec()).await.unwrap();
    }
    let slow = Arc::new(Slow::default());
    let config = ConsumerConfig {
        concurrency,
        wait: Duration::from_millis(50),
        ..ConsumerConfig::new(SOURCE, 3, &testkit::settings::workers())
    };
    let consumer = Consumer::new(backend.clone(), SlowHandler(slow.clone()), config);
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(consumer.run_until_stopped(stop.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while slow.done.load(std::sync::atomic::Ordering::SeqCst) < 300 {
        assert!(tokio::time::Instant::now() < deadline, "the backlog drains");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    running.await.unwrap();
    slow.peak.load(std::sync::atomic::Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_loops_follow_the_backlog_up_to_the_bound() {
    // One loop holds one batch in flight; a backlog starts more, up to the bound.
    let batch = Embedded::open().await.backend.queues.max_batch();
    let one = peak_while_draining(1).await;
    assert!(one <= batch, "one loop, one batch of at most {batch} at a time (peak {one})");
    let peak = peak_while_draining(4).await;
    assert!(peak > batch, "a backlog runs more than one batch at once (peak {peak})");
    assert!(peak <= 4 * batch, "never more than 4 loops of {batch} (peak {peak})");
}

/// An analytics consumer on the embedded backend, and two `HoldPlaced` events of two
/// seats each, one per show, sent with an unparseable body between them.
async fn analytics_batch() -> (Embedded, Consumer<workers::downstream::AnalyticsPool>, [&'static str; 2]) {
    use domain::event::{CloudEvent, EventType};
    use domain::ids::RequestId;

    let store = Embedded::open().await;
    let backend = &store.backend;
    let held = |show: &str| {
        let data = serde_json::json!({"show_id": show, "seat_ids": ["A1", "A2"]});
        CloudEvent::new(EventType::HoldPlaced, "booking", show, RequestId::generate().as_str(), data, clock::now())
    };
    let shows = ["show_first", "show_last"];
    let (first, last) = (held(shows[0]), held(shows[1]));
    let messages = vec![
        OutgoingMessage::new(first.to_json(), first.attributes()),
        OutgoingMessage::new("{not an event".to_owned(), attributes()),
        OutgoingMessage::new(last.to_json(), last.attributes()),
    ];
    backend.queues.send_batch(Queue::Analytics.source(), messages).await.unwrap();
    let config = ConsumerConfig {
        queue: Queue::Analytics,
        concurrency: 1,
        visibility: VISIBILITY,
        wait: Duration::ZERO,
        max_receives: 3,
        backoff: Backoff { base: Duration::from_millis(10), max: Duration::from_millis(10) },
    };
    let pool = workers::downstream::AnalyticsPool::new(backend.clone());
    let consumer = Consumer::new(backend.clone(), pool, config);
    (store, consumer, shows)
}

async fn seats_held(backend: &Backend, show: &str) -> i64 {
    backend.analytics.show_counters(&domain::ids::ShowId::from(show)).await.unwrap().seats_held
}

/// The analytics pool folds a received batch in one write. An event in it that does not
/// parse fails alone: the others are counted once and their messages go with the fold,
/// and the bad one is dead-lettered.
#[tokio::test]
async fn an_unparseable_event_fails_alone_in_an_analytics_batch() {
    let (store, consumer, shows) = analytics_batch().await;
    let backend = &store.backend;
    let analytics = Queue::Analytics;
    let received = backend.queues.receive(analytics.source(), 10, Duration::ZERO, VISIBILITY).await.unwrap();
    assert_eq!(received.len(), 3);

    let report = consumer.process_batch(received).await;
    assert_eq!((report.done, report.dead_lettered), (2, 1), "{report:?}");
    assert!(report.retried.is_empty(), "{report:?}");
    for show in shows {
        assert_eq!(seats_held(backend, show).await, 2, "{show}: its event counted once");
    }
    assert_eq!(backend.queues.depth(analytics.source()).await.unwrap(), 0, "nothing left on the queue");
    let dead = backend.queues.receive(analytics.dlq(), 10, Duration::ZERO, VISIBILITY).await.unwrap();
    assert_eq!(dead.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["{not an event"]);
}

/// When the batch's write fails, each event is tried on its own: an event the store
/// refuses is left for a later receive (and then counted once), the others are counted,
/// and the unparseable one is dead-lettered all the same.
#[tokio::test]
async fn a_failed_analytics_batch_is_tried_event_by_event() {
    let (store, consumer, [refused, counted]) = analytics_batch().await;
    let backend = &store.backend;
    let analytics = Queue::Analytics;
    // The store refuses every fold that counts the first show.
    let file = rusqlite::Connection::open(store.dir.path().join("usher.db")).unwrap();
    file.busy_timeout(Duration::from_secs(5)).unwrap();
    file.execute_batch(&format!(
        "CREATE TRIGGER refuse BEFORE INSERT ON show_stats WHEN NEW.show_id = '{refused}'
         BEGIN SELECT RAISE(ABORT, 'refused'); END;"
    ))
    .unwrap();

    let received = backend.queues.receive(analytics.source(), 10, Duration::ZERO, VISIBILITY).await.unwrap();
    assert_eq!(received[1].body, "{not an event", "received in the order sent");
    let report = consumer.process_batch(received.clone()).await;
    assert_eq!((report.done, report.dead_lettered), (1, 1), "{report:?}");
    assert_eq!(report.retried, [received[0].message_id.clone()], "only the refused event waits");
    assert_eq!((seats_held(backend, refused).await, seats_held(backend, counted).await), (0, 2));

    file.execute_batch("DROP TRIGGER refuse").unwrap();
    tokio::time::sleep(PAST_BACKOFF).await;
    let again = backend.queues.receive(analytics.source(), 10, Duration::ZERO, VISIBILITY).await.unwrap();
    assert_eq!(again.iter().map(|m| &m.message_id).collect::<Vec<_>>(), [&received[0].message_id]);
    let report = consumer.process_batch(again).await;
    assert_eq!((report.done, report.dead_lettered), (1, 0), "{report:?}");
    assert_eq!((seats_held(backend, refused).await, seats_held(backend, counted).await), (2, 2), "each counted once");
}
