//! Group commit: concurrent commands are queued, taken in batches, applied one by one by the
//! engine, and written with one database call per batch. Nobody is answered before the batch
//! holding their command is durable.
//!
//! Why: every transfer touches accounts whose rows must not change under it, and a hot
//! account (the platform's master account) is touched by all of them. One commit per transfer
//! serialises everybody on that row for a full fsync each; one commit per batch pays the lock
//! and the fsync once for the whole batch.
//!
//! Each batch takes one of two paths:
//! - **Fast**: every account it touches is in the writer's cache and it resolves no hold. The
//!   engine works on the cached state, and the write is conditional on every account still
//!   being at the cached version, so no read is needed. A transaction id stored earlier shows
//!   up as a unique-key conflict.
//! - **Locked**: reads the stored transaction ids, holds and accounts (locking the rows on
//!   PostgreSQL) in a write transaction, then writes. A fast batch that meets a conflict
//!   (another replica wrote an account, an id was used before) is re-run this way, so replays
//!   and refusals are always decided on fresh state.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Connection};
use storage::{Backend, Db};
use tokio::sync::{mpsc, oneshot, watch, Mutex};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::engine::{AccountState, Applied, Batch, Command, Outcome};
use crate::hold::Hold;
use crate::store::{self, BatchWrite, WriteError};
use crate::{AccountId, Committed, HoldId, LedgerError, TransactionId};

/// Bounds on the writer's knobs, so that a configuration cannot make batches unbounded.
pub const BATCH_SIZE_MAX_LIMIT: usize = 4096;
pub const BATCH_WINDOW_LIMIT: Duration = Duration::from_millis(50);
pub const WRITERS_LIMIT: usize = 16;
/// How often a batch that hit a transient conflict is run again before its callers are told.
const BATCH_ATTEMPTS_MAX: u32 = 5;
/// Accounts the writers remember; past this the cache starts over, which costs one read each.
const ACCOUNT_CACHE_MAX: usize = 1_000_000;

/// How the writer batches. Values outside the bounds are clamped.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// The most commands in one database transaction.
    pub batch_size_max: usize,
    /// How long a writer that has some commands waits for more before it commits.
    pub batch_window: Duration,
    /// Writers committing batches at the same time (PostgreSQL only; SQLite has one). More
    /// than one only helps when batches rarely share accounts: writers that share a hot
    /// account invalidate each other's cached versions.
    pub writers: usize,
    /// Commands waiting for a writer before submitters are made to wait (backpressure).
    pub queue_capacity: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            batch_size_max: 1024,
            batch_window: Duration::ZERO,
            writers: 1,
            queue_capacity: 16_384,
        }
    }
}

impl WriterConfig {
    fn bounded(self, db: &Db) -> WriterConfig {
        let writers = if db.backend().supports_concurrent_writers() {
            self.writers.clamp(1, WRITERS_LIMIT)
        } else {
            1
        };
        WriterConfig {
            batch_size_max: self.batch_size_max.clamp(1, BATCH_SIZE_MAX_LIMIT),
            batch_window: self.batch_window.min(BATCH_WINDOW_LIMIT),
            writers,
            queue_capacity: self.queue_capacity.clamp(1, 1 << 20),
        }
    }
}

type Reply = oneshot::Sender<Result<Committed<Outcome>, LedgerError>>;

struct Job {
    command: Command,
    reply: Reply,
}

