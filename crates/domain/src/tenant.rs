use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use proto::IdpProfile;
use serde::{Deserialize, Serialize};

use crate::link::{DuplicateEmails, LinkBy};
use crate::org::{Deprovision, Role};
use crate::slug::{slug_error, SLUG_MAX_LEN};
use crate::DomainError;

/// An organization's name as it appears in its SCIM base URL (`/scim/v2/<name>`): a lowercase
/// DNS-label-like slug. `_` is refused because Okta rejects base URLs containing it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct TenantName(String);

impl TenantName {
    pub const MAX_LEN: usize = SLUG_MAX_LEN;

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match slug_error(s) {
            Some(why) => Err(DomainError::InvalidTenantName(why)),
            None => Ok(Self(s.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// For command-line arguments.
impl std::str::FromStr for TenantName {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, DomainError> {
        Self::parse(s)
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The internal, immutable id of a tenant (a UUID). URLs name tenants; rows reference ids, so a
/// tenant could be renamed without rewriting its data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantId(pub(crate) String);

impl TenantId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tenant's own rate limit: a sustained rate and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// `None` when either number is zero: a limit that refuses everything is a tenant delete,
    /// not a limit.
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        Some(Self { per_second: NonZeroU32::new(per_second)?, burst: NonZeroU32::new(burst)? })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: TenantName,
    pub created_at: i64,
    /// This tenant's own rate limit; `None` means the gateway's default.
    pub rate_limit: Option<RateLimit>,
    pub settings: TenantSettings,
}

/// Which credentials a tenant's SCIM endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethods {
    /// Long-lived bearer tokens only.
    Bearer,
    /// Access tokens from the tenant's OAuth clients only (what the Entra gallery requires).
    #[serde(rename = "oauth")]
    OAuth,
    #[default]
    Both,
}

impl AuthMethods {
    pub const ALL: [AuthMethods; 3] = [AuthMethods::Bearer, AuthMethods::OAuth, AuthMethods::Both];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethods::Bearer => "bearer",
            AuthMethods::OAuth => "oauth",
            AuthMethods::Both => "both",
        }
    }

    pub fn accepts_bearer(self) -> bool {
        self != AuthMethods::OAuth
    }

    pub fn accepts_oauth(self) -> bool {
        self != AuthMethods::Bearer
    }
}

impl FromStr for AuthMethods {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuthMethods::ALL.into_iter().find(|m| m.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| {
            DomainError::Invalid(proto::Error::invalid_value(format!(
                "unknown authentication methods `{s}`; use bearer, oauth or both"
            )))
        })
    }
}

impl fmt::Display for AuthMethods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long a tenant's access tokens live: 60 minutes to 6 hours (the Entra gallery's range).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct AccessTokenLifetime(u32);

impl AccessTokenLifetime {
    pub const MIN_SECONDS: u32 = 3600;
    pub const MAX_SECONDS: u32 = 6 * 3600;

    pub fn from_seconds(seconds: u64) -> Result<Self, DomainError> {
        u32::try_from(seconds)
            .ok()
            .filter(|s| (Self::MIN_SECONDS..=Self::MAX_SECONDS).contains(s))
            .map(Self)
            .ok_or_else(|| {
                DomainError::Invalid(proto::Error::invalid_value(format!(
                    "an access token lifetime is 60 minutes to 6 hours, not {seconds} seconds"
                )))
            })
    }

    pub fn seconds(self) -> u32 {
        self.0
    }
}

impl Default for AccessTokenLifetime {
    fn default() -> Self {
        Self(Self::MIN_SECONDS)
    }
}

impl<'de> Deserialize<'de> for AccessTokenLifetime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::from_seconds(u64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// How a tenant's IdP traffic becomes organization memberships: the per-organization IdP
/// configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TenantSettings {
    /// The IdP it provisions from, for the few answers that differ per IdP.
    pub idp_profile: IdpProfile,
    /// Create an organization for a group that matches no mapping and no organization.
    pub autoprovision: bool,
    /// The role a group gives when no mapping names one (autoprovisioned and same-named orgs).
    pub default_role: Role,
    /// What happens to the memberships of a user who becomes inactive.
    pub deprovision: Deprovision,
    /// Bearer tokens, OAuth access tokens, or both.
    pub auth_methods: AuthMethods,
    /// How long the access tokens of the tenant's OAuth clients live.
    pub access_token_lifetime: AccessTokenLifetime,
    pub link_by: LinkBy,
    pub duplicate_emails: DuplicateEmails,
}

/// A change to a tenant's settings. A field left `None` keeps its value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantUpdate {
    /// `Some(None)` returns the tenant to the default limit.
    pub rate_limit: Option<Option<RateLimit>>,
    pub idp_profile: Option<IdpProfile>,
    pub autoprovision: Option<bool>,
    pub default_role: Option<Role>,
    pub deprovision: Option<Deprovision>,
    pub auth_methods: Option<AuthMethods>,
    pub access_token_lifetime: Option<AccessTokenLifetime>,
    pub link_by: Option<LinkBy>,
    pub duplicate_emails: Option<DuplicateEmails>,
}

impl TenantUpdate {
    /// Whether the change can alter derived memberships (and so needs a reconciliation).
    pub(crate) fn affects_memberships(&self) -> bool {
        self.autoprovision.is_some() || self.default_role.is_some() || self.deprovision.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_stay_within_an_hour_and_six() {
        assert_eq!(AccessTokenLifetime::default().seconds(), 3600);
        assert_eq!(AccessTokenLifetime::from_seconds(21600).unwrap().seconds(), 21600);
        for bad in [0, 3599, 21601, u64::MAX] {
            assert!(AccessTokenLifetime::from_seconds(bad).unwrap_err().to_string().contains("60 minutes"));
        }
    }

    #[test]
    fn methods_parse_and_say_what_they_accept() {
        assert_eq!("OAuth".parse::<AuthMethods>().unwrap(), AuthMethods::OAuth);
        assert!(!AuthMethods::OAuth.accepts_bearer() && AuthMethods::OAuth.accepts_oauth());
        assert!(AuthMethods::Bearer.accepts_bearer() && !AuthMethods::Bearer.accepts_oauth());
        assert!("tokens".parse::<AuthMethods>().is_err());
    }

    #[test]
    fn slugs_are_accepted() {
        for ok in ["acme", "a", "acme-eng", "x1", "0rg", &"a".repeat(63)] {
            assert_eq!(TenantName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        for bad in ["", "acme_eng", "Acme", "-acme", "acme-", "ac me", "acmé", "a/b", &"a".repeat(64)] {
            let err = TenantName::parse(bad).unwrap_err().to_string();
            assert!(err.contains("lowercase letters"), "{bad}: {err}");
        }
        assert!(TenantName::parse("acme_eng").unwrap_err().to_string().contains("contains `_`"));
    }
}
