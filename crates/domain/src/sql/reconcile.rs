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
//!
//! The rules themselves are in [`crate::membership`]; this module loads their facts and applies
//! what they decide.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{json, Value};
use sqlx::FromRow;

use super::statement::{Bind, Statement};
use super::write::TenantWrite;
use super::SqlStore;
use crate::error::conflict_if_unique;
use crate::event::{organization_subject, EventType};
use crate::membership::{self, Grant, Memberships, Person};
use crate::org::{MembershipState, OrganizationName, Role};
use crate::time_util::now_micros;
use crate::DomainError;

/// Which users a reconciliation looks at.
pub(super) enum Users {
    These(Vec<String>),
    All,
}

impl Users {
    /// Append `AND <column> IN (...)` for these users; nothing for all.
    fn condition(&self, statement: Statement, column: &str) -> Statement {
        match self {
            Users::These(ids) => statement.sql(&format!(" AND {column} IN ")).id_list(ids),
            Users::All => statement,
        }
    }
}

/// An organization and the role a mapping or a link gives in it.
#[derive(Debug, FromRow)]
struct RoleRow {
    organization_id: String,
    role: String,
}

/// The organization autoprovisioned for a group.
#[derive(Debug, FromRow)]
struct OwnOrganizationRow {
    id: String,
    name: String,
    display_name: Option<String>,
}

/// An archived organization a group gives again.
#[derive(Debug, FromRow)]
struct ArchivedRow {
    id: String,
    name: String,
    autoprovisioned: i64,
}

#[derive(Debug, FromRow)]
struct PersonRow {
    id: String,
    user_name: String,
    account_id: Option<String>,
    active: i64,
}

/// A role in an organization one of a user's groups links to.
#[derive(Debug, FromRow)]
struct GrantRow {
    user_id: String,
    organization_id: String,
    role: String,
}

/// A stored membership.
#[derive(Debug, FromRow)]
struct MembershipRow {
    organization_id: String,
    user_id: String,
    role: String,
    state: String,
}

