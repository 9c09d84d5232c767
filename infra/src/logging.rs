//! Logs and traces as every Usher process writes them: JSON lines on stderr, filtered by
//! `USHER_LOG` (default `info`), with the fields of the spans they happen in (`trace_id`,
//! `request_id`, `message_id`, …); and OpenTelemetry spans, exported over OTLP/HTTP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the exporter reads the other standard `OTEL_*`
//! variables itself).
//!
//! Spans always get W3C trace ids, exported or not, so that a request's `traceparent`
//! rides in its command message and events (docs/contract.md §6) and log lines can be
//! joined by `trace_id` even without a collector.

use crate::config::ConfigError;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;
use tracing::Level;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::Registry;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter when `USHER_LOG` is unset.
const DEFAULT_FILTER: &str = "info";

/// The provider of the installed subscriber, kept to flush its spans at exit.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs the subscriber once; later calls (tests) keep the first. A `USHER_LOG` that
/// is not a filter stops start-up, naming it, like every other setting's bad value.
pub fn init() -> Result<(), ConfigError> {
    let filter = filter_from_env()?;
    let mut provider = SdkTracerProvider::builder().with_resource(resource());
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some_and(|v| !v.is_empty()) {
        match opentelemetry_otlp::SpanExporter::builder().with_http().build() {
            Ok(exporter) => provider = provider.with_batch_exporter(exporter),
            Err(e) => eprintln!("usher: spans are not exported: {e}"),
        }
    }
    install(filter, provider.build());
    Ok(())
}

/// Installs the subscriber with this provider (a test's in-memory exporter) and the
/// `info` filter; later calls keep the first.
pub fn init_with(provider: SdkTracerProvider) {
    install(EnvFilter::new(DEFAULT_FILTER), provider);
}

/// What `USHER_LOG` asks for: `info` when it is unset or blank.
fn filter_from_env() -> Result<EnvFilter, ConfigError> {
    filter_of(std::env::var("USHER_LOG").ok().as_deref())
}

fn filter_of(value: Option<&str>) -> Result<EnvFilter, ConfigError> {
    match value.map(str::trim) {
        None | Some("") => Ok(EnvFilter::new(DEFAULT_FILTER)),
        Some(directives) => EnvFilter::try_new(directives).map_err(|e| ConfigError {
            variable: "USHER_LOG",
            reason: format!("{directives:?} is not a log filter ({e}); e.g. info or info,usher=debug"),
        }),
    }
}

/// `USHER_LOG` filters log lines, not traces: the request and message spans (info) are
/// always made, so that a trace rides through the queues and events whatever the log
/// level, and a warning logged inside one still carries its `trace_id` and `request_id`.
/// The OpenTelemetry layer takes those spans and no log events.
fn install(filter: EnvFilter, provider: SdkTracerProvider) {
    let installed = tracing_subscriber::registry().with(layers(filter, &provider, std::io::stderr)).try_init();
    if installed.is_ok() {
        let _ = PROVIDER.set(provider);
    }
}

/// The log lines (JSON, filtered by `filter`, written to `writer`) and the spans.
fn layers<W>(filter: EnvFilter, provider: &SdkTracerProvider, writer: W) -> Vec<Box<dyn Layer<Registry> + Send + Sync>>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let spans = || filter_fn(|meta| meta.is_span() && *meta.level() <= Level::INFO);
    let lines = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(writer)
        .event_format(WithIds(tracing_subscriber::fmt::format().json().with_current_span(true)))
        .with_filter(filter.or(spans()));
    let traces = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("usher"))
        .with_tracked_inactivity(false)
        .with_filter(spans());
    vec![Box::new(lines), Box::new(traces)]
}

/// tracing-subscriber's JSON line, with the `trace_id` and `request_id` of the innermost
/// span that has them copied to the top level, ahead of the rest (they stay in `span` and
/// `spans` too): whoever reads the logs finds a request's lines by those two keys without
/// knowing which span recorded them.
struct WithIds<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithIds<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let ids = Ids::in_scope(ctx);
        let Some(rest) = line.strip_prefix('{').filter(|_| ids.trace_id.is_some() || ids.request_id.is_some()) else {
            return writer.write_str(&line);
        };
        writer.write_char('{')?;
        for (key, value) in [("trace_id", ids.trace_id), ("request_id", ids.request_id)] {
            if let Some(value) = value {
                write!(writer, "\"{key}\":{},", Value::String(value))?;
            }
        }
        writer.write_str(rest)
    }
}

/// The two ids a log line is looked up by, as its spans recorded them.
#[derive(Debug, Default, serde::Deserialize)]
struct Ids {
    trace_id: Option<String>,
    request_id: Option<String>,
}

impl Ids {
    /// Each id from the innermost span of the event's scope that has it. A span's fields
    /// are kept as a small JSON object (what the line's `span` and `spans` show), so only
    /// those are read, not the whole line.
    fn in_scope<S, N>(ctx: &FmtContext<'_, S, N>) -> Ids
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        let mut ids = Ids::default();
        for span in ctx.event_scope().into_iter().flatten() {
            if ids.trace_id.is_some() && ids.request_id.is_some() {
                break;
            }
            let extensions = span.extensions();
            let Some(fields) = extensions.get::<FormattedFields<N>>() else { continue };
            let Ok(found) = serde_json::from_str::<Ids>(&fields.fields) else { continue };
            ids.trace_id = ids.trace_id.or(found.trace_id);
            ids.request_id = ids.request_id.or(found.request_id);
        }
        ids
    }
}

