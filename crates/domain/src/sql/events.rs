//! The event feed, webhook endpoints and delivery state.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::AnyConnection;

use super::statement::Statement;
use super::upkeep::Churned;
use super::{Dialect, SqlStore};
use crate::event::{Event, EventType};
use crate::store::EventStore;
use crate::time_util::now_micros;
use crate::webhook::{DeadLetter, DeliveryBatch, DeliveryResult, WebhookEndpoint, WebhookSecret, WebhookUrl};
use crate::{DomainError, TenantName};

/// An event as [`SqlStore::select_events`] reads it.
#[derive(Debug, sqlx::FromRow)]
struct EventRow {
    seq: i64,
    #[sqlx(rename = "type")]
    event_type: String,
    occurred_at: i64,
    data: String,
}

impl TryFrom<EventRow> for Event {
    type Error = DomainError;

    fn try_from(row: EventRow) -> Result<Self, DomainError> {
        Ok(Event {
            seq: row.seq,
            event_type: row.event_type.parse::<EventType>()?,
            occurred_at: row.occurred_at,
            data: serde_json::from_str::<Value>(&row.data)
                .map_err(|e| DomainError::Internal("stored event is not JSON".into(), Some(Box::new(e))))?,
        })
    }
}

const WEBHOOK_COLUMNS: &str = "id, url, CASE WHEN enabled THEN 1 ELSE 0 END AS enabled, created_at, delivered_seq, \
     attempts, next_attempt_at, last_error";

/// An endpoint as [`WEBHOOK_COLUMNS`] reads it.
#[derive(Debug, sqlx::FromRow)]
struct WebhookRow {
    id: String,
    url: String,
    enabled: i64,
    created_at: i64,
    delivered_seq: i64,
    attempts: i64,
    next_attempt_at: Option<i64>,
    last_error: Option<String>,
}

impl TryFrom<WebhookRow> for WebhookEndpoint {
    type Error = DomainError;

    fn try_from(row: WebhookRow) -> Result<Self, DomainError> {
        Ok(WebhookEndpoint {
            id: row.id,
            url: WebhookUrl::parse(&row.url)?,
            enabled: row.enabled != 0,
            created_at: row.created_at,
            cursor: row.delivered_seq,
            attempts: attempts(row.attempts),
            next_attempt_at: row.next_attempt_at,
            last_error: row.last_error,
        })
    }
}

/// A stored attempt count.
fn attempts(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A dead letter as `dead_letters` reads it.
#[derive(Debug, sqlx::FromRow)]
struct DeadLetterRow {
    seq: i64,
    #[sqlx(rename = "type")]
    event_type: String,
    attempts: i64,
    last_error: String,
    failed_at: i64,
    redeliver_requested_at: Option<i64>,
}

/// An endpoint due for delivery, as `claim_delivery` finds it.
#[derive(Debug, sqlx::FromRow)]
struct CandidateRow {
    tenant_id: String,
    tenant_name: String,
    id: String,
}

/// What a delivery needs of its endpoint.
#[derive(Debug, sqlx::FromRow)]
struct DeliveryRow {
    url: String,
    secret: String,
    delivered_seq: i64,
    attempts: i64,
}

/// Whether the sequencer waits for a tenant another one is numbering, or leaves it to that one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Busy {
    /// A reader, or a webhook worker, that must see every event committed before it asked.
    Wait,
    /// The periodic pass: it comes back for what is left 100 ms later.
    Skip,
}

/// How many tenants one sequencer pass over all of them numbers.
const TENANTS_PER_PASS: i64 = 64;

impl SqlStore {
    /// Number the committed events of `tenant` waiting in `pending_events`: after the tenant's
    /// last, in id order, in one short transaction that holds the tenant's `event_counters` row
    /// (sequencers take turns; writes never touch it).
    /// The statement that moves them reads after the lock is granted, so it sees every event
    /// committed before this call and numbers none twice. Only PostgreSQL has pending events.
    async fn number_events(&self, tenant: &str, busy: Busy) -> Result<(), DomainError> {
        if self.dialect != Dialect::Postgres {
            return Ok(());
        }
        let waiting = Statement::new(self.dialect)
            .sql("SELECT 1 AS one FROM pending_events WHERE tenant_id = ")
            .bind(tenant)
            .sql(" LIMIT 1")
            .query()
            .fetch_optional(&self.pool)
            .await?;
        if waiting.is_none() {
            return Ok(());
        }
        self.number_pending(tenant, busy).await
    }

