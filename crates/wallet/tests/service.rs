//! The wallet service and the bank transfer executor against a real database (SQLite, or
//! PostgreSQL when `MYPAY_TEST_DATABASE_URL` names a server) and an in-process sandbox bank, on
//! a manual clock: what the HTTP tests cannot reach, such as a request re-run after a crash and
//! transfers nobody can resend any more.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use banking::sandbox::{self, FaultKind, FaultOp, FaultRule, SandboxConfig, SandboxHandle};
use banking::{
    AccountNumber, BankAccount, BankCode, BankFees, BankGateway, DebitConsent, HttpBank,
    HttpBankConfig, InstitutionCode, Memo, PayerNumber, TransferAmount, TransferKind,
};
use ledger::{Ledger, ManualClock, WriterConfig};
use membership::{Email, MemberConfig, MemberId, MemberName, Members, NewMember, Password, Phone};
use money::{Currency, Money};
use testkit::TestDb;
use wallet::bank_transfer::{
    BankTransfers, TransferOrder, TransferState, NOT_RECEIVED, NOT_RECEIVED_AFTER, NOT_SENT,
};
use wallet::{
    ChargeRequest, ChargeSource, FundingAccounts, FundingError, OperationState, RequestKey,
    WalletConfig, Wallets, WithdrawalTarget, ABANDONED_AFTER_MICROS,
};

/// 2026-11-22T00:00:00Z.
const START_MICROS: i64 = 1_795_305_600_000_000;

struct Harness {
    wallets: Wallets,
    members: Arc<Members>,
    ledger: Arc<Ledger>,
    clock: Arc<ManualClock>,
    bank: Arc<dyn BankGateway>,
    sandbox: SandboxHandle,
    db: TestDb,
    _bank_dir: tempfile::TempDir,
}

/// Every member's one account, with a debit consent.
struct OneAccount(BankAccount, PayerNumber);

#[async_trait]
impl FundingAccounts for OneAccount {
    async fn charge_source(
        &self,
        _member: &MemberId,
        _id: Option<&str>,
    ) -> Result<ChargeSource, FundingError> {
        Ok(ChargeSource {
            bank_account_id: "ba_test".into(),
            account: self.0.clone(),
            payer_number: self.1.clone(),
        })
    }

    async fn withdrawal_target(
        &self,
        _member: &MemberId,
        _id: Option<&str>,
    ) -> Result<WithdrawalTarget, FundingError> {
        Err(FundingError::not_found())
    }
}

fn account(number: &str) -> BankAccount {
    BankAccount::new(
        BankCode::parse("004").unwrap(),
        AccountNumber::parse(number).unwrap(),
    )
}

async fn start() -> Harness {
    let db = TestDb::new(8).await;
    let clock = Arc::new(ManualClock::new(START_MICROS));
    let ledger = Arc::new(Ledger::start(
        db.db.clone(),
        clock.clone(),
        WriterConfig::default(),
    ));
    let members = Arc::new(Members::new(
        db.db.clone(),
        ledger.clone(),
        MemberConfig::default(),
    ));
    let bank_dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sandbox = sandbox::spawn(listener, SandboxConfig::new(bank_dir.path()))
        .await
        .unwrap();
    let bank: Arc<dyn BankGateway> = Arc::new(
        HttpBank::new(HttpBankConfig::new(
            sandbox.base_url(),
            InstitutionCode::parse("MYPAYTEST1").unwrap(),
            sandbox.master_account().clone(),
        ))
        .unwrap(),
    );
    open_bank_account(&sandbox, "110000000001", 1_000_000).await;
    let payer = PayerNumber::parse("P1").unwrap();
    bank.register_consent(&DebitConsent {
        payer_number: payer.clone(),
        account: account("110000000001"),
    })
    .await
    .unwrap();
    let wallets = Wallets::new(
        db.db.clone(),
        ledger.clone(),
        members.clone(),
        bank.clone(),
        Arc::new(OneAccount(account("110000000001"), payer)),
        BankFees::default(),
        WalletConfig::default(),
    );
    Harness {
        wallets,
        members,
        ledger,
        clock,
        bank,
        sandbox,
        db,
        _bank_dir: bank_dir,
    }
}

/// Opens an account at the sandbox through its admin API.
async fn open_bank_account(sandbox: &SandboxHandle, number: &str, balance: i64) {
    let status = reqwest::Client::new()
        .post(format!("{}/admin/accounts", sandbox.base_url()))
        .json(&serde_json::json!({
            "bank_code_std": "004", "account_num": number,
            "account_holder_name": "김민수", "balance_amt": balance.to_string(),
        }))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());
}

async fn member(h: &Harness) -> MemberId {
    h.members
        .sign_up(NewMember {
            email: Email::parse("kim@example.com").unwrap(),
            phone: Phone::parse("010-1234-5678").unwrap(),
            name: MemberName::parse("김민수").unwrap(),
            password: Password::parse("correct horse battery".into()).unwrap(),
        })
        .await
        .unwrap()
        .id
}

