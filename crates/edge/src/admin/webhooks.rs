//! `/admin/v1/tenants/{org}/webhooks`: a tenant's webhook endpoints, their delivery state and
//! dead letters. A signing secret is shown once, in the response that creates the endpoint.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use domain::{format_rfc3339, DeadLetter, DomainError, Entity, TenantName, WebhookEndpoint};
use serde::{Deserialize, Serialize};

use super::{json_body, method_not_allowed, tenant_name, AdminError, Operator, SCOPE};
use crate::route_table;
use crate::state::AppState;
use crate::webhooks::{generate_secret, parse_url};

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        route_table::resource(SCOPE, "/tenants/{org}/webhooks")
            .route(web::get().to(list))
            .route(web::post().to(create))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        route_table::resource(SCOPE, "/tenants/{org}/webhooks/{id}")
            .route(web::get().to(get))
            .route(web::patch().to(update))
            .route(web::delete().to(remove))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        route_table::resource(SCOPE, "/tenants/{org}/webhooks/{id}/dead-letters")
            .route(web::get().to(dead_letters))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        route_table::resource(SCOPE, "/tenants/{org}/webhooks/{id}/dead-letters/redeliver")
            .route(web::post().to(redeliver_all))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        route_table::resource(SCOPE, "/tenants/{org}/webhooks/{id}/dead-letters/{seq}/redeliver")
            .route(web::post().to(redeliver_one))
            .default_service(web::to(method_not_allowed)),
    );
}

#[derive(Debug, Serialize)]
struct WebhookView {
    id: String,
    url: String,
    enabled: bool,
    created: String,
    /// The last event sequence delivered or dead-lettered: delivery resumes after it.
    cursor: i64,
    /// Failed attempts at the event after the cursor.
    attempts: u32,
    next_attempt: Option<String>,
    last_error: Option<String>,
    dead_letters: usize,
}

async fn view(state: &AppState, tenant: &TenantName, endpoint: &WebhookEndpoint) -> Result<WebhookView, AdminError> {
    let dead_letters = state.store.dead_letters(tenant, &endpoint.id).await?.len();
    Ok(WebhookView {
        id: endpoint.id.clone(),
        url: endpoint.url.to_string(),
        enabled: endpoint.enabled,
        created: format_rfc3339(endpoint.created_at),
        cursor: endpoint.cursor,
        attempts: endpoint.attempts,
        next_attempt: endpoint.next_attempt_at.map(format_rfc3339),
        last_error: endpoint.last_error.clone(),
        dead_letters,
    })
}

#[derive(Serialize)]
struct CreatedWebhook<'a> {
    #[serde(flatten)]
    webhook: WebhookView,
    /// The signing secret, shown this once.
    secret: &'a str,
}

#[derive(Debug, Serialize)]
struct DeadLetterView {
    seq: i64,
    #[serde(rename = "type")]
    event_type: String,
    attempts: u32,
    last_error: String,
    failed: String,
    /// When an operator asked for it to be sent again (cleared when that try fails).
    redelivery_requested: Option<String>,
}

impl From<&DeadLetter> for DeadLetterView {
    fn from(dead: &DeadLetter) -> Self {
        Self {
            seq: dead.seq,
            event_type: dead.event_type.clone(),
            attempts: dead.attempts,
            last_error: dead.last_error.clone(),
            failed: format_rfc3339(dead.failed_at),
            redelivery_requested: dead.redeliver_requested_at.map(format_rfc3339),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    url: Option<String>,
    /// Deliver every event the tenant has, not only those after now.
    #[serde(default)]
    from_start: bool,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    enabled: Option<bool>,
}

async fn endpoint(state: &AppState, tenant: &TenantName, id: &str) -> Result<WebhookEndpoint, AdminError> {
    state.store.webhook(tenant, id).await.map_err(|e| match e {
        DomainError::NotFound(_) => AdminError::NotFound(format!("webhook `{id}` not found")),
        e => e.into(),
    })
}

pub async fn list(_: Operator, state: web::Data<AppState>, org: web::Path<String>) -> Result<HttpResponse, AdminError> {
    let tenant = tenant_name(&org)?;
    let mut views = Vec::new();
    for endpoint in state.store.list_webhooks(&tenant).await? {
        views.push(view(&state, &tenant, &endpoint).await?);
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "webhooks": views })))
}

