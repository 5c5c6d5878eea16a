//! What the ledger routes send and receive: enums shared by requests and responses, and the
//! response bodies with their conversions from the ledger's types.
//!
//! Amounts leave as decimal strings in major units next to their currency, and times as
//! RFC 3339 strings, so that no client ever parses money as a float.

use ledger::{
    Account, AccountFlags, AccountKind, Balance, Direction, Hold, HoldState, Posting, Transaction,
    TransactionKind,
};
use money::Money;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::time::{format_micros, Micros};

/// The five kinds of account in double-entry bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AccountKind)]
pub enum AccountKindDto {
    /// Grows with debits: what the platform owns (bank accounts, receivables).
    Asset,
    /// Grows with credits: what the platform owes (member money, merchant payables).
    Liability,
    /// Grows with credits: owners' stake.
    Equity,
    /// Grows with credits: fees earned.
    Income,
    /// Grows with debits: costs such as bank fees.
    Expense,
}

/// The side of a posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = Direction)]
pub enum DirectionDto {
    /// Debit: increases assets and expenses, decreases the others.
    Debit,
    /// Credit: increases liabilities, equity and income, decreases the others.
    Credit,
}

/// An account flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AccountFlag)]
pub enum AccountFlagDto {
    /// The available balance (posted minus held) may never go below zero.
    MustNotGoNegative,
}

/// Where a hold is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = HoldState)]
pub enum HoldStateDto {
    /// Funds are reserved.
    Pending,
    /// Posted, fully or partially; the rest was released.
    Posted,
    /// Released without moving money.
    Voided,
    /// Released because its time ran out.
    Expired,
}

/// How a transaction came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = TransactionKind)]
pub enum TransactionKindDto {
    /// Posted directly.
    Journal,
    /// Posted by posting a hold.
    HoldPost,
}

impl From<AccountKindDto> for AccountKind {
    fn from(kind: AccountKindDto) -> AccountKind {
        match kind {
            AccountKindDto::Asset => AccountKind::Asset,
            AccountKindDto::Liability => AccountKind::Liability,
            AccountKindDto::Equity => AccountKind::Equity,
            AccountKindDto::Income => AccountKind::Income,
            AccountKindDto::Expense => AccountKind::Expense,
        }
    }
}

impl From<AccountKind> for AccountKindDto {
    fn from(kind: AccountKind) -> AccountKindDto {
        match kind {
            AccountKind::Asset => AccountKindDto::Asset,
            AccountKind::Liability => AccountKindDto::Liability,
            AccountKind::Equity => AccountKindDto::Equity,
            AccountKind::Income => AccountKindDto::Income,
            AccountKind::Expense => AccountKindDto::Expense,
        }
    }
}

impl From<DirectionDto> for Direction {
    fn from(direction: DirectionDto) -> Direction {
        match direction {
            DirectionDto::Debit => Direction::Debit,
            DirectionDto::Credit => Direction::Credit,
        }
    }
}

impl From<Direction> for DirectionDto {
    fn from(direction: Direction) -> DirectionDto {
        match direction {
            Direction::Debit => DirectionDto::Debit,
            Direction::Credit => DirectionDto::Credit,
        }
    }
}

impl From<AccountFlagDto> for AccountFlags {
    fn from(flag: AccountFlagDto) -> AccountFlags {
        match flag {
            AccountFlagDto::MustNotGoNegative => AccountFlags::MUST_NOT_GO_NEGATIVE,
        }
    }
}

impl From<HoldState> for HoldStateDto {
    fn from(state: HoldState) -> HoldStateDto {
        match state {
            HoldState::Pending => HoldStateDto::Pending,
            HoldState::Posted => HoldStateDto::Posted,
            HoldState::Voided => HoldStateDto::Voided,
            HoldState::Expired => HoldStateDto::Expired,
        }
    }
}

impl From<TransactionKind> for TransactionKindDto {
    fn from(kind: TransactionKind) -> TransactionKindDto {
        match kind {
            TransactionKind::Journal => TransactionKindDto::Journal,
            TransactionKind::HoldPost => TransactionKindDto::HoldPost,
        }
    }
}

/// Combines flags named in a request.
pub fn flags_from(names: &[AccountFlagDto]) -> AccountFlags {
    names.iter().fold(AccountFlags::empty(), |flags, name| {
        flags.with(AccountFlags::from(*name))
    })
}

/// The flags set on an account, by name.
fn flag_names(flags: AccountFlags) -> Vec<AccountFlagDto> {
    let mut names = Vec::new();
    if flags.contains(AccountFlags::MUST_NOT_GO_NEGATIVE) {
        names.push(AccountFlagDto::MustNotGoNegative);
    }
    names
}

