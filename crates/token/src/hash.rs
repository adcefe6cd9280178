use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;

use crate::TokenError;

/// OWASP's current Argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

/// An Argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`), as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash(String);

impl SecretHash {
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHash(***)")
    }
}

fn argon2() -> Result<Argon2<'static>, TokenError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None).map_err(|_| TokenError::CorruptHash)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hash a secret with Argon2id and a random salt. Blocking, CPU- and memory-heavy.
pub fn hash_secret(secret: &str) -> Result<SecretHash, TokenError> {
    let salt = SaltString::generate(&mut OsRng);
    let phc = argon2()?.hash_password(secret.as_bytes(), &salt).map_err(|_| TokenError::CorruptHash)?;
    Ok(SecretHash(phc.to_string()))
}

/// Check a secret against its stored hash. The parameters come from the PHC string, so hashes
/// made under older parameters still verify. Argon2's verifier compares in constant time.
pub(crate) fn verify_secret(secret: &str, hash: &SecretHash) -> Result<bool, TokenError> {
    let parsed = PasswordHash::new(&hash.0).map_err(|_| TokenError::CorruptHash)?;
    match argon2()?.verify_password(secret.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(_) => Err(TokenError::CorruptHash),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_verifies_against_its_own_hash_only() {
        let hash = hash_secret("correct horse").unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_secret("correct horse", &hash).unwrap());
        assert!(!verify_secret("correct horsf", &hash).unwrap());
    }

    #[test]
    fn an_unreadable_hash_is_an_error_not_a_match() {
        let hash = SecretHash::from_stored("not a phc string".into());
        assert_eq!(verify_secret("x", &hash).unwrap_err(), TokenError::CorruptHash);
    }
}
