//! The wallet route handlers: each parses its input into `wallet`'s types, calls the service,
//! and shapes the answer. Money-moving handlers run the service call in a task of its own, so
//! that a client that disconnects (or the request timeout) cannot stop a movement between its
//! bank call and its ledger entry.

use std::future::Future;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use banking::{AccountNumber, BankAccount, BankCode, HolderName, InvalidValue};
use membership::{Email, MemberId, Phone};
use money::Currency;
use wallet::{
    ChargeRequest, Movement, OperationState, PayoutRequest, Recipient, RequestKey, TransferRequest,
    WalletError, WithdrawRequest,
};

use super::views::{
    ChargeBody, HistoryList, HistoryQuery, MoneyTxView, MovementView, PayoutBody, RecipientBody,
    TransferBody, WalletList, WalletView, WithdrawBody,
};
use crate::auth::{Caller, MemberCaller};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::idempotency::IdempotencyContext;
use crate::pagination::page_limit;
use crate::AppState;

/// The caller's wallets, one per currency.
#[utoipa::path(
    get,
    path = "/v1/wallets",
    tag = "wallets",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's wallets", body = WalletList),
        (status = 401, description = "No live session token", body = ErrorBody),
        (status = 403, description = "An API key, which has no wallet", body = ErrorBody),
    )
)]
pub(crate) async fn list_wallets(
    State(state): State<AppState>,
    caller: MemberCaller,
) -> Result<Json<WalletList>, ApiError> {
    let wallets = state.wallets.wallets(&caller.member_id).await?;
    Ok(Json(WalletList {
        data: wallets.into_iter().map(WalletView::from).collect(),
    }))
}

/// The caller's wallet in one currency.
#[utoipa::path(
    get,
    path = "/v1/wallets/{currency}",
    tag = "wallets",
    security(("bearer" = [])),
    params(("currency" = String, Path, description = "ISO 4217; `KRW`")),
    responses(
        (status = 200, description = "The wallet", body = WalletView),
        (status = 401, description = "No live session token", body = ErrorBody),
        (status = 403, description = "An API key, which has no wallet", body = ErrorBody),
        (status = 422, description = "`currency_unknown` or `currency_unsupported`", body = ErrorBody),
    )
)]
pub(crate) async fn get_wallet(
    State(state): State<AppState>,
    caller: MemberCaller,
    ApiPath(currency): ApiPath<String>,
) -> Result<Json<WalletView>, ApiError> {
    let currency = path_currency(&currency)?;
    let balance = state.wallets.balance(&caller.member_id, currency).await?;
    Ok(Json(balance.into()))
}

/// The caller's wallet history, newest first, each entry with its `mtx_` number and the
/// balance after it.
#[utoipa::path(
    get,
    path = "/v1/wallets/{currency}/history",
    tag = "wallets",
    security(("bearer" = [])),
    params(("currency" = String, Path, description = "ISO 4217; `KRW`"), HistoryQuery),
    responses(
        (status = 200, description = "A page of history", body = HistoryList),
        (status = 400, description = "Malformed cursor or limit", body = ErrorBody),
        (status = 401, description = "No live session token", body = ErrorBody),
        (status = 403, description = "An API key, which has no wallet", body = ErrorBody),
        (status = 422, description = "`currency_unknown` or `currency_unsupported`", body = ErrorBody),
    )
)]
pub(crate) async fn get_history(
    State(state): State<AppState>,
    caller: MemberCaller,
    ApiPath(currency): ApiPath<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<HistoryList>, ApiError> {
    history(&state, &caller.member_id, &currency, query).await
}

/// One of the caller's money transactions by its number; the recipient of a transfer sees it
/// too (as `transfer_in`).
#[utoipa::path(
    get,
    path = "/v1/wallets/{currency}/transactions/{id}",
    tag = "wallets",
    security(("bearer" = [])),
    params(
        ("currency" = String, Path, description = "ISO 4217; `KRW`"),
        ("id" = String, Path, description = "The money transaction number (`mtx_…`)"),
    ),
    responses(
        (status = 200, description = "The money transaction", body = MoneyTxView),
        (status = 401, description = "No live session token", body = ErrorBody),
        (status = 403, description = "An API key", body = ErrorBody),
        (status = 404, description = "`money_transaction_not_found`: no such number, or another member's", body = ErrorBody),
    )
)]
pub(crate) async fn get_money_tx(
    State(state): State<AppState>,
    caller: MemberCaller,
    ApiPath((currency, id)): ApiPath<(String, String)>,
) -> Result<Json<MoneyTxView>, ApiError> {
    let currency = path_currency(&currency)?;
    let tx = state.wallets.money_tx(&caller.member_id, &id).await?;
    if tx.operation.amount.currency() != currency {
        return Err(WalletError::MoneyTxNotFound(id.chars().take(64).collect()).into());
    }
    Ok(Json(tx.into()))
}

