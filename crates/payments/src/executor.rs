//! The payment executor: one order, step by step. Each step is repeatable and its result is
//! saved on the order (under the order's version) before the next, so a run that stops
//! anywhere (a crash, an unknown card outcome) is continued by the next run from where it
//! stopped. A run first claims the order for a lease, so two runs never move one order's money
//! at once; a run whose lease ran out finds its next save refused and stops.
//!
//! 1. NOT_STARTED → EXECUTING (with the claim).
//! 2. Hold the buyer's points and wallet money (ids derived from the order; a repeat is a
//!    replay). A refusal (too few points, insufficient funds) fails the order.
//! 3. Charge the card part under the order id, which is the PSP's idempotency key. The order
//!    is marked `requested` (with the send time) before each send; a run that finds it so asks
//!    the PSP first.
//! 4. Take the held points and money (`wallet_updated`).
//! 5. Book the order to the seller in one ledger transaction whose id is the order id
//!    (`ledger_updated`), then SUCCESS.
//!
//! Failing an order commits FAILED first and gives the held funds back afterwards
//! (`funds_released`), so no run can release funds of an order that another run goes on with;
//! the resumer finishes releases a crash interrupted.

use ledger::{
    Direction, HoldState, LedgerError, Micros, NewHold, NewTransaction, PostHold, PostingSpec,
};
use money::{Currency, Money};
use psp::{
    BillingKey, CardAmount, ChargeOutcome, ChargeRequest, CustomerKey, OrderName, PaymentLookup,
    PaymentStatus as PspPaymentStatus, PspOrderId, RefusalReason,
};
use wallet::{MoneyTxId, OperationState, PaymentDebit, WalletError};

use crate::domain::{CardState, EscrowState, OrderStatus};
use crate::events;
use crate::sellers::SellerAccount;
use crate::service::Payments;
use crate::store::{self, Order, Payment};
use crate::PaymentError;

/// How often a run re-reads an order that another run changed under it before giving up.
const CONFLICT_RETRIES: usize = 4;

/// How the card step ended.
enum Card {
    /// Approved and saved: the order goes on.
    Approved(Order),
    /// The order failed, or waits for the PSP's answer: this run stops here.
    Ended(Order),
}

/// What an inquiry by order id decided.
enum Inquiry {
    Approved(String),
    Declined(&'static str),
    SendAgain,
    NeverReceived,
    Wait,
}

impl Payments {
    /// Runs an order as far as it can go now and returns it as saved.
    pub(crate) async fn execute_order(
        &self,
        payment: &Payment,
        order: Order,
    ) -> Result<Order, PaymentError> {
        let mut order = order;
        for _ in 0..CONFLICT_RETRIES {
            match self.advance(payment, order.clone()).await {
                Err(PaymentError::Conflict(_)) => order = self.reload(&order).await?,
                done => return done,
            }
        }
        Err(PaymentError::Conflict(order.id.to_string()))
    }

    async fn advance(&self, payment: &Payment, order: Order) -> Result<Order, PaymentError> {
        if order.status == OrderStatus::Failed && !order.funds_released {
            return self.release_funds(order).await;
        }
        if order.status.is_final() {
            return Ok(order);
        }
        let Some(mut order) = self.claim(order.clone()).await? else {
            return Ok(order);
        };
        if !order.wallet_updated {
            match self.hold_buyer_funds(payment, &order).await {
                Ok(money_tx_id) if money_tx_id != order.money_tx_id => {
                    order = self
                        .save(Order {
                            money_tx_id,
                            ..order
                        })
                        .await?;
                }
                Ok(_) => {}
                Err(error) => match refusal(&error) {
                    Some(code) if order.card_state == CardState::None => {
                        return self.fail(order, code, failure_message(code)).await
                    }
                    _ => return Err(error),
                },
            }
        }
        if order.split.card > 0 && order.card_state != CardState::Approved {
            order = match self.card(payment, order).await? {
                Card::Approved(order) => order,
                Card::Ended(order) => return Ok(order),
            };
        }
        if !order.wallet_updated {
            self.take_buyer_funds(&order).await?;
            order = self
                .save(Order {
                    wallet_updated: true,
                    ..order
                })
                .await?;
        }
        if !order.ledger_updated {
            self.book(payment, &order).await?;
            order = self
                .save(Order {
                    ledger_updated: true,
                    ..order
                })
                .await?;
        }
        self.save(Order {
            status: OrderStatus::Success,
            ..order
        })
        .await
    }

