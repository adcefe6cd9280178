//! The provisioning activity log: appended in batches, listed per tenant newest first with a
//! cursor, pruned by age and by count per tenant.

use serde_json::{json, Value};

use super::statement::Statement;
use super::{Dialect, SqlStore};
use crate::activity::{
    truncated, Activity, ActivityCredential, ActivityCutoff, ActivityPage, ActivityQuery, ActivityRecord,
    ActivityRetention, NewActivity,
};
use crate::store::ActivityStore;
use crate::{DomainError, TenantId, TenantName};
use async_trait::async_trait;

/// Records per INSERT. The statement's text is the same for any number of records (they travel
/// as one JSON array parameter), so it is prepared once per connection and cached; a `VALUES`
/// list with a row of placeholders per record was a new statement for every batch size, parsed
/// anew each flush (on SQLite that parse cost more than the requests being recorded) and pushed
/// the SCIM statements out of the statement cache.
const ROWS_PER_STATEMENT: usize = 500;

const COLUMNS: &str = "seq, occurred_at, method, resource_type, resource_id, status, scim_type, detail, latency_us, \
     idp, credential_kind, credential_id";

/// A stored value that does not read back: the row was not written by this code.
fn stored<E>(what: &'static str) -> impl Fn(E) -> DomainError {
    move |_| DomainError::internal(format!("stored activity {what}"))
}

/// A record as [`COLUMNS`] reads it.
#[derive(Debug, sqlx::FromRow)]
struct ActivityRow {
    seq: i64,
    occurred_at: i64,
    method: String,
    resource_type: String,
    resource_id: Option<String>,
    status: i64,
    scim_type: Option<String>,
    detail: Option<String>,
    latency_us: i64,
    idp: Option<String>,
    credential_kind: Option<String>,
    credential_id: Option<String>,
}

impl TryFrom<ActivityRow> for Activity {
    type Error = DomainError;

    fn try_from(row: ActivityRow) -> Result<Self, DomainError> {
        Ok(Activity {
            seq: row.seq,
            record: ActivityRecord {
                at: row.occurred_at,
                method: row.method.parse().map_err(stored("method"))?,
                resource_type: row.resource_type.parse().map_err(stored("resource type"))?,
                resource_id: row.resource_id,
                status: u16::try_from(row.status).map_err(stored("status"))?,
                scim_type: row.scim_type,
                detail: row.detail,
                latency_us: row.latency_us,
                idp: row.idp.map(|idp| idp.parse()).transpose().map_err(stored("idp"))?,
                credential: match (row.credential_kind, row.credential_id) {
                    (Some(kind), Some(id)) => Some(ActivityCredential::from_parts(&kind, &id)?),
                    _ => None,
                },
            },
        })
    }
}

/// A record as one element of the batch's JSON array: `[tenant, occurred_at, method,
/// resource_type, resource_id, status, scim_type, detail, latency_us, idp, credential_kind,
/// credential_id]`, the order [`insert_statement`] reads.
fn batch_row(new: &NewActivity) -> Value {
    let r = &new.record;
    fn cut(s: &Option<String>) -> Option<&str> {
        s.as_deref().map(|s| truncated(s, ActivityRecord::MAX_TEXT))
    }
    json!([
        new.tenant.as_str(),
        r.at,
        r.method.as_str(),
        r.resource_type.as_str(),
        cut(&r.resource_id),
        r.status,
        r.scim_type,
        cut(&r.detail),
        r.latency_us,
        r.idp.map(|idp| idp.as_str()),
        r.credential.as_ref().map(ActivityCredential::kind),
        r.credential.as_ref().map(|c| c.id().as_str()),
    ])
}

