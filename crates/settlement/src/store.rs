//! Every SQL statement of settlement, each written once for both databases.

use ledger::Micros;
use money::Currency;
use sqlx::any::AnyRow;
use sqlx::Row;
use storage::Db;

use crate::domain::{
    Run, RunState, RunTotals, Settlement, SettlementDate, SettlementId, SettlementState,
};
use crate::error::SettlementError;

const SETTLEMENT_COLUMNS: &str = "id, merchant_id, merchant_name, settlement_date, currency, \
     window_from, cutoff_at, sales, fee_bps, gross, fee, net, state, bank_transfer_id, \
     failure_code, created_at, updated_at";

const RUN_COLUMNS: &str = "settlement_date, cutoff_at, state, calculated_at, settlements, paid, \
     paying, failed, carried_over, gross, fee, net_paid, started_at, completed_at, updated_at";

/// Takes the settlement lease for `holder` until `until` if it is free or expired at `now`.
pub(crate) async fn take_lease(
    db: &Db,
    holder: &str,
    now: Micros,
    until: Micros,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE settlement_lease SET holder = $1, lease_until = $2 \
         WHERE id = 1 AND (holder IS NULL OR lease_until <= $3)",
    )
    .bind(holder)
    .bind(until)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Extends the lease while `holder` still has it.
pub(crate) async fn renew_lease(db: &Db, holder: &str, until: Micros) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE settlement_lease SET lease_until = $1 WHERE id = 1 AND holder = $2")
            .bind(until)
            .bind(holder)
            .execute(db.pool())
            .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn release_lease(db: &Db, holder: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE settlement_lease SET holder = NULL, lease_until = 0 WHERE id = 1 AND holder = $1",
    )
    .bind(holder)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Records the run of `date` unless it exists.
pub(crate) async fn insert_run(
    db: &Db,
    date: SettlementDate,
    cutoff_at: Micros,
    now: Micros,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO settlement_runs (settlement_date, cutoff_at, state, started_at, updated_at) \
         VALUES ($1, $2, 'running', $3, $3) ON CONFLICT (settlement_date) DO NOTHING",
    )
    .bind(date.to_string())
    .bind(cutoff_at)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub(crate) async fn run(db: &Db, date: SettlementDate) -> Result<Option<Run>, SettlementError> {
    let row = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM settlement_runs WHERE settlement_date = $1"
    ))
    .bind(date.to_string())
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| run_from_row(&row)).transpose()
}

/// Runs newest date first, before `before` (exclusive; dates are zero-padded, so their text
/// order is their order), at most `limit`.
pub(crate) async fn runs_before(
    db: &Db,
    before: Option<SettlementDate>,
    limit: i64,
) -> Result<Vec<Run>, SettlementError> {
    let before = before.map_or_else(|| "9999-12-31".to_owned(), |d| d.to_string());
    let rows = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM settlement_runs WHERE settlement_date < $1 \
         ORDER BY settlement_date DESC LIMIT $2"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(run_from_row).collect()
}

/// The latest date run after `date`, if any.
pub(crate) async fn later_run(
    db: &Db,
    date: SettlementDate,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT settlement_date FROM settlement_runs WHERE settlement_date > $1 \
         ORDER BY settlement_date DESC LIMIT 1",
    )
    .bind(date.to_string())
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| row.try_get(0)).transpose()
}

pub(crate) async fn mark_calculated(
    db: &Db,
    date: SettlementDate,
    now: Micros,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE settlement_runs SET calculated_at = $1, updated_at = $1 \
         WHERE settlement_date = $2 AND calculated_at IS NULL",
    )
    .bind(now)
    .bind(date.to_string())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Writes a run's totals and state; `completed_at` is set the first time it completes.
