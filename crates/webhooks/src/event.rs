//! Events: what mypay tells merchants about, recorded in the caller's own transaction so that an
//! event exists if and only if the change it reports committed (the transactional outbox).

use ledger::Micros;
use serde::Serialize;
use sqlx::{Any, Transaction};
use storage::Backend;
use time::macros::format_description;
use time::OffsetDateTime;

use crate::endpoint::Endpoint;
use crate::error::WebhookError;
use crate::id::{check_merchant_id, DeliveryId, EventId};
use crate::store::{self, NewEventRow};

/// The longest resource id an event may name.
pub const RESOURCE_ID_LEN_MAX: usize = 128;
/// The longest resource type an event may name.
pub const RESOURCE_TYPE_LEN_MAX: usize = 32;
/// The largest `data` object an event may carry, serialised: deliveries are POSTed whole, and
/// receivers' body limits are often a few hundred KiB.
pub const EVENT_DATA_BYTES_MAX: usize = 64 * 1024;

/// Everything mypay sends webhooks about. The names on the wire are `resource.outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A checkout's payment completed: every payment order succeeded.
    PaymentSucceeded,
    /// A checkout's payment failed.
    PaymentFailed,
    /// One seller's payment order succeeded.
    PaymentOrderSucceeded,
    /// One seller's payment order failed.
    PaymentOrderFailed,
    /// A refund was returned along its funding sources.
    RefundSucceeded,
    /// A refund could not be made.
    RefundFailed,
    /// The seller shipped an escrowed order.
    EscrowShipped,
    /// An escrowed order was delivered.
    EscrowDelivered,
    /// The buyer (or the automatic timer) confirmed an escrowed order: payable to the seller.
    EscrowConfirmed,
    /// An escrowed order was cancelled within its window.
    EscrowCancelled,
    /// The buyer, the seller or staff disputed an escrowed order: its timers stand still.
    EscrowDisputed,
    /// Staff resolved an escrowed order's dispute: its timers run again, moved later by the
    /// time the dispute lasted.
    EscrowResolved,
}

impl EventType {
    /// Every type, in the order they are listed to clients.
    pub const ALL: [EventType; 12] = [
        EventType::PaymentSucceeded,
        EventType::PaymentFailed,
        EventType::PaymentOrderSucceeded,
        EventType::PaymentOrderFailed,
        EventType::RefundSucceeded,
        EventType::RefundFailed,
        EventType::EscrowShipped,
        EventType::EscrowDelivered,
        EventType::EscrowConfirmed,
        EventType::EscrowCancelled,
        EventType::EscrowDisputed,
        EventType::EscrowResolved,
    ];

    /// The name on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PaymentSucceeded => "payment.succeeded",
            EventType::PaymentFailed => "payment.failed",
            EventType::PaymentOrderSucceeded => "payment_order.succeeded",
            EventType::PaymentOrderFailed => "payment_order.failed",
            EventType::RefundSucceeded => "refund.succeeded",
            EventType::RefundFailed => "refund.failed",
            EventType::EscrowShipped => "escrow.shipped",
            EventType::EscrowDelivered => "escrow.delivered",
            EventType::EscrowConfirmed => "escrow.confirmed",
            EventType::EscrowCancelled => "escrow.cancelled",
            EventType::EscrowDisputed => "escrow.disputed",
            EventType::EscrowResolved => "escrow.resolved",
        }
    }

    /// Reads a name on the wire; `None` for a type mypay does not send.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// An event to record: what happened to which resource, and at which version of it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The merchant whose endpoints receive it (`mer_…`).
    pub merchant_id: String,
    pub event_type: EventType,
    /// The kind of resource: `payment`, `payment_order`, `refund`, `escrow`, …
    pub resource_type: &'static str,
    /// The resource's id (`pay_…`, `po_…`, …).
    pub resource_id: String,
    /// The resource's version after the change, increasing with every change of the resource:
    /// deliveries may arrive out of order (retries, parallel sends), and receivers keep the
    /// highest version they have seen.
    pub resource_version: i64,
    /// The resource as the merchant should see it after the change: a JSON object.
    pub data: serde_json::Value,
}

