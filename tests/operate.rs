//! Operating Usher (docs/contract.md §6): every metric of the contract after one booking,
//! `usher status` and `GET /v1/admin/status`, and the metrics a worker-only process serves.
//! Runs on the aws backend too (`USHER_TEST_BACKEND=aws`, scripts/test.sh).

mod support;

use domain::actor::Role;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use support::{cli, cli_command, spawn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use usher::{App, Components, Config, Pool};

/// Every metric name docs/contract.md §6 lists.
const CONTRACT_METRICS: [&str; 14] = [
    "usher_http_requests_total",
    "usher_http_request_duration_seconds",
    "usher_queue_visible",
    "usher_queue_in_flight",
    "usher_queue_oldest_age_seconds",
    "usher_dlq_depth",
    "usher_messages_total",
    "usher_handler_duration_seconds",
    "usher_outbox_pending",
    "usher_outbox_oldest_age_seconds",
    "usher_holds_total",
    "usher_bookings_total",
    "usher_tickets_total",
    // Histograms, not summaries: their buckets are series of their own.
    "usher_http_request_duration_seconds_bucket",
];

/// The metric names on a Prometheus text page, with their `# TYPE`.
fn families(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_contract_metric_is_present_after_one_booking() {
    let app = spawn().await;
    let alice = app.token("alice", Role::Customer);
    let show = app.show_id().await;
    let held = app.hold(&alice, &show, &["C1"]).await;
    assert_eq!(held["status"], "succeeded", "{held}");
    let hold_id = held["result"]["hold_id"].as_str().unwrap();
    let booked = app.run(&alice, "/v1/bookings", json!({ "hold_id": hold_id, "payment_token": "tok_visa" })).await;
    assert_eq!(booked["status"], "succeeded", "{booked}");

    // A worker counts a message after its commit, so a client can see the status first; the
    // analytics pool handles the booking's events later still. Wait for all three.
    let value = |text: &str, prefix: &str| {
        let line = text.lines().find(|l| l.starts_with(prefix)).unwrap_or_default();
        line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(-1.0)
    };
    let counted = |text: &str| {
        value(text, r#"usher_holds_total{outcome="placed"}"#) >= 1.0
            && value(text, r#"usher_bookings_total{outcome="confirmed"}"#) >= 1.0
            && value(text, r#"usher_messages_total{pool="booking",outcome="done"}"#) >= 2.0
            && text.contains(r#"usher_handler_duration_seconds_count{pool="analytics"}"#)
    };
    let mut text = String::new();
    for _ in 0..100 {
        text = app.client.get(None, "/metrics").await.text().await.unwrap();
        if counted(&text) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(counted(&text), "the booking's outcomes are counted within 10 s:\n{text}");
    // A family by its `# TYPE` line, and every series by its own name (`_bucket`, …).
    let kinds = families(&text);
    let mut names: BTreeSet<String> = kinds.iter().map(|(name, _)| name.clone()).collect();
    names.extend(
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| l.split(['{', ' ']).next().unwrap().to_owned()),
    );
    for name in CONTRACT_METRICS {
        assert!(names.contains(name), "{name} missing from /metrics:\n{text}");
    }
    for histogram in ["usher_http_request_duration_seconds", "usher_handler_duration_seconds"] {
        assert!(
            kinds.contains(&(histogram.to_owned(), "histogram".to_owned())),
            "{histogram} is a histogram: {kinds:?}"
        );
    }
    assert!(!kinds.iter().any(|(_, kind)| kind == "summary"), "no summaries: {kinds:?}");
    // The labels the contract names, and the committed outcomes counted.
    for series in [
        r#"usher_queue_visible{queue="booking-commands"}"#,
        r#"usher_dlq_depth{queue="analytics"}"#,
        r#"usher_holds_total{outcome="placed"}"#,
        r#"usher_bookings_total{outcome="confirmed"}"#,
        r#"usher_tickets_total{event="solved"}"#,
        r#"usher_handler_duration_seconds_bucket{pool="booking",le="0.5"}"#,
    ] {
        assert!(text.contains(series), "{series} missing:\n{text}");
    }
    if app.settings.backend == infra::BackendKind::Embedded {
        // The store's writer and syncer: the booking's writes were committed and synced,
        // into buckets finer than the API's.
        let positive = |series: &str| value(&text, series) > 0.0;
        for series in [
            "usher_store_commits_total",
            "usher_store_writes_total",
            "usher_store_commit_seconds_count",
            "usher_store_write_wait_seconds_count",
            "usher_store_sync_seconds_count",
            r#"usher_store_sync_seconds_bucket{le="1"}"#,
        ] {
            assert!(positive(series), "{series} missing or zero:\n{text}");
        }
        assert!(value(&text, "usher_store_writes_total") >= value(&text, "usher_store_commits_total"));
        assert!(text.contains(r#"usher_store_commit_seconds_bucket{le="0.0001"}"#), "{text}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_every_queue_and_the_outbox_on_the_cli_and_the_api() {
    let app = spawn().await;
    let alice = app.token("alice", Role::Customer);
    let show = app.show_id().await;
    let held = app.hold(&alice, &show, &["D1"]).await;
    assert_eq!(held["status"], "succeeded", "{held}");

    let (ok, stdout, stderr) = cli(&app, &["status", "--json"]);
    assert!(ok, "{stderr}");
    let status: Value = serde_json::from_str(&stdout).expect("one JSON document");
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(keys(&status), BTreeSet::from(["queues".to_owned(), "outbox".to_owned()]));
    let queues = status["queues"].as_array().unwrap();
    let names: Vec<&str> = queues.iter().map(|q| q["queue"].as_str().unwrap()).collect();
    assert_eq!(names, ["booking-commands", "ticket-commands", "notifications", "analytics"]);
    for q in queues {
        let expected = ["queue", "visible", "in_flight", "oldest_age_seconds", "dlq_depth"];
        assert_eq!(keys(q), expected.iter().map(|k| k.to_string()).collect(), "{q}");
        assert!(q["visible"].is_u64() && q["in_flight"].is_u64() && q["dlq_depth"].is_u64(), "{q}");
        assert!(q["oldest_age_seconds"].is_null() || q["oldest_age_seconds"].as_f64().unwrap() >= 0.0, "{q}");
    }
    assert_eq!(keys(&status["outbox"]), BTreeSet::from(["pending".to_owned(), "oldest_age_seconds".to_owned()]));
    assert!(status["outbox"]["pending"].is_u64());

    // The hold's expiry waits, delayed, on the booking queue: neither visible nor in flight.
    let booking = &queues[0];
    assert_eq!(booking["visible"].as_u64().unwrap() + booking["in_flight"].as_u64().unwrap(), 0, "{booking}");

    let (ok, table, stderr) = cli(&app, &["status"]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("QUEUE") && lines[0].contains("IN FLIGHT") && lines[0].contains("DLQ"), "{table}");
    for (line, name) in lines[1..5].iter().zip(names) {
        assert!(line.starts_with(name), "{table}");
    }
    assert!(lines[5].starts_with("outbox: "), "{table}");
    let (ok, _, stderr) = cli(&app, &["status", "--watch", "--json"]);
    assert!(!ok && stderr.contains("--json"), "--watch and --json do not mix: {stderr}");

    // The same document over HTTP, for admins only.
    let admin = app.token("root", Role::Admin);
    let over_http = app.client.get_json(&admin, "/v1/admin/status").await;
    assert_eq!(keys(&over_http), keys(&status));
    assert_eq!(over_http["queues"].as_array().unwrap().len(), 4);
    assert_eq!(keys(&over_http["queues"][0]), keys(&status["queues"][0]));
    // This process's consumers have received from the booking queue, but it has nothing
    // visible or in flight now: no oldest message, here as on the CLI.
    assert!(over_http["queues"][0]["oldest_age_seconds"].is_null(), "{over_http}");
    assert!(status["queues"][0]["oldest_age_seconds"].is_null(), "{status}");
    assert_eq!(app.client.get(Some(&alice), "/v1/admin/status").await.status(), 403);
    assert_eq!(app.client.get(None, "/v1/admin/status").await.status(), 401);
    app.stop().await;
}

#[test]
fn status_and_dlq_refuse_a_data_dir_with_no_store_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    for args in [&["status"][..], &["status", "--json"], &["dlq", "list"], &["dlq", "peek", "analytics"]] {
        let out = std::process::Command::new(support::USHER)
            .args(args)
            .env("USHER_BACKEND", "embedded")
            .env("USHER_DATA_DIR", &missing)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && out.stdout.is_empty(), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(&format!("no store at {}", missing.join("usher.db").display())), "{stderr}");
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }
}

/// An OTLP endpoint that is not one stops start-up with one line naming the variable
/// (README, "Configuration"), as every other bad setting does.
#[test]
fn a_bad_otlp_endpoint_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(support::USHER)
        .arg("ingress")
        .env("USHER_BACKEND", "embedded")
        .env("USHER_DATA_DIR", dir.path())
        .env("USHER_JWT_SECRET", "operate-test-secret-of-at-least-32-bytes")
        .env("USHER_HTTP_ADDR", "127.0.0.1:0")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "notaurl")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("usher: OTEL_EXPORTER_OTLP_ENDPOINT: spans cannot be exported"), "{stderr}");
}

/// A server started against a backend it cannot reach exits, after a while, with the
/// reason (README, "Commands"), instead of serving 503s forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_and_worker_exit_when_their_backend_never_answers() {
    let run = |args: &'static [&'static str]| {
        tokio::process::Command::new(support::USHER)
            .args(args)
            .env("USHER_BACKEND", "aws")
            // Nothing listens on port 1: every call is refused.
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("USHER_JWT_SECRET", "operate-test-secret-of-at-least-32-bytes")
            .env("USHER_HTTP_ADDR", "127.0.0.1:0")
            .env("USHER_METRICS_ADDR", "127.0.0.1:0")
            .env("USHER_LOG", "error")
            .kill_on_drop(true)
            .output()
    };
    let within = Duration::from_secs(60);
    let started = std::time::Instant::now();
    let (worker, ingress) = tokio::join!(
        tokio::time::timeout(within, run(&["worker", "--pool", "booking"])),
        tokio::time::timeout(within, run(&["ingress"]))
    );
    for out in [worker, ingress] {
        let out = out.expect("it gives up").expect("usher runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        let reason = stderr.lines().last().unwrap_or_default();
        assert!(reason.starts_with("usher: the backend did not answer within 20s"), "{stderr}");
        assert!(reason.contains("the endpoint could not be reached"), "the last try's error: {reason}");
    }
    // The 20 s bound the whole wait, the SDK's own retries of each try included: before,
    // only the pauses between tries counted, and the two gave up after about 40 s.
    assert!(started.elapsed() < Duration::from_secs(30), "gave up after {:?}", started.elapsed());
}

/// A worker process that has handled nothing yet already serves every series of its pool,
/// at zero: dashboards and alerts over `usher_handler_duration_seconds` see the pool from
/// its start. Its own process, so no other test's messages are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_worker_serves_its_pools_series_at_zero() {
    let app = spawn().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _worker = tokio::process::Command::from(cli_command(&app, &["worker", "--pool", "notifications"]))
        .env("USHER_METRICS_ADDR", format!("127.0.0.1:{port}"))
        .env("USHER_JWT_SECRET", "operate-test-secret-of-at-least-32-bytes")
        .env("USHER_LOG", "error")
        .kill_on_drop(true)
        .spawn()
        .expect("usher runs");
    let url = format!("http://127.0.0.1:{port}/metrics");
    let mut text = String::new();
    for _ in 0..100 {
        if let Ok(response) = reqwest::get(&url).await {
            text = response.text().await.unwrap_or_default();
            if text.contains("usher_messages_total") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for series in [
        r#"usher_handler_duration_seconds_count{pool="notifications"} 0"#,
        r#"usher_messages_total{pool="notifications",outcome="done"} 0"#,
    ] {
        assert!(text.lines().any(|line| line == series), "no `{series}` in:\n{text}");
    }
    // Its listener's own requests, in the HTTP series the contract lists (§6), from the
    // first scrape on.
    for series in [
        r#"usher_http_requests_total{method="GET",route="/metrics",status="200"} "#,
        r#"usher_http_request_duration_seconds_count{method="GET",route="/metrics"} "#,
    ] {
        assert!(text.lines().any(|line| line.starts_with(series)), "no `{series}` in:\n{text}");
    }
    let again = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let scrapes = |text: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(r#"usher_http_requests_total{method="GET",route="/metrics""#));
        line.and_then(|l| l.rsplit(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0)
    };
    assert!(scrapes(&again) > scrapes(&text), "a scrape is counted:\n{again}");
}

/// `usher status | head -0`: a reader that goes away ends the command with a one-line
/// error and a non-zero exit, not a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_is_an_error_not_a_panic() {
    let app = spawn().await;
    let mut child = cli_command(&app, &["status"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("usher runs");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("usher ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.trim(), "usher: Broken pipe (os error 32)", "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_only_process_serves_metrics_and_health() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        backend: testkit::settings::app(dir.path()),
        ingress: testkit::settings::ingress(),
        workers: testkit::settings::workers(),
    };
    config.workers.metrics_addr = "127.0.0.1:0".parse().unwrap();
    config.ingress.header_timeout = Duration::from_secs(1);
    infra::Backend::setup(&config.backend).await.unwrap();
    let components =
        Components { ingress: false, pools: vec![Pool::Analytics], sweep: false, ..Components::everything() };
    let app = App::build(config, components).await.unwrap();
    assert_eq!(app.http_addr(), None, "no API");
    let addr = app.metrics_addr().expect("metrics are served");
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(app.run_until_stopped(stop.clone()));
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("http://{addr}{path}")).send();
    assert_eq!(get("/health/live").await.unwrap().status(), 200);
    assert_eq!(get("/health/ready").await.unwrap().status(), 200);
    let mut text = String::new();
    for _ in 0..50 {
        text = get("/metrics").await.unwrap().text().await.unwrap();
        if text.contains("usher_dlq_depth") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(text.contains(r#"usher_messages_total{pool="analytics",outcome="done"}"#), "{text}");
    assert!(text.contains(r#"usher_dlq_depth{queue="analytics"}"#), "{text}");
    assert_eq!(get("/v1/movies").await.unwrap().status(), 404, "only operations routes");

    // A client that never finishes its headers is cut off, as on the API's listener.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = std::time::Instant::now();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: usher\r\nX-Slow: ").await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "a stalled client still held its connection after 5 s");
    assert!(started.elapsed() >= Duration::from_millis(900), "closed before the header timeout");
    stop.cancel();
    running.await.unwrap().unwrap();
}

/// Every `usher_*` name in a PromQL expression (a histogram's `_bucket` series under its
/// family's name).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("usher_") {
        let tail = &rest[at..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        let name = &tail[..end];
        names.insert(name.strip_suffix("_bucket").unwrap_or(name).to_owned());
        rest = &tail[end..];
    }
    names
}

/// What `/metrics` serves beyond the contract's list.
const OTHER_METRICS: [&str; 8] = [
    "usher_consumer_lag_seconds",
    "usher_outbox_delivered_total",
    "usher_payments_voided_total",
    "usher_store_write_wait_seconds",
    "usher_store_commit_seconds",
    "usher_store_sync_seconds",
    "usher_store_commits_total",
    "usher_store_writes_total",
];

#[test]
fn the_dashboard_is_grafana_json_over_metrics_usher_serves() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/ops/grafana/usher.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("well-formed JSON");
    assert_eq!(dashboard["uid"], "usher-overview");
    let panels = dashboard["panels"].as_array().unwrap();
    let rows: Vec<&str> = panels.iter().filter(|p| p["type"] == "row").map(|p| p["title"].as_str().unwrap()).collect();
    assert_eq!(rows, ["RED per route (ingress)", "Queues", "Pools", "Outbox", "Business", "Store (embedded)"]);
    let known: BTreeSet<&str> = CONTRACT_METRICS.iter().chain(OTHER_METRICS.iter()).copied().collect();
    let mut used = BTreeSet::new();
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let targets = panel["targets"].as_array().expect("every panel queries");
        assert!(!targets.is_empty(), "{panel}");
        for target in targets {
            for name in metric_names(target["expr"].as_str().unwrap()) {
                assert!(known.contains(name.as_str()), "{name} is not a metric Usher serves");
                used.insert(name);
            }
        }
    }
    for name in CONTRACT_METRICS.iter().filter(|n| !n.ends_with("_bucket")) {
        assert!(used.contains(*name), "the dashboard shows no {name}");
    }
}

#[test]
fn the_alert_rules_use_metrics_usher_serves() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/ops/prometheus/alerts.yml");
    let rules = std::fs::read_to_string(path).unwrap();
    let names = metric_names(&rules);
    assert_eq!(
        names,
        BTreeSet::from(
            [
                "usher_dlq_depth",
                "usher_queue_oldest_age_seconds",
                "usher_http_requests_total",
                "usher_http_request_duration_seconds",
                "usher_outbox_oldest_age_seconds"
            ]
            .map(str::to_owned)
        )
    );
    for alert in ["UsherDeadLetters", "UsherQueueBehind", "UsherHttp5xx", "UsherHttpSlow", "UsherOutboxBehind"] {
        assert!(rules.contains(&format!("alert: {alert}")), "{alert}");
    }
}

/// The binary runs jemalloc with its own options (src/alloc.rs), and `MALLOC_CONF` in the
/// environment still overrides them, as an operator tuning memory would expect.
#[test]
fn jemalloc_starts_with_usher_options_and_malloc_conf_overrides_them() {
    let gc_every = |conf: &str| {
        let out =
            std::process::Command::new(support::USHER).arg("--version").env("MALLOC_CONF", conf).output().unwrap();
        assert!(out.status.success());
        // jemalloc prints its statistics, options included, on stderr at exit.
        let stats = String::from_utf8_lossy(&out.stderr).into_owned();
        let line = stats.lines().find(|l| l.trim_start().starts_with("opt.tcache_gc_incr_bytes:"));
        line.unwrap_or_else(|| panic!("no tcache_gc_incr_bytes in:\n{stats}")).trim().to_owned()
    };
    assert_eq!(gc_every("stats_print:true"), "opt.tcache_gc_incr_bytes: 1048576");
    assert_eq!(gc_every("stats_print:true,tcache_gc_incr_bytes:4096"), "opt.tcache_gc_incr_bytes: 4096");
}
