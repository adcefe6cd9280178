//! Protocol messages: ListResponse, Error, SearchRequest, and the discovery documents.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::resource::describe;
use crate::schema::{all_schemas, AttrDef, AttrType, ResourceKind};
use crate::value::get_ci;
use crate::Error;

pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub const SERVICE_PROVIDER_CONFIG: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// RFC 7644 §3.4.2 ListResponse.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    pub schemas: [&'static str; 1],
    pub total_results: u64,
    pub start_index: u64,
    pub items_per_page: u64,
    #[serde(rename = "Resources")]
    pub resources: Vec<Value>,
}

impl ListResponse {
    pub fn new(total_results: u64, start_index: u64, resources: Vec<Value>) -> Self {
        Self { schemas: [LIST_RESPONSE], total_results, start_index, items_per_page: resources.len() as u64, resources }
    }
}

/// RFC 7644 §3.12 error body. `status` is a string on the wire.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub schemas: [&'static str; 1],
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

impl ErrorBody {
    pub fn new(status: u16, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self { schemas: [ERROR], status: status.to_string(), scim_type, detail: detail.into() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    #[default]
    Ascending,
    Descending,
}

/// Query parameters or a POST /.search body (RFC 7644 §3.4.3), as received. Lists may be JSON
/// arrays or comma-separated strings. Numbers may arrive as strings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchRequest {
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<SortOrder>,
    pub start_index: Option<i64>,
    pub count: Option<i64>,
}

impl SearchRequest {
    /// Parse a `POST /.search` body; keys matched case-insensitively; `schemas` must name
    /// [`SEARCH_REQUEST`]. Errors are `InvalidSyntax` / `InvalidValue`.
    pub fn from_body(body: &Value) -> Result<Self, crate::Error> {
        let Value::Object(fields) = body else {
            return Err(Error::invalid_syntax("a search request must be a JSON object"));
        };
        let names_search = match get_ci(body, "schemas") {
            Some(Value::Array(names)) => {
                names.iter().any(|n| n.as_str().is_some_and(|n| n.eq_ignore_ascii_case(SEARCH_REQUEST)))
            }
            Some(Value::String(name)) => name.eq_ignore_ascii_case(SEARCH_REQUEST),
            _ => false,
        };
        if !names_search {
            return Err(Error::invalid_syntax(format!("`schemas` must contain \"{SEARCH_REQUEST}\"")));
        }
        let mut request = Self::default();
        for (key, value) in fields {
            if value.is_null() {
                continue;
            }
            let Some(param) = Param::from_key(key) else {
                continue;
            };
            match param {
                Param::Attributes | Param::ExcludedAttributes => {
                    let list = match value {
                        Value::String(s) => s.clone(),
                        Value::Array(items) => {
                            let names: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                            names
                                .ok_or_else(|| Error::invalid_value(format!("`{key}` must be an array of strings")))?
                                .join(",")
                        }
                        other => {
                            return Err(Error::invalid_value(format!(
                                "`{key}` must be an array of strings, not {}",
                                describe(other)
                            )))
                        }
                    };
                    request.set_list(param, list);
                }
                Param::StartIndex | Param::Count => {
                    let n = match value {
                        Value::Number(n) => n
                            .as_i64()
                            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64)),
                        Value::String(s) => s.trim().parse().ok(),
                        _ => None,
                    };
                    let n = n.ok_or_else(|| {
                        Error::invalid_value(format!("`{key}` must be an integer, not {}", describe(value)))
                    })?;
                    request.set_number(param, n);
                }
                Param::Filter | Param::SortBy | Param::SortOrder => {
                    let Value::String(s) = value else {
                        return Err(Error::invalid_value(format!("`{key}` must be a string, not {}", describe(value))));
                    };
                    request.set_text(param, s)?;
                }
            }
        }
        Ok(request)
    }
    /// Build from query-string pairs; keys matched case-insensitively, unknown keys ignored.
    pub fn from_query(pairs: &[(String, String)]) -> Result<Self, crate::Error> {
        let mut request = Self::default();
        for (key, value) in pairs {
            let Some(param) = Param::from_key(key) else {
                continue;
            };
            // `?filter=` with nothing after it is the same as no filter.
            if value.trim().is_empty() {
                continue;
            }
            match param {
                Param::Attributes | Param::ExcludedAttributes => request.set_list(param, value.clone()),
                Param::StartIndex | Param::Count => {
                    let n = value
                        .trim()
                        .parse()
                        .map_err(|_| Error::invalid_value(format!("`{key}` must be an integer, not \"{value}\"")))?;
                    request.set_number(param, n);
                }
                Param::Filter | Param::SortBy | Param::SortOrder => request.set_text(param, value)?,
            }
        }
        Ok(request)
    }

    fn set_list(&mut self, param: Param, list: String) {
        let list = (!list.trim().is_empty()).then_some(list);
        match param {
            Param::ExcludedAttributes => self.excluded_attributes = list,
            _ => self.attributes = list,
        }
    }

    fn set_number(&mut self, param: Param, n: i64) {
        match param {
            Param::Count => self.count = Some(n),
            _ => self.start_index = Some(n),
        }
    }

    fn set_text(&mut self, param: Param, text: &str) -> Result<(), Error> {
        match param {
            Param::SortOrder => {
                self.sort_order = Some(if text.trim().eq_ignore_ascii_case("ascending") {
                    SortOrder::Ascending
                } else if text.trim().eq_ignore_ascii_case("descending") {
                    SortOrder::Descending
                } else {
                    return Err(Error::invalid_value(format!(
                        "`sortOrder` must be \"ascending\" or \"descending\", not \"{text}\""
                    )));
                });
            }
            Param::SortBy => self.sort_by = Some(text.to_owned()),
            _ => self.filter = Some(text.to_owned()),
        }
        Ok(())
    }
}

