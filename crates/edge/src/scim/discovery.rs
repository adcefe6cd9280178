//! Discovery endpoints (RFC 7644 §4): they describe exactly what this server does.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use proto::wire::{self, Limits, ListResponse};
use serde_json::Value;

use super::scim_json;
use crate::auth::TenantContext;
use crate::error::ScimError;
use crate::state::AppState;

pub async fn service_provider_config(ctx: TenantContext, state: web::Data<AppState>) -> HttpResponse {
    let limits =
        Limits { max_results: state.settings.max_results, max_payload_bytes: state.settings.max_payload_bytes as u64 };
    scim_json(StatusCode::OK, &wire::service_provider_config(&ctx.base_url, limits))
}

pub async fn schemas(ctx: TenantContext) -> HttpResponse {
    list(wire::schemas(&ctx.base_url))
}

pub async fn schema(ctx: TenantContext, path: web::Path<(String, String)>) -> Result<HttpResponse, ScimError> {
    find(wire::schemas(&ctx.base_url), &path.1, "schema")
}

pub async fn resource_types(ctx: TenantContext) -> HttpResponse {
    list(wire::resource_types(&ctx.base_url))
}

pub async fn resource_type(ctx: TenantContext, path: web::Path<(String, String)>) -> Result<HttpResponse, ScimError> {
    find(wire::resource_types(&ctx.base_url), &path.1, "resource type")
}

fn list(items: Vec<Value>) -> HttpResponse {
    let response = ListResponse::new(items.len() as u64, 1, items);
    scim_json(StatusCode::OK, &serde_json::to_value(response).unwrap_or_default())
}

fn find(items: Vec<Value>, id: &str, what: &str) -> Result<HttpResponse, ScimError> {
    items
        .into_iter()
        .find(|item| item.get("id").and_then(Value::as_str) == Some(id))
        .map(|item| scim_json(StatusCode::OK, &item))
        .ok_or_else(|| ScimError::NotFound(format!("{what} `{id}` not found")))
}
