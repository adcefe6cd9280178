//! Users and Groups: create, read, list, search, replace, patch, delete.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use domain::{Query, Resource};
use proto::projection::Projection;
use proto::wire::{ListResponse, SearchRequest, SortOrder};
use proto::{GroupPatchAnswer, IdpProfile, ResourceKind};
use token::Scope;

use super::body::{projection_params, read_json, search_from_query};
use super::{precondition, scim_json, Kind, Limit};
use crate::auth::TenantContext;
use crate::error::ScimError;
use crate::share::Work;
use crate::state::AppState;

fn read_scope(kind: ResourceKind) -> Scope {
    match kind {
        ResourceKind::User => Scope::UsersRead,
        ResourceKind::Group => Scope::GroupsRead,
    }
}

fn write_scope(kind: ResourceKind) -> Scope {
    match kind {
        ResourceKind::User => Scope::UsersWrite,
        ResourceKind::Group => Scope::GroupsWrite,
    }
}

/// The derived relation a kind carries: a group's `members`, a user's `groups`.
fn relation(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "groups",
        ResourceKind::Group => "members",
    }
}

/// One resource as a response, projected, with its `ETag` (and `Location` when created).
fn resource_response(
    status: StatusCode,
    ctx: &TenantContext,
    resource: &Resource,
    projection: &Projection,
) -> HttpResponse {
    let mut body = resource.to_scim(&ctx.base_url);
    projection.apply(resource.kind, &mut body);
    let mut response = scim_json(status, &body);
    if let Ok(etag) = HeaderValue::from_str(&resource.etag()) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    if status == StatusCode::CREATED {
        let location = format!("{}{}/{}", ctx.base_url, resource.kind.endpoint(), resource.id);
        if let Ok(location) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, location);
        }
    }
    response
}

fn projection_of(req: &HttpRequest, kind: ResourceKind) -> Result<Projection, ScimError> {
    let (attributes, excluded) = projection_params(req)?;
    Ok(Projection::parse(kind, attributes.as_deref(), excluded.as_deref())?)
}

pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    ctx: TenantContext,
    kind: web::Data<Kind>,
    limit: web::Data<Limit>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ScimError> {
    let kind = kind.0;
    ctx.require(write_scope(kind))?;
    let projection = projection_of(&req, kind)?;
    let (body, _memory) = read_json(&req, payload, limit.0, &state.bodies).await?;
    let body = proto::resource::normalize(kind, body)?;
    let resource =
        state.in_turn(&ctx.tenant, Work::Write, |store, t| async move { store.create(&t, kind, body).await }).await?;
    state.deliveries.notify_one();
    Ok(resource_response(StatusCode::CREATED, &ctx, &resource, &projection))
}

