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
use tokio::sync::{mpsc, oneshot, watch, Mutex, Semaphore};
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
pub const PIPELINE_DEPTH_LIMIT: usize = 8;
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
    /// Batches one writer has in flight at once (PostgreSQL only; SQLite commits one at a
    /// time). With two, the next batch is applied to the previous one's not yet committed
    /// result and executes while the previous one waits for its fsync; the database's row
    /// locks and the version guards keep the order, so a hot account is not serialised on
    /// the commit latency.
    pub pipeline_depth: usize,
    /// Commands waiting for a writer before submitters are made to wait (backpressure).
    pub queue_capacity: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            batch_size_max: 1024,
            batch_window: Duration::ZERO,
            writers: 1,
            pipeline_depth: 2,
            queue_capacity: 16_384,
        }
    }
}

impl WriterConfig {
    fn bounded(self, db: &Db) -> WriterConfig {
        let concurrent = db.backend().supports_concurrent_writers();
        let writers = if concurrent {
            self.writers.clamp(1, WRITERS_LIMIT)
        } else {
            1
        };
        // A batch in flight holds a connection, and a writer keeps its connections between
        // batches: the writers together never take more than half the pool, so that reads
        // and the rest of the application are always served.
        let connections = usize::try_from(db.pool().options().get_max_connections())
            .expect("a pool size fits in usize");
        let depth_max = (connections / 2 / writers).clamp(1, PIPELINE_DEPTH_LIMIT);
        let pipeline_depth = if concurrent {
            self.pipeline_depth.clamp(1, depth_max)
        } else {
            1
        };
        WriterConfig {
            batch_size_max: self.batch_size_max.clamp(1, BATCH_SIZE_MAX_LIMIT),
            batch_window: self.batch_window.min(BATCH_WINDOW_LIMIT),
            writers,
            pipeline_depth,
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
                    config,
                    core: Arc::new(WriterCore {
                        db: db.clone(),
                        clock: clock.clone(),
                        cache: cache.clone(),
                        idle: std::sync::Mutex::new(Vec::new()),
                    }),
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

/// Account states as of the latest batch the writers applied, each with the version token
/// the batch wrote. A state may belong to a batch still in flight: the cache is only ever a
/// guess, because every write is conditional on the stored token being the one the state
/// was computed from.
type AccountCache = Arc<std::sync::Mutex<HashMap<AccountId, AccountState>>>;

/// One writer: takes batches off the queue in order and keeps up to `pipeline_depth` of them
/// in flight.
struct Writer {
    config: WriterConfig,
    core: Arc<WriterCore>,
}

/// What a writer's batches in flight share.
struct WriterCore {
    db: Db,
    clock: Arc<dyn Clock>,
    cache: AccountCache,
    /// Connections not in use by a batch in flight; there are at most `pipeline_depth`.
    idle: std::sync::Mutex<Vec<PoolConnection<Any>>>,
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

type Results = Vec<Result<Applied, LedgerError>>;

/// A batch applied to cached states, ready to be written without reading.
struct Prepared {
    results: Results,
    batch: Batch,
    versions: Versions,
}

/// The version token each touched account gets from a batch.
type Versions = HashMap<AccountId, i64>;

/// A batch on its way to the database.
struct Flight {
    commands: Vec<Command>,
    replies: Vec<Reply>,
    prepared: Option<Prepared>,
    started: Instant,
}

impl Writer {
    async fn run(
        self,
        receiver: Arc<Mutex<mpsc::Receiver<Job>>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let depth = self.config.pipeline_depth;
        let slots = Arc::new(Semaphore::new(depth));
        loop {
            let slot = slots.clone().acquire_owned().await.expect("never closed");
            let jobs = {
                let mut receiver = receiver.lock().await;
                collect(self.config, &mut receiver, &mut shutdown).await
            };
            if jobs.is_empty() {
                drop(slot);
                let depth = u32::try_from(depth).expect("the depth is bounded");
                let _ = slots.acquire_many(depth).await;
                return;
            }
            let flight = self.core.prepare(jobs);
            let core = self.core.clone();
            if depth == 1 {
                // Nothing to overlap with: run in place and save a task hand-off.
                core.fly(flight).await;
            } else {
                tokio::spawn(async move {
                    core.fly(flight).await;
                    drop(slot);
                });
            }
        }
    }
}

impl WriterCore {
    /// Applies the batch to the cached states when it can, and caches its results at once,
    /// so that the next batch builds on them while this one is being written.
    fn prepare(&self, jobs: Vec<Job>) -> Flight {
        let started = Instant::now();
        let (commands, replies): (Vec<Command>, Vec<Reply>) =
            jobs.into_iter().map(|j| (j.command, j.reply)).unzip();
        let now = self.clock.now_micros();
        let mut cache = self.cache.lock().expect("account cache lock");
        let prepared = cached_states(&cache, &commands).and_then(|accounts| {
            let mut batch = Batch::new(accounts, HashMap::new(), HashMap::new(), now);
            let results: Vec<_> = commands.iter().map(|c| batch.apply(c)).collect();
            // A command refused on the cached state may be the resubmission of one stored
            // earlier, which must be answered with the stored result, not with what the
            // state says now. Only the locked path reads stored ids, so a batch with a
            // refusal takes it; refusals are rare, so this costs little.
            if results.iter().any(Result::is_err) {
                return None;
            }
            let versions = new_versions(&batch);
            remember(&mut cache, &batch, &versions);
            Some(Prepared {
                results,
                batch,
                versions,
            })
        });
        Flight {
            commands,
            replies,
            prepared,
            started,
        }
    }

    /// Writes a batch, re-running it on the locked path after a conflict, and answers its
    /// callers.
    async fn fly(&self, flight: Flight) {
        let Flight {
            commands,
            replies,
            mut prepared,
            started,
        } = flight;
        let mut attempt = 1;
        let results = loop {
            let locked = prepared.is_none();
            let result = match prepared.take() {
                Some(prepared) => self.write_prepared(&commands, prepared).await,
                None => self.write_locked(&commands).await,
            };
            match result {
                Ok(results) => break results,
                Err(WriteError::Conflict) if !locked => {
                    metrics::counter!("ledger_fast_path_conflicts_total").increment(1);
                }
                Err(WriteError::Conflict) if attempt < BATCH_ATTEMPTS_MAX => attempt += 1,
                Err(WriteError::Database(error))
                    if attempt < BATCH_ATTEMPTS_MAX && self.db.backend().is_retryable(&error) =>
                {
                    tracing::debug!(%error, attempt, "ledger batch hit a transient conflict; running it again");
                    attempt += 1;
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

    /// Runs `work` on one of this writer's connections, which is kept for the next batch
    /// unless the database failed on it.
    async fn with_connection<T>(
        &self,
        work: impl AsyncFnOnce(&mut AnyConnection) -> Result<T, WriteError>,
    ) -> Result<T, WriteError> {
        let idle = self.idle.lock().expect("idle connections lock").pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => self.db.pool().acquire().await?,
        };
        let result = work(&mut conn).await;
        if !matches!(result, Err(WriteError::Database(_))) {
            self.idle.lock().expect("idle connections lock").push(conn);
        }
        result
    }

    /// Writes a batch the engine applied to cached states. One statement is its own
    /// transaction on PostgreSQL: one round trip per batch.
    async fn write_prepared(
        &self,
        commands: &[Command],
        prepared: Prepared,
    ) -> Result<Results, WriteError> {
        let Prepared {
            results,
            batch,
            versions,
        } = prepared;
        if batch.touched.is_empty() {
            return Ok(results);
        }
        let backend = self.db.backend();
        let write = batch_write(&batch, &versions);
        let written = self
            .with_connection(async |conn| match backend {
                Backend::Postgres => store::write_batch(conn, backend, &write).await,
                Backend::Sqlite => {
                    let mut tx = conn.begin_with(backend.begin_write_statement()).await?;
                    store::write_batch(&mut tx, backend, &write).await?;
                    tx.commit().await?;
                    Ok(())
                }
            })
            .await;
        match written {
            Ok(()) => Ok(results),
            Err(error) => {
                self.forget(commands);
                Err(error)
            }
        }
    }

    /// Reads and locks what the commands touch, applies them in order, writes what was
    /// accepted, and commits, all in one transaction; then caches what it stored.
    async fn write_locked(&self, commands: &[Command]) -> Result<Results, WriteError> {
        let backend = self.db.backend();
        let now = self.clock.now_micros();
        let written = self
            .with_connection(async |conn| {
                let mut tx = conn.begin_with(backend.begin_write_statement()).await?;
                let transaction_ids: Vec<TransactionId> = commands
                    .iter()
                    .filter_map(Command::transaction_id)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let hold_ids: Vec<HoldId> = commands
                    .iter()
                    .filter_map(Command::hold_id)
                    .cloned()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let holds = store::holds_for_update(&mut tx, backend, &hold_ids).await?;
                let accounts = lock_accounts(&mut tx, backend, commands, holds.values()).await?;
                // Stored ids are read after the locks: a command sent again while its first
                // sending is still committing (a pipelined batch, another replica) touches the
                // same accounts, so once they are locked here the first has committed and is
                // found, and the command is answered as a replay instead of being applied to
                // the state the first one left (and refused, say, for insufficient funds).
                let stored_hashes =
                    store::stored_hashes(&mut tx, backend, &transaction_ids).await?;
                let mut batch = Batch::new(accounts, holds, stored_hashes, now);
                let results: Results = commands.iter().map(|c| batch.apply(c)).collect();
                let versions = new_versions(&batch);
                if !batch.touched.is_empty() {
                    store::write_batch(&mut tx, backend, &batch_write(&batch, &versions)).await?;
                }
                tx.commit().await?;
                Ok((results, batch, versions))
            })
            .await;
        match written {
            Ok((results, batch, versions)) => {
                let mut cache = self.cache.lock().expect("account cache lock");
                remember(&mut cache, &batch, &versions);
                Ok(results)
            }
            Err(error) => {
                self.forget(commands);
                Err(error)
            }
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

/// The cached states of every account the commands name, or `None` when one is missing or
/// a command resolves a hold (whose state is never cached).
fn cached_states(
    cache: &HashMap<AccountId, AccountState>,
    commands: &[Command],
) -> Option<HashMap<AccountId, AccountState>> {
    let mut accounts = HashMap::new();
    for command in commands {
        if command.hold_id().is_some() {
            return None;
        }
        for id in command.account_ids() {
            accounts.insert(id.clone(), cache.get(id)?.clone());
        }
    }
    Some(accounts)
}

/// A fresh random version token for every account the batch changes. Tokens rather than
/// counters: a batch built on a state that was never committed (its predecessor in the
/// pipeline failed) must not find its expected version written by anyone else, and a
/// counter's next value is what every writer starting from the same state would write.
fn new_versions(batch: &Batch) -> Versions {
    batch
        .touched
        .iter()
        .map(|id| (id.clone(), rand::random::<i64>()))
        .collect()
}

/// Caches every account the batch saw, touched ones with the token the batch writes.
fn remember(cache: &mut HashMap<AccountId, AccountState>, batch: &Batch, versions: &Versions) {
    if cache.len() + batch.accounts.len() > ACCOUNT_CACHE_MAX {
        cache.clear();
    }
    for (id, state) in &batch.accounts {
        let mut state = state.clone();
        if let Some(version) = versions.get(id) {
            state.version = *version;
        }
        cache.insert(id.clone(), state);
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
fn batch_write<'a>(batch: &'a Batch, versions: &Versions) -> BatchWrite<'a> {
    let holds_of =
        |ids: &[HoldId]| -> Vec<&Hold> { ids.iter().map(|id| &batch.holds[id]).collect() };
    let mut accounts: Vec<(&AccountState, i64)> = batch
        .touched
        .iter()
        .map(|id| (&batch.accounts[id], versions[id]))
        .collect();
    accounts.sort_by(|a, b| a.0.id.cmp(&b.0.id));
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
