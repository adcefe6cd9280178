//! OAuth 2.0 clients of a tenant's IdP: each holds a secret (rotatable with an overlap) or
//! trusts an external issuer's signed assertions (federated credentials), and obtains short-lived
//! access tokens for the tenant's SCIM endpoint.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use token::oauth::AccessTokenHash;
use token::{Scopes, SecretHash, TokenId, Validity};

use crate::{DomainError, Tenant};

/// Which credentials a tenant's SCIM endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethods {
    /// Long-lived bearer tokens only.
    Bearer,
    /// Access tokens from the tenant's OAuth clients only (what the Entra gallery requires).
    #[serde(rename = "oauth")]
    OAuth,
    #[default]
    Both,
}

impl AuthMethods {
    pub const ALL: [AuthMethods; 3] = [AuthMethods::Bearer, AuthMethods::OAuth, AuthMethods::Both];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethods::Bearer => "bearer",
            AuthMethods::OAuth => "oauth",
            AuthMethods::Both => "both",
        }
    }

    pub fn accepts_bearer(self) -> bool {
        self != AuthMethods::OAuth
    }

    pub fn accepts_oauth(self) -> bool {
        self != AuthMethods::Bearer
    }
}

impl FromStr for AuthMethods {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuthMethods::ALL.into_iter().find(|m| m.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| {
            DomainError::Invalid(proto::Error::invalid_value(format!(
                "unknown authentication methods `{s}`; use bearer, oauth or both"
            )))
        })
    }
}

impl fmt::Display for AuthMethods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long a tenant's access tokens live: 60 minutes to 6 hours (the Entra gallery's range).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct AccessTokenLifetime(u32);

impl AccessTokenLifetime {
    pub const MIN_SECONDS: u32 = 3600;
    pub const MAX_SECONDS: u32 = 6 * 3600;

    pub fn from_seconds(seconds: u64) -> Result<Self, DomainError> {
        u32::try_from(seconds)
            .ok()
            .filter(|s| (Self::MIN_SECONDS..=Self::MAX_SECONDS).contains(s))
            .map(Self)
            .ok_or_else(|| {
                DomainError::Invalid(proto::Error::invalid_value(format!(
                    "an access token lifetime is 60 minutes to 6 hours, not {seconds} seconds"
                )))
            })
    }

    pub fn seconds(self) -> u32 {
        self.0
    }
}

impl Default for AccessTokenLifetime {
    fn default() -> Self {
        Self(Self::MIN_SECONDS)
    }
}

impl<'de> Deserialize<'de> for AccessTokenLifetime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::from_seconds(u64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

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
    fn lifetimes_stay_within_an_hour_and_six() {
        assert_eq!(AccessTokenLifetime::default().seconds(), 3600);
        assert_eq!(AccessTokenLifetime::from_seconds(21600).unwrap().seconds(), 21600);
        for bad in [0, 3599, 21601, u64::MAX] {
            assert!(AccessTokenLifetime::from_seconds(bad).unwrap_err().to_string().contains("60 minutes"));
        }
    }

    #[test]
    fn methods_parse_and_say_what_they_accept() {
        assert_eq!("OAuth".parse::<AuthMethods>().unwrap(), AuthMethods::OAuth);
        assert!(!AuthMethods::OAuth.accepts_bearer() && AuthMethods::OAuth.accepts_oauth());
        assert!(AuthMethods::Bearer.accepts_bearer() && !AuthMethods::Bearer.accepts_oauth());
        assert!("tokens".parse::<AuthMethods>().is_err());
        assert_eq!(earliest(Some(3), Some(2)), Some(2));
        assert_eq!(earliest(None, Some(2)), Some(2));
    }
}
