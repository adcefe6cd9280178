//! One write to one tenant: a transaction that holds the tenant in a [`Scope`], gathers the
//! events the write causes, and appends them just before it commits.
//!
//! On PostgreSQL a write's events go to `pending_events` unnumbered; the sequencer
//! (`events.rs`) numbers committed ones later, in one short transaction per tenant, before
//! anyone reads the feed or delivers webhooks. Numbers are therefore gap-free and in the order
//! writes became visible, a reader never skips an event that commits late, and no write holds
//! the tenant through its commit flush: concurrent writes of one tenant share WAL flushes.
//! SQLite has one writer (`BEGIN IMMEDIATE`), so there a write numbers its events itself.
//!
//! What the tenant lock used to give a write is kept by narrower locks in [`Scope::Rows`]; see
//! docs/memberships.md#when-it-happens.

use proto::ResourceKind;
use serde::Serialize;
use serde_json::Value;
use sqlx::{Any, Transaction};

use super::filter::Arg;
use super::members::bind_pair_rows;
use super::statement::Statement;
use super::tenants::{TenantRow, TENANT_COLUMNS};
use super::{Dialect, SqlStore};
use crate::event::{EventType, NewEvent};
use crate::time_util::now_micros;
use crate::{DomainError, Tenant, TenantId, TenantName, TenantSettings};

pub(super) struct TenantWrite {
    pub tx: Transaction<'static, Any>,
    pub tenant: TenantId,
    pub settings: TenantSettings,
    scope: Scope,
    events: Vec<Pending>,
    dialect: Dialect,
}

/// How much of its tenant a write holds (PostgreSQL; SQLite serializes every write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// The rows it changes: its user or group (locked when read), the users it reconciles
    /// (locked in id order), the email it checks and the account it links. Such writes of one
    /// tenant run side by side; the tenant's row is held `FOR KEY SHARE`, so a tenant-wide write
    /// waits for them and they wait for it.
    Rows,
    /// The whole tenant (`FOR UPDATE` on its row): settings, mappings, organizations, accounts,
    /// and the group writes that link groups to organizations (create, rename, delete), which
    /// create, restore and archive organizations.
    Tenant,
}

impl Scope {
    /// Whether a write in this scope must lock the rows it reads and decides on itself: a
    /// [`Scope::Rows`] write on PostgreSQL (elsewhere the tenant, or SQLite's single writer,
    /// covers them).
    fn locks_rows(self, dialect: Dialect) -> bool {
        self == Scope::Rows && dialect == Dialect::Postgres
    }

    /// The scope of a create, replace or delete of a `kind`: a user's holds its rows; a group's
    /// holds the tenant, because creating, renaming or deleting a group links it to
    /// organizations (creating, restoring or archiving them).
    pub(super) fn of_whole(kind: ResourceKind) -> Self {
        if kind == ResourceKind::User {
            Self::Rows
        } else {
            Self::Tenant
        }
    }
}

/// Events gathered by a write, in order, waiting for their numbers.
enum Pending {
    One(NewEvent),
    /// One `group.member_added` / `group.member_removed` per member, in this order. The
    /// database builds them from the member rows when it appends them: a large group change
    /// then costs one statement, not a read of every member and a payload per member sent back.
    Members {
        event_type: EventType,
        group: Value,
        members: Vec<(String, ResourceKind)>,
    },
}

impl Pending {
    fn count(&self) -> usize {
        match self {
            Pending::One(_) => 1,
            Pending::Members { members, .. } => members.len(),
        }
    }
}

/// An event as the append statement reads it from its JSON parameter.
#[derive(Serialize)]
struct EventRow<'a> {
    #[serde(rename = "type")]
    event_type: &'static str,
    data: &'a Value,
}

impl SqlStore {
    /// Begin a write to the tenant with this id, holding it in `scope`.
    pub(super) async fn begin_tenant_write(&self, tenant: &TenantId, scope: Scope) -> Result<TenantWrite, DomainError> {
        self.lock_tenant(TenantKey::Id(tenant), scope, None).await
    }

    /// [`Self::begin_tenant_write`] that also holds `claim` (`(kind, key)`, as
    /// [`TenantWrite::lock_key`] takes it) from its first statement on: every later statement of
    /// the write then sees what the previous holder of the claim committed, one round trip sooner.
    pub(super) async fn begin_tenant_write_claiming(
        &self,
        tenant: &TenantId,
        scope: Scope,
        claim: Option<(&str, &str)>,
    ) -> Result<TenantWrite, DomainError> {
        self.lock_tenant(TenantKey::Id(tenant), scope, claim).await
    }

    /// Begin a tenant-wide write to the tenant named `name`.
    pub(super) async fn begin_tenant_write_by_name(&self, name: &TenantName) -> Result<TenantWrite, DomainError> {
        self.lock_tenant(TenantKey::Name(name), Scope::Tenant, None).await
    }

