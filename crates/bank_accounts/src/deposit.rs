//! The 1-won micro-deposit: stored before it is sent, sent once, resolved by inquiry when its
//! outcome is unknown, and booked under an id derived from its own.
//!
//! The rules, in the order they protect money:
//! - The deposit's row (our `bank_tran_id`, the request time and the sealed memo) is committed
//!   before the bank is called, so every later attempt sends the identical request.
//! - An `Unknown` outcome is resolved by `transfer_result` before anything else. `NotFound`
//!   there means the bank never processed the request: it is sent again with the same id and
//!   time, which the bank executes at most once.
//! - A deposit is booked only after the bank said it executed, in one ledger transaction whose
//!   id is `<deposit id>.deposit`: booking it again is a replay, never a second posting.
//! - What is still unknown after a few inquiries stays `pending`; the next call that touches
//!   the link (or the sweeper) resolves it.

use std::collections::HashMap;

use banking::{
    BankAccount, BankTranId, InquiryOutcome, Memo, PayoutRequest, RefusalCode, TransferAmount,
    TransferKind, TransferOutcome, TransferQuery,
};
use ledger::{
    AccountCode, AccountFlags, AccountId, AccountKind, Direction, Micros, NewAccount,
    NewTransaction, PostingSpec, TransactionId,
};
use money::{Currency, Money};
use storage::Db;
use time::OffsetDateTime;
use tokio::sync::OnceCell;

use crate::domain::{DigitCode, DEPOSIT_MEMO_PREFIX, VERIFICATION_CODE_DIGITS};
use crate::error::BankAccountError;
use crate::id::{BankAccountId, DepositId};
use crate::service::{code_ttl_micros, BankAccounts, CODE_DOMAIN};
use crate::store::{self, DepositRow, LinkRow, NewLinkRow};

/// What a micro-deposit moves: one won.
const DEPOSIT_WON: i64 = 1;
/// Printed on the master account's statement for every micro-deposit.
const MASTER_MEMO: &str = "MYPAY 1원인증";

/// A micro-deposit as reconciliation sees it: our request id at the bank, and whether the bank
/// said it executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicroDeposit {
    /// `bad_` + ULID.
    pub id: String,
    pub bank_tran_id: String,
    pub requested_at: Micros,
    /// The bank executed it (and it was booked); `false` while pending or after a refusal.
    pub succeeded: bool,
    pub amount_won: i64,
}

/// The ledger accounts a micro-deposit is booked to, opened on first use.
#[derive(Debug, Default)]
pub(crate) struct Books(OnceCell<HashMap<&'static str, AccountId>>);

const VERIFICATION_EXPENSE: &str = "expense:account_verification";
const MASTER: &str = "asset:bank:master";
const BANK_FEES: &str = "expense:bank_fees";
const FEES_PAYABLE: &str = "liability:bank:fees_payable";

/// How a deposit ended, as far as this call could tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    Arrived,
    Refused(RefusalCode),
    Pending,
}

impl Delivery {
    /// A refusal as the error the member sees; an arrived or pending deposit is no error.
    pub(crate) fn into_result(self) -> Result<(), BankAccountError> {
        match self {
            Delivery::Arrived | Delivery::Pending => Ok(()),
            Delivery::Refused(RefusalCode::AccountNotFound) => {
                Err(BankAccountError::AccountUnknownAtBank)
            }
            Delivery::Refused(code) if code.is_transient() => {
                Err(BankAccountError::BankUnavailable)
            }
            Delivery::Refused(code) => Err(BankAccountError::BankRefused(code)),
        }
    }
}

impl BankAccounts {
    /// Stores a new link and its first deposit in one transaction.
    pub(crate) async fn store_link_with_deposit(
        &self,
        link: &NewLinkRow<'_>,
    ) -> Result<DepositRow, BankAccountError> {
        let mut deposit = self.prepare_deposit(link.id)?;
        let mut tx = self.db.begin_write().await?;
        store::insert_link(&mut tx, link).await?;
        deposit.seq = store::insert_deposit(&mut tx, &deposit).await?;
        tx.commit().await?;
        Ok(deposit)
    }

    /// Stores a further deposit (a resend) for a link.
    pub(crate) async fn store_deposit(
        &self,
        link_id: &str,
    ) -> Result<DepositRow, BankAccountError> {
        let mut deposit = self.prepare_deposit(link_id)?;
        let mut tx = self.db.begin_write().await?;
        deposit.seq = store::insert_deposit(&mut tx, &deposit).await?;
        tx.commit().await?;
        Ok(deposit)
    }

