//! `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9).

use serde_json::{Map, Value};

use crate::filter::AttrPath;
use crate::schema::{find, AttrDef, ResourceKind, Returned};
use crate::Error;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    pub attributes: Vec<AttrPath>,
    pub excluded: Vec<AttrPath>,
}

/// What happens to one attribute of a resource.
#[derive(Debug, PartialEq)]
enum Action {
    Keep,
    Drop,
    /// Keep only these sub-attributes (canonical names).
    KeepSubs(Vec<&'static str>),
    /// Drop these sub-attributes (canonical names).
    DropSubs(Vec<&'static str>),
}

impl Projection {
    /// Parse the comma-separated query parameters (or SearchRequest arrays joined by commas).
    /// Unknown attribute names are ignored, as RFC 7644 asks servers to be lenient here.
    pub fn parse(kind: ResourceKind, attributes: Option<&str>, excluded: Option<&str>) -> Result<Self, Error> {
        Ok(Self { attributes: parse_list(kind, attributes)?, excluded: parse_list(kind, excluded)? })
    }

    /// The same, with the top-level attribute `name` (canonical, e.g. "members") left out too.
    pub fn excluding(mut self, name: &str) -> Self {
        self.excluded.push(AttrPath::simple(name));
        self
    }

    /// Whether the top-level attribute `name` (canonical, e.g. "members") will be returned, so
    /// the store can skip loading it.
    pub fn includes(&self, kind: ResourceKind, name: &str) -> bool {
        match kind.resolve(&AttrPath::simple(name)) {
            Some(resolved) => self.action(kind, resolved.schema, resolved.attr) != Action::Drop,
            None => self.attributes.is_empty(),
        }
    }

    /// Remove what the client did not ask for, honouring `returned` (always / default / request /
    /// never) from the schema. `id` and `schemas` are always kept.
    pub fn apply(&self, kind: ResourceKind, resource: &mut Value) {
        let Value::Object(map) = resource else {
            return;
        };
        let core = kind.core_schema().id;
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            if key == "schemas" || key == "id" {
                continue;
            }
            if let Some(ext) = kind.extension(&key) {
                let Some(Value::Object(attrs)) = map.get_mut(&key) else {
                    continue;
                };
                let names: Vec<String> = attrs.keys().cloned().collect();
                for name in names {
                    let action = match find(ext.attributes, &name) {
                        Some(def) => self.action(kind, ext.id, def),
                        None => self.unknown_action(),
                    };
                    apply_action(attrs, &name, action);
                }
                if attrs.is_empty() {
                    map.remove(&key);
                }
                continue;
            }
            let action = match kind.core_attribute(&key) {
                Some(def) => self.action(kind, core, def),
                None => self.unknown_action(),
            };
            apply_action(map, &key, action);
        }
    }

    /// A key the schema does not describe is treated like a `returned: default` attribute.
    fn unknown_action(&self) -> Action {
        if self.attributes.is_empty() {
            Action::Keep
        } else {
            Action::Drop
        }
    }

    /// The fate of attribute `def` of schema `schema` under this projection.
    fn action(&self, kind: ResourceKind, schema: &str, def: &'static AttrDef) -> Action {
        match def.returned {
            Returned::Never => return Action::Drop,
            Returned::Always => return Action::Keep,
            Returned::Default | Returned::Request => {}
        }
        let whole_extension =
            |paths: &[AttrPath]| paths.iter().any(|p| extension_urn(kind, p).is_some_and(|urn| urn == schema));
        // The sub-attributes named for this attribute; `None` in the list means the whole of it.
        let named = |paths: &[AttrPath]| -> Vec<Option<&'static str>> {
            paths
                .iter()
                .filter_map(|p| kind.resolve(p))
                .filter(|r| r.schema == schema && r.attr.name == def.name)
                .map(|r| r.sub.map(|s| s.name))
                .collect()
        };
        if !self.attributes.is_empty() {
            if whole_extension(&self.attributes) {
                return Action::Keep;
            }
            let named = named(&self.attributes);
            return if named.is_empty() {
                Action::Drop
            } else if named.contains(&None) {
                Action::Keep
            } else {
                Action::KeepSubs(named.into_iter().flatten().collect())
            };
        }
        if def.returned == Returned::Request || whole_extension(&self.excluded) {
            return Action::Drop;
        }
        let named = named(&self.excluded);
        if named.is_empty() {
            Action::Keep
        } else if named.contains(&None) {
            Action::Drop
        } else {
            Action::DropSubs(named.into_iter().flatten().collect())
        }
    }
}

