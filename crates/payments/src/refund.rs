//! Refunds of payment orders, full or partial, returned along the order's funding sources in
//! the order points, then money, then card (the order checkout funds them in).
//!
//! 1. **Reserve.** In one write transaction, under the order's row lock and version: what
//!    remains of each source (paid − refunded) is read, the amount is split points first, then
//!    money, then card, the order's refunded parts grow by it, and the refund row is inserted
//!    (`pending`, with a fresh money transaction number). Concurrent refunds of one order take
//!    turns here, so together they never give back more than was paid.
//! 2. **Cancel the card part** at the PSP under the refund's id, the cancellation's idempotency
//!    key. The refund is marked `requested` before the call; a run that finds it so sends the
//!    same cancellation again, and the PSP answers a repeat with the first. A refusal gives the
//!    reservation back to the order and fails the refund, in one transaction; an unknown
//!    outcome leaves the refund pending for the resumer.
//! 3. **Book** one ledger transaction whose id is the refund's money transaction number: the
//!    seller's account debited for the whole amount; the buyer's points, the buyer's wallet
//!    and the PSP receivable credited with their parts. Then the wallet records the money part
//!    so the buyer's history shows it as `refund`, and the refund succeeds.
//!
//! Each step is repeatable and saved on the refund (under its version) before the next, like
//! an order's, and a run first claims the refund for a lease, so two runs never work on one
//! refund at once; the end of a refund is written with its webhook event in one transaction.

use std::time::Duration;

use ledger::{Direction, NewTransaction, Page, PostingSpec, PAGE_SIZE_MAX};
use money::{Currency, Money};
use psp::{
    CancelId, CancelOutcome, CancelRequest, CardAmount, PaymentKey, PaymentLookup, RefusalReason,
};
use wallet::MoneyTxId;
use webhooks::{EventType, NewEvent};

use crate::domain::{OrderStatus, PaymentOrderKey, RefundId, Split};
use crate::refund_store::{self, OrderFunds, Refund};
use crate::sellers::SellerAccount;
use crate::service::{Payments, ResumePass, RESUME_BATCH_MAX};
use crate::store::{self, Order, Payment};
use crate::PaymentError;

/// The longest refund reason, in characters (the PSP's limit for a cancellation reason).
const REFUND_REASON_CHARS_MAX: usize = 200;
/// The longest refund key, in bytes (the HTTP layer's limit for an `Idempotency-Key`).
const REFUND_KEY_LEN_MAX: usize = 255;
/// What the PSP is told when a refund names no reason: its API requires one.
const CANCEL_REASON_DEFAULT: &str = "refund";
/// How often a reservation that found its order changed starts over before giving up. With
/// the order's row locked it finds a change only when a writer that takes no lock (an escrow
/// moving on) got in between.
const RESERVE_ATTEMPTS: usize = 8;
/// How often a run re-reads a refund that another run changed under it before giving up.
const CONFLICT_RETRIES: usize = 4;
/// How long after a refund was made its card cancellation is sent again under the same id
/// without asking the PSP first: well inside the 15 days Toss keeps an idempotency key.
const RESEND_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// A refund, as requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    /// The order (`po_…`, or the client's payment order id).
    pub order: String,
    /// How much, in minor units; `None` for all that remains.
    pub amount: Option<i64>,
    /// The caller's idempotency key, unique per scope: 1 to 255 printable ASCII characters.
    /// The same key again answers (and continues) the same refund.
    pub key: String,
    /// Why, for the records and the PSP: at most 200 characters, no control characters.
    pub reason: String,
}

/// A refund with its order as it stands afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundView {
    pub refund: Refund,
    pub order: Order,
}

/// Where a refund is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundStatus {
    /// Reserved on its order; the card cancellation or the booking is not done yet.
    Pending,
    /// Everything was given back.
    Succeeded,
    /// The PSP refused the card part; the reservation went back to the order.
    Failed,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }

    pub(crate) fn from_db(value: &str) -> Option<RefundStatus> {
        match value {
            "pending" => Some(RefundStatus::Pending),
            "succeeded" => Some(RefundStatus::Succeeded),
            "failed" => Some(RefundStatus::Failed),
            _ => None,
        }
    }
}

/// Where a refund's card part is at the PSP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundCardState {
    /// No card part, or not sent yet.
    None,
    /// Sent; the outcome is not known. The same cancellation is sent again before anything else.
    Requested,
    Cancelled,
    Refused,
}

