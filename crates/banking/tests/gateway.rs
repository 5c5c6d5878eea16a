//! The `HttpBank` adapter against a real sandbox bank on a loopback port: every gateway call,
//! the refusals, idempotency by `bank_tran_id`, statements, and persistence across restarts.

mod common;

use std::sync::Arc;
use std::time::Duration;

use banking::sandbox::SandboxError;
use banking::{
    BankError, BankGateway, DebitConsent, EntryDirection, HttpBank, HttpBankConfig, InquiryOutcome,
    InstitutionCode, RealNameOutcome, RefusalCode, TransferKind, TransferOutcome, TransferQuery,
};
use common::{account, amount, payer, start_sandbox, Bank, INSTITUTION};
use time::OffsetDateTime;

fn succeeded(outcome: &TransferOutcome) -> OffsetDateTime {
    match outcome {
        TransferOutcome::Succeeded { executed_at, .. } => *executed_at,
        other => panic!("expected success, got {other:?}"),
    }
}

fn refused(outcome: &TransferOutcome) -> RefusalCode {
    match outcome {
        TransferOutcome::Failed { code, .. } => *code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn real_name_inquiry_finds_the_holder_or_nothing() {
    let bank = Bank::start().await;
    let member = bank.open("004", "110-123-456789", "홍길동", 0).await;
    match bank.gateway.real_name(&member).await.unwrap() {
        RealNameOutcome::Found { holder_name } => assert_eq!(holder_name.expose(), "홍길동"),
        other => panic!("{other:?}"),
    }
    let unknown = account("004", "999999999");
    assert_eq!(
        bank.gateway.real_name(&unknown).await.unwrap(),
        RealNameOutcome::NotFound
    );
    // The same number at another bank is another account.
    assert_eq!(
        bank.gateway
            .real_name(&account("088", "110123456789"))
            .await
            .unwrap(),
        RealNameOutcome::NotFound
    );
}

#[tokio::test]
async fn collect_needs_an_active_consent_for_that_account() {
    let bank = Bank::start().await;
    let member = bank.open("004", "110123456789", "홍길동", 50_000).await;
    let master_before = bank.master_balance().await;

    let without = bank
        .gateway
        .collect(&bank.collect_request(&member, "PAYER1", 10_000))
        .await;
    assert_eq!(refused(&without), RefusalCode::ConsentMissing);

    let consent = DebitConsent {
        payer_number: payer("PAYER1"),
        account: member.clone(),
    };
    bank.gateway.register_consent(&consent).await.unwrap();
    // Registering again is a no-op; the same payer number for another account is refused.
    bank.gateway.register_consent(&consent).await.unwrap();
    let other = bank.open("004", "220000000001", "김철수", 0).await;
    let conflict = bank
        .gateway
        .register_consent(&DebitConsent {
            payer_number: payer("PAYER1"),
            account: other.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(conflict.code(), "consent_conflict");
    // A consent for an account that does not exist cannot be registered.
    let missing = bank
        .gateway
        .register_consent(&DebitConsent {
            payer_number: payer("PAYER9"),
            account: account("004", "777777777"),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), "account_not_found");

    // A consent covers only its own account.
    let elsewhere = bank
        .gateway
        .collect(&bank.collect_request(&other, "PAYER1", 1_000))
        .await;
    assert_eq!(refused(&elsewhere), RefusalCode::ConsentMissing);

    let charge = bank
        .gateway
        .collect(&bank.collect_request(&member, "PAYER1", 10_000))
        .await;
    succeeded(&charge);
    assert_eq!(bank.balance(&member).await, 40_000);
    assert_eq!(bank.master_balance().await, master_before + 10_000);
    let lines = bank.transactions(&member).await;
    assert_eq!(lines[0]["inout_type"], "출금");
    assert_eq!(lines[0]["print_content"], "마이페이 충전");
    assert_eq!(lines[0]["after_balance_amt"], "40000");

    bank.gateway.revoke_consent(&payer("PAYER1")).await.unwrap();
    bank.gateway.revoke_consent(&payer("PAYER1")).await.unwrap();
    let revoked = bank
        .gateway
        .collect(&bank.collect_request(&member, "PAYER1", 1_000))
        .await;
    assert_eq!(refused(&revoked), RefusalCode::ConsentMissing);
    let never = bank
        .gateway
        .revoke_consent(&payer("NOBODY"))
        .await
        .unwrap_err();
    assert_eq!(never.code(), "consent_missing");
    // Registering again after a revocation restores the consent.
    bank.gateway.register_consent(&consent).await.unwrap();
    succeeded(
        &bank
            .gateway
            .collect(&bank.collect_request(&member, "PAYER1", 1_000))
            .await,
    );
    assert_eq!(bank.balance(&member).await, 39_000);
}

#[tokio::test]
async fn collect_refuses_what_the_account_does_not_hold() {
    let bank = Bank::start().await;
    let member = bank
        .open_with_consent("110123456789", 5_000, "PAYER1")
        .await;
    let master_before = bank.master_balance().await;
    let outcome = bank
        .gateway
        .collect(&bank.collect_request(&member, "PAYER1", 5_001))
        .await;
    assert_eq!(refused(&outcome), RefusalCode::InsufficientFunds);
    assert_eq!(bank.balance(&member).await, 5_000);
    assert_eq!(bank.master_balance().await, master_before);
    succeeded(
        &bank
            .gateway
            .collect(&bank.collect_request(&member, "PAYER1", 5_000))
            .await,
    );
    assert_eq!(bank.balance(&member).await, 0);
}

#[tokio::test]
async fn payout_deposits_into_any_account_and_prints_the_memo() {
    let bank = Bank::start().await;
    let member = bank.open("090", "3333-01-2345678", "홍길동", 0).await;
    let master_before = bank.master_balance().await;

    // A micro-deposit: 1 won whose memo carries the code the member types back.
    let request = bank.payout_request(&member, 1, "마이페이 4821");
    let outcome = bank.gateway.payout(&request).await;
    match &outcome {
        TransferOutcome::Succeeded {
            bank_tran_id,
            amount: moved,
            ..
        } => {
            assert_eq!(bank_tran_id, &request.bank_tran_id);
            assert_eq!(*moved, amount(1));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(bank.balance(&member).await, 1);
    assert_eq!(bank.master_balance().await, master_before - 1);
    let lines = bank.transactions(&member).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["print_content"], "마이페이 4821");
    assert_eq!(lines[0]["inout_type"], "입금");
    assert_eq!(lines[0]["bank_tran_id"], request.bank_tran_id.as_str());

    let unknown = bank
        .gateway
        .payout(&bank.payout_request(&account("090", "99999999"), 1, "x"))
        .await;
    assert_eq!(refused(&unknown), RefusalCode::AccountNotFound);

    let too_much = bank
        .gateway
        .payout(&bank.payout_request(&member, master_before, "x"))
        .await;
    assert_eq!(refused(&too_much), RefusalCode::InsufficientFunds);
    assert_eq!(bank.master_balance().await, master_before - 1);
}

#[tokio::test]
async fn the_same_bank_tran_id_executes_once() {
    let bank = Bank::start().await;
    let member = bank
        .open_with_consent("110123456789", 30_000, "PAYER1")
        .await;
    let master_before = bank.master_balance().await;

    let request = bank.collect_request(&member, "PAYER1", 10_000);
    let first = bank.gateway.collect(&request).await;
    let again = bank.gateway.collect(&request).await;
    assert_eq!(first, again, "a replay answers with the recorded result");
    assert_eq!(bank.balance(&member).await, 20_000);
    assert_eq!(bank.master_balance().await, master_before + 10_000);

    // The same id for a different transfer is refused and changes nothing.
    let mut different = request.clone();
    different.amount = amount(10_001);
    let duplicate = bank.gateway.collect(&different).await;
    assert_eq!(refused(&duplicate), RefusalCode::DuplicateBankTranId);
    assert_eq!(bank.balance(&member).await, 20_000);

    // A refusal is recorded too: the same id stays refused after the balance is topped up.
    let big = bank.collect_request(&member, "PAYER1", 25_000);
    assert_eq!(
        refused(&bank.gateway.collect(&big).await),
        RefusalCode::InsufficientFunds
    );
    let deposit = bank
        .admin
        .post(bank.url("/admin/accounts/004/110123456789/deposits"))
        .json(&serde_json::json!({"tran_amt": "10000", "print_content": "월급"}))
        .send()
        .await
        .unwrap();
    assert_eq!(deposit.status(), 201);
    assert_eq!(
        refused(&bank.gateway.collect(&big).await),
        RefusalCode::InsufficientFunds
    );
    assert_eq!(bank.balance(&member).await, 30_000);

    // Many concurrent copies of one new request still move the money once.
    let gateway = Arc::new(common::adapter(&bank.sandbox, Duration::from_secs(10)));
    let request = bank.collect_request(&member, "PAYER1", 1_000);
    let copies = (0..8).map(|_| {
        let gateway = gateway.clone();
        let request = request.clone();
        tokio::spawn(async move { gateway.collect(&request).await })
    });
    let mut outcomes = Vec::new();
    for copy in copies {
        outcomes.push(copy.await.unwrap());
    }
    assert!(outcomes.iter().all(|o| o == &outcomes[0]), "{outcomes:?}");
    succeeded(&outcomes[0]);
    assert_eq!(bank.balance(&member).await, 29_000);
}

#[tokio::test]
async fn transfer_result_reports_success_refusal_or_nothing() {
    let bank = Bank::start().await;
    let member = bank
        .open_with_consent("110123456789", 10_000, "PAYER1")
        .await;

    let request = bank.collect_request(&member, "PAYER1", 4_000);
    let executed_at = succeeded(&bank.gateway.collect(&request).await);
    let query = TransferQuery {
        kind: TransferKind::Collect,
        bank_tran_id: request.bank_tran_id.clone(),
        requested_at: request.requested_at,
        amount: request.amount,
    };
    assert_eq!(
        bank.gateway.transfer_result(&query).await.unwrap(),
        InquiryOutcome::Succeeded {
            bank_tran_id: request.bank_tran_id.clone(),
            amount: amount(4_000),
            executed_at,
        }
    );

    let refused_request = bank.collect_request(&member, "PAYER1", 1_000_000);
    bank.gateway.collect(&refused_request).await;
    let outcome = bank
        .gateway
        .transfer_result(&TransferQuery {
            kind: TransferKind::Collect,
            bank_tran_id: refused_request.bank_tran_id.clone(),
            requested_at: refused_request.requested_at,
            amount: refused_request.amount,
        })
        .await
        .unwrap();
    assert!(
        matches!(
            outcome,
            InquiryOutcome::Failed {
                code: RefusalCode::InsufficientFunds,
                ..
            }
        ),
        "{outcome:?}"
    );

    let never_sent = TransferQuery {
        bank_tran_id: bank.gateway.next_tran_id(),
        ..query.clone()
    };
    assert_eq!(
        bank.gateway.transfer_result(&never_sent).await.unwrap(),
        InquiryOutcome::NotFound
    );

    // The key includes the bank day of the request: a day later, the id names nothing.
    let next_day = TransferQuery {
        requested_at: query.requested_at + time::Duration::days(1),
        ..query.clone()
    };
    assert_eq!(
        bank.gateway.transfer_result(&next_day).await.unwrap(),
        InquiryOutcome::NotFound
    );

    // An inquiry that does not match the record (kind or amount) is refused, not answered.
    let wrong_amount = TransferQuery {
        amount: amount(4_001),
        ..query.clone()
    };
    let error = bank
        .gateway
        .transfer_result(&wrong_amount)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "original_mismatch");
    let wrong_kind = TransferQuery {
        kind: TransferKind::Payout,
        ..query
    };
    assert_eq!(
        bank.gateway
            .transfer_result(&wrong_kind)
            .await
            .unwrap_err()
            .code(),
        "original_mismatch"
    );
}

#[tokio::test]
async fn the_statement_lists_the_days_moves_page_by_page() {
    let bank = Bank::start_with(|config| config.statement_page_size = 2).await;
    let member = bank
        .open_with_consent("110123456789", 100_000, "PAYER1")
        .await;
    let master_opening = bank.master_balance().await;

    let collect = bank.collect_request(&member, "PAYER1", 30_000);
    let day = banking::kst::bank_date(succeeded(&bank.gateway.collect(&collect).await));
    let payout = bank.payout_request(&member, 5_000, "환불");
    succeeded(&bank.gateway.payout(&payout).await);
    let second = bank.collect_request(&member, "PAYER1", 7_000);
    succeeded(&bank.gateway.collect(&second).await);
    // A refused transfer moves nothing and leaves no line.
    bank.gateway
        .collect(&bank.collect_request(&member, "PAYER1", 10_000_000))
        .await;

    let mut entries = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = bank.gateway.statement(day, cursor.as_ref()).await.unwrap();
        pages += 1;
        assert!(page.entries.len() <= 2);
        entries.extend(page.entries);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 10, "the statement does not end");
    }
    assert_eq!(pages, 2);
    let summary: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e.direction,
                e.amount_won,
                e.balance_after_won,
                e.bank_tran_id.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                EntryDirection::Deposit,
                30_000,
                master_opening + 30_000,
                Some(collect.bank_tran_id.clone())
            ),
            (
                EntryDirection::Withdrawal,
                5_000,
                master_opening + 25_000,
                Some(payout.bank_tran_id.clone())
            ),
            (
                EntryDirection::Deposit,
                7_000,
                master_opening + 32_000,
                Some(second.bank_tran_id.clone())
            ),
        ]
    );
    assert_eq!(entries[0].memo, "충전 홍길동");
    assert!(entries.iter().all(|e| banking::kst::bank_date(e.at) == day));

    // Another day has no lines.
    let yesterday = day.previous_day().unwrap();
    let empty = bank.gateway.statement(yesterday, None).await.unwrap();
    assert!(empty.entries.is_empty() && empty.next.is_none());
    // Every page says what the account holds now.
    assert_eq!(empty.balance_won, Some(master_opening + 32_000));
}

