//! Every SQL statement of the event stream's outbox, written once for SQLite and PostgreSQL with
//! `$N` placeholders. Nothing here decides what is allowed; conditional updates report whether
//! they applied.

use ledger::Micros;
use sqlx::{Any, Row, Transaction};
use storage::{Db, SqlBuilder};

/// The stored states of a publication.
pub(crate) const PENDING: &str = "pending";
pub(crate) const PUBLISHED: &str = "published";

/// Inserts a pending publication, due at once. `ON CONFLICT DO NOTHING` keeps the caller's
/// transaction usable on PostgreSQL, where a failed insert would abort it.
pub(crate) async fn insert(
    tx: &mut Transaction<'_, Any>,
    event_id: &str,
    event_type: &str,
    body: &str,
    now: Micros,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO event_publications (event_id, event_type, body, state, attempts, \
             next_attempt_at, created_at) \
         VALUES ($1, $2, $3, 'pending', 0, $4, $4) \
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(event_type)
    .bind(body)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A publication claimed by a publisher.
#[derive(Debug, Clone)]
pub(crate) struct ClaimedRow {
    pub event_id: String,
    pub event_type: String,
    pub body: String,
    pub attempts: i64,
    pub created_at: Micros,
}

/// Claims up to `limit` due pending publications, oldest first: each gets the lease token, one
/// more attempt, and is due again only when the lease ends. PostgreSQL skips rows another
/// publisher is claiming; SQLite has one writer. Answers the claimed rows oldest first.
pub(crate) async fn claim_due(
    db: &Db,
    token: &str,
    now: Micros,
    lease_until: Micros,
    limit: i64,
) -> Result<Vec<ClaimedRow>, sqlx::Error> {
    let mut sql = SqlBuilder::new(db.backend(), "UPDATE event_publications SET lease_token = ");
    sql.bind(token.to_owned())
        .push(", attempts = attempts + 1, next_attempt_at = ")
        .bind(lease_until)
        .push(
            " WHERE event_id IN (SELECT event_id FROM event_publications \
               WHERE state = 'pending' AND next_attempt_at <= ",
        )
        .bind(now)
        .push(" ORDER BY created_at, event_id LIMIT ")
        .bind(limit)
        .push(db.backend().for_update_skip_locked())
        .push(") RETURNING event_id, event_type, body, attempts, created_at");
    let (text, args) = sql.build();
    let rows = sqlx::query_with(&text, args).fetch_all(db.pool()).await?;
    let mut claimed = rows
        .iter()
        .map(|row| {
            Ok(ClaimedRow {
                event_id: row.try_get("event_id")?,
                event_type: row.try_get("event_type")?,
                body: row.try_get("body")?,
                attempts: row.try_get("attempts")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    // RETURNING promises no order; the stream should receive the batch in recording order.
    claimed.sort_by(|a, b| (a.created_at, &a.event_id).cmp(&(b.created_at, &b.event_id)));
    Ok(claimed)
}

/// Where JetStream stored a published event.
pub(crate) struct Stored<'a> {
    pub event_id: &'a str,
    pub stream_name: &'a str,
    pub stream_sequence: i64,
}

/// Marks publications published, each only under the claim that sent it, in one transaction.
/// Answers how many were still held by that claim (a publisher whose lease ran out marks
/// nothing; the row's next publisher finds the message already in the stream).
pub(crate) async fn mark_published(
    db: &Db,
    token: &str,
    stored: &[Stored<'_>],
    now: Micros,
) -> Result<u64, sqlx::Error> {
    if stored.is_empty() {
        return Ok(0);
    }
    let mut tx = db.begin_write().await?;
    let mut marked = 0;
    for row in stored {
        let done = sqlx::query(
            "UPDATE event_publications SET state = 'published', lease_token = NULL, \
                 last_error = NULL, published_at = $3, stream_name = $4, stream_sequence = $5 \
             WHERE event_id = $1 AND lease_token = $2 AND state = 'pending'",
        )
        .bind(row.event_id)
        .bind(token)
        .bind(now)
        .bind(row.stream_name)
        .bind(row.stream_sequence)
        .execute(&mut *tx)
        .await?;
        marked += done.rows_affected();
    }
    tx.commit().await?;
    Ok(marked)
}

/// Records a failed attempt under its claim: the row stays pending, due again at `retry_at`.
pub(crate) async fn record_failure(
    db: &Db,
    event_id: &str,
    token: &str,
    retry_at: Micros,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE event_publications SET lease_token = NULL, next_attempt_at = $3, last_error = $4 \
         WHERE event_id = $1 AND lease_token = $2 AND state = 'pending'",
    )
    .bind(event_id)
    .bind(token)
    .bind(retry_at)
    .bind(error)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// How many publications are pending: the backlog the stream has not acknowledged yet.
pub(crate) async fn pending_count(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM event_publications WHERE state = 'pending'")
        .fetch_one(db.pool())
        .await?
        .try_get("n")
}

/// Deletes up to `limit` publications in `state` recorded before `before`; answers how many.
pub(crate) async fn delete_older(
    db: &Db,
    state: &str,
    before: Micros,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM event_publications WHERE event_id IN (SELECT event_id FROM \
             event_publications WHERE state = $1 AND created_at < $2 \
             ORDER BY created_at, event_id LIMIT $3)",
    )
    .bind(state)
    .bind(before)
    .bind(limit)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}
