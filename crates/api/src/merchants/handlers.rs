//! The merchant route handlers: each checks who may act, parses its input into `merchants`'
//! types, calls the service, and shapes the answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use merchants::{parse_settlement_account, MerchantError, MerchantId, MerchantPatch, NewMerchant};
use wallet::RequestKey;

use super::views::{
    fee_bps, ListQuery, MerchantKeyBody, MerchantList, MerchantView, OnboardBody,
    SettlementAccountBody, UpdateBody,
};
use crate::api_keys::{CreatedApiKey, CreatedResponse};
use crate::auth::{Caller, OperatorCaller, Role};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::idempotency::IdempotencyContext;
use crate::pagination::page_limit;
use crate::AppState;

/// Onboards a merchant: the bank must confirm that the settlement account is held by the
/// expected name; then the merchant is stored, `active`, its account number sealed.
#[utoipa::path(
    post,
    path = "/v1/merchants",
    tag = "merchants",
    security(("bearer" = [])),
    request_body = OnboardBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; a retry with the same key and body answers the merchant the first request onboarded")),
    responses(
        (status = 201, description = "Onboarded; the settlement account is shown masked", body = MerchantView),
        (status = 400, description = "Malformed request or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member or a merchant key", body = ErrorBody),
        (status = 409, description = "`idempotency_request_in_progress`", body = ErrorBody),
        (status = 422, description = "`merchant_name_invalid`, `fee_bps_invalid` (not an integer from 0 to 10000), `bank_code_invalid`, `account_number_invalid`, `holder_name_invalid`, `bank_account_not_found` (the bank has no such account), `holder_name_mismatch` (the message shows the bank's holder masked) or `idempotency_key_reused`", body = ErrorBody),
        (status = 502, description = "`bank_refused`: the bank refused the holder-name inquiry; nothing was stored", body = ErrorBody),
        (status = 503, description = "`bank_unavailable`: no answer from the bank; nothing was stored", body = ErrorBody),
    )
)]
pub(crate) async fn onboard_merchant(
    State(state): State<AppState>,
    _operator: OperatorCaller,
    context: Option<Extension<IdempotencyContext>>,
    ApiJson(body): ApiJson<OnboardBody>,
) -> Result<(StatusCode, Json<MerchantView>), ApiError> {
    let fee_bps = fee_bps(&body.fee_bps)?;
    let (account, holder_name) = settlement_account(&body.settlement_account)?;
    let request_key = context.map(|Extension(context)| RequestKey {
        scope: context.scope().to_owned(),
        key: context.key().as_str().to_owned(),
    });
    let merchant = state
        .merchants
        .onboard(NewMerchant {
            name: body.name,
            fee_bps,
            account,
            holder_name,
            request_key,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(merchant.into())))
}

