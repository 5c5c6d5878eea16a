//! Storage: one connection pool over SQLite or PostgreSQL, chosen by the URL scheme.
//!
//! Every query in mypay is written once, with `$N` placeholders that both backends accept. The
//! few places where the two dialects differ (row locks, how a write transaction begins, how a
//! connection is tuned) live in [`dialect`] and nowhere else.

pub mod dialect;
pub mod sql;
mod url;

pub use dialect::{Backend, JsonType};
pub use sql::SqlBuilder;
pub use url::{DatabaseUrl, DatabaseUrlError};

use std::time::Duration;

use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::{Any, AnyPool, Transaction};

/// Embedded schema migrations, applied at start and by `mypay migrate`.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Pool sizes are bounded so that a misconfiguration cannot exhaust the database server.
pub const POOL_SIZE_MAX: u32 = 256;

/// A pool of connections to one database, and which dialect it speaks.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    url: DatabaseUrl,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .field("url", &self.url)
            .finish()
    }
}

/// Errors from opening or migrating a database.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Db {
    /// Opens a pool of at most `pool_size` connections. For SQLite the data directory is
    /// created when missing, and each connection is set to WAL with `synchronous=FULL`, so that
    /// an acknowledged commit survives a power cut.
    pub async fn connect(url: &DatabaseUrl, pool_size: u32) -> Result<Db, StorageError> {
        install_default_drivers();
        let backend = url.backend();
        if let Some(dir) = url.sqlite_parent_dir() {
            std::fs::create_dir_all(&dir).map_err(|source| StorageError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(pool_size.clamp(1, POOL_SIZE_MAX))
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| Box::pin(dialect::tune_connection(backend, conn)))
            .connect(&url.connect_string())
            .await?;
        Ok(Db {
            pool,
            backend,
            url: url.clone(),
        })
    }

    /// Applies every pending migration. Safe to run from several replicas at once: PostgreSQL
    /// takes an advisory lock, SQLite has a single writer.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), because a deferred transaction that reads first cannot upgrade to a
    /// writer once another connection has committed, and would fail instead of waiting.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        self.pool
            .begin_with(self.backend.begin_write_statement())
            .await
    }

    /// Begins a read-only transaction in which every query sees the same snapshot.
    pub async fn begin_snapshot(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        self.pool
            .begin_with(self.backend.begin_snapshot_statement())
            .await
    }

    /// Answers whether the database accepts a trivial query; used by `/readyz`.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Closes every connection, waiting for the ones in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
