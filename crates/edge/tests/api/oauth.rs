//! OAuth 2.0 for identity providers: clients, the token endpoint, federated assertions verified
//! against a JWKS served by the test, and access tokens on SCIM routes. Every key, issuer and
//! JWKS here is made by the test.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use domain::testing::Backend;
use domain::{now_micros, NewAccessToken, OAuthStore};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, Response};
use serde_json::{json, Value};
use token::{Scopes, TokenId};

use crate::both_backends;
use crate::helpers::{admin_json, eventually, spawn_app_with, status_json, TestApp};

both_backends!(
    client_credentials_with_basic_and_post_authentication,
    token_endpoint_errors_are_rfc_6749_bodies,
    revoked_and_expired_clients_are_refused_at_once,
    a_rotated_secret_works_during_its_overlap_only,
    access_tokens_are_scoped_expire_and_stay_in_their_tenant,
    each_tenant_chooses_its_methods,
    oauth_clients_through_the_cli,
);

// Tests that fetch a JWKS: the refetch floor is one second, so a rotation can be seen quickly.
both_backends!(
    federated: app_with_floor =>
    federated_assertions_are_checked_against_the_issuers_keys,
    an_unknown_key_id_refetches_the_jwks_once_per_floor,
);

async fn app_with_floor(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |s| s.oauth_jwks_min_refetch_seconds = 1).await
}

/// A client as the admin API creates it: `(client_id, client_secret)` (no secret when federated).
async fn create_client(app: &TestApp, org: &str, body: Value) -> (String, Option<String>) {
    let (status, json) =
        admin_json(app.admin(Method::POST, &format!("/tenants/{org}/oauth-clients"), Some(&body)).await).await;
    assert_eq!(status, 201, "{json}");
    assert_eq!(json["token_url"], format!("{}/oauth2/{org}/token", app.address));
    (json["client_id"].as_str().unwrap().to_owned(), json["client_secret"].as_str().map(str::to_owned))
}

async fn secret_client(app: &TestApp, body: Value) -> (String, String) {
    let (id, secret) = create_client(app, &app.org, body).await;
    (id, secret.expect("a client without a federation has a secret"))
}

fn token_url(app: &TestApp, org: &str) -> String {
    format!("{}/oauth2/{org}/token", app.address)
}

/// POST a form to the token endpoint of `org`.
async fn token_request(app: &TestApp, org: &str, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Response {
    let mut request = app.client.post(token_url(app, org)).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    request.send().await.unwrap()
}

/// Status and JSON of a token endpoint answer: always plain JSON, never cached.
async fn oauth_json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response.headers().get(CONTENT_TYPE).unwrap().to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/json"), "{status}: {content_type}");
    assert_eq!(response.headers().get(CACHE_CONTROL).unwrap(), "no-store");
    (status, response.json().await.unwrap())
}

/// Assert an RFC 6749 §5.2 error: status, `error`, and nothing of SCIM.
async fn assert_oauth_error(response: Response, status: u16, error: &str) {
    let www_authenticate = response.headers().get(WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned());
    let (got, json) = oauth_json(response).await;
    assert_eq!((got, json["error"].as_str()), (status, Some(error)), "{json}");
    assert!(json["error_description"].is_string(), "{json}");
    assert!(json.get("schemas").is_none() && json.get("scimType").is_none(), "{json}");
    if status == 401 {
        assert!(www_authenticate.is_some_and(|v| v.starts_with("Basic")), "invalid_client carries WWW-Authenticate");
    }
}

/// An access token for `client_id` with its secret by HTTP Basic.
async fn access_token(app: &TestApp, org: &str, id: &str, secret: &str) -> String {
    let response = token_request(app, org, &[("grant_type", "client_credentials")], Some((id, secret))).await;
    let (status, json) = oauth_json(response).await;
    assert_eq!(status, 200, "{json}");
    json["access_token"].as_str().unwrap().to_owned()
}

