//! `GET /scim/v2/{org}/readiness`: what will go wrong before the IT admin switches provisioning
//! on, readable with the tenant's own Secret Token (any scope).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::scim_json;
use crate::auth::TenantContext;
use crate::error::ScimError;
use crate::share::Work;
use crate::state::AppState;

pub async fn readiness(ctx: TenantContext, state: web::Data<AppState>) -> Result<HttpResponse, ScimError> {
    let name = ctx.tenant.name.clone();
    let default_rate = state.settings.default_rate_per_second();
    let report = state
        .in_turn(&ctx.tenant, Work::Read, |store, _| async move {
            domain::readiness_report(store.as_ref(), default_rate, &name).await
        })
        .await?;
    Ok(scim_json(StatusCode::OK, &report))
}
