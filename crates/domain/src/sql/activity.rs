//! The provisioning activity log: appended in batches, listed per tenant newest first with a
//! cursor, pruned by age and by count per tenant.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::filter::Arg;
use super::{bound, opt_text, text, SqlStore};
use crate::activity::{
    truncated, Activity, ActivityCredential, ActivityPage, ActivityQuery, ActivityRecord, ActivityRetention,
    NewActivity,
};
use crate::store::ActivityStore;
use crate::{DomainError, TenantName};

/// Records per INSERT: 12 parameters each, far below either backend's parameter limit.
const ROWS_PER_STATEMENT: usize = 200;

/// The columns a batch carries, in order; the tenant is resolved from its name by the statement.
const BATCH_COLUMNS: &str = "tenant, occurred_at, method, resource_type, resource_id, status, scim_type, detail, \
     latency_us, idp, credential_kind, credential_id";
const BATCH_WIDTH: usize = 12;

const COLUMNS: &str = "seq, occurred_at, method, resource_type, resource_id, status, scim_type, detail, latency_us, \
     idp, credential_kind, credential_id";

/// A stored value that does not read back: the row was not written by this code.
fn stored<E>(what: &'static str) -> impl Fn(E) -> DomainError {
    move |_| DomainError::internal(format!("stored activity {what}"))
}

fn activity_from_row(row: &AnyRow) -> Result<Activity, DomainError> {
    let method: String = row.try_get("method")?;
    let resource_type: String = row.try_get("resource_type")?;
    let idp: Option<String> = row.try_get("idp")?;
    let credential_kind: Option<String> = row.try_get("credential_kind")?;
    let credential_id: Option<String> = row.try_get("credential_id")?;
    Ok(Activity {
        seq: row.try_get("seq")?,
        record: ActivityRecord {
            at: row.try_get("occurred_at")?,
            method: method.parse().map_err(stored("method"))?,
            resource_type: resource_type.parse().map_err(stored("resource type"))?,
            resource_id: row.try_get("resource_id")?,
            status: u16::try_from(row.try_get::<i64, _>("status")?).map_err(stored("status"))?,
            scim_type: row.try_get("scim_type")?,
            detail: row.try_get("detail")?,
            latency_us: row.try_get("latency_us")?,
            idp: idp.map(|idp| idp.parse()).transpose().map_err(stored("idp"))?,
            credential: match (credential_kind, credential_id) {
                (Some(kind), Some(id)) => Some(ActivityCredential::from_parts(&kind, &id)?),
                _ => None,
            },
        },
    })
}

fn batch_args(new: &NewActivity) -> [Arg; BATCH_WIDTH] {
    let r = &new.record;
    let cut = |s: &Option<String>| opt_text(s.as_deref().map(|s| truncated(s, ActivityRecord::MAX_TEXT)));
    [
        text(new.tenant.as_str()),
        Arg::Int(r.at),
        text(r.method.as_str()),
        text(r.resource_type.as_str()),
        cut(&r.resource_id),
        Arg::Int(i64::from(r.status)),
        opt_text(r.scim_type.as_deref()),
        cut(&r.detail),
        Arg::Int(r.latency_us),
        opt_text(r.idp.map(|idp| idp.as_str())),
        opt_text(r.credential.as_ref().map(ActivityCredential::kind)),
        opt_text(r.credential.as_ref().map(|c| c.id().as_str())),
    ]
}

/// `WITH batch (...) AS (VALUES (...), ...) INSERT ... SELECT` for `rows` records: one statement
/// that resolves every tenant name and drops the names no tenant has.
fn insert_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let params: Vec<String> = (1..=BATCH_WIDTH).map(|col| format!("${}", row * BATCH_WIDTH + col)).collect();
            format!("({})", params.join(", "))
        })
        .collect();
    format!(
        "WITH batch ({BATCH_COLUMNS}) AS (VALUES {}) \
         INSERT INTO activity (tenant_id, occurred_at, method, resource_type, resource_id, status, scim_type, detail, \
         latency_us, idp, credential_kind, credential_id) \
         SELECT t.id, b.occurred_at, b.method, b.resource_type, b.resource_id, b.status, b.scim_type, b.detail, \
         b.latency_us, b.idp, b.credential_kind, b.credential_id \
         FROM batch b JOIN tenants t ON t.name = b.tenant ORDER BY b.occurred_at",
        values.join(", ")
    )
}

