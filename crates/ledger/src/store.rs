//! Every SQL statement of the ledger, written once for both backends. Nothing else in the
//! ledger builds SQL, and nothing here decides what is allowed: that is the engine's job.

use std::collections::HashMap;

use money::{Currency, Money};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use storage::{Backend, SqlBuilder};

use crate::account::{
    Account, AccountCode, AccountFlags, AccountKind, Direction, NewAccount, Totals,
};
use crate::clock::Micros;
use crate::engine::AccountState;
use crate::hold::{Hold, HoldState};
use crate::transaction::{metadata_text, Posting, Transaction, TransactionKind};
use crate::{AccountId, HoldId, TransactionId};

const ACCOUNT_COLUMNS: &str = "id, code, kind, currency, flags, metadata, debits_posted, \
    credits_posted, debits_pending, credits_pending, posting_count, last_posted_at, version, \
    created_at";
const HOLD_COLUMNS: &str = "id, content_hash, debit_account_id, credit_account_id, currency, \
    amount, state, posted_amount, posting_transaction_id, expires_at, metadata, created_at, \
    resolved_at";
const POSTING_COLUMNS: &str = "account_id, account_seq, transaction_id, leg, amount, currency, \
    balance_after, posted_at";

/// Runs a built statement that returns no rows and reports how many it changed.
async fn execute(conn: &mut AnyConnection, builder: SqlBuilder) -> Result<u64, sqlx::Error> {
    let (sql, args) = builder.build();
    let done = sqlx::query_with(&sql, args)
        .persistent(false)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

async fn fetch_all(
    conn: &mut AnyConnection,
    builder: SqlBuilder,
) -> Result<Vec<AnyRow>, sqlx::Error> {
    let (sql, args) = builder.build();
    sqlx::query_with(&sql, args)
        .persistent(false)
        .fetch_all(conn)
        .await
}

fn currency_from_db(code: &str) -> Currency {
    Currency::parse(code).expect("currencies in the database were validated on the way in")
}

fn metadata_from_db(text: Option<String>) -> Option<serde_json::Value> {
    text.map(|t| serde_json::from_str(&t).expect("metadata in the database is valid JSON"))
}

fn account_from_row(row: &AnyRow) -> Result<Account, sqlx::Error> {
    let state = account_state_from_row(row)?;
    Ok(Account {
        code: AccountCode::from_db(row.try_get("code")?),
        metadata: metadata_from_db(row.try_get("metadata")?),
        created_at: row.try_get("created_at")?,
        id: state.id,
        kind: state.kind,
        currency: state.currency,
        flags: state.flags,
        totals: state.totals,
        posting_count: state.posting_count,
    })
}

fn account_state_from_row(row: &AnyRow) -> Result<AccountState, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    let currency: String = row.try_get("currency")?;
    Ok(AccountState {
        id: AccountId::from_db(row.try_get("id")?),
        kind: AccountKind::parse(&kind).expect("account kinds are checked by the schema"),
        currency: currency_from_db(&currency),
        flags: AccountFlags::from_bits(row.try_get("flags")?),
        totals: Totals {
            debits_posted: row.try_get("debits_posted")?,
            credits_posted: row.try_get("credits_posted")?,
            debits_pending: row.try_get("debits_pending")?,
            credits_pending: row.try_get("credits_pending")?,
        },
        posting_count: row.try_get("posting_count")?,
        last_posted_at: row.try_get("last_posted_at")?,
        version: row.try_get("version")?,
    })
}

fn hold_from_row(row: &AnyRow) -> Result<Hold, sqlx::Error> {
    let currency = currency_from_db(&row.try_get::<String, _>("currency")?);
    let state: String = row.try_get("state")?;
    Ok(Hold {
        id: HoldId::from_db(row.try_get("id")?),
        content_hash: row.try_get("content_hash")?,
        debit_account_id: AccountId::from_db(row.try_get("debit_account_id")?),
        credit_account_id: AccountId::from_db(row.try_get("credit_account_id")?),
        amount: Money::from_minor(row.try_get("amount")?, currency),
        state: HoldState::from_db(&state),
        posted_amount: Money::from_minor(row.try_get("posted_amount")?, currency),
        posting_transaction_id: row
            .try_get::<Option<String>, _>("posting_transaction_id")?
            .map(TransactionId::from_db),
        expires_at: row.try_get("expires_at")?,
        metadata: metadata_from_db(row.try_get("metadata")?),
        created_at: row.try_get("created_at")?,
        resolved_at: row.try_get("resolved_at")?,
    })
}

