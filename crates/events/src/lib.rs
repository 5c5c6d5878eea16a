//! The event stream: every domain event mypay records is published to NATS JetStream, beside
//! (and independently of) the webhook deliveries to merchants.
//!
//! - [`record_publication`] writes an event's publication row in the caller's transaction
//!   (`webhooks::record_event` calls it for every event it records), so a publication exists if
//!   and only if its change committed: the outbox of the stream.
//! - [`Publisher`] claims due publications under a lease (`FOR UPDATE SKIP LOCKED` on
//!   PostgreSQL), publishes each to `<prefix>.<event type>` with its event id as `Nats-Msg-Id`,
//!   waits for JetStream's acks and only then marks them published; a failure leaves the row
//!   pending with a growing delay. Publishing is at least once; JetStream's duplicate window
//!   drops the repeats, so each event is stored once in the stream.
//! - [`prune_without_stream`] keeps the outbox bounded where no stream is configured.
//!
//! Architecture invariants: a publication row is written only inside the transaction of the
//! event it carries, and marked published only after JetStream acknowledged it, under the claim
//! that published it; a pending row is never deleted by a process that publishes. This crate
//! knows no payments and no webhooks: it publishes the bytes it was given.

#![forbid(unsafe_code)]

mod error;
mod outbox;
mod publisher;
mod store;
mod stream;

pub use error::EventStreamError;
pub use outbox::{record_publication, StreamEvent};
pub use publisher::{
    prune_without_stream, retry_delay, PublishPass, Publisher, HOUSEKEEPING_INTERVAL, LEASE,
    PUBLISH_BATCH_MAX, RETENTION, RETRY_DELAY_MAX, RETRY_DELAY_MIN,
};
pub use stream::{StreamConfig, DUPLICATE_WINDOW, STREAM_NAME_DEFAULT, SUBJECT_PREFIX_DEFAULT};
