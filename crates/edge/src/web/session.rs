//! Web sessions: the cookie, the session it names, and the checks every form passes.
//!
//! The cookie is `<id>.<secret>`: the id finds the stored session, the secret (256 random bits,
//! stored only as a digest) is compared in constant time. Each area has its own cookie, sent only
//! to its own path, and a session of one kind is never accepted by the other area.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use domain::{now_micros, NewWebSession, SecretDigest, SessionScope, TenantName, WebSession};
use subtle::ConstantTimeEq;
use token::TokenId;

use super::{Area, WebError};
use crate::auth::public_origin;
use crate::setup_links::{random_id, random_secret};
use crate::state::AppState;

/// How long a portal session lasts: long enough to set up an IdP, short enough that a
/// forgotten browser does not stay signed in.
pub const PORTAL_SESSION: Duration = Duration::from_secs(8 * 3600);
/// How long a console session lasts (and never past its operator token).
pub const CONSOLE_SESSION: Duration = Duration::from_secs(8 * 3600);

impl Area {
    fn cookie_name(self) -> &'static str {
        match self {
            Area::Portal => "scimgate_portal",
            Area::Console => "scimgate_console",
        }
    }

    fn lifetime(self) -> Duration {
        match self {
            Area::Portal => PORTAL_SESSION,
            Area::Console => CONSOLE_SESSION,
        }
    }
}

/// A new session and the cookie that carries it.
pub struct Opened {
    pub session: NewWebSession,
    pub cookie: Cookie<'static>,
}

/// A new session of `area` for `scope`, not yet stored.
pub fn open(area: Area, scope: SessionScope) -> Opened {
    let (id, secret) = (random_id(), random_secret());
    let lifetime = area.lifetime();
    let micros = i64::try_from(lifetime.as_micros()).unwrap_or(i64::MAX);
    let session = NewWebSession {
        id: id.clone(),
        digest: SecretDigest::of(&secret),
        scope,
        csrf_token: random_secret(),
        expires_at: now_micros().saturating_add(micros),
    };
    let cookie = Cookie::build(area.cookie_name(), format!("{id}.{secret}"))
        .path(area.base())
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX)))
        .finish();
    Opened { session, cookie }
}

/// The cookie that ends `area`'s session in the browser.
pub fn removal(area: Area) -> Cookie<'static> {
    let mut cookie = Cookie::build(area.cookie_name(), "")
        .path(area.base())
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .finish();
    cookie.make_removal();
    cookie
}

/// The live session the request's cookie for `area` names, if any.
async fn current(req: &HttpRequest, area: Area) -> Result<Option<WebSession>, WebError> {
    let Some(cookie) = req.cookie(area.cookie_name()) else { return Ok(None) };
    let Some((id, secret)) = cookie.value().split_once('.') else { return Ok(None) };
    let state = req.app_data::<web::Data<AppState>>().ok_or(WebError::NotFound)?;
    let Some(session) = state.store.web_session(id).await? else { return Ok(None) };
    let now = now_micros();
    if !session.digest.matches(secret) || session.expires_at <= now {
        return Ok(None);
    }
    if let Some(validity) = &session.operator_token {
        if validity.check(now).is_err() {
            return Ok(None);
        }
    }
    Ok(Some(session))
}

/// A setup-portal session: one tenant, and nothing else.
pub struct PortalSession {
    pub id: String,
    pub tenant: TenantName,
    pub csrf_token: String,
}

impl FromRequest for PortalSession {
    type Error = WebError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match current(&req, Area::Portal).await? {
                Some(WebSession { id, scope: SessionScope::Portal(tenant), csrf_token, .. }) => {
                    Ok(PortalSession { id, tenant, csrf_token })
                }
                _ => Err(WebError::PortalSignInRequired),
            }
        })
    }
}

/// An operator-console session.
pub struct ConsoleSession {
    pub id: String,
    pub token: TokenId,
    pub csrf_token: String,
}

impl FromRequest for ConsoleSession {
    type Error = WebError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match current(&req, Area::Console).await? {
                Some(WebSession { id, scope: SessionScope::Console(token), csrf_token, .. }) => {
                    Ok(ConsoleSession { id, token, csrf_token })
                }
                _ => Err(WebError::ConsoleSignInRequired),
            }
        })
    }
}

/// Refuse a form sent from another site. Browsers say where a request comes from in
/// `Sec-Fetch-Site` and `Origin`; a page with `Referrer-Policy: no-referrer` makes Chromium send
/// `Origin: null` with its own forms, so `null` says nothing either way. At least one of the two
/// must vouch for this origin, and neither may name another.
pub fn same_origin(req: &HttpRequest, state: &AppState) -> Result<(), WebError> {
    let headers = req.headers();
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).filter(|o| *o != "null");
    let ours = public_origin(req, &state.settings);
    let fetch_ok = match fetch_site {
        Some(site) if site != "same-origin" => return Err(WebError::Forgery("sent from another site")),
        Some(_) => true,
        None => false,
    };
    let origin_ok = match origin {
        Some(origin) if !origin.eq_ignore_ascii_case(&ours) => return Err(WebError::Forgery("foreign origin")),
        Some(_) => true,
        None => false,
    };
    if fetch_ok || origin_ok {
        Ok(())
    } else {
        Err(WebError::Forgery("no origin"))
    }
}

/// A form of a signed-in page: same origin, and carrying the session's CSRF token.
pub fn check_form(req: &HttpRequest, state: &AppState, expected: &str, presented: &str) -> Result<(), WebError> {
    same_origin(req, state)?;
    if presented.is_empty() || !bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(WebError::Forgery("missing or wrong form token"));
    }
    Ok(())
}
