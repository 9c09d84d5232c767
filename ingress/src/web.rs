//! The web page: the booking page at `/`, the ops view at `/ops` and their static files
//! under `/assets/`, all embedded in the binary from `ingress/web/` (plain HTML, CSS and
//! JavaScript modules; no build step). They call the `/v1` API like any client, so they
//! are not operations of the OpenAPI document.
//!
//! Also `POST /dev/token {sub, role}`, the sign-in of the page under `usher dev`: the
//! router has it only when [`crate::Ingress::with_dev_tokens`] asked for it, which
//! `usher ingress` never does.

use crate::AppState;
use crate::auth::mint_token_for;
use crate::json::JsonBody;
use crate::problem::ApiError;
use crate::routes::check_id;
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::actor::Role;
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::time::Duration;

/// The files of `ingress/web/`, compiled into the binary (in debug builds too).
#[derive(rust_embed::RustEmbed)]
#[folder = "web/"]
struct Files;

/// Only what the page itself loads: no inline script, no other origin, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// How long a token from `POST /dev/token` lives.
pub const DEV_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

/// `/`, `/ops` and `/assets/{*path}`.
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/", get(|headers: HeaderMap| async move { serve("index.html", &headers) }))
        .route("/ops", get(|headers: HeaderMap| async move { serve("ops.html", &headers) }))
        .route("/assets/{*path}", get(asset))
}

/// `POST /dev/token`.
pub fn dev_token() -> Router<AppState> {
    Router::new().route("/dev/token", post(mint_dev_token))
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    // The HTML pages have their own routes; everything else is an asset.
    if path.ends_with(".html") {
        return ApiError::RouteNotFound(format!("/assets/{path}")).into_response();
    }
    serve(&path, &headers)
}

/// A file with its content type and an `ETag` (its SHA-256): browsers revalidate on
/// every load (`no-cache`) and get a bodiless 304 while the binary has not changed, so a
/// new release is never hidden behind a stale cache.
fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(file) = Files::get(path) else {
        let shown = if path.ends_with(".html") { "/".to_owned() } else { format!("/assets/{path}") };
        return ApiError::RouteNotFound(shown).into_response();
    };
    let etag = file.metadata.sha256_hash().iter().fold(String::from("\""), |mut tag, byte| {
        let _ = write!(tag, "{byte:02x}");
        tag
    }) + "\"";
    let mut response = match headers.get(header::IF_NONE_MATCH) {
        Some(seen) if seen.as_bytes() == etag.as_bytes() => StatusCode::NOT_MODIFIED.into_response(),
        _ => file.data.into_owned().into_response(),
    };
    let content_type = match file.metadata.mimetype() {
        text if text.starts_with("text/") || text.ends_with("javascript") => format!("{text}; charset=utf-8"),
        other => other.to_owned(),
    };
    let out = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type.as_str()),
        (header::CACHE_CONTROL, "no-cache"),
        (header::ETAG, etag.as_str()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            out.insert(name, value);
        }
    }
    response
}

/// `{sub, role}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevTokenRequest {
    sub: String,
    role: Role,
}

/// `{token, sub, role, expires_in}`.
#[derive(Debug, Serialize)]
pub struct DevToken {
    token: String,
    sub: String,
    role: Role,
    /// Seconds.
    expires_in: u64,
}

/// Mints a token for anyone who asks: a development convenience, hence `usher dev` only.
async fn mint_dev_token(
    State(state): State<AppState>,
    body: JsonBody<DevTokenRequest>,
) -> Result<Json<DevToken>, ApiError> {
    let Some(secret) = &state.dev_tokens else {
        return Err(ApiError::RouteNotFound("/dev/token".into()));
    };
    let DevTokenRequest { sub, role } = body.value;
    check_id("sub", &sub)?;
    let token = mint_token_for(secret, &sub, role, DEV_TOKEN_TTL, &state.audience);
    tracing::info!(sub = %sub, role = role.as_str(), "dev token minted");
    Ok(Json(DevToken { token, sub, role, expires_in: DEV_TOKEN_TTL.as_secs() }))
}
