//! Tenants and their settings.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow};

use super::filter::Arg;
use super::statement::{Bind, Statement};
use super::{Dialect, SqlStore};
use crate::error::conflict_if_unique;
use crate::store::TenantStore;
use crate::time_util::now_micros;
use crate::{
    AccessTokenLifetime, DomainError, Entity, RateLimit, Tenant, TenantId, TenantName, TenantSettings, TenantUpdate,
};

/// The columns [`tenant_from_row`] reads, for joins (`n` is the tenants alias).
pub(super) const TENANT_COLUMNS: &str = "n.id AS tenant_id, n.name AS tenant_name, n.created_at AS tenant_created_at, \
     n.rate_limit_per_second AS tenant_rate_per_second, n.rate_limit_burst AS tenant_rate_burst, \
     n.idp_profile AS tenant_idp_profile, CASE WHEN n.autoprovision THEN 1 ELSE 0 END AS tenant_autoprovision, \
     n.default_role AS tenant_default_role, n.deprovision AS tenant_deprovision, \
     n.auth_methods AS tenant_auth_methods, n.access_token_seconds AS tenant_access_token_seconds, \
     n.link_by AS tenant_link_by, n.duplicate_emails AS tenant_duplicate_emails";

/// A tenant as [`TENANT_COLUMNS`] reads it.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct TenantRow {
    tenant_id: String,
    tenant_name: String,
    tenant_created_at: i64,
    tenant_rate_per_second: Option<i64>,
    tenant_rate_burst: Option<i64>,
    tenant_idp_profile: String,
    tenant_autoprovision: i64,
    tenant_default_role: String,
    tenant_deprovision: String,
    tenant_auth_methods: String,
    tenant_access_token_seconds: i64,
    tenant_link_by: String,
    tenant_duplicate_emails: String,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = DomainError;

    fn try_from(row: TenantRow) -> Result<Self, DomainError> {
        let rate_limit = match (row.tenant_rate_per_second, row.tenant_rate_burst) {
            (Some(per_second), Some(burst)) => {
                let limit = u32::try_from(per_second)
                    .ok()
                    .zip(u32::try_from(burst).ok())
                    .and_then(|(r, b)| RateLimit::new(r, b));
                Some(limit.ok_or_else(|| DomainError::internal("stored rate limit is out of range"))?)
            }
            _ => None,
        };
        let corrupt = |what: &str| DomainError::internal(format!("stored tenant {what} is unknown"));
        let settings = TenantSettings {
            idp_profile: row.tenant_idp_profile.parse().map_err(|_| corrupt("IdP profile"))?,
            autoprovision: row.tenant_autoprovision != 0,
            default_role: row.tenant_default_role.parse().map_err(|_| corrupt("default role"))?,
            deprovision: row.tenant_deprovision.parse().map_err(|_| corrupt("deprovisioning"))?,
            auth_methods: row.tenant_auth_methods.parse().map_err(|_| corrupt("authentication methods"))?,
            access_token_lifetime: u64::try_from(row.tenant_access_token_seconds)
                .ok()
                .and_then(|s| AccessTokenLifetime::from_seconds(s).ok())
                .ok_or_else(|| corrupt("access token lifetime"))?,
            link_by: row.tenant_link_by.parse().map_err(|_| corrupt("link_by"))?,
            duplicate_emails: row.tenant_duplicate_emails.parse().map_err(|_| corrupt("duplicate email policy"))?,
        };
        Ok(Tenant {
            id: TenantId(row.tenant_id),
            name: TenantName::parse(&row.tenant_name)?,
            created_at: row.tenant_created_at,
            rate_limit,
            settings,
        })
    }
}

/// The tenant in a row that selected [`TENANT_COLUMNS`] (among others).
pub(super) fn tenant_from_row(row: &AnyRow) -> Result<Tenant, DomainError> {
    Tenant::try_from(TenantRow::from_row(row)?)
}

/// `SELECT` [`TENANT_COLUMNS`] `FROM tenants n WHERE n.<column> = value`.
fn select_tenant(dialect: Dialect, column: &str, value: &str) -> Statement {
    Statement::new(dialect).sql(&format!("SELECT {TENANT_COLUMNS} FROM tenants n WHERE n.{column} = ")).bind(value)
}

impl SqlStore {
    /// The settings of a tenant, as the transaction sees them.
    pub(super) async fn settings_of(
        &self,
        conn: &mut AnyConnection,
        id: &TenantId,
    ) -> Result<TenantSettings, DomainError> {
        let row: TenantRow = select_tenant(self.dialect, "id", id.as_str())
            .query_as()
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(DomainError::NotFound(Entity::Tenant))?;
        Ok(Tenant::try_from(row)?.settings)
    }

    async fn tenant_by_name(&self, name: &TenantName) -> Result<Tenant, DomainError> {
        let row: TenantRow = select_tenant(self.dialect, "name", name.as_str())
            .query_as()
            .fetch_optional(&self.pool)
            .await?
            .ok_or(DomainError::NotFound(Entity::Tenant))?;
        Tenant::try_from(row)
    }
}

#[async_trait]
impl TenantStore for SqlStore {
    #[tracing::instrument(name = "store.check_ready", level = "debug", skip_all)]
    async fn check_ready(&self) -> Result<(), DomainError> {
        let mut conn = self.pool.acquire().await?;
        let (applied,): (i64,) = sqlx::query_as("SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE success = TRUE")
            .fetch_one(&mut *conn)
            .await
            .map_err(|_| DomainError::internal("migrations have not been applied"))?;
        let known = self.migrator().iter().count();
        if usize::try_from(applied).unwrap_or(0) < known {
            return Err(DomainError::internal(format!("{applied} of {known} migrations applied")));
        }
        Ok(())
    }

