//! Shared set-up for the ledger's tests: a fresh database and a running ledger on it.

#![allow(dead_code)]

use std::sync::Arc;

use ledger::{
    Account, AccountCode, AccountFlags, AccountKind, Clock, Ledger, NewAccount, NewTransaction,
    TransactionId, WriterConfig,
};
use money::{Currency, Money};
use testkit::TestDb;

pub struct Harness {
    pub ledger: Ledger,
    pub db: TestDb,
}

pub async fn start(clock: Arc<dyn Clock>) -> Harness {
    start_with(clock, WriterConfig::default()).await
}

pub async fn start_with(clock: Arc<dyn Clock>, config: WriterConfig) -> Harness {
    let db = TestDb::new(16).await;
    let ledger = Ledger::start(db.db.clone(), clock, config);
    Harness { ledger, db }
}

pub fn new_account(code: &str, kind: AccountKind, currency: Currency, guarded: bool) -> NewAccount {
    NewAccount {
        code: AccountCode::parse(code).unwrap(),
        kind,
        currency,
        flags: if guarded {
            AccountFlags::MUST_NOT_GO_NEGATIVE
        } else {
            AccountFlags::empty()
        },
        metadata: None,
    }
}

impl Harness {
    /// A member-money style account: a liability that must not go negative.
    pub async fn wallet(&self, code: &str, currency: Currency) -> Account {
        self.ledger
            .create_account(new_account(code, AccountKind::Liability, currency, true))
            .await
            .unwrap()
    }

    /// A bank-style asset account with no overdraft guard (like the master account).
    pub async fn bank(&self, code: &str, currency: Currency) -> Account {
        self.ledger
            .create_account(new_account(code, AccountKind::Asset, currency, false))
            .await
            .unwrap()
    }

    /// Moves `minor` from `from` to `to` under the given transaction id.
    pub async fn transfer(
        &self,
        id: &str,
        from: &Account,
        to: &Account,
        minor: i64,
    ) -> Result<ledger::Committed<ledger::Transaction>, ledger::LedgerError> {
        self.ledger
            .post_transaction(NewTransaction::transfer(
                TransactionId::parse(id).unwrap(),
                from.id.clone(),
                to.id.clone(),
                Money::from_minor(minor, from.currency),
            ))
            .await
    }

    /// Funds a wallet from a bank account: debit the bank (asset up), credit the wallet.
    pub async fn fund(&self, id: &str, bank: &Account, wallet: &Account, minor: i64) {
        self.transfer(id, bank, wallet, minor).await.unwrap();
    }

    pub async fn posted(&self, account: &Account) -> i64 {
        self.ledger
            .balance(account.id.as_str())
            .await
            .unwrap()
            .posted
            .minor()
    }

    pub async fn available(&self, account: &Account) -> i64 {
        self.ledger
            .balance(account.id.as_str())
            .await
            .unwrap()
            .available
            .minor()
    }

    pub async fn assert_invariants(&self) {
        let report = ledger::check(&self.db.db).await.unwrap();
        assert!(report.is_ok(), "{report}");
    }
}
