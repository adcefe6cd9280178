//! Tenant limits in a real Redis (`SCIMGATE_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`).
//! Skipped with a message when Redis is unreachable, unless `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use limit::{Decision, LimitBackend, Quota, RedisLimiter, TenantLimiter};

fn redis_url() -> String {
    std::env::var("SCIMGATE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A limiter on the test Redis with keys of its own, or `None` (outside CI) without Redis.
async fn limiter(prefix: &str) -> Option<TenantLimiter> {
    let redis = RedisLimiter::new(&redis_url(), prefix, Duration::from_secs(2)).unwrap();
    let limiter = TenantLimiter::with_redis(redis);
    // A first check tells whether Redis answers.
    limiter.check("probe", Quota::new(1000, 1000).unwrap()).await;
    if limiter.backend() == LimitBackend::Redis {
        return Some(limiter);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("Redis is required when CI=true but {} is unreachable", redis_url());
    }
    eprintln!("SKIPPED: Redis not reachable at {}", redis_url());
    None
}

#[tokio::test]
async fn two_limiters_on_one_redis_share_one_budget() {
    let prefix = format!("scimgate-test-{}:", std::process::id());
    let (Some(a), Some(b)) = (limiter(&prefix).await, limiter(&prefix).await) else { return };
    let quota = Quota::new(1, 3).unwrap();
    let started = std::time::Instant::now();
    let mut allowed = 0;
    for i in 0..10 {
        let limiter = if i % 2 == 0 { &a } else { &b };
        if limiter.check("acme", quota).await == Decision::Allowed {
            allowed += 1;
        }
    }
    // A burst of 3, plus one per second elapsed; two separate budgets would allow 6 at once.
    let refills = started.elapsed().as_secs() + 1;
    assert!(allowed >= 3 && allowed <= 3 + refills, "allowed {allowed} of 10");
    match b.check("acme", quota).await {
        Decision::Limited { retry_after } => assert!(retry_after <= Duration::from_secs(1)),
        Decision::Allowed if started.elapsed() >= Duration::from_secs(1) => {}
        Decision::Allowed => panic!("the shared budget is spent"),
    }
    // Another tenant has a budget of its own.
    assert_eq!(a.check("globex", quota).await, Decision::Allowed);
}

#[tokio::test]
async fn an_unreachable_redis_falls_back_to_local_limits() {
    // Nothing listens on port 1.
    let redis = RedisLimiter::new("redis://127.0.0.1:1", "x:", Duration::from_millis(200)).unwrap();
    let limiter = TenantLimiter::with_redis(redis);
    let quota = Quota::new(1, 2).unwrap();
    assert_eq!(limiter.check("acme", quota).await, Decision::Allowed);
    assert_eq!(limiter.backend(), LimitBackend::RedisUnavailable);
    // Still limited, now by this process.
    assert_eq!(limiter.check("acme", quota).await, Decision::Allowed);
    assert!(matches!(limiter.check("acme", quota).await, Decision::Limited { .. }));
}