    /// Claims the order for this run until the lease passes (NOT_STARTED becomes EXECUTING);
    /// `None` while another run's lease is live.
    async fn claim(&self, order: Order) -> Result<Option<Order>, PaymentError> {
        let now = self.inner.ledger.now_micros();
        if order.claimed_until > now {
            return Ok(None);
        }
        let claimed = self
            .save(Order {
                status: OrderStatus::Executing,
                claimed_until: now.saturating_add(micros(self.inner.config.claim_lease)),
                ..order
            })
            .await?;
        Ok(Some(claimed))
    }

    /// Gives the claim up, so that the next run need not wait for the lease: the order waits
    /// for something outside (the PSP's answer).
    async fn unclaim(&self, order: Order) -> Result<Order, PaymentError> {
        self.save(Order {
            claimed_until: 0,
            ..order
        })
        .await
    }

    /// Holds the order's points and money; answers the wallet operation holding the money.
    async fn hold_buyer_funds(
        &self,
        payment: &Payment,
        order: &Order,
    ) -> Result<Option<String>, PaymentError> {
        let (clearing, _) = self.accounts().await?;
        if order.split.points > 0 {
            let points = self.inner.points.account(&payment.buyer).await?;
            let hold = NewHold {
                id: order.id.points_hold_id(),
                debit_account_id: points,
                credit_account_id: clearing.clone(),
                amount: money(order.split.points, order.currency),
                expires_at: None,
                metadata: Some(serde_json::json!({"payment_order": order.id.as_str()})),
                balance_limits: Vec::new(),
            };
            let held = self.inner.ledger.reserve_hold(hold).await?.value;
            // A repeat answers the stored hold whatever became of it; funds are released only
            // after the order failed, so a released hold here means the order's state is wrong.
            if !matches!(held.state, HoldState::Pending | HoldState::Posted) {
                return Err(PaymentError::Internal(format!(
                    "the points hold of {} is {}, yet the order goes on",
                    order.id,
                    held.state.as_str()
                )));
            }
        }
        if order.split.money == 0 {
            return Ok(order.money_tx_id.clone());
        }
        let seller = self.inner.sellers.seller(&order.seller).await?;
        let movement = self
            .inner
            .wallets
            .reserve_payment(
                &payment.buyer,
                PaymentDebit {
                    amount: money(order.split.money, order.currency),
                    credit_account: clearing,
                    merchant_label: seller.name,
                    payment_order: order.id.to_string(),
                    auto_top_up: payment.auto_top_up,
                },
            )
            .await?;
        let op = movement.transaction.operation;
        if op.state == OperationState::Failed {
            return Err(WalletError::InsufficientFunds { top_up: None }.into());
        }
        Ok(Some(op.id.to_string()))
    }

