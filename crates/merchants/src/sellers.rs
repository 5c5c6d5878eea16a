//! Merchants as the sellers checkout pays: the payments service's `Sellers` port. The
//! dependency points from `merchants` to `payments`, never back, so payments never read
//! merchant storage.

use async_trait::async_trait;
use ledger::AccountId;
use money::Currency;
use payments::{Seller, SellerAccount, SellerError, Sellers};

use crate::{Merchant, MerchantAccount, MerchantError, MerchantId, MerchantStatus, Merchants};

#[async_trait]
impl Sellers for Merchants {
    async fn seller(&self, id: &str) -> Result<Seller, SellerError> {
        let merchant = self.get(&merchant_id(id)?).await.map_err(seller_error)?;
        Ok(seller(merchant))
    }

    async fn seller_account(
        &self,
        id: &str,
        purpose: SellerAccount,
        currency: Currency,
    ) -> Result<AccountId, SellerError> {
        let purpose = match purpose {
            SellerAccount::Payable => MerchantAccount::Payable,
            SellerAccount::Escrow => MerchantAccount::Escrow,
        };
        self.ledger_account(&merchant_id(id)?, purpose, currency)
            .await
            .map_err(seller_error)
    }
}

/// An id that is not a merchant id's shape names no merchant.
fn merchant_id(id: &str) -> Result<MerchantId, SellerError> {
    MerchantId::parse(id).ok_or_else(|| SellerError::not_found(id))
}

fn seller(merchant: Merchant) -> Seller {
    Seller {
        active: merchant.status == MerchantStatus::Active,
        id: merchant.id.to_string(),
        name: merchant.name,
        fee_bps: merchant.fee_bps,
    }
}

/// A missing merchant is `seller_not_found`; anything else is the merchants service failing to
/// answer, which payments must not take as a refusal.
fn seller_error(error: MerchantError) -> SellerError {
    match error {
        MerchantError::NotFound(id) => SellerError::not_found(&id),
        other => {
            tracing::warn!(code = other.code(), error = %other, "the merchants service did not answer checkout");
            SellerError::unavailable("the merchants service did not answer; retry later")
        }
    }
}
