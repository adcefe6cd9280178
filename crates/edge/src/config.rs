//! Settings: built-in defaults < optional TOML file < `SCIMGATE_*` environment < command-line
//! flags. Any setting can also be read from a file named by `SCIMGATE_<KEY>_FILE` (Kubernetes
//! secrets); setting both is an error.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use domain::DatabaseUrl;
use domain::RateLimit;
use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Most events one webhook delivery may carry.
pub const MAX_WEBHOOK_BATCH: u32 = 1000;
/// Where `/metrics` is served unless `SCIMGATE_METRICS_LISTEN` says otherwise (on loopback).
pub const DEFAULT_METRICS_PORT: u16 = 9464;
/// The default of `SCIMGATE_METRICS_MAX_TENANTS`.
pub const DEFAULT_MAX_TENANTS: usize = 1000;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable lines, for a terminal.
    #[default]
    Pretty,
}

/// Settings as loaded. The URLs that may carry passwords are secrets, so `Debug` shows neither;
/// the database URL is parsed into a [`DatabaseUrl`] (which hides its password) by
/// [`Settings::database_url`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(serialize_with = "expose")]
    pub database_url: SecretString,
    pub listen: SocketAddr,
    /// The externally visible base URL (`https://scim.example.com`); when unset, locations are
    /// built from each request's Host and scheme (honouring `Forwarded` / `X-Forwarded-*`).
    pub public_url: Option<String>,
    pub log_format: LogFormat,
    /// Request logs show the string values of `filter` query parameters (userNames, emails).
    /// Off by default: they are personal data; turn it on only to debug an IdP's requests.
    pub log_filter_values: bool,
    /// Most resources returned in one list response (advertised as `filter.maxResults`).
    pub max_results: u64,
    /// Page size when a list request gives no `count`.
    pub default_page_size: u64,
    /// Largest request body on User and discovery routes, in bytes.
    pub max_payload_bytes: usize,
    /// Largest request body on Group routes: a full member replace of 100,000 members is ~8.4 MB.
    pub max_group_payload_bytes: usize,
    /// Memory request bodies may take at once while read, parsed and written, estimated at
    /// 16 times their length (0: no budget). One body alone always fits.
    pub body_memory_bytes: usize,
    /// How long a request waits for body memory before it is refused (503).
    pub body_memory_wait_ms: u64,
    /// Database connections per process.
    pub max_db_connections: u32,
    /// Requests of one tenant doing database work at once in this process; 0 derives it from
    /// the pool: a quarter of the connections (at least one), so one tenant never holds more than
    /// its share of connections, nor of the database's CPU.
    pub db_requests_per_tenant: u32,
    /// Writes of one tenant doing database work at once while no other tenant uses the database
    /// (see `share.rs`); 0 derives it: on PostgreSQL the pool less one tenant's share, so a
    /// tenant that comes along still finds its share free; on SQLite, whose one writer takes
    /// writes one at a time anyway, the share.
    pub db_write_burst_per_tenant: u32,
    /// Requests of one tenant waiting for a turn at the database; more are refused (429).
    pub db_queue_per_tenant: u32,
    /// How long a request waits for its tenant's turn before it is refused (429).
    pub db_queue_wait_ms: u64,
    /// The longest one request's database work may take (503 past it).
    pub db_request_timeout_ms: u64,
    /// The longest one statement may run on PostgreSQL before the server stops it, even when
    /// nobody waits for it any more; 0: no limit.
    pub db_statement_timeout_ms: u64,
    /// Redis for rate limits shared by every replica (`redis://[:password@]host:6379/0`). Unset:
    /// each process limits on its own.
    #[serde(serialize_with = "expose_optional")]
    pub redis_url: Option<SecretString>,
    /// How long a rate-limit check waits for Redis before falling back to local limits.
    pub redis_timeout_ms: u64,
    /// Default tenant limit: sustained requests per second, and the burst above it. Entra needs
    /// at least 25 requests per second per tenant.
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    /// Failed authentications a client address may make at once, and the seconds until it may
    /// make one more.
    pub auth_failure_burst: u32,
    pub auth_failure_refill_seconds: u64,
    /// Failed authentications one address may make across every tenant together (against
    /// spraying), and the milliseconds until it may make one more: far above the per-tenant
    /// budget, refilling faster, so failures aimed at one tenant never reach it.
    pub auth_failure_address_burst: u32,
    pub auth_failure_address_refill_ms: u64,
    /// Reverse proxies in front of the gateway that append to `X-Forwarded-For` (an Ingress: 1).
    /// 0 trusts no header and uses the peer address.
    pub trusted_proxy_hops: usize,
    /// How long a verified token is remembered before Argon2 runs for it again.
    pub token_cache_seconds: u64,
    /// How often tokens' last-used times are written to the database.
    pub token_use_flush_seconds: u64,
    /// PostgreSQL: keep token records in memory while following their changes (LISTEN), instead
    /// of reading the token on every request. Off behind a pooler that does not carry LISTEN
    /// (PgBouncer in transaction mode).
    pub follow_token_changes: bool,
    /// Webhook delivery attempts at an event before it is dead-lettered.
    pub webhook_max_attempts: u32,
    /// The delay before the first retry; each further one doubles up to `webhook_backoff_max_ms`,
    /// and each is scaled by a random factor in [0.5, 1] so receivers are not retried in step.
    pub webhook_backoff_base_ms: u64,
    pub webhook_backoff_max_ms: u64,
    /// How long a webhook receiver has to answer.
    pub webhook_timeout_ms: u64,
    /// Most events in one delivery.
    pub webhook_batch_size: u32,
    /// How often an idle deliverer looks for due deliveries (writes through this process wake it
    /// sooner).
    pub webhook_poll_ms: u64,
    /// Deliveries this process makes at once; 0 leaves delivery to other processes.
    pub webhook_workers: usize,
    /// Where Prometheus `/metrics` is served: its own listener, never the public one; `off`
    /// serves none.
    pub metrics_listen: MetricsListen,
    /// How many tenants get series of their own in the per-tenant counters; later tenants share
    /// the label `_other`. 0 labels none. Histograms never carry a tenant.
    pub metrics_max_tenants: usize,
    /// After SIGTERM or SIGINT, how long `/readyz` answers 503 while everything else is still
    /// served, before the listener closes (Kubernetes needs a few seconds to stop routing here).
    pub drain_seconds: u64,
    /// Events older than this many days are deleted in the background, once every webhook
    /// endpoint of their tenant has them (delivered or dead-lettered); 0 keeps every event.
    pub event_retention_days: u64,
    /// OAuth federated credentials: an issuer's JWKS is fetched again at most this often, even
    /// when an assertion names a key id it does not hold (and whatever its cache headers say).
    pub oauth_jwks_min_refetch_seconds: u64,
    /// How long fetching an issuer's JWKS may take.
    pub oauth_jwks_timeout_ms: u64,
    /// Clock skew allowed when checking an assertion's `exp` and `nbf`.
    pub oauth_clock_skew_seconds: u64,
    /// Serve the setup portal under `/portal` (customers' IT admins, through setup links).
    pub portal: bool,
    /// Serve the operator console under `/console` (operators, signed in with an operator token).
    pub console: bool,
    /// Record every SCIM request of a tenant in its provisioning activity log.
    pub activity_log: bool,
    /// Activity records older than this many days are deleted in the background; 0 bounds them
    /// by count only.
    pub activity_retention_days: u64,
    /// Each tenant keeps at most this many of its newest activity records; 0 bounds them by age
    /// only.
    pub activity_max_per_tenant: u32,
    /// Activity records waiting to be written, at most; a request whose record finds the queue
    /// full is still served, and its record dropped and counted.
    pub activity_queue: usize,
    /// The longest an activity record waits before its batch is written.
    pub activity_flush_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://scimgate.db".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            log_format: LogFormat::Pretty,
            log_filter_values: false,
            max_results: 1000,
            default_page_size: 100,
            max_payload_bytes: 1024 * 1024,
            max_group_payload_bytes: 16 * 1024 * 1024,
            body_memory_bytes: 160 * 1024 * 1024,
            body_memory_wait_ms: 10_000,
            max_db_connections: 10,
            db_requests_per_tenant: 0,
            db_write_burst_per_tenant: 0,
            db_queue_per_tenant: 64,
            db_queue_wait_ms: 5000,
            db_request_timeout_ms: 30_000,
            db_statement_timeout_ms: 20_000,
            redis_url: None,
            redis_timeout_ms: 250,
            rate_limit_per_second: 50,
            rate_limit_burst: 200,
            auth_failure_burst: 20,
            auth_failure_refill_seconds: 3,
            auth_failure_address_burst: 200,
            auth_failure_address_refill_ms: 300,
            trusted_proxy_hops: 0,
            token_cache_seconds: 300,
            token_use_flush_seconds: 30,
            follow_token_changes: true,
            // 18 attempts, 1 s doubling to 1 h: about 6 hours of retries (4.5 on average with
            // jitter) before an event is dead-lettered, so a receiver's bad night is survived.
            webhook_max_attempts: 18,
            webhook_backoff_base_ms: 1000,
            webhook_backoff_max_ms: 60 * 60 * 1000,
            webhook_timeout_ms: 10_000,
            webhook_batch_size: 100,
            webhook_poll_ms: 1000,
            webhook_workers: 4,
            // 9464, the OpenTelemetry Prometheus exporter's port: not Prometheus's own 9090, so a
            // Prometheus on the same machine does not stop the gateway from starting.
            metrics_listen: MetricsListen::Address(SocketAddr::from(([127, 0, 0, 1], DEFAULT_METRICS_PORT))),
            metrics_max_tenants: DEFAULT_MAX_TENANTS,
            drain_seconds: 0,
            event_retention_days: 90,
            oauth_jwks_min_refetch_seconds: 60,
            oauth_jwks_timeout_ms: 5000,
            oauth_clock_skew_seconds: 60,
            portal: true,
            console: true,
            activity_log: true,
            activity_retention_days: 30,
            activity_max_per_tenant: 100_000,
            activity_queue: 10_000,
            activity_flush_ms: 1000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error(transparent)]
    Database(#[from] domain::sql::UnsupportedDatabaseUrl),
}

