//! `Reconciliations`: runs a day (both sources and safeguarding), reads recorded runs.

use std::collections::HashMap;
use std::sync::Arc;

use banking::{BankGateway, EntryDirection, StatementCursor, StatementEntry, TransferKind};
use ledger::{AccountCode, Ledger, LedgerError, Micros};
use psp::CardProcessor;
use settlement::SettlementDate;
use storage::Db;
use time::{Duration, OffsetDateTime};
use wallet::bank_transfer::{BankTransfers, TransferState};

use crate::domain::{
    match_lines, safeguarding, Line, Mismatch, Safeguarding, SafeguardingFigures, Source,
};
use crate::error::ReconciliationError;
use crate::store::{self, Run};

/// The ledger account the bank's master account is booked in.
pub const MASTER_ACCOUNT: &str = wallet::MASTER_ACCOUNT;
/// Members' money accounts are `liability:member:{id}:money:KRW`: this prefix and suffix.
pub const MEMBER_MONEY_PREFIX: &str = "liability:member:";
pub const MEMBER_MONEY_SUFFIX: &str = ":money:KRW";
/// The most statement pages one day's read takes (500 lines each), so a runaway cursor cannot
/// loop forever.
pub const STATEMENT_PAGES_MAX: usize = 10_000;
/// How many days after (then before) a day without lines are searched for the master
/// account's balance at its end.
pub const BALANCE_LOOKBACK_DAYS: i64 = 31;
/// The most mismatches a run stores (it counts all of them): past this, the day needs a person
/// anyway, and the first ones say what went wrong.
pub const MISMATCHES_STORED_MAX: usize = 10_000;
/// The page size our side is read in.
const PAGE: i64 = 1_000;
const SECOND_US: i64 = 1_000_000;

/// How reconciliation runs.
#[derive(Debug, Clone, Default)]
pub struct ReconciliationConfig {
    /// The platform's own money in the master account that the ledger does not book (the
    /// float it opened the account with), in won; safeguarding takes it off the bank's
    /// balance before comparing.
    pub own_funds_won: i64,
}

/// A day's run with its mismatches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayReport {
    pub run: Run,
    pub mismatches: Vec<Mismatch>,
}

/// Reconciliation: the bank's statement and the PSP's report against what mypay recorded.
#[derive(Clone)]
pub struct Reconciliations {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    ledger: Arc<Ledger>,
    bank: Arc<dyn BankGateway>,
    transfers: Arc<BankTransfers>,
    psp: Arc<dyn CardProcessor>,
    config: ReconciliationConfig,
}

impl std::fmt::Debug for Reconciliations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciliations")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// One side of the bank, read: the lines and the master account's closing balance.
struct BankSide {
    lines: Vec<Line>,
    closing_balance: Option<i64>,
}

/// Our side of the bank: the transfers that succeeded, and what we know of those that did
/// not (by bank_tran_id), to explain a line the bank has and we did not book.
struct OurBankSide {
    lines: Vec<Line>,
    unfinished: HashMap<String, String>,
}

impl Reconciliations {
    /// `bank` is the gateway whose statement is read; `transfers` the executor whose records
    /// are our side of it; `psp` the processor whose report is read.
    pub fn new(
        db: Db,
        ledger: Arc<Ledger>,
        bank: Arc<dyn BankGateway>,
        transfers: Arc<BankTransfers>,
        psp: Arc<dyn CardProcessor>,
        config: ReconciliationConfig,
    ) -> Reconciliations {
        Reconciliations {
            inner: Arc::new(Inner {
                db,
                ledger,
                bank,
                transfers,
                psp,
                config,
            }),
        }
    }

