//! A small catalog so that a fresh `usher dev` has something to book.

use domain::PortError;
use domain::catalog::{Auditorium, Movie, Show};
use domain::clock;
use domain::ids::{MovieId, ShowId};
use infra::Backend;
use std::time::Duration;

/// Seeds two movies with two shows each (10 rows of 12 seats) when there are no movies.
pub async fn seed_if_empty(backend: &Backend) -> Result<bool, PortError> {
    if !backend.catalog.movies().await?.is_empty() {
        return Ok(false);
    }
    let tomorrow = clock::now() + Duration::from_secs(86_400);
    for (title, duration_min) in [("The Usher", 104), ("Queue Runner", 97)] {
        let movie = Movie { movie_id: MovieId::generate(), title: title.to_owned(), duration_min };
        backend.catalog.create_movie(&movie).await?;
        for hours in [18u64, 21] {
            let show = Show {
                show_id: ShowId::generate(),
                movie_id: movie.movie_id.clone(),
                starts_at: tomorrow + Duration::from_secs(hours * 3600),
                auditorium: Auditorium { rows: 10, seats_per_row: 12 },
                price_cents: 1200,
            };
            backend.catalog.create_show(&show).await?;
        }
    }
    Ok(true)
}
