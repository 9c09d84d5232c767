//! Creating and reading the catalog, and seat maps.

use crate::helpers::{TestApp, problem};
use domain::actor::{Actor, Role};
use domain::booking::DEFAULT_MAX_HELD_SEATS as MAX_HELD;
use domain::clock;
use domain::ids::UserId;
use domain::request::CommandContext;
use serde_json::{Value, json};

#[tokio::test]
async fn an_admin_creates_movies_and_everyone_lists_them() {
    let app = TestApp::ingress().await;
    let response = app.post(Some(&app.admin()), "/v1/movies", None, r#"{"title":" Heat ","duration_min":170}"#).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["content-type"], "application/json");
    let movie: Value = response.json().await.unwrap();
    assert!(movie["movie_id"].as_str().unwrap().starts_with("mov_"));
    assert_eq!(movie["title"], "Heat");
    assert_eq!(movie["duration_min"], 170);
    for role in [domain::actor::Role::Customer, domain::actor::Role::Agent] {
        let list: Value = app.get(Some(&app.token("x", role)), "/v1/movies").await.json().await.unwrap();
        assert_eq!(list, json!([movie]));
    }
}

#[tokio::test]
async fn a_show_lays_out_every_seat_as_available() {
    let app = TestApp::ingress().await;
    let (movie_id, show_id) = app.create_show(10, 12).await;
    let token = app.customer("alice");

    let shows: Value = app.get(Some(&token), &format!("/v1/movies/{movie_id}/shows")).await.json().await.unwrap();
    assert_eq!(
        shows,
        json!([{
            "show_id": show_id,
            "movie_id": movie_id,
            "starts_at": "2026-12-01T20:00:00.000Z",
            "auditorium": {"rows": 10, "seats_per_row": 12},
            "price_cents": 1250,
        }])
    );

    let map: Value = app.get(Some(&token), &format!("/v1/shows/{show_id}/seats")).await.json().await.unwrap();
    assert_eq!(map["show_id"], show_id);
    let seats = map["seats"].as_array().unwrap();
    assert_eq!(seats.len(), 120);
    assert!(seats.iter().all(|s| s["state"] == "available"));
    assert!(seats.iter().any(|s| s["seat_id"] == "A1") && seats.iter().any(|s| s["seat_id"] == "J12"));
}

#[tokio::test]
async fn unknown_movies_and_shows_are_404() {
    let app = TestApp::ingress().await;
    let token = app.customer("alice");
    problem(app.get(Some(&token), "/v1/movies/mov_missing/shows").await, 404, "movie_not_found").await;
    problem(app.get(Some(&token), "/v1/shows/show_missing/seats").await, 404, "show_not_found").await;
}

#[tokio::test]
async fn the_seat_map_reads_holds_at_the_current_time() {
    let app = TestApp::ingress().await;
    let (_, show_id) = app.create_show(1, 4).await;
    // Admitted over HTTP, then applied through the store as the booking worker would.
    let alice = app.customer("alice");
    let mut holds = Vec::new();
    for (key, seats) in [("live", r#"["A1","A2"]"#), ("lapsed", r#"["A3"]"#)] {
        let body = format!(r#"{{"show_id":"{show_id}","seat_ids":{seats}}}"#);
        let response = app.post(Some(&alice), "/v1/holds", Some(key), &body).await;
        let id = response.json::<Value>().await.unwrap()["request_id"].as_str().unwrap().to_owned();
        holds.push(CommandContext {
            request_id: id.into(),
            actor: Actor { sub: UserId::new("alice"), role: Role::Customer },
            now: clock::now(),
            traceparent: None,
            delivery: None,
        });
    }
    let show = show_id.as_str().into();
    let live = clock::now() + time::Duration::minutes(10);
    let lapsed = clock::now() + time::Duration::milliseconds(1);
    app.backend.bookings.place_hold(&holds[0], &show, &["A1".into(), "A2".into()], live, MAX_HELD).await.unwrap();
    app.backend.bookings.place_hold(&holds[1], &show, &["A3".into()], lapsed, MAX_HELD).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    let map: Value =
        app.get(Some(&app.customer("bob")), &format!("/v1/shows/{show_id}/seats")).await.json().await.unwrap();
    let states: Vec<(&str, &str)> = map["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["seat_id"].as_str().unwrap(), s["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("A1", "held"), ("A2", "held"), ("A3", "available"), ("A4", "available")]);
}
