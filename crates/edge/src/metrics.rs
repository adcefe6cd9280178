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
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};
use domain::TenantName;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Label, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use token::{CacheLookup, TokenKind};

use crate::refusal::Refusal;

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

/// Upper bounds of the request latency buckets, in seconds: from a cached-token read (a few
/// milliseconds) to Entra's 60 s request timeout.
const LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// How often histograms are compacted when nobody scrapes, so they cannot grow without bound.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's recorder, installed on first use; `None` when another recorder was installed
/// first (then this process's metrics go there).
pub(crate) fn recorder() -> Option<PrometheusHandle> {
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
pub(crate) fn process_collector() -> &'static metrics_process::Collector {
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
    describe_gauge!(
        DB_POOL_CONNECTIONS,
        Unit::Count,
        "Database connections of this process, by pool (main, lookups) and state (in_use, idle)."
    );
    describe_gauge!(
        DB_POOL_MAX_CONNECTIONS,
        Unit::Count,
        "The most database connections this process may open, by pool."
    );
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
    TENANT_LABELS.get_or_init(|| TenantLabels::new(crate::config::DEFAULT_MAX_TENANTS))
}

static TENANT_LABELS: OnceLock<TenantLabels> = OnceLock::new();

/// Set how many tenants get labels of their own; only the first call in a process counts.
pub(crate) fn limit_tenant_labels(max: usize) {
    let _ = TENANT_LABELS.set(TenantLabels::new(max));
}

fn tenant_label(tenant: &TenantName) -> String {
    tenant_labels().label(tenant)
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
