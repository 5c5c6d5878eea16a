//! Every SQL statement of the sandbox PSP. An approval or a cancellation is one write
//! transaction that checks, changes the payment, appends its transaction line and stores the
//! idempotent reply, so it is either wholly done and answerable again, or not done at all.

use std::path::Path;
use std::time::Duration;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use storage::{DatabaseUrl, Db};

use crate::sandbox::SandboxError;

/// The sandbox's schema, applied when it opens its data directory.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./sandbox_migrations");

/// The database file inside the data directory.
pub const DB_FILE: &str = "sandbox-psp.db";
/// SQLite has one writer; a few readers suffice.
const POOL_SIZE: u32 = 4;

#[derive(Debug, Clone)]
pub(crate) struct Store {
    db: Db,
    /// How long an idempotency key is remembered.
    idempotency_ttl: Duration,
}

/// A payment as stored.
#[derive(Debug, Clone)]
pub(crate) struct PaymentRow {
    pub payment_key: String,
    pub order_id: String,
    pub customer_key: String,
    pub order_name: String,
    pub total_amount: i64,
    pub balance_amount: i64,
    pub status: String,
    pub approved_at: i64,
    pub last_transaction_key: String,
}

/// One approval or cancellation.
#[derive(Debug, Clone)]
pub(crate) struct TransactionRow {
    pub transaction_key: String,
    pub payment_key: String,
    pub order_id: String,
    pub customer_key: String,
    pub status: String,
    pub amount: i64,
    pub cancel_reason: Option<String>,
    pub refundable_amount: i64,
    pub transaction_at: i64,
}

/// A reply stored under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredReply {
    pub request_hash: String,
    pub status: u16,
    pub body: String,
}

/// What an idempotency key names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdemKey<'a> {
    pub scope: &'a str,
    pub key: &'a str,
    pub request_hash: &'a str,
    /// Replies stored before this instant are forgotten: the key is treated as new.
    pub remembered_since: i64,
}

const PAYMENT_COLUMNS: &str = "payment_key, order_id, customer_key, order_name, total_amount, \
    balance_amount, status, approved_at, last_transaction_key";
const TRANSACTION_COLUMNS: &str = "transaction_key, payment_key, order_id, customer_key, \
    status, amount, cancel_reason, refundable_amount, transaction_at";

fn payment_row(row: &AnyRow) -> Result<PaymentRow, sqlx::Error> {
    Ok(PaymentRow {
        payment_key: row.try_get("payment_key")?,
        order_id: row.try_get("order_id")?,
        customer_key: row.try_get("customer_key")?,
        order_name: row.try_get("order_name")?,
        total_amount: row.try_get("total_amount")?,
        balance_amount: row.try_get("balance_amount")?,
        status: row.try_get("status")?,
        approved_at: row.try_get("approved_at")?,
        last_transaction_key: row.try_get("last_transaction_key")?,
    })
}

fn transaction_row(row: &AnyRow) -> Result<TransactionRow, sqlx::Error> {
    Ok(TransactionRow {
        transaction_key: row.try_get("transaction_key")?,
        payment_key: row.try_get("payment_key")?,
        order_id: row.try_get("order_id")?,
        customer_key: row.try_get("customer_key")?,
        status: row.try_get("status")?,
        amount: row.try_get("amount")?,
        cancel_reason: row.try_get("cancel_reason")?,
        refundable_amount: row.try_get("refundable_amount")?,
        transaction_at: row.try_get("transaction_at")?,
    })
}

/// A new approval.
pub(crate) struct NewPayment<'a> {
    pub payment_key: &'a str,
    pub transaction_key: &'a str,
    pub order_id: &'a str,
    pub billing_key: &'a str,
    pub customer_key: &'a str,
    pub order_name: &'a str,
    pub amount: i64,
    pub at: i64,
}

/// A new cancellation of a payment read under the write lock.
pub(crate) struct NewCancel<'a> {
    pub payment: &'a PaymentRow,
    pub transaction_key: &'a str,
    pub amount: i64,
    pub reason: &'a str,
    pub at: i64,
}

