//! OAuth 2.0 clients of a tenant's IdP: each holds a secret (rotatable with an overlap) or
//! trusts an external issuer's signed assertions (federated credentials), and obtains short-lived
//! access tokens for the tenant's SCIM endpoint.

use serde::{Deserialize, Serialize};
use token::oauth::AccessTokenHash;
use token::{Scopes, SecretHash, TokenId, Validity};

use crate::Tenant;

/// Trust in an external issuer instead of a secret: an assertion signed by a key of `jwks_url`
/// with these `iss`, `sub` and `aud` authenticates the client (RFC 7523 §2.2), as Entra's
/// workload identity federation presents it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Federation {
    pub issuer: String,
    pub subject: String,
    pub audience: String,
    pub jwks_url: String,
}

/// A new client's first secret.
#[derive(Debug, Clone)]
pub struct NewClientSecret {
    pub id: TokenId,
    pub hash: SecretHash,
}

/// A client to add: with a secret or a federation, never both.
#[derive(Debug, Clone)]
pub struct NewOAuthClient {
    /// The public `client_id`.
    pub id: TokenId,
    pub name: Option<String>,
    pub scopes: Scopes,
    pub expires_at: Option<i64>,
    pub credential: ClientCredential<NewClientSecret>,
}

/// How a client proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCredential<S> {
    Secret(S),
    Federated(Federation),
}

/// A stored secret, as listed (never the hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSecretInfo {
    pub id: TokenId,
    pub created_at: i64,
    pub validity: Validity,
}

/// A client as listed to operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClientInfo {
    pub id: TokenId,
    pub name: Option<String>,
    pub scopes: Scopes,
    pub created_at: i64,
    pub validity: Validity,
    /// The secrets (newest last), or the federation.
    pub credential: ClientCredential<Vec<ClientSecretInfo>>,
}

/// A client as the token endpoint needs it.
#[derive(Debug, Clone)]
pub struct StoredOAuthClient {
    pub id: TokenId,
    pub tenant: Tenant,
    pub scopes: Scopes,
    pub validity: Validity,
    pub federation: Option<Federation>,
}

/// A client secret as the token endpoint needs it.
#[derive(Debug, Clone)]
pub struct StoredClientSecret {
    pub id: TokenId,
    pub client_id: TokenId,
    pub hash: SecretHash,
    pub validity: Validity,
}

/// An access token to keep.
#[derive(Debug, Clone)]
pub struct NewAccessToken {
    pub id: TokenId,
    pub client_id: TokenId,
    /// The secret that obtained it; `None` when an assertion did.
    pub secret_id: Option<TokenId>,
    pub hash: AccessTokenHash,
    pub scopes: Scopes,
    pub expires_at: i64,
}

/// An access token as SCIM authentication needs it. Its validity already folds in its client's
/// and its secret's: revoking either, or the end of a rotation's overlap, ends it.
#[derive(Debug, Clone)]
pub struct StoredAccessToken {
    pub id: TokenId,
    pub client_id: TokenId,
    pub tenant: Tenant,
    pub hash: AccessTokenHash,
    pub scopes: Scopes,
    pub validity: Validity,
}

/// The earliest of two optional deadlines.
pub(crate) fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_deadline_wins() {
        assert_eq!(earliest(Some(3), Some(2)), Some(2));
        assert_eq!(earliest(None, Some(2)), Some(2));
    }
}
