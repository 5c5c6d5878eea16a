//! Every SQL statement of escrows, written once for both databases. The rows are opened by
//! the executor (`store::open_escrow`, with the order's success); here they are read and moved
//! through their steps, each write conditional on the version the step was decided on.

use ledger::Micros;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use storage::Db;

use crate::domain::{EscrowState, PaymentOrderKey, Split};
use crate::escrow_rules::{Escrow, EscrowActor, EscrowClosing};
use crate::PaymentError;

const ESCROW_COLUMNS: &str = "payment_order_id, state, held_at, cancel_until, shipped_at, \
     tracking_number, delivered_at, confirm_at, disputed_at, disputed_by, closing, closed_at, \
     closed_by, release_amount, cancel_reason, version, updated_at";

/// The escrow of an order, if it has one.
pub(crate) async fn escrow(
    db: &Db,
    order: &PaymentOrderKey,
) -> Result<Option<Escrow>, PaymentError> {
    let row = sqlx::query(&format!(
        "SELECT {ESCROW_COLUMNS} FROM escrows WHERE payment_order_id = $1"
    ))
    .bind(order.as_str())
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(escrow_from_row).transpose()
}

/// Writes an escrow's next state if nobody changed it since `next.version` was read; the
/// version goes up by one. `false` when another writer got there first.
pub(crate) async fn save_escrow(
    tx: &mut Transaction<'static, Any>,
    next: &Escrow,
    now: Micros,
) -> Result<bool, PaymentError> {
    let updated = sqlx::query(
        "UPDATE escrows SET state = $1, cancel_until = $2, shipped_at = $3, tracking_number = $4, \
         delivered_at = $5, confirm_at = $6, disputed_at = $7, disputed_by = $8, closing = $9, \
         closed_at = $10, closed_by = $11, release_amount = $12, cancel_reason = $13, \
         version = version + 1, updated_at = $14 WHERE payment_order_id = $15 AND version = $16",
    )
    .bind(next.state.as_str())
    .bind(next.cancel_until)
    .bind(next.shipped_at)
    .bind(next.tracking_number.as_deref())
    .bind(next.delivered_at)
    .bind(next.confirm_at)
    .bind(next.disputed_at)
    .bind(next.disputed_by.map(EscrowActor::as_str))
    .bind(next.closing.map(EscrowClosing::as_str))
    .bind(next.closed_at)
    .bind(next.closed_by.map(EscrowActor::as_str))
    .bind(next.release_amount)
    .bind(next.cancel_reason.as_deref())
    .bind(now)
    .bind(next.payment_order_id.as_str())
    .bind(next.version)
    .execute(&mut **tx)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Takes the order's row and raises its version, for a release claim or a cancellation's end:
/// on PostgreSQL the update locks the row until the transaction commits (SQLite's write
/// transaction already excludes every other writer), and a refund reserved from an earlier
/// read of the order fails its version check, starts over and sees the escrow as this
/// transaction leaves it. Answers the order's amount and what refunds have taken.
pub(crate) async fn take_order(
    tx: &mut Transaction<'static, Any>,
    order: &PaymentOrderKey,
) -> Result<(i64, Split), PaymentError> {
    let row = sqlx::query(
        "UPDATE payment_orders SET version = version + 1 WHERE id = $1 \
         RETURNING amount, points_refunded, money_refunded, card_refunded",
    )
    .bind(order.as_str())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| PaymentError::Internal(format!("order {order} vanished")))?;
    let refunded = Split {
        points: row.try_get("points_refunded")?,
        money: row.try_get("money_refunded")?,
        card: row.try_get("card_refunded")?,
    };
    Ok((row.try_get("amount")?, refunded))
}

/// Whether a refund of the order is still being made.
pub(crate) async fn refund_pending(
    tx: &mut Transaction<'static, Any>,
    order: &PaymentOrderKey,
) -> Result<bool, PaymentError> {
    let row = sqlx::query(
        "SELECT 1 FROM refunds WHERE payment_order_id = $1 AND status = 'pending' LIMIT 1",
    )
    .bind(order.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.is_some())
}

/// What a cancellation needs to know of an order's refunds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CancelRefunds {
    /// The key of the escrow's own refund still pending, if one is.
    pub own_pending: Option<String>,
    /// Whether a refund someone else asked for is pending.
    pub others_pending: bool,
    /// How many refunds the escrow has made of the order, whatever their end.
    pub own_made: i64,
}