    /// The card step: asks the PSP first when an earlier send's outcome is unknown, sends (or
    /// sends again, under the same order id) when allowed, and ends with the approval saved,
    /// the order failed, or the order waiting for the PSP with its claim given up.
    async fn card(&self, payment: &Payment, order: Order) -> Result<Card, PaymentError> {
        let sent_before = order.card_state == CardState::Requested;
        if sent_before {
            match self.inquire(&order).await? {
                Inquiry::Approved(key) => {
                    return Ok(Card::Approved(self.approved(order, key).await?))
                }
                Inquiry::Declined(code) => {
                    return Ok(Card::Ended(
                        self.fail(order, code, failure_message(code)).await?,
                    ))
                }
                Inquiry::SendAgain => {}
                Inquiry::NeverReceived => {
                    let code = "card_not_charged";
                    return Ok(Card::Ended(
                        self.fail(order, code, failure_message(code)).await?,
                    ));
                }
                Inquiry::Wait => return Ok(Card::Ended(self.unclaim(order).await?)),
            }
        }
        let now = self.inner.ledger.now_micros();
        let order = self
            .save(Order {
                card_state: CardState::Requested,
                card_first_sent_at: order.card_first_sent_at.or(Some(now)),
                card_last_sent_at: Some(now),
                claimed_until: now.saturating_add(micros(self.inner.config.claim_lease)),
                ..order
            })
            .await?;
        let request = self.charge_request(payment, &order, psp_order_id(&order)?)?;
        match self.inner.psp.charge(&request).await {
            ChargeOutcome::Approved(approval) if approval.amount.won() == order.split.card => {
                let key = approval.payment_key.as_str().to_owned();
                Ok(Card::Approved(self.approved(order, key).await?))
            }
            ChargeOutcome::Approved(approval) => {
                tracing::error!(order = %order.id, approved = approval.amount.won(), "the PSP approved another amount; the order waits for an operator");
                Ok(Card::Ended(self.unclaim(order).await?))
            }
            // A charge sent again that was turned away proves nothing about the first send:
            // only the card company's own decline is final then.
            ChargeOutcome::Declined(refusal)
                if !sent_before || refusal.reason == RefusalReason::CardDeclined =>
            {
                let code = refusal.reason.as_str();
                Ok(Card::Ended(
                    self.fail(order, code, decline_message(&refusal)).await?,
                ))
            }
            ChargeOutcome::Declined(_) | ChargeOutcome::Unknown { .. } => {
                tracing::warn!(order = %order.id, "card charge outcome unknown; the resumer will ask the PSP");
                Ok(Card::Ended(self.unclaim(order).await?))
            }
        }
    }

    /// What the PSP knows of an order whose charge was sent before.
    async fn inquire(&self, order: &Order) -> Result<Inquiry, PaymentError> {
        let lookup = match self.inner.psp.payment_by_order(&psp_order_id(order)?).await {
            Ok(lookup) => lookup,
            Err(error) => {
                tracing::info!(order = %order.id, %error, "the PSP could not be asked about a charge");
                return Ok(Inquiry::Wait);
            }
        };
        let record = match lookup {
            PaymentLookup::Found(record) => record,
            PaymentLookup::NotFound => return Ok(self.not_found_at_psp(order)),
        };
        match record.approval() {
            Some(approval) if approval.amount.won() == order.split.card => {
                Ok(Inquiry::Approved(approval.payment_key.as_str().to_owned()))
            }
            Some(approval) => {
                tracing::error!(order = %order.id, approved = approval.amount.won(), "the PSP holds another amount for this order; it waits for an operator");
                Ok(Inquiry::Wait)
            }
            None if matches!(record.status, PspPaymentStatus::Aborted)
                || matches!(&record.status, PspPaymentStatus::Other(status) if status == "EXPIRED") =>
            {
                Ok(Inquiry::Declined(RefusalReason::CardDeclined.as_str()))
            }
            None => Ok(Inquiry::Wait),
        }
    }

    /// A charge the PSP does not know: sent again (same order id) within the window of its
    /// first send; taken as never received once a window has passed since its last send, when
    /// no send can still arrive; else waited for.
    fn not_found_at_psp(&self, order: &Order) -> Inquiry {
        let now = self.inner.ledger.now_micros();
        let window = micros(self.inner.config.card_retry_window);
        let since = |at: Option<Micros>| now.saturating_sub(at.unwrap_or(order.created_at));
        if since(order.card_first_sent_at) < window {
            Inquiry::SendAgain
        } else if since(order.card_last_sent_at) >= window {
            Inquiry::NeverReceived
        } else {
            Inquiry::Wait
        }
    }

    async fn approved(&self, order: Order, payment_key: String) -> Result<Order, PaymentError> {
        self.save(Order {
            card_state: CardState::Approved,
            psp_payment_key: Some(payment_key),
            ..order
        })
        .await
    }

