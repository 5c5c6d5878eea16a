//! Webhooks against a real database (SQLite, or PostgreSQL with `MYPAY_TEST_DATABASE_URL`):
//! the outbox (an event exists if and only if its transaction committed), who gets a delivery,
//! replays of the same change, the endpoint limit, and replicas that never send one attempt
//! twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use bank_accounts::AccountKeys;
use ledger::{Clock, ManualClock};
use serde_json::json;
use testkit::TestDb;
use webhooks::{
    record_event, DeliveryState, EventType, NewEndpoint, NewEvent, WebhookConfig, WebhookError,
    Webhooks, EVENT_ID_HEADER, SIGNATURE_HEADER, SIGNATURE_TOLERANCE_S,
};

/// 2026-11-22T00:00:00Z.
const START_MICROS: i64 = 1_795_305_600_000_000;
const MERCHANT: &str = "mer_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B";
const OTHER_MERCHANT: &str = "mer_01JD7Z8Q3K5N2V4W6X8Y0Z1A2C";

struct Setup {
    db: TestDb,
    clock: Arc<ManualClock>,
    keys: Arc<AccountKeys>,
    webhooks: Webhooks,
}

async fn setup(config: WebhookConfig) -> Setup {
    let db = TestDb::new(8).await;
    let clock = Arc::new(ManualClock::new(START_MICROS));
    let keys = Arc::new(AccountKeys::generate("k1").unwrap().0);
    let webhooks = Webhooks::new(db.db.clone(), clock.clone(), keys.clone(), config);
    Setup {
        db,
        clock,
        keys,
        webhooks,
    }
}

fn payment_event(merchant: &str, resource_id: &str, version: i64) -> NewEvent {
    NewEvent {
        merchant_id: merchant.to_owned(),
        event_type: EventType::PaymentSucceeded,
        resource_type: "payment",
        resource_id: resource_id.to_owned(),
        resource_version: version,
        data: json!({"id": resource_id, "status": "succeeded", "amount": "15000", "currency": "KRW"}),
    }
}

async fn endpoint(webhooks: &Webhooks, merchant: &str, url: &str, types: &[&str]) -> String {
    let created = webhooks
        .create_endpoint(
            merchant,
            &NewEndpoint {
                url: url.to_owned(),
                event_types: types.iter().map(|t| (*t).to_owned()).collect(),
            },
        )
        .await
        .unwrap();
    created.endpoint.id.to_string()
}

