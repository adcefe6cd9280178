//! Delivering each tenant's events to its webhook endpoints, beside the server and never inside
//! a request: claim a due batch, POST it signed, record how it went. The store leases each batch
//! to one deliverer, so any number of workers and replicas can deliver at once; a deliverer that
//! dies mid-delivery only delays the batch until its lease runs out (at least once, never lost).
//!
//! The wire format is documented in `docs/webhooks.md`.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use domain::{
    format_rfc3339, now_micros, DeliveryBatch, DeliveryResult, DomainError, Event, Store, TenantName, WebhookSecret,
    WebhookUrl,
};
use hmac::{Hmac, Mac};
use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;
use rand::Rng;
use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use crate::config::Settings;
use crate::metrics::{self, WebhookOutcome};

pub const SIGNATURE_HEADER: &str = "Scimgate-Signature";
pub const DELIVERY_HEADER: &str = "Scimgate-Delivery";
pub const SEQUENCE_HEADER: &str = "Scimgate-Event-Sequence";
pub const USER_AGENT_VALUE: &str = concat!("scimgate-webhooks/", env!("CARGO_PKG_VERSION"));
/// Prefix of a signing secret, so a leaked one is recognisable.
pub const SECRET_PREFIX: &str = "whsec_";
/// Base62 characters after the prefix: ≈ 262 bits from the OS random generator.
const SECRET_LEN: usize = 44;
/// How long a claimed batch stays leased beyond the request timeout, for the database round
/// trips around the request.
const LEASE_MARGIN: Duration = Duration::from_secs(60);
/// The most of a receiver's response body read (then dropped), so its connection can be reused.
const MAX_RESPONSE_READ: usize = 64 * 1024;

type HmacSha256 = Hmac<Sha256>;

/// A new endpoint's signing secret: `whsec_` and 44 base62 characters from the OS generator.
pub fn generate_secret() -> WebhookSecret {
    WebhookSecret::new(format!("{SECRET_PREFIX}{}", Alphanumeric.sample_string(&mut OsRng, SECRET_LEN)))
}

/// An endpoint URL as operators give it: absolute `https://` (or `http://`) with a host, and
/// something the HTTP client can send to.
pub fn parse_url(url: &str) -> Result<WebhookUrl, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("webhook URL `{url}` is not a valid URL: {e}"))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("webhook URL `{url}` must be an absolute https:// or http:// URL with a host"));
    }
    WebhookUrl::parse(url).map_err(|e| e.to_string())
}

/// An event as deliveries and the feed show it.
pub fn event_json(event: &Event) -> Value {
    json!({
        "seq": event.seq,
        "type": event.event_type.as_str(),
        "occurred_at": format_rfc3339(event.occurred_at),
        "data": event.data,
    })
}

/// The body of one delivery: the tenant and its events, in sequence order.
pub fn delivery_body(tenant: &TenantName, events: &[Event]) -> Vec<u8> {
    let events: Vec<Value> = events.iter().map(event_json).collect();
    json!({ "tenant": tenant.as_str(), "events": events }).to_string().into_bytes()
}

/// The `Scimgate-Signature` value: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
/// The timestamp is signed with the body so a captured delivery cannot be replayed later.
pub fn signature(secret: &WebhookSecret, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length (longer ones are hashed first): this cannot fail.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.expose().as_bytes()) else {
        unreachable!("HMAC accepts keys of any length")
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// How deliveries are made and retried.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub timeout: Duration,
    pub batch_size: u32,
    pub poll: Duration,
    pub workers: usize,
}

impl DeliveryPolicy {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            max_attempts: settings.webhook_max_attempts.max(1),
            backoff_base: Duration::from_millis(settings.webhook_backoff_base_ms),
            backoff_max: Duration::from_millis(settings.webhook_backoff_max_ms),
            timeout: Duration::from_millis(settings.webhook_timeout_ms.max(1)),
            batch_size: settings.webhook_batch_size.max(1),
            poll: Duration::from_millis(settings.webhook_poll_ms.max(1)),
            workers: settings.webhook_workers,
        }
    }

    /// The wait after failed attempt number `attempt` (1 for the first failure), or `None` when
    /// that was the last one allowed: `min(max, base · 2^(attempt-1))` scaled by `jitter`, a
    /// factor in [0.5, 1].
    pub fn retry_delay(&self, attempt: u32, jitter: f64) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
        let uncapped = self.backoff_base.saturating_mul(factor);
        Some(uncapped.min(self.backoff_max).mul_f64(jitter.clamp(0.5, 1.0)))
    }
}

