//! Refunds over HTTP, black-box, against the in-process sandbox bank and sandbox PSP: partial
//! and full refunds of a mixed-funding order coming back points first, then money, then card,
//! with the ledger's balances; refusals that move nothing; concurrent refunds of one order;
//! a card cancellation whose reply was lost, finished by the resumer once; one sent while the
//! PSP was down, kept pending and sent when it is back; a repeat the PSP no longer remembers,
//! decided by asking it what it cancelled; a PSP refusal that gives the reservation back;
//! refund keys; who may refund and read; escrow orders.

mod common;

use std::time::Duration;

use common::{
    assert_books_hold, assert_error, charge, escrow, grant_points, linked_member, payable, posted,
    postings, psp_lookup, send, spawn_app, spawn_app_with_manual_clock, Linked, TestApp,
};
use payments::{NewRefund, PaymentError, RefundStatus};
use psp::CardProcessor;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::task::JoinSet;

const RECEIVABLE: &str = "asset:psp:receivable:KRW";

/// Pays a one-order checkout as the buyer and returns the order (`po_…`) as the API shows it.
async fn paid_order(
    app: &TestApp,
    buyer: &Linked,
    seller: &str,
    order_id: &str,
    amount: i64,
    escrow: bool,
    funding: Value,
) -> Value {
    let body = json!({
        "checkout_id": format!("chk-{order_id}"),
        "payment_orders": [{
            "seller_account": seller, "amount": amount.to_string(), "currency": "KRW",
            "payment_order_id": order_id, "escrow": escrow,
        }],
        "funding": funding,
    });
    let (status, payment) = send(
        app.bearer(&buyer.member.token, Method::POST, "/v1/payments")
            .json(&body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    let order = payment["payment_orders"][0].clone();
    assert_eq!(order["status"], "SUCCESS", "{payment}");
    order
}

/// A new shop and a 10,000 won order paid by card by buyer `n`: (the shop, the order's `po_` id).
async fn card_order(app: &TestApp, n: u32, order_id: &str) -> (String, String) {
    let (shop, _) = app.merchant("Shop").await;
    let buyer = linked_member(app, n, 100_000).await;
    let card = json!({"card": {"billing_key": format!("bk_test_ok_{n}"), "amount": "10000"}});
    let order = paid_order(app, &buyer, &shop, order_id, 10_000, false, card).await;
    (shop, order["id"].as_str().unwrap().to_owned())
}

/// One pass of the refunds resumer over every pending refund: (examined, finished).
async fn resume(app: &TestApp) -> (usize, usize) {
    let pass = app
        .payments
        .resume_refunds(Duration::ZERO, 100)
        .await
        .unwrap();
    (pass.examined, pass.finished)
}

/// A refund as `GET /v1/refunds/{id}` shows it now.
async fn read_refund(app: &TestApp, refund: &Value) -> Value {
    let id = refund["id"].as_str().unwrap();
    let (status, body) = app.get(&format!("/v1/refunds/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Asks for a refund of `order` as `token` under `key`.
async fn refund(
    app: &TestApp,
    token: &str,
    order: &str,
    key: &str,
    body: Value,
) -> (StatusCode, Value) {
    send(
        app.bearer(
            token,
            Method::POST,
            &format!("/v1/payment-orders/{order}/refunds"),
        )
        .header("Idempotency-Key", key)
        .json(&body),
    )
    .await
}

fn wallet(member: &str) -> String {
    format!("liability:member:{member}:money:KRW")
}

fn points(member: &str) -> String {
    format!("liability:member:{member}:points:KRW")
}

/// The payment the sandbox PSP holds for an order id, with its cancellations.
async fn psp_record(app: &TestApp, order_id: &str) -> psp::PaymentRecord {
    match psp_lookup(app, order_id).await {
        psp::PaymentLookup::Found(record) => record,
        psp::PaymentLookup::NotFound => panic!("the PSP has no payment for {order_id}"),
    }
}

fn won(value: &Value) -> i64 {
    value.as_str().expect("a decimal string").parse().unwrap()
}

/// The order's refunded parts as (points, money, card).
fn refunded(order: &Value) -> (i64, i64, i64) {
    let parts = &order["refunded"];
    (
        won(&parts["points"]),
        won(&parts["money"]),
        won(&parts["card"]),
    )
}

fn parts(refund: &Value) -> (i64, i64, i64) {
    let parts = &refund["parts"];
    (
        won(&parts["points"]),
        won(&parts["money"]),
        won(&parts["card"]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partial_and_full_refunds_come_back_points_first_then_money_then_card() {
    let app = spawn_app().await;
    let (shop, shop_key) = app.merchant("Shop").await;
    let (_, platform) = app.api_key("platform").await;
    let buyer = linked_member(&app, 1, 100_000).await;
    grant_points(&app, &buyer.member.id, 3_000).await;
    charge(&app, &buyer, 10_000).await;
    let order = paid_order(
        &app,
        &buyer,
        &shop,
        "order-mixed-1",
        20_000,
        false,
        json!({"points": "3000", "money": "9000",
               "card": {"billing_key": "bk_test_ok_1", "amount": "8000"}}),
    )
    .await;
    let po = order["id"].as_str().unwrap();
    let me = &buyer.member.id;
    assert_eq!(posted(&app, &points(me)).await, 0);
    assert_eq!(posted(&app, &wallet(me)).await, 1_000);
    assert_eq!(posted(&app, &payable(&shop)).await, 20_000);
    assert_eq!(posted(&app, RECEIVABLE).await, 8_000);

    // 5,000 by the seller's key: all the points, then money.
    let (status, first) = refund(
        &app,
        &shop_key,
        po,
        "rf-mixed-1",
        json!({"amount": "5000", "reason": "단순 변심"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["amount"], "5000");
    assert_eq!(parts(&first), (3_000, 2_000, 0));
    assert_eq!(first["card_state"], "none");
    assert_eq!(first["from_escrow"], false);
    assert_eq!(first["payment_order"], po);
    assert_eq!(first["payment_order_id"], "order-mixed-1");
    assert_eq!(refunded(&first["order"]), (3_000, 2_000, 0));
    let mtx = first["money_transaction_id"].as_str().unwrap();
    assert!(mtx.starts_with("mtx_"), "{first}");
    assert_eq!(
        postings(&app, mtx).await,
        vec![
            (wallet(me), -2_000),
            (points(me), -3_000),
            (payable(&shop), 5_000),
        ]
    );
    assert_eq!(posted(&app, &points(me)).await, 3_000);
    assert_eq!(posted(&app, &wallet(me)).await, 3_000);
    assert_eq!(posted(&app, &payable(&shop)).await, 15_000);

    // 10,000 by the platform: the rest of the money, then card, cancelled at the PSP.
    let (status, second) = refund(
        &app,
        &platform,
        "order-mixed-1",
        "rf-mixed-2",
        json!({"amount": "10000"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(parts(&second), (0, 7_000, 3_000));
    assert_eq!(second["card_state"], "cancelled");
    assert_eq!(posted(&app, &wallet(me)).await, 10_000);
    assert_eq!(posted(&app, &payable(&shop)).await, 5_000);
    assert_eq!(posted(&app, RECEIVABLE).await, 5_000);

    // Everything that remains, by the admin: only card is left.
    let (status, last) = refund(&app, &app.admin_key, po, "rf-mixed-3", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{last}");
    assert_eq!(parts(&last), (0, 0, 5_000));
    assert_eq!(refunded(&last["order"]), (3_000, 9_000, 8_000));
    assert_eq!(posted(&app, &points(me)).await, 3_000);
    assert_eq!(posted(&app, &wallet(me)).await, 10_000);
    assert_eq!(posted(&app, &payable(&shop)).await, 0);
    assert_eq!(posted(&app, RECEIVABLE).await, 0);

    // Nothing remains: asking for more is refused, and nothing moves.
    let (status, error) = refund(&app, &app.admin_key, po, "rf-mixed-4", json!({})).await;
    assert_error(status, &error, 422, "nothing_to_refund");
    let (status, error) = refund(
        &app,
        &app.admin_key,
        po,
        "rf-mixed-5",
        json!({"amount": "1"}),
    )
    .await;
    assert_error(status, &error, 422, "refund_exceeds_payment");
    assert_eq!(posted(&app, &payable(&shop)).await, 0);

    // The PSP holds the two card cancellations; the buyer's history shows the money parts.
    let record = psp_record(&app, "order-mixed-1").await;
    assert_eq!(record.status, psp::PaymentStatus::Canceled);
    let cancelled: Vec<i64> = record.cancels.iter().map(|c| c.amount.won()).collect();
    assert_eq!(cancelled, vec![3_000, 5_000]);
    let (_, history) =
        send(app.bearer(&buyer.member.token, Method::GET, "/v1/wallets/KRW/history")).await;
    let entries = history["data"].as_array().unwrap();
    assert_eq!(entries[0]["kind"], "refund", "{history}");
    assert_eq!(entries[0]["amount"], "7000");
    assert_eq!(
        entries[0]["id"], second["money_transaction_id"],
        "{history}"
    );
    assert_eq!(entries[0]["counterparty"], "Shop");
    assert_eq!(entries[1]["kind"], "refund");
    assert_eq!(entries[1]["amount"], "2000");

    // The list shows the three, oldest first; the seller got an event for each.
    let (status, list) = send(app.bearer(
        &buyer.member.token,
        Method::GET,
        &format!("/v1/payment-orders/{po}/refunds"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let ids: Vec<&Value> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["id"])
        .collect();
    assert_eq!(ids, vec![&first["id"], &second["id"], &last["id"]]);
    let (_, events) = send(app.bearer(
        &shop_key,
        Method::GET,
        &format!("/v1/merchants/{shop}/webhook-events"),
    ))
    .await;
    let refund_events = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "refund.succeeded")
        .count();
    assert_eq!(refund_events, 3, "{events}");
    assert_books_hold(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refund_beyond_what_remains_or_of_an_unpaid_order_is_refused_and_moves_nothing() {
    let app = spawn_app().await;
    let (shop, _) = app.merchant("Shop").await;
    let buyer = linked_member(&app, 2, 100_000).await;
    charge(&app, &buyer, 10_000).await;
    let order = paid_order(
        &app,
        &buyer,
        &shop,
        "order-over-1",
        10_000,
        false,
        json!({"money": "10000"}),
    )
    .await;
    let po = order["id"].as_str().unwrap();
    let admin = app.admin_key.clone();
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"amount": "10001"}), 422, "refund_exceeds_payment"),
        (json!({"amount": "0"}), 422, "amount_invalid"),
        (json!({"amount": "-1"}), 422, "amount_invalid"),
        (json!({"amount": "1.5"}), 422, "amount_invalid"),
        (json!({"amount": 1000}), 422, "amount_invalid"),
        (json!({"reason": "line\nbreak"}), 400, "invalid_request"),
        (json!({"reason": "r".repeat(201)}), 400, "invalid_request"),
        (json!({"tip": "1"}), 400, "invalid_request"),
    ];
    for (n, (body, status, code)) in cases.into_iter().enumerate() {
        let (got, error) = refund(&app, &admin, po, &format!("rf-over-{n}"), body).await;
        assert_error(got, &error, status, code);
    }
    let (status, error) = refund(
        &app,
        &admin,
        "po_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B",
        "rf-missing",
        json!({}),
    )
    .await;
    assert_error(status, &error, 404, "payment_order_not_found");
    assert_eq!(posted(&app, &payable(&shop)).await, 10_000);
    assert_eq!(posted(&app, &wallet(&buyer.member.id)).await, 0);
    let (_, order) = app.get(&format!("/v1/payment-orders/{po}")).await;
    assert_eq!(refunded(&order), (0, 0, 0));
    let (_, list) = app.get(&format!("/v1/payment-orders/{po}/refunds")).await;
    assert_eq!(list["data"], json!([]), "{list}");

    // An order that failed was never paid.
    let failed = json!({
        "checkout_id": "chk-failed-1", "auto_top_up": false, "funding": {"money": "5000"},
        "payment_orders": [{"seller_account": shop, "amount": "5000", "currency": "KRW",
                            "payment_order_id": "order-failed-1"}],
    });
    let (_, payment) = send(
        app.bearer(&buyer.member.token, Method::POST, "/v1/payments")
            .json(&failed),
    )
    .await;
    assert_eq!(payment["status"], "failed", "{payment}");
    let (status, error) = refund(&app, &admin, "order-failed-1", "rf-failed", json!({})).await;
    assert_error(status, &error, 409, "order_not_refundable");
    assert_books_hold(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_refunds_never_give_back_more_than_was_paid() {
    let app = spawn_app().await;
    let (shop, _) = app.merchant("Shop").await;
    let buyer = linked_member(&app, 3, 100_000).await;
    charge(&app, &buyer, 10_000).await;
    let order = paid_order(
        &app,
        &buyer,
        &shop,
        "order-race-1",
        10_000,
        false,
        json!({"money": "10000"}),
    )
    .await;
    let po = order["id"].as_str().unwrap().to_owned();
    let mut tasks = JoinSet::new();
    for n in 0..32 {
        let client = app.client.clone();
        let url = app.url(&format!("/v1/payment-orders/{po}/refunds"));
        let key = app.admin_key.clone();
        tasks.spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(key)
                .header("Idempotency-Key", format!("rf-race-{n}"))
                .json(&json!({"amount": "1000"}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body)
        });
    }
    let (mut succeeded, mut refused) = (0, 0);
    while let Some(outcome) = tasks.join_next().await {
        let (status, body) = outcome.unwrap();
        match status {
            StatusCode::CREATED => {
                assert_eq!(body["status"], "succeeded", "{body}");
                succeeded += 1;
            }
            StatusCode::UNPROCESSABLE_ENTITY => {
                assert_eq!(body["error"]["code"], "refund_exceeds_payment", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((succeeded, refused), (10, 22));
    let (_, order) = app.get(&format!("/v1/payment-orders/{po}")).await;
    assert_eq!(refunded(&order), (0, 10_000, 0));
    assert_eq!(posted(&app, &wallet(&buyer.member.id)).await, 10_000);
    assert_eq!(posted(&app, &payable(&shop)).await, 0);
    let (_, list) = app.get(&format!("/v1/payment-orders/{po}/refunds")).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 10);
    assert_books_hold(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_card_cancellation_whose_reply_was_lost_is_finished_by_the_resumer_once() {
    let app = spawn_app().await;
    let (shop, _) = app.merchant("Shop").await;
    let buyer = linked_member(&app, 4, 100_000).await;
    let order = paid_order(
        &app,
        &buyer,
        &shop,
        "order-lost-1",
        12_000,
        false,
        json!({"card": {"billing_key": "bk_test_ok_4", "amount": "12000"}}),
    )
    .await;
    let po = order["id"].as_str().unwrap();
    // The PSP cancels and withholds the reply past the adapter's timeout.
    let body = json!({"amount": "5000", "reason": "test:lost_reply 1"});
    let (status, pending) = refund(&app, &app.admin_key, po, "rf-lost-1", body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["card_state"], "requested");
    assert_eq!(refunded(&pending["order"]), (0, 0, 5_000), "reserved");
    let mtx = pending["money_transaction_id"].as_str().unwrap().to_owned();
    assert!(
        app.ledger.transaction(&mtx).await.is_err(),
        "nothing booked"
    );
    assert_eq!(posted(&app, &payable(&shop)).await, 12_000);

    // The resumer sends the same cancellation again, gets the first one's answer, and books.
    assert_eq!(resume(&app).await, (1, 1));
    let done = read_refund(&app, &pending).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["card_state"], "cancelled");
    let record = psp_record(&app, "order-lost-1").await;
    assert_eq!(record.cancels.len(), 1, "{record:?}");
    assert_eq!(record.cancels[0].amount.won(), 5_000);
    assert_eq!(
        postings(&app, &mtx).await,
        vec![(RECEIVABLE.to_owned(), -5_000), (payable(&shop), 5_000)]
    );
    assert_eq!(posted(&app, &payable(&shop)).await, 7_000);
    assert_eq!(posted(&app, RECEIVABLE).await, 7_000);

    // Resuming again finds nothing; the same request again answers the same refund, ended
    // (a pending answer is never replayed), and moves nothing more.
    assert_eq!(resume(&app).await, (0, 0));
    let (status, again) = refund(&app, &app.admin_key, po, "rf-lost-1", body).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["id"], pending["id"]);
    assert_eq!(again["status"], "succeeded");
    assert_eq!(psp_record(&app, "order-lost-1").await.cancels.len(), 1);
    assert_eq!(posted(&app, &payable(&shop)).await, 7_000);
    assert_books_hold(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refund_sent_while_the_psp_is_down_stays_pending_and_is_sent_when_it_is_back() {
    let mut app = spawn_app().await;
    let (shop, po) = card_order(&app, 11, "order-outage-1").await;
    let po = po.as_str();

    // Nothing listens where the PSP was: the cancellation never arrived, so the refund is
    // neither failed nor booked, only reserved.
    app.stop_psp().await;
    let body = json!({"amount": "4000", "reason": "wrong size"});
    let (status, pending) = refund(&app, &app.admin_key, po, "rf-outage-1", body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    assert_eq!(pending["status"], "pending", "{pending}");
    assert_eq!(pending["card_state"], "requested");
    assert_eq!(refunded(&pending["order"]), (0, 0, 4_000), "reserved");
    assert_eq!(resume(&app).await, (1, 0), "still down");
    let (_, again) = refund(&app, &app.admin_key, po, "rf-outage-1", body).await;
    assert_eq!(again["status"], "pending", "{again}");

    // The PSP is back: the resumer sends the same cancellation once, and the refund is booked.
    app.start_psp(psp::sandbox::IDEMPOTENCY_TTL_DEFAULT).await;
    assert_eq!(resume(&app).await, (1, 1));
    let done = read_refund(&app, &pending).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let record = psp_record(&app, "order-outage-1").await;
    assert_eq!(record.cancels.len(), 1, "{record:?}");
    assert_eq!(record.balance_amount, 6_000);
    assert_eq!(posted(&app, &payable(&shop)).await, 6_000);
    assert_eq!(posted(&app, RECEIVABLE).await, 6_000);
    assert_books_hold(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repeat_the_psp_no_longer_remembers_is_decided_by_asking_what_it_cancelled() {
    let mut app = spawn_app().await;
    let (shop, po) = card_order(&app, 12, "order-forgot-1").await;
    let po = po.as_str();
    // The PSP cancels everything but the reply is lost.
    let (status, pending) = refund(
        &app,
        &app.admin_key,
        po,
        "rf-forgot-1",
        json!({"reason": "test:lost_reply all of it"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");
    assert_eq!(pending["card_state"], "requested");

    // The PSP comes back having forgotten every idempotency key (as Toss does after 15 days):
    // the cancellation sent again is refused as already cancelled. Asking the PSP what it
    // cancelled shows that the first send went through, so the refund succeeds, once.
    app.stop_psp().await;
    app.start_psp(Duration::ZERO).await;
    assert_eq!(resume(&app).await, (1, 1));
    let done = read_refund(&app, &pending).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["card_state"], "cancelled");
    let record = psp_record(&app, "order-forgot-1").await;
    assert_eq!(
        record.cancels.len(),
        1,
        "one cancellation at the PSP: {record:?}"
    );
    assert_eq!(record.balance_amount, 0);
    assert_eq!(posted(&app, &payable(&shop)).await, 0);
    assert_eq!(posted(&app, RECEIVABLE).await, 0);
    assert_books_hold(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_repeat_asks_the_psp_first_and_never_cancels_twice() {
    let (mut app, clock) = spawn_app_with_manual_clock().await;
    let (shop, po) = card_order(&app, 13, "order-late-1").await;
    // The PSP cancels 4,000 of 10,000 and the reply is lost.
    let (status, pending) = refund(
        &app,
        &app.admin_key,
        &po,
        "rf-late-1",
        json!({"amount": "4000", "reason": "test:lost_reply part of it"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{pending}");

    // Two days later the PSP has forgotten the key (it remembers none here): sent again, the
    // cancellation would be a new one, and 6,000 remain to take it from. The resumer asks the
    // PSP first, finds the 4,000 cancelled, and books the refund without sending anything.
    app.stop_psp().await;
    app.start_psp(Duration::ZERO).await;
    clock.advance_micros(2 * 24 * 3_600 * 1_000_000);
    assert_eq!(resume(&app).await, (1, 1));
    let done = read_refund(&app, &pending).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let record = psp_record(&app, "order-late-1").await;
    assert_eq!(record.cancels.len(), 1, "cancelled once: {record:?}");
    assert_eq!(record.balance_amount, 6_000);
    assert_eq!(posted(&app, &payable(&shop)).await, 6_000);
    assert_books_hold(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refusal_at_the_psp_fails_the_refund_and_gives_the_reservation_back() {
    let app = spawn_app().await;
    let (shop, shop_key) = app.merchant("Shop").await;
    let buyer = linked_member(&app, 5, 100_000).await;
    let order = paid_order(
        &app,
        &buyer,
        &shop,
        "order-refused-1",
        10_000,
        false,
        json!({"card": {"billing_key": "bk_test_ok_5", "amount": "10000"}}),
    )
    .await;
    let po = order["id"].as_str().unwrap();
    // Someone cancels the whole charge at the PSP directly; the PSP then refuses ours.
    let processor = psp::TossPayments::new(psp::TossConfig::new(
        &app.psp_url,
        psp::SecretKey::new("test_sk_check"),
    ))
    .unwrap();
    let outside = processor
        .cancel(&psp::CancelRequest {
            payment_key: psp::PaymentKey::parse(order["card"]["payment_key"].as_str().unwrap())
                .unwrap(),
            cancel_id: psp::CancelId::parse("outside-cancel-1").unwrap(),
            amount: psp::CardAmount::new(10_000).unwrap(),
            reason: "cancelled at the PSP's console".into(),
        })
        .await;
    assert!(
        matches!(outside, psp::CancelOutcome::Cancelled(_)),
        "{outside:?}"
    );

    let (status, failed) = refund(
        &app,
        &shop_key,
        po,
        "rf-refused-1",
        json!({"amount": "4000"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{failed}");
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["card_state"], "refused");
    assert_eq!(failed["failure_code"], "not_cancelable");
    assert_eq!(refunded(&failed["order"]), (0, 0, 0), "given back");
    let mtx = failed["money_transaction_id"].as_str().unwrap();
    assert!(app.ledger.transaction(mtx).await.is_err(), "nothing booked");
    assert_eq!(posted(&app, &payable(&shop)).await, 10_000);
    assert_eq!(posted(&app, RECEIVABLE).await, 10_000);
    let (_, events) = send(app.bearer(
        &shop_key,
        Method::GET,
        &format!("/v1/merchants/{shop}/webhook-events"),
    ))
    .await;
    let failed_event = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "refund.failed")
        .unwrap_or_else(|| panic!("no refund.failed in {events}"));
    assert_eq!(failed_event["resource"]["id"], failed["id"]);
    assert_eq!(
        failed_event["resource"]["version"].as_i64(),
        failed["version"].as_i64()
    );
    assert_books_hold(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refund_key_answers_its_refund_and_refuses_another_request() {
    let app = spawn_app().await;
    let (shop, _) = app.merchant("Shop").await;
    let buyer = linked_member(&app, 6, 100_000).await;
    charge(&app, &buyer, 10_000).await;
    let order = paid_order(
        &app,
        &buyer,
        &shop,
        "order-keys-1",
        10_000,
        false,
        json!({"money": "10000"}),
    )
    .await;
    let po = order["id"].as_str().unwrap().to_owned();
    let admin = app.admin_key.clone();

    // Over HTTP: the same key and body replay the answer; another body is refused.
    let (status, first) = refund(&app, &admin, &po, "rf-key-1", json!({"amount": "3000"})).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let response = app
        .bearer(
            &admin,
            Method::POST,
            &format!("/v1/payment-orders/{po}/refunds"),
        )
        .header("Idempotency-Key", "rf-key-1")
        .json(&json!({"amount": "3000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["idempotency-replayed"], "true");
    let (status, again) = common::json_of(response).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again, first);
    let (status, error) = refund(&app, &admin, &po, "rf-key-1", json!({"amount": "4000"})).await;
    assert_error(status, &error, 422, "idempotency_key_reused");

    // In the service (as the escrow flow calls it): the same key for the same order and amount,
    // or for all that remains, is the same refund; another amount or order is refused.
    let request = |order: &str, amount: Option<i64>| NewRefund {
        order: order.to_owned(),
        amount,
        key: format!("cancel {po}"),
        reason: "escrow cancelled".into(),
    };
    let made = app
        .payments
        .refund("escrow", request(&po, Some(2_000)))
        .await
        .unwrap();
    assert_eq!(made.refund.status, RefundStatus::Succeeded);
    assert_eq!(made.refund.split.money, 2_000);
    for same in [request(&po, Some(2_000)), request("order-keys-1", None)] {
        let view = app.payments.refund("escrow", same).await.unwrap();
        assert_eq!(view.refund.id, made.refund.id);
    }
    for other in [
        request(&po, Some(2_500)),
        request("order-other-1", Some(2_000)),
    ] {
        let error = app.payments.refund("escrow", other).await.unwrap_err();
        assert!(matches!(error, PaymentError::RefundKeyReused(_)), "{error}");
    }
    // Another scope's key is its own.
    let view = app
        .payments
        .refund("another-service", request(&po, Some(1_000)))
        .await
        .unwrap();
    assert_ne!(view.refund.id, made.refund.id);
    assert_eq!(view.order.refunded.money, 6_000);
    assert_eq!(posted(&app, &wallet(&buyer.member.id)).await, 6_000);
    assert_books_hold(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn who_may_refund_and_who_may_read_refunds() {
    let app = spawn_app().await;
    let (shop, shop_key) = app.merchant("Shop").await;
    let (_, market_key) = app.merchant("Market").await;
    let buyer = linked_member(&app, 7, 100_000).await;
    let stranger = app.member("stranger@example.com", "010-3000-0007").await;
    charge(&app, &buyer, 10_000).await;
    let order = paid_order(
        &app,
        &buyer,
        &shop,
        "order-auth-1",
        10_000,
        false,
        json!({"money": "10000"}),
    )
    .await;
    let po = order["id"].as_str().unwrap();
    let body = json!({"amount": "1000"});

    // Members never refund, not even the buyer; another merchant's key finds no such order.
    let (status, error) = refund(&app, &buyer.member.token, po, "rf-auth-1", body.clone()).await;
    assert_error(status, &error, 403, "forbidden");
    let (status, error) = refund(&app, &stranger.token, po, "rf-auth-2", body.clone()).await;
    assert_error(status, &error, 403, "forbidden");
    let (status, error) = refund(&app, &market_key, po, "rf-auth-3", body.clone()).await;
    assert_error(status, &error, 404, "payment_order_not_found");
    let (status, error) = send(
        app.client
            .post(app.url(&format!("/v1/payment-orders/{po}/refunds")))
            .header("Idempotency-Key", "rf-auth-4")
            .json(&body),
    )
    .await;
    assert_error(status, &error, 401, "unauthenticated");
    let (status, error) = send(
        app.bearer(
            &shop_key,
            Method::POST,
            &format!("/v1/payment-orders/{po}/refunds"),
        )
        .json(&body),
    )
    .await;
    assert_error(status, &error, 400, "invalid_request");
    let (status, made) = refund(&app, &shop_key, po, "rf-auth-5", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let (status, _) = refund(&app, &shop_key, po, "rf-auth-6", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED);

    // The buyer, staff and the seller read it; anyone else sees nothing, as for a missing one.
    let path = format!("/v1/refunds/{}", made["id"].as_str().unwrap());
    for token in [&buyer.member.token, &shop_key, &app.admin_key] {
        let (status, seen) = send(app.bearer(token, Method::GET, &path)).await;
        assert_eq!(status, StatusCode::OK, "{seen}");
        assert_eq!(seen["id"], made["id"]);
    }
    for token in [&stranger.token, &market_key] {
        let (status, error) = send(app.bearer(token, Method::GET, &path)).await;
        assert_error(status, &error, 404, "refund_not_found");
    }
    let (status, error) = app.get("/v1/refunds/rfd_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B").await;
    assert_error(status, &error, 404, "refund_not_found");
    let (status, error) = app.get("/v1/refunds/nope").await;
    assert_error(status, &error, 404, "refund_not_found");

    // The list: the same readers, a page at a time.
    let list = format!("/v1/payment-orders/{po}/refunds");
    let (status, page) =
        send(app.bearer(&buyer.member.token, Method::GET, &format!("{list}?limit=1"))).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["data"][0]["id"], made["id"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = send(app.bearer(
        &shop_key,
        Method::GET,
        &format!("{list}?limit=1&after={cursor}"),
    ))
    .await;
    assert_eq!(next["data"].as_array().unwrap().len(), 1, "{next}");
    assert_eq!(next["next_cursor"], Value::Null);
    for token in [&stranger.token, &market_key] {
        let (status, error) = send(app.bearer(token, Method::GET, &list)).await;
        assert_error(status, &error, 404, "payment_order_not_found");
    }
    let (status, error) = app.get(&format!("{list}?after=bad")).await;
    assert_error(status, &error, 400, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_escrow_order_is_refunded_from_the_escrow_account_while_its_money_waits_there() {
    let app = spawn_app().await;
    let (shop, _) = app.merchant("Shop").await;
    let buyer = linked_member(&app, 8, 100_000).await;
    charge(&app, &buyer, 10_000).await;
    let order = paid_order(
        &app,
        &buyer,
        &shop,
        "order-escrow-1",
        10_000,
        true,
        json!({"money": "10000"}),
    )
    .await;
    assert_eq!(order["escrow_state"], "held", "{order}");
    let po = order["id"].as_str().unwrap();
    assert_eq!(posted(&app, &escrow(&shop)).await, 10_000);

    let (status, made) = refund(
        &app,
        &app.admin_key,
        po,
        "rf-escrow-1",
        json!({"amount": "4000"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["from_escrow"], true);
    let mtx = made["money_transaction_id"].as_str().unwrap();
    assert_eq!(
        postings(&app, mtx).await,
        vec![(wallet(&buyer.member.id), -4_000), (escrow(&shop), 4_000)]
    );
    assert_eq!(posted(&app, &escrow(&shop)).await, 6_000);
    assert_eq!(posted(&app, &payable(&shop)).await, 0);

    // Once released to the seller, the money comes back out of the payable account (the
    // release itself is the escrow flow's; here only the state moves).
    let set_state = |state: &'static str| {
        let db = app.db.db.clone();
        let po = po.to_owned();
        async move {
            sqlx::query("UPDATE escrows SET state = $1 WHERE payment_order_id = $2")
                .bind(state)
                .bind(po)
                .execute(db.pool())
                .await
                .unwrap();
        }
    };
    set_state("confirmed").await;
    let (status, made) = refund(
        &app,
        &app.admin_key,
        po,
        "rf-escrow-2",
        json!({"amount": "1000"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["from_escrow"], false);
    assert_eq!(posted(&app, &payable(&shop)).await, -1_000);
    assert_eq!(posted(&app, &escrow(&shop)).await, 6_000);

    // A cancelled escrow was refunded whole: nothing is left.
    set_state("cancelled").await;
    let (status, error) = refund(&app, &app.admin_key, po, "rf-escrow-3", json!({})).await;
    assert_error(status, &error, 422, "nothing_to_refund");
    let (status, error) = refund(
        &app,
        &app.admin_key,
        po,
        "rf-escrow-4",
        json!({"amount": "1"}),
    )
    .await;
    assert_error(status, &error, 422, "refund_exceeds_payment");
    assert_eq!(posted(&app, &wallet(&buyer.member.id)).await, 5_000);
}
