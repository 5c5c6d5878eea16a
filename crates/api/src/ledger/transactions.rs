//! Posting and reading journal transactions.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use ledger::{AccountId, NewTransaction, PostingSpec, TransactionId};
use serde::Deserialize;
use utoipa::ToSchema;

use super::views::{DirectionDto, TransactionView};
use super::{resource_id, written};
use crate::amount::{AmountInput, CurrencyInput};
use crate::auth::AdminCaller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::idempotency::IdempotencyContext;
use crate::AppState;

/// What a client sends to post a transaction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostTransactionRequest {
    /// The transaction's id, which is also its idempotency key: resubmitting the same id and
    /// content is answered with the stored transaction; other content is refused (409).
    #[schema(example = "order-17:capture")]
    pub id: Option<String>,
    /// Two to 64 legs that sum to zero per currency.
    pub postings: Vec<PostingRequest>,
    /// Free text, at most 512 bytes.
    pub description: Option<String>,
    /// Any JSON object of at most 4096 bytes.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// One leg of a requested transaction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostingRequest {
    /// The account to post to.
    pub account_id: String,
    /// Debit or credit.
    pub direction: DirectionDto,
    /// A positive decimal string in major units, e.g. "12.50" USD or "15000" KRW.
    #[schema(value_type = String, example = "15000")]
    pub amount: AmountInput,
    /// The ISO 4217 currency; it must be the account's.
    #[schema(value_type = String, example = "KRW")]
    pub currency: CurrencyInput,
}

/// Posts a journal transaction, all legs or none.
#[utoipa::path(
    post,
    path = "/v1/ledger/transactions",
    tag = "ledger",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; see the idempotency rules")),
    request_body = PostTransactionRequest,
    responses(
        (status = 201, description = "Posted", body = TransactionView),
        (status = 200, description = "Already posted with this id and content (header Idempotency-Replayed: true)", body = TransactionView),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "An account does not exist", body = ErrorBody),
        (status = 409, description = "The id exists with other content, or the Idempotency-Key is in use", body = ErrorBody),
        (status = 422, description = "Refused: insufficient_funds, currency_mismatch, unbalanced_transaction, amount_invalid, …", body = ErrorBody),
    )
)]
pub(crate) async fn post_transaction(
    State(state): State<AppState>,
    _admin: AdminCaller,
    context: Option<Extension<IdempotencyContext>>,
    ApiJson(request): ApiJson<PostTransactionRequest>,
) -> Result<Response, ApiError> {
    let given = resource_id(request.id, context.as_deref(), TransactionId::PREFIX);
    let id = match given {
        Some(id) => TransactionId::parse(&id)?,
        None => TransactionId::generate(),
    };
    let postings = request
        .postings
        .iter()
        .enumerate()
        .map(|(index, posting)| posting_spec(index, posting))
        .collect::<Result<Vec<_>, _>>()?;
    let transaction = NewTransaction {
        id,
        postings,
        description: request.description,
        metadata: request.metadata,
        balance_limits: Vec::new(),
    };
    let committed = state.ledger.post_transaction(transaction).await?;
    let view = TransactionView::from(committed.value);
    Ok(written(StatusCode::CREATED, committed.replayed, view))
}

/// Reads a transaction with its legs.
#[utoipa::path(
    get,
    path = "/v1/ledger/transactions/{id}",
    tag = "ledger",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The transaction's id")),
    responses(
        (status = 200, description = "The transaction", body = TransactionView),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "No such transaction", body = ErrorBody),
    )
)]
pub(crate) async fn get_transaction(
    State(state): State<AppState>,
    _admin: AdminCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TransactionView>, ApiError> {
    Ok(Json(TransactionView::from(
        state.ledger.transaction(&id).await?,
    )))
}

/// Converts one requested leg; the currency is parsed first because the amount's grammar
/// depends on it.
fn posting_spec(index: usize, posting: &PostingRequest) -> Result<PostingSpec, ApiError> {
    let currency = posting
        .currency
        .parse(&format!("postings[{index}].currency"))?;
    let amount = posting
        .amount
        .to_money(&format!("postings[{index}].amount"), currency)?;
    Ok(PostingSpec {
        account_id: AccountId::parse(&posting.account_id)?,
        direction: posting.direction.into(),
        amount,
    })
}
