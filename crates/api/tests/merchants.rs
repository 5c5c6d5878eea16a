//! Merchants over HTTP, black-box, against the in-process sandbox bank: onboarding with the
//! settlement account's holder checked at the bank, fee rates, masking, paging, suspension, a
//! new settlement account, keys bound to a merchant, and who may see and change what.

mod common;

use banking::sandbox::{FaultKind, FaultOp, FaultRule};
use common::{assert_error, send, spawn_app, TestApp, MERCHANT_BANK};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const NUMBER: &str = "110123456789";
const HOLDER: &str = "(주)마이커피";

/// An onboarding body for `number`, held (the caller says) by `holder`.
fn onboarding(name: &str, fee_bps: Value, number: &str, holder: &str) -> Value {
    json!({
        "name": name,
        "fee_bps": fee_bps,
        "settlement_account": {
            "bank_code": MERCHANT_BANK, "account_number": number, "holder_name": holder,
        },
    })
}

/// Onboards with the admin key and a fresh Idempotency-Key.
async fn onboard(app: &TestApp, body: &Value) -> (StatusCode, Value) {
    send(
        app.admin(Method::POST, "/v1/merchants")
            .header("Idempotency-Key", ulid::Ulid::new().to_string())
            .json(body),
    )
    .await
}

/// A coffee shop whose settlement account is `NUMBER`, held by `HOLDER`.
async fn coffee_shop(app: &TestApp) -> Value {
    app.open_bank_account(MERCHANT_BANK, NUMBER, HOLDER).await;
    let (status, body) = onboard(
        app,
        &onboarding("마이커피 강남점", json!(250), NUMBER, HOLDER),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn merchant_count(app: &TestApp) -> usize {
    let (status, list) = app.get("/v1/merchants").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn onboarding_checks_the_holder_at_the_bank_and_shows_the_account_masked() {
    let app = spawn_app().await;
    app.open_bank_account(MERCHANT_BANK, NUMBER, HOLDER).await;
    // The bank prints the name its own way; spaces do not count.
    let body = onboarding(
        "  마이커피 강남점 ",
        json!(250),
        "110-123-456789",
        "(주) 마이커피",
    );
    let request = || {
        app.admin(Method::POST, "/v1/merchants")
            .header("Idempotency-Key", "onboard-coffee")
            .json(&body)
    };
    let response = request().send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let merchant: Value = response.json().await.unwrap();
    let id = merchant["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("mer_") && id.len() == 30, "{id}");
    assert_eq!(merchant["name"], "마이커피 강남점");
    assert_eq!(merchant["status"], "active");
    assert_eq!(merchant["fee_bps"], 250);
    assert_eq!(
        merchant["settlement_account"],
        json!({
            "bank_code": MERCHANT_BANK,
            "account_number_masked": "***-***-6789",
            "holder_name_masked": "(******",
        })
    );
    assert!(!merchant.to_string().contains("0123456"), "{merchant}");
    assert!(!merchant.to_string().contains(HOLDER), "{merchant}");

    let (status, read) = app.get(&format!("/v1/merchants/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, merchant);

    let replay = request().send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(replay.headers()["idempotency-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap(), merchant);
    let (status, error) = send(
        app.admin(Method::POST, "/v1/merchants")
            .header("Idempotency-Key", "onboard-coffee")
            .json(&onboarding("another", json!(250), NUMBER, HOLDER)),
    )
    .await;
    assert_error(status, &error, 422, "idempotency_key_reused");
    assert_eq!(merchant_count(&app).await, 1);
}

#[tokio::test]
async fn a_refused_holder_check_stores_nothing() {
    let app = spawn_app().await;
    app.open_bank_account(MERCHANT_BANK, NUMBER, "홍길동").await;
    let (status, error) = onboard(&app, &onboarding("shop", json!(250), NUMBER, HOLDER)).await;
    assert_error(status, &error, 422, "holder_name_mismatch");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("홍**") && !message.contains("홍길동"),
        "{message}"
    );

    let (status, error) = onboard(
        &app,
        &onboarding("shop", json!(250), "999000111222", HOLDER),
    )
    .await;
    assert_error(status, &error, 422, "bank_account_not_found");

    app.bank
        .faults()
        .replace(vec![FaultRule::next(
            FaultOp::RealName,
            FaultKind::Error,
            1,
        )])
        .unwrap();
    let (status, error) = onboard(&app, &onboarding("shop", json!(250), NUMBER, "홍길동")).await;
    assert_error(status, &error, 503, "bank_unavailable");
    assert_eq!(merchant_count(&app).await, 0);

    // The same request once the bank answers again: onboarded.
    let (status, merchant) = onboard(&app, &onboarding("shop", json!(250), NUMBER, "홍길동")).await;
    assert_eq!(status, StatusCode::CREATED, "{merchant}");
}

#[tokio::test]
async fn fee_rates_are_integer_basis_points_from_0_to_10000() {
    let app = spawn_app().await;
    app.open_bank_account(MERCHANT_BANK, NUMBER, HOLDER).await;
    for fee in [json!(0), json!(10000)] {
        let (status, body) = onboard(&app, &onboarding("shop", fee.clone(), NUMBER, HOLDER)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["fee_bps"], fee);
    }
    for fee in [
        json!(10001),
        json!(-1),
        json!(2.5),
        json!(250.0),
        json!("250"),
        json!(null),
        json!(1e3),
    ] {
        let (status, body) = onboard(&app, &onboarding("shop", fee.clone(), NUMBER, HOLDER)).await;
        assert_error(status, &body, 422, "fee_bps_invalid");
    }
    let mut missing = onboarding("shop", json!(1), NUMBER, HOLDER);
    missing.as_object_mut().unwrap().remove("fee_bps");
    let (status, body) = onboard(&app, &missing).await;
    assert_error(status, &body, 400, "invalid_request");

    let (_, list) = app.get("/v1/merchants").await;
    let id = list["data"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/merchants/{id}");
    for fee in [json!(10001), json!(2.5), json!("300")] {
        let (status, body) = send(
            app.admin(Method::PATCH, &path)
                .json(&json!({"fee_bps": fee})),
        )
        .await;
        assert_error(status, &body, 422, "fee_bps_invalid");
    }
    let (status, body) = send(
        app.admin(Method::PATCH, &path)
            .json(&json!({"fee_bps": 300})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["fee_bps"], 300);
}

#[tokio::test]
async fn bad_input_is_refused_before_the_bank_is_asked() {
    let app = spawn_app().await;
    app.bank
        .faults()
        .replace(vec![FaultRule::next(
            FaultOp::RealName,
            FaultKind::Error,
            100,
        )])
        .unwrap();
    let cases = [
        (
            onboarding(" ", json!(1), NUMBER, HOLDER),
            "merchant_name_invalid",
        ),
        (
            onboarding(&"가".repeat(101), json!(1), NUMBER, HOLDER),
            "merchant_name_invalid",
        ),
        (
            onboarding("shop", json!(1), "12-34", HOLDER),
            "account_number_invalid",
        ),
        (
            onboarding("shop", json!(1), NUMBER, " "),
            "holder_name_invalid",
        ),
        (
            json!({"name": "shop", "fee_bps": 1, "settlement_account": {
                "bank_code": "88", "account_number": NUMBER, "holder_name": HOLDER}}),
            "bank_code_invalid",
        ),
    ];
    for (body, code) in cases {
        let (status, error) = onboard(&app, &body).await;
        assert_error(status, &error, 422, code);
        assert!(!error.to_string().contains(NUMBER), "{error}");
    }
    let mut unknown = onboarding("shop", json!(1), NUMBER, HOLDER);
    unknown["country"] = json!("KR");
    let (status, error) = onboard(&app, &unknown).await;
    assert_error(status, &error, 400, "invalid_request");
}

#[tokio::test]
async fn who_may_see_and_change_merchants() {
    let app = spawn_app().await;
    let (shop, shop_key) = app.merchant("마이커피").await;
    let (other, other_key) = app.merchant("너의빵집").await;
    let (_, platform) = app.api_key("platform").await;
    let member = app.member("m1@example.com", "010-2000-0001").await;
    app.open_bank_account(MERCHANT_BANK, NUMBER, HOLDER).await;
    let new = onboarding("new shop", json!(100), NUMBER, HOLDER);
    let settlement =
        json!({"bank_code": MERCHANT_BANK, "account_number": NUMBER, "holder_name": HOLDER});
    let operator_routes = |id: &str| -> Vec<(Method, String, Value)> {
        vec![
            (Method::POST, "/v1/merchants".into(), new.clone()),
            (Method::GET, "/v1/merchants".into(), Value::Null),
            (Method::GET, format!("/v1/merchants/{id}"), Value::Null),
            (
                Method::PATCH,
                format!("/v1/merchants/{id}"),
                json!({"fee_bps": 200}),
            ),
            (
                Method::PUT,
                format!("/v1/merchants/{id}/settlement-account"),
                settlement.clone(),
            ),
            (
                Method::POST,
                format!("/v1/merchants/{id}/api-keys"),
                json!({"name": "ops"}),
            ),
        ]
    };
    let call = |token: Option<String>, method: Method, path: String, body: Value| {
        let mut request = app.client.request(method, app.url(&path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if !body.is_null() {
            request = request.json(&body);
        }
        send(request)
    };

    for (method, path, body) in operator_routes(&shop) {
        let (status, error) = call(None, method.clone(), path.clone(), body.clone()).await;
        assert_error(status, &error, 401, "unauthenticated");
        let (status, error) = call(
            Some(member.token.clone()),
            method.clone(),
            path.clone(),
            body.clone(),
        )
        .await;
        assert_error(status, &error, 403, "forbidden");
        let (status, answer) =
            call(Some(platform.clone()), method.clone(), path.clone(), body).await;
        assert!(
            status.is_success(),
            "platform {method} {path}: {status} {answer}"
        );
    }
    for (method, path, body) in operator_routes(&shop) {
        if method == Method::GET && path.ends_with(&shop) {
            continue;
        }
        let (status, error) =
            call(Some(shop_key.clone()), method.clone(), path.clone(), body).await;
        assert_error(status, &error, 403, "forbidden");
    }

    // A merchant key reads its own merchant; another merchant's is exactly like a missing one.
    let (status, own) = call(
        Some(shop_key.clone()),
        Method::GET,
        format!("/v1/merchants/{shop}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(own["id"], shop.as_str());
    for id in [other.as_str(), "mer_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B", "nope"] {
        let (status, error) = call(
            Some(shop_key.clone()),
            Method::GET,
            format!("/v1/merchants/{id}"),
            Value::Null,
        )
        .await;
        assert_error(status, &error, 404, "merchant_not_found");
    }
    let (status, theirs) = call(
        Some(other_key),
        Method::GET,
        format!("/v1/merchants/{other}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{theirs}");
    // Merchant keys still reach nothing of members'.
    let (status, error) = call(
        Some(shop_key),
        Method::GET,
        format!("/v1/members/{}", member.id),
        Value::Null,
    )
    .await;
    assert_error(status, &error, 403, "forbidden");
}

#[tokio::test]
async fn merchant_keys_are_bound_to_an_existing_merchant() {
    let app = spawn_app().await;
    let shop = coffee_shop(&app).await;
    let id = shop["id"].as_str().unwrap().to_owned();
    let (_, platform) = app.api_key("platform").await;

    let response = app
        .bearer(
            &platform,
            Method::POST,
            &format!("/v1/merchants/{id}/api-keys"),
        )
        .json(&json!({"name": "shop-backend"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let key: Value = response.json().await.unwrap();
    assert_eq!(key["role"], "merchant");
    assert_eq!(key["merchant_id"], id.as_str());
    assert_eq!(key["name"], "shop-backend");
    let secret = key["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("mpk_"));
    let (status, read) =
        send(app.bearer(&secret, Method::GET, &format!("/v1/merchants/{id}"))).await;
    assert_eq!(status, StatusCode::OK, "{read}");

    let (_, keys) = app.get("/v1/admin/api-keys").await;
    let listed = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key["id"])
        .unwrap();
    assert_eq!(listed["merchant_id"], id.as_str());
    assert!(!keys.to_string().contains(&secret));

    let (status, error) = app
        .post(
            "/v1/merchants/mer_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B/api-keys",
            &json!({"name": "x"}),
        )
        .await;
    assert_error(status, &error, 404, "merchant_not_found");
    let (status, error) = app
        .post(
            &format!("/v1/merchants/{id}/api-keys"),
            &json!({"name": ""}),
        )
        .await;
    assert_error(status, &error, 422, "invalid_request");

    // The admin route binds merchant keys too, and only them.
    let (status, bound) = app
        .post(
            "/v1/admin/api-keys",
            &json!({"role": "merchant", "name": "pos", "merchant_id": id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bound}");
    assert_eq!(bound["merchant_id"], id.as_str());
    for (body, code) in [
        (
            json!({"role": "merchant", "name": "pos"}),
            "merchant_id_required",
        ),
        (
            json!({"role": "merchant", "name": "pos", "merchant_id": "mer_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B"}),
            "merchant_id_unknown",
        ),
        (
            json!({"role": "merchant", "name": "pos", "merchant_id": "shop"}),
            "merchant_id_unknown",
        ),
        (
            json!({"role": "platform", "name": "ops", "merchant_id": id}),
            "merchant_id_not_allowed",
        ),
        (
            json!({"role": "admin", "name": "ops", "merchant_id": id}),
            "merchant_id_not_allowed",
        ),
    ] {
        let (status, error) = app.post("/v1/admin/api-keys", &body).await;
        assert_error(status, &error, 422, code);
    }
    let (_, keys) = app.get("/v1/admin/api-keys").await;
    assert_eq!(
        keys["data"].as_array().unwrap().len(),
        4,
        "admin, platform, two bound"
    );
}

#[tokio::test]
async fn merchants_page_by_cursor() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(app.merchant(&format!("가게{n}")).await.0);
    }
    let mut seen = Vec::new();
    let mut path = "/v1/merchants?limit=2".to_owned();
    loop {
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        for merchant in data {
            assert!(merchant["settlement_account"]["account_number_masked"]
                .as_str()
                .unwrap()
                .starts_with("***-***-"));
            seen.push(merchant["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/merchants?limit=2&after={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    for limit in ["0", "501", "x"] {
        let (status, error) = app.get(&format!("/v1/merchants?limit={limit}")).await;
        assert_error(status, &error, 400, "invalid_request");
    }
}

#[tokio::test]
async fn suspended_merchants_stay_readable_and_can_resume() {
    let app = spawn_app().await;
    let (id, key) = app.merchant("마이커피").await;
    let path = format!("/v1/merchants/{id}");
    let (status, suspended) = send(
        app.admin(Method::PATCH, &path)
            .json(&json!({"status": "suspended"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{suspended}");
    assert_eq!(suspended["status"], "suspended");
    assert_eq!(suspended["fee_bps"], 250, "untouched fields stay");
    let (status, own) = send(app.bearer(&key, Method::GET, &path)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(own["status"], "suspended");

    let (status, resumed) = send(
        app.admin(Method::PATCH, &path)
            .json(&json!({"status": "active", "name": "마이커피 2호점"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{resumed}");
    assert_eq!(resumed["status"], "active");
    assert_eq!(resumed["name"], "마이커피 2호점");
    assert_eq!(resumed["created_at"], suspended["created_at"]);

    let (status, error) = send(
        app.admin(Method::PATCH, &path)
            .json(&json!({"status": "closed"})),
    )
    .await;
    assert_error(status, &error, 400, "invalid_request");
    let (status, error) = send(app.admin(Method::PATCH, &path).json(&json!({"name": ""}))).await;
    assert_error(status, &error, 422, "merchant_name_invalid");
    let (status, error) = send(
        app.admin(
            Method::PATCH,
            "/v1/merchants/mer_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B",
        )
        .json(&json!({"status": "active"})),
    )
    .await;
    assert_error(status, &error, 404, "merchant_not_found");
}

#[tokio::test]
async fn a_new_settlement_account_is_checked_and_shown_masked() {
    let app = spawn_app().await;
    let shop = coffee_shop(&app).await;
    let path = format!(
        "/v1/merchants/{}/settlement-account",
        shop["id"].as_str().unwrap()
    );
    app.open_bank_account("004", "440000005555", "홍길동").await;
    let change = |holder: &str| json!({"bank_code": "004", "account_number": "4400-0000-5555", "holder_name": holder});
    let (status, error) = send(app.admin(Method::PUT, &path).json(&change(HOLDER))).await;
    assert_error(status, &error, 422, "holder_name_mismatch");
    let (_, unchanged) = app
        .get(&format!("/v1/merchants/{}", shop["id"].as_str().unwrap()))
        .await;
    assert_eq!(unchanged["settlement_account"], shop["settlement_account"]);

    let (status, changed) = send(app.admin(Method::PUT, &path).json(&change("홍길동"))).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        changed["settlement_account"],
        json!({"bank_code": "004", "account_number_masked": "***-***-5555", "holder_name_masked": "홍**"})
    );
    assert!(!changed.to_string().contains("440000005555"));
    let (status, error) = send(
        app.admin(Method::PUT, "/v1/merchants/nope/settlement-account")
            .json(&change("홍길동")),
    )
    .await;
    assert_error(status, &error, 404, "merchant_not_found");
}