    /// Reconciles KST business day `date`: the master account's statement against our bank
    /// transfers and micro-deposits, the PSP's report against our card approvals and
    /// cancellations, and the safeguarding figures at the day's cutoff. A day still in progress
    /// is reconciled up to the last whole second. The result replaces the day's earlier one; nothing is recorded
    /// when a side cannot be read.
    pub async fn run_day(&self, date: SettlementDate) -> Result<DayReport, ReconciliationError> {
        let now = self.inner.ledger.now_micros();
        let start = day_start(date);
        if start > now {
            return Err(ReconciliationError::DayNotBegun(date.to_string()));
        }
        // A day in progress is compared up to the last whole second: the PSP's report is asked
        // for by the second, and both sides must cover the same span.
        let cutoff = date.cutoff_micros().min(now - now.rem_euclid(SECOND_US));
        let bank = self.bank_side(date, start, cutoff).await?;
        let ours = self.our_bank_side(start, cutoff).await?;
        let unfinished = &ours.unfinished;
        let explain = |key: &str| unfinished.get(key).cloned();
        let bank_matched = match_lines(Source::Bank, &ours.lines, &bank.lines, &explain);
        let theirs = self.psp_side(start, cutoff).await?;
        let our_card = self.our_psp_side(start, cutoff).await?;
        let psp_matched = match_lines(Source::Psp, &our_card, &theirs, &|_| None);
        let figures = self.safeguarding(cutoff, bank.closing_balance).await?;
        let mut mismatches = bank_matched.mismatches;
        mismatches.extend(psp_matched.mismatches);
        let total = mismatches.len();
        mismatches.truncate(MISMATCHES_STORED_MAX);
        let run = Run {
            date,
            cutoff_at: cutoff,
            matched: total == 0 && figures.status == Safeguarding::Ok,
            bank_lines: count(bank.lines.len()),
            our_bank_lines: count(ours.lines.len()),
            bank_matched: count(bank_matched.matched),
            psp_lines: count(theirs.len()),
            our_psp_lines: count(our_card.len()),
            psp_matched: count(psp_matched.matched),
            mismatches: count(total),
            safeguarding: figures,
            runs: 1,
            first_run_at: now,
            run_at: now,
        };
        let run = store::replace(&self.inner.db, &run, &mismatches).await?;
        report(&run);
        Ok(DayReport { run, mismatches })
    }

    /// The recorded run of a day, with its mismatches.
    pub async fn day(&self, date: SettlementDate) -> Result<DayReport, ReconciliationError> {
        let run = store::run(&self.inner.db, date)
            .await?
            .ok_or_else(|| ReconciliationError::NotFound(date.to_string()))?;
        let mismatches = store::mismatches(&self.inner.db, date).await?;
        Ok(DayReport { run, mismatches })
    }

    /// Recorded runs, newest day first, before `before`, at most `limit` (1 to 100).
    pub async fn runs(
        &self,
        before: Option<SettlementDate>,
        limit: i64,
    ) -> Result<Vec<Run>, ReconciliationError> {
        store::runs_before(&self.inner.db, before, limit.clamp(1, 100)).await
    }

    /// The master account's statement of `date` up to `cutoff`, and its balance at `cutoff`.
    async fn bank_side(
        &self,
        date: SettlementDate,
        start: Micros,
        cutoff: Micros,
    ) -> Result<BankSide, ReconciliationError> {
        let (entries, balance_now) = self.statement(date).await?;
        let mut lines = Vec::with_capacity(entries.len());
        let mut closing_balance = None;
        let mut first_later = None;
        for (n, entry) in entries.iter().enumerate() {
            let at = micros(entry.at);
            if at >= cutoff {
                first_later = first_later.or(Some(entry));
                continue;
            }
            if at < start {
                continue;
            }
            closing_balance = Some(entry.balance_after_won);
            let key = match &entry.bank_tran_id {
                Some(id) => id.as_str().to_owned(),
                // A line without our request id (cash, a transfer someone else sent) can only
                // be missing on our side; its position makes its key unique.
                None => format!("line:{date}:{n}"),
            };
            lines.push(Line {
                key,
                amount: signed(entry),
                reference: None,
                at: Some(at),
            });
        }
        if closing_balance.is_none() {
            closing_balance = match first_later {
                Some(entry) => Some(balance_before(entry)),
                None => self.quiet_day_balance(date, balance_now).await?,
            };
        }
        Ok(BankSide {
            lines,
            closing_balance,
        })
    }

