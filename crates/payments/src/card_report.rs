//! Our side of the card processor's transaction report: every card approval and cancellation
//! we recorded, by the time we sent it, for reconciliation.
//!
//! An approval is an order whose card part the PSP approved (its PSP order id is the order's
//! `payment_order_id`), dated by the last time its charge was sent; a cancellation is a refund
//! whose card part the PSP cancelled, dated by when the refund recorded it. Both are read in
//! id order, a page at a time.

use ledger::Micros;
use sqlx::any::AnyRow;
use sqlx::Row;

use storage::Db;

use crate::error::PaymentError;

/// The most rows one page of card activity holds.
pub const CARD_ACTIVITY_PAGE_MAX: i64 = 1_000;

/// Whether the PSP took money (an approval) or gave it back (a cancellation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CardActivityKind {
    Approval,
    Cancellation,
}

impl CardActivityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CardActivityKind::Approval => "approval",
            CardActivityKind::Cancellation => "cancellation",
        }
    }
}

/// One card movement we recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardActivity {
    pub kind: CardActivityKind,
    /// The order id the PSP knows the payment by.
    pub psp_order_id: String,
    /// Ours: the order (`po_…`) of an approval, the refund (`rfd_…`) of a cancellation.
    pub reference: String,
    /// Won; always positive.
    pub amount: i64,
    pub at: Micros,
}

/// The card approvals we recorded in `[from, to)`, in order id order after `after`, at most
/// `limit` (1 to [`CARD_ACTIVITY_PAGE_MAX`]).
pub async fn card_approvals_between(
    db: &Db,
    from: Micros,
    to: Micros,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<CardActivity>, PaymentError> {
    let sql = "SELECT id AS reference, payment_order_id, card_amount AS amount, \
               card_last_sent_at AS at FROM payment_orders \
               WHERE card_state = 'approved' AND card_amount > 0 AND card_last_sent_at >= $1 \
               AND card_last_sent_at < $2 AND id > $3 ORDER BY id LIMIT $4";
    activities(db, sql, from, to, after, limit, CardActivityKind::Approval).await
}

/// The card cancellations we recorded in `[from, to)`, in refund id order after `after`, at
/// most `limit` (1 to [`CARD_ACTIVITY_PAGE_MAX`]).
pub async fn card_cancellations_between(
    db: &Db,
    from: Micros,
    to: Micros,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<CardActivity>, PaymentError> {
    let sql = "SELECT r.id AS reference, o.payment_order_id, r.card_amount AS amount, \
               r.updated_at AS at FROM refunds r JOIN payment_orders o ON o.id = r.payment_order_id \
               WHERE r.card_state = 'cancelled' AND r.card_amount > 0 AND r.updated_at >= $1 \
               AND r.updated_at < $2 AND r.id > $3 ORDER BY r.id LIMIT $4";
    activities(
        db,
        sql,
        from,
        to,
        after,
        limit,
        CardActivityKind::Cancellation,
    )
    .await
}

/// Runs one of the two queries above (columns `reference, payment_order_id, amount, at`;
/// parameters the span, the cursor and the page size) and reads its rows as movements of
/// `kind`.
async fn activities(
    db: &Db,
    sql: &str,
    from: Micros,
    to: Micros,
    after: Option<&str>,
    limit: i64,
    kind: CardActivityKind,
) -> Result<Vec<CardActivity>, PaymentError> {
    let rows: Vec<AnyRow> = sqlx::query(sql)
        .bind(from)
        .bind(to)
        .bind(after.unwrap_or_default())
        .bind(limit.clamp(1, CARD_ACTIVITY_PAGE_MAX))
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|row| {
            Ok(CardActivity {
                kind,
                psp_order_id: row.try_get("payment_order_id")?,
                reference: row.try_get("reference")?,
                amount: row.try_get("amount")?,
                at: row.try_get("at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(PaymentError::from)
}
