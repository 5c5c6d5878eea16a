//! Settlement over HTTP, black-box, on a clock only the test moves: a day's sales, an escrow
//! release and a refund settled to the merchant's bank account less the fee (checked at the
//! sandbox bank and in the ledger); running the day again changes nothing (the same records,
//! one payout, the same CSV); a negative net carried over to the next day; payouts whose reply
//! is lost, that the bank refuses, or whose outcome stays unknown, each ending paid exactly
//! once or back in payable; days out of order; who may see what.

mod common;

use std::sync::Arc;

use banking::sandbox::{FaultKind, FaultOp, FaultRule};
use common::{
    assert_books_hold, assert_error, bank_admin, linked_member, payable, post_money, posted,
    postings, send, spawn_app_with_manual_clock, Linked, TestApp, TestMerchant, MEMBER_PASSWORD,
    MERCHANT_BANK,
};
use ledger::ManualClock;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 24 * HOUR_US;
/// The manual clock starts at 2026-11-22T00:00Z, 09:00 KST on the 22nd.
const DAY_1: &str = "2026-11-22";
const DAY_2: &str = "2026-11-23";
const DAY_3: &str = "2026-11-24";
const DAY_4: &str = "2026-11-25";
/// How long a `lost_reply` fault withholds the reply.
const HOLD_MS: u64 = 200;

/// A test server on a manual clock with one buyer whose wallet holds 200,000.
struct Market {
    app: TestApp,
    clock: Arc<ManualClock>,
    buyer: Linked,
}

