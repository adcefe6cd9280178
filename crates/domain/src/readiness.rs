//! The readiness check: what will go wrong (or already does) with a tenant's provisioning, said
//! so an IT admin can fix it before switching provisioning on.

use crate::org::{GroupMatcher, ReadinessFacts};
use crate::TenantSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// Stable, for programs: `unlinked_groups`, `idle_mapping`, `no_token`, ...
    pub code: &'static str,
    pub message: String,
}

fn finding(severity: Severity, code: &'static str, message: String) -> Finding {
    Finding { severity, code, message }
}

impl ReadinessFacts {
    pub fn findings(&self, settings: &TenantSettings) -> Vec<Finding> {
        use Severity::{Info, Warning};
        let mut out = Vec::new();
        if self.live_tokens == 0 && !(settings.auth_methods.accepts_oauth() && self.live_oauth_clients > 0) {
            out.push(finding(
                Warning,
                "no_token",
                "no live token: the IdP cannot connect; create one with `scimgate token create`".into(),
            ));
        }
        if self.tokens_expiring_soon > 0 {
            out.push(finding(
                Warning,
                "token_expiring",
                format!(
                    "{} token(s) expire within 7 days: an IdP whose token expires stops provisioning (Entra quarantines the job); regenerate with a grace period",
                    self.tokens_expiring_soon
                ),
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
            ));
        }
        if self.groups == 0 && self.idle_mappings.is_empty() && !settings.autoprovision && self.organizations == 0 {
            out.push(finding(
                Info,
                "no_group_rules",
                "no group mapping, no organization and autoprovisioning is off: groups will give no membership".into(),
            ));
        }
        for mapping in &self.idle_mappings {
            let matcher = match &mapping.matcher {
                GroupMatcher::DisplayName(name) => format!("group named \"{name}\""),
                GroupMatcher::Id(id) => format!("group with id {id}"),
            };
            out.push(finding(
                Info,
                "idle_mapping",
                format!(
                    "mapping {} ({matcher} → {} as {}) matches no provisioned group yet",
                    mapping.id, mapping.organization, mapping.role
                ),
            ));
        }
        if self.users > 0 && self.groups == 0 {
            out.push(finding(
                Info,
                "no_groups",
                "users are provisioned but no group yet: in Entra, assign groups to the application and provision them; in Okta, push groups".into(),
            ));
        }
        if self.webhooks == 0 {
            out.push(finding(Info, "no_webhook", "no webhook endpoint: the product must poll the event feed".into()));
        }
        if self.failing_webhooks > 0 {
            out.push(finding(
                Warning,
                "webhook_failing",
                format!("{} webhook endpoint(s) are failing and retrying", self.failing_webhooks),
            ));
        }
        if self.dead_letters > 0 {
            out.push(finding(
                Warning,
                "dead_letters",
                format!(
                    "{} event(s) could not be delivered after every retry; see the webhook's dead letters",
                    self.dead_letters
                ),
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
        let message = if settings.auth_methods.accepts_bearer() {
            format!(
                "the tenant has OAuth clients but still accepts its {} live static token(s); once the IdP uses OAuth, revoke them and `scimgate tenant set --auth-methods oauth`",
                self.live_tokens
            )
        } else {
            format!(
                "the tenant accepts OAuth only, yet {} static token(s) are still live (refused, but a credential to leak); revoke them",
                self.live_tokens
            )
        };
        Some(finding(Severity::Warning, "static_tokens_with_oauth", message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::{GroupMapping, OrganizationName, Role};

    fn codes(facts: &ReadinessFacts, settings: &TenantSettings) -> Vec<&'static str> {
        facts.findings(settings).iter().map(|f| f.code).collect()
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
        assert!(facts.findings(&off)[0].message.contains("Designers"));
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
        let idle = GroupMapping {
            id: "m1".into(),
            matcher: GroupMatcher::DisplayName("Engineering".into()),
            organization: OrganizationName::parse("acme-eng").unwrap(),
            role: Role::Member,
            created_at: 0,
        };
        let facts =
            ReadinessFacts { live_tokens: 1, webhooks: 1, idle_mappings: vec![idle], ..ReadinessFacts::default() };
        let findings = facts.findings(&TenantSettings::default());
        assert_eq!(findings.len(), 1);
        assert!(findings[0].message.contains("\"Engineering\" → acme-eng as member"), "{}", findings[0].message);
    }
}
