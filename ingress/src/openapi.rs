//! The OpenAPI 3.1 document of the API, generated from the handlers' `#[utoipa::path]`
//! annotations and the types they take and return, as [`crate::routes::api`] registers
//! them (each route once, for the router and the document alike). `GET /openapi.json` serves it (no
//! token); `docs/openapi.json` is the same document checked in, and a test fails when they
//! drift (`USHER_BLESS=1 cargo test --workspace --lib openapi` rewrites it).

use crate::idempotency::{AcceptedBody, IDEMPOTENCY_KEY};
use crate::problem::{Problem, ProblemCode};
use crate::routes::seat_events::SeatChanges;
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::OnceLock;
use utoipa::openapi::path::ParameterBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToResponse};

/// The name of the security scheme every authenticated operation requires.
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Usher",
        description = "Usher's HTTP API (docs/contract.md §2 in the repository).\n\n\
            Reads answer straight from the store. Commands (`POST /v1/holds`, `/v1/holds/{hold_id}/release`, \
            `/v1/bookings`, `/v1/tickets`, `/v1/tickets/{ticket_id}/assignments`, `.../transitions`, \
            `.../comments`) are asynchronous and idempotent: each needs an `Idempotency-Key` header, is answered \
            `202` with `{request_id, status: \"accepted\", status_url}` and a `Location` header once it is durably \
            queued, and its outcome is read from the status document at `GET /v1/requests/{request_id}`. \
            Business failures (`seats_unavailable`, `show_not_found`, `seat_not_found`, `hold_not_found`, \
            `hold_expired`, `hold_limit_reached`, `payment_declined`, `ticket_not_found`, `not_an_agent`, \
            `invalid_transition`, `ticket_closed`, `dead_lettered`) appear there as `error.code`, never as an \
            HTTP error.\n\n\
            Every error is an RFC 9457 `application/problem+json` document with a stable `code` (see the `Problem` \
            and `ProblemCode` schemas). An unknown route is 404 (`not_found`), a known route with another \
            method 405 (`method_not_allowed`). A request whose body does not arrive within 30 s is answered 408 \
            (`request_timeout`) where an answer can still be sent.\n\n\
            Auth: `Authorization: Bearer <JWT>` (HS256, claims `sub`, `role` = `customer`|`agent`|`admin`, `exp`). \
            `/health/*`, `/metrics` and `/openapi.json` need no token. Customers read only their own requests, \
            bookings and tickets; a resource the caller may not see reads as absent (404)."
    ),
    servers((url = "http://127.0.0.1:8080", description = "`usher dev` on the default `USHER_HTTP_ADDR`")),
    components(
        // SeatChanges is the `data` of the seat map's events, which no JSON body refers to.
        schemas(Problem, ProblemCode, SeatChanges, crate::idempotency::AcceptedBody),
        responses(
            Accepted,
            InvalidPath,
            Unauthorized,
            Forbidden,
            PayloadTooLarge,
            IdempotencyRequestInProgress,
            IdempotencyKeyReused,
            RateLimited,
            BackendUnavailable
        )
    ),
    modifiers(&BearerJwt),
    tags(
        (name = "operations", description = "Health, metrics and this document; no token."),
        (name = "catalog", description = "Movies, shows and seat maps; admins create movies and shows."),
        (name = "commands", description = "Asynchronous, idempotent commands: 202, then poll the status document."),
        (name = "reads", description = "Status documents and bookings."),
        (name = "downstream", description = "What the notifications and analytics workers keep."),
        (name = "tickets", description = "Support tickets and their agents; the ticket commands are under `commands`."),
        (name = "admin", description = "Dead-letter queues (admins only): what `usher dlq` does, over HTTP."),
    )
)]
pub struct ApiDoc;

/// Adds the bearer JWT security scheme the operations refer to.
struct BearerJwt;

impl Modify for BearerJwt {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some("An HS256 JWT with claims `sub`, `role` (`customer`, `agent`, `admin`) and `exp`."))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(BEARER, SecurityScheme::Http(scheme));
    }
}

/// The document as served and checked in: pretty JSON and a trailing newline.
pub fn document_json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut document = crate::routes::api().into_openapi();
        key_examples_per_operation(&mut document);
        document.to_pretty_json().expect("the OpenAPI document always serializes") + "\n"
    })
}

/// Gives each command its own example `Idempotency-Key` (`<operationId>-5f0c7a52`). The
/// header is declared once for every command, and one example shared by all would tell a
/// client, or a fuzzer sending each operation's examples, to reuse one key on another
/// route: 422 `idempotency_key_reused`, as the contract wants.
fn key_examples_per_operation(document: &mut utoipa::openapi::OpenApi) {
    for item in document.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            let example = format!("{}-5f0c7a52", operation.operation_id.as_deref().unwrap_or("command"));
            for parameter in operation.parameters.iter_mut().flatten() {
                if parameter.name.eq_ignore_ascii_case(IDEMPOTENCY_KEY.as_str()) {
                    let builder = ParameterBuilder::from(parameter.clone());
                    *parameter = builder.example(Some(example.clone().into())).build();
                }
            }
        }
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", body = Object))
)]
pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document_json())
}

