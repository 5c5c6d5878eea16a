//! The payment executor: one order, step by step. Each step is repeatable and its result is
//! saved on the order (under the order's version) before the next, so a run that stops
//! anywhere (a crash, an unknown card outcome) is continued by the next run from where it
//! stopped:
//!
//! 1. NOT_STARTED → EXECUTING.
//! 2. Hold the buyer's points and wallet money (ids derived from the order; a repeat is a
//!    replay). A refusal (too few points, insufficient funds) fails the order.
//! 3. Charge the card part under the order id, which is the PSP's idempotency key. The order
//!    is marked `requested` before the call; a run that finds it so asks the PSP first.
//! 4. Take the held points and money (`wallet_updated`).
//! 5. Book the order to the seller in one ledger transaction whose id is the order id
//!    (`ledger_updated`), then SUCCESS.

use ledger::{Direction, LedgerError, NewHold, NewTransaction, PostHold, PostingSpec};
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

/// What the card step found.
enum Card {
    Approved(String),
    Declined {
        code: &'static str,
        message: String,
    },
    /// Not known yet: the order waits for the resumer.
    Unknown,
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
        let mut order = order;
        if order.status == OrderStatus::NotStarted {
            order = self
                .save(Order {
                    status: OrderStatus::Executing,
                    ..order
                })
                .await?;
        }
        if order.status != OrderStatus::Executing {
            return Ok(order);
        }
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
                    Some(code) if order.card_state != CardState::Approved => {
                        return self.fail(order, code, error.to_string()).await
                    }
                    _ => return Err(error),
                },
            }
        }
        if order.split.card > 0 && order.card_state != CardState::Approved {
            let sent_before = order.card_state == CardState::Requested;
            if !sent_before {
                order = self
                    .save(Order {
                        card_state: CardState::Requested,
                        ..order
                    })
                    .await?;
            }
            match self.charge_card(payment, &order, sent_before).await? {
                Card::Approved(payment_key) => {
                    order = self
                        .save(Order {
                            card_state: CardState::Approved,
                            psp_payment_key: Some(payment_key),
                            ..order
                        })
                        .await?;
                }
                Card::Declined { code, message } => {
                    let declined = self
                        .save(Order {
                            card_state: CardState::Declined,
                            ..order
                        })
                        .await?;
                    return self.fail(declined, code, message).await;
                }
                Card::Unknown => return Ok(order),
            }
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
            self.inner.ledger.reserve_hold(hold).await?;
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
            .await;
        let movement = match movement {
            Ok(movement) => movement,
            Err(error) => {
                self.release_points(order).await?;
                return Err(error.into());
            }
        };
        let op = movement.transaction.operation;
        if op.state == OperationState::Failed {
            self.release_points(order).await?;
            return Err(WalletError::InsufficientFunds { top_up: None }.into());
        }
        Ok(Some(op.id.to_string()))
    }

    /// Charges the card part, or, when an earlier run sent it, asks the PSP what became of it
    /// first and sends it again (same order id) only if the PSP never got it.
    async fn charge_card(
        &self,
        payment: &Payment,
        order: &Order,
        resend: bool,
    ) -> Result<Card, PaymentError> {
        let order_id = psp_order_id(order)?;
        if resend {
            match self.inner.psp.payment_by_order(&order_id).await {
                Ok(PaymentLookup::Found(record)) => {
                    return Ok(match record.approval() {
                        Some(approval) => Card::Approved(approval.payment_key.as_str().to_owned()),
                        None if record.status == PspPaymentStatus::Aborted => Card::Declined {
                            code: RefusalReason::CardDeclined.as_str(),
                            message: "the PSP aborted the charge".into(),
                        },
                        None => Card::Unknown,
                    })
                }
                Ok(PaymentLookup::NotFound) if self.past_retry_window(order) => {
                    return Ok(Card::Declined {
                        code: "card_not_charged",
                        message: "the PSP never received the charge".into(),
                    })
                }
                Ok(PaymentLookup::NotFound) => {}
                Err(error) => {
                    tracing::info!(order = %order.id, %error, "the PSP could not be asked about a charge");
                    return Ok(Card::Unknown);
                }
            }
        }
        let request = self.charge_request(payment, order, order_id)?;
        Ok(match self.inner.psp.charge(&request).await {
            ChargeOutcome::Approved(approval) => {
                Card::Approved(approval.payment_key.as_str().to_owned())
            }
            // A charge sent again that did not get through proves nothing: the first one may
            // still arrive, so the outcome stays unknown.
            ChargeOutcome::Declined(refusal)
                if resend
                    && matches!(
                        refusal.reason,
                        RefusalReason::Unreachable | RefusalReason::RequestRejected
                    ) =>
            {
                Card::Unknown
            }
            ChargeOutcome::Declined(refusal) => Card::Declined {
                code: refusal.reason.as_str(),
                message: format!("{} ({})", refusal.message, refusal.code),
            },
            ChargeOutcome::Unknown { reason } => {
                tracing::warn!(order = %order.id, %reason, "card charge outcome unknown; the resumer will ask the PSP");
                Card::Unknown
            }
        })
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

    fn past_retry_window(&self, order: &Order) -> bool {
        let window =
            i64::try_from(self.inner.config.card_retry_window.as_micros()).unwrap_or(i64::MAX);
        self.inner
            .ledger
            .now_micros()
            .saturating_sub(order.created_at)
            >= window
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

    /// Fails an order whose card was not charged: gives back its held points and money, then
    /// records the failure.
    async fn fail(&self, order: Order, code: &str, message: String) -> Result<Order, PaymentError> {
        assert_ne!(
            order.card_state,
            CardState::Approved,
            "an order whose card was charged must never fail"
        );
        self.release_points(&order).await?;
        if let Some(id) = money_tx(&order)? {
            self.inner.wallets.release_payment(&id, code).await?;
        }
        self.save(Order {
            status: OrderStatus::Failed,
            failure_code: Some(code.to_owned()),
            failure_message: Some(message.chars().take(500).collect()),
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

fn psp_order_id(order: &Order) -> Result<PspOrderId, PaymentError> {
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
