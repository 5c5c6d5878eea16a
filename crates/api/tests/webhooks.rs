//! Webhooks, black-box: endpoints registered through the API point at a real local receiver
//! that verifies every request with `webhooks::verify` and deduplicates on the event id, as the
//! documentation tells merchants to. Events are recorded the way payments code records them
//! (`webhooks::record_event` in a transaction on the server's database), and delivery passes
//! run on a manual clock that the test moves to make retries due.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use axum::Router;
use common::{assert_error, send, spawn_app_with_manual_clock, TestApp};
use ledger::{Clock, ManualClock};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use webhooks::{
    record_event, EventType, NewEvent, SignatureError, EVENT_ID_HEADER, EVENT_TYPE_HEADER,
    RETRY_DELAYS_S, SIGNATURE_HEADER, SIGNATURE_TOLERANCE_S,
};

/// A well-formed merchant id that names no merchant.
const UNKNOWN_MERCHANT: &str = "mer_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B";
const SECOND_US: i64 = 1_000_000;

/// A request as the receiver got it, kept so the test can replay it.
#[derive(Debug, Clone)]
struct Captured {
    signature: String,
    event_id: String,
    event_type: String,
    body: String,
}

/// What the receiver decided about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Authentic, fresh and new: processed.
    Processed,
    /// Authentic and fresh, but this event was processed before: acknowledged, not processed.
    Duplicate,
    /// Refused: the signature did not verify (forged, tampered, stale or from the future).
    Rejected(SignatureError),
    /// Authentic and new, but the receiver failed on purpose (answered 500 unprocessed).
    Failed,
}

/// A merchant's receiver, following the verification recipe of ARCHITECTURE.md: verify the
/// signature over the raw body with a 5-minute tolerance, deduplicate on the event id, keep
/// the highest resource version.
#[derive(Clone)]
struct Receiver {
    secret: Arc<Mutex<String>>,
    clock: Arc<ManualClock>,
    /// The status answered to authentic, new events; 2xx processes them.
    status: Arc<AtomicU16>,
    /// Event ids to fail once each (answer 500 without processing).
    fail_once: Arc<Mutex<HashSet<String>>>,
    /// Whether to answer 500 after processing (the receiver's reply is lost).
    fail_after_processing: Arc<Mutex<bool>>,
    processed: Arc<Mutex<HashSet<String>>>,
    /// Per resource id, the highest version applied.
    versions: Arc<Mutex<HashMap<String, i64>>>,
    log: Arc<Mutex<Vec<(Captured, Verdict)>>>,
    url: String,
}

