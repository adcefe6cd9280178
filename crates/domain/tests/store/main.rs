//! The store suite: every case runs on SQLite and on PostgreSQL, through the `Store` trait.
// Test helpers outside #[test] functions may panic: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use domain::testing::{Backend, TestDb};
use domain::{
    DomainError, Entity, EntityTags, NewToken, Precondition, Query, Store, TenantName, TenantUpdate, TokenOwner,
};
use proto::{PatchOperation, ResourceKind};
use serde_json::{json, Value};
use token::{Scope, Scopes, TokenKind, Validity};

mod activity;
mod gauges;
mod lifecycle;
mod memberships;
mod oauth;
mod portal;

domain::both_backends!(
    store:
    tenants_are_created_listed_and_deleted_with_everything_they_own,
    tenant_names_are_unique,
    tokens_are_added_listed_revoked_and_regenerated,
    operator_tokens_belong_to_no_tenant,
    token_use_is_recorded_and_never_moves_back,
    tenant_rate_limits_are_set_and_cleared,
    user_names_are_unique_per_tenant_case_insensitively,
    patch_is_all_or_nothing,
    stale_if_match_is_refused,
    filters_run_in_sql,
    member_sets_change_by_statement,
    member_adds_alone_are_checked_whole,
    deleting_a_member_updates_its_groups,
    readiness_reports_migrations,
);

domain::both_backends!(raw: raw_fixture => a_deleted_groups_member_rows_go_with_it_even_beside_member_patches);

/// A store with its database, for the cases that look at rows the store does not show.
struct Raw {
    store: domain::SqlStore,
    db: TestDb,
}

async fn raw_fixture(backend: Backend) -> Option<Raw> {
    let db = TestDb::new(backend).await?;
    Some(Raw { store: db.store().await, db })
}

fn user(name: &str) -> Value {
    proto::resource::normalize(ResourceKind::User, json!({"schemas": [proto::schema::USER], "userName": name})).unwrap()
}

fn group(name: &str, members: &[&str]) -> Value {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    proto::resource::normalize(
        ResourceKind::Group,
        json!({"schemas": [proto::schema::GROUP], "displayName": name, "members": members}),
    )
    .unwrap()
}

fn ops(value: Value) -> Vec<PatchOperation> {
    proto::patch::parse_request(&json!({"schemas": [proto::patch::PATCH_OP], "Operations": value})).unwrap()
}

fn query(filter: &str) -> Query {
    Query {
        filter: Some(proto::filter::parse(filter).unwrap()),
        sort_by: None,
        descending: false,
        start_index: 1,
        count: 100,
        with_members: true,
    }
}

fn new_token(kind: TokenKind, scopes: Scopes, name: Option<&str>, expires_at: Option<i64>) -> NewToken {
    let issued = token::issue(kind).unwrap();
    NewToken { id: issued.id, hash: issued.hash, scopes, name: name.map(str::to_owned), expires_at }
}

async fn token_for(store: &impl Store, tenant: &TenantName, scopes: Scopes) -> NewToken {
    let new = new_token(TokenKind::Tenant, scopes, None, None);
    store.add_token(TokenOwner::Tenant(tenant), new.clone()).await.unwrap();
    new
}

async fn tenants_are_created_listed_and_deleted_with_everything_they_own(store: &impl Store) {
    let acme = TenantName::parse("acme").unwrap();
    let tenant = store.create_tenant(&acme).await.unwrap();
    store.create_tenant(&TenantName::parse("globex").unwrap()).await.unwrap();
    let names: Vec<String> = store.list_tenants().await.unwrap().into_iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names, ["acme", "globex"]);

    let token = token_for(store, &acme, Scopes::all()).await;
    let u = store.create(&tenant.id, ResourceKind::User, user("u")).await.unwrap();
    store.create(&tenant.id, ResourceKind::Group, group("g", &[&u.id])).await.unwrap();
    store.delete_tenant(&acme).await.unwrap();
    assert!(matches!(store.tenant(&acme).await, Err(DomainError::NotFound(Entity::Tenant))));
    assert!(store.token_for_auth(&token.id).await.unwrap().is_none());
    assert!(matches!(store.delete_tenant(&acme).await, Err(DomainError::NotFound(_))));
}

async fn tenant_names_are_unique(store: &impl Store) {
    let name = TenantName::parse("dup").unwrap();
    store.create_tenant(&name).await.unwrap();
    assert!(matches!(store.create_tenant(&name).await, Err(DomainError::Conflict(_))));
}

