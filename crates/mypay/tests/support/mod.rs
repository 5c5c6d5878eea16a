//! Running the real `mypay` binary from tests: start a subcommand, wait until it says it is
//! ready, stop it the way an operator does (SIGTERM) and insist that it exits cleanly.
//!
//! With `MYPAY_TEST_ARTIFACTS` set (see `testkit::artifacts`), mypay's own subcommands (all but
//! `sandbox-bank` and `sandbox-psp`, the counterparties) log JSON at debug level to a file in
//! the artifacts directory instead of inheriting stderr, the secrets given on their command
//! line or written to their account-key file are recorded for the leak scan, and the
//! settlement reports they wrote are kept.

#![allow(dead_code)] // Each test file uses the part it needs.

use std::ffi::OsStr;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use testkit::artifacts;

pub const BINARY: &str = env!("CARGO_BIN_EXE_mypay");

/// A running `mypay` subcommand.
pub struct Process {
    child: Child,
    name: String,
    /// The settlement report directory to keep when the process ends (artifacts only).
    reports: Option<PathBuf>,
}

/// What a subcommand printed up to and including the line that says it is ready.
pub struct Started {
    pub process: Process,
    /// The ready line after its prefix, e.g. the address after `listening on `.
    pub ready: String,
    /// The lines printed before the ready line.
    pub before: Vec<String>,
}

/// Starts `mypay ARGS` with `RUST_LOG=warn` and without keys from the environment, and
/// reads its stdout until a line starts with `ready_prefix`.
pub fn start<I, S>(args: I, ready_prefix: &str) -> Started
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let subcommand = args[0].to_string_lossy().into_owned();
    let name = format!("mypay {subcommand}");
    let mut command = Command::new(BINARY);
    command
        .args(&args)
        .env_remove("MYPAY_ADMIN_API_KEY")
        .env_remove("MYPAY_ACCOUNT_KEYS")
        .env_remove("MYPAY_ACCOUNT_INDEX_KEY")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let ours = !subcommand.starts_with("sandbox-");
    if ours {
        if let Some(log) = artifacts::subprocess_log(&subcommand) {
            command
                .env("RUST_LOG", artifacts::log_filter())
                .env("MYPAY_LOG_FORMAT", "json")
                .stderr(log);
        }
    }
    record_secret_args(&args);
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut before = Vec::new();
    let ready = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("{name} exited before it was ready"))
            .expect("read stdout");
        if let Some(rest) = line.strip_prefix(ready_prefix) {
            break rest.to_owned();
        }
        before.push(line);
    };
    let mut reports = None;
    if ours && artifacts::enabled() {
        for line in &before {
            if let Some(key) = line.strip_prefix("created admin API key (shown only now): ") {
                artifacts::record_secret("admin_api_key", key);
            }
        }
        if let Some(file) = flag_value(&args, "--account-key-file") {
            record_key_file(&PathBuf::from(file));
        }
        reports = flag_value(&args, "--settlement-report-dir").map(PathBuf::from);
    }
    Started {
        process: Process {
            child,
            name,
            reports,
        },
        ready,
        before,
    }
}

/// The value after `flag` on a command line.
fn flag_value(args: &[OsString], flag: &str) -> Option<OsString> {
    args.iter()
        .position(|arg| arg == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// Records the secrets given on a command line (artifacts only).
fn record_secret_args(args: &[OsString]) {
    for (flag, kind) in [
        ("--admin-api-key", "admin_api_key"),
        ("--psp-secret-key", "psp_secret_key"),
        ("--secret-key", "psp_secret_key"),
        ("--account-keys", "account_keyring"),
        ("--account-index-key", "account_index_key"),
    ] {
        if let Some(value) = flag_value(args, flag) {
            artifacts::record_secret(kind, &value.to_string_lossy());
        }
    }
}

/// Records the keys of an account-key file (`keys=id:base64,…` and `index=base64`).
fn record_key_file(path: &std::path::Path) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    for line in text.lines().map(str::trim) {
        if let Some(ring) = line.strip_prefix("keys=") {
            for entry in ring.split(',') {
                artifacts::record_secret("account_keyring", entry);
                if let Some((_, key)) = entry.split_once(':') {
                    artifacts::record_secret("account_keyring", key);
                }
            }
        } else if let Some(index) = line.strip_prefix("index=") {
            artifacts::record_secret("account_index_key", index);
        }
    }
}

impl Process {
    /// Sends SIGTERM and waits up to 5 s: the process must drain and exit with success.
    pub fn stop(mut self) {
        let signalled = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(signalled.success(), "could not signal {}", self.name);
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().expect("poll the process") {
                assert!(
                    status.success(),
                    "{} exited with {status} after SIGTERM",
                    self.name
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("{} did not exit within 5 s of SIGTERM", self.name);
    }
}

impl Process {
    /// Kills the process with SIGKILL, as a crash or an OOM kill would: nothing drains.
    pub fn kill(mut self) {
        self.child.kill().expect("kill the process");
        self.child.wait().expect("reap the process");
    }
}

impl Drop for Process {
    /// A test that fails midway must not leave the process running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(reports) = self.reports.take() {
            artifacts::keep_files(&reports);
        }
    }
}
