//! The payments service: recording a checkout, executing its orders, reading, resuming.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use item_lock::{ItemKey, ItemLocks};
use ledger::{AccountFlags, AccountId, AccountKind, Ledger};
use membership::{MemberId, MemberStatus, Members};
use money::{Currency, Money};
use psp::{BillingKey, CardProcessor, PspOrderId};
use sha2::{Digest, Sha256};
use storage::Db;
use tokio::sync::OnceCell;
use wallet::{Points, Wallets};

use crate::domain::{
    allocate, CardState, CheckoutId, OrderStatus, PaymentId, PaymentOrderKey, PaymentStatus, Split,
};
use crate::events;
use crate::sellers::Sellers;
use crate::store::{self, Inserted, Order, Payment};
use crate::PaymentError;

/// Money taken from buyers (points and wallet money) on its way to sellers. Credited when an
/// order takes the buyer's holds, debited by the order's booking; it must not go negative, so
/// no order can book more than it took.
pub const CLEARING_ACCOUNT: &str = "liability:payments:clearing:KRW";
/// What the PSP owes the platform for approved card charges, until it pays out.
pub const PSP_RECEIVABLE_ACCOUNT: &str = "asset:psp:receivable:KRW";
/// The most orders (sellers) one checkout may hold.
pub const ORDERS_PER_PAYMENT_MAX: usize = 20;

/// How the service runs.
#[derive(Debug, Clone, Copy)]
pub struct PaymentsConfig {
    /// How long after its last change an unfinished order is left to its own request before
    /// the resumer takes it over.
    pub resume_after: Duration,
    /// How long a card charge the PSP does not know may be sent again under the same order id.
    /// After it, the charge is taken as never received and the order fails (`card_not_charged`):
    /// no request lives that long, so none can still arrive.
    pub card_retry_window: Duration,
    /// How long a run holds an order it works on: longer than any one step takes (a PSP call
    /// at its timeout, a top-up at the bank's), so that no second run starts on a live one.
    pub claim_lease: Duration,
    /// How long a checkout holds the unique items it names.
    pub item_lock_ttl: Duration,
    /// How long after its success an escrow order may be cancelled (refunding the buyer).
    pub escrow_cancel_window: Duration,
    /// How long after delivery an escrow order confirms itself if the buyer does not.
    pub escrow_auto_confirm_after: Duration,
}

impl Default for PaymentsConfig {
    fn default() -> PaymentsConfig {
        PaymentsConfig {
            resume_after: Duration::from_secs(15),
            card_retry_window: Duration::from_secs(10 * 60),
            claim_lease: Duration::from_secs(60),
            item_lock_ttl: item_lock::DEFAULT_TTL,
            escrow_cancel_window: Duration::from_secs(72 * 3600),
            escrow_auto_confirm_after: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What the payments service works with.
#[derive(Clone)]
pub struct PaymentServices {
    pub db: Db,
    pub ledger: Arc<Ledger>,
    pub members: Arc<Members>,
    pub wallets: Wallets,
    pub points: Points,
    pub sellers: Arc<dyn Sellers>,
    pub psp: Arc<dyn CardProcessor>,
    pub item_locks: Arc<dyn ItemLocks>,
}

/// One seller's part of a checkout, as requested.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// The client's globally unique id of the order; the PSP's order id.
    pub payment_order_id: String,
    /// The merchant paid (`mer_…`).
    pub seller: String,
    pub amount: Money,
    /// Whether the seller's money waits in escrow until the buyer confirms.
    pub escrow: bool,
}

/// A checkout, as requested. Funding amounts are minor units of the orders' currency and must
/// add up to the orders' total.
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub buyer: MemberId,
    pub checkout_id: CheckoutId,
    pub orders: Vec<NewOrder>,
    pub points: i64,
    pub money: i64,
    /// The buyer's registered card and how much of the total it pays.
    pub card: Option<(BillingKey, i64)>,
    /// Whether a short wallet is topped up from the buyer's linked account.
    pub auto_top_up: bool,
    /// Unique items the checkout buys.
    pub items: Vec<String>,
}

/// A payment with its orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentView {
    pub payment: Payment,
    pub orders: Vec<Order>,
}

