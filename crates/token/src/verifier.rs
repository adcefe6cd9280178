use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::format::ParsedToken;
use crate::hash::{hash_secret, verify_secret, SecretHash};
use crate::TokenError;

#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// How long an Argon2 verdict is reused for the same token.
    pub cache_ttl: Duration,
    pub cache_capacity: u64,
    /// Argon2 runs at most this many at once, so a burst of new tokens cannot take every core
    /// (each verification also holds 19 MiB).
    pub max_parallel_hashes: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(2);
        Self { cache_ttl: Duration::from_secs(300), cache_capacity: 100_000, max_parallel_hashes: cores }
    }
}

/// Whether a verdict was found in the cache or had to be computed with Argon2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheLookup {
    Hit,
    Miss,
}

/// Verifies token secrets against their Argon2id hashes, at most once per token per cache
/// lifetime. The cache key is SHA-256 of the whole token, so a hit proves possession of the
/// secret; failures are cached too, so replaying a wrong secret costs no Argon2 time.
/// Revocation and expiry are not decided here: the caller checks the stored record on every
/// request.
pub struct Verifier {
    verdicts: moka::sync::Cache<[u8; 32], bool>,
    permits: Arc<Semaphore>,
    /// A hash no secret matches, for [`Verifier::refuse_unknown`]; made on first use.
    dummy: std::sync::OnceLock<Option<SecretHash>>,
}

impl Verifier {
    pub fn new(config: VerifierConfig) -> Self {
        Self {
            verdicts: moka::sync::Cache::builder()
                .max_capacity(config.cache_capacity)
                .time_to_live(config.cache_ttl)
                .build(),
            permits: Arc::new(Semaphore::new(config.max_parallel_hashes.max(1))),
            dummy: std::sync::OnceLock::new(),
        }
    }

    /// Ok when `token`'s secret matches `hash`, the stored hash of `token.id`.
    pub async fn verify(&self, token: &ParsedToken, hash: &SecretHash) -> Result<(), TokenError> {
        self.check(token, hash).await.0
    }

    /// [`Verifier::verify`], and whether the verdict came from the cache (for metrics).
    #[tracing::instrument(name = "token.verify", skip_all, fields(token = %token.id))]
    pub async fn check(&self, token: &ParsedToken, hash: &SecretHash) -> (Result<(), TokenError>, CacheLookup) {
        self.check_keyed(cache_key(token), token.secret(), hash).await
    }

    /// [`Verifier::check`] for an OAuth client secret (its id and secret): the same cache, the
    /// same bound on parallel Argon2 runs.
    #[tracing::instrument(name = "token.verify_client_secret", skip_all, fields(client = %secret.id))]
    pub async fn check_client_secret(
        &self,
        secret: &crate::oauth::ClientSecret,
        hash: &SecretHash,
    ) -> (Result<(), TokenError>, CacheLookup) {
        self.check_keyed(client_secret_key(secret), secret.secret(), hash).await
    }

    /// Refuse a client secret whose id is unknown after the Argon2 work a known one costs.
    pub async fn refuse_unknown_client_secret(&self, secret: &crate::oauth::ClientSecret) -> TokenError {
        let key = client_secret_key(secret);
        if self.verdicts.get(&key).is_some() {
            return TokenError::Invalid;
        }
        let dummy = self.dummy.get_or_init(|| hash_secret("scimgate: no token has this id").ok()).clone();
        if let Some(dummy) = dummy {
            if let Err(e) = self.verify_off_thread(secret.secret(), &dummy).await {
                return e;
            }
        }
        self.verdicts.insert(key, false);
        TokenError::Invalid
    }

    async fn check_keyed(
        &self,
        key: [u8; 32],
        secret: &str,
        hash: &SecretHash,
    ) -> (Result<(), TokenError>, CacheLookup) {
        let (matches, lookup) = match self.verdicts.get(&key) {
            Some(verdict) => (verdict, CacheLookup::Hit),
            None => match self.verify_off_thread(secret, hash).await {
                Ok(verdict) => {
                    self.verdicts.insert(key, verdict);
                    (verdict, CacheLookup::Miss)
                }
                Err(e) => return (Err(e), CacheLookup::Miss),
            },
        };
        (if matches { Ok(()) } else { Err(TokenError::Invalid) }, lookup)
    }