    /// A new deposit with a fresh code, our request id and time, and the memo sealed; its
    /// sequence number is given when it is stored.
    fn prepare_deposit(&self, link_id: &str) -> Result<DepositRow, BankAccountError> {
        let id = DepositId::generate();
        let code = DigitCode::generate(VERIFICATION_CODE_DIGITS);
        let memo = format!("{DEPOSIT_MEMO_PREFIX} {}", code.expose());
        let sealed = self
            .config
            .keys
            .seal(memo.as_bytes(), id.as_str().as_bytes())?;
        Ok(DepositRow {
            code_hmac: self
                .config
                .keys
                .mac(CODE_DOMAIN, &[id.as_str(), code.expose()]),
            id: id.to_string(),
            bank_account_id: link_id.to_owned(),
            seq: 0,
            bank_tran_id: self.bank.next_tran_id().to_string(),
            requested_at: self.clock.now_micros(),
            status: "pending".into(),
            memo_key_id: Some(sealed.key_id),
            memo_sealed: Some(sealed.sealed),
            expires_at: None,
            attempts: 0,
        })
    }

    /// Sends a stored, never-sent deposit and follows it to an outcome.
    pub(crate) async fn deliver(
        &self,
        deposit: &DepositRow,
        account: &BankAccount,
    ) -> Result<Delivery, BankAccountError> {
        let request = self.payout_request(deposit, account)?;
        match self.bank.payout(&request).await {
            TransferOutcome::Succeeded { .. } => self.arrived(deposit).await,
            TransferOutcome::Failed { code, .. } => self.refused(deposit, code).await,
            TransferOutcome::Unknown { reason } => {
                tracing::warn!(deposit = %deposit.id, bank_tran_id = %deposit.bank_tran_id, reason, "micro-deposit outcome unknown; resolving by inquiry");
                self.resolve(deposit, account).await
            }
        }
    }