fn posting_from_row(row: &AnyRow) -> Result<Posting, sqlx::Error> {
    let currency = currency_from_db(&row.try_get::<String, _>("currency")?);
    let signed: i64 = row.try_get("amount")?;
    let direction = if signed > 0 {
        Direction::Debit
    } else {
        Direction::Credit
    };
    Ok(Posting {
        account_id: AccountId::from_db(row.try_get("account_id")?),
        account_seq: row.try_get("account_seq")?,
        transaction_id: TransactionId::from_db(row.try_get("transaction_id")?),
        leg: i32::try_from(row.try_get::<i64, _>("leg")?).expect("legs are bounded"),
        direction,
        amount: Money::from_minor(signed.abs(), currency),
        balance_after: Money::from_minor(row.try_get("balance_after")?, currency),
        posted_at: row.try_get("posted_at")?,
    })
}

/// Inserts an account unless its code is taken, and returns what is stored under the code.
pub(crate) async fn insert_account(
    conn: &mut AnyConnection,
    backend: Backend,
    id: &AccountId,
    new: &NewAccount,
    now: Micros,
) -> Result<Account, sqlx::Error> {
    let mut b = SqlBuilder::new(
        backend,
        "INSERT INTO ledger_accounts (id, code, kind, currency, flags, metadata, created_at) VALUES (",
    );
    b.bind(id.to_string()).push(", ");
    b.bind(new.code.as_str().to_owned()).push(", ");
    b.bind(new.kind.as_str().to_owned()).push(", ");
    b.bind(new.currency.code().to_owned()).push(", ");
    b.bind(new.flags.bits()).push(", ");
    b.bind(metadata_text(new.metadata.as_ref())).push(", ");
    b.bind(now).push(") ON CONFLICT (code) DO NOTHING");
    execute(conn, b).await?;
    Ok(account_by_code(conn, backend, &new.code)
        .await?
        .expect("the account was inserted or already existed"))
}

pub(crate) async fn account_by_id(
    conn: &mut AnyConnection,
    backend: Backend,
    id: &str,
) -> Result<Option<Account>, sqlx::Error> {
    let mut b = SqlBuilder::new(
        backend,
        &format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id = "),
    );
    b.bind(id.to_owned());
    fetch_all(conn, b)
        .await?
        .first()
        .map(account_from_row)
        .transpose()
}

pub(crate) async fn account_by_code(
    conn: &mut AnyConnection,
    backend: Backend,
    code: &AccountCode,
) -> Result<Option<Account>, sqlx::Error> {
    let mut b = SqlBuilder::new(
        backend,
        &format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE code = "),
    );
    b.bind(code.as_str().to_owned());
    fetch_all(conn, b)
        .await?
        .first()
        .map(account_from_row)
        .transpose()
}

/// Accounts in id order, after the given id, at most `limit`.
pub(crate) async fn list_accounts(
    conn: &mut AnyConnection,
    backend: Backend,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Account>, sqlx::Error> {
    let mut b = SqlBuilder::new(
        backend,
        &format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id > "),
    );
    b.bind(after.unwrap_or_default().to_owned())
        .push(" ORDER BY id LIMIT ")
        .bind(limit);
    fetch_all(conn, b)
        .await?
        .iter()
        .map(account_from_row)
        .collect()
}

/// The content digests of the transactions among `ids` that are already stored.
pub(crate) async fn stored_hashes(
    conn: &mut AnyConnection,
    backend: Backend,
    ids: &[TransactionId],
) -> Result<HashMap<TransactionId, String>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut b = SqlBuilder::new(
        backend,
        "SELECT id, content_hash FROM ledger_transactions WHERE id IN ",
    );
    b.bind_list(ids.iter().map(|id| id.to_string()));
    fetch_all(conn, b)
        .await?
        .iter()
        .map(|row| {
            Ok((
                TransactionId::from_db(row.try_get("id")?),
                row.try_get("content_hash")?,
            ))
        })
        .collect()
}

