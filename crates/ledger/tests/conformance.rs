//! The ledger's conformance suite: every public method, run against whichever backend
//! `MYPAY_TEST_DATABASE_URL` selects (SQLite by default, PostgreSQL in CI's second pass).

mod common;

use std::sync::Arc;

use common::{new_account, start, Harness};
use ledger::{
    AccountCode, AccountKind, BalanceLimit, Clock, Direction, HoldId, HoldState, ManualClock,
    NewHold, NewTransaction, PostHold, PostingSpec, SystemClock, TransactionId,
};
use money::{Currency, Money};

fn krw(minor: i64) -> Money {
    Money::from_minor(minor, Currency::KRW)
}

async fn system() -> Harness {
    start(Arc::new(SystemClock)).await
}

#[tokio::test]
async fn accounts_are_created_once_per_code() {
    let h = system().await;
    let first = h.wallet("liability:member:1:money", Currency::KRW).await;
    let again = h.wallet("liability:member:1:money", Currency::KRW).await;
    assert_eq!(
        first.id, again.id,
        "the same definition returns the stored account"
    );
    let different = h
        .ledger
        .create_account(new_account(
            "liability:member:1:money",
            AccountKind::Liability,
            Currency::USD,
            true,
        ))
        .await
        .unwrap_err();
    assert_eq!(different.code(), "exists_with_different_content");

    let by_id = h.ledger.account(first.id.as_str()).await.unwrap();
    assert_eq!(by_id.code.as_str(), "liability:member:1:money");
    assert_eq!(by_id.kind, AccountKind::Liability);
    let by_code = h
        .ledger
        .account_by_code(&AccountCode::parse("liability:member:1:money").unwrap())
        .await
        .unwrap();
    assert_eq!(by_code.id, first.id);
    assert_eq!(
        h.ledger.account("acc_missing").await.unwrap_err().code(),
        "account_not_found"
    );
}

