//! Client assertions (RFC 7523 §2.2 and §3): a JWT signed by a key of the trusted issuer's JWKS,
//! naming the configured issuer, subject and audience, within its validity (plus a small skew).
//!
//! The algorithm comes from the key, never from the token: an RSA key verifies RS*/PS*, a P-256
//! key ES256, a P-384 key ES384. `alg: none` does not parse, and a token claiming HS256 against a
//! published public key (the classic confusion) is refused because the key is not an HMAC key.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use domain::Federation;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::jwks::{JwksCache, JwksError};

/// The `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER_CLIENT_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The grant type of RFC 7523 §2.1 (a JWT as the authorization grant).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The algorithms assertions may be signed with.
pub const SIGNING_ALGORITHMS: [&str; 8] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"];

/// Why an assertion was refused (logged; the client hears only `invalid_client`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AssertionError {
    #[error("the assertion is not a well-formed JWT: {0}")]
    Malformed(String),
    #[error(transparent)]
    Keys(#[from] JwksError),
    #[error("the assertion's algorithm does not fit the issuer's key")]
    AlgorithmMismatch,
    #[error("the assertion is invalid: {0}")]
    Invalid(String),
}

/// The unverified `iss` and `sub` of an assertion, to find the client that trusts them.
#[derive(Debug, serde::Deserialize)]
pub struct Claimed {
    pub iss: String,
    pub sub: String,
}

pub fn peek(assertion: &str) -> Result<Claimed, AssertionError> {
    let payload = assertion.split('.').nth(1).ok_or_else(|| AssertionError::Malformed("no payload".into()))?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|e| AssertionError::Malformed(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| AssertionError::Malformed(e.to_string()))
}

/// Verify `assertion` for a client trusting `federation`.
pub async fn verify(
    assertion: &str,
    federation: &Federation,
    jwks: &JwksCache,
    skew: Duration,
) -> Result<(), AssertionError> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|e| AssertionError::Malformed(e.to_string()))?;
    let key = jwks.key(&federation.jwks_url, header.kid.as_deref()).await?;
    let algorithm = algorithm_of(&key).ok_or(AssertionError::AlgorithmMismatch)?;
    if header.alg != algorithm {
        return Err(AssertionError::AlgorithmMismatch);
    }
    let decoding = DecodingKey::from_jwk(&key).map_err(|e| AssertionError::Invalid(e.to_string()))?;
    let mut validation = Validation::new(algorithm);
    validation.leeway = skew.as_secs();
    validation.validate_nbf = true;
    validation.set_issuer(&[&federation.issuer]);
    validation.set_audience(&[&federation.audience]);
    validation.sub = Some(federation.subject.clone());
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    jsonwebtoken::decode::<serde_json::Value>(assertion, &decoding, &validation)
        .map_err(|e| AssertionError::Invalid(e.to_string()))?;
    Ok(())
}

/// The one algorithm `key` verifies: its declared `alg` if it names one this gateway accepts,
/// otherwise what its type implies. `None` for any key an HMAC (or anything else) would use.
fn algorithm_of(key: &Jwk) -> Option<Algorithm> {
    let declared = key.common.key_algorithm;
    match &key.algorithm {
        AlgorithmParameters::RSA(_) => match declared {
            None | Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
            Some(KeyAlgorithm::RS384) => Some(Algorithm::RS384),
            Some(KeyAlgorithm::RS512) => Some(Algorithm::RS512),
            Some(KeyAlgorithm::PS256) => Some(Algorithm::PS256),
            Some(KeyAlgorithm::PS384) => Some(Algorithm::PS384),
            Some(KeyAlgorithm::PS512) => Some(Algorithm::PS512),
            Some(_) => None,
        },
        AlgorithmParameters::EllipticCurve(params) => match (&params.curve, declared) {
            (EllipticCurve::P256, None | Some(KeyAlgorithm::ES256)) => Some(Algorithm::ES256),
            (EllipticCurve::P384, None | Some(KeyAlgorithm::ES384)) => Some(Algorithm::ES384),
            _ => None,
        },
        _ => None,
    }
}
