//! One named error per refused precondition, each with a stable public code.

use std::sync::Arc;

use jobs::JobError;
use ledger::LedgerError;
use merchants::MerchantError;
use wallet::bank_transfer::TransferError;

/// Why a remittance request was refused or could not be served. A refusal stored nothing. A
/// step the bank refused is not an error: it is the remittance's `failed` or `returning` state.
#[derive(Debug, thiserror::Error)]
pub enum RemittanceError {
    /// The amount is not a whole number of won from 1 to the configured maximum.
    #[error("amount must be a whole number of won from 1 to {max}")]
    AmountInvalid { max: i64 },
    /// Only won can be remitted: bank transfers are in won.
    #[error("currency {0} cannot be remitted; remittances are in KRW")]
    CurrencyUnsupported(String),
    /// Sender and recipient are the same business.
    #[error("a business cannot remit to itself")]
    SameParty,
    /// The memo is blank, too long or not printable.
    #[error("memo must be 1 to {max} printable characters")]
    MemoInvalid { max: usize },
    /// The sender or recipient may not take part (suspended).
    #[error("merchant {0} is suspended")]
    MerchantSuspended(String),
    /// No remittance with this id, or not one the caller may know of.
    #[error("remittance {0} does not exist")]
    NotFound(String),
    /// The Idempotency-Key made a remittance from a different request.
    #[error("this Idempotency-Key was already used for a different remittance")]
    RequestKeyReused,
    /// An operator asked to retry a remittance that has no dead step to retry.
    #[error("remittance {id} has no failed step waiting for an operator (it is {state})")]
    NotRetryable { id: String, state: &'static str },
    /// The list cursor is not a remittance id.
    #[error("after must be a remittance id from a previous page")]
    CursorInvalid,
    /// Merchants refused (unknown merchant, no debit mandate) or could not be reached.
    #[error(transparent)]
    Merchant(#[from] MerchantError),
    /// The ledger refused or could not be reached.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The bank transfer executor could not record something.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// The job queue could not be reached.
    #[error(transparent)]
    Job(#[from] JobError),
    /// The database failed.
    #[error("database error: {0}")]
    Storage(Arc<sqlx::Error>),
    /// A bug or an impossible stored state; the detail is for the logs.
    #[error("internal error: {0}")]
    Internal(String),
}

impl RemittanceError {
    /// The stable code clients match on; it never changes once published.
    pub fn code(&self) -> &'static str {
        match self {
            RemittanceError::AmountInvalid { .. } => "amount_invalid",
            RemittanceError::CurrencyUnsupported(_) => "currency_unsupported",
            RemittanceError::SameParty => "remittance_same_party",
            RemittanceError::MemoInvalid { .. } => "memo_invalid",
            RemittanceError::MerchantSuspended(_) => "merchant_suspended",
            RemittanceError::NotFound(_) => "remittance_not_found",
            RemittanceError::RequestKeyReused => "idempotency_key_reused",
            RemittanceError::NotRetryable { .. } => "remittance_not_retryable",
            RemittanceError::CursorInvalid => "invalid_request",
            RemittanceError::Merchant(error) => error.code(),
            RemittanceError::Ledger(error) => error.code(),
            RemittanceError::Job(error) => error.code(),
            RemittanceError::Storage(_) => "storage_unavailable",
            RemittanceError::Transfer(_) | RemittanceError::Internal(_) => "internal_error",
        }
    }
}

impl From<sqlx::Error> for RemittanceError {
    fn from(error: sqlx::Error) -> Self {
        RemittanceError::Storage(Arc::new(error))
    }
}
