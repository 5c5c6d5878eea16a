//! One named error per refused precondition, each with a stable public code.

use std::sync::Arc;

use ledger::LedgerError;
use merchants::MerchantError;
use wallet::bank_transfer::TransferError;

/// Why settlement refused or could not finish something. A payout the bank refused is not an
/// error: it is a settlement's `failed` state.
#[derive(Debug, thiserror::Error)]
pub enum SettlementError {
    /// The date is not `YYYY-MM-DD`.
    #[error("settlement date {0:?} is not a date written YYYY-MM-DD")]
    DateInvalid(String),
    /// The day's cutoff (the next day's 00:00 KST) has not passed: its sales are not final.
    #[error("settlement date {0} is not over yet (its cutoff is the next day's 00:00 KST)")]
    DayNotOver(String),
    /// A later date was settled already: settling this one now would pay its sales twice.
    #[error("settlement date {date} precedes the settled date {later}; its sales were settled with that day")]
    DaySuperseded { date: String, later: String },
    /// Another run holds the settlement lease.
    #[error("another settlement run is in progress; retry when it has finished")]
    RunInProgress,
    /// This run's lease was taken over (it ran longer than its lease); it stopped.
    #[error("the settlement run lost its lease and stopped; run the day again")]
    LeaseLost,
    /// No run for this date.
    #[error("no settlement run for {0}")]
    RunNotFound(String),
    /// No merchant with this id.
    #[error(transparent)]
    Merchant(#[from] MerchantError),
    /// The ledger refused or could not be reached.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The bank transfer executor could not record or book something.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// Writing the report failed.
    #[error("could not write the settlement report: {0}")]
    Report(Arc<std::io::Error>),
    /// The database failed.
    #[error("database error: {0}")]
    Storage(Arc<sqlx::Error>),
    /// A bug, an overflow or an impossible stored state; the detail is for the logs.
    #[error("internal error: {0}")]
    Internal(String),
}

impl SettlementError {
    /// The stable code clients match on; it never changes once published.
    pub fn code(&self) -> &'static str {
        match self {
            SettlementError::DateInvalid(_) => "settlement_date_invalid",
            SettlementError::DayNotOver(_) => "settlement_day_not_over",
            SettlementError::DaySuperseded { .. } => "settlement_day_superseded",
            SettlementError::RunInProgress => "settlement_run_in_progress",
            SettlementError::LeaseLost => "settlement_lease_lost",
            SettlementError::RunNotFound(_) => "settlement_run_not_found",
            SettlementError::Merchant(error) => error.code(),
            SettlementError::Ledger(error) => error.code(),
            SettlementError::Transfer(_) => "internal_error",
            SettlementError::Report(_) => "internal_error",
            SettlementError::Storage(_) => "internal_error",
            SettlementError::Internal(_) => "internal_error",
        }
    }
}

impl From<sqlx::Error> for SettlementError {
    fn from(error: sqlx::Error) -> Self {
        SettlementError::Storage(Arc::new(error))
    }
}

impl From<std::io::Error> for SettlementError {
    fn from(error: std::io::Error) -> Self {
        SettlementError::Report(Arc::new(error))
    }
}
