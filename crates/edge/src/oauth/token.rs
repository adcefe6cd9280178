//! `POST /oauth2/{org}/token`: the client credentials grant (RFC 6749 §4.4) with client
//! authentication by `client_secret_basic`, `client_secret_post` or a JWT assertion (RFC 7523
//! §2.2), and the JWT bearer grant (RFC 7523 §2.1) for federated clients.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use domain::{now_micros, NewAccessToken, StoredOAuthClient, TenantName};
use token::oauth::ClientSecret;
use token::{Scope, Scopes, TokenError, TokenId, TokenKind, Validity};

use super::assertion::{self, AssertionError, JWT_BEARER_CLIENT_ASSERTION, JWT_BEARER_GRANT};
use super::OAuthError;
use crate::auth::client_address;
use crate::metrics;
use crate::refusal::Refusal;
use crate::state::AppState;

/// Largest token request body: a few parameters and an assertion of a few KiB.
const MAX_BODY: usize = 16 * 1024;

/// A client that proved who it is, and the secret it used (`None`: an assertion).
struct Authenticated {
    client: StoredOAuthClient,
    secret: Option<(TokenId, Validity)>,
}

pub async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    org: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let client = client_address(&req, state.settings.trusted_proxy_hops);
    // Failures are counted per tenant, as for bearer tokens: one tenant's attacker never locks
    // another tenant's IdP out.
    let target = org.to_ascii_lowercase();
    if let Some(retry_after) = client.and_then(|ip| state.failures.blocked_for(ip, &target)) {
        metrics::rate_limited(None, metrics::RateLimitReason::AuthFailures);
        return Err(OAuthError::TooManyFailures { retry_after });
    }
    let result = grant(&req, &state, &org, payload).await;
    if let Some(reason) = result.as_ref().err().and_then(OAuthError::refusal) {
        tracing::info!(reason, org = %org, "token request refused");
        metrics::auth_failure(TokenKind::Tenant, Refusal::OAuthClientRefused);
        if let Some(ip) = client {
            state.failures.record_failure(ip, &target);
        }
    }
    result
}

async fn grant(
    req: &HttpRequest,
    state: &AppState,
    org: &str,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let params = form(req, payload).await?;
    let grant_type = params.get("grant_type").ok_or_else(|| invalid_request("grant_type is missing"))?;
    let tenant =
        TenantName::parse(&org.to_ascii_lowercase()).map_err(|_| OAuthError::InvalidClient("no such tenant".into()))?;
    let authenticated = match grant_type.as_str() {
        "client_credentials" => authenticate_client(req, state, &tenant, &params).await?,
        JWT_BEARER_GRANT => {
            if basic_credentials(req)?.is_some() || params.contains_key("client_secret") {
                return Err(invalid_request("the JWT bearer grant takes no client secret"));
            }
            let assertion = params.get("assertion").ok_or_else(|| invalid_request("assertion is missing"))?;
            by_assertion(state, &tenant, params.get("client_id"), assertion).await.map_err(|e| match e {
                OAuthError::InvalidClient(reason) => OAuthError::InvalidGrant(reason),
                other => other,
            })?
        }
        _ => return Err(OAuthError::UnsupportedGrantType),
    };
    let client = &authenticated.client;
    let now = now_micros();
    if client.tenant.name != tenant {
        return Err(OAuthError::InvalidClient(format!("client {} belongs to another tenant", client.id)));
    }
    client.validity.check(now).map_err(|e| OAuthError::InvalidClient(format!("client {}: {e}", client.id)))?;
    if !client.tenant.settings.auth_methods.accepts_oauth() {
        return Err(OAuthError::UnauthorizedClient("this tenant does not accept OAuth clients".into()));
    }
    let scopes = requested_scopes(params.get("scope"), client.scopes)?;

    let lifetime = i64::from(client.tenant.settings.access_token_lifetime.seconds()) * 1_000_000;
    // Never beyond the client's or the secret's own end.
    let mut bounds = [Some(now + lifetime), client.validity.expires_at, client.validity.revoked_at]
        .into_iter()
        .chain(authenticated.secret.iter().flat_map(|(_, v)| [v.expires_at, v.revoked_at]))
        .flatten();
    let first = bounds.next().unwrap_or(now + lifetime);
    let expires_at = bounds.fold(first, i64::min);
    let issued = token::oauth::issue_access_token();
    state
        .store
        .add_access_token(NewAccessToken {
            id: issued.id.clone(),
            client_id: client.id.clone(),
            secret_id: authenticated.secret.map(|(id, _)| id),
            hash: issued.hash,
            scopes,
            expires_at,
        })
        .await?;
    tracing::info!(tenant = %tenant, client_id = %client.id, access_token_id = %issued.id, "access token issued");
    let expires_in = (expires_at - now).max(0) / 1_000_000;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(serde_json::json!({
            "access_token": issued.plaintext,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "scope": scopes.to_string(),
        })))
}

