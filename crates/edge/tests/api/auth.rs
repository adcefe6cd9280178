use std::time::Duration;

use domain::testing::Backend;
use domain::{TenantName, TokenOwner, TokenStore};
use reqwest::Method;
use serde_json::json;
use token::{Scope, Scopes, TokenId};

use crate::both_backends;
use crate::helpers::{
    admin_json, assert_scim_error, eventually, forged, issue, issue_token, spawn_app, spawn_app_with, status_json,
    TestApp,
};

both_backends!(
    requests_without_a_valid_token_are_401,
    revoked_and_regenerated_tokens_stop_working_at_once,
    a_token_revoked_by_another_process_stops_working,
    regeneration_can_leave_earlier_tokens_a_grace_period,
    expired_tokens_are_refused,
    scopes_limit_what_a_token_may_do,
    operator_and_tenant_tokens_open_only_their_own_api,
    an_org_in_the_wrong_case_is_its_lowercase_name,
);

fn token_id(plaintext: &str) -> TokenId {
    TokenId::parse(plaintext.split('_').nth(1).unwrap()).unwrap()
}

async fn requests_without_a_valid_token_are_401(app: TestApp) {
    let url = app.url("/Users");
    let response = app.client.get(&url).send().await.unwrap();
    assert!(response.headers().contains_key("www-authenticate"));
    assert_scim_error(response, 401, None).await;
    for bad in [
        "garbage",
        "scimgate_AAAAAAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB_000000",
        &app.token[..app.token.len() - 1],
    ] {
        let response = app.client.get(&url).bearer_auth(bad).send().await.unwrap();
        assert_scim_error(response, 401, None).await;
    }
    // A well-formed token whose secret is wrong: the id exists, the secret does not match.
    let response = app.client.get(&url).bearer_auth(forged(&app.token)).send().await.unwrap();
    assert_scim_error(response, 401, None).await;
    // A tenant that does not exist looks the same as one the token is not for.
    let response = app
        .client
        .get(format!("{}/scim/v2/no-such-org/Users", app.address))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_scim_error(response, 401, None).await;
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    let response = app.client.get(&url).header("authorization", format!("bearer {}", app.token)).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

async fn revoked_and_regenerated_tokens_stop_working_at_once(app: TestApp) {
    assert_eq!(app.status_with(&app.token).await, 200, "warms the verification cache");
    let (status, body) =
        admin_json(app.admin(Method::POST, &format!("/tenants/{}/tokens/regenerate", app.org), None).await).await;
    assert_eq!(status, 201, "{body}");
    let new = body["token"].as_str().unwrap().to_owned();
    assert_eq!(app.status_with(&app.token).await, 401, "the old token stops at once despite the cache");
    assert_eq!(app.status_with(&new).await, 200);

    let revoke = format!("/tenants/{}/tokens/{}", app.org, token_id(&new));
    assert_eq!(app.admin(Method::DELETE, &revoke, None).await.status(), 204);
    assert_scim_error(app.client.get(app.url("/Users")).bearer_auth(&new).send().await.unwrap(), 401, None).await;
}

async fn a_token_revoked_by_another_process_stops_working(app: TestApp) {
    assert_eq!(app.status_with(&app.token).await, 200);
    // `app.store` is not the gateway's own: it stands for another replica, or the CLI.
    let tenant = TenantName::parse(&app.org).unwrap();
    app.store.revoke_token(TokenOwner::Tenant(&tenant), &token_id(&app.token)).await.unwrap();
    // SQLite is read on every request; PostgreSQL notifies the gateway as the revocation commits.
    assert!(app.refused_soon(&app.token).await, "the gateway still accepts a token another process revoked");
}

/// On PostgreSQL the gateway keeps token records in memory while it follows their changes: a
/// change nobody is told of goes unseen, a notified one is seen, and once the connection that
/// follows them is lost nothing kept counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_token_records_are_kept_until_a_change_is_notified() {
    let Some(app) = spawn_app(Backend::Postgres).await else { return };
    const LISTENER: &str = "FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'";
    let following = || async { app.db().scalar(&format!("SELECT count(*) {LISTENER}")).await.unwrap() == 1 };
    assert!(eventually(Duration::from_secs(10), following).await, "the gateway follows token changes");

    assert_eq!(app.status_with(&app.token).await, 200);
    app.db().execute(&unnoticed("scopes = 'groups:read'", &app.token)).await.unwrap();
    assert_eq!(app.status_with(&app.token).await, 200, "the record is kept, not read again");
    let tenant = TenantName::parse(&app.org).unwrap();
    app.store.revoke_token(TokenOwner::Tenant(&tenant), &token_id(&app.token)).await.unwrap();
    assert!(
        app.refused_soon(&app.token).await,
        "a notified revocation is seen within moments, not at the records' expiry"
    );

    let second = issue_token(&app.store, &app.org, Scopes::all()).await;
    assert_eq!(app.status_with(&second).await, 200);
    app.db().execute(&format!("SELECT pg_terminate_backend(pid) {LISTENER}")).await.unwrap();
    app.db().execute(&unnoticed("revoked_at = 1", &second)).await.unwrap();
    assert!(app.refused_soon(&second).await, "after a lost connection no record from before counts");
    assert!(eventually(Duration::from_secs(10), following).await, "and the gateway listens again");
}

