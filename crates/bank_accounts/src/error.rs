//! One named error per refused precondition, each with a stable public code. Messages never
//! carry an account number, a holder name or a code.

use banking::{BankError, InvalidValue, RefusalCode};
use ledger::LedgerError;
use membership::MemberError;

use crate::keys::KeyError;

/// Why a linked-account request was refused. A refused request changed nothing, except the
/// attempts a wrong code used up and a deposit whose outcome is still being resolved.
#[derive(Debug, thiserror::Error)]
pub enum BankAccountError {
    /// The bank code is not three digits.
    #[error("bank_code {0}")]
    BankCodeInvalid(&'static str),
    /// The account number is not 6 to 16 digits (hyphens allowed between digits).
    #[error("account_number {0}")]
    AccountNumberInvalid(&'static str),
    /// A code was not the expected number of digits.
    #[error("code must be exactly {0} digits")]
    CodeInvalid(usize),
    /// No such linked account, or one the caller may not know of.
    #[error("bank account {0} does not exist")]
    NotFound(String),
    /// The bank has no account with this number.
    #[error("the bank has no account with this number")]
    AccountUnknownAtBank,
    /// The bank reports another holder than the member.
    #[error("the account holder's name does not match the member's name")]
    HolderNameMismatch,
    /// The member already has this account linked (and not ended).
    #[error("this account is already linked to the member")]
    AlreadyLinked,
    /// The partner account is linked to another member; a partner account has one member.
    #[error("this partner account is linked to another member")]
    PartnerAccountTaken,
    /// The member already has a partner account; unlink it first.
    #[error("the member already has a partner account linked")]
    PartnerLinkExists,
    /// A partner link named an account at another bank than the partner bank.
    #[error("a partner account must be at the partner bank ({0})")]
    NotPartnerBank(String),
    /// The member has as many live charge accounts as allowed.
    #[error("at most {0} charge accounts may be linked at once")]
    LimitReached(i64),
    /// The member is closed; nothing can be linked to them.
    #[error("member {0} is closed")]
    MemberClosed(String),
    /// The 1-won deposit has not been confirmed by the bank yet; retry shortly.
    #[error("the 1-won deposit is still being confirmed with the bank; retry shortly")]
    DepositPending,
    /// The typed code is not the code of the latest deposit.
    #[error("the verification code does not match; {attempts_left} attempts left")]
    CodeMismatch {
        /// Attempts left for this code.
        attempts_left: i64,
    },
    /// The latest code expired; ask for a new one.
    #[error("the verification code expired; request a new one")]
    CodeExpired,
    /// The latest code took its last attempt; ask for a new one.
    #[error("too many wrong codes; request a new one")]
    AttemptsExceeded,
    /// No more codes may be sent for this link; unlink and link again.
    #[error("no more verification codes may be sent for this account ({0} at most)")]
    ResendLimitReached(i64),
    /// The account is verified already; nothing to verify.
    #[error("the account is already verified")]
    AlreadyVerified,
    /// The account's ownership is not verified yet.
    #[error("the account is not verified yet")]
    NotVerified,
    /// The account has no registered debit consent.
    #[error("the account has no debit consent; give consent first")]
    ConsentMissing,
    /// The account already has a registered debit consent.
    #[error("the account already has a debit consent")]
    ConsentExists,
    /// No ARS session is open for this account.
    #[error("no ARS session is open; start the consent first")]
    ArsSessionMissing,
    /// The ARS session expired; start the consent again.
    #[error("the ARS session expired; start the consent again")]
    ArsSessionExpired,
    /// The ARS session took its last attempt; start the consent again.
    #[error("too many wrong ARS codes; start the consent again")]
    ArsAttemptsExceeded,
    /// The keyed ARS code is not the session's.
    #[error("the ARS code does not match; {attempts_left} attempts left")]
    ArsCodeMismatch {
        /// Attempts left in this session.
        attempts_left: i64,
    },
    /// The link has ended; nothing about it can change.
    #[error("the bank account link has ended")]
    Ended,
    /// The bank refused a request (with its refusal code).
    #[error("the bank refused the request ({0})")]
    BankRefused(RefusalCode),
    /// The bank gave no usable answer; nothing is known to have changed. Retry later.
    #[error("the bank is unavailable; retry later")]
    BankUnavailable,
    /// Account keys are missing or a stored value does not open; the detail is for the logs.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// A bug or an impossible stored state; the detail is for the logs.
    #[error("internal error: {0}")]
    Internal(String),
    /// Membership could not be read.
    #[error(transparent)]
    Member(MemberError),
    /// The ledger refused or could not be reached.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The database failed.
    #[error("database error: {0}")]
    Storage(#[from] sqlx::Error),
}

impl BankAccountError {
    /// The stable code clients match on; it never changes once published.
    pub fn code(&self) -> &'static str {
        match self {
            BankAccountError::BankCodeInvalid(_) => "bank_code_invalid",
            BankAccountError::AccountNumberInvalid(_) => "account_number_invalid",
            BankAccountError::CodeInvalid(_) => "invalid_request",
            BankAccountError::NotFound(_) | BankAccountError::AccountUnknownAtBank => {
                "bank_account_not_found"
            }
            BankAccountError::HolderNameMismatch => "holder_name_mismatch",
            BankAccountError::AlreadyLinked => "bank_account_already_linked",
            BankAccountError::PartnerAccountTaken => "partner_account_taken",
            BankAccountError::PartnerLinkExists => "partner_account_exists",
            BankAccountError::NotPartnerBank(_) => "bank_code_not_partner",
            BankAccountError::LimitReached(_) => "bank_account_limit_reached",
            BankAccountError::MemberClosed(_) => "member_closed",
            BankAccountError::DepositPending => "verification_deposit_pending",
            BankAccountError::CodeMismatch { .. } => "verification_code_mismatch",
            BankAccountError::CodeExpired => "verification_expired",
            BankAccountError::AttemptsExceeded => "verification_attempts_exceeded",
            BankAccountError::ResendLimitReached(_) => "verification_resend_limit_reached",
            BankAccountError::AlreadyVerified => "bank_account_already_verified",
            BankAccountError::NotVerified => "bank_account_not_verified",
            BankAccountError::ConsentMissing => "debit_consent_missing",
            BankAccountError::ConsentExists => "debit_consent_exists",
            BankAccountError::ArsSessionMissing => "ars_session_missing",
            BankAccountError::ArsSessionExpired => "ars_session_expired",
            BankAccountError::ArsAttemptsExceeded => "ars_attempts_exceeded",
            BankAccountError::ArsCodeMismatch { .. } => "ars_code_mismatch",
            BankAccountError::Ended => "bank_account_ended",
            BankAccountError::BankRefused(_) => "bank_refused",
            BankAccountError::BankUnavailable => "bank_unavailable",
            BankAccountError::Keys(_) | BankAccountError::Internal(_) => "internal_error",
            BankAccountError::Member(error) => error.code(),
            BankAccountError::Ledger(error) => error.code(),
            BankAccountError::Storage(_) => "storage_unavailable",
        }
    }

    /// The error for a value that did not parse: the field is known, the input never echoed.
    pub(crate) fn from_invalid(error: InvalidValue) -> BankAccountError {
        match error.what {
            "bank_code" => BankAccountError::BankCodeInvalid(error.reason),
            _ => BankAccountError::AccountNumberInvalid(error.reason),
        }
    }

    /// The error for a call to the bank that moves no money.
    pub(crate) fn from_bank(error: BankError) -> BankAccountError {
        match error {
            BankError::Refused {
                code: RefusalCode::AccountNotFound,
                ..
            } => BankAccountError::AccountUnknownAtBank,
            BankError::Refused { code, .. } if code.is_transient() => {
                BankAccountError::BankUnavailable
            }
            BankError::Refused { code, .. } => BankAccountError::BankRefused(code),
            BankError::Unavailable { .. } => BankAccountError::BankUnavailable,
        }
    }
}

impl From<MemberError> for BankAccountError {
    fn from(error: MemberError) -> BankAccountError {
        match error {
            MemberError::Closed(id) => BankAccountError::MemberClosed(id),
            other => BankAccountError::Member(other),
        }
    }
}