/// A member's wallet, for the member themself and for admin and platform keys.
#[utoipa::path(
    get,
    path = "/v1/members/{member_id}/wallets/{currency}",
    tag = "wallets",
    security(("bearer" = [])),
    params(
        ("member_id" = String, Path, description = "The member (`usr_…`)"),
        ("currency" = String, Path, description = "ISO 4217; `KRW`"),
    ),
    responses(
        (status = 200, description = "The wallet", body = WalletView),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A merchant key", body = ErrorBody),
        (status = 404, description = "`wallet_not_found`: no such member, or another member's", body = ErrorBody),
    )
)]
pub(crate) async fn get_member_wallet(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((member, currency)): ApiPath<(String, String)>,
) -> Result<Json<WalletView>, ApiError> {
    let member = owned_member(&state, &caller, &member).await?;
    let currency = path_currency(&currency)?;
    Ok(Json(state.wallets.balance(&member, currency).await?.into()))
}

/// A member's wallet history, for the member themself and for admin and platform keys.
#[utoipa::path(
    get,
    path = "/v1/members/{member_id}/wallets/{currency}/history",
    tag = "wallets",
    security(("bearer" = [])),
    params(
        ("member_id" = String, Path, description = "The member (`usr_…`)"),
        ("currency" = String, Path, description = "ISO 4217; `KRW`"),
        HistoryQuery,
    ),
    responses(
        (status = 200, description = "A page of history", body = HistoryList),
        (status = 400, description = "Malformed cursor or limit", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials", body = ErrorBody),
        (status = 403, description = "A merchant key", body = ErrorBody),
        (status = 404, description = "`wallet_not_found`: no such member, or another member's", body = ErrorBody),
    )
)]
pub(crate) async fn get_member_history(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((member, currency)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<HistoryList>, ApiError> {
    let member = owned_member(&state, &caller, &member).await?;
    history(&state, &member, &currency, query).await
}

/// Charges the caller's wallet from a linked account (the default one unless named).
#[utoipa::path(
    post,
    path = "/v1/wallets/{currency}/charges",
    tag = "wallets",
    security(("bearer" = [])),
    params(
        ("currency" = String, Path, description = "ISO 4217; `KRW`"),
        ("Idempotency-Key" = String, Header, description = "Required: 1 to 255 visible ASCII characters"),
    ),
    request_body = ChargeBody,
    responses(
        (status = 201, description = "Charged", body = MovementView),
        (status = 202, description = "Sent to the bank, whose answer is not known yet: `pending`, finished by the resolver", body = MovementView),
        (status = 400, description = "Malformed request, unknown field, or no Idempotency-Key", body = ErrorBody),
        (status = 401, description = "No live session token", body = ErrorBody),
        (status = 403, description = "An API key", body = ErrorBody),
        (status = 404, description = "`bank_account_not_found`: no usable linked account", body = ErrorBody),
        (status = 409, description = "`member_not_active`, or the Idempotency-Key is in use", body = ErrorBody),
        (status = 422, description = "`amount_invalid`, `limit_exceeded`, `bank_refused`, a linked-account refusal such as `debit_consent_missing`, …", body = ErrorBody),
    )
)]
pub(crate) async fn charge(
    State(state): State<AppState>,
    caller: MemberCaller,
    context: Option<Extension<IdempotencyContext>>,
    ApiPath(currency): ApiPath<String>,
    ApiJson(body): ApiJson<ChargeBody>,
) -> Result<Response, ApiError> {
    let key = request_key(context.as_deref())?;
    let currency = path_currency(&currency)?;
    let request = ChargeRequest {
        amount: body.amount.to_money("amount", currency)?,
        bank_account_id: body.bank_account_id,
    };
    let wallets = state.wallets.clone();
    let member = caller.member_id;
    moved(async move { wallets.charge(&member, request, Some(key)).await }).await
}

