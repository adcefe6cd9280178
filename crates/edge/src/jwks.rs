//! The JWKS of each trusted issuer, fetched on first use and cached as its `Cache-Control` says
//! (within bounds). An assertion naming a key id the cached set lacks triggers one refetch (the
//! issuer may have rotated its keys), but never more often than the configured floor: a stream of
//! made-up key ids cannot turn the gateway into a load generator against the issuer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};

/// Cache lifetime when the JWKS response has no `max-age`.
const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// The longest a JWKS is trusted without asking again, whatever its headers say.
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Largest JWKS document read.
const MAX_BODY: usize = 256 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwksError {
    /// The JWKS could not be fetched or read (and no earlier copy holds the key).
    #[error("the issuer's JWKS is unavailable: {0}")]
    Unavailable(String),
    /// No key of the issuer has this id (after a refetch, if the floor allowed one).
    #[error("no key of the issuer matches the assertion's key id")]
    UnknownKey,
}

struct Entry {
    keys: Vec<Jwk>,
    fresh_until: Instant,
}

#[derive(Default)]
struct Slot {
    entry: Option<Arc<Entry>>,
    /// When the last fetch started, successful or not: the floor counts from here.
    last_attempt: Option<Instant>,
}

pub struct JwksCache {
    http: reqwest::Client,
    slots: Mutex<HashMap<String, Slot>>,
    min_refetch: Duration,
    /// How many fetches were made (for tests and metrics).
    fetches: std::sync::atomic::AtomicU64,
}

impl JwksCache {
    pub fn new(timeout: Duration, min_refetch: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("scimgate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, slots: Mutex::default(), min_refetch, fetches: Default::default() })
    }

    /// How many times a JWKS was fetched.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The signing key `kid` of the JWKS at `url` (with no `kid`: its only signing key).
    pub async fn key(&self, url: &str, kid: Option<&str>) -> Result<Jwk, JwksError> {
        let now = Instant::now();
        let (cached, may_fetch) = {
            let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = slots.get(url);
            let cached = slot.and_then(|s| s.entry.clone());
            let may_fetch =
                slot.and_then(|s| s.last_attempt).is_none_or(|at| now.duration_since(at) >= self.min_refetch);
            (cached, may_fetch)
        };
        if let Some(entry) = &cached {
            if entry.fresh_until > now {
                if let Some(key) = find(&entry.keys, kid) {
                    return Ok(key);
                }
            }
        }
        if !may_fetch {
            // Within the floor: answer from what is cached, however old.
            return cached.and_then(|e| find(&e.keys, kid)).ok_or_else(|| {
                if kid.is_some() {
                    JwksError::UnknownKey
                } else {
                    JwksError::Unavailable("no key yet".into())
                }
            });
        }
        if !self.claim_fetch(url, now) {
            return cached.and_then(|e| find(&e.keys, kid)).ok_or(JwksError::UnknownKey);
        }
        match self.fetch(url).await {
            Ok(entry) => {
                let entry = Arc::new(entry);
                let key = find(&entry.keys, kid);
                let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
                slots.entry(url.to_owned()).or_default().entry = Some(entry);
                key.ok_or(JwksError::UnknownKey)
            }
            Err(e) => {
                tracing::warn!(jwks_url = url, error = %e, "fetching an issuer's JWKS failed");
                cached.and_then(|c| find(&c.keys, kid)).ok_or(e)
            }
        }
    }

    /// Record a fetch of `url` starting now, unless another began within the floor (a
    /// concurrent request got there first).
    fn claim_fetch(&self, url: &str, now: Instant) -> bool {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = slots.entry(url.to_owned()).or_default();
        if slot.last_attempt.is_some_and(|at| now.duration_since(at) < self.min_refetch) {
            return false;
        }
        slot.last_attempt = Some(now);
        true
    }

    async fn fetch(&self, url: &str) -> Result<Entry, JwksError> {
        self.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let unavailable = |e: &dyn std::fmt::Display| JwksError::Unavailable(e.to_string());
        let response = self.http.get(url).send().await.map_err(|e| unavailable(&e))?;
        if !response.status().is_success() {
            return Err(JwksError::Unavailable(format!("HTTP {}", response.status())));
        }
        let ttl = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map_or(DEFAULT_TTL, |v| cache_lifetime(v).unwrap_or(DEFAULT_TTL))
            .clamp(self.min_refetch, MAX_TTL.max(self.min_refetch));
        if response.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(JwksError::Unavailable("the JWKS document is too large".into()));
        }
        let body = response.bytes().await.map_err(|e| unavailable(&e))?;
        if body.len() > MAX_BODY {
            return Err(JwksError::Unavailable("the JWKS document is too large".into()));
        }
        let keys = parse_keys(&body)?;
        Ok(Entry { keys, fresh_until: Instant::now() + ttl })
    }
}

/// The lifetime a `Cache-Control` value allows: `max-age`, or zero for `no-store`/`no-cache`;
/// `None` when it says neither.
fn cache_lifetime(value: &str) -> Option<Duration> {
    let mut lifetime = None;
    for directive in value.split(',').map(str::trim) {
        let (name, arg) = directive.split_once('=').map_or((directive, None), |(n, a)| (n, Some(a)));
        match name.to_ascii_lowercase().as_str() {
            "no-store" | "no-cache" => return Some(Duration::ZERO),
            "max-age" => lifetime = arg.and_then(|a| a.trim_matches('"').parse().ok()).map(Duration::from_secs),
            _ => {}
        }
    }
    lifetime
}

/// The usable signing keys of a JWKS document. A key this gateway cannot use (an unknown type or
/// algorithm, an encryption key) is skipped rather than failing the whole set.
fn parse_keys(body: &[u8]) -> Result<Vec<Jwk>, JwksError> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document = serde_json::from_slice(body)
        .map_err(|e| JwksError::Unavailable(format!("the JWKS document is not valid: {e}")))?;
    Ok(document
        .keys
        .into_iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
        .filter(|k| !matches!(k.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature))
        .filter(|k| !matches!(k.algorithm, AlgorithmParameters::OctetKey(_)))
        .collect())
}

fn find(keys: &[Jwk], kid: Option<&str>) -> Option<Jwk> {
    match kid {
        Some(kid) => keys.iter().find(|k| k.common.key_id.as_deref() == Some(kid)).cloned(),
        None if keys.len() == 1 => keys.first().cloned(),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_headers_give_a_lifetime() {
        assert_eq!(cache_lifetime("public, max-age=600"), Some(Duration::from_secs(600)));
        assert_eq!(cache_lifetime("max-age=\"60\""), Some(Duration::from_secs(60)));
        assert_eq!(cache_lifetime("no-store"), Some(Duration::ZERO));
        assert_eq!(cache_lifetime("max-age=60, no-cache"), Some(Duration::ZERO));
        assert_eq!(cache_lifetime("public"), None);
    }

    #[test]
    fn unusable_keys_are_skipped() {
        let body = br#"{"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "weird", "kid": "w"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]}"#;
        let keys = parse_keys(body).unwrap();
        assert_eq!(keys.iter().map(|k| k.common.key_id.clone().unwrap()).collect::<Vec<_>>(), ["ec"]);
        assert!(find(&keys, None).is_some(), "the only key needs no kid");
        assert!(find(&keys, Some("h")).is_none());
    }
}
