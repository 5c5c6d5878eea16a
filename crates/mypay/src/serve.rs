//! `mypay serve`, `mypay migrate` and `mypay check`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ledger::{Ledger, SystemClock};
use storage::Db;

use bank_accounts::{AccountKeys, BankAccountConfig, BankAccounts};
use banking::sandbox::{self, SandboxConfig, SandboxHandle};
use banking::{BankAccount, BankGateway, HttpBank, HttpBankConfig};

use psp::sandbox::{SandboxPspConfig, SandboxPspHandle};
use psp::{CardProcessor, SecretKey, TossConfig, TossPayments};

use crate::cli::{
    AccountKeyArgs, BankArgs, DatabaseArgs, EventStreamArgs, ItemLockArgs, PspArgs, ServeArgs,
};

/// How often the payments resumer continues orders a crash or an unknown card outcome left
/// unfinished.
const PAYMENT_RESUME_INTERVAL: Duration = Duration::from_secs(5);
/// How often escrows due to confirm themselves (a week after delivery) are confirmed.
const ESCROW_DUE_INTERVAL: Duration = Duration::from_secs(60);
/// How often the wallet's resolver finishes movements whose bank outcome was unknown.
const WALLET_RESOLVE_INTERVAL: Duration = Duration::from_secs(5);
/// How often settlement payouts whose outcome was unknown are asked after at the bank.
const SETTLEMENT_RESOLVE_INTERVAL: Duration = Duration::from_secs(30);
/// How often the job counts per state are published as gauges.
const JOB_COUNTS_INTERVAL: Duration = Duration::from_secs(15);
/// How often pending holds past their expiry are released.
const HOLD_SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Holds released per sweep, so one sweep cannot monopolise the writer.
const HOLD_SWEEP_BATCH: i64 = 500;
/// How often micro-deposits whose outcome is still unknown are asked after at the bank.
const DEPOSIT_SWEEP_INTERVAL: Duration = Duration::from_secs(30);
/// Deposits asked after per sweep.
const DEPOSIT_SWEEP_BATCH: i64 = 50;
/// How often completed idempotency keys past their retention are forgotten.
const IDEMPOTENCY_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// The shortest and longest retention of completed idempotency keys, in hours.
const IDEMPOTENCY_RETENTION_H: std::ops::RangeInclusive<u64> = 1..=720;
/// How often rows of expired item locks are deleted (database store only).
const ITEM_LOCK_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Expired item lock rows deleted per sweep.
const ITEM_LOCK_SWEEP_BATCH: i64 = 1000;
/// How often the webhook worker looks for due deliveries.
const WEBHOOK_DELIVERY_INTERVAL: Duration = Duration::from_secs(1);
/// The id of the key a new key file starts with.
const FIRST_KEY_ID: &str = "k1";

/// Connects and applies migrations; every command starts here.
pub(crate) async fn open(args: &DatabaseArgs) -> anyhow::Result<Db> {
    let db = Db::connect(&args.database_url, args.pool_size)
        .await
        .with_context(|| format!("cannot open {}", args.database_url))?;
    db.migrate().await.context("cannot migrate the database")?;
    tracing::info!(database = %args.database_url, backend = db.backend().name(), "database ready");
    Ok(db)
}

pub async fn migrate(args: DatabaseArgs) -> anyhow::Result<ExitCode> {
    open(&args).await?.close().await;
    println!("migrations applied to {}", args.database_url);
    Ok(ExitCode::SUCCESS)
}

