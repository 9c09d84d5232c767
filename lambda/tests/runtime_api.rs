//! `usher-lambda`, the real binary, behind an in-process emulator of the Lambda Runtime
//! API, on the moto server `scripts/test.sh` starts: one SQS event carrying one good
//! command and one garbage message, both really on the queue (their receipt handles come
//! from a receive, as the event source mapping's do).
//!
//! Without `AWS_ENDPOINT_URL` the test prints why and passes, like the aws contract suite.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use domain::actor::{Actor, Role};
use domain::clock;
use domain::command::{Command, CommandEnvelope};
use domain::idempotency::{Fingerprint, IdempotencyKey};
use domain::ids::{RequestId, UserId};
use domain::ports::{Admission, StoredResponse};
use domain::queue::{ATTR_FAILURE_REASON, Attributes, OutgoingMessage, Queue, ReceivedMessage};
use domain::request::{RequestStatus, StatusDoc};
use domain::ticket::Priority;
use infra::{Backend, BackendKind, Settings};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// What the emulator saw the function answer.
enum Answer {
    Response(Value),
    Error(String),
}

#[derive(Clone)]
struct Emulator {
    /// The one invocation to hand out; later `next` calls wait forever, as on Lambda
    /// between invocations.
    event: Arc<Mutex<Option<Value>>>,
    answers: mpsc::UnboundedSender<Answer>,
}

async fn next(State(emulator): State<Emulator>) -> (StatusCode, HeaderMap, String) {
    let event = emulator.event.lock().unwrap().take();
    let Some(event) = event else {
        std::future::pending::<()>().await;
        unreachable!();
    };
    let deadline =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap() + Duration::from_secs(60);
    let mut headers = HeaderMap::new();
    headers.insert("lambda-runtime-aws-request-id", "invocation-1".parse().unwrap());
    headers.insert("lambda-runtime-deadline-ms", deadline.as_millis().to_string().parse().unwrap());
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:usher-tickets".parse().unwrap(),
    );
    headers.insert("content-type", "application/json".parse().unwrap());
    (StatusCode::OK, headers, event.to_string())
}

async fn response(State(emulator): State<Emulator>, body: String) -> StatusCode {
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    let _ = emulator.answers.send(Answer::Response(value));
    StatusCode::ACCEPTED
}

async fn error(State(emulator): State<Emulator>, body: String) -> StatusCode {
    let _ = emulator.answers.send(Answer::Error(body));
    StatusCode::ACCEPTED
}

