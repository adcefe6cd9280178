use serde_json::json;

use crate::both_backends;
use crate::helpers::{assert_scim_error, resource_ids, status_json, TestApp};

both_backends!(
    every_operator_translates_to_sql,
    logical_operators_and_complex_filters,
    attribute_names_and_string_compares_are_case_insensitive_where_the_schema_says,
    dates_compare_as_dates,
    paging_with_start_index_and_count,
    count_is_capped_at_max_results,
    sorting,
    post_search_on_resources_and_root,
    invalid_filters_are_400_invalid_filter,
    entra_email_matching_finds_the_user_case_insensitively,
    accept_application_json_is_honoured_on_answers_and_errors,
);

/// Five users with varied attributes; returns their ids by userName.
async fn people(app: &TestApp) -> std::collections::HashMap<String, String> {
    let specs = [
        json!({"userName": "alice", "title": "Engineer", "active": true, "externalId": "E1", "emails": [{"value": "alice@acme.com", "type": "work"}], "name": {"familyName": "Anders"}}),
        json!({"userName": "bob", "title": "Sales", "active": false, "externalId": "E2", "emails": [{"value": "bob@home.net", "type": "home"}]}),
        json!({"userName": "carol", "title": "Engineering Manager", "active": true, "emails": [{"value": "carol@acme.com", "type": "work"}, {"value": "c@home.net", "type": "home"}]}),
        json!({"userName": "dave", "active": true, "nickName": "D"}),
        json!({"userName": "Eve", "title": "engineer", "active": true}),
    ];
    let mut ids = std::collections::HashMap::new();
    for mut spec in specs {
        spec["schemas"] = json!([proto::schema::USER]);
        let created = app.create_user_json(spec.clone()).await;
        ids.insert(spec["userName"].as_str().unwrap().to_owned(), created["id"].as_str().unwrap().to_owned());
    }
    ids
}