#[tokio::test]
async fn accounts_are_listed_page_by_page() {
    let h = system().await;
    for i in 0..5 {
        h.wallet(&format!("w:{i}"), Currency::KRW).await;
    }
    let first = h.ledger.list_accounts(None, 2).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let second = h
        .ledger
        .list_accounts(first.next.as_deref(), 2)
        .await
        .unwrap();
    let third = h
        .ledger
        .list_accounts(second.next.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(third.items.len(), 1);
    assert_eq!(third.next, None);
    let mut codes: Vec<_> = [first, second, third]
        .into_iter()
        .flat_map(|p| p.items)
        .map(|a| a.code.as_str().to_owned())
        .collect();
    codes.sort();
    assert_eq!(codes, ["w:0", "w:1", "w:2", "w:3", "w:4"]);
}

#[tokio::test]
async fn accounts_are_found_by_exact_code_prefix_page_by_page() {
    let h = system().await;
    let mine = [
        "liability:member:usr_A1:money:KRW",
        "liability:member:usr_A1:points:KRW",
        "liability:member:usr_A1:money:USD",
    ];
    // Near misses: a longer id, another case, `_` and `%` read as wildcards would match these.
    let others = [
        "liability:member:usr_A12:money:KRW",
        "liability:member:usr_a1:money:KRW",
        "liability:member:usrXA1:money:KRW",
        "liability:member:usr_A1",
    ];
    for code in mine.iter().chain(others.iter()) {
        h.wallet(code, Currency::KRW).await;
    }
    let prefix = "liability:member:usr_A1:";
    let first = h
        .ledger
        .accounts_by_code_prefix(prefix, None, 2)
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let second = h
        .ledger
        .accounts_by_code_prefix(prefix, first.next.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(second.next, None);
    let mut found: Vec<_> = first
        .items
        .iter()
        .chain(second.items.iter())
        .map(|a| a.code.as_str().to_owned())
        .collect();
    found.sort();
    let mut expected = mine.map(str::to_owned).to_vec();
    expected.sort();
    assert_eq!(found, expected);

    let none = h
        .ledger
        .accounts_by_code_prefix("liability:member:usr_B:", None, 10)
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.next.is_none());
    for bad in ["", "has space", &"x".repeat(129)] {
        let error = h
            .ledger
            .accounts_by_code_prefix(bad, None, 10)
            .await
            .unwrap_err();
        assert_eq!(error.code(), "invalid_request", "{bad:?}");
    }
}

#[tokio::test]
async fn a_transfer_moves_money_and_records_running_balances() {
    let h = system().await;
    let bank = h.bank("asset:bank:master", Currency::KRW).await;
    let alice = h.wallet("alice", Currency::KRW).await;
    let bob = h.wallet("bob", Currency::KRW).await;
    h.fund("fund-alice", &bank, &alice, 50_000).await;
    let tx = h.transfer("a-to-b", &alice, &bob, 15_000).await.unwrap();
    assert!(!tx.replayed);
    assert_eq!(tx.value.postings.len(), 2);
    assert_eq!(tx.value.postings[0].balance_after, krw(35_000));
    assert_eq!(tx.value.postings[1].balance_after, krw(15_000));

    assert_eq!(h.posted(&alice).await, 35_000);
    assert_eq!(h.posted(&bob).await, 15_000);
    assert_eq!(
        h.posted(&bank).await,
        50_000,
        "the bank asset grew by what was funded"
    );

    let stored = h.ledger.transaction("a-to-b").await.unwrap();
    assert_eq!(stored.postings, tx.value.postings);
    assert_eq!(
        h.ledger.transaction("nope").await.unwrap_err().code(),
        "transaction_not_found"
    );
    h.assert_invariants().await;
}

#[tokio::test]
async fn resubmitting_a_transaction_is_a_replay_and_other_content_is_refused() {
    let h = system().await;
    let bank = h.bank("bank", Currency::KRW).await;
    let alice = h.wallet("alice", Currency::KRW).await;
    let first = h.transfer("t-1", &bank, &alice, 1_000).await.unwrap();
    let again = h.transfer("t-1", &bank, &alice, 1_000).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.value, first.value);
    assert_eq!(h.posted(&alice).await, 1_000, "a replay moves nothing");
    let other = h.transfer("t-1", &bank, &alice, 2_000).await.unwrap_err();
    assert_eq!(other.code(), "exists_with_different_content");
    assert_eq!(h.posted(&alice).await, 1_000);

    // A resubmission is answered from the record even when the state no longer allows the
    // transfer: a retry after a lost reply must not read as "insufficient funds".
    let bob = h.wallet("bob", Currency::KRW).await;
    let all = h.transfer("t-all", &alice, &bob, 1_000).await.unwrap();
    let retry = h.transfer("t-all", &alice, &bob, 1_000).await.unwrap();
    assert!(retry.replayed);
    assert_eq!(retry.value, all.value);
    assert_eq!(h.posted(&alice).await, 0);
}

