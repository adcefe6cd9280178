//! One write to one tenant: a transaction that holds the tenant's row lock, gathers the events
//! the write causes, and appends them, numbered, just before it commits.
//!
//! Every write of a tenant takes that lock first (on SQLite, `BEGIN IMMEDIATE` already serializes
//! writers). Events are therefore numbered in commit order, a reader following the sequence never
//! misses one that commits late, and reconciliation always sees every earlier write: two
//! concurrent PATCHes on one user's groups cannot each miss the other's change.

use proto::ResourceKind;
use serde::Serialize;
use serde_json::Value;
use sqlx::{Any, Transaction};

use super::filter::Arg;
use super::members::bind_pair_rows;
use super::statement::Statement;
use super::tenants::{TenantRow, TENANT_COLUMNS};
use super::SqlStore;
use crate::event::{EventType, NewEvent};
use crate::time_util::now_micros;
use crate::{DomainError, Tenant, TenantId, TenantName, TenantSettings};

pub(super) struct TenantWrite {
    pub tx: Transaction<'static, Any>,
    pub tenant: TenantId,
    pub settings: TenantSettings,
    events: Vec<Pending>,
    dialect: super::Dialect,
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
    /// Begin a write to the tenant with this id, holding its lock.
    pub(super) async fn begin_tenant_write(&self, tenant: &TenantId) -> Result<TenantWrite, DomainError> {
        self.lock_tenant("id", tenant.as_str()).await
    }

    pub(super) async fn begin_tenant_write_by_name(&self, name: &TenantName) -> Result<TenantWrite, DomainError> {
        self.lock_tenant("name", name.as_str()).await
    }

    /// Begin a write to the tenant whose `column` is `key`, holding its lock.
    async fn lock_tenant(&self, column: &str, key: &str) -> Result<TenantWrite, DomainError> {
        let mut tx = self.begin_write().await?;
        let row: TenantRow = Statement::new(self.dialect)
            .sql(&format!("SELECT {TENANT_COLUMNS} FROM tenants n WHERE n.{column} = "))
            .bind(key)
            .sql(self.dialect.for_update())
            .query_as()
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(DomainError::NotFound(crate::Entity::Tenant))?;
        let tenant = Tenant::try_from(row)?;
        Ok(TenantWrite { tx, tenant: tenant.id, settings: tenant.settings, events: Vec::new(), dialect: self.dialect })
    }
}

impl TenantWrite {
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

    /// Append the events (numbered after the tenant's last) and commit.
    pub async fn commit(mut self) -> Result<(), DomainError> {
        let count = self.events.iter().map(Pending::count).sum::<usize>();
        if count > 0 {
            let count = i64::try_from(count).unwrap_or(i64::MAX);
            let (last,): (i64,) = Statement::new(self.dialect)
                .sql("UPDATE tenants SET event_seq = event_seq + ")
                .bind(count)
                .sql(" WHERE id = ")
                .bind(self.tenant.as_str())
                .sql(" RETURNING event_seq")
                .query_as()
                .fetch_one(&mut *self.tx)
                .await?;
            let now = now_micros();
            let mut next = last - count + 1;
            let events = std::mem::take(&mut self.events);
            let mut rest = events.as_slice();
            while let Some(first) = rest.first() {
                let appended = match first {
                    Pending::One(_) => {
                        let run = rest.iter().take_while(|p| matches!(p, Pending::One(_))).count();
                        let (ones, after) = rest.split_at(run);
                        rest = after;
                        self.append(next, now, ones).await?
                    }
                    Pending::Members { event_type, group, members } => {
                        rest = &rest[1..];
                        self.append_members(next, now, *event_type, group, members).await?
                    }
                };
                next += appended;
            }
        }
        self.tx.commit().await?;
        Ok(())
    }

    /// Append single events numbered from `first`, in one statement; how many.
    async fn append(&mut self, first: i64, now: i64, events: &[Pending]) -> Result<i64, DomainError> {
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
        Statement::new(d)
            .sql("INSERT INTO events (tenant_id, seq, type, occurred_at, data) SELECT ")
            .bind(self.tenant.as_str())
            .sql(", ")
            .bind(first)
            .sql(" + j.idx, j.type, ")
            .bind(now)
            .sql(", j.data FROM ")
            .bind_in(|n| d.json_events_param(n), json)?
            .sql(" AS j")
            .query()
            .execute(&mut *self.tx)
            .await?;
        Ok(i64::try_from(rows.len()).unwrap_or(i64::MAX))
    }

    /// Append one member event per member numbered from `first`, their subjects read from the
    /// users and groups tables by the same statement; how many.
    async fn append_members(
        &mut self,
        first: i64,
        now: i64,
        event_type: EventType,
        group: &Value,
        members: &[(String, ResourceKind)],
    ) -> Result<i64, DomainError> {
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
        let statement = Statement::new(d)
            .sql("INSERT INTO events (tenant_id, seq, type, occurred_at, data) SELECT ")
            .bind(self.tenant.as_str())
            .sql(", ")
            .bind(first)
            .sql(" + m.idx, ")
            .bind(event_type.as_str())
            .sql(", ")
            .bind(now)
            .sql(", ")
            .fragment(&data, &[Arg::Text(group.to_string())])?
            .sql(" FROM ");
        // A few members as explicit rows, so each subject is a primary-key probe (see members.rs).
        bind_pair_rows(statement, &pairs)?
            .sql(" AS m LEFT JOIN users u ON m.kind = 'User' AND u.tenant_id = ")
            .bind(self.tenant.as_str())
            .sql(" AND u.id = m.id LEFT JOIN groups g ON m.kind = 'Group' AND g.tenant_id = ")
            .bind(self.tenant.as_str())
            .sql(" AND g.id = m.id")
            .query()
            .execute(&mut *self.tx)
            .await?;
        Ok(i64::try_from(members.len()).unwrap_or(i64::MAX))
    }
}
