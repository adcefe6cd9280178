//! Validation and canonicalisation of client-sent resources.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::schema::{find, AttrDef, AttrType, Mutability, ResourceKind, Returned, SchemaDef, COMMON};
use crate::value::{as_bool, get_ci};
use crate::Error;

/// Longest value, in characters, of the strings the store keeps in indexed columns: `userName`,
/// `externalId`, `displayName` (of users and groups) and member ids. At four bytes per character
/// at most, an index entry stays well inside PostgreSQL's btree row limit (2,704 bytes), so both
/// stores accept and refuse exactly the same values.
pub const MAX_INDEXED_CHARS: usize = 512;
/// Most values one multi-valued attribute of a resource may hold (`emails`, `phoneNumbers`,
/// `addresses`, ...): every value is scanned by filters over the attribute. Group `members` are
/// bounded by the Group body size instead.
pub const MAX_MULTI_VALUES: usize = 100;

/// The top-level attributes kept in indexed columns.
const INDEXED: [&str; 3] = ["userName", "externalId", "displayName"];

fn check_indexed_length(name: &str, value: &str) -> Result<(), Error> {
    let chars = value.chars().count();
    if chars > MAX_INDEXED_CHARS {
        return Err(Error::invalid_value(format!(
            "`{name}` is {chars} characters long; at most {MAX_INDEXED_CHARS} are accepted"
        )));
    }
    Ok(())
}

/// Validate a client-sent User or Group body (POST or PUT) and return its canonical form:
/// - attribute names spelled as in the schema (matched case-insensitively), extension attributes
///   under their URN key; `schemas` rebuilt as the core URN plus each extension present;
/// - read-only attributes (`id`, `meta`, `groups`) and write-only ones (`password`) dropped;
/// - values checked against the attribute type, with the tolerant coercions every IdP needs
///   (`"True"`/`"false"` strings for booleans, a single object where an array is expected);
/// - required attributes present (`userName` for User, `displayName` for Group);
/// - unknown attributes and unknown extension URNs refused with `ErrorKind::InvalidValue`;
/// - `null` values and empty arrays dropped (RFC 7643 §2.5: unassigned).
///
/// For groups, `members` is kept in the output as an array of `{"value", "type"?}` objects
/// (plus `display` when the client sent one, kept as sent).
pub fn normalize(kind: ResourceKind, body: Value) -> Result<Value, Error> {
    let Value::Object(body) = body else {
        return Err(Error::invalid_syntax(format!("a {} must be a JSON object", kind.name())));
    };
    let core = kind.core_schema();
    let mut found = Found::default();
    for (key, value) in body {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(schema) = kind.schema_by_urn(&key) {
            // The attributes of one schema grouped under its URN; the core URN too, which some
            // clients send.
            match value {
                Value::Object(attrs) => {
                    // An extension object serialised whole carries its own `schemas`.
                    for (name, value) in attrs.into_iter().filter(|(name, _)| !name.eq_ignore_ascii_case("schemas")) {
                        found.place(kind, schema, &name, value)?;
                    }
                }
                Value::Null => {}
                _ => {
                    return Err(Error::invalid_value(format!(
                        "`{key}` must be an object of {} attributes",
                        schema.name
                    )))
                }
            }
            continue;
        }
        if let Some((urn, name)) = key.rsplit_once(':') {
            // A URN-qualified attribute name (`urn:...:User:userName`).
            match kind.schema_by_urn(urn) {
                Some(schema) => found.place(kind, schema, name, value)?,
                None => return Err(Error::invalid_value(format!("unknown schema extension `{key}`"))),
            }
            continue;
        }
        found.place(kind, core, &key, value)?;
    }

    let mut out = Map::new();
    let mut schemas = vec![Value::String(core.id.into())];
    schemas.extend(
        kind.extensions().iter().filter(|ext| found.extension_present(ext)).map(|ext| Value::String(ext.id.into())),
    );
    out.insert("schemas".into(), Value::Array(schemas));
    for def in COMMON.iter().chain(core.attributes) {
        let value = found.take(core.id, def.name);
        if let (Some(Value::String(s)), true) = (&value, INDEXED.contains(&def.name)) {
            check_indexed_length(def.name, s)?;
        }
        match value {
            // A blank `userName` or `displayName` identifies nothing.
            Some(Value::String(s)) if def.required && s.trim().is_empty() => {
                return Err(Error::invalid_value(format!("`{}` is required", def.name)));
            }
            Some(value) => {
                out.insert(def.name.into(), value);
            }
            None if def.required => return Err(Error::invalid_value(format!("`{}` is required", def.name))),
            None => {}
        }
    }
    for ext in kind.extensions() {
        let mut attrs = Map::new();
        for def in ext.attributes {
            if let Some(value) = found.take(ext.id, def.name) {
                attrs.insert(def.name.into(), value);
            } else if def.required {
                return Err(Error::invalid_value(format!("`{}:{}` is required", ext.id, def.name)));
            }
        }
        if !attrs.is_empty() {
            out.insert(ext.id.into(), Value::Object(attrs));
        }
    }
    Ok(Value::Object(out))
}

