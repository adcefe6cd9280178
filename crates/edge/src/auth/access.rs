//! Access tokens on SCIM routes: one read by primary key (with the client and the secret that
//! obtained the token), one SHA-256 and a constant-time comparison. The client's revocation,
//! and a rotation's end of overlap, are seen on the very next request on every replica.

use actix_web::http::header;
use actix_web::HttpRequest;
use domain::{now_micros, StoredAccessToken};
use token::oauth::AccessToken;
use token::TokenKind;

use super::{client_address, AuthError};
use crate::metrics;
use crate::refusal::Refusal;
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
#[tracing::instrument(name = "auth", skip_all, fields(tenant = org))]
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
        metrics::auth_failure(TokenKind::Tenant, *reason);
        if let Some(ip) = client {
            state.failures.record_failure(ip, org);
        }
    }
    result
}

async fn check(state: &AppState, org: &str, presented: &str) -> Result<StoredAccessToken, AuthError> {
    let token = AccessToken::parse(presented).map_err(|_| AuthError::Unauthorized(Refusal::Malformed))?;
    let stored =
        state.store.access_token_for_auth(&token.id).await?.ok_or(AuthError::Unauthorized(Refusal::UnknownToken))?;
    if !token.matches(&stored.hash) {
        return Err(AuthError::Unauthorized(Refusal::WrongSecret));
    }
    stored.validity.check(now_micros()).map_err(|e| match e {
        token::TokenError::Revoked => AuthError::Unauthorized(Refusal::Revoked),
        _ => AuthError::Unauthorized(Refusal::Expired),
    })?;
    if stored.tenant.name.as_str() != org {
        return Err(AuthError::Unauthorized(Refusal::WrongTenant));
    }
    if !stored.tenant.settings.auth_methods.accepts_oauth() {
        return Err(AuthError::Unauthorized(Refusal::OAuthNotAccepted));
    }
    Ok(stored)
}
