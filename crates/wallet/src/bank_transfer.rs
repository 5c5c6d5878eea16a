//! The bank transfer executor: every collect and payout the platform sends, recorded before
//! the call, resolved by inquiry when the outcome is unknown, and its fee booked once.
//!
//! Reusable by anything that moves money through the bank (the wallet now; settlement and
//! remittance later). A caller names itself (`owner`) and its own record (`reference`); a
//! transfer is unique per `(owner, reference)`, so a re-run of the caller's step after a crash
//! finds the transfer it started instead of sending a second one.
//!
//! The life of a transfer:
//!
//! 1. [`BankTransfers::prepare`] records it `pending` with a fresh `bank_tran_id` and the
//!    request time. Nothing has been sent.
//! 2. [`BankTransfers::send`] sends it. `Succeeded` books the fee and ends it `succeeded`;
//!    `Failed` ends it `failed`; `Unknown` marks it `unknown` and asks the bank
//!    (`transfer_result`) a few times with backoff. `NotFound` there resends the very same
//!    request (same id, same request time), which the bank executes at most once.
//! 3. What is still unknown when the caller's request has to answer is finished by
//!    [`BankTransfers::resolve`], called by the caller's background resolver.
//!
//! Account numbers are not stored: the request lives in this process's memory for
//! [`RESEND_WINDOW`], long enough to resend it; after that, only inquiries are made (they need
//! no account). A transfer the bank still does not know [`NOT_RECEIVED_AFTER`] after its request
//! time, with nobody left to resend it, never reached the bank: it ends `failed` with
//! `not_received`. The bank processes a request within seconds of receiving it (the HTTP
//! adapter gives up after 10 s), so a request it has not seen after 20 minutes is not coming.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use banking::{
    BankAccount, BankFees, BankGateway, BankTranId, CollectRequest, InquiryOutcome, Memo,
    PayerNumber, PayoutRequest, TransferAmount, TransferKind, TransferOutcome, TransferQuery,
};
use ledger::{
    AccountCode, AccountFlags, AccountId, AccountKind, Ledger, LedgerError, Micros, NewAccount,
    NewTransaction, TransactionId,
};
use money::{Currency, Money};
use sqlx::Row;
use storage::Db;
use time::OffsetDateTime;
use tokio::sync::OnceCell;

/// How long this process keeps a request to resend it after `NotFound`.
pub const RESEND_WINDOW: Duration = Duration::from_secs(10 * 60);
/// When a transfer the bank does not know, and that nobody can resend any more, is given up as
/// never received: twice the resend window, so that no process is still resending it.
pub const NOT_RECEIVED_AFTER: Duration = Duration::from_secs(20 * 60);
/// The pauses before each inquiry made while the caller's request waits for an unknown outcome.
pub const INQUIRY_DELAYS: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(300),
    Duration::from_millis(900),
    Duration::from_millis(2000),
];
/// The most requests kept in memory for resending; beyond it the oldest are dropped (they are
/// then resolved by inquiry alone).
const REMEMBERED_REQUESTS_MAX: usize = 100_000;

/// The failure code of a transfer the bank never received.
pub const NOT_RECEIVED: &str = "not_received";
/// The failure code of a transfer given up before it was sent.
pub const NOT_SENT: &str = "not_sent";

/// The chart-of-accounts codes this module books fees to.
pub const BANK_FEES_EXPENSE: &str = "expense:bank_fees";
pub const BANK_FEES_PAYABLE: &str = "liability:bank:fees_payable";

/// Where a transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferState {
    /// Recorded; not sent yet, or sent and not answered yet.
    Pending,
    /// The bank executed it.
    Succeeded,
    /// The bank refused it (or never received it); nothing moved.
    Failed,
    /// Sent, and the answer was lost; being resolved by inquiry.
    Unknown,
}

impl TransferState {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferState::Pending => "pending",
            TransferState::Succeeded => "succeeded",
            TransferState::Failed => "failed",
            TransferState::Unknown => "unknown",
        }
    }

    fn from_db(value: &str) -> Result<TransferState, TransferError> {
        match value {
            "pending" => Ok(TransferState::Pending),
            "succeeded" => Ok(TransferState::Succeeded),
            "failed" => Ok(TransferState::Failed),
            "unknown" => Ok(TransferState::Unknown),
            other => Err(TransferError::Corrupt(format!("state {other:?}"))),
        }
    }

    /// Whether the outcome is known for good.
    pub fn is_final(self) -> bool {
        matches!(self, TransferState::Succeeded | TransferState::Failed)
    }
}

