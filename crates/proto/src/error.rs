use std::borrow::Cow;

use thiserror::Error;

/// Why a SCIM request is malformed: what kind of mistake it is (one RFC 7644 §3.12 `scimType`)
/// and a human-readable detail for the client.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{detail}")]
pub struct Error {
    kind: ErrorKind,
    detail: Cow<'static, str>,
}

/// What kind of mistake an [`Error`] is: one RFC 7644 §3.12 `scimType` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The filter does not parse or names something that cannot be filtered on.
    InvalidFilter,
    /// A PATCH path does not parse or names an attribute the schema does not have.
    InvalidPath,
    /// A value has the wrong type, is missing where required, or names an unknown attribute.
    InvalidValue,
    /// The request body is not the SCIM message it claims to be.
    InvalidSyntax,
    /// A PATCH path with a value filter matched nothing.
    NoTarget,
    /// An attempt to change a read-only or immutable attribute.
    Mutability,
    /// A request exceeds one of the grammar limits (filter length or depth, operation count).
    TooLarge,
}

impl ErrorKind {
    /// The `scimType` of an error of this kind.
    pub fn scim_type(self) -> &'static str {
        match self {
            ErrorKind::InvalidFilter => "invalidFilter",
            ErrorKind::InvalidPath => "invalidPath",
            ErrorKind::InvalidValue => "invalidValue",
            ErrorKind::InvalidSyntax => "invalidSyntax",
            ErrorKind::NoTarget => "noTarget",
            ErrorKind::Mutability => "mutability",
            ErrorKind::TooLarge => "tooMany",
        }
    }
}

impl Error {
    /// An error of `kind` saying `detail`.
    pub fn new(kind: ErrorKind, detail: impl Into<Cow<'static, str>>) -> Self {
        Self { kind, detail: detail.into() }
    }

    /// See [`ErrorKind::InvalidFilter`].
    pub fn invalid_filter(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidFilter, detail)
    }

    /// See [`ErrorKind::InvalidPath`].
    pub fn invalid_path(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidPath, detail)
    }

    /// See [`ErrorKind::InvalidValue`].
    pub fn invalid_value(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidValue, detail)
    }

    /// See [`ErrorKind::InvalidSyntax`].
    pub fn invalid_syntax(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidSyntax, detail)
    }

    /// See [`ErrorKind::NoTarget`].
    pub fn no_target(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::NoTarget, detail)
    }

    /// See [`ErrorKind::Mutability`].
    pub fn mutability(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Mutability, detail)
    }

    /// See [`ErrorKind::TooLarge`].
    pub fn too_large(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::TooLarge, detail)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What went wrong, for the client.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The detail, owned.
    pub fn into_detail(self) -> String {
        self.detail.into_owned()
    }

    /// The same kind of error with its detail rewritten by `f` (to say where it happened).
    pub fn map_detail(self, f: impl FnOnce(&str) -> String) -> Self {
        Self::new(self.kind, f(&self.detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_detail_keeps_the_kind() {
        let e = Error::no_target("`emails` matched no value").map_detail(|d| format!("Operations[0]: {d}"));
        assert_eq!(e, Error::no_target("Operations[0]: `emails` matched no value"));
        assert_eq!(e.kind().scim_type(), "noTarget");
        assert_eq!(e.to_string(), "Operations[0]: `emails` matched no value");
        assert_eq!(Error::new(ErrorKind::TooLarge, "x").kind().scim_type(), "tooMany");
    }
}
