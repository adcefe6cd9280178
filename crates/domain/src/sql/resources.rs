//! Users and Groups: create, read, replace, patch, delete, search; group members as rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use async_trait::async_trait;
use proto::{PatchOperation, ResourceKind};
use serde_json::{json, Value};
use sqlx::AnyConnection;

use super::accounts::{
    candidate_probes, link_candidates, linking_external_id, others_with_email, LinkCandidates, UserWrite,
};
use super::dialect::GROUP_NAME;
use super::filter::{is_key_lookup, matches_at_most_one, Arg, Sql, Translator};
use super::members::{
    bind_member_rows, classify_members, ids_of, new_members, refuse_self, take_members, Known, MemberDiff, NewMember,
    SMALL_SET,
};
use super::reconcile::Users;
use super::statement::Statement;
use super::upkeep::Churned;
use super::write::{Scope, TenantWrite};
use super::{Dialect, SqlStore};
use crate::error::conflict_if_unique;
use crate::event::{changed_attributes, group_subject, is_active, user_subject, EventType};
use crate::link::linking_email;
use crate::resource::{GroupRef, Member, Page, Precondition, Query, Resource};
use crate::store::ResourceStore;
use crate::time_util::now_micros;
use crate::{DomainError, TenantId};

fn table(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "users",
        ResourceKind::Group => "groups",
    }
}

fn not_found(kind: ResourceKind) -> DomainError {
    DomainError::NotFound(match kind {
        ResourceKind::User => crate::Entity::User,
        ResourceKind::Group => crate::Entity::Group,
    })
}

fn invalid_value(detail: String) -> DomainError {
    DomainError::Invalid(proto::Error::invalid_value(detail))
}

/// The indexed columns derived from a canonical resource body.
struct Columns {
    user_name: Option<String>,
    external_id: Option<String>,
    display_name: Option<String>,
    active: bool,
    /// A user's linking email, lower-cased.
    email: Option<String>,
}

impl Columns {
    fn of(kind: ResourceKind, data: &Value) -> Result<Self, DomainError> {
        let s = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_owned);
        let columns = Self {
            user_name: s("userName"),
            external_id: s("externalId"),
            display_name: s("displayName"),
            active: data.get("active").and_then(Value::as_bool).unwrap_or(true),
            email: if kind == ResourceKind::User { linking_email(data) } else { None },
        };
        // normalize() guarantees these; the check keeps a bug from storing an unusable row.
        match kind {
            ResourceKind::User if columns.user_name.is_none() => Err(invalid_value("userName is required".into())),
            ResourceKind::Group if columns.display_name.is_none() => {
                Err(invalid_value("displayName is required".into()))
            }
            _ => Ok(columns),
        }
    }

    /// The columns a user or a group keeps besides its JSON, with their values: what an INSERT
    /// and an UPDATE of either write.
    fn values(&self, kind: ResourceKind) -> Vec<(&'static str, Arg)> {
        let opt = |value: &Option<String>| value.as_deref().map_or(Arg::NullText, |v| Arg::Text(v.to_owned()));
        match kind {
            ResourceKind::User => {
                let user_name = self.user_name.clone().unwrap_or_default();
                vec![
                    ("user_name", Arg::Text(user_name.clone())),
                    ("user_name_lower", Arg::Text(user_name.to_lowercase())),
                    ("external_id", opt(&self.external_id)),
                    ("display_name", opt(&self.display_name)),
                    ("active", Arg::Bool(self.active)),
                    ("email_lower", opt(&self.email)),
                ]
            }
            ResourceKind::Group => vec![
                ("display_name", Arg::Text(self.display_name.clone().unwrap_or_default())),
                ("external_id", opt(&self.external_id)),
            ],
        }
    }
}

const RESOURCE_COLUMNS: &str = "r.id, r.version, r.created_at, r.updated_at";

/// A user or a group as [`select_listed`] and the writes' `RETURNING` read it.
#[derive(Debug, sqlx::FromRow)]
struct ResourceRow {
    id: String,
    version: i64,
    created_at: i64,
    updated_at: i64,
    data: String,
}

impl ResourceRow {
    fn into_resource(self, kind: ResourceKind) -> Result<Resource, DomainError> {
        let data: Value = serde_json::from_str(&self.data)
            .map_err(|e| DomainError::Internal("stored resource is not JSON".into(), Some(Box::new(e))))?;
        Ok(Resource {
            kind,
            id: self.id,
            data,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            members: None,
            groups: None,
        })
    }
}

/// A user or a group as a search page or a single read gives it: with the number of matches
/// of the whole search (the page's own statement counts them) and, for users whose groups were
/// asked for, those groups as [`Dialect::user_groups`] writes them.
#[derive(Debug, sqlx::FromRow)]
struct ListedRow {
    #[sqlx(flatten)]
    row: ResourceRow,
    #[sqlx(default)]
    total: i64,
    #[sqlx(default)]
    groups: Option<String>,
}

impl ListedRow {
    fn into_resource(self, kind: ResourceKind, with_groups: bool) -> Result<Resource, DomainError> {
        let groups = match (with_groups, self.groups.as_deref()) {
            (false, _) => None,
            (true, None) => Some(Vec::new()),
            (true, Some(json)) => {
                let pairs: Vec<(String, Option<String>)> = serde_json::from_str(json).map_err(|e| {
                    DomainError::Internal("a user's groups are not JSON pairs".into(), Some(Box::new(e)))
                })?;
                Some(pairs.into_iter().map(|(id, display)| GroupRef { id, display }).collect())
            }
        };
        Ok(Resource { groups, ..self.row.into_resource(kind)? })
    }
}

/// The `SELECT` of a [`ListedRow`] but its total, from `r`: the columns and the JSON, and a
/// user's groups `with_groups`.
fn select_listed(dialect: Dialect, with_groups: bool) -> Statement {
    select_listed_after(Statement::new(dialect), with_groups)
}

/// [`select_listed`] appended to `statement`.
fn select_listed_after(statement: Statement, with_groups: bool) -> Statement {
    let dialect = statement.dialect();
    let select = statement.sql(&format!("SELECT {RESOURCE_COLUMNS}, {} AS data", dialect.data_column("r")));
    if with_groups {
        select.sql(&format!(", {} AS groups", dialect.user_groups("r")))
    } else {
        select
    }
}

