//! `/scim/v2/{org}`: Users, Groups, search and discovery (RFC 7644).

mod activity;
mod body;
mod discovery;
mod readiness;
mod resources;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use domain::{EntityTags, Precondition};
use proto::{IdpProfile, ResourceKind};

use crate::error::{ScimError, SCIM_JSON};
use crate::route_table;

/// Which resource type a nested scope serves.
#[derive(Debug, Clone, Copy)]
pub struct Kind(pub ResourceKind);

/// The path of a tenant's SCIM endpoint.
pub(crate) const SCOPE: &str = "/scim/v2/{org}";

pub fn routes(cfg: &mut web::ServiceConfig, max_payload: usize, max_group_payload: usize) {
    cfg.service(
        web::scope(SCOPE)
            .wrap(from_fn(media_type))
            .wrap(from_fn(activity::record_requests))
            .service(resource_scope("/Users", ResourceKind::User, max_payload))
            .service(resource_scope("/Groups", ResourceKind::Group, max_group_payload))
            .service(
                route_table::resource(SCOPE, "/.search")
                    .app_data(web::Data::new(Limit(max_payload)))
                    .route(web::post().to(resources::search_all))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/ServiceProviderConfig")
                    .route(web::get().to(discovery::service_provider_config))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/Schemas")
                    .route(web::get().to(discovery::schemas))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/Schemas/{id}")
                    .route(web::get().to(discovery::schema))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/ResourceTypes")
                    .route(web::get().to(discovery::resource_types))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/ResourceTypes/{id}")
                    .route(web::get().to(discovery::resource_type))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/readiness")
                    .route(web::get().to(readiness::readiness))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(route_table::resource(SCOPE, "/Bulk").to(not_implemented))
            .service(route_table::resource(SCOPE, "/Me").to(not_implemented)),
    );
}

/// The body limit of a scope.
#[derive(Debug, Clone, Copy)]
pub struct Limit(pub usize);

fn resource_scope(path: &str, kind: ResourceKind, limit: usize) -> actix_web::Scope {
    let scope = format!("{SCOPE}{path}");
    web::scope(path)
        .app_data(web::Data::new(Kind(kind)))
        .app_data(web::Data::new(Limit(limit)))
        .service(
            route_table::resource(&scope, "")
                .route(web::get().to(resources::list))
                .route(web::post().to(resources::create))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            route_table::resource(&scope, "/.search")
                .route(web::post().to(resources::search))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            route_table::resource(&scope, "/{id}")
                .route(web::get().to(resources::get))
                .route(web::put().to(resources::replace))
                .route(web::patch().to(resources::patch))
                .route(web::delete().to(resources::delete))
                .default_service(web::to(method_not_allowed)),
        )
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ScimError> {
    Err(ScimError::MethodNotAllowed(req.method().to_string()))
}

async fn not_implemented(req: HttpRequest) -> Result<HttpResponse, ScimError> {
    let what = if req.path().ends_with("/Bulk") { "Bulk" } else { "/Me" };
    Err(ScimError::NotImplemented(what))
}

/// Label a tenant's responses, errors included, with the media type the client asked for:
/// `Accept` preferring `application/json` (alone, or with a higher quality than
/// `application/scim+json`) gets `application/json` (RFC 7644 §3.8); otherwise the one its IdP
/// profile wants (OneLogin: `application/json`), known once the request is authenticated, and
/// before that `application/scim+json`.
async fn media_type(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let asked = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).and_then(preferred_json_type);
    let mut response = next.call(req).await?;
    let wanted = asked.or_else(|| response.request().extensions().get::<IdpProfile>().map(|p| p.response_media_type()));
    if let Some(wanted) = wanted.filter(|m| *m != SCIM_JSON) {
        let is_scim = response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v == SCIM_JSON);
        if is_scim {
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(wanted));
        }
    }
    Ok(response)
}

const PLAIN_JSON: &str = "application/json";

/// Which of the two JSON media types an `Accept` header prefers, by quality (RFC 9110 §12.5.1,
/// the most specific range deciding); `None` when it prefers neither.
fn preferred_json_type(accept: &str) -> Option<&'static str> {
    let scim = accept_quality(accept, SCIM_JSON);
    let plain = accept_quality(accept, PLAIN_JSON);
    match plain.partial_cmp(&scim) {
        Some(std::cmp::Ordering::Greater) => Some(PLAIN_JSON),
        Some(std::cmp::Ordering::Less) => Some(SCIM_JSON),
        _ => None,
    }
}

