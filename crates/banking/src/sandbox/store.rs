//! Every SQL statement of the sandbox bank. Each move of money is one write transaction that
//! checks, moves, writes both statement lines and records the transfer under its key, so a
//! transfer is either wholly executed and recorded or not at all.
//!
//! The sandbox keeps a SQLite file in its data directory, and nothing else: it stands in for a
//! bank on one machine. It uses `storage::Db` for the connection settings (WAL, durable commits,
//! `BEGIN IMMEDIATE` for writers) but its own migrations.

use std::path::Path;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use storage::{Backend, DatabaseUrl, Db, SqlBuilder};

use crate::account::{AccountNumber, BankAccount, BankCode, HolderName, PayerNumber};
use crate::error::RefusalCode;
use crate::gateway::{EntryDirection, TransferKind};
use crate::kst;
use crate::sandbox::SandboxError;
use crate::wire;

/// The sandbox's schema, applied when it opens its data directory.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./sandbox_migrations");

/// The database file inside the data directory.
pub const DB_FILE: &str = "sandbox-bank.db";
/// Connections to the sandbox's database; SQLite has one writer, a few readers suffice.
const POOL_SIZE: u32 = 4;

/// `tran_type` of a transfer through the API.
const TRAN_TYPE_TRANSFER: &str = "이체";
/// `tran_type` of a cash deposit at the counter.
const TRAN_TYPE_CASH: &str = "현금";

#[derive(Debug, Clone)]
pub(crate) struct Store {
    db: Db,
}

#[derive(Debug, Clone)]
pub(crate) struct AccountRow {
    pub bank_code: String,
    pub account_num: String,
    pub holder_name: String,
    pub balance: i64,
    pub is_master: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct EntryRow {
    pub id: i64,
    pub tran_at: i64,
    pub direction: EntryDirection,
    pub tran_type: String,
    pub amount: i64,
    pub balance_after: i64,
    pub print_content: String,
    pub bank_tran_id: Option<String>,
}

/// A collect or payout as the bank recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransferRecord {
    pub kind: TransferKind,
    pub bank_code: String,
    pub account_num: String,
    pub payer_num: Option<String>,
    pub amount: i64,
    /// `000` when executed, otherwise the refusal's code.
    pub bank_rsp_code: String,
    pub bank_rsp_message: String,
    pub processed_at: i64,
}

/// A collect or payout to execute.
#[derive(Debug, Clone)]
pub(crate) struct TransferCommand {
    pub kind: TransferKind,
    /// The bank day of the request's `tran_dtime`, `yyyyMMdd`: with the id, the record's key.
    pub tran_date: String,
    pub bank_tran_id: String,
    /// The member's account (collect) or the recipient's (payout).
    pub account: BankAccount,
    /// Collects only.
    pub payer_number: Option<PayerNumber>,
    pub amount: i64,
    /// Printed on `account`.
    pub account_memo: String,
    /// Printed on the master account.
    pub master_memo: String,
    /// An injected `error` fault: refuse with `bank_system_error` without looking further.
    pub inject_error: bool,
}

/// What became of a transfer command.
#[derive(Debug, Clone)]
pub(crate) enum Executed {
    /// Processed now or earlier under the same key with the same content: the record.
    Recorded(TransferRecord),
    /// The key was used earlier for a different transfer; nothing was recorded.
    Duplicate,
}

/// Why an admin account could not be opened.
#[derive(Debug)]
pub(crate) enum OpenAccountError {
    /// The account exists with another holder or balance.
    Exists,
    Storage(sqlx::Error),
}

impl From<sqlx::Error> for OpenAccountError {
    fn from(error: sqlx::Error) -> Self {
        OpenAccountError::Storage(error)
    }
}

/// Which statement lines a statement query wants.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StatementFilter<'a> {
    pub account: &'a BankAccount,
    pub from_date: &'a str,
    pub to_date: &'a str,
    pub direction: Option<EntryDirection>,
    pub newest_first: bool,
    /// The id of the last line of the previous page.
    pub after_id: Option<i64>,
    pub limit: usize,
}

