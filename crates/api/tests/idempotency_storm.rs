//! An idempotency storm on member transfers, black-box over HTTP (issue 7, item 3): 150 keys,
//! each sent once; 30 % of them sent again at the same moment with the same body, 10 % sent
//! again afterwards with another body; and one key sent by 32 clients at once. Zero duplicate
//! effects: exactly one money transaction per key, the money moved is exactly the sum of the
//! keys' amounts, every replay answers the first response, every other body under a used key is
//! 422 `idempotency_key_reused` and moves nothing.

mod common;

use std::collections::{HashMap, HashSet};

use common::{charge, linked_member, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

const KEYS: usize = 150;
const ONE_KEY_CLIENTS: usize = 32;

struct Outcome {
    key: String,
    status: StatusCode,
    replayed: bool,
    body: Value,
}

async fn send_transfer(app: &TestApp, token: &str, key: &str, to: &str, amount: i64) -> Outcome {
    let response = app
        .client
        .post(app.url("/v1/transfers"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(
            &json!({"to": {"member_id": to}, "amount": amount.to_string(), "currency": "KRW",
                      "auto_top_up": false}),
        )
        .send()
        .await
        .unwrap();
    let status = response.status();
    let replayed = response.headers().contains_key("idempotency-replayed");
    let body = response.json().await.unwrap();
    Outcome {
        key: key.to_owned(),
        status,
        replayed,
        body,
    }
}

/// The money transaction number a transfer response names.
fn mtx(outcome: &Outcome) -> String {
    outcome.body["transaction"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{} {}: {}", outcome.key, outcome.status, outcome.body))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_of_resent_and_conflicting_keys_moves_each_transfer_exactly_once() {
    let app = spawn().await;
    let sender = linked_member(&app, 1, 2_000_000).await;
    charge(&app, &sender, 1_000_000).await;
    let recipients = [
        app.member("b@example.com", "010-3000-0002").await,
        app.member("c@example.com", "010-3000-0003").await,
    ];
    let amount_of = |i: usize| 100 + i as i64;
    let to_of = |i: usize| recipients[i % 2].id.clone();

    // Every key once, and 30 % of them a second time at the same moment, same body.
    let mut tasks = Vec::new();
    for i in 0..KEYS {
        let copies = if i % 10 < 3 { 2 } else { 1 };
        for _ in 0..copies {
            let (app, token, to) = (app.clone(), sender.member.token.clone(), to_of(i));
            tasks.push(tokio::spawn(async move {
                send_transfer(&app, &token, &format!("storm-{i}"), &to, amount_of(i)).await
            }));
        }
    }
    let key = "storm-one-key";
    for _ in 0..ONE_KEY_CLIENTS {
        let (app, token, to) = (app.clone(), sender.member.token.clone(), to_of(0));
        tasks.push(tokio::spawn(async move {
            send_transfer(&app, &token, key, &to, 777).await
        }));
    }
    let mut first: HashMap<String, String> = HashMap::new();
    let mut in_progress = Vec::new();
    let mut replays = 0;
    for task in tasks {
        let outcome = task.await.unwrap();
        match (outcome.status.as_u16(), outcome.replayed) {
            (201, false) => {
                let earlier = first.insert(outcome.key.clone(), mtx(&outcome));
                assert!(earlier.is_none(), "{} ran twice", outcome.key);
            }
            (201, true) => replays += 1,
            (409, _) => {
                assert_eq!(
                    outcome.body["error"]["code"],
                    "idempotency_request_in_progress"
                );
                in_progress.push(outcome);
            }
            _ => panic!("{} {}: {}", outcome.key, outcome.status, outcome.body),
        }
    }
    assert_eq!(first.len(), KEYS + 1, "every key ran exactly once");
    println!("{replays} replays, {} told to wait", in_progress.len());

    // A client told to wait sends again and gets the first response.
    for waited in in_progress {
        let i: Option<usize> = waited
            .key
            .strip_prefix("storm-")
            .and_then(|n| n.parse().ok());
        let (to, amount) = match i {
            Some(i) => (to_of(i), amount_of(i)),
            None => (to_of(0), 777),
        };
        let again = send_transfer(&app, &sender.member.token, &waited.key, &to, amount).await;
        assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
        assert!(again.replayed);
        assert_eq!(mtx(&again), first[&waited.key]);
    }
    // 10 % of the keys again with another body: refused, nothing moves.
    for i in (0..KEYS).filter(|i| i % 10 == 3) {
        let other = send_transfer(
            &app,
            &sender.member.token,
            &format!("storm-{i}"),
            &to_of(i),
            amount_of(i) + 1,
        )
        .await;
        assert_eq!(
            other.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            other.body
        );
        assert_eq!(other.body["error"]["code"], "idempotency_key_reused");
    }

    // Exactly one money transaction per key, and exactly the keys' money moved.
    let expected: i64 = (0..KEYS).map(amount_of).sum::<i64>() + 777;
    let mut seen = HashSet::new();
    let mut moved = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/wallets/KRW/history?limit=500&cursor={c}"),
            None => "/v1/wallets/KRW/history?limit=500".to_owned(),
        };
        let (status, page) =
            common::send(app.bearer(&sender.member.token, reqwest::Method::GET, &path)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for entry in page["data"].as_array().unwrap() {
            if entry["kind"] == "transfer_out" {
                assert!(
                    seen.insert(entry["id"].as_str().unwrap().to_owned()),
                    "listed twice"
                );
                let amount: i64 = entry["amount"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches('-')
                    .parse()
                    .unwrap();
                moved += amount;
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let ran: HashSet<String> = first.values().cloned().collect();
    assert_eq!(
        seen, ran,
        "the history holds exactly the transfers that ran"
    );
    assert_eq!(moved, expected);
    assert_eq!(
        common::posted(
            &app,
            &format!("liability:member:{}:money:KRW", sender.member.id)
        )
        .await,
        1_000_000 - expected
    );
    let received: i64 = {
        let mut sum = 0;
        for r in &recipients {
            sum += common::posted(&app, &format!("liability:member:{}:money:KRW", r.id)).await;
        }
        sum
    };
    assert_eq!(received, expected);
    common::assert_books_hold(&app).await;
}

async fn spawn() -> std::sync::Arc<TestApp> {
    std::sync::Arc::new(common::spawn_app().await)
}