/// Values given on the command line, applied last.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_optional")]
    pub database_url: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

impl Settings {
    /// Load from `file` (if given), the process environment and `overrides`; with the warnings
    /// to log once logging is set up (unknown `SCIMGATE_*` variables).
    pub fn load(file: Option<&PathBuf>, overrides: &Overrides) -> Result<(Self, Vec<String>), ConfigError> {
        Self::load_reporting(file, std::env::vars(), overrides)
    }

    pub fn load_from(
        file: Option<&PathBuf>,
        env: impl Iterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        Self::load_reporting(file, env, overrides).map(|(settings, _)| settings)
    }

    fn load_reporting(
        file: Option<&PathBuf>,
        env: impl Iterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<(Self, Vec<String>), ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Invalid(format!("config file {} does not exist", path.display())));
            }
            figment = figment.merge(Toml::file(path));
        }
        let env: Vec<(String, String)> = env.filter(|(k, _)| k.starts_with("SCIMGATE_")).collect();
        let keys = Self::keys();
        let mut values = Vec::new();
        for key in &keys {
            let direct = env.iter().find(|(k, _)| *k == format!("SCIMGATE_{key}")).map(|(_, v)| v.clone());
            let from_file = env.iter().find(|(k, _)| *k == format!("SCIMGATE_{key}_FILE")).map(|(_, v)| v.clone());
            let value = match (direct, from_file) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::Invalid(format!("set SCIMGATE_{key} or SCIMGATE_{key}_FILE, not both")))
                }
                (Some(v), None) => Some(v),
                (None, Some(path)) => Some(
                    std::fs::read_to_string(&path)
                        .map_err(|e| ConfigError::Invalid(format!("cannot read SCIMGATE_{key}_FILE ({path}): {e}")))?
                        .trim()
                        .to_owned(),
                ),
                (None, None) => None,
            };
            if let Some(v) = value {
                values.push((key.to_lowercase(), v));
            }
        }
        let mut warnings = Vec::new();
        for (k, _) in &env {
            let known = keys.iter().any(|key| *k == format!("SCIMGATE_{key}") || *k == format!("SCIMGATE_{key}_FILE"));
            if !known && k != "SCIMGATE_CONFIG" && k != "SCIMGATE_LOG" {
                warnings.push(format!("unknown environment variable {k}"));
            }
        }
        // Environment values are strings: numbers are recognised here, addresses by serde.
        let mut env_map = figment::value::Dict::new();
        for (k, v) in values {
            env_map.insert(k, parse_scalar(&v));
        }
        figment = figment.merge(Serialized::defaults(env_map)).merge(Serialized::defaults(overrides));
        let settings: Settings = figment.extract().map_err(|e| ConfigError::Invalid(e.to_string()))?;
        settings.database_url()?;
        if settings.max_results == 0 || settings.default_page_size == 0 {
            return Err(ConfigError::Invalid("max_results and default_page_size must be positive".into()));
        }
        if settings.default_quota().is_none() {
            return Err(ConfigError::Invalid("rate_limit_per_second and rate_limit_burst must be positive".into()));
        }
        if settings.auth_failure_burst == 0 || settings.auth_failure_address_burst == 0 {
            return Err(ConfigError::Invalid(
                "auth_failure_burst and auth_failure_address_burst must be positive".into(),
            ));
        }
        if settings.max_db_connections == 0 || settings.db_request_timeout_ms == 0 {
            return Err(ConfigError::Invalid("max_db_connections and db_request_timeout_ms must be positive".into()));
        }
        settings.check_webhook_settings()?;
        if settings.oauth_jwks_timeout_ms == 0 || settings.oauth_clock_skew_seconds > 300 {
            return Err(ConfigError::Invalid(
                "oauth_jwks_timeout_ms must be positive and oauth_clock_skew_seconds at most 300".into(),
            ));
        }
        if settings.activity_queue == 0 || settings.activity_flush_ms == 0 {
            return Err(ConfigError::Invalid("activity_queue and activity_flush_ms must be positive".into()));
        }
        Ok((settings, warnings))
    }

    /// Every setting's environment name without the `SCIMGATE_` prefix, from the field names.
    fn keys() -> Vec<String> {
        match serde_json::to_value(Settings::default()) {
            Ok(serde_json::Value::Object(fields)) => fields.keys().map(|k| k.to_uppercase()).collect(),
            _ => Vec::new(),
        }
    }

    pub fn database_url(&self) -> Result<DatabaseUrl, domain::sql::UnsupportedDatabaseUrl> {
        self.database_url.expose_secret().parse()
    }

    /// Requests of one tenant doing database work at once: as set, or a quarter of the pool.
    pub fn db_requests_per_tenant(&self) -> usize {
        let n = match self.db_requests_per_tenant {
            // SQLite runs statements on the gateway's own cores: one tenant's second statement
            // at a time would already take the other core from every other tenant.
            0 if matches!(self.database_url().map(|url| url.dialect()), Ok(domain::sql::Dialect::Sqlite)) => 1,
            0 => self.max_db_connections / 4,
            n => n,
        };
        usize::try_from(n.max(1)).unwrap_or(1)
    }

    /// Writes of one tenant doing database work at once while it is alone: as set (at least the
    /// share), or on PostgreSQL the pool less one share, on SQLite the share.
    pub fn db_write_burst_per_tenant(&self) -> usize {
        let share = self.db_requests_per_tenant();
        let sqlite = matches!(self.database_url().map(|url| url.dialect()), Ok(domain::sql::Dialect::Sqlite));
        let n = match self.db_write_burst_per_tenant {
            0 if sqlite => share,
            0 => usize::try_from(self.max_db_connections).unwrap_or(usize::MAX).saturating_sub(share),
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        n.max(share)
    }

    /// PostgreSQL's per-statement time limit, if any.
    pub fn db_statement_timeout(&self) -> Option<std::time::Duration> {
        (self.db_statement_timeout_ms > 0).then(|| std::time::Duration::from_millis(self.db_statement_timeout_ms))
    }

    /// The sustained rate of a tenant without a limit of its own, if tenants are limited.
    pub fn default_rate_per_second(&self) -> Option<u32> {
        self.default_quota().map(|q| q.per_second.get())
    }

    /// The limit of a tenant without one of its own.
    pub fn default_quota(&self) -> Option<RateLimit> {
        RateLimit::new(self.rate_limit_per_second, self.rate_limit_burst)
    }

    fn check_webhook_settings(&self) -> Result<(), ConfigError> {
        let positive = [
            ("webhook_max_attempts", u64::from(self.webhook_max_attempts)),
            ("webhook_backoff_base_ms", self.webhook_backoff_base_ms),
            ("webhook_timeout_ms", self.webhook_timeout_ms),
            ("webhook_batch_size", u64::from(self.webhook_batch_size)),
            ("webhook_poll_ms", self.webhook_poll_ms),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::Invalid(format!("{name} must be positive")));
        }
        if self.webhook_backoff_max_ms < self.webhook_backoff_base_ms {
            return Err(ConfigError::Invalid("webhook_backoff_max_ms must be at least webhook_backoff_base_ms".into()));
        }
        if self.webhook_batch_size > MAX_WEBHOOK_BATCH {
            return Err(ConfigError::Invalid(format!("webhook_batch_size must be at most {MAX_WEBHOOK_BATCH}")));
        }
        Ok(())
    }

    /// The URL operators paste into their IdP, for messages.
    pub fn public_base(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen)).trim_end_matches('/').to_owned()
    }
}

