//! The event stream against the real NATS server (JetStream; `MYPAY_TEST_NATS_URL`, default
//! `nats://127.0.0.1:4222`) and a real database (SQLite, or PostgreSQL with
//! `MYPAY_TEST_DATABASE_URL`): events recorded by `webhooks::record_event` are published once
//! each with their subject, body and `Nats-Msg-Id`; a rolled-back event never is; two
//! publishers on one database never publish an event twice; a NATS that goes away and comes
//! back loses nothing. Each test has its own stream and subject prefix, deleted afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use events::{Publisher, StreamConfig, PUBLISH_BATCH_MAX};
use ledger::{Clock, ManualClock};
use serde_json::{json, Value};
use storage::Db;
use testkit::TestDb;
use webhooks::{record_event, EventId, EventType, NewEvent};

/// 2026-11-22T00:00:00Z.
const START_MICROS: i64 = 1_795_305_600_000_000;
const MERCHANT: &str = "mer_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B";
/// The most messages a test reads back from its stream.
const STREAM_READ_MAX: u64 = 1000;

/// A stream of the test's own on the test NATS server, deleted when the test ends (also when
/// it fails).
struct TestStream {
    url: String,
    name: String,
    prefix: String,
}

impl TestStream {
    /// `None` only when `MYPAY_TEST_NATS_URL` is set and empty: the test is skipped.
    fn new() -> Option<TestStream> {
        let url = testkit::test_nats_url()?;
        let tag = ulid::Ulid::new().to_string();
        Some(TestStream {
            url,
            name: format!("MYPAY_TEST_{tag}"),
            prefix: format!("test.{}.events", tag.to_lowercase()),
        })
    }

    fn config(&self, url: &str) -> StreamConfig {
        StreamConfig::new(url, &self.name, &self.prefix).unwrap()
    }

    /// Every message in the stream, in stream order.
    async fn messages(&self) -> Vec<jetstream::message::StreamMessage> {
        let client = async_nats::connect(&self.url).await.expect("reach NATS");
        let context = jetstream::new(client);
        let stream = context
            .get_stream(&self.name)
            .await
            .expect("the stream exists");
        let state = stream.get_info().await.unwrap().state;
        assert!(state.messages <= STREAM_READ_MAX, "{state:?}");
        let mut messages = Vec::new();
        if state.messages == 0 {
            return messages;
        }
        for sequence in state.first_sequence..=state.last_sequence {
            messages.push(stream.get_raw_message(sequence).await.unwrap());
        }
        messages
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop cannot await; a thread of its own with its own runtime deletes the stream.
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                if let Ok(client) = async_nats::connect(url).await {
                    let _ = jetstream::new(client).delete_stream(&name).await;
                }
            });
        });
        let _ = deleted.join();
    }
}

fn event(event_type: EventType, resource_type: &'static str, resource_id: &str) -> NewEvent {
    NewEvent {
        merchant_id: MERCHANT.to_owned(),
        event_type,
        resource_type,
        resource_id: resource_id.to_owned(),
        resource_version: 1,
        data: json!({"id": resource_id, "amount": "15000", "currency": "KRW"}),
    }
}

async fn record(db: &Db, event: &NewEvent) -> EventId {
    let mut tx = db.begin_write().await.unwrap();
    let id = record_event(&mut tx, event, START_MICROS).await.unwrap();
    tx.commit().await.unwrap();
    id
}

async fn record_payments(db: &Db, n: usize) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for i in 0..n {
        let event = event(EventType::PaymentSucceeded, "payment", &format!("pay_{i}"));
        ids.insert(record(db, &event).await.to_string());
    }
    ids
}