/// A recorded transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankTransfer {
    /// `btr_` + ULID.
    pub id: String,
    pub kind: TransferKind,
    pub bank_tran_id: BankTranId,
    pub requested_at: Micros,
    pub amount: TransferAmount,
    /// Bank code and masked number of the member's or recipient's account.
    pub account_masked: String,
    pub state: TransferState,
    pub attempts: i64,
    pub inquiries: i64,
    pub failure_code: Option<String>,
    pub owner: String,
    pub reference: String,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub resolved_at: Option<Micros>,
}

/// What to send, besides the amount: the member's account and consent for a collect, the
/// recipient's account for a payout, and the memos printed on both statements.
#[derive(Debug, Clone)]
pub enum TransferOrder {
    Collect {
        from: BankAccount,
        payer_number: PayerNumber,
        memo: Memo,
        master_memo: Memo,
    },
    Payout {
        to: BankAccount,
        memo: Memo,
        master_memo: Memo,
    },
}

impl TransferOrder {
    pub fn kind(&self) -> TransferKind {
        match self {
            TransferOrder::Collect { .. } => TransferKind::Collect,
            TransferOrder::Payout { .. } => TransferKind::Payout,
        }
    }

    fn account(&self) -> &BankAccount {
        match self {
            TransferOrder::Collect { from, .. } => from,
            TransferOrder::Payout { to, .. } => to,
        }
    }
}

/// A request as sent, kept to resend it unchanged.
#[derive(Debug, Clone)]
enum SentRequest {
    Collect(CollectRequest),
    Payout(PayoutRequest),
}

/// Why the executor could not record or book something. Bank refusals are not errors: they
/// are a transfer's `failed` state.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransferError {
    #[error("database error: {0}")]
    Storage(Arc<sqlx::Error>),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("bank transfer {0} does not exist")]
    NotFound(String),
    #[error("a stored bank transfer does not read back: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for TransferError {
    fn from(error: sqlx::Error) -> Self {
        TransferError::Storage(Arc::new(error))
    }
}

/// The executor. Cheap to share behind an `Arc`; one per process.
pub struct BankTransfers {
    db: Db,
    bank: Arc<dyn BankGateway>,
    ledger: Arc<Ledger>,
    fees: BankFees,
    fee_accounts: OnceCell<(AccountId, AccountId)>,
    remembered: Mutex<HashMap<String, (SentRequest, Micros)>>,
}

impl std::fmt::Debug for BankTransfers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankTransfers")
            .field("fees", &self.fees)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, kind, bank_tran_id, requested_at, amount, account_masked, state, \
     attempts, inquiries, failure_code, owner, reference, created_at, updated_at, resolved_at";

impl BankTransfers {
    pub fn new(
        db: Db,
        bank: Arc<dyn BankGateway>,
        ledger: Arc<Ledger>,
        fees: BankFees,
    ) -> BankTransfers {
        BankTransfers {
            db,
            bank,
            ledger,
            fees,
            fee_accounts: OnceCell::new(),
            remembered: Mutex::new(HashMap::new()),
        }
    }

    /// The fee table calls are booked from.
    pub fn fees(&self) -> BankFees {
        self.fees
    }

    /// The gateway transfers go through, for the calls that move no money (holder names).
    pub fn bank(&self) -> &Arc<dyn BankGateway> {
        &self.bank
    }

    /// Records a transfer for `(owner, reference)` without sending it, or returns the one
    /// recorded before (which may be in any state, including `failed` by [`Self::abandon`]).
    pub async fn prepare(
        &self,
        owner: &str,
        reference: &str,
        kind: TransferKind,
        amount: TransferAmount,
        account: &BankAccount,
    ) -> Result<BankTransfer, TransferError> {
        let now = self.ledger.now_micros();
        let id = format!("btr_{}", ulid::Ulid::new());
        sqlx::query(
            "INSERT INTO bank_transfers (id, kind, bank_tran_id, requested_at, amount, \
             account_masked, state, attempts, inquiries, owner, reference, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, 0, $7, $8, $4, $4) \
             ON CONFLICT (owner, reference) DO NOTHING",
        )
        .bind(&id)
        .bind(kind.as_str())
        .bind(self.bank.next_tran_id().as_str())
        .bind(now)
        .bind(amount.won())
        .bind(crate::domain::account_label(account))
        .bind(owner)
        .bind(reference)
        .execute(self.db.pool())
        .await?;
        self.find(owner, reference)
            .await?
            .ok_or_else(|| TransferError::NotFound(reference.to_owned()))
    }

