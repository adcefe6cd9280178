//! The event feed, webhook endpoints and delivery state.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::filter::Arg;
use super::{bound, text, SqlStore};
use crate::event::{Event, EventType};
use crate::store::EventStore;
use crate::time_util::now_micros;
use crate::webhook::{DeadLetter, DeliveryBatch, DeliveryResult, WebhookEndpoint, WebhookSecret, WebhookUrl};
use crate::{DomainError, TenantName};

fn event_from_row(row: &AnyRow) -> Result<Event, DomainError> {
    let event_type: String = row.try_get("type")?;
    let data: String = row.try_get("data")?;
    Ok(Event {
        seq: row.try_get("seq")?,
        event_type: event_type.parse::<EventType>()?,
        occurred_at: row.try_get("occurred_at")?,
        data: serde_json::from_str::<Value>(&data)
            .map_err(|e| DomainError::Internal("stored event is not JSON".into(), Some(Box::new(e))))?,
    })
}

const WEBHOOK_COLUMNS: &str = "id, url, CASE WHEN enabled THEN 1 ELSE 0 END AS enabled, created_at, delivered_seq, \
     attempts, next_attempt_at, last_error";

fn webhook_from_row(row: &AnyRow) -> Result<WebhookEndpoint, DomainError> {
    let url: String = row.try_get("url")?;
    Ok(WebhookEndpoint {
        id: row.try_get("id")?,
        url: WebhookUrl::parse(&url)?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        created_at: row.try_get("created_at")?,
        cursor: row.try_get("delivered_seq")?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
    })
}

impl SqlStore {
    fn events_query(&self, condition: &str) -> String {
        format!(
            "SELECT seq, type, occurred_at, {} AS data FROM events e WHERE e.tenant_id = $1 AND {condition} ORDER BY seq",
            self.dialect.data_column("e")
        )
    }

    async fn load_webhook(
        &self,
        conn: &mut AnyConnection,
        tenant: &str,
        id: &str,
    ) -> Result<WebhookEndpoint, DomainError> {
        let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = $1 AND id = $2");
        let row = bound(&sql, vec![text(tenant), text(id)])
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(DomainError::NotFound(crate::Entity::Webhook))?;
        webhook_from_row(&row)
    }

    /// Take the lease on one endpoint; whether this process got it.
    async fn lease(&self, tenant: &str, id: &str, now: i64, until: i64) -> Result<bool, DomainError> {
        let claimed = bound(
            "UPDATE webhooks SET lease_until = $3 WHERE tenant_id = $1 AND id = $2 \
             AND (lease_until IS NULL OR lease_until < $4)",
            vec![text(tenant), text(id), Arg::Int(until), Arg::Int(now)],
        )
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(claimed == 1)
    }
}

