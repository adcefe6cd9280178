//! The membership rules, as functions over facts already loaded: which organizations a group
//! links to, which memberships a user's groups give, and what it takes (rows and events) to
//! bring the stored memberships in line. No storage here: `sql::reconcile` loads the facts and
//! applies the plan, so each rule is tested without a database.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use crate::event::{organization_subject, EventType};
use crate::org::{Deprovision, MembershipState, Role};

/// Memberships by `(organization id, user id)`.
pub(crate) type Memberships = BTreeMap<(String, String), (Role, MembershipState)>;

/// A user as reconciliation needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Person {
    pub user_name: String,
    pub account: Option<String>,
    pub active: bool,
}

/// A role in an organization that one of a user's groups links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    pub user: String,
    pub organization: String,
    pub role: Role,
}

/// The highest role per organization among `(organization, role)` pairs.
pub(crate) fn highest_roles(pairs: impl IntoIterator<Item = (String, Role)>) -> BTreeMap<String, Role> {
    let mut highest: BTreeMap<String, Role> = BTreeMap::new();
    for (organization, role) in pairs {
        let entry = highest.entry(organization).or_insert(role);
        *entry = (*entry).max(role);
    }
    highest
}

/// The links of a group: the organizations its mappings give (highest role per organization),
/// or, when no mapping matches it, the organization an unmapped group belongs to (if any) with
/// the tenant's default role.
pub(crate) fn group_links(
    mapped: BTreeMap<String, Role>,
    unmapped: Option<String>,
    default_role: Role,
) -> BTreeMap<String, Role> {
    if !mapped.is_empty() {
        return mapped;
    }
    unmapped.into_iter().map(|organization| (organization, default_role)).collect()
}

/// Whether a group's stored links must be rewritten.
pub(crate) fn links_differ(current: &BTreeMap<String, Role>, wanted: &BTreeMap<String, Role>) -> bool {
    current != wanted
}

/// The memberships `grants` give the users in `people`: the highest role per organization,
/// suspended while the user is inactive, or none at all when the tenant removes them on
/// deactivation. Grants of users not in `people` (deleted ones) give nothing.
pub(crate) fn wanted_memberships(
    people: &HashMap<String, Person>,
    grants: impl IntoIterator<Item = Grant>,
    deprovision: Deprovision,
) -> Memberships {
    let mut wanted = Memberships::new();
    for Grant { user, organization, role } in grants {
        let Some(Person { active, .. }) = people.get(&user) else { continue };
        let state = match (active, deprovision) {
            (true, _) => MembershipState::Active,
            (false, Deprovision::Suspend) => MembershipState::Suspended,
            (false, Deprovision::Remove) => continue,
        };
        let entry = wanted.entry((organization, user)).or_insert((role, state));
        entry.0 = entry.0.max(role);
    }
    wanted
}

/// One membership change, as its event reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Change<'a> {
    pub kind: EventType,
    pub organization: &'a str,
    pub user: &'a str,
    /// The role and state after the change (before it, for a removal).
    pub role: Role,
    pub state: MembershipState,
    /// Set for `membership.role_changed`.
    pub previous_role: Option<Role>,
}

/// What brings stored memberships in line with the wanted ones, grouped so that each kind of
/// change is one statement per organization (and per role and state).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan<'a> {
    /// Users whose membership goes, per organization.
    pub removed: BTreeMap<&'a str, Vec<&'a str>>,
    /// Users who get a membership, per organization, role and state.
    pub added: BTreeMap<(&'a str, Role, MembershipState), Vec<&'a str>>,
    /// Users whose membership gets this role and state, per organization.
    pub changed: BTreeMap<(&'a str, Role, MembershipState), Vec<&'a str>>,
    /// The events, in the order they are emitted: every removal, then per membership its
    /// addition, or its role change followed by its suspension or restoration.
    pub changes: Vec<Change<'a>>,
}

impl Plan<'_> {
    /// Nothing to write and nothing to say: the stored memberships are the wanted ones.
    pub(crate) fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The events of the plan, with the organizations' names (by id) and the users' details.
    pub(crate) fn events(
        &self,
        organizations: &HashMap<String, String>,
        people: &HashMap<String, Person>,
    ) -> Vec<(EventType, Value)> {
        self.changes
            .iter()
            .map(|change| {
                let name = organizations.get(change.organization).map_or("", String::as_str);
                (change.kind, change.payload(name, people.get(change.user)))
            })
            .collect()
    }
}

