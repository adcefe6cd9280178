//! The provisioning activity log: what each SCIM request of a tenant did, as the operator reads it
//! from the admin API and the CLI.

use std::process::Command;
use std::time::{Duration, Instant};

use domain::testing::Backend;
use domain::{ActivityMethod, ActivityRecord, ActivityResource, ActivityStore, NewActivity, TenantName};
use reqwest::header::{HeaderMap, HeaderValue, USER_AGENT};
use reqwest::Method;
use serde_json::{json, Value};
use token::Scopes;

use crate::both_backends;
use crate::helpers::{admin_json, assert_scim_error, eventually, issue_token, spawn_app_with, TestApp};

both_backends!(
    requests_are_recorded_with_what_they_addressed_and_how_they_ended,
    no_body_filter_value_or_secret_reaches_the_log,
    a_refused_token_of_a_known_tenant_is_recorded_and_an_unknown_tenant_is_not,
    filters_and_the_cursor_page_through_the_log,
    one_tenants_activity_never_appears_in_anothers,
    an_oauth_access_token_is_recorded_as_its_client,
    the_cli_prints_the_log_as_a_table_or_json,
    bad_listing_parameters_are_problem_details,
);

const OKTA: &str = "Okta SCIM Client 1.0.0";
const DAY: i64 = 86_400 * 1_000_000;

/// Settings for the tests that start gateways of their own: batches written within 50 ms.
fn quick(settings: &mut edge::Settings) {
    settings.activity_flush_ms = 50;
}

/// A request with the app's token and `user_agent`.
async fn send_as(
    app: &TestApp,
    user_agent: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut headers = HeaderMap::new();
    headers.insert(USER_AGENT, HeaderValue::from_str(user_agent).unwrap());
    app.send_with(method, &app.url(path), body, headers).await
}

