//! A group's member set as rows, and id sets inside statements.
//!
//! An id set reaches a statement one of two ways. A small one (up to [`SMALL_SET`] ids, what an
//! IdP sends per membership change) becomes explicit placeholders, so the planner knows how many
//! rows it joins and probes the primary keys, whatever the table statistics say: PostgreSQL
//! estimates any JSON-expanded parameter at 100 rows, and for a one-member change it then
//! hash-joined by reading the whole member table (and, without statistics, every user). A large
//! set is one JSON array parameter (no parameter limit), where reading whole tables by hashing is
//! the right plan anyway (see [`SqlStore::prefer_hash_joins`]).
//!
//! A one-member change therefore costs the same in a group of 100 or of 100,000: it reads and
//! writes the rows of that member, never the member set.

use std::collections::BTreeMap;

use proto::patch::MemberOp;
use proto::ResourceKind;
use serde_json::Value;
use sqlx::AnyConnection;

use super::filter::{Arg, Sql, Translator};
use super::statement::Statement;
use super::{json_ids, Dialect, SqlStore};
use crate::{DomainError, TenantId};

/// The most ids a statement takes as explicit placeholders.
pub(super) const SMALL_SET: usize = 64;

/// A relation with one column `id`, one row per id, for a small set (see [`Statement::id_list`]).
fn bind_id_rows(statement: Statement, ids: &[&str]) -> Statement {
    let mut statement = statement.sql("(");
    for (i, id) in ids.iter().enumerate() {
        statement = if i == 0 {
            statement.sql("SELECT ").bind(*id).sql(" AS id")
        } else {
            statement.sql(" UNION ALL SELECT ").bind(*id)
        };
    }
    statement.sql(")")
}

/// A relation `(id, display)`, one row per member as sent, as placeholders (a few members).
pub(super) fn bind_member_rows(statement: Statement, members: &[NewMember]) -> Statement {
    let mut statement = statement.sql("(");
    for (i, member) in members.iter().enumerate() {
        statement = if i == 0 {
            statement
                .sql("SELECT ")
                .bind(member.value.as_str())
                .sql(" AS id, ")
                .bind(member.display.as_deref())
                .sql(" AS display")
        } else {
            statement.sql(" UNION ALL SELECT ").bind(member.value.as_str()).sql(", ").bind(member.display.as_deref())
        };
    }
    statement.sql(")")
}

/// A relation with one column `id`, one row per id: [`bind_id_rows`] for a small set, the rows
/// of a JSON array parameter for a large one.
fn bind_id_relation(statement: Statement, ids: &[&str]) -> Result<Statement, DomainError> {
    if ids.len() <= SMALL_SET {
        return Ok(bind_id_rows(statement, ids));
    }
    let dialect = statement.dialect();
    Ok(statement
        .sql("(SELECT value AS id FROM ")
        .bind_in(|n| dialect.json_array_param(n), json_ids(ids))?
        .sql(" AS v)"))
}

/// A relation `(idx, id, kind)` for member events, one row per pair, `idx` counting from 0: as
/// placeholders for a small set, else from a JSON array parameter of `[id, kind]` pairs.
pub(super) fn bind_pair_rows(statement: Statement, pairs: &[[&str; 2]]) -> Result<Statement, DomainError> {
    if pairs.len() > SMALL_SET {
        let json = serde_json::to_string(pairs)
            .map_err(|e| DomainError::Internal("member ids are not serializable".into(), Some(Box::new(e))))?;
        let dialect = statement.dialect();
        return statement.bind_in(|n| dialect.json_pairs_param(n), json);
    }
    let mut statement = statement.sql("(");
    for (i, [id, kind]) in pairs.iter().enumerate() {
        statement = if i == 0 {
            statement.sql("SELECT 0 AS idx, ").bind(*id).sql(" AS id, ").bind(*kind).sql(" AS kind")
        } else {
            statement.sql(&format!(" UNION ALL SELECT {i}, ")).bind(*id).sql(", ").bind(*kind)
        };
    }
    Ok(statement.sql(")"))
}

