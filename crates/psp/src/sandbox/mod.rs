//! The sandbox PSP: a card processor that speaks the Toss Payments API (see [`crate::wire`])
//! with its own books in a data directory, for development, tests and the embedded default.
//!
//! Test card tokens (billing keys) decide what a charge does:
//!
//! | billing key | charge |
//! |---|---|
//! | `bk_test_decline…` | refused: 403 `REJECT_CARD_COMPANY` |
//! | `bk_test_limit…` | refused: 403 `REJECT_CARD_PAYMENT` (limit or balance) |
//! | `bk_test_timeout…` | never executed; the reply is withheld for the hold time, then 500 |
//! | `bk_test_lost_reply…` | executed and recorded, then the reply is withheld for the hold time |
//! | any other `bk_test_…` | approved |
//! | anything else | refused: 400 `INVALID_REQUEST` (not a test card) |
//!
//! A cancellation whose reason starts with `test:timeout` or `test:lost_reply` behaves the same
//! way, so refunds can be tested against both faults; one whose reason starts with
//! `test:refuse` is refused with 403 `NOT_CANCELABLE_PAYMENT` and cancels nothing. Requests
//! with an `Idempotency-Key` are answered once (refusals included) and replayed after: the
//! same key with the same body gets the stored reply (at once: only the reply of the exchange that executed is lost),
//! with another body 422 `INVALID_IDEMPOTENCY_KEY`. Like Toss Payments, the sandbox keeps a
//! key for 15 days ([`IDEMPOTENCY_TTL_DEFAULT`], configurable); a key older than that is
//! treated as new. A charge under an order id that was already
//! approved, without its idempotency key, is refused with 400 `DUPLICATED_ORDER_ID`.
//!
//! Each request's work runs in a task of its own, so a client that gives up never cancels a
//! charge halfway: what a fault does depends only on its rule.

mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use self::store::DB_FILE;
use self::store::{IdemKey, NewCancel, NewPayment, PaymentRow, Store, TransactionRow};
use crate::toss::SecretKey;
use crate::wire;

/// How long withheld replies (`timeout`, `lost_reply`) are held back by default: longer than
/// the adapter's default timeout, so its client gives up first.
pub const HOLD_DEFAULT: Duration = Duration::from_secs(15);
/// How long an idempotency key is remembered: Toss Payments keeps keys for 15 days from the
/// first request.
pub const IDEMPOTENCY_TTL_DEFAULT: Duration = Duration::from_secs(15 * 24 * 60 * 60);
/// The longest hold a configuration may set.
const HOLD_MAX: Duration = Duration::from_secs(600);
/// The largest request body the sandbox reads.
const BODY_LIMIT_BYTES: usize = 64 * 1024;
/// How long [`SandboxPspHandle::shutdown`] lets requests in flight finish.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(2);
/// The most report lines one page may hold.
const TRANSACTIONS_PAGE_MAX: i64 = 10_000;

/// What the sandbox is started with.
#[derive(Debug, Clone)]
pub struct SandboxPspConfig {
    /// Where the sandbox keeps its database ([`DB_FILE`]); created when missing.
    pub data_dir: PathBuf,
    /// When set, every request must carry it as HTTP Basic credentials, as the real API does.
    pub secret_key: Option<SecretKey>,
    /// How long withheld replies are held back; at most 10 minutes.
    pub hold: Duration,
    /// How long a request's idempotency key is remembered ([`IDEMPOTENCY_TTL_DEFAULT`]).
    pub idempotency_ttl: Duration,
}

