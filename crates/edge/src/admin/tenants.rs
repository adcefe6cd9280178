use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use domain::{
    format_rfc3339, AccessTokenLifetime, AuthMethods, Deprovision, DuplicateEmails, LinkBy, Role, Tenant, TenantName,
    TenantUpdate,
};
use proto::IdpProfile;
use serde::{Deserialize, Deserializer, Serialize};

use super::{json_body, tenant_name, AdminError, Operator};
use crate::auth::public_origin;
use crate::state::AppState;

#[derive(Debug, Serialize)]
struct TenantView {
    name: String,
    /// The Tenant URL to paste into the IdP.
    scim_url: String,
    created: String,
    rate_limit: RateLimitView,
    idp_profile: IdpProfile,
    autoprovision: bool,
    default_role: Role,
    deprovision: Deprovision,
    /// Which credentials the SCIM endpoint accepts: `bearer`, `oauth` or `both`.
    auth_methods: AuthMethods,
    /// Lifetime of the access tokens its OAuth clients obtain, in seconds.
    access_token_lifetime_seconds: AccessTokenLifetime,
    /// The OAuth token endpoint of this tenant.
    token_url: String,
    link_by: LinkBy,
    duplicate_emails: DuplicateEmails,
}

#[derive(Debug, Serialize, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct RateLimit {
    per_second: u32,
    burst: u32,
}

#[derive(Debug, Serialize)]
struct RateLimitView {
    per_second: u32,
    burst: u32,
    /// `tenant` when the tenant has its own limit, `default` when the gateway's applies.
    source: &'static str,
}

fn view(req: &HttpRequest, state: &AppState, tenant: &Tenant) -> TenantView {
    let rate_limit = match (tenant.rate_limit, state.settings.default_quota()) {
        (Some(q), _) => RateLimitView { per_second: q.per_second.get(), burst: q.burst.get(), source: "tenant" },
        (None, Some(q)) => RateLimitView { per_second: q.per_second.get(), burst: q.burst.get(), source: "default" },
        (None, None) => RateLimitView { per_second: 0, burst: 0, source: "default" },
    };
    TenantView {
        name: tenant.name.to_string(),
        scim_url: format!("{}/scim/v2/{}", public_origin(req, &state.settings), tenant.name),
        created: format_rfc3339(tenant.created_at),
        rate_limit,
        idp_profile: tenant.settings.idp_profile,
        autoprovision: tenant.settings.autoprovision,
        default_role: tenant.settings.default_role,
        deprovision: tenant.settings.deprovision,
        auth_methods: tenant.settings.auth_methods,
        access_token_lifetime_seconds: tenant.settings.access_token_lifetime,
        token_url: format!("{}/oauth2/{}/token", public_origin(req, &state.settings), tenant.name),
        link_by: tenant.settings.link_by,
        duplicate_emails: tenant.settings.duplicate_emails,
    }
}

fn quota(limit: RateLimit) -> Result<domain::RateLimit, AdminError> {
    domain::RateLimit::new(limit.per_second, limit.burst)
        .ok_or_else(|| AdminError::BadRequest("rate_limit.per_second and rate_limit.burst must be positive".into()))
}

/// `Some(None)` for an explicit `null`, `None` for an absent field.
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Settings a tenant is created with or changed to; absent fields are left as they are.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TenantSettingsBody {
    /// A limit of the tenant's own, or `null` for the gateway's default.
    #[serde(default, deserialize_with = "present")]
    rate_limit: Option<Option<RateLimit>>,
    idp_profile: Option<IdpProfile>,
    autoprovision: Option<bool>,
    default_role: Option<Role>,
    deprovision: Option<Deprovision>,
    auth_methods: Option<AuthMethods>,
    /// 3600 to 21600.
    access_token_lifetime_seconds: Option<AccessTokenLifetime>,
    /// `email,externalId`, `email`, `externalId` or `none`.
    link_by: Option<LinkBy>,
    duplicate_emails: Option<DuplicateEmails>,
}

impl TenantSettingsBody {
    fn update(&self) -> Result<TenantUpdate, AdminError> {
        Ok(TenantUpdate {
            rate_limit: self.rate_limit.map(|limit| limit.map(quota).transpose()).transpose()?,
            idp_profile: self.idp_profile,
            autoprovision: self.autoprovision,
            default_role: self.default_role,
            deprovision: self.deprovision,
            auth_methods: self.auth_methods,
            access_token_lifetime: self.access_token_lifetime_seconds,
            link_by: self.link_by,
            duplicate_emails: self.duplicate_emails,
        })
    }
}

pub async fn list(_: Operator, req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    let tenants = state.store.list_tenants().await?;
    let views: Vec<TenantView> = tenants.iter().map(|t| view(&req, &state, t)).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "tenants": views })))
}

pub async fn create(
    _: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, AdminError> {
    // `{"name": ..., <settings>...}`
    let mut body: serde_json::Map<String, serde_json::Value> = json_body(body).await?;
    let name = match body.remove("name") {
        Some(serde_json::Value::String(name)) => name,
        _ => return Err(AdminError::BadRequest("`name` (a string) is required".into())),
    };
    let name = TenantName::parse(&name).map_err(|e| AdminError::BadRequest(e.to_string()))?;
    let settings: TenantSettingsBody = serde_json::from_value(serde_json::Value::Object(body))
        .map_err(|e| AdminError::BadRequest(format!("the request body is not valid: {e}")))?;
    let update = settings.update()?;
    let mut tenant = state.store.create_tenant(&name).await?;
    if update != TenantUpdate::default() {
        tenant = state.store.update_tenant(&name, &update).await?;
    }
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/admin/v1/tenants/{name}")))
        .json(view(&req, &state, &tenant)))
}

pub async fn get(
    _: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    org: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let tenant = state.store.tenant(&tenant_name(&org)?).await?;
    Ok(HttpResponse::Ok().json(view(&req, &state, &tenant)))
}

pub async fn update(
    _: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    org: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let body: TenantSettingsBody = json_body(body).await?;
    let tenant = state.store.update_tenant(&tenant_name(&org)?, &body.update()?).await?;
    // A settings change may have reconciled memberships: their events go out now.
    state.deliveries.notify_one();
    Ok(HttpResponse::Ok().json(view(&req, &state, &tenant)))
}

pub async fn delete(
    _: Operator,
    state: web::Data<AppState>,
    org: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    state.store.delete_tenant(&tenant_name(&org)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
