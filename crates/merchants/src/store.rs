//! Every SQL statement of merchants, written once for SQLite and PostgreSQL with `$N`
//! placeholders. Nothing here decides what is allowed; updates report whether a row matched.

use ledger::Micros;
use sqlx::any::AnyRow;
use sqlx::Row;
use storage::Db;

/// A stored merchant, as read. The settlement account number is still sealed.
#[derive(Debug, Clone)]
pub(crate) struct MerchantRow {
    pub id: String,
    pub name: String,
    pub status: String,
    pub fee_bps: i64,
    pub settlement: SettlementRow,
    pub request_mac: Option<String>,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// A settlement account as stored: the number sealed, its last four digits in the clear.
#[derive(Debug, Clone)]
pub(crate) struct SettlementRow {
    pub bank_code: String,
    pub key_id: String,
    pub number_sealed: String,
    pub last4: String,
    pub holder_name: String,
}

/// A merchant to insert, with the request that onboarded it, if it named one.
pub(crate) struct NewMerchantRow<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub fee_bps: i64,
    pub settlement: &'a SettlementRow,
    pub request: Option<(&'a str, &'a str, &'a str)>,
    pub now: Micros,
}

const COLUMNS: &str = "id, name, status, fee_bps, settlement_bank_code, settlement_key_id, \
     settlement_number_sealed, settlement_last4, settlement_holder_name, request_mac, \
     created_at, updated_at";

fn merchant_row(row: &AnyRow) -> Result<MerchantRow, sqlx::Error> {
    Ok(MerchantRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        status: row.try_get("status")?,
        fee_bps: row.try_get("fee_bps")?,
        settlement: SettlementRow {
            bank_code: row.try_get("settlement_bank_code")?,
            key_id: row.try_get("settlement_key_id")?,
            number_sealed: row.try_get("settlement_number_sealed")?,
            last4: row.try_get("settlement_last4")?,
            holder_name: row.try_get("settlement_holder_name")?,
        },
        request_mac: row.try_get("request_mac")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Stores a new, active merchant. Fails on the unique (scope, key) when a concurrent request
/// with the same Idempotency-Key stored its merchant first.
pub(crate) async fn insert_merchant(db: &Db, new: &NewMerchantRow<'_>) -> Result<(), sqlx::Error> {
    let (scope, key, mac) = match new.request {
        Some((scope, key, mac)) => (Some(scope), Some(key), Some(mac)),
        None => (None, None, None),
    };
    sqlx::query(
        "INSERT INTO merchants (id, name, status, fee_bps, settlement_bank_code, \
             settlement_key_id, settlement_number_sealed, settlement_last4, \
             settlement_holder_name, request_scope, request_key, request_mac, created_at, \
             updated_at) \
         VALUES ($1, $2, 'active', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
    )
    .bind(new.id)
    .bind(new.name)
    .bind(new.fee_bps)
    .bind(new.settlement.bank_code.as_str())
    .bind(new.settlement.key_id.as_str())
    .bind(new.settlement.number_sealed.as_str())
    .bind(new.settlement.last4.as_str())
    .bind(new.settlement.holder_name.as_str())
    .bind(scope)
    .bind(key)
    .bind(mac)
    .bind(new.now)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub(crate) async fn merchant_by_id(db: &Db, id: &str) -> Result<Option<MerchantRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM merchants WHERE id = $1");
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(merchant_row)
        .transpose()
}

/// The merchant onboarded under this caller's Idempotency-Key, if any.
pub(crate) async fn merchant_by_request(
    db: &Db,
    scope: &str,
    key: &str,
) -> Result<Option<MerchantRow>, sqlx::Error> {
    let sql =
        format!("SELECT {COLUMNS} FROM merchants WHERE request_scope = $1 AND request_key = $2");
    sqlx::query(&sql)
        .bind(scope)
        .bind(key)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(merchant_row)
        .transpose()
}

/// Merchants in id (onboarding) order after the cursor, `limit` at most.
pub(crate) async fn merchants_after(
    db: &Db,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<MerchantRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM merchants WHERE id > $1 ORDER BY id LIMIT $2");
    let rows = sqlx::query(&sql)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(merchant_row).collect()
}

/// Changes the given fields in one statement, so that concurrent changes of different fields
/// never undo each other. Returns whether the merchant exists.
pub(crate) async fn update_merchant(
    db: &Db,
    id: &str,
    name: Option<&str>,
    fee_bps: Option<i64>,
    status: Option<&str>,
    now: Micros,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE merchants SET name = COALESCE($1, name), fee_bps = COALESCE($2, fee_bps), \
             status = COALESCE($3, status), updated_at = $4 \
         WHERE id = $5",
    )
    .bind(name)
    .bind(fee_bps)
    .bind(status)
    .bind(now)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces the settlement account. Returns whether the merchant exists.
pub(crate) async fn set_settlement(
    db: &Db,
    id: &str,
    settlement: &SettlementRow,
    now: Micros,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE merchants SET settlement_bank_code = $1, settlement_key_id = $2, \
             settlement_number_sealed = $3, settlement_last4 = $4, settlement_holder_name = $5, \
             updated_at = $6 \
         WHERE id = $7",
    )
    .bind(settlement.bank_code.as_str())
    .bind(settlement.key_id.as_str())
    .bind(settlement.number_sealed.as_str())
    .bind(settlement.last4.as_str())
    .bind(settlement.holder_name.as_str())
    .bind(now)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}
