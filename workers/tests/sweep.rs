//! The sweep and the DLQ purge and replay, driven directly (`Sweeper::sweep_once`,
//! `DeadLetters::purge`, `DeadLetters::replay`) on the embedded backend, with faults where
//! a hole needs one.

use domain::PortError;
use domain::actor::{Actor, Role};
use domain::clock;
use domain::command::{Command, CommandEnvelope};
use domain::idempotency::{Fingerprint, IdempotencyKey};
use domain::ids::{HoldId, RequestId, UserId};
use domain::ports::MessageQueue;
use domain::ports::{Admission, Admitted, StoredResponse};
use domain::queue::{
    ATTR_FAILURE_REASON, ATTR_REQUEST_ID, ATTR_TYPE, Attributes, OutgoingMessage, Queue, QueueAddr, QueueStats,
    Receipt, ReceivedMessage,
};
use domain::request::RequestStatus;
use infra::Backend;
use infra::faults::{Fault, Faults, Op};
use std::sync::Arc;
use std::time::Duration;
use testkit::Embedded;
use workers::dlq::{DeadLetters, ReplayOptions};
use workers::sweep::{REDRIVE_GRACE, SweepReport, Sweeper};

async fn fixture() -> Embedded {
    Embedded::open().await
}

/// Admits a release command `age` ago and leaves it unqueued, as a dead admitter would.
async fn stranded(b: &Backend, age: Duration) -> RequestId {
    let at = clock::now() - age;
    let request_id = RequestId::generate();
    let command = CommandEnvelope {
        request_id: request_id.clone(),
        actor: Actor { sub: UserId::new("alice"), role: Role::Customer },
        issued_at: at,
        traceparent: None,
        command: Command::ReleaseHold { hold_id: HoldId::from("hold_gone") },
    };
    let admission = Admission {
        owner: UserId::new("alice"),
        key: IdempotencyKey::parse(&format!("k-{request_id}")).unwrap(),
        fingerprint: Fingerprint::of("POST", "/v1/holds/hold_gone/release", &serde_json::json!({})),
        doc: domain::request::StatusDoc::accepted(request_id.clone(), command.command.type_name(), at),
        command,
        response: StoredResponse { status: 202, body: format!("{{\"request_id\":\"{request_id}\"}}") },
        key_expires_at: at + Duration::from_secs(3600),
        queue_with_claim: false,
    };
    assert!(matches!(b.requests.admit(admission).await.unwrap(), Admitted::Claimed));
    request_id
}

fn sweeper(b: &Backend) -> Sweeper {
    Sweeper::new(b.clone(), Duration::from_secs(5), Duration::from_secs(10))
}

async fn status(b: &Backend, id: &RequestId) -> RequestStatus {
    b.requests.get(id).await.unwrap().unwrap().doc.status
}

async fn dead_letter(b: &Backend, id: &RequestId, reason: Option<&str>) {
    let mut attributes = Attributes::from([
        (ATTR_TYPE.to_owned(), "booking.hold.release".to_owned()),
        (ATTR_REQUEST_ID.to_owned(), id.to_string()),
    ]);
    if let Some(reason) = reason {
        attributes.insert(ATTR_FAILURE_REASON.to_owned(), reason.to_owned());
    }
    let message = OutgoingMessage::new("{}".into(), attributes);
    b.queues.send_batch(Queue::BookingCommands.dlq(), vec![message]).await.unwrap();
}

