//! `usher bench`: the load generator. It drives a running Usher over HTTP (either backend),
//! with tokens minted from the configured secret, and reports what a client sees:
//!
//! 1. **Setup**: its own movie and shows, through the admin API.
//! 2. **Load**: the scenario's commands, closed loop over `--connections` or open loop at
//!    `--rate` (latency counted from each request's scheduled start, so a stalled server
//!    is not hidden by a stalled generator). Every command carries a fresh
//!    `Idempotency-Key` and every customer is its own `sub`, so neither the per-caller rate
//!    limit nor the hold cap shapes the numbers.
//! 3. **Drain**: it waits, reading only `GET /v1/admin/status` every 100 ms, until the
//!    command queues have nothing visible or in flight; then every accepted request's
//!    status document is read until it is terminal. Accept → terminal is the document's
//!    `updated_at − created_at` (the server's clock), so measuring it adds no load while
//!    the commands run.
//! 4. **Invariants**: every 202 reached a terminal status, none was dead-lettered, no seat
//!    is in two succeeded holds, and (contention) exactly one winner per seat. A broken
//!    invariant exits non-zero.
//!
//! `--scenario baseline` POSTs `{}` to `--url` itself and expects any 2xx: it measures an
//! HTTP server with the same client, for the hello-world ratio in BENCHMARKS.md.
//!
//! The timed requests go out on one HTTP/1.1 connection per load worker ([`wire`]), which
//! costs the shared cores a few µs a request; the untimed ones (setup, drain, checks) on
//! reqwest.

mod wire;

use anyhow::{Context, bail, ensure};
use domain::actor::Role;
use domain::clock;
use hdrhistogram::Histogram;
use hyper::Method;
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, HeaderName, HeaderValue};
use ingress::auth::{Audience, JwtSecret, mint_token_for};
use ingress::idempotency::IDEMPOTENCY_KEY;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use wire::Connection;

/// Seats of one show in the `holds` and `mixed` scenarios: every hold takes a fresh seat.
const ROWS: u32 = 26;
const SEATS_PER_ROW: u32 = 50;
const SHOW_SEATS: usize = (ROWS * SEATS_PER_ROW) as usize;
/// Seats of the one hot show `mixed` also contends for.
const HOT_SEATS: usize = 20;
/// Longest wait for the last accepted command to become terminal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);
const TOKEN_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Scenario {
    /// Each request holds one fresh seat: every command does the full work of a success.
    Holds,
    /// `--requests` customers race for the `--seats` seats of one show, one seat each.
    Contention,
    /// Flows of holds then confirms or releases, tickets, and a hot show.
    Mixed,
    /// POSTs `{}` to `--url` and counts 2xx answers: any HTTP server, for comparison.
    Baseline,
}

/// Mints the bench's tokens as `usher token` would: the configured secret, issuer and
/// audience.
pub(crate) struct Minter {
    pub secret: JwtSecret,
    pub to: Audience,
}

impl Minter {
    fn token(&self, sub: &str, role: Role) -> String {
        mint_token_for(&self.secret, sub, role, TOKEN_TTL, &self.to)
    }
}

/// What `usher bench` was asked to do.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub url: String,
    pub requests: usize,
    pub connections: usize,
    pub rate: Option<f64>,
    pub scenario: Scenario,
    pub seats: usize,
}

/// One admitted command, as the client saw it.
struct Accepted {
    request_id: String,
}

/// The shared state of one run.
struct Run {
    http: reqwest::Client,
    base: String,
    /// Where the timed requests go, each load worker on its own connection.
    target: Arc<wire::Target>,
    minter: Minter,
    /// Distinguishes this run's customers and keys from earlier runs on the same store.
    tag: String,
    scenario: Scenario,
    shows: Vec<String>,
    hot_show: Option<String>,
    seats: usize,
    accept: Mutex<Histogram<u64>>,
    accepted: Mutex<Vec<Accepted>>,
    rejected: Mutex<BTreeMap<String, usize>>,
    sent: AtomicUsize,
}