/// Reads and locks the holds among `ids` that exist.
pub(crate) async fn holds_for_update(
    conn: &mut AnyConnection,
    backend: Backend,
    ids: &[HoldId],
) -> Result<HashMap<HoldId, Hold>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut b = SqlBuilder::new(
        backend,
        &format!("SELECT {HOLD_COLUMNS} FROM ledger_holds WHERE id IN "),
    );
    b.bind_list(ids.iter().map(|id| id.to_string()))
        .push(" ORDER BY id")
        .push(backend.for_update());
    fetch_all(conn, b)
        .await?
        .iter()
        .map(|row| hold_from_row(row).map(|h| (h.id.clone(), h)))
        .collect()
}

/// Reads and locks the accounts among `ids` that exist, in id order so that concurrent
/// writers always lock in the same order and cannot deadlock.
pub(crate) async fn accounts_for_update(
    conn: &mut AnyConnection,
    backend: Backend,
    ids: &[&AccountId],
) -> Result<HashMap<AccountId, AccountState>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut b = SqlBuilder::new(
        backend,
        &format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id IN "),
    );
    b.bind_list(ids.iter().map(|id| id.to_string()))
        .push(" ORDER BY id")
        .push(backend.for_update());
    fetch_all(conn, b)
        .await?
        .iter()
        .map(|row| account_state_from_row(row).map(|a| (a.id.clone(), a)))
        .collect()
}

/// The rows one batch writes, borrowed from the engine's state.
pub(crate) struct BatchWrite<'a> {
    pub transactions: &'a [(Transaction, String)],
    pub postings: &'a [Posting],
    pub new_holds: Vec<&'a Hold>,
    pub changed_holds: Vec<&'a Hold>,
    /// Touched accounts with their new totals, carrying the version they were read at.
    pub accounts: Vec<&'a AccountState>,
}

/// Why a batch's write did not go through.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// An account or hold changed since it was read, or a transaction id is already taken:
    /// nothing was written, and the batch must be re-run from fresh reads.
    Conflict,
    Database(sqlx::Error),
}

impl From<sqlx::Error> for WriteError {
    fn from(error: sqlx::Error) -> Self {
        WriteError::Database(error)
    }
}

/// Bind parameters each kind of row takes; the writer keeps a batch within the backend's limit.
pub(crate) const TRANSACTION_PARAMS: usize = 7;
pub(crate) const POSTING_PARAMS: usize = 8;
pub(crate) const HOLD_PARAMS: usize = 13;
pub(crate) const HOLD_UPDATE_PARAMS: usize = 5;
pub(crate) const ACCOUNT_UPDATE_PARAMS: usize = 8;

