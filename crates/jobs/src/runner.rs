//! The worker: claims due jobs of the kinds it has handlers for, runs them, records each
//! outcome under its claim, and retries or buries failures.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ledger::{Clock, Micros};
use storage::Db;
use tokio::task::JoinSet;

use crate::queue::{Job, JobState};
use crate::store::{self, Claim, Outcome};

/// How long a claim lasts by default: a handler that runs longer is cut off and retried.
pub const LEASE_DEFAULT: Duration = Duration::from_secs(300);
/// The most jobs one pass claims by default; they run concurrently.
const BATCH_DEFAULT: i64 = 32;
/// How long an idle worker waits before it looks for due jobs again.
const POLL_DEFAULT: Duration = Duration::from_millis(500);
/// The longest error text kept on a job.
const ERROR_CHARS_MAX: usize = 1_000;

/// Why a run did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobFailure {
    /// Worth another attempt (a timeout, a service down): retried after the kind's backoff
    /// until the job's attempts run out.
    Retry(String),
    /// Can never succeed as it is (a payload that does not parse): dead at once.
    Fatal(String),
}

/// Runs one kind of job. Runs are at least once, so a handler's effects must happen once
/// however often it runs (derive every id from the payload).
#[async_trait]
pub trait JobHandler: Send + Sync {
    async fn run(&self, job: &Job) -> Result<(), JobFailure>;
}

/// How long a kind waits before its next attempt: `delays[n - 1]` after the n-th failure, the
/// last delay for every later one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub delays: Vec<Duration>,
}

impl RetryPolicy {
    /// The same pause after every failure (seed 002's remittance: 10 s).
    pub fn fixed(delay: Duration) -> RetryPolicy {
        RetryPolicy {
            delays: vec![delay],
        }
    }

    /// Doubling pauses from `first`, never longer than `cap`.
    pub fn exponential(first: Duration, cap: Duration) -> RetryPolicy {
        let mut delays = vec![first.min(cap)];
        while let Some(&last) = delays.last() {
            if last >= cap || delays.len() >= 32 {
                break;
            }
            delays.push((last * 2).min(cap));
        }
        RetryPolicy { delays }
    }

    /// The pause after the `attempt`-th failed attempt (1-based).
    pub fn delay_after(&self, attempt: i64) -> Duration {
        let index = usize::try_from(attempt.max(1) - 1).unwrap_or(usize::MAX);
        self.delays
            .get(index)
            .or(self.delays.last())
            .copied()
            .unwrap_or_default()
    }
}

impl Default for RetryPolicy {
    /// 10 s, 20 s, 40 s, … up to an hour.
    fn default() -> RetryPolicy {
        RetryPolicy::exponential(Duration::from_secs(10), Duration::from_secs(3_600))
    }
}

struct Registered {
    handler: Arc<dyn JobHandler>,
    policy: RetryPolicy,
}

/// The kinds a worker runs, each with its handler and retry policy.
#[derive(Default)]
pub struct Registry {
    kinds: HashMap<String, Registered>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds (or replaces) the handler of `kind`.
    pub fn register(
        &mut self,
        kind: &str,
        handler: Arc<dyn JobHandler>,
        policy: RetryPolicy,
    ) -> &mut Registry {
        self.kinds
            .insert(kind.to_owned(), Registered { handler, policy });
        self
    }

    fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.kinds.keys().cloned().collect();
        kinds.sort();
        kinds
    }
}

/// How a worker claims and runs.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// This worker's name in `job_attempts` (e.g. host and process).
    pub worker: String,
    pub lease: Duration,
    pub batch: i64,
    pub poll: Duration,
}

