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