/// Records an event, its publication to the event stream (`events`) and one pending delivery
/// per active endpoint of the merchant subscribed to its type, inside the caller's
/// transaction, so that the event exists if and only if the change it reports committed.
/// Recording the same type, resource and version for the same merchant again (a re-run of the
/// same change) answers the first event's id and adds nothing; with other content it is refused with [`WebhookError::EventConflict`]. Endpoints registered later do
/// not receive earlier events.
///
/// On PostgreSQL a failed statement aborts the caller's transaction, so every check that can
/// refuse runs before anything is written.
pub async fn record_event(
    tx: &mut Transaction<'_, Any>,
    event: &NewEvent,
    now: Micros,
) -> Result<EventId, WebhookError> {
    check_event(event)?;
    let id = EventId::generate();
    let stream_body = payload(&id, event, now, Some(&event.merchant_id))?;
    let payload = payload(&id, event, now, None)?;
    let row = NewEventRow {
        id: id.as_str(),
        merchant_id: &event.merchant_id,
        event_type: event.event_type.as_str(),
        resource_type: event.resource_type,
        resource_id: &event.resource_id,
        resource_version: event.resource_version,
        payload: &payload,
        created_at: now,
    };
    if !store::insert_event(tx, &row).await? {
        return first_recording(tx, event).await;
    }
    // Every event goes to the event stream's outbox too, whether or not the merchant has
    // endpoints: the stream's consumers are not the merchant's.
    let publication = events::StreamEvent {
        event_id: id.as_str(),
        event_type: event.event_type.as_str(),
        body: &stream_body,
    };
    events::record_publication(tx, publication, now).await?;
    let mut subscribed = Vec::new();
    for row in store::live_endpoints(tx, &event.merchant_id).await? {
        let endpoint = Endpoint::from_row(row)?;
        if endpoint.subscribes_to(event.event_type) {
            subscribed.push(endpoint.id.as_str().to_owned());
        }
    }
    if !subscribed.is_empty() {
        let deliveries: Vec<(String, String)> = subscribed
            .into_iter()
            .map(|endpoint| (DeliveryId::generate().as_str().to_owned(), endpoint))
            .collect();
        let backend = Backend::of_connection(tx);
        store::insert_deliveries(tx, backend, &id, &event.merchant_id, &deliveries, now).await?;
    }
    Ok(id)
}

/// The event stored first under the same type, resource and version, if its content is this
/// one's; the caller's re-run of a change gets the same event.
async fn first_recording(
    tx: &mut Transaction<'_, Any>,
    event: &NewEvent,
) -> Result<EventId, WebhookError> {
    let stored = store::event_by_key(
        tx,
        &event.merchant_id,
        event.resource_type,
        &event.resource_id,
        event.resource_version,
        event.event_type.as_str(),
    )
    .await?
    .ok_or_else(|| {
        WebhookError::Internal("an event insert conflicted with no stored event".into())
    })?;
    let first = EventId::from_stored(stored.id);
    let same = payload(&first, event, stored.created_at, None)? == stored.payload;
    if same {
        Ok(first)
    } else {
        Err(WebhookError::EventConflict {
            event_id: first.to_string(),
        })
    }
}

fn check_event(event: &NewEvent) -> Result<(), WebhookError> {
    check_merchant_id(&event.merchant_id)?;
    let resource_type_ok = (1..=RESOURCE_TYPE_LEN_MAX).contains(&event.resource_type.len())
        && event
            .resource_type
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_');
    if !resource_type_ok {
        return Err(WebhookError::EventInvalid(
            "resource_type must be 1 to 32 lower-case letters or '_'",
        ));
    }
    let resource_id_ok = (1..=RESOURCE_ID_LEN_MAX).contains(&event.resource_id.len())
        && event.resource_id.bytes().all(|b| b.is_ascii_graphic());
    if !resource_id_ok {
        return Err(WebhookError::EventInvalid(
            "resource_id must be 1 to 128 visible ASCII characters",
        ));
    }
    if event.resource_version < 0 {
        return Err(WebhookError::EventInvalid(
            "resource_version must not be negative",
        ));
    }
    if !event.data.is_object() {
        return Err(WebhookError::EventInvalid("data must be a JSON object"));
    }
    let data_bytes = serde_json::to_vec(&event.data)
        .map_err(|error| WebhookError::Internal(format!("event data does not serialise: {error}")))?
        .len();
    if data_bytes > EVENT_DATA_BYTES_MAX {
        return Err(WebhookError::EventInvalid("data must be at most 64 KiB"));
    }
    Ok(())
}

