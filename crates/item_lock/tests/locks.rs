//! One story suite run against both backends: the database (SQLite, or PostgreSQL when
//! `MYPAY_TEST_DATABASE_URL` names one) and a real Redis.
//!
//! Redis is `redis://127.0.0.1:6379` unless `MYPAY_TEST_REDIS_URL` names another. The Redis
//! tests fail when it cannot be reached; only `MYPAY_TEST_REDIS_URL` set to the empty string
//! skips them. Each Redis test keeps its keys under a prefix of its own, so tests in parallel
//! (and earlier runs) never meet.

use std::sync::Arc;
use std::time::Duration;

use item_lock::{
    DbItemLocks, ItemKey, ItemLock, ItemLockError, ItemLocks, RedisItemLocks, DEFAULT_TTL,
    ITEMS_PER_CHECKOUT_MAX,
};
use ledger::ManualClock;
use testkit::{test_redis_url as redis_url, TestDb, TEST_REDIS_ENV};

/// 2026-11-22T00:00:00Z, where manual clocks start.
const START_MICROS: i64 = 1_795_305_600_000_000;

/// The lifetime the stories lock with (long enough never to run out during a test).
const TTL: Duration = Duration::from_secs(60);

fn keys(names: &[&str]) -> Vec<ItemKey> {
    names.iter().map(|n| ItemKey::parse(n).unwrap()).collect()
}

fn key(name: &str) -> ItemKey {
    ItemKey::parse(name).unwrap()
}

/// A database backend on a manual clock, with the database kept alive beside it.
struct DbBackend {
    locks: Arc<DbItemLocks>,
    clock: Arc<ManualClock>,
    _db: TestDb,
}

async fn db_backend() -> DbBackend {
    let db = TestDb::new(8).await;
    let clock = Arc::new(ManualClock::new(START_MICROS));
    DbBackend {
        locks: Arc::new(DbItemLocks::new(db.db.clone(), clock.clone())),
        clock,
        _db: db,
    }
}

/// Redis item locks under a prefix of this test's own, or `None` when switched off.
async fn redis_backend() -> Option<Arc<RedisItemLocks>> {
    let url = redis_url()?;
    let prefix = format!("mypay:test:{}:", ulid::Ulid::new());
    let locks = RedisItemLocks::connect(&url, &prefix)
        .await
        .unwrap_or_else(|error| {
            panic!("the test Redis must be reachable ({TEST_REDIS_ENV}=\"\" skips): {error}")
        });
    Some(Arc::new(locks))
}

/// Runs a story against the database and, unless switched off, against Redis.
macro_rules! on_both_backends {
    ($($story:ident),* $(,)?) => {
        mod database {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $story() {
                    let backend = super::db_backend().await;
                    super::$story(backend.locks.clone()).await;
                }
            )*
        }
        mod redis_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $story() {
                    if let Some(locks) = super::redis_backend().await {
                        super::$story(locks).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    the_first_holder_wins_and_a_second_is_refused,
    the_same_holder_takes_its_keys_again,
    a_request_takes_all_its_keys_or_none,
    a_holder_releases_only_its_own_keys,
    of_32_concurrent_buyers_exactly_one_wins,
    overlapping_concurrent_requests_never_deadlock_or_split,
    requests_are_checked_before_the_store_is_asked,
);

async fn the_first_holder_wins_and_a_second_is_refused(locks: Arc<impl ItemLocks + 'static>) {
    let item = keys(&["listing:1"]);
    assert_eq!(locks.holder(&item[0]).await.unwrap(), None);
    locks.acquire(&item, "chk_a", TTL).await.unwrap();
    assert_eq!(
        locks.holder(&item[0]).await.unwrap().as_deref(),
        Some("chk_a")
    );

    let refused = locks.acquire(&item, "chk_b", TTL).await.unwrap_err();
    assert!(
        matches!(&refused, ItemLockError::Locked { item } if item == "listing:1"),
        "{refused:?}"
    );
    assert_eq!(refused.code(), "item_locked");
    assert_eq!(
        locks.holder(&item[0]).await.unwrap().as_deref(),
        Some("chk_a")
    );
}

async fn the_same_holder_takes_its_keys_again(locks: Arc<impl ItemLocks + 'static>) {
    let item = keys(&["listing:2"]);
    locks
        .acquire(&item, "chk_a", Duration::from_secs(30))
        .await
        .unwrap();
    let first = locks.lock(&item[0]).await.unwrap().unwrap();
    // Taken again with a longer lifetime: still the holder's, expiring later.
    locks
        .acquire(&item, "chk_a", Duration::from_secs(600))
        .await
        .unwrap();
    let again = locks.lock(&item[0]).await.unwrap().unwrap();
    assert_eq!(again.holder, "chk_a");
    assert!(
        again.expires_at >= first.expires_at + 500_000_000,
        "{first:?} then {again:?}"
    );
    // Duplicates in one request count once.
    locks
        .acquire(&keys(&["listing:2", "listing:2"]), "chk_a", TTL)
        .await
        .unwrap();
}

async fn a_request_takes_all_its_keys_or_none(locks: Arc<impl ItemLocks + 'static>) {
    locks
        .acquire(&keys(&["item:b"]), "chk_a", TTL)
        .await
        .unwrap();
    // B asks for a, b and c; b is A's, so B gets none of them.
    let refused = locks
        .acquire(&keys(&["item:c", "item:b", "item:a"]), "chk_b", TTL)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ItemLockError::Locked { item } if item == "item:b"),
        "{refused:?}"
    );
    for free in ["item:a", "item:c"] {
        assert_eq!(locks.holder(&key(free)).await.unwrap(), None, "{free}");
    }
    // A third buyer can take what B could not.
    locks
        .acquire(&keys(&["item:a", "item:c"]), "chk_c", TTL)
        .await
        .unwrap();
    // A extends b and adds d: a request mixing own and free keys takes them all.
    locks
        .acquire(&keys(&["item:b", "item:d"]), "chk_a", TTL)
        .await
        .unwrap();
    let holders = [
        ("item:a", "chk_c"),
        ("item:b", "chk_a"),
        ("item:c", "chk_c"),
        ("item:d", "chk_a"),
    ];
    for (item, holder) in holders {
        assert_eq!(
            locks.holder(&key(item)).await.unwrap().as_deref(),
            Some(holder)
        );
    }
}

