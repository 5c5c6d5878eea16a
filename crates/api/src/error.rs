//! The one error type every handler, extractor and middleware answers with.
//!
//! Each variant has a stable public `code` and an HTTP status. Clients branch on the code, so a
//! code never changes once published. Internal causes (database errors, panics) are logged here
//! with the request id and replaced by a generic message, so that nothing about the server's
//! insides reaches a client.

use ::payments::{EscrowError, PaymentError};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use backoffice::BackofficeError;
use bank_accounts::BankAccountError;
use item_lock::ItemLockError;
use jobs::JobError;
use ledger::LedgerError;
use membership::MemberError;
use merchants::MerchantError;
use reconciliation::ReconciliationError;
use remittance::RemittanceError;
use serde::Serialize;
use settlement::SettlementError;
use utoipa::ToSchema;
use wallet::bank_transfer::TransferError;
use wallet::WalletError;
use webhooks::WebhookError;

use crate::request_id;

/// Everything the API can refuse a request with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: bad JSON, an unknown field, a wrong content type, a bad query
    /// parameter or header.
    #[error("{0}")]
    InvalidRequest(String),
    /// A field parsed but its content is not acceptable (a name too long, a timestamp that is
    /// not RFC 3339). Shares the `invalid_request` code with malformed requests, but is 422 like
    /// the ledger's own field checks.
    #[error("{0}")]
    FieldInvalid(String),
    /// An amount is not a decimal string that the currency allows.
    #[error("{0}")]
    AmountInvalid(String),
    /// A currency code is not a supported ISO 4217 code.
    #[error("{0}")]
    CurrencyUnknown(String),
    /// A currency given alongside an existing resource differs from the resource's currency.
    #[error("{0}")]
    CurrencyMismatch(String),
    /// No credentials, or credentials that are malformed, unknown or revoked.
    #[error("valid credentials are required (Authorization: Bearer <session token or API key>)")]
    Unauthenticated,
    /// The credentials are valid but their role may not use this route.
    #[error("this API key's role may not use this route")]
    Forbidden,
    /// No route matches the request path.
    #[error("no route matches {0}")]
    RouteNotFound(String),
    /// The API key named in the path does not exist.
    #[error("API key {0} does not exist")]
    ApiKeyNotFound(String),
    /// A `merchant` key was asked for without the merchant it acts for.
    #[error("a merchant key needs the merchant_id it acts for")]
    MerchantIdRequired,
    /// A `merchant` key was asked for a merchant that does not exist.
    #[error("merchant_id {0} names no merchant")]
    MerchantIdUnknown(String),
    /// A key of another role than `merchant` was asked to act for a merchant.
    #[error("only merchant keys are bound to a merchant_id")]
    MerchantIdNotAllowed,
    /// The route exists but not for this HTTP method.
    #[error("this route does not accept the request's method")]
    MethodNotAllowed,
    /// The body is larger than the configured limit.
    #[error("the request body is larger than this server accepts")]
    PayloadTooLarge,
    /// The request took longer than the server allows.
    #[error("the request took too long to process")]
    RequestTimeout,
    /// The same `Idempotency-Key` was sent earlier with a different request.
    #[error("this Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    /// The same `Idempotency-Key` is being processed by another request right now.
    #[error("a request with this Idempotency-Key is still being processed; retry later")]
    IdempotencyInProgress,
    /// The ledger refused the request or could not be reached.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Membership refused the request or could not be reached.
    #[error(transparent)]
    Member(#[from] MemberError),
    /// Linked accounts refused the request, or the bank or the database could not be reached.
    #[error(transparent)]
    BankAccount(#[from] BankAccountError),
    /// The wallet refused the request or could not finish it.
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// An item is locked by another buyer, its key is invalid, or the lock store is down.
    #[error(transparent)]
    ItemLock(#[from] ItemLockError),
    /// Webhooks refused the request or could not be reached.
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    /// Merchants refused the request, or the bank or the database could not be reached.
    #[error(transparent)]
    Merchant(#[from] MerchantError),
    /// The payments service refused the checkout or could not finish it.
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// The job queue refused an operator's request or could not be reached.
    #[error(transparent)]
    Job(#[from] JobError),
    /// Settlement refused a run or could not finish it.
    #[error(transparent)]
    Settlement(#[from] SettlementError),
    /// Business remittance refused a request or could not serve it.
    #[error(transparent)]
    Remittance(#[from] RemittanceError),
    /// Reconciliation could not run or read a day.
    #[error(transparent)]
    Reconciliation(#[from] ReconciliationError),
    /// The back office refused an operator change.
    #[error(transparent)]
    Backoffice(#[from] BackofficeError),
    /// A database error outside the ledger.
    #[error("database error: {0}")]
    Storage(#[from] sqlx::Error),
    /// A bug or an unexpected state; the detail is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
    /// An error response produced by a layer that knows nothing about this type, kept with its
    /// original status.
    #[error("the request failed with status {0}")]
    Status(StatusCode),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// What went wrong, in a form clients can branch on (`code`) and humans can read (`message`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable machine-readable code such as `insufficient_funds`.
    #[schema(example = "insufficient_funds")]
    pub code: &'static str,
    /// A human-readable explanation; it may be reworded at any time.
    pub message: String,
    /// The id of the request, also sent in the `x-request-id` response header.
    #[schema(example = "req_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B")]
    pub request_id: String,
}

/// A response extension that marks a body as final: an error envelope already, or a documented
/// non-2xx body such as `/readyz`'s, which the envelope middleware must leave alone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FinalBody;

impl ApiError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::FieldInvalid(_)
            | ApiError::AmountInvalid(_)
            | ApiError::CurrencyUnknown(_)
            | ApiError::CurrencyMismatch(_)
            | ApiError::IdempotencyKeyReused
            | ApiError::MerchantIdRequired
            | ApiError::MerchantIdUnknown(_)
            | ApiError::MerchantIdNotAllowed => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::RouteNotFound(_) | ApiError::ApiKeyNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::IdempotencyInProgress => StatusCode::CONFLICT,
            ApiError::Ledger(error) => ledger_status(error),
            ApiError::Member(error) => member_status(error),
            ApiError::BankAccount(error) => bank_account_status(error),
            ApiError::Wallet(error) => wallet_status(error),
            ApiError::ItemLock(error) => item_lock_status(error),
            ApiError::Webhook(error) => webhook_status(error),
            ApiError::Merchant(error) => merchant_status(error),
            ApiError::Payment(error) => payment_status(error),
            ApiError::Job(error) => job_status(error),
            ApiError::Settlement(error) => settlement_status(error),
            ApiError::Remittance(error) => remittance_status(error),
            ApiError::Reconciliation(error) => reconciliation_status(error),
            ApiError::Backoffice(error) => match error {
                BackofficeError::EmailInvalid
                | BackofficeError::PasswordInvalid
                | BackofficeError::NameInvalid => StatusCode::UNPROCESSABLE_ENTITY,
                BackofficeError::EmailTaken => StatusCode::CONFLICT,
                BackofficeError::InvalidCredentials => StatusCode::UNAUTHORIZED,
                BackofficeError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
                BackofficeError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Status(status) => *status,
        }
    }

    /// The stable public code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_) | ApiError::FieldInvalid(_) => "invalid_request",
            ApiError::AmountInvalid(_) => "amount_invalid",
            ApiError::CurrencyUnknown(_) => "currency_unknown",
            ApiError::CurrencyMismatch(_) => "currency_mismatch",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden => "forbidden",
            ApiError::RouteNotFound(_) => "not_found",
            ApiError::ApiKeyNotFound(_) => "api_key_not_found",
            ApiError::MerchantIdRequired => "merchant_id_required",
            ApiError::MerchantIdUnknown(_) => "merchant_id_unknown",
            ApiError::MerchantIdNotAllowed => "merchant_id_not_allowed",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::RequestTimeout => "request_timeout",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::IdempotencyInProgress => "idempotency_request_in_progress",
            ApiError::Ledger(error) => error.code(),
            ApiError::Member(error) => error.code(),
            ApiError::BankAccount(error) => error.code(),
            ApiError::Wallet(error) => error.code(),
            ApiError::ItemLock(error) => error.code(),
            ApiError::Webhook(error) => error.code(),
            ApiError::Merchant(error) => error.code(),
            ApiError::Payment(PaymentError::Storage(_)) => "storage_unavailable",
            ApiError::Payment(PaymentError::Internal(_)) => "internal_error",
            ApiError::Payment(error) => error.code(),
            ApiError::Job(JobError::Internal(_)) => "internal_error",
            ApiError::Job(error) => error.code(),
            ApiError::Settlement(SettlementError::Storage(_)) => "storage_unavailable",
            ApiError::Settlement(error) => error.code(),
            ApiError::Remittance(error) => error.code(),
            ApiError::Reconciliation(error) => error.code(),
            ApiError::Backoffice(error) => error.code(),
            ApiError::Storage(_) => "storage_unavailable",
            ApiError::Internal(_) => "internal_error",
            ApiError::Status(status) => status_code_name(*status),
        }
    }

    /// Builds the error for a response that some layer produced without the envelope, keeping
    /// its status.
    pub(crate) fn from_status(status: StatusCode) -> ApiError {
        match status {
            StatusCode::BAD_REQUEST => ApiError::InvalidRequest("the request is malformed".into()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ApiError::InvalidRequest("expected Content-Type: application/json".into())
            }
            StatusCode::UNAUTHORIZED => ApiError::Unauthenticated,
            StatusCode::FORBIDDEN => ApiError::Forbidden,
            StatusCode::NOT_FOUND => ApiError::RouteNotFound("this path".into()),
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
            StatusCode::REQUEST_TIMEOUT => ApiError::RequestTimeout,
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::INTERNAL_SERVER_ERROR => {
                ApiError::Internal("a layer answered 500 without detail".into())
            }
            other => ApiError::Status(other),
        }
    }

    /// The message shown to the client. Server-side failures get a fixed text so that no
    /// database error, file path or panic message leaks out.
    fn public_message(&self) -> String {
        match self {
            ApiError::Backoffice(BackofficeError::Storage(_)) => {
                "the database is unavailable; retry later".to_owned()
            }
            ApiError::Backoffice(BackofficeError::Internal(_)) => {
                "an internal error occurred".to_owned()
            }
            ApiError::Reconciliation(error) => match error {
                ReconciliationError::Storage(_)
                | ReconciliationError::Ledger(LedgerError::Storage(_)) => {
                    "the database is unavailable; retry later".to_owned()
                }
                ReconciliationError::Bank(_) => {
                    "the bank's statement could not be read; nothing was recorded, retry later"
                        .to_owned()
                }
                ReconciliationError::Psp(_) => {
                    "the PSP's report could not be read; nothing was recorded, retry later"
                        .to_owned()
                }
                ReconciliationError::Ledger(_)
                | ReconciliationError::Transfer(_)
                | ReconciliationError::BankAccount(_)
                | ReconciliationError::Payment(_)
                | ReconciliationError::Internal(_) => "an internal error occurred".to_owned(),
                other => other.to_string(),
            },
            ApiError::Storage(_)
            | ApiError::Payment(PaymentError::Storage(_))
            | ApiError::Payment(PaymentError::Ledger(LedgerError::Storage(_)))
            | ApiError::Payment(PaymentError::Webhook(WebhookError::Storage(_)))
            | ApiError::Payment(PaymentError::Member(MemberError::Storage(_)))
            | ApiError::Payment(PaymentError::Wallet(
                WalletError::Storage(_)
                | WalletError::Ledger(LedgerError::Storage(_))
                | WalletError::Member(MemberError::Storage(_)),
            ))
            | ApiError::Ledger(LedgerError::Storage(_))
            | ApiError::Member(MemberError::Storage(_))
            | ApiError::Member(MemberError::Ledger(LedgerError::Storage(_)))
            | ApiError::BankAccount(BankAccountError::Storage(_))
            | ApiError::BankAccount(BankAccountError::Ledger(LedgerError::Storage(_)))
            | ApiError::BankAccount(BankAccountError::Member(MemberError::Storage(_)))
            | ApiError::Wallet(
                WalletError::Storage(_)
                | WalletError::Ledger(LedgerError::Storage(_))
                | WalletError::Member(MemberError::Storage(_))
                | WalletError::Transfer(
                    TransferError::Storage(_) | TransferError::Ledger(LedgerError::Storage(_)),
                ),
            )
            | ApiError::Webhook(WebhookError::Storage(_))
            | ApiError::Job(JobError::Storage(_))
            | ApiError::Merchant(
                MerchantError::Storage(_) | MerchantError::Ledger(LedgerError::Storage(_)),
            )
            | ApiError::Settlement(
                SettlementError::Storage(_)
                | SettlementError::Ledger(LedgerError::Storage(_))
                | SettlementError::Merchant(MerchantError::Storage(_)),
            )
            | ApiError::Remittance(
                RemittanceError::Storage(_)
                | RemittanceError::Job(JobError::Storage(_))
                | RemittanceError::Ledger(LedgerError::Storage(_))
                | RemittanceError::Merchant(MerchantError::Storage(_)),
            ) => "the database is unavailable; retry later".to_owned(),
            ApiError::ItemLock(ItemLockError::Unavailable(_))
            | ApiError::Payment(PaymentError::ItemLock(ItemLockError::Unavailable(_))) => {
                "the item lock store is unavailable; retry later".to_owned()
            }
            ApiError::Internal(_)
            | ApiError::Payment(PaymentError::Internal(_))
            | ApiError::Payment(PaymentError::Wallet(WalletError::Internal(_)))
            | ApiError::Payment(PaymentError::Member(MemberError::Internal(_)))
            | ApiError::Payment(PaymentError::Webhook(
                WebhookError::Keys(_)
                | WebhookError::Internal(_)
                | WebhookError::EventConflict { .. },
            ))
            | ApiError::Member(MemberError::Internal(_))
            | ApiError::BankAccount(BankAccountError::Internal(_))
            | ApiError::BankAccount(BankAccountError::Keys(_))
            | ApiError::BankAccount(BankAccountError::Member(MemberError::Internal(_)))
            | ApiError::Wallet(
                WalletError::Internal(_)
                | WalletError::Transfer(TransferError::NotFound(_) | TransferError::Corrupt(_)),
            )
            | ApiError::Webhook(
                WebhookError::Keys(_)
                | WebhookError::Internal(_)
                | WebhookError::EventConflict { .. },
            )
            | ApiError::Job(JobError::Internal(_))
            | ApiError::Merchant(MerchantError::Internal(_) | MerchantError::Keys(_))
            | ApiError::Settlement(
                SettlementError::Internal(_)
                | SettlementError::Transfer(_)
                | SettlementError::Report(_)
                | SettlementError::Merchant(MerchantError::Internal(_) | MerchantError::Keys(_)),
            )
            | ApiError::Remittance(
                RemittanceError::Internal(_)
                | RemittanceError::Transfer(_)
                | RemittanceError::Job(JobError::Internal(_))
                | RemittanceError::Merchant(MerchantError::Internal(_) | MerchantError::Keys(_)),
            ) => "an internal error occurred".to_owned(),
            ApiError::Status(status) => {
                format!(
                    "the request failed: {}",
                    status.canonical_reason().unwrap_or("error")
                )
            }
            other => other.to_string(),
        }
    }
}

/// Maps every ledger refusal to a status. The match lists each variant on purpose: a new
/// variant must not compile until someone decides what clients see.
fn ledger_status(error: &LedgerError) -> StatusCode {
    match error {
        LedgerError::AccountNotFound(_)
        | LedgerError::TransactionNotFound(_)
        | LedgerError::HoldNotFound(_) => StatusCode::NOT_FOUND,
        LedgerError::InsufficientFunds { .. }
        | LedgerError::BalanceLimitExceeded { .. }
        | LedgerError::CurrencyMismatch { .. }
        | LedgerError::UnbalancedTransaction { .. }
        | LedgerError::PostingCountInvalid { .. }
        | LedgerError::AmountInvalid
        | LedgerError::AmountOutOfRange
        | LedgerError::InvalidField { .. }
        | LedgerError::AccountsMustDiffer
        | LedgerError::ExceedsHoldAmount(_) => StatusCode::UNPROCESSABLE_ENTITY,
        LedgerError::ExistsWithDifferentContent { .. }
        | LedgerError::HoldAlreadyPosted(_)
        | LedgerError::HoldAlreadyVoided(_)
        | LedgerError::HoldExpired(_) => StatusCode::CONFLICT,
        LedgerError::ShuttingDown | LedgerError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Maps every membership refusal to a status, listing each variant for the same reason as
/// [`ledger_status`].
fn member_status(error: &MemberError) -> StatusCode {
    match error {
        MemberError::EmailInvalid(_)
        | MemberError::PhoneInvalid(_)
        | MemberError::NameInvalid(_)
        | MemberError::PasswordInvalid(_)
        | MemberError::ChangeInvalid(_)
        | MemberError::CurrentPasswordIncorrect => StatusCode::UNPROCESSABLE_ENTITY,
        MemberError::EmailTaken
        | MemberError::PhoneTaken
        | MemberError::Closed(_)
        | MemberError::BalanceRemaining { .. } => StatusCode::CONFLICT,
        MemberError::InvalidCredentials => StatusCode::UNAUTHORIZED,
        MemberError::LoginLocked { .. } => StatusCode::TOO_MANY_REQUESTS,
        MemberError::NotFound(_) => StatusCode::NOT_FOUND,
        MemberError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        MemberError::Ledger(error) => ledger_status(error),
        MemberError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Maps every linked-account refusal to a status, listing each variant for the same reason as
/// [`ledger_status`]. A refused 1-won deposit or an unreachable bank is a 5xx, so that an
/// idempotent retry runs afresh instead of replaying the failure.
fn bank_account_status(error: &BankAccountError) -> StatusCode {
    match error {
        BankAccountError::BankCodeInvalid(_)
        | BankAccountError::AccountNumberInvalid(_)
        | BankAccountError::CodeInvalid(_)
        | BankAccountError::AccountUnknownAtBank
        | BankAccountError::HolderNameMismatch
        | BankAccountError::NotPartnerBank(_)
        | BankAccountError::CodeMismatch { .. }
        | BankAccountError::ArsCodeMismatch { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        BankAccountError::NotFound(_) => StatusCode::NOT_FOUND,
        BankAccountError::AlreadyLinked
        | BankAccountError::PartnerAccountTaken
        | BankAccountError::PartnerLinkExists
        | BankAccountError::LimitReached(_)
        | BankAccountError::MemberClosed(_)
        | BankAccountError::DepositPending
        | BankAccountError::CodeExpired
        | BankAccountError::AttemptsExceeded
        | BankAccountError::ResendLimitReached(_)
        | BankAccountError::AlreadyVerified
        | BankAccountError::NotVerified
        | BankAccountError::ConsentMissing
        | BankAccountError::ConsentExists
        | BankAccountError::ArsSessionMissing
        | BankAccountError::ArsSessionExpired
        | BankAccountError::ArsAttemptsExceeded
        | BankAccountError::Ended => StatusCode::CONFLICT,
        BankAccountError::BankRefused(_) => StatusCode::BAD_GATEWAY,
        BankAccountError::BankUnavailable | BankAccountError::Storage(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        BankAccountError::Keys(_) | BankAccountError::Internal(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        BankAccountError::Member(error) => member_status(error),
        BankAccountError::Ledger(error) => ledger_status(error),
    }
}

/// Maps every wallet refusal to a status, listing each variant for the same reason as
/// [`ledger_status`].
/// Maps every payments refusal to a status; the wallet's and the ledger's keep theirs.
fn payment_status(error: &PaymentError) -> StatusCode {
    match error {
        PaymentError::Invalid { .. } => StatusCode::BAD_REQUEST,
        PaymentError::AmountOutOfRange
        | PaymentError::FundingMismatch
        | PaymentError::CurrencyMismatch
        | PaymentError::CurrencyUnsupported(_)
        | PaymentError::CheckoutReused(_)
        | PaymentError::PaymentOrderIdReused(_)
        | PaymentError::RefundKeyReused(_)
        | PaymentError::RefundExceedsPayment { .. }
        | PaymentError::NothingToRefund(_) => StatusCode::UNPROCESSABLE_ENTITY,
        PaymentError::Seller(error) if error.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
        PaymentError::Seller(_) => StatusCode::UNPROCESSABLE_ENTITY,
        PaymentError::Escrow(error) => escrow_status(error),
        PaymentError::PaymentNotFound(_)
        | PaymentError::OrderNotFound(_)
        | PaymentError::RefundNotFound(_) => StatusCode::NOT_FOUND,
        PaymentError::BuyerNotActive(_)
        | PaymentError::OrderNotRefundable(_)
        | PaymentError::Conflict(_) => StatusCode::CONFLICT,
        PaymentError::ItemLock(error) => item_lock_status(error),
        PaymentError::Webhook(error) => webhook_status(error),
        PaymentError::Wallet(error) => wallet_status(error),
        PaymentError::Member(error) => member_status(error),
        PaymentError::Ledger(error) => ledger_status(error),
        PaymentError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
        PaymentError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Maps every job queue error to a status.
fn job_status(error: &JobError) -> StatusCode {
    match error {
        JobError::NotFound(_) => StatusCode::NOT_FOUND,
        JobError::NotDead { .. } => StatusCode::CONFLICT,
        JobError::Invalid { .. } => StatusCode::BAD_REQUEST,
        JobError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
        JobError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Maps every escrow refusal to a status, listing each variant for the same reason as
/// [`ledger_status`].
fn escrow_status(error: &EscrowError) -> StatusCode {
    match error {
        EscrowError::NotFound(_) => StatusCode::NOT_FOUND,
        EscrowError::NotAllowed { .. } => StatusCode::FORBIDDEN,
        EscrowError::StateInvalid { .. }
        | EscrowError::Disputed
        | EscrowError::RefundInProgress => StatusCode::CONFLICT,
        EscrowError::CancelWindowClosed { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        EscrowError::RefundRefused { .. } => StatusCode::BAD_GATEWAY,
    }
}

fn wallet_status(error: &WalletError) -> StatusCode {
    match error {
        WalletError::AmountInvalid
        | WalletError::AmountOutOfRange
        | WalletError::CurrencyUnsupported(_)
        | WalletError::InsufficientFunds { .. }
        | WalletError::LimitExceeded { .. }
        | WalletError::TransferToSelf
        | WalletError::InvalidBankField { .. }
        | WalletError::BankAccountNotFound
        | WalletError::HolderNameMismatch { .. }
        | WalletError::BankRefused { .. }
        | WalletError::RequestKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        WalletError::Funding(error) if error.is_not_found() => StatusCode::NOT_FOUND,
        WalletError::Funding(_) => StatusCode::UNPROCESSABLE_ENTITY,
        WalletError::RecipientNotFound
        | WalletError::WalletNotFound(_)
        | WalletError::MoneyTxNotFound(_) => StatusCode::NOT_FOUND,
        WalletError::MemberNotActive(_) => StatusCode::CONFLICT,
        WalletError::BankUnavailable | WalletError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
        WalletError::Ledger(error) | WalletError::Transfer(TransferError::Ledger(error)) => {
            ledger_status(error)
        }
        WalletError::Transfer(TransferError::Storage(_)) => StatusCode::SERVICE_UNAVAILABLE,
        WalletError::Transfer(TransferError::NotFound(_) | TransferError::Corrupt(_)) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        WalletError::Member(error) => member_status(error),
        WalletError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Maps every item lock refusal to a status, listing each variant for the same reason as
/// [`ledger_status`]. An unreachable store is 503: the item may or may not be free.
fn item_lock_status(error: &ItemLockError) -> StatusCode {
    match error {
        ItemLockError::Locked { .. } => StatusCode::CONFLICT,
        ItemLockError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ItemLockError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Maps every webhook refusal to a status, listing each variant for the same reason as
/// [`ledger_status`]. A malformed merchant id names no merchant: 404, as for a missing one.
fn webhook_status(error: &WebhookError) -> StatusCode {
    match error {
        WebhookError::MerchantIdInvalid(_)
        | WebhookError::EndpointNotFound(_)
        | WebhookError::DeliveryNotFound(_) => StatusCode::NOT_FOUND,
        WebhookError::UrlInvalid(_)
        | WebhookError::EventTypeUnknown(_)
        | WebhookError::EventInvalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        WebhookError::EndpointLimitReached(_) | WebhookError::DeliveryNotDead { .. } => {
            StatusCode::CONFLICT
        }
        WebhookError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
        WebhookError::EventConflict { .. } | WebhookError::Keys(_) | WebhookError::Internal(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// Maps every merchant refusal to a status, listing each variant for the same reason as
/// [`ledger_status`]. A bank that refused or did not answer the holder check is a 5xx, so that
/// an idempotent retry runs afresh instead of replaying the failure.
fn merchant_status(error: &MerchantError) -> StatusCode {
    match error {
        MerchantError::NotFound(_) => StatusCode::NOT_FOUND,
        MerchantError::NameInvalid(_)
        | MerchantError::FeeInvalid
        | MerchantError::BankCodeInvalid(_)
        | MerchantError::AccountNumberInvalid(_)
        | MerchantError::HolderNameInvalid(_)
        | MerchantError::AccountUnknownAtBank
        | MerchantError::HolderNameMismatch { .. }
        | MerchantError::RequestKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        // The business has not signed (or has withdrawn) the mandate a collect needs.
        MerchantError::MandateMissing => StatusCode::CONFLICT,
        MerchantError::BankRefused(_) => StatusCode::BAD_GATEWAY,
        MerchantError::BankUnavailable | MerchantError::Storage(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        MerchantError::Keys(_) | MerchantError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        MerchantError::Ledger(error) => ledger_status(error),
    }
}

fn settlement_status(error: &SettlementError) -> StatusCode {
    match error {
        SettlementError::DateInvalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        SettlementError::DayNotOver(_)
        | SettlementError::DaySuperseded { .. }
        | SettlementError::RunInProgress
        | SettlementError::LeaseLost => StatusCode::CONFLICT,
        SettlementError::RunNotFound(_) => StatusCode::NOT_FOUND,
        SettlementError::Merchant(error) => merchant_status(error),
        SettlementError::Ledger(error) => ledger_status(error),
        SettlementError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
        SettlementError::Transfer(_)
        | SettlementError::Report(_)
        | SettlementError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn remittance_status(error: &RemittanceError) -> StatusCode {
    match error {
        RemittanceError::AmountInvalid { .. }
        | RemittanceError::CurrencyUnsupported(_)
        | RemittanceError::SameParty
        | RemittanceError::MemoInvalid { .. }
        | RemittanceError::RequestKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        RemittanceError::CursorInvalid => StatusCode::BAD_REQUEST,
        RemittanceError::MerchantSuspended(_) | RemittanceError::NotRetryable { .. } => {
            StatusCode::CONFLICT
        }
        RemittanceError::NotFound(_) => StatusCode::NOT_FOUND,
        RemittanceError::Merchant(error) => merchant_status(error),
        RemittanceError::Ledger(error) => ledger_status(error),
        RemittanceError::Job(error) => job_status(error),
        RemittanceError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
        RemittanceError::Transfer(_) | RemittanceError::Internal(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

fn reconciliation_status(error: &ReconciliationError) -> StatusCode {
    match error {
        ReconciliationError::DateInvalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ReconciliationError::CursorInvalid => StatusCode::BAD_REQUEST,
        ReconciliationError::DayNotBegun(_) => StatusCode::CONFLICT,
        ReconciliationError::NotFound(_) => StatusCode::NOT_FOUND,
        ReconciliationError::Bank(_)
        | ReconciliationError::Psp(_)
        | ReconciliationError::Storage(_)
        | ReconciliationError::Ledger(LedgerError::Storage(_)) => StatusCode::SERVICE_UNAVAILABLE,
        ReconciliationError::Ledger(_)
        | ReconciliationError::Transfer(_)
        | ReconciliationError::BankAccount(_)
        | ReconciliationError::Payment(_)
        | ReconciliationError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A code for statuses that only generic layers produce.
fn status_code_name(status: StatusCode) -> &'static str {
    match status {
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::GATEWAY_TIMEOUT => "request_timeout",
        _ if status.is_server_error() => "internal_error",
        _ => "request_failed",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let request_id = request_id::current();
        if status.is_server_error() {
            tracing::error!(%request_id, code = self.code(), error = %self, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.public_message(),
                request_id,
            },
        };
        let mut response = (status, Json(body)).into_response();
        match &self {
            ApiError::Unauthenticated => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"mypay\""),
                );
            }
            ApiError::Member(MemberError::LoginLocked { retry_after_s }) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
            }
            // A refusal that lasts only until a refund ends is not kept for replay: the same
            // request again, once the refund has ended, runs.
            ApiError::Payment(PaymentError::Escrow(EscrowError::RefundInProgress)) => {
                let (name, value) = crate::idempotency::no_store();
                response.headers_mut().insert(name, value);
            }
            _ => {}
        }
        response.extensions_mut().insert(FinalBody);
        response
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn ledger_errors_keep_their_codes_and_get_the_documented_statuses() {
        let cases = [
            (LedgerError::AccountNotFound("a".into()), 404),
            (
                LedgerError::InsufficientFunds {
                    account_id: "a".into(),
                },
                422,
            ),
            (
                LedgerError::InvalidField {
                    field: "f",
                    reason: "r",
                },
                422,
            ),
            (
                LedgerError::ExistsWithDifferentContent { what: "x".into() },
                409,
            ),
            (LedgerError::HoldExpired("h".into()), 409),
            (LedgerError::ExceedsHoldAmount("h".into()), 422),
            (LedgerError::ShuttingDown, 503),
        ];
        for (error, status) in cases {
            let code = error.code();
            let api = ApiError::from(error);
            assert_eq!(api.status().as_u16(), status, "{code}");
            assert_eq!(api.code(), code);
        }
    }

    #[test]
    fn item_lock_errors_keep_their_codes_and_hide_the_store() {
        let cases = [
            (
                ItemLockError::Locked { item: "a".into() },
                409,
                "item_locked",
            ),
            (ItemLockError::Invalid("x".into()), 422, "item_key_invalid"),
            (
                ItemLockError::Unavailable("redis: 10.0.0.7:6379 refused".into()),
                503,
                "item_lock_unavailable",
            ),
        ];
        for (error, status, code) in cases {
            let api = ApiError::from(error);
            assert_eq!(api.status().as_u16(), status, "{code}");
            assert_eq!(api.code(), code);
            assert!(!api.public_message().contains("10.0.0.7"));
        }
    }

    #[test]
    fn merchant_errors_keep_their_codes_and_get_the_documented_statuses() {
        let cases = [
            (MerchantError::NotFound("mer_x".into()), 404),
            (MerchantError::FeeInvalid, 422),
            (
                MerchantError::HolderNameMismatch {
                    actual_masked: "홍**".into(),
                },
                422,
            ),
            (MerchantError::AccountUnknownAtBank, 422),
            (MerchantError::RequestKeyReused, 422),
            (
                MerchantError::BankRefused(banking::RefusalCode::NotPermitted),
                502,
            ),
            (MerchantError::BankUnavailable, 503),
            (MerchantError::Internal("x".into()), 500),
        ];
        for (error, status) in cases {
            let code = error.code();
            let api = ApiError::from(error);
            assert_eq!(api.status().as_u16(), status, "{code}");
            assert_eq!(api.code(), code);
        }
        for (error, code) in [
            (ApiError::MerchantIdRequired, "merchant_id_required"),
            (
                ApiError::MerchantIdUnknown("x".into()),
                "merchant_id_unknown",
            ),
            (ApiError::MerchantIdNotAllowed, "merchant_id_not_allowed"),
        ] {
            assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(error.code(), code);
        }
        let internal = ApiError::from(MerchantError::Internal("mer_x has a bad id".into()));
        assert!(!internal.public_message().contains("mer_x"));
    }

    #[test]
    fn refund_errors_keep_their_codes_and_get_the_documented_statuses() {
        let cases = [
            (
                PaymentError::OrderNotRefundable("po_x".into()),
                409,
                "order_not_refundable",
            ),
            (
                PaymentError::RefundKeyReused("k".into()),
                422,
                "refund_key_reused",
            ),
            (
                PaymentError::RefundExceedsPayment {
                    asked: 2,
                    remaining: 1,
                },
                422,
                "refund_exceeds_payment",
            ),
            (
                PaymentError::NothingToRefund("po_x".into()),
                422,
                "nothing_to_refund",
            ),
            (
                PaymentError::RefundNotFound("rfd_x".into()),
                404,
                "refund_not_found",
            ),
        ];
        for (error, status, code) in cases {
            let api = ApiError::from(error);
            assert_eq!(api.status().as_u16(), status, "{code}");
            assert_eq!(api.code(), code);
        }
    }

    #[test]
    fn storage_errors_never_show_their_detail() {
        let error = ApiError::from(LedgerError::Storage(Arc::new(sqlx::Error::PoolTimedOut)));
        assert_eq!(error.code(), "storage_unavailable");
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!error.public_message().contains("pool"));
        let internal = ApiError::Internal("secret path /etc/x".into());
        assert!(!internal.public_message().contains("/etc"));
    }
}
