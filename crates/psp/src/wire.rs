//! The JSON of the Toss Payments API (v1) as far as mypay uses it, shared by the adapter and
//! the sandbox so that both speak exactly the same shapes.
//!
//! - `POST /v1/billing/{billingKey}` — approve a charge of a registered card; body
//!   [`BillingApproval`]; answers a [`Payment`].
//! - `POST /v1/payments/{paymentKey}/cancel` — cancel all or part; body [`CancelBody`];
//!   answers the [`Payment`] with its `cancels`.
//! - `GET /v1/payments/orders/{orderId}` — the payment of an order id; answers a [`Payment`].
//! - `GET /v1/transactions?startDate=&endDate=&startingAfter=&limit=` — the transaction report;
//!   answers a list of [`TransactionItem`].
//!
//! Every request carries `Authorization: Basic base64(secretKey + ":")`; POSTs carry an
//! `Idempotency-Key` header. Errors answer `{"code": "...", "message": "..."}` with a 4xx or 5xx
//! status. Times are ISO 8601 with an offset (`2024-02-13T12:18:14+09:00`). Unknown fields are
//! ignored when reading, because the PSP adds fields over time.

use serde::{Deserialize, Serialize};

/// The path of a billing approval.
pub fn billing_path(billing_key: &str) -> String {
    format!("/v1/billing/{billing_key}")
}

/// The path of a cancellation.
pub fn cancel_path(payment_key: &str) -> String {
    format!("/v1/payments/{payment_key}/cancel")
}

/// The path of an inquiry by order id.
pub fn order_path(order_id: &str) -> String {
    format!("/v1/payments/orders/{order_id}")
}

/// The path of the transaction report.
pub const TRANSACTIONS_PATH: &str = "/v1/transactions";

/// The header that makes a POST idempotent.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// The body of a billing approval.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BillingApproval {
    pub customer_key: String,
    pub amount: i64,
    pub order_id: String,
    pub order_name: String,
}

/// The body of a cancellation. Without `cancelAmount` the whole remaining balance is cancelled;
/// mypay always names the amount.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CancelBody {
    pub cancel_reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_amount: Option<i64>,
}

/// A payment object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub payment_key: String,
    pub order_id: String,
    #[serde(default)]
    pub order_name: String,
    /// `READY`, `IN_PROGRESS`, `WAITING_FOR_DEPOSIT`, `DONE`, `CANCELED`, `PARTIAL_CANCELED`,
    /// `ABORTED` or `EXPIRED`.
    pub status: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default = "krw")]
    pub currency: String,
    pub total_amount: i64,
    pub balance_amount: i64,
    #[serde(default)]
    pub requested_at: Option<String>,
    #[serde(default)]
    pub approved_at: Option<String>,
    #[serde(default)]
    pub last_transaction_key: Option<String>,
    #[serde(default)]
    pub cancels: Option<Vec<Cancel>>,
}

fn krw() -> String {
    "KRW".to_owned()
}

/// One cancellation inside a payment object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Cancel {
    pub transaction_key: String,
    pub cancel_amount: i64,
    #[serde(default)]
    pub cancel_reason: String,
    pub canceled_at: String,
    /// What remains refundable after this cancellation.
    #[serde(default)]
    pub refundable_amount: Option<i64>,
    /// `DONE` when the cancellation was executed.
    #[serde(default)]
    pub cancel_status: Option<String>,
}

/// One line of the transaction report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TransactionItem {
    pub transaction_key: String,
    pub payment_key: String,
    pub order_id: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub customer_key: Option<String>,
    pub status: String,
    pub transaction_at: String,
    #[serde(default = "krw")]
    pub currency: String,
    pub amount: i64,
}

/// The query of the transaction report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TransactionsQuery {
    pub start_date: String,
    pub end_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starting_after: Option<String>,
    pub limit: u32,
}

/// Lines per page of the transaction report that the adapter asks for (Toss allows 10,000).
pub const TRANSACTIONS_PAGE: u32 = 1000;

/// An error reply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// Card declines: the card company or the PSP refused, and nothing was charged.
pub const CARD_DECLINED: &[&str] = &[
    "REJECT_CARD_COMPANY",
    "REJECT_CARD_PAYMENT",
    "REJECT_ACCOUNT_PAYMENT",
    "INVALID_CARD_EXPIRATION",
    "INVALID_STOPPED_CARD",
    "INVALID_CARD_LOST_OR_STOLEN",
    "INVALID_CARD_NUMBER",
    "EXCEED_MAX_DAILY_PAYMENT_COUNT",
    "EXCEED_MAX_PAYMENT_AMOUNT",
    "EXCEED_MAX_AMOUNT",
    "EXCEED_MAX_CARD_INSTALLMENT_PLAN",
    "NOT_SUPPORTED_INSTALLMENT_PLAN_CARD_OR_MERCHANT",
    "INVALID_CARD_INSTALLMENT_PLAN",
    "NOT_AVAILABLE_PAYMENT",
    "RESTRICTED_CARD",
];

/// Requests refused for their content; nothing was done.
pub const INVALID_REQUEST: &[&str] = &[
    "INVALID_REQUEST",
    "NOT_SUPPORTED_METHOD",
    "FORBIDDEN_REQUEST",
];

/// Credentials refused.
pub const UNAUTHORIZED: &[&str] = &["UNAUTHORIZED_KEY", "INVALID_API_KEY"];

/// Nothing under that key.
pub const NOT_FOUND: &[&str] = &[
    "NOT_FOUND_PAYMENT",
    "NOT_FOUND_PAYMENT_SESSION",
    "NOT_FOUND",
];

/// Cancellations refused: more than what remains, or nothing remains.
pub const NOT_CANCELABLE: &[&str] = &[
    "NOT_CANCELABLE_AMOUNT",
    "NOT_CANCELABLE_PAYMENT",
    "ALREADY_CANCELED_PAYMENT",
    "EXCEED_CANCEL_AMOUNT_DISCOUNT_AMOUNT",
];

/// Codes that say the request may have been, or is being, processed: never a refusal. A
/// duplicated order id means an earlier charge under it exists; the inquiry tells its fate.
pub const IN_DOUBT: &[&str] = &[
    "DUPLICATED_ORDER_ID",
    "ALREADY_PROCESSED_PAYMENT",
    "IDEMPOTENT_REQUEST_PROCESSING",
    "PROVIDER_ERROR",
    "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING",
    "FAILED_INTERNAL_SYSTEM_PROCESSING",
    "UNKNOWN_PAYMENT_ERROR",
];
