//! Every SQL statement of remittances, written once for SQLite and PostgreSQL with `$N`
//! placeholders. Nothing here decides what is allowed; updates report whether a row matched.

use ledger::Micros;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use storage::Db;

use crate::domain::{Failure, Record, Remittance, RemittanceId, RemittanceState, Step};
use crate::error::RemittanceError;

const COLUMNS: &str = "id, sender_merchant_id, recipient_merchant_id, amount, memo, state, \
     failure_code, created_at, updated_at, finished_at, alerted_at";

const FAILURE_COLUMNS: &str = "remittance_id, step, job_id, failures, last_code, last_message, \
     first_failed_at, last_failed_at, batch_retries, resolved_at";

fn remittance_row(row: &AnyRow) -> Result<Remittance, RemittanceError> {
    let id: String = row.try_get("id")?;
    let state: String = row.try_get("state")?;
    Ok(Remittance {
        id: RemittanceId::parse(&id)
            .ok_or_else(|| RemittanceError::Internal(format!("bad remittance id {id:?}")))?,
        sender_merchant_id: row.try_get("sender_merchant_id")?,
        recipient_merchant_id: row.try_get("recipient_merchant_id")?,
        amount: row.try_get("amount")?,
        memo: row.try_get("memo")?,
        state: RemittanceState::parse(&state)
            .ok_or_else(|| RemittanceError::Internal(format!("{id} has state {state:?}")))?,
        failure_code: row.try_get("failure_code")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        finished_at: row.try_get("finished_at")?,
        alerted_at: row.try_get("alerted_at")?,
    })
}

fn failure_row(row: &AnyRow) -> Result<Failure, RemittanceError> {
    let step: String = row.try_get("step")?;
    Ok(Failure {
        remittance_id: row.try_get("remittance_id")?,
        step: Step::parse(&step)
            .ok_or_else(|| RemittanceError::Internal(format!("bad failure step {step:?}")))?,
        job_id: row.try_get("job_id")?,
        failures: row.try_get("failures")?,
        last_code: row.try_get("last_code")?,
        last_message: row.try_get("last_message")?,
        first_failed_at: row.try_get("first_failed_at")?,
        last_failed_at: row.try_get("last_failed_at")?,
        batch_retries: row.try_get("batch_retries")?,
        resolved_at: row.try_get("resolved_at")?,
    })
}

/// Inserts a remittance unless its request key was used before; says whether it did.
pub(crate) async fn insert(
    tx: &mut Transaction<'static, Any>,
    remittance: &Remittance,
    request_scope: &str,
    request_key: Option<&str>,
    request_digest: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO remittances (id, sender_merchant_id, recipient_merchant_id, amount, \
             currency, memo, state, request_scope, request_key, request_digest, created_at, \
             updated_at) \
         VALUES ($1, $2, $3, $4, 'KRW', $5, $6, $7, $8, $9, $10, $10) \
         ON CONFLICT (request_scope, request_key) DO NOTHING",
    )
    .bind(remittance.id.as_str())
    .bind(&remittance.sender_merchant_id)
    .bind(&remittance.recipient_merchant_id)
    .bind(remittance.amount)
    .bind(remittance.memo.as_deref())
    .bind(remittance.state.as_str())
    .bind(request_scope)
    .bind(request_key)
    .bind(request_digest)
    .bind(remittance.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn by_id(db: &Db, id: &str) -> Result<Option<Remittance>, RemittanceError> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM remittances WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(remittance_row)
        .transpose()
}

/// The remittance a caller's Idempotency-Key made, with the digest of the request.
pub(crate) async fn by_request(
    db: &Db,
    scope: &str,
    key: &str,
) -> Result<Option<(Remittance, String)>, RemittanceError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS}, request_digest FROM remittances \
         WHERE request_scope = $1 AND request_key = $2"
    ))
    .bind(scope)
    .bind(key)
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| Ok((remittance_row(&row)?, row.try_get("request_digest")?)))
        .transpose()
}

/// Remittances oldest first after the id `after`, in `state` and of `merchant` (as sender or
/// recipient) when given.
pub(crate) async fn list(
    db: &Db,
    state: Option<RemittanceState>,
    merchant: Option<&str>,
    after: &str,
    limit: i64,
) -> Result<Vec<Remittance>, RemittanceError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM remittances WHERE id > $1 \
           AND ($2 = '' OR state = $2) \
           AND ($3 = '' OR sender_merchant_id = $3 OR recipient_merchant_id = $3) \
         ORDER BY id LIMIT $4"
    ))
    .bind(after)
    .bind(state.map(RemittanceState::as_str).unwrap_or_default())
    .bind(merchant.unwrap_or_default())
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(remittance_row).collect()
}