pub async fn check(args: DatabaseArgs) -> anyhow::Result<ExitCode> {
    let db = open(&args).await?;
    let report = ledger::check(&db)
        .await
        .context("cannot run the invariant queries")?;
    db.close().await;
    print!("{report}");
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The shortest admin key accepted from configuration: anything shorter is guessable.
const ADMIN_KEY_LEN_MIN: usize = 32;
/// The longest bearer token the API reads.
const ADMIN_KEY_LEN_MAX: usize = 256;

/// Refuses a configured admin key that could never authenticate (the bearer parser takes
/// 32 to 256 visible ASCII characters) or that is too short to be secret.
fn check_admin_key(key: &str) -> anyhow::Result<()> {
    let visible = key.bytes().all(|b| b.is_ascii_graphic());
    if !visible || !(ADMIN_KEY_LEN_MIN..=ADMIN_KEY_LEN_MAX).contains(&key.len()) {
        anyhow::bail!(
            "MYPAY_ADMIN_API_KEY must be {ADMIN_KEY_LEN_MIN} to {ADMIN_KEY_LEN_MAX} visible ASCII characters"
        );
    }
    Ok(())
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    if let Some(key) = &args.admin_api_key {
        check_admin_key(key)?;
    }
    let schedules = crate::background::schedules(&args.schedules)?;
    let stream = event_stream(&args.event_stream)?;
    let db = open(&args.database).await?;
    let configured = args.admin_api_key.map(api::Secret::new);
    if let Some(created) = api::ensure_admin_key(&db, configured.as_ref()).await? {
        // Printed once, to stdout rather than the logs: only its digest is stored.
        println!(
            "created admin API key (shown only now): {}",
            created.expose()
        );
    }
    let ledger = Arc::new(Ledger::start(
        db.clone(),
        Arc::new(SystemClock),
        args.writer.config(),
    ));
    let sweeper = tokio::spawn(sweep_expired_holds(ledger.clone()));
    let retention_h = args.idempotency_retention_h.clamp(
        *IDEMPOTENCY_RETENTION_H.start(),
        *IDEMPOTENCY_RETENTION_H.end(),
    );
    let key_sweeper = tokio::spawn(forget_idempotency_keys(
        db.clone(),
        ledger.clone(),
        Duration::from_secs(retention_h * 3600),
    ));
    let keys = account_keys(&args.account_keys)?;
    tracing::info!(
        current_key = keys.current_key_id(),
        "account-number keys loaded"
    );
    let config = api::ApiConfig {
        body_limit_bytes: args.body_limit_bytes,
        members: api::MemberConfig {
            session_ttl_s: args.session_ttl_s,
        },
        bank_accounts: BankAccountConfig {
            partner_bank_code: args.account_keys.partner_bank_code,
            ..BankAccountConfig::new(Arc::new(keys))
        },
        wallet: args.wallet.config().map_err(anyhow::Error::msg)?,
        item_locks: item_locks(&args.item_locks, &db, &ledger).await?,
        payments: payments_config(&args.psp, args.payments_resume_after_s),
        settlement: settlement::SettlementConfig {
            report_dir: Some(args.settlement_report_dir.clone()),
        },
        remittance: args.remittance.config()?,
        reconciliation: args.reconciliation.config(args.bank.bank_url.as_deref()),
    };
    let (bank, sandbox) = connect_bank(&args.bank).await?;
    let (psp, sandbox_psp) = connect_psp(&args.psp).await?;
    let state = api::AppState::new(
        ledger.clone(),
        db.clone(),
        bank,
        psp,
        api::metrics_handle(),
        config,
    );
    let deposit_sweeper = tokio::spawn(settle_pending_deposits(state.bank_accounts()));
    let resolver = tokio::spawn(resolve_wallet_movements(state.wallets().clone()));
    let lock_sweeper = tokio::spawn(sweep_expired_item_locks(state.item_locks()));
    let webhook_worker = tokio::spawn(deliver_webhooks(state.webhooks().clone()));
    let resumer = tokio::spawn(resume_payments(state.payments().clone()));
    let escrow_timer = tokio::spawn(confirm_due_escrows(state.payments().clone()));
    let clock = ledger.clock();
    let job_runner = jobs::JobRunner::new(
        db.clone(),
        clock.clone(),
        crate::background::registry(
            &db,
            state.settlements(),
            state.remittances(),
            state.reconciliations(),
        ),
        jobs::RunnerConfig {
            lease: crate::background::job_lease(args.job_lease_s),
            ..jobs::RunnerConfig::default()
        },
    );
    let job_worker = tokio::spawn(job_runner.run(std::future::pending()));
    let scheduler = jobs::Scheduler::new(db.clone(), clock, schedules);
    let schedule_ticker = tokio::spawn(scheduler.run(std::future::pending()));
    let settlement_resolver = tokio::spawn(resolve_settlement_payouts(state.settlements().clone()));
    let job_counts = tokio::spawn(report_job_counts(state.jobs().clone()));
    let event_publisher = match stream {
        Some(stream) => {
            let publisher = events::Publisher::connect(db.clone(), ledger.clock(), stream).await?;
            tokio::spawn(publisher.run(std::future::pending()))
        }
        None => tokio::spawn(events::prune_without_stream(
            db.clone(),
            ledger.clock(),
            std::future::pending(),
        )),
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    // Built before announcing the address, so that a client (or a signal) that acts on the
    // announcement finds the server serving (and able to stop gracefully).
    let app = api::router(state);
    let shutdown = shutdown_signal();
    println!("listening on http://{address}");
    tracing::info!(%address, "listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("server error")?;
    tracing::info!("shutting down: draining the ledger writer");
    sweeper.abort();
    key_sweeper.abort();
    deposit_sweeper.abort();
    resolver.abort();
    lock_sweeper.abort();
    webhook_worker.abort();
    resumer.abort();
    escrow_timer.abort();
    // A job cut short here is due again when its claim ends: handlers run at least once.
    job_worker.abort();
    schedule_ticker.abort();
    settlement_resolver.abort();
    job_counts.abort();
    // Events being published stay claimed until their lease ends, then are due again.
    event_publisher.abort();
    close(&ledger, db, sandbox, sandbox_psp).await;
    Ok(ExitCode::SUCCESS)
}

/// Drains the ledger writer, closes the pool and stops the in-process sandboxes, in that
/// order: nothing acknowledged is lost, and no sandbox stops while a call to it may be running.
pub(crate) async fn close(
    ledger: &Ledger,
    db: Db,
    sandbox: Option<SandboxHandle>,
    sandbox_psp: Option<SandboxPspHandle>,
) {
    ledger.shutdown().await;
    db.close().await;
    if let Some(sandbox) = sandbox {
        sandbox.shutdown().await;
    }
    if let Some(sandbox) = sandbox_psp {
        sandbox.shutdown().await;
    }
}

/// The bank gateway: the HTTP adapter pointed at `--bank-url`, or at a sandbox bank started
/// here on a loopback port. Either way the same adapter speaks to the bank, so the embedded
/// default exercises the code a real bank connection uses.
pub(crate) async fn connect_bank(
    args: &BankArgs,
) -> anyhow::Result<(Arc<dyn BankGateway>, Option<SandboxHandle>)> {
    let master = BankAccount::new(args.bank_master_code, args.bank_master_account.clone());
    let (base_url, sandbox) = match &args.bank_url {
        Some(url) => (url.clone(), None),
        None => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("cannot open a port for the in-process sandbox bank")?;
            let config = SandboxConfig {
                master: master.clone(),
                ..SandboxConfig::new(&args.sandbox_bank_data)
            };
            let handle = sandbox::spawn(listener, config).await.with_context(|| {
                format!(
                    "cannot start the in-process sandbox bank in {}",
                    args.sandbox_bank_data.display()
                )
            })?;
            (handle.base_url().to_owned(), Some(handle))
        }
    };
    let bank = HttpBank::new(HttpBankConfig::new(
        &base_url,
        args.bank_institution,
        master,
    ))?;
    tracing::info!(bank = %base_url, in_process_sandbox = sandbox.is_some(), "bank gateway ready");
    Ok((Arc::new(bank), sandbox))
}

/// The item lock store and lifetime: Redis at `--redis-url` (which must answer now), else the
/// database on the ledger's clock.
async fn item_locks(
    args: &ItemLockArgs,
    db: &Db,
    ledger: &Ledger,
) -> anyhow::Result<api::ItemLockConfig> {
    let mut config = api::ItemLockConfig {
        store: None,
        ttl: Duration::from_secs(args.item_lock_ttl_s),
    };
    config
        .validate()
        .map_err(anyhow::Error::msg)
        .context("--item-lock-ttl-s (MYPAY_ITEM_LOCK_TTL_S)")?;
    // An empty value (`MYPAY_REDIS_URL=`) means none, as an unset one does.
    let redis_url = args
        .redis_url
        .as_ref()
        .map(|url| url.expose())
        .filter(|url| !url.is_empty());
    let store = item_lock::connect(redis_url, db.clone(), ledger.clock())
        .await
        .context("cannot reach the item lock store (--redis-url, MYPAY_REDIS_URL)")?;
    config.store = Some(store);
    tracing::info!(store = ?config.store, ttl_s = args.item_lock_ttl_s, "item locks ready");
    Ok(config)
}

/// The event stream `--nats-url` names, checked before anything starts; `None` without one.
fn event_stream(args: &EventStreamArgs) -> anyhow::Result<Option<events::StreamConfig>> {
    // An empty value (`MYPAY_NATS_URL=`) means none, as an unset one does.
    let Some(url) = args
        .nats_url
        .as_ref()
        .map(|url| url.expose())
        .filter(|url| !url.is_empty())
    else {
        return Ok(None);
    };
    let config = events::StreamConfig::new(url, &args.nats_stream, &args.nats_subject_prefix)
        .context("--nats-url, --nats-stream, --nats-subject-prefix")?;
    tracing::info!(?config, "events will be published to NATS JetStream");
    Ok(Some(config))
}

/// Deletes rows of expired item locks, forever, so that the database store holds about the
/// live locks. Expired locks are free already; a store that expires by itself sweeps nothing.
async fn sweep_expired_item_locks(locks: Arc<dyn item_lock::ItemLocks>) {
    let mut tick = tokio::time::interval(ITEM_LOCK_SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        match locks.sweep_expired(ITEM_LOCK_SWEEP_BATCH).await {
            Ok(0) => {}
            Ok(swept) => tracing::info!(swept, "expired item locks deleted"),
            Err(error) => tracing::warn!(%error, "item lock sweep failed; will retry"),
        }
    }
}

/// How payments run: the resumer's patience from the flag, and a claim on an order or refund
/// that outlasts the slowest step (two PSP calls at their timeout, a send and an inquiry, plus
/// room for a top-up at the bank).
fn payments_config(psp: &PspArgs, resume_after_s: u64) -> payments::PaymentsConfig {
    let defaults = payments::PaymentsConfig::default();
    let slowest_psp_call = Duration::from_millis(psp_timeout_ms(psp));
    payments::PaymentsConfig {
        resume_after: Duration::from_secs(resume_after_s.clamp(1, 3600)),
        claim_lease: defaults
            .claim_lease
            .max(slowest_psp_call * 2 + Duration::from_secs(30)),
        ..defaults
    }
}

/// The PSP call timeout, within its bounds.
fn psp_timeout_ms(args: &PspArgs) -> u64 {
    args.psp_timeout_ms.clamp(100, 120_000)
}

/// The card processor: the Toss Payments adapter pointed at `--psp-url`, or at a sandbox PSP
/// started here on a loopback port, so the embedded default runs the same adapter.
pub(crate) async fn connect_psp(
    args: &PspArgs,
) -> anyhow::Result<(Arc<dyn CardProcessor>, Option<SandboxPspHandle>)> {
    let (base_url, secret_key, sandbox) = match &args.psp_url {
        Some(url) => {
            let key = args
                .psp_secret_key
                .as_ref()
                .context("--psp-url needs --psp-secret-key (MYPAY_PSP_SECRET_KEY)")?;
            (url.clone(), SecretKey::new(key.expose()), None)
        }
        None => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .context("cannot open a port for the in-process sandbox PSP")?;
            let handle =
                psp::sandbox::spawn(listener, SandboxPspConfig::new(&args.sandbox_psp_data))
                    .await
                    .with_context(|| {
                        format!(
                            "cannot start the in-process sandbox PSP in {}",
                            args.sandbox_psp_data.display()
                        )
                    })?;
            // The in-process sandbox checks no credentials; the adapter sends some anyway.
            let key = SecretKey::new("test_sk_in_process_sandbox");
            (handle.base_url().to_owned(), key, Some(handle))
        }
    };
    let config = TossConfig {
        timeout: Duration::from_millis(psp_timeout_ms(args)),
        ..TossConfig::new(&base_url, secret_key)
    };
    let processor = TossPayments::new(config)?;
    tracing::info!(psp = %base_url, in_process_sandbox = sandbox.is_some(), "card processor ready");
    Ok((Arc::new(processor), sandbox))
}

/// Releases holds whose expiry has passed, forever.
async fn sweep_expired_holds(ledger: Arc<Ledger>) {
    let mut tick = tokio::time::interval(HOLD_SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        match ledger.expire_due_holds(HOLD_SWEEP_BATCH).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "expired holds released"),
            Err(error) => tracing::warn!(%error, "hold expiry sweep failed; will retry"),
        }
    }
}

