//! `/admin/v1/tenants/{org}/activity`: a tenant's provisioning activity log, newest first, with
//! filters and a cursor.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::{method_not_allowed, tenant_name, AdminError, Operator, SCOPE};
use crate::activity::{activity_json, ActivityParams};
use crate::route_table;
use crate::state::AppState;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        route_table::resource(SCOPE, "/tenants/{org}/activity")
            .route(web::get().to(list))
            .default_service(web::to(method_not_allowed)),
    );
}

/// `GET activity?outcome=&status=&method=&resource_type=&since=&until=&cursor=&limit=`: one page
/// of records and the cursor of the next (`null` on the last page).
pub async fn list(
    _: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    org: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let tenant = tenant_name(&org)?;
    let params: ActivityParams = serde_urlencoded::from_str(req.query_string()).map_err(|e| {
        AdminError::BadRequest(format!(
            "query parameters are outcome, status, method, resource_type, since, until, cursor and limit: {e}"
        ))
    })?;
    let query = params.query().map_err(AdminError::BadRequest)?;
    let page = state.store.list_activity(&tenant, &query).await?;
    let activity: Vec<Value> = page.items.iter().map(activity_json).collect();
    Ok(HttpResponse::Ok().json(json!({
        "activity": activity,
        "next_cursor": page.next_cursor.map(|c| c.to_string()),
    })))
}