/// Lists merchants in onboarding order.
#[utoipa::path(
    get,
    path = "/v1/merchants",
    tag = "merchants",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of merchants", body = MerchantList),
        (status = 400, description = "Malformed query or limit", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member or a merchant key", body = ErrorBody),
    )
)]
pub(crate) async fn list_merchants(
    State(state): State<AppState>,
    _operator: OperatorCaller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<MerchantList>, ApiError> {
    let limit = page_limit(query.limit)?;
    let page = state.merchants.list(query.after.as_deref(), limit).await?;
    Ok(Json(MerchantList {
        data: page.items.into_iter().map(MerchantView::from).collect(),
        next_cursor: page.next,
    }))
}

/// A merchant: for admin and platform keys, and for the merchant's own keys.
#[utoipa::path(
    get,
    path = "/v1/merchants/{merchant_id}",
    tag = "merchants",
    security(("bearer" = [])),
    params(("merchant_id" = String, Path, description = "The merchant (`mer_…`)")),
    responses(
        (status = 200, description = "The merchant", body = MerchantView),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member", body = ErrorBody),
        (status = 404, description = "`merchant_not_found`: no such merchant, or another merchant's (for a merchant key)", body = ErrorBody),
    )
)]
pub(crate) async fn get_merchant(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<MerchantView>, ApiError> {
    let visible = match &caller {
        Caller::ApiKey {
            role: Role::Admin | Role::Platform,
            ..
        } => true,
        Caller::ApiKey {
            role: Role::Merchant,
            ..
        } => caller.merchant_id() == Some(raw.as_str()),
        Caller::Member(_) => return Err(ApiError::Forbidden),
    };
    // Another merchant's id answers exactly like a missing one.
    if !visible {
        return Err(not_found(&raw));
    }
    let merchant = state.merchants.get(&merchant_id(&raw)?).await?;
    Ok(Json(merchant.into()))
}

/// Changes a merchant's name, fee rate or status.
#[utoipa::path(
    patch,
    path = "/v1/merchants/{merchant_id}",
    tag = "merchants",
    security(("bearer" = [])),
    params(("merchant_id" = String, Path, description = "The merchant (`mer_…`)")),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "The changed merchant", body = MerchantView),
        (status = 400, description = "Malformed request, unknown field or unknown status", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member or a merchant key", body = ErrorBody),
        (status = 404, description = "`merchant_not_found`", body = ErrorBody),
        (status = 422, description = "`merchant_name_invalid` or `fee_bps_invalid`", body = ErrorBody),
    )
)]
pub(crate) async fn update_merchant(
    State(state): State<AppState>,
    _operator: OperatorCaller,
    ApiPath(raw): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Json<MerchantView>, ApiError> {
    let id = merchant_id(&raw)?;
    let patch = MerchantPatch {
        name: body.name,
        fee_bps: body.fee_bps.as_ref().map(fee_bps).transpose()?,
        status: body.status.map(Into::into),
    };
    Ok(Json(state.merchants.update(&id, patch).await?.into()))
}

/// Replaces the settlement account, after the same holder-name check as onboarding. A refused
/// check keeps the old account.
#[utoipa::path(
    put,
    path = "/v1/merchants/{merchant_id}/settlement-account",
    tag = "merchants",
    security(("bearer" = [])),
    params(("merchant_id" = String, Path, description = "The merchant (`mer_…`)")),
    request_body = SettlementAccountBody,
    responses(
        (status = 200, description = "The merchant with its new account, masked", body = MerchantView),
        (status = 400, description = "Malformed request or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member or a merchant key", body = ErrorBody),
        (status = 404, description = "`merchant_not_found`", body = ErrorBody),
        (status = 422, description = "`bank_code_invalid`, `account_number_invalid`, `holder_name_invalid`, `bank_account_not_found` or `holder_name_mismatch`", body = ErrorBody),
        (status = 502, description = "`bank_refused`; the old account stays", body = ErrorBody),
        (status = 503, description = "`bank_unavailable`; the old account stays", body = ErrorBody),
    )
)]
pub(crate) async fn change_settlement_account(
    State(state): State<AppState>,
    _operator: OperatorCaller,
    ApiPath(raw): ApiPath<String>,
    ApiJson(body): ApiJson<SettlementAccountBody>,
) -> Result<Json<MerchantView>, ApiError> {
    let id = merchant_id(&raw)?;
    let (account, holder_name) = settlement_account(&body)?;
    let merchant = state
        .merchants
        .change_settlement_account(&id, account, holder_name)
        .await?;
    Ok(Json(merchant.into()))
}

/// Creates an API key of role `merchant` bound to this merchant; its secret is shown once.
#[utoipa::path(
    post,
    path = "/v1/merchants/{merchant_id}/api-keys",
    tag = "merchants",
    security(("bearer" = [])),
    params(("merchant_id" = String, Path, description = "The merchant (`mer_…`)")),
    request_body = MerchantKeyBody,
    responses(
        (status = 201, description = "The key, with its secret (`Cache-Control: no-store`)", body = CreatedApiKey),
        (status = 400, description = "Malformed request or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A member or a merchant key", body = ErrorBody),
        (status = 404, description = "`merchant_not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_request`: the name", body = ErrorBody),
    )
)]
pub(crate) async fn create_merchant_key(
    State(state): State<AppState>,
    _operator: OperatorCaller,
    ApiPath(raw): ApiPath<String>,
    ApiJson(body): ApiJson<MerchantKeyBody>,
) -> Result<CreatedResponse, ApiError> {
    let id = merchant_id(&raw)?;
    state.merchants.get(&id).await?;
    crate::api_keys::create_key(&state, Role::Merchant, body.name, Some(&id)).await
}

fn settlement_account(
    body: &SettlementAccountBody,
) -> Result<(banking::BankAccount, banking::HolderName), MerchantError> {
    parse_settlement_account(
        &body.bank_code,
        body.account_number.expose(),
        &body.holder_name,
    )
}

/// A path's merchant id; a malformed one names no merchant, the same answer as a missing one.
fn merchant_id(raw: &str) -> Result<MerchantId, ApiError> {
    MerchantId::parse(raw).ok_or_else(|| not_found(raw))
}

fn not_found(raw: &str) -> ApiError {
    MerchantError::NotFound(raw.chars().take(64).collect()).into()
}