/// Forgets completed idempotency keys older than `retention`, forever, so that the table stays
/// bounded by the traffic of one retention period.
async fn forget_idempotency_keys(db: Db, ledger: Arc<Ledger>, retention: Duration) {
    let retention_micros = i64::try_from(retention.as_micros()).expect("at most 720 hours");
    let mut tick = tokio::time::interval(IDEMPOTENCY_SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        let before = ledger.now_micros() - retention_micros;
        match api::idempotency::forget_completed(&db, before).await {
            Ok(0) => {}
            Ok(forgotten) => tracing::info!(forgotten, "idempotency keys past retention forgotten"),
            Err(error) => tracing::warn!(%error, "idempotency key sweep failed; will retry"),
        }
    }
}

/// Resolves micro-deposits whose outcome is still unknown, forever, so that one nobody asks
/// about again is still booked (or found refused) once the bank answers.
async fn settle_pending_deposits(bank_accounts: Arc<BankAccounts>) {
    let mut tick = tokio::time::interval(DEPOSIT_SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        match bank_accounts
            .settle_pending_deposits(DEPOSIT_SWEEP_BATCH)
            .await
        {
            Ok(0) => {}
            Ok(settled) => tracing::info!(settled, "pending micro-deposits resolved"),
            Err(error) => tracing::warn!(%error, "micro-deposit sweep failed; will retry"),
        }
    }
}

