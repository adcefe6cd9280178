//! The operator console: the SaaS team, signed in with an operator token, sees every tenant,
//! creates tenants, issues setup links and tokens, and looks after webhooks. Every action is the
//! same domain call the admin API makes.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use domain::{
    format_rfc3339, now_micros, ActivityLimit, ActivityQuery, DeadLetter, Finding, SessionScope, Tenant, TenantName,
    TokenOwner, WebhookEndpoint,
};
use serde::Deserialize;
use token::{TokenId, TokenKind};

use super::forms::form;
use super::pages::{html, Frame};
use super::portal::{findings, is_ready, SignedOutPage};
use super::session::{self, check_form, same_origin, ConsoleSession};
use super::steps::{self, Value};
use super::{asset_resource, method_not_allowed, not_found, see_other, Area, WebError};
use crate::auth::{authenticate_presented, public_origin, AuthError};
use crate::issuing::{self, TokenRequest};
use crate::route_table;
use crate::setup_links;
use crate::state::AppState;

pub fn scope() -> actix_web::Scope {
    let base = Area::Console.base();
    let resource = |path: &str| route_table::resource(base, path).default_service(web::to(method_not_allowed));
    web::scope(base)
        .service(resource("").route(web::get().to(home)))
        .service(resource("/sign-in").route(web::get().to(sign_in_page)).route(web::post().to(sign_in)))
        .service(resource("/sign-out").route(web::post().to(sign_out)))
        .service(resource("/tenants").route(web::post().to(create_tenant)))
        .service(resource("/tenants/{org}").route(web::get().to(tenant_page)))
        .service(resource("/tenants/{org}/activity").route(web::get().to(tenant_activity)))
        .service(resource("/tenants/{org}/portal-links").route(web::post().to(issue_link)))
        .service(resource("/tenants/{org}/portal-links/{id}/revoke").route(web::post().to(revoke_link)))
        .service(resource("/tenants/{org}/tokens").route(web::post().to(create_token)))
        .service(resource("/tenants/{org}/tokens/{id}/revoke").route(web::post().to(revoke_token)))
        .service(resource("/tenants/{org}/webhooks/{id}/redeliver").route(web::post().to(redeliver)))
        .service(asset_resource(Area::Console))
        .default_service(web::to(not_found))
}

/// The console's form actions: each one POST route, all checked the same way.
#[derive(Clone, Copy)]
enum Action {
    SignOut,
    CreateTenant,
    IssueLink,
    RevokeLink,
    CreateToken,
    RevokeToken,
    Redeliver,
}

type ActionRequest = (ConsoleSession, HttpRequest, web::Data<AppState>, web::Payload);

