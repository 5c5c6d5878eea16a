//! The HTTP layer of mypay: JSON over HTTP for the ledger, members and their sessions, and
//! API-key management, with health checks, metrics and an OpenAPI document generated from the
//! router itself.
//!
//! Architecture invariants: only this crate knows HTTP and JSON; it holds no money or
//! membership logic of its own (the rules live in `ledger` and `membership`); every error
//! leaves as one JSON envelope with a stable code; internal causes are logged, never shown; a
//! member reaches only their own resources, and another member's answer 404.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod amount;
mod api_keys;
mod auth;
mod bank_accounts;
mod console;
mod error;
mod extract;
mod health;
pub mod idempotency;
mod items;
mod jobs;
mod ledger;
mod members;
mod merchants;
mod metrics;
mod middleware;
mod openapi;
mod operators;
mod pagination;
mod payments;
mod reconciliations;
mod remittances;
mod request_id;
mod settlements;
mod time;
mod wallets;
mod webhooks;

use std::sync::Arc;

use ::backoffice::Backoffice;
use ::bank_accounts::{AccountKeys, BankAccountConfig, BankAccounts};
use ::merchants::Merchants;
use ::payments::{PaymentServices, Payments, PaymentsConfig};
use ::reconciliation::{ReconciliationConfig, Reconciliations};
use ::remittance::{RemittanceConfig, Remittances};
use ::settlement::{SettlementConfig, Settlements};
use ::webhooks::{WebhookConfig, Webhooks};
use axum::http::Request;
use axum::{Extension, Router};
use banking::{BankFees, BankGateway};
use item_lock::{DbItemLocks, ItemLocks};
use membership::Members;
use metrics_exporter_prometheus::PrometheusHandle;
use psp::CardProcessor;
use storage::Db;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use wallet::{Points, Wallets};

pub use crate::api_keys::ensure_admin_key;
pub use crate::auth::{AdminCaller, Caller, MemberCaller, Role, Secret};
pub use crate::error::{ApiError, ErrorBody, ErrorDetail};
pub use crate::metrics::metrics_handle;
pub use crate::middleware::REQUEST_TIMEOUT;
pub use item_lock::ItemLockConfig;
pub use membership::MemberConfig;
pub use wallet::WalletConfig;

/// The default request body limit: ample for a 64-leg transaction with metadata.
pub const BODY_LIMIT_BYTES_DEFAULT: usize = 64 * 1024;
/// The smallest body limit a configuration may set.
pub const BODY_LIMIT_BYTES_MIN: usize = 1024;
/// The largest body limit a configuration may set; nothing this API accepts needs more.
pub const BODY_LIMIT_BYTES_MAX: usize = 1024 * 1024;

/// Tunables of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The largest request body accepted, in bytes; clamped to
    /// [`BODY_LIMIT_BYTES_MIN`]..=[`BODY_LIMIT_BYTES_MAX`].
    pub body_limit_bytes: usize,
    /// Membership tunables (session lifetime), bounded by `membership` itself.
    pub members: MemberConfig,
    /// Linked accounts: the account-number keys, the partner bank, limits and fees.
    pub bank_accounts: BankAccountConfig,
    /// Wallet limits and the auto top-up unit; checked by [`WalletConfig::validate`] where
    /// they are read from configuration.
    pub wallet: WalletConfig,
    /// The item lock store (the database's when none is given) and how long a checkout holds
    /// its items.
    pub item_locks: ItemLockConfig,
    /// When the payments resumer takes over unfinished orders, and how long an unknown card
    /// charge may be sent again.
    pub payments: PaymentsConfig,
    /// Where settlement runs write their CSV reports (none: served over HTTP only).
    pub settlement: SettlementConfig,
    /// Business remittance: step attempts and pauses, the retry batch, the monitor's overdue
    /// age and alert URL, the largest amount; bounded by `remittance` itself.
    pub remittance: RemittanceConfig,
    /// Reconciliation: the platform's own unbooked money at the bank, for safeguarding.
    pub reconciliation: ReconciliationConfig,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            body_limit_bytes: BODY_LIMIT_BYTES_DEFAULT,
            members: MemberConfig::default(),
            bank_accounts: BankAccountConfig::new(Arc::new(ephemeral_account_keys())),
            wallet: WalletConfig::default(),
            item_locks: ItemLockConfig::default(),
            payments: PaymentsConfig::default(),
            settlement: SettlementConfig::default(),
            remittance: RemittanceConfig::default(),
            reconciliation: ReconciliationConfig::default(),
        }
    }
}

impl ApiConfig {
    /// The configuration with every value inside its bounds.
    fn bounded(self) -> ApiConfig {
        ApiConfig {
            body_limit_bytes: self
                .body_limit_bytes
                .clamp(BODY_LIMIT_BYTES_MIN, BODY_LIMIT_BYTES_MAX),
            members: self.members,
            bank_accounts: self.bank_accounts,
            wallet: self.wallet,
            item_locks: self.item_locks.bounded(),
            payments: self.payments,
            settlement: self.settlement,
            remittance: self.remittance.bounded(),
            reconciliation: self.reconciliation,
        }
    }
}

