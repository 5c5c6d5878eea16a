//! `TossPayments`: the card processor over the Toss Payments API (see [`crate::wire`]). The
//! sandbox PSP speaks the same API, so the embedded default runs this adapter too.
//!
//! How an exchange becomes an outcome, for calls that move money:
//!
//! | what happened | outcome |
//! |---|---|
//! | HTTP 200 with a payment object about our order | `Approved` / `Cancelled` |
//! | an error body whose code says nothing was done | `Declined` / `Refused` |
//! | the connection could not be opened | `Declined` / `Refused` (`psp_unreachable`) |
//! | HTTP 4xx without an error body | `Declined` / `Refused` (`psp_request_rejected`) |
//! | a timeout, a dropped connection, HTTP 5xx, an unreadable reply, a code we do not know, a code that says "in progress" or "duplicated", a reply about another order | `Unknown` |

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::processor::{
    Approval, CancelOutcome, CancelRequest, Cancellation, CardProcessor, ChargeOutcome,
    ChargeRequest, PaymentLookup, PaymentRecord, PaymentStatus, PspError, PspTransaction, Refusal,
    RefusalReason,
};
use crate::types::{CardAmount, PaymentKey, PspOrderId};
use crate::wire;

/// How long a call may take by default. Card approvals answer within seconds; one that takes
/// longer is treated as not answering (`Unknown`).
pub const TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// How long opening a connection may take by default.
pub const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(3);
/// The most report pages one `transactions` call reads, so a runaway cursor cannot loop forever.
const TRANSACTION_PAGES_MAX: usize = 1000;

/// The merchant's secret API key. `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey(String);

impl SecretKey {
    pub fn new(key: &str) -> SecretKey {
        SecretKey(key.to_owned())
    }