async fn count(db: &TestDb, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(db.db.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn an_event_recorded_in_a_rolled_back_transaction_leaves_nothing() {
    let s = setup(WebhookConfig::default()).await;
    endpoint(&s.webhooks, MERCHANT, "http://127.0.0.1:9/hooks", &[]).await;
    let mut tx = s.db.db.begin_write().await.unwrap();
    record_event(&mut tx, &payment_event(MERCHANT, "pay_1", 1), START_MICROS)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(count(&s.db, "webhook_events").await, 0);
    assert_eq!(count(&s.db, "webhook_deliveries").await, 0);
    assert_eq!(count(&s.db, "event_publications").await, 0);
    let page = s.webhooks.events(MERCHANT, None, 10).await.unwrap();
    assert!(page.items.is_empty());

    // A transaction dropped without commit (a failed request) rolls back the same way.
    {
        let mut tx = s.db.db.begin_write().await.unwrap();
        record_event(&mut tx, &payment_event(MERCHANT, "pay_2", 1), START_MICROS)
            .await
            .unwrap();
    }
    assert_eq!(count(&s.db, "webhook_events").await, 0);
    assert_eq!(count(&s.db, "webhook_deliveries").await, 0);
}

#[tokio::test]
async fn a_committed_event_gets_one_delivery_per_subscribed_active_endpoint() {
    let s = setup(WebhookConfig::default()).await;
    let all = endpoint(&s.webhooks, MERCHANT, "http://127.0.0.1:9/all", &[]).await;
    let payments = endpoint(
        &s.webhooks,
        MERCHANT,
        "http://127.0.0.1:9/payments",
        &["payment.succeeded", "payment.failed"],
    )
    .await;
    endpoint(
        &s.webhooks,
        MERCHANT,
        "http://127.0.0.1:9/refunds",
        &["refund.succeeded"],
    )
    .await;
    let deleted = endpoint(&s.webhooks, MERCHANT, "http://127.0.0.1:9/gone", &[]).await;
    s.webhooks
        .delete_endpoint(MERCHANT, &webhooks::EndpointId::parse(&deleted).unwrap())
        .await
        .unwrap();
    endpoint(&s.webhooks, OTHER_MERCHANT, "http://127.0.0.1:9/other", &[]).await;

    let mut tx = s.db.db.begin_write().await.unwrap();
    let id = record_event(&mut tx, &payment_event(MERCHANT, "pay_1", 2), START_MICROS)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let page = s.webhooks.events(MERCHANT, None, 10).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let event = &page.items[0];
    assert_eq!(event.id, id);
    assert_eq!(event.event_type, EventType::PaymentSucceeded);
    assert_eq!(
        (event.resource_type.as_str(), event.resource_id.as_str()),
        ("payment", "pay_1")
    );
    assert_eq!(event.resource_version, 2);
    assert_eq!(event.data["status"], "succeeded");
    let mut endpoints: Vec<String> = event
        .deliveries
        .iter()
        .map(|d| d.endpoint_id.to_string())
        .collect();
    endpoints.sort();
    let mut expected = vec![all, payments];
    expected.sort();
    assert_eq!(endpoints, expected);
    for delivery in &event.deliveries {
        assert_eq!(delivery.state, DeliveryState::Pending);
        assert_eq!(delivery.attempts, 0);
        assert_eq!(delivery.next_attempt_at, Some(START_MICROS));
        assert_eq!(delivery.merchant_id, MERCHANT);
    }
    assert!(s
        .webhooks
        .events(OTHER_MERCHANT, None, 10)
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test]
async fn recording_the_same_change_again_is_the_same_event_and_other_content_is_refused() {
    let s = setup(WebhookConfig::default()).await;
    endpoint(&s.webhooks, MERCHANT, "http://127.0.0.1:9/all", &[]).await;
    let event = payment_event(MERCHANT, "pay_1", 1);
    let mut tx = s.db.db.begin_write().await.unwrap();
    let first = record_event(&mut tx, &event, START_MICROS).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = s.db.db.begin_write().await.unwrap();
    let again = record_event(&mut tx, &event, START_MICROS + 5_000_000)
        .await
        .unwrap();
    assert_eq!(again, first);
    let mut changed = event.clone();
    changed.data = json!({"status": "other"});
    match record_event(&mut tx, &changed, START_MICROS).await {
        Err(WebhookError::EventConflict { event_id }) => assert_eq!(event_id, first.to_string()),
        other => panic!("{other:?}"),
    }
    // The caller's transaction is still usable (no failed statement on PostgreSQL).
    let next = record_event(&mut tx, &payment_event(MERCHANT, "pay_1", 2), START_MICROS)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_ne!(next, first);
    assert_eq!(count(&s.db, "webhook_events").await, 2);
    assert_eq!(count(&s.db, "webhook_deliveries").await, 2);
    // One publication to the event stream per event, a replay adding none.
    assert_eq!(count(&s.db, "event_publications").await, 2);
}

#[tokio::test]
async fn bad_events_are_refused_before_anything_is_written() {
    let s = setup(WebhookConfig::default()).await;
    let mut tx = s.db.db.begin_write().await.unwrap();
    let mut bad = payment_event("merchant-1", "pay_1", 1);
    assert_eq!(
        record_event(&mut tx, &bad, START_MICROS)
            .await
            .unwrap_err()
            .code(),
        "merchant_not_found"
    );
    bad.merchant_id = MERCHANT.to_owned();
    bad.resource_version = -1;
    assert_eq!(
        record_event(&mut tx, &bad, START_MICROS)
            .await
            .unwrap_err()
            .code(),
        "webhook_event_invalid"
    );
    record_event(&mut tx, &payment_event(MERCHANT, "pay_1", 0), START_MICROS)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count(&s.db, "webhook_events").await, 1);
}

#[tokio::test]
async fn endpoints_are_checked_limited_per_merchant_and_deleted_once() {
    let s = setup(WebhookConfig {
        endpoints_per_merchant_max: 2,
        ..WebhookConfig::default()
    })
    .await;
    let new = |url: &str, types: &[&str]| NewEndpoint {
        url: url.to_owned(),
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
    };
    for (url, types, code) in [
        ("ftp://shop.example/", &[][..], "webhook_url_invalid"),
        ("https://u:p@shop.example/", &[], "webhook_url_invalid"),
        (
            "https://shop.example/",
            &["payment.refunded"],
            "webhook_event_type_unknown",
        ),
    ] {
        let error = s
            .webhooks
            .create_endpoint(MERCHANT, &new(url, types))
            .await
            .unwrap_err();
        assert_eq!(error.code(), code, "{url}");
    }
    assert_eq!(
        s.webhooks
            .create_endpoint("shop", &new("https://shop.example/", &[]))
            .await
            .unwrap_err()
            .code(),
        "merchant_not_found"
    );

    let created = s
        .webhooks
        .create_endpoint(
            MERCHANT,
            &new(
                "https://shop.example/hooks",
                &["refund.succeeded", "payment.succeeded", "refund.succeeded"],
            ),
        )
        .await
        .unwrap();
    assert!(created.secret.expose().starts_with("whsec_"));
    assert_eq!(
        created.endpoint.event_types,
        vec![EventType::PaymentSucceeded, EventType::RefundSucceeded]
    );
    let sealed: String =
        sqlx::query_scalar("SELECT secret_sealed FROM webhook_endpoints WHERE id = $1")
            .bind(created.endpoint.id.as_str())
            .fetch_one(s.db.db.pool())
            .await
            .unwrap();
    assert!(!sealed.contains(created.secret.expose()));

    s.webhooks
        .create_endpoint(MERCHANT, &new("https://shop.example/second", &[]))
        .await
        .unwrap();
    let refused = s
        .webhooks
        .create_endpoint(MERCHANT, &new("https://shop.example/third", &[]))
        .await
        .unwrap_err();
    assert!(matches!(refused, WebhookError::EndpointLimitReached(2)));
    s.webhooks
        .create_endpoint(OTHER_MERCHANT, &new("https://other.example/", &[]))
        .await
        .expect("the limit is per merchant");

    let id = created.endpoint.id.clone();
    assert_eq!(
        s.webhooks
            .endpoint(OTHER_MERCHANT, &id)
            .await
            .unwrap_err()
            .code(),
        "webhook_endpoint_not_found",
        "another merchant's endpoint is not found"
    );
    let deleted = s.webhooks.delete_endpoint(MERCHANT, &id).await.unwrap();
    assert_eq!(deleted.status, webhooks::EndpointStatus::Deleted);
    assert_eq!(deleted.deleted_at, Some(START_MICROS));
    let again = s.webhooks.delete_endpoint(MERCHANT, &id).await.unwrap();
    assert_eq!(
        again, deleted,
        "deleting twice answers the deleted endpoint"
    );
    assert_eq!(s.webhooks.endpoints(MERCHANT).await.unwrap().len(), 1);
    s.webhooks
        .create_endpoint(MERCHANT, &new("https://shop.example/third", &[]))
        .await
        .expect("a deleted endpoint gives its slot back once");
    assert!(s
        .webhooks
        .create_endpoint(MERCHANT, &new("https://shop.example/fourth", &[]))
        .await
        .is_err());
}

/// What a test receiver saw: per event id, how many deliveries arrived with a valid signature.
#[derive(Clone, Default)]
struct Receiver {
    secret: Arc<Mutex<String>>,
    seen: Arc<Mutex<HashMap<String, usize>>>,
    clock: Option<Arc<ManualClock>>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let secret = receiver.secret.lock().unwrap().clone();
    let signature = headers[SIGNATURE_HEADER].to_str().unwrap();
    let now_s = receiver.clock.as_ref().unwrap().now_micros() / 1_000_000;
    if webhooks::verify(
        secret.as_bytes(),
        signature,
        body.as_bytes(),
        now_s,
        SIGNATURE_TOLERANCE_S,
    )
    .is_err()
    {
        return StatusCode::BAD_REQUEST;
    }
    let event_id = headers[EVENT_ID_HEADER].to_str().unwrap().to_owned();
    *receiver.seen.lock().unwrap().entry(event_id).or_default() += 1;
    StatusCode::NO_CONTENT
}

async fn spawn_receiver(receiver: Receiver) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/hooks", post(receive))
        .with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}/hooks")
}

