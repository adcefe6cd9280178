//! Issuing, regenerating and describing tokens: one implementation for the CLI and the admin API.

use std::time::Duration;

use domain::{format_rfc3339, now_micros, DomainError, NewToken, Store, TenantName, TokenInfo, TokenOwner};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use token::{IssuedToken, Scopes, TokenError, TokenKind};

/// The longest grace period a regeneration may leave earlier tokens.
pub const MAX_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);
const MAX_NAME_LEN: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The request itself is wrong (bad duration, expiry in the past, unknown scope).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] DomainError),
    #[error("token could not be issued: {0}")]
    Token(#[from] TokenError),
}

/// What to issue: validated, ready for the store.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub scopes: Scopes,
    pub name: Option<String>,
    pub expires_at: Option<i64>,
}

impl TokenRequest {
    /// Parse what an operator typed or sent. `scopes` is a space- or comma-separated list (all
    /// scopes when absent); `expires_in` a duration like `90d` or `12h`; `expires_at` an RFC 3339
    /// time. At most one of the two expiry forms.
    pub fn parse(
        scopes: Option<&str>,
        name: Option<&str>,
        expires_in: Option<&str>,
        expires_at: Option<&str>,
    ) -> Result<Self, IssueError> {
        let scopes = match scopes {
            Some(s) => Scopes::parse(s).map_err(|e| IssueError::Invalid(e.to_string()))?,
            None => Scopes::all(),
        };
        if scopes.is_empty() {
            return Err(IssueError::Invalid("a token needs at least one scope".into()));
        }
        let name = name.map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned);
        if let Some(name) = &name {
            if name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
                return Err(IssueError::Invalid(format!(
                    "a token name has at most {MAX_NAME_LEN} printable characters"
                )));
            }
        }
        let now = now_micros();
        let expires_at = match (expires_in, expires_at) {
            (Some(_), Some(_)) => return Err(IssueError::Invalid("give an expiry duration or time, not both".into())),
            (Some(d), None) => Some(now.saturating_add(micros(parse_duration(d, "expiry")?))),
            (None, Some(t)) => {
                let at = OffsetDateTime::parse(t, &Rfc3339)
                    .map_err(|e| IssueError::Invalid(format!("`{t}` is not an RFC 3339 time: {e}")))?;
                Some(i64::try_from(at.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX))
            }
            (None, None) => None,
        };
        if expires_at.is_some_and(|at| at <= now) {
            return Err(IssueError::Invalid("the expiry is not in the future".into()));
        }
        Ok(Self { scopes, name, expires_at })
    }
}

/// A duration like `30s`, `12h`, `90d` or `1h 30m`.
pub fn parse_duration(text: &str, what: &str) -> Result<Duration, IssueError> {
    humantime::parse_duration(text.trim())
        .map_err(|e| IssueError::Invalid(format!("`{text}` is not a {what} duration like 12h or 90d: {e}")))
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

async fn new_token(kind: TokenKind, request: &TokenRequest) -> Result<(IssuedToken, NewToken), IssueError> {
    // Argon2 hashing is CPU-heavy: off the async threads.
    let issued =
        tokio::task::spawn_blocking(move || token::issue(kind)).await.map_err(|_| TokenError::Interrupted)??;
    let new = NewToken {
        id: issued.id.clone(),
        hash: issued.hash.clone(),
        scopes: request.scopes,
        name: request.name.clone(),
        expires_at: request.expires_at,
    };
    Ok((issued, new))
}

/// Issue a token for `owner`. The plaintext in the result is shown once and never stored.
pub async fn issue(
    store: &dyn Store,
    owner: TokenOwner<'_>,
    request: &TokenRequest,
) -> Result<IssuedToken, IssueError> {
    let (issued, new) = new_token(owner.kind(), request).await?;
    store.add_token(owner, new).await?;
    Ok(issued)
}

/// Issue a new token for `tenant` and revoke all its earlier ones after `grace` (zero: now).
pub async fn regenerate(
    store: &dyn Store,
    tenant: &TenantName,
    request: &TokenRequest,
    grace: Duration,
) -> Result<IssuedToken, IssueError> {
    if grace > MAX_GRACE {
        return Err(IssueError::Invalid(format!(
            "the grace period is at most {}",
            humantime::format_duration(MAX_GRACE)
        )));
    }
    // Fail before hashing when the tenant does not exist.
    store.tenant(tenant).await?;
    let (issued, new) = new_token(TokenKind::Tenant, request).await?;
    store.regenerate_tokens(tenant, new, now_micros().saturating_add(micros(grace))).await?;
    Ok(issued)
}

/// A token's state at `now`, for listings.
pub fn state(info: &TokenInfo, now: i64) -> &'static str {
    match info.validity.check(now) {
        Ok(()) if info.validity.revoked_at.is_some() => "grace",
        Ok(()) => "active",
        Err(TokenError::Expired) => "expired",
        Err(_) => "revoked",
    }
}

/// An optional time for listings: RFC 3339 or `-`.
pub fn date(at: Option<i64>) -> String {
    at.map(format_rfc3339).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_defaults_and_expiry_forms() {
        let r = TokenRequest::parse(None, None, None, None).unwrap();
        assert_eq!((r.scopes, r.name, r.expires_at), (Scopes::all(), None, None));

        let r = TokenRequest::parse(Some("users:read,users:write"), Some(" Entra "), Some("90d"), None).unwrap();
        assert_eq!(r.name.as_deref(), Some("Entra"));
        let in_90_days = now_micros() + 90 * 24 * 3600 * 1_000_000;
        assert!((r.expires_at.unwrap() - in_90_days).abs() < 60_000_000);

        let r = TokenRequest::parse(None, None, None, Some("2999-01-01T00:00:00Z")).unwrap();
        assert_eq!(r.expires_at.map(format_rfc3339).as_deref(), Some("2999-01-01T00:00:00Z"));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let err = |r: Result<TokenRequest, IssueError>| r.unwrap_err().to_string();
        assert!(err(TokenRequest::parse(Some("admin"), None, None, None)).contains("unknown scope"));
        assert!(err(TokenRequest::parse(Some(","), None, None, None)).contains("at least one scope"));
        assert!(err(TokenRequest::parse(None, None, Some("soon"), None)).contains("duration"));
        assert!(err(TokenRequest::parse(None, None, Some("1d"), Some("2999-01-01T00:00:00Z"))).contains("not both"));
        assert!(err(TokenRequest::parse(None, None, None, Some("2001-01-01T00:00:00Z"))).contains("future"));
        assert!(err(TokenRequest::parse(None, None, None, Some("tomorrow"))).contains("RFC 3339"));
        assert!(err(TokenRequest::parse(None, Some(&"x".repeat(101)), None, None)).contains("at most"));
    }
}
