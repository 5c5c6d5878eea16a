//! Accounts, their kinds and flags, and the balances derived from their totals.

use money::{Currency, Money};
use serde::Serialize;

use crate::clock::Micros;
use crate::id::check_id;
use crate::{AccountId, LedgerError};

/// The largest metadata document, in bytes of JSON, stored with an account or transaction.
pub const METADATA_BYTES_MAX: usize = 4096;

/// The five kinds of account in double-entry bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Asset,
    Liability,
    Equity,
    Income,
    Expense,
}

/// The side on which an account's balance grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Debit,
    Credit,
}

impl AccountKind {
    pub fn parse(value: &str) -> Result<AccountKind, LedgerError> {
        match value {
            "asset" => Ok(AccountKind::Asset),
            "liability" => Ok(AccountKind::Liability),
            "equity" => Ok(AccountKind::Equity),
            "income" => Ok(AccountKind::Income),
            "expense" => Ok(AccountKind::Expense),
            _ => Err(LedgerError::InvalidField {
                field: "kind",
                reason: "must be asset, liability, equity, income or expense",
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Asset => "asset",
            AccountKind::Liability => "liability",
            AccountKind::Equity => "equity",
            AccountKind::Income => "income",
            AccountKind::Expense => "expense",
        }
    }

    /// Assets and expenses grow with debits; liabilities, equity and income with credits.
    pub fn normal_side(self) -> Direction {
        match self {
            AccountKind::Asset | AccountKind::Expense => Direction::Debit,
            AccountKind::Liability | AccountKind::Equity | AccountKind::Income => Direction::Credit,
        }
    }
}

/// Account flags, stored as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountFlags(i64);

impl AccountFlags {
    /// The account's available balance (posted minus held) must never go below zero.
    pub const MUST_NOT_GO_NEGATIVE: AccountFlags = AccountFlags(1);
    const KNOWN: i64 = 1;

    pub fn empty() -> AccountFlags {
        AccountFlags(0)
    }

    pub fn contains(self, other: AccountFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn with(self, other: AccountFlags) -> AccountFlags {
        AccountFlags(self.0 | other.0)
    }

    pub fn bits(self) -> i64 {
        self.0
    }

    pub(crate) fn from_bits(bits: i64) -> AccountFlags {
        assert_eq!(bits & !Self::KNOWN, 0, "unknown account flag bits {bits}");
        AccountFlags(bits)
    }

    /// Parses the public names of the flags.
    pub fn parse_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, LedgerError> {
        names
            .into_iter()
            .try_fold(AccountFlags::empty(), |flags, name| match name {
                "must_not_go_negative" => Ok(flags.with(AccountFlags::MUST_NOT_GO_NEGATIVE)),
                _ => Err(LedgerError::InvalidField {
                    field: "flags",
                    reason: "unknown flag (known: must_not_go_negative)",
                }),
            })
    }

    pub fn names(self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.contains(AccountFlags::MUST_NOT_GO_NEGATIVE) {
            names.push("must_not_go_negative");
        }
        names
    }
}

/// A human-meaningful unique account code such as `liability:member:usr_1:money`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct AccountCode(String);

impl AccountCode {
    pub fn parse(value: &str) -> Result<AccountCode, LedgerError> {
        check_id("code", value)?;
        Ok(AccountCode(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn from_db(value: String) -> AccountCode {
        AccountCode(value)
    }
}

/// What a client asks for when opening an account.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAccount {
    pub code: AccountCode,
    pub kind: AccountKind,
    pub currency: Currency,
    pub flags: AccountFlags,
    pub metadata: Option<serde_json::Value>,
}

/// The four running totals of an account, in minor units. Posted totals only ever grow;
/// pending totals grow when a hold is reserved and shrink when it is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub debits_posted: i64,
    pub credits_posted: i64,
    pub debits_pending: i64,
    pub credits_pending: i64,
}

impl Totals {
    /// The posted balance on the account's normal side.
    pub fn posted(&self, kind: AccountKind) -> Result<i64, LedgerError> {
        let (grow, shrink) = match kind.normal_side() {
            Direction::Debit => (self.debits_posted, self.credits_posted),
            Direction::Credit => (self.credits_posted, self.debits_posted),
        };
        grow.checked_sub(shrink)
            .ok_or(LedgerError::AmountOutOfRange)
    }

    /// Funds reserved by pending holds that will reduce the balance when posted.
    pub fn held(&self, kind: AccountKind) -> i64 {
        match kind.normal_side() {
            Direction::Debit => self.credits_pending,
            Direction::Credit => self.debits_pending,
        }
    }

    /// Funds promised to the account by pending holds; not spendable until posted.
    pub fn incoming(&self, kind: AccountKind) -> i64 {
        match kind.normal_side() {
            Direction::Debit => self.debits_pending,
            Direction::Credit => self.credits_pending,
        }
    }

    /// Posted minus held: what the account may still spend.
    pub fn available(&self, kind: AccountKind) -> Result<i64, LedgerError> {
        self.posted(kind)?
            .checked_sub(self.held(kind))
            .ok_or(LedgerError::AmountOutOfRange)
    }

    /// Posted plus incoming: the balance if every hold promising money to the account were
    /// posted. A balance ceiling is checked against this, so that money still on its way
    /// counts before it arrives.
    pub fn ceiling_balance(&self, kind: AccountKind) -> Result<i64, LedgerError> {
        self.posted(kind)?
            .checked_add(self.incoming(kind))
            .ok_or(LedgerError::AmountOutOfRange)
    }
}

/// A ceiling one command puts on an account: after the command, the account's balance on its
/// normal side, counting money pending towards it ([`Totals::ceiling_balance`]), must not
/// exceed `max`, or the command is refused with `balance_limit_exceeded`.
///
/// The ledger stores no limits: the caller names the limit in force with every command (a
/// wallet's maximum balance, say), so a changed configuration applies at once. The check runs
/// in the writer, on the state the command is applied to, so concurrent commands cannot pass it
/// together. A limit is a condition, not content: it is not part of the idempotency digest, and
/// a replay answers the stored result whatever limit it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceLimit {
    /// One of the command's own accounts.
    pub account_id: AccountId,
    /// In the account's currency; zero or more.
    pub max: Money,
}

/// The most balance limits one command may name.
pub const BALANCE_LIMITS_MAX: usize = 8;

/// Checks what needs no state: a bounded number of limits, none negative, each on one of
/// `accounts` (the command's own, so the writer has it locked).
pub(crate) fn validate_limits(
    limits: &[BalanceLimit],
    mut accounts: impl FnMut(&AccountId) -> bool,
) -> Result<(), LedgerError> {
    if limits.len() > BALANCE_LIMITS_MAX {
        return Err(LedgerError::InvalidField {
            field: "balance_limits",
            reason: "at most 8 per command",
        });
    }
    for limit in limits {
        if limit.max.minor() < 0 {
            return Err(LedgerError::InvalidField {
                field: "balance_limits",
                reason: "a maximum must not be negative",
            });
        }
        if !accounts(&limit.account_id) {
            return Err(LedgerError::InvalidField {
                field: "balance_limits",
                reason: "a limit must name one of the command's accounts",
            });
        }
    }
    Ok(())
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: AccountId,
    pub code: AccountCode,
    pub kind: AccountKind,
    pub currency: Currency,
    pub flags: AccountFlags,
    pub metadata: Option<serde_json::Value>,
    pub totals: Totals,
    pub posting_count: i64,
    pub created_at: Micros,
}

impl Account {
    pub fn balance(&self) -> Result<Balance, LedgerError> {
        Ok(Balance {
            currency: self.currency,
            posted: Money::from_minor(self.totals.posted(self.kind)?, self.currency),
            held: Money::from_minor(self.totals.held(self.kind), self.currency),
            incoming: Money::from_minor(self.totals.incoming(self.kind), self.currency),
            available: Money::from_minor(self.totals.available(self.kind)?, self.currency),
        })
    }
}

/// An account's balance on its normal side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    pub currency: Currency,
    pub posted: Money,
    pub held: Money,
    pub incoming: Money,
    pub available: Money,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_is_posted_minus_held_on_the_normal_side() {
        let totals = Totals {
            debits_posted: 30,
            credits_posted: 100,
            debits_pending: 20,
            credits_pending: 5,
        };
        assert_eq!(totals.posted(AccountKind::Liability).unwrap(), 70);
        assert_eq!(totals.available(AccountKind::Liability).unwrap(), 50);
        assert_eq!(totals.incoming(AccountKind::Liability), 5);
        assert_eq!(totals.posted(AccountKind::Asset).unwrap(), -70);
        assert_eq!(totals.available(AccountKind::Asset).unwrap(), -75);
    }

    #[test]
    fn flags_round_trip_through_their_names() {
        let flags = AccountFlags::parse_names(["must_not_go_negative"]).unwrap();
        assert!(flags.contains(AccountFlags::MUST_NOT_GO_NEGATIVE));
        assert_eq!(flags.names(), vec!["must_not_go_negative"]);
        assert!(AccountFlags::parse_names(["nope"]).is_err());
    }
}
