//! `GET /v1/items/{key}/lock`, black-box: the lock a checkout took, as operators and the
//! platform see it, on the default database store and on a configured Redis.

mod common;

use std::sync::Arc;

use api::{ApiConfig, ItemLockConfig};
use common::{assert_error, send, spawn_app, spawn_app_with, TestApp};
use item_lock::{DbItemLocks, ItemKey, ItemLocks, RedisItemLocks, DEFAULT_TTL};
use reqwest::{Method, StatusCode};
use testkit::{test_redis_url, TEST_REDIS_ENV};

fn items(names: &[&str]) -> Vec<ItemKey> {
    names.iter().map(|n| ItemKey::parse(n).unwrap()).collect()
}

async fn lock_of(app: &TestApp, token: &str, key: &str) -> (StatusCode, serde_json::Value) {
    send(app.bearer(token, Method::GET, &format!("/v1/items/{key}/lock"))).await
}

#[tokio::test]
async fn operators_and_the_platform_see_who_holds_an_item() {
    let app = spawn_app().await;
    let (status, body) = lock_of(&app, &app.admin_key, "listing:8812").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"item": "listing:8812", "locked": false, "holder": null, "expires_at": null})
    );

    // Without a configured store the application locks in its own database, on the ledger's
    // clock: a lock taken there is what the route reads.
    let locks = DbItemLocks::new(app.db.db.clone(), app.ledger.clock());
    locks
        .acquire(&items(&["listing:8812"]), "chk_first", DEFAULT_TTL)
        .await
        .unwrap();
    let (_, platform) = app.api_key("platform").await;
    for token in [app.admin_key.as_str(), platform.as_str()] {
        let (status, body) = lock_of(&app, token, "listing:8812").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["locked"], true, "{body}");
        assert_eq!(body["holder"], "chk_first", "{body}");
        let expires_at = body["expires_at"].as_str().unwrap();
        assert!(
            expires_at.ends_with('Z') && expires_at.len() == 27,
            "{body}"
        );
    }
}

#[tokio::test]
async fn members_and_merchants_may_not_read_locks_and_keys_are_checked() {
    let app = spawn_app().await;
    let member = app.member("buyer@example.com", "010-1234-5678").await;
    let (_, merchant) = app.merchant("Lock Shop").await;
    for token in [member.token.as_str(), merchant.as_str()] {
        let (status, body) = lock_of(&app, token, "listing:1").await;
        assert_error(status, &body, 403, "forbidden");
    }
    let (status, body) = send(app.anonymous(Method::GET, "/v1/items/listing:1/lock")).await;
    assert_error(status, &body, 401, "unauthenticated");
    for bad in ["a%20b", "%EC%83%81%ED%92%88", &"k".repeat(129)] {
        let (status, body) = lock_of(&app, &app.admin_key, bad).await;
        assert_error(status, &body, 422, "item_key_invalid");
    }
}

#[tokio::test]
async fn a_configured_redis_is_the_store_the_route_reads() {
    let Some(url) = test_redis_url() else {
        return;
    };
    let prefix = format!("mypay:test:{}:", ulid::Ulid::new());
    let redis = RedisItemLocks::connect(&url, &prefix)
        .await
        .unwrap_or_else(|error| {
            panic!("the test Redis must be reachable ({TEST_REDIS_ENV}=\"\" skips): {error}")
        });
    let store: Arc<dyn ItemLocks> = Arc::new(redis);
    let app = spawn_app_with(ApiConfig {
        item_locks: ItemLockConfig {
            store: Some(store.clone()),
            ttl: DEFAULT_TTL,
        },
        ..ApiConfig::default()
    })
    .await;
    let item = items(&["listing:77"]);
    store
        .acquire(&item, "chk_redis", DEFAULT_TTL)
        .await
        .unwrap();
    let (status, body) = lock_of(&app, &app.admin_key, "listing:77").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["holder"], "chk_redis", "{body}");
    // The database store knows nothing of it.
    let db = DbItemLocks::new(app.db.db.clone(), app.ledger.clock());
    assert_eq!(db.holder(&item[0]).await.unwrap(), None);
    store.release(&item, "chk_redis").await.unwrap();
    let (_, body) = lock_of(&app, &app.admin_key, "listing:77").await;
    assert_eq!(body["locked"], false, "{body}");
}
