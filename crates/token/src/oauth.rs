//! OAuth 2.0 credentials: client secrets (`scimgatecs_…`) and the opaque access tokens the token
//! endpoint issues (`scimgateat_…`). Both have the bearer-token shape, so a typo is refused before
//! any I/O and secret scanners recognise them by prefix; the id inside is the database key.
//!
//! A client secret is hashed with Argon2id like a bearer token. An access token's secret is
//! hashed with SHA-256: it carries 262 random bits and lives hours, so a slow hash would only cost
//! time on every request.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::format::{generate_prefixed, split_checked};
use crate::hash::hash_secret;
use crate::{TokenError, TokenId};

/// The prefix of an OAuth client secret.
pub const CLIENT_SECRET_PREFIX: &str = "scimgatecs";
/// The prefix of an access token issued by the token endpoint.
pub const ACCESS_TOKEN_PREFIX: &str = "scimgateat";

/// A client secret whose shape and checksum are valid; the id names the stored secret.
pub struct ClientSecret {
    pub id: TokenId,
    secret: String,
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecret").field("id", &self.id).field("secret", &"***").finish()
    }
}

impl ClientSecret {
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        match split_checked(text)? {
            (CLIENT_SECRET_PREFIX, id, secret) => Ok(Self { id, secret: secret.to_owned() }),
            _ => Err(TokenError::Malformed),
        }
    }

    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }
}

/// A new client secret: the plaintext (shown once) and its Argon2id hash. CPU-heavy: call it off
/// the async threads.
pub fn issue_client_secret() -> Result<crate::IssuedToken, TokenError> {
    let (id, secret, plaintext) = generate_prefixed(CLIENT_SECRET_PREFIX);
    let hash = hash_secret(&secret)?;
    Ok(crate::IssuedToken { id, plaintext, hash })
}

/// The SHA-256 of an access token's secret, hex-encoded, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessTokenHash(String);

impl AccessTokenHash {
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessTokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessTokenHash(***)")
    }
}

fn sha256_hex(secret: &str) -> AccessTokenHash {
    AccessTokenHash(hex::encode(Sha256::digest(secret.as_bytes())))
}

/// An access token whose shape and checksum are valid. Its secret is still unverified.
pub struct AccessToken {
    pub id: TokenId,
    secret: String,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken").field("id", &self.id).field("secret", &"***").finish()
    }
}

impl AccessToken {
    /// Whether `text` claims to be an access token (it may still be malformed).
    pub fn looks_like(text: &str) -> bool {
        text.strip_prefix(ACCESS_TOKEN_PREFIX).is_some_and(|rest| rest.starts_with('_'))
    }

    pub fn parse(text: &str) -> Result<Self, TokenError> {
        match split_checked(text)? {
            (ACCESS_TOKEN_PREFIX, id, secret) => Ok(Self { id, secret: secret.to_owned() }),
            _ => Err(TokenError::Malformed),
        }
    }

    /// Whether this token's secret is the one `stored` is the hash of, compared in constant time.
    pub fn matches(&self, stored: &AccessTokenHash) -> bool {
        bool::from(sha256_hex(&self.secret).0.as_bytes().ct_eq(stored.0.as_bytes()))
    }
}

/// A newly issued access token: the plaintext for the client, and what the store keeps.
pub struct IssuedAccessToken {
    pub id: TokenId,
    pub plaintext: String,
    pub hash: AccessTokenHash,
}

impl std::fmt::Debug for IssuedAccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedAccessToken").field("id", &self.id).field("plaintext", &"***").finish()
    }
}

/// A new access token. Cheap (random bytes and one SHA-256).
pub fn issue_access_token() -> IssuedAccessToken {
    let (id, secret, plaintext) = generate_prefixed(ACCESS_TOKEN_PREFIX);
    IssuedAccessToken { id, plaintext, hash: sha256_hex(&secret) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_tokens_verify_against_their_own_hash_only() {
        let issued = issue_access_token();
        assert!(issued.plaintext.starts_with("scimgateat_") && AccessToken::looks_like(&issued.plaintext));
        let token = AccessToken::parse(&issued.plaintext).unwrap();
        assert_eq!(token.id, issued.id);
        assert!(token.matches(&issued.hash));
        assert!(!token.matches(&issue_access_token().hash));
        assert!(!format!("{token:?}{issued:?}").contains(&token.secret));
    }

    #[test]
    fn each_credential_parses_only_with_its_own_prefix() {
        let secret = issue_client_secret().unwrap();
        assert!(secret.plaintext.starts_with("scimgatecs_"));
        assert_eq!(ClientSecret::parse(&secret.plaintext).unwrap().id, secret.id);
        assert_eq!(AccessToken::parse(&secret.plaintext).unwrap_err(), TokenError::Malformed);
        let access = issue_access_token();
        assert_eq!(ClientSecret::parse(&access.plaintext).unwrap_err(), TokenError::Malformed);
        let bearer = crate::issue(crate::TokenKind::Tenant).unwrap();
        assert_eq!(AccessToken::parse(&bearer.plaintext).unwrap_err(), TokenError::Malformed);
        assert!(!AccessToken::looks_like(&bearer.plaintext));
    }
}
