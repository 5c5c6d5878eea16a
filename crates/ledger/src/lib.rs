//! The double-entry ledger: accounts, journal transactions that balance per currency, holds,
//! balances now and at any past instant, and account history.
//!
//! Reads go straight to the database. Every write that moves money goes through the
//! [`committer`], which batches concurrent commands into one database transaction (group
//! commit) and applies them one by one with the pure [`engine`].

mod account;
mod check;
mod clock;
mod committer;
mod engine;
mod error;
mod hold;
mod id;
mod store;
mod transaction;

pub use account::{
    Account, AccountCode, AccountFlags, AccountKind, Balance, BalanceLimit, Direction, NewAccount,
    Totals, BALANCE_LIMITS_MAX, METADATA_BYTES_MAX,
};
pub use check::{check, CheckReport, Violation};
pub use clock::{Clock, ManualClock, Micros, SystemClock};
pub use committer::{WriterConfig, BATCH_SIZE_MAX_LIMIT, BATCH_WINDOW_LIMIT, WRITERS_LIMIT};
pub use engine::Outcome;
pub use error::LedgerError;
pub use hold::{Hold, HoldState, NewHold, PostHold};
pub use id::{AccountId, HoldId, TransactionId, ID_LEN_MAX};
pub use transaction::{
    NewTransaction, Posting, PostingSpec, Transaction, TransactionKind, DESCRIPTION_LEN_MAX,
    POSTINGS_MAX, POSTINGS_MIN,
};

use std::sync::Arc;

use money::{Currency, Money};
use storage::Db;
use tokio::task::JoinSet;

use committer::Committer;
use engine::Command;
use transaction::validate_metadata;

/// The largest page a list or history query returns.
pub const PAGE_SIZE_MAX: i64 = 500;
/// The most accounts one balance snapshot ([`Ledger::snapshot_by_code_prefix`]) reads.
pub const SNAPSHOT_ACCOUNTS_MAX: i64 = 1_000;

/// A page of results and the cursor for the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// The debits and credits an account saw over a time range, each a positive sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flows {
    pub debits: Money,
    pub credits: Money,
}

/// A write's result, and whether it was already stored by an earlier submission of the same
/// id and content (a replay changes nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct Committed<T> {
    pub value: T,
    pub replayed: bool,
}

impl<T> Committed<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Committed<U> {
        Committed {
            value: f(self.value),
            replayed: self.replayed,
        }
    }
}

/// The ledger service. Cheap to share behind an `Arc`.
pub struct Ledger {
    db: Db,
    clock: Arc<dyn Clock>,
    committer: Committer,
}