fn now_micros() -> i64 {
    kst::to_micros(time::OffsetDateTime::now_utc())
}

fn direction_str(direction: EntryDirection) -> &'static str {
    match direction {
        EntryDirection::Deposit => "in",
        EntryDirection::Withdrawal => "out",
    }
}

fn refusal_message(code: RefusalCode) -> &'static str {
    match code {
        RefusalCode::AccountNotFound => "no such account (계좌없음)",
        RefusalCode::InsufficientFunds => "insufficient balance (잔액부족)",
        RefusalCode::ConsentMissing => "no debit consent for this account (출금동의 없음)",
        RefusalCode::ConsentConflict => "the payer number is registered for another account",
        RefusalCode::DuplicateBankTranId => "bank_tran_id already used for another request today",
        RefusalCode::OriginalMismatch => "the inquiry does not match the recorded transfer",
        RefusalCode::NotPermitted => "the account may not be used for this request",
        RefusalCode::BankSystemError => "bank system error (injected)",
        RefusalCode::InvalidRequest
        | RefusalCode::BankUnreachable
        | RefusalCode::RequestRejected => "the request was refused",
    }
}

pub(crate) fn message_for(code: RefusalCode) -> String {
    refusal_message(code).to_owned()
}

fn account_row(row: &AnyRow) -> Result<AccountRow, sqlx::Error> {
    Ok(AccountRow {
        bank_code: row.try_get("bank_code")?,
        account_num: row.try_get("account_num")?,
        holder_name: row.try_get("holder_name")?,
        balance: row.try_get("balance")?,
        is_master: row.try_get::<i64, _>("is_master")? == 1,
    })
}

fn entry_row(row: &AnyRow) -> Result<EntryRow, sqlx::Error> {
    let direction: String = row.try_get("direction")?;
    Ok(EntryRow {
        id: row.try_get("id")?,
        tran_at: row.try_get("tran_at")?,
        direction: if direction == "in" {
            EntryDirection::Deposit
        } else {
            EntryDirection::Withdrawal
        },
        tran_type: row.try_get("tran_type")?,
        amount: row.try_get("amount")?,
        balance_after: row.try_get("balance_after")?,
        print_content: row.try_get("print_content")?,
        bank_tran_id: row.try_get("bank_tran_id")?,
    })
}

fn transfer_record(row: &AnyRow) -> Result<TransferRecord, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    Ok(TransferRecord {
        kind: if kind == "collect" {
            TransferKind::Collect
        } else {
            TransferKind::Payout
        },
        bank_code: row.try_get("bank_code")?,
        account_num: row.try_get("account_num")?,
        payer_num: row.try_get("payer_num")?,
        amount: row.try_get("amount")?,
        bank_rsp_code: row.try_get("bank_rsp_code")?,
        bank_rsp_message: row.try_get("bank_rsp_message")?,
        processed_at: row.try_get("processed_at")?,
    })
}

const ACCOUNT_COLUMNS: &str = "bank_code, account_num, holder_name, balance, is_master";
const ENTRY_COLUMNS: &str =
    "id, tran_at, direction, tran_type, amount, balance_after, print_content, bank_tran_id";
const TRANSFER_COLUMNS: &str = "kind, bank_code, account_num, payer_num, amount, bank_rsp_code, bank_rsp_message, processed_at";

impl Store {
    /// Opens (creating on first start) the database in `dir`, applies the sandbox's migrations
    /// and makes sure the master account exists and is the configured one.
    pub async fn open(
        dir: &Path,
        master: &BankAccount,
        master_holder: &HolderName,
        master_opening_balance: i64,
    ) -> Result<Store, SandboxError> {
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
        let store = Store { db };
        store
            .ensure_master(master, master_holder, master_opening_balance)
            .await?;
        Ok(store)
    }

