//! Linked bank accounts over HTTP, black-box, against the in-process sandbox bank: linking,
//! the 1-won code read from the bank's statement, verification, the ARS consent, unlinking;
//! every refusal; who may see what; bank faults during the deposit; and what the database keeps.

mod common;

use std::sync::Arc;

use api::ApiConfig;
use bank_accounts::{
    parse_account, AccountKeys, BankAccountConfig, BankAccountError, BankAccounts, KeyError,
    LinkKind,
};
use banking::sandbox::{FaultKind, FaultOp, FaultRule};
use banking::{HttpBank, HttpBankConfig, InstitutionCode};
use base64::Engine;
use common::{
    assert_error, send, spawn_app, spawn_app_with, spawn_app_with_manual_clock, TestApp, TestMember,
};
use ledger::AccountCode;
use membership::{MemberConfig, MemberId, Members};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const BANK: &str = "088";
const NUMBER: &str = "110123456789";
const PARTNER_BANK: &str = "089";
/// The name every test member signs up with (see `common`).
const HOLDER: &str = "김민수";

/// Opens an account at the sandbox bank, as a person would at the counter.
async fn open_bank_account(app: &TestApp, bank_code: &str, number: &str, holder: &str) {
    let (status, body) = send(
        app.client
            .post(format!("{}/admin/accounts", app.bank.base_url()))
            .json(&json!({"bank_code_std": bank_code, "account_num": number, "account_holder_name": holder})),
    )
    .await;
    assert!(status.is_success(), "{body}");
}

/// The account's statement lines at the bank, newest first, and its balance.
async fn bank_statement(app: &TestApp, bank_code: &str, number: &str) -> (Vec<Value>, i64) {
    let (status, body) = send(app.client.get(format!(
        "{}/admin/accounts/{bank_code}/{number}/transactions",
        app.bank.base_url()
    )))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let balance = body["balance_amt"].as_str().unwrap().parse().unwrap();
    (body["res_list"].as_array().unwrap().clone(), balance)
}

/// The code of the latest 1-won deposit, read from its memo as the member would in their bank
/// app; also checks that the account received exactly `deposits` such deposits.
async fn code_from_bank(app: &TestApp, bank_code: &str, number: &str, deposits: usize) -> String {
    let (lines, balance) = bank_statement(app, bank_code, number).await;
    assert_eq!(lines.len(), deposits, "{lines:?}");
    assert_eq!(balance, deposits as i64);
    let memo = lines[0]["print_content"].as_str().unwrap();
    let code = memo
        .strip_prefix("MYPAY ")
        .expect("the memo carries the code");
    assert_eq!(code.len(), 6, "{memo}");
    code.to_owned()
}

async fn link(
    app: &TestApp,
    member: &TestMember,
    path: &str,
    bank_code: &str,
    number: &str,
) -> (StatusCode, Value) {
    send(
        app.bearer(&member.token, Method::POST, path)
            .json(&json!({"bank_code": bank_code, "account_number": number})),
    )
    .await
}

async fn act(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let request = app.bearer(token, method, path);
    send(match body {
        Some(body) => request.json(&body),
        None => request,
    })
    .await
}

async fn verify(app: &TestApp, member: &TestMember, id: &str, code: &str) -> (StatusCode, Value) {
    let path = format!("/v1/bank-accounts/{id}/verify");
    act(
        app,
        &member.token,
        Method::POST,
        &path,
        Some(json!({"code": code})),
    )
    .await
}

/// Posted balance of a ledger account by code, on its normal side; 0 when it does not exist.
async fn booked(app: &TestApp, code: &str) -> i64 {
    match app
        .ledger
        .account_by_code(&AccountCode::parse(code).unwrap())
        .await
    {
        Ok(account) => account.balance().unwrap().posted.minor(),
        Err(_) => 0,
    }
}

