//! One start-up path for the binary and the tests: bind, connect, migrate, serve.

mod metrics_server;

use std::future::Future;
use std::net::TcpListener;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, NormalizePath, TrailingSlash};
use actix_web::{web, App, HttpServer};
use domain::sql::PoolSettings;
use domain::{EventStore, SqlStore, Store};
use limit::{FailureLimiter, FailureQuota, RedisLimiter, TenantLimiter};
use secrecy::ExposeSecret;
use token::{Verifier, VerifierConfig};
use tokio::sync::Notify;
use tracing_actix_web::TracingLogger;

use self::metrics_server::MetricsServer;
use crate::config::{ConfigError, Settings};
use crate::error::ScimError;
use crate::jwks::JwksCache;
use crate::memory::BodyBudget;
use crate::share::{DatabaseShare, ShareLimits};
use crate::shutdown::{every, Background, Draining, BACKGROUND_GRACE};
use crate::state::AppState;
use crate::telemetry::{RequestSpan, ShowFilterValues};
use crate::usage::TokenUsage;
use crate::webhooks::{Deliverer, DeliveryPolicy};
use crate::{admin, health, metrics, oauth, route_table, scim};

/// How often an unreachable Redis is probed, and idle limiter state dropped.
const LIMITER_MAINTENANCE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("database: {0}")]
    Database(#[from] domain::DomainError),
    /// Connecting to or migrating the configured database failed.
    #[error("cannot open database {database}")]
    OpenDatabase { database: domain::DatabaseUrl, source: domain::DomainError },
    #[error("webhook HTTP client: {0}")]
    WebhookClient(#[from] reqwest::Error),
    #[error("JWKS HTTP client: {0}")]
    JwksClient(reqwest::Error),
}

pub struct Application {
    pub(crate) port: u16,
    pub(crate) server: Server,
    pub(crate) store: Arc<SqlStore>,
    pub(crate) usage: Arc<TokenUsage>,
    /// The `/metrics` listener, unless metrics are off.
    pub(crate) metrics: Option<MetricsServer>,
    pub(crate) draining: web::Data<Draining>,
    /// How long `/readyz` answers 503 before the listener closes, after a stop signal.
    pub(crate) drain: Duration,
    pub(crate) background: Background,
}

/// Connect to the configured database and apply migrations.
pub async fn connect_store(settings: &Settings) -> Result<SqlStore, StartupError> {
    let url = settings.database_url().map_err(crate::config::ConfigError::from)?;
    let pool = PoolSettings {
        max_connections: settings.max_db_connections,
        statement_timeout: settings.db_statement_timeout(),
        ..PoolSettings::default()
    };
    let open = |source| StartupError::OpenDatabase { database: url.clone(), source };
    let store = SqlStore::connect(&url, &pool).await.map_err(open)?;
    store.migrate().await.map_err(open)?;
    Ok(store)
}

async fn not_found() -> Result<actix_web::HttpResponse, ScimError> {
    Err(ScimError::NotFound("no such endpoint".into()))
}

impl Application {
    /// Bind the listener (port 0 picks a free one), connect and migrate the store, and build the
    /// server. Nothing is served until [`Application::run_until_stopped`].
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let store = Arc::new(connect_store(&settings).await?);
        let listener = TcpListener::bind(settings.listen)
            .map_err(|source| StartupError::Bind { addr: settings.listen, source })?;
        let port = listener.local_addr().map_err(|source| StartupError::Bind { addr: settings.listen, source })?.port();
        let (max_payload, max_group_payload) = (settings.max_payload_bytes, settings.max_group_payload_bytes);
        let (metrics_listen, drain) = (settings.metrics_listen, Duration::from_secs(settings.drain_seconds));
        let event_retention_days = settings.event_retention_days;
        let follow_token_changes = settings.follow_token_changes;
        let (portal, console) = (settings.portal, settings.console);
        let draining = web::Data::new(Draining::default());
        let background = Background::default();
        let limits = tenant_limiter(&settings)?;
        let maintenance = limits.maintenance(LIMITER_MAINTENANCE);
        background.spawn(move |cancelled| async move {
            cancelled.run_until_cancelled(maintenance).await;
        });
        let usage = Arc::new(TokenUsage::default());
        let (flushed, flush_every) =
            (store.clone() as Arc<dyn Store>, Duration::from_secs(settings.token_use_flush_seconds.max(1)));
        background.spawn({
            let usage = usage.clone();
            move |cancelled| {
                every(flush_every, cancelled, "recording token use", move || {
                    let (usage, store) = (usage.clone(), flushed.clone());
                    async move { usage.flush(store.as_ref()).await.map(drop) }
                })
            }
        });
        let verifier = Verifier::new(VerifierConfig {
            cache_ttl: Duration::from_secs(settings.token_cache_seconds),
            ..VerifierConfig::default()
        });
        let wake = Arc::new(Notify::new());
        let deliverer =
            Deliverer::new(store.clone() as Arc<dyn Store>, DeliveryPolicy::from_settings(&settings), wake.clone())?;
        let share = DatabaseShare::new(ShareLimits {
            per_tenant: settings.db_requests_per_tenant(),
            write_burst: settings.db_write_burst_per_tenant(),
            queue: usize::try_from(settings.db_queue_per_tenant).unwrap_or(usize::MAX),
            queue_wait: Duration::from_millis(settings.db_queue_wait_ms),
            deadline: Duration::from_millis(settings.db_request_timeout_ms),
        });
        let jwks = JwksCache::new(
            Duration::from_millis(settings.oauth_jwks_timeout_ms),
            Duration::from_secs(settings.oauth_jwks_min_refetch_seconds),
        )
        .map_err(StartupError::JwksClient)?;
        let activity = crate::activity::start(&settings, store.clone() as Arc<dyn Store>, &background);
        let (activity_days, activity_max) = (settings.activity_retention_days, settings.activity_max_per_tenant);
        let state = web::Data::new(AppState {
            store: store.clone() as Arc<dyn Store>,
            share,
            bodies: BodyBudget::new(settings.body_memory_bytes, Duration::from_millis(settings.body_memory_wait_ms)),
            verifier,
            limits,
            failures: failure_limiter(&settings),
            usage: usage.clone(),
            settings,
            deliveries: wake,
            jwks,
            activity,
        });
        let evicting = state.clone().into_inner();
        background.spawn(move |cancelled| async move {
            cancelled.run_until_cancelled(evict_idle_failures(evicting)).await;
        });
        let metrics = metrics_server::serve(metrics_listen, state.clone(), store.clone(), &background)?;
        let readiness = draining.clone();
        let show_filter_values = state.settings.log_filter_values;
        let server = HttpServer::new(move || {
            App::new()
                // A Tenant URL pasted with a trailing slash makes IdPs call `.../<org>//Users`
                // and `.../Users/`: merge the slashes and drop the trailing one before routing.
                .wrap(NormalizePath::new(TrailingSlash::Trim))
                .wrap(from_fn(metrics::record_requests))
                .wrap(TracingLogger::<RequestSpan>::new())
                .app_data(state.clone())
                .app_data(ShowFilterValues(show_filter_values))
                .app_data(readiness.clone())
                .service(route_table::resource("", "/healthz").route(web::get().to(health::healthz)))
                .service(route_table::resource("", "/readyz").route(web::get().to(health::readyz)))
                .configure(|cfg| scim::routes(cfg, max_payload, max_group_payload))
                .configure(admin::routes)
                .configure(oauth::routes)
                .configure(|cfg| crate::web::routes(cfg, portal, console))
                .default_service(web::to(not_found))
        })
        .listen(listener)
        .map_err(|source| StartupError::Bind { addr: ([0, 0, 0, 0], port).into(), source })?
        .shutdown_timeout(30)
        // Signals are handled by `run_until_stopped`, which drains before stopping.
        .disable_signals()
        .run();
        // Webhook delivery runs beside the server, never inside a request; at shutdown it stops
        // after the last request was answered, letting deliveries in flight finish.
        let deliveries = Arc::new(deliverer).spawn();
        background.spawn(move |cancelled| async move {
            cancelled.cancelled().await;
            deliveries.stop().await;
        });
        // Token records are kept in memory while their changes are followed (PostgreSQL).
        if follow_token_changes {
            let followed = store.clone();
            background.spawn(move |cancelled| async move {
                let follow = async {
                    while let Err(e) = followed.follow_token_changes().await {
                        tracing::warn!(error = %e, "not following token changes: tokens are read on every request until it can again");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                };
                cancelled.run_until_cancelled(follow).await;
            });
        }
        // Connections a burst opened close once idle a while, and with them the memory each holds.
        let pooled = store.clone();
        background.spawn(move |cancelled| {
            every(domain::sql::IDLE_CONNECTION_LIFETIME, cancelled, "closing idle connections", move || {
                let store = pooled.clone();
                async move { store.close_idle_connections().await }
            })
        });
        // Events writes left for the sequencer (PostgreSQL) never wait long for a reader of the
        // feed or a webhook worker to number them; on a replica without webhook workers too.
        let numbered = store.clone();
        background.spawn(move |cancelled| {
            every(SEQUENCER_TICK, cancelled, "numbering events", move || {
                let store = numbered.clone();
                async move { store.number_events().await }
            })
        });
        let (pruned, retention_days) = (store.clone() as Arc<dyn Store>, event_retention_days);
        background.spawn(move |cancelled| crate::retention::prune_until_cancelled(pruned, retention_days, cancelled));
        let pruned = store.clone() as Arc<dyn Store>;
        background.spawn(move |cancelled| {
            crate::retention::prune_activity_until_cancelled(pruned, activity_days, activity_max, cancelled)
        });
        Ok(Self { port, server, store, usage, metrics, draining, drain, background })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` is served on, unless metrics are off.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|m| m.port)
    }

    /// Tasks that must finish before the process exits: they are cancelled and awaited at
    /// shutdown, after the last request was answered (see [`Background`]).
    pub fn background(&self) -> &Background {
        &self.background
    }

    /// Serve until SIGTERM or SIGINT, then shut down gracefully (see [`Application::run_until`]).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(crate::shutdown::signal()).await
    }

    /// Serve until `stop` resolves (or the server fails), then: drain (`/readyz` answers 503 for
    /// `drain_seconds`, everything else is served), close the listener and let requests in flight
    /// finish (up to 30 s), stop background tasks, and write out what is buffered.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> std::io::Result<()> {
        let Application { server, metrics, store, usage, draining, drain, background, .. } = self;
        let api = server.handle();
        let mut serving = tokio::spawn(server);
        let metrics = metrics.map(|metrics| (metrics.server.handle(), tokio::spawn(metrics.server)));
        let ended = tokio::select! {
            ended = &mut serving => Some(ended),
            () = stop => None,
        };
        let ended = match ended {
            Some(ended) => ended,
            None => {
                if !drain.is_zero() {
                    draining.start();
                    tracing::info!(
                        drain_seconds = drain.as_secs(),
                        "draining: /readyz answers 503, requests are served"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(drain) => {}
                        _ = &mut serving => {}
                    }
                }
                tracing::info!("closing the listener; requests in flight may finish");
                api.stop(true).await;
                serving.await
            }
        };
        let result = ended.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if !background.stop(BACKGROUND_GRACE).await {
            tracing::warn!(grace_seconds = BACKGROUND_GRACE.as_secs(), "background tasks did not finish in time");
        }
        if let Err(e) = usage.flush(store.as_ref()).await {
            tracing::warn!(error = %e, "could not record token use at shutdown");
        }
        crate::telemetry::flush_traces().await;
        if let Some((handle, serving)) = metrics {
            handle.stop(false).await;
            let _ = serving.await;
        }
        store.close().await;
        tracing::info!("stopped");
        result
    }
}

fn tenant_limiter(settings: &Settings) -> Result<TenantLimiter, StartupError> {
    let Some(url) = &settings.redis_url else { return Ok(TenantLimiter::local()) };
    let timeout = Duration::from_millis(settings.redis_timeout_ms.max(1));
    let redis = RedisLimiter::new(url.expose_secret(), "scimgate:", timeout)
        .map_err(|e| ConfigError::Invalid(format!("SCIMGATE_REDIS_URL: {e}")))?;
    Ok(TenantLimiter::with_redis(redis))
}

fn failure_limiter(settings: &Settings) -> FailureLimiter {
    FailureLimiter::new(FailureQuota {
        burst: NonZeroU32::new(settings.auth_failure_burst).unwrap_or(NonZeroU32::MIN),
        refill: Duration::from_secs(settings.auth_failure_refill_seconds.max(1)),
        address_burst: NonZeroU32::new(settings.auth_failure_address_burst).unwrap_or(NonZeroU32::MIN),
        address_refill: Duration::from_millis(settings.auth_failure_address_refill_ms.max(1)),
    })
}

/// Forget addresses that stopped failing, once a minute. Never ends.
async fn evict_idle_failures(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        state.failures.evict_idle();
    }
}

/// How often the event sequencer looks for events of committed writes still without a number.
const SEQUENCER_TICK: Duration = Duration::from_millis(100);
