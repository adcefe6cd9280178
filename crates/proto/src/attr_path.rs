//! Attribute paths, shared by the filter grammar, PATCH paths and the schema.

use std::fmt;

/// An attribute path as written in a filter or PATCH path: an optional schema URN, an attribute
/// name and an optional sub-attribute (`urn:...:User:name.givenName`). Names are kept as written;
/// [`crate::schema::ResourceKind::resolve`] maps them case-insensitively onto the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl AttrPath {
    /// A path without URN or sub-attribute.
    pub fn simple(name: impl Into<String>) -> Self {
        Self { urn: None, name: name.into(), sub: None }
    }
}
