//! Logging and tracing set-up: `tracing` with JSON or human-readable output, filtered by
//! `SCIMGATE_LOG` (or `RUST_LOG`), default `info`; spans exported over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set; one root span per HTTP request ([`RequestSpan`]).

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::{Level, Span};
use tracing_actix_web::RootSpanBuilder;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

/// The service name on exported spans when `OTEL_SERVICE_NAME` is not set.
const DEFAULT_SERVICE_NAME: &str = "scimgate";

/// The tracer provider of this process, for flushing at shutdown.
static TRACER_PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Shuts the span exporter down (flushing what it holds) when dropped. Keep it alive for as long
/// as the process serves.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let Some(provider) = self.provider.take() else { return };
        // The gRPC exporter runs on the Tokio runtime: block this worker only in a way that
        // lets the runtime carry on meanwhile.
        let shutdown = move || {
            if let Err(e) = provider.shutdown() {
                eprintln!("warning: could not flush traces at exit: {e}");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(shutdown)
            }
            _ => shutdown(),
        }
    }
}

/// Install the process's subscriber: logs on stderr and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is
/// set, spans over OTLP (`OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf`, the default, or `grpc`).
/// A second call (tests) keeps the first subscriber.
pub fn init(format: LogFormat) -> TelemetryGuard {
    let filter = std::env::var("SCIMGATE_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    // Incoming `traceparent` headers become the parent of the request's span, and trace ids in
    // logs match the caller's, whether or not spans are exported.
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let (provider, exporter_error) = tracer_provider();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("scimgate"));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    // Logs go to stderr: stdout belongs to CLI output that scripts capture (the token line).
    let result = match format {
        // Each line carries the fields of the span it was logged in (the request's) once, as
        // `span`; no `spans` list repeating them.
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_ansi(false)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Pretty => registry.with(fmt::layer().with_ansi(colour()).with_writer(std::io::stderr)).try_init(),
    };
    if result.is_err() {
        return TelemetryGuard { provider: None };
    }
    if let Some(e) = exporter_error {
        tracing::error!(error = %e, "cannot export traces over OTLP; serving without");
    }
    let _ = TRACER_PROVIDER.set(provider.clone());
    TelemetryGuard { provider: Some(provider) }
}

/// Colour only on a terminal, and never when `NO_COLOR` is set (<https://no-color.org>): a log
/// file or collector gets plain text.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A provider that exports over OTLP when an endpoint is configured, else one that only gives
/// spans their ids. A bad OTLP configuration is reported, not fatal: traces are not worth an
/// outage.
fn tracer_provider() -> (SdkTracerProvider, Option<String>) {
    let mut resource = Resource::builder().with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if std::env::var_os("OTEL_SERVICE_NAME").is_none_or(|name| name.is_empty()) {
        resource = resource.with_service_name(DEFAULT_SERVICE_NAME);
    }
    let builder = SdkTracerProvider::builder().with_resource(resource.build());
    if !export_configured() {
        return (builder.build(), None);
    }
    match opentelemetry_otlp::SpanExporter::builder().build() {
        Ok(exporter) => (builder.with_batch_exporter(exporter).build(), None),
        Err(e) => (builder.build(), Some(e.to_string())),
    }
}

