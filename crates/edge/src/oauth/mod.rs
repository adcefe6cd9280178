//! OAuth 2.0 for identity providers: a token endpoint and its metadata per tenant, the JWKS
//! cache behind federated credentials, access tokens on SCIM routes, and client management shared
//! by the CLI and the admin API.

mod access;
mod assertion;
pub mod clients;
mod error;
mod jwks;
mod metadata;
mod token;

use actix_web::web;

pub use self::access::{authenticate_access_token, bearer_access_token};
pub use self::error::OAuthError;
pub use self::jwks::JwksCache;
use crate::route_table;

const SCOPE: &str = "/oauth2/{org}";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(route_table::resource("", &format!("{SCOPE}/token")).route(web::post().to(token::token))).service(
        route_table::resource("", &format!("{SCOPE}/.well-known/oauth-authorization-server"))
            .route(web::get().to(metadata::metadata)),
    );
}
