use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Whether `header` (the `Scimgate-Signature` value) signs `body` (the raw request body, before
/// any JSON parsing) with `secret`, and was made within `tolerance_secs` of `now` (Unix seconds).
pub fn verify_scimgate_signature(secret: &str, header: &str, body: &[u8], now: i64, tolerance_secs: u64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t),
            Some(("v1", v1)) => signatures.extend(hex::decode(v1).ok()),
            _ => {}
        }
    }
    let Some(t) = timestamp else { return false };
    match t.parse::<i64>() {
        Ok(sent) if sent.abs_diff(now) <= tolerance_secs => {}
        _ => return false, // no timestamp, or too old (a replay) or too far ahead
    }
    signatures.iter().any(|signature| {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return false };
        mac.update(t.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(signature).is_ok() // constant-time comparison
    })
}
