//! The settlement service: runs a day, finishes payouts whose outcome was unknown, reads runs,
//! settlements and the CSV report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use banking::{Memo, TransferAmount, TransferKind};
use ledger::{
    AccountCode, AccountFlags, AccountId, AccountKind, Direction, HoldId, Ledger, LedgerError,
    Micros, NewHold, NewTransaction, Page, PostHold, PostingSpec, TransactionId, PAGE_SIZE_MAX,
};
use merchants::{MerchantAccount, MerchantId, Merchants};
use money::{Currency, Money};
use storage::Db;
use tokio::sync::OnceCell;
use wallet::bank_transfer::{BankTransfer, BankTransfers, TransferOrder, TransferState};

use crate::domain::{
    csv_report, figures, Balances, Run, Settlement, SettlementDate, SettlementId, SettlementState,
    LEDGER_PREFIX,
};
use crate::error::SettlementError;
use crate::store;

/// The owner name settlement's bank transfers are recorded under (the reference is the
/// settlement's id).
pub const TRANSFER_OWNER: &str = "settlement";
/// The platform's fee income from settlement.
pub const FEES_INCOME: &str = "income:fees";
/// What settlement owes merchants between booking a settlement and the bank's outcome: the
/// net waits here, held towards the master account, while the payout is in flight.
pub const IN_TRANSIT: &str = "liability:settlement:in_transit";
/// The platform's bank account, as the wallet names it.
pub const MASTER_ACCOUNT: &str = wallet::MASTER_ACCOUNT;
/// The currency settled: bank payouts are in won.
pub const SETTLEMENT_CURRENCY: Currency = Currency::KRW;
/// How long a run's lease lasts; it is renewed before every merchant, so only a run stuck on
/// one merchant for this long (the bank call is bounded at seconds) can lose it.
pub const LEASE: Duration = Duration::from_secs(5 * 60);
/// Merchants read per page while listing them for a run.
const MERCHANT_PAGE: i64 = PAGE_SIZE_MAX;
/// The most settlements a resolver pass looks at.
pub const RESOLVE_BATCH_MAX: i64 = 500;

/// How far a run is, for a progress bar: `done` of `total` merchants (or settlements, when a
/// run only finishes what an earlier run of the day calculated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// What [`Settlements::run_day`] did: the run as stored afterwards and where its report was
/// written, if a report directory is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayReport {
    pub run: Run,
    pub report_path: Option<PathBuf>,
}

/// Where settlement writes its reports.
#[derive(Debug, Clone, Default)]
pub struct SettlementConfig {
    /// The directory each run writes `settlement-YYYY-MM-DD.csv` into; none writes no file
    /// (the report is still served over HTTP from the stored settlements).
    pub report_dir: Option<PathBuf>,
}

/// The settlement service. Cheap to clone: every clone shares one set of handles.
#[derive(Clone)]
pub struct Settlements {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    ledger: Arc<Ledger>,
    merchants: Merchants,
    /// The process's one bank transfer executor (the wallet's), so payouts share its request
    /// ids, its memory of requests to resend and its fee booking.
    transfers: Arc<BankTransfers>,
    config: SettlementConfig,
    accounts: OnceCell<PlatformAccounts>,
}

#[derive(Debug, Clone)]
struct PlatformAccounts {
    fees: AccountId,
    in_transit: AccountId,
    master: AccountId,
}

