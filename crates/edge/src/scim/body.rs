//! Reading request bodies and query strings into SCIM values, with SCIM errors for every way
//! they can be wrong.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use proto::wire::SearchRequest;
use serde_json::Value;

use crate::error::ScimError;
use crate::memory::{BodyBudget, Reservation, NODE_COST};

/// Read and parse a JSON body of at most `limit` bytes, within the memory `budget`: the
/// reservation returned with it is held until the request is answered. `application/scim+json`
/// and `application/json` are accepted, and so is a missing content type (some IdPs omit it).
pub async fn read_json(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    budget: &BodyBudget,
) -> Result<(Value, Reservation), ScimError> {
    if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
        let content_type = content_type.to_str().unwrap_or_default();
        let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if !(essence == "application/scim+json" || essence == "application/json" || essence.is_empty()) {
            return Err(ScimError::UnsupportedMediaType(content_type.to_owned()));
        }
    }
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ScimError::PayloadTooLarge { limit });
    }
    let mut reservation = Reservation::empty();
    budget.reserve(&mut reservation, declared.unwrap_or(limit).min(limit)).await?;
    let body = read_body(payload, limit, declared).await?;
    let nodes = crate::memory::json_nodes(&body);
    let parsed = nodes.saturating_mul(NODE_COST);
    if let Some(capacity) = budget.capacity().filter(|c| body.len().saturating_add(parsed) > *c) {
        let most = capacity.saturating_sub(body.len()) / NODE_COST;
        return Err(proto::Error::too_large(format!(
            "the request body holds {nodes} JSON values and keys; at most about {most} are accepted"
        ))
        .into());
    }
    budget.reserve(&mut reservation, parsed).await?;
    Ok((parse_body(&body)?, reservation))
}

async fn read_body(
    mut payload: web::Payload,
    limit: usize,
    declared: Option<usize>,
) -> Result<web::BytesMut, ScimError> {
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| proto::Error::invalid_syntax(format!("could not read the request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ScimError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    if body.is_empty() {
        return Err(proto::Error::invalid_syntax("the request body is empty").into());
    }
    Ok(body)
}

fn parse_body(body: &[u8]) -> Result<Value, ScimError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| proto::Error::invalid_syntax(format!("the request body is not valid JSON: {e}")))?;
    if proto::resource::holds_nul(&value) {
        return Err(proto::Error::invalid_value("the request body contains the character U+0000").into());
    }
    Ok(value)
}

/// The query string as pairs; `+` decodes to a space as in HTML forms (Okta relies on it).
pub fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, ScimError> {
    serde_urlencoded::from_str(req.query_string())
        .map_err(|e| proto::Error::invalid_syntax(format!("malformed query string: {e}")).into())
}

pub fn search_from_query(req: &HttpRequest) -> Result<SearchRequest, ScimError> {
    Ok(SearchRequest::from_query(&query_pairs(req)?)?)
}

/// `attributes` and `excludedAttributes` from the query string (for single-resource requests).
pub fn projection_params(req: &HttpRequest) -> Result<(Option<String>, Option<String>), ScimError> {
    let pairs = query_pairs(req)?;
    let get = |name: &str| pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    Ok((get("attributes"), get("excludedAttributes")))
}
