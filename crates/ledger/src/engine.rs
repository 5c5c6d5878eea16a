//! The pure core of the writer: applies a batch of commands, one at a time and in order, to
//! the state of the accounts and holds they touch, as read under lock. It does no I/O, so the
//! rules of the ledger can be tested without a database.
//!
//! Each command either applies in full or is rejected with nothing changed, so one rejected
//! command never fails the others in its batch.

use std::collections::{HashMap, HashSet};

use money::{Currency, Money};

use crate::account::{AccountFlags, AccountKind, BalanceLimit, Direction, Totals};
use crate::clock::Micros;
use crate::hold::{Hold, HoldState, NewHold, PostHold};
use crate::transaction::{NewTransaction, Posting, PostingSpec, Transaction, TransactionKind};
use crate::{AccountId, HoldId, LedgerError, TransactionId};

/// A request to the writer.
#[derive(Debug, Clone)]
pub enum Command {
    Post(NewTransaction),
    Reserve(NewHold),
    PostHold(PostHold),
    VoidHold(HoldId),
    ExpireHold(HoldId),
}

/// What an accepted command produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Transaction(Transaction),
    Hold(Hold),
    HoldPosted(Hold, Transaction),
}

impl Command {
    /// The transaction id the command would create, if any; used to find earlier submissions.
    pub(crate) fn transaction_id(&self) -> Option<TransactionId> {
        match self {
            Command::Post(tx) => Some(tx.id.clone()),
            Command::PostHold(post) => Some(post.transaction_id()),
            Command::Reserve(_) | Command::VoidHold(_) | Command::ExpireHold(_) => None,
        }
    }

    /// The hold the command creates or resolves, if any.
    pub(crate) fn hold_id(&self) -> Option<&HoldId> {
        match self {
            Command::Reserve(hold) => Some(&hold.id),
            Command::PostHold(post) => Some(&post.hold_id),
            Command::VoidHold(id) | Command::ExpireHold(id) => Some(id),
            Command::Post(_) => None,
        }
    }

    /// The accounts named directly by the command (holds add theirs once loaded).
    pub(crate) fn account_ids(&self) -> Vec<&AccountId> {
        match self {
            Command::Post(tx) => tx.postings.iter().map(|p| &p.account_id).collect(),
            Command::Reserve(hold) => vec![&hold.debit_account_id, &hold.credit_account_id],
            Command::PostHold(_) | Command::VoidHold(_) | Command::ExpireHold(_) => Vec::new(),
        }
    }
}

/// An account as the writer sees it while it holds the account's lock.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountState {
    pub id: AccountId,
    pub kind: AccountKind,
    pub currency: Currency,
    pub flags: AccountFlags,
    pub totals: Totals,
    pub posting_count: i64,
    pub last_posted_at: Micros,
    /// The version read; the write is conditional on it still being current.
    pub version: i64,
}

impl AccountState {
    fn check_currency(&self, currency: Currency) -> Result<(), LedgerError> {
        if self.currency == currency {
            Ok(())
        } else {
            Err(LedgerError::CurrencyMismatch {
                account_id: self.id.to_string(),
                account_currency: self.currency.code(),
                currency: currency.code(),
            })
        }
    }

    /// Rejects a state whose available balance is negative when the account forbids it.
    fn check_not_negative(&self) -> Result<(), LedgerError> {
        if self.flags.contains(AccountFlags::MUST_NOT_GO_NEGATIVE)
            && self.totals.available(self.kind)? < 0
        {
            return Err(LedgerError::InsufficientFunds {
                account_id: self.id.to_string(),
            });
        }
        Ok(())
    }

    /// Rejects a state above a command's ceiling for this account.
    fn check_limit(&self, limit: &BalanceLimit) -> Result<(), LedgerError> {
        self.check_currency(limit.max.currency())?;
        if self.totals.ceiling_balance(self.kind)? > limit.max.minor() {
            return Err(LedgerError::BalanceLimitExceeded {
                account_id: self.id.to_string(),
            });
        }
        Ok(())
    }

    fn add_posted(&mut self, direction: Direction, minor: i64) -> Result<(), LedgerError> {
        let total = match direction {
            Direction::Debit => &mut self.totals.debits_posted,
            Direction::Credit => &mut self.totals.credits_posted,
        };
        *total = total
            .checked_add(minor)
            .ok_or(LedgerError::AmountOutOfRange)?;
        Ok(())
    }