/// A user as its insert reads it back, with whether another user of the tenant already had
/// its linking email (1) or not (0; also when it has none), and the accounts it could link to.
#[derive(Debug, sqlx::FromRow)]
struct CreatedRow {
    #[sqlx(flatten)]
    row: ResourceRow,
    #[sqlx(default)]
    duplicate_email: i64,
    #[sqlx(flatten)]
    candidates: LinkCandidates,
}

/// A user or a group as a write reads it before changing it: the row and what [`Before`] says,
/// which the same statement reads.
#[derive(Debug, sqlx::FromRow)]
struct ChangingRow {
    #[sqlx(flatten)]
    row: ResourceRow,
    #[sqlx(default)]
    linked: i64,
    #[sqlx(default)]
    account_id: Option<String>,
}

/// A member of a group as `load_relations` reads it.
#[derive(Debug, sqlx::FromRow)]
struct MemberRow {
    owner: String,
    id: String,
    kind: String,
    display: Option<String>,
}

/// A group of a user as `load_relations` reads it.
#[derive(Debug, sqlx::FromRow)]
struct GroupRefRow {
    owner: String,
    id: String,
    display: Option<String>,
}

/// A user's or a group's event subject fields as `member_subjects` reads them.
#[derive(Debug, sqlx::FromRow)]
struct SubjectRow {
    id: String,
    name: String,
    external_id: Option<String>,
    account_id: Option<String>,
}

/// Append ` FROM <the kind's table> r WHERE` the row of `id` of `tenant`: what a read by id
/// selects from.
fn row_by_id(statement: Statement, tenant: &TenantId, kind: ResourceKind, id: &str) -> Statement {
    statement
        .sql(&format!(" FROM {} r WHERE r.tenant_id = ", table(kind)))
        .bind(tenant.as_str())
        .sql(" AND r.id = ")
        .bind(id)
}

/// Append the `SELECT` of a [`ChangingRow`]: the row of `id` and what [`Before`] says of it
/// (a user's account, whether a group is linked).
fn select_changing(statement: Statement, tenant: &TenantId, kind: ResourceKind, id: &str) -> Statement {
    let select = select_listed_after(statement, false);
    let select = match kind {
        ResourceKind::User => select.sql(", r.account_id AS account_id"),
        ResourceKind::Group => select
            .sql(", CASE WHEN EXISTS (SELECT 1 FROM group_links l WHERE l.tenant_id = ")
            .bind(tenant.as_str())
            .sql(" AND l.group_id = ")
            .bind(id)
            .sql(") THEN 1 ELSE 0 END AS linked"),
    };
    row_by_id(select, tenant, kind, id)
}

/// `INSERT` a new user or group: its indexed columns and its JSON, version 1.
fn insert_resource(
    dialect: Dialect,
    tenant: &TenantId,
    kind: ResourceKind,
    id: &str,
    columns: &Columns,
    data: &Value,
    now: i64,
) -> Result<Statement, DomainError> {
    let values = columns.values(kind);
    let names: Vec<&str> = values.iter().map(|(column, _)| *column).collect();
    let mut statement = Statement::new(dialect)
        .sql(&format!(
            "INSERT INTO {} (tenant_id, id, {}, data, version, created_at, updated_at) VALUES (",
            table(kind),
            names.join(", ")
        ))
        .bind(tenant.as_str())
        .sql(", ")
        .bind(id);
    for (_, value) in values {
        statement = statement.sql(", ").bind(value);
    }
    Ok(statement
        .sql(", ")
        .bind_in(|n| dialect.json_param(n), data.to_string())?
        .sql(", 1, ")
        .bind(now)
        .sql(", ")
        .bind(now)
        .sql(")"))
}

/// `UPDATE` a user's or a group's indexed columns and JSON, bumping its version.
fn update_resource(
    dialect: Dialect,
    tenant: &TenantId,
    kind: ResourceKind,
    id: &str,
    columns: &Columns,
    data: &Value,
    now: i64,
) -> Result<Statement, DomainError> {
    let mut statement = Statement::new(dialect).sql(&format!("UPDATE {} SET ", table(kind)));
    for (column, value) in columns.values(kind) {
        statement = statement.sql(&format!("{column} = ")).bind(value).sql(", ");
    }
    Ok(statement
        .sql("data = ")
        .bind_in(|n| dialect.json_param(n), data.to_string())?
        .sql(", version = version + 1, updated_at = ")
        .bind(now)
        .sql(" WHERE tenant_id = ")
        .bind(tenant.as_str())
        .sql(" AND id = ")
        .bind(id))
}

/// The `RETURNING` clause that reads a written row back as a [`ResourceRow`].
fn returning_resource(dialect: Dialect, kind: ResourceKind) -> String {
    format!(" RETURNING id, version, created_at, updated_at, {} AS data", dialect.data_column(table(kind)))
}

impl SqlStore {
    async fn load_row(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Resource, DomainError> {
        let row: ResourceRow = row_by_id(select_listed(self.dialect, false), tenant, kind, id)
            .query_as()
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| not_found(kind))?;
        row.into_resource(kind)
    }

    /// The row a write is about to change (locked if `lock`) and what its change needs to know
    /// before it ([`Before`]), in one statement. Only tenant-wide writes link groups, and a write
    /// holds its tenant from its first statement on; a user's account changes only with its row,
    /// which a user's write locks: what it says holds until the write ends.
    async fn load_changing(
        &self,
        w: &mut TenantWrite,
        kind: ResourceKind,
        id: &str,
        lock: bool,
    ) -> Result<(Resource, Before), DomainError> {
        let row: ChangingRow = select_changing(Statement::new(self.dialect), &w.tenant, kind, id)
            .sql(if lock { self.dialect.for_update() } else { "" })
            .query_as()
            .fetch_optional(&mut *w.tx)
            .await?
            .ok_or_else(|| not_found(kind))?;
        Ok((row.row.into_resource(kind)?, Before { linked: row.linked != 0, account: row.account_id }))
    }

