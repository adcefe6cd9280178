//! What a product relies on, over HTTP: its accounts linked to SCIM users, organizations that
//! follow their groups, member events of every group, and readiness as a pre-flight.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{admin_json, assert_scim_error, eventually, spawn_app_with, status_json, TestApp};

both_backends!(
    accounts_link_by_email_and_by_external_id,
    duplicate_emails_are_allowed_and_flagged_or_refused_with_409,
    organizations_follow_their_groups_over_http,
    deleting_a_user_announces_its_removal_from_each_group,
);

async fn admin(app: &TestApp, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
    admin_json(app.admin(method, &format!("/tenants/{}{path}", app.org), body).await).await
}

async fn settings(app: &TestApp, body: Value) {
    let (status, tenant) = admin(app, Method::PATCH, "", Some(&body)).await;
    assert_eq!(status, 200, "{tenant}");
}

async fn feed(app: &TestApp, after: i64) -> Vec<Value> {
    let (status, page) = admin(app, Method::GET, &format!("/events?after={after}&limit=1000"), None).await;
    assert_eq!(status, 200, "{page}");
    page["events"].as_array().unwrap().clone()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn last_seq(events: &[Value]) -> i64 {
    events.last().map_or(0, |e| e["seq"].as_i64().unwrap())
}

fn entra_user(user_name: &str, email: &str, external_id: &str) -> Value {
    json!({
        "schemas": [proto::schema::USER],
        "userName": user_name,
        "externalId": external_id,
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": email}],
    })
}

async fn accounts_link_by_email_and_by_external_id(app: TestApp) {
    // One at a time...
    let (status, account) =
        admin(&app, Method::PUT, "/accounts/acct-bob", Some(&json!({"email": "Bob@Contoso.com"}))).await;
    assert_eq!((status, account["email"].as_str()), (201, Some("bob@contoso.com")), "{account}");
    // ...and thousands in one call.
    let mut accounts: Vec<Value> =
        (0..2000).map(|i| json!({"id": format!("acct-{i}"), "email": format!("person{i}@contoso.com")})).collect();
    accounts.push(json!({"id": "acct-carol", "external_id": "0c8bf2f7-carol"}));
    let (status, registered) = admin(&app, Method::POST, "/accounts", Some(&json!({"accounts": accounts}))).await;
    assert_eq!((status, registered), (200, json!({"created": 2001, "updated": 0, "linked": 0})));

    let bob = app.create_user_json(entra_user("bob@contoso.com", "BOB@contoso.com", "0c8bf2f7-bob")).await;
    let carol = app.create_user_json(entra_user("carol@contoso.com", "carol@contoso.com", "0c8bf2f7-carol")).await;
    let events = feed(&app, 0).await;
    assert_eq!(types(&events), ["user.created", "user.linked", "user.created", "user.linked"]);
    let created = &events[0]["data"]["user"];
    assert_eq!(
        (created["email"].as_str(), created["productAccountId"].as_str(), created["externalId"].as_str()),
        (Some("bob@contoso.com"), Some("acct-bob"), Some("0c8bf2f7-bob"))
    );
    assert_eq!(events[1]["data"]["account"], json!({"id": "acct-bob", "matched": "email"}));
    assert_eq!(events[3]["data"]["account"], json!({"id": "acct-carol", "matched": "externalId"}));

    // The product reads users without a SCIM token: by id, by email, by account.
    let (status, user) = admin(&app, Method::GET, &format!("/users/{}", bob["id"].as_str().unwrap()), None).await;
    assert_eq!(status, 200);
    assert_eq!(user["product_account"], json!({"id": "acct-bob", "matched": "email"}));
    assert_eq!(user["scim"]["userName"], "bob@contoso.com");
    let (_, found) = admin(&app, Method::GET, "/users?email=CAROL%40contoso.com", None).await;
    assert_eq!(found["users"][0]["id"], carol["id"]);
    let (_, found) = admin(&app, Method::GET, "/users?account=acct-carol", None).await;
    assert_eq!(found["users"][0]["id"], carol["id"]);
    let (_, account) = admin(&app, Method::GET, "/accounts/acct-carol", None).await;
    assert_eq!(account["user"], json!({"id": carol["id"], "matched": "externalId"}));
    let (status, _) = admin(&app, Method::GET, "/users?email=a%40b.c&account=x", None).await;
    assert_eq!(status, 400);
    let (status, _) = admin(&app, Method::GET, "/users/no-such-user", None).await;
    assert_eq!(status, 404);
    let (status, problem) = admin(&app, Method::PUT, "/accounts/acct-empty", Some(&json!({}))).await;
    assert_eq!(status, 400, "{problem}");

    // Forgetting an account unlinks its user.
    let seen = last_seq(&feed(&app, 0).await);
    let (status, _) = admin(&app, Method::DELETE, "/accounts/acct-bob", None).await;
    assert_eq!(status, 204);
    assert_eq!(types(&feed(&app, seen).await), ["user.unlinked"]);
}

async fn duplicate_emails_are_allowed_and_flagged_or_refused_with_409(app: TestApp) {
    app.create_user_json(entra_user("bob@contoso.com", "bob@contoso.com", "e1")).await;
    app.create_user_json(entra_user("bob.smith@contoso.com", "Bob@Contoso.com", "e2")).await;
    let events = feed(&app, 0).await;
    assert_eq!(events[1]["data"]["flags"], json!(["duplicate_email"]), "allowed by default, and flagged");

    settings(&app, json!({"duplicate_emails": "refuse"})).await;
    let (_, readiness) = status_json(app.get("/readiness").await).await;
    assert_eq!(readiness["ready"], false, "{readiness}");
    let finding = readiness["findings"].as_array().unwrap().iter().find(|f| f["code"] == "duplicate_emails").unwrap();
    assert_eq!(finding["severity"], "warning");

    let response = app.post("/Users", &entra_user("robert@contoso.com", "BOB@contoso.com", "e3")).await;
    let error = assert_scim_error(response, 409, Some("uniqueness")).await;
    assert!(error["detail"].as_str().unwrap().contains("bob@contoso.com"), "{error}");
    let (_, users) = status_json(app.get("/Users?filter=userName%20eq%20%22robert%40contoso.com%22").await).await;
    assert_eq!(users["totalResults"], 0, "nothing was written");
}

async fn organizations_follow_their_groups_over_http(app: TestApp) {
    settings(&app, json!({"autoprovision": true})).await;
    let ann = app.create_user("ann").await;
    let ann = ann["id"].as_str().unwrap();
    let group = app.create_group("Engineering", &[ann]).await;
    let path = format!("/Groups/{}", group["id"].as_str().unwrap());
    let organizations = || async {
        let (status, body) = admin(&app, Method::GET, "/organizations", None).await;
        assert_eq!(status, 200);
        body["organizations"].as_array().unwrap().clone()
    };
    let original = organizations().await[0].clone();

    let rename = json!([{"op": "replace", "path": "displayName", "value": "Platform Engineering"}]);
    assert_eq!(app.patch_ops(&path, rename).await.status(), 204);
    let renamed = organizations().await[0].clone();
    assert_eq!(
        (renamed["id"].as_str(), renamed["name"].as_str(), renamed["display_name"].as_str()),
        (original["id"].as_str(), Some("engineering"), Some("Platform Engineering"))
    );
    let seen = last_seq(&feed(&app, 0).await);
    assert_eq!(app.delete(&path).await.status(), 204);
    let deleted = feed(&app, seen).await;
    assert_eq!(types(&deleted), ["membership.removed", "organization.archived", "group.deleted"]);
    assert!(organizations().await[0]["archived"].is_string(), "kept, and marked archived");
    let (_, memberships) = admin(&app, Method::GET, &format!("/users/{ann}/memberships"), None).await;
    assert_eq!(memberships["memberships"], json!([]));

    app.create_group("Engineering", &[ann]).await;
    let back = organizations().await;
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!((back[0]["id"].as_str(), back[0].get("archived")), (original["id"].as_str(), None));

    // Every group name gives an organization.
    app.create_group("日本チーム", &[ann]).await;
    app.create_group("!!!", &[ann]).await;
    let names: Vec<String> = organizations().await.iter().map(|o| o["name"].as_str().unwrap().to_owned()).collect();
    assert!(names.contains(&"ri-ben-timu".to_owned()), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("group-")), "{names:?}");
    let (_, memberships) = admin(&app, Method::GET, &format!("/users/{ann}/memberships"), None).await;
    assert_eq!(memberships["memberships"].as_array().unwrap().len(), 3, "{memberships}");
}

