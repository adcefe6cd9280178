use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{assert_scim_error, status_json, TestApp};

both_backends!(
    replace_add_remove_with_paths,
    pathless_replace_with_dotted_and_urn_keys,
    value_filter_paths_target_elements,
    patch_is_atomic,
    bad_patches_get_the_right_scim_type,
    members_add_remove_by_value_and_by_filter,
    members_replace_and_remove_all,
    concurrent_member_adds_lose_nothing,
    deactivate_with_string_boolean,
);

async fn user(app: &TestApp) -> (String, Value) {
    let created = app
        .create_user_json(json!({
            "schemas": [proto::schema::USER],
            "userName": "patchme",
            "name": {"givenName": "Pat", "familyName": "Ch"},
            "emails": [{"value": "p@work.example", "type": "work", "primary": true}, {"value": "p@home.example", "type": "home"}]
        }))
        .await;
    (format!("/Users/{}", created["id"].as_str().unwrap()), created)
}

async fn replace_add_remove_with_paths(app: TestApp) {
    let (path, _) = user(&app).await;
    let response = app
        .patch_ops(
            &path,
            json!([
                {"op": "replace", "path": "name.givenName", "value": "Patricia"},
                {"op": "add", "path": "title", "value": "Lead"},
                {"op": "remove", "path": "name.familyName"}
            ]),
        )
        .await;
    let (status, body) = status_json(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], json!({"givenName": "Patricia"}));
    assert_eq!(body["title"], "Lead");
}