    async fn ensure_master(
        &self,
        master: &BankAccount,
        holder: &HolderName,
        opening_balance: i64,
    ) -> Result<(), SandboxError> {
        let mut tx = self.db.begin_write().await?;
        let existing =
            sqlx::query("SELECT bank_code, account_num FROM accounts WHERE is_master = 1")
                .fetch_optional(&mut *tx)
                .await?;
        match existing {
            Some(row) => {
                let bank_code: String = row.try_get("bank_code")?;
                let account_num: String = row.try_get("account_num")?;
                if bank_code != master.bank_code.as_str()
                    || account_num != master.account_number.expose()
                {
                    return Err(SandboxError::MasterMismatch);
                }
            }
            None => {
                sqlx::query(
                    "INSERT INTO accounts (bank_code, account_num, holder_name, balance, is_master, created_at) \
                     VALUES (?, ?, ?, ?, 1, ?)",
                )
                .bind(master.bank_code.as_str().to_owned())
                .bind(master.account_number.expose().to_owned())
                .bind(holder.expose().to_owned())
                .bind(opening_balance)
                .bind(now_micros())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.db.close().await;
    }

    pub async fn account(&self, account: &BankAccount) -> Result<Option<AccountRow>, sqlx::Error> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE bank_code = ? AND account_num = ?"
        );
        sqlx::query(&sql)
            .bind(account.bank_code.as_str().to_owned())
            .bind(account.account_number.expose().to_owned())
            .fetch_optional(self.db.pool())
            .await?
            .as_ref()
            .map(account_row)
            .transpose()
    }