/// Append the statement of `add_few_members` that says, per id of `ids`, whether it is a user
/// or a group (`kind`) and whether (`member_id`), with which `display`, it is a member of the
/// group already. Each answer is a primary-key probe per id: the group's rows are read by
/// scalar subqueries, which PostgreSQL runs once per id, never as a scan of the group, whatever
/// the statistics say. With `lock_users` the users among the ids are locked in id order, and
/// whether an id is a user is read from the locked rows: a user deleted meanwhile is not returned
/// by the lock (PostgreSQL reads a row again once its lock is granted), so it is no user here.
pub(super) fn classify_members(
    statement: Statement,
    tenant: &TenantId,
    group_id: &str,
    ids: &[&str],
    lock_users: bool,
) -> Statement {
    let member_probe = |statement: Statement, column: &str| {
        statement
            .sql(&format!("(SELECT m.{column} FROM group_members m WHERE m.tenant_id = "))
            .bind(tenant.as_str())
            .sql(" AND m.group_id = ")
            .bind(group_id)
            .sql(&format!(" AND m.member_id = j.id) AS {column}"))
    };
    let statement = statement
        .sql("SELECT j.id AS id, CASE WHEN u.id IS NOT NULL THEN 'User' WHEN (SELECT g.id FROM groups g WHERE g.tenant_id = ")
        .bind(tenant.as_str())
        .sql(" AND g.id = j.id) IS NOT NULL THEN 'Group' END AS kind, ");
    let statement = member_probe(member_probe(statement, "member_id").sql(", "), "display").sql(" FROM ");
    let users = bind_id_rows(statement, ids)
        .sql(" AS j LEFT JOIN (SELECT id FROM users WHERE tenant_id = ")
        .bind(tenant.as_str())
        .sql(" AND id IN ")
        .id_list(ids);
    if lock_users { users.sql(" ORDER BY id FOR KEY SHARE") } else { users }.sql(") u ON u.id = j.id")
}

/// `INSERT INTO group_members` of `members` after `statement`, each as `j` with its user `u`
/// and its row in the group `gm` (both null where there is none), to be finished with a `WHERE`
/// and a conflict clause. On PostgreSQL `u` and `gm` are lateral subqueries fenced with `OFFSET 0`,
/// which cannot become joins: each stays one primary-key probe per id whatever the statistics
/// say. Planned as a join, a group too new to be in them (estimated at one row) was read whole for
/// each id: 500 × 2,500 comparisons for 500 members added to a group of 2,500.
pub(super) fn insert_members(
    statement: Statement,
    tenant: &TenantId,
    group_id: &str,
    members: &[NewMember],
) -> Result<Statement, DomainError> {
    let d = statement.dialect();
    let (user, member, end) = match d {
        Dialect::Postgres => (
            " AS j LEFT JOIN LATERAL (SELECT u.id FROM users u WHERE u.tenant_id = ",
            " AND u.id = j.id OFFSET 0) u ON TRUE \
             LEFT JOIN LATERAL (SELECT gm.member_id, gm.display FROM group_members gm WHERE gm.tenant_id = ",
            " AND gm.member_id = j.id OFFSET 0) gm ON TRUE",
        ),
        Dialect::Sqlite => (
            " AS j LEFT JOIN users u ON u.tenant_id = ",
            " AND u.id = j.id LEFT JOIN group_members gm ON gm.tenant_id = ",
            " AND gm.member_id = j.id",
        ),
    };
    Ok(statement
        .sql("INSERT INTO group_members (tenant_id, group_id, member_id, member_type, display) SELECT ")
        .bind(tenant.as_str())
        .sql(", ")
        .bind(group_id)
        .sql(", j.id, CASE WHEN u.id IS NULL THEN 'Group' ELSE 'User' END, j.display FROM ")
        .bind_in(|n| d.json_members_param(n), json_members(members))?
        .sql(user)
        .bind(tenant.as_str())
        .sql(member)
        .bind(tenant.as_str())
        .sql(" AND gm.group_id = ")
        .bind(group_id)
        .sql(end))
}

/// A member as sent: its id and the `display` the IdP gave, if any.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct NewMember {
    value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<String>,
}

