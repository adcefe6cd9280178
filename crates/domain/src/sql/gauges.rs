//! Whole-store figures for the operator's gauges: cheap aggregate queries, run periodically by
//! the gateway rather than per scrape or per tenant.

use sqlx::FromRow;

use super::statement::Statement;
use super::SqlStore;
use crate::DomainError;

/// What the store holds that an operator alerts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreGauges {
    /// Events that failed every delivery attempt, over every tenant and endpoint.
    pub dead_letters: u64,
    /// When the oldest event not yet delivered to an enabled webhook occurred (microseconds
    /// since the epoch); `None` when every enabled endpoint is caught up.
    pub oldest_undelivered_at: Option<i64>,
    /// Tenant tokens, not revoked, that expire after `now` and within the window.
    pub tenant_tokens_expiring: u64,
    /// Operator tokens, likewise.
    pub operator_tokens_expiring: u64,
    /// OAuth clients, not revoked, whose client or a live secret of it expires within the window.
    pub oauth_clients_expiring: u64,
}

/// Expiring tokens of one kind.
#[derive(Debug, FromRow)]
struct ExpiringTokens {
    kind: String,
    n: i64,
}

impl SqlStore {
    /// The figures at `now`, counting tokens that expire within `window_micros` of it.
    pub async fn gauges(&self, now: i64, window_micros: i64) -> Result<StoreGauges, DomainError> {
        let mut conn = self.pool.acquire().await?;
        let (dead_letters,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) AS n FROM webhook_dead_letters").fetch_one(&mut *conn).await?;
        // Events are numbered per tenant in commit order, so an endpoint's oldest undelivered
        // event is the first one after its cursor (one index lookup per enabled endpoint).
        let (oldest,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN((SELECT e.occurred_at FROM events e WHERE e.tenant_id = w.tenant_id \
             AND e.seq > w.delivered_seq ORDER BY e.seq LIMIT 1)) AS oldest FROM webhooks w WHERE w.enabled",
        )
        .fetch_one(&mut *conn)
        .await?;
        let until = now.saturating_add(window_micros);
        let tokens: Vec<ExpiringTokens> = Statement::new(self.dialect)
            .sql("SELECT kind, COUNT(*) AS n FROM tokens WHERE revoked_at IS NULL AND expires_at > ")
            .bind(now)
            .sql(" AND expires_at <= ")
            .bind(until)
            .sql(" GROUP BY kind")
            .query_as()
            .fetch_all(&mut *conn)
            .await?;
        let within = |statement: Statement, column: &str| {
            statement.sql(&format!("({column} > ")).bind(now).sql(&format!(" AND {column} <= ")).bind(until).sql(")")
        };
        let clients = Statement::new(self.dialect)
            .sql("SELECT COUNT(*) AS n FROM oauth_clients c WHERE c.revoked_at IS NULL AND (");
        let clients = within(clients, "c.expires_at").sql(
            " OR EXISTS (SELECT 1 FROM oauth_client_secrets s WHERE s.client_id = c.id AND s.revoked_at IS NULL AND ",
        );
        let (clients,): (i64,) = within(clients, "s.expires_at").sql("))").query_as().fetch_one(&mut *conn).await?;
        let mut gauges = StoreGauges {
            dead_letters: u64::try_from(dead_letters).unwrap_or(0),
            oldest_undelivered_at: oldest,
            oauth_clients_expiring: u64::try_from(clients).unwrap_or(0),
            ..StoreGauges::default()
        };
        for ExpiringTokens { kind, n } in tokens {
            let n = u64::try_from(n).unwrap_or(0);
            match kind.as_str() {
                "operator" => gauges.operator_tokens_expiring = n,
                _ => gauges.tenant_tokens_expiring = n,
            }
        }
        Ok(gauges)
    }
}