/// The tenant's activity as listed by the admin API with `query`.
async fn listing(app: &TestApp, org: &str, query: &str) -> Value {
    let (status, body) =
        admin_json(app.admin(Method::GET, &format!("/tenants/{org}/activity{query}"), None).await).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Wait until the tenant's log holds at least `n` records (they are written in the background,
/// in batches); all of them, newest first.
async fn wait_for(app: &TestApp, org: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = listing(app, org, "?limit=1000").await;
        let records = body["activity"].as_array().unwrap();
        if records.len() >= n {
            return records.clone();
        }
        assert!(Instant::now() < deadline, "expected {n} records: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn token_id(token: &str) -> &str {
    token.split('_').nth(1).unwrap()
}

fn user(name: &str) -> Value {
    json!({"schemas": [proto::schema::USER], "userName": name, "active": true})
}

async fn requests_are_recorded_with_what_they_addressed_and_how_they_ended(app: TestApp) {
    let created = send_as(&app, OKTA, Method::POST, "/Users", Some(&user("bjensen"))).await;
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    assert_eq!(send_as(&app, OKTA, Method::GET, &format!("/Users/{id}"), None).await.status(), 200);
    let taken = send_as(&app, OKTA, Method::POST, "/Users", Some(&user("BJensen"))).await;
    let taken = assert_scim_error(taken, 409, Some("uniqueness")).await;
    let bad_patch = json!({"schemas": [proto::patch::PATCH_OP], "Operations": [{"op": "explode", "path": "title"}]});
    let invalid = send_as(&app, "curl/8.5.0", Method::PATCH, &format!("/Users/{id}"), Some(&bad_patch)).await;
    let invalid = assert_scim_error(invalid, 400, Some("invalidSyntax")).await;
    assert_eq!(send_as(&app, OKTA, Method::GET, "/ServiceProviderConfig", None).await.status(), 200);
    assert_eq!(send_as(&app, OKTA, Method::GET, "/NoSuchThing", None).await.status(), 404);

    let records = wait_for(&app, &app.org, 6).await;
    let [other, config, patched, conflict, read, create] = &records[..] else { panic!("{records:?}") };
    let token = json!({"kind": "token", "id": token_id(&app.token)});

    assert_eq!(create["method"], "POST");
    assert_eq!(create["resource_type"], "user");
    assert_eq!(create["resource_id"], id.as_str(), "a create records the id it answered with");
    assert_eq!((create["status"].as_u64(), create["outcome"].as_str()), (Some(201), Some("success")));
    assert_eq!((&create["scim_type"], &create["detail"]), (&Value::Null, &Value::Null));
    assert_eq!(create["idp"], "okta");
    assert_eq!(create["credential"], token);
    assert!(create["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(create["time"].as_str().unwrap().ends_with('Z'));

    assert_eq!((read["method"].as_str(), read["resource_id"].as_str()), (Some("GET"), Some(id.as_str())));
    assert_eq!(conflict["status"], 409);
    assert_eq!(conflict["outcome"], "client_error");
    assert_eq!(conflict["scim_type"], "uniqueness");
    assert_eq!(conflict["detail"], taken["detail"], "the detail the IdP was given");
    assert_eq!(patched["method"], "PATCH");
    assert_eq!((patched["status"].as_u64(), patched["scim_type"].as_str()), (Some(400), Some("invalidSyntax")));
    assert_eq!(patched["detail"], invalid["detail"]);
    assert_eq!(patched["idp"], "other", "curl is no IdP");
    assert_eq!(config["resource_type"], "service_provider_config");
    assert_eq!(config["resource_id"], Value::Null);
    assert_eq!((other["resource_type"].as_str(), other["status"].as_u64()), (Some("other"), Some(404)));
    let seqs: Vec<i64> = records.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first: {seqs:?}");
}

async fn no_body_filter_value_or_secret_reaches_the_log(app: TestApp) {
    let body = user("private-body-value@example.com");
    assert_eq!(app.post("/Users", &body).await.status(), 201);
    // A filter whose value is wrong: its error quotes the value.
    let url = format!("{}?filter={}", app.url("/Users"), "meta.lastModified%20gt%20%22private-filter-value%22");
    let refused = app.send_with(Method::GET, &url, None, HeaderMap::new()).await;
    let refused = assert_scim_error(refused, 400, Some("invalidFilter")).await;
    assert!(refused["detail"].as_str().unwrap().contains("private-filter-value"), "{refused}");
    let good = format!("{}?filter={}", app.url("/Users"), "userName%20eq%20%22private-filter-value%22");
    assert_eq!(app.send_with(Method::GET, &good, None, HeaderMap::new()).await.status(), 200);
    let forged = crate::helpers::forged(&app.token);
    assert_eq!(app.status_with(&forged).await, 401);

    let records = wait_for(&app, &app.org, 4).await;
    let text = serde_json::to_string(&records).unwrap();
    for secret in ["private-body-value", "private-filter-value", app.token.as_str(), forged.as_str()] {
        assert!(!text.contains(secret), "`{secret}` in {text}");
    }
    let secret = app.token.split('_').nth(2).unwrap();
    assert!(!text.contains(secret), "the token's secret in {text}");
    let invalid = records.iter().find(|r| r["scim_type"] == "invalidFilter").unwrap();
    assert!(invalid["detail"].as_str().unwrap().contains("`***`"), "{invalid}");

    // The database holds nothing more than the API shows.
    let rows =
        app.db().scalar("SELECT COUNT(*) FROM activity WHERE detail LIKE '%private%' OR resource_id LIKE '%private%'");
    assert_eq!(rows.await.unwrap(), 0);
}

async fn a_refused_token_of_a_known_tenant_is_recorded_and_an_unknown_tenant_is_not(app: TestApp) {
    let forged = crate::helpers::forged(&app.token);
    assert_eq!(app.status_with(&forged).await, 401);
    let unknown = format!("{}/scim/v2/nobody-here/Users", app.address);
    let answered = app.client.get(unknown).bearer_auth(&app.token).send().await.unwrap();
    assert_eq!(answered.status(), 401);
    assert_eq!(app.status_with(&app.token).await, 200);

    let records = wait_for(&app, &app.org, 2).await;
    assert_eq!(records.len(), 2, "{records:?}");
    let refused = &records[1];
    assert_eq!((refused["status"].as_u64(), refused["method"].as_str()), (Some(401), Some("GET")));
    assert_eq!(refused["credential"], Value::Null, "a refused credential is not named");
    assert_eq!(refused["detail"], "the bearer token is missing, invalid, expired or revoked");
    assert_eq!(records[0]["credential"]["id"], token_id(&app.token));
    let total = app.db().scalar("SELECT COUNT(*) FROM activity").await.unwrap();
    assert_eq!(total, 2, "the unknown tenant's request is nobody's activity");
}

async fn filters_and_the_cursor_page_through_the_log(app: TestApp) {
    for name in ["a", "b", "c"] {
        assert_eq!(app.post("/Users", &user(name)).await.status(), 201);
    }
    assert_eq!(app.post("/Users", &user("a")).await.status(), 409);
    assert_eq!(app.get("/Users").await.status(), 200);
    assert_eq!(app.get("/Groups/missing").await.status(), 404);
    assert_eq!(app.delete("/Users/missing").await.status(), 404);
    let records = wait_for(&app, &app.org, 7).await;
    let statuses = |body: &Value| -> Vec<u64> {
        body["activity"].as_array().unwrap().iter().map(|r| r["status"].as_u64().unwrap()).collect()
    };
    let org = &app.org;
    assert_eq!(statuses(&listing(&app, org, "?outcome=success").await), [200, 201, 201, 201]);
    assert_eq!(statuses(&listing(&app, org, "?outcome=client_error").await), [404, 404, 409]);
    assert_eq!(statuses(&listing(&app, org, "?outcome=server_error").await), Vec::<u64>::new());
    assert_eq!(statuses(&listing(&app, org, "?status=409").await), [409]);
    assert_eq!(statuses(&listing(&app, org, "?method=DELETE").await), [404]);
    assert_eq!(statuses(&listing(&app, org, "?resource_type=group").await), [404]);
    assert_eq!(statuses(&listing(&app, org, "?method=post&resource_type=user&outcome=success").await), [201, 201, 201]);
    let newest = records[0]["time"].as_str().unwrap();
    let since = listing(&app, org, &format!("?since={}", newest.replace('+', "%2B"))).await;
    assert!(statuses(&since).contains(&404));
    let until = listing(&app, org, "?until=2001-01-01T00:00:00Z").await;
    assert_eq!(statuses(&until), Vec::<u64>::new());

    // Two at a time, following next_cursor, every record once, in order.
    let mut walked = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let page = listing(&app, org, &query).await;
        let items = page["activity"].as_array().unwrap();
        assert!(items.len() <= 2);
        walked.extend(items.iter().map(|r| r["seq"].clone()));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let all: Vec<Value> = records.iter().map(|r| r["seq"].clone()).collect();
    assert_eq!(walked, all);
}

async fn one_tenants_activity_never_appears_in_anothers(app: TestApp) {
    let other_org = format!("{}-other", app.org);
    let other_token = issue_token(&app.store, &other_org, Scopes::all()).await;
    assert_eq!(app.get("/Users").await.status(), 200);
    let other = app.client.get(format!("{}/scim/v2/{other_org}/Groups", app.address)).bearer_auth(&other_token);
    assert_eq!(other.send().await.unwrap().status(), 200);
    // The first tenant's token at the second tenant: refused, and recorded as the second's.
    let crossed = app.client.get(format!("{}/scim/v2/{other_org}/Users", app.address)).bearer_auth(&app.token);
    assert_eq!(crossed.send().await.unwrap().status(), 401);

    let mine = wait_for(&app, &app.org, 1).await;
    let theirs = wait_for(&app, &other_org, 2).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["resource_type"], "user");
    assert_eq!(theirs.len(), 2);
    assert!(theirs.iter().all(|r| r["resource_type"] == "group" || r["status"] == 401), "{theirs:?}");
    assert!(theirs.iter().all(|r| r["credential"] != json!({"kind": "token", "id": token_id(&app.token)})));
}

async fn an_oauth_access_token_is_recorded_as_its_client(app: TestApp) {
    let path = format!("/tenants/{}/oauth-clients", app.org);
    let (status, client) = admin_json(app.admin(Method::POST, &path, Some(&json!({}))).await).await;
    assert_eq!(status, 201, "{client}");
    let (id, secret) = (client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());
    let issued = app
        .client
        .post(format!("{}/oauth2/{}/token", app.address, app.org))
        .form(&[("grant_type", "client_credentials")])
        .basic_auth(id, Some(secret))
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), 200);
    let access = issued.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.status_with(&access).await, 200);

    let records = wait_for(&app, &app.org, 1).await;
    assert_eq!(records.len(), 1, "the token endpoint is not SCIM activity: {records:?}");
    assert_eq!(records[0]["credential"], json!({"kind": "oauth_client", "id": id}));
    let text = serde_json::to_string(&records).unwrap();
    assert!(!text.contains(&access) && !text.contains(secret), "{text}");
}

