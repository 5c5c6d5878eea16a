//! Real `mypay serve` processes on one database (SQLite file, or PostgreSQL with
//! `MYPAY_TEST_DATABASE_URL`) running the scheduler and the job worker with schedules every
//! second. Two at once: each slot is enqueued once, every job runs exactly once, and the
//! settlement and reconciliation schedules settle and reconcile the previous day. One killed (SIGKILL) while jobs drain: after a
//! restart every job it held runs again and ends done, none is dead, and the day is settled at
//! most once.

mod support;

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::Process;
use testkit::TestDb;

const ADMIN_KEY: &str = "mpk_test_admin_key_0123456789abcdefghijklmnopqrstu";

/// Starts `mypay serve` on `database_url` with schedules every second, its own sandbox bank and
/// PSP in `data`, claiming jobs for `lease_s`; answers the process and its base URL.
fn serve(database_url: &str, data: &Path, lease_s: &str) -> (Process, String) {
    let bank = data.join("bank");
    let psp = data.join("psp");
    let keys = data.join("account-keys");
    let started = support::start(
        [
            OsStr::new("serve"),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--database-url"),
            OsStr::new(database_url),
            OsStr::new("--admin-api-key"),
            OsStr::new(ADMIN_KEY),
            OsStr::new("--sandbox-bank-data"),
            bank.as_os_str(),
            OsStr::new("--sandbox-psp-data"),
            psp.as_os_str(),
            OsStr::new("--account-key-file"),
            keys.as_os_str(),
            OsStr::new("--schedule"),
            OsStr::new("ledger-check=* * * * * *"),
            OsStr::new("--schedule"),
            OsStr::new("settlement=* * * * * *"),
            OsStr::new("--schedule"),
            OsStr::new("reconciliation=* * * * * *"),
            OsStr::new("--job-lease-s"),
            OsStr::new(lease_s),
        ],
        "listening on ",
    );
    (started.process, started.ready)
}

async fn get(client: &reqwest::Client, base: &str, path: &str) -> (u16, Value) {
    let response = client
        .get(format!("{base}{path}"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

/// The jobs of `kind` in `state`, as the admin API lists them.
async fn jobs(client: &reqwest::Client, base: &str, kind: &str, state: &str) -> Vec<Value> {
    let (status, page) = get(
        client,
        base,
        &format!("/v1/admin/jobs?kind={kind}&state={state}&limit=500"),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page["data"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_run_each_scheduled_job_once() {
    let test = TestDb::new(2).await;
    let url = test.url.to_string();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (first, base) = serve(&url, dirs[0].path(), "3600");
    let (second, _) = serve(&url, dirs[1].path(), "3600");
    let client = reqwest::Client::new();

    // Wait until both schedules have had a few slots run.
    let mut done = Vec::new();
    for _ in 0..120 {
        done = jobs(&client, &base, "ledger.check", "done").await;
        let settled = jobs(&client, &base, "settlement.run_day", "done").await;
        let reconciled = jobs(&client, &base, "reconciliation.run_day", "done").await;
        if done.len() >= 4 && !settled.is_empty() && !reconciled.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(done.len() >= 4, "scheduled jobs ran: {done:?}");
    first.stop();
    second.stop();

    // Every job that ran ran once, whichever server took it, and no slot was enqueued twice.
    let pool = test.db.pool();
    let scalar = |sql: &'static str| async move {
        let row = sqlx::query(sql).fetch_one(pool).await.expect(sql);
        sqlx::Row::try_get::<i64, _>(&row, 0).expect("a count")
    };
    let twice = scalar(
        "SELECT COUNT(*) FROM (SELECT job_id FROM job_attempts GROUP BY job_id \
         HAVING COUNT(*) > 1) AS repeated",
    )
    .await;
    assert_eq!(twice, 0, "a job ran twice");
    let duplicated = scalar(
        "SELECT COUNT(*) FROM (SELECT unique_key FROM jobs GROUP BY kind, unique_key \
         HAVING COUNT(*) > 1) AS repeated",
    )
    .await;
    assert_eq!(duplicated, 0, "a slot was enqueued twice");
    assert_eq!(
        scalar("SELECT COUNT(*) FROM jobs WHERE state = 'dead'").await,
        0
    );
    let workers = scalar("SELECT COUNT(DISTINCT worker) FROM job_attempts").await;
    let ran = scalar("SELECT COUNT(*) FROM job_attempts").await;
    println!("{ran} attempts by {workers} workers");
    // The settlement schedule settled the previous day (no merchants: an empty run).
    assert!(scalar("SELECT COUNT(*) FROM settlement_runs").await >= 1);
    // The reconciliation schedule reconciled it too: a quiet day, matched.
    assert!(scalar("SELECT COUNT(*) FROM reconciliation_runs WHERE status = 'matched'").await >= 1);
}

/// A count from the database.
async fn count(test: &TestDb, sql: &str) -> i64 {
    let row = sqlx::query(sql).fetch_one(test.db.pool()).await.expect(sql);
    sqlx::Row::try_get::<i64, _>(&row, 0).expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_while_jobs_drain_leaves_each_effect_once() {
    let test = TestDb::new(2).await;
    let url = test.url.to_string();
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = serve(&url, dir.path(), "2");
    // Kill it with SIGKILL once jobs are flowing: nothing drains, a claimed job may be cut off.
    for _ in 0..120 {
        if count(&test, "SELECT COUNT(*) FROM jobs WHERE state = 'done'").await >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.kill();
    let enqueued = count(&test, "SELECT COUNT(*) FROM jobs").await;
    assert!(enqueued >= 2, "jobs were enqueued before the kill");

    // Restarted, the server finishes every invariant check enqueued before the kill: a claim
    // the dead process held runs out after its 2 s lease and the job runs again.
    let (server, _) = serve(&url, dir.path(), "2");
    let checks = |state: &str| {
        format!(
            "SELECT COUNT(*) FROM jobs WHERE kind = 'ledger.check' AND state = '{state}' \
             AND id IN (SELECT id FROM jobs ORDER BY id LIMIT {enqueued})"
        )
    };
    let before_kill = count(&test, &checks("queued")).await
        + count(&test, &checks("running")).await
        + count(&test, &checks("done")).await;
    let mut done = 0;
    for _ in 0..300 {
        done = count(&test, &checks("done")).await;
        if done == before_kill {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop();
    assert_eq!(
        done, before_kill,
        "every check enqueued before the kill ended done"
    );
    assert_eq!(
        count(&test, "SELECT COUNT(*) FROM jobs WHERE state = 'dead'").await,
        0
    );
    // Each effect once: at most one settlement run for the day, however often its jobs ran.
    assert!(count(&test, "SELECT COUNT(*) FROM settlement_runs").await <= 1);
}