    #[tracing::instrument(name = "store.create_tenant", skip_all, fields(tenant = %name))]
    async fn create_tenant(&self, name: &TenantName) -> Result<Tenant, DomainError> {
        let tenant = Tenant {
            id: TenantId(uuid::Uuid::now_v7().to_string()),
            name: name.clone(),
            created_at: now_micros(),
            rate_limit: None,
            settings: TenantSettings::default(),
        };
        let mut tx = self.begin_write().await?;
        Statement::new(self.dialect)
            .sql("INSERT INTO tenants (id, name, created_at) VALUES ")
            .row([tenant.id.as_str().into_arg(), name.as_str().into_arg(), tenant.created_at.into_arg()])
            .query()
            .execute(&mut *tx)
            .await
            .map_err(conflict_if_unique(|| format!("tenant `{name}` already exists")))?;
        Statement::new(self.dialect)
            .sql("INSERT INTO event_counters (tenant_id, last_seq) VALUES (")
            .bind(tenant.id.as_str())
            .sql(", 0)")
            .query()
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(tenant)
    }

    #[tracing::instrument(name = "store.tenant", skip_all, fields(tenant = %name))]
    async fn tenant(&self, name: &TenantName) -> Result<Tenant, DomainError> {
        self.tenant_by_name(name).await
    }

    #[tracing::instrument(name = "store.list_tenants", skip_all)]
    async fn list_tenants(&self) -> Result<Vec<Tenant>, DomainError> {
        let rows: Vec<TenantRow> = Statement::new(self.dialect)
            .sql(&format!("SELECT {TENANT_COLUMNS} FROM tenants n ORDER BY n.name"))
            .query_as()
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(Tenant::try_from).collect()
    }

    #[tracing::instrument(name = "store.update_tenant", skip_all, fields(tenant = %name))]
    async fn update_tenant(&self, name: &TenantName, update: &TenantUpdate) -> Result<Tenant, DomainError> {
        let mut write = self.begin_tenant_write_by_name(name).await?;
        let id = write.tenant.clone();
        let tx = &mut write.tx;
        let settings = [
            ("idp_profile", update.idp_profile.map(|p| Arg::Text(p.as_str().into()))),
            ("autoprovision", update.autoprovision.map(Arg::Bool)),
            ("default_role", update.default_role.map(|r| Arg::Text(r.as_str().into()))),
            ("deprovision", update.deprovision.map(|d| Arg::Text(d.as_str().into()))),
            ("auth_methods", update.auth_methods.map(|m| Arg::Text(m.as_str().into()))),
            ("access_token_seconds", update.access_token_lifetime.map(|l| Arg::Int(i64::from(l.seconds())))),
            ("link_by", update.link_by.map(|l| Arg::Text(l.as_string()))),
            ("duplicate_emails", update.duplicate_emails.map(|d| Arg::Text(d.as_str().into()))),
        ];
        for (column, value) in settings {
            if let Some(value) = value {
                Statement::new(self.dialect)
                    .sql(&format!("UPDATE tenants SET {column} = "))
                    .bind(value)
                    .sql(" WHERE id = ")
                    .bind(id.as_str())
                    .query()
                    .execute(&mut **tx)
                    .await?;
            }
        }
        if let Some(rate_limit) = update.rate_limit {
            let number = |n: std::num::NonZeroU32| i64::from(n.get());
            Statement::new(self.dialect)
                .sql("UPDATE tenants SET rate_limit_per_second = ")
                .bind(rate_limit.map(|l| number(l.per_second)))
                .sql(", rate_limit_burst = ")
                .bind(rate_limit.map(|l| number(l.burst)))
                .sql(" WHERE id = ")
                .bind(id.as_str())
                .query()
                .execute(&mut **tx)
                .await?;
        }
        if update.affects_memberships() {
            write.settings = self.settings_of(&mut write.tx, &id).await?;
            self.relink_and_reconcile_all(&mut write).await?;
        }
        write.commit().await?;
        self.forget_token_records();
        self.tenant_by_name(name).await
    }

    #[tracing::instrument(name = "store.record_user_agents", level = "debug", skip_all)]
    async fn record_user_agents(&self, seen: &[(TenantId, String, i64)]) -> Result<(), DomainError> {
        if seen.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for (tenant, agent, at) in seen {
            Statement::new(self.dialect)
                .sql("UPDATE tenants SET last_user_agent = ")
                .bind(agent.as_str())
                .sql(", last_user_agent_at = ")
                .bind(*at)
                .sql(" WHERE id = ")
                .bind(tenant.as_str())
                .sql(" AND (last_user_agent_at IS NULL OR last_user_agent_at < ")
                .bind(*at)
                .sql(")")
                .query()
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store.delete_tenant", skip_all, fields(tenant = %name))]
    async fn delete_tenant(&self, name: &TenantName) -> Result<(), DomainError> {
        let mut tx = self.begin_write().await?;
        let id = self.tenant_id(&mut tx, name).await?;
        // Memberships first: no foreign key removes them (they have none, to their tenant or
        // their group).
        for statement in ["DELETE FROM group_members WHERE tenant_id = ", "DELETE FROM tenants WHERE id = "] {
            Statement::new(self.dialect).sql(statement).bind(id.as_str()).query().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.forget_token_records();
        Ok(())
    }
}
