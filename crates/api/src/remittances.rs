//! Business remittance over HTTP: request one, read it with its step records and failures,
//! list them, retry a dead step; and the debit mandates remittances collect under.
//!
//! Who may do what: a remittance is requested by the sending business's own merchant key or
//! by an operator (admin or platform key); it is read by operators and by the merchant keys of
//! its sender and recipient (anyone else's answer is 404 `remittance_not_found`, as a missing
//! one's is); a merchant key lists only remittances its merchant takes part in. Only operators
//! retry steps and register or revoke debit mandates. Members get 403 everywhere.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use merchants::{DebitMandate, MerchantId};
use remittance::{
    Failure, NewRemittance, Record, Remittance, RemittanceDetail, RemittanceError, RemittanceState,
    REMITTANCE_CURRENCY,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::amount::{AmountInput, CurrencyInput};
use crate::auth::{Caller, OperatorCaller};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, NoFields, OptionalJson};
use crate::idempotency::IdempotencyContext;
use crate::pagination::page_limit;
use crate::time::format_micros;
use crate::webhooks::authorize_merchant;
use crate::{idempotency, AppState};

/// The routes of this module; requesting a remittance behind the idempotency layer.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    let idempotent = OpenApiRouter::new().routes(idempotency::guarded(routes!(create_remittance)));
    OpenApiRouter::new()
        .routes(routes!(list_remittances))
        .routes(routes!(get_remittance))
        .routes(routes!(retry_remittance))
        .routes(routes!(register_mandate, get_mandate, revoke_mandate))
        .merge(idempotent)
}

/// A remittance to make: the sender's money is collected under its debit mandate and paid to
/// the recipient's settlement account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemittanceBody {
    /// The sending business (`mer_…`), which must have an active debit mandate.
    pub sender_merchant_id: String,
    /// The receiving business (`mer_…`), paid to its settlement account.
    pub recipient_merchant_id: String,
    /// A decimal string in won, e.g. `"250000"`.
    #[schema(value_type = String, example = "250000")]
    pub amount: AmountInput,
    /// `KRW`: bank transfers are in won.
    #[schema(value_type = String, example = "KRW")]
    pub currency: CurrencyInput,
    /// Printed on the recipient's statement, 1 to 20 characters.
    pub memo: Option<String>,
}

/// A remittance: where it stands, what it went through, and what failed on the way.
#[derive(Debug, Serialize, ToSchema)]
pub struct RemittanceView {
    /// `rem_…`: the request's unique number; its bank transfers and ledger entries are named
    /// after it.
    pub id: String,
    pub sender_merchant_id: String,
    pub recipient_merchant_id: String,
    pub amount: String,
    pub currency: String,
    pub memo: Option<String>,
    /// `requested`, `collected`, `deposited`, `withdrawn`, `completed`, `returning`,
    /// `returned` (the recipient's bank refused; the sender was paid back) or `failed` (the
    /// sender's money could not be collected; nothing moved).
    pub state: String,
    pub failure_code: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    /// When the monitor alerted that the remittance was late.
    pub alerted_at: Option<String>,
    /// The states reached, in order (absent in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<RecordView>>,
    /// The steps that failed, with their counts (absent in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures: Option<Vec<FailureView>>,
}

/// A state a remittance reached.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordView {
    pub state: String,
    /// The bank transfer (`btr_…`) or ledger entry the step made.
    pub reference: Option<String>,
    pub at: String,
}

/// A step that failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailureView {
    /// `collect`, `deposit`, `withdraw`, `payout` or `return`.
    pub step: String,
    /// The job that runs the step (see `/v1/admin/jobs/{id}`).
    pub job_id: String,
    /// Failed attempts, over every round.
    pub failures: i64,
    pub last_code: String,
    pub last_message: String,
    pub first_failed_at: String,
    pub last_failed_at: String,
    /// Rounds the retry batch started after the job ran out of attempts.
    pub batch_retries: i64,
    /// When the step finally succeeded.
    pub resolved_at: Option<String>,
}

impl From<Record> for RecordView {
    fn from(record: Record) -> RecordView {
        RecordView {
            state: record.state.as_str().to_owned(),
            reference: record.reference,
            at: format_micros(record.at),
        }
    }
}