#[tokio::test]
async fn rejected_transfers_change_nothing() {
    let h = system().await;
    let bank = h.bank("bank", Currency::KRW).await;
    let usd = h.wallet("usd-wallet", Currency::USD).await;
    let alice = h.wallet("alice", Currency::KRW).await;
    let bob = h.wallet("bob", Currency::KRW).await;
    h.fund("f", &bank, &alice, 100).await;

    let short = h.transfer("too-much", &alice, &bob, 101).await.unwrap_err();
    assert_eq!(short.code(), "insufficient_funds");
    let crossed = h
        .ledger
        .post_transaction(NewTransaction::transfer(
            TransactionId::parse("crossed").unwrap(),
            alice.id.clone(),
            usd.id.clone(),
            krw(10),
        ))
        .await
        .unwrap_err();
    assert_eq!(crossed.code(), "currency_mismatch");
    let unbalanced = h
        .ledger
        .post_transaction(NewTransaction {
            id: TransactionId::parse("unbalanced").unwrap(),
            postings: vec![
                PostingSpec {
                    account_id: alice.id.clone(),
                    direction: Direction::Debit,
                    amount: krw(10),
                },
                PostingSpec {
                    account_id: bob.id.clone(),
                    direction: Direction::Credit,
                    amount: krw(9),
                },
            ],
            description: None,
            metadata: None,
            balance_limits: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(unbalanced.code(), "unbalanced_transaction");
    let missing = h
        .ledger
        .post_transaction(NewTransaction::transfer(
            TransactionId::parse("missing").unwrap(),
            alice.id.clone(),
            ledger::AccountId::parse("acc_nope").unwrap(),
            krw(1),
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), "account_not_found");

    assert_eq!(h.posted(&alice).await, 100);
    assert_eq!(h.posted(&bob).await, 0);
    for id in ["too-much", "crossed", "unbalanced", "missing"] {
        assert_eq!(
            h.ledger.transaction(id).await.unwrap_err().code(),
            "transaction_not_found"
        );
    }
    h.assert_invariants().await;
}

#[tokio::test]
async fn one_rejected_transfer_never_fails_its_batch_mates() {
    let h = system().await;
    let bank = h.bank("bank", Currency::KRW).await;
    let rich = h.wallet("rich", Currency::KRW).await;
    let poor = h.wallet("poor", Currency::KRW).await;
    let sink = h.wallet("sink", Currency::KRW).await;
    h.fund("f", &bank, &rich, 1_000_000).await;
    let h = Arc::new(h);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let h = h.clone();
        let (rich, poor, sink) = (rich.clone(), poor.clone(), sink.clone());
        tasks.push(tokio::spawn(async move {
            let from = if i % 2 == 0 { &rich } else { &poor };
            h.transfer(&format!("t{i}"), from, &sink, 10).await
        }));
    }
    let mut accepted = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(_) => {
                assert_eq!(i % 2, 0);
                accepted += 1;
            }
            Err(e) => {
                assert_eq!(i % 2, 1);
                assert_eq!(e.code(), "insufficient_funds");
            }
        }
    }
    assert_eq!(accepted, 32);
    assert_eq!(h.posted(&sink).await, 320);
    h.assert_invariants().await;
}

#[tokio::test]
async fn multi_currency_transactions_balance_per_currency() {
    let h = system().await;
    let krw_bank = h.bank("bank:krw", Currency::KRW).await;
    let usd_bank = h.bank("bank:usd", Currency::USD).await;
    let krw_wallet = h.wallet("w:krw", Currency::KRW).await;
    let usd_wallet = h.wallet("w:usd", Currency::USD).await;
    let tx = NewTransaction {
        id: TransactionId::parse("fx").unwrap(),
        postings: vec![
            PostingSpec {
                account_id: krw_bank.id.clone(),
                direction: Direction::Debit,
                amount: krw(13_000),
            },
            PostingSpec {
                account_id: krw_wallet.id.clone(),
                direction: Direction::Credit,
                amount: krw(13_000),
            },
            PostingSpec {
                account_id: usd_bank.id.clone(),
                direction: Direction::Debit,
                amount: Money::from_minor(1_000, Currency::USD),
            },
            PostingSpec {
                account_id: usd_wallet.id.clone(),
                direction: Direction::Credit,
                amount: Money::from_minor(1_000, Currency::USD),
            },
        ],
        description: Some("opening balances".into()),
        metadata: Some(serde_json::json!({"source": "test"})),
        balance_limits: Vec::new(),
    };
    let stored = h.ledger.post_transaction(tx).await.unwrap().value;
    assert_eq!(stored.postings.len(), 4);
    assert_eq!(stored.metadata, Some(serde_json::json!({"source": "test"})));
    assert_eq!(h.posted(&usd_wallet).await, 1_000);
    assert_eq!(h.posted(&krw_wallet).await, 13_000);
    h.assert_invariants().await;
}

fn hold(
    id: &str,
    from: &ledger::Account,
    to: &ledger::Account,
    minor: i64,
    expires_at: Option<i64>,
) -> NewHold {
    NewHold {
        id: HoldId::parse(id).unwrap(),
        debit_account_id: from.id.clone(),
        credit_account_id: to.id.clone(),
        amount: Money::from_minor(minor, from.currency),
        expires_at,
        metadata: None,
        balance_limits: Vec::new(),
    }
}