/// The RFC 7644 §3.4.2 list parameters.
#[derive(Clone, Copy)]
enum Param {
    Attributes,
    ExcludedAttributes,
    Filter,
    SortBy,
    SortOrder,
    StartIndex,
    Count,
}

impl Param {
    fn from_key(key: &str) -> Option<Self> {
        const ALL: [(&str, Param); 7] = [
            ("attributes", Param::Attributes),
            ("excludedAttributes", Param::ExcludedAttributes),
            ("filter", Param::Filter),
            ("sortBy", Param::SortBy),
            ("sortOrder", Param::SortOrder),
            ("startIndex", Param::StartIndex),
            ("count", Param::Count),
        ];
        ALL.iter().find(|(name, _)| name.eq_ignore_ascii_case(key)).map(|(_, p)| *p)
    }
}

/// Limits advertised in `/ServiceProviderConfig` and enforced by the edge.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_results: u64,
    pub max_payload_bytes: u64,
}

/// `/ServiceProviderConfig` (RFC 7643 §5). `base` is the tenant's SCIM base URL.
pub fn service_provider_config(base: &str, limits: Limits) -> Value {
    let base = base.trim_end_matches('/');
    json!({
        "schemas": [SERVICE_PROVIDER_CONFIG],
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": limits.max_payload_bytes },
        "filter": { "supported": true, "maxResults": limits.max_results },
        "changePassword": { "supported": false },
        "sort": { "supported": true },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a bearer token issued for the tenant (RFC 6750).",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}

/// `/Schemas` entries (RFC 7643 §7), each with `meta.location` under `base`.
pub fn schemas(base: &str) -> Vec<Value> {
    let base = base.trim_end_matches('/');
    all_schemas()
        .iter()
        .map(|schema| {
            json!({
                "schemas": [SCHEMA],
                "id": schema.id,
                "name": schema.name,
                "description": schema.description,
                "attributes": schema.attributes.iter().map(attribute_json).collect::<Vec<_>>(),
                "meta": {
                    "resourceType": "Schema",
                    "location": format!("{base}/Schemas/{}", schema.id),
                },
            })
        })
        .collect()
}

/// One attribute definition as RFC 7643 §7 writes it.
fn attribute_json(def: &AttrDef) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), def.name.into());
    out.insert("type".into(), def.ty.as_str().into());
    out.insert("multiValued".into(), def.multi_valued.into());
    out.insert("description".into(), def.description.into());
    out.insert("required".into(), def.required.into());
    out.insert("caseExact".into(), def.case_exact.into());
    if !def.canonical_values.is_empty() {
        out.insert("canonicalValues".into(), def.canonical_values.into());
    }
    out.insert("mutability".into(), def.mutability.as_str().into());
    out.insert("returned".into(), def.returned.as_str().into());
    out.insert("uniqueness".into(), def.uniqueness.as_str().into());
    if def.ty == AttrType::Reference {
        out.insert("referenceTypes".into(), def.reference_types.into());
    }
    if def.ty == AttrType::Complex {
        out.insert("subAttributes".into(), def.sub_attributes.iter().map(attribute_json).collect());
    }
    Value::Object(out)
}

