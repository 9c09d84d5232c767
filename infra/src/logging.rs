//! Logs and traces as every Usher process writes them: JSON lines on stderr, filtered by
//! `USHER_LOG` (default `info`), with the fields of the spans they happen in (`trace_id`,
//! `request_id`, `message_id`, …); and OpenTelemetry spans, exported over OTLP/HTTP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the exporter reads the other standard `OTEL_*`
//! variables itself).
//!
//! Spans always get W3C trace ids, exported or not, so that a request's `traceparent`
//! rides in its command message and events (docs/contract.md §6) and log lines can be
//! joined by `trace_id` even without a collector. Without an exporter a span gets its ids
//! and nothing else ([`TraceIds`]): the OpenTelemetry SDK's spans are made only to be
//! exported.

use crate::config::ConfigError;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracerProvider};
use serde_json::Value;
use std::fmt;
use std::sync::OnceLock;
use tracing::Level;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::Registry;
use tracing_subscriber::field::RecordFields;
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
    install(filter, exporting_provider()?);
    Ok(())
}

/// Installs the subscriber with this provider (a test's in-memory exporter) and the
/// `info` filter; later calls keep the first.
pub fn init_with(provider: SdkTracerProvider) {
    install(EnvFilter::new(DEFAULT_FILTER), Some(provider));
}

/// The subscriber [`init`] installs when no exporter is configured, with `filter` (as
/// `USHER_LOG` would be), and the log lines it writes, kept in memory: for tests that read
/// what a process logs.
pub fn captured(filter: &str) -> (impl tracing::Subscriber + Send + Sync, Captured) {
    let lines = Captured::default();
    (tracing_subscriber::registry().with(layers(EnvFilter::new(filter), None, lines.clone())), lines)
}

/// Log lines kept in memory (see [`captured`]).
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut bytes) = self.0.lock() {
            bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for Captured {
    type Writer = Captured;

    fn make_writer(&'w self) -> Captured {
        self.clone()
    }
}

/// The provider that exports spans over OTLP, when `OTEL_EXPORTER_OTLP_ENDPOINT` asks for
/// it; none (spans get ids only) when it is unset. An endpoint the exporter cannot use
/// (not a URL) stops start-up, naming the variable, like every other setting's bad value:
/// an operator who asked for traces is not left to find none.
fn exporting_provider() -> Result<Option<SdkTracerProvider>, ConfigError> {
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none_or(|v| v.is_empty()) {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().build().map_err(|e| ConfigError {
        variable: "OTEL_EXPORTER_OTLP_ENDPOINT",
        reason: format!("spans cannot be exported: {e}"),
    })?;
    Ok(Some(SdkTracerProvider::builder().with_resource(resource()).with_batch_exporter(exporter).build()))
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
/// The trace layer takes those spans and no log events.
fn install(filter: EnvFilter, provider: Option<SdkTracerProvider>) {
    let installed = tracing_subscriber::registry().with(layers(filter, provider.as_ref(), std::io::stderr)).try_init();
    if let (Ok(()), Some(provider)) = (installed, provider) {
        let _ = PROVIDER.set(provider);
    }
}

/// The log lines (JSON, filtered by `filter`, written to `writer`) and the spans: the
/// OpenTelemetry layer when `provider` exports them, their ids alone when nothing does.
fn layers<W>(
    filter: EnvFilter,
    provider: Option<&SdkTracerProvider>,
    writer: W,
) -> Vec<Box<dyn Layer<Registry> + Send + Sync>>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let spans = || filter_fn(|meta| meta.is_span() && *meta.level() <= Level::INFO);
    let lines = tracing_subscriber::fmt::layer()
        .json()
        .fmt_fields(SpanFields)
        .with_writer(writer)
        .event_format(WithIds(tracing_subscriber::fmt::format().json().with_current_span(true)))
        .with_filter(filter.or(spans()));
    let Some(provider) = provider else {
        return vec![Box::new(lines), Box::new(TraceIds.with_filter(spans()))];
    };
    // Nothing here reads OpenTelemetry's own current context (a span's is reached through
    // tracing's), so entering a span need not attach one; and a task's spans move between
    // threads, so the thread they started on says nothing.
    let traces = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("usher"))
        .with_tracked_inactivity(false)
        .with_context_activation(false)
        .with_threads(false)
        .with_filter(spans());
    vec![Box::new(lines), Box::new(traces)]
}

/// Gives each span its place in a trace, and nothing more: a span id, and the trace id and
/// flags of its parent span, or of a new trace (sampled, as the SDK's default sampler has
/// it) when it has none; [`continue_trace`] moves it into its caller's trace. This is what
/// a process that exports nothing needs: the `traceparent` its messages and events carry
/// and the `trace_id` its log lines do. The OpenTelemetry layer would also build an SDK
/// span for each (its attributes, its start and end times, ended on close) only to drop it.
struct TraceIds;

/// A span's ids, as [`TraceIds`] gave them, in the span's extensions.
struct Place(SpanContext);

impl<S> Layer<S> for TraceIds
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        _: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        let parent = span.parent().and_then(|p| p.extensions().get::<Place>().map(|place| place.0.clone()));
        let ids = RandomIdGenerator::default();
        let place = match parent {
            Some(parent) => in_trace_of(&parent, ids.new_span_id()),
            None => SpanContext::new(
                ids.new_trace_id(),
                ids.new_span_id(),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
        };
        span.extensions_mut().insert(Place(place));
    }
}