#[tokio::test]
async fn replicas_working_the_same_queue_send_each_delivery_once() {
    let s = setup(WebhookConfig::default()).await;
    let receiver = Receiver {
        clock: Some(s.clock.clone()),
        ..Receiver::default()
    };
    let url = spawn_receiver(receiver.clone()).await;
    let created = s
        .webhooks
        .create_endpoint(
            MERCHANT,
            &NewEndpoint {
                url,
                event_types: vec![],
            },
        )
        .await
        .unwrap();
    *receiver.secret.lock().unwrap() = created.secret.expose().to_owned();
    const EVENTS: usize = 40;
    let mut tx = s.db.db.begin_write().await.unwrap();
    for i in 0..EVENTS {
        record_event(
            &mut tx,
            &payment_event(MERCHANT, &format!("pay_{i}"), 1),
            START_MICROS,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    // Two services over the same database stand for two replicas; each runs passes of 7.
    let replica = Webhooks::new(
        s.db.db.clone(),
        s.clock.clone(),
        s.keys.clone(),
        WebhookConfig::default(),
    );
    let mut workers = tokio::task::JoinSet::new();
    for service in [s.webhooks.clone(), replica] {
        workers.spawn(async move {
            let mut delivered = 0;
            for _ in 0..20 {
                delivered += service.deliver_due(7).await.unwrap().delivered;
            }
            delivered
        });
    }
    let mut delivered = 0;
    while let Some(done) = workers.join_next().await {
        delivered += done.unwrap();
    }
    assert_eq!(delivered, EVENTS);
    let seen = receiver.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), EVENTS);
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    let pass = s.webhooks.deliver_due(100).await.unwrap();
    assert_eq!(pass.claimed, 0, "nothing is left to send");
}
