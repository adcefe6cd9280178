//! Tenants and their settings.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use token::limit::Quota;

use super::filter::Arg;
use super::{bound, text, SqlStore};
use crate::error::is_unique_violation;
use crate::store::TenantStore;
use crate::time_util::now_micros;
use crate::{AccessTokenLifetime, DomainError, Tenant, TenantId, TenantName, TenantSettings, TenantUpdate};

/// The columns [`tenant_from_row`] reads, for joins (`n` is the tenants alias).
pub(super) const TENANT_COLUMNS: &str = "n.id AS tenant_id, n.name AS tenant_name, n.created_at AS tenant_created_at, \
     n.rate_limit_per_second AS tenant_rate_per_second, n.rate_limit_burst AS tenant_rate_burst, \
     n.idp_profile AS tenant_idp_profile, CASE WHEN n.autoprovision THEN 1 ELSE 0 END AS tenant_autoprovision, \
     n.default_role AS tenant_default_role, n.deprovision AS tenant_deprovision, \
     n.auth_methods AS tenant_auth_methods, n.access_token_seconds AS tenant_access_token_seconds, \
     n.link_by AS tenant_link_by, n.duplicate_emails AS tenant_duplicate_emails";

pub(super) fn tenant_from_row(row: &AnyRow) -> Result<Tenant, DomainError> {
    let name: String = row.try_get("tenant_name")?;
    let per_second: Option<i64> = row.try_get("tenant_rate_per_second")?;
    let burst: Option<i64> = row.try_get("tenant_rate_burst")?;
    let rate_limit = match (per_second, burst) {
        (Some(per_second), Some(burst)) => {
            let quota =
                u32::try_from(per_second).ok().zip(u32::try_from(burst).ok()).and_then(|(r, b)| Quota::new(r, b));
            Some(quota.ok_or_else(|| DomainError::internal("stored rate limit is out of range"))?)
        }
        _ => None,
    };
    let corrupt = |what: &str| DomainError::internal(format!("stored tenant {what} is unknown"));
    let idp_profile: String = row.try_get("tenant_idp_profile")?;
    let default_role: String = row.try_get("tenant_default_role")?;
    let deprovision: String = row.try_get("tenant_deprovision")?;
    let auth_methods: String = row.try_get("tenant_auth_methods")?;
    let access_token_seconds: i64 = row.try_get("tenant_access_token_seconds")?;
    let link_by: String = row.try_get("tenant_link_by")?;
    let duplicate_emails: String = row.try_get("tenant_duplicate_emails")?;
    let settings = TenantSettings {
        idp_profile: idp_profile.parse().map_err(|_| corrupt("IdP profile"))?,
        autoprovision: row.try_get::<i64, _>("tenant_autoprovision")? != 0,
        default_role: default_role.parse().map_err(|_| corrupt("default role"))?,
        deprovision: deprovision.parse().map_err(|_| corrupt("deprovisioning"))?,
        auth_methods: auth_methods.parse().map_err(|_| corrupt("authentication methods"))?,
        access_token_lifetime: u64::try_from(access_token_seconds)
            .ok()
            .and_then(|s| AccessTokenLifetime::from_seconds(s).ok())
            .ok_or_else(|| corrupt("access token lifetime"))?,
        link_by: link_by.parse().map_err(|_| corrupt("link_by"))?,
        duplicate_emails: duplicate_emails.parse().map_err(|_| corrupt("duplicate email policy"))?,
    };
    Ok(Tenant {
        id: TenantId(row.try_get("tenant_id")?),
        name: TenantName::parse(&name)?,
        created_at: row.try_get("tenant_created_at")?,
        rate_limit,
        settings,
    })
}