/// Span `span_id` in the trace of `parent`, with its flags and state.
fn in_trace_of(parent: &SpanContext, span_id: SpanId) -> SpanContext {
    SpanContext::new(parent.trace_id(), span_id, parent.trace_flags(), false, parent.trace_state().clone())
}

/// What `f` makes of `span`'s [`Place`], when [`TraceIds`] gave it one.
fn with_place<T>(span: &tracing::Span, f: impl FnOnce(&mut Place) -> T) -> Option<T> {
    span.with_subscriber(|(id, dispatch)| {
        let span = dispatch.downcast_ref::<Registry>()?.span(id)?;
        let mut extensions = span.extensions_mut();
        extensions.get_mut::<Place>().map(f)
    })
    .flatten()
}

/// A span's fields as the JSON object the log lines show in `span` and `spans`, as
/// tracing-subscriber's `JsonFields` writes them, but cheaper: they are written straight
/// to the string, and a field recorded later (a span's `trace_id`, a request's
/// `request_id`) is appended to it. `JsonFields` parses the whole object and writes it
/// again for that, on every span whatever the log level.
struct SpanFields;

impl<'w> FormatFields<'w> for SpanFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut object = JsonObject::default();
        fields.record(&mut object);
        writer.write_str(&object.finish())
    }

    fn add_fields(&self, current: &'w mut FormattedFields<Self>, fields: &tracing::span::Record<'_>) -> fmt::Result {
        let mut added = JsonObject::default();
        fields.record(&mut added);
        if added.is_empty() {
            return Ok(());
        }
        let object = &mut current.fields;
        if object.is_empty() || object == "{}" {
            *object = added.finish();
        } else if added.keys.iter().any(|key| object.contains(&format!("\"{key}\":"))) {
            // A field set again: its new value replaces the old, in one object.
            let mut merged: serde_json::Map<String, Value> = serde_json::from_str(object).map_err(|_| fmt::Error)?;
            let added: serde_json::Map<String, Value> =
                serde_json::from_str(&added.finish()).map_err(|_| fmt::Error)?;
            merged.extend(added);
            *object = Value::Object(merged).to_string();
        } else {
            object.pop(); // its closing brace
            object.push(',');
            object.push_str(&added.finish()[1..]);
        }
        Ok(())
    }
}

/// The fields one visit records, written as a JSON object as they come.
struct JsonObject {
    body: Vec<u8>,
    keys: Vec<&'static str>,
}

impl Default for JsonObject {
    /// Room for a request's or a message's span fields (150-250 bytes) from the start:
    /// grown from empty, the body was reallocated four or five times for each span.
    fn default() -> Self {
        Self { body: Vec::with_capacity(256), keys: Vec::with_capacity(8) }
    }
}

impl JsonObject {
    fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn push(&mut self, field: &tracing::field::Field, value: impl serde::Serialize) {
        // As `JsonFields` names them: a raw identifier without its `r#`, no `log.` fields.
        let name = field.name();
        if name.starts_with("log.") {
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.body.push(if self.keys.is_empty() { b'{' } else { b',' });
        // Writing JSON to a Vec cannot fail, and every value here serializes.
        let _ = serde_json::to_writer(&mut self.body, name);
        self.body.push(b':');
        let _ = serde_json::to_writer(&mut self.body, &value);
        self.keys.push(name);
    }

    fn finish(mut self) -> String {
        if self.keys.is_empty() {
            self.body.push(b'{');
        }
        self.body.push(b'}');
        String::from_utf8(self.body).unwrap_or_default()
    }
}

impl tracing::field::Visit for JsonObject {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.push(field, value);
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.push(field, value);
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.push(field, value);
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.push(field, value);
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.push(field, value);
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.push(field, format!("{value:?}"));
    }
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
    let sc = span_context(span)?;
    Some(format!("00-{}-{}-{:02x}", sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8()))
}