async fn pathless_replace_with_dotted_and_urn_keys(app: TestApp) {
    let (path, _) = user(&app).await;
    let response = app
        .patch_ops(
            &path,
            json!([{"op": "Replace", "value": {
                "name.familyName": "Changed",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "R&D",
                "displayName": "Pat C"
            }}]),
        )
        .await;
    let (status, body) = status_json(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"]["familyName"], "Changed");
    assert_eq!(body["name"]["givenName"], "Pat");
    assert_eq!(body["displayName"], "Pat C");
    assert_eq!(body[proto::schema::ENTERPRISE_USER]["department"], "R&D");
}

async fn value_filter_paths_target_elements(app: TestApp) {
    let (path, _) = user(&app).await;
    let response = app
        .patch_ops(
            &path,
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@work.example"}]),
        )
        .await;
    let (status, body) = status_json(response).await;
    assert_eq!(status, 200, "{body}");
    let emails = body["emails"].as_array().unwrap();
    assert!(emails.iter().any(|e| e["value"] == "new@work.example" && e["type"] == "work"));
    assert!(emails.iter().any(|e| e["value"] == "p@home.example"));

    let response = app.patch_ops(&path, json!([{"op": "remove", "path": "emails[type eq \"home\"]"}])).await;
    let (_, body) = status_json(response).await;
    assert_eq!(body["emails"].as_array().unwrap().len(), 1);
}

async fn patch_is_atomic(app: TestApp) {
    let (path, created) = user(&app).await;
    let response = app
        .patch_ops(
            &path,
            json!([
                {"op": "replace", "path": "title", "value": "Should not stick"},
                {"op": "replace", "path": "id", "value": "hijack"}
            ]),
        )
        .await;
    assert_scim_error(response, 400, Some("mutability")).await;
    let (_, read) = status_json(app.get(&path).await).await;
    assert!(read.get("title").is_none());
    assert_eq!(read["meta"]["version"], created["meta"]["version"]);
}

async fn bad_patches_get_the_right_scim_type(app: TestApp) {
    let (path, _) = user(&app).await;
    let cases = [
        (json!({"Operations": [{"op": "add", "path": "title", "value": "x"}]}), "invalidSyntax"),
        (
            json!({"schemas": [proto::patch::PATCH_OP], "Operations": [{"op": "add", "path": "title[", "value": "x"}]}),
            "invalidPath",
        ),
        (
            json!({"schemas": [proto::patch::PATCH_OP], "Operations": [{"op": "add", "path": "nosuchattr", "value": "x"}]}),
            "invalidPath",
        ),
        (json!({"schemas": [proto::patch::PATCH_OP], "Operations": [{"op": "remove"}]}), "noTarget"),
        (
            json!({"schemas": [proto::patch::PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": 42}]}),
            "invalidValue",
        ),
        (
            json!({"schemas": [proto::patch::PATCH_OP], "Operations": [{"op": "replace", "path": "emails[value ew \"@nowhere\"].value", "value": "x"}]}),
            "noTarget",
        ),
    ];
    for (body, scim_type) in cases {
        let response = app.patch(&path, &body).await;
        assert_scim_error(response, 400, Some(scim_type)).await;
    }
}

async fn members_add_remove_by_value_and_by_filter(app: TestApp) {
    let ids: Vec<String> = futures_ids(&app, 4).await;
    let g = app.create_group("G", &[]).await;
    let path = format!("/Groups/{}", g["id"].as_str().unwrap());
    let add = json!([{"op": "Add", "path": "members", "value": ids.iter().map(|id| json!({"value": id})).collect::<Vec<_>>()}]);
    let body = patched_group(&app, &path, add).await;
    assert_eq!(body["members"].as_array().unwrap().len(), 4);

    // Entra removes with a value array; others with a filter path.
    let remove_by_value = json!([{"op": "Remove", "path": "members", "value": [{"value": ids[0]}]}]);
    patched_group(&app, &path, remove_by_value).await;
    let remove_by_filter = json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", ids[1])}]);
    let body = patched_group(&app, &path, remove_by_filter).await;
    let mut left: Vec<&str> =
        body["members"].as_array().unwrap().iter().map(|m| m["value"].as_str().unwrap()).collect();
    left.sort();
    let mut expected = vec![ids[2].as_str(), ids[3].as_str()];
    expected.sort();
    assert_eq!(left, expected);
}

async fn members_replace_and_remove_all(app: TestApp) {
    let ids = futures_ids(&app, 3).await;
    let g = app.create_group("G", &[&ids[0], &ids[1]]).await;
    let path = format!("/Groups/{}", g["id"].as_str().unwrap());
    let replace = json!([{"op": "replace", "path": "members", "value": [{"value": ids[2]}]}]);
    let body = patched_group(&app, &path, replace).await;
    assert_eq!(body["members"].as_array().unwrap().len(), 1);
    assert_eq!(body["members"][0]["value"], ids[2]);
    let body = patched_group(&app, &path, json!([{"op": "remove", "path": "members"}])).await;
    assert!(body.get("members").is_none(), "{body}");
}

/// The group at `path` after PATCHing it with `ops`, read back: a group PATCH is answered 204.
async fn patched_group(app: &TestApp, path: &str, ops: Value) -> Value {
    assert_eq!(app.patch_ops(path, ops).await.status(), 204);
    let (status, body) = status_json(app.get(path).await).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn concurrent_member_adds_lose_nothing(app: TestApp) {
    let ids = futures_ids(&app, 20).await;
    let g = app.create_group("Busy", &[]).await;
    let path = format!("/Groups/{}", g["id"].as_str().unwrap());
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| {
            let (app, path, id) = (app.clone(), path.clone(), id.clone());
            tokio::spawn(async move {
                app.patch_ops(&path, json!([{"op": "add", "path": "members", "value": [{"value": id}]}]))
                    .await
                    .status()
                    .as_u16()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 204);
    }
    let (_, body) = status_json(app.get(&path).await).await;
    assert_eq!(body["members"].as_array().unwrap().len(), 20);
}

async fn deactivate_with_string_boolean(app: TestApp) {
    let (path, _) = user(&app).await;
    let (status, body) =
        status_json(app.patch_ops(&path, json!([{"op": "Replace", "path": "active", "value": "False"}])).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], false);
    let ids = app.list_ids("/Users?filter=active%20eq%20false").await;
    assert_eq!(ids.len(), 1);
}

async fn futures_ids(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(app.create_user(&format!("user{i}")).await["id"].as_str().unwrap().to_owned());
    }
    ids
}
