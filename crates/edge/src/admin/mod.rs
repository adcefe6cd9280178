//! `/admin/v1`: the operators' API for tenants and their tokens, authenticated by operator tokens
//! (`scimgate admin-token create`). JSON in, JSON out; errors are RFC 9457 problem details.

mod accounts;
mod activity;
mod error;
mod events;
mod oauth_clients;
pub mod orgs;
pub(crate) mod portal_links;
mod tenants;
mod tokens;
mod webhooks;

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use domain::TenantName;
use serde::de::DeserializeOwned;
use token::{TokenId, TokenKind};

pub use self::error::AdminError;
use crate::auth::authenticate;
use crate::route_table;
use crate::state::AppState;

/// The path of the admin API.
const SCOPE: &str = "/admin/v1";

/// Largest admin request body.
pub(crate) const MAX_BODY: usize = 64 * 1024;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope(SCOPE)
            .service(
                route_table::resource(SCOPE, "/tenants")
                    .route(web::get().to(tenants::list))
                    .route(web::post().to(tenants::create))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/tenants/{org}")
                    .route(web::get().to(tenants::get))
                    .route(web::patch().to(tenants::update))
                    .route(web::delete().to(tenants::delete))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/tenants/{org}/tokens")
                    .route(web::get().to(tokens::list))
                    .route(web::post().to(tokens::create))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/tenants/{org}/tokens/regenerate")
                    .route(web::post().to(tokens::regenerate))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/tenants/{org}/tokens/{id}")
                    .route(web::delete().to(tokens::revoke))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/tenants/{org}/portal-links")
                    .route(web::get().to(portal_links::list))
                    .route(web::post().to(portal_links::create))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/tenants/{org}/portal-links/{id}")
                    .route(web::delete().to(portal_links::revoke))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/tenants/{org}/oauth-clients")
                    .route(web::get().to(oauth_clients::list))
                    .route(web::post().to(oauth_clients::create))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/tenants/{org}/oauth-clients/{id}")
                    .route(web::delete().to(oauth_clients::revoke))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/tenants/{org}/oauth-clients/{id}/rotate")
                    .route(web::post().to(oauth_clients::rotate))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/tenants/{org}/organizations")
                    .route(web::get().to(orgs::list_organizations))
                    .route(web::post().to(orgs::create_organization))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/tenants/{org}/organizations/{name}")
                    .route(web::get().to(orgs::get_organization))
                    .route(web::delete().to(orgs::delete_organization))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/tenants/{org}/organizations/{name}/members")
                    .route(web::get().to(orgs::organization_members))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/tenants/{org}/mappings")
                    .route(web::get().to(orgs::list_mappings))
                    .route(web::post().to(orgs::create_mapping))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/tenants/{org}/mappings/{id}")
                    .route(web::delete().to(orgs::delete_mapping))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/tenants/{org}/accounts")
                    .route(web::post().to(accounts::register_accounts))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/tenants/{org}/accounts/{id}")
                    .route(web::get().to(accounts::get_account))
                    .route(web::put().to(accounts::put_account))
                    .route(web::delete().to(accounts::delete_account))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/tenants/{org}/users")
                    .route(web::get().to(accounts::find_users))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/tenants/{org}/users/{id}")
                    .route(web::get().to(accounts::get_user))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/tenants/{org}/users/{id}/memberships")
                    .route(web::get().to(orgs::user_memberships))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                route_table::resource(SCOPE, "/tenants/{org}/readiness")
                    .route(web::get().to(orgs::readiness))
                    .default_service(web::to(method_not_allowed)),
            )
            .configure(webhooks::routes)
            .configure(events::routes)
            .configure(activity::routes)
            .default_service(web::to(not_found)),
    );
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, AdminError> {
    Err(AdminError::MethodNotAllowed(req.method().to_string()))
}

async fn not_found() -> Result<HttpResponse, AdminError> {
    Err(AdminError::NotFound("no such endpoint".into()))
}

/// An authenticated operator.
pub struct Operator;

impl FromRequest for Operator {
    type Error = AdminError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req.app_data::<web::Data<AppState>>().ok_or(AdminError::Unavailable)?;
            authenticate(&req, state, TokenKind::Operator, None).await?;
            Ok(Operator)
        })
    }
}

/// A tenant named in the path, in any letter case (org names are lowercase); a name that cannot
/// exist is simply not found.
fn tenant_name(org: &str) -> Result<TenantName, AdminError> {
    TenantName::parse(&org.to_ascii_lowercase()).map_err(|_| AdminError::NotFound(format!("tenant `{org}` not found")))
}

/// A JSON request body of type `T`; an empty body is `T::default()` where that makes sense.
async fn json_body<T: DeserializeOwned + Default>(payload: web::Payload) -> Result<T, AdminError> {
    json_body_limited(payload, MAX_BODY).await
}

/// [`json_body`] with a body limit of `limit` bytes.
async fn json_body_limited<T: DeserializeOwned + Default>(
    payload: web::Payload,
    limit: usize,
) -> Result<T, AdminError> {
    let bytes = payload
        .to_bytes_limited(limit)
        .await
        .map_err(|_| AdminError::BadRequest(format!("the request body exceeds {limit} bytes")))?
        .map_err(|e| AdminError::BadRequest(format!("could not read the request body: {e}")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let invalid = |e: serde_json::Error| AdminError::BadRequest(format!("the request body is not valid: {e}"));
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(invalid)?;
    if proto::resource::holds_nul(&value) {
        return Err(AdminError::BadRequest("the request body contains the character U+0000".into()));
    }
    serde_json::from_value(value).map_err(invalid)
}

fn token_id(id: &str) -> Result<TokenId, AdminError> {
    TokenId::parse(id).map_err(|_| AdminError::NotFound(format!("token `{id}` not found")))
}