fn export_configured() -> bool {
    let set = |name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Export every finished span now (at shutdown). Waits at most the exporter's timeout
/// (`OTEL_EXPORTER_OTLP_TIMEOUT`, 10 s by default).
pub async fn flush_traces() {
    let Some(provider) = TRACER_PROVIDER.get().cloned() else { return };
    match tokio::task::spawn_blocking(move || provider.force_flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not flush traces"),
        Err(e) => tracing::warn!(error = %e, "could not flush traces"),
    }
}

/// The root span of each HTTP request: method, route template, the path with its query
/// redacted ([`redact_query`]), request id, trace id (W3C `traceparent` as parent), and `tenant`,
/// the `{org}` of the path. Nothing from the request's headers but the User-Agent is recorded,
/// so never a token. Health probes and `/metrics` get DEBUG spans, so they stay out of `info`
/// logs.
///
/// When the request is answered, exactly one event (`request completed`) logs it within the
/// span: INFO for every answer below 500 (401, 404, 409 and 429 are normal IdP traffic), ERROR
/// for 5xx with the error's cause chain. The status is the span's `http.status_code`; why a
/// request was refused (`error.reason`) is recorded on the span by the error mapping, never as a
/// line of its own.
pub struct RequestSpan;

/// Whether [`RequestSpan`] shows filter values in `http.target` (`SCIMGATE_LOG_FILTER_VALUES`): app
/// data of a server whose spans may show them; without it they are hidden.
#[derive(Debug, Clone, Copy)]
pub struct ShowFilterValues(pub bool);

/// When the request started, for the completion event.
struct Started(Instant);

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        use tracing_actix_web::root_span_macro::private as actix_tracing;

        let path = request.path();
        let probe = matches!(path, "/healthz" | "/readyz" | "/metrics");
        let tenant = tenant_in_path(path).unwrap_or_default().to_ascii_lowercase();
        let show_filter_values = request.app_data::<ShowFilterValues>().is_some_and(|show| show.0);
        let target = match request.query_string() {
            "" => path.to_owned(),
            query => format!("{path}?{}", redact_query(query, show_filter_values)),
        };
        let route = request.match_pattern().unwrap_or_else(|| "default".into());
        let method = actix_tracing::http_method_str(request.method());
        let user_agent = request.headers().get("User-Agent").and_then(|h| h.to_str().ok()).unwrap_or_default();
        let request_id = actix_tracing::get_request_id(request);
        let (scheme, host, client_ip) = {
            let info = request.connection_info();
            (info.scheme().to_owned(), info.host().to_owned(), info.realip_remote_addr().unwrap_or_default().to_owned())
        };
        request.extensions_mut().insert(Started(Instant::now()));
        // `tracing` needs the level of a span when its call site is compiled.
        macro_rules! request_span {
            ($level:expr) => {
                tracing::span!(
                    $level,
                    "HTTP request",
                    http.method = %method,
                    http.route = %route,
                    http.flavor = %actix_tracing::http_flavor(request.version()),
                    http.scheme = %scheme,
                    http.host = %host,
                    http.client_ip = %client_ip,
                    http.user_agent = %user_agent,
                    http.target = %target,
                    http.status_code = tracing::field::Empty,
                    otel.name = %format!("{method} {route}"),
                    otel.kind = "server",
                    otel.status_code = tracing::field::Empty,
                    trace_id = tracing::field::Empty,
                    request_id = %request_id,
                    tenant = %tenant,
                    error.reason = tracing::field::Empty,
                    exception.message = tracing::field::Empty,
                    exception.details = tracing::field::Empty,
                )
            };
        }
        let span = if probe { request_span!(Level::DEBUG) } else { request_span!(Level::INFO) };
        // Makes an incoming `traceparent` the parent and records `trace_id`.
        actix_tracing::set_otel_parent(request, &span);
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, error, started) = match outcome {
            Ok(response) => (
                response.status(),
                response.response().error().map(Error::as_response_error),
                response.request().extensions().get::<Started>().map(|s| s.0),
            ),
            Err(e) => (e.as_response_error().status_code(), Some(e.as_response_error()), None),
        };
        let latency_ms = started.map(|s| s.elapsed().as_secs_f64() * 1000.0);
        span.record("http.status_code", i64::from(status.as_u16()));
        span.record("otel.status_code", if status.is_server_error() { "ERROR" } else { "OK" });
        if let Some(error) = error.filter(|_| status.is_server_error()) {
            // Only server failures carry the error text: a client error's message may quote what
            // the client sent (a userName, a value), and its kind is already `error.reason`.
            span.record("exception.message", tracing::field::display(error));
            span.record("exception.details", tracing::field::debug(error));
        }
        let level = span.metadata().map(|m| *m.level());
        let _entered = span.enter();
        match level {
            Some(Level::DEBUG) => tracing::debug!(latency_ms, "request completed"),
            Some(_) if status.is_server_error() => tracing::error!(latency_ms, "request completed"),
            Some(_) => tracing::info!(latency_ms, "request completed"),
            None => {}
        }
    }
}