async fn sign_out(
    session: ConsoleSession,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, WebError> {
    act(Action::SignOut, (session, req, state, body)).await
}

async fn create_tenant(
    session: ConsoleSession,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, WebError> {
    act(Action::CreateTenant, (session, req, state, body)).await
}

async fn issue_link(
    session: ConsoleSession,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, WebError> {
    act(Action::IssueLink, (session, req, state, body)).await
}

async fn revoke_link(
    session: ConsoleSession,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, WebError> {
    act(Action::RevokeLink, (session, req, state, body)).await
}

async fn create_token(
    session: ConsoleSession,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, WebError> {
    act(Action::CreateToken, (session, req, state, body)).await
}

async fn revoke_token(
    session: ConsoleSession,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, WebError> {
    act(Action::RevokeToken, (session, req, state, body)).await
}

async fn redeliver(
    session: ConsoleSession,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, WebError> {
    act(Action::Redeliver, (session, req, state, body)).await
}

/// The tenant a console path names; a name that cannot exist is not found.
fn tenant_name(org: &str) -> Result<TenantName, WebError> {
    TenantName::parse(org).map_err(|_| WebError::NotFound)
}

fn path_tenant(req: &HttpRequest) -> Result<TenantName, WebError> {
    tenant_name(req.match_info().get("org").unwrap_or_default())
}

fn path_id(req: &HttpRequest) -> String {
    req.match_info().get("id").unwrap_or_default().to_owned()
}

#[derive(Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
    /// A new tenant's name.
    #[serde(default)]
    name: String,
    /// A setup link's expiry, e.g. `7d`.
    #[serde(default)]
    expires_in: String,
}

async fn act(action: Action, (session, req, state, body): ActionRequest) -> Result<HttpResponse, WebError> {
    let body: ActionForm = form(body).await?;
    check_form(&req, &state, &session.csrf_token, &body.csrf)?;
    let store = state.store.as_ref();
    match action {
        Action::SignOut => {
            store.end_web_session(&session.id).await?;
            let mut response = html(&SignedOutPage { page: Frame::anonymous(Area::Console, "Signed out") })?;
            response
                .add_cookie(&session::removal(Area::Console))
                .map_err(|_| WebError::BadRequest("the session cookie could not be removed".into()))?;
            Ok(response)
        }
        Action::CreateTenant => {
            let name = TenantName::parse(body.name.trim()).map_err(|e| WebError::BadRequest(e.to_string()))?;
            store.create_tenant(&name).await?;
            tracing::info!(tenant = %name, operator = %session.token, "tenant created in the console");
            Ok(see_other(&format!("/console/tenants/{name}")))
        }
        Action::IssueLink => {
            let tenant = path_tenant(&req)?;
            let expiry = setup_links::expiry(Some(&body.expires_in))?;
            let issued = setup_links::issue(store, &tenant, expiry, &public_origin(&req, &state.settings)).await?;
            tracing::info!(tenant = %tenant, link_id = %issued.link.id, operator = %session.token, "setup link issued in the console");
            let values = vec![Value { label: "Setup link", value: issued.url, id: "secret".into() }];
            let note = format!(
                "Send this link to the IT admin of {tenant}. It works once, until {}.",
                format_rfc3339(issued.link.expires_at)
            );
            reveal(&session, &tenant, "New setup link", note, values)
        }
        Action::RevokeLink => {
            let tenant = path_tenant(&req)?;
            store.revoke_portal_link(&tenant, &path_id(&req)).await?;
            Ok(see_other(&format!("/console/tenants/{tenant}")))
        }
        Action::CreateToken => {
            let tenant = path_tenant(&req)?;
            store.tenant(&tenant).await?;
            let request = TokenRequest::parse(None, Some("console"), None, None)?;
            let token = issuing::issue(store, TokenOwner::Tenant(&tenant), &request).await?;
            tracing::info!(tenant = %tenant, token_id = %token.id, operator = %session.token, "token issued in the console");
            let values = vec![Value { label: "Secret Token", value: token.plaintext.clone(), id: "secret".into() }];
            reveal(&session, &tenant, "New token", "Give it to the tenant's IdP.".into(), values)
        }
        Action::RevokeToken => {
            let tenant = path_tenant(&req)?;
            let id = TokenId::parse(&path_id(&req)).map_err(|_| WebError::NotFound)?;
            store.revoke_token(TokenOwner::Tenant(&tenant), &id).await?;
            Ok(see_other(&format!("/console/tenants/{tenant}")))
        }
        Action::Redeliver => {
            let tenant = path_tenant(&req)?;
            let count = store.request_redelivery(&tenant, &path_id(&req), None).await?;
            state.deliveries.notify_one();
            tracing::info!(tenant = %tenant, count, operator = %session.token, "redelivery requested in the console");
            Ok(see_other(&format!("/console/tenants/{tenant}")))
        }
    }
}

#[derive(Template)]
#[template(path = "console_reveal.html")]
struct RevealPage {
    page: Frame,
    tenant: String,
    note: String,
    values: Vec<Value>,
}

/// The one response that shows a new secret.
fn reveal(
    session: &ConsoleSession,
    tenant: &TenantName,
    title: &str,
    note: String,
    values: Vec<Value>,
) -> Result<HttpResponse, WebError> {
    html(&RevealPage { page: Frame::console(title, &session.csrf_token), tenant: tenant.to_string(), note, values })
}

#[derive(Template)]
#[template(path = "console_sign_in.html")]
struct SignInPage {
    page: Frame,
    error: Option<String>,
}

async fn sign_in_page() -> Result<HttpResponse, WebError> {
    html(&SignInPage { page: Frame::anonymous(Area::Console, "Sign in"), error: None })
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    token: String,
}

async fn sign_in(req: HttpRequest, state: web::Data<AppState>, body: web::Payload) -> Result<HttpResponse, WebError> {
    same_origin(&req, &state)?;
    let body: SignInForm = form(body).await?;
    let presented = Some(body.token.trim()).filter(|t| !t.is_empty());
    let stored = match authenticate_presented(&req, &state, TokenKind::Operator, None, presented).await {
        Ok(stored) => stored,
        Err(AuthError::Unauthorized(_) | AuthError::TooManyFailures { .. }) => {
            let page = SignInPage {
                page: Frame::anonymous(Area::Console, "Sign in"),
                error: Some(WebError::BadOperatorToken.to_string()),
            };
            let mut response = html(&page)?;
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            return Ok(response);
        }
        Err(AuthError::Store(e)) => return Err(e.into()),
        Err(AuthError::Interrupted) => return Err(WebError::BadRequest("the server is shutting down".into())),
    };
    let opened = session::open(Area::Console, SessionScope::Console(stored.id.clone()));
    state.store.add_web_session(opened.session).await?;
    tracing::info!(token_id = %stored.id, "operator signed in to the console");
    let mut response = see_other("/console");
    response.add_cookie(&opened.cookie).map_err(|_| WebError::BadRequest("the session could not be opened".into()))?;
    Ok(response)
}

pub struct TenantRow {
    pub name: String,
    pub idp: &'static str,
    pub ready: bool,
    pub last_activity: String,
}

#[derive(Template)]
#[template(path = "console_home.html")]
struct HomePage {
    page: Frame,
    tenants: Vec<TenantRow>,
}

/// When the tenant's IdP last called: its latest recorded request, or the latest use of any of
/// its tokens.
async fn last_activity(state: &AppState, tenant: &Tenant) -> Result<Option<i64>, WebError> {
    let latest = ActivityQuery { limit: ActivityLimit::new(1)?, ..ActivityQuery::default() };
    let recorded = state.store.list_activity(&tenant.name, &latest).await?.items.first().map(|a| a.record.at);
    let tokens = state.store.list_tokens(TokenOwner::Tenant(&tenant.name)).await?;
    Ok(tokens.iter().filter_map(|t| t.last_used_at).chain(recorded).max())
}

async fn tenant_activity(
    session: ConsoleSession,
    req: HttpRequest,
    state: web::Data<AppState>,
    org: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let tenant = state.store.tenant(&tenant_name(&org)?).await?;
    let frame = Frame::console(format!("Activity of {}", tenant.name), &session.csrf_token);
    let path = format!("/console/tenants/{}/activity", tenant.name);
    super::activity::page(&req, state.store.as_ref(), &tenant.name, frame, &path).await
}

async fn home(session: ConsoleSession, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let mut tenants = Vec::new();
    for tenant in state.store.list_tenants().await? {
        let findings = findings(&state, &tenant).await?;
        tenants.push(TenantRow {
            name: tenant.name.to_string(),
            idp: steps::idp_name(tenant.settings.idp_profile),
            ready: is_ready(&findings),
            last_activity: issuing::date(last_activity(&state, &tenant).await?),
        });
    }
    html(&HomePage { page: Frame::console("Tenants", &session.csrf_token), tenants })
}

pub struct LinkRow {
    pub id: String,
    pub created: String,
    pub expires: String,
    pub state: &'static str,
    pub revocable: bool,
}

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub state: &'static str,
    pub last_used: String,
    pub revocable: bool,
}

pub struct WebhookRow {
    pub endpoint: WebhookEndpoint,
    pub next_attempt: String,
    pub dead_letters: Vec<DeadLetter>,
}

#[derive(Template)]
#[template(path = "console_tenant.html")]
struct TenantPage {
    page: Frame,
    tenant: String,
    scim_url: String,
    idp: &'static str,
    ready: bool,
    findings: Vec<Finding>,
    links: Vec<LinkRow>,
    tokens: Vec<TokenRow>,
    webhooks: Vec<WebhookRow>,
}

async fn tenant_page(
    session: ConsoleSession,
    req: HttpRequest,
    state: web::Data<AppState>,
    org: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let store = state.store.as_ref();
    let tenant = store.tenant(&tenant_name(&org)?).await?;
    let now = now_micros();
    let findings = findings(&state, &tenant).await?;
    let links = store
        .list_portal_links(&tenant.name)
        .await?
        .into_iter()
        .map(|l| {
            let link_state = l.state(now);
            LinkRow {
                created: format_rfc3339(l.created_at),
                expires: format_rfc3339(l.expires_at),
                state: link_state.as_str(),
                revocable: link_state == domain::LinkState::Unused,
                id: l.id,
            }
        })
        .collect();
    let tokens = store
        .list_tokens(TokenOwner::Tenant(&tenant.name))
        .await?
        .iter()
        .map(|t| {
            let token_state = issuing::state(t, now);
            TokenRow {
                id: t.id.to_string(),
                name: t.name.clone().unwrap_or_default(),
                created: format_rfc3339(t.created_at),
                state: token_state,
                last_used: issuing::date(t.last_used_at),
                revocable: matches!(token_state, "active" | "grace"),
            }
        })
        .collect();
    let mut webhooks = Vec::new();
    for endpoint in store.list_webhooks(&tenant.name).await? {
        let dead_letters = store.dead_letters(&tenant.name, &endpoint.id).await?;
        webhooks.push(WebhookRow { next_attempt: issuing::date(endpoint.next_attempt_at), endpoint, dead_letters });
    }
    html(&TenantPage {
        page: Frame::console(format!("Tenant {}", tenant.name), &session.csrf_token),
        scim_url: format!("{}/scim/v2/{}", public_origin(&req, &state.settings), tenant.name),
        tenant: tenant.name.to_string(),
        idp: steps::idp_name(tenant.settings.idp_profile),
        ready: is_ready(&findings),
        findings,
        links,
        tokens,
        webhooks,
    })
}
