//! `mypay serve`, `mypay migrate` and `mypay check`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ledger::{Ledger, SystemClock};
use storage::Db;

use banking::sandbox::{self, SandboxConfig, SandboxHandle};
use banking::{BankAccount, BankGateway, HttpBank, HttpBankConfig};

use crate::cli::{BankArgs, DatabaseArgs, ServeArgs};

/// How often the wallet's resolver finishes movements whose bank outcome was unknown.
const WALLET_RESOLVE_INTERVAL: Duration = Duration::from_secs(5);
/// How often pending holds past their expiry are released.
const HOLD_SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Holds released per sweep, so one sweep cannot monopolise the writer.
const HOLD_SWEEP_BATCH: i64 = 500;

/// Connects and applies migrations; every command starts here.
async fn open(args: &DatabaseArgs) -> anyhow::Result<Db> {
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
    let config = api::ApiConfig {
        body_limit_bytes: args.body_limit_bytes,
        members: api::MemberConfig {
            session_ttl_s: args.session_ttl_s,
        },
        wallet: args.wallet.config().map_err(anyhow::Error::msg)?,
    };
    let (bank, sandbox) = connect_bank(&args.bank).await?;
    let state = api::AppState::new(
        ledger.clone(),
        db.clone(),
        bank,
        api::metrics_handle(),
        config,
    );
    let resolver = tokio::spawn(resolve_wallet_movements(state.wallets().clone()));
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
    resolver.abort();
    ledger.shutdown().await;
    db.close().await;
    if let Some(sandbox) = sandbox {
        sandbox.shutdown().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// The bank gateway: the HTTP adapter pointed at `--bank-url`, or at a sandbox bank started
/// here on a loopback port. Either way the same adapter speaks to the bank, so the embedded
/// default exercises the code a real bank connection uses.
async fn connect_bank(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_admin_keys_must_be_usable_and_long() {
        assert!(check_admin_key(&"k".repeat(32)).is_ok());
        assert!(check_admin_key("short").is_err());
        assert!(check_admin_key(&format!("{} x", "k".repeat(40))).is_err());
        assert!(check_admin_key(&"k".repeat(257)).is_err());
    }
}
