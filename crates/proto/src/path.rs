//! RFC 7644 §3.5.2 PATCH paths: `attr`, `attr.sub`, `urn:...:attr`, `attr[filter]`,
//! `attr[filter].sub`.

use std::fmt;

use crate::filter::{AttrPath, Filter, Grammar, Parser, MAX_FILTER_LEN};
use crate::Error;

#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    /// The value filter in brackets, paths relative to `attr`.
    pub filter: Option<Filter>,
    /// The sub-attribute after a bracketed filter (`emails[type eq "work"].value`).
    pub sub: Option<String>,
}

/// Parse a PATCH path; errors are `ErrorKind::InvalidPath` (or `InvalidFilter` inside
/// brackets).
pub fn parse(input: &str) -> Result<PatchPath, Error> {
    if input.len() > MAX_FILTER_LEN {
        return Err(Error::too_large(format!(
            "the path is {} bytes long; at most {MAX_FILTER_LEN} are accepted",
            input.len()
        )));
    }
    let mut p = Parser::new(input, Grammar::Path);
    p.skip_ws();
    if p.at_end() {
        return Err(Error::invalid_path("the path is empty"));
    }
    let attr = p.attr_path()?;
    let mut filter = None;
    let mut sub = None;
    if p.eat(b'[') {
        if attr.sub.is_some() {
            return Err(Error::invalid_path(format!(
                "`{attr}` is a sub-attribute: a value filter must follow a multi-valued attribute"
            )));
        }
        // A bracket that is empty or never closed is a malformed path; once there is a filter
        // inside, its errors are filter errors (RFC 7644 §3.12 `invalidFilter`).
        p.skip_ws();
        if p.at_end() || !p.rest().contains(']') {
            return Err(Error::invalid_path(format!("the `[` after `{attr}` is never closed")));
        }
        if p.peek_is(b']') {
            return Err(Error::invalid_path(format!("the value filter after `{attr}` is empty")));
        }
        p.grammar = Grammar::Filter;
        p.enter()?;
        filter = Some(p.or_expr(true)?);
        p.close(b']')?;
        p.leave();
        p.grammar = Grammar::Path;
        if p.eat(b'.') {
            sub = Some(p.attr_name()?);
        }
    }
    p.skip_ws();
    if !p.at_end() {
        return Err(p.expected("the end of the path"));
    }
    Ok(PatchPath { attr, filter, sub })
}

impl PatchPath {
    /// A path to a whole attribute: no filter, no sub-attribute.
    pub fn attribute(attr: AttrPath) -> Self {
        Self { attr, filter: None, sub: None }
    }
}

/// The canonical path text, which [`parse`] reads back to the same value.
impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{CompValue, CompareOp};
    use crate::ErrorKind;

    fn attr(urn: Option<&str>, name: &str, sub: Option<&str>) -> AttrPath {
        AttrPath { urn: urn.map(Into::into), name: name.into(), sub: sub.map(Into::into) }
    }

    fn type_eq_work() -> Filter {
        Filter::Compare { attr: attr(None, "type", None), op: CompareOp::Eq, value: CompValue::String("work".into()) }
    }

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    #[test]
    fn rfc_paths() {
        assert_eq!(parse("members").unwrap(), PatchPath::attribute(attr(None, "members", None)));
        assert_eq!(parse("name.givenName").unwrap(), PatchPath::attribute(attr(None, "name", Some("givenName"))));
        assert_eq!(
            parse(r#"emails[type eq "work"]"#).unwrap(),
            PatchPath { attr: attr(None, "emails", None), filter: Some(type_eq_work()), sub: None }
        );
        assert_eq!(
            parse(r#"emails[type eq "work"].value"#).unwrap(),
            PatchPath { attr: attr(None, "emails", None), filter: Some(type_eq_work()), sub: Some("value".into()) }
        );
        let members = parse(r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#).unwrap();
        assert_eq!(
            members.filter,
            Some(Filter::Compare {
                attr: attr(None, "value", None),
                op: CompareOp::Eq,
                value: CompValue::String("2819c223-7f76-453a-919d-413861904646".into()),
            })
        );
        assert_eq!(
            parse(&format!("{ENTERPRISE}:manager")).unwrap(),
            PatchPath::attribute(attr(Some(ENTERPRISE), "manager", None))
        );
        assert_eq!(
            parse(&format!("{ENTERPRISE}:manager.value")).unwrap(),
            PatchPath::attribute(attr(Some(ENTERPRISE), "manager", Some("value")))
        );
        assert_eq!(
            parse("urn:ietf:params:scim:schemas:core:2.0:User:name.familyName").unwrap(),
            PatchPath::attribute(attr(Some("urn:ietf:params:scim:schemas:core:2.0:User"), "name", Some("familyName")))
        );
        // RFC 7644 §3.5.2.2 writes `eq\"...\"` without a space.
        assert!(parse(r#"members[value eq"2819c223-7f76-453a-919d-413861904646"]"#).is_ok());
        assert!(parse(r#"addresses[type eq "work" and (primary eq true or not (formatted pr))].streetAddress"#).is_ok());
        assert!(parse(r#" emails[ type eq "work" ] "#).is_ok());
    }

    #[test]
    fn errors() {
        let path_error = |input: &str| match parse(input) {
            Err(e) if e.kind() == ErrorKind::InvalidPath => e.into_detail(),
            other => panic!("{input}: expected InvalidPath, got {other:?}"),
        };
        assert_eq!(path_error(""), "the path is empty");
        assert_eq!(path_error("name.givenName.x"), "`name.givenName.x` is not a valid attribute path at position 1");
        assert_eq!(path_error("emails x"), "expected the end of the path at position 8, found `x`");
        assert_eq!(path_error(r#"emails[type eq "work"]x"#), "expected the end of the path at position 23, found `x`");
        assert_eq!(
            path_error(r#"emails[type eq "work"]."#),
            "expected a sub-attribute name at position 24, found end of input"
        );
        assert!(path_error(r#"name.givenName[x pr]"#).contains("sub-attribute"));
        assert!(path_error("[x pr]").starts_with("expected an attribute name at position 1"));
        assert_eq!(path_error("title["), "the `[` after `title` is never closed");
        assert_eq!(path_error(r#"emails[type eq "work""#), "the `[` after `emails` is never closed");
        assert_eq!(path_error("emails[ ]"), "the value filter after `emails` is empty");
        // Inside the brackets, errors are filter errors.
        assert_eq!(parse(r#"emails[type eq "work" x]"#).unwrap_err().kind(), ErrorKind::InvalidFilter);
        assert_eq!(parse(r#"emails[type zz "work"]"#).unwrap_err().kind(), ErrorKind::InvalidFilter);
        assert_eq!(parse(r#"emails[x[y pr]]"#).unwrap_err().kind(), ErrorKind::InvalidFilter);
        assert_eq!(parse(&"a".repeat(MAX_FILTER_LEN + 1)).unwrap_err().kind(), ErrorKind::TooLarge);
    }

    #[test]
    fn display_round_trips() {
        for input in [
            "members",
            "name.givenName",
            r#"emails[type eq "work"]"#,
            r#"emails[type eq "work" and value ew "x.com"].value"#,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            r#"members[value eq "a" or value eq "b"]"#,
        ] {
            let parsed = parse(input).unwrap();
            assert_eq!(parsed.to_string(), input);
            assert_eq!(parse(&parsed.to_string()).unwrap(), parsed);
        }
    }
}