#[tokio::test]
async fn holds_reserve_then_post_partially_releasing_the_rest() {
    let h = system().await;
    let bank = h.bank("bank", Currency::KRW).await;
    let alice = h.wallet("alice", Currency::KRW).await;
    let merchant = h.wallet("merchant", Currency::KRW).await;
    h.fund("f", &bank, &alice, 10_000).await;

    let reserved = h
        .ledger
        .reserve_hold(hold("h1", &alice, &merchant, 7_000, None))
        .await
        .unwrap();
    assert_eq!(reserved.value.state, HoldState::Pending);
    let balance = h.ledger.balance(alice.id.as_str()).await.unwrap();
    assert_eq!(
        (
            balance.posted.minor(),
            balance.held.minor(),
            balance.available.minor()
        ),
        (10_000, 7_000, 3_000)
    );
    assert_eq!(
        h.ledger
            .balance(merchant.id.as_str())
            .await
            .unwrap()
            .incoming
            .minor(),
        7_000
    );

    let over = h
        .ledger
        .reserve_hold(hold("h2", &alice, &merchant, 3_001, None))
        .await
        .unwrap_err();
    assert_eq!(
        over.code(),
        "insufficient_funds",
        "holds count against the available balance"
    );
    let spend = h
        .transfer("spend", &alice, &merchant, 3_001)
        .await
        .unwrap_err();
    assert_eq!(
        spend.code(),
        "insufficient_funds",
        "transfers cannot spend held funds"
    );

    let post = PostHold {
        hold_id: HoldId::parse("h1").unwrap(),
        amount: Some(5_000),
        transaction_id: None,
    };
    let posted = h.ledger.post_hold(post.clone()).await.unwrap();
    assert!(!posted.replayed);
    let (resolved, tx) = posted.value;
    assert_eq!(resolved.state, HoldState::Posted);
    assert_eq!(resolved.posted_amount, krw(5_000));
    assert_eq!(tx.id.as_str(), "h1.post");
    let balance = h.ledger.balance(alice.id.as_str()).await.unwrap();
    assert_eq!(
        (
            balance.posted.minor(),
            balance.held.minor(),
            balance.available.minor()
        ),
        (5_000, 0, 5_000)
    );
    assert_eq!(h.posted(&merchant).await, 5_000);

    let replay = h.ledger.post_hold(post).await.unwrap();
    assert!(replay.replayed);
    assert_eq!(
        h.posted(&merchant).await,
        5_000,
        "posting twice moves money once"
    );
    let different = h
        .ledger
        .post_hold(PostHold {
            hold_id: HoldId::parse("h1").unwrap(),
            amount: Some(4_000),
            transaction_id: None,
        })
        .await
        .unwrap_err();
    assert_eq!(different.code(), "hold_already_posted");
    assert_eq!(
        h.ledger
            .void_hold(HoldId::parse("h1").unwrap())
            .await
            .unwrap_err()
            .code(),
        "hold_already_posted"
    );
    assert_eq!(h.ledger.hold("h1").await.unwrap().state, HoldState::Posted);
    h.assert_invariants().await;
}