/// A member with a linked, verified charge account at `088`; returns the link's id.
async fn verified_account(app: &TestApp, member: &TestMember, number: &str) -> String {
    open_bank_account(app, BANK, number, HOLDER).await;
    let (status, body) = link(app, member, "/v1/bank-accounts", BANK, number).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let code = code_from_bank(app, BANK, number, 1).await;
    let (status, body) = verify(app, member, &id, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

/// No account number in full anywhere in a JSON body.
fn assert_masked(body: &Value, number: &str) {
    let text = body.to_string();
    assert!(!text.contains(number), "{text}");
    assert!(!text.contains(&number[..8]), "{text}");
}

#[tokio::test]
async fn a_member_links_verifies_consents_and_unlinks_a_charge_account() {
    let app = spawn_app().await;
    let member = app.member("kim@example.com", "010-1234-5678").await;
    open_bank_account(&app, BANK, NUMBER, "김 민수").await;
    let master_before = app.bank.master_account().account_number.expose().to_owned();

    let (status, linked) = link(&app, &member, "/v1/bank-accounts", BANK, "110-123-456789").await;
    assert_eq!(status, StatusCode::CREATED, "{linked}");
    let id = linked["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ba_") && id.len() == 29, "{id}");
    assert_eq!(linked["kind"], "charge");
    assert_eq!(linked["status"], "awaiting_verification");
    assert_eq!(
        linked["account_number"], NUMBER,
        "shown in full while linking"
    );
    assert_eq!(linked["account_number_masked"], "***-***-6789");
    assert_eq!(
        linked["holder_name_masked"], "김***",
        "as the bank printed it, masked"
    );
    assert_eq!(linked["verification"]["deposited"], true);
    assert_eq!(linked["verification"]["attempts_left"], 5);
    assert_eq!(linked["verification"]["resends_left"], 3);

    let code = code_from_bank(&app, BANK, NUMBER, 1).await;
    let (status, verified) = verify(&app, &member, &id, &code).await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    assert_eq!(verified["status"], "verified");
    assert_eq!(verified["account_number"], NUMBER);
    assert!(verified["verification"].is_null());

    let consent_path = format!("/v1/bank-accounts/{id}/consent");
    let (status, session) = act(&app, &member.token, Method::POST, &consent_path, None).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_eq!(session["status"], "consent_pending");
    assert_eq!(
        session["account_number"], NUMBER,
        "shown in full at consent"
    );
    let ars = session["ars_code"].as_str().unwrap().to_owned();
    assert_eq!(ars.len(), 2);
    let confirm_path = format!("/v1/bank-accounts/{id}/consent/confirm");
    let (status, active) = act(
        &app,
        &member.token,
        Method::POST,
        &confirm_path,
        Some(json!({"code": ars})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{active}");
    assert_eq!(active["status"], "active");
    assert!(active["activated_at"].is_string());
    assert_masked(&active, NUMBER);

    let (status, list) = act(&app, &member.token, Method::GET, "/v1/bank-accounts", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], id);
    assert_eq!(list["data"][0]["account_number_masked"], "***-***-6789");
    assert_masked(&list, NUMBER);
    let (status, one) = act(
        &app,
        &member.token,
        Method::GET,
        &format!("/v1/bank-accounts/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_masked(&one, NUMBER);

    // One won left the master account, booked with its payout fee.
    assert_eq!(booked(&app, "expense:account_verification").await, 1);
    assert_eq!(booked(&app, "asset:bank:master").await, -1);
    assert_eq!(booked(&app, "expense:bank_fees").await, 300);
    assert_eq!(booked(&app, "liability:bank:fees_payable").await, 300);
    let (status, master) = send(
        app.client
            .get(format!("{}/admin/master", app.bank.base_url())),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(master["balance_amt"], "999999999");
    assert_eq!(master["account_num"], master_before);

    let (status, ended) = act(
        &app,
        &member.token,
        Method::DELETE,
        &format!("/v1/bank-accounts/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert_eq!(ended["status"], "unlinked");
    assert!(ended["ended_at"].is_string());
    let (_, list) = act(&app, &member.token, Method::GET, "/v1/bank-accounts", None).await;
    assert_eq!(list["data"], json!([]));
    let (status, body) = act(
        &app,
        &member.token,
        Method::DELETE,
        &format!("/v1/bank-accounts/{id}"),
        None,
    )
    .await;
    assert_error(status, &body, 409, "bank_account_ended");
    // The account can be linked again after unlinking; it costs a new deposit.
    let (status, body) = link(&app, &member, "/v1/bank-accounts", BANK, NUMBER).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    code_from_bank(&app, BANK, NUMBER, 2).await;
}

#[tokio::test]
async fn linking_refuses_bad_input_unknown_accounts_and_other_holders_with_nothing_changed() {
    let app = spawn_app().await;
    let member = app.member("kim@example.com", "010-1234-5678").await;
    open_bank_account(&app, BANK, NUMBER, "홍길동").await;
    let path = "/v1/bank-accounts";
    let cases = [
        (
            json!({"bank_code": "88", "account_number": NUMBER}),
            422,
            "bank_code_invalid",
        ),
        (
            json!({"bank_code": BANK, "account_number": "12345"}),
            422,
            "account_number_invalid",
        ),
        (
            json!({"bank_code": BANK, "account_number": "1101-2345-x"}),
            422,
            "account_number_invalid",
        ),
        (
            json!({"bank_code": BANK, "account_number": NUMBER, "kind": "charge"}),
            400,
            "invalid_request",
        ),
        (
            json!({"bank_code": 88, "account_number": NUMBER}),
            400,
            "invalid_request",
        ),
        (json!({"bank_code": BANK}), 400, "invalid_request"),
        (
            json!({"bank_code": BANK, "account_number": NUMBER}),
            422,
            "holder_name_mismatch",
        ),
        (
            json!({"bank_code": BANK, "account_number": "999999999"}),
            422,
            "bank_account_not_found",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = send(app.bearer(&member.token, Method::POST, path).json(&body)).await;
        assert_error(got, &answer, status, code);
        assert!(!answer.to_string().contains(NUMBER), "{answer}");
    }
    let (lines, balance) = bank_statement(&app, BANK, NUMBER).await;
    assert!(lines.is_empty() && balance == 0, "no deposit was sent");
    let (_, list) = act(&app, &member.token, Method::GET, path, None).await;
    assert_eq!(list["data"], json!([]));
    assert_eq!(booked(&app, "expense:account_verification").await, 0);
}

#[tokio::test]
async fn wrong_codes_use_up_attempts_and_resends_issue_new_codes_up_to_a_limit() {
    let app = spawn_app().await;
    let member = app.member("kim@example.com", "010-1234-5678").await;
    open_bank_account(&app, BANK, NUMBER, HOLDER).await;
    let (_, linked) = link(&app, &member, "/v1/bank-accounts", BANK, NUMBER).await;
    let id = linked["id"].as_str().unwrap().to_owned();
    let code = code_from_bank(&app, BANK, NUMBER, 1).await;
    let wrong = if code == "000000" { "000001" } else { "000000" };

    let (status, body) = verify(&app, &member, &id, "12345").await;
    assert_error(status, &body, 422, "invalid_request");
    for left in (0..5).rev() {
        let (status, body) = verify(&app, &member, &id, wrong).await;
        assert_error(status, &body, 422, "verification_code_mismatch");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("{left} attempts left")),
            "{body}"
        );
    }
    let (status, body) = verify(&app, &member, &id, &code).await;
    assert_error(status, &body, 409, "verification_attempts_exceeded");

    let resend = format!("/v1/bank-accounts/{id}/verification");
    let (status, body) = act(&app, &member.token, Method::POST, &resend, None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["verification"]["attempts_left"], 5);
    assert_eq!(body["verification"]["resends_left"], 2);
    let new_code = code_from_bank(&app, BANK, NUMBER, 2).await;
    if new_code != code {
        let (status, body) = verify(&app, &member, &id, &code).await;
        assert_error(status, &body, 422, "verification_code_mismatch");
    }
    for remaining in [1, 0] {
        let (status, body) = act(&app, &member.token, Method::POST, &resend, None).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["verification"]["resends_left"], remaining);
    }
    let (status, body) = act(&app, &member.token, Method::POST, &resend, None).await;
    assert_error(status, &body, 409, "verification_resend_limit_reached");
    let latest = code_from_bank(&app, BANK, NUMBER, 4).await;
    let (status, body) = verify(&app, &member, &id, &latest).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = verify(&app, &member, &id, &latest).await;
    assert_error(status, &body, 409, "bank_account_already_verified");
    let (status, body) = act(&app, &member.token, Method::POST, &resend, None).await;
    assert_error(status, &body, 409, "bank_account_already_verified");
    assert_eq!(booked(&app, "expense:account_verification").await, 4);
    assert_eq!(booked(&app, "expense:bank_fees").await, 1200);
}

#[tokio::test]
async fn codes_expire_after_ten_minutes_and_ars_sessions_after_three() {
    let (app, clock) = spawn_app_with_manual_clock().await;
    let member = app.member("kim@example.com", "010-1234-5678").await;
    open_bank_account(&app, BANK, NUMBER, HOLDER).await;
    let (_, linked) = link(&app, &member, "/v1/bank-accounts", BANK, NUMBER).await;
    let id = linked["id"].as_str().unwrap().to_owned();
    let code = code_from_bank(&app, BANK, NUMBER, 1).await;
    clock.advance_micros(10 * 60 * 1_000_000);
    let (status, body) = verify(&app, &member, &id, &code).await;
    assert_error(status, &body, 409, "verification_expired");

    let resend = format!("/v1/bank-accounts/{id}/verification");
    let (status, body) = act(&app, &member.token, Method::POST, &resend, None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let code = code_from_bank(&app, BANK, NUMBER, 2).await;
    clock.advance_micros(9 * 60 * 1_000_000);
    let (status, body) = verify(&app, &member, &id, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let consent = format!("/v1/bank-accounts/{id}/consent");
    let confirm = format!("/v1/bank-accounts/{id}/consent/confirm");
    let (status, body) = act(
        &app,
        &member.token,
        Method::POST,
        &confirm,
        Some(json!({"code": "00"})),
    )
    .await;
    assert_error(status, &body, 409, "ars_session_missing");
    let (_, session) = act(&app, &member.token, Method::POST, &consent, None).await;
    let ars = session["ars_code"].as_str().unwrap().to_owned();
    clock.advance_micros(3 * 60 * 1_000_000);
    let (status, body) = act(
        &app,
        &member.token,
        Method::POST,
        &confirm,
        Some(json!({"code": ars})),
    )
    .await;
    assert_error(status, &body, 409, "ars_session_expired");

    let (_, session) = act(&app, &member.token, Method::POST, &consent, None).await;
    let ars = session["ars_code"].as_str().unwrap().to_owned();
    let wrong = if ars == "00" { "01" } else { "00" };
    for left in [2, 1, 0] {
        let (status, body) = act(
            &app,
            &member.token,
            Method::POST,
            &confirm,
            Some(json!({"code": wrong})),
        )
        .await;
        assert_error(status, &body, 422, "ars_code_mismatch");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{left} attempts left")));
    }
    let (status, body) = act(
        &app,
        &member.token,
        Method::POST,
        &confirm,
        Some(json!({"code": ars})),
    )
    .await;
    assert_error(status, &body, 409, "ars_attempts_exceeded");
    let (_, session) = act(&app, &member.token, Method::POST, &consent, None).await;
    let ars = session["ars_code"].as_str().unwrap().to_owned();
    let (status, body) = act(
        &app,
        &member.token,
        Method::POST,
        &confirm,
        Some(json!({"code": ars})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "active");
    let (status, body) = act(&app, &member.token, Method::POST, &consent, None).await;
    assert_error(status, &body, 409, "debit_consent_exists");
}

#[tokio::test]
async fn only_the_owner_acts_staff_keys_read_masked_and_merchants_and_strangers_see_nothing() {
    let app = spawn_app().await;
    let owner = app.member("kim@example.com", "010-1234-5678").await;
    let other = app.member("lee@example.com", "010-8765-4321").await;
    let id = verified_account(&app, &owner, NUMBER).await;
    let (_, merchant) = app.merchant("마이커피").await;
    let (_, platform) = app.api_key("platform").await;
    let one = format!("/v1/bank-accounts/{id}");
    let missing = "/v1/bank-accounts/ba_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B";

    for path in [one.as_str(), missing, "/v1/bank-accounts/not-an-id"] {
        let (status, body) = act(&app, &other.token, Method::GET, path, None).await;
        assert_error(status, &body, 404, "bank_account_not_found");
        let (status, body) = act(&app, &other.token, Method::DELETE, path, None).await;
        assert_error(status, &body, 404, "bank_account_not_found");
        for action in ["verify", "verification", "consent", "consent/confirm"] {
            let code = if action == "verify" { "123456" } else { "12" };
            let body = json!({"code": code});
            let body = matches!(action, "verify" | "consent/confirm").then_some(body);
            let (status, answer) = act(
                &app,
                &other.token,
                Method::POST,
                &format!("{path}/{action}"),
                body,
            )
            .await;
            assert_error(status, &answer, 404, "bank_account_not_found");
        }
    }
    let (status, body) = act(
        &app,
        &other.token,
        Method::GET,
        &format!("/v1/bank-accounts?member_id={}", owner.id),
        None,
    )
    .await;
    assert_error(status, &body, 404, "member_not_found");
    let (_, body) = act(&app, &other.token, Method::GET, "/v1/bank-accounts", None).await;
    assert_eq!(body["data"], json!([]));

    for key in [app.admin_key.as_str(), platform.as_str()] {
        let (status, body) = act(&app, key, Method::GET, &one, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_masked(&body, NUMBER);
        let (status, body) = act(
            &app,
            key,
            Method::GET,
            &format!("/v1/bank-accounts?member_id={}", owner.id),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"][0]["id"], id.as_str());
        assert_masked(&body, NUMBER);
        let (status, body) = act(&app, key, Method::GET, "/v1/bank-accounts", None).await;
        assert_error(status, &body, 400, "invalid_request");
        let (status, body) = act(&app, key, Method::DELETE, &one, None).await;
        assert_error(status, &body, 403, "forbidden");
    }
    for (method, path) in [
        (Method::GET, one.clone()),
        (Method::GET, "/v1/bank-accounts".to_owned()),
        (Method::POST, format!("{one}/consent/confirm")),
    ] {
        let (status, body) = act(&app, &merchant, method, &path, Some(json!({"code": "12"}))).await;
        assert_error(status, &body, 403, "forbidden");
    }
    let (status, body) = act(
        &app,
        &app.admin_key,
        Method::POST,
        "/v1/bank-accounts",
        Some(json!({"bank_code": BANK, "account_number": NUMBER})),
    )
    .await;
    assert_error(status, &body, 403, "forbidden");
    for (method, path) in [
        (Method::GET, one.clone()),
        (Method::GET, "/v1/bank-accounts".to_owned()),
        (Method::POST, "/v1/bank-accounts".to_owned()),
        (Method::DELETE, one.clone()),
        (Method::POST, format!("{one}/verify")),
    ] {
        let (status, body) = send(app.anonymous(method, &path).json(&json!({}))).await;
        assert_error(status, &body, 401, "unauthenticated");
    }

    // The platform key confirms the ARS step for the ARS provider; the admin key may not.
    let (_, session) = act(
        &app,
        &owner.token,
        Method::POST,
        &format!("{one}/consent"),
        None,
    )
    .await;
    let ars = session["ars_code"].as_str().unwrap().to_owned();
    let confirm = format!("{one}/consent/confirm");
    let (status, body) = act(
        &app,
        &app.admin_key,
        Method::POST,
        &confirm,
        Some(json!({"code": ars})),
    )
    .await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = act(
        &app,
        &platform,
        Method::POST,
        &confirm,
        Some(json!({"code": ars})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "active");
}

#[tokio::test]
async fn the_partner_account_is_one_per_member_and_one_member_per_account() {
    let app = spawn_app().await;
    let first = app.member("kim@example.com", "010-1234-5678").await;
    let second = app.member("kim2@example.com", "010-2222-3333").await;
    let partner_number = "100012345678";
    open_bank_account(&app, PARTNER_BANK, partner_number, HOLDER).await;
    open_bank_account(&app, PARTNER_BANK, "100087654321", HOLDER).await;
    open_bank_account(&app, BANK, NUMBER, HOLDER).await;
    let path = "/v1/bank-accounts/partner";

    let (status, body) = link(&app, &first, path, BANK, NUMBER).await;
    assert_error(status, &body, 422, "bank_code_not_partner");
    let (status, body) = link(&app, &first, path, PARTNER_BANK, partner_number).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["kind"], "partner");
    assert_eq!(body["account_number"], partner_number);
    let (status, body) = link(&app, &first, path, PARTNER_BANK, "100087654321").await;
    assert_error(status, &body, 409, "partner_account_exists");
    let (status, body) = link(&app, &second, path, PARTNER_BANK, partner_number).await;
    assert_error(status, &body, 409, "partner_account_taken");
    let (status, body) = link(
        &app,
        &first,
        "/v1/bank-accounts",
        PARTNER_BANK,
        partner_number,
    )
    .await;
    assert_error(status, &body, 409, "bank_account_already_linked");
    // Charge accounts are a separate process: the same person links theirs alongside.
    let (status, body) = link(&app, &first, "/v1/bank-accounts", BANK, NUMBER).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = link(&app, &first, "/v1/bank-accounts", BANK, NUMBER).await;
    assert_error(status, &body, 409, "bank_account_already_linked");
    let (_, list) = act(&app, &first.token, Method::GET, "/v1/bank-accounts", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_lost_or_timed_out_deposit_is_resolved_by_inquiry_and_sent_exactly_once() {
    let app = spawn_app().await;
    for (n, kind) in [FaultKind::Timeout, FaultKind::LostReply]
        .into_iter()
        .enumerate()
    {
        let member = app
            .member(&format!("m{n}@example.com"), &format!("010-1111-000{n}"))
            .await;
        let number = format!("11012345670{n}");
        open_bank_account(&app, BANK, &number, HOLDER).await;
        app.bank
            .faults()
            .replace(vec![
                FaultRule::next(FaultOp::Payout, kind, 1).with_hold_ms(50)
            ])
            .unwrap();
        let (status, body) = link(&app, &member, "/v1/bank-accounts", BANK, &number).await;
        assert_eq!(status, StatusCode::CREATED, "{kind:?}: {body}");
        assert_eq!(body["status"], "awaiting_verification");
        let code = code_from_bank(&app, BANK, &number, 1).await;
        let id = body["id"].as_str().unwrap();
        let (status, body) = verify(&app, &member, id, &code).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(booked(&app, "expense:account_verification").await, 2);
    assert_eq!(booked(&app, "asset:bank:master").await, -2);
}

#[tokio::test]
async fn a_refused_deposit_moves_nothing_and_the_link_can_be_tried_again() {
    let app = spawn_app().await;
    let member = app.member("kim@example.com", "010-1234-5678").await;
    open_bank_account(&app, BANK, NUMBER, HOLDER).await;
    app.bank
        .faults()
        .replace(vec![FaultRule::next(FaultOp::Payout, FaultKind::Error, 1)])
        .unwrap();
    let (status, body) = link(&app, &member, "/v1/bank-accounts", BANK, NUMBER).await;
    assert_error(status, &body, 503, "bank_unavailable");
    let (lines, balance) = bank_statement(&app, BANK, NUMBER).await;
    assert!(lines.is_empty() && balance == 0);
    assert_eq!(booked(&app, "expense:account_verification").await, 0);
    let (_, list) = act(&app, &member.token, Method::GET, "/v1/bank-accounts", None).await;
    assert_eq!(list["data"], json!([]));

    let (status, body) = link(&app, &member, "/v1/bank-accounts", BANK, NUMBER).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    code_from_bank(&app, BANK, NUMBER, 1).await;
    assert_eq!(booked(&app, "expense:account_verification").await, 1);
}

#[tokio::test]
async fn a_deposit_still_unknown_is_pending_until_a_later_read_resolves_it() {
    let app = spawn_app().await;
    let member = app.member("kim@example.com", "010-1234-5678").await;
    open_bank_account(&app, BANK, NUMBER, HOLDER).await;
    let always_timeout = FaultRule {
        count: None,
        ..FaultRule::next(FaultOp::Payout, FaultKind::Timeout, 1).with_hold_ms(50)
    };
    app.bank.faults().replace(vec![always_timeout]).unwrap();
    let (status, body) = link(&app, &member, "/v1/bank-accounts", BANK, NUMBER).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "deposit_pending");
    assert_eq!(body["verification"]["deposited"], false);
    let id = body["id"].as_str().unwrap().to_owned();
    let (status, answer) = verify(&app, &member, &id, "123456").await;
    assert_error(status, &answer, 409, "verification_deposit_pending");
    let resend = format!("/v1/bank-accounts/{id}/verification");
    let (status, answer) = act(&app, &member.token, Method::POST, &resend, None).await;
    assert_error(status, &answer, 409, "verification_deposit_pending");
    let (status, answer) = act(
        &app,
        &member.token,
        Method::DELETE,
        &format!("/v1/bank-accounts/{id}"),
        None,
    )
    .await;
    assert_error(status, &answer, 409, "verification_deposit_pending");
    let (lines, _) = bank_statement(&app, BANK, NUMBER).await;
    assert!(lines.is_empty());
    assert_eq!(booked(&app, "expense:account_verification").await, 0);

    app.bank.faults().replace(Vec::new()).unwrap();
    let (status, body) = act(
        &app,
        &member.token,
        Method::GET,
        &format!("/v1/bank-accounts/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "awaiting_verification");
    let code = code_from_bank(&app, BANK, NUMBER, 1).await;
    let (status, body) = verify(&app, &member, &id, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(booked(&app, "expense:account_verification").await, 1);
    assert_eq!(booked(&app, "expense:bank_fees").await, 300);
}

#[tokio::test]
async fn the_database_holds_no_account_number_or_code_in_the_clear() {
    let app = spawn_app().await;
    let member = app.member("kim@example.com", "010-1234-5678").await;
    open_bank_account(&app, BANK, NUMBER, HOLDER).await;
    // With an Idempotency-Key, as a careful client sends it: the answer shows the number in
    // full, so it must not be kept for replay.
    let (status, linked) = send(
        app.bearer(&member.token, Method::POST, "/v1/bank-accounts")
            .header("Idempotency-Key", "link-once")
            .json(&json!({"bank_code": BANK, "account_number": NUMBER})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{linked}");
    assert_eq!(linked["account_number"], NUMBER);
    let kept: Vec<(String,)> =
        sqlx::query_as("SELECT COALESCE(response_body, '') FROM idempotency_keys")
            .fetch_all(app.db.db.pool())
            .await
            .unwrap();
    assert!(
        kept.is_empty(),
        "a disclosing answer is never stored: {kept:?}"
    );
    let code = code_from_bank(&app, BANK, NUMBER, 1).await;
    let links: Vec<(String,)> = sqlx::query_as(
        "SELECT id || '|' || bank_code || '|' || account_key_id || '|' || account_number_sealed \
             || '|' || account_blind_index || '|' || account_last4 FROM bank_accounts",
    )
    .fetch_all(app.db.db.pool())
    .await
    .unwrap();
    assert_eq!(links.len(), 1);
    let row = &links[0].0;
    assert!(row.starts_with(linked["id"].as_str().unwrap()));
    assert!(row.ends_with("|6789"));
    assert!(
        row.contains("|ephemeral|"),
        "sealed under the configured key: {row}"
    );
    for part in [NUMBER, &NUMBER[..8], &NUMBER[2..10]] {
        assert!(!row.contains(part), "{row}");
    }
    let deposits: Vec<(String,)> = sqlx::query_as(
        "SELECT code_hmac || '|' || COALESCE(memo_sealed, '') FROM bank_account_deposits",
    )
    .fetch_all(app.db.db.pool())
    .await
    .unwrap();
    assert_eq!(deposits.len(), 1);
    assert!(!deposits[0].0.contains(&code), "{}", deposits[0].0);
    assert!(
        deposits[0].0.ends_with('|'),
        "the sealed memo is erased once the deposit arrived"
    );
}

/// A second service over the test server's database and bank, as a restarted server with
/// other keys would be.
fn service_with(app: &TestApp, keys: AccountKeys) -> BankAccounts {
    let gateway = HttpBank::new(HttpBankConfig::new(
        app.bank.base_url(),
        InstitutionCode::parse("MYPAYTEST2").unwrap(),
        app.bank.master_account().clone(),
    ))
    .unwrap();
    let members = Members::new(
        app.db.db.clone(),
        app.ledger.clone(),
        MemberConfig::default(),
    );
    BankAccounts::new(
        app.db.db.clone(),
        app.ledger.clone(),
        Arc::new(members),
        Arc::new(gateway),
        BankAccountConfig::new(Arc::new(keys)),
    )
}

fn key(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

#[tokio::test]
async fn rotated_keys_open_what_old_keys_sealed_and_seal_anew_under_the_current_key() {
    let (old_ring, index) = (format!("old:{}", key(1)), key(9));
    let config = ApiConfig {
        bank_accounts: BankAccountConfig::new(Arc::new(
            AccountKeys::parse(&old_ring, &index).unwrap(),
        )),
        ..ApiConfig::default()
    };
    let app = spawn_app_with(config).await;
    let member = app.member("kim@example.com", "010-1234-5678").await;
    let member_id = MemberId::parse(&member.id).unwrap();
    let id = verified_account(&app, &member, NUMBER).await;

    let rotated = service_with(
        &app,
        AccountKeys::parse(&format!("new:{},{old_ring}", key(2)), &index).unwrap(),
    );
    let target = rotated
        .withdrawal_target(&member_id, Some(&id))
        .await
        .unwrap();
    assert_eq!(target.account.account_number.expose(), NUMBER);
    assert_eq!(target.holder_name.expose(), HOLDER);
    assert_eq!(
        rotated
            .withdrawal_target(&member_id, None)
            .await
            .unwrap()
            .bank_account_id,
        id
    );
    let error = rotated
        .charge_source(&member_id, Some(&id))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "debit_consent_missing");

    let second = "220123456789";
    open_bank_account(&app, BANK, second, HOLDER).await;
    let linked = rotated
        .link(
            &member_id,
            LinkKind::Charge,
            parse_account(BANK, second).unwrap(),
        )
        .await
        .unwrap();
    let (key_id,): (String,) =
        sqlx::query_as("SELECT account_key_id FROM bank_accounts WHERE id = $1")
            .bind(linked.account.id.as_str())
            .fetch_one(app.db.db.pool())
            .await
            .unwrap();
    assert_eq!(key_id, "new");
    let error = rotated
        .link(
            &member_id,
            LinkKind::Charge,
            parse_account(BANK, NUMBER).unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.code(),
        "bank_account_already_linked",
        "the blind index survives rotation"
    );

    let only_new = service_with(
        &app,
        AccountKeys::parse(&format!("new:{}", key(2)), &index).unwrap(),
    );
    let error = only_new
        .withdrawal_target(&member_id, Some(&id))
        .await
        .unwrap_err();
    assert!(
        matches!(error, BankAccountError::Keys(KeyError::UnknownKey(_))),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_wallet_collects_from_the_active_account_and_the_partner_account_comes_first() {
    let (ring, index) = (format!("k1:{}", key(3)), key(4));
    let config = ApiConfig {
        bank_accounts: BankAccountConfig::new(Arc::new(AccountKeys::parse(&ring, &index).unwrap())),
        ..ApiConfig::default()
    };
    let app = spawn_app_with(config).await;
    let wallet = service_with(&app, AccountKeys::parse(&ring, &index).unwrap());
    let member = app.member("kim@example.com", "010-1234-5678").await;
    let member_id = MemberId::parse(&member.id).unwrap();
    let error = wallet.charge_source(&member_id, None).await.unwrap_err();
    assert_eq!(error.code(), "bank_account_not_found");
    let error = wallet
        .withdrawal_target(&member_id, None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "bank_account_not_found");

    let charge = verified_account(&app, &member, NUMBER).await;
    let error = wallet.charge_source(&member_id, None).await.unwrap_err();
    assert_eq!(error.code(), "debit_consent_missing");
    activate(&app, &member, &charge).await;
    let source = wallet.charge_source(&member_id, None).await.unwrap();
    assert_eq!(source.bank_account_id, charge);
    assert_eq!(source.account.account_number.expose(), NUMBER);
    assert!(source.payer_number.as_str().starts_with("MP"));

    let partner_number = "100012345678";
    open_bank_account(&app, PARTNER_BANK, partner_number, HOLDER).await;
    let (status, body) = link(
        &app,
        &member,
        "/v1/bank-accounts/partner",
        PARTNER_BANK,
        partner_number,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let partner = body["id"].as_str().unwrap().to_owned();
    let error = wallet
        .withdrawal_target(&member_id, Some(&partner))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "bank_account_not_verified");
    let code = code_from_bank(&app, PARTNER_BANK, partner_number, 1).await;
    verify(&app, &member, &partner, &code).await;
    assert_eq!(
        wallet
            .withdrawal_target(&member_id, None)
            .await
            .unwrap()
            .bank_account_id,
        partner
    );
    assert_eq!(
        wallet
            .charge_source(&member_id, None)
            .await
            .unwrap()
            .bank_account_id,
        charge
    );
    activate(&app, &member, &partner).await;
    let source = wallet.charge_source(&member_id, None).await.unwrap();
    assert_eq!(source.bank_account_id, partner);
    assert_eq!(source.account.bank_code.as_str(), PARTNER_BANK);
    assert_eq!(
        wallet
            .charge_source(&member_id, Some(&charge))
            .await
            .unwrap()
            .bank_account_id,
        charge
    );

    let other = app.member("lee@example.com", "010-8765-4321").await;
    let other_id = MemberId::parse(&other.id).unwrap();
    let error = wallet
        .charge_source(&other_id, Some(&charge))
        .await
        .unwrap_err();
    assert_eq!(
        error.code(),
        "bank_account_not_found",
        "never another member's account"
    );
    act(
        &app,
        &member.token,
        Method::DELETE,
        &format!("/v1/bank-accounts/{partner}"),
        None,
    )
    .await;
    assert_eq!(
        wallet
            .charge_source(&member_id, None)
            .await
            .unwrap()
            .bank_account_id,
        charge
    );
    let error = wallet
        .charge_source(&member_id, Some(&partner))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "bank_account_ended");
}

async fn activate(app: &TestApp, member: &TestMember, id: &str) {
    let (_, session) = act(
        app,
        &member.token,
        Method::POST,
        &format!("/v1/bank-accounts/{id}/consent"),
        None,
    )
    .await;
    let ars = session["ars_code"].as_str().unwrap().to_owned();
    let confirm = format!("/v1/bank-accounts/{id}/consent/confirm");
    let (status, body) = act(
        app,
        &member.token,
        Method::POST,
        &confirm,
        Some(json!({"code": ars})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
