//! Replays of what real identity providers send, kept as data in `tests/replay/<idp>-<dialect>.json`.
//!
//! Each file is one IdP's request sequence (test connection, create, update, disable, re-enable,
//! delete, groups and memberships, and that IdP's deviations from RFC 7644). Every step names the
//! IdP behaviour it reproduces and the research source it comes from, sends the request over real
//! HTTP exactly as written (path and query bytes, headers, body), and asserts what the IdP needs
//! back. Values captured from earlier responses (`"capture": {"alice": "/id"}`) are substituted
//! as `${alice}` in later paths, headers, bodies and expectations.
//!
//! File format (unknown keys are refused, so a typo cannot silently weaken a test):
//! - `idp`, `dialect`, `description`; `sources`: tag → citation; `defaults.headers` sent with
//!   every request; `defaults.query`: a query parameter put first on every request.
//! - `steps[]`: `name`, `behaviour`, `sources` (tags), `request`, `expect`, `capture`.
//! - `request`: `method`, `path` (appended to the tenant base URL), `headers` (a `null` value
//!   drops a default header; `Authorization: Bearer ${token}` is sent unless overridden),
//!   `body` (JSON), or `body_from` (a captured document) with `body_merge` (RFC 7386 merge patch).
//! - `expect`: `status`; `equals` (JSON pointer → exact value); `absent`, `non_empty` (pointers);
//!   `member_values` (pointer → the set of `value`s of that array); `scim_error` (the RFC 7644
//!   §3.12 shape, with `scimType` or `null` for none); `empty_body`.

use std::collections::{BTreeMap, HashMap};

use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::both_backends;
use crate::helpers::TestApp;

both_backends!(
    entra_legacy_dialect,
    entra_aad_opt_scim_062020_dialect,
    okta_oin_app,
    okta_aiw_app,
    okta_spec_test,
    onelogin,
    jumpcloud,
    ping_federate,
    generic_rfc_client,
);

/// Every replay file, with its contents compiled in (so an edit rebuilds the tests).
const FILES: &[(&str, &str)] = &[
    ("entra-legacy.json", include_str!("../replay/entra-legacy.json")),
    ("entra-aadoptscim062020.json", include_str!("../replay/entra-aadoptscim062020.json")),
    ("okta-oin.json", include_str!("../replay/okta-oin.json")),
    ("okta-aiw.json", include_str!("../replay/okta-aiw.json")),
    ("okta-spec-test.json", include_str!("../replay/okta-spec-test.json")),
    ("onelogin.json", include_str!("../replay/onelogin.json")),
    ("jumpcloud.json", include_str!("../replay/jumpcloud.json")),
    ("ping.json", include_str!("../replay/ping.json")),
    ("generic.json", include_str!("../replay/generic.json")),
];

async fn entra_legacy_dialect(app: TestApp) {
    replay(&app, "entra-legacy.json").await;
}
async fn entra_aad_opt_scim_062020_dialect(app: TestApp) {
    replay(&app, "entra-aadoptscim062020.json").await;
}
async fn okta_oin_app(app: TestApp) {
    replay(&app, "okta-oin.json").await;
}
async fn okta_aiw_app(app: TestApp) {
    replay(&app, "okta-aiw.json").await;
}
async fn okta_spec_test(app: TestApp) {
    replay(&app, "okta-spec-test.json").await;
}
async fn onelogin(app: TestApp) {
    replay(&app, "onelogin.json").await;
}
async fn jumpcloud(app: TestApp) {
    replay(&app, "jumpcloud.json").await;
}
async fn ping_federate(app: TestApp) {
    replay(&app, "ping.json").await;
}
async fn generic_rfc_client(app: TestApp) {
    replay(&app, "generic.json").await;
}

/// A file dropped into `tests/replay/` without a test here would never run.
#[test]
fn every_replay_file_is_replayed() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/replay");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = FILES.iter().map(|(name, _)| (*name).to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

