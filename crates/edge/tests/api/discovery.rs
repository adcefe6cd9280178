use serde_json::Value;

use crate::both_backends;
use crate::helpers::{assert_scim_error, status_json, TestApp};

both_backends!(
    service_provider_config_tells_the_truth,
    schemas_describe_every_resource,
    resource_types_list_users_and_groups,
    health_and_readiness
);

async fn service_provider_config_tells_the_truth(app: TestApp) {
    let (status, config) = status_json(app.get("/ServiceProviderConfig").await).await;
    assert_eq!(status, 200);
    assert_eq!(config["patch"]["supported"], true);
    assert_eq!(config["filter"]["supported"], true);
    assert_eq!(config["sort"]["supported"], true);
    assert_eq!(config["etag"]["supported"], true);
    assert_eq!(config["bulk"]["supported"], false);
    assert_eq!(config["changePassword"]["supported"], false);
    assert_eq!(config["authenticationSchemes"][0]["type"], "oauthbearertoken");
    assert_eq!(config["meta"]["location"], app.url("/ServiceProviderConfig"));
}

async fn schemas_describe_every_resource(app: TestApp) {
    let (status, list) = status_json(app.get("/Schemas").await).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["Resources"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [proto::schema::USER, proto::schema::ENTERPRISE_USER, proto::schema::GROUP]);
    let (status, user) = status_json(app.get(&format!("/Schemas/{}", proto::schema::USER)).await).await;
    assert_eq!(status, 200);
    let user_name = user["attributes"].as_array().unwrap().iter().find(|a| a["name"] == "userName").unwrap();
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["required"], true);
    let password = user["attributes"].as_array().unwrap().iter().find(|a| a["name"] == "password").unwrap();
    assert_eq!(password["returned"], "never");
    assert_scim_error(app.get("/Schemas/urn:nope").await, 404, None).await;
}

async fn resource_types_list_users_and_groups(app: TestApp) {
    let (_, list) = status_json(app.get("/ResourceTypes").await).await;
    let types: Vec<&Value> = list["Resources"].as_array().unwrap().iter().collect();
    assert_eq!(types.len(), 2);
    assert_eq!(types[0]["endpoint"], "/Users");
    assert_eq!(types[0]["schemaExtensions"][0]["schema"], proto::schema::ENTERPRISE_USER);
    let (status, group) = status_json(app.get("/ResourceTypes/Group").await).await;
    assert_eq!((status, group["endpoint"].as_str()), (200, Some("/Groups")));
}

async fn health_and_readiness(app: TestApp) {
    let health = app.client.get(format!("{}/healthz", app.address)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(format!("{}/readyz", app.address)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "ok");
}