/// The submitting side of the writer, and the handles of its tasks.
pub(crate) struct Committer {
    sender: mpsc::Sender<Job>,
    shutdown: watch::Sender<bool>,
    writers: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Committer {
    pub fn start(db: Db, clock: Arc<dyn Clock>, config: WriterConfig) -> Committer {
        let config = config.bounded(&db);
        let (sender, receiver) = mpsc::channel(config.queue_capacity);
        let receiver = Arc::new(Mutex::new(receiver));
        let cache = Arc::new(std::sync::Mutex::new(HashMap::new()));
        let (shutdown, _) = watch::channel(false);
        let writers = (0..config.writers)
            .map(|_| {
                let writer = Writer {
                    db: db.clone(),
                    clock: clock.clone(),
                    config,
                    cache: cache.clone(),
                    conn: None,
                };
                tokio::spawn(writer.run(receiver.clone(), shutdown.subscribe()))
            })
            .collect();
        Committer {
            sender,
            shutdown,
            writers: std::sync::Mutex::new(writers),
        }
    }

    /// Queues a command and waits until its batch is durable.
    pub async fn submit(&self, command: Command) -> Result<Committed<Outcome>, LedgerError> {
        self.submitter().submit(command).await
    }

    /// An owned handle for submitting from spawned tasks.
    pub fn submitter(&self) -> Submitter {
        Submitter(self.sender.clone())
    }

    /// Stops taking commands, lets the writers finish what is queued, and waits for them.
    pub async fn shutdown(&self) {
        self.shutdown.send_replace(true);
        let writers = std::mem::take(&mut *self.writers.lock().expect("writer list lock"));
        for writer in writers {
            let _ = writer.await;
        }
    }
}

/// A cloneable handle that queues commands for the writers.
#[derive(Clone)]
pub(crate) struct Submitter(mpsc::Sender<Job>);

impl Submitter {
    pub async fn submit(self, command: Command) -> Result<Committed<Outcome>, LedgerError> {
        let (reply, answer) = oneshot::channel();
        self.0
            .send(Job { command, reply })
            .await
            .map_err(|_| LedgerError::ShuttingDown)?;
        answer.await.map_err(|_| LedgerError::ShuttingDown)?
    }
}

/// Account states as of the last batch a writer committed, with the version stored then.
type AccountCache = Arc<std::sync::Mutex<HashMap<AccountId, AccountState>>>;

struct Writer {
    db: Db,
    clock: Arc<dyn Clock>,
    config: WriterConfig,
    cache: AccountCache,
    /// The writer keeps one connection rather than taking one from the pool per batch.
    conn: Option<PoolConnection<Any>>,
}

/// The most postings one batch writes, so that a batch's JSON stays bounded however many
/// legs its transactions have.
const BATCH_POSTINGS_MAX: usize = 32_768;

/// Postings a command adds to a batch at most.
fn postings_of(command: &Command) -> usize {
    match command {
        Command::Post(tx) => tx.postings.len(),
        Command::PostHold(_) => 2,
        Command::Reserve(_) | Command::VoidHold(_) | Command::ExpireHold(_) => 0,
    }
}

impl Writer {
    async fn run(
        mut self,
        receiver: Arc<Mutex<mpsc::Receiver<Job>>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let jobs = {
                let mut receiver = receiver.lock().await;
                collect(self.config, &mut receiver, &mut shutdown).await
            };
            if jobs.is_empty() {
                return;
            }
            self.process(jobs).await;
        }
    }

    async fn process(&mut self, jobs: Vec<Job>) {
        let started = Instant::now();
        let (commands, replies): (Vec<Command>, Vec<Reply>) =
            jobs.into_iter().map(|j| (j.command, j.reply)).unzip();
        let mut attempt = 1;
        let mut locked = !self.fast_path_possible(&commands);
        let results = loop {
            match self.write_batch(&commands, locked).await {
                Ok(results) => break results,
                Err(WriteError::Conflict) if !locked => {
                    metrics::counter!("ledger_fast_path_conflicts_total").increment(1);
                    locked = true;
                }
                Err(WriteError::Conflict) if attempt < BATCH_ATTEMPTS_MAX => attempt += 1,
                Err(WriteError::Database(error))
                    if attempt < BATCH_ATTEMPTS_MAX && self.db.backend().is_retryable(&error) =>
                {
                    tracing::debug!(%error, attempt, "ledger batch hit a transient conflict; running it again");
                    attempt += 1;
                    locked = true;
                    tokio::time::sleep(Duration::from_millis(u64::from(attempt))).await;
                }
                Err(failure) => {
                    // Whether the commit happened is unknown when the connection failed during
                    // it. Every command carries its own id, so the caller can safely submit it
                    // again: a stored one is answered as a replay.
                    let error = match failure {
                        WriteError::Database(error) => error,
                        WriteError::Conflict => sqlx::Error::Protocol(
                            "ledger batch kept conflicting with concurrent writers".into(),
                        ),
                    };
                    tracing::error!(%error, batch = commands.len(), "ledger batch failed");
                    self.conn = None;
                    self.cache.lock().expect("account cache lock").clear();
                    let error = LedgerError::from(error);
                    for reply in replies {
                        let _ = reply.send(Err(error.clone()));
                    }
                    metrics::counter!("ledger_batches_failed_total").increment(1);
                    return;
                }
            }
        };
        metrics::histogram!("ledger_batch_size").record(commands.len() as f64);
        metrics::histogram!("ledger_batch_seconds").record(started.elapsed().as_secs_f64());
        for (result, reply) in results.into_iter().zip(replies) {
            let answer = match result {
                Ok(applied) => answer(&self.db, applied).await,
                Err(error) => Err(error),
            };
            let outcome = match &answer {
                Ok(_) => "accepted",
                Err(_) => "rejected",
            };
            metrics::counter!("ledger_commands_total", "outcome" => outcome).increment(1);
            let _ = reply.send(answer);
        }
    }

