//! Liveness and readiness for orchestrators.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::shutdown::Draining;
use crate::state::AppState;

/// Alive: the process answers. Never touches the database, so a database outage does not get
/// healthy pods restarted.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready: the database answers and every migration is applied. Redis is reported but does not
/// decide readiness: without it the gateway still serves, with limits per process. Not ready
/// while draining before shutdown, so the orchestrator stops routing here first.
pub async fn readyz(state: web::Data<AppState>, draining: Option<web::Data<Draining>>) -> HttpResponse {
    let redis = state.limits.backend().describe();
    if draining.is_some_and(|d| d.is_draining()) {
        return HttpResponse::ServiceUnavailable().json(json!({ "status": "draining" }));
    }
    match state.store.check_ready().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready", "checks": { "database": "ok", "redis": redis } })),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            HttpResponse::ServiceUnavailable()
                .json(json!({ "status": "unavailable", "checks": { "database": e.to_string(), "redis": redis } }))
        }
    }
}
