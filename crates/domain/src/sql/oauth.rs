//! OAuth clients, their secrets and access tokens.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use token::oauth::AccessTokenHash;
use token::{Scopes, SecretHash, TokenId, Validity};

use super::filter::Arg;
use super::tenants::{tenant_from_row, TENANT_COLUMNS};
use super::{bound, opt_text, text, SqlStore};
use crate::oauth::{
    earliest, ClientCredential, ClientSecretInfo, Federation, NewAccessToken, NewClientSecret, NewOAuthClient,
    OAuthClientInfo, StoredAccessToken, StoredClientSecret, StoredOAuthClient,
};
use crate::store::OAuthStore;
use crate::time_util::now_micros;
use crate::{DomainError, TenantId, TenantName};

fn id_column(row: &AnyRow, column: &str) -> Result<TokenId, DomainError> {
    let id: String = row.try_get(column)?;
    TokenId::parse(&id).map_err(|_| DomainError::internal("stored OAuth id is malformed"))
}

fn scopes(row: &AnyRow) -> Result<Scopes, DomainError> {
    let scopes: String = row.try_get("scopes")?;
    Scopes::parse(&scopes).map_err(|_| DomainError::internal("stored OAuth scopes are malformed"))
}

fn federation(row: &AnyRow) -> Result<Option<Federation>, DomainError> {
    let issuer: Option<String> = row.try_get("issuer")?;
    let Some(issuer) = issuer else { return Ok(None) };
    Ok(Some(Federation {
        issuer,
        subject: row.try_get("subject")?,
        audience: row.try_get("audience")?,
        jwks_url: row.try_get("jwks_url")?,
    }))
}

const CLIENT_COLUMNS: &str = "c.id, c.scopes, c.expires_at, c.revoked_at, c.issuer, c.subject, c.audience, c.jwks_url";

fn client_from_row(row: &AnyRow) -> Result<StoredOAuthClient, DomainError> {
    Ok(StoredOAuthClient {
        id: id_column(row, "id")?,
        tenant: tenant_from_row(row)?,
        scopes: scopes(row)?,
        validity: Validity { expires_at: row.try_get("expires_at")?, revoked_at: row.try_get("revoked_at")? },
        federation: federation(row)?,
    })
}

