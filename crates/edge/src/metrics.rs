//! Prometheus metrics, served on a listener of their own (`SCIMGATE_METRICS_LISTEN`) so they
//! never leak through the public port. docs/observability.md lists every metric.
//!
//! Recording goes through the `metrics` facade to one recorder per process, installed the first
//! time a gateway with metrics on is built; each [`crate::Application`] renders from a handle to
//! it. With metrics off no recorder is installed and every recording call is a no-op.
//!
//! Label values are bounded: tenants only once authenticated (a client cannot mint new series by
//! calling made-up tenant URLs) and at most `SCIMGATE_METRICS_MAX_TENANTS` of them per process,
//! routes as their templates, methods and refusal reasons from fixed sets. Histograms carry no
//! tenant: their buckets multiply every label, so per-tenant latency would be millions of series
//! at thousands of tenants. Per tenant there are counters only, a handful of series each.

use std::collections::HashSet;
use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, App, HttpMessage, HttpRequest, HttpResponse, HttpServer};
use domain::sql::StoreGauges;
use domain::{now_micros, SqlStore, TenantName};
use limit::LimitBackend;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Label, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};
use token::{CacheLookup, TokenKind};
use tracing_actix_web::TracingLogger;

use crate::refusal::Refusal;
use crate::shutdown::Background;
use crate::state::AppState;
use crate::telemetry::RequestSpan;

pub const HTTP_REQUESTS: &str = "scimgate_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "scimgate_http_request_duration_seconds";
pub const TENANT_REQUESTS: &str = "scimgate_tenant_requests_total";
pub const RATE_LIMITED: &str = "scimgate_rate_limited_total";
pub const AUTH_FAILURES: &str = "scimgate_auth_failures_total";
pub const TOKEN_CACHE: &str = "scimgate_token_cache_lookups_total";
pub const DB_POOL_CONNECTIONS: &str = "scimgate_db_pool_connections";
pub const DB_POOL_MAX_CONNECTIONS: &str = "scimgate_db_pool_max_connections";
pub const REDIS_FALLBACK: &str = "scimgate_rate_limit_redis_fallback";
pub const WEBHOOK_DELIVERIES: &str = "scimgate_webhook_deliveries_total";
pub const WEBHOOK_LAG: &str = "scimgate_webhook_lag_seconds";
pub const WEBHOOK_DEAD_LETTERS: &str = "scimgate_webhook_dead_letters";
pub const OLDEST_UNDELIVERED_EVENT: &str = "scimgate_webhook_oldest_undelivered_event_age_seconds";
pub const TOKENS_EXPIRING: &str = "scimgate_tokens_expiring_soon";
pub const STORE_GAUGES_AGE: &str = "scimgate_store_gauges_age_seconds";
pub const BUILD_INFO: &str = "scimgate_build_info";
pub const ACTIVITY_DROPPED: &str = "scimgate_activity_dropped_total";

/// Every metric name the gateway exports under its own prefix. The deploy check reads this list
/// to hold the alert rules and the dashboard to metrics that exist. The `process_*` metrics
/// come from [`metrics_process`].
pub const NAMES: &[&str] = &[
    HTTP_REQUESTS,
    HTTP_REQUEST_DURATION,
    TENANT_REQUESTS,
    RATE_LIMITED,
    AUTH_FAILURES,
    TOKEN_CACHE,
    DB_POOL_CONNECTIONS,
    DB_POOL_MAX_CONNECTIONS,
    REDIS_FALLBACK,
    WEBHOOK_DELIVERIES,
    WEBHOOK_LAG,
    WEBHOOK_DEAD_LETTERS,
    OLDEST_UNDELIVERED_EVENT,
    TOKENS_EXPIRING,
    STORE_GAUGES_AGE,
    BUILD_INFO,
    ACTIVITY_DROPPED,
];

/// The tenant label of a tenant beyond `SCIMGATE_METRICS_MAX_TENANTS`.
pub const OTHER_TENANTS: &str = "_other";

/// How often the store's gauges (dead letters, undelivered events, expiring tokens) are
/// recomputed: aggregate queries over whole tables, so never at each scrape.
const STORE_GAUGES_EVERY: Duration = Duration::from_secs(30);

/// Tokens expiring within this window count as expiring soon.
const EXPIRY_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// Upper bounds of the request latency buckets, in seconds: from a cached-token read (a few
/// milliseconds) to Entra's 60 s request timeout.
const LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// How often histograms are compacted when nobody scrapes, so they cannot grow without bound.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Where `/metrics` is served: an address of its own, or nowhere (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsListen {
    Off,
    Address(SocketAddr),
}

