//! Why a credential was refused. The client is told only that it was; the reason goes to the
//! request's log line (`error.reason`) and to the `scimgate_auth_failures_total` counter.

/// One reason to refuse a bearer token, an OAuth access token or an OAuth client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not a token of ours: prefix, shape or checksum.
    Malformed,
    /// An operator token on the SCIM API, or a tenant token on the admin API.
    WrongKind,
    /// A well-formed token whose id is not stored.
    UnknownToken,
    /// The id exists; the secret is not the one hashed for it.
    WrongSecret,
    Revoked,
    Expired,
    /// A token of another tenant.
    WrongTenant,
    /// A tenant token whose tenant is gone.
    NoTenant,
    /// The stored hash cannot be read.
    UnreadableHash,
    /// A static bearer token, at a tenant that accepts OAuth access tokens only.
    BearerNotAccepted,
    /// An OAuth access token, at a tenant that accepts static tokens only.
    OAuthNotAccepted,
    /// An OAuth client's credentials or assertion (the token endpoint logs the details).
    OAuthClientRefused,
}

impl Refusal {
    /// The text logged as `error.reason`.
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::Missing => "no bearer token",
            Refusal::Malformed => "malformed token",
            Refusal::WrongKind => "wrong kind of token for this API",
            Refusal::UnknownToken => "unknown token id",
            Refusal::WrongSecret => "secret does not match",
            Refusal::Revoked => "token revoked",
            Refusal::Expired => "token expired",
            Refusal::WrongTenant => "token belongs to another tenant",
            Refusal::NoTenant => "token has no tenant",
            Refusal::UnreadableHash => "stored token hash is unreadable",
            Refusal::BearerNotAccepted => "the tenant accepts OAuth access tokens only",
            Refusal::OAuthNotAccepted => "the tenant does not accept OAuth access tokens",
            Refusal::OAuthClientRefused => "oauth client refused",
        }
    }

    /// The `reason` label of `scimgate_auth_failures_total` (documented in docs/observability.md).
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Malformed => "malformed",
            Refusal::WrongKind => "wrong_kind",
            Refusal::UnknownToken => "unknown_token",
            Refusal::WrongSecret => "wrong_secret",
            Refusal::Revoked => "revoked",
            Refusal::Expired => "expired",
            Refusal::WrongTenant | Refusal::NoTenant => "wrong_tenant",
            Refusal::UnreadableHash
            | Refusal::BearerNotAccepted
            | Refusal::OAuthNotAccepted
            | Refusal::OAuthClientRefused => "other",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}