    pub(crate) fn basic_auth(&self) -> String {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:", self.0));
        format!("Basic {token}")
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

/// Where the API is and who we are to it.
#[derive(Debug, Clone)]
pub struct TossConfig {
    /// `https://api.tosspayments.com`, or a sandbox's base URL.
    pub base_url: String,
    pub secret_key: SecretKey,
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

impl TossConfig {
    /// A configuration with the default timeouts.
    pub fn new(base_url: &str, secret_key: SecretKey) -> TossConfig {
        TossConfig {
            base_url: base_url.trim_end_matches('/').to_owned(),
            secret_key,
            timeout: TIMEOUT_DEFAULT,
            connect_timeout: CONNECT_TIMEOUT_DEFAULT,
        }
    }
}

/// The HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the PSP's HTTP client: {0}")]
pub struct ClientBuildError(#[source] reqwest::Error);

/// The card processor over the Toss Payments API.
#[derive(Debug)]
pub struct TossPayments {
    client: reqwest::Client,
    config: TossConfig,
}

/// What came back from one exchange, before its meaning for the operation is decided.
enum Exchange<T> {
    /// HTTP 2xx with a body of the expected shape.
    Ok(T),
    /// An error body: the PSP's code and message, with the status.
    Error(StatusCode, wire::ErrorBody),
    /// No connection could be opened: nothing reached the PSP.
    NotSent(String),
    /// HTTP 4xx without an error body.
    Rejected(StatusCode),
    /// The request may have reached the PSP, but no usable answer came back.
    NoAnswer(String),
}

impl TossPayments {
    pub fn new(config: TossConfig) -> Result<TossPayments, ClientBuildError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            // A redirect would resend a charge somewhere we were not configured to trust.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(ClientBuildError)?;
        Ok(TossPayments { client, config })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.config.base_url))
            .header(
                reqwest::header::AUTHORIZATION,
                self.config.secret_key.basic_auth(),
            )
    }
}

/// [`exchange`], counted and timed per operation and outcome (`mypay_psp_calls_total`,
/// `mypay_psp_call_seconds`). The operation is a fixed name: the paths carry billing and
/// payment keys, which never become labels.
async fn measured<T: DeserializeOwned>(
    operation: &'static str,
    request: reqwest::RequestBuilder,
) -> Exchange<T> {
    let started = std::time::Instant::now();
    let exchange = exchange(request).await;
    let outcome = match &exchange {
        Exchange::Ok(_) => "ok",
        Exchange::Error(..) => "error",
        Exchange::NotSent(_) => "not_sent",
        Exchange::Rejected(_) => "rejected",
        Exchange::NoAnswer(_) => "no_answer",
    };
    metrics::counter!("mypay_psp_calls_total", "operation" => operation, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("mypay_psp_call_seconds", "operation" => operation)
        .record(started.elapsed().as_secs_f64());
    exchange
}

/// Sends a request and sorts the result into the cases an outcome is decided from.
async fn exchange<T: DeserializeOwned>(request: reqwest::RequestBuilder) -> Exchange<T> {
    let response = match request.send().await {
        Ok(response) => response,
        // A connect error means no byte reached the PSP; every later error may have.
        Err(error) if error.is_connect() => return Exchange::NotSent(describe(&error)),
        Err(error) => return Exchange::NoAnswer(describe(&error)),
    };
    let status = response.status();
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(error) => return Exchange::NoAnswer(describe(&error)),
    };
    if status.is_success() {
        return match serde_json::from_slice::<T>(&body) {
            Ok(value) => Exchange::Ok(value),
            Err(_) => Exchange::NoAnswer(format!("HTTP {status} with an unreadable reply")),
        };
    }
    match serde_json::from_slice::<wire::ErrorBody>(&body) {
        Ok(error) if !status.is_server_error() => Exchange::Error(status, error),
        Ok(error) => Exchange::NoAnswer(format!("HTTP {status} {}: {}", error.code, error.message)),
        Err(_) if status.is_client_error() => Exchange::Rejected(status),
        Err(_) => Exchange::NoAnswer(format!("HTTP {status}")),
    }
}

/// An error's description, without the URL (which carries a billing key).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the reply broke off"
    } else {
        "the exchange failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What an error code says: a refusal of a known kind, or nothing certain.
fn classify(error: &wire::ErrorBody) -> Option<RefusalReason> {
    let code = error.code.as_str();
    let among = |list: &[&str]| list.contains(&code);
    if among(wire::IN_DOUBT) {
        None
    } else if among(wire::CARD_DECLINED) {
        Some(RefusalReason::CardDeclined)
    } else if among(wire::INVALID_REQUEST) {
        Some(RefusalReason::InvalidRequest)
    } else if among(wire::UNAUTHORIZED) {
        Some(RefusalReason::Unauthorized)
    } else if among(wire::NOT_FOUND) {
        Some(RefusalReason::NotFound)
    } else if among(wire::NOT_CANCELABLE) {
        Some(RefusalReason::NotCancelable)
    } else {
        None
    }
}

/// The refusal an exchange without a usable success proves, or the reason it proves nothing.
fn refusal_or_doubt<T>(exchange: Exchange<T>) -> Result<T, Result<Refusal, String>> {
    match exchange {
        Exchange::Ok(value) => Ok(value),
        Exchange::Error(status, error) => Err(match classify(&error) {
            Some(reason) => Ok(Refusal {
                reason,
                code: error.code,
                message: error.message,
            }),
            None => Err(format!("HTTP {status} {}: {}", error.code, error.message)),
        }),
        Exchange::NotSent(reason) => Err(Ok(Refusal {
            reason: RefusalReason::Unreachable,
            code: "CONNECTION_FAILED".into(),
            message: reason,
        })),
        Exchange::Rejected(status) => Err(Ok(Refusal {
            reason: RefusalReason::RequestRejected,
            code: status.as_u16().to_string(),
            message: format!("the PSP answered HTTP {status}"),
        })),
        Exchange::NoAnswer(reason) => Err(Err(reason)),
    }
}

/// A time as the API writes it.
pub(crate) fn parse_time(value: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value, &Rfc3339).ok()
}

fn status(value: &str) -> PaymentStatus {
    match value {
        "DONE" => PaymentStatus::Done,
        "PARTIAL_CANCELED" => PaymentStatus::PartialCanceled,
        "CANCELED" => PaymentStatus::Canceled,
        "ABORTED" => PaymentStatus::Aborted,
        other => PaymentStatus::Other(other.to_owned()),
    }
}

fn cancellation(cancel: &wire::Cancel, balance_amount: i64) -> Option<Cancellation> {
    Some(Cancellation {
        transaction_key: cancel.transaction_key.clone(),
        amount: CardAmount::new(cancel.cancel_amount).ok()?,
        canceled_at: parse_time(&cancel.canceled_at)?,
        balance_amount: cancel.refundable_amount.unwrap_or(balance_amount),
    })
}

