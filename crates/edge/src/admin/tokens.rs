use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use domain::{format_rfc3339, now_micros, TokenInfo, TokenOwner};
use serde::{Deserialize, Serialize};
use token::{IssuedToken, Scope};

use super::{json_body, tenant_name, token_id, AdminError, Operator};
use crate::auth::public_origin;
use crate::issuing::{self, parse_duration, TokenRequest};
use crate::state::AppState;

#[derive(Debug, Serialize)]
struct TokenView {
    id: String,
    name: Option<String>,
    scopes: Vec<&'static str>,
    created: String,
    expires: Option<String>,
    revoked: Option<String>,
    last_used: Option<String>,
    /// `active`, `grace` (revoked at a future time by a regeneration), `expired` or `revoked`.
    state: &'static str,
}

fn view(info: &TokenInfo, now: i64) -> TokenView {
    TokenView {
        id: info.id.to_string(),
        name: info.name.clone(),
        scopes: Scope::ALL.into_iter().filter(|s| info.scopes.allows(*s)).map(Scope::as_str).collect(),
        created: format_rfc3339(info.created_at),
        expires: info.validity.expires_at.map(format_rfc3339),
        revoked: info.validity.revoked_at.map(format_rfc3339),
        last_used: info.last_used_at.map(format_rfc3339),
        state: issuing::state(info, now),
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    name: Option<String>,
    /// Default: every scope.
    scopes: Option<Vec<String>>,
    /// A duration like `90d`.
    expires_in: Option<String>,
    /// An RFC 3339 time.
    expires_at: Option<String>,
    /// Regeneration only: how long earlier tokens keep working (default: not at all).
    grace_period: Option<String>,
}

impl CreateToken {
    fn request(&self) -> Result<TokenRequest, AdminError> {
        let scopes = self.scopes.as_ref().map(|s| s.join(" "));
        Ok(TokenRequest::parse(
            scopes.as_deref(),
            self.name.as_deref(),
            self.expires_in.as_deref(),
            self.expires_at.as_deref(),
        )?)
    }
}

/// The one response that carries a token's plaintext. Never cached.
fn issued(req: &HttpRequest, state: &AppState, org: &str, token: &IssuedToken) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::LOCATION, format!("/admin/v1/tenants/{org}/tokens/{}", token.id)))
        .json(serde_json::json!({
            "id": token.id.to_string(),
            "token": token.plaintext,
            "scim_url": format!("{}/scim/v2/{org}", public_origin(req, &state.settings)),
        }))
}

pub async fn list(_: Operator, state: web::Data<AppState>, org: web::Path<String>) -> Result<HttpResponse, AdminError> {
    let tenant = tenant_name(&org)?;
    let now = now_micros();
    let tokens: Vec<TokenView> =
        state.store.list_tokens(TokenOwner::Tenant(&tenant)).await?.iter().map(|t| view(t, now)).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "tokens": tokens })))
}

pub async fn create(
    _: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    org: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let tenant = tenant_name(&org)?;
    let body: CreateToken = json_body(body).await?;
    if body.grace_period.is_some() {
        return Err(AdminError::BadRequest("grace_period applies to tokens/regenerate only".into()));
    }
    // Fail before hashing when the tenant does not exist.
    state.store.tenant(&tenant).await?;
    let token = issuing::issue(state.store.as_ref(), TokenOwner::Tenant(&tenant), &body.request()?).await?;
    tracing::info!(tenant = %tenant, token_id = %token.id, "token issued");
    Ok(issued(&req, &state, tenant.as_str(), &token))
}

pub async fn regenerate(
    _: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    org: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let tenant = tenant_name(&org)?;
    let body: CreateToken = json_body(body).await?;
    let grace =
        body.grace_period.as_deref().map(|g| parse_duration(g, "grace period")).transpose()?.unwrap_or_default();
    let token = issuing::regenerate(state.store.as_ref(), &tenant, &body.request()?, grace).await?;
    tracing::info!(tenant = %tenant, token_id = %token.id, grace_seconds = grace.as_secs(), "tokens regenerated");
    Ok(issued(&req, &state, tenant.as_str(), &token))
}

pub async fn revoke(
    _: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (org, id) = path.into_inner();
    let (tenant, id) = (tenant_name(&org)?, token_id(&id)?);
    state.store.revoke_token(TokenOwner::Tenant(&tenant), &id).await?;
    tracing::info!(tenant = %tenant, token_id = %id, "token revoked");
    Ok(HttpResponse::NoContent().finish())
}