#[tokio::test]
async fn balances_and_records_survive_a_restart_on_the_same_directory() {
    let dir = tempfile::tempdir().unwrap();
    let bank = Bank::on(start_sandbox(dir.path(), |_| {}).await);
    let member = bank
        .open_with_consent("110123456789", 20_000, "PAYER1")
        .await;
    let request = bank.collect_request(&member, "PAYER1", 8_000);
    let first = bank.gateway.collect(&request).await;
    succeeded(&first);
    let master = bank.master_balance().await;
    bank.sandbox.shutdown().await;

    let bank = Bank::on(start_sandbox(dir.path(), |_| {}).await);
    assert_eq!(bank.balance(&member).await, 12_000);
    assert_eq!(bank.master_balance().await, master);
    // The record of the transfer survived too: a replay does not move money again.
    assert_eq!(bank.gateway.collect(&request).await, first);
    assert_eq!(bank.balance(&member).await, 12_000);
    // And so did the consent.
    succeeded(
        &bank
            .gateway
            .collect(&bank.collect_request(&member, "PAYER1", 2_000))
            .await,
    );
    assert_eq!(bank.balance(&member).await, 10_000);
    bank.sandbox.shutdown().await;

    // The directory belongs to this master account.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = banking::sandbox::SandboxConfig::new(dir.path());
    config.master = account("088", "999000999000");
    let error = banking::sandbox::spawn(listener, config).await.unwrap_err();
    assert!(matches!(error, SandboxError::MasterMismatch), "{error}");
}