/// The escrow's refunds of an order (those under `scope`) and whether others are pending.
pub(crate) async fn cancel_refunds(
    db: &Db,
    order: &PaymentOrderKey,
    scope: &str,
) -> Result<CancelRefunds, PaymentError> {
    let row = sqlx::query(
        "SELECT COUNT(CASE WHEN request_scope = $2 THEN 1 END) AS own_made, \
         MIN(CASE WHEN request_scope = $2 AND status = 'pending' THEN request_key END) \
         AS own_pending, \
         COUNT(CASE WHEN request_scope <> $2 AND status = 'pending' THEN 1 END) \
         AS others_pending \
         FROM refunds WHERE payment_order_id = $1",
    )
    .bind(order.as_str())
    .bind(scope)
    .fetch_one(db.pool())
    .await?;
    Ok(CancelRefunds {
        own_pending: row.try_get("own_pending")?,
        others_pending: row.try_get::<i64, _>("others_pending")? > 0,
        own_made: row.try_get("own_made")?,
    })
}

/// Delivered escrows whose automatic confirmation has come, earliest first: no dispute open,
/// not claimed, and no refund of the order in progress (those wait for the refund to end).
pub(crate) async fn due_escrows(
    db: &Db,
    now: Micros,
    limit: i64,
) -> Result<Vec<PaymentOrderKey>, PaymentError> {
    let rows = sqlx::query(
        "SELECT payment_order_id FROM escrows \
         WHERE state = 'delivered' AND confirm_at <= $1 AND disputed_at IS NULL \
           AND closing IS NULL \
           AND NOT EXISTS (SELECT 1 FROM refunds r \
                           WHERE r.payment_order_id = escrows.payment_order_id \
                             AND r.status = 'pending') \
         ORDER BY confirm_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(order_key).collect()
}

/// Claimed escrows untouched since `before`, least recently touched first: a crash (or an
/// unfinished refund) left them between their money and their state.
pub(crate) async fn unfinished_closings(
    db: &Db,
    before: Micros,
    limit: i64,
) -> Result<Vec<PaymentOrderKey>, PaymentError> {
    let rows = sqlx::query(
        "SELECT payment_order_id FROM escrows \
         WHERE closing IS NOT NULL AND updated_at <= $1 ORDER BY updated_at LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(order_key).collect()
}

/// Marks a claimed escrow as just looked at, so the due pass takes the others first.
pub(crate) async fn touch_closing(
    db: &Db,
    order: &PaymentOrderKey,
    now: Micros,
) -> Result<(), PaymentError> {
    sqlx::query(
        "UPDATE escrows SET updated_at = $1 WHERE payment_order_id = $2 AND closing IS NOT NULL",
    )
    .bind(now)
    .bind(order.as_str())
    .execute(db.pool())
    .await?;
    Ok(())
}

fn order_key(row: &AnyRow) -> Result<PaymentOrderKey, PaymentError> {
    Ok(PaymentOrderKey::from_stored(
        row.try_get("payment_order_id")?,
    ))
}

fn escrow_from_row(row: &AnyRow) -> Result<Escrow, PaymentError> {
    let state: String = row.try_get("state")?;
    let actor = |column: &str| -> Result<Option<EscrowActor>, PaymentError> {
        let value: Option<String> = row.try_get(column)?;
        value.as_deref().map(EscrowActor::from_db).transpose()
    };
    let closing: Option<String> = row.try_get("closing")?;
    Ok(Escrow {
        payment_order_id: order_key(row)?,
        state: EscrowState::from_db(&state)?,
        held_at: row.try_get("held_at")?,
        cancel_until: row.try_get("cancel_until")?,
        shipped_at: row.try_get("shipped_at")?,
        tracking_number: row.try_get("tracking_number")?,
        delivered_at: row.try_get("delivered_at")?,
        confirm_at: row.try_get("confirm_at")?,
        disputed_at: row.try_get("disputed_at")?,
        disputed_by: actor("disputed_by")?,
        closing: closing.as_deref().map(EscrowClosing::from_db).transpose()?,
        closed_at: row.try_get("closed_at")?,
        closed_by: actor("closed_by")?,
        release_amount: row.try_get("release_amount")?,
        cancel_reason: row.try_get("cancel_reason")?,
        version: row.try_get("version")?,
        updated_at: row.try_get("updated_at")?,
    })
}
