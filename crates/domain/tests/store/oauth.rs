//! OAuth clients, secrets and access tokens in the store.

use domain::{
    now_micros, AccessTokenLifetime, AuthMethods, ClientCredential, DomainError, Federation, NewAccessToken,
    NewClientSecret, NewOAuthClient, Store, TenantName, TenantUpdate,
};
use token::{Scopes, SecretHash, TokenId};

domain::both_backends!(
    store:
    clients_secrets_and_tokens_round_trip,
    an_access_token_lives_no_longer_than_its_client_and_secret,
    federated_clients_are_found_by_issuer_and_subject,
    tenants_keep_their_oauth_settings,
);

fn id() -> TokenId {
    token::new_id()
}

fn secret() -> NewClientSecret {
    NewClientSecret { id: id(), hash: SecretHash::from_stored("$argon2id$placeholder".into()) }
}

fn access_token(client: &TokenId, secret: Option<TokenId>, expires_at: i64) -> (NewAccessToken, TokenId) {
    let issued = token::oauth::issue_access_token();
    let new = NewAccessToken {
        id: issued.id.clone(),
        client_id: client.clone(),
        secret_id: secret,
        hash: issued.hash,
        scopes: Scopes::all(),
        expires_at,
    };
    (new, issued.id)
}

async fn tenant(store: &impl Store, name: &str) -> TenantName {
    let name = TenantName::parse(name).unwrap();
    store.create_tenant(&name).await.unwrap();
    name
}

async fn clients_secrets_and_tokens_round_trip(store: &impl Store) {
    let acme = tenant(store, "acme").await;
    let (client, first) = (id(), secret());
    let new = NewOAuthClient {
        id: client.clone(),
        name: Some("Entra".into()),
        scopes: Scopes::parse("users:read").unwrap(),
        expires_at: None,
        credential: ClientCredential::Secret(first.clone()),
    };
    store.add_oauth_client(&acme, new).await.unwrap();
    let stored = store.oauth_client_for_auth(&client).await.unwrap().unwrap();
    assert_eq!((stored.tenant.name.as_str(), stored.scopes.to_string().as_str()), ("acme", "users:read"));
    assert!(stored.federation.is_none());
    assert_eq!(store.client_secret_for_auth(&first.id).await.unwrap().unwrap().client_id, client);

    let (token, token_id) = access_token(&client, Some(first.id.clone()), now_micros() + 60_000_000);
    store.add_access_token(token).await.unwrap();
    let found = store.access_token_for_auth(&token_id).await.unwrap().unwrap();
    assert_eq!((found.client_id.clone(), found.tenant.name.clone()), (client.clone(), acme.clone()));
    assert!(found.validity.check(now_micros()).is_ok());
    assert!(store.access_token_for_auth(&id()).await.unwrap().is_none());

    let listed = store.list_oauth_clients(&acme).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(matches!(&listed[0].credential, ClientCredential::Secret(s) if s.len() == 1 && s[0].id == first.id));

    store.revoke_oauth_client(&acme, &client).await.unwrap();
    let revoked = store.access_token_for_auth(&token_id).await.unwrap().unwrap();
    assert!(revoked.validity.check(now_micros()).is_err(), "revoking the client ends its tokens");
    assert!(matches!(store.revoke_oauth_client(&acme, &id()).await, Err(DomainError::NotFound(_))));
    let other = tenant(store, "other").await;
    assert!(matches!(store.revoke_oauth_client(&other, &client).await, Err(DomainError::NotFound(_))));
    // Deleting the tenant deletes its clients and their tokens.
    store.delete_tenant(&acme).await.unwrap();
    assert!(store.oauth_client_for_auth(&client).await.unwrap().is_none());
    assert!(store.access_token_for_auth(&token_id).await.unwrap().is_none());
}

