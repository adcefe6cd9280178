//! RFC 7644 §3.5.2 PATCH: parsing the PatchOp message and applying it to a stored resource.

use std::fmt;

use serde_json::{Map, Value};

use crate::filter::{self, AttrPath, CompValue, CompareOp, Filter};
use crate::path::{self, PatchPath};
use crate::resource::{self, attribute_value, describe, is_primary, member_values};
use crate::schema::{find, AttrDef, AttrType, Mutability, ResourceKind, Returned};
use crate::value::get_ci;
use crate::Error;

pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Most operations accepted in one PATCH request.
pub const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOp {
    Add,
    Remove,
    Replace,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    pub op: PatchOp,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// A change to a group's `members`, which the store keeps in its own table rather than in the
/// resource JSON. Values are member objects as sent (`{"value": "<id>", ...}`).
#[derive(Debug, Clone, PartialEq)]
pub enum MemberOp {
    Add(Vec<Value>),
    /// Remove the members with these ids.
    Remove(Vec<String>),
    /// Remove the members matching a filter on `value`, `display`, `type` (paths relative to
    /// `members`).
    RemoveWhere(Filter),
    RemoveAll,
    Replace(Vec<Value>),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PatchOutcome {
    /// Membership changes in request order (groups only).
    pub member_ops: Vec<MemberOp>,
}

impl PatchOp {
    /// `"add"`, `"remove"` or `"replace"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Replace => "replace",
        }
    }
}

impl fmt::Display for PatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parse a PatchOp message: `schemas` must name [`PATCH_OP`], `Operations` must be a non-empty
/// array of at most [`MAX_OPERATIONS`]. `op` is matched case-insensitively; a missing `path` is
/// allowed for add and replace.
pub fn parse_request(body: &Value) -> Result<Vec<PatchOperation>, Error> {
    if !body.is_object() {
        return Err(Error::invalid_syntax("a PATCH body must be a PatchOp JSON object"));
    }
    let names_patch_op = match get_ci(body, "schemas") {
        Some(Value::Array(names)) => names.iter().any(|n| n.as_str().is_some_and(|n| n.eq_ignore_ascii_case(PATCH_OP))),
        Some(Value::String(name)) => name.eq_ignore_ascii_case(PATCH_OP),
        _ => false,
    };
    if !names_patch_op {
        return Err(Error::invalid_syntax(format!("`schemas` must contain \"{PATCH_OP}\"")));
    }
    let ops = match get_ci(body, "Operations") {
        Some(Value::Array(ops)) => ops,
        Some(other) => {
            return Err(Error::invalid_syntax(format!("`Operations` must be an array, not {}", describe(other))))
        }
        None => return Err(Error::invalid_syntax("`Operations` is missing")),
    };
    if ops.is_empty() {
        return Err(Error::invalid_syntax("`Operations` is empty"));
    }
    if ops.len() > MAX_OPERATIONS {
        return Err(Error::too_large(format!(
            "{} operations in one PATCH; at most {MAX_OPERATIONS} are accepted",
            ops.len()
        )));
    }
    ops.iter().enumerate().map(|(i, op)| parse_operation(i, op)).collect()
}

fn parse_operation(index: usize, op: &Value) -> Result<PatchOperation, Error> {
    let here = |e: Error| e.map_detail(|d| format!("Operations[{index}]: {d}"));
    if !op.is_object() {
        return Err(here(Error::invalid_syntax(format!("an operation must be an object, not {}", describe(op)))));
    }
    let kind = match get_ci(op, "op") {
        Some(Value::String(s)) if s.eq_ignore_ascii_case("add") => PatchOp::Add,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("remove") => PatchOp::Remove,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("replace") => PatchOp::Replace,
        Some(other) => {
            return Err(here(Error::invalid_syntax(format!(
                "unknown op {other} (expected \"add\", \"remove\" or \"replace\")"
            ))))
        }
        None => return Err(here(Error::invalid_syntax("`op` is missing"))),
    };
    let path = match get_ci(op, "path") {
        None | Some(Value::Null) => None,
        // Some clients send `"path": ""` for a path-less operation.
        Some(Value::String(p)) if p.trim().is_empty() => None,
        Some(Value::String(p)) => {
            Some(path::parse(p).map_err(|e| e.map_detail(|d| format!("Operations[{index}]: path `{p}`: {d}")))?)
        }
        Some(other) => {
            return Err(here(Error::invalid_path(format!("`path` must be a string, not {}", describe(other)))))
        }
    };
    let operation = PatchOperation { op: kind, path, value: get_ci(op, "value").cloned() };
    check_operation(&operation).map_err(|e| context(e, index, &operation))?;
    Ok(operation)
}

/// The shape RFC 7644 §3.5.2 requires of each operation, independent of the resource.
fn check_operation(op: &PatchOperation) -> Result<(), Error> {
    match op.op {
        PatchOp::Remove if op.path.is_none() => Err(Error::no_target("remove needs a `path`")),
        PatchOp::Add if op.value.as_ref().is_none_or(Value::is_null) => {
            Err(Error::invalid_value("add needs a `value`"))
        }
        PatchOp::Replace if op.value.is_none() => Err(Error::invalid_value("replace needs a `value`")),
        _ => Ok(()),
    }
}

/// Apply `ops` in order to `resource`, the canonical JSON of a stored User or Group (without
/// `members` for groups: operations on members are returned as [`MemberOp`]s instead). Atomic: on
/// error `resource` is left as it was. The result is re-validated as a whole
/// ([`crate::resource::normalize`]), so a PATCH can never store what a PUT would refuse.
pub fn apply(kind: ResourceKind, resource: &mut Value, ops: &[PatchOperation]) -> Result<PatchOutcome, Error> {
    // Canonical spelling first, so every operation can address attributes by their schema name.
    let base = resource::normalize(kind, resource.clone()).unwrap_or_else(|_| resource.clone());
    let Value::Object(doc) = base else {
        return Err(Error::invalid_syntax(format!("the stored {} is not a JSON object", kind.name())));
    };
    let mut applier = Applier { kind, doc, member_ops: Vec::new() };
    for (index, op) in ops.iter().enumerate() {
        check_operation(op).and_then(|()| applier.operation(op)).map_err(|e| context(e, index, op))?;
    }
    let patched = resource::normalize(kind, Value::Object(applier.doc))
        .map_err(|e| e.map_detail(|d| format!("the patched {} is invalid: {d}", kind.name())))?;
    *resource = patched;
    Ok(PatchOutcome { member_ops: applier.member_ops })
}

/// Prefix an error with the operation it came from, keeping its kind.
fn context(e: Error, index: usize, op: &PatchOperation) -> Error {
    let target = op.path.as_ref().map_or_else(|| "without path".to_owned(), |p| format!("`{p}`"));
    e.map_detail(|d| format!("Operations[{index}] ({} {target}): {d}", op.op))
}

/// How a target was named: by the operation's `path`, or as a key of a path-less `value`
/// object. Read-only keys in a value object are ignored (Okta sends back `id`); naming one in a
/// path is a mutability error.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Naming {
    Path,
    ValueKey,
}

struct Applier {
    kind: ResourceKind,
    doc: Map<String, Value>,
    member_ops: Vec<MemberOp>,
}

