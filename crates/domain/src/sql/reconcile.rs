//! Groups to organizations, and users' groups to memberships.
//!
//! A group *links* to organizations: those of the mappings that match it (by display name or
//! id); failing any, the organization autoprovisioned for it earlier, or the organization named
//! like it, or, with autoprovisioning on, a new organization named after it. Links are stored
//! (`group_links`) and recomputed whenever a group or a rule changes.
//!
//! A user's memberships are derived from the links of all the groups they are a direct member
//! of, the highest role winning, suspended while the user is inactive (or removed, as the tenant
//! says). Reconciliation compares that with the stored memberships of the users a write affected,
//! writes only the difference, set-based, and emits one event per change: replaying the same IdP
//! traffic changes nothing and emits nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{json, Value};
use sqlx::Row;

use super::filter::{Arg, Sql};
use super::members::id_list;
use super::write::TenantWrite;
use super::{bound, json_ids, text, SqlStore};
use crate::event::EventType;
use crate::org::{Deprovision, MembershipState, OrganizationName, Role};
use crate::time_util::now_micros;
use crate::DomainError;

/// Which users a reconciliation looks at.
pub(super) enum Users {
    These(Vec<String>),
    All,
}

impl Users {
    /// `AND <column> IN (...)` for these users, their ids bound into `sql`; nothing for all.
    fn condition(&self, dialect: super::Dialect, column: &str, sql: &mut Sql) -> String {
        match self {
            Users::These(ids) => format!(" AND {column} IN {}", id_list(dialect, sql, ids)),
            Users::All => String::new(),
        }
    }
}

/// A user as reconciliation needs it.
struct Person {
    user_name: String,
    account: Option<String>,
    active: bool,
}

/// The organization's part of a membership event.
fn organization_subject(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name})
}

impl SqlStore {
    /// Recompute the organizations group `group_id` (named `display_name`) links to; whether
    /// they changed.
    #[tracing::instrument(name = "reconcile.link_group", skip_all, fields(tenant = w.tenant.as_str(), group = %group_id))]
    pub(super) async fn link_group(
        &self,
        w: &mut TenantWrite,
        group_id: &str,
        display_name: &str,
    ) -> Result<bool, DomainError> {
        let tenant = w.tenant.as_str().to_owned();
        let default_role = w.settings.default_role;
        let mut wanted: BTreeMap<String, Role> = BTreeMap::new();
        let mapped = bound(
            "SELECT organization_id, role FROM group_mappings WHERE tenant_id = $1 \
             AND ((match_by = 'displayName' AND match_key = $2) OR (match_by = 'id' AND match_key = $3))",
            vec![text(&tenant), Arg::Text(display_name.to_lowercase()), text(group_id)],
        )
        .fetch_all(&mut *w.tx)
        .await?;
        for row in &mapped {
            let role: String = row.try_get("role")?;
            let role: Role = role.parse()?;
            let entry = wanted.entry(row.try_get("organization_id")?).or_insert(role);
            *entry = (*entry).max(role);
        }
        if wanted.is_empty() {
            if let Some(organization) = self.unmapped_group_organization(w, group_id, display_name).await? {
                wanted.insert(organization, default_role);
            }
        }
        let rows = bound(
            "SELECT organization_id, role FROM group_links WHERE tenant_id = $1 AND group_id = $2",
            vec![text(&tenant), text(group_id)],
        )
        .fetch_all(&mut *w.tx)
        .await?;
        let mut current = BTreeMap::new();
        for row in &rows {
            let role: String = row.try_get("role")?;
            current.insert(row.try_get::<String, _>("organization_id")?, role.parse::<Role>()?);
        }
        if current == wanted {
            return Ok(false);
        }
        self.restore_archived(w, group_id, display_name, wanted.keys()).await?;
        bound("DELETE FROM group_links WHERE tenant_id = $1 AND group_id = $2", vec![text(&tenant), text(group_id)])
            .execute(&mut *w.tx)
            .await?;
        for (organization, role) in &wanted {
            bound(
                "INSERT INTO group_links (tenant_id, group_id, organization_id, role) VALUES ($1, $2, $3, $4)",
                vec![text(&tenant), text(group_id), text(organization), text(role.as_str())],
            )
            .execute(&mut *w.tx)
            .await?;
        }
        Ok(true)
    }

