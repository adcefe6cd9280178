//! Groups reconcile into organization memberships over real HTTP: the IdP's SCIM traffic on one
//! side, the operator's admin API on the other.

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{admin_json, status_json, TestApp, SCIM_JSON};

both_backends!(
    autoprovisioning_creates_organizations_from_pushed_groups,
    mappings_give_roles_and_the_highest_wins,
    fifty_concurrent_patches_adding_members_lose_none,
    deactivation_suspends_and_reactivation_restores_without_groups_resent,
    replaying_the_same_idp_traffic_changes_nothing_and_emits_nothing,
    readiness_says_what_will_go_wrong,
    idp_profiles_change_only_the_answers,
    bad_organization_and_mapping_requests_get_problem_details,
);

async fn settings(app: &TestApp, body: Value) {
    let (status, tenant) =
        admin_json(app.admin(Method::PATCH, &format!("/tenants/{}", app.org), Some(&body)).await).await;
    assert_eq!(status, 200, "{tenant}");
}

async fn admin_get(app: &TestApp, path: &str) -> Value {
    let (status, body) = admin_json(app.admin(Method::GET, &format!("/tenants/{}{path}", app.org), None).await).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

async fn admin_post(app: &TestApp, path: &str, body: Value) -> Value {
    let (status, out) =
        admin_json(app.admin(Method::POST, &format!("/tenants/{}{path}", app.org), Some(&body)).await).await;
    assert_eq!(status, 201, "{path}: {out}");
    out
}

/// `(organization, role, state)` of a user's memberships, from the admin API.
async fn memberships(app: &TestApp, user: &str) -> Vec<(String, String, String)> {
    let body = admin_get(app, &format!("/users/{user}/memberships")).await;
    body["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let s = |k: &str| m[k].as_str().unwrap().to_owned();
            (s("organization"), s("role"), s("state"))
        })
        .collect()
}

fn m(org: &str, role: &str, state: &str) -> (String, String, String) {
    (org.into(), role.into(), state.into())
}

async fn user(app: &TestApp, name: &str) -> String {
    app.create_user(name).await["id"].as_str().unwrap().to_owned()
}

/// The types of the tenant's events after `after`, from the store's feed.
async fn event_types(app: &TestApp, after: i64) -> (Vec<String>, i64) {
    use domain::EventStore;
    let tenant = domain::TenantName::parse(&app.org).unwrap();
    let events = app.store.events_after(&tenant, after, 10_000).await.unwrap();
    let last = events.last().map_or(after, |e| e.seq);
    (events.into_iter().map(|e| e.event_type.as_str().to_owned()).collect(), last)
}

async fn autoprovisioning_creates_organizations_from_pushed_groups(app: TestApp) {
    settings(&app, json!({"autoprovision": true, "default_role": "member"})).await;
    let ann = user(&app, "ann@example.com").await;
    let bob = user(&app, "bob@example.com").await;
    // Entra: the group is created empty, members follow by PATCH in the legacy dialect.
    let group = app.create_group("Designers", &[]).await;
    let group_id = group["id"].as_str().unwrap();
    let ops = json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": ann}, {"value": bob}]}]);
    assert_eq!(app.patch_ops(&format!("/Groups/{group_id}"), ops).await.status(), 204);

    let orgs = admin_get(&app, "/organizations").await;
    assert_eq!(orgs["organizations"][0]["name"], "designers");
    assert_eq!(orgs["organizations"][0]["autoprovisioned"], true);
    assert_eq!(memberships(&app, &ann).await, [m("designers", "member", "active")]);
    let members = admin_get(&app, "/organizations/designers/members").await;
    let names: Vec<&str> =
        members["members"].as_array().unwrap().iter().map(|m| m["user"]["userName"].as_str().unwrap()).collect();
    assert_eq!(names, ["ann@example.com", "bob@example.com"]);
}

