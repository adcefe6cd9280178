//! Groups reconcile into organization memberships, every change is an event, and webhook delivery
//! state moves as it should.

use domain::{
    DeliveryResult, DomainError, Event, EventType, GroupMatcher, MembershipState, OrganizationName, Precondition, Role,
    Store, Tenant, TenantName, TenantUpdate, WebhookSecret, WebhookUrl,
};
use proto::ResourceKind;
use serde_json::{json, Value};

use super::{group, ops, user};

domain::both_backends!(
    store:
    autoprovisioning_creates_an_organization_per_group_and_its_memberships,
    mapped_groups_give_their_role_and_the_highest_role_wins,
    a_user_in_two_mapped_groups_keeps_the_organization_when_removed_from_one,
    deactivation_suspends_and_reactivation_restores,
    deprovision_remove_drops_memberships_and_reactivation_brings_them_back,
    replaying_the_same_traffic_changes_nothing_and_emits_nothing,
    deleting_users_and_groups_removes_memberships,
    renaming_a_group_keeps_its_autoprovisioned_organization,
    organizations_given_by_groups_cannot_be_deleted,
    webhook_delivery_state_moves_through_retries_dead_letters_and_redelivery,
    old_events_are_pruned_only_once_every_endpoint_has_them,
    one_organization_and_one_webhook_are_read_alone,
    member_changes_of_any_size_write_and_announce_exactly_the_difference,
);

fn org(name: &str) -> OrganizationName {
    OrganizationName::parse(name).unwrap()
}

async fn tenant(store: &impl Store, update: TenantUpdate) -> Tenant {
    let name = TenantName::parse("acme").unwrap();
    store.create_tenant(&name).await.unwrap();
    store.update_tenant(&name, &update).await.unwrap()
}

async fn create(store: &impl Store, t: &Tenant, kind: ResourceKind, body: Value) -> String {
    store.create(&t.id, kind, body).await.unwrap().id
}

async fn patch(store: &impl Store, t: &Tenant, kind: ResourceKind, id: &str, value: Value) {
    store.patch(&t.id, kind, id, &ops(value), &Precondition::None, false).await.unwrap();
}

/// `(organization, role, state)` of a user's memberships.
async fn memberships(store: &impl Store, t: &Tenant, user: &str) -> Vec<(String, Role, MembershipState)> {
    let list = store.user_memberships(&t.name, user).await.unwrap();
    list.into_iter().map(|m| (m.organization.to_string(), m.role, m.state)).collect()
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

async fn autoprovisioning_creates_an_organization_per_group_and_its_memberships(store: &impl Store) {
    let t = tenant(store, TenantUpdate { autoprovision: Some(true), ..TenantUpdate::default() }).await;
    let ann = create(store, &t, ResourceKind::User, user("ann")).await;
    let bob = create(store, &t, ResourceKind::User, user("bob")).await;
    create(store, &t, ResourceKind::Group, group("Designers", &[&ann, &bob])).await;

    let orgs = store.list_organizations(&t.name).await.unwrap();
    assert_eq!(orgs.len(), 1);
    assert_eq!((orgs[0].name.as_str(), orgs[0].autoprovisioned), ("designers", true));
    assert_eq!(memberships(store, &t, &ann).await, [("designers".into(), Role::Member, MembershipState::Active)]);
    let members = store.organization_members(&t.name, &org("designers")).await.unwrap();
    assert_eq!(members.iter().map(|m| m.user_name.as_str()).collect::<Vec<_>>(), ["ann", "bob"]);

    let all = events(store, &t, 0).await;
    assert_eq!(
        types(&all),
        [
            "user.created",
            "user.created",
            "group.created",
            "group.member_added",
            "group.member_added",
            "organization.created",
            "membership.added",
            "membership.added"
        ]
    );
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6, 7, 8],
        "numbered per tenant, in order"
    );
    assert_eq!(all[6].data["organization"]["name"], "designers");
    assert_eq!(all[6].data["role"], "member");
    assert!(all[6].data["user"]["userName"].is_string());
    assert_eq!(all[3].data["group"]["displayName"], "Designers");
    assert!(all[3].data["user"]["userName"].is_string());
    // The feed pages from any cursor.
    assert_eq!(types(&store.events_after(&t.name, 6, 1).await.unwrap()), ["membership.added"]);
}