impl SqlStore {
    /// Delete up to `limit` records older than `before`.
    async fn prune_activity_by_age(&self, before: i64, limit: u32) -> Result<u64, DomainError> {
        Ok(bound(
            "DELETE FROM activity WHERE seq IN (SELECT seq FROM activity WHERE occurred_at < $1 LIMIT $2)",
            vec![Arg::Int(before), Arg::Int(i64::from(limit))],
        )
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Delete up to `limit` records beyond the newest `max` of each tenant.
    async fn prune_activity_by_count(&self, max: u32, limit: u32) -> Result<u64, DomainError> {
        let over = bound(
            "SELECT tenant_id FROM activity GROUP BY tenant_id HAVING COUNT(*) > $1",
            vec![Arg::Int(i64::from(max))],
        )
        .fetch_all(&self.pool)
        .await?;
        let mut deleted = 0;
        for tenant in &over {
            let tenant: String = tenant.try_get("tenant_id")?;
            let Some(remaining) = limit.checked_sub(u32::try_from(deleted).unwrap_or(u32::MAX)).filter(|r| *r > 0)
            else {
                break;
            };
            // The newest record beyond the bound: it and everything older go.
            let Some(first) = bound(
                "SELECT occurred_at, seq FROM activity WHERE tenant_id = $1 \
                 ORDER BY occurred_at DESC, seq DESC LIMIT 1 OFFSET $2",
                vec![text(&tenant), Arg::Int(i64::from(max))],
            )
            .fetch_optional(&self.pool)
            .await?
            else {
                continue;
            };
            let (at, seq): (i64, i64) = (first.try_get("occurred_at")?, first.try_get("seq")?);
            deleted += bound(
                "DELETE FROM activity WHERE seq IN (SELECT seq FROM activity WHERE tenant_id = $1 \
                 AND (occurred_at < $2 OR (occurred_at = $2 AND seq <= $3)) LIMIT $4)",
                vec![text(&tenant), Arg::Int(at), Arg::Int(seq), Arg::Int(i64::from(remaining))],
            )
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(deleted)
    }
}

#[async_trait]
impl ActivityStore for SqlStore {
    async fn append_activity(&self, batch: &[NewActivity]) -> Result<u64, DomainError> {
        if batch.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let mut kept = 0;
        for chunk in batch.chunks(ROWS_PER_STATEMENT) {
            let args: Vec<Arg> = chunk.iter().flat_map(batch_args).collect();
            kept += bound(&insert_sql(chunk.len()), args).execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(kept)
    }

    async fn list_activity(&self, tenant: &TenantName, query: &ActivityQuery) -> Result<ActivityPage, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let tenant = self.tenant_id(&mut conn, tenant).await?;
        let mut sql = format!("SELECT {COLUMNS} FROM activity WHERE tenant_id = $1");
        let mut args = vec![text(tenant.as_str())];
        let mut condition = |sql_part: &str, values: Vec<Arg>| {
            let mut part = sql_part.to_owned();
            for value in values {
                args.push(value);
                part = part.replacen('?', &format!("${}", args.len()), 1);
            }
            sql.push_str(" AND ");
            sql.push_str(&part);
        };
        if let Some(outcome) = query.outcome {
            let (low, high) = outcome.statuses();
            condition("status >= ? AND status < ?", vec![Arg::Int(low), Arg::Int(high)]);
        }
        if let Some(status) = query.status {
            condition("status = ?", vec![Arg::Int(i64::from(status))]);
        }
        if let Some(method) = query.method {
            condition("method = ?", vec![text(method.as_str())]);
        }
        if let Some(resource_type) = query.resource_type {
            condition("resource_type = ?", vec![text(resource_type.as_str())]);
        }
        if let Some(since) = query.since {
            condition("occurred_at >= ?", vec![Arg::Int(since)]);
        }
        if let Some(until) = query.until {
            condition("occurred_at < ?", vec![Arg::Int(until)]);
        }
        if let Some(cursor) = query.cursor {
            condition(
                "(occurred_at < ? OR (occurred_at = ? AND seq < ?))",
                vec![Arg::Int(cursor.at), Arg::Int(cursor.at), Arg::Int(cursor.seq)],
            );
        }
        let limit = query.limit.get();
        // One more than asked: whether a next page exists, without a second query.
        args.push(Arg::Int(i64::from(limit) + 1));
        sql.push_str(&format!(" ORDER BY occurred_at DESC, seq DESC LIMIT ${}", args.len()));
        let rows = bound(&sql, args).fetch_all(&mut *conn).await?;
        let mut items = rows.iter().map(activity_from_row).collect::<Result<Vec<_>, _>>()?;
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_cursor = if more { items.last().map(Activity::cursor) } else { None };
        Ok(ActivityPage { items, next_cursor })
    }

    async fn prune_activity(&self, retention: &ActivityRetention, limit: u32) -> Result<u64, DomainError> {
        // Bounded batches, so that a large backlog never holds a long transaction (SQLite has one
        // writer) and the caller can pace itself.
        let mut deleted = 0;
        if let Some(before) = retention.before {
            deleted += self.prune_activity_by_age(before, limit).await?;
        }
        let remaining = u64::from(limit).saturating_sub(deleted);
        if let (Some(max), Ok(remaining @ 1..)) = (retention.max_per_tenant, u32::try_from(remaining)) {
            deleted += self.prune_activity_by_count(max, remaining).await?;
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_placeholder_per_value() {
        let sql = insert_sql(2);
        assert!(sql.contains("($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12), ($13,"), "{sql}");
        assert!(sql.contains("$24)"), "{sql}");
        assert!(!sql.contains("$25"), "{sql}");
    }
}