/// Reads a payment object; `None` when a field we rely on is unreadable.
fn record(payment: &wire::Payment) -> Option<PaymentRecord> {
    let cancels = payment
        .cancels
        .iter()
        .flatten()
        .map(|c| cancellation(c, payment.balance_amount))
        .collect::<Option<Vec<_>>>()?;
    Some(PaymentRecord {
        payment_key: PaymentKey::parse(&payment.payment_key).ok()?,
        order_id: PspOrderId::parse(&payment.order_id).ok()?,
        status: status(&payment.status),
        total_amount: payment.total_amount,
        balance_amount: payment.balance_amount,
        approved_at: match &payment.approved_at {
            Some(at) => Some(parse_time(at)?),
            None => None,
        },
        cancels,
    })
}

/// The approval a reply to our charge proves: it must be about our order and amount.
fn approval_of(request: &ChargeRequest, payment: &wire::Payment) -> Result<Approval, String> {
    let record = record(payment).ok_or("the approval could not be read")?;
    let approval = record
        .approval()
        .ok_or("the reply does not report an approval")?;
    if approval.order_id != request.order_id || approval.amount != request.amount {
        return Err("the reply describes another order than the one charged".into());
    }
    Ok(approval)
}

/// The cancellation a reply to our cancel proves: the newest one, of the amount asked.
fn cancellation_of(
    request: &CancelRequest,
    payment: &wire::Payment,
) -> Result<Cancellation, String> {
    let record = record(payment).ok_or("the cancellation could not be read")?;
    if record.payment_key != request.payment_key {
        return Err("the reply describes another payment than the one cancelled".into());
    }
    let latest = record
        .cancels
        .last()
        .ok_or("the reply lists no cancellation")?;
    if latest.amount != request.amount {
        return Err("the reply's latest cancellation is of another amount".into());
    }
    Ok(latest.clone())
}

#[async_trait]
impl CardProcessor for TossPayments {
    async fn charge(&self, request: &ChargeRequest) -> ChargeOutcome {
        let body = wire::BillingApproval {
            customer_key: request.customer_key.as_str().to_owned(),
            amount: request.amount.won(),
            order_id: request.order_id.as_str().to_owned(),
            order_name: request.order_name.as_str().to_owned(),
        };
        let call = self
            .request(
                reqwest::Method::POST,
                &wire::billing_path(request.billing_key.expose()),
            )
            .header(wire::IDEMPOTENCY_HEADER, request.order_id.as_str())
            .json(&body);
        let outcome = match refusal_or_doubt(measured::<wire::Payment>("charge", call).await) {
            Ok(payment) => match approval_of(request, &payment) {
                Ok(approval) => ChargeOutcome::Approved(approval),
                Err(reason) => ChargeOutcome::Unknown { reason },
            },
            Err(Ok(refusal)) => ChargeOutcome::Declined(refusal),
            Err(Err(reason)) => ChargeOutcome::Unknown { reason },
        };
        log_charge(request, &outcome);
        outcome
    }

    async fn cancel(&self, request: &CancelRequest) -> CancelOutcome {
        let body = wire::CancelBody {
            cancel_reason: request.reason.clone(),
            cancel_amount: Some(request.amount.won()),
        };
        let call = self
            .request(
                reqwest::Method::POST,
                &wire::cancel_path(request.payment_key.as_str()),
            )
            .header(wire::IDEMPOTENCY_HEADER, request.cancel_id.as_str())
            .json(&body);
        let outcome = match refusal_or_doubt(measured::<wire::Payment>("cancel", call).await) {
            Ok(payment) => match cancellation_of(request, &payment) {
                Ok(cancellation) => CancelOutcome::Cancelled(cancellation),
                Err(reason) => CancelOutcome::Unknown { reason },
            },
            Err(Ok(refusal)) => CancelOutcome::Refused(refusal),
            Err(Err(reason)) => CancelOutcome::Unknown { reason },
        };
        match &outcome {
            CancelOutcome::Cancelled(c) => {
                tracing::info!(payment_key = %request.payment_key, cancel_id = %request.cancel_id, amount = c.amount.won(), "card cancellation done")
            }
            CancelOutcome::Refused(r) => {
                tracing::info!(payment_key = %request.payment_key, cancel_id = %request.cancel_id, code = r.code, "card cancellation refused")
            }
            CancelOutcome::Unknown { reason } => {
                tracing::warn!(payment_key = %request.payment_key, cancel_id = %request.cancel_id, reason, "card cancellation outcome unknown")
            }
        }
        outcome
    }

