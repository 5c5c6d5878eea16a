//! The publisher: claims pending publications under a lease, publishes each to JetStream with
//! its event id as `Nats-Msg-Id`, waits for the acks, and marks what was acknowledged.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::{self, context::PublishErrorKind};
use async_nats::HeaderMap;
use ledger::{Clock, Micros};
use storage::Db;

use crate::error::EventStreamError;
use crate::store::{self, ClaimedRow, Stored};
use crate::stream::{StreamConfig, REQUEST_TIMEOUT};

/// The most publications one pass claims. Their acks are awaited together, so a pass lasts
/// about one ack timeout at worst.
pub const PUBLISH_BATCH_MAX: i64 = 100;
/// How long a claim lasts: a publisher that dies leaves its rows due again after it. Far longer
/// than a pass (one ack timeout), far shorter than the stream's duplicate window.
pub const LEASE: Duration = Duration::from_secs(30);
/// The wait after a first failed attempt; it doubles with each further one.
pub const RETRY_DELAY_MIN: Duration = Duration::from_secs(1);
/// The longest wait between attempts. Publications never give up: an event not in the stream
/// is retried until it is.
pub const RETRY_DELAY_MAX: Duration = Duration::from_secs(60);
/// How long published rows are kept (for operators to look up where an event went), and, in
/// a process without a stream, how long unpublished ones are kept for a stream configured
/// later.
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often `run` looks for due publications.
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);
/// Full passes `run` makes in a row before it waits for the next tick again.
pub const PASSES_PER_TICK_MAX: usize = 50;
/// How often the backlog gauge is read and old rows are pruned.
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(30);
/// Rows one prune statement deletes.
pub const PRUNE_BATCH_MAX: i64 = 1000;
/// Prune statements made in a row per state, so a large backlog is deleted a slice at a time.
pub const PRUNES_PER_TICK_MAX: usize = 10;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishPass {
    /// Publications claimed.
    pub claimed: usize,
    /// Acknowledged by JetStream and marked published.
    pub published: usize,
    /// Of those, acknowledged as duplicates: the stream already held the event (an earlier
    /// attempt's ack was lost, or its publisher died before marking it).
    pub duplicates: usize,
    /// Not acknowledged: pending again after the retry delay.
    pub failed: usize,
    /// Skipped: the client has no connection to NATS, so nothing was claimed.
    pub disconnected: bool,
}

/// Publishes the outbox to one JetStream stream. Several publishers (replicas) may share a
/// database: a publication is claimed by one of them at a time.
pub struct Publisher {
    db: Db,
    clock: Arc<dyn Clock>,
    config: StreamConfig,
    client: async_nats::Client,
    jetstream: jetstream::Context,
    stream_ready: bool,
}

