//! The crash loop: `usher dev` under mixed load (holds, double confirms, releases,
//! tickets) is killed with SIGKILL at a random moment, restarted on the same data dir,
//! and checked, again and again. After every restart:
//! - every 202 reaches a terminal status (clients retry unanswered requests with their
//!   key, as clients of an idempotent API do);
//! - no seat is held or booked twice, and the seat map agrees with the outcomes;
//! - every succeeded hold's `hold.placed` (and every booking's `booking.confirmed`)
//!   reached analytics: its report agrees with the seat map;
//! - no hold is charged twice and no charge exists without its booking: each hold has
//!   at most one succeeded confirm, and analytics counts one booking per such confirm.
//!
//! `scripts/crash-loop.sh N` runs N rounds (`USHER_CRASH_LOOPS`); CI runs one.

mod support;

use domain::actor::Role;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::Dev;
use tokio::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hold,
    Confirm,
    Release,
    Ticket,
}

/// One command a client sent, with its key, and its request id once a 202 came.
#[derive(Debug, Clone)]
struct Attempt {
    kind: Kind,
    customer: String,
    path: String,
    key: String,
    body: Value,
    request_id: Option<String>,
}

struct Client {
    http: reqwest::Client,
    base: String,
    tokens: Arc<BTreeMap<String, String>>,
}

impl Client {
    /// POSTs a command; the request id of its 202, or None once the server is gone.
    async fn post(&self, a: &Attempt) -> Option<String> {
        for _ in 0..100 {
            let r = self
                .http
                .post(format!("{}{}", self.base, a.path))
                .bearer_auth(&self.tokens[&a.customer])
                .header("Idempotency-Key", &a.key)
                .json(&a.body)
                .send()
                .await
                .ok()?;
            match r.status().as_u16() {
                202 => return r.json::<Value>().await.ok()?["request_id"].as_str().map(str::to_owned),
                409 | 503 => tokio::time::sleep(Duration::from_millis(300)).await,
                other => panic!("{} answered {other}", a.path),
            }
        }
        panic!("{} never admitted", a.path);
    }

    /// The status document once terminal; None if the server went away first.
    async fn terminal(&self, customer: &str, request_id: &str, patience: Duration) -> Option<Value> {
        let until = Instant::now() + patience;
        while Instant::now() < until {
            let doc: Value = self
                .http
                .get(format!("{}/v1/requests/{request_id}?wait=5", self.base))
                .bearer_auth(&self.tokens[customer])
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            if matches!(doc["status"].as_str(), Some("succeeded" | "failed" | "dead_lettered")) {
                return Some(doc);
            }
        }
        None
    }
}

/// A new show of 10 × 20 seats, so rounds never run out of seats.
async fn new_show(dev: &Dev) -> String {
    let (client, admin) = (&dev.client, &dev.client.admin());
    let post = |path: &'static str, body: Value| async move {
        let r = client.post(Some(admin), path, None, &body.to_string()).await;
        r.json::<Value>().await.unwrap()
    };
    let movie = post("/v1/movies", json!({"title": "Crash", "duration_min": 90})).await;
    let show = post(
        "/v1/shows",
        json!({
            "movie_id": movie["movie_id"], "starts_at": "2030-01-01T20:00:00Z",
            "auditorium": {"rows": 10, "seats_per_row": 20}, "price_cents": 900
        }),
    )
    .await;
    show["show_id"].as_str().unwrap().to_owned()
}