    /// [`Self::number_events`] for a tenant known to have pending events.
    async fn number_pending(&self, tenant: &str, busy: Busy) -> Result<(), DomainError> {
        let mut tx = self.pool.begin().await?;
        let last: Option<(i64,)> = Statement::new(self.dialect)
            .sql("SELECT last_seq FROM event_counters WHERE tenant_id = ")
            .bind(tenant)
            .sql(if busy == Busy::Skip { " FOR UPDATE SKIP LOCKED" } else { " FOR UPDATE" })
            .query_as()
            .fetch_optional(&mut *tx)
            .await?;
        let Some((last,)) = last else {
            return Ok(());
        };
        let (now,): (i64,) = Statement::new(self.dialect)
            .sql("WITH moved AS (DELETE FROM pending_events WHERE tenant_id = ")
            .bind(tenant)
            .sql(
                " RETURNING id, type, occurred_at, data), \
                 numbered AS (INSERT INTO events (tenant_id, seq, type, occurred_at, data) SELECT ",
            )
            .bind(tenant)
            .sql(", ")
            .bind(last)
            .sql(
                " + row_number() OVER (ORDER BY id), type, occurred_at, data FROM moved RETURNING seq) \
                 UPDATE event_counters SET last_seq = last_seq + (SELECT count(*) FROM numbered) WHERE tenant_id = ",
            )
            .bind(tenant)
            .sql(" RETURNING last_seq")
            .query_as()
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        self.churn.add(Churned::PendingEvents, u64::try_from(now - last).unwrap_or_default());
        Ok(())
    }