    /// A batch may skip reading when it resolves no hold and every account it names is cached.
    fn fast_path_possible(&self, commands: &[Command]) -> bool {
        let cache = self.cache.lock().expect("account cache lock");
        commands.iter().all(|command| {
            command.hold_id().is_none()
                && command
                    .account_ids()
                    .iter()
                    .all(|id| cache.contains_key(*id))
        })
    }

    async fn connection(&mut self) -> Result<&mut AnyConnection, sqlx::Error> {
        if self.conn.is_none() {
            self.conn = Some(self.db.pool().acquire().await?);
        }
        Ok(self.conn.as_mut().expect("connection set above"))
    }

    /// Applies a batch and writes it: from the cache on the fast path, from locked reads
    /// otherwise. On success the cache holds the accounts as stored.
    async fn write_batch(
        &mut self,
        commands: &[Command],
        locked: bool,
    ) -> Result<Vec<Result<Applied, LedgerError>>, WriteError> {
        let backend = self.db.backend();
        let now = self.clock.now_micros();
        let result = if locked {
            self.write_locked(commands, backend, now).await
        } else {
            self.write_fast(commands, backend, now).await
        };
        match result {
            Ok((results, batch)) => {
                self.remember(&batch);
                Ok(results)
            }
            Err(error) => {
                self.forget(commands);
                if matches!(error, WriteError::Database(_)) {
                    self.conn = None;
                }
                Err(error)
            }
        }
    }

    async fn write_fast(
        &mut self,
        commands: &[Command],
        backend: Backend,
        now: i64,
    ) -> Result<(Vec<Result<Applied, LedgerError>>, Batch), WriteError> {
        let accounts = {
            let cache = self.cache.lock().expect("account cache lock");
            commands
                .iter()
                .flat_map(Command::account_ids)
                .map(|id| (id.clone(), cache[id].clone()))
                .collect()
        };
        let mut batch = Batch::new(accounts, HashMap::new(), HashMap::new(), now);
        let results: Vec<_> = commands
            .iter()
            .map(|command| batch.apply(command))
            .collect();
        if batch.touched.is_empty() {
            return Ok((results, batch));
        }
        let conn = self.connection().await?;
        match backend {
            // One statement is its own transaction on PostgreSQL: one round trip per batch.
            Backend::Postgres => store::write_batch(conn, backend, &batch_write(&batch)).await?,
            Backend::Sqlite => {
                let mut tx = conn.begin_with(backend.begin_write_statement()).await?;
                store::write_batch(&mut tx, backend, &batch_write(&batch)).await?;
                tx.commit().await?;
            }
        }
        Ok((results, batch))
    }

    /// Reads and locks what the commands touch, applies them in order, writes what was
    /// accepted, and commits, all in one transaction.
    async fn write_locked(
        &mut self,
        commands: &[Command],
        backend: Backend,
        now: i64,
    ) -> Result<(Vec<Result<Applied, LedgerError>>, Batch), WriteError> {
        let conn = self.connection().await?;
        let mut tx = conn.begin_with(backend.begin_write_statement()).await?;
        let transaction_ids: Vec<TransactionId> = commands
            .iter()
            .filter_map(Command::transaction_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let stored_hashes = store::stored_hashes(&mut tx, backend, &transaction_ids).await?;
        let hold_ids: Vec<HoldId> = commands
            .iter()
            .filter_map(Command::hold_id)
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let holds = store::holds_for_update(&mut tx, backend, &hold_ids).await?;
        let accounts = lock_accounts(&mut tx, backend, commands, holds.values()).await?;
        let mut batch = Batch::new(accounts, holds, stored_hashes, now);
        let results: Vec<_> = commands
            .iter()
            .map(|command| batch.apply(command))
            .collect();
        if !batch.touched.is_empty() {
            store::write_batch(&mut tx, backend, &batch_write(&batch)).await?;
        }
        tx.commit().await?;
        Ok((results, batch))
    }

    /// Caches every account the batch saw, as now stored: touched ones one version on.
    fn remember(&self, batch: &Batch) {
        let mut cache = self.cache.lock().expect("account cache lock");
        if cache.len() + batch.accounts.len() > ACCOUNT_CACHE_MAX {
            cache.clear();
        }
        for (id, state) in &batch.accounts {
            let mut state = state.clone();
            if batch.touched.contains(id) {
                state.version += 1;
            }
            cache.insert(id.clone(), state);
        }
    }

    /// Drops the cached state of the accounts a failed batch named, so they are read afresh.
    fn forget(&self, commands: &[Command]) {
        let mut cache = self.cache.lock().expect("account cache lock");
        for id in commands.iter().flat_map(Command::account_ids) {
            cache.remove(id);
        }
    }
}

/// Takes the next batch: waits for one command, then takes whatever else is queued, and
/// lingers up to the window for more while the batch is not full. An empty batch means
/// the queue is closed and drained.
async fn collect(
    config: WriterConfig,
    receiver: &mut mpsc::Receiver<Job>,
    shutdown: &mut watch::Receiver<bool>,
) -> Vec<Job> {
    let first = loop {
        if *shutdown.borrow() {
            // Closing stops new submissions; what is already queued is still drained.
            receiver.close();
            break receiver.recv().await;
        }
        tokio::select! {
            job = receiver.recv() => break job,
            changed = shutdown.changed() => {
                if changed.is_err() {
                    receiver.close();
                    break receiver.recv().await;
                }
            }
        }
    };
    let Some(first) = first else {
        return Vec::new();
    };
    let mut postings = postings_of(&first.command);
    let mut jobs = vec![first];
    let deadline = tokio::time::Instant::now() + config.batch_window;
    while jobs.len() < config.batch_size_max {
        let next = match receiver.try_recv() {
            Ok(job) => job,
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) if config.batch_window.is_zero() => break,
            Err(mpsc::error::TryRecvError::Empty) => {
                match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(Some(job)) => job,
                    Ok(None) | Err(_) => break,
                }
            }
        };
        postings += postings_of(&next.command);
        jobs.push(next);
        if postings + crate::POSTINGS_MAX > BATCH_POSTINGS_MAX {
            // The next command might not fit; a single command always does.
            break;
        }
    }
    jobs
}