impl Publisher {
    /// A publisher whose client connects in the background: NATS need not be up yet.
    pub async fn connect(
        db: Db,
        clock: Arc<dyn Clock>,
        config: StreamConfig,
    ) -> Result<Publisher, EventStreamError> {
        let client = config.connect().await?;
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .build(client.clone());
        Ok(Publisher {
            db,
            clock,
            config,
            client,
            jetstream,
            stream_ready: false,
        })
    }

    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// Whether the client has a connection to NATS now; passes claim nothing without one.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// One pass: claims up to `limit` due publications (oldest first), publishes them in that
    /// order, waits for their acks together, marks the acknowledged ones published and puts
    /// the rest back with a growing delay. Only an ack marks a row: an event is published at
    /// least once, and its `Nats-Msg-Id` makes JetStream drop the repeats within the duplicate
    /// window.
    pub async fn publish_due(&mut self, limit: i64) -> Result<PublishPass, EventStreamError> {
        if !self.is_connected() {
            return Ok(PublishPass {
                disconnected: true,
                ..PublishPass::default()
            });
        }
        if !self.stream_ready {
            self.ensure_stream().await?;
        }
        let token = ulid::Ulid::new().to_string();
        let now = self.clock.now_micros();
        let claimed = store::claim_due(
            &self.db,
            &token,
            now,
            now + micros(LEASE),
            limit.clamp(1, PUBLISH_BATCH_MAX),
        )
        .await?;
        let mut pass = PublishPass {
            claimed: claimed.len(),
            ..PublishPass::default()
        };
        let outcomes = self.publish(&claimed).await;
        let mut stored = Vec::with_capacity(claimed.len());
        let mut acks = Vec::with_capacity(claimed.len());
        for (row, outcome) in claimed.iter().zip(outcomes) {
            match outcome {
                Ok(ack) => acks.push((row, ack)),
                Err(error) => {
                    pass.failed += 1;
                    if error.kind() == PublishErrorKind::StreamNotFound {
                        // Someone deleted the stream: create it again before the next pass.
                        self.stream_ready = false;
                    }
                    tracing::warn!(event_id = row.event_id, attempts = row.attempts, %error, "event not acknowledged by JetStream; will retry");
                    let retry_at = self.clock.now_micros() + micros(retry_delay(row.attempts));
                    store::record_failure(
                        &self.db,
                        &row.event_id,
                        &token,
                        retry_at,
                        &error.to_string(),
                    )
                    .await?;
                }
            }
        }
        for (row, ack) in &acks {
            pass.duplicates += usize::from(ack.duplicate);
            stored.push(Stored {
                event_id: &row.event_id,
                stream_name: &ack.stream,
                stream_sequence: i64::try_from(ack.sequence).unwrap_or(i64::MAX),
            });
        }
        let marked =
            store::mark_published(&self.db, &token, &stored, self.clock.now_micros()).await?;
        pass.published = usize::try_from(marked).unwrap_or(usize::MAX);
        metrics::counter!("mypay_events_published_total").increment(marked);
        metrics::counter!("mypay_events_publish_failures_total").increment(pass.failed as u64);
        Ok(pass)
    }

    /// Sends every claimed row in order, then waits for all the acks at once: each ack's
    /// timeout starts when it is awaited, so awaiting them one by one while NATS is away would
    /// make a pass last a timeout per row.
    async fn publish(
        &self,
        rows: &[ClaimedRow],
    ) -> Vec<Result<jetstream::publish::PublishAck, jetstream::context::PublishError>> {
        let mut waiting = tokio::task::JoinSet::new();
        let mut outcomes: Vec<_> = rows.iter().map(|_| None).collect();
        for (index, row) in rows.iter().enumerate() {
            let mut headers = HeaderMap::new();
            headers.insert(NATS_MESSAGE_ID, row.event_id.as_str());
            let sent = self
                .jetstream
                .publish_with_headers(
                    self.config.subject(&row.event_type),
                    headers,
                    row.body.clone().into(),
                )
                .await;
            match sent {
                Ok(ack) => {
                    waiting.spawn(async move { (index, ack.await) });
                }
                Err(error) => outcomes[index] = Some(Err(error)),
            }
        }
        while let Some(joined) = waiting.join_next().await {
            match joined {
                Ok((index, outcome)) => outcomes[index] = Some(outcome),
                Err(error) => tracing::error!(%error, "an ack task ended abnormally"),
            }
        }
        outcomes
            .into_iter()
            .map(|outcome| {
                outcome.unwrap_or_else(|| {
                    Err(jetstream::context::PublishError::new(
                        PublishErrorKind::Other,
                    ))
                })
            })
            .collect()
    }

    /// Creates the stream unless it exists. An existing stream is left as configured.
    async fn ensure_stream(&mut self) -> Result<(), EventStreamError> {
        self.jetstream
            .get_or_create_stream(self.config.stream())
            .await
            .map_err(|error| {
                EventStreamError::Nats(format!(
                    "cannot find or create the stream {}: {error}",
                    self.config.stream_name()
                ))
            })?;
        self.stream_ready = true;
        Ok(())
    }