/// SQL that sets `change` on `token`'s row with the triggers off (`session_replication_role`), so
/// that it notifies nobody.
fn unnoticed(change: &str, token: &str) -> String {
    format!("SET session_replication_role = replica; UPDATE tokens SET {change} WHERE id = '{}'", token_id(token))
}

/// `SCIMGATE_FOLLOW_TOKEN_CHANGES=false` (behind a pooler without LISTEN): every request reads its
/// token, so even a change nobody is told of is seen at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_without_following_changes_every_request_reads_its_token() {
    let Some(app) = spawn_app_with(Backend::Postgres, |s| s.follow_token_changes = false).await else { return };
    assert_eq!(app.status_with(&app.token).await, 200);
    app.db().execute(&unnoticed("scopes = 'groups:read'", &app.token)).await.unwrap();
    assert_scim_error(app.client.get(app.url("/Users")).bearer_auth(&app.token).send().await.unwrap(), 403, None).await;
}

async fn regeneration_can_leave_earlier_tokens_a_grace_period(app: TestApp) {
    let path = format!("/tenants/{}/tokens/regenerate", app.org);
    let (status, body) = admin_json(app.admin(Method::POST, &path, Some(&json!({"grace_period": "2s"}))).await).await;
    assert_eq!(status, 201, "{body}");
    let new = body["token"].as_str().unwrap().to_owned();
    assert_eq!(app.status_with(&app.token).await, 200, "the old token works during the grace period");
    assert_eq!(app.status_with(&new).await, 200);
    let (_, listed) = admin_json(app.admin(Method::GET, &format!("/tenants/{}/tokens", app.org), None).await).await;
    let states: Vec<&str> = listed["tokens"].as_array().unwrap().iter().map(|t| t["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["grace", "active"]);
    let expired = eventually(Duration::from_secs(10), || async { app.status_with(&app.token).await == 401 }).await;
    assert!(expired, "the old token stops when the grace period ends");
    assert_eq!(app.status_with(&new).await, 200);
}

async fn expired_tokens_are_refused(app: TestApp) {
    let tenant = TenantName::parse(&app.org).unwrap();
    let past = domain::now_micros() - 1_000_000;
    let expired = issue(&app.store, TokenOwner::Tenant(&tenant), Scopes::all(), Some(past)).await;
    assert_scim_error(app.client.get(app.url("/Users")).bearer_auth(&expired).send().await.unwrap(), 401, None).await;

    // Issued through the admin API to expire in a second: works, then stops.
    let path = format!("/tenants/{}/tokens", app.org);
    let (status, body) = admin_json(app.admin(Method::POST, &path, Some(&json!({"expires_in": "1s"}))).await).await;
    assert_eq!(status, 201, "{body}");
    let short = body["token"].as_str().unwrap().to_owned();
    let stopped = eventually(Duration::from_secs(10), || async { app.status_with(&short).await == 401 }).await;
    assert!(stopped, "a token stops working when it expires");
}

async fn scopes_limit_what_a_token_may_do(app: TestApp) {
    let users_only = issue_token(&app.store, &app.org, Scopes::from_iter([Scope::UsersRead, Scope::UsersWrite])).await;
    let read_only = issue_token(&app.store, &app.org, Scopes::from_iter([Scope::UsersRead])).await;
    let body = json!({"schemas": [proto::schema::USER], "userName": "scoped"});
    let response = app.client.post(app.url("/Users")).bearer_auth(&users_only).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let response = app.client.get(app.url("/Groups")).bearer_auth(&users_only).send().await.unwrap();
    assert_scim_error(response, 403, None).await;
    let response = app.client.get(app.url("/Users")).bearer_auth(&read_only).send().await.unwrap();
    let (status, list) = status_json(response).await;
    assert_eq!((status, list["totalResults"].as_u64()), (200, Some(1)));
    let response = app
        .client
        .post(app.url("/Users"))
        .bearer_auth(&read_only)
        .json(&json!({"schemas": [proto::schema::USER], "userName": "nope"}))
        .send()
        .await
        .unwrap();
    assert_scim_error(response, 403, None).await;
}

async fn operator_and_tenant_tokens_open_only_their_own_api(app: TestApp) {
    assert_scim_error(
        app.client.get(app.url("/Users")).bearer_auth(&app.operator_token).send().await.unwrap(),
        401,
        None,
    )
    .await;
    let response =
        app.client.get(format!("{}/admin/v1/tenants", app.address)).bearer_auth(&app.token).send().await.unwrap();
    let (status, problem) = admin_json(response).await;
    assert_eq!((status, problem["status"].as_u64()), (401, Some(401)));
    let (status, _) = admin_json(app.admin(Method::GET, "/tenants", None).await).await;
    assert_eq!(status, 200);
}

// Per-address limits on failed authentication need settings of their own.
mod failures {
    use super::*;

    async fn run(backend: domain::testing::Backend) {
        let Some(app) = spawn_app_with(backend, |s| {
            s.auth_failure_burst = 3;
            s.auth_failure_refill_seconds = 60;
        })
        .await
        else {
            return;
        };
        let forged = forged(&app.token);
        for _ in 0..4 {
            assert_eq!(app.status_with(&forged).await, 401);
        }
        // The address is now refused before any token work, even with a good token.
        let response = app.client.get(app.url("/Users")).bearer_auth(&app.token).send().await.unwrap();
        let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        assert_scim_error(response, 429, None).await;
        // Failures aimed at this tenant refuse nobody else from the same address: not another
        // tenant's valid token, not the admin API.
        let other = format!("{}-b", app.org);
        let other_token = issue_token(&app.store, &other, token::Scopes::all()).await;
        let other_url = format!("{}/scim/v2/{other}/Users", app.address);
        for _ in 0..3 {
            assert_eq!(app.client.get(&other_url).bearer_auth(&other_token).send().await.unwrap().status(), 200);
        }
        let (status, _) = admin_json(app.admin(Method::GET, "/tenants", None).await).await;
        assert_eq!(status, 200, "the admin API is another target");
        // Failures at the admin API have their own budget there.
        for _ in 0..4 {
            let response = app.client.get(format!("{}/admin/v1/tenants", app.address)).bearer_auth(&forged).send();
            assert_eq!(response.await.unwrap().status(), 401);
        }
        let (status, _) = admin_json(app.admin(Method::GET, "/tenants", None).await).await;
        assert_eq!(status, 429, "the admin API refuses the address once it failed there");
        assert_eq!(app.client.get(&other_url).bearer_auth(&other_token).send().await.unwrap().status(), 200);
    }

    async fn spraying(backend: domain::testing::Backend) {
        // One address failing at many tenants reaches the much higher per-address ceiling, and is
        // then refused everywhere.
        let Some(app) = spawn_app_with(backend, |s| {
            s.auth_failure_burst = 3;
            s.auth_failure_refill_seconds = 60;
            s.auth_failure_address_burst = 8;
            s.auth_failure_address_refill_ms = 60_000;
        })
        .await
        else {
            return;
        };
        for i in 0..9 {
            let url = format!("{}/scim/v2/sprayed-{i}/Users", app.address);
            assert_eq!(app.client.get(url).bearer_auth("garbage").send().await.unwrap().status(), 401, "{i}");
        }
        assert_eq!(app.status_with(&app.token).await, 429, "past the address ceiling");
    }

    async fn forwarded_addresses(backend: domain::testing::Backend) {
        // Behind one trusted proxy, each client address has its own budget, and addresses a client
        // writes itself into X-Forwarded-For are not believed.
        let Some(app) = spawn_app_with(backend, |s| {
            s.auth_failure_burst = 1;
            s.trusted_proxy_hops = 1;
        })
        .await
        else {
            return;
        };
        let from =
            |ip: &str| app.client.get(app.url("/Users")).header("x-forwarded-for", format!("198.51.100.1, {ip}"));
        for _ in 0..2 {
            assert_eq!(from("203.0.113.1").bearer_auth("garbage").send().await.unwrap().status(), 401);
        }
        assert_eq!(from("203.0.113.1").bearer_auth(&app.token).send().await.unwrap().status(), 429);
        assert_eq!(from("203.0.113.2").bearer_auth(&app.token).send().await.unwrap().status(), 200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failed_authentications_are_limited_per_address_sqlite() {
        run(domain::testing::Backend::Sqlite).await;
        forwarded_addresses(domain::testing::Backend::Sqlite).await;
        spraying(domain::testing::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failed_authentications_are_limited_per_address_postgres() {
        run(domain::testing::Backend::Postgres).await;
        forwarded_addresses(domain::testing::Backend::Postgres).await;
        spraying(domain::testing::Backend::Postgres).await;
    }
}

async fn an_org_in_the_wrong_case_is_its_lowercase_name(app: TestApp) {
    let upper = app.org.to_uppercase();
    let url = format!("{}/scim/v2/{upper}/Users", app.address);
    let (status, created) = status_json(
        app.client
            .post(&url)
            .bearer_auth(&app.token)
            .header("content-type", "application/scim+json")
            .body(json!({"schemas": [proto::schema::USER], "userName": "case@example.com"}).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let location = created["meta"]["location"].as_str().unwrap();
    assert!(location.contains(&format!("/scim/v2/{}/Users/", app.org)), "the canonical name: {location}");
    assert_eq!(app.client.get(&url).bearer_auth(&app.token).send().await.unwrap().status(), 200);

    let (status, tenant) = admin_json(app.admin(Method::GET, &format!("/tenants/{upper}"), None).await).await;
    assert_eq!((status, tenant["name"].as_str()), (200, Some(app.org.as_str())), "{tenant}");
    let (status, _) = admin_json(app.admin(Method::GET, &format!("/tenants/{upper}/tokens"), None).await).await;
    assert_eq!(status, 200);
}