impl Applier {
    fn operation(&mut self, op: &PatchOperation) -> Result<(), Error> {
        match &op.path {
            Some(path) => self.at_path(op.op, path, op.value.as_ref(), Naming::Path),
            None => match &op.value {
                Some(Value::Object(attrs)) => self.value_object(op.op, attrs),
                Some(other) => Err(Error::invalid_value(format!(
                    "without a `path`, `value` must be an object of attributes, not {}",
                    describe(other)
                ))),
                None => Err(Error::invalid_value(format!("{} needs a `value`", op.op))),
            },
        }
    }

    /// A path-less add or replace: each key is an attribute path (`name.givenName` and
    /// URN-qualified names included), or a schema URN whose value holds that schema's attributes.
    fn value_object(&mut self, op: PatchOp, attrs: &Map<String, Value>) -> Result<(), Error> {
        for (key, value) in attrs {
            if key.eq_ignore_ascii_case("schemas") {
                continue;
            }
            if let Some(schema) = self.kind.schema_by_urn(key) {
                match value {
                    Value::Object(inner) => {
                        // An extension object serialised whole carries its own `schemas`.
                        for (name, value) in inner.iter().filter(|(name, _)| !name.eq_ignore_ascii_case("schemas")) {
                            let mut path = key_path(name)?;
                            if path.attr.urn.is_none() {
                                path.attr.urn = Some(schema.id.to_owned());
                            }
                            self.at_path(op, &path, Some(value), Naming::ValueKey)?;
                        }
                    }
                    Value::Null if op == PatchOp::Replace && schema.id != self.kind.core_schema().id => {
                        self.doc.remove(schema.id);
                    }
                    other => {
                        return Err(Error::invalid_value(format!(
                            "`{key}` must be an object of {} attributes, not {}",
                            schema.name,
                            describe(other)
                        )))
                    }
                }
                continue;
            }
            self.at_path(op, &key_path(key)?, Some(value), Naming::ValueKey)?;
        }
        Ok(())
    }

    fn at_path(&mut self, op: PatchOp, path: &PatchPath, value: Option<&Value>, naming: Naming) -> Result<(), Error> {
        if let Some(ext) = self.whole_extension(path) {
            return match (op, value) {
                (PatchOp::Remove, _) | (PatchOp::Replace, Some(Value::Null)) => {
                    self.doc.remove(ext);
                    Ok(())
                }
                (_, Some(Value::Object(attrs))) => {
                    let mut wrapped = Map::new();
                    wrapped.insert(ext.to_owned(), Value::Object(attrs.clone()));
                    self.value_object(op, &wrapped)
                }
                (_, other) => Err(Error::invalid_value(format!(
                    "`{ext}` takes an object of its attributes, not {}",
                    other.map_or_else(|| "nothing".into(), describe)
                ))),
            };
        }
        let unknown = |what: String| match naming {
            Naming::Path => Error::invalid_path(what),
            Naming::ValueKey => Error::invalid_value(what),
        };
        let Some(resolved) = self.kind.resolve(&path.attr) else {
            return Err(unknown(format!("unknown attribute `{}` for {}", path.attr, self.kind.name())));
        };
        let attr = resolved.attr;
        let sub = match (&path.filter, &path.sub) {
            (None, None) => resolved.sub,
            (Some(_), _) if resolved.sub.is_some() || !(attr.multi_valued && attr.ty == AttrType::Complex) => {
                return Err(Error::invalid_path(format!(
                    "`{}` is not a multi-valued complex attribute: it takes no value filter",
                    path.attr
                )));
            }
            (Some(_), None) => None,
            (Some(_), Some(sub)) => Some(
                attr.sub_attribute(sub)
                    .ok_or_else(|| unknown(format!("`{}` has no sub-attribute `{sub}`", attr.name)))?,
            ),
            (None, Some(_)) => return Err(Error::invalid_path("a sub-attribute after `]` needs a value filter")),
        };
        let leaf = sub.unwrap_or(attr);
        if attr.mutability == Mutability::ReadOnly || leaf.mutability == Mutability::ReadOnly {
            return match naming {
                Naming::ValueKey => Ok(()),
                Naming::Path => Err(Error::mutability(format!("`{path}` is read-only"))),
            };
        }
        if self.kind == ResourceKind::Group && !resolved.extension && attr.name == "members" {
            return self.members(op, path, sub, value);
        }
        if leaf.returned == Returned::Never {
            // `password`: accepted like in a PUT, and never stored.
            return Ok(());
        }
        if op == PatchOp::Remove && path.filter.is_none() && sub.is_none() && attr.required {
            return Err(Error::invalid_value(format!("`{}` is required and cannot be removed", attr.name)));
        }
        let label = path.to_string();
        let value = value.cloned().unwrap_or(Value::Null);
        if !resolved.extension {
            return if attr.multi_valued {
                multi_valued(&mut self.doc, op, attr, path.filter.as_ref(), sub, value, &label)
            } else {
                single_valued(&mut self.doc, op, attr, sub, value, &label)
            };
        }
        // Extension attributes live in the object under the schema URN. The working document is
        // discarded on error, so it is fine to take the object out and put it back after.
        let mut container = take_object(&mut self.doc, resolved.schema);
        if attr.multi_valued {
            multi_valued(&mut container, op, attr, path.filter.as_ref(), sub, value, &label)?;
        } else {
            single_valued(&mut container, op, attr, sub, value, &label)?;
        }
        if !container.is_empty() {
            self.doc.insert(resolved.schema.into(), Value::Object(container));
        }
        Ok(())
    }

    /// `urn:...:enterprise:2.0:User` as a path: the whole extension object.
    fn whole_extension(&self, path: &PatchPath) -> Option<&'static str> {
        if path.filter.is_some() || path.sub.is_some() || path.attr.sub.is_some() {
            return None;
        }
        let urn = path.attr.urn.as_ref()?;
        self.kind.extension(&format!("{urn}:{}", path.attr.name)).map(|ext| ext.id)
    }

    /// Operations on a group's `members` become [`MemberOp`]s; the resource is not touched.
    fn members(
        &mut self,
        op: PatchOp,
        path: &PatchPath,
        sub: Option<&AttrDef>,
        value: Option<&Value>,
    ) -> Result<(), Error> {
        if let Some(sub) = sub {
            return Err(Error::mutability(format!(
                "`members.{}` cannot be changed: add or remove the member instead",
                sub.name
            )));
        }
        let value = value.cloned().unwrap_or(Value::Null);
        let member_op = match (op, &path.filter) {
            (PatchOp::Add, None) => {
                let members = member_values(value)?;
                if members.is_empty() {
                    return Ok(());
                }
                MemberOp::Add(members)
            }
            (PatchOp::Replace, None) => MemberOp::Replace(member_values(value)?),
            // Entra removes members with `path: members` and the members as the value.
            (PatchOp::Remove, None) if !value.is_null() => {
                let ids: Vec<String> = member_values(value)?
                    .iter()
                    .filter_map(|m| m.get("value").and_then(Value::as_str).map(str::to_owned))
                    .collect();
                if ids.is_empty() {
                    return Ok(());
                }
                MemberOp::Remove(ids)
            }
            (PatchOp::Remove, None) => MemberOp::RemoveAll,
            (PatchOp::Remove, Some(filter)) => {
                check_member_filter(filter)?;
                let mut ids = Vec::new();
                if member_ids(filter, &mut ids) {
                    MemberOp::Remove(ids)
                } else {
                    MemberOp::RemoveWhere(filter.clone())
                }
            }
            (PatchOp::Add, Some(_)) => {
                return Err(Error::invalid_path("members are added with `path: members`, not with a value filter"))
            }
            (PatchOp::Replace, Some(_)) => {
                return Err(Error::mutability("a member cannot be replaced in place: remove it and add the new one"))
            }
        };
        self.member_ops.push(member_op);
        Ok(())
    }
}

