//! The Toss Payments adapter against a local stub that answers with the API's documented
//! response shapes: what the adapter sends (path, Basic credentials, Idempotency-Key, body) and
//! how it reads every kind of answer.

use std::time::Duration;

use base64::Engine as _;
use psp::{
    BillingKey, CancelId, CancelOutcome, CancelRequest, CardAmount, CardProcessor, ChargeOutcome,
    ChargeRequest, CustomerKey, OrderName, PaymentKey, PaymentLookup, PaymentStatus, PspOrderId,
    RefusalReason, SecretKey, TossConfig, TossPayments,
};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R";

fn adapter(server: &MockServer) -> TossPayments {
    TossPayments::new(TossConfig {
        timeout: Duration::from_millis(500),
        ..TossConfig::new(&server.uri(), SecretKey::new(SECRET))
    })
    .unwrap()
}

fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SECRET}:"))
    )
}

fn request() -> ChargeRequest {
    ChargeRequest {
        billing_key: BillingKey::parse("Z_t5vOvQxrj4499PeiJcjen28-V2RyqgYTwN44Rdzk0=").unwrap(),
        customer_key: CustomerKey::parse("aENcQAtPdYbTjGhtQnNVj").unwrap(),
        order_id: PspOrderId::parse("a4CWyWY5m89PNh7xJwhk1").unwrap(),
        amount: CardAmount::new(4_900).unwrap(),
        order_name: OrderName::parse("토스 프라임 구독").unwrap(),
    }
}

/// A payment object as the API documents it (trimmed of fields the adapter ignores).
fn payment(order_id: &str, amount: i64) -> serde_json::Value {
    json!({
        "mId": "tosspayments",
        "lastTransactionKey": "9C62B18EEF0DE3EB7F4422EB6D14BC6E",
        "paymentKey": "5EnNZRJGvaBX7zk2yd8ydw26XvwXkLrx9POLqKQjmAw4b0e1",
        "orderId": order_id,
        "orderName": "토스 프라임 구독",
        "taxExemptionAmount": 0,
        "status": "DONE",
        "requestedAt": "2024-02-13T12:17:57+09:00",
        "approvedAt": "2024-02-13T12:18:14+09:00",
        "useEscrow": false,
        "cultureExpense": false,
        "card": {"issuerCode": "71", "acquirerCode": "71", "number": "12345678****000*",
                 "installmentPlanMonths": 0, "isInterestFree": false, "approveNo": "00000000",
                 "cardType": "신용", "ownerType": "개인", "acquireStatus": "READY", "amount": amount},
        "cancels": null,
        "type": "BILLING",
        "country": "KR",
        "failure": null,
        "currency": "KRW",
        "totalAmount": amount,
        "balanceAmount": amount,
        "suppliedAmount": 4455,
        "vat": 445,
        "taxFreeAmount": 0,
        "method": "카드",
        "version": "2022-11-16"
    })
}

fn error(code: &str, message: &str) -> serde_json::Value {
    json!({"code": code, "message": message})
}