/// The record the event source mapping would deliver for a received message.
fn sqs_record(m: &ReceivedMessage, queue_arn: &str) -> Value {
    let attributes: serde_json::Map<String, Value> =
        m.attributes.iter().map(|(k, v)| (k.clone(), json!({"stringValue": v, "dataType": "String"}))).collect();
    json!({
        "messageId": m.message_id,
        "receiptHandle": m.receipt.0,
        "body": m.body,
        "attributes": {
            "ApproximateReceiveCount": m.receive_count.to_string(),
            "SentTimestamp": clock::to_millis(m.sent_at).to_string(),
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": clock::to_millis(clock::now()).to_string(),
        },
        "messageAttributes": attributes,
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_command_succeeds_and_garbage_is_dead_lettered_without_being_reported() {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") else {
        eprintln!("skipped: AWS_ENDPOINT_URL is unset (run under scripts/moto.sh -- cargo test ...)");
        return;
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let env = format!("lambda{:08x}", nanos ^ std::process::id());
    let mut settings = Settings::from_lookup(|_| None).unwrap();
    settings.backend = BackendKind::Aws;
    settings.env = env.clone();
    Backend::setup(&settings).await.expect("usher setup on moto");
    let backend = Backend::connect(&settings).await.expect("the backend");
    let queue = Queue::TicketCommands;

    // A command admitted as ingress admits it, and a message that is not one.
    let now = clock::now();
    let request_id = RequestId::generate();
    let envelope = CommandEnvelope {
        request_id: request_id.clone(),
        actor: Actor { sub: UserId::new("alice"), role: Role::Customer },
        issued_at: now,
        traceparent: None,
        command: Command::CreateTicket {
            subject: "Seat A1 is broken".into(),
            description: "It wobbles".into(),
            priority: Priority::Normal,
        },
    };
    let admission = Admission {
        owner: UserId::new("alice"),
        key: IdempotencyKey::parse("lambda-test").unwrap(),
        fingerprint: Fingerprint::of("POST", "/v1/tickets", &json!({})),
        doc: StatusDoc::accepted(request_id.clone(), envelope.command.type_name(), now),
        command: envelope.clone(),
        response: StoredResponse { status: 202, body: "{}".into() },
        key_expires_at: now + Duration::from_secs(3600),
        queue_with_claim: false,
    };
    backend.requests.admit(admission).await.expect("admitted");
    let garbage = OutgoingMessage::new("this is not a command".into(), Attributes::new());
    backend.queues.send_batch(queue.source(), vec![envelope.message(), garbage]).await.unwrap();
    backend.requests.mark_queued(std::slice::from_ref(&request_id)).await.unwrap();

    // Receive both, as the event source mapping does before it invokes the function.
    let mut received = Vec::new();
    for _ in 0..20 {
        let batch = backend.queues.receive(queue.source(), 10, Duration::from_secs(1), Duration::from_secs(60)).await;
        received.extend(batch.unwrap());
        if received.len() >= 2 {
            break;
        }
    }
    assert_eq!(received.len(), 2, "both messages are on the queue");
    let queue_arn = format!("arn:aws:sqs:us-east-1:123456789012:{env}-{}", queue.name());
    let event = json!({"Records": received.iter().map(|m| sqs_record(m, &queue_arn)).collect::<Vec<_>>()});

    // The Runtime API emulator.
    let (answers, mut answered) = mpsc::unbounded_channel();
    let emulator = Emulator { event: Arc::new(Mutex::new(Some(event))), answers };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(error))
        .with_state(emulator);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let runtime_api = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_usher-lambda"))
        .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", format!("{env}-usher-tickets"))
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "test")
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("USHER_POOL", "tickets")
        .env("USHER_ENV", &env)
        .env_remove("USHER_BACKEND")
        .env("USHER_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("usher-lambda starts");

    let answer = tokio::time::timeout(Duration::from_secs(60), answered.recv()).await;
    let _ = child.start_kill();
    let answer = match answer {
        Ok(Some(answer)) => answer,
        Ok(None) => panic!("the emulator stopped"),
        Err(_) => panic!("usher-lambda did not answer the invocation within 60 s"),
    };
    let response = match answer {
        Answer::Response(response) => response,
        Answer::Error(error) => panic!("usher-lambda reported an error: {error}"),
    };
    assert_eq!(response, json!({"batchItemFailures": []}), "nothing is left for SQS to retry");

    let record = backend.requests.get(&request_id).await.unwrap().expect("the status document");
    assert_eq!(record.doc.status, RequestStatus::Succeeded, "{:?}", record.doc);

    let mut dead = Vec::new();
    for _ in 0..10 {
        dead.extend(
            backend.queues.receive(queue.dlq(), 10, Duration::from_secs(1), Duration::from_secs(30)).await.unwrap(),
        );
        if !dead.is_empty() {
            break;
        }
    }
    assert_eq!(dead.len(), 1, "the garbage message, and only it, is dead-lettered");
    assert_eq!(dead[0].body, "this is not a command");
    let reason = dead[0].attributes.get(ATTR_FAILURE_REASON).expect("a failure_reason");
    assert!(!reason.is_empty());

    // Both left the source queue: the good one deleted after commit, the garbage moved.
    assert_eq!(backend.queues.depth(queue.source()).await.unwrap(), 0);
    // The invocation delivered what its commands committed: `usher.ticket.created` reached
    // the topic (analytics subscribes to every type) and the outbox is empty.
    assert_eq!(backend.outbox.backlog().await.unwrap().pending, 0, "the outbox was relayed");
    assert!(backend.queues.depth(Queue::Analytics.source()).await.unwrap() >= 1, "the event reached the topic");
}