/// A key of a path-less value object, read as a path.
fn key_path(key: &str) -> Result<PatchPath, Error> {
    path::parse(key).map_err(|e| Error::invalid_value(format!("`{key}` in `value` is not an attribute path: {e}")))
}

/// `members[...]` filters are evaluated by the store over `value`, `display` and `type`.
fn check_member_filter(filter: &Filter) -> Result<(), Error> {
    let check = |attr: &AttrPath| {
        let known = ["value", "display", "type"].iter().any(|n| n.eq_ignore_ascii_case(&attr.name));
        if known && attr.urn.is_none() && attr.sub.is_none() {
            Ok(())
        } else {
            Err(Error::invalid_filter(format!("`{attr}` is not a member attribute (value, display or type)")))
        }
    };
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => check_member_filter(a).and_then(|()| check_member_filter(b)),
        Filter::Not(inner) => check_member_filter(inner),
        Filter::Compare { attr, .. } | Filter::Present(attr) => check(attr),
        Filter::ValuePath { attr, .. } => {
            Err(Error::invalid_filter(format!("`{attr}[...]` cannot be nested in `members[...]`")))
        }
    }
}

/// Collect the ids of `value eq "id" or value eq "id2" ...`; false when the filter has any other
/// shape.
fn member_ids(filter: &Filter, ids: &mut Vec<String>) -> bool {
    match filter {
        Filter::Compare { attr, op: CompareOp::Eq, value: CompValue::String(id) }
            if attr.name.eq_ignore_ascii_case("value") && attr.urn.is_none() && attr.sub.is_none() =>
        {
            ids.push(id.clone());
            true
        }
        Filter::Or(a, b) => member_ids(a, ids) && member_ids(b, ids),
        _ => false,
    }
}

fn single_valued(
    container: &mut Map<String, Value>,
    op: PatchOp,
    attr: &AttrDef,
    sub: Option<&AttrDef>,
    value: Value,
    label: &str,
) -> Result<(), Error> {
    if attr.ty != AttrType::Complex {
        let new = match op {
            PatchOp::Remove => None,
            PatchOp::Add | PatchOp::Replace => attribute_value(attr, value, label)?,
        };
        set(container, attr.name, new);
        return Ok(());
    }
    let mut fields = take_object(container, attr.name);
    match (op, sub) {
        (PatchOp::Remove, None) => fields.clear(),
        (PatchOp::Remove, Some(sub)) => {
            fields.remove(sub.name);
        }
        // Entra's bare manager id and one-element array become the object they stand for.
        (PatchOp::Add | PatchOp::Replace, None) => match resource::single_complex_shape(attr, value, label)? {
            // RFC 7644 §3.5.2.1/3: the given sub-attributes are set, the others left unchanged.
            Value::Object(given) => merge_complex(&mut fields, attr, &given, label)?,
            Value::Null => fields.clear(),
            other => {
                return Err(Error::invalid_value(format!(
                    "`{label}` is complex: expected an object, not {}",
                    describe(&other)
                )))
            }
        },
        (PatchOp::Add | PatchOp::Replace, Some(sub)) => set(&mut fields, sub.name, attribute_value(sub, value, label)?),
    }
    if !fields.is_empty() {
        container.insert(attr.name.into(), Value::Object(fields));
    }
    Ok(())
}

fn multi_valued(
    container: &mut Map<String, Value>,
    op: PatchOp,
    attr: &AttrDef,
    filter: Option<&Filter>,
    sub: Option<&AttrDef>,
    value: Value,
    label: &str,
) -> Result<(), Error> {
    let defs = attr.sub_attributes;
    let no_target = || Error::no_target(format!("`{label}` matched no value"));
    if op == PatchOp::Replace && filter.is_none() && sub.is_none() {
        // The whole attribute is replaced.
        set(container, attr.name, attribute_value(attr, value, label)?);
        return Ok(());
    }
    let mut items = take_array(container, attr.name);
    let hits: Vec<usize> = match filter {
        Some(filter) => {
            items.iter().enumerate().filter(|(_, item)| filter::matches(filter, item, defs)).map(|(i, _)| i).collect()
        }
        None => (0..items.len()).collect(),
    };
    match (op, filter, sub) {
        (PatchOp::Remove, None, None) => {
            if value.is_null() {
                items.clear();
            } else {
                // Remove the listed values only (Entra sends them with the remove).
                let listed = elements(attr, value, label)?;
                items.retain(|item| !listed.iter().any(|l| same_element(item, l, defs)));
            }
        }
        (PatchOp::Remove, Some(_), None) => {
            remove_indices(&mut items, &hits);
        }
        (PatchOp::Remove, _, Some(sub)) => {
            for &i in &hits {
                if let Some(Value::Object(fields)) = items.get_mut(i) {
                    fields.remove(sub.name);
                }
            }
        }
        (PatchOp::Add, None, None) => {
            let mut touched = Vec::new();
            for new in elements(attr, value, label)? {
                match items.iter().position(|item| same_element(item, &new, defs)) {
                    Some(i) => {
                        if let (Some(Value::Object(old)), Value::Object(new)) = (items.get_mut(i), new) {
                            old.extend(new);
                        }
                        touched.push(i);
                    }
                    None => {
                        touched.push(items.len());
                        items.push(new);
                    }
                }
            }
            demote_other_primaries(&mut items, &touched);
        }
        (PatchOp::Add | PatchOp::Replace, Some(filter), None) => {
            let mut new = elements(attr, value, label)?;
            if new.len() > 1 {
                return Err(Error::invalid_value(format!(
                    "`{label}` selects values to replace: give one object, not {}",
                    new.len()
                )));
            }
            let Some(new) = new.pop() else {
                // A null value: the matching elements become unassigned.
                remove_indices(&mut items, &hits);
                return Ok(());
            };
            if hits.is_empty() {
                // Entra replaces `addresses[type eq "work"]` on users without one and expects it
                // created: a filter of equalities describes the element, any other is noTarget.
                let mut element = match (op, template(filter, defs)) {
                    (_, Some(element)) => element,
                    (PatchOp::Add, None) => Map::new(),
                    (_, None) => return Err(no_target()),
                };
                if let Value::Object(fields) = new {
                    element.extend(fields);
                }
                items.push(Value::Object(element));
                let last = items.len().saturating_sub(1);
                demote_other_primaries(&mut items, &[last]);
            } else {
                for &i in &hits {
                    if let Some(item) = items.get_mut(i) {
                        match (op, item, &new) {
                            (PatchOp::Add, Value::Object(old), Value::Object(fields)) => old.extend(fields.clone()),
                            (_, item, _) => *item = new.clone(),
                        }
                    }
                }
                demote_other_primaries(&mut items, &hits);
            }
        }
        (PatchOp::Add | PatchOp::Replace, _, Some(sub)) => {
            let new = attribute_value(sub, value, label)?;
            if hits.is_empty() {
                match (filter, &new) {
                    // `emails.value` on an empty attribute: the first element.
                    (None, Some(v)) => {
                        let mut element = Map::new();
                        element.insert(sub.name.into(), v.clone());
                        items.push(Value::Object(element));
                    }
                    // Clearing what is not there leaves nothing to do.
                    (_, None) => {}
                    // Entra adds or replaces `emails[type eq "work"].value` for a user without a
                    // work email (the Validator expects both to work): the element is created
                    // from the filter's equalities.
                    (Some(filter), Some(v)) => {
                        let mut element = template(filter, defs).ok_or_else(no_target)?;
                        element.insert(sub.name.into(), v.clone());
                        items.push(Value::Object(element));
                        let last = items.len().saturating_sub(1);
                        demote_other_primaries(&mut items, &[last]);
                    }
                }
            } else {
                for &i in &hits {
                    if let Some(Value::Object(fields)) = items.get_mut(i) {
                        set(fields, sub.name, new.clone());
                    }
                }
                if sub.name == "primary" {
                    demote_other_primaries(&mut items, &hits);
                }
            }
        }
        (PatchOp::Replace, None, None) => {} // handled above
    }
    items.retain(|item| !item.as_object().is_some_and(Map::is_empty));
    if !items.is_empty() {
        container.insert(attr.name.into(), Value::Array(items));
    }
    Ok(())
}

