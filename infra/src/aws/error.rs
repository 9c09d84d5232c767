//! One mapping from SDK errors to [`PortError`] kinds, so every adapter tells the worker
//! the same thing: throttling and lost races are contention (retry), an endpoint that is
//! down or answers 5xx is unavailable (retry), anything else is an invalid call.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use domain::PortError;

/// Error codes that mean "too much at once, try again later", across SQS, SNS and DynamoDB.
const CONTENTION_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottled",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "TransactionConflictException",
    "TransactionInProgressException",
    "TooManyRequestsException",
    "KMSThrottlingException",
    "LimitExceededException",
];

/// Error codes of a backend that is (for now) not serving, whatever the HTTP status says.
const UNAVAILABLE_CODES: &[&str] =
    &["InternalServerError", "InternalFailure", "InternalError", "ServiceUnavailable", "ServiceUnavailableException"];

/// Credentials that are missing, expired or not allowed: the operator's to fix, and no
/// fault of the message being handled, so it is retried (and answered 503) meanwhile
/// rather than dead-lettered at once.
const ACCESS_CODES: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "MissingAuthenticationToken",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "AccessDenied",
    "AccessDeniedException",
    "AuthorizationError",
];

/// What a service's error answer means for the caller.
fn service_error(code: &str, status: u16, what: String) -> PortError {
    if CONTENTION_CODES.contains(&code) || status == 429 {
        PortError::Contention(what)
    } else if status >= 500 || UNAVAILABLE_CODES.contains(&code) || ACCESS_CODES.contains(&code) {
        PortError::Unavailable(what)
    } else {
        PortError::Invalid(what)
    }
}

/// Logs the SDK error with its whole source chain and maps it to a port error kind.
pub(crate) fn port_error<E>(op: &'static str, err: &SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().unwrap_or("");
    let what = match err.message() {
        Some(message) if !code.is_empty() => format!("{op}: {code}: {message}"),
        _ if !code.is_empty() => format!("{op}: {code}"),
        _ => format!("{op}: {}", short_kind(err)),
    };
    let error = match err {
        SdkError::ServiceError(service) => service_error(code, service.raw().status().as_u16(), what),
        // Timeouts, dispatch failures (connection refused, DNS, TLS), unparseable
        // responses (a proxy's HTML error page), and requests that could not be built
        // (most often: no credentials could be loaded) all mean the backend cannot be
        // used right now.
        _ => PortError::Unavailable(what),
    };
    match &error {
        PortError::Invalid(_) => tracing::error!(op, error = %source_chain(err), "aws call rejected"),
        _ => tracing::warn!(op, error = %source_chain(err), "aws call failed"),
    }
    error
}

/// An error and each of its sources, by their messages, joined by `: `. The SDK's own
/// `DisplayErrorContext` appends the whole error's `Debug` form too: a raw response with
/// every header, kilobytes on one log line.
fn source_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        // Wrappers often repeat their source's message; say it once.
        if !chain.ends_with(&message) {
            chain.push_str(": ");
            chain.push_str(&message);
        }
        source = cause.source();
    }
    chain
}

fn short_kind<E, R>(err: &SdkError<E, R>) -> &'static str {
    match err {
        SdkError::ConstructionFailure(_) => "the request could not be built",
        SdkError::TimeoutError(_) => "timed out",
        SdkError::DispatchFailure(_) => "the endpoint could not be reached",
        SdkError::ResponseError(_) => "the response could not be read",
        SdkError::ServiceError(_) => "the service refused the call",
        _ => "failed",
    }
}

/// A value the SDK insists on validating before it sends anything (a missing required
/// field): a bug in this adapter, reported instead of panicking.
pub(crate) fn build_error(what: &'static str, err: impl std::fmt::Display) -> PortError {
    tracing::error!(what, error = %err, "could not build an aws request");
    PortError::Invalid(format!("{what}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Layer(&'static str, #[source] Option<Box<Layer>>);

    #[test]
    fn a_logged_error_is_its_messages_not_its_debug_form() {
        let inner = Layer("connection refused", None);
        let outer = Layer("dispatch failure", Some(Box::new(Layer("io error", Some(Box::new(inner))))));
        assert_eq!(source_chain(&outer), "dispatch failure: io error: connection refused");
        let repeated = Layer("timed out", Some(Box::new(Layer("timed out", None))));
        assert_eq!(source_chain(&repeated), "timed out");
    }

    fn kind(code: &str, status: u16) -> &'static str {
        match service_error(code, status, String::new()) {
            PortError::Contention(_) => "contention",
            PortError::Unavailable(_) => "unavailable",
            PortError::Invalid(_) => "invalid",
            PortError::Corrupt(_) => "corrupt",
        }
    }

    #[test]
    fn service_errors_map_to_what_the_worker_should_do() {
        assert_eq!(kind("ThrottlingException", 400), "contention");
        assert_eq!(kind("ProvisionedThroughputExceededException", 400), "contention");
        assert_eq!(kind("TransactionConflictException", 400), "contention");
        assert_eq!(kind("RequestThrottled", 403), "contention");
        assert_eq!(kind("", 429), "contention");
        assert_eq!(kind("InternalServerError", 500), "unavailable");
        assert_eq!(kind("", 503), "unavailable");
        assert_eq!(kind("ExpiredTokenException", 400), "unavailable");
        assert_eq!(kind("ValidationException", 400), "invalid");
        assert_eq!(kind("QueueDoesNotExist", 400), "invalid");
    }
}