    /// Begin a write to `tenant`, holding it in `scope` (and `claim`). The lock is taken by the
    /// statement that reads the settings, so they are the latest committed ones.
    async fn lock_tenant(
        &self,
        tenant: TenantKey<'_>,
        scope: Scope,
        claim: Option<(&str, &str)>,
    ) -> Result<TenantWrite, DomainError> {
        let mut tx = self.begin_write().await?;
        let lock = match (self.dialect, scope) {
            (Dialect::Sqlite, _) => "",
            (Dialect::Postgres, Scope::Rows) => " FOR KEY SHARE OF n",
            (Dialect::Postgres, Scope::Tenant) => " FOR UPDATE OF n",
        };
        let mut statement = Statement::new(self.dialect).sql(&format!("SELECT {TENANT_COLUMNS} FROM tenants n"));
        // Only writes that hold rows claim keys (see `TenantWrite::lock_key`); the claim is a
        // one-row relation joined in, whose value (void) is never read back.
        if let (TenantKey::Id(id), Some((kind, key)), true) = (tenant, claim, scope.locks_rows(self.dialect)) {
            statement = advisory_lock(statement.sql(" CROSS JOIN (SELECT "), id, kind, key).sql(") claim");
        }
        let (column, key) = match tenant {
            TenantKey::Id(id) => ("id", id.as_str()),
            TenantKey::Name(name) => ("name", name.as_str()),
        };
        let row: TenantRow = statement
            .sql(&format!(" WHERE n.{column} = "))
            .bind(key)
            .sql(lock)
            .query_as()
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(DomainError::NotFound(crate::Entity::Tenant))?;
        let tenant = Tenant::try_from(row)?;
        Ok(TenantWrite {
            tx,
            tenant: tenant.id,
            settings: tenant.settings,
            scope,
            events: Vec::new(),
            dialect: self.dialect,
        })
    }
}

