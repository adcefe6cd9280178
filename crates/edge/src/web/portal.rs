//! The setup portal: a customer's IT admin, let in by a setup link, connects their IdP to their
//! tenant. Every page works on the session's tenant alone; no path or form names a tenant.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use domain::{
    format_rfc3339, now_micros, AuthMethods, ClientCredential, Finding, GroupMapping, GroupMatcher, GroupOrganization,
    LinkState, Organization, PortalLink, SessionScope, Store, Tenant, TenantName, TenantUpdate, TokenOwner,
};
use proto::IdpProfile;
use serde::Deserialize;

use super::forms::form;
use super::pages::{html, Frame};
use super::session::{self, check_form, same_origin, PortalSession};
use super::steps::{self, Guide, Value};
use super::{asset_resource, method_not_allowed, not_found, see_other, Area, WebError};
use crate::auth::public_origin;
use crate::issuing::{self, parse_duration, TokenRequest};
use crate::oauth::clients;
use crate::route_table;
use crate::setup_links;
use crate::state::AppState;

pub fn scope() -> actix_web::Scope {
    let base = Area::Portal.base();
    web::scope(base)
        .service(
            route_table::resource(base, "").route(web::get().to(overview)).default_service(web::to(method_not_allowed)),
        )
        .service(
            route_table::resource(base, "/setup/{link}")
                .route(web::get().to(setup_page))
                .route(web::post().to(open_session))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            route_table::resource(base, "/idp")
                .route(web::post().to(choose_idp))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            route_table::resource(base, "/steps")
                .route(web::get().to(idp_steps))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            route_table::resource(base, "/credential")
                .route(web::get().to(credential))
                .route(web::post().to(generate_credential))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            route_table::resource(base, "/organizations")
                .route(web::get().to(organizations))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            route_table::resource(base, "/activity")
                .route(web::get().to(activity))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            route_table::resource(base, "/sign-out")
                .route(web::post().to(sign_out))
                .default_service(web::to(method_not_allowed)),
        )
        .service(asset_resource(Area::Portal))
        .default_service(web::to(not_found))
}

/// The tenant's SCIM base URL and OAuth token endpoint.
fn urls(req: &HttpRequest, state: &AppState, tenant: &TenantName) -> (String, String) {
    let origin = public_origin(req, &state.settings);
    (format!("{origin}/scim/v2/{tenant}"), format!("{origin}/oauth2/{tenant}/token"))
}

/// The link a presented `<id>.<secret>` names, if its secret matches and it still works. An
/// unknown id and a wrong secret look the same: not found.
async fn usable_link(store: &dyn Store, presented: &str) -> Result<PortalLink, WebError> {
    let (id, secret) = setup_links::split(presented).ok_or(WebError::NotFound)?;
    let stored = store.portal_link(id).await?.ok_or(WebError::NotFound)?;
    if !stored.digest.matches(secret) {
        return Err(WebError::NotFound);
    }
    match stored.link.state(now_micros()) {
        LinkState::Unused => Ok(stored.link),
        LinkState::Used => Err(WebError::LinkUnusable("was used already")),
        LinkState::Expired => Err(WebError::LinkUnusable("has expired")),
        LinkState::Revoked => Err(WebError::LinkUnusable("was revoked")),
    }
}

#[derive(Template)]
#[template(path = "portal_setup.html")]
struct SetupPage {
    page: Frame,
    tenant: String,
    expires: String,
    action: String,
}

/// Opening a link shows what it is for; continuing (a POST) uses it. Mail scanners that fetch
/// every link in a message therefore cannot use it up before the IT admin does.
async fn setup_page(state: web::Data<AppState>, link: web::Path<String>) -> Result<HttpResponse, WebError> {
    let found = usable_link(state.store.as_ref(), &link).await?;
    html(&SetupPage {
        page: Frame::anonymous(Area::Portal, "Set up provisioning"),
        tenant: found.tenant.to_string(),
        expires: format_rfc3339(found.expires_at),
        action: format!("/portal/setup/{link}"),
    })
}

async fn open_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    link: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    same_origin(&req, &state)?;
    let found = usable_link(state.store.as_ref(), &link).await?;
    let opened = session::open(Area::Portal, SessionScope::Portal(found.tenant.clone()));
    if !state.store.use_portal_link(&found.id, now_micros(), opened.session).await? {
        return Err(WebError::LinkUnusable("was used already"));
    }
    tracing::info!(tenant = %found.tenant, link_id = %found.id, "setup link used");
    let mut response = see_other("/portal");
    response.add_cookie(&opened.cookie).map_err(|_| WebError::BadRequest("the session could not be opened".into()))?;
    Ok(response)
}