    /// The organization a group that no mapping matches belongs to: the one autoprovisioned for
    /// it (whatever it is called now: its display name follows the group's), else the one named
    /// like it (an archived one comes back), else with autoprovisioning a new one.
    async fn unmapped_group_organization(
        &self,
        w: &mut TenantWrite,
        group_id: &str,
        display_name: &str,
    ) -> Result<Option<String>, DomainError> {
        let tenant = w.tenant.as_str().to_owned();
        let own = bound(
            "SELECT id, name, display_name FROM organizations WHERE tenant_id = $1 AND source_group_id = $2 \
             ORDER BY created_at LIMIT 1",
            vec![text(&tenant), text(group_id)],
        )
        .fetch_optional(&mut *w.tx)
        .await?;
        if let Some(row) = own {
            let id: String = row.try_get("id")?;
            let previous: Option<String> = row.try_get("display_name")?;
            if previous.as_deref() != Some(display_name) {
                bound(
                    "UPDATE organizations SET display_name = $3 WHERE tenant_id = $1 AND id = $2",
                    vec![text(&tenant), text(&id), text(display_name)],
                )
                .execute(&mut *w.tx)
                .await?;
                let name: String = row.try_get("name")?;
                let mut data = json!({
                    "organization": {"id": id, "name": name, "displayName": display_name},
                    "group": {"id": group_id, "displayName": display_name},
                });
                if let Some(previous) = previous {
                    data["previous_display_name"] = Value::String(previous);
                }
                w.emit(EventType::OrganizationRenamed, data);
            }
            return Ok(Some(id));
        }
        let name = OrganizationName::from_group_name(display_name);
        let named = bound(
            "SELECT id FROM organizations WHERE tenant_id = $1 AND name = $2",
            vec![text(&tenant), text(name.as_str())],
        )
        .fetch_optional(&mut *w.tx)
        .await?;
        if let Some(row) = named {
            return Ok(Some(row.try_get("id")?));
        }
        if !w.settings.autoprovision {
            return Ok(None);
        }
        let organization = self.insert_organization(w, &name, Some((group_id, display_name))).await?;
        Ok(Some(organization))
    }

