//! OAuth clients, their secrets and access tokens.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow};
use token::oauth::AccessTokenHash;
use token::{Scopes, SecretHash, TokenId, Validity};

use super::statement::{Bind, Statement};
use super::tenants::{tenant_from_row, TENANT_COLUMNS};
use super::tokens::{stored_id, stored_scopes};
use super::{Dialect, SqlStore};
use crate::oauth::{
    earliest, ClientCredential, ClientSecretInfo, Federation, NewAccessToken, NewClientSecret, NewOAuthClient,
    OAuthClientInfo, StoredAccessToken, StoredClientSecret, StoredOAuthClient,
};
use crate::store::OAuthStore;
use crate::time_util::now_micros;
use crate::{DomainError, Entity, TenantId, TenantName};

fn oauth_id(id: &str) -> Result<TokenId, DomainError> {
    stored_id(id, "OAuth")
}

fn scopes(scopes: &str) -> Result<Scopes, DomainError> {
    stored_scopes(scopes, "OAuth")
}

/// A client's federation columns; all set, or `issuer` unset for a client with secrets.
#[derive(Debug, FromRow)]
struct FederationColumns {
    issuer: Option<String>,
    subject: Option<String>,
    audience: Option<String>,
    jwks_url: Option<String>,
}

impl FederationColumns {
    fn federation(self) -> Result<Option<Federation>, DomainError> {
        let Some(issuer) = self.issuer else { return Ok(None) };
        match (self.subject, self.audience, self.jwks_url) {
            (Some(subject), Some(audience), Some(jwks_url)) => {
                Ok(Some(Federation { issuer, subject, audience, jwks_url }))
            }
            _ => Err(DomainError::internal("stored OAuth federation is incomplete")),
        }
    }
}

const CLIENT_COLUMNS: &str = "c.id, c.scopes, c.expires_at, c.revoked_at, c.issuer, c.subject, c.audience, c.jwks_url";

/// A client as [`CLIENT_COLUMNS`] reads it (its tenant is read apart).
#[derive(Debug, FromRow)]
struct ClientRow {
    id: String,
    scopes: String,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    #[sqlx(flatten)]
    federation: FederationColumns,
}

fn client_from_row(row: &AnyRow) -> Result<StoredOAuthClient, DomainError> {
    let client = ClientRow::from_row(row)?;
    Ok(StoredOAuthClient {
        id: oauth_id(&client.id)?,
        tenant: tenant_from_row(row)?,
        scopes: scopes(&client.scopes)?,
        validity: Validity { expires_at: client.expires_at, revoked_at: client.revoked_at },
        federation: client.federation.federation()?,
    })
}

/// A client as listed.
#[derive(Debug, FromRow)]
struct ListedClientRow {
    id: String,
    name: Option<String>,
    scopes: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    #[sqlx(flatten)]
    federation: FederationColumns,
}

/// A client secret as listed.
#[derive(Debug, FromRow)]
struct ListedSecretRow {
    id: String,
    client_id: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
}

#[derive(Debug, FromRow)]
struct SecretRow {
    id: String,
    client_id: String,
    secret_hash: String,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
}

/// An access token with its client's and secret's validity (its tenant is read apart).
#[derive(Debug, FromRow)]
struct AccessTokenRow {
    id: String,
    client_id: String,
    token_hash: String,
    scopes: String,
    expires_at: i64,
    client_expires_at: Option<i64>,
    client_revoked_at: Option<i64>,
    secret_expires_at: Option<i64>,
    secret_revoked_at: Option<i64>,
}

