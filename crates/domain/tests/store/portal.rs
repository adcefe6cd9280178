//! Setup links and web sessions in the store.

use domain::{
    now_micros, DomainError, LinkState, NewPortalLink, NewToken, NewWebSession, SecretDigest, SessionScope, Store,
    TenantName, TokenOwner,
};
use token::{Scopes, SecretHash};

domain::both_backends!(
    store:
    a_link_is_listed_used_once_and_revoked,
    sessions_keep_their_scope_and_end,
    a_console_session_carries_its_tokens_validity,
    links_and_sessions_go_with_their_tenant,
);

const HOUR: i64 = 3600 * 1_000_000;

fn link(expires_at: i64) -> (NewPortalLink, String) {
    let secret = uuid::Uuid::new_v4().simple().to_string();
    let id = uuid::Uuid::new_v4().simple().to_string();
    (NewPortalLink { id, digest: SecretDigest::of(&secret), expires_at }, secret)
}

fn session(scope: SessionScope) -> NewWebSession {
    let id = uuid::Uuid::new_v4().simple().to_string();
    NewWebSession {
        id,
        digest: SecretDigest::of("session-secret"),
        scope,
        csrf_token: "form-token".into(),
        expires_at: now_micros() + HOUR,
    }
}

async fn tenant(store: &impl Store, name: &str) -> TenantName {
    let name = TenantName::parse(name).unwrap();
    store.create_tenant(&name).await.unwrap();
    name
}

async fn a_link_is_listed_used_once_and_revoked(store: &impl Store) {
    let acme = tenant(store, "acme").await;
    let (new, secret) = link(now_micros() + HOUR);
    let added = store.add_portal_link(&acme, new.clone()).await.unwrap();
    assert_eq!((added.tenant.as_str(), added.state(now_micros())), ("acme", LinkState::Unused));

    let stored = store.portal_link(&new.id).await.unwrap().unwrap();
    assert!(stored.digest.matches(&secret) && !stored.digest.matches("guess"));
    assert_eq!(stored.link, added);
    assert!(store.portal_link("no-such-link").await.unwrap().is_none());

    let first = session(SessionScope::Portal(acme.clone()));
    assert!(store.use_portal_link(&new.id, now_micros(), first.clone()).await.unwrap());
    assert!(!store.use_portal_link(&new.id, now_micros(), session(SessionScope::Portal(acme.clone()))).await.unwrap());
    let opened = store.web_session(&first.id).await.unwrap().unwrap();
    assert_eq!(opened.scope, SessionScope::Portal(acme.clone()));
    assert_eq!(store.list_portal_links(&acme).await.unwrap()[0].state(now_micros()), LinkState::Used);

    // Expired and revoked links open nothing.
    let (expired, _) = link(now_micros() + 1000);
    store.add_portal_link(&acme, expired.clone()).await.unwrap();
    let later = now_micros() + 2000;
    assert!(!store.use_portal_link(&expired.id, later, session(SessionScope::Portal(acme.clone()))).await.unwrap());
    let (revoked, _) = link(now_micros() + HOUR);
    store.add_portal_link(&acme, revoked.clone()).await.unwrap();
    store.revoke_portal_link(&acme, &revoked.id).await.unwrap();
    store.revoke_portal_link(&acme, &revoked.id).await.unwrap();
    let tried = session(SessionScope::Portal(acme.clone()));
    assert!(!store.use_portal_link(&revoked.id, now_micros(), tried.clone()).await.unwrap());
    assert!(store.web_session(&tried.id).await.unwrap().is_none(), "no session without the link");

    let listed = store.list_portal_links(&acme).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].id, revoked.id, "newest first");
    assert_eq!(listed[0].state(now_micros()), LinkState::Revoked);

    // A link is revoked through its own tenant only.
    let other = tenant(store, "other").await;
    let err = store.revoke_portal_link(&other, &new.id).await.unwrap_err();
    assert!(matches!(err, DomainError::NotFound(_)), "{err}");
}

async fn sessions_keep_their_scope_and_end(store: &impl Store) {
    let acme = tenant(store, "acme").await;
    let portal = session(SessionScope::Portal(acme.clone()));
    store.add_web_session(portal.clone()).await.unwrap();
    let got = store.web_session(&portal.id).await.unwrap().unwrap();
    assert_eq!(
        (got.scope, got.csrf_token.as_str(), got.operator_token),
        (SessionScope::Portal(acme), "form-token", None)
    );
    assert!(got.digest.matches("session-secret"));
    store.end_web_session(&portal.id).await.unwrap();
    store.end_web_session(&portal.id).await.unwrap();
    assert!(store.web_session(&portal.id).await.unwrap().is_none());
    let unknown = session(SessionScope::Portal(TenantName::parse("nobody").unwrap()));
    assert!(matches!(store.add_web_session(unknown).await, Err(DomainError::NotFound(_))));
}

async fn a_console_session_carries_its_tokens_validity(store: &impl Store) {
    let issued = token::issue(token::TokenKind::Operator).unwrap();
    let id = issued.id.clone();
    let new = NewToken {
        id: id.clone(),
        hash: SecretHash::from_stored("x".into()),
        scopes: Scopes::all(),
        name: None,
        expires_at: None,
    };
    store.add_token(TokenOwner::Operator, new).await.unwrap();
    let console = session(SessionScope::Console(id.clone()));
    store.add_web_session(console.clone()).await.unwrap();
    let got = store.web_session(&console.id).await.unwrap().unwrap();
    assert_eq!(got.scope, SessionScope::Console(id.clone()));
    assert!(got.operator_token.unwrap().check(now_micros()).is_ok());

    store.revoke_token(TokenOwner::Operator, &id).await.unwrap();
    let got = store.web_session(&console.id).await.unwrap().unwrap();
    assert!(got.operator_token.unwrap().check(now_micros()).is_err(), "the session ends with its token");
}

async fn links_and_sessions_go_with_their_tenant(store: &impl Store) {
    let acme = tenant(store, "acme").await;
    let (new, _) = link(now_micros() + HOUR);
    store.add_portal_link(&acme, new.clone()).await.unwrap();
    let portal = session(SessionScope::Portal(acme.clone()));
    store.add_web_session(portal.clone()).await.unwrap();
    store.delete_tenant(&acme).await.unwrap();
    assert!(store.portal_link(&new.id).await.unwrap().is_none());
    assert!(store.web_session(&portal.id).await.unwrap().is_none());
}
