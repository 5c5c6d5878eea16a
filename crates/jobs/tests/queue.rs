//! The job queue on a real database (SQLite, or PostgreSQL with `MYPAY_TEST_DATABASE_URL`):
//! the outbox contract, retries with backoff to a dead letter and back, leases that outlive
//! their worker, two replicas draining one queue, and cron slots enqueued once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jobs::{
    enqueue, Job, JobFailure, JobHandler, JobId, JobRunner, JobState, Jobs, NewJob, Registry,
    RetryPolicy, RunnerConfig, Schedule, Scheduler,
};
use ledger::{Clock, ManualClock};
use storage::Db;
use testkit::TestDb;

const START: i64 = 1_795_878_000_000_000;
const SECOND: i64 = 1_000_000;

/// Counts the runs of each job, and fails the first `failures` runs of each.
#[derive(Default)]
struct Recorder {
    runs: Mutex<HashMap<String, u32>>,
    failures: u32,
    fatal: bool,
}

#[async_trait]
impl JobHandler for Recorder {
    async fn run(&self, job: &Job) -> Result<(), JobFailure> {
        let run = {
            let mut runs = self.runs.lock().unwrap();
            let count = runs.entry(job.id.to_string()).or_default();
            *count += 1;
            *count
        };
        if self.fatal {
            return Err(JobFailure::Fatal("the payload names nothing".into()));
        }
        if run <= self.failures {
            return Err(JobFailure::Retry(format!("run {run} failed")));
        }
        Ok(())
    }
}

impl Recorder {
    fn runs(&self) -> HashMap<String, u32> {
        self.runs.lock().unwrap().clone()
    }
}

fn new_job(kind: &str, n: u32) -> NewJob {
    NewJob {
        kind: kind.to_owned(),
        payload: serde_json::json!({"n": n}),
        unique_key: None,
        run_at: START,
        max_attempts: 3,
    }
}

fn runner(db: &Db, clock: &Arc<ManualClock>, handler: Arc<Recorder>) -> JobRunner {
    let mut registry = Registry::new();
    registry.register(
        "test.record",
        handler,
        RetryPolicy::fixed(Duration::from_secs(10)),
    );
    JobRunner::new(
        db.clone(),
        clock.clone(),
        registry,
        RunnerConfig {
            lease: Duration::from_secs(60),
            ..RunnerConfig::default()
        },
    )
}

#[tokio::test]
async fn a_job_exists_only_if_its_transaction_commits_and_runs_once() {
    let test = TestDb::new(4).await;
    let clock = Arc::new(ManualClock::new(START));
    let handler = Arc::new(Recorder::default());
    let worker = runner(&test.db, &clock, handler.clone());

    let mut tx = test.db.begin_write().await.unwrap();
    enqueue(&mut tx, &new_job("test.record", 1), START)
        .await
        .unwrap()
        .unwrap();
    tx.rollback().await.unwrap();
    let mut tx = test.db.begin_write().await.unwrap();
    let id = enqueue(&mut tx, &new_job("test.record", 2), START)
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();

    let pass = worker.run_once().await.unwrap();
    assert_eq!((pass.claimed, pass.done), (1, 1));
    assert_eq!(worker.run_once().await.unwrap().claimed, 0);
    assert_eq!(handler.runs(), HashMap::from([(id.to_string(), 1)]));
    let jobs = Jobs::new(test.db.clone(), clock.clone());
    let job = jobs.get(id.as_str()).await.unwrap();
    assert_eq!(job.state, JobState::Done);
    let attempts = jobs.attempts(&job.id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome.as_deref(), Some("done"));

    // A unique key enqueues once.
    let keyed = NewJob {
        unique_key: Some("day-2026-11-28".into()),
        ..new_job("test.record", 3)
    };
    assert!(jobs.enqueue(&keyed).await.unwrap().is_some());
    assert!(jobs.enqueue(&keyed).await.unwrap().is_none());
    // A job of a kind this worker has no handler for is left for a worker that has one.
    jobs.enqueue(&new_job("other.kind", 4)).await.unwrap();
    let pass = worker.run_once().await.unwrap();
    assert_eq!((pass.claimed, pass.done), (1, 1));
    let queued = jobs
        .list(Some(JobState::Queued), None, None, 10)
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].kind, "other.kind");
}