/// `/ResourceTypes` entries (RFC 7643 §6).
pub fn resource_types(base: &str) -> Vec<Value> {
    let base = base.trim_end_matches('/');
    [ResourceKind::User, ResourceKind::Group]
        .into_iter()
        .map(|kind| {
            let mut rt = json!({
                "schemas": [RESOURCE_TYPE],
                "id": kind.name(),
                "name": kind.name(),
                "endpoint": kind.endpoint(),
                "description": match kind {
                    ResourceKind::User => "User Account",
                    ResourceKind::Group => "Group",
                },
                "schema": kind.core_schema().id,
                "meta": {
                    "resourceType": "ResourceType",
                    "location": format!("{base}/ResourceTypes/{}", kind.name()),
                },
            });
            let extensions: Vec<Value> =
                kind.extensions().iter().map(|ext| json!({ "schema": ext.id, "required": false })).collect();
            if let (false, Value::Object(fields)) = (extensions.is_empty(), &mut rt) {
                fields.insert("schemaExtensions".into(), Value::Array(extensions));
            }
            rt
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::{ENTERPRISE_USER, GROUP, USER};
    use crate::ErrorKind;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn search_request_from_body() {
        let request = SearchRequest::from_body(&json!({
            "schemas": [SEARCH_REQUEST],
            "attributes": ["displayName", "userName"],
            "excludedattributes": "emails",
            "Filter": "displayName sw \"smith\"",
            "SORTBY": "userName",
            "sortOrder": "DESCENDING",
            "startIndex": 1,
            "count": "10",
        }))
        .unwrap();
        assert_eq!(
            request,
            SearchRequest {
                attributes: Some("displayName,userName".into()),
                excluded_attributes: Some("emails".into()),
                filter: Some("displayName sw \"smith\"".into()),
                sort_by: Some("userName".into()),
                sort_order: Some(SortOrder::Descending),
                start_index: Some(1),
                count: Some(10),
            }
        );
        assert_eq!(
            SearchRequest::from_body(&json!({"schemas": [SEARCH_REQUEST], "count": null})).unwrap(),
            SearchRequest::default()
        );
    }

    #[test]
    fn search_request_body_errors() {
        let err = |body: Value| SearchRequest::from_body(&body).unwrap_err();
        assert_eq!(err(json!({"filter": "x pr"})).kind(), ErrorKind::InvalidSyntax);
        assert_eq!(err(json!({"schemas": [USER]})).kind(), ErrorKind::InvalidSyntax);
        assert_eq!(err(json!([])).kind(), ErrorKind::InvalidSyntax);
        let search = |k: &str, v: Value| err(json!({"schemas": [SEARCH_REQUEST], k: v}));
        assert_eq!(search("count", json!("ten")).kind(), ErrorKind::InvalidValue);
        assert_eq!(search("startIndex", json!(true)).kind(), ErrorKind::InvalidValue);
        assert_eq!(search("sortOrder", json!("up")).kind(), ErrorKind::InvalidValue);
        assert_eq!(search("attributes", json!([1])).kind(), ErrorKind::InvalidValue);
        assert_eq!(search("filter", json!(1)).kind(), ErrorKind::InvalidValue);
    }

    #[test]
    fn search_request_from_query() {
        let request = SearchRequest::from_query(&pairs(&[
            ("FILTER", "userName eq \"x\""),
            ("attributes", "userName,emails"),
            ("sortorder", "ascending"),
            ("startIndex", " 3 "),
            ("count", "0"),
            ("unknown", "whatever"),
            ("excludedAttributes", ""),
        ]))
        .unwrap();
        assert_eq!(request.filter.as_deref(), Some("userName eq \"x\""));
        assert_eq!(request.attributes.as_deref(), Some("userName,emails"));
        assert_eq!(request.excluded_attributes, None);
        assert_eq!(request.sort_order, Some(SortOrder::Ascending));
        assert_eq!((request.start_index, request.count), (Some(3), Some(0)));
        assert_eq!(
            SearchRequest::from_query(&pairs(&[("count", "many")])).unwrap_err().kind(),
            ErrorKind::InvalidValue
        );
        assert_eq!(
            SearchRequest::from_query(&pairs(&[("sortOrder", "sideways")])).unwrap_err().kind(),
            ErrorKind::InvalidValue
        );
    }

    #[test]
    fn service_provider_config_is_truthful() {
        let spc = service_provider_config(
            "https://h/scim/v2/acme/",
            Limits { max_results: 200, max_payload_bytes: 1_048_576 },
        );
        assert_eq!(spc["schemas"], json!([SERVICE_PROVIDER_CONFIG]));
        assert_eq!(spc["patch"]["supported"], true);
        assert_eq!(spc["bulk"], json!({"supported": false, "maxOperations": 0, "maxPayloadSize": 1_048_576}));
        assert_eq!(spc["filter"], json!({"supported": true, "maxResults": 200}));
        assert_eq!(spc["changePassword"]["supported"], false);
        assert_eq!(spc["sort"]["supported"], true);
        assert_eq!(spc["etag"]["supported"], true);
        let schemes = spc["authenticationSchemes"].as_array().unwrap();
        assert_eq!(schemes.len(), 1);
        assert_eq!(schemes[0]["type"], "oauthbearertoken");
        assert_eq!(schemes[0]["name"], "OAuth Bearer Token");
        assert_eq!(schemes[0]["primary"], true);
        assert!(schemes[0]["description"].as_str().is_some_and(|d| !d.is_empty()));
        assert_eq!(
            spc["meta"],
            json!({"resourceType": "ServiceProviderConfig", "location": "https://h/scim/v2/acme/ServiceProviderConfig"})
        );
    }

    #[test]
    fn schema_documents() {
        let docs = schemas("https://h/scim/v2/acme");
        assert_eq!(docs.iter().map(|d| d["id"].as_str().unwrap()).collect::<Vec<_>>(), [USER, ENTERPRISE_USER, GROUP]);
        let user = &docs[0];
        assert_eq!(user["schemas"], json!([SCHEMA]));
        assert_eq!(user["name"], "User");
        assert_eq!(
            user["meta"],
            json!({"resourceType": "Schema", "location": format!("https://h/scim/v2/acme/Schemas/{USER}")})
        );
        let attrs = user["attributes"].as_array().unwrap();
        let names: Vec<&str> = attrs.iter().map(|a| a["name"].as_str().unwrap()).collect();
        assert!(!names.contains(&"id") && !names.contains(&"meta") && !names.contains(&"externalId"));
        let attr = |name: &str| attrs.iter().find(|a| a["name"] == name).unwrap();
        assert_eq!(
            attr("userName"),
            &json!({
                "name": "userName", "type": "string", "multiValued": false,
                "description": attr("userName")["description"], "required": true, "caseExact": false,
                "mutability": "readWrite", "returned": "default", "uniqueness": "server"
            })
        );
        assert_eq!(attr("password")["mutability"], "writeOnly");
        assert_eq!(attr("password")["returned"], "never");
        assert_eq!(attr("active")["type"], "boolean");
        assert_eq!(attr("profileUrl")["referenceTypes"], json!(["external"]));
        let emails = attr("emails");
        assert_eq!(emails["multiValued"], true);
        assert_eq!(emails["type"], "complex");
        let subs = emails["subAttributes"].as_array().unwrap();
        assert_eq!(
            subs.iter().map(|s| s["name"].as_str().unwrap()).collect::<Vec<_>>(),
            ["value", "display", "type", "primary"]
        );
        assert_eq!(subs[2]["canonicalValues"], json!(["work", "home", "other"]));
        assert_eq!(attr("groups")["mutability"], "readOnly");
        assert_eq!(attr("x509Certificates")["subAttributes"][0]["type"], "binary");
        let members = docs[2]["attributes"].as_array().unwrap().iter().find(|a| a["name"] == "members").unwrap();
        assert_eq!(members["subAttributes"][0]["mutability"], "immutable");
        assert_eq!(members["subAttributes"][1]["referenceTypes"], json!(["User", "Group"]));
    }

    #[test]
    fn resource_type_documents() {
        let docs = resource_types("https://h/scim/v2/acme");
        assert_eq!(
            docs[0],
            json!({
                "schemas": [RESOURCE_TYPE],
                "id": "User",
                "name": "User",
                "endpoint": "/Users",
                "description": "User Account",
                "schema": USER,
                "meta": {"resourceType": "ResourceType", "location": "https://h/scim/v2/acme/ResourceTypes/User"},
                "schemaExtensions": [{"schema": ENTERPRISE_USER, "required": false}]
            })
        );
        assert_eq!(docs[1]["endpoint"], "/Groups");
        assert_eq!(docs[1]["schema"], GROUP);
        assert_eq!(docs[1]["meta"]["location"], "https://h/scim/v2/acme/ResourceTypes/Group");
        assert!(docs[1].get("schemaExtensions").is_none());
    }

    #[test]
    fn list_and_error_bodies() {
        let list = serde_json::to_value(ListResponse::new(5, 1, vec![json!({"id": "a"})])).unwrap();
        assert_eq!(
            list,
            json!({"schemas": [LIST_RESPONSE], "totalResults": 5, "startIndex": 1, "itemsPerPage": 1, "Resources": [{"id": "a"}]})
        );
        let error = serde_json::to_value(ErrorBody::new(400, Some("invalidFilter"), "bad")).unwrap();
        assert_eq!(error, json!({"schemas": [ERROR], "status": "400", "scimType": "invalidFilter", "detail": "bad"}));
    }
}