/// Record on the current request's span why it was refused or failed (a fixed text such as
/// `unknown token id`, or a SCIM `scimType`): the request's one log line then says it.
pub fn record_error_reason(reason: &str) {
    Span::current().record("error.reason", reason);
}

/// Query parameters whose values are logged as sent: paging, sorting and projection, which name
/// attributes, never a person or a secret.
const PLAIN_PARAMETERS: &[&str] =
    &["count", "startindex", "sortby", "sortorder", "attributes", "excludedattributes", "after", "limit"];

/// What stands in for a value that is not logged.
const REDACTED: &str = "[REDACTED]";

/// Longest filter that is parsed to be logged with its values hidden; a longer one is hidden
/// whole.
const MAX_LOGGED_FILTER: usize = 4096;

/// A query string as request logs show it. Paging, sorting and projection parameters keep their
/// values; `filter` keeps its structure with every string literal hidden (`userName eq "***"`),
/// unless `show_filter_values`, or is hidden whole when it does not parse; every other value
/// (`access_token`, `token`, anything unknown) is always `[REDACTED]`, and so is a name that
/// does not look like a parameter name.
pub fn redact_query(query: &str, show_filter_values: bool) -> String {
    let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(query) else {
        return REDACTED.to_owned();
    };
    let shown: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(name, value)| {
            let plain_name = name.len() <= 32 && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
            if !plain_name {
                return (REDACTED.to_owned(), REDACTED.to_owned());
            }
            let lower = name.to_ascii_lowercase();
            let value = if PLAIN_PARAMETERS.contains(&lower.as_str()) || value.is_empty() {
                value
            } else if lower == "filter" {
                redact_filter(&value, show_filter_values)
            } else {
                REDACTED.to_owned()
            };
            (name, value)
        })
        .collect();
    serde_urlencoded::to_string(shown).unwrap_or_else(|_| REDACTED.to_owned())
}

/// A filter with its values hidden, if it parses; else hidden whole. With `show_values`,
/// values are kept, except anything that looks like a token.
fn redact_filter(filter: &str, show_values: bool) -> String {
    if filter.len() > MAX_LOGGED_FILTER || proto::filter::parse(filter).is_err() {
        return REDACTED.to_owned();
    }
    let mut out = String::with_capacity(filter.len());
    let mut after_operator = false;
    let mut rest = filter;
    while let Some(c) = rest.chars().next() {
        if c == '"' {
            // The filter parsed, so this opens a string literal; escaped quotes are inside it.
            let end = string_literal_end(rest);
            let literal = &rest[..end];
            out.push_str(if show_values && !looks_like_token(literal) { literal } else { "\"***\"" });
            rest = &rest[end..];
            after_operator = false;
        } else if c.is_whitespace() || "()[]".contains(c) {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        } else {
            let end = rest.find(|c: char| c.is_whitespace() || "()[]\"".contains(c)).unwrap_or(rest.len());
            let word = &rest[..end];
            // A bare value (`active eq true`, or one the parser tolerates unquoted) follows an
            // operator; every other word is an attribute path or a keyword.
            let hidden = looks_like_token(word) || (after_operator && !show_values && !plain_literal(word));
            out.push_str(if hidden { "***" } else { word });
            after_operator = matches!(
                word.to_ascii_lowercase().as_str(),
                "eq" | "ne" | "co" | "sw" | "ew" | "gt" | "ge" | "lt" | "le"
            );
            rest = &rest[end..];
        }
    }
    out
}

/// The byte length of the string literal `text` starts with, closing quote included.
fn string_literal_end(text: &str) -> usize {
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return i + 1,
            _ => {}
        }
    }
    text.len()
}