async fn mapped_groups_give_their_role_and_the_highest_role_wins(store: &impl Store) {
    let t = tenant(store, TenantUpdate::default()).await;
    store.create_organization(&t.name, &org("acme")).await.unwrap();
    store.create_organization(&t.name, &org("acme-eng")).await.unwrap();
    store
        .add_mapping(&t.name, GroupMatcher::DisplayName("Engineering".into()), &org("acme-eng"), Role::Member)
        .await
        .unwrap();
    store
        .add_mapping(&t.name, GroupMatcher::DisplayName("engineering".into()), &org("acme"), Role::Member)
        .await
        .unwrap();
    let ann = create(store, &t, ResourceKind::User, user("ann")).await;
    let eng = create(store, &t, ResourceKind::Group, group("ENGINEERING", &[&ann])).await;
    let admins = create(store, &t, ResourceKind::Group, group("Admins", &[])).await;
    store.add_mapping(&t.name, GroupMatcher::Id(admins.clone()), &org("acme"), Role::Admin).await.unwrap();
    assert_eq!(
        memberships(store, &t, &ann).await,
        [
            ("acme".into(), Role::Member, MembershipState::Active),
            ("acme-eng".into(), Role::Member, MembershipState::Active)
        ]
    );
    let before = last_seq(&events(store, &t, 0).await);
    patch(
        store,
        &t,
        ResourceKind::Group,
        &admins,
        json!([{"op": "add", "path": "members", "value": [{"value": ann}]}]),
    )
    .await;
    assert_eq!(memberships(store, &t, &ann).await[0], ("acme".into(), Role::Admin, MembershipState::Active));
    let changed = events(store, &t, before).await;
    assert_eq!(types(&changed), ["group.updated", "group.member_added", "membership.role_changed"]);
    assert_eq!(
        (changed[2].data["role"].as_str(), changed[2].data["previous_role"].as_str()),
        (Some("admin"), Some("member"))
    );
    // Without the Admins group, the Engineering mapping's role is what is left.
    patch(
        store,
        &t,
        ResourceKind::Group,
        &admins,
        json!([{"op": "remove", "path": format!("members[value eq \"{ann}\"]")}]),
    )
    .await;
    assert_eq!(memberships(store, &t, &ann).await[0], ("acme".into(), Role::Member, MembershipState::Active));
    // Removing a mapping takes away what it gave.
    let mappings = store.list_mappings(&t.name).await.unwrap();
    let eng_mapping = mappings.iter().find(|m| m.organization.as_str() == "acme-eng").unwrap();
    store.remove_mapping(&t.name, &eng_mapping.id).await.unwrap();
    assert_eq!(memberships(store, &t, &ann).await.len(), 1);
    let _ = eng;
}

async fn a_user_in_two_mapped_groups_keeps_the_organization_when_removed_from_one(store: &impl Store) {
    let t = tenant(store, TenantUpdate::default()).await;
    store.create_organization(&t.name, &org("acme")).await.unwrap();
    for name in ["Engineering", "Design"] {
        store.add_mapping(&t.name, GroupMatcher::DisplayName(name.into()), &org("acme"), Role::Member).await.unwrap();
    }
    let ann = create(store, &t, ResourceKind::User, user("ann")).await;
    let eng = create(store, &t, ResourceKind::Group, group("Engineering", &[&ann])).await;
    let design = create(store, &t, ResourceKind::Group, group("Design", &[&ann])).await;
    let before = last_seq(&events(store, &t, 0).await);
    patch(
        store,
        &t,
        ResourceKind::Group,
        &eng,
        json!([{"op": "remove", "path": "members", "value": [{"value": ann}]}]),
    )
    .await;
    assert_eq!(memberships(store, &t, &ann).await, [("acme".into(), Role::Member, MembershipState::Active)]);
    assert_eq!(
        types(&events(store, &t, before).await),
        ["group.updated", "group.member_removed"],
        "no membership event: nothing changed"
    );
    patch(store, &t, ResourceKind::Group, &design, json!([{"op": "replace", "path": "members", "value": []}])).await;
    assert!(memberships(store, &t, &ann).await.is_empty());
    assert_eq!(
        types(&events(store, &t, before).await)[2..],
        ["group.updated", "group.member_removed", "membership.removed"]
    );
}

