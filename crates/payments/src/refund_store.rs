//! Every SQL statement of refunds, written once for both databases.

use ledger::Micros;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use storage::{Backend, Db};
use wallet::MoneyTxId;

use crate::domain::{EscrowState, OrderStatus, PaymentOrderKey, RefundId, Split};
use crate::refund::{RefundCardState, RefundStatus};
use crate::sellers::SellerAccount;
use crate::PaymentError;

/// A refund as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: RefundId,
    /// The money transaction number of the one ledger transaction that gives the money back;
    /// the buyer's wallet history shows the refund under it.
    pub money_tx_id: MoneyTxId,
    /// The refunded order (`po_…`).
    pub order_id: PaymentOrderKey,
    /// Who asked, and the key they asked with: the same key again finds this refund.
    pub request_scope: String,
    pub request_key: String,
    pub amount: i64,
    /// The parts given back to each funding source, taken points first, then money, then card.
    pub split: Split,
    pub reason: String,
    /// The seller's account the money is taken back from, decided when the refund was reserved.
    pub seller_account: SellerAccount,
    pub status: RefundStatus,
    pub card_state: RefundCardState,
    pub failure_code: Option<String>,
    /// Until when the run working on the refund holds it (0: nobody).
    pub claimed_until: Micros,
    pub version: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// What a refund reservation needs of its order, read under the order's row lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OrderFunds {
    pub status: OrderStatus,
    pub version: i64,
    pub split: Split,
    pub refunded: Split,
    pub escrow: bool,
    pub escrow_state: Option<EscrowState>,
    /// The escrow is claimed for its release (`closing = 'confirm'`): what it holds is the
    /// seller's payable money from the claim on, whatever its state says until the release
    /// is booked.
    pub escrow_releasing: bool,
}

const REFUND_COLUMNS: &str = "id, money_tx_id, payment_order_id, request_scope, request_key, \
     amount, points_amount, money_amount, card_amount, reason, seller_account, status, \
     card_state, failure_code, claimed_until, version, created_at, updated_at";

