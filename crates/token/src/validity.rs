use crate::TokenError;

/// When a token may be used: from issue until it expires or is revoked, whichever comes first.
/// A regeneration with a grace period revokes earlier tokens at a time in the future, so a
/// revocation time is a deadline like an expiry. Times are microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Validity {
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl Validity {
    /// Ok while the token is usable at `now`.
    pub fn check(&self, now: i64) -> Result<(), TokenError> {
        if self.revoked_at.is_some_and(|at| at <= now) {
            return Err(TokenError::Revoked);
        }
        if self.expires_at.is_some_and(|at| at <= now) {
            return Err(TokenError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_usable_until_its_first_deadline() {
        assert_eq!(Validity::default().check(100), Ok(()));
        let expiring = Validity { expires_at: Some(100), revoked_at: None };
        assert_eq!(expiring.check(99), Ok(()));
        assert_eq!(expiring.check(100), Err(TokenError::Expired));
        // Revoked with a grace period: usable until the revocation time.
        let graced = Validity { expires_at: Some(500), revoked_at: Some(200) };
        assert_eq!(graced.check(199), Ok(()));
        assert_eq!(graced.check(200), Err(TokenError::Revoked));
    }
}
