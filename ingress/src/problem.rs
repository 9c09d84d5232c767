//! Every HTTP error the API gives, and the one place that turns it into an RFC 9457
//! `application/problem+json` response with a stable machine `code`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::PortError;
use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// The base of every problem's `type` URI; the code follows it.
const PROBLEM_TYPE_BASE: &str = "https://usher.dev/problems/";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("this action needs the {0} role")]
    Forbidden(&'static str),
    /// A resource that does not exist or that the caller may not see: the two read alike.
    #[error("{detail}")]
    NotFound { code: &'static str, detail: String },
    #[error("no route for {0}")]
    RouteNotFound(String),
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("the Idempotency-Key header is required on this route")]
    IdempotencyKeyMissing,
    #[error("the Idempotency-Key header must be 1 to 255 visible ASCII characters")]
    IdempotencyKeyInvalid,
    /// The body is not JSON, or a field is missing, unknown, mistyped or out of range.
    #[error("{detail}")]
    InvalidBody { field: Option<String>, detail: String },
    /// A query parameter is malformed or out of range.
    #[error("{detail}")]
    InvalidQuery { field: Option<String>, detail: String },
    /// An id in the path is not one (`field` names its parameter).
    #[error("{detail}")]
    InvalidPath { field: Option<String>, detail: String },
    #[error("the body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still being admitted; retry shortly")]
    IdempotencyRequestInProgress,
    #[error("the backend cannot be reached right now; retry shortly")]
    BackendUnavailable(#[source] PortError),
    /// The caller sent commands faster than `USHER_RATE_LIMIT` (with `USHER_RATE_BURST`).
    #[error("too many commands from this caller; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The request (headers and body) was not read, or not answered, in time.
    #[error("the request took too long")]
    RequestTimeout,
}

impl From<PortError> for ApiError {
    fn from(e: PortError) -> Self {
        ApiError::BackendUnavailable(e)
    }
}

impl ApiError {
    pub(crate) fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::NotFound { code, detail: detail.into() }
    }

    pub(crate) fn invalid_field(field: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        let field = field.into();
        ApiError::InvalidBody { detail: format!("{field}: {reason}"), field: Some(field) }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } | ApiError::RouteNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::IdempotencyKeyMissing
            | ApiError::IdempotencyKeyInvalid
            | ApiError::InvalidBody { .. }
            | ApiError::InvalidQuery { .. }
            | ApiError::InvalidPath { .. } => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::IdempotencyRequestInProgress => StatusCode::CONFLICT,
            ApiError::BackendUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// The stable machine code clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound { code, .. } => code,
            ApiError::RouteNotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::IdempotencyKeyMissing => "idempotency_key_missing",
            ApiError::IdempotencyKeyInvalid => "idempotency_key_invalid",
            ApiError::InvalidBody { .. } => "invalid_body",
            ApiError::InvalidQuery { .. } => "invalid_query",
            ApiError::InvalidPath { .. } => "invalid_path",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::IdempotencyRequestInProgress => "idempotency_request_in_progress",
            ApiError::BackendUnavailable(_) => "backend_unavailable",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::RequestTimeout => "request_timeout",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::NotFound { .. } | ApiError::RouteNotFound(_) => "Not found",
            ApiError::MethodNotAllowed { .. } => "Method not allowed",
            ApiError::IdempotencyKeyMissing => "Idempotency key missing",
            ApiError::IdempotencyKeyInvalid => "Idempotency key invalid",
            ApiError::InvalidBody { .. } => "Invalid body",
            ApiError::InvalidQuery { .. } => "Invalid query",
            ApiError::InvalidPath { .. } => "Invalid path",
            ApiError::PayloadTooLarge { .. } => "Payload too large",
            ApiError::IdempotencyKeyReused => "Idempotency key reused",
            ApiError::IdempotencyRequestInProgress => "Request in progress",
            ApiError::BackendUnavailable(_) => "Backend unavailable",
            ApiError::RateLimited { .. } => "Rate limited",
            ApiError::RequestTimeout => "Request timeout",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            ApiError::InvalidBody { field, .. }
            | ApiError::InvalidQuery { field, .. }
            | ApiError::InvalidPath { field, .. } => field.as_deref(),
            _ => None,
        }
    }
}

/// Every problem `code` the API answers with, its status and when. The OpenAPI document
/// lists these as the values of `Problem.code`; a test keeps the list complete.
pub const PROBLEM_CODES: &[(&str, u16, &str)] = &[
    (
        "invalid_body",
        400,
        "the body is not JSON, or a field is missing, unknown, mistyped or out of range (`field` names it)",
    ),
    ("invalid_query", 400, "a query parameter is malformed or out of range (`field` names it)"),
    ("invalid_path", 400, "a path segment is not a valid id"),
    ("idempotency_key_missing", 400, "a command without an `Idempotency-Key` header"),
    (
        "idempotency_key_invalid",
        400,
        "an `Idempotency-Key` that is not 1 to 255 visible ASCII characters, or sent twice",
    ),
    ("unauthorized", 401, "no token, or a malformed, badly signed or expired one"),
    ("forbidden", 403, "the caller's role may see but not do this"),
    ("not_found", 404, "no such route"),
    ("movie_not_found", 404, "no such movie"),
    ("show_not_found", 404, "no such show"),
    ("request_not_found", 404, "no such request, or one the caller may not see"),
    ("booking_not_found", 404, "no such booking, or one the caller may not see"),
    ("ticket_not_found", 404, "no such ticket, or one the caller may not see"),
    ("queue_not_found", 404, "no such queue (a logical name like `booking-commands`, with or without `-dlq`)"),
    ("method_not_allowed", 405, "the route exists but not with this method"),
    (
        "idempotency_request_in_progress",
        409,
        "the first request with this key is still being admitted; retry after `Retry-After`",
    ),
    ("payload_too_large", 413, "the body is over 64 KiB"),
    ("request_timeout", 408, "the body was not received within the body timeout (30 s)"),
    ("idempotency_key_reused", 422, "this key was used for a different request (method, path or body)"),
    (
        "rate_limited",
        429,
        "the caller sent commands faster than its rate limit; nothing was stored, retry after `Retry-After`",
    ),
    ("backend_unavailable", 503, "the backend cannot be reached; retry after `Retry-After`"),
];

