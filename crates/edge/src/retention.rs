//! Event retention: events older than `event_retention_days` are deleted in the background,
//! once every webhook endpoint of their tenant has them (delivered, or dead-lettered and since
//! redelivered or removed). The feed then starts at the oldest event kept.

use std::sync::Arc;
use std::time::Duration;

use domain::{now_micros, Store};
use tokio_util::sync::CancellationToken;

/// How often old events are looked for.
const INTERVAL: Duration = Duration::from_secs(3600);
/// Events deleted per statement: small enough that no write waits long behind one.
const BATCH: u32 = 1000;
/// A pause between batches, so that a large backlog yields to requests.
const BATCH_PAUSE: Duration = Duration::from_millis(100);

const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;

/// Delete events older than `days` every hour until `cancelled` (0 days: never delete).
pub async fn prune_until_cancelled(store: Arc<dyn Store>, days: u64, cancelled: CancellationToken) {
    if days == 0 {
        return;
    }
    let max_age = i64::try_from(days).unwrap_or(i64::MAX / MICROS_PER_DAY).saturating_mul(MICROS_PER_DAY);
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancelled.cancelled() => return,
            _ = tick.tick() => {}
        }
        let before = now_micros().saturating_sub(max_age);
        match prune(store.as_ref(), before, &cancelled).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, days, "old events deleted"),
            Err(e) => tracing::warn!(error = %e, "could not delete old events; will retry"),
        }
    }
}

/// Delete every event before `before` that no endpoint needs, batch by batch; how many.
async fn prune(store: &dyn Store, before: i64, cancelled: &CancellationToken) -> Result<u64, domain::DomainError> {
    let mut total = 0;
    loop {
        let deleted = store.prune_events(before, BATCH).await?;
        total += deleted;
        if deleted < u64::from(BATCH) || cancelled.is_cancelled() {
            return Ok(total);
        }
        tokio::time::sleep(BATCH_PAUSE).await;
    }
}
