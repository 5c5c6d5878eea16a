//! Card payments for mypay: the processor trait, its adapter for the Toss Payments API, and a
//! sandbox PSP that speaks that API.
//!
//! - [`CardProcessor`] is everything mypay asks of a card processor: charge a registered card
//!   for a payment order, cancel (refund) all or part of a charge, look a payment up by order
//!   id, and read the transaction report. It is object-safe: the application holds an
//!   `Arc<dyn CardProcessor>`.
//! - [`TossPayments`] implements it over the documented Toss Payments v1 API (billing
//!   approval, cancel with `Idempotency-Key`, inquiry by order id, transactions).
//! - [`sandbox`] is a PSP that speaks that API with test card tokens that approve, decline,
//!   time out, or approve and lose the reply. `mypay sandbox-psp` runs it as a server of its
//!   own; [`sandbox::spawn`] runs it in-process.
//!
//! Architecture invariants: this crate knows nothing of the ledger, payments or merchants; it
//! reports what the PSP said. A call that moves money ends approved or cancelled, refused with
//! nothing done, or `Unknown`; a timeout, a dropped connection, a 5xx or an "in progress" code is
//! `Unknown`, never a refusal. Card tokens and the secret key never appear in `Debug` output or
//! logs in full; no card number ever enters this crate.

#![forbid(unsafe_code)]

mod processor;
pub mod sandbox;
mod toss;
mod types;
pub mod wire;

pub use processor::{
    Approval, CancelOutcome, CancelRequest, Cancellation, CardProcessor, ChargeOutcome,
    ChargeRequest, PaymentLookup, PaymentRecord, PaymentStatus, PspError, PspTransaction, Refusal,
    RefusalReason,
};
pub use toss::{
    ClientBuildError, SecretKey, TossConfig, TossPayments, CONNECT_TIMEOUT_DEFAULT, TIMEOUT_DEFAULT,
};
pub use types::{
    BillingKey, CancelId, CardAmount, CustomerKey, InvalidValue, OrderName, PaymentKey, PspOrderId,
    CARD_AMOUNT_WON_MAX,
};
