//! `GET /oauth2/{org}/.well-known/oauth-authorization-server`: RFC 8414 metadata, so an IdP
//! (or its admin) can find the token endpoint and what it accepts.

use actix_web::{web, HttpRequest, HttpResponse};
use domain::{DomainError, TenantName};
use token::Scope;

use super::assertion::{JWT_BEARER_GRANT, SIGNING_ALGORITHMS};
use super::OAuthError;
use crate::auth::public_origin;
use crate::state::AppState;

pub async fn metadata(
    req: HttpRequest,
    state: web::Data<AppState>,
    org: web::Path<String>,
) -> Result<HttpResponse, OAuthError> {
    let name = TenantName::parse(&org).map_err(|_| OAuthError::NotFound)?;
    state.store.tenant(&name).await.map_err(|e| match e {
        DomainError::NotFound(_) => OAuthError::NotFound,
        other => OAuthError::Store(other),
    })?;
    let issuer = format!("{}/oauth2/{name}", public_origin(&req, &state.settings));
    Ok(HttpResponse::Ok().insert_header(("cache-control", "max-age=300")).json(serde_json::json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/token"),
        "grant_types_supported": ["client_credentials", JWT_BEARER_GRANT],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": SIGNING_ALGORITHMS,
        "scopes_supported": Scope::ALL.map(Scope::as_str),
        // No authorization endpoint: clients obtain tokens for themselves only.
        "response_types_supported": [],
        "service_documentation": "https://github.com/scimgate/scimgate/blob/main/docs/tokens-and-limits.md",
    })))
}
