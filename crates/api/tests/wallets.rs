//! Wallets over HTTP, black-box, against the in-process sandbox bank, with members' accounts
//! linked through the API as members link them: charges, transfers
//! between members, payouts to any account, withdrawals, auto top-up, limits, the bank's
//! faults resolved to exactly one effect, concurrency, who may see what, and bad input.

mod common;

use std::sync::Arc;
use std::time::Duration;

use api::{ApiConfig, WalletConfig};
use banking::sandbox::{FaultKind, FaultOp, FaultRule};
use common::{
    assert_error, bank_admin, linked_member, open_account, post_money, send, spawn_app,
    spawn_app_with, TestApp, TestMember, ADMIN_KEY, BANK,
};
use ledger::AccountCode;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::task::JoinSet;

/// The sandbox master account's opening balance.
const MASTER_OPENING: i64 = banking::sandbox::MASTER_OPENING_BALANCE_WON_DEFAULT;
/// How long a `timeout` or `lost_reply` fault withholds the reply: short, so tests are quick.
const HOLD_MS: u64 = 200;

async fn bank_balance(app: &TestApp, number: &str) -> i64 {
    let body = bank_admin(
        app,
        Method::GET,
        &format!("/admin/accounts/{BANK}/{number}"),
        None,
    )
    .await;
    body["balance_amt"].as_str().unwrap().parse().unwrap()
}

async fn master_balance(app: &TestApp) -> i64 {
    let body = bank_admin(app, Method::GET, "/admin/master", None).await;
    body["balance_amt"].as_str().unwrap().parse().unwrap()
}

/// Statement lines of an account at the bank.
async fn bank_lines(app: &TestApp, number: &str) -> Vec<Value> {
    let body = bank_admin(
        app,
        Method::GET,
        &format!("/admin/accounts/{BANK}/{number}/transactions"),
        None,
    )
    .await;
    body["res_list"].as_array().unwrap().clone()
}

async fn charge(app: &TestApp, member: &TestMember, amount: i64) -> (StatusCode, Value) {
    post_money(
        app,
        &member.token,
        "/v1/wallets/KRW/charges",
        &json!({"amount": amount.to_string()}),
    )
    .await
}

async fn transfer(app: &TestApp, from: &TestMember, to: Value, amount: i64) -> (StatusCode, Value) {
    post_money(
        app,
        &from.token,
        "/v1/transfers",
        &json!({"to": to, "amount": amount.to_string(), "currency": "KRW", "auto_top_up": false}),
    )
    .await
}

async fn payout(
    app: &TestApp,
    from: &TestMember,
    account: &str,
    holder: &str,
    amount: i64,
) -> (StatusCode, Value) {
    post_money(
        app,
        &from.token,
        "/v1/wallets/KRW/payouts",
        &json!({
            "amount": amount.to_string(), "bank_code": BANK, "account_number": account,
            "holder_name": holder, "auto_top_up": false,
        }),
    )
    .await
}