#[tokio::test]
async fn holds_can_be_voided_once_and_not_posted_beyond_their_amount() {
    let h = system().await;
    let bank = h.bank("bank", Currency::KRW).await;
    let alice = h.wallet("alice", Currency::KRW).await;
    let bob = h.wallet("bob", Currency::KRW).await;
    h.fund("f", &bank, &alice, 1_000).await;
    h.ledger
        .reserve_hold(hold("h", &alice, &bob, 600, None))
        .await
        .unwrap();
    let too_much = h
        .ledger
        .post_hold(PostHold {
            hold_id: HoldId::parse("h").unwrap(),
            amount: Some(601),
            transaction_id: None,
        })
        .await
        .unwrap_err();
    assert_eq!(too_much.code(), "exceeds_hold_amount");
    let voided = h
        .ledger
        .void_hold(HoldId::parse("h").unwrap())
        .await
        .unwrap();
    assert_eq!(voided.value.state, HoldState::Voided);
    assert!(
        h.ledger
            .void_hold(HoldId::parse("h").unwrap())
            .await
            .unwrap()
            .replayed
    );
    assert_eq!(h.available(&alice).await, 1_000);
    let post = h
        .ledger
        .post_hold(PostHold {
            hold_id: HoldId::parse("h").unwrap(),
            amount: None,
            transaction_id: None,
        })
        .await
        .unwrap_err();
    assert_eq!(post.code(), "hold_already_voided");
    let reuse = h
        .ledger
        .reserve_hold(hold("h", &alice, &bob, 700, None))
        .await
        .unwrap_err();
    assert_eq!(reuse.code(), "exists_with_different_content");
    let same = h
        .ledger
        .reserve_hold(hold("h", &alice, &bob, 600, None))
        .await
        .unwrap();
    assert!(same.replayed);
    assert_eq!(
        same.value.state,
        HoldState::Voided,
        "a replay reports the hold as it is now"
    );
    let missing = h
        .ledger
        .void_hold(HoldId::parse("none").unwrap())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), "hold_not_found");
    let same_account = h
        .ledger
        .reserve_hold(hold("self", &alice, &alice, 1, None))
        .await
        .unwrap_err();
    assert_eq!(same_account.code(), "accounts_must_differ");
    h.assert_invariants().await;
}

#[tokio::test]
async fn holds_expire_when_the_clock_passes_their_expiry() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000_000));
    let h = start(clock.clone()).await;
    let bank = h.bank("bank", Currency::KRW).await;
    let alice = h.wallet("alice", Currency::KRW).await;
    let bob = h.wallet("bob", Currency::KRW).await;
    h.fund("f", &bank, &alice, 1_000).await;
    let now = clock.now_micros();
    h.ledger
        .reserve_hold(hold("soon", &alice, &bob, 400, Some(now + 60_000_000)))
        .await
        .unwrap();
    let past = h
        .ledger
        .reserve_hold(hold("past", &alice, &bob, 1, Some(now - 1)))
        .await
        .unwrap_err();
    assert_eq!(past.code(), "invalid_request");
    assert_eq!(
        h.ledger.expire_due_holds(100).await.unwrap(),
        0,
        "nothing is due yet"
    );
    assert_eq!(h.available(&alice).await, 600);

    clock.advance_micros(60_000_001);
    let late = h
        .ledger
        .post_hold(PostHold {
            hold_id: HoldId::parse("soon").unwrap(),
            amount: None,
            transaction_id: None,
        })
        .await
        .unwrap_err();
    assert_eq!(late.code(), "hold_expired");
    assert_eq!(h.ledger.expire_due_holds(100).await.unwrap(), 1);
    assert_eq!(
        h.ledger.hold("soon").await.unwrap().state,
        HoldState::Expired
    );
    assert_eq!(h.available(&alice).await, 1_000);
    assert_eq!(h.ledger.expire_due_holds(100).await.unwrap(), 0);
    h.assert_invariants().await;
}

#[tokio::test]
async fn balances_are_readable_at_any_past_instant() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000_000));
    let h = start(clock.clone()).await;
    let bank = h.bank("bank", Currency::KRW).await;
    let alice = h.wallet("alice", Currency::KRW).await;
    let t0 = clock.now_micros();
    h.fund("f1", &bank, &alice, 1_000).await;
    clock.advance_micros(1_000_000);
    let t1 = clock.now_micros();
    h.fund("f2", &bank, &alice, 500).await;
    clock.advance_micros(1_000_000);
    h.transfer("spend", &alice, &bank, 300).await.unwrap();
    let at = |t| h.ledger.balance_at(alice.id.as_str(), t);
    assert_eq!(at(t0 - 1).await.unwrap().minor(), 0);
    assert_eq!(at(t0).await.unwrap().minor(), 1_000);
    assert_eq!(at(t1 - 1).await.unwrap().minor(), 1_000);
    assert_eq!(at(t1).await.unwrap().minor(), 1_500);
    assert_eq!(at(t1 + 1_000_000).await.unwrap().minor(), 1_200);
    assert_eq!(at(i64::MAX).await.unwrap().minor(), 1_200);
}

