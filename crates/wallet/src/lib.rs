//! Wallets: a member's prepaid money per currency, backed by the ledger account
//! `liability:member:{id}:money:{CUR}`, and every way money moves in and out of it.
//!
//! - [`Wallets`] is the service: balances and history (each entry with its money transaction
//!   number `mtx_…` and the balance after it), charges from a linked account, withdrawals to
//!   the member's own account, payouts to any account after a holder-name check, transfers
//!   between members, automatic top-up, limits, and the resolver for unknown bank outcomes.
//! - [`bank_transfer`] is the bank transfer executor, reusable by anything that sends money
//!   through the bank: recorded before the call, resolved by inquiry, fees booked once.
//! - [`FundingAccounts`] is the port to members' linked bank accounts, implemented elsewhere.
//!
//! Architecture invariants: every movement is one ledger transaction whose id is its `mtx_`
//! number; money bound for or leaving through the bank is held in the ledger while the bank
//! transfer is in flight and posted or released only on a known outcome; an unknown outcome is
//! resolved by inquiry, never by guessing; account numbers are stored and shown only masked.

#![forbid(unsafe_code)]

pub mod bank_transfer;
mod domain;
mod error;
mod funding;
mod points;
mod service;
mod store;

pub use domain::{
    account_label, mask_name, top_up_amount, wallet_currency, EntryKind, LimitKind, Limits,
    MoneyTxId, OperationKind, OperationState, WalletConfig, AUTO_TOP_UP_UNIT_WON_DEFAULT,
    DAILY_CHARGE_WON_DEFAULT, DAILY_OUTGOING_WON_DEFAULT, LIMIT_WON_MAX, MAX_BALANCE_WON_DEFAULT,
    PER_TRANSACTION_WON_DEFAULT, WALLET_CURRENCIES,
};
pub use error::WalletError;
pub use funding::{ChargeSource, FundingAccounts, FundingError, WithdrawalTarget};
pub use points::{Points, POINTS_CURRENCY, REWARDS_ACCOUNT};
pub use service::{
    ChargeRequest, HistoryEntry, MoneyTx, Movement, PaymentDebit, PayoutRequest, Recipient,
    ResolvePass, TransferRequest, WalletBalance, Wallets, WithdrawRequest, ABANDONED_AFTER_MICROS,
    MASTER_ACCOUNT, RESOLVE_BATCH_MAX, RESOLVE_MIN_AGE, TRANSFER_ABANDONED_AFTER_MICROS,
    TRANSFER_OWNER,
};
pub use store::{Operation, RequestKey};
