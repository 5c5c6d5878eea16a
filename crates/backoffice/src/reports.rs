//! The console's read-only reports: the dashboard's figures and the search by any number.
//!
//! These read other modules' tables directly, for reporting only: nothing here writes a table
//! it does not own, and every figure is a plain aggregate an operator can recompute with SQL.

use std::collections::BTreeMap;

use ledger::Micros;
use sqlx::Row;
use storage::Db;

use crate::error::BackofficeError;

/// A day in microseconds; KST has no daylight saving.
const DAY_US: i64 = 86_400_000_000;
/// KST is UTC+9.
const KST_OFFSET_US: i64 = 9 * 3_600_000_000;
/// How many days the volume chart shows.
pub const CHART_DAYS: usize = 14;
/// The most hits one search answers.
pub const SEARCH_HITS_MAX: i64 = 20;

/// The start of the KST day an instant falls in.
pub fn kst_day_start(at: Micros) -> Micros {
    (at + KST_OFFSET_US).div_euclid(DAY_US) * DAY_US - KST_OFFSET_US
}

/// A count and a sum in won.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Volume {
    pub count: i64,
    pub won: i64,
}

/// The balance of every account of one kind in one currency, on the kind's normal side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindTotal {
    pub kind: String,
    pub currency: String,
    pub accounts: i64,
    pub balance: i64,
}

/// One day of the chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayVolume {
    /// The day's start (KST midnight), microseconds.
    pub day: Micros,
    pub payments: Volume,
    pub charges: Volume,
}

/// What the dashboard shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    /// Today (KST): successful payment orders, and succeeded wallet movements by kind.
    pub payments_today: Volume,
    pub wallet_today: BTreeMap<String, Volume>,
    pub totals: Vec<KindTotal>,
    /// Oldest day first, today last.
    pub days: Vec<DayVolume>,
    /// Jobs per state.
    pub dead_jobs: i64,
    /// The latest reconciliation: its date, status and safeguarding status.
    pub reconciliation: Option<(String, String, String)>,
}

