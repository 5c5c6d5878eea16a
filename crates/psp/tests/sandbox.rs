//! The Toss adapter against the sandbox PSP, over real HTTP: each test card token, each fault,
//! idempotent retries, cancellations, the report, credentials and persistence.

use std::time::Duration;

use psp::sandbox::{self, SandboxPspConfig, SandboxPspHandle};
use psp::{
    BillingKey, CancelId, CancelOutcome, CancelRequest, CardAmount, CardProcessor, ChargeOutcome,
    ChargeRequest, CustomerKey, OrderName, PaymentLookup, PaymentStatus, PspOrderId, RefusalReason,
    SecretKey, TossConfig, TossPayments,
};
use time::OffsetDateTime;

const SECRET: &str = "test_sk_sandbox_0123456789";

async fn start(dir: &std::path::Path) -> SandboxPspHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = SandboxPspConfig {
        secret_key: Some(SecretKey::new(SECRET)),
        hold: Duration::from_millis(800),
        ..SandboxPspConfig::new(dir)
    };
    sandbox::spawn(listener, config).await.unwrap()
}

/// An adapter that gives up well before the sandbox's hold time.
fn adapter(sandbox: &SandboxPspHandle, secret: &str) -> TossPayments {
    TossPayments::new(TossConfig {
        timeout: Duration::from_millis(300),
        ..TossConfig::new(sandbox.base_url(), SecretKey::new(secret))
    })
    .unwrap()
}

fn charge(card: &str, order: &str, won: i64) -> ChargeRequest {
    ChargeRequest {
        billing_key: BillingKey::parse(card).unwrap(),
        customer_key: CustomerKey::parse("usr_customer_1").unwrap(),
        order_id: PspOrderId::parse(order).unwrap(),
        amount: CardAmount::new(won).unwrap(),
        order_name: OrderName::parse("티셔츠 외 1건").unwrap(),
    }
}