async fn names(app: &TestApp, filter: &str) -> Vec<String> {
    let url = format!("{}?filter={}&sortBy=userName", app.url("/Users"), urlencode(filter));
    let response = app.client.get(url).bearer_auth(&app.token).send().await.unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(status, 200, "{filter}: {body}");
    body["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap().to_owned()).collect()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn every_operator_translates_to_sql(app: TestApp) {
    people(&app).await;
    assert_eq!(names(&app, "userName eq \"alice\"").await, ["alice"]);
    assert_eq!(names(&app, "userName ne \"alice\"").await, ["bob", "carol", "dave", "Eve"]);
    assert_eq!(names(&app, "title co \"engineer\"").await, ["alice", "carol", "Eve"]);
    assert_eq!(names(&app, "userName sw \"ca\"").await, ["carol"]);
    assert_eq!(names(&app, "emails.value ew \"@acme.com\"").await, ["alice", "carol"]);
    assert_eq!(names(&app, "userName gt \"carol\"").await, ["dave", "Eve"]);
    assert_eq!(names(&app, "userName ge \"carol\"").await, ["carol", "dave", "Eve"]);
    assert_eq!(names(&app, "userName lt \"bob\"").await, ["alice"]);
    assert_eq!(names(&app, "userName le \"bob\"").await, ["alice", "bob"]);
    assert_eq!(names(&app, "nickName pr").await, ["dave"]);
    assert_eq!(names(&app, "externalId eq \"E2\"").await, ["bob"]);
    assert_eq!(names(&app, "active eq false").await, ["bob"]);
    assert_eq!(names(&app, "emails pr").await, ["alice", "bob", "carol"]);
}

async fn logical_operators_and_complex_filters(app: TestApp) {
    people(&app).await;
    assert_eq!(
        names(&app, "title co \"engineer\" and active eq true and not (userName eq \"Eve\")").await,
        ["alice", "carol"]
    );
    assert_eq!(names(&app, "userName eq \"bob\" or userName eq \"dave\"").await, ["bob", "dave"]);
    assert_eq!(names(&app, "(userName eq \"bob\" or userName eq \"dave\") and active eq true").await, ["dave"]);
    assert_eq!(names(&app, "emails[type eq \"work\" and value ew \"@acme.com\"]").await, ["alice", "carol"]);
    assert_eq!(names(&app, "emails[type eq \"home\"] and title pr").await, ["bob", "carol"]);
    assert_eq!(
        names(&app, "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName eq \"anders\"").await,
        ["alice"]
    );
    assert_eq!(names(&app, "name.familyName pr").await, ["alice"]);
    assert_eq!(names(&app, "meta.resourceType eq \"User\"").await.len(), 5);
}

async fn attribute_names_and_string_compares_are_case_insensitive_where_the_schema_says(app: TestApp) {
    people(&app).await;
    assert_eq!(names(&app, "USERNAME EQ \"ALICE\"").await, ["alice"]);
    assert_eq!(names(&app, "username Eq \"eve\"").await, ["Eve"]);
    // externalId and id are caseExact.
    assert!(names(&app, "externalId eq \"e2\"").await.is_empty());
}

async fn dates_compare_as_dates(app: TestApp) {
    let before = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
    people(&app).await;
    let stamp = before.format(&time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(names(&app, &format!("meta.created gt \"{stamp}\"")).await.len(), 5);
    assert!(names(&app, &format!("meta.lastModified lt \"{stamp}\"")).await.is_empty());
    let response = app.get(&format!("/Users?filter={}", urlencode("meta.created gt \"yesterday\""))).await;
    assert_scim_error(response, 400, Some("invalidFilter")).await;
}

async fn paging_with_start_index_and_count(app: TestApp) {
    people(&app).await;
    let (_, page) = status_json(app.get("/Users?sortBy=userName&startIndex=2&count=2").await).await;
    assert_eq!(page["totalResults"], 5);
    assert_eq!(page["startIndex"], 2);
    assert_eq!(page["itemsPerPage"], 2);
    let names: Vec<&str> =
        page["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap()).collect();
    assert_eq!(names, ["bob", "carol"]);
    let (_, empty) = status_json(app.get("/Users?count=0").await).await;
    assert_eq!(empty["totalResults"], 5);
    assert_eq!(empty["Resources"], json!([]));
    let (_, past) = status_json(app.get("/Users?startIndex=99").await).await;
    assert_eq!(past["Resources"], json!([]));
    assert_eq!(past["totalResults"], 5, "past the last page the total is still counted");
    // startIndex below 1 is read as 1 (RFC 7644 §3.4.2.4).
    let (_, first) = status_json(app.get("/Users?startIndex=0&count=1").await).await;
    assert_eq!(first["startIndex"], 1);
}

async fn count_is_capped_at_max_results(app: TestApp) {
    people(&app).await;
    let (_, config) = status_json(app.get("/ServiceProviderConfig").await).await;
    let max = config["filter"]["maxResults"].as_u64().unwrap();
    let (_, page) = status_json(app.get(&format!("/Users?count={}", max + 1000)).await).await;
    assert_eq!(page["itemsPerPage"], 5);
    assert!(page["itemsPerPage"].as_u64().unwrap() <= max);
}

async fn sorting(app: TestApp) {
    people(&app).await;
    let (_, page) = status_json(app.get("/Users?sortBy=userName&sortOrder=descending").await).await;
    let names: Vec<&str> =
        page["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap()).collect();
    assert_eq!(names, ["Eve", "dave", "carol", "bob", "alice"]);
    let (_, page) = status_json(app.get("/Users?sortBy=title").await).await;
    let titles: Vec<&str> = page["Resources"].as_array().unwrap().iter().filter_map(|r| r["title"].as_str()).collect();
    assert_eq!(titles, ["Engineer", "engineer", "Engineering Manager", "Sales"]);
    assert_scim_error(app.get("/Users?sortOrder=sideways").await, 400, Some("invalidValue")).await;
}

async fn post_search_on_resources_and_root(app: TestApp) {
    let ids = people(&app).await;
    app.create_group("alice-fans", &[&ids["alice"]]).await;
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName sw \"a\"", "attributes": ["userName"], "startIndex": 1, "count": 10});
    let (status, list) = status_json(app.post("/Users/.search", &body).await).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(resource_ids(&list), vec![ids["alice"].clone()]);
    assert!(list["Resources"][0].get("emails").is_none());

    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName eq \"alice\" or displayName eq \"alice-fans\""});
    let (status, list) = status_json(app.post("/.search", &body).await).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["totalResults"], 2);
    let types: Vec<&str> =
        list["Resources"].as_array().unwrap().iter().map(|r| r["meta"]["resourceType"].as_str().unwrap()).collect();
    assert_eq!(types, ["User", "Group"]);
}

