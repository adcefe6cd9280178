//! Token records kept in memory on PostgreSQL, so that an authenticated request does not read
//! its token from the database each time (it was one of the two statements of a `userName eq`
//! search).
//!
//! A kept record counts only while a connection of this process LISTENs on [`CHANNEL`]: triggers
//! on `tokens` and `tenants` (migration 0012) notify it, as the changing transaction commits, of
//! every change authentication reads, and each notice forgets every record. Forgetting is by
//! generation: a record carries the generation current before it was read and counts only while
//! that generation is still current, so a read that raced a change is never kept past it. While
//! nothing listens (before the connection is up, after it was lost) nothing is kept, since
//! notices sent meanwhile are lost. The store also forgets right after its own token and tenant
//! writes, so the process that made a change never authenticates with the record from before it;
//! other processes (replicas, the CLI) learn of it when the notice arrives.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::{DomainError, StoredToken};

/// The channel the triggers of migration 0012 notify.
const CHANNEL: &str = "scimgate_token_changes";

/// The longest a record is kept even without a notice: a bound should a notice ever be missed
/// unseen (a connection that died without closing).
const RECORD_LIFETIME: Duration = Duration::from_secs(60);

/// Records kept at most (a few hundred bytes each, with the tenant's settings); the tokens
/// beyond are read on each request.
const MAX_RECORDS: u64 = 10_000;

pub(super) struct TokenRecords {
    records: moka::sync::Cache<String, (u64, StoredToken)>,
    generation: AtomicU64,
    listening: AtomicBool,
    /// Where to listen.
    database_url: String,
}

impl std::fmt::Debug for TokenRecords {
    // Not the URL: it may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRecords")
            .field("generation", &self.generation)
            .field("listening", &self.listening)
            .finish_non_exhaustive()
    }
}

impl TokenRecords {
    pub(super) fn new(database_url: String) -> Self {
        Self {
            records: moka::sync::Cache::builder().max_capacity(MAX_RECORDS).time_to_live(RECORD_LIFETIME).build(),
            generation: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            database_url,
        }
    }

    /// The generation to keep a record read from now on with; `None` while nothing listens.
    pub(super) fn generation(&self) -> Option<u64> {
        self.listening.load(Ordering::SeqCst).then(|| self.generation.load(Ordering::SeqCst))
    }

    /// The record of token `id`, if one read since the last change is kept.
    pub(super) fn get(&self, id: &str) -> Option<StoredToken> {
        let current = self.generation()?;
        self.records.get(id).filter(|(generation, _)| *generation == current).map(|(_, token)| token)
    }

    /// Keep `token`, read after [`Self::generation`] said `generation`.
    pub(super) fn keep(&self, id: &str, generation: u64, token: StoredToken) {
        self.records.insert(id.to_owned(), (generation, token));
    }

    /// Forget every record kept so far.
    pub(super) fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.records.invalidate_all();
    }

    fn set_listening(&self, listening: bool) {
        self.listening.store(listening, Ordering::SeqCst);
        self.forget_all();
    }

    /// LISTEN for token changes, forgetting every record at each notice, until the connection
    /// is lost (the error says why); from then on nothing is kept until listening again.
    pub(super) async fn follow_changes(&self) -> DomainError {
        let mut listener = match self.listen().await {
            Ok(listener) => listener,
            Err(e) => return e.into(),
        };
        let _listening = Listening::start(self);
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => self.forget_all(),
                Ok(None) => return DomainError::internal("the connection following token changes closed"),
                Err(e) => return e.into(),
            }
        }
    }

    async fn listen(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect(&self.database_url).await?;
        listener.listen(CHANNEL).await?;
        Ok(listener)
    }
}

/// Records count while this lives: until the connection is lost or the follower is dropped.
struct Listening<'a>(&'a TokenRecords);

impl<'a> Listening<'a> {
    fn start(records: &'a TokenRecords) -> Self {
        records.set_listening(true);
        Self(records)
    }
}

impl Drop for Listening<'_> {
    fn drop(&mut self) {
        self.0.set_listening(false);
    }
}

#[cfg(test)]
mod tests {
    use token::{Scopes, SecretHash, TokenId, TokenKind, Validity};

    use super::*;

    fn token(id: &str) -> StoredToken {
        StoredToken {
            id: TokenId::parse(id).unwrap(),
            kind: TokenKind::Operator,
            tenant: None,
            hash: SecretHash::from_stored(String::new()),
            scopes: Scopes::all(),
            validity: Validity { expires_at: None, revoked_at: None },
        }
    }

    const ID: &str = "0123456789abcdef";

    #[test]
    fn nothing_is_kept_while_nobody_listens() {
        let records = TokenRecords::new(String::new());
        assert_eq!(records.generation(), None);
        records.keep(ID, 0, token(ID));
        assert!(records.get(ID).is_none());
    }

    #[test]
    fn a_record_counts_until_the_next_change() {
        let records = TokenRecords::new(String::new());
        records.set_listening(true);
        let generation = records.generation().unwrap();
        records.keep(ID, generation, token(ID));
        assert_eq!(records.get(ID).map(|t| t.id), Some(TokenId::parse(ID).unwrap()));
        records.forget_all();
        assert!(records.get(ID).is_none());
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_kept_past_it() {
        let records = TokenRecords::new(String::new());
        records.set_listening(true);
        let before = records.generation().unwrap();
        // The change is notified while the read is under way; the read is kept afterwards.
        records.forget_all();
        records.keep(ID, before, token(ID));
        assert!(records.get(ID).is_none());
    }

    #[test]
    fn records_from_before_a_lost_connection_never_count_again() {
        let records = TokenRecords::new(String::new());
        records.set_listening(true);
        records.keep(ID, records.generation().unwrap(), token(ID));
        records.set_listening(false);
        assert!(records.get(ID).is_none());
        records.set_listening(true);
        assert!(records.get(ID).is_none(), "notices sent while nobody listened are lost");
    }
}