    pub async fn master(&self) -> Result<AccountRow, sqlx::Error> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE is_master = 1");
        let row = sqlx::query(&sql).fetch_one(self.db.pool()).await?;
        account_row(&row)
    }

    /// Opens an account. Opening it again with the same holder and balance returns it
    /// (`false`: not created now); anything else is `Exists`.
    pub async fn open_account(
        &self,
        account: &BankAccount,
        holder: &HolderName,
        balance: i64,
    ) -> Result<(AccountRow, bool), OpenAccountError> {
        let mut tx = self.db.begin_write().await?;
        let existing = select_account(&mut tx, account).await?;
        if let Some(existing) = existing {
            if existing.holder_name == holder.expose() && existing.balance == balance {
                return Ok((existing, false));
            }
            return Err(OpenAccountError::Exists);
        }
        sqlx::query(
            "INSERT INTO accounts (bank_code, account_num, holder_name, balance, is_master, created_at) \
             VALUES (?, ?, ?, ?, 0, ?)",
        )
        .bind(account.bank_code.as_str().to_owned())
        .bind(account.account_number.expose().to_owned())
        .bind(holder.expose().to_owned())
        .bind(balance)
        .bind(now_micros())
        .execute(&mut *tx)
        .await?;
        let created = select_account(&mut tx, account)
            .await?
            .expect("the account was inserted in this transaction");
        tx.commit().await?;
        Ok((created, true))
    }

    /// Pays cash into an account at the counter. `None` when there is no such account.
    pub async fn deposit_cash(
        &self,
        account: &BankAccount,
        amount: i64,
        memo: &str,
    ) -> Result<Option<EntryRow>, sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        let Some(row) = select_account(&mut tx, account).await? else {
            return Ok(None);
        };
        let at = now_micros();
        let entry_id = move_balance(
            &mut tx,
            Move {
                account,
                balance: row.balance,
                direction: EntryDirection::Deposit,
                amount,
                at,
                tran_type: TRAN_TYPE_CASH,
                memo,
                bank_tran_id: None,
            },
        )
        .await?;
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE id = ?");
        let entry = sqlx::query(&sql).bind(entry_id).fetch_one(&mut *tx).await?;
        let entry = entry_row(&entry)?;
        tx.commit().await?;
        Ok(Some(entry))
    }

    /// An account's latest statement lines, newest first.
    pub async fn recent_entries(
        &self,
        account: &BankAccount,
        limit: usize,
    ) -> Result<Vec<EntryRow>, sqlx::Error> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM entries WHERE bank_code = ? AND account_num = ? \
             ORDER BY id DESC LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(account.bank_code.as_str().to_owned())
            .bind(account.account_number.expose().to_owned())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(entry_row).collect()
    }

    /// Statement lines of one account between two bank days, one page at a time. Returns up to
    /// `limit + 1` lines, so that the caller sees whether another page follows.
    pub async fn statement(
        &self,
        filter: StatementFilter<'_>,
    ) -> Result<Vec<EntryRow>, sqlx::Error> {
        let mut sql = SqlBuilder::new(
            Backend::Sqlite,
            &format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE bank_code = "),
        );
        sql.bind(filter.account.bank_code.as_str().to_owned())
            .push(" AND account_num = ")
            .bind(filter.account.account_number.expose().to_owned())
            .push(" AND tran_date >= ")
            .bind(filter.from_date.to_owned())
            .push(" AND tran_date <= ")
            .bind(filter.to_date.to_owned());
        if let Some(direction) = filter.direction {
            sql.push(" AND direction = ").bind(direction_str(direction));
        }
        if let Some(after_id) = filter.after_id {
            sql.push(if filter.newest_first {
                " AND id < "
            } else {
                " AND id > "
            })
            .bind(after_id);
        }
        sql.push(if filter.newest_first {
            " ORDER BY id DESC LIMIT "
        } else {
            " ORDER BY id ASC LIMIT "
        })
        .bind(i64::try_from(filter.limit + 1).unwrap_or(i64::MAX));
        let (text, args) = sql.build();
        let rows = sqlx::query_with(&text, args)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(entry_row).collect()
    }

    /// Registers a debit consent; see `BankGateway::register_consent`.
    pub async fn register_consent(
        &self,
        payer: &PayerNumber,
        account: &BankAccount,
    ) -> Result<Result<(), RefusalCode>, sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        if select_account(&mut tx, account).await?.is_none() {
            return Ok(Err(RefusalCode::AccountNotFound));
        }
        let existing =
            sqlx::query("SELECT bank_code, account_num FROM consents WHERE payer_num = ?")
                .bind(payer.as_str().to_owned())
                .fetch_optional(&mut *tx)
                .await?;
        match existing {
            Some(row) => {
                let bank_code: String = row.try_get("bank_code")?;
                let account_num: String = row.try_get("account_num")?;
                if bank_code != account.bank_code.as_str()
                    || account_num != account.account_number.expose()
                {
                    return Ok(Err(RefusalCode::ConsentConflict));
                }
                sqlx::query(
                    "UPDATE consents SET active = 1, revoked_at = NULL WHERE payer_num = ? AND active = 0",
                )
                .bind(payer.as_str().to_owned())
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "INSERT INTO consents (payer_num, bank_code, account_num, active, registered_at) \
                     VALUES (?, ?, ?, 1, ?)",
                )
                .bind(payer.as_str().to_owned())
                .bind(account.bank_code.as_str().to_owned())
                .bind(account.account_number.expose().to_owned())
                .bind(now_micros())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Revokes a debit consent; see `BankGateway::revoke_consent`.
    pub async fn revoke_consent(
        &self,
        payer: &PayerNumber,
    ) -> Result<Result<(), RefusalCode>, sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        let known = sqlx::query("SELECT active FROM consents WHERE payer_num = ?")
            .bind(payer.as_str().to_owned())
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_none() {
            return Ok(Err(RefusalCode::ConsentMissing));
        }
        sqlx::query(
            "UPDATE consents SET active = 0, revoked_at = ? WHERE payer_num = ? AND active = 1",
        )
        .bind(now_micros())
        .bind(payer.as_str().to_owned())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// The transfer recorded under a key, if any.
    pub async fn transfer(
        &self,
        tran_date: &str,
        bank_tran_id: &str,
    ) -> Result<Option<TransferRecord>, sqlx::Error> {
        let sql = format!(
            "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE tran_date = ? AND bank_tran_id = ?"
        );
        sqlx::query(&sql)
            .bind(tran_date.to_owned())
            .bind(bank_tran_id.to_owned())
            .fetch_optional(self.db.pool())
            .await?
            .as_ref()
            .map(transfer_record)
            .transpose()
    }

    /// Executes a collect or payout, or answers from the record of an earlier one under the same
    /// key. Atomic: the checks, both balance changes, both statement lines and the record
    /// commit together. SQLite's `BEGIN IMMEDIATE` admits one writer at a time, so two requests
    /// with the same key cannot both find it free.
    pub async fn execute(&self, command: &TransferCommand) -> Result<Executed, sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!(
            "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE tran_date = ? AND bank_tran_id = ?"
        );
        let earlier = sqlx::query(&sql)
            .bind(command.tran_date.clone())
            .bind(command.bank_tran_id.clone())
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(earlier) = earlier {
            let earlier = transfer_record(&earlier)?;
            let same = earlier.kind == command.kind
                && earlier.bank_code == command.account.bank_code.as_str()
                && earlier.account_num == command.account.account_number.expose()
                && earlier.payer_num.as_deref()
                    == command.payer_number.as_ref().map(PayerNumber::as_str)
                && earlier.amount == command.amount;
            return Ok(if same {
                Executed::Recorded(earlier)
            } else {
                Executed::Duplicate
            });
        }

        let master = {
            let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE is_master = 1");
            account_row(&sqlx::query(&sql).fetch_one(&mut *tx).await?)?
        };
        let refusal = if command.inject_error {
            Some(RefusalCode::BankSystemError)
        } else {
            check_transfer(&mut tx, command, &master).await?
        };
        let at = now_micros();
        if refusal.is_none() {
            let counter = select_account(&mut tx, &command.account)
                .await?
                .expect("checked to exist in this transaction");
            let master_account = BankAccount::new(
                BankCode::parse(&master.bank_code).expect("stored bank codes are valid"),
                AccountNumber::parse(&master.account_num)
                    .expect("stored account numbers are valid"),
            );
            let id = Some(command.bank_tran_id.as_str());
            let counter_side = (
                &command.account,
                counter.balance,
                command.account_memo.as_str(),
            );
            let master_side = (
                &master_account,
                master.balance,
                command.master_memo.as_str(),
            );
            let (debit, credit) = match command.kind {
                TransferKind::Collect => (counter_side, master_side),
                TransferKind::Payout => (master_side, counter_side),
            };
            // The debited side first, so that its line comes first in the book.
            for ((account, balance, memo), direction) in [
                (debit, EntryDirection::Withdrawal),
                (credit, EntryDirection::Deposit),
            ] {
                move_balance(
                    &mut tx,
                    Move {
                        account,
                        balance,
                        direction,
                        amount: command.amount,
                        at,
                        tran_type: TRAN_TYPE_TRANSFER,
                        memo,
                        bank_tran_id: id,
                    },
                )
                .await?;
            }
        }
        let (code, message) = match refusal {
            None => (wire::BANK_RSP_OK.to_owned(), "정상처리".to_owned()),
            Some(code) => (
                wire::bank_rsp_code(code)
                    .expect("the sandbox refuses only with bank codes")
                    .to_owned(),
                message_for(code),
            ),
        };
        let record = TransferRecord {
            kind: command.kind,
            bank_code: command.account.bank_code.as_str().to_owned(),
            account_num: command.account.account_number.expose().to_owned(),
            payer_num: command.payer_number.as_ref().map(|p| p.as_str().to_owned()),
            amount: command.amount,
            bank_rsp_code: code,
            bank_rsp_message: message,
            processed_at: at,
        };
        sqlx::query(
            "INSERT INTO transfers (tran_date, bank_tran_id, kind, bank_code, account_num, payer_num, \
             amount, bank_rsp_code, bank_rsp_message, processed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(command.tran_date.clone())
        .bind(command.bank_tran_id.clone())
        .bind(command.kind.as_str())
        .bind(record.bank_code.clone())
        .bind(record.account_num.clone())
        .bind(record.payer_num.clone())
        .bind(record.amount)
        .bind(record.bank_rsp_code.clone())
        .bind(record.bank_rsp_message.clone())
        .bind(record.processed_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Executed::Recorded(record))
    }
}

