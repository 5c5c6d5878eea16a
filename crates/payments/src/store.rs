//! Every SQL statement of the payments service, written once for both databases.

use ledger::Micros;
use membership::MemberId;
use money::Currency;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use storage::Db;

use crate::domain::{
    CardState, EscrowState, OrderStatus, PaymentId, PaymentOrderKey, PaymentStatus, Split,
};
use crate::PaymentError;

/// A payment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: PaymentId,
    pub checkout_id: String,
    pub buyer: MemberId,
    pub request_scope: String,
    pub request_hash: String,
    pub currency: Currency,
    pub amount: i64,
    pub funding: Split,
    pub billing_key: Option<String>,
    pub auto_top_up: bool,
    pub items: Vec<String>,
    pub status: PaymentStatus,
    pub version: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// A payment order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: PaymentOrderKey,
    /// The client's id: the PSP's order id and idempotency key.
    pub payment_order_id: String,
    pub payment_id: PaymentId,
    pub seq: i64,
    pub seller: String,
    pub currency: Currency,
    pub amount: i64,
    pub split: Split,
    /// What refunds have given back (or reserved) of each source.
    pub refunded: Split,
    pub escrow: bool,
    /// Where an escrow order's money stands, once the order succeeded (read from its escrow;
    /// never written with the order).
    pub escrow_state: Option<EscrowState>,
    pub fee_bps: i64,
    pub status: OrderStatus,
    pub wallet_updated: bool,
    pub ledger_updated: bool,
    pub money_tx_id: Option<String>,
    pub card_state: CardState,
    pub card_first_sent_at: Option<Micros>,
    pub card_last_sent_at: Option<Micros>,
    pub psp_payment_key: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// For a FAILED order: whether its held points and money have been given back.
    pub funds_released: bool,
    /// Until when the run working on the order holds it.
    pub claimed_until: Micros,
    pub version: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
}

const PAYMENT_COLUMNS: &str = "id, checkout_id, buyer_member_id, request_scope, request_hash, \
     currency, amount, points_amount, money_amount, card_amount, billing_key, auto_top_up, items, \
     status, version, created_at, updated_at";

/// An order's own columns, as inserted.
const ORDER_TABLE_COLUMNS: &str = "id, payment_order_id, payment_id, seq, seller_merchant_id, \
     currency, amount, points_amount, money_amount, card_amount, escrow, fee_bps, status, \
     wallet_updated, ledger_updated, money_tx_id, card_state, psp_payment_key, failure_code, \
     failure_message, version, created_at, updated_at, points_refunded, money_refunded, \
     card_refunded, card_first_sent_at, card_last_sent_at, funds_released, claimed_until";

/// An order as read: its own columns and its escrow's state.
const ORDER_COLUMNS: &str = "id, payment_order_id, payment_id, seq, seller_merchant_id, currency, \
     amount, points_amount, money_amount, card_amount, escrow, fee_bps, status, wallet_updated, \
     ledger_updated, money_tx_id, card_state, psp_payment_key, failure_code, failure_message, \
     version, created_at, updated_at, points_refunded, money_refunded, card_refunded, \
     card_first_sent_at, card_last_sent_at, funds_released, claimed_until, \
     (SELECT e.state FROM escrows e WHERE e.payment_order_id = payment_orders.id) AS escrow_state";

/// What inserting a new payment found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inserted {
    Created,
    /// A payment with this checkout id exists already; nothing was written.
    CheckoutExists,
    /// One of the orders' ids belongs to another checkout; nothing was written.
    OrderIdTaken(String),
}

/// Inserts a payment and its orders in one transaction, or nothing.
pub(crate) async fn insert_payment(
    db: &Db,
    payment: &Payment,
    orders: &[Order],
) -> Result<Inserted, PaymentError> {
    let mut tx = db.begin_write().await?;
    let inserted = sqlx::query(&format!(
        "INSERT INTO payments ({PAYMENT_COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         ON CONFLICT (checkout_id) DO NOTHING"
    ))
    .bind(payment.id.as_str())
    .bind(&payment.checkout_id)
    .bind(payment.buyer.as_str())
    .bind(&payment.request_scope)
    .bind(&payment.request_hash)
    .bind(payment.currency.code())
    .bind(payment.amount)
    .bind(payment.funding.points)
    .bind(payment.funding.money)
    .bind(payment.funding.card)
    .bind(payment.billing_key.as_deref())
    .bind(i64::from(payment.auto_top_up))
    .bind(serde_json::to_string(&payment.items).map_err(|e| PaymentError::Internal(e.to_string()))?)
    .bind(payment.status.as_str())
    .bind(payment.version)
    .bind(payment.created_at)
    .bind(payment.updated_at)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(Inserted::CheckoutExists);
    }
    for order in orders {
        if !insert_order(&mut tx, order).await? {
            return Ok(Inserted::OrderIdTaken(order.payment_order_id.clone()));
        }
    }
    tx.commit().await?;
    Ok(Inserted::Created)
}

