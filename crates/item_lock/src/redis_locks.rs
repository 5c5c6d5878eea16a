//! Item locks in Redis: one key per item (`{prefix}{item key}`) whose value is the holder and
//! whose `PX` expiry ends the lock on Redis's own clock.
//!
//! Each operation is one Lua script, which Redis runs atomically (no other command runs
//! between its steps), sent as `EVALSHA` with a fallback to loading it. Taking checks every key
//! first and writes only when none is held by another holder, so a request takes all its keys
//! or none. A script touches several keys, which a Redis Cluster accepts only when they share a
//! hash slot; mypay expects a single Redis (or a primary with replicas) for its locks.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};

use crate::key::{acquire_request, release_request};
use crate::{ItemKey, ItemLock, ItemLockError, ItemLocks};

/// Where item keys live in Redis unless configured otherwise.
pub const REDIS_KEY_PREFIX_DEFAULT: &str = "mypay:item_lock:";

/// How long one call to Redis may take before it is `item_lock_unavailable`: a checkout waits
/// for its locks, so a stuck Redis must not stall it for longer than this.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long opening a connection may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
/// How often opening a connection is retried, about a second apart, before the caller (the
/// start, or calls until the next reconnection) is told Redis is unavailable. The client's
/// default backoff grows to a minute per wait, far longer than a checkout may wait.
const RECONNECT_RETRIES: usize = 1;
/// The longest wait between two connection attempts, in milliseconds.
const RECONNECT_DELAY_MS_MAX: u64 = 1000;

/// Takes every key or none. KEYS: the item keys, sorted; ARGV[1]: the holder, ARGV[2]: the
/// lifetime in milliseconds. Returns 0 when all were taken, else the 1-based position of the
/// first key another holder has.
const ACQUIRE_SCRIPT: &str = r"
for i, key in ipairs(KEYS) do
  local current = redis.call('GET', key)
  if current and current ~= ARGV[1] then
    return i
  end
end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
end
return 0
";

/// Deletes the keys whose value is the holder (ARGV[1]); returns how many.
const RELEASE_SCRIPT: &str = r"
local released = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    released = released + 1
  end
end
return released
";

/// Reads one lock: nil when free, else {holder, remaining ms (-1: no expiry), Redis's time in
/// seconds, and microseconds}. Time comes from Redis so that the expiry it reports is on the
/// clock that ends the lock.
const READ_SCRIPT: &str = r"
local holder = redis.call('GET', KEYS[1])
if not holder then
  return false
end
local now = redis.call('TIME')
return {holder, redis.call('PTTL', KEYS[1]), now[1], now[2]}
";

/// Item locks in Redis. Cheap to clone: the connection manager is a handle that reconnects by
/// itself.
#[derive(Clone)]
pub struct RedisItemLocks {
    connection: ConnectionManager,
    prefix: String,
    /// The server's address without credentials, for logs.
    address: String,
    acquire: Script,
    release: Script,
    read: Script,
}

impl std::fmt::Debug for RedisItemLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisItemLocks")
            .field("address", &self.address)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisItemLocks {
    /// Connects to the Redis at `url` (`redis://[:password@]host:port[/db]`) and keeps item
    /// keys under `prefix`. A server that cannot be reached now is an error.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisItemLocks, ItemLockError> {
        let client = Client::open(url)
            .map_err(|error| ItemLockError::Invalid(format!("redis URL: {error}")))?;
        let address = client.get_connection_info().addr.to_string();
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(RESPONSE_TIMEOUT)
            .set_connection_timeout(CONNECTION_TIMEOUT)
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_factor(2)
            .set_max_delay(RECONNECT_DELAY_MS_MAX);
        let connection = ConnectionManager::new_with_config(client, config).await?;
        Ok(RedisItemLocks {
            connection,
            prefix: prefix.to_owned(),
            address,
            acquire: Script::new(ACQUIRE_SCRIPT),
            release: Script::new(RELEASE_SCRIPT),
            read: Script::new(READ_SCRIPT),
        })
    }

    /// The server's address (host and port), without credentials.
    pub fn address(&self) -> &str {
        &self.address
    }

    fn redis_key(&self, item: &ItemKey) -> String {
        format!("{}{}", self.prefix, item.as_str())
    }
}

/// A lifetime in whole milliseconds, rounded up so that a lock never ends before it was asked
/// to; `acquire_request` makes it at least 1 µs (so 1 ms) and at most a day.
fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_micros().div_ceil(1000)).expect("at most a day of milliseconds")
}

#[async_trait::async_trait]
impl ItemLocks for RedisItemLocks {
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
        let mut invocation = self.acquire.prepare_invoke();
        for key in &keys {
            invocation.key(self.redis_key(key));
        }
        invocation.arg(holder).arg(ttl_millis(ttl));
        let position: usize = invocation
            .invoke_async(&mut self.connection.clone())
            .await?;
        match position {
            0 => Ok(()),
            i => {
                let item = keys.get(i - 1).ok_or_else(|| {
                    ItemLockError::Unavailable(format!("redis named key {i} of {}", keys.len()))
                })?;
                Err(ItemLockError::Locked {
                    item: item.as_str().to_owned(),
                })
            }
        }
    }

    async fn release(&self, items: &[ItemKey], holder: &str) -> Result<(), ItemLockError> {
        let keys = release_request(items, holder)?;
        if keys.is_empty() {
            return Ok(());
        }
        let mut invocation = self.release.prepare_invoke();
        for key in &keys {
            invocation.key(self.redis_key(key));
        }
        invocation.arg(holder);
        let _released: usize = invocation
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(())
    }

    async fn lock(&self, item: &ItemKey) -> Result<Option<ItemLock>, ItemLockError> {
        let reply: Option<(String, i64, i64, i64)> = self
            .read
            .key(self.redis_key(item))
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(reply.map(|(holder, remaining_ms, now_s, now_us)| {
            let expires_at = if remaining_ms < 0 {
                i64::MAX
            } else {
                now_s * 1_000_000 + now_us + remaining_ms * 1000
            };
            ItemLock { holder, expires_at }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_round_up_to_whole_milliseconds() {
        assert_eq!(ttl_millis(Duration::from_micros(1)), 1);
        assert_eq!(ttl_millis(Duration::from_millis(200)), 200);
        assert_eq!(ttl_millis(Duration::from_micros(200_001)), 201);
        assert_eq!(ttl_millis(crate::DEFAULT_TTL), 900_000);
    }
}