impl Ledger {
    /// Starts the writers. The database must be migrated.
    pub fn start(db: Db, clock: Arc<dyn Clock>, config: WriterConfig) -> Ledger {
        let committer = Committer::start(db.clone(), clock.clone(), config);
        Ledger {
            db,
            clock,
            committer,
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn now_micros(&self) -> Micros {
        self.clock.now_micros()
    }

    /// The clock the ledger stamps its writes with, so that services beside it (sessions,
    /// expiries) share one notion of time, and tests move them all at once.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Lets queued commands finish, then stops the writers.
    pub async fn shutdown(&self) {
        self.committer.shutdown().await;
    }

    /// Opens a service's own account by code, without metadata, and answers its id: what each
    /// service does on first use of the accounts it books to. Opening it again is a replay.
    pub async fn open_account(
        &self,
        code: &str,
        kind: AccountKind,
        currency: Currency,
        flags: AccountFlags,
    ) -> Result<AccountId, LedgerError> {
        let account = self
            .create_account(NewAccount {
                code: AccountCode::parse(code)?,
                kind,
                currency,
                flags,
                metadata: None,
            })
            .await?;
        Ok(account.id)
    }

    /// Opens an account. Opening the same code again with the same definition returns the
    /// existing account; a different definition is refused.
    pub async fn create_account(&self, new: NewAccount) -> Result<Account, LedgerError> {
        validate_metadata(new.metadata.as_ref())?;
        let mut conn = self.db.pool().acquire().await?;
        let id = AccountId::generate();
        let stored = store::insert_account(
            &mut conn,
            self.db.backend(),
            &id,
            &new,
            self.clock.now_micros(),
        )
        .await?;
        let same = stored.kind == new.kind
            && stored.currency == new.currency
            && stored.flags == new.flags
            && stored.metadata == new.metadata;
        if same {
            Ok(stored)
        } else {
            Err(LedgerError::ExistsWithDifferentContent {
                what: format!("account {}", new.code.as_str()),
            })
        }
    }

    pub async fn account(&self, id: &str) -> Result<Account, LedgerError> {
        let mut conn = self.db.pool().acquire().await?;
        store::account_by_id(&mut conn, self.db.backend(), id)
            .await?
            .ok_or_else(|| LedgerError::AccountNotFound(id.to_owned()))
    }

    pub async fn account_by_code(&self, code: &AccountCode) -> Result<Account, LedgerError> {
        let mut conn = self.db.pool().acquire().await?;
        store::account_by_code(&mut conn, self.db.backend(), code)
            .await?
            .ok_or_else(|| LedgerError::AccountNotFound(code.as_str().to_owned()))
    }

    /// Accounts in id order; the cursor is the last id of the previous page.
    pub async fn list_accounts(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Page<Account>, LedgerError> {
        let limit = limit.clamp(1, PAGE_SIZE_MAX);
        let mut conn = self.db.pool().acquire().await?;
        let mut items =
            store::list_accounts(&mut conn, self.db.backend(), after, limit + 1).await?;
        let next = next_cursor(&mut items, limit, |a| a.id.to_string());
        Ok(Page { items, next })
    }

    /// Accounts whose code starts with `prefix` (such as `liability:member:usr_…:`, every
    /// account of one member), in id order; the cursor is the last id of the previous page. The
    /// match is exact and case-sensitive: `_` and `%` are ordinary characters.
    pub async fn accounts_by_code_prefix(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Page<Account>, LedgerError> {
        check_code_prefix(prefix)?;
        let limit = limit.clamp(1, PAGE_SIZE_MAX);
        let mut conn = self.db.pool().acquire().await?;
        let mut items =
            store::accounts_by_code_prefix(&mut conn, self.db.backend(), prefix, after, limit + 1)
                .await?;
        let next = next_cursor(&mut items, limit, |a| a.id.to_string());
        Ok(Page { items, next })
    }

    /// Every account whose code starts with `prefix`, in id order, read by one statement: the
    /// balances are one consistent snapshot, so a transaction between two of them shows in both
    /// or in neither. `None` when more than [`SNAPSHOT_ACCOUNTS_MAX`] accounts match, because a
    /// snapshot that needs several pages would no longer be one.
    pub async fn snapshot_by_code_prefix(
        &self,
        prefix: &str,
    ) -> Result<Option<Vec<Account>>, LedgerError> {
        check_code_prefix(prefix)?;
        let mut conn = self.db.pool().acquire().await?;
        let accounts = store::accounts_by_code_prefix(
            &mut conn,
            self.db.backend(),
            prefix,
            None,
            SNAPSHOT_ACCOUNTS_MAX + 1,
        )
        .await?;
        Ok((accounts.len() as i64 <= SNAPSHOT_ACCOUNTS_MAX).then_some(accounts))
    }

    /// Posts a journal transaction. Resubmitting the same id and content returns the stored
    /// transaction; the same id with other content is refused.
    pub async fn post_transaction(
        &self,
        tx: NewTransaction,
    ) -> Result<Committed<Transaction>, LedgerError> {
        tx.validate()?;
        let committed = self.committer.submit(Command::Post(tx)).await?;
        Ok(committed.map(|outcome| match outcome {
            Outcome::Transaction(tx) => tx,
            other => unreachable!("posting a transaction answered {other:?}"),
        }))
    }

    pub async fn transaction(&self, id: &str) -> Result<Transaction, LedgerError> {
        let id = TransactionId::parse(id)
            .map_err(|_| LedgerError::TransactionNotFound(id.to_owned()))?;
        let mut conn = self.db.pool().acquire().await?;
        store::transactions_by_ids(&mut conn, self.db.backend(), std::slice::from_ref(&id))
            .await?
            .pop()
            .ok_or_else(|| LedgerError::TransactionNotFound(id.to_string()))
    }

    /// Reserves funds: the debit account's available balance drops now, the money moves when
    /// the hold is posted.
    pub async fn reserve_hold(&self, hold: NewHold) -> Result<Committed<Hold>, LedgerError> {
        hold.validate()?;
        let committed = self.committer.submit(Command::Reserve(hold)).await?;
        Ok(committed.map(|outcome| match outcome {
            Outcome::Hold(hold) => hold,
            other => unreachable!("reserving a hold answered {other:?}"),
        }))
    }

    /// Posts a hold, fully or partially; the unposted rest is released.
    pub async fn post_hold(
        &self,
        post: PostHold,
    ) -> Result<Committed<(Hold, Transaction)>, LedgerError> {
        let committed = self.committer.submit(Command::PostHold(post)).await?;
        Ok(committed.map(|outcome| match outcome {
            Outcome::HoldPosted(hold, tx) => (hold, tx),
            other => unreachable!("posting a hold answered {other:?}"),
        }))
    }

    /// Releases a hold without moving money.
    pub async fn void_hold(&self, id: HoldId) -> Result<Committed<Hold>, LedgerError> {
        let committed = self.committer.submit(Command::VoidHold(id)).await?;
        Ok(committed.map(|outcome| match outcome {
            Outcome::Hold(hold) => hold,
            other => unreachable!("voiding a hold answered {other:?}"),
        }))
    }

    pub async fn hold(&self, id: &str) -> Result<Hold, LedgerError> {
        let id = HoldId::parse(id).map_err(|_| LedgerError::HoldNotFound(id.to_owned()))?;
        let mut conn = self.db.pool().acquire().await?;
        store::hold_by_id(&mut conn, self.db.backend(), &id)
            .await?
            .ok_or_else(|| LedgerError::HoldNotFound(id.to_string()))
    }

    /// Expires up to `limit` pending holds whose time has passed; returns how many expired.
    pub async fn expire_due_holds(&self, limit: i64) -> Result<usize, LedgerError> {
        let due = {
            let mut conn = self.db.pool().acquire().await?;
            store::due_holds(
                &mut conn,
                self.db.backend(),
                self.clock.now_micros(),
                limit.clamp(1, PAGE_SIZE_MAX),
            )
            .await?
        };
        let mut tasks = JoinSet::new();
        for id in due {
            tasks.spawn(self.committer.submitter().submit(Command::ExpireHold(id)));
        }
        let mut expired = 0;
        while let Some(result) = tasks.join_next().await {
            if let Ok(Ok(Committed {
                value: Outcome::Hold(hold),
                replayed: false,
            })) = result
            {
                expired += usize::from(hold.state == HoldState::Expired);
            }
        }
        Ok(expired)
    }

    /// The current balance: posted, held, incoming and available.
    pub async fn balance(&self, id: &str) -> Result<Balance, LedgerError> {
        self.account(id).await?.balance()
    }

    /// The posted balance as it was at `at` (microseconds since the epoch).
    pub async fn balance_at(&self, id: &str, at: Micros) -> Result<Money, LedgerError> {
        let account = self.account(id).await?;
        let mut conn = self.db.pool().acquire().await?;
        let minor = store::balance_after_at(&mut conn, self.db.backend(), &account.id, at)
            .await?
            .unwrap_or(0);
        Ok(Money::from_minor(minor, account.currency))
    }

    /// The total posted balance, on their normal side, of every account whose code starts
    /// with `prefix` and ends with `suffix` (such as `liability:member:` and `:money:KRW`, all
    /// members' money), as it was at `at` (microseconds since the epoch, inclusive). The
    /// accounts must share one currency for the sum to mean anything; the suffix is how a
    /// caller says which. Both must be valid code fragments.
    pub async fn sum_balances_at(
        &self,
        prefix: &str,
        suffix: &str,
        at: Micros,
    ) -> Result<i64, LedgerError> {
        for (field, fragment) in [("code_prefix", prefix), ("code_suffix", suffix)] {
            AccountCode::parse(fragment).map_err(|_| LedgerError::InvalidField {
                field,
                reason: "must be 1 to 128 characters of letters, digits, '_', '.', ':' and '-'",
            })?;
        }
        let mut conn = self.db.pool().acquire().await?;
        Ok(store::sum_balances_at(&mut conn, self.db.backend(), prefix, suffix, at).await?)
    }

    /// What an account received and gave in `[from, to)` (posting times, microseconds), as
    /// positive sums of its debits and credits, leaving out transactions whose id starts with
    /// `excluded_prefix` (a service's own bookings, such as settlement's `stl_` transactions,
    /// when it measures everything else). The prefix must be non-empty.
    pub async fn flows(
        &self,
        id: &str,
        from: Micros,
        to: Micros,
        excluded_prefix: &str,
    ) -> Result<Flows, LedgerError> {
        if excluded_prefix.is_empty() {
            return Err(LedgerError::InvalidField {
                field: "excluded_prefix",
                reason: "must not be empty",
            });
        }
        let account = self.account(id).await?;
        let mut conn = self.db.pool().acquire().await?;
        let (debits, credits) = store::flows_between(
            &mut conn,
            self.db.backend(),
            &account.id,
            from,
            to,
            excluded_prefix,
        )
        .await?;
        Ok(Flows {
            debits: Money::from_minor(debits, account.currency),
            credits: Money::from_minor(credits, account.currency),
        })
    }

    /// An account's postings, newest first, each with the balance right after it. The cursor
    /// is the sequence number of the last posting of the previous page.
    pub async fn history(
        &self,
        id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Page<Posting>, LedgerError> {
        let account = self.account(id).await?;
        let limit = limit.clamp(1, PAGE_SIZE_MAX);
        let mut conn = self.db.pool().acquire().await?;
        let mut items =
            store::history(&mut conn, self.db.backend(), &account.id, before, limit + 1).await?;
        let next = next_cursor(&mut items, limit, |p| p.account_seq.to_string());
        Ok(Page { items, next })
    }
}

/// Trims a page fetched with one extra row and returns the cursor if there is more.
fn next_cursor<T>(items: &mut Vec<T>, limit: i64, cursor: impl Fn(&T) -> String) -> Option<String> {
    let limit = usize::try_from(limit).expect("limit is clamped positive");
    if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor)
    } else {
        None
    }
}

/// A code prefix must itself look like the start of a code, so that a typo is refused rather
/// than matching nothing.
fn check_code_prefix(prefix: &str) -> Result<(), LedgerError> {
    AccountCode::parse(prefix)
        .map(|_| ())
        .map_err(|_| LedgerError::InvalidField {
            field: "code_prefix",
            reason: "must be 1 to 128 characters of letters, digits, '_', '.', ':' and '-'",
        })
}