#[tokio::test]
async fn failures_back_off_then_die_and_an_operator_retry_runs_the_job_again() {
    let test = TestDb::new(4).await;
    let clock = Arc::new(ManualClock::new(START));
    let handler = Arc::new(Recorder {
        failures: 3,
        ..Recorder::default()
    });
    let worker = runner(&test.db, &clock, handler.clone());
    let jobs = Jobs::new(test.db.clone(), clock.clone());
    let id = jobs
        .enqueue(&new_job("test.record", 1))
        .await
        .unwrap()
        .unwrap();

    // Attempt 1 fails; the job waits 10 s, not a microsecond less.
    assert_eq!(worker.run_once().await.unwrap().retried, 1);
    let job = jobs.get(id.as_str()).await.unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Queued, 1));
    assert_eq!(job.run_at, START + 10 * SECOND);
    assert_eq!(job.last_error.as_deref(), Some("run 1 failed"));
    clock.advance_micros(10 * SECOND - 1);
    assert_eq!(worker.run_once().await.unwrap().claimed, 0);
    clock.advance_micros(1);
    assert_eq!(worker.run_once().await.unwrap().retried, 1);
    // The third and last allowed attempt fails too: a dead letter.
    clock.advance_micros(10 * SECOND);
    assert_eq!(worker.run_once().await.unwrap().dead, 1);
    clock.advance_micros(3_600 * SECOND);
    assert_eq!(worker.run_once().await.unwrap().claimed, 0);
    let dead = jobs
        .list(Some(JobState::Dead), Some("test.record"), None, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("run 3 failed"));

    // Discarding needs a dead job; retrying one starts a new round that succeeds.
    let retried = jobs.retry(id.as_str()).await.unwrap();
    assert_eq!((retried.state, retried.attempts), (JobState::Queued, 0));
    let refused = jobs.retry(id.as_str()).await.unwrap_err();
    assert_eq!(refused.code(), "job_not_dead");
    assert_eq!(worker.run_once().await.unwrap().done, 1);
    let job = jobs.get(id.as_str()).await.unwrap();
    assert_eq!((job.state, job.attempts, job.runs), (JobState::Done, 1, 4));
    let outcomes: Vec<Option<String>> = jobs
        .attempts(&job.id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.outcome)
        .collect();
    let outcome = |text: &str| Some(text.to_owned());
    assert_eq!(
        outcomes,
        vec![
            outcome("retry"),
            outcome("retry"),
            outcome("failed"),
            outcome("done")
        ]
    );
    assert_eq!(
        jobs.discard(id.as_str()).await.unwrap_err().code(),
        "job_not_dead"
    );
}