fn krw(won: i64) -> Money {
    Money::from_minor(won, Currency::KRW)
}

#[tokio::test]
async fn a_request_re_run_with_its_key_lands_on_the_same_charge() {
    let h = start().await;
    let kim = member(&h).await;
    let key = RequestKey {
        scope: kim.to_string(),
        key: "charge-1".into(),
    };
    let request = || ChargeRequest {
        amount: krw(10_000),
        bank_account_id: None,
    };
    let first = h
        .wallets
        .charge(&kim, request(), Some(key.clone()))
        .await
        .unwrap();
    let again = h
        .wallets
        .charge(&kim, request(), Some(key.clone()))
        .await
        .unwrap();
    assert_eq!(
        again.transaction.operation.id,
        first.transaction.operation.id
    );
    assert_eq!(again.balance.posted, krw(10_000));
    let other = ChargeRequest {
        amount: krw(20_000),
        bank_account_id: None,
    };
    let error = h.wallets.charge(&kim, other, Some(key)).await.unwrap_err();
    assert_eq!(error.code(), "idempotency_key_reused");
    assert_eq!(
        h.wallets.balance(&kim, Currency::KRW).await.unwrap().posted,
        krw(10_000)
    );
    let report = ledger::check(&h.db.db).await.unwrap();
    assert!(report.is_ok(), "{report}");
}

#[tokio::test]
async fn a_transfer_nobody_can_resend_fails_as_not_received_only_after_the_window() {
    let h = start().await;
    let amount = TransferAmount::new(5_000).unwrap();
    let executor = BankTransfers::new(
        h.db.db.clone(),
        h.bank.clone(),
        h.ledger.clone(),
        BankFees::default(),
    );
    // Sent once and never received (the bank timed out before executing it).
    h.sandbox
        .faults()
        .replace(vec![
            FaultRule::next(FaultOp::Collect, FaultKind::Timeout, 1).with_hold_ms(100),
            FaultRule::next(FaultOp::Result, FaultKind::Error, 4).with_hold_ms(100),
        ])
        .unwrap();
    let transfer = executor
        .prepare(
            "test",
            "ref-1",
            TransferKind::Collect,
            amount,
            &account("110000000001"),
        )
        .await
        .unwrap();
    let order = TransferOrder::Collect {
        from: account("110000000001"),
        payer_number: PayerNumber::parse("P1").unwrap(),
        memo: Memo::parse("test").unwrap(),
        master_memo: Memo::parse("test").unwrap(),
    };
    let transfer = executor.send(transfer, order).await.unwrap();
    assert_eq!(transfer.state, TransferState::Unknown);
    assert_eq!(transfer.attempts, 1);

    // Another process (a restart) has no request to resend: it only asks, and waits.
    let restarted = BankTransfers::new(
        h.db.db.clone(),
        h.bank.clone(),
        h.ledger.clone(),
        BankFees::default(),
    );
    let transfer = restarted.resolve(transfer).await.unwrap();
    assert_eq!(
        transfer.state,
        TransferState::Unknown,
        "NotFound early is no verdict"
    );
    h.clock
        .advance_micros(NOT_RECEIVED_AFTER.as_micros() as i64 + 1);
    let transfer = restarted.resolve(transfer).await.unwrap();
    assert_eq!(transfer.state, TransferState::Failed);
    assert_eq!(transfer.failure_code.as_deref(), Some(NOT_RECEIVED));
    assert_eq!(transfer.attempts, 1, "never resent");

    // A reference given up before it was sent can never be sent afterwards.
    let abandoned = executor
        .abandon("test", "ref-2", TransferKind::Payout, amount)
        .await
        .unwrap();
    assert_eq!(abandoned.failure_code.as_deref(), Some(NOT_SENT));
    let prepared = executor
        .prepare(
            "test",
            "ref-2",
            TransferKind::Payout,
            amount,
            &account("110000000001"),
        )
        .await
        .unwrap();
    assert_eq!(prepared.id, abandoned.id);
    let order = TransferOrder::Payout {
        to: account("110000000001"),
        memo: Memo::parse("test").unwrap(),
        master_memo: Memo::parse("test").unwrap(),
    };
    let sent = executor.send(prepared, order).await.unwrap();
    assert_eq!(sent.state, TransferState::Failed);
    assert_eq!(sent.attempts, 0);
}