impl SandboxPspConfig {
    /// No secret key, replies held for [`HOLD_DEFAULT`].
    pub fn new(data_dir: impl Into<PathBuf>) -> SandboxPspConfig {
        SandboxPspConfig {
            data_dir: data_dir.into(),
            secret_key: None,
            hold: HOLD_DEFAULT,
            idempotency_ttl: IDEMPOTENCY_TTL_DEFAULT,
        }
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
    #[error("cannot read the listener's address: {0}")]
    Listener(std::io::Error),
}

/// What every handler shares.
#[derive(Debug)]
struct Sandbox {
    store: Store,
    secret_key: Option<SecretKey>,
    hold: Duration,
}

/// A running sandbox PSP.
#[derive(Debug)]
pub struct SandboxPspHandle {
    base_url: String,
    store: Store,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Starts the sandbox on `listener` (bind port 0 for a free port) and returns once it accepts
/// requests.
pub async fn spawn(
    listener: TcpListener,
    config: SandboxPspConfig,
) -> Result<SandboxPspHandle, SandboxError> {
    let local_addr = listener.local_addr().map_err(SandboxError::Listener)?;
    let store = Store::open(&config.data_dir, config.idempotency_ttl).await?;
    let state = Arc::new(Sandbox {
        store: store.clone(),
        secret_key: config.secret_key,
        hold: config.hold.min(HOLD_MAX),
    });
    let app = Router::new()
        .route("/v1/billing/{billing_key}", post(approve))
        .route("/v1/payments/{payment_key}/cancel", post(cancel))
        .route("/v1/payments/orders/{order_id}", get(by_order))
        .route(wire::TRANSACTIONS_PATH, get(transactions))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(state);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the sandbox PSP's server failed");
        }
    });
    let mut connectable = local_addr;
    if connectable.ip().is_unspecified() {
        connectable.set_ip(match local_addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    tracing::info!(address = %local_addr, "sandbox PSP listening");
    Ok(SandboxPspHandle {
        base_url: format!("http://{connectable}"),
        store,
        stop: Some(stop),
        task: Some(task),
    })
}

impl SandboxPspHandle {
    /// Where to reach the sandbox: the base URL for [`crate::TossConfig`].
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Stops accepting requests, lets those in flight finish (for at most 2 s, since withheld
    /// replies may hold on longer), and closes the database.
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
            }
        }
        self.store.close().await;
    }
}

/// An answer in the API's shape.
struct Reply {
    status: StatusCode,
    body: String,
    /// The stored answer to an earlier request with the same idempotency key. A lost reply is
    /// a fault of the exchange that executed the request; a later exchange that only replays
    /// its answer gets through, as a retry does at a real PSP.
    replayed: bool,
}

impl Reply {
    fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Reply {
        Reply {
            status,
            body: serde_json::to_string(value).expect("wire types serialise"),
            replayed: false,
        }
    }

    fn error(status: StatusCode, code: &str, message: &str) -> Reply {
        Reply::json(
            status,
            &wire::ErrorBody {
                code: code.to_owned(),
                message: message.to_owned(),
            },
        )
    }

    fn internal() -> Reply {
        Reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "FAILED_INTERNAL_SYSTEM_PROCESSING",
            "internal error",
        )
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.body,
        )
            .into_response()
    }
}

/// What a test token or test reason asks the sandbox to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Execute,
    Decline(&'static str, &'static str),
    /// Do nothing, hold the reply, then answer 500.
    Timeout,
    /// Execute, then hold the reply.
    LostReply,
}

fn card_behaviour(billing_key: &str) -> Option<Behaviour> {
    let rest = billing_key.strip_prefix("bk_test_")?;
    Some(if rest.starts_with("decline") {
        Behaviour::Decline("REJECT_CARD_COMPANY", "카드사에서 거절한 결제입니다.")
    } else if rest.starts_with("limit") {
        Behaviour::Decline(
            "REJECT_CARD_PAYMENT",
            "한도초과 혹은 잔액부족으로 결제에 실패했습니다.",
        )
    } else if rest.starts_with("timeout") {
        Behaviour::Timeout
    } else if rest.starts_with("lost_reply") {
        Behaviour::LostReply
    } else {
        Behaviour::Execute
    })
}

fn cancel_behaviour(reason: &str) -> Behaviour {
    if reason.starts_with("test:timeout") {
        Behaviour::Timeout
    } else if reason.starts_with("test:lost_reply") {
        Behaviour::LostReply
    } else if reason.starts_with("test:refuse") {
        Behaviour::Decline("NOT_CANCELABLE_PAYMENT", "취소 할 수 없는 결제 입니다.")
    } else {
        Behaviour::Execute
    }
}

/// Checks the Basic credentials when a secret key is configured.
fn authorised(sandbox: &Sandbox, headers: &HeaderMap) -> bool {
    let Some(key) = &sandbox.secret_key else {
        return true;
    };
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    presented == Some(key.basic_auth().as_str())
}

fn unauthorised() -> Reply {
    Reply::error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED_KEY",
        "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다.",
    )
}

