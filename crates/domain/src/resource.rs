use proto::render::StoredResource;
pub use proto::render::{GroupRef, Member};
use proto::{AttrPath, Filter, ResourceKind};
use serde_json::Value;

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

impl Resource {
    /// The weak ETag of this version, as sent in `ETag` and `meta.version`.
    pub fn etag(&self) -> String {
        proto::render::etag(self.version)
    }

    /// The SCIM representation, with `meta.location` and `$ref`s under `base` (the tenant's SCIM
    /// base URL, e.g. `https://host/scim/v2/acme`). Attribute projection is applied afterwards.
    pub fn to_scim(&self, base: &str) -> Value {
        proto::render::render(
            StoredResource {
                kind: self.kind,
                id: &self.id,
                data: &self.data,
                members: self.members.as_deref(),
                groups: self.groups.as_deref(),
                created_at: self.created_at,
                updated_at: self.updated_at,
                version: self.version,
            },
            base,
        )
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