/// `true`, `false`, `null` or a number: values that name no one.
fn plain_literal(word: &str) -> bool {
    matches!(word.to_ascii_lowercase().as_str(), "true" | "false" | "null") || word.parse::<f64>().is_ok()
}

/// Text with a scimgate token (tenant or operator) in it.
fn looks_like_token(text: &str) -> bool {
    [token::TOKEN_PREFIX, token::OPERATOR_TOKEN_PREFIX].iter().any(|prefix| text.contains(&format!("{prefix}_")))
}

/// The tenant a path names: `/scim/v2/{org}/...` and `/admin/v1/tenants/{org}/...`. Empty
/// segments are skipped, as the router merges repeated slashes.
fn tenant_in_path(path: &str) -> Option<&str> {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    match (segments.next(), segments.next(), segments.next()) {
        (Some("scim"), Some("v2"), org) => org,
        (Some("admin"), Some("v1"), Some("tenants")) => segments.next(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{redact_query, tenant_in_path};

    #[test]
    fn query_values_are_redacted_except_paging_sorting_and_projection() {
        let token = "scimgate_0123456789abcdef_c2VjcmV0_abcd";
        let shown = redact_query(&format!("access_token={token}&count=10&startIndex=2&TOKEN={token}"), false);
        assert_eq!(shown, "access_token=%5BREDACTED%5D&count=10&startIndex=2&TOKEN=%5BREDACTED%5D");
        assert!(!redact_query(&format!("x={token}"), true).contains(token));
        assert!(!redact_query(&format!("{token}=1"), true).contains(token), "a name that is a secret");
        assert_eq!(
            redact_query("attributes=userName,emails&sortOrder=descending", false),
            "attributes=userName%2Cemails&sortOrder=descending"
        );
    }

    #[test]
    fn filter_values_are_hidden_unless_asked_for_and_a_bad_filter_is_hidden_whole() {
        let filter = "filter=userName%20eq%20%22ann%40example.com%22%20and%20active%20eq%20true";
        assert_eq!(redact_query(filter, false), "filter=userName+eq+%22***%22+and+active+eq+true");
        assert_eq!(redact_query(filter, true), "filter=userName+eq+%22ann%40example.com%22+and+active+eq+true");
        let escaped = r#"filter=displayName eq "a \" b" or displayName co "c""#;
        assert_eq!(
            redact_query(&escaped.replace(' ', "%20"), false),
            "filter=displayName+eq+%22***%22+or+displayName+co+%22***%22"
        );
        assert_eq!(redact_query("filter=userName%20eq%20secret", false), "filter=userName+eq+***");
        assert_eq!(
            redact_query("filter=active%20eq%20true%20and%20x%20gt%202", false),
            "filter=active+eq+true+and+x+gt+2"
        );
        assert_eq!(redact_query("filter=userName%20eq", false), "filter=%5BREDACTED%5D", "does not parse");
        let token = "scimgate_0123456789abcdef_c2VjcmV0_abcd";
        for (filter, shown) in [
            (format!("userName eq \"{token}\""), r#"userName eq "***""#),
            (format!("userName eq {token}"), "userName eq ***"),
        ] {
            let query = serde_urlencoded::to_string([("filter", filter.as_str())]).unwrap();
            let expected = serde_urlencoded::to_string([("filter", shown)]).unwrap();
            assert_eq!(redact_query(&query, true), expected, "a token is never shown");
        }
    }

    #[test]
    fn the_tenant_is_the_org_segment_of_scim_and_admin_paths() {
        assert_eq!(tenant_in_path("/scim/v2/acme/Users/42"), Some("acme"));
        assert_eq!(tenant_in_path("/scim/v2//acme//Users"), Some("acme"));
        assert_eq!(tenant_in_path("/scim/v2"), None);
        assert_eq!(tenant_in_path("/admin/v1/tenants/acme/tokens"), Some("acme"));
        assert_eq!(tenant_in_path("/admin/v1/tenants"), None);
        assert_eq!(tenant_in_path("/healthz"), None);
    }
}
