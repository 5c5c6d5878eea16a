//! The Idempotency-Key header on money-moving routes.

mod common;

use common::{assert_error, funded_wallet, json_of, spawn_app, transfer_body, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn keyed(
    app: &TestApp,
    secret: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> (StatusCode, Value, Option<String>) {
    let response = app
        .client
        .post(app.url(path))
        .bearer_auth(secret)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let replayed = response
        .headers()
        .get("idempotency-replayed")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = json_of(response).await;
    (status, body, replayed)
}

async fn history_len(app: &TestApp, account: &str) -> usize {
    let (_, history) = app
        .get(&format!("/v1/ledger/accounts/{account}/history"))
        .await;
    history["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn the_same_key_and_body_replay_the_first_response() {
    let app = spawn_app().await;
    let (wallet, bank) = funded_wallet(&app, "idem", "KRW", "10000").await;
    let body = transfer_body(None, &wallet, &bank, "1500", "KRW");
    let path = "/v1/ledger/transactions";

    let (status, first, replayed) = keyed(&app, &app.admin_key, path, "pay-1", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(replayed, None);
    let id = first["id"].as_str().unwrap();
    assert!(
        id.starts_with("ltx_") && id.len() == 36,
        "an id derived from the key: {id}"
    );

    let (status, second, replayed) = keyed(&app, &app.admin_key, path, "pay-1", &body).await;
    assert_eq!(status, StatusCode::CREATED, "the stored status");
    assert_eq!(replayed.as_deref(), Some("true"));
    assert_eq!(second, first);

    let mut other = body.clone();
    other["postings"][0]["amount"] = json!("1600");
    other["postings"][1]["amount"] = json!("1600");
    let (status, error, _) = keyed(&app, &app.admin_key, path, "pay-1", &other).await;
    assert_error(status, &error, 422, "idempotency_key_reused");
    let (status, error, _) = keyed(
        &app,
        &app.admin_key,
        "/v1/ledger/holds",
        "pay-1",
        &json!({}),
    )
    .await;
    assert_error(status, &error, 422, "idempotency_key_reused");

    assert_eq!(app.balance(&wallet).await["posted"], "8500");
    assert_eq!(history_len(&app, &wallet).await, 2);
}

#[tokio::test]
async fn keys_are_scoped_to_the_caller() {
    let app = spawn_app().await;
    let (wallet, bank) = funded_wallet(&app, "scope", "KRW", "10000").await;
    let (_, other_admin) = app.api_key("admin").await;
    let body = transfer_body(None, &wallet, &bank, "1000", "KRW");
    let (status, first, _) = keyed(
        &app,
        &app.admin_key,
        "/v1/ledger/transactions",
        "same-key",
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, second, replayed) = keyed(
        &app,
        &other_admin,
        "/v1/ledger/transactions",
        "same-key",
        &body,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "another caller's key is another key"
    );
    assert_eq!(replayed, None);
    assert_ne!(first["id"], second["id"]);
    assert_eq!(app.balance(&wallet).await["posted"], "8000");
}

#[tokio::test]
async fn client_errors_are_stored_and_server_errors_are_not() {
    let app = spawn_app().await;
    let (wallet, bank) = funded_wallet(&app, "err", "KRW", "100").await;
    let too_much = transfer_body(None, &wallet, &bank, "101", "KRW");
    let (status, first, _) = keyed(
        &app,
        &app.admin_key,
        "/v1/ledger/transactions",
        "err-1",
        &too_much,
    )
    .await;
    assert_error(status, &first, 422, "insufficient_funds");
    // Funding arrives, but the key's outcome is already decided: the stored refusal replays.
    let (status, _) = app.transfer(&bank, &wallet, "50", "KRW").await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, second, replayed) = keyed(
        &app,
        &app.admin_key,
        "/v1/ledger/transactions",
        "err-1",
        &too_much,
    )
    .await;
    assert_eq!(status.as_u16(), 422);
    assert_eq!(replayed.as_deref(), Some("true"));
    assert_eq!(second, first, "verbatim, including the first request id");
    assert_eq!(app.balance(&wallet).await["posted"], "150");
}

#[tokio::test]
async fn malformed_keys_are_refused() {
    let app = spawn_app().await;
    let (wallet, bank) = funded_wallet(&app, "badkey", "KRW", "100").await;
    let body = transfer_body(None, &wallet, &bank, "1", "KRW");
    for key in ["", "has space", &"k".repeat(256)] {
        let (status, error, _) =
            keyed(&app, &app.admin_key, "/v1/ledger/transactions", key, &body).await;
        assert_error(status, &error, 400, "invalid_request");
    }
    assert_eq!(app.balance(&wallet).await["posted"], "100");
}

#[tokio::test]
async fn holds_post_and_void_honour_the_key() {
    let app = spawn_app().await;
    let (wallet, bank) = funded_wallet(&app, "hk", "KRW", "10000").await;
    let hold_body = json!({"debit_account_id": wallet, "credit_account_id": bank, "amount": "4000", "currency": "KRW"});
    let (status, hold, _) = keyed(
        &app,
        &app.admin_key,
        "/v1/ledger/holds",
        "hold-1",
        &hold_body,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let (status, again, replayed) = keyed(
        &app,
        &app.admin_key,
        "/v1/ledger/holds",
        "hold-1",
        &hold_body,
    )
    .await;
    assert_eq!(
        (status, replayed.as_deref()),
        (StatusCode::CREATED, Some("true"))
    );
    assert_eq!(again, hold);
    assert_eq!(app.balance(&wallet).await["held"], "4000");

    let hold_id = hold["id"].as_str().unwrap();
    let post_path = format!("/v1/ledger/holds/{hold_id}/post");
    let (status, posted, _) = keyed(
        &app,
        &app.admin_key,
        &post_path,
        "post-1",
        &json!({"amount": "1000"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{posted}");
    let (status, again, replayed) = keyed(
        &app,
        &app.admin_key,
        &post_path,
        "post-1",
        &json!({"amount": "1000"}),
    )
    .await;
    assert_eq!(
        (status, replayed.as_deref()),
        (StatusCode::OK, Some("true"))
    );
    assert_eq!(again, posted);
    let balance = app.balance(&wallet).await;
    assert_eq!(
        (balance["posted"].as_str(), balance["held"].as_str()),
        (Some("9000"), Some("0"))
    );
}

#[tokio::test]
async fn concurrent_requests_with_one_key_have_exactly_one_effect() {
    let app = spawn_app().await;
    let (wallet, bank) = funded_wallet(&app, "race", "KRW", "100000").await;
    let body = transfer_body(None, &wallet, &bank, "700", "KRW");
    let requests = (0..16).map(|_| {
        let request = app
            .admin(Method::POST, "/v1/ledger/transactions")
            .header("idempotency-key", "race-1")
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            let replayed = response.headers().contains_key("idempotency-replayed");
            let (status, body) = json_of(response).await;
            (status, body, replayed)
        }
    });
    let outcomes = spawn_all(requests).await;
    let mut created = Vec::new();
    let mut replays = 0;
    let mut in_progress = 0;
    for (status, body, replayed) in &outcomes {
        match (status.as_u16(), replayed) {
            (201, false) => created.push(body["id"].clone()),
            (201, true) => replays += 1,
            (409, _) => {
                assert_eq!(
                    body["error"]["code"], "idempotency_request_in_progress",
                    "{body}"
                );
                in_progress += 1;
            }
            other => panic!("unexpected outcome {other:?}: {body}"),
        }
    }
    assert_eq!(created.len(), 1, "exactly one request ran: {outcomes:?}");
    assert_eq!(created.len() + replays + in_progress, 16);
    for (status, body, replayed) in &outcomes {
        if status.as_u16() == 201 && *replayed {
            assert_eq!(body["id"], created[0]);
        }
    }
    assert_eq!(app.balance(&wallet).await["posted"], "99300");
    assert_eq!(history_len(&app, &wallet).await, 2);
}

/// Runs futures concurrently as separate tasks and collects their outputs in order.
async fn spawn_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("task"));
    }
    outputs
}

#[tokio::test]
async fn forgotten_keys_run_afresh_and_still_move_money_once() {
    let app = spawn_app().await;
    let (wallet, bank) = funded_wallet(&app, "forget", "KRW", "10000").await;
    let body = transfer_body(None, &wallet, &bank, "2500", "KRW");
    let path = "/v1/ledger/transactions";
    let (status, first, _) = keyed(&app, &app.admin_key, path, "late-1", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");

    // A key still running is never forgotten; a completed one older than the cut-off is.
    let later = app.ledger.now_micros() + 1;
    sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, request_sha256, state, created_at, claimed_at) \
         VALUES ('someone', 'in-flight', 'x', 'running', 0, 0)",
    )
    .execute(app.db.db.pool())
    .await
    .unwrap();
    let forgotten = api::idempotency::forget_completed(&app.db.db, later)
        .await
        .unwrap();
    assert_eq!(forgotten, 1);
    let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM idempotency_keys")
        .fetch_one(app.db.db.pool())
        .await
        .unwrap();
    assert_eq!(left, 1, "the running claim stays");

    // The retry is no longer answered from the stored response (which said 201), but its
    // transaction id comes from the key, so the ledger answers it with the stored transaction
    // (200, replayed) and moves nothing again.
    let (status, again, replayed) = keyed(&app, &app.admin_key, path, "late-1", &body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(replayed.as_deref(), Some("true"));
    assert_eq!(again["id"], first["id"]);
    assert_eq!(
        history_len(&app, &wallet).await,
        2,
        "funding and one transfer"
    );
}