fn invalid_request(why: &str) -> OAuthError {
    OAuthError::InvalidRequest(why.to_owned())
}

/// The form parameters; each at most once (RFC 6749 §3.2).
async fn form(req: &HttpRequest, payload: web::Payload) -> Result<BTreeMap<String, String>, OAuthError> {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(invalid_request("the body must be application/x-www-form-urlencoded"));
    }
    let bytes = payload
        .to_bytes_limited(MAX_BODY)
        .await
        .map_err(|_| OAuthError::InvalidRequest(format!("the request body exceeds {MAX_BODY} bytes")))?
        .map_err(|e| OAuthError::InvalidRequest(format!("could not read the request body: {e}")))?;
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&bytes).map_err(|_| invalid_request("the body is not valid form encoding"))?;
    let mut params = BTreeMap::new();
    for (name, value) in pairs {
        if params.insert(name.clone(), value).is_some() {
            return Err(OAuthError::InvalidRequest(format!("the parameter `{name}` is repeated")));
        }
    }
    Ok(params)
}

/// `client_id` and `client_secret` from `Authorization: Basic` (RFC 6749 §2.3.1: each
/// form-encoded, then joined by `:`). `None` without an `Authorization` header.
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else { return Ok(None) };
    let refused = |why: &str| OAuthError::InvalidClient(why.to_owned());
    let value = value.to_str().map_err(|_| refused("unreadable Authorization header"))?;
    let (scheme, credentials) = value.split_once(' ').ok_or_else(|| refused("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(refused("the Authorization scheme is not Basic"));
    }
    let decoded = STANDARD.decode(credentials.trim()).map_err(|_| refused("malformed Basic credentials"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| refused("malformed Basic credentials"))?;
    let (id, secret) = decoded.split_once(':').ok_or_else(|| refused("malformed Basic credentials"))?;
    Ok(Some((form_decode(id)?, form_decode(secret)?)))
}

fn form_decode(s: &str) -> Result<String, OAuthError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={s}"))
        .map_err(|_| OAuthError::InvalidClient("malformed Basic credentials".into()))?;
    Ok(pairs.into_iter().next().map(|(_, v)| v).unwrap_or_default())
}

/// Exactly one client authentication method (RFC 6749 §2.3).
async fn authenticate_client(
    req: &HttpRequest,
    state: &AppState,
    tenant: &TenantName,
    params: &BTreeMap<String, String>,
) -> Result<Authenticated, OAuthError> {
    let basic = basic_credentials(req)?;
    let post = params.get("client_secret");
    let assertion = params.get("client_assertion");
    let methods = usize::from(basic.is_some()) + usize::from(post.is_some()) + usize::from(assertion.is_some());
    if methods > 1 {
        return Err(invalid_request("use exactly one client authentication method"));
    }
    let client_id = params.get("client_id");
    if let (Some((id, secret)), _) | (None, Some((id, secret))) =
        (basic.as_ref().map(|(i, s)| (i, s)), client_id.zip(post))
    {
        if basic.is_some() && client_id.is_some_and(|given| given != id) {
            return Err(invalid_request("client_id differs from the one in the Authorization header"));
        }
        return by_secret(state, id, secret).await;
    }
    if post.is_some() {
        return Err(invalid_request("client_secret needs client_id"));
    }
    if let Some(assertion) = assertion {
        if params.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER_CLIENT_ASSERTION) {
            return Err(OAuthError::InvalidRequest(format!(
                "client_assertion_type must be {JWT_BEARER_CLIENT_ASSERTION}"
            )));
        }
        return by_assertion(state, tenant, client_id, assertion).await;
    }
    Err(OAuthError::InvalidClient("no client authentication".into()))
}