/// Attributes collected from a body, keyed by (schema URN, canonical name), in arrival order;
/// a later spelling of the same attribute wins.
#[derive(Default)]
struct Found {
    values: Vec<(&'static str, &'static str, Value)>,
}

impl Found {
    fn place(&mut self, kind: ResourceKind, schema: &'static SchemaDef, name: &str, value: Value) -> Result<(), Error> {
        let is_core = schema.id == kind.core_schema().id;
        let def = if is_core { kind.core_attribute(name) } else { find(schema.attributes, name) };
        let Some(def) = def else {
            return Err(Error::invalid_value(if is_core {
                format!("unknown attribute `{name}` for {}", kind.name())
            } else {
                format!("unknown attribute `{name}` in {}", schema.id)
            }));
        };
        self.values.retain(|(s, n, _)| !(*s == schema.id && *n == def.name));
        if !client_writable(def) {
            return Ok(());
        }
        let value = if kind == ResourceKind::Group && is_core && def.name == "members" {
            let members = member_values(value)?;
            (!members.is_empty()).then_some(Value::Array(members))
        } else {
            attribute_value(def, value, def.name)?
        };
        if let Some(value) = value {
            self.values.push((schema.id, def.name, value));
        }
        Ok(())
    }

    fn take(&mut self, schema: &str, name: &str) -> Option<Value> {
        let i = self.values.iter().position(|(s, n, _)| *s == schema && *n == name)?;
        Some(self.values.swap_remove(i).2)
    }

    fn extension_present(&self, ext: &SchemaDef) -> bool {
        self.values.iter().any(|(s, _, _)| *s == ext.id)
    }
}

/// Whether a client-sent value for `def` is kept: read-only attributes belong to the server and
/// write-only ones (`password`) are never stored, so both are dropped without complaint.
pub(crate) fn client_writable(def: &AttrDef) -> bool {
    def.mutability != Mutability::ReadOnly && def.returned != Returned::Never
}