/// What one call of [`Deliverer::deliver_due_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A batch of this many events was accepted by its receiver.
    Delivered(usize),
    /// The receiver failed; the batch will be retried, or was dead-lettered.
    Failed,
    /// Nothing was due.
    Idle,
}

/// Delivers due batches, one per [`Deliverer::deliver_due_once`]; in production several workers
/// loop on it ([`Deliverer::spawn`]).
pub struct Deliverer {
    store: Arc<dyn Store>,
    client: reqwest::Client,
    policy: DeliveryPolicy,
    /// Poked after writes that may have appended events, so idle workers look at once.
    wake: Arc<Notify>,
}

impl Deliverer {
    pub fn new(store: Arc<dyn Store>, policy: DeliveryPolicy, wake: Arc<Notify>) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            // A redirect is a failure: the signature was made for this endpoint, and an endpoint
            // that moved should be changed by an operator, not followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { store, client, policy, wake })
    }

    /// Claim one due batch of any tenant, POST it, record the result.
    pub async fn deliver_due_once(&self) -> Result<Outcome, DomainError> {
        let now = now_micros();
        let lease_until = now.saturating_add(micros(self.policy.timeout + LEASE_MARGIN));
        let Some(batch) = self.store.claim_delivery(now, lease_until, self.policy.batch_size).await? else {
            return Ok(Outcome::Idle);
        };
        self.deliver(batch, now).await
    }

    /// POST one claimed batch and record the result.
    #[tracing::instrument(
        name = "webhook.deliver",
        skip_all,
        fields(tenant = %batch.tenant, webhook = %batch.endpoint_id, events = batch.events.len())
    )]
    async fn deliver(&self, batch: DeliveryBatch, now: i64) -> Result<Outcome, DomainError> {
        let (first, last) = sequence_range(&batch);
        // How far behind this tenant's deliveries are: the age of the oldest event not delivered.
        if let Some(oldest) = batch.events.first() {
            let age = now.saturating_sub(oldest.occurred_at).max(0);
            metrics::webhook_lag(&batch.tenant, Duration::from_micros(u64::try_from(age).unwrap_or(0)));
        }
        let result = match self.post(&batch).await {
            Ok(()) => DeliveryResult::Delivered,
            Err(error) => {
                let attempt = batch.attempts.saturating_add(1);
                // A redelivery is one operator-requested try: on failure the event stays a dead letter.
                let delay = if batch.redelivery {
                    None
                } else {
                    self.policy.retry_delay(attempt, rand::thread_rng().gen_range(0.5..=1.0))
                };
                let retry_at = delay.map(|d| now_micros().saturating_add(micros(d)));
                tracing::warn!(
                    tenant = %batch.tenant, webhook = %batch.endpoint_id, first, last, attempt,
                    redelivery = batch.redelivery, retry_in_ms = delay.map(|d| d.as_millis()),
                    dead_lettered = retry_at.is_none() && !batch.redelivery, %error,
                    "webhook delivery failed"
                );
                DeliveryResult::Failed { error, retry_at }
            }
        };
        self.store.finish_delivery(&batch, &result).await?;
        let outcome = match &result {
            DeliveryResult::Delivered => WebhookOutcome::Delivered,
            DeliveryResult::Failed { retry_at: Some(_), .. } => WebhookOutcome::Retry,
            DeliveryResult::Failed { retry_at: None, .. } => WebhookOutcome::Failed,
        };
        metrics::webhook_delivery(&batch.tenant, outcome);
        // A batch smaller than the most a delivery may carry means the tenant is caught up.
        let batch_limit = usize::try_from(self.policy.batch_size).unwrap_or(usize::MAX);
        if outcome == WebhookOutcome::Delivered && !batch.redelivery && batch.events.len() < batch_limit {
            metrics::webhook_lag(&batch.tenant, Duration::ZERO);
        }
        Ok(match result {
            DeliveryResult::Delivered => {
                tracing::debug!(tenant = %batch.tenant, webhook = %batch.endpoint_id, first, last, "webhook delivered");
                Outcome::Delivered(batch.events.len())
            }
            DeliveryResult::Failed { .. } => Outcome::Failed,
        })
    }

    /// POST one batch; a 2xx answer within the timeout is success, anything else the reason.
    async fn post(&self, batch: &DeliveryBatch) -> Result<(), String> {
        let body = delivery_body(&batch.tenant, &batch.events);
        let (first, last) = sequence_range(batch);
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let response = self
            .client
            .post(batch.url.as_str())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header(SIGNATURE_HEADER, signature(&batch.secret, timestamp, &body))
            .header(DELIVERY_HEADER, uuid::Uuid::new_v4().to_string())
            .header(SEQUENCE_HEADER, format!("{first}-{last}"))
            .body(body)
            .send()
            .await
            .map_err(|e| self.describe(e))?;
        let status = response.status();
        drain(response).await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {status}"))
        }
    }

    /// Why a request failed, without the URL (it may carry a receiver's credentials).
    fn describe(&self, e: reqwest::Error) -> String {
        if e.is_timeout() {
            return format!("no answer within {} ms", self.policy.timeout.as_millis());
        }
        let e = e.without_url();
        let mut text = if e.is_connect() { "could not connect".to_owned() } else { e.to_string() };
        let mut source = e.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }

    /// Start the workers; they stop when [`DeliveryWorkers::stop`] is called.
    pub fn spawn(self: Arc<Self>) -> DeliveryWorkers {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for _ in 0..self.policy.workers {
            tasks.spawn(self.clone().work(stopped.clone()));
        }
        DeliveryWorkers { stop, tasks, grace: self.policy.timeout + Duration::from_secs(5) }
    }

    async fn work(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        while !*stopped.borrow() {
            let pause = match self.deliver_due_once().await {
                Ok(Outcome::Delivered(_) | Outcome::Failed) => continue,
                Ok(Outcome::Idle) => self.policy.poll,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook delivery state could not be read or written; retrying");
                    self.policy.poll.max(Duration::from_secs(1))
                }
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.wake.notified() => {}
                changed = stopped.changed() => {
                    // The handle was dropped without `stop`: stop as well.
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// The running delivery workers of a process.
pub struct DeliveryWorkers {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    grace: Duration,
}

impl DeliveryWorkers {
    /// Stop claiming; let deliveries in flight finish (each bounded by the request timeout), then
    /// return. A delivery cut short is retried by whoever next holds its lease.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        let finished =
            tokio::time::timeout(self.grace, async { while self.tasks.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            tracing::warn!("webhook deliveries still running at shutdown were abandoned; they will be retried");
            self.tasks.abort_all();
        }
    }
}

fn sequence_range(batch: &DeliveryBatch) -> (i64, i64) {
    (batch.events.first().map_or(0, |e| e.seq), batch.events.last().map_or(0, |e| e.seq))
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Read a little of the body and drop it: the answer's content means nothing to delivery.
async fn drain(mut response: reqwest::Response) {
    let mut read = 0;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len();
        if read > MAX_RESPONSE_READ {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body_in_hex() {
        // Computed independently: python3 -c 'import hmac,hashlib;
        // print(hmac.new(b"whsec_test", b"1700000000.{\"tenant\":\"acme\",\"events\":[]}", hashlib.sha256).hexdigest())'
        let secret = WebhookSecret::new("whsec_test".into());
        let body = br#"{"tenant":"acme","events":[]}"#;
        assert_eq!(
            signature(&secret, 1_700_000_000, body),
            "t=1700000000,v1=89c27dff86fd54ebb4f9b1be121cd0f4bc8bcd07bc63e0818127460539c84cab"
        );
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_up_to_the_cap_then_stop() {
        let policy = DeliveryPolicy {
            max_attempts: 5,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
            batch_size: 10,
            poll: Duration::from_secs(1),
            workers: 1,
        };
        let full: Vec<_> = (1..=5).map(|attempt| policy.retry_delay(attempt, 1.0)).collect();
        let secs = |s: u64| Some(Duration::from_secs(s));
        assert_eq!(full, [secs(1), secs(2), secs(4), secs(5), None], "doubling, capped, then dead-lettered");
        assert_eq!(policy.retry_delay(3, 0.5), secs(2), "jitter scales down to half");
        assert_eq!(policy.retry_delay(2, 0.1), secs(1), "never below half");
        let long = DeliveryPolicy { max_attempts: u32::MAX, ..policy };
        assert_eq!(long.retry_delay(200, 1.0), secs(5), "no overflow far along");
    }

    #[test]
    fn secrets_are_long_random_and_prefixed() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_ne!(a, b);
        assert!(a.expose().starts_with(SECRET_PREFIX));
        assert_eq!(a.expose().len(), SECRET_PREFIX.len() + SECRET_LEN);
        assert!(a.expose()[SECRET_PREFIX.len()..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(format!("{a:?}"), "WebhookSecret(***)");
    }

    #[test]
    fn urls_must_be_absolute_http_with_a_host() {
        assert!(parse_url("https://hooks.example.com/scim?k=1").is_ok());
        assert!(parse_url("http://10.0.0.5:8080/hook").is_ok());
        for bad in ["ftp://example.com", "https://", "example.com/hook", "https://exa mple.com", ""] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