/// What a pass of the resumer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResumePass {
    pub examined: usize,
    pub finished: usize,
}

/// The most unfinished orders one resumer pass takes.
pub const RESUME_BATCH_MAX: i64 = 500;

/// The payments service. Cheap to clone.
#[derive(Clone)]
pub struct Payments {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) db: Db,
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) members: Arc<Members>,
    pub(crate) wallets: Wallets,
    pub(crate) points: Points,
    pub(crate) sellers: Arc<dyn Sellers>,
    pub(crate) psp: Arc<dyn CardProcessor>,
    pub(crate) item_locks: Arc<dyn ItemLocks>,
    pub(crate) config: PaymentsConfig,
    accounts: OnceCell<(AccountId, AccountId)>,
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payments")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Payments {
    pub fn new(services: PaymentServices, config: PaymentsConfig) -> Payments {
        let PaymentServices {
            db,
            ledger,
            members,
            wallets,
            points,
            sellers,
            psp,
            item_locks,
        } = services;
        Payments {
            inner: Arc::new(Inner {
                db,
                ledger,
                members,
                wallets,
                points,
                sellers,
                psp,
                item_locks,
                config,
                accounts: OnceCell::new(),
            }),
        }
    }

    /// Records a checkout and executes its orders. The same checkout sent again (same content,
    /// same caller) answers the recorded payment, resuming it if it is unfinished; other content
    /// under its id is refused. Returns the payment and whether this call created it.
    pub async fn pay(
        &self,
        scope: &str,
        request: NewPayment,
    ) -> Result<(PaymentView, bool), PaymentError> {
        let currency = checkout_currency(&request.orders)?;
        let items = item_keys(&request.items)?;
        let hash = request_hash(scope, &request);
        let checkout = request.checkout_id.as_str().to_owned();
        if let Some(view) = self.existing(scope, &request, &hash).await? {
            // A checkout still paying keeps its items: the same buyer sending it again renews them.
            if view.payment.status == PaymentStatus::Executing {
                self.inner
                    .item_locks
                    .acquire(&items, &checkout, self.inner.config.item_lock_ttl)
                    .await?;
            }
            return Ok((self.execute(view).await?, false));
        }
        self.inner
            .item_locks
            .acquire(&items, &checkout, self.inner.config.item_lock_ttl)
            .await?;
        match self.record(scope, request, currency, hash).await {
            Ok((view, created)) => Ok((self.execute(view).await?, created)),
            // The checkout id is another request's: so are the items held under it.
            Err(error @ PaymentError::CheckoutReused(_)) => Err(error),
            Err(error) => {
                self.release_items(&checkout, &items).await;
                Err(error)
            }
        }
    }

    /// Records a new checkout, or answers the one a concurrent request with the same id and
    /// content recorded first. Nothing is recorded on an error.
    async fn record(
        &self,
        scope: &str,
        request: NewPayment,
        currency: Currency,
        hash: String,
    ) -> Result<(PaymentView, bool), PaymentError> {
        let (payment, orders) = self.prepare(scope, request, currency, hash).await?;
        match store::insert_payment(&self.inner.db, &payment, &orders).await? {
            Inserted::Created => Ok((PaymentView { payment, orders }, true)),
            Inserted::CheckoutExists => {
                let view = self.view_by_checkout(&payment.checkout_id).await?;
                self.check_same(scope, &view.payment, &payment.request_hash)?;
                Ok((view, false))
            }
            Inserted::OrderIdTaken(id) => Err(PaymentError::PaymentOrderIdReused(id)),
        }
    }

    /// Gives back a checkout's items. A lock that cannot be given back now runs out at its
    /// expiry, so a failure is logged rather than answered.
    async fn release_items(&self, checkout: &str, items: &[ItemKey]) {
        if let Err(error) = self.inner.item_locks.release(items, checkout).await {
            tracing::warn!(checkout, code = error.code(), %error, "items not released; they are freed at expiry");
        }
    }

    /// A payment with its orders.
    pub async fn get(&self, id: &str) -> Result<PaymentView, PaymentError> {
        let not_found = || PaymentError::PaymentNotFound(id.chars().take(64).collect());
        PaymentId::parse(id).ok_or_else(not_found)?;
        let payment = store::payment(&self.inner.db, id)
            .await?
            .ok_or_else(not_found)?;
        let orders = store::orders_of(&self.inner.db, &payment.id).await?;
        Ok(PaymentView { payment, orders })
    }

    /// A payment order by our id (`po_…`) or the client's payment order id, with its payment.
    pub async fn order(&self, id: &str) -> Result<(Payment, Order), PaymentError> {
        let not_found = || PaymentError::OrderNotFound(id.chars().take(64).collect());
        let order = store::order(&self.inner.db, id)
            .await?
            .ok_or_else(not_found)?;
        let payment = store::payment(&self.inner.db, order.payment_id.as_str())
            .await?
            .ok_or_else(|| PaymentError::Internal(format!("order {} has no payment", order.id)))?;
        Ok((payment, order))
    }

    /// One pass of the resumer: continues orders left unfinished for at least `min_age` (by a
    /// crash, or a card charge whose outcome was unknown), least recently tried first, and ends
    /// their payments once every order is final. `mypay serve` runs it every few seconds.
    pub async fn resume_pending(
        &self,
        min_age: Duration,
        limit: i64,
    ) -> Result<ResumePass, PaymentError> {
        let now = self.inner.ledger.now_micros();
        let min_age = crate::executor::micros(min_age);
        let orders = store::unfinished_orders(
            &self.inner.db,
            now.saturating_sub(min_age),
            limit.clamp(1, RESUME_BATCH_MAX),
        )
        .await?;
        let mut pass = ResumePass::default();
        for order in
            store::unreleased_orders(&self.inner.db, limit.clamp(1, RESUME_BATCH_MAX)).await?
        {
            if let Err(error) = self.release_funds(order.clone()).await {
                tracing::warn!(order = %order.id, code = error.code(), %error, "releasing a failed order's funds failed");
            }
        }
        for order in orders {
            pass.examined += 1;
            match self.resume_order(order.clone()).await {
                Ok(true) => pass.finished += 1,
                Ok(false) => store::touch_order(&self.inner.db, &order.id, now).await?,
                Err(error) => {
                    tracing::warn!(order = %order.id, code = error.code(), %error, "resuming a payment order failed");
                    store::touch_order(&self.inner.db, &order.id, now).await?;
                }
            }
        }
        Ok(pass)
    }

    /// The configuration the service runs with.
    pub fn config(&self) -> &PaymentsConfig {
        &self.inner.config
    }

    async fn resume_order(&self, order: Order) -> Result<bool, PaymentError> {
        let payment = store::payment(&self.inner.db, order.payment_id.as_str())
            .await?
            .ok_or_else(|| PaymentError::Internal(format!("order {} has no payment", order.id)))?;
        let order = self.execute_order(&payment, order).await?;
        self.finish_if_done(&payment).await?;
        Ok(order.status.is_final())
    }

    /// Executes every unfinished order of a payment in request order, then ends the payment if
    /// all are final. An order stopped by an error stays for the resumer; the others go on.
    pub(crate) async fn execute(&self, view: PaymentView) -> Result<PaymentView, PaymentError> {
        for order in view.orders {
            if order.status.is_final() {
                continue;
            }
            if let Err(error) = self.execute_order(&view.payment, order.clone()).await {
                tracing::warn!(order = %order.id, code = error.code(), %error, "payment order left for the resumer");
            }
        }
        self.finish_if_done(&view.payment).await?;
        self.get(view.payment.id.as_str()).await
    }

    /// Ends the payment once every order is final.
    async fn finish_if_done(&self, payment: &Payment) -> Result<(), PaymentError> {
        let orders = store::orders_of(&self.inner.db, &payment.id).await?;
        let status = PaymentStatus::of_orders(orders.iter().map(|o| o.status));
        if status == PaymentStatus::Executing {
            return Ok(());
        }
        let now = self.inner.ledger.now_micros();
        let mut tx = self.inner.db.begin_write().await?;
        let Some(version) = store::finish_payment(&mut tx, &payment.id, status, now).await? else {
            return Ok(());
        };
        for event in events::payment_final(payment, &orders, status, version) {
            webhooks::record_event(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        // A failed checkout bought nothing: its items are free for the next buyer at once. A
        // paid one keeps them until the lock runs out, while the shop takes the item off sale.
        if status == PaymentStatus::Failed {
            self.release_items(&payment.checkout_id, &item_keys(&payment.items)?)
                .await;
        }
        Ok(())
    }

    /// The recorded payment for this checkout, if the same caller sent the same content.
    async fn existing(
        &self,
        scope: &str,
        request: &NewPayment,
        hash: &str,
    ) -> Result<Option<PaymentView>, PaymentError> {
        let Some(payment) =
            store::payment_by_checkout(&self.inner.db, request.checkout_id.as_str()).await?
        else {
            return Ok(None);
        };
        self.check_same(scope, &payment, hash)?;
        let orders = store::orders_of(&self.inner.db, &payment.id).await?;
        Ok(Some(PaymentView { payment, orders }))
    }

    fn check_same(&self, scope: &str, payment: &Payment, hash: &str) -> Result<(), PaymentError> {
        if payment.request_scope == scope && payment.request_hash == hash {
            Ok(())
        } else {
            Err(PaymentError::CheckoutReused(payment.checkout_id.clone()))
        }
    }

    async fn view_by_checkout(&self, checkout_id: &str) -> Result<PaymentView, PaymentError> {
        let payment = store::payment_by_checkout(&self.inner.db, checkout_id)
            .await?
            .ok_or_else(|| PaymentError::Internal("the conflicting checkout vanished".into()))?;
        let orders = store::orders_of(&self.inner.db, &payment.id).await?;
        Ok(PaymentView { payment, orders })
    }

    /// Checks the request against the buyer and the sellers and builds the rows to insert.
    async fn prepare(
        &self,
        scope: &str,
        request: NewPayment,
        currency: Currency,
        hash: String,
    ) -> Result<(Payment, Vec<Order>), PaymentError> {
        let buyer = self
            .inner
            .members
            .get(&request.buyer)
            .await
            .map_err(|error| match error {
                membership::MemberError::NotFound(id) => PaymentError::BuyerNotActive(id),
                other => PaymentError::Internal(other.to_string()),
            })?;
        if buyer.status != MemberStatus::Active {
            return Err(PaymentError::BuyerNotActive(buyer.id.to_string()));
        }
        let card = request.card.as_ref().map_or(0, |(_, amount)| *amount);
        let funding = Split {
            points: request.points,
            money: request.money,
            card,
        };
        let amounts: Vec<i64> = request.orders.iter().map(|o| o.amount.minor()).collect();
        let splits = allocate(&amounts, funding)?;
        let now = self.inner.ledger.now_micros();
        let payment = Payment {
            id: PaymentId::generate(),
            checkout_id: request.checkout_id.as_str().to_owned(),
            buyer: request.buyer.clone(),
            request_scope: scope.to_owned(),
            request_hash: hash,
            currency,
            amount: amounts.iter().sum(),
            funding,
            billing_key: request
                .card
                .as_ref()
                .map(|(key, _)| key.expose().to_owned()),
            auto_top_up: request.auto_top_up,
            items: request.items.clone(),
            status: PaymentStatus::Executing,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let mut orders = Vec::with_capacity(request.orders.len());
        for (seq, (order, split)) in request.orders.iter().zip(splits).enumerate() {
            let seller = self.inner.sellers.seller(&order.seller).await?;
            if !seller.active {
                return Err(crate::SellerError::new(
                    "seller_not_active",
                    format!("merchant {} is not active", seller.id),
                )
                .into());
            }
            orders.push(Order {
                id: PaymentOrderKey::generate(),
                payment_order_id: order.payment_order_id.clone(),
                payment_id: payment.id.clone(),
                seq: seq as i64,
                seller: seller.id,
                currency,
                amount: order.amount.minor(),
                split,
                refunded: Split::default(),
                escrow: order.escrow,
                escrow_state: None,
                fee_bps: i64::from(seller.fee_bps),
                status: OrderStatus::NotStarted,
                wallet_updated: false,
                ledger_updated: false,
                money_tx_id: None,
                card_state: CardState::None,
                card_first_sent_at: None,
                card_last_sent_at: None,
                psp_payment_key: None,
                failure_code: None,
                failure_message: None,
                funds_released: false,
                claimed_until: 0,
                version: 1,
                created_at: now,
                updated_at: now,
            });
        }
        Ok((payment, orders))
    }

    /// The clearing account and the PSP receivable, opened on first use.
    pub(crate) async fn accounts(&self) -> Result<(AccountId, AccountId), PaymentError> {
        let accounts = self
            .inner
            .accounts
            .get_or_try_init(|| async {
                let clearing = self
                    .open(
                        CLEARING_ACCOUNT,
                        AccountKind::Liability,
                        AccountFlags::MUST_NOT_GO_NEGATIVE,
                    )
                    .await?;
                let receivable = self
                    .open(
                        PSP_RECEIVABLE_ACCOUNT,
                        AccountKind::Asset,
                        AccountFlags::empty(),
                    )
                    .await?;
                Ok::<_, PaymentError>((clearing, receivable))
            })
            .await?;
        Ok(accounts.clone())
    }

    async fn open(
        &self,
        code: &str,
        kind: AccountKind,
        flags: AccountFlags,
    ) -> Result<AccountId, PaymentError> {
        Ok(self
            .inner
            .ledger
            .open_account(code, kind, Currency::KRW, flags)
            .await?)
    }
}

/// The one currency of a checkout's orders (KRW, the currency of wallets, points and card
/// charges here), after checking every order's amount and id.
fn checkout_currency(orders: &[NewOrder]) -> Result<Currency, PaymentError> {
    let first = orders.first().ok_or(PaymentError::invalid(
        "payment_orders",
        "must name 1 to 20 orders",
    ))?;
    if orders.len() > ORDERS_PER_PAYMENT_MAX {
        return Err(PaymentError::invalid(
            "payment_orders",
            "must name 1 to 20 orders",
        ));
    }
    let currency = first.amount.currency();
    let mut ids = HashSet::new();
    for order in orders {
        if order.amount.currency() != currency {
            return Err(PaymentError::CurrencyMismatch);
        }
        if !order.amount.is_positive() || order.amount.minor() > psp::CARD_AMOUNT_WON_MAX {
            return Err(PaymentError::AmountOutOfRange);
        }
        PspOrderId::parse(&order.payment_order_id).map_err(|_| {
            PaymentError::invalid(
                "payment_order_id",
                "must be 6 to 64 letters, digits, - or _",
            )
        })?;
        if !ids.insert(order.payment_order_id.as_str()) {
            return Err(PaymentError::invalid(
                "payment_order_id",
                "must differ between the orders of a checkout",
            ));
        }
    }
    if currency != Currency::KRW {
        return Err(PaymentError::CurrencyUnsupported(currency.code()));
    }
    Ok(currency)
}

/// The checkout's unique items, parsed.
fn item_keys(items: &[String]) -> Result<Vec<ItemKey>, PaymentError> {
    if items.len() > item_lock::ITEMS_PER_CHECKOUT_MAX {
        return Err(PaymentError::invalid("items", "must name at most 50 items"));
    }
    Ok(items
        .iter()
        .map(|item| ItemKey::parse(item))
        .collect::<Result<_, _>>()?)
}

/// A digest of everything the request asks for, so that a checkout sent again is recognised
/// as the same request or refused as a different one.
fn request_hash(scope: &str, request: &NewPayment) -> String {
    let mut hasher = Sha256::new();
    let mut field = |value: &str| {
        hasher.update((value.len() as u64).to_be_bytes());
        hasher.update(value.as_bytes());
    };
    field(scope);
    field(request.buyer.as_str());
    field(request.checkout_id.as_str());
    for order in &request.orders {
        field(&order.payment_order_id);
        field(&order.seller);
        field(&order.amount.minor().to_string());
        field(order.amount.currency().code());
        field(if order.escrow { "escrow" } else { "direct" });
    }
    field(&request.points.to_string());
    field(&request.money.to_string());
    match &request.card {
        Some((key, amount)) => {
            field(key.expose());
            field(&amount.to_string());
        }
        None => field("no card"),
    }
    field(if request.auto_top_up {
        "top-up"
    } else {
        "no top-up"
    });
    for item in &request.items {
        field(item);
    }
    hex::encode(hasher.finalize())
}