#[tokio::test]
async fn balances_of_a_family_of_accounts_sum_at_any_past_instant() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000_000));
    let h = start(clock.clone()).await;
    let bank = h.bank("bank", Currency::KRW).await;
    let alice = h.wallet("member:alice:money", Currency::KRW).await;
    let bob = h.wallet("member:bob:money", Currency::KRW).await;
    // Same prefix, another suffix: not counted.
    let points = h.wallet("member:alice:points", Currency::KRW).await;
    let t0 = clock.now_micros();
    h.fund("f1", &bank, &alice, 1_000).await;
    h.fund("f2", &bank, &points, 70).await;
    clock.advance_micros(1_000_000);
    let t1 = clock.now_micros();
    h.fund("f3", &bank, &bob, 500).await;
    clock.advance_micros(1_000_000);
    h.transfer("pay", &alice, &bob, 300).await.unwrap();
    h.transfer("spend", &bob, &bank, 100).await.unwrap();
    let prefix = "member:";
    let sum = |t| h.ledger.sum_balances_at(prefix, ":money", t);
    assert_eq!(sum(t0 - 1).await.unwrap(), 0);
    assert_eq!(sum(t0).await.unwrap(), 1_000);
    assert_eq!(sum(t1).await.unwrap(), 1_500);
    assert_eq!(sum(i64::MAX).await.unwrap(), 1_400);
    assert_eq!(
        h.ledger
            .sum_balances_at(prefix, ":points", i64::MAX)
            .await
            .unwrap(),
        70
    );
    let bad = h.ledger.sum_balances_at("", ":money", 0).await.unwrap_err();
    assert_eq!(bad.code(), "invalid_request");
}

#[tokio::test]
async fn history_pages_newest_first_with_running_balances() {
    let h = system().await;
    let bank = h.bank("bank", Currency::KRW).await;
    let alice = h.wallet("alice", Currency::KRW).await;
    for i in 1..=5 {
        h.fund(&format!("f{i}"), &bank, &alice, i * 100).await;
    }
    let page1 = h.ledger.history(alice.id.as_str(), None, 2).await.unwrap();
    let balances: Vec<i64> = page1
        .items
        .iter()
        .map(|p| p.balance_after.minor())
        .collect();
    assert_eq!(balances, [1_500, 1_000]);
    let cursor = page1.next.unwrap().parse().unwrap();
    let page2 = h
        .ledger
        .history(alice.id.as_str(), Some(cursor), 2)
        .await
        .unwrap();
    assert_eq!(
        page2
            .items
            .iter()
            .map(|p| p.balance_after.minor())
            .collect::<Vec<_>>(),
        [600, 300]
    );
    let page3 = h
        .ledger
        .history(alice.id.as_str(), page2.next.unwrap().parse().ok(), 2)
        .await
        .unwrap();
    assert_eq!(page3.items.len(), 1);
    assert_eq!(page3.items[0].balance_after.minor(), 100);
    assert_eq!(page3.next, None);
    assert!(page1.items.iter().all(|p| p.direction == Direction::Credit));
}

#[tokio::test]
async fn check_reports_a_tampered_balance() {
    let h = system().await;
    let bank = h.bank("bank", Currency::KRW).await;
    let alice = h.wallet("alice", Currency::KRW).await;
    h.fund("f", &bank, &alice, 1_000).await;
    h.assert_invariants().await;
    sqlx::query(
        "UPDATE ledger_accounts SET credits_posted = credits_posted + 1 WHERE code = 'alice'",
    )
    .execute(h.db.db.pool())
    .await
    .unwrap();
    let report = ledger::check(&h.db.db).await.unwrap();
    assert!(!report.is_ok());
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.invariant == "every stored balance equals the sum of its postings"),
        "{report}"
    );
}

#[tokio::test]
async fn shutdown_drains_queued_commands() {
    let h = system().await;
    let bank = h.bank("bank", Currency::KRW).await;
    let alice = h.wallet("alice", Currency::KRW).await;
    h.fund("f", &bank, &alice, 10).await;
    h.ledger.shutdown().await;
    let after = h.transfer("late", &bank, &alice, 1).await.unwrap_err();
    assert_eq!(after.code(), "unavailable");
    assert_eq!(h.posted(&alice).await, 10);
}

