//! Bearer-token authentication, for tenants on `/scim/v2/{org}` and operators on `/admin/v1`.
//! Tenants' SCIM endpoints also accept the OAuth access tokens of [`crate::oauth`] ([`access`]).
//!
//! Order of work, cheapest first: a client address that failed too often is refused outright; a
//! token that does not parse (prefix, shape, checksum) costs no I/O; then the token record, whose
//! revocation and expiry are checked on every request: on PostgreSQL kept in memory while the
//! store follows its changes (a revocation takes effect at once on the replica that made it and
//! on the others as its notice arrives), else one indexed read; Argon2 runs at most once per
//! token per cache lifetime. Only then is the tenant's rate limit charged, so another client's
//! bad tokens can never spend it.

mod access;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use domain::{now_micros, ActivityCredential, DomainError, StoredToken, Tenant};
use limit::{Decision, Quota};
use proto::IdpProfile;
use token::{ParsedToken, Scope, Scopes, TokenError, TokenId, TokenKind};

use crate::activity::RequestCredential;
use crate::config::Settings;
use crate::error::ScimError;
use crate::metrics::{self, RateLimitReason, RequestTenant};
use crate::refusal::Refusal;
use crate::state::AppState;

/// Why a request was not let in.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Missing, malformed, unknown, revoked or expired token, or one of another tenant or kind.
    /// The client is told only that; the reason is logged.
    #[error("the bearer token is missing, invalid, expired or revoked")]
    Unauthorized(Refusal),
    /// This client address failed too often; it may try again after `retry_after`.
    #[error("too many failed authentications from this address")]
    TooManyFailures { retry_after: Duration },
    #[error(transparent)]
    Store(#[from] DomainError),
    #[error("the server is shutting down")]
    Interrupted,
}

/// Check the request's bearer token: it must be a live token of `kind` and, for a tenant token,
/// belong to the tenant named `org`. Every refusal counts against the client address, for `org`
/// (or the admin API) and, with a much higher ceiling, for every target together.
#[tracing::instrument(name = "auth", skip_all, fields(tenant = org))]
pub async fn authenticate(
    req: &HttpRequest,
    state: &AppState,
    kind: TokenKind,
    org: Option<&str>,
) -> Result<StoredToken, AuthError> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    authenticate_presented(req, state, kind, org, bearer).await
}

/// [`authenticate`] for a token presented some other way than the `Authorization` header (the
/// operator console's sign-in form), with the same checks and the same failure limits.
pub async fn authenticate_presented(
    req: &HttpRequest,
    state: &AppState,
    kind: TokenKind,
    org: Option<&str>,
    presented: Option<&str>,
) -> Result<StoredToken, AuthError> {
    let client = client_address(req, state.settings.trusted_proxy_hops);
    // Failures are counted per address and target, so bad tokens aimed at one tenant never
    // refuse another tenant's IdP behind the same address.
    let target = org.unwrap_or_default();
    if let Some(retry_after) = client.and_then(|ip| state.failures.blocked_for(ip, target)) {
        metrics::rate_limited(None, RateLimitReason::AuthFailures);
        return Err(AuthError::TooManyFailures { retry_after });
    }
    let result = check_token(state, kind, org, presented).await;
    if let Err(AuthError::Unauthorized(reason)) = &result {
        metrics::auth_failure(kind, *reason);
    }
    if let (Err(AuthError::Unauthorized(_)), Some(ip)) = (&result, client) {
        state.failures.record_failure(ip, target);
    }
    let stored = result?;
    let now = now_micros();
    state.usage.record(&stored.id, now);
    if let (Some(tenant), Some(agent)) =
        (&stored.tenant, req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()))
    {
        state.usage.record_user_agent(&tenant.id, agent, now);
    }
    Ok(stored)
}

async fn check_token(
    state: &AppState,
    kind: TokenKind,
    org: Option<&str>,
    presented: Option<&str>,
) -> Result<StoredToken, AuthError> {
    let bearer = presented.ok_or(AuthError::Unauthorized(Refusal::Missing))?;
    let token = ParsedToken::parse(bearer).map_err(|_| AuthError::Unauthorized(Refusal::Malformed))?;
    if token.kind != kind {
        return Err(AuthError::Unauthorized(Refusal::WrongKind));
    }
    let Some(stored) = state.store.token_for_auth(&token.id).await? else {
        let (refused, lookup) = state.verifier.check_unknown(&token).await;
        metrics::token_cache(lookup);
        return Err(refusal(refused, Refusal::UnknownToken));
    };
    let (verified, lookup) = state.verifier.check(&token, &stored.hash).await;
    metrics::token_cache(lookup);
    verified.map_err(|e| refusal(e, Refusal::WrongSecret))?;
    stored.validity.check(now_micros()).map_err(|e| refusal(e, Refusal::Expired))?;
    // A token of tenant A gets nothing from tenant B, not even whether B exists.
    if org.is_some() && stored.tenant.as_ref().map(|t| t.name.as_str()) != org {
        return Err(AuthError::Unauthorized(Refusal::WrongTenant));
    }
    Ok(stored)
}

/// The refusal a token error stands for; `otherwise` for the errors that say only "invalid".
fn refusal(e: TokenError, otherwise: Refusal) -> AuthError {
    match e {
        TokenError::Interrupted => AuthError::Interrupted,
        TokenError::Revoked => AuthError::Unauthorized(Refusal::Revoked),
        TokenError::Expired => AuthError::Unauthorized(Refusal::Expired),
        TokenError::CorruptHash => AuthError::Unauthorized(Refusal::UnreadableHash),
        TokenError::Malformed | TokenError::Invalid | TokenError::UnknownScope(_) => AuthError::Unauthorized(otherwise),
    }
}

