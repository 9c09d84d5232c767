//! The JSON body extractor: a 64 KiB limit (413), JSON only, and typed parsing that names
//! the offending field (400). It keeps the parsed `serde_json::Value` too, because the
//! idempotency fingerprint hashes the body canonically.

use crate::AppState;
use crate::problem::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The largest body accepted, in bytes (docs/contract.md §2).
pub const BODY_LIMIT: usize = 64 * 1024;

/// A request body parsed as `T` (whose structs deny unknown fields), plus the JSON value
/// it was parsed from.
#[derive(Debug)]
pub struct JsonBody<T> {
    pub value: T,
    pub raw: Value,
}

impl<T> FromRequest<AppState> for JsonBody<T>
where
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if let Some(content_type) = req.headers().get(CONTENT_TYPE) {
            if !is_json(content_type.to_str().unwrap_or("")) {
                return Err(ApiError::InvalidBody {
                    field: None,
                    detail: "the body must be JSON (Content-Type: application/json)".into(),
                });
            }
        }
        // The whole body must arrive within the body timeout, however it trickles in: a
        // timer between frames would let a byte every few seconds hold the connection. The
        // router's `DefaultBodyLimit` makes `Bytes` stop at BODY_LIMIT.
        let read = tokio::time::timeout(state.body_timeout, Bytes::from_request(req, state)).await;
        let bytes = read.map_err(|_| ApiError::RequestTimeout)?.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge { limit: BODY_LIMIT }
            } else {
                ApiError::InvalidBody { field: None, detail: rejection.body_text() }
            }
        })?;
        parse(&bytes)
    }
}

/// Parses a body. An empty body, or `null`, reads as `{}`, so a bodiless POST is told
/// which field it lacks rather than that it is not JSON.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<JsonBody<T>, ApiError> {
    let raw: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice::<Strict>(bytes).map_err(|e| not_json(bytes, &e))?.0
    };
    // `null` is "no body" said in JSON (the document marks an optional body nullable).
    let raw = if raw.is_null() { Value::Object(Default::default()) } else { raw };
    if !raw.is_object() {
        return Err(ApiError::InvalidBody { field: None, detail: "the body must be a JSON object".into() });
    }
    let value = serde_path_to_error::deserialize(&raw).map_err(|e| {
        let field = field_of(e.path(), e.inner());
        let reason = e.inner().to_string();
        match field {
            Some(field) => ApiError::InvalidBody { detail: format!("{field}: {reason}"), field: Some(field) },
            None => ApiError::InvalidBody { field: None, detail: reason },
        }
    })?;
    Ok(JsonBody { value, raw })
}

/// A body that does not parse. When it breaks inside a field's value (a number too large
/// for a double, `1e400`, or a misspelt `tru`), that field is named, as a value out of
/// range is; a body broken between fields names none.
fn not_json(bytes: &[u8], error: &serde_json::Error) -> ApiError {
    let mut again = serde_json::Deserializer::from_slice(bytes);
    let field = serde_path_to_error::deserialize::<_, Strict>(&mut again)
        .err()
        .map(|e| e.path().to_string())
        // `.` is the top level; a `?` is a key that did not parse.
        .filter(|path| path != "." && !path.contains('?'));
    ApiError::InvalidBody { field, detail: format!("the body is not valid JSON: {error}") }
}

/// A JSON value parsed as `serde_json::Value` is, except that an object naming a key twice
/// is an error: `{"title": "T", "title": "U"}` has no one meaning (a `Value` keeps the last),
/// and the idempotency fingerprint should not hash a body the client may have meant
/// otherwise.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!("the key {key:?} appears twice")));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// The dotted path of the field an error is about. A missing or unknown field is
/// reported one level up, so its own name is taken from serde's message.
fn field_of(path: &serde_path_to_error::Path, error: &serde_json::Error) -> Option<String> {
    let message = error.to_string();
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next())
        .map(str::to_owned);
    let parent = path.to_string();
    let parent = (parent != ".").then_some(parent);
    match (parent, named) {
        (Some(parent), Some(name)) if !parent.ends_with(&name) => Some(format!("{parent}.{name}")),
        (Some(parent), _) => Some(parent),
        (None, name) => name,
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        rows: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Inner,
        list: Vec<u32>,
    }

    fn field(body: &str) -> Option<String> {
        match parse::<Outer>(body.as_bytes()) {
            Err(ApiError::InvalidBody { field, .. }) => field,
            other => panic!("expected invalid_body, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field(r#"{"name":1,"inner":{"rows":1},"list":[]}"#).as_deref(), Some("name"));
        assert_eq!(field(r#"{"name":"a","inner":{"rows":-1},"list":[]}"#).as_deref(), Some("inner.rows"));
        assert_eq!(field(r#"{"name":"a","inner":{"rows":1},"list":["x"]}"#).as_deref(), Some("list[0]"));
        assert_eq!(field(r#"{"inner":{"rows":1},"list":[]}"#).as_deref(), Some("name"));
        assert_eq!(field(r#"{"name":"a","inner":{},"list":[]}"#).as_deref(), Some("inner.rows"));
        assert_eq!(field(r#"{"name":"a","inner":{"rows":1},"list":[],"extra":1}"#).as_deref(), Some("extra"));
        assert_eq!(field(r#"{"name":"a","inner":{"rows":1,"cols":2},"list":[]}"#).as_deref(), Some("inner.cols"));
    }

    #[test]
    fn a_number_no_parser_can_hold_names_its_field() {
        assert_eq!(field(r#"{"name":"a","inner":{"rows":1e400},"list":[]}"#).as_deref(), Some("inner.rows"));
        assert_eq!(field(r#"{"name":"a","inner":{"rows":1},"list":[2, -1e999]}"#).as_deref(), Some("list[1]"));
    }

    #[test]
    fn non_json_is_a_bad_body_without_a_field() {
        assert_eq!(field("{not json"), None);
        assert_eq!(field("[1,2]"), None);
    }

    #[test]
    fn an_empty_body_reads_as_an_empty_object() {
        assert_eq!(field("").as_deref(), Some("name"));
    }

    #[test]
    fn a_key_named_twice_is_a_bad_body() {
        for body in [r#"{"name": "a", "name": "b"}"#, r#"{"name": "a", "inner": {"rows": 1, "rows": 2}, "list": []}"#] {
            match parse::<Outer>(body.as_bytes()) {
                Err(ApiError::InvalidBody { detail, .. }) => assert!(detail.contains("appears twice"), "{detail}"),
                other => panic!("{body}: expected invalid_body, got {other:?}"),
            }
        }
        // The same key in two objects is no repetition.
        let body = r#"{"name": "a", "inner": {"rows": 1}, "list": [1, 2], "extra": {"name": "b"}}"#;
        let Err(ApiError::InvalidBody { field, .. }) = parse::<Outer>(body.as_bytes()) else { panic!() };
        assert_eq!(field.as_deref(), Some("extra"), "unknown, not repeated");
        let parsed = parse::<Outer>(br#"{"name": "a", "inner": {"rows": 1}, "list": [1, 2.5e0, -3]}"#);
        assert!(parsed.is_err(), "2.5 is no u32");
        let parsed = parse::<Outer>(br#"{"name": "a\u00e9", "inner": {"rows": 1}, "list": [1, 2]}"#).unwrap();
        assert_eq!(parsed.raw, serde_json::json!({"name": "a\u{e9}", "inner": {"rows": 1}, "list": [1, 2]}));
    }

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}