impl std::fmt::Debug for Settlements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settlements")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Settlements {
    pub fn new(
        db: Db,
        ledger: Arc<Ledger>,
        merchants: Merchants,
        transfers: Arc<BankTransfers>,
        config: SettlementConfig,
    ) -> Settlements {
        Settlements {
            inner: Arc::new(Inner {
                db,
                ledger,
                merchants,
                transfers,
                config,
                accounts: OnceCell::new(),
            }),
        }
    }

    /// Settles every merchant for `date` and writes the day's report: the entry point for a
    /// daily schedule, the CLI and the API.
    ///
    /// Idempotent: a merchant's settlement of a day is calculated once (figures fixed in its
    /// record) and every later step is a replay, so running a day again changes nothing that
    /// is final, sends no second payout, and only finishes what an earlier run left (a payout
    /// whose outcome was unknown, a run cut short). Runs are exclusive (one lease); a day whose
    /// cutoff has not passed, or that precedes a day already run, is refused.
    pub async fn run_day(
        &self,
        date: SettlementDate,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<DayReport, SettlementError> {
        let now = self.now();
        if now < date.cutoff_micros() {
            return Err(SettlementError::DayNotOver(date.to_string()));
        }
        let holder = format!("run_{}", ulid::Ulid::new());
        if !store::take_lease(self.db(), &holder, now, now + micros(LEASE)).await? {
            return Err(SettlementError::RunInProgress);
        }
        let result = self.run_leased(date, &holder, progress).await;
        if let Err(error) = store::release_lease(self.db(), &holder).await {
            tracing::warn!(%error, "releasing the settlement lease failed; it expires by itself");
        }
        result
    }

    /// One pass over settlements whose payout is unfinished (any date): books what was
    /// calculated, asks the bank about unknown outcomes, and posts or returns the money. Skips
    /// the pass while a run holds the lease (the run finishes them itself). Returns how many
    /// settlements reached a final state.
    pub async fn resolve_pending(&self, limit: i64) -> Result<usize, SettlementError> {
        let now = self.now();
        let holder = format!("resolve_{}", ulid::Ulid::new());
        if !store::take_lease(self.db(), &holder, now, now + micros(LEASE)).await? {
            return Ok(0);
        }
        let result = self.resolve_leased(limit, &holder).await;
        if let Err(error) = store::release_lease(self.db(), &holder).await {
            tracing::warn!(%error, "releasing the settlement lease failed; it expires by itself");
        }
        result
    }

    /// The run of `date`.
    pub async fn run(&self, date: SettlementDate) -> Result<Run, SettlementError> {
        store::run(self.db(), date)
            .await?
            .ok_or_else(|| SettlementError::RunNotFound(date.to_string()))
    }

    /// Runs newest date first, before `before`, at most `limit` (1 to 100).
    pub async fn runs(
        &self,
        before: Option<SettlementDate>,
        limit: i64,
    ) -> Result<Vec<Run>, SettlementError> {
        store::runs_before(self.db(), before, limit.clamp(1, 100)).await
    }

    /// A settlement by id.
    pub async fn settlement(&self, id: &str) -> Result<Option<Settlement>, SettlementError> {
        store::by_id(self.db(), id).await
    }

    /// The settlements of a day in merchant id order, after the cursor (a merchant id).
    pub async fn settlements_of_day(
        &self,
        date: SettlementDate,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Page<Settlement>, SettlementError> {
        let limit = limit.clamp(1, PAGE_SIZE_MAX);
        let mut items =
            store::of_date(self.db(), date, after.unwrap_or_default(), limit + 1).await?;
        let next = trim(&mut items, limit, |s| s.merchant_id.clone());
        Ok(Page { items, next })
    }

    /// A merchant's settlements, newest date first; the cursor is the last date of the
    /// previous page.
    pub async fn settlements_of_merchant(
        &self,
        merchant: &MerchantId,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Page<Settlement>, SettlementError> {
        self.inner.merchants.get(merchant).await?;
        let limit = limit.clamp(1, PAGE_SIZE_MAX);
        let mut items =
            store::of_merchant_page(self.db(), merchant.as_str(), before, limit + 1).await?;
        let next = trim(&mut items, limit, |s| s.date.to_string());
        Ok(Page { items, next })
    }

    /// The CSV report of a run, built from its stored settlements: the same bytes as the
    /// file the run wrote, as long as no settlement of the day changed state since.
    pub async fn report(&self, date: SettlementDate) -> Result<String, SettlementError> {
        self.run(date).await?;
        let all = self.all_of_day(date).await?;
        Ok(csv_report(&all))
    }

    fn db(&self) -> &Db {
        &self.inner.db
    }

    fn now(&self) -> Micros {
        self.inner.ledger.now_micros()
    }

    async fn run_leased(
        &self,
        date: SettlementDate,
        holder: &str,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<DayReport, SettlementError> {
        let later = store::later_run(self.db(), date).await?;
        let existing = store::run(self.db(), date).await?;
        if existing.is_none() {
            if let Some(later) = later {
                return Err(SettlementError::DaySuperseded {
                    date: date.to_string(),
                    later,
                });
            }
            store::insert_run(self.db(), date, date.cutoff_micros(), self.now()).await?;
        }
        let run = self.run(date).await?;
        // Once every merchant was looked at, or a later day was run, this day only finishes
        // what it created: a new settlement now would count money a later day already took.
        let calculating = run.calculated_at.is_none() && later.is_none();
        if calculating {
            self.calculate_all(date, holder, progress).await?;
            store::mark_calculated(self.db(), date, self.now()).await?;
        } else {
            self.finish_day(date, &run, holder, progress).await?;
        }
        let run = self.refresh_run(date).await?;
        let report_path = self.write_report(date).await?;
        tracing::info!(
            date = %date, state = run.state.as_str(), settlements = run.totals.settlements,
            paid = run.totals.paid, paying = run.totals.paying, failed = run.totals.failed,
            carried_over = run.totals.carried_over, "settlement run finished"
        );
        Ok(DayReport { run, report_path })
    }

    /// Calculates (unless done) and drives each merchant's settlement of the day.
    async fn calculate_all(
        &self,
        date: SettlementDate,
        holder: &str,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<(), SettlementError> {
        let merchants = self.merchant_ids().await?;
        let total = merchants.len() as u64;
        progress(Progress { done: 0, total });
        for (done, merchant) in merchants.iter().enumerate() {
            self.renew(holder).await?;
            let found = store::of_merchant_on(self.db(), merchant.as_str(), date).await?;
            let settlement = match found {
                Some(settlement) => Some(settlement),
                None => self.calculate(merchant, date).await?,
            };
            if let Some(settlement) = settlement {
                self.drive(settlement).await?;
            }
            progress(Progress {
                done: done as u64 + 1,
                total,
            });
        }
        Ok(())
    }

    /// Drives every settlement of a day already calculated.
    async fn finish_day(
        &self,
        date: SettlementDate,
        run: &Run,
        holder: &str,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<(), SettlementError> {
        let total = u64::try_from(run.totals.settlements).unwrap_or(0);
        progress(Progress { done: 0, total });
        let all = self.all_of_day(date).await?;
        let total = all.len() as u64;
        for (done, settlement) in all.into_iter().enumerate() {
            if !settlement.state.is_final() {
                self.renew(holder).await?;
                self.drive(settlement).await?;
            }
            progress(Progress {
                done: done as u64 + 1,
                total,
            });
        }
        Ok(())
    }

    async fn resolve_leased(&self, limit: i64, holder: &str) -> Result<usize, SettlementError> {
        let pending = store::unfinished(self.db(), limit.clamp(1, RESOLVE_BATCH_MAX)).await?;
        let mut finished = 0;
        let mut dates = Vec::new();
        for settlement in pending {
            self.renew(holder).await?;
            let date = settlement.date;
            match self.drive(settlement).await {
                Ok(settlement) if settlement.state.is_final() => finished += 1,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(code = error.code(), %error, "finishing a settlement failed")
                }
            }
            if !dates.contains(&date) {
                dates.push(date);
            }
        }
        for date in dates {
            self.refresh_run(date).await?;
        }
        Ok(finished)
    }

    /// Every merchant's id, in onboarding order.
    async fn merchant_ids(&self) -> Result<Vec<MerchantId>, SettlementError> {
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .inner
                .merchants
                .list(after.as_deref(), MERCHANT_PAGE)
                .await?;
            ids.extend(page.items.into_iter().map(|merchant| merchant.id));
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(ids),
            }
        }
    }

    async fn all_of_day(&self, date: SettlementDate) -> Result<Vec<Settlement>, SettlementError> {
        let mut all = Vec::new();
        let mut after = String::new();
        loop {
            let page = store::of_date(self.db(), date, &after, PAGE_SIZE_MAX).await?;
            let full = page.len() as i64 == PAGE_SIZE_MAX;
            if let Some(last) = page.last() {
                after = last.merchant_id.clone();
            }
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }

    /// Calculates and stores a merchant's settlement of `date`, or `None` when there is
    /// nothing to settle or carry (no payable account, or nothing in it and no sales).
    async fn calculate(
        &self,
        merchant: &MerchantId,
        date: SettlementDate,
    ) -> Result<Option<Settlement>, SettlementError> {
        let code =
            AccountCode::parse(&MerchantAccount::Payable.code(merchant, SETTLEMENT_CURRENCY))?;
        let payable = match self.inner.ledger.account_by_code(&code).await {
            Ok(account) => account.id,
            Err(LedgerError::AccountNotFound(_)) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let record = self.inner.merchants.get(merchant).await?;
        let cutoff = date.cutoff_micros();
        let earlier = store::of_merchant_before(self.db(), merchant.as_str(), date).await?;
        let booked = earlier.iter().filter(|s| s.state.is_booked());
        let window_from = booked.clone().map(|s| s.cutoff_at).max().unwrap_or(0);
        let settled_gross = checked_sum(booked.map(|s| s.gross))?;
        let returned_net = checked_sum(
            earlier
                .iter()
                .filter(|s| s.state == SettlementState::Failed)
                .map(|s| s.net),
        )?;
        let ledger = &self.inner.ledger;
        let all = ledger
            .flows(payable.as_str(), 0, cutoff, LEDGER_PREFIX)
            .await?;
        let window = ledger
            .flows(payable.as_str(), window_from, cutoff, LEDGER_PREFIX)
            .await?;
        let balances = Balances {
            credited: all.credits.minor(),
            debited: all.debits.minor(),
            settled_gross,
            returned_net,
            window_sales: window.credits.minor(),
        };
        let figures = figures(balances, record.fee_bps)
            .ok_or_else(|| SettlementError::Internal(format!("{merchant}: figures overflow")))?;
        if figures.is_empty() {
            return Ok(None);
        }
        let now = self.now();
        let state = if figures.pays_out() {
            SettlementState::Calculated
        } else {
            SettlementState::CarriedOver
        };
        let settlement = Settlement {
            id: SettlementId::generate(),
            merchant_id: merchant.as_str().to_owned(),
            merchant_name: record.name,
            date,
            currency: SETTLEMENT_CURRENCY,
            window_from,
            cutoff_at: cutoff,
            sales: figures.sales,
            fee_bps: figures.fee_bps,
            gross: figures.gross,
            fee: figures.fee,
            net: figures.net,
            state,
            bank_transfer_id: None,
            failure_code: None,
            created_at: now,
            updated_at: now,
        };
        Ok(Some(
            store::insert_settlement(self.db(), &settlement).await?,
        ))
    }

    /// Takes a settlement as far as it goes now: books and sends a calculated one, resolves
    /// one whose payout is in flight, and posts or returns the money on the bank's outcome.
    /// Every step repeated is a replay.
    async fn drive(&self, settlement: Settlement) -> Result<Settlement, SettlementError> {
        let settlement = match settlement.state {
            SettlementState::Calculated => self.book(settlement).await?,
            SettlementState::Paying => settlement,
            SettlementState::Paid | SettlementState::Failed | SettlementState::CarriedOver => {
                return Ok(settlement)
            }
        };
        let transfer = self.pay(&settlement).await?;
        self.finish(settlement, &transfer).await
    }

    /// Books the settlement (one ledger transaction under its id), holds the net towards the
    /// master account, records its bank transfer, and marks it paying.
    async fn book(&self, settlement: Settlement) -> Result<Settlement, SettlementError> {
        let accounts = self.accounts().await?;
        let merchant = merchant_id(&settlement)?;
        let payable = self
            .inner
            .merchants
            .ledger_account(&merchant, MerchantAccount::Payable, settlement.currency)
            .await?;
        let money = |minor: i64| Money::from_minor(minor, settlement.currency);
        let mut postings = vec![PostingSpec {
            account_id: payable,
            direction: Direction::Debit,
            amount: money(settlement.gross),
        }];
        if settlement.fee > 0 {
            postings.push(PostingSpec {
                account_id: accounts.fees.clone(),
                direction: Direction::Credit,
                amount: money(settlement.fee),
            });
        }
        postings.push(PostingSpec {
            account_id: accounts.in_transit.clone(),
            direction: Direction::Credit,
            amount: money(settlement.net),
        });
        let metadata = serde_json::json!({
            "settlement": settlement.id.as_str(),
            "merchant": settlement.merchant_id,
            "date": settlement.date.to_string(),
        });
        self.inner
            .ledger
            .post_transaction(NewTransaction {
                id: TransactionId::parse(settlement.id.as_str())?,
                postings,
                description: Some(format!("settlement {}", settlement.date)),
                metadata: Some(metadata.clone()),
                balance_limits: Vec::new(),
            })
            .await?;
        self.inner
            .ledger
            .reserve_hold(NewHold {
                id: payout_hold(&settlement)?,
                debit_account_id: accounts.in_transit.clone(),
                credit_account_id: accounts.master.clone(),
                amount: money(settlement.net),
                expires_at: None,
                metadata: Some(metadata),
                balance_limits: Vec::new(),
            })
            .await?;
        let (account, _holder) = self.inner.merchants.settlement_target(&merchant).await?;
        let amount = TransferAmount::new(settlement.net)
            .map_err(|error| SettlementError::Internal(format!("{}: {error}", settlement.id)))?;
        let transfer = self
            .inner
            .transfers
            .prepare(
                TRANSFER_OWNER,
                settlement.id.as_str(),
                TransferKind::Payout,
                amount,
                &account,
            )
            .await?;
        store::transition(
            self.db(),
            &settlement.id,
            SettlementState::Calculated,
            SettlementState::Paying,
            Some(&transfer.id),
            None,
            self.now(),
        )
        .await?;
        self.reload(&settlement).await
    }

    /// Sends the payout (once: a transfer already sent is only asked about) and waits a few
    /// seconds for an unknown outcome.
    async fn pay(&self, settlement: &Settlement) -> Result<BankTransfer, SettlementError> {
        let transfers = &self.inner.transfers;
        let transfer = transfers
            .find(TRANSFER_OWNER, settlement.id.as_str())
            .await?
            .ok_or_else(|| {
                SettlementError::Internal(format!("{} has no bank transfer", settlement.id))
            })?;
        if transfer.state.is_final() {
            return Ok(transfer);
        }
        if transfer.state != TransferState::Pending || transfer.attempts > 0 {
            // Sent before: only inquiries from here (they need no account).
            let mut transfer = transfer;
            for delay in wallet::bank_transfer::INQUIRY_DELAYS {
                if transfer.state.is_final() {
                    break;
                }
                tokio::time::sleep(delay).await;
                transfer = transfers.resolve(transfer).await?;
            }
            return Ok(transfer);
        }
        let merchant = merchant_id(settlement)?;
        let (account, _holder) = self.inner.merchants.settlement_target(&merchant).await?;
        let order = TransferOrder::Payout {
            to: account,
            memo: memo(&format!("마이페이 정산 {}", settlement.date))?,
            master_memo: memo(&format!("settle {}", tail(settlement.id.as_str())))?,
        };
        Ok(transfers.send(transfer, order).await?)
    }

    /// Ends a paying settlement by its payout's outcome: posts the hold (`{id}.paid`) when the
    /// bank executed it; voids the hold and returns the net to payable (`{id}.returned`) when
    /// it refused; leaves it paying while the outcome is unknown.
    async fn finish(
        &self,
        settlement: Settlement,
        transfer: &BankTransfer,
    ) -> Result<Settlement, SettlementError> {
        let ledger = &self.inner.ledger;
        match transfer.state {
            TransferState::Succeeded => {
                ledger
                    .post_hold(PostHold {
                        hold_id: payout_hold(&settlement)?,
                        amount: None,
                        transaction_id: Some(TransactionId::parse(&format!(
                            "{}.paid",
                            settlement.id
                        ))?),
                    })
                    .await?;
                self.transition(&settlement, SettlementState::Paid, None)
                    .await?;
            }
            TransferState::Failed => {
                match ledger.void_hold(payout_hold(&settlement)?).await {
                    Ok(_) | Err(LedgerError::HoldNotFound(_)) => {}
                    Err(error) => return Err(error.into()),
                }
                self.return_net(&settlement).await?;
                let code = transfer.failure_code.as_deref().unwrap_or("bank_refused");
                self.transition(&settlement, SettlementState::Failed, Some(code))
                    .await?;
                tracing::warn!(settlement = %settlement.id, code, "settlement payout failed; the net went back to payable");
            }
            TransferState::Pending | TransferState::Unknown => {
                tracing::warn!(settlement = %settlement.id, "settlement payout outcome unknown; left paying");
            }
        }
        self.reload(&settlement).await
    }

    /// Gives a refused payout's net back to the merchant's payable account, for the next
    /// settlement to pay: Dr in-transit, Cr payable, under `{id}.returned`.
    async fn return_net(&self, settlement: &Settlement) -> Result<(), SettlementError> {
        let accounts = self.accounts().await?;
        let payable = self
            .inner
            .merchants
            .ledger_account(
                &merchant_id(settlement)?,
                MerchantAccount::Payable,
                settlement.currency,
            )
            .await?;
        let mut tx = NewTransaction::transfer(
            TransactionId::parse(&format!("{}.returned", settlement.id))?,
            accounts.in_transit.clone(),
            payable,
            Money::from_minor(settlement.net, settlement.currency),
        );
        tx.description = Some(format!("settlement {} payout refused", settlement.date));
        self.inner.ledger.post_transaction(tx).await?;
        Ok(())
    }

    async fn transition(
        &self,
        settlement: &Settlement,
        to: SettlementState,
        failure_code: Option<&str>,
    ) -> Result<(), SettlementError> {
        store::transition(
            self.db(),
            &settlement.id,
            SettlementState::Paying,
            to,
            None,
            failure_code,
            self.now(),
        )
        .await?;
        Ok(())
    }

    async fn reload(&self, settlement: &Settlement) -> Result<Settlement, SettlementError> {
        store::by_id(self.db(), settlement.id.as_str())
            .await?
            .ok_or_else(|| {
                SettlementError::Internal(format!("settlement {} vanished", settlement.id))
            })
    }

    /// Recomputes a run's totals and state from its settlements; writes them only when they
    /// changed, so a run of a finished day changes nothing.
    async fn refresh_run(&self, date: SettlementDate) -> Result<Run, SettlementError> {
        let run = self.run(date).await?;
        let totals = store::totals(self.db(), date).await?;
        let state = totals.state(run.calculated_at.is_some());
        if totals != run.totals || state != run.state {
            store::update_run(self.db(), date, &totals, state, self.now()).await?;
            return self.run(date).await;
        }
        Ok(run)
    }

    /// Writes the day's report file (atomically: a temporary file renamed over the old one).
    async fn write_report(&self, date: SettlementDate) -> Result<Option<PathBuf>, SettlementError> {
        let Some(dir) = self.inner.config.report_dir.clone() else {
            return Ok(None);
        };
        let csv = self.report(date).await?;
        let path = report_path(&dir, date);
        let temporary = dir.join(format!(".settlement-{date}.csv.{}", ulid::Ulid::new()));
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(&temporary, csv.as_bytes()).await?;
        tokio::fs::rename(&temporary, &path).await?;
        Ok(Some(path))
    }

    async fn renew(&self, holder: &str) -> Result<(), SettlementError> {
        let until = self.now() + micros(LEASE);
        if store::renew_lease(self.db(), holder, until).await? {
            Ok(())
        } else {
            Err(SettlementError::LeaseLost)
        }
    }

    async fn accounts(&self) -> Result<PlatformAccounts, SettlementError> {
        let accounts = self
            .inner
            .accounts
            .get_or_try_init(|| async {
                Ok::<_, SettlementError>(PlatformAccounts {
                    fees: self
                        .open(FEES_INCOME, AccountKind::Income, AccountFlags::empty())
                        .await?,
                    in_transit: self
                        .open(
                            IN_TRANSIT,
                            AccountKind::Liability,
                            AccountFlags::MUST_NOT_GO_NEGATIVE,
                        )
                        .await?,
                    master: self
                        .open(MASTER_ACCOUNT, AccountKind::Asset, AccountFlags::empty())
                        .await?,
                })
            })
            .await?;
        Ok(accounts.clone())
    }

    async fn open(
        &self,
        code: &str,
        kind: AccountKind,
        flags: AccountFlags,
    ) -> Result<AccountId, SettlementError> {
        Ok(self
            .inner
            .ledger
            .open_account(code, kind, SETTLEMENT_CURRENCY, flags)
            .await?)
    }
}

/// The report file of a day in `dir`.
pub fn report_path(dir: &Path, date: SettlementDate) -> PathBuf {
    dir.join(format!("settlement-{date}.csv"))
}

fn merchant_id(settlement: &Settlement) -> Result<MerchantId, SettlementError> {
    MerchantId::parse(&settlement.merchant_id).ok_or_else(|| {
        SettlementError::Internal(format!("{} names a bad merchant id", settlement.id))
    })
}

fn payout_hold(settlement: &Settlement) -> Result<HoldId, SettlementError> {
    Ok(HoldId::parse(&format!("{}.payout", settlement.id))?)
}

fn memo(text: &str) -> Result<Memo, SettlementError> {
    let text: String = text.chars().take(banking::MEMO_CHARS_MAX).collect();
    Memo::parse(&text).map_err(|error| SettlementError::Internal(error.to_string()))
}

/// The last ten characters of an id: enough to find it again on the master account's statement.
fn tail(id: &str) -> &str {
    &id[id.len().saturating_sub(10)..]
}

fn checked_sum(mut values: impl Iterator<Item = i64>) -> Result<i64, SettlementError> {
    values
        .try_fold(0i64, i64::checked_add)
        .ok_or_else(|| SettlementError::Internal("a sum of settlements overflows".into()))
}

fn micros(duration: Duration) -> Micros {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// Trims a page fetched with one extra row and returns the cursor if there is more.
fn trim<T>(items: &mut Vec<T>, limit: i64, cursor: impl Fn(&T) -> String) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(0);
    if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor)
    } else {
        None
    }
}