impl Default for RunnerConfig {
    fn default() -> RunnerConfig {
        RunnerConfig {
            worker: format!("pid{}-{}", std::process::id(), ulid::Ulid::new()),
            lease: LEASE_DEFAULT,
            batch: BATCH_DEFAULT,
            poll: POLL_DEFAULT,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub claimed: usize,
    pub done: usize,
    pub retried: usize,
    pub dead: usize,
    /// Jobs whose last attempt was lost with its worker, now dead.
    pub buried: u64,
    /// Outcomes not recorded because the claim had run out (another worker took the job).
    pub lost: usize,
}

/// A worker over the job queue.
#[derive(Clone)]
pub struct JobRunner {
    db: Db,
    clock: Arc<dyn Clock>,
    registry: Arc<Registry>,
    kinds: Arc<Vec<String>>,
    config: RunnerConfig,
}

impl JobRunner {
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        registry: Registry,
        config: RunnerConfig,
    ) -> JobRunner {
        let kinds = Arc::new(registry.kinds());
        JobRunner {
            db,
            clock,
            registry: Arc::new(registry),
            kinds,
            config,
        }
    }

    /// One pass: buries jobs whose last attempt was lost, claims a batch of due jobs, runs
    /// them concurrently, and records each outcome under the claim.
    pub async fn run_once(&self) -> Result<Pass, sqlx::Error> {
        let now = self.clock.now_micros();
        let mut pass = Pass {
            buried: store::bury_lost_last_attempts(&self.db, now).await?,
            ..Pass::default()
        };
        let token = ulid::Ulid::new().to_string();
        let claim = Claim {
            token: &token,
            now,
            lease_until: now.saturating_add(micros(self.config.lease)),
            kinds: &self.kinds,
            limit: self.config.batch.max(1),
        };
        let jobs = store::claim_due(&self.db, &claim).await?;
        pass.claimed = jobs.len();
        let mut running = JoinSet::new();
        for job in jobs {
            let runner = self.clone();
            let token = token.clone();
            running.spawn(async move { runner.attempt(job, &token).await });
        }
        while let Some(result) = running.join_next().await {
            match result {
                Ok(Ok(Some(JobState::Done))) => pass.done += 1,
                Ok(Ok(Some(JobState::Dead))) => pass.dead += 1,
                Ok(Ok(Some(_))) => pass.retried += 1,
                Ok(Ok(None)) => pass.lost += 1,
                // The other jobs of the batch still finish and record their outcomes; this
                // one's claim runs out and it is due again.
                Ok(Err(error)) => {
                    tracing::warn!(%error, "a job's outcome could not be recorded");
                    pass.lost += 1;
                }
                Err(error) => {
                    tracing::error!(%error, "a job attempt task failed");
                    pass.lost += 1;
                }
            }
        }
        Ok(pass)
    }

    /// Runs passes until `shutdown` resolves: at once while jobs are due, then every poll
    /// interval. A pass that fails (the database away) is logged and tried again.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let idle = match self.run_once().await {
                Ok(pass) => pass.claimed == 0,
                Err(error) => {
                    tracing::warn!(%error, "a job runner pass failed");
                    true
                }
            };
            if idle {
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(self.config.poll) => {}
                }
            }
        }
    }

    /// Runs one claimed job and records its outcome; the job's new state, or `None` when the
    /// claim had run out.
    async fn attempt(&self, job: Job, token: &str) -> Result<Option<JobState>, sqlx::Error> {
        let Some(registered) = self.registry.kinds.get(&job.kind) else {
            return Ok(None);
        };
        store::start_attempt(&self.db, &job, &self.config.worker, self.clock.now_micros()).await?;
        let handler = registered.handler.clone();
        let claimed = job.clone();
        let mut run = tokio::spawn(async move { handler.run(&claimed).await });
        let result = match tokio::time::timeout(self.config.lease, &mut run).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(JobFailure::Retry("the handler panicked".into())),
            Err(_) => {
                // Past its lease another worker may run the job: this run stops here.
                run.abort();
                Err(JobFailure::Retry("the handler outlasted its lease".into()))
            }
        };
        let now = self.clock.now_micros();
        let (state, outcome, run_at, error) = match &result {
            Ok(()) => (JobState::Done, "done", now, None),
            Err(JobFailure::Fatal(error)) => (JobState::Dead, "failed", now, Some(error)),
            Err(JobFailure::Retry(error)) if job.attempts >= job.max_attempts => {
                (JobState::Dead, "failed", now, Some(error))
            }
            Err(JobFailure::Retry(error)) => {
                let delay = registered.policy.delay_after(job.attempts);
                (
                    JobState::Queued,
                    "retry",
                    now.saturating_add(micros(delay)),
                    Some(error),
                )
            }
        };
        let error = error.map(|error| error.chars().take(ERROR_CHARS_MAX).collect::<String>());
        let recorded = Outcome {
            state,
            outcome,
            run_at,
            error: error.as_deref(),
            now,
        };
        if !store::finish_attempt(&self.db, &job, token, &recorded).await? {
            tracing::warn!(job = %job.id, kind = job.kind, "a job's claim ran out before its outcome was recorded");
            return Ok(None);
        }
        metrics::counter!("mypay_jobs_finished_total", "kind" => job.kind.clone(), "outcome" => outcome)
            .increment(1);
        match state {
            JobState::Dead => {
                tracing::error!(job = %job.id, kind = job.kind, attempts = job.attempts, error = error.as_deref().unwrap_or(""), "a job is dead: an operator must retry or discard it");
            }
            JobState::Queued => {
                tracing::warn!(job = %job.id, kind = job.kind, attempts = job.attempts, error = error.as_deref().unwrap_or(""), "a job failed and will be retried");
            }
            _ => {}
        }
        Ok(Some(state))
    }
}

fn micros(duration: Duration) -> Micros {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_stays_there() {
        let policy = RetryPolicy::exponential(Duration::from_secs(10), Duration::from_secs(60));
        let delays: Vec<u64> = (1..=6).map(|n| policy.delay_after(n).as_secs()).collect();
        assert_eq!(delays, vec![10, 20, 40, 60, 60, 60]);
        let fixed = RetryPolicy::fixed(Duration::from_secs(10));
        assert_eq!(fixed.delay_after(1), fixed.delay_after(3));
        assert_eq!(RetryPolicy::default().delay_after(100).as_secs(), 3_600);
    }
}