impl Receiver {
    async fn spawn(clock: Arc<ManualClock>) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let receiver = Receiver {
            secret: Arc::default(),
            clock,
            status: Arc::new(AtomicU16::new(200)),
            fail_once: Arc::default(),
            fail_after_processing: Arc::default(),
            processed: Arc::default(),
            versions: Arc::default(),
            log: Arc::default(),
            url: format!("http://{address}/mypay/webhooks"),
        };
        let app = Router::new()
            .route("/mypay/webhooks", post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    fn verdicts(&self) -> Vec<Verdict> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn captured(&self) -> Vec<Captured> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// Sends a captured request to this receiver again, as an attacker replaying it would.
    async fn replay(&self, request: &Captured) -> u16 {
        reqwest::Client::new()
            .post(&self.url)
            .header(SIGNATURE_HEADER, &request.signature)
            .header(EVENT_ID_HEADER, &request.event_id)
            .header(EVENT_TYPE_HEADER, &request.event_type)
            .header("content-type", "application/json")
            .body(request.body.clone())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: String) -> AxumStatus {
    let captured = Captured {
        signature: header(&headers, SIGNATURE_HEADER),
        event_id: header(&headers, EVENT_ID_HEADER),
        event_type: header(&headers, EVENT_TYPE_HEADER),
        body: body.clone(),
    };
    let (status, verdict) = judge(&receiver, &captured);
    receiver.log.lock().unwrap().push((captured, verdict));
    AxumStatus::from_u16(status).unwrap()
}

/// The recipe: verify, deduplicate, apply in version order.
fn judge(receiver: &Receiver, request: &Captured) -> (u16, Verdict) {
    let secret = receiver.secret.lock().unwrap().clone();
    let now_s = receiver.clock.now_micros().div_euclid(SECOND_US);
    if let Err(error) = webhooks::verify(
        secret.as_bytes(),
        &request.signature,
        request.body.as_bytes(),
        now_s,
        SIGNATURE_TOLERANCE_S,
    ) {
        return (400, Verdict::Rejected(error));
    }
    let event: Value = serde_json::from_str(&request.body).unwrap();
    let id = event["id"].as_str().unwrap().to_owned();
    assert_eq!(id, request.event_id, "the header names the body's event");
    if receiver.processed.lock().unwrap().contains(&id) {
        return (200, Verdict::Duplicate);
    }
    if receiver.fail_once.lock().unwrap().remove(&id) {
        return (500, Verdict::Failed);
    }
    let status = receiver.status.load(Ordering::SeqCst);
    if !(200..300).contains(&status) {
        return (status, Verdict::Failed);
    }
    receiver.processed.lock().unwrap().insert(id);
    let resource = event["resource"]["id"].as_str().unwrap().to_owned();
    let version = event["resource"]["version"].as_i64().unwrap();
    let mut versions = receiver.versions.lock().unwrap();
    let known = versions.entry(resource).or_insert(version);
    *known = (*known).max(version);
    if *receiver.fail_after_processing.lock().unwrap() {
        return (500, Verdict::Processed);
    }
    (status, Verdict::Processed)
}

/// Onboards the merchant a test's events are about and returns its id; webhook routes answer
/// only for a merchant that exists.
async fn onboard_shop(app: &TestApp) -> String {
    app.merchant("마이커피").await.0
}

/// Registers an endpoint for `merchant` pointing at the receiver and gives the receiver its
/// secret; returns the endpoint's view.
async fn register(app: &TestApp, merchant: &str, receiver: &Receiver, types: &[&str]) -> Value {
    let response = app
        .admin(
            Method::POST,
            &format!("/v1/merchants/{merchant}/webhook-endpoints"),
        )
        .json(&json!({"url": receiver.url, "event_types": types}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let (status, body) = common::json_of(response).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    *receiver.secret.lock().unwrap() = body["secret"].as_str().unwrap().to_owned();
    body
}

/// Records an event the way payments code does: in a transaction on the server's database.
async fn record(
    app: &TestApp,
    clock: &ManualClock,
    merchant: &str,
    kind: EventType,
    resource_id: &str,
    version: i64,
) -> String {
    let event = NewEvent {
        merchant_id: merchant.to_owned(),
        event_type: kind,
        resource_type: "payment",
        resource_id: resource_id.to_owned(),
        resource_version: version,
        data: json!({"id": resource_id, "amount": "15000", "currency": "KRW", "version": version}),
    };
    let mut tx = app.db.db.begin_write().await.unwrap();
    let id = record_event(&mut tx, &event, clock.now_micros())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id.to_string()
}

/// The merchant's events, newest first.
async fn events(app: &TestApp, merchant: &str) -> Vec<Value> {
    let (status, body) = app
        .get(&format!("/v1/merchants/{merchant}/webhook-events"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

/// The only delivery of the merchant's only event.
async fn only_delivery(app: &TestApp, merchant: &str) -> Value {
    let events = events(app, merchant).await;
    assert_eq!(events.len(), 1);
    let deliveries = events[0]["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1);
    deliveries[0].clone()
}

#[tokio::test]
async fn a_delivery_arrives_signed_with_the_event_and_its_resource_version() {
    let (app, clock) = spawn_app_with_manual_clock().await;
    let receiver = Receiver::spawn(clock.clone()).await;
    let shop = onboard_shop(&app).await;
    let endpoint = register(&app, &shop, &receiver, &["payment.succeeded"]).await;
    assert!(endpoint["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(endpoint["event_types"], json!(["payment.succeeded"]));
    assert_eq!(endpoint["status"], "active");
    let (status, list) = app
        .get(&format!("/v1/merchants/{shop}/webhook-endpoints"))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(
        list["data"][0].get("secret").is_none(),
        "the secret is shown once"
    );

    let event_id = record(&app, &clock, &shop, EventType::PaymentSucceeded, "pay_1", 7).await;
    record(&app, &clock, &shop, EventType::PaymentFailed, "pay_2", 1).await;
    let pending = events(&app, &shop).await;
    let mine = pending
        .iter()
        .find(|e| e["id"] == event_id.as_str())
        .unwrap();
    assert_eq!(mine["deliveries"][0]["state"], "pending");
    let unsubscribed = pending
        .iter()
        .find(|e| e["id"] != event_id.as_str())
        .unwrap();
    assert_eq!(
        unsubscribed["deliveries"],
        json!([]),
        "payment.failed is not subscribed"
    );

    let pass = app.webhooks.deliver_due(100).await.unwrap();
    assert_eq!((pass.claimed, pass.delivered), (1, 1));
    assert_eq!(receiver.verdicts(), vec![Verdict::Processed]);
    let request = &receiver.captured()[0];
    assert_eq!(request.event_id, event_id);
    assert_eq!(request.event_type, "payment.succeeded");
    let sent_at = clock.now_micros().div_euclid(SECOND_US);
    assert!(request.signature.starts_with(&format!("t={sent_at},v1=")));
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["id"], event_id.as_str());
    assert_eq!(body["type"], "payment.succeeded");
    assert_eq!(body["created_at"], "2026-11-22T00:00:00.000000Z");
    assert_eq!(
        body["resource"],
        json!({"type": "payment", "id": "pay_1", "version": 7})
    );
    assert_eq!(body["data"]["amount"], "15000");
    assert_eq!(receiver.versions.lock().unwrap()["pay_1"], 7);

    let events = events(&app, &shop).await;
    let delivered = events
        .iter()
        .find(|e| e["id"] == event_id.as_str())
        .unwrap();
    assert_eq!(delivered["resource"]["version"], 7);
    let delivery = &delivered["deliveries"][0];
    assert_eq!(delivery["state"], "delivered");
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["last_status"], 200);
    assert_eq!(delivery["next_attempt_at"], Value::Null);
    assert_eq!(delivery["endpoint_id"], endpoint["id"]);
    let pass = app.webhooks.deliver_due(100).await.unwrap();
    assert_eq!(pass.claimed, 0, "a delivered event is not sent again");
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_backoff_until_it_answers() {
    let (app, clock) = spawn_app_with_manual_clock().await;
    let receiver = Receiver::spawn(clock.clone()).await;
    let shop = onboard_shop(&app).await;
    register(&app, &shop, &receiver, &[]).await;
    receiver.status.store(500, Ordering::SeqCst);
    record(&app, &clock, &shop, EventType::PaymentSucceeded, "pay_1", 1).await;

    let pass = app.webhooks.deliver_due(100).await.unwrap();
    assert_eq!((pass.claimed, pass.retrying), (1, 1));
    let delivery = only_delivery(&app, &shop).await;
    assert_eq!(delivery["state"], "pending");
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["last_status"], 500);
    assert_eq!(delivery["last_error"], "http_status");
    assert_eq!(delivery["next_attempt_at"], "2026-11-22T00:00:30.000000Z");

    // Not due before the first wait (30 s) has passed.
    assert_eq!(app.webhooks.deliver_due(100).await.unwrap().claimed, 0);
    clock.advance_micros((RETRY_DELAYS_S[0] - 1) * SECOND_US);
    assert_eq!(app.webhooks.deliver_due(100).await.unwrap().claimed, 0);
    clock.advance_micros(SECOND_US);
    let pass = app.webhooks.deliver_due(100).await.unwrap();
    assert_eq!((pass.claimed, pass.retrying), (1, 1));
    let delivery = only_delivery(&app, &shop).await;
    assert_eq!(delivery["attempts"], 2);
    assert_eq!(
        delivery["next_attempt_at"], "2026-11-22T00:01:30.000000Z",
        "the second wait is a minute"
    );

    receiver.status.store(200, Ordering::SeqCst);
    clock.advance_micros(RETRY_DELAYS_S[1] * SECOND_US);
    let pass = app.webhooks.deliver_due(100).await.unwrap();
    assert_eq!((pass.claimed, pass.delivered), (1, 1));
    let delivery = only_delivery(&app, &shop).await;
    assert_eq!(delivery["state"], "delivered");
    assert_eq!(delivery["attempts"], 3);
    assert_eq!(delivery["last_error"], Value::Null);
    assert_eq!(
        receiver.verdicts(),
        vec![Verdict::Failed, Verdict::Failed, Verdict::Processed]
    );
    let timestamps: Vec<String> = receiver
        .captured()
        .iter()
        .map(|c| c.signature.split(',').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        timestamps,
        ["t=1795305600", "t=1795305630", "t=1795305690"],
        "every attempt is signed when it is sent"
    );
}

#[tokio::test]
async fn after_the_last_attempt_a_delivery_is_dead_until_an_operator_retries_it() {
    let (app, clock) = spawn_app_with_manual_clock().await;
    let receiver = Receiver::spawn(clock.clone()).await;
    let (shop, shop_key) = app.merchant("마이커피").await;
    register(&app, &shop, &receiver, &[]).await;
    receiver.status.store(503, Ordering::SeqCst);
    record(&app, &clock, &shop, EventType::RefundSucceeded, "rf_1", 1).await;

    for delay in RETRY_DELAYS_S {
        let pass = app.webhooks.deliver_due(100).await.unwrap();
        assert_eq!((pass.claimed, pass.retrying), (1, 1));
        clock.advance_micros(delay * SECOND_US);
    }
    let pass = app.webhooks.deliver_due(100).await.unwrap();
    assert_eq!((pass.claimed, pass.dead), (1, 1));
    let delivery = only_delivery(&app, &shop).await;
    assert_eq!(delivery["state"], "dead");
    assert_eq!(delivery["attempts"], 8);
    assert_eq!(delivery["last_status"], 503);
    assert_eq!(receiver.verdicts().len(), 8);
    clock.advance_micros(7 * 86_400 * SECOND_US);
    assert_eq!(
        app.webhooks.deliver_due(100).await.unwrap().claimed,
        0,
        "a dead delivery waits for an operator"
    );

    let id = delivery["id"].as_str().unwrap();
    let retry = format!("/v1/webhook-deliveries/{id}/retry");
    let member = app.member("op@example.com", "010-1234-5678").await;
    let (status, body) = send(app.bearer(&member.token, Method::POST, &retry)).await;
    assert_error(status, &body, 403, "forbidden");
    // Not even the merchant's own key: re-queuing is for operators.
    let (status, body) = send(app.bearer(&shop_key, Method::POST, &retry)).await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = send(app.admin(
        Method::POST,
        "/v1/webhook-deliveries/whd_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B/retry",
    ))
    .await;
    assert_error(status, &body, 404, "webhook_delivery_not_found");

    let (_, platform_key) = app.api_key("platform").await;
    let (status, body) = send(app.bearer(&platform_key, Method::POST, &retry)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "pending");
    assert_eq!(body["attempts"], 0);
    let (status, body) = send(app.bearer(&platform_key, Method::POST, &retry)).await;
    assert_error(status, &body, 409, "webhook_delivery_not_dead");

    receiver.status.store(200, Ordering::SeqCst);
    let pass = app.webhooks.deliver_due(100).await.unwrap();
    assert_eq!((pass.claimed, pass.delivered), (1, 1));
    let delivery = only_delivery(&app, &shop).await;
    assert_eq!(delivery["state"], "delivered");
    assert_eq!(
        delivery["attempts"], 1,
        "a re-queued delivery starts a new schedule"
    );
    let (status, body) = send(app.admin(Method::POST, &retry)).await;
    assert_error(status, &body, 409, "webhook_delivery_not_dead");
}

#[tokio::test]
async fn replays_are_refused_by_the_timestamp_and_redeliveries_absorbed_by_the_event_id() {
    let (app, clock) = spawn_app_with_manual_clock().await;
    let receiver = Receiver::spawn(clock.clone()).await;
    let shop = onboard_shop(&app).await;
    register(&app, &shop, &receiver, &[]).await;
    let event_id = record(&app, &clock, &shop, EventType::EscrowConfirmed, "esc_1", 3).await;
    app.webhooks.deliver_due(100).await.unwrap();
    let original = receiver.captured()[0].clone();
    assert_eq!(receiver.verdicts(), vec![Verdict::Processed]);

    // Re-sent within the tolerance: authentic and fresh, but a duplicate of a processed event.
    clock.advance_micros(60 * SECOND_US);
    assert_eq!(receiver.replay(&original).await, 200);
    // Re-sent after the tolerance: refused as a replay, whatever the receiver remembers.
    clock.advance_micros((SIGNATURE_TOLERANCE_S - 60 + 1) * SECOND_US);
    assert_eq!(receiver.replay(&original).await, 400);
    // A fresh timestamp cannot be put on the old signature, nor the body changed.
    let sent_at: i64 = original.signature[2..12].parse().unwrap();
    let refreshed = Captured {
        signature: original.signature.replacen(
            &format!("t={sent_at}"),
            &format!("t={}", clock.now_micros() / SECOND_US),
            1,
        ),
        ..original.clone()
    };
    assert_eq!(receiver.replay(&refreshed).await, 400);
    let now_s = clock.now_micros() / SECOND_US;
    let tampered = Captured {
        body: original.body.replace("\"version\":3", "\"version\":4"),
        signature: original
            .signature
            .replacen(&format!("t={sent_at}"), &format!("t={now_s}"), 1),
        ..original.clone()
    };
    assert_eq!(receiver.replay(&tampered).await, 400);
    assert_eq!(
        receiver.verdicts()[1..],
        [
            Verdict::Duplicate,
            Verdict::Rejected(SignatureError::Stale {
                age_s: SIGNATURE_TOLERANCE_S + 1
            }),
            Verdict::Rejected(SignatureError::Mismatch),
            Verdict::Rejected(SignatureError::Mismatch),
        ]
    );

    // mypay itself delivers at least once: a receiver that processed an event but whose answer
    // was lost gets it again, freshly signed, and absorbs it by the event id.
    *receiver.fail_after_processing.lock().unwrap() = true;
    let second = record(&app, &clock, &shop, EventType::EscrowConfirmed, "esc_2", 1).await;
    let pass = app.webhooks.deliver_due(100).await.unwrap();
    assert_eq!(pass.retrying, 1);
    *receiver.fail_after_processing.lock().unwrap() = false;
    clock.advance_micros(RETRY_DELAYS_S[0] * SECOND_US);
    let pass = app.webhooks.deliver_due(100).await.unwrap();
    assert_eq!(pass.delivered, 1);
    let verdicts = receiver.verdicts();
    assert_eq!(
        verdicts[verdicts.len() - 2..],
        [Verdict::Processed, Verdict::Duplicate]
    );
    let processed = receiver.processed.lock().unwrap().clone();
    assert_eq!(processed, HashSet::from([event_id, second]));
}

#[tokio::test]
async fn deliveries_out_of_order_are_put_in_order_by_the_resource_version() {
    let (app, clock) = spawn_app_with_manual_clock().await;
    let receiver = Receiver::spawn(clock.clone()).await;
    let shop = onboard_shop(&app).await;
    register(&app, &shop, &receiver, &[]).await;
    let v1 = record(
        &app,
        &clock,
        &shop,
        EventType::PaymentOrderSucceeded,
        "po_1",
        1,
    )
    .await;
    app.webhooks.deliver_due(100).await.unwrap();
    let v2 = record(
        &app,
        &clock,
        &shop,
        EventType::PaymentOrderSucceeded,
        "po_1",
        2,
    )
    .await;
    receiver.fail_once.lock().unwrap().insert(v2.clone());
    app.webhooks.deliver_due(100).await.unwrap();
    let v3 = record(
        &app,
        &clock,
        &shop,
        EventType::PaymentOrderFailed,
        "po_1",
        3,
    )
    .await;
    app.webhooks.deliver_due(100).await.unwrap();
    assert_eq!(receiver.versions.lock().unwrap()["po_1"], 3);

    // Version 2 arrives last, after its retry wait; the receiver keeps version 3.
    clock.advance_micros(RETRY_DELAYS_S[0] * SECOND_US);
    assert_eq!(app.webhooks.deliver_due(100).await.unwrap().delivered, 1);
    let order: Vec<String> = receiver
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, verdict)| *verdict == Verdict::Processed)
        .map(|(captured, _)| captured.event_id.clone())
        .collect();
    assert_eq!(order, vec![v1, v3, v2]);
    assert_eq!(receiver.versions.lock().unwrap()["po_1"], 3);
}

#[tokio::test]
async fn endpoints_are_for_operators_and_the_merchants_own_key_business_checked_and_per_merchant() {
    let (app, clock) = spawn_app_with_manual_clock().await;
    let receiver = Receiver::spawn(clock.clone()).await;
    let (shop, shop_key) = app.merchant("마이커피").await;
    let (other, other_key) = app.merchant("너의빵집").await;
    let (_, platform_key) = app.api_key("platform").await;
    let endpoints = format!("/v1/merchants/{shop}/webhook-endpoints");
    let shop_events = format!("/v1/merchants/{shop}/webhook-events");
    let body = json!({"url": receiver.url});
    let routes = |merchant: &str| {
        [
            (
                Method::POST,
                format!("/v1/merchants/{merchant}/webhook-endpoints"),
            ),
            (
                Method::GET,
                format!("/v1/merchants/{merchant}/webhook-endpoints"),
            ),
            (
                Method::GET,
                format!("/v1/merchants/{merchant}/webhook-events"),
            ),
        ]
    };

    // Members never act for a merchant, whichever it is.
    let member = app.member("m@example.com", "010-1111-2222").await;
    for merchant in [shop.as_str(), UNKNOWN_MERCHANT] {
        for (method, path) in routes(merchant) {
            let (status, answer) = send(app.bearer(&member.token, method, &path).json(&body)).await;
            assert_error(status, &answer, 403, "forbidden");
        }
    }
    // Another merchant's key finds no merchant here, exactly as an id that names none.
    for (method, path) in routes(&shop) {
        let (status, answer) = send(app.bearer(&other_key, method, &path).json(&body)).await;
        assert_error(status, &answer, 404, "merchant_not_found");
    }
    for merchant in [UNKNOWN_MERCHANT, "usr_123"] {
        for token in [&app.admin_key, &platform_key, &shop_key] {
            for (method, path) in routes(merchant) {
                let (status, answer) = send(app.bearer(token, method, &path).json(&body)).await;
                assert_error(status, &answer, 404, "merchant_not_found");
            }
        }
    }
    let (status, answer) = send(app.anonymous(Method::GET, &endpoints)).await;
    assert_error(status, &answer, 401, "unauthenticated");

    for (bad, code) in [
        (json!({"url": "ftp://shop.example/"}), "webhook_url_invalid"),
        (
            json!({"url": "https://user:pw@shop.example/"}),
            "webhook_url_invalid",
        ),
        (
            json!({"url": "https://shop.example/", "event_types": ["payment.refunded"]}),
            "webhook_event_type_unknown",
        ),
    ] {
        let (status, answer) = app.post(&endpoints, &bad).await;
        assert_error(status, &answer, 422, code);
    }
    let (status, answer) = app
        .post(
            &endpoints,
            &json!({"url": "https://shop.example/", "secret": "x"}),
        )
        .await;
    assert_error(status, &answer, 400, "invalid_request");

    // The merchant's own key registers, lists, reads and deletes its endpoints; another
    // merchant's key can do none of it.
    let (status, own) = send(
        app.bearer(&shop_key, Method::POST, &endpoints)
            .json(&json!({"url": receiver.url, "event_types": ["refund.failed"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{own}");
    assert!(own["secret"].as_str().unwrap().starts_with("whsec_"));
    let own_id = own["id"].as_str().unwrap();
    let own_path = format!("{endpoints}/{own_id}");
    let (status, list) = send(app.bearer(&shop_key, Method::GET, &endpoints)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let listed: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![own_id]);
    let (status, read) = send(app.bearer(&shop_key, Method::GET, &own_path)).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["event_types"], json!(["refund.failed"]));
    for method in [Method::GET, Method::DELETE] {
        let (status, answer) = send(app.bearer(&other_key, method, &own_path)).await;
        assert_error(status, &answer, 404, "merchant_not_found");
    }
    let (status, deleted) = send(app.bearer(&shop_key, Method::DELETE, &own_path)).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["status"], "deleted");

    let (status, created) = send(
        app.bearer(&platform_key, Method::POST, &endpoints)
            .json(&body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["event_types"], json!([]), "empty means every type");
    let id = created["id"].as_str().unwrap();
    let (status, read) = app.get(&format!("{endpoints}/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["url"], receiver.url.as_str());
    assert!(read.get("secret").is_none());
    let (status, answer) = app
        .get(&format!("/v1/merchants/{other}/webhook-endpoints/{id}"))
        .await;
    assert_error(status, &answer, 404, "webhook_endpoint_not_found");
    let (status, answer) = send(app.bearer(
        &other_key,
        Method::GET,
        &format!("/v1/merchants/{other}/webhook-endpoints/{id}"),
    ))
    .await;
    assert_error(status, &answer, 404, "webhook_endpoint_not_found");
    let (status, answer) = app.get(&format!("{endpoints}/we_nope")).await;
    assert_error(status, &answer, 404, "webhook_endpoint_not_found");

    // The merchant's own key reads its events; another merchant sees none of them.
    record(&app, &clock, &shop, EventType::PaymentSucceeded, "pay_1", 1).await;
    let (status, mine) = send(app.bearer(&shop_key, Method::GET, &shop_events)).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["data"].as_array().unwrap().len(), 1);
    assert_eq!(mine["data"][0]["resource"]["id"], "pay_1");
    let (status, theirs) = send(app.bearer(
        &other_key,
        Method::GET,
        &format!("/v1/merchants/{other}/webhook-events"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{theirs}");
    assert_eq!(theirs["data"], json!([]));

    // Deleting stops deliveries: a pending one is cancelled.
    let (status, deleted) =
        send(app.bearer(&platform_key, Method::DELETE, &format!("{endpoints}/{id}"))).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["status"], "deleted");
    assert!(deleted["deleted_at"].is_string());
    let (status, again) = send(app.admin(Method::DELETE, &format!("{endpoints}/{id}"))).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["deleted_at"], deleted["deleted_at"]);
    let (_, list) = app.get(&endpoints).await;
    assert_eq!(list["data"], json!([]));
    assert_eq!(only_delivery(&app, &shop).await["state"], "cancelled");
    assert_eq!(app.webhooks.deliver_due(100).await.unwrap().claimed, 0);
    assert!(receiver.verdicts().is_empty());
}

#[tokio::test]
async fn events_are_listed_newest_first_by_cursor() {
    let (app, clock) = spawn_app_with_manual_clock().await;
    let shop = onboard_shop(&app).await;
    let (other, _) = app.merchant("너의빵집").await;
    let mut ids = Vec::new();
    for version in 1..=3 {
        ids.push(
            record(
                &app,
                &clock,
                &shop,
                EventType::EscrowShipped,
                "esc_1",
                version,
            )
            .await,
        );
        clock.advance_micros(SECOND_US);
        // Event ids are ULIDs of the wall clock, ordered by their millisecond: events recorded
        // within one millisecond have no order between them.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let path = format!("/v1/merchants/{shop}/webhook-events");
    let (status, first) = app.get(&format!("{path}?limit=2")).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let page: Vec<&str> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(page, vec![ids[2].as_str(), ids[1].as_str()]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app.get(&format!("{path}?limit=2&after={cursor}")).await;
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert_eq!(second["data"][0]["id"], ids[0].as_str());
    assert_eq!(second["data"][0]["type"], "escrow.shipped");
    assert_eq!(second["next_cursor"], Value::Null);
    for bad in ["?limit=0", "?limit=101", "?after=evt_nope", "?cursor=x"] {
        let (status, answer) = app.get(&format!("{path}{bad}")).await;
        assert_error(status, &answer, 400, "invalid_request");
    }
    let (status, others) = app
        .get(&format!("/v1/merchants/{other}/webhook-events"))
        .await;
    assert_eq!(status, StatusCode::OK, "{others}");
    assert_eq!(others["data"], json!([]), "events are per merchant");
}
