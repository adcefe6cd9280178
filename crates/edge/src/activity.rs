//! The provisioning activity log at the edge: every request to a tenant's SCIM endpoint is
//! captured by a middleware of [`crate::scim`] (method, what it addressed, status, `scimType` and
//! `detail`, latency, the IdP its User-Agent names, the credential it was let in with; never a
//! body, a secret or a filter value) and handed to a bounded queue. A background writer appends
//! the queue to the store in batches, at most [`Settings::activity_flush_ms`] after a record
//! arrived or as soon as a batch is full. A request never waits: when the queue is full its
//! record is dropped and counted (`scimgate_activity_dropped_total`). At shutdown the writer stops
//! after the last request was answered and writes what is queued.
//!
//! While a batch gathers, a record wakes the writer only once a whole batch waits: a wake per
//! record woke the writer's thread for every request, about a tenth of the gateway's CPU for a
//! `GET`.

use std::sync::Arc;
use std::time::Duration;

use domain::{
    format_rfc3339, Activity, ActivityCredential, ActivityCursor, ActivityLimit, ActivityMethod, ActivityQuery,
    ActivityResource, DomainError, NewActivity, OutcomeClass, Store,
};
use proto::IdpProfile;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::metrics;

/// Most records written in one batch.
const BATCH: usize = 500;

/// The credential a SCIM request was let in with, set by authentication.
#[derive(Debug, Clone)]
pub struct RequestCredential(pub ActivityCredential);

/// The sending half of the activity queue, shared by every request; `None` when recording is off.
#[derive(Debug, Clone)]
pub struct ActivityRecorder {
    queue: Option<Queue>,
}

/// The queue, and how a record tells the gathering writer that a whole batch waits.
#[derive(Debug, Clone)]
struct Queue {
    records: mpsc::Sender<NewActivity>,
    batch_waiting: Arc<Notify>,
}

impl ActivityRecorder {
    /// A recorder that records nothing.
    pub fn off() -> Self {
        Self { queue: None }
    }

    /// A recorder with a queue of `capacity` records, and the writer that empties it.
    pub fn new(capacity: usize, store: Arc<dyn Store>, flush_every: Duration) -> (Self, ActivityWriter) {
        let (records, receiver) = mpsc::channel(capacity.max(1));
        let batch_waiting = Arc::new(Notify::new());
        let writer = ActivityWriter { receiver, batch_waiting: batch_waiting.clone(), store, flush_every };
        (Self { queue: Some(Queue { records, batch_waiting }) }, writer)
    }

    pub fn is_on(&self) -> bool {
        self.queue.is_some()
    }

    /// Queue `record` without waiting; when the queue is full (or the writer stopped) it is
    /// dropped and counted.
    pub fn record(&self, record: NewActivity) {
        let Some(queue) = &self.queue else { return };
        if queue.records.try_send(record).is_err() {
            metrics::activity_dropped(metrics::ActivityDropReason::QueueFull, 1);
        } else if queue.records.max_capacity() - queue.records.capacity() >= BATCH {
            queue.batch_waiting.notify_one();
        }
    }
}

/// Empties the activity queue into the store (see the module documentation).
pub struct ActivityWriter {
    receiver: mpsc::Receiver<NewActivity>,
    batch_waiting: Arc<Notify>,
    store: Arc<dyn Store>,
    flush_every: Duration,
}

impl ActivityWriter {
    /// Write batches until `cancelled`, then write what is queued and return.
    pub async fn run_until_cancelled(mut self, cancelled: CancellationToken) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            // Wait for a first record, then let the batch gather until it is full or old enough.
            tokio::select! {
                biased;
                () = cancelled.cancelled() => break,
                received = self.receiver.recv_many(&mut batch, BATCH) => if received == 0 { break },
            }
            if batch.len() < BATCH {
                tokio::select! {
                    biased;
                    () = cancelled.cancelled() => {}
                    () = tokio::time::sleep(self.flush_every) => {}
                    () = self.batch_waiting.notified() => {}
                }
                while batch.len() < BATCH {
                    let Ok(record) = self.receiver.try_recv() else { break };
                    batch.push(record);
                }
            }
            self.write(&mut batch).await;
        }
        // Shutdown: requests are answered, so everything they recorded is queued by now.
        self.receiver.close();
        while self.receiver.recv_many(&mut batch, BATCH).await > 0 {
            self.write(&mut batch).await;
        }
    }

    /// Append `batch` and empty it. A failed write is logged and its records counted as dropped:
    /// the log must never hold up or grow without bound while the database is away.
    async fn write(&self, batch: &mut Vec<NewActivity>) {
        if batch.is_empty() {
            return;
        }
        if let Err(e) = self.store.append_activity(batch).await {
            tracing::warn!(error = %e, records = batch.len(), "could not write provisioning activity; dropped");
            let dropped = u64::try_from(batch.len()).unwrap_or(u64::MAX);
            metrics::activity_dropped(metrics::ActivityDropReason::WriteFailed, dropped);
        }
        batch.clear();
    }
}

