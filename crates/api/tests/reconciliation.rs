//! Reconciliation over HTTP, black-box, against the in-process sandbox bank and sandbox PSP: a
//! day of charges, payouts, micro-deposits, card payments and a card refund reconciles with
//! safeguarding `ok`, and running it again changes nothing; every kind of mismatch injected on
//! either side (a line only the bank or the PSP has, a record only we have, an amount that
//! differs) is listed, and an unbooked deposit at the bank shows as a safeguarding excess;
//! who may reconcile; bad input.

mod common;

use api::ApiConfig;
use banking::sandbox::{FaultKind, FaultOp, FaultRule, MASTER_OPENING_BALANCE_WON_DEFAULT};
use common::{
    assert_error, bank_admin, charge, linked_member, open_account, post_money, send,
    spawn_app_with, Linked, TestApp, BANK,
};
use psp::CardProcessor;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The platform's float in the sandbox bank's master account, which the ledger does not book.
fn config() -> ApiConfig {
    ApiConfig {
        reconciliation: reconciliation::ReconciliationConfig {
            own_funds_won: MASTER_OPENING_BALANCE_WON_DEFAULT,
        },
        ..ApiConfig::default()
    }
}

/// Today's KST business date, `YYYY-MM-DD`.
fn today() -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000;
    settlement::SettlementDate::of_instant(now as i64).to_string()
}