/// Writes a whole batch with one call to the database.
///
/// The row fragments are written once; only how they are joined differs. PostgreSQL runs them
/// as one statement of data-modifying CTEs whose final SELECT divides by zero when an account
/// or hold update missed its expected version, which aborts the statement and everything in
/// it. SQLite runs them as consecutive statements in one call inside the caller's write
/// transaction, and the total of changed rows tells whether every update hit.
pub(crate) async fn write_batch(
    conn: &mut AnyConnection,
    backend: Backend,
    write: &BatchWrite<'_>,
) -> Result<(), WriteError> {
    let mut b = SqlBuilder::new(backend, "");
    let mut parts = Parts::new(backend);
    if !write.transactions.is_empty() {
        parts.begin(
            &mut b,
            "wt",
            "INSERT INTO ledger_transactions \
            (id, content_hash, kind, hold_id, description, metadata, posted_at) VALUES ",
        );
        for (i, (tx, hash)) in write.transactions.iter().enumerate() {
            row(&mut b, i);
            b.bind(tx.id.to_string()).push(", ");
            b.bind(hash.clone()).push(", ");
            b.bind(tx.kind.as_str().to_owned()).push(", ");
            b.bind(tx.hold_id.as_ref().map(|h| h.to_string()))
                .push(", ");
            b.bind(tx.description.clone()).push(", ");
            b.bind(metadata_text(tx.metadata.as_ref())).push(", ");
            b.bind(tx.posted_at).push(")");
        }
        parts.end(&mut b, write.transactions.len());
    }
    if !write.postings.is_empty() {
        parts.begin(
            &mut b,
            "wp",
            &format!("INSERT INTO ledger_postings ({POSTING_COLUMNS}) VALUES "),
        );
        for (i, p) in write.postings.iter().enumerate() {
            row(&mut b, i);
            b.bind(p.account_id.to_string()).push(", ");
            b.bind(p.account_seq).push(", ");
            b.bind(p.transaction_id.to_string()).push(", ");
            b.bind(i64::from(p.leg)).push(", ");
            b.bind(p.signed_minor()).push(", ");
            b.bind(p.amount.currency().code().to_owned()).push(", ");
            b.bind(p.balance_after.minor()).push(", ");
            b.bind(p.posted_at).push(")");
        }
        parts.end(&mut b, write.postings.len());
    }
    if !write.new_holds.is_empty() {
        parts.begin(
            &mut b,
            "wh",
            &format!("INSERT INTO ledger_holds ({HOLD_COLUMNS}) VALUES "),
        );
        for (i, h) in write.new_holds.iter().enumerate() {
            row(&mut b, i);
            b.bind(h.id.to_string()).push(", ");
            b.bind(h.content_hash.clone()).push(", ");
            b.bind(h.debit_account_id.to_string()).push(", ");
            b.bind(h.credit_account_id.to_string()).push(", ");
            b.bind(h.amount.currency().code().to_owned()).push(", ");
            b.bind(h.amount.minor()).push(", ");
            b.bind(h.state.as_str().to_owned()).push(", ");
            b.bind(h.posted_amount.minor()).push(", ");
            b.bind(h.posting_transaction_id.as_ref().map(|t| t.to_string()))
                .push(", ");
            b.bind(h.expires_at).push(", ");
            b.bind(metadata_text(h.metadata.as_ref())).push(", ");
            b.bind(h.created_at).push(", ");
            b.bind(h.resolved_at).push(")");
        }
        parts.end(&mut b, write.new_holds.len());
    }
    if !write.changed_holds.is_empty() {
        // Only a pending hold may be resolved, and only once.
        parts.values(
            &mut b,
            "vh",
            "id, state, posted_amount, posting_transaction_id, resolved_at",
        );
        for (i, h) in write.changed_holds.iter().enumerate() {
            row(&mut b, i);
            b.bind(h.id.to_string()).push(", ");
            b.bind(h.state.as_str().to_owned()).push(", ");
            b.bind(h.posted_amount.minor()).push(", ");
            b.bind(h.posting_transaction_id.as_ref().map(|t| t.to_string()))
                .push(", ");
            b.bind(h.resolved_at).push(")");
        }
        parts.update(
            &mut b,
            "uh",
            "UPDATE ledger_holds SET state = vh.state, posted_amount = vh.posted_amount, \
             posting_transaction_id = vh.posting_transaction_id, resolved_at = vh.resolved_at \
             FROM vh WHERE ledger_holds.id = vh.id AND ledger_holds.state = 'pending'",
            write.changed_holds.len(),
        );
    }
    if !write.accounts.is_empty() {
        parts.values(
            &mut b,
            "va",
            "id, version, debits_posted, credits_posted, debits_pending, credits_pending, \
             posting_count, last_posted_at",
        );
        for (i, a) in write.accounts.iter().enumerate() {
            row(&mut b, i);
            b.bind(a.id.to_string()).push(", ");
            b.bind(a.version).push(", ");
            b.bind(a.totals.debits_posted).push(", ");
            b.bind(a.totals.credits_posted).push(", ");
            b.bind(a.totals.debits_pending).push(", ");
            b.bind(a.totals.credits_pending).push(", ");
            b.bind(a.posting_count).push(", ");
            b.bind(a.last_posted_at).push(")");
        }
        parts.update(
            &mut b,
            "ua",
            "UPDATE ledger_accounts SET debits_posted = va.debits_posted, \
             credits_posted = va.credits_posted, debits_pending = va.debits_pending, \
             credits_pending = va.credits_pending, posting_count = va.posting_count, \
             last_posted_at = va.last_posted_at, version = ledger_accounts.version + 1 \
             FROM va WHERE ledger_accounts.id = va.id AND ledger_accounts.version = va.version",
            write.accounts.len(),
        );
    }
    parts.run(conn, b).await
}