    /// Every line of a day's statement, oldest first, and the account's balance as the last
    /// page was read.
    async fn statement(
        &self,
        date: SettlementDate,
    ) -> Result<(Vec<StatementEntry>, Option<i64>), ReconciliationError> {
        let mut entries = Vec::new();
        let mut cursor: Option<StatementCursor> = None;
        for _ in 0..STATEMENT_PAGES_MAX {
            let page = self
                .inner
                .bank
                .statement(date.date(), cursor.as_ref())
                .await?;
            entries.extend(page.entries);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok((entries, page.balance_won)),
            }
        }
        Err(ReconciliationError::Internal(format!(
            "the statement of {date} has more than {STATEMENT_PAGES_MAX} pages"
        )))
    }

    /// The master account's balance at the end of a day without lines: the balance before the
    /// first line of a later day, or, when no day since has one, the balance now (as the bank
    /// said with `date`'s statement); failing that (a day long past), the balance after the
    /// last line of an earlier day. At most [`BALANCE_LOOKBACK_DAYS`] days either way.
    async fn quiet_day_balance(
        &self,
        date: SettlementDate,
        balance_now: Option<i64>,
    ) -> Result<Option<i64>, ReconciliationError> {
        let today = SettlementDate::of_instant(self.inner.ledger.now_micros()).date();
        let mut day = date.date();
        let mut balance_now = balance_now;
        for _ in 0..BALANCE_LOOKBACK_DAYS {
            if day >= today {
                return Ok(balance_now);
            }
            day += Duration::days(1);
            let (entries, now) = self.statement(SettlementDate::from_date(day)).await?;
            if let Some(first) = entries.first() {
                return Ok(Some(balance_before(first)));
            }
            balance_now = now;
        }
        for back in 1..=BALANCE_LOOKBACK_DAYS {
            let day = SettlementDate::from_date(date.date() - Duration::days(back));
            if let Some(last) = self.statement(day).await?.0.last() {
                return Ok(Some(last.balance_after_won));
            }
        }
        Ok(None)
    }

    /// Our bank transfers and micro-deposits requested in `[start, cutoff)`.
    async fn our_bank_side(
        &self,
        start: Micros,
        cutoff: Micros,
    ) -> Result<OurBankSide, ReconciliationError> {
        let mut side = OurBankSide {
            lines: Vec::new(),
            unfinished: HashMap::new(),
        };
        let mut after: Option<String> = None;
        loop {
            let page = self
                .inner
                .transfers
                .requested_between(start, cutoff, after.as_deref(), PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for transfer in page {
                let key = transfer.bank_tran_id.as_str().to_owned();
                if transfer.state != TransferState::Succeeded {
                    side.unfinished.insert(
                        key,
                        format!(
                            "the bank reports it; our transfer {} is {}",
                            transfer.id,
                            transfer.state.as_str()
                        ),
                    );
                    continue;
                }
                let won = transfer.amount.won();
                side.lines.push(Line {
                    key,
                    amount: match transfer.kind {
                        TransferKind::Collect => won,
                        TransferKind::Payout => -won,
                    },
                    reference: Some(transfer.id),
                    at: Some(transfer.requested_at),
                });
            }
        }
        let mut after: Option<String> = None;
        loop {
            let page = bank_accounts::deposits_requested_between(
                &self.inner.db,
                start,
                cutoff,
                after.as_deref(),
                PAGE,
            )
            .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for deposit in page {
                if !deposit.succeeded {
                    side.unfinished.insert(
                        deposit.bank_tran_id,
                        format!(
                            "the bank reports it; our micro-deposit {} has not succeeded",
                            deposit.id
                        ),
                    );
                    continue;
                }
                side.lines.push(Line {
                    key: deposit.bank_tran_id,
                    amount: -deposit.amount_won,
                    reference: Some(deposit.id),
                    at: Some(deposit.requested_at),
                });
            }
        }
        Ok(side)
    }

    /// The PSP's approvals and cancellations in `[start, cutoff)`.
    async fn psp_side(
        &self,
        start: Micros,
        cutoff: Micros,
    ) -> Result<Vec<Line>, ReconciliationError> {
        let transactions = self
            .inner
            .psp
            .transactions(instant(start), instant(cutoff))
            .await?;
        Ok(transactions
            .into_iter()
            .map(|t| {
                // The status is the payment's after the transaction: only an approval leaves
                // it DONE; a cancellation leaves it (partially) cancelled.
                let kind = if t.status == "DONE" {
                    payments::CardActivityKind::Approval
                } else {
                    payments::CardActivityKind::Cancellation
                };
                Line {
                    key: card_key(t.order_id.as_str(), kind),
                    amount: t.amount,
                    reference: None,
                    at: Some(micros(t.transaction_at)),
                }
            })
            .collect())
    }

    /// Our card approvals and cancellations in `[start, cutoff)`.
    async fn our_psp_side(
        &self,
        start: Micros,
        cutoff: Micros,
    ) -> Result<Vec<Line>, ReconciliationError> {
        let db = &self.inner.db;
        let mut lines = Vec::new();
        for kind in [
            payments::CardActivityKind::Approval,
            payments::CardActivityKind::Cancellation,
        ] {
            let mut after: Option<String> = None;
            loop {
                let page = match kind {
                    payments::CardActivityKind::Approval => {
                        payments::card_approvals_between(db, start, cutoff, after.as_deref(), PAGE)
                            .await?
                    }
                    payments::CardActivityKind::Cancellation => {
                        payments::card_cancellations_between(
                            db,
                            start,
                            cutoff,
                            after.as_deref(),
                            PAGE,
                        )
                        .await?
                    }
                };
                let Some(last) = page.last() else { break };
                after = Some(last.reference.clone());
                lines.extend(page.into_iter().map(|activity| Line {
                    key: card_key(&activity.psp_order_id, activity.kind),
                    amount: activity.amount,
                    reference: Some(activity.reference),
                    at: Some(activity.at),
                }));
            }
        }
        Ok(lines)
    }

    /// The safeguarding figures at `cutoff` (the ledger read just before it).
    async fn safeguarding(
        &self,
        cutoff: Micros,
        bank_balance: Option<i64>,
    ) -> Result<SafeguardingFigures, ReconciliationError> {
        let ledger = &self.inner.ledger;
        let at = cutoff - 1;
        let member_money = ledger
            .sum_balances_at(MEMBER_MONEY_PREFIX, MEMBER_MONEY_SUFFIX, at)
            .await?;
        let code = AccountCode::parse(MASTER_ACCOUNT).expect("a valid account code");
        let ledger_master = match ledger.account_by_code(&code).await {
            Ok(account) => ledger.balance_at(account.id.as_str(), at).await?.minor(),
            // No money ever went through the bank.
            Err(LedgerError::AccountNotFound(_)) => 0,
            Err(error) => return Err(error.into()),
        };
        safeguarding(
            member_money,
            ledger_master,
            bank_balance,
            self.inner.config.own_funds_won,
        )
        .ok_or_else(|| ReconciliationError::Internal("a safeguarding figure overflowed".into()))
    }
}

