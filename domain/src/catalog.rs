//! Movies, shows and the seat layout of a show's auditorium.

use crate::clock::Timestamp;
use crate::error::FieldError;
use crate::ids::{MovieId, SeatId, ShowId};
use serde::{Deserialize, Serialize};

pub const MAX_ROWS: u32 = 26;
pub const MAX_SEATS_PER_ROW: u32 = 50;
pub const MAX_PRICE_CENTS: u64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Movie {
    pub movie_id: MovieId,
    pub title: String,
    pub duration_min: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Auditorium {
    #[serde(deserialize_with = "crate::integral::deserialize")]
    #[schema(minimum = 1, maximum = 26)]
    pub rows: u32,
    #[serde(deserialize_with = "crate::integral::deserialize")]
    #[schema(minimum = 1, maximum = 50)]
    pub seats_per_row: u32,
}

impl Auditorium {
    /// Every seat, row by row: `A1`, `A2`, …, then `B1`, ….
    pub fn seat_ids(&self) -> Vec<SeatId> {
        (0..self.rows).flat_map(|r| (0..self.seats_per_row).map(move |n| SeatId::at(r, n))).collect()
    }

    pub fn capacity(&self) -> u32 {
        self.rows * self.seats_per_row
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Show {
    pub show_id: ShowId,
    pub movie_id: MovieId,
    pub starts_at: Timestamp,
    pub auditorium: Auditorium,
    pub price_cents: u64,
}

/// A validation failure of client input: the field and what is wrong with it.
pub fn validate_movie(title: &str, duration_min: u32) -> Result<(), FieldError> {
    if title.trim().is_empty() || title.chars().count() > 200 {
        return Err(FieldError::new("title", "must be 1 to 200 characters"));
    }
    if !(1..=1000).contains(&duration_min) {
        return Err(FieldError::new("duration_min", "must be between 1 and 1000"));
    }
    Ok(())
}

pub fn validate_show(auditorium: Auditorium, price_cents: u64) -> Result<(), FieldError> {
    if !(1..=MAX_ROWS).contains(&auditorium.rows) {
        return Err(FieldError::new("auditorium.rows", format!("must be between 1 and {MAX_ROWS}")));
    }
    if !(1..=MAX_SEATS_PER_ROW).contains(&auditorium.seats_per_row) {
        return Err(FieldError::new("auditorium.seats_per_row", format!("must be between 1 and {MAX_SEATS_PER_ROW}")));
    }
    if price_cents > MAX_PRICE_CENTS {
        return Err(FieldError::new("price_cents", format!("must be at most {MAX_PRICE_CENTS}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auditorium_lays_out_every_seat() {
        let seats = Auditorium { rows: 10, seats_per_row: 12 }.seat_ids();
        assert_eq!(seats.len(), 120);
        assert_eq!(seats.first().unwrap().as_str(), "A1");
        assert_eq!(seats.last().unwrap().as_str(), "J12");
    }

    #[test]
    fn show_validation_names_the_field() {
        let err = validate_show(Auditorium { rows: 0, seats_per_row: 5 }, 100).unwrap_err();
        assert_eq!(err.field, "auditorium.rows");
        assert!(validate_show(Auditorium { rows: 3, seats_per_row: 51 }, 1).is_err());
        assert!(validate_show(Auditorium { rows: 3, seats_per_row: 5 }, 1).is_ok());
        assert_eq!(validate_movie("", 90).unwrap_err().field, "title");
    }
}