/// `INSERT ... SELECT` of `records` from one JSON array parameter: one statement text whatever
/// the batch, which resolves every tenant name and drops the names no tenant has.
fn insert_statement(dialect: Dialect, records: &[NewActivity]) -> Statement {
    let rows = Value::Array(records.iter().map(batch_row).collect()).to_string();
    // Element `i` of a batch row, as text or as an integer.
    let text = |i: usize| match dialect {
        Dialect::Postgres => format!("b.value->>{i}"),
        Dialect::Sqlite => format!("json_extract(b.value, '$[{i}]')"),
    };
    let int = |i: usize| match dialect {
        Dialect::Postgres => format!("(b.value->>{i})::bigint"),
        Dialect::Sqlite => format!("json_extract(b.value, '$[{i}]')"),
    };
    let from = match dialect {
        Dialect::Postgres => ("FROM json_array_elements(", "::json) WITH ORDINALITY AS b(value, ord) "),
        Dialect::Sqlite => ("FROM json_each(", ") AS b "),
    };
    let order = match dialect {
        Dialect::Postgres => "b.ord",
        Dialect::Sqlite => "CAST(b.key AS INTEGER)",
    };
    let select = format!(
        "INSERT INTO activity (tenant_id, occurred_at, method, resource_type, resource_id, status, scim_type, detail, \
         latency_us, idp, credential_kind, credential_id) \
         SELECT t.id, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {} ",
        int(1),
        text(2),
        text(3),
        text(4),
        int(5),
        text(6),
        text(7),
        int(8),
        text(9),
        text(10),
        text(11),
    );
    Statement::new(dialect).sql(&select).sql(from.0).bind(rows).sql(from.1).sql(&format!(
        "JOIN tenants t ON t.name = {} ORDER BY {}, {order}",
        text(0),
        int(1)
    ))
}