/// Split a canonical Group body into its JSON and its members (kept in `group_members`).
pub(super) fn take_members(data: &mut Value) -> Vec<NewMember> {
    let Some(Value::Array(members)) = data.as_object_mut().and_then(|o| o.remove("members")) else {
        return Vec::new();
    };
    // Consumed, not copied: each member's id moves out of the document, whose memory goes back
    // member by member, so a group of 100,000 members is not held twice.
    let mut by_id = BTreeMap::new();
    for member in members {
        let Value::Object(mut fields) = member else { continue };
        if let Some(Value::String(id)) = fields.remove("value") {
            let display = match fields.remove("display") {
                Some(Value::String(display)) => Some(display),
                _ => None,
            };
            by_id.insert(id, display);
        }
    }
    by_id.into_iter().map(|(value, display)| NewMember { value, display }).collect()
}

/// Members from `{"value", "display"?}` objects, one per id (the last one sent wins).
pub(super) fn new_members(members: &[Value]) -> Vec<NewMember> {
    let mut by_id = BTreeMap::new();
    for m in members {
        if let Some(id) = m.get("value").and_then(Value::as_str) {
            let display = m.get("display").and_then(Value::as_str).map(str::to_owned);
            by_id.insert(id.to_owned(), display);
        }
    }
    by_id.into_iter().map(|(value, display)| NewMember { value, display }).collect()
}

pub(super) fn ids_of(members: &[NewMember]) -> Vec<&str> {
    members.iter().map(|m| m.value.as_str()).collect()
}

/// A member row as a write's `RETURNING member_id, member_type` reads it.
#[derive(Debug, sqlx::FromRow)]
struct MemberTypeRow {
    member_id: String,
    member_type: String,
}

/// What `add_few_members` learns about one id it was sent.
#[derive(Debug, sqlx::FromRow)]
struct ClassifiedRow {
    id: String,
    /// `User` or `Group`; none when the id is neither.
    kind: Option<String>,
    /// Set when the id is a member already.
    member_id: Option<String>,
    display: Option<String>,
}

fn json_members(members: &[NewMember]) -> Arg {
    Arg::Text(serde_json::to_string(members).unwrap_or_else(|_| "[]".into()))
}

fn invalid_value(detail: String) -> DomainError {
    DomainError::Invalid(proto::Error::invalid_value(detail))
}

fn unknown_members(ids: &[String]) -> DomainError {
    invalid_value(format!("members refer to unknown resources: {}", ids.join(", ")))
}

/// Refuse a group among its own members.
pub(super) fn refuse_self(group_id: &str, ids: &[&str]) -> Result<(), DomainError> {
    if ids.contains(&group_id) {
        return Err(invalid_value("a group cannot be a member of itself".into()));
    }
    Ok(())
}

/// What a write learned about the ids it was sent, by id: whether each is a `User` or a
/// `Group`, whether it is a member already and with which `display`. Ids that are neither a
/// user nor a group are not in it.
#[derive(Debug, Default)]
pub(super) struct Known(BTreeMap<String, (String, bool, Option<String>)>);

impl Known {
    /// From `(id, kind, present, display)` rows; a row without a kind names no resource.
    pub(super) fn from_rows(rows: impl IntoIterator<Item = (String, Option<String>, bool, Option<String>)>) -> Self {
        let mut known = BTreeMap::new();
        for (id, kind, present, display) in rows {
            if let Some(kind) = kind {
                known.insert(id, (kind, present, display));
            }
        }
        Self(known)
    }

    /// Refuse the write if any of `ids` names no user or group (the first five are named).
    pub(super) fn refuse_unknown(&self, ids: &[&str]) -> Result<(), DomainError> {
        let unknown: Vec<String> =
            ids.iter().filter(|id| !self.0.contains_key(**id)).take(5).map(|id| (*id).to_owned()).collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(unknown_members(&unknown))
        }
    }
}

/// Who joined and who left a group in one write, net of one another (a member added and
/// removed again in the same PATCH did neither).
#[derive(Debug, Default)]
pub(super) struct MemberDiff {
    pub(super) added: BTreeMap<String, ResourceKind>,
    pub(super) removed: BTreeMap<String, ResourceKind>,
    /// Members whose `display` alone changed.
    redisplayed: u64,
}

fn member_kind(kind: &str) -> ResourceKind {
    if kind == "Group" {
        ResourceKind::Group
    } else {
        ResourceKind::User
    }
}