/// The quality `accept` gives `media` (0 when no range covers it).
fn accept_quality(accept: &str, media: &str) -> f32 {
    let (kind, _) = media.split_once('/').unwrap_or((media, ""));
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let name = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let specificity = if name == media {
            3
        } else if name.strip_suffix("/*") == Some(kind) {
            2
        } else if name == "*/*" {
            1
        } else {
            continue;
        };
        let quality = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, v)| v.trim().parse::<f32>().ok())
            .filter(|q| (0.0..=1.0).contains(q))
            .unwrap_or(1.0);
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, quality));
        }
    }
    best.map_or(0.0, |(_, q)| q)
}

/// A SCIM JSON response.
pub fn scim_json<T: serde::Serialize + ?Sized>(status: actix_web::http::StatusCode, body: &T) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON)))
        .body(serde_json::to_string(body).unwrap_or_default())
}

/// `If-Match` / `If-None-Match` of a request.
pub fn precondition(req: &HttpRequest) -> Precondition {
    let get = |name| req.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    if let Some(v) = get(header::IF_MATCH) {
        Precondition::IfMatch(EntityTags::parse(v))
    } else if let Some(v) = get(header::IF_NONE_MATCH) {
        Precondition::IfNoneMatch(EntityTags::parse(v))
    } else {
        Precondition::None
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::{test, App};

    use super::*;

    /// A handler that authenticates as a tenant with `profile`, then answers or fails.
    async fn answer(req: HttpRequest, path: web::Path<(String, String, String)>) -> Result<HttpResponse, ScimError> {
        let (_org, what, profile) = path.into_inner();
        let profile: IdpProfile = profile.parse()?;
        req.extensions_mut().insert(profile);
        match what.as_str() {
            "ok" => Ok(scim_json(StatusCode::OK, &serde_json::json!({"id": "1"}))),
            _ => Err(ScimError::NotFound("nothing here".into())),
        }
    }

    async fn content_type(uri: &str) -> (StatusCode, String) {
        let app = test::init_service(App::new().service(
            web::scope("/scim/v2/{org}").wrap(from_fn(media_type)).route("/{what}/{profile}", web::get().to(answer)),
        ))
        .await;
        let response = test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
        let content_type = response.headers().get(header::CONTENT_TYPE).unwrap().to_str().unwrap().to_owned();
        (response.status(), content_type)
    }

    #[actix_web::test]
    async fn responses_carry_the_media_type_of_the_profile() {
        for profile in IdpProfile::ALL {
            let wanted = profile.response_media_type();
            assert_eq!(content_type(&format!("/scim/v2/acme/ok/{profile}")).await, (StatusCode::OK, wanted.into()));
            assert_eq!(
                content_type(&format!("/scim/v2/acme/fail/{profile}")).await,
                (StatusCode::NOT_FOUND, wanted.into()),
                "errors too"
            );
        }
        // No profile known (the request never authenticated): SCIM's own type.
        let (status, media) = content_type("/scim/v2/acme/ok/nonsense").await;
        assert_eq!((status, media.as_str()), (StatusCode::BAD_REQUEST, SCIM_JSON));
    }

    #[actix_web::test]
    async fn accept_header_preferences() {
        assert_eq!(preferred_json_type("application/json"), Some(PLAIN_JSON));
        assert_eq!(preferred_json_type("Application/JSON; charset=utf-8"), Some(PLAIN_JSON));
        assert_eq!(preferred_json_type("application/scim+json;q=0.5, application/json"), Some(PLAIN_JSON));
        assert_eq!(preferred_json_type("application/json;q=0.9, application/scim+json"), Some(SCIM_JSON));
        assert_eq!(preferred_json_type("application/scim+json"), Some(SCIM_JSON));
        assert_eq!(preferred_json_type("application/json, application/scim+json"), None);
        assert_eq!(preferred_json_type("*/*"), None);
        assert_eq!(preferred_json_type("application/*;q=0.2, application/json"), Some(PLAIN_JSON));
        assert_eq!(preferred_json_type("text/html"), None);
        assert_eq!(preferred_json_type("application/json;q=0"), None);
    }
}
