//! The web interfaces on the main port: the setup portal (`/portal`, for a customer's IT admin
//! holding a setup link) and the operator console (`/console`, for operators signed in with an
//! operator token). Server-rendered HTML from templates compiled into the binary; the stylesheet
//! and the one script are compiled in too and served from here (no CDN, no build step). Every
//! essential flow works without JavaScript; the script only adds copy buttons.
//!
//! Security: sessions live in `HttpOnly; Secure; SameSite=Strict` cookies scoped to their area;
//! every form carries the session's CSRF token and is checked for a same-origin request; every
//! response forbids framing, inline script and style, and referrers; pages are never cached.

mod activity;
mod console;
mod error;
mod forms;
mod pages;
mod portal;
mod session;
mod steps;

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpRequest, HttpResponse};

pub use self::error::WebError;
use crate::route_table;

/// What every page and error of the web interfaces is sent with.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("../../assets/app.css");
const SCRIPT: &str = include_str!("../../assets/app.js");

/// The two web interfaces, each under its own path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Portal,
    Console,
}

impl Area {
    pub fn base(self) -> &'static str {
        match self {
            Area::Portal => "/portal",
            Area::Console => "/console",
        }
    }
}

fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Pages show tenant data and, once, secrets: never kept by a browser or a proxy. The
        // assets set their own.
        .add((header::CACHE_CONTROL, "no-store"))
}

/// Register the areas the settings switch on; a switched-off area is not routed at all (404).
pub fn routes(cfg: &mut web::ServiceConfig, portal: bool, console: bool) {
    if portal {
        cfg.service(portal::scope().wrap(security_headers()));
    }
    if console {
        cfg.service(console::scope().wrap(security_headers()));
    }
}

/// `{area}/assets/{name}`, the stylesheet and the script, for the area `scope` serves.
fn asset_resource(area: Area) -> actix_web::Resource {
    route_table::resource(area.base(), "/assets/{name}")
        .route(web::get().to(asset))
        .default_service(web::to(method_not_allowed))
}

async fn asset(name: web::Path<String>) -> Result<HttpResponse, WebError> {
    let (content_type, body) = match name.as_str() {
        "app.css" => ("text/css; charset=utf-8", STYLESHEET),
        "app.js" => ("text/javascript; charset=utf-8", SCRIPT),
        _ => return Err(WebError::NotFound),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(body))
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, WebError> {
    Err(WebError::MethodNotAllowed(req.method().to_string()))
}

async fn not_found() -> Result<HttpResponse, WebError> {
    Err(WebError::NotFound)
}

/// A `303 See Other` to `location` (after a form, so that reloading does not post it again).
fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}
