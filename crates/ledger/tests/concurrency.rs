//! Many tasks hammering few accounts and one hot account at once: money is conserved to the
//! unit, no guarded balance goes negative, and every acknowledged write is stored exactly once.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{start, Harness};
use ledger::{
    Account, Committed, HoldId, Ledger, LedgerError, NewHold, NewTransaction, PostHold,
    SystemClock, Transaction, TransactionId, WriterConfig,
};
use money::{Currency, Money};
use rand::Rng;

const TASKS: usize = 32;
const OPS_PER_TASK: usize = 60;
const WALLETS: usize = 8;

#[derive(Default)]
struct Acknowledged {
    /// Transaction ids the ledger acknowledged, each with its amount.
    transactions: Vec<(String, i64)>,
}

/// Moves `minor` from `from` to `to` through the given ledger.
async fn transfer(
    ledger: &Ledger,
    id: &str,
    from: &Account,
    to: &Account,
    minor: i64,
) -> Result<Committed<Transaction>, LedgerError> {
    ledger
        .post_transaction(NewTransaction::transfer(
            TransactionId::parse(id).unwrap(),
            from.id.clone(),
            to.id.clone(),
            Money::from_minor(minor, from.currency),
        ))
        .await
}

/// One client's random operations. Each goes through `replicas` in turn when there are
/// some, as a load balancer would spread them over servers, and through the harness's own
/// ledger otherwise.
async fn hammer(
    h: Arc<Harness>,
    replicas: Arc<Vec<Ledger>>,
    hot: Account,
    wallets: Arc<Vec<Account>>,
    task: usize,
) -> Acknowledged {
    let mut acked = Acknowledged::default();
    for n in 0..OPS_PER_TASK {
        let ledger = if replicas.is_empty() {
            &h.ledger
        } else {
            &replicas[(task + n) % replicas.len()]
        };
        let (choice, a, b, minor) = {
            let mut rng = rand::rng();
            (
                rng.random_range(0..10),
                rng.random_range(0..WALLETS),
                rng.random_range(0..WALLETS),
                rng.random_range(1..2_000),
            )
        };
        let id = format!("task{task}-op{n}");
        match choice {
            // Funding from the hot account and spending back to it, like charges and payouts.
            0..=1 => {
                let tx = transfer(ledger, &id, &hot, &wallets[a], minor)
                    .await
                    .expect("funding never fails");
                acked.transactions.push((tx.value.id.to_string(), minor));
            }
            2..=3 => match transfer(ledger, &id, &wallets[a], &hot, minor).await {
                Ok(tx) => acked.transactions.push((tx.value.id.to_string(), minor)),
                Err(e) => assert_eq!(e.code(), "insufficient_funds", "{e:?}"),
            },
            4..=7 => match transfer(ledger, &id, &wallets[a], &wallets[b], minor).await {
                Ok(tx) => acked.transactions.push((tx.value.id.to_string(), minor)),
                Err(e) => assert_eq!(e.code(), "insufficient_funds", "{e:?}"),
            },
            _ => {
                let hold = NewHold {
                    id: HoldId::parse(&id).unwrap(),
                    debit_account_id: wallets[a].id.clone(),
                    credit_account_id: hot.id.clone(),
                    amount: Money::from_minor(minor, Currency::KRW),
                    expires_at: None,
                    metadata: None,
                    balance_limits: Vec::new(),
                };
                match ledger.reserve_hold(hold).await {
                    Ok(_) if choice == 8 => {
                        let post = PostHold {
                            hold_id: HoldId::parse(&id).unwrap(),
                            amount: Some(minor / 2 + 1),
                            transaction_id: None,
                        };
                        let (_, tx) = ledger
                            .post_hold(post)
                            .await
                            .expect("posting a pending hold")
                            .value;
                        acked.transactions.push((tx.id.to_string(), minor / 2 + 1));
                    }
                    Ok(_) => {
                        ledger
                            .void_hold(HoldId::parse(&id).unwrap())
                            .await
                            .expect("voiding a pending hold");
                    }
                    Err(e) => assert_eq!(e.code(), "insufficient_funds", "{e:?}"),
                }
            }
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_tasks_on_eight_accounts_and_a_hot_one() {
    let h = Arc::new(start(Arc::new(SystemClock)).await);
    run(h, Arc::new(Vec::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_with_deep_pipelines_on_the_same_accounts() {
    // Two servers on one database, each with several writers that keep batches in flight:
    // batches are built on states that other writers and the other replica are about to
    // overwrite, or that never commit because their predecessor failed. The version tokens
    // must turn every such batch into a conflict that is re-run from fresh reads.
    let h = Arc::new(start(Arc::new(SystemClock)).await);
    let config = WriterConfig {
        writers: 2,
        pipeline_depth: 4,
        ..WriterConfig::default()
    };
    let mut replicas = Vec::new();
    for _ in 0..2 {
        // Each replica has its own pool, as a separate server process would.
        let db = storage::Db::connect(&h.db.url, 16).await.unwrap();
        replicas.push(Ledger::start(db, Arc::new(SystemClock), config));
    }
    let replicas = Arc::new(replicas);
    run(h, replicas.clone()).await;
    for replica in replicas.iter() {
        replica.shutdown().await;
    }
}

async fn run(h: Arc<Harness>, replicas: Arc<Vec<Ledger>>) {
    let hot = h.bank("asset:bank:master", Currency::KRW).await;
    let mut wallets = Vec::new();
    for i in 0..WALLETS {
        let wallet = h
            .wallet(&format!("liability:member:{i}:money"), Currency::KRW)
            .await;
        h.fund(&format!("seed{i}"), &hot, &wallet, 10_000).await;
        wallets.push(wallet);
    }
    let wallets = Arc::new(wallets);
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            tokio::spawn(hammer(
                h.clone(),
                replicas.clone(),
                hot.clone(),
                wallets.clone(),
                task,
            ))
        })
        .collect();
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.unwrap().transactions);
    }

    // Conservation: the hot asset equals what the members hold, to the unit.
    let mut members = 0i64;
    for wallet in wallets.iter() {
        let balance = h.ledger.balance(wallet.id.as_str()).await.unwrap();
        assert!(
            balance.available.minor() >= 0,
            "a guarded wallet went negative"
        );
        assert_eq!(balance.held.minor(), 0, "every hold was resolved");
        members += balance.posted.minor();
    }
    assert_eq!(
        h.posted(&hot).await,
        members,
        "money was created or destroyed"
    );

    // Every acknowledged transaction is stored exactly once, with its amount; nothing else is.
    let ids: HashSet<&str> = acknowledged.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids.len(),
        acknowledged.len(),
        "an id was acknowledged twice"
    );
    for (id, minor) in &acknowledged {
        let stored = h.ledger.transaction(id).await.unwrap();
        assert_eq!(stored.postings.len(), 2);
        assert!(stored.postings.iter().all(|p| p.amount.minor() == *minor));
    }
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger_transactions")
        .fetch_one(h.db.db.pool())
        .await
        .unwrap();
    assert_eq!(
        stored as usize,
        acknowledged.len() + WALLETS,
        "stored transactions = acknowledged + seeds"
    );
    h.assert_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transaction_sent_again_while_it_commits_is_answered_as_a_replay() {
    // The same transaction, which empties its guarded account, sent many times at once through
    // two replicas with batches in flight: a copy that arrives while the first is committing
    // must be answered with the first (a replay), never applied to the emptied account and
    // refused for insufficient funds.
    let h = Arc::new(start(Arc::new(SystemClock)).await);
    let config = WriterConfig {
        writers: 2,
        pipeline_depth: 4,
        ..WriterConfig::default()
    };
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let db = storage::Db::connect(&h.db.url, 16).await.unwrap();
        replicas.push(Arc::new(Ledger::start(db, Arc::new(SystemClock), config)));
    }
    let hot = h.bank("asset:bank:master", Currency::KRW).await;
    for round in 0..8 {
        let wallet = h
            .wallet(
                &format!("liability:member:replay{round}:money"),
                Currency::KRW,
            )
            .await;
        h.fund(&format!("replay-seed{round}"), &hot, &wallet, 5_000)
            .await;
        let id = format!("replay-drain{round}");
        let sends: Vec<_> = (0..16)
            .map(|n| {
                let ledger = replicas[n % replicas.len()].clone();
                let (id, wallet, hot) = (id.clone(), wallet.clone(), hot.clone());
                tokio::spawn(async move { transfer(&ledger, &id, &wallet, &hot, 5_000).await })
            })
            .collect();
        let mut new = 0;
        for send in sends {
            let committed = send.await.unwrap().expect("every copy is answered");
            new += usize::from(!committed.replayed);
        }
        assert_eq!(new, 1, "exactly one copy was applied");
        assert_eq!(h.posted(&wallet).await, 0);
    }
    for replica in replicas.iter() {
        replica.shutdown().await;
    }
    h.assert_invariants().await;
}