    /// Fill in `members` (groups) or `groups` (users) for a page of resources, in one query.
    async fn load_relations(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        resources: &mut [Resource],
    ) -> Result<(), DomainError> {
        let Some(first) = resources.first() else { return Ok(()) };
        let kind = first.kind;
        let ids: Vec<&str> = resources.iter().map(|r| r.id.as_str()).collect();
        let d = self.dialect;
        match kind {
            ResourceKind::Group => {
                let statement = Statement::new(d)
                    .sql(
                        "SELECT m.group_id AS owner, m.member_id AS id, m.member_type AS kind, \
                         m.display AS display FROM group_members m WHERE m.tenant_id = ",
                    )
                    .bind(tenant.as_str())
                    .sql(" AND m.group_id IN ");
                let statement = statement.id_list(&ids).sql(" ORDER BY m.group_id, m.member_id");
                let rows: Vec<MemberRow> = statement.query_as().fetch_all(&mut *conn).await?;
                let mut by_group: HashMap<String, Vec<Member>> = HashMap::new();
                for row in rows {
                    by_group.entry(row.owner).or_default().push(Member {
                        id: row.id,
                        kind: if row.kind == "Group" { ResourceKind::Group } else { ResourceKind::User },
                        display: row.display,
                    });
                }
                for r in resources.iter_mut() {
                    r.members = Some(by_group.remove(&r.id).unwrap_or_default());
                }
            }
            ResourceKind::User => {
                // A page of users: their ids as placeholders, so the member index is probed per
                // user even when a large group makes `group_members` large.
                let statement = Statement::new(d)
                    .sql(&format!(
                        "SELECT m.member_id AS owner, m.group_id AS id, {GROUP_NAME} AS display \
                         FROM {} WHERE m.tenant_id = ",
                        d.members_by_member()
                    ))
                    .bind(tenant.as_str())
                    .sql(" AND m.member_id IN ");
                let statement = statement.id_list(&ids).sql(" ORDER BY m.member_id, display, m.group_id");
                let rows: Vec<GroupRefRow> = statement.query_as().fetch_all(&mut *conn).await?;
                let mut by_user: HashMap<String, Vec<GroupRef>> = HashMap::new();
                for row in rows {
                    by_user.entry(row.owner).or_default().push(GroupRef { id: row.id, display: row.display });
                }
                for r in resources.iter_mut() {
                    r.groups = Some(by_user.remove(&r.id).unwrap_or_default());
                }
            }
        }
        Ok(())
    }

    async fn load_one(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        with_relations: bool,
    ) -> Result<Resource, DomainError> {
        if kind == ResourceKind::User && with_relations {
            // A user and its groups in one statement.
            let row: ListedRow = row_by_id(select_listed(self.dialect, true), tenant, kind, id)
                .query_as()
                .fetch_optional(&mut *conn)
                .await?
                .ok_or_else(|| not_found(kind))?;
            return row.into_resource(kind, true);
        }
        let mut resource = self.load_row(conn, tenant, kind, id).await?;
        if with_relations {
            self.load_relations(conn, tenant, std::slice::from_mut(&mut resource)).await?;
        }
        Ok(resource)
    }

    /// `group.member_added` / `group.member_removed` for each member who joined or left a
    /// group in this write, naming the group and the user (or the nested group).
    fn emit_member_events(w: &mut TenantWrite, group: &Value, diff: &MemberDiff) {
        for (kind, members) in
            [(EventType::GroupMemberRemoved, &diff.removed), (EventType::GroupMemberAdded, &diff.added)]
        {
            w.emit_members(kind, group, members.iter().map(|(id, kind)| (id.clone(), *kind)).collect());
        }
    }

    /// The subjects of users (`id`, `userName`, `externalId`, `productAccountId`) or groups
    /// (`id`, `displayName`, `externalId`) by id, in one query.
    async fn member_subjects(
        &self,
        w: &mut TenantWrite,
        kind: ResourceKind,
        ids: &[&str],
    ) -> Result<HashMap<String, Value>, DomainError> {
        let mut subjects = HashMap::new();
        if ids.is_empty() {
            return Ok(subjects);
        }
        let select = match kind {
            ResourceKind::User => "SELECT id, user_name AS name, external_id, account_id FROM users WHERE tenant_id = ",
            ResourceKind::Group => {
                "SELECT id, display_name AS name, external_id, CAST(NULL AS TEXT) AS account_id FROM groups WHERE tenant_id = "
            }
        };
        let statement = Statement::new(self.dialect).sql(select).bind(w.tenant.as_str()).sql(" AND id IN ");
        let statement = statement.id_list(ids);
        let name_key = if kind == ResourceKind::User { "userName" } else { "displayName" };
        let rows: Vec<SubjectRow> = statement.query_as().fetch_all(&mut *w.tx).await?;
        for row in rows {
            let mut subject = json!({"id": row.id, name_key: row.name});
            if let Some(external_id) = row.external_id {
                subject["externalId"] = Value::String(external_id);
            }
            if let Some(account) = row.account_id {
                subject["productAccountId"] = Value::String(account);
            }
            subjects.insert(row.id, subject);
        }
        Ok(subjects)
    }

    /// Write a resource's new JSON and columns, bumping its version; the row as stored (read back
    /// by the same statement).
    async fn write_row(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        data: &Value,
    ) -> Result<Resource, DomainError> {
        let columns = Columns::of(kind, data)?;
        let row: ResourceRow = update_resource(self.dialect, tenant, kind, id, &columns, data, now_micros())?
            .sql(&returning_resource(self.dialect, kind))
            .query_as()
            .fetch_one(&mut *conn)
            .await
            .map_err(user_name_taken(data))?;
        if kind == ResourceKind::Group {
            self.churn.add(Churned::Groups, 1);
        }
        row.into_resource(kind)
    }

    /// Bump a group's version after its members alone changed: its JSON stays as it is, and the
    /// update, which member PATCHes of one group make in turn, writes no more than it must.
    async fn bump_group(&self, conn: &mut AnyConnection, tenant: &TenantId, id: &str) -> Result<Resource, DomainError> {
        let row: ResourceRow = Statement::new(self.dialect)
            .sql("UPDATE groups SET version = version + 1, updated_at = ")
            .bind(now_micros())
            .sql(" WHERE tenant_id = ")
            .bind(tenant.as_str())
            .sql(" AND id = ")
            .bind(id)
            .sql(&returning_resource(self.dialect, ResourceKind::Group))
            .query_as()
            .fetch_one(&mut *conn)
            .await?;
        self.churn.add(Churned::Groups, 1);
        row.into_resource(ResourceKind::Group)
    }

