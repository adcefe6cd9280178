//! The operators' API, `/admin/v1`, over HTTP.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{admin_json, eventually, TestApp};

both_backends!(
    operators_manage_tenants_and_tokens,
    token_listings_never_show_secrets_and_record_last_use,
    bad_admin_requests_get_problem_details,
    nul_characters_in_admin_requests_are_client_errors,
);

async fn operators_manage_tenants_and_tokens(app: TestApp) {
    let (status, created) =
        admin_json(app.admin(Method::POST, "/tenants", Some(&json!({"name": "acme-admin"}))).await).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], "acme-admin");
    assert_eq!(created["scim_url"], format!("{}/scim/v2/acme-admin", app.address));
    assert_eq!(created["rate_limit"]["source"], "default");

    let (status, listed) = admin_json(app.admin(Method::GET, "/tenants", None).await).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = listed["tenants"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"acme-admin") && names.contains(&app.org.as_str()), "{names:?}");

    let body = json!({"rate_limit": {"per_second": 40, "burst": 120}});
    let (status, updated) = admin_json(app.admin(Method::PATCH, "/tenants/acme-admin", Some(&body)).await).await;
    assert_eq!((status, &updated["rate_limit"]), (200, &json!({"per_second": 40, "burst": 120, "source": "tenant"})));
    let (_, got) = admin_json(app.admin(Method::GET, "/tenants/acme-admin", None).await).await;
    assert_eq!(got["rate_limit"]["per_second"], 40);

    // A token: shown once, works on SCIM, with the scopes asked for.
    let body = json!({"name": "Entra", "scopes": ["users:read", "users:write"], "expires_in": "90d"});
    let response = app.admin(Method::POST, "/tenants/acme-admin/tokens", Some(&body)).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, issued) = admin_json(response).await;
    assert_eq!(status, 201, "{issued}");
    let token = issued["token"].as_str().unwrap().to_owned();
    let users = format!("{}/scim/v2/acme-admin/Users", app.address);
    assert_eq!(app.client.get(&users).bearer_auth(&token).send().await.unwrap().status(), 200);
    let groups = format!("{}/scim/v2/acme-admin/Groups", app.address);
    assert_eq!(app.client.get(&groups).bearer_auth(&token).send().await.unwrap().status(), 403);

    let (_, listed) = admin_json(app.admin(Method::GET, "/tenants/acme-admin/tokens", None).await).await;
    let listed = &listed["tokens"][0];
    assert_eq!(listed["id"], issued["id"]);
    assert_eq!((listed["name"].as_str(), listed["state"].as_str()), (Some("Entra"), Some("active")));
    assert_eq!(listed["scopes"], json!(["users:read", "users:write"]));
    assert!(listed["expires"].as_str().is_some());

    // Revoke: at once.
    let path = format!("/tenants/acme-admin/tokens/{}", issued["id"].as_str().unwrap());
    let (status, _) = admin_json(app.admin(Method::DELETE, &path, None).await).await;
    assert_eq!(status, 204);
    assert_eq!(app.client.get(&users).bearer_auth(&token).send().await.unwrap().status(), 401);
    let (_, listed) = admin_json(app.admin(Method::GET, "/tenants/acme-admin/tokens", None).await).await;
    assert_eq!(listed["tokens"][0]["state"], "revoked");

    // Delete the tenant: its tokens go with it.
    let (_, again) = admin_json(app.admin(Method::POST, "/tenants/acme-admin/tokens", None).await).await;
    let again = again["token"].as_str().unwrap().to_owned();
    let (status, _) = admin_json(app.admin(Method::DELETE, "/tenants/acme-admin", None).await).await;
    assert_eq!(status, 204);
    assert_eq!(app.client.get(&users).bearer_auth(&again).send().await.unwrap().status(), 401);
    let (status, _) = admin_json(app.admin(Method::GET, "/tenants/acme-admin", None).await).await;
    assert_eq!(status, 404);
}