impl Store {
    pub async fn open(dir: &Path, idempotency_ttl: Duration) -> Result<Store, SandboxError> {
        std::fs::create_dir_all(dir).map_err(|source| SandboxError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        let url = format!("sqlite://{}", dir.join(DB_FILE).display());
        let url = DatabaseUrl::parse(&url).map_err(|_| SandboxError::DataDir {
            path: dir.display().to_string(),
            source: std::io::Error::other("the path cannot be used in a SQLite URL"),
        })?;
        let db = Db::connect(&url, POOL_SIZE).await?;
        MIGRATOR.run(db.pool()).await?;
        Ok(Store {
            db,
            idempotency_ttl,
        })
    }

    /// A request's idempotency key as of `now`, remembering replies for the configured time.
    pub(crate) fn idem_key<'a>(
        &self,
        scope: &'a str,
        key: &'a str,
        request_hash: &'a str,
        now: i64,
    ) -> IdemKey<'a> {
        let ttl = i64::try_from(self.idempotency_ttl.as_micros()).unwrap_or(i64::MAX);
        IdemKey {
            scope,
            key,
            request_hash,
            remembered_since: now.saturating_sub(ttl),
        }
    }

    pub async fn close(&self) {
        self.db.close().await;
    }

    /// A write transaction: SQLite's `BEGIN IMMEDIATE`, so checks and changes see one state.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        self.db.begin_write().await
    }

    pub async fn payment_by_order(
        &self,
        order_id: &str,
    ) -> Result<Option<PaymentRow>, sqlx::Error> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = $1");
        sqlx::query(&sql)
            .bind(order_id)
            .fetch_optional(self.db.pool())
            .await?
            .as_ref()
            .map(payment_row)
            .transpose()
    }

    /// The cancellations of a payment, oldest first.
    pub async fn cancels(&self, payment_key: &str) -> Result<Vec<TransactionRow>, sqlx::Error> {
        let mut conn = self.db.pool().acquire().await?;
        cancels_of(&mut conn, payment_key).await
    }

    /// Transactions with `from <= transaction_at < to`, after the line `after` (a transaction
    /// key), oldest first, at most `limit`.
    pub async fn transactions(
        &self,
        from: i64,
        to: i64,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TransactionRow>, sqlx::Error> {
        let after_seq: i64 = match after {
            Some(key) => sqlx::query("SELECT seq FROM transactions WHERE transaction_key = $1")
                .bind(key)
                .fetch_optional(self.db.pool())
                .await?
                .map(|row| row.try_get("seq"))
                .transpose()?
                .unwrap_or(i64::MAX),
            None => 0,
        };
        let sql = format!(
            "SELECT {TRANSACTION_COLUMNS} FROM transactions \
             WHERE transaction_at >= $1 AND transaction_at < $2 AND seq > $3 \
             ORDER BY seq LIMIT $4"
        );
        sqlx::query(&sql)
            .bind(from)
            .bind(to)
            .bind(after_seq)
            .bind(limit)
            .fetch_all(self.db.pool())
            .await?
            .iter()
            .map(transaction_row)
            .collect()
    }
}

/// The cancellations of a payment as seen inside a write transaction, the newest included.
pub(crate) async fn cancels_in(
    tx: &mut Transaction<'static, Any>,
    payment_key: &str,
) -> Result<Vec<TransactionRow>, sqlx::Error> {
    cancels_of(tx, payment_key).await
}

async fn cancels_of(
    conn: &mut sqlx::AnyConnection,
    payment_key: &str,
) -> Result<Vec<TransactionRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {TRANSACTION_COLUMNS} FROM transactions \
         WHERE payment_key = $1 AND kind = 'cancel' ORDER BY seq"
    );
    sqlx::query(&sql)
        .bind(payment_key)
        .fetch_all(conn)
        .await?
        .iter()
        .map(transaction_row)
        .collect()
}

/// The reply stored under an idempotency key, if any.
pub(crate) async fn stored_reply(
    tx: &mut Transaction<'static, Any>,
    key: IdemKey<'_>,
) -> Result<Option<StoredReply>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT request_hash, status, body FROM idempotent_replies \
         WHERE scope = $1 AND idem_key = $2 AND created_at >= $3",
    )
    .bind(key.scope)
    .bind(key.key)
    .bind(key.remembered_since)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|row| {
        let status: i64 = row.try_get("status")?;
        Ok(StoredReply {
            request_hash: row.try_get("request_hash")?,
            status: u16::try_from(status).unwrap_or(500),
            body: row.try_get("body")?,
        })
    })
    .transpose()
}

