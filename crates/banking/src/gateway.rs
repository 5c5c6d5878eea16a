//! The bank gateway: everything mypay asks of a bank, as one object-safe trait, with the requests
//! and outcomes it speaks in.
//!
//! The rule that shapes the outcomes: a call that moves money ends in exactly one of three ways.
//! The bank said it was done (`Succeeded`), the bank said no and did nothing (`Failed`), or we do
//! not know (`Unknown`): a timeout, a dropped connection, a server error or an unreadable reply
//! after the request may have reached the bank. `Unknown` is never reported as `Failed`, because
//! a caller that treated it as a failure would give money back that has left, or send it twice.
//! An `Unknown` is resolved with [`BankGateway::transfer_result`], by the same request id, before
//! anything is retried or reversed.

use async_trait::async_trait;
use time::{Date, OffsetDateTime};

use crate::account::{BankAccount, HolderName, PayerNumber};
use crate::error::{BankError, RefusalCode};
use crate::tran_id::BankTranId;
use crate::transfer::{Memo, TransferAmount};

/// What a bank offers the platform. Object-safe, so the application holds an
/// `Arc<dyn BankGateway>` and does not know whether it talks to a real bank or the sandbox.
///
/// Methods that move money return a [`TransferOutcome`] rather than a `Result`, so that every
/// caller has to decide what to do with `Unknown`. The others move nothing and are safe to
/// repeat; they return a `Result` whose error says whether the bank refused or did not answer.
#[async_trait]
pub trait BankGateway: Send + Sync {
    /// A fresh request id for a collect or payout. Store it with the request before calling,
    /// and reuse it for every retry and inquiry of that transfer.
    fn next_tran_id(&self) -> BankTranId;

    /// The name the account is held in (예금주 실명조회), or `NotFound` when the bank has no
    /// such account.
    async fn real_name(&self, account: &BankAccount) -> Result<RealNameOutcome, BankError>;

    /// Registers a member's debit consent (출금이체 동의) under a payer number, after the
    /// member confirmed it (the ARS step). Registering the same payer number for the same
    /// account again succeeds and changes nothing; for another account it is refused with
    /// `consent_conflict`.
    async fn register_consent(&self, consent: &DebitConsent) -> Result<(), BankError>;

    /// Withdraws a payer number's consent, after which collects citing it are refused.
    /// Revoking a revoked consent succeeds; an unknown payer number is `consent_missing`.
    async fn revoke_consent(&self, payer_number: &PayerNumber) -> Result<(), BankError>;

    /// Withdraws money from a member's account into the platform's master account
    /// (출금이체). Needs an active consent for that account under `payer_number`.
    async fn collect(&self, request: &CollectRequest) -> TransferOutcome;

    /// Deposits money from the platform's master account into any account (입금이체).
    async fn payout(&self, request: &PayoutRequest) -> TransferOutcome;

    /// What became of a collect or payout (이체결과조회), found by its request id and request
    /// time. `NotFound` means the bank has not processed it; a retry must then reuse the same id
    /// and request time, because the original may still be on its way.
    async fn transfer_result(&self, query: &TransferQuery) -> Result<InquiryOutcome, BankError>;

    /// One page of the master account's statement for a bank day (KST), oldest first. Pass the
    /// returned cursor to get the next page.
    async fn statement(
        &self,
        date: Date,
        cursor: Option<&StatementCursor>,
    ) -> Result<StatementPage, BankError>;
}

/// The answer of a real-name inquiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RealNameOutcome {
    Found { holder_name: HolderName },
    NotFound,
}

/// A member's consent to be debited, as registered at the bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebitConsent {
    pub payer_number: PayerNumber,
    pub account: BankAccount,
}

/// Which way a transfer moves money relative to the master account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferKind {
    /// From a member's account into the master account (출금이체).
    Collect,
    /// From the master account into any account (입금이체).
    Payout,
}

impl TransferKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferKind::Collect => "collect",
            TransferKind::Payout => "payout",
        }
    }
}

/// A collect: money from `from` into the master account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectRequest {
    /// Our request id; see [`BankGateway::next_tran_id`].
    pub bank_tran_id: BankTranId,
    /// When the request was first made. Sent as `tran_dtime`; the bank keys the id by this
    /// bank day, so a retry sends the original value, even after midnight.
    pub requested_at: OffsetDateTime,
    /// The member's account to debit.
    pub from: BankAccount,
    /// The payer number the member's debit consent is registered under.
    pub payer_number: PayerNumber,
    pub amount: TransferAmount,
    /// Printed on the member's statement.
    pub memo: Memo,
    /// Printed on the master account's statement.
    pub master_memo: Memo,
}

/// A payout: money from the master account into `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutRequest {
    /// Our request id; see [`BankGateway::next_tran_id`].
    pub bank_tran_id: BankTranId,
    /// When the request was first made; see [`CollectRequest::requested_at`].
    pub requested_at: OffsetDateTime,
    /// The account to credit.
    pub to: BankAccount,
    pub amount: TransferAmount,
    /// Printed on the recipient's statement, e.g. the code of a micro-deposit verification.
    pub memo: Memo,
    /// Printed on the master account's statement.
    pub master_memo: Memo,
}