// The responses many operations share. These types only describe responses; the handlers
// answer with `ApiError` or `idempotency::admit`.

/// Accepted: durably recorded and queued (or, with `Idempotent-Replayed: true`, the first
/// answer to this key again, byte for byte). Poll `status_url` for the outcome.
#[derive(ToResponse)]
#[response(headers(
    ("Location" = String, description = "The status document, `/v1/requests/{request_id}`."),
    ("Idempotent-Replayed" = String, description = "`true` on a replay of an earlier answer; absent otherwise.")
))]
pub(crate) struct Accepted(#[allow(dead_code)] AcceptedBody<'static>);

/// `unauthorized`: no token, or a malformed, badly signed or expired one.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer`")))]
pub struct Unauthorized(#[allow(dead_code)] Problem<'static>);

/// `forbidden`: the caller's role may not do this.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Forbidden(#[allow(dead_code)] Problem<'static>);

/// `payload_too_large`: the body is over 64 KiB.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct PayloadTooLarge(#[allow(dead_code)] Problem<'static>);

/// `idempotency_request_in_progress`: a request with this key is still being admitted;
/// retry the same request after `Retry-After`.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))
)]
pub struct IdempotencyRequestInProgress(#[allow(dead_code)] Problem<'static>);

/// `idempotency_key_reused`: this key was used for a different request (method, path or
/// body, compared canonically). Nothing was admitted.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct IdempotencyKeyReused(#[allow(dead_code)] Problem<'static>);

/// What every command may answer besides its 202 and its own 400: the responses of the
/// idempotency contract, written once for the seven command routes.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(crate) enum CommandRejections {
    #[response(status = 401)]
    Unauthorized(#[ref_response] Unauthorized),
    #[response(status = 409)]
    InProgress(#[ref_response] IdempotencyRequestInProgress),
    #[response(status = 413)]
    TooLarge(#[ref_response] PayloadTooLarge),
    #[response(status = 422)]
    Reused(#[ref_response] IdempotencyKeyReused),
    #[response(status = 429)]
    Limited(#[ref_response] RateLimited),
    #[response(status = 503)]
    Unavailable(#[ref_response] BackendUnavailable),
}

/// `rate_limited`: the caller sent commands faster than `USHER_RATE_LIMIT` per second
/// (bursts of `USHER_RATE_BURST`); nothing was stored and the key is still free.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))
)]
pub struct RateLimited(#[allow(dead_code)] Problem<'static>);

/// What every read of one resource by id may answer besides its 200 and its own 404.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(crate) enum ReadRejections {
    #[response(status = 400)]
    BadId(#[ref_response] InvalidPath),
    #[response(status = 401)]
    Unauthorized(#[ref_response] Unauthorized),
    #[response(status = 503)]
    Unavailable(#[ref_response] BackendUnavailable),
}

/// `invalid_path`: an id in the path is not 1 to 255 visible ASCII characters.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct InvalidPath(#[allow(dead_code)] Problem<'static>);

/// `backend_unavailable`: the backend cannot be reached; retry after `Retry-After`.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))
)]
pub struct BackendUnavailable(#[allow(dead_code)] Problem<'static>);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::{ApiError, PROBLEM_CODES};
    use serde_json::Value;
    use std::path::PathBuf;

    fn checked_in() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
    }

    fn document() -> Value {
        serde_json::from_str(document_json()).unwrap()
    }

    /// Every operation as `(METHOD, path, operation)`.
    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut ops = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                ops.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
        ops
    }

    /// The description of a response, following a `$ref` to a reusable one.
    fn response_description<'a>(doc: &'a Value, response: &'a Value) -> &'a str {
        let response = match response["$ref"].as_str() {
            Some(r) => &doc["components"]["responses"][r.trim_start_matches("#/components/responses/")],
            None => response,
        };
        response["description"].as_str().unwrap_or_default()
    }

    #[test]
    fn openapi_matches_the_checked_in_document() {
        let path = checked_in();
        if std::env::var_os("USHER_BLESS").is_some() {
            std::fs::write(&path, document_json()).unwrap();
            return;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == document_json(),
            "{} drifted from the code; run USHER_BLESS=1 cargo test --workspace --lib openapi",
            path.display()
        );
    }

    #[test]
    fn every_error_the_api_gives_has_a_listed_code() {
        let errors = [
            ApiError::Unauthorized(String::new()),
            ApiError::Forbidden("admin"),
            ApiError::RouteNotFound(String::new()),
            ApiError::MethodNotAllowed { method: String::new(), path: String::new() },
            ApiError::IdempotencyKeyMissing,
            ApiError::IdempotencyKeyInvalid,
            ApiError::InvalidBody { field: None, detail: String::new() },
            ApiError::InvalidQuery { field: None, detail: String::new() },
            ApiError::InvalidPath { field: None, detail: String::new() },
            ApiError::PayloadTooLarge { limit: 0 },
            ApiError::IdempotencyKeyReused,
            ApiError::IdempotencyRequestInProgress,
            ApiError::BackendUnavailable(domain::PortError::Unavailable(String::new())),
        ];
        for e in errors {
            let listed = PROBLEM_CODES.iter().find(|(code, _, _)| *code == e.code());
            assert_eq!(listed.map(|(_, status, _)| *status), Some(e.status().as_u16()), "{}", e.code());
        }
        // `<resource>_not_found` codes are named where they are raised: find each one.
        let mut sources = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")];
        while let Some(path) = sources.pop() {
            if path.is_dir() {
                sources.extend(std::fs::read_dir(&path).unwrap().map(|entry| entry.unwrap().path()));
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for raised in text.split("not_found(\"").skip(1) {
                let code = raised.split('"').next().unwrap();
                assert!(
                    PROBLEM_CODES.iter().any(|(listed, status, _)| *listed == code && *status == 404),
                    "{} raises `{code}`: add it to problem::PROBLEM_CODES",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn every_problem_code_is_listed_and_explained_in_a_response() {
        let doc = document();
        let listed: Vec<&str> = PROBLEM_CODES.iter().map(|(code, _, _)| *code).collect();
        assert_eq!(doc["components"]["schemas"]["ProblemCode"]["enum"], serde_json::json!(listed));
        let mut explained = doc["info"]["description"].as_str().unwrap().to_owned();
        for (_, _, op) in operations(&doc) {
            for response in op["responses"].as_object().unwrap().values() {
                explained.push_str(response_description(&doc, response));
            }
        }
        for code in listed {
            assert!(explained.contains(&format!("`{code}`")), "no response explains `{code}`");
        }
    }

    /// The name of a response that refers to `#/components/responses/<name>`.
    fn reusable_name(response: &Value) -> &str {
        response["$ref"].as_str().unwrap_or_default().trim_start_matches("#/components/responses/")
    }

    #[test]
    fn commands_document_the_idempotency_contract() {
        let doc = document();
        let commands: Vec<_> = operations(&doc).into_iter().filter(|(_, _, op)| op["tags"][0] == "commands").collect();
        assert_eq!(commands.len(), 7, "three booking and four ticket commands");
        let mut examples = std::collections::BTreeSet::new();
        for (method, path, op) in commands {
            assert_eq!(method, "POST", "{path}");
            let key = op["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "Idempotency-Key");
            let key = key.unwrap_or_else(|| panic!("{path} has no Idempotency-Key"));
            assert_eq!((&key["in"], &key["required"]), (&Value::from("header"), &Value::from(true)), "{path}");
            assert_eq!((&key["schema"]["minLength"], &key["schema"]["maxLength"]), (&1.into(), &255.into()));
            // One example key per command: a key shared by two routes is 422 on the second.
            assert!(examples.insert(key["example"].as_str().unwrap().to_owned()), "{path} shares its example key");
            let responses = &op["responses"];
            let accepted = &doc["components"]["responses"][reusable_name(&responses["202"])];
            assert_eq!(accepted["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Accepted");
            for header in ["Location", "Idempotent-Replayed"] {
                assert!(accepted["headers"][header].is_object(), "{path}: 202 lacks {header}");
            }
            for status in ["400", "401", "409", "413", "422", "429", "503"] {
                assert!(responses[status].is_object(), "{path}: no {status}");
            }
            for (status, code) in
                [("409", "idempotency_request_in_progress"), ("429", "rate_limited"), ("503", "backend_unavailable")]
            {
                let response = &doc["components"]["responses"][reusable_name(&responses[status])];
                assert!(response["headers"]["Retry-After"].is_object(), "{path}: {status} lacks Retry-After");
                assert!(response_description(&doc, &responses[status]).contains(code));
            }
            let bad = response_description(&doc, &responses["400"]);
            assert!(bad.contains("idempotency_key_missing") && bad.contains("idempotency_key_invalid"), "{path}");
        }
    }

    #[test]
    fn only_health_metrics_and_this_document_go_without_a_token() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["title"], "Usher");
        assert_eq!(doc["servers"][0]["url"], "http://127.0.0.1:8080");
        assert_eq!(doc["components"]["securitySchemes"][BEARER]["scheme"], "bearer");
        assert_eq!(doc["components"]["securitySchemes"][BEARER]["bearerFormat"], "JWT");
        for (method, path, op) in operations(&doc) {
            let open = path.starts_with("/health/") || path == "/metrics" || path == "/openapi.json";
            if open {
                assert!(op.get("security").is_none(), "{method} {path} asks for a token");
            } else {
                assert_eq!(op["security"], serde_json::json!([{ BEARER: [] }]), "{method} {path}");
                let unauthorized = response_description(&doc, &op["responses"]["401"]);
                assert!(unauthorized.contains("`unauthorized`"), "{method} {path} documents no 401");
            }
        }
    }
}
