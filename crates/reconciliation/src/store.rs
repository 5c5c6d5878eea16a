//! Every SQL statement of reconciliation, each written once for both databases.

use ledger::Micros;
use settlement::SettlementDate;
use sqlx::any::AnyRow;
use sqlx::Row;
use storage::Db;

use crate::domain::{Mismatch, MismatchKind, Safeguarding, SafeguardingFigures, Source};
use crate::error::ReconciliationError;

/// A recorded run of one day: its counts and safeguarding figures. Its mismatches are read
/// apart ([`mismatches`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub date: SettlementDate,
    pub cutoff_at: Micros,
    /// No mismatch and safeguarding `ok`.
    pub matched: bool,
    pub bank_lines: i64,
    pub our_bank_lines: i64,
    pub bank_matched: i64,
    pub psp_lines: i64,
    pub our_psp_lines: i64,
    pub psp_matched: i64,
    pub mismatches: i64,
    pub safeguarding: SafeguardingFigures,
    pub runs: i64,
    pub first_run_at: Micros,
    pub run_at: Micros,
}

const RUN_COLUMNS: &str = "reconciliation_date, cutoff_at, status, bank_lines, our_bank_lines, \
     bank_matched, psp_lines, our_psp_lines, psp_matched, mismatches, member_money, \
     ledger_master, bank_balance, own_funds, members_part, safeguarding, runs, first_run_at, \
     run_at";

const MISMATCH_COLUMNS: &str = "source, kind, match_key, our_reference, our_amount, \
     their_amount, happened_at, detail";

fn corrupt(what: &str, value: &str) -> ReconciliationError {
    ReconciliationError::Internal(format!("stored {what} {value:?} is not one we write"))
}

fn run_from_row(row: &AnyRow) -> Result<Run, ReconciliationError> {
    let date: String = row.try_get("reconciliation_date")?;
    let status: String = row.try_get("status")?;
    let safeguarding: String = row.try_get("safeguarding")?;
    Ok(Run {
        date: SettlementDate::parse(&date).map_err(|_| corrupt("date", &date))?,
        cutoff_at: row.try_get("cutoff_at")?,
        matched: match status.as_str() {
            "matched" => true,
            "mismatched" => false,
            _ => return Err(corrupt("status", &status)),
        },
        bank_lines: row.try_get("bank_lines")?,
        our_bank_lines: row.try_get("our_bank_lines")?,
        bank_matched: row.try_get("bank_matched")?,
        psp_lines: row.try_get("psp_lines")?,
        our_psp_lines: row.try_get("our_psp_lines")?,
        psp_matched: row.try_get("psp_matched")?,
        mismatches: row.try_get("mismatches")?,
        safeguarding: SafeguardingFigures {
            member_money: row.try_get("member_money")?,
            ledger_master: row.try_get("ledger_master")?,
            bank_balance: row.try_get("bank_balance")?,
            own_funds: row.try_get("own_funds")?,
            members_part: row.try_get("members_part")?,
            status: Safeguarding::parse(&safeguarding)
                .ok_or_else(|| corrupt("safeguarding", &safeguarding))?,
        },
        runs: row.try_get("runs")?,
        first_run_at: row.try_get("first_run_at")?,
        run_at: row.try_get("run_at")?,
    })
}

fn mismatch_from_row(row: &AnyRow) -> Result<Mismatch, ReconciliationError> {
    let source: String = row.try_get("source")?;
    let kind: String = row.try_get("kind")?;
    Ok(Mismatch {
        source: Source::parse(&source).ok_or_else(|| corrupt("source", &source))?,
        kind: MismatchKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
        key: row.try_get("match_key")?,
        our_reference: row.try_get("our_reference")?,
        our_amount: row.try_get("our_amount")?,
        their_amount: row.try_get("their_amount")?,
        at: row.try_get("happened_at")?,
        detail: row.try_get("detail")?,
    })
}

