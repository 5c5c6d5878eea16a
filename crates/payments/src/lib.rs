//! Checkout payments (seed 001): a payment is one checkout; each of its payment orders is one
//! seller's part, executed on its own through NOT_STARTED → EXECUTING → SUCCESS | FAILED.
//!
//! - [`Payments`] is the service: it records a checkout, spreads its funding (points, wallet
//!   money with automatic top-up, a registered card) over the orders, executes each order, and
//!   resumes orders a crash or an unknown card outcome left unfinished.
//! - [`Payments::refund`] gives (part of) a paid order back along its funding sources, points
//!   first, then money, then card (the card part through the PSP under the refund's id), and
//!   [`Payments::resume_refunds`] finishes refunds whose card outcome was not known.
//! - [`Sellers`] is the port to the merchants being paid, implemented by `merchants`.
//!
//! Architecture invariants: an order's steps are each repeatable, and their results are
//! recorded on the order before the next step, so a re-run after a crash continues where the
//! first run stopped and never moves money twice; the buyer's points and money are held before
//! the card is charged and taken only after it was approved; a charge whose outcome is unknown
//! is asked about (by the order id, which is also the PSP's idempotency key) before anything
//! else; an order whose card was approved never fails; every won of an order reaches its seller
//! in one ledger transaction whose id is the order's id; refunds reserve their parts on the
//! order under its version before anything moves, so together they never exceed what was paid.

#![forbid(unsafe_code)]

mod card_report;
mod domain;
mod error;
mod escrow;
mod escrow_rules;
mod escrow_store;
mod events;
mod executor;
mod refund;
mod refund_store;
mod sellers;
mod service;
mod store;

pub use card_report::{
    card_approvals_between, card_cancellations_between, CardActivity, CardActivityKind,
    CARD_ACTIVITY_PAGE_MAX,
};
pub use domain::{
    allocate, CardState, CheckoutId, EscrowState, OrderStatus, PaymentId, PaymentOrderKey,
    PaymentStatus, RefundId, Split,
};
pub use error::PaymentError;
pub use escrow::{EscrowView, ESCROW_DUE_BATCH_MAX, ESCROW_REFUND_SCOPE};
pub use escrow_rules::{
    Escrow, EscrowActor, EscrowClosing, EscrowError, ESCROW_REASON_CHARS_MAX,
    TRACKING_NUMBER_LEN_MAX,
};
pub use refund::{refund_split, refundable, NewRefund, RefundCardState, RefundStatus, RefundView};
pub use refund_store::Refund;
pub use sellers::{Seller, SellerAccount, SellerError, Sellers};
pub use service::{
    NewOrder, NewPayment, PaymentServices, PaymentView, Payments, PaymentsConfig, ResumePass,
    CLEARING_ACCOUNT, ORDERS_PER_PAYMENT_MAX, PSP_RECEIVABLE_ACCOUNT, RESUME_BATCH_MAX,
};
pub use store::{Order, Payment};