fn now_micros() -> i64 {
    let now = OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1000).expect("the present fits in i64 micros")
}

/// A time as the API writes it: ISO 8601 in KST with its offset.
fn api_time(micros: i64) -> String {
    let utc = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .expect("stored times are valid");
    utc.to_offset(time::macros::offset!(+9))
        .replace_nanosecond(0)
        .expect("zero nanoseconds are valid")
        .format(&Rfc3339)
        .expect("formats")
}

/// A report time parameter: KST local time without an offset.
fn report_micros(value: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let local = time::PrimitiveDateTime::parse(value, &format).ok()?;
    let at = local.assume_offset(time::macros::offset!(+9));
    i64::try_from(at.unix_timestamp_nanos() / 1000).ok()
}

fn random_key(prefix: &str) -> String {
    format!("{prefix}{}", ulid::Ulid::new().to_string().to_lowercase())
}

fn digest(scope: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(scope.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hex::encode(hasher.finalize())
}

fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get(wire::IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 300)
        .map(str::to_owned)
}

/// The payment object of a stored payment, with its cancellations.
async fn payment_object(store: &Store, payment: &PaymentRow) -> Result<wire::Payment, sqlx::Error> {
    let cancels = store.cancels(&payment.payment_key).await?;
    Ok(payment_json(payment, &cancels))
}

fn payment_json(payment: &PaymentRow, cancels: &[TransactionRow]) -> wire::Payment {
    wire::Payment {
        payment_key: payment.payment_key.clone(),
        order_id: payment.order_id.clone(),
        order_name: payment.order_name.clone(),
        status: payment.status.clone(),
        method: Some("카드".to_owned()),
        currency: "KRW".to_owned(),
        total_amount: payment.total_amount,
        balance_amount: payment.balance_amount,
        requested_at: Some(api_time(payment.approved_at)),
        approved_at: Some(api_time(payment.approved_at)),
        last_transaction_key: Some(payment.last_transaction_key.clone()),
        cancels: (!cancels.is_empty()).then(|| {
            cancels
                .iter()
                .map(|c| wire::Cancel {
                    transaction_key: c.transaction_key.clone(),
                    cancel_amount: c.amount,
                    cancel_reason: c.cancel_reason.clone().unwrap_or_default(),
                    canceled_at: api_time(c.transaction_at),
                    refundable_amount: Some(c.refundable_amount),
                    cancel_status: Some("DONE".to_owned()),
                })
                .collect()
        }),
    }
}

/// Runs `work` in a task of its own and applies the behaviour's reply rule.
async fn detached(
    sandbox: &Arc<Sandbox>,
    behaviour: Behaviour,
    work: impl std::future::Future<Output = Reply> + Send + 'static,
) -> Reply {
    if behaviour == Behaviour::Timeout {
        tokio::time::sleep(sandbox.hold).await;
        return Reply::internal();
    }
    let reply = match tokio::spawn(work).await {
        Ok(reply) => reply,
        Err(_) => Reply::internal(),
    };
    // Only an exchange that executed loses its reply; a refusal executed nothing.
    if behaviour == Behaviour::LostReply && !reply.replayed && reply.status.is_success() {
        tokio::time::sleep(sandbox.hold).await;
    }
    reply
}

async fn approve(
    State(sandbox): State<Arc<Sandbox>>,
    Path(billing_key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    if !authorised(&sandbox, &headers) {
        return unauthorised();
    }
    let Ok(request) = serde_json::from_slice::<wire::BillingApproval>(&body) else {
        return Reply::error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "잘못된 요청입니다.",
        );
    };
    let valid = request.amount > 0
        && (6..=64).contains(&request.order_id.len())
        && request
            .order_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Reply::error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "잘못된 요청입니다.",
        );
    }
    let Some(behaviour) = card_behaviour(&billing_key) else {
        return Reply::error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "테스트 카드가 아닙니다.",
        );
    };
    let idem = idempotency_key(&headers);
    let hash = digest(&format!("billing:{billing_key}"), &body);
    let store = sandbox.store.clone();
    detached(&sandbox, behaviour, async move {
        match approve_once(
            &store,
            &billing_key,
            &request,
            idem.as_deref(),
            &hash,
            behaviour,
        )
        .await
        {
            Ok(reply) => reply,
            Err(error) => {
                tracing::error!(%error, "sandbox PSP approval failed");
                Reply::internal()
            }
        }
    })
    .await
}

