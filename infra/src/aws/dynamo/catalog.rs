//! Movies and shows (one catalog table, `kind` + `id`) and the seats of each show.

use super::item::{Item, Placeholders, get_millis, get_n, get_s, item, millis, n, opt_millis, opt_s, s};
use super::tables::SHOWS_BY_MOVIE_INDEX;
use super::{DynamoStore, PartitionQuery, is_condition_failure};
use crate::aws::error::{build_error, port_error};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use domain::PortError;
use domain::booking::SeatRecord;
use domain::catalog::{Auditorium, Movie, Show};
use domain::ids::{BookingId, HoldId, MovieId, SeatId, ShowId};
use domain::ports::CatalogStore;

const MOVIE: &str = "movie";
const SHOW: &str = "show";

fn movie_from(item: &Item) -> Result<Movie, PortError> {
    Ok(Movie {
        movie_id: MovieId::from(get_s(item, "id")?),
        title: get_s(item, "title")?.to_owned(),
        duration_min: get_n(item, "duration_min")?,
    })
}

fn show_from(item: &Item) -> Result<Show, PortError> {
    Ok(Show {
        show_id: ShowId::from(get_s(item, "id")?),
        movie_id: MovieId::from(get_s(item, "movie_id")?),
        starts_at: get_millis(item, "starts_at")?,
        auditorium: Auditorium { rows: get_n(item, "rows")?, seats_per_row: get_n(item, "seats_per_row")? },
        price_cents: get_n(item, "price_cents")?,
    })
}

pub(crate) fn seat_from(item: &Item) -> Result<SeatRecord, PortError> {
    Ok(SeatRecord {
        seat_id: SeatId::from(get_s(item, "seat_id")?),
        booking_id: opt_s(item, "booking_id").map(BookingId::from),
        hold_id: opt_s(item, "hold_id").map(HoldId::from),
        hold_expires_at: opt_millis(item, "hold_expires_at")?,
    })
}

pub(crate) fn seat_key(show_id: &ShowId, seat_id: &SeatId) -> Item {
    item([("show_id", s(show_id.as_str())), ("seat_id", s(seat_id.as_str()))])
}

fn catalog_key(kind: &str, id: &str) -> Item {
    item([("kind", s(kind)), ("id", s(id))])
}

impl DynamoStore {
    pub(crate) async fn load_show(&self, show_id: &ShowId) -> Result<Option<Show>, PortError> {
        self.get_one(&self.catalog, catalog_key(SHOW, show_id.as_str())).await?.as_ref().map(show_from).transpose()
    }

    /// Creates an item unless one with its key exists; `false` if it did.
    async fn create_item(&self, table: &str, item: Item, key_attr: &str) -> Result<bool, PortError> {
        let result = self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", key_attr)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(port_error("dynamodb.put_item", &err)),
        }
    }
}

#[async_trait]
impl CatalogStore for DynamoStore {
    async fn create_movie(&self, movie: &Movie) -> Result<(), PortError> {
        let record = item([
            ("kind", s(MOVIE)),
            ("id", s(movie.movie_id.as_str())),
            ("title", s(movie.title.clone())),
            ("duration_min", n(movie.duration_min)),
        ]);
        if !self.create_item(&self.catalog, record, "id").await? {
            return Err(PortError::Invalid(format!("movie {} exists", movie.movie_id)));
        }
        Ok(())
    }

    async fn create_show(&self, show: &Show) -> Result<(), PortError> {
        // Re-laying the seats of an existing show would free its held and booked seats.
        if self.load_show(&show.show_id).await?.is_some() {
            return Err(PortError::Invalid(format!("show {} exists", show.show_id)));
        }
        // Seats first, the show last: a show that can be found has all its seats.
        let seats = show
            .auditorium
            .seat_ids()
            .iter()
            .enumerate()
            .map(|(position, seat)| {
                item([("show_id", s(show.show_id.as_str())), ("seat_id", s(seat.as_str())), ("position", n(position))])
            })
            .collect::<Vec<_>>();
        let puts = seats
            .into_iter()
            .map(|seat| {
                let put = PutRequest::builder().set_item(Some(seat)).build().map_err(|e| build_error("seat put", e))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<_, PortError>>()?;
        self.write_batch(&self.seats, puts).await?;
        let record = item([
            ("kind", s(SHOW)),
            ("id", s(show.show_id.as_str())),
            ("movie_id", s(show.movie_id.as_str())),
            ("starts_at", millis(show.starts_at)),
            ("rows", n(show.auditorium.rows)),
            ("seats_per_row", n(show.auditorium.seats_per_row)),
            ("price_cents", n(show.price_cents)),
        ]);
        if !self.create_item(&self.catalog, record, "id").await? {
            return Err(PortError::Invalid(format!("show {} exists", show.show_id)));
        }
        Ok(())
    }

    async fn movies(&self) -> Result<Vec<Movie>, PortError> {
        let p = Placeholders::names(&["kind"]).value("movie", s(MOVIE));
        let items = PartitionQuery::new(&self.catalog, "#kind = :movie", &p)
            .read(&self.client, "dynamodb.query(movies)")
            .await?;
        let mut movies = items.iter().map(movie_from).collect::<Result<Vec<_>, _>>()?;
        movies.sort_by(|a, b| (&a.title, &a.movie_id).cmp(&(&b.title, &b.movie_id)));
        Ok(movies)
    }

    async fn movie(&self, movie_id: &MovieId) -> Result<Option<Movie>, PortError> {
        self.get_one(&self.catalog, catalog_key(MOVIE, movie_id.as_str())).await?.as_ref().map(movie_from).transpose()
    }

    async fn shows_of(&self, movie_id: &MovieId) -> Result<Vec<Show>, PortError> {
        let p = Placeholders::names(&["movie_id"]).value("movie", s(movie_id.as_str()));
        let items = PartitionQuery::new(&self.catalog, "#movie_id = :movie", &p)
            .index(Some(SHOWS_BY_MOVIE_INDEX))
            .read(&self.client, "dynamodb.query(shows)")
            .await?;
        let mut shows = items.iter().map(show_from).collect::<Result<Vec<_>, _>>()?;
        shows.sort_by(|a, b| (a.starts_at, &a.show_id).cmp(&(b.starts_at, &b.show_id)));
        Ok(shows)
    }

    async fn show(&self, show_id: &ShowId) -> Result<Option<Show>, PortError> {
        self.load_show(show_id).await
    }

    async fn seats(&self, show_id: &ShowId) -> Result<Vec<SeatRecord>, PortError> {
        let p = Placeholders::names(&["show_id"]).value("show", s(show_id.as_str()));
        let items = PartitionQuery::new(&self.seats, "#show_id = :show", &p)
            .read(&self.client, "dynamodb.query(seats)")
            .await?;
        let mut seats = Vec::with_capacity(items.len());
        for item in &items {
            seats.push((get_n::<u64>(item, "position").unwrap_or(u64::MAX), seat_from(item)?));
        }
        // Layout order (A1, A2, …, B1, …), not the key's string order (A1, A10, A11, …).
        seats.sort_by(|a, b| (a.0, &a.1.seat_id).cmp(&(b.0, &b.1.seat_id)));
        Ok(seats.into_iter().map(|(_, seat)| seat).collect())
    }
}
