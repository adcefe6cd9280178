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
use sqlx::{AnyConnection, Row};

use super::filter::{Arg, Sql, Translator};
use super::{bound, json_ids, text, Dialect, SqlStore};
use crate::{DomainError, TenantId};

/// The most ids a statement takes as explicit placeholders.
pub(super) const SMALL_SET: usize = 64;

/// `(p1, p2, …)` for `x IN …`: a small set as placeholders, padded to a power of two with its
/// last id so that few distinct statements reach the statement caches; a large (or empty) one
/// as the rows of a JSON array parameter.
pub(super) fn id_list<S: AsRef<str>>(dialect: Dialect, sql: &mut Sql, ids: &[S]) -> String {
    match ids.last() {
        Some(last) if ids.len() <= SMALL_SET => {
            let padded = ids.len().next_power_of_two();
            let placeholders: Vec<String> =
                (0..padded).map(|i| sql.bind(text(ids.get(i).unwrap_or(last).as_ref()))).collect();
            format!("({})", placeholders.join(", "))
        }
        _ => {
            sql.bind(json_ids(ids));
            dialect.json_array_param(sql.args.len())
        }
    }
}

/// A relation with one column `id`, one row per id, for a small set (see [`id_list`]).
fn id_rows(sql: &mut Sql, ids: &[&str]) -> String {
    let rows: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let p = sql.bind(text(id));
            if i == 0 {
                format!("SELECT {p} AS id")
            } else {
                format!("SELECT {p}")
            }
        })
        .collect();
    format!("({})", rows.join(" UNION ALL "))
}

/// A relation with one column `id`, one row per id: [`id_rows`] for a small set, the rows of a
/// JSON array parameter for a large one.
fn id_relation(dialect: Dialect, sql: &mut Sql, ids: &[&str]) -> String {
    if ids.len() <= SMALL_SET {
        return id_rows(sql, ids);
    }
    sql.bind(json_ids(ids));
    format!("(SELECT value AS id FROM {} AS v)", dialect.json_array_param(sql.args.len()))
}

