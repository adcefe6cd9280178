//! scimgate rate limits: per tenant (so one tenant's burst never slows another), and per client
//! address on failed authentication (so random tokens cannot buy Argon2 time).
//!
//! Tenant limits are GCRA, in process with governor; with Redis configured, a GCRA in a Lua script
//! on the Redis server makes one limit hold across every replica. When Redis cannot be reached,
//! the limiter falls back to the local limits at once, says so once per outage, and goes back to
//! Redis by itself when it answers again.

#![forbid(unsafe_code)]

mod failures;
mod local;
mod redis;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use self::failures::{FailureLimiter, FailureQuota};
pub use self::local::LocalLimiter;
pub use self::redis::RedisLimiter;

/// A sustained rate and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Quota {
    /// `None` when either number is zero: a quota that refuses everything is a tenant delete,
    /// not a limit.
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        Some(Self { per_second: NonZeroU32::new(per_second)?, burst: NonZeroU32::new(burst)? })
    }
}

/// What a limiter says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Over the limit; a request after `retry_after` would be allowed.
    Limited {
        retry_after: Duration,
    },
}

impl Decision {
    /// Whole seconds for a `Retry-After` header: rounded up, at least one (Okta honours only
    /// integer seconds).
    pub fn retry_after_seconds(retry_after: Duration) -> u64 {
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        secs.max(1)
    }
}

/// Where tenant limits are kept right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitBackend {
    /// No Redis configured: each process limits on its own.
    Local,
    /// Redis answers: one limit across every replica.
    Redis,
    /// Redis is configured but unreachable: local limits until it answers again.
    RedisUnavailable,
}

impl LimitBackend {
    pub fn describe(self) -> &'static str {
        match self {
            LimitBackend::Local => "not configured (limits per process)",
            LimitBackend::Redis => "ok",
            LimitBackend::RedisUnavailable => "unreachable (falling back to limits per process)",
        }
    }
}

/// Tenant limits, shared across replicas through Redis when one is configured.
pub struct TenantLimiter {
    local: LocalLimiter,
    redis: Option<Arc<RedisLimiter>>,
    /// Set while Redis fails; requests then go straight to the local limits instead of waiting
    /// on a dead connection, and a probe brings Redis back.
    redis_down: Arc<AtomicBool>,
}

impl TenantLimiter {
    pub fn local() -> Self {
        Self { local: LocalLimiter::new(), redis: None, redis_down: Arc::new(AtomicBool::new(false)) }
    }

    /// Limits kept in `redis`. Run [`TenantLimiter::maintenance`] beside it.
    pub fn with_redis(redis: RedisLimiter) -> Self {
        Self { local: LocalLimiter::new(), redis: Some(Arc::new(redis)), redis_down: Arc::new(AtomicBool::new(false)) }
    }

    pub fn backend(&self) -> LimitBackend {
        match (&self.redis, self.redis_down.load(Ordering::Relaxed)) {
            (None, _) => LimitBackend::Local,
            (Some(_), false) => LimitBackend::Redis,
            (Some(_), true) => LimitBackend::RedisUnavailable,
        }
    }

    /// Count one request of the tenant `key` against `quota`.
    #[tracing::instrument(name = "limit.check", skip_all, fields(tenant = key))]
    pub async fn check(&self, key: &str, quota: Quota) -> Decision {
        if let Some(redis) = &self.redis {
            if !self.redis_down.load(Ordering::Relaxed) {
                match redis.check(key, quota).await {
                    Ok(decision) => return decision,
                    Err(e) => {
                        // Logged once per outage: the flag flips only here and in the probe.
                        if !self.redis_down.swap(true, Ordering::Relaxed) {
                            tracing::warn!(error = %e, "Redis unreachable: rate limits fall back to this process until it answers");
                        }
                    }
                }
            }
        }
        self.local.check(key, quota)
    }

    /// While Redis is down, ping it every `every` and switch back when it answers. Also evicts
    /// idle local limiters. Never ends: the caller drops it at shutdown (a ping cut short is
    /// harmless).
    pub fn maintenance(&self, every: Duration) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (redis, down) = (self.redis.clone(), self.redis_down.clone());
        let local = self.local.clone();
        async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                local.evict_idle();
                let Some(redis) = &redis else { continue };
                if down.load(Ordering::Relaxed) && redis.ping().await.is_ok() {
                    down.store(false, Ordering::Relaxed);
                    tracing::info!("Redis reachable again: rate limits are shared across replicas");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(Decision::retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(Decision::retry_after_seconds(Duration::from_millis(1000)), 1);
        assert_eq!(Decision::retry_after_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(Decision::retry_after_seconds(Duration::ZERO), 1);
    }

    #[test]
    fn zero_quotas_are_not_quotas() {
        assert!(Quota::new(0, 10).is_none());
        assert!(Quota::new(10, 0).is_none());
        assert_eq!(Quota::new(25, 100).map(|q| (q.per_second.get(), q.burst.get())), Some((25, 100)));
    }
}