/// The filters of a listing as text, from the admin API's query string or the command line.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityParams {
    pub outcome: Option<String>,
    pub status: Option<String>,
    pub method: Option<String>,
    pub resource_type: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<String>,
}

impl ActivityParams {
    /// The query these filters describe; the message says which one is wrong.
    pub fn query(&self) -> Result<ActivityQuery, String> {
        let invalid = |name: &'static str| move |e: DomainError| format!("{name}: {}", bare(e));
        let time = |name: &str, value: &Option<String>| -> Result<Option<i64>, String> {
            value
                .as_deref()
                .map(|v| parse_time(v).ok_or_else(|| format!("{name}: `{v}` is not an RFC 3339 date-time")))
                .transpose()
        };
        let status = self
            .status
            .as_deref()
            .map(|s| {
                s.parse::<u16>()
                    .ok()
                    .filter(|s| (100..=599).contains(s))
                    .ok_or(format!("status: `{s}` is not an HTTP status (100 to 599)"))
            })
            .transpose()?;
        let limit = match self.limit.as_deref() {
            None => ActivityLimit::default(),
            Some(n) => n
                .parse::<u32>()
                .map_err(|_| format!("limit: `{n}` is not a number"))
                .and_then(|n| ActivityLimit::new(n).map_err(invalid("limit")))?,
        };
        Ok(ActivityQuery {
            outcome: self.outcome.as_deref().map(str::parse::<OutcomeClass>).transpose().map_err(invalid("outcome"))?,
            status,
            method: self.method.as_deref().map(str::parse::<ActivityMethod>).transpose().map_err(invalid("method"))?,
            resource_type: self
                .resource_type
                .as_deref()
                .map(str::parse::<ActivityResource>)
                .transpose()
                .map_err(invalid("resource_type"))?,
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
            cursor: self.cursor.as_deref().map(str::parse::<ActivityCursor>).transpose().map_err(invalid("cursor"))?,
            limit,
        })
    }
}

/// A domain error's message without the variant's prefix.
fn bare(e: DomainError) -> String {
    match e {
        DomainError::Invalid(e) if e.kind() == proto::ErrorKind::InvalidValue => e.into_detail(),
        other => other.to_string(),
    }
}

/// An RFC 3339 date-time as microseconds since the epoch.
fn parse_time(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1000).ok()
}

/// One record as the admin API and the CLI show it.
pub fn activity_json(activity: &Activity) -> Value {
    let r = &activity.record;
    json!({
        "seq": activity.seq,
        "time": format_rfc3339(r.at),
        "method": r.method.as_str(),
        "resource_type": r.resource_type.as_str(),
        "resource_id": r.resource_id,
        "status": r.status,
        "outcome": r.outcome().as_str(),
        "scim_type": r.scim_type,
        "detail": r.detail,
        "latency_ms": r.latency_us as f64 / 1000.0,
        "idp": r.idp.map_or("other", IdpProfile::as_str),
        "credential": r.credential.as_ref().map(|c| json!({"kind": c.kind(), "id": c.id().as_str()})),
    })
}