/// Approves or declines once, and stores the reply under the idempotency key.
async fn approve_once(
    store: &Store,
    billing_key: &str,
    request: &wire::BillingApproval,
    idem: Option<&str>,
    hash: &str,
    behaviour: Behaviour,
) -> Result<Reply, sqlx::Error> {
    let mut tx = store.begin().await?;
    let now = now_micros();
    let key = idem.map(|key| store.idem_key("billing", key, hash, now));
    if let Some(key) = key {
        if let Some(reply) = replay(&mut tx, key).await? {
            return Ok(reply);
        }
    }
    let reply = if let Behaviour::Decline(code, message) = behaviour {
        Reply::error(StatusCode::FORBIDDEN, code, message)
    } else if store::order_exists(&mut tx, &request.order_id).await? {
        return Ok(Reply::error(
            StatusCode::BAD_REQUEST,
            "DUPLICATED_ORDER_ID",
            "이미 승인 및 취소가 진행된 중복된 주문번호 입니다.",
        ));
    } else {
        let payment_key = random_key("tpk_");
        let transaction_key = random_key("ttx_");
        store::insert_payment(
            &mut tx,
            &NewPayment {
                payment_key: &payment_key,
                transaction_key: &transaction_key,
                order_id: &request.order_id,
                billing_key,
                customer_key: &request.customer_key,
                order_name: &request.order_name,
                amount: request.amount,
                at: now,
            },
        )
        .await?;
        let payment = PaymentRow {
            payment_key,
            order_id: request.order_id.clone(),
            customer_key: request.customer_key.clone(),
            order_name: request.order_name.clone(),
            total_amount: request.amount,
            balance_amount: request.amount,
            status: "DONE".to_owned(),
            approved_at: now,
            last_transaction_key: transaction_key,
        };
        Reply::json(StatusCode::OK, &payment_json(&payment, &[]))
    };
    if let Some(key) = key {
        store::store_reply(&mut tx, key, reply.status.as_u16(), &reply.body, now).await?;
    }
    tx.commit().await?;
    Ok(reply)
}

/// The stored reply for a key: itself for the same body, a refusal for another.
async fn replay(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    key: IdemKey<'_>,
) -> Result<Option<Reply>, sqlx::Error> {
    Ok(store::stored_reply(tx, key).await?.map(|stored| {
        if stored.request_hash == key.request_hash {
            Reply {
                status: StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK),
                body: stored.body,
                replayed: true,
            }
        } else {
            Reply::error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_IDEMPOTENCY_KEY",
                "같은 멱등키로 다른 요청이 들어왔습니다.",
            )
        }
    }))
}

async fn cancel(
    State(sandbox): State<Arc<Sandbox>>,
    Path(payment_key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    if !authorised(&sandbox, &headers) {
        return unauthorised();
    }
    let Ok(request) = serde_json::from_slice::<wire::CancelBody>(&body) else {
        return Reply::error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "잘못된 요청입니다.",
        );
    };
    if request.cancel_amount.is_some_and(|a| a <= 0) || request.cancel_reason.chars().count() > 200
    {
        return Reply::error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "잘못된 요청입니다.",
        );
    }
    let behaviour = cancel_behaviour(&request.cancel_reason);
    let idem = idempotency_key(&headers);
    let scope = format!("cancel:{payment_key}");
    let hash = digest(&scope, &body);
    let store = sandbox.store.clone();
    detached(&sandbox, behaviour, async move {
        match cancel_once(
            &store,
            &payment_key,
            &request,
            &scope,
            idem.as_deref(),
            &hash,
            behaviour,
        )
        .await
        {
            Ok(reply) => reply,
            Err(error) => {
                tracing::error!(%error, "sandbox PSP cancellation failed");
                Reply::internal()
            }
        }
    })
    .await
}