async fn deactivation_suspends_and_reactivation_restores(store: &impl Store) {
    let t = tenant(store, TenantUpdate { autoprovision: Some(true), ..TenantUpdate::default() }).await;
    let ann = create(store, &t, ResourceKind::User, user("ann")).await;
    create(store, &t, ResourceKind::Group, group("Designers", &[&ann])).await;
    let before = last_seq(&events(store, &t, 0).await);
    // Entra's legacy dialect: a string boolean.
    patch(store, &t, ResourceKind::User, &ann, json!([{"op": "Replace", "path": "active", "value": "False"}])).await;
    assert_eq!(memberships(store, &t, &ann).await, [("designers".into(), Role::Member, MembershipState::Suspended)]);
    patch(store, &t, ResourceKind::User, &ann, json!([{"op": "replace", "value": {"active": true}}])).await;
    assert_eq!(memberships(store, &t, &ann).await, [("designers".into(), Role::Member, MembershipState::Active)]);
    assert_eq!(
        types(&events(store, &t, before).await),
        ["user.deactivated", "membership.suspended", "user.reactivated", "membership.restored"]
    );
}

async fn deprovision_remove_drops_memberships_and_reactivation_brings_them_back(store: &impl Store) {
    let update = TenantUpdate {
        autoprovision: Some(true),
        deprovision: Some(domain::Deprovision::Remove),
        ..TenantUpdate::default()
    };
    let t = tenant(store, update).await;
    let ann = create(store, &t, ResourceKind::User, user("ann")).await;
    create(store, &t, ResourceKind::Group, group("Designers", &[&ann])).await;
    patch(store, &t, ResourceKind::User, &ann, json!([{"op": "replace", "path": "active", "value": false}])).await;
    assert!(memberships(store, &t, &ann).await.is_empty());
    patch(store, &t, ResourceKind::User, &ann, json!([{"op": "replace", "path": "active", "value": true}])).await;
    assert_eq!(memberships(store, &t, &ann).await.len(), 1, "the groups were kept, so the membership comes back");
    // Switching the tenant to suspend reconciles everyone at once.
    patch(store, &t, ResourceKind::User, &ann, json!([{"op": "replace", "path": "active", "value": false}])).await;
    let suspend = TenantUpdate { deprovision: Some(domain::Deprovision::Suspend), ..TenantUpdate::default() };
    store.update_tenant(&t.name, &suspend).await.unwrap();
    assert_eq!(memberships(store, &t, &ann).await, [("designers".into(), Role::Member, MembershipState::Suspended)]);
}

async fn replaying_the_same_traffic_changes_nothing_and_emits_nothing(store: &impl Store) {
    let t = tenant(store, TenantUpdate { autoprovision: Some(true), ..TenantUpdate::default() }).await;
    let ann = create(store, &t, ResourceKind::User, user("ann")).await;
    let designers = create(store, &t, ResourceKind::Group, group("Designers", &[])).await;
    let traffic = [
        (ResourceKind::Group, designers.clone(), json!([{"op": "Add", "path": "members", "value": [{"value": ann}]}])),
        (ResourceKind::User, ann.clone(), json!([{"op": "Replace", "path": "displayName", "value": "Ann A."}])),
        (ResourceKind::User, ann.clone(), json!([{"op": "Replace", "path": "active", "value": "True"}])),
    ];
    for (kind, id, value) in &traffic {
        patch(store, &t, *kind, id, value.clone()).await;
    }
    let seen = last_seq(&events(store, &t, 0).await);
    let version = store.get(&t.id, ResourceKind::Group, &designers, false, &Precondition::None).await.unwrap().version;
    for (kind, id, value) in &traffic {
        patch(store, &t, *kind, id, value.clone()).await;
    }
    assert!(events(store, &t, seen).await.is_empty(), "the replay emitted nothing");
    let again = store.get(&t.id, ResourceKind::Group, &designers, false, &Precondition::None).await.unwrap().version;
    assert_eq!(again, version, "and changed nothing");
}

