//! The outbox side: a publication is written in the transaction of the change its event
//! reports, so that it exists if and only if the change committed.

use ledger::Micros;
use sqlx::{Any, Transaction};

/// An event as the stream carries it, fixed when the event is recorded.
#[derive(Debug, Clone, Copy)]
pub struct StreamEvent<'a> {
    /// The event's id (`evt_…`), the message's `Nats-Msg-Id`.
    pub event_id: &'a str,
    /// The event's type (`payment_order.succeeded`, …), the last tokens of its subject.
    pub event_type: &'a str,
    /// The message body, sent byte for byte on every attempt.
    pub body: &'a str,
}

/// Writes the event's publication, pending and due at once, inside the caller's transaction.
/// Recording the same event id again adds nothing. It never fails on a conflict, so it never
/// aborts the caller's transaction on PostgreSQL.
///
/// The row is written whether or not this process publishes to a stream: which process
/// publishes is configuration, and the transaction that records an event knows none.
pub async fn record_publication(
    tx: &mut Transaction<'_, Any>,
    event: StreamEvent<'_>,
    now: Micros,
) -> Result<(), sqlx::Error> {
    crate::store::insert(tx, event.event_id, event.event_type, event.body, now).await
}
