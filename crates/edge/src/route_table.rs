//! The resource paths the application routes, recorded as they are registered. actix-web cannot
//! list its routes; the API test (`tests/api/openapi.rs`) holds these against the OpenAPI
//! document `openapi/scimgate.yaml`, so a route added without being documented fails a test.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use actix_web::{web, Resource};

static PATHS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// `web::resource(path)` for a resource inside the scope whose full path is `scope`; records
/// `scope + path`, the path clients call.
pub fn resource(scope: &str, path: &str) -> Resource {
    PATHS.lock().unwrap_or_else(PoisonError::into_inner).insert(format!("{scope}{path}"));
    web::resource(path)
}

/// Every full path registered through [`resource`] by the applications built in this process.
pub fn paths() -> BTreeSet<String> {
    PATHS.lock().unwrap_or_else(PoisonError::into_inner).clone()
}