/// A relation `(idx, id, kind)` for member events, one row per pair, `idx` counting from 0: as
/// placeholders for a small set, else from a JSON array parameter of `[id, kind]` pairs.
pub(super) fn pair_rows(dialect: Dialect, sql: &mut Sql, pairs: &[[&str; 2]]) -> Result<String, DomainError> {
    if pairs.len() > SMALL_SET {
        let json = serde_json::to_string(pairs)
            .map_err(|e| DomainError::Internal("member ids are not serializable".into(), Some(Box::new(e))))?;
        sql.bind(Arg::Text(json));
        return Ok(dialect.json_pairs_param(sql.args.len()));
    }
    let rows: Vec<String> = pairs
        .iter()
        .enumerate()
        .map(|(i, [id, kind])| {
            let (id, kind) = (sql.bind(text(id)), sql.bind(text(kind)));
            if i == 0 {
                format!("SELECT {i} AS idx, {id} AS id, {kind} AS kind")
            } else {
                format!("SELECT {i}, {id}, {kind}")
            }
        })
        .collect();
    Ok(format!("({})", rows.join(" UNION ALL ")))
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
fn new_members(members: &[Value]) -> Vec<NewMember> {
    let mut by_id = BTreeMap::new();
    for m in members {
        if let Some(id) = m.get("value").and_then(Value::as_str) {
            let display = m.get("display").and_then(Value::as_str).map(str::to_owned);
            by_id.insert(id.to_owned(), display);
        }
    }
    by_id.into_iter().map(|(value, display)| NewMember { value, display }).collect()
}

fn ids_of(members: &[NewMember]) -> Vec<&str> {
    members.iter().map(|m| m.value.as_str()).collect()
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
    fn added(&mut self, id: String, kind: &str) {
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
        if ids.contains(&group_id) {
            return Err(invalid_value("a group cannot be a member of itself".into()));
        }
        if ids.is_empty() {
            return Ok(());
        }
        self.prefer_hash_joins(conn, ids.len()).await?;
        let mut sql = Sql { args: vec![text(tenant.as_str())] };
        let rows = id_relation(self.dialect, &mut sql, ids);
        let sql_text = format!(
            "SELECT j.id AS id FROM {rows} AS j \
             WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.tenant_id = $1 AND u.id = j.id) \
             AND NOT EXISTS (SELECT 1 FROM groups g WHERE g.tenant_id = $1 AND g.id = j.id) LIMIT 5"
        );
        let unknown = bound(&sql_text, sql.args).fetch_all(&mut *conn).await?;
        if unknown.is_empty() {
            return Ok(());
        }
        let unknown: Vec<String> = unknown.iter().filter_map(|r| r.try_get::<String, _>("id").ok()).collect();
        Err(unknown_members(&unknown))
    }

    /// Add members. A member already present keeps its row; only a changed `display` is
    /// written. Records who joined in `diff`.
    pub(super) async fn add_members(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        group_id: &str,
        members: &[NewMember],
        diff: &mut MemberDiff,
    ) -> Result<(), DomainError> {
        if members.len() <= SMALL_SET {
            return self.add_few_members(conn, tenant, group_id, members, diff).await;
        }
        self.check_members(conn, tenant, group_id, &ids_of(members)).await?;
        // Only members that are new reach the insert: re-sending a large group (Okta's "Push
        // Now") then writes nothing. Members that are no user are groups (check_members has
        // refused everything else). The conflict clause still guards against a concurrent insert.
        // `WHERE` keeps SQLite from parsing ON CONFLICT as part of the SELECT.
        let param = self.dialect.json_members_param(3);
        let source = format!(
            "SELECT $1, $2, j.id, CASE WHEN u.id IS NULL THEN 'Group' ELSE 'User' END, j.display \
             FROM {param} AS j \
             LEFT JOIN users u ON u.tenant_id = $1 AND u.id = j.id \
             LEFT JOIN group_members gm ON gm.tenant_id = $1 AND gm.group_id = $2 AND gm.member_id = j.id"
        );
        let args = || vec![text(tenant.as_str()), text(group_id), json_members(members)];
        let sql = format!(
            "INSERT INTO group_members (tenant_id, group_id, member_id, member_type, display) {source} \
             WHERE gm.member_id IS NULL ON CONFLICT (tenant_id, group_id, member_id) DO NOTHING \
             RETURNING member_id, member_type"
        );
        for row in bound(&sql, args()).fetch_all(&mut *conn).await? {
            diff.added(row.try_get("member_id")?, &row.try_get::<String, _>("member_type")?);
        }
        // A `display` is kept as the IdP last sent it.
        if members.iter().any(|m| m.display.is_some()) {
            let sql = format!(
                "INSERT INTO group_members (tenant_id, group_id, member_id, member_type, display) {source} \
                 WHERE gm.member_id IS NOT NULL AND {} \
                 ON CONFLICT (tenant_id, group_id, member_id) DO UPDATE SET display = excluded.display WHERE {}",
                self.dialect.is_distinct("gm.display", "j.display"),
                self.dialect.is_distinct("group_members.display", "excluded.display"),
            );
            diff.redisplayed += bound(&sql, args()).execute(&mut *conn).await?.rows_affected();
        }
        Ok(())
    }

    /// [`Self::add_members`] for a few members: one statement says, per id, whether it is a user
    /// or a group and whether (with which `display`) it is a member already, each answer a
    /// primary-key probe; then only the new rows are inserted and only changed displays written.
    async fn add_few_members(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        group_id: &str,
        members: &[NewMember],
        diff: &mut MemberDiff,
    ) -> Result<(), DomainError> {
        let ids = ids_of(members);
        if ids.contains(&group_id) {
            return Err(invalid_value("a group cannot be a member of itself".into()));
        }
        if ids.is_empty() {
            return Ok(());
        }
        let mut sql = Sql { args: vec![text(tenant.as_str()), text(group_id)] };
        let rows = id_rows(&mut sql, &ids);
        let classify = format!(
            "SELECT j.id AS id, \
             CASE WHEN EXISTS (SELECT 1 FROM users u WHERE u.tenant_id = $1 AND u.id = j.id) THEN 'User' \
             WHEN EXISTS (SELECT 1 FROM groups g WHERE g.tenant_id = $1 AND g.id = j.id) THEN 'Group' END AS kind, \
             gm.member_id AS present, gm.display AS display \
             FROM {rows} AS j \
             LEFT JOIN group_members gm ON gm.tenant_id = $1 AND gm.group_id = $2 AND gm.member_id = j.id"
        );
        let mut known: BTreeMap<String, (String, bool, Option<String>)> = BTreeMap::new();
        for row in bound(&classify, sql.args).fetch_all(&mut *conn).await? {
            let Some(kind) = row.try_get::<Option<String>, _>("kind")? else { continue };
            let present = row.try_get::<Option<String>, _>("present")?.is_some();
            known.insert(row.try_get("id")?, (kind, present, row.try_get("display")?));
        }
        let unknown: Vec<String> =
            ids.iter().filter(|id| !known.contains_key(**id)).take(5).map(|id| (*id).to_owned()).collect();
        if !unknown.is_empty() {
            return Err(unknown_members(&unknown));
        }
        let mut insert = Sql { args: vec![text(tenant.as_str()), text(group_id)] };
        let mut values = Vec::new();
        for member in members {
            let Some((kind, present, display)) = known.get(&member.value) else { continue };
            if !present {
                let id = insert.bind(text(&member.value));
                let kind = insert.bind(text(kind));
                let display = insert.bind(member.display.as_deref().map_or(Arg::NullText, text));
                values.push(format!("($1, $2, {id}, {kind}, {display})"));
            } else if member.display.is_some() && member.display != *display {
                // A `display` is kept as the IdP last sent it.
                bound(
                    "UPDATE group_members SET display = $4 WHERE tenant_id = $1 AND group_id = $2 AND member_id = $3",
                    vec![
                        text(tenant.as_str()),
                        text(group_id),
                        text(&member.value),
                        member.display.as_deref().map_or(Arg::NullText, text),
                    ],
                )
                .execute(&mut *conn)
                .await?;
                diff.redisplayed += 1;
            }
        }
        if !values.is_empty() {
            // The conflict clause guards against a concurrent insert of the same member.
            let sql = format!(
                "INSERT INTO group_members (tenant_id, group_id, member_id, member_type, display) VALUES {} \
                 ON CONFLICT (tenant_id, group_id, member_id) DO NOTHING RETURNING member_id, member_type",
                values.join(", ")
            );
            for row in bound(&sql, insert.args).fetch_all(&mut *conn).await? {
                diff.added(row.try_get("member_id")?, &row.try_get::<String, _>("member_type")?);
            }
        }
        Ok(())
    }

    /// Run a `DELETE ... RETURNING member_id, member_type` and record who left.
    async fn delete_members(
        &self,
        conn: &mut AnyConnection,
        sql: &str,
        args: Vec<Arg>,
        diff: &mut MemberDiff,
    ) -> Result<(), DomainError> {
        for row in bound(sql, args).fetch_all(&mut *conn).await? {
            diff.removed(row.try_get("member_id")?, &row.try_get::<String, _>("member_type")?);
        }
        Ok(())
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
        let mut sql = Sql { args: vec![text(tenant.as_str()), text(group_id)] };
        let list = id_list(self.dialect, &mut sql, ids);
        let statement = format!(
            "DELETE FROM group_members WHERE tenant_id = $1 AND group_id = $2 AND member_id IN {list} \
             RETURNING member_id, member_type"
        );
        self.delete_members(conn, &statement, sql.args, diff).await
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
        let sql = format!(
            "DELETE FROM group_members WHERE tenant_id = $1 AND group_id = $2 AND member_id NOT IN {} \
             RETURNING member_id, member_type",
            self.dialect.json_array_param(3)
        );
        let args = vec![text(tenant.as_str()), text(group_id), json_ids(&ids_of(members))];
        self.delete_members(conn, &sql, args, diff).await?;
        self.add_members(conn, tenant, group_id, members, diff).await
    }

    pub(super) async fn apply_member_ops(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        group_id: &str,
        ops: &[MemberOp],
        diff: &mut MemberDiff,
    ) -> Result<(), DomainError> {
        for op in ops {
            match op {
                MemberOp::Add(values) => self.add_members(conn, tenant, group_id, &new_members(values), diff).await?,
                MemberOp::Remove(ids) => self.remove_members(conn, tenant, group_id, ids, diff).await?,
                MemberOp::Replace(values) => {
                    self.replace_members(conn, tenant, group_id, &new_members(values), diff).await?;
                }
                MemberOp::RemoveAll => {
                    let sql = "DELETE FROM group_members WHERE tenant_id = $1 AND group_id = $2 \
                               RETURNING member_id, member_type";
                    self.delete_members(conn, sql, vec![text(tenant.as_str()), text(group_id)], diff).await?;
                }
                MemberOp::RemoveWhere(filter) => {
                    let mut sql = Sql { args: vec![text(tenant.as_str()), text(group_id)] };
                    let predicate =
                        Translator::new(self.dialect, ResourceKind::Group, &mut sql, false).member_predicate(filter)?;
                    let statement = format!(
                        "DELETE FROM group_members AS m WHERE m.tenant_id = $1 AND m.group_id = $2 AND ({predicate}) \
                         RETURNING member_id, member_type"
                    );
                    self.delete_members(conn, &statement, sql.args, diff).await?;
                }
            }
        }
        Ok(())
    }
}
