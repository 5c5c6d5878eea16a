//! What a test run leaves behind for the leak scan (`.ci/leak-scan.py`), when
//! `MYPAY_TEST_ARTIFACTS=DIR` is set. Without it every function here does nothing.
//!
//! - `DIR/logs/`: the log of every test binary that creates a [`crate::TestDb`] (one JSON object
//!   per line, `RUST_LOG` or [`DEFAULT_LOG_FILTER`]), and the stderr of the `mypay` processes
//!   the binary's tests start ([`subprocess_log`]);
//! - `DIR/db/`: every test database as it was when the test ended: a SQLite copy taken with
//!   `VACUUM INTO`, or a PostgreSQL database's `pg_dump` (JSON lines per table without it);
//! - `DIR/reports/`: files mypay writes, such as settlement CSV reports ([`report_dir`]);
//! - `DIR/sensitive/`: what the scan looks for: the account numbers the tests used and the
//!   secrets they handled, recorded by the test helpers ([`record_account_number`],
//!   [`record_secret`]). Never scanned itself.
//!
//! The sandbox bank's and PSP's data directories are the counterparties' books, not ours, and
//! are not kept.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once, OnceLock};

/// The environment variable naming the artifacts directory.
pub const TEST_ARTIFACTS_ENV: &str = "MYPAY_TEST_ARTIFACTS";

/// The log filter when `RUST_LOG` is unset: debug everywhere except the HTTP and TLS plumbing
/// (connection pool chatter, frames) and sqlx's per-statement lines, which carry SQL text with
/// `$N` placeholders and never a bound value, and would multiply the volume.
pub const DEFAULT_LOG_FILTER: &str = "debug,sqlx=info,hyper=info,hyper_util=info,h2=info,\
     reqwest=info,rustls=info,tower=info,tokio_util=info,want=info,mio=info,async_nats=info,\
     redis=info,tungstenite=info";

/// The artifacts directory with its subdirectories created, or `None` when the variable is
/// unset or empty.
pub fn dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(std::env::var_os(TEST_ARTIFACTS_ENV)?);
        if dir.as_os_str().is_empty() {
            return None;
        }
        for sub in ["logs", "db", "reports", "sensitive"] {
            std::fs::create_dir_all(dir.join(sub))
                .unwrap_or_else(|e| panic!("cannot create {}/{sub}: {e}", dir.display()));
        }
        Some(dir)
    })
    .as_deref()
}

/// Whether artifacts are kept.
pub fn enabled() -> bool {
    dir().is_some()
}

/// The running test binary's file name, e.g. `wallets-1a2b3c4d5e6f7a8b`.
pub fn binary_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "test".to_owned())
}

/// The current test's name as the harness names its thread (`module::test`), made safe for a
/// file name; `main` outside a test thread.
pub fn test_name() -> String {
    let name = std::thread::current()
        .name()
        .unwrap_or("main")
        .replace("::", ".");
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect()
}

/// The filter for test logs: `RUST_LOG` when set, else [`DEFAULT_LOG_FILTER`].
pub fn log_filter() -> String {
    std::env::var("RUST_LOG")
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| DEFAULT_LOG_FILTER.to_owned())
}

/// Installs, once per test binary, a subscriber writing JSON lines to
/// `DIR/logs/<binary>-<pid>.log`. Does nothing without the artifacts directory, or when the
/// binary already has a global subscriber.
pub fn install_logging() {
    static INSTALL: Once = Once::new();
    let Some(dir) = dir() else {
        return;
    };
    INSTALL.call_once(|| {
        let path = dir
            .join("logs")
            .join(format!("{}-{}.log", binary_name(), std::process::id()));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        let filter = tracing_subscriber::EnvFilter::try_new(log_filter())
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug"));
        // Unbuffered: every event is one write, so nothing is lost when the binary exits.
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_thread_names(true)
            .with_writer(Mutex::new(file))
            .try_init();
    });
}

/// A file for the stderr of a subprocess labelled `label` (e.g. `serve`), in `DIR/logs/`.
pub fn subprocess_log(label: &str) -> Option<File> {
    static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = dir()?;
    let n = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let path = dir.join("logs").join(format!(
        "{}-{}-{label}-{n}.log",
        binary_name(),
        std::process::id()
    ));
    Some(
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display())),
    )
}

/// A fresh directory under `DIR/reports/` for the files a server under test writes.
pub fn report_dir() -> Option<PathBuf> {
    let dir = dir()?.join("reports").join(format!(
        "{}__{}__{}",
        binary_name(),
        test_name(),
        ulid::Ulid::new().to_string().to_lowercase()
    ));
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir)
}

/// Copies the files of `from` (recursively) into a fresh [`report_dir`], for servers that
/// write outside it.
pub fn keep_files(from: &Path) {
    let Some(to) = report_dir() else {
        return;
    };
    let _ = copy_tree(from, &to);
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Appends `line` to `DIR/sensitive/<file>` once per process.
fn record(file: &str, line: String) {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let Some(dir) = dir() else {
        return;
    };
    if line.is_empty() || line.contains('\n') {
        return;
    }
    let key = format!("{file}\t{line}");
    let mut seen = SEEN.get_or_init(Default::default).lock().expect("seen");
    if !seen.insert(key) {
        return;
    }
    let path = dir.join("sensitive").join(file);
    // One short write per line to a file opened for appending: lines of concurrent test
    // binaries never interleave.
    if let Ok(mut out) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = out.write_all(format!("{line}\n").as_bytes());
    }
}

/// Records an account number a test used (as given: the scan also looks for it without and
/// with separators), so the scan can look for it.
pub fn record_account_number(number: &str) {
    if enabled() {
        record("account_numbers.txt", number.trim().to_owned());
    }
}

/// Records a secret a test handled: `kind` is a word such as `api_key`, `session_token`,
/// `password`, `account_keys`.
pub fn record_secret(kind: &str, secret: &str) {
    if enabled() {
        record("secrets.tsv", format!("{kind}\t{}", secret.trim()));
    }
}

/// Where the dump of the test database `name` goes: `DIR/db/<binary>__<test>__<name>.<ext>`.
pub(crate) fn dump_path(test: &str, name: &str, ext: &str) -> Option<PathBuf> {
    Some(
        dir()?
            .join("db")
            .join(format!("{}__{test}__{name}.{ext}", binary_name())),
    )
}