pub(crate) async fn store_reply(
    tx: &mut Transaction<'static, Any>,
    key: IdemKey<'_>,
    status: u16,
    body: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO idempotent_replies (scope, idem_key, request_hash, status, body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (scope, idem_key) DO UPDATE SET request_hash = excluded.request_hash, \
         status = excluded.status, body = excluded.body, created_at = excluded.created_at",
    )
    .bind(key.scope)
    .bind(key.key)
    .bind(key.request_hash)
    .bind(i64::from(status))
    .bind(body)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn order_exists(
    tx: &mut Transaction<'static, Any>,
    order_id: &str,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("SELECT 1 AS one FROM payments WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(&mut **tx)
            .await?
            .is_some(),
    )
}

pub(crate) async fn payment_for_update(
    tx: &mut Transaction<'static, Any>,
    payment_key: &str,
) -> Result<Option<PaymentRow>, sqlx::Error> {
    let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE payment_key = $1");
    sqlx::query(&sql)
        .bind(payment_key)
        .fetch_optional(&mut **tx)
        .await?
        .as_ref()
        .map(payment_row)
        .transpose()
}

pub(crate) async fn insert_payment(
    tx: &mut Transaction<'static, Any>,
    new: &NewPayment<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payments (payment_key, order_id, billing_key, customer_key, order_name, \
         total_amount, balance_amount, status, approved_at, last_transaction_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, 'DONE', $7, $8)",
    )
    .bind(new.payment_key)
    .bind(new.order_id)
    .bind(new.billing_key)
    .bind(new.customer_key)
    .bind(new.order_name)
    .bind(new.amount)
    .bind(new.at)
    .bind(new.transaction_key)
    .execute(&mut **tx)
    .await?;
    insert_transaction(
        tx,
        &TransactionLine {
            transaction_key: new.transaction_key,
            payment_key: new.payment_key,
            order_id: new.order_id,
            customer_key: new.customer_key,
            kind: "approval",
            status: "DONE",
            amount: new.amount,
            cancel_reason: None,
            refundable_amount: new.amount,
            at: new.at,
        },
    )
    .await
}

/// Applies a cancellation checked by the caller; returns the payment's new status.
pub(crate) async fn insert_cancel(
    tx: &mut Transaction<'static, Any>,
    new: &NewCancel<'_>,
) -> Result<&'static str, sqlx::Error> {
    let balance = new.payment.balance_amount - new.amount;
    let status = if balance == 0 {
        "CANCELED"
    } else {
        "PARTIAL_CANCELED"
    };
    sqlx::query(
        "UPDATE payments SET balance_amount = $1, status = $2, last_transaction_key = $3 \
         WHERE payment_key = $4",
    )
    .bind(balance)
    .bind(status)
    .bind(new.transaction_key)
    .bind(&new.payment.payment_key)
    .execute(&mut **tx)
    .await?;
    insert_transaction(
        tx,
        &TransactionLine {
            transaction_key: new.transaction_key,
            payment_key: &new.payment.payment_key,
            order_id: &new.payment.order_id,
            customer_key: &new.payment.customer_key,
            kind: "cancel",
            status,
            amount: new.amount,
            cancel_reason: Some(new.reason),
            refundable_amount: balance,
            at: new.at,
        },
    )
    .await?;
    Ok(status)
}

struct TransactionLine<'a> {
    transaction_key: &'a str,
    payment_key: &'a str,
    order_id: &'a str,
    customer_key: &'a str,
    kind: &'a str,
    status: &'a str,
    amount: i64,
    cancel_reason: Option<&'a str>,
    refundable_amount: i64,
    at: i64,
}

async fn insert_transaction(
    tx: &mut Transaction<'static, Any>,
    line: &TransactionLine<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO transactions (transaction_key, payment_key, order_id, customer_key, kind, \
         status, amount, cancel_reason, refundable_amount, transaction_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(line.transaction_key)
    .bind(line.payment_key)
    .bind(line.order_id)
    .bind(line.customer_key)
    .bind(line.kind)
    .bind(line.status)
    .bind(line.amount)
    .bind(line.cancel_reason)
    .bind(line.refundable_amount)
    .bind(line.at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