async fn deleting_a_user_announces_its_removal_from_each_group(app: TestApp) {
    let ann = app.create_user("ann").await;
    let ann = ann["id"].as_str().unwrap();
    // Neither group gives an organization: their members matter to the product all the same.
    let readers = app.create_group("Readers", &[ann]).await;
    let writers = app.create_group("Writers", &[ann]).await;
    let seen = last_seq(&feed(&app, 0).await);
    assert_eq!(app.delete(&format!("/Users/{ann}")).await.status(), 204);
    let events = feed(&app, seen).await;
    assert_eq!(types(&events), ["group.member_removed", "group.member_removed", "user.deleted"]);
    let mut groups: Vec<&str> = events[..2].iter().map(|e| e["data"]["group"]["id"].as_str().unwrap()).collect();
    groups.sort_unstable();
    let mut expected = [readers["id"].as_str().unwrap(), writers["id"].as_str().unwrap()];
    expected.sort_unstable();
    assert_eq!(groups, expected);
    assert!(events[..2].iter().all(|e| e["data"]["user"]["id"] == ann && e["data"]["user"]["userName"] == "ann"));
    let seqs: Vec<i64> = feed(&app, 0).await.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=i64::try_from(seqs.len()).unwrap()).collect::<Vec<_>>(), "gap-free");
}

