//! Checkout payments over HTTP, black-box, against the in-process sandbox bank and sandbox PSP:
//! multi-seller checkouts with mixed funding and their ledger postings per order, automatic
//! top-up, refusals that move nothing, card declines, PSP faults resolved to exactly one
//! charge, replays, concurrency on one wallet, who may see what, and bad input.

mod common;

use std::time::Duration;

use api::ApiConfig;
use common::{
    assert_books_hold, assert_error, charge, escrow, grant_points, linked_member, payable, posted,
    postings, psp_lookup, send, spawn_app, spawn_app_with, Linked, TestApp, PSP_HOLD,
};
use payments::PaymentsConfig;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::task::JoinSet;

/// Posts a checkout as `token` (a member's session or an API key).
async fn pay(app: &TestApp, token: &str, body: &Value) -> (StatusCode, Value) {
    send(app.bearer(token, Method::POST, "/v1/payments").json(body)).await
}

/// A checkout body: orders as (seller, amount, payment order id, escrow).
fn checkout(checkout_id: &str, orders: &[(&str, i64, &str, bool)], funding: Value) -> Value {
    let orders: Vec<Value> = orders
        .iter()
        .map(|(seller, amount, id, escrow)| {
            json!({
                "seller_account": seller, "amount": amount.to_string(), "currency": "KRW",
                "payment_order_id": id, "escrow": escrow,
            })
        })
        .collect();
    json!({"checkout_id": checkout_id, "payment_orders": orders, "funding": funding})
}

