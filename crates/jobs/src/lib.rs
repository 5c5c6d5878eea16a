//! Durable background jobs, fed by a transactional outbox.
//!
//! - **Enqueue in the caller's transaction** ([`enqueue`]): a state change and the job it
//!   implies commit together or not at all, so no change is left without its follow-up and no
//!   job runs for a change that rolled back. A `unique_key` makes enqueueing idempotent.
//! - **Claim under a lease** ([`JobRunner`]): a worker takes due jobs of the kinds it can run by
//!   one `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)` (PostgreSQL; SQLite has one
//!   writer), stamping its lease token and moving the job's `run_at` to the end of the lease. A
//!   worker that dies leaves the job due again when the lease ends; a worker whose lease ran out
//!   can no longer record an outcome. Delivery is at least once, so handlers are idempotent:
//!   their effects happen once however often they run.
//! - **Retry, then dead letter**: a failure is retried after the kind's backoff until the job's
//!   `max_attempts`, then the job is `dead`; an operator lists, inspects (with every attempt in
//!   `job_attempts`), retries or discards dead jobs ([`Jobs`]).
//! - **Cron schedules** ([`Scheduler`]): each schedule's next slot is stored and advanced by
//!   compare-and-set, and the slot's job is enqueued under the unique key `{name}@{slot}` in the
//!   same transaction, so replicas never enqueue a slot twice.

#![forbid(unsafe_code)]

mod error;
mod queue;
mod runner;
mod schedule;
mod store;

pub use error::JobError;
pub use queue::{enqueue, Job, JobAttempt, JobId, JobState, Jobs, NewJob, JOB_PAGE_MAX};
pub use runner::{
    JobFailure, JobHandler, JobRunner, Pass, Registry, RetryPolicy, RunnerConfig, LEASE_DEFAULT,
};
pub use schedule::{Schedule, ScheduleError, Scheduler, CATCH_UP_MAX, SCHEDULE_OFFSET_S};
