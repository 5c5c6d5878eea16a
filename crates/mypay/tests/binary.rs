//! The real `mypay` binary, started as users start it: `serve` on port 0 against its own
//! database, driven over HTTP, stopped with SIGTERM; then `check` and `migrate` on the same
//! database.

mod support;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use support::{Process, BINARY};
use testkit::TestDb;

/// A running `mypay serve` and what it printed on start.
struct Server {
    process: Process,
    base: String,
    admin_key: String,
}

/// Starts `mypay serve` on `database_url`, with its in-process sandbox bank and its account-number
/// key file in `bank_data`.
fn serve(database_url: &str, bank_data: &Path) -> Server {
    let key_file = bank_data.join("account-keys");
    let psp_data = bank_data.join("sandbox-psp");
    let started = support::start(
        [
            OsStr::new("serve"),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--database-url"),
            OsStr::new(database_url),
            OsStr::new("--sandbox-bank-data"),
            bank_data.as_os_str(),
            OsStr::new("--sandbox-psp-data"),
            psp_data.as_os_str(),
            OsStr::new("--account-key-file"),
            key_file.as_os_str(),
        ],
        "listening on ",
    );
    let admin_key = started
        .before
        .iter()
        .find_map(|line| line.strip_prefix("created admin API key (shown only now): "))
        .expect("a fresh database gets an admin key, printed once")
        .to_owned();
    Server {
        process: started.process,
        base: started.ready,
        admin_key,
    }
}

impl Server {
    fn stop(self) {
        self.process.stop();
    }
}

async fn post(client: &reqwest::Client, server: &Server, path: &str, body: Value) -> Value {
    let response = client
        .post(format!("{}{path}", server.base))
        .bearer_auth(&server.admin_key)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.expect("JSON body")
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BINARY)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run mypay")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_move_money_stop_then_check() {
    let test_db = TestDb::new(2).await;
    let url = test_db.url.expose_secret();
    let bank_data = tempfile::tempdir().expect("sandbox bank directory");
    let server = serve(&url, bank_data.path());
    let client = reqwest::Client::new();

    let health: Value = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");

    let bank = post(
        &client,
        &server,
        "/v1/ledger/accounts",
        json!({"code": "asset:bank:master", "kind": "asset", "currency": "KRW"}),
    )
    .await;
    let wallet = post(
        &client,
        &server,
        "/v1/ledger/accounts",
        json!({"code": "liability:member:1:money", "kind": "liability", "currency": "KRW", "flags": ["must_not_go_negative"]}),
    )
    .await;
    post(
        &client,
        &server,
        "/v1/ledger/transactions",
        json!({"id": "charge-1", "postings": [
            {"account_id": bank["id"], "direction": "debit", "amount": "15000", "currency": "KRW"},
            {"account_id": wallet["id"], "direction": "credit", "amount": "15000", "currency": "KRW"}
        ]}),
    )
    .await;
    let balance: Value = client
        .get(format!(
            "{}/v1/ledger/accounts/{}/balance",
            server.base,
            wallet["id"].as_str().unwrap()
        ))
        .bearer_auth(&server.admin_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(balance["available"], "15000");
    server.stop();

    let check = run(&["check", "--database-url", &url]);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "check failed: {report}");
    assert!(
        report.contains("checked 2 accounts, 1 transactions, 2 postings"),
        "{report}"
    );

    let migrate = run(&["migrate", "--database-url", &url]);
    assert!(migrate.status.success());

    // A second start keeps the admin key it created the first time and prints no new one.
    let again = support::start(
        [
            OsStr::new("serve"),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--database-url"),
            OsStr::new(&url),
            OsStr::new("--sandbox-bank-data"),
            bank_data.path().as_os_str(),
            OsStr::new("--sandbox-psp-data"),
            bank_data.path().join("sandbox-psp").as_os_str(),
            OsStr::new("--account-key-file"),
            bank_data.path().join("account-keys").as_os_str(),
        ],
        "listening on ",
    );
    assert!(again.before.is_empty(), "{:?}", again.before);
    again.process.stop();
}

#[tokio::test]
async fn check_exits_non_zero_on_a_broken_invariant() {
    let test_db = TestDb::new(2).await;
    let url = test_db.url.expose_secret();
    sqlx::query("INSERT INTO ledger_accounts (id, code, kind, currency, flags, credits_posted, created_at) VALUES ('acc_x', 'x', 'liability', 'KRW', 0, 5, 0)")
        .execute(test_db.db.pool())
        .await
        .unwrap();
    let check = run(&["check", "--database-url", &url]);
    assert!(!check.status.success());
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        report.contains("FAIL  every stored balance equals the sum of its postings: acc_x"),
        "{report}"
    );
}

#[test]
fn a_bad_database_url_is_refused_clearly() {
    let output = run(&["check", "--database-url", "mysql://nope"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unsupported database URL scheme"),
        "{stderr}"
    );
}