impl From<AuthError> for ScimError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized(reason) => ScimError::Unauthorized(reason),
            AuthError::TooManyFailures { retry_after } => ScimError::TooManyRequests { retry_after },
            AuthError::Store(e) => ScimError::Domain(e),
            AuthError::Interrupted => ScimError::Unavailable("the server is shutting down"),
        }
    }
}

/// The client's address: the peer, or with `trusted_proxy_hops` proxies in front (each appending
/// what it saw to `X-Forwarded-For`), the entry the outermost trusted proxy added. Entries
/// further left are client-controlled and never trusted.
pub fn client_address(req: &HttpRequest, trusted_proxy_hops: usize) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    if trusted_proxy_hops == 0 {
        return peer;
    }
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    forwarded
        .len()
        .checked_sub(trusted_proxy_hops)
        .and_then(|i| forwarded.get(i))
        .and_then(|ip| ip.parse().ok())
        .or(peer)
}

/// An authenticated request to one tenant's SCIM endpoint, within the tenant's rate limit.
#[derive(Debug, Clone)]
pub struct TenantContext {
    pub tenant: Tenant,
    pub token_id: TokenId,
    scopes: Scopes,
    /// This tenant's SCIM base URL, for `meta.location` and `$ref`.
    pub base_url: String,
    /// The IdP the tenant provisions from, for the answers that differ per IdP.
    pub idp_profile: IdpProfile,
}

impl TenantContext {
    pub fn require(&self, scope: Scope) -> Result<(), ScimError> {
        if self.scopes.allows(scope) {
            Ok(())
        } else {
            Err(ScimError::Forbidden(scope.as_str()))
        }
    }
}

impl FromRequest for TenantContext {
    type Error = ScimError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { tenant_context(&req).await })
    }
}

#[cfg(not(feature = "bench-no-auth"))]
async fn tenant_context(req: &HttpRequest) -> Result<TenantContext, ScimError> {
    let state = req.app_data::<web::Data<AppState>>().ok_or(ScimError::Unavailable("the server is not ready"))?;
    // Org names are lowercase: `/scim/v2/ACME` is tenant `acme`, as IdP admins type it.
    let org = req.match_info().get("org").unwrap_or_default().to_ascii_lowercase();
    if let Some(presented) = access::bearer_access_token(req) {
        let access = access::authenticate_access_token(req, state, &org, presented).await?;
        req.extensions_mut().insert(RequestCredential(ActivityCredential::OAuthClient(access.client_id.clone())));
        return within_limit(req, state, access.tenant, access.id, access.scopes).await;
    }
    let stored = authenticate(req, state, TokenKind::Tenant, Some(&org)).await?;
    let tenant = stored.tenant.ok_or(AuthError::Unauthorized(Refusal::NoTenant))?;
    req.extensions_mut().insert(RequestCredential(ActivityCredential::Token(stored.id.clone())));
    if !tenant.settings.auth_methods.accepts_bearer() {
        metrics::auth_failure(TokenKind::Tenant, Refusal::BearerNotAccepted);
        return Err(AuthError::Unauthorized(Refusal::BearerNotAccepted).into());
    }
    within_limit(req, state, tenant, stored.id, stored.scopes).await
}

/// For `scripts/bench-auth` only: the same request with authentication switched off, to measure
/// what authentication costs. The tenant is resolved by name; no token is read. Never built into
/// a release: the feature exists for that one benchmark.
#[cfg(feature = "bench-no-auth")]
async fn tenant_context(req: &HttpRequest) -> Result<TenantContext, ScimError> {
    let state = req.app_data::<web::Data<AppState>>().ok_or(ScimError::Unavailable("the server is not ready"))?;
    let org = req.match_info().get("org").unwrap_or_default();
    let name = domain::TenantName::parse(org).map_err(|_| AuthError::Unauthorized(Refusal::WrongTenant))?;
    let tenant = state.store.tenant(&name).await?;
    let id = TokenId::parse("0000000000000000").map_err(|_| AuthError::Unauthorized(Refusal::Missing))?;
    within_limit(req, state, tenant, id, Scopes::all()).await
}

/// Charge the tenant's rate limit and build the request's context.
async fn within_limit(
    req: &HttpRequest,
    state: &AppState,
    tenant: Tenant,
    token_id: TokenId,
    scopes: Scopes,
) -> Result<TenantContext, ScimError> {
    // Kept on the request for the request metrics, which are labelled by authenticated tenant.
    req.extensions_mut().insert(RequestTenant(tenant.name.clone()));
    let limit = tenant.rate_limit.or_else(|| state.settings.default_quota());
    if let Some(limit) = limit {
        let quota = Quota { per_second: limit.per_second, burst: limit.burst };
        if let Decision::Limited { retry_after } = state.limits.check(tenant.id.as_str(), quota).await {
            metrics::rate_limited(Some(&tenant.name), RateLimitReason::TenantLimit);
            return Err(ScimError::TooManyRequests { retry_after });
        }
    }
    let base_url = format!("{}/scim/v2/{}", public_origin(req, &state.settings), tenant.name);
    let idp_profile = tenant.settings.idp_profile;
    // Kept on the request too, for the middleware that labels responses (`scim::media_type`).
    req.extensions_mut().insert(idp_profile);
    Ok(TenantContext { tenant, token_id, scopes, base_url, idp_profile })
}

/// The scheme and host clients use to reach the gateway: the configured public URL, or what the
/// request says (honouring `Forwarded` / `X-Forwarded-*`).
pub fn public_origin(req: &HttpRequest, settings: &Settings) -> String {
    match &settings.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    }
}