async fn scim_status(app: &TestApp, org: &str, token: &str) -> u16 {
    let url = format!("{}/scim/v2/{org}/Users", app.address);
    app.client.get(url).bearer_auth(token).send().await.unwrap().status().as_u16()
}

async fn client_credentials_with_basic_and_post_authentication(app: TestApp) {
    let (id, secret) = secret_client(&app, json!({"name": "Entra gallery", "scopes": ["users:read"]})).await;
    assert!(secret.starts_with("scimgatecs_"), "{secret}");

    let response = token_request(&app, &app.org, &[("grant_type", "client_credentials")], Some((&id, &secret))).await;
    assert_eq!(response.headers().get("pragma").unwrap(), "no-cache");
    let (status, basic) = oauth_json(response).await;
    assert_eq!(status, 200, "{basic}");
    assert_eq!(basic["token_type"], "Bearer");
    assert_eq!(basic["scope"], "users:read");
    let expires_in = basic["expires_in"].as_i64().unwrap();
    assert!((3590..=3600).contains(&expires_in), "60 minutes by default: {expires_in}");
    let token = basic["access_token"].as_str().unwrap();
    assert!(token.starts_with("scimgateat_"));
    assert_eq!(scim_status(&app, &app.org, token).await, 200);

    let form = [("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret)];
    let (status, post) = oauth_json(token_request(&app, &app.org, &form, None).await).await;
    assert_eq!(status, 200, "{post}");
    assert_ne!(post["access_token"], basic["access_token"]);
    assert_eq!(scim_status(&app, &app.org, post["access_token"].as_str().unwrap()).await, 200);

    // The secret is listed by id and state only.
    let (_, listed) =
        admin_json(app.admin(Method::GET, &format!("/tenants/{}/oauth-clients", app.org), None).await).await;
    let client = &listed["oauth_clients"][0];
    assert_eq!((client["client_id"].as_str(), client["state"].as_str()), (Some(id.as_str()), Some("active")));
    assert_eq!(client["secrets"][0]["state"], "active");
    assert!(!listed.to_string().contains(secret.split('_').nth(2).unwrap()));

    // The metadata document points at the same endpoint.
    let url = format!("{}/oauth2/{}/.well-known/oauth-authorization-server", app.address, app.org);
    let metadata: Value = app.client.get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(metadata["issuer"], format!("{}/oauth2/{}", app.address, app.org));
    assert_eq!(metadata["token_endpoint"], token_url(&app, &app.org));
    for method in ["client_secret_basic", "client_secret_post", "private_key_jwt"] {
        assert!(metadata["token_endpoint_auth_methods_supported"].as_array().unwrap().contains(&json!(method)));
    }
    let absent = format!("{}/oauth2/no-such-org/.well-known/oauth-authorization-server", app.address);
    assert_eq!(app.client.get(absent).send().await.unwrap().status(), 404);

    // The tenant still has its static token: readiness says so now that it has a client.
    let (_, report) = admin_json(app.admin(Method::GET, &format!("/tenants/{}/readiness", app.org), None).await).await;
    assert!(report.to_string().contains("static_tokens_with_oauth"), "{report}");
}

async fn token_endpoint_errors_are_rfc_6749_bodies(app: TestApp) {
    let (id, secret) = secret_client(&app, json!({})).await;
    let grant = [("grant_type", "client_credentials")];

    let wrong = token::compose_prefixed("scimgatecs", secret.split('_').nth(1).unwrap(), &"x".repeat(44));
    assert_oauth_error(token_request(&app, &app.org, &grant, Some((&id, &wrong))).await, 401, "invalid_client").await;
    let other = token::compose_prefixed("scimgatecs", "AAAAAAAAAAAAAAAA", &"y".repeat(44));
    let unknown = token_request(&app, &app.org, &grant, Some(("BBBBBBBBBBBBBBBB", &other))).await;
    assert_oauth_error(unknown, 401, "invalid_client").await;
    let unknown_id = token_request(&app, &app.org, &grant, Some(("BBBBBBBBBBBBBBBB", &secret))).await;
    assert_oauth_error(unknown_id, 401, "invalid_client").await;
    assert_oauth_error(token_request(&app, &app.org, &grant, Some((&id, "garbage"))).await, 401, "invalid_client")
        .await;
    assert_oauth_error(token_request(&app, &app.org, &grant, None).await, 401, "invalid_client").await;
    // Another tenant's endpoint, or one that does not exist, knows nothing of this client.
    let nowhere = token_request(&app, "no-such-org", &grant, Some((&id, &secret))).await;
    assert_oauth_error(nowhere, 401, "invalid_client").await;

    let basic = Some((id.as_str(), secret.as_str()));
    let password = [("grant_type", "password"), ("username", "u"), ("password", "p")];
    assert_oauth_error(token_request(&app, &app.org, &password, basic).await, 400, "unsupported_grant_type").await;
    assert_oauth_error(token_request(&app, &app.org, &[("scope", "users:read")], basic).await, 400, "invalid_request")
        .await;
    let scoped = [("grant_type", "client_credentials"), ("scope", "users:read admin")];
    assert_oauth_error(token_request(&app, &app.org, &scoped, basic).await, 400, "invalid_scope").await;
    let both = [("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret)];
    assert_oauth_error(token_request(&app, &app.org, &both, basic).await, 400, "invalid_request").await;
    let repeated = "grant_type=client_credentials&grant_type=client_credentials";
    let response = app
        .client
        .post(token_url(&app, &app.org))
        .basic_auth(&id, Some(&secret))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(repeated)
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;
    let json_body = app
        .client
        .post(token_url(&app, &app.org))
        .basic_auth(&id, Some(&secret))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_oauth_error(json_body, 400, "invalid_request").await;
}

async fn revoked_and_expired_clients_are_refused_at_once(app: TestApp) {
    let (id, secret) = secret_client(&app, json!({})).await;
    let token = access_token(&app, &app.org, &id, &secret).await;
    let replica = app.spawn_replica(|_| {}).await;
    assert_eq!(scim_status(&replica, &app.org, &token).await, 200);

    let (status, _) =
        admin_json(app.admin(Method::DELETE, &format!("/tenants/{}/oauth-clients/{id}", app.org), None).await).await;
    assert_eq!(status, 204);
    assert_eq!(scim_status(&app, &app.org, &token).await, 401, "the client's access tokens stop at once");
    assert_eq!(scim_status(&replica, &app.org, &token).await, 401, "on every replica");
    let grant = [("grant_type", "client_credentials")];
    assert_oauth_error(token_request(&app, &app.org, &grant, Some((&id, &secret))).await, 401, "invalid_client").await;
    let (_, listed) =
        admin_json(app.admin(Method::GET, &format!("/tenants/{}/oauth-clients", app.org), None).await).await;
    assert_eq!(listed["oauth_clients"][0]["state"], "revoked");

    let (id, secret) = secret_client(&app, json!({"expires_in": "2s"})).await;
    let response = token_request(&app, &app.org, &grant, Some((&id, &secret))).await;
    let (status, json) = oauth_json(response).await;
    assert_eq!(status, 200, "{json}");
    assert!(json["expires_in"].as_i64().unwrap() <= 2, "a token never outlives its client: {json}");
    let token = json["access_token"].as_str().unwrap().to_owned();
    let expired =
        eventually(Duration::from_secs(10), || async { scim_status(&app, &app.org, &token).await == 401 }).await;
    assert!(expired, "the client's access token ends with the client");
    assert_oauth_error(token_request(&app, &app.org, &grant, Some((&id, &secret))).await, 401, "invalid_client").await;
}

async fn a_rotated_secret_works_during_its_overlap_only(app: TestApp) {
    let (id, old) = secret_client(&app, json!({})).await;
    let old_token = access_token(&app, &app.org, &id, &old).await;
    let path = format!("/tenants/{}/oauth-clients/{id}/rotate", app.org);
    let (status, rotated) = admin_json(app.admin(Method::POST, &path, Some(&json!({"overlap": "2s"}))).await).await;
    assert_eq!(status, 201, "{rotated}");
    let new = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(rotated["client_id"], id.as_str());

    // Inside the overlap both secrets work, and so do tokens the old one obtained.
    access_token(&app, &app.org, &id, &old).await;
    let new_token = access_token(&app, &app.org, &id, &new).await;
    assert_eq!(scim_status(&app, &app.org, &old_token).await, 200);
    let (_, listed) =
        admin_json(app.admin(Method::GET, &format!("/tenants/{}/oauth-clients", app.org), None).await).await;
    let states: Vec<&str> = listed["oauth_clients"][0]["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["overlap", "active"]);

    let ended =
        eventually(Duration::from_secs(10), || async { scim_status(&app, &app.org, &old_token).await == 401 }).await;
    assert!(ended, "the old secret's tokens stop when the overlap ends");
    let grant = [("grant_type", "client_credentials")];
    assert_oauth_error(token_request(&app, &app.org, &grant, Some((&id, &old))).await, 401, "invalid_client").await;
    assert_eq!(scim_status(&app, &app.org, &new_token).await, 200);

    // Without an overlap the earlier secret stops at once.
    let (_, again) = admin_json(app.admin(Method::POST, &path, None).await).await;
    assert_eq!(scim_status(&app, &app.org, &new_token).await, 401);
    assert_oauth_error(token_request(&app, &app.org, &grant, Some((&id, &new))).await, 401, "invalid_client").await;
    access_token(&app, &app.org, &id, again["client_secret"].as_str().unwrap()).await;
}

async fn access_tokens_are_scoped_expire_and_stay_in_their_tenant(app: TestApp) {
    let (id, secret) = secret_client(&app, json!({"scopes": ["users:read", "users:write"]})).await;
    let grant = [("grant_type", "client_credentials"), ("scope", "users:read")];
    let (status, json) = oauth_json(token_request(&app, &app.org, &grant, Some((&id, &secret))).await).await;
    assert_eq!((status, json["scope"].as_str()), (200, Some("users:read")), "{json}");
    let read_only = json["access_token"].as_str().unwrap().to_owned();
    assert_eq!(scim_status(&app, &app.org, &read_only).await, 200);
    let user = json!({"schemas": [proto::schema::USER], "userName": "scoped@example.com"});
    let post = |token: String| {
        let body = user.to_string();
        let client = app.client.clone();
        let url = app.url("/Users");
        async move {
            let response = client.post(url).bearer_auth(token).header(CONTENT_TYPE, "application/scim+json");
            response.body(body).send().await.unwrap()
        }
    };
    assert_eq!(status_json(post(read_only.clone()).await).await.0, 403, "users:write was not granted");
    assert_eq!(status_json(post(access_token(&app, &app.org, &id, &secret).await).await).await.0, 201);
    let groups = [("grant_type", "client_credentials"), ("scope", "groups:read")];
    assert_oauth_error(token_request(&app, &app.org, &groups, Some((&id, &secret))).await, 400, "invalid_scope").await;
    assert_eq!(app.client.get(app.url("/Groups")).bearer_auth(&read_only).send().await.unwrap().status(), 403);

    // A token of this tenant gets nothing from another.
    let other = format!("{}-b", app.org);
    let (status, _) = admin_json(app.admin(Method::POST, "/tenants", Some(&json!({"name": other}))).await).await;
    assert_eq!(status, 201);
    assert_eq!(scim_status(&app, &other, &read_only).await, 401);
    let (other_id, other_secret) = create_client(&app, &other, json!({})).await;
    let b_token = access_token(&app, &other, &other_id, other_secret.as_deref().unwrap()).await;
    assert_eq!(scim_status(&app, &app.org, &b_token).await, 401);
    assert_eq!(scim_status(&app, &other, &b_token).await, 200);
    // Nor can a client of another tenant get a token here.
    let grant = [("grant_type", "client_credentials")];
    let crossed = token_request(&app, &app.org, &grant, Some((&other_id, other_secret.as_deref().unwrap()))).await;
    assert_oauth_error(crossed, 401, "invalid_client").await;

    // An access token stops working when it expires.
    let issued = token::oauth::issue_access_token();
    let client_id = TokenId::parse(&id).unwrap();
    let short = NewAccessToken {
        id: issued.id,
        client_id,
        secret_id: None,
        hash: issued.hash,
        scopes: Scopes::all(),
        expires_at: now_micros() + 1_500_000,
    };
    app.store.add_access_token(short).await.unwrap();
    assert_eq!(scim_status(&app, &app.org, &issued.plaintext).await, 200);
    let expired =
        eventually(Duration::from_secs(10), || async { scim_status(&app, &app.org, &issued.plaintext).await == 401 })
            .await;
    assert!(expired, "an expired access token is refused");
    // A forged token (right id, wrong secret) is refused.
    let parts: Vec<&str> = read_only.split('_').collect();
    let forged = token::compose_prefixed("scimgateat", parts[1], &"z".repeat(44));
    assert_eq!(scim_status(&app, &app.org, &forged).await, 401);
}

async fn each_tenant_chooses_its_methods(app: TestApp) {
    let (id, secret) = secret_client(&app, json!({})).await;
    let tenant = format!("/tenants/{}", app.org);
    let (status, json) = admin_json(
        app.admin(
            Method::PATCH,
            &tenant,
            Some(&json!({"auth_methods": "oauth", "access_token_lifetime_seconds": 7200})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        (json["auth_methods"].as_str(), json["access_token_lifetime_seconds"].as_u64()),
        (Some("oauth"), Some(7200))
    );
    assert_eq!(scim_status(&app, &app.org, &app.token).await, 401, "static tokens are refused");
    let response = token_request(&app, &app.org, &[("grant_type", "client_credentials")], Some((&id, &secret))).await;
    let (_, granted) = oauth_json(response).await;
    assert!((7190..=7200).contains(&granted["expires_in"].as_i64().unwrap()), "{granted}");
    let token = granted["access_token"].as_str().unwrap().to_owned();
    assert_eq!(scim_status(&app, &app.org, &token).await, 200);
    let (_, report) = admin_json(app.admin(Method::GET, &format!("{tenant}/readiness"), None).await).await;
    assert!(report.to_string().contains("static_tokens_with_oauth"), "{report}");

    for bad in [json!({"access_token_lifetime_seconds": 600}), json!({"auth_methods": "tokens"})] {
        assert_eq!(admin_json(app.admin(Method::PATCH, &tenant, Some(&bad)).await).await.0, 400, "{bad}");
    }

    let (status, _) =
        admin_json(app.admin(Method::PATCH, &tenant, Some(&json!({"auth_methods": "bearer"}))).await).await;
    assert_eq!(status, 200);
    assert_eq!(scim_status(&app, &app.org, &app.token).await, 200);
    assert_eq!(scim_status(&app, &app.org, &token).await, 401, "access tokens are refused");
    let refused = token_request(&app, &app.org, &[("grant_type", "client_credentials")], Some((&id, &secret))).await;
    assert_oauth_error(refused, 400, "unauthorized_client").await;
}

fn scimgate(app: &TestApp, args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_scimgate"))
        .args(args)
        .env("SCIMGATE_DATABASE_URL", &app.database_url)
        .env("SCIMGATE_PUBLIC_URL", &app.address)
        .env("SCIMGATE_LOG", "warn")
        .output()
        .expect("run scimgate");
    assert!(output.status.success(), "scimgate failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

async fn oauth_clients_through_the_cli(app: TestApp) {
    let created = scimgate(&app, &["oauth-client", "create", &app.org, "--name", "Entra", "--expires-in", "730d"]);
    let lines: Vec<&str> = created.lines().collect();
    let (id, secret) = (lines[lines.len() - 2], lines[lines.len() - 1]);
    assert!(TokenId::parse(id).is_ok(), "the client id is alone on its line: {created}");
    assert!(secret.starts_with("scimgatecs_"), "the secret is alone on the last line: {created}");
    assert!(created.contains(&token_url(&app, &app.org)), "{created}");
    let token = access_token(&app, &app.org, id, secret).await;
    assert_eq!(scim_status(&app, &app.org, &token).await, 200);

    let listing = scimgate(&app, &["oauth-client", "list", &app.org]);
    assert!(listing.contains(id) && listing.contains("Entra") && !listing.contains(secret.split('_').nth(2).unwrap()));

    let rotated = scimgate(&app, &["oauth-client", "rotate", &app.org, id, "--overlap", "1h"]);
    let new = rotated.lines().last().unwrap();
    assert!(new.starts_with("scimgatecs_") && new != secret, "{rotated}");
    access_token(&app, &app.org, id, secret).await;
    access_token(&app, &app.org, id, new).await;
    assert!(scimgate(&app, &["oauth-client", "list", &app.org]).contains("overlap"));
    let rows: serde_json::Value =
        serde_json::from_str(&scimgate(&app, &["oauth-client", "list", &app.org, "--output", "json"])).unwrap();
    let listed = rows.as_array().unwrap().iter().find(|c| c["client_id"] == id).unwrap_or_else(|| panic!("{rows}"));
    let states: Vec<_> =
        listed["credential"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert_eq!((listed["name"].as_str(), states.len()), (Some("Entra"), 2), "{listed}");
    assert!(states.contains(&"overlap") && states.contains(&"active"), "{listed}");
    assert!(!rows.to_string().contains(new.split('_').nth(2).unwrap()), "never a secret");

    let federated = scimgate(
        &app,
        &[
            "oauth-client",
            "create",
            &app.org,
            "--issuer",
            "https://login.example/t/v2.0",
            "--subject",
            "sp",
            "--audience",
            "api://scimgate",
            "--jwks-url",
            "https://login.example/keys",
        ],
    );
    assert!(TokenId::parse(federated.lines().last().unwrap()).is_ok(), "no secret, the id last: {federated}");

    scimgate(&app, &["oauth-client", "revoke", &app.org, id]);
    assert_eq!(scim_status(&app, &app.org, &token).await, 401);
    let shown =
        scimgate(&app, &["tenant", "set", &app.org, "--auth-methods", "oauth", "--access-token-lifetime", "2h"]);
    assert!(shown.contains("auth methods: oauth") && shown.contains("access token lifetime: 2h"), "{shown}");
}

// --- Federated credentials -------------------------------------------------------------------

const ISSUER: &str = "https://login.example.test/tenant-id/v2.0";
const SUBJECT: &str = "service-principal-object-id";
const AUDIENCE: &str = "api://scimgate";

/// A JWKS endpoint of the test's own: serves whatever keys the test puts in it, counting fetches.
struct JwksServer {
    port: u16,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicU64>,
}

impl JwksServer {
    fn start(keys: Vec<Value>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (keys, fetches) = (Arc::new(Mutex::new(keys)), Arc::new(AtomicU64::new(0)));
        let (served, counted) = (keys.clone(), fetches.clone());
        let server = HttpServer::new(move || {
            let (served, counted) = (served.clone(), counted.clone());
            App::new().default_service(web::to(move || {
                let (served, counted) = (served.clone(), counted.clone());
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let keys = served.lock().unwrap().clone();
                    HttpResponse::Ok().insert_header(("cache-control", "max-age=3600")).json(json!({ "keys": keys }))
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self { port, keys, fetches }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/discovery/v2.0/keys", self.port)
    }

    fn serve(&self, keys: Vec<Value>) {
        *self.keys.lock().unwrap() = keys;
    }

    fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// A signing key made by the test: its private half for signing, its public JWK for the JWKS.
struct TestKey {
    kid: String,
    algorithm: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
    /// The public key as PEM (RSA only), for the HMAC confusion attack.
    public_pem: Option<String>,
}

impl TestKey {
    fn rsa(kid: &str) -> Self {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        let der = key.to_pkcs1_der().unwrap();
        let jwk = json!({
            "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        });
        let public_pem = key.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
        Self {
            kid: kid.into(),
            algorithm: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk,
            public_pem: Some(public_pem),
        }
    }

    fn ec(kid: &str) -> Self {
        use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "kid": kid, "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Self {
            kid: kid.into(),
            algorithm: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk,
            public_pem: None,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn claims(adjust: impl FnOnce(&mut Value)) -> Value {
    let now = now_micros() / 1_000_000;
    let mut claims = json!({
        "iss": ISSUER, "sub": SUBJECT, "aud": AUDIENCE,
        "iat": now, "nbf": now, "exp": now + 600, "jti": uuid::Uuid::new_v4().to_string(),
    });
    adjust(&mut claims);
    claims
}

async fn federated_client(app: &TestApp, jwks: &JwksServer) -> String {
    let federation = json!({"issuer": ISSUER, "subject": SUBJECT, "audience": AUDIENCE, "jwks_url": jwks.url()});
    let (id, secret) =
        create_client(app, &app.org, json!({"name": "workload identity", "federation": federation})).await;
    assert!(secret.is_none(), "a federated client has no secret");
    id
}

/// Present `assertion` as client authentication (RFC 7523 §2.2), with or without `client_id`.
async fn assert_with(app: &TestApp, client_id: Option<&str>, assertion: &str) -> Response {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", assertion),
    ];
    if let Some(id) = client_id {
        form.push(("client_id", id));
    }
    token_request(app, &app.org, &form, None).await
}

async fn federated_assertions_are_checked_against_the_issuers_keys(app: TestApp) {
    let (rsa, ec) = (TestKey::rsa("rsa-1"), TestKey::ec("ec-1"));
    let jwks = JwksServer::start(vec![rsa.jwk.clone(), ec.jwk.clone()]);
    let id = federated_client(&app, &jwks).await;

    let (status, granted) = oauth_json(assert_with(&app, None, &rsa.sign(&claims(|_| {}))).await).await;
    assert_eq!(status, 200, "RS256, client found by issuer and subject: {granted}");
    assert_eq!(scim_status(&app, &app.org, granted["access_token"].as_str().unwrap()).await, 200);
    let (status, granted) = oauth_json(assert_with(&app, Some(&id), &ec.sign(&claims(|_| {}))).await).await;
    assert_eq!(status, 200, "ES256 with client_id: {granted}");
    assert_eq!(jwks.fetches(), 1, "the JWKS is cached");

    // The JWT bearer grant (RFC 7523 §2.1) takes the same assertion; its refusals are invalid_grant.
    let jwt_grant = |assertion: String| {
        let (client, url) = (app.client.clone(), token_url(&app, &app.org));
        async move {
            let form = [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", &assertion)];
            client.post(url).form(&form).send().await.unwrap()
        }
    };
    assert_eq!(oauth_json(jwt_grant(rsa.sign(&claims(|_| {}))).await).await.0, 200);
    let stale = rsa.sign(&claims(|c| c["exp"] = json!(now_micros() / 1_000_000 - 600)));
    assert_oauth_error(jwt_grant(stale).await, 400, "invalid_grant").await;

    let now = now_micros() / 1_000_000;
    let refused = [
        ("wrong audience", rsa.sign(&claims(|c| c["aud"] = json!("api://someone-else")))),
        ("wrong issuer", rsa.sign(&claims(|c| c["iss"] = json!("https://evil.example")))),
        ("wrong subject", rsa.sign(&claims(|c| c["sub"] = json!("another-principal")))),
        ("expired beyond the skew", rsa.sign(&claims(|c| c["exp"] = json!(now - 600)))),
        ("not yet valid", rsa.sign(&claims(|c| c["nbf"] = json!(now + 600)))),
        ("no exp", rsa.sign(&claims(|c| drop(c.as_object_mut().unwrap().remove("exp"))))),
        ("signed by a stranger's key under a known kid", TestKey::ec("ec-1").sign(&claims(|_| {}))),
        ("alg none", unsigned(&claims(|_| {}), "rsa-1")),
        ("HS256 keyed with the public key", hmac_with_public_key(&rsa, &claims(|_| {}))),
        ("not a JWT", "a.b.c".to_owned()),
    ];
    for (what, assertion) in refused {
        eprintln!("refusing an assertion: {what}");
        assert_oauth_error(assert_with(&app, Some(&id), &assertion).await, 401, "invalid_client").await;
    }
    // A skew of a few seconds is tolerated.
    let (status, _) =
        oauth_json(assert_with(&app, Some(&id), &rsa.sign(&claims(|c| c["exp"] = json!(now - 5)))).await).await;
    assert_eq!(status, 200, "within the clock skew");
    // A secret client cannot be authenticated by assertion, nor a federated one by secret.
    let (secret_id, secret) = secret_client(&app, json!({})).await;
    assert_oauth_error(assert_with(&app, Some(&secret_id), &rsa.sign(&claims(|_| {}))).await, 401, "invalid_client")
        .await;
    let grant = [("grant_type", "client_credentials")];
    assert_oauth_error(token_request(&app, &app.org, &grant, Some((&id, &secret))).await, 401, "invalid_client").await;
}

async fn an_unknown_key_id_refetches_the_jwks_once_per_floor(app: TestApp) {
    let (first, second) = (TestKey::ec("2026-01"), TestKey::ec("2026-02"));
    let jwks = JwksServer::start(vec![first.jwk.clone()]);
    let id = federated_client(&app, &jwks).await;
    assert_eq!(oauth_json(assert_with(&app, Some(&id), &first.sign(&claims(|_| {}))).await).await.0, 200);
    assert_eq!(jwks.fetches(), 1);

    // The issuer rotates its keys. Within the floor, an unknown kid does not refetch.
    jwks.serve(vec![second.jwk.clone()]);
    assert_oauth_error(assert_with(&app, Some(&id), &second.sign(&claims(|_| {}))).await, 401, "invalid_client").await;
    assert_eq!(jwks.fetches(), 1, "no refetch within the floor");
    // Once the floor has passed, the unknown kid refetches once and the new key verifies.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(oauth_json(assert_with(&app, Some(&id), &second.sign(&claims(|_| {}))).await).await.0, 200);
    assert_eq!(jwks.fetches(), 2);
    assert_eq!(oauth_json(assert_with(&app, Some(&id), &second.sign(&claims(|_| {}))).await).await.0, 200);
    assert_eq!(jwks.fetches(), 2, "the refreshed set is cached");
    // The retired key no longer verifies.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_oauth_error(assert_with(&app, Some(&id), &first.sign(&claims(|_| {}))).await, 401, "invalid_client").await;
}

/// `alg: none`: an unsigned JWT.
fn unsigned(claims: &Value, kid: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims.to_string()))
}

/// HS256 keyed with the issuer's public key: a verifier that lets the token choose the algorithm
/// would check it with the public key as the HMAC secret, and accept it.
fn hmac_with_public_key(key: &TestKey, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    let secret = key.public_pem.as_deref().unwrap().as_bytes();
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}