async fn deleting_users_and_groups_removes_memberships(store: &impl Store) {
    let t = tenant(store, TenantUpdate { autoprovision: Some(true), ..TenantUpdate::default() }).await;
    let ann = create(store, &t, ResourceKind::User, user("ann")).await;
    let bob = create(store, &t, ResourceKind::User, user("bob")).await;
    let designers = create(store, &t, ResourceKind::Group, group("Designers", &[&ann, &bob])).await;
    let before = last_seq(&events(store, &t, 0).await);
    store.delete(&t.id, ResourceKind::User, &ann, &Precondition::None).await.unwrap();
    let deleted = events(store, &t, before).await;
    assert_eq!(types(&deleted), ["group.member_removed", "membership.removed", "user.deleted"]);
    assert_eq!(
        (deleted[0].data["group"]["displayName"].as_str(), deleted[0].data["user"]["userName"].as_str()),
        (Some("Designers"), Some("ann")),
        "the user's removal from its group names both"
    );
    store.delete(&t.id, ResourceKind::Group, &designers, &Precondition::None).await.unwrap();
    assert!(memberships(store, &t, &bob).await.is_empty());
    assert_eq!(
        types(&events(store, &t, before).await)[3..],
        ["membership.removed", "organization.archived", "group.deleted"]
    );
    assert!(matches!(store.user_memberships(&t.name, &ann).await, Err(DomainError::NotFound(_))));
}

async fn renaming_a_group_keeps_its_autoprovisioned_organization(store: &impl Store) {
    let t = tenant(store, TenantUpdate { autoprovision: Some(true), ..TenantUpdate::default() }).await;
    let ann = create(store, &t, ResourceKind::User, user("ann")).await;
    let g = create(store, &t, ResourceKind::Group, group("Designers", &[&ann])).await;
    let before = last_seq(&events(store, &t, 0).await);
    patch(
        store,
        &t,
        ResourceKind::Group,
        &g,
        json!([{"op": "replace", "value": {"id": g, "displayName": "Design Team"}}]),
    )
    .await;
    assert_eq!(store.list_organizations(&t.name).await.unwrap().len(), 1, "no second organization");
    assert_eq!(memberships(store, &t, &ann).await[0].0, "designers");
    let renamed = events(store, &t, before).await;
    assert_eq!(types(&renamed), ["group.updated", "organization.renamed"]);
    assert_eq!(renamed[1].data["organization"]["name"], "designers", "the slug stays");
    assert_eq!(renamed[1].data["organization"]["displayName"], "Design Team");
    assert_eq!(renamed[1].data["previous_display_name"], "Designers");
    let organization = &store.list_organizations(&t.name).await.unwrap()[0];
    assert_eq!(organization.display_name.as_deref(), Some("Design Team"));
    // An explicit mapping takes over from autoprovisioning.
    store.create_organization(&t.name, &org("design")).await.unwrap();
    store
        .add_mapping(&t.name, GroupMatcher::DisplayName("Design Team".into()), &org("design"), Role::Admin)
        .await
        .unwrap();
    assert_eq!(memberships(store, &t, &ann).await, [("design".into(), Role::Admin, MembershipState::Active)]);
}

async fn organizations_given_by_groups_cannot_be_deleted(store: &impl Store) {
    let t = tenant(store, TenantUpdate { autoprovision: Some(true), ..TenantUpdate::default() }).await;
    let g = create(store, &t, ResourceKind::Group, group("Designers", &[])).await;
    let err = store.delete_organization(&t.name, &org("designers")).await.unwrap_err();
    assert!(matches!(&err, DomainError::Conflict(m) if m.contains("Designers")), "{err}");
    store.delete(&t.id, ResourceKind::Group, &g, &Precondition::None).await.unwrap();
    store.delete_organization(&t.name, &org("designers")).await.unwrap();
    assert!(store.list_organizations(&t.name).await.unwrap().is_empty());
    assert!(matches!(store.delete_organization(&t.name, &org("designers")).await, Err(DomainError::NotFound(_))));
    assert!(types(&events(store, &t, 0).await).contains(&EventType::OrganizationDeleted.as_str()));
}