pub(crate) async fn run(minter: Minter, plan: Plan) -> anyhow::Result<()> {
    ensure!(plan.requests > 0, "--requests must be at least 1");
    ensure!(plan.connections > 0, "--connections must be at least 1");
    let base = plan.url.trim_end_matches('/').to_owned();
    let target = Arc::new(wire::Target::parse(&base)?);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.connections)
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")?;
    let admin = minter.token("bench-admin", Role::Admin);
    if plan.scenario != Scenario::Baseline {
        // The error's whole chain is printed: a refused connection or a certificate the
        // system does not trust says so, not only "error sending request".
        let ready =
            http.get(format!("{base}/health/ready")).send().await.with_context(|| format!("cannot reach {base}"))?;
        ensure!(ready.status().is_success(), "{base} is not ready: /health/ready answered {}", ready.status());
    }
    let (shows, hot_show) = catalog(&http, &base, &admin, &plan).await?;
    let run = Arc::new(Run {
        http,
        base,
        target,
        minter,
        tag: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
        scenario: plan.scenario,
        shows,
        hot_show,
        seats: plan.seats,
        accept: Mutex::new(histogram()),
        accepted: Mutex::new(Vec::with_capacity(plan.requests)),
        rejected: Mutex::default(),
        sent: AtomicUsize::new(0),
    });
    let pacing = match plan.rate {
        Some(rate) => format!("open loop at {rate}/s (at most {} in flight)", plan.connections),
        None => format!("closed loop over {} connections", plan.connections),
    };
    out!("usher bench: scenario {:?}, {} requests, {pacing}, against {}", plan.scenario, plan.requests, run.base)?;

    let started = Instant::now();
    load(&run, &plan).await;
    let load_time = started.elapsed();
    let accept = run.accept.lock().await.clone();
    let accepted = std::mem::take(&mut *run.accepted.lock().await);
    let rejected = run.rejected.lock().await.clone();
    let sent = run.sent.load(Ordering::Relaxed);
    out!(
        "accepted   {} of {sent} in {:.2} s: {:.0}/s; accept latency p50 {}, p99 {}, max {}",
        accept.len(),
        load_time.as_secs_f64(),
        accept.len() as f64 / load_time.as_secs_f64(),
        ms(accept.value_at_quantile(0.50)),
        ms(accept.value_at_quantile(0.99)),
        ms(accept.max()),
    )?;
    if !rejected.is_empty() {
        out!("rejected   {rejected:?}")?;
    }
    if plan.scenario == Scenario::Baseline {
        ensure!(rejected.is_empty(), "some requests were not answered 2xx");
        return Ok(());
    }

    settle(&run, &admin).await;
    let docs = drain(&run, &admin, &accepted).await;
    let report = Report::of(&docs);
    report.print(load_time)?;
    let broken = check(&run, &admin, &docs, &report).await?;
    if !rejected.is_empty() {
        out!("invariant  broken: {} requests were not accepted", rejected.values().sum::<usize>())?;
        bail!("the door refused requests it should have taken");
    }
    if broken.is_empty() {
        out!(
            "invariants ok: every 202 terminal, none dead-lettered, no seat in two live holds{}",
            if plan.scenario == Scenario::Contention { ", one winner per seat" } else { "" }
        )?;
        Ok(())
    } else {
        for b in &broken {
            out!("invariant  broken: {b}")?;
        }
        bail!("{} invariant(s) broken", broken.len())
    }
}

fn histogram() -> Histogram<u64> {
    // Microseconds, 1 µs to 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("static histogram bounds are valid")
}

fn ms(micros: u64) -> String {
    format!("{:.1} ms", micros as f64 / 1000.0)
}