/// One customer's load until the server dies: hold two seats, then confirm (sometimes
/// twice, under two keys), release, or keep the hold; now and then a ticket.
async fn customer_load(client: Client, customer: String, show: String, ledger: Arc<Mutex<Vec<Attempt>>>) {
    // Keys are unique across rounds: the show id is.
    let mut n = 0u32;
    let mut send = |kind: Kind, path: String, body: Value| {
        n += 1;
        Attempt {
            kind,
            customer: customer.clone(),
            path,
            key: format!("{customer}-{show}-{n}"),
            body,
            request_id: None,
        }
    };
    loop {
        let row = char::from(b'A' + fastrand::u8(0..10));
        let seat = fastrand::u8(1..20);
        let hold = send(
            Kind::Hold,
            "/v1/holds".into(),
            json!({"show_id": show, "seat_ids": [format!("{row}{seat}"), format!("{row}{}", seat + 1)]}),
        );
        let id = client.post(&hold).await;
        ledger.lock().await.push(Attempt { request_id: id.clone(), ..hold });
        let Some(id) = id else { return };
        let Some(doc) = client.terminal(&customer, &id, Duration::from_secs(10)).await else { return };
        if fastrand::u8(0..8) == 0 {
            let ticket = send(
                Kind::Ticket,
                "/v1/tickets".into(),
                json!({"subject": "s", "description": "d", "priority": "low"}),
            );
            let id = client.post(&ticket).await;
            ledger.lock().await.push(Attempt { request_id: id.clone(), ..ticket });
            if id.is_none() {
                return;
            }
        }
        let Some(hold_id) = doc["result"]["hold_id"].as_str() else { continue };
        let next = match fastrand::u8(0..4) {
            0 => vec![send(Kind::Release, format!("/v1/holds/{hold_id}/release"), json!({}))],
            1 => vec![],
            2 => vec![send(
                Kind::Confirm,
                "/v1/bookings".into(),
                json!({"hold_id": hold_id, "payment_token": "tok_visa"}),
            )],
            _ => {
                let body = json!({"hold_id": hold_id, "payment_token": "tok_visa"});
                vec![
                    send(Kind::Confirm, "/v1/bookings".into(), body.clone()),
                    send(Kind::Confirm, "/v1/bookings".into(), body),
                ]
            }
        };
        for a in next {
            let id = client.post(&a).await;
            ledger.lock().await.push(Attempt { request_id: id.clone(), ..a });
            if id.is_none() {
                return;
            }
        }
    }
}

