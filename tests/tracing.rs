//! One booking is one trace (docs/contract.md §6): the HTTP request's `traceparent`
//! continues into the booking worker's span through the command message, and into the
//! analytics and notifications workers' spans through the events. Spans are read with the
//! OpenTelemetry SDK's in-memory exporter, installed as this test binary's subscriber.
//! Without an exporter, spans get ids alone and the trace rides just the same: that is
//! read from the log lines.

mod support;

use domain::actor::Role;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::{Value, json};
use std::time::Duration;
use support::spawn;

/// A caller's trace, as a W3C `traceparent` header sends it.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// Another caller's trace, for a command that ends dead-lettered.
const FAILING_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const FAILING_TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.as_str().into_owned())
}

/// The finished spans of `trace_id` named `name` whose `pool` attribute is `pool`.
fn spans<'a>(all: &'a [SpanData], trace_id: &str, name: &str, pool: Option<&str>) -> Vec<&'a SpanData> {
    all.iter()
        .filter(|s| s.span_context.trace_id().to_string() == trace_id && s.name == name)
        .filter(|s| pool.is_none_or(|p| attribute(s, "pool").as_deref() == Some(p)))
        .collect()
}

/// Confirms `hold_id` with `card`, sending `traceparent`; the request's id.
async fn confirm(app: &support::TestApp, token: &str, hold_id: &str, card: &str, traceparent: &str) -> String {
    let response = app
        .http
        .post(app.url("/v1/bookings"))
        .bearer_auth(token)
        .header("Idempotency-Key", format!("traced-{card}"))
        .header("traceparent", traceparent)
        .json(&json!({ "hold_id": hold_id, "payment_token": card }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    response.json::<Value>().await.unwrap()["request_id"].as_str().unwrap().to_owned()
}

/// The requests of [`book_and_fail`].
struct Flow {
    /// A hold sent without a traceparent.
    hold: String,
    /// Its confirm, sent in `TRACEPARENT`'s trace.
    confirm: String,
    /// A confirm of another hold, sent in `FAILING_TRACEPARENT`'s trace, that keeps failing
    /// until it is dead-lettered.
    failing: String,
}

/// What both tests trace: a hold and its confirm, which succeed, and a confirm that is
/// dead-lettered. Each waits for its outcome.
async fn book_and_fail(app: &support::TestApp) -> Flow {
    let alice = app.token("alice", Role::Customer);
    let show = app.show_id().await;
    let held = app.hold(&alice, &show, &["E1"]).await;
    assert_eq!(held["status"], "succeeded", "{held}");
    let hold_id = held["result"]["hold_id"].as_str().unwrap();
    let confirmed = confirm(app, &alice, hold_id, "tok_visa", TRACEPARENT).await;
    let booked = app.terminal(&alice, &confirmed).await;
    assert_eq!(booked["status"], "succeeded", "{booked}");
    let second = app.hold(&alice, &show, &["E2"]).await;
    let second_hold = second["result"]["hold_id"].as_str().unwrap();
    let failing = confirm(app, &alice, second_hold, "tok_unavailable", FAILING_TRACEPARENT).await;
    assert_eq!(app.terminal(&alice, &failing).await["status"], "dead_lettered");
    Flow { hold: held["request_id"].as_str().unwrap().to_owned(), confirm: confirmed, failing }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_booking_is_one_trace_across_ingress_queue_and_pools() {
    let exporter = InMemorySpanExporter::default();
    infra::logging::init_with(SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build());
    let app = spawn().await;
    let flow = book_and_fail(&app).await;
    let request_id = &flow.confirm;

    // The confirm carries the caller's trace. The downstream pools finish after the
    // booking does.
    let mut finished = Vec::new();
    for _ in 0..100 {
        finished = exporter.get_finished_spans().unwrap();
        // Analytics takes two events of this trace: the booking's and the notification's.
        let count = |pool| spans(&finished, TRACE_ID, "message", Some(pool)).len();
        if count("analytics") >= 2 && count("notifications") >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ingress = spans(&finished, TRACE_ID, "request", None);
    let ingress = ingress
        .iter()
        .find(|s| attribute(s, "path").as_deref() == Some("/v1/bookings"))
        .expect("the ingress span of the confirm continues the caller's trace");
    assert_eq!(ingress.parent_span_id.to_string(), "00f067aa0ba902b7", "a child of the caller's span");
    assert_eq!(attribute(ingress, "request_id").as_deref(), Some(request_id.as_str()));

    let worker = spans(&finished, TRACE_ID, "message", Some("booking"));
    assert_eq!(worker.len(), 1, "one booking worker span in the trace: {worker:?}");
    assert_eq!(worker[0].parent_span_id, ingress.span_context.span_id(), "the worker continues ingress's span");
    assert_eq!(attribute(worker[0], "request_id").as_deref(), Some(request_id.as_str()));

    // The booking's events carry the worker's span on to both downstream pools; analytics
    // also takes the `usher.notification.sent` event, which continues the notifications
    // worker's span. Every span of the trace hangs off another one of it, or the caller's.
    for pool in ["analytics", "notifications"] {
        let downstream = spans(&finished, TRACE_ID, "message", Some(pool));
        assert!(
            downstream.iter().any(|s| s.parent_span_id == worker[0].span_context.span_id()),
            "{pool} continues the booking worker's span: {downstream:?}"
        );
    }
    let in_trace: Vec<&SpanData> =
        finished.iter().filter(|s| s.span_context.trace_id().to_string() == TRACE_ID).collect();
    for span in &in_trace {
        let parent = span.parent_span_id.to_string();
        assert!(
            parent == "00f067aa0ba902b7" || in_trace.iter().any(|p| p.span_context.span_id() == span.parent_span_id),
            "{} has a parent outside the trace",
            span.name
        );
    }
    let notified = spans(&finished, TRACE_ID, "message", Some("notifications"));
    let analytics = spans(&finished, TRACE_ID, "message", Some("analytics"));
    assert!(
        analytics.iter().any(|a| notified.iter().any(|n| a.parent_span_id == n.span_context.span_id())),
        "the notification.sent event continues the trace into analytics"
    );

    // The hold, sent without a traceparent, is a trace of its own, across the queue too.
    let hold_ingress = finished
        .iter()
        .find(|s| s.name == "request" && attribute(s, "request_id").as_deref() == Some(flow.hold.as_str()))
        .expect("the hold's ingress span");
    let hold_trace = hold_ingress.span_context.trace_id().to_string();
    assert_ne!(hold_trace, TRACE_ID);
    assert_eq!(spans(&finished, &hold_trace, "message", Some("booking")).len(), 1, "the hold's worker joins its trace");

    // A confirm that keeps failing until it is dead-lettered stays in its caller's trace:
    // each receive's span, and the `usher.request.dead_lettered` event, which the analytics
    // pool then handles in a span of that trace too.
    let dead_lettered_in_trace = |finished: &[SpanData]| {
        spans(finished, FAILING_TRACE_ID, "message", Some("analytics"))
            .iter()
            .any(|s| attribute(s, "message_type").as_deref() == Some("usher.request.dead_lettered"))
    };
    for _ in 0..100 {
        finished = exporter.get_finished_spans().unwrap();
        if dead_lettered_in_trace(&finished) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let receives = spans(&finished, FAILING_TRACE_ID, "message", Some("booking")).len();
    assert_eq!(receives, app.settings.max_receives as usize, "each receive continues the caller's trace");
    assert!(dead_lettered_in_trace(&finished), "the dead_lettered event carries the caller's trace");
    app.stop().await;
}

/// The lines of `logged` whose message is `message`.
fn saying(logged: &infra::logging::Captured, message: &str) -> Vec<Value> {
    let text = logged.text();
    let lines = text.lines().map(|l| serde_json::from_str::<Value>(l).expect(l));
    lines.filter(|l| l["fields"]["message"] == message).collect()
}

/// How Usher runs unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set: no exporter, so spans get
/// ids alone. The trace still rides from the caller through ingress, the command message,
/// the booking worker and its events into the notifications pool, as the log lines of each
/// show. The app runs on this thread's runtime, under the subscriber `init` would install,
/// writing where the test reads.
#[test]
fn without_an_exporter_a_booking_is_still_one_trace_in_the_log_lines() {
    let (subscriber, lines) = infra::logging::captured("info");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (flow, max_receives) = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let app = spawn().await;
            let flow = book_and_fail(&app).await;
            // The notifications pool finishes after the booking does.
            for _ in 0..100 {
                if saying(&lines, "notification sent").iter().any(|l| l["trace_id"] == TRACE_ID) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let max_receives = app.settings.max_receives as usize;
            app.stop().await;
            (flow, max_receives)
        })
    });

    let admitted = |request_id: &str| {
        let found = saying(&lines, "command admitted");
        let line = found.iter().find(|l| l["request_id"] == request_id).expect("the admission's log line");
        line["trace_id"].as_str().expect("a trace id").to_owned()
    };
    assert_eq!(admitted(&flow.confirm), TRACE_ID, "ingress continues the caller's trace");
    let hold_trace = admitted(&flow.hold);
    assert!(hold_trace.len() == 32 && hold_trace != TRACE_ID && hold_trace != "0".repeat(32), "{hold_trace}");
    assert!(
        saying(&lines, "notification sent").iter().any(|l| l["trace_id"] == TRACE_ID),
        "the booking's event carried the trace through the worker into the notifications pool"
    );
    // Each receive of the failing confirm but the last is retried in the caller's trace,
    // and the last dead-lettered in it.
    let in_failing_trace = |message: &str| {
        saying(&lines, message)
            .iter()
            .filter(|l| l["trace_id"] == FAILING_TRACE_ID && l["request_id"] == flow.failing.as_str())
            .count()
    };
    assert_eq!(in_failing_trace("retrying later"), max_receives - 1);
    assert_eq!(in_failing_trace("dead-lettering"), 1);
}