/// `span`'s place in its trace, if it is traced (by [`TraceIds`] or the OpenTelemetry
/// layer, whichever is installed).
fn span_context(span: &tracing::Span) -> Option<SpanContext> {
    let sc = with_place(span, |place| place.0.clone()).unwrap_or_else(|| span.context().span().span_context().clone());
    sc.is_valid().then_some(sc)
}

/// The `traceparent` of the current span (what a command or event it causes carries).
pub fn current_traceparent() -> Option<String> {
    traceparent(&tracing::Span::current())
}

/// Where a request or message sits in its caller's trace: the W3C `traceparent` it came
/// with, parsed before its span is made, so that the span is made with its `trace_id`.
pub struct TraceParent(opentelemetry::Context);

impl TraceParent {
    /// The caller's trace; `None` when `traceparent` is missing or malformed, and the span
    /// starts a trace of its own.
    pub fn parse(traceparent: Option<&str>) -> Option<TraceParent> {
        let carrier = OneHeader(traceparent?);
        let context = TraceContextPropagator::new().extract_with_context(&opentelemetry::Context::new(), &carrier);
        context.span().span_context().is_valid().then_some(TraceParent(context))
    }

    /// Its trace id (hex), for the span's `trace_id` field.
    pub fn trace_id(&self) -> tracing::field::DisplayValue<TraceId> {
        tracing::field::display(self.0.span().span_context().trace_id())
    }
}

/// A carrier of the `traceparent` header alone.
struct OneHeader<'a>(&'a str);

impl Extractor for OneHeader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "traceparent").then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

/// Makes `span` continue its caller's trace (`parent`, its remote parent; made with
/// `trace_id = parent.trace_id()`), or, without one, records the `trace_id` of the trace it
/// starts. Call before the span is first entered.
pub fn continue_trace(span: &tracing::Span, parent: Option<TraceParent>) {
    match parent {
        Some(TraceParent(context)) => {
            let parent = context.span().span_context().clone();
            with_place(span, |place| place.0 = in_trace_of(&parent, place.0.span_id()));
            let _ = span.set_parent(context);
        }
        None => {
            if let Some(trace_id) = trace_id(span) {
                span.record("trace_id", trace_id);
            }
        }
    }
}