/// Replaces a day's results with `run` and its `mismatches`, in one transaction: readers see
/// the earlier run or this one, never a mix. Keeps the day's first run time and counts runs.
pub(crate) async fn replace(
    db: &Db,
    run: &Run,
    mismatches: &[Mismatch],
) -> Result<Run, ReconciliationError> {
    let date = run.date.to_string();
    let mut tx = db.pool().begin().await?;
    let earlier: Option<(i64, i64)> = sqlx::query_as(
        "SELECT runs, first_run_at FROM reconciliation_runs WHERE reconciliation_date = $1",
    )
    .bind(&date)
    .fetch_optional(&mut *tx)
    .await?;
    let (runs, first_run_at) = match earlier {
        Some((runs, first)) => (runs + 1, first),
        None => (1, run.run_at),
    };
    sqlx::query("DELETE FROM reconciliation_mismatches WHERE reconciliation_date = $1")
        .bind(&date)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM reconciliation_runs WHERE reconciliation_date = $1")
        .bind(&date)
        .execute(&mut *tx)
        .await?;
    let figures = &run.safeguarding;
    sqlx::query(&format!(
        "INSERT INTO reconciliation_runs ({RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, \
         $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
    ))
    .bind(&date)
    .bind(run.cutoff_at)
    .bind(if run.matched { "matched" } else { "mismatched" })
    .bind(run.bank_lines)
    .bind(run.our_bank_lines)
    .bind(run.bank_matched)
    .bind(run.psp_lines)
    .bind(run.our_psp_lines)
    .bind(run.psp_matched)
    .bind(run.mismatches)
    .bind(figures.member_money)
    .bind(figures.ledger_master)
    .bind(figures.bank_balance)
    .bind(figures.own_funds)
    .bind(figures.members_part)
    .bind(figures.status.as_str())
    .bind(runs)
    .bind(first_run_at)
    .bind(run.run_at)
    .execute(&mut *tx)
    .await?;
    for (seq, m) in mismatches.iter().enumerate() {
        sqlx::query(&format!(
            "INSERT INTO reconciliation_mismatches (reconciliation_date, seq, {MISMATCH_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&date)
        .bind(i64::try_from(seq).map_err(|_| ReconciliationError::Internal("seq".into()))?)
        .bind(m.source.as_str())
        .bind(m.kind.as_str())
        .bind(&m.key)
        .bind(&m.our_reference)
        .bind(m.our_amount)
        .bind(m.their_amount)
        .bind(m.at)
        .bind(&m.detail)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Run {
        runs,
        first_run_at,
        ..run.clone()
    })
}

/// The recorded run of a day.
pub(crate) async fn run(db: &Db, date: SettlementDate) -> Result<Option<Run>, ReconciliationError> {
    sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM reconciliation_runs WHERE reconciliation_date = $1"
    ))
    .bind(date.to_string())
    .fetch_optional(db.pool())
    .await?
    .as_ref()
    .map(run_from_row)
    .transpose()
}

/// Runs newest day first, before `before` (exclusive), at most `limit`.
pub(crate) async fn runs_before(
    db: &Db,
    before: Option<SettlementDate>,
    limit: i64,
) -> Result<Vec<Run>, ReconciliationError> {
    // Dates are zero-padded, so their text order is their order.
    let before = before.map_or_else(|| "9999-12-31".to_owned(), |d| d.to_string());
    let rows = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM reconciliation_runs WHERE reconciliation_date < $1 \
         ORDER BY reconciliation_date DESC LIMIT $2"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(run_from_row).collect()
}

/// A day's mismatches in the order the run listed them.
pub(crate) async fn mismatches(
    db: &Db,
    date: SettlementDate,
) -> Result<Vec<Mismatch>, ReconciliationError> {
    let rows = sqlx::query(&format!(
        "SELECT {MISMATCH_COLUMNS} FROM reconciliation_mismatches \
         WHERE reconciliation_date = $1 ORDER BY seq"
    ))
    .bind(date.to_string())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(mismatch_from_row).collect()
}
