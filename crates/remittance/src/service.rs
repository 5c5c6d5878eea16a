//! The remittance service: requests, the five steps (each run by a job), the retry batch, the
//! monitor and the operators' reads and retries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use banking::{Memo, TransferAmount, TransferKind};
use jobs::{Jobs, NewJob};
use ledger::{
    AccountFlags, AccountId, AccountKind, HoldId, Ledger, LedgerError, Micros, NewHold,
    NewTransaction, Page, PostHold, TransactionId, PAGE_SIZE_MAX,
};
use merchants::{MerchantError, MerchantId, MerchantStatus, Merchants};
use money::{Currency, Money};
use sha2::{Digest, Sha256};
use storage::Db;
use tokio::sync::OnceCell;
use wallet::bank_transfer::{BankTransfer, BankTransfers, TransferOrder, TransferState};

use crate::domain::{
    Failure, NewRemittance, Record, Remittance, RemittanceConfig, RemittanceId, RemittanceState,
    Step, MEMO_CHARS_MAX,
};
use crate::error::RemittanceError;
use crate::store::{self, FailedAttempt};

/// The ledger account that holds remittances' money between deposit and payout (must not go
/// negative: nothing is paid out that was not deposited).
pub const HELD_ACCOUNT: &str = "liability:remittance:held";
/// The platform's bank account in the ledger, shared with the wallet and settlement.
pub const MASTER_ACCOUNT: &str = wallet::MASTER_ACCOUNT;
/// The owner remittances' bank transfers are recorded under.
pub const TRANSFER_OWNER: &str = "remittance";
/// Remittances move won only: bank transfers are in won.
pub const REMITTANCE_CURRENCY: Currency = Currency::KRW;
/// The most failure records one retry batch pass re-queues, and the most alerts one monitor
/// pass raises.
pub const BATCH_MAX: i64 = 500;
/// How long an alert's POST may take.
const ALERT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where an injected fault strikes a step: before the step does anything, or after its effect
/// (the ledger write or the bank's answer) and before the remittance moves on, as a process
/// that dies at that instant would.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultAt {
    BeforeEffect,
    AfterEffect,
}

/// Failure points for tests and drills (seed 002's failure analysis): each makes the next
/// `count` attempts of a step fail at its point, exactly as a database or process failure
/// there would. Empty unless someone arms one; nothing in production arms them.
#[derive(Debug, Default)]
pub struct StepFaults {
    armed: Mutex<HashMap<(Step, FaultAt), u32>>,
}

impl StepFaults {
    /// Makes the next `count` attempts of `step` fail at `at`.
    pub fn fail_next(&self, step: Step, at: FaultAt, count: u32) {
        let mut armed = self.armed.lock().unwrap_or_else(|p| p.into_inner());
        armed.insert((step, at), count);
    }

    /// Whether this attempt fails at `at` (using one armed failure up).
    fn strike(&self, step: Step, at: FaultAt) -> bool {
        let mut armed = self.armed.lock().unwrap_or_else(|p| p.into_inner());
        match armed.get_mut(&(step, at)) {
            Some(count) if *count > 0 => {
                *count -= 1;
                true
            }
            _ => false,
        }
    }
}

/// Why a step's attempt did not move the remittance on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    /// A stable code, kept on the failure record.
    pub code: String,
    pub message: String,
    /// No attempt can succeed (a refusal on the way back): the job is a dead letter at once.
    pub fatal: bool,
}

impl StepFailure {
    fn retry(code: &str, message: impl Into<String>) -> StepFailure {
        StepFailure {
            code: code.to_owned(),
            message: message.into(),
            fatal: false,
        }
    }
}

impl From<RemittanceError> for StepFailure {
    fn from(error: RemittanceError) -> StepFailure {
        StepFailure::retry(error.code(), error.to_string())
    }
}

impl From<LedgerError> for StepFailure {
    fn from(error: LedgerError) -> StepFailure {
        StepFailure::retry(error.code(), error.to_string())
    }
}

impl From<MerchantError> for StepFailure {
    fn from(error: MerchantError) -> StepFailure {
        StepFailure::retry(error.code(), error.to_string())
    }
}

