//! Every SQL statement of the wallet (the bank transfer executor keeps its own), written once
//! for both databases.

use ledger::Micros;
use membership::MemberId;
use money::{Currency, Money};
use sqlx::any::AnyRow;
use sqlx::Row;
use storage::{Db, SqlBuilder};

use crate::domain::{MoneyTxId, OperationKind, OperationState, UsageKind};
use crate::WalletError;

/// A money transaction as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub id: MoneyTxId,
    pub member_id: MemberId,
    pub kind: OperationKind,
    pub amount: Money,
    pub state: OperationState,
    pub member_label: String,
    pub counterparty_member_id: Option<MemberId>,
    pub counterparty_label: String,
    pub bank_account_id: Option<String>,
    pub bank_transfer_id: Option<String>,
    pub parent_id: Option<MoneyTxId>,
    pub usage_day: String,
    pub failure_code: Option<String>,
    pub created_at: Micros,
    pub updated_at: Micros,
}

impl Operation {
    /// The hold that reserves a bank-backed operation's money; a transfer between members
    /// moves at once and has none.
    pub fn hold_id(&self) -> Option<ledger::HoldId> {
        match self.kind {
            OperationKind::Transfer | OperationKind::Refund => None,
            OperationKind::Charge
            | OperationKind::Withdrawal
            | OperationKind::Payout
            | OperationKind::Payment => Some(self.id.hold_id()),
        }
    }

    /// The daily counter the operation took from; payments to merchants take none (the
    /// prepaid limits cap charges and what members send, not what they buy).
    pub(crate) fn usage_kind(&self) -> Option<UsageKind> {
        match self.kind {
            OperationKind::Charge => Some(UsageKind::Charge),
            OperationKind::Withdrawal | OperationKind::Payout | OperationKind::Transfer => {
                Some(UsageKind::Outgoing)
            }
            OperationKind::Payment | OperationKind::Refund => None,
        }
    }
}

/// Who asked for an operation, and with which Idempotency-Key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    pub scope: String,
    pub key: String,
}

impl RequestKey {
    /// The key of a step taken on the request's behalf (an automatic top-up), so that a
    /// re-run of the request finds that step too. The separator is a space, which a client's
    /// key (visible ASCII only) can never contain, so no client key can name a derived step.
    pub(crate) fn derived(&self, step: &str) -> RequestKey {
        RequestKey {
            scope: self.scope.clone(),
            key: format!("{} {step}", self.key),
        }
    }
}

const COLUMNS: &str = "id, member_id, kind, currency, amount, state, member_label, \
     counterparty_member_id, counterparty_label, bank_account_id, bank_transfer_id, parent_id, \
     usage_day, failure_code, created_at, updated_at";