/// Builds the dashboard as of `now`.
pub async fn dashboard(db: &Db, now: Micros) -> Result<Dashboard, BackofficeError> {
    let today = kst_day_start(now);
    let first_day = today - DAY_US * (CHART_DAYS as i64 - 1);
    let mut days: Vec<DayVolume> = (0..CHART_DAYS as i64)
        .map(|n| DayVolume {
            day: first_day + n * DAY_US,
            payments: Volume::default(),
            charges: Volume::default(),
        })
        .collect();
    // Summed per KST day by the database, won only: the chart and today's figures are in KRW.
    let orders = sqlx::query(
        "SELECT (created_at - $1) / $2 AS day, COUNT(*) AS n, \
         CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS won FROM payment_orders \
         WHERE status = 'SUCCESS' AND currency = 'KRW' AND created_at >= $1 GROUP BY day",
    )
    .bind(first_day)
    .bind(DAY_US)
    .fetch_all(db.pool())
    .await?;
    for row in &orders {
        if let Some(day) = day_slot(&mut days, row.try_get("day")?) {
            day.payments = volume_of(row)?;
        }
    }
    let mut wallet_today: BTreeMap<String, Volume> = BTreeMap::new();
    let movements = sqlx::query(
        "SELECT kind, (created_at - $1) / $2 AS day, COUNT(*) AS n, \
         CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS won FROM wallet_operations \
         WHERE state = 'succeeded' AND currency = 'KRW' AND created_at >= $1 GROUP BY kind, day",
    )
    .bind(first_day)
    .bind(DAY_US)
    .fetch_all(db.pool())
    .await?;
    for row in &movements {
        let kind: String = row.try_get("kind")?;
        let index: i64 = row.try_get("day")?;
        let volume = volume_of(row)?;
        if kind == "charge" {
            if let Some(day) = day_slot(&mut days, index) {
                day.charges = volume;
            }
        }
        if index == CHART_DAYS as i64 - 1 {
            wallet_today.insert(kind, volume);
        }
    }
    let payments_today = days.last().map(|d| d.payments).unwrap_or_default();
    let totals = sqlx::query(
        "SELECT kind, currency, COUNT(*) AS accounts, \
         CAST(COALESCE(SUM(debits_posted), 0) AS BIGINT) AS debits, \
         CAST(COALESCE(SUM(credits_posted), 0) AS BIGINT) AS credits \
         FROM ledger_accounts GROUP BY kind, currency ORDER BY kind, currency",
    )
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| {
        let kind: String = row.try_get("kind")?;
        let debits: i64 = row.try_get("debits")?;
        let credits: i64 = row.try_get("credits")?;
        // Assets and expenses grow by debits; the other kinds by credits.
        let balance = if matches!(kind.as_str(), "asset" | "expense") {
            debits.saturating_sub(credits)
        } else {
            credits.saturating_sub(debits)
        };
        Ok(KindTotal {
            kind,
            currency: row.try_get("currency")?,
            accounts: row.try_get("accounts")?,
            balance,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let (dead_jobs,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM jobs WHERE state = 'dead'")
        .fetch_one(db.pool())
        .await?;
    let reconciliation = sqlx::query(
        "SELECT reconciliation_date, status, safeguarding FROM reconciliation_runs \
         ORDER BY reconciliation_date DESC LIMIT 1",
    )
    .fetch_optional(db.pool())
    .await?
    .map(|row| {
        Ok::<_, sqlx::Error>((
            row.try_get("reconciliation_date")?,
            row.try_get("status")?,
            row.try_get("safeguarding")?,
        ))
    })
    .transpose()?;
    Ok(Dashboard {
        payments_today,
        wallet_today,
        totals,
        days,
        dead_jobs,
        reconciliation,
    })
}

/// The chart's day at `index` (0 is the first day), if it is one of the chart's.
fn day_slot(days: &mut [DayVolume], index: i64) -> Option<&mut DayVolume> {
    usize::try_from(index).ok().and_then(|i| days.get_mut(i))
}

/// A row's `n` and `won` as a volume.
fn volume_of(row: &sqlx::any::AnyRow) -> Result<Volume, sqlx::Error> {
    Ok(Volume {
        count: row.try_get("n")?,
        won: row.try_get("won")?,
    })
}

/// What a search hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HitKind {
    Payment,
    Member,
    MoneyTransaction,
    Remittance,
    Merchant,
}

/// One thing a number names: its kind, the id the console's pages take, and what matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub kind: HitKind,
    pub id: String,
    pub matched: String,
}

/// Finds what a number names: a payment (`pay_…`, an order `po_…`, the merchant's order
/// number, the checkout id, the PSP's payment key), a money transaction number (`mtx_…`, a
/// wallet movement or a refund), a member (`usr_…`, an email address, a phone number, a payer
/// number of a linked account), a remittance (`rem_…`) or a merchant (`mer_…`). Exact matches
/// only: a console search is for numbers an operator was given.
pub async fn search(db: &Db, query: &str) -> Result<Vec<Hit>, BackofficeError> {
    let q = query.trim();
    if q.is_empty() || q.len() > 256 {
        return Ok(Vec::new());
    }
    let mut hits = Vec::new();
    let lookups: &[(HitKind, &str, &str)] = &[
        (
            HitKind::Payment,
            "SELECT id FROM payments WHERE id = $1",
            "payment id",
        ),
        (
            HitKind::Payment,
            "SELECT payment_id AS id FROM payment_orders WHERE id = $1",
            "payment order id",
        ),
        (
            HitKind::Payment,
            "SELECT payment_id AS id FROM payment_orders WHERE payment_order_id = $1",
            "merchant order number",
        ),
        (
            HitKind::Payment,
            "SELECT id FROM payments WHERE checkout_id = $1",
            "checkout id",
        ),
        (
            HitKind::Payment,
            "SELECT payment_id AS id FROM payment_orders WHERE psp_payment_key = $1",
            "payment key",
        ),
        (
            HitKind::MoneyTransaction,
            "SELECT member_id AS id FROM wallet_operations WHERE id = $1",
            "money transaction number",
        ),
        (
            HitKind::Payment,
            "SELECT o.payment_id AS id FROM refunds r JOIN payment_orders o \
             ON o.id = r.payment_order_id WHERE r.money_tx_id = $1",
            "refund money transaction number",
        ),
        (
            HitKind::Member,
            "SELECT id FROM members WHERE id = $1",
            "member id",
        ),
        (
            HitKind::Member,
            "SELECT id FROM members WHERE email = $1",
            "email",
        ),
        (
            HitKind::Member,
            "SELECT id FROM members WHERE phone = $1",
            "phone",
        ),
        (
            HitKind::Member,
            "SELECT member_id AS id FROM bank_accounts WHERE payer_number = $1",
            "payer number",
        ),
        (
            HitKind::Remittance,
            "SELECT id FROM remittances WHERE id = $1",
            "remittance id",
        ),
        (
            HitKind::Merchant,
            "SELECT id FROM merchants WHERE id = $1",
            "merchant id",
        ),
    ];
    // Addresses and numbers are stored normalised, as members' own rules write them.
    let email = membership::Email::parse(q).ok();
    let phone = membership::Phone::parse(q).ok();
    for (kind, sql, matched) in lookups {
        let value = match *matched {
            "email" => match &email {
                Some(email) => email.as_str(),
                None => continue,
            },
            "phone" => match &phone {
                Some(phone) => phone.as_str(),
                None => continue,
            },
            _ => q,
        };
        let rows = sqlx::query(&format!("{sql} LIMIT {SEARCH_HITS_MAX}"))
            .bind(value)
            .fetch_all(db.pool())
            .await?;
        for row in rows {
            let id: String = row.try_get("id")?;
            let hit = Hit {
                kind: if *kind == HitKind::MoneyTransaction {
                    // A wallet movement is shown on its member's page.
                    HitKind::Member
                } else {
                    *kind
                },
                id,
                matched: (*matched).to_owned(),
            };
            if !hits.contains(&hit) {
                hits.push(hit);
            }
        }
    }
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kst_days_start_at_midnight_seoul_time() {
        // 2026-12-07T14:59:59Z is 23:59:59 KST on the 7th; a second later is the 8th.
        let late = 1_796_655_599_000_000;
        let start = kst_day_start(late);
        assert_eq!(start, 1_796_569_200_000_000); // 2026-12-06T15:00:00Z
        assert_eq!(kst_day_start(late + 1_000_000), start + DAY_US);
        assert_eq!(kst_day_start(start), start);
    }
}
