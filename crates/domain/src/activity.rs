//! The provisioning activity log: one record per SCIM request of a tenant, so that the IT admin
//! who connected an IdP can see what it sent and what it was answered. A record holds what the
//! request did and how it ended, never a body, a secret or a filter value.

use std::fmt;
use std::str::FromStr;

use proto::IdpProfile;
use token::TokenId;

use crate::{DomainError, TenantId, TenantName};

/// The HTTP method of a recorded request; methods SCIM does not use share `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActivityMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Other,
}

impl ActivityMethod {
    pub const ALL: [ActivityMethod; 6] = [Self::Get, Self::Post, Self::Put, Self::Patch, Self::Delete, Self::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Other => "OTHER",
        }
    }

    /// The method of an HTTP request line (`PATCH`); unknown ones are `Other`.
    pub fn from_http(method: &str) -> Self {
        Self::ALL.into_iter().find(|m| m.as_str() == method).unwrap_or(Self::Other)
    }
}

/// Parses a method name, case-insensitively (`patch`, `PATCH`).
impl FromStr for ActivityMethod {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| unknown("method", s, Self::ALL.iter().map(|m| m.as_str())))
    }
}

/// What a recorded request addressed: a SCIM resource type, or one of the tenant's other
/// endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActivityResource {
    User,
    Group,
    /// `POST /.search` at the tenant root, across Users and Groups.
    Search,
    ServiceProviderConfig,
    ResourceType,
    Schema,
    Bulk,
    Me,
    /// The tenant's readiness report.
    Readiness,
    /// A path under the tenant's URL that names no endpoint (a mistyped Tenant URL).
    Other,
}

impl ActivityResource {
    pub const ALL: [ActivityResource; 10] = [
        Self::User,
        Self::Group,
        Self::Search,
        Self::ServiceProviderConfig,
        Self::ResourceType,
        Self::Schema,
        Self::Bulk,
        Self::Me,
        Self::Readiness,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Group => "group",
            Self::Search => "search",
            Self::ServiceProviderConfig => "service_provider_config",
            Self::ResourceType => "resource_type",
            Self::Schema => "schema",
            Self::Bulk => "bulk",
            Self::Me => "me",
            Self::Readiness => "readiness",
            Self::Other => "other",
        }
    }
}

impl FromStr for ActivityResource {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| unknown("resource type", s, Self::ALL.iter().map(|r| r.as_str())))
    }
}

/// The credential a request was let in with: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ActivityCredential {
    /// A bearer token, by its public id.
    Token(TokenId),
    /// An OAuth client, by its client id (the access token it presented was issued to it).
    OAuthClient(TokenId),
}

impl ActivityCredential {
    /// `token` or `oauth_client`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Token(_) => "token",
            Self::OAuthClient(_) => "oauth_client",
        }
    }

    pub fn id(&self) -> &TokenId {
        match self {
            Self::Token(id) | Self::OAuthClient(id) => id,
        }
    }

    pub(crate) fn from_parts(kind: &str, id: &str) -> Result<Self, DomainError> {
        let id = TokenId::parse(id).map_err(|_| DomainError::internal(format!("stored credential id `{id}`")))?;
        match kind {
            "token" => Ok(Self::Token(id)),
            "oauth_client" => Ok(Self::OAuthClient(id)),
            other => Err(DomainError::internal(format!("stored credential kind `{other}`"))),
        }
    }
}

/// What one request did and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityRecord {
    /// When the request arrived, in microseconds since the epoch.
    pub at: i64,
    pub method: ActivityMethod,
    pub resource_type: ActivityResource,
    /// The resource the request named or created, when known.
    pub resource_id: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// The SCIM error's `scimType`, if the answer was an error that has one.
    pub scim_type: Option<String>,
    /// The SCIM error's `detail`, as the IdP was given it.
    pub detail: Option<String>,
    /// How long the answer took, in microseconds.
    pub latency_us: i64,
    /// The IdP the request's User-Agent names; `None` when it names none.
    pub idp: Option<IdpProfile>,
    /// The credential that authenticated the request; `None` when it was refused before that.
    pub credential: Option<ActivityCredential>,
}

impl ActivityRecord {
    /// The longest resource id and detail kept; longer ones are cut (at a character boundary).
    pub const MAX_TEXT: usize = 1000;

    pub fn outcome(&self) -> OutcomeClass {
        OutcomeClass::of(self.status)
    }
}

/// A record about to be appended, for the tenant named in the request's URL. Records of a name
/// no tenant has are dropped by the store: requests to unknown tenants are nobody's activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewActivity {
    pub tenant: TenantName,
    pub record: ActivityRecord,
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// Increases with every record appended (across tenants).
    pub seq: i64,
    pub record: ActivityRecord,
}

impl Activity {
    /// The cursor that continues a listing after this record.
    pub fn cursor(&self) -> ActivityCursor {
        ActivityCursor { at: self.record.at, seq: self.seq }
    }
}

/// How a request ended, by status class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeClass {
    /// 1xx to 3xx (a `304 Not Modified` answered the request).
    Success,
    /// 4xx: the IdP's request was refused.
    ClientError,
    /// 5xx: the gateway failed or was unavailable.
    ServerError,
}

impl OutcomeClass {
    pub const ALL: [OutcomeClass; 3] = [Self::Success, Self::ClientError, Self::ServerError];

    pub fn of(status: u16) -> Self {
        match status {
            0..=399 => Self::Success,
            400..=499 => Self::ClientError,
            _ => Self::ServerError,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::ClientError => "client_error",
            Self::ServerError => "server_error",
        }
    }

