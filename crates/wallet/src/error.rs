//! One named error per refused precondition, each with a stable public code.

use ledger::LedgerError;
use membership::MemberError;

use crate::bank_transfer::TransferError;
use crate::domain::LimitKind;
use crate::funding::FundingError;

/// Why the wallet refused or could not finish a request. A refusal moved no money; where a
/// step before the refusal did (an automatic top-up that succeeded), the error says so.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// The amount is zero, negative or not whole in the currency.
    #[error("amounts must be positive")]
    AmountInvalid,
    /// The amount is beyond what a bank transfer or an integer can hold.
    #[error("amount out of range")]
    AmountOutOfRange,
    /// No wallet is kept in this currency.
    #[error("wallets are kept in KRW only, not {0}")]
    CurrencyUnsupported(&'static str),
    /// The wallet's available balance does not cover the movement, and auto top-up was off,
    /// impossible or refused (`top_up` says what happened to a top-up that was tried).
    #[error("insufficient funds{}", .top_up.as_deref().map(|t| format!(": {t}")).unwrap_or_default())]
    InsufficientFunds { top_up: Option<String> },
    /// A configured limit would be exceeded.
    #[error("the {} limit of {limit_won} won would be exceeded", .limit.as_str())]
    LimitExceeded { limit: LimitKind, limit_won: i64 },
    /// The recipient of a transfer is not a member, or not visible to the caller.
    #[error("no active member matches the recipient")]
    RecipientNotFound,
    /// The recipient or the member themself is closed: money may not be credited to them.
    #[error("member {0} is not active")]
    MemberNotActive(String),
    /// A transfer named the sender as recipient.
    #[error("a transfer needs a recipient other than the sender")]
    TransferToSelf,
    /// A bank code, account number or holder name in the request does not parse.
    #[error("{field} {reason}")]
    InvalidBankField {
        field: &'static str,
        reason: &'static str,
    },
    /// No wallet of this member, or not one the caller may see.
    #[error("no wallet of member {0}")]
    WalletNotFound(String),
    /// The bank has no such account.
    #[error("the bank has no such account")]
    BankAccountNotFound,
    /// The account's holder is not the name the request expected.
    #[error("the account is held in another name ({actual_masked})")]
    HolderNameMismatch { actual_masked: String },
    /// The bank refused the transfer; nothing moved.
    #[error("the bank refused the transfer ({code})")]
    BankRefused { code: &'static str },
    /// The bank could not be asked (a holder-name inquiry got no answer); nothing moved.
    #[error("the bank did not answer; nothing moved, retry later")]
    BankUnavailable,
    /// The linked-account port refused (no such account, not verified, no consent).
    #[error(transparent)]
    Funding(#[from] FundingError),
    /// No money transaction with this number, or not one of the caller's.
    #[error("money transaction {0} does not exist")]
    MoneyTxNotFound(String),
    /// The same request key was used for a different request.
    #[error("this request key was already used for a different request")]
    RequestKeyReused,
    /// The ledger refused or failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The bank transfer executor could not record or book something.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// Membership could not be read.
    #[error(transparent)]
    Member(#[from] MemberError),
    /// The database failed.
    #[error("database error: {0}")]
    Storage(#[from] sqlx::Error),
    /// A bug or an impossible state; the detail is for the logs.
    #[error("internal error: {0}")]
    Internal(String),
}

impl WalletError {
    /// Whether the step that failed may have taken effect anyway: the database or the ledger
    /// did not answer (a commit whose reply was lost is still a commit). An operation stopped by
    /// such an error must stay pending for the resolver, which finds out what happened, instead
    /// of being failed (and its daily usage given back) while its money may have moved.
    pub fn is_in_doubt(&self) -> bool {
        let ledger_in_doubt = |error: &LedgerError| {
            matches!(error, LedgerError::Storage(_) | LedgerError::ShuttingDown)
        };
        match self {
            WalletError::Storage(_) | WalletError::Internal(_) => true,
            WalletError::Ledger(error) => ledger_in_doubt(error),
            WalletError::Transfer(TransferError::Storage(_)) => true,
            WalletError::Transfer(TransferError::Ledger(error)) => ledger_in_doubt(error),
            WalletError::Member(MemberError::Storage(_)) => true,
            _ => false,
        }
    }

    /// The stable code clients match on; it never changes once published.
    pub fn code(&self) -> &'static str {
        match self {
            WalletError::AmountInvalid => "amount_invalid",
            WalletError::AmountOutOfRange => "amount_out_of_range",
            WalletError::CurrencyUnsupported(_) => "currency_unsupported",
            WalletError::InsufficientFunds { .. } => "insufficient_funds",
            WalletError::LimitExceeded { .. } => "limit_exceeded",
            WalletError::RecipientNotFound => "recipient_not_found",
            WalletError::MemberNotActive(_) => "member_not_active",
            WalletError::TransferToSelf => "transfer_to_self",
            WalletError::InvalidBankField { field, .. } => match *field {
                "bank_code" => "bank_code_invalid",
                "account_number" => "account_number_invalid",
                "holder_name" => "holder_name_invalid",
                _ => "invalid_request",
            },
            WalletError::WalletNotFound(_) => "wallet_not_found",
            WalletError::BankAccountNotFound => "bank_account_not_found",
            WalletError::HolderNameMismatch { .. } => "holder_name_mismatch",
            WalletError::BankRefused { .. } => "bank_refused",
            WalletError::BankUnavailable => "bank_unavailable",
            WalletError::Funding(error) => error.code(),
            WalletError::MoneyTxNotFound(_) => "money_transaction_not_found",
            WalletError::RequestKeyReused => "idempotency_key_reused",
            WalletError::Ledger(error) => error.code(),
            WalletError::Transfer(TransferError::Storage(_)) => "storage_unavailable",
            WalletError::Transfer(TransferError::Ledger(error)) => error.code(),
            WalletError::Transfer(TransferError::NotFound(_) | TransferError::Corrupt(_)) => {
                "internal_error"
            }
            WalletError::Member(error) => error.code(),
            WalletError::Storage(_) => "storage_unavailable",
            WalletError::Internal(_) => "internal_error",
        }
    }
}
