//! Setup links and web sessions: what the setup portal and the operator console keep.
//!
//! A setup link lets a customer's IT admin into the setup portal of one tenant, once. A web
//! session is a signed-in browser: of one tenant (portal) or of an operator (console). Both carry
//! a random secret that is stored only as a SHA-256 digest and checked in constant time.

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use token::{TokenId, Validity};

use crate::org::{OrganizationName, Role};
use crate::{DomainError, TenantName};

/// The SHA-256 digest of a random secret, as stored. The secrets are at least 128 random bits,
/// so a fast digest is enough: there is nothing to guess from it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretDigest(String);

impl SecretDigest {
    pub fn of(secret: &str) -> Self {
        Self(hex::encode(Sha256::digest(secret.as_bytes())))
    }

    pub(crate) fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `secret` is the one this is the digest of, in constant time.
    pub fn matches(&self, secret: &str) -> bool {
        Self::of(secret).0.as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

impl std::fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretDigest(..)")
    }
}

/// A setup link as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalLink {
    pub id: String,
    pub tenant: TenantName,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// Where a setup link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Not yet opened, not expired, not revoked: it still works.
    Unused,
    Used,
    Expired,
    Revoked,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Unused => "unused",
            LinkState::Used => "used",
            LinkState::Expired => "expired",
            LinkState::Revoked => "revoked",
        }
    }
}

impl PortalLink {
    /// The link's state at `now`; a revoked link reads as revoked even after it expired.
    pub fn state(&self, now: i64) -> LinkState {
        if self.revoked_at.is_some() {
            LinkState::Revoked
        } else if self.used_at.is_some() {
            LinkState::Used
        } else if self.expires_at <= now {
            LinkState::Expired
        } else {
            LinkState::Unused
        }
    }
}

/// A setup link with the digest of its secret, for opening it.
#[derive(Debug, Clone)]
pub struct StoredPortalLink {
    pub link: PortalLink,
    pub digest: SecretDigest,
}

/// What the store keeps of a new setup link.
#[derive(Debug, Clone)]
pub struct NewPortalLink {
    pub id: String,
    pub digest: SecretDigest,
    pub expires_at: i64,
}

/// Whom a web session speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionScope {
    /// The setup portal of one tenant, and nothing else.
    Portal(TenantName),
    /// The operator console, signed in with this operator token.
    Console(TokenId),
}

/// What the store keeps of a new web session.
#[derive(Debug, Clone)]
pub struct NewWebSession {
    pub id: String,
    pub digest: SecretDigest,
    pub scope: SessionScope,
    /// The per-session token every form carries.
    pub csrf_token: String,
    pub expires_at: i64,
}

/// A web session as a request needs it.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub id: String,
    pub digest: SecretDigest,
    pub scope: SessionScope,
    pub csrf_token: String,
    pub expires_at: i64,
    /// For a console session, the operator token's validity: the session ends with the token.
    pub operator_token: Option<Validity>,
}

/// Which organization one of the tenant's groups gives, and with which role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOrganization {
    pub group_id: String,
    pub group_name: String,
    pub organization: OrganizationName,
    pub role: Role,
    /// The organization was created for this group (autoprovisioning).
    pub autoprovisioned: bool,
}

#[async_trait]
pub trait PortalStore: Send + Sync {
    async fn add_portal_link(&self, tenant: &TenantName, link: NewPortalLink) -> Result<PortalLink, DomainError>;
    /// The tenant's setup links, newest first.
    async fn list_portal_links(&self, tenant: &TenantName) -> Result<Vec<PortalLink>, DomainError>;
    /// Revoke one link now; revoking a revoked link changes nothing.
    async fn revoke_portal_link(&self, tenant: &TenantName, id: &str) -> Result<(), DomainError>;
    /// The link with this id, with the digest of its secret; `None` if there is none.
    async fn portal_link(&self, id: &str) -> Result<Option<StoredPortalLink>, DomainError>;
    /// Mark the link used and open `session` for its tenant, in one transaction, if the link is
    /// still unused, unexpired and unrevoked at `now`; whether it was. Of two concurrent uses,
    /// one wins.
    async fn use_portal_link(&self, id: &str, now: i64, session: NewWebSession) -> Result<bool, DomainError>;
    /// Open a session (and forget expired ones).
    async fn add_web_session(&self, session: NewWebSession) -> Result<(), DomainError>;
    async fn web_session(&self, id: &str) -> Result<Option<WebSession>, DomainError>;
    /// End a session; ending an ended one changes nothing.
    async fn end_web_session(&self, id: &str) -> Result<(), DomainError>;
    /// Which organizations the tenant's groups give, by group name.
    async fn group_organizations(&self, tenant: &TenantName) -> Result<Vec<GroupOrganization>, DomainError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_only_their_secret_and_never_print_it() {
        let digest = SecretDigest::of("s3cret");
        assert!(digest.matches("s3cret"));
        assert!(!digest.matches("s3cres"));
        assert_eq!(digest.as_str().len(), 64);
        assert_eq!(format!("{digest:?}"), "SecretDigest(..)");
    }

    #[test]
    fn a_link_is_revoked_used_expired_or_unused_in_that_order() {
        let link = PortalLink {
            id: "l".into(),
            tenant: TenantName::parse("acme").unwrap(),
            created_at: 0,
            expires_at: 100,
            used_at: None,
            revoked_at: None,
        };
        assert_eq!(link.state(50), LinkState::Unused);
        assert_eq!(link.state(100), LinkState::Expired);
        assert_eq!(PortalLink { used_at: Some(10), ..link.clone() }.state(200), LinkState::Used);
        assert_eq!(PortalLink { used_at: Some(10), revoked_at: Some(20), ..link }.state(50), LinkState::Revoked);
    }
}
