//! Writes of one tenant at once, as an IdP's initial cycle sends them: user and member writes
//! run side by side (on PostgreSQL they hold rows, not the tenant), and still lose nothing,
//! number every event without a gap, and decide on emails, memberships and deletions as if they
//! had come one after the other.

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{admin_json, status_json, TestApp};

both_backends!(
    users_created_at_once_have_every_event_numbered_without_gaps,
    one_email_given_to_users_at_once_is_flagged_or_refused_once_per_user,
    groups_changed_at_once_give_and_take_every_membership_of_a_user,
    a_user_deleted_while_a_group_adds_it_is_never_left_a_member,
);

async fn admin(app: &TestApp, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
    admin_json(app.admin(method, &format!("/tenants/{}{path}", app.org), body).await).await
}

async fn feed(app: &TestApp) -> Vec<Value> {
    let (status, page) = admin(app, Method::GET, "/events?after=0&limit=1000", None).await;
    assert_eq!(status, 200, "{page}");
    page["events"].as_array().unwrap().clone()
}

fn user_with_email(user_name: &str, email: &str) -> Value {
    json!({
        "schemas": [proto::schema::USER],
        "userName": user_name,
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": email}],
    })
}

async fn post_user(app: &TestApp, body: Value) -> (u16, Value) {
    status_json(app.post("/Users", &body).await).await
}

async fn users_created_at_once_have_every_event_numbered_without_gaps(app: TestApp) {
    let created = join_all(
        (0..40).map(|i| post_user(&app, user_with_email(&format!("u{i:02}"), &format!("u{i:02}@example.com")))),
    )
    .await;
    assert!(created.iter().all(|(status, _)| *status == 201), "{created:?}");
    let events = feed(&app).await;
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    let first = seqs[0];
    assert_eq!(seqs, (first..first + 40).collect::<Vec<_>>(), "numbered one after the other, no gap");
    let mut ids: Vec<&str> = events.iter().map(|e| e["data"]["user"]["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40, "one user.created per user");
}

async fn one_email_given_to_users_at_once_is_flagged_or_refused_once_per_user(app: TestApp) {
    let created =
        join_all((0..8).map(|i| post_user(&app, user_with_email(&format!("ann{i}"), "ann@example.com")))).await;
    assert!(created.iter().all(|(status, _)| *status == 201), "{created:?}");
    let flagged = feed(&app).await.iter().filter(|e| e["data"]["flags"] == json!(["duplicate_email"])).count();
    assert_eq!(flagged, 7, "every user but the first shares the email with one before it");

    let (status, tenant) = admin(&app, Method::PATCH, "", Some(&json!({"duplicate_emails": "refuse"}))).await;
    assert_eq!(status, 200, "{tenant}");
    let created =
        join_all((0..8).map(|i| post_user(&app, user_with_email(&format!("bob{i}"), "bob@example.com")))).await;
    let mut statuses: Vec<u16> = created.iter().map(|(status, _)| *status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409], "{created:?}");
}

async fn groups_changed_at_once_give_and_take_every_membership_of_a_user(app: TestApp) {
    let (status, tenant) = admin(&app, Method::PATCH, "", Some(&json!({"autoprovision": true}))).await;
    assert_eq!(status, 200, "{tenant}");
    let ann = app.create_user("ann").await["id"].as_str().unwrap().to_owned();
    let mut groups = Vec::new();
    for i in 0..10 {
        groups.push(app.create_group(&format!("Team {i}"), &[]).await["id"].as_str().unwrap().to_owned());
    }
    let memberships = || async {
        let (status, body) = admin(&app, Method::GET, &format!("/users/{ann}/memberships"), None).await;
        assert_eq!(status, 200, "{body}");
        body["memberships"].as_array().unwrap().len()
    };
    let change_all = |op: &'static str| {
        let (app, ann, groups) = (&app, &ann, &groups);
        async move {
            join_all(groups.iter().map(|group| async move {
                let ops = json!([{"op": op, "path": "members", "value": [{"value": ann}]}]);
                app.patch_ops(&format!("/Groups/{group}"), ops).await.status().as_u16()
            }))
            .await
        }
    };
    assert!(change_all("Add").await.iter().all(|s| *s == 204));
    assert_eq!(memberships().await, 10, "each group's organization, none missed");
    assert!(change_all("Remove").await.iter().all(|s| *s == 204));
    assert_eq!(memberships().await, 0, "and each taken away again");
    let events = feed(&app).await;
    let count = |t: &str| events.iter().filter(|e| e["type"] == t).count();
    assert_eq!((count("membership.added"), count("membership.removed")), (10, 10));
}

async fn a_user_deleted_while_a_group_adds_it_is_never_left_a_member(app: TestApp) {
    let group = app.create_group("Everyone", &[]).await["id"].as_str().unwrap().to_owned();
    let path = format!("/Groups/{group}");
    for i in 0..10 {
        let user = app.create_user(&format!("temp{i}")).await["id"].as_str().unwrap().to_owned();
        let ops = json!([{"op": "Add", "path": "members", "value": [{"value": user}]}]);
        let user_path = format!("/Users/{user}");
        let (deleted, added) = futures_util::join!(app.delete(&user_path), app.patch_ops(&path, ops));
        assert_eq!(deleted.status(), 204);
        // Added first (then removed by the deletion), or refused as an unknown member.
        assert!([204, 400].contains(&added.status().as_u16()), "{}", added.status());
    }
    let (status, read) = status_json(app.get(&path).await).await;
    assert_eq!(status, 200);
    assert_eq!(read.get("members").and_then(Value::as_array).map_or(0, Vec::len), 0, "{read}");
}
