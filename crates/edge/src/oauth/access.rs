//! Access tokens on SCIM routes: one read by primary key (with the client and the secret that
//! obtained the token), one SHA-256 and a constant-time comparison. The client's revocation,
//! and a rotation's end of overlap, are seen on the very next request on every replica.

use actix_web::http::header;
use actix_web::HttpRequest;
use domain::{now_micros, StoredAccessToken};
use token::oauth::AccessToken;
use token::TokenKind;

use crate::auth::{client_address, AuthError};
use crate::metrics;
use crate::state::AppState;

/// The request's bearer credential when it is an access token (it may still be malformed).
pub fn bearer_access_token(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| AccessToken::looks_like(token))
}

/// Check an access token presented to tenant `org`'s SCIM endpoint. Every refusal counts against
/// the client address, as for bearer tokens.
pub async fn authenticate_access_token(
    req: &HttpRequest,
    state: &AppState,
    org: &str,
    presented: &str,
) -> Result<StoredAccessToken, AuthError> {
    let client = client_address(req, state.settings.trusted_proxy_hops);
    if let Some(retry_after) = client.and_then(|ip| state.failures.blocked_for(ip, org)) {
        metrics::rate_limited(None, metrics::RateLimitReason::AuthFailures);
        return Err(AuthError::TooManyFailures { retry_after });
    }
    let result = check(state, org, presented).await;
    if let Err(AuthError::Unauthorized(reason)) = &result {
        metrics::auth_failure(TokenKind::Tenant, reason);
        if let Some(ip) = client {
            state.failures.record_failure(ip, org);
        }
    }
    result
}

async fn check(state: &AppState, org: &str, presented: &str) -> Result<StoredAccessToken, AuthError> {
    let token = AccessToken::parse(presented).map_err(|_| AuthError::Unauthorized("malformed token"))?;
    let stored =
        state.store.access_token_for_auth(&token.id).await?.ok_or(AuthError::Unauthorized("unknown token id"))?;
    if !token.matches(&stored.hash) {
        return Err(AuthError::Unauthorized("secret does not match"));
    }
    stored.validity.check(now_micros()).map_err(|e| match e {
        token::TokenError::Revoked => AuthError::Unauthorized("token revoked"),
        _ => AuthError::Unauthorized("token expired"),
    })?;
    if stored.tenant.name.as_str() != org {
        return Err(AuthError::Unauthorized("token belongs to another tenant"));
    }
    if !stored.tenant.settings.auth_methods.accepts_oauth() {
        return Err(AuthError::Unauthorized("the tenant does not accept OAuth access tokens"));
    }
    Ok(stored)
}
