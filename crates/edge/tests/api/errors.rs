use reqwest::header::CONTENT_TYPE;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{assert_scim_error, status_json, TestApp};

both_backends!(
    malformed_json_is_invalid_syntax,
    wrong_content_type_is_415,
    plain_json_content_type_is_accepted,
    oversized_bodies_are_413,
    unknown_paths_and_methods_are_scim_errors,
    unknown_ids_are_404,
    bulk_is_not_implemented,
    nul_characters_are_client_errors,
);

async fn malformed_json_is_invalid_syntax(app: TestApp) {
    let response = app
        .client
        .post(app.url("/Users"))
        .bearer_auth(&app.token)
        .header(CONTENT_TYPE, "application/scim+json")
        .body("{\"userName\": ")
        .send()
        .await
        .unwrap();
    assert_scim_error(response, 400, Some("invalidSyntax")).await;
    let response = app
        .client
        .post(app.url("/Users"))
        .bearer_auth(&app.token)
        .header(CONTENT_TYPE, "application/scim+json")
        .send()
        .await
        .unwrap();
    assert_scim_error(response, 400, Some("invalidSyntax")).await;
    let response = app.post("/Users", &json!(["not", "an", "object"])).await;
    let (status, _) = status_json(response).await;
    assert_eq!(status, 400);
}

async fn wrong_content_type_is_415(app: TestApp) {
    let response = app
        .client
        .post(app.url("/Users"))
        .bearer_auth(&app.token)
        .header(CONTENT_TYPE, "text/xml")
        .body("<user/>")
        .send()
        .await
        .unwrap();
    assert_scim_error(response, 415, None).await;
}

async fn plain_json_content_type_is_accepted(app: TestApp) {
    let body = json!({"schemas": [proto::schema::USER], "userName": "json"});
    let response = app.client.post(app.url("/Users")).bearer_auth(&app.token).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let response = app
        .client
        .post(app.url("/Users"))
        .bearer_auth(&app.token)
        .body(json!({"schemas": [proto::schema::USER], "userName": "none"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "IdPs that omit Content-Type are served");
}

async fn oversized_bodies_are_413(app: TestApp) {
    let huge = "x".repeat(2 * 1024 * 1024);
    let response = app.post("/Users", &json!({"schemas": [proto::schema::USER], "userName": huge})).await;
    assert_scim_error(response, 413, None).await;
}

async fn unknown_paths_and_methods_are_scim_errors(app: TestApp) {
    assert_scim_error(app.get("/Nothing").await, 404, None).await;
    let response = app.client.get(format!("{}/no/such/thing", app.address)).send().await.unwrap();
    assert_scim_error(response, 404, None).await;
    assert_scim_error(app.delete("/Users").await, 405, None).await;
    assert_scim_error(app.send(reqwest::Method::PUT, "/ServiceProviderConfig", Some(&json!({}))).await, 405, None)
        .await;
}

async fn unknown_ids_are_404(app: TestApp) {
    assert_scim_error(app.get("/Users/not-a-uuid").await, 404, None).await;
    assert_scim_error(app.get("/Groups/00000000-0000-0000-0000-000000000000").await, 404, None).await;
    let ops = json!([{"op": "replace", "path": "title", "value": "x"}]);
    assert_scim_error(app.patch_ops("/Users/nope", ops).await, 404, None).await;
}

async fn bulk_is_not_implemented(app: TestApp) {
    let response = app
        .post("/Bulk", &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": []}))
        .await;
    assert_scim_error(response, 501, None).await;
}

/// PostgreSQL cannot store U+0000; a value holding it is the client's error on every backend,
/// never a 500, and nothing is written.
async fn nul_characters_are_client_errors(app: TestApp) {
    let user = json!({"schemas": [proto::schema::USER], "userName": "nul\u{0}user"});
    assert_scim_error(app.post("/Users", &user).await, 400, Some("invalidValue")).await;
    let nested = json!({"userName": "nul-nested", "name": {"givenName": "a\u{0}"}});
    assert_scim_error(app.post("/Users", &nested).await, 400, Some("invalidValue")).await;
    let group = json!({"schemas": [proto::schema::GROUP], "displayName": "nul\u{0}group"});
    assert_scim_error(app.post("/Groups", &group).await, 400, Some("invalidValue")).await;
    let id = app.create_user("nul-target").await["id"].as_str().unwrap().to_owned();
    let ops = json!([{"op": "replace", "path": "displayName", "value": "x\u{0}"}]);
    assert_scim_error(app.patch_ops(&format!("/Users/{id}"), ops).await, 400, Some("invalidValue")).await;
    assert_eq!(app.list_ids("/Users").await, [id], "nothing else was written");

    // An id in the path holding it names no resource; PostgreSQL refuses even to look it up.
    let (status, json) = status_json(app.get("/Users/nul%00id").await).await;
    assert!(status == 404 || (status == 400 && json["scimType"] == "invalidValue"), "{status}: {json}");
}