#[tokio::test]
async fn validation_happens_before_anything_is_queued() {
    let h = system().await;
    let alice = h.wallet("alice", Currency::KRW).await;
    let zero = h.transfer("zero", &alice, &alice, 0).await.unwrap_err();
    assert_eq!(zero.code(), "amount_invalid");
    let long = "d".repeat(ledger::DESCRIPTION_LEN_MAX + 1);
    let described = NewTransaction {
        description: Some(long),
        ..NewTransaction::transfer(
            TransactionId::parse("x").unwrap(),
            alice.id.clone(),
            alice.id.clone(),
            krw(1),
        )
    };
    assert_eq!(
        h.ledger
            .post_transaction(described)
            .await
            .unwrap_err()
            .code(),
        "invalid_request"
    );
}

#[tokio::test]
async fn two_replicas_on_one_database_never_lose_an_update() {
    // Each ledger has its own writer and account cache, as two server replicas would. Every
    // write one of them makes leaves the other's cache stale; the version check must catch
    // each such write and re-run it from fresh reads.
    let h = system().await;
    let other = ledger::Ledger::start(
        h.db.db.clone(),
        Arc::new(SystemClock),
        ledger::WriterConfig::default(),
    );
    let bank = h.bank("bank", Currency::KRW).await;
    let alice = h.wallet("alice", Currency::KRW).await;
    h.fund("f", &bank, &alice, 1_000).await;
    for i in 0..20 {
        let ledger = if i % 2 == 0 { &h.ledger } else { &other };
        let tx = NewTransaction::transfer(
            TransactionId::parse(&format!("r{i}")).unwrap(),
            alice.id.clone(),
            bank.id.clone(),
            krw(10),
        );
        let posted = ledger.post_transaction(tx).await.unwrap();
        assert_eq!(
            posted.value.postings[0].balance_after,
            krw(1_000 - 10 * (i + 1))
        );
    }
    // A replay through the replica that did not write it is still recognised.
    let replay = other
        .post_transaction(NewTransaction::transfer(
            TransactionId::parse("r0").unwrap(),
            alice.id.clone(),
            bank.id.clone(),
            krw(10),
        ))
        .await
        .unwrap();
    assert!(replay.replayed);
    assert_eq!(h.posted(&alice).await, 800);
    other.shutdown().await;
    h.assert_invariants().await;
}

/// A transfer from `from` into `to` that must leave `to` at or below `max`.
fn capped_transfer(
    id: &str,
    from: &ledger::Account,
    to: &ledger::Account,
    minor: i64,
    max: i64,
) -> NewTransaction {
    NewTransaction {
        balance_limits: vec![BalanceLimit {
            account_id: to.id.clone(),
            max: krw(max),
        }],
        ..NewTransaction::transfer(
            TransactionId::parse(id).unwrap(),
            from.id.clone(),
            to.id.clone(),
            krw(minor),
        )
    }
}

