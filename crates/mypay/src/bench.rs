//! `mypay bench ledger`: closed-loop transfers straight through the ledger's group-commit
//! writer, with durable commits, then the invariant check.
//!
//! Every run opens its own accounts under a fresh prefix, so it can run against a database
//! that already holds data without touching it.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use ledger::{
    Account, AccountCode, AccountFlags, AccountKind, Ledger, NewAccount, NewTransaction,
    SystemClock, TransactionId,
};
use money::{Currency, Money};
use rand::Rng;
use storage::{DatabaseUrl, Db};
use tokio::task::JoinSet;

use crate::cli::{parse_database_url, WriterArgs};

/// What each account is funded with before random transfers, in KRW.
const FUNDING_MINOR: i64 = 1_000_000_000;
/// Random transfers move between 1 and this many KRW, so funded accounts rarely run dry.
const TRANSFER_MINOR_MAX: i64 = 1_000;
/// Latencies are recorded in microseconds up to a minute.
const LATENCY_US_MAX: u64 = 60_000_000;

#[derive(Debug, Args)]
pub struct LedgerBenchArgs {
    /// The database to measure. Deliberately not read from DATABASE_URL, so that a benchmark
    /// never lands in a production database by accident.
    #[arg(long, default_value = "sqlite://./mypay-data/bench.db", value_parser = parse_database_url)]
    pub database_url: DatabaseUrl,
    /// Accounts to transfer between.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(2..=1_000_000))]
    pub accounts: u64,
    /// Concurrent clients, each waiting for its transfer before sending the next.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=4_096))]
    pub concurrency: u64,
    /// How long to measure.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub seconds: u64,
    /// Debit one hot account in every transfer (like charges into the master account).
    #[arg(long)]
    pub hot: bool,
    #[command(flatten)]
    pub writer: WriterArgs,
}

/// The accounts of one run.
struct Fixture {
    hot: Account,
    wallets: Vec<Account>,
}

/// What the clients saw.
struct Tally {
    latency_us: Histogram<u64>,
    rejected: u64,
    failed: u64,
}