/// An amount as a decimal string in major units.
fn amount(money: Money) -> String {
    money.to_decimal_string()
}

/// An account's balance on its normal side, without repeating the account.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceAmounts {
    /// Everything posted so far.
    #[schema(example = "15000")]
    pub posted: String,
    /// Reserved by pending holds that will reduce the balance when posted.
    #[schema(example = "0")]
    pub held: String,
    /// Promised by pending holds that will increase the balance when posted.
    #[schema(example = "0")]
    pub incoming: String,
    /// Posted minus held: what may still be spent.
    #[schema(example = "15000")]
    pub available: String,
}

impl From<Balance> for BalanceAmounts {
    fn from(balance: Balance) -> BalanceAmounts {
        BalanceAmounts {
            posted: amount(balance.posted),
            held: amount(balance.held),
            incoming: amount(balance.incoming),
            available: amount(balance.available),
        }
    }
}

/// A ledger account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    /// The account's id (`acc_…`).
    #[schema(example = "acc_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B")]
    pub id: String,
    /// The unique human-meaningful code.
    #[schema(example = "liability:member:usr_1:money")]
    pub code: String,
    /// The account's kind, which decides its normal side.
    pub kind: AccountKindDto,
    /// The one currency the account holds.
    #[schema(example = "KRW")]
    pub currency: String,
    /// The flags set on the account.
    pub flags: Vec<AccountFlagDto>,
    /// The client's metadata object, if any.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// The current balance.
    pub balance: BalanceAmounts,
    /// How many postings the account has.
    pub posting_count: i64,
    /// When the account was opened (RFC 3339, UTC).
    pub created_at: String,
}

impl TryFrom<Account> for AccountView {
    type Error = ApiError;

    fn try_from(account: Account) -> Result<AccountView, ApiError> {
        let balance = account.balance()?;
        Ok(AccountView {
            id: account.id.to_string(),
            code: account.code.as_str().to_owned(),
            kind: account.kind.into(),
            currency: account.currency.code().to_owned(),
            flags: flag_names(account.flags),
            metadata: account.metadata,
            balance: balance.into(),
            posting_count: account.posting_count,
            created_at: format_micros(account.created_at),
        })
    }
}

/// One page of accounts.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountList {
    /// The accounts, in id order.
    pub data: Vec<AccountView>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// An account's balance now.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceView {
    /// The account.
    pub account_id: String,
    /// The account's currency.
    #[schema(example = "KRW")]
    pub currency: String,
    /// Everything posted so far.
    #[schema(example = "15000")]
    pub posted: String,
    /// Reserved by pending holds.
    #[schema(example = "0")]
    pub held: String,
    /// Promised by pending holds.
    #[schema(example = "0")]
    pub incoming: String,
    /// Posted minus held.
    #[schema(example = "15000")]
    pub available: String,
}

/// The balances of a set of accounts, read at one instant.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceSnapshot {
    /// One entry per account, in account id order.
    pub data: Vec<SnapshotEntry>,
}

/// One account in a [`BalanceSnapshot`].
#[derive(Debug, Serialize, ToSchema)]
pub struct SnapshotEntry {
    /// The account's code.
    pub code: String,
    /// Its balance in the snapshot.
    #[serde(flatten)]
    pub balance: BalanceView,
}

/// An account's posted balance at a past instant.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceAtView {
    /// The account.
    pub account_id: String,
    /// The account's currency.
    #[schema(example = "KRW")]
    pub currency: String,
    /// The instant asked for (RFC 3339, UTC).
    pub at: String,
    /// The posted balance right after the last posting at or before `at`.
    #[schema(example = "15000")]
    pub posted: String,
}

/// The balance now, or at an instant when `at` was given.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BalanceResponse {
    /// Without `at`.
    Now(BalanceView),
    /// With `at`.
    At(BalanceAtView),
}

impl BalanceView {
    /// Combines an account id with its balance.
    pub fn new(account_id: &str, balance: Balance) -> BalanceView {
        let amounts = BalanceAmounts::from(balance);
        BalanceView {
            account_id: account_id.to_owned(),
            currency: balance.currency.code().to_owned(),
            posted: amounts.posted,
            held: amounts.held,
            incoming: amounts.incoming,
            available: amounts.available,
        }
    }
}

