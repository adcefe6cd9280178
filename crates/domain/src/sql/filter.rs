//! Filter AST to SQL. Every comparison becomes a predicate over indexed columns or the stored
//! JSON; no resource is ever loaded to be filtered in memory.

use proto::schema::{AttrDef, AttrType};
use proto::{AttrPath, CompValue, CompareOp, Filter, ResourceKind};

use super::dialect::Dialect;
use crate::time_util::parse_rfc3339_micros;
use crate::DomainError;

/// A bind value. Statements are built as text plus an ordered argument list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
    Bool(bool),
    /// Nulls are typed: PostgreSQL refuses a text NULL for a bigint column.
    NullText,
    NullInt,
}

/// Builds SQL text with `$n` placeholders and collects their values in order.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub(crate) args: Vec<Arg>,
}

impl Sql {
    pub(crate) fn bind(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }
}

/// How an attribute is stored, after resolution.
enum Target {
    /// A dedicated column.
    Column { expr: String, value: ColumnValue },
    /// A single-valued attribute (or sub-attribute) inside the JSON document.
    Json { doc: String, keys: Vec<&'static str>, def: &'static AttrDef },
    /// A multi-valued complex attribute: compare `sub` (or `value`) of any element.
    Elements { doc: String, keys: Vec<&'static str>, defs: &'static [AttrDef], sub: Option<&'static AttrDef> },
    /// `members` of a group or `groups` of a user: rows of `group_members`.
    Membership { side: Side, sub: Option<&'static str> },
    /// `value`, `type` or `display` of the `group_members m` row in scope.
    MemberColumn { side: Side, sub: &'static str },
    /// `meta.resourceType`: the same for every row of one query.
    Constant(&'static str),
}

#[derive(Clone, Copy)]
enum ColumnValue {
    /// Text compared as the schema says (`case_exact`); `lowered` columns already hold lower case.
    Text {
        case_exact: bool,
        lowered: bool,
    },
    Bool,
    /// Microseconds since the epoch (`meta.created`, `meta.lastModified`).
    Micros,
}

/// Which side of `group_members` the resource is on.
#[derive(Clone, Copy)]
enum Side {
    /// The resource is the group; the other side is its members.
    Group,
    /// The resource is the member; the other side is its groups.
    Member,
}

/// Where attribute names are resolved.
enum Scope {
    Root,
    /// Inside `attr[...]`: names are sub-attributes of one JSON element.
    Element {
        doc: String,
        defs: &'static [AttrDef],
    },
    /// Inside `members[...]` / `groups[...]`: names are `value`, `type`, `display`.
    Membership(Side),
}

pub(crate) struct Translator<'a> {
    dialect: Dialect,
    kind: ResourceKind,
    sql: &'a mut Sql,
    /// For a search across resource types: an attribute this type lacks matches nothing.
    lenient: bool,
    aliases: usize,
}

const MAX_ELEMENT_ALIASES: usize = 64;

impl<'a> Translator<'a> {
    pub(crate) fn new(dialect: Dialect, kind: ResourceKind, sql: &'a mut Sql, lenient: bool) -> Self {
        Self { dialect, kind, sql, lenient, aliases: 0 }
    }

    /// A predicate over the resource row aliased `r`.
    pub(crate) fn predicate(&mut self, filter: &Filter) -> Result<String, DomainError> {
        self.filter(filter, &Scope::Root)
    }

    /// A predicate over `group_members` rows aliased `m` (for `remove members[...]`).
    pub(crate) fn member_predicate(&mut self, filter: &Filter) -> Result<String, DomainError> {
        self.filter(filter, &Scope::Membership(Side::Group))
    }

    /// An ORDER BY expression for `sortBy`.
    pub(crate) fn sort_key(&mut self, path: &AttrPath) -> Result<String, DomainError> {
        let unsortable = || invalid_value(format!("cannot sort by `{}`", show(path)));
        match self.resolve(path, &Scope::Root).map_err(|_| unsortable())? {
            Target::Column { expr, value: ColumnValue::Text { case_exact: false, lowered: false } } => {
                Ok(self.dialect.bytewise(&format!("lower({expr})")))
            }
            Target::Column { expr, value: ColumnValue::Text { .. } } => Ok(self.dialect.bytewise(&expr)),
            Target::Column { expr, .. } => Ok(expr),
            Target::Json { doc, keys, def } => {
                let e = self.dialect.json_text(&doc, &keys);
                Ok(self.dialect.bytewise(&if def.case_exact { e } else { format!("lower({e})") }))
            }
            Target::Elements { doc, keys, sub, .. } => {
                // A multi-valued attribute sorts by its first value (RFC 7644 §3.4.2.3 leaves the
                // choice to the server; the first is the primary one for every IdP we know).
                let first = self.dialect.json_node(&doc, &keys);
                let sub_name = sub.map(|s| s.name).unwrap_or("value");
                let e = match self.dialect {
                    Dialect::Postgres => format!("({first} -> 0 ->> '{sub_name}')"),
                    Dialect::Sqlite => format!("json_extract({first}, '$[0].\"{sub_name}\"')"),
                };
                Ok(self.dialect.bytewise(&format!("lower({e})")))
            }
            Target::Membership { .. } | Target::MemberColumn { .. } | Target::Constant(_) => Err(unsortable()),
        }
    }

    fn filter(&mut self, filter: &Filter, scope: &Scope) -> Result<String, DomainError> {
        Ok(match filter {
            Filter::And(a, b) => format!("({} AND {})", self.filter(a, scope)?, self.filter(b, scope)?),
            Filter::Or(a, b) => format!("({} OR {})", self.filter(a, scope)?, self.filter(b, scope)?),
            // Unknown (NULL) inner results count as false, so `not` of them is true.
            Filter::Not(inner) => format!("(NOT COALESCE({}, FALSE))", self.filter(inner, scope)?),
            Filter::Present(path) => match self.resolve(path, scope) {
                Ok(target) => self.present(target)?,
                Err(e) => self.unknown(e)?,
            },
            Filter::Compare { attr, op, value } => match self.resolve(attr, scope) {
                Ok(target) => self.compare(target, *op, value, attr)?,
                Err(e) => self.unknown(e)?,
            },
            Filter::ValuePath { attr, filter } => match self.resolve(attr, scope) {
                Ok(target) => self.value_path(target, filter, attr)?,
                Err(e) => self.unknown(e)?,
            },
        })
    }

    fn unknown(&self, e: DomainError) -> Result<String, DomainError> {
        if self.lenient {
            Ok("(1 = 0)".into())
        } else {
            Err(e)
        }
    }

    fn resolve(&self, path: &AttrPath, scope: &Scope) -> Result<Target, DomainError> {
        let unknown = || invalid_filter(format!("unknown attribute `{}` for {}", show(path), self.kind.name()));
        match scope {
            Scope::Root => {}
            Scope::Element { doc, defs } => {
                if path.urn.is_some() || path.sub.is_some() {
                    return Err(unknown());
                }
                let def = find(defs, &path.name).ok_or_else(unknown)?;
                return Ok(Target::Json { doc: doc.clone(), keys: vec![def.name], def });
            }
            Scope::Membership(side) => {
                if path.urn.is_some() || path.sub.is_some() {
                    return Err(unknown());
                }
                let sub = ["value", "type", "display"]
                    .into_iter()
                    .find(|s| s.eq_ignore_ascii_case(&path.name))
                    .ok_or_else(unknown)?;
                return Ok(Target::MemberColumn { side: *side, sub });
            }
        }
        let resolved = self.kind.resolve(path).ok_or_else(unknown)?;
        let attr = resolved.attr;
        let text = |expr: &str, case_exact: bool, lowered: bool| Target::Column {
            expr: expr.into(),
            value: ColumnValue::Text { case_exact, lowered },
        };
        if !resolved.extension {
            match (attr.name, resolved.sub.map(|s| s.name)) {
                ("id", None) => return Ok(text("r.id", true, false)),
                ("externalId", None) => return Ok(text("r.external_id", true, false)),
                ("userName", None) if self.kind == ResourceKind::User => {
                    return Ok(text("r.user_name_lower", false, true))
                }
                ("displayName", None) => return Ok(text("r.display_name", false, false)),
                ("active", None) if self.kind == ResourceKind::User => {
                    return Ok(Target::Column { expr: "r.active".into(), value: ColumnValue::Bool })
                }
                ("meta", Some("created")) => {
                    return Ok(Target::Column { expr: "r.created_at".into(), value: ColumnValue::Micros })
                }
                ("meta", Some("lastModified")) => {
                    return Ok(Target::Column { expr: "r.updated_at".into(), value: ColumnValue::Micros })
                }
                ("meta", Some("resourceType")) => return Ok(Target::Constant(self.kind.name())),
                ("meta", _) => return Err(invalid_filter(format!("`{}` cannot be filtered on", show(path)))),
                ("members", sub) if self.kind == ResourceKind::Group => {
                    return Ok(Target::Membership { side: Side::Group, sub: membership_sub(sub) })
                }
                ("groups", sub) if self.kind == ResourceKind::User => {
                    return Ok(Target::Membership { side: Side::Member, sub: membership_sub(sub) })
                }
                _ => {}
            }
        }
        let mut keys = Vec::with_capacity(3);
        if resolved.extension {
            keys.push(resolved.schema);
        }
        keys.push(attr.name);
        if attr.multi_valued {
            return Ok(Target::Elements { doc: "r.data".into(), keys, defs: attr.sub_attributes, sub: resolved.sub });
        }
        if let Some(sub) = resolved.sub {
            keys.push(sub.name);
        }
        Ok(Target::Json { doc: "r.data".into(), keys, def: resolved.leaf() })
    }

    fn present(&mut self, target: Target) -> Result<String, DomainError> {
        let d = self.dialect;
        Ok(match target {
            Target::Column { expr, value: ColumnValue::Text { .. } } => {
                format!("({expr} IS NOT NULL AND {expr} <> '')")
            }
            Target::Column { expr, .. } => format!("({expr} IS NOT NULL)"),
            Target::Json { doc, keys, def } if def.ty == AttrType::Complex => d.json_present_node(&doc, &keys),
            Target::Json { doc, keys, .. } => {
                let e = d.json_text(&doc, &keys);
                format!("({e} IS NOT NULL AND {e} <> '')")
            }
            Target::Elements { doc, keys, sub: None, .. } => d.json_present_node(&doc, &keys),
            Target::Elements { doc, keys, sub: Some(sub), .. } => {
                let (from, elem) = self.elements(&doc, &keys);
                let e = d.json_text(&elem, &[sub.name]);
                format!("EXISTS (SELECT 1 FROM {from} WHERE {e} IS NOT NULL AND {e} <> '')")
            }
            Target::Membership { side, .. } => {
                format!("EXISTS (SELECT 1 FROM group_members m WHERE {})", membership_join(side))
            }
            Target::MemberColumn { side, sub } => format!("({} IS NOT NULL)", membership_column(side, sub)),
            Target::Constant(_) => "(1 = 1)".into(),
        })
    }

    fn compare(
        &mut self,
        target: Target,
        op: CompareOp,
        value: &CompValue,
        path: &AttrPath,
    ) -> Result<String, DomainError> {
        let d = self.dialect;
        match target {
            Target::Column { expr, value: ColumnValue::Text { case_exact, lowered } } => {
                self.compare_text(&expr, case_exact, lowered, op, value, path)
            }
            Target::Column { expr, value: ColumnValue::Bool } => {
                let b = as_bool(value, path)?;
                let p = self.sql.bind(Arg::Bool(b));
                match op {
                    CompareOp::Eq => Ok(format!("{expr} = {p}")),
                    CompareOp::Ne => Ok(format!("NOT COALESCE({expr} = {p}, FALSE)")),
                    _ => Err(bad_operator(op, path, "boolean")),
                }
            }
            Target::Column { expr, value: ColumnValue::Micros } => {
                let CompValue::String(s) = value else {
                    return Err(invalid_filter(format!("`{}` needs a dateTime string", show(path))));
                };
                let micros = parse_rfc3339_micros(s)
                    .ok_or_else(|| invalid_filter(format!("`{s}` is not an RFC 3339 dateTime")))?;
                let p = self.sql.bind(Arg::Int(micros));
                ordered(op, &expr, &p, path, "dateTime")
            }
            Target::Constant(name) => {
                let CompValue::String(s) = value else {
                    return Ok("(1 = 0)".into());
                };
                let holds = match op {
                    CompareOp::Eq => name.eq_ignore_ascii_case(s),
                    CompareOp::Ne => !name.eq_ignore_ascii_case(s),
                    _ => return Err(bad_operator(op, path, "meta.resourceType")),
                };
                Ok(if holds { "(1 = 1)" } else { "(1 = 0)" }.into())
            }
            Target::Json { doc, keys, def } => self.compare_json(&d.json_text(&doc, &keys), def, op, value, path),
            Target::Elements { doc, keys, defs, sub } => {
                let sub = match sub {
                    Some(sub) => sub,
                    // `emails eq "x"` compares the elements' `value` (RFC 7644 §3.4.2.2).
                    None => find(defs, "value")
                        .ok_or_else(|| invalid_filter(format!("`{}` cannot be compared", show(path))))?,
                };
                let (from, elem) = self.elements(&doc, &keys);
                let e = d.json_text(&elem, &[sub.name]);
                let cond = self.compare_json(&e, sub, op, value, path)?;
                Ok(format!("EXISTS (SELECT 1 FROM {from} WHERE {cond})"))
            }
            Target::Membership { side, sub } => {
                let sub = sub.unwrap_or("value");
                let e = membership_column(side, sub);
                let cond = self.compare_text(&e, sub == "value", false, op, value, path)?;
                Ok(format!("EXISTS (SELECT 1 FROM group_members m WHERE {} AND {cond})", membership_join(side)))
            }
            Target::MemberColumn { side, sub } => {
                self.compare_text(&membership_column(side, sub), sub == "value", false, op, value, path)
            }
        }
    }

    fn value_path(&mut self, target: Target, filter: &Filter, path: &AttrPath) -> Result<String, DomainError> {
        match target {
            Target::Elements { doc, keys, defs, sub: None } => {
                let (from, elem) = self.elements(&doc, &keys);
                let cond = self.filter(filter, &Scope::Element { doc: elem, defs })?;
                Ok(format!("EXISTS (SELECT 1 FROM {from} WHERE {cond})"))
            }
            Target::Membership { side, sub: None } => {
                let cond = self.filter(filter, &Scope::Membership(side))?;
                Ok(format!("EXISTS (SELECT 1 FROM group_members m WHERE {} AND {cond})", membership_join(side)))
            }
            // A complex single-valued attribute: `name[givenName eq "x"]`.
            Target::Json { doc, keys, def } if def.ty == AttrType::Complex => {
                let node = self.dialect.json_node(&doc, &keys);
                self.filter(filter, &Scope::Element { doc: node, defs: def.sub_attributes })
            }
            _ => Err(invalid_filter(format!("`{}` is not a complex attribute", show(path)))),
        }
    }

    fn elements(&mut self, doc: &str, keys: &[&str]) -> (String, String) {
        self.aliases = (self.aliases + 1) % MAX_ELEMENT_ALIASES;
        self.dialect.json_elements(doc, keys, &format!("e{}", self.aliases))
    }

    fn compare_json(
        &mut self,
        expr: &str,
        def: &AttrDef,
        op: CompareOp,
        value: &CompValue,
        path: &AttrPath,
    ) -> Result<String, DomainError> {
        match def.ty {
            AttrType::Boolean => {
                let b = as_bool(value, path)?;
                match op {
                    CompareOp::Eq => Ok(format!("COALESCE({}, FALSE)", self.dialect.json_bool(expr, b))),
                    CompareOp::Ne => Ok(format!("NOT COALESCE({}, FALSE)", self.dialect.json_bool(expr, b))),
                    _ => Err(bad_operator(op, path, "boolean")),
                }
            }
            AttrType::Integer | AttrType::Decimal => {
                let CompValue::Number(n) = value else {
                    return Err(invalid_filter(format!("`{}` needs a number", show(path))));
                };
                let p = match n.as_i64() {
                    Some(i) => self.sql.bind(Arg::Int(i)),
                    None => self.sql.bind(Arg::Text(n.to_string())),
                };
                ordered(op, &self.dialect.json_number(expr), &p, path, "number")
            }
            AttrType::Complex => {
                Err(invalid_filter(format!("`{}` is complex: compare one of its sub-attributes", show(path))))
            }
            _ => self.compare_text(expr, def.case_exact, false, op, value, path),
        }
    }

    fn compare_text(
        &mut self,
        expr: &str,
        case_exact: bool,
        lowered: bool,
        op: CompareOp,
        value: &CompValue,
        path: &AttrPath,
    ) -> Result<String, DomainError> {
        let text = match value {
            CompValue::String(s) => s.clone(),
            CompValue::Number(n) => n.to_string(),
            CompValue::Bool(b) => b.to_string(),
            CompValue::Null => {
                return match op {
                    CompareOp::Eq => Ok(format!("({expr} IS NULL)")),
                    CompareOp::Ne => Ok(format!("({expr} IS NOT NULL)")),
                    _ => Err(bad_operator(op, path, "null")),
                };
            }
        };
        let (e, text) = if case_exact || lowered {
            (expr.to_owned(), if lowered { text.to_lowercase() } else { text })
        } else {
            (format!("lower({expr})"), text.to_lowercase())
        };
        let d = self.dialect;
        // An empty needle matches every present value; SQLite's substr would not.
        if text.is_empty() && matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) {
            return Ok(format!("({expr} IS NOT NULL)"));
        }
        let p = self.sql.bind(Arg::Text(text));
        Ok(match op {
            CompareOp::Eq => format!("{e} = {p}"),
            CompareOp::Ne => format!("NOT COALESCE({e} = {p}, FALSE)"),
            CompareOp::Co => d.contains(&e, &p),
            CompareOp::Sw => format!("substr({e}, 1, length({p})) = {p}"),
            CompareOp::Ew => d.ends_with(&e, &p),
            CompareOp::Gt => format!("{} > {p}", d.bytewise(&e)),
            CompareOp::Ge => format!("{} >= {p}", d.bytewise(&e)),
            CompareOp::Lt => format!("{} < {p}", d.bytewise(&e)),
            CompareOp::Le => format!("{} <= {p}", d.bytewise(&e)),
        })
    }
}

fn ordered(op: CompareOp, e: &str, p: &str, path: &AttrPath, what: &str) -> Result<String, DomainError> {
    Ok(match op {
        CompareOp::Eq => format!("{e} = {p}"),
        CompareOp::Ne => format!("NOT COALESCE({e} = {p}, FALSE)"),
        CompareOp::Gt => format!("{e} > {p}"),
        CompareOp::Ge => format!("{e} >= {p}"),
        CompareOp::Lt => format!("{e} < {p}"),
        CompareOp::Le => format!("{e} <= {p}"),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => return Err(bad_operator(op, path, what)),
    })
}

fn membership_sub(sub: Option<&'static str>) -> Option<&'static str> {
    sub.map(|s| if s == "$ref" { "value" } else { s })
}

/// Correlates `group_members m` with the resource row `r`.
fn membership_join(side: Side) -> &'static str {
    match side {
        Side::Group => "m.tenant_id = r.tenant_id AND m.group_id = r.id",
        Side::Member => "m.tenant_id = r.tenant_id AND m.member_id = r.id",
    }
}

/// The other side's `value`, `type` or `display` for a `group_members m` row.
fn membership_column(side: Side, sub: &str) -> String {
    match (side, sub) {
        (Side::Group, "type") => "m.member_type".into(),
        (Side::Group, "display") => "m.display".into(),
        (Side::Group, _) => "m.member_id".into(),
        (Side::Member, "display") => {
            "(SELECT g.display_name FROM groups g WHERE g.tenant_id = m.tenant_id AND g.id = m.group_id)".into()
        }
        (Side::Member, "type") => "'direct'".into(),
        (Side::Member, _) => "m.group_id".into(),
    }
}

fn find(defs: &'static [AttrDef], name: &str) -> Option<&'static AttrDef> {
    defs.iter().find(|d| d.name.eq_ignore_ascii_case(name))
}

fn as_bool(value: &CompValue, path: &AttrPath) -> Result<bool, DomainError> {
    match value {
        CompValue::Bool(b) => Ok(*b),
        CompValue::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        CompValue::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(invalid_filter(format!("`{}` is boolean: compare it with true or false", show(path)))),
    }
}

fn show(path: &AttrPath) -> String {
    let mut s = String::new();
    if let Some(urn) = &path.urn {
        s.push_str(urn);
        s.push(':');
    }
    s.push_str(&path.name);
    if let Some(sub) = &path.sub {
        s.push('.');
        s.push_str(sub);
    }
    s
}

fn bad_operator(op: CompareOp, path: &AttrPath, what: &str) -> DomainError {
    invalid_filter(format!(
        "operator `{}` does not apply to `{}` ({what})",
        format!("{op:?}").to_lowercase(),
        show(path)
    ))
}

fn invalid_filter(detail: String) -> DomainError {
    DomainError::Invalid(proto::Error::invalid_filter(detail))
}

fn invalid_value(detail: String) -> DomainError {
    DomainError::Invalid(proto::Error::invalid_value(detail))
}
/// Whether `filter` matches at most one resource of a tenant: an equality on `id`, or on a
/// user's `userName` (unique per tenant, case-insensitively), perhaps `and`-ed with more. The
/// page of such a search is its whole result, so it needs no count of its own.
pub(super) fn matches_at_most_one(kind: ResourceKind, filter: &Filter) -> bool {
    match filter {
        Filter::And(a, b) => matches_at_most_one(kind, a) || matches_at_most_one(kind, b),
        other => is_key_lookup(kind, other),
    }
}

/// Whether `filter` is one equality on `id` or on a user's `userName` and nothing else: its
/// statement reads one unique key, whatever the tables hold.
pub(super) fn is_key_lookup(kind: ResourceKind, filter: &Filter) -> bool {
    match filter {
        Filter::Compare { attr, op: CompareOp::Eq, value: CompValue::String(_) } => {
            kind.resolve(attr).is_some_and(|resolved| {
                !resolved.extension
                    && resolved.sub.is_none()
                    && (resolved.attr.name == "id" || (resolved.attr.name == "userName" && kind == ResourceKind::User))
            })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_most_one(kind: ResourceKind, filter: &str) -> bool {
        matches_at_most_one(kind, &proto::filter::parse(filter).unwrap())
    }

    #[test]
    fn only_equalities_on_unique_attributes_match_at_most_one() {
        assert!(at_most_one(ResourceKind::User, r#"userName eq "ann""#));
        assert!(at_most_one(ResourceKind::User, r#"USERNAME eq "Ann" and active eq true"#));
        assert!(at_most_one(ResourceKind::User, r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "ann""#));
        assert!(at_most_one(ResourceKind::Group, r#"id eq "x""#));
        assert!(!at_most_one(ResourceKind::User, r#"userName sw "ann""#));
        assert!(!at_most_one(ResourceKind::User, r#"userName eq "ann" or userName eq "bob""#));
        assert!(!at_most_one(ResourceKind::User, r#"externalId eq "ann""#));
        assert!(!at_most_one(ResourceKind::User, r#"emails.value eq "ann@example.com""#));
        assert!(!at_most_one(ResourceKind::Group, r#"displayName eq "Staff""#));
        assert!(!at_most_one(ResourceKind::User, r#"not (userName eq "ann")"#));
    }

    #[test]
    fn only_a_lone_equality_on_a_unique_attribute_is_a_key_lookup() {
        let key_lookup = |kind, filter| is_key_lookup(kind, &proto::filter::parse(filter).unwrap());
        assert!(key_lookup(ResourceKind::User, r#"userName eq "ann""#));
        assert!(key_lookup(ResourceKind::User, r#"id eq "x""#));
        assert!(key_lookup(ResourceKind::Group, r#"id eq "x""#));
        assert!(!key_lookup(ResourceKind::User, r#"userName eq "ann" and active eq true"#));
        assert!(!key_lookup(ResourceKind::Group, r#"displayName eq "ann""#));
        assert!(!key_lookup(ResourceKind::User, r#"externalId eq "ann""#));
    }
}
