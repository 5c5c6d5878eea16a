//! The card processor: everything mypay asks of a PSP, as one object-safe trait, with the
//! requests and outcomes it speaks in.
//!
//! The rule that shapes the outcomes is the bank gateway's: a call that moves money ends
//! `Approved`/`Cancelled` (the PSP said it was done), `Declined`/`Refused` (the PSP said no and
//! did nothing), or `Unknown` (a timeout, a dropped connection, a server error, a reply we cannot
//! read or a code we do not know). `Unknown` is never reported as a refusal: it is resolved by
//! [`CardProcessor::payment_by_order`], or by repeating the request with the same idempotency
//! key, before anything is retried under a new key or given back.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::types::{
    BillingKey, CancelId, CardAmount, CustomerKey, OrderName, PaymentKey, PspOrderId,
};

/// What a card processor offers the platform. Object-safe, so the application holds an
/// `Arc<dyn CardProcessor>` and does not know whether it talks to Toss Payments or the sandbox.
#[async_trait]
pub trait CardProcessor: Send + Sync {
    /// Charges a registered card (its billing key) for one payment order. The order id is the
    /// idempotency key: the same order charged again answers the first charge, never a second.
    async fn charge(&self, request: &ChargeRequest) -> ChargeOutcome;

    /// Gives back part or all of a charge. The cancel id is the idempotency key: a retry with
    /// the same id answers the first cancellation, never a second.
    async fn cancel(&self, request: &CancelRequest) -> CancelOutcome;

    /// The payment the PSP holds for an order id, with its cancellations, or `NotFound` when it
    /// has none: the way an `Unknown` charge is resolved.
    async fn payment_by_order(&self, order_id: &PspOrderId) -> Result<PaymentLookup, PspError>;

    /// Every approval and cancellation the PSP recorded in `[from, to)`, oldest first: the
    /// PSP's side of reconciliation.
    async fn transactions(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<PspTransaction>, PspError>;
}

/// A charge of a registered card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// The card, as registered with the PSP (a billing key; never a card number).
    pub billing_key: BillingKey,
    /// The customer the billing key was issued to.
    pub customer_key: CustomerKey,
    /// Our payment order id: the PSP's order id and the request's idempotency key.
    pub order_id: PspOrderId,
    pub amount: CardAmount,
    /// What the cardholder sees on their statement.
    pub order_name: OrderName,
}

/// A cancellation of (part of) an approved charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelRequest {
    /// The PSP's id of the payment, from its approval.
    pub payment_key: PaymentKey,
    /// Our refund's id: the request's idempotency key.
    pub cancel_id: CancelId,
    pub amount: CardAmount,
    /// Why, as the PSP records it (at most 200 characters).
    pub reason: String,
}

/// An approved charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub payment_key: PaymentKey,
    pub order_id: PspOrderId,
    pub amount: CardAmount,
    pub approved_at: OffsetDateTime,
}

/// How a charge ended, as far as we know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Approved(Approval),
    /// The PSP refused and charged nothing.
    Declined(Refusal),
    /// The charge may or may not have happened; resolve with
    /// [`CardProcessor::payment_by_order`] before anything else.
    Unknown {
        reason: String,
    },
}

/// A cancellation the PSP executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    /// The PSP's id of this cancellation.
    pub transaction_key: String,
    pub amount: CardAmount,
    pub canceled_at: OffsetDateTime,
    /// What remains cancellable of the payment afterwards, in won.
    pub balance_amount: i64,
}

/// How a cancellation ended, as far as we know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    Cancelled(Cancellation),
    /// The PSP refused and gave nothing back.
    Refused(Refusal),
    /// The cancellation may or may not have happened; repeat it with the same cancel id.
    Unknown {
        reason: String,
    },
}

/// Why the PSP said no: our category, and the PSP's own code and message for the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: RefusalReason,
    /// The PSP's code, e.g. `REJECT_CARD_COMPANY`.
    pub code: String,
    pub message: String,
}

/// The kinds of refusal mypay acts on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// The card company or the PSP declined the card (limit, stopped card, expiry…).
    CardDeclined,
    /// The request was malformed or not allowed for this merchant.
    InvalidRequest,
    /// Our credentials were refused.
    Unauthorized,
    /// The PSP has no such payment or card.
    NotFound,
    /// More than what remains was asked back, or the payment is already cancelled.
    NotCancelable,
    /// No connection could be opened: nothing reached the PSP.
    Unreachable,
    /// An HTTP 4xx without a PSP error body: refused before processing.
    RequestRejected,
}

impl RefusalReason {
    /// The stable code mypay uses for it.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::CardDeclined => "card_declined",
            RefusalReason::InvalidRequest => "psp_invalid_request",
            RefusalReason::Unauthorized => "psp_unauthorized",
            RefusalReason::NotFound => "psp_not_found",
            RefusalReason::NotCancelable => "not_cancelable",
            RefusalReason::Unreachable => "psp_unreachable",
            RefusalReason::RequestRejected => "psp_request_rejected",
        }
    }
}

/// Where a payment stands at the PSP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Approved, nothing cancelled.
    Done,
    PartialCanceled,
    Canceled,
    /// The approval failed; nothing was charged.
    Aborted,
    /// Any other state the PSP reports (waiting, expired…): not an approval.
    Other(String),
}

/// A payment as the PSP holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    pub payment_key: PaymentKey,
    pub order_id: PspOrderId,
    pub status: PaymentStatus,
    pub total_amount: i64,
    pub balance_amount: i64,
    pub approved_at: Option<OffsetDateTime>,
    pub cancels: Vec<Cancellation>,
}

impl PaymentRecord {
    /// The approval this record proves, if it proves one: an approved payment stays approved
    /// when it is later cancelled.
    pub fn approval(&self) -> Option<Approval> {
        let approved = matches!(
            self.status,
            PaymentStatus::Done | PaymentStatus::PartialCanceled | PaymentStatus::Canceled
        );
        Some(Approval {
            payment_key: self.payment_key.clone(),
            order_id: self.order_id.clone(),
            amount: CardAmount::new(self.total_amount).ok()?,
            approved_at: self.approved_at.filter(|_| approved)?,
        })
    }
}

/// The answer of an inquiry by order id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentLookup {
    Found(PaymentRecord),
    /// The PSP has no payment under this order id: the charge never arrived or was never
    /// processed. Retry it with the same order id; never charge under a new one.
    NotFound,
}

/// One line of the PSP's transaction report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PspTransaction {
    pub transaction_key: String,
    pub payment_key: PaymentKey,
    pub order_id: PspOrderId,
    /// The payment's status after this transaction, e.g. `DONE` or `CANCELED`.
    pub status: String,
    pub transaction_at: OffsetDateTime,
    /// Won; positive for an approval, the cancelled amount for a cancellation.
    pub amount: i64,
}

/// A call that moves no money failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PspError {
    /// The PSP did not answer usefully; safe to repeat.
    #[error("the PSP did not answer: {reason}")]
    Unavailable { reason: String },
    /// The PSP refused the request.
    #[error("the PSP refused ({code}): {message}", code = refusal.code, message = refusal.message)]
    Refused { refusal: Refusal },
}
