use proto::{AttrPath, Filter, ResourceKind};
use serde_json::{json, Map, Value};

use crate::time_util::format_rfc3339;

/// A stored User or Group as read back: its canonical JSON (without `id`, `meta`, `members`,
/// `groups`, which the store owns) plus what the store derives.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub kind: ResourceKind,
    pub id: String,
    pub data: Value,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Groups only, when loaded (a read that excludes `members` never loads them).
    pub members: Option<Vec<Member>>,
    /// Users only: the groups the user is a direct member of.
    pub groups: Option<Vec<GroupRef>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub kind: ResourceKind,
    /// As the IdP sent it (returned unchanged, so it sees no drift).
    pub display: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: String,
    pub display: Option<String>,
}

impl Resource {
    /// The weak ETag of this version, as sent in `ETag` and `meta.version`.
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }

    /// The SCIM representation, with `meta.location` and `$ref`s under `base` (the tenant's SCIM
    /// base URL, e.g. `https://host/scim/v2/acme`). Attribute projection is applied afterwards.
    pub fn to_scim(&self, base: &str) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), Value::String(self.id.clone()));
        if let Value::Object(data) = &self.data {
            for (k, v) in data {
                out.insert(k.clone(), v.clone());
            }
        }
        if let Some(members) = &self.members {
            let members: Vec<Value> = members
                .iter()
                .map(|m| {
                    let mut v = json!({
                        "value": m.id,
                        "$ref": format!("{base}{}/{}", m.kind.endpoint(), m.id),
                        "type": m.kind.name(),
                    });
                    if let (Some(display), Value::Object(obj)) = (&m.display, &mut v) {
                        obj.insert("display".into(), Value::String(display.clone()));
                    }
                    v
                })
                .collect();
            if !members.is_empty() {
                out.insert("members".into(), Value::Array(members));
            }
        }
        if let Some(groups) = &self.groups {
            let groups: Vec<Value> = groups
                .iter()
                .map(|g| {
                    let mut v = json!({
                        "value": g.id,
                        "$ref": format!("{base}/Groups/{}", g.id),
                        "type": "direct",
                    });
                    if let (Some(display), Value::Object(obj)) = (&g.display, &mut v) {
                        obj.insert("display".into(), Value::String(display.clone()));
                    }
                    v
                })
                .collect();
            if !groups.is_empty() {
                out.insert("groups".into(), Value::Array(groups));
            }
        }
        out.insert(
            "meta".into(),
            json!({
                "resourceType": self.kind.name(),
                "created": format_rfc3339(self.created_at),
                "lastModified": format_rfc3339(self.updated_at),
                "location": format!("{base}{}/{}", self.kind.endpoint(), self.id),
                "version": self.etag(),
            }),
        );
        Value::Object(out)
    }
}

/// A list or search request after parsing: what to match, in which order, which page.
#[derive(Debug, Clone)]
pub struct Query {
    pub filter: Option<Filter>,
    pub sort_by: Option<AttrPath>,
    pub descending: bool,
    /// 1-based, as in SCIM.
    pub start_index: u64,
    pub count: u64,
    /// Load group members (false when the projection excludes them).
    pub with_members: bool,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub total: u64,
    pub resources: Vec<Resource>,
}

/// `If-Match` / `If-None-Match` on a request (RFC 7644 §3.14, RFC 9110 §13.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Precondition {
    #[default]
    None,
    /// `If-Match`: proceed only if the current version is one of these (`*` is `Any`).
    IfMatch(EntityTags),
    /// `If-None-Match`: on a read, answer "not modified" when the current version is listed.
    IfNoneMatch(EntityTags),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityTags {
    Any,
    Versions(Vec<i64>),
}

impl EntityTags {
    /// Parse a header value: `*`, or a comma-separated list of `W/"n"` / `"n"`. Tags that are not
    /// ours can never match, so they are kept as an impossible version.
    pub fn parse(header: &str) -> Self {
        if header.trim() == "*" {
            return Self::Any;
        }
        let versions = header
            .split(',')
            .map(|tag| {
                let tag = tag.trim();
                let tag = tag.strip_prefix("W/").unwrap_or(tag);
                tag.trim_matches('"').parse::<i64>().unwrap_or(-1)
            })
            .collect();
        Self::Versions(versions)
    }

    pub fn matches(&self, version: i64) -> bool {
        match self {
            Self::Any => true,
            Self::Versions(v) => v.contains(&version),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_parse_weak_strong_and_star() {
        assert!(EntityTags::parse("W/\"3\"").matches(3));
        assert!(EntityTags::parse("\"3\", W/\"4\"").matches(4));
        assert!(!EntityTags::parse("W/\"3\"").matches(4));
        assert!(EntityTags::parse("*").matches(99));
        assert!(!EntityTags::parse("W/\"abc\"").matches(1));
    }
}
