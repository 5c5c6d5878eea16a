//! Two-phase transfers: reserve now, post (fully or partially), void, or let expire.

use money::Money;
use sha2::{Digest, Sha256};

use crate::account::{validate_limits, BalanceLimit};
use crate::clock::Micros;
use crate::transaction::{hash_optional_json, validate_metadata};
use crate::{AccountId, HoldId, LedgerError, TransactionId};

/// What a client asks for when reserving funds.
#[derive(Debug, Clone, PartialEq)]
pub struct NewHold {
    pub id: HoldId,
    pub debit_account_id: AccountId,
    pub credit_account_id: AccountId,
    pub amount: Money,
    pub expires_at: Option<Micros>,
    pub metadata: Option<serde_json::Value>,
    /// Ceilings the reservation must respect, counting the money it promises to the credited
    /// account; see [`BalanceLimit`]. Not part of its content.
    pub balance_limits: Vec<BalanceLimit>,
}

impl NewHold {
    pub fn validate(&self) -> Result<(), LedgerError> {
        if !self.amount.is_positive() {
            return Err(LedgerError::AmountInvalid);
        }
        if self.debit_account_id == self.credit_account_id {
            return Err(LedgerError::AccountsMustDiffer);
        }
        validate_limits(&self.balance_limits, |id| {
            id == &self.debit_account_id || id == &self.credit_account_id
        })?;
        validate_metadata(self.metadata.as_ref())
    }

    pub(crate) fn content_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"hold\0");
        hasher.update(self.debit_account_id.as_str());
        hasher.update(b"\0");
        hasher.update(self.credit_account_id.as_str());
        hasher.update(b"\0");
        hasher.update(self.amount.minor().to_be_bytes());
        hasher.update(self.amount.currency().code());
        hasher.update(self.expires_at.unwrap_or(i64::MIN).to_be_bytes());
        hash_optional_json(&mut hasher, self.metadata.as_ref());
        hex::encode(hasher.finalize())
    }
}

/// Where a hold is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldState {
    Pending,
    Posted,
    Voided,
    Expired,
}

impl HoldState {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Pending => "pending",
            HoldState::Posted => "posted",
            HoldState::Voided => "voided",
            HoldState::Expired => "expired",
        }
    }

    pub(crate) fn from_db(value: &str) -> HoldState {
        match value {
            "pending" => HoldState::Pending,
            "posted" => HoldState::Posted,
            "voided" => HoldState::Voided,
            "expired" => HoldState::Expired,
            other => panic!("unknown hold state {other:?} in the database"),
        }
    }
}

/// A stored hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    pub id: HoldId,
    pub debit_account_id: AccountId,
    pub credit_account_id: AccountId,
    pub amount: Money,
    pub state: HoldState,
    pub posted_amount: Money,
    pub posting_transaction_id: Option<TransactionId>,
    pub expires_at: Option<Micros>,
    pub metadata: Option<serde_json::Value>,
    pub created_at: Micros,
    pub resolved_at: Option<Micros>,
    pub(crate) content_hash: String,
}

/// Resolving a hold by posting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostHold {
    pub hold_id: HoldId,
    /// How much to post; `None` posts the whole hold. The rest is released.
    pub amount: Option<i64>,
    /// The id of the resulting transaction; defaults to `<hold id>.post`.
    pub transaction_id: Option<TransactionId>,
}

impl PostHold {
    pub(crate) fn transaction_id(&self) -> TransactionId {
        self.transaction_id
            .clone()
            .unwrap_or_else(|| TransactionId::from_db(format!("{}.post", self.hold_id.as_str())))
    }
}
