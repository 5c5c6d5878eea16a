//! A sandbox bank on 127.0.0.1:0 with its own data directory, the `HttpBank` adapter pointed at
//! it, and the admin calls a test uses to set the scene and to read balances.

#![allow(dead_code)] // Each test binary uses its own part of this support module.

use std::path::Path;
use std::time::Duration;

use banking::sandbox::{self, SandboxConfig, SandboxHandle};
use banking::{
    AccountNumber, BankAccount, BankCode, BankGateway, CollectRequest, DebitConsent, HttpBank,
    HttpBankConfig, InstitutionCode, Memo, PayerNumber, PayoutRequest, TransferAmount,
};
use serde_json::{json, Value};
use time::OffsetDateTime;

pub const INSTITUTION: &str = "M202600001";

/// A running sandbox and an adapter talking to it.
pub struct Bank {
    pub sandbox: SandboxHandle,
    pub gateway: HttpBank,
    pub admin: reqwest::Client,
    /// The data directory, when the bank owns it; removed when the bank is dropped.
    _dir: Option<tempfile::TempDir>,
}

pub fn account(bank_code: &str, number: &str) -> BankAccount {
    BankAccount::new(
        BankCode::parse(bank_code).unwrap(),
        AccountNumber::parse(number).unwrap(),
    )
}

pub fn amount(won: i64) -> TransferAmount {
    TransferAmount::new(won).unwrap()
}

pub fn memo(text: &str) -> Memo {
    Memo::parse(text).unwrap()
}

pub fn payer(text: &str) -> PayerNumber {
    PayerNumber::parse(text).unwrap()
}

/// Starts a sandbox in `dir` with the default configuration changed by `configure`.
pub async fn start_sandbox(
    dir: &Path,
    configure: impl FnOnce(&mut SandboxConfig),
) -> SandboxHandle {
    let mut config = SandboxConfig::new(dir);
    configure(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    sandbox::spawn(listener, config)
        .await
        .expect("start the sandbox bank")
}

/// An adapter for `sandbox` whose calls give up after `timeout`.
pub fn adapter(sandbox: &SandboxHandle, timeout: Duration) -> HttpBank {
    let mut config = HttpBankConfig::new(
        sandbox.base_url(),
        InstitutionCode::parse(INSTITUTION).unwrap(),
        sandbox.master_account().clone(),
    );
    config.timeout = timeout;
    HttpBank::new(config).unwrap()
}

impl Bank {
    pub async fn start() -> Bank {
        Bank::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut SandboxConfig)) -> Bank {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = start_sandbox(dir.path(), configure).await;
        Bank {
            _dir: Some(dir),
            ..Bank::on(sandbox)
        }
    }

    /// A bank around a sandbox whose data directory the caller keeps.
    pub fn on(sandbox: SandboxHandle) -> Bank {
        Bank {
            gateway: adapter(&sandbox, Duration::from_secs(5)),
            sandbox,
            admin: reqwest::Client::new(),
            _dir: None,
        }
    }

    /// The same sandbox through an adapter with a short timeout.
    pub fn impatient(&self, timeout: Duration) -> HttpBank {
        adapter(&self.sandbox, timeout)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    /// Opens an account at the sandbox with an opening balance.
    pub async fn open(
        &self,
        bank_code: &str,
        number: &str,
        holder: &str,
        balance: i64,
    ) -> BankAccount {
        let response = self
            .admin
            .post(self.url("/admin/accounts"))
            .json(&json!({
                "bank_code_std": bank_code, "account_num": number,
                "account_holder_name": holder, "balance_amt": balance.to_string(),
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        account(bank_code, number)
    }

    /// Opens an account and registers a debit consent for it under `payer_number`.
    pub async fn open_with_consent(
        &self,
        number: &str,
        balance: i64,
        payer_number: &str,
    ) -> BankAccount {
        let member = self.open("004", number, "홍길동", balance).await;
        self.gateway
            .register_consent(&DebitConsent {
                payer_number: payer(payer_number),
                account: member.clone(),
            })
            .await
            .expect("register the consent");
        member
    }

    pub async fn account_view(&self, account: &BankAccount) -> Value {
        let response = self
            .admin
            .get(self.url(&format!(
                "/admin/accounts/{}/{}",
                account.bank_code,
                account.account_number.expose()
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub async fn balance(&self, account: &BankAccount) -> i64 {
        let view = self.account_view(account).await;
        view["balance_amt"].as_str().unwrap().parse().unwrap()
    }

    pub async fn master_balance(&self) -> i64 {
        let master = self.sandbox.master_account().clone();
        self.balance(&master).await
    }

    /// The account's latest statement lines, newest first, as its holder sees them.
    pub async fn transactions(&self, account: &BankAccount) -> Vec<Value> {
        let response = self
            .admin
            .get(self.url(&format!(
                "/admin/accounts/{}/{}/transactions",
                account.bank_code,
                account.account_number.expose()
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["res_list"].as_array().unwrap().clone()
    }

    pub fn collect_request(
        &self,
        from: &BankAccount,
        payer_number: &str,
        won: i64,
    ) -> CollectRequest {
        CollectRequest {
            bank_tran_id: self.gateway.next_tran_id(),
            requested_at: OffsetDateTime::now_utc(),
            from: from.clone(),
            payer_number: payer(payer_number),
            amount: amount(won),
            memo: memo("마이페이 충전"),
            master_memo: memo("충전 홍길동"),
        }
    }

    pub fn payout_request(&self, to: &BankAccount, won: i64, text: &str) -> PayoutRequest {
        PayoutRequest {
            bank_tran_id: self.gateway.next_tran_id(),
            requested_at: OffsetDateTime::now_utc(),
            to: to.clone(),
            amount: amount(won),
            memo: memo(text),
            master_memo: memo("지급"),
        }
    }
}