/// Turns what the engine decided into the caller's answer, reading stored results back
/// for replays.
async fn answer(db: &Db, applied: Applied) -> Result<Committed<Outcome>, LedgerError> {
    let replayed = |value| Committed {
        value,
        replayed: true,
    };
    match applied {
        Applied::New(value) => Ok(Committed {
            value,
            replayed: false,
        }),
        Applied::ReplayInBatch(outcome) => Ok(replayed(outcome)),
        Applied::ReplayStoredTransaction(id) => {
            let mut conn = db.pool().acquire().await?;
            stored_transaction_outcome(&mut conn, db.backend(), &id)
                .await
                .map(replayed)
        }
        Applied::ReplayStoredHold(id) => {
            let mut conn = db.pool().acquire().await?;
            let hold = store::hold_by_id(&mut conn, db.backend(), &id)
                .await?
                .ok_or_else(|| LedgerError::HoldNotFound(id.to_string()))?;
            Ok(replayed(Outcome::Hold(hold)))
        }
    }
}

/// The rows a batch writes, in id order for accounts so that concurrent writers on
/// PostgreSQL lock rows in the same order and cannot deadlock.
fn batch_write(batch: &Batch) -> BatchWrite<'_> {
    let holds_of =
        |ids: &[HoldId]| -> Vec<&Hold> { ids.iter().map(|id| &batch.holds[id]).collect() };
    let mut accounts: Vec<&AccountState> =
        batch.touched.iter().map(|id| &batch.accounts[id]).collect();
    accounts.sort_by(|a, b| a.id.cmp(&b.id));
    BatchWrite {
        transactions: &batch.writes.transactions,
        postings: &batch.writes.postings,
        new_holds: holds_of(&batch.writes.new_holds),
        changed_holds: holds_of(&batch.writes.changed_holds),
        accounts,
    }
}

async fn lock_accounts<'a>(
    conn: &mut AnyConnection,
    backend: Backend,
    commands: &'a [Command],
    holds: impl Iterator<Item = &'a Hold>,
) -> Result<HashMap<AccountId, AccountState>, sqlx::Error> {
    let mut ids: BTreeSet<&AccountId> = commands.iter().flat_map(Command::account_ids).collect();
    for hold in holds {
        ids.insert(&hold.debit_account_id);
        ids.insert(&hold.credit_account_id);
    }
    let ids: Vec<&AccountId> = ids.into_iter().collect();
    store::accounts_for_update(conn, backend, &ids).await
}

/// The answer to a replayed transaction: the transaction, and its hold if it posted one.
pub(crate) async fn stored_transaction_outcome(
    conn: &mut AnyConnection,
    backend: Backend,
    id: &TransactionId,
) -> Result<Outcome, LedgerError> {
    let tx = store::transactions_by_ids(conn, backend, std::slice::from_ref(id))
        .await?
        .pop()
        .ok_or_else(|| LedgerError::TransactionNotFound(id.to_string()))?;
    match &tx.hold_id {
        Some(hold_id) => {
            let hold = store::hold_by_id(conn, backend, hold_id)
                .await?
                .ok_or_else(|| LedgerError::HoldNotFound(hold_id.to_string()))?;
            Ok(Outcome::HoldPosted(hold, tx))
        }
        None => Ok(Outcome::Transaction(tx)),
    }
}
