//! Why a reconciliation could not be run or read. A mismatch is not an error: it is the
//! result the run records.

use bank_accounts::BankAccountError;
use banking::BankError;
use ledger::LedgerError;
use payments::PaymentError;
use psp::PspError;
use wallet::bank_transfer::TransferError;

#[derive(Debug, thiserror::Error)]
pub enum ReconciliationError {
    /// The date is not `YYYY-MM-DD`.
    #[error("date must be a KST business date, YYYY-MM-DD (got {0:?})")]
    DateInvalid(String),
    /// The day has not begun yet (KST).
    #[error("{0} has not begun yet (KST)")]
    DayNotBegun(String),
    /// No run of this day was recorded.
    #[error("no reconciliation of {0} was run")]
    NotFound(String),
    /// The list cursor is not a date.
    #[error("before must be a date, YYYY-MM-DD")]
    CursorInvalid,
    /// The bank's statement could not be read; nothing was recorded.
    #[error("the bank's statement could not be read: {0}")]
    Bank(#[from] BankError),
    /// The PSP's report could not be read; nothing was recorded.
    #[error("the PSP's report could not be read: {0}")]
    Psp(#[from] PspError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Transfer(#[from] TransferError),
    #[error(transparent)]
    BankAccount(#[from] BankAccountError),
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// The database failed.
    #[error("database error: {0}")]
    Storage(#[from] sqlx::Error),
    /// A stored row or a figure that cannot be; the detail is for the logs.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ReconciliationError {
    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            ReconciliationError::DateInvalid(_) => "reconciliation_date_invalid",
            ReconciliationError::DayNotBegun(_) => "reconciliation_day_not_begun",
            ReconciliationError::NotFound(_) => "reconciliation_not_found",
            ReconciliationError::CursorInvalid => "invalid_request",
            ReconciliationError::Bank(_) => "bank_unavailable",
            ReconciliationError::Psp(_) => "psp_unavailable",
            ReconciliationError::Storage(_)
            | ReconciliationError::Ledger(LedgerError::Storage(_)) => "storage_unavailable",
            ReconciliationError::Ledger(_)
            | ReconciliationError::Transfer(_)
            | ReconciliationError::BankAccount(_)
            | ReconciliationError::Payment(_)
            | ReconciliationError::Internal(_) => "internal_error",
        }
    }
}
