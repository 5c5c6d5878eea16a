//! The payments errors, each with a stable code.

use item_lock::ItemLockError;
use ledger::LedgerError;
use wallet::WalletError;

use crate::escrow_rules::EscrowError;
use crate::sellers::SellerError;

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("{field} {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },

    #[error("amount out of range")]
    AmountOutOfRange,

    #[error("the funding (points, money, card) must add up to the orders' total")]
    FundingMismatch,

    #[error("every payment order of a checkout must be in the same currency")]
    CurrencyMismatch,

    #[error("payments are made in KRW only, not {0}")]
    CurrencyUnsupported(&'static str),

    #[error("checkout {0} was already paid with other content")]
    CheckoutReused(String),

    #[error("payment order id {0} belongs to another checkout")]
    PaymentOrderIdReused(String),

    #[error("payment {0} does not exist")]
    PaymentNotFound(String),

    #[error("payment order {0} does not exist")]
    OrderNotFound(String),

    #[error(transparent)]
    Seller(#[from] SellerError),

    #[error(transparent)]
    Escrow(#[from] EscrowError),

    #[error("member {0} is not active")]
    BuyerNotActive(String),

    #[error(transparent)]
    ItemLock(#[from] ItemLockError),

    #[error(transparent)]
    Webhook(#[from] webhooks::WebhookError),

    #[error(transparent)]
    Wallet(#[from] WalletError),

    #[error(transparent)]
    Member(membership::MemberError),

    #[error(transparent)]
    Ledger(#[from] LedgerError),

    #[error("database error: {0}")]
    Storage(#[from] sqlx::Error),

    #[error("payment order {0} is not paid, so nothing of it can be refunded")]
    OrderNotRefundable(String),

    #[error("refund key {0} was used for another refund")]
    RefundKeyReused(String),

    #[error("the refund asks for {asked} but only {remaining} of the order remains refundable")]
    RefundExceedsPayment { asked: i64, remaining: i64 },

    #[error("nothing of payment order {0} remains to be refunded")]
    NothingToRefund(String),

    #[error("refund {0} does not exist")]
    RefundNotFound(String),

    #[error("payment order {0} changed while this run worked on it")]
    Conflict(String),

    #[error("internal error: {0}")]
    Internal(String),
}

impl PaymentError {
    pub(crate) fn invalid(field: &'static str, reason: &'static str) -> PaymentError {
        PaymentError::Invalid { field, reason }
    }

    /// The stable code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            PaymentError::Invalid { .. } => "invalid_request",
            PaymentError::AmountOutOfRange => "amount_invalid",
            PaymentError::FundingMismatch => "funding_mismatch",
            PaymentError::CurrencyMismatch => "currency_mismatch",
            PaymentError::CurrencyUnsupported(_) => "currency_unsupported",
            PaymentError::CheckoutReused(_) => "checkout_id_reused",
            PaymentError::PaymentOrderIdReused(_) => "payment_order_id_reused",
            PaymentError::PaymentNotFound(_) => "payment_not_found",
            PaymentError::OrderNotFound(_) => "payment_order_not_found",
            PaymentError::Seller(error) => error.code(),
            PaymentError::Escrow(error) => error.code(),
            PaymentError::BuyerNotActive(_) => "member_not_active",
            PaymentError::ItemLock(error) => error.code(),
            PaymentError::Webhook(error) => error.code(),
            PaymentError::Wallet(error) => error.code(),
            PaymentError::Member(error) => error.code(),
            PaymentError::Ledger(error) => error.code(),
            PaymentError::OrderNotRefundable(_) => "order_not_refundable",
            PaymentError::RefundKeyReused(_) => "refund_key_reused",
            PaymentError::RefundExceedsPayment { .. } => "refund_exceeds_payment",
            PaymentError::NothingToRefund(_) => "nothing_to_refund",
            PaymentError::RefundNotFound(_) => "refund_not_found",
            PaymentError::Conflict(_) => "conflict",
            PaymentError::Storage(_) | PaymentError::Internal(_) => "internal",
        }
    }
}