/// Exports what is still buffered and stops the exporter; call once before the process
/// exits.
pub fn flush() {
    if let Some(provider) = PROVIDER.get() {
        if let Err(e) = provider.shutdown() {
            eprintln!("usher: spans may be lost: {e}");
        }
    }
}

fn resource() -> opentelemetry_sdk::Resource {
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES still win: the builder reads them.
    let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "usher".to_owned());
    opentelemetry_sdk::Resource::builder().with_service_name(name).build()
}

/// The W3C `traceparent` of `span`, when it belongs to a trace (no subscriber with the
/// OpenTelemetry layer installed: none).
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_ref = context.span();
    let sc = span_ref.span_context();
    sc.is_valid().then(|| format!("00-{}-{}-{:02x}", sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8()))
}

/// The `traceparent` of the current span (what a command or event it causes carries).
pub fn current_traceparent() -> Option<String> {
    traceparent(&tracing::Span::current())
}

/// Makes `span` continue the trace of `traceparent` (its remote parent) and records the
/// span's `trace_id` field, if it has one. Call before the span is first entered. A
/// missing or malformed `traceparent` leaves the span the root of a new trace.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(traceparent) = traceparent {
        let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
        let parent = TraceContextPropagator::new().extract(&carrier);
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }
    if let Some(trace_id) = trace_id(span) {
        span.record("trace_id", trace_id);
    }
}

/// The hex trace id of `span`, if it is traced.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_ref = context.span();
    let sc = span_ref.span_context();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_subscriber_nothing_is_traced_and_nothing_breaks() {
        let span = tracing::info_span!("x", trace_id = tracing::field::Empty);
        continue_trace(&span, Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        continue_trace(&span, Some("garbage"));
        assert_eq!(traceparent(&span), None);
    }

    /// What a test's subscriber wrote.
    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Lines {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_log_line_carries_its_spans_trace_and_request_ids_at_the_top() {
        let lines = Lines::default();
        let writer = lines.clone();
        let provider = SdkTracerProvider::builder().build();
        let subscriber =
            tracing_subscriber::registry().with(layers(EnvFilter::new("info"), &provider, move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside any span");
            let request = tracing::info_span!("request", trace_id = "4bf92f35", request_id = tracing::field::Empty);
            request.record("request_id", "req_1");
            let _request = request.enter();
            let message = tracing::info_span!("message", trace_id = "0af76519");
            let _message = message.enter();
            tracing::info!(detail = 1, "inside");
        });
        let text = lines.text();
        let parsed: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect(l)).collect();
        assert_eq!(parsed.len(), 2, "{text}");
        assert!(parsed[0].get("trace_id").is_none() && parsed[0]["fields"]["message"] == "outside any span");
        assert_eq!(parsed[1]["trace_id"], "0af76519", "the innermost span's");
        assert_eq!(parsed[1]["request_id"], "req_1", "from the span that has one");
        assert_eq!(parsed[1]["fields"]["detail"], 1);
        assert_eq!(parsed[1]["span"]["trace_id"], "0af76519", "still in the span's fields too");
        assert!(text.lines().nth(1).unwrap().starts_with(r#"{"trace_id":"0af76519","request_id":"req_1","#), "{text}");
    }

    #[test]
    fn usher_log_quiets_log_lines_but_never_the_traces() {
        let lines = Lines::default();
        let writer = lines.clone();
        let provider = SdkTracerProvider::builder().build();
        let subscriber =
            tracing_subscriber::registry().with(layers(EnvFilter::new("warn"), &provider, move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!("request", request_id = "req_1", trace_id = tracing::field::Empty);
            continue_trace(&request, Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
            let _request = request.enter();
            assert_eq!(
                current_traceparent().map(|t| t[3..35].to_owned()).as_deref(),
                Some("4bf92f3577b34da6a3ce929d0e0e4736"),
                "an info span is traced under USHER_LOG=warn"
            );
            tracing::info!("quieted");
            tracing::warn!("kept");
        });
        let text = lines.text();
        assert_eq!(text.lines().count(), 1, "{text}");
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["fields"]["message"], "kept");
        assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736", "{text}");
        assert_eq!(line["request_id"], "req_1");
    }

    #[test]
    fn usher_log_is_a_filter_or_an_error_naming_it() {
        for fine in [None, Some(""), Some("  "), Some("warn"), Some("info,usher=debug"), Some("usher::bench=trace")] {
            assert!(filter_of(fine).is_ok(), "{fine:?}");
        }
        for bad in ["usher=notalevel", "[[[", "info,=debug["] {
            let e = filter_of(Some(bad)).expect_err(bad);
            assert_eq!(e.variable, "USHER_LOG");
            assert!(e.to_string().starts_with("USHER_LOG: ") && !e.to_string().contains('\n'), "{e}");
        }
    }
}