pub async fn ledger(args: LedgerBenchArgs) -> anyhow::Result<ExitCode> {
    let concurrency = usize::try_from(args.concurrency)?;
    let pool_size =
        u32::try_from(concurrency + args.writer.writers * args.writer.pipeline_depth + 4)?
            .min(storage::POOL_SIZE_MAX);
    let db = Db::connect(&args.database_url, pool_size)
        .await
        .with_context(|| format!("cannot open {}", args.database_url))?;
    db.migrate().await?;
    let ledger = Arc::new(Ledger::start(
        db.clone(),
        Arc::new(SystemClock),
        args.writer.config(),
    ));
    let run = ulid::Ulid::new().to_string().to_lowercase();
    let fixture = Arc::new(create_accounts(&ledger, &run, args.accounts, concurrency).await?);
    // Funding also touches every account once, in hot mode too, so the measurement starts
    // with the writer's account cache loaded, as on a server that has been running; a cold
    // account costs its first batch a locked read.
    fund(&ledger, &fixture, &run, concurrency).await?;

    let mode = if args.hot { "hot" } else { "random" };
    eprintln!(
        "measuring {mode} transfers: {} accounts, concurrency {concurrency}, {} s, backend {}",
        args.accounts,
        args.seconds,
        db.backend().name()
    );
    let started = Instant::now();
    let tally = measure(
        &ledger,
        &fixture,
        &run,
        concurrency,
        Duration::from_secs(args.seconds),
        args.hot,
    )
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    ledger.shutdown().await;

    let report = ledger::check(&db)
        .await
        .context("cannot run the invariant check")?;
    db.close().await;
    let transfers = tally.latency_us.len();
    let per_s = transfers as f64 / elapsed;
    let ms = |q: f64| tally.latency_us.value_at_quantile(q) as f64 / 1_000.0;
    println!(
        "transfers: {transfers} in {elapsed:.2} s ({per_s:.0}/s), rejected {}, failed {}",
        tally.rejected, tally.failed
    );
    println!(
        "latency: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        ms(0.5),
        ms(0.99),
        tally.latency_us.max() as f64 / 1_000.0
    );
    print!("{report}");
    let check = if report.is_ok() { "ok" } else { "failed" };
    println!(
        "transfers_per_s={per_s:.0} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} rejected={} failed={} backend={} mode={mode} concurrency={concurrency} accounts={} check={check}",
        ms(0.5),
        ms(0.99),
        tally.latency_us.max() as f64 / 1_000.0,
        tally.rejected,
        tally.failed,
        args.database_url.backend().name(),
        args.accounts,
    );
    Ok(if report.is_ok() && tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

fn account(code: String, kind: AccountKind, guarded: bool) -> anyhow::Result<NewAccount> {
    Ok(NewAccount {
        code: AccountCode::parse(&code)?,
        kind,
        currency: Currency::KRW,
        flags: if guarded {
            AccountFlags::MUST_NOT_GO_NEGATIVE
        } else {
            AccountFlags::empty()
        },
        metadata: None,
    })
}

/// Opens the hot account and `count` guarded member-style accounts, `concurrency` at a time.
async fn create_accounts(
    ledger: &Arc<Ledger>,
    run: &str,
    count: u64,
    concurrency: usize,
) -> anyhow::Result<Fixture> {
    let hot = ledger
        .create_account(account(
            format!("bench:{run}:hot"),
            AccountKind::Asset,
            false,
        )?)
        .await?;
    let bar = progress(count, "accounts");
    let mut wallets = Vec::with_capacity(usize::try_from(count)?);
    let mut tasks = JoinSet::new();
    for i in 0..count {
        if tasks.len() >= concurrency {
            wallets.push(tasks.join_next().await.expect("a task is running")??);
            bar.inc(1);
        }
        let ledger = ledger.clone();
        let new = account(format!("bench:{run}:{i}"), AccountKind::Liability, true)?;
        tasks.spawn(async move { ledger.create_account(new).await });
    }
    while let Some(created) = tasks.join_next().await {
        wallets.push(created??);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(Fixture { hot, wallets })
}

/// Credits every account from the hot account so that random transfers have funds to move.
/// Hot-mode transfers debit the hot account and need no funds, but are funded the same way.
async fn fund(
    ledger: &Arc<Ledger>,
    fixture: &Arc<Fixture>,
    run: &str,
    concurrency: usize,
) -> anyhow::Result<()> {
    let bar = progress(fixture.wallets.len() as u64, "funding");
    let mut tasks = JoinSet::new();
    for i in 0..fixture.wallets.len() {
        if tasks.len() >= concurrency {
            tasks.join_next().await.expect("a task is running")??;
            bar.inc(1);
        }
        let (ledger, fixture) = (ledger.clone(), fixture.clone());
        let id = TransactionId::parse(&format!("bench-{run}-fund-{i}"))?;
        tasks.spawn(async move {
            let amount = Money::from_minor(FUNDING_MINOR, Currency::KRW);
            let tx = NewTransaction::transfer(
                id,
                fixture.hot.id.clone(),
                fixture.wallets[i].id.clone(),
                amount,
            );
            ledger.post_transaction(tx).await.map(|_| ())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

/// Runs the clients until the deadline and merges what they saw.
async fn measure(
    ledger: &Arc<Ledger>,
    fixture: &Arc<Fixture>,
    run: &str,
    concurrency: usize,
    duration: Duration,
    hot: bool,
) -> Tally {
    let deadline = Instant::now() + duration;
    let done = Arc::new(AtomicU64::new(0));
    let mut clients = JoinSet::new();
    for client in 0..concurrency {
        let (ledger, fixture, done) = (ledger.clone(), fixture.clone(), done.clone());
        let prefix = format!("bench-{run}-{client}");
        clients.spawn(
            async move { run_client(&ledger, &fixture, &prefix, deadline, hot, &done).await },
        );
    }
    let bar = progress(duration.as_secs(), "seconds");
    let ticker = {
        let (bar, done) = (bar.clone(), done.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                bar.set_position(started.elapsed().as_secs().min(bar.length().unwrap_or(0)));
                let elapsed = started.elapsed().as_secs_f64().max(0.001);
                bar.set_message(format!(
                    "{:.0}/s",
                    done.load(Ordering::Relaxed) as f64 / elapsed
                ));
            }
        })
    };
    let mut tally = Tally {
        latency_us: Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)
            .expect("valid histogram bounds"),
        rejected: 0,
        failed: 0,
    };
    while let Some(result) = clients.join_next().await {
        let client = result.expect("a benchmark client panicked");
        tally
            .latency_us
            .add(&client.latency_us)
            .expect("histograms with equal bounds merge");
        tally.rejected += client.rejected;
        tally.failed += client.failed;
    }
    ticker.abort();
    bar.finish_and_clear();
    tally
}

/// One closed-loop client: send a transfer, wait for the durable answer, repeat.
async fn run_client(
    ledger: &Ledger,
    fixture: &Fixture,
    prefix: &str,
    deadline: Instant,
    hot: bool,
    done: &AtomicU64,
) -> Tally {
    let mut tally = Tally {
        latency_us: Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)
            .expect("valid histogram bounds"),
        rejected: 0,
        failed: 0,
    };
    let mut n = 0u64;
    while Instant::now() < deadline {
        let tx = next_transfer(fixture, &format!("{prefix}-{n}"), hot);
        n += 1;
        let sent = Instant::now();
        match ledger.post_transaction(tx).await {
            Ok(_) => {
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(LATENCY_US_MAX);
                tally
                    .latency_us
                    .saturating_record(micros.clamp(1, LATENCY_US_MAX));
                done.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) if error.code() == "insufficient_funds" => tally.rejected += 1,
            Err(error) => {
                tracing::error!(%error, "benchmark transfer failed");
                tally.failed += 1;
            }
        }
    }
    tally
}

/// A random transfer: between two distinct accounts, or from the hot account to one.
fn next_transfer(fixture: &Fixture, id: &str, hot: bool) -> NewTransaction {
    let mut rng = rand::rng();
    let count = fixture.wallets.len();
    let to = rng.random_range(0..count);
    let from = if hot {
        &fixture.hot
    } else {
        let offset = rng.random_range(1..count);
        &fixture.wallets[(to + offset) % count]
    };
    let amount = Money::from_minor(rng.random_range(1..=TRANSFER_MINOR_MAX), Currency::KRW);
    let id = TransactionId::parse(id).expect("benchmark ids use the id alphabet");
    NewTransaction::transfer(id, from.id.clone(), fixture.wallets[to].id.clone(), amount)
}
