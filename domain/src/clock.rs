//! Time as Usher shows it to the world, and where it reads it from.
//!
//! [`Timestamp`] is an instant in UTC to the millisecond that serializes as RFC 3339
//! (`2026-11-22T10:00:00.123Z`) everywhere: documents, events, messages, schemas. [`Clock`]
//! is the time source the services are given; [`SystemClock`] reads the wall clock and
//! [`PausableClock`] follows tokio's clock, so tests can run time-dependent logic under
//! `tokio::time::pause`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::time::Duration;
use time::{OffsetDateTime, format_description::FormatItem, macros::format_description};

const RFC3339_MILLIS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// An instant, UTC, to the millisecond (so that what is stored reads back equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    pub const UNIX_EPOCH: Timestamp = Timestamp(OffsetDateTime::UNIX_EPOCH);

    fn truncated(t: OffsetDateTime) -> Self {
        from_millis(to_millis(Timestamp(t)))
    }

    pub fn unix_timestamp(self) -> i64 {
        self.0.unix_timestamp()
    }

    /// `self + d`, or `None` past the representable range.
    pub fn checked_add(self, d: time::Duration) -> Option<Timestamp> {
        self.0.checked_add(d).map(Timestamp)
    }

    /// The UTC calendar day.
    pub fn date(self) -> time::Date {
        self.0.date()
    }
}

impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp(self.0 + d)
    }
}

impl std::ops::Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0 - d)
    }
}

impl std::ops::Add<time::Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: time::Duration) -> Timestamp {
        Timestamp(self.0 + d)
    }
}

impl std::ops::Sub<time::Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, d: time::Duration) -> Timestamp {
        Timestamp(self.0 - d)
    }
}

/// How long from `other` to `self` (negative if `other` is later).
impl std::ops::Sub for Timestamp {
    type Output = time::Duration;
    fn sub(self, other: Timestamp) -> time::Duration {
        self.0 - other.0
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format(*self))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*self))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        parse(&s).map_err(|e| serde::de::Error::custom(format!("not an RFC 3339 timestamp: {e}")))
    }
}

impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "format": "date-time" })
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("RFC 3339, UTC, to the millisecond: `2026-11-22T10:00:00.123Z`."))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

/// Now by the wall clock.
pub fn now() -> Timestamp {
    Timestamp::truncated(OffsetDateTime::now_utc())
}

pub fn to_millis(t: Timestamp) -> i64 {
    (t.0.unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn from_millis(ms: i64) -> Timestamp {
    Timestamp(OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH))
}

/// `2026-11-22T10:00:00.123Z`. Written digit by digit into a fixed template: `time`'s
/// formatter walks the format description for every field, and at about 1,500 instructions
/// a call it was 2% of the instructions the server spent on a hold (scripts/bench-ir.sh),
/// since every status document, event and message carries timestamps. A year outside
/// 0000-9999 takes `time`'s formatter.
pub fn format(t: Timestamp) -> String {
    let utc = t.0.to_offset(time::UtcOffset::UTC);
    let Ok(year) = u32::try_from(utc.year()) else { return general_format(utc) };
    if year > 9999 {
        return general_format(utc);
    }
    let mut text = *b"0000-00-00T00:00:00.000Z";
    for (at, len, value) in [
        (0, 4, year),
        (5, 2, u32::from(u8::from(utc.month()))),
        (8, 2, u32::from(utc.day())),
        (11, 2, u32::from(utc.hour())),
        (14, 2, u32::from(utc.minute())),
        (17, 2, u32::from(utc.second())),
        (20, 3, u32::from(utc.millisecond())),
    ] {
        let mut rest = value;
        for digit in text[at..at + len].iter_mut().rev() {
            *digit = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
    }
    text.iter().map(|&b| char::from(b)).collect()
}

fn general_format(utc: OffsetDateTime) -> String {
    utc.format(RFC3339_MILLIS).unwrap_or_else(|_| utc.unix_timestamp().to_string())
}

pub fn parse(s: &str) -> Result<Timestamp, time::error::Parse> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map(Timestamp::truncated)
}

/// Where services read the time. Cheap to clone behind an `Arc`.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        now()
    }
}

/// A clock that starts at `start` and then advances with a monotonic source given as
/// "time elapsed since creation" (tokio's clock in the runtime crates), so that pausing
/// and advancing that source moves this clock too.
pub struct OffsetClock<F> {
    start: Timestamp,
    elapsed: F,
}

impl<F: Fn() -> Duration> OffsetClock<F> {
    pub fn new(start: Timestamp, elapsed: F) -> Self {
        Self { start, elapsed }
    }
}

impl<F> std::fmt::Debug for OffsetClock<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OffsetClock").field("start", &self.start).finish_non_exhaustive()
    }
}

impl<F: Fn() -> Duration + Send + Sync> Clock for OffsetClock<F> {
    fn now(&self) -> Timestamp {
        Timestamp::truncated((self.start + (self.elapsed)()).0)
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
        assert_eq!(serde_json::to_value(t).unwrap(), "2026-11-22T10:00:00.123Z");
        assert_eq!(serde_json::from_str::<Timestamp>("\"2026-11-22T10:00:00.123Z\"").unwrap(), t);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }

    proptest::proptest! {
        /// The template agrees with `time`'s formatter everywhere: years 0000 to 9999, and
        /// the negative years and the out-of-range instants where it defers to it.
        #[test]
        fn formats_as_time_does(ms in -400_000_000_000_000i64..400_000_000_000_000i64) {
            let t = from_millis(ms);
            let utc = t.0.to_offset(time::UtcOffset::UTC);
            proptest::prop_assert_eq!(format(t), general_format(utc));
        }
    }

    #[test]
    fn formats_the_edges_of_the_template() {
        assert_eq!(format(from_millis(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(format(from_millis(-62_167_219_200_000)), "0000-01-01T00:00:00.000Z");
        assert_eq!(format(from_millis(253_402_300_799_999)), "9999-12-31T23:59:59.999Z");
        assert_eq!(format(from_millis(-1)), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn an_offset_clock_moves_with_its_source() {
        let elapsed = std::sync::Mutex::new(Duration::ZERO);
        let clock = OffsetClock::new(from_millis(1_000), || *elapsed.lock().unwrap());
        assert_eq!(clock.now(), from_millis(1_000));
        *elapsed.lock().unwrap() = Duration::from_millis(2_500);
        assert_eq!(clock.now(), from_millis(3_500));
    }
}
