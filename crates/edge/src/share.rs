//! Fair use of the database between tenants.
//!
//! Each tenant may have at most `per_tenant` requests doing database work at once; more wait in
//! the tenant's own queue (first come, first served), so a tenant that floods the gateway with
//! expensive requests waits behind itself while every other tenant keeps its share of the
//! connection pool. A request that would wait too long, or find its tenant's queue full, is
//! refused at once with 429 and `Retry-After`: the excess is the tenant's own.
//!
//! A tenant whose writes are the only database work of the process (an IdP's initial cycle on a
//! quiet night) may take up to `write_burst` turns for writes, which are bounded in cost, while
//! no other tenant has used the database for [`QUIET`]: one tenant's writes then run side by side
//! like anyone's would. As soon as another tenant shows up, turns beyond the share are no longer
//! given, and the connections they held come back as their writes end; `write_burst` leaves the
//! newcomer its own share of the pool meanwhile. Reads, which a tenant can make costly, never
//! go beyond the share.
//!
//! The work runs in a task of its own that keeps the tenant's slot until the database is done
//! with it, even when the client has gone away or the request's deadline passed (503): the slot
//! counts what the database is really doing for the tenant, not what clients still wait for.
//! The database's own statement time limit (PostgreSQL `statement_timeout`) stops a statement on
//! the server once it has run too long, whoever still waits for it; on SQLite, which has no such
//! limit here, the cost limits on filters and values bound what one statement can do.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::{DomainError, TenantName};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use crate::error::ScimError;

/// How long a refused request is told to wait.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How long after another tenant's request a tenant's writes keep to its share.
pub const QUIET: Duration = Duration::from_secs(1);

/// What a request's database work is, for its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Read,
    /// A write: bounded in cost, so it may use turns beyond the share while the tenant is alone.
    Write,
}

/// The limits of [`DatabaseShare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareLimits {
    /// Requests of one tenant doing database work at once.
    pub per_tenant: usize,
    /// Writes of one tenant doing database work at once while no other tenant uses the
    /// database (at least `per_tenant`).
    pub write_burst: usize,
    /// Requests of one tenant waiting for a turn; more are refused at once.
    pub queue: usize,
    /// The longest a request waits for its turn.
    pub queue_wait: Duration,
    /// The longest one request's database work may take once started.
    pub deadline: Duration,
}

/// Per-tenant turns at the database; see the module documentation.
pub struct DatabaseShare {
    limits: ShareLimits,
    tenants: Mutex<HashMap<TenantName, Arc<Turns>>>,
    recent: Mutex<Recent>,
}

/// Who used the database last, and until when more than one tenant counts as using it.
#[derive(Default)]
struct Recent {
    tenant: Option<TenantName>,
    shared_until: Option<Instant>,
}

struct Turns {
    slots: Arc<Semaphore>,
    /// Turns beyond the share, for writes while the tenant is alone.
    extra: Arc<Semaphore>,
    /// Requests waiting for a slot.
    waiting: std::sync::atomic::AtomicUsize,
}