    /// Makes sure no transfer is ever sent for `(owner, reference)`: records a `failed` one
    /// (`not_sent`) unless one exists, and returns whichever is recorded. A caller's resolver
    /// uses it for a step that was abandoned before it reached the bank.
    pub async fn abandon(
        &self,
        owner: &str,
        reference: &str,
        kind: TransferKind,
        amount: TransferAmount,
    ) -> Result<BankTransfer, TransferError> {
        let now = self.ledger.now_micros();
        sqlx::query(
            "INSERT INTO bank_transfers (id, kind, bank_tran_id, requested_at, amount, \
             account_masked, state, attempts, inquiries, failure_code, owner, reference, \
             created_at, updated_at, resolved_at) VALUES ($1, $2, $3, $4, $5, '', 'failed', 0, \
             0, $6, $7, $8, $4, $4, $4) ON CONFLICT (owner, reference) DO NOTHING",
        )
        .bind(format!("btr_{}", ulid::Ulid::new()))
        .bind(kind.as_str())
        .bind(self.bank.next_tran_id().as_str())
        .bind(now)
        .bind(amount.won())
        .bind(NOT_SENT)
        .bind(owner)
        .bind(reference)
        .execute(self.db.pool())
        .await?;
        self.find(owner, reference)
            .await?
            .ok_or_else(|| TransferError::NotFound(reference.to_owned()))
    }

    /// Sends a prepared transfer and waits a few seconds for an unknown outcome to resolve.
    /// A transfer that is no longer `pending` (sent before, or abandoned) is not sent again; it
    /// is resolved by inquiry instead.
    pub async fn send(
        &self,
        transfer: BankTransfer,
        order: TransferOrder,
    ) -> Result<BankTransfer, TransferError> {
        if transfer.kind != order.kind() {
            return Err(TransferError::Corrupt(format!(
                "transfer {} is a {}, not a {}",
                transfer.id,
                transfer.kind.as_str(),
                order.kind().as_str()
            )));
        }
        if transfer.state != TransferState::Pending || transfer.attempts > 0 {
            return self.settle(transfer).await;
        }
        let Some(transfer) = self.claim_first_send(&transfer).await? else {
            // Another run sent it meanwhile: resolve what it started.
            let sent = self.get(&transfer.id).await?;
            return self.settle(sent).await;
        };
        let request = build_request(&transfer, order)?;
        self.remember(&transfer.id, request.clone(), transfer.requested_at);
        let outcome = match &request {
            SentRequest::Collect(request) => self.bank.collect(request).await,
            SentRequest::Payout(request) => self.bank.payout(request).await,
        };
        let transfer = self.record(transfer, outcome).await?;
        self.settle(transfer).await
    }

    /// Counts the first send of a transfer nobody sent yet and stamps its request time now, in
    /// one conditional update: the time the bank is given, and the resend and never-received
    /// windows measured from it, start when the request leaves, not when it was prepared (a
    /// caller may prepare, stop, and send much later). `None` when another run sent it first.
    async fn claim_first_send(
        &self,
        transfer: &BankTransfer,
    ) -> Result<Option<BankTransfer>, TransferError> {
        let now = self.ledger.now_micros();
        let claimed = sqlx::query(
            "UPDATE bank_transfers SET attempts = 1, requested_at = $1, updated_at = $1 \
             WHERE id = $2 AND attempts = 0 AND state = 'pending'",
        )
        .bind(now)
        .bind(&transfer.id)
        .execute(self.db.pool())
        .await?;
        Ok((claimed.rows_affected() == 1).then(|| BankTransfer {
            attempts: 1,
            requested_at: now,
            updated_at: now,
            ..transfer.clone()
        }))
    }

