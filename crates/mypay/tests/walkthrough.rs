//! The README's walk-through, run as written: the commands between its `walkthrough:begin` and
//! `walkthrough:end` markers, in bash, against `mypay serve` and `mypay sandbox-bank` started as
//! separate processes, on the database `MYPAY_TEST_DATABASE_URL` names. The commands check
//! their own results (`jq -e`), so a README that drifts from the server fails here.

mod support;

use std::ffi::OsStr;
use std::process::Command;

use testkit::TestDb;

const README: &str = include_str!("../../../README.md");
const ADMIN_KEY: &str = "mpk_walkthrough_admin_key_0123456789abcdef";

/// The shell commands of the walk-through, without their Markdown fences.
fn walkthrough_script() -> String {
    let begin = README
        .find("<!-- walkthrough:begin -->")
        .expect("the README marks where the walk-through begins");
    let end = README
        .find("<!-- walkthrough:end -->")
        .expect("the README marks where the walk-through ends");
    README[begin..end]
        .lines()
        .skip(1)
        .filter(|line| !line.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walk_through_runs_as_written() {
    let test_db = TestDb::new(2).await;
    let url = test_db.url.expose_secret();
    let dir = tempfile::tempdir().unwrap();
    let bank_data = dir.path().join("bank");
    let bank = support::start(
        [
            OsStr::new("sandbox-bank"),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--data"),
            bank_data.as_os_str(),
        ],
        "sandbox bank listening on ",
    );
    let key_file = dir.path().join("account-keys");
    let psp_data = dir.path().join("psp");
    let server = support::start(
        [
            OsStr::new("serve"),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--database-url"),
            OsStr::new(&url),
            OsStr::new("--bank-url"),
            OsStr::new(&bank.ready),
            OsStr::new("--admin-api-key"),
            OsStr::new(ADMIN_KEY),
            OsStr::new("--account-key-file"),
            key_file.as_os_str(),
            OsStr::new("--sandbox-psp-data"),
            psp_data.as_os_str(),
        ],
        "listening on ",
    );

    let output = Command::new("bash")
        .arg("-c")
        .arg(walkthrough_script())
        .env("MYPAY", &server.ready)
        .env("BANK", &bank.ready)
        .env("ADMIN_KEY", ADMIN_KEY)
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the walk-through failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    let kinds: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("mtx_"))
        .map(|line| line.split(' ').nth(1).unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["payout", "transfer_out", "charge"], "{stdout}");

    server.process.stop();
    bank.process.stop();
    let check = Command::new(support::BINARY)
        .args(["check", "--database-url", &url])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run mypay check");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}
