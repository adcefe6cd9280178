use thiserror::Error;

/// Why a SCIM request is malformed. Each variant carries a human-readable detail and maps to one
/// RFC 7644 §3.12 `scimType` (the mapping lives in `edge`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// The filter does not parse or names something that cannot be filtered on.
    #[error("{0}")]
    InvalidFilter(String),
    /// A PATCH path does not parse or names an attribute the schema does not have.
    #[error("{0}")]
    InvalidPath(String),
    /// A value has the wrong type, is missing where required, or names an unknown attribute.
    #[error("{0}")]
    InvalidValue(String),
    /// The request body is not the SCIM message it claims to be.
    #[error("{0}")]
    InvalidSyntax(String),
    /// A PATCH path with a value filter matched nothing.
    #[error("{0}")]
    NoTarget(String),
    /// An attempt to change a read-only or immutable attribute.
    #[error("{0}")]
    Mutability(String),
    /// A request exceeds one of the grammar limits (filter length or depth, operation count).
    #[error("{0}")]
    TooLarge(String),
}

/// What kind of mistake an [`Error`] is: one RFC 7644 §3.12 `scimType` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidFilter,
    InvalidPath,
    InvalidValue,
    InvalidSyntax,
    NoTarget,
    Mutability,
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
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        match kind {
            ErrorKind::InvalidFilter => Error::InvalidFilter(detail),
            ErrorKind::InvalidPath => Error::InvalidPath(detail),
            ErrorKind::InvalidValue => Error::InvalidValue(detail),
            ErrorKind::InvalidSyntax => Error::InvalidSyntax(detail),
            ErrorKind::NoTarget => Error::NoTarget(detail),
            ErrorKind::Mutability => Error::Mutability(detail),
            ErrorKind::TooLarge => Error::TooLarge(detail),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidFilter(_) => ErrorKind::InvalidFilter,
            Error::InvalidPath(_) => ErrorKind::InvalidPath,
            Error::InvalidValue(_) => ErrorKind::InvalidValue,
            Error::InvalidSyntax(_) => ErrorKind::InvalidSyntax,
            Error::NoTarget(_) => ErrorKind::NoTarget,
            Error::Mutability(_) => ErrorKind::Mutability,
            Error::TooLarge(_) => ErrorKind::TooLarge,
        }
    }

    /// What went wrong, for the client.
    pub fn detail(&self) -> &str {
        match self {
            Error::InvalidFilter(d)
            | Error::InvalidPath(d)
            | Error::InvalidValue(d)
            | Error::InvalidSyntax(d)
            | Error::NoTarget(d)
            | Error::Mutability(d)
            | Error::TooLarge(d) => d,
        }
    }

    /// The same kind of error with its detail rewritten by `f` (to say where it happened).
    pub fn map_detail(self, f: impl FnOnce(&str) -> String) -> Self {
        Self::new(self.kind(), f(self.detail()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_detail_keeps_the_kind() {
        let e = Error::NoTarget("`emails` matched no value".into()).map_detail(|d| format!("Operations[0]: {d}"));
        assert_eq!(e, Error::NoTarget("Operations[0]: `emails` matched no value".into()));
        assert_eq!(e.kind().scim_type(), "noTarget");
        assert_eq!(Error::new(ErrorKind::TooLarge, "x").kind().scim_type(), "tooMany");
    }
}
