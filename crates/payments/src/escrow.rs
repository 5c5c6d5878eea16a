//! Escrow (에스크로, 안전결제): an escrow order's money waits in the seller's escrow account
//! from the order's success until the buyer confirms (or the timer does, a week after
//! delivery), and is then released to the seller's payable account; until its window closes
//! it may instead be cancelled, which refunds the buyer. The rules are in `escrow_rules`, the
//! SQL in `escrow_store`; this is the service that reads, decides, writes and moves money.
//!
//! Every step is written under the version it was decided on, with its webhook event in the
//! same database transaction. Confirming and cancelling move money, so each first claims the
//! escrow (`closing`), then moves the money under an id derived from the order (the release
//! transaction `{po}.release`, the refund key `cancel {po}`), then reaches its state: a step
//! that stops anywhere is continued by repeating it, or by the due pass.

use ledger::{Direction, Micros, NewTransaction, PostingSpec, TransactionId};
use membership::MemberId;
use money::Money;
use time::macros::format_description;
use time::OffsetDateTime;
use webhooks::{EventType, NewEvent};

use crate::domain::{EscrowState, PaymentOrderKey, Split};
use crate::escrow_rules::{self, Begin, Escrow, EscrowActor, EscrowClosing, EscrowError};
use crate::escrow_store;
use crate::executor::micros;
use crate::refund::{NewRefund, RefundStatus};
use crate::sellers::SellerAccount;
use crate::service::Payments;
use crate::store::{self, Order};
use crate::PaymentError;

/// The most escrows one due pass confirms, and the most half-ended ones it finishes.
pub const ESCROW_DUE_BATCH_MAX: i64 = 500;

/// The scope of the refunds escrow cancellations make: their keys (`cancel {po}`) are unique
/// within it and never meet a client's.
pub const ESCROW_REFUND_SCOPE: &str = "escrow";

/// How often a step re-reads an escrow that another writer changed under it before giving up.
const CONFLICT_RETRIES: usize = 4;
/// How many refunds one cancellation run makes or continues before leaving the rest to the
/// due pass: a round needs another only when refunds pending beside it ended meanwhile.
const CANCEL_ROUNDS: usize = 4;

/// An escrow with the order whose money it holds and the order's buyer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscrowView {
    pub escrow: Escrow,
    pub order: Order,
    pub buyer: MemberId,
}

/// Who took a step and why, for its event.
struct Step {
    event_type: EventType,
    actor: EscrowActor,
    reason: Option<String>,
}

impl Payments {
    /// The escrow of an order, by our id (`po_…`) or the client's payment order id. An order
    /// that does not exist, is not an escrow order, or never succeeded has none
    /// (`escrow_not_found`).
    pub async fn escrow(&self, order: &str) -> Result<EscrowView, PaymentError> {
        let not_found =
            || PaymentError::from(EscrowError::NotFound(order.chars().take(64).collect()));
        let Some(found) = store::order(&self.inner.db, order).await? else {
            return Err(not_found());
        };
        if !found.escrow {
            return Err(not_found());
        }
        let Some(escrow) = escrow_store::escrow(&self.inner.db, &found.id).await? else {
            return Err(not_found());
        };
        let payment = store::payment(&self.inner.db, found.payment_id.as_str())
            .await?
            .ok_or_else(|| PaymentError::Internal(format!("order {} has no payment", found.id)))?;
        Ok(EscrowView {
            escrow,
            order: found,
            buyer: payment.buyer,
        })
    }

    /// The seller (or staff) shipped the goods, optionally under a carrier's tracking number.
    pub async fn escrow_ship(
        &self,
        order: &str,
        actor: EscrowActor,
        tracking_number: Option<String>,
    ) -> Result<EscrowView, PaymentError> {
        let tracking_number = escrow_rules::tracking_number(tracking_number)?;
        let step = Step {
            event_type: EventType::EscrowShipped,
            actor,
            reason: None,
        };
        self.escrow_step(order, step, |escrow, now| {
            escrow.ship(actor, tracking_number.clone(), now)
        })
        .await
    }