#[tokio::test]
async fn a_fatal_failure_is_dead_at_once_and_can_be_discarded() {
    let test = TestDb::new(4).await;
    let clock = Arc::new(ManualClock::new(START));
    let handler = Arc::new(Recorder {
        fatal: true,
        ..Recorder::default()
    });
    let worker = runner(&test.db, &clock, handler);
    let jobs = Jobs::new(test.db.clone(), clock.clone());
    let id = jobs
        .enqueue(&new_job("test.record", 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(worker.run_once().await.unwrap().dead, 1);
    let discarded = jobs.discard(id.as_str()).await.unwrap();
    assert_eq!(discarded.state, JobState::Discarded);
    assert_eq!(
        jobs.retry(id.as_str()).await.unwrap_err().code(),
        "job_not_dead"
    );
    assert_eq!(
        jobs.get("job_nope").await.unwrap_err().code(),
        "job_not_found"
    );
}

/// Blocks every run until the test lets it go, as a worker that hangs or died would.
struct Stuck;

#[async_trait]
impl JobHandler for Stuck {
    async fn run(&self, _job: &Job) -> Result<(), JobFailure> {
        std::future::pending::<()>().await;
        Ok(())
    }
}

/// Enqueues a job with `max_attempts`, lets a worker claim it for an hour and then die
/// mid-run (its task aborted): the job is left `running` under that worker's lease.
async fn claimed_by_a_dying_worker(
    test: &TestDb,
    clock: &Arc<ManualClock>,
    max_attempts: i64,
) -> JobId {
    let jobs = Jobs::new(test.db.clone(), clock.clone());
    let id = jobs
        .enqueue(&NewJob {
            max_attempts,
            ..new_job("test.record", 1)
        })
        .await
        .unwrap()
        .unwrap();
    let mut registry = Registry::new();
    registry.register("test.record", Arc::new(Stuck), RetryPolicy::default());
    let dying = JobRunner::new(
        test.db.clone(),
        clock.clone(),
        registry,
        RunnerConfig {
            lease: Duration::from_secs(3_600),
            ..RunnerConfig::default()
        },
    );
    let task = tokio::spawn(async move { dying.run_once().await });
    while jobs.get(id.as_str()).await.unwrap().state != JobState::Running {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    id
}

#[tokio::test]
async fn a_job_whose_worker_died_is_due_again_when_its_lease_ends() {
    let test = TestDb::new(4).await;
    let clock = Arc::new(ManualClock::new(START));
    let jobs = Jobs::new(test.db.clone(), clock.clone());
    let id = claimed_by_a_dying_worker(&test, &clock, 2).await;
    assert_eq!(
        jobs.get(id.as_str()).await.unwrap().state,
        JobState::Running
    );

    // Another replica does not take it while the lease lasts, and runs it once it has ended.
    let handler = Arc::new(Recorder::default());
    let healthy = runner(&test.db, &clock, handler.clone());
    assert_eq!(healthy.run_once().await.unwrap().claimed, 0);
    clock.advance_micros(3_600 * SECOND);
    assert_eq!(healthy.run_once().await.unwrap().done, 1);
    assert_eq!(handler.runs().get(id.as_str()), Some(&1));
    let attempts = jobs.attempts(&id).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(
        attempts[0].outcome, None,
        "the dead worker's attempt never ended"
    );
}

#[tokio::test]
async fn a_last_attempt_lost_with_its_worker_is_a_dead_letter() {
    let test = TestDb::new(4).await;
    let clock = Arc::new(ManualClock::new(START));
    let jobs = Jobs::new(test.db.clone(), clock.clone());
    let id = claimed_by_a_dying_worker(&test, &clock, 1).await;
    clock.advance_micros(3_600 * SECOND);
    let healthy = runner(&test.db, &clock, Arc::new(Recorder::default()));
    let pass = healthy.run_once().await.unwrap();
    assert_eq!((pass.buried, pass.claimed), (1, 0));
    let job = jobs.get(id.as_str()).await.unwrap();
    assert_eq!(job.state, JobState::Dead);
    assert_eq!(job.last_error.as_deref(), Some("attempt_lost"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_drain_one_queue_and_no_job_runs_twice() {
    const JOBS: u32 = 400;
    let test = TestDb::new(8).await;
    let clock = Arc::new(ManualClock::new(START));
    let jobs = Jobs::new(test.db.clone(), clock.clone());
    for n in 0..JOBS {
        jobs.enqueue(&new_job("test.record", n)).await.unwrap();
    }
    // Two replicas: each its own pool and its own worker, one shared record of runs.
    let handler = Arc::new(Recorder::default());
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let db = Db::connect(&test.url, 8).await.unwrap();
        let mut registry = Registry::new();
        registry.register("test.record", handler.clone(), RetryPolicy::default());
        let worker = JobRunner::new(
            db,
            clock.clone(),
            registry,
            RunnerConfig {
                batch: 16,
                ..RunnerConfig::default()
            },
        );
        replicas.push(tokio::spawn(async move {
            let mut done = 0;
            loop {
                let pass = worker.run_once().await.unwrap();
                if pass.claimed == 0 {
                    return done;
                }
                done += pass.done;
            }
        }));
    }
    let mut done = Vec::new();
    for replica in replicas {
        done.push(replica.await.unwrap());
    }
    let runs = handler.runs();
    assert_eq!(runs.len(), JOBS as usize);
    assert!(runs.values().all(|&n| n == 1), "a job ran twice");
    assert_eq!(done.iter().sum::<usize>(), JOBS as usize);
    assert_eq!(
        jobs.list(Some(JobState::Done), None, None, 500)
            .await
            .unwrap()
            .len(),
        JOBS as usize
    );
    println!("jobs per replica: {done:?}");
}

#[tokio::test]
async fn a_cron_slot_is_enqueued_once_however_many_replicas_tick() {
    let test = TestDb::new(4).await;
    // 2026-11-29 00:00 KST.
    let clock = Arc::new(ManualClock::new(START));
    let schedule = || Schedule::parse("nightly", "0 2 * * *", "test.record", 3).unwrap();
    let replicas = [
        Scheduler::new(test.db.clone(), clock.clone(), vec![schedule()]),
        Scheduler::new(test.db.clone(), clock.clone(), vec![schedule()]),
    ];
    // The first tick only learns the next slot, 02:00 KST.
    assert_eq!(replicas[0].tick().await.unwrap(), 0);
    clock.advance_micros(2 * 3_600 * SECOND - 1);
    assert_eq!(replicas[1].tick().await.unwrap(), 0);
    clock.advance_micros(1);
    let (a, b) = tokio::join!(replicas[0].tick(), replicas[1].tick());
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    // Three days down: the three missed slots are enqueued, once.
    clock.advance_micros(3 * 24 * 3_600 * SECOND);
    assert_eq!(replicas[1].tick().await.unwrap(), 3);
    assert_eq!(replicas[0].tick().await.unwrap(), 0);
    let jobs = Jobs::new(test.db.clone(), clock.clone());
    let queued = jobs
        .list(None, Some("test.record"), None, 10)
        .await
        .unwrap();
    let mut slots: Vec<i64> = queued
        .iter()
        .map(|job| job.payload["slot"].as_i64().unwrap())
        .collect();
    // Ids minted in one millisecond do not sort in the order they were made.
    slots.sort_unstable();
    let day = 24 * 3_600 * SECOND;
    let first = START + 2 * 3_600 * SECOND;
    assert_eq!(
        slots,
        vec![first, first + day, first + 2 * day, first + 3 * day]
    );
    assert_eq!(clock.now_micros(), first + 3 * day);
}
