//! A fresh, migrated database for each test, on the backend the test run is for.
//!
//! `MYPAY_TEST_DATABASE_URL` chooses the backend: unset or `sqlite` gives each test its own
//! SQLite file in a temporary directory; a `postgres://` URL names a server on which each test
//! creates its own database, dropped when the test ends, so that runs leave nothing behind.
//! [`test_redis_url`] names the Redis for the tests that need one, [`test_nats_url`] the NATS
//! server (with JetStream).
//!
//! With `MYPAY_TEST_ARTIFACTS=DIR` set, the tests also leave their logs and databases in `DIR`
//! for the leak scan: see [`artifacts`].

pub mod artifacts;

use std::path::PathBuf;
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
    /// The test that created the database, to name its dump.
    test: String,
}

enum Cleanup {
    Sqlite {
        #[allow(dead_code)]
        dir: tempfile::TempDir,
        file: PathBuf,
        name: String,
    },
    Postgres {
        admin_url: String,
        name: String,
    },
}

impl TestDb {
    /// Creates and migrates a database with a pool of `pool_size` connections.
    pub async fn new(pool_size: u32) -> TestDb {
        artifacts::install_logging();
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
            test: artifacts::test_name(),
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
            let file = dir.path().join(format!("{name}.db"));
            let url = format!("sqlite://{}", file.display());
            (
                DatabaseUrl::parse(&url).expect("valid SQLite URL"),
                Cleanup::Sqlite { dir, file, name },
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
        // Drop runs outside any async context we may block, so the work is done on a
        // short-lived thread with its own runtime.
        let on_own_runtime =
            |work: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>| {
                let worker = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("build a runtime to clean up the test database");
                    runtime.block_on(work);
                });
                let _ = worker.join();
            };
        match &self.cleanup {
            Cleanup::Sqlite { file, name, .. } => {
                if let Some(dump) = artifacts::dump_path(&self.test, name, "sqlite") {
                    on_own_runtime(Box::pin(keep_sqlite(file.clone(), dump)));
                }
            }
            Cleanup::Postgres { admin_url, name } => {
                let dump = artifacts::dump_path(&self.test, name, "sql");
                let url = self.url.expose_secret();
                let (admin_url, name) = (admin_url.clone(), name.clone());
                on_own_runtime(Box::pin(async move {
                    if let Some(dump) = dump {
                        keep_postgres(&url, &dump).await;
                    }
                    // FORCE ends the connections of the test's pool, which belong to the
                    // test's runtime and cannot be closed from here (PostgreSQL 13+).
                    if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = admin.execute(sql.as_str()).await;
                    }
                }));
            }
        }
    }
}

/// Copies a SQLite test database, consistently while the test's pool and tasks may still be
/// writing, with `VACUUM INTO` (free pages are not copied).
async fn keep_sqlite(file: PathBuf, dump: PathBuf) {
    use sqlx::sqlite::SqliteConnectOptions;
    let options = SqliteConnectOptions::new()
        .filename(&file)
        .busy_timeout(std::time::Duration::from_secs(10));
    let result = async {
        let mut connection = sqlx::SqliteConnection::connect_with(&options).await?;
        sqlx::query("VACUUM INTO ?")
            .bind(dump.to_string_lossy().into_owned())
            .execute(&mut connection)
            .await?;
        connection.close().await
    }
    .await;
    if let Err(error) = result {
        eprintln!("testkit: could not keep {}: {error}", file.display());
    }
}

/// Dumps a PostgreSQL test database to `dump`: with `pg_dump` when it is on the PATH, else as
/// one JSON line per row (`{"table": …, "row": {…}}`).
async fn keep_postgres(url: &str, dump: &std::path::Path) {
    let pg_dump = tokio::process::Command::new("pg_dump")
        .args([
            "--no-owner",
            "--no-privileges",
            "--lock-wait-timeout=10000",
            "--file",
        ])
        .arg(dump)
        .arg("--dbname")
        .arg(url)
        .output()
        .await;
    match pg_dump {
        Ok(output) if output.status.success() => return,
        Ok(output) => eprintln!(
            "testkit: pg_dump failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => eprintln!("testkit: cannot run pg_dump: {error}"),
    }
    if let Err(error) = dump_as_json(url, &dump.with_extension("jsonl")).await {
        eprintln!("testkit: could not dump {}: {error}", dump.display());
    }
}

async fn dump_as_json(url: &str, path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write;
    let mut connection = PgConnection::connect(url).await?;
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(&mut connection)
    .await?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for (table,) in tables {
        let sql = format!(
            "SELECT json_build_object('table', $1::text, 'row', row_to_json(t))::text FROM \"{}\" t",
            table.replace('"', "\"\"")
        );
        let rows: Vec<(String,)> = sqlx::query_as(&sql)
            .bind(&table)
            .fetch_all(&mut connection)
            .await?;
        for (line,) in rows {
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    Ok(())
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
