//! The real `mypay sandbox-psp` binary, started as users start it, driven through the Toss
//! adapter, stopped with SIGTERM and started again on the same directory.

mod support;

use std::ffi::OsStr;
use std::path::Path;

use psp::{
    BillingKey, CardAmount, CardProcessor, ChargeOutcome, ChargeRequest, CustomerKey, OrderName,
    PaymentLookup, PspOrderId, RefusalReason, SecretKey, TossConfig, TossPayments,
};

const SECRET: &str = "test_sk_binary_0123456789";

fn start(data: &Path) -> support::Started {
    support::start(
        [
            OsStr::new("sandbox-psp"),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--data"),
            data.as_os_str(),
            OsStr::new("--secret-key"),
            OsStr::new(SECRET),
        ],
        "sandbox PSP listening on ",
    )
}

fn charge(card: &str, order: &str) -> ChargeRequest {
    ChargeRequest {
        billing_key: BillingKey::parse(card).unwrap(),
        customer_key: CustomerKey::parse("usr_binary").unwrap(),
        order_id: PspOrderId::parse(order).unwrap(),
        amount: CardAmount::new(12_000).unwrap(),
        order_name: OrderName::parse("binary test").unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_psp_approves_declines_and_keeps_its_books() {
    let data = tempfile::tempdir().unwrap();
    let started = start(data.path());
    let psp = TossPayments::new(TossConfig::new(&started.ready, SecretKey::new(SECRET))).unwrap();
    assert!(matches!(
        psp.charge(&charge("bk_test_ok", "po_binary_1")).await,
        ChargeOutcome::Approved(_)
    ));
    let ChargeOutcome::Declined(refusal) =
        psp.charge(&charge("bk_test_decline", "po_binary_2")).await
    else {
        panic!("declined");
    };
    assert_eq!(refusal.reason, RefusalReason::CardDeclined);
    started.process.stop();

    let again = start(data.path());
    let psp = TossPayments::new(TossConfig::new(&again.ready, SecretKey::new(SECRET))).unwrap();
    let found = psp
        .payment_by_order(&PspOrderId::parse("po_binary_1").unwrap())
        .await
        .unwrap();
    assert!(matches!(found, PaymentLookup::Found(_)), "{found:?}");
    again.process.stop();
}