/// Validate and canonicalise the value of one attribute. `None` when it is unassigned (null, an
/// empty array, an empty complex value). `label` names the attribute in errors.
pub(crate) fn attribute_value(def: &AttrDef, value: Value, label: &str) -> Result<Option<Value>, Error> {
    if value.is_null() {
        return Ok(None);
    }
    if !def.multi_valued {
        return single_value(def, single_complex_shape(def, value, label)?, label);
    }
    let items = match value {
        Value::Array(items) => items,
        single => vec![single],
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        if item.is_null() {
            continue;
        }
        if item.is_array() {
            return Err(Error::invalid_value(format!("`{label}[{i}]` is an array inside an array")));
        }
        if let Some(v) = single_value(def, item, &format!("{label}[{i}]"))? {
            out.push(v);
        }
    }
    if out.len() > MAX_MULTI_VALUES {
        return Err(Error::invalid_value(format!(
            "`{label}` has {} values; at most {MAX_MULTI_VALUES} are accepted",
            out.len()
        )));
    }
    if out.iter().filter(|item| is_primary(item)).count() > 1 {
        // RFC 7643 §2.4: "primary" true appears no more than once.
        return Err(Error::invalid_value(format!("`{label}` has more than one primary value")));
    }
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

/// The shapes Entra writes for a single-valued attribute, brought to the RFC shape before
/// validation: a complex attribute with a `value` sub-attribute (`manager`) given as its bare
/// id, and a complex value wrapped in a one-element array (the old documented manager form
/// `[{"value": id, "$ref": ...}]`). Any other array for a single-valued attribute is refused.
pub(crate) fn single_complex_shape(def: &AttrDef, value: Value, label: &str) -> Result<Value, Error> {
    if def.ty != AttrType::Complex {
        return match value {
            Value::Array(_) => Err(Error::invalid_value(format!("`{label}` is single-valued, not an array"))),
            other => Ok(other),
        };
    }
    match value {
        Value::String(id) if def.sub_attribute("value").is_some() => {
            let mut fields = Map::new();
            fields.insert("value".into(), Value::String(id));
            Ok(Value::Object(fields))
        }
        Value::Array(mut items) if items.len() == 1 && items.first().is_some_and(Value::is_object) => {
            Ok(items.pop().unwrap_or_default())
        }
        Value::Array(_) => Err(Error::invalid_value(format!("`{label}` is single-valued, not an array"))),
        other => Ok(other),
    }
}

/// Whether a multi-valued element is marked primary (after coercion of `"True"` strings).
pub(crate) fn is_primary(item: &Value) -> bool {
    get_ci(item, "primary").and_then(as_bool).unwrap_or(false)
}

fn single_value(def: &AttrDef, value: Value, label: &str) -> Result<Option<Value>, Error> {
    let wrong = |expected: &str, value: &Value| {
        Error::invalid_value(format!("`{label}` must be {expected}, not {}", describe(value)))
    };
    match def.ty {
        AttrType::String | AttrType::Reference | AttrType::Binary => match value {
            Value::String(_) => Ok(Some(value)),
            Value::Null => Ok(None),
            other => Err(wrong("a string", &other)),
        },
        AttrType::Boolean => match as_bool(&value) {
            Some(b) => Ok(Some(Value::Bool(b))),
            None => Err(wrong("a boolean", &value)),
        },
        AttrType::Integer => match &value {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Some(value)),
            other => Err(wrong("an integer", other)),
        },
        AttrType::Decimal => match &value {
            Value::Number(_) => Ok(Some(value)),
            other => Err(wrong("a number", other)),
        },
        AttrType::DateTime => match &value {
            Value::String(s) if OffsetDateTime::parse(s, &Rfc3339).is_ok() => Ok(Some(value)),
            other => Err(wrong("an RFC 3339 dateTime string", other)),
        },
        AttrType::Complex => {
            let Value::Object(fields) = value else {
                return Err(wrong("an object", &value));
            };
            let is_reference = !def.multi_valued && def.sub_attribute("value").is_some();
            let mut out = Map::new();
            for (key, v) in fields {
                let Some(sub) = find(def.sub_attributes, &key) else {
                    return Err(Error::invalid_value(format!("unknown sub-attribute `{key}` in `{label}`")));
                };
                if !client_writable(sub) {
                    continue;
                }
                match attribute_value(sub, v, &format!("{label}.{}", sub.name))? {
                    Some(v) => {
                        out.insert(sub.name.into(), v);
                    }
                    None => {
                        out.remove(sub.name);
                    }
                }
            }
            // An empty id names nothing: `{"value": ""}` is how Entra removes a manager.
            if is_reference && out.get("value").and_then(Value::as_str) == Some("") {
                return Ok(None);
            }
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
    }
}

/// Group members as stored: `{"value": id, "display"?: text, "type"?: "User" | "Group"}`, one
/// per id. `display` is kept as the IdP sent it, so it reads back without drift; `$ref` is
/// dropped, as the server computes it from the id.
pub(crate) fn member_values(value: Value) -> Result<Vec<Value>, Error> {
    let items = match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items,
        single => vec![single],
    };
    // A repeated id leaves a hole where it was, so the member set is built in one pass: groups of
    // 100,000 members must not cost a quadratic scan.
    let mut out: Vec<Option<Value>> = Vec::with_capacity(items.len());
    let mut positions: std::collections::HashMap<String, usize> = std::collections::HashMap::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        if item.is_null() {
            continue;
        }
        let Value::Object(fields) = item else {
            return Err(Error::invalid_value(format!(
                "`members[{i}]` must be an object with a `value`, not {}",
                describe(&item)
            )));
        };
        let mut id = None;
        let mut ty = None;
        let mut display = None;
        for (key, v) in fields {
            if key.eq_ignore_ascii_case("value") {
                id = Some(v);
            } else if key.eq_ignore_ascii_case("type") {
                ty = Some(v);
            } else if key.eq_ignore_ascii_case("display") {
                display = Some(v);
            }
        }
        let id = match id {
            Some(Value::String(id)) if !id.trim().is_empty() => id,
            Some(other) => {
                return Err(Error::invalid_value(format!(
                    "`members[{i}].value` must be a non-empty string, not {}",
                    describe(&other)
                )))
            }
            None => return Err(Error::invalid_value(format!("`members[{i}]` has no `value`"))),
        };
        check_indexed_length(&format!("members[{i}].value"), &id)?;
        let ty = match ty {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) if t.eq_ignore_ascii_case("User") => Some("User"),
            Some(Value::String(t)) if t.eq_ignore_ascii_case("Group") => Some("Group"),
            Some(other) => {
                return Err(Error::invalid_value(format!(
                    "`members[{i}].type` must be \"User\" or \"Group\", not {other}"
                )));
            }
        };
        let display = match display {
            None | Some(Value::Null) => None,
            Some(Value::String(d)) => Some(d),
            Some(other) => {
                return Err(Error::invalid_value(format!(
                    "`members[{i}].display` must be a string, not {}",
                    describe(&other)
                )));
            }
        };
        let mut member = Map::new();
        member.insert("value".into(), Value::String(id.clone()));
        if let Some(display) = display {
            member.insert("display".into(), Value::String(display));
        }
        if let Some(ty) = ty {
            member.insert("type".into(), Value::String(ty.into()));
        }
        // One member per id; a repeated id takes the later details (and place), as a replace would.
        if let Some(earlier) = positions.insert(id, out.len()) {
            out[earlier] = None;
        }
        out.push(Some(Value::Object(member)));
    }
    Ok(out.into_iter().flatten().collect())
}

