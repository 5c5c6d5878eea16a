//! Every SQL statement of webhooks, written once for SQLite and PostgreSQL with `$N`
//! placeholders. Nothing here decides what is allowed; conditional updates report whether they
//! applied, and the service decides what that means.

use ledger::Micros;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row, Transaction};
use storage::{Backend, Db, SqlBuilder};

use crate::id::EventId;

/// A new event row.
pub(crate) struct NewEventRow<'a> {
    pub id: &'a str,
    pub merchant_id: &'a str,
    pub event_type: &'a str,
    pub resource_type: &'a str,
    pub resource_id: &'a str,
    pub resource_version: i64,
    pub payload: &'a str,
    pub created_at: Micros,
}

/// A stored event.
#[derive(Debug, Clone)]
pub(crate) struct EventRow {
    pub id: String,
    pub merchant_id: String,
    pub event_type: String,
    pub resource_type: String,
    pub resource_id: String,
    pub resource_version: i64,
    pub payload: String,
    pub created_at: Micros,
}

const EVENT_COLUMNS: &str = "id, merchant_id, event_type, resource_type, resource_id, \
     resource_version, payload, created_at";

fn event_row(row: &AnyRow) -> Result<EventRow, sqlx::Error> {
    Ok(EventRow {
        id: row.try_get("id")?,
        merchant_id: row.try_get("merchant_id")?,
        event_type: row.try_get("event_type")?,
        resource_type: row.try_get("resource_type")?,
        resource_id: row.try_get("resource_id")?,
        resource_version: row.try_get("resource_version")?,
        payload: row.try_get("payload")?,
        created_at: row.try_get("created_at")?,
    })
}

/// A stored endpoint, its secret still sealed.
#[derive(Debug, Clone)]
pub(crate) struct EndpointRow {
    pub id: String,
    pub merchant_id: String,
    pub url: String,
    pub event_types: String,
    pub status: String,
    pub created_at: Micros,
    pub deleted_at: Option<Micros>,
}

const ENDPOINT_COLUMNS: &str = "id, merchant_id, url, event_types, status, created_at, deleted_at";

fn endpoint_row(row: &AnyRow) -> Result<EndpointRow, sqlx::Error> {
    Ok(EndpointRow {
        id: row.try_get("id")?,
        merchant_id: row.try_get("merchant_id")?,
        url: row.try_get("url")?,
        event_types: row.try_get("event_types")?,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
        deleted_at: row.try_get("deleted_at")?,
    })
}

/// A new endpoint row, its secret sealed.
pub(crate) struct NewEndpointRow<'a> {
    pub id: &'a str,
    pub merchant_id: &'a str,
    pub url: &'a str,
    pub event_types: &'a str,
    pub secret_key_id: &'a str,
    pub secret_sealed: &'a str,
    pub now: Micros,
}

/// A stored delivery.
#[derive(Debug, Clone)]
pub(crate) struct DeliveryRow {
    pub id: String,
    pub event_id: String,
    pub endpoint_id: String,
    pub merchant_id: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: Micros,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub delivered_at: Option<Micros>,
}

const DELIVERY_COLUMNS: &str = "id, event_id, endpoint_id, merchant_id, state, attempts, \
     next_attempt_at, last_status, last_error, created_at, updated_at, delivered_at";

fn delivery_row(row: &AnyRow) -> Result<DeliveryRow, sqlx::Error> {
    Ok(DeliveryRow {
        id: row.try_get("id")?,
        event_id: row.try_get("event_id")?,
        endpoint_id: row.try_get("endpoint_id")?,
        merchant_id: row.try_get("merchant_id")?,
        state: row.try_get("state")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_status: row.try_get("last_status")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        delivered_at: row.try_get("delivered_at")?,
    })
}

