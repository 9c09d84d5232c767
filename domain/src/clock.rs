//! The one timestamp shape Usher shows the world: RFC 3339, UTC, milliseconds.

use time::{OffsetDateTime, format_description::FormatItem, macros::format_description};

pub type Timestamp = OffsetDateTime;

const RFC3339_MILLIS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Now, truncated to the millisecond so that what is stored reads back equal.
pub fn now() -> Timestamp {
    from_millis(to_millis(OffsetDateTime::now_utc()))
}

pub fn to_millis(t: Timestamp) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn from_millis(ms: i64) -> Timestamp {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub fn format(t: Timestamp) -> String {
    t.to_offset(time::UtcOffset::UTC).format(RFC3339_MILLIS).unwrap_or_else(|_| t.unix_timestamp().to_string())
}

pub fn parse(s: &str) -> Result<Timestamp, time::error::Parse> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
}

/// `#[serde(with = "domain::clock::rfc3339")]` for timestamps in documents and events.
pub mod rfc3339 {
    use super::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        super::parse(&s).map_err(|e| D::Error::custom(format!("not an RFC 3339 timestamp: {e}")))
    }

    pub mod option {
        use super::Timestamp;
        use serde::{Deserialize, Deserializer, Serializer, de::Error};

        pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::super::format(*t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|s| super::super::parse(&s).map_err(|e| D::Error::custom(e.to_string())))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_milliseconds() {
        let t = from_millis(1_795_341_600_123);
        assert_eq!(format(t), "2026-11-22T10:00:00.123Z");
        assert_eq!(parse(&format(t)).unwrap(), t);
    }
}