#[tokio::test]
async fn one_unparseable_command_does_not_stop_the_sweep() {
    let f = fixture().await;
    let good = stranded(&f.backend, Duration::from_secs(60)).await;
    let bad = stranded(&f.backend, Duration::from_secs(60)).await;
    let db = rusqlite::Connection::open(f.dir.path().join("usher.db")).unwrap();
    db.execute("UPDATE requests SET command = '{\"garbage\": true}' WHERE request_id = ?1", [bad.as_str()]).unwrap();

    let report = sweeper(&f.backend).sweep_once().await;
    assert_eq!(report.requeued, 1, "{report:?}");
    assert_eq!(report.marked_dead, 1, "{report:?}");
    assert_eq!(f.backend.queues.depth(Queue::BookingCommands.source()).await.unwrap(), 1, "the good one is queued");
    assert_eq!(status(&f.backend, &bad).await, RequestStatus::DeadLettered, "the bad one ends where ops see it");
    assert_eq!(status(&f.backend, &good).await, RequestStatus::Accepted);
    assert!(f.backend.requests.unqueued(clock::now(), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_send_does_not_stop_the_rest_of_the_sweep() {
    let f = fixture().await;
    let faults = Faults::default();
    let backend = faults.wrap(f.backend.clone());
    stranded(&backend, Duration::from_secs(60)).await;
    let redriven = stranded(&backend, Duration::from_secs(600)).await;
    backend.requests.mark_queued(std::slice::from_ref(&redriven)).await.unwrap();
    dead_letter(&f.backend, &redriven, None).await;

    faults.set(Op::Send, Fault::Fail, None);
    let report = sweeper(&backend).sweep_once().await;
    assert_eq!(report.requeued, 0);
    assert!(report.failures >= 1, "{report:?}");
    assert_eq!(report.marked_dead, 1, "the redrive step still ran: {report:?}");
    assert_eq!(status(&backend, &redriven).await, RequestStatus::DeadLettered);
    faults.clear(Op::Send);
    assert_eq!(sweeper(&backend).sweep_once().await.requeued, 1, "the next sweep catches up");
}

#[tokio::test]
async fn the_sweep_leaves_worker_dead_letters_and_fresh_replays_alone() {
    let f = fixture().await;
    let b = &f.backend;
    let marked_by_worker = stranded(b, Duration::from_secs(600)).await;
    let just_replayed = stranded(b, Duration::from_secs(5)).await;
    b.requests.mark_queued(&[marked_by_worker.clone(), just_replayed.clone()]).await.unwrap();
    dead_letter(b, &marked_by_worker, Some("gave up after 5 receives")).await;
    dead_letter(b, &just_replayed, None).await;
    assert!(REDRIVE_GRACE > Duration::from_secs(5));
    let report = sweeper(b).sweep_once().await;
    assert_eq!(report.marked_dead, 0, "{report:?}");
    assert_eq!(status(b, &just_replayed).await, RequestStatus::Accepted, "a replay in progress is not undone");
}

#[tokio::test]
async fn purging_a_dlq_ends_the_requests_in_it() {
    let f = fixture().await;
    let b = &f.backend;
    let id = stranded(b, Duration::from_secs(5)).await;
    b.requests.mark_queued(std::slice::from_ref(&id)).await.unwrap();
    dead_letter(b, &id, None).await;
    DeadLetters::new(b.clone()).purge(Queue::BookingCommands).await.unwrap();
    assert_eq!(b.queues.depth(Queue::BookingCommands.dlq()).await.unwrap(), 0);
    assert_eq!(status(b, &id).await, RequestStatus::DeadLettered, "never left without an end");
}

/// Time-dependent rules read the injected clock: under `tokio::time::pause` a test moves
/// time by hand instead of waiting out the redrive grace.
#[tokio::test(start_paused = true)]
async fn the_redrive_grace_runs_on_the_injected_clock() {
    let f = fixture().await;
    let started = tokio::time::Instant::now();
    let clock = domain::clock::OffsetClock::new(clock::now(), move || started.elapsed());
    let b = Backend { clock: std::sync::Arc::new(clock), ..f.backend.clone() };
    let id = stranded(&b, Duration::from_secs(5)).await;
    b.requests.mark_queued(std::slice::from_ref(&id)).await.unwrap();
    dead_letter(&b, &id, None).await;
    assert_eq!(sweeper(&b).sweep_once().await.marked_dead, 0, "within the grace");
    tokio::time::advance(REDRIVE_GRACE).await;
    assert_eq!(sweeper(&b).sweep_once().await.marked_dead, 1, "past it, by the injected clock alone");
    assert_eq!(status(&b, &id).await, RequestStatus::DeadLettered);
}

#[tokio::test]
async fn the_sweep_leaves_young_admissions_to_their_admitter_and_forgets_expired_keys() {
    let f = fixture().await;
    let b = &f.backend;
    let young = stranded(b, Duration::from_secs(2)).await;
    assert_eq!(sweeper(b).sweep_once().await, SweepReport::default(), "within the grace nothing happens");
    assert_eq!(status(b, &young).await, RequestStatus::Accepted);
    assert_eq!(b.queues.depth(Queue::BookingCommands.source()).await.unwrap(), 0);

    // Admitted two hours ago: past the grace, and its key (kept an hour) has expired.
    let old = stranded(b, Duration::from_secs(7200)).await;
    let report = sweeper(b).sweep_once().await;
    assert_eq!(report, SweepReport { requeued: 1, marked_dead: 0, keys_forgotten: 1, failures: 0 });
    let queued = b.queues.receive(Queue::BookingCommands.source(), 10, Duration::ZERO, Duration::ZERO).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].attributes[ATTR_REQUEST_ID], old.as_str());
    assert_eq!(sweeper(b).sweep_once().await, SweepReport::default(), "re-queued once");
}

/// Queues whose workers dead-letter every message the moment it is sent: what a replay of
/// a poison message meets while the workers run.
struct DeadOnArrival(Arc<dyn MessageQueue>);

#[async_trait::async_trait]
impl MessageQueue for DeadOnArrival {
    fn max_delay(&self) -> Duration {
        self.0.max_delay()
    }
    fn max_batch(&self) -> usize {
        self.0.max_batch()
    }
    async fn send_batch(&self, queue: QueueAddr, messages: Vec<OutgoingMessage>) -> Result<(), PortError> {
        if !queue.dead {
            self.0.send_batch(queue.queue.dlq(), messages.clone()).await?;
        }
        self.0.send_batch(queue, messages).await
    }
    async fn receive(
        &self,
        queue: QueueAddr,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, PortError> {
        self.0.receive(queue, max, wait, visibility).await
    }
    async fn delete_batch(&self, queue: QueueAddr, receipts: Vec<Receipt>) -> Result<(), PortError> {
        self.0.delete_batch(queue, receipts).await
    }
    async fn change_visibility(&self, queue: QueueAddr, receipt: &Receipt, timeout: Duration) -> Result<(), PortError> {
        self.0.change_visibility(queue, receipt, timeout).await
    }
    async fn depth(&self, queue: QueueAddr) -> Result<u64, PortError> {
        self.0.depth(queue).await
    }
    async fn stats(&self, queue: QueueAddr) -> Result<QueueStats, PortError> {
        self.0.stats(queue).await
    }
    async fn purge(&self, queue: QueueAddr) -> Result<(), PortError> {
        self.0.purge(queue).await
    }
    async fn ping(&self) -> Result<(), PortError> {
        self.0.ping().await
    }
}

#[tokio::test]
async fn a_replay_moves_each_message_once_though_it_comes_straight_back() {
    let f = fixture().await;
    let b = Backend { queues: Arc::new(DeadOnArrival(f.backend.queues.clone())), ..f.backend.clone() };
    let poison = Attributes::from([(ATTR_FAILURE_REASON.to_owned(), "unparseable".to_owned())]);
    let messages =
        vec![OutgoingMessage::new("not json".into(), poison.clone()), OutgoingMessage::new("nor this".into(), poison)];
    f.backend.queues.send_batch(Queue::BookingCommands.dlq(), messages).await.unwrap();

    let (dead, options) = (DeadLetters::new(b.clone()), ReplayOptions::default());
    let replay = dead.replay(Queue::BookingCommands, &options);
    let report = tokio::time::timeout(Duration::from_secs(10), replay).await.expect("the replay ends").unwrap();
    assert_eq!((report.moved, report.skipped, report.failed), (2, 0, 0), "{report:?}");
    // Both came back, dead again: they are in the DLQ, visible, for the next replay.
    assert_eq!(f.backend.queues.depth(Queue::BookingCommands.dlq()).await.unwrap(), 2);
    assert_eq!(f.backend.queues.stats(Queue::BookingCommands.dlq()).await.unwrap().visible, 2);
}