    /// Bump the version of groups whose member set changed as a side effect.
    async fn touch_groups_with_member(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        member_id: &str,
    ) -> Result<(), DomainError> {
        let touched = Statement::new(self.dialect)
            .sql("UPDATE groups SET version = version + 1, updated_at = ")
            .bind(now_micros())
            .sql(" WHERE tenant_id = ")
            .bind(tenant.as_str())
            .sql(" AND id IN (SELECT group_id FROM group_members WHERE tenant_id = ")
            .bind(tenant.as_str())
            .sql(" AND member_id = ")
            .bind(member_id)
            .sql(")")
            .query()
            .execute(&mut *conn)
            .await?;
        self.churn.add(Churned::Groups, touched.rows_affected());
        Ok(())
    }

    fn check_precondition(precondition: &Precondition, resource: &Resource) -> Result<(), DomainError> {
        match precondition {
            Precondition::IfMatch(tags) if !tags.matches(resource.version) => {
                Err(DomainError::PreconditionFailed { current: resource.version })
            }
            _ => Ok(()),
        }
    }

    pub(super) async fn search_kind(
        &self,
        conn: &mut AnyConnection,
        tenant: &TenantId,
        kind: ResourceKind,
        query: &Query,
        lenient: bool,
        window: Window,
    ) -> Result<(u64, Vec<Resource>), DomainError> {
        let Window { offset, limit } = window;
        let mut sql = Sql::default();
        let mut translator = Translator::new(self.dialect, kind, &mut sql, lenient);
        let predicate = match &query.filter {
            Some(f) => translator.predicate(f)?,
            None => "(1 = 1)".into(),
        };
        let order = match &query.sort_by {
            Some(path) => {
                let key = translator.sort_key(path)?;
                let dir = if query.descending { "DESC" } else { "ASC" };
                format!("{key} {dir} NULLS LAST, r.id")
            }
            // Ids are UUIDv7, so id order is creation order and pages are stable.
            None => "r.id".into(),
        };
        // `FROM <table> r WHERE <the search>`, after whatever `select` a statement starts with.
        let matching = |select: Statement| -> Result<Statement, DomainError> {
            select
                .sql(&format!(" FROM {} r WHERE r.tenant_id = ", table(kind)))
                .bind(tenant.as_str())
                .sql(" AND ")
                .fragment(&predicate, &sql.args)
        };
        let count = |select: Statement| matching(select.sql("SELECT COUNT(*) AS n"));
        if limit == 0 {
            return Ok((total_alone(conn, count(Statement::new(self.dialect))?).await?, Vec::new()));
        }
        // The page, the total (an uncorrelated subquery, counted once) and, for users, their
        // groups, in one round trip. A search that matches at most one resource (`userName eq`,
        // what every IdP sends before a create) is counted by its page: no subquery to plan.
        let with_groups = query.with_members && kind == ResourceKind::User;
        let mut select = select_listed(self.dialect, with_groups);
        let counted = offset == 0 && query.filter.as_ref().is_some_and(|f| matches_at_most_one(kind, f));
        if !counted {
            select = count(select.sql(", ("))?.sql(") AS total");
        }
        // Nor does it need an order or a window (its page is every match), and without them its
        // plan is the same for any parameters: with `LIMIT $n OFFSET $m` PostgreSQL estimated the
        // generic plan of a user's search costlier than a custom one once `group_members` had
        // statistics, and so planned every run again (docs/benchmarks.md).
        let page = if counted {
            matching(select)?
        } else {
            // The window is taken in a subquery and the page's columns computed outside it: a
            // row skipped by `OFFSET` is neither turned into text nor has its groups read (deep
            // pages of a list, as an Okta import walks it, cost as much as the first).
            matching(select.sql(" FROM (SELECT r.*"))?
                .sql(" ORDER BY ")
                .fragment(&order, &sql.args)?
                .sql(" LIMIT ")
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .sql(" OFFSET ")
                .bind(i64::try_from(offset).unwrap_or(i64::MAX))
                .sql(") r ORDER BY ")
                .fragment(&order, &sql.args)?
        };
        let rows: Vec<ListedRow> = page.query_as().fetch_all(&mut *conn).await?;
        let total = match rows.first() {
            Some(_) if counted => u64::try_from(rows.len()).unwrap_or(0),
            Some(row) => u64::try_from(row.total).unwrap_or(0),
            None if offset == 0 => 0,
            // Past the last match: the total alone.
            None => total_alone(conn, count(Statement::new(self.dialect))?).await?,
        };
        let mut resources =
            rows.into_iter().map(|row| row.into_resource(kind, with_groups)).collect::<Result<Vec<_>, _>>()?;
        if query.with_members && kind == ResourceKind::Group {
            self.load_relations(conn, tenant, &mut resources).await?;
        }
        Ok((total, resources))
    }
}

/// The number a `SELECT COUNT(*)` statement gives.
async fn total_alone(conn: &mut AnyConnection, count: Statement) -> Result<u64, DomainError> {
    let (total,): (i64,) = count.query_as().fetch_one(&mut *conn).await?;
    Ok(u64::try_from(total).unwrap_or(0))
}

/// Which rows of a result a page takes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    pub(super) offset: u64,
    pub(super) limit: u64,
}

/// A unique violation on a resource write is a userName clash; anything else stays an error.
fn user_name_taken(data: &Value) -> impl FnOnce(sqlx::Error) -> DomainError + '_ {
    conflict_if_unique(move || {
        let name = data.get("userName").and_then(Value::as_str).unwrap_or_default();
        format!("userName `{name}` is already taken in this tenant")
    })
}

/// How a write changed a user or a group, for its events.
struct Change<'a> {
    id: &'a str,
    /// The row as it was read at the start of the write.
    current: &'a Resource,
    before: &'a Value,
    /// A user: the product account it was linked to when the write read it.
    account: Option<String>,
    after: &'a Value,
    /// A group's members who joined or left.
    members: MemberDiff,
    /// Where the write's own events go: before what relinking a renamed group emitted.
    mark: usize,
}

impl SqlStore {
    /// Events, linking and reconciliation after a user's JSON changed.
    async fn user_changed(&self, w: &mut TenantWrite, change: Change<'_>) -> Result<(), DomainError> {
        let mut changed = changed_attributes(change.before, change.after);
        let (was_active, now_active) = (is_active(change.before), is_active(change.after));
        changed.retain(|k| k != "active");
        let email_changed = linking_email(change.before) != linking_email(change.after);
        let write = UserWrite::Changed { email_changed, account: change.account };
        let link = self.link_user(w, change.id, change.after, write).await?;
        let subject = user_subject(change.id, change.after, link.account.as_deref());
        if !changed.is_empty() {
            let mut data = json!({"user": subject, "changed": changed});
            if link.duplicate_email {
                data["flags"] = json!(["duplicate_email"]);
            }
            w.emit(EventType::UserUpdated, data);
        }
        if let Some(data) = link.event(subject.clone()) {
            w.emit(EventType::UserLinked, data);
        }
        if was_active != now_active {
            let kind = if now_active { EventType::UserReactivated } else { EventType::UserDeactivated };
            w.emit(kind, json!({"user": subject}));
            self.reconcile(w, Users::These(vec![change.id.to_owned()])).await?;
        }
        Ok(())
    }

