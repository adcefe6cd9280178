//! Webhook endpoints of a tenant, and the state of delivering its events to each.

use std::fmt;

use crate::event::Event;
use crate::{DomainError, TenantName};

/// Where events are POSTed: an absolute `https://` URL (`http://` is allowed too, for receivers
/// inside the cluster and for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let invalid = |why: &str| DomainError::Invalid(proto::Error::invalid_value(format!("webhook URL `{s}` {why}")));
        let rest = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"))
            .ok_or_else(|| invalid("must start with https:// or http://"))?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() || host.contains(char::is_whitespace) || s.len() > 2048 {
            return Err(invalid("has no valid host"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key an endpoint's deliveries are signed with (HMAC-SHA256). Shown once when the endpoint
/// is created; never in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// An endpoint and where its delivery stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: WebhookUrl,
    pub enabled: bool,
    pub created_at: i64,
    /// The last event sequence delivered (or dead-lettered): delivery resumes after it.
    pub cursor: i64,
    /// Failed attempts at the event after the cursor.
    pub attempts: u32,
    /// When the next attempt is due, after a failure.
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
}

/// An event that could not be delivered to an endpoint after every retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub seq: i64,
    pub event_type: String,
    pub attempts: u32,
    pub last_error: String,
    pub failed_at: i64,
    /// Set when an operator asked for it to be sent again.
    pub redeliver_requested_at: Option<i64>,
}

/// Events claimed for one delivery attempt to one endpoint. The claim is a lease: if the
/// process dies mid-delivery, another one picks the batch up when the lease runs out.
#[derive(Debug, Clone)]
pub struct DeliveryBatch {
    pub tenant: TenantName,
    pub endpoint_id: String,
    pub url: WebhookUrl,
    pub secret: WebhookSecret,
    /// In sequence order. For a redelivery, the one dead-lettered event.
    pub events: Vec<Event>,
    pub redelivery: bool,
    /// Failed attempts so far at these events.
    pub attempts: u32,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryResult {
    Delivered,
    /// The receiver failed; retry at `retry_at`, or, when `None` (attempts exhausted),
    /// dead-letter the batch's events and move on.
    Failed {
        error: String,
        retry_at: Option<i64>,
    },
}