    /// Resolves a deposit whose outcome is unknown: inquiries with backoff, and a resend with
    /// the same id and time when the bank has no record of it. Leaves it pending when the bank
    /// still gives no answer.
    pub(crate) async fn resolve(
        &self,
        deposit: &DepositRow,
        account: &BankAccount,
    ) -> Result<Delivery, BankAccountError> {
        let request = self.payout_request(deposit, account)?;
        let query = TransferQuery {
            kind: TransferKind::Payout,
            bank_tran_id: request.bank_tran_id.clone(),
            requested_at: request.requested_at,
            amount: request.amount,
        };
        for delay in &self.config.inquiry_backoff {
            tokio::time::sleep(*delay).await;
            match self.bank.transfer_result(&query).await {
                Ok(InquiryOutcome::Succeeded { .. }) => return self.arrived(deposit).await,
                Ok(InquiryOutcome::Failed { code, .. }) => {
                    return self.refused(deposit, code).await
                }
                Ok(InquiryOutcome::NotFound) => {
                    match self.bank.payout(&request).await.of_resend() {
                        TransferOutcome::Succeeded { .. } => return self.arrived(deposit).await,
                        TransferOutcome::Failed { code, .. } => {
                            return self.refused(deposit, code).await
                        }
                        TransferOutcome::Unknown { reason } => {
                            tracing::warn!(deposit = %deposit.id, reason, "micro-deposit resend outcome unknown");
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(deposit = %deposit.id, %error, "micro-deposit inquiry failed");
                }
            }
        }
        tracing::warn!(deposit = %deposit.id, bank_tran_id = %deposit.bank_tran_id, "micro-deposit still unresolved; a later call will ask again");
        Ok(Delivery::Pending)
    }

    /// Resolves up to `limit` pending deposits, oldest first; returns how many were settled.
    /// Run periodically, so that a deposit whose link nobody touches again is still booked
    /// (or found refused) once the bank answers.
    pub async fn settle_pending_deposits(&self, limit: i64) -> Result<usize, BankAccountError> {
        let mut settled = 0;
        for deposit in store::pending_deposits(&self.db, limit.clamp(1, 500)).await? {
            // One deposit that cannot be settled (its key left the keyring, a bad row) is
            // logged and passed over, so that it never holds up the ones behind it.
            match self.settle_one(&deposit).await {
                Ok(Delivery::Pending) => {}
                Ok(_) => settled += 1,
                Err(error) => {
                    tracing::error!(deposit = %deposit.id, %error, "micro-deposit could not be settled; will retry");
                }
            }
        }
        Ok(settled)
    }

    async fn settle_one(&self, deposit: &DepositRow) -> Result<Delivery, BankAccountError> {
        let link_id = BankAccountId::parse(&deposit.bank_account_id).ok_or_else(|| {
            BankAccountError::Internal(format!("{} names a bad link", deposit.id))
        })?;
        let row: LinkRow = self.row(&link_id).await?;
        let account = self.open_account(&row)?;
        // A request may be resolving the same deposit right now; both converge on the same
        // stored outcome and the same (replayed) booking.
        self.resolve(deposit, &account).await
    }

    /// The deposit's request, rebuilt identically from its row every time.
    fn payout_request(
        &self,
        deposit: &DepositRow,
        account: &BankAccount,
    ) -> Result<PayoutRequest, BankAccountError> {
        let bad =
            |what: &str| BankAccountError::Internal(format!("{} has a bad {what}", deposit.id));
        let (Some(key_id), Some(sealed)) = (&deposit.memo_key_id, &deposit.memo_sealed) else {
            return Err(bad("memo (settled deposits keep none)"));
        };
        let memo = self
            .config
            .keys
            .open(key_id, sealed, deposit.id.as_bytes())?;
        let memo = std::str::from_utf8(&memo)
            .ok()
            .and_then(|text| Memo::parse(text).ok())
            .ok_or_else(|| bad("memo"))?;
        Ok(PayoutRequest {
            bank_tran_id: BankTranId::parse(&deposit.bank_tran_id)
                .map_err(|_| bad("bank_tran_id"))?,
            requested_at: OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(deposit.requested_at) * 1000,
            )
            .map_err(|_| bad("request time"))?,
            to: account.clone(),
            amount: TransferAmount::new(DEPOSIT_WON).expect("one won is a valid amount"),
            memo,
            master_memo: Memo::parse(MASTER_MEMO).expect("a valid memo"),
        })
    }

    /// Books an executed deposit, then records it: the ledger first, so that a crash in between
    /// leaves a pending deposit whose next resolution replays the same booking.
    async fn arrived(&self, deposit: &DepositRow) -> Result<Delivery, BankAccountError> {
        self.book(deposit).await?;
        let now = self.clock.now_micros();
        store::deposit_succeeded(
            &self.db,
            deposit,
            now,
            now.saturating_add(code_ttl_micros()),
        )
        .await?;
        Ok(Delivery::Arrived)
    }

    async fn refused(
        &self,
        deposit: &DepositRow,
        code: RefusalCode,
    ) -> Result<Delivery, BankAccountError> {
        tracing::warn!(deposit = %deposit.id, code = code.as_str(), "the bank refused a micro-deposit");
        store::deposit_failed(&self.db, deposit, code.as_str(), self.clock.now_micros()).await?;
        Ok(Delivery::Refused(code))
    }

    /// One ledger transaction for the won and the payout fee: Dr expense:account_verification /
    /// Cr asset:bank:master, and Dr expense:bank_fees / Cr liability:bank:fees_payable.
    async fn book(&self, deposit: &DepositRow) -> Result<(), BankAccountError> {
        let books = self.books().await?;
        let won = |won: i64| Money::from_minor(won, Currency::KRW);
        let leg = |code: &str, direction, amount| PostingSpec {
            account_id: books[code].clone(),
            direction,
            amount,
        };
        let mut postings = vec![
            leg(VERIFICATION_EXPENSE, Direction::Debit, won(DEPOSIT_WON)),
            leg(MASTER, Direction::Credit, won(DEPOSIT_WON)),
        ];
        let fee = self.config.fees.payout;
        if fee > 0 {
            postings.push(leg(BANK_FEES, Direction::Debit, won(fee)));
            postings.push(leg(FEES_PAYABLE, Direction::Credit, won(fee)));
        }
        let id = DepositId::parse(&deposit.id).ok_or_else(|| {
            BankAccountError::Internal(format!("{} is not a deposit id", deposit.id))
        })?;
        let transaction = NewTransaction {
            id: TransactionId::parse(&id.ledger_transaction_id())?,
            postings,
            description: Some("1-won account verification deposit and its payout fee".into()),
            metadata: Some(serde_json::json!({
                "bank_account_id": deposit.bank_account_id,
                "bank_tran_id": deposit.bank_tran_id,
            })),
            balance_limits: Vec::new(),
        };
        self.ledger.post_transaction(transaction).await?;
        Ok(())
    }

    async fn books(&self) -> Result<&HashMap<&'static str, AccountId>, BankAccountError> {
        self.books
            .0
            .get_or_try_init(|| async {
                let mut books = HashMap::new();
                for (code, kind) in [
                    (VERIFICATION_EXPENSE, AccountKind::Expense),
                    (MASTER, AccountKind::Asset),
                    (BANK_FEES, AccountKind::Expense),
                    (FEES_PAYABLE, AccountKind::Liability),
                ] {
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
                    books.insert(code, account.id);
                }
                Ok::<_, BankAccountError>(books)
            })
            .await
    }
}

/// The micro-deposits requested in `[from, to)` (microseconds since the epoch), in id order
/// after `after`, at most `limit` (1 to 1,000): what reconciliation holds against the
/// master account's statement.
pub async fn deposits_requested_between(
    db: &Db,
    from: Micros,
    to: Micros,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<MicroDeposit>, BankAccountError> {
    let rows = store::deposits_requested_between(
        db,
        from,
        to,
        after.unwrap_or_default(),
        limit.clamp(1, 1_000),
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| MicroDeposit {
            id: row.id,
            bank_tran_id: row.bank_tran_id,
            requested_at: row.requested_at,
            succeeded: row.status == "succeeded",
            amount_won: DEPOSIT_WON,
        })
        .collect())
}