    /// Events after a group's JSON or members changed (reconciliation is the caller's): the
    /// group's own, then one per member who joined or left.
    async fn group_changed(&self, w: &mut TenantWrite, change: Change<'_>) -> Result<(), DomainError> {
        let mut changed = changed_attributes(change.before, change.after);
        if change.members.changed() {
            changed.push("members".into());
        }
        let subject = group_subject(change.id, change.after);
        // Relinking a renamed group may have emitted organization events already: the group's
        // own events go before them.
        let after_relink = w.emitted();
        if !changed.is_empty() {
            w.emit(EventType::GroupUpdated, json!({"group": subject, "changed": changed}));
        }
        Self::emit_member_events(w, &subject, &change.members);
        w.move_to(after_relink, change.mark);
        Ok(())
    }

    /// After a group's members (and perhaps its name) changed: relink it if it was renamed; the
    /// users whose memberships the change can affect, to reconcile.
    async fn group_after_change(
        &self,
        w: &mut TenantWrite,
        id: &str,
        renamed_to: Option<&str>,
        before: &Before,
        diff: &MemberDiff,
    ) -> Result<Vec<String>, DomainError> {
        let relinked = match renamed_to {
            Some(name) => self.link_group(w, id, name).await?,
            None => false,
        };
        let users = |members: &BTreeMap<String, ResourceKind>| {
            members.iter().filter(|(_, k)| **k == ResourceKind::User).map(|(id, _)| id.clone()).collect::<Vec<_>>()
        };
        let affected: Vec<String> = if relinked {
            // Everyone in it now, and everyone who left it in this write.
            let after = self.user_members(w, &[id.to_owned()]).await?;
            after.into_iter().chain(users(&diff.removed)).collect::<BTreeSet<_>>().into_iter().collect()
        } else if !before.linked {
            Vec::new()
        } else {
            users(&diff.added).into_iter().chain(users(&diff.removed)).collect()
        };
        Ok(affected)
    }
}

impl SqlStore {
    /// The end of a PUT or PATCH: store the new JSON if anything changed (a member-only change
    /// still gets a new version: the group's representation changed), say what changed, then
    /// reconcile the memberships it affects (after the change that caused them, in the event
    /// order too), and commit.
    async fn finish_change(
        &self,
        mut w: TenantWrite,
        tenant: &TenantId,
        kind: ResourceKind,
        change: Change<'_>,
        affected: Vec<String>,
        with_members: bool,
    ) -> Result<Resource, DomainError> {
        let (id, before, after) = (change.id, change.before, change.after);
        let changed = before != after || change.members.changed();
        let mut resource = Resource { members: None, groups: None, ..change.current.clone() };
        // A user's row is written first: reconciliation reads whether it is active.
        if kind == ResourceKind::User && changed {
            resource = self.write_row(&mut w.tx, tenant, kind, id, after).await?;
        }
        match kind {
            ResourceKind::User => self.user_changed(&mut w, change).await?,
            ResourceKind::Group => self.group_changed(&mut w, change).await?,
        }
        self.reconcile(&mut w, Users::These(affected)).await?;
        if with_members {
            self.load_relations(&mut w.tx, tenant, std::slice::from_mut(&mut resource)).await?;
        }
        // A group's row is written last, after its events: member PATCHes of one group, which
        // hold rows only, then wait for each other's row for their version bump and commit alone.
        if kind == ResourceKind::Group && changed {
            w.append_events().await?;
            let row = if before == after {
                self.bump_group(&mut w.tx, tenant, id).await?
            } else {
                self.write_row(&mut w.tx, tenant, kind, id, after).await?
            };
            resource = Resource { members: resource.members.take(), ..row };
        }
        w.commit().await?;
        Ok(resource)
    }
}

impl SqlStore {
    /// A group PATCH that only adds a few members ([`adds_few_members_only`]), holding rows on
    /// PostgreSQL: the group's row, the ids' classification, the users' locks and the new member
    /// rows are one statement ([`adding_members`]) where they would be three, since round trips
    /// are most of what such a PATCH costs the database. `None` (nothing kept) when the group's
    /// JSON turns out to change: the PATCH is then done again tenant-wide.
    async fn patch_adding_members(
        &self,
        mut w: TenantWrite,
        id: &str,
        ops: &[PatchOperation],
        expected: &proto::patch::PatchOutcome,
        members: &[NewMember],
        with_members: bool,
    ) -> Result<Option<Resource>, DomainError> {
        let tenant = w.tenant.clone();
        let rows: Vec<AddingRow> =
            adding_members(self.dialect, &tenant, id, members).query_as().fetch_all(&mut *w.tx).await?;
        let mut group = None;
        let mut classified = Vec::with_capacity(rows.len());
        let mut diff = MemberDiff::default();
        for row in rows {
            if let Some(kind) = &row.added_type {
                diff.added(row.member.clone(), kind);
            }
            classified.push((row.member, row.member_kind, row.present.is_some(), row.present_display));
            group.get_or_insert(row.group);
        }
        // No row: no such group (the statement inserted nothing without one).
        let group = group.ok_or_else(|| not_found(ResourceKind::Group))?;
        let before = Before { linked: group.linked != 0, account: None };
        let current = group.row.into_resource(ResourceKind::Group)?;
        let mut data = current.data.clone();
        if proto::patch::apply(ResourceKind::Group, &mut data, ops)? != *expected || data != current.data {
            return Ok(None);
        }
        let ids = ids_of(members);
        refuse_self(id, &ids)?;
        let known = Known::from_rows(classified);
        known.refuse_unknown(&ids)?;
        self.redisplay_members(&mut w.tx, &tenant, id, members, &known, &mut diff).await?;
        let mark = w.emitted();
        let affected = self.group_after_change(&mut w, id, None, &before, &diff).await?;
        let change =
            Change { id, current: &current, before: &current.data, account: None, after: &data, members: diff, mark };
        self.finish_change(w, &tenant, ResourceKind::Group, change, affected, with_members).await.map(Some)
    }
}

