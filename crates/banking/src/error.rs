//! Errors with stable codes: why a value did not parse, why a bank refused a request, and why a
//! call got no usable answer.

/// A value that does not parse. It names the field and the rule, never the input, because the
/// input may be an account number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {reason}")]
pub struct InvalidValue {
    /// The field, e.g. `account_number`.
    pub what: &'static str,
    /// The rule it broke, e.g. `must have 6 to 16 digits`.
    pub reason: &'static str,
}

impl InvalidValue {
    pub(crate) const fn new(what: &'static str, reason: &'static str) -> InvalidValue {
        InvalidValue { what, reason }
    }
}

/// Why a bank refused a request. A refusal is an answer: the bank processed nothing.
///
/// Each variant has a stable code (`as_str`) that callers store and match on. The first group
/// are answers from the bank; the last two are decided here, before or instead of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalCode {
    /// No such account at that bank.
    AccountNotFound,
    /// The debited account holds less than the amount.
    InsufficientFunds,
    /// A collect cited a payer number with no active debit consent for the debited account.
    ConsentMissing,
    /// A consent registration reused a payer number that is registered for another account.
    ConsentConflict,
    /// The request id was used earlier the same day for a different request.
    DuplicateBankTranId,
    /// A transfer-result inquiry named a transfer of another kind or amount than the one
    /// recorded under its id.
    OriginalMismatch,
    /// The request names an account the platform may not use that way (for example a statement
    /// of an account other than the master account).
    NotPermitted,
    /// The bank could not process the request right now (system error, maintenance).
    BankSystemError,
    /// The bank found the request malformed.
    InvalidRequest,
    /// No connection to the bank could be opened, so nothing was sent (for transfers; calls
    /// that move nothing report this as `BankError::Unavailable`).
    BankUnreachable,
    /// The bank answered with an HTTP client error and no open-banking reply (wrong URL,
    /// credentials refused, rate limited).
    RequestRejected,
}

impl RefusalCode {
    /// Every code, for exhaustive tests and documentation.
    pub const ALL: [RefusalCode; 11] = [
        RefusalCode::AccountNotFound,
        RefusalCode::InsufficientFunds,
        RefusalCode::ConsentMissing,
        RefusalCode::ConsentConflict,
        RefusalCode::DuplicateBankTranId,
        RefusalCode::OriginalMismatch,
        RefusalCode::NotPermitted,
        RefusalCode::BankSystemError,
        RefusalCode::InvalidRequest,
        RefusalCode::BankUnreachable,
        RefusalCode::RequestRejected,
    ];

    /// The stable public code.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::AccountNotFound => "account_not_found",
            RefusalCode::InsufficientFunds => "insufficient_funds",
            RefusalCode::ConsentMissing => "consent_missing",
            RefusalCode::ConsentConflict => "consent_conflict",
            RefusalCode::DuplicateBankTranId => "duplicate_bank_tran_id",
            RefusalCode::OriginalMismatch => "original_mismatch",
            RefusalCode::NotPermitted => "not_permitted",
            RefusalCode::BankSystemError => "bank_system_error",
            RefusalCode::InvalidRequest => "invalid_request",
            RefusalCode::BankUnreachable => "bank_unreachable",
            RefusalCode::RequestRejected => "request_rejected",
        }
    }

    /// Whether the same request may succeed later. A retry must use a new request id: the bank
    /// keeps a refused id with its refusal.
    pub fn is_transient(self) -> bool {
        match self {
            RefusalCode::BankSystemError | RefusalCode::BankUnreachable => true,
            RefusalCode::AccountNotFound
            | RefusalCode::InsufficientFunds
            | RefusalCode::ConsentMissing
            | RefusalCode::ConsentConflict
            | RefusalCode::DuplicateBankTranId
            | RefusalCode::OriginalMismatch
            | RefusalCode::NotPermitted
            | RefusalCode::InvalidRequest
            | RefusalCode::RequestRejected => false,
        }
    }
}

impl std::fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a call that moves no money (an inquiry, a consent registration, a statement) did not
/// give its answer. Such calls are safe to repeat, so the two cases differ only in whether
/// repeating them can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    /// The bank answered and refused.
    #[error("the bank refused the request ({code}): {message}")]
    Refused { code: RefusalCode, message: String },
    /// No usable answer arrived: no connection, a timeout, a dropped connection, a server
    /// error or a reply that does not parse.
    #[error("no usable answer from the bank: {reason}")]
    Unavailable { reason: String },
}

impl BankError {
    /// The stable public code: the refusal's code, or `bank_unavailable`.
    pub fn code(&self) -> &'static str {
        match self {
            BankError::Refused { code, .. } => code.as_str(),
            BankError::Unavailable { .. } => "bank_unavailable",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn refusal_codes_are_unique_snake_case() {
        let codes: HashSet<_> = RefusalCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(codes.len(), RefusalCode::ALL.len());
        for code in codes {
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
        }
    }

    #[test]
    fn bank_error_codes() {
        let refused = BankError::Refused {
            code: RefusalCode::NotPermitted,
            message: "x".into(),
        };
        assert_eq!(refused.code(), "not_permitted");
        let unavailable = BankError::Unavailable {
            reason: "timeout".into(),
        };
        assert_eq!(unavailable.code(), "bank_unavailable");
    }
}