    fn charge_request(
        &self,
        payment: &Payment,
        order: &Order,
        order_id: PspOrderId,
    ) -> Result<ChargeRequest, PaymentError> {
        let internal = |what: &str| PaymentError::Internal(format!("stored {what} does not parse"));
        let billing_key = payment
            .billing_key
            .as_deref()
            .and_then(|key| BillingKey::parse(key).ok())
            .ok_or_else(|| internal("billing key"))?;
        let name: String = format!("mypay {}", payment.checkout_id)
            .chars()
            .take(100)
            .collect();
        Ok(ChargeRequest {
            billing_key,
            customer_key: CustomerKey::parse(payment.buyer.as_str())
                .map_err(|_| internal("customer key"))?,
            order_id,
            amount: CardAmount::new(order.split.card).map_err(|_| internal("card amount"))?,
            order_name: OrderName::parse(&name).map_err(|_| internal("order name"))?,
        })
    }

    /// Takes the held points and money: the buyer's side is done.
    async fn take_buyer_funds(&self, order: &Order) -> Result<(), PaymentError> {
        if order.split.points > 0 {
            self.inner
                .ledger
                .post_hold(PostHold {
                    hold_id: order.id.points_hold_id(),
                    amount: None,
                    transaction_id: Some(order.id.points_taken_id()),
                })
                .await?;
        }
        if let Some(id) = money_tx(order)? {
            self.inner.wallets.capture_payment(&id).await?;
        }
        Ok(())
    }

    /// Books the whole order to its seller (payable, or escrow) in one ledger transaction:
    /// what was taken from the buyer out of clearing, the card part out of the PSP receivable.
    async fn book(&self, payment: &Payment, order: &Order) -> Result<(), PaymentError> {
        let (clearing, receivable) = self.accounts().await?;
        let purpose = if order.escrow {
            SellerAccount::Escrow
        } else {
            SellerAccount::Payable
        };
        let seller = self
            .inner
            .sellers
            .seller_account(&order.seller, purpose, order.currency)
            .await?;
        let taken = order.split.points + order.split.money;
        let mut postings = Vec::with_capacity(3);
        if taken > 0 {
            postings.push(leg(clearing, Direction::Debit, taken, order.currency));
        }
        if order.split.card > 0 {
            postings.push(leg(
                receivable,
                Direction::Debit,
                order.split.card,
                order.currency,
            ));
        }
        postings.push(leg(seller, Direction::Credit, order.amount, order.currency));
        let tx = NewTransaction {
            id: order.id.booking_id(),
            postings,
            description: Some("payment order booked to the seller".into()),
            metadata: Some(serde_json::json!({
                "kind": "payment_order",
                "payment": payment.id.as_str(),
                "payment_order_id": order.payment_order_id,
                "seller": order.seller,
                "escrow": order.escrow,
            })),
            balance_limits: Vec::new(),
        };
        self.inner.ledger.post_transaction(tx).await?;
        Ok(())
    }

    /// Fails an order whose card was not charged: the decision (FAILED, with its event)
    /// commits first, then the held points and money are given back.
    async fn fail(&self, order: Order, code: &str, message: String) -> Result<Order, PaymentError> {
        assert_ne!(
            order.card_state,
            CardState::Approved,
            "an order whose card was charged must never fail"
        );
        let card_state = match order.card_state {
            CardState::None => CardState::None,
            _ => CardState::Declined,
        };
        let failed = self
            .save(Order {
                status: OrderStatus::Failed,
                card_state,
                failure_code: Some(code.to_owned()),
                failure_message: Some(message),
                funds_released: false,
                ..order
            })
            .await?;
        self.release_funds(failed).await
    }

    /// Gives a FAILED order's held points and money back and records that it did. Repeating it
    /// is harmless: voiding a voided hold and releasing a released payment change nothing.
    pub(crate) async fn release_funds(&self, order: Order) -> Result<Order, PaymentError> {
        self.release_points(&order).await?;
        let code = order
            .failure_code
            .clone()
            .unwrap_or_else(|| "failed".into());
        self.inner
            .wallets
            .release_payment(order.id.as_str(), &code)
            .await?;
        self.save(Order {
            funds_released: true,
            ..order
        })
        .await
    }

