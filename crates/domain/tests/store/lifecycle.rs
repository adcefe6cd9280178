//! Linking SCIM users to the product's accounts, organizations that follow their groups, member
//! events of every group, and readiness as a pre-flight.

use domain::{
    AccountId, DomainError, DuplicateEmails, Event, LinkBy, Precondition, ProductAccount, Severity, Store, Tenant,
    TenantName, TenantUpdate, UserLookup,
};
use proto::ResourceKind;
use serde_json::{json, Value};

use super::{group, ops, user};

domain::both_backends!(
    store:
    users_link_to_accounts_by_email_and_by_external_id,
    accounts_registered_later_link_existing_users_and_unlink_when_removed,
    duplicate_emails_are_flagged_or_refused_as_the_tenant_says,
    organizations_follow_their_groups_through_rename_delete_and_recreation,
    every_group_name_yields_an_organization,
    membership_changes_of_every_group_are_events,
    a_fresh_tenant_is_not_ready,
);

async fn tenant(store: &impl Store, update: TenantUpdate) -> Tenant {
    let name = TenantName::parse("acme").unwrap();
    store.create_tenant(&name).await.unwrap();
    store.update_tenant(&name, &update).await.unwrap()
}

fn person(name: &str, email: &str, external_id: Option<&str>) -> Value {
    let mut body = json!({
        "schemas": [proto::schema::USER],
        "userName": name,
        "emails": [{"value": "home@example.net", "type": "home"}, {"value": email, "type": "work"}],
    });
    if let Some(external_id) = external_id {
        body["externalId"] = json!(external_id);
    }
    proto::resource::normalize(ResourceKind::User, body).unwrap()
}

fn account(id: &str, email: Option<&str>, external_id: Option<&str>) -> ProductAccount {
    ProductAccount::new(AccountId::parse(id).unwrap(), email, external_id).unwrap()
}

async fn events(store: &impl Store, t: &Tenant, after: i64) -> Vec<Event> {
    store.events_after(&t.name, after, 1000).await.unwrap()
}

fn types(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

fn last_seq(events: &[Event]) -> i64 {
    events.last().map_or(0, |e| e.seq)
}

async fn create(store: &impl Store, t: &Tenant, kind: ResourceKind, body: Value) -> String {
    store.create(&t.id, kind, body).await.unwrap().id
}

async fn users_link_to_accounts_by_email_and_by_external_id(store: &impl Store) {
    let t = tenant(store, TenantUpdate::default()).await;
    let accounts = [account("acct-bob", Some("bob@contoso.com"), None), account("acct-carol", None, Some("E-CAROL"))];
    let registered = store.register_accounts(&t.name, &accounts).await.unwrap();
    assert_eq!((registered.created, registered.updated, registered.linked), (2, 0, 0));

    // The work email matches whatever its case.
    let bob = create(store, &t, ResourceKind::User, person("bob", "Bob@Contoso.COM", None)).await;
    let created = events(store, &t, 0).await;
    assert_eq!(types(&created), ["user.created", "user.linked"]);
    let subject = &created[0].data["user"];
    assert_eq!(
        (subject["userName"].as_str(), subject["email"].as_str(), subject["productAccountId"].as_str()),
        (Some("bob"), Some("bob@contoso.com"), Some("acct-bob"))
    );
    assert_eq!(created[1].data["account"], json!({"id": "acct-bob", "matched": "email"}));

    let seen = last_seq(&created);
    let carol = create(store, &t, ResourceKind::User, person("carol", "carol@contoso.com", Some("E-CAROL"))).await;
    let linked = events(store, &t, seen).await;
    assert_eq!(linked[1].data["account"], json!({"id": "acct-carol", "matched": "externalId"}));

    let found = store.find_users(&t.name, &UserLookup::Account(AccountId::parse("acct-bob").unwrap())).await.unwrap();
    assert_eq!(found.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), [bob.as_str()]);
    let found = store.find_users(&t.name, &UserLookup::Email("CAROL@contoso.com".into())).await.unwrap();
    assert_eq!(
        (found.len(), found[0].id.as_str(), found[0].account_id.as_deref()),
        (1, carol.as_str(), Some("acct-carol"))
    );
    let found = store.find_users(&t.name, &UserLookup::Id(carol.clone())).await.unwrap();
    assert_eq!(found[0].data["userName"], "carol");
    let shown = store.account(&t.name, &AccountId::parse("acct-carol").unwrap()).await.unwrap();
    assert_eq!(
        (shown.user_id.as_deref(), shown.matched.map(|m| m.as_str())),
        (Some(carol.as_str()), Some("externalId"))
    );

    // Only the attributes the tenant allows link; an account links one user.
    let name = t.name.clone();
    store
        .update_tenant(
            &name,
            &TenantUpdate { link_by: Some(LinkBy { email: false, external_id: true }), ..TenantUpdate::default() },
        )
        .await
        .unwrap();
    store.register_accounts(&t.name, &[account("acct-dan", Some("dan@contoso.com"), None)]).await.unwrap();
    let dan = create(store, &t, ResourceKind::User, person("dan", "dan@contoso.com", None)).await;
    let found = store.find_users(&t.name, &UserLookup::Id(dan)).await.unwrap();
    assert_eq!(found[0].account_id, None, "email linking is off");
    store
        .update_tenant(&name, &TenantUpdate { link_by: Some(LinkBy::default()), ..TenantUpdate::default() })
        .await
        .unwrap();
    let again = create(store, &t, ResourceKind::User, person("bob2", "other@contoso.com", Some("x"))).await;
    store
        .patch(
            &t.id,
            ResourceKind::User,
            &again,
            &ops(json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "bob@contoso.com"}])),
            &Precondition::None,
            false,
        )
        .await
        .unwrap();
    let found = store.find_users(&t.name, &UserLookup::Id(again)).await.unwrap();
    assert_eq!(found[0].account_id, None, "acct-bob is bob's already");
}