/// The hex trace id of `span`, if it is traced.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    span_context(span).map(|sc| sc.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_subscriber_nothing_is_traced_and_nothing_breaks() {
        let span = tracing::info_span!("x", trace_id = tracing::field::Empty);
        continue_trace(&span, TraceParent::parse(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")));
        continue_trace(&span, TraceParent::parse(Some("garbage")));
        assert_eq!(traceparent(&span), None);
    }

    #[test]
    fn a_traceparent_is_parsed_or_refused() {
        let parent = TraceParent::parse(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")).unwrap();
        assert_eq!(parent.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        for bad in [None, Some(""), Some("garbage"), Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01")] {
            assert!(TraceParent::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_span_without_a_parent_records_the_trace_it_starts() {
        for exported in [false, true] {
            let text = logged_in(exported, "info", || {
                let span = tracing::info_span!("request", trace_id = tracing::field::Empty);
                continue_trace(&span, TraceParent::parse(Some("garbage")));
                let _span = span.enter();
                let traceparent = current_traceparent().unwrap();
                tracing::info!(traceparent, "inside");
            });
            let line: Value = serde_json::from_str(text.trim()).unwrap();
            let traceparent = line["fields"]["traceparent"].as_str().unwrap();
            assert_eq!(line["trace_id"].as_str(), Some(&traceparent[3..35]), "{line}");
            assert!(traceparent.ends_with("-01"), "a new trace is sampled: {traceparent}");
        }
    }

    #[test]
    fn a_span_continues_its_parent_span_or_its_callers_trace() {
        const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        for exported in [false, true] {
            logged_in(exported, "info", || {
                let parts = |t: String| t.split('-').map(str::to_owned).collect::<Vec<_>>();
                let root = tracing::info_span!("request");
                continue_trace(&root, None);
                let other = tracing::info_span!("request");
                continue_trace(&other, None);
                let (root_ids, other_ids) = (parts(traceparent(&root).unwrap()), parts(traceparent(&other).unwrap()));
                assert_ne!(root_ids[1], other_ids[1], "each root starts a trace of its own");
                let child = root.in_scope(|| tracing::info_span!("child"));
                let child_ids = parts(traceparent(&child).unwrap());
                assert_eq!(child_ids[1], root_ids[1], "a child is in its parent's trace");
                assert_ne!(child_ids[2], root_ids[2], "with a span id of its own");

                let called = tracing::info_span!("message");
                continue_trace(&called, TraceParent::parse(Some(CALLER)));
                let called_ids = parts(traceparent(&called).unwrap());
                assert_eq!(called_ids[1], "4bf92f3577b34da6a3ce929d0e0e4736", "the caller's trace ({exported})");
                assert_ne!(called_ids[2], "00f067aa0ba902b7", "not the caller's span");
                assert_eq!(called_ids[3], "00", "nor sampled when the caller's was not");
                let grandchild = called.in_scope(|| tracing::info_span!("child"));
                assert_eq!(parts(traceparent(&grandchild).unwrap())[1], called_ids[1]);
                assert_eq!(current_traceparent(), None, "no span is current here");
            });
        }
    }

    /// The log lines written while `f` ran under the real layers, with `filter`, and
    /// spans given ids alone (as [`init`] does without an exporter).
    fn logged(filter: &str, f: impl FnOnce()) -> String {
        logged_in(false, filter, f)
    }

    /// [`logged`], or with the OpenTelemetry layer and a provider if `exported`.
    fn logged_in(exported: bool, filter: &str, f: impl FnOnce()) -> String {
        let lines = Captured::default();
        let provider = exported.then(|| SdkTracerProvider::builder().build());
        let subscriber =
            tracing_subscriber::registry().with(layers(EnvFilter::new(filter), provider.as_ref(), lines.clone()));
        tracing::subscriber::with_default(subscriber, f);
        lines.text()
    }

    #[test]
    fn a_log_line_carries_its_spans_trace_and_request_ids_at_the_top() {
        let text = logged("info", || {
            tracing::info!("outside any span");
            let request = tracing::info_span!("request", trace_id = "4bf92f35", request_id = tracing::field::Empty);
            request.record("request_id", "req_1");
            let _request = request.enter();
            let message = tracing::info_span!("message", trace_id = "0af76519");
            let _message = message.enter();
            tracing::info!(detail = 1, "inside");
        });
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
    fn span_fields_recorded_later_join_the_same_json_object() {
        let text = logged("info", || {
            let span = tracing::info_span!(
                "request",
                path = %"/v1/\"quoted\"",
                r#type = "hold",
                count = 3u64,
                ok = true,
                empty = tracing::field::Empty,
                later = tracing::field::Empty,
            );
            span.record("later", "first");
            span.record("empty", -1i64);
            span.record("later", "second");
            let _span = span.enter();
            tracing::info!("inside");
            let blank = tracing::info_span!("blank", later = tracing::field::Empty);
            blank.record("later", 1.5);
            let _blank = blank.enter();
            tracing::info!("inside the blank one");
        });
        let parsed: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect(l)).collect();
        assert_eq!(
            parsed[0]["span"],
            serde_json::json!({
                "name": "request", "path": "/v1/\"quoted\"", "type": "hold", "count": 3, "ok": true,
                "empty": -1, "later": "second",
            }),
            "{text}"
        );
        assert_eq!(parsed[1]["span"], serde_json::json!({"name": "blank", "later": 1.5}), "{text}");
        assert_eq!(parsed[1]["spans"][0]["later"], "second", "{text}");
    }

    #[test]
    fn usher_log_quiets_log_lines_but_never_the_traces() {
        for exported in [false, true] {
            let text = logged_in(exported, "warn", || {
                let parent = TraceParent::parse(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
                let request = tracing::info_span!(
                    "request",
                    request_id = "req_1",
                    trace_id = parent.as_ref().map(TraceParent::trace_id)
                );
                continue_trace(&request, parent);
                let _request = request.enter();
                assert_eq!(
                    current_traceparent().map(|t| t[3..35].to_owned()).as_deref(),
                    Some("4bf92f3577b34da6a3ce929d0e0e4736"),
                    "an info span is traced under USHER_LOG=warn"
                );
                tracing::info!("quieted");
                tracing::warn!("kept");
            });
            assert_eq!(text.lines().count(), 1, "{text}");
            let line: Value = serde_json::from_str(text.trim()).unwrap();
            assert_eq!(line["fields"]["message"], "kept");
            assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736", "{text}");
            assert_eq!(line["request_id"], "req_1");
        }
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
