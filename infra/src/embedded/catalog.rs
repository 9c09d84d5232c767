//! Movies, shows and their seat layouts.

use super::Embedded;
use super::db::sql_error;
use async_trait::async_trait;
use domain::PortError;
use domain::booking::SeatRecord;
use domain::catalog::{Auditorium, Movie, Show};
use domain::clock;
use domain::ids::{BookingId, HoldId, MovieId, SeatId, ShowId};
use domain::ports::CatalogStore;
use rusqlite::{Connection, OptionalExtension, Row, params};

/// A show's columns, in the order [`show_from`] reads them.
macro_rules! show_columns {
    () => {
        "show_id, movie_id, starts_at, rows, seats_per_row, price_cents"
    };
}

fn show_from(r: &Row<'_>) -> rusqlite::Result<Show> {
    Ok(Show {
        show_id: ShowId::from(r.get::<_, String>(0)?),
        movie_id: MovieId::from(r.get::<_, String>(1)?),
        starts_at: clock::from_millis(r.get(2)?),
        auditorium: Auditorium { rows: r.get(3)?, seats_per_row: r.get(4)? },
        price_cents: r.get(5)?,
    })
}

fn movie_from(r: &Row<'_>) -> rusqlite::Result<Movie> {
    Ok(Movie { movie_id: MovieId::from(r.get::<_, String>(0)?), title: r.get(1)?, duration_min: r.get(2)? })
}

pub(super) fn load_show(conn: &Connection, show_id: &ShowId) -> Result<Option<Show>, PortError> {
    // A constant, not formatted on each call: every hold's transaction reads its show.
    conn.prepare_cached(concat!("SELECT ", show_columns!(), " FROM shows WHERE show_id = ?1"))
        .map_err(sql_error)?
        .query_row([show_id.as_str()], show_from)
        .optional()
        .map_err(sql_error)
}

pub(super) fn seat_from(r: &Row<'_>) -> rusqlite::Result<SeatRecord> {
    Ok(SeatRecord {
        seat_id: SeatId::from(r.get::<_, String>(0)?.as_str()),
        booking_id: r.get::<_, Option<String>>(1)?.map(BookingId::from),
        hold_id: r.get::<_, Option<String>>(2)?.map(HoldId::from),
        hold_expires_at: r.get::<_, Option<i64>>(3)?.map(clock::from_millis),
    })
}

#[async_trait]
impl CatalogStore for Embedded {
    async fn create_movie(&self, movie: &Movie) -> Result<(), PortError> {
        let movie = movie.clone();
        self.db
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO movies (movie_id, title, duration_min) VALUES (?1, ?2, ?3)",
                    params![movie.movie_id.as_str(), movie.title, movie.duration_min],
                )
                .map_err(sql_error)?;
                Ok(())
            })
            .await
    }

    async fn create_show(&self, show: &Show) -> Result<(), PortError> {
        let show = show.clone();
        self.db
            .write(move |conn| {
                conn.execute(
                    concat!("INSERT INTO shows (", show_columns!(), ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                    params![
                        show.show_id.as_str(),
                        show.movie_id.as_str(),
                        clock::to_millis(show.starts_at),
                        show.auditorium.rows,
                        show.auditorium.seats_per_row,
                        show.price_cents
                    ],
                )
                .map_err(sql_error)?;
                let mut insert = conn
                    .prepare_cached("INSERT INTO seats (show_id, seat_id, position) VALUES (?1, ?2, ?3)")
                    .map_err(sql_error)?;
                for (position, seat) in show.auditorium.seat_ids().iter().enumerate() {
                    insert
                        .execute(params![show.show_id.as_str(), seat.as_str(), position as i64])
                        .map_err(sql_error)?;
                }
                Ok(())
            })
            .await
    }

    async fn movies(&self) -> Result<Vec<Movie>, PortError> {
        self.db
            .read(|conn| {
                conn.prepare_cached("SELECT movie_id, title, duration_min FROM movies ORDER BY title, movie_id")
                    .map_err(sql_error)?
                    .query_map([], movie_from)
                    .map_err(sql_error)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql_error)
            })
            .await
    }

    async fn movie(&self, movie_id: &MovieId) -> Result<Option<Movie>, PortError> {
        let id = movie_id.to_string();
        self.db
            .read(move |conn| {
                conn.prepare_cached("SELECT movie_id, title, duration_min FROM movies WHERE movie_id = ?1")
                    .map_err(sql_error)?
                    .query_row([id], movie_from)
                    .optional()
                    .map_err(sql_error)
            })
            .await
    }

    async fn shows_of(&self, movie_id: &MovieId) -> Result<Vec<Show>, PortError> {
        let id = movie_id.to_string();
        self.db
            .read(move |conn| {
                conn.prepare_cached(concat!(
                    "SELECT ",
                    show_columns!(),
                    " FROM shows WHERE movie_id = ?1 ORDER BY starts_at, show_id"
                ))
                .map_err(sql_error)?
                .query_map([id], show_from)
                .map_err(sql_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_error)
            })
            .await
    }

    async fn show(&self, show_id: &ShowId) -> Result<Option<Show>, PortError> {
        let id = show_id.clone();
        self.db.read(move |conn| load_show(conn, &id)).await
    }

    async fn seats(&self, show_id: &ShowId) -> Result<Vec<SeatRecord>, PortError> {
        let id = show_id.to_string();
        self.db
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT seat_id, booking_id, hold_id, hold_expires_at FROM seats
                     WHERE show_id = ?1 ORDER BY position",
                )
                .map_err(sql_error)?
                .query_map([id], seat_from)
                .map_err(sql_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_error)
            })
            .await
    }
}