    /// One resolution step for a transfer whose outcome is not final: an inquiry, and a resend
    /// with the same id when the bank does not know it and this process still has the request.
    pub async fn resolve(&self, transfer: BankTransfer) -> Result<BankTransfer, TransferError> {
        if transfer.state.is_final() {
            return Ok(transfer);
        }
        let query = TransferQuery {
            kind: transfer.kind,
            bank_tran_id: transfer.bank_tran_id.clone(),
            requested_at: to_datetime(transfer.requested_at),
            amount: transfer.amount,
        };
        let number = self.count(&transfer.id, "inquiries").await?;
        self.book_fee(
            &format!("bkf:{}:inquiry:{number}", transfer.id),
            self.fees.inquiry,
        )
        .await?;
        match self.bank.transfer_result(&query).await {
            Ok(InquiryOutcome::Succeeded { .. }) => self.succeeded(&transfer).await,
            Ok(InquiryOutcome::Failed { code, .. }) => self.failed(&transfer, code.as_str()).await,
            Ok(InquiryOutcome::NotFound) => self.not_found(transfer).await,
            Err(error) => {
                tracing::warn!(transfer = %transfer.id, code = error.code(), "transfer inquiry got no answer");
                Ok(transfer)
            }
        }
    }

    /// The transfer recorded for `(owner, reference)`.
    pub async fn find(
        &self,
        owner: &str,
        reference: &str,
    ) -> Result<Option<BankTransfer>, TransferError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM bank_transfers WHERE owner = $1 AND reference = $2"
        ))
        .bind(owner)
        .bind(reference)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| from_row(&row)).transpose()
    }

    /// The transfers requested in `[from, to)` (microseconds since the epoch), in id order
    /// after `after`, at most `limit` (1 to 1,000): what reconciliation holds against the
    /// bank's statement of a day.
    pub async fn requested_between(
        &self,
        from: Micros,
        to: Micros,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<BankTransfer>, TransferError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM bank_transfers WHERE requested_at >= $1 AND requested_at < $2 \
             AND id > $3 ORDER BY id LIMIT $4"
        ))
        .bind(from)
        .bind(to)
        .bind(after.unwrap_or_default())
        .bind(limit.clamp(1, 1_000))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// A transfer by id.
    pub async fn get(&self, id: &str) -> Result<BankTransfer, TransferError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM bank_transfers WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| from_row(&row))
            .transpose()?
            .ok_or_else(|| TransferError::NotFound(id.to_owned()))
    }

    /// Books a bank call's fee once: Dr `expense:bank_fees`, Cr `liability:bank:fees_payable`,
    /// under a transaction id that names the call, so that booking it again is a replay.
    /// A zero fee books nothing.
    pub async fn book_fee(&self, transaction_id: &str, won: i64) -> Result<(), TransferError> {
        if won <= 0 {
            return Ok(());
        }
        let (expense, payable) = self.fee_accounts().await?;
        let mut tx = NewTransaction::transfer(
            TransactionId::parse(transaction_id)?,
            expense,
            payable,
            Money::from_minor(won, Currency::KRW),
        );
        tx.description = Some("bank fee".into());
        self.ledger.post_transaction(tx).await?;
        Ok(())
    }

    /// Inquires with backoff while the outcome is unknown, for at most [`INQUIRY_DELAYS`].
    async fn settle(&self, mut transfer: BankTransfer) -> Result<BankTransfer, TransferError> {
        for delay in INQUIRY_DELAYS {
            if transfer.state.is_final() {
                break;
            }
            tokio::time::sleep(delay).await;
            transfer = self.resolve(transfer).await?;
        }
        Ok(transfer)
    }

    /// The bank has no record of the transfer: resend it if this process still can, give it
    /// up once nobody can, or leave it for a later pass.
    async fn not_found(&self, transfer: BankTransfer) -> Result<BankTransfer, TransferError> {
        let now = self.ledger.now_micros();
        if let Some(request) = self.remembered(&transfer.id, now) {
            let outcome = self.dispatch(&transfer, &request).await?.of_resend();
            return self.record(transfer, outcome).await;
        }
        let age = now.saturating_sub(transfer.requested_at);
        if age > micros(NOT_RECEIVED_AFTER) {
            return self.failed(&transfer, NOT_RECEIVED).await;
        }
        Ok(transfer)
    }

    /// Sends a request once (the first time or again with the same id), counting the attempt.
    async fn dispatch(
        &self,
        transfer: &BankTransfer,
        request: &SentRequest,
    ) -> Result<TransferOutcome, TransferError> {
        self.count(&transfer.id, "attempts").await?;
        Ok(match request {
            SentRequest::Collect(request) => self.bank.collect(request).await,
            SentRequest::Payout(request) => self.bank.payout(request).await,
        })
    }

    /// Stores what a send answered.
    async fn record(
        &self,
        transfer: BankTransfer,
        outcome: TransferOutcome,
    ) -> Result<BankTransfer, TransferError> {
        match outcome {
            TransferOutcome::Succeeded { .. } => self.succeeded(&transfer).await,
            TransferOutcome::Failed { code, .. } => self.failed(&transfer, code.as_str()).await,
            TransferOutcome::Unknown { reason } => {
                tracing::warn!(transfer = %transfer.id, reason, "bank transfer outcome unknown");
                self.transition(&transfer.id, TransferState::Unknown, None)
                    .await
            }
        }
    }

    /// Books the fee, then ends the transfer `succeeded`. The fee comes first: if booking it
    /// fails, the transfer stays open and the next resolution books it (once, by its id).
    async fn succeeded(&self, transfer: &BankTransfer) -> Result<BankTransfer, TransferError> {
        let fee = match transfer.kind {
            TransferKind::Collect => self.fees.collect,
            TransferKind::Payout => self.fees.payout,
        };
        self.book_fee(&format!("bkf:{}", transfer.id), fee).await?;
        self.forget(&transfer.id);
        self.transition(&transfer.id, TransferState::Succeeded, None)
            .await
    }

    async fn failed(
        &self,
        transfer: &BankTransfer,
        code: &str,
    ) -> Result<BankTransfer, TransferError> {
        self.forget(&transfer.id);
        self.transition(&transfer.id, TransferState::Failed, Some(code))
            .await
    }

    /// Moves a transfer that is not final yet to `state`; a final one keeps its state (the
    /// first resolution wins, and every resolution of one id reports the same outcome).
    async fn transition(
        &self,
        id: &str,
        state: TransferState,
        failure_code: Option<&str>,
    ) -> Result<BankTransfer, TransferError> {
        let now = self.ledger.now_micros();
        let resolved_at = state.is_final().then_some(now);
        sqlx::query(
            "UPDATE bank_transfers SET state = $1, failure_code = $2, updated_at = $3, \
             resolved_at = $4 WHERE id = $5 AND state IN ('pending', 'unknown')",
        )
        .bind(state.as_str())
        .bind(failure_code)
        .bind(now)
        .bind(resolved_at)
        .bind(id)
        .execute(self.db.pool())
        .await?;
        self.get(id).await
    }

    /// Adds one to a counter column and returns its new value.
    async fn count(&self, id: &str, column: &'static str) -> Result<i64, TransferError> {
        let row = sqlx::query(&format!(
            "UPDATE bank_transfers SET {column} = {column} + 1 WHERE id = $1 RETURNING {column}"
        ))
        .bind(id)
        .fetch_one(self.db.pool())
        .await?;
        Ok(row.try_get(0)?)
    }

    fn remember(&self, id: &str, request: SentRequest, requested_at: Micros) {
        let mut remembered = self.remembered.lock().expect("not poisoned");
        let horizon = requested_at.saturating_sub(micros(RESEND_WINDOW));
        remembered.retain(|_, (_, at)| *at > horizon);
        if remembered.len() >= REMEMBERED_REQUESTS_MAX {
            if let Some(oldest) = remembered
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(id, _)| id.clone())
            {
                remembered.remove(&oldest);
            }
        }
        remembered.insert(id.to_owned(), (request, requested_at));
    }

    /// The request to resend, while the resend window lasts.
    fn remembered(&self, id: &str, now: Micros) -> Option<SentRequest> {
        let remembered = self.remembered.lock().expect("not poisoned");
        remembered
            .get(id)
            .filter(|(_, at)| now.saturating_sub(*at) <= micros(RESEND_WINDOW))
            .map(|(request, _)| request.clone())
    }

    fn forget(&self, id: &str) {
        self.remembered.lock().expect("not poisoned").remove(id);
    }

    async fn fee_accounts(&self) -> Result<(AccountId, AccountId), TransferError> {
        let accounts = self
            .fee_accounts
            .get_or_try_init(|| async {
                let expense = self.open(BANK_FEES_EXPENSE, AccountKind::Expense).await?;
                let payable = self.open(BANK_FEES_PAYABLE, AccountKind::Liability).await?;
                Ok::<_, TransferError>((expense, payable))
            })
            .await?;
        Ok(accounts.clone())
    }

    async fn open(&self, code: &str, kind: AccountKind) -> Result<AccountId, TransferError> {
        let account = self
            .ledger
            .create_account(NewAccount {
                code: AccountCode::parse(code)?,
                kind,
                currency: Currency::KRW,
                flags: AccountFlags::empty(),
                metadata: None,
            })
            .await?;
        Ok(account.id)
    }
}

