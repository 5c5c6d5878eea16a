//! Running the real `mypay` binary from tests: start a subcommand, wait until it says it is
//! ready, stop it the way an operator does (SIGTERM) and insist that it exits cleanly.

#![allow(dead_code)] // Each test file uses the part it needs.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BINARY: &str = env!("CARGO_BIN_EXE_mypay");

/// A running `mypay` subcommand.
pub struct Process {
    child: Child,
    name: String,
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
    let name = format!("mypay {}", args[0].to_string_lossy());
    let mut child = Command::new(BINARY)
        .args(&args)
        .env_remove("MYPAY_ADMIN_API_KEY")
        .env_remove("MYPAY_ACCOUNT_KEYS")
        .env_remove("MYPAY_ACCOUNT_INDEX_KEY")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
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
    Started {
        process: Process { child, name },
        ready,
        before,
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
    }
}
