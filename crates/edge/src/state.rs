use std::future::Future;
use std::sync::Arc;

use domain::{DomainError, Store, Tenant, TenantId};
use limit::{FailureLimiter, TenantLimiter};
use token::Verifier;
use tokio::sync::Notify;

use crate::activity::ActivityRecorder;
use crate::config::Settings;
use crate::error::ScimError;
use crate::jwks::JwksCache;
use crate::memory::BodyBudget;
use crate::share::{DatabaseShare, Work};
use crate::usage::TokenUsage;

/// What every handler shares.
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Each tenant's turns at the database.
    pub share: DatabaseShare,
    /// Memory for request bodies being read, parsed and written.
    pub bodies: BodyBudget,
    pub verifier: Verifier,
    /// Per-tenant request limits (shared through Redis when configured).
    pub limits: TenantLimiter,
    /// Failed authentications per client address.
    pub failures: FailureLimiter,
    pub usage: Arc<TokenUsage>,
    pub settings: Settings,
    /// Poked after a write that may have appended events, so idle webhook deliverers look at
    /// once instead of at their next poll.
    pub deliveries: Arc<Notify>,
    /// The JWKS of the issuers that federated OAuth clients trust.
    pub jwks: JwksCache,
    /// Where SCIM requests are recorded for the provisioning activity log.
    pub activity: ActivityRecorder,
}

impl AppState {
    /// Run `work` (a read or a write, `kind`) on the store in `tenant`'s turn at the database
    /// (see [`DatabaseShare`]).
    pub async fn in_turn<T, F, Fut>(&self, tenant: &Tenant, kind: Work, work: F) -> Result<T, ScimError>
    where
        F: FnOnce(Arc<dyn Store>, TenantId) -> Fut,
        Fut: Future<Output = Result<T, DomainError>> + Send + 'static,
        T: Send + 'static,
    {
        self.share.run(&tenant.name, kind, work(self.store.clone(), tenant.id.clone())).await
    }
}
