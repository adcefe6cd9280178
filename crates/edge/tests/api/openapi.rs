//! `openapi/scimgate.yaml` held against the real server, both ways: every documented operation
//! is routed, and every path the application registers, with every method it answers there, is
//! documented. Registered paths come from `edge::route_table`; which methods a path answers is
//! probed over HTTP, since a method the path does not serve gets the router's 405.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use domain::testing::Backend;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::{spawn_app, TestApp};

/// The methods probed on every path; any other method the document names is probed as well.
const PROBED: [&str; 5] = ["get", "post", "put", "patch", "delete"];
/// The keys of an OpenAPI path item that are operations.
const OPERATIONS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
/// What both catch-all handlers (the App's and the admin scope's) answer for an unrouted path.
const NO_SUCH_ENDPOINT: &str = "no such endpoint";
/// A tenant name the admin probes use: none exists, so no probe changes anything.
const ABSENT_TENANT: &str = "openapi-probe-absent";

fn document() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../openapi/scimgate.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

/// The document's operations: path → methods (lowercase).
fn documented(doc: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let paths = doc["paths"].as_object().expect("the document has `paths`");
    paths
        .iter()
        .map(|(path, item)| {
            let item = item.as_object().unwrap_or_else(|| panic!("{path} is not a path item"));
            let methods = item.keys().filter(|k| OPERATIONS.contains(&k.as_str())).cloned().collect();
            (path.clone(), methods)
        })
        .collect()
}

/// How the server answered a method on a path.
#[derive(Debug, PartialEq)]
enum Answer {
    /// A handler of that path and method ran (whatever it made of the request).
    Routed(u16),
    /// The path is routed, the method is not: the router's 405.
    MethodNotAllowed,
    /// No route at all: the catch-all 404.
    NoSuchEndpoint,
}

