use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, RateLimiter};

/// How many failed authentications a client address may make: `burst` at once, then one every
/// `refill`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureQuota {
    pub burst: NonZeroU32,
    pub refill: Duration,
}

/// Failed authentications per client address. An address over its budget is refused (429) before
/// any database or Argon2 work until the budget refills, so guessing tokens buys no CPU. Kept per
/// process: it is a brake on one client, and must not depend on Redis being up.
pub struct FailureLimiter {
    failures: DefaultKeyedRateLimiter<IpAddr>,
    blocked: moka::sync::Cache<IpAddr, Instant>,
    clock: DefaultClock,
}

impl FailureLimiter {
    pub fn new(quota: FailureQuota) -> Self {
        let period = quota.refill.max(Duration::from_millis(1));
        let gcra = governor::Quota::with_period(period).map(|q| q.allow_burst(quota.burst));
        let gcra = gcra.unwrap_or_else(|| governor::Quota::per_second(quota.burst));
        Self {
            failures: RateLimiter::keyed(gcra),
            blocked: moka::sync::Cache::builder().time_to_live(period.saturating_mul(quota.burst.get())).build(),
            clock: DefaultClock::default(),
        }
    }

    /// How long `ip` must still wait, if it is blocked.
    pub fn blocked_for(&self, ip: IpAddr) -> Option<Duration> {
        let until = self.blocked.get(&ip)?;
        until.checked_duration_since(Instant::now())
    }

    /// Count a failed authentication from `ip`; past the budget the address is blocked until a
    /// failure would be allowed again.
    pub fn record_failure(&self, ip: IpAddr) {
        if let Err(not_until) = self.failures.check_key(&ip) {
            let wait = not_until.wait_time_from(self.clock.now());
            self.blocked.insert(ip, Instant::now() + wait);
        }
    }

    /// Drop the state of addresses that have not failed lately.
    pub fn evict_idle(&self) {
        self.failures.retain_recent();
        self.blocked.run_pending_tasks();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_burst_of_failures_and_others_are_not() {
        let limiter =
            FailureLimiter::new(FailureQuota { burst: NonZeroU32::new(3).unwrap(), refill: Duration::from_secs(60) });
        let attacker: IpAddr = "203.0.113.7".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.blocked_for(attacker).is_none());
            limiter.record_failure(attacker);
        }
        assert!(limiter.blocked_for(attacker).is_none(), "three failures are within the burst");
        limiter.record_failure(attacker);
        let wait = limiter.blocked_for(attacker).expect("the fourth failure blocks");
        assert!(wait <= Duration::from_secs(60));
        assert!(limiter.blocked_for("203.0.113.8".parse().unwrap()).is_none());
    }
}