impl RefundCardState {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundCardState::None => "none",
            RefundCardState::Requested => "requested",
            RefundCardState::Cancelled => "cancelled",
            RefundCardState::Refused => "refused",
        }
    }

    pub(crate) fn from_db(value: &str) -> Option<RefundCardState> {
        match value {
            "none" => Some(RefundCardState::None),
            "requested" => Some(RefundCardState::Requested),
            "cancelled" => Some(RefundCardState::Cancelled),
            "refused" => Some(RefundCardState::Refused),
            _ => None,
        }
    }
}

/// What remains refundable of each source: paid minus refunded (or reserved).
/// `None` when more was refunded of a source than it paid (a broken record).
pub fn refundable(paid: Split, refunded: Split) -> Option<Split> {
    let left = Split {
        points: paid.points.checked_sub(refunded.points)?,
        money: paid.money.checked_sub(refunded.money)?,
        card: paid.card.checked_sub(refunded.card)?,
    };
    (left.points >= 0 && left.money >= 0 && left.card >= 0).then_some(left)
}

/// Splits `amount` over what remains: points first, then money, then card, the order
/// checkout funds an order in. `None` when more is asked than remains.
pub fn refund_split(remaining: Split, amount: i64) -> Option<Split> {
    if amount < 0 || Some(amount) > remaining.total() {
        return None;
    }
    let points = remaining.points.min(amount);
    let money = remaining.money.min(amount - points);
    let card = amount - points - money;
    (card <= remaining.card).then_some(Split {
        points,
        money,
        card,
    })
}

/// What an inquiry at the PSP says of a refund's card cancellation.
enum CancelInquiry {
    /// Nothing was cancelled for it: it never reached the PSP.
    NothingSent,
    /// It was executed.
    Cancelled,
    /// Cannot be told: the refund waits.
    Unclear,
}

/// What the card cancellation found.
enum CardCancel {
    Cancelled,
    /// The PSP refused with this code: nothing was given back.
    Refused(&'static str),
    /// Not known yet: the refund waits for the resumer.
    Unknown,
}

impl Payments {
    /// Refunds (part of) a paid order along its funding sources, points first, then money,
    /// then card. `scope` says whose key `request.key` is (an API key's id, or a service's
    /// name such as `escrow`). The same key again, for the same order and amount (or `None`),
    /// continues and answers the same refund; with another order or amount it is refused with
    /// `refund_key_reused`. Answers the refund as far as it got: `pending` while the PSP's
    /// outcome for the card part is unknown (the resumer finishes it), else `succeeded` or
    /// `failed`.
    pub async fn refund(
        &self,
        scope: &str,
        request: NewRefund,
    ) -> Result<RefundView, PaymentError> {
        check_request(&request)?;
        if let Some(found) =
            refund_store::refund_by_key(&self.inner.db, scope, &request.key).await?
        {
            return self.continue_refund(found, &request).await;
        }
        let (payment, order) = self.order(&request.order).await?;
        if order.status != OrderStatus::Success {
            return Err(PaymentError::OrderNotRefundable(order.id.to_string()));
        }
        match self.reserve(scope, &request, &order).await? {
            Some(refund) => self.run_refund(&payment, &order, refund).await,
            None => {
                let found = refund_store::refund_by_key(&self.inner.db, scope, &request.key)
                    .await?
                    .ok_or_else(|| {
                        PaymentError::Internal("a refund key's refund vanished".into())
                    })?;
                self.continue_refund(found, &request).await
            }
        }
    }

    /// A refund (`rfd_…`) with its order.
    pub async fn refund_by_id(&self, id: &str) -> Result<RefundView, PaymentError> {
        let not_found = || PaymentError::RefundNotFound(id.chars().take(64).collect());
        RefundId::parse(id).ok_or_else(not_found)?;
        let refund = refund_store::refund(&self.inner.db, id)
            .await?
            .ok_or_else(not_found)?;
        let order = self.order_of(&refund).await?;
        Ok(RefundView { refund, order })
    }