async fn accounts_registered_later_link_existing_users_and_unlink_when_removed(store: &impl Store) {
    let t = tenant(store, TenantUpdate::default()).await;
    let ann = create(store, &t, ResourceKind::User, person("ann", "ann@contoso.com", Some("E-ANN"))).await;
    let seen = last_seq(&events(store, &t, 0).await);
    // Thousands in one call: every one is stored, the one matching ann links her.
    let mut many: Vec<ProductAccount> =
        (0..3000).map(|i| account(&format!("acct-{i}"), Some(&format!("user{i}@contoso.com")), None)).collect();
    many.push(account("acct-ann", Some("ANN@contoso.com"), Some("E-ANN")));
    let registered = store.register_accounts(&t.name, &many).await.unwrap();
    assert_eq!((registered.created, registered.linked), (3001, 1));
    let linked = events(store, &t, seen).await;
    assert_eq!(types(&linked), ["user.linked"]);
    assert_eq!(linked[0].data["account"], json!({"id": "acct-ann", "matched": "externalId"}));
    assert_eq!(linked[0].data["user"]["id"], ann);
    // Registering again updates, links nothing new.
    let again = store.register_accounts(&t.name, &many[..10]).await.unwrap();
    assert_eq!((again.created, again.updated, again.linked), (0, 10, 0));
    // A call naming one email twice is refused whole.
    let twice = [account("x1", Some("same@contoso.com"), None), account("x2", Some("same@contoso.com"), None)];
    assert!(matches!(store.register_accounts(&t.name, &twice).await, Err(DomainError::Invalid(_))));
    // Another account's email: a conflict.
    let taken = [account("x3", Some("user7@contoso.com"), None)];
    assert!(matches!(store.register_accounts(&t.name, &taken).await, Err(DomainError::Conflict(_))));

    let seen = last_seq(&events(store, &t, 0).await);
    store.delete_account(&t.name, &AccountId::parse("acct-ann").unwrap()).await.unwrap();
    assert_eq!(types(&events(store, &t, seen).await), ["user.unlinked"]);
    assert_eq!(store.find_users(&t.name, &UserLookup::Id(ann)).await.unwrap()[0].account_id, None);
    assert!(matches!(
        store.account(&t.name, &AccountId::parse("acct-ann").unwrap()).await,
        Err(DomainError::NotFound(_))
    ));
}