fn parse_list(kind: ResourceKind, list: Option<&str>) -> Result<Vec<AttrPath>, Error> {
    let mut paths = Vec::new();
    for item in list.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let path: AttrPath =
            item.parse().map_err(|e: Error| Error::invalid_value(format!("`{item}` is not an attribute name: {e}")))?;
        if kind.resolve(&path).is_some() || extension_urn(kind, &path).is_some() {
            paths.push(path);
        }
    }
    Ok(paths)
}

/// The URN of the extension a path names as a whole (`urn:...:enterprise:2.0:User`, which the
/// path grammar reads as URN `urn:...:2.0` and name `User`).
fn extension_urn(kind: ResourceKind, path: &AttrPath) -> Option<&'static str> {
    if path.sub.is_some() {
        return None;
    }
    let urn = path.urn.as_ref()?;
    kind.extension(&format!("{urn}:{}", path.name)).map(|ext| ext.id)
}

fn apply_action(map: &mut Map<String, Value>, key: &str, action: Action) {
    let keep = |subs: &[&str], name: &str, wanted: bool| subs.iter().any(|s| s.eq_ignore_ascii_case(name)) == wanted;
    let (subs, wanted) = match action {
        Action::Keep => return,
        Action::Drop => {
            map.remove(key);
            return;
        }
        Action::KeepSubs(subs) => (subs, true),
        Action::DropSubs(subs) => (subs, false),
    };
    let Some(value) = map.get_mut(key) else {
        return;
    };
    match value {
        Value::Object(fields) => fields.retain(|name, _| keep(&subs, name, wanted)),
        Value::Array(items) => {
            for item in items.iter_mut() {
                if let Value::Object(fields) = item {
                    fields.retain(|name, _| keep(&subs, name, wanted));
                }
            }
            items.retain(|item| !item.as_object().is_some_and(Map::is_empty));
        }
        // Sub-attributes of a simple value: nothing is left of it.
        _ if wanted => {
            map.remove(key);
            return;
        }
        _ => {}
    }
    let empty = match map.get(key) {
        Some(Value::Object(fields)) => fields.is_empty(),
        Some(Value::Array(items)) => items.is_empty(),
        _ => false,
    };
    if empty {
        map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::{ENTERPRISE_USER, GROUP, USER};
    use crate::ErrorKind;

    fn user() -> Value {
        json!({
            "schemas": [USER, ENTERPRISE_USER],
            "id": "2819c223",
            "externalId": "701984",
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "b@example.com", "type": "work"}, {"value": "b@example.org", "type": "home"}],
            "password": "leaked?",
            "groups": [{"value": "g1", "display": "Guides"}],
            ENTERPRISE_USER: {"department": "Tours", "employeeNumber": "42", "manager": {"value": "m", "displayName": "John"}},
            "meta": {"resourceType": "User", "location": "https://x/Users/2819c223"}
        })
    }

    fn project(attributes: Option<&str>, excluded: Option<&str>) -> Value {
        let mut resource = user();
        Projection::parse(ResourceKind::User, attributes, excluded).unwrap().apply(ResourceKind::User, &mut resource);
        resource
    }

    #[test]
    fn default_removes_only_never_returned() {
        let mut expected = user();
        expected.as_object_mut().unwrap().remove("password");
        assert_eq!(project(None, None), expected);
    }

    #[test]
    fn attributes_keep_only_those_plus_always_returned() {
        assert_eq!(
            project(Some("userName"), None),
            json!({"schemas": [USER, ENTERPRISE_USER], "id": "2819c223", "userName": "bjensen"})
        );
        assert_eq!(
            project(Some(" USERNAME , meta "), None),
            json!({"schemas": [USER, ENTERPRISE_USER], "id": "2819c223", "userName": "bjensen", "meta": user()["meta"]})
        );
        // `password` is never returned, even when asked for.
        assert_eq!(project(Some("password"), None), json!({"schemas": [USER, ENTERPRISE_USER], "id": "2819c223"}));
    }

    #[test]
    fn sub_attribute_selection() {
        assert_eq!(
            project(Some("name.givenName,emails.value"), None),
            json!({
                "schemas": [USER, ENTERPRISE_USER],
                "id": "2819c223",
                "name": {"givenName": "Barbara"},
                "emails": [{"value": "b@example.com"}, {"value": "b@example.org"}]
            })
        );
        // The whole attribute wins over one of its sub-attributes.
        assert_eq!(project(Some("name.givenName,name"), None)["name"], user()["name"]);
    }

    #[test]
    fn extension_selection() {
        assert_eq!(
            project(Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department,manager.value"), None),
            json!({"schemas": [USER, ENTERPRISE_USER], "id": "2819c223", ENTERPRISE_USER: {"department": "Tours", "manager": {"value": "m"}}})
        );
        assert_eq!(
            project(Some(ENTERPRISE_USER), None),
            json!({"schemas": [USER, ENTERPRISE_USER], "id": "2819c223", ENTERPRISE_USER: user()[ENTERPRISE_USER]})
        );
        let out = project(None, Some(ENTERPRISE_USER));
        assert!(out.get(ENTERPRISE_USER).is_none());
        let out = project(None, Some("department,employeeNumber,manager"));
        assert!(out.get(ENTERPRISE_USER).is_none(), "an emptied extension is removed");
    }

    #[test]
    fn excluded_attributes() {
        let out = project(None, Some("emails,name.familyName,id,groups"));
        assert!(out.get("emails").is_none());
        assert!(out.get("groups").is_none());
        assert_eq!(out["name"], json!({"givenName": "Barbara"}));
        assert_eq!(out["id"], "2819c223", "`id` is always returned");
        let out = project(None, Some("emails.type"));
        assert_eq!(out["emails"], json!([{"value": "b@example.com"}, {"value": "b@example.org"}]));
    }

    #[test]
    fn unknown_names_are_ignored() {
        let projection =
            Projection::parse(ResourceKind::User, Some("shoeSize, userName, urn:example:x:y"), Some("nope")).unwrap();
        assert_eq!(projection.attributes.len(), 1);
        assert!(projection.excluded.is_empty());
        assert_eq!(
            Projection::parse(ResourceKind::User, Some("emails[type eq \"work\"]"), None).unwrap_err().kind(),
            ErrorKind::InvalidValue
        );
        assert_eq!(Projection::parse(ResourceKind::User, Some(" , "), Some("")).unwrap(), Projection::default());
    }

    #[test]
    fn includes() {
        let group = ResourceKind::Group;
        let parse = |a: Option<&str>, e: Option<&str>| Projection::parse(group, a, e).unwrap();
        assert!(Projection::default().includes(group, "members"));
        assert!(!parse(None, Some("members")).includes(group, "members"));
        assert!(parse(None, Some("members.display")).includes(group, "members"));
        assert!(!parse(Some("displayName"), None).includes(group, "members"));
        assert!(parse(Some("members.value"), None).includes(group, "members"));
        assert!(parse(Some("displayName"), None).includes(group, "id"));
        assert!(!Projection::default().includes(ResourceKind::User, "password"));
        assert!(Projection::default().includes(ResourceKind::User, "department"));
    }

    #[test]
    fn groups_project_members() {
        let mut resource = json!({
            "schemas": [GROUP], "id": "g", "displayName": "G",
            "members": [{"value": "u", "$ref": "https://x/Users/u", "display": "U", "type": "User"}]
        });
        Projection::parse(ResourceKind::Group, Some("members.value"), None)
            .unwrap()
            .apply(ResourceKind::Group, &mut resource);
        assert_eq!(resource, json!({"schemas": [GROUP], "id": "g", "members": [{"value": "u"}]}));
    }
}