    /// Refuse a token whose id is unknown, after the same Argon2 work a known id costs, so the
    /// time taken does not tell which ids exist. The verdict is cached like any other.
    pub async fn refuse_unknown(&self, token: &ParsedToken) -> TokenError {
        self.check_unknown(token).await.0
    }

    /// [`Verifier::refuse_unknown`], and whether the verdict came from the cache (for metrics).
    #[tracing::instrument(name = "token.verify", skip_all, fields(token = %token.id))]
    pub async fn check_unknown(&self, token: &ParsedToken) -> (TokenError, CacheLookup) {
        let key = cache_key(token);
        if self.verdicts.get(&key).is_some() {
            return (TokenError::Invalid, CacheLookup::Hit);
        }
        let dummy = self.dummy.get_or_init(|| hash_secret("scimgate: no token has this id").ok()).clone();
        if let Some(dummy) = dummy {
            if let Err(e) = self.verify_off_thread(token.secret(), &dummy).await {
                return (e, CacheLookup::Miss);
            }
        }
        self.verdicts.insert(key, false);
        (TokenError::Invalid, CacheLookup::Miss)
    }

    /// Whether a verdict for this token is cached (for metrics and tests).
    pub fn is_cached(&self, token: &ParsedToken) -> bool {
        self.verdicts.contains_key(&cache_key(token))
    }

    async fn verify_off_thread(&self, secret: &str, hash: &SecretHash) -> Result<bool, TokenError> {
        let _permit = self.permits.acquire().await.map_err(|_| TokenError::Interrupted)?;
        let secret = secret.to_owned();
        let hash = hash.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| verify_secret(&secret, &hash)))
            .await
            .map_err(|_| TokenError::Interrupted)?
    }
}

fn cache_key(token: &ParsedToken) -> [u8; 32] {
    let mut digest = Sha256::new();
    digest.update(token.id.as_str().as_bytes());
    digest.update(b"_");
    digest.update(token.secret().as_bytes());
    digest.finalize().into()
}

/// Client secrets are keyed apart from bearer tokens, so one kind's verdict never answers for
/// the other.
fn client_secret_key(secret: &crate::oauth::ClientSecret) -> [u8; 32] {
    let mut digest = Sha256::new();
    digest.update(b"oauth-client-secret:");
    digest.update(secret.id.as_str().as_bytes());
    digest.update(b"_");
    digest.update(secret.secret().as_bytes());
    digest.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue;

    #[tokio::test]
    async fn right_secret_passes_and_is_cached_wrong_secret_fails() {
        let verifier = Verifier::new(VerifierConfig::default());
        let issued = issue(crate::TokenKind::Tenant).unwrap();
        let token = ParsedToken::parse(&issued.plaintext).unwrap();
        verifier.verify(&token, &issued.hash).await.unwrap();
        assert!(verifier.is_cached(&token));

        // A fresh verifier holding another token's hash: the secret does not match it.
        let fresh = Verifier::new(VerifierConfig::default());
        let other = issue(crate::TokenKind::Tenant).unwrap();
        assert_eq!(fresh.verify(&token, &other.hash).await.unwrap_err(), TokenError::Invalid);
        assert!(fresh.is_cached(&token), "failures are cached too");
    }

    #[tokio::test]
    async fn check_tells_a_cache_hit_from_a_miss() {
        let verifier = Verifier::new(VerifierConfig::default());
        let issued = issue(crate::TokenKind::Tenant).unwrap();
        let token = ParsedToken::parse(&issued.plaintext).unwrap();
        assert_eq!(verifier.check(&token, &issued.hash).await, (Ok(()), CacheLookup::Miss));
        assert_eq!(verifier.check(&token, &issued.hash).await, (Ok(()), CacheLookup::Hit));

        let unknown = ParsedToken::parse(&issue(crate::TokenKind::Tenant).unwrap().plaintext).unwrap();
        assert_eq!(verifier.check_unknown(&unknown).await, (TokenError::Invalid, CacheLookup::Miss));
        assert_eq!(verifier.check_unknown(&unknown).await, (TokenError::Invalid, CacheLookup::Hit));
    }

    #[tokio::test]
    async fn unknown_ids_are_refused_and_remembered() {
        let verifier = Verifier::new(VerifierConfig::default());
        let issued = issue(crate::TokenKind::Tenant).unwrap();
        let token = ParsedToken::parse(&issued.plaintext).unwrap();
        assert_eq!(verifier.refuse_unknown(&token).await, TokenError::Invalid);
        assert!(verifier.is_cached(&token));
    }
}
