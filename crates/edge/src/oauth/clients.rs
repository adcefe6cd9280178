//! Creating, rotating and describing OAuth clients: one implementation for the CLI and the
//! admin API.

use std::time::Duration;

use domain::{
    format_rfc3339, now_micros, ClientCredential, Federation, NewClientSecret, NewOAuthClient, Store, TenantName,
};
use token::{IssuedToken, TokenError, TokenId, Validity};

use crate::issuing::{IssueError, TokenRequest, MAX_GRACE};

const MAX_FIELD_LEN: usize = 2048;

/// A client just created: its id and, unless federated, its secret (shown once).
pub struct CreatedClient {
    pub id: TokenId,
    pub secret: Option<IssuedToken>,
}

/// Check a federation as an operator gave it. The JWKS must be served over HTTPS (a JWKS fetched
/// in the clear could be swapped for the attacker's keys), except from the loopback interface.
pub fn federation(issuer: &str, subject: &str, audience: &str, jwks_url: &str) -> Result<Federation, IssueError> {
    for (name, value) in [("issuer", issuer), ("subject", subject), ("audience", audience), ("jwks_url", jwks_url)] {
        if value.trim().is_empty() || value.len() > MAX_FIELD_LEN || value.chars().any(char::is_control) {
            return Err(IssueError::Invalid(format!(
                "the federation's {name} must be 1 to {MAX_FIELD_LEN} printable characters"
            )));
        }
    }
    let url = reqwest::Url::parse(jwks_url)
        .map_err(|e| IssueError::Invalid(format!("jwks_url `{jwks_url}` is not a URL: {e}")))?;
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let loopback =
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
        return Err(IssueError::Invalid("jwks_url must be an https URL".into()));
    }
    Ok(Federation {
        issuer: issuer.to_owned(),
        subject: subject.to_owned(),
        audience: audience.to_owned(),
        jwks_url: jwks_url.to_owned(),
    })
}

async fn new_secret() -> Result<(IssuedToken, NewClientSecret), IssueError> {
    // Argon2 hashing is CPU-heavy: off the async threads.
    let issued =
        tokio::task::spawn_blocking(token::oauth::issue_client_secret).await.map_err(|_| TokenError::Interrupted)??;
    let new = NewClientSecret { id: issued.id.clone(), hash: issued.hash.clone() };
    Ok((issued, new))
}

/// Create a client of `tenant`: with a secret, or trusting `federation`.
pub async fn create(
    store: &dyn Store,
    tenant: &TenantName,
    request: &TokenRequest,
    federation: Option<Federation>,
) -> Result<CreatedClient, IssueError> {
    // Fail before hashing when the tenant does not exist.
    store.tenant(tenant).await?;
    let id = token::new_id();
    let (secret, credential) = match federation {
        Some(f) => (None, ClientCredential::Federated(f)),
        None => {
            let (issued, new) = new_secret().await?;
            (Some(issued), ClientCredential::Secret(new))
        }
    };
    let client = NewOAuthClient {
        id: id.clone(),
        name: request.name.clone(),
        scopes: request.scopes,
        expires_at: request.expires_at,
        credential,
    };
    store.add_oauth_client(tenant, client).await?;
    Ok(CreatedClient { id, secret })
}

/// Give `client` a new secret expiring at `expires_at`; its earlier secrets, and the access
/// tokens they obtained, keep working for `overlap` (zero: they stop now).
pub async fn rotate(
    store: &dyn Store,
    tenant: &TenantName,
    client: &TokenId,
    expires_at: Option<i64>,
    overlap: Duration,
) -> Result<IssuedToken, IssueError> {
    if overlap > MAX_GRACE {
        return Err(IssueError::Invalid(format!("the overlap is at most {}", humantime::format_duration(MAX_GRACE))));
    }
    store.tenant(tenant).await?;
    let (issued, new) = new_secret().await?;
    let overlap = i64::try_from(overlap.as_micros()).unwrap_or(i64::MAX);
    store.rotate_client_secret(tenant, client, new, expires_at, now_micros().saturating_add(overlap)).await?;
    Ok(issued)
}

/// A credential's state at `now`, for listings: `active`, `overlap` (revoked at a future time by
/// a rotation), `expired` or `revoked`.
pub fn state(validity: &Validity, now: i64) -> &'static str {
    match validity.check(now) {
        Ok(()) if validity.revoked_at.is_some() => "overlap",
        Ok(()) => "active",
        Err(TokenError::Expired) => "expired",
        Err(_) => "revoked",
    }
}

/// An optional time for listings: RFC 3339, or `None`.
pub fn time(at: Option<i64>) -> Option<String> {
    at.map(format_rfc3339)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn federations_need_every_field_and_a_safe_jwks_url() {
        let ok = federation("https://issuer", "sub", "aud", "https://issuer/keys").unwrap();
        assert_eq!(ok.jwks_url, "https://issuer/keys");
        assert!(federation("i", "s", "a", "http://127.0.0.1:9/keys").is_ok(), "loopback may be plain HTTP");
        assert!(federation("i", "s", "a", "http://localhost/keys").is_ok());
        for (issuer, jwks) in [("i", "http://issuer.example/keys"), ("", "https://x"), ("i", "not a url")] {
            assert!(federation(issuer, "s", "a", jwks).is_err(), "{issuer} {jwks}");
        }
    }
}
