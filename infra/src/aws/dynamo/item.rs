//! Reading and writing DynamoDB attribute values, and the placeholders of expressions.
//! Every read checks what it gets: a missing or mistyped attribute is corrupt data,
//! never a panic.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::PortError;
use domain::clock::{self, Timestamp};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn millis(t: Timestamp) -> AttributeValue {
    n(clock::to_millis(t))
}

pub(crate) fn strings<T: Display>(values: &[T]) -> AttributeValue {
    AttributeValue::L(values.iter().map(|v| s(v.to_string())).collect())
}

pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> Result<AttributeValue, PortError> {
    serde_json::to_string(value).map(s).map_err(|e| PortError::Invalid(format!("cannot serialize: {e}")))
}

/// An item, or a key, from its attributes: `item([("hold_id", s(id)), ("status", s(..))])`.
/// An attribute absent while unknown is chained on only when present, never stored NULL.
pub(crate) fn item<'a>(attributes: impl IntoIterator<Item = (&'a str, AttributeValue)>) -> Item {
    attributes.into_iter().map(|(name, value)| (name.to_owned(), value)).collect()
}

fn missing(name: &str) -> PortError {
    PortError::Corrupt(format!("stored item lacks `{name}` or has the wrong type"))
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, PortError> {
    opt_s(item, name).ok_or_else(|| missing(name))
}

/// A string attribute that may be absent (or explicitly NULL).
pub(crate) fn opt_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.as_str()),
        _ => None,
    }
}

pub(crate) fn get_n<T: FromStr>(item: &Item, name: &str) -> Result<T, PortError> {
    opt_n(item, name)?.ok_or_else(|| missing(name))
}

pub(crate) fn opt_n<T: FromStr>(item: &Item, name: &str) -> Result<Option<T>, PortError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => {
            v.parse().map(Some).map_err(|_| PortError::Corrupt(format!("`{name}` is not a number in range: {v}")))
        }
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => Err(missing(name)),
    }
}

pub(crate) fn get_millis(item: &Item, name: &str) -> Result<Timestamp, PortError> {
    get_n::<i64>(item, name).map(clock::from_millis)
}

pub(crate) fn opt_millis(item: &Item, name: &str) -> Result<Option<Timestamp>, PortError> {
    Ok(opt_n::<i64>(item, name)?.map(clock::from_millis))
}

pub(crate) fn get_bool(item: &Item, name: &str) -> Option<bool> {
    match item.get(name) {
        Some(AttributeValue::Bool(b)) => Some(*b),
        _ => None,
    }
}

pub(crate) fn get_strings<T: From<String>>(item: &Item, name: &str) -> Result<Vec<T>, PortError> {
    match item.get(name) {
        Some(AttributeValue::L(values)) => values
            .iter()
            .map(|v| match v {
                AttributeValue::S(s) => Ok(T::from(s.clone())),
                _ => Err(missing(name)),
            })
            .collect(),
        _ => Err(missing(name)),
    }
}

pub(crate) fn opt_json<T: DeserializeOwned>(item: &Item, name: &str) -> Result<Option<T>, PortError> {
    opt_s(item, name)
        .map(|v| serde_json::from_str(v).map_err(|e| PortError::Corrupt(format!("`{name}` is not valid: {e}"))))
        .transpose()
}

/// The placeholders of one expression: `#name` for every attribute it mentions (so that
/// reserved words such as `status` need no care) and `:value` for every value.
#[derive(Debug, Default, Clone)]
pub(crate) struct Placeholders {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Placeholders {
    /// `#a` stands for attribute `a`, for each one named.
    pub(crate) fn names(names: &[&str]) -> Self {
        let names = names.iter().map(|n| (format!("#{n}"), (*n).to_owned())).collect();
        Self { names, values: HashMap::new() }
    }

    /// `:v` stands for `value`.
    pub(crate) fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(format!(":{placeholder}"), value);
        self
    }

    /// DynamoDB rejects an empty map, so an expression without names sends none.
    pub(crate) fn name_map(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    pub(crate) fn value_map(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}
