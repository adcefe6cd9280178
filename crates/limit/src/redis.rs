use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Decision, Quota};

/// GCRA on the Redis server, so every replica draws from one budget per tenant. The clock is the
/// server's (`TIME`), so replicas with skewed clocks still agree; the state is one number per
/// tenant (the theoretical arrival time, in microseconds), expiring once the tenant is idle.
const GCRA: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local per_second = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = 1000000 / per_second
local tolerance = interval * (burst - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then
  return {0, math.ceil(allow_at - now)}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {1, 0}
";

/// Why Redis did not answer.
#[derive(Debug, thiserror::Error)]
pub enum RedisFailure {
    #[error("Redis URL is invalid: {0}")]
    InvalidUrl(#[source] redis::RedisError),
    #[error("Redis error: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
}

/// Tenant limits kept in Redis.
pub struct RedisLimiter {
    connection: ConnectionManager,
    script: redis::Script,
    prefix: String,
    timeout: Duration,
}

impl RedisLimiter {
    /// A limiter on the Redis at `url` (`redis://host:6379/0`). It connects on first use, so a
    /// gateway starts even while Redis is down. Each call waits at most `timeout` for Redis.
    /// Keys are `<prefix>rl:<tenant>`. Needs a Tokio runtime.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<Self, RedisFailure> {
        let client = redis::Client::open(url).map_err(RedisFailure::InvalidUrl)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self { connection, script: redis::Script::new(GCRA), prefix: prefix.to_owned(), timeout })
    }

    pub(crate) async fn check(&self, key: &str, quota: Quota) -> Result<Decision, RedisFailure> {
        let mut connection = self.connection.clone();
        let mut invocation = self.script.key(format!("{}rl:{key}", self.prefix));
        invocation.arg(quota.per_second.get()).arg(quota.burst.get());
        let call = invocation.invoke_async::<(i64, i64)>(&mut connection);
        let (allowed, retry_after_micros) =
            tokio::time::timeout(self.timeout, call).await.map_err(|_| RedisFailure::Timeout(self.timeout))??;
        Ok(if allowed == 1 {
            Decision::Allowed
        } else {
            Decision::Limited { retry_after: Duration::from_micros(u64::try_from(retry_after_micros).unwrap_or(0)) }
        })
    }

    pub(crate) async fn ping(&self) -> Result<(), RedisFailure> {
        let mut connection = self.connection.clone();
        let ping = redis::cmd("PING");
        let call = ping.query_async::<String>(&mut connection);
        tokio::time::timeout(self.timeout, call).await.map_err(|_| RedisFailure::Timeout(self.timeout))??;
        Ok(())
    }
}