impl From<wallet::bank_transfer::TransferError> for StepFailure {
    fn from(error: wallet::bank_transfer::TransferError) -> StepFailure {
        StepFailure::retry("bank_transfer_unrecorded", error.to_string())
    }
}

/// Where a step took the remittance.
struct Moved {
    to: RemittanceState,
    reference: Option<String>,
    failure_code: Option<String>,
}

/// A remittance with what it went through.
#[derive(Debug, Clone)]
pub struct RemittanceDetail {
    pub remittance: Remittance,
    pub records: Vec<Record>,
    pub failures: Vec<Failure>,
}

/// What one monitor pass saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonitorPass {
    /// Unfinished remittances older than the overdue age.
    pub overdue: i64,
    /// Alerts raised in this pass (each remittance is alerted on once).
    pub alerted: usize,
}

/// The remittance service. Cheap to clone: every clone shares one set of handles.
#[derive(Clone)]
pub struct Remittances {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    ledger: Arc<Ledger>,
    merchants: Merchants,
    /// The process's one bank transfer executor, so remittances share its request ids, its
    /// memory of requests to resend and its fee booking.
    transfers: Arc<BankTransfers>,
    jobs: Jobs,
    config: RemittanceConfig,
    faults: StepFaults,
    http: reqwest::Client,
    accounts: OnceCell<(AccountId, AccountId)>,
}