async fn webhook_delivery_state_moves_through_retries_dead_letters_and_redelivery(store: &impl Store) {
    let t = tenant(store, TenantUpdate::default()).await;
    create(store, &t, ResourceKind::User, user("before-the-hook")).await;
    let url = WebhookUrl::parse("http://127.0.0.1:9/hook").unwrap();
    let hook = store.add_webhook(&t.name, &url, &WebhookSecret::new("s3cret".into()), false).await.unwrap();
    let now = domain::now_micros();
    assert!(store.claim_delivery(now, now + 30_000_000, 10).await.unwrap().is_none(), "only later events go out");
    for name in ["a", "b", "c"] {
        create(store, &t, ResourceKind::User, user(name)).await;
    }

    let batch = store.claim_delivery(now, now + 30_000_000, 2).await.unwrap().unwrap();
    assert_eq!((batch.endpoint_id.as_str(), batch.redelivery, batch.attempts), (hook.id.as_str(), false, 0));
    assert_eq!(batch.events.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
    assert!(store.claim_delivery(now, now + 30_000_000, 2).await.unwrap().is_none(), "leased to one deliverer");
    store.finish_delivery(&batch, &DeliveryResult::Delivered).await.unwrap();

    // A failure backs off, then retries one event at a time.
    let batch = store.claim_delivery(now, now + 30_000_000, 2).await.unwrap().unwrap();
    assert_eq!(batch.events[0].seq, 4);
    let retry_at = now + 60_000_000;
    store
        .finish_delivery(&batch, &DeliveryResult::Failed { error: "503".into(), retry_at: Some(retry_at) })
        .await
        .unwrap();
    assert!(store.claim_delivery(now, now + 30_000_000, 2).await.unwrap().is_none(), "not due yet");
    let listed = &store.list_webhooks(&t.name).await.unwrap()[0];
    assert_eq!(
        (listed.attempts, listed.next_attempt_at, listed.last_error.as_deref()),
        (1, Some(retry_at), Some("503"))
    );

    // Out of attempts: dead-lettered, and delivery moves on.
    let batch = store.claim_delivery(retry_at, retry_at + 30_000_000, 2).await.unwrap().unwrap();
    assert_eq!((batch.events.len(), batch.attempts), (1, 1));
    store.finish_delivery(&batch, &DeliveryResult::Failed { error: "410 gone".into(), retry_at: None }).await.unwrap();
    let dead = store.dead_letters(&t.name, &hook.id).await.unwrap();
    assert_eq!((dead.len(), dead[0].seq, dead[0].attempts, dead[0].event_type.as_str()), (1, 4, 2, "user.created"));
    assert_eq!(store.list_webhooks(&t.name).await.unwrap()[0].cursor, 4);

    // Redelivery on request.
    assert_eq!(store.request_redelivery(&t.name, &hook.id, Some(4)).await.unwrap(), 1);
    assert!(matches!(store.request_redelivery(&t.name, &hook.id, Some(99)).await, Err(DomainError::NotFound(_))));
    let batch = store.claim_delivery(retry_at, retry_at + 30_000_000, 2).await.unwrap().unwrap();
    assert!(batch.redelivery);
    assert_eq!(batch.events[0].seq, 4);
    store.finish_delivery(&batch, &DeliveryResult::Delivered).await.unwrap();
    assert!(store.dead_letters(&t.name, &hook.id).await.unwrap().is_empty());

    // Disabled endpoints get nothing; a new endpoint can start from the beginning.
    store.set_webhook_enabled(&t.name, &hook.id, false).await.unwrap();
    assert!(store.claim_delivery(retry_at, retry_at + 30_000_000, 10).await.unwrap().is_none());
    let replay = store.add_webhook(&t.name, &url, &WebhookSecret::new("x".into()), true).await.unwrap();
    let batch = store.claim_delivery(retry_at, retry_at + 30_000_000, 10).await.unwrap().unwrap();
    assert_eq!((batch.endpoint_id, batch.events[0].seq), (replay.id, 1));
}

async fn old_events_are_pruned_only_once_every_endpoint_has_them(store: &impl Store) {
    let t = tenant(store, TenantUpdate::default()).await;
    for name in ["a", "b", "c", "d"] {
        create(store, &t, ResourceKind::User, user(name)).await;
    }
    let later = domain::now_micros() + 1_000_000;
    // Events newer than the cut-off stay.
    assert_eq!(store.prune_events(domain::now_micros() - 3_600_000_000, 100).await.unwrap(), 0);
    assert_eq!(events(store, &t, 0).await.len(), 4);

    // An endpoint that has not received events 3 and 4 yet (a delivered batch, then one that
    // failed for good: 3 is a dead letter, 4 not sent) keeps them; 1 and 2 go.
    let url = WebhookUrl::parse("http://127.0.0.1:9/hook").unwrap();
    let hook = store.add_webhook(&t.name, &url, &WebhookSecret::new("s3cret".into()), true).await.unwrap();
    let now = domain::now_micros();
    let batch = store.claim_delivery(now, now + 30_000_000, 2).await.unwrap().unwrap();
    store.finish_delivery(&batch, &DeliveryResult::Delivered).await.unwrap();
    let batch = store.claim_delivery(now, now + 30_000_000, 1).await.unwrap().unwrap();
    store.finish_delivery(&batch, &DeliveryResult::Failed { error: "410".into(), retry_at: None }).await.unwrap();
    assert_eq!(store.prune_events(later, 1).await.unwrap(), 1, "one batch of at most `limit`");
    assert_eq!(store.prune_events(later, 100).await.unwrap(), 1);
    let seqs = |events: Vec<Event>| events.iter().map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(seqs(events(store, &t, 0).await), [3, 4], "the dead letter and the undelivered event stay");

    // A disabled endpoint still holds what it has not received.
    store.set_webhook_enabled(&t.name, &hook.id, false).await.unwrap();
    assert_eq!(store.prune_events(later, 100).await.unwrap(), 0);
    // Once the endpoint is gone, nothing holds them; the sequence goes on where it was.
    store.delete_webhook(&t.name, &hook.id).await.unwrap();
    assert_eq!(store.prune_events(later, 100).await.unwrap(), 2);
    assert!(events(store, &t, 0).await.is_empty());
    create(store, &t, ResourceKind::User, user("e")).await;
    assert_eq!(seqs(events(store, &t, 0).await), [5]);
}

async fn one_organization_and_one_webhook_are_read_alone(store: &impl Store) {
    let t = tenant(store, TenantUpdate::default()).await;
    let other = store.create_tenant(&TenantName::parse("globex").unwrap()).await.unwrap();
    let created = store.create_organization(&t.name, &org("acme-eng")).await.unwrap();
    store.create_organization(&t.name, &org("acme")).await.unwrap();
    assert_eq!(store.organization(&t.name, &org("acme-eng")).await.unwrap(), created);
    assert!(matches!(store.organization(&t.name, &org("nope")).await, Err(DomainError::NotFound(_))));
    assert!(
        matches!(store.organization(&other.name, &org("acme-eng")).await, Err(DomainError::NotFound(_))),
        "another tenant's organization is not found"
    );

    let url = WebhookUrl::parse("https://receiver.example.com/events").unwrap();
    let added = store.add_webhook(&t.name, &url, &WebhookSecret::new("s".repeat(32)), true).await.unwrap();
    assert_eq!(store.webhook(&t.name, &added.id).await.unwrap(), added);
    assert!(matches!(store.webhook(&t.name, "nope").await, Err(DomainError::NotFound(_))));
    assert!(matches!(store.webhook(&other.name, &added.id).await, Err(DomainError::NotFound(_))));
}

/// `(id, kind, display)` of a group's members.
async fn members_of(store: &impl Store, t: &Tenant, group: &str) -> Vec<(String, ResourceKind, Option<String>)> {
    let group = store.get(&t.id, ResourceKind::Group, group, true, &Precondition::None).await.unwrap();
    group.members.unwrap().into_iter().map(|m| (m.id, m.kind, m.display)).collect()
}

async fn member_changes_of_any_size_write_and_announce_exactly_the_difference(store: &impl Store) {
    let t = tenant(store, TenantUpdate { autoprovision: Some(true), ..TenantUpdate::default() }).await;
    let mut users = Vec::new();
    for i in 0..140 {
        users.push(create(store, &t, ResourceKind::User, user(&format!("u{i:03}"))).await);
    }
    let nested = create(store, &t, ResourceKind::Group, group("Nested", &[])).await;
    let team = create(store, &t, ResourceKind::Group, group("Team", &[&users[0]])).await;
    let add = |ids: &[String]| {
        let values: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
        json!([{"op": "add", "path": "members", "value": values}])
    };
    let added = |events: &[Event]| events.iter().filter(|e| e.event_type == EventType::GroupMemberAdded).count();

    // A few members (explicit statement rows): one already in, one new user, one nested group.
    let before = last_seq(&events(store, &t, 0).await);
    let few = [users[0].clone(), users[1].clone(), nested.clone()];
    patch(store, &t, ResourceKind::Group, &team, add(&few)).await;
    let since = events(store, &t, before).await;
    assert_eq!(added(&since), 2, "only the new members are announced: {:?}", types(&since));
    let members = members_of(store, &t, &team).await;
    assert_eq!(members.len(), 3);
    assert!(members.contains(&(nested.clone(), ResourceKind::Group, None)), "{members:?}");
    assert!(members.contains(&(users[1].clone(), ResourceKind::User, None)), "{members:?}");
    // The users' groups are read back per user.
    let one = store.get(&t.id, ResourceKind::User, &users[1], true, &Precondition::None).await.unwrap();
    let groups: Vec<String> = one.groups.unwrap().into_iter().map(|g| g.id).collect();
    assert_eq!(groups, std::slice::from_ref(&team));

    // An unknown id among known ones refuses the whole change; so does the group itself.
    for bad in ["no-such-member".to_owned(), team.clone()] {
        let value = add(&[users[2].clone(), bad.clone()]);
        let refused = store.patch(&t.id, ResourceKind::Group, &team, &ops(value), &Precondition::None, false).await;
        assert!(matches!(refused, Err(DomainError::Invalid(_))), "{bad}: {refused:?}");
    }
    assert_eq!(members_of(store, &t, &team).await.len(), 3, "nothing written");

    // A changed `display` is kept as sent, without a member event.
    let before = last_seq(&events(store, &t, 0).await);
    let value = json!([{"op": "add", "path": "members", "value": [{"value": users[1], "display": "One"}]}]);
    patch(store, &t, ResourceKind::Group, &team, value).await;
    assert_eq!(added(&events(store, &t, before).await), 0);
    assert!(members_of(store, &t, &team).await.contains(&(users[1].clone(), ResourceKind::User, Some("One".into()))));

    // Around the size where statements switch from explicit rows to one JSON parameter.
    for (from, to) in [(2, 66), (66, 131), (131, 140)] {
        let before = last_seq(&events(store, &t, 0).await);
        patch(store, &t, ResourceKind::Group, &team, add(&users[from..to])).await;
        assert_eq!(added(&events(store, &t, before).await), to - from, "{from}..{to}");
        assert_eq!(members_of(store, &t, &team).await.len(), to + 1, "{from}..{to}");
    }

    // Removing a few, one of them not a member: only the member leaves.
    let before = last_seq(&events(store, &t, 0).await);
    let value = json!([{"op": "remove", "path": "members", "value": [{"value": users[5]}, {"value": nested}]},
                       {"op": "remove", "path": "members", "value": [{"value": nested}]}]);
    patch(store, &t, ResourceKind::Group, &team, value).await;
    let since = events(store, &t, before).await;
    let removed = since.iter().filter(|e| e.event_type == EventType::GroupMemberRemoved).count();
    assert_eq!(removed, 2, "{:?}", types(&since));
    assert_eq!(members_of(store, &t, &team).await.len(), 139);
    // Every member is in the organization the group gives.
    let organization = memberships(store, &t, &users[139]).await;
    assert_eq!(organization.len(), 1, "{organization:?}");
}
