//! The background jobs `mypay serve` runs: the handler of each job kind, and the cron
//! schedules that enqueue the periodic ones. This is where services meet the job runner, so
//! that neither knows the other.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use async_trait::async_trait;
use jobs::{Job, JobFailure, JobHandler, Registry, RetryPolicy, Schedule};
use reconciliation::Reconciliations;
use remittance::Remittances;
use settlement::{SettlementDate, SettlementError, Settlements};
use storage::Db;

/// The daily check of the ledger's invariants.
pub const LEDGER_CHECK: &str = "ledger.check";
/// The settlement of the business day before the slot's (KST).
pub const SETTLEMENT_RUN_DAY: &str = "settlement.run_day";
/// The reconciliation of the business day before the slot's (KST).
pub const RECONCILIATION_RUN_DAY: &str = "reconciliation.run_day";

/// Every schedule `serve` knows: its name, the job kind it enqueues, and its default cron
/// expression (KST). Settlement runs at 02:00, once the day's late webhooks and resumers have
/// had two hours to finish its orders.
/// Reconciliation runs at 04:00, after settlement's payouts, so that the day's statement and
/// report are complete and the previous day's settlement payouts are on the next day's.
/// The remittance retry batch and monitor run every minute (seed 002), so a dead step is taken
/// up again within a minute and a late remittance is alerted on within a minute of its tenth.
const SCHEDULES: &[(&str, &str, &str)] = &[
    ("settlement", SETTLEMENT_RUN_DAY, "0 2 * * *"),
    ("ledger-check", LEDGER_CHECK, "0 3 * * *"),
    ("reconciliation", RECONCILIATION_RUN_DAY, "0 4 * * *"),
    ("remittance-retry", remittance::RETRY_FAILURES, "* * * * *"),
    ("remittance-monitor", remittance::MONITOR, "* * * * *"),
];
/// A day in microseconds: KST has no daylight saving, so the day before a slot is a day back.
const DAY_US: i64 = 24 * 3_600 * 1_000_000;
/// How long a settlement job waits for another run's lease, in rounds of [`LEASE_WAIT`]
/// (a minute), before it fails and is retried later.
const LEASE_WAITS: usize = 30;
const LEASE_WAIT: Duration = Duration::from_secs(2);

/// Attempts a scheduled job gets before it is a dead letter.
const SCHEDULED_ATTEMPTS: i64 = 5;
/// How long a job may run before its claim ends and another worker may take it, by default: a
/// settlement day pays every merchant in one run, at up to seconds per bank payout. A worker
/// that dies leaves its job due again after this long.
pub const JOB_LEASE_S_DEFAULT: u64 = 3_600;
/// The bounds of `--job-lease-s`.
const JOB_LEASE_S: std::ops::RangeInclusive<u64> = 1..=86_400;

/// The claim a worker takes on a job, from `--job-lease-s`, within its bounds.
pub fn job_lease(seconds: u64) -> Duration {
    Duration::from_secs(seconds.clamp(*JOB_LEASE_S.start(), *JOB_LEASE_S.end()))
}

/// The handlers of every job kind.
pub fn registry(
    db: &Db,
    settlements: &Settlements,
    remittances: &Remittances,
    reconciliations: &Reconciliations,
) -> Registry {
    let mut registry = Registry::new();
    registry.register(
        RECONCILIATION_RUN_DAY,
        Arc::new(ReconcileDay {
            reconciliations: reconciliations.clone(),
        }),
        // The bank or the PSP was unreachable: their reports are there to be read later.
        RetryPolicy::fixed(Duration::from_secs(10 * 60)),
    );
    remittance::register(&mut registry, remittances);
    registry.register(
        LEDGER_CHECK,
        Arc::new(LedgerCheck { db: db.clone() }),
        RetryPolicy::default(),
    );
    registry.register(
        SETTLEMENT_RUN_DAY,
        Arc::new(SettleDay {
            settlements: settlements.clone(),
        }),
        // A run refused because another holds the settlement lease (at most 5 minutes) is
        // tried again after it.
        RetryPolicy::fixed(Duration::from_secs(5 * 60)),
    );
    registry
}

/// The schedules to run: the defaults, changed or turned off by `--schedule NAME=CRON|off`.
pub fn schedules(overrides: &[String]) -> anyhow::Result<Vec<Schedule>> {
    let mut chosen: BTreeMap<&str, Option<String>> = SCHEDULES
        .iter()
        .map(|(name, _, cron)| (*name, Some((*cron).to_owned())))
        .collect();
    for flag in overrides {
        let Some((name, expression)) = flag.split_once('=') else {
            bail!("--schedule {flag:?}: expected NAME=CRON or NAME=off");
        };
        let Some(slot) = chosen.get_mut(name.trim()) else {
            let known: Vec<&str> = SCHEDULES.iter().map(|(name, _, _)| *name).collect();
            bail!(
                "--schedule {flag:?}: unknown schedule (known: {})",
                known.join(", ")
            );
        };
        let expression = expression.trim();
        *slot = (expression != "off").then(|| expression.to_owned());
    }
    let mut schedules = Vec::new();
    for (name, kind, _) in SCHEDULES {
        if let Some(Some(expression)) = chosen.get(name) {
            schedules.push(Schedule::parse(name, expression, kind, SCHEDULED_ATTEMPTS)?);
        }
    }
    Ok(schedules)
}

