//! Organizations, group mappings, memberships and the readiness facts.

use async_trait::async_trait;
use serde_json::json;
use sqlx::FromRow;

use super::statement::{Bind, Statement};
use super::SqlStore;
use crate::error::conflict_if_unique;
use crate::event::EventType;
use crate::org::{
    GroupMapping, GroupMatcher, Membership, MembershipState, Organization, OrganizationName, ReadinessFacts, Role,
};
use crate::store::OrganizationStore;
use crate::time_util::now_micros;
use crate::{DomainError, Entity, TenantName};

/// An organization as [`ORGANIZATION_COLUMNS`] reads it.
#[derive(Debug, FromRow)]
struct OrganizationRow {
    id: String,
    name: String,
    display_name: Option<String>,
    autoprovisioned: i64,
    created_at: i64,
    archived_at: Option<i64>,
}

impl TryFrom<OrganizationRow> for Organization {
    type Error = DomainError;

    fn try_from(row: OrganizationRow) -> Result<Self, DomainError> {
        Ok(Organization {
            id: row.id,
            name: OrganizationName::parse(&row.name)?,
            display_name: row.display_name,
            autoprovisioned: row.autoprovisioned != 0,
            created_at: row.created_at,
            archived_at: row.archived_at,
        })
    }
}

const ORGANIZATION_COLUMNS: &str = "o.id AS id, o.name AS name, o.display_name AS display_name, \
     CASE WHEN o.autoprovisioned THEN 1 ELSE 0 END AS autoprovisioned, o.created_at AS created_at, o.archived_at AS archived_at";

/// A mapping as `list_mappings` reads it.
#[derive(Debug, FromRow)]
struct MappingRow {
    id: String,
    match_by: String,
    match_value: String,
    organization: String,
    role: String,
    created_at: i64,
}

impl TryFrom<MappingRow> for GroupMapping {
    type Error = DomainError;

    fn try_from(row: MappingRow) -> Result<Self, DomainError> {
        let matcher = match row.match_by.as_str() {
            "id" => GroupMatcher::Id(row.match_value),
            _ => GroupMatcher::DisplayName(row.match_value),
        };
        Ok(GroupMapping {
            id: row.id,
            matcher,
            organization: OrganizationName::parse(&row.organization)?,
            role: row.role.parse()?,
            created_at: row.created_at,
        })
    }
}