async fn duplicate_emails_are_flagged_or_refused_as_the_tenant_says(store: &impl Store) {
    let t = tenant(store, TenantUpdate::default()).await;
    create(store, &t, ResourceKind::User, person("bob", "bob@contoso.com", None)).await;
    let seen = last_seq(&events(store, &t, 0).await);
    let twin = create(store, &t, ResourceKind::User, person("bob.twin", "BOB@contoso.com", None)).await;
    let created = events(store, &t, seen).await;
    assert_eq!(created[0].data["flags"], json!(["duplicate_email"]), "allowed, and flagged");
    // An email two users share links neither.
    let registered =
        store.register_accounts(&t.name, &[account("acct-bob", Some("bob@contoso.com"), None)]).await.unwrap();
    assert_eq!(registered.linked, 0);
    let facts = store.readiness(&t.name).await.unwrap();
    assert_eq!(
        (facts.duplicate_emails, facts.duplicate_email_samples.clone()),
        (1, vec!["bob@contoso.com".to_owned()])
    );

    let refuse = TenantUpdate { duplicate_emails: Some(DuplicateEmails::Refuse), ..TenantUpdate::default() };
    let t = store.update_tenant(&t.name, &refuse).await.unwrap();
    let err = store.create(&t.id, ResourceKind::User, person("bob.third", "Bob@Contoso.com", None)).await.unwrap_err();
    assert!(matches!(&err, DomainError::Conflict(m) if m.contains("bob@contoso.com")), "{err}");
    let carol = create(store, &t, ResourceKind::User, person("carol", "carol@contoso.com", None)).await;
    let take = ops(json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "bob@contoso.com"}]));
    let err = store.patch(&t.id, ResourceKind::User, &carol, &take, &Precondition::None, false).await.unwrap_err();
    assert!(matches!(err, DomainError::Conflict(_)));
    let found = store.find_users(&t.name, &UserLookup::Id(carol)).await.unwrap();
    assert_eq!(found[0].email.as_deref(), Some("carol@contoso.com"), "nothing was written");
    // Under the refuse policy, the existing pair keeps the tenant from being ready.
    let findings = store.readiness(&t.name).await.unwrap().findings(&t.settings, None);
    let duplicate = findings.iter().find(|f| f.code == "duplicate_emails").unwrap();
    assert_eq!(duplicate.severity, Severity::Warning);
    // A user keeps its (shared) email through unrelated changes.
    let rename = ops(json!([{"op": "replace", "path": "displayName", "value": "Bob Twin"}]));
    store.patch(&t.id, ResourceKind::User, &twin, &rename, &Precondition::None, false).await.unwrap();
}

async fn organizations_follow_their_groups_through_rename_delete_and_recreation(store: &impl Store) {
    let t = tenant(store, TenantUpdate { autoprovision: Some(true), ..TenantUpdate::default() }).await;
    let ann = create(store, &t, ResourceKind::User, user("ann")).await;
    let bob = create(store, &t, ResourceKind::User, user("bob")).await;
    let eng = create(store, &t, ResourceKind::Group, group("Engineering", &[&ann])).await;
    let original = store.list_organizations(&t.name).await.unwrap().remove(0);
    assert_eq!((original.name.as_str(), original.display_name.as_deref()), ("engineering", Some("Engineering")));

    let seen = last_seq(&events(store, &t, 0).await);
    store.delete(&t.id, ResourceKind::Group, &eng, &Precondition::None).await.unwrap();
    let deleted = events(store, &t, seen).await;
    assert_eq!(types(&deleted), ["membership.removed", "organization.archived", "group.deleted"]);
    assert_eq!(deleted[1].data["organization"]["id"], original.id.as_str());
    let archived = store.list_organizations(&t.name).await.unwrap().remove(0);
    assert!(archived.archived_at.is_some(), "kept, and marked");
    assert!(store.user_memberships(&t.name, &ann).await.unwrap().is_empty());

    // A later group of the same name gets the same organization back.
    let seen = last_seq(&events(store, &t, 0).await);
    let again = create(store, &t, ResourceKind::Group, group("engineering", &[&bob])).await;
    let organizations = store.list_organizations(&t.name).await.unwrap();
    assert_eq!(organizations.len(), 1, "no second organization");
    assert_eq!((organizations[0].id.as_str(), organizations[0].archived_at), (original.id.as_str(), None));
    let restored = events(store, &t, seen).await;
    assert_eq!(types(&restored), ["group.created", "group.member_added", "organization.restored", "membership.added"]);
    let memberships = store.user_memberships(&t.name, &bob).await.unwrap();
    assert_eq!(memberships[0].organization.as_str(), "engineering");
    // It follows the new group's renames from now on.
    let rename = ops(json!([{"op": "replace", "path": "displayName", "value": "Platform Engineering"}]));
    store.patch(&t.id, ResourceKind::Group, &again, &rename, &Precondition::None, false).await.unwrap();
    let renamed = store.list_organizations(&t.name).await.unwrap().remove(0);
    assert_eq!((renamed.name.as_str(), renamed.display_name.as_deref()), ("engineering", Some("Platform Engineering")));
}