#[async_trait]
impl EventStore for SqlStore {
    #[tracing::instrument(name = "store.events_after", skip_all, fields(tenant = %tenant))]
    async fn events_after(&self, tenant: &TenantName, after: i64, limit: u32) -> Result<Vec<Event>, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let tenant = self.tenant_id(&mut conn, tenant).await?;
        let sql = format!("{} LIMIT $3", self.events_query("e.seq > $2"));
        let rows = bound(&sql, vec![text(tenant.as_str()), Arg::Int(after), Arg::Int(i64::from(limit))])
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    #[tracing::instrument(name = "store.prune_events", level = "debug", skip_all)]
    async fn prune_events(&self, before: i64, limit: u32) -> Result<u64, DomainError> {
        // One bounded batch per call, so that a large backlog never holds a long transaction
        // (SQLite has one writer) and the caller can pace itself.
        let deleted = bound(
            "DELETE FROM events WHERE (tenant_id, seq) IN (\
                 SELECT e.tenant_id, e.seq FROM events e WHERE e.occurred_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.tenant_id = e.tenant_id AND w.delivered_seq < e.seq) \
                 AND NOT EXISTS (SELECT 1 FROM webhook_dead_letters d WHERE d.tenant_id = e.tenant_id AND d.seq = e.seq) \
                 LIMIT $2)",
            vec![Arg::Int(before), Arg::Int(i64::from(limit))],
        )
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
        let mut tx = self.begin_write().await?;
        let row = bound("SELECT id, event_seq FROM tenants WHERE name = $1", vec![text(tenant.as_str())])
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(DomainError::NotFound(crate::Entity::Tenant))?;
        let tenant_id: String = row.try_get("id")?;
        let cursor: i64 = if from_start { 0 } else { row.try_get("event_seq")? };
        let id = uuid::Uuid::now_v7().to_string();
        bound(
            "INSERT INTO webhooks (tenant_id, id, url, secret, enabled, created_at, delivered_seq) \
             VALUES ($1, $2, $3, $4, TRUE, $5, $6)",
            vec![
                text(&tenant_id),
                text(&id),
                text(url.as_str()),
                text(secret.expose()),
                Arg::Int(now_micros()),
                Arg::Int(cursor),
            ],
        )
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
        let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = $1 ORDER BY created_at, id");
        let rows = bound(&sql, vec![text(tenant.as_str())]).fetch_all(&mut *conn).await?;
        rows.iter().map(webhook_from_row).collect()
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
        let changed = bound(
            "UPDATE webhooks SET enabled = $3, next_attempt_at = NULL WHERE tenant_id = $1 AND id = $2",
            vec![text(tenant.as_str()), text(id), Arg::Bool(enabled)],
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
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
        let deleted =
            bound("DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2", vec![text(tenant.as_str()), text(id)])
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
        let rows = bound(
            "SELECT d.seq AS seq, e.type AS type, d.attempts AS attempts, d.last_error AS last_error, \
             d.failed_at AS failed_at, d.redeliver_requested_at AS redeliver_requested_at \
             FROM webhook_dead_letters d JOIN events e ON e.tenant_id = d.tenant_id AND e.seq = d.seq \
             WHERE d.tenant_id = $1 AND d.webhook_id = $2 ORDER BY d.seq",
            vec![text(tenant.as_str()), text(webhook)],
        )
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeadLetter {
                    seq: row.try_get("seq")?,
                    event_type: row.try_get("type")?,
                    attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
                    last_error: row.try_get("last_error")?,
                    failed_at: row.try_get("failed_at")?,
                    redeliver_requested_at: row.try_get("redeliver_requested_at")?,
                })
            })
            .collect()
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
        let mut args = vec![text(tenant.as_str()), text(webhook), Arg::Int(now_micros())];
        let mut sql =
            "UPDATE webhook_dead_letters SET redeliver_requested_at = $3 WHERE tenant_id = $1 AND webhook_id = $2"
                .to_owned();
        if let Some(seq) = seq {
            sql.push_str(" AND seq = $4");
            args.push(Arg::Int(seq));
        }
        let requested = bound(&sql, args).execute(&mut *tx).await?.rows_affected();
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
        let candidates = bound(
            "SELECT w.tenant_id AS tenant_id, n.name AS tenant_name, w.id AS id \
             FROM webhooks w JOIN tenants n ON n.id = w.tenant_id \
             WHERE w.enabled = TRUE AND (w.lease_until IS NULL OR w.lease_until < $1) \
             AND (w.next_attempt_at IS NULL OR w.next_attempt_at <= $1) \
             AND (w.delivered_seq < n.event_seq OR EXISTS (SELECT 1 FROM webhook_dead_letters d \
                  WHERE d.tenant_id = w.tenant_id AND d.webhook_id = w.id AND d.redeliver_requested_at IS NOT NULL)) \
             ORDER BY COALESCE(w.next_attempt_at, 0), w.created_at LIMIT 16",
            vec![Arg::Int(now)],
        )
        .fetch_all(&self.pool)
        .await?;
        for candidate in &candidates {
            let (tenant_id, id): (String, String) = (candidate.try_get("tenant_id")?, candidate.try_get("id")?);
            // Another replica may take the same candidate: only one wins the lease.
            if !self.lease(&tenant_id, &id, now, lease_until).await? {
                continue;
            }
            let tenant_name: String = candidate.try_get("tenant_name")?;
            let mut conn = self.pool.acquire().await?;
            let row = bound(
                "SELECT url, secret, delivered_seq, attempts FROM webhooks WHERE tenant_id = $1 AND id = $2",
                vec![text(&tenant_id), text(&id)],
            )
            .fetch_one(&mut *conn)
            .await?;
            let url: String = row.try_get("url")?;
            let cursor: i64 = row.try_get("delivered_seq")?;
            let attempts = u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX);
            let redelivery = bound(
                "SELECT seq, attempts FROM webhook_dead_letters WHERE tenant_id = $1 AND webhook_id = $2 \
                 AND redeliver_requested_at IS NOT NULL ORDER BY seq LIMIT 1",
                vec![text(&tenant_id), text(&id)],
            )
            .fetch_optional(&mut *conn)
            .await?;
            let (events, redelivery, attempts) = match redelivery {
                Some(dead) => {
                    let seq: i64 = dead.try_get("seq")?;
                    let sql = format!("{} LIMIT 1", self.events_query("e.seq = $2"));
                    let rows = bound(&sql, vec![text(&tenant_id), Arg::Int(seq)]).fetch_all(&mut *conn).await?;
                    let attempts = u32::try_from(dead.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX);
                    (rows, true, attempts)
                }
                None => {
                    // After a failure, one event at a time, so only the event a receiver keeps
                    // refusing ends up dead-lettered.
                    let limit = if attempts > 0 { 1 } else { max_events.max(1) };
                    let sql = format!("{} LIMIT $3", self.events_query("e.seq > $2"));
                    let rows = bound(&sql, vec![text(&tenant_id), Arg::Int(cursor), Arg::Int(i64::from(limit))])
                        .fetch_all(&mut *conn)
                        .await?;
                    (rows, false, attempts)
                }
            };
            let events = events.iter().map(event_from_row).collect::<Result<Vec<_>, _>>()?;
            if events.is_empty() {
                bound(
                    "UPDATE webhooks SET lease_until = NULL WHERE tenant_id = $1 AND id = $2",
                    vec![text(&tenant_id), text(&id)],
                )
                .execute(&mut *conn)
                .await?;
                continue;
            }
            return Ok(Some(DeliveryBatch {
                tenant: TenantName::parse(&tenant_name)?,
                endpoint_id: id,
                url: WebhookUrl::parse(&url)?,
                secret: WebhookSecret::new(row.try_get("secret")?),
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
        let (t, id) = (text(tenant.as_str()), text(&batch.endpoint_id));
        let first = batch.events.first().map_or(0, |e| e.seq);
        let last = batch.events.last().map_or(0, |e| e.seq);
        let now = now_micros();
        let attempts = i64::from(batch.attempts.saturating_add(1));
        match (result, batch.redelivery) {
            (DeliveryResult::Delivered, false) => {
                // Never backwards: a replica that lost its lease may finish after another.
                bound(
                    "UPDATE webhooks SET delivered_seq = CASE WHEN delivered_seq < $3 THEN $3 ELSE delivered_seq END, \
                     attempts = 0, next_attempt_at = NULL, last_error = NULL, lease_until = NULL \
                     WHERE tenant_id = $1 AND id = $2",
                    vec![t, id, Arg::Int(last)],
                )
                .execute(&mut *tx)
                .await?;
            }
            (DeliveryResult::Delivered, true) => {
                bound(
                    "DELETE FROM webhook_dead_letters WHERE tenant_id = $1 AND webhook_id = $2 AND seq = $3",
                    vec![t.clone(), id.clone(), Arg::Int(first)],
                )
                .execute(&mut *tx)
                .await?;
                bound("UPDATE webhooks SET lease_until = NULL WHERE tenant_id = $1 AND id = $2", vec![t, id])
                    .execute(&mut *tx)
                    .await?;
            }
            (DeliveryResult::Failed { error, retry_at: Some(retry_at) }, false) => {
                bound(
                    "UPDATE webhooks SET attempts = $3, next_attempt_at = $4, last_error = $5, lease_until = NULL \
                     WHERE tenant_id = $1 AND id = $2",
                    vec![t, id, Arg::Int(attempts), Arg::Int(*retry_at), text(error)],
                )
                .execute(&mut *tx)
                .await?;
            }
            (DeliveryResult::Failed { error, retry_at: None }, false) => {
                for event in &batch.events {
                    bound(
                        "INSERT INTO webhook_dead_letters (tenant_id, webhook_id, seq, attempts, last_error, failed_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, webhook_id, seq) DO NOTHING",
                        vec![t.clone(), id.clone(), Arg::Int(event.seq), Arg::Int(attempts), text(error), Arg::Int(now)],
                    )
                    .execute(&mut *tx)
                    .await?;
                }
                bound(
                    "UPDATE webhooks SET delivered_seq = CASE WHEN delivered_seq < $3 THEN $3 ELSE delivered_seq END, \
                     attempts = 0, next_attempt_at = NULL, last_error = $4, lease_until = NULL \
                     WHERE tenant_id = $1 AND id = $2",
                    vec![t, id, Arg::Int(last), text(error)],
                )
                .execute(&mut *tx)
                .await?;
            }
            (DeliveryResult::Failed { error, .. }, true) => {
                bound(
                    "UPDATE webhook_dead_letters SET attempts = $4, last_error = $5, failed_at = $6, redeliver_requested_at = NULL \
                     WHERE tenant_id = $1 AND webhook_id = $2 AND seq = $3",
                    vec![t.clone(), id.clone(), Arg::Int(first), Arg::Int(attempts), text(error), Arg::Int(now)],
                )
                .execute(&mut *tx)
                .await?;
                bound("UPDATE webhooks SET lease_until = NULL WHERE tenant_id = $1 AND id = $2", vec![t, id])
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
