//! Opaque ids. Clients must not parse them; the prefixes only help people read logs.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            schemars::JsonSchema, utoipa::ToSchema,
        )]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new, time-ordered id.
            pub fn generate() -> Self {
                Self(format!(concat!($prefix, "_{}"), uuid::Uuid::now_v7().simple()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

opaque_id!(
    /// One admitted command; the key of its status document.
    RequestId, "req");
opaque_id!(MovieId, "mov");
opaque_id!(ShowId, "show");
opaque_id!(HoldId, "hold");
opaque_id!(BookingId, "bk");
opaque_id!(TicketId, "tkt");
opaque_id!(CommentId, "cmt");
opaque_id!(NotificationId, "ntf");

/// A caller, as the JWT `sub` claim names them.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub fn new(sub: impl Into<String>) -> Self {
        Self(sub.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A seat within one show's auditorium: a row letter and a number, `A1` … `J12`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema, utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct SeatId(String);

impl SeatId {
    pub fn at(row: u32, number: u32) -> Self {
        let letter = char::from(b'A' + (row % 26) as u8);
        Self(format!("{letter}{}", number + 1))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SeatId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl fmt::Display for SeatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_carry_their_prefix_and_differ() {
        let a = RequestId::generate();
        let b = RequestId::generate();
        assert!(a.as_str().starts_with("req_"));
        assert_ne!(a, b);
    }

    #[test]
    fn seat_ids_are_row_letter_and_number() {
        assert_eq!(SeatId::at(0, 0).as_str(), "A1");
        assert_eq!(SeatId::at(9, 11).as_str(), "J12");
    }
}
