//! Cron schedules: periodic work as jobs. Each schedule's next slot is stored; a replica whose
//! clock has passed it advances it by compare-and-set and enqueues the slot's job under the
//! unique key `{name}@{slot}` in the same transaction, so a slot is enqueued once however many
//! replicas tick. Schedules are read in Korea Standard Time (UTC+9, no daylight saving): a
//! Korean platform's "every day at 02:00" is 02:00 KST.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeZone};
use croner::Cron;
use ledger::{Clock, Micros};
use sqlx::Row;
use storage::Db;

use crate::error::JobError;
use crate::queue::{enqueue, NewJob};

/// The offset schedules are read in: KST.
pub const SCHEDULE_OFFSET_S: i32 = 9 * 3600;
/// The most missed slots one tick enqueues after the server was down: the newest ones (a month
/// of a daily schedule); older slots are skipped with a warning.
pub const CATCH_UP_MAX: usize = 31;
/// How often the scheduler looks at its schedules.
const TICK: Duration = Duration::from_secs(5);

/// A schedule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule {name}: {expression:?} is not a cron expression ({reason})")]
    Expression {
        name: String,
        expression: String,
        reason: String,
    },
    #[error("schedule {name}: it names no time in the next years")]
    Never { name: String },
}

/// A named cron expression and the job each of its slots enqueues.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub expression: String,
    cron: Cron,
    /// The job kind each slot enqueues; the payload is `{"schedule": name, "slot": micros}`.
    pub kind: String,
    pub max_attempts: i64,
}

impl Schedule {
    /// A schedule from a five-field cron expression (`minute hour day month weekday`, KST).
    pub fn parse(
        name: &str,
        expression: &str,
        kind: &str,
        max_attempts: i64,
    ) -> Result<Schedule, ScheduleError> {
        let cron = Cron::from_str(expression).map_err(|error| ScheduleError::Expression {
            name: name.to_owned(),
            expression: expression.to_owned(),
            reason: error.to_string(),
        })?;
        let schedule = Schedule {
            name: name.to_owned(),
            expression: expression.to_owned(),
            cron,
            kind: kind.to_owned(),
            max_attempts,
        };
        schedule.next_after(0).ok_or_else(|| ScheduleError::Never {
            name: name.to_owned(),
        })?;
        Ok(schedule)
    }

    /// The first slot strictly after `micros`.
    pub fn next_after(&self, micros: Micros) -> Option<Micros> {
        let offset = FixedOffset::east_opt(SCHEDULE_OFFSET_S)?;
        let at: DateTime<FixedOffset> = offset.timestamp_micros(micros).single()?;
        let next = self.cron.find_next_occurrence(&at, false).ok()?;
        Some(next.timestamp_micros())
    }

    /// The slots due at `now` from `first` on, oldest first, at most [`CATCH_UP_MAX`] (the
    /// newest), and the slot after them.
    fn due(&self, first: Micros, now: Micros) -> (Vec<Micros>, Option<Micros>) {
        let mut slots = Vec::new();
        let mut slot = Some(first);
        while let Some(at) = slot.filter(|at| *at <= now) {
            slots.push(at);
            if slots.len() > CATCH_UP_MAX {
                slots.remove(0);
            }
            slot = self.next_after(at);
        }
        (slots, slot)
    }
}

/// Enqueues the jobs of due slots.
#[derive(Clone)]
pub struct Scheduler {
    db: Db,
    clock: Arc<dyn Clock>,
    schedules: Arc<Vec<Schedule>>,
}

impl Scheduler {
    pub fn new(db: Db, clock: Arc<dyn Clock>, schedules: Vec<Schedule>) -> Scheduler {
        Scheduler {
            db,
            clock,
            schedules: Arc::new(schedules),
        }
    }

    pub fn schedules(&self) -> &[Schedule] {
        &self.schedules
    }

    /// Looks at every schedule once; answers how many jobs it enqueued.
    pub async fn tick(&self) -> Result<usize, JobError> {
        let mut enqueued = 0;
        for schedule in self.schedules.iter() {
            enqueued += self.tick_one(schedule).await?;
        }
        Ok(enqueued)
    }