    /// The goods arrived; the escrow confirms itself `escrow_auto_confirm_after` later.
    pub async fn escrow_deliver(
        &self,
        order: &str,
        actor: EscrowActor,
    ) -> Result<EscrowView, PaymentError> {
        let after = self.inner.config.escrow_auto_confirm_after;
        let step = Step {
            event_type: EventType::EscrowDelivered,
            actor,
            reason: None,
        };
        self.escrow_step(order, step, |escrow, now| escrow.deliver(actor, after, now))
            .await
    }

    /// Opens a dispute: the escrow's timers stand still until staff resolve it.
    pub async fn escrow_dispute(
        &self,
        order: &str,
        actor: EscrowActor,
        reason: Option<String>,
    ) -> Result<EscrowView, PaymentError> {
        let step = Step {
            event_type: EventType::EscrowDisputed,
            actor,
            reason: escrow_rules::reason(reason)?,
        };
        self.escrow_step(order, step, |escrow, now| escrow.dispute(actor, now))
            .await
    }

    /// Resolves a dispute (staff): the timers run again, moved later by the time it lasted.
    /// Staff who side with one party then confirm or cancel the escrow (or refund through the
    /// refunds API once the window has closed).
    pub async fn escrow_resolve(
        &self,
        order: &str,
        actor: EscrowActor,
        reason: Option<String>,
    ) -> Result<EscrowView, PaymentError> {
        let step = Step {
            event_type: EventType::EscrowResolved,
            actor,
            reason: escrow_rules::reason(reason)?,
        };
        self.escrow_step(order, step, |escrow, now| escrow.resolve(actor, now))
            .await
    }

    /// Confirms the escrow: releases what the buyer has not been refunded to the seller's
    /// payable account, then marks it confirmed. Refused while a refund of the order is in
    /// progress (`refund_in_progress`).
    pub async fn escrow_confirm(
        &self,
        order: &str,
        actor: EscrowActor,
    ) -> Result<EscrowView, PaymentError> {
        let view = self
            .escrow_claim(order, EscrowClosing::Confirm, |escrow, now| {
                escrow.begin_confirm(actor, now)
            })
            .await?;
        if view.escrow.closing != Some(EscrowClosing::Confirm) {
            return Ok(view);
        }
        self.escrow_finish_confirm(view).await
    }

    /// Cancels the escrow within its window: refunds the buyer everything still refundable,
    /// then marks it cancelled.
    pub async fn escrow_cancel(
        &self,
        order: &str,
        actor: EscrowActor,
        reason: Option<String>,
    ) -> Result<EscrowView, PaymentError> {
        let reason = escrow_rules::reason(reason)?;
        let view = self
            .escrow_claim(order, EscrowClosing::Cancel, |escrow, now| {
                escrow.begin_cancel(actor, reason.clone(), now)
            })
            .await?;
        if view.escrow.closing != Some(EscrowClosing::Cancel) {
            return Ok(view);
        }
        self.escrow_finish_cancel(view).await
    }