    /// An order's refunds in the order they were made, a page at a time (at most 500); `after`
    /// is the last refund id of the previous page.
    pub async fn refunds_of(
        &self,
        order: &PaymentOrderKey,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Page<Refund>, PaymentError> {
        let after = after
            .map(|id| {
                RefundId::parse(id).ok_or(PaymentError::invalid(
                    "after",
                    "must be a refund id from a previous page",
                ))
            })
            .transpose()?;
        let limit = limit.clamp(1, PAGE_SIZE_MAX);
        let mut items =
            refund_store::refunds_of(&self.inner.db, order, after.as_ref(), limit + 1).await?;
        let next = (items.len() as i64 > limit).then(|| {
            items.truncate(limit as usize);
            items.last().map(|refund| refund.id.to_string())
        });
        Ok(Page {
            items,
            next: next.flatten(),
        })
    }

    /// One pass of the resumer over refunds pending for at least `min_age` (a crash, or a card
    /// cancellation whose outcome was unknown), least recently tried first. `mypay serve` runs
    /// it beside the orders' resumer.
    pub async fn resume_refunds(
        &self,
        min_age: Duration,
        limit: i64,
    ) -> Result<ResumePass, PaymentError> {
        let now = self.inner.ledger.now_micros();
        let refunds = refund_store::pending_refunds(
            &self.inner.db,
            now.saturating_sub(crate::executor::micros(min_age)),
            limit.clamp(1, RESUME_BATCH_MAX),
        )
        .await?;
        let mut pass = ResumePass::default();
        for refund in refunds {
            pass.examined += 1;
            let id = refund.id.clone();
            match self.resume_refund(refund).await {
                Ok(true) => pass.finished += 1,
                Ok(false) => refund_store::touch_refund(&self.inner.db, &id, now).await?,
                Err(error) => {
                    tracing::warn!(refund = %id, code = error.code(), %error, "resuming a refund failed");
                    refund_store::touch_refund(&self.inner.db, &id, now).await?;
                }
            }
        }
        Ok(pass)
    }

    async fn resume_refund(&self, refund: Refund) -> Result<bool, PaymentError> {
        let (payment, order) = self.order(refund.order_id.as_str()).await?;
        let refund = self.execute_refund(&payment, &order, refund).await?;
        Ok(refund.status != RefundStatus::Pending)
    }

    /// Answers a refund found under the request's key: continued, if the request is the same.
    async fn continue_refund(
        &self,
        found: Refund,
        request: &NewRefund,
    ) -> Result<RefundView, PaymentError> {
        let (payment, order) = self.order(found.order_id.as_str()).await?;
        let same_order =
            request.order == order.id.as_str() || request.order == order.payment_order_id;
        if !same_order || request.amount.is_some_and(|amount| amount != found.amount) {
            return Err(PaymentError::RefundKeyReused(found.request_key));
        }
        self.run_refund(&payment, &order, found).await
    }

    /// Reserves the refund on its order and records it; `None` when a concurrent request with
    /// the same key recorded its refund first (nothing was reserved for this one).
    async fn reserve(
        &self,
        scope: &str,
        request: &NewRefund,
        order: &Order,
    ) -> Result<Option<Refund>, PaymentError> {
        let db = &self.inner.db;
        for _ in 0..RESERVE_ATTEMPTS {
            let now = self.inner.ledger.now_micros();
            let mut tx = db.begin_write().await?;
            let funds = refund_store::order_funds(&mut tx, db.backend(), &order.id)
                .await?
                .ok_or_else(|| PaymentError::Internal(format!("order {} vanished", order.id)))?;
            if refund_store::key_taken(&mut tx, scope, &request.key).await? {
                return Ok(None);
            }
            let split = take(&funds, request.amount, &order.id)?;
            let refunded = add(funds.refunded, split).ok_or(PaymentError::AmountOutOfRange)?;
            if !refund_store::reserve(&mut tx, &order.id, &funds, refunded, now).await? {
                continue;
            }
            let refund = Refund {
                id: RefundId::generate(),
                money_tx_id: MoneyTxId::generate(),
                order_id: order.id.clone(),
                request_scope: scope.to_owned(),
                request_key: request.key.clone(),
                amount: split.total().ok_or(PaymentError::AmountOutOfRange)?,
                split,
                reason: request.reason.clone(),
                seller_account: seller_account(&funds),
                status: RefundStatus::Pending,
                card_state: RefundCardState::None,
                failure_code: None,
                claimed_until: 0,
                version: 1,
                created_at: now,
                updated_at: now,
            };
            if !refund_store::insert_refund(&mut tx, &refund).await? {
                return Ok(None);
            }
            tx.commit().await?;
            return Ok(Some(refund));
        }
        Err(PaymentError::Conflict(order.id.to_string()))
    }

    /// Runs a refund as far as it can go now and answers it with its order. A run stopped by
    /// an error leaves the refund pending for the resumer and answers it as it stands.
    async fn run_refund(
        &self,
        payment: &Payment,
        order: &Order,
        refund: Refund,
    ) -> Result<RefundView, PaymentError> {
        let refund = match self.execute_refund(payment, order, refund.clone()).await {
            Ok(refund) => refund,
            Err(error) => {
                tracing::warn!(refund = %refund.id, code = error.code(), %error, "refund left for the resumer");
                self.reload_refund(&refund).await?
            }
        };
        let order = self.order_of(&refund).await?;
        Ok(RefundView { refund, order })
    }

    async fn execute_refund(
        &self,
        payment: &Payment,
        order: &Order,
        refund: Refund,
    ) -> Result<Refund, PaymentError> {
        let mut refund = refund;
        for _ in 0..CONFLICT_RETRIES {
            match self.advance_refund(payment, order, refund.clone()).await {
                Err(PaymentError::Conflict(_)) => refund = self.reload_refund(&refund).await?,
                done => return done,
            }
        }
        Err(PaymentError::Conflict(refund.id.to_string()))
    }

    async fn advance_refund(
        &self,
        payment: &Payment,
        order: &Order,
        refund: Refund,
    ) -> Result<Refund, PaymentError> {
        if refund.status != RefundStatus::Pending {
            return Ok(refund);
        }
        let Some(mut refund) = self.claim_refund(order, refund.clone()).await? else {
            return Ok(refund);
        };
        if refund.split.card > 0 && refund.card_state != RefundCardState::Cancelled {
            let sent_before = refund.card_state == RefundCardState::Requested;
            if !sent_before {
                refund = self
                    .save_refund(
                        order,
                        Refund {
                            card_state: RefundCardState::Requested,
                            ..refund
                        },
                    )
                    .await?;
            }
            match self.cancel_card(order, &refund, sent_before).await? {
                CardCancel::Cancelled => {
                    refund = self
                        .save_refund(
                            order,
                            Refund {
                                card_state: RefundCardState::Cancelled,
                                ..refund
                            },
                        )
                        .await?;
                }
                CardCancel::Refused(code) => {
                    return self
                        .save_refund(
                            order,
                            Refund {
                                status: RefundStatus::Failed,
                                card_state: RefundCardState::Refused,
                                failure_code: Some(code.to_owned()),
                                claimed_until: 0,
                                ..refund
                            },
                        )
                        .await;
                }
                // The refund waits for the PSP: the claim is given up, so that the resumer
                // need not wait for the lease.
                CardCancel::Unknown => {
                    return self
                        .save_refund(
                            order,
                            Refund {
                                claimed_until: 0,
                                ..refund
                            },
                        )
                        .await
                }
            }
        }
        self.book_refund(payment, order, &refund).await?;
        if refund.split.money > 0 {
            let seller = self.inner.sellers.seller(&order.seller).await?;
            self.inner
                .wallets
                .record_refund(
                    &payment.buyer,
                    &refund.money_tx_id,
                    money(refund.split.money, order.currency),
                    seller.name,
                )
                .await?;
        }
        self.save_refund(
            order,
            Refund {
                status: RefundStatus::Succeeded,
                claimed_until: 0,
                ..refund
            },
        )
        .await
    }

    /// Claims a pending refund for this run until the lease passes; `None` while another
    /// run's lease is live. The lease outlasts a PSP call, so no second run sends the
    /// cancellation again, or ends the refund, while the first one's call is in flight.
    async fn claim_refund(
        &self,
        order: &Order,
        refund: Refund,
    ) -> Result<Option<Refund>, PaymentError> {
        let now = self.inner.ledger.now_micros();
        if refund.claimed_until > now {
            return Ok(None);
        }
        let lease = crate::executor::micros(self.inner.config.claim_lease);
        let claimed = self
            .save_refund(
                order,
                Refund {
                    claimed_until: now.saturating_add(lease),
                    ..refund
                },
            )
            .await?;
        Ok(Some(claimed))
    }

    /// Cancels the card part under the refund's id. A refusal that says the request never
    /// got through (no connection, a bare HTTP refusal, our credentials refused) proves
    /// nothing about the cancellation, first send or repeat: the refund stays pending and
    /// the resumer sends it again, so an outage of ours never fails a buyer's refund. Any other
    /// refusal of a repeat may meet the first send's own effect, so it is decided by an
    /// inquiry. A repeat later than [`RESEND_WINDOW`] after the refund was made may meet a PSP
    /// that has forgotten the idempotency key (Toss keeps them for 15 days) and would cancel a
    /// second time: the PSP is asked first, and the cancellation is sent again only when
    /// nothing was cancelled for it.
    async fn cancel_card(
        &self,
        order: &Order,
        refund: &Refund,
        resend: bool,
    ) -> Result<CardCancel, PaymentError> {
        let now = self.inner.ledger.now_micros();
        let late = now.saturating_sub(refund.created_at) >= crate::executor::micros(RESEND_WINDOW);
        if resend && late {
            match self.inquire_cancel(order, refund).await? {
                CancelInquiry::Cancelled => return Ok(CardCancel::Cancelled),
                CancelInquiry::Unclear => return Ok(CardCancel::Unknown),
                CancelInquiry::NothingSent => {}
            }
        }
        let request = cancel_request(order, refund)?;
        Ok(match self.inner.psp.cancel(&request).await {
            CancelOutcome::Cancelled(_) => CardCancel::Cancelled,
            CancelOutcome::Refused(refusal)
                if matches!(
                    refusal.reason,
                    RefusalReason::Unreachable
                        | RefusalReason::RequestRejected
                        | RefusalReason::Unauthorized
                ) =>
            {
                tracing::warn!(refund = %refund.id, code = refusal.code, "a card cancellation did not get through; the resumer will send it again");
                CardCancel::Unknown
            }
            CancelOutcome::Refused(refusal) if resend => {
                match self.inquire_cancel(order, refund).await? {
                    CancelInquiry::Cancelled => CardCancel::Cancelled,
                    CancelInquiry::NothingSent => {
                        tracing::info!(refund = %refund.id, code = refusal.code, "the PSP refused a repeated cancellation it never executed");
                        CardCancel::Refused(refusal.reason.as_str())
                    }
                    CancelInquiry::Unclear => CardCancel::Unknown,
                }
            }
            CancelOutcome::Refused(refusal) => {
                tracing::info!(refund = %refund.id, code = refusal.code, message = refusal.message, "the PSP refused a card cancellation");
                CardCancel::Refused(refusal.reason.as_str())
            }
            CancelOutcome::Unknown { reason } => {
                tracing::warn!(refund = %refund.id, %reason, "card cancellation outcome unknown; the resumer will send it again");
                CardCancel::Unknown
            }
        })
    }

    /// What the PSP has cancelled for this refund, from what it cancelled of the payment
    /// against what our refunds account for. The PSP cancels no card money but ours, so what it
    /// cancelled beyond our `cancelled` refunds was sent by refunds in flight: nothing beyond
    /// means this refund never reached it; exactly this refund's card part, with no other
    /// refund of the order in flight, means it went through; anything else cannot be told
    /// apart and stays unclear (logged for an operator) rather than risk giving back twice or
    /// not at all. Our side is read before and after the PSP's, and must not move between.
    async fn inquire_cancel(
        &self,
        order: &Order,
        refund: &Refund,
    ) -> Result<CancelInquiry, PaymentError> {
        let db = &self.inner.db;
        let before = refund_store::card_accounted(db, &order.id, &refund.id).await?;
        let lookup = self
            .inner
            .psp
            .payment_by_order(&crate::executor::psp_order_id(order)?)
            .await;
        let after = refund_store::card_accounted(db, &order.id, &refund.id).await?;
        let record = match lookup {
            Ok(PaymentLookup::Found(record)) => record,
            Ok(PaymentLookup::NotFound) => {
                tracing::error!(refund = %refund.id, "the PSP has no payment for a refunded order");
                return Ok(CancelInquiry::Unclear);
            }
            Err(error) => {
                tracing::info!(refund = %refund.id, %error, "the PSP could not be asked about a cancellation");
                return Ok(CancelInquiry::Unclear);
            }
        };
        if before != after {
            return Ok(CancelInquiry::Unclear);
        }
        if order.psp_payment_key.as_deref() != Some(record.payment_key.as_str()) {
            tracing::error!(refund = %refund.id, "the PSP answered with another payment than the order's");
            return Ok(CancelInquiry::Unclear);
        }
        let unaccounted = record
            .total_amount
            .checked_sub(record.balance_amount)
            .and_then(|cancelled| cancelled.checked_sub(after.cancelled))
            .ok_or(PaymentError::AmountOutOfRange)?;
        Ok(match unaccounted {
            0 => CancelInquiry::NothingSent,
            n if n == refund.split.card && !after.others_in_flight => {
                tracing::info!(refund = %refund.id, "the PSP shows a cancellation sent before as executed");
                CancelInquiry::Cancelled
            }
            n => {
                tracing::error!(refund = %refund.id, unaccounted = n, card = refund.split.card, "the PSP's cancellations do not match the refunds; the refund waits for an operator");
                CancelInquiry::Unclear
            }
        })
    }

    /// Books the refund in one ledger transaction under its money transaction number: the
    /// seller's account gives the whole amount; the buyer's points and wallet and the PSP
    /// receivable take back their parts. Booking it again is a replay.
    async fn book_refund(
        &self,
        payment: &Payment,
        order: &Order,
        refund: &Refund,
    ) -> Result<(), PaymentError> {
        let currency = order.currency;
        let seller = self
            .inner
            .sellers
            .seller_account(&order.seller, refund.seller_account, currency)
            .await?;
        let mut postings = vec![posting(seller, Direction::Debit, refund.amount, currency)];
        if refund.split.points > 0 {
            let points = self.inner.points.account(&payment.buyer).await?;
            postings.push(posting(
                points,
                Direction::Credit,
                refund.split.points,
                currency,
            ));
        }
        if refund.split.money > 0 {
            let wallet = self.inner.wallets.account(&payment.buyer, currency).await?;
            postings.push(posting(
                wallet,
                Direction::Credit,
                refund.split.money,
                currency,
            ));
        }
        if refund.split.card > 0 {
            let (_, receivable) = self.accounts().await?;
            postings.push(posting(
                receivable,
                Direction::Credit,
                refund.split.card,
                currency,
            ));
        }
        let tx = NewTransaction {
            id: refund.money_tx_id.transaction_id(),
            postings,
            description: Some("refund of a payment order".into()),
            metadata: Some(serde_json::json!({
                "kind": "refund",
                "refund": refund.id.as_str(),
                "payment_order": order.id.as_str(),
                "payment_order_id": order.payment_order_id,
                "seller": order.seller,
            })),
            balance_limits: Vec::new(),
        };
        self.inner.ledger.post_transaction(tx).await?;
        Ok(())
    }

    /// Saves the refund's new state under the version it was read at. A refund that ends is
    /// saved with its webhook event; a failed one gives its reservation back to the order in
    /// the same transaction.
    async fn save_refund(&self, order: &Order, refund: Refund) -> Result<Refund, PaymentError> {
        let now = self.inner.ledger.now_micros();
        let mut tx = self.inner.db.begin_write().await?;
        if !refund_store::save_refund(&mut tx, &refund, now).await? {
            return Err(PaymentError::Conflict(refund.id.to_string()));
        }
        if refund.status == RefundStatus::Failed
            && !refund_store::give_back(&mut tx, &refund.order_id, refund.split, now).await?
        {
            return Err(PaymentError::Internal(format!(
                "order {} holds less refunded than refund {} reserved",
                refund.order_id, refund.id
            )));
        }
        let refund = Refund {
            version: refund.version + 1,
            updated_at: now,
            ..refund
        };
        if refund.status != RefundStatus::Pending {
            webhooks::record_event(&mut tx, &refund_event(order, &refund), now).await?;
        }
        tx.commit().await?;
        Ok(refund)
    }

    async fn reload_refund(&self, refund: &Refund) -> Result<Refund, PaymentError> {
        refund_store::refund(&self.inner.db, refund.id.as_str())
            .await?
            .ok_or_else(|| PaymentError::Internal(format!("refund {} vanished", refund.id)))
    }

    async fn order_of(&self, refund: &Refund) -> Result<Order, PaymentError> {
        store::order(&self.inner.db, refund.order_id.as_str())
            .await?
            .ok_or_else(|| PaymentError::Internal(format!("refund {} has no order", refund.id)))
    }
}

/// The PSP request that cancels a refund's card part, under the refund's id.
fn cancel_request(order: &Order, refund: &Refund) -> Result<CancelRequest, PaymentError> {
    let internal = |what: &str| {
        PaymentError::Internal(format!("refund {}: the {what} does not parse", refund.id))
    };
    let payment_key = order
        .psp_payment_key
        .as_deref()
        .and_then(|key| PaymentKey::parse(key).ok())
        .ok_or_else(|| internal("order's payment key"))?;
    let reason = if refund.reason.is_empty() {
        CANCEL_REASON_DEFAULT.to_owned()
    } else {
        refund.reason.clone()
    };
    Ok(CancelRequest {
        payment_key,
        cancel_id: CancelId::parse(refund.id.as_str()).map_err(|_| internal("refund id"))?,
        amount: CardAmount::new(refund.split.card).map_err(|_| internal("card part"))?,
        reason,
    })
}

/// Checks what needs no state: a positive amount, a key of printable ASCII (every
/// `Idempotency-Key` is one; a service may put spaces in its own, as `cancel po_…`), a reason
/// the PSP would accept.
fn check_request(request: &NewRefund) -> Result<(), PaymentError> {
    if request.amount.is_some_and(|amount| amount <= 0) {
        return Err(PaymentError::AmountOutOfRange);
    }
    let key = &request.key;
    let printable = key.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if !(1..=REFUND_KEY_LEN_MAX).contains(&key.len()) || !printable || key.trim() != key {
        return Err(PaymentError::invalid(
            "key",
            "must be 1 to 255 printable ASCII characters, without leading or trailing spaces",
        ));
    }
    let reason = &request.reason;
    if reason.chars().count() > REFUND_REASON_CHARS_MAX || reason.chars().any(char::is_control) {
        return Err(PaymentError::invalid(
            "reason",
            "must be at most 200 characters without control characters",
        ));
    }
    Ok(())
}

/// The parts a refund of `amount` (all that remains when `None`) takes from the order. An
/// escrow order whose escrow was cancelled has nothing left: the cancellation refunded it.
fn take(
    funds: &OrderFunds,
    amount: Option<i64>,
    order: &PaymentOrderKey,
) -> Result<Split, PaymentError> {
    if funds.status != OrderStatus::Success {
        return Err(PaymentError::OrderNotRefundable(order.to_string()));
    }
    let cancelled = funds.escrow_state == Some(crate::domain::EscrowState::Cancelled);
    let remaining = match refundable(funds.split, funds.refunded) {
        Some(_) if cancelled => Split::default(),
        Some(remaining) => remaining,
        None => {
            return Err(PaymentError::Internal(format!(
                "order {order} refunded more than it was paid"
            )))
        }
    };
    let total = remaining.total().ok_or(PaymentError::AmountOutOfRange)?;
    match amount {
        None if total == 0 => Err(PaymentError::NothingToRefund(order.to_string())),
        None => Ok(remaining),
        Some(asked) => refund_split(remaining, asked).ok_or(PaymentError::RefundExceedsPayment {
            asked,
            remaining: total,
        }),
    }
}

/// Where the refund takes the money back from: the seller's escrow account while the order's
/// money waits there, else its payable account. An escrow claimed for its release counts as
/// released: the release moves what was not refunded when it was claimed, so a later refund
/// must take from payable.
fn seller_account(funds: &OrderFunds) -> SellerAccount {
    let in_escrow = funds.escrow
        && !funds.escrow_releasing
        && funds.escrow_state.is_none_or(|state| state.holds_money());
    if in_escrow {
        SellerAccount::Escrow
    } else {
        SellerAccount::Payable
    }
}

fn add(a: Split, b: Split) -> Option<Split> {
    Some(Split {
        points: a.points.checked_add(b.points)?,
        money: a.money.checked_add(b.money)?,
        card: a.card.checked_add(b.card)?,
    })
}

/// The webhook event of a refund that just ended, for the order's seller; its version is the
/// refund's after the change.
fn refund_event(order: &Order, refund: &Refund) -> NewEvent {
    let text = |minor| money(minor, order.currency).to_decimal_string();
    NewEvent {
        merchant_id: order.seller.clone(),
        event_type: match refund.status {
            RefundStatus::Succeeded => EventType::RefundSucceeded,
            _ => EventType::RefundFailed,
        },
        resource_type: "refund",
        resource_id: refund.id.to_string(),
        resource_version: refund.version,
        data: serde_json::json!({
            "id": refund.id.as_str(),
            "payment_order": order.id.as_str(),
            "payment_order_id": order.payment_order_id,
            "payment_id": order.payment_id.as_str(),
            "amount": text(refund.amount),
            "currency": order.currency.code(),
            "parts": {
                "points": text(refund.split.points),
                "money": text(refund.split.money),
                "card": text(refund.split.card),
            },
            "status": refund.status.as_str(),
            "card_state": refund.card_state.as_str(),
            "failure_code": refund.failure_code,
            "money_transaction_id": refund.money_tx_id.as_str(),
        }),
    }
}

fn money(minor: i64, currency: Currency) -> Money {
    Money::from_minor(minor, currency)
}

fn posting(
    account_id: ledger::AccountId,
    direction: Direction,
    minor: i64,
    currency: Currency,
) -> PostingSpec {
    PostingSpec {
        account_id,
        direction,
        amount: money(minor, currency),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split(points: i64, money: i64, card: i64) -> Split {
        Split {
            points,
            money,
            card,
        }
    }

    #[test]
    fn refunds_take_points_first_then_money_then_card() {
        let remaining = split(1_000, 4_000, 5_000);
        assert_eq!(refund_split(remaining, 500), Some(split(500, 0, 0)));
        assert_eq!(refund_split(remaining, 3_000), Some(split(1_000, 2_000, 0)));
        assert_eq!(
            refund_split(remaining, 7_000),
            Some(split(1_000, 4_000, 2_000))
        );
        assert_eq!(refund_split(remaining, 10_000), Some(remaining));
        assert_eq!(refund_split(remaining, 10_001), None);
        assert_eq!(refund_split(remaining, -1), None);
    }

    #[test]
    fn what_remains_is_paid_minus_refunded() {
        let paid = split(1_000, 4_000, 5_000);
        assert_eq!(
            refundable(paid, split(1_000, 1_000, 0)),
            Some(split(0, 3_000, 5_000))
        );
        assert_eq!(
            refund_split(split(0, 3_000, 5_000), 4_000),
            Some(split(0, 3_000, 1_000))
        );
    }

    #[test]
    fn requests_are_checked_before_anything_is_read() {
        let ok = NewRefund {
            order: "po_x".into(),
            amount: Some(1),
            key: "k-1".into(),
            reason: "단순 변심".into(),
        };
        assert!(check_request(&ok).is_ok());
        let spaced = NewRefund {
            key: "cancel po_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B".into(),
            ..ok.clone()
        };
        assert!(check_request(&spaced).is_ok());
        let bad = [
            NewRefund {
                amount: Some(0),
                ..ok.clone()
            },
            NewRefund {
                key: String::new(),
                ..ok.clone()
            },
            NewRefund {
                key: " padded".into(),
                ..ok.clone()
            },
            NewRefund {
                key: "tab\tin".into(),
                ..ok.clone()
            },
            NewRefund {
                key: "키".into(),
                ..ok.clone()
            },
            NewRefund {
                key: "k".repeat(256),
                ..ok.clone()
            },
            NewRefund {
                reason: "r".repeat(201),
                ..ok.clone()
            },
            NewRefund {
                reason: "line\nbreak".into(),
                ..ok.clone()
            },
        ];
        for request in bad {
            assert!(check_request(&request).is_err(), "{request:?}");
        }
    }

    #[test]
    fn a_refund_takes_from_escrow_only_while_the_money_waits_there() {
        use crate::domain::EscrowState;
        let funds = |escrow, escrow_state| OrderFunds {
            status: OrderStatus::Success,
            version: 1,
            split: split(0, 1_000, 0),
            refunded: Split::default(),
            escrow,
            escrow_state,
            escrow_releasing: false,
        };
        assert_eq!(seller_account(&funds(false, None)), SellerAccount::Payable);
        let releasing = OrderFunds {
            escrow_releasing: true,
            ..funds(true, Some(EscrowState::Delivered))
        };
        assert_eq!(seller_account(&releasing), SellerAccount::Payable);
        assert_eq!(
            seller_account(&funds(true, Some(EscrowState::Shipped))),
            SellerAccount::Escrow
        );
        assert_eq!(
            seller_account(&funds(true, Some(EscrowState::Confirmed))),
            SellerAccount::Payable
        );
        let order = PaymentOrderKey::generate();
        assert!(matches!(
            take(&funds(true, Some(EscrowState::Cancelled)), None, &order),
            Err(PaymentError::NothingToRefund(_))
        ));
        assert!(matches!(
            take(&funds(false, None), Some(1_001), &order),
            Err(PaymentError::RefundExceedsPayment {
                asked: 1_001,
                remaining: 1_000
            })
        ));
    }

    proptest! {
        #[test]
        fn refunds_never_exceed_what_was_paid_and_empty_sources_in_order(
            points in 0i64..100_000, money in 0i64..100_000, card in 0i64..100_000,
            asks in proptest::collection::vec(1i64..60_000, 1..12),
        ) {
            let paid = split(points, money, card);
            let mut refunded = Split::default();
            for ask in asks {
                let remaining = refundable(paid, refunded).unwrap();
                match refund_split(remaining, ask) {
                    Some(part) => {
                        prop_assert_eq!(part.total(), Some(ask));
                        prop_assert!(part.points >= 0 && part.money >= 0 && part.card >= 0);
                        // A later source is touched only once the earlier ones are empty.
                        prop_assert!(part.money == 0 || part.points == remaining.points);
                        prop_assert!(part.card == 0 || part.money == remaining.money);
                        refunded = add(refunded, part).unwrap();
                    }
                    None => prop_assert!(Some(ask) > remaining.total()),
                }
                prop_assert!(refundable(paid, refunded).is_some(), "never more than was paid");
            }
        }
    }
}