async fn tokens_are_added_listed_revoked_and_regenerated(store: &impl Store) {
    let acme = TenantName::parse("acme").unwrap();
    store.create_tenant(&acme).await.unwrap();
    let first = token_for(store, &acme, Scopes::all()).await;
    let named =
        new_token(TokenKind::Tenant, Scopes::from_iter([Scope::UsersRead]), Some("Entra"), Some(4_000_000_000_000_000));
    store.add_token(TokenOwner::Tenant(&acme), named.clone()).await.unwrap();
    let listed = store.list_tokens(TokenOwner::Tenant(&acme)).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].scopes, Scopes::from_iter([Scope::UsersRead]));
    assert_eq!(listed[1].name.as_deref(), Some("Entra"));
    assert_eq!(listed[1].validity.expires_at, Some(4_000_000_000_000_000));

    let stored = store.token_for_auth(&first.id).await.unwrap().unwrap();
    assert_eq!(stored.kind, TokenKind::Tenant);
    assert_eq!(stored.tenant.as_ref().map(|t| &t.name), Some(&acme));
    assert_eq!(stored.validity, Validity::default());

    store.revoke_token(TokenOwner::Tenant(&acme), &named.id).await.unwrap();
    assert!(store.token_for_auth(&named.id).await.unwrap().unwrap().validity.revoked_at.is_some());
    let unknown = token::TokenId::parse("AAAAAAAAAAAAAAAA").unwrap();
    assert!(matches!(
        store.revoke_token(TokenOwner::Tenant(&acme), &unknown).await,
        Err(DomainError::NotFound(Entity::Token))
    ));

    // Regeneration with a grace period: earlier live tokens are revoked at its end; a token revoked
    // before keeps its earlier revocation time.
    let revoked_before = store.token_for_auth(&named.id).await.unwrap().unwrap().validity.revoked_at;
    let third = new_token(TokenKind::Tenant, Scopes::all(), None, None);
    let grace_end = domain::now_micros() + 3_600_000_000;
    store.regenerate_tokens(&acme, third.clone(), grace_end).await.unwrap();
    assert_eq!(store.token_for_auth(&first.id).await.unwrap().unwrap().validity.revoked_at, Some(grace_end));
    assert_eq!(store.token_for_auth(&named.id).await.unwrap().unwrap().validity.revoked_at, revoked_before);
    assert_eq!(store.token_for_auth(&third.id).await.unwrap().unwrap().validity.revoked_at, None);
    // Revoking now cuts the grace period short.
    store.revoke_token(TokenOwner::Tenant(&acme), &first.id).await.unwrap();
    assert!(store.token_for_auth(&first.id).await.unwrap().unwrap().validity.revoked_at < Some(grace_end));
}

async fn operator_tokens_belong_to_no_tenant(store: &impl Store) {
    let acme = TenantName::parse("acme").unwrap();
    store.create_tenant(&acme).await.unwrap();
    let tenant_token = token_for(store, &acme, Scopes::all()).await;
    let operator = new_token(TokenKind::Operator, Scopes::all(), Some("ops"), None);
    store.add_token(TokenOwner::Operator, operator.clone()).await.unwrap();

    let stored = store.token_for_auth(&operator.id).await.unwrap().unwrap();
    assert_eq!((stored.kind, stored.tenant), (TokenKind::Operator, None));
    let listed: Vec<_> = store.list_tokens(TokenOwner::Operator).await.unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(listed, std::slice::from_ref(&operator.id));
    // Each owner sees and revokes only its own tokens.
    assert!(matches!(
        store.revoke_token(TokenOwner::Operator, &tenant_token.id).await,
        Err(DomainError::NotFound(Entity::Token))
    ));
    assert!(matches!(
        store.revoke_token(TokenOwner::Tenant(&acme), &operator.id).await,
        Err(DomainError::NotFound(Entity::Token))
    ));
    store.revoke_token(TokenOwner::Operator, &operator.id).await.unwrap();
    assert!(store.token_for_auth(&operator.id).await.unwrap().unwrap().validity.revoked_at.is_some());
}

async fn token_use_is_recorded_and_never_moves_back(store: &impl Store) {
    let acme = TenantName::parse("acme").unwrap();
    store.create_tenant(&acme).await.unwrap();
    let token = token_for(store, &acme, Scopes::all()).await;
    store.record_token_use(&[(token.id.clone(), 2_000)]).await.unwrap();
    store.record_token_use(&[(token.id.clone(), 1_000)]).await.unwrap();
    let listed = store.list_tokens(TokenOwner::Tenant(&acme)).await.unwrap();
    assert_eq!(listed[0].last_used_at, Some(2_000));
}