    /// One pass of the escrow timer: confirms delivered escrows whose `confirm_at` has come
    /// (no dispute open, no refund in progress), then finishes escrows a crash left claimed
    /// for at least `resume_after`. Answers how many escrows it ended. `mypay serve` runs it
    /// every minute.
    pub async fn escrow_due(&self, limit: i64) -> Result<usize, PaymentError> {
        let limit = limit.clamp(1, ESCROW_DUE_BATCH_MAX);
        let now = self.inner.ledger.now_micros();
        let mut ended = 0;
        for order in escrow_store::due_escrows(&self.inner.db, now, limit).await? {
            match self
                .escrow_confirm(order.as_str(), EscrowActor::Timer)
                .await
            {
                Ok(view) if view.escrow.state == EscrowState::Confirmed => ended += 1,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(order = %order, code = error.code(), %error, "an escrow due to confirm was left for the next pass");
                }
            }
        }
        let before = now.saturating_sub(micros(self.inner.config.resume_after));
        for order in escrow_store::unfinished_closings(&self.inner.db, before, limit).await? {
            match self.escrow_finish_closing(&order).await {
                Ok(true) => ended += 1,
                Ok(false) => escrow_store::touch_closing(&self.inner.db, &order, now).await?,
                Err(error) => {
                    tracing::warn!(order = %order, code = error.code(), %error, "finishing an escrow failed");
                    escrow_store::touch_closing(&self.inner.db, &order, now).await?;
                }
            }
        }
        Ok(ended)
    }

    /// Continues a claimed escrow to its end; `true` once it is confirmed or cancelled.
    async fn escrow_finish_closing(&self, order: &PaymentOrderKey) -> Result<bool, PaymentError> {
        let view = self.escrow(order.as_str()).await?;
        let view = match view.escrow.closing {
            Some(EscrowClosing::Confirm) => self.escrow_finish_confirm(view).await?,
            Some(EscrowClosing::Cancel) => self.escrow_finish_cancel(view).await?,
            None => view,
        };
        Ok(!view.escrow.state.holds_money())
    }

    /// Applies a step that moves no money: decided on the escrow as read, written under its
    /// version with its event; re-read and decided again when someone else wrote first.
    async fn escrow_step(
        &self,
        order: &str,
        step: Step,
        rule: impl Fn(&Escrow, Micros) -> Result<Option<Escrow>, EscrowError>,
    ) -> Result<EscrowView, PaymentError> {
        for _ in 0..CONFLICT_RETRIES {
            let view = self.escrow(order).await?;
            let now = self.inner.ledger.now_micros();
            let Some(next) = rule(&view.escrow, now)? else {
                return Ok(view);
            };
            if let Saved::Written(view) = self
                .escrow_save(view, next, Some(&step), Guard::None, now)
                .await?
            {
                return Ok(*view);
            }
        }
        Err(PaymentError::Conflict(order.chars().take(64).collect()))
    }

    /// Claims the escrow for a confirmation or a cancellation, or answers it as it is when the
    /// rule says it already ended (or was claimed) that way. A confirmation takes the order's
    /// row in the same transaction, is refused while a refund of the order is pending (what it
    /// releases depends on the refund's end), and fixes what it releases: the order's amount
    /// less what refunds have taken. Refunds reserved after the claim take from payable.
    async fn escrow_claim(
        &self,
        order: &str,
        closing: EscrowClosing,
        rule: impl Fn(&Escrow, Micros) -> Result<Begin, EscrowError>,
    ) -> Result<EscrowView, PaymentError> {
        for _ in 0..CONFLICT_RETRIES {
            let view = self.escrow(order).await?;
            let now = self.inner.ledger.now_micros();
            let mut next = match rule(&view.escrow, now)? {
                Begin::Done | Begin::Continue => return Ok(view),
                Begin::Claim(next) => *next,
            };
            let mut tx = self.inner.db.begin_write().await?;
            if closing == EscrowClosing::Confirm {
                let (amount, refunded) = escrow_store::take_order(&mut tx, &view.order.id).await?;
                next.release_amount = Some(left_after_refunds(&view.order.id, amount, refunded)?);
            }
            // The escrow's own version first: a claim that lost to another step is decided
            // again on what that step left, not refused for what it is doing.
            if !escrow_store::save_escrow(&mut tx, &next, now).await? {
                continue;
            }
            if closing == EscrowClosing::Confirm
                && escrow_store::refund_pending(&mut tx, &view.order.id).await?
            {
                return Err(EscrowError::RefundInProgress.into());
            }
            tx.commit().await?;
            return self.escrow(order).await;
        }
        Err(PaymentError::Conflict(order.chars().take(64).collect()))
    }

    /// Releases a claimed confirmation's money, then marks the escrow confirmed.
    async fn escrow_finish_confirm(&self, view: EscrowView) -> Result<EscrowView, PaymentError> {
        self.escrow_release(&view).await?;
        self.escrow_close(view, EventType::EscrowConfirmed).await
    }

    /// One ledger transaction `{po}.release`: Dr the seller's escrow account, Cr its payable
    /// account, for the amount the claim fixed. Posting it again is a replay. Nothing is
    /// posted when refunds gave everything back.
    async fn escrow_release(&self, view: &EscrowView) -> Result<(), PaymentError> {
        let order = &view.order;
        let amount = view.escrow.release_amount.ok_or_else(|| {
            PaymentError::Internal(format!("escrow {} was claimed without an amount", order.id))
        })?;
        if amount == 0 {
            return Ok(());
        }
        let sellers = &self.inner.sellers;
        let escrow = sellers
            .seller_account(&order.seller, SellerAccount::Escrow, order.currency)
            .await?;
        let payable = sellers
            .seller_account(&order.seller, SellerAccount::Payable, order.currency)
            .await?;
        let leg = |account_id, direction| PostingSpec {
            account_id,
            direction,
            amount: Money::from_minor(amount, order.currency),
        };
        let tx = NewTransaction {
            id: release_id(&order.id)?,
            postings: vec![
                leg(escrow, Direction::Debit),
                leg(payable, Direction::Credit),
            ],
            description: Some("escrow released to the seller".into()),
            metadata: Some(serde_json::json!({
                "kind": "escrow_release",
                "payment_order": order.id.as_str(),
                "payment_order_id": order.payment_order_id,
                "seller": order.seller,
            })),
            balance_limits: Vec::new(),
        };
        self.inner.ledger.post_transaction(tx).await?;
        Ok(())
    }

    /// Refunds a claimed cancellation, then marks the escrow cancelled. The buyer gets back
    /// everything no other refund took: the escrow's own refunds (scope `escrow`, keys
    /// `cancel {po}`, then `cancel {po} #2`, …) are derived from the order and counted from
    /// what is stored, so finishing it again (a retry, the due pass) finds the same refunds.
    ///
    /// The escrow is marked cancelled only when, under the order's row lock, the order is
    /// refunded in full and no refund of it is pending: a refund pending beside the escrow's
    /// own leaves it claimed (`cancelling`), since one the PSP then refuses gives its parts
    /// back to the order, and the next round (the due pass) refunds them under a new key. A
    /// refund of the escrow's own that the PSP refused, or one refused before anything was
    /// reserved, gives the claim up: the escrow runs on as before, and cancelling again tries
    /// a new refund.
    async fn escrow_finish_cancel(&self, view: EscrowView) -> Result<EscrowView, PaymentError> {
        let actor = view.escrow.closed_by.ok_or_else(|| {
            PaymentError::Internal(format!("escrow {} was claimed by nobody", view.order.id))
        })?;
        let order = view.order.id.to_string();
        let reason = view
            .escrow
            .cancel_reason
            .clone()
            .unwrap_or_else(|| format!("escrow cancelled by the {}", actor.as_str()));
        let mut view = view;
        for _ in 0..CANCEL_ROUNDS {
            let request = NewRefund {
                order: order.clone(),
                amount: None,
                key: self.cancel_refund_key(&view.order.id).await?,
                reason: reason.clone(),
            };
            match self.refund(ESCROW_REFUND_SCOPE, request).await {
                Ok(refunded) => match refunded.refund.status {
                    RefundStatus::Succeeded => {}
                    RefundStatus::Pending => return self.escrow(&order).await,
                    RefundStatus::Failed => {
                        self.escrow_unclaim(view).await?;
                        return Err(EscrowError::RefundRefused {
                            refund: refunded.refund.id.to_string(),
                            failure_code: refunded.refund.failure_code.unwrap_or_default(),
                        }
                        .into());
                    }
                },
                // Other refunds took (or reserved) everything: only their end is awaited.
                Err(PaymentError::NothingToRefund(_)) => {}
                Err(
                    error @ (PaymentError::Invalid { .. }
                    | PaymentError::OrderNotRefundable(_)
                    | PaymentError::RefundKeyReused(_)
                    | PaymentError::RefundExceedsPayment { .. }),
                ) => {
                    self.escrow_unclaim(view).await?;
                    return Err(error);
                }
                Err(error) => return Err(error),
            }
            view = self.escrow(&order).await?;
            view = self.escrow_close(view, EventType::EscrowCancelled).await?;
            let refunds =
                escrow_store::cancel_refunds(&self.inner.db, &view.order.id, ESCROW_REFUND_SCOPE)
                    .await?;
            if view.escrow.closing.is_none() && view.escrow.state != EscrowState::Cancelled {
                // Another run gave the claim up meanwhile (its refund was refused).
                return Err(PaymentError::Conflict(order));
            }
            if view.escrow.closing.is_none() || refunds.others_pending {
                return Ok(view);
            }
        }
        Ok(view)
    }

    /// The key of the escrow refund a cancellation round runs: its own pending refund to
    /// continue, else a fresh key for whatever is left (`cancel {po}`, then `#2`, `#3`, … as
    /// earlier ones ended). A fresh key is spent only when its refund reserves something.
    async fn cancel_refund_key(&self, order: &PaymentOrderKey) -> Result<String, PaymentError> {
        let refunds =
            escrow_store::cancel_refunds(&self.inner.db, order, ESCROW_REFUND_SCOPE).await?;
        Ok(match (refunds.own_pending, refunds.own_made) {
            (Some(key), _) => key,
            (None, 0) => format!("cancel {order}"),
            (None, made) => format!("cancel {order} #{}", made + 1),
        })
    }

    /// Gives a cancellation's claim up, unless someone changed the escrow meanwhile.
    async fn escrow_unclaim(&self, view: EscrowView) -> Result<(), PaymentError> {
        let now = self.inner.ledger.now_micros();
        let next = view.escrow.unclaim();
        let order = view.order.id.clone();
        let saved = self.escrow_save(view, next, None, Guard::None, now).await?;
        if !matches!(saved, Saved::Written(_)) {
            tracing::warn!(order = %order, "an escrow changed while its refused cancellation was given up");
        }
        Ok(())
    }

    /// Ends a claimed escrow (its money moved) with its event, by whoever claimed it. A
    /// cancellation ends only when the order is refunded in full with no refund pending
    /// (checked under the order's row lock); otherwise the escrow is answered still claimed.
    async fn escrow_close(
        &self,
        view: EscrowView,
        event_type: EventType,
    ) -> Result<EscrowView, PaymentError> {
        let mut view = view;
        for _ in 0..CONFLICT_RETRIES {
            let Some(closing) = view.escrow.closing else {
                return Ok(view);
            };
            let actor = view.escrow.closed_by.ok_or_else(|| {
                PaymentError::Internal(format!("escrow {} was claimed by nobody", view.order.id))
            })?;
            let (reason, guard) = match closing {
                EscrowClosing::Cancel => (view.escrow.cancel_reason.clone(), Guard::AllRefunded),
                EscrowClosing::Confirm => (None, Guard::None),
            };
            let step = Step {
                event_type,
                actor,
                reason,
            };
            let now = self.inner.ledger.now_micros();
            let next = view.escrow.close(now);
            match self
                .escrow_save(view.clone(), next, Some(&step), guard, now)
                .await?
            {
                Saved::Written(closed) => return Ok(*closed),
                Saved::RefundsOpen => return Ok(view),
                Saved::Stale => view = self.escrow(view.order.id.as_str()).await?,
            }
        }
        Err(PaymentError::Conflict(view.order.id.to_string()))
    }

    /// Writes `next` if the escrow is still at the version `view` read (and the guard holds),
    /// with the step's event in the same transaction.
    async fn escrow_save(
        &self,
        view: EscrowView,
        next: Escrow,
        step: Option<&Step>,
        guard: Guard,
        now: Micros,
    ) -> Result<Saved, PaymentError> {
        debug_assert_eq!(next.version, view.escrow.version);
        let mut tx = self.inner.db.begin_write().await?;
        if guard == Guard::AllRefunded {
            // The order's row first: a refund reserving now either committed before (and is
            // seen pending here) or waits for this transaction and then finds the escrow
            // cancelled, with nothing left to take.
            let (amount, refunded) = escrow_store::take_order(&mut tx, &view.order.id).await?;
            if left_after_refunds(&view.order.id, amount, refunded)? > 0
                || escrow_store::refund_pending(&mut tx, &view.order.id).await?
            {
                return Ok(Saved::RefundsOpen);
            }
        }
        if !escrow_store::save_escrow(&mut tx, &next, now).await? {
            return Ok(Saved::Stale);
        }
        let view = EscrowView {
            escrow: Escrow {
                version: next.version + 1,
                updated_at: now,
                ..next
            },
            ..view
        };
        if let Some(step) = step {
            webhooks::record_event(&mut tx, &event(&view, step), now).await?;
        }
        tx.commit().await?;
        Ok(Saved::Written(Box::new(view)))
    }
}