async fn mappings_give_roles_and_the_highest_wins(app: TestApp) {
    for name in ["acme", "acme-eng"] {
        admin_post(&app, "/organizations", json!({"name": name})).await;
    }
    admin_post(&app, "/mappings", json!({"group": "Engineering", "organization": "acme-eng"})).await;
    admin_post(&app, "/mappings", json!({"group": "engineering", "organization": "acme", "role": "member"})).await;
    let ann = user(&app, "ann").await;
    let eng = app.create_group("Engineering", &[&ann]).await;
    let admins = app.create_group("Admins", &[]).await;
    let admins_id = admins["id"].as_str().unwrap();
    admin_post(&app, "/mappings", json!({"group_id": admins_id, "organization": "acme", "role": "admin"})).await;
    assert_eq!(memberships(&app, &ann).await, [m("acme", "member", "active"), m("acme-eng", "member", "active")]);

    let ops = json!([{"op": "add", "path": "members", "value": [{"value": ann}]}]);
    assert_eq!(app.patch_ops(&format!("/Groups/{admins_id}"), ops).await.status(), 204);
    assert_eq!(memberships(&app, &ann).await[0], m("acme", "admin", "active"), "the highest role wins");

    let listed = admin_get(&app, "/mappings").await;
    assert_eq!(listed["mappings"].as_array().unwrap().len(), 3);
    let by_id = listed["mappings"].as_array().unwrap().iter().find(|m| m["group_id"] == admins_id).unwrap();
    let path = format!("/tenants/{}/mappings/{}", app.org, by_id["id"].as_str().unwrap());
    assert_eq!(admin_json(app.admin(Method::DELETE, &path, None).await).await.0, 204);
    assert_eq!(
        memberships(&app, &ann).await[0],
        m("acme", "member", "active"),
        "removing the rule takes its role away"
    );
    let _ = eng;
}

async fn fifty_concurrent_patches_adding_members_lose_none(app: TestApp) {
    settings(&app, json!({"autoprovision": true})).await;
    let mut users = Vec::new();
    for i in 0..50 {
        users.push(user(&app, &format!("user{i:02}@example.com")).await);
    }
    let group = app.create_group("Everyone", &[]).await;
    let path = format!("/Groups/{}", group["id"].as_str().unwrap());
    // Entra sends one PATCH per membership change, several at once.
    let patches = users.iter().map(|id| {
        let ops = json!([{"op": "Add", "path": "members", "value": [{"value": id}]}]);
        let path = path.clone();
        let app = &app;
        async move { app.patch_ops(&path, ops).await.status().as_u16() }
    });
    let statuses = join_all(patches).await;
    assert!(statuses.iter().all(|s| *s == 204), "{statuses:?}");
    let (status, group) = status_json(app.get(&path).await).await;
    assert_eq!(status, 200);
    assert_eq!(group["members"].as_array().unwrap().len(), 50, "no member lost");
    let members = admin_get(&app, "/organizations/everyone/members").await;
    assert_eq!(members["members"].as_array().unwrap().len(), 50, "no membership lost");
    let (types, _) = event_types(&app, 0).await;
    assert_eq!(types.iter().filter(|t| *t == "membership.added").count(), 50);
}

async fn deactivation_suspends_and_reactivation_restores_without_groups_resent(app: TestApp) {
    settings(&app, json!({"autoprovision": true})).await;
    let ann = user(&app, "ann").await;
    app.create_group("Designers", &[&ann]).await;
    let path = format!("/Users/{ann}");
    let disable = json!([{"op": "Replace", "path": "active", "value": "False"}]);
    assert_eq!(app.patch_ops(&path, disable).await.status(), 200);
    assert_eq!(memberships(&app, &ann).await, [m("designers", "member", "suspended")]);
    let (status, read) = status_json(app.get(&path).await).await;
    assert_eq!((status, &read["active"]), (200, &json!(false)), "a disabled user stays readable");
    // Okta reactivates with a path-less replace; no group is sent again.
    let enable = json!([{"op": "replace", "value": {"active": true}}]);
    assert_eq!(app.patch_ops(&path, enable).await.status(), 200);
    assert_eq!(memberships(&app, &ann).await, [m("designers", "member", "active")]);
}

