//! The handlers, one module per kind of route, and what they share: the path-id
//! extractor and the fallbacks for unknown routes and methods.

pub mod catalog;
pub mod commands;
pub mod health;
pub mod reads;
pub mod reports;
pub mod tickets;

use crate::problem::ApiError;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{Method, Uri};

/// Longest path id accepted; ids Usher makes are far shorter.
const MAX_PATH_ID_LEN: usize = 255;

/// One `{id}` path segment. Its rejection is a problem document, like every error.
#[derive(Debug, Clone)]
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::InvalidPath(rejection.body_text()))?;
        if id.len() > MAX_PATH_ID_LEN {
            return Err(ApiError::InvalidPath(format!("ids are at most {MAX_PATH_ID_LEN} bytes")));
        }
        Ok(PathId(id))
    }
}

pub async fn route_not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().to_owned())
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed { method: method.to_string(), path: uri.path().to_owned() }
}
