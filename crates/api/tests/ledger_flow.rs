//! The ledger over HTTP, end to end: accounts, transactions, balances now and in the past,
//! history, holds, and the refusals that must change nothing.

mod common;

use std::time::Duration;

use common::{assert_error, funded_wallet, spawn_app, transfer_body};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn accounts_are_opened_once_and_found_by_id_and_code() {
    let app = spawn_app().await;
    let request = json!({
        "code": "liability:member:usr_1:money",
        "kind": "liability",
        "currency": "KRW",
        "flags": ["must_not_go_negative"],
        "metadata": {"member": "usr_1"}
    });
    let (status, created) = app.post("/v1/ledger/accounts", &request).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("acc_"));
    assert_eq!(created["code"], "liability:member:usr_1:money");
    assert_eq!(created["kind"], "liability");
    assert_eq!(created["currency"], "KRW");
    assert_eq!(created["flags"], json!(["must_not_go_negative"]));
    assert_eq!(created["metadata"], json!({"member": "usr_1"}));
    assert_eq!(
        created["balance"],
        json!({"posted": "0", "held": "0", "incoming": "0", "available": "0"})
    );
    assert_eq!(created["posting_count"], 0);
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));

    let (status, again) = app.post("/v1/ledger/accounts", &request).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the same definition again is not a new account"
    );
    assert_eq!(again["id"], id);

    let mut different = request.clone();
    different["kind"] = json!("asset");
    let (status, body) = app.post("/v1/ledger/accounts", &different).await;
    assert_error(status, &body, 409, "exists_with_different_content");

    let (status, fetched) = app.get(&format!("/v1/ledger/accounts/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created);

    let (status, by_code) = app
        .get("/v1/ledger/accounts?code=liability:member:usr_1:money")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_code["data"], json!([created]));
    assert_eq!(by_code["next_cursor"], json!(null));
    let (_, none) = app
        .get("/v1/ledger/accounts?code=liability:member:nobody:money")
        .await;
    assert_eq!(none["data"], json!([]));

    let (status, body) = app.get("/v1/ledger/accounts/acc_missing").await;
    assert_error(status, &body, 404, "account_not_found");
}

#[tokio::test]
async fn account_lists_are_paginated_by_cursor() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            app.account(&format!("asset:page:{n}"), "asset", "USD", false)
                .await,
        );
    }
    ids.sort();
    let (status, first) = app.get("/v1/ledger/accounts?limit=2").await;
    assert_eq!(status, StatusCode::OK);
    let page_ids = |page: &serde_json::Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(page_ids(&first), ids[0..2]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .get(&format!("/v1/ledger/accounts?limit=2&after={cursor}"))
        .await;
    assert_eq!(page_ids(&second), ids[2..4]);
    let cursor = second["next_cursor"].as_str().unwrap();
    let (_, third) = app
        .get(&format!("/v1/ledger/accounts?limit=2&after={cursor}"))
        .await;
    assert_eq!(page_ids(&third), ids[4..5]);
    assert_eq!(third["next_cursor"], json!(null));

    for bad in ["limit=0", "limit=501", "limit=ten", "offset=3"] {
        let (status, body) = app.get(&format!("/v1/ledger/accounts?{bad}")).await;
        assert_error(status, &body, 400, "invalid_request");
    }
}