    /// Vacuum the tables this process churned enough (PostgreSQL; see [`super::upkeep`]), one
    /// after the other, outside any transaction (VACUUM cannot run in one).
    async fn vacuum_churned_tables(&self) -> Result<(), DomainError> {
        if self.dialect != Dialect::Postgres {
            return Ok(());
        }
        for table in self.churn.take_due() {
            sqlx::raw_sql(table.vacuum()).execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Number the pending events of every tenant that has some (a bounded pass); `busy`: what
    /// to do about a tenant another sequencer is at.
    async fn number_all_events(&self, busy: Busy) -> Result<(), DomainError> {
        if self.dialect != Dialect::Postgres {
            return Ok(());
        }
        let tenants: Vec<(String,)> = Statement::new(self.dialect)
            .sql("SELECT DISTINCT tenant_id FROM pending_events LIMIT ")
            .bind(TENANTS_PER_PASS)
            .query_as()
            .fetch_all(&self.pool)
            .await?;
        for (tenant,) in tenants {
            // The pass found it with pending events: no second look before numbering them.
            self.number_pending(&tenant, busy).await?;
        }
        Ok(())
    }

    /// The events of `tenant` whose `e.seq` compares by `op` to `seq`, in order (to be limited).
    fn select_events(&self, tenant: &str, op: &str, seq: i64) -> Statement {
        Statement::new(self.dialect)
            .sql(&format!(
                "SELECT seq, type, occurred_at, {} AS data FROM events e WHERE e.tenant_id = ",
                self.dialect.data_column("e")
            ))
            .bind(tenant)
            .sql(&format!(" AND e.seq {op} "))
            .bind(seq)
            .sql(" ORDER BY seq")
    }

    /// `statement` (an `UPDATE webhooks SET ...` or a `DELETE FROM webhooks`) narrowed to one
    /// endpoint.
    fn for_webhook(&self, statement: Statement, tenant: &str, id: &str) -> Statement {
        statement.sql(" WHERE tenant_id = ").bind(tenant).sql(" AND id = ").bind(id)
    }

    async fn load_webhook(
        &self,
        conn: &mut AnyConnection,
        tenant: &str,
        id: &str,
    ) -> Result<WebhookEndpoint, DomainError> {
        let row: WebhookRow = Statement::new(self.dialect)
            .sql(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = "))
            .bind(tenant)
            .sql(" AND id = ")
            .bind(id)
            .query_as()
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(DomainError::NotFound(crate::Entity::Webhook))?;
        WebhookEndpoint::try_from(row)
    }

    /// Take the lease on one endpoint; whether this process got it.
    async fn lease(&self, tenant: &str, id: &str, now: i64, until: i64) -> Result<bool, DomainError> {
        let assignments = Statement::new(self.dialect).sql("UPDATE webhooks SET lease_until = ").bind(until);
        let claimed = self
            .for_webhook(assignments, tenant, id)
            .sql(" AND (lease_until IS NULL OR lease_until < ")
            .bind(now)
            .sql(")")
            .query()
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(claimed == 1)
    }

    /// Release the lease on one endpoint.
    fn release(&self, tenant: &str, id: &str) -> Statement {
        self.for_webhook(Statement::new(self.dialect).sql("UPDATE webhooks SET lease_until = NULL"), tenant, id)
    }
}

#[async_trait]
impl EventStore for SqlStore {
    #[tracing::instrument(name = "store.events_after", skip_all, fields(tenant = %tenant))]
    async fn events_after(&self, tenant: &TenantName, after: i64, limit: u32) -> Result<Vec<Event>, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let tenant = self.tenant_id(&mut conn, tenant).await?;
        // The sequencer takes connections of its own: hold none while it works.
        drop(conn);
        self.number_events(tenant.as_str(), Busy::Wait).await?;
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<EventRow> = self
            .select_events(tenant.as_str(), ">", after)
            .sql(" LIMIT ")
            .bind(i64::from(limit))
            .query_as()
            .fetch_all(&mut *conn)
            .await?;
        rows.into_iter().map(Event::try_from).collect()
    }

    #[tracing::instrument(name = "store.number_events", level = "debug", skip_all)]
    async fn number_events(&self) -> Result<(), DomainError> {
        // The periodic pass: what another sequencer is at, it numbers.
        self.number_all_events(Busy::Skip).await?;
        self.vacuum_churned_tables().await
    }

    #[tracing::instrument(name = "store.prune_events", level = "debug", skip_all)]
    async fn prune_events(&self, before: i64, limit: u32) -> Result<u64, DomainError> {
        // One bounded batch per call, so that a large backlog never holds a long transaction
        // (SQLite has one writer) and the caller can pace itself.
        let deleted = Statement::new(self.dialect)
            .sql("DELETE FROM events WHERE (tenant_id, seq) IN (SELECT e.tenant_id, e.seq FROM events e WHERE e.occurred_at < ")
            .bind(before)
            .sql(
                " AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.tenant_id = e.tenant_id AND w.delivered_seq < e.seq) \
                 AND NOT EXISTS (SELECT 1 FROM webhook_dead_letters d WHERE d.tenant_id = e.tenant_id AND d.seq = e.seq) \
                 LIMIT ",
            )
            .bind(i64::from(limit))
            .sql(")")
            .query()
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted)
    }

    #[tracing::instrument(name = "store.add_webhook", skip_all, fields(tenant = %tenant))]
    async fn add_webhook(
        &self,
        tenant: &TenantName,
        url: &WebhookUrl,
        secret: &WebhookSecret,
        from_start: bool,
    ) -> Result<WebhookEndpoint, DomainError> {
        // A webhook that starts "now" starts after every event already committed.
        let mut conn = self.pool.acquire().await?;
        let tenant_id = self.tenant_id(&mut conn, tenant).await?;
        drop(conn);
        self.number_events(tenant_id.as_str(), Busy::Wait).await?;
        let mut tx = self.begin_write().await?;
        let (tenant_id, event_seq): (String, i64) = Statement::new(self.dialect)
            .sql("SELECT n.id, c.last_seq FROM tenants n JOIN event_counters c ON c.tenant_id = n.id WHERE n.name = ")
            .bind(tenant.as_str())
            .query_as()
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(DomainError::NotFound(crate::Entity::Tenant))?;
        let cursor = if from_start { 0 } else { event_seq };
        let id = uuid::Uuid::now_v7().to_string();
        Statement::new(self.dialect)
            .sql("INSERT INTO webhooks (tenant_id, id, url, secret, enabled, created_at, delivered_seq) VALUES (")
            .bind(tenant_id.as_str())
            .sql(", ")
            .bind(id.as_str())
            .sql(", ")
            .bind(url.as_str())
            .sql(", ")
            .bind(secret.expose())
            .sql(", TRUE, ")
            .bind(now_micros())
            .sql(", ")
            .bind(cursor)
            .sql(")")
            .query()
            .execute(&mut *tx)
            .await?;
        let endpoint = self.load_webhook(&mut tx, &tenant_id, &id).await?;
        tx.commit().await?;
        Ok(endpoint)
    }

    #[tracing::instrument(name = "store.list_webhooks", skip_all, fields(tenant = %tenant))]
    async fn list_webhooks(&self, tenant: &TenantName) -> Result<Vec<WebhookEndpoint>, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let tenant = self.tenant_id(&mut conn, tenant).await?;
        let rows: Vec<WebhookRow> = Statement::new(self.dialect)
            .sql(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = "))
            .bind(tenant.as_str())
            .sql(" ORDER BY created_at, id")
            .query_as()
            .fetch_all(&mut *conn)
            .await?;
        rows.into_iter().map(WebhookEndpoint::try_from).collect()
    }

    #[tracing::instrument(name = "store.webhook", skip_all, fields(tenant = %tenant, id = %id))]
    async fn webhook(&self, tenant: &TenantName, id: &str) -> Result<WebhookEndpoint, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let tenant = self.tenant_id(&mut conn, tenant).await?;
        self.load_webhook(&mut conn, tenant.as_str(), id).await
    }