    async fn release_points(&self, order: &Order) -> Result<(), PaymentError> {
        if order.split.points == 0 {
            return Ok(());
        }
        match self.inner.ledger.void_hold(order.id.points_hold_id()).await {
            Ok(_) | Err(LedgerError::HoldNotFound(_)) | Err(LedgerError::HoldAlreadyVoided(_)) => {
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Saves the order's new state under the version it was read at.
    async fn save(&self, order: Order) -> Result<Order, PaymentError> {
        let now = self.inner.ledger.now_micros();
        let mut tx = self.inner.db.begin_write().await?;
        if !store::save_order(&mut tx, &order, now).await? {
            return Err(PaymentError::Conflict(order.id.to_string()));
        }
        // Only the save that ends an order saves a final status: a final order is never
        // advanced again. An escrow order's money waits in the seller's escrow account from
        // its success on, so its escrow opens with it.
        let mut order = order;
        if order.status == OrderStatus::Success && order.escrow {
            let window = micros(self.inner.config.escrow_cancel_window);
            store::open_escrow(&mut tx, &order.id, now.saturating_add(window), now).await?;
            order.escrow_state = Some(EscrowState::Held);
        }
        if order.status.is_final() {
            webhooks::record_event(
                &mut tx,
                &events::order_final(&order, order.version + 1),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Order {
            version: order.version + 1,
            updated_at: now,
            ..order
        })
    }

    async fn reload(&self, order: &Order) -> Result<Order, PaymentError> {
        store::order(&self.inner.db, order.id.as_str())
            .await?
            .ok_or_else(|| PaymentError::Internal(format!("order {} vanished", order.id)))
    }
}

/// The code an order fails with when `error` is a refusal of the buyer's funds; `None` when
/// the error may have left things done (storage, an unanswered ledger) and the order must be
/// continued instead.
fn refusal(error: &PaymentError) -> Option<&'static str> {
    match error {
        PaymentError::Ledger(LedgerError::InsufficientFunds { .. }) => Some("insufficient_points"),
        PaymentError::Wallet(error) if !error.is_in_doubt() => Some(error.code()),
        PaymentError::BuyerNotActive(_) => Some("member_not_active"),
        _ => None,
    }
}

/// A duration in microseconds, saturating.
pub(crate) fn micros(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// What a failed order tells the buyer and the seller, by code: fixed texts, so that no
/// internal detail (a database error, a PSP's connection error) reaches them.
fn failure_message(code: &str) -> String {
    match code {
        "insufficient_points" => "the buyer has too few points",
        "insufficient_funds" => "the buyer's wallet is short and could not be topped up",
        "member_not_active" => "the buyer's membership is closed",
        "card_declined" => "the card was declined",
        "card_not_charged" => "the card charge never reached the PSP",
        "psp_unreachable" => "the PSP could not be reached; nothing was charged",
        _ => "the payment order was refused",
    }
    .to_owned()
}

/// A PSP's decline as the buyer may see it: the card company's message for a decline, a fixed
/// text for anything else (which may carry connection details).
fn decline_message(refusal: &psp::Refusal) -> String {
    match refusal.reason {
        RefusalReason::CardDeclined => format!("{} ({})", refusal.message, refusal.code)
            .chars()
            .take(500)
            .collect(),
        other => failure_message(other.as_str()),
    }
}

fn money(minor: i64, currency: Currency) -> Money {
    Money::from_minor(minor, currency)
}

fn leg(
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

pub(crate) fn psp_order_id(order: &Order) -> Result<PspOrderId, PaymentError> {
    PspOrderId::parse(&order.payment_order_id).map_err(|_| {
        PaymentError::Internal(format!("stored order id of {} does not parse", order.id))
    })
}

fn money_tx(order: &Order) -> Result<Option<MoneyTxId>, PaymentError> {
    order
        .money_tx_id
        .as_deref()
        .map(|id| {
            MoneyTxId::parse(id)
                .ok_or_else(|| PaymentError::Internal(format!("stored money transaction {id:?}")))
        })
        .transpose()
}
