//! Setup links and web sessions (the setup portal and the operator console).

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use token::{TokenId, Validity};

use super::filter::Arg;
use super::{bound, text, SqlStore};
use crate::portal::{
    GroupOrganization, NewPortalLink, NewWebSession, PortalLink, PortalStore, SecretDigest, SessionScope,
    StoredPortalLink, WebSession,
};
use crate::time_util::now_micros;
use crate::{DomainError, OrganizationName, TenantName};

const LINK_COLUMNS: &str = "l.id AS id, n.name AS tenant_name, l.secret_hash AS secret_hash, \
     l.created_at AS created_at, l.expires_at AS expires_at, l.used_at AS used_at, l.revoked_at AS revoked_at";

fn link_from_row(row: &AnyRow) -> Result<PortalLink, DomainError> {
    let tenant: String = row.try_get("tenant_name")?;
    Ok(PortalLink {
        id: row.try_get("id")?,
        tenant: TenantName::parse(&tenant)?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        used_at: row.try_get("used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

async fn insert_session(
    conn: &mut AnyConnection,
    tenant_id: Option<&str>,
    session: &NewWebSession,
) -> Result<(), DomainError> {
    let now = now_micros();
    bound("DELETE FROM web_sessions WHERE expires_at <= $1", vec![Arg::Int(now)]).execute(&mut *conn).await?;
    let (kind, token) = match &session.scope {
        SessionScope::Portal(_) => ("portal", Arg::NullText),
        SessionScope::Console(token) => ("console", text(token.as_str())),
    };
    bound(
        "INSERT INTO web_sessions (id, kind, tenant_id, token_id, secret_hash, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        vec![
            text(&session.id),
            text(kind),
            tenant_id.map_or(Arg::NullText, text),
            token,
            text(session.digest.as_str()),
            text(&session.csrf_token),
            Arg::Int(now),
            Arg::Int(session.expires_at),
        ],
    )
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
        bound(
            "INSERT INTO portal_links (id, tenant_id, secret_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            vec![
                text(&link.id),
                text(tenant_id.as_str()),
                text(link.digest.as_str()),
                Arg::Int(now),
                Arg::Int(link.expires_at),
            ],
        )
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
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM portal_links l JOIN tenants n ON n.id = l.tenant_id \
             WHERE l.tenant_id = $1 ORDER BY l.created_at DESC, l.id"
        );
        let rows = bound(&sql, vec![text(tenant_id.as_str())]).fetch_all(&mut *conn).await?;
        rows.iter().map(link_from_row).collect()
    }

    async fn revoke_portal_link(&self, tenant: &TenantName, id: &str) -> Result<(), DomainError> {
        let mut tx = self.begin_write().await?;
        let tenant_id = self.tenant_id(&mut tx, tenant).await?;
        let args = vec![text(id), text(tenant_id.as_str())];
        let exists = bound("SELECT 1 AS one FROM portal_links WHERE id = $1 AND tenant_id = $2", args.clone())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(DomainError::NotFound(crate::Entity::SetupLink));
        }
        let mut args = args;
        args.push(Arg::Int(now_micros()));
        bound("UPDATE portal_links SET revoked_at = $3 WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL", args)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn portal_link(&self, id: &str) -> Result<Option<StoredPortalLink>, DomainError> {
        let sql =
            format!("SELECT {LINK_COLUMNS} FROM portal_links l JOIN tenants n ON n.id = l.tenant_id WHERE l.id = $1");
        let Some(row) = bound(&sql, vec![text(id)]).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        Ok(Some(StoredPortalLink {
            link: link_from_row(&row)?,
            digest: SecretDigest::from_stored(row.try_get("secret_hash")?),
        }))
    }

    async fn use_portal_link(&self, id: &str, now: i64, session: NewWebSession) -> Result<bool, DomainError> {
        let mut tx = self.begin_write().await?;
        // The update is the claim: of two concurrent uses, only one finds the link unused.
        let claimed = bound(
            "UPDATE portal_links SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL \
             AND expires_at > $2",
            vec![text(id), Arg::Int(now)],
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed != 1 {
            return Ok(false);
        }
        let row = bound("SELECT tenant_id FROM portal_links WHERE id = $1", vec![text(id)]).fetch_one(&mut *tx).await?;
        let tenant_id: String = row.try_get("tenant_id")?;
        insert_session(&mut tx, Some(&tenant_id), &session).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn add_web_session(&self, session: NewWebSession) -> Result<(), DomainError> {
        let mut tx = self.begin_write().await?;
        let tenant_id = match &session.scope {
            SessionScope::Portal(name) => Some(self.tenant_id(&mut tx, name).await?),
            SessionScope::Console(_) => None,
        };
        insert_session(&mut tx, tenant_id.as_ref().map(|t| t.as_str()), &session).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn web_session(&self, id: &str) -> Result<Option<WebSession>, DomainError> {
        let sql = "SELECT s.id, s.kind, s.secret_hash, s.csrf_token, s.expires_at, s.token_id, n.name AS tenant_name, \
                   t.expires_at AS token_expires_at, t.revoked_at AS token_revoked_at \
                   FROM web_sessions s LEFT JOIN tenants n ON n.id = s.tenant_id \
                   LEFT JOIN tokens t ON t.id = s.token_id WHERE s.id = $1";
        let Some(row) = bound(sql, vec![text(id)]).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let kind: String = row.try_get("kind")?;
        let (scope, operator_token) = match kind.as_str() {
            "portal" => {
                let tenant: String = row.try_get("tenant_name")?;
                (SessionScope::Portal(TenantName::parse(&tenant)?), None)
            }
            "console" => {
                let token: String = row.try_get("token_id")?;
                let token = TokenId::parse(&token)
                    .map_err(|_| DomainError::internal("stored session token id is malformed"))?;
                let validity = Validity {
                    expires_at: row.try_get("token_expires_at")?,
                    revoked_at: row.try_get("token_revoked_at")?,
                };
                (SessionScope::Console(token), Some(validity))
            }
            _ => return Err(DomainError::internal("stored session kind is unknown")),
        };
        Ok(Some(WebSession {
            id: row.try_get("id")?,
            digest: SecretDigest::from_stored(row.try_get("secret_hash")?),
            scope,
            csrf_token: row.try_get("csrf_token")?,
            expires_at: row.try_get("expires_at")?,
            operator_token,
        }))
    }

    async fn end_web_session(&self, id: &str) -> Result<(), DomainError> {
        bound("DELETE FROM web_sessions WHERE id = $1", vec![text(id)]).execute(&self.pool).await?;
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
                   WHERE l.tenant_id = $1 ORDER BY g.display_name, o.name";
        let rows = bound(sql, vec![text(tenant_id.as_str())]).fetch_all(&mut *conn).await?;
        rows.iter()
            .map(|row| {
                let organization: String = row.try_get("organization")?;
                let role: String = row.try_get("role")?;
                Ok(GroupOrganization {
                    group_id: row.try_get("group_id")?,
                    group_name: row.try_get("group_name")?,
                    organization: OrganizationName::parse(&organization)?,
                    role: role.parse()?,
                    autoprovisioned: row.try_get::<i64, _>("autoprovisioned")? != 0,
                })
            })
            .collect()
    }
}
