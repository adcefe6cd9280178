use std::sync::Arc;

use domain::Store;
use token::limit::{FailureLimiter, TenantLimiter};
use token::Verifier;
use tokio::sync::Notify;

use crate::config::Settings;
use crate::oauth::JwksCache;
use crate::usage::TokenUsage;

/// What every handler shares.
pub struct AppState {
    pub store: Arc<dyn Store>,
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
}
