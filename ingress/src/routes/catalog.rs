//! The catalog: anyone authenticated lists movies, shows and seat maps; admins create
//! movies and shows, synchronously.

use super::PathId;
use crate::AppState;
use crate::auth::{Admin, Caller};
use crate::json::JsonBody;
use crate::openapi::{BackendUnavailable, Forbidden, PayloadTooLarge, Unauthorized};
use crate::problem::{ApiError, Problem};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::booking::Seat;
use domain::catalog::{self, Auditorium, Movie, Show};
use domain::clock;
use domain::ids::{MovieId, ShowId};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_movies, create_movie))
        .routes(routes!(shows_of_movie))
        .routes(routes!(create_show))
        .routes(routes!(seat_map))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMovie {
    /// Trimmed; 1 to 200 characters, not all white space (the pattern: one character that
    /// is not Unicode `White_Space`).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]",
        example = "Arrival"
    )]
    title: String,
    #[serde(deserialize_with = "domain::integral::deserialize")]
    #[schema(minimum = 1, maximum = 1000, example = 116)]
    duration_min: u32,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewShow {
    /// An existing movie.
    #[schema(min_length = 1, example = "mov_0193a1b2c3d47e8f9a0b1c2d3e4f5a6b")]
    movie_id: String,
    /// RFC 3339; stored at millisecond precision.
    #[schema(format = DateTime, example = "2026-12-01T20:00:00Z")]
    starts_at: String,
    /// Every seat of this layout is created, available: rows `A`… and numbers from 1.
    auditorium: Auditorium,
    #[serde(deserialize_with = "domain::integral::deserialize")]
    #[schema(maximum = 1_000_000, example = 1250)]
    price_cents: u64,
}

/// `{show_id, seats: [{seat_id, state}]}`; an expired hold reads `available`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeatMap {
    show_id: ShowId,
    seats: Vec<Seat>,
}

/// Every movie.
#[utoipa::path(
    get,
    path = "/v1/movies",
    tag = "catalog",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every movie.", body = Vec<Movie>),
        (status = 401, response = Unauthorized),
        (status = 503, response = BackendUnavailable),
    )
)]
pub async fn list_movies(State(state): State<AppState>, _caller: Caller) -> Result<Json<Vec<Movie>>, ApiError> {
    Ok(Json(state.backend.catalog.movies().await?))
}

/// Creates a movie (admins only), synchronously.
#[utoipa::path(
    post,
    path = "/v1/movies",
    tag = "catalog",
    security(("bearer" = [])),
    request_body = NewMovie,
    responses(
        (status = 201, description = "The movie, with its new `movie_id`.", body = Movie),
        (status = 400, description = "`invalid_body`: not JSON, or a field missing, unknown, mistyped or out of \
            range; `field` names it.", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = BackendUnavailable),
    )
)]
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

/// The shows of one movie.
#[utoipa::path(
    get,
    path = "/v1/movies/{movie_id}/shows",
    tag = "catalog",
    security(("bearer" = [])),
    params(("movie_id" = String, Path, description = "The movie.", max_length = 255, pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 200, description = "The movie's shows.", body = Vec<Show>),
        (status = 400, description = "`invalid_path`: the id is not 1 to 255 visible ASCII characters.", body = Problem,
            content_type = "application/problem+json"),
        (status = 401, response = Unauthorized),
        (status = 404, description = "`movie_not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 503, response = BackendUnavailable),
    )
)]
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

/// Creates a show (admins only), synchronously, and lays out every seat as available
/// (ids like `A1`…`J12`).
#[utoipa::path(
    post,
    path = "/v1/shows",
    tag = "catalog",
    security(("bearer" = [])),
    request_body = NewShow,
    responses(
        (status = 201, description = "The show, with its new `show_id`.", body = Show),
        (status = 400, description = "`invalid_body`: not JSON, or a field missing, unknown, mistyped or out of \
            range; `field` names it.", body = Problem,
            content_type = "application/problem+json"),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "`movie_not_found`: `movie_id` names no movie.", body = Problem,
            content_type = "application/problem+json"),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = BackendUnavailable),
    )
)]
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
        return Err(ApiError::not_found("movie_not_found", format!("no movie {movie_id}")));
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

/// The seat map of a show, as of now.
#[utoipa::path(
    get,
    path = "/v1/shows/{show_id}/seats",
    tag = "catalog",
    security(("bearer" = [])),
    params(("show_id" = String, Path, description = "The show.", max_length = 255, pattern = "^[!-~]{1,255}$")),
    responses(
        (status = 200, description = "Every seat and its state.", body = SeatMap),
        (status = 400, description = "`invalid_path`: the id is not 1 to 255 visible ASCII characters.", body = Problem,
            content_type = "application/problem+json"),
        (status = 401, response = Unauthorized),
        (status = 404, description = "`show_not_found`.", body = Problem, content_type = "application/problem+json"),
        (status = 503, response = BackendUnavailable),
    )
)]
pub async fn seat_map(
    State(state): State<AppState>,
    _caller: Caller,
    PathId(show_id): PathId,
) -> Result<Json<SeatMap>, ApiError> {
    let show_id = ShowId::from(show_id);
    let seats = seats_of(&state, &show_id).await?;
    Ok(Json(SeatMap { show_id, seats }))
}

/// Every seat of a show and its state as of now; `show_not_found` if there is no show.
pub(crate) async fn seats_of(state: &AppState, show_id: &ShowId) -> Result<Vec<Seat>, ApiError> {
    if state.backend.catalog.show(show_id).await?.is_none() {
        return Err(ApiError::not_found("show_not_found", format!("no show {show_id}")));
    }
    Ok(current_seats(state, show_id).await?)
}

/// Every seat of a show and its state as of now (an expired hold reads `available`).
pub(crate) async fn current_seats(state: &AppState, show_id: &ShowId) -> Result<Vec<Seat>, domain::PortError> {
    let now = state.backend.clock.now();
    let records = state.backend.catalog.seats(show_id).await?;
    Ok(records.into_iter().map(|record| Seat { state: record.state_at(now), seat_id: record.seat_id }).collect())
}
