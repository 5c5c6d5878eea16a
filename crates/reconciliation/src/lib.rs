//! Reconciliation (대사): each KST business day, the bank's statement of the platform's master
//! account and the card processor's transaction report held against what mypay recorded, with
//! every mismatch listed — missing on our side, missing on theirs, amount differs — and the
//! daily safeguarding check: Σ member money equals the members' part of the master account.
//!
//! - The bank side is matched by our request id (`bank_tran_id`), which every collect, payout
//!   and micro-deposit carries and the bank prints on its statement line; amounts are signed
//!   (into the master account positive). Only transfers that succeeded count as ours; a line
//!   the bank has for a transfer we still think pending, unknown or refused is missing on our
//!   side, and says so.
//! - The PSP side is matched by `<order id>:approval` and `<order id>:cancellation`, summed per
//!   key, since the PSP reports each partial cancellation and we record each refund.
//! - Safeguarding: the master account commingles members', merchants' and the platform's
//!   money. The members' part is the bank's closing balance, less the platform's own unbooked
//!   float, less what the ledger's master account holds for everyone but members.
//!
//! A run of a day replaces its earlier result in one transaction; the result depends only on
//! the two sides as read, so running a day twice changes nothing but the run's time.
//!
//! Architecture invariants: reconciliation only reads — it moves no money and changes no
//! record but its own; it reads the bank and the PSP only through their gateways, and our
//! records only through the functions their owners export.

#![forbid(unsafe_code)]

mod domain;
mod error;
mod service;
mod store;

pub use domain::{
    match_lines, safeguarding, Line, Matched, Mismatch, MismatchKind, Safeguarding,
    SafeguardingFigures, Source,
};
pub use error::ReconciliationError;
pub use service::{
    parse_date, DayReport, ReconciliationConfig, Reconciliations, BALANCE_LOOKBACK_DAYS,
    MASTER_ACCOUNT, MEMBER_MONEY_PREFIX, MEMBER_MONEY_SUFFIX, MISMATCHES_STORED_MAX,
    STATEMENT_PAGES_MAX,
};
pub use store::Run;
