//! `mypay serve --nats-url` against the real NATS server (JetStream; `MYPAY_TEST_NATS_URL`,
//! default `nats://127.0.0.1:4222`): a checkout paid by card puts its `payment_order.succeeded`
//! and `payment.succeeded` events on the stream, once each, with the event id as
//! `Nats-Msg-Id`, though the merchant registered no webhook endpoint. The stream and subject
//! prefix are the test's own and the stream is deleted afterwards.

mod support;

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;
use serde_json::{json, Value};
use testkit::TestDb;

const ADMIN_KEY: &str = "mpk_event_stream_admin_key_0123456789ab";
const PSP_SECRET: &str = "test_sk_event_stream_0123";

async fn call(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn serve(
    url: &str,
    dir: &Path,
    bank: &str,
    psp: &str,
    nats: &str,
    stream: &str,
    prefix: &str,
) -> support::Started {
    support::start(
        [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            url,
            "--bank-url",
            bank,
            "--psp-url",
            psp,
            "--psp-secret-key",
            PSP_SECRET,
            "--admin-api-key",
            ADMIN_KEY,
            "--account-key-file",
            &dir.join("account-keys").display().to_string(),
            "--settlement-report-dir",
            &dir.join("settlements").display().to_string(),
            "--nats-url",
            nats,
            "--nats-stream",
            stream,
            "--nats-subject-prefix",
            prefix,
        ],
        "listening on ",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_puts_its_events_on_the_stream_once() {
    let Some(nats) = testkit::test_nats_url() else {
        return;
    };
    let tag = ulid::Ulid::new().to_string();
    let stream_name = format!("MYPAY_TEST_SERVE_{tag}");
    let prefix = format!("test.{}.events", tag.to_lowercase());
    let test_db = TestDb::new(2).await;
    let dir = tempfile::tempdir().unwrap();
    let bank = support::start(
        [
            OsStr::new("sandbox-bank"),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--data"),
            dir.path().join("bank").as_os_str(),
        ],
        "sandbox bank listening on ",
    );
    let psp = support::start(
        [
            OsStr::new("sandbox-psp"),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--data"),
            dir.path().join("psp").as_os_str(),
            OsStr::new("--secret-key"),
            OsStr::new(PSP_SECRET),
        ],
        "sandbox PSP listening on ",
    );
    let server = serve(
        &test_db.url.expose_secret(),
        dir.path(),
        &bank.ready,
        &psp.ready,
        &nats,
        &stream_name,
        &prefix,
    );
    let client = reqwest::Client::new();
    let api = |path: &str| format!("{}{path}", server.ready);

    let (status, member) = call(client.post(api("/v1/members")).json(&json!({
        "email": "stream@example.com", "phone": "010-5555-0002",
        "name": "김민수", "password": "correct horse battery",
    })))
    .await;
    assert_eq!(status, 201, "{member}");
    let buyer = member["id"].as_str().unwrap().to_owned();
    let (status, opened) = call(client.post(format!("{}/admin/accounts", bank.ready)).json(
        &json!({
            "bank_code_std": "004", "account_num": "220000000002",
            "account_holder_name": "주식회사가게", "balance_amt": "0",
        }),
    ))
    .await;
    assert!(status < 300, "{opened}");
    let (status, merchant) = call(client
            .post(api("/v1/merchants"))
            .bearer_auth(ADMIN_KEY)
            .header("Idempotency-Key", "onboard-stream-shop")
            .json(&json!({
                "name": "Shop", "fee_bps": 250,
                "settlement_account": {"bank_code": "004", "account_number": "220000000002", "holder_name": "주식회사가게"},
            })),
    )
    .await;
    assert_eq!(status, 201, "{merchant}");
    let seller = merchant["id"].as_str().unwrap().to_owned();
    let (status, payment) = call(
        client
            .post(api("/v1/payments"))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({
                "buyer": buyer, "checkout_id": "chk-stream-1",
                "payment_orders": [{"seller_account": seller, "amount": "12000", "currency": "KRW", "payment_order_id": "order-stream-0001"}],
                "funding": {"card": {"billing_key": "bk_test_approve_stream", "amount": "12000"}},
            })),
    )
    .await;
    assert!(status < 300, "{payment}");

    // The publisher runs every second; read the stream until both events are there.
    let context = jetstream::new(async_nats::connect(&nats).await.expect("reach NATS"));
    let mut messages = Vec::new();
    for _ in 0..100 {
        if let Ok(stream) = context.get_stream(&stream_name).await {
            let state = stream.get_info().await.unwrap().state;
            if state.messages >= 2 {
                for sequence in state.first_sequence..=state.last_sequence {
                    messages.push(stream.get_raw_message(sequence).await.unwrap());
                }
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.process.stop();
    psp.process.stop();
    bank.process.stop();
    let _ = context.delete_stream(&stream_name).await;

    let mut subjects: Vec<String> = messages.iter().map(|m| m.subject.to_string()).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            format!("{prefix}.payment.succeeded"),
            format!("{prefix}.payment_order.succeeded")
        ]
    );
    for message in &messages {
        let body: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(body["merchant_id"], seller.as_str(), "{body}");
        let id = message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .expect("a Nats-Msg-Id header");
        assert_eq!(body["id"], id.as_str());
        let resource = body["type"].as_str().unwrap().split('.').next().unwrap();
        assert_eq!(body["resource"]["type"], resource, "{body}");
    }
}
