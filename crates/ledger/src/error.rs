//! One named error per rejected precondition, each with a stable public code.

use std::sync::Arc;

use money::MoneyError;

/// Why the ledger refused a request. A refused request has written nothing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    #[error("account {0} does not exist")]
    AccountNotFound(String),
    #[error("account {account_id} would exceed the balance limit of this command")]
    BalanceLimitExceeded { account_id: String },
    #[error("transaction {0} does not exist")]
    TransactionNotFound(String),
    #[error("hold {0} does not exist")]
    HoldNotFound(String),
    #[error("account {account_id} has insufficient available funds")]
    InsufficientFunds { account_id: String },
    #[error("account {account_id} holds {account_currency}, not {currency}")]
    CurrencyMismatch {
        account_id: String,
        account_currency: &'static str,
        currency: &'static str,
    },
    #[error("postings in {currency} do not sum to zero")]
    UnbalancedTransaction { currency: &'static str },
    #[error("a transaction needs between {min} and {max} postings")]
    PostingCountInvalid { min: usize, max: usize },
    #[error("amounts must be positive")]
    AmountInvalid,
    #[error("amount out of range")]
    AmountOutOfRange,
    #[error("{what} already exists with different content")]
    ExistsWithDifferentContent { what: String },
    #[error("invalid {field}: {reason}")]
    InvalidField {
        field: &'static str,
        reason: &'static str,
    },
    #[error("a hold must move money between two different accounts")]
    AccountsMustDiffer,
    #[error("hold {0} is already posted")]
    HoldAlreadyPosted(String),
    #[error("hold {0} is already voided")]
    HoldAlreadyVoided(String),
    #[error("hold {0} has expired")]
    HoldExpired(String),
    #[error("the amount exceeds what hold {0} reserves")]
    ExceedsHoldAmount(String),
    #[error("the ledger is shutting down")]
    ShuttingDown,
    #[error("storage error: {0}")]
    Storage(Arc<sqlx::Error>),
}

impl LedgerError {
    /// The stable code clients match on; it never changes once published.
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::AccountNotFound(_) => "account_not_found",
            LedgerError::TransactionNotFound(_) => "transaction_not_found",
            LedgerError::HoldNotFound(_) => "hold_not_found",
            LedgerError::InsufficientFunds { .. } => "insufficient_funds",
            LedgerError::BalanceLimitExceeded { .. } => "balance_limit_exceeded",
            LedgerError::CurrencyMismatch { .. } => "currency_mismatch",
            LedgerError::UnbalancedTransaction { .. } => "unbalanced_transaction",
            LedgerError::PostingCountInvalid { .. } => "posting_count_invalid",
            LedgerError::AmountInvalid => "amount_invalid",
            LedgerError::AmountOutOfRange => "amount_out_of_range",
            LedgerError::ExistsWithDifferentContent { .. } => "exists_with_different_content",
            LedgerError::InvalidField { .. } => "invalid_request",
            LedgerError::AccountsMustDiffer => "accounts_must_differ",
            LedgerError::HoldAlreadyPosted(_) => "hold_already_posted",
            LedgerError::HoldAlreadyVoided(_) => "hold_already_voided",
            LedgerError::HoldExpired(_) => "hold_expired",
            LedgerError::ExceedsHoldAmount(_) => "exceeds_hold_amount",
            LedgerError::ShuttingDown => "unavailable",
            LedgerError::Storage(_) => "storage_unavailable",
        }
    }
}

impl From<sqlx::Error> for LedgerError {
    fn from(error: sqlx::Error) -> Self {
        LedgerError::Storage(Arc::new(error))
    }
}

impl From<MoneyError> for LedgerError {
    fn from(error: MoneyError) -> Self {
        match error {
            MoneyError::CurrencyMismatch { .. } => LedgerError::InvalidField {
                field: "currency",
                reason: "currencies differ",
            },
            MoneyError::Overflow => LedgerError::AmountOutOfRange,
            MoneyError::AmountInvalid { .. } => LedgerError::AmountInvalid,
            MoneyError::CurrencyUnknown => LedgerError::InvalidField {
                field: "currency",
                reason: "unknown currency",
            },
        }
    }
}
