//! A stored User or Group as SCIM JSON (RFC 7643 §3): its attributes, `id`, the derived
//! `members` / `groups` with their `$ref`s, and `meta`. Attribute projection is applied afterwards.

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::schema::ResourceKind;

/// A member of a group, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub kind: ResourceKind,
    /// As the IdP sent it (returned unchanged, so it sees no drift).
    pub display: Option<String>,
}

/// A group a user is a direct member of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: String,
    pub display: Option<String>,
}

/// What a response says about one stored resource.
#[derive(Debug, Clone, Copy)]
pub struct StoredResource<'a> {
    pub kind: ResourceKind,
    pub id: &'a str,
    /// The canonical attributes, without `id`, `meta`, `members` and `groups`.
    pub data: &'a Value,
    /// Groups only, when loaded.
    pub members: Option<&'a [Member]>,
    /// Users only, when loaded.
    pub groups: Option<&'a [GroupRef]>,
    /// Microseconds since the Unix epoch.
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

/// The weak ETag of a version, as sent in `ETag` and `meta.version`.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// RFC 3339 for `meta` (`2026-11-22T10:00:00.123456Z`) from microseconds since the Unix epoch.
pub fn format_rfc3339(micros: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The SCIM representation of `resource`, with `meta.location` and `$ref`s under `base` (the
/// tenant's SCIM base URL, e.g. `https://host/scim/v2/acme`).
pub fn render(resource: StoredResource<'_>, base: &str) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), Value::String(resource.id.to_owned()));
    if let Value::Object(data) = resource.data {
        for (k, v) in data {
            out.insert(k.clone(), v.clone());
        }
    }
    if let Some(members) = resource.members.filter(|m| !m.is_empty()) {
        let members = members
            .iter()
            .map(|m| reference(&m.id, format!("{base}{}/{}", m.kind.endpoint(), m.id), m.kind.name(), &m.display))
            .collect();
        out.insert("members".into(), Value::Array(members));
    }
    if let Some(groups) = resource.groups.filter(|g| !g.is_empty()) {
        let groups =
            groups.iter().map(|g| reference(&g.id, format!("{base}/Groups/{}", g.id), "direct", &g.display)).collect();
        out.insert("groups".into(), Value::Array(groups));
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": resource.kind.name(),
            "created": format_rfc3339(resource.created_at),
            "lastModified": format_rfc3339(resource.updated_at),
            "location": format!("{base}{}/{}", resource.kind.endpoint(), resource.id),
            "version": etag(resource.version),
        }),
    );
    Value::Object(out)
}

/// One entry of `members` or `groups`.
fn reference(id: &str, url: String, kind: &str, display: &Option<String>) -> Value {
    let mut entry = Map::new();
    entry.insert("value".into(), Value::String(id.to_owned()));
    entry.insert("$ref".into(), Value::String(url));
    entry.insert("type".into(), Value::String(kind.to_owned()));
    if let Some(display) = display {
        entry.insert("display".into(), Value::String(display.clone()));
    }
    Value::Object(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_renders_its_members_with_refs_and_its_meta() {
        let members = [Member { id: "u1".into(), kind: ResourceKind::User, display: Some("Ann".into()) }];
        let data = json!({"schemas": [crate::schema::GROUP], "displayName": "eng"});
        let body = render(
            StoredResource {
                kind: ResourceKind::Group,
                id: "g1",
                data: &data,
                members: Some(&members),
                groups: None,
                created_at: 0,
                updated_at: 1_000_000,
                version: 3,
            },
            "https://h/scim/v2/acme",
        );
        assert_eq!(
            body["members"],
            json!([{"value": "u1", "$ref": "https://h/scim/v2/acme/Users/u1", "type": "User", "display": "Ann"}])
        );
        assert_eq!(body["meta"]["location"], "https://h/scim/v2/acme/Groups/g1");
        assert_eq!(body["meta"]["version"], "W/\"3\"");
        assert_eq!(body["meta"]["lastModified"], "1970-01-01T00:00:01Z");
        assert!(body.get("groups").is_none());
    }
}
