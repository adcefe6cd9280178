//! `/admin/v1/tenants/{org}/portal-links`: setup links that let a customer's IT admin into the
//! setup portal of their tenant.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use domain::{format_rfc3339, now_micros, PortalLink};
use serde::{Deserialize, Serialize};

use super::{json_body, tenant_name, AdminError, Operator};
use crate::auth::public_origin;
use crate::setup_links;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub(crate) struct LinkView {
    id: String,
    created: String,
    expires: String,
    used: Option<String>,
    revoked: Option<String>,
    /// `unused`, `used`, `expired` or `revoked`.
    state: &'static str,
}

pub(crate) fn view(link: &PortalLink, now: i64) -> LinkView {
    LinkView {
        id: link.id.clone(),
        created: format_rfc3339(link.created_at),
        expires: format_rfc3339(link.expires_at),
        used: link.used_at.map(format_rfc3339),
        revoked: link.revoked_at.map(format_rfc3339),
        state: link.state(now).as_str(),
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateLink {
    /// A duration like `7d` (the default), at most 30 days.
    expires_in: Option<String>,
}

pub async fn create(
    _: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    org: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let tenant = tenant_name(&org)?;
    let body: CreateLink = json_body(body).await?;
    let expiry = setup_links::expiry(body.expires_in.as_deref())?;
    let base = public_origin(&req, &state.settings);
    let issued = setup_links::issue(state.store.as_ref(), &tenant, expiry, &base).await?;
    tracing::info!(tenant = %tenant, link_id = %issued.link.id, "setup link issued");
    let mut body = serde_json::to_value(view(&issued.link, now_micros()))
        .map_err(|_| AdminError::BadRequest("the link could not be described".into()))?;
    body["url"] = issued.url.into();
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::LOCATION, format!("/admin/v1/tenants/{tenant}/portal-links/{}", issued.link.id)))
        .json(body))
}

pub async fn list(_: Operator, state: web::Data<AppState>, org: web::Path<String>) -> Result<HttpResponse, AdminError> {
    let tenant = tenant_name(&org)?;
    let now = now_micros();
    let links: Vec<LinkView> =
        state.store.list_portal_links(&tenant).await?.iter().map(|link| view(link, now)).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "links": links })))
}

pub async fn revoke(
    _: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (org, id) = path.into_inner();
    let tenant = tenant_name(&org)?;
    state.store.revoke_portal_link(&tenant, &id).await?;
    tracing::info!(tenant = %tenant, link_id = %id, "setup link revoked");
    Ok(HttpResponse::NoContent().finish())
}