    /// Adds `delta` (negative to release) to the pending total on `direction`'s side.
    fn add_pending(&mut self, direction: Direction, delta: i64) -> Result<(), LedgerError> {
        let total = match direction {
            Direction::Debit => &mut self.totals.debits_pending,
            Direction::Credit => &mut self.totals.credits_pending,
        };
        *total = total
            .checked_add(delta)
            .ok_or(LedgerError::AmountOutOfRange)?;
        assert!(*total >= 0, "pending total of {} went negative", self.id);
        Ok(())
    }
}

/// How the engine knows about a transaction id that was used before.
#[derive(Debug, Clone)]
pub(crate) enum KnownTransaction {
    /// Stored by an earlier batch; its content digest.
    Stored { content_hash: String },
    /// Written earlier in this batch.
    InBatch {
        content_hash: String,
        outcome: Box<Outcome>,
    },
}

/// The result of applying one command.
#[derive(Debug)]
pub(crate) enum Applied {
    /// New effects, to be written with the batch.
    New(Outcome),
    /// The same content was stored by an earlier batch: answer with the stored result.
    ReplayStoredTransaction(TransactionId),
    ReplayStoredHold(HoldId),
    /// The same content earlier in this batch: answer with its result.
    ReplayInBatch(Outcome),
}

/// The rows a batch will write, accumulated as commands are accepted.
#[derive(Debug, Default)]
pub(crate) struct Writes {
    pub transactions: Vec<(Transaction, String)>,
    pub postings: Vec<Posting>,
    pub new_holds: Vec<HoldId>,
    pub changed_holds: Vec<HoldId>,
}

/// The state one batch works on.
pub(crate) struct Batch {
    pub accounts: HashMap<AccountId, AccountState>,
    pub holds: HashMap<HoldId, Hold>,
    pub known: HashMap<TransactionId, KnownTransaction>,
    pub writes: Writes,
    pub touched: HashSet<AccountId>,
    pub now: Micros,
}

impl Batch {
    pub fn new(
        accounts: HashMap<AccountId, AccountState>,
        holds: HashMap<HoldId, Hold>,
        stored_hashes: HashMap<TransactionId, String>,
        clock_now: Micros,
    ) -> Batch {
        // Postings of one account never carry an earlier time than the ones before them, so
        // that "balance at T" is the balance after the last posting at or before T.
        let now = accounts
            .values()
            .map(|a| a.last_posted_at)
            .fold(clock_now, i64::max);
        let known = stored_hashes
            .into_iter()
            .map(|(id, content_hash)| (id, KnownTransaction::Stored { content_hash }))
            .collect();
        Batch {
            accounts,
            holds,
            known,
            writes: Writes::default(),
            touched: HashSet::new(),
            now,
        }
    }

    /// Applies one command in full, or rejects it and leaves every state as it was.
    pub fn apply(&mut self, command: &Command) -> Result<Applied, LedgerError> {
        match command {
            Command::Post(tx) => self.post(tx),
            Command::Reserve(hold) => self.reserve(hold),
            Command::PostHold(post) => self.post_hold(post),
            Command::VoidHold(id) => self.release_hold(id, HoldState::Voided),
            Command::ExpireHold(id) => self.release_hold(id, HoldState::Expired),
        }
    }

    /// Looks up an earlier use of a transaction id: the same content is a replay, other
    /// content is refused.
    fn earlier_use(
        &self,
        id: &TransactionId,
        content_hash: &str,
    ) -> Result<Option<Applied>, LedgerError> {
        let different = || LedgerError::ExistsWithDifferentContent {
            what: format!("transaction {id}"),
        };
        match self.known.get(id) {
            None => Ok(None),
            Some(KnownTransaction::Stored { content_hash: h }) if h == content_hash => {
                Ok(Some(Applied::ReplayStoredTransaction(id.clone())))
            }
            Some(KnownTransaction::InBatch {
                content_hash: h,
                outcome,
            }) if h == content_hash => Ok(Some(Applied::ReplayInBatch(outcome.as_ref().clone()))),
            Some(_) => Err(different()),
        }
    }

    fn account(&self, id: &AccountId) -> Result<&AccountState, LedgerError> {
        self.accounts
            .get(id)
            .ok_or_else(|| LedgerError::AccountNotFound(id.to_string()))
    }