/// Reconciles `date` once the current second is over: a day in progress is reconciled up to
/// the last whole second, and the test's traffic happened within the last one.
async fn reconcile(app: &TestApp, date: &str) -> Value {
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let (status, body) = send(
        app.admin(Method::POST, "/v1/reconciliations")
            .json(&json!({"date": date})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Pays a one-order checkout of `amount` by card as `buyer`; returns the order's `po_` id.
async fn card_order(
    app: &TestApp,
    buyer: &Linked,
    seller: &str,
    order_id: &str,
    key: &str,
) -> (StatusCode, Value) {
    let body = json!({
        "checkout_id": format!("chk-{order_id}"),
        "payment_orders": [{
            "seller_account": seller, "amount": "10000", "currency": "KRW",
            "payment_order_id": order_id, "escrow": false,
        }],
        "funding": {"card": {"billing_key": key, "amount": "10000"}},
    });
    send(
        app.bearer(&buyer.member.token, Method::POST, "/v1/payments")
            .json(&body),
    )
    .await
}

/// A day's traffic touching every kind of line: two linked members (two micro-deposits), a
/// charge of 50,000, a payout of 10,000 to another bank account, and a card order of 10,000
/// of which 4,000 is refunded. Returns the buyer.
async fn a_days_traffic(app: &TestApp) -> Linked {
    let kim = linked_member(app, 1, 1_000_000).await;
    let lee = linked_member(app, 2, 1_000_000).await;
    charge(app, &kim, 50_000).await;
    open_account(app, "220000000001", "홍길동", 0).await;
    let (status, body) = post_money(
        app,
        &kim.member.token,
        "/v1/wallets/KRW/payouts",
        &json!({
            "amount": "10000", "bank_code": BANK, "account_number": "220000000001",
            "holder_name": "홍길동", "auto_top_up": false,
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (shop, _) = app.merchant("Shop").await;
    let (status, payment) = card_order(app, &lee, &shop, "ord-card-1", "bk_test_ok_2").await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    let order = payment["payment_orders"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, refund) = send(
        app.admin(Method::POST, &format!("/v1/payment-orders/{order}/refunds"))
            .header("Idempotency-Key", "refund-1")
            .json(&json!({"amount": "4000", "reason": "one item returned"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    kim
}

#[tokio::test]
async fn a_clean_day_reconciles_with_safeguarding_ok_and_running_it_again_changes_nothing() {
    let app = spawn_app_with(config()).await;
    a_days_traffic(&app).await;
    let date = today();
    let first = reconcile(&app, &date).await;
    assert_eq!(first["status"], "matched", "{first}");
    assert_eq!(first["mismatch_count"], 0, "{first}");
    assert_eq!(first["mismatches"], json!([]));
    // Two micro-deposits, the charge's collect, the payout.
    assert_eq!(
        first["bank"],
        json!({"their_lines": 4, "our_lines": 4, "matched": 4})
    );
    // The approval and the cancellation.
    assert_eq!(
        first["psp"],
        json!({"their_lines": 2, "our_lines": 2, "matched": 2})
    );
    let safeguarding = &first["safeguarding"];
    assert_eq!(safeguarding["status"], "ok", "{first}");
    // Kim holds 40,000; Lee paid by card and holds nothing.
    assert_eq!(safeguarding["member_money"], "40000");
    assert_eq!(safeguarding["members_part"], "40000");
    // The ledger's master: +50,000 collected, −10,000 paid out, −2 in micro-deposits.
    assert_eq!(safeguarding["ledger_master"], "39998");
    let opening = MASTER_OPENING_BALANCE_WON_DEFAULT;
    assert_eq!(safeguarding["bank_balance"], (opening + 39_998).to_string());
    assert_eq!(first["runs"], 1);

    let again = reconcile(&app, &date).await;
    assert_eq!(again["runs"], 2);
    for field in [
        "status",
        "bank",
        "psp",
        "mismatch_count",
        "safeguarding",
        "mismatches",
        "first_run_at",
    ] {
        assert_eq!(again[field], first[field], "{field}");
    }
    let (status, stored) = app.get(&format!("/v1/reconciliations/{date}")).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["runs"], 2);
    assert_eq!(stored["safeguarding"], first["safeguarding"]);
    let (status, list) = app.get("/v1/reconciliations").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["date"], date.as_str());
    assert!(list["data"][0].get("mismatches").is_none());
    assert_eq!(list["next_cursor"], Value::Null);
}

#[tokio::test]
async fn every_kind_of_injected_mismatch_is_listed_on_both_sources() {
    let app = spawn_app_with(config()).await;
    let kim = a_days_traffic(&app).await;
    let db = app.db.db.pool();

    // Bank, missing on our side: cash paid into the master account, unknown to the ledger.
    bank_admin(
        &app,
        Method::POST,
        &format!(
            "/admin/accounts/{}/{}/deposits",
            banking::sandbox::MASTER_BANK_CODE_DEFAULT,
            banking::sandbox::MASTER_ACCOUNT_NUMBER_DEFAULT
        ),
        Some(json!({"tran_amt": "5000", "print_content": "CASH"})),
    )
    .await;
    // Bank, missing on theirs: a collect the bank refused that our record says succeeded.
    app.bank
        .faults()
        .replace(vec![FaultRule::next(FaultOp::Collect, FaultKind::Error, 1)])
        .unwrap();
    let (status, body) = post_money(
        &app,
        &kim.member.token,
        "/v1/wallets/KRW/charges",
        &json!({"amount": "7000"}),
    )
    .await;
    assert_error(status, &body, 422, "bank_refused");
    let refused: (String, String) =
        sqlx::query_as("SELECT id, bank_tran_id FROM bank_transfers WHERE state = 'failed'")
            .fetch_one(db)
            .await
            .unwrap();
    sqlx::query("UPDATE bank_transfers SET state = 'succeeded' WHERE id = $1")
        .bind(&refused.0)
        .execute(db)
        .await
        .unwrap();
    // Bank, amount differs: our record of the 50,000 collect says 50,001.
    let collected: (String, String) = sqlx::query_as(
        "SELECT id, bank_tran_id FROM bank_transfers WHERE kind = 'collect' AND amount = 50000",
    )
    .fetch_one(db)
    .await
    .unwrap();
    sqlx::query("UPDATE bank_transfers SET amount = 50001 WHERE id = $1")
        .bind(&collected.0)
        .execute(db)
        .await
        .unwrap();

    // PSP, missing on our side: a charge made at the PSP under an order id we never issued.
    let processor = psp::TossPayments::new(psp::TossConfig::new(
        &app.psp_url,
        psp::SecretKey::new("test_sk_check"),
    ))
    .unwrap();
    let outcome = processor
        .charge(&psp::ChargeRequest {
            billing_key: psp::BillingKey::parse("bk_test_ok_9").unwrap(),
            customer_key: psp::CustomerKey::parse("stranger-9").unwrap(),
            order_id: psp::PspOrderId::parse("ord-stranger").unwrap(),
            amount: psp::CardAmount::new(3_000).unwrap(),
            order_name: psp::OrderName::parse("Not ours").unwrap(),
        })
        .await;
    assert!(
        matches!(outcome, psp::ChargeOutcome::Approved(_)),
        "{outcome:?}"
    );
    // PSP, missing on theirs: a declined card order our record says was approved.
    let lee = linked_member(&app, 3, 1_000_000).await;
    let (shop, _) = app.merchant("Other shop").await;
    let (status, declined) =
        card_order(&app, &lee, &shop, "ord-declined", "bk_test_decline_3").await;
    assert!(
        status.is_client_error() || status == StatusCode::CREATED,
        "{status} {declined}"
    );
    sqlx::query(
        "UPDATE payment_orders SET card_state = 'approved' WHERE payment_order_id = 'ord-declined'",
    )
    .execute(db)
    .await
    .unwrap();
    // PSP, amount differs: our record of the card order's approval says 9,000 of its 10,000.
    sqlx::query(
        "UPDATE payment_orders SET card_amount = 9000, money_amount = money_amount + 1000 \
         WHERE payment_order_id = 'ord-card-1'",
    )
    .execute(db)
    .await
    .unwrap();

    let report = reconcile(&app, &today()).await;
    assert_eq!(report["status"], "mismatched", "{report}");
    let found: Vec<(String, String, String)> = report["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["source"].as_str().unwrap().to_owned(),
                m["kind"].as_str().unwrap().to_owned(),
                m["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let cash = found
        .iter()
        .find(|(source, kind, _)| source == "bank" && kind == "missing_ours")
        .expect("the cash line")
        .2
        .clone();
    assert!(cash.starts_with("line:"), "{cash}");
    let mut expected = vec![
        ("bank".to_owned(), "missing_ours".to_owned(), cash),
        (
            "bank".to_owned(),
            "missing_theirs".to_owned(),
            refused.1.clone(),
        ),
        (
            "bank".to_owned(),
            "amount_differs".to_owned(),
            collected.1.clone(),
        ),
        (
            "psp".to_owned(),
            "missing_ours".to_owned(),
            "ord-stranger:approval".to_owned(),
        ),
        (
            "psp".to_owned(),
            "missing_theirs".to_owned(),
            "ord-declined:approval".to_owned(),
        ),
        (
            "psp".to_owned(),
            "amount_differs".to_owned(),
            "ord-card-1:approval".to_owned(),
        ),
    ];
    let mut found_sorted = found.clone();
    found_sorted.sort();
    expected.sort();
    assert_eq!(found_sorted, expected, "{report}");
    assert_eq!(report["mismatch_count"], 6);
    let differs = report["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == collected.1.as_str())
        .unwrap();
    assert_eq!(differs["our_amount"], "50001");
    assert_eq!(differs["their_amount"], "50000");
    assert_eq!(differs["our_reference"], collected.0.as_str());
    // The cash is at the bank but in no account of the ledger: members' part exceeds their
    // money by exactly that much.
    let safeguarding = &report["safeguarding"];
    assert_eq!(safeguarding["status"], "excess", "{report}");
    assert_eq!(safeguarding["member_money"], "40000");
    assert_eq!(safeguarding["members_part"], "45000");
}

#[tokio::test]
async fn only_operators_reconcile_and_bad_dates_are_refused() {
    let app = spawn_app_with(config()).await;
    let member = app.member("m@example.com", "010-1234-5678").await;
    let (_, merchant_key) = app.merchant("Shop").await;
    for token in [member.token.as_str(), merchant_key.as_str()] {
        let (status, body) = send(
            app.bearer(token, Method::POST, "/v1/reconciliations")
                .json(&json!({"date": today()})),
        )
        .await;
        assert_error(status, &body, 403, "forbidden");
        let (status, body) = send(app.bearer(token, Method::GET, "/v1/reconciliations")).await;
        assert_error(status, &body, 403, "forbidden");
    }
    let (status, body) = send(
        app.admin(Method::POST, "/v1/reconciliations")
            .json(&json!({"date": "2026-13-01"})),
    )
    .await;
    assert_error(status, &body, 422, "reconciliation_date_invalid");
    let (status, body) = send(
        app.admin(Method::POST, "/v1/reconciliations")
            .json(&json!({"date": "2999-01-01"})),
    )
    .await;
    assert_error(status, &body, 409, "reconciliation_day_not_begun");
    let (status, body) = app.get("/v1/reconciliations/2026-01-01").await;
    assert_error(status, &body, 404, "reconciliation_not_found");
    let (status, body) = app.get("/v1/reconciliations?before=yesterday").await;
    assert_error(status, &body, 400, "invalid_request");
    // Nothing was recorded by the refusals.
    let (status, list) = app.get("/v1/reconciliations").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn a_side_that_cannot_be_read_records_nothing() {
    let mut app = spawn_app_with(config()).await;
    let date = today();
    // The bank answers every statement request with a system error.
    app.bank
        .faults()
        .replace(vec![FaultRule::next(
            FaultOp::Statement,
            FaultKind::Error,
            100,
        )])
        .unwrap();
    let (status, body) = send(
        app.admin(Method::POST, "/v1/reconciliations")
            .json(&json!({"date": date})),
    )
    .await;
    assert_error(status, &body, 503, "bank_unavailable");
    app.bank.faults().replace(Vec::new()).unwrap();
    // The PSP is down.
    app.stop_psp().await;
    let (status, body) = send(
        app.admin(Method::POST, "/v1/reconciliations")
            .json(&json!({"date": date})),
    )
    .await;
    assert_error(status, &body, 503, "psp_unavailable");
    let (status, body) = app.get(&format!("/v1/reconciliations/{date}")).await;
    assert_error(status, &body, 404, "reconciliation_not_found");
    // Both back: the day reconciles.
    app.start_psp(psp::sandbox::IDEMPOTENCY_TTL_DEFAULT).await;
    let day = reconcile(&app, &date).await;
    assert_eq!(day["runs"], 1, "{day}");
}