impl MemberDiff {
    pub(super) fn added(&mut self, id: String, kind: &str) {
        if self.removed.remove(&id).is_none() {
            self.added.insert(id, member_kind(kind));
        }
    }

    fn removed(&mut self, id: String, kind: &str) {
        if self.added.remove(&id).is_none() {
            self.removed.insert(id, member_kind(kind));
        }
    }

    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    /// Whether the group's member list changed at all.
    pub(super) fn changed(&self) -> bool {
        !self.is_empty() || self.redisplayed > 0
    }
}

impl SqlStore {
    /// Refuse member ids that are neither a user nor a group of this tenant, or the group itself.
    async fn check_members(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        group_id: &str,
        ids: &[&str],
    ) -> Result<(), DomainError> {
        refuse_self(group_id, ids)?;
        if ids.is_empty() {
            return Ok(());
        }
        self.prefer_hash_joins(conn, ids.len()).await?;
        let statement = bind_id_relation(Statement::new(self.dialect).sql("SELECT j.id AS id FROM "), ids)?
            .sql(" AS j WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.tenant_id = ")
            .bind(tenant.as_str())
            .sql(" AND u.id = j.id) AND NOT EXISTS (SELECT 1 FROM groups g WHERE g.tenant_id = ")
            .bind(tenant.as_str())
            .sql(" AND g.id = j.id) LIMIT 5");
        let unknown: Vec<(String,)> = statement.query_as().fetch_all(&mut *conn).await?;
        if unknown.is_empty() {
            return Ok(());
        }
        let unknown: Vec<String> = unknown.into_iter().map(|(id,)| id).collect();
        Err(unknown_members(&unknown))
    }

    /// Add members. A member already present keeps its row; only a changed `display` is
    /// written. Records who joined in `diff`. `lock_users`: a write that holds rows keeps the
    /// users it adds from being deleted until it commits (`group_members` has no foreign key to
    /// them); such a write adds few members.
    pub(super) async fn add_members(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        group_id: &str,
        members: &[NewMember],
        lock_users: bool,
        diff: &mut MemberDiff,
    ) -> Result<(), DomainError> {
        if members.len() <= SMALL_SET || lock_users {
            return self.add_few_members(conn, tenant, group_id, members, lock_users, diff).await;
        }
        self.check_members(conn, tenant, group_id, &ids_of(members)).await?;
        // Only members that are new reach the insert: re-sending a large group (Okta's "Push
        // Now") then writes nothing. Members that are no user are groups (check_members has
        // refused everything else). The conflict clause still guards against a concurrent insert.
        // `WHERE` keeps SQLite from parsing ON CONFLICT as part of the SELECT.
        let d = self.dialect;
        let insert = || insert_members(Statement::new(d), tenant, group_id, members);
        let added: Vec<MemberTypeRow> = insert()?
            .sql(
                " WHERE gm.member_id IS NULL ON CONFLICT (tenant_id, group_id, member_id) DO NOTHING \
                 RETURNING member_id, member_type",
            )
            .query_as()
            .fetch_all(&mut *conn)
            .await?;
        for row in added {
            diff.added(row.member_id, &row.member_type);
        }
        // A `display` is kept as the IdP last sent it.
        if members.iter().any(|m| m.display.is_some()) {
            let statement = insert()?.sql(&format!(
                " WHERE gm.member_id IS NOT NULL AND {} \
                 ON CONFLICT (tenant_id, group_id, member_id) DO UPDATE SET display = excluded.display WHERE {}",
                d.is_distinct("gm.display", "j.display"),
                d.is_distinct("group_members.display", "excluded.display"),
            ));
            diff.redisplayed += statement.query().execute(&mut *conn).await?.rows_affected();
        }
        Ok(())
    }

