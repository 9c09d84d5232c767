//! The `Idempotency-Key` header and the fingerprint of the request it guards.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;

/// 1..=255 visible ASCII characters, scoped to one caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key must be 1 to 255 visible ASCII characters")]
pub struct InvalidKey;

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, InvalidKey> {
        let visible = raw.bytes().all(|b| b.is_ascii_graphic());
        if raw.is_empty() || raw.len() > 255 || !visible {
            return Err(InvalidKey);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A hash of method, path and the body in canonical JSON (keys sorted, no whitespace),
/// so that key order and spacing do not make two equal requests differ.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn of(method: &str, path: &str, body: &Value) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(method.as_bytes());
        hasher.update(b"\n");
        hasher.update(path.as_bytes());
        hasher.update(b"\n");
        let mut canonical_body = Vec::with_capacity(256);
        write_canonical(body, &mut canonical_body);
        hasher.update(&canonical_body);
        // The digest's own hex: one write, where a `write!` per byte ran the formatting
        // machinery 32 times on every command.
        Self(format!("{:x}", hasher.finalize()))
    }

    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Appends `v` as canonical JSON: object keys sorted, no whitespace, scalars as serde_json
/// writes them. One buffer for the whole body: this runs on every command.
fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            write_joined(out, (b'{', b'}'), keys, |key, out| {
                write_scalar(key, out);
                out.push(b':');
                write_canonical(&map[key], out);
            });
        }
        Value::Array(items) => write_joined(out, (b'[', b']'), items, write_canonical),
        scalar => write_scalar(scalar, out),
    }
}

/// Writes `items` between `brackets`, separated by commas.
fn write_joined<T>(
    out: &mut Vec<u8>,
    (open, close): (u8, u8),
    items: impl IntoIterator<Item = T>,
    mut write: impl FnMut(T, &mut Vec<u8>),
) {
    out.push(open);
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(item, out);
    }
    out.push(close);
}

/// A string or scalar in compact JSON. Serializing one into a `Vec` cannot fail.
fn write_scalar<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    let _ = serde_json::to_writer(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_visible_ascii_up_to_255() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse("tab\t").is_err());
        assert!(IdempotencyKey::parse("é").is_err());
        assert!(IdempotencyKey::parse("order-42:{x}~").is_ok());
    }

    #[test]
    fn fingerprints_ignore_key_order_and_whitespace() {
        let a: Value = serde_json::from_str(r#"{"show_id":"s","seat_ids":["A1","A2"],"n":{"b":1,"a":2}}"#).unwrap();
        let b: Value =
            serde_json::from_str("{ \"n\": {\"a\":2, \"b\":1},\n \"seat_ids\": [\"A1\", \"A2\"], \"show_id\": \"s\" }")
                .unwrap();
        assert_eq!(Fingerprint::of("POST", "/v1/holds", &a), Fingerprint::of("POST", "/v1/holds", &b));
    }

    #[test]
    fn fingerprints_see_every_difference_that_matters() {
        let a = json!({"seat_ids": ["A1", "A2"]});
        let base = Fingerprint::of("POST", "/v1/holds", &a);
        assert_ne!(base, Fingerprint::of("POST", "/v1/holds", &json!({"seat_ids": ["A2", "A1"]})));
        assert_ne!(base, Fingerprint::of("POST", "/v1/bookings", &a));
        assert_ne!(base, Fingerprint::of("PUT", "/v1/holds", &a));
        assert_ne!(Fingerprint::of("POST", "/p", &json!({"a": "1"})), Fingerprint::of("POST", "/p", &json!({"a": 1})));
    }

    #[test]
    fn a_fingerprint_stays_what_earlier_versions_stored() {
        // Fingerprints are stored with their keys for 24 h: the same request must keep
        // hashing to the same value across versions. This one was computed by the first
        // implementation (a `String` per value, joined).
        let body: Value = serde_json::from_str(
            r#"{"z":[1,2.5,-3e2,{"b":null,"a":true}],"a":"quote \" slash \\ tab \t é ☃","m":{},"e":[],"n":"\u0001"}"#,
        )
        .unwrap();
        assert_eq!(
            Fingerprint::of("POST", "/v1/holds", &body).as_str(),
            "d822a81b9e4f15be58f5cb840dbf417b5236816e9c95e69f484e38a2acd8ac10"
        );
    }
}