impl FromStr for MetricsListen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        s.trim().parse().map(Self::Address).map_err(|_| format!("`{s}` is neither host:port nor `off`"))
    }
}

impl fmt::Display for MetricsListen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Address(address) => address.fmt(f),
        }
    }
}

impl Serialize for MetricsListen {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MetricsListen {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = MetricsListen;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("host:port or `off`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MetricsListen, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// The process's recorder, installed on first use; `None` when another recorder was installed
/// first (then this process's metrics go there).
fn recorder() -> Option<PrometheusHandle> {
    static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    RECORDER.get_or_init(install_recorder).clone()
}

fn install_recorder() -> Option<PrometheusHandle> {
    let installed = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_REQUEST_DURATION.into()), LATENCY_BUCKETS)
        .and_then(|builder| builder.install_recorder());
    let handle = match installed {
        Ok(handle) => handle,
        Err(e) => {
            tracing::warn!(error = %e, "cannot install the metrics recorder: /metrics will be empty");
            return None;
        }
    };
    describe();
    process_collector().describe();
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let upkeep = handle.clone();
    // A thread, not a task: the recorder outlives any one runtime (tests build several).
    let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || loop {
        std::thread::sleep(UPKEEP_EVERY);
        upkeep.run_upkeep();
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start metrics upkeep; histograms are compacted at each scrape only");
    }
    Some(handle)
}

/// The standard `process_*` metrics (CPU, resident memory, open files, threads, start time).
fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

fn describe() {
    describe_counter!(HTTP_REQUESTS, Unit::Count, "HTTP requests answered, by route template, method and status.");
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request (until the response head), by route template, method and status."
    );
    describe_counter!(
        TENANT_REQUESTS,
        Unit::Count,
        "HTTP requests answered to an authenticated tenant, by tenant and status class (2xx..5xx)."
    );
    describe_counter!(
        RATE_LIMITED,
        Unit::Count,
        "Requests refused with 429, by tenant and reason (tenant_limit, auth_failures)."
    );
    describe_counter!(AUTH_FAILURES, Unit::Count, "Refused bearer tokens, by API (scim, admin) and reason.");
    describe_counter!(
        TOKEN_CACHE,
        Unit::Count,
        "Token verifications, by whether the verdict was cached (hit) or needed Argon2 (miss)."
    );
    describe_gauge!(DB_POOL_CONNECTIONS, Unit::Count, "Database connections of this process, by state (in_use, idle).");
    describe_gauge!(DB_POOL_MAX_CONNECTIONS, Unit::Count, "The most database connections this process may open.");
    describe_gauge!(
        REDIS_FALLBACK,
        "1 while Redis is configured but unreachable and rate limits are kept per process."
    );
    describe_counter!(
        WEBHOOK_DELIVERIES,
        Unit::Count,
        "Webhook delivery attempts, by tenant and outcome (delivered, retry, failed)."
    );
    describe_gauge!(
        WEBHOOK_LAG,
        Unit::Seconds,
        "Age of the oldest event not yet delivered to a tenant's webhook; 0 when caught up."
    );
    describe_gauge!(WEBHOOK_DEAD_LETTERS, Unit::Count, "Events that failed every webhook delivery attempt, in all.");
    describe_gauge!(
        OLDEST_UNDELIVERED_EVENT,
        Unit::Seconds,
        "Age of the oldest event not yet delivered to any enabled webhook; 0 when all are caught up."
    );
    describe_gauge!(
        TOKENS_EXPIRING,
        Unit::Count,
        "Tokens, not revoked, that expire within 7 days, by kind (tenant, operator)."
    );
    describe_gauge!(
        STORE_GAUGES_AGE,
        Unit::Seconds,
        "Time since the store's gauges (dead letters, undelivered events, expiring tokens) were computed."
    );
    describe_gauge!(BUILD_INFO, "Always 1; the version label tells which build runs.");
    describe_counter!(
        ACTIVITY_DROPPED,
        Unit::Count,
        "Provisioning activity records not kept, by reason (queue_full, write_failed)."
    );
}

/// Which tenants get a label of their own: the first `max` seen by this process; the rest share
/// [`OTHER_TENANTS`], so the series count stays bounded at any number of tenants.
#[derive(Debug)]
pub struct TenantLabels {
    max: usize,
    seen: Mutex<HashSet<String>>,
}

