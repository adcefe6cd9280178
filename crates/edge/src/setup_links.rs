//! Setup links: one implementation for the admin API, the CLI and the operator console.
//!
//! A link is `<base>/portal/setup/<id>.<secret>`: the id finds the stored link, the secret (256
//! random bits, kept only as a digest) proves the bearer got it from the operator.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use domain::{now_micros, NewPortalLink, PortalLink, SecretDigest, Store, TenantName};
use rand::rngs::OsRng;
use rand::RngCore;

use crate::issuing::{parse_duration, IssueError};

/// How long a setup link works when the operator does not say.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest a setup link may work.
pub const MAX_EXPIRY: Duration = Duration::from_secs(30 * 24 * 3600);

/// A random secret of 256 bits, URL-safe.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A random public id (128 bits, hexadecimal).
pub fn random_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The expiry an operator asked for (`7d`, `12h`; default [`DEFAULT_EXPIRY`]).
pub fn expiry(expires_in: Option<&str>) -> Result<Duration, IssueError> {
    let expiry = match expires_in.map(str::trim).filter(|e| !e.is_empty()) {
        Some(text) => parse_duration(text, "setup link expiry")?,
        None => DEFAULT_EXPIRY,
    };
    if expiry.is_zero() || expiry > MAX_EXPIRY {
        return Err(IssueError::Invalid(format!(
            "a setup link expires after at most {} and more than nothing",
            humantime::format_duration(MAX_EXPIRY)
        )));
    }
    Ok(expiry)
}

/// A new setup link and its URL, the one time the secret is known.
pub struct IssuedLink {
    pub link: PortalLink,
    pub url: String,
}

/// Issue a setup link for `tenant`, working for `expiry`, under `base` (the public origin).
pub async fn issue(
    store: &dyn Store,
    tenant: &TenantName,
    expiry: Duration,
    base: &str,
) -> Result<IssuedLink, IssueError> {
    let (id, secret) = (random_id(), random_secret());
    let micros = i64::try_from(expiry.as_micros()).unwrap_or(i64::MAX);
    let new = NewPortalLink { id: id.clone(), digest: SecretDigest::of(&secret), expires_at: now_micros() + micros };
    let link = store.add_portal_link(tenant, new).await?;
    Ok(IssuedLink { link, url: format!("{}/portal/setup/{id}.{secret}", base.trim_end_matches('/')) })
}

/// The id and secret of a link's last path segment; `None` for anything that cannot be one.
pub fn split(presented: &str) -> Option<(&str, &str)> {
    let (id, secret) = presented.split_once('.')?;
    let id_ok = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let secret_ok = secret.len() == 43 && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_url_safe() {
        let (a, b) = (random_secret(), random_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "256 bits in unpadded base64");
        let presented = format!("{}.{a}", random_id());
        assert_eq!(split(&presented).map(|(_, s)| s), Some(a.as_str()));
        assert_eq!(split("short.secret"), None);
        assert_eq!(split(&format!("{}.{a}!", random_id())), None);
    }

    #[test]
    fn expiries_default_to_a_week_and_stay_within_thirty_days() {
        assert_eq!(expiry(None).unwrap(), DEFAULT_EXPIRY);
        assert_eq!(expiry(Some("12h")).unwrap(), Duration::from_secs(12 * 3600));
        assert!(expiry(Some("31d")).is_err());
        assert!(expiry(Some("0s")).is_err());
        assert!(expiry(Some("soon")).is_err());
    }
}