async fn by_secret(state: &AppState, client_id: &str, secret: &str) -> Result<Authenticated, OAuthError> {
    let refused = |why: &str| OAuthError::InvalidClient(why.to_owned());
    let client_id = TokenId::parse(client_id).map_err(|_| refused("malformed client_id"))?;
    let secret = ClientSecret::parse(secret).map_err(|_| refused("malformed client secret"))?;
    let Some(stored) = state.store.client_secret_for_auth(&secret.id).await? else {
        return Err(match state.verifier.refuse_unknown_client_secret(&secret).await {
            TokenError::Interrupted => OAuthError::Interrupted,
            _ => refused("unknown client secret"),
        });
    };
    let (verified, lookup) = state.verifier.check_client_secret(&secret, &stored.hash).await;
    metrics::token_cache(lookup);
    verified.map_err(|e| match e {
        TokenError::Interrupted => OAuthError::Interrupted,
        _ => refused("client secret does not match"),
    })?;
    if stored.client_id != client_id {
        return Err(refused("the secret belongs to another client"));
    }
    stored.validity.check(now_micros()).map_err(|e| OAuthError::InvalidClient(format!("client secret: {e}")))?;
    let client = state.store.oauth_client_for_auth(&client_id).await?.ok_or_else(|| refused("unknown client"))?;
    Ok(Authenticated { client, secret: Some((stored.id, stored.validity)) })
}

async fn by_assertion(
    state: &AppState,
    tenant: &TenantName,
    client_id: Option<&String>,
    assertion: &str,
) -> Result<Authenticated, OAuthError> {
    let refused = |e: AssertionError| OAuthError::InvalidClient(e.to_string());
    let candidates = match client_id {
        Some(id) => {
            let id = TokenId::parse(id).map_err(|_| OAuthError::InvalidClient("malformed client_id".into()))?;
            state.store.oauth_client_for_auth(&id).await?.into_iter().collect()
        }
        None => {
            let claimed = assertion::peek(assertion).map_err(refused)?;
            state.store.federated_clients_for_auth(tenant, &claimed.iss, &claimed.sub).await?
        }
    };
    let skew = Duration::from_secs(state.settings.oauth_clock_skew_seconds);
    let mut last = OAuthError::InvalidClient("no federated client trusts this issuer and subject".into());
    for client in candidates {
        let Some(federation) = &client.federation else {
            last = OAuthError::InvalidClient(format!("client {} has a secret, not a federation", client.id));
            continue;
        };
        match assertion::verify(assertion, federation, &state.jwks, skew).await {
            Ok(()) => return Ok(Authenticated { client, secret: None }),
            Err(e) => last = refused(e),
        }
    }
    Err(last)
}

/// The scopes asked for (RFC 6749 §3.3), which must be the client's; none asked: all of them.
fn requested_scopes(requested: Option<&String>, allowed: Scopes) -> Result<Scopes, OAuthError> {
    let Some(requested) = requested.filter(|s| !s.trim().is_empty()) else { return Ok(allowed) };
    let mut scopes = Vec::new();
    for name in requested.split(' ').filter(|s| !s.is_empty()) {
        let scope: Scope = name.parse().map_err(|_| OAuthError::InvalidScope(format!("unknown scope `{name}`")))?;
        if !allowed.allows(scope) {
            return Err(OAuthError::InvalidScope(format!("the client may not have the scope `{name}`")));
        }
        scopes.push(scope);
    }
    Ok(scopes.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_scopes_must_be_the_clients() {
        let allowed = Scopes::parse("users:read users:write").unwrap();
        assert_eq!(requested_scopes(None, allowed).unwrap(), allowed);
        let read = requested_scopes(Some(&"users:read".to_owned()), allowed).unwrap();
        assert_eq!(read.to_string(), "users:read");
        assert!(matches!(requested_scopes(Some(&"groups:read".into()), allowed), Err(OAuthError::InvalidScope(_))));
        assert!(matches!(requested_scopes(Some(&"admin".into()), allowed), Err(OAuthError::InvalidScope(_))));
    }
}