pub struct IdpOption {
    pub value: &'static str,
    pub name: &'static str,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "portal_overview.html")]
struct OverviewPage {
    page: Frame,
    scim_url: String,
    idps: Vec<IdpOption>,
    ready: bool,
    findings: Vec<Finding>,
}

/// The tenant's readiness findings, as the admin API reports them.
pub(super) async fn findings(state: &AppState, tenant: &Tenant) -> Result<Vec<Finding>, WebError> {
    let facts = state.store.readiness(&tenant.name).await?;
    Ok(facts.findings(&tenant.settings, state.settings.default_rate_per_second()))
}

pub(super) fn is_ready(findings: &[Finding]) -> bool {
    !findings.iter().any(|f| f.severity == domain::Severity::Warning)
}

async fn overview(
    session: PortalSession,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let tenant = state.store.tenant(&session.tenant).await?;
    let findings = findings(&state, &tenant).await?;
    let current = tenant.settings.idp_profile;
    let idps = IdpProfile::ALL
        .into_iter()
        .map(|idp| IdpOption { value: idp.as_str(), name: steps::idp_name(idp), checked: idp == current })
        .collect();
    html(&OverviewPage {
        page: Frame::portal(format!("Provisioning for {}", tenant.name), tenant.name.as_str(), &session.csrf_token, ""),
        scim_url: urls(&req, &state, &tenant.name).0,
        idps,
        ready: is_ready(&findings),
        findings,
    })
}

#[derive(Deserialize)]
struct IdpForm {
    #[serde(default)]
    csrf: String,
    idp: IdpProfile,
}

async fn choose_idp(
    session: PortalSession,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, WebError> {
    let body: IdpForm = form(body).await?;
    check_form(&req, &state, &session.csrf_token, &body.csrf)?;
    let update = TenantUpdate { idp_profile: Some(body.idp), ..TenantUpdate::default() };
    state.store.update_tenant(&session.tenant, &update).await?;
    tracing::info!(tenant = %session.tenant, idp = body.idp.as_str(), "IdP chosen in the setup portal");
    Ok(see_other("/portal/steps"))
}

#[derive(Template)]
#[template(path = "portal_steps.html")]
struct StepsPage {
    page: Frame,
    guide: Guide,
}

async fn idp_steps(
    session: PortalSession,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let tenant = state.store.tenant(&session.tenant).await?;
    let (scim_url, token_url) = urls(&req, &state, &tenant.name);
    let oauth = tenant.settings.auth_methods == AuthMethods::OAuth;
    let guide = steps::guide(tenant.settings.idp_profile, &scim_url, &token_url, oauth);
    html(&StepsPage {
        page: Frame::portal(format!("Connect {}", guide.name), tenant.name.as_str(), &session.csrf_token, "/steps"),
        guide,
    })
}

/// A credential as listed: never its secret.
pub struct CredentialRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub state: &'static str,
    pub last_used: String,
}

#[derive(Template)]
#[template(path = "portal_credential.html")]
struct CredentialPage {
    page: Frame,
    /// `token` or `OAuth client`.
    kind: &'static str,
    rows: Vec<CredentialRow>,
    /// The new credential, on the one response that shows it.
    revealed: Vec<Value>,
}

/// The tenant takes OAuth clients only.
fn uses_oauth(tenant: &Tenant) -> bool {
    tenant.settings.auth_methods == AuthMethods::OAuth
}

async fn credential_rows(store: &dyn Store, tenant: &Tenant) -> Result<Vec<CredentialRow>, WebError> {
    let now = now_micros();
    if uses_oauth(tenant) {
        let clients = store.list_oauth_clients(&tenant.name).await?;
        return Ok(clients
            .iter()
            .map(|c| CredentialRow {
                id: c.id.to_string(),
                name: c.name.clone().unwrap_or_default(),
                created: format_rfc3339(c.created_at),
                state: clients::state(&c.validity, now),
                last_used: "-".into(),
            })
            .collect());
    }
    let tokens = store.list_tokens(TokenOwner::Tenant(&tenant.name)).await?;
    Ok(tokens
        .iter()
        .map(|t| CredentialRow {
            id: t.id.to_string(),
            name: t.name.clone().unwrap_or_default(),
            created: format_rfc3339(t.created_at),
            state: issuing::state(t, now),
            last_used: issuing::date(t.last_used_at),
        })
        .collect())
}

async fn credential_page(
    session: &PortalSession,
    state: &AppState,
    tenant: &Tenant,
    revealed: Vec<Value>,
) -> Result<HttpResponse, WebError> {
    html(&CredentialPage {
        page: Frame::portal("Credential", tenant.name.as_str(), &session.csrf_token, "/credential"),
        kind: if uses_oauth(tenant) { "OAuth client" } else { "token" },
        rows: credential_rows(state.store.as_ref(), tenant).await?,
        revealed,
    })
}

async fn credential(session: PortalSession, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let tenant = state.store.tenant(&session.tenant).await?;
    credential_page(&session, &state, &tenant, Vec::new()).await
}

#[derive(Deserialize)]
struct GenerateForm {
    #[serde(default)]
    csrf: String,
    /// How long earlier credentials keep working: `0s` or a duration like `1h`.
    #[serde(default)]
    grace: String,
}

/// The label of credentials made here, in listings.
const PORTAL_CREDENTIAL: &str = "setup portal";

async fn generate_credential(
    session: PortalSession,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, WebError> {
    let body: GenerateForm = form(body).await?;
    check_form(&req, &state, &session.csrf_token, &body.csrf)?;
    let grace = match body.grace.trim() {
        "" | "0" | "0s" => std::time::Duration::ZERO,
        text => parse_duration(text, "grace period")?,
    };
    let tenant = state.store.tenant(&session.tenant).await?;
    let request = TokenRequest::parse(None, Some(PORTAL_CREDENTIAL), None, None)?;
    let (scim_url, token_url) = urls(&req, &state, &tenant.name);
    let scim_url = steps::tenant_url_for(tenant.settings.idp_profile, &scim_url);
    let mut revealed = vec![Value { label: "Tenant URL", value: scim_url, id: "tenant-url".into() }];
    if uses_oauth(&tenant) {
        let store = state.store.as_ref();
        let live =
            store.list_oauth_clients(&tenant.name).await?.into_iter().find(|c| {
                matches!(c.credential, ClientCredential::Secret(_)) && c.validity.check(now_micros()).is_ok()
            });
        let (id, secret) = match live {
            Some(client) => {
                let secret =
                    clients::rotate(store, &tenant.name, &client.id, client.validity.expires_at, grace).await?;
                (client.id, secret)
            }
            None => {
                let created = clients::create(store, &tenant.name, &request, None).await?;
                let secret = created.secret.ok_or(WebError::BadRequest("the client has no secret".into()))?;
                (created.id, secret)
            }
        };
        tracing::info!(tenant = %tenant.name, client_id = %id, "OAuth client secret issued in the setup portal");
        revealed.push(Value { label: "Token Endpoint", value: token_url, id: "token-url".into() });
        revealed.push(Value { label: "Client Identifier", value: id.to_string(), id: "client-id".into() });
        revealed.push(Value { label: "Client Secret", value: secret.plaintext.clone(), id: "secret".into() });
    } else {
        let token = issuing::regenerate(state.store.as_ref(), &tenant.name, &request, grace).await?;
        tracing::info!(tenant = %tenant.name, token_id = %token.id, grace_seconds = grace.as_secs(), "token issued in the setup portal");
        revealed.push(Value { label: "Secret Token", value: token.plaintext.clone(), id: "secret".into() });
    }
    credential_page(&session, &state, &tenant, revealed).await
}

pub struct MappingRow {
    pub group: String,
    pub organization: String,
    pub role: &'static str,
}

#[derive(Template)]
#[template(path = "portal_organizations.html")]
struct OrganizationsPage {
    page: Frame,
    autoprovision: bool,
    mappings: Vec<MappingRow>,
    links: Vec<GroupOrganization>,
    organizations: Vec<Organization>,
}

pub(super) fn mapping_row(m: &GroupMapping) -> MappingRow {
    let group = match &m.matcher {
        GroupMatcher::DisplayName(name) => format!("groups named {name}"),
        GroupMatcher::Id(id) => format!("group {id}"),
    };
    MappingRow { group, organization: m.organization.as_str().to_owned(), role: m.role.as_str() }
}

async fn organizations(session: PortalSession, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let tenant = state.store.tenant(&session.tenant).await?;
    let mappings = state.store.list_mappings(&tenant.name).await?.iter().map(mapping_row).collect();
    html(&OrganizationsPage {
        page: Frame::portal("Organizations", tenant.name.as_str(), &session.csrf_token, "/organizations"),
        autoprovision: tenant.settings.autoprovision,
        mappings,
        links: state.store.group_organizations(&tenant.name).await?,
        organizations: state.store.list_organizations(&tenant.name).await?,
    })
}

async fn activity(
    session: PortalSession,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let frame = Frame::portal("Activity", session.tenant.as_str(), &session.csrf_token, "/activity");
    super::activity::page(&req, state.store.as_ref(), &session.tenant, frame, "/portal/activity").await
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
pub(super) struct SignedOutPage {
    pub page: Frame,
}

async fn sign_out(
    session: PortalSession,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, WebError> {
    let body: CsrfForm = form(body).await?;
    check_form(&req, &state, &session.csrf_token, &body.csrf)?;
    state.store.end_web_session(&session.id).await?;
    let mut response = html(&SignedOutPage { page: Frame::anonymous(Area::Portal, "Signed out") })?;
    response
        .add_cookie(&session::removal(Area::Portal))
        .map_err(|_| WebError::BadRequest("the session cookie could not be removed".into()))?;
    Ok(response)
}
