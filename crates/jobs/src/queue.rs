//! The queue as its producers and operators see it: enqueueing in the caller's transaction,
//! and listing, inspecting, retrying and discarding jobs.

use std::sync::Arc;

use ledger::{Clock, Micros};
use sqlx::{Any, Transaction};
use storage::Db;

use crate::error::JobError;
use crate::store;

ids::ulid_id!(
    /// A job: `job_` + ULID.
    JobId,
    "job_"
);

/// The most jobs one page lists.
pub const JOB_PAGE_MAX: i64 = 500;
/// The longest kind and unique key accepted, in bytes.
const NAME_LEN_MAX: usize = 200;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for `run_at`.
    Queued,
    /// Claimed by a worker until `run_at` (the lease's end); due again if the worker dies.
    Running,
    Done,
    /// Out of attempts (or failed for good): waits for an operator.
    Dead,
    /// An operator gave it up.
    Discarded,
}

impl JobState {
    /// Every state, in the order a job moves through them.
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Done,
        JobState::Dead,
        JobState::Discarded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
            JobState::Discarded => "discarded",
        }
    }

    pub fn parse(value: &str) -> Option<JobState> {
        Some(match value {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "dead" => JobState::Dead,
            "discarded" => JobState::Discarded,
            _ => return None,
        })
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Which handler runs it, e.g. `settlement.run_day`.
    pub kind: String,
    pub payload: serde_json::Value,
    /// When set, a second job of the same kind and key is not enqueued: enqueueing is
    /// idempotent.
    pub unique_key: Option<String>,
    /// Not before this instant.
    pub run_at: Micros,
    /// Attempts before the job is dead; at least 1.
    pub max_attempts: i64,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub payload: serde_json::Value,
    pub unique_key: Option<String>,
    pub state: JobState,
    /// Attempts started in this round (an operator's retry starts a new round).
    pub attempts: i64,
    pub max_attempts: i64,
    /// Attempts started in every round: the number of the latest in `job_attempts`.
    pub runs: i64,
    /// When it is due next (for a running job: when its lease ends).
    pub run_at: Micros,
    pub last_error: Option<String>,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub finished_at: Option<Micros>,
}

/// One attempt at a job, as the runner recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobAttempt {
    /// 1, 2, … over the job's whole life, across operator retries.
    pub attempt: i64,
    pub worker: String,
    pub started_at: Micros,
    pub finished_at: Option<Micros>,
    /// `done`, `retry`, `failed` (for good), or `None` while running (or lost with its worker).
    pub outcome: Option<String>,
    pub error: Option<String>,
}

/// Enqueues a job in the caller's transaction: it exists if and only if the transaction
/// commits. Answers the new job's id, or `None` when a job of the same kind and unique key
/// already exists (nothing is written).
pub async fn enqueue(
    tx: &mut Transaction<'static, Any>,
    job: &NewJob,
    now: Micros,
) -> Result<Option<JobId>, JobError> {
    check(job)?;
    let id = JobId::generate();
    let inserted = store::insert(tx, &id, job, now).await?;
    Ok(inserted.then_some(id))
}

fn check(job: &NewJob) -> Result<(), JobError> {
    let name_ok = |name: &str| {
        !name.is_empty() && name.len() <= NAME_LEN_MAX && name.bytes().all(|b| b.is_ascii_graphic())
    };
    if !name_ok(&job.kind) {
        return Err(JobError::Invalid {
            field: "kind",
            reason: "must be 1 to 200 printable ASCII characters",
        });
    }
    if job.unique_key.as_deref().is_some_and(|key| !name_ok(key)) {
        return Err(JobError::Invalid {
            field: "unique_key",
            reason: "must be 1 to 200 printable ASCII characters",
        });
    }
    if job.max_attempts < 1 {
        return Err(JobError::Invalid {
            field: "max_attempts",
            reason: "must be at least 1",
        });
    }
    Ok(())
}

/// The queue for producers outside a transaction and for operators.
#[derive(Clone)]
pub struct Jobs {
    db: Db,
    clock: Arc<dyn Clock>,
}

impl Jobs {
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> Jobs {
        Jobs { db, clock }
    }

    /// Enqueues a job in a transaction of its own.
    pub async fn enqueue(&self, job: &NewJob) -> Result<Option<JobId>, JobError> {
        let mut tx = self.db.begin_write().await?;
        let id = enqueue(&mut tx, job, self.clock.now_micros()).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn get(&self, id: &str) -> Result<Job, JobError> {
        let not_found = || JobError::NotFound(id.chars().take(64).collect());
        JobId::parse(id).ok_or_else(not_found)?;
        store::job(&self.db, id).await?.ok_or_else(not_found)
    }

    /// Every attempt at a job, oldest first.
    pub async fn attempts(&self, id: &JobId) -> Result<Vec<JobAttempt>, JobError> {
        Ok(store::attempts(&self.db, id).await?)
    }

    /// Jobs in `state` (any state when `None`), of `kind` when given, oldest first, a page at a
    /// time after the job `after`.
    pub async fn list(
        &self,
        state: Option<JobState>,
        kind: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Job>, JobError> {
        let after = after
            .map(|id| {
                JobId::parse(id).ok_or(JobError::Invalid {
                    field: "after",
                    reason: "must be a job id from a previous page",
                })
            })
            .transpose()?;
        let filter = store::ListFilter {
            state,
            kind,
            after: after.as_ref(),
            limit: limit.clamp(1, JOB_PAGE_MAX),
        };
        Ok(store::list(&self.db, &filter).await?)
    }

    /// How many jobs are in each state, for metrics and the back office.
    pub async fn counts(&self) -> Result<Vec<(JobState, i64)>, JobError> {
        Ok(store::counts(&self.db).await?)
    }

    /// Puts a dead job back in the queue, due now, with a fresh set of attempts.
    pub async fn retry(&self, id: &str) -> Result<Job, JobError> {
        self.operate(id, store::requeue_dead).await
    }

    /// Gives a dead job up for good.
    pub async fn discard(&self, id: &str) -> Result<Job, JobError> {
        self.operate(id, store::discard_dead).await
    }

    async fn operate<F, Fut>(&self, id: &str, change: F) -> Result<Job, JobError>
    where
        F: FnOnce(Db, JobId, Micros) -> Fut,
        Fut: std::future::Future<Output = Result<bool, sqlx::Error>>,
    {
        let job = self.get(id).await?;
        if !change(self.db.clone(), job.id.clone(), self.clock.now_micros()).await? {
            let now = self.get(id).await?;
            return Err(JobError::NotDead {
                id: now.id.to_string(),
                state: now.state.as_str(),
            });
        }
        self.get(id).await
    }
}
