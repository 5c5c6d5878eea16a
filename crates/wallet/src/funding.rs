//! The port to members' linked bank accounts. The wallet does not know how accounts are
//! linked, verified or consented to; it asks this port for the account to collect from or to
//! pay out to, and gets one only when it may be used that way.

use async_trait::async_trait;
use banking::{BankAccount, HolderName, PayerNumber};
use membership::MemberId;

/// Where the wallet finds members' bank accounts. Implemented over the linked-accounts service
/// in the application, and over accounts opened at the sandbox bank in tests.
#[async_trait]
pub trait FundingAccounts: Send + Sync {
    /// The member's account to collect from: the named linked account, or (None) their default
    /// one; it must be verified and carry an active debit consent.
    async fn charge_source(
        &self,
        member: &MemberId,
        id: Option<&str>,
    ) -> Result<ChargeSource, FundingError>;

    /// A verified account of the member's own to withdraw to: the named one, or (None) their
    /// default one.
    async fn withdrawal_target(
        &self,
        member: &MemberId,
        id: Option<&str>,
    ) -> Result<WithdrawalTarget, FundingError>;
}

/// An account the member has consented to be debited from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeSource {
    /// The linked account's id (`ba_…`).
    pub bank_account_id: String,
    pub account: BankAccount,
    /// The payer number the debit consent is registered under at the bank.
    pub payer_number: PayerNumber,
}

/// A verified account of the member's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalTarget {
    /// The linked account's id (`ba_…`).
    pub bank_account_id: String,
    pub account: BankAccount,
    pub holder_name: HolderName,
}

/// Why the port gave no account. The code is stable and reaches clients as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FundingError {
    code: &'static str,
    message: String,
}

impl FundingError {
    /// A refusal with a stable snake_case code such as `bank_account_not_found` or
    /// `debit_consent_missing`.
    pub fn new(code: &'static str, message: impl Into<String>) -> FundingError {
        FundingError {
            code,
            message: message.into(),
        }
    }

    /// No such linked account (or none by default), or not the member's.
    pub fn not_found() -> FundingError {
        FundingError::new(
            "bank_account_not_found",
            "no usable linked bank account was found",
        )
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Whether the refusal means "there is no such account", which the API answers with 404.
    pub fn is_not_found(&self) -> bool {
        self.code == "bank_account_not_found"
    }
}
