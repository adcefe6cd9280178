//! Product accounts, and linking SCIM users to them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::filter::Arg;
use super::statement::Statement;
use super::write::TenantWrite;
use super::{json_ids, SqlStore};
use crate::error::conflict_if_unique;
use crate::event::{user_subject, EventType};
use crate::link::{
    AccountId, AccountsRegistered, DuplicateEmails, LinkMatch, LinkedUser, ProductAccount, UserLookup,
    MAX_ACCOUNTS_PER_CALL,
};
use crate::store::AccountStore;
use crate::time_util::now_micros;
use crate::{DomainError, TenantName};
use async_trait::async_trait;
use serde_json::{json, Value};

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

/// A user and its link as `find_users` reads it.
#[derive(Debug, sqlx::FromRow)]
struct LinkedUserRow {
    id: String,
    data: String,
    email_lower: Option<String>,
    account_id: Option<String>,
    account_matched: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<LinkedUserRow> for LinkedUser {
    type Error = DomainError;

    fn try_from(row: LinkedUserRow) -> Result<Self, DomainError> {
        Ok(LinkedUser {
            id: row.id,
            data: serde_json::from_str(&row.data)
                .map_err(|e| DomainError::Internal("stored resource is not JSON".into(), Some(Box::new(e))))?,
            email: row.email_lower,
            account_id: row.account_id,
            matched: row.account_matched.as_deref().map(str::parse).transpose()?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// A product account and the user linked to it, as `account` reads it.
#[derive(Debug, sqlx::FromRow)]
struct AccountRow {
    email_lower: Option<String>,
    external_id: Option<String>,
    user_id: Option<String>,
    account_matched: Option<String>,
}

/// `UPDATE users SET account_id = .., account_matched = ..` for one user.
fn set_link(dialect: super::Dialect, tenant: &str, user: &str, account: &str, matched: LinkMatch) -> Statement {
    Statement::new(dialect)
        .sql("UPDATE users SET account_id = ")
        .bind(account)
        .sql(", account_matched = ")
        .bind(matched.as_str())
        .sql(" WHERE tenant_id = ")
        .bind(tenant)
        .sql(" AND id = ")
        .bind(user)
}

/// Append `SELECT 1 FROM users d …` for the users of `tenant` other than `user` whose linking
/// email is `email`: any such row makes the email a duplicate.
pub(super) fn others_with_email(statement: Statement, tenant: &str, email: &str, user: &str) -> Statement {
    statement
        .sql("SELECT 1 FROM users d WHERE d.tenant_id = ")
        .bind(tenant)
        .sql(" AND d.email_lower = ")
        .bind(email)
        .sql(" AND d.id <> ")
        .bind(user)
}

/// What a write did to a user, as far as linking is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum UserWrite {
    /// Created it: it has its linking email from this write, and no account yet. Its insert
    /// already said whether another user has that email (the write claimed the email with its
    /// first statement: `begin_tenant_write_claiming`) and which accounts it could link to.
    Created { duplicate_email: bool, candidates: LinkCandidates },
    /// Changed it; `email_changed`: whether its linking email is new; `account`: the account it
    /// was linked to when the write read (and locked) it.
    Changed { email_changed: bool, account: Option<String> },
}

/// The free product accounts (no user linked to them) a user matches, by each way of linking
/// the tenant turned on, as [`link_candidates`] reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub(super) struct LinkCandidates {
    #[sqlx(default)]
    by_external_id: Option<String>,
    #[sqlx(default)]
    by_email: Option<String>,
}

/// The probes for a user's [`LinkCandidates`] with these `externalId` and linking email: one
/// per way of linking `w`'s tenant turned on and the user has a value for, as
/// `(column, name, value)`.
pub(super) fn candidate_probes<'a>(
    w: &TenantWrite,
    external_id: Option<&'a str>,
    email: Option<&'a str>,
) -> Vec<(&'static str, &'static str, &'a str)> {
    let by = w.settings.link_by;
    [
        (external_id.filter(|_| by.external_id), "a.external_id", "by_external_id"),
        (email.filter(|_| by.email), "a.email_lower", "by_email"),
    ]
    .into_iter()
    .filter_map(|(value, column, name)| Some((column, name, value?)))
    .collect()
}

/// Append `, (SELECT …) AS <name>` for each of `probes` ([`candidate_probes`]): the free account
/// of `tenant` that matches, a unique key probe each; the leading comma is the caller's.
pub(super) fn link_candidates(mut statement: Statement, tenant: &str, probes: &[(&str, &str, &str)]) -> Statement {
    let free = "NOT EXISTS (SELECT 1 FROM users l WHERE l.tenant_id = a.tenant_id AND l.account_id = a.id)";
    for (column, name, value) in probes {
        statement = statement
            .sql(", (SELECT a.id FROM product_accounts a WHERE a.tenant_id = ")
            .bind(tenant)
            .sql(&format!(" AND {column} = "))
            .bind(*value)
            .sql(&format!(" AND {free}) AS {name}"));
    }
    statement
}

/// The user's `externalId` that linking matches on, if any.
pub(super) fn linking_external_id(data: &Value) -> Option<&str> {
    data.get("externalId").and_then(Value::as_str).filter(|e| !e.is_empty())
}

impl SqlStore {
    /// After a user was written: refuse or flag a duplicate linking email, and link the user to
    /// a product account if it is not linked yet and one matches.
    pub(super) async fn link_user(
        &self,
        w: &mut TenantWrite,
        user_id: &str,
        data: &Value,
        write: UserWrite,
    ) -> Result<UserLink, DomainError> {
        let tenant = w.tenant.as_str().to_owned();
        let email = crate::link::linking_email(data);
        let mut link = UserLink::default();
        if let Some(email) = email.as_deref() {
            link.duplicate_email = match write {
                UserWrite::Created { duplicate_email, .. } => duplicate_email,
                UserWrite::Changed { email_changed: true, .. } => {
                    // Two users given one email at once: the second to get here sees the first.
                    w.lock_key("email", email).await?;
                    others_with_email(Statement::new(self.dialect), &tenant, email, user_id)
                        .sql(" LIMIT 1")
                        .query()
                        .fetch_optional(&mut *w.tx)
                        .await?
                        .is_some()
                }
                UserWrite::Changed { email_changed: false, .. } => false,
            };
            if link.duplicate_email && w.settings.duplicate_emails == DuplicateEmails::Refuse {
                return Err(DomainError::Conflict(format!(
                    "email `{email}` is already the email of another user in this tenant"
                )));
            }
        }
        let candidates = match write {
            UserWrite::Created { candidates, .. } => candidates,
            UserWrite::Changed { account: Some(account), .. } => {
                link.account = Some(account);
                return Ok(link);
            }
            UserWrite::Changed { account: None, .. } => {
                let probes = candidate_probes(w, linking_external_id(data), email.as_deref());
                if probes.is_empty() {
                    return Ok(link);
                }
                link_candidates(Statement::new(self.dialect).sql("SELECT 1 AS one"), &tenant, &probes)
                    .query_as()
                    .fetch_one(&mut *w.tx)
                    .await?
            }
        };
        // externalId first; an email another user has too links nobody.
        let by_email = candidates.by_email.filter(|_| !link.duplicate_email);
        for (matched, account) in [(LinkMatch::ExternalId, candidates.by_external_id), (LinkMatch::Email, by_email)] {
            let Some(account) = account else { continue };
            if w.locks_rows() && !self.still_free(w, &account).await? {
                continue;
            }
            set_link(self.dialect, &tenant, user_id, &account, matched).query().execute(&mut *w.tx).await?;
            link.account = Some(account);
            link.linked_now = Some(matched);
            break;
        }
        Ok(link)
    }

    /// Lock account `id` and say whether no user is linked to it yet: of two users matching one
    /// account at once, only the first links (the second then reads the first's link).
    async fn still_free(&self, w: &mut TenantWrite, id: &str) -> Result<bool, DomainError> {
        Statement::new(self.dialect)
            .sql("SELECT id FROM product_accounts WHERE tenant_id = ")
            .bind(w.tenant.as_str())
            .sql(" AND id = ")
            .bind(id)
            .sql(" FOR NO KEY UPDATE")
            .query()
            .execute(&mut *w.tx)
            .await?;
        let linked = Statement::new(self.dialect)
            .sql("SELECT 1 AS one FROM users WHERE tenant_id = ")
            .bind(w.tenant.as_str())
            .sql(" AND account_id = ")
            .bind(id)
            .query()
            .fetch_optional(&mut *w.tx)
            .await?;
        Ok(linked.is_none())
    }

    /// Link unlinked users to the accounts `ids` where exactly one matches (externalId first);
    /// how many were linked.
    async fn link_registered(&self, w: &mut TenantWrite, ids: &[&str]) -> Result<u64, DomainError> {
        let tenant = w.tenant.as_str().to_owned();
        let by = w.settings.link_by;
        let mut pairs: Vec<(String, String, LinkMatch)> = Vec::new();
        let d = self.dialect;
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
            let rows: Vec<(String, String)> = Statement::new(d)
                .sql(&format!(
                    "SELECT u.id AS user_id, a.id AS account_id FROM product_accounts a \
                     JOIN users u ON u.tenant_id = a.tenant_id AND {on} WHERE a.tenant_id = "
                ))
                .bind(tenant.as_str())
                .sql(" AND a.id IN ")
                .bind_in(|n| d.json_array_param(n), json_ids(ids))?
                .sql(&format!(
                    " AND u.account_id IS NULL \
                     AND NOT EXISTS (SELECT 1 FROM users l WHERE l.tenant_id = a.tenant_id AND l.account_id = a.id){extra} \
                     ORDER BY a.id, u.id"
                ))
                .query_as()
                .fetch_all(&mut *w.tx)
                .await?;
            pairs.extend(rows.into_iter().map(|(user, account)| (user, account, matched)));
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
        let rows: Vec<(String, String)> = Statement::new(d)
            .sql(&format!("SELECT id, {} AS data FROM users u WHERE u.tenant_id = ", d.data_column("u")))
            .bind(tenant.as_str())
            .sql(" AND u.id IN ")
            .bind_in(|n| d.json_array_param(n), json_ids(&user_ids))?
            .query_as()
            .fetch_all(&mut *w.tx)
            .await?;
        let mut data: HashMap<String, Value> = HashMap::new();
        for (id, json) in rows {
            data.insert(id, serde_json::from_str(&json).unwrap_or(Value::Null));
        }
        for (user, account, matched) in &pairs {
            set_link(d, &tenant, user, account, *matched).query().execute(&mut *w.tx).await?;
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
        let d = self.dialect;
        let clash: Option<(String, String)> = Statement::new(d)
            .sql("SELECT j.id AS id, a.id AS other FROM ")
            .bind_in(|n| d.json_accounts_param(n), rows.clone())?
            .sql(" AS j JOIN product_accounts a ON a.tenant_id = ")
            .bind(tenant_id.as_str())
            .sql(
                " AND a.id <> j.id AND (a.email_lower = j.email OR a.external_id = j.external_id) \
                 WHERE a.id NOT IN (SELECT id FROM ",
            )
            .bind_in(|n| d.json_accounts_param(n), rows.clone())?
            .sql(" AS k) LIMIT 1")
            .query_as()
            .fetch_optional(&mut *w.tx)
            .await?;
        if let Some((id, other)) = clash {
            return Err(DomainError::Conflict(format!(
                "account `{id}` has the email or external id of account `{other}`"
            )));
        }
        let existing: (i64,) = Statement::new(d)
            .sql("SELECT COUNT(*) AS n FROM product_accounts WHERE tenant_id = ")
            .bind(tenant_id.as_str())
            .sql(" AND id IN ")
            .bind_in(|n| d.json_array_param(n), json_ids(&ids))?
            .query_as()
            .fetch_one(&mut *w.tx)
            .await?;
        let existing = u64::try_from(existing.0).unwrap_or(0);
        // Clear the linking keys of the accounts being rewritten first, so two of them may swap
        // emails within one call without tripping the unique indexes mid-statement.
        Statement::new(d)
            .sql("UPDATE product_accounts SET email_lower = NULL, external_id = NULL WHERE tenant_id = ")
            .bind(tenant_id.as_str())
            .sql(" AND id IN ")
            .bind_in(|n| d.json_array_param(n), json_ids(&ids))?
            .query()
            .execute(&mut *w.tx)
            .await?;
        Statement::new(d)
            .sql("INSERT INTO product_accounts (tenant_id, id, email_lower, external_id, created_at) SELECT ")
            .bind(tenant_id.as_str())
            .sql(", j.id, j.email, j.external_id, ")
            .bind(now_micros())
            .sql(" FROM ")
            .bind_in(|n| d.json_accounts_param(n), rows)?
            .sql(
                " AS j WHERE TRUE \
                 ON CONFLICT (tenant_id, id) DO UPDATE SET email_lower = excluded.email_lower, external_id = excluded.external_id",
            )
            .query()
            .execute(&mut *w.tx)
            .await
            .map_err(conflict_if_unique(|| "an email or external id is registered for two accounts".into()))?;
        let linked = if w.settings.link_by.is_on() { self.link_registered(&mut w, &ids).await? } else { 0 };
        w.commit().await?;
        let total = u64::try_from(accounts.len()).unwrap_or(u64::MAX);
        Ok(AccountsRegistered { created: total - existing, updated: existing, linked })
    }

    #[tracing::instrument(name = "store.account", skip_all, fields(tenant = %tenant, account = %id))]
    async fn account(&self, tenant: &TenantName, id: &AccountId) -> Result<ProductAccount, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let tenant = self.tenant_id(&mut conn, tenant).await?;
        let row: AccountRow = Statement::new(self.dialect)
            .sql(
                "SELECT a.id AS id, a.email_lower AS email_lower, a.external_id AS external_id, u.id AS user_id, \
                 u.account_matched AS account_matched FROM product_accounts a \
                 LEFT JOIN users u ON u.tenant_id = a.tenant_id AND u.account_id = a.id \
                 WHERE a.tenant_id = ",
            )
            .bind(tenant.as_str())
            .sql(" AND a.id = ")
            .bind(id.as_str())
            .query_as()
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(DomainError::NotFound(crate::Entity::Account))?;
        Ok(ProductAccount {
            id: id.clone(),
            email: row.email_lower,
            external_id: row.external_id,
            user_id: row.user_id,
            matched: row.account_matched.as_deref().map(str::parse).transpose()?,
        })
    }

    #[tracing::instrument(name = "store.delete_account", skip_all, fields(tenant = %tenant, account = %id))]
    async fn delete_account(&self, tenant: &TenantName, id: &AccountId) -> Result<(), DomainError> {
        let mut w = self.begin_tenant_write_by_name(tenant).await?;
        let tenant_id = w.tenant.as_str().to_owned();
        let linked: Option<(String, String)> = Statement::new(self.dialect)
            .sql(&format!(
                "SELECT u.id AS id, {} AS data FROM users u WHERE u.tenant_id = ",
                self.dialect.data_column("u")
            ))
            .bind(tenant_id.as_str())
            .sql(" AND u.account_id = ")
            .bind(id.as_str())
            .query_as()
            .fetch_optional(&mut *w.tx)
            .await?;
        let removed = Statement::new(self.dialect)
            .sql("DELETE FROM product_accounts WHERE tenant_id = ")
            .bind(tenant_id.as_str())
            .sql(" AND id = ")
            .bind(id.as_str())
            .query()
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        if removed == 0 {
            return Err(DomainError::NotFound(crate::Entity::Account));
        }
        if let Some((user, data)) = linked {
            Statement::new(self.dialect)
                .sql("UPDATE users SET account_id = NULL, account_matched = NULL WHERE tenant_id = ")
                .bind(tenant_id.as_str())
                .sql(" AND id = ")
                .bind(user.as_str())
                .query()
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
        let (column, value) = match lookup {
            UserLookup::Id(id) => ("u.id", id.clone()),
            UserLookup::Email(email) => ("u.email_lower", email.trim().to_lowercase()),
            UserLookup::Account(account) => ("u.account_id", account.as_str().to_owned()),
        };
        let rows: Vec<LinkedUserRow> = Statement::new(self.dialect)
            .sql(&format!(
                "SELECT u.id AS id, {} AS data, u.email_lower AS email_lower, u.account_id AS account_id, \
                 u.account_matched AS account_matched, u.created_at AS created_at, u.updated_at AS updated_at \
                 FROM users u WHERE u.tenant_id = ",
                self.dialect.data_column("u")
            ))
            .bind(tenant.as_str())
            .sql(&format!(" AND {column} = "))
            .bind(value)
            .sql(" ORDER BY u.id LIMIT 100")
            .query_as()
            .fetch_all(&mut *conn)
            .await?;
        rows.into_iter().map(LinkedUser::try_from).collect()
    }
}
