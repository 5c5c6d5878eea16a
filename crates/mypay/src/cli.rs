//! Command-line flags, each with an environment variable to fall back on.

use std::time::Duration;

use banking::sandbox::FaultRule;
use banking::{AccountNumber, BankCode, HolderName, InstitutionCode};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ledger::WriterConfig;
use storage::DatabaseUrl;

/// The embedded default: a SQLite file in a data directory next to where mypay runs.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./mypay-data/mypay.db";

#[derive(Debug, Parser)]
#[command(
    name = "mypay",
    version,
    about = "A self-hostable payments and prepaid-money platform"
)]
pub struct Cli {
    #[command(flatten)]
    pub logging: Logging,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (migrates the database first).
    // Boxed: its many flags make it far larger than the other variants.
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Verify the ledger's invariants; exits non-zero with a report when one fails.
    Check(DatabaseArgs),
    /// Settle every merchant for one KST business date (payable at the cutoff less fees, paid
    /// to each settlement account) and write the day's CSV report; running a day again
    /// changes nothing. Uses the same bank configuration as `serve`.
    // Boxed: its flags make it larger than the other variants.
    Settle(Box<SettleArgs>),
    /// Reconcile one KST business date: the bank's statement of the master account and the
    /// PSP's report against our records, every mismatch listed, and the safeguarding check.
    /// Uses the same bank and PSP configuration as `serve`; exits 2 when anything differs.
    // Boxed: its flags make it larger than the other variants.
    Reconcile(Box<ReconcileArgs>),
    /// Measure throughput and latency.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Run the sandbox bank: a stand-in bank with its own accounts, an open-banking shaped
    /// API and fault injection.
    SandboxBank(SandboxBankArgs),
    /// Run the sandbox PSP: a stand-in card processor speaking the Toss Payments API, with test
    /// card tokens that approve, decline, time out or lose the reply.
    SandboxPsp(SandboxPspArgs),
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Random transfers (or all from one hot account) straight through the ledger's writer.
    Ledger(crate::bench::LedgerBenchArgs),
    /// An open-loop load of member transfers and checkouts over HTTP against a running server
    /// (configured with a sandbox bank), latency measured from each request's intended send time.
    // Boxed: its flags make it larger than the other variant.
    Api(Box<crate::bench_api::ApiBenchArgs>),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct Logging {
    /// Log format: human-readable text or one JSON object per line.
    #[arg(
        long,
        global = true,
        env = "MYPAY_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

impl Logging {
    /// Logs go to stderr, filtered by `RUST_LOG` (default `info`).
    pub fn init(&self) {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        match self.log_format {
            LogFormat::Text => builder.init(),
            LogFormat::Json => builder.json().init(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// sqlite://PATH or postgres://USER@HOST/DB. The password, if any, is never logged.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, value_parser = parse_database_url)]
    pub database_url: DatabaseUrl,
    /// Connections in the pool.
    #[arg(long, env = "MYPAY_POOL_SIZE", default_value_t = 16)]
    pub pool_size: u32,
}

pub fn parse_database_url(value: &str) -> Result<DatabaseUrl, String> {
    DatabaseUrl::parse(value).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Args)]
pub struct WriterArgs {
    /// The most ledger commands committed in one database transaction.
    #[arg(long, env = "MYPAY_BATCH_SIZE_MAX", default_value_t = WriterConfig::default().batch_size_max)]
    pub batch_size_max: usize,
    /// How long a writer lingers for more commands before committing, in microseconds.
    #[arg(long, env = "MYPAY_BATCH_WINDOW_US", default_value_t = WriterConfig::default().batch_window.as_micros() as u64)]
    pub batch_window_us: u64,
    /// Ledger writers committing at once (PostgreSQL; SQLite always uses one).
    #[arg(long, env = "MYPAY_LEDGER_WRITERS", default_value_t = WriterConfig::default().writers)]
    pub writers: usize,
    /// Batches each ledger writer keeps in flight (PostgreSQL; SQLite always commits one at a
    /// time).
    #[arg(long, env = "MYPAY_LEDGER_PIPELINE_DEPTH", default_value_t = WriterConfig::default().pipeline_depth)]
    pub pipeline_depth: usize,
}

impl WriterArgs {
    pub fn config(&self) -> WriterConfig {
        WriterConfig {
            batch_size_max: self.batch_size_max,
            batch_window: Duration::from_micros(self.batch_window_us),
            writers: self.writers,
            pipeline_depth: self.pipeline_depth,
            ..WriterConfig::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub writer: WriterArgs,
    /// Address to listen on; port 0 picks a free port (the chosen address is printed).
    #[arg(long, env = "MYPAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The largest request body accepted, in bytes.
    #[arg(long, env = "MYPAY_BODY_LIMIT_BYTES", default_value_t = api::ApiConfig::default().body_limit_bytes)]
    pub body_limit_bytes: usize,
    /// How long a member's session lives after login, in seconds (300 to 2,592,000).
    #[arg(long, env = "MYPAY_SESSION_TTL_S", default_value_t = api::MemberConfig::default().session_ttl_s)]
    pub session_ttl_s: i64,
    /// How long a completed Idempotency-Key is answered from its stored response, in hours
    /// (1 to 720).
    #[arg(long, env = "MYPAY_IDEMPOTENCY_RETENTION_H", default_value_t = api::idempotency::RETENTION_DEFAULT.as_secs() / 3600)]
    pub idempotency_retention_h: u64,
    /// The admin API key to accept; when unset, one is created on first start and printed once.
    #[arg(
        long = "admin-api-key",
        env = "MYPAY_ADMIN_API_KEY",
        hide_env_values = true
    )]
    pub admin_api_key: Option<String>,
    #[command(flatten)]
    pub bank: BankArgs,
    #[command(flatten)]
    pub account_keys: AccountKeyArgs,
    #[command(flatten)]
    pub wallet: WalletArgs,
    #[command(flatten)]
    pub item_locks: ItemLockArgs,
    #[command(flatten)]
    pub psp: PspArgs,
    #[command(flatten)]
    pub event_stream: EventStreamArgs,
    /// The directory settlement runs write `settlement-YYYY-MM-DD.csv` into (the reports are
    /// served over HTTP in any case).
    #[arg(long, env = "MYPAY_SETTLEMENT_REPORT_DIR", default_value = SETTLEMENT_REPORT_DIR_DEFAULT)]
    pub settlement_report_dir: std::path::PathBuf,
    /// How long an unfinished payment order is left to its own request before the resumer
    /// takes it over, in seconds (1 to 3600).
    #[arg(long, env = "MYPAY_PAYMENTS_RESUME_AFTER_S", default_value_t = 15)]
    pub payments_resume_after_s: u64,
    /// A schedule for periodic work, NAME=CRON (five fields, read in KST) or NAME=off; repeat
    /// for more. Names and defaults: settlement="0 2 * * *", ledger-check="0 3 * * *",
    /// reconciliation="0 4 * * *", remittance-retry and remittance-monitor="* * * * *".
    #[arg(long = "schedule", value_name = "NAME=CRON")]
    pub schedules: Vec<String>,
    /// How long a worker's claim on a job lasts, in seconds (1 to 86,400): a job whose worker
    /// died is due again after it; a job that runs longer is cut off and retried.
    #[arg(long, env = "MYPAY_JOB_LEASE_S", default_value_t = crate::background::JOB_LEASE_S_DEFAULT)]
    pub job_lease_s: u64,
    #[command(flatten)]
    pub remittance: RemittanceArgs,
    #[command(flatten)]
    pub reconciliation: ReconciliationArgs,
}

/// How reconciliation judges safeguarding.
#[derive(Debug, Clone, Args)]
pub struct ReconciliationArgs {
    /// The platform's own money in the bank's master account that the ledger does not book
    /// (the float the account was opened with), in won: safeguarding takes it off the bank's
    /// balance. Unset: the in-process sandbox bank's opening balance, or 0 with `--bank-url`.
    #[arg(long, env = "MYPAY_SAFEGUARDING_OWN_FUNDS")]
    pub safeguarding_own_funds: Option<i64>,
}

impl ReconciliationArgs {
    /// The reconciliation configuration for a bank at `bank_url` (none: the in-process sandbox).
    pub fn config(&self, bank_url: Option<&str>) -> reconciliation::ReconciliationConfig {
        let sandbox_float = match bank_url {
            None => banking::sandbox::MASTER_OPENING_BALANCE_WON_DEFAULT,
            Some(_) => 0,
        };
        reconciliation::ReconciliationConfig {
            own_funds_won: self.safeguarding_own_funds.unwrap_or(sandbox_float),
        }
    }
}

/// `mypay reconcile`: the day, the database, and the bank and PSP exactly as `serve` takes them.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The KST business date to reconcile, `YYYY-MM-DD`; a day in progress is reconciled up
    /// to the last whole second.
    #[arg(long)]
    pub date: String,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub bank: BankArgs,
    #[command(flatten)]
    pub psp: PspArgs,
    #[command(flatten)]
    pub reconciliation: ReconciliationArgs,
}

/// How business remittances run.
#[derive(Debug, Clone, Args)]
pub struct RemittanceArgs {
    /// Where the remittance monitor POSTs an alert (JSON) for each remittance not finished in
    /// time, besides its error log line and the `mypay_remittance_alerts_total` metric.
    #[arg(long, env = "MYPAY_REMITTANCE_ALERT_URL")]
    pub remittance_alert_url: Option<String>,
    /// Attempts each remittance step gets before its job is a dead letter (1 to 20).
    #[arg(long, env = "MYPAY_REMITTANCE_STEP_ATTEMPTS", default_value_t = 3)]
    pub remittance_step_attempts: i64,
    /// The pause between attempts of a remittance step, in seconds (at most 3,600).
    #[arg(long, env = "MYPAY_REMITTANCE_STEP_DELAY_S", default_value_t = 10)]
    pub remittance_step_delay_s: u64,
    /// How long after it was requested an unfinished remittance is alerted on, in seconds
    /// (1 to 86,400).
    #[arg(long, env = "MYPAY_REMITTANCE_OVERDUE_S", default_value_t = 600)]
    pub remittance_overdue_s: u64,
}

impl RemittanceArgs {
    /// The remittance configuration these flags describe; an alert URL must be http(s).
    pub fn config(&self) -> anyhow::Result<remittance::RemittanceConfig> {
        let alert_url = self
            .remittance_alert_url
            .as_deref()
            .map(|raw| {
                let url = reqwest::Url::parse(raw)
                    .map_err(|error| anyhow::anyhow!("--remittance-alert-url: {error}"))?;
                if !matches!(url.scheme(), "http" | "https") {
                    anyhow::bail!("--remittance-alert-url must be an http or https URL");
                }
                Ok(url)
            })
            .transpose()?;
        Ok(remittance::RemittanceConfig {
            step_attempts: self.remittance_step_attempts,
            step_delay: std::time::Duration::from_secs(self.remittance_step_delay_s),
            overdue_after: std::time::Duration::from_secs(self.remittance_overdue_s),
            alert_url,
            ..remittance::RemittanceConfig::default()
        }
        .bounded())
    }
}

/// Where settlement reports go unless configured.
pub const SETTLEMENT_REPORT_DIR_DEFAULT: &str = "./mypay-data/settlements";

/// `mypay settle`: the day, the database, the report directory, and the bank and account keys
/// exactly as `serve` takes them (the in-process sandbox bank by default).
#[derive(Debug, Args)]
pub struct SettleArgs {
    /// The KST business date to settle, `YYYY-MM-DD`; its cutoff (the next day's 00:00 KST)
    /// must have passed.
    #[arg(long)]
    pub date: String,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The directory the day's `settlement-YYYY-MM-DD.csv` is written into.
    #[arg(long, env = "MYPAY_SETTLEMENT_REPORT_DIR", default_value = SETTLEMENT_REPORT_DIR_DEFAULT)]
    pub report_dir: std::path::PathBuf,
    #[command(flatten)]
    pub bank: BankArgs,
    #[command(flatten)]
    pub account_keys: AccountKeyArgs,
}

/// Where a unique item is locked while its first buyer pays, and for how long.
#[derive(Debug, Args)]
pub struct ItemLockArgs {
    /// Redis for item locks, `redis://[:PASSWORD@]HOST:PORT[/DB]`; it must be reachable at
    /// start. When unset or empty, item locks are kept in the database.
    #[arg(long, env = "MYPAY_REDIS_URL", hide_env_values = true, value_parser = parse_secret)]
    pub redis_url: Option<SecretArg>,
    /// How long a checkout holds the unique items it names, in seconds (1 to 86,400).
    #[arg(long, env = "MYPAY_ITEM_LOCK_TTL_S", default_value_t = item_lock::DEFAULT_TTL.as_secs())]
    pub item_lock_ttl_s: u64,
}

/// The NATS JetStream stream domain events are published to, besides webhooks.
#[derive(Debug, Args)]
pub struct EventStreamArgs {
    /// A NATS server with JetStream, `nats://[USER:PASSWORD@]HOST:PORT`: every domain event is
    /// published to it. When unset or empty, nothing connects to NATS (events are kept for a
    /// week, for a stream configured later).
    #[arg(long, env = "MYPAY_NATS_URL", hide_env_values = true, value_parser = parse_secret)]
    pub nats_url: Option<SecretArg>,
    /// The JetStream stream, created (capturing `<subject prefix>.>`) when missing.
    #[arg(long, env = "MYPAY_NATS_STREAM", default_value = events::STREAM_NAME_DEFAULT)]
    pub nats_stream: String,
    /// Events are published to `<prefix>.<event type>`, e.g. `mypay.events.payment.succeeded`.
    #[arg(long, env = "MYPAY_NATS_SUBJECT_PREFIX", default_value = events::SUBJECT_PREFIX_DEFAULT)]
    pub nats_subject_prefix: String,
}

/// The card processor checkout charges cards through.
#[derive(Debug, Args)]
pub struct PspArgs {
    /// The card processor's API base URL: Toss Payments (`https://api.tosspayments.com`) or a
    /// `mypay sandbox-psp`. When unset, a sandbox PSP runs in-process on a loopback port with
    /// its data in `--sandbox-psp-data`.
    #[arg(long, env = "MYPAY_PSP_URL")]
    pub psp_url: Option<String>,
    /// The secret key sent to the PSP as HTTP Basic credentials; required with `--psp-url`.
    #[arg(long, env = "MYPAY_PSP_SECRET_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub psp_secret_key: Option<SecretArg>,
    /// How long a call to the PSP may take before its outcome is taken as unknown, in
    /// milliseconds.
    #[arg(long, env = "MYPAY_PSP_TIMEOUT_MS", default_value_t = psp::TIMEOUT_DEFAULT.as_millis() as u64)]
    pub psp_timeout_ms: u64,
    /// Where the in-process sandbox PSP keeps its database (unused with `--psp-url`).
    #[arg(
        long,
        env = "MYPAY_SANDBOX_PSP_DATA",
        default_value = "./mypay-data/sandbox-psp"
    )]
    pub sandbox_psp_data: std::path::PathBuf,
}

/// The keys that seal account numbers at rest, and the partner bank.
#[derive(Debug, Args)]
pub struct AccountKeyArgs {
    /// The account-number keyring, `id:base64key,…` (32-byte keys): the first seals new values,
    /// every listed key opens what it sealed. Needs `--account-index-key`. When unset, both
    /// come from `--account-key-file`.
    #[arg(long, env = "MYPAY_ACCOUNT_KEYS", hide_env_values = true, value_parser = parse_secret)]
    pub account_keys: Option<SecretArg>,
    /// The blind-index key (base64, 32 bytes) for account-number uniqueness and code digests.
    /// It must never change once accounts are linked.
    #[arg(long, env = "MYPAY_ACCOUNT_INDEX_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub account_index_key: Option<SecretArg>,
    /// Where the keys live when not given as flags; created with fresh keys (mode 0600) on
    /// first start. Back it up with the database: sealed numbers cannot be read without it.
    #[arg(
        long,
        env = "MYPAY_ACCOUNT_KEY_FILE",
        default_value = "./mypay-data/account-keys"
    )]
    pub account_key_file: std::path::PathBuf,
    /// The partner bank's 3-digit code: partner accounts must be held there.
    #[arg(long, env = "MYPAY_PARTNER_BANK_CODE", default_value = bank_accounts::PARTNER_BANK_CODE_DEFAULT, value_parser = parse_bank_code)]
    pub partner_bank_code: BankCode,
}

