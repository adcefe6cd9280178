//! `/admin/v1/tenants/{org}/oauth-clients`: a tenant's OAuth clients.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use domain::{now_micros, ClientCredential, Federation, OAuthClientInfo};
use serde::{Deserialize, Serialize};
use token::{Scope, TokenId};

use super::{json_body, tenant_name, AdminError, Operator};
use crate::auth::public_origin;
use crate::issuing::{parse_duration, TokenRequest};
use crate::oauth::clients::{self, time};
use crate::state::AppState;

#[derive(Debug, Serialize)]
struct SecretView {
    id: String,
    created: Option<String>,
    expires: Option<String>,
    revoked: Option<String>,
    /// `active`, `overlap` (stops at `revoked`, after a rotation), `expired` or `revoked`.
    state: &'static str,
}

#[derive(Debug, Serialize)]
struct ClientView {
    client_id: String,
    name: Option<String>,
    scopes: Vec<&'static str>,
    created: Option<String>,
    expires: Option<String>,
    revoked: Option<String>,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    secrets: Option<Vec<SecretView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    federation: Option<Federation>,
}

fn view(info: &OAuthClientInfo, now: i64) -> ClientView {
    let (secrets, federation) = match &info.credential {
        ClientCredential::Secret(secrets) => (
            Some(
                secrets
                    .iter()
                    .map(|s| SecretView {
                        id: s.id.to_string(),
                        created: time(Some(s.created_at)),
                        expires: time(s.validity.expires_at),
                        revoked: time(s.validity.revoked_at),
                        state: clients::state(&s.validity, now),
                    })
                    .collect(),
            ),
            None,
        ),
        ClientCredential::Federated(f) => (None, Some(f.clone())),
    };
    ClientView {
        client_id: info.id.to_string(),
        name: info.name.clone(),
        scopes: Scope::ALL.into_iter().filter(|s| info.scopes.allows(*s)).map(Scope::as_str).collect(),
        created: time(Some(info.created_at)),
        expires: time(info.validity.expires_at),
        revoked: time(info.validity.revoked_at),
        state: clients::state(&info.validity, now),
        secrets,
        federation,
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    name: Option<String>,
    /// Default: every scope.
    scopes: Option<Vec<String>>,
    /// A duration like `730d`.
    expires_in: Option<String>,
    /// An RFC 3339 time.
    expires_at: Option<String>,
    /// Trust this issuer's assertions instead of a secret.
    federation: Option<Federation>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateClient {
    /// How long the earlier secret keeps working, e.g. `7d` (default: it stops at once).
    overlap: Option<String>,
    expires_in: Option<String>,
    expires_at: Option<String>,
}

fn client_id(id: &str) -> Result<TokenId, AdminError> {
    TokenId::parse(id).map_err(|_| AdminError::NotFound(format!("OAuth client `{id}` not found")))
}

/// The one response that carries a client secret's plaintext. Never cached.
fn issued(req: &HttpRequest, state: &AppState, org: &str, id: &TokenId, secret: Option<&str>) -> HttpResponse {
    let issuer = format!("{}/oauth2/{org}", public_origin(req, &state.settings));
    let mut body = serde_json::json!({
        "client_id": id.to_string(),
        "token_url": format!("{issuer}/token"),
        "metadata_url": format!("{issuer}/.well-known/oauth-authorization-server"),
        "scim_url": format!("{}/scim/v2/{org}", public_origin(req, &state.settings)),
    });
    if let Some(secret) = secret {
        body["client_secret"] = secret.into();
    }
    HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::LOCATION, format!("/admin/v1/tenants/{org}/oauth-clients/{id}")))
        .json(body)
}

pub async fn list(_: Operator, state: web::Data<AppState>, org: web::Path<String>) -> Result<HttpResponse, AdminError> {
    let tenant = tenant_name(&org)?;
    let now = now_micros();
    let list: Vec<ClientView> = state.store.list_oauth_clients(&tenant).await?.iter().map(|c| view(c, now)).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "oauth_clients": list })))
}

pub async fn create(
    _: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    org: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let tenant = tenant_name(&org)?;
    let body: CreateClient = json_body(body).await?;
    let scopes = body.scopes.as_ref().map(|s| s.join(" "));
    let request = TokenRequest::parse(
        scopes.as_deref(),
        body.name.as_deref(),
        body.expires_in.as_deref(),
        body.expires_at.as_deref(),
    )?;
    let federation =
        body.federation.map(|f| clients::federation(&f.issuer, &f.subject, &f.audience, &f.jwks_url)).transpose()?;
    let created = clients::create(state.store.as_ref(), &tenant, &request, federation).await?;
    tracing::info!(tenant = %tenant, client_id = %created.id, "OAuth client created");
    let secret = created.secret.as_ref().map(|s| s.plaintext.as_str());
    Ok(issued(&req, &state, tenant.as_str(), &created.id, secret))
}

pub async fn rotate(
    _: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let (org, id) = path.into_inner();
    let (tenant, id) = (tenant_name(&org)?, client_id(&id)?);
    let body: RotateClient = json_body(body).await?;
    let expiry = TokenRequest::parse(None, None, body.expires_in.as_deref(), body.expires_at.as_deref())?;
    let overlap = body.overlap.as_deref().map(|o| parse_duration(o, "overlap")).transpose()?.unwrap_or_default();
    let secret = clients::rotate(state.store.as_ref(), &tenant, &id, expiry.expires_at, overlap).await?;
    tracing::info!(tenant = %tenant, client_id = %id, overlap_seconds = overlap.as_secs(), "OAuth client secret rotated");
    Ok(issued(&req, &state, tenant.as_str(), &id, Some(&secret.plaintext)))
}

pub async fn revoke(
    _: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (org, id) = path.into_inner();
    let (tenant, id) = (tenant_name(&org)?, client_id(&id)?);
    state.store.revoke_oauth_client(&tenant, &id).await?;
    tracing::info!(tenant = %tenant, client_id = %id, "OAuth client revoked");
    Ok(HttpResponse::NoContent().finish())
}
