//! A structured PATCH request for `arbitrary`: operations built from the schema's own attribute
//! names, URNs, filters and the value shapes IdPs send, so the fuzzer spends its time in
//! `apply` rather than in the JSON and path parsers (which the other targets cover).

use arbitrary::Arbitrary;
use proto::patch::PATCH_OP;
use proto::schema::{ENTERPRISE_USER, GROUP, USER};
use serde_json::{Map, Number, Value};

/// At most this many operations per request: longer ones add run time, not coverage.
const MAX_OPS: usize = 8;

#[derive(Arbitrary, Debug)]
pub struct Request {
    ops: Vec<Operation>,
}

#[derive(Arbitrary, Debug)]
struct Operation {
    op: OpName,
    path: Option<PathSpec>,
    value: Option<Val>,
}

#[derive(Arbitrary, Debug)]
enum OpName {
    Add,
    Remove,
    Replace,
    /// Entra's legacy dialect capitalises ops.
    Capitalised(bool),
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum PathSpec {
    Attr { urn: Option<Urn>, name: Name, sub: Option<Name> },
    Filtered { name: Name, filter: FilterSpec, sub: Option<Name> },
    Schema(Urn),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum FilterSpec {
    Compare(Name, u8, Val),
    Present(Name),
    And(Box<FilterSpec>, Box<FilterSpec>),
    Or(Box<FilterSpec>, Box<FilterSpec>),
    Not(Box<FilterSpec>),
}

#[derive(Arbitrary, Debug)]
enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(Text),
    Array(Vec<Val>),
    Object(Vec<(Key, Val)>),
}

#[derive(Arbitrary, Debug)]
enum Text {
    Known(u8),
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum Key {
    Name(Name),
    Dotted(Name, Name),
    Qualified(Urn, Name),
    Schema(Urn),
    Any(String),
}

/// An attribute or sub-attribute name from the schemas (and a few that are not), in the
/// schema's spelling or upper case.
#[derive(Arbitrary, Debug)]
struct Name(u8, bool);

#[derive(Arbitrary, Debug)]
struct Urn(u8);

const NAMES: &[&str] = &[
    "userName",
    "name",
    "givenName",
    "familyName",
    "formatted",
    "displayName",
    "nickName",
    "title",
    "active",
    "externalId",
    "emails",
    "phoneNumbers",
    "addresses",
    "roles",
    "entitlements",
    "ims",
    "photos",
    "x509Certificates",
    "groups",
    "members",
    "manager",
    "employeeNumber",
    "department",
    "costCenter",
    "value",
    "type",
    "primary",
    "display",
    "$ref",
    "id",
    "meta",
    "schemas",
    "password",
    "streetAddress",
    "locality",
    "userType",
    "locale",
    "timezone",
    "profileUrl",
    "lastModified",
    "created",
    "noSuchAttribute",
];

const URNS: &[&str] = &[USER, ENTERPRISE_USER, GROUP, "urn:ietf:params:scim:schemas:extension:unknown:2.0:User"];

const TEXTS: &[&str] = &[
    "",
    " ",
    "work",
    "home",
    "other",
    "True",
    "false",
    "User",
    "Group",
    "2819c223-7f76-453a-919d-413861904646",
    "902c246b-6245-4190-8e05-00816be7344a",
    "2011-05-13T04:42:34Z",
    "not a date",
    "bjensen@example.com",
    "babs@jensen.org",
    "Babs Jensen",
    "https://example.com/Users/1",
];

const COMPARE_OPS: &[&str] = &["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "EQ"];

impl Request {
    /// The PatchOp message these operations make.
    pub fn to_json(&self) -> Value {
        let ops: Vec<Value> = self.ops.iter().take(MAX_OPS).map(Operation::to_json).collect();
        serde_json::json!({"schemas": [PATCH_OP], "Operations": ops})
    }
}

impl Operation {
    fn to_json(&self) -> Value {
        let mut fields = Map::new();
        let op = match &self.op {
            OpName::Add => "add".to_owned(),
            OpName::Remove => "remove".to_owned(),
            OpName::Replace => "replace".to_owned(),
            OpName::Capitalised(true) => "Add".to_owned(),
            OpName::Capitalised(false) => "Replace".to_owned(),
            OpName::Other(s) => s.clone(),
        };
        fields.insert("op".into(), Value::String(op));
        if let Some(path) = &self.path {
            fields.insert("path".into(), Value::String(path.render()));
        }
        if let Some(value) = &self.value {
            fields.insert("value".into(), value.to_json());
        }
        Value::Object(fields)
    }
}

impl PathSpec {
    fn render(&self) -> String {
        match self {
            Self::Attr { urn, name, sub } => {
                let mut out = urn.as_ref().map_or_else(String::new, |u| format!("{}:", u.as_str()));
                out.push_str(&name.render());
                if let Some(sub) = sub {
                    out.push('.');
                    out.push_str(&sub.render());
                }
                out
            }
            Self::Filtered { name, filter, sub } => {
                let mut out = format!("{}[{}]", name.render(), filter.render());
                if let Some(sub) = sub {
                    out.push('.');
                    out.push_str(&sub.render());
                }
                out
            }
            Self::Schema(urn) => urn.as_str().to_owned(),
            Self::Raw(s) => s.clone(),
        }
    }
}

impl FilterSpec {
    fn render(&self) -> String {
        match self {
            Self::Compare(name, op, value) => {
                let op = COMPARE_OPS[usize::from(*op) % COMPARE_OPS.len()];
                format!("{} {op} {}", name.render(), value.to_json())
            }
            Self::Present(name) => format!("{} pr", name.render()),
            Self::And(a, b) => format!("({} and {})", a.render(), b.render()),
            Self::Or(a, b) => format!("({} or {})", a.render(), b.render()),
            Self::Not(inner) => format!("not ({})", inner.render()),
        }
    }
}

impl Val {
    fn to_json(&self) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(*b),
            Self::Int(i) => Value::Number((*i).into()),
            Self::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Self::Text(Text::Known(i)) => Value::String(TEXTS[usize::from(*i) % TEXTS.len()].to_owned()),
            Self::Text(Text::Any(s)) => Value::String(s.clone()),
            Self::Array(items) => Value::Array(items.iter().map(Val::to_json).collect()),
            Self::Object(fields) => Value::Object(fields.iter().map(|(k, v)| (k.render(), v.to_json())).collect()),
        }
    }
}

impl Key {
    fn render(&self) -> String {
        match self {
            Self::Name(name) => name.render(),
            Self::Dotted(a, b) => format!("{}.{}", a.render(), b.render()),
            Self::Qualified(urn, name) => format!("{}:{}", urn.as_str(), name.render()),
            Self::Schema(urn) => urn.as_str().to_owned(),
            Self::Any(s) => s.clone(),
        }
    }
}

impl Name {
    fn render(&self) -> String {
        let name = NAMES[usize::from(self.0) % NAMES.len()];
        if self.1 {
            name.to_uppercase()
        } else {
            name.to_owned()
        }
    }
}

impl Urn {
    fn as_str(&self) -> &'static str {
        URNS[usize::from(self.0) % URNS.len()]
    }
}
