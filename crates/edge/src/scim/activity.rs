//! Recording each request to a tenant's SCIM endpoint in the provisioning activity log (see
//! [`crate::activity`]): what it addressed, its status, `scimType` and `detail`, latency, the IdP
//! its User-Agent names and the credential it was let in with.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest};
use domain::{now_micros, ActivityMethod, ActivityRecord, ActivityResource, NewActivity, TenantName};
use proto::IdpProfile;

use crate::activity::RequestCredential;
use crate::error::ScimErrorSummary;
use crate::metrics::RequestTenant;
use crate::state::AppState;

/// Middleware on `/scim/v2/{org}`: record each request of a tenant once it is answered.
pub async fn record_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().filter(|s| s.activity.is_on()).cloned() else {
        return next.call(req).await;
    };
    let (started, at) = (Instant::now(), now_micros());
    let method = ActivityMethod::from_http(req.method().as_str());
    let idp = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).and_then(IdpProfile::from_user_agent);
    let response = next.call(req).await?;
    let latency_us = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
    if let Some(tenant) = request_tenant(response.request()) {
        let (resource_type, resource_id) = addressed(&response);
        let error = response.response().extensions().get::<ScimErrorSummary>().cloned();
        let credential = response.request().extensions().get::<RequestCredential>().map(|c| c.0.clone());
        let show_filter_values = state.settings.log_filter_values;
        state.activity.record(NewActivity {
            tenant,
            record: ActivityRecord {
                at,
                method,
                resource_type,
                resource_id,
                status: response.status().as_u16(),
                scim_type: error.as_ref().and_then(|e| e.scim_type).map(str::to_owned),
                detail: error.map(|e| private_detail(e.scim_type, e.detail, show_filter_values)),
                latency_us,
                idp,
                credential,
            },
        });
    }
    Ok(response)
}

/// The tenant a request is for: the authenticated one, or the name in its URL (which the store
/// drops if no tenant has it).
fn request_tenant(req: &HttpRequest) -> Option<TenantName> {
    if let Some(tenant) = req.extensions().get::<RequestTenant>() {
        return Some(tenant.0.clone());
    }
    TenantName::parse(&req.match_info().get("org")?.to_ascii_lowercase()).ok()
}

/// What the request addressed, from its route, and the resource's id when the path named one or
/// a create answered with one.
fn addressed<B>(response: &ServiceResponse<B>) -> (ActivityResource, Option<String>) {
    let req = response.request();
    let route = req.match_pattern().unwrap_or_default();
    let endpoint = route.strip_prefix(super::SCOPE).unwrap_or("");
    let resource = match endpoint.split('/').nth(1).unwrap_or("") {
        "Users" => ActivityResource::User,
        "Groups" => ActivityResource::Group,
        ".search" => ActivityResource::Search,
        "ServiceProviderConfig" => ActivityResource::ServiceProviderConfig,
        "ResourceTypes" => ActivityResource::ResourceType,
        "Schemas" => ActivityResource::Schema,
        "Bulk" => ActivityResource::Bulk,
        "Me" => ActivityResource::Me,
        "readiness" => ActivityResource::Readiness,
        _ => ActivityResource::Other,
    };
    if !matches!(resource, ActivityResource::User | ActivityResource::Group) {
        return (resource, None);
    }
    let named = req.match_info().get("id").filter(|_| endpoint.ends_with("/{id}")).map(str::to_owned);
    // A create names its resource in `Location`: `<base>/Users/<id>`.
    let created = || {
        let location = response.headers().get(header::LOCATION)?.to_str().ok()?;
        location.rsplit('/').next().filter(|id| !id.is_empty()).map(str::to_owned)
    };
    (resource, named.or_else(created))
}

/// The error detail as recorded. Details of filter and PATCH path errors quote parts of the
/// filter, which may be its values (userNames, emails): those quotes are masked unless
/// `SCIMGATE_LOG_FILTER_VALUES` shows filter values in logs too.
fn private_detail(scim_type: Option<&str>, detail: String, show_filter_values: bool) -> String {
    if show_filter_values || !matches!(scim_type, Some("invalidFilter" | "invalidPath" | "noTarget")) {
        return detail;
    }
    let mut masked = String::with_capacity(detail.len());
    for (i, part) in detail.split('`').enumerate() {
        match i % 2 {
            0 => masked.push_str(part),
            _ => masked.push_str("`***`"),
        }
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_quotes_are_masked_in_filter_and_path_errors_only() {
        let detail = "expected an operator at position 10, found `bob@example.com`".to_owned();
        assert_eq!(
            private_detail(Some("invalidFilter"), detail.clone(), false),
            "expected an operator at position 10, found `***`"
        );
        assert_eq!(private_detail(Some("invalidFilter"), detail.clone(), true), detail);
        let taken = "userName `bjensen` is already taken".to_owned();
        assert_eq!(private_detail(Some("uniqueness"), taken.clone(), false), taken);
        assert_eq!(private_detail(Some("noTarget"), "no `a` or `b`".into(), false), "no `***` or `***`");
    }
}
