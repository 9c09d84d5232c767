//! Whole numbers sent as JSON numbers with an integral value: `466` and `466.0` alike.
//!
//! JSON has one number type, and JSON Schema's `integer` is any number whose value is a
//! whole number, so `466.0` is a valid `integer`. serde refuses a float for a `u32`; the
//! request bodies' integer fields use `#[serde(deserialize_with = "domain::integral::deserialize")]`
//! so the API accepts what its OpenAPI document says it does. A fraction, a negative or an
//! out-of-range value is still refused, naming the field.

use serde::Deserializer;
use serde::de::{Error, Unexpected, Visitor};
use std::fmt;

/// Reads an unsigned whole number (an integer, or a float with no fraction) into `T`.
pub fn deserialize<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let n = deserializer.deserialize_any(Whole)?;
    T::try_from(n).map_err(|_| D::Error::invalid_value(Unexpected::Unsigned(n), &"a smaller whole number"))
}

/// As [`deserialize`], for an optional field: `null` is `None` (an absent field needs
/// `#[serde(default)]` beside it).
pub fn deserialize_option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    match deserializer.deserialize_option(MaybeWhole)? {
        None => Ok(None),
        Some(n) => T::try_from(n)
            .map(Some)
            .map_err(|_| D::Error::invalid_value(Unexpected::Unsigned(n), &"a smaller whole number")),
    }
}

struct MaybeWhole;

impl<'de> Visitor<'de> for MaybeWhole {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a whole number or null")
    }

    fn visit_none<E: Error>(self) -> Result<Option<u64>, E> {
        Ok(None)
    }

    fn visit_unit<E: Error>(self) -> Result<Option<u64>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<u64>, D::Error> {
        deserializer.deserialize_any(Whole).map(Some)
    }
}

struct Whole;

/// 2^64, the first float above every `u64`.
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

impl Visitor<'_> for Whole {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a whole number")
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<u64, E> {
        if v.fract() == 0.0 && (0.0..TWO_POW_64).contains(&v) {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(v as u64)
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct N {
        #[serde(deserialize_with = "super::deserialize")]
        n: u32,
    }

    #[derive(Debug, serde::Deserialize)]
    struct MaybeN {
        #[serde(default, deserialize_with = "super::deserialize_option")]
        n: Option<u32>,
    }

    fn read(json: &str) -> Result<u32, String> {
        serde_json::from_str::<N>(json).map(|v| v.n).map_err(|e| e.to_string())
    }

    #[test]
    fn integral_floats_read_as_integers_and_nothing_else_does() {
        assert_eq!(read(r#"{"n": 466}"#), Ok(466));
        assert_eq!(read(r#"{"n": 466.0}"#), Ok(466));
        assert_eq!(read(r#"{"n": 4.66e2}"#), Ok(466));
        assert_eq!(read(r#"{"n": -0.0}"#), Ok(0));
        for bad in ["466.5", "-1", "-1.0", "4294967296", "1e300", "\"1\"", "null", "true"] {
            assert!(read(&format!(r#"{{"n": {bad}}}"#)).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_optional_whole_number_may_be_null_or_absent() {
        let read = |json: &str| serde_json::from_str::<MaybeN>(json).map(|v| v.n).map_err(|e| e.to_string());
        assert_eq!(read(r#"{"n": 50.0}"#), Ok(Some(50)));
        assert_eq!(read(r#"{"n": 50}"#), Ok(Some(50)));
        assert_eq!(read(r#"{"n": null}"#), Ok(None));
        assert_eq!(read("{}"), Ok(None));
        for bad in ["50.5", "-1", "4294967296", "\"1\"", "true"] {
            assert!(read(&format!(r#"{{"n": {bad}}}"#)).is_err(), "{bad}");
        }
    }
}