#[tokio::test]
async fn a_transfer_sent_long_after_it_was_prepared_is_judged_from_its_send_and_sent_once() {
    let h = start().await;
    let amount = TransferAmount::new(5_000).unwrap();
    let executor = BankTransfers::new(
        h.db.db.clone(),
        h.bank.clone(),
        h.ledger.clone(),
        BankFees::default(),
    );
    let order = || TransferOrder::Payout {
        to: account("110000000001"),
        memo: Memo::parse("test").unwrap(),
        master_memo: Memo::parse("test").unwrap(),
    };
    let target = account("110000000001");
    let prepare = |reference: &'static str| {
        executor.prepare("test", reference, TransferKind::Payout, amount, &target)
    };
    // Prepared, then sent only after the never-received window (a caller stopped between the
    // two): the request time is the send's, so an early NotFound is no verdict yet.
    let prepared = prepare("late-1").await.unwrap();
    h.clock
        .advance_micros(NOT_RECEIVED_AFTER.as_micros() as i64 + 1);
    h.sandbox
        .faults()
        .replace(vec![
            FaultRule::next(FaultOp::Payout, FaultKind::Timeout, 1).with_hold_ms(100),
            FaultRule::next(FaultOp::Result, FaultKind::Error, 4).with_hold_ms(100),
        ])
        .unwrap();
    let sent = executor.send(prepared.clone(), order()).await.unwrap();
    assert_eq!(sent.state, TransferState::Unknown);
    assert!(
        sent.requested_at > prepared.requested_at,
        "stamped at the send"
    );
    let restarted = BankTransfers::new(
        h.db.db.clone(),
        h.bank.clone(),
        h.ledger.clone(),
        BankFees::default(),
    );
    let sent = restarted.resolve(sent).await.unwrap();
    assert_eq!(
        sent.state,
        TransferState::Unknown,
        "not taken as never received"
    );

    // Two runs sending one prepared transfer at once: the bank is called once.
    h.sandbox.faults().replace(Vec::new()).unwrap();
    let prepared = prepare("twice-1").await.unwrap();
    let (a, b) = tokio::join!(
        executor.send(prepared.clone(), order()),
        executor.send(prepared.clone(), order())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.state, TransferState::Succeeded);
    assert_eq!(b.state, TransferState::Succeeded);
    let stored = executor.get(&a.id).await.unwrap();
    assert_eq!(stored.attempts, 1, "sent once");
}

#[tokio::test]
async fn the_resolver_ends_an_operation_abandoned_before_its_transfer() {
    let h = start().await;
    let kim = member(&h).await;
    // A process recorded a charge and died before recording its bank transfer.
    let id = wallet::MoneyTxId::generate();
    sqlx::query(
        "INSERT INTO wallet_operations (id, member_id, kind, currency, amount, state, \
         member_label, counterparty_label, usage_day, created_at, updated_at) \
         VALUES ($1, $2, 'charge', 'KRW', 10000, 'pending', '김**', '004 ****0001', \
         '20261122', $3, $3)",
    )
    .bind(id.as_str())
    .bind(kim.as_str())
    .bind(START_MICROS)
    .execute(h.db.db.pool())
    .await
    .unwrap();
    let pass = h
        .wallets
        .resolve_pending(Duration::ZERO, 100)
        .await
        .unwrap();
    assert_eq!(
        (pass.examined, pass.finished),
        (1, 0),
        "too young to be abandoned"
    );

    h.clock.advance_micros(ABANDONED_AFTER_MICROS);
    let pass = h
        .wallets
        .resolve_pending(Duration::ZERO, 100)
        .await
        .unwrap();
    assert_eq!((pass.examined, pass.finished), (1, 1));
    let tx = h.wallets.money_tx(&kim, id.as_str()).await.unwrap();
    assert_eq!(tx.operation.state, OperationState::Failed);
    let transfer = h
        .wallets
        .bank_transfers()
        .find(wallet::TRANSFER_OWNER, id.as_str())
        .await
        .unwrap()
        .expect("a failed transfer blocks a late send");
    assert_eq!(transfer.state, TransferState::Failed);
    assert_eq!(transfer.failure_code.as_deref(), Some(NOT_SENT));
    assert_eq!(
        h.wallets
            .resolve_pending(Duration::ZERO, 100)
            .await
            .unwrap()
            .examined,
        0
    );
}

#[tokio::test]
async fn the_resolver_takes_turns_so_one_stuck_operation_cannot_starve_the_rest() {
    let h = start().await;
    let kim = member(&h).await;
    // Three charges left behind before their bank transfers were recorded, too young to be
    // abandoned: each pass can only look at them and move on.
    for age in 0..3 {
        sqlx::query(
            "INSERT INTO wallet_operations (id, member_id, kind, currency, amount, state, \
             member_label, counterparty_label, usage_day, created_at, updated_at) \
             VALUES ($1, $2, 'charge', 'KRW', 10000, 'pending', '김**', '004 ****0001', \
             '20261122', $3, $3)",
        )
        .bind(wallet::MoneyTxId::generate().as_str())
        .bind(kim.as_str())
        .bind(START_MICROS - 10 + age)
        .execute(h.db.db.pool())
        .await
        .unwrap();
    }
    for _ in 0..3 {
        let pass = h.wallets.resolve_pending(Duration::ZERO, 1).await.unwrap();
        assert_eq!((pass.examined, pass.finished), (1, 0));
    }
    let (looked_at,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM wallet_operations WHERE state = 'pending' AND updated_at = $1",
    )
    .bind(START_MICROS)
    .fetch_one(h.db.db.pool())
    .await
    .unwrap();
    assert_eq!(
        looked_at, 3,
        "each pass took the one looked at least recently"
    );
}
