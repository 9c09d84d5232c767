//! Drives `POST /v1/holds` over HTTP against `usher dev` (embedded backend) and reports
//! accepted requests/s with p50/p99 latency, commands processed per second to a terminal
//! status, and the server's peak RSS.
//!
//! `cargo bench --bench holds` (env: BENCH_REQUESTS, default 30000; BENCH_CONNECTIONS,
//! default 64). Every hold takes one seat no other request asks for, so each command
//! does the full work of a successful hold: a seat claim, a hold, a status change, an
//! event and a delayed expiry message.

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SEATS_PER_SHOW: usize = 26 * 50;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `usher_consumer_lag_seconds{pool="x"} 0.12` lines of a Prometheus text page.
fn lags(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("usher_consumer_lag_seconds{pool=\""))
        .filter_map(|rest| {
            let (pool, value) = rest.split_once("\"} ")?;
            Some((pool.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

fn seat(n: usize) -> String {
    let i = n % SEATS_PER_SHOW;
    format!("{}{}", char::from(b'A' + (i / 50) as u8), i % 50 + 1)
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let requests = env_usize("BENCH_REQUESTS", 30_000);
    let connections = env_usize("BENCH_CONNECTIONS", 64);
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut dev = testkit::Dev::start(env!("CARGO_BIN_EXE_usher"), dir.path()).await;
    let pid = dev.child.id().expect("a pid");
    let (base, token) = (dev.client.base.clone(), dev.client.admin());
    let http = reqwest::Client::builder().pool_max_idle_per_host(connections).build().unwrap();

    // Enough seats that every hold gets its own.
    let post = |path: &'static str, body: Value| {
        let (client, token) = (&dev.client, &token);
        async move { client.post(Some(token), path, None, &body.to_string()).await.json::<Value>().await.unwrap() }
    };
    let movie = post("/v1/movies", json!({"title": "Bench", "duration_min": 100})).await;
    let mut shows = Vec::new();
    for _ in 0..requests.div_ceil(SEATS_PER_SHOW) {
        let show = post(
            "/v1/shows",
            json!({"movie_id": movie["movie_id"], "starts_at": "2030-01-01T20:00:00Z",
                   "auditorium": {"rows": 26, "seats_per_row": 50}, "price_cents": 1000}),
        )
        .await;
        shows.push(show["show_id"].as_str().expect("a show").to_owned());
    }
    let shows = Arc::new(shows);

    println!("bench: {requests} holds over {connections} connections against usher dev (embedded)");
    // Samples every pool's lag from /metrics while the bench runs.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (http, base, sampling) = (http.clone(), base.clone(), sampling.clone());
        tokio::spawn(async move {
            let mut worst: std::collections::BTreeMap<String, f64> = Default::default();
            while sampling.load(Ordering::Relaxed) {
                if let Ok(r) = http.get(format!("{base}/metrics")).send().await
                    && let Ok(text) = r.text().await
                {
                    for (pool, lag) in lags(&text) {
                        let w = worst.entry(pool).or_insert(0.0);
                        *w = w.max(lag);
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            worst
        })
    };
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..connections {
        let (http, base, next, shows, token) = (http.clone(), base.clone(), next.clone(), shows.clone(), token.clone());
        clients.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut ids = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= requests {
                    return (latencies, ids);
                }
                let body = json!({"show_id": shows[n / SEATS_PER_SHOW], "seat_ids": [seat(n)]});
                let t = Instant::now();
                let r = http
                    .post(format!("{base}/v1/holds"))
                    .bearer_auth(&token)
                    .header("Idempotency-Key", format!("bench-{n}"))
                    .json(&body)
                    .send()
                    .await
                    .expect("the server answers");
                assert_eq!(r.status(), 202);
                let v: Value = r.json().await.unwrap();
                latencies.push(t.elapsed());
                ids.push(v["request_id"].as_str().unwrap().to_owned());
            }
        }));
    }
    let mut latencies = Vec::new();
    let mut ids = Vec::new();
    for c in clients {
        let (l, i) = c.await.unwrap();
        latencies.extend(l);
        ids.extend(i);
    }
    let admitted_in = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];

    // Processed: poll every request until all are terminal.
    let mut pending = ids.clone();
    let mut succeeded = 0usize;
    while !pending.is_empty() {
        let mut still = Vec::new();
        for chunk in pending.chunks(256) {
            let checks = chunk.iter().map(|id| {
                let (http, base, token) = (http.clone(), base.clone(), token.clone());
                let id = id.clone();
                tokio::spawn(async move {
                    let doc: Value = http
                        .get(format!("{base}/v1/requests/{id}"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    (id, doc["status"].as_str().unwrap_or("").to_owned())
                })
            });
            for check in checks.collect::<Vec<_>>() {
                let (id, status) = check.await.unwrap();
                match status.as_str() {
                    "succeeded" => succeeded += 1,
                    "failed" | "dead_lettered" => {}
                    _ => still.push(id),
                }
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let processed_in = started.elapsed();
    // Let the downstream pools drain, then stop sampling.
    tokio::time::sleep(Duration::from_secs(2)).await;
    sampling.store(false, Ordering::Relaxed);
    let worst_lag = sampler.await.unwrap();
    let rss = peak_rss_kib(pid).unwrap_or(0);
    println!(
        "accepted: {:.0} req/s ({} in {:.2} s)",
        requests as f64 / admitted_in.as_secs_f64(),
        requests,
        admitted_in.as_secs_f64()
    );
    println!(
        "latency:  p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    println!(
        "processed to terminal: {:.0} commands/s ({} terminal, {} succeeded, in {:.2} s from the first request)",
        requests as f64 / processed_in.as_secs_f64(),
        requests,
        succeeded,
        processed_in.as_secs_f64()
    );
    for (pool, lag) in &worst_lag {
        println!("max consumer lag, {pool} pool: {:.3} s", lag);
    }
    println!("peak RSS of usher dev: {:.1} MiB", rss as f64 / 1024.0);
    let _ = dev.child.kill().await;
}
