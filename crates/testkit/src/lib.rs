//! A fresh, migrated database for each test, on the backend the test run is for.
//!
//! `MYPAY_TEST_DATABASE_URL` chooses the backend: unset or `sqlite` gives each test its own
//! SQLite file in a temporary directory; a `postgres://` URL names a server on which each test
//! creates its own database, dropped when the test ends, so that runs leave nothing behind.
//! [`test_redis_url`] names the Redis for the tests that need one, [`test_nats_url`] the NATS
//! server (with JetStream).

use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::{Connection, Executor, PgConnection};
use storage::{Backend, DatabaseUrl, Db};

/// The environment variable that selects the test backend.
pub const TEST_DATABASE_ENV: &str = "MYPAY_TEST_DATABASE_URL";

/// The environment variable that names the Redis the item lock tests use.
pub const TEST_REDIS_ENV: &str = "MYPAY_TEST_REDIS_URL";

/// The Redis tests run against: the one `MYPAY_TEST_REDIS_URL` names, the local
/// `redis://127.0.0.1:6379` when it is unset, and `None` (skip) only when it is set and empty.
/// A Redis that cannot be reached is the test's failure, never a skip, so that a CI run without
/// its Redis cannot pass by testing nothing.
pub fn test_redis_url() -> Option<String> {
    match std::env::var(TEST_REDIS_ENV) {
        Ok(url) if url.is_empty() => None,
        Ok(url) => Some(url),
        Err(_) => Some("redis://127.0.0.1:6379".to_owned()),
    }
}

/// The environment variable that names the NATS server (with JetStream) the event stream
/// tests use.
pub const TEST_NATS_ENV: &str = "MYPAY_TEST_NATS_URL";

/// The NATS server tests run against: the one `MYPAY_TEST_NATS_URL` names, the local
/// `nats://127.0.0.1:4222` when it is unset, and `None` (skip) only when it is set and empty.
/// A server that cannot be reached is the test's failure, never a skip, as with Redis.
pub fn test_nats_url() -> Option<String> {
    match std::env::var(TEST_NATS_ENV) {
        Ok(url) if url.is_empty() => None,
        Ok(url) => Some(url),
        Err(_) => Some("nats://127.0.0.1:4222".to_owned()),
    }
}

/// A database that exists for the lifetime of one test.
pub struct TestDb {
    pub db: Db,
    pub url: DatabaseUrl,
    cleanup: Cleanup,
    dropped: AtomicBool,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    /// Creates and migrates a database with a pool of `pool_size` connections.
    pub async fn new(pool_size: u32) -> TestDb {
        let (url, cleanup) = create_database().await;
        let db = Db::connect(&url, pool_size)
            .await
            .expect("connect to the test database");
        db.migrate().await.expect("migrate the test database");
        TestDb {
            db,
            url,
            cleanup,
            dropped: AtomicBool::new(false),
        }
    }

    pub fn backend(&self) -> Backend {
        self.db.backend()
    }
}

/// Creates an empty database and says how to remove it.
async fn create_database() -> (DatabaseUrl, Cleanup) {
    let name = format!(
        "mypay_test_{}",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    match std::env::var(TEST_DATABASE_ENV) {
        Ok(base) if base.starts_with("postgres") => {
            let mut admin = PgConnection::connect(&base)
                .await
                .expect("connect to PostgreSQL");
            admin
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create the test database");
            let url = replace_database(&base, &name);
            (
                DatabaseUrl::parse(&url).expect("valid PostgreSQL URL"),
                Cleanup::Postgres {
                    admin_url: base,
                    name,
                },
            )
        }
        _ => {
            let dir = tempfile::tempdir().expect("create a temporary directory");
            let url = format!("sqlite://{}/{name}.db", dir.path().display());
            (
                DatabaseUrl::parse(&url).expect("valid SQLite URL"),
                Cleanup::Sqlite(dir),
            )
        }
    }
}

/// Swaps the database name in a PostgreSQL URL, keeping credentials and options.
fn replace_database(base: &str, name: &str) -> String {
    let (without_query, query) = match base.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (base, None),
    };
    let authority_start = without_query.find("://").map_or(0, |i| i + 3);
    let path_start = without_query[authority_start..]
        .find('/')
        .map_or(without_query.len(), |i| authority_start + i);
    let mut url = format!("{}/{name}", &without_query[..path_start]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.dropped.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            // Drop runs outside any async context we may block, so the database is dropped
            // from a short-lived thread with its own runtime. FORCE ends the connections of the
            // test's pool, which belong to the test's runtime and cannot be closed from here
            // (PostgreSQL 13+).
            let (admin_url, name) = (admin_url.clone(), name.clone());
            let dropper = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("build a runtime to drop the test database");
                runtime.block_on(async move {
                    if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = admin.execute(sql.as_str()).await;
                    }
                });
            });
            let _ = dropper.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced_in_place() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://h", "x"), "postgres://h/x");
    }
}
