//! The webhooks service: endpoints, the event list, the delivery worker's pass, and the
//! operator's re-queueing of dead deliveries.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bank_accounts::AccountKeys;
use ledger::{Clock, Micros, Page};
use storage::Db;
use tokio::task::JoinSet;
use ulid::Ulid;

use crate::delivery::{
    retry_delay_s, send, Attempt, Delivery, DeliveryPass, DeliveryState, Outgoing, ATTEMPTS_MAX,
    DELIVERY_BATCH_MAX, LEASE, MICROS_PER_S, REQUEST_TIMEOUT_DEFAULT,
};
use crate::endpoint::{
    check_url, event_types_json, parse_event_types, CreatedEndpoint, Endpoint, EndpointSecret,
    EndpointStatus, NewEndpoint,
};
use crate::error::WebhookError;
use crate::event::EventType;
use crate::id::{check_merchant_id, DeliveryId, EndpointId, EventId};
use crate::store::{self, ClaimedRow, DeliveryRow, EventRow, Finished};

/// Live endpoints per merchant when not configured otherwise.
pub const ENDPOINTS_PER_MERCHANT_MAX_DEFAULT: i64 = 16;
/// The largest page of events.
pub const EVENT_PAGE_SIZE_MAX: i64 = 100;
/// Where endpoint secrets are sealed: the associated data starts with this, so a sealed
/// secret never opens as an account number or in another endpoint's row.
const SECRET_AAD_DOMAIN: &str = "mypay.webhooks.endpoint_secret.v1";

/// Tunables of webhooks.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Live endpoints per merchant.
    pub endpoints_per_merchant_max: i64,
    /// How long one delivery request may take.
    pub request_timeout: Duration,
}

impl Default for WebhookConfig {
    fn default() -> WebhookConfig {
        WebhookConfig {
            endpoints_per_merchant_max: ENDPOINTS_PER_MERCHANT_MAX_DEFAULT,
            request_timeout: REQUEST_TIMEOUT_DEFAULT,
        }
    }
}

/// An event with where its deliveries stand.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub id: EventId,
    pub merchant_id: String,
    pub event_type: EventType,
    pub resource_type: String,
    pub resource_id: String,
    pub resource_version: i64,
    /// The `data` object the deliveries carry.
    pub data: serde_json::Value,
    pub created_at: Micros,
    /// One per endpoint that was subscribed when the event was recorded.
    pub deliveries: Vec<Delivery>,
}

