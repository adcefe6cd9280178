use std::fmt;

use thiserror::Error;

/// What went wrong in a domain operation. Driver errors are kept only as a `source`, never in
/// the message, so nothing from the database reaches a client.
#[derive(Debug, Error)]
pub enum DomainError {
    #[error("{0} not found")]
    NotFound(Entity),
    /// A uniqueness rule would be broken (userName per tenant, tenant name).
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` named a version that is no longer current.
    #[error("resource has changed: version {current} does not match If-Match")]
    PreconditionFailed { current: i64 },
    /// `If-None-Match` matched the current version of a read.
    #[error("not modified")]
    NotModified,
    /// The request is well-formed SCIM but breaks a rule (bad PATCH, unknown member ids).
    #[error(transparent)]
    Invalid(#[from] proto::Error),
    #[error("invalid tenant name: {0}")]
    InvalidTenantName(String),
    /// The database cannot be reached or refused to work (pool timeout, connection lost).
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// A statement ran past the database's time limit and was stopped (PostgreSQL
    /// `statement_timeout`, SQLSTATE 57014).
    #[error("database time limit reached")]
    TimedOut(#[source] sqlx::Error),
    #[error("internal store error: {0}")]
    Internal(String, #[source] Option<Box<dyn std::error::Error + Send + Sync>>),
}

/// What a [`DomainError::NotFound`] could not find. Its `Display` is the name clients read in
/// `<entity> not found`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entity {
    Tenant,
    Token,
    /// A SCIM User.
    User,
    /// A SCIM Group.
    Group,
    Account,
    Organization,
    /// An organization mapping of a group.
    Mapping,
    Webhook,
    DeadLetter,
    SetupLink,
    OAuthClient,
}

impl Entity {
    pub fn name(self) -> &'static str {
        match self {
            Entity::Tenant => "tenant",
            Entity::Token => "token",
            Entity::User => "User",
            Entity::Group => "Group",
            Entity::Account => "account",
            Entity::Organization => "organization",
            Entity::Mapping => "mapping",
            Entity::Webhook => "webhook",
            Entity::DeadLetter => "dead letter",
            Entity::SetupLink => "setup link",
            Entity::OAuthClient => "OAuth client",
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl DomainError {
    pub(crate) fn internal(what: impl Into<String>) -> Self {
        Self::Internal(what.into(), None)
    }
}

impl DomainError {
    /// Whether PostgreSQL aborted the transaction to break a deadlock (40P01) or a
    /// serialization failure (40001): the same write, done again, can succeed.
    pub fn is_deadlock(&self) -> bool {
        matches!(self, Self::Unavailable(sqlx::Error::Database(db)) if matches!(db.code().as_deref(), Some("40P01" | "40001")))
    }
}

impl From<sqlx::Error> for DomainError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(e),
            // PostgreSQL text and jsonb cannot hold U+0000 (SQLSTATE 22021 in a text value, 22P05
            // as `\u0000` in jsonb): the client sent a value no row can have.
            sqlx::Error::Database(ref db) if matches!(db.code().as_deref(), Some("22021" | "22P05")) => {
                Self::Invalid(proto::Error::invalid_value("text cannot contain the character U+0000"))
            }
            sqlx::Error::Database(ref db) if db.code().as_deref() == Some("57014") => Self::TimedOut(e),
            sqlx::Error::Database(ref db) if is_transient(db.code().as_deref()) => Self::Unavailable(e),
            other => Self::Internal("database error".into(), Some(Box::new(other))),
        }
    }
}

/// Database errors that say "not now" rather than "never": a client retrying later succeeds, so
/// they are a 503, not a 500. PostgreSQL SQLSTATEs: class 08 (connection lost), 53 (out of
/// resources), 57P01-57P03 (the server is shutting down or starting), 40001/40P01 (serialization
/// failure, deadlock). SQLite: 5 and 6 (`SQLITE_BUSY`, `SQLITE_LOCKED`, after the busy timeout),
/// with their extended codes.
fn is_transient(code: Option<&str>) -> bool {
    let Some(code) = code else { return false };
    if code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
    {
        return true;
    }
    // SQLite reports its (extended) result code as a number; the primary code is the low byte.
    code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
}

/// True when the error is a unique-constraint violation, on either backend.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// For `map_err` on a write: a unique violation becomes a `Conflict` saying `detail()`; any other
/// error converts as usual.
pub(crate) fn conflict_if_unique(detail: impl FnOnce() -> String) -> impl FnOnce(sqlx::Error) -> DomainError {
    move |e| if is_unique_violation(&e) { DomainError::Conflict(detail()) } else { e.into() }
}

#[cfg(test)]
mod tests {
    use super::{is_transient, DomainError, Entity};

    #[test]
    fn not_found_names_the_entity_as_before() {
        let names = [
            (Entity::Tenant, "tenant"),
            (Entity::Token, "token"),
            (Entity::User, "User"),
            (Entity::Group, "Group"),
            (Entity::Account, "account"),
            (Entity::Organization, "organization"),
            (Entity::Mapping, "mapping"),
            (Entity::Webhook, "webhook"),
            (Entity::DeadLetter, "dead letter"),
            (Entity::SetupLink, "setup link"),
            (Entity::OAuthClient, "OAuth client"),
        ];
        for (entity, name) in names {
            assert_eq!(DomainError::NotFound(entity).to_string(), format!("{name} not found"));
        }
    }

    #[test]
    fn outages_are_transient_and_mistakes_are_not() {
        for code in ["08006", "08003", "57P01", "57P03", "53300", "40001", "40P01", "5", "517", "6"] {
            assert!(is_transient(Some(code)), "{code}");
        }
        for code in ["23505", "42P01", "22P02", "19", "2067", "1"] {
            assert!(!is_transient(Some(code)), "{code}");
        }
        assert!(!is_transient(None));
    }
}