pub(crate) async fn update_run(
    db: &Db,
    date: SettlementDate,
    totals: &RunTotals,
    state: RunState,
    now: Micros,
) -> Result<(), sqlx::Error> {
    let completed_at = (state == RunState::Completed).then_some(now);
    sqlx::query(
        "UPDATE settlement_runs SET state = $1, settlements = $2, paid = $3, paying = $4, \
         failed = $5, carried_over = $6, gross = $7, fee = $8, net_paid = $9, \
         completed_at = COALESCE(completed_at, $10), updated_at = $11 WHERE settlement_date = $12",
    )
    .bind(state.as_str())
    .bind(totals.settlements)
    .bind(totals.paid)
    .bind(totals.paying)
    .bind(totals.failed)
    .bind(totals.carried_over)
    .bind(totals.gross)
    .bind(totals.fee)
    .bind(totals.net_paid)
    .bind(completed_at)
    .bind(now)
    .bind(date.to_string())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Stores a settlement unless the merchant has one for the date; returns the stored one.
pub(crate) async fn insert_settlement(
    db: &Db,
    s: &Settlement,
) -> Result<Settlement, SettlementError> {
    sqlx::query(&format!(
        "INSERT INTO settlements ({SETTLEMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
         $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         ON CONFLICT (merchant_id, settlement_date) DO NOTHING"
    ))
    .bind(s.id.as_str())
    .bind(&s.merchant_id)
    .bind(&s.merchant_name)
    .bind(s.date.to_string())
    .bind(s.currency.code())
    .bind(s.window_from)
    .bind(s.cutoff_at)
    .bind(s.sales)
    .bind(i64::from(s.fee_bps))
    .bind(s.gross)
    .bind(s.fee)
    .bind(s.net)
    .bind(s.state.as_str())
    .bind(s.bank_transfer_id.as_deref())
    .bind(s.failure_code.as_deref())
    .bind(s.created_at)
    .bind(s.updated_at)
    .execute(db.pool())
    .await?;
    of_merchant_on(db, &s.merchant_id, s.date)
        .await?
        .ok_or_else(|| SettlementError::Internal(format!("settlement {} vanished", s.id)))
}

pub(crate) async fn of_merchant_on(
    db: &Db,
    merchant: &str,
    date: SettlementDate,
) -> Result<Option<Settlement>, SettlementError> {
    let row = sqlx::query(&format!(
        "SELECT {SETTLEMENT_COLUMNS} FROM settlements WHERE merchant_id = $1 AND settlement_date = $2"
    ))
    .bind(merchant)
    .bind(date.to_string())
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| settlement_from_row(&row)).transpose()
}