/// Counts one waiting request while it lives.
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl DatabaseShare {
    pub fn new(limits: ShareLimits) -> Self {
        let per_tenant = limits.per_tenant.max(1);
        let limits = ShareLimits { per_tenant, write_burst: limits.write_burst.max(per_tenant), ..limits };
        Self { limits, tenants: Mutex::new(HashMap::new()), recent: Mutex::default() }
    }

    /// Note that `tenant` uses the database now; whether it has been the only tenant to for
    /// [`QUIET`].
    fn alone(&self, tenant: &TenantName) -> bool {
        let mut recent = self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if recent.tenant.as_ref() != Some(tenant) {
            if recent.tenant.is_some() {
                recent.shared_until = Some(now + QUIET);
            }
            recent.tenant = Some(tenant.clone());
        }
        recent.shared_until.is_none_or(|until| now >= until)
    }

    pub fn limits(&self) -> ShareLimits {
        self.limits
    }

    fn turns(&self, tenant: &TenantName) -> Arc<Turns> {
        let mut tenants = self.tenants.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tenants
            .entry(tenant.clone())
            .or_insert_with(|| {
                Arc::new(Turns {
                    slots: Arc::new(Semaphore::new(self.limits.per_tenant)),
                    extra: Arc::new(Semaphore::new(self.limits.write_burst - self.limits.per_tenant)),
                    waiting: std::sync::atomic::AtomicUsize::new(0),
                })
            })
            .clone()
    }

    /// Requests of `tenant` doing database work right now.
    pub fn in_flight(&self, tenant: &TenantName) -> usize {
        let turns = self.turns(tenant);
        let extra = self.limits.write_burst - self.limits.per_tenant;
        self.limits.per_tenant.saturating_sub(turns.slots.available_permits())
            + extra.saturating_sub(turns.extra.available_permits())
    }

    /// Wait for a turn of `tenant`, then run `work` to completion (or its deadline) in a task
    /// of its own that holds the turn.
    pub async fn run<T, F>(&self, tenant: &TenantName, kind: Work, work: F) -> Result<T, ScimError>
    where
        F: Future<Output = Result<T, DomainError>> + Send + 'static,
        T: Send + 'static,
    {
        let turn = self.wait_for_turn(tenant, kind).await?;
        // The turn goes with the work, not with the caller: it is given back when the database
        // is done, which the statement time limit bounds, not when the client stops waiting.
        // In the caller's span, so the store's spans belong to the request's trace.
        let task = tokio::spawn(
            async move {
                let result = work.await;
                drop(turn);
                result
            }
            .in_current_span(),
        );
        match tokio::time::timeout(self.limits.deadline, task).await {
            Ok(Ok(result)) => Ok(result?),
            Ok(Err(_cancelled_or_panicked)) => Err(ScimError::Unavailable("the server is shutting down")),
            Err(_elapsed) => Err(ScimError::DatabaseTimeout { retry_after: RETRY_AFTER }),
        }
    }

    async fn wait_for_turn(&self, tenant: &TenantName, kind: Work) -> Result<OwnedSemaphorePermit, ScimError> {
        let turns = self.turns(tenant);
        // A write of a tenant alone takes a turn beyond the share first, and leaves the share to
        // the tenant's reads: an IdP's initial cycle searches before each create, and those
        // searches would otherwise queue behind its own writes.
        let alone = self.alone(tenant);
        if kind == Work::Write && alone {
            if let Ok(permit) = turns.extra.clone().try_acquire_owned() {
                return Ok(permit);
            }
        }
        if let Ok(permit) = turns.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let queued = turns.waiting.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let _waiting = Waiting(&turns.waiting);
        if queued >= self.limits.queue {
            crate::metrics::rate_limited(Some(tenant), crate::metrics::RateLimitReason::DatabaseShare);
            return Err(ScimError::TooManyRequests { retry_after: RETRY_AFTER });
        }
        match tokio::time::timeout(self.limits.queue_wait, turns.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_closed)) => Err(ScimError::Unavailable("the server is shutting down")),
            Err(_elapsed) => {
                crate::metrics::rate_limited(Some(tenant), crate::metrics::RateLimitReason::DatabaseShare);
                Err(ScimError::TooManyRequests { retry_after: RETRY_AFTER })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(per_tenant: usize, queue: usize) -> Arc<DatabaseShare> {
        Arc::new(DatabaseShare::new(ShareLimits {
            per_tenant,
            write_burst: per_tenant,
            queue,
            queue_wait: Duration::from_millis(200),
            deadline: Duration::from_secs(5),
        }))
    }

    /// A share of one turn per tenant, of which a tenant alone may write three at once.
    fn bursting_share(queue: usize) -> Arc<DatabaseShare> {
        Arc::new(DatabaseShare::new(ShareLimits {
            per_tenant: 1,
            write_burst: 3,
            queue,
            queue_wait: Duration::from_millis(100),
            deadline: Duration::from_secs(5),
        }))
    }

    fn tenant(name: &str) -> TenantName {
        TenantName::parse(name).unwrap()
    }

    /// Start database work for tenant `name` that holds its turn until the sender is used; returns
    /// once the turn is taken.
    async fn hold_a_turn(
        share: &Arc<DatabaseShare>,
        name: &'static str,
    ) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<Result<(), ScimError>>) {
        hold_a_turn_for(share, name, Work::Read).await
    }

    async fn hold_a_turn_for(
        share: &Arc<DatabaseShare>,
        name: &'static str,
        kind: Work,
    ) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<Result<(), ScimError>>) {
        let before = share.in_flight(&tenant(name));
        let (release, hold) = tokio::sync::oneshot::channel::<()>();
        let caller = {
            let share = share.clone();
            tokio::spawn(async move {
                share
                    .run(&tenant(name), kind, async move {
                        let _ = hold.await;
                        Ok(())
                    })
                    .await
            })
        };
        while share.in_flight(&tenant(name)) == before {
            tokio::task::yield_now().await;
        }
        (release, caller)
    }

    #[tokio::test]
    async fn a_busy_tenant_waits_behind_itself_and_others_go_ahead() {
        let share = share(1, 1);
        let (release, busy) = hold_a_turn(&share, "a").await;
        // Tenant b is not slowed by a.
        assert_eq!(share.run(&tenant("b"), Work::Read, async { Ok(7) }).await.unwrap(), 7);
        // a's next request waits its turn, and past the wait is refused as a's own excess.
        let refused = share.run(&tenant("a"), Work::Read, async { Ok(()) }).await.unwrap_err();
        assert!(matches!(refused, ScimError::TooManyRequests { .. }), "{refused:?}");
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        assert_eq!(share.in_flight(&tenant("a")), 0);
        assert_eq!(share.run(&tenant("a"), Work::Read, async { Ok(1) }).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_tenant_alone_writes_beyond_its_share_until_another_comes() {
        let share = bursting_share(1);
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(hold_a_turn_for(&share, "a", Work::Write).await);
        }
        assert_eq!(share.in_flight(&tenant("a")), 3, "three writes at once while a is alone");
        let read = share.run(&tenant("a"), Work::Read, async { Ok(()) }).await.unwrap_err();
        assert!(matches!(read, ScimError::TooManyRequests { .. }), "reads keep to the share: {read:?}");
        let fourth = share.run(&tenant("a"), Work::Write, async { Ok(()) }).await.unwrap_err();
        assert!(matches!(fourth, ScimError::TooManyRequests { .. }), "no more than the burst: {fourth:?}");
        for (release, caller) in held.drain(..) {
            release.send(()).unwrap();
            caller.await.unwrap().unwrap();
        }
        // Another tenant uses the database: a's writes keep to its share again.
        assert_eq!(share.run(&tenant("b"), Work::Read, async { Ok(7) }).await.unwrap(), 7);
        let (release, first) = hold_a_turn_for(&share, "a", Work::Write).await;
        let second = share.run(&tenant("a"), Work::Write, async { Ok(()) }).await.unwrap_err();
        assert!(matches!(second, ScimError::TooManyRequests { .. }), "{second:?}");
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_tenant_alone_keeps_its_share_for_its_reads_while_its_writes_burst() {
        let share = bursting_share(0);
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(hold_a_turn_for(&share, "a", Work::Write).await);
        }
        // The search an IdP sends before its next create does not wait for the creates.
        assert_eq!(share.run(&tenant("a"), Work::Read, async { Ok(7) }).await.unwrap(), 7);
        for (release, caller) in held.drain(..) {
            release.send(()).unwrap();
            caller.await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn work_keeps_its_turn_after_the_caller_is_gone() {
        let share = share(1, 0);
        let (release, caller) = hold_a_turn(&share, "a").await;
        caller.abort();
        let _ = caller.await;
        assert_eq!(share.in_flight(&tenant("a")), 1, "the database is still working for a");
        release.send(()).unwrap();
        for _ in 0..100 {
            if share.in_flight(&tenant("a")) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(share.in_flight(&tenant("a")), 0);
    }

    #[tokio::test]
    async fn work_past_its_deadline_is_a_503_and_keeps_its_turn() {
        let share = Arc::new(DatabaseShare::new(ShareLimits {
            per_tenant: 1,
            write_burst: 1,
            queue: 0,
            queue_wait: Duration::ZERO,
            deadline: Duration::from_millis(50),
        }));
        let a = tenant("a");
        let slow = share.run(&a, Work::Read, async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        });
        let err = slow.await.unwrap_err();
        assert!(matches!(err, ScimError::DatabaseTimeout { .. }), "{err:?}");
        assert_eq!(share.in_flight(&tenant("a")), 1, "until the work itself ends");
    }
}