    /// Ticks every few seconds until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = interval.tick() => {}
            }
            if let Err(error) = self.tick().await {
                tracing::warn!(%error, "a scheduler tick failed");
            }
        }
    }

    async fn tick_one(&self, schedule: &Schedule) -> Result<usize, JobError> {
        let now = self.clock.now_micros();
        let stored = sqlx::query("SELECT next_run_at FROM job_schedules WHERE name = $1")
            .bind(&schedule.name)
            .fetch_optional(self.db.pool())
            .await?;
        let Some(row) = stored else {
            // A new schedule starts with its next slot: nothing before it is owed.
            let next = self.first_slot(schedule, now)?;
            sqlx::query(
                "INSERT INTO job_schedules (name, next_run_at, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(&schedule.name)
            .bind(next)
            .bind(now)
            .execute(self.db.pool())
            .await?;
            return Ok(0);
        };
        let stored_next: Micros = row.try_get("next_run_at")?;
        if stored_next > now {
            return Ok(0);
        }
        let (slots, after) = schedule.due(stored_next, now);
        let after =
            after.ok_or_else(|| JobError::Internal(format!("schedule {} ends", schedule.name)))?;
        let mut tx = self.db.begin_write().await?;
        let advanced = sqlx::query(
            "UPDATE job_schedules SET next_run_at = $1, updated_at = $2 \
             WHERE name = $3 AND next_run_at = $4",
        )
        .bind(after)
        .bind(now)
        .bind(&schedule.name)
        .bind(stored_next)
        .execute(&mut *tx)
        .await?;
        if advanced.rows_affected() != 1 {
            // Another replica took these slots.
            return Ok(0);
        }
        if slots.first() != Some(&stored_next) {
            tracing::warn!(
                schedule = schedule.name,
                from = stored_next,
                "missed schedule slots were skipped; only the newest are run"
            );
        }
        let mut enqueued = 0;
        for slot in &slots {
            let job = NewJob {
                kind: schedule.kind.clone(),
                payload: serde_json::json!({"schedule": schedule.name, "slot": slot}),
                unique_key: Some(format!("{}@{slot}", schedule.name)),
                run_at: *slot,
                max_attempts: schedule.max_attempts,
            };
            if enqueue(&mut tx, &job, now).await?.is_some() {
                enqueued += 1;
            }
        }
        tx.commit().await?;
        Ok(enqueued)
    }

    fn first_slot(&self, schedule: &Schedule, now: Micros) -> Result<Micros, JobError> {
        schedule
            .next_after(now)
            .ok_or_else(|| JobError::Internal(format!("schedule {} ends", schedule.name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-29T00:00:00+09:00.
    const MIDNIGHT_KST: Micros = 1_795_878_000_000_000;
    const HOUR: Micros = 3_600_000_000;

    #[test]
    fn slots_are_read_in_korea_standard_time() {
        let daily = Schedule::parse("settle", "0 2 * * *", "settlement.run_day", 5).unwrap();
        assert_eq!(
            daily.next_after(MIDNIGHT_KST),
            Some(MIDNIGHT_KST + 2 * HOUR)
        );
        assert_eq!(
            daily.next_after(MIDNIGHT_KST + 2 * HOUR),
            Some(MIDNIGHT_KST + 26 * HOUR),
            "strictly after"
        );
        assert!(Schedule::parse("bad", "every day", "k", 1).is_err());
    }

    #[test]
    fn a_long_outage_runs_only_the_newest_slots() {
        let hourly = Schedule::parse("hourly", "0 * * * *", "k", 1).unwrap();
        let (slots, after) = hourly.due(MIDNIGHT_KST, MIDNIGHT_KST + 2 * HOUR);
        assert_eq!(
            slots,
            vec![MIDNIGHT_KST, MIDNIGHT_KST + HOUR, MIDNIGHT_KST + 2 * HOUR]
        );
        assert_eq!(after, Some(MIDNIGHT_KST + 3 * HOUR));
        let (slots, _) = hourly.due(MIDNIGHT_KST, MIDNIGHT_KST + 100 * HOUR);
        assert_eq!(slots.len(), CATCH_UP_MAX);
        assert_eq!(slots.last(), Some(&(MIDNIGHT_KST + 100 * HOUR)));
    }
}
