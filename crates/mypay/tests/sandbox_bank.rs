//! The real `mypay sandbox-bank` binary, started as users start it: on port 0 with a data
//! directory, a fault rule and an admin token from the command line, driven through the
//! `HttpBank` adapter and the admin API, stopped with SIGTERM, and started again on the same
//! directory. (It lives here rather than in `crates/banking/tests` because only the package that
//! defines a binary gets its path from cargo.)

mod support;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use banking::{
    AccountNumber, BankAccount, BankCode, BankGateway, CollectRequest, DebitConsent, HttpBank,
    HttpBankConfig, InstitutionCode, Memo, PayerNumber, RealNameOutcome, RefusalCode,
    TransferAmount, TransferOutcome,
};
use serde_json::{json, Value};
use support::{Process, BINARY};

const TOKEN: &str = "sandbox-binary-test-token";

struct SandboxBank {
    process: Process,
    base: String,
}

fn start(data: &Path, extra: &[&str]) -> SandboxBank {
    let mut args = vec![
        OsStr::new("sandbox-bank"),
        OsStr::new("--listen"),
        OsStr::new("127.0.0.1:0"),
        OsStr::new("--data"),
        data.as_os_str(),
        OsStr::new("--admin-token"),
        OsStr::new(TOKEN),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let started = support::start(args, "sandbox bank listening on ");
    for line in &started.before {
        assert!(
            !line.contains("100200300400"),
            "the master account is printed masked: {line}"
        );
    }
    SandboxBank {
        process: started.process,
        base: started.ready,
    }
}

impl SandboxBank {
    fn stop(self) {
        self.process.stop();
    }

    fn gateway(&self) -> HttpBank {
        HttpBank::new(HttpBankConfig::new(
            &self.base,
            InstitutionCode::parse("M202600001").unwrap(),
            master(),
        ))
        .unwrap()
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }
}

fn master() -> BankAccount {
    BankAccount::new(
        BankCode::parse("088").unwrap(),
        AccountNumber::parse("100200300400").unwrap(),
    )
}

fn member() -> BankAccount {
    BankAccount::new(
        BankCode::parse("004").unwrap(),
        AccountNumber::parse("110123456789").unwrap(),
    )
}

fn collect(gateway: &HttpBank, won: i64) -> CollectRequest {
    CollectRequest {
        bank_tran_id: gateway.next_tran_id(),
        requested_at: time::OffsetDateTime::now_utc(),
        from: member(),
        payer_number: PayerNumber::parse("PAYER1").unwrap(),
        amount: TransferAmount::new(won).unwrap(),
        memo: Memo::parse("마이페이 충전").unwrap(),
        master_memo: Memo::parse("충전").unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_bank_serves_faults_from_the_command_line_and_keeps_its_books() {
    let data = tempfile::tempdir().unwrap();
    let bank = start(data.path(), &["--fault", "collect=error,count=1"]);
    let gateway = bank.gateway();

    let (status, _) = bank
        .admin(
            reqwest::Method::POST,
            "/admin/accounts",
            Some(
                json!({"bank_code_std": "004", "account_num": "110123456789",
                        "account_holder_name": "홍길동", "balance_amt": "50000"}),
            ),
        )
        .await;
    assert_eq!(status, 201);
    let found = gateway.real_name(&member()).await.unwrap();
    assert!(
        matches!(found, RealNameOutcome::Found { ref holder_name } if holder_name.expose() == "홍길동")
    );
    gateway
        .register_consent(&DebitConsent {
            payer_number: PayerNumber::parse("PAYER1").unwrap(),
            account: member(),
        })
        .await
        .unwrap();

    // The first collect meets the fault given on the command line; the second goes through.
    let first = gateway.collect(&collect(&gateway, 20_000)).await;
    assert!(
        matches!(
            first,
            TransferOutcome::Failed {
                code: RefusalCode::BankSystemError,
                ..
            }
        ),
        "{first:?}"
    );
    let second = gateway.collect(&collect(&gateway, 20_000)).await;
    assert!(
        matches!(second, TransferOutcome::Succeeded { .. }),
        "{second:?}"
    );
    let (_, account) = bank
        .admin(
            reqwest::Method::GET,
            "/admin/accounts/004/110123456789",
            None,
        )
        .await;
    assert_eq!(account["balance_amt"], "30000");
    let (_, faults) = bank
        .admin(reqwest::Method::GET, "/admin/faults", None)
        .await;
    assert_eq!(faults["faults"], json!([]));
    bank.stop();

    // Started again on the same directory, the books are as they were.
    let bank = start(data.path(), &[]);
    let (_, account) = bank
        .admin(
            reqwest::Method::GET,
            "/admin/accounts/004/110123456789",
            None,
        )
        .await;
    assert_eq!(account["balance_amt"], "30000");
    let (_, master) = bank
        .admin(reqwest::Method::GET, "/admin/master", None)
        .await;
    assert_eq!(master["balance_amt"], "1000020000");
    bank.stop();
}

#[test]
fn a_bad_fault_rule_is_refused_clearly() {
    let output = Command::new(BINARY)
        .args([
            "sandbox-bank",
            "--listen",
            "127.0.0.1:0",
            "--fault",
            "collect=explode",
        ])
        .output()
        .expect("run mypay");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown kind"), "{stderr}");
}
