//! `mypay reconcile` as users run it: a quiet day on a fresh database with the in-process
//! sandbox bank and PSP reconciles with safeguarding ok and prints the same summary when run
//! again; a wrong float shows as a safeguarding excess with exit code 2; a bad date and a day
//! not begun are refused.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::BINARY;
use testkit::TestDb;

fn reconcile(url: &str, data: &Path, date: &str, extra: &[&str]) -> Output {
    Command::new(BINARY)
        .args(["reconcile", "--date", date, "--database-url", url])
        .arg("--sandbox-bank-data")
        .arg(data.join("sandbox-bank"))
        .arg("--sandbox-psp-data")
        .arg(data.join("sandbox-psp"))
        .args(extra)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run mypay reconcile")
}

/// Yesterday's KST business date.
fn yesterday() -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000;
    let day = 24 * 3_600 * 1_000_000;
    settlement::SettlementDate::of_instant(i64::try_from(now).unwrap() - day).to_string()
}

#[tokio::test]
async fn reconcile_reports_a_quiet_day_the_same_way_twice_and_flags_a_wrong_float() {
    let test_db = TestDb::new(2).await;
    let url = test_db.url.expose_secret();
    let data = tempfile::tempdir().expect("data directory");
    let date = yesterday();

    let first = reconcile(&url, data.path(), &date, &[]);
    let stdout = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(
        first.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "reconciled {date}: matched — bank 0 lines, ours 0, 0 matched; PSP 0 lines, ours 0, 0 matched; 0 mismatches"
        )),
        "{stdout}"
    );
    // The sandbox's master account holds only the platform's float, which is its own.
    assert!(
        stdout.contains("safeguarding ok: member money 0 KRW, members' part 0 KRW"),
        "{stdout}"
    );
    let again = reconcile(&url, data.path(), &date, &[]);
    assert!(again.status.success());
    assert_eq!(String::from_utf8_lossy(&again.stdout), stdout);

    // Told the float is nothing, the master account holds a billion won nobody booked.
    let wrong = reconcile(&url, data.path(), &date, &["--safeguarding-own-funds", "0"]);
    let text = String::from_utf8_lossy(&wrong.stdout);
    assert_eq!(wrong.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!("reconciled {date}: MISMATCHED")),
        "{text}"
    );
    assert!(text.contains("safeguarding excess"), "{text}");

    for (date, expected) in [
        ("2026-02-30", "date must be a KST business date"),
        ("2999-01-01", "has not begun yet"),
    ] {
        let refused = reconcile(&url, data.path(), date, &[]);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(1), "{date}: {stderr}");
        assert!(stderr.contains(expected), "{date}: {stderr}");
    }
}