/// A delivery claimed by a worker, with what sending it needs.
#[derive(Debug, Clone)]
pub(crate) struct ClaimedRow {
    pub id: String,
    pub attempts: i64,
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    pub endpoint_id: String,
    pub endpoint_status: String,
    pub url: String,
    pub secret_key_id: String,
    pub secret_sealed: String,
}

/// Inserts an event unless one with the same merchant, type, resource and version exists; says whether
/// it was inserted. `ON CONFLICT DO NOTHING` keeps the caller's transaction usable on
/// PostgreSQL, where a failed insert would abort it.
pub(crate) async fn insert_event(
    tx: &mut Transaction<'_, Any>,
    event: &NewEventRow<'_>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO webhook_events (id, merchant_id, event_type, resource_type, resource_id, \
             resource_version, payload, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (merchant_id, resource_type, resource_id, resource_version, event_type) DO NOTHING",
    )
    .bind(event.id)
    .bind(event.merchant_id)
    .bind(event.event_type)
    .bind(event.resource_type)
    .bind(event.resource_id)
    .bind(event.resource_version)
    .bind(event.payload)
    .bind(event.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The event stored for a merchant under a type, resource and version.
pub(crate) async fn event_by_key(
    tx: &mut Transaction<'_, Any>,
    merchant_id: &str,
    resource_type: &str,
    resource_id: &str,
    resource_version: i64,
    event_type: &str,
) -> Result<Option<EventRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM webhook_events \
         WHERE resource_type = $1 AND resource_id = $2 AND resource_version = $3 \
             AND event_type = $4 AND merchant_id = $5"
    );
    sqlx::query(&sql)
        .bind(resource_type)
        .bind(resource_id)
        .bind(resource_version)
        .bind(event_type)
        .bind(merchant_id)
        .fetch_optional(&mut **tx)
        .await?
        .as_ref()
        .map(event_row)
        .transpose()
}

/// A merchant's events, newest first, after the cursor (an event id), at most `limit`.
pub(crate) async fn events_page(
    db: &Db,
    merchant_id: &str,
    after: Option<&EventId>,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    let mut sql = SqlBuilder::new(
        db.backend(),
        &format!("SELECT {EVENT_COLUMNS} FROM webhook_events WHERE merchant_id = "),
    );
    sql.bind(merchant_id.to_owned());
    if let Some(after) = after {
        sql.push(" AND id < ").bind(after.as_str().to_owned());
    }
    sql.push(" ORDER BY id DESC LIMIT ").bind(limit);
    let (text, args) = sql.build();
    sqlx::query_with(&text, args)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(event_row)
        .collect()
}

/// The deliveries of these events, by event and id.
pub(crate) async fn deliveries_of_events(
    db: &Db,
    event_ids: &[String],
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    if event_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = SqlBuilder::new(
        db.backend(),
        &format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE event_id IN "),
    );
    sql.bind_list(event_ids.iter().cloned())
        .push(" ORDER BY event_id, id");
    let (text, args) = sql.build();
    sqlx::query_with(&text, args)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(delivery_row)
        .collect()
}

/// A merchant's active endpoints, oldest first.
pub(crate) async fn live_endpoints(
    conn: &mut AnyConnection,
    merchant_id: &str,
) -> Result<Vec<EndpointRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
         WHERE merchant_id = $1 AND status = 'active' ORDER BY id"
    );
    sqlx::query(&sql)
        .bind(merchant_id)
        .fetch_all(conn)
        .await?
        .iter()
        .map(endpoint_row)
        .collect()
}

/// One endpoint, in any state.
pub(crate) async fn endpoint(db: &Db, id: &str) -> Result<Option<EndpointRow>, sqlx::Error> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1");
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(endpoint_row)
        .transpose()
}