/// The canonical elements of a value for a multi-valued attribute (a single object counts as
/// one element; null as none).
fn elements(attr: &AttrDef, value: Value, label: &str) -> Result<Vec<Value>, Error> {
    Ok(match attribute_value(attr, value, label)? {
        Some(Value::Array(items)) => items,
        Some(other) => vec![other],
        None => Vec::new(),
    })
}

/// Whether two elements of a multi-valued attribute are the same value: equal, or with equal
/// `value` sub-attributes (and no conflicting `type`).
fn same_element(a: &Value, b: &Value, defs: &[AttrDef]) -> bool {
    if a == b {
        return true;
    }
    let (Some(Value::String(x)), Some(Value::String(y))) = (a.get("value"), b.get("value")) else {
        return false;
    };
    let case_exact = find(defs, "value").is_some_and(|d| d.case_exact);
    let same_value = if case_exact { x == y } else { x.to_lowercase() == y.to_lowercase() };
    let same_type = match (a.get("type").and_then(Value::as_str), b.get("type").and_then(Value::as_str)) {
        (Some(s), Some(t)) => s.eq_ignore_ascii_case(t),
        _ => true,
    };
    same_value && same_type
}

/// RFC 7643 §2.4: at most one element is primary. When an operation made one of `touched`
/// primary, the others lose the flag.
fn demote_other_primaries(items: &mut [Value], touched: &[usize]) {
    let Some(&winner) = touched.iter().rev().find(|&&i| items.get(i).is_some_and(is_primary)) else {
        return;
    };
    for (i, item) in items.iter_mut().enumerate() {
        if i != winner && is_primary(item) {
            if let Value::Object(fields) = item {
                fields.insert("primary".into(), Value::Bool(false));
            }
        }
    }
}

