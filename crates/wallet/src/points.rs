//! Points: a member's reward balance, spendable at checkout like money but never withdrawn.
//! One ledger account per member, `liability:member:{id}:points:KRW` (must not go negative),
//! funded from `expense:rewards:KRW` when the platform grants points. A point is worth one won.

use std::sync::Arc;

use ledger::{
    AccountCode, AccountFlags, AccountId, AccountKind, Ledger, LedgerError, NewAccount,
    NewTransaction, TransactionId,
};
use membership::{MemberId, MemberStatus, Members};
use money::{Currency, Money};
use sha2::{Digest, Sha256};

use crate::domain::positive_amount;
use crate::service::WalletBalance;
use crate::store::RequestKey;
use crate::WalletError;

/// Points are kept in won.
pub const POINTS_CURRENCY: Currency = Currency::KRW;
/// Where granted points come from: the platform's reward expense.
pub const REWARDS_ACCOUNT: &str = "expense:rewards:KRW";

/// The points service. Cheap to clone.
#[derive(Clone)]
pub struct Points {
    ledger: Arc<Ledger>,
    members: Arc<Members>,
}

impl std::fmt::Debug for Points {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Points").finish_non_exhaustive()
    }
}

impl Points {
    pub fn new(ledger: Arc<Ledger>, members: Arc<Members>) -> Points {
        Points { ledger, members }
    }

    /// A member's points account, opened on first use; opening it again (also concurrently)
    /// answers the same account.
    pub async fn account(&self, member: &MemberId) -> Result<AccountId, WalletError> {
        let account = self
            .ledger
            .create_account(NewAccount {
                code: points_code(member)?,
                kind: AccountKind::Liability,
                currency: POINTS_CURRENCY,
                flags: AccountFlags::MUST_NOT_GO_NEGATIVE,
                metadata: None,
            })
            .await?;
        Ok(account.id)
    }

    /// A member's points, zero before the first grant.
    pub async fn balance(&self, member: &MemberId) -> Result<WalletBalance, WalletError> {
        match self.ledger.account_by_code(&points_code(member)?).await {
            Ok(account) => {
                let balance = account.balance()?;
                Ok(WalletBalance::new(member, Some(account.id), balance))
            }
            Err(LedgerError::AccountNotFound(_)) => {
                Ok(WalletBalance::empty(member, POINTS_CURRENCY))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Grants points to an active member. The ledger transaction's id is derived from the
    /// request key, so the same request granted again is a replay and the same key with another
    /// amount is refused as `request_key_reused`.
    pub async fn grant(
        &self,
        member: &MemberId,
        amount: Money,
        key: &RequestKey,
    ) -> Result<WalletBalance, WalletError> {
        let amount = positive_amount(amount)?;
        let found = self.members.get(member).await?;
        if found.status != MemberStatus::Active {
            return Err(WalletError::MemberNotActive(member.to_string()));
        }
        let points = self.account(member).await?;
        let rewards = self.rewards_account().await?;
        let mut tx = NewTransaction::transfer(grant_id(key)?, rewards, points, amount);
        tx.description = Some("points granted".into());
        tx.metadata = Some(serde_json::json!({"kind": "points_grant", "member": member.as_str()}));
        match self.ledger.post_transaction(tx).await {
            Ok(_) => self.balance(member).await,
            Err(LedgerError::ExistsWithDifferentContent { .. }) => {
                Err(WalletError::RequestKeyReused)
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn rewards_account(&self) -> Result<AccountId, WalletError> {
        let account = self
            .ledger
            .create_account(NewAccount {
                code: AccountCode::parse(REWARDS_ACCOUNT)?,
                kind: AccountKind::Expense,
                currency: POINTS_CURRENCY,
                flags: AccountFlags::empty(),
                metadata: None,
            })
            .await?;
        Ok(account.id)
    }
}

fn points_code(member: &MemberId) -> Result<AccountCode, WalletError> {
    Ok(AccountCode::parse(&format!(
        "liability:member:{}:points:{}",
        member.as_str(),
        POINTS_CURRENCY.code()
    ))?)
}

/// The grant's ledger id: a digest of who asked and their key, since a client's key may hold
/// characters a ledger id may not.
fn grant_id(key: &RequestKey) -> Result<TransactionId, WalletError> {
    let mut hasher = Sha256::new();
    hasher.update((key.scope.len() as u64).to_be_bytes());
    hasher.update(key.scope.as_bytes());
    hasher.update(key.key.as_bytes());
    let digest = hex::encode(hasher.finalize());
    Ok(TransactionId::parse(&format!("pgr:{}", &digest[..40]))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_ids_depend_on_scope_and_key_only() {
        let key = |scope: &str, key: &str| RequestKey {
            scope: scope.into(),
            key: key.into(),
        };
        let a = grant_id(&key("key_1", "k")).unwrap();
        assert_eq!(a, grant_id(&key("key_1", "k")).unwrap());
        assert_ne!(a, grant_id(&key("key_2", "k")).unwrap());
        assert_ne!(
            grant_id(&key("key_1", "kx")).unwrap(),
            grant_id(&key("key_1k", "x")).unwrap()
        );
        assert!(a.as_str().starts_with("pgr:"));
    }
}
