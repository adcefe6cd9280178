//! The provisioning activity log's SQL: append, list with filters and cursor, prune.

use domain::{
    ActivityCredential, ActivityCursor, ActivityLimit, ActivityMethod, ActivityQuery, ActivityRecord, ActivityResource,
    ActivityRetention, NewActivity, OutcomeClass, Store, TenantName,
};
use proto::IdpProfile;

const SECOND: i64 = 1_000_000;
const T0: i64 = 1_764_000_000 * SECOND;

fn record(at: i64, method: ActivityMethod, resource: ActivityResource, status: u16) -> ActivityRecord {
    ActivityRecord {
        at,
        method,
        resource_type: resource,
        resource_id: None,
        status,
        scim_type: None,
        detail: None,
        latency_us: 1500,
        idp: None,
        credential: None,
    }
}

fn new(tenant: &TenantName, record: ActivityRecord) -> NewActivity {
    NewActivity { tenant: tenant.clone(), record }
}

fn query() -> ActivityQuery {
    ActivityQuery::default()
}

async fn statuses(store: &impl Store, tenant: &TenantName, query: &ActivityQuery) -> Vec<u16> {
    store.list_activity(tenant, query).await.unwrap().items.iter().map(|a| a.record.status).collect()
}

async fn tenant(store: &impl Store, name: &str) -> TenantName {
    let name = TenantName::parse(name).unwrap();
    store.create_tenant(&name).await.unwrap();
    name
}

domain::both_backends!(
    store:
    activity_is_appended_and_listed_newest_first_per_tenant,
    activity_filters_and_cursor,
    activity_is_pruned_by_age_and_by_count_per_tenant,
);

async fn activity_is_appended_and_listed_newest_first_per_tenant(store: &impl Store) {
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    let client = token::new_id();
    let full = ActivityRecord {
        resource_id: Some("2819c223-7f76-453a-919d-413861904646".into()),
        scim_type: Some("uniqueness".into()),
        detail: Some("userName `bjensen` is already taken".into()),
        idp: Some(IdpProfile::Okta),
        credential: Some(ActivityCredential::OAuthClient(client.clone())),
        latency_us: 4321,
        ..record(T0 + SECOND, ActivityMethod::Post, ActivityResource::User, 409)
    };
    let batch = [
        new(&acme, record(T0, ActivityMethod::Get, ActivityResource::User, 200)),
        new(&acme, full.clone()),
        new(&globex, record(T0, ActivityMethod::Delete, ActivityResource::Group, 204)),
        // No such tenant: dropped, not an error.
        new(&TenantName::parse("nobody").unwrap(), record(T0, ActivityMethod::Get, ActivityResource::User, 401)),
    ];
    assert_eq!(store.append_activity(&batch).await.unwrap(), 3);
    assert_eq!(store.append_activity(&[]).await.unwrap(), 0);

    let page = store.list_activity(&acme, &query()).await.unwrap();
    assert_eq!(page.next_cursor, None);
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.items[0].record, full, "every field round-trips; newest first");
    assert_eq!(page.items[1].record.status, 200);
    assert!(page.items[0].seq > page.items[1].seq);
    assert_eq!(statuses(store, &globex, &query()).await, [204], "one tenant's activity is never another's");
    let unknown = TenantName::parse("nobody").unwrap();
    assert!(matches!(
        store.list_activity(&unknown, &query()).await,
        Err(domain::DomainError::NotFound(domain::Entity::Tenant))
    ));

    // A large batch spans several statements; overlong text is cut.
    let long = "é".repeat(ActivityRecord::MAX_TEXT);
    let many: Vec<NewActivity> = (0..450)
        .map(|i| {
            let mut r = record(T0 + 10 * SECOND + i, ActivityMethod::Patch, ActivityResource::Group, 200);
            r.detail = Some(long.clone());
            r.credential = Some(ActivityCredential::Token(client.clone()));
            new(&globex, r)
        })
        .collect();
    assert_eq!(store.append_activity(&many).await.unwrap(), 450);
    let newest = store.list_activity(&globex, &query()).await.unwrap().items.remove(0).record;
    assert_eq!(newest.at, T0 + 10 * SECOND + 449);
    assert_eq!(newest.detail.as_ref().map(String::len), Some(ActivityRecord::MAX_TEXT));
    assert_eq!(newest.credential, Some(ActivityCredential::Token(client)));

    // Deleting a tenant deletes its activity.
    store.delete_tenant(&globex).await.unwrap();
    tenant(store, "globex").await;
    assert_eq!(statuses(store, &globex, &query()).await, Vec::<u16>::new());
}

