//! When each token was last used, and which User-Agent each tenant's IdP sent last (for the
//! readiness check), kept in memory and written in batches: a request never waits on a database
//! write for either.

use std::collections::HashMap;
use std::sync::Mutex;

use domain::{DomainError, Store, TenantId};
use token::TokenId;

#[derive(Default)]
pub struct TokenUsage {
    pending: Mutex<HashMap<TokenId, i64>>,
    agents: Mutex<HashMap<TenantId, (String, i64)>>,
}

/// The longest User-Agent kept; real IdPs send far shorter ones.
const MAX_USER_AGENT: usize = 200;

impl TokenUsage {
    /// Note that `id` was used at `at` (microseconds since the epoch).
    pub fn record(&self, id: &TokenId, at: i64) {
        let Ok(mut pending) = self.pending.lock() else { return };
        match pending.get_mut(id) {
            Some(last) => *last = (*last).max(at),
            None => {
                pending.insert(id.clone(), at);
            }
        }
    }

    /// Note that a request of `tenant` came with this User-Agent at `at`.
    pub fn record_user_agent(&self, tenant: &TenantId, agent: &str, at: i64) {
        let Ok(mut agents) = self.agents.lock() else { return };
        match agents.get_mut(tenant) {
            Some((last, when)) if *when <= at => {
                if last != agent {
                    *last = agent.chars().take(MAX_USER_AGENT).collect();
                }
                *when = at;
            }
            Some(_) => {}
            None => {
                agents.insert(tenant.clone(), (agent.chars().take(MAX_USER_AGENT).collect(), at));
            }
        }
    }

    /// Write what was recorded since the last flush. On failure the times are kept for the next.
    pub async fn flush(&self, store: &dyn Store) -> Result<usize, DomainError> {
        let agents: Vec<(TenantId, String, i64)> = match self.agents.lock() {
            Ok(mut agents) => agents.drain().map(|(tenant, (agent, at))| (tenant, agent, at)).collect(),
            Err(_) => Vec::new(),
        };
        if let Err(e) = store.record_user_agents(&agents).await {
            for (tenant, agent, at) in &agents {
                self.record_user_agent(tenant, agent, *at);
            }
            return Err(e);
        }
        let batch: Vec<(TokenId, i64)> = match self.pending.lock() {
            Ok(mut pending) => pending.drain().collect(),
            Err(_) => return Ok(0),
        };
        if batch.is_empty() {
            return Ok(0);
        }
        if let Err(e) = store.record_token_use(&batch).await {
            for (id, at) in &batch {
                self.record(id, *at);
            }
            return Err(e);
        }
        Ok(batch.len())
    }
}
