//! Every SQL statement of the job queue, written once for both databases.

use ledger::Micros;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use storage::{Db, SqlBuilder};

use crate::queue::{Job, JobAttempt, JobId, JobState, NewJob};

const JOB_COLUMNS: &str = "id, kind, payload, unique_key, state, attempts, max_attempts, runs, \
     run_at, last_error, created_at, updated_at, finished_at";

/// Inserts a job unless one of the same kind and unique key exists; says whether it did.
pub(crate) async fn insert(
    tx: &mut Transaction<'static, Any>,
    id: &JobId,
    job: &NewJob,
    now: Micros,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO jobs (id, kind, payload, unique_key, state, attempts, max_attempts, runs, \
             run_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'queued', 0, $5, 0, $6, $7, $7) \
         ON CONFLICT (kind, unique_key) DO NOTHING",
    )
    .bind(id.as_str())
    .bind(&job.kind)
    .bind(job.payload.to_string())
    .bind(job.unique_key.as_deref())
    .bind(job.max_attempts)
    .bind(job.run_at)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Ends as dead the jobs whose last allowed attempt was lost with its worker (the lease ran out
/// without an outcome); returns how many.
pub(crate) async fn bury_lost_last_attempts(db: &Db, now: Micros) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'dead', lease_token = NULL, last_error = 'attempt_lost', \
             updated_at = $1, finished_at = $1 \
         WHERE state = 'running' AND run_at <= $1 AND attempts >= max_attempts",
    )
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}

/// A claim: which worker, under which token, until when, of which kinds, how many.
pub(crate) struct Claim<'a> {
    pub token: &'a str,
    pub now: Micros,
    pub lease_until: Micros,
    pub kinds: &'a [String],
    pub limit: i64,
}

/// Claims due jobs of the given kinds: each gets the lease token, one more attempt, and is due
/// again only when the lease ends. PostgreSQL skips rows another worker is claiming; SQLite
/// has one writer. Answers the claimed jobs as they now stand.
pub(crate) async fn claim_due(db: &Db, claim: &Claim<'_>) -> Result<Vec<Job>, sqlx::Error> {
    if claim.kinds.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = SqlBuilder::new(
        db.backend(),
        "UPDATE jobs SET state = 'running', lease_token = ",
    );
    sql.bind(claim.token.to_owned())
        .push(", attempts = attempts + 1, runs = runs + 1, run_at = ")
        .bind(claim.lease_until)
        .push(", updated_at = ")
        .bind(claim.now)
        .push(
            " WHERE id IN (SELECT id FROM jobs \
               WHERE state IN ('queued', 'running') AND attempts < max_attempts AND run_at <= ",
        )
        .bind(claim.now)
        .push(" AND kind IN ")
        .bind_list(claim.kinds.iter().cloned())
        .push(" ORDER BY run_at, id LIMIT ")
        .bind(claim.limit)
        .push(db.backend().for_update_skip_locked())
        .push(") RETURNING ")
        .push(JOB_COLUMNS);
    let (text, args) = sql.build();
    let rows = sqlx::query_with(&text, args).fetch_all(db.pool()).await?;
    rows.iter().map(job_row).collect()
}

/// Records that a worker started an attempt.
pub(crate) async fn start_attempt(
    db: &Db,
    job: &Job,
    worker: &str,
    now: Micros,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO job_attempts (job_id, attempt, worker, started_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (job_id, attempt) DO NOTHING",
    )
    .bind(job.id.as_str())
    .bind(job.runs)
    .bind(worker)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The end of an attempt, as stored on the job and its attempt row.
pub(crate) struct Outcome<'a> {
    pub state: JobState,
    /// `done`, `retry` or `failed`.
    pub outcome: &'static str,
    pub run_at: Micros,
    pub error: Option<&'a str>,
    pub now: Micros,
}

/// Records an attempt's outcome, only under the claim that made it: a worker whose lease ran
/// out (and whose job another worker claimed since) changes nothing. Says whether it applied.
pub(crate) async fn finish_attempt(
    db: &Db,
    job: &Job,
    token: &str,
    outcome: &Outcome<'_>,
) -> Result<bool, sqlx::Error> {
    let finished_at =
        matches!(outcome.state, JobState::Done | JobState::Dead).then_some(outcome.now);
    let mut tx = db.begin_write().await?;
    let updated = sqlx::query(
        "UPDATE jobs SET state = $3, run_at = $4, lease_token = NULL, last_error = $5, \
             updated_at = $6, finished_at = $7 \
         WHERE id = $1 AND lease_token = $2 AND state = 'running'",
    )
    .bind(job.id.as_str())
    .bind(token)
    .bind(outcome.state.as_str())
    .bind(outcome.run_at)
    .bind(outcome.error)
    .bind(outcome.now)
    .bind(finished_at)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE job_attempts SET finished_at = $3, outcome = $4, error = $5 \
         WHERE job_id = $1 AND attempt = $2",
    )
    .bind(job.id.as_str())
    .bind(job.runs)
    .bind(outcome.now)
    .bind(outcome.outcome)
    .bind(outcome.error)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