/// What [`adding_members`] returns per member id sent: the group's row (the same on every row)
/// and what the statement found and did for that id.
#[derive(Debug, sqlx::FromRow)]
struct AddingRow {
    #[sqlx(flatten)]
    group: ChangingRow,
    member: String,
    /// `User` or `Group`; none when the id is neither.
    member_kind: Option<String>,
    /// Set when the id was a member already.
    present: Option<String>,
    present_display: Option<String>,
    /// Set when the statement added it.
    added_type: Option<String>,
}

/// The group `group_id` with whether it is linked, and per member of `members`: its
/// classification ([`classify_members`], which locks the users among them), and the member rows
/// inserted for those that are a user or a group and not yet a member. A data-modifying `WITH`,
/// so PostgreSQL only. No rows when there is no such group; then nothing is inserted.
fn adding_members(dialect: Dialect, tenant: &TenantId, group_id: &str, members: &[NewMember]) -> Statement {
    let group = Statement::new(dialect).sql("WITH g AS (");
    let classify = select_changing(group, tenant, ResourceKind::Group, group_id).sql("), c AS (");
    let sent = classify_members(classify, tenant, group_id, &ids_of(members), true).sql("), s AS ");
    bind_member_rows(sent, members)
        .sql(", ins AS (INSERT INTO group_members (tenant_id, group_id, member_id, member_type, display) SELECT ")
        .bind(tenant.as_str())
        .sql(", ")
        .bind(group_id)
        .sql(
            ", c.id, c.kind, s.display FROM c JOIN s ON s.id = c.id \
             WHERE c.kind IS NOT NULL AND c.member_id IS NULL AND EXISTS (SELECT 1 FROM g) \
             ON CONFLICT (tenant_id, group_id, member_id) DO NOTHING RETURNING member_id, member_type) \
             SELECT g.id, g.version, g.created_at, g.updated_at, g.data, g.linked, c.id AS member, \
             c.kind AS member_kind, c.member_id AS present, c.display AS present_display, ins.member_type AS added_type \
             FROM g CROSS JOIN c LEFT JOIN ins ON ins.member_id = c.id",
        )
}

/// The members a group PATCH adds, and what it does, if it does nothing but add a few members
/// ([`SMALL_SET`] at most): judged on a group with nothing but a name, so the PATCH is checked
/// again against the group as read.
fn adds_few_members_only(ops: &[PatchOperation]) -> Option<(proto::patch::PatchOutcome, Vec<NewMember>)> {
    static NAMED: LazyLock<Option<Value>> = LazyLock::new(|| {
        let named = json!({"schemas": [proto::schema::GROUP], "displayName": "group"});
        proto::resource::normalize(ResourceKind::Group, named).ok()
    });
    let named = NAMED.as_ref()?;
    let mut patched = named.clone();
    let outcome = proto::patch::apply(ResourceKind::Group, &mut patched, ops).ok()?;
    if patched != *named {
        return None;
    }
    let mut values = Vec::new();
    for op in &outcome.member_ops {
        match op {
            proto::patch::MemberOp::Add(added) => values.extend(added.iter().cloned()),
            _ => return None,
        }
    }
    let members = new_members(&values);
    (!members.is_empty() && members.len() <= SMALL_SET).then_some((outcome, members))
}

/// What a user or a group was before a write changed it, besides its row.
struct Before {
    /// A group: whether it gives any organization (its members' memberships depend on it).
    linked: bool,
    /// A user: the product account it is linked to.
    account: Option<String>,
}

#[async_trait]
impl ResourceStore for SqlStore {
    #[tracing::instrument(name = "store.create", skip_all, fields(tenant = tenant.as_str(), kind = kind.name()))]
    async fn create(&self, tenant: &TenantId, kind: ResourceKind, body: Value) -> Result<Resource, DomainError> {
        retry_deadlocks(|| self.create_once(tenant, kind, body.clone())).await
    }

    #[tracing::instrument(name = "store.get", skip_all, fields(tenant = tenant.as_str(), kind = kind.name(), id = %id))]
    async fn get(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        with_members: bool,
        precondition: &Precondition,
    ) -> Result<Resource, DomainError> {
        // A user (and its groups) is one read by its key; a group's members are a read of their own.
        let mut conn =
            if kind == ResourceKind::User { self.lookup_connection().await? } else { self.pool.acquire().await? };
        let resource = self.load_one(&mut conn, tenant, kind, id, with_members).await?;
        match precondition {
            Precondition::IfNoneMatch(tags) if tags.matches(resource.version) => Err(DomainError::NotModified),
            other => Self::check_precondition(other, &resource).map(|()| resource),
        }
    }

    #[tracing::instrument(name = "store.replace", skip_all, fields(tenant = tenant.as_str(), kind = kind.name(), id = %id))]
    async fn replace(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        body: Value,
        precondition: &Precondition,
    ) -> Result<Resource, DomainError> {
        retry_deadlocks(|| self.replace_once(tenant, kind, id, body.clone(), precondition)).await
    }

    #[tracing::instrument(name = "store.patch", skip_all, fields(tenant = tenant.as_str(), kind = kind.name(), id = %id))]
    async fn patch(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        ops: &[PatchOperation],
        precondition: &Precondition,
        with_members: bool,
    ) -> Result<Resource, DomainError> {
        retry_deadlocks(|| async {
            // A group PATCH that only adds or removes a few members holds rows; one that changes
            // the group itself may relink it to organizations and is done again tenant-wide.
            match self.patch_once(tenant, kind, id, ops, precondition, with_members, Scope::Rows).await? {
                Some(resource) => Ok(resource),
                None => self
                    .patch_once(tenant, kind, id, ops, precondition, with_members, Scope::Tenant)
                    .await?
                    .ok_or_else(|| DomainError::Internal("a tenant-wide PATCH asked for the tenant".into(), None)),
            }
        })
        .await
    }

    #[tracing::instrument(name = "store.delete", skip_all, fields(tenant = tenant.as_str(), kind = kind.name(), id = %id))]
    async fn delete(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        precondition: &Precondition,
    ) -> Result<(), DomainError> {
        retry_deadlocks(|| self.delete_once(tenant, kind, id, precondition)).await
    }

