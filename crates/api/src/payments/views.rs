//! The JSON shapes of the payment routes. Amounts are decimal strings in major units.

use ::payments::{Order, Payment, PaymentStatus, PaymentView, Split};
use money::{Currency, Money};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::amount::{AmountInput, CurrencyInput};
use crate::time::format_micros;

/// A checkout to pay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentBody {
    /// The paying member (`usr_…`): required for platform keys; a member may omit it or name
    /// themself.
    pub buyer: Option<String>,
    /// The client's globally unique id of this checkout; sending it again finds this payment.
    #[schema(example = "chk_20261129_0001")]
    pub checkout_id: String,
    /// How the buyer pays; wallet money for everything when absent.
    pub funding: Option<FundingBody>,
    /// Whether a short wallet is topped up from the buyer's linked account (default true).
    pub auto_top_up: Option<bool>,
    /// One order per seller, 1 to 20.
    pub payment_orders: Vec<PaymentOrderBody>,
    /// Unique items this checkout buys; each is locked for the buyer while they pay.
    pub items: Option<Vec<String>>,
}

/// The funding mix; the parts must add up to the orders' total. Each order is funded from
/// points first, then money, then card, in request order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FundingBody {
    #[schema(value_type = Option<String>, example = "1000")]
    pub points: Option<AmountInput>,
    #[schema(value_type = Option<String>, example = "9000")]
    pub money: Option<AmountInput>,
    pub card: Option<CardBody>,
}

/// A card registered with the PSP.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardBody {
    /// The PSP's billing key for the buyer's card (never a card number).
    #[schema(example = "bk_test_ok_0001")]
    pub billing_key: String,
    #[schema(value_type = String, example = "5000")]
    pub amount: AmountInput,
}

/// One seller's part of the checkout.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentOrderBody {
    /// The merchant paid (`mer_…`).
    pub seller_account: String,
    #[schema(value_type = String, example = "15000")]
    pub amount: AmountInput,
    #[schema(value_type = String, example = "KRW")]
    pub currency: CurrencyInput,
    /// The client's globally unique id of the order: 6 to 64 letters, digits, `-` or `_`. It
    /// is the PSP's order id and idempotency key.
    #[schema(example = "order-20261129-0001")]
    pub payment_order_id: String,
    /// Whether the seller's money waits in escrow until the buyer confirms (default false).
    pub escrow: Option<bool>,
}

/// How much each source pays.
#[derive(Debug, Serialize, ToSchema)]
pub struct FundingView {
    pub points: String,
    pub money: String,
    pub card: String,
}

impl FundingView {
    pub(super) fn new(split: Split, currency: Currency) -> FundingView {
        let text = |minor| Money::from_minor(minor, currency).to_decimal_string();
        FundingView {
            points: text(split.points),
            money: text(split.money),
            card: text(split.card),
        }
    }
}

/// Why an order failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailureView {
    #[schema(example = "insufficient_funds")]
    pub code: String,
    pub message: String,
}

/// The card part of an order.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardView {
    /// `none`, `requested` (sent, outcome being resolved), `approved` or `declined`.
    pub state: &'static str,
    /// The PSP's id of the approved charge.
    pub payment_key: Option<String>,
}

/// A payment order.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentOrderView {
    /// Our id (`po_…`); also the ledger transaction that booked it to the seller.
    pub id: String,
    /// The client's id, the PSP's order id.
    pub payment_order_id: String,
    pub payment_id: String,
    pub seller_account: String,
    pub amount: String,
    pub currency: &'static str,
    /// `NOT_STARTED`, `EXECUTING`, `SUCCESS` or `FAILED`.
    #[schema(example = "SUCCESS")]
    pub status: &'static str,
    /// The buyer's points and money were taken.
    pub wallet_updated: bool,
    /// The order was booked to the seller in the ledger.
    pub ledger_updated: bool,
    pub escrow: bool,
    /// For an escrow order that succeeded: `held`, `shipped`, `delivered` (the money waits in
    /// the seller's escrow account), `confirmed` (released to the seller) or `cancelled`.
    pub escrow_state: Option<&'static str>,
    /// What refunds have given back of each source.
    pub refunded: FundingView,
    /// The seller's fee rate in basis points when the order was made.
    pub fee_bps: i64,
    pub funding: FundingView,
    /// The buyer's money transaction (`mtx_…`) for the money part.
    pub money_transaction_id: Option<String>,
    pub card: CardView,
    pub failure: Option<FailureView>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Order> for PaymentOrderView {
    fn from(order: Order) -> Self {
        let failure = order.failure_code.clone().map(|code| FailureView {
            code,
            message: order.failure_message.clone().unwrap_or_default(),
        });
        PaymentOrderView {
            id: order.id.to_string(),
            payment_order_id: order.payment_order_id,
            payment_id: order.payment_id.to_string(),
            seller_account: order.seller,
            amount: Money::from_minor(order.amount, order.currency).to_decimal_string(),
            currency: order.currency.code(),
            status: order.status.as_str(),
            wallet_updated: order.wallet_updated,
            ledger_updated: order.ledger_updated,
            escrow: order.escrow,
            escrow_state: order.escrow_state.map(|state| state.as_str()),
            refunded: FundingView::new(order.refunded, order.currency),
            fee_bps: order.fee_bps,
            funding: FundingView::new(order.split, order.currency),
            money_transaction_id: order.money_tx_id,
            card: CardView {
                state: order.card_state.as_str(),
                payment_key: order.psp_payment_key,
            },
            failure,
            version: order.version,
            created_at: format_micros(order.created_at),
            updated_at: format_micros(order.updated_at),
        }
    }
}

/// A payment and its orders.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentResponse {
    /// `pay_…`
    pub id: String,
    pub checkout_id: String,
    pub buyer: String,
    /// `executing`, `succeeded`, `failed` or `partially_succeeded`.
    #[schema(example = "succeeded")]
    pub status: &'static str,
    /// Every order is final.
    pub is_payment_done: bool,
    pub amount: String,
    pub currency: &'static str,
    pub funding: FundingView,
    pub items: Vec<String>,
    pub payment_orders: Vec<PaymentOrderView>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<PaymentView> for PaymentResponse {
    fn from(view: PaymentView) -> Self {
        let Payment {
            id,
            checkout_id,
            buyer,
            currency,
            amount,
            funding,
            items,
            status,
            version,
            created_at,
            updated_at,
            ..
        } = view.payment;
        PaymentResponse {
            id: id.to_string(),
            checkout_id,
            buyer: buyer.to_string(),
            status: status.as_str(),
            is_payment_done: status != PaymentStatus::Executing,
            amount: Money::from_minor(amount, currency).to_decimal_string(),
            currency: currency.code(),
            funding: FundingView::new(funding, currency),
            items,
            payment_orders: view.orders.into_iter().map(Into::into).collect(),
            version,
            created_at: format_micros(created_at),
            updated_at: format_micros(updated_at),
        }
    }
}

/// Points to grant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointsGrantBody {
    /// A positive whole number of points (1 point = 1 won), as a string.
    #[schema(value_type = String, example = "5000")]
    pub amount: AmountInput,
}
