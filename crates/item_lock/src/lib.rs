//! Item locks (seed 003): a unique item named in a checkout is held by its first buyer for a
//! while, 15 minutes by default, so that a second buyer is refused (`item_locked`) instead of
//! paying for something that is already sold.
//!
//! [`ItemLocks`] is the one interface; two backends implement it with the same semantics:
//!
//! - [`RedisItemLocks`], when `--redis-url` is configured: one Lua script takes all of a
//!   request's keys or none, each with a `PX` expiry, so **Redis's own clock** ends a lock.
//! - [`DbItemLocks`], otherwise: the `item_locks` table, taken in one write transaction by one
//!   conditional upsert; the **injected clock** ([`ledger::Clock`]) ends a lock, so tests move
//!   time instead of sleeping. The injected clock governs only this backend.
//!
//! Architecture invariants: this crate knows no HTTP, no payments and no ledger postings (it
//! reads only the ledger's clock); an unreachable store is `item_lock_unavailable`, never "the
//! item is free"; a request takes every key or none; only the holder releases its keys.

#![forbid(unsafe_code)]

mod db;
mod key;
mod redis_locks;

use std::sync::Arc;
use std::time::Duration;

use ledger::{Clock, Micros};
use storage::Db;

pub use crate::db::DbItemLocks;
pub use crate::key::{ItemKey, ITEM_KEY_LEN_MAX};
pub use crate::redis_locks::{RedisItemLocks, REDIS_KEY_PREFIX_DEFAULT};

/// How long a buyer holds an item unless configured otherwise: 15 minutes (seed 003).
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);
/// The longest lock a request may ask for: a day. A checkout that is still open after that is
/// abandoned, and an unbounded lock would take an item off sale for good.
pub const TTL_MAX: Duration = Duration::from_secs(24 * 60 * 60);
/// The most distinct items one request may lock: a checkout names a handful; this bounds the
/// statement and the script a request runs.
pub const ITEMS_PER_CHECKOUT_MAX: usize = 50;
/// The longest holder, in bytes (holders are ids such as a checkout id).
pub const HOLDER_LEN_MAX: usize = 256;
/// The most expired rows one sweep deletes.
pub const SWEEP_LIMIT_MAX: i64 = 10_000;

/// Why an item lock request was refused or could not be answered. Each variant has a stable
/// public code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ItemLockError {
    /// Another holder holds this item and its lock has not expired; nothing was taken.
    #[error("item {item} is locked by another buyer")]
    Locked { item: String },
    /// An item key, the holder or the lifetime is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The lock store (Redis or the database) did not answer. Nothing can be said about the
    /// item: an unreachable store is never taken to mean the item is free. An `acquire` that
    /// ends so may have taken its keys (the reply was lost); the holder may repeat it, which is
    /// idempotent, or release.
    #[error("the item lock store is unavailable: {0}")]
    Unavailable(String),
}

impl ItemLockError {
    /// The stable public code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            ItemLockError::Locked { .. } => "item_locked",
            ItemLockError::Invalid(_) => "item_key_invalid",
            ItemLockError::Unavailable(_) => "item_lock_unavailable",
        }
    }
}

impl From<sqlx::Error> for ItemLockError {
    fn from(error: sqlx::Error) -> ItemLockError {
        ItemLockError::Unavailable(format!("database: {error}"))
    }
}

impl From<redis::RedisError> for ItemLockError {
    fn from(error: redis::RedisError) -> ItemLockError {
        ItemLockError::Unavailable(format!("redis: {error}"))
    }
}

/// A live lock: who holds the item and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemLock {
    /// The holder that took it.
    pub holder: String,
    /// When it ends, in microseconds since the Unix epoch: on the injected clock for the
    /// database backend, on Redis's clock for Redis. [`Micros::MAX`] for a Redis key that has
    /// no expiry (not written by mypay), which holds for good.
    pub expires_at: Micros,
}

/// Locks on unique items, held by one holder until they expire or are released.
#[async_trait::async_trait]
pub trait ItemLocks: Send + Sync + std::fmt::Debug {
    /// Takes every key for `holder` (all or nothing) until now + `ttl`. Keys already held by
    /// the same holder are re-taken (idempotent; the expiry becomes now + `ttl`), and a lock
    /// whose expiry has passed is taken over. `Err(ItemLockError::Locked { item })` names one
    /// key (the first in sorted order) held by another live holder; nothing is taken then.
    /// Duplicate keys count once; no keys is a success that takes nothing.
    async fn acquire(
        &self,
        items: &[ItemKey],
        holder: &str,
        ttl: Duration,
    ) -> Result<(), ItemLockError>;