async fn invalid_filters_are_400_invalid_filter(app: TestApp) {
    for filter in [
        "userName eq",
        "userName xx \"a\"",
        "(userName eq \"a\"",
        "nosuch eq \"a\"",
        "active gt true",
        "emails[type eq \"work\"",
        "name co \"x\"",
    ] {
        let response = app.get(&format!("/Users?filter={}", urlencode(filter))).await;
        assert_scim_error(response, 400, Some("invalidFilter")).await;
    }
    let deep = format!("{}userName eq \"a\"{}", "(".repeat(500), ")".repeat(500));
    let response = app
        .post(
            "/Users/.search",
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": deep}),
        )
        .await;
    let (status, body) = status_json(response).await;
    assert_eq!(status, 400, "{body}");
}

async fn entra_email_matching_finds_the_user_case_insensitively(app: TestApp) {
    people(&app).await;
    // What Entra sends with `emails[type eq "work"].value` as the matching attribute.
    assert_eq!(names(&app, r#"emails[type eq "work"].value eq "ALICE@acme.com""#).await, ["alice"]);
    assert_eq!(names(&app, r#"emails[type eq "work"].value eq "carol@ACME.COM""#).await, ["carol"]);
    // The condition holds for one element: carol's home address is not a work address.
    assert!(names(&app, r#"emails[type eq "work"].value eq "c@home.net""#).await.is_empty());
    assert!(names(&app, r#"emails[type eq "work"].value eq "bob@home.net""#).await.is_empty());
    assert_eq!(names(&app, r#"emails[type eq "home"].value pr and active eq true"#).await, ["carol"]);
    assert_eq!(names(&app, r#"emails[type eq "work"].value ew "@acme.com""#).await, ["alice", "carol"]);
}

async fn accept_application_json_is_honoured_on_answers_and_errors(app: TestApp) {
    people(&app).await;
    let media = |accept: &'static str, url: String, token: String| {
        let client = app.client.clone();
        async move {
            let response = client.get(url).bearer_auth(token).header("Accept", accept).send().await.unwrap();
            let status = response.status().as_u16();
            let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, content_type, body)
        }
    };
    let users = app.url("/Users");
    let (status, content_type, body) = media("application/json", users.clone(), app.token.clone()).await;
    assert_eq!((status, content_type.as_str(), body["totalResults"].as_u64()), (200, "application/json", Some(5)));
    let preferred = "application/scim+json;q=0.8, application/json";
    assert_eq!(media(preferred, users.clone(), app.token.clone()).await.1, "application/json");
    // Errors too: an unknown user, a bad filter, a refused token.
    let (status, content_type, body) = media("application/json", app.url("/Users/nope"), app.token.clone()).await;
    assert_eq!((status, content_type.as_str(), body["status"].as_str()), (404, "application/json", Some("404")));
    let bad = format!("{users}?filter={}", urlencode("userName zz 1"));
    let (status, content_type, body) = media("application/json", bad, app.token.clone()).await;
    assert_eq!((status, content_type.as_str()), (400, "application/json"));
    assert_eq!(body["scimType"], "invalidFilter");
    let (status, content_type, _) = media("application/json", users.clone(), "nonsense".into()).await;
    assert_eq!((status, content_type.as_str()), (401, "application/json"));
    // The default, and an explicit or equal preference, stay SCIM's own type.
    for accept in ["application/scim+json", "*/*", "application/json, application/scim+json"] {
        assert_eq!(media(accept, users.clone(), app.token.clone()).await.1, "application/scim+json", "{accept}");
    }
    let (status, body) = status_json(app.get("/Users").await).await;
    assert_eq!((status, body["totalResults"].as_u64()), (200, Some(5)));
}