// Settings are serialized only to seed figment with the defaults and the flags, and to list the
// setting names: never to be shown.
fn expose<S: serde::Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

fn expose_optional<S: serde::Serializer>(secret: &Option<SecretString>, serializer: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => serializer.serialize_some(secret.expose_secret()),
        None => serializer.serialize_none(),
    }
}

fn parse_scalar(v: &str) -> figment::value::Value {
    match (v.parse::<u64>(), v.parse::<bool>()) {
        (Ok(n), _) => figment::value::Value::from(n),
        (_, Ok(b)) => figment::value::Value::from(b),
        _ => figment::value::Value::from(v.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>().into_iter()
    }

    #[test]
    fn defaults_then_env_then_flags() {
        let s = Settings::load_from(None, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(s.database_url.expose_secret(), "sqlite://scimgate.db");
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");

        let s = Settings::load_from(
            None,
            env(&[("SCIMGATE_LISTEN", "0.0.0.0:9000"), ("SCIMGATE_MAX_RESULTS", "50")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(s.max_results, 50);

        let flags = Overrides { listen: Some("127.0.0.1:1".parse().unwrap()), ..Overrides::default() };
        let s = Settings::load_from(None, env(&[("SCIMGATE_LISTEN", "0.0.0.0:9000")]), &flags).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:1");
    }

    #[test]
    fn secrets_can_come_from_files_but_not_twice() {
        let dir = std::env::temp_dir().join(format!("scimgate-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("db-url");
        std::fs::write(&file, "postgres://u:pw@db/scim\n").unwrap();
        let path = file.to_string_lossy().to_string();
        let s =
            Settings::load_from(None, env(&[("SCIMGATE_DATABASE_URL_FILE", &path)]), &Overrides::default()).unwrap();
        assert_eq!(s.database_url.expose_secret(), "postgres://u:pw@db/scim");
        assert!(!format!("{s:?}").contains("pw@"), "Debug must hide the password");

        let both = env(&[("SCIMGATE_DATABASE_URL_FILE", &path), ("SCIMGATE_DATABASE_URL", "sqlite://x.db")]);
        let err = Settings::load_from(None, both, &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("not both"), "{err}");
    }

    #[test]
    fn webhook_settings_come_from_the_environment_and_are_checked() {
        let s = Settings::load_from(
            None,
            env(&[("SCIMGATE_WEBHOOK_MAX_ATTEMPTS", "3"), ("SCIMGATE_WEBHOOK_WORKERS", "0")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!((s.webhook_max_attempts, s.webhook_workers, s.webhook_batch_size), (3, 0, 100));
        for (key, value, message) in [
            ("SCIMGATE_WEBHOOK_MAX_ATTEMPTS", "0", "webhook_max_attempts must be positive"),
            ("SCIMGATE_WEBHOOK_BATCH_SIZE", "5000", "webhook_batch_size must be at most"),
            ("SCIMGATE_WEBHOOK_BACKOFF_MAX_MS", "10", "webhook_backoff_max_ms must be at least"),
        ] {
            let err = Settings::load_from(None, env(&[(key, value)]), &Overrides::default()).unwrap_err().to_string();
            assert!(err.contains(message), "{key}={value}: {err}");
        }
    }

    #[test]
    fn a_tenant_gets_a_quarter_of_the_pool_or_one_turn_on_sqlite_unless_told_otherwise() {
        let s = Settings::load_from(
            None,
            env(&[("SCIMGATE_DATABASE_URL", "postgres://db/scimgate")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!((s.db_requests_per_tenant(), s.db_statement_timeout()), (2, Some(Duration::from_secs(20))));
        assert_eq!(s.db_write_burst_per_tenant(), 8, "a tenant alone writes on the pool less one share");
        let s = Settings::load_from(None, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(s.db_requests_per_tenant(), 1, "SQLite, the default store");
        assert_eq!(s.db_write_burst_per_tenant(), 1, "one writer anyway");
        let s = Settings::load_from(None, env(&[("SCIMGATE_MAX_DB_CONNECTIONS", "1")]), &Overrides::default()).unwrap();
        assert_eq!(s.db_requests_per_tenant(), 1);
        let s = Settings::load_from(
            None,
            env(&[("SCIMGATE_DB_REQUESTS_PER_TENANT", "3"), ("SCIMGATE_DB_STATEMENT_TIMEOUT_MS", "0")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!((s.db_requests_per_tenant(), s.db_statement_timeout()), (3, None));
    }

    #[test]
    fn a_bad_database_url_names_the_setting() {
        let err = Settings::load_from(None, env(&[("SCIMGATE_DATABASE_URL", "mysql://h/db")]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("SCIMGATE_DATABASE_URL"), "{err}");
    }

    #[test]
    fn switches_and_retention_come_from_the_environment() {
        let s = Settings::load_from(None, env(&[]), &Overrides::default()).unwrap();
        assert_eq!((s.log_filter_values, s.event_retention_days), (false, 90));
        let s = Settings::load_from(
            None,
            env(&[("SCIMGATE_LOG_FILTER_VALUES", "true"), ("SCIMGATE_EVENT_RETENTION_DAYS", "0")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!((s.log_filter_values, s.event_retention_days), (true, 0));
        let err = Settings::load_from(None, env(&[("SCIMGATE_LOG_FILTER_VALUES", "yes")]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("log_filter_values"), "{err}");
    }

    #[test]
    fn the_activity_log_is_on_and_bounded_unless_told_otherwise() {
        let s = Settings::load_from(None, env(&[]), &Overrides::default()).unwrap();
        assert_eq!((s.activity_log, s.activity_retention_days, s.activity_max_per_tenant), (true, 30, 100_000));
        let s = Settings::load_from(
            None,
            env(&[
                ("SCIMGATE_ACTIVITY_LOG", "false"),
                ("SCIMGATE_ACTIVITY_RETENTION_DAYS", "7"),
                ("SCIMGATE_ACTIVITY_MAX_PER_TENANT", "500"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!((s.activity_log, s.activity_retention_days, s.activity_max_per_tenant), (false, 7, 500));
        let err = Settings::load_from(None, env(&[("SCIMGATE_ACTIVITY_QUEUE", "0")]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("activity_queue"), "{err}");
    }

    #[test]
    fn metrics_listen_is_an_address_or_off() {
        let s = Settings::load_from(None, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(s.metrics_listen, MetricsListen::Address("127.0.0.1:9464".parse().unwrap()));
        let s = Settings::load_from(None, env(&[("SCIMGATE_METRICS_LISTEN", "off")]), &Overrides::default()).unwrap();
        assert_eq!(s.metrics_listen, MetricsListen::Off);
        let s = Settings::load_from(
            None,
            env(&[("SCIMGATE_METRICS_LISTEN", "0.0.0.0:9100"), ("SCIMGATE_DRAIN_SECONDS", "15")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(s.metrics_listen, MetricsListen::Address("0.0.0.0:9100".parse().unwrap()));
        assert_eq!(s.drain_seconds, 15);
        let err = Settings::load_from(None, env(&[("SCIMGATE_METRICS_LISTEN", "9090")]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("host:port") && err.contains("off"), "{err}");
    }
}
