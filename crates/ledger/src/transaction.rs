//! Journal transactions: legs that balance per currency, checked before anything is written.

use std::collections::BTreeMap;

use money::{Currency, Money};
use sha2::{Digest, Sha256};

use crate::account::{validate_limits, BalanceLimit, Direction, METADATA_BYTES_MAX};
use crate::clock::Micros;
use crate::{AccountId, HoldId, LedgerError, TransactionId};

/// Bounds on the number of legs, so that one request cannot monopolise a batch.
pub const POSTINGS_MIN: usize = 2;
pub const POSTINGS_MAX: usize = 64;
/// The longest free-text description.
pub const DESCRIPTION_LEN_MAX: usize = 512;

/// One leg as requested: an account, a side and a positive amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostingSpec {
    pub account_id: AccountId,
    pub direction: Direction,
    pub amount: Money,
}

impl PostingSpec {
    /// The signed amount as stored: debits positive, credits negative.
    pub(crate) fn signed_minor(&self) -> i64 {
        match self.direction {
            Direction::Debit => self.amount.minor(),
            Direction::Credit => -self.amount.minor(),
        }
    }
}

/// A journal transaction as requested.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTransaction {
    pub id: TransactionId,
    pub postings: Vec<PostingSpec>,
    pub description: Option<String>,
    pub metadata: Option<serde_json::Value>,
    /// Ceilings the transaction must respect; see [`BalanceLimit`]. Not part of its content.
    pub balance_limits: Vec<BalanceLimit>,
}

impl NewTransaction {
    /// A two-legged transfer: debit `from`, credit `to`.
    pub fn transfer(id: TransactionId, from: AccountId, to: AccountId, amount: Money) -> Self {
        NewTransaction {
            id,
            postings: vec![
                PostingSpec {
                    account_id: from,
                    direction: Direction::Debit,
                    amount,
                },
                PostingSpec {
                    account_id: to,
                    direction: Direction::Credit,
                    amount,
                },
            ],
            description: None,
            metadata: None,
            balance_limits: Vec::new(),
        }
    }

    /// Checks everything that does not depend on stored state: leg count, positive amounts,
    /// that the legs sum to zero in every currency, and that limits name the legs' accounts.
    pub fn validate(&self) -> Result<(), LedgerError> {
        if !(POSTINGS_MIN..=POSTINGS_MAX).contains(&self.postings.len()) {
            return Err(LedgerError::PostingCountInvalid {
                min: POSTINGS_MIN,
                max: POSTINGS_MAX,
            });
        }
        validate_description_and_metadata(self.description.as_deref(), self.metadata.as_ref())?;
        validate_limits(&self.balance_limits, |id| {
            self.postings.iter().any(|p| &p.account_id == id)
        })?;
        let mut sums: BTreeMap<Currency, i64> = BTreeMap::new();
        for posting in &self.postings {
            if !posting.amount.is_positive() {
                return Err(LedgerError::AmountInvalid);
            }
            let sum = sums.entry(posting.amount.currency()).or_default();
            *sum = sum
                .checked_add(posting.signed_minor())
                .ok_or(LedgerError::AmountOutOfRange)?;
        }
        match sums.into_iter().find(|(_, sum)| *sum != 0) {
            Some((currency, _)) => Err(LedgerError::UnbalancedTransaction {
                currency: currency.code(),
            }),
            None => Ok(()),
        }
    }

    /// A digest of the content, compared when the same id is submitted again.
    pub(crate) fn content_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"journal\0");
        for posting in &self.postings {
            hasher.update(posting.account_id.as_str());
            hasher.update(match posting.direction {
                Direction::Debit => b"\0D\0",
                Direction::Credit => b"\0C\0",
            });
            hasher.update(posting.amount.minor().to_be_bytes());
            hasher.update(posting.amount.currency().code());
            hasher.update(b"\0");
        }
        hash_optional_text(&mut hasher, self.description.as_deref());
        hash_optional_json(&mut hasher, self.metadata.as_ref());
        hex::encode(hasher.finalize())
    }
}

pub(crate) fn validate_description_and_metadata(
    description: Option<&str>,
    metadata: Option<&serde_json::Value>,
) -> Result<(), LedgerError> {
    if description.is_some_and(|d| d.len() > DESCRIPTION_LEN_MAX) {
        return Err(LedgerError::InvalidField {
            field: "description",
            reason: "must be at most 512 bytes",
        });
    }
    validate_metadata(metadata)
}