pub async fn create(
    _: Operator,
    state: web::Data<AppState>,
    org: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let tenant = tenant_name(&org)?;
    let body: CreateWebhook = json_body(body).await?;
    let url = body.url.ok_or_else(|| AdminError::BadRequest("url is required".into()))?;
    let url = parse_url(&url).map_err(AdminError::BadRequest)?;
    let secret = generate_secret();
    let endpoint = state.store.add_webhook(&tenant, &url, &secret, body.from_start).await?;
    tracing::info!(tenant = %tenant, webhook = %endpoint.id, from_start = body.from_start, "webhook added");
    if body.from_start {
        state.deliveries.notify_one();
    }
    let created = CreatedWebhook { webhook: view(&state, &tenant, &endpoint).await?, secret: secret.expose() };
    // The one response that carries the secret: never cached.
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::LOCATION, format!("/admin/v1/tenants/{tenant}/webhooks/{}", endpoint.id)))
        .json(created))
}

pub async fn get(
    _: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (org, id) = path.into_inner();
    let tenant = tenant_name(&org)?;
    let endpoint = endpoint(&state, &tenant, &id).await?;
    Ok(HttpResponse::Ok().json(view(&state, &tenant, &endpoint).await?))
}

pub async fn update(
    _: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Payload,
) -> Result<HttpResponse, AdminError> {
    let (org, id) = path.into_inner();
    let tenant = tenant_name(&org)?;
    let body: UpdateWebhook = json_body(body).await?;
    let enabled = body.enabled.ok_or_else(|| AdminError::BadRequest("enabled (true or false) is required".into()))?;
    let endpoint = state.store.set_webhook_enabled(&tenant, &id, enabled).await.map_err(|e| not_found(e, &id))?;
    tracing::info!(tenant = %tenant, webhook = %id, enabled, "webhook changed");
    if enabled {
        state.deliveries.notify_one();
    }
    Ok(HttpResponse::Ok().json(view(&state, &tenant, &endpoint).await?))
}

pub async fn remove(
    _: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (org, id) = path.into_inner();
    let tenant = tenant_name(&org)?;
    state.store.delete_webhook(&tenant, &id).await.map_err(|e| not_found(e, &id))?;
    tracing::info!(tenant = %tenant, webhook = %id, "webhook removed");
    Ok(HttpResponse::NoContent().finish())
}

pub async fn dead_letters(
    _: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (org, id) = path.into_inner();
    let tenant = tenant_name(&org)?;
    let dead = state.store.dead_letters(&tenant, &id).await.map_err(|e| not_found(e, &id))?;
    let views: Vec<DeadLetterView> = dead.iter().map(DeadLetterView::from).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "dead_letters": views })))
}

pub async fn redeliver_all(
    _: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (org, id) = path.into_inner();
    redeliver(&state, &org, &id, None).await
}

pub async fn redeliver_one(
    _: Operator,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (org, id, seq) = path.into_inner();
    let seq = seq.parse::<i64>().map_err(|_| AdminError::NotFound(format!("dead letter `{seq}` not found")))?;
    redeliver(&state, &org, &id, Some(seq)).await
}

async fn redeliver(state: &AppState, org: &str, id: &str, seq: Option<i64>) -> Result<HttpResponse, AdminError> {
    let tenant = tenant_name(org)?;
    let requested = state.store.request_redelivery(&tenant, id, seq).await.map_err(|e| match (e, seq) {
        (DomainError::NotFound(Entity::DeadLetter), Some(seq)) => {
            AdminError::NotFound(format!("webhook `{id}` has no dead letter {seq}"))
        }
        (e, _) => not_found(e, id),
    })?;
    tracing::info!(tenant = %tenant, webhook = %id, ?seq, requested, "redelivery requested");
    state.deliveries.notify_one();
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "requested": requested })))
}

/// The store's "webhook not found" with the id named.
fn not_found(e: domain::DomainError, id: &str) -> AdminError {
    match e {
        DomainError::NotFound(Entity::Webhook) => AdminError::NotFound(format!("webhook `{id}` not found")),
        e => e.into(),
    }
}