/// The webhooks service. Cheap to clone: every part is a handle.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    clock: Arc<dyn Clock>,
    keys: Arc<AccountKeys>,
    client: reqwest::Client,
    config: WebhookConfig,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("db", &self.inner.db)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    /// The service over a migrated database. Endpoint secrets are sealed under `keys`, the
    /// account-number keyring (one keyring to configure, back up and rotate); time comes from
    /// `clock`, so that tests move it to make retries due.
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        keys: Arc<AccountKeys>,
        config: WebhookConfig,
    ) -> Webhooks {
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client with rustls and its bundled roots always builds");
        Webhooks {
            inner: Arc::new(Inner {
                db,
                clock,
                keys,
                client,
                config,
            }),
        }
    }

    /// The current time on the injected clock.
    pub fn now_micros(&self) -> Micros {
        self.inner.clock.now_micros()
    }

    /// Registers an endpoint for a merchant and returns it with its signing secret, which is
    /// stored only sealed and never shown again.
    pub async fn create_endpoint(
        &self,
        merchant_id: &str,
        new: &NewEndpoint,
    ) -> Result<CreatedEndpoint, WebhookError> {
        check_merchant_id(merchant_id)?;
        let url = check_url(&new.url)?;
        let event_types = parse_event_types(&new.event_types)?;
        let id = EndpointId::generate();
        let secret = EndpointSecret::generate()?;
        let sealed = self
            .inner
            .keys
            .seal(secret.expose().as_bytes(), &secret_aad(&id))?;
        let now = self.now_micros();
        let subscription = event_types_json(&event_types);
        let max = self.inner.config.endpoints_per_merchant_max;
        let mut tx = self.inner.db.begin_write().await?;
        if !store::take_endpoint_slot(&mut tx, merchant_id, max).await? {
            return Err(WebhookError::EndpointLimitReached(max));
        }
        store::insert_endpoint(
            &mut tx,
            &store::NewEndpointRow {
                id: id.as_str(),
                merchant_id,
                url: &url,
                event_types: &subscription,
                secret_key_id: &sealed.key_id,
                secret_sealed: &sealed.sealed,
                now,
            },
        )
        .await?;
        tx.commit().await?;
        let endpoint = Endpoint {
            id,
            merchant_id: merchant_id.to_owned(),
            url,
            event_types,
            status: EndpointStatus::Active,
            created_at: now,
            deleted_at: None,
        };
        Ok(CreatedEndpoint { endpoint, secret })
    }

    /// A merchant's endpoint, deleted ones included; another merchant's is not found.
    pub async fn endpoint(
        &self,
        merchant_id: &str,
        id: &EndpointId,
    ) -> Result<Endpoint, WebhookError> {
        check_merchant_id(merchant_id)?;
        match store::endpoint(&self.inner.db, id.as_str()).await? {
            Some(row) if row.merchant_id == merchant_id => Endpoint::from_row(row),
            _ => Err(WebhookError::EndpointNotFound(id.to_string())),
        }
    }

    /// A merchant's active endpoints, oldest first (at most the per-merchant limit).
    pub async fn endpoints(&self, merchant_id: &str) -> Result<Vec<Endpoint>, WebhookError> {
        check_merchant_id(merchant_id)?;
        let mut conn = self.inner.db.pool().acquire().await?;
        store::live_endpoints(&mut conn, merchant_id)
            .await?
            .into_iter()
            .map(Endpoint::from_row)
            .collect()
    }

    /// Deletes an endpoint: no new deliveries, and its pending and dead deliveries are
    /// cancelled. Deleting a deleted endpoint answers it as it is.
    pub async fn delete_endpoint(
        &self,
        merchant_id: &str,
        id: &EndpointId,
    ) -> Result<Endpoint, WebhookError> {
        self.endpoint(merchant_id, id).await?;
        store::delete_endpoint(&self.inner.db, id.as_str(), merchant_id, self.now_micros()).await?;
        self.endpoint(merchant_id, id).await
    }

    /// A merchant's events, newest first, each with its deliveries. `after` is the previous
    /// page's `next` cursor (an event id).
    pub async fn events(
        &self,
        merchant_id: &str,
        after: Option<&EventId>,
        limit: i64,
    ) -> Result<Page<EventRecord>, WebhookError> {
        check_merchant_id(merchant_id)?;
        let limit = limit.clamp(1, EVENT_PAGE_SIZE_MAX);
        let mut rows = store::events_page(&self.inner.db, merchant_id, after, limit + 1).await?;
        let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = if more {
            rows.last().map(|row| row.id.clone())
        } else {
            None
        };
        let ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
        let mut deliveries: BTreeMap<String, Vec<DeliveryRow>> = BTreeMap::new();
        for delivery in store::deliveries_of_events(&self.inner.db, &ids).await? {
            deliveries
                .entry(delivery.event_id.clone())
                .or_default()
                .push(delivery);
        }
        let items = rows
            .into_iter()
            .map(|row| {
                let mine = deliveries.remove(&row.id).unwrap_or_default();
                event_from(row, mine)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, next })
    }

    /// One delivery, if it exists.
    pub async fn delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>, WebhookError> {
        store::delivery(&self.inner.db, id.as_str())
            .await?
            .map(delivery_from)
            .transpose()
    }

    /// Re-queues a dead delivery with a fresh schedule, due at once (an operator's retry after
    /// the receiver was fixed). Pending, delivered and cancelled deliveries are refused.
    pub async fn retry_delivery(&self, id: &DeliveryId) -> Result<Delivery, WebhookError> {
        let requeued = store::requeue_dead(&self.inner.db, id.as_str(), self.now_micros()).await?;
        let delivery = self
            .delivery(id)
            .await?
            .ok_or_else(|| WebhookError::DeliveryNotFound(id.to_string()))?;
        if requeued {
            Ok(delivery)
        } else {
            Err(WebhookError::DeliveryNotDead {
                id: id.to_string(),
                state: delivery.state.as_str().to_owned(),
            })
        }
    }

    /// One pass of the delivery worker: ends deliveries whose last attempt was lost with a
    /// dead worker, claims up to `limit` due ones (at most [`DELIVERY_BATCH_MAX`]) under a
    /// lease, sends them concurrently, and records each outcome under the claim. Safe to run
    /// on several replicas at once: a delivery is claimed by one pass at a time.
    pub async fn deliver_due(&self, limit: i64) -> Result<DeliveryPass, WebhookError> {
        let db = &self.inner.db;
        let now = self.now_micros();
        let mut pass = DeliveryPass {
            dead: usize::try_from(store::bury_lost_last_attempts(db, ATTEMPTS_MAX, now).await?)
                .unwrap_or(usize::MAX),
            ..DeliveryPass::default()
        };
        let token = Ulid::new().to_string();
        let lease = i64::try_from(LEASE.as_micros()).expect("the lease is a minute");
        let limit = limit.clamp(1, DELIVERY_BATCH_MAX);
        let ids = store::claim_due(db, &token, now, now + lease, ATTEMPTS_MAX, limit).await?;
        let claimed = store::claimed(db, &token, &ids).await?;
        pass.claimed = claimed.len();
        let mut sends = JoinSet::new();
        for row in claimed {
            let service = self.clone();
            let token = token.clone();
            sends.spawn(async move { service.attempt(row, &token).await });
        }
        // Every send runs to its end even when another one's outcome could not be recorded:
        // dropping the set would abort requests halfway. An unrecorded outcome is not lost; its
        // claim runs out and the delivery is attempted again.
        let mut failure = None;
        while let Some(joined) = sends.join_next().await {
            let state = joined
                .map_err(|error| WebhookError::Internal(format!("a delivery task: {error}")))
                .and_then(|recorded| recorded);
            match state {
                Ok(Some(DeliveryState::Delivered)) => pass.delivered += 1,
                Ok(Some(DeliveryState::Pending)) => pass.retrying += 1,
                Ok(Some(DeliveryState::Dead)) => pass.dead += 1,
                Ok(Some(DeliveryState::Cancelled)) => pass.cancelled += 1,
                Ok(None) => {}
                Err(error) => failure = failure.or(Some(error)),
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(pass),
        }
    }

    /// Makes one claimed attempt and records its outcome; returns the delivery's new state, or
    /// `None` when the claim was lost meanwhile (nothing recorded).
    async fn attempt(
        &self,
        row: ClaimedRow,
        token: &str,
    ) -> Result<Option<DeliveryState>, WebhookError> {
        if row.endpoint_status != EndpointStatus::Active.as_str() {
            let finished = self.finished(DeliveryState::Cancelled, None, None);
            return self.record(&row, token, &finished).await;
        }
        let secret = match self.open_secret(&row) {
            Ok(secret) => secret,
            Err(error) => {
                tracing::error!(delivery = %row.id, %error, "an endpoint secret does not open");
                let finished = self.after_failure(&row, None, "secret_unavailable");
                return self.record(&row, token, &finished).await;
            }
        };
        let outgoing = Outgoing {
            url: &row.url,
            secret: secret.expose().as_bytes(),
            event_id: &row.event_id,
            event_type: &row.event_type,
            body: &row.payload,
            now: self.now_micros(),
        };
        let finished = match send(&self.inner.client, &outgoing).await {
            Attempt::Delivered { status } => {
                self.finished(DeliveryState::Delivered, Some(status), None)
            }
            Attempt::Failed { status, error } => {
                tracing::info!(
                    delivery = %row.id,
                    endpoint = %row.endpoint_id,
                    attempt = row.attempts,
                    status,
                    error,
                    "webhook attempt failed"
                );
                self.after_failure(&row, status, error)
            }
        };
        self.record(&row, token, &finished).await
    }

    /// The stored outcome of a failed attempt: another attempt after the schedule's wait, or
    /// dead after the last.
    fn after_failure(
        &self,
        row: &ClaimedRow,
        status: Option<u16>,
        error: &'static str,
    ) -> Finished<'static> {
        match retry_delay_s(row.attempts) {
            Some(delay_s) => {
                let mut finished = self.finished(DeliveryState::Pending, status, Some(error));
                finished.next_attempt_at = finished.now + delay_s * MICROS_PER_S;
                finished
            }
            None => self.finished(DeliveryState::Dead, status, Some(error)),
        }
    }

    fn finished(
        &self,
        state: DeliveryState,
        status: Option<u16>,
        error: Option<&'static str>,
    ) -> Finished<'static> {
        let now = self.now_micros();
        Finished {
            state: state.as_str(),
            next_attempt_at: now,
            last_status: status.map(i64::from),
            last_error: error,
            delivered_at: (state == DeliveryState::Delivered).then_some(now),
            now,
        }
    }

    async fn record(
        &self,
        row: &ClaimedRow,
        token: &str,
        finished: &Finished<'_>,
    ) -> Result<Option<DeliveryState>, WebhookError> {
        let applied = store::finish_attempt(&self.inner.db, &row.id, token, finished).await?;
        if !applied {
            tracing::warn!(delivery = %row.id, "a delivery's claim ran out before its outcome was recorded");
            return Ok(None);
        }
        DeliveryState::from_db(finished.state).map(Some)
    }

    fn open_secret(&self, row: &ClaimedRow) -> Result<EndpointSecret, WebhookError> {
        let id = EndpointId::from_stored(row.endpoint_id.clone());
        let bytes =
            self.inner
                .keys
                .open(&row.secret_key_id, &row.secret_sealed, &secret_aad(&id))?;
        String::from_utf8(bytes)
            .map(EndpointSecret::from_opened)
            .map_err(|_| WebhookError::Internal("a sealed secret is not text".into()))
    }
}