async fn insert_order(
    tx: &mut Transaction<'static, Any>,
    order: &Order,
) -> Result<bool, PaymentError> {
    let inserted = sqlx::query(&format!(
        "INSERT INTO payment_orders ({ORDER_TABLE_COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
          $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30) \
         ON CONFLICT (payment_order_id) DO NOTHING"
    ))
    .bind(order.id.as_str())
    .bind(&order.payment_order_id)
    .bind(order.payment_id.as_str())
    .bind(order.seq)
    .bind(&order.seller)
    .bind(order.currency.code())
    .bind(order.amount)
    .bind(order.split.points)
    .bind(order.split.money)
    .bind(order.split.card)
    .bind(i64::from(order.escrow))
    .bind(order.fee_bps)
    .bind(order.status.as_str())
    .bind(i64::from(order.wallet_updated))
    .bind(i64::from(order.ledger_updated))
    .bind(order.money_tx_id.as_deref())
    .bind(order.card_state.as_str())
    .bind(order.psp_payment_key.as_deref())
    .bind(order.failure_code.as_deref())
    .bind(order.failure_message.as_deref())
    .bind(order.version)
    .bind(order.created_at)
    .bind(order.updated_at)
    .bind(order.refunded.points)
    .bind(order.refunded.money)
    .bind(order.refunded.card)
    .bind(order.card_first_sent_at)
    .bind(order.card_last_sent_at)
    .bind(i64::from(order.funds_released))
    .bind(order.claimed_until)
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

pub(crate) async fn payment(db: &Db, id: &str) -> Result<Option<Payment>, PaymentError> {
    let row = sqlx::query(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(payment_from_row).transpose()
}

pub(crate) async fn payment_by_checkout(
    db: &Db,
    checkout_id: &str,
) -> Result<Option<Payment>, PaymentError> {
    let row = sqlx::query(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE checkout_id = $1"
    ))
    .bind(checkout_id)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(payment_from_row).transpose()
}

/// A payment's orders in request order.
pub(crate) async fn orders_of(db: &Db, payment: &PaymentId) -> Result<Vec<Order>, PaymentError> {
    let rows = sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM payment_orders WHERE payment_id = $1 ORDER BY seq"
    ))
    .bind(payment.as_str())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(order_from_row).collect()
}

/// An order by our id (`po_…`) or, failing that, by the client's payment order id.
pub(crate) async fn order(db: &Db, id: &str) -> Result<Option<Order>, PaymentError> {
    let row = sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM payment_orders WHERE id = $1 \
         UNION ALL SELECT {ORDER_COLUMNS} FROM payment_orders WHERE payment_order_id = $1"
    ))
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(order_from_row).transpose()
}