async fn every_group_name_yields_an_organization(store: &impl Store) {
    let t = tenant(store, TenantUpdate { autoprovision: Some(true), ..TenantUpdate::default() }).await;
    let ann = create(store, &t, ResourceKind::User, user("ann")).await;
    create(store, &t, ResourceKind::Group, group("日本チーム", &[&ann])).await;
    create(store, &t, ResourceKind::Group, group("!!!", &[&ann])).await;
    let organizations = store.list_organizations(&t.name).await.unwrap();
    let mut names: Vec<(String, Option<String>)> =
        organizations.iter().map(|o| (o.name.to_string(), o.display_name.clone())).collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].0.starts_with("group-") && names[0].1.as_deref() == Some("!!!"), "{names:?}");
    assert_eq!(names[1], ("ri-ben-timu".into(), Some("日本チーム".into())));
    assert_eq!(store.user_memberships(&t.name, &ann).await.unwrap().len(), 2);
    let facts = store.readiness(&t.name).await.unwrap();
    assert_eq!(facts.unlinked_groups, 0);
}

async fn membership_changes_of_every_group_are_events(store: &impl Store) {
    // No mapping, no autoprovisioning: the group gives no organization, yet its members count.
    let t = tenant(store, TenantUpdate::default()).await;
    let ann = create(store, &t, ResourceKind::User, user("ann")).await;
    let bob = create(store, &t, ResourceKind::User, user("bob")).await;
    let g = create(store, &t, ResourceKind::Group, group("Readers", &[&ann])).await;
    let seen = last_seq(&events(store, &t, 0).await);
    let swap = ops(json!([
        {"op": "add", "path": "members", "value": [{"value": bob}]},
        {"op": "remove", "path": format!("members[value eq \"{ann}\"]")},
        // Added and removed again in one request: neither.
        {"op": "add", "path": "members", "value": [{"value": g.clone()}]},
    ]));
    let err = store.patch(&t.id, ResourceKind::Group, &g, &swap, &Precondition::None, false).await.unwrap_err();
    assert!(matches!(err, DomainError::Invalid(_)), "a group cannot contain itself");
    let swap = ops(json!([
        {"op": "add", "path": "members", "value": [{"value": bob}]},
        {"op": "remove", "path": format!("members[value eq \"{ann}\"]")},
    ]));
    store.patch(&t.id, ResourceKind::Group, &g, &swap, &Precondition::None, false).await.unwrap();
    let changed = events(store, &t, seen).await;
    assert_eq!(types(&changed), ["group.updated", "group.member_removed", "group.member_added"]);
    assert_eq!(changed[1].data["user"]["userName"], "ann");
    assert_eq!(changed[2].data["user"]["userName"], "bob");
    assert_eq!(changed[2].data["group"]["displayName"], "Readers");
    // Nested groups are named as such.
    let outer = create(store, &t, ResourceKind::Group, group("Everyone", &[&g])).await;
    let all = events(store, &t, 0).await;
    let nested = all.iter().rev().find(|e| e.event_type.as_str() == "group.member_added").unwrap();
    assert_eq!(
        (nested.data["group"]["id"].as_str(), nested.data["member_group"]["id"].as_str()),
        (Some(outer.as_str()), Some(g.as_str()))
    );
    // Deleting the user removes it from its group, with an event naming both.
    let seen = last_seq(&all);
    store.delete(&t.id, ResourceKind::User, &bob, &Precondition::None).await.unwrap();
    let deleted = events(store, &t, seen).await;
    assert_eq!(types(&deleted), ["group.member_removed", "user.deleted"]);
    assert_eq!(
        (deleted[0].data["group"]["id"].as_str(), deleted[0].data["user"]["id"].as_str()),
        (Some(g.as_str()), Some(bob.as_str()))
    );
    let seqs: Vec<i64> = events(store, &t, 0).await.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=i64::try_from(seqs.len()).unwrap()).collect::<Vec<_>>(), "no gap");
}

async fn a_fresh_tenant_is_not_ready(store: &impl Store) {
    let t = tenant(store, TenantUpdate::default()).await;
    let findings = store.readiness(&t.name).await.unwrap().findings(&t.settings, None);
    let warnings: Vec<&str> = findings.iter().filter(|f| f.severity == Severity::Warning).map(|f| f.code).collect();
    assert_eq!(warnings, ["no_token", "no_group_rules"]);
    assert!(findings.iter().all(|f| !f.remedy.is_empty()));
}
