//! The catalog: anyone authenticated lists movies, shows and seat maps; admins create
//! movies and shows, synchronously.

use super::PathId;
use crate::AppState;
use crate::auth::{Admin, Caller};
use crate::json::JsonBody;
use crate::problem::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::booking::Seat;
use domain::catalog::{self, Auditorium, Movie, Show};
use domain::clock;
use domain::ids::{MovieId, ShowId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMovie {
    title: String,
    duration_min: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewShow {
    movie_id: String,
    starts_at: String,
    auditorium: Auditorium,
    price_cents: u64,
}

#[derive(Debug, Serialize)]
pub struct SeatMap {
    show_id: ShowId,
    seats: Vec<Seat>,
}

pub async fn list_movies(State(state): State<AppState>, _caller: Caller) -> Result<Json<Vec<Movie>>, ApiError> {
    Ok(Json(state.backend.catalog.movies().await?))
}

pub async fn create_movie(
    State(state): State<AppState>,
    Admin(admin): Admin,
    body: JsonBody<NewMovie>,
) -> Result<(StatusCode, Json<Movie>), ApiError> {
    let NewMovie { title, duration_min } = body.value;
    catalog::validate_movie(&title, duration_min).map_err(|e| ApiError::invalid_field(e.field, e.reason))?;
    let movie = Movie { movie_id: MovieId::generate(), title: title.trim().to_owned(), duration_min };
    state.backend.catalog.create_movie(&movie).await?;
    tracing::info!(movie_id = %movie.movie_id, admin = %admin.sub, "movie created");
    Ok((StatusCode::CREATED, Json(movie)))
}

pub async fn shows_of_movie(
    State(state): State<AppState>,
    _caller: Caller,
    PathId(movie_id): PathId,
) -> Result<Json<Vec<Show>>, ApiError> {
    let movie_id = MovieId::from(movie_id);
    if state.backend.catalog.movie(&movie_id).await?.is_none() {
        return Err(ApiError::not_found("movie_not_found", format!("no movie {movie_id}")));
    }
    Ok(Json(state.backend.catalog.shows_of(&movie_id).await?))
}

pub async fn create_show(
    State(state): State<AppState>,
    Admin(admin): Admin,
    body: JsonBody<NewShow>,
) -> Result<(StatusCode, Json<Show>), ApiError> {
    let NewShow { movie_id, starts_at, auditorium, price_cents } = body.value;
    if movie_id.is_empty() {
        return Err(ApiError::invalid_field("movie_id", "must not be empty"));
    }
    let starts_at = clock::parse(&starts_at)
        .map_err(|e| ApiError::invalid_field("starts_at", format!("not an RFC 3339 timestamp: {e}")))?;
    catalog::validate_show(auditorium, price_cents).map_err(|e| ApiError::invalid_field(e.field, e.reason))?;
    let movie_id = MovieId::from(movie_id);
    if state.backend.catalog.movie(&movie_id).await?.is_none() {
        return Err(ApiError::invalid_field("movie_id", format!("no movie {movie_id}")));
    }
    let show = Show {
        show_id: ShowId::generate(),
        movie_id,
        // Stored at millisecond precision, so what is answered now reads back the same.
        starts_at: clock::from_millis(clock::to_millis(starts_at)),
        auditorium,
        price_cents,
    };
    state.backend.catalog.create_show(&show).await?;
    tracing::info!(show_id = %show.show_id, admin = %admin.sub, "show created");
    Ok((StatusCode::CREATED, Json(show)))
}

pub async fn seat_map(
    State(state): State<AppState>,
    _caller: Caller,
    PathId(show_id): PathId,
) -> Result<Json<SeatMap>, ApiError> {
    let show_id = ShowId::from(show_id);
    if state.backend.catalog.show(&show_id).await?.is_none() {
        return Err(ApiError::not_found("show_not_found", format!("no show {show_id}")));
    }
    let now = clock::now();
    let seats = state
        .backend
        .catalog
        .seats(&show_id)
        .await?
        .into_iter()
        .map(|record| Seat { state: record.state_at(now), seat_id: record.seat_id })
        .collect();
    Ok(Json(SeatMap { show_id, seats }))
}
