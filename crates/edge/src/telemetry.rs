//! Logging and tracing set-up: `tracing` with JSON or human-readable output, filtered by
//! `SCIMGATE_LOG` (or `RUST_LOG`), default `info`; spans exported over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set; one root span per HTTP request ([`RequestSpan`]).

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
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};
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
        LogFormat::Json => registry.with(fmt::layer().json().with_writer(std::io::stderr)).try_init(),
        LogFormat::Pretty => registry.with(fmt::layer().with_writer(std::io::stderr)).try_init(),
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

/// The root span of each HTTP request: tracing-actix-web's (method, route template, status,
/// request id, trace id, W3C `traceparent` as parent) plus `tenant`, the `{org}` of the path.
/// Nothing from the request's headers but the User-Agent is recorded, so never a token. Health
/// probes and `/metrics` get DEBUG spans, so they stay out of `info` logs.
///
/// When the request is answered, one event (`request completed`) logs its status and latency
/// within the span.
pub struct RequestSpan;

/// When the request started, for the completion event.
struct Started(Instant);

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let path = request.path();
        let level = if matches!(path, "/healthz" | "/readyz" | "/metrics") { Level::DEBUG } else { Level::INFO };
        let tenant = tenant_in_path(path).unwrap_or_default().to_owned();
        request.extensions_mut().insert(Started(Instant::now()));
        tracing_actix_web::root_span!(level = level, request, tenant = %tenant)
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span.clone(), outcome);
        let (status, latency_ms) = match outcome {
            Ok(response) => {
                let started = response.request().extensions().get::<Started>().map(|s| s.0);
                (response.status().as_u16(), started.map(|s| s.elapsed().as_secs_f64() * 1000.0))
            }
            Err(e) => (e.as_response_error().status_code().as_u16(), None),
        };
        let level = span.metadata().map(|m| *m.level());
        let _entered = span.enter();
        match level {
            Some(Level::DEBUG) => tracing::debug!(status, latency_ms, "request completed"),
            Some(_) => tracing::info!(status, latency_ms, "request completed"),
            None => {}
        }
    }
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
    use super::tenant_in_path;

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
