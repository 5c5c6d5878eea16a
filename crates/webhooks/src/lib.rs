//! Webhooks: merchants register endpoints, and mypay tells them what happened to their
//! payments, refunds and escrows.
//!
//! - [`record_event`] writes an event, and one pending delivery per subscribed endpoint, in the
//!   caller's own database transaction (a transactional outbox): the event exists if and only
//!   if the change it reports committed.
//! - [`Webhooks`] is the service: endpoints (registered with a `whsec_…` secret shown once and
//!   stored sealed), the event list with delivery states, [`Webhooks::deliver_due`] (one pass
//!   of the delivery worker) and the operator's re-queueing of dead deliveries.
//! - [`sign`] and [`verify`] are the signature scheme: `Mypay-Signature: t=…,v1=…`, an
//!   HMAC-SHA256 over the timestamp and the body; receivers refuse stale timestamps (replays)
//!   and deduplicate on the event id.
//!
//! Delivery is at least once: a delivery is retried on the schedule [`RETRY_DELAYS_S`] until a
//! 2xx answer, then dead after [`ATTEMPTS_MAX`] attempts. Deliveries may arrive out of order
//! and more than once; each event carries its resource's version so receivers can order them.
//!
//! Architecture invariants: an event and its deliveries are written only inside the
//! transaction of the change they report; an attempt is made only under a claim (a lease), and
//! its outcome recorded only under the same claim, so replicas never send the same attempt at
//! once; endpoint secrets are stored only sealed and shown once; every delivery body is fixed
//! when its event is recorded. This crate knows no HTTP of mypay's own API: it only sends.

#![forbid(unsafe_code)]

mod delivery;
mod endpoint;
mod error;
mod event;
mod id;
mod service;
mod signature;
mod store;

pub use delivery::{
    retry_delay_s, Delivery, DeliveryPass, DeliveryState, ATTEMPTS_MAX, DELIVERY_BATCH_MAX, LEASE,
    REQUEST_TIMEOUT_DEFAULT, RETRY_DELAYS_S,
};
pub use endpoint::{
    CreatedEndpoint, Endpoint, EndpointSecret, EndpointStatus, NewEndpoint, SECRET_PREFIX,
    URL_LEN_MAX,
};
pub use error::WebhookError;
pub use event::{
    record_event, EventType, NewEvent, EVENT_DATA_BYTES_MAX, RESOURCE_ID_LEN_MAX,
    RESOURCE_TYPE_LEN_MAX,
};
pub use id::{
    check_merchant_id, DeliveryId, EndpointId, EventId, MERCHANT_ID_LEN_MAX, MERCHANT_ID_PREFIX,
};
pub use service::{
    EventRecord, WebhookConfig, Webhooks, ENDPOINTS_PER_MERCHANT_MAX_DEFAULT, EVENT_PAGE_SIZE_MAX,
};
pub use signature::{
    sign, verify, SignatureError, EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER,
    SIGNATURE_TOLERANCE_S,
};