#[tokio::test]
async fn a_transaction_moves_money_and_is_visible_in_balances_history_and_the_past() {
    let app = spawn_app().await;
    let wallet = app
        .account("liability:member:a:money", "liability", "USD", true)
        .await;
    let bank = app
        .account("asset:bank:master", "asset", "USD", false)
        .await;

    let (status, first) = app.transfer(&bank, &wallet, "100.00", "USD").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert!(first["id"].as_str().unwrap().starts_with("ltx_"));
    assert_eq!(first["kind"], "journal");
    let legs = first["postings"].as_array().unwrap();
    assert_eq!(legs.len(), 2);
    assert_eq!(legs[0]["account_id"], bank.as_str());
    assert_eq!(legs[0]["direction"], "debit");
    assert_eq!(legs[0]["amount"], "100.00");
    assert_eq!(legs[0]["balance_after"], "100.00");
    assert_eq!(legs[1]["account_id"], wallet.as_str());
    assert_eq!(legs[1]["balance_after"], "100.00");
    let first_posted_at = first["posted_at"].as_str().unwrap().to_owned();
    assert_eq!(first_posted_at.len(), "2026-11-22T03:33:34.123456Z".len());

    tokio::time::sleep(Duration::from_millis(5)).await;
    let (status, second) = app.transfer(&wallet, &bank, "30.25", "USD").await;
    assert_eq!(status, StatusCode::CREATED, "{second}");

    let balance = app.balance(&wallet).await;
    assert_eq!(
        balance,
        json!({"account_id": wallet, "currency": "USD", "posted": "69.75", "held": "0.00", "incoming": "0.00", "available": "69.75"})
    );
    assert_eq!(app.balance(&bank).await["posted"], "69.75");

    let (status, then) = app
        .get(&format!(
            "/v1/ledger/accounts/{wallet}/balance?at={first_posted_at}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{then}");
    assert_eq!(
        then,
        json!({"account_id": wallet, "currency": "USD", "at": first_posted_at, "posted": "100.00"})
    );
    let (_, before) = app
        .get(&format!(
            "/v1/ledger/accounts/{wallet}/balance?at=2000-01-01T00:00:00%2B09:00"
        ))
        .await;
    assert_eq!(before["posted"], "0.00");
    assert_eq!(before["at"], "1999-12-31T15:00:00.000000Z");
    let (status, body) = app
        .get(&format!(
            "/v1/ledger/accounts/{wallet}/balance?at=yesterday"
        ))
        .await;
    assert_error(status, &body, 400, "invalid_request");

    let (status, history) = app
        .get(&format!("/v1/ledger/accounts/{wallet}/history?limit=1"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let newest = &history["data"][0];
    assert_eq!(newest["transaction_id"], second["id"]);
    assert_eq!(newest["account_seq"], 2);
    assert_eq!(newest["direction"], "debit");
    assert_eq!(newest["amount"], "30.25");
    assert_eq!(newest["currency"], "USD");
    assert_eq!(newest["balance_after"], "69.75");
    let cursor = history["next_cursor"].as_str().unwrap();
    let (_, older) = app
        .get(&format!(
            "/v1/ledger/accounts/{wallet}/history?limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(older["data"][0]["transaction_id"], first["id"]);
    assert_eq!(older["data"][0]["balance_after"], "100.00");
    assert_eq!(older["data"][0]["posted_at"], first_posted_at.as_str());
    assert_eq!(older["next_cursor"], json!(null));

    let (status, fetched) = app
        .get(&format!(
            "/v1/ledger/transactions/{}",
            second["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, second);
    let (status, body) = app.get("/v1/ledger/transactions/ltx_missing").await;
    assert_error(status, &body, 404, "transaction_not_found");
}

#[tokio::test]
async fn refused_transactions_change_nothing() {
    let app = spawn_app().await;
    let (wallet, bank) = funded_wallet(&app, "b", "KRW", "10000").await;
    let other = app
        .account("liability:member:c:money", "liability", "USD", true)
        .await;

    let (status, body) = app.transfer(&wallet, &bank, "10001", "KRW").await;
    assert_error(status, &body, 422, "insufficient_funds");

    let (status, body) = app.transfer(&bank, &other, "5000", "KRW").await;
    assert_error(status, &body, 422, "currency_mismatch");

    let unbalanced = json!({"postings": [
        {"account_id": bank, "direction": "debit", "amount": "500", "currency": "KRW"},
        {"account_id": wallet, "direction": "credit", "amount": "499", "currency": "KRW"},
    ]});
    let (status, body) = app.post("/v1/ledger/transactions", &unbalanced).await;
    assert_error(status, &body, 422, "unbalanced_transaction");

    let single = json!({"postings": [
        {"account_id": bank, "direction": "debit", "amount": "500", "currency": "KRW"},
    ]});
    let (status, body) = app.post("/v1/ledger/transactions", &single).await;
    assert_error(status, &body, 422, "posting_count_invalid");

    let (status, body) = app.transfer(&bank, &wallet, "0", "KRW").await;
    assert_error(status, &body, 422, "amount_invalid");

    let (status, body) = app.transfer(&bank, "acc_nobody", "1", "KRW").await;
    assert_error(status, &body, 404, "account_not_found");

    assert_eq!(app.balance(&wallet).await["posted"], "10000");
    assert_eq!(app.balance(&bank).await["posted"], "10000");
    let (_, history) = app
        .get(&format!("/v1/ledger/accounts/{wallet}/history"))
        .await;
    assert_eq!(history["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_client_chosen_id_replays_and_refuses_other_content() {
    let app = spawn_app().await;
    let (wallet, bank) = funded_wallet(&app, "d", "KRW", "10000").await;
    let body = transfer_body(Some("order-17:capture"), &wallet, &bank, "2500", "KRW");
    let (status, first) = app.post("/v1/ledger/transactions", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["id"], "order-17:capture");

    let response = app
        .admin(Method::POST, "/v1/ledger/transactions")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["idempotency-replayed"], "true");
    let replayed: serde_json::Value = response.json().await.unwrap();
    assert_eq!(replayed, first);

    let other = transfer_body(Some("order-17:capture"), &wallet, &bank, "2600", "KRW");
    let (status, body) = app.post("/v1/ledger/transactions", &other).await;
    assert_error(status, &body, 409, "exists_with_different_content");

    assert_eq!(app.balance(&wallet).await["posted"], "7500");
}

#[tokio::test]
async fn a_hold_reserves_then_posts_partially() {
    let app = spawn_app().await;
    let (wallet, _bank) = funded_wallet(&app, "e", "KRW", "10000").await;
    let merchant = app
        .account("liability:merchant:m1:payable", "liability", "KRW", false)
        .await;

    let (status, hold) = app
        .post(
            "/v1/ledger/holds",
            &json!({"debit_account_id": wallet, "credit_account_id": merchant, "amount": "6000", "currency": "KRW",
                    "expires_at": "2099-01-01T00:00:00Z", "metadata": {"order": "o-1"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let hold_id = hold["id"].as_str().unwrap().to_owned();
    assert!(hold_id.starts_with("hld_"));
    assert_eq!(hold["state"], "pending");
    assert_eq!(hold["amount"], "6000");
    assert_eq!(hold["posted_amount"], "0");
    assert_eq!(hold["expires_at"], "2099-01-01T00:00:00.000000Z");
    assert_eq!(hold["metadata"], json!({"order": "o-1"}));

    let balance = app.balance(&wallet).await;
    assert_eq!(
        (
            balance["posted"].as_str(),
            balance["held"].as_str(),
            balance["available"].as_str()
        ),
        (Some("10000"), Some("6000"), Some("4000"))
    );
    assert_eq!(app.balance(&merchant).await["incoming"], "6000");

    // Only 4000 is available now, so a direct spend of 5000 is refused.
    let (status, body) = app.transfer(&wallet, &merchant, "5000", "KRW").await;
    assert_error(status, &body, 422, "insufficient_funds");

    let (status, body) = app
        .post(
            &format!("/v1/ledger/holds/{hold_id}/post"),
            &json!({"amount": "6001"}),
        )
        .await;
    assert_error(status, &body, 422, "exceeds_hold_amount");
    let (status, body) = app
        .post(
            &format!("/v1/ledger/holds/{hold_id}/post"),
            &json!({"amount": "1", "currency": "USD"}),
        )
        .await;
    assert_error(status, &body, 422, "currency_mismatch");

    let (status, posted) = app
        .post(
            &format!("/v1/ledger/holds/{hold_id}/post"),
            &json!({"amount": "3500"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{posted}");
    assert_eq!(posted["hold"]["state"], "posted");
    assert_eq!(posted["hold"]["posted_amount"], "3500");
    assert_eq!(posted["transaction"]["kind"], "hold_post");
    assert_eq!(posted["transaction"]["hold_id"], hold_id.as_str());
    assert_eq!(
        posted["hold"]["posting_transaction_id"],
        posted["transaction"]["id"]
    );

    assert_eq!(
        app.balance(&wallet).await,
        json!({"account_id": wallet, "currency": "KRW", "posted": "6500", "held": "0", "incoming": "0", "available": "6500"})
    );
    let merchant_balance = app.balance(&merchant).await;
    assert_eq!(merchant_balance["posted"], "3500");
    assert_eq!(merchant_balance["incoming"], "0");

    let (status, body) = app
        .post(&format!("/v1/ledger/holds/{hold_id}/void"), &json!({}))
        .await;
    assert_error(status, &body, 409, "hold_already_posted");
    let (status, fetched) = app.get(&format!("/v1/ledger/holds/{hold_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, posted["hold"]);
}

#[tokio::test]
async fn a_voided_hold_releases_its_funds() {
    let app = spawn_app().await;
    let (wallet, _bank) = funded_wallet(&app, "f", "USD", "50.00").await;
    let merchant = app
        .account("liability:merchant:m2:payable", "liability", "USD", false)
        .await;
    let (status, hold) = app
        .post(
            "/v1/ledger/holds",
            &json!({"id": "checkout-9", "debit_account_id": wallet, "credit_account_id": merchant, "amount": "20.5", "currency": "USD"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    assert_eq!(hold["id"], "checkout-9");
    assert_eq!(hold["amount"], "20.50");
    assert_eq!(app.balance(&wallet).await["available"], "29.50");

    // An empty body is accepted, like {}.
    let response = app
        .admin(Method::POST, "/v1/ledger/holds/checkout-9/void")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let voided: serde_json::Value = response.json().await.unwrap();
    assert_eq!(voided["state"], "voided");
    assert_eq!(voided["posted_amount"], "0.00");
    assert!(voided["resolved_at"].as_str().is_some());

    let balance = app.balance(&wallet).await;
    assert_eq!(
        (
            balance["posted"].as_str(),
            balance["held"].as_str(),
            balance["available"].as_str()
        ),
        (Some("50.00"), Some("0.00"), Some("50.00"))
    );
    assert_eq!(app.balance(&merchant).await["incoming"], "0.00");

    let (status, body) = app
        .post("/v1/ledger/holds/checkout-9/post", &json!({}))
        .await;
    assert_error(status, &body, 409, "hold_already_voided");
    let (status, body) = app
        .post("/v1/ledger/holds/hld_missing/void", &json!({}))
        .await;
    assert_error(status, &body, 404, "hold_not_found");
    let (status, body) = app
        .post(
            "/v1/ledger/holds",
            &json!({"debit_account_id": wallet, "credit_account_id": wallet, "amount": "1", "currency": "USD"}),
        )
        .await;
    assert_error(status, &body, 422, "accounts_must_differ");
    let (status, body) = app
        .post(
            "/v1/ledger/holds",
            &json!({"debit_account_id": wallet, "credit_account_id": merchant, "amount": "50.01", "currency": "USD"}),
        )
        .await;
    assert_error(status, &body, 422, "insufficient_funds");
}

#[tokio::test]
async fn a_balance_snapshot_reads_every_account_under_a_prefix_at_once() {
    let app = spawn_app().await;
    let source = app
        .account("bank:run_1:source", "asset", "KRW", false)
        .await;
    let a = app.account("bank:run_1:a", "liability", "KRW", true).await;
    let b = app.account("bank:run_1:b", "liability", "KRW", true).await;
    // `_` is an ordinary character in a prefix, not a wildcard: this one must not match.
    app.account("bank:runX1:a", "liability", "KRW", true).await;
    for (id, to, amount) in [("fund-a", &a, "700"), ("fund-b", &b, "300")] {
        let (status, body) = app
            .post(
                "/v1/ledger/transactions",
                &transfer_body(Some(id), &source, to, amount, "KRW"),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    let (status, snapshot) = app.get("/v1/ledger/balances?code_prefix=bank:run_1:").await;
    assert_eq!(status, StatusCode::OK, "{snapshot}");
    let mut seen: Vec<(String, String)> = snapshot["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            assert_eq!(entry["currency"], "KRW");
            (
                entry["code"].as_str().unwrap().to_owned(),
                entry["posted"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    let expected = [
        ("bank:run_1:a", "700"),
        ("bank:run_1:b", "300"),
        ("bank:run_1:source", "1000"),
    ]
    .map(|(code, posted)| (code.to_owned(), posted.to_owned()));
    assert_eq!(seen, expected);

    let (status, body) = app.get("/v1/ledger/balances?code_prefix=no%20spaces").await;
    assert_error(status, &body, 422, "invalid_request");
    let (status, body) = app.get("/v1/ledger/balances").await;
    assert_error(status, &body, 400, "invalid_request");
}

#[tokio::test]
async fn a_balance_snapshot_refuses_more_accounts_than_one_read_holds() {
    let app = spawn_app().await;
    let mut opening = tokio::task::JoinSet::new();
    for i in 0..=ledger::SNAPSHOT_ACCOUNTS_MAX {
        let ledger = app.ledger.clone();
        opening.spawn(async move {
            ledger
                .create_account(ledger::NewAccount {
                    code: ledger::AccountCode::parse(&format!("many:{i}")).unwrap(),
                    kind: ledger::AccountKind::Liability,
                    currency: money::Currency::KRW,
                    flags: ledger::AccountFlags::empty(),
                    metadata: None,
                })
                .await
                .unwrap()
        });
    }
    opening.join_all().await;
    let (status, body) = app.get("/v1/ledger/balances?code_prefix=many:").await;
    assert_error(status, &body, 422, "invalid_request");
    let (status, body) = app.get("/v1/ledger/balances?code_prefix=many:99").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"].as_array().unwrap().len(),
        11,
        "many:99 and many:990..999"
    );
}