impl SqlStore {
    /// The settings of a tenant, as the transaction sees them.
    pub(super) async fn settings_of(
        &self,
        conn: &mut AnyConnection,
        id: &TenantId,
    ) -> Result<TenantSettings, DomainError> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants n WHERE n.id = $1");
        let row = bound(&sql, vec![text(id.as_str())])
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(DomainError::NotFound("tenant"))?;
        Ok(tenant_from_row(&row)?.settings)
    }

    async fn tenant_by_name(&self, name: &TenantName) -> Result<Tenant, DomainError> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants n WHERE n.name = $1");
        let row = bound(&sql, vec![text(name.as_str())])
            .fetch_optional(&self.pool)
            .await?
            .ok_or(DomainError::NotFound("tenant"))?;
        tenant_from_row(&row)
    }
}

#[async_trait]
impl TenantStore for SqlStore {
    async fn check_ready(&self) -> Result<(), DomainError> {
        let mut conn = self.pool.acquire().await?;
        let applied: i64 = sqlx::query("SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE success = TRUE")
            .fetch_one(&mut *conn)
            .await
            .map_err(|_| DomainError::internal("migrations have not been applied"))?
            .try_get("n")?;
        let known = self.migrator().iter().count();
        if usize::try_from(applied).unwrap_or(0) < known {
            return Err(DomainError::internal(format!("{applied} of {known} migrations applied")));
        }
        Ok(())
    }

    async fn create_tenant(&self, name: &TenantName) -> Result<Tenant, DomainError> {
        let tenant = Tenant {
            id: TenantId(uuid::Uuid::now_v7().to_string()),
            name: name.clone(),
            created_at: now_micros(),
            rate_limit: None,
            settings: TenantSettings::default(),
        };
        bound(
            "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)",
            vec![text(tenant.id.as_str()), text(name.as_str()), Arg::Int(tenant.created_at)],
        )
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                DomainError::Conflict(format!("tenant `{name}` already exists"))
            } else {
                e.into()
            }
        })?;
        Ok(tenant)
    }

    async fn tenant(&self, name: &TenantName) -> Result<Tenant, DomainError> {
        self.tenant_by_name(name).await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, DomainError> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants n ORDER BY n.name");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(tenant_from_row).collect()
    }

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
                let sql = format!("UPDATE tenants SET {column} = $2 WHERE id = $1");
                bound(&sql, vec![text(id.as_str()), value]).execute(&mut **tx).await?;
            }
        }
        if let Some(rate_limit) = update.rate_limit {
            let (per_second, burst) = match rate_limit {
                Some(q) => (Arg::Int(i64::from(q.per_second.get())), Arg::Int(i64::from(q.burst.get()))),
                None => (Arg::NullInt, Arg::NullInt),
            };
            bound(
                "UPDATE tenants SET rate_limit_per_second = $2, rate_limit_burst = $3 WHERE id = $1",
                vec![text(id.as_str()), per_second, burst],
            )
            .execute(&mut **tx)
            .await?;
        }
        if update.affects_memberships() {
            write.settings = self.settings_of(&mut write.tx, &id).await?;
            self.relink_and_reconcile_all(&mut write).await?;
        }
        write.commit().await?;
        self.tenant_by_name(name).await
    }

    async fn record_user_agents(&self, seen: &[(TenantId, String, i64)]) -> Result<(), DomainError> {
        if seen.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for (tenant, agent, at) in seen {
            bound(
                "UPDATE tenants SET last_user_agent = $2, last_user_agent_at = $3 \
                 WHERE id = $1 AND (last_user_agent_at IS NULL OR last_user_agent_at < $3)",
                vec![text(tenant.as_str()), text(agent), Arg::Int(*at)],
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delete_tenant(&self, name: &TenantName) -> Result<(), DomainError> {
        let mut tx = self.begin_write().await?;
        let id = self.tenant_id(&mut tx, name).await?;
        // Memberships first: they reference groups, and members have no foreign key.
        for statement in ["DELETE FROM group_members WHERE tenant_id = $1", "DELETE FROM tenants WHERE id = $1"] {
            bound(statement, vec![text(id.as_str())]).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