async fn activity_filters_and_cursor(store: &impl Store) {
    let acme = tenant(store, "acme").await;
    use ActivityMethod::{Delete, Get, Patch, Post};
    use ActivityResource::{Group, ServiceProviderConfig, User};
    let rows = [
        (Get, ServiceProviderConfig, 200),
        (Get, User, 200),
        (Post, User, 201),
        (Post, User, 409),
        (Patch, Group, 400),
        (Patch, Group, 204),
        (Delete, User, 404),
        (Get, User, 503),
        (Get, User, 401),
        (Get, User, 304),
    ];
    // Ten records a second apart, then two more in the same microsecond as the last.
    let batch: Vec<NewActivity> =
        rows.iter().enumerate().map(|(i, (m, r, s))| new(&acme, record(T0 + i as i64 * SECOND, *m, *r, *s))).collect();
    store.append_activity(&batch).await.unwrap();
    let same_time =
        [new(&acme, record(T0 + 9 * SECOND, Get, User, 200)), new(&acme, record(T0 + 9 * SECOND, Get, User, 200))];
    store.append_activity(&same_time).await.unwrap();

    let q = |f: &dyn Fn(&mut ActivityQuery)| {
        let mut q = query();
        f(&mut q);
        q
    };
    let success = q(&|q| q.outcome = Some(OutcomeClass::Success));
    assert_eq!(statuses(store, &acme, &success).await, [200, 200, 304, 204, 201, 200, 200]);
    let client = q(&|q| q.outcome = Some(OutcomeClass::ClientError));
    assert_eq!(statuses(store, &acme, &client).await, [401, 404, 400, 409]);
    let server = q(&|q| q.outcome = Some(OutcomeClass::ServerError));
    assert_eq!(statuses(store, &acme, &server).await, [503]);
    assert_eq!(statuses(store, &acme, &q(&|q| q.status = Some(409))).await, [409]);
    let patches = q(&|q| q.method = Some(Patch));
    assert_eq!(statuses(store, &acme, &patches).await, [204, 400]);
    let groups = q(&|q| q.resource_type = Some(Group));
    assert_eq!(statuses(store, &acme, &groups).await, [204, 400]);
    let window = q(&|q| {
        q.since = Some(T0 + 2 * SECOND);
        q.until = Some(T0 + 5 * SECOND);
    });
    assert_eq!(statuses(store, &acme, &window).await, [400, 409, 201], "since inclusive, until exclusive");
    let combined = q(&|q| {
        q.method = Some(Get);
        q.resource_type = Some(User);
        q.outcome = Some(OutcomeClass::ClientError);
    });
    assert_eq!(statuses(store, &acme, &combined).await, [401]);

    // Paging by three walks every record once, in order, across equal timestamps.
    let everything: Vec<i64> =
        store.list_activity(&acme, &query()).await.unwrap().items.iter().map(|a| a.seq).collect();
    assert_eq!(everything.len(), 12);
    let mut walked = Vec::new();
    let mut cursor: Option<ActivityCursor> = None;
    loop {
        let page_query = ActivityQuery { cursor, limit: ActivityLimit::new(3).unwrap(), ..query() };
        let page = store.list_activity(&acme, &page_query).await.unwrap();
        assert!(page.items.len() <= 3);
        walked.extend(page.items.iter().map(|a| a.seq));
        match page.next_cursor {
            Some(next) => {
                assert_eq!(Some(next), page.items.last().map(|a| a.cursor()));
                cursor = Some(next.to_string().parse().unwrap());
            }
            None => break,
        }
    }
    assert_eq!(walked, everything);
    // Exactly a page's worth left: no next cursor on it.
    let last_page = ActivityQuery { limit: ActivityLimit::new(12).unwrap(), ..query() };
    assert_eq!(store.list_activity(&acme, &last_page).await.unwrap().next_cursor, None);
}