impl From<Failure> for FailureView {
    fn from(f: Failure) -> FailureView {
        FailureView {
            step: f.step.as_str().to_owned(),
            job_id: f.job_id,
            failures: f.failures,
            last_code: f.last_code,
            last_message: f.last_message,
            first_failed_at: format_micros(f.first_failed_at),
            last_failed_at: format_micros(f.last_failed_at),
            batch_retries: f.batch_retries,
            resolved_at: f.resolved_at.map(format_micros),
        }
    }
}

impl From<Remittance> for RemittanceView {
    fn from(r: Remittance) -> RemittanceView {
        RemittanceView {
            id: r.id.to_string(),
            sender_merchant_id: r.sender_merchant_id,
            recipient_merchant_id: r.recipient_merchant_id,
            amount: money::format_minor(r.amount, REMITTANCE_CURRENCY),
            currency: REMITTANCE_CURRENCY.code().to_owned(),
            memo: r.memo,
            state: r.state.as_str().to_owned(),
            failure_code: r.failure_code,
            created_at: format_micros(r.created_at),
            updated_at: format_micros(r.updated_at),
            finished_at: r.finished_at.map(format_micros),
            alerted_at: r.alerted_at.map(format_micros),
            records: None,
            failures: None,
        }
    }
}

impl From<RemittanceDetail> for RemittanceView {
    fn from(detail: RemittanceDetail) -> RemittanceView {
        RemittanceView {
            records: Some(detail.records.into_iter().map(RecordView::from).collect()),
            failures: Some(detail.failures.into_iter().map(FailureView::from).collect()),
            ..RemittanceView::from(detail.remittance)
        }
    }
}

/// A page of remittances.
#[derive(Debug, Serialize, ToSchema)]
pub struct RemittanceList {
    /// Oldest first.
    pub data: Vec<RemittanceView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Filtering and paging remittances.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RemittanceQuery {
    /// Only remittances in this state.
    pub state: Option<String>,
    /// Only remittances this merchant sends or receives (operators; a merchant key always
    /// sees only its own).
    pub merchant_id: Option<String>,
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
}

/// A business's debit mandate, the account masked.
#[derive(Debug, Serialize, ToSchema)]
pub struct MandateView {
    pub merchant_id: String,
    /// The payer number (납부자번호) the consent is registered under at the bank.
    pub payer_number: String,
    pub bank_code: String,
    /// e.g. `****3456`.
    pub account_masked: String,
    /// `active` or `revoked`.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<DebitMandate> for MandateView {
    fn from(m: DebitMandate) -> MandateView {
        MandateView {
            merchant_id: m.merchant_id.to_string(),
            payer_number: m.payer_number,
            bank_code: m.bank_code,
            account_masked: format!("****{}", m.last4),
            status: m.status,
            created_at: format_micros(m.created_at),
            updated_at: format_micros(m.updated_at),
        }
    }
}

/// Requests a business remittance. The answer comes at once (202, `requested`); the steps run
/// in the background: the sender's money is collected, deposited into the platform ledger,
/// withdrawn and paid to the recipient. Poll `GET /v1/remittances/{id}` for its state (no
/// webhook or stream events are emitted for remittances yet). The same Idempotency-Key and
/// body answer the same remittance.
#[utoipa::path(
    post,
    path = "/v1/remittances",
    tag = "remittances",
    security(("bearer" = [])),
    request_body = RemittanceBody,
    params(("Idempotency-Key" = String, Header, description = "Required: 1 to 255 visible ASCII characters")),
    responses(
        (status = 202, description = "Requested; the steps run in the background", body = RemittanceView),
        (status = 400, description = "No Idempotency-Key, a malformed body or an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member", body = ErrorBody),
        (status = 404, description = "`merchant_not_found`: no such sender or recipient, or a merchant key sending for another merchant", body = ErrorBody),
        (status = 409, description = "`debit_mandate_missing` (the sender has no active mandate), `merchant_suspended` or `idempotency_request_in_progress`", body = ErrorBody),
        (status = 422, description = "`amount_invalid`, `currency_unsupported`, `remittance_same_party`, `memo_invalid`, `idempotency_key_reused`", body = ErrorBody),
    )
)]
pub(crate) async fn create_remittance(
    State(state): State<AppState>,
    caller: Caller,
    context: Option<Extension<IdempotencyContext>>,
    ApiJson(body): ApiJson<RemittanceBody>,
) -> Result<Response, ApiError> {
    if matches!(caller, Caller::Member(_)) {
        return Err(ApiError::Forbidden);
    }
    let context = crate::idempotency::required(context)?;
    authorize_merchant(&state, &caller, &body.sender_merchant_id).await?;
    let currency = body.currency.parse("currency")?;
    if currency != REMITTANCE_CURRENCY {
        return Err(RemittanceError::CurrencyUnsupported(currency.code().to_owned()).into());
    }
    let amount = body.amount.to_money("amount", currency)?;
    let remittance = state
        .remittances
        .request(NewRemittance {
            sender_merchant_id: body.sender_merchant_id,
            recipient_merchant_id: body.recipient_merchant_id,
            amount: amount.minor(),
            memo: body.memo,
            request_scope: context.scope().to_owned(),
            request_key: Some(context.key().as_str().to_owned()),
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(RemittanceView::from(remittance))).into_response())
}