/// A secret given on the command line or in the environment; `Debug` never shows it.
#[derive(Clone)]
pub struct SecretArg(String);

impl SecretArg {
    /// The secret itself, for the one place that parses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

fn parse_secret(value: &str) -> Result<SecretArg, String> {
    Ok(SecretArg(value.to_owned()))
}

/// Wallet limits and automatic top-up, in won. The defaults are the Korean caps on prepaid
/// money (2,000,000 won held, and charged or sent per transaction and per day).
#[derive(Debug, Args)]
pub struct WalletArgs {
    /// Automatic top-up charges the shortfall rounded up to a multiple of this.
    #[arg(long, env = "MYPAY_AUTO_TOP_UP_UNIT", default_value_t = wallet::AUTO_TOP_UP_UNIT_WON_DEFAULT)]
    pub auto_top_up_unit: i64,
    /// The most a wallet may hold, counting charges still in flight.
    #[arg(long, env = "MYPAY_WALLET_MAX_BALANCE", default_value_t = wallet::MAX_BALANCE_WON_DEFAULT)]
    pub wallet_max_balance: i64,
    /// The most one charge, withdrawal, payout or transfer may move.
    #[arg(long, env = "MYPAY_WALLET_PER_TRANSACTION_LIMIT", default_value_t = wallet::PER_TRANSACTION_WON_DEFAULT)]
    pub wallet_per_transaction_limit: i64,
    /// The most a member may charge in one KST day.
    #[arg(long, env = "MYPAY_WALLET_DAILY_CHARGE_LIMIT", default_value_t = wallet::DAILY_CHARGE_WON_DEFAULT)]
    pub wallet_daily_charge_limit: i64,
    /// The most a member may send out (withdrawals, payouts, transfers) in one KST day.
    #[arg(long, env = "MYPAY_WALLET_DAILY_OUTGOING_LIMIT", default_value_t = wallet::DAILY_OUTGOING_WON_DEFAULT)]
    pub wallet_daily_outgoing_limit: i64,
}

impl WalletArgs {
    /// The configuration, refused when a value is outside 1 to 999,999,999,999 won.
    pub fn config(&self) -> Result<wallet::WalletConfig, String> {
        let config = wallet::WalletConfig {
            limits: wallet::Limits {
                max_balance: self.wallet_max_balance,
                per_transaction: self.wallet_per_transaction_limit,
                daily_charge: self.wallet_daily_charge_limit,
                daily_outgoing: self.wallet_daily_outgoing_limit,
            },
            auto_top_up_unit: self.auto_top_up_unit,
        };
        config.validate()?;
        Ok(config)
    }
}

/// Which bank mypay talks to: a bank's open-banking API at `--bank-url`, or, when that is not
/// given, a sandbox bank that `serve` runs in-process.
#[derive(Debug, Args)]
pub struct BankArgs {
    /// The bank's API base URL (e.g. a `mypay sandbox-bank`); when unset, a sandbox bank runs
    /// in-process on a loopback port with its data in `--sandbox-bank-data`.
    #[arg(long, env = "MYPAY_BANK_URL")]
    pub bank_url: Option<String>,
    /// Our institution code at the bank: the first 10 characters of every request id.
    #[arg(long, env = "MYPAY_BANK_INSTITUTION", default_value = BANK_INSTITUTION_DEFAULT, value_parser = parse_institution)]
    pub bank_institution: InstitutionCode,
    /// The bank code of the platform's master account.
    #[arg(long, env = "MYPAY_BANK_MASTER_CODE", default_value = banking::sandbox::MASTER_BANK_CODE_DEFAULT, value_parser = parse_bank_code)]
    pub bank_master_code: BankCode,
    /// The number of the platform's master account.
    #[arg(long, env = "MYPAY_BANK_MASTER_ACCOUNT", default_value = banking::sandbox::MASTER_ACCOUNT_NUMBER_DEFAULT, value_parser = parse_account_number, hide_env_values = true)]
    pub bank_master_account: AccountNumber,
    /// Where the in-process sandbox bank keeps its database (unused with `--bank-url`).
    #[arg(
        long,
        env = "MYPAY_SANDBOX_BANK_DATA",
        default_value = "./mypay-data/sandbox-bank"
    )]
    pub sandbox_bank_data: std::path::PathBuf,
}