impl SqlStore {
    /// Delete up to `limit` records older than `before`.
    async fn prune_activity_by_age(&self, before: i64, limit: u32) -> Result<u64, DomainError> {
        Ok(Statement::new(self.dialect)
            .sql("DELETE FROM activity WHERE seq IN (SELECT seq FROM activity WHERE occurred_at < ")
            .bind(before)
            .sql(" LIMIT ")
            .bind(i64::from(limit))
            .sql(")")
            .query()
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Delete up to `limit` records at or before the cut-offs, tenant by tenant.
    async fn prune_activity_by_count(&self, cutoffs: &[ActivityCutoff], limit: u32) -> Result<u64, DomainError> {
        let mut deleted = 0;
        for cutoff in cutoffs {
            let Some(remaining) = limit.checked_sub(u32::try_from(deleted).unwrap_or(u32::MAX)).filter(|r| *r > 0)
            else {
                break;
            };
            // A key range of the tenant's index: a log already cut ends its probe at once.
            deleted += Statement::new(self.dialect)
                .sql("DELETE FROM activity WHERE seq IN (SELECT seq FROM activity WHERE tenant_id = ")
                .bind(cutoff.tenant.as_str())
                .sql(" AND occurred_at <= ")
                .bind(cutoff.at)
                .sql(" AND (occurred_at < ")
                .bind(cutoff.at)
                .sql(" OR seq <= ")
                .bind(cutoff.seq)
                .sql(") LIMIT ")
                .bind(i64::from(remaining))
                .sql(")")
                .query()
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
            kept += insert_statement(self.dialect, chunk).query().execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(kept)
    }

    async fn list_activity(&self, tenant: &TenantName, query: &ActivityQuery) -> Result<ActivityPage, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let tenant = self.tenant_id(&mut conn, tenant).await?;
        let mut statement = Statement::new(self.dialect)
            .sql(&format!("SELECT {COLUMNS} FROM activity WHERE tenant_id = "))
            .bind(tenant.as_str());
        if let Some(outcome) = query.outcome {
            let (low, high) = outcome.statuses();
            statement = statement.sql(" AND status >= ").bind(low).sql(" AND status < ").bind(high);
        }
        if let Some(status) = query.status {
            statement = statement.sql(" AND status = ").bind(i64::from(status));
        }
        if let Some(method) = query.method {
            statement = statement.sql(" AND method = ").bind(method.as_str());
        }
        if let Some(resource_type) = query.resource_type {
            statement = statement.sql(" AND resource_type = ").bind(resource_type.as_str());
        }
        if let Some(since) = query.since {
            statement = statement.sql(" AND occurred_at >= ").bind(since);
        }
        if let Some(until) = query.until {
            statement = statement.sql(" AND occurred_at < ").bind(until);
        }
        if let Some(cursor) = query.cursor {
            statement = statement
                .sql(" AND (occurred_at < ")
                .bind(cursor.at)
                .sql(" OR (occurred_at = ")
                .bind(cursor.at)
                .sql(" AND seq < ")
                .bind(cursor.seq)
                .sql("))");
        }
        let limit = query.limit.get();
        // One more than asked: whether a next page exists, without a second query.
        let rows: Vec<ActivityRow> = statement
            .sql(" ORDER BY occurred_at DESC, seq DESC LIMIT ")
            .bind(i64::from(limit) + 1)
            .query_as()
            .fetch_all(&mut *conn)
            .await?;
        let mut items = rows.into_iter().map(Activity::try_from).collect::<Result<Vec<_>, _>>()?;
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_cursor = if more { items.last().map(Activity::cursor) } else { None };
        Ok(ActivityPage { items, next_cursor })
    }

    async fn activity_cutoffs(&self, max_per_tenant: u32) -> Result<Vec<ActivityCutoff>, DomainError> {
        // The whole log counted once a pass; before, each batch of a pass counted it again and
        // walked `max_per_tenant` index entries per tenant, quadratic in a backlog.
        let over: Vec<(String,)> = Statement::new(self.dialect)
            .sql("SELECT tenant_id FROM activity GROUP BY tenant_id HAVING COUNT(*) > ")
            .bind(i64::from(max_per_tenant))
            .query_as()
            .fetch_all(&self.pool)
            .await?;
        let mut cutoffs = Vec::with_capacity(over.len());
        for (tenant,) in over {
            let newest_beyond: Option<(i64, i64)> = Statement::new(self.dialect)
                .sql("SELECT occurred_at, seq FROM activity WHERE tenant_id = ")
                .bind(tenant.as_str())
                .sql(" ORDER BY occurred_at DESC, seq DESC LIMIT 1 OFFSET ")
                .bind(i64::from(max_per_tenant))
                .query_as()
                .fetch_optional(&self.pool)
                .await?;
            if let Some((at, seq)) = newest_beyond {
                cutoffs.push(ActivityCutoff { tenant: TenantId(tenant), at, seq });
            }
        }
        Ok(cutoffs)
    }

    async fn prune_activity(&self, retention: &ActivityRetention, limit: u32) -> Result<u64, DomainError> {
        // Bounded batches, so that a large backlog never holds a long transaction (SQLite has one
        // writer) and the caller can pace itself.
        let mut deleted = 0;
        if let Some(before) = retention.before {
            deleted += self.prune_activity_by_age(before, limit).await?;
        }
        let remaining = u64::from(limit).saturating_sub(deleted);
        if let Ok(remaining @ 1..) = u32::try_from(remaining) {
            deleted += self.prune_activity_by_count(&retention.cutoffs, remaining).await?;
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_placeholder_per_value() -> Result<(), DomainError> {
        use crate::activity::{ActivityMethod, ActivityResource};
        let record = |tenant: &str| -> Result<NewActivity, DomainError> {
            Ok(NewActivity {
                tenant: TenantName::parse(tenant)?,
                record: ActivityRecord {
                    at: 1,
                    method: ActivityMethod::Get,
                    resource_type: ActivityResource::User,
                    resource_id: None,
                    status: 200,
                    scim_type: None,
                    detail: None,
                    latency_us: 1,
                    idp: None,
                    credential: None,
                },
            })
        };
        let records = [record("acme")?, record("other")?];
        let postgres = insert_statement(Dialect::Postgres, &records);
        // One placeholder whatever the batch: the text, and so the prepared statement, is shared.
        assert_eq!(postgres.sql_text(), insert_statement(Dialect::Postgres, &records[..1]).sql_text());
        assert!(postgres.sql_text().contains("json_array_elements($1::json)"), "{}", postgres.sql_text());
        assert!(!postgres.sql_text().contains("$2"), "{}", postgres.sql_text());
        let sqlite = insert_statement(Dialect::Sqlite, &records);
        assert_eq!(sqlite.sql_text().matches('?').count(), 1);
        Ok(())
    }
}