async fn wallet_available(app: &TestApp, linked: &Linked) -> i64 {
    let (status, body) =
        send(app.bearer(&linked.member.token, Method::GET, "/v1/wallets/KRW")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["available"].as_str().unwrap().parse().unwrap()
}

async fn points_available(app: &TestApp, linked: &Linked) -> i64 {
    let (status, body) = send(app.bearer(&linked.member.token, Method::GET, "/v1/points")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["available"].as_str().unwrap().parse().unwrap()
}

/// How many approvals the sandbox PSP holds for an order id.
async fn psp_approvals(app: &TestApp, order_id: &str) -> usize {
    match psp_lookup(app, order_id).await {
        psp::PaymentLookup::Found(record) => usize::from(record.approval().is_some()),
        psp::PaymentLookup::NotFound => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_multi_seller_checkout_with_mixed_funding_books_every_order_to_its_seller() {
    let app = spawn_app().await;
    let (shop, _) = app.merchant("Shop").await;
    let (market, _) = app.merchant("Market").await;
    let buyer = linked_member(&app, 1, 100_000).await;
    grant_points(&app, &buyer.member.id, 3_000).await;
    charge(&app, &buyer, 10_000).await;

    let body = checkout(
        "chk-mixed-1",
        &[
            (&shop, 12_000, "order-mixed-1a", false),
            (&market, 8_000, "order-mixed-1b", true),
        ],
        json!({"points": "3000", "money": "9000",
               "card": {"billing_key": "bk_test_ok_1", "amount": "8000"}}),
    );
    let (status, payment) = pay(&app, &buyer.member.token, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    assert_eq!(payment["status"], "succeeded", "{payment}");
    assert_eq!(payment["is_payment_done"], true);
    assert_eq!(payment["amount"], "20000");
    let orders = payment["payment_orders"].as_array().unwrap();
    for order in orders {
        assert_eq!(order["status"], "SUCCESS", "{order}");
        assert_eq!(order["wallet_updated"], true);
        assert_eq!(order["ledger_updated"], true);
    }
    // Points first, then money, then card, in request order.
    assert_eq!(
        orders[0]["funding"],
        json!({"points": "3000", "money": "9000", "card": "0"})
    );
    assert_eq!(
        orders[1]["funding"],
        json!({"points": "0", "money": "0", "card": "8000"})
    );
    assert_eq!(orders[1]["card"]["state"], "approved");
    assert!(orders[0]["money_transaction_id"]
        .as_str()
        .unwrap()
        .starts_with("mtx_"));

    // Each order is one ledger transaction under its id, crediting its seller in full.
    let first = orders[0]["id"].as_str().unwrap();
    assert_eq!(
        postings(&app, first).await,
        vec![
            (payable(&shop), -12_000),
            ("liability:payments:clearing:KRW".to_owned(), 12_000),
        ]
    );
    let second = orders[1]["id"].as_str().unwrap();
    assert_eq!(
        postings(&app, second).await,
        vec![
            ("asset:psp:receivable:KRW".to_owned(), 8_000),
            (escrow(&market), -8_000),
        ]
    );
    assert_eq!(posted(&app, &payable(&shop)).await, 12_000);
    assert_eq!(posted(&app, &escrow(&market)).await, 8_000);
    assert_eq!(posted(&app, "liability:payments:clearing:KRW").await, 0);
    assert_eq!(posted(&app, "asset:psp:receivable:KRW").await, 8_000);
    assert_eq!(wallet_available(&app, &buyer).await, 1_000);
    assert_eq!(points_available(&app, &buyer).await, 0);
    assert_eq!(psp_approvals(&app, "order-mixed-1b").await, 1);

    // The buyer's history shows the payment under its money transaction number.
    let (_, history) =
        send(app.bearer(&buyer.member.token, Method::GET, "/v1/wallets/KRW/history")).await;
    let entry = &history["data"][0];
    assert_eq!(entry["kind"], "payment", "{history}");
    assert_eq!(entry["amount"], "-9000");
    assert_eq!(entry["counterparty"], "Shop");

    // Reading it back: the payment, and each order by either id.
    let id = payment["id"].as_str().unwrap();
    let (status, read) = send(app.bearer(
        &buyer.member.token,
        Method::GET,
        &format!("/v1/payments/{id}"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, payment);
    let (status, order) = send(app.bearer(
        &buyer.member.token,
        Method::GET,
        "/v1/payment-orders/order-mixed-1b",
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(order["id"], orders[1]["id"]);
    assert_books_hold(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_short_wallet_is_topped_up_inside_the_payment() {
    let app = spawn_app().await;
    let (shop, _) = app.merchant("Shop").await;
    let buyer = linked_member(&app, 2, 100_000).await;
    charge(&app, &buyer, 3_000).await;
    let body = checkout(
        "chk-top-up",
        &[(&shop, 15_000, "order-top-up", false)],
        json!({"money": "15000"}),
    );
    let (status, payment) = pay(&app, &buyer.member.token, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    assert_eq!(payment["status"], "succeeded", "{payment}");
    // 12,000 short, rounded up to 20,000: 3,000 + 20,000 - 15,000.
    assert_eq!(wallet_available(&app, &buyer).await, 8_000);
    assert_eq!(posted(&app, &payable(&shop)).await, 15_000);
    assert_books_hold(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_funds_fail_the_order_and_move_nothing() {
    let app = spawn_app().await;
    let (shop, _) = app.merchant("Shop").await;
    let buyer = linked_member(&app, 3, 100_000).await;
    grant_points(&app, &buyer.member.id, 1_000).await;
    charge(&app, &buyer, 5_000).await;
    let mut body = checkout(
        "chk-short",
        &[(&shop, 7_000, "order-short", false)],
        json!({"points": "1000", "money": "6000"}),
    );
    body["auto_top_up"] = json!(false);
    let (status, payment) = pay(&app, &buyer.member.token, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    assert_eq!(payment["status"], "failed", "{payment}");
    let order = &payment["payment_orders"][0];
    assert_eq!(order["status"], "FAILED");
    assert_eq!(order["failure"]["code"], "insufficient_funds");
    assert_eq!(order["wallet_updated"], false);
    assert_eq!(order["ledger_updated"], false);
    // The points held for it were given back, and nothing reached the seller.
    assert_eq!(points_available(&app, &buyer).await, 1_000);
    assert_eq!(wallet_available(&app, &buyer).await, 5_000);
    assert_eq!(posted(&app, &payable(&shop)).await, 0);

    // Too few points fail the same way.
    let body = checkout(
        "chk-points",
        &[(&shop, 2_000, "order-points", false)],
        json!({"points": "2000"}),
    );
    let (_, payment) = pay(&app, &buyer.member.token, &body).await;
    assert_eq!(
        payment["payment_orders"][0]["failure"]["code"], "insufficient_points",
        "{payment}"
    );
    assert_eq!(points_available(&app, &buyer).await, 1_000);
    assert_books_hold(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_declined_card_fails_its_order_only_and_gives_its_funds_back() {
    let app = spawn_app().await;
    let (shop, _) = app.merchant("Shop").await;
    let (market, _) = app.merchant("Market").await;
    let buyer = linked_member(&app, 4, 100_000).await;
    charge(&app, &buyer, 10_000).await;
    let body = checkout(
        "chk-decline",
        &[
            (&shop, 6_000, "order-decline-a", false),
            (&market, 9_000, "order-decline-b", false),
        ],
        json!({"money": "10000", "card": {"billing_key": "bk_test_decline_1", "amount": "5000"}}),
    );
    let (status, payment) = pay(&app, &buyer.member.token, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    assert_eq!(payment["status"], "partially_succeeded", "{payment}");
    let orders = payment["payment_orders"].as_array().unwrap();
    assert_eq!(orders[0]["status"], "SUCCESS");
    assert_eq!(orders[1]["status"], "FAILED");
    assert_eq!(orders[1]["failure"]["code"], "card_declined");
    assert_eq!(orders[1]["card"]["state"], "declined");
    // Order b held 4,000 of money beside its card part; the decline gave it back.
    assert_eq!(wallet_available(&app, &buyer).await, 4_000);
    assert_eq!(posted(&app, &payable(&shop)).await, 6_000);
    assert_eq!(posted(&app, &payable(&market)).await, 0);
    assert_books_hold(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_charge_whose_reply_was_lost_is_found_and_booked_once() {
    let app = spawn_app().await;
    let (shop, _) = app.merchant("Shop").await;
    let buyer = linked_member(&app, 5, 100_000).await;
    let body = checkout(
        "chk-lost",
        &[(&shop, 12_000, "order-lost-reply", false)],
        json!({"card": {"billing_key": "bk_test_lost_reply_1", "amount": "12000"}}),
    );
    // The PSP charges the card and withholds the reply past the adapter's timeout.
    let (status, payment) = pay(&app, &buyer.member.token, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{payment}");
    assert_eq!(payment["status"], "executing");
    let order = &payment["payment_orders"][0];
    assert_eq!(order["status"], "EXECUTING");
    assert_eq!(order["card"]["state"], "requested");
    assert_eq!(posted(&app, &payable(&shop)).await, 0);

    // The resumer asks the PSP by order id, finds the approval, and books it.
    let pass = app
        .payments
        .resume_pending(Duration::ZERO, 100)
        .await
        .unwrap();
    assert_eq!((pass.examined, pass.finished), (1, 1));
    let id = payment["id"].as_str().unwrap();
    let (_, payment) = app.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(payment["status"], "succeeded", "{payment}");
    assert_eq!(payment["payment_orders"][0]["card"]["state"], "approved");
    assert_eq!(psp_approvals(&app, "order-lost-reply").await, 1);
    assert_eq!(posted(&app, &payable(&shop)).await, 12_000);
    assert_eq!(posted(&app, "asset:psp:receivable:KRW").await, 12_000);

    // Resuming again, or the buyer sending the checkout again, changes nothing.
    let pass = app
        .payments
        .resume_pending(Duration::ZERO, 100)
        .await
        .unwrap();
    assert_eq!(pass.examined, 0);
    let (status, again) = pay(&app, &buyer.member.token, &body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], payment["id"]);
    assert_eq!(psp_approvals(&app, "order-lost-reply").await, 1);
    assert_eq!(posted(&app, &payable(&shop)).await, 12_000);
    assert_books_hold(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_charge_that_never_reached_the_psp_fails_after_the_retry_window() {
    let config = ApiConfig {
        payments: PaymentsConfig {
            card_retry_window: Duration::ZERO,
            ..PaymentsConfig::default()
        },
        ..ApiConfig::default()
    };
    let app = spawn_app_with(config).await;
    let (shop, _) = app.merchant("Shop").await;
    let buyer = linked_member(&app, 6, 100_000).await;
    grant_points(&app, &buyer.member.id, 2_000).await;
    let body = checkout(
        "chk-timeout",
        &[(&shop, 12_000, "order-timeout", false)],
        json!({"points": "2000", "card": {"billing_key": "bk_test_timeout_1", "amount": "10000"}}),
    );
    let (status, payment) = pay(&app, &buyer.member.token, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{payment}");
    assert_eq!(
        points_available(&app, &buyer).await,
        0,
        "held while the charge is unknown"
    );
    // The sandbox never executes a `timeout` card; once its withheld reply is over, the PSP
    // knows no such order, and past the retry window the order fails and gives points back.
    tokio::time::sleep(PSP_HOLD).await;
    app.payments
        .resume_pending(Duration::ZERO, 100)
        .await
        .unwrap();
    let id = payment["id"].as_str().unwrap();
    let (_, payment) = app.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(payment["status"], "failed", "{payment}");
    assert_eq!(
        payment["payment_orders"][0]["failure"]["code"],
        "card_not_charged"
    );
    assert_eq!(points_available(&app, &buyer).await, 2_000);
    assert_eq!(psp_approvals(&app, "order-timeout").await, 0);
    assert_books_hold(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checkout_is_idempotent_by_its_id_and_order_ids_are_never_reused() {
    let app = spawn_app().await;
    let (shop, _) = app.merchant("Shop").await;
    let buyer = linked_member(&app, 7, 100_000).await;
    charge(&app, &buyer, 50_000).await;
    let body = checkout(
        "chk-replay",
        &[(&shop, 5_000, "order-replay", false)],
        json!({"money": "5000"}),
    );
    let (status, first) = pay(&app, &buyer.member.token, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = pay(&app, &buyer.member.token, &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, first);
    assert_eq!(wallet_available(&app, &buyer).await, 45_000);

    let other = checkout(
        "chk-replay",
        &[(&shop, 6_000, "order-replay", false)],
        json!({"money": "6000"}),
    );
    let (status, error) = pay(&app, &buyer.member.token, &other).await;
    assert_error(status, &error, 422, "checkout_id_reused");
    let reused = checkout(
        "chk-replay-2",
        &[(&shop, 5_000, "order-replay", false)],
        json!({"money": "5000"}),
    );
    let (status, error) = pay(&app, &buyer.member.token, &reused).await;
    assert_error(status, &error, 422, "payment_order_id_reused");
    assert_eq!(wallet_available(&app, &buyer).await, 45_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_checkouts_never_spend_more_than_the_wallet_holds() {
    let app = spawn_app().await;
    let (shop, _) = app.merchant("Shop").await;
    let buyer = linked_member(&app, 8, 100_000).await;
    charge(&app, &buyer, 50_000).await;
    let mut tasks = JoinSet::new();
    for n in 0..32 {
        let client = app.client.clone();
        let url = app.url("/v1/payments");
        let token = buyer.member.token.clone();
        let mut body = checkout(
            &format!("chk-race-{n}"),
            &[(&shop, 4_000, &format!("order-race-{n:02}"), false)],
            json!({"money": "4000"}),
        );
        body["auto_top_up"] = json!(false);
        tasks.spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let body: Value = response.json().await.unwrap();
            body["status"].as_str().unwrap().to_owned()
        });
    }
    let mut succeeded = 0;
    while let Some(status) = tasks.join_next().await {
        match status.unwrap().as_str() {
            "succeeded" => succeeded += 1,
            "failed" => {}
            other => panic!("unexpected status {other}"),
        }
    }
    // 50,000 buys twelve 4,000 orders, never a thirteenth.
    assert_eq!(succeeded, 12);
    assert_eq!(wallet_available(&app, &buyer).await, 2_000);
    assert_eq!(posted(&app, &payable(&shop)).await, 48_000);
    assert_books_hold(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn who_may_pay_and_who_may_see_a_payment() {
    let app = spawn_app().await;
    let (shop, shop_key) = app.merchant("Shop").await;
    let buyer = linked_member(&app, 9, 100_000).await;
    let stranger = linked_member(&app, 10, 100_000).await;
    charge(&app, &buyer, 20_000).await;
    let (_, platform) = app.api_key("platform").await;
    let body = |id: &str, order: &str| {
        checkout(
            id,
            &[(&shop, 1_000, order, false)],
            json!({"money": "1000"}),
        )
    };

    // A merchant key cannot spend a member's money; a member cannot pay for someone else.
    let (status, error) = pay(&app, &shop_key, &body("chk-auth-1", "order-auth-1")).await;
    assert_error(status, &error, 403, "forbidden");
    let mut for_other = body("chk-auth-2", "order-auth-2");
    for_other["buyer"] = json!(buyer.member.id);
    let (status, error) = pay(&app, &stranger.member.token, &for_other).await;
    assert_error(status, &error, 403, "forbidden");
    // A platform key pays for the buyer it names, and must name one.
    let (status, error) = pay(&app, &platform, &body("chk-auth-3", "order-auth-3")).await;
    assert_error(status, &error, 400, "invalid_request");
    let mut on_behalf = body("chk-auth-4", "order-auth-4");
    on_behalf["buyer"] = json!(buyer.member.id);
    let (status, payment) = pay(&app, &platform, &on_behalf).await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    assert_eq!(payment["buyer"], json!(buyer.member.id));
    let (status, error) = send(app.client.post(app.url("/v1/payments")).json(&on_behalf)).await;
    assert_error(status, &error, 401, "unauthenticated");

    // The buyer and staff see it; another member sees nothing, as for a missing payment.
    let path = format!("/v1/payments/{}", payment["id"].as_str().unwrap());
    let (status, _) = send(app.bearer(&buyer.member.token, Method::GET, &path)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    let (status, error) = send(app.bearer(&stranger.member.token, Method::GET, &path)).await;
    assert_error(status, &error, 404, "payment_not_found");
    let (status, error) = send(app.bearer(
        &stranger.member.token,
        Method::GET,
        "/v1/payment-orders/order-auth-4",
    ))
    .await;
    assert_error(status, &error, 404, "payment_order_not_found");
    let (status, error) = app.get("/v1/payments/pay_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B").await;
    assert_error(status, &error, 404, "payment_not_found");

    // Points: only staff keys grant them.
    let (status, error) = send(
        app.bearer(
            &buyer.member.token,
            Method::POST,
            &format!("/v1/members/{}/points", buyer.member.id),
        )
        .header("Idempotency-Key", "self-grant")
        .json(&json!({"amount": "1000"})),
    )
    .await;
    assert_error(status, &error, 403, "forbidden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_checkouts_are_refused_with_stable_codes_and_change_nothing() {
    let app = spawn_app().await;
    let (shop, _) = app.merchant("Shop").await;
    let buyer = linked_member(&app, 11, 100_000).await;
    charge(&app, &buyer, 10_000).await;
    let token = buyer.member.token.clone();
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            checkout(
                "chk-bad-1",
                &[(&shop, 5_000, "order-bad-1", false)],
                json!({"money": "4000"}),
            ),
            422,
            "funding_mismatch",
        ),
        (
            checkout(
                "chk-bad-2",
                &[(
                    "mer_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B",
                    5_000,
                    "order-bad-2",
                    false,
                )],
                json!({"money": "5000"}),
            ),
            422,
            "seller_not_found",
        ),
        (
            checkout(
                "chk-bad-3",
                &[(&shop, 5_000, "bad id!", false)],
                json!({"money": "5000"}),
            ),
            400,
            "invalid_request",
        ),
        (
            checkout(
                "chk bad",
                &[(&shop, 5_000, "order-bad-4", false)],
                json!({"money": "5000"}),
            ),
            400,
            "invalid_request",
        ),
        (
            checkout("chk-bad-5", &[], json!({})),
            400,
            "invalid_request",
        ),
        (
            checkout(
                "chk-bad-6",
                &[
                    (&shop, 5_000, "order-bad-6", false),
                    (&shop, 5_000, "order-bad-6", false),
                ],
                json!({"money": "10000"}),
            ),
            400,
            "invalid_request",
        ),
        (
            json!({"checkout_id": "chk-bad-7", "payment_orders": [{"seller_account": shop, "amount": 5000, "currency": "KRW", "payment_order_id": "order-bad-7"}]}),
            422,
            "amount_invalid",
        ),
        (
            json!({"checkout_id": "chk-bad-8", "payment_orders": [{"seller_account": shop, "amount": "50.5", "currency": "KRW", "payment_order_id": "order-bad-8"}]}),
            422,
            "amount_invalid",
        ),
        (
            json!({"checkout_id": "chk-bad-9", "payment_orders": [{"seller_account": shop, "amount": "50.50", "currency": "USD", "payment_order_id": "order-bad-9"}]}),
            422,
            "currency_unsupported",
        ),
        (
            json!({"checkout_id": "chk-bad-10", "payment_orders": [
            {"seller_account": shop, "amount": "5000", "currency": "KRW", "payment_order_id": "order-bad-10a"},
            {"seller_account": shop, "amount": "50", "currency": "USD", "payment_order_id": "order-bad-10b"}]}),
            422,
            "currency_mismatch",
        ),
        (
            json!({"checkout_id": "chk-bad-11", "payment_orders": [], "tip": "1"}),
            400,
            "invalid_request",
        ),
        (
            checkout(
                "chk-bad-12",
                &[(&shop, 5_000, "order-bad-12", false)],
                json!({"card": {"billing_key": "bad key", "amount": "5000"}}),
            ),
            400,
            "invalid_request",
        ),
        (
            checkout(
                "chk-bad-13",
                &[(&shop, 0, "order-bad-13", false)],
                json!({"money": "0"}),
            ),
            422,
            "amount_invalid",
        ),
    ];
    for (body, status, code) in cases {
        let (got, error) = pay(&app, &token, &body).await;
        assert_error(got, &error, status, code);
    }
    assert_eq!(wallet_available(&app, &buyer).await, 10_000);
    let (status, _) = app.get("/v1/payment-orders/order-bad-1").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a refused checkout records nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_32_concurrent_checkouts_of_one_unique_item_exactly_one_wins() {
    race_for_one_item(spawn_app().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_redis_item_locks_too_exactly_one_of_32_checkouts_wins() {
    let Some(url) = testkit::test_redis_url() else {
        return;
    };
    let prefix = format!("mypay:test:{}:", ulid::Ulid::new());
    let redis = item_lock::RedisItemLocks::connect(&url, &prefix)
        .await
        .unwrap_or_else(|error| {
            panic!(
                "the test Redis must be reachable ({}=\"\" skips): {error}",
                testkit::TEST_REDIS_ENV
            )
        });
    let app = spawn_app_with(ApiConfig {
        item_locks: api::ItemLockConfig {
            store: Some(std::sync::Arc::new(redis)),
            ttl: item_lock::DEFAULT_TTL,
        },
        ..ApiConfig::default()
    })
    .await;
    race_for_one_item(app).await;
}

/// 32 checkouts of one unique item at once (one buyer, 32 checkout ids): exactly one pays,
/// the others are refused with `item_locked` before anything is recorded.
async fn race_for_one_item(app: TestApp) {
    let (shop, _) = app.merchant("Shop").await;
    let buyer = linked_member(&app, 12, 100_000).await;
    charge(&app, &buyer, 50_000).await;
    let mut tasks = JoinSet::new();
    for n in 0..32 {
        let client = app.client.clone();
        let url = app.url("/v1/payments");
        let token = buyer.member.token.clone();
        let mut body = checkout(
            &format!("chk-item-{n}"),
            &[(&shop, 1_000, &format!("order-item-{n:02}"), false)],
            json!({"money": "1000"}),
        );
        body["items"] = json!(["sku-unique-1"]);
        tasks.spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body)
        });
    }
    let (mut won, mut locked) = (0, 0);
    while let Some(outcome) = tasks.join_next().await {
        let (status, body) = outcome.unwrap();
        match status {
            StatusCode::CREATED => {
                assert_eq!(body["status"], "succeeded", "{body}");
                won += 1;
            }
            StatusCode::CONFLICT => {
                assert_eq!(body["error"]["code"], "item_locked", "{body}");
                locked += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((won, locked), (1, 31));
    assert_eq!(wallet_available(&app, &buyer).await, 49_000);
    assert_books_hold(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_checkout_frees_its_items_at_once() {
    let app = spawn_app().await;
    let (shop, _) = app.merchant("Shop").await;
    let first = linked_member(&app, 13, 100_000).await;
    let second = linked_member(&app, 14, 100_000).await;
    charge(&app, &second, 10_000).await;
    let mut body = checkout(
        "chk-free-1",
        &[(&shop, 5_000, "order-free-1", false)],
        json!({"money": "5000"}),
    );
    body["items"] = json!(["sku-free"]);
    body["auto_top_up"] = json!(false);
    let (status, payment) = pay(&app, &first.member.token, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    assert_eq!(payment["status"], "failed", "{payment}");
    let (_, lock) = app.get("/v1/items/sku-free/lock").await;
    assert_eq!(lock["locked"], false, "{lock}");
    let mut body = checkout(
        "chk-free-2",
        &[(&shop, 5_000, "order-free-2", false)],
        json!({"money": "5000"}),
    );
    body["items"] = json!(["sku-free"]);
    let (status, payment) = pay(&app, &second.member.token, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    assert_eq!(payment["status"], "succeeded", "{payment}");
    // A paid checkout keeps its item until the lock runs out.
    let (_, lock) = app.get("/v1/items/sku-free/lock").await;
    assert_eq!(lock["holder"], "chk-free-2", "{lock}");
    let mut third = checkout(
        "chk-free-3",
        &[(&shop, 5_000, "order-free-3", false)],
        json!({"money": "5000"}),
    );
    third["items"] = json!(["sku-free"]);
    let (status, error) = pay(&app, &first.member.token, &third).await;
    assert_error(status, &error, 409, "item_locked");
    let (status, error) = app.get("/v1/payment-orders/order-free-3").await;
    assert_error(status, &error, 404, "payment_order_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sellers_get_events_and_see_only_their_own_orders() {
    let app = spawn_app().await;
    let (shop, shop_key) = app.merchant("Shop").await;
    let (market, market_key) = app.merchant("Market").await;
    let (_, stranger_key) = app.merchant("Stranger").await;
    let buyer = linked_member(&app, 15, 100_000).await;
    charge(&app, &buyer, 20_000).await;
    let body = checkout(
        "chk-events",
        &[
            (&shop, 3_000, "order-events-a", false),
            (&market, 4_000, "order-events-b", false),
        ],
        json!({"money": "7000"}),
    );
    let (_, payment) = pay(&app, &buyer.member.token, &body).await;
    assert_eq!(payment["status"], "succeeded", "{payment}");
    let path = format!("/v1/payments/{}", payment["id"].as_str().unwrap());

    // Each seller's key sees the payment with its own order only; another merchant sees nothing.
    let (status, seen) = send(app.bearer(&shop_key, Method::GET, &path)).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    let orders = seen["payment_orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["seller_account"], json!(shop));
    let (status, error) = send(app.bearer(&stranger_key, Method::GET, &path)).await;
    assert_error(status, &error, 404, "payment_not_found");
    let (status, error) = send(app.bearer(
        &market_key,
        Method::GET,
        "/v1/payment-orders/order-events-a",
    ))
    .await;
    assert_error(status, &error, 404, "payment_order_not_found");

    // The order's end and the payment's end were recorded as events for each seller, with the
    // resources' versions.
    let (status, events) = send(app.bearer(
        &shop_key,
        Method::GET,
        &format!("/v1/merchants/{shop}/webhook-events"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    let mut types: Vec<(String, String)> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["resource"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    types.sort();
    assert_eq!(
        types,
        vec![
            (
                "payment.succeeded".to_owned(),
                payment["id"].as_str().unwrap().to_owned()
            ),
            (
                "payment_order.succeeded".to_owned(),
                orders[0]["id"].as_str().unwrap().to_owned()
            ),
        ]
    );
    for event in events["data"].as_array().unwrap() {
        let version = event["resource"]["version"].as_i64().unwrap();
        match event["type"].as_str().unwrap() {
            "payment.succeeded" => assert_eq!(version, payment["version"].as_i64().unwrap()),
            _ => assert_eq!(version, orders[0]["version"].as_i64().unwrap()),
        }
    }
    let (_, events) = send(app.bearer(
        &market_key,
        Method::GET,
        &format!("/v1/merchants/{market}/webhook-events"),
    ))
    .await;
    assert_eq!(events["data"].as_array().unwrap().len(), 2, "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_resumer_leaves_an_order_alone_while_its_request_works_on_it() {
    let app = spawn_app().await;
    let (shop, _) = app.merchant("Shop").await;
    let buyer = linked_member(&app, 16, 100_000).await;
    grant_points(&app, &buyer.member.id, 2_000).await;
    let body = checkout(
        "chk-claimed",
        &[(&shop, 12_000, "order-claimed", false)],
        json!({"points": "2000", "card": {"billing_key": "bk_test_lost_reply_2", "amount": "10000"}}),
    );
    let request = {
        let client = app.client.clone();
        let url = app.url("/v1/payments");
        let token = buyer.member.token.clone();
        tokio::spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            response.status()
        })
    };
    // While the request waits for the PSP's withheld reply, resumer passes find the order
    // claimed and leave it alone: no second charge, no release of its held points.
    for _ in 0..20 {
        app.payments
            .resume_pending(Duration::ZERO, 100)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(request.await.unwrap(), StatusCode::ACCEPTED);
    assert_eq!(points_available(&app, &buyer).await, 0, "still held");
    app.payments
        .resume_pending(Duration::ZERO, 100)
        .await
        .unwrap();
    let (_, order) = app.get("/v1/payment-orders/order-claimed").await;
    assert_eq!(order["status"], "SUCCESS", "{order}");
    assert_eq!(psp_approvals(&app, "order-claimed").await, 1);
    assert_eq!(posted(&app, &payable(&shop)).await, 12_000);
    assert_eq!(points_available(&app, &buyer).await, 0);
    assert_books_hold(&app).await;
}