fn row(b: &mut SqlBuilder, i: usize) {
    b.push(if i == 0 { "(" } else { ", (" });
}

/// Joins the parts of a batch write in the backend's way (see [`write_batch`]).
struct Parts {
    backend: Backend,
    count: usize,
    /// Rows the whole write must change (SQLite) and the updates whose counts are guarded
    /// (PostgreSQL).
    expected_rows: u64,
    guards: Vec<(&'static str, usize)>,
}

impl Parts {
    fn new(backend: Backend) -> Parts {
        Parts {
            backend,
            count: 0,
            expected_rows: 0,
            guards: Vec::new(),
        }
    }

    fn separate(&mut self, b: &mut SqlBuilder) {
        if self.count > 0 {
            b.push(match self.backend {
                Backend::Postgres => ", ",
                Backend::Sqlite => "; ",
            });
        } else if self.backend == Backend::Postgres {
            b.push("WITH ");
        }
        self.count += 1;
    }

    /// Starts an INSERT part.
    fn begin(&mut self, b: &mut SqlBuilder, name: &str, head: &str) {
        self.separate(b);
        if self.backend == Backend::Postgres {
            b.push(name).push(" AS (");
        }
        b.push(head);
    }

    fn end(&mut self, b: &mut SqlBuilder, rows: usize) {
        if self.backend == Backend::Postgres {
            b.push(" RETURNING 1)");
        }
        self.expected_rows += rows as u64;
    }

    /// Starts a VALUES list named `name` with the given columns, for a following update.
    fn values(&mut self, b: &mut SqlBuilder, name: &str, columns: &str) {
        match self.backend {
            Backend::Postgres => {
                self.separate(b);
                b.push(name).push(" (").push(columns).push(") AS (VALUES ");
            }
            Backend::Sqlite => {
                self.separate(b);
                b.push("WITH ")
                    .push(name)
                    .push(" (")
                    .push(columns)
                    .push(") AS (VALUES ");
            }
        }
    }

    /// Closes the VALUES list and adds the update that reads it, whose changed-row count
    /// must equal `rows`.
    fn update(&mut self, b: &mut SqlBuilder, name: &'static str, update: &str, rows: usize) {
        match self.backend {
            Backend::Postgres => {
                b.push("), ")
                    .push(name)
                    .push(" AS (")
                    .push(update)
                    .push(" RETURNING 1)");
                self.guards.push((name, rows));
            }
            Backend::Sqlite => {
                b.push(") ").push(update);
            }
        }
        self.expected_rows += rows as u64;
    }

