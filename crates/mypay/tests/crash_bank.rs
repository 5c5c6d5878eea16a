//! The bank test under crashes: 16 clients move money between accounts and read all balances
//! at once through the ledger API of a real `mypay serve`, while the server is killed with
//! SIGKILL every 1 to 10 seconds and started again on the same address. Then a checker asks:
//!
//! - did every snapshot read sum to the money put in, with no account below zero;
//! - is every acknowledged transfer stored, exactly as it was sent;
//! - did every transfer whose answer was lost (a timeout, a dropped connection, a 5xx) take
//!   effect once or not at all; and
//! - do the final balances and posting counts equal exactly what the stored transfers imply,
//!   so that nothing was applied twice and nothing was applied without being stored?
//!
//! Each configuration runs for `MYPAY_CRASH_SECONDS` (20 by default; CI uses 60). The long run
//! is `MYPAY_CRASH_SECONDS=1800 cargo test --release -p mypay --test crash_bank -- --nocapture`.

mod support;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use testkit::TestDb;

const ADMIN_KEY: &str = "mpk_crash_bank_admin_key_0123456789abcdef";
const CLIENTS: usize = 16;
/// What each account starts with, in won.
const OPENING_BALANCE: i64 = 1_000;
/// Transfers move 1 to this many won, so that with 8 accounts many are refused for funds.
const TRANSFER_MAX: i64 = 300;
/// How long a client waits for an answer before it counts the outcome as unknown.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_accounts_survive_random_sigkills() {
    bank_test(8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_accounts_survive_random_sigkills() {
    bank_test(1_000).await;
}

/// One transfer a client sent: what it asked for and what it heard back.
#[derive(Debug, Clone)]
struct Sent {
    id: String,
    from: usize,
    to: usize,
    amount: i64,
    outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// 201 or 200: the server said it is stored.
    Acknowledged,
    /// 422 `insufficient_funds`: the server said it is not.
    Refused,
    /// The connection was refused before anything was sent: the server was down.
    NotDelivered,
    /// No answer, a broken connection or a 5xx: it may or may not have happened.
    Unknown,
}

/// What the clients saw, shared with the checker.
#[derive(Default)]
struct History {
    sent: Vec<Sent>,
    reads: u64,
    read_failures: u64,
    /// Snapshot reads that broke an invariant, with what was read.
    bad_reads: Vec<String>,
}

/// The server under test: restarted on the address it first bound, so clients keep one URL.
struct Server {
    process: Option<support::Process>,
    address: String,
    url: String,
    dir: std::path::PathBuf,
}

impl Server {
    fn start(database_url: &str, dir: &Path) -> Server {
        let started = serve(database_url, dir, "127.0.0.1:0");
        let address = started
            .ready
            .strip_prefix("http://")
            .expect("the server prints its URL")
            .to_owned();
        Server {
            process: Some(started.process),
            url: started.ready,
            address,
            dir: dir.to_owned(),
        }
    }

    /// SIGKILL, as a crash or an OOM kill would: nothing drains, nothing is flushed.
    fn kill(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill();
        }
    }

    fn restart(&mut self, database_url: &str) {
        assert!(self.process.is_none(), "restart follows a kill");
        let started = serve(database_url, &self.dir, &self.address);
        self.process = Some(started.process);
    }
}

fn serve(database_url: &str, dir: &Path, listen: &str) -> support::Started {
    support::start(
        [
            OsStr::new("serve"),
            OsStr::new("--listen"),
            OsStr::new(listen),
            OsStr::new("--database-url"),
            OsStr::new(database_url),
            OsStr::new("--admin-api-key"),
            OsStr::new(ADMIN_KEY),
            OsStr::new("--account-key-file"),
            dir.join("account-keys").as_os_str(),
            OsStr::new("--sandbox-bank-data"),
            dir.join("bank").as_os_str(),
            OsStr::new("--sandbox-psp-data"),
            dir.join("psp").as_os_str(),
            OsStr::new("--settlement-report-dir"),
            dir.join("reports").as_os_str(),
        ],
        "listening on ",
    )
}

