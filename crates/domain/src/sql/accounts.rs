//! Product accounts, and linking SCIM users to them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::filter::Arg;
use super::write::TenantWrite;
use super::{bound, json_ids, opt_text, text, SqlStore};
use crate::event::EventType;
use crate::link::{
    AccountId, AccountsRegistered, DuplicateEmails, LinkMatch, LinkedUser, ProductAccount, UserLookup,
    MAX_ACCOUNTS_PER_CALL,
};
use crate::store::AccountStore;
use crate::time_util::now_micros;
use crate::{DomainError, TenantName};

/// The link of a user after a write, for its events.
#[derive(Debug, Default)]
pub(super) struct UserLink {
    /// The account the user is linked to now.
    pub account: Option<String>,
    /// Set when this write linked it.
    pub linked_now: Option<LinkMatch>,
    /// Another user has the same linking email (the tenant allows that).
    pub duplicate_email: bool,
}

impl UserLink {
    /// The `user.linked` event of a write that linked the user.
    pub(super) fn event(&self, subject: Value) -> Option<Value> {
        let (account, matched) = (self.account.as_ref()?, self.linked_now?);
        Some(json!({"user": subject, "account": {"id": account, "matched": matched.as_str()}}))
    }
}

/// The event subject of a user: what a product needs to find or mirror its own record.
pub(super) fn user_subject(id: &str, data: &Value, account: Option<&str>) -> Value {
    let mut subject = json!({ "id": id });
    for key in ["userName", "externalId", "displayName", "active"] {
        if let Some(value) = data.get(key) {
            subject[key] = value.clone();
        }
    }
    if subject.get("active").is_none() {
        subject["active"] = Value::Bool(true);
    }
    if let Some(email) = crate::link::linking_email(data) {
        subject["email"] = Value::String(email);
    }
    if let Some(account) = account {
        subject["productAccountId"] = Value::String(account.to_owned());
    }
    subject
}