    #[tracing::instrument(name = "store.set_webhook_enabled", skip_all, fields(tenant = %tenant, id = %id))]
    async fn set_webhook_enabled(
        &self,
        tenant: &TenantName,
        id: &str,
        enabled: bool,
    ) -> Result<WebhookEndpoint, DomainError> {
        let mut tx = self.begin_write().await?;
        let tenant = self.tenant_id(&mut tx, tenant).await?;
        // Re-enabling retries at once: the receiver was presumably fixed.
        let assignments = Statement::new(self.dialect)
            .sql("UPDATE webhooks SET enabled = ")
            .bind(enabled)
            .sql(", next_attempt_at = NULL");
        let changed =
            self.for_webhook(assignments, tenant.as_str(), id).query().execute(&mut *tx).await?.rows_affected();
        if changed == 0 {
            return Err(DomainError::NotFound(crate::Entity::Webhook));
        }
        let endpoint = self.load_webhook(&mut tx, tenant.as_str(), id).await?;
        tx.commit().await?;
        Ok(endpoint)
    }

    #[tracing::instrument(name = "store.delete_webhook", skip_all, fields(tenant = %tenant, id = %id))]
    async fn delete_webhook(&self, tenant: &TenantName, id: &str) -> Result<(), DomainError> {
        let mut tx = self.begin_write().await?;
        let tenant = self.tenant_id(&mut tx, tenant).await?;
        let deleted = self
            .for_webhook(Statement::new(self.dialect).sql("DELETE FROM webhooks"), tenant.as_str(), id)
            .query()
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(DomainError::NotFound(crate::Entity::Webhook));
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store.dead_letters", skip_all, fields(tenant = %tenant, webhook = %webhook))]
    async fn dead_letters(&self, tenant: &TenantName, webhook: &str) -> Result<Vec<DeadLetter>, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let tenant = self.tenant_id(&mut conn, tenant).await?;
        self.load_webhook(&mut conn, tenant.as_str(), webhook).await?;
        let rows: Vec<DeadLetterRow> = Statement::new(self.dialect)
            .sql(
                "SELECT d.seq AS seq, e.type AS type, d.attempts AS attempts, d.last_error AS last_error, \
                 d.failed_at AS failed_at, d.redeliver_requested_at AS redeliver_requested_at \
                 FROM webhook_dead_letters d JOIN events e ON e.tenant_id = d.tenant_id AND e.seq = d.seq \
                 WHERE d.tenant_id = ",
            )
            .bind(tenant.as_str())
            .sql(" AND d.webhook_id = ")
            .bind(webhook)
            .sql(" ORDER BY d.seq")
            .query_as()
            .fetch_all(&mut *conn)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| DeadLetter {
                seq: row.seq,
                event_type: row.event_type,
                attempts: attempts(row.attempts),
                last_error: row.last_error,
                failed_at: row.failed_at,
                redeliver_requested_at: row.redeliver_requested_at,
            })
            .collect())
    }

    #[tracing::instrument(name = "store.request_redelivery", skip_all, fields(tenant = %tenant, webhook = %webhook))]
    async fn request_redelivery(
        &self,
        tenant: &TenantName,
        webhook: &str,
        seq: Option<i64>,
    ) -> Result<u64, DomainError> {
        let mut tx = self.begin_write().await?;
        let tenant = self.tenant_id(&mut tx, tenant).await?;
        self.load_webhook(&mut tx, tenant.as_str(), webhook).await?;
        let mut statement = Statement::new(self.dialect)
            .sql("UPDATE webhook_dead_letters SET redeliver_requested_at = ")
            .bind(now_micros())
            .sql(" WHERE tenant_id = ")
            .bind(tenant.as_str())
            .sql(" AND webhook_id = ")
            .bind(webhook);
        if let Some(seq) = seq {
            statement = statement.sql(" AND seq = ").bind(seq);
        }
        let requested = statement.query().execute(&mut *tx).await?.rows_affected();
        if seq.is_some() && requested == 0 {
            return Err(DomainError::NotFound(crate::Entity::DeadLetter));
        }
        tx.commit().await?;
        Ok(requested)
    }

    #[tracing::instrument(name = "store.claim_delivery", level = "debug", skip_all)]
    async fn claim_delivery(
        &self,
        now: i64,
        lease_until: i64,
        max_events: u32,
    ) -> Result<Option<DeliveryBatch>, DomainError> {
        // Wait for a sequencer at work: it may have looked before the write that woke this
        // worker committed, and nothing would wake the worker again.
        self.number_all_events(Busy::Wait).await?;
        let candidates: Vec<CandidateRow> = Statement::new(self.dialect)
            .sql(
                "SELECT w.tenant_id AS tenant_id, n.name AS tenant_name, w.id AS id \
                 FROM webhooks w JOIN tenants n ON n.id = w.tenant_id JOIN event_counters c ON c.tenant_id = w.tenant_id \
                 WHERE w.enabled = TRUE AND (w.lease_until IS NULL OR w.lease_until < ",
            )
            .bind(now)
            .sql(") AND (w.next_attempt_at IS NULL OR w.next_attempt_at <= ")
            .bind(now)
            .sql(
                ") AND (w.delivered_seq < c.last_seq OR EXISTS (SELECT 1 FROM webhook_dead_letters d \
                 WHERE d.tenant_id = w.tenant_id AND d.webhook_id = w.id AND d.redeliver_requested_at IS NOT NULL)) \
                 ORDER BY COALESCE(w.next_attempt_at, 0), w.created_at LIMIT 16",
            )
            .query_as()
            .fetch_all(&self.pool)
            .await?;
        for CandidateRow { tenant_id, tenant_name, id } in candidates {
            // Another replica may take the same candidate: only one wins the lease.
            if !self.lease(&tenant_id, &id, now, lease_until).await? {
                continue;
            }
            let mut conn = self.pool.acquire().await?;
            let row: DeliveryRow = Statement::new(self.dialect)
                .sql("SELECT url, secret, delivered_seq, attempts FROM webhooks WHERE tenant_id = ")
                .bind(tenant_id.as_str())
                .sql(" AND id = ")
                .bind(id.as_str())
                .query_as()
                .fetch_one(&mut *conn)
                .await?;
            let redelivery: Option<(i64, i64)> = Statement::new(self.dialect)
                .sql("SELECT seq, attempts FROM webhook_dead_letters WHERE tenant_id = ")
                .bind(tenant_id.as_str())
                .sql(" AND webhook_id = ")
                .bind(id.as_str())
                .sql(" AND redeliver_requested_at IS NOT NULL ORDER BY seq LIMIT 1")
                .query_as()
                .fetch_optional(&mut *conn)
                .await?;
            let (events, redelivery, attempts) = match redelivery {
                Some((seq, dead_attempts)) => {
                    let events = self.select_events(&tenant_id, "=", seq).sql(" LIMIT 1");
                    let rows: Vec<EventRow> = events.query_as().fetch_all(&mut *conn).await?;
                    (rows, true, attempts(dead_attempts))
                }
                None => {
                    // After a failure, one event at a time, so only the event a receiver keeps
                    // refusing ends up dead-lettered.
                    let attempts = attempts(row.attempts);
                    let limit = if attempts > 0 { 1 } else { max_events.max(1) };
                    let events =
                        self.select_events(&tenant_id, ">", row.delivered_seq).sql(" LIMIT ").bind(i64::from(limit));
                    let rows: Vec<EventRow> = events.query_as().fetch_all(&mut *conn).await?;
                    (rows, false, attempts)
                }
            };
            let events = events.into_iter().map(Event::try_from).collect::<Result<Vec<_>, _>>()?;
            if events.is_empty() {
                self.release(&tenant_id, &id).query().execute(&mut *conn).await?;
                continue;
            }
            return Ok(Some(DeliveryBatch {
                tenant: TenantName::parse(&tenant_name)?,
                endpoint_id: id,
                url: WebhookUrl::parse(&row.url)?,
                secret: WebhookSecret::new(row.secret),
                events,
                redelivery,
                attempts,
            }));
        }
        Ok(None)
    }

    #[tracing::instrument(name = "store.finish_delivery", skip_all)]
    async fn finish_delivery(&self, batch: &DeliveryBatch, result: &DeliveryResult) -> Result<(), DomainError> {
        let mut tx = self.begin_write().await?;
        let tenant = self.tenant_id(&mut tx, &batch.tenant).await?;
        let (t, id) = (tenant.as_str(), batch.endpoint_id.as_str());
        let first = batch.events.first().map_or(0, |e| e.seq);
        let last = batch.events.last().map_or(0, |e| e.seq);
        let now = now_micros();
        let attempts = i64::from(batch.attempts.saturating_add(1));
        let update = || Statement::new(self.dialect).sql("UPDATE webhooks SET ");
        // Never backwards: a replica that lost its lease may finish after another.
        let advance = |last: i64| {
            update()
                .sql("delivered_seq = CASE WHEN delivered_seq < ")
                .bind(last)
                .sql(" THEN ")
                .bind(last)
                .sql(" ELSE delivered_seq END, attempts = 0, next_attempt_at = NULL, last_error = ")
        };
        let dead_letter = |assignments: Statement, seq: i64| {
            assignments
                .sql(" WHERE tenant_id = ")
                .bind(t)
                .sql(" AND webhook_id = ")
                .bind(id)
                .sql(" AND seq = ")
                .bind(seq)
        };
        match (result, batch.redelivery) {
            (DeliveryResult::Delivered, false) => {
                let assignments = advance(last).sql("NULL, lease_until = NULL");
                self.for_webhook(assignments, t, id).query().execute(&mut *tx).await?;
            }
            (DeliveryResult::Delivered, true) => {
                let delete = Statement::new(self.dialect).sql("DELETE FROM webhook_dead_letters");
                dead_letter(delete, first).query().execute(&mut *tx).await?;
                self.release(t, id).query().execute(&mut *tx).await?;
            }
            (DeliveryResult::Failed { error, retry_at: Some(retry_at) }, false) => {
                let assignments = update()
                    .sql("attempts = ")
                    .bind(attempts)
                    .sql(", next_attempt_at = ")
                    .bind(*retry_at)
                    .sql(", last_error = ")
                    .bind(error.as_str())
                    .sql(", lease_until = NULL");
                self.for_webhook(assignments, t, id).query().execute(&mut *tx).await?;
            }
            (DeliveryResult::Failed { error, retry_at: None }, false) => {
                for event in &batch.events {
                    Statement::new(self.dialect)
                        .sql("INSERT INTO webhook_dead_letters (tenant_id, webhook_id, seq, attempts, last_error, failed_at) VALUES (")
                        .bind(t)
                        .sql(", ")
                        .bind(id)
                        .sql(", ")
                        .bind(event.seq)
                        .sql(", ")
                        .bind(attempts)
                        .sql(", ")
                        .bind(error.as_str())
                        .sql(", ")
                        .bind(now)
                        .sql(") ON CONFLICT (tenant_id, webhook_id, seq) DO NOTHING")
                        .query()
                        .execute(&mut *tx)
                        .await?;
                }
                let assignments = advance(last).bind(error.as_str()).sql(", lease_until = NULL");
                self.for_webhook(assignments, t, id).query().execute(&mut *tx).await?;
            }
            (DeliveryResult::Failed { error, .. }, true) => {
                let assignments = Statement::new(self.dialect)
                    .sql("UPDATE webhook_dead_letters SET attempts = ")
                    .bind(attempts)
                    .sql(", last_error = ")
                    .bind(error.as_str())
                    .sql(", failed_at = ")
                    .bind(now)
                    .sql(", redeliver_requested_at = NULL");
                dead_letter(assignments, first).query().execute(&mut *tx).await?;
                self.release(t, id).query().execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use proto::ResourceKind;

    use super::Churned;
    use crate::testing::{Backend, TestDb};
    use crate::{EventStore, Precondition, ResourceStore, TenantStore};

    const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

    /// `n` committed events of `tenant` waiting for their number, as writes leave them.
    #[allow(clippy::unwrap_used)]
    async fn pending(db: &TestDb, tenant: &str, n: u64) {
        db.execute(&format!(
            "INSERT INTO pending_events (tenant_id, type, occurred_at, data) \
             SELECT '{tenant}', 'user.created', 0, '{{}}'::jsonb FROM generate_series(1, {n})"
        ))
        .await
        .unwrap();
    }

    #[allow(clippy::unwrap_used)]
    async fn vacuums_of(db: &TestDb, table: &str) -> i64 {
        db.scalar(&format!("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = '{table}'")).await.unwrap()
    }

    async fn vacuums(db: &TestDb) -> i64 {
        vacuums_of(db, "pending_events").await
    }

    #[tokio::test]
    async fn postgres_group_rows_rewritten_by_member_changes_are_vacuumed_past_their_threshold() {
        let Some(db) = TestDb::new(Backend::Postgres).await else { return };
        let store = db.store().await;
        let tenant = store.create_tenant(&crate::TenantName::parse("acme").unwrap()).await.unwrap();
        EventStore::number_events(&store).await.unwrap();
        assert_eq!(vacuums_of(&db, "groups").await, 1, "once at start");

        let body = |name: &str| serde_json::json!({"schemas": [GROUP_SCHEMA], "displayName": name});
        let group = store.create(&tenant.id, ResourceKind::Group, body("staff")).await.unwrap();
        let before = store.churn.count(Churned::Groups);
        store
            .replace(&tenant.id, ResourceKind::Group, &group.id, body("all staff"), &Precondition::None)
            .await
            .unwrap();
        assert_eq!(store.churn.count(Churned::Groups), before + 1, "a rewritten group row counts");
        EventStore::number_events(&store).await.unwrap();
        assert_eq!(vacuums_of(&db, "groups").await, 1, "one rewrite is not worth a vacuum");

        // The rest of the threshold, as that many member changes would add.
        store.churn.add(Churned::Groups, Churned::Groups.threshold() - store.churn.count(Churned::Groups));
        EventStore::number_events(&store).await.unwrap();
        assert_eq!(vacuums_of(&db, "groups").await, 2);
    }

    #[tokio::test]
    async fn postgres_sequencer_vacuums_the_pending_events_it_moved_once_they_are_many() {
        let Some(db) = TestDb::new(Backend::Postgres).await else { return };
        let store = db.store().await;
        let tenant = store.create_tenant(&crate::TenantName::parse("acme").unwrap()).await.unwrap();
        let id = tenant.id.as_str();

        // Once at start, for what another process may have left.
        EventStore::number_events(&store).await.unwrap();
        assert_eq!(vacuums(&db).await, 1);

        pending(&db, id, 100).await;
        EventStore::number_events(&store).await.unwrap();
        assert_eq!(vacuums(&db).await, 1, "a hundred moved events are not worth a vacuum");

        pending(&db, id, Churned::PendingEvents.threshold()).await;
        EventStore::number_events(&store).await.unwrap();
        assert_eq!(vacuums(&db).await, 2);
        // Every event numbered once, in one sequence, and nothing left behind.
        let numbered = i64::try_from(Churned::PendingEvents.threshold() + 100).unwrap();
        assert_eq!(db.scalar("SELECT count(DISTINCT seq) FROM events").await.unwrap(), numbered);
        assert_eq!(db.scalar("SELECT max(seq) FROM events").await.unwrap(), numbered);
        assert_eq!(db.scalar("SELECT count(*) FROM pending_events").await.unwrap(), 0);
        // Its emptied pages are kept for the next events, not given back under an exclusive lock,
        // by this vacuum and by autovacuum.
        let size = "SELECT pg_relation_size('pending_events')";
        assert!(db.scalar(size).await.unwrap() > 0, "the vacuum truncated the emptied table");
        let kept = "SELECT count(*) FROM pg_class WHERE relname = 'pending_events' \
                    AND 'vacuum_truncate=false' = ANY (reloptions)";
        assert_eq!(db.scalar(kept).await.unwrap(), 1, "autovacuum may truncate the table");

        // The count starts again after a vacuum.
        pending(&db, id, 100).await;
        EventStore::number_events(&store).await.unwrap();
        assert_eq!(vacuums(&db).await, 2);
    }
}