fn crash_seconds() -> u64 {
    std::env::var("MYPAY_CRASH_SECONDS")
        .ok()
        .map(|s| {
            s.parse()
                .expect("MYPAY_CRASH_SECONDS is a number of seconds")
        })
        .unwrap_or(20)
}

async fn bank_test(accounts: usize) {
    let test_db = TestDb::new(2).await;
    let database_url = test_db.url.expose_secret().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(Mutex::new(Server::start(&database_url, dir.path())));
    let url = server.lock().unwrap().url.clone();
    let client = Client::builder().timeout(REQUEST_TIMEOUT).build().unwrap();
    let run = ulid::Ulid::new().to_string().to_lowercase();
    let prefix = format!("crash:{run}:acct:");
    let ids = open_accounts(&client, &url, &run, &prefix, accounts).await;
    let total = OPENING_BALANCE * accounts as i64;

    let seconds = crash_seconds();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let history = Arc::new(Mutex::new(History::default()));
    let killer = {
        let (server, database_url) = (server.clone(), database_url.clone());
        std::thread::spawn(move || kill_until(&server, &database_url, deadline))
    };
    let mut clients = tokio::task::JoinSet::new();
    for n in 0..CLIENTS {
        let (client, url, ids, prefix, history) = (
            client.clone(),
            url.clone(),
            ids.clone(),
            prefix.clone(),
            history.clone(),
        );
        let context = Workload {
            client,
            url,
            ids,
            prefix,
            total,
        };
        clients.spawn(async move { context.run(n, deadline, &history).await });
    }
    clients.join_all().await;
    let kills = killer.join().expect("the killer thread");

    let history = Arc::try_unwrap(history)
        .ok()
        .expect("the clients are done")
        .into_inner()
        .unwrap();
    let verdict = check(&client, &url, &ids, &prefix, total, &history).await;
    let tally = |outcome| history.sent.iter().filter(|s| s.outcome == outcome).count();
    println!(
        "crash_bank accounts={accounts} seconds={seconds} kills={kills} transfers={} acknowledged={} refused={} not_delivered={} unknown={} unknown_applied={} reads={} read_failures={}",
        history.sent.len(),
        tally(Outcome::Acknowledged),
        tally(Outcome::Refused),
        tally(Outcome::NotDelivered),
        tally(Outcome::Unknown),
        verdict.unknown_applied,
        history.reads,
        history.read_failures,
    );
    assert!(
        kills >= 1 || seconds < 2,
        "the server was killed at least once"
    );
    assert!(
        tally(Outcome::Acknowledged) > 0,
        "some transfers were acknowledged"
    );
    assert!(history.reads > 0, "some snapshots were read");

    server.lock().unwrap().process.take().unwrap().stop();
    let check = Command::new(support::BINARY)
        .args(["check", "--database-url", &database_url])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run mypay check");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

/// Kills the server at random every 1 to 10 s and starts it again, until the deadline; answers
/// how many times it killed it. The server is up when this returns.
fn kill_until(server: &Mutex<Server>, database_url: &str, deadline: Instant) -> u64 {
    let mut kills = 0;
    loop {
        let pause = Duration::from_millis(rand::rng().random_range(1_000..=10_000));
        if Instant::now() + pause >= deadline {
            std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
            return kills;
        }
        std::thread::sleep(pause);
        let mut server = server.lock().unwrap();
        server.kill();
        kills += 1;
        server.restart(database_url);
    }
}

/// Opens the accounts (each guarded against going negative) and funds each from a source
/// outside the prefix, so that the prefix's total is exactly `OPENING_BALANCE × count`.
async fn open_accounts(
    client: &Client,
    url: &str,
    run: &str,
    prefix: &str,
    count: usize,
) -> Vec<String> {
    let source = open(client, url, &format!("crash:{run}:source"), "asset", false).await;
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let id = open(client, url, &format!("{prefix}{i:04}"), "liability", true).await;
        let funding = transfer_body(&format!("fund-{i}"), &source, &id, OPENING_BALANCE);
        let (status, body) = post(client, url, "/v1/ledger/transactions", &funding).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(id);
    }
    ids
}

