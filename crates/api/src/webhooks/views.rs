//! The JSON shapes of the webhook routes. An endpoint's secret appears only in
//! [`EndpointCreatedView`], the answer that registers it.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use webhooks::{CreatedEndpoint, Delivery, Endpoint, EventRecord};

use crate::time::format_micros;

/// An endpoint to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointRequest {
    /// An absolute `http` or `https` URL without credentials or fragment, at most 2048 bytes.
    #[schema(example = "https://shop.example/mypay/webhooks")]
    pub url: String,
    /// The event types to receive; absent or empty means every type, including types added
    /// later.
    #[serde(default)]
    #[schema(example = json!(["payment.succeeded", "refund.succeeded"]))]
    pub event_types: Vec<String>,
}

/// A registered endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    /// `we_…`.
    #[schema(example = "we_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B")]
    pub id: String,
    /// The merchant whose events it receives (`mer_…`).
    pub merchant_id: String,
    pub url: String,
    /// The subscribed types; empty means every type.
    pub event_types: Vec<&'static str>,
    /// `active`, or `deleted` (no deliveries).
    #[schema(example = "active")]
    pub status: &'static str,
    pub created_at: String,
    pub deleted_at: Option<String>,
}

/// A newly registered endpoint with its signing secret, shown only in this answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointCreatedView {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// The HMAC-SHA256 key of the `Mypay-Signature` header: this text itself, `whsec_`
    /// included. Store it now; it is never shown again.
    #[schema(example = "whsec_3q2-7wQ0m9cQe4V1h2XyZk8Jt5Rr6Lp0Ns7Ua1Bb2Cc")]
    pub secret: String,
}

/// A merchant's active endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    /// Oldest first; at most the per-merchant limit (16).
    pub data: Vec<EndpointView>,
}

/// Listing events.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 100 (default 100).
    pub limit: Option<i64>,
}

/// The resource an event is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceView {
    /// `payment`, `payment_order`, `refund`, `escrow`, …
    #[serde(rename = "type")]
    #[schema(example = "payment")]
    pub kind: String,
    #[schema(example = "pay_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B")]
    pub id: String,
    /// The resource's version after the change; keep the highest seen.
    #[schema(example = 3)]
    pub version: i64,
}

/// One event's delivery to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// `whd_…`; an operator re-queues a dead one by it.
    #[schema(example = "whd_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B")]
    pub id: String,
    pub event_id: String,
    pub endpoint_id: String,
    /// `pending`, `delivered`, `dead` (attempts ran out) or `cancelled` (endpoint deleted).
    #[schema(example = "delivered")]
    pub state: &'static str,
    /// Attempts made in the current schedule (8 at most).
    pub attempts: i64,
    /// When a pending delivery is next attempted.
    pub next_attempt_at: Option<String>,
    /// The endpoint's HTTP status on the last attempt, if it answered.
    pub last_status: Option<i64>,
    /// Why the last attempt failed: `http_status`, `timeout`, `connect`, `request`,
    /// `attempt_lost` or `secret_unavailable`.
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub delivered_at: Option<String>,
}

/// An event, as delivered, with where its deliveries stand.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// `evt_…`, the `Mypay-Event-Id` header: receivers deduplicate on it.
    #[schema(example = "evt_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B")]
    pub id: String,
    #[serde(rename = "type")]
    #[schema(example = "payment.succeeded")]
    pub kind: &'static str,
    pub created_at: String,
    pub resource: ResourceView,
    /// The resource after the change, as the delivery body carries it.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// One per endpoint subscribed when the event was recorded.
    pub deliveries: Vec<DeliveryView>,
}

/// A page of a merchant's events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    /// Newest first.
    pub data: Vec<EventView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl From<Endpoint> for EndpointView {
    fn from(endpoint: Endpoint) -> EndpointView {
        EndpointView {
            id: endpoint.id.to_string(),
            merchant_id: endpoint.merchant_id,
            url: endpoint.url,
            event_types: endpoint
                .event_types
                .into_iter()
                .map(|kind| kind.as_str())
                .collect(),
            status: endpoint.status.as_str(),
            created_at: format_micros(endpoint.created_at),
            deleted_at: endpoint.deleted_at.map(format_micros),
        }
    }
}

impl From<CreatedEndpoint> for EndpointCreatedView {
    fn from(created: CreatedEndpoint) -> EndpointCreatedView {
        EndpointCreatedView {
            secret: created.secret.expose().to_owned(),
            endpoint: created.endpoint.into(),
        }
    }
}

impl From<Delivery> for DeliveryView {
    fn from(delivery: Delivery) -> DeliveryView {
        DeliveryView {
            id: delivery.id.to_string(),
            event_id: delivery.event_id.to_string(),
            endpoint_id: delivery.endpoint_id.to_string(),
            state: delivery.state.as_str(),
            attempts: delivery.attempts,
            next_attempt_at: delivery.next_attempt_at.map(format_micros),
            last_status: delivery.last_status,
            last_error: delivery.last_error,
            created_at: format_micros(delivery.created_at),
            updated_at: format_micros(delivery.updated_at),
            delivered_at: delivery.delivered_at.map(format_micros),
        }
    }
}

impl From<EventRecord> for EventView {
    fn from(event: EventRecord) -> EventView {
        EventView {
            id: event.id.to_string(),
            kind: event.event_type.as_str(),
            created_at: format_micros(event.created_at),
            resource: ResourceView {
                kind: event.resource_type,
                id: event.resource_id,
                version: event.resource_version,
            },
            data: event.data,
            deliveries: event
                .deliveries
                .into_iter()
                .map(DeliveryView::from)
                .collect(),
        }
    }
}
