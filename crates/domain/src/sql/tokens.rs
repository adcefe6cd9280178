//! Tenant and operator tokens: one table, told apart by `kind`.

use async_trait::async_trait;
use sqlx::{AnyConnection, FromRow};
use token::{Scopes, SecretHash, TokenId, TokenKind, Validity};

use super::statement::{Bind, Statement};
use super::tenants::{tenant_from_row, TENANT_COLUMNS};
use super::SqlStore;
use crate::store::{NewToken, StoredToken, TokenInfo, TokenOwner, TokenStore};
use crate::time_util::now_micros;
use crate::{DomainError, Entity, TenantId, TenantName};

/// A stored id of a token, OAuth client, secret or access token (`what` names it in the error).
pub(super) fn stored_id(id: &str, what: &str) -> Result<TokenId, DomainError> {
    TokenId::parse(id).map_err(|_| DomainError::internal(format!("stored {what} id is malformed")))
}

/// Stored scopes of a token or OAuth client (`what` names it in the error).
pub(super) fn stored_scopes(scopes: &str, what: &str) -> Result<Scopes, DomainError> {
    Scopes::parse(scopes).map_err(|_| DomainError::internal(format!("stored {what} scopes are malformed")))
}

fn token_id(id: &str) -> Result<TokenId, DomainError> {
    stored_id(id, "token")
}

fn scopes(scopes: &str) -> Result<Scopes, DomainError> {
    stored_scopes(scopes, "token")
}

/// A token as listed.
#[derive(Debug, FromRow)]
struct TokenRow {
    id: String,
    name: Option<String>,
    scopes: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    last_used_at: Option<i64>,
}

impl TryFrom<TokenRow> for TokenInfo {
    type Error = DomainError;

    fn try_from(row: TokenRow) -> Result<Self, DomainError> {
        Ok(TokenInfo {
            id: token_id(&row.id)?,
            name: row.name,
            scopes: scopes(&row.scopes)?,
            created_at: row.created_at,
            validity: Validity { expires_at: row.expires_at, revoked_at: row.revoked_at },
            last_used_at: row.last_used_at,
        })
    }
}

/// A token as authentication reads it (its tenant's columns are read apart: an operator token
/// has none).
#[derive(Debug, FromRow)]
struct AuthTokenRow {
    id: String,
    kind: String,
    secret_hash: String,
    scopes: String,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
}

/// Whose tokens a statement is about: `kind` and the tenant's id (`''` for operators).
struct OwnerCondition {
    kind: &'static str,
    tenant: Option<TenantId>,
}

impl OwnerCondition {
    /// Append `kind = … AND COALESCE(tenant_id, '') = …`.
    fn to(&self, statement: Statement) -> Statement {
        statement
            .sql("kind = ")
            .bind(self.kind)
            .sql(" AND COALESCE(tenant_id, '') = ")
            .bind(self.tenant.as_ref().map_or("", TenantId::as_str))
    }
}

impl SqlStore {
    /// The condition that selects `owner`'s tokens.
    async fn owner_condition(
        &self,
        conn: &mut AnyConnection,
        owner: TokenOwner<'_>,
    ) -> Result<OwnerCondition, DomainError> {
        let tenant = match owner {
            TokenOwner::Tenant(name) => Some(self.tenant_id(conn, name).await?),
            TokenOwner::Operator => None,
        };
        Ok(OwnerCondition { kind: owner.kind().as_str(), tenant })
    }