/// A short description of a JSON value for error messages.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {}", Value::String(s.chars().take(64).collect())),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// Whether a string or a key anywhere in `value` holds U+0000. No stored text may (PostgreSQL
/// refuses it), so client bodies holding it are refused whole, the same on every backend.
/// serde_json's nesting limit bounds the recursion.
pub fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(fields) => fields.iter().any(|(key, v)| key.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::{ENTERPRISE_USER, GROUP, USER};
    use crate::ErrorKind;

    #[test]
    fn nul_characters_are_found_anywhere() {
        assert!(!holds_nul(&json!({"userName": "a", "emails": [{"value": "x@y"}], "n": 1, "b": null})));
        assert!(holds_nul(&json!("a\u{0}b")));
        assert!(holds_nul(&json!({"name": {"givenName": "\u{0}"}})));
        assert!(holds_nul(&json!({"emails": [{"value": "ok"}, {"value": "x\u{0}"}]})));
        assert!(holds_nul(&json!({"key\u{0}": "value"})));
    }

    fn user(body: Value) -> Result<Value, Error> {
        normalize(ResourceKind::User, body)
    }

    #[test]
    fn indexed_strings_have_one_length_limit_in_characters() {
        let at_limit = "é".repeat(MAX_INDEXED_CHARS);
        let over = "é".repeat(MAX_INDEXED_CHARS + 1);
        assert!(user(json!({"userName": at_limit, "externalId": at_limit, "displayName": at_limit})).is_ok());
        for name in ["userName", "externalId", "displayName"] {
            let mut body = json!({"userName": "bjensen"});
            body[name] = json!(over);
            let detail = invalid(user(body));
            assert!(detail.contains(&format!("`{name}`")) && detail.contains("at most 512"), "{detail}");
        }
        let group = |body| normalize(ResourceKind::Group, body);
        assert!(invalid(group(json!({"displayName": over}))).contains("`displayName`"));
        let member = json!({"displayName": "g", "members": [{"value": "a"}, {"value": over}]});
        assert!(invalid(group(member)).contains("`members[1].value`"));
    }

    #[test]
    fn multi_valued_attributes_hold_a_bounded_number_of_values() {
        let emails = |n: usize| (0..n).map(|i| json!({"value": format!("u{i}@example.com")})).collect::<Vec<_>>();
        assert!(user(json!({"userName": "a", "emails": emails(MAX_MULTI_VALUES)})).is_ok());
        let detail = invalid(user(json!({"userName": "a", "emails": emails(MAX_MULTI_VALUES + 1)})));
        assert!(detail.contains("`emails`") && detail.contains("at most 100"), "{detail}");
        let phones = (0..=MAX_MULTI_VALUES).map(|i| json!({"value": format!("+1555{i}")})).collect::<Vec<_>>();
        assert!(invalid(user(json!({"userName": "a", "phoneNumbers": phones}))).contains("`phoneNumbers`"));
    }

    fn invalid(result: Result<Value, Error>) -> String {
        match result {
            Err(e) if e.kind() == ErrorKind::InvalidValue => e.into_detail(),
            other => panic!("expected InvalidValue, got {other:?}"),
        }
    }

    /// RFC 7643 §8.3, the enterprise user example (trimmed).
    fn rfc_enterprise_user() -> Value {
        json!({
            "schemas": [USER, ENTERPRISE_USER],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "701984",
            "userName": "bjensen@example.com",
            "name": {
                "formatted": "Ms. Barbara J Jensen, III",
                "familyName": "Jensen",
                "givenName": "Barbara",
                "middleName": "Jane",
                "honorificPrefix": "Ms.",
                "honorificSuffix": "III"
            },
            "displayName": "Babs Jensen",
            "nickName": "Babs",
            "profileUrl": "https://login.example.com/bjensen",
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "addresses": [{
                "streetAddress": "100 Universal City Plaza",
                "locality": "Hollywood",
                "region": "CA",
                "postalCode": "91608",
                "country": "USA",
                "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA",
                "type": "work",
                "primary": true
            }],
            "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
            "ims": [{"value": "someaimhandle", "type": "aim"}],
            "photos": [{"value": "https://photos.example.com/profilephoto/72930000000Ccne/F", "type": "photo"}],
            "userType": "Employee",
            "title": "Tour Guide",
            "preferredLanguage": "en-US",
            "locale": "en-US",
            "timezone": "America/Los_Angeles",
            "active": true,
            "password": "t1meMa$heen",
            "groups": [{"value": "e9e30dba-f08f-4109-8486-d5c6a331660a", "display": "Tour Guides"}],
            "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx"}],
            ENTERPRISE_USER: {
                "employeeNumber": "701984",
                "costCenter": "4130",
                "organization": "Universal Studios",
                "division": "Theme Park",
                "department": "Tour Operations",
                "manager": {
                    "value": "26118915-6090-4610-87e4-49d8ca9f808d",
                    "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
                    "displayName": "John Smith"
                }
            },
            "meta": {
                "resourceType": "User",
                "created": "2010-01-23T04:56:22Z",
                "lastModified": "2011-05-13T04:42:34Z",
                "version": "W/\"3694e05e9dff591\"",
                "location": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"
            }
        })
    }

    #[test]
    fn rfc_user_round_trips_without_server_attributes() {
        let mut expected = rfc_enterprise_user();
        let out = user(expected.clone()).unwrap();
        let fields = expected.as_object_mut().unwrap();
        for server_owned in ["id", "meta", "groups", "password"] {
            fields.remove(server_owned);
        }
        fields[ENTERPRISE_USER]["manager"].as_object_mut().unwrap().remove("displayName");
        assert_eq!(out, expected);
        // Canonical key order: schemas first, the extension last.
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys.first().map(|k| k.as_str()), Some("schemas"));
        assert_eq!(keys.last().map(|k| k.as_str()), Some(ENTERPRISE_USER));
        // Idempotent.
        assert_eq!(user(out.clone()).unwrap(), out);
    }

    #[test]
    fn canonical_names_and_schemas() {
        let out = user(json!({
            "schemas": ["whatever"],
            "USERNAME": "bjensen",
            "Name": {"GivenName": "Barbara"},
            "emails": {"VALUE": "b@example.com", "Type": "work"},
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({
                "schemas": [USER],
                "userName": "bjensen",
                "name": {"givenName": "Barbara"},
                "emails": [{"value": "b@example.com", "type": "work"}],
            })
        );
    }

    #[test]
    fn urn_keys() {
        // The core URN as a key, a URN-qualified attribute, and the extension object.
        let out = user(json!({
            USER: {"userName": "bjensen", "name": {"familyName": "Jensen"}},
            "urn:ietf:params:scim:schemas:core:2.0:User:displayName": "Babs",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Tour Operations",
            "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER": {"EmployeeNumber": "42"},
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({
                "schemas": [USER, ENTERPRISE_USER],
                "userName": "bjensen",
                "name": {"familyName": "Jensen"},
                "displayName": "Babs",
                ENTERPRISE_USER: {"employeeNumber": "42", "department": "Tour Operations"},
            })
        );
        assert_eq!(
            invalid(user(json!({"userName": "x", "urn:example:custom:2.0:User": {"a": 1}}))),
            "unknown schema extension `urn:example:custom:2.0:User`"
        );
        assert_eq!(
            invalid(user(json!({"userName": "x", ENTERPRISE_USER: {"shoeSize": 1}}))),
            format!("unknown attribute `shoeSize` in {ENTERPRISE_USER}")
        );
        assert!(invalid(user(json!({"userName": "x", ENTERPRISE_USER: "x"}))).contains("must be an object"));
        // An extension object serialised whole may carry its own `schemas`.
        assert_eq!(
            user(json!({"userName": "x", ENTERPRISE_USER: {"schemas": [ENTERPRISE_USER], "department": "R&D"}}))
                .unwrap(),
            json!({"schemas": [USER, ENTERPRISE_USER], "userName": "x", ENTERPRISE_USER: {"department": "R&D"}})
        );
        // An empty extension object adds nothing to `schemas`.
        assert_eq!(
            user(json!({"userName": "x", ENTERPRISE_USER: {"department": null}})).unwrap(),
            json!({"schemas": [USER], "userName": "x"})
        );
    }

    #[test]
    fn tolerant_coercions() {
        let out = user(json!({
            "userName": "x",
            "active": "True",
            "emails": [{"value": "a@x.com", "primary": "false"}],
            "phoneNumbers": {"value": "555"},
        }))
        .unwrap();
        assert_eq!(out["active"], json!(true));
        assert_eq!(out["emails"], json!([{"value": "a@x.com", "primary": false}]));
        assert_eq!(out["phoneNumbers"], json!([{"value": "555"}]));
    }

    #[test]
    fn entra_manager_shapes_in_bodies() {
        let manager = |body: Value| user(body).unwrap().get(ENTERPRISE_USER).cloned();
        // A bare id, as in Entra's PATCH value, is accepted in a POST or PUT too.
        assert_eq!(
            manager(json!({"userName": "x", ENTERPRISE_USER: {"manager": "m1"}})),
            Some(json!({"manager": {"value": "m1"}}))
        );
        assert_eq!(
            manager(json!({"userName": "x", ENTERPRISE_USER: {"manager": [{"value": "m1", "$ref": "../Users/m1"}]}})),
            Some(json!({"manager": {"value": "m1", "$ref": "../Users/m1"}}))
        );
        // An empty id is no manager.
        assert_eq!(manager(json!({"userName": "x", ENTERPRISE_USER: {"manager": ""}})), None);
        assert_eq!(
            manager(json!({"userName": "x", ENTERPRISE_USER: {"manager": {"value": ""}, "department": "D"}})),
            Some(json!({"department": "D"}))
        );
        // Only a one-element array of an object is unwrapped.
        assert!(invalid(user(
            json!({"userName": "x", ENTERPRISE_USER: {"manager": [{"value": "a"}, {"value": "b"}]}})
        ))
        .contains("is single-valued, not an array"));
        assert!(invalid(user(json!({"userName": "x", "name": ["Barbara"]}))).contains("`name` is single-valued"));
        // Multi-valued complex attributes still need objects.
        assert!(invalid(user(json!({"userName": "x", "emails": ["a@x.com"]}))).contains("must be an object"));
    }

    #[test]
    fn type_errors() {
        assert_eq!(invalid(user(json!({"userName": 42}))), "`userName` must be a string, not the number 42");
        assert_eq!(
            invalid(user(json!({"userName": "x", "active": "yes"}))),
            "`active` must be a boolean, not the string \"yes\""
        );
        assert_eq!(
            invalid(user(json!({"userName": "x", "name": "Barbara"}))),
            "`name` must be an object, not the string \"Barbara\""
        );
        assert_eq!(
            invalid(user(json!({"userName": "x", "name": {"givenName": 1}}))),
            "`name.givenName` must be a string, not the number 1"
        );
        assert_eq!(
            invalid(user(json!({"userName": "x", "emails": [{"value": true}]}))),
            "`emails[0].value` must be a string, not the boolean true"
        );
        assert_eq!(
            invalid(user(json!({"userName": "x", "emails": ["a@x.com"]}))),
            "`emails[0]` must be an object, not the string \"a@x.com\""
        );
        assert_eq!(invalid(user(json!({"userName": "x", "title": ["a"]}))), "`title` is single-valued, not an array");
        assert_eq!(invalid(user(json!({"userName": "x", "shoeSize": 42}))), "unknown attribute `shoeSize` for User");
        assert_eq!(
            invalid(user(json!({"userName": "x", "name": {"nick": "a"}}))),
            "unknown sub-attribute `nick` in `name`"
        );
        assert_eq!(
            invalid(user(
                json!({"userName": "x", "emails": [{"value": "a", "primary": true}, {"value": "b", "primary": "TRUE"}]})
            )),
            "`emails` has more than one primary value"
        );
        assert_eq!(user(json!([1])).unwrap_err().kind(), ErrorKind::InvalidSyntax);
    }

    #[test]
    fn date_times_are_rfc_3339() {
        let created = COMMON[2].sub_attribute("created").unwrap();
        assert!(attribute_value(created, json!("2011-05-13T04:42:34Z"), "created").unwrap().is_some());
        assert!(attribute_value(created, json!("2011-05-13T04:42:34.123+02:00"), "created").unwrap().is_some());
        assert_eq!(
            attribute_value(created, json!("yesterday"), "created").unwrap_err().kind(),
            ErrorKind::InvalidValue
        );
        assert_eq!(attribute_value(created, json!(1300000000), "created").unwrap_err().kind(), ErrorKind::InvalidValue);
    }

    #[test]
    fn required_attributes() {
        assert_eq!(invalid(user(json!({"displayName": "x"}))), "`userName` is required");
        assert_eq!(invalid(user(json!({"userName": null}))), "`userName` is required");
        assert_eq!(invalid(user(json!({"userName": ""}))), "`userName` is required");
        assert_eq!(invalid(normalize(ResourceKind::Group, json!({"members": []}))), "`displayName` is required");
    }

    #[test]
    fn unassigned_values_dropped() {
        let out = user(json!({
            "userName": "x",
            "title": null,
            "emails": [],
            "phoneNumbers": [null],
            "name": {"givenName": null},
            "nickName": "",
        }))
        .unwrap();
        // Empty strings are values, kept as sent.
        assert_eq!(out, json!({"schemas": [USER], "userName": "x", "nickName": ""}));
    }

    #[test]
    fn values_preserved_exactly() {
        let out = user(json!({"userName": "BJensen@Example.COM", "externalId": "  Ext  ", "emails": [{"value": "B@X.com", "type": "Work"}]})).unwrap();
        assert_eq!(out["userName"], "BJensen@Example.COM");
        assert_eq!(out["externalId"], "  Ext  ");
        assert_eq!(out["emails"][0]["type"], "Work");
    }

    #[test]
    fn group_members() {
        let out = normalize(
            ResourceKind::Group,
            json!({
                "schemas": [GROUP],
                "id": "e9e30dba",
                "displayName": "Tour Guides",
                "Members": [
                    {"value": "2819c223", "$ref": "https://example.com/v2/Users/2819c223", "display": "Babs", "type": "user"},
                    {"VALUE": "902c246b", "type": "Group"},
                    {"value": "c0ffee"},
                    {"value": "2819c223", "Display": "Babs J", "type": "User"}
                ],
                "meta": {"resourceType": "Group"}
            }),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({
                "schemas": [GROUP],
                "displayName": "Tour Guides",
                "members": [
                    {"value": "902c246b", "type": "Group"},
                    {"value": "c0ffee"},
                    {"value": "2819c223", "display": "Babs J", "type": "User"}
                ]
            })
        );
        let group = |members: Value| normalize(ResourceKind::Group, json!({"displayName": "g", "members": members}));
        assert_eq!(invalid(group(json!([{"display": "x"}]))), "`members[0]` has no `value`");
        assert_eq!(
            invalid(group(json!([{"value": 7}]))),
            "`members[0].value` must be a non-empty string, not the number 7"
        );
        assert_eq!(
            invalid(group(json!(["abc"]))),
            "`members[0]` must be an object with a `value`, not the string \"abc\""
        );
        assert!(invalid(group(json!([{"value": "a", "type": "Device"}]))).contains("must be \"User\" or \"Group\""));
        assert!(invalid(group(json!([{"value": "a", "display": 1}]))).contains("`members[0].display` must be a string"));
        assert_eq!(group(json!({"value": "a"})).unwrap()["members"], json!([{"value": "a"}]));
        assert_eq!(group(json!([])).unwrap(), json!({"schemas": [GROUP], "displayName": "g"}));
        assert_eq!(
            invalid(normalize(ResourceKind::Group, json!({"displayName": "g", "userName": "x"}))),
            "unknown attribute `userName` for Group"
        );
    }
}