/// How a write names the tenant it begins with.
#[derive(Clone, Copy)]
enum TenantKey<'a> {
    Id(&'a TenantId),
    Name(&'a TenantName),
}

/// Append the call that holds `key` (of `kind`) of `tenant` until the transaction ends: a
/// PostgreSQL advisory lock on a hash of the three.
fn advisory_lock(statement: Statement, tenant: &TenantId, kind: &str, key: &str) -> Statement {
    statement
        .sql("pg_advisory_xact_lock(hashtextextended(")
        .bind(format!("{}\u{1f}{kind}\u{1f}{key}", tenant.as_str()))
        .sql(", 0))")
}

impl TenantWrite {
    /// Whether this write must lock the rows it reads and decides on itself ([`Scope::locks_rows`]).
    pub fn locks_rows(&self) -> bool {
        self.scope.locks_rows(self.dialect)
    }

    /// Hold `key` (an email, say) of this tenant until the write ends, so that writes deciding
    /// on the same key take turns; each then sees what the previous one committed. Only for
    /// writes that [`Self::locks_rows`].
    pub async fn lock_key(&mut self, kind: &str, key: &str) -> Result<(), DomainError> {
        if !self.locks_rows() {
            return Ok(());
        }
        advisory_lock(Statement::new(self.dialect).sql("SELECT "), &self.tenant, kind, key)
            .query()
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub fn emit(&mut self, event_type: EventType, data: Value) {
        self.events.push(Pending::One(NewEvent { event_type, data }));
    }

    /// One `event_type` event per member (`{"group": group, "user": ...}` or
    /// `{"group": group, "member_group": ...}`), built from the member's row at commit; a
    /// member without a row is named by its id alone.
    pub fn emit_members(&mut self, event_type: EventType, group: &Value, members: Vec<(String, ResourceKind)>) {
        if !members.is_empty() {
            self.events.push(Pending::Members { event_type, group: group.clone(), members });
        }
    }

    /// A place in the events gathered so far, to [`Self::move_to`] later.
    pub fn emitted(&self) -> usize {
        self.events.len()
    }

    /// Move the events gathered since `from` to `to` (both from [`Self::emitted`], `to` first),
    /// ahead of those in between: a resource's own events go before the organization events
    /// its change caused.
    pub fn move_to(&mut self, from: usize, to: usize) {
        if to < from && from <= self.events.len() {
            if let Some(tail) = self.events.get_mut(to..) {
                tail.rotate_left(from - to);
            }
        }
    }

    /// Append the events and commit.
    pub async fn commit(mut self) -> Result<(), DomainError> {
        self.append_events().await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// Append the events gathered so far, in one statement: numbered after the tenant's last on
    /// SQLite, unnumbered for the sequencer on PostgreSQL.
    pub async fn append_events(&mut self) -> Result<(), DomainError> {
        let count = self.events.iter().map(Pending::count).sum::<usize>();
        if count == 0 {
            return Ok(());
        }
        let first = match self.dialect {
            Dialect::Sqlite => {
                let count = i64::try_from(count).unwrap_or(i64::MAX);
                let (last,): (i64,) = Statement::new(self.dialect)
                    .sql("UPDATE event_counters SET last_seq = last_seq + ")
                    .bind(count)
                    .sql(" WHERE tenant_id = ")
                    .bind(self.tenant.as_str())
                    .sql(" RETURNING last_seq")
                    .query_as()
                    .fetch_one(&mut *self.tx)
                    .await?;
                Some(last - count + 1)
            }
            Dialect::Postgres => None,
        };
        let events = std::mem::take(&mut self.events);
        // Pending events are numbered in the order of their ids, taken in `ord` order.
        let statement = match first {
            Some(first) => Statement::new(self.dialect)
                .sql("INSERT INTO events (tenant_id, seq, type, occurred_at, data) SELECT ")
                .bind(self.tenant.as_str())
                .sql(", ")
                .bind(first)
                .sql(" + e.ord, "),
            None => Statement::new(self.dialect)
                .sql("INSERT INTO pending_events (tenant_id, type, occurred_at, data) SELECT ")
                .bind(self.tenant.as_str())
                .sql(", "),
        };
        let mut statement = statement.sql("e.type, ").bind(now_micros()).sql(", e.data FROM (");
        // One relation `(ord, type, data)` per run of single events or per member change, in
        // the order they were gathered.
        let (mut rest, mut ord) = (events.as_slice(), 0_usize);
        while let Some(head) = rest.first() {
            if ord > 0 {
                statement = statement.sql(" UNION ALL ");
            }
            let (rows, after) = match head {
                Pending::One(_) => {
                    let (ones, after) = rest.split_at(rest.iter().take_while(|p| matches!(p, Pending::One(_))).count());
                    statement = self.single_rows(statement, ord, ones)?;
                    (ones, after)
                }
                Pending::Members { event_type, group, members } => {
                    statement = self.member_rows(statement, ord, *event_type, group, members)?;
                    rest.split_at(1)
                }
            };
            ord += rows.iter().map(Pending::count).sum::<usize>();
            rest = after;
        }
        statement.sql(") e ORDER BY e.ord").query().execute(&mut *self.tx).await?;
        Ok(())
    }

    /// `SELECT <from> + j.idx AS ord, j.type, j.data FROM <the events as JSON>`: single events as
    /// rows of one JSON parameter.
    fn single_rows(&self, statement: Statement, from: usize, events: &[Pending]) -> Result<Statement, DomainError> {
        let rows: Vec<EventRow> = events
            .iter()
            .filter_map(|p| match p {
                Pending::One(e) => Some(EventRow { event_type: e.event_type.as_str(), data: &e.data }),
                Pending::Members { .. } => None,
            })
            .collect();
        let json = serde_json::to_string(&rows)
            .map_err(|e| DomainError::Internal("event is not serializable".into(), Some(Box::new(e))))?;
        let d = self.dialect;
        Ok(statement
            .sql(&format!("SELECT {from} + j.idx AS ord, j.type AS type, j.data AS data FROM "))
            .bind_in(|n| d.json_events_param(n), json)?
            .sql(" AS j"))
    }

    /// `SELECT <from> + m.idx AS ord, <type>, <data> FROM <members> …`: one member event per
    /// member, its subject read from the users and groups tables by the same statement.
    fn member_rows(
        &self,
        statement: Statement,
        from: usize,
        event_type: EventType,
        group: &Value,
        members: &[(String, ResourceKind)],
    ) -> Result<Statement, DomainError> {
        let pairs: Vec<[&str; 2]> = members
            .iter()
            .map(|(id, kind)| [id.as_str(), if *kind == ResourceKind::User { "User" } else { "Group" }])
            .collect();
        let d = self.dialect;
        let user = d.json_object_without_nulls(&[
            ("id", "m.id"),
            ("userName", "u.user_name"),
            ("externalId", "u.external_id"),
            ("productAccountId", "u.account_id"),
        ]);
        let member_group = d.json_object_without_nulls(&[
            ("id", "m.id"),
            ("displayName", "g.display_name"),
            ("externalId", "g.external_id"),
        ]);
        // `$1`: the group's JSON, bound through the fragment below.
        let data = d.json_object(&[
            ("'group'", d.as_json(&d.json_param(1))),
            (
                "CASE WHEN m.kind = 'User' THEN 'user' ELSE 'member_group' END",
                d.as_json(&format!("CASE WHEN m.kind = 'User' THEN {user} ELSE {member_group} END")),
            ),
        ]);
        let statement = statement
            .sql(&format!("SELECT {from} + m.idx AS ord, "))
            .bind(event_type.as_str())
            .sql(" AS type, ")
            .fragment(&data, &[Arg::Text(group.to_string())])?
            .sql(" AS data FROM ");
        // A few members as explicit rows, so each subject is a primary-key probe (see members.rs).
        Ok(bind_pair_rows(statement, &pairs)?
            .sql(" AS m LEFT JOIN users u ON m.kind = 'User' AND u.tenant_id = ")
            .bind(self.tenant.as_str())
            .sql(" AND u.id = m.id LEFT JOIN groups g ON m.kind = 'Group' AND g.tenant_id = ")
            .bind(self.tenant.as_str())
            .sql(" AND g.id = m.id"))
    }
}