    async fn insert_token(
        &self,
        conn: &mut AnyConnection,
        kind: TokenKind,
        tenant: Option<&TenantId>,
        token: &NewToken,
    ) -> Result<(), DomainError> {
        Statement::new(self.dialect)
            .sql("INSERT INTO tokens (id, kind, tenant_id, name, secret_hash, scopes, created_at, expires_at) VALUES ")
            .row([
                token.id.as_str().into_arg(),
                kind.as_str().into_arg(),
                tenant.map(TenantId::as_str).into_arg(),
                token.name.as_deref().into_arg(),
                token.hash.as_str().into_arg(),
                token.scopes.to_string().into_arg(),
                now_micros().into_arg(),
                token.expires_at.into_arg(),
            ])
            .query()
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl TokenStore for SqlStore {
    #[tracing::instrument(name = "store.add_token", skip_all)]
    async fn add_token(&self, owner: TokenOwner<'_>, token: NewToken) -> Result<(), DomainError> {
        let mut tx = self.begin_write().await?;
        let owner_condition = self.owner_condition(&mut tx, owner).await?;
        self.insert_token(&mut tx, owner.kind(), owner_condition.tenant.as_ref(), &token).await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store.regenerate_tokens", skip_all, fields(tenant = %tenant))]
    async fn regenerate_tokens(
        &self,
        tenant: &TenantName,
        token: NewToken,
        revoke_others_at: i64,
    ) -> Result<(), DomainError> {
        let mut tx = self.begin_write().await?;
        let tenant_id = self.tenant_id(&mut tx, tenant).await?;
        Statement::new(self.dialect)
            .sql("UPDATE tokens SET revoked_at = ")
            .bind(revoke_others_at)
            .sql(" WHERE kind = 'tenant' AND tenant_id = ")
            .bind(tenant_id.as_str())
            .sql(" AND (revoked_at IS NULL OR revoked_at > ")
            .bind(revoke_others_at)
            .sql(")")
            .query()
            .execute(&mut *tx)
            .await?;
        self.insert_token(&mut tx, TokenKind::Tenant, Some(&tenant_id), &token).await?;
        tx.commit().await?;
        self.forget_token_records();
        Ok(())
    }

    #[tracing::instrument(name = "store.revoke_token", skip_all, fields(token = %id))]
    async fn revoke_token(&self, owner: TokenOwner<'_>, id: &TokenId) -> Result<(), DomainError> {
        let mut tx = self.begin_write().await?;
        let owner = self.owner_condition(&mut tx, owner).await?;
        let exists = owner
            .to(Statement::new(self.dialect).sql("SELECT 1 AS one FROM tokens WHERE "))
            .sql(" AND id = ")
            .bind(id.as_str())
            .query()
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(DomainError::NotFound(Entity::Token));
        }
        // Revoking now also cuts short the grace period of a regenerated token.
        let now = now_micros();
        owner
            .to(Statement::new(self.dialect).sql("UPDATE tokens SET revoked_at = ").bind(now).sql(" WHERE "))
            .sql(" AND id = ")
            .bind(id.as_str())
            .sql(" AND (revoked_at IS NULL OR revoked_at > ")
            .bind(now)
            .sql(")")
            .query()
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.forget_token_records();
        Ok(())
    }

    #[tracing::instrument(name = "store.list_tokens", skip_all)]
    async fn list_tokens(&self, owner: TokenOwner<'_>) -> Result<Vec<TokenInfo>, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let owner = self.owner_condition(&mut conn, owner).await?;
        let rows: Vec<TokenRow> = owner
            .to(Statement::new(self.dialect)
                .sql("SELECT id, name, scopes, created_at, expires_at, revoked_at, last_used_at FROM tokens WHERE "))
            .sql(" ORDER BY created_at, id")
            .query_as()
            .fetch_all(&mut *conn)
            .await?;
        rows.into_iter().map(TokenInfo::try_from).collect()
    }

    #[tracing::instrument(name = "store.token_for_auth", skip_all, fields(token = %id))]
    async fn token_for_auth(&self, id: &TokenId) -> Result<Option<StoredToken>, DomainError> {
        let records = self.token_records.as_deref();
        // Taken before the read: a change notified while it runs makes the record not count.
        let generation = records.and_then(|r| r.generation());
        if let Some(kept) = records.and_then(|r| r.get(id.as_str())) {
            return Ok(Some(kept));
        }
        let statement = Statement::new(self.dialect)
            .sql(&format!(
                "SELECT t.id, t.kind, t.secret_hash, t.scopes, t.expires_at, t.revoked_at, {TENANT_COLUMNS} \
                 FROM tokens t LEFT JOIN tenants n ON n.id = t.tenant_id WHERE t.id = "
            ))
            .bind(id.as_str());
        // By primary keys only: planned once per lookup connection.
        let mut conn = self.lookup_connection().await?;
        let Some(row) = statement.query().fetch_optional(&mut *conn).await? else {
            return Ok(None);
        };
        let token = AuthTokenRow::from_row(&row)?;
        let kind: TokenKind = token.kind.parse().map_err(|_| DomainError::internal("stored token kind is unknown"))?;
        let tenant = match kind {
            TokenKind::Tenant => Some(tenant_from_row(&row)?),
            TokenKind::Operator => None,
        };
        let stored = StoredToken {
            id: token_id(&token.id)?,
            kind,
            tenant,
            hash: SecretHash::from_stored(token.secret_hash),
            scopes: scopes(&token.scopes)?,
            validity: Validity { expires_at: token.expires_at, revoked_at: token.revoked_at },
        };
        if let (Some(records), Some(generation)) = (records, generation) {
            records.keep(id.as_str(), generation, stored.clone());
        }
        Ok(Some(stored))
    }

    #[tracing::instrument(name = "store.record_token_use", level = "debug", skip_all)]
    async fn record_token_use(&self, uses: &[(TokenId, i64)]) -> Result<(), DomainError> {
        if uses.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for (id, at) in uses {
            Statement::new(self.dialect)
                .sql("UPDATE tokens SET last_used_at = ")
                .bind(*at)
                .sql(" WHERE id = ")
                .bind(id.as_str())
                .sql(" AND (last_used_at IS NULL OR last_used_at < ")
                .bind(*at)
                .sql(")")
                .query()
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