fn linked_user_from_row(row: &AnyRow) -> Result<LinkedUser, DomainError> {
    let data: String = row.try_get("data")?;
    let matched: Option<String> = row.try_get("account_matched")?;
    Ok(LinkedUser {
        id: row.try_get("id")?,
        data: serde_json::from_str(&data)
            .map_err(|e| DomainError::Internal("stored resource is not JSON".into(), Some(Box::new(e))))?,
        email: row.try_get("email_lower")?,
        account_id: row.try_get("account_id")?,
        matched: matched.as_deref().map(str::parse).transpose()?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl SqlStore {
    /// After a user was written: refuse or flag a duplicate linking email, and link the user to
    /// a product account if it is not linked yet and one matches. `email_changed`: whether this
    /// write gave the user its linking email (a create, or a change of it).
    pub(super) async fn link_user(
        &self,
        w: &mut TenantWrite,
        user_id: &str,
        data: &Value,
        email_changed: bool,
    ) -> Result<UserLink, DomainError> {
        let tenant = w.tenant.as_str().to_owned();
        let email = crate::link::linking_email(data);
        let external_id = data.get("externalId").and_then(Value::as_str).filter(|e| !e.is_empty());
        let mut link = UserLink::default();
        if let Some(email) = email.as_deref().filter(|_| email_changed) {
            link.duplicate_email = bound(
                "SELECT 1 AS one FROM users WHERE tenant_id = $1 AND email_lower = $2 AND id <> $3 LIMIT 1",
                vec![text(&tenant), text(email), text(user_id)],
            )
            .fetch_optional(&mut *w.tx)
            .await?
            .is_some();
            if link.duplicate_email && w.settings.duplicate_emails == DuplicateEmails::Refuse {
                return Err(DomainError::Conflict(format!(
                    "email `{email}` is already the email of another user in this tenant"
                )));
            }
        }
        let row =
            bound("SELECT account_id FROM users WHERE tenant_id = $1 AND id = $2", vec![text(&tenant), text(user_id)])
                .fetch_optional(&mut *w.tx)
                .await?;
        link.account = match row {
            Some(row) => row.try_get("account_id")?,
            None => None,
        };
        if link.account.is_some() || !w.settings.link_by.is_on() {
            return Ok(link);
        }
        let free = "NOT EXISTS (SELECT 1 FROM users l WHERE l.tenant_id = a.tenant_id AND l.account_id = a.id)";
        let mut candidates = Vec::new();
        if let Some(external_id) = external_id.filter(|_| w.settings.link_by.external_id) {
            candidates.push((LinkMatch::ExternalId, "a.external_id", external_id.to_owned()));
        }
        if let Some(email) = email.filter(|_| w.settings.link_by.email && !link.duplicate_email) {
            candidates.push((LinkMatch::Email, "a.email_lower", email));
        }
        for (matched, column, value) in candidates {
            let sql = format!(
                "SELECT a.id AS id FROM product_accounts a WHERE a.tenant_id = $1 AND {column} = $2 AND {free}"
            );
            let Some(row) = bound(&sql, vec![text(&tenant), text(&value)]).fetch_optional(&mut *w.tx).await? else {
                continue;
            };
            let account: String = row.try_get("id")?;
            bound(
                "UPDATE users SET account_id = $3, account_matched = $4 WHERE tenant_id = $1 AND id = $2",
                vec![text(&tenant), text(user_id), text(&account), text(matched.as_str())],
            )
            .execute(&mut *w.tx)
            .await?;
            link.account = Some(account);
            link.linked_now = Some(matched);
            break;
        }
        Ok(link)
    }

    /// Link unlinked users to the accounts `ids` where exactly one matches (externalId first);
    /// how many were linked.
    async fn link_registered(&self, w: &mut TenantWrite, ids: &[&str]) -> Result<u64, DomainError> {
        let tenant = w.tenant.as_str().to_owned();
        let by = w.settings.link_by;
        let mut pairs: Vec<(String, String, LinkMatch)> = Vec::new();
        let ids_param = self.dialect.json_array_param(2);
        let mut kinds = Vec::new();
        if by.external_id {
            kinds.push((LinkMatch::ExternalId, "u.external_id = a.external_id", ""));
        }
        if by.email {
            // An email two users share links neither.
            kinds.push((
                LinkMatch::Email,
                "u.email_lower = a.email_lower",
                " AND NOT EXISTS (SELECT 1 FROM users d WHERE d.tenant_id = u.tenant_id AND d.email_lower = u.email_lower AND d.id <> u.id)",
            ));
        }
        for (matched, on, extra) in kinds {
            let sql = format!(
                "SELECT u.id AS user_id, a.id AS account_id FROM product_accounts a \
                 JOIN users u ON u.tenant_id = a.tenant_id AND {on} \
                 WHERE a.tenant_id = $1 AND a.id IN {ids_param} AND u.account_id IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM users l WHERE l.tenant_id = a.tenant_id AND l.account_id = a.id){extra} \
                 ORDER BY a.id, u.id"
            );
            for row in bound(&sql, vec![text(&tenant), json_ids(ids)]).fetch_all(&mut *w.tx).await? {
                pairs.push((row.try_get("user_id")?, row.try_get("account_id")?, matched));
            }
        }
        // Each user and each account links once; externalId matches came first.
        let (mut users, mut accounts) = (BTreeSet::new(), BTreeSet::new());
        pairs.retain(|(user, account, _)| {
            let free = !users.contains(user) && !accounts.contains(account);
            if free {
                users.insert(user.clone());
                accounts.insert(account.clone());
            }
            free
        });
        if pairs.is_empty() {
            return Ok(0);
        }
        let user_ids: Vec<&str> = pairs.iter().map(|(u, _, _)| u.as_str()).collect();
        let sql = format!(
            "SELECT id, {} AS data FROM users u WHERE u.tenant_id = $1 AND u.id IN {ids_param}",
            self.dialect.data_column("u")
        );
        let mut data: HashMap<String, Value> = HashMap::new();
        for row in bound(&sql, vec![text(&tenant), json_ids(&user_ids)]).fetch_all(&mut *w.tx).await? {
            let json: String = row.try_get("data")?;
            data.insert(row.try_get("id")?, serde_json::from_str(&json).unwrap_or(Value::Null));
        }
        for (user, account, matched) in &pairs {
            bound(
                "UPDATE users SET account_id = $3, account_matched = $4 WHERE tenant_id = $1 AND id = $2",
                vec![text(&tenant), text(user), text(account), text(matched.as_str())],
            )
            .execute(&mut *w.tx)
            .await?;
            let subject = user_subject(user, data.get(user).unwrap_or(&Value::Null), Some(account));
            w.emit(
                EventType::UserLinked,
                json!({"user": subject, "account": {"id": account, "matched": matched.as_str()}}),
            );
        }
        Ok(u64::try_from(pairs.len()).unwrap_or(u64::MAX))
    }
}

#[async_trait]
impl AccountStore for SqlStore {
    #[tracing::instrument(name = "store.register_accounts", skip_all, fields(tenant = %tenant))]
    async fn register_accounts(
        &self,
        tenant: &TenantName,
        accounts: &[ProductAccount],
    ) -> Result<AccountsRegistered, DomainError> {
        let invalid = |detail: String| DomainError::Invalid(proto::Error::invalid_value(detail));
        if accounts.len() > MAX_ACCOUNTS_PER_CALL {
            return Err(invalid(format!(
                "{} accounts in one call; at most {MAX_ACCOUNTS_PER_CALL} are accepted",
                accounts.len()
            )));
        }
        if accounts.is_empty() {
            return Ok(AccountsRegistered::default());
        }
        // One account per id, email and external id within the call.
        let mut seen: BTreeMap<(&str, &str), &str> = BTreeMap::new();
        for account in accounts {
            let keys = [
                Some(("id", account.id.as_str())),
                account.email.as_deref().map(|e| ("email", e)),
                account.external_id.as_deref().map(|e| ("external id", e)),
            ];
            for (what, value) in keys.into_iter().flatten() {
                if let Some(other) = seen.insert((what, value), account.id.as_str()) {
                    return Err(invalid(format!(
                        "{what} `{value}` appears twice in this call (accounts `{other}` and `{}`)",
                        account.id
                    )));
                }
            }
        }
        let mut w = self.begin_tenant_write_by_name(tenant).await?;
        let tenant_id = w.tenant.as_str().to_owned();
        let ids: Vec<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
        let rows: Vec<Value> = accounts
            .iter()
            .map(|a| json!({"id": a.id.as_str(), "email": a.email, "external_id": a.external_id}))
            .collect();
        let rows = Arg::Text(Value::Array(rows).to_string());
        self.prefer_hash_joins(&mut w.tx, accounts.len()).await?;
        let j = self.dialect.json_accounts_param(2);
        let clash = format!(
            "SELECT j.id AS id, a.id AS other FROM {j} AS j JOIN product_accounts a ON a.tenant_id = $1 AND a.id <> j.id \
             AND (a.email_lower = j.email OR a.external_id = j.external_id) \
             WHERE a.id NOT IN (SELECT id FROM {j} AS k) LIMIT 1"
        );
        if let Some(row) = bound(&clash, vec![text(&tenant_id), rows.clone()]).fetch_optional(&mut *w.tx).await? {
            let (id, other): (String, String) = (row.try_get("id")?, row.try_get("other")?);
            return Err(DomainError::Conflict(format!(
                "account `{id}` has the email or external id of account `{other}`"
            )));
        }
        let existing = format!(
            "SELECT COUNT(*) AS n FROM product_accounts WHERE tenant_id = $1 AND id IN {}",
            self.dialect.json_array_param(2)
        );
        let existing: i64 =
            bound(&existing, vec![text(&tenant_id), json_ids(&ids)]).fetch_one(&mut *w.tx).await?.try_get("n")?;
        let existing = u64::try_from(existing).unwrap_or(0);
        // Clear the linking keys of the accounts being rewritten first, so two of them may swap
        // emails within one call without tripping the unique indexes mid-statement.
        let clear = format!(
            "UPDATE product_accounts SET email_lower = NULL, external_id = NULL WHERE tenant_id = $1 AND id IN {}",
            self.dialect.json_array_param(2)
        );
        bound(&clear, vec![text(&tenant_id), json_ids(&ids)]).execute(&mut *w.tx).await?;
        let upsert = format!(
            "INSERT INTO product_accounts (tenant_id, id, email_lower, external_id, created_at) \
             SELECT $1, j.id, j.email, j.external_id, $3 FROM {j} AS j WHERE TRUE \
             ON CONFLICT (tenant_id, id) DO UPDATE SET email_lower = excluded.email_lower, external_id = excluded.external_id"
        );
        bound(&upsert, vec![text(&tenant_id), rows, Arg::Int(now_micros())]).execute(&mut *w.tx).await.map_err(
            |e| {
                if crate::error::is_unique_violation(&e) {
                    DomainError::Conflict("an email or external id is registered for two accounts".into())
                } else {
                    e.into()
                }
            },
        )?;
        let linked = if w.settings.link_by.is_on() { self.link_registered(&mut w, &ids).await? } else { 0 };
        w.commit().await?;
        let total = u64::try_from(accounts.len()).unwrap_or(u64::MAX);
        Ok(AccountsRegistered { created: total - existing, updated: existing, linked })
    }

    #[tracing::instrument(name = "store.account", skip_all, fields(tenant = %tenant, account = %id))]
    async fn account(&self, tenant: &TenantName, id: &AccountId) -> Result<ProductAccount, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let tenant = self.tenant_id(&mut conn, tenant).await?;
        let row = bound(
            "SELECT a.id AS id, a.email_lower AS email_lower, a.external_id AS external_id, u.id AS user_id, \
             u.account_matched AS account_matched FROM product_accounts a \
             LEFT JOIN users u ON u.tenant_id = a.tenant_id AND u.account_id = a.id \
             WHERE a.tenant_id = $1 AND a.id = $2",
            vec![text(tenant.as_str()), text(id.as_str())],
        )
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(DomainError::NotFound(crate::Entity::Account))?;
        let matched: Option<String> = row.try_get("account_matched")?;
        Ok(ProductAccount {
            id: id.clone(),
            email: row.try_get("email_lower")?,
            external_id: row.try_get("external_id")?,
            user_id: row.try_get("user_id")?,
            matched: matched.as_deref().map(str::parse).transpose()?,
        })
    }

    #[tracing::instrument(name = "store.delete_account", skip_all, fields(tenant = %tenant, account = %id))]
    async fn delete_account(&self, tenant: &TenantName, id: &AccountId) -> Result<(), DomainError> {
        let mut w = self.begin_tenant_write_by_name(tenant).await?;
        let tenant_id = w.tenant.as_str().to_owned();
        let sql = format!(
            "SELECT u.id AS id, {} AS data FROM users u WHERE u.tenant_id = $1 AND u.account_id = $2",
            self.dialect.data_column("u")
        );
        let linked = bound(&sql, vec![text(&tenant_id), text(id.as_str())]).fetch_optional(&mut *w.tx).await?;
        let removed = bound(
            "DELETE FROM product_accounts WHERE tenant_id = $1 AND id = $2",
            vec![text(&tenant_id), text(id.as_str())],
        )
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        if removed == 0 {
            return Err(DomainError::NotFound(crate::Entity::Account));
        }
        if let Some(row) = linked {
            let user: String = row.try_get("id")?;
            let data: String = row.try_get("data")?;
            bound(
                "UPDATE users SET account_id = NULL, account_matched = NULL WHERE tenant_id = $1 AND id = $2",
                vec![text(&tenant_id), text(&user)],
            )
            .execute(&mut *w.tx)
            .await?;
            let data: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
            w.emit(
                EventType::UserUnlinked,
                json!({"user": user_subject(&user, &data, None), "account": {"id": id.as_str()}}),
            );
        }
        w.commit().await
    }

    #[tracing::instrument(name = "store.find_users", skip_all, fields(tenant = %tenant))]
    async fn find_users(&self, tenant: &TenantName, lookup: &UserLookup) -> Result<Vec<LinkedUser>, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let tenant = self.tenant_id(&mut conn, tenant).await?;
        let (condition, value) = match lookup {
            UserLookup::Id(id) => ("u.id = $2", id.clone()),
            UserLookup::Email(email) => ("u.email_lower = $2", email.trim().to_lowercase()),
            UserLookup::Account(account) => ("u.account_id = $2", account.as_str().to_owned()),
        };
        let sql = format!(
            "SELECT u.id AS id, {} AS data, u.email_lower AS email_lower, u.account_id AS account_id, \
             u.account_matched AS account_matched, u.created_at AS created_at, u.updated_at AS updated_at \
             FROM users u WHERE u.tenant_id = $1 AND {condition} ORDER BY u.id LIMIT 100",
            self.dialect.data_column("u")
        );
        let rows = bound(&sql, vec![text(tenant.as_str()), opt_text(Some(&value))]).fetch_all(&mut *conn).await?;
        rows.iter().map(linked_user_from_row).collect()
    }
}