async fn market(n: u32) -> Market {
    let (app, clock) = spawn_app_with_manual_clock().await;
    let buyer = linked_member(&app, n, 1_000_000).await;
    let (status, body) = post_money(
        &app,
        &buyer.member.token,
        "/v1/wallets/KRW/charges",
        &json!({"amount": "200000"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Market { app, clock, buyer }
}

impl Market {
    /// Pays one order to `seller` from the buyer's wallet; returns its `po_` id.
    async fn pay(&self, seller: &str, payment_order_id: &str, amount: i64, escrow: bool) -> String {
        let body = json!({
            "checkout_id": format!("chk-{payment_order_id}"),
            "funding": {"money": amount.to_string()},
            "payment_orders": [{
                "seller_account": seller, "amount": amount.to_string(), "currency": "KRW",
                "payment_order_id": payment_order_id, "escrow": escrow,
            }],
        });
        let (status, payment) = send(
            self.app
                .bearer(&self.buyer.member.token, Method::POST, "/v1/payments")
                .json(&body),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{payment}");
        assert_eq!(payment["status"], "succeeded", "{payment}");
        payment["payment_orders"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Takes an escrow step that must succeed.
    async fn escrow_step(&self, token: &str, order: &str, step: &str, body: Value) {
        let (status, escrow) = send(
            self.app
                .bearer(
                    token,
                    Method::POST,
                    &format!("/v1/payment-orders/{order}/escrow/{step}"),
                )
                .json(&body),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{step}: {escrow}");
    }

    /// Refunds `amount` of an order with the admin key.
    async fn refund(&self, order: &str, amount: i64) {
        let (status, refund) = send(
            self.app
                .admin(Method::POST, &format!("/v1/payment-orders/{order}/refunds"))
                .header("Idempotency-Key", ulid::Ulid::new().to_string())
                .json(&json!({"amount": amount.to_string()})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{refund}");
        assert_eq!(refund["status"], "succeeded", "{refund}");
    }

    /// Moves the clock and logs the buyer in again (sessions live a day on the same clock).
    async fn advance(&mut self, micros: i64) {
        self.clock.advance_micros(micros);
        let (status, session) = self
            .app
            .log_in(&self.buyer.member.email, MEMBER_PASSWORD)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{session}");
        self.buyer.member.token = session["token"].as_str().unwrap().to_owned();
    }

    /// Runs a day with the admin key.
    async fn run(&self, date: &str) -> (StatusCode, Value) {
        self.app
            .post("/v1/settlements/runs", &json!({"date": date}))
            .await
    }

    /// Runs a day that must run; returns the run.
    async fn run_ok(&self, date: &str) -> Value {
        let (status, run) = self.run(date).await;
        assert_eq!(status, StatusCode::OK, "{run}");
        run
    }

    /// A merchant's settlements, newest first, read with its own key.
    async fn settlements(&self, merchant: &TestMerchant) -> Vec<Value> {
        let (status, page) = send(self.app.bearer(
            &merchant.key,
            Method::GET,
            &format!("/v1/merchants/{}/settlements", merchant.id),
        ))
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["data"].as_array().unwrap().clone()
    }

    /// The CSV report of a day.
    async fn report(&self, date: &str) -> String {
        let response = self
            .app
            .admin(
                Method::GET,
                &format!("/v1/settlements/runs/{date}/report.csv"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "text/csv; charset=utf-8"
        );
        response.text().await.unwrap()
    }
}

/// What the sandbox bank holds in a merchant's settlement account, and its statement lines.
async fn bank_side(app: &TestApp, merchant: &TestMerchant) -> (i64, usize) {
    let account = bank_admin(
        app,
        Method::GET,
        &format!("/admin/accounts/{MERCHANT_BANK}/{}", merchant.account),
        None,
    )
    .await;
    let lines = bank_admin(
        app,
        Method::GET,
        &format!(
            "/admin/accounts/{MERCHANT_BANK}/{}/transactions",
            merchant.account
        ),
        None,
    )
    .await;
    (
        account["balance_amt"].as_str().unwrap().parse().unwrap(),
        lines["res_list"].as_array().unwrap().len(),
    )
}

fn faults(app: &TestApp, rules: Vec<FaultRule>) {
    app.bank.faults().replace(rules).expect("fault rules");
}

fn fault(op: FaultOp, kind: FaultKind, count: u32) -> FaultRule {
    FaultRule::next(op, kind, count).with_hold_ms(HOLD_MS)
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_day_settles_sales_and_an_escrow_release_less_a_refund_and_the_fee_once() {
    let mut m = market(1).await;
    let shop = m.app.merchant_with_account("Corner Coffee").await;
    let other = m.app.merchant_with_account("Other Shop").await;
    let sale = m.pay(&shop.id, "order-sale", 20_000, false).await;
    let held = m.pay(&shop.id, "order-escrow", 10_000, true).await;
    m.escrow_step(&shop.key, &held, "ship", json!({"tracking_number": "CJ-1"}))
        .await;
    m.escrow_step(&shop.key, &held, "deliver", json!({})).await;
    let buyer = m.buyer.member.token.clone();
    m.escrow_step(&buyer, &held, "confirm", json!({})).await;
    m.refund(&sale, 4_000).await;
    assert_eq!(posted(&m.app, &payable(&shop.id)).await, 26_000);

    // The day is not over until 00:00 KST on the next day.
    let (status, body) = m.run(DAY_1).await;
    assert_error(status, &body, 409, "settlement_day_not_over");
    let (status, body) = m.run("2026-11-31").await;
    assert_error(status, &body, 422, "settlement_date_invalid");

    m.advance(16 * HOUR_US).await;
    let run = m.run_ok(DAY_1).await;
    assert_eq!(run["date"], DAY_1);
    assert_eq!(run["cutoff_at"], "2026-11-22T15:00:00.000000Z");
    assert_eq!(run["state"], "completed", "{run}");
    assert_eq!(
        (
            &run["settlements"],
            &run["paid"],
            &run["paying"],
            &run["failed"],
            &run["carried_over"]
        ),
        (&json!(1), &json!(1), &json!(0), &json!(0), &json!(0)),
        "{run}"
    );
    // Sales 30,000 (the order and the escrow release) at 2.5 % is 750; the refund is taken
    // from what is paid, not from the fee base.
    assert_eq!(
        (&run["gross"], &run["fee"], &run["net_paid"]),
        (&json!("26000"), &json!("750"), &json!("25250"))
    );

    let listed = m.settlements(&shop).await;
    assert_eq!(listed.len(), 1);
    let s = &listed[0];
    assert_eq!(s["state"], "paid", "{s}");
    assert_eq!(s["date"], DAY_1);
    assert_eq!(
        (
            &s["sales"],
            &s["fee_bps"],
            &s["gross"],
            &s["fee"],
            &s["net"]
        ),
        (
            &json!("30000"),
            &json!(250),
            &json!("26000"),
            &json!("750"),
            &json!("25250")
        )
    );
    let stl = id_of(s);
    assert!(stl.starts_with("stl_"));
    assert!(s["bank_transfer_id"].as_str().unwrap().starts_with("btr_"));

    // The bank paid the net once; the ledger moved payable through in-transit to the master.
    assert_eq!(bank_side(&m.app, &shop).await, (25_250, 1));
    assert_eq!(
        postings(&m.app, &stl).await,
        vec![
            ("income:fees".to_owned(), -750),
            (payable(&shop.id), 26_000),
            ("liability:settlement:in_transit".to_owned(), -25_250),
        ]
    );
    assert_eq!(
        postings(&m.app, &format!("{stl}.paid")).await,
        vec![
            ("asset:bank:master".to_owned(), -25_250),
            ("liability:settlement:in_transit".to_owned(), 25_250),
        ]
    );
    assert_eq!(posted(&m.app, &payable(&shop.id)).await, 0);
    assert_eq!(posted(&m.app, "liability:settlement:in_transit").await, 0);
    assert_eq!(posted(&m.app, "income:fees").await, 750);

    // Running the day again changes nothing: the same run, records and report, one payout.
    let report = m.report(DAY_1).await;
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines[0], settlement::CSV_HEADER);
    assert_eq!(
        lines[1],
        format!(
            "{stl},{},Corner Coffee,KRW,30000,250,26000,750,25250,paid,{}",
            shop.id,
            s["bank_transfer_id"].as_str().unwrap()
        )
    );
    assert_eq!(
        lines.len(),
        2,
        "a merchant with nothing to settle has no line"
    );
    m.advance(HOUR_US).await;
    let again = m.run_ok(DAY_1).await;
    assert_eq!(again, run);
    let (status, read) = m.app.get(&format!("/v1/settlements/runs/{DAY_1}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, run);
    assert_eq!(m.settlements(&shop).await, listed);
    assert_eq!(m.report(DAY_1).await, report);
    assert_eq!(bank_side(&m.app, &shop).await, (25_250, 1));
    assert_eq!(posted(&m.app, "income:fees").await, 750);

    // A merchant key sees its own settlements only; members see none; runs are for operators.
    let (status, body) = send(m.app.bearer(
        &other.key,
        Method::GET,
        &format!("/v1/merchants/{}/settlements", shop.id),
    ))
    .await;
    assert_error(status, &body, 404, "merchant_not_found");
    assert!(m.settlements(&other).await.is_empty());
    let (status, body) = send(
        m.app
            .bearer(&shop.key, Method::POST, "/v1/settlements/runs")
            .json(&json!({"date": DAY_1})),
    )
    .await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = send(m.app.bearer(
        &buyer,
        Method::GET,
        &format!("/v1/settlements/runs/{DAY_1}"),
    ))
    .await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED,
        "{body}"
    );
    let (status, body) = m.app.get("/v1/settlements/runs/2026-11-20").await;
    assert_error(status, &body, 404, "settlement_run_not_found");
    assert_books_hold(&m.app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_negative_net_is_carried_over_and_the_next_day_takes_it_with_its_fee() {
    let mut m = market(2).await;
    let shop = m.app.merchant_with_account("Book Store").await;
    let first = m.pay(&shop.id, "order-day-1", 10_000, false).await;
    m.advance(16 * HOUR_US).await;
    let run = m.run_ok(DAY_1).await;
    assert_eq!(run["net_paid"], "9750", "{run}");

    // Day 2: the settled order is refunded in full; the merchant owes the platform.
    m.refund(&first, 10_000).await;
    assert_eq!(posted(&m.app, &payable(&shop.id)).await, -10_000);
    m.advance(DAY_US).await;
    let run = m.run_ok(DAY_2).await;
    assert_eq!(
        (&run["state"], &run["carried_over"], &run["paid"]),
        (&json!("completed"), &json!(1), &json!(0)),
        "{run}"
    );
    let carried = &m.settlements(&shop).await[0];
    assert_eq!(carried["state"], "carried_over");
    assert_eq!(
        (
            &carried["sales"],
            &carried["gross"],
            &carried["fee"],
            &carried["net"]
        ),
        (&json!("0"), &json!("-10000"), &json!("0"), &json!("-10000"))
    );
    assert_eq!(carried["bank_transfer_id"], Value::Null);
    assert!(
        m.app
            .ledger
            .transaction(carried["id"].as_str().unwrap())
            .await
            .is_err(),
        "nothing is booked"
    );
    assert_eq!(bank_side(&m.app, &shop).await, (9_750, 1));

    // Day 3: a sale of 30,000 pays 30,000 − 10,000 owed − 750 fee.
    m.pay(&shop.id, "order-day-3", 30_000, false).await;
    m.advance(DAY_US).await;
    let run = m.run_ok(DAY_3).await;
    assert_eq!(
        (&run["gross"], &run["fee"], &run["net_paid"]),
        (&json!("20000"), &json!("750"), &json!("19250")),
        "{run}"
    );
    assert_eq!(bank_side(&m.app, &shop).await, (29_000, 2));
    assert_eq!(posted(&m.app, &payable(&shop.id)).await, 0);

    // Earlier days stay as they were; a day before the last one run is never settled.
    let again = m.run_ok(DAY_2).await;
    assert_eq!(again["carried_over"], 1);
    let (status, body) = m.run("2026-11-21").await;
    assert_error(status, &body, 409, "settlement_day_superseded");
    assert_eq!(m.settlements(&shop).await.len(), 3);
    assert_eq!(bank_side(&m.app, &shop).await, (29_000, 2));
    assert_books_hold(&m.app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payout_faults_end_paid_exactly_once_or_back_in_payable() {
    let mut m = market(3).await;
    let lost = m.app.merchant_with_account("Lost Reply Shop").await;
    let refused = m.app.merchant_with_account("Refused Shop").await;
    let unknown = m.app.merchant_with_account("Unknown Shop").await;

    // Day 1: the bank pays and the reply is lost; the inquiry finds it paid.
    m.pay(&lost.id, "order-lost", 10_000, false).await;
    m.advance(16 * HOUR_US).await;
    faults(
        &m.app,
        vec![fault(FaultOp::Payout, FaultKind::LostReply, 1)],
    );
    let run = m.run_ok(DAY_1).await;
    assert_eq!(
        (&run["state"], &run["paid"]),
        (&json!("completed"), &json!(1)),
        "{run}"
    );
    assert_eq!(bank_side(&m.app, &lost).await, (9_750, 1));

    // Day 2: the bank refuses; the net goes back to payable, and no rerun pays it twice.
    m.pay(&refused.id, "order-refused", 10_000, false).await;
    m.advance(DAY_US).await;
    faults(&m.app, vec![fault(FaultOp::Payout, FaultKind::Error, 1)]);
    let run = m.run_ok(DAY_2).await;
    assert_eq!(
        (&run["state"], &run["failed"], &run["net_paid"]),
        (&json!("completed"), &json!(1), &json!("0")),
        "{run}"
    );
    let failed = m.settlements(&refused).await[0].clone();
    assert_eq!(failed["state"], "failed");
    assert!(
        failed["failure_code"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{failed}"
    );
    let stl = id_of(&failed);
    assert_eq!(
        postings(&m.app, &format!("{stl}.returned")).await,
        vec![
            (payable(&refused.id), -9_750),
            ("liability:settlement:in_transit".to_owned(), 9_750),
        ]
    );
    assert_eq!(posted(&m.app, &payable(&refused.id)).await, 9_750);
    assert_eq!(posted(&m.app, "liability:settlement:in_transit").await, 0);
    assert_eq!(bank_side(&m.app, &refused).await, (0, 0));
    assert_eq!(m.run_ok(DAY_2).await, run);
    assert_eq!(bank_side(&m.app, &refused).await, (0, 0));

    // Day 3: the next run pays the returned net, without a second fee.
    m.advance(DAY_US).await;
    let run = m.run_ok(DAY_3).await;
    assert_eq!(
        (&run["paid"], &run["fee"], &run["net_paid"]),
        (&json!(1), &json!("0"), &json!("9750")),
        "{run}"
    );
    assert_eq!(bank_side(&m.app, &refused).await, (9_750, 1));
    assert_eq!(posted(&m.app, &payable(&refused.id)).await, 0);

    // Day 4: the reply is lost and every inquiry fails: the run ends with the payout unknown,
    // the money held; the resolver (or a rerun) finds it paid, once.
    m.pay(&unknown.id, "order-unknown", 20_000, false).await;
    m.advance(DAY_US).await;
    faults(
        &m.app,
        vec![
            fault(FaultOp::Payout, FaultKind::LostReply, 1),
            fault(FaultOp::Result, FaultKind::Error, 4),
        ],
    );
    let run = m.run_ok(DAY_4).await;
    assert_eq!(
        (&run["state"], &run["paying"]),
        (&json!("paying"), &json!(1)),
        "{run}"
    );
    assert_eq!(m.settlements(&unknown).await[0]["state"], "paying");
    let in_transit = m
        .app
        .ledger
        .account_by_code(&ledger::AccountCode::parse("liability:settlement:in_transit").unwrap())
        .await
        .unwrap();
    let balance = in_transit.balance().unwrap();
    assert_eq!(
        (balance.posted.minor(), balance.available.minor()),
        (19_500, 0),
        "held while in flight"
    );
    assert_eq!(
        bank_side(&m.app, &unknown).await,
        (19_500, 1),
        "the bank did pay"
    );
    faults(&m.app, Vec::new());
    assert_eq!(m.app.settlements.resolve_pending(100).await.unwrap(), 1);
    let (_, run) = m.app.get(&format!("/v1/settlements/runs/{DAY_4}")).await;
    assert_eq!(
        (&run["state"], &run["paid"], &run["net_paid"]),
        (&json!("completed"), &json!(1), &json!("19500")),
        "{run}"
    );
    assert_eq!(m.run_ok(DAY_4).await, run);
    assert_eq!(m.settlements(&unknown).await[0]["state"], "paid");
    assert_eq!(bank_side(&m.app, &unknown).await, (19_500, 1));
    assert_eq!(bank_side(&m.app, &lost).await, (9_750, 1));
    assert_eq!(posted(&m.app, "liability:settlement:in_transit").await, 0);
    assert_books_hold(&m.app).await;
}
