//! The sandbox bank: a separate HTTP server that behaves like a bank. It keeps its own accounts
//! and balances in a SQLite file in its data directory, holds the platform's master account,
//! executes transfers atomically and idempotently by `bank_tran_id`, writes statements, and can
//! be told to be slow, to fail, to time out or to lose its replies ([`faults`]).
//!
//! It speaks an open-banking shaped API (the crate's `wire` module) under `/v2.0/…`, so that
//! mypay reaches it through the very same [`crate::HttpBank`] it would use for a real bank, and
//! has an admin API under `/admin/…` for what a bank's customers do at the counter or in their
//! bank app: opening accounts, paying in cash, reading balances and statements. Run it as
//! `mypay sandbox-bank`, or in-process with [`spawn`].

mod admin;
pub mod faults;
mod openbanking;
mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::account::{AccountNumber, BankAccount, BankCode, HolderName};
use crate::error::InvalidValue;
pub use faults::{FaultKind, FaultOp, FaultRule, FaultRuleError, Faults};
use store::Store;
pub use store::DB_FILE;

/// The master account's bank when none is configured.
pub const MASTER_BANK_CODE_DEFAULT: &str = "088";
/// The master account's number when none is configured.
pub const MASTER_ACCOUNT_NUMBER_DEFAULT: &str = "100200300400";
/// The master account's holder when none is configured.
pub const MASTER_HOLDER_DEFAULT: &str = "마이페이";
/// What the master account holds when it is created: the platform's own money, so that payouts
/// (a micro-deposit, a merchant's settlement) work before anyone has charged.
pub const MASTER_OPENING_BALANCE_WON_DEFAULT: i64 = 1_000_000_000;
/// Statement lines per page by default, as in the open-banking API.
pub const STATEMENT_PAGE_SIZE_DEFAULT: usize = 25;
/// The most statement lines a page may hold.
pub const STATEMENT_PAGE_SIZE_MAX: usize = 500;
/// The largest request body the sandbox reads.
const BODY_LIMIT_BYTES: usize = 64 * 1024;
/// How long [`SandboxHandle::shutdown`] lets requests in flight finish. Withheld replies (the
/// `timeout` and `lost_reply` faults) would otherwise hold it for their whole hold time.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(2);

/// What the sandbox is started with.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Where the sandbox keeps its database ([`DB_FILE`]); created when missing.
    pub data_dir: PathBuf,
    /// The platform's master account. Fixed when the data directory is first used: a later
    /// start with another master account is refused.
    pub master: BankAccount,
    pub master_holder: HolderName,
    /// The master account's balance when it is created, in won.
    pub master_opening_balance_won: i64,
    /// Faults in force from the start.
    pub faults: Vec<FaultRule>,
    /// When set, every `/admin/…` request must carry it as a bearer token.
    pub admin_token: Option<AdminToken>,
    /// Statement lines per page, 1 to [`STATEMENT_PAGE_SIZE_MAX`].
    pub statement_page_size: usize,
}

impl SandboxConfig {
    /// The defaults: the master account `088` `100200300400` of `마이페이` opening with
    /// 1,000,000,000 won, no faults, no admin token, 25 lines per statement page.
    pub fn new(data_dir: impl Into<PathBuf>) -> SandboxConfig {
        SandboxConfig {
            data_dir: data_dir.into(),
            master: BankAccount::new(
                BankCode::parse(MASTER_BANK_CODE_DEFAULT).expect("a valid default"),
                AccountNumber::parse(MASTER_ACCOUNT_NUMBER_DEFAULT).expect("a valid default"),
            ),
            master_holder: HolderName::parse(MASTER_HOLDER_DEFAULT).expect("a valid default"),
            master_opening_balance_won: MASTER_OPENING_BALANCE_WON_DEFAULT,
            faults: Vec::new(),
            admin_token: None,
            statement_page_size: STATEMENT_PAGE_SIZE_DEFAULT,
        }
    }
}