/// Writes an order's new state if nobody changed it since `order.version` was read; the
/// version goes up by one. `false` when another writer got there first.
pub(crate) async fn save_order(
    tx: &mut Transaction<'static, Any>,
    order: &Order,
    now: Micros,
) -> Result<bool, PaymentError> {
    let updated = sqlx::query(
        "UPDATE payment_orders SET status = $1, wallet_updated = $2, ledger_updated = $3, \
         money_tx_id = $4, card_state = $5, psp_payment_key = $6, failure_code = $7, \
         failure_message = $8, points_refunded = $9, money_refunded = $10, card_refunded = $11, \
         card_first_sent_at = $12, card_last_sent_at = $13, funds_released = $14, \
         claimed_until = $15, version = version + 1, updated_at = $16 \
         WHERE id = $17 AND version = $18",
    )
    .bind(order.status.as_str())
    .bind(i64::from(order.wallet_updated))
    .bind(i64::from(order.ledger_updated))
    .bind(order.money_tx_id.as_deref())
    .bind(order.card_state.as_str())
    .bind(order.psp_payment_key.as_deref())
    .bind(order.failure_code.as_deref())
    .bind(order.failure_message.as_deref())
    .bind(order.refunded.points)
    .bind(order.refunded.money)
    .bind(order.refunded.card)
    .bind(order.card_first_sent_at)
    .bind(order.card_last_sent_at)
    .bind(i64::from(order.funds_released))
    .bind(order.claimed_until)
    .bind(now)
    .bind(order.id.as_str())
    .bind(order.version)
    .execute(&mut **tx)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Opens the escrow of an escrow order that just succeeded: the money is held, cancellable
/// until `cancel_until`.
pub(crate) async fn open_escrow(
    tx: &mut Transaction<'static, Any>,
    order: &PaymentOrderKey,
    cancel_until: Micros,
    now: Micros,
) -> Result<(), PaymentError> {
    sqlx::query(
        "INSERT INTO escrows (payment_order_id, state, held_at, cancel_until, version, updated_at) \
         VALUES ($1, 'held', $2, $3, 1, $2)",
    )
    .bind(order.as_str())
    .bind(now)
    .bind(cancel_until)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Ends a payment that is still executing with its final status; answers its new version, or
/// `None` when it had ended before.
pub(crate) async fn finish_payment(
    tx: &mut Transaction<'static, Any>,
    id: &PaymentId,
    status: PaymentStatus,
    now: Micros,
) -> Result<Option<i64>, PaymentError> {
    let row = sqlx::query(
        "UPDATE payments SET status = $1, version = version + 1, updated_at = $2 \
         WHERE id = $3 AND status = 'executing' RETURNING version",
    )
    .bind(status.as_str())
    .bind(now)
    .bind(id.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

/// Orders not final that nobody touched since `before`, least recently touched first.
pub(crate) async fn unfinished_orders(
    db: &Db,
    before: Micros,
    limit: i64,
) -> Result<Vec<Order>, PaymentError> {
    let rows = sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM payment_orders \
         WHERE status IN ('NOT_STARTED', 'EXECUTING') AND updated_at <= $1 \
         ORDER BY updated_at LIMIT $2"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(order_from_row).collect()
}

/// FAILED orders whose held points and money have not been given back yet.
pub(crate) async fn unreleased_orders(db: &Db, limit: i64) -> Result<Vec<Order>, PaymentError> {
    let rows = sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM payment_orders \
         WHERE funds_released = 0 AND status = 'FAILED' LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(order_from_row).collect()
}

/// Marks an unfinished order as just looked at, so the resumer takes the others first.
pub(crate) async fn touch_order(
    db: &Db,
    id: &PaymentOrderKey,
    now: Micros,
) -> Result<(), PaymentError> {
    sqlx::query(
        "UPDATE payment_orders SET updated_at = $1 \
         WHERE id = $2 AND status IN ('NOT_STARTED', 'EXECUTING')",
    )
    .bind(now)
    .bind(id.as_str())
    .execute(db.pool())
    .await?;
    Ok(())
}

fn currency(value: String) -> Result<Currency, PaymentError> {
    Currency::parse(&value)
        .map_err(|_| PaymentError::Internal(format!("stored currency {value:?}")))
}

fn payment_from_row(row: &AnyRow) -> Result<Payment, PaymentError> {
    let buyer: String = row.try_get("buyer_member_id")?;
    let items: String = row.try_get("items")?;
    let status: String = row.try_get("status")?;
    Ok(Payment {
        id: PaymentId::from_stored(row.try_get("id")?),
        checkout_id: row.try_get("checkout_id")?,
        buyer: MemberId::parse(&buyer)
            .ok_or_else(|| PaymentError::Internal(format!("stored member id {buyer:?}")))?,
        request_scope: row.try_get("request_scope")?,
        request_hash: row.try_get("request_hash")?,
        currency: currency(row.try_get("currency")?)?,
        amount: row.try_get("amount")?,
        funding: Split {
            points: row.try_get("points_amount")?,
            money: row.try_get("money_amount")?,
            card: row.try_get("card_amount")?,
        },
        billing_key: row.try_get("billing_key")?,
        auto_top_up: row.try_get::<i64, _>("auto_top_up")? == 1,
        items: serde_json::from_str(&items).map_err(|e| PaymentError::Internal(e.to_string()))?,
        status: PaymentStatus::from_db(&status)?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn order_from_row(row: &AnyRow) -> Result<Order, PaymentError> {
    let status: String = row.try_get("status")?;
    let card_state: String = row.try_get("card_state")?;
    let escrow_state: Option<String> = row.try_get("escrow_state")?;
    Ok(Order {
        id: PaymentOrderKey::from_stored(row.try_get("id")?),
        payment_order_id: row.try_get("payment_order_id")?,
        payment_id: PaymentId::from_stored(row.try_get("payment_id")?),
        seq: row.try_get("seq")?,
        seller: row.try_get("seller_merchant_id")?,
        currency: currency(row.try_get("currency")?)?,
        amount: row.try_get("amount")?,
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
        fee_bps: row.try_get("fee_bps")?,
        status: OrderStatus::from_db(&status)?,
        wallet_updated: row.try_get::<i64, _>("wallet_updated")? == 1,
        ledger_updated: row.try_get::<i64, _>("ledger_updated")? == 1,
        money_tx_id: row.try_get("money_tx_id")?,
        card_state: CardState::from_db(&card_state)?,
        card_first_sent_at: row.try_get("card_first_sent_at")?,
        card_last_sent_at: row.try_get("card_last_sent_at")?,
        psp_payment_key: row.try_get("psp_payment_key")?,
        failure_code: row.try_get("failure_code")?,
        failure_message: row.try_get("failure_message")?,
        funds_released: row.try_get::<i64, _>("funds_released")? == 1,
        claimed_until: row.try_get("claimed_until")?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