/// The associated data an endpoint's secret is sealed with: the use and the endpoint's id.
fn secret_aad(id: &EndpointId) -> Vec<u8> {
    format!("{SECRET_AAD_DOMAIN}|{id}").into_bytes()
}

fn delivery_from(row: DeliveryRow) -> Result<Delivery, WebhookError> {
    let state = DeliveryState::from_db(&row.state)?;
    Ok(Delivery {
        id: DeliveryId::from_stored(row.id),
        event_id: EventId::from_stored(row.event_id),
        endpoint_id: EndpointId::from_stored(row.endpoint_id),
        merchant_id: row.merchant_id,
        state,
        attempts: row.attempts,
        next_attempt_at: (state == DeliveryState::Pending).then_some(row.next_attempt_at),
        last_status: row.last_status,
        last_error: row.last_error,
        created_at: row.created_at,
        updated_at: row.updated_at,
        delivered_at: row.delivered_at,
    })
}

fn event_from(row: EventRow, deliveries: Vec<DeliveryRow>) -> Result<EventRecord, WebhookError> {
    let event_type = EventType::parse(&row.event_type).ok_or_else(|| {
        WebhookError::Internal(format!("unknown stored event type {:?}", row.event_type))
    })?;
    let mut payload: serde_json::Value = serde_json::from_str(&row.payload)
        .map_err(|_| WebhookError::Internal("a stored event payload is not JSON".into()))?;
    Ok(EventRecord {
        id: EventId::from_stored(row.id),
        merchant_id: row.merchant_id,
        event_type,
        resource_type: row.resource_type,
        resource_id: row.resource_id,
        resource_version: row.resource_version,
        data: payload["data"].take(),
        created_at: row.created_at,
        deliveries: deliveries
            .into_iter()
            .map(delivery_from)
            .collect::<Result<_, _>>()?,
    })
}

