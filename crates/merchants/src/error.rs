//! One named error per refused precondition, each with a stable public code. Messages never
//! carry an account number or a holder name in the clear.

use std::sync::Arc;

use bank_accounts::KeyError;
use banking::{BankError, InvalidValue, RefusalCode};
use ledger::LedgerError;
use wallet::bank_transfer::TransferError;

/// Why a merchant request was refused. A refused request stored nothing; a holder-name check
/// that reached the bank has booked its inquiry fee all the same, as the bank bills it.
#[derive(Debug, thiserror::Error)]
pub enum MerchantError {
    /// No merchant with this id, or not one the caller may know of.
    #[error("merchant {0} does not exist")]
    NotFound(String),
    /// The name is empty, too long or not printable.
    #[error("name {0}")]
    NameInvalid(&'static str),
    /// The fee rate is not an integer from 0 to 10,000 basis points.
    #[error("fee_bps must be an integer from 0 to 10000 (basis points)")]
    FeeInvalid,
    /// The bank code is not three digits.
    #[error("bank_code {0}")]
    BankCodeInvalid(&'static str),
    /// The account number is not 6 to 16 digits (hyphens allowed between digits).
    #[error("account_number {0}")]
    AccountNumberInvalid(&'static str),
    /// The expected holder name is empty, too long or not printable.
    #[error("holder_name {0}")]
    HolderNameInvalid(&'static str),
    /// The bank has no account with this number.
    #[error("the bank has no account with this number")]
    AccountUnknownAtBank,
    /// The bank reports another holder than the one the request expected.
    #[error("the account is held in another name ({actual_masked})")]
    HolderNameMismatch {
        /// The bank's holder name, masked after its first character.
        actual_masked: String,
    },
    /// The bank refused the holder-name inquiry (with its refusal code).
    #[error("the bank refused the holder-name inquiry ({})", .0.as_str())]
    BankRefused(RefusalCode),
    /// The bank gave no usable answer; nothing was stored. Retry later.
    #[error("the bank is unavailable; nothing was stored, retry later")]
    BankUnavailable,
    /// The merchant has no active debit mandate: nothing can be collected from its account.
    #[error("the merchant has no active debit mandate")]
    MandateMissing,
    /// The Idempotency-Key onboarded a merchant from a different request.
    #[error("this Idempotency-Key was already used to onboard a different merchant")]
    RequestKeyReused,
    /// Account keys are missing or a stored value does not open; the detail is for the logs.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The ledger refused or could not be reached.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The database failed.
    #[error("database error: {0}")]
    Storage(Arc<sqlx::Error>),
    /// A bug or an impossible stored state; the detail is for the logs.
    #[error("internal error: {0}")]
    Internal(String),
}

impl MerchantError {
    /// The stable code clients match on; it never changes once published.
    pub fn code(&self) -> &'static str {
        match self {
            MerchantError::NotFound(_) => "merchant_not_found",
            MerchantError::NameInvalid(_) => "merchant_name_invalid",
            MerchantError::FeeInvalid => "fee_bps_invalid",
            MerchantError::BankCodeInvalid(_) => "bank_code_invalid",
            MerchantError::AccountNumberInvalid(_) => "account_number_invalid",
            MerchantError::HolderNameInvalid(_) => "holder_name_invalid",
            MerchantError::AccountUnknownAtBank => "bank_account_not_found",
            MerchantError::HolderNameMismatch { .. } => "holder_name_mismatch",
            MerchantError::BankRefused(_) => "bank_refused",
            MerchantError::BankUnavailable => "bank_unavailable",
            MerchantError::MandateMissing => "debit_mandate_missing",
            MerchantError::RequestKeyReused => "idempotency_key_reused",
            MerchantError::Keys(_) | MerchantError::Internal(_) => "internal_error",
            MerchantError::Ledger(error) => error.code(),
            MerchantError::Storage(_) => "storage_unavailable",
        }
    }

    /// The error for a value that did not parse: the field is known, the input never echoed.
    pub(crate) fn from_invalid(error: InvalidValue) -> MerchantError {
        match error.what {
            "bank_code" => MerchantError::BankCodeInvalid(error.reason),
            "holder_name" => MerchantError::HolderNameInvalid(error.reason),
            _ => MerchantError::AccountNumberInvalid(error.reason),
        }
    }

    /// The error for a holder-name inquiry the bank did not answer with a name.
    pub(crate) fn from_bank(error: BankError) -> MerchantError {
        match error {
            BankError::Refused {
                code: RefusalCode::AccountNotFound,
                ..
            } => MerchantError::AccountUnknownAtBank,
            BankError::Refused { code, .. } if code.is_transient() => {
                MerchantError::BankUnavailable
            }
            BankError::Refused { code, .. } => MerchantError::BankRefused(code),
            BankError::Unavailable { .. } => MerchantError::BankUnavailable,
        }
    }
}

impl From<sqlx::Error> for MerchantError {
    fn from(error: sqlx::Error) -> MerchantError {
        MerchantError::Storage(Arc::new(error))
    }
}

impl From<TransferError> for MerchantError {
    fn from(error: TransferError) -> MerchantError {
        match error {
            TransferError::Storage(error) => MerchantError::Storage(error),
            TransferError::Ledger(error) => MerchantError::Ledger(error),
            other @ (TransferError::NotFound(_) | TransferError::Corrupt(_)) => {
                MerchantError::Internal(other.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_answers_become_stable_codes() {
        let refused = |code| BankError::Refused {
            code,
            message: "x".into(),
        };
        let cases = [
            (
                refused(RefusalCode::AccountNotFound),
                "bank_account_not_found",
            ),
            (refused(RefusalCode::BankSystemError), "bank_unavailable"),
            (refused(RefusalCode::NotPermitted), "bank_refused"),
            (
                BankError::Unavailable {
                    reason: "timeout".into(),
                },
                "bank_unavailable",
            ),
        ];
        for (error, code) in cases {
            assert_eq!(MerchantError::from_bank(error).code(), code);
        }
    }

    #[test]
    fn invalid_values_name_their_field() {
        let error = banking::AccountNumber::parse("12").unwrap_err();
        assert_eq!(
            MerchantError::from_invalid(error).code(),
            "account_number_invalid"
        );
        let error = banking::BankCode::parse("8").unwrap_err();
        assert_eq!(
            MerchantError::from_invalid(error).code(),
            "bank_code_invalid"
        );
        let error = banking::HolderName::parse(" ").unwrap_err();
        assert_eq!(
            MerchantError::from_invalid(error).code(),
            "holder_name_invalid"
        );
    }
}