#[tokio::test]
async fn an_unreachable_bank_is_a_plain_failure_and_an_unavailable_inquiry() {
    // A port that nothing listens on: the connection is refused before any byte is sent.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let gateway = HttpBank::new(HttpBankConfig::new(
        &format!("http://{address}"),
        InstitutionCode::parse(INSTITUTION).unwrap(),
        account("088", "100200300400"),
    ))
    .unwrap();
    let request = banking::PayoutRequest {
        bank_tran_id: gateway.next_tran_id(),
        requested_at: OffsetDateTime::now_utc(),
        to: account("004", "110123456789"),
        amount: amount(1),
        memo: common::memo("x"),
        master_memo: common::memo("x"),
    };
    let outcome = gateway.payout(&request).await;
    assert!(
        matches!(
            outcome,
            TransferOutcome::Failed {
                code: RefusalCode::BankUnreachable,
                ..
            }
        ),
        "{outcome:?}"
    );
    let error = gateway.real_name(&request.to).await.unwrap_err();
    assert!(matches!(error, BankError::Unavailable { .. }), "{error:?}");
    assert!(RefusalCode::BankUnreachable.is_transient());
}

#[tokio::test]
async fn the_gateway_works_behind_a_trait_object() {
    let bank = Bank::start().await;
    let member = bank.open("004", "110123456789", "홍길동", 0).await;
    let gateway: Arc<dyn BankGateway> =
        Arc::new(common::adapter(&bank.sandbox, Duration::from_secs(5)));
    let id = gateway.next_tran_id();
    assert!(id.as_str().starts_with("M202600001U"));
    assert!(matches!(
        gateway.real_name(&member).await.unwrap(),
        RealNameOutcome::Found { .. }
    ));
}
