//! What changed, as the vendor's product learns it: events appended in the transaction of the
//! write that caused them, numbered per tenant, delivered by webhook and readable as a feed.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde_json::{json, Value};

use crate::DomainError;

/// Every kind of event, with its name on the wire (`membership.added`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    UserCreated,
    UserUpdated,
    UserDeactivated,
    UserReactivated,
    UserDeleted,
    UserLinked,
    UserUnlinked,
    GroupCreated,
    GroupUpdated,
    GroupDeleted,
    GroupMemberAdded,
    GroupMemberRemoved,
    OrganizationCreated,
    OrganizationRenamed,
    OrganizationArchived,
    OrganizationRestored,
    OrganizationDeleted,
    MembershipAdded,
    MembershipRemoved,
    MembershipRoleChanged,
    MembershipSuspended,
    MembershipRestored,
}

impl EventType {
    pub const ALL: [EventType; 22] = [
        EventType::UserCreated,
        EventType::UserUpdated,
        EventType::UserDeactivated,
        EventType::UserReactivated,
        EventType::UserDeleted,
        EventType::UserLinked,
        EventType::UserUnlinked,
        EventType::GroupCreated,
        EventType::GroupUpdated,
        EventType::GroupDeleted,
        EventType::GroupMemberAdded,
        EventType::GroupMemberRemoved,
        EventType::OrganizationCreated,
        EventType::OrganizationRenamed,
        EventType::OrganizationArchived,
        EventType::OrganizationRestored,
        EventType::OrganizationDeleted,
        EventType::MembershipAdded,
        EventType::MembershipRemoved,
        EventType::MembershipRoleChanged,
        EventType::MembershipSuspended,
        EventType::MembershipRestored,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UserCreated => "user.created",
            EventType::UserUpdated => "user.updated",
            EventType::UserDeactivated => "user.deactivated",
            EventType::UserReactivated => "user.reactivated",
            EventType::UserDeleted => "user.deleted",
            EventType::UserLinked => "user.linked",
            EventType::UserUnlinked => "user.unlinked",
            EventType::GroupCreated => "group.created",
            EventType::GroupUpdated => "group.updated",
            EventType::GroupDeleted => "group.deleted",
            EventType::GroupMemberAdded => "group.member_added",
            EventType::GroupMemberRemoved => "group.member_removed",
            EventType::OrganizationCreated => "organization.created",
            EventType::OrganizationRenamed => "organization.renamed",
            EventType::OrganizationArchived => "organization.archived",
            EventType::OrganizationRestored => "organization.restored",
            EventType::OrganizationDeleted => "organization.deleted",
            EventType::MembershipAdded => "membership.added",
            EventType::MembershipRemoved => "membership.removed",
            EventType::MembershipRoleChanged => "membership.role_changed",
            EventType::MembershipSuspended => "membership.suspended",
            EventType::MembershipRestored => "membership.restored",
        }
    }
}

impl FromStr for EventType {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| DomainError::internal(format!("unknown event type `{s}`")))
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One stored event. `seq` increases by one per event within a tenant, in commit order, so a
/// reader that remembers the last `seq` it saw misses nothing and sees nothing twice.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub seq: i64,
    pub event_type: EventType,
    pub occurred_at: i64,
    /// The subject: `user`, `group`, `organization`, and for memberships `role`, `state`,
    /// `previous_role`.
    pub data: Value,
}

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewEvent {
    pub event_type: EventType,
    pub data: Value,
}

/// The event subject of a user: what a product needs to find or mirror its own record.
pub(crate) fn user_subject(id: &str, data: &Value, account: Option<&str>) -> Value {
    let mut subject = json!({ "id": id });
    for key in ["userName", "externalId", "displayName", "active"] {
        if let Some(value) = data.get(key) {
            subject[key] = value.clone();
        }
    }
    if subject.get("active").is_none() {
        subject["active"] = Value::Bool(true);
    }
    if let Some(email) = crate::link::linking_email(data) {
        subject["email"] = Value::String(email);
    }
    if let Some(account) = account {
        subject["productAccountId"] = Value::String(account.to_owned());
    }
    subject
}

/// The event subject of a group.
pub(crate) fn group_subject(id: &str, data: &Value) -> Value {
    let mut subject = json!({ "id": id });
    for key in ["displayName", "externalId"] {
        if let Some(value) = data.get(key) {
            subject[key] = value.clone();
        }
    }
    subject
}

/// The organization's part of an organization or membership event.
pub(crate) fn organization_subject(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name})
}

/// The top-level attributes whose values differ, in a stable order.
pub(crate) fn changed_attributes(before: &Value, after: &Value) -> Vec<String> {
    let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<BTreeSet<String>>()).unwrap_or_default();
    keys(before).union(&keys(after)).filter(|k| before.get(k.as_str()) != after.get(k.as_str())).cloned().collect()
}

/// Whether a user's data says it is active (absent `active` means active).
pub(crate) fn is_active(data: &Value) -> bool {
    data.get("active").and_then(Value::as_bool).unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_subject_carries_what_a_product_mirrors() {
        let data = json!({
            "userName": "ann@example.com",
            "externalId": "e-1",
            "name": {"givenName": "Ann"},
            "emails": [{"value": "Ann@Example.com", "primary": true}],
        });
        assert_eq!(
            user_subject("u1", &data, Some("acct-1")),
            json!({
                "id": "u1",
                "userName": "ann@example.com",
                "externalId": "e-1",
                "active": true,
                "email": "ann@example.com",
                "productAccountId": "acct-1",
            })
        );
        assert_eq!(user_subject("u2", &json!({"active": false}), None), json!({"id": "u2", "active": false}));
    }

    #[test]
    fn a_group_subject_has_its_names_and_no_members() {
        let data = json!({"displayName": "Design", "members": [{"value": "u1"}]});
        assert_eq!(group_subject("g1", &data), json!({"id": "g1", "displayName": "Design"}));
    }

    #[test]
    fn changed_attributes_are_the_top_level_keys_that_differ_in_order() {
        let before = json!({"userName": "ann", "displayName": "Ann", "title": "x"});
        let after = json!({"userName": "ann", "displayName": "Ann A.", "active": false});
        assert_eq!(changed_attributes(&before, &after), ["active", "displayName", "title"]);
        assert!(is_active(&before) && !is_active(&after));
    }
}
