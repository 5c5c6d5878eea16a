//! What can go wrong while publishing events.

/// An event stream failure. None of them loses an event: a publication stays pending until
/// JetStream acknowledges it.
#[derive(Debug, thiserror::Error)]
pub enum EventStreamError {
    /// The stream configuration is unusable.
    #[error("event stream configuration: {0}")]
    Config(String),
    /// NATS or JetStream refused or did not answer.
    #[error("{0}")]
    Nats(String),
    /// The database failed.
    #[error("database error: {0}")]
    Storage(#[from] sqlx::Error),
}