    async fn payment_by_order(&self, order_id: &PspOrderId) -> Result<PaymentLookup, PspError> {
        let call = self.request(reqwest::Method::GET, &wire::order_path(order_id.as_str()));
        match refusal_or_doubt(measured::<wire::Payment>("payment_by_order", call).await) {
            Ok(payment) => {
                let record = record(&payment).ok_or_else(|| PspError::Unavailable {
                    reason: "the payment could not be read".into(),
                })?;
                if &record.order_id != order_id {
                    return Err(PspError::Unavailable {
                        reason: "the reply describes another order".into(),
                    });
                }
                Ok(PaymentLookup::Found(record))
            }
            Err(Ok(refusal)) if refusal.reason == RefusalReason::NotFound => {
                Ok(PaymentLookup::NotFound)
            }
            Err(Ok(refusal)) if refusal.reason == RefusalReason::Unreachable => {
                Err(PspError::Unavailable {
                    reason: refusal.message,
                })
            }
            Err(Ok(refusal)) => Err(PspError::Refused { refusal }),
            Err(Err(reason)) => Err(PspError::Unavailable { reason }),
        }
    }

    async fn transactions(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<PspTransaction>, PspError> {
        let mut lines = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..TRANSACTION_PAGES_MAX {
            let query = wire::TransactionsQuery {
                start_date: report_time(from),
                end_date: report_time(to),
                starting_after: after.clone(),
                limit: wire::TRANSACTIONS_PAGE,
            };
            let call = self
                .request(reqwest::Method::GET, wire::TRANSACTIONS_PATH)
                .query(&query);
            let page = match refusal_or_doubt(
                measured::<Vec<wire::TransactionItem>>("transactions", call).await,
            ) {
                Ok(page) => page,
                Err(Ok(refusal)) => return Err(PspError::Refused { refusal }),
                Err(Err(reason)) => return Err(PspError::Unavailable { reason }),
            };
            let full = page.len() == wire::TRANSACTIONS_PAGE as usize;
            after = page.last().map(|line| line.transaction_key.clone());
            for item in page {
                lines.push(transaction(&item).ok_or_else(|| PspError::Unavailable {
                    reason: format!("unreadable report line {}", item.transaction_key),
                })?);
            }
            if !full {
                return Ok(lines);
            }
        }
        Err(PspError::Unavailable {
            reason: "the transaction report did not end".into(),
        })
    }
}

/// The report's time parameters: local time in KST without an offset, as the API takes them.
fn report_time(at: OffsetDateTime) -> String {
    let kst = at.to_offset(time::macros::offset!(+9));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        kst.year(),
        u8::from(kst.month()),
        kst.day(),
        kst.hour(),
        kst.minute(),
        kst.second()
    )
}

fn transaction(item: &wire::TransactionItem) -> Option<PspTransaction> {
    Some(PspTransaction {
        transaction_key: item.transaction_key.clone(),
        payment_key: PaymentKey::parse(&item.payment_key).ok()?,
        order_id: PspOrderId::parse(&item.order_id).ok()?,
        status: item.status.clone(),
        transaction_at: parse_time(&item.transaction_at)?,
        amount: item.amount,
    })
}

fn log_charge(request: &ChargeRequest, outcome: &ChargeOutcome) {
    let card = request.billing_key.masked();
    match outcome {
        ChargeOutcome::Approved(a) => {
            tracing::info!(order_id = %request.order_id, card, payment_key = %a.payment_key, amount = a.amount.won(), "card charge approved")
        }
        ChargeOutcome::Declined(r) => {
            tracing::info!(order_id = %request.order_id, card, code = r.code, "card charge declined")
        }
        ChargeOutcome::Unknown { reason } => {
            tracing::warn!(order_id = %request.order_id, card, reason, "card charge outcome unknown")
        }
    }
}