/// `path` with its parameters filled in: the test tenant for SCIM, a tenant that does not exist
/// for the admin API, a placeholder for the rest.
fn concrete(app: &TestApp, path: &str) -> String {
    let org = if path.starts_with("/admin/") { ABSENT_TENANT } else { app.org.as_str() };
    path.split('/')
        .map(|segment| match segment {
            "{org}" => org,
            s if s.starts_with('{') && s.ends_with('}') => "openapi-probe",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn answer(app: &TestApp, method: &str, path: &str) -> Answer {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
    let token = if path.starts_with("/admin/") { &app.operator_token } else { &app.token };
    let url = format!("{}{}", app.address, concrete(app, path));
    let response = app.client.request(method, url).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    match status {
        405 => Answer::MethodNotAllowed,
        404 if body["detail"] == NO_SUCH_ENDPOINT => Answer::NoSuchEndpoint,
        status => Answer::Routed(status),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_describes_every_route_and_only_routes() {
    let doc = document();
    let documented = documented(&doc);
    let app = spawn_app(Backend::Sqlite).await.expect("SQLite is always available");
    // Answered once, the application has been built and its routes recorded.
    assert_eq!(answer(&app, "get", "/healthz").await, Answer::Routed(200));

    let registered = edge::route_table::paths();
    let in_document: BTreeSet<String> = documented.keys().cloned().collect();
    let undocumented: Vec<_> = registered.difference(&in_document).collect();
    let unregistered: Vec<_> = in_document.difference(&registered).collect();
    assert!(undocumented.is_empty(), "routed but not in openapi/scimgate.yaml: {undocumented:?}");
    assert!(unregistered.is_empty(), "in openapi/scimgate.yaml but not registered: {unregistered:?}");

    let mut problems = Vec::new();
    for (path, methods) in &documented {
        let probed: BTreeSet<&str> = PROBED.iter().copied().chain(methods.iter().map(String::as_str)).collect();
        for method in probed {
            let answer = answer(&app, method, path).await;
            // An undocumented method may get the 405 or, on the App's own routes (`App::route`
            // guards the method), the catch-all 404: either way no handler answers it.
            match (methods.contains(method), answer) {
                (true, Answer::Routed(_)) | (false, Answer::MethodNotAllowed | Answer::NoSuchEndpoint) => {}
                (true, answer) => problems.push(format!("documented {method} {path} is not routed: {answer:?}")),
                (false, Answer::Routed(status)) => {
                    problems.push(format!("{method} {path} is routed ({status}) but not documented"))
                }
            }
        }
    }
    assert!(problems.is_empty(), "openapi/scimgate.yaml disagrees with the server:\n{}", problems.join("\n"));
}

#[test]
fn every_reference_in_the_document_resolves() {
    fn check(doc: &Value, node: &Value, broken: &mut Vec<String>) {
        match node {
            Value::Object(fields) => {
                if let Some(Value::String(target)) = fields.get("$ref") {
                    let resolves = target.strip_prefix('#').is_some_and(|pointer| doc.pointer(pointer).is_some());
                    if !resolves {
                        broken.push(target.clone());
                    }
                }
                fields.values().for_each(|v| check(doc, v, broken));
            }
            Value::Array(items) => items.iter().for_each(|v| check(doc, v, broken)),
            _ => {}
        }
    }
    let doc = document();
    let mut broken = Vec::new();
    check(&doc, &doc, &mut broken);
    assert!(broken.is_empty(), "unresolved references: {broken:?}");
}

/// SCIM operations take the tenant token or an OAuth access token, admin operations the operator
/// token, the token endpoint client credentials, health checks none; so do the operations that
/// only answer 501, which never look at a token.
#[test]
fn each_api_has_its_own_kind_of_token() {
    let doc = document();
    for (path, methods) in documented(&doc) {
        for method in methods {
            let operation = &doc["paths"][&path][&method];
            let not_implemented = operation["responses"].as_object().is_some_and(|r| r.keys().eq(["501"]));
            let expected: &[&str] = match path.split('/').nth(1) {
                _ if not_implemented => &[],
                Some("scim") => &["tenantToken", "idpAccessToken"],
                Some("admin") => &["operatorToken"],
                Some("oauth2") if path.ends_with("/token") => &["oauthClientBasic"],
                _ => &[],
            };
            let security = operation.get("security").or_else(|| doc.get("security"));
            let schemes: Vec<&str> = security
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .flat_map(|requirement| requirement.keys().map(String::as_str))
                .collect();
            assert_eq!(schemes, expected, "{method} {path}");
        }
    }
}

/// The `webhooks` section describes what the deliverer sends: the headers it sets, and a body
/// whose keys are exactly the schema's, event by event.
#[test]
fn webhook_deliveries_are_described_as_sent() {
    let doc = document();
    let operation = &doc["webhooks"]["events"]["post"];
    let headers: BTreeSet<&str> = operation["parameters"]
        .as_array()
        .expect("the delivery names its headers")
        .iter()
        .filter(|p| p["in"] == "header")
        .filter_map(|p| p["name"].as_str())
        .collect();
    let sent = [edge::webhooks::SIGNATURE_HEADER, edge::webhooks::DELIVERY_HEADER, edge::webhooks::SEQUENCE_HEADER];
    assert_eq!(headers, sent.into_iter().collect(), "the documented headers are the ones set");
    let body_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str().unwrap();
    let schema = |reference: &str| doc["components"]["schemas"][reference.rsplit('/').next().unwrap()].clone();
    let delivery_schema = schema(body_ref);
    let event_schema = schema(delivery_schema["properties"]["events"]["items"]["$ref"].as_str().unwrap());

    let tenant = domain::TenantName::parse("acme").unwrap();
    let event = domain::Event {
        seq: 41,
        event_type: domain::EventType::MembershipAdded,
        occurred_at: 1_767_261_600_123_456,
        data: serde_json::json!({"role": "member"}),
    };
    let body: Value = serde_json::from_slice(&edge::webhooks::delivery_body(&tenant, &[event])).unwrap();
    let keys = |value: &Value| value.as_object().unwrap().keys().cloned().collect::<BTreeSet<String>>();
    for (value, schema) in [(&body, &delivery_schema), (&body["events"][0], &event_schema)] {
        assert_eq!(keys(value), keys(&schema["properties"]), "{value} against {schema}");
        let required: BTreeSet<String> =
            schema["required"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect();
        assert_eq!(keys(value), required, "every key is always sent");
    }
    let types = doc["components"]["schemas"]["EventType"]["enum"].as_array().unwrap();
    assert!(types.contains(&body["events"][0]["type"]), "{}", body["events"][0]["type"]);
}
