//! The job kinds of remittances: one per step, the retry batch and the monitor. This is where
//! the service meets the job runner; `mypay serve` registers them with [`register`].

use std::sync::Arc;

use async_trait::async_trait;
use jobs::{Job, JobFailure, JobHandler, Registry, RetryPolicy};

use crate::domain::{RemittanceId, Step};
use crate::service::Remittances;

/// The scheduled pass of the retry batch over failure records.
pub const RETRY_FAILURES: &str = "remittance.retry_failures";
/// The scheduled pass of the monitor for remittances not finished in time.
pub const MONITOR: &str = "remittance.monitor";

/// Registers the five step kinds (each retried at the configured fixed pause, seed 002's
/// 3 × 10 s by default, then a dead letter), the retry batch and the monitor.
pub fn register(registry: &mut Registry, remittances: &Remittances) {
    let pause = RetryPolicy::fixed(remittances.config().step_delay);
    for step in Step::ALL {
        registry.register(
            step.job_kind(),
            Arc::new(StepJob {
                step,
                remittances: remittances.clone(),
            }),
            pause.clone(),
        );
    }
    registry.register(
        RETRY_FAILURES,
        Arc::new(RetryBatch {
            remittances: remittances.clone(),
        }),
        RetryPolicy::default(),
    );
    registry.register(
        MONITOR,
        Arc::new(Monitor {
            remittances: remittances.clone(),
        }),
        RetryPolicy::default(),
    );
}

/// Runs one step of the remittance the payload names.
struct StepJob {
    step: Step,
    remittances: Remittances,
}

#[async_trait]
impl JobHandler for StepJob {
    async fn run(&self, job: &Job) -> Result<(), JobFailure> {
        let id = job.payload["remittance"]
            .as_str()
            .and_then(RemittanceId::parse)
            .ok_or_else(|| JobFailure::Fatal("the payload names no remittance".into()))?;
        self.remittances
            .run_step(self.step, &id, job.id.as_str())
            .await
            .map_err(|failure| {
                let text = format!("{}: {}", failure.code, failure.message);
                if failure.fatal {
                    JobFailure::Fatal(text)
                } else {
                    JobFailure::Retry(text)
                }
            })
    }
}

struct RetryBatch {
    remittances: Remittances,
}

#[async_trait]
impl JobHandler for RetryBatch {
    async fn run(&self, job: &Job) -> Result<(), JobFailure> {
        let requeued = self
            .remittances
            .retry_failures()
            .await
            .map_err(|error| JobFailure::Retry(error.to_string()))?;
        if requeued > 0 {
            tracing::info!(job = %job.id, requeued, "the remittance retry batch re-queued failed steps");
        }
        Ok(())
    }
}

struct Monitor {
    remittances: Remittances,
}

#[async_trait]
impl JobHandler for Monitor {
    async fn run(&self, _job: &Job) -> Result<(), JobFailure> {
        self.remittances
            .monitor()
            .await
            .map(|_| ())
            .map_err(|error| JobFailure::Retry(error.to_string()))
    }
}