async fn open(client: &Client, url: &str, code: &str, kind: &str, guarded: bool) -> String {
    let flags = if guarded {
        json!(["must_not_go_negative"])
    } else {
        json!([])
    };
    let request = json!({"code": code, "kind": kind, "currency": "KRW", "flags": flags});
    let (status, body) = post(client, url, "/v1/ledger/accounts", &request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn post(client: &Client, url: &str, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = client
        .post(format!("{url}{path}"))
        .bearer_auth(ADMIN_KEY)
        .json(body)
        .send()
        .await
        .expect("the server is up during setup");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn transfer_body(id: &str, from: &str, to: &str, amount: i64) -> Value {
    json!({"id": id, "postings": [
        {"account_id": from, "direction": "debit", "amount": amount.to_string(), "currency": "KRW"},
        {"account_id": to, "direction": "credit", "amount": amount.to_string(), "currency": "KRW"},
    ]})
}

/// What every client shares.
struct Workload {
    client: Client,
    url: String,
    ids: Vec<String>,
    prefix: String,
    total: i64,
}

impl Workload {
    /// One client: three transfers for every snapshot read, until the deadline.
    async fn run(&self, n: usize, deadline: Instant, history: &Mutex<History>) {
        let mut seq = 0u64;
        while Instant::now() < deadline {
            let read = rand::rng().random_bool(0.25);
            let down = if read {
                self.read(history).await
            } else {
                seq += 1;
                let sent = self.transfer(&format!("t-{n}-{seq}")).await;
                let down = sent.outcome == Outcome::NotDelivered;
                history.lock().unwrap().sent.push(sent);
                down
            };
            if down {
                // The server is restarting; asking again at once would only spin.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Sends one random transfer and classifies its answer.
    async fn transfer(&self, id: &str) -> Sent {
        let (from, to, amount) = {
            let mut rng = rand::rng();
            let from = rng.random_range(0..self.ids.len());
            let to = (from + rng.random_range(1..self.ids.len())) % self.ids.len();
            (from, to, rng.random_range(1..=TRANSFER_MAX))
        };
        let body = transfer_body(id, &self.ids[from], &self.ids[to], amount);
        let response = self
            .client
            .post(format!("{}/v1/ledger/transactions", self.url))
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
            .await;
        let outcome = match response {
            Err(error) if error.is_connect() => Outcome::NotDelivered,
            Err(_) => Outcome::Unknown,
            Ok(response) => classify(response).await,
        };
        Sent {
            id: id.to_owned(),
            from,
            to,
            amount,
            outcome,
        }
    }

    /// Reads every account in one snapshot and records whether it holds the invariants; answers
    /// whether the server looked down.
    async fn read(&self, history: &Mutex<History>) -> bool {
        let response = self
            .client
            .get(format!("{}/v1/ledger/balances", self.url))
            .query(&[("code_prefix", self.prefix.as_str())])
            .bearer_auth(ADMIN_KEY)
            .send()
            .await;
        let snapshot = match response {
            Ok(response) if response.status() == StatusCode::OK => {
                response.json::<Value>().await.ok()
            }
            _ => None,
        };
        let mut history = history.lock().unwrap();
        let Some(snapshot) = snapshot else {
            history.read_failures += 1;
            return true;
        };
        history.reads += 1;
        if let Err(problem) = snapshot_holds(&snapshot, self.ids.len(), self.total) {
            history.bad_reads.push(problem);
        }
        false
    }
}

/// An answer the server gave, as the client must understand it.
async fn classify(response: reqwest::Response) -> Outcome {
    let status = response.status();
    if status == StatusCode::CREATED || status == StatusCode::OK {
        return Outcome::Acknowledged;
    }
    if status.is_server_error() {
        return Outcome::Unknown;
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(
        status == StatusCode::UNPROCESSABLE_ENTITY && body["error"]["code"] == "insufficient_funds",
        "a transfer was refused for a reason the workload never gives: {status} {body}"
    );
    Outcome::Refused
}

/// A snapshot must list every account, sum to the total and hold nothing below zero.
fn snapshot_holds(snapshot: &Value, accounts: usize, total: i64) -> Result<(), String> {
    let entries = snapshot["data"].as_array().ok_or("no data")?;
    let balances: Vec<i64> = entries.iter().map(|entry| won(&entry["posted"])).collect();
    let sum: i64 = balances.iter().sum();
    if entries.len() != accounts || sum != total || balances.iter().any(|b| *b < 0) {
        return Err(format!(
            "{} accounts summing to {sum} (expected {accounts} summing to {total}): {balances:?}",
            entries.len()
        ));
    }
    Ok(())
}

fn won(value: &Value) -> i64 {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("an amount string, got {value}"))
}

/// What the checker found beyond its assertions.
struct Verdict {
    unknown_applied: usize,
}

/// Resolves every transfer against the stored journal and checks the final state against it.
async fn check(
    client: &Client,
    url: &str,
    ids: &[String],
    prefix: &str,
    total: i64,
    history: &History,
) -> Verdict {
    assert!(
        history.bad_reads.is_empty(),
        "{} snapshot reads broke an invariant, e.g. {}",
        history.bad_reads.len(),
        history.bad_reads[0]
    );
    let mut stored = HashMap::new();
    let mut unknown_applied = 0;
    for sent in &history.sent {
        let found = stored_transfer(client, url, &sent.id).await;
        match (sent.outcome, &found) {
            (Outcome::Acknowledged, None) => panic!("acknowledged {} is not stored", sent.id),
            (Outcome::Refused | Outcome::NotDelivered, Some(_)) => {
                panic!("{} was {:?} but is stored", sent.id, sent.outcome)
            }
            (Outcome::Unknown, Some(_)) => unknown_applied += 1,
            _ => {}
        }
        if let Some(postings) = found {
            let expected = (ids[sent.from].clone(), ids[sent.to].clone(), sent.amount);
            assert_eq!(postings, expected, "{} is stored as it was sent", sent.id);
            stored.insert(sent.id.clone(), sent);
        }
    }

    // The final state is exactly the opening balances plus the stored transfers, once each.
    let mut expected = vec![OPENING_BALANCE; ids.len()];
    for sent in stored.values() {
        expected[sent.from] -= sent.amount;
        expected[sent.to] += sent.amount;
    }
    let (status, snapshot) = get(
        client,
        url,
        &format!("/v1/ledger/balances?code_prefix={prefix}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{snapshot}");
    snapshot_holds(&snapshot, ids.len(), total).unwrap();
    let by_id: HashMap<&str, (i64, i64)> = snapshot["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["account_id"].as_str().unwrap(),
                (won(&entry["posted"]), won(&entry["held"])),
            )
        })
        .collect();
    let mut postings = 0u64;
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            by_id[id.as_str()],
            (expected[i], 0),
            "account {i}'s balance"
        );
        let (_, account) = get(client, url, &format!("/v1/ledger/accounts/{id}")).await;
        postings += account["posting_count"].as_u64().unwrap();
    }
    // One funding posting per account, and two per stored transfer: nothing applied twice.
    assert_eq!(postings, ids.len() as u64 + 2 * stored.len() as u64);
    Verdict { unknown_applied }
}

/// The debited account, the credited account and the amount of a stored transfer, or `None`
/// when no transaction has that id.
async fn stored_transfer(client: &Client, url: &str, id: &str) -> Option<(String, String, i64)> {
    let (status, body) = get(client, url, &format!("/v1/ledger/transactions/{id}")).await;
    if status == StatusCode::NOT_FOUND {
        return None;
    }
    assert_eq!(status, StatusCode::OK, "{body}");
    let postings = body["postings"].as_array().unwrap();
    assert_eq!(postings.len(), 2, "{body}");
    let leg = |direction: &str| {
        postings
            .iter()
            .find(|p| p["direction"] == direction)
            .unwrap_or_else(|| panic!("a {direction} leg in {body}"))
    };
    let (debit, credit) = (leg("debit"), leg("credit"));
    assert_eq!(won(&debit["amount"]), won(&credit["amount"]));
    Some((
        debit["account_id"].as_str().unwrap().to_owned(),
        credit["account_id"].as_str().unwrap().to_owned(),
        won(&debit["amount"]),
    ))
}

async fn get(client: &Client, url: &str, path: &str) -> (StatusCode, Value) {
    let response = client
        .get(format!("{url}{path}"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("the server is up for the checker");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}
