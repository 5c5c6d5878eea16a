//! Property tests against a real database: random journals are written through the ledger,
//! then read back and checked.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::start;
use ledger::{Account, Direction, HoldId, NewHold, PostHold, SystemClock};
use money::{Currency, Money};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Transfer {
        from: usize,
        to: usize,
        minor: i64,
    },
    Hold {
        from: usize,
        to: usize,
        minor: i64,
        post: Option<i64>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..5usize, 0..5usize, 1..3_000i64).prop_map(|(from, to, minor)| Op::Transfer { from, to, minor }),
        1 => (0..5usize, 0..5usize, 1..3_000i64, proptest::option::of(1..3_000i64))
            .prop_map(|(from, to, minor, post)| Op::Hold { from, to, minor, post }),
    ]
}

/// Cases are few because each one creates a database; the engine's own property test runs
/// hundreds without I/O.
fn cases() -> u32 {
    match std::env::var(testkit::TEST_DATABASE_ENV) {
        Ok(url) if url.starts_with("postgres") => 6,
        _ => 16,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn stored_journals_balance_and_replay_to_the_stored_balances(ops in proptest::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(run(ops))?;
    }
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let h = start(Arc::new(SystemClock)).await;
    let bank = h.bank("bank", Currency::KRW).await;
    let mut wallets: Vec<Account> = Vec::new();
    for i in 0..5 {
        wallets.push(h.wallet(&format!("w{i}"), Currency::KRW).await);
    }
    // A model of what each wallet should hold: the ledger's answers must agree with it.
    let mut model: HashMap<usize, i64> = HashMap::new();
    for (i, wallet) in wallets.iter().enumerate() {
        h.fund(&format!("fund{i}"), &bank, wallet, 5_000).await;
        model.insert(i, 5_000);
    }
    for (n, op) in ops.iter().enumerate() {
        match *op {
            Op::Transfer { from, to, minor } => {
                let result = h
                    .transfer(&format!("t{n}"), &wallets[from], &wallets[to], minor)
                    .await;
                // The guard applies to the state after the whole transaction, so moving money
                // from an account to itself nets to zero and is always accepted.
                let expected_ok = from == to || model[&from] >= minor;
                prop_assert_eq!(
                    result.is_ok(),
                    expected_ok,
                    "transfer {:?}: {:?}",
                    op,
                    result
                );
                if expected_ok {
                    *model.get_mut(&from).unwrap() -= minor;
                    *model.get_mut(&to).unwrap() += minor;
                }
            }
            Op::Hold {
                from,
                to,
                minor,
                post,
            } => {
                let reserve = h
                    .ledger
                    .reserve_hold(NewHold {
                        id: HoldId::parse(&format!("h{n}")).unwrap(),
                        debit_account_id: wallets[from].id.clone(),
                        credit_account_id: wallets[to].id.clone(),
                        amount: Money::from_minor(minor, Currency::KRW),
                        expires_at: None,
                        metadata: None,
                        balance_limits: Vec::new(),
                    })
                    .await;
                let expected_ok = from != to && model[&from] >= minor;
                prop_assert_eq!(reserve.is_ok(), expected_ok, "hold {:?}: {:?}", op, reserve);
                if !expected_ok {
                    continue;
                }
                let id = HoldId::parse(&format!("h{n}")).unwrap();
                match post {
                    Some(amount) if amount <= minor => {
                        h.ledger
                            .post_hold(PostHold {
                                hold_id: id,
                                amount: Some(amount),
                                transaction_id: None,
                            })
                            .await
                            .unwrap();
                        *model.get_mut(&from).unwrap() -= amount;
                        *model.get_mut(&to).unwrap() += amount;
                    }
                    Some(_) => {
                        let refused = h
                            .ledger
                            .post_hold(PostHold {
                                hold_id: id.clone(),
                                amount: post,
                                transaction_id: None,
                            })
                            .await;
                        prop_assert_eq!(refused.unwrap_err().code(), "exceeds_hold_amount");
                        h.ledger.void_hold(id).await.unwrap();
                    }
                    None => {
                        h.ledger.void_hold(id).await.unwrap();
                    }
                }
            }
        }
    }

    // The stored invariants: every transaction balances, every balance is its postings' sum.
    let report = ledger::check(&h.db.db).await.unwrap();
    prop_assert!(report.is_ok(), "{}", report);

    // Replaying each account's journal from the start reproduces its stored balance, and the
    // stored balances match the model.
    for (i, wallet) in wallets.iter().enumerate() {
        let mut postings = Vec::new();
        let mut cursor = None;
        loop {
            let page = h
                .ledger
                .history(wallet.id.as_str(), cursor, 7)
                .await
                .unwrap();
            postings.extend(page.items);
            match page.next {
                Some(next) => cursor = Some(next.parse().unwrap()),
                None => break,
            }
        }
        postings.reverse();
        let mut running = 0i64;
        for (seq, posting) in postings.iter().enumerate() {
            prop_assert_eq!(posting.account_seq, seq as i64 + 1, "history has a gap");
            running += match posting.direction {
                Direction::Credit => posting.amount.minor(),
                Direction::Debit => -posting.amount.minor(),
            };
            prop_assert_eq!(running, posting.balance_after.minor());
        }
        let balance = h.ledger.balance(wallet.id.as_str()).await.unwrap();
        prop_assert_eq!(
            balance.posted.minor(),
            running,
            "replay differs from the stored balance"
        );
        prop_assert_eq!(
            balance.posted.minor(),
            model[&i],
            "the ledger differs from the model"
        );
        prop_assert_eq!(balance.held.minor(), 0, "every hold was resolved");
    }
    let total: i64 = model.values().sum();
    prop_assert_eq!(
        h.posted(&bank).await,
        total,
        "money was created or destroyed"
    );
    Ok(())
}