/// `(organization, role)` pairs, roles parsed.
fn roles(rows: Vec<RoleRow>) -> Result<Vec<(String, Role)>, DomainError> {
    rows.into_iter().map(|row| Ok((row.organization_id, row.role.parse()?))).collect()
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
        let mapped: Vec<RoleRow> = Statement::new(self.dialect)
            .sql("SELECT organization_id, role FROM group_mappings WHERE tenant_id = ")
            .bind(tenant.as_str())
            .sql(" AND ((match_by = 'displayName' AND match_key = ")
            .bind(display_name.to_lowercase())
            .sql(") OR (match_by = 'id' AND match_key = ")
            .bind(group_id)
            .sql("))")
            .query_as()
            .fetch_all(&mut *w.tx)
            .await?;
        let mapped = membership::highest_roles(roles(mapped)?);
        let unmapped =
            if mapped.is_empty() { self.unmapped_group_organization(w, group_id, display_name).await? } else { None };
        let wanted = membership::group_links(mapped, unmapped, w.settings.default_role);
        let current: Vec<RoleRow> = Statement::new(self.dialect)
            .sql("SELECT organization_id, role FROM group_links WHERE tenant_id = ")
            .bind(tenant.as_str())
            .sql(" AND group_id = ")
            .bind(group_id)
            .query_as()
            .fetch_all(&mut *w.tx)
            .await?;
        let current: BTreeMap<String, Role> = roles(current)?.into_iter().collect();
        if !membership::links_differ(&current, &wanted) {
            return Ok(false);
        }
        self.restore_archived(w, group_id, display_name, wanted.keys()).await?;
        Statement::new(self.dialect)
            .sql("DELETE FROM group_links WHERE tenant_id = ")
            .bind(tenant.as_str())
            .sql(" AND group_id = ")
            .bind(group_id)
            .query()
            .execute(&mut *w.tx)
            .await?;
        for (organization, role) in &wanted {
            Statement::new(self.dialect)
                .sql("INSERT INTO group_links (tenant_id, group_id, organization_id, role) VALUES ")
                .row([
                    tenant.as_str().into_arg(),
                    group_id.into_arg(),
                    organization.as_str().into_arg(),
                    role.as_str().into_arg(),
                ])
                .query()
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
        let own: Option<OwnOrganizationRow> = Statement::new(self.dialect)
            .sql("SELECT id, name, display_name FROM organizations WHERE tenant_id = ")
            .bind(tenant.as_str())
            .sql(" AND source_group_id = ")
            .bind(group_id)
            .sql(" ORDER BY created_at LIMIT 1")
            .query_as()
            .fetch_optional(&mut *w.tx)
            .await?;
        if let Some(OwnOrganizationRow { id, name, display_name: previous }) = own {
            if previous.as_deref() != Some(display_name) {
                Statement::new(self.dialect)
                    .sql("UPDATE organizations SET display_name = ")
                    .bind(display_name)
                    .sql(" WHERE tenant_id = ")
                    .bind(tenant.as_str())
                    .sql(" AND id = ")
                    .bind(id.as_str())
                    .query()
                    .execute(&mut *w.tx)
                    .await?;
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
        let named: Option<(String,)> = Statement::new(self.dialect)
            .sql("SELECT id FROM organizations WHERE tenant_id = ")
            .bind(tenant.as_str())
            .sql(" AND name = ")
            .bind(name.as_str())
            .query_as()
            .fetch_optional(&mut *w.tx)
            .await?;
        if let Some((id,)) = named {
            return Ok(Some(id));
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
        let archived: Vec<ArchivedRow> = Statement::new(self.dialect)
            .sql(
                "SELECT id, name, CASE WHEN autoprovisioned THEN 1 ELSE 0 END AS autoprovisioned FROM organizations \
                 WHERE tenant_id = ",
            )
            .bind(tenant.as_str())
            .sql(" AND archived_at IS NOT NULL AND id IN ")
            .id_list(&ids)
            .query_as()
            .fetch_all(&mut *w.tx)
            .await?;
        for ArchivedRow { id, name, autoprovisioned } in archived {
            let autoprovisioned = autoprovisioned != 0;
            let mut update = Statement::new(self.dialect).sql("UPDATE organizations SET archived_at = NULL");
            if autoprovisioned {
                update = update.sql(", source_group_id = ").bind(group_id).sql(", display_name = ").bind(display_name);
            }
            update
                .sql(" WHERE tenant_id = ")
                .bind(tenant.as_str())
                .sql(" AND id = ")
                .bind(id.as_str())
                .query()
                .execute(&mut *w.tx)
                .await?;
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
        let orphans: Vec<OwnOrganizationRow> = Statement::new(self.dialect)
            .sql(
                "SELECT o.id AS id, o.name AS name, o.display_name AS display_name FROM organizations o \
                 WHERE o.tenant_id = ",
            )
            .bind(tenant.as_str())
            .sql(" AND o.source_group_id = ")
            .bind(group_id)
            .sql(
                " AND o.archived_at IS NULL AND NOT EXISTS \
                 (SELECT 1 FROM group_links l WHERE l.tenant_id = o.tenant_id AND l.organization_id = o.id)",
            )
            .query_as()
            .fetch_all(&mut *w.tx)
            .await?;
        let now = now_micros();
        for OwnOrganizationRow { id, name, display_name } in orphans {
            Statement::new(self.dialect)
                .sql("UPDATE organizations SET archived_at = ")
                .bind(now)
                .sql(" WHERE tenant_id = ")
                .bind(tenant.as_str())
                .sql(" AND id = ")
                .bind(id.as_str())
                .query()
                .execute(&mut *w.tx)
                .await?;
            let mut organization = organization_subject(&id, &name);
            if let Some(display_name) = display_name {
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
        Statement::new(self.dialect)
            .sql(
                "INSERT INTO organizations (tenant_id, id, name, autoprovisioned, source_group_id, created_at, display_name) \
                 VALUES ",
            )
            .row([
                w.tenant.as_str().into_arg(),
                id.as_str().into_arg(),
                name.as_str().into_arg(),
                source_group.is_some().into_arg(),
                source_group.map(|(group, _)| group).into_arg(),
                now_micros().into_arg(),
                source_group.map(|(_, display_name)| display_name).into_arg(),
            ])
            .query()
            .execute(&mut *w.tx)
            .await
            .map_err(conflict_if_unique(|| format!("organization `{name}` already exists")))?;
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

    /// The users directly in these groups.
    pub(super) async fn user_members(
        &self,
        w: &mut TenantWrite,
        groups: &[String],
    ) -> Result<BTreeSet<String>, DomainError> {
        if groups.is_empty() {
            return Ok(BTreeSet::new());
        }
        let rows: Vec<(String,)> = Statement::new(self.dialect)
            .sql("SELECT DISTINCT member_id FROM group_members WHERE tenant_id = ")
            .bind(w.tenant.as_str())
            .sql(" AND member_type = 'User' AND group_id IN ")
            .id_list(groups)
            .query_as()
            .fetch_all(&mut *w.tx)
            .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Relink every group; the ids of those whose links changed.
    async fn relink_all(&self, w: &mut TenantWrite) -> Result<Vec<String>, DomainError> {
        let groups: Vec<(String, String)> = Statement::new(self.dialect)
            .sql("SELECT id, display_name FROM groups WHERE tenant_id = ")
            .bind(w.tenant.as_str())
            .sql(" ORDER BY id")
            .query_as()
            .fetch_all(&mut *w.tx)
            .await?;
        let mut changed = Vec::new();
        for (id, name) in groups {
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

        // Who the users are now (a deleted user is simply absent). A write that holds rows, not
        // the tenant, locks them here, in id order, before reading what their groups give: of two
        // writes changing one user's groups, the second reads after the first committed.
        let lock = if w.locks_rows() { " ORDER BY id FOR NO KEY UPDATE" } else { "" };
        let rows: Vec<PersonRow> = users
            .condition(
                Statement::new(d)
                    .sql(
                        "SELECT id, user_name, account_id, CASE WHEN active THEN 1 ELSE 0 END AS active FROM users \
                         WHERE tenant_id = ",
                    )
                    .bind(tenant.as_str()),
                "id",
            )
            .sql(lock)
            .query_as()
            .fetch_all(&mut *w.tx)
            .await?;
        let people: HashMap<String, Person> = rows
            .into_iter()
            .map(|row| (row.id, Person { user_name: row.user_name, account: row.account_id, active: row.active != 0 }))
            .collect();

        // What their groups give.
        let rows: Vec<GrantRow> = users
            .condition(
                Statement::new(d)
                    .sql(
                        "SELECT gm.member_id AS user_id, gl.organization_id AS organization_id, gl.role AS role \
                         FROM group_members gm JOIN group_links gl ON gl.tenant_id = gm.tenant_id AND gl.group_id = gm.group_id \
                         WHERE gm.tenant_id = ",
                    )
                    .bind(tenant.as_str())
                    .sql(" AND gm.member_type = 'User'"),
                "gm.member_id",
            )
            .query_as()
            .fetch_all(&mut *w.tx)
            .await?;
        let grants = rows
            .into_iter()
            .map(|row| Ok(Grant { role: row.role.parse()?, user: row.user_id, organization: row.organization_id }))
            .collect::<Result<Vec<Grant>, DomainError>>()?;
        let wanted = membership::wanted_memberships(&people, grants, w.settings.deprovision);

        // What is stored.
        let rows: Vec<MembershipRow> = users
            .condition(
                Statement::new(d)
                    .sql("SELECT organization_id, user_id, role, state FROM memberships WHERE tenant_id = ")
                    .bind(tenant.as_str()),
                "user_id",
            )
            .query_as()
            .fetch_all(&mut *w.tx)
            .await?;
        let mut stored = Memberships::new();
        for row in rows {
            let state = if row.state == "suspended" { MembershipState::Suspended } else { MembershipState::Active };
            stored.insert((row.organization_id, row.user_id), (row.role.parse()?, state));
        }

        let plan = membership::plan(&stored, &wanted);
        if plan.is_empty() {
            return Ok(());
        }
        let organizations: HashMap<String, String> = Statement::new(d)
            .sql("SELECT id, name FROM organizations WHERE tenant_id = ")
            .bind(tenant.as_str())
            .query_as::<(String, String)>()
            .fetch_all(&mut *w.tx)
            .await?
            .into_iter()
            .collect();

        let now = now_micros();
        for (organization, users) in &plan.removed {
            Statement::new(d)
                .sql("DELETE FROM memberships WHERE tenant_id = ")
                .bind(tenant.as_str())
                .sql(" AND organization_id = ")
                .bind(*organization)
                .sql(" AND user_id IN ")
                .id_list(users)
                .query()
                .execute(&mut *w.tx)
                .await?;
        }
        for ((organization, role, state), users) in &plan.added {
            Statement::new(d)
                .sql("INSERT INTO memberships (tenant_id, organization_id, user_id, role, state, created_at, updated_at) SELECT ")
                .bind(tenant.as_str())
                .sql(", ")
                .bind(*organization)
                .sql(", j.value, ")
                .bind(role.as_str())
                .sql(", ")
                .bind(state.as_str())
                .sql(", ")
                .bind(now)
                .sql(", ")
                .bind(now)
                .sql(" FROM ")
                .json_id_rows(users)
                .sql(" AS j")
                .query()
                .execute(&mut *w.tx)
                .await?;
        }
        for ((organization, role, state), users) in &plan.changed {
            Statement::new(d)
                .sql("UPDATE memberships SET role = ")
                .bind(role.as_str())
                .sql(", state = ")
                .bind(state.as_str())
                .sql(", updated_at = ")
                .bind(now)
                .sql(" WHERE tenant_id = ")
                .bind(tenant.as_str())
                .sql(" AND organization_id = ")
                .bind(*organization)
                .sql(" AND user_id IN ")
                .id_list(users)
                .query()
                .execute(&mut *w.tx)
                .await?;
        }
        for (kind, data) in plan.events(&organizations, &people) {
            w.emit(kind, data);
        }
        Ok(())
    }
}
