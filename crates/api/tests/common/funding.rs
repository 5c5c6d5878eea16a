//! Linked bank accounts for the wallet tests, standing in for the linked-accounts service:
//! accounts opened at the sandbox bank through its admin API, with a debit consent registered
//! through the bank gateway, as linking would leave them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use banking::{
    AccountNumber, BankAccount, BankCode, BankGateway, DebitConsent, HolderName, PayerNumber,
};
use membership::MemberId;
use wallet::{ChargeSource, FundingAccounts, FundingError, WithdrawalTarget};

/// One linked account: verified, and with a debit consent when `payer_number` is set.
#[derive(Debug, Clone)]
struct Linked {
    id: String,
    account: BankAccount,
    holder: HolderName,
    payer_number: Option<PayerNumber>,
}

/// The members' linked accounts; the first one a member links is their default.
pub struct TestFunding {
    bank: Arc<dyn BankGateway>,
    linked: Mutex<HashMap<MemberId, Vec<Linked>>>,
}

impl TestFunding {
    pub fn new(bank: Arc<dyn BankGateway>) -> TestFunding {
        TestFunding {
            bank,
            linked: Mutex::new(HashMap::new()),
        }
    }

    /// Links an account (which must exist at the bank) for a member, registering a debit
    /// consent at the bank when `consent` is true; returns the linked account's id.
    pub async fn link(
        &self,
        member: &str,
        bank_code: &str,
        number: &str,
        holder: &str,
        consent: bool,
    ) -> String {
        let member = MemberId::parse(member).expect("member id");
        let account = BankAccount::new(
            BankCode::parse(bank_code).expect("bank code"),
            AccountNumber::parse(number).expect("account number"),
        );
        let id = format!("ba_{}", ulid::Ulid::new());
        let payer_number = if consent {
            let payer = PayerNumber::parse(&id[3..23]).expect("payer number");
            self.bank
                .register_consent(&DebitConsent {
                    payer_number: payer.clone(),
                    account: account.clone(),
                })
                .await
                .expect("register the consent");
            Some(payer)
        } else {
            None
        };
        let linked = Linked {
            id: id.clone(),
            account,
            holder: HolderName::parse(holder).expect("holder"),
            payer_number,
        };
        self.linked
            .lock()
            .expect("not poisoned")
            .entry(member)
            .or_default()
            .push(linked);
        id
    }

    fn find(&self, member: &MemberId, id: Option<&str>) -> Result<Linked, FundingError> {
        let linked = self.linked.lock().expect("not poisoned");
        let accounts = linked.get(member).ok_or_else(FundingError::not_found)?;
        let found = match id {
            Some(id) => accounts.iter().find(|a| a.id == id),
            None => accounts.first(),
        };
        found.cloned().ok_or_else(FundingError::not_found)
    }
}

#[async_trait]
impl FundingAccounts for TestFunding {
    async fn charge_source(
        &self,
        member: &MemberId,
        id: Option<&str>,
    ) -> Result<ChargeSource, FundingError> {
        let linked = self.find(member, id)?;
        let payer_number = linked.payer_number.ok_or_else(|| {
            FundingError::new("debit_consent_missing", "the account has no debit consent")
        })?;
        Ok(ChargeSource {
            bank_account_id: linked.id,
            account: linked.account,
            payer_number,
        })
    }

    async fn withdrawal_target(
        &self,
        member: &MemberId,
        id: Option<&str>,
    ) -> Result<WithdrawalTarget, FundingError> {
        let linked = self.find(member, id)?;
        Ok(WithdrawalTarget {
            bank_account_id: linked.id,
            account: linked.account,
            holder_name: linked.holder,
        })
    }
}