/// Makes the movie and shows the scenario needs.
async fn catalog(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    plan: &Plan,
) -> anyhow::Result<(Vec<String>, Option<String>)> {
    let (shows, hot) = match plan.scenario {
        Scenario::Baseline => return Ok((Vec::new(), None)),
        Scenario::Holds => (plan.requests.div_ceil(SHOW_SEATS), 0),
        Scenario::Mixed => (plan.requests.div_ceil(SHOW_SEATS), HOT_SEATS),
        Scenario::Contention => (0, plan.seats),
    };
    let post = |path: &str, body: Value| {
        let request = http.post(format!("{base}{path}")).bearer_auth(admin).json(&body);
        async move {
            let response = request.send().await.with_context(|| format!("cannot reach {base}"))?;
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            ensure!(status.is_success(), "setting up the catalog failed: {status} {body}");
            Ok(body)
        }
    };
    let movie = post("/v1/movies", json!({"title": "usher bench", "duration_min": 100})).await?;
    let show = |rows: u32, per_row: u32| {
        post(
            "/v1/shows",
            json!({"movie_id": movie["movie_id"], "starts_at": "2030-01-01T20:00:00Z",
                   "auditorium": {"rows": rows, "seats_per_row": per_row}, "price_cents": 1000}),
        )
    };
    let id = |v: Value| v["show_id"].as_str().map(str::to_owned).context("the show has no show_id");
    let mut made = Vec::with_capacity(shows);
    for _ in 0..shows {
        made.push(id(show(ROWS, SEATS_PER_ROW).await?)?);
    }
    let hot_show = if hot > 0 {
        ensure!(hot <= 26 * 1000, "--seats must be at most 26000");
        let per_row = hot.min(50) as u32;
        ensure!(hot % per_row as usize == 0, "--seats must be a multiple of 50 above 50");
        Some(id(show((hot / per_row as usize) as u32, per_row).await?)?)
    } else {
        None
    };
    Ok((made, hot_show))
}

/// Seat `i` of a layout `per_row` seats wide: `A1`, `A2`, …
fn seat(i: usize, per_row: usize) -> String {
    format!("{}{}", char::from(b'A' + (i / per_row) as u8), i % per_row + 1)
}

