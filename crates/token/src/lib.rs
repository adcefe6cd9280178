//! scimgate bearer tokens: format, issuance, Argon2id hashing and cached verification, scopes,
//! validity (expiry, revocation with a grace period), OAuth client secrets and access tokens.
//!
//! A token reads `scimgate_<id>_<secret>_<checksum>` (`scimgateadm_…` for operators):
//! - the fixed prefix lets secret scanners recognise a leaked token, and tells tenant tokens from
//!   operator tokens;
//! - `id` is public and is the database lookup key, so the secret never appears in a query;
//! - `secret` is 44 base62 characters (≈ 262 bits) from the OS random generator;
//! - `checksum` is CRC32 of everything before it, so a mistyped or invented token is refused
//!   before any database or Argon2 work (it is no defence against a deliberate attacker, who can
//!   compute CRC32: limits handle those).
#![forbid(unsafe_code)]

mod format;
mod hash;
pub mod oauth;
mod scope;
mod validity;
mod verifier;

pub use format::{
    compose, compose_prefixed, new_id, ParsedToken, TokenId, TokenKind, OPERATOR_TOKEN_PREFIX, TOKEN_PREFIX,
};
pub use hash::{hash_secret, SecretHash};
pub use scope::{Scope, Scopes};
pub use validity::Validity;
pub use verifier::{CacheLookup, Verifier, VerifierConfig};

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not a scimgate token, or its checksum does not match. Carries no detail on purpose: the
    /// client learns only that the credential was refused.
    #[error("malformed token")]
    Malformed,
    /// The secret does not match the stored hash, or the token does not exist.
    #[error("invalid token")]
    Invalid,
    #[error("token revoked")]
    Revoked,
    #[error("token expired")]
    Expired,
    /// The scope string stored or given is not one this crate knows.
    #[error("unknown scope `{0}`")]
    UnknownScope(String),
    /// The stored hash cannot be read (corrupt row or a parameter change gone wrong).
    #[error("stored token hash is unreadable")]
    CorruptHash,
    /// The blocking pool that runs Argon2 went away (shutdown).
    #[error("token verification was interrupted")]
    Interrupted,
}

/// A freshly issued token: the plaintext, shown once, and what the store keeps.
pub struct IssuedToken {
    pub id: TokenId,
    /// The whole bearer token. Print it once; never log it.
    pub plaintext: String,
    pub hash: SecretHash,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken").field("id", &self.id).field("plaintext", &"***").finish()
    }
}

/// Generate a new token of `kind` and hash its secret with Argon2id. CPU-heavy (tens of ms): call
/// it from a blocking context or `spawn_blocking`.
pub fn issue(kind: TokenKind) -> Result<IssuedToken, TokenError> {
    let (id, secret, plaintext) = format::generate(kind);
    let hash = hash::hash_secret(&secret)?;
    Ok(IssuedToken { id, plaintext, hash })
}