/// A membership as [`MEMBERSHIP_QUERY`] reads it.
#[derive(Debug, FromRow)]
struct MembershipRow {
    organization: String,
    user_id: String,
    user_name: String,
    role: String,
    state: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<MembershipRow> for Membership {
    type Error = DomainError;

    fn try_from(row: MembershipRow) -> Result<Self, DomainError> {
        Ok(Membership {
            organization: OrganizationName::parse(&row.organization)?,
            user_id: row.user_id,
            user_name: row.user_name,
            role: row.role.parse()?,
            state: if row.state == "suspended" { MembershipState::Suspended } else { MembershipState::Active },
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const MEMBERSHIP_QUERY: &str = "SELECT o.name AS organization, m.user_id AS user_id, u.user_name AS user_name, \
     m.role AS role, m.state AS state, m.created_at AS created_at, m.updated_at AS updated_at \
     FROM memberships m JOIN organizations o ON o.tenant_id = m.tenant_id AND o.id = m.organization_id \
     JOIN users u ON u.tenant_id = m.tenant_id AND u.id = m.user_id";

/// The `n` of a `SELECT COUNT(*) AS n ...`.
async fn count_of(conn: &mut sqlx::AnyConnection, statement: Statement) -> Result<u64, DomainError> {
    let (n,): (i64,) = statement.query_as().fetch_one(&mut *conn).await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

impl SqlStore {
    async fn organization_id(
        &self,
        conn: &mut sqlx::AnyConnection,
        tenant: &str,
        name: &OrganizationName,
    ) -> Result<String, DomainError> {
        let (id,): (String,) = Statement::new(self.dialect)
            .sql("SELECT id FROM organizations WHERE tenant_id = ")
            .bind(tenant)
            .sql(" AND name = ")
            .bind(name.as_str())
            .query_as()
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(DomainError::NotFound(Entity::Organization))?;
        Ok(id)
    }
}

#[async_trait]
impl OrganizationStore for SqlStore {
    #[tracing::instrument(name = "store.create_organization", skip_all, fields(tenant = %tenant, organization = %name))]
    async fn create_organization(
        &self,
        tenant: &TenantName,
        name: &OrganizationName,
    ) -> Result<Organization, DomainError> {
        let mut w = self.begin_tenant_write_by_name(tenant).await?;
        let id = self.insert_organization(&mut w, name, None).await?;
        // Groups named like it now give it.
        self.relink_and_reconcile_changed(&mut w).await?;
        let row: OrganizationRow = Statement::new(self.dialect)
            .sql(&format!("SELECT {ORGANIZATION_COLUMNS} FROM organizations o WHERE o.tenant_id = "))
            .bind(w.tenant.as_str())
            .sql(" AND o.id = ")
            .bind(id.as_str())
            .query_as()
            .fetch_one(&mut *w.tx)
            .await?;
        let organization = Organization::try_from(row)?;
        w.commit().await?;
        Ok(organization)
    }

    #[tracing::instrument(name = "store.list_organizations", skip_all, fields(tenant = %tenant))]
    async fn list_organizations(&self, tenant: &TenantName) -> Result<Vec<Organization>, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let tenant = self.tenant_id(&mut conn, tenant).await?;
        let rows: Vec<OrganizationRow> = Statement::new(self.dialect)
            .sql(&format!("SELECT {ORGANIZATION_COLUMNS} FROM organizations o WHERE o.tenant_id = "))
            .bind(tenant.as_str())
            .sql(" ORDER BY o.name")
            .query_as()
            .fetch_all(&mut *conn)
            .await?;
        rows.into_iter().map(Organization::try_from).collect()
    }

    #[tracing::instrument(name = "store.organization", skip_all, fields(tenant = %tenant, organization = %name))]
    async fn organization(&self, tenant: &TenantName, name: &OrganizationName) -> Result<Organization, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let tenant = self.tenant_id(&mut conn, tenant).await?;
        let row: OrganizationRow = Statement::new(self.dialect)
            .sql(&format!("SELECT {ORGANIZATION_COLUMNS} FROM organizations o WHERE o.tenant_id = "))
            .bind(tenant.as_str())
            .sql(" AND o.name = ")
            .bind(name.as_str())
            .query_as()
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(DomainError::NotFound(Entity::Organization))?;
        Organization::try_from(row)
    }

    #[tracing::instrument(name = "store.delete_organization", skip_all, fields(tenant = %tenant, organization = %name))]
    async fn delete_organization(&self, tenant: &TenantName, name: &OrganizationName) -> Result<(), DomainError> {
        let mut w = self.begin_tenant_write_by_name(tenant).await?;
        let tenant_id = w.tenant.as_str().to_owned();
        let id = self.organization_id(&mut w.tx, &tenant_id, name).await?;
        let linked: Vec<(String,)> = Statement::new(self.dialect)
            .sql(
                "SELECT g.display_name AS name FROM group_links l \
                 JOIN groups g ON g.tenant_id = l.tenant_id AND g.id = l.group_id WHERE l.tenant_id = ",
            )
            .bind(tenant_id.as_str())
            .sql(" AND l.organization_id = ")
            .bind(id.as_str())
            .sql(" ORDER BY g.display_name LIMIT 5")
            .query_as()
            .fetch_all(&mut *w.tx)
            .await?;
        if !linked.is_empty() {
            let names: Vec<String> = linked.into_iter().map(|(name,)| name).collect();
            return Err(DomainError::Conflict(format!(
                "organization `{name}` is still given by groups ({}): remove their mappings, or the groups, first",
                names.join(", ")
            )));
        }
        // No group gives it, so it has no memberships left to remove.
        Statement::new(self.dialect)
            .sql("DELETE FROM organizations WHERE tenant_id = ")
            .bind(tenant_id.as_str())
            .sql(" AND id = ")
            .bind(id.as_str())
            .query()
            .execute(&mut *w.tx)
            .await?;
        w.emit(EventType::OrganizationDeleted, json!({"organization": {"id": id, "name": name.as_str()}}));
        w.commit().await
    }

    #[tracing::instrument(name = "store.add_mapping", skip_all, fields(tenant = %tenant, organization = %organization))]
    async fn add_mapping(
        &self,
        tenant: &TenantName,
        matcher: GroupMatcher,
        organization: &OrganizationName,
        role: Role,
    ) -> Result<GroupMapping, DomainError> {
        let mut w = self.begin_tenant_write_by_name(tenant).await?;
        let tenant_id = w.tenant.as_str().to_owned();
        let organization_id = self.organization_id(&mut w.tx, &tenant_id, organization).await?;
        let (value, key) = match &matcher {
            GroupMatcher::DisplayName(name) | GroupMatcher::Id(name) => (name.clone(), matcher.key()),
        };
        let id = uuid::Uuid::now_v7().to_string();
        let created_at = now_micros();
        Statement::new(self.dialect)
            .sql(
                "INSERT INTO group_mappings \
                 (tenant_id, id, match_by, match_key, match_value, organization_id, role, created_at) VALUES ",
            )
            .row([
                tenant_id.as_str().into_arg(),
                id.as_str().into_arg(),
                matcher.kind().into_arg(),
                key.as_str().into_arg(),
                value.as_str().into_arg(),
                organization_id.as_str().into_arg(),
                role.as_str().into_arg(),
                created_at.into_arg(),
            ])
            .query()
            .execute(&mut *w.tx)
            .await
            .map_err(conflict_if_unique(|| format!("a mapping of that group to `{organization}` already exists")))?;
        self.relink_and_reconcile_changed(&mut w).await?;
        w.commit().await?;
        Ok(GroupMapping { id, matcher, organization: organization.clone(), role, created_at })
    }

    #[tracing::instrument(name = "store.list_mappings", skip_all, fields(tenant = %tenant))]
    async fn list_mappings(&self, tenant: &TenantName) -> Result<Vec<GroupMapping>, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let tenant = self.tenant_id(&mut conn, tenant).await?;
        let rows: Vec<MappingRow> = Statement::new(self.dialect)
            .sql(
                "SELECT m.id AS id, m.match_by AS match_by, m.match_value AS match_value, o.name AS organization, \
                 m.role AS role, m.created_at AS created_at FROM group_mappings m \
                 JOIN organizations o ON o.tenant_id = m.tenant_id AND o.id = m.organization_id \
                 WHERE m.tenant_id = ",
            )
            .bind(tenant.as_str())
            .sql(" ORDER BY m.created_at, m.id")
            .query_as()
            .fetch_all(&mut *conn)
            .await?;
        rows.into_iter().map(GroupMapping::try_from).collect()
    }

    #[tracing::instrument(name = "store.remove_mapping", skip_all, fields(tenant = %tenant, id = %id))]
    async fn remove_mapping(&self, tenant: &TenantName, id: &str) -> Result<(), DomainError> {
        let mut w = self.begin_tenant_write_by_name(tenant).await?;
        let removed = Statement::new(self.dialect)
            .sql("DELETE FROM group_mappings WHERE tenant_id = ")
            .bind(w.tenant.as_str())
            .sql(" AND id = ")
            .bind(id)
            .query()
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        if removed == 0 {
            return Err(DomainError::NotFound(Entity::Mapping));
        }
        self.relink_and_reconcile_changed(&mut w).await?;
        w.commit().await
    }

    #[tracing::instrument(name = "store.user_memberships", skip_all, fields(tenant = %tenant, user = %user_id))]
    async fn user_memberships(&self, tenant: &TenantName, user_id: &str) -> Result<Vec<Membership>, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let tenant = self.tenant_id(&mut conn, tenant).await?;
        let exists = Statement::new(self.dialect)
            .sql("SELECT 1 AS one FROM users WHERE tenant_id = ")
            .bind(tenant.as_str())
            .sql(" AND id = ")
            .bind(user_id)
            .query()
            .fetch_optional(&mut *conn)
            .await?;
        if exists.is_none() {
            return Err(DomainError::NotFound(Entity::User));
        }
        let rows: Vec<MembershipRow> = Statement::new(self.dialect)
            .sql(MEMBERSHIP_QUERY)
            .sql(" WHERE m.tenant_id = ")
            .bind(tenant.as_str())
            .sql(" AND m.user_id = ")
            .bind(user_id)
            .sql(" ORDER BY o.name")
            .query_as()
            .fetch_all(&mut *conn)
            .await?;
        rows.into_iter().map(Membership::try_from).collect()
    }

    #[tracing::instrument(name = "store.organization_members", skip_all, fields(tenant = %tenant, organization = %organization))]
    async fn organization_members(
        &self,
        tenant: &TenantName,
        organization: &OrganizationName,
    ) -> Result<Vec<Membership>, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let tenant = self.tenant_id(&mut conn, tenant).await?;
        let organization = self.organization_id(&mut conn, tenant.as_str(), organization).await?;
        let rows: Vec<MembershipRow> = Statement::new(self.dialect)
            .sql(MEMBERSHIP_QUERY)
            .sql(" WHERE m.tenant_id = ")
            .bind(tenant.as_str())
            .sql(" AND m.organization_id = ")
            .bind(organization.as_str())
            .sql(" ORDER BY u.user_name_lower")
            .query_as()
            .fetch_all(&mut *conn)
            .await?;
        rows.into_iter().map(Membership::try_from).collect()
    }

    #[tracing::instrument(name = "store.readiness", skip_all, fields(tenant = %tenant))]
    async fn readiness(&self, tenant: &TenantName) -> Result<ReadinessFacts, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let id = self.tenant_id(&mut conn, tenant).await?;
        // `sql` with the tenant's id bound where it ends.
        let of_tenant = |sql: &str| Statement::new(self.dialect).sql(sql).bind(id.as_str());
        let unlinked = "FROM groups g WHERE NOT EXISTS \
                        (SELECT 1 FROM group_links l WHERE l.tenant_id = g.tenant_id AND l.group_id = g.id) \
                        AND g.tenant_id = ";
        let mut facts = ReadinessFacts {
            users: count_of(&mut conn, of_tenant("SELECT COUNT(*) AS n FROM users WHERE tenant_id = ")).await?,
            groups: count_of(&mut conn, of_tenant("SELECT COUNT(*) AS n FROM groups WHERE tenant_id = ")).await?,
            organizations: count_of(
                &mut conn,
                of_tenant("SELECT COUNT(*) AS n FROM organizations WHERE archived_at IS NULL AND tenant_id = "),
            )
            .await?,
            mappings: count_of(&mut conn, of_tenant("SELECT COUNT(*) AS n FROM group_mappings WHERE tenant_id = "))
                .await?,
            webhooks: count_of(&mut conn, of_tenant("SELECT COUNT(*) AS n FROM webhooks WHERE tenant_id = ")).await?,
            failing_webhooks: count_of(
                &mut conn,
                of_tenant("SELECT COUNT(*) AS n FROM webhooks WHERE enabled = TRUE AND attempts > 0 AND tenant_id = "),
            )
            .await?,
            dead_letters: count_of(
                &mut conn,
                of_tenant("SELECT COUNT(*) AS n FROM webhook_dead_letters WHERE tenant_id = "),
            )
            .await?,
            unlinked_groups: count_of(&mut conn, of_tenant(&format!("SELECT COUNT(*) AS n {unlinked}"))).await?,
            ..ReadinessFacts::default()
        };
        let names: Vec<(String,)> = of_tenant(&format!("SELECT g.display_name AS name {unlinked}"))
            .sql(" ORDER BY g.display_name LIMIT 5")
            .query_as()
            .fetch_all(&mut *conn)
            .await?;
        facts.unlinked_group_names = names.into_iter().map(|(name,)| name).collect();

        // Linking emails more than one user has, between `before` and `after`.
        let duplicates = |before: &str, after: &str| {
            of_tenant(&format!("{before}SELECT email_lower FROM users WHERE email_lower IS NOT NULL AND tenant_id = "))
                .sql(" GROUP BY email_lower HAVING COUNT(*) > 1")
                .sql(after)
        };
        facts.duplicate_emails = count_of(&mut conn, duplicates("SELECT COUNT(*) AS n FROM (", ") d")).await?;
        if facts.duplicate_emails > 0 {
            let samples: Vec<(String,)> =
                duplicates("", " ORDER BY email_lower LIMIT 3").query_as().fetch_all(&mut *conn).await?;
            facts.duplicate_email_samples = samples.into_iter().map(|(email,)| email).collect();
        }
        let (rate_per_second, last_user_agent): (Option<i64>, Option<String>) =
            of_tenant("SELECT rate_limit_per_second, last_user_agent FROM tenants WHERE id = ")
                .query_as()
                .fetch_one(&mut *conn)
                .await?;
        facts.tenant_rate_per_second = rate_per_second.and_then(|r| u32::try_from(r).ok());
        facts.last_user_agent = last_user_agent;

        let now = now_micros();
        let week = now + 7 * 24 * 3600 * 1_000_000;
        let live = || {
            of_tenant("SELECT COUNT(*) AS n FROM tokens WHERE kind = 'tenant' AND tenant_id = ")
                .sql(" AND (revoked_at IS NULL OR revoked_at > ")
                .bind(now)
                .sql(") AND (expires_at IS NULL OR expires_at > ")
                .bind(now)
                .sql(")")
        };
        facts.live_tokens = count_of(&mut conn, live()).await?;
        let expiring = live().sql(" AND expires_at IS NOT NULL AND expires_at <= ").bind(week);
        facts.tokens_expiring_soon = count_of(&mut conn, expiring).await?;
        facts.live_oauth_clients = self.live_oauth_clients(&mut conn, &id, now).await?;

        // Mappings that no provisioned group matches, compared as link_group compares.
        drop(conn);
        let mappings = self.list_mappings(tenant).await?;
        if !mappings.is_empty() {
            let mut conn = self.pool.acquire().await?;
            let groups: Vec<(String, String)> = of_tenant("SELECT id, display_name FROM groups WHERE tenant_id = ")
                .query_as()
                .fetch_all(&mut *conn)
                .await?;
            let groups: Vec<(String, String)> =
                groups.into_iter().map(|(id, display_name)| (id, display_name.to_lowercase())).collect();
            facts.idle_mappings = mappings
                .into_iter()
                .filter(|m| {
                    !groups.iter().any(|(id, name)| match &m.matcher {
                        GroupMatcher::Id(wanted) => id == wanted,
                        GroupMatcher::DisplayName(_) => *name == m.matcher.key(),
                    })
                })
                .collect();
        }
        Ok(facts)
    }
}