async fn select_account(
    tx: &mut Transaction<'static, Any>,
    account: &BankAccount,
) -> Result<Option<AccountRow>, sqlx::Error> {
    let sql =
        format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE bank_code = ? AND account_num = ?");
    sqlx::query(&sql)
        .bind(account.bank_code.as_str().to_owned())
        .bind(account.account_number.expose().to_owned())
        .fetch_optional(&mut **tx)
        .await?
        .as_ref()
        .map(account_row)
        .transpose()
}

/// The reason a transfer must be refused, if any: the account must exist, a collect needs an
/// active consent for that very account, and the debited account must hold the amount.
async fn check_transfer(
    tx: &mut Transaction<'static, Any>,
    command: &TransferCommand,
    master: &AccountRow,
) -> Result<Option<RefusalCode>, sqlx::Error> {
    let Some(counter) = select_account(tx, &command.account).await? else {
        return Ok(Some(RefusalCode::AccountNotFound));
    };
    if counter.is_master {
        // Money from the master account to itself is not a transfer.
        return Ok(Some(RefusalCode::NotPermitted));
    }
    match command.kind {
        TransferKind::Collect => {
            let payer = command
                .payer_number
                .as_ref()
                .expect("a collect always carries a payer number");
            let consent = sqlx::query(
                "SELECT 1 AS found FROM consents WHERE payer_num = ? AND bank_code = ? \
                 AND account_num = ? AND active = 1",
            )
            .bind(payer.as_str().to_owned())
            .bind(command.account.bank_code.as_str().to_owned())
            .bind(command.account.account_number.expose().to_owned())
            .fetch_optional(&mut **tx)
            .await?;
            if consent.is_none() {
                return Ok(Some(RefusalCode::ConsentMissing));
            }
            if counter.balance < command.amount {
                return Ok(Some(RefusalCode::InsufficientFunds));
            }
        }
        TransferKind::Payout => {
            if master.balance < command.amount {
                return Ok(Some(RefusalCode::InsufficientFunds));
            }
        }
    }
    Ok(None)
}