/// Remittances, oldest first.
#[utoipa::path(
    get,
    path = "/v1/remittances",
    tag = "remittances",
    security(("bearer" = [])),
    params(RemittanceQuery),
    responses(
        (status = 200, description = "A page of remittances", body = RemittanceList),
        (status = 400, description = "Malformed query, state, cursor or limit", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member", body = ErrorBody),
    )
)]
pub(crate) async fn list_remittances(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<RemittanceQuery>,
) -> Result<Json<RemittanceList>, ApiError> {
    let merchant = match (&caller, caller.merchant_id()) {
        (Caller::Member(_), _) => return Err(ApiError::Forbidden),
        // A merchant key sees its own, whatever it asks for.
        (_, Some(own)) => Some(own.to_owned()),
        (_, None) if is_operator(&caller) => query.merchant_id,
        (_, None) => return Err(ApiError::Forbidden),
    };
    let filter = query
        .state
        .as_deref()
        .map(|value| {
            RemittanceState::parse(value)
                .ok_or_else(|| ApiError::InvalidRequest(format!("state {value:?} is unknown")))
        })
        .transpose()?;
    let limit = page_limit(query.limit)?;
    let page = state
        .remittances
        .list(filter, merchant.as_deref(), query.after.as_deref(), limit)
        .await?;
    Ok(Json(RemittanceList {
        data: page.items.into_iter().map(RemittanceView::from).collect(),
        next_cursor: page.next,
    }))
}

/// A remittance with its step records and failures.
#[utoipa::path(
    get,
    path = "/v1/remittances/{id}",
    tag = "remittances",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The remittance (`rem_…`)")),
    responses(
        (status = 200, description = "The remittance", body = RemittanceView),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member", body = ErrorBody),
        (status = 404, description = "`remittance_not_found`: no such remittance, or one the merchant key takes no part in", body = ErrorBody),
    )
)]
pub(crate) async fn get_remittance(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RemittanceView>, ApiError> {
    if matches!(caller, Caller::Member(_)) {
        return Err(ApiError::Forbidden);
    }
    let detail = state.remittances.get(&id).await?;
    let remittance = &detail.remittance;
    let party = caller.merchant_id().is_some_and(|own| {
        own == remittance.sender_merchant_id || own == remittance.recipient_merchant_id
    });
    if !party && !is_operator(&caller) {
        return Err(RemittanceError::NotFound(id.chars().take(64).collect()).into());
    }
    Ok(Json(RemittanceView::from(detail)))
}

/// Retries the remittance's failed step now, with a fresh set of attempts: for a step whose
/// job is a dead letter (out of attempts, and past the retry batch's rounds). Safe to repeat:
/// the step's effects are keyed by the remittance.
#[utoipa::path(
    post,
    path = "/v1/remittances/{id}/retry",
    tag = "remittances",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The remittance (`rem_…`)")),
    request_body(content = Option<NoFields>, description = "Optional: an empty body or `{}`; any field is refused"),
    responses(
        (status = 200, description = "The step is queued again", body = RemittanceView),
        (status = 400, description = "A body with a field (this action takes none)", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member or a merchant key", body = ErrorBody),
        (status = 404, description = "`remittance_not_found`", body = ErrorBody),
        (status = 409, description = "`remittance_not_retryable`: no step of it waits for an operator", body = ErrorBody),
    )
)]
pub(crate) async fn retry_remittance(
    State(state): State<AppState>,
    _operator: OperatorCaller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(NoFields {}): OptionalJson<NoFields>,
) -> Result<Json<RemittanceView>, ApiError> {
    Ok(Json(RemittanceView::from(
        state.remittances.retry(&id).await?,
    )))
}