impl BalanceAtView {
    /// Combines an account id and instant with the posted balance then.
    pub fn new(account_id: &str, at: Micros, posted: Money) -> BalanceAtView {
        BalanceAtView {
            account_id: account_id.to_owned(),
            currency: posted.currency().code().to_owned(),
            at: format_micros(at),
            posted: amount(posted),
        }
    }
}

/// One leg of a transaction, with the account's balance right after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostingView {
    /// The transaction the posting belongs to.
    pub transaction_id: String,
    /// The account posted to.
    pub account_id: String,
    /// The posting's position in the account's history, from 1.
    pub account_seq: i64,
    /// Debit or credit.
    pub direction: DirectionDto,
    /// The amount, always positive.
    #[schema(example = "15000")]
    pub amount: String,
    /// The amount's currency.
    #[schema(example = "KRW")]
    pub currency: String,
    /// The account's posted balance on its normal side right after this posting.
    #[schema(example = "15000")]
    pub balance_after: String,
    /// When it was posted (RFC 3339, UTC).
    pub posted_at: String,
}

impl From<Posting> for PostingView {
    fn from(posting: Posting) -> PostingView {
        PostingView {
            transaction_id: posting.transaction_id.to_string(),
            account_id: posting.account_id.to_string(),
            account_seq: posting.account_seq,
            direction: posting.direction.into(),
            amount: amount(posting.amount),
            currency: posting.amount.currency().code().to_owned(),
            balance_after: amount(posting.balance_after),
            posted_at: format_micros(posting.posted_at),
        }
    }
}

/// One page of an account's history, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostingList {
    /// The postings, newest first.
    pub data: Vec<PostingView>,
    /// Pass as `cursor` to get older postings; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A posted journal transaction.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionView {
    /// The transaction's id: the client's, or `ltx_…`.
    pub id: String,
    /// Posted directly or by posting a hold.
    pub kind: TransactionKindDto,
    /// The hold this transaction posted, if any.
    pub hold_id: Option<String>,
    /// The client's description, if any.
    pub description: Option<String>,
    /// The client's metadata object, if any.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// When it was posted (RFC 3339, UTC).
    pub posted_at: String,
    /// The legs, each with its account's resulting balance.
    pub postings: Vec<PostingView>,
}

impl From<Transaction> for TransactionView {
    fn from(transaction: Transaction) -> TransactionView {
        TransactionView {
            id: transaction.id.to_string(),
            kind: transaction.kind.into(),
            hold_id: transaction.hold_id.map(|id| id.to_string()),
            description: transaction.description,
            metadata: transaction.metadata,
            posted_at: format_micros(transaction.posted_at),
            postings: transaction
                .postings
                .into_iter()
                .map(PostingView::from)
                .collect(),
        }
    }
}

/// A hold: funds reserved on the debit account until posted, voided or expired.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldView {
    /// The hold's id: the client's, or `hld_…`.
    pub id: String,
    /// The account whose funds are reserved.
    pub debit_account_id: String,
    /// The account the funds go to when posted.
    pub credit_account_id: String,
    /// The amount reserved.
    #[schema(example = "5000")]
    pub amount: String,
    /// The amount's currency.
    #[schema(example = "KRW")]
    pub currency: String,
    /// Where the hold is in its life.
    pub state: HoldStateDto,
    /// How much was posted (zero unless posted).
    #[schema(example = "0")]
    pub posted_amount: String,
    /// The transaction that posted the hold, once posted.
    pub posting_transaction_id: Option<String>,
    /// When the hold expires, if it does (RFC 3339, UTC).
    pub expires_at: Option<String>,
    /// The client's metadata object, if any.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// When the hold was reserved.
    pub created_at: String,
    /// When it was posted, voided or expired.
    pub resolved_at: Option<String>,
}

impl From<Hold> for HoldView {
    fn from(hold: Hold) -> HoldView {
        HoldView {
            id: hold.id.to_string(),
            debit_account_id: hold.debit_account_id.to_string(),
            credit_account_id: hold.credit_account_id.to_string(),
            amount: amount(hold.amount),
            currency: hold.amount.currency().code().to_owned(),
            state: hold.state.into(),
            posted_amount: amount(hold.posted_amount),
            posting_transaction_id: hold.posting_transaction_id.map(|id| id.to_string()),
            expires_at: hold.expires_at.map(format_micros),
            metadata: hold.metadata,
            created_at: format_micros(hold.created_at),
            resolved_at: hold.resolved_at.map(format_micros),
        }
    }
}

/// A posted hold and the transaction that moved its money.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldPostedView {
    /// The hold, now posted.
    pub hold: HoldView,
    /// The transaction, with the resulting balances.
    pub transaction: TransactionView,
}
