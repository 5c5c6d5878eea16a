//! Settlement (정산): the daily batch that pays each merchant what its payable account holds
//! at the day's cutoff, less fees, to its settlement bank account.
//!
//! A settlement date is a KST business date D; its cutoff is D+1 00:00 KST. A merchant's
//! settlement of D takes from payable everything posted there before the cutoff that earlier
//! settlements did not take (sales, escrow releases, refunds, and nets returned by refused
//! payouts), charges its fee on the sales credited since its last fee-charging settlement, and
//! pays the rest out through the wallet's bank transfer executor. A zero or negative net is
//! carried over: nothing is booked, the next settlement takes it.
//!
//! Every step is repeatable: the figures are fixed when the settlement is first recorded
//! (unique per merchant and date), and its ledger transaction, payout hold, bank transfer and
//! return all carry ids derived from the settlement's, so running a day twice is a replay.
//!
//! Architecture invariants: settlement knows no HTTP and no bank protocol (it pays only through
//! `BankTransfers`); it reads merchants only through `Merchants`; amounts are integers in minor
//! units and fees integer basis points, never floats; no day is settled twice, and a day is
//! never settled after a later one; a payout is held in the ledger until the bank's outcome is
//! known, posted on success and returned to payable on refusal.

#![forbid(unsafe_code)]

mod domain;
mod error;
mod service;
mod store;

pub use domain::{
    csv_report, fee_of, figures, Balances, Figures, Run, RunState, RunTotals, Settlement,
    SettlementDate, SettlementId, SettlementState, CSV_HEADER, LEDGER_PREFIX,
};
pub use error::SettlementError;
pub use service::{
    report_path, DayReport, Progress, SettlementConfig, Settlements, FEES_INCOME, IN_TRANSIT,
    LEASE, MASTER_ACCOUNT, RESOLVE_BATCH_MAX, SETTLEMENT_CURRENCY, TRANSFER_OWNER,
};
