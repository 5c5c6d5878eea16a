//! Every SQL statement of the ledger, written once for both backends. Nothing else in the
//! ledger builds SQL, and nothing here decides what is allowed: that is the engine's job.

use std::collections::HashMap;

use money::{Currency, Money};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use storage::JsonType::{self, BigInt, Text};
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

/// Runs a statement that returns no rows and reports how many it changed. Statements whose
/// text depends on a list's length are not kept prepared, so that they do not churn the
/// connection's statement cache.
async fn execute(conn: &mut AnyConnection, builder: SqlBuilder) -> Result<u64, sqlx::Error> {
    let (sql, args) = builder.build();
    let done = sqlx::query_with(&sql, args)
        .persistent(false)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Runs a statement whose text never changes, kept prepared on the connection.
async fn execute_prepared(
    conn: &mut AnyConnection,
    builder: SqlBuilder,
) -> Result<u64, sqlx::Error> {
    let (sql, args) = builder.build();
    Ok(sqlx::query_with(&sql, args)
        .execute(conn)
        .await?
        .rows_affected())
}

async fn fetch_all_prepared(
    conn: &mut AnyConnection,
    builder: SqlBuilder,
) -> Result<Vec<AnyRow>, sqlx::Error> {
    let (sql, args) = builder.build();
    sqlx::query_with(&sql, args).fetch_all(conn).await
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

/// Accounts whose code starts with `prefix`, in id order, after the given id, at most `limit`.
///
/// The prefix is compared with `substr`, not `LIKE`: `_` (common in codes) is a wildcard in
/// `LIKE`, and SQLite's `LIKE` ignores ASCII case, so a prefix match through it could return
/// another owner's accounts. The comparison cannot use the index on `code` and scans the table;
/// it serves rare reads (closing a member) until an owner column is indexed.
pub(crate) async fn accounts_by_code_prefix(
    conn: &mut AnyConnection,
    backend: Backend,
    prefix: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Account>, sqlx::Error> {
    let mut b = SqlBuilder::new(
        backend,
        &format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE substr(code, 1, length("),
    );
    b.bind(prefix.to_owned())
        .push(")) = ")
        .bind(prefix.to_owned())
        .push(" AND id > ")
        .bind(after.unwrap_or_default().to_owned())
        .push(" ORDER BY id LIMIT ")
        .bind(limit);
    fetch_all_prepared(conn, b)
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

/// Reads and locks the rows of `table` whose ids are among `ids`, in id order, so that
/// concurrent writers always lock in the same order and cannot deadlock.
async fn select_for_update<T>(
    conn: &mut AnyConnection,
    backend: Backend,
    table_and_columns: (&str, &str),
    ids: impl Iterator<Item = String>,
    decode: fn(&AnyRow) -> Result<T, sqlx::Error>,
) -> Result<Vec<T>, sqlx::Error> {
    let (table, columns) = table_and_columns;
    let mut b = SqlBuilder::new(
        backend,
        &format!("SELECT {columns} FROM {table} WHERE id IN "),
    );
    b.bind_list(ids)
        .push(" ORDER BY id")
        .push(backend.for_update());
    fetch_all(conn, b).await?.iter().map(decode).collect()
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
    let table = ("ledger_holds", HOLD_COLUMNS);
    let holds = select_for_update(
        conn,
        backend,
        table,
        ids.iter().map(HoldId::to_string),
        hold_from_row,
    )
    .await?;
    Ok(holds.into_iter().map(|h| (h.id.clone(), h)).collect())
}

/// Reads and locks the accounts among `ids` that exist.
pub(crate) async fn accounts_for_update(
    conn: &mut AnyConnection,
    backend: Backend,
    ids: &[&AccountId],
) -> Result<HashMap<AccountId, AccountState>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let table = ("ledger_accounts", ACCOUNT_COLUMNS);
    let ids = ids.iter().map(|id| id.to_string());
    let accounts = select_for_update(conn, backend, table, ids, account_state_from_row).await?;
    Ok(accounts.into_iter().map(|a| (a.id.clone(), a)).collect())
}

/// The rows one batch writes, borrowed from the engine's state.
pub(crate) struct BatchWrite<'a> {
    pub transactions: &'a [(Transaction, String)],
    pub postings: &'a [Posting],
    pub new_holds: Vec<&'a Hold>,
    pub changed_holds: Vec<&'a Hold>,
    /// Touched accounts with their new totals, carrying the version they were read at, and
    /// the version token the write gives them.
    pub accounts: Vec<(&'a AccountState, i64)>,
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

#[derive(Serialize)]
struct TransactionRow<'a> {
    id: &'a str,
    content_hash: &'a str,
    kind: &'static str,
    hold_id: Option<&'a str>,
    description: Option<&'a str>,
    metadata: Option<String>,
    posted_at: i64,
}

#[derive(Serialize)]
struct PostingRow<'a> {
    account_id: &'a str,
    account_seq: i64,
    transaction_id: &'a str,
    leg: i32,
    amount: i64,
    currency: &'static str,
    balance_after: i64,
    posted_at: i64,
}

#[derive(Serialize)]
struct HoldRow<'a> {
    id: &'a str,
    content_hash: &'a str,
    debit_account_id: &'a str,
    credit_account_id: &'a str,
    currency: &'static str,
    amount: i64,
    state: &'static str,
    posted_amount: i64,
    posting_transaction_id: Option<&'a str>,
    expires_at: Option<i64>,
    metadata: Option<String>,
    created_at: i64,
    resolved_at: Option<i64>,
}

#[derive(Serialize)]
struct AccountRow<'a> {
    id: &'a str,
    version: i64,
    next_version: i64,
    debits_posted: i64,
    credits_posted: i64,
    debits_pending: i64,
    credits_pending: i64,
    posting_count: i64,
    last_posted_at: i64,
}

fn json<T: Serialize>(rows: impl Iterator<Item = T>) -> String {
    serde_json::to_string(&rows.collect::<Vec<T>>()).expect("ledger rows serialise to JSON")
}

fn hold_row(h: &Hold) -> HoldRow<'_> {
    HoldRow {
        id: h.id.as_str(),
        content_hash: &h.content_hash,
        debit_account_id: h.debit_account_id.as_str(),
        credit_account_id: h.credit_account_id.as_str(),
        currency: h.amount.currency().code(),
        amount: h.amount.minor(),
        state: h.state.as_str(),
        posted_amount: h.posted_amount.minor(),
        posting_transaction_id: h.posting_transaction_id.as_ref().map(TransactionId::as_str),
        expires_at: h.expires_at,
        metadata: metadata_text(h.metadata.as_ref()),
        created_at: h.created_at,
        resolved_at: h.resolved_at,
    }
}

/// `SELECT <columns> FROM <the rows of one JSON parameter>`, the columns read by name.
fn select_rows(b: &mut SqlBuilder, backend: Backend, columns: &[(&str, JsonType)], rows: String) {
    let names: Vec<String> = columns
        .iter()
        .map(|(name, _)| format!("e.{name}"))
        .collect();
    b.push("SELECT ").push(&names.join(", ")).push(" FROM ");
    backend.json_rows(b, rows, columns);
}

/// Writes a whole batch with one call to the database.
///
/// Each kind of row travels as one JSON array parameter and is expanded by the database, so
/// the statement's text never changes and is prepared once per connection. The parts are
/// written once; only how they are joined differs. PostgreSQL runs them as one statement of
/// data-modifying CTEs whose final SELECT divides by zero when an account or hold update
/// missed its expected version, which aborts the statement and everything in it. SQLite runs
/// them as consecutive statements in one call inside the caller's write transaction, and the
/// total of changed rows tells whether every update hit.
pub(crate) async fn write_batch(
    conn: &mut AnyConnection,
    backend: Backend,
    write: &BatchWrite<'_>,
) -> Result<(), WriteError> {
    let transactions = json(write.transactions.iter().map(|(tx, hash)| TransactionRow {
        id: tx.id.as_str(),
        content_hash: hash,
        kind: tx.kind.as_str(),
        hold_id: tx.hold_id.as_ref().map(HoldId::as_str),
        description: tx.description.as_deref(),
        metadata: metadata_text(tx.metadata.as_ref()),
        posted_at: tx.posted_at,
    }));
    let postings = json(write.postings.iter().map(|p| PostingRow {
        account_id: p.account_id.as_str(),
        account_seq: p.account_seq,
        transaction_id: p.transaction_id.as_str(),
        leg: p.leg,
        amount: p.signed_minor(),
        currency: p.amount.currency().code(),
        balance_after: p.balance_after.minor(),
        posted_at: p.posted_at,
    }));
    let new_holds = json(write.new_holds.iter().map(|h| hold_row(h)));
    let changed_holds = json(write.changed_holds.iter().map(|h| hold_row(h)));
    let accounts = json(write.accounts.iter().map(|(a, next_version)| AccountRow {
        id: a.id.as_str(),
        version: a.version,
        next_version: *next_version,
        debits_posted: a.totals.debits_posted,
        credits_posted: a.totals.credits_posted,
        debits_pending: a.totals.debits_pending,
        credits_pending: a.totals.credits_pending,
        posting_count: a.posting_count,
        last_posted_at: a.last_posted_at,
    }));

    let mut b = SqlBuilder::new(backend, "");
    let mut parts = Parts::new(backend);
    parts.insert(
        &mut b,
        "wt",
        "INSERT INTO ledger_transactions \
        (id, content_hash, kind, hold_id, description, metadata, posted_at) ",
    );
    let columns = [
        ("id", Text),
        ("content_hash", Text),
        ("kind", Text),
        ("hold_id", Text),
        ("description", Text),
        ("metadata", Text),
        ("posted_at", BigInt),
    ];
    select_rows(&mut b, backend, &columns, transactions);
    parts.end_insert(&mut b);

    parts.insert(
        &mut b,
        "wp",
        &format!("INSERT INTO ledger_postings ({POSTING_COLUMNS}) "),
    );
    let columns = [
        ("account_id", Text),
        ("account_seq", BigInt),
        ("transaction_id", Text),
        ("leg", BigInt),
        ("amount", BigInt),
        ("currency", Text),
        ("balance_after", BigInt),
        ("posted_at", BigInt),
    ];
    select_rows(&mut b, backend, &columns, postings);
    parts.end_insert(&mut b);

    parts.insert(
        &mut b,
        "wh",
        &format!("INSERT INTO ledger_holds ({HOLD_COLUMNS}) "),
    );
    let columns = [
        ("id", Text),
        ("content_hash", Text),
        ("debit_account_id", Text),
        ("credit_account_id", Text),
        ("currency", Text),
        ("amount", BigInt),
        ("state", Text),
        ("posted_amount", BigInt),
        ("posting_transaction_id", Text),
        ("expires_at", BigInt),
        ("metadata", Text),
        ("created_at", BigInt),
        ("resolved_at", BigInt),
    ];
    select_rows(&mut b, backend, &columns, new_holds);
    parts.end_insert(&mut b);

    // Only a pending hold may be resolved, and only once.
    parts.values(&mut b, "vh");
    let columns = [
        ("id", Text),
        ("state", Text),
        ("posted_amount", BigInt),
        ("posting_transaction_id", Text),
        ("resolved_at", BigInt),
    ];
    select_rows(&mut b, backend, &columns, changed_holds);
    parts.update(
        &mut b,
        "uh",
        "vh",
        "ledger_holds",
        "UPDATE ledger_holds SET state = vh.state, posted_amount = vh.posted_amount, \
         posting_transaction_id = vh.posting_transaction_id, resolved_at = vh.resolved_at \
         FROM vh WHERE ledger_holds.id = vh.id AND ledger_holds.state = 'pending'",
    );

    parts.values(&mut b, "va");
    let columns = [
        ("id", Text),
        ("version", BigInt),
        ("next_version", BigInt),
        ("debits_posted", BigInt),
        ("credits_posted", BigInt),
        ("debits_pending", BigInt),
        ("credits_pending", BigInt),
        ("posting_count", BigInt),
        ("last_posted_at", BigInt),
    ];
    select_rows(&mut b, backend, &columns, accounts);
    parts.update(
        &mut b,
        "ua",
        "va",
        "ledger_accounts",
        "UPDATE ledger_accounts SET debits_posted = va.debits_posted, \
         credits_posted = va.credits_posted, debits_pending = va.debits_pending, \
         credits_pending = va.credits_pending, posting_count = va.posting_count, \
         last_posted_at = va.last_posted_at, version = va.next_version \
         FROM va WHERE ledger_accounts.id = va.id AND ledger_accounts.version = va.version",
    );
    let expected_rows = write.transactions.len()
        + write.postings.len()
        + write.new_holds.len()
        + write.changed_holds.len()
        + write.accounts.len();
    parts.run(conn, b, expected_rows as u64).await
}

/// Joins the parts of a batch write in the backend's way (see [`write_batch`]).
struct Parts {
    backend: Backend,
    count: usize,
    /// For PostgreSQL: each guarded update and the VALUES it must have changed entirely.
    guards: Vec<(&'static str, &'static str)>,
}

impl Parts {
    fn new(backend: Backend) -> Parts {
        Parts {
            backend,
            count: 0,
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
    fn insert(&mut self, b: &mut SqlBuilder, name: &str, head: &str) {
        self.separate(b);
        if self.backend == Backend::Postgres {
            b.push(name).push(" AS (");
        }
        b.push(head);
    }

    fn end_insert(&mut self, b: &mut SqlBuilder) {
        if self.backend == Backend::Postgres {
            b.push(" RETURNING 1)");
        }
    }

    /// Starts the named row set that a following update reads.
    fn values(&mut self, b: &mut SqlBuilder, name: &str) {
        self.separate(b);
        if self.backend == Backend::Sqlite {
            b.push("WITH ");
        }
        b.push(name).push(" AS (");
    }

    /// Closes the row set and adds the update of `table` that reads it, which must change one
    /// row per row of the set. `update` ends in its WHERE clause.
    ///
    /// On PostgreSQL the rows are first locked in id order by a CTE that the update waits
    /// for (an uncorrelated condition runs once, before the update's scan). The update's own
    /// join would lock them in whatever order its plan visits them, and two batches locking
    /// the same rows in different orders deadlock; every other lock the ledger takes is in
    /// id order too.
    fn update(
        &mut self,
        b: &mut SqlBuilder,
        name: &'static str,
        rows: &'static str,
        table: &str,
        update: &str,
    ) {
        match self.backend {
            Backend::Postgres => {
                b.push("), ")
                    .push(&format!(
                        "{name}_lock AS (SELECT id FROM {table} \
                         WHERE id IN (SELECT id FROM {rows}) ORDER BY id FOR UPDATE), "
                    ))
                    .push(name)
                    .push(" AS (")
                    .push(update)
                    .push(&format!(
                        " AND (SELECT COUNT(*) FROM {name}_lock) >= 0 RETURNING 1)"
                    ));
                self.guards.push((name, rows));
            }
            Backend::Sqlite => {
                b.push(") ").push(update);
            }
        }
    }

    async fn run(
        self,
        conn: &mut AnyConnection,
        mut b: SqlBuilder,
        expected_rows: u64,
    ) -> Result<(), WriteError> {
        match self.backend {
            Backend::Postgres => {
                // Every guarded update must have changed exactly its rows, or the division
                // by zero aborts the statement, and with it every insert and update in it.
                b.push(" SELECT 1 / (CASE WHEN TRUE");
                for (name, rows) in &self.guards {
                    b.push(&format!(
                        " AND (SELECT COUNT(*) FROM {name}) = (SELECT COUNT(*) FROM {rows})"
                    ));
                }
                b.push(" THEN 1 ELSE 0 END)");
                match fetch_all_prepared(conn, b).await {
                    Ok(_) => Ok(()),
                    Err(error) if is_conflict(&error) => Err(WriteError::Conflict),
                    Err(error) => Err(WriteError::Database(error)),
                }
            }
            Backend::Sqlite => match execute_prepared(conn, b).await {
                Ok(changed) if changed == expected_rows => Ok(()),
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

/// The sums of an account's debit and credit postings (both positive) posted in `[from, to)`,
/// leaving out the transactions whose id starts with `excluded_prefix`. The prefix is compared
/// with `substr`, for the reason [`accounts_by_code_prefix`] gives. The time range uses the
/// index on `(account_id, posted_at)`.
pub(crate) async fn flows_between(
    conn: &mut AnyConnection,
    backend: Backend,
    account_id: &AccountId,
    from: Micros,
    to: Micros,
    excluded_prefix: &str,
) -> Result<(i64, i64), sqlx::Error> {
    let mut b = SqlBuilder::new(
        backend,
        "SELECT CAST(COALESCE(SUM(CASE WHEN amount > 0 THEN amount ELSE 0 END), 0) AS BIGINT) \
         AS debits, CAST(COALESCE(SUM(CASE WHEN amount < 0 THEN -amount ELSE 0 END), 0) AS \
         BIGINT) AS credits FROM ledger_postings WHERE account_id = ",
    );
    b.bind(account_id.to_string())
        .push(" AND posted_at >= ")
        .bind(from)
        .push(" AND posted_at < ")
        .bind(to)
        .push(" AND substr(transaction_id, 1, length(")
        .bind(excluded_prefix.to_owned())
        .push(")) <> ")
        .bind(excluded_prefix.to_owned());
    let rows = fetch_all_prepared(conn, b).await?;
    let row = rows.first().ok_or(sqlx::Error::RowNotFound)?;
    Ok((row.try_get("debits")?, row.try_get("credits")?))
}

/// The sum of the posted balances, on each account's normal side, that the accounts whose code
/// starts with `prefix` and ends with `suffix` had at `at` (their last posting at or before
/// it); an account without postings by then counts 0. One statement, read from the index on
/// `(account_id, posted_at)`; codes are compared with `substr`, for the reason
/// [`accounts_by_code_prefix`] gives.
pub(crate) async fn sum_balances_at(
    conn: &mut AnyConnection,
    backend: Backend,
    prefix: &str,
    suffix: &str,
    at: Micros,
) -> Result<i64, sqlx::Error> {
    let mut b = SqlBuilder::new(
        backend,
        "SELECT CAST(COALESCE(SUM(p.balance_after), 0) AS BIGINT) AS total FROM ledger_postings p \
         JOIN (SELECT q.account_id, MAX(q.account_seq) AS seq FROM ledger_postings q \
         JOIN ledger_accounts a ON a.id = q.account_id WHERE substr(a.code, 1, length(",
    );
    b.bind(prefix.to_owned())
        .push(")) = ")
        .bind(prefix.to_owned())
        .push(" AND substr(a.code, length(a.code) - length(")
        .bind(suffix.to_owned())
        .push(") + 1) = ")
        .bind(suffix.to_owned())
        .push(" AND q.posted_at <= ")
        .bind(at)
        .push(
            " GROUP BY q.account_id) last \
             ON p.account_id = last.account_id AND p.account_seq = last.seq",
        );
    let rows = fetch_all_prepared(conn, b).await?;
    let row = rows.first().ok_or(sqlx::Error::RowNotFound)?;
    row.try_get("total")
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
