//! The port to sellers: payments need a seller's name, fee rate and ledger accounts, and never
//! read merchant storage themselves. `merchants::Merchants` implements it.

use async_trait::async_trait;
use ledger::AccountId;
use money::Currency;

/// A seller as a payment order needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seller {
    /// The merchant id (`mer_…`).
    pub id: String,
    pub name: String,
    /// The fee rate in basis points, recorded on each order for settlement.
    pub fee_bps: u32,
    pub active: bool,
}

/// Where an order's money is booked for its seller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SellerAccount {
    /// Payable to the seller at the next settlement.
    Payable,
    /// Held until the buyer confirms (escrow).
    Escrow,
}

/// What the payments service asks of the merchants it pays.
#[async_trait]
pub trait Sellers: Send + Sync {
    /// The seller with this id, or `seller_not_found`.
    async fn seller(&self, id: &str) -> Result<Seller, SellerError>;

    /// The seller's ledger account of the given purpose and currency, opened on first use.
    async fn seller_account(
        &self,
        id: &str,
        purpose: SellerAccount,
        currency: Currency,
    ) -> Result<AccountId, SellerError>;
}

/// Why a seller could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SellerError {
    code: &'static str,
    message: String,
}

impl SellerError {
    pub fn new(code: &'static str, message: impl Into<String>) -> SellerError {
        SellerError {
            code,
            message: message.into(),
        }
    }

    /// The merchants service could not answer (its storage or the ledger failed).
    pub fn unavailable(message: impl Into<String>) -> SellerError {
        SellerError::new("seller_unavailable", message)
    }

    pub fn not_found(id: &str) -> SellerError {
        SellerError::new("seller_not_found", format!("no merchant {id}"))
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Whether the seller failed to answer (storage, ledger), rather than refused.
    pub fn is_unavailable(&self) -> bool {
        self.code == "seller_unavailable"
    }
}