/// Takes one of the merchant's endpoint slots if fewer than `max` are taken; says whether it
/// did. One conditional update, so concurrent registrations cannot pass the limit together.
pub(crate) async fn take_endpoint_slot(
    tx: &mut Transaction<'static, Any>,
    merchant_id: &str,
    max: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_endpoint_counts (merchant_id, live) VALUES ($1, 0) \
         ON CONFLICT (merchant_id) DO NOTHING",
    )
    .bind(merchant_id)
    .execute(&mut **tx)
    .await?;
    let done = sqlx::query(
        "UPDATE webhook_endpoint_counts SET live = live + 1 WHERE merchant_id = $1 AND live < $2",
    )
    .bind(merchant_id)
    .bind(max)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives back the slot of a deleted endpoint.
async fn release_endpoint_slot(
    tx: &mut Transaction<'static, Any>,
    merchant_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_endpoint_counts SET live = live - 1 WHERE merchant_id = $1 AND live > 0",
    )
    .bind(merchant_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stores a new active endpoint.
pub(crate) async fn insert_endpoint(
    tx: &mut Transaction<'static, Any>,
    endpoint: &NewEndpointRow<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, merchant_id, url, event_types, secret_key_id, \
             secret_sealed, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'active', $7)",
    )
    .bind(endpoint.id)
    .bind(endpoint.merchant_id)
    .bind(endpoint.url)
    .bind(endpoint.event_types)
    .bind(endpoint.secret_key_id)
    .bind(endpoint.secret_sealed)
    .bind(endpoint.now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes an active endpoint: marks it deleted, gives its slot back and cancels its pending
/// and dead deliveries, in one transaction. Says whether it was active.
pub(crate) async fn delete_endpoint(
    db: &Db,
    id: &str,
    merchant_id: &str,
    now: Micros,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET status = 'deleted', deleted_at = $2 \
         WHERE id = $1 AND status = 'active'",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    release_endpoint_slot(&mut tx, merchant_id).await?;
    sqlx::query(
        "UPDATE webhook_deliveries SET state = 'cancelled', lease_token = NULL, updated_at = $2 \
         WHERE endpoint_id = $1 AND state IN ('pending', 'dead')",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Inserts pending deliveries of an event, due now: one statement for all its endpoints.
pub(crate) async fn insert_deliveries(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    event_id: &EventId,
    merchant_id: &str,
    deliveries: &[(String, String)],
    now: Micros,
) -> Result<(), sqlx::Error> {
    let mut sql = SqlBuilder::new(
        backend,
        "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, merchant_id, state, \
             attempts, next_attempt_at, created_at, updated_at) VALUES ",
    );
    for (i, (id, endpoint_id)) in deliveries.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push("(")
            .bind(id.clone())
            .push(", ")
            .bind(event_id.as_str().to_owned())
            .push(", ")
            .bind(endpoint_id.clone())
            .push(", ")
            .bind(merchant_id.to_owned())
            .push(", 'pending', 0, ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(")");
    }
    let (text, args) = sql.build();
    sqlx::query_with(&text, args).execute(&mut **tx).await?;
    Ok(())
}

/// Ends as dead the pending deliveries whose last allowed attempt was lost with its worker (its
/// lease ran out without an outcome); returns how many.
pub(crate) async fn bury_lost_last_attempts(
    db: &Db,
    attempts_max: i64,
    now: Micros,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET state = 'dead', lease_token = NULL, \
             last_error = 'attempt_lost', updated_at = $2 \
         WHERE state = 'pending' AND next_attempt_at <= $2 AND attempts >= $1",
    )
    .bind(attempts_max)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}

/// Claims up to `limit` due deliveries for one worker: each gets the worker's lease token, one
/// more attempt, and is due again only when the lease ends, so no other worker sends it
/// meanwhile. PostgreSQL skips rows another worker is claiming (`FOR UPDATE SKIP LOCKED`);
/// SQLite has one writer. Returns the claimed ids.
pub(crate) async fn claim_due(
    db: &Db,
    token: &str,
    now: Micros,
    lease_until: Micros,
    attempts_max: i64,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let sql = format!(
        "UPDATE webhook_deliveries \
         SET lease_token = $1, attempts = attempts + 1, next_attempt_at = $2, updated_at = $3 \
         WHERE id IN (SELECT id FROM webhook_deliveries \
             WHERE state = 'pending' AND next_attempt_at <= $3 AND attempts < $4 \
             ORDER BY next_attempt_at, id LIMIT $5{}) \
         RETURNING id",
        db.backend().for_update_skip_locked()
    );
    sqlx::query(&sql)
        .bind(token)
        .bind(lease_until)
        .bind(now)
        .bind(attempts_max)
        .bind(limit)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| row.try_get("id"))
        .collect()
}