    async fn run(self, conn: &mut AnyConnection, mut b: SqlBuilder) -> Result<(), WriteError> {
        match self.backend {
            Backend::Postgres => {
                // Every guarded update must have changed exactly its rows, or the division
                // by zero aborts the statement, and with it every insert and update in it.
                b.push(" SELECT 1 / (CASE WHEN TRUE");
                for (name, rows) in &self.guards {
                    b.push(&format!(" AND (SELECT COUNT(*) FROM {name}) = {rows}"));
                }
                b.push(" THEN 1 ELSE 0 END)");
                match fetch_all(conn, b).await {
                    Ok(_) => Ok(()),
                    Err(error) if is_conflict(&error) => Err(WriteError::Conflict),
                    Err(error) => Err(WriteError::Database(error)),
                }
            }
            Backend::Sqlite => match execute(conn, b).await {
                Ok(changed) if changed == self.expected_rows => Ok(()),
                Ok(_) => Err(WriteError::Conflict),
                Err(error) if is_conflict(&error) => Err(WriteError::Conflict),
                Err(error) => Err(WriteError::Database(error)),
            },
        }
    }
}

/// A unique key already taken (a transaction or hold id stored earlier), or the guard's
/// division by zero.
fn is_conflict(error: &sqlx::Error) -> bool {
    let Some(db) = error.as_database_error() else {
        return false;
    };
    matches!(
        db.code().as_deref(),
        Some("23505" | "22012" | "2067" | "1555")
    )
}

/// Stored transactions with their postings, in the order of `ids` (missing ones skipped).
pub(crate) async fn transactions_by_ids(
    conn: &mut AnyConnection,
    backend: Backend,
    ids: &[TransactionId],
) -> Result<Vec<Transaction>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut b = SqlBuilder::new(
        backend,
        "SELECT id, kind, hold_id, description, metadata, posted_at FROM ledger_transactions WHERE id IN ",
    );
    b.bind_list(ids.iter().map(|id| id.to_string()));
    let rows = fetch_all(conn, b).await?;
    let mut p = SqlBuilder::new(
        backend,
        &format!("SELECT {POSTING_COLUMNS} FROM ledger_postings WHERE transaction_id IN "),
    );
    p.bind_list(ids.iter().map(|id| id.to_string()))
        .push(" ORDER BY transaction_id, leg");
    let mut postings: HashMap<TransactionId, Vec<Posting>> = HashMap::new();
    for row in fetch_all(conn, p).await? {
        let posting = posting_from_row(&row)?;
        postings
            .entry(posting.transaction_id.clone())
            .or_default()
            .push(posting);
    }
    let mut by_id = HashMap::new();
    for row in rows {
        let id = TransactionId::from_db(row.try_get("id")?);
        let kind: String = row.try_get("kind")?;
        let tx = Transaction {
            postings: postings.remove(&id).unwrap_or_default(),
            kind: TransactionKind::from_db(&kind),
            hold_id: row
                .try_get::<Option<String>, _>("hold_id")?
                .map(HoldId::from_db),
            description: row.try_get("description")?,
            metadata: metadata_from_db(row.try_get("metadata")?),
            posted_at: row.try_get("posted_at")?,
            id: id.clone(),
        };
        by_id.insert(id, tx);
    }
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

pub(crate) async fn hold_by_id(
    conn: &mut AnyConnection,
    backend: Backend,
    id: &HoldId,
) -> Result<Option<Hold>, sqlx::Error> {
    let mut b = SqlBuilder::new(
        backend,
        &format!("SELECT {HOLD_COLUMNS} FROM ledger_holds WHERE id = "),
    );
    b.bind(id.to_string());
    fetch_all(conn, b)
        .await?
        .first()
        .map(hold_from_row)
        .transpose()
}

/// The posted balance right after the last posting at or before `at`, or `None` if the
/// account had no posting by then.
pub(crate) async fn balance_after_at(
    conn: &mut AnyConnection,
    backend: Backend,
    account_id: &AccountId,
    at: Micros,
) -> Result<Option<i64>, sqlx::Error> {
    let mut b = SqlBuilder::new(
        backend,
        "SELECT balance_after FROM ledger_postings WHERE account_id = ",
    );
    b.bind(account_id.to_string())
        .push(" AND posted_at <= ")
        .bind(at)
        .push(" ORDER BY posted_at DESC, account_seq DESC LIMIT 1");
    fetch_all(conn, b)
        .await?
        .first()
        .map(|row| row.try_get("balance_after"))
        .transpose()
}

/// An account's postings, newest first, before sequence `before` (exclusive).
pub(crate) async fn history(
    conn: &mut AnyConnection,
    backend: Backend,
    account_id: &AccountId,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Posting>, sqlx::Error> {
    let mut b = SqlBuilder::new(
        backend,
        &format!("SELECT {POSTING_COLUMNS} FROM ledger_postings WHERE account_id = "),
    );
    b.bind(account_id.to_string())
        .push(" AND account_seq < ")
        .bind(before.unwrap_or(i64::MAX))
        .push(" ORDER BY account_seq DESC LIMIT ")
        .bind(limit);
    fetch_all(conn, b)
        .await?
        .iter()
        .map(posting_from_row)
        .collect()
}

/// Pending holds whose expiry has passed, oldest first.
pub(crate) async fn due_holds(
    conn: &mut AnyConnection,
    backend: Backend,
    now: Micros,
    limit: i64,
) -> Result<Vec<HoldId>, sqlx::Error> {
    let mut b = SqlBuilder::new(
        backend,
        "SELECT id FROM ledger_holds WHERE state = 'pending' AND expires_at <= ",
    );
    b.bind(now).push(" ORDER BY expires_at LIMIT ").bind(limit);
    fetch_all(conn, b)
        .await?
        .iter()
        .map(|row| row.try_get("id").map(HoldId::from_db))
        .collect()
}