/// Registers the business's debit mandate (signed on paper) at the bank for its current
/// settlement account, so remittances can collect from it. Registering again for the same
/// account changes nothing; after a settlement account change it moves the mandate.
#[utoipa::path(
    post,
    path = "/v1/merchants/{merchant_id}/debit-mandate",
    tag = "remittances",
    security(("bearer" = [])),
    params(("merchant_id" = String, Path, description = "The merchant (`mer_…`)")),
    request_body(content = Option<NoFields>, description = "Optional: an empty body or `{}`; any field is refused"),
    responses(
        (status = 200, description = "The active mandate", body = MandateView),
        (status = 400, description = "A body with a field (this action takes none)", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member or a merchant key", body = ErrorBody),
        (status = 404, description = "`merchant_not_found`", body = ErrorBody),
        (status = 502, description = "`bank_refused`: the bank refused the consent", body = ErrorBody),
        (status = 503, description = "`bank_unavailable`: nothing was stored, retry later", body = ErrorBody),
    )
)]
pub(crate) async fn register_mandate(
    State(state): State<AppState>,
    _operator: OperatorCaller,
    ApiPath(merchant_id): ApiPath<String>,
    OptionalJson(NoFields {}): OptionalJson<NoFields>,
) -> Result<Json<MandateView>, ApiError> {
    let id = merchant(&merchant_id)?;
    let mandate = state.merchants.register_debit_mandate(&id).await?;
    Ok(Json(MandateView::from(mandate)))
}

/// The business's debit mandate, masked.
#[utoipa::path(
    get,
    path = "/v1/merchants/{merchant_id}/debit-mandate",
    tag = "remittances",
    security(("bearer" = [])),
    params(("merchant_id" = String, Path, description = "The merchant (`mer_…`)")),
    responses(
        (status = 200, description = "The mandate (active or revoked)", body = MandateView),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member", body = ErrorBody),
        (status = 404, description = "`merchant_not_found`", body = ErrorBody),
        (status = 409, description = "`debit_mandate_missing`: none was registered", body = ErrorBody),
    )
)]
pub(crate) async fn get_mandate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(merchant_id): ApiPath<String>,
) -> Result<Json<MandateView>, ApiError> {
    authorize_merchant(&state, &caller, &merchant_id).await?;
    let id = merchant(&merchant_id)?;
    Ok(Json(MandateView::from(
        state.merchants.debit_mandate(&id).await?,
    )))
}

/// Revokes the business's debit mandate at the bank; remittances can no longer collect from
/// it (one already collecting finishes).
#[utoipa::path(
    delete,
    path = "/v1/merchants/{merchant_id}/debit-mandate",
    tag = "remittances",
    security(("bearer" = [])),
    params(("merchant_id" = String, Path, description = "The merchant (`mer_…`)")),
    responses(
        (status = 200, description = "The revoked mandate", body = MandateView),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member or a merchant key", body = ErrorBody),
        (status = 404, description = "`merchant_not_found`", body = ErrorBody),
        (status = 409, description = "`debit_mandate_missing`", body = ErrorBody),
        (status = 503, description = "`bank_unavailable`", body = ErrorBody),
    )
)]
pub(crate) async fn revoke_mandate(
    State(state): State<AppState>,
    _operator: OperatorCaller,
    ApiPath(merchant_id): ApiPath<String>,
) -> Result<Json<MandateView>, ApiError> {
    let id = merchant(&merchant_id)?;
    Ok(Json(MandateView::from(
        state.merchants.revoke_debit_mandate(&id).await?,
    )))
}

fn is_operator(caller: &Caller) -> bool {
    matches!(
        caller,
        Caller::ApiKey {
            role: crate::auth::Role::Admin | crate::auth::Role::Platform,
            ..
        }
    )
}

fn merchant(raw: &str) -> Result<MerchantId, ApiError> {
    MerchantId::parse(raw)
        .ok_or_else(|| merchants::MerchantError::NotFound(raw.chars().take(64).collect()).into())
}