/// Start the writer under the shutdown mechanism; the recorder requests hand records to.
pub fn start(settings: &Settings, store: Arc<dyn Store>, background: &crate::shutdown::Background) -> ActivityRecorder {
    if !settings.activity_log {
        return ActivityRecorder::off();
    }
    let flush_every = Duration::from_millis(settings.activity_flush_ms.max(1));
    let (recorder, writer) = ActivityRecorder::new(settings.activity_queue, store, flush_every);
    background.spawn(move |cancelled| writer.run_until_cancelled(cancelled));
    recorder
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use domain::testing::{Backend, TestDb};
    use domain::{now_micros, ActivityRecord, ActivityStore, TenantName, TenantStore};

    use super::*;

    fn answered(tenant: &TenantName, status: u16) -> NewActivity {
        NewActivity {
            tenant: tenant.clone(),
            record: ActivityRecord {
                at: now_micros(),
                method: ActivityMethod::Get,
                resource_type: ActivityResource::User,
                resource_id: None,
                status,
                scim_type: None,
                detail: None,
                latency_us: 10,
                idp: None,
                credential: None,
            },
        }
    }

    /// A fresh store with one tenant, `acme` (keep the database while the store is used).
    async fn store_with_acme() -> Option<(TestDb, Arc<domain::SqlStore>, TenantName)> {
        let db = TestDb::new(Backend::Sqlite).await?;
        let store = Arc::new(db.store().await);
        let acme = TenantName::parse("acme").unwrap();
        store.create_tenant(&acme).await.unwrap();
        Some((db, store, acme))
    }

    async fn statuses(store: &domain::SqlStore, tenant: &TenantName) -> Vec<u16> {
        let page = store.list_activity(tenant, &ActivityQuery::default()).await.unwrap();
        page.items.iter().map(|a| a.record.status).collect()
    }

    #[tokio::test]
    async fn the_writer_writes_in_time_drops_what_overflows_and_keeps_what_is_queued_at_shutdown() {
        let Some((_db, store, acme)) = store_with_acme().await else { return };

        // Running: a record is written within the flush interval.
        let (recorder, writer) = ActivityRecorder::new(10, store.clone(), Duration::from_millis(20));
        let cancelled = CancellationToken::new();
        let running = tokio::spawn(writer.run_until_cancelled(cancelled.clone()));
        recorder.record(answered(&acme, 200));
        let deadline = Instant::now() + Duration::from_secs(10);
        while statuses(&store, &acme).await.is_empty() {
            assert!(Instant::now() < deadline, "never written");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        cancelled.cancel();
        running.await.unwrap();

        // A queue of three, and a writer that has not run yet: two of five records are dropped,
        // and the three queued are written when it stops, however long its flush interval.
        let (recorder, writer) = ActivityRecorder::new(3, store.clone(), Duration::from_secs(3600));
        for status in [201, 204, 409, 500, 503] {
            recorder.record(answered(&acme, status));
        }
        let cancelled = CancellationToken::new();
        cancelled.cancel();
        writer.run_until_cancelled(cancelled).await;
        assert_eq!(statuses(&store, &acme).await, [409, 204, 201, 200]);
        assert!(!ActivityRecorder::off().is_on());
    }

    #[tokio::test]
    async fn a_whole_batch_waiting_is_written_without_waiting_for_the_flush_interval() {
        let Some((_db, store, acme)) = store_with_acme().await else { return };
        let (recorder, writer) = ActivityRecorder::new(4 * BATCH, store.clone(), Duration::from_secs(3600));
        let cancelled = CancellationToken::new();
        let running = tokio::spawn(writer.run_until_cancelled(cancelled.clone()));

        // The first record starts a batch; an hour would pass before it alone is written.
        recorder.record(answered(&acme, 200));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(store.list_activity(&acme, &ActivityQuery::default()).await.unwrap().items.is_empty());

        // Once a whole batch waits in the queue, it is written.
        for _ in 0..BATCH {
            recorder.record(answered(&acme, 201));
        }
        let all = ActivityQuery { limit: ActivityLimit::new(ActivityLimit::MAX).unwrap(), ..ActivityQuery::default() };
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.list_activity(&acme, &all).await.unwrap().items.len() < BATCH {
            assert!(Instant::now() < deadline, "a whole batch waited for the flush interval");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        cancelled.cancel();
        running.await.unwrap();
    }

    #[test]
    fn params_become_a_query_or_say_what_is_wrong() {
        let params = ActivityParams {
            outcome: Some("client_error".into()),
            status: Some("409".into()),
            method: Some("post".into()),
            resource_type: Some("user".into()),
            since: Some("2026-12-01T00:00:00Z".into()),
            until: Some("2026-12-02T00:00:00+01:00".into()),
            cursor: Some("1764547200000000.7".into()),
            limit: Some("5".into()),
        };
        let query = params.query().unwrap();
        assert_eq!(query.outcome, Some(OutcomeClass::ClientError));
        assert_eq!(query.status, Some(409));
        assert_eq!(query.method, Some(ActivityMethod::Post));
        assert_eq!(query.resource_type, Some(ActivityResource::User));
        assert_eq!(query.since, Some(1_796_083_200_000_000));
        assert_eq!(query.until, Some(1_796_166_000_000_000));
        assert_eq!(query.cursor, Some(ActivityCursor { at: 1_764_547_200_000_000, seq: 7 }));
        assert_eq!(query.limit.get(), 5);
        assert_eq!(ActivityParams::default().query().unwrap(), ActivityQuery::default());
        for (params, message) in [
            (ActivityParams { status: Some("42".into()), ..Default::default() }, "status: `42`"),
            (ActivityParams { outcome: Some("fine".into()), ..Default::default() }, "outcome: unknown outcome `fine`"),
            (ActivityParams { limit: Some("0".into()), ..Default::default() }, "limit: limit must be between"),
            (ActivityParams { limit: Some("x".into()), ..Default::default() }, "limit: `x` is not a number"),
            (ActivityParams { since: Some("yesterday".into()), ..Default::default() }, "since: `yesterday`"),
            (ActivityParams { cursor: Some("abc".into()), ..Default::default() }, "cursor: `abc`"),
        ] {
            let err = params.query().unwrap_err();
            assert!(err.starts_with(message), "{err}");
        }
    }
}