/// Moves a remittance from `from` to `to` (final states stamp `finished_at`); says whether it
/// was still in `from`.
pub(crate) async fn transition(
    tx: &mut Transaction<'static, Any>,
    id: &RemittanceId,
    from: RemittanceState,
    to: RemittanceState,
    failure_code: Option<&str>,
    now: Micros,
) -> Result<bool, sqlx::Error> {
    let finished = to.is_final().then_some(now);
    let done = sqlx::query(
        "UPDATE remittances SET state = $1, failure_code = COALESCE($2, failure_code), \
             updated_at = $3, finished_at = $4 \
         WHERE id = $5 AND state = $6",
    )
    .bind(to.as_str())
    .bind(failure_code)
    .bind(now)
    .bind(finished)
    .bind(id.as_str())
    .bind(from.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records that a remittance reached `state` (once per state).
pub(crate) async fn insert_record(
    tx: &mut Transaction<'static, Any>,
    id: &RemittanceId,
    state: RemittanceState,
    reference: Option<&str>,
    at: Micros,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO remittance_records (remittance_id, state, reference, at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (remittance_id, state) DO NOTHING",
    )
    .bind(id.as_str())
    .bind(state.as_str())
    .bind(reference)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The states a remittance reached, in order.
pub(crate) async fn records(db: &Db, id: &str) -> Result<Vec<Record>, RemittanceError> {
    let rows = sqlx::query(
        "SELECT state, reference, at FROM remittance_records WHERE remittance_id = $1 \
         ORDER BY at, state",
    )
    .bind(id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let state: String = row.try_get("state")?;
            Ok(Record {
                state: RemittanceState::parse(&state).ok_or_else(|| {
                    RemittanceError::Internal(format!("{id} has a record {state:?}"))
                })?,
                reference: row.try_get("reference")?,
                at: row.try_get("at")?,
            })
        })
        .collect()
}

/// A step's failed attempt: the first makes the failure record, later ones count on it (and
/// reopen it if the step had succeeded meanwhile, which cannot happen: a step succeeds once).
pub(crate) struct FailedAttempt<'a> {
    pub remittance_id: &'a str,
    pub step: Step,
    pub job_id: &'a str,
    pub code: &'a str,
    pub message: &'a str,
    pub now: Micros,
}

pub(crate) async fn record_failure(
    db: &Db,
    attempt: &FailedAttempt<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO remittance_failures (remittance_id, step, job_id, failures, last_code, \
             last_message, first_failed_at, last_failed_at, batch_retries) \
         VALUES ($1, $2, $3, 1, $4, $5, $6, $6, 0) \
         ON CONFLICT (remittance_id, step) DO UPDATE SET \
             failures = remittance_failures.failures + 1, job_id = excluded.job_id, \
             last_code = excluded.last_code, last_message = excluded.last_message, \
             last_failed_at = excluded.last_failed_at",
    )
    .bind(attempt.remittance_id)
    .bind(attempt.step.as_str())
    .bind(attempt.job_id)
    .bind(attempt.code)
    .bind(attempt.message)
    .bind(attempt.now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Marks a step's failure record resolved, in the transaction where the step succeeded.
pub(crate) async fn resolve_failure(
    tx: &mut Transaction<'static, Any>,
    id: &RemittanceId,
    step: Step,
    now: Micros,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE remittance_failures SET resolved_at = $1 \
         WHERE remittance_id = $2 AND step = $3 AND resolved_at IS NULL",
    )
    .bind(now)
    .bind(id.as_str())
    .bind(step.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A remittance's failure records, in step order of occurrence.
pub(crate) async fn failures(db: &Db, id: &str) -> Result<Vec<Failure>, RemittanceError> {
    let rows = sqlx::query(&format!(
        "SELECT {FAILURE_COLUMNS} FROM remittance_failures WHERE remittance_id = $1 \
         ORDER BY first_failed_at"
    ))
    .bind(id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(failure_row).collect()
}

/// Unresolved failures whose job is a dead letter and that the batch may still retry,
/// oldest first.
pub(crate) async fn retryable_failures(
    db: &Db,
    batch_retries_max: i64,
    limit: i64,
) -> Result<Vec<Failure>, RemittanceError> {
    let columns = FAILURE_COLUMNS
        .split(", ")
        .map(|column| format!("f.{column}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = sqlx::query(&format!(
        "SELECT {columns} FROM remittance_failures f JOIN jobs j ON j.id = f.job_id \
         WHERE f.resolved_at IS NULL AND j.state = 'dead' AND f.batch_retries < $1 \
         ORDER BY f.last_failed_at LIMIT $2"
    ))
    .bind(batch_retries_max)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(failure_row).collect()
}

/// Counts one retry of the batch on a failure record.
pub(crate) async fn count_batch_retry(
    db: &Db,
    remittance_id: &str,
    step: Step,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE remittance_failures SET batch_retries = batch_retries + 1 \
         WHERE remittance_id = $1 AND step = $2",
    )
    .bind(remittance_id)
    .bind(step.as_str())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// How many remittances requested before `before` are not finished.
pub(crate) async fn count_overdue(db: &Db, before: Micros) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM remittances WHERE finished_at IS NULL AND created_at <= $1",
    )
    .bind(before)
    .fetch_one(db.pool())
    .await
}

/// Unfinished remittances requested before `before` that no alert was raised for yet.
pub(crate) async fn overdue_unalerted(
    db: &Db,
    before: Micros,
    limit: i64,
) -> Result<Vec<Remittance>, RemittanceError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM remittances \
         WHERE finished_at IS NULL AND created_at <= $1 AND alerted_at IS NULL \
         ORDER BY created_at LIMIT $2"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(remittance_row).collect()
}

pub(crate) async fn mark_alerted(
    db: &Db,
    id: &RemittanceId,
    now: Micros,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE remittances SET alerted_at = $1 WHERE id = $2 AND alerted_at IS NULL")
        .bind(now)
        .bind(id.as_str())
        .execute(db.pool())
        .await?;
    Ok(())
}