async fn the_cli_prints_the_log_as_a_table_or_json(app: TestApp) {
    assert_eq!(app.post("/Users", &user("cli-user")).await.status(), 201);
    assert_eq!(app.post("/Users", &user("cli-user")).await.status(), 409);
    wait_for(&app, &app.org, 2).await;
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_scimgate"))
            .arg("activity")
            .args(args)
            .env("SCIMGATE_DATABASE_URL", &app.database_url)
            .env("SCIMGATE_LOG", "warn")
            .output()
            .expect("run scimgate")
    };
    let table = run(&[&app.org]);
    assert!(table.status.success(), "{}", String::from_utf8_lossy(&table.stderr));
    let text = String::from_utf8(table.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two records: {text}");
    assert!(lines[0].starts_with("TIME") && lines[0].contains("SCIM TYPE") && lines[0].ends_with("DETAIL"), "{text}");
    assert!(lines[1].contains("POST") && lines[1].contains("409") && lines[1].contains("uniqueness"), "{text}");
    assert!(lines[1].contains("already taken"), "{text}");
    assert!(lines[2].contains("201") && lines[2].contains(&format!("token {}", token_id(&app.token))), "{text}");
    let resource_column = lines[0].find("RESOURCE");
    assert!(lines[1..].iter().all(|line| line.find("user") == resource_column), "columns line up: {text}");

    let json = run(&[&app.org, "--output", "json", "--status", "409", "--method", "post"]);
    assert!(json.status.success(), "{}", String::from_utf8_lossy(&json.stderr));
    let rows: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["scim_type"], "uniqueness");

    let paged = run(&[&app.org, "--limit", "1"]);
    assert!(String::from_utf8_lossy(&paged.stderr).contains("--cursor "), "the next cursor is named");
    let bad = run(&[&app.org, "--outcome", "fine"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown outcome `fine`"));
}

async fn bad_listing_parameters_are_problem_details(app: TestApp) {
    for query in [
        "?limit=0",
        "?limit=1001",
        "?status=abc",
        "?status=42",
        "?outcome=fine",
        "?method=BREW",
        "?since=today",
        "?cursor=x",
        "?color=red",
    ] {
        let (status, body) =
            admin_json(app.admin(Method::GET, &format!("/tenants/{}/activity{query}", app.org), None).await).await;
        assert_eq!(status, 400, "{query}: {body}");
    }
    let (status, _) = admin_json(app.admin(Method::GET, "/tenants/nobody-here/activity", None).await).await;
    assert_eq!(status, 404);
    let anonymous = app.client.get(format!("{}/admin/v1/tenants/{}/activity", app.address, app.org)).send().await;
    assert_eq!(anonymous.unwrap().status(), 401);
    let with_tenant_token =
        app.client.get(format!("{}/admin/v1/tenants/{}/activity", app.address, app.org)).bearer_auth(&app.token);
    assert_eq!(with_tenant_token.send().await.unwrap().status(), 401, "tenant tokens cannot read the admin API");
}

// -- switched off, and bounded

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_off_keeps_no_activity_on_sqlite() {
    recording_off_keeps_no_activity(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_off_keeps_no_activity_on_postgres() {
    recording_off_keeps_no_activity(Backend::Postgres).await;
}

async fn recording_off_keeps_no_activity(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| {
        s.activity_log = false;
        s.activity_flush_ms = 50;
    })
    .await
    else {
        return;
    };
    assert_eq!(app.post("/Users", &user("quiet")).await.status(), 201);
    assert_eq!(app.status_with(&crate::helpers::forged(&app.token)).await, 401);
    // A gateway that records, beside it, shows that records would have been written by now.
    let recording = app.spawn_replica(|s| s.activity_log = true).await;
    assert_eq!(recording.get("/Users").await.status(), 200);
    let records = wait_for(&app, &app.org, 1).await;
    assert_eq!(records.len(), 1, "only the recording gateway's request: {records:?}");
    assert_eq!(records[0]["method"], "GET");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_bounded_by_age_and_by_count_on_sqlite() {
    the_log_is_bounded_by_age_and_by_count(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_bounded_by_age_and_by_count_on_postgres() {
    the_log_is_bounded_by_age_and_by_count(Backend::Postgres).await;
}

/// Retention runs at start-up and hourly: each gateway started here prunes once as it starts.
async fn the_log_is_bounded_by_age_and_by_count(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| {
        quick(s);
        s.activity_retention_days = 0;
        s.activity_max_per_tenant = 0;
    })
    .await
    else {
        return;
    };
    let tenant = TenantName::parse(&app.org).unwrap();
    let now = domain::now_micros();
    let old: Vec<NewActivity> = (1..=3)
        .map(|days| NewActivity {
            tenant: tenant.clone(),
            record: ActivityRecord {
                at: now - days * 10 * DAY,
                method: ActivityMethod::Get,
                resource_type: ActivityResource::User,
                resource_id: None,
                status: 200,
                scim_type: None,
                detail: None,
                latency_us: 1000,
                idp: None,
                credential: None,
            },
        })
        .collect();
    app.store.append_activity(&old).await.unwrap();
    for _ in 0..5 {
        assert_eq!(app.get("/Users").await.status(), 200);
    }
    assert_eq!(wait_for(&app, &app.org, 8).await.len(), 8, "nothing is pruned while both bounds are off");

    // Older than 15 days: the records of 20 and 30 days ago go.
    let by_age = app.spawn_replica(|s| s.activity_retention_days = 15).await;
    let pruned = eventually(Duration::from_secs(10), || async {
        listing(&by_age, &by_age.org, "").await["activity"].as_array().unwrap().len() == 6
    });
    assert!(pruned.await, "{}", listing(&app, &app.org, "").await);

    // At most 4 per tenant: the newest 4 stay.
    let newest: Vec<Value> = wait_for(&app, &app.org, 6).await[..4].iter().map(|r| r["seq"].clone()).collect();
    let by_count = app.spawn_replica(|s| s.activity_max_per_tenant = 4).await;
    let pruned = eventually(Duration::from_secs(10), || async {
        let kept = listing(&by_count, &by_count.org, "").await;
        let kept: Vec<Value> = kept["activity"].as_array().unwrap().iter().map(|r| r["seq"].clone()).collect();
        kept == newest
    });
    assert!(pruned.await, "{}", listing(&app, &app.org, "").await);
}