async fn token_listings_never_show_secrets_and_record_last_use(app: TestApp) {
    let replica = app.spawn_replica(|s| s.token_use_flush_seconds = 1).await;
    assert_eq!(replica.status_with(&app.token).await, 200);
    let path = format!("/tenants/{}/tokens", app.org);
    let recorded = eventually(Duration::from_secs(10), || async {
        let (_, listed) = admin_json(app.admin(Method::GET, &path, None).await).await;
        listed["tokens"][0]["last_used"].is_string()
    })
    .await;
    assert!(recorded, "last use is written in the background");
    let response = app.admin(Method::GET, &path, None).await;
    let text = response.text().await.unwrap();
    let secret = app.token.split('_').nth(2).unwrap();
    assert!(!text.contains(secret) && !text.contains("argon2"), "{text}");
}

async fn bad_admin_requests_get_problem_details(app: TestApp) {
    let anonymous = app.client.get(format!("{}/admin/v1/tenants", app.address)).send().await.unwrap();
    assert!(anonymous.headers().contains_key("www-authenticate"));
    assert_eq!(admin_json(anonymous).await.0, 401);

    let cases = [
        (Method::POST, "/tenants".to_owned(), Some(json!({"name": "Not_A_Slug"})), 400, "lowercase"),
        (Method::POST, "/tenants".to_owned(), Some(json!({"name": app.org})), 409, "already exists"),
        (Method::POST, "/tenants".to_owned(), Some(json!({"name": "x", "colour": "red"})), 400, "unknown field"),
        (Method::GET, "/tenants/no-such-org".to_owned(), None, 404, "not found"),
        (
            Method::PATCH,
            format!("/tenants/{}", app.org),
            Some(json!({"rate_limit": {"per_second": 0, "burst": 1}})),
            400,
            "positive",
        ),
        (Method::POST, format!("/tenants/{}/tokens", app.org), Some(json!({"scopes": ["root"]})), 400, "unknown scope"),
        (
            Method::POST,
            format!("/tenants/{}/tokens", app.org),
            Some(json!({"expires_in": "yesterday"})),
            400,
            "duration",
        ),
        (
            Method::POST,
            format!("/tenants/{}/tokens/regenerate", app.org),
            Some(json!({"grace_period": "90d"})),
            400,
            "at most",
        ),
        (Method::DELETE, format!("/tenants/{}/tokens/AAAAAAAAAAAAAAAA", app.org), None, 404, "not found"),
        (Method::PUT, "/tenants".to_owned(), None, 405, "not supported"),
        (Method::GET, "/nowhere".to_owned(), None, 404, "no such endpoint"),
    ];
    for (method, path, body, status, detail) in cases {
        let (got, problem) = admin_json(app.admin(method.clone(), &path, body.as_ref()).await).await;
        assert_eq!(got, status, "{method} {path}: {problem}");
        assert_eq!(problem["status"], status, "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains(detail), "{method} {path}: {problem}");
    }
    let malformed = app
        .client
        .post(format!("{}/admin/v1/tenants", app.address))
        .bearer_auth(&app.operator_token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(admin_json(malformed).await.0, 400);
}

/// PostgreSQL cannot store U+0000: a body holding it is refused on every backend, and an id in
/// the path holding it (which PostgreSQL refuses even to look up) is a client error, never a 500.
async fn nul_characters_in_admin_requests_are_client_errors(app: TestApp) {
    let org = &app.org;
    let organization = json!({"name": "eng"});
    let (status, _) =
        admin_json(app.admin(Method::POST, &format!("/tenants/{org}/organizations"), Some(&organization)).await).await;
    assert_eq!(status, 201);
    let mapping = json!({"group": "nul\u{0}group", "organization": "eng"});
    let (status, problem) =
        admin_json(app.admin(Method::POST, &format!("/tenants/{org}/mappings"), Some(&mapping)).await).await;
    assert_eq!(status, 400, "{problem}");
    let (_, mappings) = admin_json(app.admin(Method::GET, &format!("/tenants/{org}/mappings"), None).await).await;
    assert_eq!(mappings["mappings"], json!([]), "nothing was written");

    for path in [format!("/tenants/{org}/users/nul%00id/memberships"), format!("/tenants/{org}/webhooks/nul%00id")] {
        let (status, problem) = admin_json(app.admin(Method::GET, &path, None).await).await;
        assert!(status == 400 || status == 404, "{path}: {status} {problem}");
    }
}