    /// [`Self::add_members`] for a few members: one statement ([`classify_members`]) says, per id,
    /// whether it is a user or a group and whether (with which `display`) it is a member already,
    /// and with `lock_users` locks the users; then only the new rows are inserted and only changed
    /// displays written.
    async fn add_few_members(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        group_id: &str,
        members: &[NewMember],
        lock_users: bool,
        diff: &mut MemberDiff,
    ) -> Result<(), DomainError> {
        let ids = ids_of(members);
        refuse_self(group_id, &ids)?;
        if ids.is_empty() {
            return Ok(());
        }
        let classify = classify_members(Statement::new(self.dialect), tenant, group_id, &ids, lock_users);
        let rows: Vec<ClassifiedRow> = classify.query_as().fetch_all(&mut *conn).await?;
        let known = Known::from_rows(rows.into_iter().map(|r| (r.id, r.kind, r.member_id.is_some(), r.display)));
        known.refuse_unknown(&ids)?;
        let mut insert = Statement::new(self.dialect)
            .sql("INSERT INTO group_members (tenant_id, group_id, member_id, member_type, display) VALUES ");
        let mut inserts = 0;
        for member in members {
            let Some((kind, present, _)) = known.0.get(&member.value) else { continue };
            if !present {
                insert = insert
                    .sql(if inserts == 0 { "(" } else { ", (" })
                    .bind(tenant.as_str())
                    .sql(", ")
                    .bind(group_id)
                    .sql(", ")
                    .bind(member.value.as_str())
                    .sql(", ")
                    .bind(kind.as_str())
                    .sql(", ")
                    .bind(member.display.as_deref())
                    .sql(")");
                inserts += 1;
            }
        }
        if inserts > 0 {
            // The conflict clause guards against a concurrent insert of the same member.
            let added: Vec<MemberTypeRow> = insert
                .sql(" ON CONFLICT (tenant_id, group_id, member_id) DO NOTHING RETURNING member_id, member_type")
                .query_as()
                .fetch_all(&mut *conn)
                .await?;
            for row in added {
                diff.added(row.member_id, &row.member_type);
            }
        }
        self.redisplay_members(conn, tenant, group_id, members, &known, diff).await
    }

    /// Write the `display` of members already present whose IdP sent another one: a `display`
    /// is kept as the IdP last sent it.
    pub(super) async fn redisplay_members(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        group_id: &str,
        members: &[NewMember],
        known: &Known,
        diff: &mut MemberDiff,
    ) -> Result<(), DomainError> {
        for member in members {
            let Some((_, true, display)) = known.0.get(&member.value) else { continue };
            if member.display.is_none() || member.display == *display {
                continue;
            }
            Statement::new(self.dialect)
                .sql("UPDATE group_members SET display = ")
                .bind(member.display.as_deref())
                .sql(" WHERE tenant_id = ")
                .bind(tenant.as_str())
                .sql(" AND group_id = ")
                .bind(group_id)
                .sql(" AND member_id = ")
                .bind(member.value.as_str())
                .query()
                .execute(&mut *conn)
                .await?;
            diff.redisplayed += 1;
        }
        Ok(())
    }

    /// Run a `DELETE ... RETURNING member_id, member_type` and record who left.
    async fn delete_members(
        &self,
        conn: &mut AnyConnection,
        statement: Statement,
        diff: &mut MemberDiff,
    ) -> Result<(), DomainError> {
        let removed: Vec<MemberTypeRow> =
            statement.sql(" RETURNING member_id, member_type").query_as().fetch_all(&mut *conn).await?;
        for row in removed {
            diff.removed(row.member_id, &row.member_type);
        }
        Ok(())
    }

    /// `DELETE FROM group_members WHERE` the rows of this group, to be narrowed.
    fn delete_group_members(&self, tenant: &TenantId, group_id: &str) -> Statement {
        Statement::new(self.dialect)
            .sql("DELETE FROM group_members WHERE tenant_id = ")
            .bind(tenant.as_str())
            .sql(" AND group_id = ")
            .bind(group_id)
    }

