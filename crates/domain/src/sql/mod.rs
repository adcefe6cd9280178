//! The [`Store`] on SQL, for PostgreSQL and SQLite.
//!
//! Both backends run the same statements through sqlx's `Any` driver; the handful of places
//! where their SQL differs (JSON access, row locks, substring functions) live in [`Dialect`].
//! Every statement is executed by the shared store test suite on both backends.

mod accounts;
mod activity;
mod dialect;
mod events;
mod filter;
mod gauges;
mod growth;
mod members;
mod oauth;
mod orgs;
mod portal;
mod reconcile;
mod resources;
mod statement;
mod tenants;
mod token_records;
mod tokens;
mod upkeep;
mod url;
mod write;

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};

pub use self::dialect::Dialect;
use self::filter::Arg;
pub use self::gauges::StoreGauges;
use self::statement::Statement;
pub use self::url::{redact_password, DatabaseUrl, UnsupportedDatabaseUrl};
use crate::{DomainError, Entity, TenantId, TenantName};

/// How many ids make a statement a bulk one (see [`SqlStore::prefer_hash_joins`]).
const BULK: usize = 500;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");

/// How long a pooled connection may stay unused before it is closed (see
/// [`SqlStore::close_idle_connections`]).
pub const IDLE_CONNECTION_LIFETIME: Duration = Duration::from_secs(10);

/// How long a pooled connection may stay unused before it is checked with a ping when handed
/// out.
const PING_WHEN_IDLE: Duration = Duration::from_secs(1);

/// Connection settings beyond the URL.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a request waits for a connection before it fails as unavailable (503).
    pub acquire_timeout: Duration,
    /// The longest one statement may run on PostgreSQL before the server stops it
    /// (`statement_timeout`), whether or not anybody still waits for its answer. `None`: no
    /// limit. Migrations run without it.
    pub statement_timeout: Option<Duration>,
    /// The longest a PostgreSQL connection keeps the plans it cached (see [`PlanCache`]); it
    /// is replaced sooner once the tables have doubled since it opened.
    pub plan_lifetime: Duration,
    /// How often the sizes of the tables are read, to tell whether they doubled
    /// ([`growth`]).
    pub growth_check: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: None,
            plan_lifetime: PLAN_LIFETIME,
            growth_check: GROWTH_CHECK,
        }
    }
}

/// See [`PlanCache`].
pub const PLAN_LIFETIME: Duration = Duration::from_secs(60);

/// See [`growth`].
pub const GROWTH_CHECK: Duration = Duration::from_secs(2);

/// How a PostgreSQL session plans the statements it has prepared. Either way a connection is
/// replaced once a table or index has doubled since it opened ([`growth`], read every
/// [`PoolSettings::growth_check`]) or once it is [`PoolSettings::plan_lifetime`] old, and its
/// cached plans with it. A plan cached on tables that hold a few rows, never analyzed (a new
/// tenant's first sync, autovacuum off or not yet run), may read a tenant's rows by `tenant_id`
/// alone, since every index that starts with it looks as cheap as the next there; kept for the
/// connection's life such a plan read every user of the tenant for a `userName` lookup once they
/// were 10,000 (docs/benchmarks.md). Replaced connections bound that: the next plan is made on
/// the tables as they have grown.
#[derive(Debug, Clone, Copy)]
enum PlanCache {
    /// PostgreSQL's own choice (`plan_cache_mode = auto`): the first five runs of a statement
    /// planned for their parameters, then its generic plan wherever that is estimated no
    /// costlier. Planning was the largest part of PostgreSQL's work for a write's dozen key
    /// probes and inserts. Bulk statements plan each run (see [`SqlStore::prefer_hash_joins`]).
    Auto,
    /// One plan per statement, made on its first run (`force_generic_plan`), for the reads by a
    /// unique key of [`SqlStore::lookups`]: the unique key is the cheapest plan on anything
    /// larger than a few rows.
    Generic,
}

/// How many of `max` connections serve [`SqlStore::lookups`]: a fifth, 1 to 4, on PostgreSQL
/// with 4 or more connections; otherwise none (lookups share the one pool).
fn lookup_connections(dialect: Dialect, max: u32) -> u32 {
    match dialect {
        Dialect::Postgres if max >= 4 => (max / 5).clamp(1, 4),
        _ => 0,
    }
}