async fn replaying_the_same_idp_traffic_changes_nothing_and_emits_nothing(app: TestApp) {
    settings(&app, json!({"autoprovision": true})).await;
    let ann = user(&app, "ann").await;
    let group = app.create_group("Designers", &[]).await;
    let group_path = format!("/Groups/{}", group["id"].as_str().unwrap());
    // A group's PATCH is answered 204, a user's 200.
    let cycle = [
        (group_path.clone(), json!([{"op": "Add", "path": "members", "value": [{"value": ann}]}]), 204),
        (format!("/Users/{ann}"), json!([{"op": "Replace", "path": "displayName", "value": "Ann"}]), 200),
        (format!("/Users/{ann}"), json!([{"op": "Replace", "path": "active", "value": "True"}]), 200),
        (group_path.clone(), json!([{"op": "Replace", "path": "displayName", "value": "Designers"}]), 204),
    ];
    for (path, ops, status) in &cycle {
        assert_eq!(app.patch_ops(path, ops.clone()).await.status(), *status);
    }
    let (_, seen) = event_types(&app, 0).await;
    let (_, before) = status_json(app.get(&group_path).await).await;
    for (path, ops, status) in &cycle {
        assert_eq!(app.patch_ops(path, ops.clone()).await.status(), *status);
    }
    assert_eq!(event_types(&app, seen).await.0, Vec::<String>::new(), "a replayed cycle emits nothing");
    let (_, after) = status_json(app.get(&group_path).await).await;
    assert_eq!(after["meta"]["version"], before["meta"]["version"], "and changes nothing");
}

async fn readiness_says_what_will_go_wrong(app: TestApp) {
    let readiness = || async {
        let (status, body) = status_json(app.get("/readiness").await).await;
        assert_eq!(status, 200, "{body}");
        body
    };
    let codes = |body: &Value| -> Vec<String> {
        body["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap().to_owned()).collect()
    };
    // The app's tenant has a token; nothing can give a membership yet.
    let fresh = readiness().await;
    assert_eq!(fresh["ready"], false, "{fresh}");
    assert_eq!(codes(&fresh), ["no_group_rules", "no_webhook"], "{fresh}");
    let rules = &fresh["findings"][0];
    assert_eq!(rules["severity"], "warning");
    assert!(rules["remedy"].as_str().unwrap().contains("autoprovisioning"), "{rules}");

    app.create_group("Designers", &[]).await;
    let body = readiness().await;
    assert_eq!(body["ready"], false);
    let unlinked = body["findings"].as_array().unwrap().iter().find(|f| f["code"] == "unlinked_groups").unwrap();
    assert!(unlinked["message"].as_str().unwrap().contains("autoprovisioning is off"), "{unlinked}");
    assert!(unlinked["message"].as_str().unwrap().contains("Designers"));

    // Turning autoprovisioning on reconciles the groups already there.
    settings(&app, json!({"autoprovision": true})).await;
    let body = readiness().await;
    assert_eq!((body["ready"].as_bool(), body["counts"]["organizations"].as_u64()), (Some(true), Some(1)), "{body}");
    // The same report for operators.
    assert_eq!(admin_get(&app, "/readiness").await["ready"], true);
}

async fn idp_profiles_change_only_the_answers(app: TestApp) {
    let ada = app.create_user("ada@example.com").await;
    let group = app.create_group("Designers", &[ada["id"].as_str().unwrap()]).await;
    let path = format!("/Groups/{}", group["id"].as_str().unwrap());
    let rename = json!([{"op": "Replace", "path": "displayName", "value": "Design"}]);

    // Generic and Entra: 204 with the new ETag, the members neither read nor sent.
    for profile in ["generic", "entra"] {
        settings(&app, json!({"idp_profile": profile})).await;
        let before = app.get(&path).await.headers()["etag"].clone();
        let name = format!("Design ({profile})");
        let response = app.patch_ops(&path, json!([{"op": "Replace", "path": "displayName", "value": name}])).await;
        assert_eq!(response.status(), 204, "{profile}: no member list in the answer");
        let etag = response.headers()["etag"].clone();
        assert_ne!(etag, before, "{profile}: the answer carries the new version");
        assert!(response.text().await.unwrap().is_empty());
        let read = app.get(&path).await;
        assert_eq!(read.headers()["etag"], etag, "{profile}");
        assert_eq!(read.json::<Value>().await.unwrap()["displayName"], name, "{profile}: patched");
    }

    // The other IdPs: their 200 with the group, without its members.
    for profile in ["okta", "onelogin", "jumpcloud", "ping"] {
        settings(&app, json!({"idp_profile": profile})).await;
        let name = format!("Design ({profile})");
        let response = app.patch_ops(&path, json!([{"op": "Replace", "path": "displayName", "value": name}])).await;
        assert_eq!(response.status(), 200, "{profile}");
        let etag = response.headers()["etag"].clone();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["displayName"], name, "{profile}: {body}");
        assert_eq!(body.get("members"), None, "{profile}: no member list in the answer: {body}");
        assert_eq!(app.get(&path).await.headers()["etag"], etag, "{profile}");
    }
    settings(&app, json!({"idp_profile": "generic"})).await;

    // Asking for attributes gets the 200 with exactly those, members only when named; excluding
    // some gets the 200 with the rest.
    let response = app.patch_ops(&format!("{path}?attributes=displayName"), rename.clone()).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body.get("members"), None, "{body}");
    assert_eq!(body["displayName"], "Design", "{body}");
    let response = app.patch_ops(&format!("{path}?attributes=members"), rename.clone()).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["members"][0]["value"], ada["id"], "{body}");
    let response = app.patch_ops(&format!("{path}?excludedAttributes=members"), rename.clone()).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!((body.get("members"), &body["displayName"]), (None, &json!("Design")), "{body}");
    let response = app.patch_ops(&format!("{path}?excludedAttributes=externalId"), rename).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["members"][0]["value"], ada["id"], "the whole group but what is excluded: {body}");

    settings(&app, json!({"idp_profile": "onelogin"})).await;
    let response = app.get(&path).await;
    assert_eq!(response.headers()["content-type"], "application/json");
    settings(&app, json!({"idp_profile": "okta"})).await;
    let response = app.get(&path).await;
    assert_eq!(response.headers()["content-type"], SCIM_JSON);
    let tenant = admin_get(&app, "").await;
    assert_eq!(tenant["idp_profile"], "okta");
}