    async fn remove_members(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        group_id: &str,
        ids: &[String],
        diff: &mut MemberDiff,
    ) -> Result<(), DomainError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.prefer_hash_joins(conn, ids.len()).await?;
        let statement = self.delete_group_members(tenant, group_id).sql(" AND member_id IN ").id_list(ids);
        self.delete_members(conn, statement, diff).await
    }

    /// Make the member set exactly `members`: delete the others, insert the missing.
    pub(super) async fn replace_members(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        group_id: &str,
        members: &[NewMember],
        diff: &mut MemberDiff,
    ) -> Result<(), DomainError> {
        self.check_members(conn, tenant, group_id, &ids_of(members)).await?;
        // Finding who is not in the new set reads the group's members: a replace is about the
        // whole set.
        let d = self.dialect;
        let statement = self
            .delete_group_members(tenant, group_id)
            .sql(" AND member_id NOT IN ")
            .bind_in(|n| d.json_array_param(n), json_ids(&ids_of(members)))?;
        self.delete_members(conn, statement, diff).await?;
        self.add_members(conn, tenant, group_id, members, false, diff).await
    }

    pub(super) async fn apply_member_ops(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        group_id: &str,
        ops: &[MemberOp],
        lock_users: bool,
        diff: &mut MemberDiff,
    ) -> Result<(), DomainError> {
        for op in ops {
            match op {
                MemberOp::Add(values) => {
                    self.add_members(conn, tenant, group_id, &new_members(values), lock_users, diff).await?;
                }
                MemberOp::Remove(ids) => self.remove_members(conn, tenant, group_id, ids, diff).await?,
                MemberOp::Replace(values) => {
                    self.replace_members(conn, tenant, group_id, &new_members(values), diff).await?;
                }
                MemberOp::RemoveAll => {
                    self.delete_members(conn, self.delete_group_members(tenant, group_id), diff).await?;
                }
                MemberOp::RemoveWhere(filter) => {
                    let mut sql = Sql::default();
                    let predicate =
                        Translator::new(self.dialect, ResourceKind::Group, &mut sql, false).member_predicate(filter)?;
                    let statement = Statement::new(self.dialect)
                        .sql("DELETE FROM group_members AS m WHERE m.tenant_id = ")
                        .bind(tenant.as_str())
                        .sql(" AND m.group_id = ")
                        .bind(group_id)
                        .sql(" AND (")
                        .fragment(&predicate, &sql.args)?
                        .sql(")");
                    self.delete_members(conn, statement, diff).await?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Dialect;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("id{i}")).collect()
    }

    fn in_list(dialect: Dialect, n: usize) -> Result<Statement, DomainError> {
        Ok(Statement::new(dialect).sql("WHERE tenant_id = ").bind("t").sql(" AND id IN ").id_list(&ids(n)))
    }

    #[test]
    fn small_id_sets_are_padded_placeholders_and_large_ones_one_json_parameter() -> Result<(), DomainError> {
        assert_eq!(in_list(Dialect::Postgres, 3)?.sql_text(), "WHERE tenant_id = $1 AND id IN ($2, $3, $4, $5)");
        assert_eq!(in_list(Dialect::Sqlite, 3)?.sql_text(), "WHERE tenant_id = ? AND id IN (?, ?, ?, ?)");
        let placeholders = |n: usize| -> Result<usize, DomainError> {
            Ok(in_list(Dialect::Sqlite, n)?.sql_text().matches('?').count() - 1)
        };
        assert_eq!(placeholders(SMALL_SET)?, SMALL_SET);
        assert_eq!(placeholders(SMALL_SET + 1)?, 1);
        assert_eq!(
            in_list(Dialect::Postgres, SMALL_SET + 1)?.sql_text(),
            "WHERE tenant_id = $1 AND id IN (SELECT value FROM json_array_elements_text($2::json))"
        );
        assert_eq!(
            in_list(Dialect::Sqlite, 0)?.sql_text(),
            "WHERE tenant_id = ? AND id IN (SELECT value FROM json_each(?))"
        );
        Ok(())
    }

    #[test]
    fn member_pairs_are_rows_numbered_from_zero() -> Result<(), DomainError> {
        let pairs = [["a", "User"], ["b", "Group"]];
        assert_eq!(
            bind_pair_rows(Statement::new(Dialect::Postgres), &pairs)?.sql_text(),
            "(SELECT 0 AS idx, $1 AS id, $2 AS kind UNION ALL SELECT 1, $3, $4)"
        );
        assert_eq!(
            bind_id_rows(Statement::new(Dialect::Sqlite), &["a", "b"]).sql_text(),
            "(SELECT ? AS id UNION ALL SELECT ?)"
        );
        Ok(())
    }
}
