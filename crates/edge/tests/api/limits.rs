//! Per-tenant rate limits, in one process and shared by replicas through Redis.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{
    admin_json, assert_scim_error, eventually, issue_token, plain_json, shared_redis, PrivateRedis, TestApp,
};

async fn set_limit(app: &TestApp, per_second: u32, burst: u32) {
    let body = json!({"rate_limit": {"per_second": per_second, "burst": burst}});
    let (status, tenant) =
        admin_json(app.admin(Method::PATCH, &format!("/tenants/{}", app.org), Some(&body)).await).await;
    assert_eq!((status, &tenant["rate_limit"]["source"]), (200, &json!("tenant")), "{tenant}");
}

/// Statuses of `n` quick `GET /Users` with `token`, spread round-robin over `apps`.
async fn burst(apps: &[&TestApp], token: &str, n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..n {
        statuses.push(apps[i % apps.len()].status_with(token).await);
    }
    statuses
}

fn allowed(statuses: &[u16]) -> u64 {
    statuses.iter().filter(|s| **s == 200).count() as u64
}

async fn over_the_limit_is_429_with_retry_after(app: TestApp) {
    set_limit(&app, 1, 3).await;
    let started = Instant::now();
    let statuses = burst(&[&app], &app.token, 6).await;
    let refills = started.elapsed().as_secs() + 1;
    assert!(allowed(&statuses) >= 3 && allowed(&statuses) <= 3 + refills, "{statuses:?}");
    let response = app.client.get(app.url("/Users")).bearer_auth(&app.token).send().await.unwrap();
    if response.status() == 429 {
        let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert_eq!(retry_after, 1, "integer seconds, rounded up");
        assert_scim_error(response, 429, None).await;
    }
    assert!(statuses.contains(&429), "{statuses:?}");

    // Another tenant on the same gateway is not slowed by this one's burst.
    let other = format!("{}-b", app.org);
    let other_token = issue_token(&app.store, &other, token::Scopes::all()).await;
    let url = format!("{}/scim/v2/{other}/Users", app.address);
    for _ in 0..5 {
        assert_eq!(app.client.get(&url).bearer_auth(&other_token).send().await.unwrap().status(), 200);
    }

    // Back to the default limit: generous again.
    let body = json!({"rate_limit": null});
    let (status, tenant) =
        admin_json(app.admin(Method::PATCH, &format!("/tenants/{}", app.org), Some(&body)).await).await;
    assert_eq!((status, &tenant["rate_limit"]["source"]), (200, &json!("default")));
    assert!(allowed(&burst(&[&app], &app.token, 10).await) == 10);
}

async fn replicas_sharing_redis_enforce_one_limit(app: TestApp) {
    let Some(redis) = shared_redis() else { return };
    let replica = app.spawn_replica(|s| s.redis_url = Some(redis.clone().into())).await;
    let first = app.spawn_replica(|s| s.redis_url = Some(redis.clone().into())).await;
    set_limit(&app, 1, 4).await;
    let started = Instant::now();
    let statuses = burst(&[&first, &replica], &app.token, 12).await;
    // One budget of 4 (plus refills) between the two; separate budgets would allow 8.
    let refills = started.elapsed().as_secs() + 1;
    assert!(allowed(&statuses) >= 4 && allowed(&statuses) <= 4 + refills, "{statuses:?}");
    let (_, ready) = plain_json(first.client.get(format!("{}/readyz", first.address)).send().await.unwrap()).await;
    assert_eq!(ready["checks"]["redis"], "ok");
}

async fn regeneration_on_one_replica_refuses_the_old_token_on_the_other(app: TestApp) {
    let redis = shared_redis();
    let other = app.spawn_replica(|s| s.redis_url = redis.clone().map(Into::into)).await;
    assert_eq!(other.status_with(&app.token).await, 200, "warms the other replica's cache");
    let path = format!("/tenants/{}/tokens/regenerate", app.org);
    let (status, body) = admin_json(app.admin(Method::POST, &path, None).await).await;
    assert_eq!(status, 201);
    // On PostgreSQL the other replica learns of it by a notice as the regeneration commits.
    assert!(other.refused_soon(&app.token).await, "the other replica still accepts the old token");
    assert_eq!(other.status_with(body["token"].as_str().unwrap()).await, 200);
}

async fn requests_keep_succeeding_when_redis_stops(app: TestApp) {
    let Some(mut redis) = PrivateRedis::start() else { return };
    let gateway = app
        .spawn_replica(|s| {
            s.redis_url = Some(redis.url().into());
            s.redis_timeout_ms = 200;
        })
        .await;
    let readiness = || async {
        let response = gateway.client.get(format!("{}/readyz", gateway.address)).send().await.unwrap();
        plain_json(response).await
    };
    assert_eq!(gateway.status_with(&app.token).await, 200);
    assert_eq!(readiness().await.1["checks"]["redis"], "ok");

    redis.stop();
    for _ in 0..20 {
        assert_eq!(gateway.status_with(&app.token).await, 200, "the gateway keeps serving without Redis");
    }
    let (status, ready) = readiness().await;
    assert_eq!(status, 200, "still ready: limits fall back to this process");
    assert!(ready["checks"]["redis"].as_str().unwrap().starts_with("unreachable"), "{ready}");

    redis.resume().unwrap();
    let recovered =
        eventually(Duration::from_secs(15), || async { readiness().await.1["checks"]["redis"] == "ok" }).await;
    assert!(recovered, "the gateway goes back to Redis by itself");
    assert_eq!(gateway.status_with(&app.token).await, 200);
}

both_backends!(
    over_the_limit_is_429_with_retry_after,
    replicas_sharing_redis_enforce_one_limit,
    regeneration_on_one_replica_refuses_the_old_token_on_the_other,
    requests_keep_succeeding_when_redis_stops,
);