impl TenantLabels {
    pub fn new(max: usize) -> Self {
        Self { max, seen: Mutex::new(HashSet::new()) }
    }

    /// The label value for `tenant`.
    pub fn label(&self, tenant: &TenantName) -> String {
        let name = tenant.to_string();
        let mut seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.contains(&name) {
            return name;
        }
        if seen.len() < self.max {
            seen.insert(name.clone());
            return name;
        }
        OTHER_TENANTS.to_owned()
    }
}

/// The process's tenant labels. The cap is the first gateway's setting: the recorder, and so the
/// number of series, is process-wide too.
fn tenant_labels() -> &'static TenantLabels {
    TENANT_LABELS.get_or_init(|| TenantLabels::new(DEFAULT_MAX_TENANTS))
}

static TENANT_LABELS: OnceLock<TenantLabels> = OnceLock::new();

/// The default of `SCIMGATE_METRICS_MAX_TENANTS`.
pub const DEFAULT_MAX_TENANTS: usize = 1000;

/// Set how many tenants get labels of their own; only the first call in a process counts.
pub(crate) fn limit_tenant_labels(max: usize) {
    let _ = TENANT_LABELS.set(TenantLabels::new(max));
}

fn tenant_label(tenant: &TenantName) -> String {
    tenant_labels().label(tenant)
}

/// The `/metrics` server of one gateway.
pub(crate) struct MetricsServer {
    pub(crate) port: u16,
    pub(crate) server: Server,
}