    #[tracing::instrument(name = "store.search", skip_all, fields(tenant = tenant.as_str(), kind = kind.name()))]
    async fn search(&self, tenant: &TenantId, kind: ResourceKind, query: &Query) -> Result<Page, DomainError> {
        // What every IdP sends before it creates a user reads one key: it can keep its plan (an
        // order asked for could make another index look as good on a small table).
        let key_lookup = kind == ResourceKind::User
            && query.sort_by.is_none()
            && query.filter.as_ref().is_some_and(|f| is_key_lookup(kind, f));
        let mut conn = if key_lookup { self.lookup_connection().await? } else { self.pool.acquire().await? };
        let window = Window { offset: query.start_index.saturating_sub(1), limit: query.count };
        let (total, resources) = self.search_kind(&mut conn, tenant, kind, query, false, window).await?;
        Ok(Page { total, resources })
    }

    #[tracing::instrument(name = "store.search_all", skip_all, fields(tenant = tenant.as_str()))]
    async fn search_all(&self, tenant: &TenantId, query: &Query) -> Result<Page, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let offset = query.start_index.saturating_sub(1);
        let users = Window { offset, limit: query.count };
        let (users_total, mut resources) =
            self.search_kind(&mut conn, tenant, ResourceKind::User, query, true, users).await?;
        let taken = u64::try_from(resources.len()).unwrap_or(u64::MAX);
        let groups = Window { offset: offset.saturating_sub(users_total), limit: query.count.saturating_sub(taken) };
        let (groups_total, groups) =
            self.search_kind(&mut conn, tenant, ResourceKind::Group, query, true, groups).await?;
        resources.extend(groups);
        Ok(Page { total: users_total + groups_total, resources })
    }
}

/// The writes of the store, each done once; the trait's methods retry them when PostgreSQL
/// breaks a deadlock between two of them.
impl SqlStore {
    async fn create_once(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        mut body: Value,
    ) -> Result<Resource, DomainError> {
        let members = if kind == ResourceKind::Group { take_members(&mut body) } else { Vec::new() };
        let columns = Columns::of(kind, &body)?;
        let id = uuid::Uuid::now_v7().to_string();
        let now = now_micros();
        // A new user claims its linking email from the first statement on, so that its insert
        // can say whether another user has it (linking: `link_user`).
        let claim = columns.email.as_deref().map(|email| ("email", email));
        let mut w = self.begin_tenant_write_claiming(tenant, Scope::of_whole(kind), claim).await?;
        // A new user is read back by its own insert, and is in no group yet: no further reads.
        let insert = insert_resource(self.dialect, tenant, kind, &id, &columns, &body, now)?;
        let created = match kind {
            ResourceKind::User => {
                let returning = insert.sql(&returning_resource(self.dialect, kind));
                let returning = match &columns.email {
                    Some(email) => {
                        others_with_email(returning.sql(", CASE WHEN EXISTS ("), tenant.as_str(), email, &id)
                            .sql(") THEN 1 ELSE 0 END AS duplicate_email")
                    }
                    None => returning,
                };
                // The accounts it could link to, read by its insert too.
                let probes = candidate_probes(&w, linking_external_id(&body), columns.email.as_deref());
                let returning = link_candidates(returning, tenant.as_str(), &probes);
                let row: CreatedRow =
                    returning.query_as().fetch_one(&mut *w.tx).await.map_err(user_name_taken(&body))?;
                let write =
                    UserWrite::Created { duplicate_email: row.duplicate_email != 0, candidates: row.candidates };
                let link = self.link_user(&mut w, &id, &body, write).await?;
                let subject = user_subject(&id, &body, link.account.as_deref());
                let mut data = json!({"user": subject});
                if link.duplicate_email {
                    data["flags"] = json!(["duplicate_email"]);
                }
                w.emit(EventType::UserCreated, data);
                if let Some(data) = link.event(subject) {
                    w.emit(EventType::UserLinked, data);
                }
                Some(Resource { groups: Some(Vec::new()), ..row.row.into_resource(kind)? })
            }
            ResourceKind::Group => {
                insert.query().execute(&mut *w.tx).await.map_err(user_name_taken(&body))?;
                let subject = group_subject(&id, &body);
                w.emit(EventType::GroupCreated, json!({"group": subject}));
                let mut diff = MemberDiff::default();
                if !members.is_empty() {
                    self.add_members(&mut w.tx, tenant, &id, &members, false, &mut diff).await?;
                }
                Self::emit_member_events(&mut w, &subject, &diff);
                let display_name = columns.display_name.clone().unwrap_or_default();
                if self.link_group(&mut w, &id, &display_name).await? {
                    let users = self.user_members(&mut w, std::slice::from_ref(&id)).await?;
                    self.reconcile(&mut w, Users::These(users.into_iter().collect())).await?;
                }
                None
            }
        };
        let resource = match created {
            Some(resource) => resource,
            None => self.load_one(&mut w.tx, tenant, kind, &id, true).await?,
        };
        w.commit().await?;
        Ok(resource)
    }

    async fn replace_once(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        mut body: Value,
        precondition: &Precondition,
    ) -> Result<Resource, DomainError> {
        let mut w = self.begin_tenant_write(tenant, Scope::of_whole(kind)).await?;
        let (current, before) = self.load_changing(&mut w, kind, id, true).await?;
        Self::check_precondition(precondition, &current)?;
        let mark = w.emitted();
        let (members, affected) = match kind {
            ResourceKind::User => (MemberDiff::default(), Vec::new()),
            ResourceKind::Group => {
                let members = take_members(&mut body);
                let mut diff = MemberDiff::default();
                self.replace_members(&mut w.tx, tenant, id, &members, &mut diff).await?;
                let renamed_to = body.get("displayName").and_then(Value::as_str).filter(|_| body != current.data);
                let affected = self.group_after_change(&mut w, id, renamed_to, &before, &diff).await?;
                (diff, affected)
            }
        };
        let change = Change {
            id,
            current: &current,
            before: &current.data,
            account: before.account,
            after: &body,
            members,
            mark,
        };
        self.finish_change(w, tenant, kind, change, affected, true).await
    }