async fn lookup(psp: &TossPayments, order: &str) -> PaymentLookup {
    psp.payment_by_order(&PspOrderId::parse(order).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_test_card_is_charged_once_however_often_the_order_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start(dir.path()).await;
    let psp = adapter(&sandbox, SECRET);

    let ChargeOutcome::Approved(first) = psp
        .charge(&charge("bk_test_ok_1", "po_order_0001", 15_000))
        .await
    else {
        panic!("a test card is approved");
    };
    assert_eq!(first.amount.won(), 15_000);
    let ChargeOutcome::Approved(again) = psp
        .charge(&charge("bk_test_ok_1", "po_order_0001", 15_000))
        .await
    else {
        panic!("the same order answers the same approval");
    };
    assert_eq!(again.payment_key, first.payment_key);

    let PaymentLookup::Found(record) = lookup(&psp, "po_order_0001").await else {
        panic!("the inquiry finds the payment");
    };
    assert_eq!(record.status, PaymentStatus::Done);
    assert_eq!(record.approval().unwrap().payment_key, first.payment_key);
    assert_eq!(lookup(&psp, "po_order_none").await, PaymentLookup::NotFound);

    // Another amount under the same order id is not a second charge: the PSP refuses the key
    // reuse, and the adapter reports it as unknown, to be resolved by inquiry.
    let other = psp
        .charge(&charge("bk_test_ok_1", "po_order_0001", 20_000))
        .await;
    assert!(matches!(other, ChargeOutcome::Unknown { .. }), "{other:?}");
    let PaymentLookup::Found(record) = lookup(&psp, "po_order_0001").await else {
        panic!("still there");
    };
    assert_eq!(record.total_amount, 15_000);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn declines_charge_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start(dir.path()).await;
    let psp = adapter(&sandbox, SECRET);
    for (card, code) in [
        ("bk_test_decline", "REJECT_CARD_COMPANY"),
        ("bk_test_limit", "REJECT_CARD_PAYMENT"),
    ] {
        let order = format!("po_{card}");
        let ChargeOutcome::Declined(refusal) = psp.charge(&charge(card, &order, 5_000)).await
        else {
            panic!("{card} is declined");
        };
        assert_eq!(refusal.reason, RefusalReason::CardDeclined);
        assert_eq!(refusal.code, code);
        assert_eq!(lookup(&psp, &order).await, PaymentLookup::NotFound);
    }
    let ChargeOutcome::Declined(refusal) = psp
        .charge(&charge("real_card_key", "po_not_test", 5_000))
        .await
    else {
        panic!("only test cards are accepted");
    };
    assert_eq!(refusal.reason, RefusalReason::InvalidRequest);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_timeout_is_unknown_and_the_inquiry_says_nothing_happened() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start(dir.path()).await;
    let psp = adapter(&sandbox, SECRET);
    let outcome = psp
        .charge(&charge("bk_test_timeout", "po_timeout_1", 7_000))
        .await;
    assert!(
        matches!(outcome, ChargeOutcome::Unknown { .. }),
        "{outcome:?}"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(lookup(&psp, "po_timeout_1").await, PaymentLookup::NotFound);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_lost_reply_is_unknown_and_resolves_to_the_one_charge_made() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start(dir.path()).await;
    let psp = adapter(&sandbox, SECRET);
    let request = charge("bk_test_lost_reply", "po_lost_0001", 9_900);
    let outcome = psp.charge(&request).await;
    assert!(
        matches!(outcome, ChargeOutcome::Unknown { .. }),
        "{outcome:?}"
    );
    let PaymentLookup::Found(record) = lookup(&psp, "po_lost_0001").await else {
        panic!("the charge happened although the reply was lost");
    };
    let approval = record.approval().expect("an approval");
    assert_eq!(approval.amount.won(), 9_900);

    // Retrying under the same order id replays the first approval (after the hold) and
    // charges nothing more.
    let retry =
        TossPayments::new(TossConfig::new(sandbox.base_url(), SecretKey::new(SECRET))).unwrap();
    let ChargeOutcome::Approved(replayed) = retry.charge(&request).await else {
        panic!("the retry answers the first approval");
    };
    assert_eq!(replayed.payment_key, approval.payment_key);
    let report = psp
        .transactions(
            OffsetDateTime::now_utc() - time::Duration::hours(1),
            OffsetDateTime::now_utc() + time::Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(report.len(), 1, "one approval in the report: {report:?}");
    sandbox.shutdown().await;
}

fn cancel(payment_key: &psp::PaymentKey, id: &str, won: i64, reason: &str) -> CancelRequest {
    CancelRequest {
        payment_key: payment_key.clone(),
        cancel_id: CancelId::parse(id).unwrap(),
        amount: CardAmount::new(won).unwrap(),
        reason: reason.to_owned(),
    }
}

#[tokio::test]
async fn cancellations_never_give_back_more_than_was_charged() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start(dir.path()).await;
    let psp = adapter(&sandbox, SECRET);
    let ChargeOutcome::Approved(approval) = psp
        .charge(&charge("bk_test_ok", "po_refund_01", 10_000))
        .await
    else {
        panic!("approved");
    };
    let key = approval.payment_key;

    let CancelOutcome::Cancelled(first) =
        psp.cancel(&cancel(&key, "rf_1", 3_000, "단순 변심")).await
    else {
        panic!("a partial cancellation");
    };
    assert_eq!(first.balance_amount, 7_000);
    let CancelOutcome::Cancelled(same) =
        psp.cancel(&cancel(&key, "rf_1", 3_000, "단순 변심")).await
    else {
        panic!("the same cancel id answers the same cancellation");
    };
    assert_eq!(same.transaction_key, first.transaction_key);

    let CancelOutcome::Refused(refusal) =
        psp.cancel(&cancel(&key, "rf_2", 8_000, "too much")).await
    else {
        panic!("more than remains is refused");
    };
    assert_eq!(refusal.reason, RefusalReason::NotCancelable);

    // A lost reply: unknown, and the retry with the same id answers the one cancellation.
    let lost = cancel(&key, "rf_3", 7_000, "test:lost_reply");
    assert!(matches!(
        psp.cancel(&lost).await,
        CancelOutcome::Unknown { .. }
    ));
    let patient =
        TossPayments::new(TossConfig::new(sandbox.base_url(), SecretKey::new(SECRET))).unwrap();
    let CancelOutcome::Cancelled(rest) = patient.cancel(&lost).await else {
        panic!("the retry answers the cancellation that happened");
    };
    assert_eq!(rest.balance_amount, 0);

    let CancelOutcome::Refused(refusal) = psp.cancel(&cancel(&key, "rf_4", 1, "again")).await
    else {
        panic!("nothing remains");
    };
    assert_eq!(refusal.reason, RefusalReason::NotCancelable);
    let PaymentLookup::Found(record) = lookup(&psp, "po_refund_01").await else {
        panic!("found");
    };
    assert_eq!(record.status, PaymentStatus::Canceled);
    assert_eq!(
        record.cancels.iter().map(|c| c.amount.won()).sum::<i64>(),
        10_000
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_wrong_secret_key_is_refused_and_the_books_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start(dir.path()).await;
    let wrong = adapter(&sandbox, "test_sk_wrong");
    let ChargeOutcome::Declined(refusal) = wrong
        .charge(&charge("bk_test_ok", "po_auth_001", 1_000))
        .await
    else {
        panic!("refused");
    };
    assert_eq!(refusal.reason, RefusalReason::Unauthorized);
    let psp = adapter(&sandbox, SECRET);
    assert!(matches!(
        psp.charge(&charge("bk_test_ok", "po_keep_001", 1_000))
            .await,
        ChargeOutcome::Approved(_)
    ));
    sandbox.shutdown().await;

    let again = start(dir.path()).await;
    let psp = adapter(&again, SECRET);
    assert!(matches!(
        lookup(&psp, "po_keep_001").await,
        PaymentLookup::Found(_)
    ));
    again.shutdown().await;
}

#[tokio::test]
async fn keys_are_forgotten_after_their_time_and_test_refusals_cancel_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // A sandbox that remembers idempotency keys for no time at all.
    let sandbox = sandbox::spawn(
        listener,
        SandboxPspConfig {
            hold: Duration::from_millis(800),
            idempotency_ttl: Duration::ZERO,
            ..SandboxPspConfig::new(dir.path())
        },
    )
    .await
    .unwrap();
    let psp = adapter(&sandbox, SECRET);
    let ChargeOutcome::Approved(approval) = psp
        .charge(&charge("bk_test_ok", "po_forget_01", 10_000))
        .await
    else {
        panic!("approved");
    };
    let key = approval.payment_key;

    let CancelOutcome::Refused(refusal) = psp
        .cancel(&cancel(&key, "rf_refuse", 1_000, "test:refuse please"))
        .await
    else {
        panic!("a test refusal");
    };
    assert_eq!(refusal.reason, RefusalReason::NotCancelable);
    assert_eq!(refusal.code, "NOT_CANCELABLE_PAYMENT");

    let CancelOutcome::Cancelled(first) = psp.cancel(&cancel(&key, "rf_1", 10_000, "all")).await
    else {
        panic!("cancelled");
    };
    assert_eq!(first.balance_amount, 0);
    // The same id again is a new request once its key is forgotten: refused, since nothing
    // remains, and (as a lost_reply request executes nothing here) answered at once.
    let again = cancel(&key, "rf_1", 10_000, "all");
    let CancelOutcome::Refused(refusal) = psp.cancel(&again).await else {
        panic!("a forgotten key is a new request");
    };
    assert_eq!(refusal.code, "ALREADY_CANCELED_PAYMENT");
    let lost = cancel(&key, "rf_2", 1_000, "test:lost_reply nothing left");
    let CancelOutcome::Refused(refusal) = psp.cancel(&lost).await else {
        panic!("a refusal executed nothing, so its reply is not lost");
    };
    assert_eq!(refusal.reason, RefusalReason::NotCancelable);
    let PaymentLookup::Found(record) = lookup(&psp, "po_forget_01").await else {
        panic!("found");
    };
    assert_eq!(record.cancels.len(), 1, "{record:?}");
    sandbox.shutdown().await;
}
