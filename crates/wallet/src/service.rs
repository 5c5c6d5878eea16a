//! The wallet service: balances and history, charges, withdrawals, payouts to any account,
//! transfers between members with automatic top-up, the limits, and the resolver that finishes
//! bank-backed movements whose outcome was unknown when their request answered.

use std::sync::Arc;
use std::time::Duration;

use banking::{
    BankAccount, BankError, BankFees, BankGateway, HolderName, Memo, RealNameOutcome, RefusalCode,
    TransferAmount, TransferKind,
};
use ledger::{
    AccountCode, AccountFlags, AccountId, AccountKind, Balance, HoldId, Ledger, LedgerError,
    NewAccount, NewHold, NewTransaction, Page, PostHold, Posting,
};
use membership::{Email, Member, MemberError, MemberId, MemberStatus, Members, Phone};
use money::{Currency, Money};
use storage::Db;
use tokio::sync::OnceCell;

use crate::bank_transfer::{BankTransfer, BankTransfers, TransferOrder, TransferState};
use crate::domain::{
    account_label, mask_name, positive_amount, top_up_amount, wallet_currency, EntryKind,
    LimitKind, MoneyTxId, OperationKind, OperationState, WalletConfig,
};
use crate::funding::{ChargeSource, FundingAccounts};
use crate::store::{self, Operation, RequestKey};
use crate::WalletError;

/// The owner name under which the wallet records its bank transfers.
pub const TRANSFER_OWNER: &str = "wallet";
/// The ledger account mirroring the platform's master account at the bank.
pub const MASTER_ACCOUNT: &str = "asset:bank:master";
/// How old a pending operation without a bank transfer must be before the resolver gives it
/// up: far beyond the few milliseconds between recording an operation and its transfer, so
/// that a request still running is never overtaken.
pub const ABANDONED_AFTER_MICROS: i64 = 2 * 60 * 1_000_000;
/// How old a pending transfer between members without its ledger transaction must be before
/// the resolver fails it. Nothing fences the transaction id against the request that is still
/// running (an automatic top-up can keep it busy for a minute or more at a slow bank), so the
/// age is far beyond any request's life rather than merely beyond the usual one.
pub const TRANSFER_ABANDONED_AFTER_MICROS: i64 = 30 * 60 * 1_000_000;
/// How long an operation is left to its own request before the resolver looks at it: longer
/// than a request waits for an unknown outcome ([`crate::bank_transfer::INQUIRY_DELAYS`] plus
/// the calls).
pub const RESOLVE_MIN_AGE: Duration = Duration::from_secs(15);
/// The most operations one resolver pass looks at.
pub const RESOLVE_BATCH_MAX: i64 = 500;

/// A wallet's balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletBalance {
    pub member_id: MemberId,
    pub currency: Currency,
    /// The ledger account, once the wallet has been used.
    pub account_id: Option<AccountId>,
    /// Posted money.
    pub posted: Money,
    /// Reserved by withdrawals and payouts in flight.
    pub held: Money,
    /// Charges in flight, not spendable yet.
    pub incoming: Money,
    /// Posted minus held: what may be spent now.
    pub available: Money,
}

impl WalletBalance {
    pub(crate) fn new(
        member: &MemberId,
        account: Option<AccountId>,
        balance: Balance,
    ) -> WalletBalance {
        WalletBalance {
            member_id: member.clone(),
            currency: balance.currency,
            account_id: account,
            posted: balance.posted,
            held: balance.held,
            incoming: balance.incoming,
            available: balance.available,
        }
    }

    pub(crate) fn empty(member: &MemberId, currency: Currency) -> WalletBalance {
        let zero = Money::zero(currency);
        WalletBalance {
            member_id: member.clone(),
            currency,
            account_id: None,
            posted: zero,
            held: zero,
            incoming: zero,
            available: zero,
        }
    }
}

/// A money transaction as one member sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyTx {
    pub operation: Operation,
    /// Charge, withdrawal, payout, or transfer in or out from this member's side.
    pub kind: EntryKind,
    /// The other side, masked: the account for bank movements, the member's name for transfers.
    pub counterparty: String,
}

/// The answer to a money-moving request: the movement, an automatic top-up made for it, and
/// the wallet's balance afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub transaction: MoneyTx,
    pub top_up: Option<MoneyTx>,
    pub balance: WalletBalance,
}

/// One line of a wallet's history: a ledger posting and what it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The money transaction number (the ledger transaction id).
    pub id: String,
    pub kind: EntryKind,
    pub counterparty: Option<String>,
    /// Positive for money in, negative for money out.
    pub amount: Money,
    pub balance_after: Money,
    pub posted_at: ledger::Micros,
}

/// Who a transfer goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Member(MemberId),
    Email(Email),
    Phone(Phone),
}

/// A charge from a linked account.
#[derive(Debug, Clone)]
pub struct ChargeRequest {
    pub amount: Money,
    /// The linked account to collect from; the member's default one when `None`.
    pub bank_account_id: Option<String>,
}

/// A withdrawal to the member's own account.
#[derive(Debug, Clone)]
pub struct WithdrawRequest {
    pub amount: Money,
    /// The member's linked account; their default one when `None`.
    pub bank_account_id: Option<String>,
}

/// A payout to any bank account, whose holder must be `holder_name`.
#[derive(Debug, Clone)]
pub struct PayoutRequest {
    pub amount: Money,
    pub to: BankAccount,
    pub holder_name: HolderName,
    pub auto_top_up: bool,
}

/// A transfer to another member.
#[derive(Debug, Clone)]
pub struct TransferRequest {
    pub amount: Money,
    pub to: Recipient,
    pub auto_top_up: bool,
}