/// The account-number keys: from the flags (both or neither), else from the key file, which is
/// created with fresh keys on first start.
pub(crate) fn account_keys(args: &AccountKeyArgs) -> anyhow::Result<AccountKeys> {
    match (&args.account_keys, &args.account_index_key) {
        (Some(ring), Some(index)) => Ok(AccountKeys::parse(ring.expose(), index.expose())?),
        (Some(_), None) | (None, Some(_)) => anyhow::bail!(
            "--account-keys and --account-index-key (MYPAY_ACCOUNT_KEYS, MYPAY_ACCOUNT_INDEX_KEY) must be given together"
        ),
        (None, None) => load_or_create_key_file(&args.account_key_file),
    }
}

/// Reads the key file, or creates it (mode 0600, never overwriting) with fresh keys.
fn load_or_create_key_file(path: &std::path::Path) -> anyhow::Result<AccountKeys> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            warn_if_readable_by_others(path);
            let (ring, index) = parse_key_file(&text)
                .with_context(|| format!("cannot read the account keys in {}", path.display()))?;
            Ok(AccountKeys::parse(ring, index)?)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let (keys, ring, index) = AccountKeys::generate(FIRST_KEY_ID)?;
            write_new_key_file(path, &key_file_contents(&ring, &index))?;
            tracing::info!(file = %path.display(), "created the account-number key file; back it up with the database");
            Ok(keys)
        }
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The key file's text: comments, then `keys=` (the keyring) and `index=` (the index key).
fn key_file_contents(ring: &str, index: &str) -> String {
    format!(
        "# mypay account-number keys. Secret: back this file up with the database.\n\
         # keys: id:base64key,... (the first seals new values; keep old keys listed to read old values)\n\
         # index: the blind-index key; never change it once accounts are linked.\n\
         keys={ring}\nindex={index}\n"
    )
}