/// Fresh random account-number keys, for a configuration that names none (tests). Whatever is
/// sealed under them cannot be read after the process ends, so `mypay serve` always configures
/// keys of its own (flags or its key file).
fn ephemeral_account_keys() -> AccountKeys {
    AccountKeys::generate("ephemeral")
        .map(|(keys, _, _)| keys)
        .expect("the operating system provides randomness")
}

/// What every handler shares. Cheap to clone: each part is a handle.
#[derive(Clone)]
pub struct AppState {
    pub(crate) ledger: Arc<::ledger::Ledger>,
    pub(crate) members: Arc<Members>,
    /// Linked bank accounts (charge and partner accounts, verification, debit consent). It
    /// holds the bank gateway; services that call the bank get it when they are built here.
    pub(crate) bank_accounts: Arc<BankAccounts>,
    pub(crate) wallets: Wallets,
    /// Locks on unique items (Redis when configured, else the database), for checkout.
    pub(crate) item_locks: Arc<dyn ItemLocks>,
    /// Merchants' webhook endpoints, events and deliveries; secrets sealed under the
    /// account-number keys.
    pub(crate) webhooks: Webhooks,
    /// Merchants: onboarding, settlement accounts (sealed with the linked accounts' keys, checked
    /// through the wallet's bank transfer executor), fee rates, merchant ledger accounts.
    pub(crate) merchants: Merchants,
    pub(crate) points: Points,
    /// Checkout payments: charges the buyer's points, wallet and card through `psp`.
    pub(crate) payments: Payments,
    /// The durable job queue, for operators (dead letters) and for producers.
    pub(crate) jobs: ::jobs::Jobs,
    /// Settlement: daily runs paying merchants through the wallet's bank transfer executor.
    pub(crate) settlements: Settlements,
    /// Business remittance: A → the master account → the ledger → B, each step a job.
    pub(crate) remittances: Remittances,
    /// Reconciliation: the bank's statement and the PSP's report against our records.
    pub(crate) reconciliations: Reconciliations,
    /// The back office: operators, console sessions, the audit log.
    pub(crate) backoffice: Backoffice,
    pub(crate) db: Db,
    pub(crate) metrics: PrometheusHandle,
    pub(crate) config: ApiConfig,
}

impl AppState {
    /// Bundles the services; the configuration is bounded here. Membership, linked accounts
    /// and wallets run on the same database and read time from the ledger's clock; `bank` is
    /// the one way to the bank (the in-process sandbox by default, or a bank at `--bank-url`),
    /// and wallets find members' bank accounts through the linked-accounts service. Item locks
    /// are the configured store, or the database's on the ledger's clock. `psp` is the one way
    /// to the card processor, and payments reach sellers through the merchants service.
    pub fn new(
        ledger: Arc<::ledger::Ledger>,
        db: Db,
        bank: Arc<dyn BankGateway>,
        psp: Arc<dyn CardProcessor>,
        metrics: PrometheusHandle,
        config: ApiConfig,
    ) -> AppState {
        let config = config.bounded();
        let members = Arc::new(Members::new(db.clone(), ledger.clone(), config.members));
        let bank_accounts = Arc::new(BankAccounts::new(
            db.clone(),
            ledger.clone(),
            members.clone(),
            bank.clone(),
            config.bank_accounts.clone(),
        ));
        let wallets = Wallets::new(
            db.clone(),
            ledger.clone(),
            members.clone(),
            bank.clone(),
            bank_accounts.clone(),
            BankFees::default(),
            config.wallet,
        );
        let item_locks = config.item_locks.store.clone().unwrap_or_else(|| {
            Arc::new(DbItemLocks::new(db.clone(), ledger.clock())) as Arc<dyn ItemLocks>
        });
        let webhooks = Webhooks::new(
            db.clone(),
            ledger.clock(),
            config.bank_accounts.keys.clone(),
            WebhookConfig::default(),
        );
        let merchants = Merchants::new(
            db.clone(),
            ledger.clone(),
            wallets.bank_transfers().clone(),
            config.bank_accounts.keys.clone(),
        );
        let points = Points::new(ledger.clone(), members.clone());
        let payments = Payments::new(
            PaymentServices {
                db: db.clone(),
                ledger: ledger.clone(),
                members: members.clone(),
                wallets: wallets.clone(),
                points: points.clone(),
                sellers: Arc::new(merchants.clone()),
                psp: psp.clone(),
                item_locks: item_locks.clone(),
            },
            PaymentsConfig {
                item_lock_ttl: config.item_locks.ttl,
                ..config.payments
            },
        );
        let jobs = ::jobs::Jobs::new(db.clone(), ledger.clock());
        let settlements = Settlements::new(
            db.clone(),
            ledger.clone(),
            merchants.clone(),
            wallets.bank_transfers().clone(),
            config.settlement.clone(),
        );
        let remittances = Remittances::new(
            db.clone(),
            ledger.clone(),
            merchants.clone(),
            wallets.bank_transfers().clone(),
            config.remittance.clone(),
        );
        let reconciliations = Reconciliations::new(
            db.clone(),
            ledger.clone(),
            bank,
            wallets.bank_transfers().clone(),
            psp,
            config.reconciliation.clone(),
        );
        let backoffice = Backoffice::new(db.clone(), ledger.clock());
        AppState {
            ledger,
            members,
            bank_accounts,
            wallets,
            item_locks,
            webhooks,
            merchants,
            points,
            payments,
            jobs,
            settlements,
            remittances,
            reconciliations,
            backoffice,
            db,
            metrics,
            config,
        }
    }