/// What must hold, besides the escrow's version, for a save to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    None,
    /// The order is refunded in full and no refund of it is pending: a cancellation's end.
    AllRefunded,
}

/// What became of a save.
enum Saved {
    Written(Box<EscrowView>),
    /// Another writer changed the escrow first.
    Stale,
    /// The guard `AllRefunded` did not hold: money is still out, or a refund may give some back.
    RefundsOpen,
}

/// What an order has left after its refunds: what a confirmation releases.
fn left_after_refunds(
    order: &PaymentOrderKey,
    amount: i64,
    refunded: Split,
) -> Result<i64, PaymentError> {
    let left = refunded
        .total()
        .and_then(|refunded| amount.checked_sub(refunded))
        .ok_or(PaymentError::AmountOutOfRange)?;
    if left < 0 {
        return Err(PaymentError::Internal(format!(
            "order {order} refunded more than it was paid"
        )));
    }
    Ok(left)
}

/// The ledger transaction that releases an escrow order's money to its seller.
fn release_id(order: &PaymentOrderKey) -> Result<TransactionId, PaymentError> {
    Ok(TransactionId::parse(&format!("{order}.release"))?)
}

/// The event of a step, for the order's seller, carrying the escrow's new version.
fn event(view: &EscrowView, step: &Step) -> NewEvent {
    let escrow = &view.escrow;
    let order = &view.order;
    let time = |at: Option<Micros>| at.map(rfc3339);
    let money = |minor: i64| Money::from_minor(minor, order.currency).to_decimal_string();
    NewEvent {
        merchant_id: order.seller.clone(),
        event_type: step.event_type,
        resource_type: "escrow",
        resource_id: order.id.to_string(),
        resource_version: escrow.version,
        data: serde_json::json!({
            "id": order.id.as_str(),
            "payment_order_id": order.payment_order_id,
            "payment_id": order.payment_id.as_str(),
            "amount": money(order.amount),
            "refunded": order.refunded.total().map(money),
            "currency": order.currency.code(),
            "state": escrow.state.as_str(),
            "held_at": rfc3339(escrow.held_at),
            "cancel_until": rfc3339(escrow.cancel_until),
            "shipped_at": time(escrow.shipped_at),
            "tracking_number": escrow.tracking_number,
            "delivered_at": time(escrow.delivered_at),
            "confirm_at": time(escrow.confirm_at),
            "disputed_at": time(escrow.disputed_at),
            "disputed_by": escrow.disputed_by.map(EscrowActor::as_str),
            "closed_at": time(escrow.closed_at),
            "closed_by": escrow.closed_by.map(EscrowActor::as_str),
            "actor": step.actor.as_str(),
            "reason": step.reason,
        }),
    }
}

/// RFC 3339 in UTC with six fraction digits, as the API and the webhook envelope write times.
fn rfc3339(micros: Micros) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .and_then(|instant| instant.format(format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000000Z".to_owned())
}