/// The element a filter of equalities describes (`type eq "work" and primary eq true`), used to
/// create the target of an add that matched nothing. `None` for any other filter shape.
fn template(filter: &Filter, defs: &[AttrDef]) -> Option<Map<String, Value>> {
    match filter {
        Filter::Compare { attr, op: CompareOp::Eq, value } if attr.urn.is_none() && attr.sub.is_none() => {
            let def = find(defs, &attr.name)?;
            let value = match value {
                CompValue::String(s) => Value::String(s.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => return None,
            };
            let mut element = Map::new();
            element.insert(def.name.into(), value);
            Some(element)
        }
        Filter::And(a, b) => {
            let mut element = template(a, defs)?;
            element.extend(template(b, defs)?);
            Some(element)
        }
        _ => None,
    }
}

/// Set the given sub-attributes of a complex value; a null sub-attribute is removed.
fn merge_complex(
    target: &mut Map<String, Value>,
    attr: &AttrDef,
    fields: &Map<String, Value>,
    label: &str,
) -> Result<(), Error> {
    for (key, value) in fields {
        let Some(sub) = attr.sub_attribute(key) else {
            return Err(Error::invalid_value(format!("`{label}` has no sub-attribute `{key}`")));
        };
        if !resource::client_writable(sub) {
            continue;
        }
        set(target, sub.name, attribute_value(sub, value.clone(), &format!("{label}.{}", sub.name))?);
    }
    Ok(())
}

fn set(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    match value {
        Some(value) => {
            map.insert(key.into(), value);
        }
        None => {
            map.remove(key);
        }
    }
}

fn remove_indices(items: &mut Vec<Value>, indices: &[usize]) {
    let mut index = 0;
    items.retain(|_| {
        let keep = !indices.contains(&index);
        index += 1;
        keep
    });
}

/// Take the object at `map[key]` out of `map` (empty when absent or not an object).
fn take_object(map: &mut Map<String, Value>, key: &str) -> Map<String, Value> {
    match map.remove(key) {
        Some(Value::Object(fields)) => fields,
        _ => Map::new(),
    }
}

/// Take the array at `map[key]` out of `map`; a lone value becomes a one-element array.
fn take_array(map: &mut Map<String, Value>, key: &str) -> Vec<Value> {
    match map.remove(key) {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => Vec::new(),
        Some(single) => vec![single],
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::{ENTERPRISE_USER, GROUP, USER};
    use crate::ErrorKind;

    fn body(ops: Value) -> Value {
        json!({"schemas": [PATCH_OP], "Operations": ops})
    }

    fn ops(ops: Value) -> Vec<PatchOperation> {
        parse_request(&body(ops)).unwrap()
    }

    fn patch(kind: ResourceKind, resource: &Value, operations: Value) -> Result<(Value, Vec<MemberOp>), Error> {
        let mut resource = resource.clone();
        let outcome = apply(kind, &mut resource, &ops(operations))?;
        Ok((resource, outcome.member_ops))
    }

    fn patch_user(resource: &Value, operations: Value) -> Value {
        let (out, member_ops) = patch(ResourceKind::User, resource, operations).unwrap();
        assert!(member_ops.is_empty());
        out
    }

    fn patch_group(operations: Value) -> Vec<MemberOp> {
        let (out, member_ops) = patch(ResourceKind::Group, &group(), operations).unwrap();
        assert_eq!(out, group(), "member operations must not touch the resource");
        member_ops
    }

    fn user() -> Value {
        json!({
            "schemas": [USER],
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "displayName": "Babs Jensen",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "addresses": [
                {"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood", "primary": true},
                {"type": "home", "streetAddress": "456 Hollywood Blvd", "locality": "Hollywood"}
            ]
        })
    }

    fn group() -> Value {
        json!({"schemas": [GROUP], "displayName": "Tour Guides", "externalId": "tg"})
    }

    fn members_of(ids: &[&str]) -> Vec<Value> {
        ids.iter().map(|id| json!({"value": id})).collect()
    }

    const BABS: &str = "2819c223-7f76-453a-919d-413861904646";
    const MANDY: &str = "902c246b-6245-4190-8e05-00816be7344a";

    // -- parse_request

    #[test]
    fn parses_ops_in_any_case() {
        let parsed = ops(json!([
            {"op": "Add", "path": "nickName", "value": "Babs"},
            {"op": "REPLACE", "value": {"active": false}},
            {"op": "remove", "path": "title"},
            {"op": "replace", "path": "", "value": {"title": "x"}},
        ]));
        assert_eq!(
            parsed.iter().map(|o| o.op).collect::<Vec<_>>(),
            [PatchOp::Add, PatchOp::Replace, PatchOp::Remove, PatchOp::Replace]
        );
        assert_eq!(parsed[0].path, Some(path::parse("nickName").unwrap()));
        assert_eq!(parsed[1].path, None);
        assert_eq!(parsed[3].path, None, "an empty path is no path");
        // Keys are matched case-insensitively too.
        let lenient = json!({"Schemas": [PATCH_OP], "operations": [{"OP": "add", "Path": "title", "Value": "x"}]});
        assert_eq!(parse_request(&lenient).unwrap()[0].value, Some(json!("x")));
    }

    #[test]
    fn request_errors() {
        let err = |body: Value| parse_request(&body).unwrap_err();
        assert_eq!(err(json!({"Operations": [{"op": "add", "value": {}}]})).kind(), ErrorKind::InvalidSyntax);
        assert_eq!(
            err(json!({"schemas": [USER], "Operations": [{"op": "add", "value": {}}]})).kind(),
            ErrorKind::InvalidSyntax
        );
        assert_eq!(err(json!({"schemas": [PATCH_OP]})).kind(), ErrorKind::InvalidSyntax);
        assert_eq!(err(json!({"schemas": [PATCH_OP], "Operations": {}})).kind(), ErrorKind::InvalidSyntax);
        assert_eq!(err(body(json!([]))).kind(), ErrorKind::InvalidSyntax);
        assert_eq!(err(json!("x")).kind(), ErrorKind::InvalidSyntax);
        let too_many = vec![json!({"op": "remove", "path": "title"}); MAX_OPERATIONS + 1];
        assert_eq!(err(body(Value::Array(too_many))).kind(), ErrorKind::TooLarge);
        let most = vec![json!({"op": "remove", "path": "title"}); MAX_OPERATIONS];
        assert_eq!(parse_request(&body(Value::Array(most))).unwrap().len(), MAX_OPERATIONS);

        assert_eq!(
            err(body(json!([{"op": "add", "path": "title", "value": "x"}, {"op": "move", "path": "title"}]))),
            Error::invalid_syntax("Operations[1]: unknown op \"move\" (expected \"add\", \"remove\" or \"replace\")")
        );
        assert_eq!(err(body(json!([{"path": "title"}]))).kind(), ErrorKind::InvalidSyntax);
        assert_eq!(err(body(json!([7]))).kind(), ErrorKind::InvalidSyntax);
        assert_eq!(
            err(body(json!([{"op": "remove"}]))),
            Error::no_target("Operations[0] (remove without path): remove needs a `path`")
        );
        assert_eq!(err(body(json!([{"op": "add", "path": "title"}]))).kind(), ErrorKind::InvalidValue);
        assert_eq!(err(body(json!([{"op": "add", "path": "title", "value": null}]))).kind(), ErrorKind::InvalidValue);
        assert_eq!(err(body(json!([{"op": "replace", "path": "title"}]))).kind(), ErrorKind::InvalidValue);
        assert_eq!(err(body(json!([{"op": "remove", "path": "emails["}]))).kind(), ErrorKind::InvalidPath);
        assert_eq!(err(body(json!([{"op": "remove", "path": "emails[type zz 1]"}]))).kind(), ErrorKind::InvalidFilter);
        assert_eq!(err(body(json!([{"op": "remove", "path": "a b"}]))).kind(), ErrorKind::InvalidPath);
        assert_eq!(err(body(json!([{"op": "remove", "path": 3}]))).kind(), ErrorKind::InvalidPath);
        match err(body(json!([{"op": "remove", "path": "a..b"}]))) {
            e if e.kind() == ErrorKind::InvalidPath => {
                assert!(e.detail().starts_with("Operations[0]: path `a..b`:"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }

    // -- RFC 7644 §3.5.2.1 add

    #[test]
    fn rfc_add_without_path() {
        let out = patch_user(
            &user(),
            json!([{"op": "add", "value": {"emails": [{"value": "babs@jensen.org", "type": "home"}, {"value": "b@x.org", "type": "other"}], "nickname": "Babs"}}]),
        );
        assert_eq!(out["nickName"], "Babs", "keys resolve case-insensitively (the RFC writes `nickname`)");
        let emails = out["emails"].as_array().unwrap();
        assert_eq!(emails.len(), 3, "a value already present is not added twice: {emails:?}");
        assert_eq!(emails[2], json!({"value": "b@x.org", "type": "other"}));
    }

    #[test]
    fn rfc_add_members() {
        let member_ops = patch_group(json!([{
            "op": "add",
            "path": "members",
            "value": [{"display": "Babs Jensen", "$ref": format!("https://example.com/v2/Users/{BABS}"), "value": BABS}]
        }]));
        assert_eq!(member_ops, [MemberOp::Add(vec![json!({"value": BABS, "display": "Babs Jensen"})])]);
    }

    #[test]
    fn add_single_and_complex() {
        let out = patch_user(
            &user(),
            json!([{"op": "add", "path": "name", "value": {"middleName": "Jane"}}, {"op": "add", "path": "title", "value": "Guide"}]),
        );
        assert_eq!(
            out["name"],
            json!({"givenName": "Barbara", "familyName": "Jensen", "middleName": "Jane"}),
            "complex add merges"
        );
        assert_eq!(out["title"], "Guide");
        let out = patch_user(&user(), json!([{"op": "add", "path": "displayName", "value": "Babs"}]));
        assert_eq!(out["displayName"], "Babs", "add to a single-valued attribute replaces it");
    }

    #[test]
    fn add_to_multi_valued() {
        let out = patch_user(
            &user(),
            json!([{"op": "add", "path": "phoneNumbers", "value": {"value": "555", "type": "work"}}]),
        );
        assert_eq!(
            out["phoneNumbers"],
            json!([{"value": "555", "type": "work"}]),
            "a single object where an array is expected"
        );
        // The same value with more detail is merged into the existing element.
        let out = patch_user(
            &user(),
            json!([{"op": "add", "path": "emails", "value": [{"value": "BABS@jensen.org", "display": "Babs"}]}]),
        );
        assert_eq!(out["emails"][1], json!({"value": "BABS@jensen.org", "type": "home", "display": "Babs"}));
        assert_eq!(out["emails"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn primary_moves() {
        let out = patch_user(
            &user(),
            json!([{"op": "add", "path": "emails", "value": [{"value": "new@x.com", "type": "other", "primary": "True"}]}]),
        );
        let emails = out["emails"].as_array().unwrap();
        assert_eq!(emails[0]["primary"], false);
        assert_eq!(emails[2]["primary"], true);
        let out =
            patch_user(&user(), json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]));
        assert_eq!(
            out["emails"],
            json!([
                {"value": "bjensen@example.com", "type": "work", "primary": false},
                {"value": "babs@jensen.org", "type": "home", "primary": true}
            ])
        );
        let out = patch_user(
            &user(),
            json!([{"op": "replace", "path": "addresses[type eq \"home\"]", "value": {"type": "home", "locality": "LA", "primary": true}}]),
        );
        assert_eq!(out["addresses"][0]["primary"], false);
        assert_eq!(out["addresses"][1], json!({"type": "home", "locality": "LA", "primary": true}));
    }

    // -- RFC 7644 §3.5.2.2 remove

    #[test]
    fn rfc_remove_members() {
        assert_eq!(
            patch_group(json!([{"op": "remove", "path": format!("members[value eq \"{BABS}\"]")}])),
            [MemberOp::Remove(vec![BABS.into()])]
        );
        assert_eq!(patch_group(json!([{"op": "remove", "path": "members"}])), [MemberOp::RemoveAll]);
        // Remove then add, as in the RFC's "replace all members" example.
        let member_ops = patch_group(json!([
            {"op": "remove", "path": "members"},
            {"op": "add", "path": "members", "value": [{"display": "Babs Jensen", "value": BABS}, {"display": "James Smith", "value": "08e1d05d"}]}
        ]));
        let added = vec![
            json!({"value": BABS, "display": "Babs Jensen"}),
            json!({"value": "08e1d05d", "display": "James Smith"}),
        ];
        assert_eq!(member_ops, [MemberOp::RemoveAll, MemberOp::Add(added)]);
    }

    #[test]
    fn rfc_remove_filtered_elements() {
        let out = patch_user(
            &user(),
            json!([{"op": "remove", "path": "emails[type eq \"work\" and value ew \"example.com\"]"}]),
        );
        assert_eq!(out["emails"], json!([{"value": "babs@jensen.org", "type": "home"}]));
        // No match is not an error for remove.
        assert_eq!(patch_user(&user(), json!([{"op": "remove", "path": "emails[type eq \"pager\"]"}])), user());
        let out = patch_user(
            &user(),
            json!([{"op": "remove", "path": "emails"}, {"op": "remove", "path": "name.givenName"}]),
        );
        assert!(out.get("emails").is_none());
        assert_eq!(out["name"], json!({"familyName": "Jensen"}));
        let out = patch_user(&user(), json!([{"op": "remove", "path": "addresses[type eq \"work\"].streetAddress"}]));
        assert_eq!(out["addresses"][0], json!({"type": "work", "locality": "Hollywood", "primary": true}));
        let out = patch_user(
            &user(),
            json!([{"op": "remove", "path": "emails", "value": [{"value": "BJENSEN@example.com"}]}]),
        );
        assert_eq!(
            out["emails"],
            json!([{"value": "babs@jensen.org", "type": "home"}]),
            "remove with the values to drop"
        );
    }

    #[test]
    fn remove_required_is_refused() {
        let err = patch(ResourceKind::User, &user(), json!([{"op": "remove", "path": "userName"}])).unwrap_err();
        assert_eq!(
            err,
            Error::invalid_value("Operations[0] (remove `userName`): `userName` is required and cannot be removed")
        );
        let err = patch(ResourceKind::Group, &group(), json!([{"op": "remove", "path": "displayName"}])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue);
    }

    // -- RFC 7644 §3.5.2.3 replace

    #[test]
    fn rfc_replace_members() {
        let member_ops = patch_group(
            json!([{"op": "replace", "path": "members", "value": [{"value": BABS}, {"value": MANDY, "$ref": "https://x/Users/m"}]}]),
        );
        assert_eq!(member_ops, [MemberOp::Replace(members_of(&[BABS, MANDY]))], "`$ref` is computed, not stored");
    }

    #[test]
    fn rfc_replace_filtered_element() {
        let new_work = json!({"type": "work", "streetAddress": "911 Universal City Plaza", "locality": "Hollywood", "region": "CA", "postalCode": "91608", "country": "US", "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US", "primary": true});
        let out =
            patch_user(&user(), json!([{"op": "replace", "path": "addresses[type eq \"work\"]", "value": new_work}]));
        assert_eq!(out["addresses"][0], new_work);
        assert_eq!(out["addresses"][1], user()["addresses"][1]);
        let out = patch_user(
            &user(),
            json!([{"op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1010 Broadway Ave"}]),
        );
        assert_eq!(out["addresses"][0]["streetAddress"], "1010 Broadway Ave");
        assert_eq!(out["addresses"][0]["locality"], "Hollywood");
    }

    #[test]
    fn rfc_replace_without_path() {
        let out = patch_user(
            &user(),
            json!([{"op": "replace", "value": {"emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}, {"value": "babs@jensen.org", "type": "home"}], "nickname": "Babs"}}]),
        );
        assert_eq!(out["emails"], user()["emails"]);
        assert_eq!(out["nickName"], "Babs");
    }

    #[test]
    fn replace_multi_valued_replaces_the_array() {
        let out = patch_user(&user(), json!([{"op": "replace", "path": "emails", "value": [{"value": "only@x.com"}]}]));
        assert_eq!(out["emails"], json!([{"value": "only@x.com"}]));
        let out = patch_user(&user(), json!([{"op": "replace", "path": "emails", "value": []}]));
        assert!(out.get("emails").is_none());
    }

    #[test]
    fn replace_on_a_missing_element_described_by_equalities_creates_it() {
        // The Entra Validator's "Replace Attributes Verbose" replaces elements the user lacks.
        let out = patch_user(
            &user(),
            json!([
                {"op": "replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 (425) 555-0101"},
                {"op": "replace", "path": "emails[type eq \"other\"].value", "value": "x@y.z"},
                {"op": "replace", "path": "addresses[type eq \"other\"]", "value": {"formatted": "Somewhere 1"}},
                {"op": "replace", "path": "addresses[type eq \"other\"].locality", "value": "Paris"},
            ]),
        );
        assert_eq!(out["phoneNumbers"], json!([{"type": "mobile", "value": "+1 (425) 555-0101"}]));
        assert_eq!(out["emails"][2], json!({"type": "other", "value": "x@y.z"}));
        assert_eq!(out["emails"][0], user()["emails"][0], "the others are untouched");
        assert_eq!(out["addresses"][2], json!({"type": "other", "formatted": "Somewhere 1", "locality": "Paris"}));
        // Clearing a value that is not there changes nothing.
        let out =
            patch_user(&user(), json!([{"op": "replace", "path": "emails[type eq \"other\"].value", "value": null}]));
        assert_eq!(out, user());
    }

    #[test]
    fn replace_filter_that_describes_no_element_is_no_target() {
        // RFC 7644 §3.5.2.3, kept where no element can be built from the filter.
        let err = patch(
            ResourceKind::User,
            &user(),
            json!([{"op": "replace", "path": "emails[value ew \"@nowhere.example\"].type", "value": "work"}]),
        )
        .unwrap_err();
        assert_eq!(err, Error::no_target("Operations[0] (replace `emails[value ew \"@nowhere.example\"].type`): `emails[value ew \"@nowhere.example\"].type` matched no value"));
        for path in ["emails[type eq \"other\" or type eq \"pager\"]", "emails[type ne \"work\" and type ne \"home\"]"]
        {
            let err =
                patch(ResourceKind::User, &user(), json!([{"op": "replace", "path": path, "value": {"value": "x"}}]))
                    .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NoTarget, "{path}: {err:?}");
        }
    }

    #[test]
    fn entra_manager_shapes() {
        let manager = |out: &Value| out[ENTERPRISE_USER]["manager"].clone();
        // Legacy and flag dialects: the bare id.
        let with = patch_user(
            &user(),
            json!([{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m1"}]),
        );
        assert_eq!(manager(&with), json!({"value": "m1"}));
        // The old documented form: a one-element array with `$ref`.
        let out = patch_user(
            &user(),
            json!([{"op": "Replace", "path": "manager", "value": [{"$ref": "../Users/m2", "value": "m2"}]}]),
        );
        assert_eq!(manager(&out), json!({"$ref": "../Users/m2", "value": "m2"}));
        // The Validator's replace with an object.
        assert_eq!(
            manager(&patch_user(&with, json!([{"op": "replace", "path": "manager", "value": {"value": "m3"}}]))),
            json!({"value": "m3"})
        );
        // Every removal shape Entra is seen to send leaves no manager behind.
        for removal in [
            json!({"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": ""}),
            json!({"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": {"value": ""}}),
            json!({"op": "replace", "path": "manager.value", "value": ""}),
            json!({"op": "Remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}),
        ] {
            let out = patch_user(&with, json!([removal.clone()]));
            assert!(out.get(ENTERPRISE_USER).is_none(), "{removal}: {out}");
            assert_eq!(out["schemas"], json!([USER]), "{removal}");
        }
        // Two managers are not one.
        let err = patch(
            ResourceKind::User,
            &user(),
            json!([{"op": "add", "path": "manager", "value": [{"value": "a"}, {"value": "b"}]}]),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue, "{err:?}");
    }

    // -- Entra ID and Okta forms

    #[test]
    fn entra_user_updates() {
        let out = patch_user(
            &user(),
            json!([
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": "name.honorificPrefix", "value": "Ms."},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "barbara@example.com"},
                {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "555-0100"},
                {"op": "Add", "path": "addresses[type eq \"other\"].locality", "value": "Paris"},
                {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "mgr-1"},
                {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Tours"},
                {"op": "Add", "value": {"name.givenName": "Barb", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter": "4130"}},
            ]),
        );
        assert_eq!(out["active"], false);
        assert_eq!(out["name"], json!({"givenName": "Barb", "familyName": "Jensen", "honorificPrefix": "Ms."}));
        assert_eq!(out["emails"][0]["value"], "barbara@example.com");
        assert_eq!(out["phoneNumbers"], json!([{"type": "mobile", "value": "555-0100"}]), "created from the filter");
        assert_eq!(out["addresses"][2], json!({"type": "other", "locality": "Paris"}));
        assert_eq!(
            out[ENTERPRISE_USER],
            json!({"costCenter": "4130", "department": "Tours", "manager": {"value": "mgr-1"}})
        );
        assert_eq!(out["schemas"], json!([USER, ENTERPRISE_USER]));
    }

    #[test]
    fn entra_group_member_removal_by_value() {
        let member_ops =
            patch_group(json!([{"op": "Remove", "path": "members", "value": [{"value": BABS}, {"value": MANDY}]}]));
        assert_eq!(member_ops, [MemberOp::Remove(vec![BABS.into(), MANDY.into()])]);
        let (out, member_ops) = patch(
            ResourceKind::Group,
            &group(),
            json!([{"op": "Add", "path": "members", "value": [{"value": BABS}]}, {"op": "Replace", "path": "displayName", "value": "x"}]),
        )
        .unwrap();
        assert_eq!(member_ops, [MemberOp::Add(members_of(&[BABS]))]);
        assert_eq!(out["displayName"], "x");
    }

    #[test]
    fn okta_updates() {
        // Okta sends the id back, and `active` in a path-less replace.
        let out = patch_user(
            &user(),
            json!([{"op": "replace", "value": {"id": "2819c223", "active": false, "meta": {}, "groups": [], "schemas": [USER]}}]),
        );
        assert_eq!(out["active"], false);
        assert!(out.get("id").is_none());
        // Okta's group rename and membership change.
        let (out, member_ops) = patch(
            ResourceKind::Group,
            &group(),
            json!([
                {"op": "replace", "value": {"id": "abf4dd94", "displayName": "Guides"}},
                {"op": "remove", "path": format!("members[value eq \"{BABS}\"]")},
                {"op": "add", "path": "members", "value": [{"value": MANDY, "display": "Mandy"}]}
            ]),
        )
        .unwrap();
        assert_eq!(out["displayName"], "Guides");
        assert_eq!(
            member_ops,
            [MemberOp::Remove(vec![BABS.into()]), MemberOp::Add(vec![json!({"value": MANDY, "display": "Mandy"})])]
        );
    }

    #[test]
    fn extension_urn_keys_and_paths() {
        let out = patch_user(
            &user(),
            json!([{"op": "add", "value": {ENTERPRISE_USER: {"employeeNumber": "42", "manager": {"value": "m"}}}}]),
        );
        assert_eq!(out[ENTERPRISE_USER], json!({"employeeNumber": "42", "manager": {"value": "m"}}));
        let out = patch_user(
            &out,
            json!([{"op": "replace", "path": format!("{ENTERPRISE_USER}:manager.value"), "value": "n"}]),
        );
        assert_eq!(out[ENTERPRISE_USER]["manager"], json!({"value": "n"}));
        let out = patch_user(&out, json!([{"op": "remove", "path": "employeeNumber"}]));
        assert_eq!(out[ENTERPRISE_USER], json!({"manager": {"value": "n"}}));
        // The whole extension as a path.
        let out = patch_user(&out, json!([{"op": "replace", "path": ENTERPRISE_USER, "value": {"department": "D"}}]));
        assert_eq!(out[ENTERPRISE_USER], json!({"department": "D", "manager": {"value": "n"}}));
        // As a client library serialises it: with the extension's own `schemas` inside.
        let value = json!({"schemas": [ENTERPRISE_USER], "costCenter": "C"});
        let out = patch_user(&out, json!([{"op": "add", "path": ENTERPRISE_USER, "value": value}]));
        assert_eq!(out[ENTERPRISE_USER], json!({"department": "D", "costCenter": "C", "manager": {"value": "n"}}));
        let out = patch_user(&out, json!([{"op": "remove", "path": ENTERPRISE_USER}]));
        assert!(out.get(ENTERPRISE_USER).is_none());
        assert_eq!(out["schemas"], json!([USER]));
        // The core URN as a key.
        let out = patch_user(&user(), json!([{"op": "replace", "value": {USER: {"displayName": "B"}}}]));
        assert_eq!(out["displayName"], "B");
        // Removing the last extension attribute drops the extension from `schemas`.
        let with_dept = patch_user(&user(), json!([{"op": "add", "path": "department", "value": "D"}]));
        assert_eq!(with_dept["schemas"], json!([USER, ENTERPRISE_USER]));
        let out = patch_user(
            &with_dept,
            json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}]),
        );
        assert_eq!(out, user());
    }

    #[test]
    fn read_only_targets() {
        for path in [
            "id",
            "meta",
            "meta.lastModified",
            "groups",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName",
        ] {
            let err =
                patch(ResourceKind::User, &user(), json!([{"op": "replace", "path": path, "value": "x"}])).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Mutability, "{path}: {err:?}");
        }
        for path in ["members.display", "members[value eq \"x\"].display", "members[value eq \"x\"].value"] {
            let err = patch(ResourceKind::Group, &group(), json!([{"op": "replace", "path": path, "value": "x"}]))
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Mutability, "{path}: {err:?}");
        }
        let err = patch(
            ResourceKind::Group,
            &group(),
            json!([{"op": "replace", "path": "members[value eq \"x\"]", "value": {"value": "y"}}]),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Mutability);
    }

    #[test]
    fn group_member_filters() {
        assert_eq!(
            patch_group(
                json!([{"op": "remove", "path": format!("members[value eq \"{BABS}\" or VALUE eq \"{MANDY}\"]")}])
            ),
            [MemberOp::Remove(vec![BABS.into(), MANDY.into()])]
        );
        let filter = crate::filter::parse(r#"type eq "Group""#).unwrap();
        assert_eq!(
            patch_group(json!([{"op": "remove", "path": "members[type eq \"Group\"]"}])),
            [MemberOp::RemoveWhere(filter)]
        );
        let err = patch(ResourceKind::Group, &group(), json!([{"op": "remove", "path": "members[nickName eq \"x\"]"}]))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidFilter);
        // Path-less values naming members.
        let (out, member_ops) = patch(
            ResourceKind::Group,
            &group(),
            json!([{"op": "replace", "value": {"displayName": "G", "members": [{"value": BABS}]}}]),
        )
        .unwrap();
        assert_eq!(out["displayName"], "G");
        assert_eq!(member_ops, [MemberOp::Replace(members_of(&[BABS]))]);
        assert_eq!(
            patch_group(json!([{"op": "replace", "path": "members", "value": []}])),
            [MemberOp::Replace(vec![])]
        );
        let err = patch(
            ResourceKind::Group,
            &group(),
            json!([{"op": "add", "path": "members", "value": [{"display": "no id"}]}]),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue);
    }

    #[test]
    fn failed_operation_leaves_resource_unchanged() {
        let mut resource = user();
        let operations = ops(json!([
            {"op": "replace", "path": "displayName", "value": "Changed"},
            {"op": "replace", "path": "id", "value": "x"}
        ]));
        let err = apply(ResourceKind::User, &mut resource, &operations).unwrap_err();
        assert_eq!(err, Error::mutability("Operations[1] (replace `id`): `id` is read-only"));
        assert_eq!(resource, user());

        // A result a PUT would refuse is refused as a whole.
        let operations = ops(
            json!([{"op": "replace", "path": "nickName", "value": "B"}, {"op": "replace", "path": "userName", "value": 42}]),
        );
        assert_eq!(apply(ResourceKind::User, &mut resource, &operations).unwrap_err().kind(), ErrorKind::InvalidValue);
        assert_eq!(resource, user());
    }

    #[test]
    fn values_are_type_checked() {
        let err = |operations: Value| patch(ResourceKind::User, &user(), operations).unwrap_err();
        assert_eq!(err(json!([{"op": "replace", "path": "active", "value": "maybe"}])).kind(), ErrorKind::InvalidValue);
        assert_eq!(err(json!([{"op": "replace", "path": "name", "value": 3}])).kind(), ErrorKind::InvalidValue);
        assert_eq!(err(json!([{"op": "replace", "value": "x"}])).kind(), ErrorKind::InvalidValue);
        assert_eq!(err(json!([{"op": "replace", "value": {"shoeSize": 3}}])).kind(), ErrorKind::InvalidValue);
        assert_eq!(err(json!([{"op": "replace", "path": "shoeSize", "value": 3}])).kind(), ErrorKind::InvalidPath);
        assert_eq!(err(json!([{"op": "replace", "path": "name.nope", "value": 3}])).kind(), ErrorKind::InvalidPath);
        assert_eq!(
            err(json!([{"op": "replace", "path": "title[value eq \"x\"]", "value": 3}])).kind(),
            ErrorKind::InvalidPath
        );
        assert_eq!(err(
                json!([{"op": "add", "path": "emails", "value": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}])
            ).kind(), ErrorKind::InvalidValue);
    }

    /// Random operation lists: apply never panics, is atomic on error and leaves a canonical
    /// resource on success.
    #[test]
    fn random_operations_are_atomic_and_canonical() {
        let paths = [
            None,
            Some("emails"),
            Some("emails[type eq \"work\"]"),
            Some("emails[type eq \"work\"].value"),
            Some("emails[value co \"x\" or primary eq true].primary"),
            Some("emails.type"),
            Some("name"),
            Some("name.givenName"),
            Some("userName"),
            Some("active"),
            Some("id"),
            Some("department"),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"),
            Some("manager.value"),
            Some("addresses[type eq \"home\"].locality"),
        ];
        let values = [
            json!("x"),
            json!("True"),
            json!(true),
            json!(3),
            json!(null),
            json!([]),
            json!({"value": "v@x", "type": "work", "primary": true}),
            json!([{"value": "w@x", "type": "home"}, {"value": "z"}]),
            json!({"givenName": "G", "department": "D"}),
            json!({"emails": [{"value": "e"}], "nickName": "n", "id": "i"}),
            json!({"value": "m"}),
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let (mut ok, mut failed) = (0, 0);
        for _ in 0..3000 {
            let count = next(3) + 1;
            let operations: Vec<PatchOperation> = (0..count)
                .map(|_| PatchOperation {
                    op: [PatchOp::Add, PatchOp::Remove, PatchOp::Replace][next(3)],
                    path: paths[next(paths.len())].map(|p| path::parse(p).unwrap()),
                    value: if next(5) == 0 { None } else { Some(values[next(values.len())].clone()) },
                })
                .collect();
            let mut resource = user();
            match apply(ResourceKind::User, &mut resource, &operations) {
                Ok(_) => {
                    ok += 1;
                    assert_eq!(resource::normalize(ResourceKind::User, resource.clone()).unwrap(), resource);
                }
                Err(_) => {
                    failed += 1;
                    assert_eq!(resource, user(), "{operations:?}");
                }
            }
        }
        assert!(ok > 100 && failed > 100, "{ok} applied, {failed} refused");
    }

    #[test]
    fn password_is_accepted_and_never_stored() {
        let out = patch_user(
            &user(),
            json!([{"op": "replace", "path": "password", "value": "secret"}, {"op": "replace", "value": {"password": "secret"}}]),
        );
        assert_eq!(out, user());
    }

    #[test]
    fn null_replace_clears() {
        let out = patch_user(
            &user(),
            json!([{"op": "replace", "path": "displayName", "value": null}, {"op": "replace", "path": "name", "value": {"familyName": null}}]),
        );
        assert!(out.get("displayName").is_none());
        assert_eq!(out["name"], json!({"givenName": "Barbara"}));
    }
}
