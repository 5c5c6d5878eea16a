//! Where events go: a NATS server, a JetStream stream and the subjects the stream captures.

use std::fmt;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::ServerAddr;

use crate::error::EventStreamError;

/// The stream events are published to unless configured.
pub const STREAM_NAME_DEFAULT: &str = "MYPAY_EVENTS";
/// The subject prefix unless configured: events go to `mypay.events.<event type>`.
pub const SUBJECT_PREFIX_DEFAULT: &str = "mypay.events";
/// The longest stream name accepted.
pub const STREAM_NAME_LEN_MAX: usize = 64;
/// The longest subject prefix accepted; event types add at most about 30 bytes.
pub const SUBJECT_PREFIX_LEN_MAX: usize = 128;
/// The duplicate window of a stream the publisher creates: a republish of an event within it
/// (after a lost ack or a publisher that died between the ack and marking the row) is dropped
/// by JetStream. It is many times the claim lease and the longest retry delay, which bound how
/// late a republish comes while the server is reachable.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);
/// How long a JetStream request, and the wait for a publish's ack, may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one attempt to open a connection may take; the client keeps trying in the
/// background.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A checked stream configuration.
#[derive(Clone)]
pub struct StreamConfig {
    server: ServerAddr,
    url: String,
    stream_name: String,
    subject_prefix: String,
}

impl StreamConfig {
    /// Checks the server URL (`nats://HOST:PORT`, `tls://…`, credentials allowed), the stream
    /// name (letters, digits, `_`, `-`) and the subject prefix (dot-separated tokens of the
    /// same characters, no wildcards), so that a mistake stops `serve` at start rather than
    /// every publish later.
    pub fn new(
        url: &str,
        stream_name: &str,
        subject_prefix: &str,
    ) -> Result<StreamConfig, EventStreamError> {
        let server: ServerAddr = url
            .parse()
            .map_err(|_| EventStreamError::Config("the NATS URL does not parse".into()))?;
        let name_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        let name_ok = (1..=STREAM_NAME_LEN_MAX).contains(&stream_name.len())
            && stream_name.bytes().all(name_char);
        if !name_ok {
            return Err(EventStreamError::Config(format!(
                "the stream name must be 1 to {STREAM_NAME_LEN_MAX} letters, digits, '_' or '-'"
            )));
        }
        let prefix_ok = subject_prefix.len() <= SUBJECT_PREFIX_LEN_MAX
            && subject_prefix
                .split('.')
                .all(|token| !token.is_empty() && token.bytes().all(name_char));
        if !prefix_ok {
            return Err(EventStreamError::Config(format!(
                "the subject prefix must be at most {SUBJECT_PREFIX_LEN_MAX} bytes of dot-separated tokens of letters, digits, '_' or '-'"
            )));
        }
        Ok(StreamConfig {
            server,
            url: url.to_owned(),
            stream_name: stream_name.to_owned(),
            subject_prefix: subject_prefix.to_owned(),
        })
    }

    pub fn stream_name(&self) -> &str {
        &self.stream_name
    }

    pub fn subject_prefix(&self) -> &str {
        &self.subject_prefix
    }

    /// The subject an event of this type is published to: `<prefix>.<event type>`.
    pub fn subject(&self, event_type: &str) -> String {
        format!("{}.{event_type}", self.subject_prefix)
    }

    /// What the stream captures: every subject under the prefix.
    pub fn stream_subjects(&self) -> String {
        format!("{}.>", self.subject_prefix)
    }

    /// The stream the publisher creates when it is missing. An existing stream is used as its
    /// operator configured it.
    pub(crate) fn stream(&self) -> jetstream::stream::Config {
        jetstream::stream::Config {
            name: self.stream_name.clone(),
            subjects: vec![self.stream_subjects()],
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        }
    }

    /// A client that connects in the background and reconnects for ever, so that a NATS
    /// server that is down when `serve` starts (or later) only delays publishing.
    pub(crate) async fn connect(&self) -> Result<async_nats::Client, EventStreamError> {
        async_nats::ConnectOptions::new()
            .name("mypay")
            .connection_timeout(CONNECT_TIMEOUT)
            .retry_on_initial_connect()
            .connect(self.server.clone())
            .await
            .map_err(|error| EventStreamError::Nats(format!("cannot connect to NATS: {error}")))
    }

    /// The server's address without credentials, for logs.
    pub fn redacted_url(&self) -> String {
        let scheme = self
            .url
            .split_once("://")
            .map_or("nats", |(scheme, _)| scheme);
        format!("{scheme}://{}:{}", self.server.host(), self.server.port())
    }
}

/// Credentials in the URL never reach `Debug` output.
impl fmt::Debug for StreamConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamConfig")
            .field("url", &self.redacted_url())
            .field("stream_name", &self.stream_name)
            .field("subject_prefix", &self.subject_prefix)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_the_prefix_and_the_event_type() {
        let config =
            StreamConfig::new("nats://127.0.0.1:4222", "MYPAY_EVENTS", "mypay.events").unwrap();
        assert_eq!(
            config.subject("payment_order.succeeded"),
            "mypay.events.payment_order.succeeded"
        );
        assert_eq!(config.stream_subjects(), "mypay.events.>");
    }

    #[test]
    fn bad_names_stop_at_configuration() {
        let url = "nats://127.0.0.1:4222";
        for name in ["", "has.dot", "has space", "star*", &"n".repeat(65)] {
            assert!(
                StreamConfig::new(url, name, "mypay.events").is_err(),
                "{name:?}"
            );
        }
        for prefix in ["", "mypay.", ".events", "mypay.*", "mypay.>", "a b"] {
            assert!(StreamConfig::new(url, "S", prefix).is_err(), "{prefix:?}");
        }
        assert!(StreamConfig::new("nats://127.0.0.1:port", "S", "p").is_err());
    }

    #[test]
    fn credentials_are_not_shown() {
        let config =
            StreamConfig::new("nats://user:hunter2@127.0.0.1:4222", "S", "mypay.events").unwrap();
        let shown = format!("{config:?} {}", config.redacted_url());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("nats://127.0.0.1:4222"), "{shown}");
    }
}