pub async fn get(
    req: HttpRequest,
    ctx: TenantContext,
    kind: web::Data<Kind>,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ScimError> {
    let kind = kind.0;
    ctx.require(read_scope(kind))?;
    let projection = projection_of(&req, kind)?;
    let with_relation = projection.includes(kind, relation(kind));
    let (id, precondition) = (path.into_inner().1, precondition(&req));
    let resource = state
        .in_turn(&ctx.tenant, Work::Read, |store, t| async move {
            store.get(&t, kind, &id, with_relation, &precondition).await
        })
        .await?;
    Ok(resource_response(StatusCode::OK, &ctx, &resource, &projection))
}

pub async fn replace(
    req: HttpRequest,
    payload: web::Payload,
    ctx: TenantContext,
    kind: web::Data<Kind>,
    limit: web::Data<Limit>,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ScimError> {
    let kind = kind.0;
    ctx.require(write_scope(kind))?;
    let projection = projection_of(&req, kind)?;
    let (body, _memory) = read_json(&req, payload, limit.0, &state.bodies).await?;
    let body = proto::resource::normalize(kind, body)?;
    let (id, precondition) = (path.into_inner().1, precondition(&req));
    let resource =
        state
            .in_turn(&ctx.tenant, Work::Write, |store, t| async move {
                store.replace(&t, kind, &id, body, &precondition).await
            })
            .await?;
    state.deliveries.notify_one();
    Ok(resource_response(StatusCode::OK, &ctx, &resource, &projection))
}

pub async fn patch(
    req: HttpRequest,
    payload: web::Payload,
    ctx: TenantContext,
    kind: web::Data<Kind>,
    limit: web::Data<Limit>,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ScimError> {
    let kind = kind.0;
    ctx.require(write_scope(kind))?;
    let projection = projection_of(&req, kind)?;
    let (body, _memory) = read_json(&req, payload, limit.0, &state.bodies).await?;
    let ops = proto::patch::parse_request(&body)?;
    drop(body);
    let answer = patch_answer(ctx.idp_profile, kind, &projection);
    let projection =
        if answer == GroupPatchAnswer::WithoutMembers { projection.excluding(relation(kind)) } else { projection };
    let without_body = answer == GroupPatchAnswer::NoContent;
    let with_relation = !without_body && projection.includes(kind, relation(kind));
    let (id, precondition) = (path.into_inner().1, precondition(&req));
    let resource = state
        .in_turn(&ctx.tenant, Work::Write, |store, t| async move {
            store.patch(&t, kind, &id, &ops, &precondition, with_relation).await
        })
        .await?;
    state.deliveries.notify_one();
    if without_body {
        let mut response = HttpResponse::NoContent().finish();
        if let Ok(etag) = HeaderValue::from_str(&resource.etag()) {
            response.headers_mut().insert(header::ETAG, etag);
        }
        return Ok(response);
    }
    Ok(resource_response(StatusCode::OK, &ctx, &resource, &projection))
}

/// How a successful PATCH is answered (RFC 7644 §3.5.2): a group's by the tenant's IdP profile
/// ([`IdpProfile::group_patch_answer`]) unless the client named `attributes` (which requires the
/// 200 with them) or `excludedAttributes` (a client that shapes the body wants one); a user's
/// always with the user. When the answer leaves `members` out, the group's members are neither
/// read nor rendered, so a one-member change costs the same in any group.
fn patch_answer(profile: IdpProfile, kind: ResourceKind, projection: &Projection) -> GroupPatchAnswer {
    if kind == ResourceKind::Group && projection.attributes.is_empty() && projection.excluded.is_empty() {
        profile.group_patch_answer()
    } else {
        GroupPatchAnswer::AsAsked
    }
}

pub async fn delete(
    req: HttpRequest,
    ctx: TenantContext,
    kind: web::Data<Kind>,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ScimError> {
    let kind = kind.0;
    ctx.require(write_scope(kind))?;
    let (id, precondition) = (path.into_inner().1, precondition(&req));
    state
        .in_turn(&ctx.tenant, Work::Write, |store, t| async move { store.delete(&t, kind, &id, &precondition).await })
        .await?;
    state.deliveries.notify_one();
    Ok(HttpResponse::NoContent().finish())
}

pub async fn list(
    req: HttpRequest,
    ctx: TenantContext,
    kind: web::Data<Kind>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ScimError> {
    ctx.require(read_scope(kind.0))?;
    run_search(&ctx, Some(kind.0), search_from_query(&req)?, &state).await
}

pub async fn search(
    req: HttpRequest,
    payload: web::Payload,
    ctx: TenantContext,
    kind: web::Data<Kind>,
    limit: web::Data<Limit>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ScimError> {
    ctx.require(read_scope(kind.0))?;
    let (body, _memory) = read_json(&req, payload, limit.0, &state.bodies).await?;
    let request = SearchRequest::from_body(&body)?;
    run_search(&ctx, Some(kind.0), request, &state).await
}

pub async fn search_all(
    req: HttpRequest,
    payload: web::Payload,
    ctx: TenantContext,
    limit: web::Data<Limit>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ScimError> {
    ctx.require(Scope::UsersRead)?;
    ctx.require(Scope::GroupsRead)?;
    let (body, _memory) = read_json(&req, payload, limit.0, &state.bodies).await?;
    let request = SearchRequest::from_body(&body)?;
    run_search(&ctx, None, request, &state).await
}

/// A list or search over one kind, or over both when `kind` is `None`.
async fn run_search(
    ctx: &TenantContext,
    kind: Option<ResourceKind>,
    request: SearchRequest,
    state: &AppState,
) -> Result<HttpResponse, ScimError> {
    let settings = &state.settings;
    let filter =
        request.filter.as_deref().map(str::trim).filter(|f| !f.is_empty()).map(proto::filter::parse).transpose()?;
    if let Some(filter) = &filter {
        proto::filter::check_cost(filter)?;
    }
    let sort_by = request
        .sort_by
        .as_deref()
        .map(|s| match proto::path::parse(s.trim()) {
            Ok(proto::PatchPath { attr, filter: None, sub: None }) => Ok(attr),
            _ => Err(proto::Error::invalid_value(format!("sortBy `{s}` is not an attribute path"))),
        })
        .transpose()?;
    let start_index = u64::try_from(request.start_index.unwrap_or(1)).unwrap_or(1).max(1);
    let count = match request.count {
        Some(n) => u64::try_from(n).unwrap_or(0),
        None => settings.default_page_size,
    }
    .min(settings.max_results);
    let projections = |k| Projection::parse(k, request.attributes.as_deref(), request.excluded_attributes.as_deref());
    let user_projection = projections(ResourceKind::User)?;
    let group_projection = projections(ResourceKind::Group)?;
    let projection_for = |k| if k == ResourceKind::User { &user_projection } else { &group_projection };
    let with_members = match kind {
        Some(k) => projection_for(k).includes(k, relation(k)),
        None => true,
    };
    let query = Query {
        filter,
        sort_by,
        descending: request.sort_order == Some(SortOrder::Descending),
        start_index,
        count,
        with_members,
    };
    let page = state
        .in_turn(&ctx.tenant, Work::Read, |store, t| async move {
            match kind {
                Some(kind) => store.search(&t, kind, &query).await,
                None => store.search_all(&t, &query).await,
            }
        })
        .await?;
    let resources = page
        .resources
        .iter()
        .map(|resource| {
            let mut body = resource.to_scim(&ctx.base_url);
            projection_for(resource.kind).apply(resource.kind, &mut body);
            body
        })
        .collect();
    let list = ListResponse::new(page.total, start_index, resources);
    Ok(scim_json(StatusCode::OK, &list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_patches_are_answered_by_profile_unless_attributes_are_asked() {
        let plain = Projection::default();
        let asked = Projection::parse(ResourceKind::Group, Some("displayName"), None).unwrap();
        let excluding = Projection::parse(ResourceKind::Group, None, Some("members")).unwrap();
        for profile in IdpProfile::ALL {
            assert_eq!(patch_answer(profile, ResourceKind::User, &plain), GroupPatchAnswer::AsAsked, "{profile}");
            assert_eq!(patch_answer(profile, ResourceKind::Group, &asked), GroupPatchAnswer::AsAsked, "{profile}");
            assert_eq!(patch_answer(profile, ResourceKind::Group, &excluding), GroupPatchAnswer::AsAsked, "{profile}");
            assert_eq!(patch_answer(profile, ResourceKind::Group, &plain), profile.group_patch_answer(), "{profile}");
        }
        let without = plain.excluding("members");
        assert!(!without.includes(ResourceKind::Group, "members"));
        assert!(without.includes(ResourceKind::Group, "displayName"));
    }
}