/// What sending the claimed deliveries needs: the event's body and the endpoint's address and
/// sealed secret.
pub(crate) async fn claimed(
    db: &Db,
    token: &str,
    ids: &[String],
) -> Result<Vec<ClaimedRow>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = SqlBuilder::new(
        db.backend(),
        "SELECT d.id, d.attempts, e.id AS event_id, e.event_type, e.payload, \
             p.id AS endpoint_id, p.status AS endpoint_status, p.url, p.secret_key_id, \
             p.secret_sealed \
         FROM webhook_deliveries d \
         JOIN webhook_events e ON e.id = d.event_id \
         JOIN webhook_endpoints p ON p.id = d.endpoint_id \
         WHERE d.lease_token = ",
    );
    sql.bind(token.to_owned())
        .push(" AND d.id IN ")
        .bind_list(ids.iter().cloned())
        .push(" ORDER BY d.next_attempt_at, d.id");
    let (text, args) = sql.build();
    sqlx::query_with(&text, args)
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|row| {
            Ok(ClaimedRow {
                id: row.try_get("id")?,
                attempts: row.try_get("attempts")?,
                event_id: row.try_get("event_id")?,
                event_type: row.try_get("event_type")?,
                payload: row.try_get("payload")?,
                endpoint_id: row.try_get("endpoint_id")?,
                endpoint_status: row.try_get("endpoint_status")?,
                url: row.try_get("url")?,
                secret_key_id: row.try_get("secret_key_id")?,
                secret_sealed: row.try_get("secret_sealed")?,
            })
        })
        .collect()
}

/// The outcome of one attempt, as stored.
pub(crate) struct Finished<'a> {
    pub state: &'a str,
    pub next_attempt_at: Micros,
    pub last_status: Option<i64>,
    pub last_error: Option<&'a str>,
    pub delivered_at: Option<Micros>,
    pub now: Micros,
}

/// Records an attempt's outcome, only under the claim that made it: a worker whose lease ran
/// out (and whose delivery another worker claimed since) changes nothing. Says whether it
/// applied.
pub(crate) async fn finish_attempt(
    db: &Db,
    id: &str,
    token: &str,
    finished: &Finished<'_>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries \
         SET state = $3, next_attempt_at = $4, lease_token = NULL, last_status = $5, \
             last_error = $6, delivered_at = $7, updated_at = $8 \
         WHERE id = $1 AND lease_token = $2 AND state = 'pending'",
    )
    .bind(id)
    .bind(token)
    .bind(finished.state)
    .bind(finished.next_attempt_at)
    .bind(finished.last_status)
    .bind(finished.last_error)
    .bind(finished.delivered_at)
    .bind(finished.now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One delivery.
pub(crate) async fn delivery(db: &Db, id: &str) -> Result<Option<DeliveryRow>, sqlx::Error> {
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1");
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(delivery_row)
        .transpose()
}

/// Puts a dead delivery back in the queue with a fresh schedule, due now. Says whether it was
/// dead.
pub(crate) async fn requeue_dead(db: &Db, id: &str, now: Micros) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries \
         SET state = 'pending', attempts = 0, next_attempt_at = $2, lease_token = NULL, \
             updated_at = $2 \
         WHERE id = $1 AND state = 'dead'",
    )
    .bind(id)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}
