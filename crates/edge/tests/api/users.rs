use reqwest::header::{ETAG, LOCATION};
use serde_json::json;

use crate::both_backends;
use crate::helpers::{assert_scim_error, header, status_json, TestApp};

both_backends!(
    create_returns_201_with_location_etag_and_meta,
    read_back_returns_what_was_sent,
    enterprise_extension_round_trips,
    password_is_accepted_and_never_returned,
    user_name_is_unique_case_insensitively,
    put_replaces_the_user,
    delete_removes_the_user,
    if_match_is_honoured,
    if_none_match_gives_304,
    unknown_attributes_are_refused,
    attributes_and_excluded_attributes_project_reads,
    users_list_the_groups_they_are_in,
    tenants_are_isolated,
);

async fn create_returns_201_with_location_etag_and_meta(app: TestApp) {
    let response = app
        .post(
            "/Users",
            &json!({"schemas": [proto::schema::USER], "userName": "bjensen@example.com", "externalId": "bjensen"}),
        )
        .await;
    let location = response.headers().get(LOCATION).unwrap().to_str().unwrap().to_owned();
    let etag = response.headers().get(ETAG).unwrap().to_str().unwrap().to_owned();
    let (status, user) = status_json(response).await;
    assert_eq!(status, 201);
    let id = user["id"].as_str().unwrap();
    assert_eq!(location, app.url(&format!("/Users/{id}")));
    assert_eq!(user["meta"]["location"], location);
    assert_eq!(user["meta"]["resourceType"], "User");
    assert_eq!(user["meta"]["version"], etag);
    assert!(user["meta"]["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(user["schemas"], json!([proto::schema::USER]));
}

async fn read_back_returns_what_was_sent(app: TestApp) {
    let sent = json!({
        "schemas": [proto::schema::USER],
        "userName": "Barbara.Jensen@Example.com",
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Ms. Barbara J Jensen III"},
        "displayName": "Babs Jensen",
        "nickName": "Babs",
        "title": "Tour Guide",
        "active": true,
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
        "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
        "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood", "region": "CA", "postalCode": "91608", "country": "USA", "primary": true}],
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "timezone": "America/Los_Angeles"
    });
    let created = app.create_user_json(sent.clone()).await;
    let (status, read) = status_json(app.get(&format!("/Users/{}", created["id"].as_str().unwrap())).await).await;
    assert_eq!(status, 200);
    for key in [
        "userName",
        "externalId",
        "name",
        "displayName",
        "nickName",
        "title",
        "active",
        "emails",
        "phoneNumbers",
        "addresses",
        "preferredLanguage",
        "locale",
        "timezone",
    ] {
        assert_eq!(read[key], sent[key], "{key} drifted");
    }
}

async fn enterprise_extension_round_trips(app: TestApp) {
    let manager = app.create_user("boss").await;
    let manager_id = manager["id"].as_str().unwrap();
    let created = app
        .create_user_json(json!({
            "schemas": [proto::schema::USER, proto::schema::ENTERPRISE_USER],
            "userName": "worker",
            proto::schema::ENTERPRISE_USER: {"employeeNumber": "701984", "department": "Tour Operations", "costCenter": "4130", "manager": {"value": manager_id}}
        }))
        .await;
    let ext = &created[proto::schema::ENTERPRISE_USER];
    assert_eq!(ext["employeeNumber"], "701984");
    assert_eq!(ext["manager"]["value"], manager_id);
    assert!(created["schemas"].as_array().unwrap().contains(&json!(proto::schema::ENTERPRISE_USER)));

    let ids = app.list_ids("/Users?filter=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department%20eq%20%22tour%20operations%22").await;
    assert_eq!(ids, vec![created["id"].as_str().unwrap().to_owned()]);
}

async fn password_is_accepted_and_never_returned(app: TestApp) {
    let created = app
        .create_user_json(json!({"schemas": [proto::schema::USER], "userName": "pw", "password": "t1meMa$heen"}))
        .await;
    assert!(created.get("password").is_none());
    let (_, read) =
        status_json(app.get(&format!("/Users/{}?attributes=password,userName", created["id"].as_str().unwrap())).await)
            .await;
    assert!(read.get("password").is_none(), "{read}");
    assert_eq!(read["userName"], "pw");
}

