//! Two-phase transfers: reserve funds now, then post (fully or partially) or void.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use ledger::{AccountId, HoldId, NewHold, PostHold, TransactionId};
use serde::Deserialize;
use utoipa::ToSchema;

use super::views::{HoldPostedView, HoldView, TransactionView};
use super::{resource_id, written};
use crate::amount::{AmountInput, CurrencyInput};
use crate::auth::AdminCaller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, OptionalJson};
use crate::idempotency::IdempotencyContext;
use crate::time::parse_rfc3339;
use crate::AppState;

/// What a client sends to reserve funds.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveHoldRequest {
    /// The hold's id, which is also its idempotency key.
    #[schema(example = "order-17:auth")]
    pub id: Option<String>,
    /// The account whose funds are reserved.
    pub debit_account_id: String,
    /// The account the funds go to when the hold is posted.
    pub credit_account_id: String,
    /// A positive decimal string in major units.
    #[schema(value_type = String, example = "5000")]
    pub amount: AmountInput,
    /// The ISO 4217 currency of both accounts.
    #[schema(value_type = String, example = "KRW")]
    pub currency: CurrencyInput,
    /// When the hold lapses if neither posted nor voided (RFC 3339).
    pub expires_at: Option<String>,
    /// Any JSON object of at most 4096 bytes.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// What a client may send to post a hold; an empty body posts the whole amount.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostHoldRequest {
    /// How much to post, at most the held amount; the rest is released. Default: all of it.
    #[schema(value_type = Option<String>, example = "3000")]
    pub amount: Option<AmountInput>,
    /// The hold's currency, if the client wants it checked.
    #[schema(value_type = Option<String>, example = "KRW")]
    pub currency: Option<CurrencyInput>,
    /// The id of the resulting transaction. Default: `<hold id>.post`.
    pub transaction_id: Option<String>,
}

/// Voiding takes no parameters; the body may be empty or `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidHoldRequest {}

/// Reserves funds on the debit account.
#[utoipa::path(
    post,
    path = "/v1/ledger/holds",
    tag = "ledger",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; see the idempotency rules")),
    request_body = ReserveHoldRequest,
    responses(
        (status = 201, description = "Reserved", body = HoldView),
        (status = 200, description = "Already reserved with this id and content (header Idempotency-Replayed: true)", body = HoldView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "An account does not exist", body = ErrorBody),
        (status = 409, description = "The id exists with other content, or the Idempotency-Key is in use", body = ErrorBody),
        (status = 422, description = "Refused: insufficient_funds, currency_mismatch, accounts_must_differ, amount_invalid, …", body = ErrorBody),
    )
)]
pub(crate) async fn reserve_hold(
    State(state): State<AppState>,
    _admin: AdminCaller,
    context: Option<Extension<IdempotencyContext>>,
    ApiJson(request): ApiJson<ReserveHoldRequest>,
) -> Result<Response, ApiError> {
    let id = match resource_id(request.id, context.as_deref(), HoldId::PREFIX) {
        Some(id) => HoldId::parse(&id)?,
        None => HoldId::generate(),
    };
    let currency = request.currency.parse("currency")?;
    let expires_at = request
        .expires_at
        .as_deref()
        .map(|text| {
            parse_rfc3339(text)
                .map_err(|error| ApiError::FieldInvalid(format!("expires_at: {error}")))
        })
        .transpose()?;
    let hold = NewHold {
        id,
        debit_account_id: AccountId::parse(&request.debit_account_id)?,
        credit_account_id: AccountId::parse(&request.credit_account_id)?,
        amount: request.amount.to_money("amount", currency)?,
        expires_at,
        metadata: request.metadata,
        balance_limits: Vec::new(),
    };
    let committed = state.ledger.reserve_hold(hold).await?;
    Ok(written(
        StatusCode::CREATED,
        committed.replayed,
        HoldView::from(committed.value),
    ))
}

/// Reads a hold.
#[utoipa::path(
    get,
    path = "/v1/ledger/holds/{id}",
    tag = "ledger",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The hold's id")),
    responses(
        (status = 200, description = "The hold", body = HoldView),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "No such hold", body = ErrorBody),
    )
)]
pub(crate) async fn get_hold(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<HoldView>, ApiError> {
    Ok(Json(HoldView::from(state.ledger.hold(&id).await?)))
}

/// Posts a hold, fully or partially; the unposted rest is released.
#[utoipa::path(
    post,
    path = "/v1/ledger/holds/{id}/post",
    tag = "ledger",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The hold's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; see the idempotency rules"),
    ),
    request_body(content = Option<PostHoldRequest>, description = "Optional; empty posts the whole hold"),
    responses(
        (status = 200, description = "Posted (header Idempotency-Replayed: true when it already was, identically)", body = HoldPostedView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "No such hold", body = ErrorBody),
        (status = 409, description = "Already posted, voided or expired", body = ErrorBody),
        (status = 422, description = "Refused: exceeds_hold_amount, amount_invalid, currency_mismatch, …", body = ErrorBody),
    )
)]
pub(crate) async fn post_hold(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(request): OptionalJson<PostHoldRequest>,
) -> Result<Response, ApiError> {
    let hold = state.ledger.hold(&id).await?;
    let currency = hold.amount.currency();
    if let Some(given) = &request.currency {
        let given = given.parse("currency")?;
        if given != currency {
            return Err(ApiError::CurrencyMismatch(format!(
                "hold {id} is in {currency}, not {given}"
            )));
        }
    }
    let amount = request
        .amount
        .as_ref()
        .map(|amount| amount.to_money("amount", currency).map(money::Money::minor))
        .transpose()?;
    let transaction_id = request
        .transaction_id
        .as_deref()
        .map(TransactionId::parse)
        .transpose()?;
    let post = PostHold {
        hold_id: hold.id,
        amount,
        transaction_id,
    };
    let committed = state.ledger.post_hold(post).await?;
    let (hold, transaction) = committed.value;
    let view = HoldPostedView {
        hold: HoldView::from(hold),
        transaction: TransactionView::from(transaction),
    };
    Ok(written(StatusCode::OK, committed.replayed, view))
}

/// Releases a hold without moving money.
#[utoipa::path(
    post,
    path = "/v1/ledger/holds/{id}/void",
    tag = "ledger",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The hold's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; see the idempotency rules"),
    ),
    request_body(content = Option<VoidHoldRequest>, description = "Optional; empty or {}"),
    responses(
        (status = 200, description = "Voided (header Idempotency-Replayed: true when it already was)", body = HoldView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "No such hold", body = ErrorBody),
        (status = 409, description = "Already posted or expired", body = ErrorBody),
    )
)]
pub(crate) async fn void_hold(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(VoidHoldRequest {}): OptionalJson<VoidHoldRequest>,
) -> Result<Response, ApiError> {
    let hold_id = HoldId::parse(&id).map_err(|_| ledger::LedgerError::HoldNotFound(id.clone()))?;
    let committed = state.ledger.void_hold(hold_id).await?;
    Ok(written(
        StatusCode::OK,
        committed.replayed,
        HoldView::from(committed.value),
    ))
}