async fn an_access_token_lives_no_longer_than_its_client_and_secret(store: &impl Store) {
    let acme = tenant(store, "acme").await;
    let (client, old) = (id(), secret());
    let client_expiry = now_micros() + 3_600_000_000;
    let new = NewOAuthClient {
        id: client.clone(),
        name: None,
        scopes: Scopes::all(),
        expires_at: Some(client_expiry),
        credential: ClientCredential::Secret(old.clone()),
    };
    store.add_oauth_client(&acme, new).await.unwrap();
    let (token, token_id) = access_token(&client, Some(old.id.clone()), now_micros() + 7_200_000_000);
    store.add_access_token(token).await.unwrap();
    let found = store.access_token_for_auth(&token_id).await.unwrap().unwrap();
    assert_eq!(found.validity.expires_at, Some(client_expiry), "the client's expiry comes first");

    // A rotation with an overlap revokes the old secret, and its tokens, at the overlap's end.
    let overlap_end = now_micros() + 60_000_000;
    let rotated = secret();
    store.rotate_client_secret(&acme, &client, rotated.clone(), None, overlap_end).await.unwrap();
    let found = store.access_token_for_auth(&token_id).await.unwrap().unwrap();
    assert_eq!(found.validity.revoked_at, Some(overlap_end));
    let old_secret = store.client_secret_for_auth(&old.id).await.unwrap().unwrap();
    assert_eq!(old_secret.validity.revoked_at, Some(overlap_end));
    let client_now = store.oauth_client_for_auth(&client).await.unwrap().unwrap();
    assert_eq!(client_now.validity.expires_at, None, "the new secret's expiry is the client's");
    assert!(store.client_secret_for_auth(&rotated.id).await.unwrap().unwrap().validity.revoked_at.is_none());
}

async fn federated_clients_are_found_by_issuer_and_subject(store: &impl Store) {
    let acme = tenant(store, "acme").await;
    let federation = Federation {
        issuer: "https://issuer".into(),
        subject: "sp".into(),
        audience: "api://scimgate".into(),
        jwks_url: "https://issuer/keys".into(),
    };
    let client = id();
    let new = NewOAuthClient {
        id: client.clone(),
        name: None,
        scopes: Scopes::all(),
        expires_at: None,
        credential: ClientCredential::Federated(federation.clone()),
    };
    store.add_oauth_client(&acme, new).await.unwrap();
    let found = store.federated_clients_for_auth(&acme, "https://issuer", "sp").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].federation.as_ref(), Some(&federation));
    assert!(store.federated_clients_for_auth(&acme, "https://issuer", "other").await.unwrap().is_empty());
    let other = tenant(store, "other").await;
    assert!(store.federated_clients_for_auth(&other, "https://issuer", "sp").await.unwrap().is_empty());
    let refused = store.rotate_client_secret(&acme, &client, secret(), None, now_micros()).await;
    assert!(matches!(refused, Err(DomainError::Conflict(_))), "a federated client has no secret to rotate");
    let listed = store.list_oauth_clients(&acme).await.unwrap();
    assert_eq!(listed[0].credential, ClientCredential::Federated(federation));
}

async fn tenants_keep_their_oauth_settings(store: &impl Store) {
    let acme = tenant(store, "acme").await;
    let fresh = store.tenant(&acme).await.unwrap();
    assert_eq!(fresh.settings.auth_methods, AuthMethods::Both);
    assert_eq!(fresh.settings.access_token_lifetime.seconds(), 3600);
    let update = TenantUpdate {
        auth_methods: Some(AuthMethods::OAuth),
        access_token_lifetime: Some(AccessTokenLifetime::from_seconds(21600).unwrap()),
        ..TenantUpdate::default()
    };
    let updated = store.update_tenant(&acme, &update).await.unwrap();
    assert_eq!(updated.settings.auth_methods, AuthMethods::OAuth);
    assert_eq!(updated.settings.access_token_lifetime.seconds(), 21600);
}