/// Withdraws from the caller's wallet to their own verified account.
#[utoipa::path(
    post,
    path = "/v1/wallets/{currency}/withdrawals",
    tag = "wallets",
    security(("bearer" = [])),
    params(
        ("currency" = String, Path, description = "ISO 4217; `KRW`"),
        ("Idempotency-Key" = String, Header, description = "Required: 1 to 255 visible ASCII characters"),
    ),
    request_body = WithdrawBody,
    responses(
        (status = 201, description = "Paid out", body = MovementView),
        (status = 202, description = "Sent to the bank, whose answer is not known yet: the money stays held", body = MovementView),
        (status = 400, description = "Malformed request, unknown field, or no Idempotency-Key", body = ErrorBody),
        (status = 401, description = "No live session token", body = ErrorBody),
        (status = 403, description = "An API key", body = ErrorBody),
        (status = 404, description = "`bank_account_not_found`", body = ErrorBody),
        (status = 422, description = "`amount_invalid`, `insufficient_funds`, `limit_exceeded`, `bank_refused`, …", body = ErrorBody),
    )
)]
pub(crate) async fn withdraw(
    State(state): State<AppState>,
    caller: MemberCaller,
    context: Option<Extension<IdempotencyContext>>,
    ApiPath(currency): ApiPath<String>,
    ApiJson(body): ApiJson<WithdrawBody>,
) -> Result<Response, ApiError> {
    let key = request_key(context.as_deref())?;
    let currency = path_currency(&currency)?;
    let request = WithdrawRequest {
        amount: body.amount.to_money("amount", currency)?,
        bank_account_id: body.bank_account_id,
    };
    let wallets = state.wallets.clone();
    let member = caller.member_id;
    moved(async move { wallets.withdraw(&member, request, Some(key)).await }).await
}

/// Pays out from the caller's wallet to any bank account held in the expected name.
#[utoipa::path(
    post,
    path = "/v1/wallets/{currency}/payouts",
    tag = "wallets",
    security(("bearer" = [])),
    params(
        ("currency" = String, Path, description = "ISO 4217; `KRW`"),
        ("Idempotency-Key" = String, Header, description = "Required: 1 to 255 visible ASCII characters"),
    ),
    request_body = PayoutBody,
    responses(
        (status = 201, description = "Paid out", body = MovementView),
        (status = 202, description = "Sent to the bank, whose answer is not known yet: the money stays held", body = MovementView),
        (status = 400, description = "Malformed request, unknown field, or no Idempotency-Key", body = ErrorBody),
        (status = 401, description = "No live session token", body = ErrorBody),
        (status = 403, description = "An API key", body = ErrorBody),
        (status = 422, description = "`bank_code_invalid`, `account_number_invalid`, `holder_name_invalid`, `bank_account_not_found`, `holder_name_mismatch`, `insufficient_funds`, `limit_exceeded`, `bank_refused`, …", body = ErrorBody),
        (status = 503, description = "`bank_unavailable`: the holder check got no answer; nothing moved", body = ErrorBody),
    )
)]
pub(crate) async fn payout(
    State(state): State<AppState>,
    caller: MemberCaller,
    context: Option<Extension<IdempotencyContext>>,
    ApiPath(currency): ApiPath<String>,
    ApiJson(body): ApiJson<PayoutBody>,
) -> Result<Response, ApiError> {
    let key = request_key(context.as_deref())?;
    let currency = path_currency(&currency)?;
    let request = PayoutRequest {
        amount: body.amount.to_money("amount", currency)?,
        to: BankAccount::new(
            BankCode::parse(&body.bank_code).map_err(invalid_bank_field)?,
            AccountNumber::parse(&body.account_number).map_err(invalid_bank_field)?,
        ),
        holder_name: HolderName::parse(&body.holder_name).map_err(invalid_bank_field)?,
        auto_top_up: body.auto_top_up.unwrap_or(true),
    };
    let wallets = state.wallets.clone();
    let member = caller.member_id;
    moved(async move { wallets.payout(&member, request, Some(key)).await }).await
}

