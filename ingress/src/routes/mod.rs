//! The handlers, one module per resource, each registering its own routes (with their
//! OpenAPI operations, written once by `utoipa-axum`), and what they share: the path-id
//! and query extractors, id checks, and the fallbacks for unknown routes and methods.
//!
//! | module | routes |
//! | --- | --- |
//! | [`ops`] | `/health/*`, `/metrics`, `/openapi.json`, `GET /v1/admin/status` |
//! | [`catalog`] | `/v1/movies`, `/v1/shows`, seat maps |
//! | [`seat_events`] | `GET /v1/shows/{show_id}/seats/events` (the live seat map, server-sent events) |
//! | [`holds`] | `POST /v1/holds`, `POST /v1/holds/{hold_id}/release` |
//! | [`bookings`] | `POST /v1/bookings`, `GET /v1/bookings/{booking_id}` |
//! | [`requests`] | `GET /v1/requests/{request_id}` (status documents, long poll) |
//! | [`tickets`] | `/v1/tickets…`, `/v1/agents` |
//! | [`reports`] | `/v1/notifications`, `/v1/reports/*` |
//! | [`admin`] | `/v1/admin/dlqs…` (dead-letter queues: list, peek, replay, purge) |
//!
//! The web page's routes (`/`, `/ops`, `/assets/*`, `/dev/token`) are not API operations:
//! they live in [`crate::web`].

pub mod admin;
pub mod bookings;
pub mod catalog;
pub mod holds;
pub mod ops;
pub mod reports;
pub mod requests;
pub mod seat_events;
pub mod tickets;

use crate::AppState;
use crate::problem::ApiError;
use axum::extract::{FromRequestParts, MatchedPath, Path};
use axum::http::request::Parts;
use axum::http::{Method, Uri};
use serde::de::DeserializeOwned;
use utoipa_axum::router::OpenApiRouter;

/// Longest id accepted in a path or a body; ids Usher makes are far shorter.
pub(crate) const MAX_ID_LEN: usize = 255;

/// Every route of the API with its OpenAPI operation, from one registration each.
pub fn api() -> OpenApiRouter<AppState> {
    use utoipa::OpenApi;
    OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        .merge(ops::routes())
        .merge(catalog::routes())
        .merge(seat_events::routes())
        .merge(holds::routes())
        .merge(bookings::routes())
        .merge(requests::routes())
        .merge(reports::routes())
        .merge(tickets::routes())
        .merge(admin::routes())
}

/// One `{id}` path segment. Its rejection is a problem document, like every error.
#[derive(Debug, Clone)]
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let reason = match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) if is_id(&id) => return Ok(PathId(id)),
            Ok(_) => ID_SHAPE.to_owned(),
            Err(rejection) => rejection.body_text(),
        };
        // The route's one `{parameter}`, named only once there is a problem to name it in.
        let route = parts.extensions.get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or_default();
        let field = route.split_once('{').and_then(|(_, rest)| rest.split_once('}')).map(|(name, _)| name.to_owned());
        let detail = match &field {
            Some(name) => format!("{name}: {reason}"),
            None => format!("a path segment is not valid: {reason}"),
        };
        Err(ApiError::InvalidPath { field, detail })
    }
}

/// The query string read into `T`, a serde struct that denies unknown fields (its
/// `IntoParams` derive documents the same fields). A parameter that is unknown, repeated
/// or mistyped is a 400 `invalid_query` naming it.
#[derive(Debug, Clone)]
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Self::parse(parts.uri.query().unwrap_or_default())
    }
}

impl<T: DeserializeOwned> QueryParams<T> {
    /// Reads a query string (without the `?`).
    pub fn parse(query: &str) -> Result<Self, ApiError> {
        let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(pairs).map(QueryParams).map_err(|e| {
            let detail = e.inner().to_string();
            // Unknown and repeated parameters fail at the top: their name is in the message.
            let field = match e.path().to_string() {
                root if root == "." => detail.split('`').nth(1).map(str::to_owned),
                path => Some(path),
            };
            let detail = match &field {
                Some(field) => format!("{field}: {detail}"),
                None => detail,
            };
            ApiError::InvalidQuery { field, detail }
        })
    }
}

/// A query parameter that parsed but is out of range.
pub(crate) fn invalid_query(field: &str, reason: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidQuery { field: Some(field.to_owned()), detail: format!("{field}: {reason}") }
}

/// What an id looks like, as the OpenAPI document states it (`pattern` of every id in a
/// path, a query or a body): 1 to [`MAX_ID_LEN`] visible ASCII characters, like an
/// `Idempotency-Key`. Ids Usher makes (`hold_…`) and token `sub`s are of this shape.
pub const ID_PATTERN: &str = "^[!-~]{1,255}$";

/// [`ID_PATTERN`] in words, for problem details.
pub(crate) const ID_SHAPE: &str = "ids are 1 to 255 visible ASCII characters";

/// Whether `id` matches [`ID_PATTERN`].
pub fn is_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// An id sent in a body or a query: [`is_id`].
pub(crate) fn check_id(field: &'static str, id: &str) -> Result<(), ApiError> {
    if !is_id(id) {
        return Err(ApiError::invalid_field(field, "must be 1 to 255 visible ASCII characters"));
    }
    Ok(())
}

pub async fn route_not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().to_owned())
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed { method: method.to_string(), path: uri.path().to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_visible_ascii_as_the_pattern_says() {
        assert_eq!(ID_PATTERN, "^[!-~]{1,255}$");
        for ok in ["a", "hold_0193a1b2", "!~", &"x".repeat(MAX_ID_LEN)] {
            assert!(is_id(ok), "{ok}");
        }
        for bad in ["", " ", "a b", "a\u{7f}", "a\u{0}", "\u{97}", "é", &"x".repeat(MAX_ID_LEN + 1)] {
            assert!(!is_id(bad), "{bad:?}");
        }
    }
}
