use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;
use subtle::ConstantTimeEq;

use crate::TokenError;

/// The prefix of a tenant's SCIM token.
pub const TOKEN_PREFIX: &str = "scimgate";
/// The prefix of an operator's admin API token: a different prefix, so a leaked operator token
/// is told apart by secret scanners and can never be mistaken for a tenant's.
pub const OPERATOR_TOKEN_PREFIX: &str = "scimgateadm";
const ID_LEN: usize = 16;
const SECRET_LEN: usize = 44;
const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Whom a token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// One tenant's IdP, on `/scim/v2/{org}`.
    Tenant,
    /// An operator, on `/admin/v1`.
    Operator,
}

impl TokenKind {
    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::Tenant => TOKEN_PREFIX,
            TokenKind::Operator => OPERATOR_TOKEN_PREFIX,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Tenant => "tenant",
            TokenKind::Operator => "operator",
        }
    }

    fn from_prefix(prefix: &str) -> Option<Self> {
        [TokenKind::Tenant, TokenKind::Operator].into_iter().find(|kind| kind.prefix() == prefix)
    }
}

impl std::str::FromStr for TokenKind {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [TokenKind::Tenant, TokenKind::Operator]
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or(TokenError::Malformed)
    }
}

/// The public half of a token: safe to log, store and show in listings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId(String);

impl TokenId {
    /// Parse a token id as shown in listings (16 base62 characters).
    pub fn parse(s: &str) -> Result<Self, TokenError> {
        if s.len() == ID_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(TokenError::Malformed)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TokenId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A bearer token whose shape and checksum are valid. Its secret is still unverified.
pub struct ParsedToken {
    pub kind: TokenKind,
    pub id: TokenId,
    secret: String,
}

impl std::fmt::Debug for ParsedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedToken").field("kind", &self.kind).field("id", &self.id).field("secret", &"***").finish()
    }
}

impl ParsedToken {
    /// Check prefix, lengths, alphabet and checksum. Pure string work: no I/O.
    pub fn parse(token: &str) -> Result<Self, TokenError> {
        let (prefix, id, secret) = split_checked(token)?;
        let Some(kind) = TokenKind::from_prefix(prefix) else {
            return Err(TokenError::Malformed);
        };
        Ok(Self { kind, id, secret: secret.to_owned() })
    }

    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }
}

/// `prefix_id_secret_checksum` split into its prefix, id and secret once lengths, alphabet and
/// checksum are right. The prefix is not checked: callers know which ones they accept.
pub(crate) fn split_checked(token: &str) -> Result<(&str, TokenId, &str), TokenError> {
    let mut parts = token.split('_');
    let (Some(prefix), Some(id), Some(secret), Some(checksum), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let well_formed = secret.len() == SECRET_LEN
        && secret.bytes().all(|b| b.is_ascii_alphanumeric())
        && checksum.len() == CHECKSUM_LEN;
    if !well_formed {
        return Err(TokenError::Malformed);
    }
    let id = TokenId::parse(id)?;
    let expected = checksum_of(&format!("{prefix}_{id}_{secret}"));
    if !bool::from(expected.as_bytes().ct_eq(checksum.as_bytes())) {
        return Err(TokenError::Malformed);
    }
    Ok((prefix, id, secret))
}

pub(crate) fn generate(kind: TokenKind) -> (TokenId, String, String) {
    generate_prefixed(kind.prefix())
}

/// A new random id and secret, and the text `prefix_id_secret_checksum`.
pub(crate) fn generate_prefixed(prefix: &str) -> (TokenId, String, String) {
    let id = new_id();
    let secret = Alphanumeric.sample_string(&mut OsRng, SECRET_LEN);
    let plaintext = compose_prefixed(prefix, id.as_str(), &secret);
    (id, secret, plaintext)
}

/// A new random public id (16 base62 characters).
pub fn new_id() -> TokenId {
    TokenId(Alphanumeric.sample_string(&mut OsRng, ID_LEN))
}

/// The text of a token from its parts, checksum included. Tools and tests use it to make
/// well-formed tokens; a real token's secret only ever comes from [`crate::issue`].
pub fn compose(kind: TokenKind, id: &str, secret: &str) -> String {
    compose_prefixed(kind.prefix(), id, secret)
}

/// [`compose`] with any prefix (OAuth client secrets and access tokens have their own).
pub fn compose_prefixed(prefix: &str, id: &str, secret: &str) -> String {
    let body = format!("{prefix}_{id}_{secret}");
    format!("{body}_{}", checksum_of(&body))
}

fn checksum_of(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes());
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_back_to_their_kind_and_id() {
        let (id, _, plaintext) = generate(TokenKind::Tenant);
        assert!(plaintext.starts_with("scimgate_"));
        let parsed = ParsedToken::parse(&plaintext).unwrap();
        assert_eq!((parsed.kind, parsed.id), (TokenKind::Tenant, id));

        let (id, _, plaintext) = generate(TokenKind::Operator);
        assert!(plaintext.starts_with("scimgateadm_"));
        let parsed = ParsedToken::parse(&plaintext).unwrap();
        assert_eq!((parsed.kind, parsed.id), (TokenKind::Operator, id));
    }

    #[test]
    fn a_changed_prefix_breaks_the_checksum() {
        let (_, _, plaintext) = generate(TokenKind::Tenant);
        let relabelled = plaintext.replacen("scimgate_", "scimgateadm_", 1);
        assert_eq!(ParsedToken::parse(&relabelled).unwrap_err(), TokenError::Malformed);
    }

    #[test]
    fn any_single_character_typo_is_refused() {
        let (_, _, plaintext) = generate(TokenKind::Tenant);
        for i in 9..plaintext.len() {
            let mut bytes = plaintext.clone().into_bytes();
            if bytes[i] == b'_' {
                continue;
            }
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).unwrap();
            assert_eq!(ParsedToken::parse(&typo).unwrap_err(), TokenError::Malformed, "{i}");
        }
    }

    #[test]
    fn garbage_is_malformed() {
        for s in ["", "scimgate", "scimgate___", "Bearer x", "scimgate_a_b_c", "ghp_abc", "é_é_é_é"] {
            assert_eq!(ParsedToken::parse(s).unwrap_err(), TokenError::Malformed);
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let (_, secret, plaintext) = generate(TokenKind::Operator);
        let parsed = ParsedToken::parse(&plaintext).unwrap();
        assert!(!format!("{parsed:?}").contains(&secret));
    }
}