/// The ledger account of a member's wallet, when it has been opened.
pub(crate) async fn wallet_account(
    db: &Db,
    member: &MemberId,
    currency: Currency,
) -> Result<Option<String>, WalletError> {
    let row =
        sqlx::query("SELECT ledger_account_id FROM wallets WHERE member_id = $1 AND currency = $2")
            .bind(member.as_str())
            .bind(currency.code())
            .fetch_optional(db.pool())
            .await?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

/// Records which ledger account is the wallet; a concurrent first use records the same one.
pub(crate) async fn insert_wallet(
    db: &Db,
    member: &MemberId,
    currency: Currency,
    account_id: &str,
    now: Micros,
) -> Result<(), WalletError> {
    sqlx::query(
        "INSERT INTO wallets (member_id, currency, ledger_account_id, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(member.as_str())
    .bind(currency.code())
    .bind(account_id)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Inserts a new operation; `false` when the request key was used before (nothing inserted).
pub(crate) async fn insert_operation(
    db: &Db,
    op: &Operation,
    key: Option<&RequestKey>,
) -> Result<bool, WalletError> {
    let inserted = sqlx::query(
        "INSERT INTO wallet_operations (id, member_id, kind, currency, amount, state, \
         member_label, counterparty_member_id, counterparty_label, bank_account_id, hold_id, \
         parent_id, usage_day, request_scope, request_key, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16) \
         ON CONFLICT DO NOTHING",
    )
    .bind(op.id.as_str())
    .bind(op.member_id.as_str())
    .bind(op.kind.as_str())
    .bind(op.amount.currency().code())
    .bind(op.amount.minor())
    .bind(op.state.as_str())
    .bind(&op.member_label)
    .bind(op.counterparty_member_id.as_ref().map(MemberId::as_str))
    .bind(&op.counterparty_label)
    .bind(op.bank_account_id.as_deref())
    .bind(op.hold_id().map(|id| id.to_string()))
    .bind(op.parent_id.as_ref().map(MoneyTxId::as_str))
    .bind(&op.usage_day)
    .bind(key.map(|k| k.scope.as_str()))
    .bind(key.map(|k| k.key.as_str()))
    .bind(op.created_at)
    .execute(db.pool())
    .await?;
    Ok(inserted.rows_affected() == 1)
}

pub(crate) async fn operation_by_request(
    db: &Db,
    key: &RequestKey,
) -> Result<Option<Operation>, WalletError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM wallet_operations WHERE request_scope = $1 AND request_key = $2"
    ))
    .bind(&key.scope)
    .bind(&key.key)
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| from_row(&row)).transpose()
}

pub(crate) async fn operation(db: &Db, id: &str) -> Result<Option<Operation>, WalletError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM wallet_operations WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| from_row(&row)).transpose()
}

/// The operations with these ids (ledger transaction ids of a history page); ids that name no
/// operation are skipped.
pub(crate) async fn operations_by_ids(
    db: &Db,
    ids: &[&str],
) -> Result<Vec<Operation>, WalletError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = SqlBuilder::new(
        db.backend(),
        &format!("SELECT {COLUMNS} FROM wallet_operations WHERE id IN "),
    );
    sql.bind_list(ids.iter().map(|id| id.to_string()));
    let (text, arguments) = sql.build();
    let rows = sqlx::query_with(&text, arguments)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// Marks a pending operation as just looked at, so that the resolver's next passes take the
