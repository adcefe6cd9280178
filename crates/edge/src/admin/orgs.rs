//! Organizations, group mappings, memberships and readiness of one tenant.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use domain::{
    format_rfc3339, DomainError, GroupMapping, GroupMatcher, Membership, Organization, OrganizationName, Role,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{json_body, tenant_name, AdminError, Operator};
use crate::state::AppState;

fn organization_name(name: &str) -> Result<OrganizationName, AdminError> {
    OrganizationName::parse(name).map_err(|_| AdminError::NotFound(format!("organization `{name}` not found")))
}

#[derive(Debug, Serialize)]
struct OrganizationView {
    id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
    autoprovisioned: bool,
    created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    archived: Option<String>,
}

fn organization_view(o: &Organization) -> OrganizationView {
    OrganizationView {
        id: o.id.clone(),
        name: o.name.to_string(),
        display_name: o.display_name.clone(),
        autoprovisioned: o.autoprovisioned,
        created: format_rfc3339(o.created_at),
        archived: o.archived_at.map(format_rfc3339),
    }
}

#[derive(Debug, Serialize)]
struct MembershipView {
    organization: String,
    user: serde_json::Value,
    role: Role,
    state: &'static str,
    since: String,
    updated: String,
}

fn membership_view(m: &Membership) -> MembershipView {
    MembershipView {
        organization: m.organization.to_string(),
        user: json!({"id": m.user_id, "userName": m.user_name}),
        role: m.role,
        state: m.state.as_str(),
        since: format_rfc3339(m.created_at),
        updated: format_rfc3339(m.updated_at),
    }
}

#[derive(Debug, Serialize)]
struct MappingView {
    id: String,
    /// The group's display name (matched case-insensitively), or
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<String>,
    /// the group's SCIM id.
    #[serde(skip_serializing_if = "Option::is_none")]
    group_id: Option<String>,
    organization: String,
    role: Role,
    created: String,
}

fn mapping_view(m: &GroupMapping) -> MappingView {
    let (group, group_id) = match &m.matcher {
        GroupMatcher::DisplayName(name) => (Some(name.clone()), None),
        GroupMatcher::Id(id) => (None, Some(id.clone())),
    };
    MappingView {
        id: m.id.clone(),
        group,
        group_id,
        organization: m.organization.to_string(),
        role: m.role,
        created: format_rfc3339(m.created_at),
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    name: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateMapping {
    /// Match groups by display name...
    group: Option<String>,
    /// ...or by SCIM id.
    group_id: Option<String>,
    organization: String,
    #[serde(default)]
    role: Role,
}

pub async fn list_organizations(
    _: Operator,
    state: web::Data<AppState>,
    org: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let organizations = state.store.list_organizations(&tenant_name(&org)?).await?;
    let views: Vec<_> = organizations.iter().map(organization_view).collect();
    Ok(HttpResponse::Ok().json(json!({ "organizations": views })))
}

pub async fn create_organization(
    _: Operator,
    state: web::Data<AppState>,
    org: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let tenant = tenant_name(&org)?;
    let body: CreateOrganization = json_body(body).await?;
    let name = OrganizationName::parse(&body.name).map_err(|e| AdminError::BadRequest(e.to_string()))?;
    let organization = state.store.create_organization(&tenant, &name).await?;
    state.deliveries.notify_one();
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/admin/v1/tenants/{tenant}/organizations/{name}")))
        .json(organization_view(&organization)))
}

pub async fn get_organization(
    _: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (tenant, name) = (tenant_name(&path.0)?, organization_name(&path.1)?);
    let organization = state.store.organization(&tenant, &name).await.map_err(|e| match e {
        DomainError::NotFound(_) => AdminError::NotFound(format!("organization `{name}` not found")),
        e => e.into(),
    })?;
    Ok(HttpResponse::Ok().json(organization_view(&organization)))
}

pub async fn delete_organization(
    _: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    state.store.delete_organization(&tenant_name(&path.0)?, &organization_name(&path.1)?).await?;
    state.deliveries.notify_one();
    Ok(HttpResponse::NoContent().finish())
}

pub async fn organization_members(
    _: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let members = state.store.organization_members(&tenant_name(&path.0)?, &organization_name(&path.1)?).await?;
    let views: Vec<_> = members.iter().map(membership_view).collect();
    Ok(HttpResponse::Ok().json(json!({ "members": views })))
}

pub async fn list_mappings(
    _: Operator,
    state: web::Data<AppState>,
    org: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let mappings = state.store.list_mappings(&tenant_name(&org)?).await?;
    let views: Vec<_> = mappings.iter().map(mapping_view).collect();
    Ok(HttpResponse::Ok().json(json!({ "mappings": views })))
}

pub async fn create_mapping(
    _: Operator,
    state: web::Data<AppState>,
    org: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let tenant = tenant_name(&org)?;
    let body: CreateMapping = json_body(body).await?;
    let matcher = match (body.group, body.group_id) {
        (Some(name), None) if !name.trim().is_empty() => GroupMatcher::DisplayName(name),
        (None, Some(id)) if !id.trim().is_empty() => GroupMatcher::Id(id),
        _ => return Err(AdminError::BadRequest("give exactly one of `group` (a display name) and `group_id`".into())),
    };
    let organization =
        OrganizationName::parse(&body.organization).map_err(|e| AdminError::BadRequest(e.to_string()))?;
    let mapping = state.store.add_mapping(&tenant, matcher, &organization, body.role).await?;
    state.deliveries.notify_one();
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/admin/v1/tenants/{tenant}/mappings/{}", mapping.id)))
        .json(mapping_view(&mapping)))
}

pub async fn delete_mapping(
    _: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    state.store.remove_mapping(&tenant_name(&path.0)?, &path.1).await?;
    state.deliveries.notify_one();
    Ok(HttpResponse::NoContent().finish())
}

pub async fn user_memberships(
    _: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let memberships = state.store.user_memberships(&tenant_name(&path.0)?, &path.1).await?;
    let views: Vec<_> = memberships.iter().map(membership_view).collect();
    Ok(HttpResponse::Ok().json(json!({ "memberships": views })))
}

pub async fn readiness(
    _: Operator,
    state: web::Data<AppState>,
    org: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let default_rate = state.settings.default_rate_per_second();
    let report = domain::readiness_report(state.store.as_ref(), default_rate, &tenant_name(&org)?).await?;
    Ok(HttpResponse::Ok().json(report))
}