/// The keyring and index key of a key file; comments and blank lines are skipped.
fn parse_key_file(text: &str) -> anyhow::Result<(&str, &str)> {
    let (mut ring, mut index) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some(("keys", value)) if ring.is_none() => ring = Some(value.trim()),
            Some(("index", value)) if index.is_none() => index = Some(value.trim()),
            _ => anyhow::bail!("expected one keys= and one index= line"),
        }
    }
    ring.zip(index)
        .ok_or_else(|| anyhow::anyhow!("expected one keys= and one index= line"))
}

fn write_new_key_file(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Warns when the key file can be read by other users than its owner.
fn warn_if_readable_by_others(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(metadata) = std::fs::metadata(path) {
            if metadata.permissions().mode() & 0o077 != 0 {
                tracing::warn!(file = %path.display(), "the account key file is readable by other users; chmod 600 it");
            }
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM, so that in-flight requests finish before exit.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    // The SIGTERM handler is installed now, not when the future is first polled, so that a
    // signal sent right after the server announced itself stops it gracefully.
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let terminate = async move {
            match terminate {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            _ = terminate => {},
        }
    }
}

/// Publishes how many jobs are in each state (`mypay_jobs{state}`: queue depth, running, dead
/// letters) every 15 seconds, for dashboards and alerts.
async fn report_job_counts(jobs: jobs::Jobs) {
    let mut interval = tokio::time::interval(JOB_COUNTS_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match jobs.counts().await {
            Ok(counts) => {
                for state in jobs::JobState::ALL {
                    let n = counts
                        .iter()
                        .find(|(s, _)| *s == state)
                        .map_or(0, |(_, n)| *n);
                    metrics::gauge!("mypay_jobs", "state" => state.as_str()).set(n as f64);
                }
            }
            Err(error) => tracing::warn!(%error, "job counts could not be read"),
        }
    }
}

/// Finishes settlement payouts whose bank outcome was unknown when their run ended. This is
/// recovery, not scheduling: which days run, and when, is for the caller of `run_day`.
async fn resolve_settlement_payouts(settlements: settlement::Settlements) {
    let start = tokio::time::Instant::now() + SETTLEMENT_RESOLVE_INTERVAL;
    let mut interval = tokio::time::interval_at(start, SETTLEMENT_RESOLVE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match settlements
            .resolve_pending(settlement::RESOLVE_BATCH_MAX)
            .await
        {
            Ok(0) => {}
            Ok(finished) => tracing::info!(finished, "settlement resolver pass"),
            Err(error) => {
                tracing::warn!(code = error.code(), %error, "settlement resolver pass failed")
            }
        }
    }
}

/// Finishes wallet movements whose bank outcome was still unknown when their request answered:
/// one resolver pass every few seconds, until the server stops.
async fn resolve_wallet_movements(wallets: wallet::Wallets) {
    // The first pass waits one interval: startup has enough to do, and nothing is lost.
    let start = tokio::time::Instant::now() + WALLET_RESOLVE_INTERVAL;
    let mut interval = tokio::time::interval_at(start, WALLET_RESOLVE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match wallets
            .resolve_pending(wallet::RESOLVE_MIN_AGE, wallet::RESOLVE_BATCH_MAX)
            .await
        {
            Ok(pass) if pass.examined > 0 => {
                tracing::info!(
                    examined = pass.examined,
                    finished = pass.finished,
                    "wallet resolver pass"
                );
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(code = error.code(), %error, "wallet resolver pass failed")
            }
        }
    }
}

/// Sends due webhook deliveries: one worker pass every second, until the server stops. A pass
/// that claimed a full batch is followed at once by another, so a backlog drains at the speed
/// of the receivers rather than of the timer. Replicas may all run it: each delivery is
/// claimed by one pass at a time. Aborting a pass mid-send loses nothing: its claims run out
/// and the deliveries are due again.
async fn deliver_webhooks(webhooks: webhooks::Webhooks) {
    let mut interval = tokio::time::interval(WEBHOOK_DELIVERY_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        loop {
            match webhooks.deliver_due(webhooks::DELIVERY_BATCH_MAX).await {
                Ok(pass) if pass.claimed > 0 || pass.dead > 0 => {
                    tracing::info!(
                        claimed = pass.claimed,
                        delivered = pass.delivered,
                        retrying = pass.retrying,
                        dead = pass.dead,
                        cancelled = pass.cancelled,
                        "webhook delivery pass"
                    );
                    let full = i64::try_from(pass.claimed)
                        .is_ok_and(|claimed| claimed >= webhooks::DELIVERY_BATCH_MAX);
                    if !full {
                        break;
                    }
                }
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(code = error.code(), %error, "webhook delivery pass failed; will retry");
                    break;
                }
            }
        }
    }
}

/// Continues payment orders and refunds left unfinished (a crash, a card outcome not known
/// yet): one resumer pass of each every few seconds, until the server stops.
async fn resume_payments(payments: payments::Payments) {
    let start = tokio::time::Instant::now() + PAYMENT_RESUME_INTERVAL;
    let mut interval = tokio::time::interval_at(start, PAYMENT_RESUME_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let min_age = payments.config().resume_after;
        match payments
            .resume_pending(min_age, payments::RESUME_BATCH_MAX)
            .await
        {
            Ok(pass) if pass.examined > 0 => {
                tracing::info!(
                    examined = pass.examined,
                    finished = pass.finished,
                    "payments resumer pass"
                );
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(code = error.code(), %error, "payments resumer pass failed")
            }
        }
        match payments
            .resume_refunds(min_age, payments::RESUME_BATCH_MAX)
            .await
        {
            Ok(pass) if pass.examined > 0 => {
                tracing::info!(
                    examined = pass.examined,
                    finished = pass.finished,
                    "refunds resumer pass"
                );
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(code = error.code(), %error, "refunds resumer pass failed")
            }
        }
    }
}

/// Confirms escrows whose automatic confirmation has come and finishes those a crash left
/// half-ended: one pass a minute, again at once after a full batch. Replicas may all run it:
/// every step is conditional on the escrow's version, and the release is one ledger
/// transaction per order.
async fn confirm_due_escrows(payments: payments::Payments) {
    let mut interval = tokio::time::interval(ESCROW_DUE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        loop {
            match payments.escrow_due(payments::ESCROW_DUE_BATCH_MAX).await {
                Ok(0) => break,
                Ok(ended) => {
                    tracing::info!(ended, "escrow timer pass");
                    if i64::try_from(ended).unwrap_or(i64::MAX) < payments::ESCROW_DUE_BATCH_MAX {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(code = error.code(), %error, "escrow timer pass failed; will retry");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_file_is_private_and_reads_back_as_the_same_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("account-keys");
        let created = load_or_create_key_file(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let read = load_or_create_key_file(&path).unwrap();
        assert_eq!(read.current_key_id(), FIRST_KEY_ID);
        let sealed = created.seal(b"110123456789", b"row").unwrap();
        assert_eq!(
            read.open(&sealed.key_id, &sealed.sealed, b"row").unwrap(),
            b"110123456789"
        );
        assert_eq!(created.mac("d", &["x"]), read.mac("d", &["x"]));
    }

    #[test]
    fn key_files_need_one_keyring_and_one_index_key() {
        assert_eq!(
            parse_key_file("# c\n\nkeys=k1:AAA\nindex=BBB\n").unwrap(),
            ("k1:AAA", "BBB")
        );
        for bad in [
            "keys=a",
            "index=b",
            "keys=a\nkeys=b\nindex=c",
            "keys=a\nindex=b\nother=c",
        ] {
            assert!(parse_key_file(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn configured_admin_keys_must_be_usable_and_long() {
        assert!(check_admin_key(&"k".repeat(32)).is_ok());
        assert!(check_admin_key("short").is_err());
        assert!(check_admin_key(&format!("{} x", "k".repeat(40))).is_err());
        assert!(check_admin_key(&"k".repeat(257)).is_err());
    }
}