async fn tenant_rate_limits_are_set_and_cleared(store: &impl Store) {
    let acme = TenantName::parse("acme").unwrap();
    store.create_tenant(&acme).await.unwrap();
    assert_eq!(store.tenant(&acme).await.unwrap().rate_limit, None);
    let quota = domain::RateLimit::new(200, 400).unwrap();
    let update = TenantUpdate { rate_limit: Some(Some(quota)), ..TenantUpdate::default() };
    assert_eq!(store.update_tenant(&acme, &update).await.unwrap().rate_limit, Some(quota));
    let token = token_for(store, &acme, Scopes::all()).await;
    let stored = store.token_for_auth(&token.id).await.unwrap().unwrap();
    assert_eq!(stored.tenant.unwrap().rate_limit, Some(quota), "the auth path sees the tenant's limit");
    // Nothing to change keeps the limit; `Some(None)` clears it.
    assert_eq!(store.update_tenant(&acme, &TenantUpdate::default()).await.unwrap().rate_limit, Some(quota));
    let cleared =
        store.update_tenant(&acme, &TenantUpdate { rate_limit: Some(None), ..TenantUpdate::default() }).await.unwrap();
    assert_eq!(cleared.rate_limit, None);
    let unknown = TenantName::parse("nobody").unwrap();
    assert!(matches!(store.update_tenant(&unknown, &update).await, Err(DomainError::NotFound(Entity::Tenant))));
}

async fn user_names_are_unique_per_tenant_case_insensitively(store: &impl Store) {
    let a = store.create_tenant(&TenantName::parse("a").unwrap()).await.unwrap();
    let b = store.create_tenant(&TenantName::parse("b").unwrap()).await.unwrap();
    store.create(&a.id, ResourceKind::User, user("Alice")).await.unwrap();
    assert!(matches!(store.create(&a.id, ResourceKind::User, user("alice")).await, Err(DomainError::Conflict(_))));
    store.create(&b.id, ResourceKind::User, user("alice")).await.unwrap();
    // Renaming onto a taken name is a conflict too.
    let other = store.create(&a.id, ResourceKind::User, user("other")).await.unwrap();
    let rename = ops(json!([{"op": "replace", "path": "userName", "value": "ALICE"}]));
    assert!(matches!(
        store.patch(&a.id, ResourceKind::User, &other.id, &rename, &Precondition::None, true).await,
        Err(DomainError::Conflict(_))
    ));
}

async fn patch_is_all_or_nothing(store: &impl Store) {
    let t = store.create_tenant(&TenantName::parse("t").unwrap()).await.unwrap();
    let u = store.create(&t.id, ResourceKind::User, user("u")).await.unwrap();
    let g = store.create(&t.id, ResourceKind::Group, group("g", &[])).await.unwrap();
    let bad = ops(json!([
        {"op": "add", "path": "members", "value": [{"value": u.id}]},
        {"op": "replace", "path": "displayName", "value": "renamed"},
        {"op": "add", "path": "members", "value": [{"value": "missing"}]}
    ]));
    assert!(matches!(
        store.patch(&t.id, ResourceKind::Group, &g.id, &bad, &Precondition::None, true).await,
        Err(DomainError::Invalid(_))
    ));
    let after = store.get(&t.id, ResourceKind::Group, &g.id, true, &Precondition::None).await.unwrap();
    assert_eq!(after.members.unwrap().len(), 0);
    assert_eq!(after.data["displayName"], "g");
    assert_eq!(after.version, g.version);
}

async fn stale_if_match_is_refused(store: &impl Store) {
    let t = store.create_tenant(&TenantName::parse("t").unwrap()).await.unwrap();
    let u = store.create(&t.id, ResourceKind::User, user("u")).await.unwrap();
    let change = ops(json!([{"op": "replace", "path": "title", "value": "x"}]));
    let current = Precondition::IfMatch(EntityTags::parse(&u.etag()));
    let updated = store.patch(&t.id, ResourceKind::User, &u.id, &change, &current, true).await.unwrap();
    assert_eq!(updated.version, u.version + 1);
    let stale = store.patch(&t.id, ResourceKind::User, &u.id, &change, &current, true).await;
    assert!(matches!(stale, Err(DomainError::PreconditionFailed { current }) if current == updated.version));
    // A PATCH that changes nothing keeps the version: IdPs that re-send see no drift.
    let same = store.patch(&t.id, ResourceKind::User, &u.id, &change, &Precondition::None, true).await.unwrap();
    assert_eq!(same.version, updated.version);
}