async fn cancel_once(
    store: &Store,
    payment_key: &str,
    request: &wire::CancelBody,
    scope: &str,
    idem: Option<&str>,
    hash: &str,
    behaviour: Behaviour,
) -> Result<Reply, sqlx::Error> {
    let mut tx = store.begin().await?;
    let now = now_micros();
    let key = idem.map(|key| store.idem_key(scope, key, hash, now));
    if let Some(key) = key {
        if let Some(reply) = replay(&mut tx, key).await? {
            return Ok(reply);
        }
    }
    // Every answer, refusals included, is the key's answer from now on.
    let reply = cancel_or_refuse(&mut tx, payment_key, request, behaviour, now).await?;
    if let Some(key) = key {
        store::store_reply(&mut tx, key, reply.status.as_u16(), &reply.body, now).await?;
    }
    tx.commit().await?;
    Ok(reply)
}

/// Cancels (part of) a payment inside the caller's write transaction, or says why not.
async fn cancel_or_refuse(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    payment_key: &str,
    request: &wire::CancelBody,
    behaviour: Behaviour,
    now: i64,
) -> Result<Reply, sqlx::Error> {
    let Some(payment) = store::payment_for_update(tx, payment_key).await? else {
        return Ok(Reply::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND_PAYMENT",
            "존재하지 않는 결제 입니다.",
        ));
    };
    if payment.balance_amount == 0 {
        return Ok(Reply::error(
            StatusCode::BAD_REQUEST,
            "ALREADY_CANCELED_PAYMENT",
            "이미 취소된 결제 입니다.",
        ));
    }
    if let Behaviour::Decline(code, message) = behaviour {
        return Ok(Reply::error(StatusCode::FORBIDDEN, code, message));
    }
    let amount = request.cancel_amount.unwrap_or(payment.balance_amount);
    if amount > payment.balance_amount {
        return Ok(Reply::error(
            StatusCode::BAD_REQUEST,
            "NOT_CANCELABLE_AMOUNT",
            "취소 할 수 없는 금액 입니다.",
        ));
    }
    let transaction_key = random_key("ttx_");
    let status = store::insert_cancel(
        tx,
        &NewCancel {
            payment: &payment,
            transaction_key: &transaction_key,
            amount,
            reason: &request.cancel_reason,
            at: now,
        },
    )
    .await?;
    let cancels = store::cancels_in(tx, payment_key).await?;
    let updated = PaymentRow {
        balance_amount: payment.balance_amount - amount,
        status: status.to_owned(),
        last_transaction_key: transaction_key,
        ..payment
    };
    Ok(Reply::json(
        StatusCode::OK,
        &payment_json(&updated, &cancels),
    ))
}

async fn by_order(
    State(sandbox): State<Arc<Sandbox>>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
) -> Reply {
    if !authorised(&sandbox, &headers) {
        return unauthorised();
    }
    let found = match sandbox.store.payment_by_order(&order_id).await {
        Ok(found) => found,
        Err(_) => return Reply::internal(),
    };
    match found {
        Some(payment) => match payment_object(&sandbox.store, &payment).await {
            Ok(object) => Reply::json(StatusCode::OK, &object),
            Err(_) => Reply::internal(),
        },
        None => Reply::error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND_PAYMENT",
            "존재하지 않는 결제 입니다.",
        ),
    }
}

async fn transactions(
    State(sandbox): State<Arc<Sandbox>>,
    Query(query): Query<wire::TransactionsQuery>,
    headers: HeaderMap,
) -> Reply {
    if !authorised(&sandbox, &headers) {
        return unauthorised();
    }
    let (Some(from), Some(to)) = (
        report_micros(&query.start_date),
        report_micros(&query.end_date),
    ) else {
        return Reply::error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "잘못된 요청입니다.",
        );
    };
    let limit = i64::from(query.limit).clamp(1, TRANSACTIONS_PAGE_MAX);
    let rows = match sandbox
        .store
        .transactions(from, to, query.starting_after.as_deref(), limit)
        .await
    {
        Ok(rows) => rows,
        Err(_) => return Reply::internal(),
    };
    let items: Vec<wire::TransactionItem> = rows
        .into_iter()
        .map(|row| wire::TransactionItem {
            transaction_key: row.transaction_key,
            payment_key: row.payment_key,
            order_id: row.order_id,
            method: Some("카드".to_owned()),
            customer_key: Some(row.customer_key),
            status: row.status,
            transaction_at: api_time(row.transaction_at),
            currency: "KRW".to_owned(),
            amount: row.amount,
        })
        .collect();
    Reply::json(StatusCode::OK, &items)
}