/// A pool of `max` connections whose sessions plan as `plans` says (PostgreSQL), replaced once
/// `growth` (PostgreSQL) says the tables outgrew them.
fn pool_options(
    dialect: Dialect,
    settings: &PoolSettings,
    max: u32,
    plans: PlanCache,
    growth: Option<Arc<growth::TableGrowth>>,
) -> AnyPoolOptions {
    let statement_timeout = settings.statement_timeout;
    let lifetime = (dialect == Dialect::Postgres).then_some(settings.plan_lifetime);
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(settings.acquire_timeout)
        // Connections opened for a burst close once idle this long, and with them what each
        // one holds: its statement cache and buffers, and on SQLite its page cache and worker
        // thread. Left open (sqlx keeps them 10 minutes) they kept resident memory at about
        // three times its idle value after a burst. sqlx's own reaper (`idle_timeout`,
        // `max_lifetime`) is off: in sqlx 0.8 a release racing an acquire can wrap its idle
        // count below zero, and the reaper then spins on a core for good (sqlx issue 3645,
        // seen here under concurrent writes). A stale connection is closed when it would be
        // handed out instead, and `close_idle_connections` hands them out.
        .idle_timeout(None)
        .max_lifetime(None)
        // sqlx pings every connection it hands out by default: a round trip per request.
        // Only one idle for a while is pinged (the server may have gone away meanwhile).
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            let growth = growth.clone();
            Box::pin(async move {
                if meta.idle_for >= IDLE_CONNECTION_LIFETIME || lifetime.is_some_and(|l| meta.age >= l) {
                    return Ok(false);
                }
                if let Some(growth) = growth {
                    if growth.claim_check() {
                        let sizes: Vec<(String, i64)> =
                            sqlx::query_as(growth::RELATION_PAGES).fetch_all(&mut *conn).await?;
                        growth.record(sizes);
                    }
                    if growth.outgrew(meta.age) {
                        return Ok(false);
                    }
                }
                if meta.idle_for >= PING_WHEN_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if dialect == Dialect::Sqlite {
                    // WAL lets readers proceed while one writer writes; NORMAL sync is
                    // durable across application crashes, which is what WAL mode needs.
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;").await?;
                } else {
                    // The statement timeout is per session, so it covers every statement, in
                    // a transaction or not.
                    let mut session = String::from(match plans {
                        PlanCache::Auto => "SET plan_cache_mode = auto",
                        PlanCache::Generic => "SET plan_cache_mode = force_generic_plan",
                    });
                    // No JIT: every statement here reads a few rows or a tenant's few thousand,
                    // and compiling took longer than running. A bulk write planned without
                    // nested loops (`prefer_hash_joins`) that still needs one is charged the
                    // planner's penalty for a disabled node, which passed `jit_above_cost`: 75 ms
                    // of compilation for a 1,000-member add that ran in 10 ms.
                    session.push_str("; SET jit = off");
                    if statement_timeout.is_some() {
                        session.push_str("; ");
                        session.push_str(&statement_timeout_sql(statement_timeout));
                    }
                    conn.execute(session.as_str()).await?;
                }
                Ok(())
            })
        })
}

/// `SET statement_timeout` for `limit` (0: none), in whole milliseconds.
fn statement_timeout_sql(limit: Option<Duration>) -> String {
    let ms = limit.map_or(0, |d| d.as_millis().clamp(1, i32::MAX as u128));
    format!("SET statement_timeout = {ms}")
}

/// A snapshot of a connection pool, see [`SqlStore::pool_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStatus {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    /// PostgreSQL: the connections reads by a unique key run on ([`SqlStore::lookups`]).
    lookups: Option<AnyPool>,
    dialect: Dialect,
    statement_timeout: Option<Duration>,
    /// PostgreSQL: what this process churned of the tables it vacuums itself ([`upkeep`]).
    churn: Arc<upkeep::Churn>,
    /// PostgreSQL: token records kept while their changes are followed ([`token_records`]).
    token_records: Option<Arc<token_records::TokenRecords>>,
}

impl SqlStore {
    /// Connect (creating a SQLite file if needed). Does not migrate: see [`SqlStore::migrate`].
    pub async fn connect(url: &DatabaseUrl, settings: &PoolSettings) -> Result<Self, DomainError> {
        sqlx::any::install_default_drivers();
        let dialect = url.dialect();
        let statement_timeout = settings.statement_timeout;
        let options: AnyConnectOptions = url.connect_url().parse().map_err(|e: sqlx::Error| {
            DomainError::Internal(format!("cannot parse database URL {url}"), Some(Box::new(e)))
        })?;
        let token_records =
            (dialect == Dialect::Postgres).then(|| Arc::new(token_records::TokenRecords::new(url.connect_url())));
        let lookups = lookup_connections(dialect, settings.max_connections);
        // One reading of the tables' growth for both pools.
        let growth = (dialect == Dialect::Postgres).then(|| Arc::new(growth::TableGrowth::new(settings.growth_check)));
        let pool = pool_options(dialect, settings, settings.max_connections - lookups, PlanCache::Auto, growth.clone())
            .connect_with(options.clone())
            .await
            .map_err(DomainError::from)?;
        let lookups = if lookups == 0 {
            None
        } else {
            Some(
                pool_options(dialect, settings, lookups, PlanCache::Generic, growth)
                    .connect_with(options)
                    .await
                    .map_err(DomainError::from)?,
            )
        };
        Ok(Self {
            pool,
            lookups,
            dialect,
            statement_timeout,
            churn: Arc::new(upkeep::Churn::due_at_start()),
            token_records,
        })
    }