/// The delivery body, fixed when the event is recorded so that every attempt sends the same
/// bytes: `{id, type, created_at, resource: {type, id, version}, data}`. The event stream's
/// body is the same with `merchant_id` after `created_at`: a stream's consumer reads every
/// merchant's events, a webhook receiver only its own.
fn payload(
    id: &EventId,
    event: &NewEvent,
    created_at: Micros,
    merchant_id: Option<&str>,
) -> Result<String, WebhookError> {
    #[derive(Serialize)]
    struct Resource<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        id: &'a str,
        version: i64,
    }
    #[derive(Serialize)]
    struct Payload<'a> {
        id: &'a str,
        #[serde(rename = "type")]
        kind: &'a str,
        created_at: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        merchant_id: Option<&'a str>,
        resource: Resource<'a>,
        data: &'a serde_json::Value,
    }
    serde_json::to_string(&Payload {
        id: id.as_str(),
        kind: event.event_type.as_str(),
        created_at: rfc3339(created_at),
        merchant_id,
        resource: Resource {
            kind: event.resource_type,
            id: &event.resource_id,
            version: event.resource_version,
        },
        data: &event.data,
    })
    .map_err(|error| WebhookError::Internal(format!("an event does not serialise: {error}")))
}

/// RFC 3339 in UTC with six fraction digits, as the API writes timestamps.
pub(crate) fn rfc3339(micros: Micros) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .and_then(|instant| instant.format(format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000000Z".to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event() -> NewEvent {
        NewEvent {
            merchant_id: "mer_shop".into(),
            event_type: EventType::PaymentSucceeded,
            resource_type: "payment",
            resource_id: "pay_1".into(),
            resource_version: 3,
            data: json!({"amount": "15000", "currency": "KRW"}),
        }
    }

    #[test]
    fn every_type_has_a_wire_name_that_parses_back() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(
            EventType::PaymentOrderSucceeded.as_str(),
            "payment_order.succeeded"
        );
        assert_eq!(EventType::EscrowConfirmed.as_str(), "escrow.confirmed");
        assert_eq!(EventType::parse("payment.refunded"), None);
    }

    #[test]
    fn the_payload_has_the_documented_shape() {
        let id = EventId::parse("evt_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B").unwrap();
        let body = payload(&id, &event(), 1_795_305_600_000_001, None).unwrap();
        assert_eq!(
            body,
            r#"{"id":"evt_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B","type":"payment.succeeded","created_at":"2026-11-22T00:00:00.000001Z","resource":{"type":"payment","id":"pay_1","version":3},"data":{"amount":"15000","currency":"KRW"}}"#
        );
        let streamed = payload(&id, &event(), 1_795_305_600_000_001, Some("mer_shop")).unwrap();
        assert_eq!(
            streamed,
            r#"{"id":"evt_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B","type":"payment.succeeded","created_at":"2026-11-22T00:00:00.000001Z","merchant_id":"mer_shop","resource":{"type":"payment","id":"pay_1","version":3},"data":{"amount":"15000","currency":"KRW"}}"#
        );
    }

    #[test]
    fn events_are_checked_before_anything_is_written() {
        assert!(check_event(&event()).is_ok());
        let cases: [fn(&mut NewEvent); 7] = [
            |e| e.merchant_id = "usr_1".into(),
            |e| e.resource_type = "",
            |e| e.resource_type = "Payment",
            |e| e.resource_id = String::new(),
            |e| e.resource_id = "a b".into(),
            |e| e.resource_version = -1,
            |e| e.data = json!([1]),
        ];
        for change in cases {
            let mut bad = event();
            change(&mut bad);
            assert!(check_event(&bad).is_err(), "{bad:?}");
        }
        let mut big = event();
        big.data = json!({"blob": "x".repeat(EVENT_DATA_BYTES_MAX)});
        assert!(matches!(
            check_event(&big),
            Err(WebhookError::EventInvalid(_))
        ));
    }
}