pub(crate) async fn job(db: &Db, id: &str) -> Result<Option<Job>, sqlx::Error> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(job_row)
        .transpose()
}

pub(crate) async fn attempts(db: &Db, id: &JobId) -> Result<Vec<JobAttempt>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT attempt, worker, started_at, finished_at, outcome, error FROM job_attempts \
         WHERE job_id = $1 ORDER BY attempt",
    )
    .bind(id.as_str())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(JobAttempt {
                attempt: row.try_get("attempt")?,
                worker: row.try_get("worker")?,
                started_at: row.try_get("started_at")?,
                finished_at: row.try_get("finished_at")?,
                outcome: row.try_get("outcome")?,
                error: row.try_get("error")?,
            })
        })
        .collect()
}

/// What a listing selects.
pub(crate) struct ListFilter<'a> {
    pub state: Option<JobState>,
    pub kind: Option<&'a str>,
    pub after: Option<&'a JobId>,
    pub limit: i64,
}

pub(crate) async fn list(db: &Db, filter: &ListFilter<'_>) -> Result<Vec<Job>, sqlx::Error> {
    let mut sql = SqlBuilder::new(
        db.backend(),
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id > "),
    );
    sql.bind(filter.after.map_or("", JobId::as_str).to_owned());
    if let Some(state) = filter.state {
        sql.push(" AND state = ").bind(state.as_str().to_owned());
    }
    if let Some(kind) = filter.kind {
        sql.push(" AND kind = ").bind(kind.to_owned());
    }
    sql.push(" ORDER BY id LIMIT ").bind(filter.limit);
    let (text, args) = sql.build();
    let rows = sqlx::query_with(&text, args).fetch_all(db.pool()).await?;
    rows.iter().map(job_row).collect()
}

pub(crate) async fn counts(db: &Db) -> Result<Vec<(JobState, i64)>, sqlx::Error> {
    let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state ORDER BY state")
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .filter_map(|row| {
            let state: String = match row.try_get("state") {
                Ok(state) => state,
                Err(error) => return Some(Err(error)),
            };
            let n = row.try_get::<i64, _>("n");
            JobState::parse(&state).map(|state| n.map(|n| (state, n)))
        })
        .collect()
}

/// Puts a dead job back in the queue, due now, with a fresh set of attempts. Says whether it
/// was dead.
pub(crate) async fn requeue_dead(db: Db, id: JobId, now: Micros) -> Result<bool, sqlx::Error> {
    change_dead(
        &db,
        "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $2, lease_token = NULL, \
             updated_at = $2, finished_at = NULL \
         WHERE id = $1 AND state = 'dead'",
        &id,
        now,
    )
    .await
}

/// Gives a dead job up. Says whether it was dead.
pub(crate) async fn discard_dead(db: Db, id: JobId, now: Micros) -> Result<bool, sqlx::Error> {
    change_dead(
        &db,
        "UPDATE jobs SET state = 'discarded', updated_at = $2, finished_at = $2 \
         WHERE id = $1 AND state = 'dead'",
        &id,
        now,
    )
    .await
}

/// Runs an operator's change of a dead job (`$1` the id, `$2` now); says whether it applied.
async fn change_dead(db: &Db, sql: &str, id: &JobId, now: Micros) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(sql)
        .bind(id.as_str())
        .bind(now)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

fn job_row(row: &AnyRow) -> Result<Job, sqlx::Error> {
    let state: String = row.try_get("state")?;
    let payload: String = row.try_get("payload")?;
    let decode = |what: &str| sqlx::Error::Decode(format!("stored job {what}").into());
    Ok(Job {
        id: JobId::from_stored(row.try_get("id")?),
        kind: row.try_get("kind")?,
        payload: serde_json::from_str(&payload).map_err(|_| decode("payload"))?,
        unique_key: row.try_get("unique_key")?,
        state: JobState::parse(&state).ok_or_else(|| decode("state"))?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        runs: row.try_get("runs")?,
        run_at: row.try_get("run_at")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}