    /// Follow changes to tokens and tenants (PostgreSQL), keeping token records in memory
    /// meanwhile ([`token_records`]), until the connection that listens is lost: the error says
    /// why, and the caller may call again. Without it, every authentication reads its token. On
    /// SQLite there is nothing to follow (`Ok` at once): a lookup there is no round trip, and the
    /// CLI writes the file from another process without telling anyone.
    pub async fn follow_token_changes(&self) -> Result<(), DomainError> {
        match &self.token_records {
            Some(records) => Err(records.follow_changes().await),
            None => Ok(()),
        }
    }

    /// Forget the token records kept, after this store changed a token or tenant: this process
    /// never authenticates with the record from before its own change.
    fn forget_token_records(&self) {
        if let Some(records) = &self.token_records {
            records.forget_all();
        }
    }

    /// Where reads by a unique key run: on PostgreSQL, connections that keep one generic plan
    /// per statement (see [`PlanCache`]); on SQLite, the one pool.
    fn lookups(&self) -> &AnyPool {
        self.lookups.as_ref().unwrap_or(&self.pool)
    }

    /// A connection for a read by a unique key: from [`Self::lookups`] while it has one to give
    /// or may open one, else an idle one of the main pool, else the next lookup one to come
    /// free. Every request's token is such a read: on the lookups' 2 of 10 connections alone,
    /// `userName eq` searches queued with a quarter of the machine idle (docs/benchmarks.md). A
    /// key read is one short statement, so a write waits little for a main connection lent to it.
    async fn lookup_connection(&self) -> Result<PoolConnection<Any>, sqlx::Error> {
        let lookups = self.lookups();
        let lookups_busy = lookups.num_idle() == 0 && lookups.size() >= lookups.options().get_max_connections();
        // Without a lookups' pool of its own (SQLite), `lookups` is the main pool, never both
        // busy and idle: it waits there.
        if lookups_busy && self.pool.num_idle() > 0 {
            return self.pool.acquire().await;
        }
        lookups.acquire().await
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn migrator(&self) -> &'static Migrator {
        match self.dialect {
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
        }
    }

    /// Apply pending migrations. Safe to run from several replicas at once on PostgreSQL
    /// (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<(), DomainError> {
        let failed =
            |e: sqlx::migrate::MigrateError| DomainError::Internal("migration failed".into(), Some(Box::new(e)));
        if self.dialect == Dialect::Sqlite || self.statement_timeout.is_none() {
            return self.migrator().run(&self.pool).await.map_err(failed);
        }
        // A migration may rewrite a large table: no statement time limit for it.
        let mut conn = self.pool.acquire().await?;
        conn.execute(statement_timeout_sql(None).as_str()).await?;
        let migrated = self.migrator().run(&mut *conn).await.map_err(failed);
        conn.execute(statement_timeout_sql(self.statement_timeout).as_str()).await?;
        migrated
    }

    pub async fn close(&self) {
        for pool in self.pools() {
            pool.close().await;
        }
    }

    /// Close the connections idle for [`IDLE_CONNECTION_LIFETIME`] or longer: taking a
    /// connection goes through the idle ones oldest first, closing the stale ones, until it meets
    /// a fresh one (or opens one, which then stays as the pool's one connection). For a task that
    /// runs every [`IDLE_CONNECTION_LIFETIME`].
    pub async fn close_idle_connections(&self) -> Result<(), DomainError> {
        for pool in self.pools() {
            if pool.num_idle() > 0 {
                drop(pool.acquire().await?);
            }
        }
        Ok(())
    }

    /// The main pool and, on PostgreSQL, the lookups' one.
    fn pools(&self) -> impl Iterator<Item = &AnyPool> {
        std::iter::once(&self.pool).chain(self.lookups.as_ref())
    }

    /// Each pool's connections now, by name: open, of which idle, and the most it may open
    /// (for metrics). Both pools always: SQLite's `lookups` has none.
    pub fn pool_status(&self) -> [(&'static str, PoolStatus); 2] {
        let status = |pool: &AnyPool| {
            let open = pool.size();
            let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(open);
            PoolStatus { open, idle, max: pool.options().get_max_connections() }
        };
        [("main", status(&self.pool)), ("lookups", self.lookups.as_ref().map(status).unwrap_or_default())]
    }

    /// A transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and writes later fails at
    /// once, without waiting, when another writer got in between.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, DomainError> {
        Ok(match self.dialect {
            Dialect::Postgres => self.pool.begin().await?,
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
        })
    }

    /// Before a statement over `n` ids in this transaction: with many, make PostgreSQL join by
    /// hashing. Right after a bulk load (an IdP's first sync) table statistics are stale, and the
    /// planner would pick nested loops that cost `n` × table size: a 10,000-member PATCH then took
    /// seconds instead of milliseconds. Small writes keep their index lookups. SQLite plans an
    /// `IN (subquery)` with a temporary index anyway.
    async fn prefer_hash_joins(&self, conn: &mut AnyConnection, n: usize) -> Result<(), DomainError> {
        if self.dialect == Dialect::Postgres && n > BULK {
            // A cached plan outlives a changed setting: the bulk run is planned for itself, and
            // no plan made without nested loops is cached for the small runs after it.
            conn.execute("SET LOCAL enable_nestloop = off; SET LOCAL plan_cache_mode = force_custom_plan").await?;
        }
        Ok(())
    }

    async fn tenant_id(&self, conn: &mut AnyConnection, name: &TenantName) -> Result<TenantId, DomainError> {
        let (id,): (String,) = Statement::new(self.dialect)
            .sql("SELECT id FROM tenants WHERE name = ")
            .bind(name.as_str())
            .query_as()
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(DomainError::NotFound(Entity::Tenant))?;
        Ok(TenantId(id))
    }
}

