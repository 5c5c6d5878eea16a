//! `mypay serve`'s item lock flags: a configured Redis is used and must be reachable at start
//! (its password never printed), and the lock lifetime is checked.

mod support;

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use item_lock::ItemLocks;
use serde_json::Value;
use support::BINARY;
use testkit::{test_redis_url, TestDb};

/// `serve` on port 0 against `url`, with its sandbox bank and key file in `data`, plus `extra`.
fn serve_args(url: &str, data: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--database-url".into(),
        url.into(),
        "--sandbox-bank-data".into(),
        data.into(),
        "--account-key-file".into(),
        data.join("account-keys").into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    args
}

/// Runs `mypay` to its end (for starts that must fail) and returns its exit status and stderr.
fn run_to_end(args: &[OsString]) -> (bool, String) {
    let output = Command::new(BINARY)
        .args(args)
        .env_remove("MYPAY_ADMIN_API_KEY")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run mypay");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn an_unreachable_redis_stops_the_start_without_showing_its_password() {
    let db = TestDb::new(2).await;
    let data = tempfile::tempdir().unwrap();
    let args = serve_args(
        &db.url.expose_secret(),
        data.path(),
        &["--redis-url", "redis://:hunter2secret@127.0.0.1:9"],
    );
    let (success, stderr) = run_to_end(&args);
    assert!(!success, "{stderr}");
    assert!(
        stderr.contains("cannot reach the item lock store"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2secret"), "{stderr}");
}

#[tokio::test]
async fn an_item_lock_lifetime_out_of_bounds_is_refused() {
    let db = TestDb::new(2).await;
    let data = tempfile::tempdir().unwrap();
    for ttl in ["0", "86401"] {
        let args = serve_args(
            &db.url.expose_secret(),
            data.path(),
            &["--item-lock-ttl-s", ttl],
        );
        let (success, stderr) = run_to_end(&args);
        assert!(!success, "{ttl}: {stderr}");
        assert!(stderr.contains("--item-lock-ttl-s"), "{ttl}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reads_item_locks_from_a_configured_redis() {
    let Some(redis_url) = test_redis_url() else {
        return;
    };
    let db = TestDb::new(2).await;
    let data = tempfile::tempdir().unwrap();
    let started = support::start(
        serve_args(
            &db.url.expose_secret(),
            data.path(),
            &["--redis-url", &redis_url, "--item-lock-ttl-s", "600"],
        ),
        "listening on ",
    );
    let admin_key = started
        .before
        .iter()
        .find_map(|line| line.strip_prefix("created admin API key (shown only now): "))
        .expect("a fresh database gets an admin key")
        .to_owned();
    // A lock taken in Redis under the default prefix, as checkout in another replica would.
    let item = item_lock::ItemKey::parse(&format!("test-serve:{}", ulid::Ulid::new())).unwrap();
    let redis = item_lock::RedisItemLocks::connect(&redis_url, item_lock::REDIS_KEY_PREFIX_DEFAULT)
        .await
        .unwrap();
    redis
        .acquire(
            std::slice::from_ref(&item),
            "chk_binary",
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let response = reqwest::Client::new()
        .get(format!("{}/v1/items/{item}/lock", started.ready))
        .bearer_auth(&admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["holder"], "chk_binary", "{body}");
    redis
        .release(std::slice::from_ref(&item), "chk_binary")
        .await
        .unwrap();
    started.process.stop();
}