async fn a_holder_releases_only_its_own_keys(locks: Arc<impl ItemLocks + 'static>) {
    locks
        .acquire(&keys(&["rel:a", "rel:b"]), "chk_a", TTL)
        .await
        .unwrap();
    locks
        .acquire(&keys(&["rel:c"]), "chk_b", TTL)
        .await
        .unwrap();
    // B names A's keys too; only B's own go, and a key nobody holds is no error.
    locks
        .release(&keys(&["rel:a", "rel:c", "rel:none"]), "chk_b")
        .await
        .unwrap();
    assert_eq!(
        locks.holder(&key("rel:a")).await.unwrap().as_deref(),
        Some("chk_a")
    );
    assert_eq!(locks.holder(&key("rel:c")).await.unwrap(), None);
    locks
        .release(&keys(&["rel:a", "rel:b"]), "chk_a")
        .await
        .unwrap();
    assert_eq!(locks.holder(&key("rel:a")).await.unwrap(), None);
    // Released items are free for the next buyer at once.
    locks
        .acquire(&keys(&["rel:a", "rel:b", "rel:c"]), "chk_c", TTL)
        .await
        .unwrap();
}

async fn of_32_concurrent_buyers_exactly_one_wins(locks: Arc<impl ItemLocks + 'static>) {
    let item = keys(&["hot:last-piece"]);
    let barrier = Arc::new(tokio::sync::Barrier::new(32));
    let buyers: Vec<_> = (0..32)
        .map(|i| {
            let (locks, item, barrier) = (locks.clone(), item.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let holder = format!("chk_{i}");
                (holder.clone(), locks.acquire(&item, &holder, TTL).await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for buyer in buyers {
        let (holder, result) = buyer.await.unwrap();
        match result {
            Ok(()) => winners.push(holder),
            Err(ItemLockError::Locked { item }) => assert_eq!(item, "hot:last-piece"),
            Err(other) => panic!("{holder}: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        locks.holder(&item[0]).await.unwrap().as_ref(),
        Some(&winners[0])
    );
}

async fn overlapping_concurrent_requests_never_deadlock_or_split(
    locks: Arc<impl ItemLocks + 'static>,
) {
    // 16 buyers, each after 3 of 6 items, named in opposite orders by odd and even buyers.
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let buyers: Vec<_> = (0..16)
        .map(|i: usize| {
            let (locks, barrier) = (locks.clone(), barrier.clone());
            let mut wanted: Vec<String> = [i, i + 1, i + 3]
                .iter()
                .map(|k| format!("mix:{}", k % 6))
                .collect();
            if i % 2 == 1 {
                wanted.reverse();
            }
            tokio::spawn(async move {
                let items: Vec<ItemKey> = wanted.iter().map(|k| key(k)).collect();
                barrier.wait().await;
                let holder = format!("chk_{i}");
                let result = locks.acquire(&items, &holder, TTL).await;
                (holder, wanted, result)
            })
        })
        .collect();
    let mut taken = std::collections::HashMap::new();
    for buyer in buyers {
        let (holder, wanted, result) = buyer.await.unwrap();
        match result {
            Ok(()) => {
                for item in wanted {
                    let previous = taken.insert(item.clone(), holder.clone());
                    assert_eq!(previous, None, "{item} given to two buyers");
                }
            }
            Err(ItemLockError::Locked { item }) => assert!(wanted.contains(&item)),
            Err(other) => panic!("{holder}: {other:?}"),
        }
    }
    assert!(!taken.is_empty());
    for k in 0..6 {
        let item = format!("mix:{k}");
        assert_eq!(
            locks.holder(&key(&item)).await.unwrap().as_ref(),
            taken.get(&item),
            "{item}"
        );
    }
}

async fn requests_are_checked_before_the_store_is_asked(locks: Arc<impl ItemLocks + 'static>) {
    let item = keys(&["chk:a"]);
    let invalid = [
        locks.acquire(&item, "", TTL).await,
        locks.acquire(&item, "chk_a", Duration::ZERO).await,
        locks
            .acquire(&item, "chk_a", Duration::from_secs(86_401))
            .await,
        locks.release(&item, "").await,
    ];
    for result in invalid {
        assert_eq!(result.unwrap_err().code(), "item_key_invalid");
    }
    let too_many: Vec<ItemKey> = (0..=ITEMS_PER_CHECKOUT_MAX)
        .map(|i| key(&format!("chk:{i}")))
        .collect();
    let refused = locks.acquire(&too_many, "chk_a", TTL).await.unwrap_err();
    assert_eq!(refused.code(), "item_key_invalid");
    assert_eq!(locks.holder(&key("chk:0")).await.unwrap(), None);
    // Nothing to lock is nothing to refuse.
    locks.acquire(&[], "chk_a", TTL).await.unwrap();
    locks.release(&[], "chk_a").await.unwrap();
}

#[tokio::test]
async fn database_locks_expire_on_the_injected_clock_and_are_taken_over() {
    let backend = db_backend().await;
    let (locks, clock) = (&backend.locks, &backend.clock);
    let item = keys(&["exp:1"]);
    locks.acquire(&item, "chk_a", DEFAULT_TTL).await.unwrap();
    assert_eq!(
        locks.lock(&item[0]).await.unwrap(),
        Some(ItemLock {
            holder: "chk_a".into(),
            expires_at: START_MICROS + 900_000_000,
        })
    );
    // One microsecond before the end the lock holds; at the end it is gone.
    clock.advance_micros(900_000_000 - 1);
    assert!(locks.acquire(&item, "chk_b", TTL).await.is_err());
    clock.advance_micros(1);
    assert_eq!(locks.holder(&item[0]).await.unwrap(), None);
    locks.acquire(&item, "chk_b", DEFAULT_TTL).await.unwrap();
    assert_eq!(
        locks.holder(&item[0]).await.unwrap().as_deref(),
        Some("chk_b")
    );
    // The first buyer's late release leaves the new holder alone.
    locks.release(&item, "chk_a").await.unwrap();
    assert_eq!(
        locks.holder(&item[0]).await.unwrap().as_deref(),
        Some("chk_b")
    );
}

#[tokio::test]
async fn expired_database_rows_are_swept_in_bounded_batches() {
    let backend = db_backend().await;
    let (locks, clock) = (&backend.locks, &backend.clock);
    for i in 0..5 {
        locks
            .acquire(&keys(&[&format!("sweep:{i}")]), "chk_old", TTL)
            .await
            .unwrap();
    }
    clock.advance_micros(61_000_000);
    locks
        .acquire(&keys(&["sweep:live"]), "chk_new", TTL)
        .await
        .unwrap();
    assert_eq!(locks.sweep_expired(3).await.unwrap(), 3);
    assert_eq!(locks.sweep_expired(100).await.unwrap(), 2);
    assert_eq!(locks.sweep_expired(100).await.unwrap(), 0);
    assert_eq!(
        locks.holder(&key("sweep:live")).await.unwrap().as_deref(),
        Some("chk_new")
    );
}

#[tokio::test]
async fn redis_locks_expire_on_redis_time() {
    let Some(locks) = redis_backend().await else {
        return;
    };
    let item = keys(&["exp:1"]);
    let ttl = Duration::from_millis(200);
    locks.acquire(&item, "chk_a", ttl).await.unwrap();
    let lock = locks.lock(&item[0]).await.unwrap().unwrap();
    let now = ledger::Clock::now_micros(&ledger::SystemClock);
    // Redis's clock and ours are the same machine's here; the expiry is within the lifetime.
    assert!(
        (now - 1_000_000..=now + 200_000).contains(&lock.expires_at),
        "{lock:?} at {now}"
    );
    assert!(locks.acquire(&item, "chk_b", TTL).await.is_err());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(locks.holder(&item[0]).await.unwrap(), None);
    locks.acquire(&item, "chk_b", TTL).await.unwrap();
    assert_eq!(locks.sweep_expired(100).await.unwrap(), 0);
}

#[tokio::test]
async fn a_redis_key_without_expiry_is_held_for_good() {
    let Some(url) = redis_url() else {
        return;
    };
    let prefix = format!("mypay:test:{}:", ulid::Ulid::new());
    let locks = RedisItemLocks::connect(&url, &prefix).await.unwrap();
    let mut connection = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let raw = format!("{prefix}manual");
    let () = redis::cmd("SET")
        .arg(&raw)
        .arg("someone")
        .query_async(&mut connection)
        .await
        .unwrap();
    let lock = locks.lock(&key("manual")).await.unwrap().unwrap();
    assert_eq!(lock.expires_at, i64::MAX);
    assert!(locks
        .acquire(&keys(&["manual"]), "chk_a", TTL)
        .await
        .is_err());
    let () = redis::cmd("DEL")
        .arg(&raw)
        .query_async(&mut connection)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unreachable_redis_is_unavailable_never_free() {
    // Port 9 (discard) has no Redis on a test machine; connecting is refused at once.
    let error = RedisItemLocks::connect("redis://127.0.0.1:9", "mypay:test:")
        .await
        .unwrap_err();
    assert_eq!(error.code(), "item_lock_unavailable", "{error:?}");
    let error = RedisItemLocks::connect("not a url", "mypay:test:")
        .await
        .unwrap_err();
    assert_eq!(error.code(), "item_key_invalid", "{error:?}");
}

#[tokio::test]
async fn connect_chooses_redis_when_a_url_is_given_and_the_database_otherwise() {
    let db = TestDb::new(2).await;
    let clock = Arc::new(ManualClock::new(START_MICROS));
    let locks = item_lock::connect(None, db.db.clone(), clock.clone())
        .await
        .unwrap();
    assert!(format!("{locks:?}").starts_with("DbItemLocks"), "{locks:?}");
    if let Some(url) = redis_url() {
        let locks = item_lock::connect(Some(&url), db.db.clone(), clock)
            .await
            .unwrap();
        assert!(
            format!("{locks:?}").starts_with("RedisItemLocks"),
            "{locks:?}"
        );
        assert!(
            format!("{locks:?}").contains("mypay:item_lock:"),
            "{locks:?}"
        );
    }
}

/// A TCP relay to the test Redis that the test can cut, standing in for a Redis that goes
/// away after mypay connected.
struct Relay {
    address: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn to(redis_url: &str) -> Relay {
        let target = redis::Client::open(redis_url)
            .unwrap()
            .get_connection_info()
            .addr
            .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut pipes = tokio::task::JoinSet::new();
            loop {
                let (mut inbound, _) = listener.accept().await.unwrap();
                let target = target.clone();
                pipes.spawn(async move {
                    let mut outbound = tokio::net::TcpStream::connect(target).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        Relay { address, task }
    }

    /// Closes the listener and every relayed connection (dropping the task drops its pipes).
    async fn cut(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

#[tokio::test]
async fn a_redis_that_goes_away_is_unavailable_never_free() {
    let Some(url) = redis_url() else {
        return;
    };
    let relay = Relay::to(&url).await;
    let prefix = format!("mypay:test:{}:", ulid::Ulid::new());
    let relayed = format!("redis://{}", relay.address);
    let locks = RedisItemLocks::connect(&relayed, &prefix).await.unwrap();
    let item = keys(&["gone:1"]);
    locks.acquire(&item, "chk_a", TTL).await.unwrap();

    relay.cut().await;
    for result in [
        locks.acquire(&item, "chk_b", TTL).await,
        locks.release(&item, "chk_a").await,
        locks.lock(&item[0]).await.map(|_| ()),
    ] {
        assert_eq!(result.unwrap_err().code(), "item_lock_unavailable");
    }
    // The lock itself is still in Redis, held by its first buyer.
    let direct = RedisItemLocks::connect(&url, &prefix).await.unwrap();
    assert_eq!(
        direct.holder(&item[0]).await.unwrap().as_deref(),
        Some("chk_a")
    );
    direct.release(&item, "chk_a").await.unwrap();
}