async fn wallet(app: &TestApp, member: &TestMember) -> Value {
    let (status, body) = send(app.bearer(&member.token, Method::GET, "/v1/wallets/KRW")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// (posted, held, incoming, available) of a member's wallet, in won.
async fn balances(app: &TestApp, member: &TestMember) -> (i64, i64, i64, i64) {
    let w = wallet(app, member).await;
    let won = |field: &str| w[field].as_str().unwrap().parse::<i64>().unwrap();
    (
        won("posted"),
        won("held"),
        won("incoming"),
        won("available"),
    )
}

async fn history(app: &TestApp, member: &TestMember) -> Vec<Value> {
    let (status, body) =
        send(app.bearer(&member.token, Method::GET, "/v1/wallets/KRW/history")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

/// The posted balance of a ledger account by code, zero when it was never opened.
async fn ledger_posted(app: &TestApp, code: &str) -> i64 {
    match app
        .ledger
        .account_by_code(&AccountCode::parse(code).unwrap())
        .await
    {
        Ok(account) => account.balance().unwrap().posted.minor(),
        Err(_) => 0,
    }
}

/// The master account's mirror in the ledger equals what the bank's master account gained,
/// and the fees booked are 300 won for each executed transfer, the wallet's and the 1-won
/// verification deposits of linking (one won each in `expense:account_verification`).
async fn assert_master_agrees(app: &TestApp, executed_transfers: i64) {
    let bank_gain = master_balance(app).await - MASTER_OPENING;
    assert_eq!(ledger_posted(app, "asset:bank:master").await, bank_gain);
    let deposits = ledger_posted(app, "expense:account_verification").await;
    let fees = 300 * (executed_transfers + deposits);
    assert_eq!(ledger_posted(app, "expense:bank_fees").await, fees);
    assert_eq!(
        ledger_posted(app, "liability:bank:fees_payable").await,
        fees
    );
    let report = ledger::check(app.ledger.db()).await.expect("check");
    assert!(report.is_ok(), "{report}");
}

fn faults(app: &TestApp, rules: Vec<FaultRule>) {
    app.bank.faults().replace(rules).expect("fault rules");
}

fn fault(op: FaultOp, kind: FaultKind, count: u32) -> FaultRule {
    FaultRule::next(op, kind, count).with_hold_ms(HOLD_MS)
}

#[tokio::test]
async fn a_charge_lands_in_the_wallet_with_its_number_and_balance_after() {
    let app = spawn_app().await;
    let kim = linked_member(&app, 1, 1_000_000).await;
    let (status, body) = charge(&app, &kim.member, 50_000).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let tx = &body["transaction"];
    let mtx = tx["id"].as_str().unwrap();
    assert!(mtx.starts_with("mtx_") && mtx.len() == 30, "{mtx}");
    assert_eq!(tx["kind"], "charge");
    assert_eq!(tx["state"], "succeeded");
    assert_eq!(tx["amount"], "50000");
    let counterparty = tx["counterparty"].as_str().unwrap();
    assert!(counterparty.starts_with("004 ") && counterparty.ends_with("0001"));
    assert!(
        !counterparty.contains(&kim.account),
        "masked: {counterparty}"
    );
    assert_eq!(body["balance"]["available"], "50000");

    let (status, second) = charge(&app, &kim.member, 20_000).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(balances(&app, &kim.member).await, (70_000, 0, 0, 70_000));
    let entries = history(&app, &kim.member).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["id"], second["transaction"]["id"]);
    assert_eq!(entries[0]["kind"], "charge");
    assert_eq!(entries[0]["amount"], "20000");
    assert_eq!(entries[0]["balance_after"], "70000");
    assert_eq!(entries[1]["id"], mtx);
    assert_eq!(entries[1]["balance_after"], "50000");
    assert_eq!(entries[1]["counterparty"], counterparty);

    let (status, page) = send(app.bearer(
        &kim.member.token,
        Method::GET,
        "/v1/wallets/KRW/history?limit=1",
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, older) = send(app.bearer(
        &kim.member.token,
        Method::GET,
        &format!("/v1/wallets/KRW/history?limit=1&cursor={cursor}"),
    ))
    .await;
    assert_eq!(older["data"][0]["id"], mtx);
    assert!(older["next_cursor"].is_null());

    let (status, one) = send(app.bearer(
        &kim.member.token,
        Method::GET,
        &format!("/v1/wallets/KRW/transactions/{mtx}"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["kind"], "charge");

    assert_eq!(bank_balance(&app, &kim.account).await, 930_000);
    assert_master_agrees(&app, 2).await;
}

#[tokio::test]
async fn an_idempotent_charge_is_made_once() {
    let app = spawn_app().await;
    let kim = linked_member(&app, 1, 100_000).await;
    let request = || {
        app.bearer(&kim.member.token, Method::POST, "/v1/wallets/KRW/charges")
            .header("Idempotency-Key", "charge-1")
            .json(&json!({"amount": "10000"}))
    };
    let (status, first) = send(request()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = send(request()).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["transaction"]["id"], first["transaction"]["id"]);
    assert_eq!(balances(&app, &kim.member).await.0, 10_000);
    assert_eq!(bank_balance(&app, &kim.account).await, 90_000);
}

#[tokio::test]
async fn members_send_money_to_each_other_by_id_email_or_phone() {
    let app = spawn_app().await;
    let kim = linked_member(&app, 1, 1_000_000).await;
    let lee = app.member("lee@example.com", "010-3000-0001").await;
    charge(&app, &kim.member, 30_000).await;

    let (status, by_id) = transfer(&app, &kim.member, json!({"member_id": lee.id}), 5_000).await;
    assert_eq!(status, StatusCode::CREATED, "{by_id}");
    assert_eq!(by_id["transaction"]["kind"], "transfer_out");
    assert_eq!(by_id["transaction"]["counterparty"], "김**");
    assert_eq!(by_id["balance"]["available"], "25000");
    let (status, by_email) = transfer(
        &app,
        &kim.member,
        json!({"email": "LEE@example.com"}),
        3_000,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{by_email}");
    let (status, by_phone) =
        transfer(&app, &kim.member, json!({"phone": "+821030000001"}), 2_000).await;
    assert_eq!(status, StatusCode::CREATED, "{by_phone}");

    assert_eq!(balances(&app, &kim.member).await, (20_000, 0, 0, 20_000));
    assert_eq!(balances(&app, &lee).await, (10_000, 0, 0, 10_000));
    let received = history(&app, &lee).await;
    assert_eq!(received.len(), 3);
    assert_eq!(received[0]["kind"], "transfer_in");
    assert_eq!(received[0]["amount"], "2000");
    assert_eq!(received[0]["balance_after"], "10000");
    assert_eq!(received[2]["id"], by_id["transaction"]["id"]);
    assert_eq!(received[2]["balance_after"], "5000");
    let sent = history(&app, &kim.member).await;
    assert_eq!(sent[0]["kind"], "transfer_out");
    assert_eq!(sent[0]["amount"], "-2000");
    assert_eq!(sent[0]["balance_after"], "20000");

    let mtx = by_id["transaction"]["id"].as_str().unwrap();
    let (status, seen) = send(app.bearer(
        &lee.token,
        Method::GET,
        &format!("/v1/wallets/KRW/transactions/{mtx}"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["kind"], "transfer_in");
    assert_master_agrees(&app, 1).await;
}

#[tokio::test]
async fn a_payout_checks_the_holder_then_moves_the_money() {
    let app = spawn_app().await;
    let kim = linked_member(&app, 1, 1_000_000).await;
    open_account(&app, "220000000001", "홍길동", 0).await;
    charge(&app, &kim.member, 50_000).await;

    let (status, body) = payout(&app, &kim.member, "220000000001", "홍길순", 10_000).await;
    assert_error(status, &body, 422, "holder_name_mismatch");
    assert!(body["error"]["message"].as_str().unwrap().contains("홍**"));
    assert!(!body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("홍길동"));
    let (status, body) = payout(&app, &kim.member, "229999999999", "홍길동", 10_000).await;
    assert_error(status, &body, 422, "bank_account_not_found");
    assert_eq!(balances(&app, &kim.member).await, (50_000, 0, 0, 50_000));

    let (status, body) = payout(&app, &kim.member, "220-000-000001", "홍길동", 10_000).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["transaction"]["kind"], "payout");
    assert_eq!(body["transaction"]["state"], "succeeded");
    assert_eq!(body["balance"]["available"], "40000");
    assert_eq!(bank_balance(&app, "220000000001").await, 10_000);
    let entries = history(&app, &kim.member).await;
    assert_eq!(entries[0]["kind"], "payout");
    assert_eq!(entries[0]["amount"], "-10000");
    assert_eq!(entries[0]["balance_after"], "40000");
    assert_master_agrees(&app, 2).await;
}

#[tokio::test]
async fn a_member_withdraws_to_their_own_account() {
    let app = spawn_app().await;
    let kim = linked_member(&app, 1, 100_000).await;
    charge(&app, &kim.member, 60_000).await;
    let (status, body) = post_money(
        &app,
        &kim.member.token,
        "/v1/wallets/KRW/withdrawals",
        &json!({"amount": "25000"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["transaction"]["kind"], "withdrawal");
    assert_eq!(balances(&app, &kim.member).await, (35_000, 0, 0, 35_000));
    assert_eq!(bank_balance(&app, &kim.account).await, 65_000);
    let (status, body) = post_money(
        &app,
        &kim.member.token,
        "/v1/wallets/KRW/withdrawals",
        &json!({"amount": "35001"}),
    )
    .await;
    assert_error(status, &body, 422, "insufficient_funds");
    assert_eq!(balances(&app, &kim.member).await, (35_000, 0, 0, 35_000));
    assert_master_agrees(&app, 2).await;
}

#[tokio::test]
async fn auto_top_up_charges_the_shortfall_rounded_up_to_the_unit() {
    let app = spawn_app().await;
    let kim = linked_member(&app, 1, 1_000_000).await;
    let lee = app.member("lee@example.com", "010-3000-0001").await;
    charge(&app, &kim.member, 6_500).await;

    let (status, body) = post_money(
        &app,
        &kim.member.token,
        "/v1/transfers",
        &json!({"to": {"member_id": lee.id}, "amount": "10000", "currency": "KRW"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let top_up = &body["top_up"];
    assert_eq!(top_up["kind"], "charge");
    assert_eq!(top_up["amount"], "10000", "3,500 short charges one unit");
    assert_eq!(top_up["top_up_for"], body["transaction"]["id"]);
    assert_eq!(body["balance"]["available"], "6500");
    assert_eq!(bank_balance(&app, &kim.account).await, 1_000_000 - 16_500);

    let (status, body) = transfer(&app, &kim.member, json!({"member_id": lee.id}), 7_000).await;
    assert_error(status, &body, 422, "insufficient_funds");
    assert_eq!(
        balances(&app, &kim.member).await.0,
        6_500,
        "auto_top_up: false"
    );

    let park = app.member("park@example.com", "010-3000-0002").await;
    transfer(&app, &kim.member, json!({"member_id": park.id}), 1_000).await;
    let (status, body) = post_money(
        &app,
        &park.token,
        "/v1/transfers",
        &json!({"to": {"member_id": lee.id}, "amount": "5000", "currency": "KRW"}),
    )
    .await;
    assert_error(status, &body, 422, "insufficient_funds");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("bank_account_not_found"));
    assert_eq!(balances(&app, &park).await.0, 1_000, "nothing moved");
    assert_eq!(balances(&app, &lee).await.0, 10_000);
    assert_master_agrees(&app, 2).await;
}

#[tokio::test]
async fn limits_refuse_with_the_limit_named() {
    let config = ApiConfig {
        wallet: WalletConfig {
            limits: wallet::Limits {
                max_balance: 100_000,
                per_transaction: 60_000,
                daily_charge: 1_000_000,
                daily_outgoing: 50_000,
            },
            auto_top_up_unit: 10_000,
        },
        ..ApiConfig::default()
    };
    let app = spawn_app_with(config).await;
    let kim = linked_member(&app, 1, 1_000_000).await;
    let lee = app.member("lee@example.com", "010-3000-0001").await;
    let (status, body) = charge(&app, &kim.member, 60_001).await;
    assert_error(status, &body, 422, "limit_exceeded");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("per_transaction"));
    charge(&app, &kim.member, 60_000).await;
    let (status, body) = charge(&app, &kim.member, 40_001).await;
    assert_error(status, &body, 422, "limit_exceeded");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_balance"));

    let (status, body) = transfer(&app, &kim.member, json!({"member_id": lee.id}), 30_000).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = transfer(&app, &kim.member, json!({"member_id": lee.id}), 20_001).await;
    assert_error(status, &body, 422, "limit_exceeded");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("daily_outgoing"));
    let (status, body) = transfer(&app, &kim.member, json!({"member_id": lee.id}), 20_000).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(balances(&app, &kim.member).await.0, 10_000);
    assert_eq!(balances(&app, &lee).await.0, 50_000);

    // A transfer the recipient's maximum balance refuses gives its daily usage back.
    let park = linked_member(&app, 2, 1_000_000).await;
    let choi = linked_member(&app, 3, 1_000_000).await;
    charge(&app, &park.member, 60_000).await;
    charge(&app, &choi.member, 60_000).await;
    let (status, body) = transfer(
        &app,
        &park.member,
        json!({"member_id": choi.member.id}),
        50_000,
    )
    .await;
    assert_error(status, &body, 422, "limit_exceeded");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_balance"));
    let (status, body) = transfer(
        &app,
        &park.member,
        json!({"member_id": kim.member.id}),
        50_000,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "usage was given back: {body}");
    assert_eq!(balances(&app, &choi.member).await.0, 60_000);
    assert_eq!(balances(&app, &park.member).await.0, 10_000);
}

#[tokio::test]
async fn concurrent_charges_never_pass_the_max_balance_or_the_daily_limit() {
    let config = ApiConfig {
        wallet: WalletConfig {
            limits: wallet::Limits {
                max_balance: 100_000,
                per_transaction: 100_000,
                daily_charge: 150_000,
                daily_outgoing: 100_000,
            },
            auto_top_up_unit: 10_000,
        },
        ..ApiConfig::default()
    };
    let app = Arc::new(spawn_app_with(config).await);
    let kim = Arc::new(linked_member(&app, 1, 1_000_000).await);
    let run = |count: usize| {
        let mut tasks = JoinSet::new();
        for _ in 0..count {
            let (app, kim) = (app.clone(), kim.clone());
            tasks.spawn(async move { charge(&app, &kim.member, 30_000).await });
        }
        tasks
    };
    let outcomes = run(8).join_all().await;
    let succeeded = outcomes
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    assert_eq!(succeeded, 3, "{outcomes:?}");
    for (status, body) in outcomes.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        // A charge is refused by whichever limit it meets first: the daily counter is taken
        // before the balance is reserved, and given back when the reservation is refused.
        assert_error(*status, body, 422, "limit_exceeded");
    }
    assert_eq!(balances(&app, &kim.member).await, (90_000, 0, 0, 90_000));

    let lee = app.member("lee@example.com", "010-3000-0001").await;
    transfer(&app, &kim.member, json!({"member_id": lee.id}), 90_000).await;
    let outcomes = run(8).join_all().await;
    let succeeded = outcomes
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    assert_eq!(
        succeeded, 2,
        "150,000 a day: 90,000 + 2 × 30,000 {outcomes:?}"
    );
    for (status, body) in outcomes.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_error(*status, body, 422, "limit_exceeded");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("daily_charge"));
    }
    assert_eq!(balances(&app, &kim.member).await.0, 60_000);
    assert_eq!(bank_balance(&app, &kim.account).await, 1_000_000 - 150_000);
    assert_master_agrees(&app, 5).await;
}

#[tokio::test]
async fn collect_faults_end_in_exactly_one_charge_or_none() {
    let app = spawn_app().await;
    let cases = [
        (FaultKind::Timeout, true),
        (FaultKind::LostReply, true),
        (FaultKind::Error, false),
    ];
    let mut executed = 0;
    for (n, (kind, lands)) in (1..).zip(cases) {
        let kim = linked_member(&app, n, 100_000).await;
        faults(&app, vec![fault(FaultOp::Collect, kind, 1)]);
        let (status, body) = charge(&app, &kim.member, 10_000).await;
        let expected = if lands { 10_000 } else { 0 };
        if lands {
            assert_eq!(status, StatusCode::CREATED, "{kind:?}: {body}");
            assert_eq!(body["transaction"]["state"], "succeeded");
            executed += 1;
        } else {
            assert_error(status, &body, 422, "bank_refused");
        }
        assert_eq!(
            balances(&app, &kim.member).await,
            (expected, 0, 0, expected),
            "{kind:?}"
        );
        assert_eq!(bank_balance(&app, &kim.account).await, 100_000 - expected);
        let withdrawals = bank_lines(&app, &kim.account)
            .await
            .into_iter()
            .filter(|line| line["tran_amt"] == "10000")
            .count();
        assert_eq!(withdrawals, usize::from(lands), "{kind:?}: once at most");
        assert_master_agrees(&app, executed).await;
    }
}

#[tokio::test]
async fn payout_faults_end_in_exactly_one_payout_or_the_money_back() {
    let app = spawn_app().await;
    let kim = linked_member(&app, 1, 1_000_000).await;
    charge(&app, &kim.member, 100_000).await;
    open_account(&app, "220000000001", "홍길동", 0).await;
    let cases = [
        (FaultKind::Timeout, true),
        (FaultKind::LostReply, true),
        (FaultKind::Error, false),
    ];
    let (mut wallet_left, mut paid, mut executed) = (100_000, 0, 1);
    for (kind, lands) in cases {
        faults(&app, vec![fault(FaultOp::Payout, kind, 1)]);
        let (status, body) = payout(&app, &kim.member, "220000000001", "홍길동", 4_000).await;
        if lands {
            assert_eq!(status, StatusCode::CREATED, "{kind:?}: {body}");
            wallet_left -= 4_000;
            paid += 4_000;
            executed += 1;
        } else {
            assert_error(status, &body, 422, "bank_refused");
        }
        assert_eq!(
            balances(&app, &kim.member).await,
            (wallet_left, 0, 0, wallet_left),
            "{kind:?}: posted, or released"
        );
        assert_eq!(bank_balance(&app, "220000000001").await, paid, "{kind:?}");
        assert_eq!(
            bank_lines(&app, "220000000001").await.len() as i64,
            paid / 4_000
        );
        assert_master_agrees(&app, executed).await;
    }
}

#[tokio::test]
async fn outcomes_still_unknown_when_the_request_answers_are_finished_by_the_resolver() {
    let app = spawn_app().await;
    let kim = linked_member(&app, 1, 1_000_000).await;
    open_account(&app, "220000000001", "홍길동", 0).await;
    // The charge executes, its reply is lost, and every inquiry the request makes fails.
    faults(
        &app,
        vec![
            fault(FaultOp::Collect, FaultKind::LostReply, 1),
            fault(FaultOp::Result, FaultKind::Error, 4),
        ],
    );
    let (status, body) = charge(&app, &kim.member, 50_000).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["transaction"]["state"], "pending");
    assert_eq!(balances(&app, &kim.member).await, (0, 0, 50_000, 0));
    let mtx = body["transaction"]["id"].as_str().unwrap().to_owned();

    // The automatic top-up of a transfer is never received, and its inquiries fail too.
    faults(
        &app,
        vec![
            fault(FaultOp::Collect, FaultKind::Timeout, 1),
            fault(FaultOp::Result, FaultKind::Error, 4),
        ],
    );
    let lee = app.member("lee@example.com", "010-3000-0001").await;
    let (status, body) = post_money(
        &app,
        &kim.member.token,
        "/v1/transfers",
        &json!({"to": {"member_id": lee.id}, "amount": "1000", "currency": "KRW"}),
    )
    .await;
    assert_error(status, &body, 422, "insufficient_funds");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pending"),
        "{body}"
    );

    faults(&app, Vec::new());
    let pass = app
        .wallets
        .resolve_pending(Duration::ZERO, 100)
        .await
        .expect("resolver");
    assert_eq!(pass.finished, 2, "the charge and the auto top-up: {pass:?}");
    assert_eq!(balances(&app, &kim.member).await, (60_000, 0, 0, 60_000));
    let (_, tx) = send(app.bearer(
        &kim.member.token,
        Method::GET,
        &format!("/v1/wallets/KRW/transactions/{mtx}"),
    ))
    .await;
    assert_eq!(tx["state"], "succeeded");

    // A payout that is never received, whose inquiries fail: the money stays held.
    faults(
        &app,
        vec![
            fault(FaultOp::Payout, FaultKind::Timeout, 1),
            fault(FaultOp::Result, FaultKind::Error, 4),
        ],
    );
    let (status, body) = payout(&app, &kim.member, "220000000001", "홍길동", 7_000).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        balances(&app, &kim.member).await,
        (60_000, 7_000, 0, 53_000)
    );
    assert_eq!(bank_balance(&app, "220000000001").await, 0);
    faults(&app, Vec::new());
    let pass = app
        .wallets
        .resolve_pending(Duration::ZERO, 100)
        .await
        .expect("resolver");
    assert_eq!(pass.finished, 1, "{pass:?}");
    assert_eq!(balances(&app, &kim.member).await, (53_000, 0, 0, 53_000));
    assert_eq!(bank_balance(&app, "220000000001").await, 7_000);
    assert_eq!(bank_balance(&app, &kim.account).await, 1_000_000 - 60_000);
    assert_eq!(
        app.wallets
            .resolve_pending(Duration::ZERO, 100)
            .await
            .unwrap()
            .examined,
        0
    );
    assert_master_agrees(&app, 3).await;
}

#[tokio::test]
async fn concurrent_transfers_and_payouts_never_overdraw_and_conserve_money() {
    let app = Arc::new(spawn_app().await);
    let kim = linked_member(&app, 1, 1_000_000).await;
    charge(&app, &kim.member, 100_000).await;
    open_account(&app, "220000000001", "홍길동", 0).await;
    let mut recipients = Vec::new();
    for n in 0..4 {
        recipients.push(
            app.member(&format!("r{n}@example.com"), &format!("010-3000-{n:04}"))
                .await,
        );
    }
    let kim = Arc::new(kim);
    let mut tasks = JoinSet::new();
    for i in 0..32 {
        let (app, kim) = (app.clone(), kim.clone());
        let to = recipients[i % 4].id.clone();
        tasks.spawn(async move {
            if i % 4 == 0 {
                payout(&app, &kim.member, "220000000001", "홍길동", 5_000).await
            } else {
                transfer(&app, &kim.member, json!({"member_id": to}), 5_000).await
            }
        });
    }
    let outcomes = tasks.join_all().await;
    let succeeded = outcomes
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    assert_eq!(succeeded, 20, "100,000 covers twenty: {outcomes:?}");
    for (status, body) in outcomes.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_error(*status, body, 422, "insufficient_funds");
    }
    assert_eq!(balances(&app, &kim.member).await, (0, 0, 0, 0));
    let mut received = 0;
    for recipient in &recipients {
        received += balances(&app, recipient).await.0;
    }
    let paid_out = bank_balance(&app, "220000000001").await;
    assert_eq!(received + paid_out, 100_000, "conserved");
    // The master account gained the charge, less what was paid out and the won that verified
    // the linked account.
    assert_eq!(
        ledger_posted(&app, "asset:bank:master").await,
        100_000 - paid_out - 1
    );
    let report = ledger::check(app.ledger.db()).await.expect("check");
    assert!(report.is_ok(), "{report}");
}

#[tokio::test]
async fn money_is_never_credited_to_a_closed_member() {
    let app = spawn_app().await;
    let kim = linked_member(&app, 1, 100_000).await;
    let lee = app.member("lee@example.com", "010-3000-0001").await;
    charge(&app, &kim.member, 10_000).await;
    let (status, body) = send(app.bearer(&lee.token, Method::POST, "/v1/members/me/close")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = transfer(&app, &kim.member, json!({"member_id": lee.id}), 1_000).await;
    assert_error(status, &body, 409, "member_not_active");
    let (status, body) = transfer(
        &app,
        &kim.member,
        json!({"email": "lee@example.com"}),
        1_000,
    )
    .await;
    assert_error(status, &body, 404, "recipient_not_found");
    assert_eq!(balances(&app, &kim.member).await.0, 10_000);
}

#[tokio::test]
async fn members_see_only_their_own_wallets() {
    let app = spawn_app().await;
    let kim = linked_member(&app, 1, 100_000).await;
    let lee = app.member("lee@example.com", "010-3000-0001").await;
    let (_, charged) = charge(&app, &kim.member, 10_000).await;
    let mtx = charged["transaction"]["id"].as_str().unwrap();
    let (_, platform) = app.api_key("platform").await;
    let (_, merchant) = app.merchant("마이커피").await;
    let revoked = app.member("gone@example.com", "010-3000-0009").await;
    let (status, _) =
        send(app.bearer(&revoked.token, Method::DELETE, "/v1/sessions/current")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let kims_wallet = format!("/v1/members/{}/wallets/KRW", kim.member.id);
    let kims_history = format!("{kims_wallet}/history");
    for path in [&kims_wallet, &kims_history] {
        for (token, expected) in [
            (kim.member.token.as_str(), 200),
            (ADMIN_KEY, 200),
            (platform.as_str(), 200),
            (merchant.as_str(), 403),
            (lee.token.as_str(), 404),
            (revoked.token.as_str(), 401),
        ] {
            let (status, body) = send(app.bearer(token, Method::GET, path)).await;
            assert_eq!(status.as_u16(), expected, "{path}: {body}");
            if expected == 404 {
                assert_error(status, &body, 404, "wallet_not_found");
            }
        }
        let (status, body) = send(app.anonymous(Method::GET, path)).await;
        assert_error(status, &body, 401, "unauthenticated");
    }
    let unknown = format!("/v1/members/usr_{}/wallets/KRW", ulid::Ulid::new());
    let (status, body) = send(app.bearer(ADMIN_KEY, Method::GET, &unknown)).await;
    assert_error(status, &body, 404, "wallet_not_found");

    let kims_tx = format!("/v1/wallets/KRW/transactions/{mtx}");
    let (status, body) = send(app.bearer(&lee.token, Method::GET, &kims_tx)).await;
    assert_error(status, &body, 404, "money_transaction_not_found");
    let (status, body) = send(app.bearer(
        &lee.token,
        Method::GET,
        "/v1/wallets/KRW/transactions/mtx_nope",
    ))
    .await;
    assert_error(status, &body, 404, "money_transaction_not_found");

    for (method, path) in [
        ("GET", "/v1/wallets"),
        ("GET", "/v1/wallets/KRW"),
        ("GET", "/v1/wallets/KRW/history"),
        ("POST", "/v1/wallets/KRW/charges"),
        ("POST", "/v1/wallets/KRW/withdrawals"),
        ("POST", "/v1/wallets/KRW/payouts"),
        ("POST", "/v1/transfers"),
    ] {
        let method = common::method(method);
        let request = |token: Option<&str>| {
            let builder = match token {
                Some(token) => app.bearer(token, method.clone(), path),
                None => app.anonymous(method.clone(), path),
            };
            builder
                .header("Idempotency-Key", ulid::Ulid::new().to_string())
                .json(&json!({}))
        };
        let (status, body) = send(request(None)).await;
        assert_error(status, &body, 401, "unauthenticated");
        let (status, body) = send(request(Some(&revoked.token))).await;
        assert_error(status, &body, 401, "unauthenticated");
        let (status, body) = send(request(Some(ADMIN_KEY))).await;
        assert_error(status, &body, 403, "forbidden");
    }
    assert_eq!(balances(&app, &kim.member).await.0, 10_000);
    assert_eq!(balances(&app, &lee).await.0, 0);
}

#[tokio::test]
async fn bad_input_is_refused_with_a_clear_code_and_nothing_moves() {
    let app = spawn_app().await;
    let kim = linked_member(&app, 1, 100_000).await;
    let lee = app.member("lee@example.com", "010-3000-0001").await;
    charge(&app, &kim.member, 10_000).await;
    open_account(&app, "220000000001", "홍길동", 0).await;
    let payout_body = |overrides: Value| {
        let mut body = json!({
            "amount": "1000", "bank_code": BANK, "account_number": "220000000001",
            "holder_name": "홍길동",
        });
        for (key, value) in overrides.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "/v1/wallets/KRW/charges",
            json!({"amount": "12.5"}),
            422,
            "amount_invalid",
        ),
        (
            "/v1/wallets/KRW/charges",
            json!({"amount": "-1"}),
            422,
            "amount_invalid",
        ),
        (
            "/v1/wallets/KRW/charges",
            json!({"amount": "0"}),
            422,
            "amount_invalid",
        ),
        (
            "/v1/wallets/KRW/charges",
            json!({"amount": 1000}),
            422,
            "amount_invalid",
        ),
        (
            "/v1/wallets/KRW/charges",
            json!({"amount": "1e3"}),
            422,
            "amount_invalid",
        ),
        (
            "/v1/wallets/KRW/charges",
            json!({"amount": "1000", "extra": 1}),
            400,
            "invalid_request",
        ),
        (
            "/v1/wallets/KRW/charges",
            json!({"amount": "1000", "bank_account_id": 7}),
            400,
            "invalid_request",
        ),
        (
            "/v1/wallets/KRW/charges",
            json!({"amount": "1000", "bank_account_id": "ba_nope"}),
            404,
            "bank_account_not_found",
        ),
        (
            "/v1/wallets/USD/charges",
            json!({"amount": "10"}),
            422,
            "currency_unsupported",
        ),
        (
            "/v1/wallets/XYZ/charges",
            json!({"amount": "10"}),
            422,
            "currency_unknown",
        ),
        (
            "/v1/wallets/KRW/withdrawals",
            json!({"amount": "99999999999999999999"}),
            422,
            "amount_out_of_range",
        ),
        (
            "/v1/wallets/KRW/payouts",
            payout_body(json!({"bank_code": "04"})),
            422,
            "bank_code_invalid",
        ),
        (
            "/v1/wallets/KRW/payouts",
            payout_body(json!({"account_number": "22-x"})),
            422,
            "account_number_invalid",
        ),
        (
            "/v1/wallets/KRW/payouts",
            payout_body(json!({"holder_name": " "})),
            422,
            "holder_name_invalid",
        ),
        (
            "/v1/wallets/KRW/payouts",
            payout_body(json!({"auto_top_up": "yes"})),
            400,
            "invalid_request",
        ),
        (
            "/v1/wallets/KRW/payouts",
            payout_body(json!({"amount": "1.0"})),
            422,
            "amount_invalid",
        ),
        (
            "/v1/transfers",
            json!({"to": {"member_id": lee.id, "email": "lee@example.com"}, "amount": "1000", "currency": "KRW"}),
            400,
            "invalid_request",
        ),
        (
            "/v1/transfers",
            json!({"to": {}, "amount": "1000", "currency": "KRW"}),
            400,
            "invalid_request",
        ),
        (
            "/v1/transfers",
            json!({"to": {"member_id": lee.id}, "amount": "1000", "currency": "USD"}),
            422,
            "currency_unsupported",
        ),
        (
            "/v1/transfers",
            json!({"to": {"member_id": lee.id}, "amount": "1000"}),
            400,
            "invalid_request",
        ),
        (
            "/v1/transfers",
            json!({"to": {"member_id": kim.member.id}, "amount": "1000", "currency": "KRW"}),
            422,
            "transfer_to_self",
        ),
        (
            "/v1/transfers",
            json!({"to": {"member_id": "usr_nobody"}, "amount": "1000", "currency": "KRW"}),
            404,
            "recipient_not_found",
        ),
        (
            "/v1/transfers",
            json!({"to": {"phone": "123"}, "amount": "1000", "currency": "KRW"}),
            422,
            "phone_invalid",
        ),
        (
            "/v1/transfers",
            json!({"to": {"email": "nobody@example.com"}, "amount": "1000", "currency": "KRW"}),
            404,
            "recipient_not_found",
        ),
        (
            "/v1/transfers",
            json!({"to": {"member_id": lee.id}, "amount": ["1000"], "currency": "KRW"}),
            422,
            "amount_invalid",
        ),
    ];
    for (path, body, expected, code) in cases {
        let (status, answer) = post_money(&app, &kim.member.token, path, &body).await;
        assert_error(status, &answer, expected, code);
    }
    let (status, body) = send(
        app.bearer(&kim.member.token, Method::POST, "/v1/wallets/KRW/charges")
            .json(&json!({"amount": "1000"})),
    )
    .await;
    assert_error(status, &body, 400, "invalid_request");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Idempotency-Key"));
    let (status, body) = send(app.bearer(
        &kim.member.token,
        Method::GET,
        "/v1/wallets/KRW/history?cursor=abc",
    ))
    .await;
    assert_error(status, &body, 400, "invalid_request");

    assert_eq!(balances(&app, &kim.member).await, (10_000, 0, 0, 10_000));
    assert_eq!(balances(&app, &lee).await.0, 0);
    assert_eq!(bank_balance(&app, &kim.account).await, 90_000);
    assert_eq!(bank_balance(&app, "220000000001").await, 0);
    assert_master_agrees(&app, 1).await;
}

#[tokio::test]
async fn a_client_that_gives_up_never_makes_its_retry_run_beside_the_first_request() {
    let app = spawn_app().await;
    let kim = linked_member(&app, 1, 1_000_000).await;
    charge(&app, &kim.member, 50_000).await;
    open_account(&app, "220000000001", "홍길동", 0).await;
    // The bank takes a second over the payout; the client gives up long before.
    faults(
        &app,
        vec![FaultRule::next(FaultOp::Payout, FaultKind::Latency, 1).with_latency_ms(1_000)],
    );
    let body = json!({
        "amount": "20000", "bank_code": BANK, "account_number": "220000000001",
        "holder_name": "홍길동", "auto_top_up": false,
    });
    let request = || {
        app.bearer(&kim.member.token, Method::POST, "/v1/wallets/KRW/payouts")
            .header("Idempotency-Key", "impatient-1")
            .json(&body)
    };
    let gave_up = request().timeout(Duration::from_millis(300)).send().await;
    assert!(gave_up.is_err(), "the client timed out");

    // Its retry finds the first request still at work, not a free key.
    let (status, busy) = send(request()).await;
    assert_error(status, &busy, 409, "idempotency_request_in_progress");

    // Once the first request has finished, the retry gets its answer.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let response = request().send().await.unwrap();
    assert_eq!(
        response
            .headers()
            .get("idempotency-replayed")
            .map(|v| v.to_str().unwrap().to_owned()),
        Some("true".to_owned())
    );
    let (status, paid) = common::json_of(response).await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    assert_eq!(paid["transaction"]["state"], "succeeded");
    assert_eq!(
        bank_balance(&app, "220000000001").await,
        20_000,
        "paid once"
    );
    assert_eq!(balances(&app, &kim.member).await, (30_000, 0, 0, 30_000));
    assert_master_agrees(&app, 2).await;
}
