//! Malformed input: every case is refused with the envelope and the documented code, and none
//! of them moves money.

mod common;

use api::ApiConfig;
use common::{assert_error, funded_wallet, send, spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::{json, Value};

fn leg_body(from: &str, to: &str, amount: Value, currency: &str) -> Value {
    json!({"postings": [
        {"account_id": from, "direction": "debit", "amount": amount, "currency": currency},
        {"account_id": to, "direction": "credit", "amount": amount, "currency": currency},
    ]})
}

#[tokio::test]
async fn amounts_must_be_canonical_decimal_strings() {
    let app = spawn_app().await;
    let (usd_wallet, usd_bank) = funded_wallet(&app, "usd", "USD", "100.00").await;
    let (krw_wallet, krw_bank) = funded_wallet(&app, "krw", "KRW", "1000").await;
    let usd_cases = [
        json!(1000),
        json!(12.5),
        json!("1e3"),
        json!("-1"),
        json!(" 1"),
        json!("1.234"),
        json!("١"),
        json!(true),
        json!(["1"]),
    ];
    for amount in usd_cases {
        let (status, body) = app
            .post(
                "/v1/ledger/transactions",
                &leg_body(&usd_wallet, &usd_bank, amount.clone(), "USD"),
            )
            .await;
        assert_error(status, &body, 422, "amount_invalid");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("postings[0].amount"),
            "{amount}: {body}"
        );
    }
    let (status, body) = app
        .post(
            "/v1/ledger/transactions",
            &leg_body(&krw_wallet, &krw_bank, json!("12.5"), "KRW"),
        )
        .await;
    assert_error(status, &body, 422, "amount_invalid");
    let (status, body) = app
        .post(
            "/v1/ledger/transactions",
            &leg_body(&krw_wallet, &krw_bank, json!("99999999999999999999"), "KRW"),
        )
        .await;
    assert_error(status, &body, 422, "amount_out_of_range");
    let (status, body) = app
        .post(
            "/v1/ledger/holds",
            &json!({"debit_account_id": usd_wallet, "credit_account_id": usd_bank, "amount": 5, "currency": "USD"}),
        )
        .await;
    assert_error(status, &body, 422, "amount_invalid");

    assert_eq!(app.balance(&usd_wallet).await["posted"], "100.00");
    assert_eq!(app.balance(&krw_wallet).await["posted"], "1000");
}

#[tokio::test]
async fn currencies_must_be_known_iso_codes() {
    let app = spawn_app().await;
    let (wallet, bank) = funded_wallet(&app, "cur", "USD", "1.00").await;
    for currency in ["XYZ", "usd", "US", ""] {
        let (status, body) = app
            .post(
                "/v1/ledger/transactions",
                &leg_body(&wallet, &bank, json!("1"), currency),
            )
            .await;
        assert_error(status, &body, 422, "currency_unknown");
    }
    let (status, body) = app
        .post(
            "/v1/ledger/accounts",
            &json!({"code": "asset:x", "kind": "asset", "currency": "ABC"}),
        )
        .await;
    assert_error(status, &body, 422, "currency_unknown");
}

#[tokio::test]
async fn malformed_bodies_are_invalid_requests() {
    let app = spawn_app().await;
    let (wallet, bank) = funded_wallet(&app, "mal", "KRW", "100").await;
    let path = "/v1/ledger/transactions";

    let mut unknown_top = leg_body(&wallet, &bank, json!("1"), "KRW");
    unknown_top["memo"] = json!("x");
    let (status, body) = app.post(path, &unknown_top).await;
    assert_error(status, &body, 400, "invalid_request");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("memo"),
        "{body}"
    );

    let mut unknown_leg = leg_body(&wallet, &bank, json!("1"), "KRW");
    unknown_leg["postings"][0]["fee"] = json!("1");
    let (status, body) = app.post(path, &unknown_leg).await;
    assert_error(status, &body, 400, "invalid_request");

    let (status, body) = send(
        app.admin(Method::POST, path)
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_error(status, &body, 400, "invalid_request");

    let valid = serde_json::to_string(&leg_body(&wallet, &bank, json!("1"), "KRW")).unwrap();
    let (status, body) = send(app.admin(Method::POST, path).body(valid.clone())).await;
    assert_error(status, &body, 400, "invalid_request");
    let (status, body) = send(
        app.admin(Method::POST, path)
            .header("content-type", "text/plain")
            .body(valid),
    )
    .await;
    assert_error(status, &body, 400, "invalid_request");

    let (status, body) = app.post(path, &json!({"postings": [{"account_id": wallet, "direction": "sideways", "amount": "1", "currency": "KRW"}]})).await;
    assert_error(status, &body, 400, "invalid_request");
    let (status, body) = app
        .post(
            "/v1/ledger/accounts",
            &json!({"code": "asset:y", "kind": "cash", "currency": "KRW"}),
        )
        .await;
    assert_error(status, &body, 400, "invalid_request");
    let (status, body) = app
        .post(
            "/v1/ledger/accounts",
            &json!({"code": "has space", "kind": "asset", "currency": "KRW"}),
        )
        .await;
    assert_error(status, &body, 422, "invalid_request");
    let (status, body) = app
        .post(
            "/v1/ledger/accounts",
            &json!({"code": "asset:z", "kind": "asset", "currency": "KRW", "metadata": [1]}),
        )
        .await;
    assert_error(status, &body, 422, "invalid_request");
    let (status, body) = app
        .post(
            "/v1/ledger/holds",
            &json!({"debit_account_id": wallet, "credit_account_id": bank, "amount": "1", "currency": "KRW", "expires_at": "tomorrow"}),
        )
        .await;
    assert_error(status, &body, 422, "invalid_request");
    let (status, body) = app
        .post("/v1/ledger/holds/h1/void", &json!({"reason": "x"}))
        .await;
    assert_error(status, &body, 400, "invalid_request");
    let (status, body) = app
        .get(&format!("/v1/ledger/accounts/{wallet}/history?cursor=abc"))
        .await;
    assert_error(status, &body, 400, "invalid_request");

    assert_eq!(app.balance(&wallet).await["posted"], "100");
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_413() {
    let app = spawn_app_with(ApiConfig {
        body_limit_bytes: 4096,
        ..ApiConfig::default()
    })
    .await;
    let (wallet, bank) = funded_wallet(&app, "big", "KRW", "100").await;
    let mut body = leg_body(&wallet, &bank, json!("1"), "KRW");
    body["description"] = json!("x".repeat(8192));
    let (status, error) = app.post("/v1/ledger/transactions", &body).await;
    assert_error(status, &error, 413, "payload_too_large");
    // The idempotency layer reads the body itself and must enforce the same limit.
    let (status, error) = send(
        app.admin(Method::POST, "/v1/ledger/transactions")
            .header("idempotency-key", "big-1")
            .json(&body),
    )
    .await;
    assert_error(status, &error, 413, "payload_too_large");
    let (status, error) = app
        .post(
            "/v1/ledger/accounts",
            &json!({"code": "x".repeat(5000), "kind": "asset", "currency": "KRW"}),
        )
        .await;
    assert_error(status, &error, 413, "payload_too_large");
    assert_eq!(app.balance(&wallet).await["posted"], "100");
}
