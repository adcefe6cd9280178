//! The provisioning activity of a tenant, as both web interfaces show it: newest first, filtered
//! by outcome, a page at a time.

use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use domain::{format_rfc3339, Activity, ActivityLimit, ActivityQuery, OutcomeClass, Store, TenantName};
use serde::Deserialize;

use super::pages::{html, Frame};
use super::WebError;

/// Records on one page.
const PAGE: u32 = 50;

#[derive(Deserialize, Default)]
struct Params {
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    cursor: String,
}

pub struct OutcomeOption {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

pub struct Row {
    pub at: String,
    pub method: &'static str,
    pub resource: String,
    pub status: u16,
    pub outcome: &'static str,
    pub scim_type: String,
    pub detail: String,
    pub latency_ms: String,
    pub idp: &'static str,
    pub credential: String,
}

#[derive(Template)]
#[template(path = "activity.html")]
struct ActivityPage {
    page: Frame,
    /// Where the filter form and the next-page link point.
    path: String,
    outcomes: Vec<OutcomeOption>,
    /// An outcome was chosen.
    filtered: bool,
    rows: Vec<Row>,
    /// The query string of the next (older) page.
    next: Option<String>,
}

fn row(activity: &Activity) -> Row {
    let r = &activity.record;
    let resource = match &r.resource_id {
        Some(id) => format!("{} {id}", r.resource_type.as_str()),
        None => r.resource_type.as_str().to_owned(),
    };
    Row {
        at: format_rfc3339(r.at),
        method: r.method.as_str(),
        resource,
        status: r.status,
        outcome: r.outcome().as_str(),
        scim_type: r.scim_type.clone().unwrap_or_default(),
        detail: r.detail.clone().unwrap_or_default(),
        latency_ms: format!("{:.1}", r.latency_us as f64 / 1000.0),
        idp: r.idp.map(super::steps::idp_name).unwrap_or("-"),
        credential: r.credential.as_ref().map(|c| format!("{} {}", c.kind(), c.id())).unwrap_or_else(|| "-".into()),
    }
}

fn label(outcome: OutcomeClass) -> &'static str {
    match outcome {
        OutcomeClass::Success => "Succeeded",
        OutcomeClass::ClientError => "Refused (4xx)",
        OutcomeClass::ServerError => "Failed (5xx)",
    }
}

/// The activity page of `tenant`, at `path`, with the filter and cursor of the request's query.
pub async fn page(
    req: &HttpRequest,
    store: &dyn Store,
    tenant: &TenantName,
    frame: Frame,
    path: &str,
) -> Result<HttpResponse, WebError> {
    let params: Params = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| WebError::BadRequest(format!("The query is not valid: {e}.")))?;
    let outcome = match params.outcome.as_str() {
        "" => None,
        text => Some(text.parse::<OutcomeClass>()?),
    };
    let cursor = match params.cursor.as_str() {
        "" => None,
        text => Some(text.parse()?),
    };
    let query = ActivityQuery { outcome, cursor, limit: ActivityLimit::new(PAGE)?, ..ActivityQuery::default() };
    let found = store.list_activity(tenant, &query).await?;
    let next = found.next_cursor.map(|cursor| {
        let outcome = outcome.map(OutcomeClass::as_str).unwrap_or_default();
        serde_urlencoded::to_string([("outcome", outcome), ("cursor", &cursor.to_string())]).unwrap_or_default()
    });
    let outcomes = OutcomeClass::ALL
        .into_iter()
        .map(|o| OutcomeOption { value: o.as_str(), label: label(o), selected: Some(o) == outcome })
        .collect();
    html(&ActivityPage {
        page: frame,
        path: path.to_owned(),
        outcomes,
        filtered: outcome.is_some(),
        rows: found.items.iter().map(row).collect(),
        next,
    })
}