/// Reads what a reservation needs of an order, locking its row on PostgreSQL (SQLite's write
/// transaction already excludes every other writer), so that concurrent refunds of one order
/// take turns instead of failing each other's version checks.
pub(crate) async fn order_funds(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    order: &PaymentOrderKey,
) -> Result<Option<OrderFunds>, PaymentError> {
    let row = sqlx::query(&format!(
        "SELECT status, version, points_amount, money_amount, card_amount, points_refunded, \
         money_refunded, card_refunded, escrow FROM payment_orders WHERE id = $1{}",
        backend.for_update()
    ))
    .bind(order.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    // The escrow is read by a statement of its own, after the order's row lock is held: a
    // sub-select of the locking statement would see the escrow as it was before that
    // statement waited for the lock (PostgreSQL re-reads only the locked row), and miss a
    // release claimed meanwhile. A release claim updates the order row in its transaction, so
    // once this lock is held such a claim has committed and this read sees it (READ COMMITTED:
    // each statement reads anew).
    let escrow = sqlx::query("SELECT state, closing FROM escrows WHERE payment_order_id = $1")
        .bind(order.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    let (escrow_state, escrow_closing): (Option<String>, Option<String>) = match escrow {
        Some(escrow) => (Some(escrow.try_get("state")?), escrow.try_get("closing")?),
        None => (None, None),
    };
    let status: String = row.try_get("status")?;
    Ok(Some(OrderFunds {
        status: OrderStatus::from_db(&status)?,
        version: row.try_get("version")?,
        split: Split {
            points: row.try_get("points_amount")?,
            money: row.try_get("money_amount")?,
            card: row.try_get("card_amount")?,
        },
        refunded: Split {
            points: row.try_get("points_refunded")?,
            money: row.try_get("money_refunded")?,
            card: row.try_get("card_refunded")?,
        },
        escrow: row.try_get::<i64, _>("escrow")? == 1,
        escrow_state: escrow_state
            .as_deref()
            .map(EscrowState::from_db)
            .transpose()?,
        escrow_releasing: escrow_closing.as_deref() == Some("confirm"),
    }))
}

/// Whether a scope's key already names a refund, read inside the reservation's transaction
/// (after the order's lock): a concurrent request with the same key that reserved first is
/// found here, before this one would find nothing left to refund.
pub(crate) async fn key_taken(
    tx: &mut Transaction<'static, Any>,
    scope: &str,
    key: &str,
) -> Result<bool, PaymentError> {
    let row = sqlx::query("SELECT 1 FROM refunds WHERE request_scope = $1 AND request_key = $2")
        .bind(scope)
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.is_some())
}

/// Writes an order's new refunded parts if it is still paid, at the version `funds` was read
/// at, with its escrow where it was; the version goes up by one. `false` when anything changed.
pub(crate) async fn reserve(
    tx: &mut Transaction<'static, Any>,
    order: &PaymentOrderKey,
    funds: &OrderFunds,
    refunded: Split,
    now: Micros,
) -> Result<bool, PaymentError> {
    let updated = sqlx::query(
        "UPDATE payment_orders SET points_refunded = $1, money_refunded = $2, \
         card_refunded = $3, version = version + 1, updated_at = $4 \
         WHERE id = $5 AND version = $6 AND status = 'SUCCESS' \
         AND COALESCE((SELECT e.state FROM escrows e \
                       WHERE e.payment_order_id = payment_orders.id), 'none') = $7",
    )
    .bind(refunded.points)
    .bind(refunded.money)
    .bind(refunded.card)
    .bind(now)
    .bind(order.as_str())
    .bind(funds.version)
    .bind(funds.escrow_state.map_or("none", EscrowState::as_str))
    .execute(&mut **tx)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Gives a failed refund's parts back to its order (the refund's own version check, in the
/// same transaction, makes this happen once); the order's version goes up, so a reservation
/// that read the old parts starts over. `false` if the order holds less than that refunded.
pub(crate) async fn give_back(
    tx: &mut Transaction<'static, Any>,
    order: &PaymentOrderKey,
    parts: Split,
    now: Micros,
) -> Result<bool, PaymentError> {
    let updated = sqlx::query(
        "UPDATE payment_orders SET points_refunded = points_refunded - $1, \
         money_refunded = money_refunded - $2, card_refunded = card_refunded - $3, \
         version = version + 1, updated_at = $4 \
         WHERE id = $5 AND points_refunded >= $1 AND money_refunded >= $2 \
         AND card_refunded >= $3",
    )
    .bind(parts.points)
    .bind(parts.money)
    .bind(parts.card)
    .bind(now)
    .bind(order.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Inserts a new refund; `false` (and nothing written) when its scope already used its key.
pub(crate) async fn insert_refund(
    tx: &mut Transaction<'static, Any>,
    refund: &Refund,
) -> Result<bool, PaymentError> {
    let inserted = sqlx::query(&format!(
        "INSERT INTO refunds ({REFUND_COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
         ON CONFLICT (request_scope, request_key) DO NOTHING"
    ))
    .bind(refund.id.as_str())
    .bind(refund.money_tx_id.as_str())
    .bind(refund.order_id.as_str())
    .bind(&refund.request_scope)
    .bind(&refund.request_key)
    .bind(refund.amount)
    .bind(refund.split.points)
    .bind(refund.split.money)
    .bind(refund.split.card)
    .bind(&refund.reason)
    .bind(account_str(refund.seller_account))
    .bind(refund.status.as_str())
    .bind(refund.card_state.as_str())
    .bind(refund.failure_code.as_deref())
    .bind(refund.claimed_until)
    .bind(refund.version)
    .bind(refund.created_at)
    .bind(refund.updated_at)
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Writes a refund's new state if nobody changed it since `refund.version` was read; the
/// version goes up by one. `false` when another run got there first.
pub(crate) async fn save_refund(
    tx: &mut Transaction<'static, Any>,
    refund: &Refund,
    now: Micros,
) -> Result<bool, PaymentError> {
    let updated = sqlx::query(
        "UPDATE refunds SET status = $1, card_state = $2, failure_code = $3, \
         claimed_until = $4, version = version + 1, updated_at = $5 \
         WHERE id = $6 AND version = $7",
    )
    .bind(refund.status.as_str())
    .bind(refund.card_state.as_str())
    .bind(refund.failure_code.as_deref())
    .bind(refund.claimed_until)
    .bind(now)
    .bind(refund.id.as_str())
    .bind(refund.version)
    .execute(&mut **tx)
    .await?;
    Ok(updated.rows_affected() == 1)
}

pub(crate) async fn refund(db: &Db, id: &str) -> Result<Option<Refund>, PaymentError> {
    let row = sqlx::query(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(refund_from_row).transpose()
}

pub(crate) async fn refund_by_key(
    db: &Db,
    scope: &str,
    key: &str,
) -> Result<Option<Refund>, PaymentError> {
    let row = sqlx::query(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE request_scope = $1 AND request_key = $2"
    ))
    .bind(scope)
    .bind(key)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(refund_from_row).transpose()
}

/// An order's refunds in the order they were made, after the refund `after` when given.
pub(crate) async fn refunds_of(
    db: &Db,
    order: &PaymentOrderKey,
    after: Option<&RefundId>,
    limit: i64,
) -> Result<Vec<Refund>, PaymentError> {
    let rows = sqlx::query(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_order_id = $1 AND id > $2 \
         ORDER BY id LIMIT $3"
    ))
    .bind(order.as_str())
    .bind(after.map_or("", RefundId::as_str))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(refund_from_row).collect()
}

/// Refunds still pending that nobody touched since `before`, least recently touched first.
pub(crate) async fn pending_refunds(
    db: &Db,
    before: Micros,
    limit: i64,
) -> Result<Vec<Refund>, PaymentError> {
    let rows = sqlx::query(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE status = 'pending' AND updated_at <= $1 \
         ORDER BY updated_at LIMIT $2"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(refund_from_row).collect()
}

/// What an order's other refunds account for at the PSP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CardAccounted {
    /// The card parts the PSP confirmed cancelled.
    pub cancelled: i64,
    /// Whether another refund's card cancellation was sent with its outcome unknown.
    pub others_in_flight: bool,
}

/// The card parts of the order's refunds other than `except`: what the PSP confirmed
/// cancelled, and whether one was sent without an answer yet.
pub(crate) async fn card_accounted(
    db: &Db,
    order: &PaymentOrderKey,
    except: &RefundId,
) -> Result<CardAccounted, PaymentError> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(CASE WHEN card_state = 'cancelled' THEN card_amount END), 0) \
         AS BIGINT) AS cancelled, \
         COUNT(CASE WHEN card_state = 'requested' THEN 1 END) AS in_flight \
         FROM refunds WHERE payment_order_id = $1 AND id <> $2",
    )
    .bind(order.as_str())
    .bind(except.as_str())
    .fetch_one(db.pool())
    .await?;
    Ok(CardAccounted {
        cancelled: row.try_get("cancelled")?,
        others_in_flight: row.try_get::<i64, _>("in_flight")? > 0,
    })
}