/// Runs every unit of the scenario over `--connections` workers, each taking the next unit
/// as soon as it is free. Closed loop, a unit starts then. Open loop, unit `n` is due at
/// `n / rate` from the start: a worker free early waits for it, a worker free late starts
/// it at once, and its latency still counts from when it was due. So at most
/// `--connections` are in flight either way, and the generator holds one task per
/// connection. (It used to spawn a task per request, to wait for a permit: once the server
/// fell behind, thousands of them waited at once, on the cores the server runs on.)
async fn load(run: &Arc<Run>, plan: &Plan) {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..plan.connections)
        .map(|_| {
            let (run, next, requests, rate) = (run.clone(), next.clone(), plan.requests, plan.rate);
            tokio::spawn(async move {
                let mut connection = Connection::new(run.target.clone());
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= requests {
                        return;
                    }
                    let due = match rate {
                        Some(rate) => {
                            let due = start + Duration::from_secs_f64(n as f64 / rate);
                            tokio::time::sleep_until(due.into()).await;
                            due
                        }
                        None => Instant::now(),
                    };
                    unit(&run, &mut connection, n, due).await;
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
}

/// One unit of the scenario on `connection`: one command, or (mixed) a short flow of them.
async fn unit(run: &Run, connection: &mut Connection, n: usize, scheduled: Instant) {
    let customer = format!("bench-{}-c{n}", run.tag);
    match run.scenario {
        Scenario::Baseline => {
            let answer = connection.send(Method::POST, "", &[], Bytes::from_static(b"{}")).await;
            run.sent.fetch_add(1, Ordering::Relaxed);
            match answer {
                Ok(a) if a.status.is_success() => record(&run.accept, scheduled).await,
                Ok(a) => reject(run, a.status.as_str()).await,
                Err(failure) => reject(run, failure.as_str()).await,
            }
        }
        Scenario::Holds => {
            let show = &run.shows[n / SHOW_SEATS];
            let body = json!({"show_id": show, "seat_ids": [seat(n % SHOW_SEATS, SEATS_PER_ROW as usize)]});
            command(run, connection, &customer, "/v1/holds", &body, scheduled).await;
        }
        Scenario::Contention => {
            let show = run.hot_show.as_deref().unwrap_or_default();
            let body = json!({"show_id": show, "seat_ids": [seat(n % run.seats, run.seats.min(50))]});
            command(run, connection, &customer, "/v1/holds", &body, scheduled).await;
        }
        Scenario::Mixed => mixed(run, connection, n, &customer, scheduled).await,
    }
}

/// A mixed flow, by `n % 10`: 0–2 hold then confirm (one in ten of those declined), 3 hold
/// then release, 4–5 hold and let it be, 6–8 open a ticket, 9 hold a seat of the hot show.
async fn mixed(run: &Run, connection: &mut Connection, n: usize, customer: &str, scheduled: Instant) {
    let fresh = || {
        let show = &run.shows[n / SHOW_SEATS];
        json!({"show_id": show, "seat_ids": [seat(n % SHOW_SEATS, SEATS_PER_ROW as usize)]})
    };
    match n % 10 {
        0..=3 => {
            let Some(hold) = command(run, connection, customer, "/v1/holds", &fresh(), scheduled).await else {
                return;
            };
            let Some(hold_id) = outcome(run, connection, customer, &hold).await else { return };
            if n % 10 == 3 {
                let path = format!("/v1/holds/{hold_id}/release");
                command(run, connection, customer, &path, &json!({}), Instant::now()).await;
            } else {
                let card = if n % 100 == 0 { "tok_decline" } else { "tok_visa" };
                let body = json!({"hold_id": hold_id, "payment_token": card});
                command(run, connection, customer, "/v1/bookings", &body, Instant::now()).await;
            }
        }
        4 | 5 => {
            command(run, connection, customer, "/v1/holds", &fresh(), scheduled).await;
        }
        6..=8 => {
            let body = json!({"subject": format!("bench ticket {n}"), "description": "generated by usher bench"});
            command(run, connection, customer, "/v1/tickets", &body, scheduled).await;
        }
        _ => {
            let show = run.hot_show.as_deref().unwrap_or_default();
            let body = json!({"show_id": show, "seat_ids": [seat(n % HOT_SEATS, HOT_SEATS)]});
            command(run, connection, customer, "/v1/holds", &body, scheduled).await;
        }
    }
}

/// What the bench reads of a command's answer: the 202's request id, or a problem's code.
#[derive(serde::Deserialize, Default)]
struct CommandAnswer {
    request_id: Option<String>,
    code: Option<String>,
}

/// A customer's request headers: its bearer token, and a command's `Idempotency-Key`.
fn customer_headers(token: &str, key: Option<&str>) -> Vec<(HeaderName, HeaderValue)> {
    let bearer = HeaderValue::try_from(format!("Bearer {token}")).ok().map(|v| (AUTHORIZATION, v));
    let key = key.and_then(|k| HeaderValue::try_from(k).ok()).map(|v| (IDEMPOTENCY_KEY, v));
    bearer.into_iter().chain(key).collect()
}

/// POSTs one command as `customer` on `connection`; records its accept latency when it is
/// answered 202.
async fn command(
    run: &Run,
    connection: &mut Connection,
    customer: &str,
    path: &str,
    body: &Value,
    scheduled: Instant,
) -> Option<String> {
    let token = run.minter.token(customer, Role::Customer);
    let key = uuid::Uuid::new_v4().simple().to_string();
    let headers = customer_headers(&token, Some(&key));
    let body = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
    run.sent.fetch_add(1, Ordering::Relaxed);
    let answer = match connection.send(Method::POST, path, &headers, body).await {
        Ok(answer) => answer,
        Err(failure) => {
            reject(run, failure.as_str()).await;
            return None;
        }
    };
    let read: CommandAnswer = serde_json::from_slice(&answer.body).unwrap_or_default();
    if answer.status != hyper::StatusCode::ACCEPTED {
        reject(run, &format!("{} {}", answer.status.as_u16(), read.code.unwrap_or_default())).await;
        return None;
    }
    record(&run.accept, scheduled).await;
    let request_id = read.request_id?;
    run.accepted.lock().await.push(Accepted { request_id: request_id.clone() });
    Some(request_id)
}

/// Long-polls a hold's status document on `connection`; its hold id when it succeeded.
async fn outcome(run: &Run, connection: &mut Connection, customer: &str, request_id: &str) -> Option<String> {
    let token = run.minter.token(customer, Role::Customer);
    let headers = customer_headers(&token, None);
    let path = format!("/v1/requests/{request_id}?wait=10");
    for _ in 0..12 {
        let answer = connection.send(Method::GET, &path, &headers, Bytes::new()).await.ok()?;
        let doc: Value = serde_json::from_slice(&answer.body).ok()?;
        match doc["status"].as_str() {
            Some("succeeded") => return doc["result"]["hold_id"].as_str().map(str::to_owned),
            Some("failed" | "dead_lettered") => return None,
            _ => {}
        }
    }
    None
}

async fn record(histogram: &Mutex<Histogram<u64>>, since: Instant) {
    let micros = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
    histogram.lock().await.saturating_record(micros);
}

async fn reject(run: &Run, why: &str) {
    *run.rejected.lock().await.entry(why.to_owned()).or_default() += 1;
}

/// A terminal status document, as far as the report needs it.
struct Doc {
    kind: String,
    status: String,
    code: Option<String>,
    result: Value,
    created_ms: i64,
    updated_ms: i64,
}

/// Waits until the command queues have nothing visible or in flight (delayed messages,
/// such as holds' expiries, do not count), reading only the queue status, so that the
/// status documents are not polled while the workers still run. Gives up at the drain's
/// timeout, or at once if the status cannot be read; [`drain`] then polls as it always does.
async fn settle(run: &Run, admin: &str) {
    const COMMAND_QUEUES: [&str; 2] = ["booking-commands", "ticket-commands"];
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while Instant::now() < deadline {
        let url = format!("{}/v1/admin/status", run.base);
        let status: Option<Value> =
            async { run.http.get(url).bearer_auth(admin).send().await.ok()?.json().await.ok() }.await;
        let Some(queues) = status.as_ref().and_then(|s| s["queues"].as_array()) else { return };
        let busy = queues
            .iter()
            .filter(|q| q["queue"].as_str().is_some_and(|name| COMMAND_QUEUES.contains(&name)))
            .any(|q| q["visible"].as_u64().unwrap_or(1) + q["in_flight"].as_u64().unwrap_or(1) > 0);
        if !busy {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads every accepted request's status document until all are terminal, or the drain
/// times out (the requests still open are then reported, and fail the run).
async fn drain(run: &Arc<Run>, admin: &str, accepted: &[Accepted]) -> Vec<Result<Doc, String>> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let mut open: Vec<usize> = (0..accepted.len()).collect();
    let mut docs: Vec<Option<Result<Doc, String>>> = (0..accepted.len()).map(|_| None).collect();
    while !open.is_empty() {
        let mut still = Vec::new();
        for chunk in open.chunks(64) {
            let reads = chunk.iter().map(|&i| {
                let (http, url, admin) = (
                    run.http.clone(),
                    format!("{}/v1/requests/{}", run.base, accepted[i].request_id),
                    admin.to_owned(),
                );
                tokio::spawn(async move {
                    let doc: Value = http.get(url).bearer_auth(admin).send().await.ok()?.json().await.ok()?;
                    Some(doc)
                })
            });
            let reads: Vec<_> = reads.collect();
            for (&i, read) in chunk.iter().zip(reads) {
                match read.await.ok().flatten().and_then(|doc| terminal(&doc)) {
                    Some(doc) => docs[i] = Some(Ok(doc)),
                    None => still.push(i),
                }
            }
        }
        open = still;
        if !open.is_empty() {
            if Instant::now() > deadline {
                for &i in &open {
                    docs[i] = Some(Err(accepted[i].request_id.clone()));
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    docs.into_iter().map(|d| d.unwrap_or_else(|| Err(String::new()))).collect()
}

fn terminal(doc: &Value) -> Option<Doc> {
    let status = doc["status"].as_str()?;
    if !matches!(status, "succeeded" | "failed" | "dead_lettered") {
        return None;
    }
    let millis = |field: &str| doc[field].as_str().and_then(|t| clock::parse(t).ok()).map(clock::to_millis);
    Some(Doc {
        kind: doc["kind"].as_str().unwrap_or_default().to_owned(),
        status: status.to_owned(),
        code: doc["error"]["code"].as_str().map(str::to_owned),
        result: doc["result"].clone(),
        created_ms: millis("created_at")?,
        updated_ms: millis("updated_at")?,
    })
}

/// What the drained documents say.
struct Report {
    terminal: usize,
    open: Vec<String>,
    to_terminal: Histogram<u64>,
    span_ms: i64,
    outcomes: BTreeMap<String, usize>,
    dead: usize,
}

impl Report {
    fn of(docs: &[Result<Doc, String>]) -> Report {
        let mut to_terminal = histogram();
        let mut outcomes = BTreeMap::new();
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        let mut open = Vec::new();
        let mut dead = 0;
        for doc in docs {
            match doc {
                Ok(d) => {
                    let ms = (d.updated_ms - d.created_ms).max(0) as u64;
                    to_terminal.saturating_record((ms * 1000).max(1));
                    first = first.min(d.created_ms);
                    last = last.max(d.updated_ms);
                    let label = match &d.code {
                        Some(code) => format!("{} {} {code}", d.kind, d.status),
                        None => format!("{} {}", d.kind, d.status),
                    };
                    *outcomes.entry(label).or_default() += 1;
                    dead += usize::from(d.status == "dead_lettered");
                }
                Err(id) => open.push(id.clone()),
            }
        }
        Report { terminal: docs.len() - open.len(), open, to_terminal, span_ms: (last - first).max(1), outcomes, dead }
    }

    fn print(&self, load_time: Duration) -> std::io::Result<()> {
        let span = self.span_ms as f64 / 1000.0;
        out!(
            "terminal   {} in {span:.2} s from the first admission: {:.0}/s; accept→terminal p50 {}, p99 {}, max {}",
            self.terminal,
            self.terminal as f64 / span,
            ms(self.to_terminal.value_at_quantile(0.50)),
            ms(self.to_terminal.value_at_quantile(0.99)),
            ms(self.to_terminal.max()),
        )?;
        out!(
            "drain      the last command ended {:.2} s after the load's {:.2} s",
            (span - load_time.as_secs_f64()).max(0.0),
            load_time.as_secs_f64()
        )?;
        for (label, count) in &self.outcomes {
            out!("outcome    {label}: {count}")?;
        }
        Ok(())
    }
}

/// Checks the invariants; what it returns is what broke.
async fn check(run: &Run, admin: &str, docs: &[Result<Doc, String>], report: &Report) -> anyhow::Result<Vec<String>> {
    let mut broken = Vec::new();
    if !report.open.is_empty() {
        broken.push(format!(
            "{} accepted requests were not terminal {} s after the load (first: {})",
            report.open.len(),
            DRAIN_TIMEOUT.as_secs(),
            report.open[0]
        ));
    }
    if report.dead > 0 {
        broken.push(format!("{} requests were dead-lettered", report.dead));
    }
    // No seat in two succeeded holds; what the seat maps say agrees.
    let mut held: HashMap<String, HashSet<String>> = HashMap::new();
    for doc in docs.iter().flatten() {
        if doc.kind != "booking.hold.place" || doc.status != "succeeded" {
            continue;
        }
        let show = doc.result["show_id"].as_str().unwrap_or_default().to_owned();
        let seats = held.entry(show.clone()).or_default();
        for seat in doc.result["seat_ids"].as_array().into_iter().flatten() {
            let seat = seat.as_str().unwrap_or_default().to_owned();
            if !seats.insert(seat.clone()) {
                broken.push(format!("seat {seat} of show {show} is in two succeeded holds"));
            }
        }
    }
    if run.scenario == Scenario::Contention {
        let won = held.values().map(HashSet::len).sum::<usize>();
        let expected = run.seats.min(docs.len());
        if won != expected {
            broken.push(format!("{won} holds won {} seats; expected exactly {expected}", run.seats));
        }
    }
    for (show, seats) in &held {
        let map: Value =
            run.http.get(format!("{}/v1/shows/{show}/seats", run.base)).bearer_auth(admin).send().await?.json().await?;
        let taken: HashSet<&str> = map["seats"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["state"] != "available")
            .filter_map(|s| s["seat_id"].as_str())
            .collect();
        if let Some(seat) = seats.iter().find(|s| !taken.contains(s.as_str())) {
            // Released holds free their seats: only `holds` and `contention` keep every one.
            if run.scenario != Scenario::Mixed {
                broken.push(format!("seat {seat} of show {show} won a hold but the seat map shows it free"));
            }
        }
    }
    Ok(broken)
}