/// Every file parses, and every step cites a source the file lists.
#[test]
fn replay_files_are_well_formed() {
    for (name, text) in FILES {
        let replay = parse(name, text);
        assert!(!replay.steps.is_empty(), "{name}: no steps");
        assert!(name.starts_with(&format!("{}-", replay.idp)) || *name == format!("{}.json", replay.idp), "{name}");
        for (i, step) in replay.steps.iter().enumerate() {
            assert!(!step.behaviour.trim().is_empty(), "{name} step {i} ({}): no behaviour", step.name);
            assert!(!step.sources.is_empty(), "{name} step {i} ({}): no source", step.name);
            for tag in &step.sources {
                assert!(replay.sources.contains_key(tag), "{name} step {i} ({}): unknown source `{tag}`", step.name);
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Replay {
    idp: String,
    #[allow(dead_code)]
    dialect: String,
    #[allow(dead_code)]
    description: String,
    sources: BTreeMap<String, String>,
    #[serde(default)]
    defaults: Defaults,
    steps: Vec<Step>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    #[serde(default)]
    headers: BTreeMap<String, String>,
    query: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    name: String,
    behaviour: String,
    sources: Vec<String>,
    request: Request,
    expect: Expect,
    #[serde(default)]
    capture: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    method: String,
    path: String,
    #[serde(default)]
    headers: BTreeMap<String, Option<String>>,
    body: Option<Value>,
    body_from: Option<String>,
    body_merge: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    status: u16,
    #[serde(default)]
    equals: BTreeMap<String, Value>,
    #[serde(default)]
    absent: Vec<String>,
    #[serde(default)]
    non_empty: Vec<String>,
    #[serde(default)]
    member_values: BTreeMap<String, Vec<String>>,
    scim_error: Option<ScimErrorExpect>,
    #[serde(default)]
    empty_body: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScimErrorExpect {
    #[serde(rename = "scimType")]
    scim_type: Option<String>,
}

fn parse(name: &str, text: &str) -> Replay {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn contents(name: &str) -> &'static str {
    FILES.iter().find(|(n, _)| *n == name).map(|(_, text)| *text).unwrap_or_else(|| panic!("no file {name}"))
}

/// Values captured so far, plus `${token}`, `${org}` and `${base}`.
struct Vars(HashMap<String, Value>);

impl Vars {
    fn text(&self, input: &str, at: &str) -> String {
        let mut out = String::with_capacity(input.len());
        let mut rest = input;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').unwrap_or_else(|| panic!("{at}: unclosed `${{` in {input:?}")) + start;
            let name = &rest[start + 2..end];
            match self.0.get(name) {
                Some(Value::String(s)) => out.push_str(s),
                Some(other) => out.push_str(&other.to_string()),
                None => panic!("{at}: `${{{name}}}` was never captured"),
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Substitute in every string of a JSON value; a string that is exactly `${x}` becomes the
    /// captured value itself, whatever its type.
    fn json(&self, value: &Value, at: &str) -> Value {
        match value {
            Value::String(s) => {
                if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                    if !name.contains("${") {
                        if let Some(v) = self.0.get(name) {
                            return v.clone();
                        }
                    }
                }
                Value::String(self.text(s, at))
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.json(v, at)).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (self.text(k, at), self.json(v, at))).collect::<Map<_, _>>())
            }
            other => other.clone(),
        }
    }
}

/// RFC 7386 JSON merge patch: what an IdP does when it takes our GET output, changes some
/// attributes and sends the whole document back.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

fn non_empty(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

async fn replay(app: &TestApp, name: &str) {
    let file = parse(name, contents(name));
    let mut vars = Vars(HashMap::from([
        ("token".to_owned(), Value::String(app.token.clone())),
        ("org".to_owned(), Value::String(app.org.clone())),
        ("base".to_owned(), Value::String(app.base())),
    ]));
    for (i, step) in file.steps.iter().enumerate() {
        let at = format!("{name} step {i} `{}`", step.name);
        let (status, content_type, text) = send(app, &file.defaults, &step.request, &vars, &at).await;
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{at}: response is not JSON ({e}): {text}"))
        };
        check(&step.expect, status, &content_type, &body, &vars, &at);
        for (var, pointer) in &step.capture {
            let value =
                body.pointer(pointer).unwrap_or_else(|| panic!("{at}: nothing at `{pointer}` to capture: {body}"));
            vars.0.insert(var.clone(), value.clone());
        }
    }
}

async fn send(app: &TestApp, defaults: &Defaults, request: &Request, vars: &Vars, at: &str) -> (u16, String, String) {
    let mut path = vars.text(&request.path, at);
    if let Some(query) = &defaults.query {
        path = match path.split_once('?') {
            Some((p, q)) => format!("{p}?{query}&{q}"),
            None => format!("{path}?{query}"),
        };
    }
    let method = Method::from_bytes(request.method.as_bytes()).unwrap_or_else(|_| panic!("{at}: bad method"));
    let mut headers: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    headers.insert("authorization".into(), ("Authorization".into(), Some("Bearer ${token}".into())));
    for (k, v) in &defaults.headers {
        headers.insert(k.to_ascii_lowercase(), (k.clone(), Some(v.clone())));
    }
    for (k, v) in &request.headers {
        headers.insert(k.to_ascii_lowercase(), (k.clone(), v.clone()));
    }
    let mut builder = app.client.request(method, format!("{}{path}", app.base()));
    for (name, value) in headers.values() {
        if let Some(value) = value {
            let name = HeaderName::from_bytes(name.as_bytes()).unwrap_or_else(|_| panic!("{at}: bad header {name}"));
            builder = builder.header(name, HeaderValue::from_str(&vars.text(value, at)).unwrap());
        }
    }
    let body = match (&request.body, &request.body_from) {
        (Some(_), Some(_)) => panic!("{at}: `body` and `body_from` together"),
        (Some(body), None) => Some(vars.json(body, at)),
        (None, Some(var)) => {
            let mut doc = vars.0.get(var).cloned().unwrap_or_else(|| panic!("{at}: `{var}` was never captured"));
            if let Some(patch) = &request.body_merge {
                merge(&mut doc, &vars.json(patch, at));
            }
            Some(doc)
        }
        (None, None) => {
            assert!(request.body_merge.is_none(), "{at}: `body_merge` without `body_from`");
            None
        }
    };
    if let Some(body) = body {
        builder = builder.body(body.to_string());
    }
    let response = builder.send().await.unwrap_or_else(|e| panic!("{at}: {e}"));
    let status = response.status().as_u16();
    let content_type =
        response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (status, content_type, response.text().await.unwrap())
}

fn check(expect: &Expect, status: u16, content_type: &str, body: &Value, vars: &Vars, at: &str) {
    assert_eq!(status, expect.status, "{at}: status; body: {body}");
    if !body.is_null() {
        assert!(content_type.starts_with("application/scim+json"), "{at}: content type `{content_type}`");
    }
    if expect.empty_body {
        assert!(body.is_null(), "{at}: expected no body, got {body}");
    }
    for (pointer, wanted) in &expect.equals {
        let pointer = vars.text(pointer, at);
        let wanted = vars.json(wanted, at);
        let got = body.pointer(&pointer);
        assert_eq!(got, Some(&wanted), "{at}: `{pointer}`; body: {body}");
    }
    for pointer in &expect.absent {
        let pointer = vars.text(pointer, at);
        assert!(body.pointer(&pointer).is_none(), "{at}: `{pointer}` should be absent; body: {body}");
    }
    for pointer in &expect.non_empty {
        let pointer = vars.text(pointer, at);
        assert!(body.pointer(&pointer).is_some_and(non_empty), "{at}: `{pointer}` should be non-empty; body: {body}");
    }
    for (pointer, wanted) in &expect.member_values {
        let pointer = vars.text(pointer, at);
        let mut got: Vec<String> = match body.pointer(&pointer) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|m| m["value"].as_str().unwrap_or_else(|| panic!("{at}: `{pointer}` item {m}")).to_owned())
                .collect(),
            Some(other) => panic!("{at}: `{pointer}` is not an array: {other}"),
        };
        let mut wanted: Vec<String> = wanted.iter().map(|w| vars.text(w, at)).collect();
        got.sort();
        wanted.sort();
        assert_eq!(got, wanted, "{at}: values of `{pointer}`; body: {body}");
    }
    if let Some(error) = &expect.scim_error {
        assert_eq!(body["schemas"], serde_json::json!([proto::wire::ERROR]), "{at}: {body}");
        assert_eq!(body["status"], status.to_string(), "{at}: `status` is the code as a string: {body}");
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{at}: `detail`: {body}");
        assert_eq!(body["scimType"].as_str(), error.scim_type.as_deref(), "{at}: `scimType`: {body}");
    }
}