async fn insert_secret(
    conn: &mut AnyConnection,
    client: &TokenId,
    secret: &NewClientSecret,
    expires_at: Option<i64>,
) -> Result<(), DomainError> {
    bound(
        "INSERT INTO oauth_client_secrets (id, client_id, secret_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
        vec![
            text(secret.id.as_str()),
            text(client.as_str()),
            text(secret.hash.as_str()),
            Arg::Int(now_micros()),
            expires_at.map_or(Arg::NullInt, Arg::Int),
        ],
    )
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
        let row = bound(
            "SELECT issuer FROM oauth_clients WHERE tenant_id = $1 AND id = $2",
            vec![text(tenant.as_str()), text(client.as_str())],
        )
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(DomainError::NotFound("OAuth client"))?;
        Ok(row.try_get::<Option<String>, _>("issuer")?.is_some())
    }

    /// Live OAuth clients of a tenant, for the readiness check.
    pub(super) async fn live_oauth_clients(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        now: i64,
    ) -> Result<u64, DomainError> {
        let row = bound(
            "SELECT COUNT(*) AS n FROM oauth_clients WHERE tenant_id = $1 \
             AND (revoked_at IS NULL OR revoked_at > $2) AND (expires_at IS NULL OR expires_at > $2)",
            vec![text(tenant.as_str()), Arg::Int(now)],
        )
        .fetch_one(&mut *conn)
        .await?;
        Ok(u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0))
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
        let field = |get: fn(&Federation) -> &str| opt_text(federation.map(get));
        bound(
            "INSERT INTO oauth_clients (id, tenant_id, name, scopes, created_at, expires_at, issuer, subject, \
             audience, jwks_url) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            vec![
                text(client.id.as_str()),
                text(tenant_id.as_str()),
                opt_text(client.name.as_deref()),
                Arg::Text(client.scopes.to_string()),
                Arg::Int(now_micros()),
                client.expires_at.map_or(Arg::NullInt, Arg::Int),
                field(|f| &f.issuer),
                field(|f| &f.subject),
                field(|f| &f.audience),
                field(|f| &f.jwks_url),
            ],
        )
        .execute(&mut *tx)
        .await?;
        if let ClientCredential::Secret(secret) = &client.credential {
            insert_secret(&mut tx, &client.id, secret, client.expires_at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store.list_oauth_clients", skip_all, fields(tenant = %tenant))]
    async fn list_oauth_clients(&self, tenant: &TenantName) -> Result<Vec<OAuthClientInfo>, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let tenant_id = self.tenant_id(&mut conn, tenant).await?;
        let clients = bound(
            "SELECT id, name, scopes, created_at, expires_at, revoked_at, issuer, subject, audience, jwks_url \
             FROM oauth_clients WHERE tenant_id = $1 ORDER BY created_at, id",
            vec![text(tenant_id.as_str())],
        )
        .fetch_all(&mut *conn)
        .await?;
        let secrets = bound(
            "SELECT s.id, s.client_id, s.created_at, s.expires_at, s.revoked_at FROM oauth_client_secrets s \
             JOIN oauth_clients c ON c.id = s.client_id WHERE c.tenant_id = $1 ORDER BY s.created_at, s.id",
            vec![text(tenant_id.as_str())],
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(clients.len());
        for row in &clients {
            let id = id_column(row, "id")?;
            let credential = match federation(row)? {
                Some(f) => ClientCredential::Federated(f),
                None => ClientCredential::Secret(
                    secrets
                        .iter()
                        .filter(|s| s.try_get::<String, _>("client_id").is_ok_and(|c| c == id.as_str()))
                        .map(|s| {
                            Ok(ClientSecretInfo {
                                id: id_column(s, "id")?,
                                created_at: s.try_get("created_at")?,
                                validity: Validity {
                                    expires_at: s.try_get("expires_at")?,
                                    revoked_at: s.try_get("revoked_at")?,
                                },
                            })
                        })
                        .collect::<Result<_, DomainError>>()?,
                ),
            };
            out.push(OAuthClientInfo {
                id,
                name: row.try_get("name")?,
                scopes: scopes(row)?,
                created_at: row.try_get("created_at")?,
                validity: Validity { expires_at: row.try_get("expires_at")?, revoked_at: row.try_get("revoked_at")? },
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
        bound(
            "UPDATE oauth_clients SET revoked_at = $2 WHERE id = $1 AND (revoked_at IS NULL OR revoked_at > $2)",
            vec![text(id.as_str()), Arg::Int(now_micros())],
        )
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
        let live = bound(
            "SELECT revoked_at FROM oauth_clients WHERE id = $1 AND (revoked_at IS NULL OR revoked_at > $2)",
            vec![text(client.as_str()), Arg::Int(now_micros())],
        )
        .fetch_optional(&mut *tx)
        .await?;
        if live.is_none() {
            return Err(DomainError::Conflict(format!("OAuth client {client} is revoked")));
        }
        bound(
            "UPDATE oauth_client_secrets SET revoked_at = $2 WHERE client_id = $1 \
             AND (revoked_at IS NULL OR revoked_at > $2)",
            vec![text(client.as_str()), Arg::Int(revoke_others_at)],
        )
        .execute(&mut *tx)
        .await?;
        insert_secret(&mut tx, client, &secret, expires_at).await?;
        // The client lives as long as its newest secret; older ones keep their own expiry.
        bound(
            "UPDATE oauth_clients SET expires_at = $2 WHERE id = $1",
            vec![text(client.as_str()), expires_at.map_or(Arg::NullInt, Arg::Int)],
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store.oauth_client_for_auth", skip_all, fields(client = %id))]
    async fn oauth_client_for_auth(&self, id: &TokenId) -> Result<Option<StoredOAuthClient>, DomainError> {
        let sql = format!(
            "SELECT {CLIENT_COLUMNS}, {TENANT_COLUMNS} FROM oauth_clients c JOIN tenants n ON n.id = c.tenant_id \
             WHERE c.id = $1"
        );
        let row = bound(&sql, vec![text(id.as_str())]).fetch_optional(&self.pool).await?;
        row.as_ref().map(client_from_row).transpose()
    }

    #[tracing::instrument(name = "store.federated_clients_for_auth", skip_all, fields(tenant = %tenant))]
    async fn federated_clients_for_auth(
        &self,
        tenant: &TenantName,
        issuer: &str,
        subject: &str,
    ) -> Result<Vec<StoredOAuthClient>, DomainError> {
        let sql = format!(
            "SELECT {CLIENT_COLUMNS}, {TENANT_COLUMNS} FROM oauth_clients c JOIN tenants n ON n.id = c.tenant_id \
             WHERE n.name = $1 AND c.issuer = $2 AND c.subject = $3 ORDER BY c.created_at, c.id"
        );
        let rows = bound(&sql, vec![text(tenant.as_str()), text(issuer), text(subject)]).fetch_all(&self.pool).await?;
        rows.iter().map(client_from_row).collect()
    }

    #[tracing::instrument(name = "store.client_secret_for_auth", skip_all, fields(token = %id))]
    async fn client_secret_for_auth(&self, id: &TokenId) -> Result<Option<StoredClientSecret>, DomainError> {
        let row = bound(
            "SELECT id, client_id, secret_hash, expires_at, revoked_at FROM oauth_client_secrets WHERE id = $1",
            vec![text(id.as_str())],
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(StoredClientSecret {
                id: id_column(&row, "id")?,
                client_id: id_column(&row, "client_id")?,
                hash: SecretHash::from_stored(row.try_get("secret_hash")?),
                validity: Validity { expires_at: row.try_get("expires_at")?, revoked_at: row.try_get("revoked_at")? },
            })
        })
        .transpose()
    }

    #[tracing::instrument(name = "store.add_access_token", skip_all)]
    async fn add_access_token(&self, token: NewAccessToken) -> Result<(), DomainError> {
        let mut tx = self.begin_write().await?;
        let now = now_micros();
        bound(
            "DELETE FROM oauth_access_tokens WHERE client_id = $1 AND expires_at <= $2",
            vec![text(token.client_id.as_str()), Arg::Int(now)],
        )
        .execute(&mut *tx)
        .await?;
        bound(
            "INSERT INTO oauth_access_tokens (id, client_id, secret_id, token_hash, scopes, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![
                text(token.id.as_str()),
                text(token.client_id.as_str()),
                opt_text(token.secret_id.as_ref().map(TokenId::as_str)),
                text(token.hash.as_str()),
                Arg::Text(token.scopes.to_string()),
                Arg::Int(now),
                Arg::Int(token.expires_at),
            ],
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store.access_token_for_auth", skip_all, fields(token = %id))]
    async fn access_token_for_auth(&self, id: &TokenId) -> Result<Option<StoredAccessToken>, DomainError> {
        // One read by primary key, joined by primary keys: the client's and the secret's
        // revocation are seen on every request, on every replica.
        let sql = format!(
            "SELECT a.id, a.client_id, a.token_hash, a.scopes, a.expires_at, \
             c.expires_at AS client_expires_at, c.revoked_at AS client_revoked_at, \
             s.expires_at AS secret_expires_at, s.revoked_at AS secret_revoked_at, {TENANT_COLUMNS} \
             FROM oauth_access_tokens a JOIN oauth_clients c ON c.id = a.client_id \
             JOIN tenants n ON n.id = c.tenant_id LEFT JOIN oauth_client_secrets s ON s.id = a.secret_id \
             WHERE a.id = $1"
        );
        let Some(row) = bound(&sql, vec![text(id.as_str())]).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let expires_at: i64 = row.try_get("expires_at")?;
        let expires_at =
            earliest(Some(expires_at), earliest(row.try_get("client_expires_at")?, row.try_get("secret_expires_at")?));
        let revoked_at = earliest(row.try_get("client_revoked_at")?, row.try_get("secret_revoked_at")?);
        Ok(Some(StoredAccessToken {
            id: id_column(&row, "id")?,
            client_id: id_column(&row, "client_id")?,
            tenant: tenant_from_row(&row)?,
            hash: AccessTokenHash::from_stored(row.try_get("token_hash")?),
            scopes: scopes(&row)?,
            validity: Validity { expires_at, revoked_at },
        }))
    }
}