/// Sends money from the caller's wallet to another member's.
#[utoipa::path(
    post,
    path = "/v1/transfers",
    tag = "wallets",
    security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "Required: 1 to 255 visible ASCII characters")),
    request_body = TransferBody,
    responses(
        (status = 201, description = "Transferred", body = MovementView),
        (status = 400, description = "Malformed request, unknown field, not exactly one recipient field, or no Idempotency-Key", body = ErrorBody),
        (status = 401, description = "No live session token", body = ErrorBody),
        (status = 403, description = "An API key", body = ErrorBody),
        (status = 404, description = "`recipient_not_found`", body = ErrorBody),
        (status = 409, description = "`member_not_active`: the recipient is closed", body = ErrorBody),
        (status = 422, description = "`amount_invalid`, `currency_unsupported`, `transfer_to_self`, `insufficient_funds`, `limit_exceeded`, …", body = ErrorBody),
    )
)]
pub(crate) async fn transfer(
    State(state): State<AppState>,
    caller: MemberCaller,
    context: Option<Extension<IdempotencyContext>>,
    ApiJson(body): ApiJson<TransferBody>,
) -> Result<Response, ApiError> {
    let key = request_key(context.as_deref())?;
    let currency = body.currency.parse("currency")?;
    let request = TransferRequest {
        amount: body.amount.to_money("amount", currency)?,
        to: recipient(body.to)?,
        auto_top_up: body.auto_top_up.unwrap_or(true),
    };
    let wallets = state.wallets.clone();
    let member = caller.member_id;
    moved(async move { wallets.transfer(&member, request, Some(key)).await }).await
}

/// Answers 201 when a movement is done, 202 while the bank's answer is still unknown. No task of
/// its own is needed: every movement route requires an Idempotency-Key, and the idempotency
/// layer already runs the request to its end in a task that a client going away cannot stop.
async fn moved<F>(movement: F) -> Result<Response, ApiError>
where
    F: Future<Output = Result<Movement, WalletError>>,
{
    let movement = movement.await?;
    let status = match movement.transaction.operation.state {
        OperationState::Pending => StatusCode::ACCEPTED,
        OperationState::Succeeded | OperationState::Failed => StatusCode::CREATED,
    };
    Ok((status, Json(MovementView::from(movement))).into_response())
}

/// The request's Idempotency-Key, which every money-moving wallet route requires: a client
/// that retries after a timeout must land on the same movement.
fn request_key(context: Option<&IdempotencyContext>) -> Result<RequestKey, ApiError> {
    let context = crate::idempotency::required(context)?;
    Ok(RequestKey {
        scope: context.scope().to_owned(),
        key: context.key().as_str().to_owned(),
    })
}

fn path_currency(code: &str) -> Result<Currency, ApiError> {
    let currency = Currency::parse(code).map_err(|_| {
        ApiError::CurrencyUnknown(
            "currency: expected a supported ISO 4217 code such as \"KRW\"".into(),
        )
    })?;
    Ok(wallet::wallet_currency(currency)?)
}

fn invalid_bank_field(error: InvalidValue) -> ApiError {
    WalletError::InvalidBankField {
        field: error.what,
        reason: error.reason,
    }
    .into()
}

fn recipient(body: RecipientBody) -> Result<Recipient, ApiError> {
    let recipient = match (body.member_id, body.email, body.phone) {
        // An id that is not a member id's shape names nobody, as an unknown one does.
        (Some(id), None, None) => {
            Recipient::Member(MemberId::parse(&id).ok_or(WalletError::RecipientNotFound)?)
        }
        (None, Some(email), None) => Recipient::Email(Email::parse(&email)?),
        (None, None, Some(phone)) => Recipient::Phone(Phone::parse(&phone)?),
        _ => {
            return Err(ApiError::InvalidRequest(
                "to: give exactly one of member_id, email or phone".into(),
            ))
        }
    };
    Ok(recipient)
}

async fn history(
    state: &AppState,
    member: &MemberId,
    currency: &str,
    query: HistoryQuery,
) -> Result<Json<HistoryList>, ApiError> {
    let currency = path_currency(currency)?;
    let limit = page_limit(query.limit)?;
    let before = query
        .cursor
        .as_deref()
        .map(|cursor| {
            cursor
                .parse::<i64>()
                .ok()
                .filter(|seq| *seq >= 1)
                .ok_or_else(|| {
                    ApiError::InvalidRequest("cursor is not a cursor this API returned".into())
                })
        })
        .transpose()?;
    let page = state
        .wallets
        .history(member, currency, before, limit)
        .await?;
    Ok(Json(HistoryList {
        data: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next,
    }))
}

/// The member a staff-or-owner route names, after the ownership rule: another member's id
/// answers `wallet_not_found`, as an id that names nobody does.
pub(crate) async fn owned_member(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<MemberId, ApiError> {
    let member = match MemberId::parse(raw) {
        Some(id) => match state.members.get(&id).await {
            Ok(member) => Some(member.id),
            Err(membership::MemberError::NotFound(_)) => None,
            Err(error) => return Err(error.into()),
        },
        None => None,
    };
    caller.authorize_owner(
        member,
        |id| id,
        || WalletError::WalletNotFound(raw.chars().take(64).collect()).into(),
    )
}
