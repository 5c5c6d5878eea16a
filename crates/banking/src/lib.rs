//! Banking for mypay: the bank gateway, its HTTP adapter and the sandbox bank.
//!
//! - [`BankGateway`] is everything mypay asks of a bank: a holder-name inquiry, debit consents,
//!   collect (withdraw from a member's account into the platform's master account), payout
//!   (deposit into any account), a transfer-result inquiry by our own request id, and the master
//!   account's daily statement. It is object-safe: the application holds an
//!   `Arc<dyn BankGateway>`.
//! - [`HttpBank`] implements it over HTTP with an API shaped after the Korean open-banking API.
//! - [`sandbox`] is a bank that speaks that API: its own accounts and balances in a data
//!   directory, and faults on demand. `mypay sandbox-bank` runs it as a server of its own;
//!   [`sandbox::spawn`] runs it in-process.
//!
//! Architecture invariants: this crate knows nothing of the ledger, members or fees booked; it
//! reports what the bank said and nothing more. A call that moves money ends `Succeeded`,
//! `Failed` (the bank refused, nothing moved) or `Unknown`; a timeout, a dropped connection or an
//! unreadable reply is `Unknown`, never `Failed`. Account numbers and holder names never appear in
//! `Debug` output or logs unmasked.

#![forbid(unsafe_code)]

mod account;
mod error;
mod gateway;
mod http;
pub mod kst;
pub mod sandbox;
mod tran_id;
mod transfer;
mod wire;

pub use account::{
    AccountNumber, BankAccount, BankCode, HolderName, PayerNumber, ACCOUNT_NUMBER_DIGITS_MAX,
    ACCOUNT_NUMBER_DIGITS_MIN, HOLDER_NAME_CHARS_MAX, PAYER_NUMBER_LEN_MAX,
};
pub use error::{BankError, InvalidValue, RefusalCode};
pub use gateway::{
    BankFees, BankGateway, CollectRequest, DebitConsent, EntryDirection, InquiryOutcome,
    PayoutRequest, RealNameOutcome, StatementCursor, StatementEntry, StatementPage, TransferKind,
    TransferOutcome, TransferQuery,
};
pub use http::{
    ClientBuildError, HttpBank, HttpBankConfig, CONNECT_TIMEOUT_DEFAULT, TIMEOUT_DEFAULT,
};
pub use tran_id::{BankTranId, BankTranIdGenerator, InstitutionCode};
pub use transfer::{Memo, TransferAmount, MEMO_CHARS_MAX, TRANSFER_AMOUNT_WON_MAX};