/// The institution code mypay uses when none is configured.
pub const BANK_INSTITUTION_DEFAULT: &str = "MYPAY00001";

#[derive(Debug, Args)]
pub struct SandboxBankArgs {
    /// Address to listen on; port 0 picks a free port (the chosen address is printed).
    #[arg(
        long,
        env = "MYPAY_SANDBOX_BANK_LISTEN",
        default_value = "127.0.0.1:8090"
    )]
    pub listen: String,
    /// Directory for the sandbox's own database; created when missing.
    #[arg(
        long,
        env = "MYPAY_SANDBOX_BANK_DATA",
        default_value = "./sandbox-bank-data"
    )]
    pub data: std::path::PathBuf,
    /// A fault rule, OP=KIND[,count=N][,latency_ms=MS][,hold_ms=MS]; repeat for more.
    /// OP: real_name, consent, collect, payout, result, statement.
    /// KIND: latency, error, timeout, lost_reply.
    #[arg(long = "fault", value_name = "RULE")]
    pub faults: Vec<FaultRule>,
    /// Bearer token the admin API requires; when unset, the admin API is open.
    #[arg(long, env = "MYPAY_SANDBOX_BANK_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// The master account's bank code (fixed when the data directory is first used).
    #[arg(long, default_value = banking::sandbox::MASTER_BANK_CODE_DEFAULT, value_parser = parse_bank_code)]
    pub master_bank_code: BankCode,
    /// The master account's number (fixed when the data directory is first used).
    #[arg(long, default_value = banking::sandbox::MASTER_ACCOUNT_NUMBER_DEFAULT, value_parser = parse_account_number)]
    pub master_account: AccountNumber,
    /// The master account's holder name.
    #[arg(long, default_value = banking::sandbox::MASTER_HOLDER_DEFAULT, value_parser = parse_holder_name)]
    pub master_holder: HolderName,
    /// What the master account holds when it is created, in won.
    #[arg(long, default_value_t = banking::sandbox::MASTER_OPENING_BALANCE_WON_DEFAULT)]
    pub master_opening_balance: i64,
    /// Statement lines per page (1-500).
    #[arg(long, default_value_t = banking::sandbox::STATEMENT_PAGE_SIZE_DEFAULT)]
    pub statement_page_size: usize,
}

