//! A server killed in the middle of a checkout, and started again: `mypay serve`, `mypay
//! sandbox-bank` and `mypay sandbox-psp` as separate processes. The PSP charges the card and
//! holds its reply back; while the server waits for it, the server is killed (SIGKILL). The
//! restarted server's resumer waits for the dead run's claim to lapse, asks the PSP by order
//! id, finds the charge, and books it: one
//! charge at the PSP, one ledger entry, the order SUCCESS, and `mypay check` clean.

mod support;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use psp::{CardProcessor, PaymentLookup, PspOrderId, SecretKey, TossConfig, TossPayments};
use serde_json::{json, Value};
use testkit::TestDb;

const ADMIN_KEY: &str = "mpk_crash_test_admin_key_0123456789abcdef";
const PSP_SECRET: &str = "test_sk_crash_0123456789";
const ORDER_ID: &str = "order-crash-0001";

fn serve(url: &str, dir: &Path, bank: &str, psp: &str) -> support::Started {
    support::start(
        [
            OsStr::new("serve"),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--database-url"),
            OsStr::new(url),
            OsStr::new("--bank-url"),
            OsStr::new(bank),
            OsStr::new("--psp-url"),
            OsStr::new(psp),
            OsStr::new("--psp-secret-key"),
            OsStr::new(PSP_SECRET),
            // Long enough that the request still waits for the withheld reply when the server dies.
            OsStr::new("--psp-timeout-ms"),
            OsStr::new("20000"),
            OsStr::new("--payments-resume-after-s"),
            OsStr::new("1"),
            OsStr::new("--admin-api-key"),
            OsStr::new(ADMIN_KEY),
            OsStr::new("--account-key-file"),
            dir.join("account-keys").as_os_str(),
        ],
        "listening on ",
    )
}

async fn call(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_interrupted_by_a_crash_is_finished_after_restart() {
    let test_db = TestDb::new(2).await;
    let url = test_db.url.expose_secret();
    let dir = tempfile::tempdir().unwrap();
    let bank = support::start(
        [
            OsStr::new("sandbox-bank"),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--data"),
            dir.path().join("bank").as_os_str(),
        ],
        "sandbox bank listening on ",
    );
    let psp = support::start(
        [
            OsStr::new("sandbox-psp"),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--data"),
            dir.path().join("psp").as_os_str(),
            OsStr::new("--secret-key"),
            OsStr::new(PSP_SECRET),
            OsStr::new("--hold-ms"),
            OsStr::new("30000"),
        ],
        "sandbox PSP listening on ",
    );
    let server = serve(&url, dir.path(), &bank.ready, &psp.ready);
    let client = reqwest::Client::new();
    let api = |path: &str| format!("{}{path}", server.ready);

    // A buyer, and a merchant whose settlement account is checked at the bank.
    let (status, member) = call(client.post(api("/v1/members")).json(&json!({
        "email": "crash@example.com", "phone": "010-5555-0001",
        "name": "김민수", "password": "correct horse battery",
    })))
    .await;
    assert_eq!(status, 201, "{member}");
    let buyer = member["id"].as_str().unwrap().to_owned();
    let (status, opened) = call(client.post(format!("{}/admin/accounts", bank.ready)).json(
        &json!({
            "bank_code_std": "004", "account_num": "220000000001",
            "account_holder_name": "주식회사가게", "balance_amt": "0",
        }),
    ))
    .await;
    assert!(status < 300, "{opened}");
    let (status, merchant) = call(client
            .post(api("/v1/merchants"))
            .bearer_auth(ADMIN_KEY)
            .header("Idempotency-Key", "onboard-shop")
            .json(&json!({
                "name": "Shop", "fee_bps": 250,
                "settlement_account": {"bank_code": "004", "account_number": "220000000001", "holder_name": "주식회사가게"},
            })),
    )
    .await;
    assert_eq!(status, 201, "{merchant}");
    let seller = merchant["id"].as_str().unwrap().to_owned();

    // The checkout, paid by card on the buyer's behalf; the PSP charges and withholds the reply.
    let checkout = json!({
        "buyer": buyer, "checkout_id": "chk-crash-1",
        "payment_orders": [{"seller_account": seller, "amount": "12000", "currency": "KRW", "payment_order_id": ORDER_ID}],
        "funding": {"card": {"billing_key": "bk_test_lost_reply_crash", "amount": "12000"}},
    });
    let request = client
        .post(api("/v1/payments"))
        .bearer_auth(ADMIN_KEY)
        .json(&checkout)
        .send();
    let pending = tokio::spawn(request);
    let processor =
        TossPayments::new(TossConfig::new(&psp.ready, SecretKey::new(PSP_SECRET))).unwrap();
    let order_id = PspOrderId::parse(ORDER_ID).unwrap();
    let mut charged = false;
    for _ in 0..200 {
        if let Ok(PaymentLookup::Found(_)) = processor.payment_by_order(&order_id).await {
            charged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(charged, "the PSP executed the charge");

    // The server dies while it waits for the PSP's reply.
    server.process.kill();
    assert!(
        pending.await.unwrap().is_err(),
        "the request died with the server"
    );

    // Started again, its resumer finishes the order from what the PSP says.
    let server = serve(&url, dir.path(), &bank.ready, &psp.ready);
    let api = |path: &str| format!("{}{path}", server.ready);
    // The dead server's claim on the order (its lease, 60 s) runs out first.
    let mut order = Value::Null;
    for _ in 0..1200 {
        let (_, body) = call(
            client
                .get(api(&format!("/v1/payment-orders/{ORDER_ID}")))
                .bearer_auth(ADMIN_KEY),
        )
        .await;
        order = body;
        if order["status"] == "SUCCESS" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(order["status"], "SUCCESS", "{order}");
    assert_eq!(order["ledger_updated"], true);
    assert_eq!(order["card"]["state"], "approved");
    let (_, payment) = call(
        client
            .get(api(&format!(
                "/v1/payments/{}",
                order["payment_id"].as_str().unwrap()
            )))
            .bearer_auth(ADMIN_KEY),
    )
    .await;
    assert_eq!(payment["status"], "succeeded", "{payment}");
    let PaymentLookup::Found(record) = processor.payment_by_order(&order_id).await.unwrap() else {
        panic!("the PSP knows the order");
    };
    assert_eq!(
        record.total_amount, 12_000,
        "one charge, of the order's amount"
    );
    let report = processor
        .transactions(
            time::OffsetDateTime::now_utc() - time::Duration::hours(1),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(report.len(), 1, "exactly one charge: {report:?}");

    server.process.stop();
    psp.process.stop();
    bank.process.stop();
    let check = Command::new(support::BINARY)
        .args(["check", "--database-url", &url])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run mypay check");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}
