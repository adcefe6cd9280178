//! Setup links and web sessions (the setup portal and the operator console).

use async_trait::async_trait;
use sqlx::AnyConnection;
use token::{TokenId, Validity};

use super::statement::{Bind, Statement};
use super::{Dialect, SqlStore};
use crate::portal::{
    GroupOrganization, NewPortalLink, NewWebSession, PortalLink, PortalStore, SecretDigest, SessionScope,
    StoredPortalLink, WebSession,
};
use crate::time_util::now_micros;
use crate::{DomainError, OrganizationName, TenantName};

const LINK_COLUMNS: &str = "l.id AS id, n.name AS tenant_name, l.secret_hash AS secret_hash, \
     l.created_at AS created_at, l.expires_at AS expires_at, l.used_at AS used_at, l.revoked_at AS revoked_at";

/// A setup link as [`LINK_COLUMNS`] reads it.
#[derive(Debug, sqlx::FromRow)]
struct LinkRow {
    id: String,
    tenant_name: String,
    secret_hash: String,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl LinkRow {
    /// The link, and the digest of its secret.
    fn into_link(self) -> Result<(PortalLink, String), DomainError> {
        let link = PortalLink {
            id: self.id,
            tenant: TenantName::parse(&self.tenant_name)?,
            created_at: self.created_at,
            expires_at: self.expires_at,
            used_at: self.used_at,
            revoked_at: self.revoked_at,
        };
        Ok((link, self.secret_hash))
    }
}

/// A web session as `web_session` reads it.
#[derive(Debug, sqlx::FromRow)]
struct SessionRow {
    id: String,
    kind: String,
    secret_hash: String,
    csrf_token: String,
    expires_at: i64,
    /// Console sessions only.
    token_id: Option<String>,
    /// Portal sessions only.
    tenant_name: Option<String>,
    token_expires_at: Option<i64>,
    token_revoked_at: Option<i64>,
}

/// A group's organization as `group_organizations` reads it.
#[derive(Debug, sqlx::FromRow)]
struct GroupOrganizationRow {
    group_id: String,
    group_name: String,
    organization: String,
    role: String,
    autoprovisioned: i64,
}

/// The error of a column that is NULL where its row's kind requires a value, as decoding it
/// into a non-optional field would fail.
fn missing(column: &str) -> DomainError {
    sqlx::Error::ColumnDecode { index: column.to_owned(), source: Box::new(sqlx::error::UnexpectedNullError) }.into()
}

fn select_links(dialect: Dialect) -> Statement {
    Statement::new(dialect)
        .sql(&format!("SELECT {LINK_COLUMNS} FROM portal_links l JOIN tenants n ON n.id = l.tenant_id WHERE "))
}

async fn insert_session(
    conn: &mut AnyConnection,
    dialect: Dialect,
    tenant_id: Option<&str>,
    session: &NewWebSession,
) -> Result<(), DomainError> {
    let now = now_micros();
    Statement::new(dialect)
        .sql("DELETE FROM web_sessions WHERE expires_at <= ")
        .bind(now)
        .query()
        .execute(&mut *conn)
        .await?;
    let (kind, token) = match &session.scope {
        SessionScope::Portal(_) => ("portal", None),
        SessionScope::Console(token) => ("console", Some(token.as_str())),
    };
    Statement::new(dialect)
        .sql("INSERT INTO web_sessions (id, kind, tenant_id, token_id, secret_hash, csrf_token, created_at, expires_at) VALUES ")
        .row([
            session.id.as_str().into_arg(),
            kind.into_arg(),
            tenant_id.into_arg(),
            token.into_arg(),
            session.digest.as_str().into_arg(),
            session.csrf_token.as_str().into_arg(),
            now.into_arg(),
            session.expires_at.into_arg(),
        ])
        .query()
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[async_trait]
impl PortalStore for SqlStore {
    async fn add_portal_link(&self, tenant: &TenantName, link: NewPortalLink) -> Result<PortalLink, DomainError> {
        let mut tx = self.begin_write().await?;
        let tenant_id = self.tenant_id(&mut tx, tenant).await?;
        let now = now_micros();
        Statement::new(self.dialect)
            .sql("INSERT INTO portal_links (id, tenant_id, secret_hash, created_at, expires_at) VALUES ")
            .row([
                link.id.as_str().into_arg(),
                tenant_id.as_str().into_arg(),
                link.digest.as_str().into_arg(),
                now.into_arg(),
                link.expires_at.into_arg(),
            ])
            .query()
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(PortalLink {
            id: link.id,
            tenant: tenant.clone(),
            created_at: now,
            expires_at: link.expires_at,
            used_at: None,
            revoked_at: None,
        })
    }

    async fn list_portal_links(&self, tenant: &TenantName) -> Result<Vec<PortalLink>, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let tenant_id = self.tenant_id(&mut conn, tenant).await?;
        let rows: Vec<LinkRow> = select_links(self.dialect)
            .sql("l.tenant_id = ")
            .bind(tenant_id.as_str())
            .sql(" ORDER BY l.created_at DESC, l.id")
            .query_as()
            .fetch_all(&mut *conn)
            .await?;
        rows.into_iter().map(|row| Ok(row.into_link()?.0)).collect()
    }

    async fn revoke_portal_link(&self, tenant: &TenantName, id: &str) -> Result<(), DomainError> {
        let mut tx = self.begin_write().await?;
        let tenant_id = self.tenant_id(&mut tx, tenant).await?;
        let exists = Statement::new(self.dialect)
            .sql("SELECT 1 AS one FROM portal_links WHERE id = ")
            .bind(id)
            .sql(" AND tenant_id = ")
            .bind(tenant_id.as_str())
            .query()
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(DomainError::NotFound(crate::Entity::SetupLink));
        }
        Statement::new(self.dialect)
            .sql("UPDATE portal_links SET revoked_at = ")
            .bind(now_micros())
            .sql(" WHERE id = ")
            .bind(id)
            .sql(" AND tenant_id = ")
            .bind(tenant_id.as_str())
            .sql(" AND revoked_at IS NULL")
            .query()
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn portal_link(&self, id: &str) -> Result<Option<StoredPortalLink>, DomainError> {
        let row: Option<LinkRow> =
            select_links(self.dialect).sql("l.id = ").bind(id).query_as().fetch_optional(&self.pool).await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (link, digest) = row.into_link()?;
        Ok(Some(StoredPortalLink { link, digest: SecretDigest::from_stored(digest) }))
    }

    async fn use_portal_link(&self, id: &str, now: i64, session: NewWebSession) -> Result<bool, DomainError> {
        let mut tx = self.begin_write().await?;
        // The update is the claim: of two concurrent uses, only one finds the link unused.
        let claimed = Statement::new(self.dialect)
            .sql("UPDATE portal_links SET used_at = ")
            .bind(now)
            .sql(" WHERE id = ")
            .bind(id)
            .sql(" AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ")
            .bind(now)
            .query()
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if claimed != 1 {
            return Ok(false);
        }
        let (tenant_id,): (String,) = Statement::new(self.dialect)
            .sql("SELECT tenant_id FROM portal_links WHERE id = ")
            .bind(id)
            .query_as()
            .fetch_one(&mut *tx)
            .await?;
        insert_session(&mut tx, self.dialect, Some(&tenant_id), &session).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn add_web_session(&self, session: NewWebSession) -> Result<(), DomainError> {
        let mut tx = self.begin_write().await?;
        let tenant_id = match &session.scope {
            SessionScope::Portal(name) => Some(self.tenant_id(&mut tx, name).await?),
            SessionScope::Console(_) => None,
        };
        insert_session(&mut tx, self.dialect, tenant_id.as_ref().map(|t| t.as_str()), &session).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn web_session(&self, id: &str) -> Result<Option<WebSession>, DomainError> {
        let row: Option<SessionRow> = Statement::new(self.dialect)
            .sql(
                "SELECT s.id, s.kind, s.secret_hash, s.csrf_token, s.expires_at, s.token_id, n.name AS tenant_name, \
                 t.expires_at AS token_expires_at, t.revoked_at AS token_revoked_at \
                 FROM web_sessions s LEFT JOIN tenants n ON n.id = s.tenant_id \
                 LEFT JOIN tokens t ON t.id = s.token_id WHERE s.id = ",
            )
            .bind(id)
            .query_as()
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (scope, operator_token) = match row.kind.as_str() {
            "portal" => {
                let tenant = row.tenant_name.ok_or_else(|| missing("tenant_name"))?;
                (SessionScope::Portal(TenantName::parse(&tenant)?), None)
            }
            "console" => {
                let token = row.token_id.ok_or_else(|| missing("token_id"))?;
                let token = TokenId::parse(&token)
                    .map_err(|_| DomainError::internal("stored session token id is malformed"))?;
                let validity = Validity { expires_at: row.token_expires_at, revoked_at: row.token_revoked_at };
                (SessionScope::Console(token), Some(validity))
            }
            _ => return Err(DomainError::internal("stored session kind is unknown")),
        };
        Ok(Some(WebSession {
            id: row.id,
            digest: SecretDigest::from_stored(row.secret_hash),
            scope,
            csrf_token: row.csrf_token,
            expires_at: row.expires_at,
            operator_token,
        }))
    }

    async fn end_web_session(&self, id: &str) -> Result<(), DomainError> {
        Statement::new(self.dialect)
            .sql("DELETE FROM web_sessions WHERE id = ")
            .bind(id)
            .query()
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn group_organizations(&self, tenant: &TenantName) -> Result<Vec<GroupOrganization>, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let tenant_id = self.tenant_id(&mut conn, tenant).await?;
        let sql = "SELECT g.id AS group_id, g.display_name AS group_name, o.name AS organization, l.role AS role, \
                   CASE WHEN o.autoprovisioned AND o.source_group_id = g.id THEN 1 ELSE 0 END AS autoprovisioned \
                   FROM group_links l \
                   JOIN groups g ON g.tenant_id = l.tenant_id AND g.id = l.group_id \
                   JOIN organizations o ON o.tenant_id = l.tenant_id AND o.id = l.organization_id \
                   WHERE l.tenant_id = ";
        let rows: Vec<GroupOrganizationRow> = Statement::new(self.dialect)
            .sql(sql)
            .bind(tenant_id.as_str())
            .sql(" ORDER BY g.display_name, o.name")
            .query_as()
            .fetch_all(&mut *conn)
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(GroupOrganization {
                    group_id: row.group_id,
                    group_name: row.group_name,
                    organization: OrganizationName::parse(&row.organization)?,
                    role: row.role.parse()?,
                    autoprovisioned: row.autoprovisioned != 0,
                })
            })
            .collect()
    }
}