async fn filters_run_in_sql(store: &impl Store) {
    let t = store.create_tenant(&TenantName::parse("t").unwrap()).await.unwrap();
    for (name, title) in [("ann", "Engineer"), ("ben", "Sales"), ("cat", "engineering lead")] {
        let body = proto::resource::normalize(
            ResourceKind::User,
            json!({"userName": name, "title": title, "emails": [{"value": format!("{name}@x.com"), "type": "work"}]}),
        )
        .unwrap();
        store.create(&t.id, ResourceKind::User, body).await.unwrap();
    }
    let names = |page: domain::Page| {
        page.resources.into_iter().map(|r| r.data["userName"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.search(&t.id, ResourceKind::User, &query("title co \"ENGINEER\"")).await.unwrap()),
        ["ann", "cat"]
    );
    assert_eq!(
        names(
            store
                .search(&t.id, ResourceKind::User, &query("emails[type eq \"work\" and value sw \"b\"]"))
                .await
                .unwrap()
        ),
        ["ben"]
    );
    assert_eq!(
        names(store.search(&t.id, ResourceKind::User, &query("not (userName eq \"ANN\")")).await.unwrap()),
        ["ben", "cat"]
    );
    let err = store.search(&t.id, ResourceKind::User, &query("nosuch eq \"x\"")).await.unwrap_err();
    assert!(matches!(&err, DomainError::Invalid(e) if e.kind() == proto::ErrorKind::InvalidFilter), "{err:?}");
    let page = store
        .search(&t.id, ResourceKind::User, &Query { count: 1, start_index: 2, ..query("userName pr") })
        .await
        .unwrap();
    assert_eq!((page.total, names(page)), (3, vec!["ben".to_owned()]));
}

async fn member_sets_change_by_statement(store: &impl Store) {
    let t = store.create_tenant(&TenantName::parse("t").unwrap()).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(store.create(&t.id, ResourceKind::User, user(&format!("u{i}"))).await.unwrap().id);
    }
    let g = store.create(&t.id, ResourceKind::Group, group("g", &[])).await.unwrap();
    let add: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    store
        .patch(
            &t.id,
            ResourceKind::Group,
            &g.id,
            &ops(json!([{"op": "add", "path": "members", "value": add}])),
            &Precondition::None,
            false,
        )
        .await
        .unwrap();
    let remove: Vec<Value> = ids[..10].iter().map(|id| json!({"value": id})).collect();
    let after = store
        .patch(
            &t.id,
            ResourceKind::Group,
            &g.id,
            &ops(json!([{"op": "remove", "path": "members", "value": remove}])),
            &Precondition::None,
            true,
        )
        .await
        .unwrap();
    assert_eq!(after.members.unwrap().len(), 40);
    let by_filter = ops(
        json!([{"op": "remove", "path": format!("members[value eq \"{}\" or value eq \"{}\"]", ids[10], ids[11])}]),
    );
    let after = store.patch(&t.id, ResourceKind::Group, &g.id, &by_filter, &Precondition::None, true).await.unwrap();
    assert_eq!(after.members.unwrap().len(), 38);
    let by_type = ops(json!([{"op": "remove", "path": "members[type eq \"User\"]"}]));
    let after = store.patch(&t.id, ResourceKind::Group, &g.id, &by_type, &Precondition::None, true).await.unwrap();
    assert_eq!(after.members.unwrap().len(), 0);
}

