//! Business remittance end to end: a real server, the sandbox bank as the bank, and the job
//! runner draining the steps. Faults are injected at seed 002's four failure points (the
//! collect and the payout at the bank, the deposit and the withdrawal in the ledger); in every
//! case B is paid exactly once or A's money is returned, and the books balance.

mod common;

use std::time::Duration;

use api::ApiConfig;
use banking::sandbox::{FaultKind, FaultOp, FaultRule};
use common::{assert_books_hold, assert_error, send, TestApp, TestMerchant, MERCHANT_BANK};
use jobs::{JobRunner, Registry, RunnerConfig};
use remittance::{FaultAt, RemittanceConfig, Step};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const AMOUNT: i64 = 250_000;
const OPENING: i64 = 1_000_000;

async fn app() -> TestApp {
    common::spawn_app_with(ApiConfig {
        remittance: RemittanceConfig {
            step_delay: Duration::ZERO,
            ..RemittanceConfig::default()
        },
        ..ApiConfig::default()
    })
    .await
}

/// A sending business with money at its bank and a registered debit mandate, and a receiver.
async fn parties(app: &TestApp) -> (TestMerchant, TestMerchant) {
    let sender = app.merchant_with_account("주식회사 보내는").await;
    let recipient = app.merchant_with_account("주식회사 받는").await;
    let path = format!(
        "/admin/accounts/{MERCHANT_BANK}/{}/deposits",
        sender.account
    );
    common::bank_admin(
        app,
        Method::POST,
        &path,
        Some(json!({"tran_amt": OPENING.to_string(), "print_content": "자본금"})),
    )
    .await;
    let (status, mandate) = app
        .post(
            &format!("/v1/merchants/{}/debit-mandate", sender.id),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{mandate}");
    assert_eq!(mandate["status"], "active");
    (sender, recipient)
}

async fn request(app: &TestApp, sender: &TestMerchant, recipient: &TestMerchant) -> String {
    let (status, body) = send(
        app.bearer(&sender.key, Method::POST, "/v1/remittances")
            .header("Idempotency-Key", ulid::Ulid::new().to_string())
            .json(&json!({
                "sender_merchant_id": sender.id, "recipient_merchant_id": recipient.id,
                "amount": AMOUNT.to_string(), "currency": "KRW",
            })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["state"], "requested");
    body["id"].as_str().expect("id").to_owned()
}

/// Runs job passes until none is due (bounded).
async fn drain(app: &TestApp) {
    let mut registry = Registry::new();
    remittance::register(&mut registry, &app.remittances);
    let runner = JobRunner::new(
        app.db.db.clone(),
        app.ledger.clock(),
        registry,
        RunnerConfig::default(),
    );
    for _ in 0..50 {
        if runner.run_once().await.expect("job pass").claimed == 0 {
            return;
        }
    }
    panic!("the remittance jobs did not drain");
}

async fn bank_balance(app: &TestApp, number: &str) -> i64 {
    let path = format!("/admin/accounts/{MERCHANT_BANK}/{number}");
    let account = common::bank_admin(app, Method::GET, &path, None).await;
    account["balance_amt"]
        .as_str()
        .expect("balance")
        .parse()
        .expect("won")
}

async fn remittance(app: &TestApp, id: &str) -> Value {
    let (status, body) = app.get(&format!("/v1/remittances/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The remittances' ledger account holds nothing once every remittance has ended.
async fn assert_nothing_held(app: &TestApp) {
    assert_eq!(common::posted(app, remittance::HELD_ACCOUNT).await, 0);
    assert_books_hold(app).await;
}

fn states(body: &Value) -> Vec<String> {
    body["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["state"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_remittance_pays_b_once_and_the_same_key_answers_the_same_remittance() {
    let app = app().await;
    let (sender, recipient) = parties(&app).await;
    let body = json!({
        "sender_merchant_id": sender.id, "recipient_merchant_id": recipient.id,
        "amount": AMOUNT.to_string(), "currency": "KRW", "memo": "물품대금",
    });
    let post = |body: &Value| {
        app.bearer(&sender.key, Method::POST, "/v1/remittances")
            .header("Idempotency-Key", "remit-1")
            .json(body)
    };
    let (status, first) = send(post(&body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, again) = send(post(&body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["id"], first["id"]);
    let mut other = body.clone();
    other["amount"] = json!("1");
    let (status, reused) = send(post(&other)).await;
    assert_error(status, &reused, 422, "idempotency_key_reused");

    drain(&app).await;
    let id = first["id"].as_str().unwrap();
    let done = remittance(&app, id).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(
        states(&done),
        [
            "requested",
            "collected",
            "deposited",
            "withdrawn",
            "completed"
        ]
    );
    assert_eq!(bank_balance(&app, &sender.account).await, OPENING - AMOUNT);
    assert_eq!(bank_balance(&app, &recipient.account).await, AMOUNT);
    // The recipient's merchant key reads it too; a stranger's does not.
    let (status, _) = send(app.bearer(
        &recipient.key,
        Method::GET,
        &format!("/v1/remittances/{id}"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    let stranger = app.merchant_with_account("남의 회사").await;
    let (status, body) =
        send(app.bearer(&stranger.key, Method::GET, &format!("/v1/remittances/{id}"))).await;
    assert_error(status, &body, 404, "remittance_not_found");
    assert_nothing_held(&app).await;
}

#[tokio::test]
async fn bad_requests_are_refused_with_their_codes_and_store_nothing() {
    let app = app().await;
    let (sender, recipient) = parties(&app).await;
    let no_mandate = app.merchant_with_account("위임 없는 회사").await;
    let cases = [
        (
            json!({"sender_merchant_id": sender.id, "recipient_merchant_id": recipient.id, "amount": "0", "currency": "KRW"}),
            422,
            "amount_invalid",
        ),
        (
            json!({"sender_merchant_id": sender.id, "recipient_merchant_id": recipient.id, "amount": "10.00", "currency": "USD"}),
            422,
            "currency_unsupported",
        ),
        (
            json!({"sender_merchant_id": sender.id, "recipient_merchant_id": sender.id, "amount": "100", "currency": "KRW"}),
            422,
            "remittance_same_party",
        ),
        (
            json!({"sender_merchant_id": no_mandate.id, "recipient_merchant_id": recipient.id, "amount": "100", "currency": "KRW"}),
            409,
            "debit_mandate_missing",
        ),
    ];
    for (body, status_expected, code) in cases {
        let (status, answer) = send(
            app.admin(Method::POST, "/v1/remittances")
                .header("Idempotency-Key", ulid::Ulid::new().to_string())
                .json(&body),
        )
        .await;
        assert_error(status, &answer, status_expected, code);
    }
    // A merchant key sends only for its own merchant; members never.
    let (status, answer) = send(
        app.bearer(&recipient.key, Method::POST, "/v1/remittances")
            .header("Idempotency-Key", "k")
            .json(&json!({"sender_merchant_id": sender.id, "recipient_merchant_id": recipient.id, "amount": "100", "currency": "KRW"})),
    )
    .await;
    assert_error(status, &answer, 404, "merchant_not_found");
    let (status, list) = app.get("/v1/remittances").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "{list}");
}

#[tokio::test]
async fn a_collect_whose_reply_is_lost_or_times_out_is_resolved_and_takes_the_money_once() {
    let app = app().await;
    let (sender, recipient) = parties(&app).await;
    for kind in [FaultKind::LostReply, FaultKind::Timeout] {
        app.bank
            .faults()
            .replace(vec![
                FaultRule::next(FaultOp::Collect, kind, 1).with_hold_ms(0)
            ])
            .unwrap();
        let id = request(&app, &sender, &recipient).await;
        drain(&app).await;
        assert_eq!(remittance(&app, &id).await["state"], "completed");
    }
    assert_eq!(
        bank_balance(&app, &sender.account).await,
        OPENING - 2 * AMOUNT
    );
    assert_eq!(bank_balance(&app, &recipient.account).await, 2 * AMOUNT);
    assert_nothing_held(&app).await;
}

#[tokio::test]
async fn a_refused_collect_fails_the_remittance_and_moves_nothing() {
    let app = app().await;
    let (sender, recipient) = parties(&app).await;
    app.bank
        .faults()
        .replace(vec![FaultRule::next(FaultOp::Collect, FaultKind::Error, 1)])
        .unwrap();
    let id = request(&app, &sender, &recipient).await;
    drain(&app).await;
    let body = remittance(&app, &id).await;
    assert_eq!(body["state"], "failed", "{body}");
    assert!(body["finished_at"].is_string());
    assert_eq!(bank_balance(&app, &sender.account).await, OPENING);
    assert_eq!(bank_balance(&app, &recipient.account).await, 0);
    assert_nothing_held(&app).await;
}

#[tokio::test]
async fn ledger_faults_at_deposit_and_withdrawal_are_retried_by_the_job_the_batch_and_an_operator()
{
    let app = app().await;
    let (sender, recipient) = parties(&app).await;
    // The deposit is written and then the step fails (as if the process died there): the
    // retry replays the ledger transaction instead of depositing twice.
    app.remittances
        .faults()
        .fail_next(Step::Deposit, FaultAt::AfterEffect, 2);
    // The withdrawal fails on all three attempts: a dead letter, taken up by the retry batch.
    app.remittances
        .faults()
        .fail_next(Step::Withdraw, FaultAt::BeforeEffect, 3);
    let id = request(&app, &sender, &recipient).await;
    drain(&app).await;
    let stuck = remittance(&app, &id).await;
    assert_eq!(stuck["state"], "deposited", "{stuck}");
    let failures = stuck["failures"].as_array().unwrap();
    let withdraw = failures.iter().find(|f| f["step"] == "withdraw").unwrap();
    assert_eq!(withdraw["failures"], 3);
    assert_eq!(withdraw["last_code"], "fault_injected");
    let deposit = failures.iter().find(|f| f["step"] == "deposit").unwrap();
    assert_eq!(deposit["failures"], 2);
    assert!(deposit["resolved_at"].is_string());
    let (status, job) = app
        .get(&format!(
            "/v1/admin/jobs/{}",
            withdraw["job_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job["state"], "dead", "{job}");

    // Fail it again once more after the batch's retry, then let an operator finish it.
    app.remittances
        .faults()
        .fail_next(Step::Withdraw, FaultAt::BeforeEffect, 3);
    assert_eq!(app.remittances.retry_failures().await.unwrap(), 1);
    drain(&app).await;
    assert_eq!(remittance(&app, &id).await["state"], "deposited");
    let (status, retried) = app
        .post(&format!("/v1/remittances/{id}/retry"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    drain(&app).await;
    let done = remittance(&app, &id).await;
    assert_eq!(done["state"], "completed", "{done}");
    let withdraw = done["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["step"] == "withdraw")
        .unwrap()
        .clone();
    assert_eq!(withdraw["failures"], 6);
    assert_eq!(withdraw["batch_retries"], 1);
    assert!(withdraw["resolved_at"].is_string());
    // A finished remittance has nothing to retry.
    let (status, body) = app
        .post(&format!("/v1/remittances/{id}/retry"), &json!({}))
        .await;
    assert_error(status, &body, 409, "remittance_not_retryable");
    assert_eq!(bank_balance(&app, &sender.account).await, OPENING - AMOUNT);
    assert_eq!(bank_balance(&app, &recipient.account).await, AMOUNT);
    assert_nothing_held(&app).await;
}

#[tokio::test]
async fn a_payout_whose_reply_is_lost_pays_b_once_and_a_refused_one_returns_a_s_money() {
    let app = app().await;
    let (sender, recipient) = parties(&app).await;
    app.bank
        .faults()
        .replace(vec![FaultRule::next(
            FaultOp::Payout,
            FaultKind::LostReply,
            1,
        )
        .with_hold_ms(0)])
        .unwrap();
    // The payout is made, and then the step fails before the remittance moves on: the retry
    // only asks the bank about the payout it sent.
    app.remittances
        .faults()
        .fail_next(Step::Payout, FaultAt::AfterEffect, 1);
    let paid = request(&app, &sender, &recipient).await;
    drain(&app).await;
    assert_eq!(remittance(&app, &paid).await["state"], "completed");
    assert_eq!(bank_balance(&app, &recipient.account).await, AMOUNT);

    app.bank
        .faults()
        .replace(vec![FaultRule::next(FaultOp::Payout, FaultKind::Error, 1)])
        .unwrap();
    let returned = request(&app, &sender, &recipient).await;
    drain(&app).await;
    let body = remittance(&app, &returned).await;
    assert_eq!(body["state"], "returned", "{body}");
    assert_eq!(
        states(&body),
        [
            "requested",
            "collected",
            "deposited",
            "withdrawn",
            "returning",
            "returned"
        ]
    );
    assert_eq!(bank_balance(&app, &sender.account).await, OPENING - AMOUNT);
    assert_eq!(bank_balance(&app, &recipient.account).await, AMOUNT);
    assert_nothing_held(&app).await;
}

#[tokio::test]
async fn the_monitor_alerts_once_on_a_late_remittance_at_the_alert_url() {
    let (alerts_tx, mut alerts) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let receiver = axum::Router::new().route(
        "/alerts",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let alerts_tx = alerts_tx.clone();
            async move {
                alerts_tx.send(body).unwrap();
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/alerts", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    let app = common::spawn_app_with(ApiConfig {
        remittance: RemittanceConfig {
            overdue_after: Duration::from_secs(1),
            alert_url: Some(url.parse().unwrap()),
            ..RemittanceConfig::default()
        },
        ..ApiConfig::default()
    })
    .await;
    let (sender, recipient) = parties(&app).await;
    let id = request(&app, &sender, &recipient).await;
    assert_eq!(app.remittances.monitor().await.unwrap().alerted, 0);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let pass = app.remittances.monitor().await.unwrap();
    assert_eq!((pass.overdue, pass.alerted), (1, 1));
    let alert = alerts.recv().await.unwrap();
    assert_eq!(alert["remittance_id"], id.as_str());
    assert_eq!(alert["state"], "requested");
    assert_eq!(app.remittances.monitor().await.unwrap().alerted, 0);
    assert!(remittance(&app, &id).await["alerted_at"].is_string());
}