    /// The linked-accounts service, for the background work `serve` runs beside the router
    /// (resolving micro-deposits whose outcome nobody asked about again).
    pub fn bank_accounts(&self) -> Arc<BankAccounts> {
        self.bank_accounts.clone()
    }

    /// The wallet service, for the background resolver that `mypay serve` runs.
    pub fn wallets(&self) -> &Wallets {
        &self.wallets
    }

    /// The item locks, for checkout and for the expired-lock sweep that `mypay serve` runs.
    pub fn item_locks(&self) -> Arc<dyn ItemLocks> {
        self.item_locks.clone()
    }

    /// How long a checkout holds the unique items it names (15 minutes by default).
    pub fn item_lock_ttl(&self) -> std::time::Duration {
        self.config.item_locks.ttl
    }

    /// The webhooks service, for the delivery worker that `mypay serve` runs and for code
    /// that records events on the same database.
    pub fn webhooks(&self) -> &Webhooks {
        &self.webhooks
    }

    /// The merchants service, for the services that pay and settle merchants.
    pub fn merchants(&self) -> &Merchants {
        &self.merchants
    }

    /// The payments service, for the resumer that `mypay serve` runs.
    pub fn payments(&self) -> &Payments {
        &self.payments
    }

    /// The job queue, for producers outside a transaction.
    pub fn jobs(&self) -> &::jobs::Jobs {
        &self.jobs
    }

    /// The settlement service: the entry point for a daily schedule (`run_day`) and for the
    /// resolver of payouts whose outcome was unknown.
    pub fn settlements(&self) -> &Settlements {
        &self.settlements
    }

    /// The remittance service, whose step jobs, retry batch and monitor `mypay serve` runs.
    pub fn remittances(&self) -> &Remittances {
        &self.remittances
    }

    /// The reconciliation service, whose daily job `mypay serve` runs.
    pub fn reconciliations(&self) -> &Reconciliations {
        &self.reconciliations
    }

    /// The state as placed in request extensions by [`router`]. Layers that are built before
    /// any state exists (so that [`openapi`] can build the very same routes without a
    /// database) reach it this way.
    pub(crate) fn from_extensions(
        extensions: &axum::http::Extensions,
    ) -> Result<AppState, ApiError> {
        extensions
            .get::<AppState>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("the router was built without its state".into()))
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.db)
            .field("config", &self.config)
            .field("item_locks", &self.item_locks)
            .finish_non_exhaustive()
    }
}

/// Every route, each documented by its handler's `#[utoipa::path]`.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::serve_metrics))
        .routes(routes!(openapi::serve_openapi))
        .merge(ledger::routes())
        .merge(members::routes())
        .merge(bank_accounts::routes())
        .merge(wallets::routes())
        .merge(items::routes())
        .merge(webhooks::routes())
        .merge(merchants::routes())
        .merge(payments::routes())
        .merge(jobs::routes())
        .merge(settlements::routes())
        .merge(remittances::routes())
        .merge(reconciliations::routes())
        .merge(operators::routes())
        .merge(api_keys::routes())
}

/// The OpenAPI document, exactly as served at `/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut document = api_routes().into_openapi();
    openapi::complete(&mut document);
    document
}

/// The complete application: every route, the fallback, and the middleware stack.
pub fn router(state: AppState) -> Router {
    let (routes, mut document) = api_routes().split_for_parts();
    openapi::complete(&mut document);
    let document = document
        .to_json()
        .map(|json| openapi::OpenApiJson(Arc::from(json)))
        .unwrap_or_else(|error| {
            tracing::error!(%error, "the OpenAPI document does not serialise");
            openapi::OpenApiJson(Arc::from("{}"))
        });
    let body_limit_bytes = state.config.body_limit_bytes;
    let app = routes
        .merge(console::routes())
        .fallback(route_not_found)
        .with_state(state.clone())
        .layer(Extension(document))
        .layer(Extension(state));
    middleware::apply(app, body_limit_bytes)
}

/// Answers paths that match no route.
async fn route_not_found(request: Request<axum::body::Body>) -> ApiError {
    ApiError::RouteNotFound(request.uri().path().chars().take(256).collect())
}