/// One side of a move of money: an account, its balance as read in this transaction, and the
/// statement line to write.
struct Move<'a> {
    account: &'a BankAccount,
    balance: i64,
    direction: EntryDirection,
    amount: i64,
    at: i64,
    tran_type: &'a str,
    memo: &'a str,
    bank_tran_id: Option<&'a str>,
}

/// Changes one account's balance and writes its statement line; returns the line's id. The
/// caller has read the balance in this transaction and checked that a withdrawal is covered.
async fn move_balance(tx: &mut Transaction<'static, Any>, m: Move<'_>) -> Result<i64, sqlx::Error> {
    let Move {
        account,
        balance,
        direction,
        amount,
        at,
        tran_type,
        memo,
        bank_tran_id,
    } = m;
    // Withdrawals are checked against the balance before; a deposit could only overflow after
    // millions of maximal transfers into one account.
    let after = match direction {
        EntryDirection::Deposit => balance.checked_add(amount),
        EntryDirection::Withdrawal => balance.checked_sub(amount).filter(|b| *b >= 0),
    }
    .expect("a checked move keeps the balance between 0 and i64::MAX won");
    let updated = sqlx::query(
        "UPDATE accounts SET balance = ? WHERE bank_code = ? AND account_num = ? AND balance = ?",
    )
    .bind(after)
    .bind(account.bank_code.as_str().to_owned())
    .bind(account.account_number.expose().to_owned())
    .bind(balance)
    .execute(&mut **tx)
    .await?;
    assert_eq!(
        updated.rows_affected(),
        1,
        "the balance read in this write transaction changed under it"
    );
    let row = sqlx::query(
        "INSERT INTO entries (bank_code, account_num, tran_date, tran_at, direction, tran_type, \
         amount, balance_after, print_content, bank_tran_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         RETURNING id",
    )
    .bind(account.bank_code.as_str().to_owned())
    .bind(account.account_number.expose().to_owned())
    .bind(kst::format_date(kst::bank_date(kst::from_micros(at))))
    .bind(at)
    .bind(direction_str(direction))
    .bind(tran_type.to_owned())
    .bind(amount)
    .bind(after)
    .bind(memo.to_owned())
    .bind(bank_tran_id.map(str::to_owned))
    .fetch_one(&mut **tx)
    .await?;
    row.try_get("id")
}