async fn activity_is_pruned_by_age_and_by_count_per_tenant(store: &impl Store) {
    let acme = tenant(store, "acme").await;
    let globex = tenant(store, "globex").await;
    let batch: Vec<NewActivity> = (0..10)
        .flat_map(|i| {
            let r = record(T0 + i * SECOND, ActivityMethod::Get, ActivityResource::User, 200 + i as u16);
            [new(&acme, r.clone()), new(&globex, r)]
        })
        .collect();
    store.append_activity(&batch).await.unwrap();

    // By age: before T0 + 3 s, in batches of at most `limit`.
    let by_age = ActivityRetention { before: Some(T0 + 3 * SECOND), cutoffs: Vec::new() };
    assert_eq!(store.prune_activity(&by_age, 4).await.unwrap(), 4);
    assert_eq!(store.prune_activity(&by_age, 4).await.unwrap(), 2);
    assert_eq!(store.prune_activity(&by_age, 4).await.unwrap(), 0);
    assert_eq!(statuses(store, &acme, &query()).await, [209, 208, 207, 206, 205, 204, 203]);

    // By count: each tenant keeps its newest four, cut where the pass found them.
    let more: Vec<NewActivity> = (0..3)
        .map(|i| new(&globex, record(T0 + 20 * SECOND + i, ActivityMethod::Get, ActivityResource::User, 299)))
        .collect();
    store.append_activity(&more).await.unwrap();
    let by_count = ActivityRetention { before: None, cutoffs: store.activity_cutoffs(4).await.unwrap() };
    assert_eq!(by_count.cutoffs.len(), 2);
    // A record appended during the pass is newer than its cut-off: it stays, and so do the four.
    let during = new(&acme, record(T0 + 30 * SECOND, ActivityMethod::Get, ActivityResource::User, 298));
    store.append_activity(&[during]).await.unwrap();
    let mut deleted = 0;
    loop {
        let batch = store.prune_activity(&by_count, 2).await.unwrap();
        assert!(batch <= 2);
        deleted += batch;
        if batch < 2 {
            break;
        }
    }
    assert_eq!(deleted, 3 + 6);
    assert_eq!(statuses(store, &acme, &query()).await, [298, 209, 208, 207, 206]);
    assert_eq!(statuses(store, &globex, &query()).await, [299, 299, 299, 209]);
    // The next pass cuts it to four again; none of the other tenant's log is over.
    let next = ActivityRetention { before: None, cutoffs: store.activity_cutoffs(4).await.unwrap() };
    assert_eq!(next.cutoffs.len(), 1);
    assert_eq!(store.prune_activity(&next, 100).await.unwrap(), 1);
    assert_eq!(statuses(store, &acme, &query()).await, [298, 209, 208, 207]);
    assert!(store.activity_cutoffs(4).await.unwrap().is_empty());
    let both = ActivityRetention { before: Some(T0 + 8 * SECOND), cutoffs: store.activity_cutoffs(3).await.unwrap() };
    // Acme's 207 for its age; globex's 209 beyond its newest three.
    assert_eq!(store.prune_activity(&both, 100).await.unwrap(), 2);
    assert_eq!(statuses(store, &acme, &query()).await, [298, 209, 208]);
    assert_eq!(statuses(store, &globex, &query()).await, [299, 299, 299]);
    assert_eq!(store.prune_activity(&ActivityRetention::default(), 100).await.unwrap(), 0);
}