/// A publisher whose background connection is up.
async fn connected(db: &Db, clock: Arc<dyn Clock>, config: StreamConfig) -> Publisher {
    let publisher = Publisher::connect(db.clone(), clock, config).await.unwrap();
    for _ in 0..100 {
        if publisher.is_connected() {
            return publisher;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the publisher did not connect to NATS");
}

async fn states(db: &Db) -> BTreeMap<String, i64> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT state, COUNT(*) FROM event_publications GROUP BY state ORDER BY state",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    rows.into_iter().collect()
}

fn msg_id(message: &jetstream::message::StreamMessage) -> String {
    message
        .headers
        .get(async_nats::header::NATS_MESSAGE_ID)
        .expect("a Nats-Msg-Id header")
        .as_str()
        .to_owned()
}

#[tokio::test]
async fn committed_events_are_published_once_with_their_subject_body_and_id() {
    let db = TestDb::new(4).await;
    let Some(stream) = TestStream::new() else {
        return;
    };
    let clock = Arc::new(ManualClock::new(START_MICROS));
    let recorded = [
        event(EventType::PaymentSucceeded, "payment", "pay_1"),
        event(EventType::PaymentOrderSucceeded, "payment_order", "po_1"),
        event(EventType::RefundSucceeded, "refund", "rfd_1"),
    ];
    let mut ids = Vec::new();
    for event in &recorded {
        ids.push(record(&db.db, event).await.to_string());
    }
    // An event whose transaction rolled back has no publication, so it is never published.
    let mut tx = db.db.begin_write().await.unwrap();
    let rolled_back = record_event(
        &mut tx,
        &event(EventType::PaymentFailed, "payment", "pay_2"),
        START_MICROS,
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();

    let mut publisher = connected(&db.db, clock.clone(), stream.config(&stream.url)).await;
    let pass = publisher.publish_due(PUBLISH_BATCH_MAX).await.unwrap();
    assert_eq!(
        (pass.claimed, pass.published, pass.failed),
        (3, 3, 0),
        "{pass:?}"
    );
    assert_eq!(pass.duplicates, 0);
    // A second pass, and a second publisher, find nothing left.
    let again = publisher.publish_due(PUBLISH_BATCH_MAX).await.unwrap();
    assert_eq!(again.claimed, 0);
    let mut other = connected(&db.db, clock.clone(), stream.config(&stream.url)).await;
    assert_eq!(
        other.publish_due(PUBLISH_BATCH_MAX).await.unwrap().claimed,
        0
    );

    let messages = stream.messages().await;
    assert_eq!(messages.len(), 3);
    for ((message, event), id) in messages.iter().zip(&recorded).zip(&ids) {
        assert_eq!(
            message.subject.as_str(),
            format!("{}.{}", stream.prefix, event.event_type.as_str())
        );
        assert_eq!(&msg_id(message), id);
        assert_ne!(msg_id(message), rolled_back.to_string());
        // The body is the webhook body with the merchant id added.
        let mut body: Value = serde_json::from_slice(&message.payload).unwrap();
        let merchant = body.as_object_mut().unwrap().remove("merchant_id");
        assert_eq!(merchant, Some(json!(MERCHANT)));
        let webhook_body: String =
            sqlx::query_scalar("SELECT payload FROM webhook_events WHERE id = $1")
                .bind(id)
                .fetch_one(db.db.pool())
                .await
                .unwrap();
        assert_eq!(body, serde_json::from_str::<Value>(&webhook_body).unwrap());
        assert_eq!(body["type"], event.event_type.as_str());
        assert_eq!(body["resource"]["id"], event.resource_id.as_str());
    }
    // Each row remembers where it went.
    let stored: Vec<(String, Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT state, stream_name, stream_sequence FROM event_publications ORDER BY created_at, event_id",
    )
    .fetch_all(db.db.pool())
    .await
    .unwrap();
    assert_eq!(stored.len(), 3);
    for (state, name, sequence) in stored {
        assert_eq!(state, "published");
        assert_eq!(name.as_deref(), Some(stream.name.as_str()));
        assert!(sequence.is_some_and(|s| (1..=3).contains(&s)));
    }
}

#[tokio::test]
async fn two_publishers_on_one_database_publish_every_event_once() {
    let test_db = TestDb::new(4).await;
    let db = &test_db.db;
    // A second pool on the same database stands for a second replica.
    let replica = Db::connect(&test_db.url, 4).await.unwrap();
    let Some(stream) = TestStream::new() else {
        return;
    };
    let clock = Arc::new(ManualClock::new(START_MICROS));
    let ids = record_payments(db, 250).await;

    let one = connected(db, clock.clone(), stream.config(&stream.url)).await;
    let two = connected(&replica, clock.clone(), stream.config(&stream.url)).await;
    let drain = |mut publisher: Publisher| async move {
        let mut published = 0;
        // 250 rows in batches of at most 10: bounded well above what the two need together.
        for _ in 0..100 {
            let pass = publisher.publish_due(10).await.unwrap();
            assert_eq!(pass.failed, 0, "{pass:?}");
            published += pass.published;
            if pass.claimed == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        (publisher, published)
    };
    let (first, second) = tokio::join!(tokio::spawn(drain(one)), tokio::spawn(drain(two)));
    let (mut one, by_one) = first.unwrap();
    let (_two, by_two) = second.unwrap();
    assert_eq!(by_one + by_two, 250);
    assert_eq!(
        states(db).await,
        BTreeMap::from([("published".to_owned(), 250)])
    );

    let messages = stream.messages().await;
    assert_eq!(messages.len(), 250);
    let published: BTreeSet<String> = messages.iter().map(msg_id).collect();
    assert_eq!(published, ids);

    // A publisher that died after JetStream's ack but before marking its rows: they are
    // published again, and JetStream drops the repeats by their Nats-Msg-Id.
    sqlx::query(
        "UPDATE event_publications SET state = 'pending', published_at = NULL, \
             stream_name = NULL, stream_sequence = NULL",
    )
    .execute(db.pool())
    .await
    .unwrap();
    clock.advance_micros(i64::try_from(events::LEASE.as_micros()).unwrap());
    let mut republished = 0;
    for _ in 0..10 {
        let pass = one.publish_due(PUBLISH_BATCH_MAX).await.unwrap();
        assert_eq!(pass.duplicates, pass.published, "{pass:?}");
        republished += pass.published;
        if pass.claimed == 0 {
            break;
        }
    }
    assert_eq!(republished, 250);
    assert_eq!(stream.messages().await.len(), 250);
    replica.close().await;
}

/// A TCP relay to the NATS server that can be cut and restored, standing for a NATS that goes
/// away and comes back.
struct Relay {
    url: String,
    up: tokio::sync::watch::Sender<bool>,
}

impl Relay {
    async fn start(upstream: String) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("nats://{}", listener.local_addr().unwrap());
        let (up, watching) = tokio::sync::watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let mut watching = watching.clone();
                if !*watching.borrow() {
                    continue;
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watching.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Relay { url, up }
    }

    fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

fn host_port(url: &str) -> String {
    url.split_once("://")
        .map_or(url, |(_, rest)| rest)
        .to_owned()
}

#[tokio::test]
async fn a_nats_that_goes_away_and_comes_back_loses_nothing() {
    let db = TestDb::new(4).await;
    let Some(stream) = TestStream::new() else {
        return;
    };
    let clock = Arc::new(ManualClock::new(START_MICROS));
    let relay = Relay::start(host_port(&stream.url)).await;
    let mut publisher = connected(&db.db, clock.clone(), stream.config(&relay.url)).await;
    let before = record_payments(&db.db, 5).await;
    assert_eq!(
        publisher
            .publish_due(PUBLISH_BATCH_MAX)
            .await
            .unwrap()
            .published,
        5
    );

    relay.set_up(false);
    let mut during = BTreeSet::new();
    for i in 0..5 {
        let event = event(EventType::RefundSucceeded, "refund", &format!("rfd_{i}"));
        during.insert(record(&db.db, &event).await.to_string());
    }
    // While NATS is away, passes either see no connection or fail to get acks: nothing is
    // marked, nothing is dropped.
    for _ in 0..3 {
        let pass = publisher.publish_due(PUBLISH_BATCH_MAX).await.unwrap();
        assert_eq!(pass.published, 0, "{pass:?}");
        clock.advance_micros(1_000_000);
    }
    assert_eq!(
        states(&db.db).await,
        BTreeMap::from([("pending".to_owned(), 5), ("published".to_owned(), 5)])
    );

    relay.set_up(true);
    let mut published = 0;
    for _ in 0..300 {
        let pass = publisher.publish_due(PUBLISH_BATCH_MAX).await.unwrap();
        published += pass.published;
        if published == 5 {
            break;
        }
        // Failed rows wait their retry delay on the injected clock; the client's reconnect
        // waits on the real one.
        clock.advance_micros(61_000_000);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(published, 5);
    assert_eq!(
        states(&db.db).await,
        BTreeMap::from([("published".to_owned(), 10)])
    );
    let messages = stream.messages().await;
    let ids: BTreeSet<String> = messages.iter().map(msg_id).collect();
    assert_eq!(
        messages.len(),
        10,
        "each event once, however often it was sent"
    );
    assert_eq!(ids, before.union(&during).cloned().collect());
}
