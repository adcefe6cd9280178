use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, RateLimiter};

use super::{Decision, Quota};

/// Tenant limits in this process: one governor GCRA per tenant, made with that tenant's quota
/// (governor has no per-key quotas in its keyed limiter). A tenant whose quota changes gets a
/// fresh limiter.
#[derive(Clone)]
pub struct LocalLimiter {
    limiters: moka::sync::Cache<String, Arc<Limiter>>,
    clock: DefaultClock,
}

struct Limiter {
    quota: Quota,
    gcra: DefaultDirectRateLimiter,
}

impl Default for LocalLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalLimiter {
    pub fn new() -> Self {
        Self {
            // An idle tenant's state is dropped: a limiter that has been idle longer than its
            // burst window is full again anyway.
            limiters: moka::sync::Cache::builder().time_to_idle(Duration::from_secs(600)).build(),
            clock: DefaultClock::default(),
        }
    }

    pub fn check(&self, key: &str, quota: Quota) -> Decision {
        let limiter = match self.limiters.get(key) {
            Some(limiter) if limiter.quota == quota => limiter,
            _ => {
                let gcra_quota = governor::Quota::per_second(quota.per_second).allow_burst(quota.burst);
                let limiter = Arc::new(Limiter { quota, gcra: RateLimiter::direct(gcra_quota) });
                self.limiters.insert(key.to_owned(), limiter.clone());
                limiter
            }
        };
        match limiter.gcra.check() {
            Ok(()) => Decision::Allowed,
            Err(not_until) => Decision::Limited { retry_after: not_until.wait_time_from(self.clock.now()) },
        }
    }

    pub(crate) fn evict_idle(&self) {
        self.limiters.run_pending_tasks();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_with_a_wait() {
        let limiter = LocalLimiter::new();
        let quota = Quota::new(1, 3).unwrap();
        for _ in 0..3 {
            assert_eq!(limiter.check("acme", quota), Decision::Allowed);
        }
        match limiter.check("acme", quota) {
            Decision::Limited { retry_after } => assert!(retry_after <= Duration::from_secs(1)),
            Decision::Allowed => panic!("the fourth request of a burst of three must be refused"),
        }
    }

    #[test]
    fn tenants_do_not_share_a_budget() {
        let limiter = LocalLimiter::new();
        let quota = Quota::new(1, 1).unwrap();
        assert_eq!(limiter.check("acme", quota), Decision::Allowed);
        assert!(matches!(limiter.check("acme", quota), Decision::Limited { .. }));
        assert_eq!(limiter.check("globex", quota), Decision::Allowed);
    }

    #[test]
    fn a_changed_quota_takes_effect_at_once() {
        let limiter = LocalLimiter::new();
        let tight = Quota::new(1, 1).unwrap();
        assert_eq!(limiter.check("acme", tight), Decision::Allowed);
        assert!(matches!(limiter.check("acme", tight), Decision::Limited { .. }));
        assert_eq!(limiter.check("acme", Quota::new(100, 100).unwrap()), Decision::Allowed);
    }
}
