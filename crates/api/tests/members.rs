//! Members over HTTP, black-box: sign-up, sessions, the profile, closing, and who may see
//! which member.

mod common;

use common::{
    assert_error, json_of, send, spawn_app, spawn_app_with_manual_clock, TestApp, TestMember,
    MEMBER_PASSWORD,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn me(app: &TestApp, token: &str) -> (StatusCode, Value) {
    send(app.bearer(token, Method::GET, "/v1/members/me")).await
}

async fn patch_me(app: &TestApp, token: &str, body: &Value) -> (StatusCode, Value) {
    send(
        app.bearer(token, Method::PATCH, "/v1/members/me")
            .json(body),
    )
    .await
}

async fn close_me(app: &TestApp, token: &str) -> (StatusCode, Value) {
    send(app.bearer(token, Method::POST, "/v1/members/me/close")).await
}

#[tokio::test]
async fn a_member_signs_up_logs_in_changes_their_profile_and_logs_out() {
    let app = spawn_app().await;
    let (status, member) = send(app.anonymous(Method::POST, "/v1/members").json(&json!({
        "email": " Kim@Example.COM", "phone": "010-1234-5678", "name": "김민수",
        "password": MEMBER_PASSWORD,
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    let id = member["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("usr_") && id.len() == 30, "{id}");
    let mut keys: Vec<&str> = member
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "closed_at",
            "created_at",
            "email",
            "id",
            "name",
            "phone",
            "status",
            "updated_at"
        ],
        "no password or hash is ever shown"
    );
    assert_eq!(member["email"], "kim@example.com");
    assert_eq!(member["phone"], "+821012345678");
    assert_eq!(member["status"], "active");
    assert_eq!(member["closed_at"], Value::Null);

    let response = app
        .anonymous(Method::POST, "/v1/sessions")
        .json(&json!({"email": "KIM@example.com", "password": MEMBER_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, session) = json_of(response).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_eq!(session["member_id"], id.as_str());
    let token = session["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("mps_") && token.len() == 47, "{token}");
    assert!(session["expires_at"].as_str().unwrap().ends_with('Z'));

    let (status, mine) = me(&app, &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine, member);

    let (status, changed) = patch_me(
        &app,
        &token,
        &json!({"name": "Kim Minsu", "phone": "+82 10 8765 4321", "email": "minsu@example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["name"], "Kim Minsu");
    assert_eq!(changed["phone"], "+821087654321");
    assert_eq!(changed["email"], "minsu@example.com");
    assert_eq!(me(&app, &token).await.1, changed);

    let (status, body) = send(app.bearer(&token, Method::DELETE, "/v1/sessions/current")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = me(&app, &token).await;
    assert_error(status, &body, 401, "unauthenticated");
    let (status, body) = send(app.bearer(&token, Method::DELETE, "/v1/sessions/current")).await;
    assert_error(status, &body, 401, "unauthenticated");
    // The new address logs in; the old one no longer names anyone.
    assert_eq!(
        app.log_in("minsu@example.com", MEMBER_PASSWORD).await.0,
        StatusCode::CREATED
    );
    let (status, body) = app.log_in("kim@example.com", MEMBER_PASSWORD).await;
    assert_error(status, &body, 401, "invalid_credentials");
}

#[tokio::test]
async fn an_email_or_phone_already_registered_is_refused_with_409() {
    let app = spawn_app().await;
    let first = app.member("kim@example.com", "010-1234-5678").await;
    for (email, phone, code) in [
        ("KIM@example.com", "010-0000-1111", "email_taken"),
        ("lee@example.com", "+82 10-1234-5678", "phone_taken"),
        ("kim@example.com", "01012345678", "email_taken"),
    ] {
        let (status, body) = send(app.anonymous(Method::POST, "/v1/members").json(&json!({
            "email": email, "phone": phone, "name": "Lee", "password": MEMBER_PASSWORD,
        })))
        .await;
        assert_error(status, &body, 409, code);
    }
    // Nothing was created: the refused phone number is still free.
    app.sign_up("lee@example.com", "010-0000-1111").await;
    let (status, body) = patch_me(&app, &first.token, &json!({"phone": "010-0000-1111"})).await;
    assert_error(status, &body, 409, "phone_taken");
    let (status, body) = patch_me(&app, &first.token, &json!({"email": "LEE@example.com"})).await;
    assert_error(status, &body, 409, "email_taken");
    assert_eq!(me(&app, &first.token).await.1["phone"], "+821012345678");
}

#[tokio::test]
async fn wrong_passwords_and_unknown_addresses_get_one_answer_then_a_lock() {
    let app = spawn_app().await;
    app.sign_up("kim@example.com", "010-1234-5678").await;
    let (status, wrong) = app.log_in("kim@example.com", "wrong password").await;
    assert_error(status, &wrong, 401, "invalid_credentials");
    let (status, unknown) = app.log_in("nobody@example.com", MEMBER_PASSWORD).await;
    assert_error(status, &unknown, 401, "invalid_credentials");
    assert_eq!(wrong["error"]["message"], unknown["error"]["message"]);
    let (status, malformed) = app.log_in("not an address", MEMBER_PASSWORD).await;
    assert_error(status, &malformed, 401, "invalid_credentials");

    for _ in 1..membership::LOGIN_FAILURES_MAX {
        let (status, body) = app.log_in("kim@example.com", "wrong password").await;
        assert_error(status, &body, 401, "invalid_credentials");
    }
    let response = app
        .anonymous(Method::POST, "/v1/sessions")
        .json(&json!({"email": "kim@example.com", "password": MEMBER_PASSWORD}))
        .send()
        .await
        .unwrap();
    let retry_after: i64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=membership::LOGIN_LOCK_S).contains(&retry_after),
        "{retry_after}"
    );
    let (status, body) = json_of(response).await;
    assert_error(status, &body, 429, "login_locked");
}

#[tokio::test]
async fn sessions_expire_when_the_clock_passes_their_expiry() {
    let (app, clock) = spawn_app_with_manual_clock().await;
    let member = app.member("kim@example.com", "010-1234-5678").await;
    let (_, session) = app.log_in("kim@example.com", MEMBER_PASSWORD).await;
    assert_eq!(session["expires_at"], "2026-11-23T00:00:00.000000Z");
    clock.advance_micros(24 * 3600 * 1_000_000 - 1);
    assert_eq!(me(&app, &member.token).await.0, StatusCode::OK);
    clock.advance_micros(1);
    let (status, body) = me(&app, &member.token).await;
    assert_error(status, &body, 401, "unauthenticated");
    // Logging in again gives a fresh day.
    let (status, session) = app.log_in("kim@example.com", MEMBER_PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(session["expires_at"], "2026-11-24T00:00:00.000000Z");
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_logs_every_session_out() {
    let app = spawn_app().await;
    let member = app.member("kim@example.com", "010-1234-5678").await;
    let (_, other_device) = app.log_in("kim@example.com", MEMBER_PASSWORD).await;
    let other_token = other_device["token"].as_str().unwrap();

    let (status, body) = patch_me(
        &app,
        &member.token,
        &json!({"new_password": "a much longer passphrase"}),
    )
    .await;
    assert_error(status, &body, 422, "invalid_request");
    let (status, body) = patch_me(
        &app,
        &member.token,
        &json!({"new_password": "a much longer passphrase", "current_password": "not it at all"}),
    )
    .await;
    assert_error(status, &body, 422, "current_password_incorrect");
    let (status, body) = patch_me(
        &app,
        &member.token,
        &json!({"new_password": "short", "current_password": MEMBER_PASSWORD}),
    )
    .await;
    assert_error(status, &body, 422, "password_invalid");
    assert_eq!(me(&app, other_token).await.0, StatusCode::OK);

    let (status, body) = patch_me(
        &app,
        &member.token,
        &json!({"new_password": "a much longer passphrase", "current_password": MEMBER_PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for token in [member.token.as_str(), other_token] {
        let (status, body) = me(&app, token).await;
        assert_error(status, &body, 401, "unauthenticated");
    }
    let (status, body) = app.log_in("kim@example.com", MEMBER_PASSWORD).await;
    assert_error(status, &body, 401, "invalid_credentials");
    let (status, _) = app
        .log_in("kim@example.com", "a much longer passphrase")
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn closing_is_refused_while_money_remains_then_ends_the_membership() {
    let app = spawn_app().await;
    let member = app.member("kim@example.com", "010-1234-5678").await;
    let money = app
        .account(
            &format!("liability:member:{}:money:KRW", member.id),
            "liability",
            "KRW",
            true,
        )
        .await;
    let master = app
        .account("asset:bank:master", "asset", "KRW", false)
        .await;
    let (status, body) = app.transfer(&master, &money, "15000", "KRW").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (status, body) = close_me(&app, &member.token).await;
    assert_error(status, &body, 409, "balance_remaining");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&format!("liability:member:{}:money:KRW", member.id)));
    let (status, mine) = me(&app, &member.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine["status"], "active");

    let (status, body) = app.transfer(&money, &master, "15000", "KRW").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = send(
        app.bearer(&member.token, Method::POST, "/v1/members/me/close")
            .json(&json!({"reason": "moving abroad"})),
    )
    .await;
    assert_error(status, &body, 400, "invalid_request");
    let (status, closed) = send(
        app.bearer(&member.token, Method::POST, "/v1/members/me/close")
            .json(&json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["status"], "closed");
    assert!(closed["closed_at"].as_str().is_some());

    let (status, body) = me(&app, &member.token).await;
    assert_error(status, &body, 401, "unauthenticated");
    let (status, body) = app.log_in("kim@example.com", MEMBER_PASSWORD).await;
    assert_error(status, &body, 401, "invalid_credentials");
    let (status, seen) = app.get(&format!("/v1/members/{}", member.id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen, closed);
}

/// Every credential a matrix row is tried with.
struct Credentials {
    owner: TestMember,
    other: TestMember,
    admin: String,
    platform: String,
    merchant: String,
    revoked: String,
}

async fn credentials(app: &TestApp) -> Credentials {
    let owner = app.member("owner@example.com", "010-1111-1111").await;
    let other = app.member("other@example.com", "010-2222-2222").await;
    let revoked = app.member("revoked@example.com", "010-3333-3333").await;
    let (status, _) =
        send(app.bearer(&revoked.token, Method::DELETE, "/v1/sessions/current")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    Credentials {
        owner,
        other,
        admin: app.admin_key.clone(),
        platform: app.api_key("platform").await.1,
        merchant: app.merchant("마이커피").await.1,
        revoked: revoked.token,
    }
}

async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.anonymous(method, path);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    send(request).await
}

#[tokio::test]
async fn a_member_reaches_only_their_own_member_resource() {
    let app = spawn_app().await;
    let c = credentials(&app).await;
    let path = format!("/v1/members/{}", c.owner.id);
    let cases: [(&str, Option<&str>, u16, &str); 7] = [
        ("owner", Some(&c.owner.token), 200, ""),
        (
            "other member",
            Some(&c.other.token),
            404,
            "member_not_found",
        ),
        ("admin key", Some(&c.admin), 200, ""),
        ("platform key", Some(&c.platform), 200, ""),
        ("merchant key", Some(&c.merchant), 403, "forbidden"),
        ("no token", None, 401, "unauthenticated"),
        ("revoked token", Some(&c.revoked), 401, "unauthenticated"),
    ];
    for (who, token, status, code) in cases {
        let (got, body) = call(&app, token, Method::GET, &path, None).await;
        if status == 200 {
            assert_eq!(got, StatusCode::OK, "{who}: {body}");
            assert_eq!(body["id"], c.owner.id.as_str(), "{who}");
        } else {
            assert_error(got, &body, status, code);
        }
    }
    // Another member's id and an id that exists nowhere are indistinguishable.
    let missing = "usr_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B";
    let (status, absent) = call(
        &app,
        Some(&c.other.token),
        Method::GET,
        &format!("/v1/members/{missing}"),
        None,
    )
    .await;
    assert_error(status, &absent, 404, "member_not_found");
    let (_, hidden) = call(&app, Some(&c.other.token), Method::GET, &path, None).await;
    assert_eq!(
        hidden["error"]["message"]
            .as_str()
            .unwrap()
            .replace(&c.owner.id, missing),
        absent["error"]["message"].as_str().unwrap()
    );
    for raw in ["nope", "usr_x", missing] {
        let (status, body) = app.get(&format!("/v1/members/{raw}")).await;
        assert_error(status, &body, 404, "member_not_found");
    }
}

#[tokio::test]
async fn the_me_routes_answer_only_a_members_session() {
    let app = spawn_app().await;
    let c = credentials(&app).await;
    let routes: [(Method, &str, Option<Value>); 4] = [
        (Method::GET, "/v1/members/me", None),
        (
            Method::PATCH,
            "/v1/members/me",
            Some(json!({"name": "Mallory"})),
        ),
        (Method::POST, "/v1/members/me/close", None),
        (Method::DELETE, "/v1/sessions/current", None),
    ];
    for (method, path, body) in &routes {
        for (who, token, status, code) in [
            ("admin key", Some(c.admin.as_str()), 403, "forbidden"),
            ("platform key", Some(c.platform.as_str()), 403, "forbidden"),
            ("merchant key", Some(c.merchant.as_str()), 403, "forbidden"),
            ("no token", None, 401, "unauthenticated"),
            (
                "revoked token",
                Some(c.revoked.as_str()),
                401,
                "unauthenticated",
            ),
            (
                "garbage token",
                Some("mps_not-a-token"),
                401,
                "unauthenticated",
            ),
        ] {
            let (got, answer) = call(&app, token, method.clone(), path, body.clone()).await;
            assert_error(got, &answer, status, code);
            assert!(answer["error"]["code"] == code, "{who} {method} {path}");
        }
    }
    // Another member's token only ever acts on that member.
    let (status, theirs) = patch_me(&app, &c.other.token, &json!({"name": "Other"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(theirs["id"], c.other.id.as_str());
    let (status, mine) = me(&app, &c.owner.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine["name"], "김민수", "no one else changed the owner");
    assert_eq!(mine["status"], "active");

    // The owner passes every route; closing and logging out come last.
    let (status, _) = patch_me(&app, &c.owner.token, &json!({"name": "Owner"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = close_me(&app, &c.owner.token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) =
        send(app.bearer(&c.other.token, Method::DELETE, "/v1/sessions/current")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(me(&app, &c.other.token).await.0, StatusCode::UNAUTHORIZED);

    // A member's token opens no operator route.
    let fresh = app.member("fresh@example.com", "010-4444-4444").await;
    for (method, path) in [
        (Method::GET, "/v1/ledger/accounts"),
        (Method::POST, "/v1/ledger/transactions"),
        (Method::GET, "/v1/admin/api-keys"),
    ] {
        let (status, body) = call(&app, Some(&fresh.token), method, path, Some(json!({}))).await;
        assert_error(status, &body, 403, "forbidden");
    }
}

#[tokio::test]
async fn bad_input_gets_a_clear_code_and_changes_nothing() {
    let app = spawn_app().await;
    let valid = json!({
        "email": "kim@example.com", "phone": "010-1234-5678", "name": "김민수",
        "password": MEMBER_PASSWORD,
    });
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let mut missing = valid.clone();
    missing.as_object_mut().unwrap().remove("phone");
    let cases = [
        (missing, 400, "invalid_request"),
        (with("phone", json!(1012345678)), 400, "invalid_request"),
        (with("password", json!(null)), 400, "invalid_request"),
        (with("referrer", json!("x")), 400, "invalid_request"),
        (with("email", json!("kim@")), 422, "email_invalid"),
        (with("email", json!("x".repeat(300))), 422, "email_invalid"),
        (with("phone", json!("02-123-4567")), 422, "phone_invalid"),
        (with("phone", json!("+1 23")), 422, "phone_invalid"),
        (with("name", json!("  ")), 422, "name_invalid"),
        (with("password", json!("short")), 422, "password_invalid"),
        (
            with("password", json!("x".repeat(129))),
            422,
            "password_invalid",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = send(app.anonymous(Method::POST, "/v1/members").json(&body)).await;
        assert_error(got, &answer, status, code);
    }
    let (status, body) = send(
        app.anonymous(Method::POST, "/v1/members")
            .header("content-type", "text/plain")
            .body(valid.to_string()),
    )
    .await;
    assert_error(status, &body, 400, "invalid_request");
    // None of them created the member.
    let (status, body) = app.log_in("kim@example.com", MEMBER_PASSWORD).await;
    assert_error(status, &body, 401, "invalid_credentials");

    let member = app.member("kim@example.com", "010-1234-5678").await;
    let before = me(&app, &member.token).await.1;
    for (body, status, code) in [
        (json!({"nickname": "x"}), 400, "invalid_request"),
        (json!({"name": 7}), 400, "invalid_request"),
        (json!({"email": "not-an-address"}), 422, "email_invalid"),
        (
            json!({"name": "ok", "phone": "12345"}),
            422,
            "phone_invalid",
        ),
        (json!({"name": "\u{7}"}), 422, "name_invalid"),
        (
            json!({"current_password": MEMBER_PASSWORD}),
            422,
            "invalid_request",
        ),
    ] {
        let (got, answer) = patch_me(&app, &member.token, &body).await;
        assert_error(got, &answer, status, code);
    }
    assert_eq!(me(&app, &member.token).await.1, before);

    for body in [
        json!({"email": "kim@example.com"}),
        json!({"email": "kim@example.com", "password": MEMBER_PASSWORD, "remember": true}),
        json!({"email": "kim@example.com", "password": 12345678901_i64}),
    ] {
        let (status, answer) = send(app.anonymous(Method::POST, "/v1/sessions").json(&body)).await;
        assert_error(status, &answer, 400, "invalid_request");
    }
}