#[tokio::test]
async fn a_billing_approval_sends_credentials_idempotency_key_and_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(
            "/v1/billing/Z_t5vOvQxrj4499PeiJcjen28-V2RyqgYTwN44Rdzk0=",
        ))
        .and(header("Authorization", basic().as_str()))
        .and(header("Idempotency-Key", "a4CWyWY5m89PNh7xJwhk1"))
        .and(body_json(
            json!({"customerKey": "aENcQAtPdYbTjGhtQnNVj", "amount": 4900,
                              "orderId": "a4CWyWY5m89PNh7xJwhk1", "orderName": "토스 프라임 구독"}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(payment("a4CWyWY5m89PNh7xJwhk1", 4_900)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let ChargeOutcome::Approved(approval) = adapter(&server).charge(&request()).await else {
        panic!("approved");
    };
    assert_eq!(
        approval.payment_key.as_str(),
        "5EnNZRJGvaBX7zk2yd8ydw26XvwXkLrx9POLqKQjmAw4b0e1"
    );
    assert_eq!(approval.amount.won(), 4_900);
    assert_eq!(approval.approved_at.unix_timestamp(), 1_707_794_294);
}

#[tokio::test]
async fn documented_refusals_are_declines_and_everything_in_doubt_is_unknown() {
    let cases = [
        (
            403,
            "REJECT_CARD_COMPANY",
            Some(RefusalReason::CardDeclined),
        ),
        (
            400,
            "INVALID_CARD_EXPIRATION",
            Some(RefusalReason::CardDeclined),
        ),
        (
            403,
            "REJECT_CARD_PAYMENT",
            Some(RefusalReason::CardDeclined),
        ),
        (401, "UNAUTHORIZED_KEY", Some(RefusalReason::Unauthorized)),
        (400, "INVALID_REQUEST", Some(RefusalReason::InvalidRequest)),
        (400, "DUPLICATED_ORDER_ID", None),
        (400, "ALREADY_PROCESSED_PAYMENT", None),
        (409, "IDEMPOTENT_REQUEST_PROCESSING", None),
        (500, "FAILED_INTERNAL_SYSTEM_PROCESSING", None),
        (500, "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING", None),
        (400, "A_CODE_NOBODY_DOCUMENTED", None),
    ];
    for (status, code, expected) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_json(error(code, "메시지")))
            .mount(&server)
            .await;
        let outcome = adapter(&server).charge(&request()).await;
        match (expected, outcome) {
            (Some(reason), ChargeOutcome::Declined(refusal)) => {
                assert_eq!(refusal.reason, reason, "{code}");
                assert_eq!(refusal.code, code);
            }
            (None, ChargeOutcome::Unknown { .. }) => {}
            (expected, outcome) => panic!("{code}: expected {expected:?}, got {outcome:?}"),
        }
    }
}

#[tokio::test]
async fn replies_that_prove_nothing_are_unknown() {
    // A success about another order, an unreadable success, a 502 without a body, and a reply
    // slower than the timeout.
    let responses = [
        ResponseTemplate::new(200).set_body_json(payment("another-order-id", 4_900)),
        ResponseTemplate::new(200).set_body_json(payment("a4CWyWY5m89PNh7xJwhk1", 5_000)),
        ResponseTemplate::new(200).set_body_string("<html>"),
        ResponseTemplate::new(502),
        ResponseTemplate::new(200)
            .set_body_json(payment("a4CWyWY5m89PNh7xJwhk1", 4_900))
            .set_delay(Duration::from_secs(2)),
    ];
    for response in responses {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(response)
            .mount(&server)
            .await;
        let outcome = adapter(&server).charge(&request()).await;
        assert!(
            matches!(outcome, ChargeOutcome::Unknown { .. }),
            "{outcome:?}"
        );
    }
    // A 4xx without an error body was refused before processing; no server at all, likewise.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(405))
        .mount(&server)
        .await;
    let ChargeOutcome::Declined(refusal) = adapter(&server).charge(&request()).await else {
        panic!("refused");
    };
    assert_eq!(refusal.reason, RefusalReason::RequestRejected);
    let gone = TossPayments::new(TossConfig::new(
        "http://127.0.0.1:9",
        SecretKey::new(SECRET),
    ))
    .unwrap();
    let ChargeOutcome::Declined(refusal) = gone.charge(&request()).await else {
        panic!("refused");
    };
    assert_eq!(refusal.reason, RefusalReason::Unreachable);
}

#[tokio::test]
async fn a_cancellation_is_read_from_the_payment_it_returns() {
    let server = MockServer::start().await;
    let mut cancelled = payment("a4CWyWY5m89PNh7xJwhk1", 4_900);
    cancelled["status"] = json!("PARTIAL_CANCELED");
    cancelled["balanceAmount"] = json!(3_900);
    cancelled["cancels"] = json!([{
        "transactionKey": "090A796806E726BBB929F4A2CA7DB9A7",
        "cancelReason": "고객 변심",
        "taxExemptionAmount": 0,
        "canceledAt": "2024-02-13T12:20:23+09:00",
        "easyPayDiscountAmount": 0,
        "receiptKey": null,
        "cancelAmount": 1000,
        "taxFreeAmount": 0,
        "refundableAmount": 3900,
        "cancelStatus": "DONE",
        "cancelRequestId": null
    }]);
    Mock::given(method("POST"))
        .and(path(
            "/v1/payments/5EnNZRJGvaBX7zk2yd8ydw26XvwXkLrx9POLqKQjmAw4b0e1/cancel",
        ))
        .and(header("Idempotency-Key", "rf_01HZX"))
        .and(body_json(
            json!({"cancelReason": "고객 변심", "cancelAmount": 1000}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(cancelled))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payments/unknownpaymentkey/cancel"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(error("NOT_FOUND_PAYMENT", "존재하지 않는 결제 입니다.")),
        )
        .mount(&server)
        .await;
    let psp = adapter(&server);
    let request = CancelRequest {
        payment_key: PaymentKey::parse("5EnNZRJGvaBX7zk2yd8ydw26XvwXkLrx9POLqKQjmAw4b0e1").unwrap(),
        cancel_id: CancelId::parse("rf_01HZX").unwrap(),
        amount: CardAmount::new(1_000).unwrap(),
        reason: "고객 변심".into(),
    };
    let CancelOutcome::Cancelled(cancellation) = psp.cancel(&request).await else {
        panic!("cancelled");
    };
    assert_eq!(
        cancellation.transaction_key,
        "090A796806E726BBB929F4A2CA7DB9A7"
    );
    assert_eq!(cancellation.balance_amount, 3_900);
    let missing = CancelRequest {
        payment_key: PaymentKey::parse("unknownpaymentkey").unwrap(),
        ..request
    };
    let CancelOutcome::Refused(refusal) = psp.cancel(&missing).await else {
        panic!("refused");
    };
    assert_eq!(refusal.reason, RefusalReason::NotFound);
}

#[tokio::test]
async fn the_inquiry_and_the_report_read_their_documented_shapes() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/payments/orders/a4CWyWY5m89PNh7xJwhk1"))
        .and(header("Authorization", basic().as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(payment("a4CWyWY5m89PNh7xJwhk1", 4_900)),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payments/orders/nosuchorder"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(error("NOT_FOUND_PAYMENT", "존재하지 않는 결제 입니다.")),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/transactions"))
        .and(query_param("startDate", "2024-02-13T00:00:00"))
        .and(query_param("endDate", "2024-02-14T00:00:00"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{
            "mId": "tosspayments",
            "transactionKey": "9C62B18EEF0DE3EB7F4422EB6D14BC6E",
            "paymentKey": "5EnNZRJGvaBX7zk2yd8ydw26XvwXkLrx9POLqKQjmAw4b0e1",
            "orderId": "a4CWyWY5m89PNh7xJwhk1",
            "method": "카드",
            "customerKey": "aENcQAtPdYbTjGhtQnNVj",
            "useEscrow": false,
            "receiptUrl": "https://dashboard.tosspayments.com/receipt/redirection?transactionId=x",
            "status": "DONE",
            "transactionAt": "2024-02-13T12:18:14+09:00",
            "currency": "KRW",
            "amount": 4900
        }])))
        .mount(&server)
        .await;
    let psp = adapter(&server);
    let PaymentLookup::Found(record) = psp
        .payment_by_order(&PspOrderId::parse("a4CWyWY5m89PNh7xJwhk1").unwrap())
        .await
        .unwrap()
    else {
        panic!("found");
    };
    assert_eq!(record.status, PaymentStatus::Done);
    assert_eq!(record.approval().unwrap().amount.won(), 4_900);
    assert_eq!(
        psp.payment_by_order(&PspOrderId::parse("nosuchorder").unwrap())
            .await
            .unwrap(),
        PaymentLookup::NotFound
    );
    let day = time::macros::datetime!(2024-02-13 00:00 +09:00);
    let report = psp
        .transactions(day, day + time::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].amount, 4_900);
    assert_eq!(report[0].order_id.as_str(), "a4CWyWY5m89PNh7xJwhk1");
}
