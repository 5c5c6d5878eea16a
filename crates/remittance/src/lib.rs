//! Business remittance (사업자 송금, seed 002): business A's money collected into the
//! platform's master account, deposited into the platform ledger, withdrawn and paid out to
//! business B.
//!
//! A request is recorded with a unique number (`rem_…`) and, in the same transaction, the job
//! of its first step. Each step is a job of its own (`remittance.collect`, `.deposit`,
//! `.withdraw`, `.payout`, and `.return` on the way back); a step that succeeds moves the
//! remittance on, writes its record and enqueues the next step's job in one database
//! transaction, so the chain can neither skip nor repeat a step. Every failed attempt is
//! counted on the step's failure record; a step's job retries at a fixed pause (3 × 10 s by
//! default) and is then a dead letter; the retry batch re-queues dead steps from the failure
//! records a few times (3 by default), then they wait for an operator; the monitor alerts on
//! every remittance not finished 10 minutes after it was requested.
//!
//! Exactly once: every effect carries an id derived from the remittance's — bank transfers
//! `(remittance, {id}:{step})`, ledger transactions and holds `{id}.deposit`, `{id}.payout`,
//! `{id}.paid`, `{id}.return`, `{id}.returned` — so a step run again (after a crash, a lost
//! outcome or an operator's retry) is a replay: B is paid at most once, and A's money is
//! returned only after B's payout was refused.
//!
//! Architecture invariants: remittance knows no HTTP and no bank protocol (it moves money only
//! through `BankTransfers` and the ledger); it reads businesses only through `Merchants`;
//! money is held in the ledger (`liability:remittance:held`, never negative) from its deposit
//! until a payout's outcome is known; a refused collect moves nothing; a remittance's state
//! only moves forward, under a conditional update.

#![forbid(unsafe_code)]

mod domain;
mod error;
mod jobs;
mod service;
mod store;

pub use crate::jobs::{register, MONITOR, RETRY_FAILURES};
pub use domain::{
    Failure, NewRemittance, Record, Remittance, RemittanceConfig, RemittanceId, RemittanceState,
    Step, MEMO_CHARS_MAX,
};
pub use error::RemittanceError;
pub use service::{
    FaultAt, MonitorPass, RemittanceDetail, Remittances, StepFailure, StepFaults, BATCH_MAX,
    HELD_ACCOUNT, MASTER_ACCOUNT, REMITTANCE_CURRENCY, TRANSFER_OWNER,
};