/// ones it has not tried for longest first and one that keeps failing cannot starve the rest.
pub(crate) async fn touch(db: &Db, id: &MoneyTxId, now: Micros) -> Result<(), WalletError> {
    sqlx::query("UPDATE wallet_operations SET updated_at = $1 WHERE id = $2 AND state = 'pending'")
        .bind(now)
        .bind(id.as_str())
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Operations still pending that nobody touched since `before`, least recently touched first.
/// Payments are left out: the payments service finishes them with their payment orders
/// (refunds are recorded finished).
pub(crate) async fn pending_operations(
    db: &Db,
    before: Micros,
    limit: i64,
) -> Result<Vec<Operation>, WalletError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM wallet_operations WHERE state = 'pending' AND updated_at <= $1 \
         AND kind NOT IN ('payment', 'refund') ORDER BY updated_at LIMIT $2"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

pub(crate) async fn set_bank_transfer(
    db: &Db,
    id: &MoneyTxId,
    transfer_id: &str,
) -> Result<(), WalletError> {
    sqlx::query("UPDATE wallet_operations SET bank_transfer_id = $1 WHERE id = $2")
        .bind(transfer_id)
        .bind(id.as_str())
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Ends a pending operation. A failure gives its daily usage back in the same database
/// transaction, so usage is returned exactly once however often the end is attempted.
pub(crate) async fn finish_operation(
    db: &Db,
    op: &Operation,
    state: OperationState,
    failure_code: Option<&str>,
    now: Micros,
) -> Result<(), WalletError> {
    let mut tx = db.begin_write().await?;
    let ended = sqlx::query(
        "UPDATE wallet_operations SET state = $1, failure_code = $2, updated_at = $3 \
         WHERE id = $4 AND state = 'pending'",
    )
    .bind(state.as_str())
    .bind(failure_code)
    .bind(now)
    .bind(op.id.as_str())
    .execute(&mut *tx)
    .await?;
    if ended.rows_affected() == 1 && state == OperationState::Failed {
        release_usage_in(&mut tx, op).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Adds `amount` to a member's daily counter if the result stays within `limit`; `false` when
/// it would not. One conditional UPDATE, so concurrent requests on any replica cannot both
/// pass a limit that only one of them fits under.
pub(crate) async fn take_usage(
    db: &Db,
    member: &MemberId,
    day: &str,
    kind: UsageKind,
    amount: i64,
    limit: i64,
) -> Result<bool, WalletError> {
    sqlx::query(
        "INSERT INTO wallet_daily_usage (member_id, day, kind, used) VALUES ($1, $2, $3, 0) \
         ON CONFLICT DO NOTHING",
    )
    .bind(member.as_str())
    .bind(day)
    .bind(kind.as_str())
    .execute(db.pool())
    .await?;
    let taken = sqlx::query(
        "UPDATE wallet_daily_usage SET used = used + $1 \
         WHERE member_id = $2 AND day = $3 AND kind = $4 AND used <= $5 - $1",
    )
    .bind(amount)
    .bind(member.as_str())
    .bind(day)
    .bind(kind.as_str())
    .bind(limit)
    .execute(db.pool())
    .await?;
    Ok(taken.rows_affected() == 1)
}

/// Gives back usage taken for an operation that was never recorded (its request key had
/// been used before).
pub(crate) async fn release_usage(
    db: &Db,
    member: &MemberId,
    day: &str,
    kind: UsageKind,
    amount: i64,
) -> Result<(), WalletError> {
    sqlx::query(
        "UPDATE wallet_daily_usage SET used = used - $1 \
         WHERE member_id = $2 AND day = $3 AND kind = $4 AND used >= $1",
    )
    .bind(amount)
    .bind(member.as_str())
    .bind(day)
    .bind(kind.as_str())
    .execute(db.pool())
    .await?;
    Ok(())
}

async fn release_usage_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    op: &Operation,
) -> Result<(), WalletError> {
    let Some(usage) = op.usage_kind() else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE wallet_daily_usage SET used = used - $1 \
         WHERE member_id = $2 AND day = $3 AND kind = $4 AND used >= $1",
    )
    .bind(op.amount.minor())
    .bind(op.member_id.as_str())
    .bind(&op.usage_day)
    .bind(usage.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn member_id(value: String) -> Result<MemberId, WalletError> {
    MemberId::parse(&value)
        .ok_or_else(|| WalletError::Internal(format!("stored member id {value:?} does not parse")))
}

fn from_row(row: &AnyRow) -> Result<Operation, WalletError> {
    let currency: String = row.try_get("currency")?;
    let currency = Currency::parse(&currency)
        .map_err(|_| WalletError::Internal(format!("stored currency {currency:?}")))?;
    let kind: String = row.try_get("kind")?;
    let state: String = row.try_get("state")?;
    let counterparty: Option<String> = row.try_get("counterparty_member_id")?;
    let parent: Option<String> = row.try_get("parent_id")?;
    Ok(Operation {
        id: MoneyTxId::from_stored(row.try_get("id")?),
        member_id: member_id(row.try_get("member_id")?)?,
        kind: OperationKind::from_db(&kind)?,
        amount: Money::from_minor(row.try_get("amount")?, currency),
        state: OperationState::from_db(&state)?,
        member_label: row.try_get("member_label")?,
        counterparty_member_id: counterparty.map(member_id).transpose()?,
        counterparty_label: row.try_get("counterparty_label")?,
        bank_account_id: row.try_get("bank_account_id")?,
        bank_transfer_id: row.try_get("bank_transfer_id")?,
        parent_id: parent.map(MoneyTxId::from_stored),
        usage_day: row.try_get("usage_day")?,
        failure_code: row.try_get("failure_code")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
