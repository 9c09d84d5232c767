//! Support tickets end to end on the real app: ingress, the ticket-commands queue, the
//! tickets pool, the store and the events it publishes.

mod support;

use domain::actor::Role;
use domain::queue::Queue;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use support::{TestApp, spawn, spawn_with};
use usher::Pool;

/// Opens a ticket as `token`'s user and returns its id.
async fn open_ticket(app: &TestApp, token: &str, subject: &str) -> String {
    let body = json!({ "subject": subject, "description": "It does not work", "priority": "high" });
    let done = app.run(token, "/v1/tickets", body).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    done["result"]["ticket_id"].as_str().unwrap().to_owned()
}

async fn register_agent(app: &TestApp, agent: &str) {
    let admin = app.token("root", Role::Admin);
    let r = app.post_json(&admin, "/v1/agents", "unused", &json!({ "agent_id": agent })).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({ "agent_id": agent }));
}

fn error_code(doc: &Value) -> &str {
    doc["error"]["code"].as_str().unwrap_or("")
}

/// Replays the history's status entries from the start, checking that each move begins
/// where the one before it ended; returns the status they lead to.
fn replayed_status(ticket: &Value) -> String {
    let mut status: Option<String> = None;
    for entry in ticket["history"].as_array().unwrap() {
        match entry["action"].as_str() {
            Some("created") => status = entry["to"].as_str().map(str::to_owned),
            Some("status_changed") => {
                assert_eq!(entry["from"].as_str(), status.as_deref(), "{entry}");
                status = entry["to"].as_str().map(str::to_owned);
            }
            _ => {}
        }
    }
    status.expect("a created entry")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_from_new_to_closed() {
    // No analytics pool: this test reads the analytics queue itself.
    let app = spawn_with(|_, c| c.pools = vec![Pool::Tickets, Pool::Notifications]).await;
    let alice = app.token("alice", Role::Customer);
    let ann = app.token("ann", Role::Agent);
    let root = app.token("root", Role::Admin);
    register_agent(&app, "ann").await;
    let id = open_ticket(&app, &alice, "Printer on fire").await;
    let path = |tail: &str| format!("/v1/tickets/{id}{tail}");

    let t = app.get_json(&alice, &path("")).await;
    assert_eq!(
        (t["status"].as_str(), t["requester"].as_str(), t["version"].as_u64()),
        (Some("new"), Some("alice"), Some(1))
    );
    assert_eq!(t["assignee"], Value::Null);
    assert_eq!(t["priority"], "high");

    let assigned = app.run(&root, &path("/assignments"), json!({ "agent_id": "ann" })).await;
    assert_eq!(assigned["result"], json!({ "ticket_id": id, "assignee": "ann" }));
    assert_eq!(app.get_json(&ann, &path("")).await["status"], "open", "assigning a new ticket opens it");

    let pending =
        app.run(&ann, &path("/transitions"), json!({ "to": "pending", "comment": "Is it plugged in?" })).await;
    assert_eq!(pending["result"]["status"], "pending", "{pending}");
    let note = app.run(&ann, &path("/comments"), json!({ "body": "customer sounds upset", "public": false })).await;
    assert_eq!(note["status"], "succeeded");
    let reply = app.run(&alice, &path("/comments"), json!({ "body": "Yes it is", "public": true })).await;
    assert_eq!(reply["status"], "succeeded");
    assert_eq!(app.get_json(&ann, &path("")).await["status"], "open", "a customer's comment reopens it");

    let solved = app.run(&ann, &path("/transitions"), json!({ "to": "solved", "comment": "Replaced the fuser" })).await;
    assert_eq!(solved["result"]["status"], "solved");
    let closed = app.run(&ann, &path("/transitions"), json!({ "to": "closed" })).await;
    assert_eq!(closed["result"], json!({ "ticket_id": id, "status": "closed" }));

    let late = app.run(&alice, &path("/comments"), json!({ "body": "thanks" })).await;
    assert_eq!((late["status"].as_str(), error_code(&late)), (Some("failed"), "ticket_closed"));
    let reopen = app.run(&ann, &path("/transitions"), json!({ "to": "open" })).await;
    assert_eq!(error_code(&reopen), "ticket_closed");

    let t = app.get_json(&ann, &path("")).await;
    let actions: Vec<&str> = t["history"].as_array().unwrap().iter().map(|h| h["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "created",
            "assigned",
            "status_changed",
            "status_changed",
            "commented",
            "commented",
            "commented",
            "status_changed",
            "status_changed",
            "commented",
            "status_changed"
        ]
    );
    assert_eq!(t["version"].as_u64(), Some(actions.len() as u64));
    assert_eq!(replayed_status(&t), "closed");
    assert_eq!(t["comments"].as_array().unwrap().len(), 4);
    assert!(t["first_response_at"].as_str().is_some_and(|s| s.ends_with('Z')));
    for entry in t["history"].as_array().unwrap() {
        assert!(entry["at"].as_str().unwrap().ends_with('Z') && entry["actor"].is_string());
    }
    // The customer sees neither the internal note nor its history entry.
    let seen = app.get_json(&alice, &path("")).await;
    assert_eq!(seen["comments"].as_array().unwrap().len(), 3);
    assert!(seen["comments"].as_array().unwrap().iter().all(|c| c["public"] == true));
    assert_eq!(seen["history"].as_array().unwrap().len(), actions.len() - 1);

    // Every change went out as an event that stands on its own.
    let events = drain_events(&app).await;
    let of = |t: &str| events.iter().filter(|e| e["type"] == t).collect::<Vec<_>>();
    assert_eq!(of("usher.ticket.created").len(), 1);
    assert_eq!(of("usher.ticket.assigned").len(), 1);
    assert_eq!(of("usher.ticket.status_changed").len(), 5);
    assert_eq!(of("usher.ticket.commented").len(), 4);
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/events");
    for e in events.iter().filter(|e| e["type"].as_str().unwrap().starts_with("usher.ticket.")) {
        assert_eq!(e["source"], "/usher/tickets");
        assert_eq!(e["subject"], id.as_str());
        for field in ["ticket_id", "requester", "assignee", "status", "ticket_created_at"] {
            assert!(e["data"].get(field).is_some(), "{field} in {e}");
        }
        // What the fleet emits matches the published catalog.
        let schema = std::fs::read_to_string(docs.join(format!("{}.json", e["type"].as_str().unwrap()))).unwrap();
        let validator = jsonschema::validator_for(&serde_json::from_str(&schema).unwrap()).unwrap();
        let errors: Vec<String> = validator.iter_errors(e).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}\n{e}");
    }
    let assigned = &of("usher.ticket.assigned")[0]["data"];
    assert_eq!((assigned["assignee"].as_str(), &assigned["previous_assignee"]), (Some("ann"), &Value::Null));
    let reopened = of("usher.ticket.status_changed").into_iter().find(|e| e["data"]["actor"] == "alice").unwrap();
    assert_eq!((reopened["data"]["from"].as_str(), reopened["data"]["to"].as_str()), (Some("pending"), Some("open")));
    let internal = of("usher.ticket.commented").into_iter().find(|e| e["data"]["public"] == false).unwrap();
    assert_eq!(internal["data"]["author_role"], "agent");
    assert_eq!(internal["data"]["body"], "customer sounds upset");

    // The notifications pool tells alice of the agent's public replies, never of the note.
    let mut subjects = Vec::new();
    for _ in 0..100 {
        let mine = app.get_json(&alice, "/v1/notifications").await;
        subjects = mine.as_array().unwrap().iter().map(|n| n["subject"].as_str().unwrap().to_owned()).collect();
        if subjects.iter().filter(|s| s.starts_with("New reply")).count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(subjects.iter().filter(|s| s.starts_with("New reply")).count(), 2, "{subjects:?}");
    let everything = app.get_json(&alice, "/v1/notifications").await.to_string();
    assert!(!everything.contains("customer sounds upset"));
    app.stop().await;
}

async fn drain_events(app: &TestApp) -> Vec<Value> {
    let mut events = Vec::new();
    for _ in 0..20 {
        let got = app.receive(Queue::Analytics.source()).await;
        if got.is_empty() {
            break;
        }
        events.extend(got.iter().map(|m| serde_json::from_str::<Value>(&m.body).unwrap()));
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_matrix() {
    let app = spawn().await;
    let alice = app.token("alice", Role::Customer);
    let bob = app.token("bob", Role::Customer);
    let ann = app.token("ann", Role::Agent);
    let root = app.token("root", Role::Admin);
    // ann was never registered: an agent is also a user seen with an agent token.
    assert_eq!(app.get(Some(&ann), "/v1/tickets").await.status(), 200);
    let id = open_ticket(&app, &alice, "Alice's").await;
    let bobs = open_ticket(&app, &bob, "Bob's").await;
    let path = |tail: &str| format!("/v1/tickets/{id}{tail}");
    let status = |r: reqwest::Response| r.status().as_u16();

    // POST /v1/tickets: every role may open one.
    for token in [&ann, &root] {
        open_ticket(&app, token, "staff's own").await;
    }
    // Assignments: staff only, and only to agents.
    let assign = json!({ "agent_id": "ann" });
    for token in [&alice, &bob] {
        assert_eq!(status(app.post_json(token, &path("/assignments"), "k-assign", &assign).await), 403);
    }
    let nobody = app.run(&root, &path("/assignments"), json!({ "agent_id": "nobody" })).await;
    assert_eq!(error_code(&nobody), "not_an_agent");
    assert_eq!(nobody["error"]["agent_id"], "nobody");
    assert_eq!(app.run(&ann, &path("/assignments"), assign.clone()).await["status"], "succeeded");
    assert_eq!(app.run(&root, &path("/assignments"), assign.clone()).await["status"], "succeeded");
    let missing = app.run(&ann, "/v1/tickets/tkt_missing/assignments", assign.clone()).await;
    assert_eq!(error_code(&missing), "ticket_not_found");

    // Transitions: customers only reopen, and only their own solved ticket.
    for token in [&alice, &bob] {
        assert_eq!(
            status(app.post_json(token, &path("/transitions"), "k-pend", &json!({ "to": "pending" })).await),
            403
        );
    }
    let not_solved = app.run(&alice, &path("/transitions"), json!({ "to": "open" })).await;
    assert_eq!(error_code(&not_solved), "invalid_transition");
    assert_eq!(
        (not_solved["error"]["from"].as_str(), not_solved["error"]["to"].as_str()),
        (Some("open"), Some("open"))
    );
    assert_eq!(app.run(&ann, &path("/transitions"), json!({ "to": "solved" })).await["status"], "succeeded");
    assert_eq!(error_code(&app.run(&bob, &path("/transitions"), json!({ "to": "open" })).await), "ticket_not_found");
    assert_eq!(app.run(&alice, &path("/transitions"), json!({ "to": "open" })).await["status"], "succeeded");
    assert_eq!(app.run(&root, &path("/transitions"), json!({ "to": "on_hold" })).await["status"], "succeeded");

    // Comments: customers on their own, publicly; staff on any, internal too.
    assert_eq!(
        status(app.post_json(&alice, &path("/comments"), "k-int", &json!({ "body": "x", "public": false })).await),
        403
    );
    assert_eq!(error_code(&app.run(&bob, &path("/comments"), json!({ "body": "hi" })).await), "ticket_not_found");
    assert_eq!(app.run(&alice, &path("/comments"), json!({ "body": "hi" })).await["status"], "succeeded");
    assert_eq!(
        app.run(&ann, &path("/comments"), json!({ "body": "psst", "public": false })).await["status"],
        "succeeded"
    );
    assert_eq!(
        app.run(&root, &path("/comments"), json!({ "body": "hello", "public": true })).await["status"],
        "succeeded"
    );

    // Reads: a customer's own ticket without internal notes; someone else's reads 404.
    assert_eq!(status(app.get(Some(&bob), &path("")).await), 404);
    let alices = app.get_json(&alice, &path("")).await;
    assert_eq!(alices["comments"].as_array().unwrap().len(), 2);
    for token in [&ann, &root] {
        assert_eq!(app.get_json(token, &path("")).await["comments"].as_array().unwrap().len(), 3);
    }
    let subjects = |list: &Value| -> BTreeSet<String> {
        list["items"].as_array().unwrap().iter().map(|t| t["subject"].as_str().unwrap().to_owned()).collect()
    };
    let own = app.get_json(&alice, "/v1/tickets").await;
    assert_eq!(subjects(&own), BTreeSet::from(["Alice's".to_owned()]), "customers list only their own");
    assert!(own["items"][0]["comments"].as_array().unwrap().iter().all(|c| c["public"] == true));
    assert_eq!(app.get_json(&alice, "/v1/tickets?requester=alice").await, own);
    let others = app.get_json(&alice, "/v1/tickets?requester=bob").await;
    assert_eq!(others, json!({ "items": [], "next_cursor": null }), "someone else's tickets: none");
    assert_eq!(subjects(&app.get_json(&bob, "/v1/tickets").await), BTreeSet::from(["Bob's".to_owned()]));
    for token in [&ann, &root] {
        assert_eq!(app.get_json(token, "/v1/tickets").await["items"].as_array().unwrap().len(), 4);
        let bob_only = app.get_json(token, "/v1/tickets?requester=bob").await;
        assert_eq!(bob_only["items"][0]["ticket_id"], bobs.as_str());
    }
    // alice's comment took it from on_hold back to open.
    let held = app.get_json(&ann, "/v1/tickets?status=open&assignee=ann").await;
    assert_eq!(held["items"].as_array().unwrap().len(), 1);

    // Registering agents: admins only.
    for token in [&alice, &ann] {
        assert_eq!(status(app.post_json(token, "/v1/agents", "k", &json!({ "agent_id": "zoe" })).await), 403);
    }
    register_agent(&app, "zoe").await;
    assert_eq!(app.run(&root, &path("/assignments"), json!({ "agent_id": "zoe" })).await["status"], "succeeded");
    let no_token = app.http.get(format!("{}/v1/tickets", app.base)).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_is_checked_before_anything_is_stored() {
    let app = spawn().await;
    let alice = app.token("alice", Role::Customer);
    let ann = app.token("ann", Role::Agent);
    let id = open_ticket(&app, &alice, "Mine").await;
    let cases = [
        ("/v1/tickets".to_owned(), json!({ "subject": "", "description": "d" }), "subject"),
        ("/v1/tickets".to_owned(), json!({ "subject": "s".repeat(201), "description": "d" }), "subject"),
        ("/v1/tickets".to_owned(), json!({ "subject": "s", "description": "d".repeat(10_001) }), "description"),
        ("/v1/tickets".to_owned(), json!({ "subject": "s", "description": "d", "priority": "asap" }), "priority"),
        ("/v1/tickets".to_owned(), json!({ "subject": "s", "description": "d", "urgent": true }), "urgent"),
        (format!("/v1/tickets/{id}/comments"), json!({ "body": "" }), "body"),
        (format!("/v1/tickets/{id}/comments"), json!({ "body": "b", "public": "yes" }), "public"),
        (format!("/v1/tickets/{id}/transitions"), json!({ "to": "done" }), "to"),
        (format!("/v1/tickets/{id}/transitions"), json!({ "to": "solved", "comment": "" }), "comment"),
        (format!("/v1/tickets/{id}/assignments"), json!({ "agent_id": "" }), "agent_id"),
    ];
    for (path, body, field) in cases {
        let r = app.post_json(&ann, &path, "same-key", &body).await;
        assert_eq!(r.status(), 400, "{path} {body}");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(
            (problem["code"].as_str(), problem["field"].as_str()),
            (Some("invalid_body"), Some(field)),
            "{body}"
        );
    }
    for (query, field) in
        [("limit=0", "limit"), ("limit=101", "limit"), ("cursor=garbage", "cursor"), ("status=done", "status")]
    {
        let r = app.get(Some(&ann), &format!("/v1/tickets?{query}")).await;
        assert_eq!(r.status(), 400, "{query}");
        let problem: Value = r.json().await.unwrap();
        assert_eq!((problem["code"].as_str(), problem["field"].as_str()), (Some("invalid_query"), Some(field)));
    }
    // The key stayed free through every rejection; a retry replays the first answer.
    let body = json!({ "body": "ok" });
    let first = app.post_json(&ann, &format!("/v1/tickets/{id}/comments"), "same-key", &body).await;
    assert_eq!(first.status(), 202);
    let first = first.text().await.unwrap();
    let again = app.post_json(&ann, &format!("/v1/tickets/{id}/comments"), "same-key", &body).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_through_more_than_one_page() {
    let app = spawn().await;
    let carol = app.token("carol", Role::Customer);
    let ann = app.token("ann", Role::Agent);
    let mut created = Vec::new();
    for i in 0..23 {
        created.push(open_ticket(&app, &carol, &format!("ticket {i}")).await);
    }
    open_ticket(&app, &app.token("dave", Role::Customer), "someone else's").await;
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &next {
            Some(cursor) => format!("/v1/tickets?requester=carol&limit=10&cursor={cursor}"),
            None => "/v1/tickets?requester=carol&limit=10".to_owned(),
        };
        let page = app.get_json(&ann, &query).await;
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 10);
        seen.extend(items.iter().map(|t| t["ticket_id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => next = Some(cursor.to_owned()),
            None => {
                assert_eq!(page["next_cursor"], Value::Null);
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "every ticket once, oldest first");
    // The customer's own view pages the same way.
    let first = app.get_json(&carol, "/v1/tickets?limit=20").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 20);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = app.get_json(&carol, &format!("/v1/tickets?limit=20&cursor={cursor}")).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 3);
    assert_eq!(rest["next_cursor"], Value::Null);
    app.stop().await;
}

/// Twenty transitions at once on one ticket: every request ends, and the history tells
/// the same story as the ticket's final status and version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transitions_on_one_ticket() {
    let app = spawn().await;
    let alice = app.token("alice", Role::Customer);
    let ann = app.token("ann", Role::Agent);
    register_agent(&app, "ann").await;
    let id = open_ticket(&app, &alice, "Race").await;
    app.run(&ann, &format!("/v1/tickets/{id}/assignments"), json!({ "agent_id": "ann" })).await;
    let targets = ["pending", "on_hold", "open", "solved", "new"];
    let mut accepted = Vec::new();
    for i in 0..20 {
        let (client, token, id) = (app.client.clone(), ann.clone(), id.clone());
        let to = targets[i % targets.len()];
        accepted.push(tokio::spawn(async move {
            let path = format!("/v1/tickets/{id}/transitions");
            let r = client.post_json(&token, &path, &format!("race-{i}"), &json!({ "to": to })).await;
            assert_eq!(r.status(), 202);
            r.json::<Value>().await.unwrap()["request_id"].as_str().unwrap().to_owned()
        }));
    }
    let mut succeeded = 0;
    for handle in accepted {
        let request_id = handle.await.unwrap();
        let doc = app.terminal(&ann, &request_id).await;
        match doc["status"].as_str() {
            Some("succeeded") => succeeded += 1,
            Some("failed") => assert_eq!(error_code(&doc), "invalid_transition", "{doc}"),
            other => panic!("{request_id} ended {other:?}"),
        }
    }
    let t = app.get_json(&ann, &format!("/v1/tickets/{id}")).await;
    let history = t["history"].as_array().unwrap();
    assert_eq!(t["version"].as_u64(), Some(history.len() as u64));
    // created, assigned, opened by the assignment, then one entry per applied move.
    assert_eq!(history.len(), 3 + succeeded);
    assert_eq!(replayed_status(&t), t["status"].as_str().unwrap());
    // Each applied move starts where the one before it ended.
    let moves: Vec<(&str, &str)> = history
        .iter()
        .filter(|h| h["action"] == "status_changed")
        .map(|h| (h["from"].as_str().unwrap(), h["to"].as_str().unwrap()))
        .collect();
    for pair in moves.windows(2) {
        assert_eq!(pair[0].1, pair[1].0, "{moves:?}");
    }
    assert!(moves.iter().all(|(from, to)| from != to && *to != "new"));
    app.stop().await;
}

/// The analytics pool builds the ticket report from these events alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ticket_report_follows_the_events() {
    let app = spawn().await;
    let alice = app.token("alice", Role::Customer);
    let ann = app.token("ann", Role::Agent);
    register_agent(&app, "ann").await;
    let solved = open_ticket(&app, &alice, "Solved one").await;
    open_ticket(&app, &alice, "Untouched one").await;
    app.run(&ann, &format!("/v1/tickets/{solved}/assignments"), json!({ "agent_id": "ann" })).await;
    app.run(&ann, &format!("/v1/tickets/{solved}/comments"), json!({ "body": "On it" })).await;
    app.run(&ann, &format!("/v1/tickets/{solved}/transitions"), json!({ "to": "solved" })).await;
    let mut report = Value::Null;
    for _ in 0..100 {
        report = app.get_json(&ann, "/v1/reports/tickets").await;
        if report["by_status"]["solved"] == 1 && report["tickets"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(report["by_status"], json!({ "new": 1, "solved": 1 }), "{report}");
    assert_eq!(report["by_assignee"]["ann"], 1, "{report}");
    assert!(report["mean_first_response_secs"].is_number(), "{report}");
    assert!(report["mean_solve_secs"].is_number(), "{report}");
    app.stop().await;
}
