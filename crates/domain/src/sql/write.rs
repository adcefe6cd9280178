//! One write to one tenant: a transaction that holds the tenant's row lock, gathers the events
//! the write causes, and appends them, numbered, just before it commits.
//!
//! Every write of a tenant takes that lock first (on SQLite, `BEGIN IMMEDIATE` already serializes
//! writers). Events are therefore numbered in commit order, a reader following the sequence never
//! misses one that commits late, and reconciliation always sees every earlier write: two
//! concurrent PATCHes on one user's groups cannot each miss the other's change.

use serde_json::{json, Value};
use sqlx::{Any, Row, Transaction};

use super::filter::Arg;
use super::tenants::{tenant_from_row, TENANT_COLUMNS};
use super::{bound, text, SqlStore};
use crate::event::{EventType, NewEvent};
use crate::time_util::now_micros;
use crate::{DomainError, TenantId, TenantName, TenantSettings};

pub(super) struct TenantWrite {
    pub tx: Transaction<'static, Any>,
    pub tenant: TenantId,
    pub settings: TenantSettings,
    events: Vec<NewEvent>,
    dialect: super::Dialect,
}

impl SqlStore {
    /// Begin a write to the tenant with this id, holding its lock.
    pub(super) async fn begin_tenant_write(&self, tenant: &TenantId) -> Result<TenantWrite, DomainError> {
        self.lock_tenant("n.id = $1", tenant.as_str()).await
    }

    pub(super) async fn begin_tenant_write_by_name(&self, name: &TenantName) -> Result<TenantWrite, DomainError> {
        self.lock_tenant("n.name = $1", name.as_str()).await
    }

    async fn lock_tenant(&self, condition: &str, key: &str) -> Result<TenantWrite, DomainError> {
        let mut tx = self.begin_write().await?;
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants n WHERE {condition}{}", self.dialect.for_update());
        let row =
            bound(&sql, vec![text(key)]).fetch_optional(&mut *tx).await?.ok_or(DomainError::NotFound("tenant"))?;
        let tenant = tenant_from_row(&row)?;
        Ok(TenantWrite { tx, tenant: tenant.id, settings: tenant.settings, events: Vec::new(), dialect: self.dialect })
    }
}

impl TenantWrite {
    pub fn emit(&mut self, event_type: EventType, data: Value) {
        self.events.push(NewEvent { event_type, data });
    }

    /// How many events this write has gathered so far: a place to [`Self::move_to`] later.
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
        if !self.events.is_empty() {
            let count = i64::try_from(self.events.len()).unwrap_or(i64::MAX);
            let last: i64 = bound(
                "UPDATE tenants SET event_seq = event_seq + $2 WHERE id = $1 RETURNING event_seq",
                vec![text(self.tenant.as_str()), Arg::Int(count)],
            )
            .fetch_one(&mut *self.tx)
            .await?
            .try_get("event_seq")?;
            let events: Vec<Value> =
                self.events.iter().map(|e| json!({"type": e.event_type.as_str(), "data": e.data})).collect();
            let sql = format!(
                "INSERT INTO events (tenant_id, seq, type, occurred_at, data) \
                 SELECT $1, $2 + j.idx, j.type, $3, j.data FROM {} AS j",
                self.dialect.json_events_param(4)
            );
            bound(
                &sql,
                vec![
                    text(self.tenant.as_str()),
                    Arg::Int(last - count + 1),
                    Arg::Int(now_micros()),
                    Arg::Text(Value::Array(events).to_string()),
                ],
            )
            .execute(&mut *self.tx)
            .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}