fn build_request(
    transfer: &BankTransfer,
    order: TransferOrder,
) -> Result<SentRequest, TransferError> {
    let requested_at = to_datetime(transfer.requested_at);
    if crate::domain::account_label(order.account()) != transfer.account_masked {
        return Err(TransferError::Corrupt(format!(
            "transfer {} was prepared for another account",
            transfer.id
        )));
    }
    Ok(match order {
        TransferOrder::Collect {
            from,
            payer_number,
            memo,
            master_memo,
        } => SentRequest::Collect(CollectRequest {
            bank_tran_id: transfer.bank_tran_id.clone(),
            requested_at,
            from,
            payer_number,
            amount: transfer.amount,
            memo,
            master_memo,
        }),
        TransferOrder::Payout {
            to,
            memo,
            master_memo,
        } => SentRequest::Payout(PayoutRequest {
            bank_tran_id: transfer.bank_tran_id.clone(),
            requested_at,
            to,
            amount: transfer.amount,
            memo,
            master_memo,
        }),
    })
}

fn micros(duration: Duration) -> Micros {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// An instant of the ledger's clock as a date-time for the bank.
pub(crate) fn to_datetime(at: Micros) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<BankTransfer, TransferError> {
    let kind: String = row.try_get("kind")?;
    let kind = match kind.as_str() {
        "collect" => TransferKind::Collect,
        "payout" => TransferKind::Payout,
        other => return Err(TransferError::Corrupt(format!("kind {other:?}"))),
    };
    let tran_id: String = row.try_get("bank_tran_id")?;
    let amount: i64 = row.try_get("amount")?;
    let state: String = row.try_get("state")?;
    Ok(BankTransfer {
        id: row.try_get("id")?,
        kind,
        bank_tran_id: BankTranId::parse(&tran_id)
            .map_err(|_| TransferError::Corrupt("bank_tran_id".into()))?,
        requested_at: row.try_get("requested_at")?,
        amount: TransferAmount::new(amount).map_err(|_| TransferError::Corrupt("amount".into()))?,
        account_masked: row.try_get("account_masked")?,
        state: TransferState::from_db(&state)?,
        attempts: row.try_get("attempts")?,
        inquiries: row.try_get("inquiries")?,
        failure_code: row.try_get("failure_code")?,
        owner: row.try_get("owner")?,
        reference: row.try_get("reference")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        resolved_at: row.try_get("resolved_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_succeeded_and_failed_are_final() {
        assert!(TransferState::Succeeded.is_final());
        assert!(TransferState::Failed.is_final());
        assert!(!TransferState::Pending.is_final());
        assert!(!TransferState::Unknown.is_final());
        for state in [
            TransferState::Pending,
            TransferState::Succeeded,
            TransferState::Failed,
            TransferState::Unknown,
        ] {
            assert_eq!(TransferState::from_db(state.as_str()).unwrap(), state);
        }
    }

    #[test]
    fn nobody_resends_when_a_transfer_is_given_up() {
        assert!(NOT_RECEIVED_AFTER >= RESEND_WINDOW * 2);
        let total: Duration = INQUIRY_DELAYS.iter().sum();
        assert!(
            total < Duration::from_secs(5),
            "a request waits a few seconds at most"
        );
    }

    #[test]
    fn ledger_instants_convert_to_bank_times() {
        let at = to_datetime(1_795_305_600_000_000);
        assert_eq!(at.unix_timestamp(), 1_795_305_600);
    }
}