/// The bearer token of the sandbox's admin API. `Debug` never shows it.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    /// 16 to 256 visible ASCII characters: shorter is guessable, longer is not a token.
    pub fn new(token: &str) -> Result<AdminToken, InvalidValue> {
        let valid =
            (16..=256).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic());
        if !valid {
            return Err(InvalidValue::new(
                "admin_token",
                "must be 16 to 256 visible ASCII characters",
            ));
        }
        Ok(AdminToken(token.to_owned()))
    }

    /// Compares in time independent of where the first difference is, so that response times
    /// do not reveal the token a prefix at a time.
    fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot use the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the sandbox database: {0}")]
    Storage(#[from] storage::StorageError),
    #[error("cannot migrate the sandbox database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("sandbox database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("the data directory belongs to a sandbox with another master account")]
    MasterMismatch,
    #[error("the master account's opening balance must be between 0 and 999999999999999 won")]
    OpeningBalance,
    #[error(transparent)]
    Faults(#[from] FaultRuleError),
    #[error("cannot read the listener's address: {0}")]
    Listener(std::io::Error),
}

/// What every handler shares.
#[derive(Debug)]
struct Sandbox {
    store: Store,
    faults: Arc<Faults>,
    admin_token: Option<AdminToken>,
    master: BankAccount,
    statement_page_size: usize,
}

/// A running sandbox. Dropping it stops the server abruptly; [`SandboxHandle::shutdown`] lets
/// requests in flight finish first and closes the database.
#[derive(Debug)]
pub struct SandboxHandle {
    base_url: String,
    local_addr: SocketAddr,
    master: BankAccount,
    faults: Arc<Faults>,
    store: Store,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// The most a master account may open with: far beyond any test, far below overflow.
const OPENING_BALANCE_WON_MAX: i64 = 999_999_999_999_999;

/// Starts the sandbox on `listener` (bind port 0 for a free port) and returns once it accepts
/// requests.
pub async fn spawn(
    listener: TcpListener,
    config: SandboxConfig,
) -> Result<SandboxHandle, SandboxError> {
    if !(0..=OPENING_BALANCE_WON_MAX).contains(&config.master_opening_balance_won) {
        return Err(SandboxError::OpeningBalance);
    }
    let local_addr = listener.local_addr().map_err(SandboxError::Listener)?;
    let faults = Arc::new(Faults::new(config.faults)?);
    let store = Store::open(
        &config.data_dir,
        &config.master,
        &config.master_holder,
        config.master_opening_balance_won,
    )
    .await?;
    let state = Arc::new(Sandbox {
        store: store.clone(),
        faults: faults.clone(),
        admin_token: config.admin_token,
        master: config.master.clone(),
        statement_page_size: config.statement_page_size.clamp(1, STATEMENT_PAGE_SIZE_MAX),
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(state);
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the sandbox bank's server failed");
        }
    });
    let mut connectable = local_addr;
    if connectable.ip().is_unspecified() {
        // Bound to every interface: reach it over loopback.
        connectable.set_ip(match local_addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    tracing::info!(address = %local_addr, master = %config.master.account_number.masked(), "sandbox bank listening");
    Ok(SandboxHandle {
        base_url: format!("http://{connectable}"),
        local_addr,
        master: config.master,
        faults,
        store,
        stop: Some(stop),
        task: Some(task),
    })
}

impl SandboxHandle {
    /// Where to reach the sandbox, e.g. `http://127.0.0.1:41234`: the base URL for
    /// [`crate::HttpBankConfig`].
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The platform's master account at this sandbox.
    pub fn master_account(&self) -> &BankAccount {
        &self.master
    }

    /// The fault rules in force, to change them in-process (the admin API changes the same).
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Stops accepting requests, lets those in flight finish (for at most 2 s, since withheld
    /// replies may hold on for much longer), and closes the database.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(SHUTDOWN_DRAIN, &mut task)
                .await
                .is_err()
            {
                task.abort();
                let _ = task.await;
            }
        }
        self.store.close().await;
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn router(state: Arc<Sandbox>) -> Router {
    let admin = Router::new()
        .route("/admin/accounts", post(admin::open_account))
        .route(
            "/admin/accounts/{bank_code}/{account_num}",
            get(admin::account),
        )
        .route(
            "/admin/accounts/{bank_code}/{account_num}/transactions",
            get(admin::transactions),
        )
        .route(
            "/admin/accounts/{bank_code}/{account_num}/deposits",
            post(admin::deposit),
        )
        .route("/admin/master", get(admin::master))
        .route(
            "/admin/faults",
            get(admin::list_faults)
                .put(admin::replace_faults)
                .post(admin::append_faults)
                .delete(admin::clear_faults),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::authorize,
        ));
    Router::new()
        .route("/v2.0/inquiry/real_name", post(openbanking::real_name))
        .route(
            "/v2.0/consent/register",
            post(openbanking::register_consent),
        )
        .route("/v2.0/consent/revoke", post(openbanking::revoke_consent))
        .route(
            "/v2.0/transfer/withdraw/acnt_num",
            post(openbanking::withdraw),
        )
        .route(
            "/v2.0/transfer/deposit/acnt_num",
            post(openbanking::deposit),
        )
        .route("/v2.0/transfer/result", post(openbanking::transfer_result))
        .route(
            "/v2.0/account/transaction_list/acnt_num",
            get(openbanking::transaction_list),
        )
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .merge(admin)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_tokens_are_long_and_never_printed() {
        let token = AdminToken::new("sandbox-admin-token-1").unwrap();
        assert!(token.matches("sandbox-admin-token-1"));
        assert!(!token.matches("sandbox-admin-token-2"));
        assert!(!token.matches("sandbox-admin-token-1x"));
        assert_eq!(format!("{token:?}"), "AdminToken(***)");
        assert!(AdminToken::new("short").is_err());
        assert!(AdminToken::new("has a space in it!").is_err());
    }
}
