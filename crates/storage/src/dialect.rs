//! The only place that knows how SQLite and PostgreSQL differ.

use sqlx::{AnyConnection, Executor};

/// Which database engine a pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The type of a column read from JSON rows by [`Backend::json_rows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    Text,
    BigInt,
}

impl JsonType {
    fn postgres_name(self) -> &'static str {
        match self {
            JsonType::Text => "text",
            JsonType::BigInt => "bigint",
        }
    }
}

impl Backend {
    /// The engine a connection speaks, for code that is handed a transaction rather than a
    /// [`crate::Db`] (a caller's transaction that an event is recorded in).
    pub fn of_connection(conn: &AnyConnection) -> Backend {
        match conn.backend_name() {
            "PostgreSQL" => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    /// The row-lock suffix for a `SELECT` that reads rows it is about to update. SQLite has a
    /// single writer, so the transaction's write lock already excludes everyone else.
    pub fn for_update(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    /// The suffix that lets several workers claim different rows of one queue at once.
    pub fn for_update_skip_locked(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// How a transaction that will write begins.
    pub fn begin_write_statement(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// How a read-only transaction that must see one consistent snapshot begins. SQLite's
    /// deferred transaction pins its snapshot at the first read.
    pub fn begin_snapshot_statement(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN",
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }

    /// A FROM-clause item, aliased `e`, that turns one bound JSON array of objects into rows
    /// with the named, typed columns (`e.name`). Passing a batch as one JSON parameter keeps
    /// the statement text constant, so it is prepared once instead of compiled anew for every
    /// batch size. PostgreSQL expands the array with `json_to_recordset`, which parses the
    /// text once into typed columns, several times cheaper than reading each field of
    /// `jsonb_array_elements` with `->>`; SQLite's `->>` already yields typed values.
    pub fn json_rows(
        self,
        builder: &mut crate::SqlBuilder,
        json: String,
        columns: &[(&str, JsonType)],
    ) {
        match self {
            Backend::Sqlite => {
                let fields: Vec<String> = columns
                    .iter()
                    .map(|(name, _)| format!("value ->> '{name}' AS {name}"))
                    .collect();
                builder
                    .push("(SELECT ")
                    .push(&fields.join(", "))
                    .push(" FROM json_each(")
                    .bind(json)
                    .push(")) AS e");
            }
            Backend::Postgres => {
                let fields: Vec<String> = columns
                    .iter()
                    .map(|(name, kind)| format!("{name} {}", kind.postgres_name()))
                    .collect();
                builder
                    .push("json_to_recordset(CAST(")
                    .bind(json)
                    .push(" AS json)) AS e(")
                    .push(&fields.join(", "))
                    .push(")");
            }
        }
    }

    /// Whether several connections may write at the same time. SQLite serialises writers, so
    /// running more than one batch writer against it would only add lock waits.
    pub fn supports_concurrent_writers(self) -> bool {
        match self {
            Backend::Sqlite => false,
            Backend::Postgres => true,
        }
    }

    /// The most bind parameters one statement may carry, with a margin below the engine's limit
    /// (SQLite 32,766; PostgreSQL 65,535).
    pub fn max_bind_parameters(self) -> usize {
        match self {
            Backend::Sqlite => 32_000,
            Backend::Postgres => 65_000,
        }
    }

    /// A short name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Whether an error is a unique-constraint violation (a primary key or a unique index), so
    /// that a caller can answer "already taken" instead of failing.
    pub fn is_unique_violation(self, error: &sqlx::Error) -> bool {
        let Some(db) = error.as_database_error() else {
            return false;
        };
        let code = db.code();
        match self {
            Backend::Postgres => code.as_deref() == Some("23505"),
            Backend::Sqlite => matches!(code.as_deref(), Some("2067" | "1555")),
        }
    }

    /// Whether an error is a transient conflict after which the whole transaction may simply
    /// be run again: a serialization failure, a deadlock, a unique key taken by a concurrent
    /// writer, or SQLite's busy signal.
    pub fn is_retryable(self, error: &sqlx::Error) -> bool {
        let Some(db) = error.as_database_error() else {
            return false;
        };
        let code = db.code();
        match self {
            Backend::Postgres => matches!(code.as_deref(), Some("40001" | "40P01" | "23505")),
            Backend::Sqlite => matches!(code.as_deref(), Some("5" | "6" | "517" | "2067" | "1555")),
        }
    }
}

/// Tunes a fresh connection. SQLite: write-ahead log for concurrent readers, `synchronous=FULL`
/// so that a commit is durable before it is acknowledged, and a busy timeout so that a second
/// writer waits instead of failing. PostgreSQL keeps its durable defaults
/// (`synchronous_commit=on`).
pub(crate) async fn tune_connection(
    backend: Backend,
    conn: &mut AnyConnection,
) -> Result<(), sqlx::Error> {
    if backend == Backend::Sqlite {
        conn.execute("PRAGMA journal_mode = WAL").await?;
        conn.execute("PRAGMA synchronous = FULL").await?;
        conn.execute("PRAGMA busy_timeout = 10000").await?;
        // A 64 MiB page cache keeps the accounts and the hot index pages in memory; the
        // default 2 MiB makes every batch re-read pages it just wrote.
        conn.execute("PRAGMA cache_size = -65536").await?;
        // Checkpoint every ~40 MiB of log instead of ~4 MiB: pages written many times between
        // checkpoints are copied to the database file once. Commits still fsync the log.
        conn.execute("PRAGMA wal_autocheckpoint = 10000").await?;
    }
    Ok(())
}