impl std::fmt::Debug for Remittances {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remittances")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Remittances {
    pub fn new(
        db: Db,
        ledger: Arc<Ledger>,
        merchants: Merchants,
        transfers: Arc<BankTransfers>,
        config: RemittanceConfig,
    ) -> Remittances {
        let jobs = Jobs::new(db.clone(), ledger.clock());
        let http = reqwest::Client::builder()
            .timeout(ALERT_TIMEOUT)
            .build()
            .unwrap_or_default();
        Remittances {
            inner: Arc::new(Inner {
                db,
                ledger,
                merchants,
                transfers,
                jobs,
                config: config.bounded(),
                faults: StepFaults::default(),
                http,
                accounts: OnceCell::new(),
            }),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &RemittanceConfig {
        &self.inner.config
    }

    /// The failure points, for tests and drills.
    pub fn faults(&self) -> &StepFaults {
        &self.inner.faults
    }

    /// Records a remittance and, in the same transaction, the job of its first step (the
    /// outbox): the request exists if and only if its collect will run.
    ///
    /// Checked before anything is stored: the amount, the memo, two different active
    /// businesses, and the sender's debit mandate. The same Idempotency-Key with the same
    /// request answers the remittance it made; with another request, `idempotency_key_reused`.
    pub async fn request(&self, new: NewRemittance) -> Result<Remittance, RemittanceError> {
        self.check(&new).await?;
        let digest = request_digest(&new);
        if let Some(key) = new.request_key.as_deref() {
            if let Some(found) = self.replay(&new.request_scope, key, &digest).await? {
                return Ok(found);
            }
        }
        let now = self.now();
        let remittance = Remittance {
            id: RemittanceId::generate(),
            sender_merchant_id: new.sender_merchant_id.clone(),
            recipient_merchant_id: new.recipient_merchant_id.clone(),
            amount: new.amount,
            memo: new.memo.clone(),
            state: RemittanceState::Requested,
            failure_code: None,
            created_at: now,
            updated_at: now,
            finished_at: None,
            alerted_at: None,
        };
        let mut tx = self.db().begin_write().await?;
        let inserted = store::insert(
            &mut tx,
            &remittance,
            &new.request_scope,
            new.request_key.as_deref(),
            &digest,
        )
        .await?;
        if !inserted {
            // A concurrent request with the same key won the insert.
            tx.rollback().await?;
            let key = new.request_key.as_deref().unwrap_or_default();
            return self
                .replay(&new.request_scope, key, &digest)
                .await?
                .ok_or_else(|| RemittanceError::Internal("a request key vanished".into()));
        }
        store::insert_record(&mut tx, &remittance.id, remittance.state, None, now).await?;
        self.enqueue(&mut tx, &remittance.id, Step::Collect, now)
            .await?;
        tx.commit().await?;
        metrics::counter!("mypay_remittances_requested_total").increment(1);
        tracing::info!(remittance = %remittance.id, amount = remittance.amount, "remittance requested");
        Ok(remittance)
    }

    /// A remittance with its records and failures.
    pub async fn get(&self, id: &str) -> Result<RemittanceDetail, RemittanceError> {
        let remittance = self.remittance(id).await?;
        Ok(RemittanceDetail {
            records: store::records(self.db(), id).await?,
            failures: store::failures(self.db(), id).await?,
            remittance,
        })
    }

    /// Remittances oldest first, after the cursor (the last id of the previous page), in
    /// `state` and of `merchant` (sender or recipient) when given.
    pub async fn list(
        &self,
        state: Option<RemittanceState>,
        merchant: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Page<Remittance>, RemittanceError> {
        if after.is_some_and(|after| RemittanceId::parse(after).is_none()) {
            return Err(RemittanceError::CursorInvalid);
        }
        let limit = limit.clamp(1, PAGE_SIZE_MAX);
        let mut items = store::list(
            self.db(),
            state,
            merchant,
            after.unwrap_or_default(),
            limit + 1,
        )
        .await?;
        let next = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|r| r.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// An operator's retry: puts the dead job of the remittance's current step back in the
    /// queue, due now, with a fresh set of attempts.
    pub async fn retry(&self, id: &str) -> Result<RemittanceDetail, RemittanceError> {
        let remittance = self.remittance(id).await?;
        let not_retryable = || RemittanceError::NotRetryable {
            id: remittance.id.to_string(),
            state: remittance.state.as_str(),
        };
        let step = remittance.state.next_step().ok_or_else(not_retryable)?;
        let failure = store::failures(self.db(), id)
            .await?
            .into_iter()
            .find(|failure| failure.step == step && failure.resolved_at.is_none())
            .ok_or_else(not_retryable)?;
        match self.inner.jobs.retry(&failure.job_id).await {
            Ok(_) => {}
            Err(jobs::JobError::NotDead { .. }) => return Err(not_retryable()),
            Err(error) => return Err(error.into()),
        }
        tracing::info!(remittance = %remittance.id, step = step.as_str(), "remittance step re-queued by an operator");
        self.get(id).await
    }

    /// Runs one step of a remittance (the handler of its job). A remittance no longer in the
    /// step's starting state was moved on by an earlier run: nothing happens. Every failed
    /// attempt is counted on the step's failure record before it is returned.
    pub async fn run_step(
        &self,
        step: Step,
        id: &RemittanceId,
        job_id: &str,
    ) -> Result<(), StepFailure> {
        let result = self.attempt(step, id).await;
        if let Err(failure) = &result {
            let now = self.now();
            let recorded = store::record_failure(
                self.db(),
                &FailedAttempt {
                    remittance_id: id.as_str(),
                    step,
                    job_id,
                    code: &failure.code,
                    message: &failure.message,
                    now,
                },
            )
            .await;
            if let Err(error) = recorded {
                tracing::error!(%error, remittance = %id, "a remittance failure could not be recorded");
            }
            metrics::counter!("mypay_remittance_step_failures_total", "step" => step.as_str())
                .increment(1);
            tracing::warn!(remittance = %id, step = step.as_str(), code = failure.code, message = failure.message, "a remittance step failed");
        }
        result
    }

    /// The retry batch over failure records (seed 002): re-queues each step whose job ran out
    /// of attempts, at most `batch_retries_max` times per step; after that it waits for an
    /// operator. Returns how many steps were re-queued.
    pub async fn retry_failures(&self) -> Result<usize, RemittanceError> {
        let max = self.inner.config.batch_retries_max;
        let due = store::retryable_failures(self.db(), max, BATCH_MAX).await?;
        let mut requeued = 0;
        for failure in due {
            match self.inner.jobs.retry(&failure.job_id).await {
                Ok(_) => {
                    store::count_batch_retry(self.db(), &failure.remittance_id, failure.step)
                        .await?;
                    requeued += 1;
                    tracing::info!(
                        remittance = failure.remittance_id,
                        step = failure.step.as_str(),
                        retry = failure.batch_retries + 1,
                        "remittance step re-queued by the retry batch"
                    );
                }
                // An operator (or another replica's batch) re-queued it first.
                Err(jobs::JobError::NotDead { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(requeued)
    }

    /// The monitor (seed 002): alerts once on every remittance not finished `overdue_after`
    /// after it was requested — an error log line, the `mypay_remittance_alerts_total` counter
    /// and, when configured, a JSON POST to the alert URL (retried by the next pass until it
    /// is accepted) — and sets the `mypay_remittances_overdue` gauge.
    pub async fn monitor(&self) -> Result<MonitorPass, RemittanceError> {
        let now = self.now();
        let before = now.saturating_sub(micros(self.inner.config.overdue_after));
        let overdue = store::count_overdue(self.db(), before).await?;
        metrics::gauge!("mypay_remittances_overdue").set(overdue as f64);
        let mut pass = MonitorPass {
            overdue,
            alerted: 0,
        };
        for remittance in store::overdue_unalerted(self.db(), before, BATCH_MAX).await? {
            let age_s = now.saturating_sub(remittance.created_at) / 1_000_000;
            tracing::error!(remittance = %remittance.id, state = remittance.state.as_str(), age_s, "a remittance is not finished in time");
            if let Some(url) = &self.inner.config.alert_url {
                if let Err(error) = self.post_alert(url, &remittance, age_s).await {
                    tracing::warn!(remittance = %remittance.id, %error, "the remittance alert could not be posted; the next pass tries again");
                    continue;
                }
            }
            store::mark_alerted(self.db(), &remittance.id, now).await?;
            metrics::counter!("mypay_remittance_alerts_total").increment(1);
            pass.alerted += 1;
        }
        Ok(pass)
    }

    fn db(&self) -> &Db {
        &self.inner.db
    }

    fn now(&self) -> Micros {
        self.inner.ledger.now_micros()
    }

    async fn remittance(&self, id: &str) -> Result<Remittance, RemittanceError> {
        let not_found = || RemittanceError::NotFound(id.chars().take(64).collect());
        RemittanceId::parse(id).ok_or_else(not_found)?;
        store::by_id(self.db(), id).await?.ok_or_else(not_found)
    }

    async fn check(&self, new: &NewRemittance) -> Result<(), RemittanceError> {
        let max = self.inner.config.amount_max;
        if !(1..=max).contains(&new.amount) {
            return Err(RemittanceError::AmountInvalid { max });
        }
        if let Some(memo) = &new.memo {
            if Memo::parse(memo).is_err() || memo.chars().count() > MEMO_CHARS_MAX {
                return Err(RemittanceError::MemoInvalid {
                    max: MEMO_CHARS_MAX,
                });
            }
        }
        if new.sender_merchant_id == new.recipient_merchant_id {
            return Err(RemittanceError::SameParty);
        }
        let sender = merchant_id(&new.sender_merchant_id)?;
        let recipient = merchant_id(&new.recipient_merchant_id)?;
        for id in [&sender, &recipient] {
            let merchant = self.inner.merchants.get(id).await?;
            if merchant.status != MerchantStatus::Active {
                return Err(RemittanceError::MerchantSuspended(id.to_string()));
            }
        }
        self.inner.merchants.debit_source(&sender).await?;
        Ok(())
    }

    async fn replay(
        &self,
        scope: &str,
        key: &str,
        digest: &str,
    ) -> Result<Option<Remittance>, RemittanceError> {
        match store::by_request(self.db(), scope, key).await? {
            Some((remittance, stored)) if stored == digest => Ok(Some(remittance)),
            Some(_) => Err(RemittanceError::RequestKeyReused),
            None => Ok(None),
        }
    }

    async fn enqueue(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: &RemittanceId,
        step: Step,
        now: Micros,
    ) -> Result<(), RemittanceError> {
        jobs::enqueue(
            tx,
            &NewJob {
                kind: step.job_kind().to_owned(),
                payload: serde_json::json!({ "remittance": id.as_str() }),
                unique_key: Some(id.to_string()),
                run_at: now,
                max_attempts: self.inner.config.step_attempts,
            },
            now,
        )
        .await?;
        Ok(())
    }

    /// One attempt at a step: its effect, then (in one database transaction) the move to the
    /// next state, its record, the failure record resolved and the next step's job.
    async fn attempt(&self, step: Step, id: &RemittanceId) -> Result<(), StepFailure> {
        let remittance = self.remittance(id.as_str()).await?;
        if remittance.state != step.from_state() {
            return Ok(());
        }
        self.injected(step, FaultAt::BeforeEffect)?;
        let moved = match step {
            Step::Collect => self.collect(&remittance).await?,
            Step::Deposit => self.deposit(&remittance).await?,
            Step::Withdraw => self.withdraw(&remittance).await?,
            Step::Payout => self.payout(&remittance).await?,
            Step::Return => self.pay_back(&remittance).await?,
        };
        self.injected(step, FaultAt::AfterEffect)?;
        self.move_on(&remittance, step, moved).await
    }

    fn injected(&self, step: Step, at: FaultAt) -> Result<(), StepFailure> {
        if self.inner.faults.strike(step, at) {
            let point = match at {
                FaultAt::BeforeEffect => "before",
                FaultAt::AfterEffect => "after",
            };
            return Err(StepFailure::retry(
                "fault_injected",
                format!(
                    "a fault was injected {point} the {} step's effect",
                    step.as_str()
                ),
            ));
        }
        Ok(())
    }

    async fn move_on(
        &self,
        remittance: &Remittance,
        step: Step,
        moved: Moved,
    ) -> Result<(), StepFailure> {
        let now = self.now();
        let storage = |error: sqlx::Error| StepFailure::from(RemittanceError::from(error));
        let mut tx = self.db().begin_write().await.map_err(storage)?;
        let from = step.from_state();
        let id = &remittance.id;
        let changed = store::transition(
            &mut tx,
            id,
            from,
            moved.to,
            moved.failure_code.as_deref(),
            now,
        )
        .await
        .map_err(storage)?;
        if !changed {
            // Another run moved it on meanwhile; its transaction did all of this.
            tx.rollback().await.map_err(storage)?;
            return Ok(());
        }
        store::insert_record(&mut tx, id, moved.to, moved.reference.as_deref(), now)
            .await
            .map_err(storage)?;
        store::resolve_failure(&mut tx, id, step, now)
            .await
            .map_err(storage)?;
        if let Some(next) = moved.to.next_step() {
            self.enqueue(&mut tx, id, next, now).await?;
        }
        tx.commit().await.map_err(storage)?;
        if moved.to.is_final() {
            metrics::counter!("mypay_remittances_finished_total", "state" => moved.to.as_str())
                .increment(1);
        }
        tracing::info!(remittance = %id, from = from.as_str(), to = moved.to.as_str(), "remittance moved on");
        Ok(())
    }

    /// Step 1: A's money into the master account, a collect under A's debit mandate. A refusal
    /// ends the remittance `failed` (nothing moved); an unknown outcome is tried again (the
    /// same transfer, asked about or resent under the same id).
    async fn collect(&self, remittance: &Remittance) -> Result<Moved, StepFailure> {
        let reference = transfer_reference(&remittance.id, Step::Collect);
        let transfer = match self.sent(&reference).await? {
            Some(transfer) => transfer,
            None => {
                let sender = merchant_id(&remittance.sender_merchant_id)?;
                let source = match self.inner.merchants.debit_source(&sender).await {
                    Ok(source) => source,
                    // The mandate was revoked before anything was sent: nothing can move.
                    Err(MerchantError::MandateMissing) => {
                        return Ok(Moved {
                            to: RemittanceState::Failed,
                            reference: None,
                            failure_code: Some("debit_mandate_missing".into()),
                        })
                    }
                    Err(error) => return Err(error.into()),
                };
                let order = TransferOrder::Collect {
                    from: source.account.clone(),
                    payer_number: source.payer_number,
                    memo: memo(&format!("마이페이 송금 {}", tail(&remittance.id)))?,
                    master_memo: memo(&format!("rem in {}", tail(&remittance.id)))?,
                };
                self.send(&reference, remittance, &source.account, order)
                    .await?
            }
        };
        Ok(match transfer.state {
            TransferState::Succeeded => Moved {
                to: RemittanceState::Collected,
                reference: Some(transfer.id),
                failure_code: None,
            },
            TransferState::Failed => Moved {
                to: RemittanceState::Failed,
                reference: Some(transfer.id),
                failure_code: transfer.failure_code.or(Some("bank_refused".into())),
            },
            TransferState::Pending | TransferState::Unknown => return Err(unknown(&transfer)),
        })
    }

    /// Step 2: the collected money into the platform ledger: Dr master, Cr remittances held,
    /// under `{id}.deposit` (a replay when run again).
    async fn deposit(&self, remittance: &Remittance) -> Result<Moved, StepFailure> {
        let (master, held) = self.accounts().await?;
        let id = transaction_id(&remittance.id, "deposit")?;
        let mut tx = NewTransaction::transfer(id.clone(), master, held, won(remittance.amount));
        tx.description = Some("business remittance deposit".into());
        tx.metadata = Some(metadata(remittance));
        self.inner.ledger.post_transaction(tx).await?;
        Ok(Moved {
            to: RemittanceState::Deposited,
            reference: Some(id.as_str().to_owned()),
            failure_code: None,
        })
    }

    /// Step 3: the money out of the remittances' account towards the master account, held
    /// while B's payout is in flight (`{id}.payout`: Dr held, Cr master).
    async fn withdraw(&self, remittance: &Remittance) -> Result<Moved, StepFailure> {
        let hold = hold_id(&remittance.id, "payout")?;
        self.reserve(remittance, hold.clone()).await?;
        Ok(Moved {
            to: RemittanceState::Withdrawn,
            reference: Some(hold.as_str().to_owned()),
            failure_code: None,
        })
    }

    /// Step 4: B paid at the bank, once: the transfer is keyed by the remittance, so a re-run
    /// only asks about the one sent. Success posts the hold (`{id}.paid`); a refusal voids it
    /// and sends A's money back; an unknown outcome is tried again.
    async fn payout(&self, remittance: &Remittance) -> Result<Moved, StepFailure> {
        let reference = transfer_reference(&remittance.id, Step::Payout);
        let transfer = match self.sent(&reference).await? {
            Some(transfer) => transfer,
            None => {
                let recipient = merchant_id(&remittance.recipient_merchant_id)?;
                let (account, _holder) = self.inner.merchants.settlement_target(&recipient).await?;
                let memo_text = remittance
                    .memo
                    .clone()
                    .unwrap_or_else(|| format!("마이페이 송금 {}", tail(&remittance.id)));
                let order = TransferOrder::Payout {
                    to: account.clone(),
                    memo: memo(&memo_text)?,
                    master_memo: memo(&format!("rem out {}", tail(&remittance.id)))?,
                };
                self.send(&reference, remittance, &account, order).await?
            }
        };
        let hold = hold_id(&remittance.id, "payout")?;
        match transfer.state {
            TransferState::Succeeded => {
                self.post(hold, transaction_id(&remittance.id, "paid")?)
                    .await?;
                Ok(Moved {
                    to: RemittanceState::Completed,
                    reference: Some(transfer.id),
                    failure_code: None,
                })
            }
            TransferState::Failed => {
                self.void(hold).await?;
                Ok(Moved {
                    to: RemittanceState::Returning,
                    reference: Some(transfer.id),
                    failure_code: transfer.failure_code.or(Some("bank_refused".into())),
                })
            }
            TransferState::Pending | TransferState::Unknown => Err(unknown(&transfer)),
        }
    }

    /// The way back: A's money paid back to the account it came from (held as `{id}.return`,
    /// posted as `{id}.returned`). A refusal here needs a person: the money stays in the
    /// remittances' account and the job is a dead letter at once.
    async fn pay_back(&self, remittance: &Remittance) -> Result<Moved, StepFailure> {
        let hold = hold_id(&remittance.id, "return")?;
        self.reserve(remittance, hold.clone()).await?;
        let reference = transfer_reference(&remittance.id, Step::Return);
        let transfer = match self.sent(&reference).await? {
            Some(transfer) => transfer,
            None => {
                let sender = merchant_id(&remittance.sender_merchant_id)?;
                let account = self.inner.merchants.mandate_account(&sender).await?;
                let order = TransferOrder::Payout {
                    to: account.clone(),
                    memo: memo(&format!("마이페이 송금반환 {}", tail(&remittance.id)))?,
                    master_memo: memo(&format!("rem back {}", tail(&remittance.id)))?,
                };
                self.send(&reference, remittance, &account, order).await?
            }
        };
        match transfer.state {
            TransferState::Succeeded => {
                self.post(hold, transaction_id(&remittance.id, "returned")?)
                    .await?;
                Ok(Moved {
                    to: RemittanceState::Returned,
                    reference: Some(transfer.id),
                    failure_code: None,
                })
            }
            TransferState::Failed => {
                self.void(hold).await?;
                Err(StepFailure {
                    code: transfer
                        .failure_code
                        .unwrap_or_else(|| "bank_refused".into()),
                    message: format!(
                        "the bank refused to pay the remittance back ({}); the money is held \
                         in {HELD_ACCOUNT} for an operator",
                        transfer.id
                    ),
                    fatal: true,
                })
            }
            TransferState::Pending | TransferState::Unknown => Err(unknown(&transfer)),
        }
    }

    /// The transfer recorded under `reference` if it was sent before, taken as far as a few
    /// inquiries go now; `None` when nothing was sent yet.
    async fn sent(&self, reference: &str) -> Result<Option<BankTransfer>, StepFailure> {
        let transfers = &self.inner.transfers;
        let Some(mut transfer) = transfers.find(TRANSFER_OWNER, reference).await? else {
            return Ok(None);
        };
        if transfer.state == TransferState::Pending && transfer.attempts == 0 {
            return Ok(None);
        }
        for delay in wallet::bank_transfer::INQUIRY_DELAYS {
            if transfer.state.is_final() {
                break;
            }
            tokio::time::sleep(delay).await;
            transfer = transfers.resolve(transfer).await?;
        }
        Ok(Some(transfer))
    }

    /// Records (once) and sends the transfer of a step.
    async fn send(
        &self,
        reference: &str,
        remittance: &Remittance,
        account: &banking::BankAccount,
        order: TransferOrder,
    ) -> Result<BankTransfer, StepFailure> {
        let amount = TransferAmount::new(remittance.amount).map_err(|error| {
            StepFailure::retry("amount_invalid", format!("{}: {error}", remittance.id))
        })?;
        let transfers = &self.inner.transfers;
        let kind: TransferKind = order.kind();
        let transfer = transfers
            .prepare(TRANSFER_OWNER, reference, kind, amount, account)
            .await?;
        Ok(transfers.send(transfer, order).await?)
    }

    async fn reserve(&self, remittance: &Remittance, hold: HoldId) -> Result<(), StepFailure> {
        let (master, held) = self.accounts().await?;
        self.inner
            .ledger
            .reserve_hold(NewHold {
                id: hold,
                debit_account_id: held,
                credit_account_id: master,
                amount: won(remittance.amount),
                expires_at: None,
                metadata: Some(metadata(remittance)),
                balance_limits: Vec::new(),
            })
            .await?;
        Ok(())
    }

    async fn post(&self, hold: HoldId, transaction: TransactionId) -> Result<(), StepFailure> {
        self.inner
            .ledger
            .post_hold(PostHold {
                hold_id: hold,
                amount: None,
                transaction_id: Some(transaction),
            })
            .await?;
        Ok(())
    }

    async fn void(&self, hold: HoldId) -> Result<(), StepFailure> {
        match self.inner.ledger.void_hold(hold).await {
            Ok(_) | Err(LedgerError::HoldNotFound(_)) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// The master account and the remittances' account, opened on first use.
    async fn accounts(&self) -> Result<(AccountId, AccountId), RemittanceError> {
        let accounts = self
            .inner
            .accounts
            .get_or_try_init(|| async {
                let master = self
                    .open(MASTER_ACCOUNT, AccountKind::Asset, AccountFlags::empty())
                    .await?;
                let held = self
                    .open(
                        HELD_ACCOUNT,
                        AccountKind::Liability,
                        AccountFlags::MUST_NOT_GO_NEGATIVE,
                    )
                    .await?;
                Ok::<_, RemittanceError>((master, held))
            })
            .await?;
        Ok(accounts.clone())
    }

    async fn open(
        &self,
        code: &str,
        kind: AccountKind,
        flags: AccountFlags,
    ) -> Result<AccountId, RemittanceError> {
        Ok(self
            .inner
            .ledger
            .open_account(code, kind, REMITTANCE_CURRENCY, flags)
            .await?)
    }

    async fn post_alert(
        &self,
        url: &reqwest::Url,
        remittance: &Remittance,
        age_s: i64,
    ) -> Result<(), reqwest::Error> {
        let body = serde_json::json!({
            "alert": "remittance_overdue",
            "remittance_id": remittance.id.as_str(),
            "state": remittance.state.as_str(),
            "sender_merchant_id": remittance.sender_merchant_id,
            "recipient_merchant_id": remittance.recipient_merchant_id,
            "amount": remittance.amount.to_string(),
            "currency": REMITTANCE_CURRENCY.code(),
            "age_s": age_s,
        });
        self.inner
            .http
            .post(url.clone())
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }
}

/// A digest of what a request asks for, to tell a retry from another request under the same
/// Idempotency-Key.
fn request_digest(new: &NewRemittance) -> String {
    let mut hash = Sha256::new();
    for part in [
        new.sender_merchant_id.as_str(),
        new.recipient_merchant_id.as_str(),
        &new.amount.to_string(),
        new.memo.as_deref().unwrap_or("\u{0}none"),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())
}

fn merchant_id(id: &str) -> Result<MerchantId, RemittanceError> {
    MerchantId::parse(id)
        .ok_or_else(|| MerchantError::NotFound(id.chars().take(64).collect()).into())
}

fn transfer_reference(id: &RemittanceId, step: Step) -> String {
    format!("{id}:{}", step.as_str())
}

fn transaction_id(id: &RemittanceId, suffix: &str) -> Result<TransactionId, RemittanceError> {
    Ok(TransactionId::parse(&format!("{id}.{suffix}"))?)
}

fn hold_id(id: &RemittanceId, suffix: &str) -> Result<HoldId, RemittanceError> {
    Ok(HoldId::parse(&format!("{id}.{suffix}"))?)
}

fn won(amount: i64) -> Money {
    Money::from_minor(amount, REMITTANCE_CURRENCY)
}

fn metadata(remittance: &Remittance) -> serde_json::Value {
    serde_json::json!({
        "remittance": remittance.id.as_str(),
        "sender": remittance.sender_merchant_id,
        "recipient": remittance.recipient_merchant_id,
    })
}

/// The last characters of an id, enough to find it from a statement line.
fn tail(id: &RemittanceId) -> String {
    let text = id.as_str();
    text[text.len().saturating_sub(6)..].to_owned()
}

fn memo(text: &str) -> Result<Memo, StepFailure> {
    let text: String = text.chars().take(banking::MEMO_CHARS_MAX).collect();
    Memo::parse(&text).map_err(|error| StepFailure::retry("memo_invalid", error.to_string()))
}

fn unknown(transfer: &BankTransfer) -> StepFailure {
    StepFailure::retry(
        "bank_outcome_unknown",
        format!(
            "the bank's answer about {} is not known yet; it is asked again",
            transfer.id
        ),
    )
}

fn micros(duration: Duration) -> Micros {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}
