//! Throwaway databases for tests: a SQLite file in a fresh directory, or a fresh PostgreSQL
//! database on the server named by `SCIMGATE_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`), dropped when the guard goes.
//!
//! When PostgreSQL is unreachable, [`TestDb::new`] returns `None` after saying so on stderr, so
//! PostgreSQL tests skip on a bare machine; with `CI=true` it panics instead, so CI cannot pass
//! without having run them.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use sqlx::Connection;

use crate::sql::PoolSettings;
use crate::{DatabaseUrl, SqlStore};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

pub fn postgres_admin_url() -> String {
    std::env::var("SCIMGATE_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A database that exists for the life of this value.
pub struct TestDb {
    pub url: DatabaseUrl,
    cleanup: Cleanup,
}

enum Cleanup {
    Directory(PathBuf),
    Database { admin: String, name: String },
}

impl TestDb {
    /// A fresh, empty database; `None` when the backend is unavailable outside CI.
    pub async fn new(backend: Backend) -> Option<Self> {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("scimgate-test-{unique}"));
                std::fs::create_dir_all(&dir).expect("create temp dir");
                let url = format!("sqlite://{}", dir.join("scimgate.db").display()).parse().expect("sqlite url");
                Some(Self { url, cleanup: Cleanup::Directory(dir) })
            }
            Backend::Postgres => {
                sqlx::any::install_default_drivers();
                let admin = postgres_admin_url();
                let mut conn = match sqlx::AnyConnection::connect(&admin).await {
                    Ok(conn) => conn,
                    Err(e) if !in_ci() => {
                        eprintln!("SKIPPED: PostgreSQL not reachable at {admin} ({e}); set SCIMGATE_TEST_POSTGRES_URL or start PostgreSQL");
                        return None;
                    }
                    Err(e) => panic!("PostgreSQL is required when CI=true but {admin} is unreachable: {e}"),
                };
                let name = format!("scimgate_test_{unique}");
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
                let _ = conn.close().await;
                let url: DatabaseUrl = admin.parse().expect("postgres url");
                Some(Self { url: url.with_database(&name), cleanup: Cleanup::Database { admin, name } })
            }
        }
    }

    /// Run `sql` on this database outside any store: for tests that need data in bulk faster
    /// than the API takes it, or that look at what the database is doing.
    pub async fn execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let mut conn = sqlx::AnyConnection::connect(&self.url.connect_url()).await?;
        let done = sqlx::raw_sql(sql).execute(&mut conn).await?;
        let _ = conn.close().await;
        Ok(done.rows_affected())
    }

    /// The first column of the first row of `sql`, as an integer.
    pub async fn scalar(&self, sql: &str) -> Result<i64, sqlx::Error> {
        use sqlx::Row;
        let mut conn = sqlx::AnyConnection::connect(&self.url.connect_url()).await?;
        let value = sqlx::query(sql).fetch_one(&mut conn).await?.try_get(0)?;
        let _ = conn.close().await;
        Ok(value)
    }

    /// A migrated store on this database.
    pub async fn store(&self) -> SqlStore {
        self.store_with(&PoolSettings::default()).await
    }

    /// A migrated store on this database, connected with `settings`.
    pub async fn store_with(&self, settings: &PoolSettings) -> SqlStore {
        let store = SqlStore::connect(&self.url, settings).await.expect("connect");
        store.migrate().await.expect("migrate");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Directory(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Database { admin, name } => {
                let (admin, name) = (admin.clone(), name.clone());
                // Drop runs inside the test's runtime, which cannot be blocked on: use a thread
                // with a runtime of its own.
                let handle = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                    runtime.block_on(async {
                        if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin).await {
                            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut conn)
                                .await;
                        }
                    });
                });
                let _ = handle.join();
            }
        }
    }
}

/// The one way to run a test on both backends: expand each `async fn name(fixture)` into a test
/// in module `sqlite` and one in module `postgres`. The fixture is what `setup(backend)` (an async
/// fn returning `Option`, `None` to skip) gives; `store` instead gives `&impl Store` on a fresh
/// database. A `group:` puts the two modules in a module of that name, for a second setup in
/// one file.
///
/// ```ignore
/// both_backends!(a_case, another_case);                    // crate::helpers::spawn_app
/// both_backends!(store: a_store_case);                     // &impl Store
/// both_backends!(federated: app_with_floor => a_case);     // a setup of the file's own
/// ```
// `crate` on purpose in the last arm: the HTTP suite's `helpers::spawn_app` of the calling crate.
#[allow(clippy::crate_in_macro_def)]
#[macro_export]
macro_rules! both_backends {
    (store: $($name:ident),* $(,)?) => {
        $crate::both_backends!(@both by_ref $crate::testing::store_fixture => $($name),*);
    };
    ($group:ident: $setup:path => $($name:ident),* $(,)?) => {
        mod $group {
            #[allow(unused_imports)]
            use super::*;
            $crate::both_backends!(@both by_value $setup => $($name),*);
        }
    };
    ($setup:path => $($name:ident),* $(,)?) => {
        $crate::both_backends!(@both by_value $setup => $($name),*);
    };
    (@both $pass:ident $setup:path => $($name:ident),*) => {
        $crate::both_backends!(@backend sqlite Sqlite $pass $setup => $($name),*);
        $crate::both_backends!(@backend postgres Postgres $pass $setup => $($name),*);
    };
    (@backend $module:ident $backend:ident $pass:ident $setup:path => $($name:ident),*) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(fixture) = $setup($crate::testing::Backend::$backend).await {
                        $crate::both_backends!(@call $pass super::$name, fixture);
                    }
                }
            )*
        }
    };
    (@call by_value $test:path, $fixture:ident) => {
        $test($fixture).await
    };
    (@call by_ref $test:path, $fixture:ident) => {
        $test(&$fixture.store).await
    };
    ($($name:ident),* $(,)?) => {
        $crate::both_backends!(@both by_value crate::helpers::spawn_app => $($name),*);
    };
}

/// A store on a fresh database, and the guard that drops the database after the test.
pub struct StoreFixture {
    pub store: SqlStore,
    _db: TestDb,
}

/// The fixture of `both_backends!(store: ...)`.
pub async fn store_fixture(backend: Backend) -> Option<StoreFixture> {
    let db = TestDb::new(backend).await?;
    Some(StoreFixture { store: db.store().await, _db: db })
}
