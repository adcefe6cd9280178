//! The `/metrics` listener: Prometheus text rendered from [`crate::metrics`]' recorder, with the
//! gauges read at scrape time (database pool, Redis fallback) or recomputed in the background
//! (the store's aggregates).

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse, HttpServer};
use domain::now_micros;
use domain::sql::StoreGauges;
use domain::SqlStore;
use limit::LimitBackend;
use metrics::gauge;
use metrics_exporter_prometheus::PrometheusHandle;
use tracing_actix_web::TracingLogger;

use super::StartupError;
use crate::config::MetricsListen;
use crate::metrics::{
    limit_tenant_labels, process_collector, recorder, DB_POOL_CONNECTIONS, DB_POOL_MAX_CONNECTIONS,
    OLDEST_UNDELIVERED_EVENT, REDIS_FALLBACK, STORE_GAUGES_AGE, TOKENS_EXPIRING, WEBHOOK_DEAD_LETTERS,
};
use crate::shutdown::Background;
use crate::state::AppState;
use crate::telemetry::RequestSpan;

/// How often the store's gauges (dead letters, undelivered events, expiring tokens) are
/// recomputed: aggregate queries over whole tables, so never at each scrape.
const STORE_GAUGES_EVERY: Duration = Duration::from_secs(30);

/// Tokens expiring within this window count as expiring soon.
const EXPIRY_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

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
) -> Result<Option<MetricsServer>, StartupError> {
    let MetricsListen::Address(address) = listen else { return Ok(None) };
    let bind_error = |source| StartupError::Bind { addr: address, source };
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
        for (name, pool) in scrape.store.pool_status() {
            gauge!(DB_POOL_CONNECTIONS, "pool" => name, "state" => "in_use").set(f64::from(pool.open - pool.idle));
            gauge!(DB_POOL_CONNECTIONS, "pool" => name, "state" => "idle").set(f64::from(pool.idle));
            gauge!(DB_POOL_MAX_CONNECTIONS, "pool" => name).set(f64::from(pool.max));
        }
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