#[cfg(test)]
mod tests {
    use ledger::ManualClock;
    use serde_json::json;
    use testkit::TestDb;

    use super::*;
    use crate::event::{record_event, NewEvent};

    const START: Micros = 1_795_305_600_000_000;
    const MERCHANT: &str = "mer_lease";

    async fn answering_204() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{address}/")
    }

    async fn recorded(db: &TestDb, resource_id: &str) -> EventId {
        let mut tx = db.db.begin_write().await.unwrap();
        let event = NewEvent {
            merchant_id: MERCHANT.into(),
            event_type: EventType::EscrowConfirmed,
            resource_type: "escrow",
            resource_id: resource_id.into(),
            resource_version: 4,
            data: json!({}),
        };
        let id = record_event(&mut tx, &event, START).await.unwrap();
        tx.commit().await.unwrap();
        id
    }

    async fn only_delivery(service: &Webhooks, event: &EventId) -> Delivery {
        let page = service.events(MERCHANT, None, 100).await.unwrap();
        let record = page.items.into_iter().find(|e| &e.id == event).unwrap();
        record.deliveries.into_iter().next().unwrap()
    }

    #[tokio::test]
    async fn a_claim_excludes_others_until_its_lease_ends_and_a_stale_claim_records_nothing() {
        let db = TestDb::new(4).await;
        let clock = Arc::new(ManualClock::new(START));
        let keys = Arc::new(AccountKeys::generate("k1").unwrap().0);
        let service = Webhooks::new(db.db.clone(), clock.clone(), keys, WebhookConfig::default());
        let new = NewEndpoint {
            url: answering_204().await,
            event_types: vec![],
        };
        service.create_endpoint(MERCHANT, &new).await.unwrap();
        let lease = i64::try_from(LEASE.as_micros()).unwrap();

        // A worker claims the delivery and dies before sending it.
        let event = recorded(&db, "esc_1").await;
        let stale = store::claim_due(&db.db, "stale", START, START + lease, ATTEMPTS_MAX, 10)
            .await
            .unwrap();
        assert_eq!(stale.len(), 1);
        let pass = service.deliver_due(10).await.unwrap();
        assert_eq!(pass.claimed, 0, "a leased delivery is nobody else's");
        clock.advance_micros(lease);
        let pass = service.deliver_due(10).await.unwrap();
        assert_eq!((pass.claimed, pass.delivered), (1, 1));
        let delivery = only_delivery(&service, &event).await;
        assert_eq!(delivery.state, DeliveryState::Delivered);
        assert_eq!(delivery.attempts, 2, "the lost attempt counts");
        let late = Finished {
            state: "dead",
            next_attempt_at: START,
            last_status: None,
            last_error: Some("timeout"),
            delivered_at: None,
            now: START,
        };
        assert!(
            !store::finish_attempt(&db.db, &stale[0], "stale", &late)
                .await
                .unwrap(),
            "the dead worker's claim records nothing"
        );
        assert_eq!(
            only_delivery(&service, &event).await.state,
            DeliveryState::Delivered
        );

        // A worker dies during the last attempt of the schedule: the delivery is dead, not
        // attempted a ninth time.
        let event = recorded(&db, "esc_2").await;
        sqlx::query("UPDATE webhook_deliveries SET attempts = $1 WHERE event_id = $2")
            .bind(ATTEMPTS_MAX - 1)
            .bind(event.as_str())
            .execute(db.db.pool())
            .await
            .unwrap();
        let now = clock.now_micros();
        let claimed = store::claim_due(&db.db, "last", now, now + lease, ATTEMPTS_MAX, 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        clock.advance_micros(lease);
        let pass = service.deliver_due(10).await.unwrap();
        assert_eq!((pass.claimed, pass.dead), (0, 1));
        let delivery = only_delivery(&service, &event).await;
        assert_eq!(delivery.state, DeliveryState::Dead);
        assert_eq!(delivery.attempts, ATTEMPTS_MAX);
        assert_eq!(delivery.last_error.as_deref(), Some("attempt_lost"));
    }
}