/// Settles the KST business day before the job's slot (`Settlements::run_day`, idempotent: a
/// run that repeats a settled day changes nothing). Payouts whose outcome is unknown are left to
/// the settlement resolver. A day that a later one superseded (after an outage, the later day's
/// job ran first) has nothing left to do: its sales were settled with that day.
struct SettleDay {
    settlements: Settlements,
}

#[async_trait]
impl JobHandler for SettleDay {
    async fn run(&self, job: &Job) -> Result<(), JobFailure> {
        let slot = job.payload["slot"]
            .as_i64()
            .ok_or_else(|| JobFailure::Fatal("the payload names no slot".into()))?;
        let date = SettlementDate::of_instant(slot.saturating_sub(DAY_US));
        // Slots caught up after an outage run side by side, and one settlement run holds the
        // lease at a time: wait for it here rather than retrying minutes later.
        let mut outcome = self.settlements.run_day(date, &|_| {}).await;
        for _ in 0..LEASE_WAITS {
            if !matches!(outcome, Err(SettlementError::RunInProgress)) {
                break;
            }
            tokio::time::sleep(LEASE_WAIT).await;
            outcome = self.settlements.run_day(date, &|_| {}).await;
        }
        match outcome {
            Ok(day) => {
                tracing::info!(job = %job.id, date = %date, state = day.run.state.as_str(), "settlement day run");
                Ok(())
            }
            Err(SettlementError::DaySuperseded { later, .. }) => {
                tracing::info!(job = %job.id, date = %date, later, "a settlement day was settled with a later one");
                Ok(())
            }
            Err(error @ SettlementError::DateInvalid(_)) => {
                Err(JobFailure::Fatal(error.to_string()))
            }
            Err(error) => Err(JobFailure::Retry(error.to_string())),
        }
    }
}

/// Reconciles the KST business day before the job's slot. A day that does not reconcile is not
/// a failure of the job, which did its work: the result is recorded and reported (an error log
/// line, the `mypay_reconciliation_mismatches` and `mypay_safeguarding_ok` gauges). A side that
/// cannot be read is retried.
struct ReconcileDay {
    reconciliations: Reconciliations,
}

#[async_trait]
impl JobHandler for ReconcileDay {
    async fn run(&self, job: &Job) -> Result<(), JobFailure> {
        let slot = job.payload["slot"]
            .as_i64()
            .ok_or_else(|| JobFailure::Fatal("the payload names no slot".into()))?;
        let date = SettlementDate::of_instant(slot.saturating_sub(DAY_US));
        let report = self
            .reconciliations
            .run_day(date)
            .await
            .map_err(|error| JobFailure::Retry(error.to_string()))?;
        tracing::info!(job = %job.id, date = %date, matched = report.run.matched, mismatches = report.run.mismatches, "reconciliation day run");
        Ok(())
    }
}

/// Checks every ledger invariant (balanced transactions, stored balances equal to their
/// postings, guarded accounts never negative, …). A broken invariant is not a failure of the
/// job, which did its work: it is reported as an error log line and the
/// `mypay_ledger_invariants_ok` gauge (0), for alerting.
struct LedgerCheck {
    db: Db,
}

#[async_trait]
impl JobHandler for LedgerCheck {
    async fn run(&self, job: &Job) -> Result<(), JobFailure> {
        let report = ledger::check(&self.db)
            .await
            .map_err(|error| JobFailure::Retry(format!("the ledger could not be read: {error}")))?;
        let ok = report.is_ok();
        metrics::gauge!("mypay_ledger_invariants_ok").set(if ok { 1.0 } else { 0.0 });
        if ok {
            tracing::info!(job = %job.id, "ledger invariants hold");
        } else {
            tracing::error!(job = %job.id, report = %report, "ledger invariants are broken");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_default_and_can_be_changed_or_turned_off() {
        let defaults = schedules(&[]).unwrap();
        let names: Vec<(&str, &str)> = defaults
            .iter()
            .map(|s| (s.name.as_str(), s.expression.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("settlement", "0 2 * * *"),
                ("ledger-check", "0 3 * * *"),
                ("reconciliation", "0 4 * * *"),
                ("remittance-retry", "* * * * *"),
                ("remittance-monitor", "* * * * *"),
            ]
        );
        let changed = schedules(&["ledger-check=*/5 * * * *".into()]).unwrap();
        assert_eq!(changed[1].expression, "*/5 * * * *");
        let off = schedules(&[
            "ledger-check=off".into(),
            "settlement=off".into(),
            "reconciliation=off".into(),
            "remittance-retry=off".into(),
            "remittance-monitor=off".into(),
        ])
        .unwrap();
        assert!(off.is_empty());
        assert!(schedules(&["nightly=0 1 * * *".into()]).is_err());
        assert!(schedules(&["ledger-check=whenever".into()]).is_err());
        assert!(schedules(&["ledger-check".into()]).is_err());
    }
}
