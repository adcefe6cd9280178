//! Tenant and operator tokens: one table, told apart by `kind`.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use token::{Scopes, SecretHash, TokenId, TokenKind, Validity};

use super::filter::Arg;
use super::tenants::{tenant_from_row, TENANT_COLUMNS};
use super::{bound, opt_text, text, SqlStore};
use crate::store::{NewToken, StoredToken, TokenInfo, TokenOwner, TokenStore};
use crate::time_util::now_micros;
use crate::{DomainError, TenantId, TenantName};

fn token_id(row: &AnyRow) -> Result<TokenId, DomainError> {
    let id: String = row.try_get("id")?;
    TokenId::parse(&id).map_err(|_| DomainError::internal("stored token id is malformed"))
}

fn scopes(row: &AnyRow) -> Result<Scopes, DomainError> {
    let scopes: String = row.try_get("scopes")?;
    Scopes::parse(&scopes).map_err(|_| DomainError::internal("stored token scopes are malformed"))
}

fn validity(row: &AnyRow) -> Result<Validity, DomainError> {
    Ok(Validity { expires_at: row.try_get("expires_at")?, revoked_at: row.try_get("revoked_at")? })
}

/// Selects the tokens of one owner, with [`SqlStore::owner_args`] as `$1` and `$2`.
const OWNER_CONDITION: &str = "kind = $1 AND COALESCE(tenant_id, '') = $2";

impl SqlStore {
    /// The arguments of [`OWNER_CONDITION`] for `owner`, and the tenant's id for a tenant.
    async fn owner_args(
        &self,
        conn: &mut AnyConnection,
        owner: TokenOwner<'_>,
    ) -> Result<(Vec<Arg>, Option<TenantId>), DomainError> {
        let tenant = match owner {
            TokenOwner::Tenant(name) => Some(self.tenant_id(conn, name).await?),
            TokenOwner::Operator => None,
        };
        let args = vec![text(owner.kind().as_str()), text(tenant.as_ref().map_or("", TenantId::as_str))];
        Ok((args, tenant))
    }
}

async fn insert_token(
    conn: &mut AnyConnection,
    kind: TokenKind,
    tenant: Option<&TenantId>,
    token: &NewToken,
) -> Result<(), DomainError> {
    bound(
        "INSERT INTO tokens (id, kind, tenant_id, name, secret_hash, scopes, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        vec![
            text(token.id.as_str()),
            text(kind.as_str()),
            opt_text(tenant.map(TenantId::as_str)),
            opt_text(token.name.as_deref()),
            text(token.hash.as_str()),
            Arg::Text(token.scopes.to_string()),
            Arg::Int(now_micros()),
            token.expires_at.map_or(Arg::NullInt, Arg::Int),
        ],
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[async_trait]
impl TokenStore for SqlStore {
    async fn add_token(&self, owner: TokenOwner<'_>, token: NewToken) -> Result<(), DomainError> {
        let mut tx = self.begin_write().await?;
        let (_, tenant) = self.owner_args(&mut tx, owner).await?;
        insert_token(&mut tx, owner.kind(), tenant.as_ref(), &token).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn regenerate_tokens(
        &self,
        tenant: &TenantName,
        token: NewToken,
        revoke_others_at: i64,
    ) -> Result<(), DomainError> {
        let mut tx = self.begin_write().await?;
        let tenant_id = self.tenant_id(&mut tx, tenant).await?;
        bound(
            "UPDATE tokens SET revoked_at = $2 WHERE kind = 'tenant' AND tenant_id = $1 \
             AND (revoked_at IS NULL OR revoked_at > $2)",
            vec![text(tenant_id.as_str()), Arg::Int(revoke_others_at)],
        )
        .execute(&mut *tx)
        .await?;
        insert_token(&mut tx, TokenKind::Tenant, Some(&tenant_id), &token).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_token(&self, owner: TokenOwner<'_>, id: &TokenId) -> Result<(), DomainError> {
        let mut tx = self.begin_write().await?;
        let (mut args, _) = self.owner_args(&mut tx, owner).await?;
        args.push(text(id.as_str()));
        let exists = bound(&format!("SELECT 1 AS one FROM tokens WHERE {OWNER_CONDITION} AND id = $3"), args.clone())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(DomainError::NotFound("token"));
        }
        // Revoking now also cuts short the grace period of a regenerated token.
        args.push(Arg::Int(now_micros()));
        let sql = format!(
            "UPDATE tokens SET revoked_at = $4 WHERE {OWNER_CONDITION} AND id = $3 \
             AND (revoked_at IS NULL OR revoked_at > $4)"
        );
        bound(&sql, args).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_tokens(&self, owner: TokenOwner<'_>) -> Result<Vec<TokenInfo>, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let (args, _) = self.owner_args(&mut conn, owner).await?;
        let sql = format!(
            "SELECT id, name, scopes, created_at, expires_at, revoked_at, last_used_at FROM tokens \
             WHERE {OWNER_CONDITION} ORDER BY created_at, id"
        );
        let rows = bound(&sql, args).fetch_all(&mut *conn).await?;
        rows.iter()
            .map(|row| {
                Ok(TokenInfo {
                    id: token_id(row)?,
                    name: row.try_get("name")?,
                    scopes: scopes(row)?,
                    created_at: row.try_get("created_at")?,
                    validity: validity(row)?,
                    last_used_at: row.try_get("last_used_at")?,
                })
            })
            .collect()
    }

    async fn token_for_auth(&self, id: &TokenId) -> Result<Option<StoredToken>, DomainError> {
        let sql = format!(
            "SELECT t.id, t.kind, t.secret_hash, t.scopes, t.expires_at, t.revoked_at, {TENANT_COLUMNS} \
             FROM tokens t LEFT JOIN tenants n ON n.id = t.tenant_id WHERE t.id = $1"
        );
        let Some(row) = bound(&sql, vec![text(id.as_str())]).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let kind: String = row.try_get("kind")?;
        let kind: TokenKind = kind.parse().map_err(|_| DomainError::internal("stored token kind is unknown"))?;
        let tenant = match kind {
            TokenKind::Tenant => Some(tenant_from_row(&row)?),
            TokenKind::Operator => None,
        };
        Ok(Some(StoredToken {
            id: token_id(&row)?,
            kind,
            tenant,
            hash: SecretHash::from_stored(row.try_get("secret_hash")?),
            scopes: scopes(&row)?,
            validity: validity(&row)?,
        }))
    }

    async fn record_token_use(&self, uses: &[(TokenId, i64)]) -> Result<(), DomainError> {
        if uses.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for (id, at) in uses {
            bound(
                "UPDATE tokens SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
                vec![text(id.as_str()), Arg::Int(*at)],
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