fn json_ids<S: AsRef<str>>(ids: &[S]) -> Arg {
    let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
    Arg::Text(serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into()))
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::PoolSettings;
    use crate::testing::{Backend, TestDb};

    #[tokio::test]
    async fn postgres_sessions_leave_planning_to_postgres_but_plan_lookups_once() {
        let Some(db) = TestDb::new(Backend::Postgres).await else { return };
        let store = db.store().await;
        // Every connection of each pool, not only the first one.
        let mut held = Vec::new();
        for (pool, expected, connections) in [(&store.pool, "auto", 3), (store.lookups(), "force_generic_plan", 2)] {
            for _ in 0..connections {
                let mut conn = pool.acquire().await.unwrap();
                let (mode,): (String,) = sqlx::query_as("SHOW plan_cache_mode").fetch_one(&mut *conn).await.unwrap();
                assert_eq!(mode, expected);
                let (jit,): (String,) = sqlx::query_as("SHOW jit").fetch_one(&mut *conn).await.unwrap();
                assert_eq!(jit, "off");
                held.push(conn);
            }
        }
        // Ten connections in all, as configured: two of them for lookups.
        let max: u32 = store.pool_status().iter().map(|(_, pool)| pool.max).sum();
        assert_eq!(max, PoolSettings::default().max_connections);
        assert_eq!(store.lookups().options().get_max_connections(), 2);
    }

    #[tokio::test]
    async fn postgres_key_reads_borrow_an_idle_main_connection_while_the_lookups_are_busy() {
        use crate::store::{TenantStore, TokenStore};
        let Some(db) = TestDb::new(Backend::Postgres).await else { return };
        let acquire_timeout = std::time::Duration::from_millis(500);
        let store = db.store_with(&PoolSettings { acquire_timeout, ..PoolSettings::default() }).await;
        store.create_tenant(&crate::TenantName::parse("acme").unwrap()).await.unwrap();
        let unknown = token::TokenId::parse("AAAAAAAAAAAAAAAA").unwrap();
        // A main connection idle, to be lent (a connection goes back to its pool in a task).
        drop(store.pool.acquire().await.unwrap());
        let idle_again = || async {
            for _ in 0..500 {
                if store.pool.num_idle() > 0 {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            panic!("no main connection went back to the pool");
        };
        idle_again().await;
        // Both lookup connections taken: the read runs on the main pool's, within the timeout.
        let held = [store.lookups().acquire().await.unwrap(), store.lookups().acquire().await.unwrap()];
        let main_in_use = || store.pool.size() - u32::try_from(store.pool.num_idle()).unwrap();
        let conn = store.lookup_connection().await.unwrap();
        assert_eq!(main_in_use(), 1, "a main connection was lent");
        drop(conn);
        idle_again().await;
        assert!(store.token_for_auth(&unknown).await.unwrap().is_none());
        // With no main connection idle either, it waits for a lookup one, as before.
        let mut main = Vec::new();
        while store.pool.num_idle() > 0 {
            main.push(store.pool.acquire().await.unwrap());
        }
        assert!(store.token_for_auth(&unknown).await.is_err(), "no connection came free within the timeout");
        drop(held);
        assert!(store.token_for_auth(&unknown).await.unwrap().is_none());
    }

    /// The backends of every connection `pool` hands out, all held at once.
    // A helper of tests, not a test: clippy's test exemption does not reach it.
    #[allow(clippy::unwrap_used)]
    async fn backends(pool: &sqlx::AnyPool) -> std::collections::BTreeSet<i32> {
        let mut held = Vec::new();
        let mut pids = std::collections::BTreeSet::new();
        for _ in 0..pool.options().get_max_connections() {
            let mut conn = pool.acquire().await.unwrap();
            let (pid,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()").fetch_one(&mut *conn).await.unwrap();
            pids.insert(pid);
            held.push(conn);
        }
        pids
    }

    #[tokio::test]
    async fn postgres_connections_of_both_pools_are_replaced_once_their_plans_are_old() {
        let Some(db) = TestDb::new(Backend::Postgres).await else { return };
        let lifetime = std::time::Duration::from_millis(300);
        let store = db.store_with(&PoolSettings { plan_lifetime: lifetime, ..PoolSettings::default() }).await;
        for pool in [&store.pool, store.lookups()] {
            let young = backends(pool).await;
            tokio::time::sleep(lifetime + std::time::Duration::from_millis(100)).await;
            let old = backends(pool).await;
            assert!(young.is_disjoint(&old), "an old connection was handed out again, with its plans");
        }
    }

    #[tokio::test]
    async fn postgres_connections_are_kept_while_the_tables_do_not_grow() {
        let growth_check = std::time::Duration::from_millis(100);
        let settings = PoolSettings { growth_check, ..PoolSettings::default() };
        let Some((_db, store, tenant)) = postgres_with_acme(&settings).await else { return };
        let first = [backends(&store.pool).await, backends(store.lookups()).await];
        // Several readings of the sizes later, with a write and a search in between.
        for name in ["a", "b", "c"] {
            tokio::time::sleep(growth_check + std::time::Duration::from_millis(50)).await;
            create_group(&store, &tenant.id, name).await;
            user_name_search_plan(&store, &tenant.id).await;
        }
        let later = [backends(&store.pool).await, backends(store.lookups()).await];
        assert_eq!(first, later, "connections were replaced although no table grew");
    }

    #[tokio::test]
    async fn postgres_token_records_count_only_while_their_changes_are_followed() {
        use token::{Scopes, SecretHash, TokenId};

        use crate::store::{NewToken, TokenOwner, TokenStore};
        let Some((db, store, tenant)) = postgres_with_acme(&PoolSettings::default()).await else { return };
        let id = TokenId::parse("0123456789abcdef").unwrap();
        let new = NewToken {
            id: id.clone(),
            hash: SecretHash::from_stored("unused".into()),
            scopes: Scopes::all(),
            name: None,
            expires_at: None,
        };
        store.add_token(TokenOwner::Tenant(&tenant.name), new).await.unwrap();
        let scopes = || async { store.token_for_auth(&id).await.unwrap().unwrap().scopes };
        // With the triggers off (`session_replication_role`), a change notifies nobody.
        let unnoticed = |scopes: &str| {
            format!("SET session_replication_role = replica; UPDATE tokens SET scopes = '{scopes}' WHERE id = '{id}'")
        };

        db.execute(&unnoticed("users:read")).await.unwrap();
        assert_eq!(scopes().await, Scopes::parse("users:read").unwrap(), "nothing is kept while nothing follows");
        let follower = tokio::spawn({
            let store = store.clone();
            async move { store.follow_token_changes().await }
        });
        let records = store.token_records.clone().unwrap();
        for _ in 0..500 {
            if records.generation().is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(records.generation().is_some(), "the store follows token changes");

        assert_eq!(scopes().await, Scopes::parse("users:read").unwrap());
        db.execute(&unnoticed("groups:read")).await.unwrap();
        assert_eq!(scopes().await, Scopes::parse("users:read").unwrap(), "the record is kept, not read again");
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                    WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .await
        .unwrap();
        assert!(follower.await.unwrap().is_err(), "the follower ends with its connection");
        assert_eq!(scopes().await, Scopes::parse("groups:read").unwrap(), "read again once nothing follows");
    }

    /// A store with `settings` on a fresh PostgreSQL database, and its one tenant `acme`; none
    /// without PostgreSQL.
    // Helpers of tests, not tests: clippy's test exemption does not reach them.
    #[allow(clippy::unwrap_used)]
    async fn postgres_with_acme(settings: &PoolSettings) -> Option<(TestDb, super::SqlStore, crate::Tenant)> {
        use crate::store::TenantStore;
        let db = TestDb::new(Backend::Postgres).await?;
        let store = db.store_with(settings).await;
        let tenant = store.create_tenant(&crate::TenantName::parse("acme").unwrap()).await.unwrap();
        Some((db, store, tenant))
    }

    /// `n` users of `tenant` written directly (ids `id1`…, userNames `u1`…), as a bulk load leaves
    /// them: not analyzed.
    #[allow(clippy::unwrap_used)]
    async fn insert_users(db: &TestDb, tenant: &crate::TenantId, n: u32) {
        db.execute(&format!(
            "INSERT INTO users (tenant_id, id, user_name, user_name_lower, active, data, version, created_at, updated_at) \
             SELECT '{}', 'id' || i, 'u' || i, 'u' || i, TRUE, '{{}}', 1, 0, 0 FROM generate_series(1, {n}) AS i",
            tenant.as_str()
        ))
        .await
        .unwrap();
    }

    /// `n` members of `group` written directly, with ids `{prefix}1`….
    #[allow(clippy::unwrap_used)]
    async fn insert_members(db: &TestDb, tenant: &crate::TenantId, group: &str, prefix: &str, n: u32) {
        db.execute(&format!(
            "INSERT INTO group_members (tenant_id, group_id, member_id, member_type) \
             SELECT '{}', '{group}', '{prefix}' || i, 'User' FROM generate_series(1, {n}) AS i",
            tenant.as_str()
        ))
        .await
        .unwrap();
    }

    /// A group of `tenant` named `name`, made through the store; its id.
    #[allow(clippy::unwrap_used)]
    async fn create_group(store: &super::SqlStore, tenant: &crate::TenantId, name: &str) -> String {
        use crate::store::ResourceStore;
        let body = serde_json::json!({"schemas": [proto::schema::GROUP], "displayName": name});
        store.create(tenant, proto::ResourceKind::Group, body).await.unwrap().id
    }

    /// The plan a `userName` search runs with on a lookup connection, and that connection's
    /// backend: the search is run on it, then its prepared statement is explained there.
    // A helper of tests, not a test: clippy's test exemption does not reach it.
    #[allow(clippy::unwrap_used)]
    async fn user_name_search_plan(store: &super::SqlStore, tenant: &crate::TenantId) -> (i32, Vec<String>) {
        let mut conn = store.lookups().acquire().await.unwrap();
        let query = crate::resource::Query {
            filter: Some(proto::filter::parse(r#"userName eq "u17""#).unwrap()),
            sort_by: None,
            descending: false,
            start_index: 1,
            count: 100,
            with_members: true,
        };
        let window = super::resources::Window { offset: 0, limit: 100 };
        store.search_kind(&mut conn, tenant, proto::ResourceKind::User, &query, false, window).await.unwrap();
        let (name, generic, custom): (String, i64, i64) = sqlx::query_as(
            "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%user_name_lower =%'",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert!(generic >= 1 && custom == 0, "{generic} generic and {custom} custom plans");
        let explain = format!("EXPLAIN EXECUTE {name}('{}', 'u17')", tenant.as_str());
        let plan: Vec<(String,)> = sqlx::query_as(&explain).fetch_all(&mut *conn).await.unwrap();
        let (backend,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()").fetch_one(&mut *conn).await.unwrap();
        (backend, plan.into_iter().map(|(line,)| line).collect())
    }

    #[tokio::test]
    async fn postgres_lookups_plan_again_once_a_new_tenants_tables_have_grown() {
        let growth_check = std::time::Duration::from_millis(300);
        let settings = PoolSettings { growth_check, ..PoolSettings::default() };
        let Some((db, store, tenant)) = postgres_with_acme(&settings).await else { return };
        // A new tenant's first search: its plan is made on empty tables (any index looks as
        // good as the next there).
        let (first, _) = user_name_search_plan(&store, &tenant.id).await;
        // Its first sync: 5,000 users, tables never analyzed.
        insert_users(&db, &tenant.id, 5000).await;
        // The search after the next reading of the sizes (by the connection it is handed).
        tokio::time::sleep(growth_check + std::time::Duration::from_millis(100)).await;
        let (second, plan) = user_name_search_plan(&store, &tenant.id).await;
        assert_ne!(first, second, "the lookup connection was not replaced");
        // Planned again on the table as it is now: by the key, not by the tenant's rows.
        let read = plan.windows(2).find(|w| w[0].contains("on users r")).unwrap_or_else(|| panic!("{plan:#?}"));
        assert!(read[1].contains("Index Cond: ((tenant_id = $1) AND (user_name_lower = $2))"), "{plan:#?}");
    }

    #[tokio::test]
    async fn postgres_plans_a_search_by_user_name_once_per_session_when_its_users_are_in_groups() {
        let Some((db, store, tenant)) = postgres_with_acme(&PoolSettings::default()).await else { return };
        insert_users(&db, &tenant.id, 2000).await;
        // Every user in four groups, and the tables analyzed (as autovacuum does).
        for name in ["a", "b", "c", "d"] {
            let group = create_group(&store, &tenant.id, name).await;
            insert_members(&db, &tenant.id, &group, "id", 2000).await;
        }
        db.execute("ANALYZE").await.unwrap();
        // A main connection (PostgreSQL's own choice of plans), as a borrowed key read gets.
        let mut conn = store.pool.acquire().await.unwrap();
        let window = super::resources::Window { offset: 0, limit: 100 };
        for i in 1..=8 {
            let query = crate::resource::Query {
                filter: Some(proto::filter::parse(&format!(r#"userName eq "u{i}""#)).unwrap()),
                sort_by: None,
                descending: false,
                start_index: 1,
                count: 100,
                with_members: true,
            };
            let (total, users) = store
                .search_kind(&mut conn, &tenant.id, proto::ResourceKind::User, &query, false, window)
                .await
                .unwrap();
            assert_eq!((total, users[0].groups.as_ref().map(Vec::len)), (1, Some(4)));
        }
        let (generic, custom): (i64, i64) = sqlx::query_as(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements \
             WHERE statement LIKE '%AS groups FROM users r WHERE%' AND statement NOT LIKE '%pg_prepared_statements%'",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        // PostgreSQL's five custom plans, then the generic one kept: not a plan for every run.
        assert_eq!((generic, custom), (3, 5));
    }

    #[tokio::test]
    async fn postgres_reads_the_groups_of_a_pages_users_and_not_of_those_its_offset_skips() {
        let Some((db, store, tenant)) = postgres_with_acme(&PoolSettings::default()).await else { return };
        let group = create_group(&store, &tenant.id, "Everyone").await;
        insert_users(&db, &tenant.id, 300).await;
        insert_members(&db, &tenant.id, &group, "id", 300).await;
        // The fifth page of 50 (`startIndex=201`), as a list of the users with their groups.
        let query = crate::resource::Query {
            filter: None,
            sort_by: None,
            descending: false,
            start_index: 201,
            count: 50,
            with_members: true,
        };
        let mut conn = store.pool.acquire().await.unwrap();
        let window = super::resources::Window { offset: 200, limit: 50 };
        let (total, users) =
            store.search_kind(&mut conn, &tenant.id, proto::ResourceKind::User, &query, false, window).await.unwrap();
        assert_eq!((total, users.len()), (300, 50));
        assert!(users.iter().all(|u| u.groups.as_ref().is_some_and(|g| g.len() == 1)));
        // The statement run again, explained with what it did: the tenant (for the total and
        // for the page), the page's size and its offset.
        let (name,): (String,) = sqlx::query_as(
            "SELECT name FROM pg_prepared_statements \
             WHERE statement LIKE '%AS groups%OFFSET%' AND statement NOT LIKE '%pg_prepared_statements%'",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        let t = tenant.id.as_str();
        let explain = format!("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE {name}('{t}', '{t}', 50, 200)");
        let rows: Vec<(String,)> = sqlx::query_as(&explain).fetch_all(&mut *conn).await.unwrap();
        let plan: Vec<&str> = rows.iter().map(|(line,)| line.as_str()).collect();
        let members =
            plan.iter().find(|line| line.contains("on group_members m")).unwrap_or_else(|| panic!("{plan:#?}"));
        assert!(members.contains("loops=50)"), "{plan:#?}");
    }

    #[tokio::test]
    async fn postgres_adds_many_members_by_key_to_a_group_too_new_for_the_statistics() {
        let Some((db, store, tenant)) = postgres_with_acme(&PoolSettings::default()).await else { return };
        let (old, new) = (create_group(&store, &tenant.id, "Old").await, create_group(&store, &tenant.id, "New").await);
        // Statistics made while only the old group had members; then 2,500 join the new one.
        insert_users(&db, &tenant.id, 3000).await;
        insert_members(&db, &tenant.id, &old, "id", 3000).await;
        db.execute("ANALYZE").await.unwrap();
        insert_members(&db, &tenant.id, &new, "id", 2500).await;
        // 500 more: beyond the few that take placeholders, a JSON parameter estimated at 100 rows.
        let added: Vec<serde_json::Value> =
            (2501..=3000).map(|i| serde_json::json!({"value": format!("id{i}")})).collect();
        let members = super::members::take_members(&mut serde_json::json!({"members": added}));
        let explain = super::Statement::new(super::Dialect::Postgres).sql("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) ");
        let insert = super::members::insert_members(explain, &tenant.id, &new, &members)
            .unwrap()
            .sql(" WHERE gm.member_id IS NULL ON CONFLICT (tenant_id, group_id, member_id) DO NOTHING");
        let mut tx = store.pool.begin().await.unwrap();
        let rows: Vec<(String,)> = insert.query_as().fetch_all(&mut *tx).await.unwrap();
        tx.rollback().await.unwrap();
        let plan: Vec<&str> = rows.iter().map(|(line,)| line.as_str()).collect();
        assert!(plan.iter().any(|line| line.contains("Tuples Inserted: 500")), "{plan:#?}");
        // Every read of the member table and of the users names the id: a probe, not the group's
        // rows (or the tenant's users) read for each id.
        let read = |table: &str, key: &str| {
            let reads: Vec<&[&str]> = plan.windows(2).filter(|w| w[0].contains(table)).collect();
            reads.len() == 1 && reads[0][1].contains("Index Cond") && reads[0][1].contains(key)
        };
        assert!(read("on group_members gm", "AND (member_id = "), "{plan:#?}");
        assert!(read("on users u", "AND (id = "), "{plan:#?}");
    }

    #[tokio::test]
    async fn postgres_checks_a_few_new_members_by_key_in_a_large_group_without_statistics() {
        let Some((db, store, tenant)) = postgres_with_acme(&PoolSettings::default()).await else { return };
        let group = create_group(&store, &tenant.id, "Everyone").await;
        // 5,000 members, and tables never analyzed (as on a new tenant's first sync).
        insert_members(&db, &tenant.id, &group, "m", 5000).await;
        for lock_users in [true, false] {
            let explain = super::Statement::new(super::Dialect::Postgres).sql("EXPLAIN ");
            let classify = super::members::classify_members(explain, &tenant.id, &group, &["m17", "new"], lock_users);
            let rows: Vec<(String,)> = classify.query_as().fetch_all(&store.pool).await.unwrap();
            let plan: Vec<&str> = rows.iter().map(|(line,)| line.as_str()).collect();
            // Every read of the member table names the member: a probe, not the group's rows.
            let reads: Vec<&[&str]> = plan.windows(2).filter(|w| w[0].contains("on group_members")).collect();
            assert_eq!(reads.len(), 2, "{plan:#?}");
            assert!(reads.iter().all(|w| w[1].contains("Index Cond") && w[1].contains("member_id =")), "{plan:#?}");
        }
    }

    #[tokio::test]
    async fn postgres_looks_up_the_name_of_each_of_a_users_groups_once() {
        let Some(db) = TestDb::new(Backend::Postgres).await else { return };
        let store = db.store().await;
        let groups = format!(
            "EXPLAIN SELECT {} FROM users r WHERE r.tenant_id = 't' AND r.id = 'u'",
            super::Dialect::Postgres.user_groups("r")
        );
        let rows: Vec<(String,)> = sqlx::query_as(&groups).fetch_all(&store.pool).await.unwrap();
        let plan: Vec<&str> = rows.iter().map(|(line,)| line.as_str()).collect();
        // One read of `groups` per membership, not one for the array and one for its order.
        assert_eq!(plan.iter().filter(|line| line.contains(" on groups ")).count(), 1, "{plan:#?}");
        assert!(plan.iter().any(|line| line.contains("on group_members m")), "{plan:#?}");
    }

    #[tokio::test]
    async fn sqlite_reads_a_users_groups_through_the_member_index() {
        let Some(db) = TestDb::new(Backend::Sqlite).await else { return };
        let store = db.store().await;
        for groups in [
            format!(
                "SELECT {} FROM users r WHERE r.tenant_id = 't' AND r.id = 'u'",
                super::Dialect::Sqlite.user_groups("r")
            ),
            format!(
                "SELECT m.group_id FROM {} WHERE m.tenant_id = 't' AND m.member_id IN ('u')",
                super::Dialect::Sqlite.members_by_member()
            ),
        ] {
            let rows: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(&format!("EXPLAIN QUERY PLAN {groups}")).fetch_all(&store.pool).await.unwrap();
            let plan: Vec<&str> = rows.iter().map(|(_, _, _, detail)| detail.as_str()).collect();
            assert!(
                plan.iter().any(|step| step.contains("SEARCH m USING INDEX group_members_by_member")),
                "{groups}: {plan:?}"
            );
        }
    }
}