async fn bad_organization_and_mapping_requests_get_problem_details(app: TestApp) {
    admin_post(&app, "/organizations", json!({"name": "acme"})).await;
    settings(&app, json!({"autoprovision": true})).await;
    app.create_group("Designers", &[]).await;
    let t = |p: &str| format!("/tenants/{}{p}", app.org);
    let cases = [
        (Method::POST, t("/organizations"), Some(json!({"name": "Not A Slug"})), 400, "organization name"),
        (Method::POST, t("/organizations"), Some(json!({"name": "acme"})), 409, "already exists"),
        (Method::GET, t("/organizations/nope"), None, 404, "not found"),
        (Method::DELETE, t("/organizations/designers"), None, 409, "Designers"),
        (
            Method::POST,
            t("/mappings"),
            Some(json!({"group": "A", "group_id": "B", "organization": "acme"})),
            400,
            "exactly one",
        ),
        (Method::POST, t("/mappings"), Some(json!({"group": "A", "organization": "nope"})), 404, "not found"),
        (
            Method::POST,
            t("/mappings"),
            Some(json!({"group": "A", "organization": "acme", "role": "root"})),
            400,
            "unknown variant",
        ),
        (Method::DELETE, t("/mappings/nope"), None, 404, "not found"),
        (Method::GET, t("/users/nope/memberships"), None, 404, "not found"),
        (Method::PATCH, t(""), Some(json!({"deprovision": "delete"})), 400, "unknown variant"),
        (Method::PATCH, t(""), Some(json!({"idp_profile": "salesforce"})), 400, "unknown variant"),
    ];
    for (method, path, body, status, detail) in cases {
        let (got, problem) = admin_json(app.admin(method.clone(), &path, body.as_ref()).await).await;
        assert_eq!(got, status, "{method} {path}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains(detail), "{method} {path}: {problem}");
    }
    admin_post(&app, "/mappings", json!({"group": "Designers", "organization": "acme"})).await;
    let (status, _) = admin_json(app.admin(Method::DELETE, &t("/organizations/designers"), None).await).await;
    assert_eq!(status, 204, "an organization no group gives any more can go");
}
