//! `/admin/v1/tenants/{org}/events`: the event feed, for products that poll instead of (or as
//! well as) receiving webhooks, and for replaying from any point.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{method_not_allowed, tenant_name, AdminError, Operator, SCOPE};
use crate::route_table;
use crate::state::AppState;
use crate::webhooks::event_json;

/// Events per page without `limit`, and the most one page may hold.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        route_table::resource(SCOPE, "/tenants/{org}/events")
            .route(web::get().to(feed))
            .default_service(web::to(method_not_allowed)),
    );
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

/// `GET events?after=<seq>&limit=<n>`: the events after `after`, in order, and the cursor to
/// pass as `after` next (the last sequence returned, or `after` itself when there was none).
pub async fn feed(
    _: Operator,
    req: HttpRequest,
    state: web::Data<AppState>,
    org: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let tenant = tenant_name(&org)?;
    let query: FeedQuery = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| AdminError::BadRequest(format!("query parameters are `after` and `limit`, both integers: {e}")))?;
    let after = query.after.unwrap_or(0);
    if after < 0 {
        return Err(AdminError::BadRequest("after must be 0 or a sequence number".into()));
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AdminError::BadRequest(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let events = state.store.events_after(&tenant, after, limit).await?;
    let next_cursor = events.last().map_or(after, |e| e.seq);
    let events: Vec<Value> = events.iter().map(event_json).collect();
    Ok(HttpResponse::Ok().json(json!({ "events": events, "next_cursor": next_cursor })))
}
