//! Health, readiness, metrics, the OpenAPI contract, request ids and the router's own errors.

mod common;

use common::{assert_error, json_of, send, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn healthz_and_readyz_answer_without_a_key() {
    let app = spawn_app().await;
    let (status, body) = json_of(app.client.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));
    let (status, body) = json_of(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"status": "ready", "checks": {"database": "ok", "item_locks": "ok"}})
    );
}

#[tokio::test]
async fn readyz_and_ledger_routes_report_an_unreachable_database_without_detail() {
    let app = spawn_app().await;
    let account = app.account("asset:bank:ready", "asset", "KRW", false).await;
    app.db.db.close().await;
    let (status, body) = json_of(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({"status": "unavailable", "checks": {"database": "unavailable", "item_locks": "unavailable"}})
    );
    // Authentication itself needs the database, so it is the first thing to fail.
    let (status, body) = app.get(&format!("/v1/ledger/accounts/{account}")).await;
    assert_error(status, &body, 503, "storage_unavailable");
    let message = body["error"]["message"].as_str().unwrap();
    assert_eq!(message, "the database is unavailable; retry later");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = spawn_app().await;
    let account = app
        .account("asset:bank:metrics", "asset", "KRW", false)
        .await;
    for _ in 0..3 {
        let (status, _) = app.get(&format!("/v1/ledger/accounts/{account}")).await;
        assert_eq!(status, StatusCode::OK);
    }
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    let counter = text
        .lines()
        .find(|line| {
            line.starts_with("http_requests_total{")
                && line.contains("method=\"GET\"")
                && line.contains("route=\"/v1/ledger/accounts/{id}\"")
                && line.contains("status=\"200\"")
        })
        .unwrap_or_else(|| panic!("no counter for the account route in:\n{text}"));
    let count: f64 = counter.rsplit(' ').next().unwrap().parse().unwrap();
    // Other tests in this process share the global recorder, so this is a lower bound.
    assert!(count >= 3.0, "{counter}");
    assert!(!text.contains(&account), "raw paths must not become labels");
    assert!(
        text.contains("http_request_duration_seconds_bucket{"),
        "a histogram, not a summary"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_envelope() {
    let app = spawn_app().await;
    let (status, body) = send(app.admin(Method::GET, "/v1/nope")).await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = send(app.admin(Method::DELETE, "/v1/ledger/accounts")).await;
    assert_error(status, &body, 405, "method_not_allowed");
    let (status, body) = send(app.client.put(app.url("/healthz"))).await;
    assert_error(status, &body, 405, "method_not_allowed");
    // The idempotency middleware leaves a method the route does not serve to the router,
    // even with a malformed key.
    for method in [Method::PUT, Method::DELETE, Method::TRACE] {
        let (status, body) = send(
            app.admin(method.clone(), "/v1/ledger/transactions")
                .header("Idempotency-Key", "not a key"),
        )
        .await;
        assert_error(status, &body, 405, "method_not_allowed");
    }
}

/// What middleware and shared extractors answer before any handler runs is in the document
/// of every operation that can meet it.
#[test]
fn answers_given_before_a_handler_runs_are_documented() {
    let document = serde_json::to_value(api::openapi()).unwrap();
    let (mut idempotent, mut by_currency) = (0, 0);
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let takes = |name: &str, place: &str| {
                parameters
                    .iter()
                    .any(|p| p["name"] == name && p["in"] == place)
            };
            let lists = |status: &str| operation["responses"].get(status).is_some();
            if takes("Idempotency-Key", "header") {
                idempotent += 1;
                for status in ["400", "409", "422"] {
                    assert!(lists(status), "{method} {path} does not list {status}");
                }
            }
            if takes("currency", "path") {
                by_currency += 1;
                assert!(lists("422"), "{method} {path} does not list 422");
            }
        }
    }
    assert!(
        idempotent >= 20,
        "{idempotent} operations take an Idempotency-Key"
    );
    assert!(by_currency >= 5, "{by_currency} operations take a currency");
}

#[tokio::test]
async fn request_ids_are_echoed_in_header_and_error_body() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/v1/ledger/accounts"))
        .header("x-request-id", "client-trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "client-trace-42");
    let (status, body) = json_of(response).await;
    assert_error(status, &body, 401, "unauthenticated");
    assert_eq!(body["error"]["request_id"], "client-trace-42");

    let response = app
        .client
        .get(app.url("/v1/nope"))
        .header("x-request-id", "x".repeat(65))
        .send()
        .await
        .unwrap();
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        generated.starts_with("req_") && generated.len() == 30,
        "{generated}"
    );
    let (_, body) = json_of(response).await;
    assert_eq!(body["error"]["request_id"], generated.as_str());

    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_"));
}