/// Marks a pending refund as just looked at, so the resumer takes the others first.
pub(crate) async fn touch_refund(db: &Db, id: &RefundId, now: Micros) -> Result<(), PaymentError> {
    sqlx::query("UPDATE refunds SET updated_at = $1 WHERE id = $2 AND status = 'pending'")
        .bind(now)
        .bind(id.as_str())
        .execute(db.pool())
        .await?;
    Ok(())
}

fn account_str(account: SellerAccount) -> &'static str {
    match account {
        SellerAccount::Payable => "payable",
        SellerAccount::Escrow => "escrow",
    }
}

fn refund_from_row(row: &AnyRow) -> Result<Refund, PaymentError> {
    let stored =
        |what: &str, value: &str| PaymentError::Internal(format!("stored {what} {value:?}"));
    let money_tx_id: String = row.try_get("money_tx_id")?;
    let order_id: String = row.try_get("payment_order_id")?;
    let seller_account: String = row.try_get("seller_account")?;
    let status: String = row.try_get("status")?;
    let card_state: String = row.try_get("card_state")?;
    Ok(Refund {
        id: RefundId::from_stored(row.try_get("id")?),
        money_tx_id: MoneyTxId::parse(&money_tx_id)
            .ok_or_else(|| stored("money transaction", &money_tx_id))?,
        order_id: PaymentOrderKey::from_stored(order_id),
        request_scope: row.try_get("request_scope")?,
        request_key: row.try_get("request_key")?,
        amount: row.try_get("amount")?,
        split: Split {
            points: row.try_get("points_amount")?,
            money: row.try_get("money_amount")?,
            card: row.try_get("card_amount")?,
        },
        reason: row.try_get("reason")?,
        seller_account: match seller_account.as_str() {
            "payable" => SellerAccount::Payable,
            "escrow" => SellerAccount::Escrow,
            other => return Err(stored("seller account", other)),
        },
        status: RefundStatus::from_db(&status).ok_or_else(|| stored("refund status", &status))?,
        card_state: RefundCardState::from_db(&card_state)
            .ok_or_else(|| stored("refund card state", &card_state))?,
        failure_code: row.try_get("failure_code")?,
        claimed_until: row.try_get("claimed_until")?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
