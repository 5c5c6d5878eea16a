//! Item locks in the database: the `item_locks` table, for installations without Redis.
//!
//! Taking locks is one conditional upsert inside one write transaction:
//!
//! ```text
//! INSERT INTO item_locks … VALUES (key, holder, expires_at), …
//! ON CONFLICT (item_key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
//!   WHERE item_locks.holder = excluded.holder OR item_locks.expires_at <= now
//! RETURNING item_key
//! ```
//!
//! A key comes back only if it was free, expired, or already the holder's. Fewer keys back than
//! asked for means another live holder has one: the transaction is rolled back, so nothing is
//! taken. The statement itself decides, on the row as it is when the statement reaches it, so a
//! row inserted by a concurrent buyer after any earlier read cannot be overwritten: on
//! PostgreSQL a second inserter of the same key waits for the first to commit and then sees its
//! row; SQLite's `BEGIN IMMEDIATE` runs one writer at a time. A separate `SELECT … FOR UPDATE`
//! first would lock nothing for keys that have no row yet, which is exactly the race that
//! matters (two first buyers), so the upsert is the check.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ledger::{Clock, Micros};
use storage::{Db, SqlBuilder};

use crate::key::{acquire_request, release_request};
use crate::{ItemKey, ItemLock, ItemLockError, ItemLocks, SWEEP_LIMIT_MAX};

/// How often a request's transaction is run again after a transient conflict (a deadlock or
/// serialization failure on PostgreSQL, a busy SQLite past its timeout).
const ACQUIRE_ATTEMPTS_MAX: u32 = 3;

/// Item locks in the `item_locks` table; they expire on the injected clock.
#[derive(Clone)]
pub struct DbItemLocks {
    db: Db,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DbItemLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbItemLocks")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl DbItemLocks {
    /// Locks in `db`'s `item_locks` table (migration 0008), expiring on `clock`.
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> DbItemLocks {
        DbItemLocks { db, clock }
    }

    /// One attempt at taking `keys`: `Ok(None)` when all were taken, `Ok(Some(key))` naming
    /// the first key another live holder has (nothing taken).
    async fn try_acquire(
        &self,
        keys: &[&ItemKey],
        holder: &str,
        ttl_micros: Micros,
    ) -> Result<Option<String>, sqlx::Error> {
        let now = self.clock.now_micros();
        let expires_at = now + ttl_micros;
        let mut sql = SqlBuilder::new(
            self.db.backend(),
            "INSERT INTO item_locks (item_key, holder, expires_at) VALUES ",
        );
        for (i, key) in keys.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .bind(key.as_str().to_owned())
                .push(", ")
                .bind(holder.to_owned())
                .push(", ")
                .bind(expires_at)
                .push(")");
        }
        sql.push(
            " ON CONFLICT (item_key) DO UPDATE \
             SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE item_locks.holder = excluded.holder OR item_locks.expires_at <= ",
        )
        .bind(now)
        .push(" RETURNING item_key");
        let (text, arguments) = sql.build();

        let mut tx = self.db.begin_write().await?;
        let taken: Vec<(String,)> = sqlx::query_as_with(&text, arguments)
            .fetch_all(&mut *tx)
            .await?;
        if taken.len() == keys.len() {
            tx.commit().await?;
            return Ok(None);
        }
        tx.rollback().await?;
        let taken: HashSet<String> = taken.into_iter().map(|(key,)| key).collect();
        let locked = keys
            .iter()
            .find(|key| !taken.contains(key.as_str()))
            .expect("fewer keys were taken than asked for, so one was not");
        Ok(Some(locked.as_str().to_owned()))
    }
}

/// A lifetime in microseconds; `acquire_request` bounds it to a day, which fits easily.
fn ttl_micros(ttl: Duration) -> Micros {
    Micros::try_from(ttl.as_micros()).expect("a lifetime of at most a day fits in i64 micros")
}

#[async_trait::async_trait]
impl ItemLocks for DbItemLocks {
    async fn acquire(
        &self,
        items: &[ItemKey],
        holder: &str,
        ttl: Duration,
    ) -> Result<(), ItemLockError> {
        let keys = acquire_request(items, holder, ttl)?;
        if keys.is_empty() {
            return Ok(());
        }
        let mut attempt = 1;
        loop {
            match self.try_acquire(&keys, holder, ttl_micros(ttl)).await {
                Ok(None) => return Ok(()),
                Ok(Some(item)) => return Err(ItemLockError::Locked { item }),
                Err(error)
                    if attempt < ACQUIRE_ATTEMPTS_MAX && self.db.backend().is_retryable(&error) =>
                {
                    tracing::debug!(%error, attempt, "item lock transaction conflicted; retrying");
                    attempt += 1;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    async fn release(&self, items: &[ItemKey], holder: &str) -> Result<(), ItemLockError> {
        let keys = release_request(items, holder)?;
        if keys.is_empty() {
            return Ok(());
        }
        let mut sql = SqlBuilder::new(self.db.backend(), "DELETE FROM item_locks WHERE holder = ");
        sql.bind(holder.to_owned())
            .push(" AND item_key IN ")
            .bind_list(keys.iter().map(|key| key.as_str().to_owned()));
        let (text, arguments) = sql.build();
        sqlx::query_with(&text, arguments)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    async fn lock(&self, item: &ItemKey) -> Result<Option<ItemLock>, ItemLockError> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT holder, expires_at FROM item_locks WHERE item_key = $1 AND expires_at > $2",
        )
        .bind(item.as_str())
        .bind(self.clock.now_micros())
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(|(holder, expires_at)| ItemLock { holder, expires_at }))
    }

    /// Deletes expired rows, oldest expiry first. The outer condition repeats the expiry test
    /// so that, on PostgreSQL, a row a buyer took over between the subquery's read and the
    /// delete is re-checked on its new version and kept.
    async fn sweep_expired(&self, limit: i64) -> Result<u64, ItemLockError> {
        let done = sqlx::query(
            "DELETE FROM item_locks WHERE expires_at <= $1 AND item_key IN (\
                 SELECT item_key FROM item_locks WHERE expires_at <= $1 \
                 ORDER BY expires_at LIMIT $2)",
        )
        .bind(self.clock.now_micros())
        .bind(limit.clamp(1, SWEEP_LIMIT_MAX))
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected())
    }
}
