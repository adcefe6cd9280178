use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, RateLimiter};

/// How many failed authentications a client address may make: per target (`burst` at once, then
/// one every `refill`), and across all targets together (`address_burst`, then one every
/// `address_refill`), a much higher ceiling against spraying many tenants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureQuota {
    pub burst: NonZeroU32,
    pub refill: Duration,
    pub address_burst: NonZeroU32,
    pub address_refill: Duration,
}

/// What a failure is aimed at: the tenant named in the URL, or the admin API (`""`).
type Target = (IpAddr, Box<str>);

/// Failed authentications per client address and target. An address over its budget for a
/// target is refused (429) before any database or Argon2 work until the budget refills, so
/// guessing tokens buys no CPU; failures aimed at one tenant never refuse a valid token of
/// another, even when many clients share an address (a NAT, a proxy). Kept per process: it is a
/// brake on one client, and must not depend on Redis being up.
pub struct FailureLimiter {
    per_target: Keyed<Target>,
    per_address: Keyed<IpAddr>,
}

struct Keyed<K: std::hash::Hash + Eq + Clone + Send + Sync + 'static> {
    failures: DefaultKeyedRateLimiter<K>,
    blocked: moka::sync::Cache<K, Instant>,
    clock: DefaultClock,
}

impl<K: std::hash::Hash + Eq + Clone + Send + Sync + 'static> Keyed<K> {
    fn new(burst: NonZeroU32, refill: Duration) -> Self {
        let period = refill.max(Duration::from_millis(1));
        let gcra = governor::Quota::with_period(period).map(|q| q.allow_burst(burst));
        let gcra = gcra.unwrap_or_else(|| governor::Quota::per_second(burst));
        Self {
            failures: RateLimiter::keyed(gcra),
            // Bounded: keys include a client-chosen tenant name.
            blocked: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(period.saturating_mul(burst.get()))
                .build(),
            clock: DefaultClock::default(),
        }
    }

    fn blocked_for(&self, key: &K) -> Option<Duration> {
        let until = self.blocked.get(key)?;
        until.checked_duration_since(Instant::now())
    }

    fn record_failure(&self, key: K) {
        if let Err(not_until) = self.failures.check_key(&key) {
            let wait = not_until.wait_time_from(self.clock.now());
            self.blocked.insert(key, Instant::now() + wait);
        }
    }

    fn evict_idle(&self) {
        self.failures.retain_recent();
        self.blocked.run_pending_tasks();
    }
}

impl FailureLimiter {
    pub fn new(quota: FailureQuota) -> Self {
        Self {
            per_target: Keyed::new(quota.burst, quota.refill),
            per_address: Keyed::new(quota.address_burst, quota.address_refill),
        }
    }

    /// How long `ip` must still wait before it may authenticate to `target` (a tenant name, or
    /// `""` for the admin API), if it is blocked.
    pub fn blocked_for(&self, ip: IpAddr, target: &str) -> Option<Duration> {
        let for_target = self.per_target.blocked_for(&(ip, target.into()));
        let for_address = self.per_address.blocked_for(&ip);
        for_target.max(for_address)
    }

    /// Count a failed authentication from `ip` aimed at `target`; past a budget the address is
    /// blocked (for that target, or for every target past the address ceiling) until a failure
    /// would be allowed again.
    pub fn record_failure(&self, ip: IpAddr, target: &str) {
        self.per_target.record_failure((ip, target.into()));
        self.per_address.record_failure(ip);
    }

    /// Drop the state of addresses that have not failed lately.
    pub fn evict_idle(&self) {
        self.per_target.evict_idle();
        self.per_address.evict_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(burst: u32, address_burst: u32) -> FailureLimiter {
        FailureLimiter::new(FailureQuota {
            burst: NonZeroU32::new(burst).unwrap(),
            refill: Duration::from_secs(60),
            address_burst: NonZeroU32::new(address_burst).unwrap(),
            address_refill: Duration::from_secs(60),
        })
    }

    #[test]
    fn an_address_is_blocked_for_one_tenant_after_its_burst_and_not_for_others() {
        let limiter = limiter(3, 100);
        let attacker: IpAddr = "203.0.113.7".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.blocked_for(attacker, "acme").is_none());
            limiter.record_failure(attacker, "acme");
        }
        assert!(limiter.blocked_for(attacker, "acme").is_none(), "three failures are within the burst");
        limiter.record_failure(attacker, "acme");
        let wait = limiter.blocked_for(attacker, "acme").expect("the fourth failure blocks");
        assert!(wait <= Duration::from_secs(60));
        assert!(limiter.blocked_for(attacker, "globex").is_none(), "another tenant from the same address");
        assert!(limiter.blocked_for(attacker, "").is_none(), "the admin API from the same address");
        assert!(limiter.blocked_for("203.0.113.8".parse().unwrap(), "acme").is_none());
    }

    #[test]
    fn spraying_many_tenants_hits_the_address_ceiling() {
        let limiter = limiter(3, 10);
        let sprayer: IpAddr = "203.0.113.9".parse().unwrap();
        for i in 0..11 {
            limiter.record_failure(sprayer, &format!("tenant-{i}"));
        }
        assert!(limiter.blocked_for(sprayer, "tenant-99").is_some(), "every tenant, once over the ceiling");
        assert!(limiter.blocked_for("203.0.113.10".parse().unwrap(), "tenant-99").is_none());
    }
}