    /// One PATCH in `scope`; `None` when a [`Scope::Rows`] write finds it must be tenant-wide
    /// (nothing was written).
    #[allow(clippy::too_many_arguments)]
    async fn patch_once(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        ops: &[PatchOperation],
        precondition: &Precondition,
        with_members: bool,
        scope: Scope,
    ) -> Result<Option<Resource>, DomainError> {
        let mut w = self.begin_tenant_write(tenant, scope).await?;
        if w.locks_rows() && kind == ResourceKind::Group && matches!(precondition, Precondition::None) {
            if let Some((outcome, members)) = adds_few_members_only(ops) {
                return self.patch_adding_members(w, id, ops, &outcome, &members, with_members).await;
            }
        }
        // A group's JSON changes only in tenant-wide writes, so a member PATCH reads it without
        // holding its row (unless `If-Match` needs the version to stay): member rows are added
        // and removed each on its own key, and the group's row is locked only by its version
        // bump at the end.
        let lock = !(scope == Scope::Rows && kind == ResourceKind::Group && matches!(precondition, Precondition::None));
        let (current, before) = self.load_changing(&mut w, kind, id, lock).await?;
        Self::check_precondition(precondition, &current)?;
        let mut data = current.data.clone();
        let outcome = proto::patch::apply(kind, &mut data, ops)?;
        let data_changed = data != current.data;
        if scope == Scope::Rows && kind == ResourceKind::Group && (data_changed || !few_members(&outcome.member_ops)) {
            return Ok(None);
        }
        let mark = w.emitted();
        let (members, affected) = if kind == ResourceKind::Group && (!outcome.member_ops.is_empty() || data_changed) {
            let mut diff = MemberDiff::default();
            let lock_users = w.locks_rows();
            self.apply_member_ops(&mut w.tx, tenant, id, &outcome.member_ops, lock_users, &mut diff).await?;
            let renamed_to = data.get("displayName").and_then(Value::as_str).filter(|_| data_changed);
            let affected = self.group_after_change(&mut w, id, renamed_to, &before, &diff).await?;
            (diff, affected)
        } else {
            (MemberDiff::default(), Vec::new())
        };
        let change = Change {
            id,
            current: &current,
            before: &current.data,
            account: before.account,
            after: &data,
            members,
            mark,
        };
        self.finish_change(w, tenant, kind, change, affected, with_members).await.map(Some)
    }

    async fn delete_once(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        precondition: &Precondition,
    ) -> Result<(), DomainError> {
        let mut w = self.begin_tenant_write(tenant, Scope::of_whole(kind)).await?;
        let (current, before) = self.load_changing(&mut w, kind, id, true).await?;
        Self::check_precondition(precondition, &current)?;
        // Whose memberships the deletion can change: the user, or a linked group's users.
        let affected: Vec<String> = match kind {
            ResourceKind::User => vec![id.to_owned()],
            ResourceKind::Group if before.linked => {
                self.user_members(&mut w, &[id.to_owned()]).await?.into_iter().collect()
            }
            ResourceKind::Group => Vec::new(),
        };
        let account = before.account;
        self.touch_groups_with_member(&mut w.tx, tenant, id).await?;
        // The groups it leaves, each with a `group.member_removed` naming it.
        let left: Vec<(String,)> = Statement::new(self.dialect)
            .sql("DELETE FROM group_members WHERE tenant_id = ")
            .bind(tenant.as_str())
            .sql(" AND member_id = ")
            .bind(id)
            .sql(" RETURNING group_id")
            .query_as()
            .fetch_all(&mut *w.tx)
            .await?;
        let left: Vec<String> = left.into_iter().map(|(group,)| group).collect();
        let left_refs: Vec<&str> = left.iter().map(String::as_str).collect();
        let groups = self.member_subjects(&mut w, ResourceKind::Group, &left_refs).await?;
        let member = match kind {
            ResourceKind::User => {
                let mut subject = json!({"id": id});
                for key in ["userName", "externalId"] {
                    if let Some(value) = current.data.get(key) {
                        subject[key] = value.clone();
                    }
                }
                if let Some(account) = &account {
                    subject["productAccountId"] = Value::String(account.clone());
                }
                ("user", subject)
            }
            ResourceKind::Group => ("member_group", group_subject(id, &current.data)),
        };
        for group in &left {
            let group = groups.get(group).cloned().unwrap_or_else(|| json!({"id": group}));
            w.emit(EventType::GroupMemberRemoved, json!({"group": group, member.0: member.1}));
        }
        if kind == ResourceKind::Group {
            // Its own member rows: `group_members` has no foreign key to `groups` (see migration 0011).
            Statement::new(self.dialect)
                .sql("DELETE FROM group_members WHERE tenant_id = ")
                .bind(tenant.as_str())
                .sql(" AND group_id = ")
                .bind(id)
                .query()
                .execute(&mut *w.tx)
                .await?;
        }
        Statement::new(self.dialect)
            .sql(&format!("DELETE FROM {} WHERE tenant_id = ", table(kind)))
            .bind(tenant.as_str())
            .sql(" AND id = ")
            .bind(id)
            .query()
            .execute(&mut *w.tx)
            .await?;
        self.reconcile(&mut w, Users::These(affected)).await?;
        match kind {
            ResourceKind::User => {
                w.emit(EventType::UserDeleted, json!({"user": user_subject(id, &current.data, account.as_deref())}));
            }
            ResourceKind::Group => {
                self.archive_group_organizations(&mut w, id).await?;
                w.emit(EventType::GroupDeleted, json!({"group": group_subject(id, &current.data)}));
            }
        }
        w.commit().await
    }
}

/// Whether a group PATCH's member operations add or remove few enough ids, named one by one, to
/// be done holding rows: the users to reconcile are locked one by one.
fn few_members(ops: &[proto::patch::MemberOp]) -> bool {
    use proto::patch::MemberOp;
    let mut ids = 0;
    for op in ops {
        ids += match op {
            MemberOp::Add(values) => values.len(),
            MemberOp::Remove(values) => values.len(),
            MemberOp::RemoveWhere(_) | MemberOp::RemoveAll | MemberOp::Replace(_) => return false,
        };
    }
    ids <= SMALL_SET
}

/// Run `write` again (twice at most) when PostgreSQL aborted it to break a deadlock: writes that
/// hold rows lock them in the order they meet them, and two such writes (a user deleted while a
/// group PATCH adds it, say) can wait for each other. The attempt that lost was rolled back.
async fn retry_deadlocks<T, F, Fut>(mut write: F) -> Result<T, DomainError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DomainError>>,
{
    let mut retries = 0;
    loop {
        match write().await {
            Err(e) if e.is_deadlock() && retries < 2 => {
                retries += 1;
                tracing::debug!(retries, "write lost a deadlock; retrying");
            }
            other => return other,
        }
    }
}