/// The schema of `Problem.code`: one of [`PROBLEM_CODES`].
pub struct ProblemCode;

impl utoipa::PartialSchema for ProblemCode {
    fn schema() -> RefOr<Schema> {
        let table: String =
            PROBLEM_CODES.iter().map(|(code, status, when)| format!("\n- `{code}` ({status}): {when}")).collect();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(format!("The stable machine code clients branch on:{table}")))
            .enum_values(Some(PROBLEM_CODES.iter().map(|(code, _, _)| *code)))
            .into()
    }
}

impl utoipa::ToSchema for ProblemCode {}

/// An RFC 9457 problem document (`application/problem+json`), with Usher's stable `code`
/// and, for input errors, the offending `field`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub(crate) struct Problem<'a> {
    /// `https://usher.dev/problems/<code>`.
    #[serde(rename = "type")]
    #[schema(format = "uri", example = "https://usher.dev/problems/invalid_body")]
    problem_type: String,
    #[schema(value_type = String, example = "Invalid body")]
    title: &'a str,
    /// The HTTP status code.
    #[schema(example = 400)]
    status: u16,
    /// What went wrong, for a person.
    #[schema(example = "seat_ids: must hold 1 to 10 seats")]
    detail: String,
    #[schema(value_type = ProblemCode)]
    code: &'a str,
    /// The offending field of the body or query, dotted (`auditorium.rows`, `seat_ids[2]`),
    /// or the path's parameter (`booking_id`); only on `invalid_body`, `invalid_query` and
    /// `invalid_path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false, example = "seat_ids")]
    field: Option<std::borrow::Cow<'a, str>>,
}

/// The longest `detail` a problem carries, in bytes. A detail may quote what the client
/// sent (a seat id, an unknown variant); a 60 KB value is not answered back whole.
const MAX_DETAIL: usize = 512;
/// The longest `field`, in bytes (an unknown field's name is the client's).
const MAX_FIELD: usize = 128;

/// `text` cut to at most `max` bytes at a character boundary, marked with `…` when cut.
fn clipped(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end]).into()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        if let ApiError::BackendUnavailable(e) = &self {
            tracing::warn!(error = %e, "backend unavailable");
        }
        let problem = Problem {
            problem_type: format!("{PROBLEM_TYPE_BASE}{code}"),
            title: self.title(),
            status: status.as_u16(),
            detail: clipped(&self.to_string(), MAX_DETAIL).into_owned(),
            code,
            field: self.field().map(|field| clipped(field, MAX_FIELD)),
        };
        // A struct of strings and a number always serializes.
        let body = serde_json::to_string(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        match self {
            ApiError::BackendUnavailable(_) | ApiError::IdempotencyRequestInProgress => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            ApiError::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            // The rest of the body may still be on its way: the connection cannot serve
            // another request after this one.
            ApiError::RequestTimeout => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    async fn render(e: ApiError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = e.into_response();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn problems_carry_type_title_status_detail_and_code() {
        let (status, headers, body) = render(ApiError::invalid_field("seat_ids", "too many")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(body["type"], "https://usher.dev/problems/invalid_body");
        assert_eq!(body["title"], "Invalid body");
        assert_eq!(body["status"], 400);
        assert_eq!(body["code"], "invalid_body");
        assert_eq!(body["field"], "seat_ids");
        assert_eq!(body["detail"], "seat_ids: too many");
    }

    #[tokio::test]
    async fn a_detail_quoting_a_huge_value_is_clipped() {
        let huge = format!("{}é", "A".repeat(60_000));
        let (status, _, body) =
            render(ApiError::invalid_field(huge.clone(), format!("{huge:?} is not a seat id"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.len() <= MAX_DETAIL + '…'.len_utf8() && detail.starts_with("AAAA") && detail.ends_with('…'));
        let field = body["field"].as_str().unwrap();
        assert!(field.len() <= MAX_FIELD + '…'.len_utf8() && field.ends_with('…'));
        assert_eq!(clipped("é", 1), "…", "never cut inside a character");
        assert_eq!(clipped("short", 512), "short");
    }

    #[tokio::test]
    async fn an_unavailable_backend_asks_for_a_retry() {
        let (status, headers, body) = render(PortError::Unavailable("disk gone".into()).into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], "1");
        assert_eq!(body["code"], "backend_unavailable");
        // The port's own message stays in the log, not in the answer.
        assert!(!body["detail"].as_str().unwrap().contains("disk gone"));
        assert!(body.get("field").is_none());
    }
}
