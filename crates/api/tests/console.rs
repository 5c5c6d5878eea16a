//! The back-office console at `/admin`, black-box over HTTP: an operator created by an admin
//! key logs in, sees the dashboard, finds a payment by each kind of number and a member by
//! theirs, and reads the postings behind an order; a dead letter is retried only through a
//! confirmation with the session's CSRF token and from the console's own origin, and the
//! retry is in the audit log with the job before and after; member tokens, merchant keys and
//! admin keys get nothing from the console; a wrong password and a logged-out cookie get the
//! login page.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{charge, linked_member, send, spawn_app, Flaky, TestApp};
use jobs::{JobRunner, NewJob, Registry, RetryPolicy, RunnerConfig};
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::{redirect, Client, Method, Response, StatusCode};
use serde_json::{json, Value};

const EMAIL: &str = "ops@example.com";
const PASSWORD: &str = "correct horse battery";

/// A client that shows redirects instead of following them, as the tests check them.
fn browser() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

async fn create_operator(app: &TestApp) {
    let (status, body) = send(
        app.admin(Method::POST, "/v1/admin/operators")
            .json(&json!({"email": EMAIL, "name": "Kim Operator", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["id"].as_str().unwrap().starts_with("opr_"));
    assert!(body.get("password").is_none());
}

/// Logs in through the form; returns the `Cookie` header to send from now on.
async fn log_in(app: &TestApp, client: &Client) -> String {
    let response = client
        .post(app.url("/admin/login"))
        .form(&[("email", EMAIL), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/admin");
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_owned()
}

async fn page(app: &TestApp, client: &Client, cookie: &str, path: &str) -> (StatusCode, String) {
    let response = client
        .get(app.url(path))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

fn location(response: &Response) -> String {
    response.headers()[LOCATION].to_str().unwrap().to_owned()
}

/// The value of the hidden `csrf` field on a page.
fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn an_operator_finds_a_payment_by_each_kind_of_number_and_reads_its_postings() {
    let app = spawn_app().await;
    create_operator(&app).await;
    let buyer = linked_member(&app, 1, 1_000_000).await;
    charge(&app, &buyer, 50_000).await;
    let (shop, _) = app.merchant("Corner Shop").await;
    let body = json!({
        "checkout_id": "chk-console-1",
        "payment_orders": [{
            "seller_account": shop, "amount": "10000", "currency": "KRW",
            "payment_order_id": "shop-order-77", "escrow": false,
        }],
        "funding": {"money": "4000", "card": {"billing_key": "bk_test_ok_1", "amount": "6000"}},
    });
    let (status, payment) = send(
        app.bearer(&buyer.member.token, Method::POST, "/v1/payments")
            .json(&body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    let payment_id = payment["id"].as_str().unwrap().to_owned();
    let order_id = payment["payment_orders"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let payment_key: String =
        sqlx::query_scalar("SELECT psp_payment_key FROM payment_orders WHERE id = $1")
            .bind(&order_id)
            .fetch_one(app.db.db.pool())
            .await
            .unwrap();
    let (_, history) =
        send(app.bearer(&buyer.member.token, Method::GET, "/v1/wallets/KRW/history")).await;
    let charge_mtx = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "charge")
        .expect("the charge in the history")["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let client = browser();
    let cookie = log_in(&app, &client).await;
    let (status, dashboard) = page(&app, &client, &cookie, "/admin").await;
    assert_eq!(status, StatusCode::OK);
    for expected in [
        "Dashboard",
        "Totals per account type",
        "10000 KRW in 1 order",
        "<svg",
        EMAIL,
    ] {
        assert!(dashboard.contains(expected), "{expected}: {dashboard}");
    }
    let (_, checked) = page(&app, &client, &cookie, "/admin?check=1").await;
    assert!(checked.contains("all hold"), "{checked}");

    let payment_page = format!("/admin/payments/{payment_id}");
    let member_page = format!("/admin/members/{}", buyer.member.id);
    for (number, expected) in [
        (payment_id.as_str(), payment_page.as_str()),
        (order_id.as_str(), payment_page.as_str()),
        ("shop-order-77", payment_page.as_str()),
        ("chk-console-1", payment_page.as_str()),
        (payment_key.as_str(), payment_page.as_str()),
        (charge_mtx.as_str(), member_page.as_str()),
        (buyer.member.id.as_str(), member_page.as_str()),
        ("M1@Example.com", member_page.as_str()),
        ("010-2000-0001", member_page.as_str()),
    ] {
        let response = client
            .get(app.url("/admin/search"))
            .query(&[("q", number)])
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{number}");
        assert_eq!(location(&response), expected, "{number}");
    }
    let (status, nothing) = page(&app, &client, &cookie, "/admin/search?q=no-such-number").await;
    assert_eq!(status, StatusCode::OK);
    assert!(nothing.contains("Nothing here."));

    let (status, detail) = page(&app, &client, &cookie, &payment_page).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    for expected in [
        order_id.as_str(),
        "shop-order-77",
        "SUCCESS",
        "approved",
        "Ledger postings",
        &format!("liability:merchant:{shop}:payable:KRW"),
        "asset:psp:receivable:KRW",
    ] {
        assert!(detail.contains(expected), "{expected}: {detail}");
    }
    let (status, member) = page(&app, &client, &cookie, &member_page).await;
    assert_eq!(status, StatusCode::OK, "{member}");
    assert!(
        member.contains(&charge_mtx) && member.contains("46000"),
        "{member}"
    );
    // Linked accounts are masked: the full number never reaches the page.
    assert!(!member.contains(&buyer.account), "{member}");
    let (status, _) = page(&app, &client, &cookie, "/admin/payments/pay_nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_dead_letter_is_retried_only_when_confirmed_with_the_csrf_token_and_is_audited() {
    let app = spawn_app().await;
    create_operator(&app).await;
    let handler = Arc::new(Flaky {
        fixed: AtomicBool::new(false),
    });
    let mut registry = Registry::new();
    registry.register(
        "test.flaky",
        handler.clone(),
        RetryPolicy::fixed(Duration::ZERO),
    );
    let runner = JobRunner::new(
        app.db.db.clone(),
        app.ledger.clock(),
        registry,
        RunnerConfig::default(),
    );
    let job = app
        .jobs
        .enqueue(&NewJob {
            kind: "test.flaky".into(),
            payload: json!({"n": 1}),
            unique_key: None,
            run_at: 0,
            max_attempts: 1,
        })
        .await
        .unwrap()
        .unwrap()
        .to_string();
    assert_eq!(runner.run_once().await.unwrap().dead, 1);

    let client = browser();
    let cookie = log_in(&app, &client).await;
    let (_, dead) = page(&app, &client, &cookie, "/admin/jobs?state=dead").await;
    assert!(
        dead.contains(&job) && dead.contains("the partner bank is down"),
        "{dead}"
    );
    let (status, confirm) = page(&app, &client, &cookie, &format!("/admin/jobs/{job}/retry")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirm.contains("Retry job"), "{confirm}");
    let csrf = csrf_of(&confirm);
    let action = app.url(&format!("/admin/jobs/{job}/retry"));

    // Without the token, with another session's token, or from another origin: refused.
    for (token, origin) in [
        ("", None),
        ("forged", None),
        (csrf.as_str(), Some("https://evil.example")),
    ] {
        let mut request = client
            .post(&action)
            .header(COOKIE, &cookie)
            .form(&[("csrf", token), ("confirm", "yes")]);
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{token} {origin:?}"
        );
        assert_eq!(
            app.jobs.get(&job).await.unwrap().state,
            jobs::JobState::Dead
        );
    }
    // Without the confirmation: back to the confirmation page, nothing done.
    let response = client
        .post(&action)
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.jobs.get(&job).await.unwrap().state,
        jobs::JobState::Dead
    );

    let response = client
        .post(&action)
        .header(COOKIE, &cookie)
        .header(ORIGIN, app.base.trim_end_matches('/'))
        .form(&[("csrf", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        format!("/admin/jobs/{job}?done=retried")
    );
    assert_eq!(
        app.jobs.get(&job).await.unwrap().state,
        jobs::JobState::Queued
    );
    handler.fixed.store(true, Ordering::SeqCst);
    assert_eq!(runner.run_once().await.unwrap().done, 1);
    // A second retry finds nothing dead.
    let response = client
        .post(&action)
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);

    let (_, audit) = page(&app, &client, &cookie, "/admin/audit").await;
    assert!(
        audit.contains("job.retry") && audit.contains(&job) && audit.contains(EMAIL),
        "{audit}"
    );
    let (before, after): (String, String) = sqlx::query_as(
        "SELECT before_state, after_state FROM audit_log WHERE action = 'job.retry'",
    )
    .fetch_one(app.db.db.pool())
    .await
    .unwrap();
    let before: Value = serde_json::from_str(&before).unwrap();
    let after: Value = serde_json::from_str(&after).unwrap();
    assert_eq!(before["state"], "dead");
    assert_eq!(after["state"], "queued");
}

#[tokio::test]
async fn members_and_api_keys_get_nothing_and_a_logged_out_cookie_is_refused() {
    let app = spawn_app().await;
    create_operator(&app).await;
    let client = browser();
    let member = app.member("m@example.com", "010-1234-5678").await;
    let (_, merchant_key) = app.merchant("Shop").await;
    for token in [
        member.token.as_str(),
        merchant_key.as_str(),
        app.admin_key.as_str(),
    ] {
        for path in [
            "/admin",
            "/admin/jobs?state=dead",
            "/admin/audit",
            "/admin/search?q=x",
        ] {
            let response = client
                .get(app.url(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
            assert_eq!(location(&response), "/admin/login");
        }
        // A member's session token as the console cookie is no console session either.
        let (status, _) = page(&app, &client, &format!("mypay_console={token}"), "/admin").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    }
    let wrong = client
        .post(app.url("/admin/login"))
        .form(&[("email", EMAIL), ("password", "not the password")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    let text = wrong.text().await.unwrap();
    assert!(
        text.contains("The email or password is not right."),
        "{text}"
    );

    let cookie = log_in(&app, &client).await;
    let (status, dashboard) = page(&app, &client, &cookie, "/admin").await;
    assert_eq!(status, StatusCode::OK);
    let response = client
        .post(app.url("/admin/logout"))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf_of(&dashboard).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/admin/login");
    let (status, _) = page(&app, &client, &cookie, "/admin").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // The admin API refuses a duplicate operator and a weak password.
    let (status, body) = send(
        app.admin(Method::POST, "/v1/admin/operators")
            .json(&json!({"email": EMAIL, "name": "Again", "password": PASSWORD})),
    )
    .await;
    common::assert_error(status, &body, 409, "operator_email_taken");
    let (status, body) = send(
        app.admin(Method::POST, "/v1/admin/operators")
            .json(&json!({"email": "b@example.com", "name": "B", "password": "short"})),
    )
    .await;
    common::assert_error(status, &body, 422, "password_invalid");
    let (status, body) = send(
        app.bearer(&member.token, Method::POST, "/v1/admin/operators")
            .json(&json!({"email": "c@example.com", "name": "C", "password": PASSWORD})),
    )
    .await;
    common::assert_error(status, &body, 403, "forbidden");
}

#[tokio::test]
async fn settlement_runs_with_their_csv_remittances_and_reconciliations_are_shown() {
    let app = spawn_app().await;
    create_operator(&app).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000;
    let today = settlement::SettlementDate::of_instant(now as i64);
    let yesterday = settlement::SettlementDate::of_instant(now as i64 - 86_400_000_000);
    let (status, run) = send(
        app.admin(Method::POST, "/v1/settlements/runs")
            .json(&json!({"date": yesterday.to_string()})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    let (status, day) = send(
        app.admin(Method::POST, "/v1/reconciliations")
            .json(&json!({"date": today.to_string()})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{day}");

    let client = browser();
    let cookie = log_in(&app, &client).await;
    let (_, runs) = page(&app, &client, &cookie, "/admin/settlements").await;
    assert!(
        runs.contains(&format!("/admin/settlements/{yesterday}")),
        "{runs}"
    );
    let (status, run_page) = page(
        &app,
        &client,
        &cookie,
        &format!("/admin/settlements/{yesterday}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        run_page.contains("Download CSV") && run_page.contains("completed"),
        "{run_page}"
    );
    let response = client
        .get(app.url(&format!("/admin/settlements/{yesterday}/report.csv")))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains(&format!("settlement-{yesterday}.csv")));
    assert_eq!(
        response.text().await.unwrap(),
        format!("{}\n", settlement::CSV_HEADER)
    );
    // Without a session, the report is not served either.
    let anonymous = client
        .get(app.url(&format!("/admin/settlements/{yesterday}/report.csv")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);

    let (status, remittances) = page(&app, &client, &cookie, "/admin/remittances").await;
    assert_eq!(status, StatusCode::OK);
    assert!(remittances.contains("Business remittances"));
    let (_, days) = page(&app, &client, &cookie, "/admin/reconciliations").await;
    assert!(
        days.contains(&format!("/admin/reconciliations/{today}")),
        "{days}"
    );
    let (status, day_page) = page(
        &app,
        &client,
        &cookie,
        &format!("/admin/reconciliations/{today}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        day_page.contains("Safeguarding") && day_page.contains("Mismatches"),
        "{day_page}"
    );
    let (status, _) = page(&app, &client, &cookie, "/admin/reconciliations/not-a-date").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