    /// Gives back the keys `holder` holds; keys held by someone else (e.g. after expiry) are
    /// left alone, and keys nobody holds are no error.
    async fn release(&self, items: &[ItemKey], holder: &str) -> Result<(), ItemLockError>;

    /// The live lock on a key, if any.
    async fn lock(&self, item: &ItemKey) -> Result<Option<ItemLock>, ItemLockError>;

    /// Who holds a key now, if anyone (for reads and tests).
    async fn holder(&self, item: &ItemKey) -> Result<Option<String>, ItemLockError> {
        Ok(self.lock(item).await?.map(|lock| lock.holder))
    }

    /// Deletes up to `limit` (clamped to 1..=[`SWEEP_LIMIT_MAX`]) stored locks whose expiry has
    /// passed and returns how many. Expired locks are already free; sweeping only keeps the
    /// store small. A store that expires entries by itself (Redis) has nothing to sweep.
    async fn sweep_expired(&self, _limit: i64) -> Result<u64, ItemLockError> {
        Ok(0)
    }
}

/// The lock store `serve` runs with: Redis at `redis_url` when one is given (its keys under
/// [`REDIS_KEY_PREFIX_DEFAULT`]), else the database, whose locks expire on `clock`. A Redis
/// that cannot be reached here is an error, so a misconfigured URL stops the start.
pub async fn connect(
    redis_url: Option<&str>,
    db: Db,
    clock: Arc<dyn Clock>,
) -> Result<Arc<dyn ItemLocks>, ItemLockError> {
    match redis_url {
        Some(url) => Ok(Arc::new(
            RedisItemLocks::connect(url, REDIS_KEY_PREFIX_DEFAULT).await?,
        )),
        None => Ok(Arc::new(DbItemLocks::new(db, clock))),
    }
}

/// How the API layer is given its item locks.
#[derive(Debug, Clone)]
pub struct ItemLockConfig {
    /// The store; `None` makes the application use [`DbItemLocks`] over its own database and
    /// the ledger's clock.
    pub store: Option<Arc<dyn ItemLocks>>,
    /// How long a checkout holds its items; within 1 s..=[`TTL_MAX`].
    pub ttl: Duration,
}

/// The shortest lifetime a configuration may set: shorter would end locks while their buyer
/// is still on the payment page.
pub const CONFIG_TTL_MIN: Duration = Duration::from_secs(1);

impl Default for ItemLockConfig {
    fn default() -> ItemLockConfig {
        ItemLockConfig {
            store: None,
            ttl: DEFAULT_TTL,
        }
    }
}

impl ItemLockConfig {
    /// Refuses a lifetime outside [`CONFIG_TTL_MIN`]..=[`TTL_MAX`], for configuration read
    /// from flags.
    pub fn validate(&self) -> Result<(), String> {
        if (CONFIG_TTL_MIN..=TTL_MAX).contains(&self.ttl) {
            Ok(())
        } else {
            Err(format!(
                "the item lock lifetime must be {} to {} seconds",
                CONFIG_TTL_MIN.as_secs(),
                TTL_MAX.as_secs()
            ))
        }
    }

    /// The configuration with its lifetime clamped into bounds.
    pub fn bounded(self) -> ItemLockConfig {
        ItemLockConfig {
            ttl: self.ttl.clamp(CONFIG_TTL_MIN, TTL_MAX),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let locked = ItemLockError::Locked { item: "a".into() };
        assert_eq!(locked.code(), "item_locked");
        assert_eq!(
            ItemLockError::Invalid("x".into()).code(),
            "item_key_invalid"
        );
        assert_eq!(
            ItemLockError::Unavailable("x".into()).code(),
            "item_lock_unavailable"
        );
    }

    #[test]
    fn configured_lifetimes_are_bounded() {
        let config = |ttl| ItemLockConfig { store: None, ttl };
        assert!(config(DEFAULT_TTL).validate().is_ok());
        assert!(config(Duration::from_millis(500)).validate().is_err());
        assert!(config(TTL_MAX + Duration::from_secs(1)).validate().is_err());
        assert_eq!(config(Duration::ZERO).bounded().ttl, CONFIG_TTL_MIN);
        assert_eq!(config(Duration::MAX).bounded().ttl, TTL_MAX);
    }
}