async fn insert_secret(
    dialect: Dialect,
    conn: &mut AnyConnection,
    client: &TokenId,
    secret: &NewClientSecret,
    expires_at: Option<i64>,
) -> Result<(), DomainError> {
    Statement::new(dialect)
        .sql("INSERT INTO oauth_client_secrets (id, client_id, secret_hash, created_at, expires_at) VALUES ")
        .row([
            secret.id.as_str().into_arg(),
            client.as_str().into_arg(),
            secret.hash.as_str().into_arg(),
            now_micros().into_arg(),
            expires_at.into_arg(),
        ])
        .query()
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl SqlStore {
    /// Ok when `client` is a client of `tenant`; whether it is federated.
    async fn client_of(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        client: &TokenId,
    ) -> Result<bool, DomainError> {
        let (issuer,): (Option<String>,) = Statement::new(self.dialect)
            .sql("SELECT issuer FROM oauth_clients WHERE tenant_id = ")
            .bind(tenant.as_str())
            .sql(" AND id = ")
            .bind(client.as_str())
            .query_as()
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(DomainError::NotFound(Entity::OAuthClient))?;
        Ok(issuer.is_some())
    }

    /// Live OAuth clients of a tenant, for the readiness check.
    pub(super) async fn live_oauth_clients(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        now: i64,
    ) -> Result<u64, DomainError> {
        let (n,): (i64,) = Statement::new(self.dialect)
            .sql("SELECT COUNT(*) AS n FROM oauth_clients WHERE tenant_id = ")
            .bind(tenant.as_str())
            .sql(" AND (revoked_at IS NULL OR revoked_at > ")
            .bind(now)
            .sql(") AND (expires_at IS NULL OR expires_at > ")
            .bind(now)
            .sql(")")
            .query_as()
            .fetch_one(&mut *conn)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[async_trait]
impl OAuthStore for SqlStore {
    #[tracing::instrument(name = "store.add_oauth_client", skip_all, fields(tenant = %tenant))]
    async fn add_oauth_client(&self, tenant: &TenantName, client: NewOAuthClient) -> Result<(), DomainError> {
        let mut tx = self.begin_write().await?;
        let tenant_id = self.tenant_id(&mut tx, tenant).await?;
        let federation = match &client.credential {
            ClientCredential::Federated(f) => Some(f),
            ClientCredential::Secret(_) => None,
        };
        let field = |get: fn(&Federation) -> &str| federation.map(get);
        Statement::new(self.dialect)
            .sql(
                "INSERT INTO oauth_clients (id, tenant_id, name, scopes, created_at, expires_at, issuer, subject, \
                 audience, jwks_url) VALUES ",
            )
            .row([
                client.id.as_str().into_arg(),
                tenant_id.as_str().into_arg(),
                client.name.as_deref().into_arg(),
                client.scopes.to_string().into_arg(),
                now_micros().into_arg(),
                client.expires_at.into_arg(),
                field(|f| &f.issuer).into_arg(),
                field(|f| &f.subject).into_arg(),
                field(|f| &f.audience).into_arg(),
                field(|f| &f.jwks_url).into_arg(),
            ])
            .query()
            .execute(&mut *tx)
            .await?;
        if let ClientCredential::Secret(secret) = &client.credential {
            insert_secret(self.dialect, &mut tx, &client.id, secret, client.expires_at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store.list_oauth_clients", skip_all, fields(tenant = %tenant))]
    async fn list_oauth_clients(&self, tenant: &TenantName) -> Result<Vec<OAuthClientInfo>, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let tenant_id = self.tenant_id(&mut conn, tenant).await?;
        let clients: Vec<ListedClientRow> = Statement::new(self.dialect)
            .sql(
                "SELECT id, name, scopes, created_at, expires_at, revoked_at, issuer, subject, audience, jwks_url \
                 FROM oauth_clients WHERE tenant_id = ",
            )
            .bind(tenant_id.as_str())
            .sql(" ORDER BY created_at, id")
            .query_as()
            .fetch_all(&mut *conn)
            .await?;
        let secrets: Vec<ListedSecretRow> = Statement::new(self.dialect)
            .sql(
                "SELECT s.id, s.client_id, s.created_at, s.expires_at, s.revoked_at FROM oauth_client_secrets s \
                 JOIN oauth_clients c ON c.id = s.client_id WHERE c.tenant_id = ",
            )
            .bind(tenant_id.as_str())
            .sql(" ORDER BY s.created_at, s.id")
            .query_as()
            .fetch_all(&mut *conn)
            .await?;
        let mut out = Vec::with_capacity(clients.len());
        for row in clients {
            let id = oauth_id(&row.id)?;
            let credential = match row.federation.federation()? {
                Some(f) => ClientCredential::Federated(f),
                None => ClientCredential::Secret(
                    secrets
                        .iter()
                        .filter(|s| s.client_id == row.id)
                        .map(|s| {
                            Ok(ClientSecretInfo {
                                id: oauth_id(&s.id)?,
                                created_at: s.created_at,
                                validity: Validity { expires_at: s.expires_at, revoked_at: s.revoked_at },
                            })
                        })
                        .collect::<Result<_, DomainError>>()?,
                ),
            };
            out.push(OAuthClientInfo {
                id,
                name: row.name,
                scopes: scopes(&row.scopes)?,
                created_at: row.created_at,
                validity: Validity { expires_at: row.expires_at, revoked_at: row.revoked_at },
                credential,
            });
        }
        Ok(out)
    }

    #[tracing::instrument(name = "store.revoke_oauth_client", skip_all, fields(tenant = %tenant, client = %id))]
    async fn revoke_oauth_client(&self, tenant: &TenantName, id: &TokenId) -> Result<(), DomainError> {
        let mut tx = self.begin_write().await?;
        let tenant_id = self.tenant_id(&mut tx, tenant).await?;
        self.client_of(&mut tx, &tenant_id, id).await?;
        let now = now_micros();
        Statement::new(self.dialect)
            .sql("UPDATE oauth_clients SET revoked_at = ")
            .bind(now)
            .sql(" WHERE id = ")
            .bind(id.as_str())
            .sql(" AND (revoked_at IS NULL OR revoked_at > ")
            .bind(now)
            .sql(")")
            .query()
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store.rotate_client_secret", skip_all, fields(tenant = %tenant, client = %client))]
    async fn rotate_client_secret(
        &self,
        tenant: &TenantName,
        client: &TokenId,
        secret: NewClientSecret,
        expires_at: Option<i64>,
        revoke_others_at: i64,
    ) -> Result<(), DomainError> {
        let mut tx = self.begin_write().await?;
        let tenant_id = self.tenant_id(&mut tx, tenant).await?;
        if self.client_of(&mut tx, &tenant_id, client).await? {
            return Err(DomainError::Conflict(format!(
                "OAuth client {client} is federated: it has no secret to rotate"
            )));
        }
        let live = Statement::new(self.dialect)
            .sql("SELECT revoked_at FROM oauth_clients WHERE id = ")
            .bind(client.as_str())
            .sql(" AND (revoked_at IS NULL OR revoked_at > ")
            .bind(now_micros())
            .sql(")")
            .query()
            .fetch_optional(&mut *tx)
            .await?;
        if live.is_none() {
            return Err(DomainError::Conflict(format!("OAuth client {client} is revoked")));
        }
        Statement::new(self.dialect)
            .sql("UPDATE oauth_client_secrets SET revoked_at = ")
            .bind(revoke_others_at)
            .sql(" WHERE client_id = ")
            .bind(client.as_str())
            .sql(" AND (revoked_at IS NULL OR revoked_at > ")
            .bind(revoke_others_at)
            .sql(")")
            .query()
            .execute(&mut *tx)
            .await?;
        insert_secret(self.dialect, &mut tx, client, &secret, expires_at).await?;
        // The client lives as long as its newest secret; older ones keep their own expiry.
        Statement::new(self.dialect)
            .sql("UPDATE oauth_clients SET expires_at = ")
            .bind(expires_at)
            .sql(" WHERE id = ")
            .bind(client.as_str())
            .query()
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store.oauth_client_for_auth", skip_all, fields(client = %id))]
    async fn oauth_client_for_auth(&self, id: &TokenId) -> Result<Option<StoredOAuthClient>, DomainError> {
        let row = Statement::new(self.dialect)
            .sql(&format!(
                "SELECT {CLIENT_COLUMNS}, {TENANT_COLUMNS} FROM oauth_clients c JOIN tenants n ON n.id = c.tenant_id \
                 WHERE c.id = "
            ))
            .bind(id.as_str())
            .query()
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    #[tracing::instrument(name = "store.federated_clients_for_auth", skip_all, fields(tenant = %tenant))]
    async fn federated_clients_for_auth(
        &self,
        tenant: &TenantName,
        issuer: &str,
        subject: &str,
    ) -> Result<Vec<StoredOAuthClient>, DomainError> {
        let rows = Statement::new(self.dialect)
            .sql(&format!(
                "SELECT {CLIENT_COLUMNS}, {TENANT_COLUMNS} FROM oauth_clients c JOIN tenants n ON n.id = c.tenant_id \
                 WHERE n.name = "
            ))
            .bind(tenant.as_str())
            .sql(" AND c.issuer = ")
            .bind(issuer)
            .sql(" AND c.subject = ")
            .bind(subject)
            .sql(" ORDER BY c.created_at, c.id")
            .query()
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(client_from_row).collect()
    }

    #[tracing::instrument(name = "store.client_secret_for_auth", skip_all, fields(token = %id))]
    async fn client_secret_for_auth(&self, id: &TokenId) -> Result<Option<StoredClientSecret>, DomainError> {
        let row: Option<SecretRow> = Statement::new(self.dialect)
            .sql("SELECT id, client_id, secret_hash, expires_at, revoked_at FROM oauth_client_secrets WHERE id = ")
            .bind(id.as_str())
            .query_as()
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(StoredClientSecret {
                id: oauth_id(&row.id)?,
                client_id: oauth_id(&row.client_id)?,
                hash: SecretHash::from_stored(row.secret_hash),
                validity: Validity { expires_at: row.expires_at, revoked_at: row.revoked_at },
            })
        })
        .transpose()
    }

    #[tracing::instrument(name = "store.add_access_token", skip_all)]
    async fn add_access_token(&self, token: NewAccessToken) -> Result<(), DomainError> {
        let mut tx = self.begin_write().await?;
        let now = now_micros();
        Statement::new(self.dialect)
            .sql("DELETE FROM oauth_access_tokens WHERE client_id = ")
            .bind(token.client_id.as_str())
            .sql(" AND expires_at <= ")
            .bind(now)
            .query()
            .execute(&mut *tx)
            .await?;
        Statement::new(self.dialect)
            .sql(
                "INSERT INTO oauth_access_tokens (id, client_id, secret_id, token_hash, scopes, created_at, expires_at) \
                 VALUES ",
            )
            .row([
                token.id.as_str().into_arg(),
                token.client_id.as_str().into_arg(),
                token.secret_id.as_ref().map(TokenId::as_str).into_arg(),
                token.hash.as_str().into_arg(),
                token.scopes.to_string().into_arg(),
                now.into_arg(),
                token.expires_at.into_arg(),
            ])
            .query()
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store.access_token_for_auth", skip_all, fields(token = %id))]
    async fn access_token_for_auth(&self, id: &TokenId) -> Result<Option<StoredAccessToken>, DomainError> {
        // One read by primary key, joined by primary keys (planned once per lookup connection):
        // the client's and the secret's revocation are seen on every request, on every replica.
        let statement = Statement::new(self.dialect)
            .sql(&format!(
                "SELECT a.id, a.client_id, a.token_hash, a.scopes, a.expires_at, \
                 c.expires_at AS client_expires_at, c.revoked_at AS client_revoked_at, \
                 s.expires_at AS secret_expires_at, s.revoked_at AS secret_revoked_at, {TENANT_COLUMNS} \
                 FROM oauth_access_tokens a JOIN oauth_clients c ON c.id = a.client_id \
                 JOIN tenants n ON n.id = c.tenant_id LEFT JOIN oauth_client_secrets s ON s.id = a.secret_id \
                 WHERE a.id = "
            ))
            .bind(id.as_str());
        let mut conn = self.lookup_connection().await?;
        let Some(row) = statement.query().fetch_optional(&mut *conn).await? else {
            return Ok(None);
        };
        let token = AccessTokenRow::from_row(&row)?;
        let expires_at = earliest(Some(token.expires_at), earliest(token.client_expires_at, token.secret_expires_at));
        let revoked_at = earliest(token.client_revoked_at, token.secret_revoked_at);
        Ok(Some(StoredAccessToken {
            id: oauth_id(&token.id)?,
            client_id: oauth_id(&token.client_id)?,
            tenant: tenant_from_row(&row)?,
            hash: AccessTokenHash::from_stored(token.token_hash),
            scopes: scopes(&token.scopes)?,
            validity: Validity { expires_at, revoked_at },
        }))
    }
}