    /// The statuses of this class: `low..high`.
    pub(crate) fn statuses(self) -> (i64, i64) {
        match self {
            Self::Success => (0, 400),
            Self::ClientError => (400, 500),
            Self::ServerError => (500, 1000),
        }
    }
}

impl FromStr for OutcomeClass {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| unknown("outcome", s, Self::ALL.iter().map(|o| o.as_str())))
    }
}

/// Where a listing continues: after the record at (`at`, `seq`), going back in time. Written as
/// `<at>.<seq>`; clients pass it back as they got it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ActivityCursor {
    pub at: i64,
    pub seq: i64,
}

impl fmt::Display for ActivityCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.at, self.seq)
    }
}

impl FromStr for ActivityCursor {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || DomainError::Invalid(proto::Error::invalid_value(format!("`{s}` is not an activity cursor")));
        let (at, seq) = s.split_once('.').ok_or_else(invalid)?;
        let number = |n: &str| {
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            n.parse::<i64>().map_err(|_| invalid())
        };
        Ok(Self { at: number(at)?, seq: number(seq)? })
    }
}

/// How many records one listing returns: 1 to [`ActivityLimit::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityLimit(u32);

impl ActivityLimit {
    pub const MAX: u32 = 1000;
    pub const DEFAULT: ActivityLimit = ActivityLimit(100);

    pub fn new(n: u32) -> Result<Self, DomainError> {
        if (1..=Self::MAX).contains(&n) {
            Ok(Self(n))
        } else {
            Err(DomainError::Invalid(proto::Error::invalid_value(format!(
                "limit must be between 1 and {}, not {n}",
                Self::MAX
            ))))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for ActivityLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Which records of a tenant to list, newest first. Every filter given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityQuery {
    pub outcome: Option<OutcomeClass>,
    /// Exactly this HTTP status.
    pub status: Option<u16>,
    pub method: Option<ActivityMethod>,
    pub resource_type: Option<ActivityResource>,
    /// Records at or after this time (microseconds since the epoch).
    pub since: Option<i64>,
    /// Records before this time (microseconds since the epoch).
    pub until: Option<i64>,
    /// Continue after this record (from [`ActivityPage::next_cursor`]).
    pub cursor: Option<ActivityCursor>,
    pub limit: ActivityLimit,
}

/// One page of a listing, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityPage {
    pub items: Vec<Activity>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<ActivityCursor>,
}

/// How much activity is kept: records older than `before` go (`None`: none for their age), and
/// so does each over-long log up to its cut-off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityRetention {
    /// Microseconds since the epoch.
    pub before: Option<i64>,
    /// Where each tenant's log that is longer than its bound is cut, as
    /// [`crate::ActivityStore::activity_cutoffs`] found them at the start of a pass.
    pub cutoffs: Vec<ActivityCutoff>,
}

/// The newest record of one tenant's log beyond its bound: it and every older record go.
/// Records appended after it was found are newer, so a pass that keeps cutting at it never
/// reaches the newest records it keeps, and needs to count the log only once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityCutoff {
    pub(crate) tenant: TenantId,
    pub(crate) at: i64,
    pub(crate) seq: i64,
}

fn unknown(what: &str, s: &str, names: impl Iterator<Item = &'static str>) -> DomainError {
    let names: Vec<&str> = names.collect();
    DomainError::Invalid(proto::Error::invalid_value(format!(
        "unknown {what} `{s}`; expected one of {}",
        names.join(", ")
    )))
}

/// `s` cut to at most `max` bytes, at a character boundary.
pub(crate) fn truncated(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in ActivityMethod::ALL {
            assert_eq!(m.as_str().parse::<ActivityMethod>().unwrap(), m);
            assert_eq!(m.as_str().to_lowercase().parse::<ActivityMethod>().unwrap(), m);
        }
        for r in ActivityResource::ALL {
            assert_eq!(r.as_str().parse::<ActivityResource>().unwrap(), r);
        }
        for o in OutcomeClass::ALL {
            assert_eq!(o.as_str().parse::<OutcomeClass>().unwrap(), o);
        }
        assert_eq!(ActivityMethod::from_http("BREW"), ActivityMethod::Other);
        let err = "users".parse::<ActivityResource>().unwrap_err().to_string();
        assert!(err.contains("expected one of user, group"), "{err}");
    }

    #[test]
    fn outcome_classes() {
        assert_eq!(OutcomeClass::of(201), OutcomeClass::Success);
        assert_eq!(OutcomeClass::of(304), OutcomeClass::Success);
        assert_eq!(OutcomeClass::of(409), OutcomeClass::ClientError);
        assert_eq!(OutcomeClass::of(503), OutcomeClass::ServerError);
    }

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let cursor = ActivityCursor { at: 1_764_000_000_000_000, seq: 42 };
        assert_eq!(cursor.to_string().parse::<ActivityCursor>().unwrap(), cursor);
        for bad in ["", "1", "1.", ".1", "a.1", "1.-2", "-1.2", "1.2.3", "99999999999999999999.1", "1 .2"] {
            assert!(bad.parse::<ActivityCursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(ActivityLimit::new(1).unwrap().get(), 1);
        assert_eq!(ActivityLimit::new(ActivityLimit::MAX).unwrap().get(), ActivityLimit::MAX);
        assert!(ActivityLimit::new(0).is_err());
        assert!(ActivityLimit::new(ActivityLimit::MAX + 1).is_err());
        assert_eq!(ActivityLimit::default().get(), 100);
    }

    #[test]
    fn text_is_cut_at_a_character_boundary() {
        assert_eq!(truncated("abc", 5), "abc");
        assert_eq!(truncated("abcdef", 3), "abc");
        assert_eq!(truncated("aé", 2), "a");
    }
}