/// The money part of one payment order, taken from the buyer's wallet: held while the order
/// executes, then captured or released by the payments service.
#[derive(Debug, Clone)]
pub struct PaymentDebit {
    pub amount: Money,
    /// Where the money goes when the payment is captured (the payments clearing account).
    pub credit_account: AccountId,
    /// Whom the buyer paid, as the buyer's history shows it.
    pub merchant_label: String,
    /// The payment order (`po_…`) the money is for. It is the operation's request key, so an
    /// order resumed after a crash finds its operation instead of taking the money twice.
    pub payment_order: String,
    pub auto_top_up: bool,
}

/// The request-key scope of payment operations; no caller's scope (`usr_…`, `key_…`) is it.
const PAYMENT_SCOPE: &str = "payment";

/// What a pass of the resolver did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolvePass {
    /// Operations looked at.
    pub examined: usize,
    /// Of those, operations that reached a final state.
    pub finished: usize,
}

/// The wallet service. Cheap to clone.
#[derive(Clone)]
pub struct Wallets {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    ledger: Arc<Ledger>,
    members: Arc<Members>,
    funding: Arc<dyn FundingAccounts>,
    transfers: Arc<BankTransfers>,
    config: WalletConfig,
    master: OnceCell<AccountId>,
}

impl std::fmt::Debug for Wallets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallets")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Wallets {
    /// The service over a migrated database. `config` must have passed
    /// [`WalletConfig::validate`].
    pub fn new(
        db: Db,
        ledger: Arc<Ledger>,
        members: Arc<Members>,
        bank: Arc<dyn BankGateway>,
        funding: Arc<dyn FundingAccounts>,
        fees: BankFees,
        config: WalletConfig,
    ) -> Wallets {
        let transfers = Arc::new(BankTransfers::new(db.clone(), bank, ledger.clone(), fees));
        Wallets {
            inner: Arc::new(Inner {
                db,
                ledger,
                members,
                funding,
                transfers,
                config,
                master: OnceCell::new(),
            }),
        }
    }

    pub fn config(&self) -> &WalletConfig {
        &self.inner.config
    }

    /// The bank transfer executor the wallet sends through.
    pub fn bank_transfers(&self) -> &Arc<BankTransfers> {
        &self.inner.transfers
    }

    /// A member's wallets: one per wallet currency, with zero balances before first use.
    pub async fn wallets(&self, member: &MemberId) -> Result<Vec<WalletBalance>, WalletError> {
        let mut wallets = Vec::new();
        for currency in crate::domain::WALLET_CURRENCIES {
            wallets.push(self.balance(member, currency).await?);
        }
        Ok(wallets)
    }

    /// A member's wallet in one currency.
    pub async fn balance(
        &self,
        member: &MemberId,
        currency: Currency,
    ) -> Result<WalletBalance, WalletError> {
        let currency = wallet_currency(currency)?;
        match store::wallet_account(&self.inner.db, member, currency).await? {
            Some(account) => {
                let balance = self.inner.ledger.balance(&account).await?;
                let id = AccountId::parse(&account)?;
                Ok(WalletBalance::new(member, Some(id), balance))
            }
            None => Ok(WalletBalance::empty(member, currency)),
        }
    }

    /// A wallet's postings, newest first, each with what it was and the balance after it. The
    /// cursor is the ledger's: the sequence number of the last entry of the previous page.
    pub async fn history(
        &self,
        member: &MemberId,
        currency: Currency,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Page<HistoryEntry>, WalletError> {
        let currency = wallet_currency(currency)?;
        let Some(account) = store::wallet_account(&self.inner.db, member, currency).await? else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        let page = self.inner.ledger.history(&account, before, limit).await?;
        let ids: Vec<&str> = page
            .items
            .iter()
            .map(|p| p.transaction_id.as_str())
            .collect();
        let operations = store::operations_by_ids(&self.inner.db, &ids).await?;
        let items = page
            .items
            .iter()
            .map(|posting| {
                let op = operations
                    .iter()
                    .find(|op| op.id.as_str() == posting.transaction_id.as_str());
                history_entry(member, posting, op)
            })
            .collect();
        Ok(Page {
            items,
            next: page.next,
        })
    }

    /// A money transaction of `viewer`'s, from their side; another member's answers
    /// `money_transaction_not_found`, as a number that does not exist does.
    pub async fn money_tx(&self, viewer: &MemberId, id: &str) -> Result<MoneyTx, WalletError> {
        let not_found = || WalletError::MoneyTxNotFound(id.chars().take(64).collect());
        let op = match MoneyTxId::parse(id) {
            Some(id) => store::operation(&self.inner.db, id.as_str()).await?,
            None => None,
        }
        .ok_or_else(not_found)?;
        let visible = op.member_id == *viewer || op.counterparty_member_id.as_ref() == Some(viewer);
        if visible {
            Ok(money_tx(viewer, op))
        } else {
            Err(not_found())
        }
    }

    /// Charges the wallet from a linked account: reserves the incoming money (so concurrent
    /// charges count it against the maximum balance), collects at the bank, and posts on
    /// success. An unknown outcome leaves the charge `pending` for the resolver.
    pub async fn charge(
        &self,
        member: &MemberId,
        request: ChargeRequest,
        key: Option<RequestKey>,
    ) -> Result<Movement, WalletError> {
        let amount = positive_amount(request.amount)?;
        if let Some(op) = self
            .replay(key.as_ref(), OperationKind::Charge, amount)
            .await?
        {
            return self.movement(member, op, None).await;
        }
        let member = self.active_member(member).await?;
        self.check_per_transaction(amount)?;
        let source = self
            .inner
            .funding
            .charge_source(&member.id, request.bank_account_id.as_deref())
            .await?;
        let op = self
            .charge_from(&member, amount, source, key.as_ref(), None)
            .await?;
        refuse_failed(&op)?;
        self.movement(&member.id, op, None).await
    }

    /// Withdraws to the member's own verified account. There is no automatic top-up: charging
    /// from a bank account to pay out to a bank account would only cost two fees.
    pub async fn withdraw(
        &self,
        member: &MemberId,
        request: WithdrawRequest,
        key: Option<RequestKey>,
    ) -> Result<Movement, WalletError> {
        let amount = positive_amount(request.amount)?;
        if let Some(op) = self
            .replay(key.as_ref(), OperationKind::Withdrawal, amount)
            .await?
        {
            return self.movement(member, op, None).await;
        }
        let member = self.inner.members.get(member).await?;
        self.check_per_transaction(amount)?;
        let target = self
            .inner
            .funding
            .withdrawal_target(&member.id, request.bank_account_id.as_deref())
            .await?;
        let outgoing = Outgoing {
            kind: OperationKind::Withdrawal,
            account: target.account,
            bank_account_id: Some(target.bank_account_id),
            auto_top_up: false,
        };
        self.pay_out(&member, amount, outgoing, key).await
    }

    /// Pays out to any bank account after checking that its holder is the expected name.
    pub async fn payout(
        &self,
        member: &MemberId,
        request: PayoutRequest,
        key: Option<RequestKey>,
    ) -> Result<Movement, WalletError> {
        let amount = positive_amount(request.amount)?;
        if let Some(op) = self
            .replay(key.as_ref(), OperationKind::Payout, amount)
            .await?
        {
            return self.movement(member, op, None).await;
        }
        let member = self.inner.members.get(member).await?;
        self.check_per_transaction(amount)?;
        self.check_holder(&request.to, &request.holder_name).await?;
        let outgoing = Outgoing {
            kind: OperationKind::Payout,
            account: request.to,
            bank_account_id: None,
            auto_top_up: request.auto_top_up,
        };
        self.pay_out(&member, amount, outgoing, key).await
    }

    /// Moves money to another member's wallet in one ledger transaction.
    pub async fn transfer(
        &self,
        sender: &MemberId,
        request: TransferRequest,
        key: Option<RequestKey>,
    ) -> Result<Movement, WalletError> {
        let amount = positive_amount(request.amount)?;
        if let Some(op) = self
            .replay(key.as_ref(), OperationKind::Transfer, amount)
            .await?
        {
            return self.movement(sender, op, None).await;
        }
        let sender = self.inner.members.get(sender).await?;
        let recipient = self.recipient(&request.to).await?;
        if recipient.id == sender.id {
            return Err(WalletError::TransferToSelf);
        }
        self.check_per_transaction(amount)?;
        let op = self.new_operation(
            &sender,
            OperationKind::Transfer,
            amount,
            mask_name(recipient.name.as_str()),
        );
        let op = Operation {
            counterparty_member_id: Some(recipient.id.clone()),
            ..op
        };
        let Some(op) = self.record(op, key.as_ref()).await? else {
            let op = self.replayed(key.as_ref()).await?;
            return self.movement(&sender.id, op, None).await;
        };
        let moved = self
            .move_between_members(&sender, &recipient, &op, request.auto_top_up, key.as_ref())
            .await;
        match moved {
            Ok(top_up) => {
                self.finish(&op, OperationState::Succeeded, None).await?;
                let op = self.reload(&op).await?;
                self.movement(&sender.id, op, top_up).await
            }
            Err(error) => Err(self.stopped(&op, error).await?),
        }
    }

    /// Holds a payment order's money in the buyer's wallet (topping it up first when short and
    /// allowed). Repeating it for the same order answers the same operation and reserves
    /// nothing twice; an operation already captured or released is answered as it is.
    pub async fn reserve_payment(
        &self,
        buyer: &MemberId,
        debit: PaymentDebit,
    ) -> Result<Movement, WalletError> {
        let amount = positive_amount(debit.amount)?;
        let key = RequestKey {
            scope: PAYMENT_SCOPE.to_owned(),
            key: debit.payment_order.clone(),
        };
        let member = self.inner.members.get(buyer).await?;
        let op = match self
            .replay(Some(&key), OperationKind::Payment, amount)
            .await?
        {
            Some(op) => op,
            None => self.record_payment(&member, amount, &debit, &key).await?,
        };
        if op.state != OperationState::Pending || self.hold_exists(&op.id).await? {
            return self.movement(buyer, op, None).await;
        }
        let wallet = self.wallet_account(buyer, amount.currency()).await?;
        let top_up = match self
            .ensure_available(&member, &wallet, &op, debit.auto_top_up, Some(&key))
            .await
        {
            Ok(top_up) => top_up,
            Err(error) => return Err(self.stopped(&op, error).await?),
        };
        let hold = NewHold {
            id: op.id.hold_id(),
            debit_account_id: wallet,
            credit_account_id: debit.credit_account,
            amount,
            expires_at: None,
            metadata: Some(serde_json::json!({
                "mtx": op.id.as_str(),
                "kind": "payment",
                "payment_order": debit.payment_order,
            })),
            balance_limits: Vec::new(),
        };
        if let Err(error) = self.inner.ledger.reserve_hold(hold).await {
            return Err(self.stopped(&op, self.ledger_refusal(error)).await?);
        }
        // Released while this run reserved (the order failed meanwhile): give the hold back.
        let op = self.reload(&op).await?;
        if op.state == OperationState::Failed {
            self.void(op.id.hold_id()).await?;
        }
        self.movement(buyer, op, top_up).await
    }

    /// Takes a reserved payment: posts its hold under the operation's number. Repeating it is
    /// a replay.
    pub async fn capture_payment(&self, id: &MoneyTxId) -> Result<(), WalletError> {
        let op = self.payment_operation(id).await?;
        match op.state {
            OperationState::Succeeded => return Ok(()),
            OperationState::Failed => {
                return Err(WalletError::Internal(format!(
                    "payment {id} was released and cannot be captured"
                )))
            }
            OperationState::Pending => {}
        }
        self.inner
            .ledger
            .post_hold(PostHold {
                hold_id: op.id.hold_id(),
                amount: None,
                transaction_id: Some(op.id.transaction_id()),
            })
            .await?;
        self.finish(&op, OperationState::Succeeded, None).await
    }

    /// Gives a payment order's held money back to the buyer: voids its hold (always, so a hold
    /// a late run placed is voided too) and fails its operation with `code`. An order that
    /// never reserved money needs nothing; a payment already captured cannot be released (a
    /// refund gives it back).
    pub async fn release_payment(
        &self,
        payment_order: &str,
        code: &str,
    ) -> Result<(), WalletError> {
        let key = RequestKey {
            scope: PAYMENT_SCOPE.to_owned(),
            key: payment_order.to_owned(),
        };
        let Some(op) = store::operation_by_request(&self.inner.db, &key).await? else {
            return Ok(());
        };
        match self.inner.ledger.void_hold(op.id.hold_id()).await {
            Ok(_) | Err(LedgerError::HoldNotFound(_)) | Err(LedgerError::HoldAlreadyVoided(_)) => {}
            Err(LedgerError::HoldAlreadyPosted(_)) => {
                return Err(WalletError::Internal(format!(
                    "payment {} was captured and cannot be released",
                    op.id
                )))
            }
            Err(error) => return Err(error.into()),
        }
        if op.state == OperationState::Pending {
            self.finish(&op, OperationState::Failed, Some(code)).await?;
        }
        Ok(())
    }

    /// A member's wallet account in `currency`, opened on first use: where a refund credits.
    pub async fn account(
        &self,
        member: &MemberId,
        currency: Currency,
    ) -> Result<AccountId, WalletError> {
        self.wallet_account(member, wallet_currency(currency)?)
            .await
    }

    /// Records a refund that the ledger transaction `id` (posted by the caller) credited to the
    /// member's wallet, so that their history shows it. Recording it again changes nothing.
    pub async fn record_refund(
        &self,
        member: &MemberId,
        id: &MoneyTxId,
        amount: Money,
        merchant_label: String,
    ) -> Result<(), WalletError> {
        let member = self.inner.members.get(member).await?;
        let op = Operation {
            id: id.clone(),
            state: OperationState::Succeeded,
            ..self.new_operation(&member, OperationKind::Refund, amount, merchant_label)
        };
        store::insert_operation(&self.inner.db, &op, None).await?;
        Ok(())
    }

    /// Records a new payment operation, or finds the one a concurrent run recorded first.
    async fn record_payment(
        &self,
        member: &Member,
        amount: Money,
        debit: &PaymentDebit,
        key: &RequestKey,
    ) -> Result<Operation, WalletError> {
        if member.status != MemberStatus::Active {
            return Err(WalletError::MemberNotActive(member.id.to_string()));
        }
        let op = self.new_operation(
            member,
            OperationKind::Payment,
            amount,
            debit.merchant_label.clone(),
        );
        match self.record(op, Some(key)).await? {
            Some(op) => Ok(op),
            None => self.replayed(Some(key)).await,
        }
    }

    async fn payment_operation(&self, id: &MoneyTxId) -> Result<Operation, WalletError> {
        match store::operation(&self.inner.db, id.as_str()).await? {
            Some(op) if op.kind == OperationKind::Payment => Ok(op),
            _ => Err(WalletError::MoneyTxNotFound(id.to_string())),
        }
    }

    /// Whether the operation's hold was reserved (in any state since).
    async fn hold_exists(&self, id: &MoneyTxId) -> Result<bool, WalletError> {
        match self.inner.ledger.hold(id.hold_id().as_str()).await {
            Ok(_) => Ok(true),
            Err(LedgerError::HoldNotFound(_)) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Ends an operation that a refusal stopped, giving back its daily usage; one stopped by an
    /// error whose effect is unknown stays pending, and the resolver finishes it once it can
    /// tell (its ledger entry exists or not; its hold is voided when abandoned). Returns the
    /// error to answer with.
    async fn stopped(
        &self,
        op: &Operation,
        error: WalletError,
    ) -> Result<WalletError, WalletError> {
        if error.is_in_doubt() {
            tracing::warn!(operation = %op.id.as_str(), %error, "wallet operation left pending for the resolver");
        } else {
            self.finish(op, OperationState::Failed, Some(error.code()))
                .await?;
        }
        Ok(error)
    }

    /// One pass of the resolver over operations pending for at least `min_age`: finishes
    /// bank-backed ones whose transfer has an outcome (asking the bank where it is still
    /// unknown), and ends those abandoned before their transfer was recorded. `mypay serve`
    /// runs it every few seconds with [`RESOLVE_MIN_AGE`], so that it leaves operations whose
    /// own request is still asking the bank alone (overtaking them would be safe, only wasteful).
    pub async fn resolve_pending(
        &self,
        min_age: Duration,
        limit: i64,
    ) -> Result<ResolvePass, WalletError> {
        let now = self.inner.ledger.now_micros();
        let min_age = i64::try_from(min_age.as_micros()).unwrap_or(i64::MAX);
        let pending = store::pending_operations(
            &self.inner.db,
            now.saturating_sub(min_age),
            limit.clamp(1, RESOLVE_BATCH_MAX),
        )
        .await?;
        let mut pass = ResolvePass::default();
        for op in pending {
            pass.examined += 1;
            match self.resolve_operation(&op, now).await {
                Ok(true) => pass.finished += 1,
                Ok(false) => store::touch(&self.inner.db, &op.id, now).await?,
                Err(error) => {
                    tracing::warn!(operation = %op.id, code = error.code(), %error, "resolving a wallet operation failed");
                    store::touch(&self.inner.db, &op.id, now).await?;
                }
            }
        }
        Ok(pass)
    }

    async fn resolve_operation(
        &self,
        op: &Operation,
        now: ledger::Micros,
    ) -> Result<bool, WalletError> {
        if op.kind == OperationKind::Transfer {
            return self.resolve_member_transfer(op, now).await;
        }
        let transfers = &self.inner.transfers;
        let transfer = match transfers.find(TRANSFER_OWNER, op.id.as_str()).await? {
            Some(transfer) if transfer.state.is_final() => transfer,
            Some(transfer) => transfers.resolve(transfer).await?,
            None if now - op.created_at >= ABANDONED_AFTER_MICROS => {
                let amount = transfer_amount(op.amount)?;
                let kind = match op.kind {
                    OperationKind::Charge => TransferKind::Collect,
                    _ => TransferKind::Payout,
                };
                transfers
                    .abandon(TRANSFER_OWNER, op.id.as_str(), kind, amount)
                    .await?
            }
            None => return Ok(false),
        };
        let op = self.settle(op, &transfer).await?;
        Ok(op.state != OperationState::Pending)
    }

    /// A transfer between members left pending by a crash: it happened if its ledger
    /// transaction exists; otherwise, once abandoned, it failed.
    async fn resolve_member_transfer(
        &self,
        op: &Operation,
        now: ledger::Micros,
    ) -> Result<bool, WalletError> {
        match self.inner.ledger.transaction(op.id.as_str()).await {
            Ok(_) => {
                self.finish(op, OperationState::Succeeded, None).await?;
                Ok(true)
            }
            Err(LedgerError::TransactionNotFound(_))
                if now - op.created_at >= TRANSFER_ABANDONED_AFTER_MICROS =>
            {
                self.finish(op, OperationState::Failed, Some("abandoned"))
                    .await?;
                Ok(true)
            }
            Err(LedgerError::TransactionNotFound(_)) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Records a charge, reserves its incoming money, and collects it at the bank.
    async fn charge_from(
        &self,
        member: &Member,
        amount: Money,
        source: ChargeSource,
        key: Option<&RequestKey>,
        parent: Option<&MoneyTxId>,
    ) -> Result<Operation, WalletError> {
        let transfer_amount = transfer_amount(amount)?;
        let op = Operation {
            bank_account_id: Some(source.bank_account_id.clone()),
            parent_id: parent.cloned(),
            ..self.new_operation(
                member,
                OperationKind::Charge,
                amount,
                account_label(&source.account),
            )
        };
        let Some(op) = self.record(op, key).await? else {
            return self.replayed(key).await;
        };
        let wallet = self.wallet_account(&member.id, amount.currency()).await?;
        let master = self.master().await?;
        let hold = NewHold {
            id: op.id.hold_id(),
            debit_account_id: master,
            credit_account_id: wallet.clone(),
            amount,
            expires_at: None,
            metadata: Some(serde_json::json!({"mtx": op.id.as_str(), "kind": "charge"})),
            balance_limits: vec![ledger::BalanceLimit {
                account_id: wallet,
                max: Money::from_minor(self.inner.config.limits.max_balance, amount.currency()),
            }],
        };
        if let Err(error) = self.inner.ledger.reserve_hold(hold).await {
            return Err(self.stopped(&op, self.ledger_refusal(error)).await?);
        }
        let order = TransferOrder::Collect {
            from: source.account.clone(),
            payer_number: source.payer_number,
            memo: memo("마이페이 충전")?,
            master_memo: master_memo("charge", &op.id)?,
        };
        let transfer = self
            .send_transfer(&op, transfer_amount, &source.account, order)
            .await?;
        self.settle(&op, &transfer).await
    }

    /// Records the operation's bank transfer before anything is sent, ties it to the operation
    /// (so that the resolver finds it after a crash), and sends it.
    async fn send_transfer(
        &self,
        op: &Operation,
        amount: TransferAmount,
        account: &BankAccount,
        order: TransferOrder,
    ) -> Result<BankTransfer, WalletError> {
        let transfers = &self.inner.transfers;
        let transfer = transfers
            .prepare(
                TRANSFER_OWNER,
                op.id.as_str(),
                order.kind(),
                amount,
                account,
            )
            .await?;
        store::set_bank_transfer(&self.inner.db, &op.id, &transfer.id).await?;
        Ok(transfers.send(transfer, order).await?)
    }

    /// Holds the member's money, pays it out at the bank, and posts on success.
    async fn pay_out(
        &self,
        member: &Member,
        amount: Money,
        outgoing: Outgoing,
        key: Option<RequestKey>,
    ) -> Result<Movement, WalletError> {
        let transfer_amount = transfer_amount(amount)?;
        let op = Operation {
            bank_account_id: outgoing.bank_account_id.clone(),
            ..self.new_operation(
                member,
                outgoing.kind,
                amount,
                account_label(&outgoing.account),
            )
        };
        let Some(op) = self.record(op, key.as_ref()).await? else {
            let op = self.replayed(key.as_ref()).await?;
            return self.movement(&member.id, op, None).await;
        };
        let reserved = self
            .reserve_payout(member, &op, outgoing.auto_top_up, key.as_ref())
            .await;
        let top_up = match reserved {
            Ok(top_up) => top_up,
            Err(error) => return Err(self.stopped(&op, error).await?),
        };
        let order = TransferOrder::Payout {
            to: outgoing.account.clone(),
            memo: memo(&format!("마이페이 {}", op.member_label))?,
            master_memo: master_memo(outgoing.kind.as_str(), &op.id)?,
        };
        let transfer = self
            .send_transfer(&op, transfer_amount, &outgoing.account, order)
            .await?;
        let op = self.settle(&op, &transfer).await?;
        refuse_failed(&op)?;
        self.movement(&member.id, op, top_up).await
    }

    /// Tops up if needed and allowed, then holds the payout's money in the wallet.
    async fn reserve_payout(
        &self,
        member: &Member,
        op: &Operation,
        auto_top_up: bool,
        key: Option<&RequestKey>,
    ) -> Result<Option<Operation>, WalletError> {
        let wallet = self
            .wallet_account(&member.id, op.amount.currency())
            .await?;
        let top_up = self
            .ensure_available(member, &wallet, op, auto_top_up, key)
            .await?;
        let hold = NewHold {
            id: op.id.hold_id(),
            debit_account_id: wallet,
            credit_account_id: self.master().await?,
            amount: op.amount,
            expires_at: None,
            metadata: Some(serde_json::json!({"mtx": op.id.as_str(), "kind": op.kind.as_str()})),
            balance_limits: Vec::new(),
        };
        self.inner
            .ledger
            .reserve_hold(hold)
            .await
            .map_err(|error| self.ledger_refusal(error))?;
        Ok(top_up)
    }

    /// Tops up if needed, then posts the one ledger transaction between the two wallets.
    async fn move_between_members(
        &self,
        sender: &Member,
        recipient: &Member,
        op: &Operation,
        auto_top_up: bool,
        key: Option<&RequestKey>,
    ) -> Result<Option<Operation>, WalletError> {
        let currency = op.amount.currency();
        let from = self.wallet_account(&sender.id, currency).await?;
        let to = self.wallet_account(&recipient.id, currency).await?;
        let top_up = self
            .ensure_available(sender, &from, op, auto_top_up, key)
            .await?;
        let mut tx = NewTransaction::transfer(op.id.transaction_id(), from, to.clone(), op.amount);
        tx.description = Some("transfer between members".into());
        tx.metadata = Some(serde_json::json!({
            "kind": "transfer",
            "from": sender.id.as_str(),
            "to": recipient.id.as_str(),
        }));
        tx.balance_limits = vec![ledger::BalanceLimit {
            account_id: to,
            max: Money::from_minor(self.inner.config.limits.max_balance, currency),
        }];
        self.inner
            .ledger
            .post_transaction(tx)
            .await
            .map_err(|error| self.ledger_refusal(error))?;
        Ok(top_up)
    }

    /// Charges the shortfall, rounded up to the top-up unit, when the wallet's available
    /// balance does not cover `op` and auto top-up is on. Anything short of a succeeded
    /// top-up is `insufficient_funds`; a top-up that succeeded stays in the wallet whatever
    /// happens to `op` afterwards.
    async fn ensure_available(
        &self,
        member: &Member,
        wallet: &AccountId,
        op: &Operation,
        auto_top_up: bool,
        key: Option<&RequestKey>,
    ) -> Result<Option<Operation>, WalletError> {
        let available = self.inner.ledger.balance(wallet.as_str()).await?.available;
        let shortfall = op
            .amount
            .minor()
            .checked_sub(available.minor())
            .ok_or(WalletError::AmountOutOfRange)?;
        if shortfall <= 0 {
            return Ok(None);
        }
        if !auto_top_up {
            return Err(WalletError::InsufficientFunds { top_up: None });
        }
        let refused = |why: String| WalletError::InsufficientFunds { top_up: Some(why) };
        if member.status != MemberStatus::Active {
            return Err(refused("a closed member cannot be topped up".into()));
        }
        let charge = Money::from_minor(
            top_up_amount(shortfall, self.inner.config.auto_top_up_unit)?,
            op.amount.currency(),
        );
        let source = self
            .inner
            .funding
            .charge_source(&member.id, None)
            .await
            .map_err(|error| refused(format!("no charge source ({})", error.code())))?;
        let top_up_key = key.map(|key| key.derived("top-up"));
        let top_up = self
            .charge_from(member, charge, source, top_up_key.as_ref(), Some(&op.id))
            .await
            .map_err(|error| refused(format!("the top-up was refused ({})", error.code())))?;
        match top_up.state {
            OperationState::Succeeded => Ok(Some(top_up)),
            OperationState::Pending => Err(refused(format!(
                "the top-up charge {} is still pending at the bank; it lands in the wallet when it completes",
                top_up.id
            ))),
            OperationState::Failed => Err(refused(format!(
                "the top-up charge {} failed ({})",
                top_up.id,
                top_up.failure_code.as_deref().unwrap_or("refused")
            ))),
        }
    }

    /// Finishes an operation by its bank transfer's outcome: posts the hold on success, voids
    /// it on failure, leaves it while unknown. Every step is a replay when repeated.
    async fn settle(
        &self,
        op: &Operation,
        transfer: &BankTransfer,
    ) -> Result<Operation, WalletError> {
        let hold = op.id.hold_id();
        match transfer.state {
            TransferState::Succeeded => {
                self.inner
                    .ledger
                    .post_hold(PostHold {
                        hold_id: hold,
                        amount: None,
                        transaction_id: Some(op.id.transaction_id()),
                    })
                    .await?;
                self.finish(op, OperationState::Succeeded, None).await?;
            }
            TransferState::Failed => {
                self.void(hold).await?;
                let code = transfer.failure_code.as_deref().unwrap_or("bank_refused");
                self.finish(op, OperationState::Failed, Some(code)).await?;
            }
            TransferState::Pending | TransferState::Unknown => {}
        }
        self.reload(op).await
    }

    /// Voids a hold; one that was never reserved (the request ended before) needs nothing.
    async fn void(&self, hold: HoldId) -> Result<(), WalletError> {
        match self.inner.ledger.void_hold(hold).await {
            Ok(_) | Err(LedgerError::HoldNotFound(_)) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    async fn finish(
        &self,
        op: &Operation,
        state: OperationState,
        failure_code: Option<&str>,
    ) -> Result<(), WalletError> {
        let now = self.inner.ledger.now_micros();
        store::finish_operation(&self.inner.db, op, state, failure_code, now).await
    }

    async fn reload(&self, op: &Operation) -> Result<Operation, WalletError> {
        store::operation(&self.inner.db, op.id.as_str())
            .await?
            .ok_or_else(|| WalletError::Internal(format!("operation {} vanished", op.id)))
    }

    /// Takes the operation's daily usage and records it; `None` when its request key was used
    /// before (the usage is given back, and the caller answers with the earlier operation).
    async fn record(
        &self,
        op: Operation,
        key: Option<&RequestKey>,
    ) -> Result<Option<Operation>, WalletError> {
        let db = &self.inner.db;
        let amount = op.amount.minor();
        let usage = op.usage_kind();
        if let Some(usage) = usage {
            let limit = self.inner.config.limits.of(usage.limit());
            if !store::take_usage(db, &op.member_id, &op.usage_day, usage, amount, limit).await? {
                return Err(WalletError::LimitExceeded {
                    limit: usage.limit(),
                    limit_won: limit,
                });
            }
        }
        if store::insert_operation(db, &op, key).await? {
            return Ok(Some(op));
        }
        if let Some(usage) = usage {
            store::release_usage(db, &op.member_id, &op.usage_day, usage, amount).await?;
        }
        Ok(None)
    }

    /// The operation an earlier run of the same request recorded, checked to be the same kind
    /// and amount.
    async fn replay(
        &self,
        key: Option<&RequestKey>,
        kind: OperationKind,
        amount: Money,
    ) -> Result<Option<Operation>, WalletError> {
        let Some(key) = key else {
            return Ok(None);
        };
        match store::operation_by_request(&self.inner.db, key).await? {
            Some(op) if op.kind == kind && op.amount == amount => Ok(Some(op)),
            Some(_) => Err(WalletError::RequestKeyReused),
            None => Ok(None),
        }
    }

    async fn replayed(&self, key: Option<&RequestKey>) -> Result<Operation, WalletError> {
        let key = key.ok_or_else(|| {
            WalletError::Internal("an operation without a request key conflicted".into())
        })?;
        store::operation_by_request(&self.inner.db, key)
            .await?
            .ok_or_else(|| WalletError::Internal("the conflicting operation vanished".into()))
    }

    fn new_operation(
        &self,
        member: &Member,
        kind: OperationKind,
        amount: Money,
        counterparty_label: String,
    ) -> Operation {
        let now = self.inner.ledger.now_micros();
        let day = banking::kst::bank_date(crate::bank_transfer::to_datetime(now));
        Operation {
            id: MoneyTxId::generate(),
            member_id: member.id.clone(),
            kind,
            amount,
            state: OperationState::Pending,
            member_label: mask_name(member.name.as_str()),
            counterparty_member_id: None,
            counterparty_label,
            bank_account_id: None,
            bank_transfer_id: None,
            parent_id: None,
            usage_day: banking::kst::format_date(day),
            failure_code: None,
            created_at: now,
            updated_at: now,
        }
    }

    async fn movement(
        &self,
        viewer: &MemberId,
        op: Operation,
        top_up: Option<Operation>,
    ) -> Result<Movement, WalletError> {
        let balance = self.balance(viewer, op.amount.currency()).await?;
        Ok(Movement {
            transaction: money_tx(viewer, op),
            top_up: top_up.map(|op| money_tx(viewer, op)),
            balance,
        })
    }

    async fn active_member(&self, id: &MemberId) -> Result<Member, WalletError> {
        let member = self.inner.members.get(id).await?;
        match member.status {
            MemberStatus::Active => Ok(member),
            MemberStatus::Closed => Err(WalletError::MemberNotActive(id.to_string())),
        }
    }

    /// The active member a transfer names. A closed member named by id is `member_not_active`;
    /// email addresses and phone numbers belong to active members only.
    async fn recipient(&self, to: &Recipient) -> Result<Member, WalletError> {
        let members = &self.inner.members;
        let found = match to {
            Recipient::Member(id) => match members.get(id).await {
                Ok(member) => Some(member),
                Err(MemberError::NotFound(_)) => None,
                Err(error) => return Err(error.into()),
            },
            Recipient::Email(email) => members.find_active_by_email(email).await?,
            Recipient::Phone(phone) => members.find_active_by_phone(phone).await?,
        };
        let member = found.ok_or(WalletError::RecipientNotFound)?;
        match member.status {
            MemberStatus::Active => Ok(member),
            MemberStatus::Closed => Err(WalletError::MemberNotActive(member.id.to_string())),
        }
    }

    /// Asks the bank whose the account is and compares with the name the member expects.
    /// The inquiry's fee is booked under an id of its own.
    async fn check_holder(
        &self,
        account: &BankAccount,
        expected: &HolderName,
    ) -> Result<(), WalletError> {
        let transfers = &self.inner.transfers;
        let answer = transfers.bank().real_name(account).await;
        if reached_bank(&answer) {
            transfers
                .book_fee(
                    &format!("bkf:real_name:{}", ulid::Ulid::new()),
                    self.real_name_fee(),
                )
                .await?;
        }
        match answer {
            Ok(RealNameOutcome::Found { holder_name }) if holder_name == *expected => Ok(()),
            Ok(RealNameOutcome::Found { holder_name }) => Err(WalletError::HolderNameMismatch {
                actual_masked: holder_name.masked(),
            }),
            Ok(RealNameOutcome::NotFound)
            | Err(BankError::Refused {
                code: RefusalCode::AccountNotFound,
                ..
            }) => Err(WalletError::BankAccountNotFound),
            Err(BankError::Refused { code, .. }) => Err(WalletError::BankRefused {
                code: code.as_str(),
            }),
            Err(BankError::Unavailable { .. }) => Err(WalletError::BankUnavailable),
        }
    }

    fn real_name_fee(&self) -> i64 {
        self.inner.transfers.fees().real_name
    }

    fn check_per_transaction(&self, amount: Money) -> Result<(), WalletError> {
        let limit = self.inner.config.limits.per_transaction;
        if amount.minor() > limit {
            return Err(WalletError::LimitExceeded {
                limit: LimitKind::PerTransaction,
                limit_won: limit,
            });
        }
        Ok(())
    }

    /// Maps the ledger's refusals of a wallet movement to the wallet's own codes.
    fn ledger_refusal(&self, error: LedgerError) -> WalletError {
        match error {
            LedgerError::InsufficientFunds { .. } => {
                WalletError::InsufficientFunds { top_up: None }
            }
            LedgerError::BalanceLimitExceeded { .. } => WalletError::LimitExceeded {
                limit: LimitKind::MaxBalance,
                limit_won: self.inner.config.limits.max_balance,
            },
            other => other.into(),
        }
    }

    /// The member's wallet account, opened on first use.
    async fn wallet_account(
        &self,
        member: &MemberId,
        currency: Currency,
    ) -> Result<AccountId, WalletError> {
        let db = &self.inner.db;
        if let Some(id) = store::wallet_account(db, member, currency).await? {
            return Ok(AccountId::parse(&id)?);
        }
        let code = format!(
            "liability:member:{}:money:{}",
            member.as_str(),
            currency.code()
        );
        let account = self
            .inner
            .ledger
            .create_account(NewAccount {
                code: AccountCode::parse(&code)?,
                kind: AccountKind::Liability,
                currency,
                flags: AccountFlags::MUST_NOT_GO_NEGATIVE,
                metadata: None,
            })
            .await?;
        let now = self.inner.ledger.now_micros();
        store::insert_wallet(db, member, currency, account.id.as_str(), now).await?;
        Ok(account.id)
    }

    async fn master(&self) -> Result<AccountId, WalletError> {
        let id = self
            .inner
            .master
            .get_or_try_init(|| async {
                let account = self
                    .inner
                    .ledger
                    .create_account(NewAccount {
                        code: AccountCode::parse(MASTER_ACCOUNT)?,
                        kind: AccountKind::Asset,
                        currency: Currency::KRW,
                        flags: AccountFlags::empty(),
                        metadata: None,
                    })
                    .await?;
                Ok::<_, WalletError>(account.id)
            })
            .await?;
        Ok(id.clone())
    }
}

/// Where a withdrawal or payout goes.
struct Outgoing {
    kind: OperationKind,
    account: BankAccount,
    bank_account_id: Option<String>,
    auto_top_up: bool,
}

/// Whether a real-name inquiry reached the bank and so costs its fee: any answer does, "no
/// answer" does not.
fn reached_bank(answer: &Result<RealNameOutcome, BankError>) -> bool {
    !matches!(answer, Err(BankError::Unavailable { .. }))
}

/// A bank refusal of a charge, withdrawal or payout, as the request's answer.
fn refuse_failed(op: &Operation) -> Result<(), WalletError> {
    if op.state != OperationState::Failed {
        return Ok(());
    }
    let code = op.failure_code.as_deref().unwrap_or("bank_refused");
    Err(WalletError::BankRefused {
        code: refusal_code(code),
    })
}

/// The static form of a stored refusal code.
fn refusal_code(code: &str) -> &'static str {
    RefusalCode::ALL
        .iter()
        .map(|c| c.as_str())
        .chain([
            crate::bank_transfer::NOT_RECEIVED,
            crate::bank_transfer::NOT_SENT,
        ])
        .find(|known| *known == code)
        .unwrap_or("bank_refused")
}

fn transfer_amount(amount: Money) -> Result<TransferAmount, WalletError> {
    TransferAmount::from_money(amount).map_err(|_| WalletError::AmountOutOfRange)
}

fn memo(text: &str) -> Result<Memo, WalletError> {
    let text: String = text.chars().take(banking::MEMO_CHARS_MAX).collect();
    Memo::parse(&text).map_err(|error| WalletError::Internal(error.to_string()))
}

/// The master account's statement line: the operation and the end of its number, enough to
/// find it again when reconciling.
fn master_memo(what: &str, id: &MoneyTxId) -> Result<Memo, WalletError> {
    let number = id.as_str();
    memo(&format!("{what} {}", &number[number.len() - 10..]))
}

fn money_tx(viewer: &MemberId, op: Operation) -> MoneyTx {
    let (kind, counterparty) = match op.kind {
        OperationKind::Charge => (EntryKind::Charge, op.counterparty_label.clone()),
        OperationKind::Withdrawal => (EntryKind::Withdrawal, op.counterparty_label.clone()),
        OperationKind::Payout => (EntryKind::Payout, op.counterparty_label.clone()),
        OperationKind::Transfer if op.member_id == *viewer => {
            (EntryKind::TransferOut, op.counterparty_label.clone())
        }
        OperationKind::Transfer => (EntryKind::TransferIn, op.member_label.clone()),
        OperationKind::Payment => (EntryKind::Payment, op.counterparty_label.clone()),
        OperationKind::Refund => (EntryKind::Refund, op.counterparty_label.clone()),
    };
    MoneyTx {
        operation: op,
        kind,
        counterparty,
    }
}

fn history_entry(viewer: &MemberId, posting: &Posting, op: Option<&Operation>) -> HistoryEntry {
    let signed = match posting.direction {
        ledger::Direction::Credit => posting.amount.minor(),
        ledger::Direction::Debit => -posting.amount.minor(),
    };
    let (kind, counterparty) = match op {
        Some(op) => {
            let tx = money_tx(viewer, op.clone());
            (tx.kind, Some(tx.counterparty))
        }
        None => (EntryKind::Adjustment, None),
    };
    HistoryEntry {
        id: posting.transaction_id.to_string(),
        kind,
        counterparty,
        amount: Money::from_minor(signed, posting.amount.currency()),
        balance_after: posting.balance_after,
        posted_at: posting.posted_at,
    }
}