impl Change<'_> {
    /// The event's data; `person` is absent for a user deleted by this write.
    pub(crate) fn payload(&self, organization_name: &str, person: Option<&Person>) -> Value {
        let mut user = json!({ "id": self.user });
        if let Some(person) = person {
            user["userName"] = Value::String(person.user_name.clone());
            if let Some(account) = &person.account {
                user["productAccountId"] = Value::String(account.clone());
            }
        }
        let mut data = json!({
            "organization": organization_subject(self.organization, organization_name),
            "user": user,
            "role": self.role.as_str(),
            "state": self.state.as_str(),
        });
        if let Some(previous) = self.previous_role {
            data["previous_role"] = Value::String(previous.as_str().into());
        }
        data
    }
}

/// The difference between `stored` and `wanted` memberships. Empty when they are equal, so
/// replaying the same facts writes and emits nothing.
pub(crate) fn plan<'a>(stored: &'a Memberships, wanted: &'a Memberships) -> Plan<'a> {
    let mut plan = Plan::default();
    let change = |kind, (organization, user): &'a (String, String), role, state, previous_role| Change {
        kind,
        organization: organization.as_str(),
        user: user.as_str(),
        role,
        state,
        previous_role,
    };
    for (key, &(role, state)) in stored {
        if !wanted.contains_key(key) {
            plan.removed.entry(key.0.as_str()).or_default().push(key.1.as_str());
            plan.changes.push(change(EventType::MembershipRemoved, key, role, state, None));
        }
    }
    for (key, &(role, state)) in wanted {
        let (organization, user) = (key.0.as_str(), key.1.as_str());
        match stored.get(key) {
            None => {
                plan.added.entry((organization, role, state)).or_default().push(user);
                plan.changes.push(change(EventType::MembershipAdded, key, role, state, None));
            }
            Some(&(old_role, old_state)) => {
                if (old_role, old_state) != (role, state) {
                    plan.changed.entry((organization, role, state)).or_default().push(user);
                }
                if old_role != role {
                    plan.changes.push(change(EventType::MembershipRoleChanged, key, role, state, Some(old_role)));
                }
                if old_state != state {
                    let kind = match state {
                        MembershipState::Suspended => EventType::MembershipSuspended,
                        MembershipState::Active => EventType::MembershipRestored,
                    };
                    plan.changes.push(change(kind, key, role, state, None));
                }
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use MembershipState::{Active, Suspended};

    fn person(user_name: &str, active: bool) -> Person {
        Person { user_name: user_name.into(), account: None, active }
    }

    fn people(list: &[(&str, bool)]) -> HashMap<String, Person> {
        list.iter().map(|(id, active)| ((*id).to_owned(), person(id, *active))).collect()
    }

    fn grant(user: &str, organization: &str, role: Role) -> Grant {
        Grant { user: user.into(), organization: organization.into(), role }
    }

    fn memberships(list: &[(&str, &str, Role, MembershipState)]) -> Memberships {
        list.iter().map(|(o, u, r, s)| (((*o).to_owned(), (*u).to_owned()), (*r, *s))).collect()
    }

    fn kinds(plan: &Plan) -> Vec<&'static str> {
        plan.changes.iter().map(|c| c.kind.as_str()).collect()
    }

    #[test]
    fn the_highest_role_of_a_users_groups_wins() {
        let grants = [
            grant("ann", "acme", Role::Member),
            grant("ann", "acme", Role::Owner),
            grant("ann", "acme", Role::Admin),
            grant("ann", "beta", Role::Member),
            grant("bob", "acme", Role::Admin),
        ];
        let wanted = wanted_memberships(&people(&[("ann", true), ("bob", true)]), grants, Deprovision::Suspend);
        assert_eq!(
            wanted,
            memberships(&[
                ("acme", "ann", Role::Owner, Active),
                ("acme", "bob", Role::Admin, Active),
                ("beta", "ann", Role::Member, Active),
            ])
        );
    }

    #[test]
    fn an_inactive_user_keeps_suspended_memberships_under_suspend_and_none_under_remove() {
        let grants = || [grant("ann", "acme", Role::Member), grant("ann", "acme", Role::Admin)];
        let inactive = people(&[("ann", false)]);
        assert_eq!(
            wanted_memberships(&inactive, grants(), Deprovision::Suspend),
            memberships(&[("acme", "ann", Role::Admin, Suspended)])
        );
        assert_eq!(wanted_memberships(&inactive, grants(), Deprovision::Remove), Memberships::new());

        let stored = memberships(&[("acme", "ann", Role::Admin, Active)]);
        let suspended = wanted_memberships(&inactive, grants(), Deprovision::Suspend);
        let suspend = plan(&stored, &suspended);
        assert_eq!(kinds(&suspend), ["membership.suspended"]);
        assert_eq!(suspend.changed, BTreeMap::from([(("acme", Role::Admin, Suspended), vec!["ann"])]));
        let removed = wanted_memberships(&inactive, grants(), Deprovision::Remove);
        let remove = plan(&stored, &removed);
        assert_eq!(kinds(&remove), ["membership.removed"]);
        assert_eq!(remove.removed, BTreeMap::from([("acme", vec!["ann"])]));
        assert!(remove.added.is_empty() && remove.changed.is_empty());
    }

    #[test]
    fn reactivation_restores_suspended_memberships() {
        let stored = memberships(&[("acme", "ann", Role::Member, Suspended)]);
        let wanted =
            wanted_memberships(&people(&[("ann", true)]), [grant("ann", "acme", Role::Member)], Deprovision::Suspend);
        let plan = plan(&stored, &wanted);
        assert_eq!(kinds(&plan), ["membership.restored"]);
        assert_eq!(plan.changed, BTreeMap::from([(("acme", Role::Member, Active), vec!["ann"])]));
        let events = plan.events(&HashMap::from([("acme".into(), "acme-inc".into())]), &people(&[("ann", true)]));
        assert_eq!(
            events[0].1,
            json!({
                "organization": {"id": "acme", "name": "acme-inc"},
                "user": {"id": "ann", "userName": "ann"},
                "role": "member",
                "state": "active",
            })
        );
    }

    #[test]
    fn a_role_change_and_a_suspension_of_one_membership_give_both_events_in_order() {
        let stored = memberships(&[("acme", "ann", Role::Member, Active)]);
        let wanted = memberships(&[("acme", "ann", Role::Owner, Suspended)]);
        let plan = plan(&stored, &wanted);
        assert_eq!(kinds(&plan), ["membership.role_changed", "membership.suspended"]);
        assert_eq!(plan.changed, BTreeMap::from([(("acme", Role::Owner, Suspended), vec!["ann"])]));
        assert!(plan.added.is_empty() && plan.removed.is_empty());
        let mut people = people(&[("ann", false)]);
        if let Some(ann) = people.get_mut("ann") {
            ann.account = Some("acct-1".into());
        }
        let events = plan.events(&HashMap::from([("acme".into(), "acme".into())]), &people);
        let user = json!({"id": "ann", "userName": "ann", "productAccountId": "acct-1"});
        assert_eq!(
            events,
            [
                (
                    EventType::MembershipRoleChanged,
                    json!({
                        "organization": {"id": "acme", "name": "acme"},
                        "user": user,
                        "role": "owner",
                        "state": "suspended",
                        "previous_role": "member",
                    })
                ),
                (
                    EventType::MembershipSuspended,
                    json!({
                        "organization": {"id": "acme", "name": "acme"},
                        "user": user,
                        "role": "owner",
                        "state": "suspended",
                    })
                ),
            ]
        );
    }

    #[test]
    fn unchanged_facts_give_an_empty_plan_and_no_events() {
        let people = people(&[("ann", true), ("bob", false)]);
        let grants = || [grant("ann", "acme", Role::Admin), grant("bob", "acme", Role::Member)];
        let stored = wanted_memberships(&people, grants(), Deprovision::Suspend);
        let wanted = wanted_memberships(&people, grants(), Deprovision::Suspend);
        let plan = plan(&stored, &wanted);
        assert!(plan.is_empty());
        assert_eq!(plan, Plan::default());
        assert!(plan.events(&HashMap::new(), &people).is_empty());
    }

    #[test]
    fn a_deleted_users_memberships_go_and_removals_come_first() {
        let stored = memberships(&[("acme", "ann", Role::Admin, Active), ("beta", "ann", Role::Member, Suspended)]);
        // Ann was deleted: she is no longer among the people, her grants give nothing.
        let wanted = wanted_memberships(
            &people(&[("bob", true)]),
            [grant("ann", "acme", Role::Admin), grant("bob", "acme", Role::Member)],
            Deprovision::Suspend,
        );
        let plan = plan(&stored, &wanted);
        assert_eq!(kinds(&plan), ["membership.removed", "membership.removed", "membership.added"]);
        assert_eq!(plan.removed, BTreeMap::from([("acme", vec!["ann"]), ("beta", vec!["ann"])]));
        assert_eq!(plan.added, BTreeMap::from([(("acme", Role::Member, Active), vec!["bob"])]));
        // The removal reports the membership as it was; the deleted user by id alone.
        let events = plan.events(&HashMap::from([("beta".into(), "beta".into())]), &HashMap::new());
        assert_eq!(
            events[1].1,
            json!({
                "organization": {"id": "beta", "name": "beta"},
                "user": {"id": "ann"},
                "role": "member",
                "state": "suspended",
            })
        );
        assert_eq!(events[0].1["organization"], json!({"id": "acme", "name": ""}), "an unknown organization");
    }

    #[test]
    fn additions_are_grouped_per_organization_role_and_state() {
        let wanted = memberships(&[
            ("acme", "ann", Role::Member, Active),
            ("acme", "bob", Role::Member, Active),
            ("acme", "cid", Role::Admin, Active),
            ("beta", "ann", Role::Member, Suspended),
        ]);
        let stored = Memberships::new();
        let plan = plan(&stored, &wanted);
        assert_eq!(
            plan.added,
            BTreeMap::from([
                (("acme", Role::Member, Active), vec!["ann", "bob"]),
                (("acme", Role::Admin, Active), vec!["cid"]),
                (("beta", Role::Member, Suspended), vec!["ann"]),
            ])
        );
        assert_eq!(
            plan.changes.iter().map(|c| (c.organization, c.user)).collect::<Vec<_>>(),
            [("acme", "ann"), ("acme", "bob"), ("acme", "cid"), ("beta", "ann")]
        );
    }

    #[test]
    fn a_group_links_to_its_mapped_organizations_with_the_highest_role_each() {
        let mapped = highest_roles([
            ("acme".to_owned(), Role::Member),
            ("acme".to_owned(), Role::Admin),
            ("beta".to_owned(), Role::Member),
            ("acme".to_owned(), Role::Member),
        ]);
        let links = group_links(mapped, Some("own".into()), Role::Owner);
        assert_eq!(links, BTreeMap::from([("acme".into(), Role::Admin), ("beta".into(), Role::Member)]));
    }

    #[test]
    fn an_unmapped_group_links_to_its_own_organization_with_the_default_role_or_to_none() {
        assert_eq!(
            group_links(BTreeMap::new(), Some("own".into()), Role::Admin),
            BTreeMap::from([("own".into(), Role::Admin)])
        );
        assert_eq!(group_links(BTreeMap::new(), None, Role::Admin), BTreeMap::new());
    }

    #[test]
    fn links_are_rewritten_only_when_they_differ() {
        let current = BTreeMap::from([("acme".to_owned(), Role::Member)]);
        assert!(!links_differ(&current, &current.clone()));
        assert!(links_differ(&current, &BTreeMap::from([("acme".to_owned(), Role::Admin)])));
        assert!(links_differ(&current, &BTreeMap::new()));
    }
}
