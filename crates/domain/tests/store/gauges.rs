//! The whole-store figures behind the operator's gauges, on both backends.

use domain::testing::{Backend, TestDb};
use domain::{
    now_micros, ClientCredential, DeliveryResult, EventStore, NewClientSecret, NewOAuthClient, OAuthStore,
    ResourceStore, SqlStore, TenantName, TenantStore, TokenOwner, TokenStore, WebhookSecret, WebhookUrl,
};
use proto::ResourceKind;
use token::{Scopes, SecretHash, TokenKind};

use super::{new_token, user};

const DAY: i64 = 24 * 3600 * 1_000_000;

#[tokio::test]
async fn gauges_count_dead_letters_undelivered_events_and_expiring_tokens_on_sqlite() {
    if let Some(db) = TestDb::new(Backend::Sqlite).await {
        gauges_count_dead_letters_undelivered_events_and_expiring_tokens(&db.store().await).await;
    }
}

#[tokio::test]
async fn gauges_count_dead_letters_undelivered_events_and_expiring_tokens_on_postgres() {
    if let Some(db) = TestDb::new(Backend::Postgres).await {
        gauges_count_dead_letters_undelivered_events_and_expiring_tokens(&db.store().await).await;
    }
}

async fn gauges_count_dead_letters_undelivered_events_and_expiring_tokens(store: &SqlStore) {
    let now = now_micros();
    let empty = store.gauges(now, 7 * DAY).await.unwrap();
    assert_eq!(empty, domain::sql::StoreGauges::default());

    let acme = TenantName::parse("acme").unwrap();
    let tenant = store.create_tenant(&acme).await.unwrap();
    // Counted: expiring within the window. Not counted: later, already expired, revoked, none.
    for expires_at in [Some(now + DAY), Some(now + 6 * DAY), Some(now + 8 * DAY), Some(now - DAY), None] {
        store
            .add_token(TokenOwner::Tenant(&acme), new_token(TokenKind::Tenant, Scopes::all(), None, expires_at))
            .await
            .unwrap();
    }
    let revoked = new_token(TokenKind::Tenant, Scopes::all(), None, Some(now + DAY));
    store.add_token(TokenOwner::Tenant(&acme), revoked.clone()).await.unwrap();
    store.revoke_token(TokenOwner::Tenant(&acme), &revoked.id).await.unwrap();
    store
        .add_token(TokenOwner::Operator, new_token(TokenKind::Operator, Scopes::all(), None, Some(now + DAY)))
        .await
        .unwrap();

    // An OAuth client counts when it, or a live secret of it, expires within the window.
    for (expires_at, revoked) in
        [(Some(now + DAY), false), (Some(now + 8 * DAY), false), (None, false), (Some(now + DAY), true)]
    {
        let client = token::new_id();
        let secret =
            NewClientSecret { id: token::new_id(), hash: SecretHash::from_stored("$argon2id$placeholder".into()) };
        let new = NewOAuthClient {
            id: client.clone(),
            name: None,
            scopes: Scopes::all(),
            expires_at,
            credential: ClientCredential::Secret(secret),
        };
        store.add_oauth_client(&acme, new).await.unwrap();
        if revoked {
            store.revoke_oauth_client(&acme, &client).await.unwrap();
        }
    }

    // An endpoint that is caught up has nothing undelivered.
    let url = WebhookUrl::parse("https://receiver.example.com/events").unwrap();
    store.add_webhook(&acme, &url, &WebhookSecret::new("s".repeat(32)), true).await.unwrap();
    let caught_up = store.gauges(now_micros(), 7 * DAY).await.unwrap();
    assert_eq!((caught_up.tenant_tokens_expiring, caught_up.operator_tokens_expiring), (2, 1));
    assert_eq!(caught_up.oauth_clients_expiring, 1);
    assert_eq!((caught_up.dead_letters, caught_up.oldest_undelivered_at), (0, None));

    store.create(&tenant.id, ResourceKind::User, user("first")).await.unwrap();
    store.create(&tenant.id, ResourceKind::User, user("second")).await.unwrap();
    let first = store.events_after(&acme, 0, 10).await.unwrap();
    assert!(first.len() >= 2, "{first:?}");

    let waiting = store.gauges(now_micros(), 7 * DAY).await.unwrap();
    assert_eq!(waiting.oldest_undelivered_at, Some(first[0].occurred_at));

    // The first event fails for good: a dead letter, and the oldest waiting one is the next.
    let batch = store.claim_delivery(now_micros(), now_micros() + 60_000_000, 1).await.unwrap().unwrap();
    store.finish_delivery(&batch, &DeliveryResult::Failed { error: "down".into(), retry_at: None }).await.unwrap();
    let after = store.gauges(now_micros(), 7 * DAY).await.unwrap();
    assert_eq!(after.dead_letters, 1);
    assert_eq!(after.oldest_undelivered_at, Some(first[1].occurred_at));

    // A disabled endpoint waits for nobody.
    let hook = store.list_webhooks(&acme).await.unwrap().remove(0);
    store.set_webhook_enabled(&acme, &hook.id, false).await.unwrap();
    assert_eq!(store.gauges(now_micros(), 7 * DAY).await.unwrap().oldest_undelivered_at, None);
}
