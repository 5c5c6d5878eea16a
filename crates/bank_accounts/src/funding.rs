//! Linked accounts as the wallet's funding port: the wallet asks where to collect a charge from
//! and where to pay a withdrawal to, and this service answers from the member's links.

use async_trait::async_trait;
use membership::MemberId;
use wallet::{ChargeSource, FundingAccounts, FundingError, WithdrawalTarget};

use crate::error::BankAccountError;
use crate::service::BankAccounts;

/// Carries a linked-account refusal to the wallet under its own stable code, so that a client
/// sees `debit_consent_missing` whether it linked badly or charged too early.
fn funding_error(error: BankAccountError) -> FundingError {
    FundingError::new(error.code(), error.to_string())
}

#[async_trait]
impl FundingAccounts for BankAccounts {
    async fn charge_source(
        &self,
        member: &MemberId,
        id: Option<&str>,
    ) -> Result<ChargeSource, FundingError> {
        BankAccounts::charge_source(self, member, id)
            .await
            .map_err(funding_error)
    }

    async fn withdrawal_target(
        &self,
        member: &MemberId,
        id: Option<&str>,
    ) -> Result<WithdrawalTarget, FundingError> {
        BankAccounts::withdrawal_target(self, member, id)
            .await
            .map_err(funding_error)
    }
}