/// How a collect or payout ended, as far as we know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferOutcome {
    /// The bank moved the money.
    Succeeded {
        bank_tran_id: BankTranId,
        amount: TransferAmount,
        /// When the bank executed the transfer; a replayed request reports the original time.
        executed_at: OffsetDateTime,
    },
    /// The bank refused and moved nothing. The request id is spent: a retry uses a new one.
    Failed { code: RefusalCode, message: String },
    /// The request may or may not have been executed. Resolve it with
    /// [`BankGateway::transfer_result`] before retrying (with the same id) or reversing.
    Unknown { reason: String },
}

impl TransferOutcome {
    /// The outcome of sending a transfer *again* (same id, same time) after an inquiry found
    /// nothing: a resend that never reached the bank (`bank_unreachable`) or was turned away
    /// before processing (`request_rejected`) says nothing about the original, which may still
    /// be on its way, so it is `Unknown`, not a refusal. Only a refusal the bank made itself is
    /// final.
    pub fn of_resend(self) -> TransferOutcome {
        match self {
            TransferOutcome::Failed {
                code: RefusalCode::BankUnreachable | RefusalCode::RequestRejected,
                message,
            } => TransferOutcome::Unknown {
                reason: format!("the resend did not reach the bank: {message}"),
            },
            other => other,
        }
    }
}

/// Which transfer a result inquiry asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferQuery {
    pub kind: TransferKind,
    pub bank_tran_id: BankTranId,
    /// The original request's `requested_at`; its bank day is part of the key.
    pub requested_at: OffsetDateTime,
    /// The original amount; the bank checks it against its record.
    pub amount: TransferAmount,
}

/// The answer of a transfer-result inquiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InquiryOutcome {
    /// The transfer was executed.
    Succeeded {
        bank_tran_id: BankTranId,
        amount: TransferAmount,
        executed_at: OffsetDateTime,
    },
    /// The bank refused the transfer; nothing moved.
    Failed { code: RefusalCode, message: String },
    /// The bank has no transfer under this id on that day: it never arrived, or has not been
    /// processed yet.
    NotFound,
}

/// An opaque position in a statement, as returned by the bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementCursor(String);

impl StatementCursor {
    /// Wraps a cursor that was stored earlier.
    pub fn new(value: String) -> StatementCursor {
        StatementCursor(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One page of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementPage {
    pub entries: Vec<StatementEntry>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<StatementCursor>,
    /// The account's balance when the page was read (잔액), when the bank said.
    pub balance_won: Option<i64>,
}

/// Whether a statement line added money to the account or took it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryDirection {
    /// 입금.
    Deposit,
    /// 출금.
    Withdrawal,
}

/// One line of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementEntry {
    pub at: OffsetDateTime,
    pub direction: EntryDirection,
    /// Always positive; the direction says which way.
    pub amount_won: i64,
    pub balance_after_won: i64,
    /// The printed content, as the bank reports it.
    pub memo: String,
    /// The request id of the transfer behind the line, when the bank reports it (the sandbox
    /// does, for lines that came from the API); used to reconcile.
    pub bank_tran_id: Option<BankTranId>,
}

/// What each bank call costs the platform, in won. The gateway's results carry no fees: the
/// caller books the fee of every call it makes as `expense:bank_fees`, from this table.
///
/// The defaults are typical firm-banking prices: real-name and transfer-result inquiries are
/// free, a collect or a payout costs 300 won. Consent registration and statements are not
/// charged per call and have no entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BankFees {
    pub real_name: i64,
    pub collect: i64,
    pub payout: i64,
    /// A transfer-result inquiry.
    pub inquiry: i64,
}

impl Default for BankFees {
    fn default() -> BankFees {
        BankFees {
            real_name: 0,
            collect: 300,
            payout: 300,
            inquiry: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn the_trait_is_object_safe() {
        fn holds(_: Option<Arc<dyn BankGateway>>) {}
        holds(None);
    }

    #[test]
    fn default_fees() {
        let fees = BankFees::default();
        assert_eq!(
            (fees.real_name, fees.collect, fees.payout, fees.inquiry),
            (0, 300, 300, 0)
        );
    }

    #[test]
    fn a_resend_that_never_reached_the_bank_proves_nothing() {
        for code in [RefusalCode::BankUnreachable, RefusalCode::RequestRejected] {
            let outcome = TransferOutcome::Failed {
                code,
                message: "no".into(),
            };
            assert!(matches!(
                outcome.of_resend(),
                TransferOutcome::Unknown { .. }
            ));
        }
        let refused = TransferOutcome::Failed {
            code: RefusalCode::InsufficientFunds,
            message: "잔액부족".into(),
        };
        assert_eq!(
            refused.clone().of_resend(),
            refused,
            "the bank's own refusal is final"
        );
    }
}