pub(crate) fn validate_metadata(metadata: Option<&serde_json::Value>) -> Result<(), LedgerError> {
    match metadata {
        None => Ok(()),
        Some(serde_json::Value::Object(_))
            if metadata_text(metadata).map_or(0, |t| t.len()) <= METADATA_BYTES_MAX =>
        {
            Ok(())
        }
        Some(serde_json::Value::Object(_)) => Err(LedgerError::InvalidField {
            field: "metadata",
            reason: "must be at most 4096 bytes of JSON",
        }),
        Some(_) => Err(LedgerError::InvalidField {
            field: "metadata",
            reason: "must be a JSON object",
        }),
    }
}

/// Metadata as stored: compact JSON text.
pub(crate) fn metadata_text(metadata: Option<&serde_json::Value>) -> Option<String> {
    metadata.map(|m| m.to_string())
}

pub(crate) fn hash_optional_text(hasher: &mut Sha256, text: Option<&str>) {
    match text {
        Some(text) => {
            hasher.update(b"\x01");
            hasher.update(text.len().to_be_bytes());
            hasher.update(text);
        }
        None => hasher.update(b"\x00"),
    }
}

pub(crate) fn hash_optional_json(hasher: &mut Sha256, json: Option<&serde_json::Value>) {
    hash_optional_text(hasher, metadata_text(json).as_deref());
}

/// Whether a transaction was posted directly or by posting a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionKind {
    Journal,
    HoldPost,
}

impl TransactionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionKind::Journal => "journal",
            TransactionKind::HoldPost => "hold_post",
        }
    }

    pub(crate) fn from_db(value: &str) -> TransactionKind {
        match value {
            "journal" => TransactionKind::Journal,
            "hold_post" => TransactionKind::HoldPost,
            other => panic!("unknown transaction kind {other:?} in the database"),
        }
    }
}

/// One stored leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    pub account_id: AccountId,
    /// The posting's position in its account's history, from 1.
    pub account_seq: i64,
    pub transaction_id: TransactionId,
    pub leg: i32,
    pub direction: Direction,
    pub amount: Money,
    /// The account's posted balance on its normal side right after this posting.
    pub balance_after: Money,
    pub posted_at: Micros,
}

impl Posting {
    pub fn signed_minor(&self) -> i64 {
        match self.direction {
            Direction::Debit => self.amount.minor(),
            Direction::Credit => -self.amount.minor(),
        }
    }
}

/// A stored transaction with its legs.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    pub id: TransactionId,
    pub kind: TransactionKind,
    pub hold_id: Option<HoldId>,
    pub description: Option<String>,
    pub metadata: Option<serde_json::Value>,
    pub posted_at: Micros,
    pub postings: Vec<Posting>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg(account: &str, direction: Direction, minor: i64, currency: Currency) -> PostingSpec {
        PostingSpec {
            account_id: AccountId::parse(account).unwrap(),
            direction,
            amount: Money::from_minor(minor, currency),
        }
    }

    fn tx(postings: Vec<PostingSpec>) -> NewTransaction {
        NewTransaction {
            id: TransactionId::parse("t1").unwrap(),
            postings,
            description: None,
            metadata: None,
            balance_limits: Vec::new(),
        }
    }

    #[test]
    fn balances_per_currency() {
        let ok = tx(vec![
            leg("a", Direction::Debit, 100, Currency::KRW),
            leg("b", Direction::Credit, 100, Currency::KRW),
            leg("c", Direction::Debit, 5, Currency::USD),
            leg("d", Direction::Credit, 5, Currency::USD),
        ]);
        assert!(ok.validate().is_ok());
        let crossed = tx(vec![
            leg("a", Direction::Debit, 100, Currency::KRW),
            leg("b", Direction::Credit, 100, Currency::USD),
        ]);
        assert_eq!(
            crossed.validate().unwrap_err().code(),
            "unbalanced_transaction"
        );
    }

    #[test]
    fn rejects_zero_amounts_and_single_legs() {
        let zero = tx(vec![
            leg("a", Direction::Debit, 0, Currency::KRW),
            leg("b", Direction::Credit, 0, Currency::KRW),
        ]);
        assert_eq!(zero.validate().unwrap_err().code(), "amount_invalid");
        let single = tx(vec![leg("a", Direction::Debit, 1, Currency::KRW)]);
        assert_eq!(
            single.validate().unwrap_err().code(),
            "posting_count_invalid"
        );
    }

    #[test]
    fn content_hash_distinguishes_content() {
        let a = tx(vec![
            leg("a", Direction::Debit, 100, Currency::KRW),
            leg("b", Direction::Credit, 100, Currency::KRW),
        ]);
        let mut b = a.clone();
        b.postings[0].amount = Money::from_minor(101, Currency::KRW);
        b.postings[1].amount = Money::from_minor(101, Currency::KRW);
        assert_eq!(a.content_hash(), a.clone().content_hash());
        assert_ne!(a.content_hash(), b.content_hash());
    }
}
