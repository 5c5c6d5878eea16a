//! The real `mypay` binary, started as users start it: `serve` on port 0 against its own
//! database, driven over HTTP, stopped with SIGTERM; then `check` and `migrate` on the same
//! database.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use testkit::TestDb;

const BINARY: &str = env!("CARGO_BIN_EXE_mypay");

/// A running `mypay serve` and what it printed on start.
struct Server {
    child: Child,
    base: String,
    admin_key: String,
}

/// Starts `mypay serve` on `database_url`, with its in-process sandbox bank in `bank_data`.
fn serve(database_url: &str, bank_data: &std::path::Path) -> Server {
    let mut child = Command::new(BINARY)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            database_url,
        ])
        .arg("--sandbox-bank-data")
        .arg(bank_data)
        .arg("--account-key-file")
        .arg(bank_data.join("account-keys"))
        .env_remove("MYPAY_ADMIN_API_KEY")
        .env_remove("MYPAY_ACCOUNT_KEYS")
        .env_remove("MYPAY_ACCOUNT_INDEX_KEY")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start mypay serve");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut admin_key = None;
    let base = loop {
        let line = lines
            .next()
            .expect("mypay printed its address")
            .expect("read stdout");
        if let Some(key) = line.strip_prefix("created admin API key (shown only now): ") {
            admin_key = Some(key.to_owned());
        }
        if let Some(address) = line.strip_prefix("listening on ") {
            break address.to_owned();
        }
    };
    Server {
        child,
        base,
        admin_key: admin_key.expect("a fresh database gets an admin key, printed once"),
    }
}

impl Server {
    /// Sends SIGTERM and waits: the server must drain and exit cleanly.
    fn stop(mut self) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(killed.success(), "could not signal mypay");
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().expect("poll mypay") {
                assert!(status.success(), "mypay exited with {status} after SIGTERM");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("mypay did not exit within 5 s of SIGTERM");
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
    let mut again = Command::new(BINARY)
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &url])
        .env_remove("MYPAY_ADMIN_API_KEY")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let first_line = BufReader::new(again.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    assert!(first_line.starts_with("listening on "), "{first_line}");
    let _ = again.kill();
    let _ = again.wait();
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