async fn a_fresh_tenant_is_reported_not_ready_and_says_what_to_do(app: TestApp) {
    let fresh = format!("{}-new", app.org);
    let (status, _) = admin_json(app.admin(Method::POST, "/tenants", Some(&json!({"name": fresh}))).await).await;
    assert_eq!(status, 201);
    let (status, report) = admin_json(app.admin(Method::GET, &format!("/tenants/{fresh}/readiness"), None).await).await;
    assert_eq!((status, report["ready"].as_bool()), (200, Some(false)), "{report}");
    let findings = report["findings"].as_array().unwrap();
    let warnings: Vec<&str> =
        findings.iter().filter(|f| f["severity"] == "warning").map(|f| f["code"].as_str().unwrap()).collect();
    assert_eq!(warnings, ["no_token", "no_group_rules"]);
    assert!(findings.iter().all(|f| f["remedy"].as_str().is_some_and(|r| !r.is_empty())), "{report}");

    // Entra needs 25 requests a second; and the traffic shows which IdP really calls.
    settings(
        &app,
        json!({"idp_profile": "entra", "autoprovision": true, "rate_limit": {"per_second": 10, "burst": 20}}),
    )
    .await;
    let response = app
        .client
        .get(app.url("/Users"))
        .bearer_auth(&app.token)
        .header("User-Agent", "Okta SCIM Client 1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let codes = || async {
        let (_, report) = status_json(app.get("/readiness").await).await;
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert!(codes().await.contains(&"rate_limit_too_low".to_owned()));
    // The User-Agent is recorded in the background, in batches.
    let mismatch =
        eventually(Duration::from_secs(10), || async { codes().await.contains(&"idp_profile_mismatch".to_owned()) })
            .await;
    assert!(mismatch, "{:?}", codes().await);
}

/// On a gateway that records the User-Agents it saw every second, on both backends.
async fn readiness_preflight(backend: domain::testing::Backend) {
    if let Some(app) = spawn_app_with(backend, |s| s.token_use_flush_seconds = 1).await {
        a_fresh_tenant_is_reported_not_ready_and_says_what_to_do(app).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_tenant_is_not_ready_on_sqlite() {
    readiness_preflight(domain::testing::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_tenant_is_not_ready_on_postgres() {
    readiness_preflight(domain::testing::Backend::Postgres).await;
}

#[test]
fn every_event_type_is_documented() {
    let docs = include_str!("../../../../docs/webhooks.md");
    let examples = docs.split("### Examples").nth(1).unwrap();
    for event_type in domain::EventType::ALL {
        let name = event_type.as_str();
        assert!(docs.contains(&format!("| `{name}` |")), "docs/webhooks.md has no row for {name}");
        assert!(examples.contains(&format!("`{name}`")), "docs/webhooks.md has no example of {name}");
    }
}
