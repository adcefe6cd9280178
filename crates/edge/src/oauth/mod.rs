//! OAuth 2.0 for identity providers: a token endpoint and its metadata per tenant, and client
//! management shared by the CLI and the admin API. The access tokens it issues are checked on
//! SCIM routes by [`crate::auth`]; the JWKS behind federated credentials are cached by
//! [`crate::jwks`].

mod assertion;
pub mod clients;
mod error;
mod metadata;
mod token;

use actix_web::web;

pub use self::error::OAuthError;
use crate::route_table;

const SCOPE: &str = "/oauth2/{org}";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(route_table::resource("", &format!("{SCOPE}/token")).route(web::post().to(token::token))).service(
        route_table::resource("", &format!("{SCOPE}/.well-known/oauth-authorization-server"))
            .route(web::get().to(metadata::metadata)),
    );
}