async fn user_name_is_unique_case_insensitively(app: TestApp) {
    app.create_user("alice@example.com").await;
    let response =
        app.post("/Users", &json!({"schemas": [proto::schema::USER], "userName": "ALICE@example.com"})).await;
    assert_scim_error(response, 409, Some("uniqueness")).await;
    // No second row was written.
    let (_, list) = status_json(app.get("/Users?filter=userName%20eq%20%22alice@example.com%22").await).await;
    assert_eq!(list["totalResults"], 1);
}

async fn put_replaces_the_user(app: TestApp) {
    let created = app
        .create_user_json(
            json!({"schemas": [proto::schema::USER], "userName": "put", "title": "Intern", "nickName": "p"}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let (status, replaced) = status_json(
        app.put(&format!("/Users/{id}"), &json!({"schemas": [proto::schema::USER], "id": "ignored", "userName": "put", "title": "Engineer", "meta": {"version": "W/\"99\""}})).await,
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["id"], id);
    assert_eq!(replaced["title"], "Engineer");
    assert!(replaced.get("nickName").is_none(), "PUT replaces: absent attributes are cleared");
    assert_ne!(replaced["meta"]["version"], created["meta"]["version"]);

    let response = app
        .put("/Users/00000000-0000-0000-0000-000000000000", &json!({"schemas": [proto::schema::USER], "userName": "x"}))
        .await;
    assert_scim_error(response, 404, None).await;
}

async fn delete_removes_the_user(app: TestApp) {
    let created = app.create_user("gone").await;
    let path = format!("/Users/{}", created["id"].as_str().unwrap());
    assert_eq!(app.delete(&path).await.status(), 204);
    assert_scim_error(app.get(&path).await, 404, None).await;
    assert_scim_error(app.delete(&path).await, 404, None).await;
}

async fn if_match_is_honoured(app: TestApp) {
    let created = app.create_user("etag").await;
    let id = created["id"].as_str().unwrap();
    let etag = created["meta"]["version"].as_str().unwrap();
    let ops =
        json!({"schemas": [proto::patch::PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "A"}]});
    let url = app.url(&format!("/Users/{id}"));

    let stale = app.send_with(reqwest::Method::PATCH, &url, Some(&ops), header("if-match", "W/\"999\"")).await;
    assert_scim_error(stale, 412, None).await;

    let ok = app.send_with(reqwest::Method::PATCH, &url, Some(&ops), header("if-match", etag)).await;
    assert_eq!(ok.status(), 200);
    // The old ETag is now stale for every write.
    let again = app.send_with(reqwest::Method::DELETE, &url, None, header("if-match", etag)).await;
    assert_scim_error(again, 412, None).await;
}

async fn if_none_match_gives_304(app: TestApp) {
    let created = app.create_user("cached").await;
    let url = app.url(&format!("/Users/{}", created["id"].as_str().unwrap()));
    let etag = created["meta"]["version"].as_str().unwrap();
    let response = app.send_with(reqwest::Method::GET, &url, None, header("if-none-match", etag)).await;
    assert_eq!(response.status(), 304);
    let response = app.send_with(reqwest::Method::GET, &url, None, header("if-none-match", "W/\"0\"")).await;
    assert_eq!(response.status(), 200);
}

async fn unknown_attributes_are_refused(app: TestApp) {
    let response = app
        .post("/Users", &json!({"schemas": [proto::schema::USER], "userName": "u", "favouriteColour": "blue"}))
        .await;
    assert_scim_error(response, 400, Some("invalidValue")).await;
    let response = app.post("/Users", &json!({"schemas": [proto::schema::USER], "userName": "u", "urn:example:params:scim:schemas:extension:acme:2.0:User": {"x": 1}})).await;
    assert_scim_error(response, 400, Some("invalidValue")).await;
    let response = app.post("/Users", &json!({"schemas": [proto::schema::USER], "displayName": "no userName"})).await;
    assert_scim_error(response, 400, Some("invalidValue")).await;
    let (_, list) = status_json(app.get("/Users").await).await;
    assert_eq!(list["totalResults"], 0, "nothing was written");
}

async fn attributes_and_excluded_attributes_project_reads(app: TestApp) {
    let created = app
        .create_user_json(json!({"schemas": [proto::schema::USER], "userName": "proj", "name": {"givenName": "P", "familyName": "Q"}, "title": "T"}))
        .await;
    let id = created["id"].as_str().unwrap();
    let (_, only) = status_json(app.get(&format!("/Users/{id}?attributes=userName,name.givenName")).await).await;
    assert_eq!(only["id"], id);
    assert_eq!(only["userName"], "proj");
    assert_eq!(only["name"], json!({"givenName": "P"}));
    assert!(only.get("title").is_none() && only.get("meta").is_none(), "{only}");

    let (_, without) = status_json(app.get(&format!("/Users/{id}?excludedAttributes=title,name")).await).await;
    assert!(without.get("title").is_none() && without.get("name").is_none());
    assert_eq!(without["userName"], "proj");
    assert_eq!(without["id"], id, "id is always returned");

    let (_, list) = status_json(app.get("/Users?attributes=userName").await).await;
    assert_eq!(list["Resources"][0]["userName"], "proj");
    assert!(list["Resources"][0].get("title").is_none());
}

async fn users_list_the_groups_they_are_in(app: TestApp) {
    let user = app.create_user("member").await;
    let uid = user["id"].as_str().unwrap();
    let loner = app.create_user("loner").await;
    let group = app.create_group("Engineering", &[uid]).await;
    let all = app.create_group("All staff", &[uid]).await;
    let (_, read) = status_json(app.get(&format!("/Users/{uid}")).await).await;
    // In display order, read by id and in a search page alike.
    assert_eq!(read["groups"][0]["value"], all["id"]);
    assert_eq!(read["groups"][0]["display"], "All staff");
    assert_eq!(read["groups"][1]["value"], group["id"]);
    assert_eq!(read["groups"][1]["display"], "Engineering");
    assert_eq!(read["groups"].as_array().map(Vec::len), Some(2), "{read}");
    let (_, page) = status_json(app.get("/Users?filter=userName%20eq%20%22member%22").await).await;
    assert_eq!(page["totalResults"], 1);
    assert_eq!(page["Resources"][0]["groups"], read["groups"]);
    let (_, alone) = status_json(app.get(&format!("/Users/{}", loner["id"].as_str().unwrap())).await).await;
    assert!(alone.get("groups").is_none_or(|g| g == &json!([])), "{alone}");
    let ids = app.list_ids(&format!("/Users?filter=groups.value%20eq%20%22{}%22", group["id"].as_str().unwrap())).await;
    assert_eq!(ids, vec![uid.to_owned()]);
}

async fn tenants_are_isolated(app: TestApp) {
    let user = app.create_user("mine").await;
    let uid = user["id"].as_str().unwrap();
    let other_org = format!("{}-other", app.org);
    let other_token = crate::helpers::issue_token(&app.store, &other_org, token::Scopes::all()).await;

    // The other tenant's token on this tenant's URL: refused.
    let response = app.client.get(app.url("/Users")).bearer_auth(&other_token).send().await.unwrap();
    assert_scim_error(response, 401, None).await;
    // On its own URL it sees none of this tenant's users, by list or by id.
    let other_base = format!("{}/scim/v2/{other_org}", app.address);
    let response = app.client.get(format!("{other_base}/Users")).bearer_auth(&other_token).send().await.unwrap();
    let (_, list) = status_json(response).await;
    assert_eq!(list["totalResults"], 0);
    let response = app.client.get(format!("{other_base}/Users/{uid}")).bearer_auth(&other_token).send().await.unwrap();
    assert_scim_error(response, 404, None).await;
    // And the same userName is free there.
    let response = app
        .client
        .post(format!("{other_base}/Users"))
        .bearer_auth(&other_token)
        .json(&json!({"schemas": [proto::schema::USER], "userName": "mine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}