    /// Publishes for ever (until `shutdown`): a pass every second, again at once after a full
    /// batch (up to [`PASSES_PER_TICK_MAX`] in a row), the backlog gauge and the pruning of
    /// published rows past [`RETENTION`] every [`HOUSEKEEPING_INTERVAL`]. Aborting it loses
    /// nothing: claimed rows are due again when their lease ends.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tracing::info!(
            nats = %self.config.redacted_url(),
            stream = self.config.stream_name(),
            subjects = %self.config.stream_subjects(),
            "event stream publisher started"
        );
        let mut tick = interval(PUBLISH_INTERVAL);
        let mut housekeeping = interval(HOUSEKEEPING_INTERVAL);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = tick.tick() => self.publish_backlog().await,
                _ = housekeeping.tick() => {
                    housekeep(&self.db, self.clock.as_ref(), &[store::PUBLISHED]).await;
                }
            }
        }
    }

    async fn publish_backlog(&mut self) {
        for _ in 0..PASSES_PER_TICK_MAX {
            match self.publish_due(PUBLISH_BATCH_MAX).await {
                Ok(pass) => {
                    if pass.claimed > 0 {
                        tracing::info!(
                            claimed = pass.claimed,
                            published = pass.published,
                            duplicates = pass.duplicates,
                            failed = pass.failed,
                            "event stream pass"
                        );
                    }
                    let full = i64::try_from(pass.claimed).is_ok_and(|n| n >= PUBLISH_BATCH_MAX);
                    if !full || pass.failed > 0 {
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "event stream pass failed; will retry");
                    return;
                }
            }
        }
    }
}

/// Keeps the outbox bounded in a process that publishes to no stream: every
/// [`HOUSEKEEPING_INTERVAL`], rows of either state older than [`RETENTION`] are deleted, so a
/// stream configured later receives the events of the last [`RETENTION`] first. A process
/// with a stream runs [`Publisher::run`] instead, which never deletes a pending row.
pub async fn prune_without_stream(
    db: Db,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
) {
    let mut housekeeping = interval(HOUSEKEEPING_INTERVAL);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = housekeeping.tick() => {
                housekeep(&db, clock.as_ref(), &[store::PUBLISHED, store::PENDING]).await;
            }
        }
    }
}

/// A timer whose ticks missed while a pass ran are not made up in a burst.
fn interval(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}

/// Sets the backlog gauge and deletes rows in `states` past the retention, boundedly.
async fn housekeep(db: &Db, clock: &dyn Clock, states: &[&str]) {
    match store::pending_count(db).await {
        Ok(pending) => metrics::gauge!("mypay_events_backlog").set(pending as f64),
        Err(error) => tracing::warn!(%error, "cannot count the event stream backlog"),
    }
    let before = clock.now_micros() - micros(RETENTION);
    for state in states {
        match prune(db, state, before).await {
            Ok(0) => {}
            Ok(pruned) => {
                tracing::info!(pruned, state, "event publications past retention deleted")
            }
            Err(error) => tracing::warn!(%error, "event publication prune failed; will retry"),
        }
    }
}

/// Deletes rows in `state` recorded before `before`, at most [`PRUNES_PER_TICK_MAX`] batches.
async fn prune(db: &Db, state: &str, before: Micros) -> Result<u64, sqlx::Error> {
    let mut pruned = 0;
    for _ in 0..PRUNES_PER_TICK_MAX {
        let deleted = store::delete_older(db, state, before, PRUNE_BATCH_MAX).await?;
        pruned += deleted;
        if deleted < PRUNE_BATCH_MAX as u64 {
            break;
        }
    }
    Ok(pruned)
}

/// The wait after the `attempts`-th failed attempt: 1 s, doubling, at most a minute.
pub fn retry_delay(attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    RETRY_DELAY_MIN
        .saturating_mul(1 << doublings)
        .min(RETRY_DELAY_MAX)
}

fn micros(duration: Duration) -> Micros {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_a_second_to_a_minute() {
        let delays: Vec<u64> = (1..=9).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_delay(0), RETRY_DELAY_MIN);
        assert_eq!(retry_delay(i64::MAX), RETRY_DELAY_MAX);
        assert!(LEASE > REQUEST_TIMEOUT * 2);
        assert!(crate::stream::DUPLICATE_WINDOW > LEASE + RETRY_DELAY_MAX);
    }
}