/// Parses a reconciliation date, `YYYY-MM-DD` (a KST business date).
pub fn parse_date(value: &str) -> Result<SettlementDate, ReconciliationError> {
    SettlementDate::parse(value)
        .map_err(|_| ReconciliationError::DateInvalid(value.chars().take(32).collect()))
}

/// A statement line's amount, into the master account positive.
fn signed(entry: &StatementEntry) -> i64 {
    match entry.direction {
        EntryDirection::Deposit => entry.amount_won,
        EntryDirection::Withdrawal => -entry.amount_won,
    }
}

/// The account's balance just before a line.
fn balance_before(entry: &StatementEntry) -> i64 {
    entry.balance_after_won.saturating_sub(signed(entry))
}

/// The key a card movement is matched by: the PSP's order id and whether money was taken or
/// given back.
fn card_key(order_id: &str, kind: payments::CardActivityKind) -> String {
    format!("{order_id}:{}", kind.as_str())
}

/// The start of a KST business day: the cutoff of the day before.
fn day_start(date: SettlementDate) -> Micros {
    SettlementDate::from_date(date.date() - Duration::days(1)).cutoff_micros()
}

fn micros(at: OffsetDateTime) -> Micros {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

fn instant(at: Micros) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Reports a run where operators look: the log, and gauges to alert on.
fn report(run: &Run) {
    metrics::gauge!("mypay_reconciliation_mismatches").set(run.mismatches as f64);
    metrics::gauge!("mypay_safeguarding_ok").set(if run.safeguarding.status == Safeguarding::Ok {
        1.0
    } else {
        0.0
    });
    let figures = &run.safeguarding;
    if run.matched {
        tracing::info!(date = %run.date, bank_matched = run.bank_matched, psp_matched = run.psp_matched, "reconciled: every line matched and safeguarding holds");
    } else {
        tracing::error!(
            date = %run.date,
            mismatches = run.mismatches,
            safeguarding = figures.status.as_str(),
            member_money = figures.member_money,
            members_part = ?figures.members_part,
            "reconciliation found mismatches or a safeguarding difference"
        );
    }
}
