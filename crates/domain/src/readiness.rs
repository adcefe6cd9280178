//! The readiness check: what will go wrong (or already does) with a tenant's provisioning, said
//! so an IT admin can fix it before switching provisioning on.

use proto::IdpProfile;
use serde::Serialize;

use crate::link::{DuplicateEmails, LinkBy};
use crate::org::{Deprovision, GroupMatcher, ReadinessFacts, Role};
use crate::store::Store;
use crate::{DomainError, TenantName, TenantSettings};

/// The readiness report of a tenant, as operators (admin API, CLI) and the tenant's own IT admin
/// (`GET /scim/v2/{org}/readiness`) read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadinessReport {
    pub tenant: TenantName,
    /// No finding is a warning.
    pub ready: bool,
    pub settings: ReportedSettings,
    pub counts: ReportedCounts,
    pub last_user_agent: Option<String>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportedSettings {
    pub idp_profile: IdpProfile,
    pub autoprovision: bool,
    pub default_role: Role,
    pub deprovision: Deprovision,
    pub link_by: LinkBy,
    pub duplicate_emails: DuplicateEmails,
    /// The limit that applies: the tenant's own, else the gateway's default.
    pub rate_limit_per_second: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportedCounts {
    pub users: u64,
    pub groups: u64,
    pub groups_without_organization: u64,
    pub organizations: u64,
    pub live_tokens: u64,
    pub webhooks: u64,
    pub dead_letters: u64,
    pub duplicate_emails: u64,
}

/// The readiness report of `tenant`, from the store and the gateway's default rate limit
/// (`default_rate`, when the tenant has none of its own).
#[tracing::instrument(skip_all, fields(tenant = %tenant))]
pub async fn readiness_report(
    store: &dyn Store,
    default_rate: Option<u32>,
    tenant: &TenantName,
) -> Result<ReadinessReport, DomainError> {
    let settings = store.tenant(tenant).await?.settings;
    let facts = store.readiness(tenant).await?;
    let findings = facts.findings(&settings, default_rate);
    Ok(ReadinessReport {
        tenant: tenant.clone(),
        ready: !findings.iter().any(|f| f.severity == Severity::Warning),
        settings: ReportedSettings {
            idp_profile: settings.idp_profile,
            autoprovision: settings.autoprovision,
            default_role: settings.default_role,
            deprovision: settings.deprovision,
            link_by: settings.link_by,
            duplicate_emails: settings.duplicate_emails,
            rate_limit_per_second: facts.tenant_rate_per_second.or(default_rate),
        },
        counts: ReportedCounts {
            users: facts.users,
            groups: facts.groups,
            groups_without_organization: facts.unlinked_groups,
            organizations: facts.organizations,
            live_tokens: facts.live_tokens,
            webhooks: facts.webhooks,
            dead_letters: facts.dead_letters,
            duplicate_emails: facts.duplicate_emails,
        },
        last_user_agent: facts.last_user_agent,
        findings,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Provisioning will not do what the admin most likely expects.
    Warning,
    /// Worth knowing; nothing is wrong.
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable, for programs: `unlinked_groups`, `idle_mapping`, `no_token`, ...
    pub code: &'static str,
    pub message: String,
    /// What to do about it, in one line.
    pub remedy: &'static str,
}

/// The fewest requests per second a tenant provisioned by Entra needs: Entra's provisioning
/// service sends bursts of concurrent writes and quarantines a job that keeps hitting `429`.
pub const ENTRA_MIN_RATE_PER_SECOND: u32 = 25;

fn finding(severity: Severity, code: &'static str, message: String, remedy: &'static str) -> Finding {
    Finding { severity, code, message, remedy }
}

impl ReadinessFacts {
    /// What to report, given the tenant's settings and the rate limit that applies to it
    /// (`default_rate`: the gateway's, when the tenant has none of its own).
    pub fn findings(&self, settings: &TenantSettings, default_rate: Option<u32>) -> Vec<Finding> {
        use Severity::{Info, Warning};
        let mut out = Vec::new();
        if self.live_tokens == 0 && !(settings.auth_methods.accepts_oauth() && self.live_oauth_clients > 0) {
            out.push(finding(
                Warning,
                "no_token",
                "no usable token: the IdP cannot connect".into(),
                "create one with `scimgate token create <tenant>` and paste it into the IdP as the Secret Token",
            ));
        }
        if self.tokens_expiring_soon > 0 {
            out.push(finding(
                Warning,
                "token_expiring",
                format!(
                    "{} token(s) expire within 7 days: an IdP whose token expires stops provisioning (Entra quarantines the job)",
                    self.tokens_expiring_soon
                ),
                "regenerate the token with a grace period and paste the new one into the IdP",
            ));
        }
        if self.unlinked_groups > 0 && !settings.autoprovision {
            out.push(finding(
                Warning,
                "unlinked_groups",
                format!(
                    "{} group(s) are provisioned but no mapping or organization matches them and autoprovisioning is off, so they give no membership: {}",
                    self.unlinked_groups,
                    self.unlinked_group_names.join(", ")
                ),
                "map them (`scimgate mapping add`), create organizations named like them, or turn autoprovisioning on",
            ));
        }
        if self.groups == 0 && self.mappings == 0 && !settings.autoprovision && self.organizations == 0 {
            out.push(finding(
                Warning,
                "no_group_rules",
                "no group mapping, no organization and autoprovisioning is off: no group can give anyone a membership"
                    .into(),
                "add a group mapping, create the organizations, or turn autoprovisioning on",
            ));
        }
        for mapping in &self.idle_mappings {
            let matcher = match &mapping.matcher {
                GroupMatcher::DisplayName(name) => format!("group named \"{name}\""),
                GroupMatcher::Id(id) => format!("group with id {id}"),
            };
            // Once groups arrive, a mapping by name that matches none of them most likely lost
            // its group to a rename.
            let renamed = self.groups > 0 && matches!(mapping.matcher, GroupMatcher::DisplayName(_));
            out.push(finding(
                if renamed { Warning } else { Info },
                "idle_mapping",
                format!(
                    "mapping {} ({matcher} → {} as {}) matches no provisioned group{}",
                    mapping.id,
                    mapping.organization,
                    mapping.role,
                    if renamed { ": was the group renamed?" } else { " yet" }
                ),
                "map the group by its id (`--group-id`) so renames keep it, or remove the mapping and add one with the new name",
            ));
        }
        if self.duplicate_emails > 0 {
            let refuse = settings.duplicate_emails == DuplicateEmails::Refuse;
            out.push(finding(
                if refuse { Warning } else { Info },
                "duplicate_emails",
                format!(
                    "{} email(s) are the email of more than one user, so they link no account{}: {}",
                    self.duplicate_emails,
                    if refuse { ", and further writes of those users are refused" } else { "" },
                    self.duplicate_email_samples.join(", ")
                ),
                "give each user its own work email in the IdP, or link those users by externalId",
            ));
        }
        let rate = self.tenant_rate_per_second.or(default_rate);
        if settings.idp_profile == IdpProfile::Entra && rate.is_some_and(|r| r < ENTRA_MIN_RATE_PER_SECOND) {
            out.push(finding(
                Warning,
                "rate_limit_too_low",
                format!(
                    "the rate limit is {}/s; Entra needs at least {ENTRA_MIN_RATE_PER_SECOND}/s or it backs off and quarantines the job",
                    rate.unwrap_or_default()
                ),
                "raise it with `scimgate tenant set <tenant> --rate-limit-per-second 25 --rate-limit-burst 100`",
            ));
        }
        if let Some((agent, seen)) =
            self.last_user_agent.as_ref().and_then(|a| Some((a, IdpProfile::from_user_agent(a)?)))
        {
            if seen != settings.idp_profile {
                out.push(finding(
                    Warning,
                    "idp_profile_mismatch",
                    format!(
                        "requests come from {seen} (User-Agent \"{agent}\") but the tenant's IdP profile is {}",
                        settings.idp_profile
                    ),
                    "set the profile the traffic shows: `scimgate tenant set <tenant> --idp-profile <profile>`",
                ));
            }
        }
        if self.users > 0 && self.groups == 0 {
            out.push(finding(
                Info,
                "no_groups",
                "users are provisioned but no group yet, so nobody has a membership".into(),
                "in Entra, assign groups to the application and provision them; in Okta, push groups",
            ));
        }
        if self.webhooks == 0 {
            out.push(finding(
                Info,
                "no_webhook",
                "no webhook endpoint: the product must poll the event feed".into(),
                "add one with `scimgate webhook add <tenant> <url>`, or poll `GET /admin/v1/tenants/<tenant>/events`",
            ));
        }
        if self.failing_webhooks > 0 {
            out.push(finding(
                Warning,
                "webhook_failing",
                format!("{} webhook endpoint(s) are failing and retrying", self.failing_webhooks),
                "check the endpoint's `last_error` in `scimgate webhook list <tenant>` and fix the receiver",
            ));
        }
        if self.dead_letters > 0 {
            out.push(finding(
                Warning,
                "dead_letters",
                format!("{} event(s) could not be delivered after every retry", self.dead_letters),
                "fix the receiver, then `scimgate webhook redeliver <tenant> <id>`",
            ));
        }
        out.extend(self.oauth_findings(settings));
        out
    }

    /// The Entra gallery accepts OAuth only: a tenant set up for it (OAuth only, or with a live
    /// OAuth client) that still has live static tokens keeps a credential it should not need.
    fn oauth_findings(&self, settings: &TenantSettings) -> Option<Finding> {
        let gallery = !settings.auth_methods.accepts_bearer() || self.live_oauth_clients > 0;
        if !gallery || self.live_tokens == 0 {
            return None;
        }
        let (message, remedy) = if settings.auth_methods.accepts_bearer() {
            (
                format!(
                    "the tenant has OAuth clients but still accepts its {} live static token(s)",
                    self.live_tokens
                ),
                "once the IdP uses OAuth, revoke the static tokens and `scimgate tenant set <tenant> --auth-methods oauth`",
            )
        } else {
            (
                format!(
                    "the tenant accepts OAuth only, yet {} static token(s) are still live (refused, but a credential to leak)",
                    self.live_tokens
                ),
                "revoke them with `scimgate token revoke <tenant> <token-id>`",
            )
        };
        Some(finding(Severity::Warning, "static_tokens_with_oauth", message, remedy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::{GroupMapping, OrganizationName};

    fn codes(facts: &ReadinessFacts, settings: &TenantSettings) -> Vec<&'static str> {
        facts.findings(settings, None).iter().map(|f| f.code).collect()
    }

    #[test]
    fn unlinked_groups_warn_only_without_autoprovisioning() {
        let facts = ReadinessFacts {
            users: 3,
            groups: 2,
            unlinked_groups: 1,
            unlinked_group_names: vec!["Designers".into()],
            live_tokens: 1,
            webhooks: 1,
            ..ReadinessFacts::default()
        };
        let off = TenantSettings::default();
        assert_eq!(codes(&facts, &off), ["unlinked_groups"]);
        assert!(facts.findings(&off, None)[0].message.contains("Designers"));
        let on = TenantSettings { autoprovision: true, ..TenantSettings::default() };
        assert!(codes(&facts, &on).is_empty());
    }

    #[test]
    fn a_gallery_tenant_with_static_tokens_is_warned() {
        use crate::AuthMethods;
        let facts = ReadinessFacts { live_tokens: 1, live_oauth_clients: 1, webhooks: 1, ..ReadinessFacts::default() };
        assert_eq!(codes(&facts, &TenantSettings::default()), ["no_group_rules", "static_tokens_with_oauth"]);
        let oauth_only = TenantSettings { auth_methods: AuthMethods::OAuth, ..TenantSettings::default() };
        let without_clients = ReadinessFacts { live_oauth_clients: 0, ..facts.clone() };
        assert!(codes(&without_clients, &oauth_only).contains(&"static_tokens_with_oauth"));
        let tokens_only = ReadinessFacts { live_tokens: 0, ..facts.clone() };
        assert!(!codes(&tokens_only, &oauth_only).contains(&"static_tokens_with_oauth"));
        assert!(!codes(&tokens_only, &oauth_only).contains(&"no_token"), "an OAuth client is a credential");
        let bearer_only = TenantSettings { auth_methods: AuthMethods::Bearer, ..TenantSettings::default() };
        assert!(codes(&ReadinessFacts { live_oauth_clients: 0, ..facts }, &bearer_only)
            .iter()
            .all(|c| *c != "static_tokens_with_oauth"));
    }

    #[test]
    fn a_fresh_tenant_hears_what_to_set_up() {
        let facts = ReadinessFacts::default();
        assert_eq!(codes(&facts, &TenantSettings::default()), ["no_token", "no_group_rules", "no_webhook"]);
        assert!(facts.findings(&TenantSettings::default(), None).iter().all(|f| !f.remedy.is_empty()));
        let idle = GroupMapping {
            id: "m1".into(),
            matcher: GroupMatcher::DisplayName("Engineering".into()),
            organization: OrganizationName::parse("acme-eng").unwrap(),
            role: Role::Member,
            created_at: 0,
        };
        let facts = ReadinessFacts {
            live_tokens: 1,
            webhooks: 1,
            mappings: 1,
            idle_mappings: vec![idle],
            ..ReadinessFacts::default()
        };
        let findings = facts.findings(&TenantSettings::default(), None);
        assert_eq!(findings.len(), 1);
        assert!(findings[0].message.contains("\"Engineering\" → acme-eng as member"), "{}", findings[0].message);
    }

    #[test]
    fn entra_needs_a_rate_limit_of_25_per_second() {
        let facts = ReadinessFacts { live_tokens: 1, webhooks: 1, mappings: 1, ..ReadinessFacts::default() };
        let entra = TenantSettings { idp_profile: IdpProfile::Entra, ..TenantSettings::default() };
        assert_eq!(codes_with(&facts, &entra, Some(10)), ["rate_limit_too_low"]);
        assert!(codes_with(&facts, &entra, Some(25)).is_empty());
        assert!(codes_with(&facts, &entra, None).is_empty(), "no limit at all is enough");
        assert!(codes_with(&facts, &TenantSettings::default(), Some(10)).is_empty());
        let own = ReadinessFacts { tenant_rate_per_second: Some(50), ..facts };
        assert!(codes_with(&own, &entra, Some(10)).is_empty(), "the tenant's own limit wins");
    }

    #[test]
    fn the_traffic_must_come_from_the_configured_idp() {
        let facts = ReadinessFacts {
            live_tokens: 1,
            webhooks: 1,
            mappings: 1,
            last_user_agent: Some("Okta SCIM Client 1.0.0".into()),
            ..ReadinessFacts::default()
        };
        let entra = TenantSettings { idp_profile: IdpProfile::Entra, ..TenantSettings::default() };
        let findings = facts.findings(&entra, None);
        assert_eq!(findings.len(), 1);
        assert_eq!((findings[0].code, findings[0].severity), ("idp_profile_mismatch", Severity::Warning));
        assert!(findings[0].message.contains("from okta"), "{}", findings[0].message);
        let okta = TenantSettings { idp_profile: IdpProfile::Okta, ..TenantSettings::default() };
        assert!(codes_with(&facts, &okta, None).is_empty());
        let unknown = ReadinessFacts { last_user_agent: Some("curl/8.0".into()), ..facts };
        assert!(codes_with(&unknown, &entra, None).is_empty(), "an agent naming no IdP says nothing");
    }

    #[test]
    fn duplicate_emails_block_only_under_the_refuse_policy() {
        let facts = ReadinessFacts {
            live_tokens: 1,
            webhooks: 1,
            mappings: 1,
            duplicate_emails: 1,
            duplicate_email_samples: vec!["bob@contoso.com".into()],
            ..ReadinessFacts::default()
        };
        let allow = facts.findings(&TenantSettings::default(), None);
        assert_eq!((allow[0].code, allow[0].severity), ("duplicate_emails", Severity::Info));
        let refuse = TenantSettings { duplicate_emails: DuplicateEmails::Refuse, ..TenantSettings::default() };
        let refused = facts.findings(&refuse, None);
        assert_eq!((refused[0].code, refused[0].severity), ("duplicate_emails", Severity::Warning));
        assert!(refused[0].message.contains("bob@contoso.com"));
    }

    fn codes_with(facts: &ReadinessFacts, settings: &TenantSettings, rate: Option<u32>) -> Vec<&'static str> {
        facts.findings(settings, rate).iter().map(|f| f.code).collect()
    }
}