#[derive(Debug, Args)]
pub struct SandboxPspArgs {
    /// Address to listen on; port 0 picks a free port (the chosen address is printed).
    #[arg(
        long,
        env = "MYPAY_SANDBOX_PSP_LISTEN",
        default_value = "127.0.0.1:8091"
    )]
    pub listen: String,
    /// Directory for the sandbox's own database; created when missing.
    #[arg(
        long,
        env = "MYPAY_SANDBOX_PSP_DATA",
        default_value = "./sandbox-psp-data"
    )]
    pub data: std::path::PathBuf,
    /// The secret key clients must present (HTTP Basic, as the Toss API takes it); when unset,
    /// any credentials are accepted.
    #[arg(long, env = "MYPAY_SANDBOX_PSP_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// How long the `timeout` and `lost_reply` test cards withhold their reply, in milliseconds.
    #[arg(long, default_value_t = psp::sandbox::HOLD_DEFAULT.as_millis() as u64)]
    pub hold_ms: u64,
    /// How long an idempotency key is remembered, in seconds (Toss Payments: 15 days); a key
    /// older than this is a new request.
    #[arg(long, default_value_t = psp::sandbox::IDEMPOTENCY_TTL_DEFAULT.as_secs())]
    pub idempotency_ttl_s: u64,
}

fn parse_institution(value: &str) -> Result<InstitutionCode, String> {
    InstitutionCode::parse(value).map_err(|e| e.to_string())
}

fn parse_bank_code(value: &str) -> Result<BankCode, String> {
    BankCode::parse(value).map_err(|e| e.to_string())
}

fn parse_account_number(value: &str) -> Result<AccountNumber, String> {
    AccountNumber::parse(value).map_err(|e| e.to_string())
}

fn parse_holder_name(value: &str) -> Result<HolderName, String> {
    HolderName::parse(value).map_err(|e| e.to_string())
}