pub(crate) async fn by_id(db: &Db, id: &str) -> Result<Option<Settlement>, SettlementError> {
    let row = sqlx::query(&format!(
        "SELECT {SETTLEMENT_COLUMNS} FROM settlements WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| settlement_from_row(&row)).transpose()
}

/// A merchant's settlements before `date`, oldest first. Bounded by the days settled, one per
/// day (a few thousand over years).
pub(crate) async fn of_merchant_before(
    db: &Db,
    merchant: &str,
    date: SettlementDate,
) -> Result<Vec<Settlement>, SettlementError> {
    let rows = sqlx::query(&format!(
        "SELECT {SETTLEMENT_COLUMNS} FROM settlements WHERE merchant_id = $1 \
         AND settlement_date < $2 ORDER BY settlement_date"
    ))
    .bind(merchant)
    .bind(date.to_string())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(settlement_from_row).collect()
}

/// A merchant's settlements, newest date first, before the cursor date, at most `limit`.
pub(crate) async fn of_merchant_page(
    db: &Db,
    merchant: &str,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Settlement>, SettlementError> {
    let rows = sqlx::query(&format!(
        "SELECT {SETTLEMENT_COLUMNS} FROM settlements WHERE merchant_id = $1 \
         AND settlement_date < $2 ORDER BY settlement_date DESC LIMIT $3"
    ))
    .bind(merchant)
    .bind(before.unwrap_or("9999-12-31"))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(settlement_from_row).collect()
}

/// A day's settlements in merchant id order, after the cursor merchant id, at most `limit`.
pub(crate) async fn of_date(
    db: &Db,
    date: SettlementDate,
    after_merchant: &str,
    limit: i64,
) -> Result<Vec<Settlement>, SettlementError> {
    let rows = sqlx::query(&format!(
        "SELECT {SETTLEMENT_COLUMNS} FROM settlements WHERE settlement_date = $1 \
         AND merchant_id > $2 ORDER BY merchant_id LIMIT $3"
    ))
    .bind(date.to_string())
    .bind(after_merchant)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(settlement_from_row).collect()
}

/// Settlements whose payout is unfinished (any date), oldest first, at most `limit`.
pub(crate) async fn unfinished(db: &Db, limit: i64) -> Result<Vec<Settlement>, SettlementError> {
    let rows = sqlx::query(&format!(
        "SELECT {SETTLEMENT_COLUMNS} FROM settlements WHERE state IN ('calculated', 'paying') \
         ORDER BY id LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(settlement_from_row).collect()
}

/// The counts and sums of a day's settlements.
pub(crate) async fn totals(db: &Db, date: SettlementDate) -> Result<RunTotals, sqlx::Error> {
    let row = sqlx::query(
        "SELECT CAST(COUNT(*) AS BIGINT) AS settlements, \
         CAST(COALESCE(SUM(CASE WHEN state = 'paid' THEN 1 ELSE 0 END), 0) AS BIGINT) AS paid, \
         CAST(COALESCE(SUM(CASE WHEN state IN ('calculated', 'paying') THEN 1 ELSE 0 END), 0) AS BIGINT) AS paying, \
         CAST(COALESCE(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT) AS failed, \
         CAST(COALESCE(SUM(CASE WHEN state = 'carried_over' THEN 1 ELSE 0 END), 0) AS BIGINT) AS carried_over, \
         CAST(COALESCE(SUM(CASE WHEN state <> 'carried_over' THEN gross ELSE 0 END), 0) AS BIGINT) AS gross, \
         CAST(COALESCE(SUM(CASE WHEN state <> 'carried_over' THEN fee ELSE 0 END), 0) AS BIGINT) AS fee, \
         CAST(COALESCE(SUM(CASE WHEN state = 'paid' THEN net ELSE 0 END), 0) AS BIGINT) AS net_paid \
         FROM settlements WHERE settlement_date = $1",
    )
    .bind(date.to_string())
    .fetch_one(db.pool())
    .await?;
    Ok(RunTotals {
        settlements: row.try_get("settlements")?,
        paid: row.try_get("paid")?,
        paying: row.try_get("paying")?,
        failed: row.try_get("failed")?,
        carried_over: row.try_get("carried_over")?,
        gross: row.try_get("gross")?,
        fee: row.try_get("fee")?,
        net_paid: row.try_get("net_paid")?,
    })
}

/// Moves a settlement from `from` to `to` (with the transfer id and failure code given);
/// answers whether this call moved it. A settlement elsewhere keeps its state.
pub(crate) async fn transition(
    db: &Db,
    id: &SettlementId,
    from: SettlementState,
    to: SettlementState,
    bank_transfer_id: Option<&str>,
    failure_code: Option<&str>,
    now: Micros,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE settlements SET state = $1, bank_transfer_id = COALESCE($2, bank_transfer_id), \
         failure_code = $3, updated_at = $4 WHERE id = $5 AND state = $6",
    )
    .bind(to.as_str())
    .bind(bank_transfer_id)
    .bind(failure_code)
    .bind(now)
    .bind(id.as_str())
    .bind(from.as_str())
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

fn settlement_from_row(row: &AnyRow) -> Result<Settlement, SettlementError> {
    let bad =
        |what: &str| SettlementError::Internal(format!("a stored settlement has a bad {what}"));
    let id: String = row.try_get("id")?;
    let date: String = row.try_get("settlement_date")?;
    let currency: String = row.try_get("currency")?;
    let state: String = row.try_get("state")?;
    let fee_bps: i64 = row.try_get("fee_bps")?;
    Ok(Settlement {
        id: SettlementId::parse(&id).ok_or_else(|| bad("id"))?,
        merchant_id: row.try_get("merchant_id")?,
        merchant_name: row.try_get("merchant_name")?,
        date: SettlementDate::parse(&date).map_err(|_| bad("date"))?,
        currency: Currency::parse(&currency).map_err(|_| bad("currency"))?,
        window_from: row.try_get("window_from")?,
        cutoff_at: row.try_get("cutoff_at")?,
        sales: row.try_get("sales")?,
        fee_bps: u32::try_from(fee_bps).map_err(|_| bad("fee rate"))?,
        gross: row.try_get("gross")?,
        fee: row.try_get("fee")?,
        net: row.try_get("net")?,
        state: SettlementState::from_db(&state).ok_or_else(|| bad("state"))?,
        bank_transfer_id: row.try_get("bank_transfer_id")?,
        failure_code: row.try_get("failure_code")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn run_from_row(row: &AnyRow) -> Result<Run, SettlementError> {
    let bad = |what: &str| SettlementError::Internal(format!("a stored run has a bad {what}"));
    let date: String = row.try_get("settlement_date")?;
    let state: String = row.try_get("state")?;
    Ok(Run {
        date: SettlementDate::parse(&date).map_err(|_| bad("date"))?,
        cutoff_at: row.try_get("cutoff_at")?,
        state: RunState::from_db(&state).ok_or_else(|| bad("state"))?,
        calculated_at: row.try_get("calculated_at")?,
        totals: RunTotals {
            settlements: row.try_get("settlements")?,
            paid: row.try_get("paid")?,
            paying: row.try_get("paying")?,
            failed: row.try_get("failed")?,
            carried_over: row.try_get("carried_over")?,
            gross: row.try_get("gross")?,
            fee: row.try_get("fee")?,
            net_paid: row.try_get("net_paid")?,
        },
        started_at: row.try_get("started_at")?,
        completed_at: row.try_get("completed_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