    /// Bring back the archived organizations among those a group now gives
    /// (`organization.restored`); an autoprovisioned one follows this group from now on.
    async fn restore_archived<'a>(
        &self,
        w: &mut TenantWrite,
        group_id: &str,
        display_name: &str,
        organizations: impl Iterator<Item = &'a String>,
    ) -> Result<(), DomainError> {
        let ids: Vec<&String> = organizations.collect();
        if ids.is_empty() {
            return Ok(());
        }
        let tenant = w.tenant.as_str().to_owned();
        let mut args = Sql { args: vec![text(&tenant)] };
        let sql = format!(
            "SELECT id, name, CASE WHEN autoprovisioned THEN 1 ELSE 0 END AS autoprovisioned FROM organizations \
             WHERE tenant_id = $1 AND archived_at IS NOT NULL AND id IN {}",
            id_list(self.dialect, &mut args, &ids)
        );
        let archived = bound(&sql, args.args).fetch_all(&mut *w.tx).await?;
        for row in archived {
            let (id, name): (String, String) = (row.try_get("id")?, row.try_get("name")?);
            let autoprovisioned = row.try_get::<i64, _>("autoprovisioned")? != 0;
            let (sql, mut args) = ("UPDATE organizations SET archived_at = NULL", vec![text(&tenant), text(&id)]);
            let sql = if autoprovisioned {
                args.extend([text(group_id), text(display_name)]);
                format!("{sql}, source_group_id = $3, display_name = $4 WHERE tenant_id = $1 AND id = $2")
            } else {
                format!("{sql} WHERE tenant_id = $1 AND id = $2")
            };
            bound(&sql, args).execute(&mut *w.tx).await?;
            let mut organization = organization_subject(&id, &name);
            if autoprovisioned {
                organization["displayName"] = Value::String(display_name.to_owned());
            }
            w.emit(
                EventType::OrganizationRestored,
                json!({"organization": organization, "group": {"id": group_id, "displayName": display_name}}),
            );
        }
        Ok(())
    }

    /// After a group was deleted: archive the organizations autoprovisioned for it that no other
    /// group gives (their memberships are already gone), each with `organization.archived`.
    pub(super) async fn archive_group_organizations(
        &self,
        w: &mut TenantWrite,
        group_id: &str,
    ) -> Result<(), DomainError> {
        let tenant = w.tenant.as_str().to_owned();
        let orphans = bound(
            "SELECT o.id AS id, o.name AS name, o.display_name AS display_name FROM organizations o \
             WHERE o.tenant_id = $1 AND o.source_group_id = $2 AND o.archived_at IS NULL AND NOT EXISTS \
             (SELECT 1 FROM group_links l WHERE l.tenant_id = o.tenant_id AND l.organization_id = o.id)",
            vec![text(&tenant), text(group_id)],
        )
        .fetch_all(&mut *w.tx)
        .await?;
        let now = now_micros();
        for row in orphans {
            let (id, name): (String, String) = (row.try_get("id")?, row.try_get("name")?);
            bound(
                "UPDATE organizations SET archived_at = $3 WHERE tenant_id = $1 AND id = $2",
                vec![text(&tenant), text(&id), Arg::Int(now)],
            )
            .execute(&mut *w.tx)
            .await?;
            let mut organization = organization_subject(&id, &name);
            if let Some(display_name) = row.try_get::<Option<String>, _>("display_name")? {
                organization["displayName"] = Value::String(display_name);
            }
            w.emit(EventType::OrganizationArchived, json!({"organization": organization, "group": {"id": group_id}}));
        }
        Ok(())
    }

    /// Create an organization and say so; its id.
    pub(super) async fn insert_organization(
        &self,
        w: &mut TenantWrite,
        name: &OrganizationName,
        source_group: Option<(&str, &str)>,
    ) -> Result<String, DomainError> {
        let id = uuid::Uuid::now_v7().to_string();
        bound(
            "INSERT INTO organizations (tenant_id, id, name, autoprovisioned, source_group_id, created_at, display_name) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![
                text(w.tenant.as_str()),
                text(&id),
                text(name.as_str()),
                Arg::Bool(source_group.is_some()),
                source_group.map_or(Arg::NullText, |(group, _)| text(group)),
                Arg::Int(now_micros()),
                source_group.map_or(Arg::NullText, |(_, display_name)| text(display_name)),
            ],
        )
        .execute(&mut *w.tx)
        .await
        .map_err(|e| {
            if crate::error::is_unique_violation(&e) {
                DomainError::Conflict(format!("organization `{name}` already exists"))
            } else {
                e.into()
            }
        })?;
        let mut subject = organization_subject(&id, name.as_str());
        subject["autoprovisioned"] = Value::Bool(source_group.is_some());
        if let Some((_, display_name)) = source_group {
            subject["displayName"] = Value::String(display_name.to_owned());
        }
        let mut data = json!({ "organization": subject });
        if let Some((group, display_name)) = source_group {
            data["group"] = json!({ "id": group, "displayName": display_name });
        }
        w.emit(EventType::OrganizationCreated, data);
        Ok(id)
    }

    /// Whether a group gives any organization (if not, its members' memberships do not depend
    /// on it).
    pub(super) async fn group_is_linked(&self, w: &mut TenantWrite, group_id: &str) -> Result<bool, DomainError> {
        Ok(bound(
            "SELECT 1 AS one FROM group_links WHERE tenant_id = $1 AND group_id = $2 LIMIT 1",
            vec![text(w.tenant.as_str()), text(group_id)],
        )
        .fetch_optional(&mut *w.tx)
        .await?
        .is_some())
    }

    /// The users directly in these groups.
    pub(super) async fn user_members(
        &self,
        w: &mut TenantWrite,
        groups: &[String],
    ) -> Result<BTreeSet<String>, DomainError> {
        if groups.is_empty() {
            return Ok(BTreeSet::new());
        }
        let mut args = Sql { args: vec![text(w.tenant.as_str())] };
        let sql = format!(
            "SELECT DISTINCT member_id FROM group_members WHERE tenant_id = $1 AND member_type = 'User' AND group_id IN {}",
            id_list(self.dialect, &mut args, groups)
        );
        let rows = bound(&sql, args.args).fetch_all(&mut *w.tx).await?;
        rows.iter().map(|r| Ok(r.try_get("member_id")?)).collect()
    }

    /// Relink every group; the ids of those whose links changed.
    async fn relink_all(&self, w: &mut TenantWrite) -> Result<Vec<String>, DomainError> {
        let groups = bound(
            "SELECT id, display_name FROM groups WHERE tenant_id = $1 ORDER BY id",
            vec![text(w.tenant.as_str())],
        )
        .fetch_all(&mut *w.tx)
        .await?;
        let mut changed = Vec::new();
        for row in &groups {
            let (id, name): (String, String) = (row.try_get("id")?, row.try_get("display_name")?);
            if self.link_group(w, &id, &name).await? {
                changed.push(id);
            }
        }
        Ok(changed)
    }

    /// After a rule changed: relink every group and reconcile the users of the groups whose
    /// links changed.
    pub(super) async fn relink_and_reconcile_changed(&self, w: &mut TenantWrite) -> Result<(), DomainError> {
        let changed = self.relink_all(w).await?;
        let users = self.user_members(w, &changed).await?;
        self.reconcile(w, Users::These(users.into_iter().collect())).await
    }

    /// After a setting changed (autoprovisioning, default role, deprovisioning): everything.
    pub(super) async fn relink_and_reconcile_all(&self, w: &mut TenantWrite) -> Result<(), DomainError> {
        self.relink_all(w).await?;
        self.reconcile(w, Users::All).await
    }

    /// Bring the stored memberships of `users` in line with their groups, emitting an event per
    /// change.
    #[tracing::instrument(name = "reconcile", skip_all, fields(tenant = w.tenant.as_str()))]
    pub(super) async fn reconcile(&self, w: &mut TenantWrite, users: Users) -> Result<(), DomainError> {
        if matches!(&users, Users::These(ids) if ids.is_empty()) {
            return Ok(());
        }
        let tenant = w.tenant.as_str().to_owned();
        let d = self.dialect;
        let n = match &users {
            Users::These(ids) => ids.len(),
            Users::All => usize::MAX,
        };
        self.prefer_hash_joins(&mut w.tx, n).await?;

        // Who the users are now (a deleted user is simply absent).
        let mut args = Sql { args: vec![text(&tenant)] };
        let sql = format!(
            "SELECT id, user_name, account_id, CASE WHEN active THEN 1 ELSE 0 END AS active FROM users WHERE tenant_id = $1{}",
            users.condition(d, "id", &mut args)
        );
        let mut people: HashMap<String, Person> = HashMap::new();
        for row in bound(&sql, args.args).fetch_all(&mut *w.tx).await? {
            let active: i64 = row.try_get("active")?;
            let person = Person {
                user_name: row.try_get("user_name")?,
                account: row.try_get("account_id")?,
                active: active != 0,
            };
            people.insert(row.try_get("id")?, person);
        }

        // What their groups give: the highest role per organization.
        let mut args = Sql { args: vec![text(&tenant)] };
        let sql = format!(
            "SELECT gm.member_id AS user_id, gl.organization_id AS organization_id, gl.role AS role \
             FROM group_members gm JOIN group_links gl ON gl.tenant_id = gm.tenant_id AND gl.group_id = gm.group_id \
             WHERE gm.tenant_id = $1 AND gm.member_type = 'User'{}",
            users.condition(d, "gm.member_id", &mut args)
        );
        let mut wanted: BTreeMap<(String, String), (Role, MembershipState)> = BTreeMap::new();
        for row in bound(&sql, args.args).fetch_all(&mut *w.tx).await? {
            let user: String = row.try_get("user_id")?;
            let Some(Person { active, .. }) = people.get(&user) else { continue };
            let state = match (active, w.settings.deprovision) {
                (true, _) => MembershipState::Active,
                (false, Deprovision::Suspend) => MembershipState::Suspended,
                (false, Deprovision::Remove) => continue,
            };
            let role: String = row.try_get("role")?;
            let role: Role = role.parse()?;
            let entry = wanted.entry((row.try_get("organization_id")?, user)).or_insert((role, state));
            entry.0 = entry.0.max(role);
        }

        // What is stored.
        let mut args = Sql { args: vec![text(&tenant)] };
        let sql = format!(
            "SELECT organization_id, user_id, role, state FROM memberships WHERE tenant_id = $1{}",
            users.condition(d, "user_id", &mut args)
        );
        let mut stored: BTreeMap<(String, String), (Role, MembershipState)> = BTreeMap::new();
        for row in bound(&sql, args.args).fetch_all(&mut *w.tx).await? {
            let role: String = row.try_get("role")?;
            let state: String = row.try_get("state")?;
            let state = if state == "suspended" { MembershipState::Suspended } else { MembershipState::Active };
            stored.insert((row.try_get("organization_id")?, row.try_get("user_id")?), (role.parse()?, state));
        }
        if wanted == stored {
            return Ok(());
        }

        let organizations: HashMap<String, String> =
            bound("SELECT id, name FROM organizations WHERE tenant_id = $1", vec![text(&tenant)])
                .fetch_all(&mut *w.tx)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("name")?)))
                .collect::<Result<_, DomainError>>()?;
        let subject = |organization: &str, user: &str, role: Role, state: MembershipState| {
            let mut user_subject = json!({ "id": user });
            if let Some(person) = people.get(user) {
                user_subject["userName"] = Value::String(person.user_name.clone());
                if let Some(account) = &person.account {
                    user_subject["productAccountId"] = Value::String(account.clone());
                }
            }
            json!({
                "organization": organization_subject(organization, organizations.get(organization).map_or("", String::as_str)),
                "user": user_subject,
                "role": role.as_str(),
                "state": state.as_str(),
            })
        };

        // The difference, grouped so each kind of change is one statement per organization.
        let mut removed: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut added: BTreeMap<(&str, Role, MembershipState), Vec<&str>> = BTreeMap::new();
        let mut changed: BTreeMap<(&str, Role, MembershipState), Vec<&str>> = BTreeMap::new();
        let mut events = Vec::new();
        for ((organization, user), (role, state)) in &stored {
            if !wanted.contains_key(&(organization.clone(), user.clone())) {
                removed.entry(organization).or_default().push(user);
                events.push((EventType::MembershipRemoved, subject(organization, user, *role, *state)));
            }
        }
        for ((organization, user), (role, state)) in &wanted {
            match stored.get(&(organization.clone(), user.clone())) {
                None => {
                    added.entry((organization, *role, *state)).or_default().push(user);
                    events.push((EventType::MembershipAdded, subject(organization, user, *role, *state)));
                }
                Some((old_role, old_state)) => {
                    if (old_role, old_state) != (role, state) {
                        changed.entry((organization, *role, *state)).or_default().push(user);
                    }
                    if old_role != role {
                        let mut data = subject(organization, user, *role, *state);
                        data["previous_role"] = Value::String(old_role.as_str().into());
                        events.push((EventType::MembershipRoleChanged, data));
                    }
                    if old_state != state {
                        let kind = match state {
                            MembershipState::Suspended => EventType::MembershipSuspended,
                            MembershipState::Active => EventType::MembershipRestored,
                        };
                        events.push((kind, subject(organization, user, *role, *state)));
                    }
                }
            }
        }

        let now = now_micros();
        let ids = d.json_array_param(3);
        for (organization, users) in &removed {
            let mut args = Sql { args: vec![text(&tenant), text(organization)] };
            let list = id_list(d, &mut args, users);
            let sql =
                format!("DELETE FROM memberships WHERE tenant_id = $1 AND organization_id = $2 AND user_id IN {list}");
            bound(&sql, args.args).execute(&mut *w.tx).await?;
        }
        for ((organization, role, state), users) in &added {
            let sql = format!(
                "INSERT INTO memberships (tenant_id, organization_id, user_id, role, state, created_at, updated_at) \
                 SELECT $1, $2, j.value, $4, $5, $6, $6 FROM {ids} AS j"
            );
            let args = vec![
                text(&tenant),
                text(organization),
                json_ids(users),
                text(role.as_str()),
                text(state.as_str()),
                Arg::Int(now),
            ];
            bound(&sql, args).execute(&mut *w.tx).await?;
        }
        for ((organization, role, state), users) in &changed {
            let mut args = Sql {
                args: vec![text(&tenant), text(organization), text(role.as_str()), text(state.as_str()), Arg::Int(now)],
            };
            let list = id_list(d, &mut args, users);
            let sql = format!(
                "UPDATE memberships SET role = $3, state = $4, updated_at = $5 \
                 WHERE tenant_id = $1 AND organization_id = $2 AND user_id IN {list}"
            );
            bound(&sql, args.args).execute(&mut *w.tx).await?;
        }
        for (kind, data) in events {
            w.emit(kind, data);
        }
        Ok(())
    }
}
