//! Organizations in the vendor's product, the rules that map IdP groups to them, and the
//! memberships derived from a user's groups.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::slug::{slug_error, SLUG_MAX_LEN};
use crate::DomainError;

/// An organization's name: a slug, like a tenant's (`acme-eng`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrganizationName(String);

impl OrganizationName {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match slug_error(s) {
            Some(why) => Err(DomainError::Invalid(proto::Error::invalid_value(format!("organization name {why}")))),
            None => Ok(Self(s.to_owned())),
        }
    }

    /// The organization a group gives by its name: the name transliterated to ASCII
    /// (`Équipe` → `equipe`, `日本チーム` → `ri-ben-timu`), lower-cased, with every run of other
    /// characters turned into one '-' (`Design Team (EU)` → `design-team-eu`). A name with
    /// nothing usable left (`!!!`) gets `group-` and a hash of the name, so every group has one
    /// and a group of the same name gets the same one again.
    pub fn from_group_name(display_name: &str) -> Self {
        let mut slug = String::new();
        for c in deunicode::deunicode(display_name).chars().flat_map(char::to_lowercase) {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                slug.push(c);
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        slug.truncate(SLUG_MAX_LEN);
        let slug = slug.trim_end_matches('-');
        Self::parse(slug).unwrap_or_else(|_| {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(display_name.trim().to_lowercase().as_bytes());
            Self(format!("group-{}", hex::encode(&digest[..5])))
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// For command-line arguments.
impl FromStr for OrganizationName {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, DomainError> {
        Self::parse(s)
    }
}

impl fmt::Display for OrganizationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: String,
    pub name: OrganizationName,
    /// The name of the group an autoprovisioned organization follows (its slug stays as it was).
    pub display_name: Option<String>,
    /// Created because a group matched nothing, with autoprovisioning on.
    pub autoprovisioned: bool,
    pub created_at: i64,
    /// When the group it was created for was deleted.
    pub archived_at: Option<i64>,
}

/// A member's role in an organization. Ordered: when a user's groups give several roles in one
/// organization, the highest wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Member,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Member, Role::Admin, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
}

impl FromStr for Role {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| {
            DomainError::Invalid(proto::Error::invalid_value(format!(
                "unknown role `{s}`; roles are member, admin and owner"
            )))
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What deprovisioning a user (`active: false`) does to their memberships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Deprovision {
    /// Keep them, marked suspended, and restore them when the user is reactivated (Entra and
    /// Okta disable users rather than delete them, and do not re-send groups on reactivation).
    #[default]
    Suspend,
    /// Remove them; a reactivated user gets them back from the groups they are still in.
    Remove,
}

impl Deprovision {
    pub fn as_str(self) -> &'static str {
        match self {
            Deprovision::Suspend => "suspend",
            Deprovision::Remove => "remove",
        }
    }
}

impl FromStr for Deprovision {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Deprovision::Suspend, Deprovision::Remove]
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| DomainError::Invalid(proto::Error::invalid_value(format!("`{s}` is not suspend or remove"))))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MembershipState {
    Active,
    /// The user is inactive; the membership comes back when they are reactivated.
    Suspended,
}

impl MembershipState {
    pub fn as_str(self) -> &'static str {
        match self {
            MembershipState::Active => "active",
            MembershipState::Suspended => "suspended",
        }
    }
}

/// Which groups a mapping applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupMatcher {
    /// Groups with this display name, compared case-insensitively (what admins see in the IdP).
    DisplayName(String),
    /// The group with this SCIM id (stable across renames).
    Id(String),
}

impl GroupMatcher {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            GroupMatcher::DisplayName(_) => "displayName",
            GroupMatcher::Id(_) => "id",
        }
    }

    /// The value as stored and compared: display names lower-cased.
    pub(crate) fn key(&self) -> String {
        match self {
            GroupMatcher::DisplayName(name) => name.to_lowercase(),
            GroupMatcher::Id(id) => id.clone(),
        }
    }
}

/// A rule: groups matching `matcher` give their users `role` in `organization`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMapping {
    pub id: String,
    pub matcher: GroupMatcher,
    pub organization: OrganizationName,
    pub role: Role,
    pub created_at: i64,
}

/// A user's derived membership in one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub organization: OrganizationName,
    pub user_id: String,
    pub user_name: String,
    pub role: Role,
    pub state: MembershipState,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What the readiness check knows about a tenant's configuration and traffic so far.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadinessFacts {
    pub users: u64,
    pub groups: u64,
    /// Groups that give no organization (no mapping, no same-named organization, no
    /// autoprovisioning), with a few of their names.
    pub unlinked_groups: u64,
    pub unlinked_group_names: Vec<String>,
    pub mappings: u64,
    /// Mappings that match no group yet.
    pub idle_mappings: Vec<GroupMapping>,
    pub organizations: u64,
    pub live_tokens: u64,
    /// Live tokens that expire within a week.
    pub tokens_expiring_soon: u64,
    /// Live OAuth clients (secret or federated).
    pub live_oauth_clients: u64,
    pub webhooks: u64,
    pub failing_webhooks: u64,
    pub dead_letters: u64,
    /// Linking emails that more than one user has, and a few of them.
    pub duplicate_emails: u64,
    pub duplicate_email_samples: Vec<String>,
    /// The tenant's own rate limit (`None`: the gateway's default applies).
    pub tenant_rate_per_second: Option<u32>,
    /// The User-Agent of the tenant's latest SCIM request.
    pub last_user_agent: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_become_organization_slugs() {
        let slug = |s: &str| OrganizationName::from_group_name(s).to_string();
        assert_eq!(slug("Designers"), "designers");
        assert_eq!(slug("Design Team (EU)"), "design-team-eu");
        assert_eq!(slug("  R&D / Platform  "), "r-d-platform");
        assert_eq!(slug("Équipe"), "equipe");
        assert_eq!(slug("Ventes — Île-de-France"), "ventes-ile-de-france");
        assert_eq!(slug("日本チーム"), "ri-ben-timu");
        assert_eq!(slug(&"x".repeat(100)).len(), 63);
        // Nothing usable: a stable name from a hash of the group's name.
        let bangs = slug("!!!");
        assert!(bangs.starts_with("group-") && bangs.len() == 16, "{bangs}");
        assert!(OrganizationName::parse(&bangs).is_ok());
        assert_eq!(slug("!!!"), bangs);
        assert_ne!(slug("???"), bangs);
    }

    #[test]
    fn roles_are_ordered_and_parsed() {
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Member);
        assert_eq!("Admin".parse::<Role>().unwrap(), Role::Admin);
        assert!("root".parse::<Role>().is_err());
    }
}