/// Bind and start the metrics listener, unless metrics are off. Binding fails loudly: a pod
/// whose metrics port is taken is misconfigured.
pub(crate) fn serve(
    listen: MetricsListen,
    state: web::Data<AppState>,
    store: Arc<SqlStore>,
    background: &Background,
) -> Result<Option<MetricsServer>, crate::startup::StartupError> {
    let MetricsListen::Address(address) = listen else { return Ok(None) };
    let bind_error = |source| crate::startup::StartupError::Bind { addr: address, source };
    let listener = TcpListener::bind(address).map_err(bind_error)?;
    let port = listener.local_addr().map_err(bind_error)?.port();
    limit_tenant_labels(state.settings.metrics_max_tenants);
    let computed = Arc::new(Mutex::new(None));
    spawn_store_gauges(store.clone(), computed.clone(), background);
    let scrape = web::Data::new(Scrape { handle: recorder(), state, store, computed });
    let server = HttpServer::new(move || {
        App::new()
            .wrap(TracingLogger::<RequestSpan>::new())
            .app_data(scrape.clone())
            .route("/metrics", web::get().to(render))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(bind_error)?
    .run();
    tracing::info!(port, "metrics listening");
    Ok(Some(MetricsServer { port, server }))
}

struct Scrape {
    handle: Option<PrometheusHandle>,
    state: web::Data<AppState>,
    store: Arc<SqlStore>,
    /// The store's gauges as last computed, and when (microseconds since the epoch).
    computed: Arc<Mutex<Option<(StoreGauges, i64)>>>,
}

/// Recompute the store's gauges now and every [`STORE_GAUGES_EVERY`] until shutdown. A failure
/// keeps the last figures; their age (`scimgate_store_gauges_age_seconds`) then grows.
fn spawn_store_gauges(store: Arc<SqlStore>, computed: Arc<Mutex<Option<(StoreGauges, i64)>>>, background: &Background) {
    background.spawn(move |cancelled| async move {
        let mut tick = tokio::time::interval(STORE_GAUGES_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let window = i64::try_from(EXPIRY_WINDOW.as_micros()).unwrap_or(i64::MAX);
        loop {
            tokio::select! {
                () = cancelled.cancelled() => break,
                _ = tick.tick() => {}
            }
            let now = now_micros();
            match store.gauges(now, window).await {
                Ok(gauges) => *computed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((gauges, now)),
                Err(e) => tracing::warn!(error = %e, "cannot compute the store's gauges"),
            }
        }
    });
}

fn seconds_between(earlier: i64, later: i64) -> f64 {
    Duration::from_micros(u64::try_from(later.saturating_sub(earlier)).unwrap_or(0)).as_secs_f64()
}

async fn render(scrape: web::Data<Scrape>) -> HttpResponse {
    // Gauges are process-wide; several gateways in one process (tests) take turns setting and
    // rendering them.
    static SCRAPING: Mutex<()> = Mutex::new(());
    let text = {
        let _turn = SCRAPING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let pool = scrape.store.pool_status();
        gauge!(DB_POOL_CONNECTIONS, "state" => "in_use").set(f64::from(pool.open - pool.idle));
        gauge!(DB_POOL_CONNECTIONS, "state" => "idle").set(f64::from(pool.idle));
        gauge!(DB_POOL_MAX_CONNECTIONS).set(f64::from(pool.max));
        let fallback = scrape.state.limits.backend() == LimitBackend::RedisUnavailable;
        gauge!(REDIS_FALLBACK).set(if fallback { 1.0 } else { 0.0 });
        let computed = *scrape.computed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((gauges, at)) = computed {
            let now = now_micros();
            gauge!(WEBHOOK_DEAD_LETTERS).set(gauges.dead_letters as f64);
            // Aged at scrape time, so a stalled queue shows a growing age between refreshes.
            let oldest = gauges.oldest_undelivered_at.map_or(0.0, |oldest| seconds_between(oldest, now));
            gauge!(OLDEST_UNDELIVERED_EVENT).set(oldest);
            gauge!(TOKENS_EXPIRING, "kind" => "tenant").set(gauges.tenant_tokens_expiring as f64);
            gauge!(TOKENS_EXPIRING, "kind" => "operator").set(gauges.operator_tokens_expiring as f64);
            gauge!(TOKENS_EXPIRING, "kind" => "oauth_client").set(gauges.oauth_clients_expiring as f64);
            gauge!(STORE_GAUGES_AGE).set(seconds_between(at, now));
        } else {
            // Not computed yet (or never could be): infinitely stale, so the alert on the age
            // fires if the first computation keeps failing.
            gauge!(STORE_GAUGES_AGE).set(f64::INFINITY);
        }
        process_collector().collect();
        scrape.handle.as_ref().map(PrometheusHandle::render).unwrap_or_default()
    };
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(text)
}

/// The authenticated tenant of a request, kept on it for the request metrics.
#[derive(Debug, Clone)]
pub struct RequestTenant(pub TenantName);

/// Middleware: count every request and time it, by route template, method and status, and count
/// it by tenant and status class. Health probes are left out: they would only add a steady
/// trickle per pod.
pub async fn record_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let outcome = next.call(req).await;
    match &outcome {
        Ok(response) => record_request(response.request(), method, response.status(), started.elapsed()),
        Err(e) => {
            // An error that escaped every handler leaves no request to read the route from; it
            // is still counted, as unmatched.
            let status = e.as_response_error().status_code();
            record(None, "unmatched".into(), method, status, started.elapsed());
        }
    }
    outcome
}

fn record_request(req: &HttpRequest, method: &'static str, status: StatusCode, elapsed: Duration) {
    let route = req.match_pattern();
    if matches!(route.as_deref(), Some("/healthz" | "/readyz")) {
        return;
    }
    let tenant = req.extensions().get::<RequestTenant>().map(|t| t.0.clone());
    record(tenant.as_ref(), route.unwrap_or_else(|| "unmatched".into()), method, status, elapsed);
}

fn record(tenant: Option<&TenantName>, route: String, method: &'static str, status: StatusCode, elapsed: Duration) {
    let labels = vec![
        Label::new("route", route),
        Label::new("method", method),
        Label::new("status", status.as_u16().to_string()),
    ];
    counter!(HTTP_REQUESTS, labels.clone()).increment(1);
    histogram!(HTTP_REQUEST_DURATION, labels).record(elapsed.as_secs_f64());
    if let Some(tenant) = tenant {
        counter!(TENANT_REQUESTS, "tenant" => tenant_label(tenant), "class" => status_class(status)).increment(1);
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Methods a client may invent are folded into `OTHER`, so they cannot mint new series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Why a request was refused with 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitReason {
    /// The tenant spent its request rate.
    TenantLimit,
    /// The client address failed authentication too often. The tenant is not known then.
    AuthFailures,
    /// The tenant already has its share of database work running and waiting.
    DatabaseShare,
}

/// Count a 429; `tenant` is `None` when the request was refused before authentication.
pub fn rate_limited(tenant: Option<&TenantName>, reason: RateLimitReason) {
    let reason = match reason {
        RateLimitReason::TenantLimit => "tenant_limit",
        RateLimitReason::AuthFailures => "auth_failures",
        RateLimitReason::DatabaseShare => "database_share",
    };
    let tenant = tenant.map(tenant_label).unwrap_or_default();
    counter!(RATE_LIMITED, "tenant" => tenant, "reason" => reason).increment(1);
}

/// Count a refused token, labelled by why it was refused.
pub fn auth_failure(kind: TokenKind, reason: Refusal) {
    let api = match kind {
        TokenKind::Tenant => "scim",
        TokenKind::Operator => "admin",
    };
    counter!(AUTH_FAILURES, "api" => api, "reason" => reason.label()).increment(1);
}

/// Why provisioning activity records were not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityDropReason {
    /// The queue to the writer was full: requests came faster than the database took them.
    QueueFull,
    /// Writing a batch failed (the database was away).
    WriteFailed,
}

/// Count `n` activity records that were dropped.
pub fn activity_dropped(reason: ActivityDropReason, n: u64) {
    let reason = match reason {
        ActivityDropReason::QueueFull => "queue_full",
        ActivityDropReason::WriteFailed => "write_failed",
    };
    counter!(ACTIVITY_DROPPED, "reason" => reason).increment(n);
}

/// Count one token verification by whether its verdict was cached.
pub fn token_cache(lookup: CacheLookup) {
    let result = match lookup {
        CacheLookup::Hit => "hit",
        CacheLookup::Miss => "miss",
    };
    counter!(TOKEN_CACHE, "result" => result).increment(1);
}

/// What became of one webhook delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// The receiver accepted it (2xx).
    Delivered,
    /// It failed and will be tried again later.
    Retry,
    /// It failed for good (retries exhausted or refused outright): dead-lettered.
    Failed,
}

/// Count one webhook delivery attempt to `tenant`'s endpoint.
pub fn webhook_delivery(tenant: &TenantName, outcome: WebhookOutcome) {
    let outcome = match outcome {
        WebhookOutcome::Delivered => "delivered",
        WebhookOutcome::Retry => "retry",
        WebhookOutcome::Failed => "failed",
    };
    counter!(WEBHOOK_DELIVERIES, "tenant" => tenant_label(tenant), "outcome" => outcome).increment(1);
}

/// Report how far `tenant`'s webhook deliveries are behind: the age of its oldest event not yet
/// delivered, or zero when none is waiting. Call it each time the deliverer looks at the
/// tenant's queue, so a stalled queue shows a growing lag rather than the last good value.
/// Tenants beyond the label cap are left out: one shared gauge would only show whichever was
/// set last (`scimgate_webhook_oldest_undelivered_event_age_seconds` covers every tenant).
pub fn webhook_lag(tenant: &TenantName, lag: Duration) {
    let label = tenant_label(tenant);
    if label != OTHER_TENANTS {
        gauge!(WEBHOOK_LAG, "tenant" => label).set(lag.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_listen_reads_an_address_or_off() {
        assert_eq!("off".parse::<MetricsListen>(), Ok(MetricsListen::Off));
        assert_eq!("OFF".parse::<MetricsListen>(), Ok(MetricsListen::Off));
        let address: SocketAddr = "0.0.0.0:9090".parse().unwrap();
        assert_eq!("0.0.0.0:9090".parse::<MetricsListen>(), Ok(MetricsListen::Address(address)));
        assert!("9090".parse::<MetricsListen>().is_err());
        assert!("localhost".parse::<MetricsListen>().is_err());
        assert_eq!(MetricsListen::Address(address).to_string(), "0.0.0.0:9090");
        assert_eq!(MetricsListen::Off.to_string(), "off");
    }

    #[test]
    fn tenants_beyond_the_cap_share_one_label() {
        let labels = TenantLabels::new(2);
        let [a, b, c]: [TenantName; 3] = ["acme", "globex", "initech"].map(|n| TenantName::parse(n).unwrap());
        assert_eq!(labels.label(&a), "acme");
        assert_eq!(labels.label(&b), "globex");
        assert_eq!(labels.label(&c), OTHER_TENANTS);
        assert_eq!(labels.label(&a), "acme", "a tenant keeps its label");
        assert_eq!(TenantLabels::new(0).label(&a), OTHER_TENANTS, "0 labels no tenant");
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(StatusCode::OK), "2xx");
        assert_eq!(status_class(StatusCode::NOT_FOUND), "4xx");
        assert_eq!(status_class(StatusCode::SERVICE_UNAVAILABLE), "5xx");
    }

    #[test]
    fn invented_methods_share_one_label() {
        let invented = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&invented), "OTHER");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
    }
}