    fn post(&mut self, tx: &NewTransaction) -> Result<Applied, LedgerError> {
        tx.validate()?;
        let content_hash = tx.content_hash();
        if let Some(replay) = self.earlier_use(&tx.id, &content_hash)? {
            return Ok(replay);
        }
        let mut staged = self.stage(tx.postings.iter().map(|p| &p.account_id))?;
        let postings = self.legs(&mut staged, &tx.id, &tx.postings)?;
        check_limits(&staged, &tx.balance_limits)?;
        let transaction = Transaction {
            id: tx.id.clone(),
            kind: TransactionKind::Journal,
            hold_id: None,
            description: tx.description.clone(),
            metadata: tx.metadata.clone(),
            posted_at: self.now,
            postings,
        };
        self.commit_accounts(staged);
        let outcome = Outcome::Transaction(transaction.clone());
        self.record_transaction(transaction, content_hash, outcome.clone());
        Ok(Applied::New(outcome))
    }

    /// Copies the named accounts so that a command can change them and be rolled back by
    /// simply dropping the copies.
    fn stage<'a>(
        &self,
        ids: impl Iterator<Item = &'a AccountId>,
    ) -> Result<HashMap<AccountId, AccountState>, LedgerError> {
        let mut staged = HashMap::new();
        for id in ids {
            if !staged.contains_key(id) {
                staged.insert(id.clone(), self.account(id)?.clone());
            }
        }
        Ok(staged)
    }

    /// Applies legs to staged accounts and returns the postings they produce.
    fn legs(
        &self,
        staged: &mut HashMap<AccountId, AccountState>,
        transaction_id: &TransactionId,
        specs: &[PostingSpec],
    ) -> Result<Vec<Posting>, LedgerError> {
        let mut postings = Vec::with_capacity(specs.len());
        for (leg, spec) in specs.iter().enumerate() {
            let account = staged
                .get_mut(&spec.account_id)
                .expect("every leg's account was staged");
            account.check_currency(spec.amount.currency())?;
            account.add_posted(spec.direction, spec.amount.minor())?;
            account.posting_count += 1;
            postings.push(Posting {
                account_id: spec.account_id.clone(),
                account_seq: account.posting_count,
                transaction_id: transaction_id.clone(),
                leg: i32::try_from(leg).expect("leg count is bounded by POSTINGS_MAX"),
                direction: spec.direction,
                amount: spec.amount,
                balance_after: Money::from_minor(
                    account.totals.posted(account.kind)?,
                    account.currency,
                ),
                posted_at: self.now,
            });
        }
        for account in staged.values() {
            account.check_not_negative()?;
        }
        Ok(postings)
    }

    fn commit_accounts(&mut self, staged: HashMap<AccountId, AccountState>) {
        for (id, mut state) in staged {
            state.last_posted_at = self.now;
            self.touched.insert(id.clone());
            self.accounts.insert(id, state);
        }
    }

    fn record_transaction(&mut self, tx: Transaction, content_hash: String, outcome: Outcome) {
        self.writes.postings.extend(tx.postings.iter().cloned());
        self.known.insert(
            tx.id.clone(),
            KnownTransaction::InBatch {
                content_hash: content_hash.clone(),
                outcome: Box::new(outcome),
            },
        );
        self.writes.transactions.push((tx, content_hash));
    }

    fn reserve(&mut self, new: &NewHold) -> Result<Applied, LedgerError> {
        new.validate()?;
        let content_hash = new.content_hash();
        if let Some(existing) = self.holds.get(&new.id) {
            return if existing.content_hash == content_hash {
                if self.writes.new_holds.contains(&new.id) {
                    Ok(Applied::ReplayInBatch(Outcome::Hold(existing.clone())))
                } else {
                    Ok(Applied::ReplayStoredHold(new.id.clone()))
                }
            } else {
                Err(LedgerError::ExistsWithDifferentContent {
                    what: format!("hold {}", new.id),
                })
            };
        }
        if new.expires_at.is_some_and(|at| at <= self.now) {
            return Err(LedgerError::InvalidField {
                field: "expires_at",
                reason: "must be in the future",
            });
        }
        let ids = [&new.debit_account_id, &new.credit_account_id];
        let mut staged = self.stage(ids.into_iter())?;
        for (id, direction) in [
            (&new.debit_account_id, Direction::Debit),
            (&new.credit_account_id, Direction::Credit),
        ] {
            let account = staged.get_mut(id).expect("staged above");
            account.check_currency(new.amount.currency())?;
            account.add_pending(direction, new.amount.minor())?;
            account.check_not_negative()?;
        }
        check_limits(&staged, &new.balance_limits)?;
        let hold = Hold {
            id: new.id.clone(),
            debit_account_id: new.debit_account_id.clone(),
            credit_account_id: new.credit_account_id.clone(),
            amount: new.amount,
            state: HoldState::Pending,
            posted_amount: Money::zero(new.amount.currency()),
            posting_transaction_id: None,
            expires_at: new.expires_at,
            metadata: new.metadata.clone(),
            created_at: self.now,
            resolved_at: None,
            content_hash,
        };
        self.commit_pending(staged);
        self.holds.insert(hold.id.clone(), hold.clone());
        self.writes.new_holds.push(hold.id.clone());
        Ok(Applied::New(Outcome::Hold(hold)))
    }

    /// Commits staged accounts whose postings did not change (only pending totals moved).
    fn commit_pending(&mut self, staged: HashMap<AccountId, AccountState>) {
        for (id, state) in staged {
            self.touched.insert(id.clone());
            self.accounts.insert(id, state);
        }
    }

    fn hold(&self, id: &HoldId) -> Result<&Hold, LedgerError> {
        self.holds
            .get(id)
            .ok_or_else(|| LedgerError::HoldNotFound(id.to_string()))
    }

    fn post_hold(&mut self, post: &PostHold) -> Result<Applied, LedgerError> {
        let hold = self.hold(&post.hold_id)?.clone();
        let amount = post.amount.unwrap_or(hold.amount.minor());
        if amount <= 0 {
            return Err(LedgerError::AmountInvalid);
        }
        let transaction_id = post.transaction_id();
        let content_hash = hold_post_hash(&hold, amount);
        match hold.state {
            HoldState::Posted
                if hold.posted_amount.minor() == amount
                    && hold.posting_transaction_id.as_ref() == Some(&transaction_id) =>
            {
                return self
                    .earlier_use(&transaction_id, &content_hash)
                    .map(|replay| replay.expect("a posted hold's transaction is known"));
            }
            HoldState::Posted => return Err(LedgerError::HoldAlreadyPosted(hold.id.to_string())),
            HoldState::Voided => return Err(LedgerError::HoldAlreadyVoided(hold.id.to_string())),
            HoldState::Expired => return Err(LedgerError::HoldExpired(hold.id.to_string())),
            HoldState::Pending => {}
        }
        if hold.expires_at.is_some_and(|at| at <= self.now) {
            return Err(LedgerError::HoldExpired(hold.id.to_string()));
        }
        if amount > hold.amount.minor() {
            return Err(LedgerError::ExceedsHoldAmount(hold.id.to_string()));
        }
        if self.known.contains_key(&transaction_id) {
            return Err(LedgerError::ExistsWithDifferentContent {
                what: format!("transaction {transaction_id}"),
            });
        }
        let ids = [&hold.debit_account_id, &hold.credit_account_id];
        let mut staged = self.stage(ids.into_iter())?;
        release_pending(&mut staged, &hold)?;
        let money = Money::from_minor(amount, hold.amount.currency());
        let specs = [
            PostingSpec {
                account_id: hold.debit_account_id.clone(),
                direction: Direction::Debit,
                amount: money,
            },
            PostingSpec {
                account_id: hold.credit_account_id.clone(),
                direction: Direction::Credit,
                amount: money,
            },
        ];
        let postings = self.legs(&mut staged, &transaction_id, &specs)?;
        let transaction = Transaction {
            id: transaction_id.clone(),
            kind: TransactionKind::HoldPost,
            hold_id: Some(hold.id.clone()),
            description: None,
            metadata: None,
            posted_at: self.now,
            postings,
        };
        let mut resolved = hold;
        resolved.state = HoldState::Posted;
        resolved.posted_amount = money;
        resolved.posting_transaction_id = Some(transaction_id);
        resolved.resolved_at = Some(self.now);
        self.commit_accounts(staged);
        let outcome = Outcome::HoldPosted(resolved.clone(), transaction.clone());
        self.record_transaction(transaction, content_hash, outcome.clone());
        self.update_hold(resolved);
        Ok(Applied::New(outcome))
    }

    /// Voids or expires a pending hold, releasing its reservation on both accounts.
    fn release_hold(&mut self, id: &HoldId, target: HoldState) -> Result<Applied, LedgerError> {
        let hold = self.hold(id)?.clone();
        match (hold.state, target) {
            (HoldState::Pending, _) => {}
            (state, _) if state == target => return Ok(Applied::ReplayStoredHold(id.clone())),
            (HoldState::Posted, _) => return Err(LedgerError::HoldAlreadyPosted(id.to_string())),
            (HoldState::Voided, _) => return Err(LedgerError::HoldAlreadyVoided(id.to_string())),
            (HoldState::Expired, _) => return Err(LedgerError::HoldExpired(id.to_string())),
        }
        if target == HoldState::Expired && hold.expires_at.is_none_or(|at| at > self.now) {
            // Not due yet: expiry is a no-op that reports the hold as it is.
            return Ok(Applied::ReplayStoredHold(id.clone()));
        }
        let ids = [&hold.debit_account_id, &hold.credit_account_id];
        let mut staged = self.stage(ids.into_iter())?;
        release_pending(&mut staged, &hold)?;
        let mut resolved = hold;
        resolved.state = target;
        resolved.resolved_at = Some(self.now);
        self.commit_pending(staged);
        self.update_hold(resolved.clone());
        Ok(Applied::New(Outcome::Hold(resolved)))
    }

    fn update_hold(&mut self, hold: Hold) {
        if !self.writes.new_holds.contains(&hold.id)
            && !self.writes.changed_holds.contains(&hold.id)
        {
            self.writes.changed_holds.push(hold.id.clone());
        }
        self.holds.insert(hold.id.clone(), hold);
    }
}