/// Every invariant, on a freshly restarted process. Unanswered attempts are retried
/// with their keys first.
async fn verify(client: &Client, dev: &Dev, shows: &[String], ledger: &mut [Attempt]) {
    let mut docs: Vec<(Attempt, Value)> = Vec::new();
    for a in ledger.iter_mut() {
        if a.request_id.is_none() {
            a.request_id = Some(client.post(a).await.expect("the retry is answered"));
        }
        let id = a.request_id.clone().unwrap();
        let doc = client.terminal(&a.customer, &id, Duration::from_secs(90)).await;
        let doc = doc.unwrap_or_else(|| panic!("request {id} ({:?}) never ended", a.kind));
        assert_ne!(doc["status"], "dead_lettered", "nothing here should exhaust its retries: {doc}");
        docs.push((a.clone(), doc));
    }

    // What the outcomes say the seat maps must be.
    let mut holds: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new(); // hold -> (show, seats)
    for (a, doc) in docs.iter().filter(|(a, d)| a.kind == Kind::Hold && d["status"] == "succeeded") {
        let seats = doc["result"]["seat_ids"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned());
        let hold_id = doc["result"]["hold_id"].as_str().unwrap().to_owned();
        holds.insert(hold_id, (a.body["show_id"].as_str().unwrap().to_owned(), seats.collect()));
    }
    let hold_of = |a: &Attempt| -> String {
        match a.kind {
            Kind::Confirm => a.body["hold_id"].as_str().unwrap().to_owned(),
            _ => a.path.trim_start_matches("/v1/holds/").trim_end_matches("/release").to_owned(),
        }
    };
    let mut confirmed: BTreeMap<String, usize> = BTreeMap::new();
    let mut released = BTreeSet::new();
    for (a, doc) in &docs {
        match (a.kind, doc["status"].as_str()) {
            (Kind::Confirm, Some("succeeded")) => *confirmed.entry(hold_of(a)).or_default() += 1,
            (Kind::Release, Some("succeeded")) => {
                released.insert(hold_of(a));
            }
            (Kind::Confirm | Kind::Release, Some("failed")) => {
                assert_eq!(doc["error"]["code"], "hold_not_found", "{doc}");
            }
            (Kind::Hold, Some("failed")) => assert_eq!(doc["error"]["code"], "seats_unavailable", "{doc}"),
            _ => {}
        }
    }
    assert!(confirmed.values().all(|n| *n == 1), "a hold was charged twice: {confirmed:?}");
    let mut held: BTreeSet<(String, String)> = BTreeSet::new();
    let mut booked: BTreeSet<(String, String)> = BTreeSet::new();
    for (hold_id, (show, seats)) in &holds {
        for seat in seats {
            let place = (show.clone(), seat.clone());
            if confirmed.contains_key(hold_id) {
                assert!(booked.insert(place), "{seat} booked twice");
            } else if !released.contains(hold_id) {
                assert!(held.insert(place), "{seat} held twice");
            }
        }
    }
    assert!(held.is_disjoint(&booked), "a seat both held and booked");

    let admin = &dev.client.admin();
    for show in shows {
        let map = dev.client.get_json(admin, &format!("/v1/shows/{show}/seats")).await;
        let on_map = |state: &str| -> BTreeSet<(String, String)> {
            map["seats"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["state"] == state)
                .map(|s| (show.clone(), s["seat_id"].as_str().unwrap().to_owned()))
                .collect()
        };
        let want_held: BTreeSet<_> = held.iter().filter(|(s, _)| s == show).cloned().collect();
        let want_booked: BTreeSet<_> = booked.iter().filter(|(s, _)| s == show).cloned().collect();
        assert_eq!(on_map("held"), want_held, "the seat map's holds agree with the outcomes");
        assert_eq!(on_map("booked"), want_booked, "the seat map's bookings agree with the outcomes");
        let bookings = holds.iter().filter(|(h, (s, _))| s == show && confirmed.contains_key(*h)).count();
        // Every event reached analytics: its counters match the seat map.
        let mut report = Value::Null;
        for _ in 0..150 {
            report = dev.client.get_json(admin, &format!("/v1/reports/shows/{show}")).await;
            if report["seats_held"] == want_held.len()
                && report["seats_booked"] == want_booked.len()
                && report["bookings"] == bookings
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(report["seats_held"], want_held.len(), "analytics saw every hold: {report}");
        assert_eq!(report["seats_booked"], want_booked.len(), "analytics saw every booking: {report}");
        assert_eq!(report["bookings"], bookings, "one charge, one booking, one event: {report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_keeps_every_invariant() {
    let rounds: usize = std::env::var("USHER_CRASH_LOOPS").ok().and_then(|n| n.parse().ok()).unwrap_or(1);
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut ledger: Vec<Attempt> = Vec::new();
    let mut shows = Vec::new();
    let mut dev = Dev::start(support::USHER, dir.path()).await;
    let secret = usher::secret::resolve(&usher::Config::embedded(dir.path()), usher::secret::Source::DevFile)
        .expect("the dev secret");
    let customers: Vec<String> = (0..8).map(|c| format!("crash{c}")).collect();
    let tokens: Arc<BTreeMap<String, String>> = Arc::new(
        customers
            .iter()
            .map(|c| (c.clone(), ingress::auth::mint_token(&secret, c, Role::Customer, Duration::from_secs(86_400))))
            .collect(),
    );
    for round in 1..=rounds {
        let started = Instant::now();
        let show = new_show(&dev).await;
        shows.push(show.clone());
        let sent: Arc<Mutex<Vec<Attempt>>> = Arc::default();
        let mut clients = Vec::new();
        for customer in &customers {
            let client = Client { http: http.clone(), base: dev.client.base.clone(), tokens: tokens.clone() };
            clients.push(tokio::spawn(customer_load(client, customer.clone(), show.clone(), sent.clone())));
        }
        tokio::time::sleep(Duration::from_millis(fastrand::u64(300..2500))).await;
        dev.child.kill().await.expect("SIGKILL");
        for c in clients {
            c.await.unwrap();
        }
        ledger.extend(sent.lock().await.drain(..));
        let unanswered = ledger.iter().filter(|a| a.request_id.is_none()).count();
        dev = Dev::start(support::USHER, dir.path()).await;
        let client = Client { http: http.clone(), base: dev.client.base.clone(), tokens: tokens.clone() };
        verify(&client, &dev, &shows, &mut ledger).await;
        println!(
            "round {round}/{rounds}: {} commands so far ({unanswered} retried after the kill), every invariant holds ({:.1} s)",
            ledger.len(),
            started.elapsed().as_secs_f64()
        );
    }
}
