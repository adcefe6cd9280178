//! Retention, in the background. Events older than `event_retention_days` are deleted once
//! every webhook endpoint of their tenant has them (delivered, or dead-lettered and since
//! redelivered or removed); the feed then starts at the oldest event kept. Provisioning activity
//! older than `activity_retention_days`, or beyond each tenant's newest
//! `activity_max_per_tenant` records, is deleted.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use domain::{now_micros, ActivityRetention, DomainError, Store};
use tokio_util::sync::CancellationToken;

/// How often old rows are looked for (the first time at start-up).
const INTERVAL: Duration = Duration::from_secs(3600);
/// Rows deleted per statement: small enough that no write waits long behind one.
const BATCH: u32 = 1000;
/// A pause between batches, so that a large backlog yields to requests.
const BATCH_PAUSE: Duration = Duration::from_millis(100);

const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;

/// Delete events older than `days` every hour until `cancelled` (0 days: never delete).
pub async fn prune_until_cancelled(store: Arc<dyn Store>, days: u64, cancelled: CancellationToken) {
    if days == 0 {
        return;
    }
    let pass = || async move { Ok(now_micros().saturating_sub(max_age(days))) };
    every_interval(&cancelled, "old events", pass, |before: &i64, store_batch| {
        let (store, before) = (store.clone(), *before);
        async move { store.prune_events(before, store_batch).await }
    })
    .await;
}

/// Bound the activity log every hour until `cancelled`: by age (`days`, 0: none) and by count
/// per tenant (`max_per_tenant`, 0: none).
pub async fn prune_activity_until_cancelled(
    store: Arc<dyn Store>,
    days: u64,
    max_per_tenant: u32,
    cancelled: CancellationToken,
) {
    if days == 0 && max_per_tenant == 0 {
        return;
    }
    // Each pass finds the over-long logs' cut-offs once, then deletes up to them in batches.
    let pass = || {
        let store = store.clone();
        async move {
            let cutoffs = match max_per_tenant {
                0 => Vec::new(),
                max => store.activity_cutoffs(max).await?,
            };
            let before = (days > 0).then(|| now_micros().saturating_sub(max_age(days)));
            Ok(Arc::new(ActivityRetention { before, cutoffs }))
        }
    };
    every_interval(&cancelled, "old provisioning activity", pass, |retention: &Arc<ActivityRetention>, store_batch| {
        let (store, retention) = (store.clone(), retention.clone());
        async move { store.prune_activity(&retention, store_batch).await }
    })
    .await;
}

fn max_age(days: u64) -> i64 {
    i64::try_from(days).unwrap_or(i64::MAX / MICROS_PER_DAY).saturating_mul(MICROS_PER_DAY)
}

/// At start-up and then every [`INTERVAL`] until `cancelled`: a pass, which `start`s by saying
/// what goes (`goes`), then calls `delete(&goes, BATCH)` until it deletes fewer than a batch,
/// pausing between batches. A pass that cannot start is retried at the next interval.
async fn every_interval<W, S, SFut, D, DFut>(cancelled: &CancellationToken, what: &str, mut start: S, mut delete: D)
where
    S: FnMut() -> SFut,
    SFut: Future<Output = Result<W, DomainError>>,
    D: FnMut(&W, u32) -> DFut,
    DFut: Future<Output = Result<u64, DomainError>>,
{
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancelled.cancelled() => return,
            _ = tick.tick() => {}
        }
        let pruned: Result<u64, DomainError> = async {
            let goes = start().await?;
            let mut total = 0;
            loop {
                let deleted = delete(&goes, BATCH).await?;
                total += deleted;
                if deleted < u64::from(BATCH) || cancelled.is_cancelled() {
                    return Ok(total);
                }
                tokio::time::sleep(BATCH_PAUSE).await;
            }
        }
        .await;
        match pruned {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, what, "deleted past retention"),
            Err(e) => tracing::warn!(error = %e, what, "could not delete past retention; will retry"),
        }
    }
}