/// A PATCH that only adds members: an unknown id or the group itself refuses the whole PATCH,
/// a missing group is not found, a `display` sent again is kept, and a PATCH that looked like
/// adds alone but changes the group's JSON too (removing an attribute it has) does both.
async fn member_adds_alone_are_checked_whole(store: &impl Store) {
    let t = store.create_tenant(&TenantName::parse("t").unwrap()).await.unwrap();
    let (u, v) = (
        store.create(&t.id, ResourceKind::User, user("u")).await.unwrap(),
        store.create(&t.id, ResourceKind::User, user("v")).await.unwrap(),
    );
    let mut body = group("g", &[&u.id]);
    body["externalId"] = json!("ext-g");
    let g = store.create(&t.id, ResourceKind::Group, body).await.unwrap();
    let add = |values: Value| ops(json!([{"op": "add", "path": "members", "value": values}]));
    let patch = |id: &str, change: Vec<PatchOperation>| {
        let (tenant, id) = (t.id.clone(), id.to_owned());
        async move { store.patch(&tenant, ResourceKind::Group, &id, &change, &Precondition::None, true).await }
    };
    let members = |resource: &domain::Resource| {
        let mut members: Vec<(String, Option<String>)> =
            resource.members.iter().flatten().map(|m| (m.id.clone(), m.display.clone())).collect();
        members.sort();
        members
    };

    for refused in [json!([{"value": v.id}, {"value": "missing"}]), json!([{"value": v.id}, {"value": g.id}])] {
        let outcome = patch(&g.id, add(refused.clone())).await;
        assert!(matches!(outcome, Err(DomainError::Invalid(_))), "{refused}: {outcome:?}");
    }
    let unchanged = store.get(&t.id, ResourceKind::Group, &g.id, true, &Precondition::None).await.unwrap();
    assert_eq!((members(&unchanged), unchanged.version), (vec![(u.id.clone(), None)], g.version));
    assert!(matches!(patch("missing", add(json!([{"value": v.id}]))).await, Err(DomainError::NotFound(Entity::Group))));

    let added =
        patch(&g.id, add(json!([{"value": u.id, "display": "U"}, {"value": v.id, "display": "V"}]))).await.unwrap();
    assert_eq!(members(&added), vec![(u.id.clone(), Some("U".into())), (v.id.clone(), Some("V".into()))]);
    assert_eq!(added.version, g.version + 1);

    let both = ops(json!([
        {"op": "remove", "path": "externalId"},
        {"op": "add", "path": "members", "value": [{"value": v.id, "display": "V2"}]}
    ]));
    let after = patch(&g.id, both).await.unwrap();
    assert_eq!(after.data.get("externalId"), None);
    assert_eq!(after.data["displayName"], "g");
    assert_eq!(members(&after), vec![(u.id.clone(), Some("U".into())), (v.id.clone(), Some("V2".into()))]);
}

async fn deleting_a_member_updates_its_groups(store: &impl Store) {
    let t = store.create_tenant(&TenantName::parse("t").unwrap()).await.unwrap();
    let u = store.create(&t.id, ResourceKind::User, user("u")).await.unwrap();
    let g = store.create(&t.id, ResourceKind::Group, group("g", &[&u.id])).await.unwrap();
    store.delete(&t.id, ResourceKind::User, &u.id, &Precondition::None).await.unwrap();
    let after = store.get(&t.id, ResourceKind::Group, &g.id, true, &Precondition::None).await.unwrap();
    assert!(after.members.unwrap().is_empty());
    assert_eq!(after.version, g.version + 1);
    assert!(matches!(
        store.get(&t.id, ResourceKind::User, &u.id, true, &Precondition::None).await,
        Err(DomainError::NotFound(Entity::User))
    ));
}

/// `group_members` has no foreign key to `groups`: deleting a group removes its member rows
/// itself, and member PATCHes of the group sent beside the delete add none after it.
async fn a_deleted_groups_member_rows_go_with_it_even_beside_member_patches(raw: Raw) {
    use domain::{ResourceStore, TenantStore};
    let store = &raw.store;
    let t = store.create_tenant(&TenantName::parse("t").unwrap()).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(store.create(&t.id, ResourceKind::User, user(&format!("u{i}"))).await.unwrap().id);
    }
    let g = store.create(&t.id, ResourceKind::Group, group("g", &[&ids[0], &ids[1]])).await.unwrap();
    let (tenant, group_id) = (&t.id, &g.id);
    let adds = ids[2..].iter().map(|id| {
        let add = ops(json!([{"op": "add", "path": "members", "value": [{"value": id}]}]));
        async move { store.patch(tenant, ResourceKind::Group, group_id, &add, &Precondition::None, false).await }
    });
    let delete = store.delete(&t.id, ResourceKind::Group, &g.id, &Precondition::None);
    let (added, deleted) = tokio::join!(futures_util::future::join_all(adds), delete);
    deleted.unwrap();
    // Each add ran before the delete or found the group gone.
    for outcome in added {
        assert!(matches!(outcome, Ok(_) | Err(DomainError::NotFound(Entity::Group))), "{outcome:?}");
    }
    let left = raw.db.scalar(&format!("SELECT COUNT(*) FROM group_members WHERE group_id = '{}'", g.id)).await.unwrap();
    assert_eq!(left, 0);
    // The users stay, in no group.
    let u = store.get(&t.id, ResourceKind::User, &ids[0], true, &Precondition::None).await.unwrap();
    assert_eq!(u.groups.map(|groups| groups.len()), Some(0));
}

async fn readiness_reports_migrations(store: &impl Store) {
    store.check_ready().await.unwrap();
}

#[test]
fn both_migration_folders_hold_the_same_versions() {
    let names = |dir: &str| {
        let mut names: Vec<String> =
            std::fs::read_dir(format!("{}/../../migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
        names.sort();
        names
    };
    assert_eq!(names("postgres"), names("sqlite"));
    assert!(!names("postgres").is_empty());
}