#[tokio::test]
async fn the_served_document_is_the_generated_one() {
    let app = spawn_app().await;
    let (status, served) = json_of(
        app.client
            .get(app.url("/v1/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let generated: Value = serde_json::from_str(&api::openapi().to_json().unwrap()).unwrap();
    assert_eq!(served, generated);
    assert_eq!(
        served["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

/// Every (method, path) the server answers, as this test knows it. The test below proves that
/// the document lists exactly these, that each answers, and that no other method answers on a
/// documented path.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/v1/openapi.json"),
    ("POST", "/v1/ledger/accounts"),
    ("GET", "/v1/ledger/accounts"),
    ("GET", "/v1/ledger/accounts/{id}"),
    ("GET", "/v1/ledger/accounts/{id}/balance"),
    ("GET", "/v1/ledger/accounts/{id}/history"),
    ("GET", "/v1/ledger/balances"),
    ("POST", "/v1/ledger/transactions"),
    ("GET", "/v1/ledger/transactions/{id}"),
    ("POST", "/v1/ledger/holds"),
    ("GET", "/v1/ledger/holds/{id}"),
    ("POST", "/v1/ledger/holds/{id}/post"),
    ("POST", "/v1/ledger/holds/{id}/void"),
    ("POST", "/v1/admin/api-keys"),
    ("GET", "/v1/admin/api-keys"),
    ("POST", "/v1/admin/api-keys/{id}/revoke"),
    ("POST", "/v1/members"),
    ("GET", "/v1/members/me"),
    ("PATCH", "/v1/members/me"),
    ("POST", "/v1/members/me/close"),
    ("GET", "/v1/members/{id}"),
    ("POST", "/v1/sessions"),
    ("DELETE", "/v1/sessions/current"),
    ("POST", "/v1/bank-accounts"),
    ("GET", "/v1/bank-accounts"),
    ("POST", "/v1/bank-accounts/partner"),
    ("GET", "/v1/bank-accounts/{id}"),
    ("DELETE", "/v1/bank-accounts/{id}"),
    ("POST", "/v1/bank-accounts/{id}/verification"),
    ("POST", "/v1/bank-accounts/{id}/verify"),
    ("POST", "/v1/bank-accounts/{id}/consent"),
    ("POST", "/v1/bank-accounts/{id}/consent/confirm"),
    ("GET", "/v1/wallets"),
    ("GET", "/v1/wallets/{currency}"),
    ("GET", "/v1/wallets/{currency}/history"),
    ("GET", "/v1/wallets/{currency}/transactions/{id}"),
    ("POST", "/v1/wallets/{currency}/charges"),
    ("POST", "/v1/wallets/{currency}/withdrawals"),
    ("POST", "/v1/wallets/{currency}/payouts"),
    ("GET", "/v1/members/{member_id}/wallets/{currency}"),
    ("GET", "/v1/members/{member_id}/wallets/{currency}/history"),
    ("POST", "/v1/transfers"),
    ("GET", "/v1/items/{key}/lock"),
    ("POST", "/v1/merchants/{merchant_id}/webhook-endpoints"),
    ("GET", "/v1/merchants/{merchant_id}/webhook-endpoints"),
    ("GET", "/v1/merchants/{merchant_id}/webhook-endpoints/{id}"),
    (
        "DELETE",
        "/v1/merchants/{merchant_id}/webhook-endpoints/{id}",
    ),
    ("GET", "/v1/merchants/{merchant_id}/webhook-events"),
    ("POST", "/v1/webhook-deliveries/{id}/retry"),
    ("GET", "/v1/admin/jobs"),
    ("GET", "/v1/admin/jobs/{id}"),
    ("POST", "/v1/admin/jobs/{id}/retry"),
    ("POST", "/v1/admin/jobs/{id}/discard"),
    ("POST", "/v1/merchants"),
    ("GET", "/v1/merchants"),
    ("GET", "/v1/merchants/{merchant_id}"),
    ("PATCH", "/v1/merchants/{merchant_id}"),
    ("PUT", "/v1/merchants/{merchant_id}/settlement-account"),
    ("POST", "/v1/merchants/{merchant_id}/api-keys"),
    ("POST", "/v1/payments"),
    ("GET", "/v1/payments/{id}"),
    ("GET", "/v1/payment-orders/{id}"),
    ("POST", "/v1/members/{member_id}/points"),
    ("GET", "/v1/points"),
    ("GET", "/v1/members/{member_id}/points"),
    ("POST", "/v1/payment-orders/{id}/refunds"),
    ("GET", "/v1/payment-orders/{id}/refunds"),
    ("GET", "/v1/refunds/{id}"),
    ("GET", "/v1/payment-orders/{id}/escrow"),
    ("POST", "/v1/payment-orders/{id}/escrow/ship"),
    ("POST", "/v1/payment-orders/{id}/escrow/deliver"),
    ("POST", "/v1/payment-orders/{id}/escrow/confirm"),
    ("POST", "/v1/payment-orders/{id}/escrow/dispute"),
    ("POST", "/v1/payment-orders/{id}/escrow/resolve"),
    ("POST", "/v1/payment-orders/{id}/escrow/cancel"),
    ("POST", "/v1/settlements/runs"),
    ("GET", "/v1/settlements/runs/{date}"),
    ("GET", "/v1/settlements/runs/{date}/report.csv"),
    ("GET", "/v1/merchants/{merchant_id}/settlements"),
    ("POST", "/v1/remittances"),
    ("GET", "/v1/remittances"),
    ("GET", "/v1/remittances/{id}"),
    ("POST", "/v1/remittances/{id}/retry"),
    ("POST", "/v1/merchants/{merchant_id}/debit-mandate"),
    ("GET", "/v1/merchants/{merchant_id}/debit-mandate"),
    ("DELETE", "/v1/merchants/{merchant_id}/debit-mandate"),
    ("POST", "/v1/reconciliations"),
    ("GET", "/v1/reconciliations"),
    ("GET", "/v1/reconciliations/{date}"),
    ("POST", "/v1/admin/operators"),
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

#[tokio::test]
async fn the_document_and_the_server_agree_on_every_route() {
    let app = spawn_app().await;
    let document = api::openapi();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in &document.paths.paths {
        let item = serde_json::to_value(item).unwrap();
        for method in METHODS {
            if item.get(method.to_lowercase()).is_some() {
                documented.push((method.to_string(), path.clone()));
            }
        }
    }
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    documented.sort();
    expected.sort();
    assert_eq!(documented, expected);

    for path in document.paths.paths.keys() {
        let concrete = path.replace("{id}", "does-not-exist");
        for method in METHODS {
            let (status, body) = send(
                app.admin(common::method(method), &concrete)
                    .json(&json!({})),
            )
            .await;
            let is_documented = expected.contains(&(method.to_string(), path.clone()));
            if is_documented {
                // Resource-level 404s (account_not_found, …) are answers; the router's is not.
                assert_ne!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path}: {body}"
                );
                assert_ne!(
                    body["error"]["code"], "not_found",
                    "{method} {path}: {body}"
                );
            } else {
                assert_error(status, &body, 405, "method_not_allowed");
            }
        }
    }
}

#[tokio::test]
async fn bank_and_psp_calls_are_counted_and_timed_by_operation_and_outcome() {
    let app = spawn_app().await;
    let buyer = common::linked_member(&app, 1, 100_000).await;
    common::charge(&app, &buyer, 10_000).await;
    let (shop, _) = app.merchant("Metrics shop").await;
    let (status, payment) = common::send(
        app.bearer(&buyer.member.token, reqwest::Method::POST, "/v1/payments")
            .json(&json!({
                "checkout_id": "chk-metrics",
                "payment_orders": [{"seller_account": shop, "amount": "5000", "currency": "KRW",
                                    "payment_order_id": "ord-metrics", "escrow": false}],
                "funding": {"card": {"billing_key": "bk_test_ok_1", "amount": "5000"}},
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (name, labels) in [
        (
            "mypay_bank_calls_total{",
            [
                "operation=\"/v2.0/transfer/withdraw/acnt_num\"",
                "outcome=\"reply\"",
            ],
        ),
        (
            "mypay_psp_calls_total{",
            ["operation=\"charge\"", "outcome=\"ok\""],
        ),
        (
            "mypay_bank_call_seconds_count{",
            ["operation=\"/v2.0/inquiry/real_name\"", ""],
        ),
        (
            "mypay_psp_call_seconds_count{",
            ["operation=\"charge\"", ""],
        ),
    ] {
        assert!(
            text.lines()
                .any(|line| line.starts_with(name) && labels.iter().all(|l| line.contains(l))),
            "no {name} {labels:?} in:\n{text}"
        );
    }
    // Keys and account numbers never become labels.
    assert!(!text.contains("bk_test_ok_1") && !text.contains(&buyer.account));
}
