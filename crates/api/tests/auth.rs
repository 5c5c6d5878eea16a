//! Authentication and authorisation: the matrix of credentials against every ledger route, and
//! the API-key lifecycle.

mod common;

use common::{assert_error, json_of, send, spawn_app, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Every ledger and admin route, with concrete paths.
const PROTECTED: &[(&str, &str)] = &[
    ("POST", "/v1/ledger/accounts"),
    ("GET", "/v1/ledger/accounts"),
    ("GET", "/v1/ledger/accounts/acc_x"),
    ("GET", "/v1/ledger/accounts/acc_x/balance"),
    ("GET", "/v1/ledger/accounts/acc_x/history"),
    ("POST", "/v1/ledger/transactions"),
    ("GET", "/v1/ledger/transactions/ltx_x"),
    ("POST", "/v1/ledger/holds"),
    ("GET", "/v1/ledger/holds/hld_x"),
    ("POST", "/v1/ledger/holds/hld_x/post"),
    ("POST", "/v1/ledger/holds/hld_x/void"),
    ("POST", "/v1/admin/api-keys"),
    ("GET", "/v1/admin/api-keys"),
    ("POST", "/v1/admin/api-keys/key_x/revoke"),
];

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    authorization: Option<&str>,
) -> (StatusCode, serde_json::Value, bool) {
    let mut request = app
        .client
        .request(common::method(method), app.url(path))
        .json(&json!({}));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.unwrap();
    let challenged = response
        .headers()
        .get("www-authenticate")
        .is_some_and(|v| v.to_str().unwrap().starts_with("Bearer"));
    let (status, body) = json_of(response).await;
    (status, body, challenged)
}

#[tokio::test]
async fn every_protected_route_refuses_missing_bad_revoked_and_non_admin_keys() {
    let app = spawn_app().await;
    let (revoked_id, revoked_secret) = app.api_key("admin").await;
    let (status, _) = app
        .post(
            &format!("/v1/admin/api-keys/{revoked_id}/revoke"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, merchant_secret) = app.merchant("마이커피").await;
    let (_, platform_secret) = app.api_key("platform").await;

    let unauthenticated = [
        None,
        Some("Bearer".to_owned()),
        Some("Basic dXNlcjpwYXNz".to_owned()),
        Some("Bearer mpk_not_a_real_key".to_owned()),
        Some(format!("Bearer {}", "k".repeat(300))),
        Some(format!("Bearer {revoked_secret}")),
    ];
    for (method, path) in PROTECTED {
        for authorization in &unauthenticated {
            let (status, body, challenged) =
                call(&app, method, path, authorization.as_deref()).await;
            assert_error(status, &body, 401, "unauthenticated");
            assert!(
                challenged,
                "{method} {path} {authorization:?}: no WWW-Authenticate"
            );
        }
        for secret in [&merchant_secret, &platform_secret] {
            let (status, body, _) =
                call(&app, method, path, Some(&format!("Bearer {secret}"))).await;
            assert_error(status, &body, 403, "forbidden");
        }
    }
}

#[tokio::test]
async fn refused_callers_move_no_money() {
    let app = spawn_app().await;
    let (wallet, bank) = common::funded_wallet(&app, "auth", "KRW", "1000").await;
    let (_, merchant_secret) = app.merchant("마이커피").await;
    let body = common::transfer_body(None, &wallet, &bank, "400", "KRW");
    let (status, error) = send(
        app.client
            .post(app.url("/v1/ledger/transactions"))
            .bearer_auth(&merchant_secret)
            .header("idempotency-key", "merchant-try")
            .json(&body),
    )
    .await;
    assert_error(status, &error, 403, "forbidden");
    assert_eq!(app.balance(&wallet).await["posted"], "1000");
}

#[tokio::test]
async fn api_keys_are_created_listed_and_revoked() {
    let app = spawn_app().await;
    let (status, created) = app
        .post(
            "/v1/admin/api-keys",
            &json!({"role": "platform", "name": "settlement-batch"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(id.starts_with("key_"));
    assert!(secret.starts_with("mpk_") && secret.len() == 47, "{secret}");
    assert!(secret[4..]
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_eq!(created["role"], "platform");
    assert_eq!(created["name"], "settlement-batch");

    let (status, listed) = app.get("/v1/admin/api-keys").await;
    assert_eq!(status, StatusCode::OK);
    let keys = listed["data"].as_array().unwrap();
    assert_eq!(
        keys.len(),
        2,
        "the configured admin key and the new one: {listed}"
    );
    let mine = keys.iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert_eq!(
        mine,
        &json!({"id": id, "role": "platform", "name": "settlement-batch", "merchant_id": null, "created_at": created["created_at"], "revoked_at": null})
    );
    assert!(
        !listed.to_string().contains(&secret),
        "secrets are never listed"
    );
    let (_, page) = app.get("/v1/admin/api-keys?limit=1").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert!(page["next_cursor"].as_str().is_some());

    // The new key authenticates (and, being a platform key, is forbidden on admin routes).
    let (status, body) = send(
        app.client
            .get(app.url("/v1/ledger/accounts"))
            .bearer_auth(&secret),
    )
    .await;
    assert_error(status, &body, 403, "forbidden");

    let (status, revoked) = app
        .post(&format!("/v1/admin/api-keys/{id}/revoke"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let revoked_at = revoked["revoked_at"].as_str().unwrap().to_owned();
    let (status, body) = send(
        app.client
            .get(app.url("/v1/ledger/accounts"))
            .bearer_auth(&secret),
    )
    .await;
    assert_error(status, &body, 401, "unauthenticated");
    let (_, again) = app
        .post(&format!("/v1/admin/api-keys/{id}/revoke"), &json!({}))
        .await;
    assert_eq!(
        again["revoked_at"],
        revoked_at.as_str(),
        "revoking twice keeps the first time"
    );

    let (status, body) = app
        .post("/v1/admin/api-keys/key_missing/revoke", &json!({}))
        .await;
    assert_error(status, &body, 404, "api_key_not_found");
    let (status, body) = app
        .post("/v1/admin/api-keys", &json!({"role": "root", "name": "x"}))
        .await;
    assert_error(status, &body, 400, "invalid_request");
    let (status, body) = app
        .post("/v1/admin/api-keys", &json!({"role": "admin", "name": ""}))
        .await;
    assert_error(status, &body, 422, "invalid_request");
}

#[tokio::test]
async fn ensure_admin_key_generates_one_only_when_none_exists() {
    let app = spawn_app().await;
    // The configured key exists, so nothing is generated, and storing it again is harmless.
    assert!(api::ensure_admin_key(&app.db.db, None)
        .await
        .unwrap()
        .is_none());
    let configured = api::Secret::new(common::ADMIN_KEY.to_owned());
    assert!(api::ensure_admin_key(&app.db.db, Some(&configured))
        .await
        .unwrap()
        .is_none());
    let (_, listed) = app.get("/v1/admin/api-keys").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);

    let (status, _) = send(app.admin(
        Method::POST,
        &format!(
            "/v1/admin/api-keys/{}/revoke",
            listed["data"][0]["id"].as_str().unwrap()
        ),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    let generated = api::ensure_admin_key(&app.db.db, None)
        .await
        .unwrap()
        .expect("a new admin key");
    assert_eq!(format!("{generated:?}"), "Secret(***)");
    assert!(generated.expose().starts_with("mpk_"));
    let (status, listed) = send(
        app.client
            .get(app.url("/v1/admin/api-keys"))
            .bearer_auth(generated.expose()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    assert!(api::ensure_admin_key(&app.db.db, None)
        .await
        .unwrap()
        .is_none());
}
