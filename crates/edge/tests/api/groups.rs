use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{assert_scim_error, status_json, TestApp};

both_backends!(
    groups_store_members_with_display_and_ref,
    excluded_members_are_not_returned,
    put_replaces_the_member_set,
    unknown_members_are_refused_without_a_partial_write,
    deleting_a_user_removes_its_memberships,
    deleting_a_group_removes_it,
    nested_groups_are_members_too,
    groups_filter_by_display_name_and_member,
);

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|m| m.iter().map(|m| m["value"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

async fn groups_store_members_with_display_and_ref(app: TestApp) {
    let alice = app
        .create_user_json(json!({"schemas": [proto::schema::USER], "userName": "alice", "displayName": "Alice A"}))
        .await;
    let aid = alice["id"].as_str().unwrap();
    let body = json!({"schemas": [proto::schema::GROUP], "displayName": "Admins", "members": [{"value": aid, "display": "Alice (as the IdP calls her)"}]});
    let (status, group) = status_json(app.post("/Groups", &body).await).await;
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().unwrap();
    assert_eq!(group["meta"]["resourceType"], "Group");
    assert_eq!(group["members"][0]["value"], aid);
    // `display` comes back exactly as sent, so the IdP sees no drift.
    assert_eq!(group["members"][0]["display"], "Alice (as the IdP calls her)");
    assert_eq!(group["members"][0]["type"], "User");
    assert_eq!(group["members"][0]["$ref"], app.url(&format!("/Users/{aid}")));
    let (status, read) = status_json(app.get(&format!("/Groups/{gid}")).await).await;
    assert_eq!(status, 200);
    assert_eq!(read["displayName"], "Admins");
    assert_eq!(member_ids(&read), vec![aid.to_owned()]);
}

async fn excluded_members_are_not_returned(app: TestApp) {
    let u = app.create_user("u").await;
    let g = app.create_group("G", &[u["id"].as_str().unwrap()]).await;
    let (_, read) =
        status_json(app.get(&format!("/Groups/{}?excludedAttributes=members", g["id"].as_str().unwrap())).await).await;
    assert!(read.get("members").is_none(), "{read}");
    assert_eq!(read["displayName"], "G");
    let (_, list) = status_json(app.get("/Groups?excludedAttributes=members").await).await;
    assert!(list["Resources"][0].get("members").is_none());
    assert_eq!(list["Resources"][0]["displayName"], "G");
}

async fn put_replaces_the_member_set(app: TestApp) {
    let a = app.create_user("a").await;
    let b = app.create_user("b").await;
    let (aid, bid) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let g = app.create_group("G", &[aid]).await;
    let gid = g["id"].as_str().unwrap();
    let (status, replaced) = status_json(
        app.put(
            &format!("/Groups/{gid}"),
            &json!({"schemas": [proto::schema::GROUP], "displayName": "G2", "members": [{"value": bid}]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["displayName"], "G2");
    assert_eq!(member_ids(&replaced), vec![bid.to_owned()]);
}

async fn unknown_members_are_refused_without_a_partial_write(app: TestApp) {
    let a = app.create_user("a").await;
    let aid = a["id"].as_str().unwrap();
    let g = app.create_group("G", &[]).await;
    let gid = g["id"].as_str().unwrap();
    let response = app
        .patch_ops(
            &format!("/Groups/{gid}"),
            json!([
                {"op": "add", "path": "members", "value": [{"value": aid}]},
                {"op": "add", "path": "members", "value": [{"value": "no-such-user"}]}
            ]),
        )
        .await;
    let error = assert_scim_error(response, 400, Some("invalidValue")).await;
    assert!(error["detail"].as_str().unwrap().contains("no-such-user"));
    let (_, read) = status_json(app.get(&format!("/Groups/{gid}")).await).await;
    assert!(read.get("members").is_none(), "the first operation was rolled back: {read}");
    assert_eq!(read["meta"]["version"], g["meta"]["version"]);
}

async fn deleting_a_user_removes_its_memberships(app: TestApp) {
    let a = app.create_user("a").await;
    let b = app.create_user("b").await;
    let (aid, bid) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let g = app.create_group("G", &[aid, bid]).await;
    assert_eq!(app.delete(&format!("/Users/{aid}")).await.status(), 204);
    let (_, read) = status_json(app.get(&format!("/Groups/{}", g["id"].as_str().unwrap())).await).await;
    assert_eq!(member_ids(&read), vec![bid.to_owned()]);
    assert_ne!(read["meta"]["version"], g["meta"]["version"], "the group changed");
}

async fn deleting_a_group_removes_it(app: TestApp) {
    let a = app.create_user("a").await;
    let g = app.create_group("G", &[a["id"].as_str().unwrap()]).await;
    let path = format!("/Groups/{}", g["id"].as_str().unwrap());
    assert_eq!(app.delete(&path).await.status(), 204);
    assert_scim_error(app.get(&path).await, 404, None).await;
    let (_, user) = status_json(app.get(&format!("/Users/{}", a["id"].as_str().unwrap())).await).await;
    assert!(user.get("groups").is_none(), "{user}");
}

async fn nested_groups_are_members_too(app: TestApp) {
    let inner = app.create_group("Inner", &[]).await;
    let iid = inner["id"].as_str().unwrap();
    let outer = app.create_group("Outer", &[iid]).await;
    assert_eq!(outer["members"][0]["type"], "Group");
    assert!(outer["members"][0].get("display").is_none(), "none was sent");
    assert_eq!(outer["members"][0]["$ref"], app.url(&format!("/Groups/{iid}")));
    let response = app
        .patch_ops(&format!("/Groups/{iid}"), json!([{"op": "add", "path": "members", "value": [{"value": iid}]}]))
        .await;
    assert_scim_error(response, 400, Some("invalidValue")).await;
}

async fn groups_filter_by_display_name_and_member(app: TestApp) {
    let a = app.create_user("a").await;
    let aid = a["id"].as_str().unwrap();
    let eng = app.create_group("Engineering", &[aid]).await;
    app.create_group("Sales", &[]).await;
    let ids = app.list_ids("/Groups?filter=displayName%20eq%20%22engineering%22").await;
    assert_eq!(ids, vec![eng["id"].as_str().unwrap().to_owned()]);
    let ids = app.list_ids(&format!("/Groups?filter=members%5Bvalue%20eq%20%22{aid}%22%5D")).await;
    assert_eq!(ids, vec![eng["id"].as_str().unwrap().to_owned()]);
    let ids = app.list_ids(&format!("/Groups?filter=members.value%20eq%20%22{aid}%22")).await;
    assert_eq!(ids.len(), 1);
}