/// Takes a pending hold's reservation off both of its accounts.
/// Checks a command's ceilings against its staged accounts. Validation made sure each limit
/// names one of them.
fn check_limits(
    staged: &HashMap<AccountId, AccountState>,
    limits: &[BalanceLimit],
) -> Result<(), LedgerError> {
    for limit in limits {
        staged
            .get(&limit.account_id)
            .expect("a limit names one of the command's accounts")
            .check_limit(limit)?;
    }
    Ok(())
}

fn release_pending(
    staged: &mut HashMap<AccountId, AccountState>,
    hold: &Hold,
) -> Result<(), LedgerError> {
    let amount = hold.amount.minor();
    staged
        .get_mut(&hold.debit_account_id)
        .expect("staged by the caller")
        .add_pending(Direction::Debit, -amount)?;
    staged
        .get_mut(&hold.credit_account_id)
        .expect("staged by the caller")
        .add_pending(Direction::Credit, -amount)
}

/// The digest of a hold's posting, so that resubmitting the same post is recognised.
fn hold_post_hash(hold: &Hold, amount: i64) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(b"hold_post\0");
    hasher.update(hold.id.as_str());
    hasher.update(b"\0");
    hasher.update(amount.to_be_bytes());
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod properties {
    //! Property tests of the engine alone: many random command sequences, no database.

    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    const ACCOUNTS: usize = 6;

    fn account_id(i: usize) -> AccountId {
        AccountId::from_db(format!("acc_{i}"))
    }

    /// Six accounts: two currencies; even ones guarded liabilities, odd ones free assets.
    fn accounts() -> HashMap<AccountId, AccountState> {
        (0..ACCOUNTS)
            .map(|i| {
                let state = AccountState {
                    id: account_id(i),
                    kind: if i % 2 == 0 {
                        AccountKind::Liability
                    } else {
                        AccountKind::Asset
                    },
                    currency: if i < 4 { Currency::KRW } else { Currency::USD },
                    flags: if i % 2 == 0 {
                        AccountFlags::MUST_NOT_GO_NEGATIVE
                    } else {
                        AccountFlags::empty()
                    },
                    totals: Totals::default(),
                    posting_count: 0,
                    last_posted_at: 0,
                    version: 0,
                };
                (state.id.clone(), state)
            })
            .collect()
    }

    #[derive(Debug, Clone)]
    enum Op {
        Transfer {
            id: u8,
            from: usize,
            to: usize,
            minor: i64,
            usd: bool,
        },
        Reserve {
            id: u8,
            from: usize,
            to: usize,
            minor: i64,
        },
        Post {
            id: u8,
            minor: Option<i64>,
        },
        Void {
            id: u8,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let account = 0..ACCOUNTS;
        prop_oneof![
            4 => (any::<u8>(), account.clone(), account.clone(), 1..5_000i64, any::<bool>())
                .prop_map(|(id, from, to, minor, usd)| Op::Transfer { id: id % 40, from, to, minor, usd }),
            2 => (any::<u8>(), account.clone(), account, 1..5_000i64)
                .prop_map(|(id, from, to, minor)| Op::Reserve { id: id % 10, from, to, minor }),
            1 => (any::<u8>(), proptest::option::of(1..6_000i64))
                .prop_map(|(id, minor)| Op::Post { id: id % 10, minor }),
            1 => any::<u8>().prop_map(|id| Op::Void { id: id % 10 }),
        ]
    }

    fn command(op: &Op) -> Command {
        let currency = |usd: bool| if usd { Currency::USD } else { Currency::KRW };
        match op {
            Op::Transfer {
                id,
                from,
                to,
                minor,
                usd,
            } => Command::Post(NewTransaction::transfer(
                TransactionId::from_db(format!("t{id}")),
                account_id(*from),
                account_id(*to),
                Money::from_minor(*minor, currency(*usd)),
            )),
            Op::Reserve {
                id,
                from,
                to,
                minor,
            } => Command::Reserve(NewHold {
                id: HoldId::from_db(format!("h{id}")),
                debit_account_id: account_id(*from),
                credit_account_id: account_id(*to),
                amount: Money::from_minor(
                    *minor,
                    if *from < 4 {
                        Currency::KRW
                    } else {
                        Currency::USD
                    },
                ),
                expires_at: None,
                metadata: None,
                balance_limits: Vec::new(),
            }),
            Op::Post { id, minor } => Command::PostHold(PostHold {
                hold_id: HoldId::from_db(format!("h{id}")),
                amount: *minor,
                transaction_id: None,
            }),
            Op::Void { id } => Command::VoidHold(HoldId::from_db(format!("h{id}"))),
        }
    }

    /// Per currency: (debits posted, credits posted, debits pending, credits pending).
    fn sums(batch: &Batch) -> BTreeMap<Currency, [i64; 4]> {
        let mut sums = BTreeMap::new();
        for a in batch.accounts.values() {
            let s: &mut [i64; 4] = sums.entry(a.currency).or_default();
            s[0] += a.totals.debits_posted;
            s[1] += a.totals.credits_posted;
            s[2] += a.totals.debits_pending;
            s[3] += a.totals.credits_pending;
        }
        sums
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn every_command_applies_in_full_or_not_at_all(ops in proptest::collection::vec(op(), 1..80)) {
            // Fund the guarded accounts so that some spending succeeds.
            let mut batch = Batch::new(accounts(), HashMap::new(), HashMap::new(), 1);
            for (i, (bank, wallet, currency)) in [(1, 0, Currency::KRW), (3, 2, Currency::KRW), (5, 4, Currency::USD)].into_iter().enumerate() {
                let fund = NewTransaction::transfer(
                    TransactionId::from_db(format!("fund{i}")),
                    account_id(bank), account_id(wallet), Money::from_minor(10_000, currency));
                prop_assert!(batch.apply(&Command::Post(fund)).is_ok());
            }
            for op in &ops {
                let before_accounts = batch.accounts.clone();
                let before_holds = batch.holds.clone();
                let before_postings = batch.writes.postings.len();
                match batch.apply(&command(op)) {
                    Err(_) => {
                        prop_assert_eq!(&batch.accounts, &before_accounts, "a rejected command changed an account");
                        prop_assert_eq!(&batch.holds, &before_holds, "a rejected command changed a hold");
                        prop_assert_eq!(batch.writes.postings.len(), before_postings);
                    }
                    Ok(Applied::New(_)) => {
                        let new = &batch.writes.postings[before_postings..];
                        let mut per_currency: BTreeMap<Currency, i64> = BTreeMap::new();
                        for p in new {
                            *per_currency.entry(p.amount.currency()).or_default() += p.signed_minor();
                            let account = &batch.accounts[&p.account_id];
                            prop_assert!(p.account_seq <= account.posting_count);
                        }
                        prop_assert!(per_currency.values().all(|s| *s == 0), "new postings do not balance");
                    }
                    Ok(_) => prop_assert_eq!(&batch.accounts, &before_accounts, "a replay changed an account"),
                }
                for (currency, [dp, cp, dpend, cpend]) in sums(&batch) {
                    prop_assert_eq!(dp, cp, "posted debits and credits differ in {}", currency);
                    prop_assert_eq!(dpend, cpend, "pending debits and credits differ in {}", currency);
                }
                for account in batch.accounts.values() {
                    if account.flags.contains(AccountFlags::MUST_NOT_GO_NEGATIVE) {
                        prop_assert!(account.totals.available(account.kind).unwrap() >= 0);
                    }
                }
                let pending: i64 = batch.holds.values().filter(|h| h.state == HoldState::Pending).map(|h| h.amount.minor()).sum();
                let recorded: i64 = batch.accounts.values().map(|a| a.totals.debits_pending).sum();
                prop_assert_eq!(pending, recorded, "pending totals drifted from the pending holds");
            }
        }
    }
}