#[tokio::test]
async fn balance_limits_count_pending_incoming_money_and_refuse_with_nothing_changed() {
    let h = system().await;
    let bank = h.bank("asset:bank:master", Currency::KRW).await;
    let alice = h.wallet("alice", Currency::KRW).await;
    let bob = h.wallet("bob", Currency::KRW).await;

    let up_to = h
        .ledger
        .post_transaction(capped_transfer("c-1", &bank, &alice, 7_000, 10_000));
    assert!(!up_to.await.unwrap().replayed);
    let over = h
        .ledger
        .post_transaction(capped_transfer("c-2", &bank, &alice, 3_001, 10_000))
        .await
        .unwrap_err();
    assert_eq!(over.code(), "balance_limit_exceeded");
    assert_eq!(
        h.posted(&alice).await,
        7_000,
        "a refused command moves nothing"
    );

    // A pending charge counts against the ceiling before it is posted.
    let mut incoming = hold("charge-1", &bank, &alice, 2_000, None);
    incoming.balance_limits = vec![BalanceLimit {
        account_id: alice.id.clone(),
        max: krw(10_000),
    }];
    h.ledger.reserve_hold(incoming).await.unwrap();
    let squeezed = h
        .ledger
        .post_transaction(capped_transfer("c-3", &bank, &alice, 1_001, 10_000))
        .await
        .unwrap_err();
    assert_eq!(squeezed.code(), "balance_limit_exceeded");
    let exact = h
        .ledger
        .post_transaction(capped_transfer("c-4", &bank, &alice, 1_000, 10_000))
        .await
        .unwrap();
    assert_eq!(exact.value.postings[1].balance_after, krw(8_000));
    let mut second = hold("charge-2", &bank, &alice, 1, None);
    second.balance_limits = vec![BalanceLimit {
        account_id: alice.id.clone(),
        max: krw(10_000),
    }];
    assert_eq!(
        h.ledger.reserve_hold(second).await.unwrap_err().code(),
        "balance_limit_exceeded"
    );
    // Posting the pending charge changes nothing about the ceiling: the money was counted.
    h.ledger
        .post_hold(PostHold {
            hold_id: HoldId::parse("charge-1").unwrap(),
            amount: None,
            transaction_id: None,
        })
        .await
        .unwrap();
    assert_eq!(h.posted(&alice).await, 10_000);

    // Money leaving the account is never refused by its ceiling, and a limit is no part of a
    // transaction's content: a replay under another limit answers the stored result.
    h.transfer("out", &alice, &bob, 4_000).await.unwrap();
    let replay = h
        .ledger
        .post_transaction(capped_transfer("c-4", &bank, &alice, 1_000, 0))
        .await
        .unwrap();
    assert!(replay.replayed);

    let foreign = NewTransaction {
        balance_limits: vec![BalanceLimit {
            account_id: bob.id.clone(),
            max: krw(1),
        }],
        ..NewTransaction::transfer(
            TransactionId::parse("c-5").unwrap(),
            bank.id.clone(),
            alice.id.clone(),
            krw(1),
        )
    };
    assert_eq!(
        h.ledger.post_transaction(foreign).await.unwrap_err().code(),
        "invalid_request"
    );
    let wrong_currency = NewTransaction {
        balance_limits: vec![BalanceLimit {
            account_id: alice.id.clone(),
            max: Money::from_minor(1_000_000, Currency::USD),
        }],
        ..NewTransaction::transfer(
            TransactionId::parse("c-6").unwrap(),
            bank.id.clone(),
            alice.id.clone(),
            krw(1),
        )
    };
    assert_eq!(
        h.ledger
            .post_transaction(wrong_currency)
            .await
            .unwrap_err()
            .code(),
        "currency_mismatch"
    );
    h.assert_invariants().await;
}

#[tokio::test]
async fn concurrent_capped_credits_never_pass_the_ceiling_together() {
    let h = system().await;
    let bank = h.bank("asset:bank:master", Currency::KRW).await;
    let alice = h.wallet("alice", Currency::KRW).await;
    let h = Arc::new(h);
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (h, bank, alice) = (h.clone(), bank.clone(), alice.clone());
            tokio::spawn(async move {
                if i % 2 == 0 {
                    let tx = capped_transfer(&format!("cc-{i}"), &bank, &alice, 1_000, 10_500);
                    h.ledger.post_transaction(tx).await.map(|_| ())
                } else {
                    let mut charge = hold(&format!("ch-{i}"), &bank, &alice, 1_000, None);
                    charge.balance_limits = vec![BalanceLimit {
                        account_id: alice.id.clone(),
                        max: krw(10_500),
                    }];
                    h.ledger.reserve_hold(charge).await.map(|_| ())
                }
            })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => accepted += 1,
            Err(error) => assert_eq!(error.code(), "balance_limit_exceeded"),
        }
    }
    assert_eq!(
        accepted, 10,
        "exactly as many 1,000 credits as fit under 10,500"
    );
    let balance = h.ledger.balance(alice.id.as_str()).await.unwrap();
    assert_eq!(balance.posted.minor() + balance.incoming.minor(), 10_000);
    h.assert_invariants().await;
}
