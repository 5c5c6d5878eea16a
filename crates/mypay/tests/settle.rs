//! `mypay settle` as users run it: a day settled on a fresh database with the in-process
//! sandbox bank prints its summary and writes its report; running it again writes the same
//! report; a bad date and a day not over yet are refused with a non-zero exit.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::BINARY;
use testkit::TestDb;

fn settle(url: &str, data: &Path, date: &str) -> Output {
    Command::new(BINARY)
        .args(["settle", "--date", date, "--database-url", url])
        .arg("--report-dir")
        .arg(data.join("reports"))
        .arg("--sandbox-bank-data")
        .arg(data.join("sandbox-bank"))
        .arg("--account-key-file")
        .arg(data.join("account-keys"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("run mypay settle")
}

#[tokio::test]
async fn settle_runs_a_day_once_and_writes_the_same_report_again() {
    let test_db = TestDb::new(2).await;
    let url = test_db.url.expose_secret();
    let data = tempfile::tempdir().expect("data directory");

    let first = settle(&url, data.path(), "2026-01-05");
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        stdout.contains("settled 2026-01-05: completed — 0 settlements: 0 paid, 0 paying, 0 failed, 0 carried over"),
        "{stdout}"
    );
    let path = data.path().join("reports/settlement-2026-01-05.csv");
    let report = std::fs::read_to_string(&path).expect("the report file");
    assert_eq!(report, format!("{}\n", settlement::CSV_HEADER));

    let again = settle(&url, data.path(), "2026-01-05");
    assert!(again.status.success());
    assert_eq!(String::from_utf8_lossy(&again.stdout), stdout);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), report);

    for (date, expected) in [
        ("2026-02-30", "is not a date written YYYY-MM-DD"),
        ("2999-01-01", "not over yet"),
        ("2026-01-04", "precedes the settled date 2026-01-05"),
    ] {
        let refused = settle(&url, data.path(), date);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{date}");
        assert!(stderr.contains(expected), "{date}: {stderr}");
    }
}
