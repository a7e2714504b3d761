//! The harness of the store's tests (also used by the billing crate's): every test body runs on a fresh SQLite
//! file and on a fresh PostgreSQL database.
//!
//! PostgreSQL: databases `autosub_t_<pid>_<n>` are created through
//! `postgres://postgres@127.0.0.1:5432/postgres` (or `$AUTOSUB_TEST_PG_URL`) and dropped
//! afterwards. An unreachable server fails the Postgres tests; they are never skipped.
#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};

use autosub_store::{mask_url, Store};
use sqlx::{AnyConnection, AssertSqlSafe, Connection};

// ---------------------------------------------------------------------------- harness

#[derive(Clone, Copy)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A fresh, empty database and what it takes to remove it.
pub struct TestDb {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Pg { admin_url: String, name: String },
}

fn pg_base_url() -> String {
    std::env::var("AUTOSUB_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

static PG_COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    pub async fn new(kind: Db) -> TestDb {
        match kind {
            Db::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("autosub.db").display());
                TestDb {
                    url,
                    cleanup: Cleanup::Dir(dir),
                }
            }
            Db::Postgres => {
                sqlx::any::install_default_drivers();
                let admin_url = pg_base_url();
                let mut admin = AnyConnection::connect(&admin_url)
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                        "PostgreSQL is required for these tests and is unreachable at {}: {e}\n\
                         start it (pg_ctlcluster --skip-systemctl-redirect 15 main start) or \
                         point AUTOSUB_TEST_PG_URL at a server",
                        mask_url(&admin_url)
                    )
                    });
                let name = format!(
                    "autosub_t_{}_{}",
                    std::process::id(),
                    PG_COUNTER.fetch_add(1, Ordering::Relaxed)
                );
                sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                    .execute(&mut admin)
                    .await
                    .expect("drop stale test database");
                sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .expect("create test database");
                let _ = admin.close().await;
                let (server, query) = match admin_url.split_once('?') {
                    Some((server, query)) => (server, format!("?{query}")),
                    None => (admin_url.as_str(), String::new()),
                };
                let server = &server[..server.rfind('/').expect("database URL has a path")];
                TestDb {
                    url: format!("{server}/{name}{query}"),
                    cleanup: Cleanup::Pg { admin_url, name },
                }
            }
        }
    }

    pub async fn remove(self) {
        if let Cleanup::Pg { admin_url, name } = self.cleanup {
            let mut admin = AnyConnection::connect(&admin_url)
                .await
                .expect("reconnect to drop the test database");
            sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await
            .expect("drop test database");
            let _ = admin.close().await;
        }
    }
}

/// Runs `body` against a fresh database of `kind`, dropping the database afterwards even when
/// the body panics (it runs as a separate task so the panic can be caught and re-raised).
pub async fn run<F, Fut>(kind: Db, body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let db = TestDb::new(kind).await;
    let store = Store::connect(&db.url).await.expect("connect");
    let outcome = tokio::spawn(body(store.clone())).await;
    store.close().await;
    db.remove().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test task failed: {e}"),
        }
    }
}

/// `name::sqlite` and `name::postgres` tests running the body `async fn name(Store)`.
macro_rules! on_both {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                $crate::common::run($crate::common::Db::Sqlite, super::$name).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                $crate::common::run($crate::common::Db::Postgres, super::$name).await
            }
        }
    )+};
}
